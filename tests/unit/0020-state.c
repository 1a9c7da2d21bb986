/*
 * 0020-state: the per-partition user store. Many users across partitions
 * (growth of chunks and index), pointer stability, forget (backward-shift
 * deletion must keep every other user findable), the seen sets held in
 * user records (rules, bound counter, freed on forget and partition drop),
 * partition drop, changelog round trip, and the issue #4 memory bound.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "streamrec/state.h"
#include "test.h"

#define N_USERS 100000
#define N_PARTS 7
#define D 64

static int uid(char *buf, int i) { return sprintf(buf, "user-%d", i); }

/* deterministic content for user i */
static void fill_user(sr_state_t *s, sr_user_t *u, int i) {
  float *v = sr_user_vec(s, u);
  for (int j = 0; j < sr_state_state_size(s); j++)
    v[j] = (float)i + (float)j * 0.25f;
  u->last_ts = 1700000000000LL + i;
  u->n_events = (uint32_t)i;
}

static int check_user(sr_state_t *s, sr_user_t *u, int i) {
  float *v = sr_user_vec(s, u);
  for (int j = 0; j < sr_state_state_size(s); j++)
    if (v[j] != (float)i + (float)j * 0.25f) return 0;
  return u->last_ts == 1700000000000LL + i && u->n_events == (uint32_t)i;
}

TEST(create_get_forget_many) {
  sr_state_t *s = sr_state_new(D, NULL);
  T_ASSERT(s);
  for (int p = 0; p < N_PARTS; p++)
    sr_state_partition_add(s, p * 3);
  sr_state_partition_add(s, 0); /* idempotent */
  T_EQ_INT(sr_state_partition_has(s, 3), 1);
  T_EQ_INT(sr_state_partition_has(s, 4), 0);

  sr_user_t **ptr = calloc(N_USERS, sizeof(*ptr));
  char id[32];
  for (int i = 0; i < N_USERS; i++) {
    int n = uid(id, i), created = -1;
    sr_user_t *u = sr_state_get(s, (i % N_PARTS) * 3, id, (size_t)n, 1, &created);
    T_ASSERT(u);
    T_EQ_INT(created, 1);
    T_EQ_INT(u->key, sr_hash64(id, (size_t)n));
    T_EQ_INT(u->n_events, 0);
    T_EQ_INT(sr_seen_count(&u->seen), 0);
    fill_user(s, u, i);
    ptr[i] = u;
  }
  T_EQ_INT(sr_state_users(s), N_USERS);
  size_t per = 0;
  for (int p = 0; p < N_PARTS; p++)
    per += sr_state_partition_users(s, p * 3);
  T_EQ_INT(per, N_USERS);
  T_EQ_INT(sr_state_partition_users(s, 0), (N_USERS + N_PARTS - 1) / N_PARTS);

  /* pointers stable across chunk and index growth; content intact */
  for (int i = 0; i < N_USERS; i++) {
    int n = uid(id, i), created = -1;
    sr_user_t *u = sr_state_get(s, (i % N_PARTS) * 3, id, (size_t)n, 1, &created);
    T_ASSERT_MSG(u == ptr[i], "user %d moved", i);
    T_EQ_INT(created, 0);
    T_ASSERT_MSG(check_user(s, u, i), "user %d content", i);
  }
  /* absent: no create, wrong partition, unknown partition */
  T_ASSERT(sr_state_get(s, 0, "nobody", 6, 0, NULL) == NULL);
  uid(id, 1); /* user-1 lives in partition 3 */
  T_ASSERT(sr_state_get(s, 0, id, strlen(id), 0, NULL) == NULL);
  int created = -1;
  T_ASSERT(sr_state_get(s, 99, id, strlen(id), 1, &created) == NULL);
  T_EQ_INT(created, 0);

  /* forget every third user; all others stay findable at the same address */
  int forgotten = 0;
  for (int i = 0; i < N_USERS; i += 3) {
    int n = uid(id, i);
    T_EQ_INT(sr_state_forget(s, (i % N_PARTS) * 3, id, (size_t)n), 1);
    T_EQ_INT(sr_state_forget(s, (i % N_PARTS) * 3, id, (size_t)n), 0);
    forgotten++;
  }
  T_EQ_INT(sr_state_users(s), N_USERS - forgotten);
  for (int i = 0; i < N_USERS; i++) {
    int n = uid(id, i);
    sr_user_t *u = sr_state_get(s, (i % N_PARTS) * 3, id, (size_t)n, 0, NULL);
    if (i % 3 == 0) {
      T_ASSERT_MSG(u == NULL, "forgotten user %d still present", i);
    } else {
      T_ASSERT_MSG(u == ptr[i], "user %d lost or moved after deletions", i);
      T_ASSERT_MSG(check_user(s, u, i), "user %d content after deletions", i);
    }
  }
  /* re-create: slots come back from the free list, zeroed (privacy) */
  size_t bytes_before = sr_state_bytes(s);
  for (int i = 0; i < N_USERS; i += 3) {
    int n = uid(id, i);
    sr_user_t *u = sr_state_get(s, (i % N_PARTS) * 3, id, (size_t)n, 1, &created);
    T_ASSERT(u);
    T_EQ_INT(created, 1);
    T_EQ_INT(u->n_events, 0);
    T_EQ_INT(u->last_ts, 0);
    T_EQ_INT(sr_seen_count(&u->seen), 0);
    float *v = sr_user_vec(s, u);
    for (int j = 0; j < D; j++)
      T_ASSERT(v[j] == 0.0f);
    fill_user(s, u, i);
  }
  T_EQ_INT(sr_state_users(s), N_USERS);
  T_EQ_INT(sr_state_bytes(s), bytes_before); /* reused, nothing new */
  for (int i = 0; i < N_USERS; i++) {
    int n = uid(id, i);
    sr_user_t *u = sr_state_get(s, (i % N_PARTS) * 3, id, (size_t)n, 0, NULL);
    T_ASSERT_MSG(u && check_user(s, u, i), "user %d after re-create", i);
  }

  /* drop a partition: its users and memory go, others unaffected */
  size_t users_p3 = sr_state_partition_users(s, 3);
  sr_state_partition_drop(s, 3);
  T_EQ_INT(sr_state_partition_has(s, 3), 0);
  T_EQ_INT(sr_state_partition_users(s, 3), 0);
  T_EQ_INT(sr_state_users(s), N_USERS - users_p3);
  T_ASSERT(sr_state_bytes(s) < bytes_before - users_p3 * 300); /* 304-byte records at d=64 */
  uid(id, 1);
  T_ASSERT(sr_state_get(s, 3, id, strlen(id), 1, NULL) == NULL);
  sr_state_partition_add(s, 3); /* comes back empty */
  T_EQ_INT(sr_state_partition_users(s, 3), 0);
  T_ASSERT(sr_state_get(s, 3, id, strlen(id), 0, NULL) == NULL);
  uid(id, 2);
  T_ASSERT(sr_state_get(s, 6, id, strlen(id), 0, NULL) == ptr[2]);
  free(ptr);
  sr_state_destroy(s);
}

/* Randomised forget/insert churn in one partition against a reference set:
 * exercises backward-shift deletion across wrap-around and long clusters. */
TEST(churn_vs_reference) {
  sr_state_t *s = sr_state_new(4, NULL);
  sr_state_partition_add(s, 1);
  enum { M = 5000 };
  static char present[M];
  memset(present, 0, sizeof(present));
  uint64_t r = 12345;
  char id[32];
  size_t live = 0;
  for (int step = 0; step < 200000; step++) {
    r = r * 6364136223846793005ULL + 1442695040888963407ULL;
    int i = (int)((r >> 33) % M);
    int n = uid(id, i);
    if ((r >> 20) & 1) {
      int created;
      sr_user_t *u = sr_state_get(s, 1, id, (size_t)n, 1, &created);
      T_ASSERT(u);
      T_EQ_INT(created, !present[i]);
      if (created) {
        sr_user_vec(s, u)[0] = (float)i;
        live++;
      }
      T_ASSERT(sr_user_vec(s, u)[0] == (float)i);
      present[i] = 1;
    } else {
      T_EQ_INT(sr_state_forget(s, 1, id, (size_t)n), present[i]);
      if (present[i]) live--;
      present[i] = 0;
    }
    if (step % 20000 == 0) {
      for (int j = 0; j < M; j++) {
        n = uid(id, j);
        sr_user_t *u = sr_state_get(s, 1, id, (size_t)n, 0, NULL);
        T_ASSERT_MSG((u != NULL) == present[j], "step %d user %d", step, j);
        if (u) T_ASSERT(sr_user_vec(s, u)[0] == (float)j);
      }
    }
  }
  T_EQ_INT(sr_state_users(s), live);
  sr_state_destroy(s);
}

/* Seen sets live in the records: the store's rules apply, the bound's
 * drops are counted, forget and partition drop free them (ASan's leak
 * check would catch a set left behind). */
TEST(seen_in_records) {
  sr_seen_conf_t sc;
  sr_seen_conf_defaults(&sc);
  T_EQ_INT(sr_seen_consumes(&sc, SR_EV_IMPRESSION), 0);
  sc.max = 3;
  sr_state_t *s = sr_state_new(8, &sc);
  T_ASSERT(s);
  T_EQ_INT(sr_state_seen_conf(s)->max, 3);
  sr_state_partition_add(s, 0);
  sr_user_t *u = sr_state_get(s, 0, "u", 1, 1, NULL);
  int dropped = 0;
  for (int i = 0; i < 5; i++) {
    u->last_ts = 1000 + i;
    dropped += sr_user_seen_apply(s, u, SR_EV_VIEW, 10 + i, 1000 + i);
  }
  u->last_ts = 2000;
  sr_user_seen_apply(s, u, SR_EV_IMPRESSION, 99, 2000); /* does not consume */
  T_EQ_INT(dropped, 2);
  T_EQ_INT(sr_state_seen_dropped(s), 2);
  int32_t out[8];
  T_EQ_INT(sr_seen_sorted(&u->seen, out), 3);
  T_EQ_INT(out[0], 12);
  T_EQ_INT(out[2], 14);
  /* the set is per user, and records do not overlap */
  sr_user_t *v = sr_state_get(s, 0, "v", 1, 1, NULL);
  T_EQ_INT(sr_seen_count(&v->seen), 0);
  for (int i = 0; i < 8; i++)
    T_ASSERT(sr_user_vec(s, v)[i] == 0.0f);
  T_ASSERT(sr_state_bytes(s) > 0);
  /* forget frees the set; a user recreated in the slot starts empty */
  T_EQ_INT(sr_state_forget(s, 0, "u", 1), 1);
  u = sr_state_get(s, 0, "u", 1, 1, NULL);
  T_EQ_INT(sr_seen_count(&u->seen), 0);
  /* partition drop frees every user's set */
  char id[16];
  for (int i = 0; i < 300; i++) {
    snprintf(id, sizeof(id), "w%d", i);
    sr_user_t *w = sr_state_get(s, 0, id, strlen(id), 1, NULL);
    w->last_ts = 5;
    for (int k = 0; k < 3; k++)
      sr_user_seen_apply(s, w, SR_EV_CLICK, i + k, 5);
  }
  sr_state_partition_drop(s, 0);
  T_EQ_INT(sr_state_users(s), 0);
  sr_state_destroy(s);
  /* a bad seen conf is refused */
  sc.max = 0;
  T_ASSERT(sr_state_new(8, &sc) == NULL);
}

TEST(serialize_restore) {
  sr_state_t *a = sr_state_new(D, NULL), *b = sr_state_new(D, NULL);
  sr_state_partition_add(a, 2);
  sr_state_partition_add(b, 2);
  sr_buf_t rec, rec2;
  sr_buf_init(&rec);
  sr_buf_init(&rec2);
  char id[32];
  const int32_t n_items = 100000;
  for (int i = 0; i < 200; i++) {
    int n = uid(id, i);
    sr_user_t *u = sr_state_get(a, 2, id, (size_t)n, 1, NULL);
    fill_user(a, u, i);
    sr_user_vec(a, u)[3] = -0.0f;
    for (int k = 0; k < i % 70; k++)
      sr_user_seen_apply(a, u, SR_EV_VIEW, i * 100 + k, u->last_ts - 70 + k);
    sr_buf_reset(&rec);
    sr_state_serialize(a, u, &rec);
    T_EQ_INT(rec.len >= 32 + 4 * D, 1);
    T_EQ_INT(sr_state_restore(b, 2, rec.data, rec.len, n_items), SR_OK);
    sr_user_t *v = sr_state_get(b, 2, id, (size_t)n, 0, NULL);
    T_ASSERT(v);
    T_EQ_INT(v->key, u->key);
    T_EQ_INT(v->last_ts, u->last_ts);
    T_EQ_INT(v->n_events, u->n_events);
    T_ASSERT(memcmp(sr_user_vec(a, u), sr_user_vec(b, v), D * sizeof(float)) == 0);
    int32_t ra[80], rb[80];
    int64_t ta[80], tb[80];
    uint32_t na = sr_seen_entries(&u->seen, ra, ta), nb = sr_seen_entries(&v->seen, rb, tb);
    T_EQ_INT(na, (uint32_t)(i % 70));
    T_EQ_INT(nb, na);
    T_ASSERT(memcmp(ra, rb, (size_t)na * sizeof(int32_t)) == 0);
    T_ASSERT(memcmp(ta, tb, (size_t)na * sizeof(int64_t)) == 0);
    sr_buf_reset(&rec2);
    sr_state_serialize(b, v, &rec2);
    T_EQ_INT(rec2.len, rec.len);
    T_ASSERT(memcmp(rec.data, rec2.data, rec.len) == 0);
  }
  T_EQ_INT(sr_state_users(b), 200);

  /* exact little-endian layout of one record's header and vector */
  sr_state_t *c = sr_state_new(2, NULL);
  sr_state_partition_add(c, 0);
  sr_user_t *u = sr_state_get(c, 0, "x", 1, 1, NULL);
  u->last_ts = 0x0102030405060708LL;
  u->n_events = 0x0A0B0C0D;
  sr_user_vec(c, u)[0] = 1.0f;
  sr_user_vec(c, u)[1] = -2.0f;
  for (int k = 1; k <= 3; k++)
    sr_user_seen_apply(c, u, SR_EV_RATE, k, 100 + k);
  sr_buf_reset(&rec);
  sr_state_serialize(c, u, &rec);
  const unsigned char *r3 = rec.data;
  uint64_t key = sr_hash64("x", 1);
  for (int k = 0; k < 8; k++)
    T_EQ_INT(r3[k], (key >> (8 * k)) & 0xFF);
  sr_buf_t sb;
  sr_buf_init(&sb);
  sr_seen_serialize(&u->seen, &sb);
  static const unsigned char hdr[] = {
      0x08, 0x07, 0x06, 0x05, 0x04, 0x03, 0x02, 0x01, /* last_ts */
      0x0D, 0x0C, 0x0B, 0x0A,                         /* n_events */
      2,    0,    0,    0,                            /* state_size */
      2,    0,    0,    0,                            /* version, reserved */
  };
  T_ASSERT(memcmp(r3 + 8, hdr, sizeof(hdr)) == 0);
  T_EQ_INT(r3[28] | r3[29] << 8 | r3[30] << 16 | r3[31] << 24, (int)sb.len); /* seen_bytes */
  static const unsigned char vec[] = {0, 0, 0x80, 0x3F, 0, 0, 0, 0xC0};      /* 1.0f, -2.0f */
  T_ASSERT(memcmp(r3 + 32, vec, sizeof(vec)) == 0);
  T_EQ_INT(rec.len, 40 + sb.len);
  T_ASSERT(memcmp(r3 + 40, sb.data, sb.len) == 0);
  sr_buf_free(&sb);

  /* restore errors change nothing */
  unsigned char *bad = malloc(rec.len + 1);
  memcpy(bad, rec.data, rec.len);
  size_t blen = rec.len;
  T_EQ_INT(sr_state_restore(c, 0, bad, 10, 100), SR_ERR_TRUNCATED);
  T_EQ_INT(sr_state_restore(c, 0, bad, blen - 1, 100), SR_ERR_TRUNCATED);
  bad[blen] = 0;
  T_EQ_INT(sr_state_restore(c, 0, bad, blen + 1, 100), SR_ERR_FORMAT); /* trailing byte */
  T_EQ_INT(sr_state_restore(c, 5, bad, blen, 100), SR_ERR_STATE);
  T_EQ_INT(sr_state_restore(a, 2, bad, blen, 100), SR_ERR_MODEL);
  T_EQ_INT(sr_state_restore(c, 0, bad, blen, 3), SR_ERR_FORMAT); /* item 3 not < 3 items */
  bad[24] = 9;
  T_EQ_INT(sr_state_restore(c, 0, bad, blen, 100), SR_ERR_VERSION);
  bad[24] = 2;
  T_EQ_INT(sr_seen_count(&u->seen), 3);
  /* restore overwrites an existing user in place */
  sr_user_vec(c, u)[0] = 42.0f;
  sr_user_seen_apply(c, u, SR_EV_RATE, 50, 200);
  T_EQ_INT(sr_state_restore(c, 0, bad, blen, 100), SR_OK);
  T_ASSERT(sr_state_get(c, 0, "x", 1, 0, NULL) == u);
  T_ASSERT(sr_user_vec(c, u)[0] == 1.0f);
  T_EQ_INT(sr_seen_count(&u->seen), 3);
  T_EQ_INT(sr_seen_has(&u->seen, 50), 0);
  T_EQ_INT(sr_state_users(c), 1);

  free(bad);
  sr_buf_free(&rec);
  sr_buf_free(&rec2);
  sr_state_destroy(a);
  sr_state_destroy(b);
  sr_state_destroy(c);
}

/* issue #4: at d=64, at most 512 bytes per user including index (users
 * with no consumed item: the seen sets' entries are measured by bench/state) */
TEST(bytes_per_user) {
  sr_state_t *s = sr_state_new(64, NULL);
  T_EQ_INT(sr_state_bytes(s) < 1024, 1);
  for (int p = 0; p < 4; p++)
    sr_state_partition_add(s, p);
  char id[32];
  const int n = 200000;
  double worst = 0;
  for (int i = 0; i < n; i++) {
    int len = uid(id, i);
    T_ASSERT(sr_state_get(s, i % 4, id, (size_t)len, 1, NULL));
    if (i >= 20000 && i % 997 == 0) {
      double b = (double)sr_state_bytes(s) / (double)(i + 1);
      if (b > worst) worst = b;
    }
  }
  double per = (double)sr_state_bytes(s) / n;
  fprintf(stderr, "  bytes/user at d=64: %.1f (worst seen after 20k users: %.1f)\n", per, worst);
  T_ASSERT_MSG(per <= 512.0, "%.1f bytes per user", per);
  T_ASSERT_MSG(worst <= 512.0, "%.1f bytes per user", worst);
  sr_state_destroy(s);
  /* empty partitions are cheap (no 1.6 MB chunk up front) */
  s = sr_state_new(64, NULL);
  for (int p = 0; p < 100; p++)
    sr_state_partition_add(s, p);
  T_ASSERT(sr_state_bytes(s) < 100 * 1024);
  sr_state_destroy(s);
}

/* A full partition returns NULL for a new user (the caller dead-letters
 * it) and keeps serving the users it has; a forget makes room again. */
TEST(user_bound_per_partition) {
  sr_state_t *s = sr_state_new(4, NULL);
  T_EQ_INT(sr_state_max_users(s), SR_STATE_USERS_MAX);
  T_EQ_INT(sr_state_set_max_users(s, 0), 1);
  T_EQ_INT(sr_state_set_max_users(s, 0xffffffffu), SR_STATE_USERS_MAX);
  T_EQ_INT(sr_state_set_max_users(s, 3), 3);
  sr_state_partition_add(s, 0);
  sr_state_partition_add(s, 1);
  int created;
  char id[16];
  for (int i = 0; i < 3; i++) {
    snprintf(id, sizeof(id), "u%d", i);
    T_ASSERT(sr_state_get(s, 0, id, strlen(id), 1, &created) != NULL && created);
  }
  T_ASSERT(sr_state_get(s, 0, "u3", 2, 1, &created) == NULL);
  T_EQ_INT(created, 0);
  T_ASSERT(sr_state_get(s, 0, "u1", 2, 1, &created) != NULL && !created); /* existing: fine */
  T_ASSERT(sr_state_get(s, 1, "u3", 2, 1, &created) != NULL && created);  /* per partition */
  T_EQ_INT(sr_state_forget(s, 0, "u0", 2), 1);
  T_ASSERT(sr_state_get(s, 0, "u3", 2, 1, &created) != NULL && created);
  T_EQ_INT(sr_state_partition_users(s, 0), 3);
  sr_state_destroy(s);
}

TEST_MAIN(RUN(create_get_forget_many); RUN(churn_vs_reference); RUN(seen_in_records);
          RUN(serialize_restore); RUN(bytes_per_user); RUN(user_bound_per_partition))
