/*
 * 0061 train gru: the trainer end to end on small synthetic histories.
 *
 *  - determinism: same seed, one thread => bit-identical parameters (and a
 *    different seed gives different ones); the same with two threads;
 *  - it learns a sequential pattern: every user walks the catalogue
 *    i -> i+1 (mod N) from a random start, with noise events in between;
 *    fresh users are then scored through the serving path (sr_model_step,
 *    sr_model_score, sr_rank_topk with the user's items excluded) and the
 *    next item must be in the top 10 for > 80% of them;
 *  - max_seconds stops training early and still returns a usable model.
 */
#include <math.h>
#include <stdint.h>

#include "model/model_int.h" /* arena, for bit comparison */
#include "streamrec/dataset.h"
#include "streamrec/model.h"
#include "streamrec/rank.h"
#include "streamrec/train.h"
#include "test.h"

static uint64_t rng_state;
static double urand(void) {
  rng_state ^= rng_state << 13;
  rng_state ^= rng_state >> 7;
  rng_state ^= rng_state << 17;
  return (double)(rng_state >> 11) * (1.0 / 9007199254740992.0);
}

#define N_ITEMS 120

/* n_users sequences of the walk i -> i+1; with probability noise an event
 * is a random item instead (the walk continues after it). Item ids "i<k>";
 * every item appears (the first user lists the catalogue in order). */
static sr_dataset_t *make_walks(int n_users, int min_len, int max_len, double noise,
                                uint64_t seed) {
  rng_state = seed;
  size_t cap = (size_t)n_users * (size_t)max_len + N_ITEMS;
  sr_csv_row_t *rows = calloc(cap, sizeof(*rows));
  char(*ub)[16] = calloc(cap, 16), (*ib)[16] = calloc(cap, 16);
  int64_t n = 0;
  for (int k = 0; k < N_ITEMS; k++, n++) { /* catalogue in index order */
    snprintf(ub[n], 16, "cat");
    snprintf(ib[n], 16, "i%d", k);
    rows[n] = (sr_csv_row_t){sr_str_cstr(ub[n]), sr_str_cstr(ib[n]), 1.0f, 1000 + k, -1};
  }
  for (int u = 0; u < n_users; u++) {
    int len = min_len + (int)(urand() * (max_len - min_len + 1));
    int cur = (int)(urand() * N_ITEMS);
    int64_t ts = 1000000;
    for (int k = 0; k < len; k++, n++) {
      int item = urand() < noise ? (int)(urand() * N_ITEMS) : (cur = (cur + 1) % N_ITEMS);
      ts += 1000 * (int64_t)(1 + urand() * 600);
      snprintf(ub[n], 16, "u%d", u);
      snprintf(ib[n], 16, "i%d", item);
      rows[n] = (sr_csv_row_t){sr_str_cstr(ub[n]), sr_str_cstr(ib[n]), 1.0f, ts, SR_EV_VIEW};
    }
  }
  sr_dataset_t *ds = NULL;
  sr_dataset_from_rows(rows, n, &ds);
  free(rows);
  free(ub);
  free(ib);
  return ds;
}

static void conf_small(sr_train_conf_t *c) {
  sr_train_conf_defaults(c, SR_MODEL_GRU);
  c->dim = 32;
  c->epochs = 12;
  c->batch = 256;
  c->lr = 5e-3f;
  c->valid_frac = 0.1f;
  c->patience = 4;
  c->seed = 7;
  c->threads = 1;
  c->progress = 0;
  c->max_seconds = 0;
}

static sr_model_t *train(const sr_dataset_t *ds, const sr_train_conf_t *c,
                         sr_snapshot_info_t *info) {
  char err[256] = "";
  sr_model_t *m = NULL;
  sr_err_t rc = sr_train_run(ds, c, &m, info, err, sizeof(err));
  if (rc) fprintf(stderr, "sr_train_run: %s\n", err);
  return rc ? NULL : m;
}

TEST(deterministic) {
  sr_dataset_t *ds = make_walks(150, 10, 40, 0.1, 11);
  sr_train_conf_t c;
  conf_small(&c);
  c.epochs = 3;
  sr_snapshot_info_t i1, i2, i3;
  sr_model_t *a = train(ds, &c, &i1), *b = train(ds, &c, &i2);
  c.seed = 8;
  sr_model_t *x = train(ds, &c, &i3);
  T_ASSERT(a && b && x);
  T_EQ_INT(a->arena_floats, b->arena_floats);
  T_ASSERT_MSG(memcmp(a->arena, b->arena, a->arena_floats * sizeof(float)) == 0,
               "same seed, one thread: parameters differ");
  T_ASSERT(memcmp(&i1.train_loss, &i2.train_loss, sizeof(float)) == 0);
  T_EQ_INT(i1.epochs, i2.epochs);
  T_ASSERT_MSG(memcmp(a->arena, x->arena, a->arena_floats * sizeof(float)) != 0,
               "different seeds gave identical parameters");
  T_ASSERT(i1.train_users > 100 && i1.train_events > 1000);
  /* two threads (lane-parallel forward/backward, threaded BLAS): also
   * reproducible run to run */
  c.seed = 7;
  c.threads = 2;
  sr_model_t *t1 = train(ds, &c, &i3), *t2 = train(ds, &c, &i3);
  T_ASSERT(t1 && t2);
  T_ASSERT_MSG(memcmp(t1->arena, t2->arena, t1->arena_floats * sizeof(float)) == 0,
               "same seed, two threads: parameters differ");
  sr_model_destroy(t1);
  sr_model_destroy(t2);
  T_ASSERT(isfinite(i1.valid_metric) && i1.valid_metric >= 0.0f);
  sr_model_destroy(a);
  sr_model_destroy(b);
  sr_model_destroy(x);
  sr_dataset_destroy(ds);
}

/* HR@10 of the next walk item for fresh users, through the serving path */
static double walk_hr(const sr_model_t *m, const sr_dataset_t *train_ds, int n_users,
                      uint64_t seed) {
  sr_dataset_t *t = make_walks(n_users, 6, 25, 0.0, seed);
  const int32_t N = sr_model_n_items(m);
  float *h = calloc((size_t)sr_model_state_size(m), sizeof(float));
  float *S = calloc((size_t)N, sizeof(float)), top_s[10];
  int32_t *excl = calloc(64, sizeof(int32_t)), top[10];
  int hits = 0, evaluated = 0;
  for (int32_t u = 0; u < t->n_users; u++) {
    sr_str_t uk = sr_strmap_key(t->users, u);
    if (uk.len == 3 && !memcmp(uk.ptr, "cat", 3)) continue;
    const int64_t e0 = t->user_off[u], e1 = t->user_off[u + 1];
    sr_model_state_init(m, h);
    int n_excl = 0;
    for (int64_t e = e0; e + 1 < e1; e++) {
      sr_str_t ik = sr_strmap_key(t->items, t->ev_item[e]);
      int32_t item = sr_model_item_lookup(m, ik.ptr, ik.len);
      sr_model_step(m, h, item, SR_EV_VIEW, 1.0f, e > e0 ? t->ev_ts[e] - t->ev_ts[e - 1] : 0);
      excl[n_excl++] = item;
    }
    sr_str_t tk = sr_strmap_key(t->items, t->ev_item[e1 - 1]);
    const int32_t target = sr_model_item_lookup(m, tk.ptr, tk.len);
    sr_model_score(m, h, 1, S);
    const int k = sr_rank_topk(S, N, excl, n_excl, 10, top, top_s);
    for (int i = 0; i < k; i++)
      hits += top[i] == target;
    evaluated++;
  }
  (void)train_ds;
  free(h);
  free(S);
  free(excl);
  sr_dataset_destroy(t);
  return evaluated ? (double)hits / evaluated : 0.0;
}

TEST(learns_next_item) {
  sr_dataset_t *ds = make_walks(400, 10, 40, 0.15, 21);
  sr_train_conf_t c;
  conf_small(&c);
  sr_snapshot_info_t info;
  sr_model_t *m = train(ds, &c, &info);
  T_ASSERT(m != NULL);
  const double hr = walk_hr(m, ds, 300, 99);
  fprintf(stderr, "walk HR@10 %.3f (%u epochs, valid ndcg@10 %.3f, loss %.3f)\n", hr, info.epochs,
          (double)info.valid_metric, (double)info.train_loss);
  T_ASSERT_MSG(hr > 0.8, "HR@10 %.3f <= 0.8", hr);
  T_ASSERT(info.valid_metric > 0.5f);
  sr_model_destroy(m);
  sr_dataset_destroy(ds);
}

TEST(max_seconds) {
  sr_dataset_t *ds = make_walks(400, 10, 40, 0.15, 5);
  sr_train_conf_t c;
  conf_small(&c);
  c.epochs = 1000;
  c.patience = 1000;
  c.max_seconds = 0.5;
  sr_snapshot_info_t info;
  const int64_t t0 = sr_mono_us();
  sr_model_t *m = train(ds, &c, &info);
  const double took = (double)(sr_mono_us() - t0) * 1e-6;
  T_ASSERT(m != NULL);
  T_ASSERT_MSG(took < 5.0, "max_seconds 0.5 took %.2f s", took);
  T_ASSERT(info.epochs >= 1 && info.epochs < 1000);
  T_ASSERT(isfinite(info.train_loss));
  sr_model_destroy(m);
  sr_dataset_destroy(ds);
}

TEST_MAIN(RUN(deterministic); RUN(learns_next_item); RUN(max_seconds))
