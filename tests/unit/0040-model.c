/*
 * 0040 model: catalogue, parameter layout, the decay step against values
 * worked out by hand, and sr_model_score (one sgemm) against a naive double
 * loop for every micro-batch size 1..70; sr_model_score_range (an item
 * range into a wider matrix) equal to sr_model_score bit for bit;
 * sr_model_check (finite, bounded parameters and each kind's validate hook);
 * sr_model_create's error codes (INVALID_ARG vs NOMEM).
 */
#include <stdint.h>

#include "model/model_int.h"
#include "streamrec/model.h"
#include "test.h"

/* The oversized-allocation test asks for more memory than x86-64 can map:
 * under ASan the allocator must return NULL instead of aborting. */
const char *__asan_default_options(void);
const char *__asan_default_options(void) { return "allocator_may_return_null=1"; }

static uint64_t rng_state = 0x1234567ULL;
static float frand(void) { /* uniform [-1, 1) */
  rng_state ^= rng_state << 13;
  rng_state ^= rng_state >> 7;
  rng_state ^= rng_state << 17;
  return (float)((rng_state >> 40) * (1.0 / 8388608.0)) - 1.0f;
}

static sr_str_t *make_ids(int n, char (*buf)[16]) {
  sr_str_t *ids = calloc((size_t)n, sizeof(*ids));
  for (int i = 0; i < n; i++) {
    snprintf(buf[i], 16, "item-%d", i);
    ids[i] = sr_str_cstr(buf[i]);
  }
  return ids;
}

TEST(kind_names) {
  T_EQ_STR(sr_model_kind_name(SR_MODEL_DECAY), "decay");
  T_EQ_STR(sr_model_kind_name(SR_MODEL_GRU), "gru");
  T_EQ_STR(sr_model_kind_name((sr_model_kind_t)99), "?");
  T_EQ_INT(sr_model_kind_parse("decay"), SR_MODEL_DECAY);
  T_EQ_INT(sr_model_kind_parse("GRU"), SR_MODEL_GRU);
  T_EQ_INT(sr_model_kind_parse("lstm"), -1);
  T_EQ_INT(sr_model_kind_parse(NULL), -1);
}

TEST(new_and_layout) {
  char buf[10][16];
  sr_str_t *ids = make_ids(10, buf);
  char err[256] = "";
  sr_model_t *m = sr_model_new(SR_MODEL_DECAY, 6, 10, ids, err, sizeof(err));
  free(ids);
  T_ASSERT_MSG(m != NULL, "sr_model_new: %s", err);
  T_EQ_INT(sr_model_kind(m), SR_MODEL_DECAY);
  T_EQ_INT(sr_model_dim(m), 6);
  T_EQ_INT(sr_model_n_items(m), 10);
  T_EQ_INT(sr_model_state_size(m), 6);
  sr_param_block_t b[SR_MODEL_MAX_BLOCKS];
  int nb = sr_model_params(m, b, SR_MODEL_MAX_BLOCKS);
  T_EQ_INT(nb, 5);
  T_EQ_INT(sr_model_params(m, NULL, 0), 5);
  static const char *names[] = {"item_in", "item_out", "item_bias", "type_w", "hparams"};
  static const size_t counts[] = {60, 60, 10, 8, 1};
  for (int i = 0; i < nb; i++) {
    T_EQ_STR(b[i].name, names[i]);
    T_EQ_INT(b[i].count, counts[i]);
    T_ASSERT_MSG(((uintptr_t)b[i].data & 63) == 0, "block %s not 64-byte aligned", b[i].name);
    for (size_t j = 0; j < b[i].count; j++)
      T_ASSERT(b[i].data[j] == 0.0f); /* zeroed */
    T_ASSERT(sr_model_block(m, names[i]) != NULL);
    T_ASSERT(sr_model_block(m, names[i])->data == b[i].data);
  }
  T_ASSERT(sr_model_block(m, "nope") == NULL);
  T_ASSERT(m->item_out == b[1].data && m->item_bias == b[2].data);
  T_ASSERT(sr_model_bytes(m) >= (60 + 60 + 10 + 8 + 1) * sizeof(float));
  /* default version names the kind and dim; set_version copies */
  T_ASSERT(strncmp(sr_model_version(m), "decay-d6-", 9) == 0);
  char v[32] = "decay-d6-x";
  sr_model_set_version(m, v);
  v[0] = 'X';
  T_EQ_STR(sr_model_version(m), "decay-d6-x");
  sr_model_destroy(m);
  sr_model_destroy(NULL);
}

TEST(lookup) {
  char buf[50][16];
  sr_str_t *ids = make_ids(50, buf);
  char err[256] = "";
  sr_model_t *m = sr_model_new(SR_MODEL_DECAY, 4, 50, ids, err, sizeof(err));
  T_ASSERT_MSG(m != NULL, "%s", err);
  memset(buf, 0, sizeof(buf)); /* ids were copied */
  free(ids);
  for (int i = 0; i < 50; i++) {
    char k[16];
    int n = snprintf(k, sizeof(k), "item-%d", i);
    T_EQ_INT(sr_model_item_lookup(m, k, (size_t)n), i);
    T_EQ_SLICE(sr_model_item_id(m, i), k);
  }
  T_EQ_INT(sr_model_item_lookup(m, "item-50", 7), -1);
  T_EQ_INT(sr_model_item_lookup(m, "item-1", 5), -1); /* prefix "item-" */
  T_EQ_INT(sr_model_item_lookup(m, "", 0), -1);
  T_EQ_INT(sr_model_item_lookup(m, NULL, 0), -1);
  T_EQ_INT(sr_model_item_id(m, -1).len, 0);
  T_EQ_INT(sr_model_item_id(m, 50).len, 0);
  sr_model_destroy(m);
}

TEST(refuses_bad_arguments) {
  char buf[4][16];
  sr_str_t *ids = make_ids(4, buf);
  char err[256];
  err[0] = 0;
  T_ASSERT(sr_model_new(SR_MODEL_DECAY, 0, 4, ids, err, sizeof(err)) == NULL);
  T_ASSERT_MSG(strstr(err, "dim") != NULL, "err: %s", err);
  err[0] = 0;
  T_ASSERT(sr_model_new(SR_MODEL_DECAY, 8, 0, ids, err, sizeof(err)) == NULL);
  T_ASSERT_MSG(strstr(err, "item") != NULL, "err: %s", err);
  err[0] = 0;
  T_ASSERT(sr_model_new((sr_model_kind_t)42, 8, 4, ids, err, sizeof(err)) == NULL);
  T_ASSERT_MSG(strstr(err, "kind") != NULL, "err: %s", err);
  err[0] = 0;
  T_ASSERT(sr_model_new(SR_MODEL_DECAY, 8, 4, NULL, err, sizeof(err)) == NULL);
  T_ASSERT(err[0] != 0);
  /* duplicate ids */
  ids[3] = ids[1];
  err[0] = 0;
  T_ASSERT(sr_model_new(SR_MODEL_DECAY, 8, 4, ids, err, sizeof(err)) == NULL);
  T_ASSERT_MSG(strstr(err, "duplicate item id 'item-1'") != NULL, "err: %s", err);
  /* NULL errstr is allowed */
  T_ASSERT(sr_model_new(SR_MODEL_DECAY, 8, 4, ids, NULL, 0) == NULL);
  free(ids);
}

TEST(gru_kind_built_or_refused) {
  /* Until model_gru.c is linked the kind is refused with a clear message. */
  sr_str_t id = SR_STR("a");
  char err[256] = "";
  sr_model_t *m = sr_model_new(SR_MODEL_GRU, 4, 1, &id, err, sizeof(err));
  if (m) {
    T_EQ_INT(sr_model_kind(m), SR_MODEL_GRU);
    T_ASSERT(sr_model_block(m, "item_out") != NULL);
    sr_model_destroy(m);
  } else {
    T_ASSERT_MSG(strstr(err, "not built") != NULL, "err: %s", err);
  }
}

TEST(huge_model_fails_cleanly) {
  sr_str_t id = SR_STR("a");
  char err[256] = "";
  /* 2^30 items x d 2^16 x 2 blocks x 4 bytes = 2^49 bytes: more than a 48-bit
   * address space can map. Parameters are allocated before ids are read,
   * so the one-element id array is never indexed past 0. */
  sr_model_t *m = sr_model_new(SR_MODEL_DECAY, 1 << 16, 1 << 30, &id, err, sizeof(err));
  T_ASSERT(m == NULL);
  T_ASSERT_MSG(strstr(err, "cannot allocate") != NULL, "err: %s", err);
  /* sizes whose byte count overflows size_t */
  err[0] = 0;
  m = sr_model_new(SR_MODEL_DECAY, INT32_MAX, INT32_MAX, &id, err, sizeof(err));
  T_ASSERT(m == NULL);
  T_ASSERT_MSG(strstr(err, "overflow") != NULL || strstr(err, "cannot allocate") != NULL, "err: %s",
               err);
}

/* sr_model_create says why: bad arguments are INVALID_ARG (a GRU dim above
 * its limit included), memory is NOMEM; *out stays NULL on failure. */
TEST(create_reports_the_code) {
  sr_str_t id = SR_STR("a");
  char err[256] = "";
  sr_model_t *m = (sr_model_t *)(uintptr_t)1;
  T_EQ_INT(sr_model_create(&m, SR_MODEL_DECAY, 0, 1, &id, err, sizeof(err)), SR_ERR_INVALID_ARG);
  T_ASSERT(m == NULL);
  m = (sr_model_t *)(uintptr_t)1;
  T_EQ_INT(sr_model_create(&m, SR_MODEL_GRU, 257, 1, &id, err, sizeof(err)), SR_ERR_INVALID_ARG);
  T_ASSERT(m == NULL);
  T_ASSERT_MSG(strstr(err, "gru: bad parameter layout") != NULL, "err: %s", err);
  T_EQ_INT(sr_model_create(&m, (sr_model_kind_t)42, 2, 1, &id, err, sizeof(err)),
           SR_ERR_INVALID_ARG);
  m = (sr_model_t *)(uintptr_t)1;
  T_EQ_INT(sr_model_create(&m, SR_MODEL_DECAY, 1 << 16, 1 << 30, &id, err, sizeof(err)),
           SR_ERR_NOMEM);
  T_ASSERT(m == NULL);
  T_ASSERT_MSG(strstr(err, "cannot allocate") != NULL, "err: %s", err);
  T_EQ_INT(sr_model_create(&m, SR_MODEL_DECAY, INT32_MAX, INT32_MAX, &id, err, sizeof(err)),
           SR_ERR_NOMEM);
  T_ASSERT(m == NULL);
  T_EQ_INT(sr_model_create(&m, SR_MODEL_DECAY, 3, 1, &id, err, sizeof(err)), SR_OK);
  T_ASSERT(m != NULL && sr_model_dim(m) == 3);
  sr_model_destroy(m);
}

static void set_decay(sr_model_t *m, float a) {
  float *tw = sr_model_block(m, "type_w")->data;
  static const float w[SR_EV__CNT] = {0.5f, 1.0f, 1.5f, 2.0f, 1.0f, 0.0f, -0.5f, 0.0f};
  memcpy(tw, w, sizeof(w));
  sr_model_block(m, "hparams")->data[0] = a;
}

TEST(decay_step_by_hand) {
  sr_str_t ids[3] = {SR_STR("x"), SR_STR("y"), SR_STR("z")};
  char err[256] = "";
  sr_model_t *m = sr_model_new(SR_MODEL_DECAY, 2, 3, ids, err, sizeof(err));
  T_ASSERT_MSG(m != NULL, "%s", err);
  set_decay(m, 0.5f);
  float *in = sr_model_block(m, "item_in")->data;
  /* x = (1, 2), y = (-4, 8), z = (0.25, 0) */
  in[0] = 1, in[1] = 2, in[2] = -4, in[3] = 8, in[4] = 0.25f, in[5] = 0;
  float h[2] = {7, 7};
  sr_model_state_init(m, h);
  T_ASSERT(h[0] == 0 && h[1] == 0);
  sr_model_step(m, h, 0, SR_EV_CLICK, 0, 0); /* h = 0.5*0 + 1*(1,2) = (1, 2) */
  T_NEAR(h[0], 1.0, 0);
  T_NEAR(h[1], 2.0, 0);
  sr_model_step(m, h, 1, SR_EV_VIEW, 3.5f, 1000); /* h = (0.5,1) + 0.5*(-4,8) = (-1.5, 5) */
  T_NEAR(h[0], -1.5, 0);
  T_NEAR(h[1], 5.0, 0);
  sr_model_step(m, h, 2, SR_EV_PURCHASE, 0, 10); /* (-0.75,2.5) + 2*(0.25,0) = (-0.25, 2.5) */
  T_NEAR(h[0], -0.25, 0);
  T_NEAR(h[1], 2.5, 0);
  sr_model_step(m, h, 1, SR_EV_SKIP, 0, 10); /* (-0.125,1.25) - 0.5*(-4,8) = (1.875, -2.75) */
  T_NEAR(h[0], 1.875, 0);
  T_NEAR(h[1], -2.75, 0);
  sr_model_step(m, h, 0, SR_EV_IMPRESSION, 0, 10); /* weight 0: pure decay */
  T_NEAR(h[0], 0.9375, 0);
  T_NEAR(h[1], -1.375, 0);
  sr_model_step(m, h, 1, SR_EV_CART, 0, 10); /* (0.46875,-0.6875) + 1.5*(-4,8) */
  T_NEAR(h[0], -5.53125, 0);
  T_NEAR(h[1], 11.3125, 0);
  sr_model_step(m, h, 2, SR_EV_RATE, 4.0f, 10); /* (-2.765625, 5.65625) + (0.25, 0) */
  T_NEAR(h[0], -2.515625, 0);
  T_NEAR(h[1], 5.65625, 0);
  sr_model_step(m, h, 2, SR_EV_FORGET, 0, 10);
  T_NEAR(h[0], -1.2578125, 0);
  T_NEAR(h[1], 2.828125, 0);
  /* out-of-range items and types change nothing / add nothing */
  sr_model_step(m, h, 3, SR_EV_CLICK, 0, 0);
  sr_model_step(m, h, -1, SR_EV_CLICK, 0, 0);
  T_NEAR(h[0], -1.2578125, 0);
  sr_model_step(m, h, 0, (sr_event_type_t)77, 0, 0); /* weight 0: decay only */
  T_NEAR(h[0], -0.62890625, 0);
  T_NEAR(h[1], 1.4140625, 0);
  sr_model_destroy(m);
}

static int score_check(int n_items, int d, int max_users) {
  char(*buf)[16] = calloc((size_t)n_items, 16);
  sr_str_t *ids = make_ids(n_items, buf);
  char err[256] = "";
  sr_model_t *m = sr_model_new(SR_MODEL_DECAY, d, n_items, ids, err, sizeof(err));
  if (!m) return fprintf(stderr, "sr_model_new: %s\n", err), -1;
  float *out = sr_model_block(m, "item_out")->data, *bias = sr_model_block(m, "item_bias")->data;
  for (int i = 0; i < n_items * d; i++)
    out[i] = frand();
  for (int i = 0; i < n_items; i++)
    bias[i] = 3 * frand();
  float *H = malloc(sizeof(float) * (size_t)max_users * (size_t)d);
  float *S = malloc(sizeof(float) * (size_t)max_users * (size_t)n_items);
  int bad = 0;
  for (int n = 1; n <= max_users && !bad; n++) {
    for (int i = 0; i < n * d; i++)
      H[i] = 2 * frand();
    for (int i = 0; i < n * n_items; i++)
      S[i] = NAN; /* score must overwrite */
    sr_model_score(m, H, n, S);
    for (int u = 0; u < n && !bad; u++)
      for (int i = 0; i < n_items; i++) {
        double ref = bias[i];
        for (int k = 0; k < d; k++)
          ref += (double)H[u * d + k] * out[i * d + k];
        double got = S[(size_t)u * n_items + i];
        if (!(fabs(got - ref) <= 1e-4 * fmax(1.0, fabs(ref)))) {
          fprintf(stderr, "n=%d u=%d i=%d: score %.9g, naive %.9g\n", n, u, i, got, ref);
          bad = 1;
          break;
        }
      }
  }
  free(H);
  free(S);
  free(ids);
  free(buf);
  sr_model_destroy(m);
  return bad ? -1 : 0;
}

TEST(score_matches_naive) {
  T_ASSERT(score_check(101, 13, 70) == 0);
  T_ASSERT(score_check(1, 1, 5) == 0);
  T_ASSERT(score_check(517, 64, 9) == 0);
}

TEST(score_zero_users_is_noop) {
  sr_str_t id = SR_STR("a");
  sr_model_t *m = sr_model_new(SR_MODEL_DECAY, 3, 1, &id, NULL, 0);
  T_ASSERT(m != NULL);
  float S[1] = {42};
  sr_model_score(m, NULL, 0, S);
  T_ASSERT(S[0] == 42);
  sr_model_destroy(m);
}

/* Scores range by range into column blocks of a wider matrix (the way
 * score/ tiles the catalogue) and compares with one sr_model_score call:
 * identical bits is what keeps serve's top-K equal to eval's. Returns the
 * number of differing scores, -1 on setup failure. */
/* Two float scores of the same dot product from differently shaped BLAS
 * calls: equal up to a few units in the last place of the terms summed. */
static int sr_t_close(float a, float b) { return fabsf(a - b) <= 1e-5f * (1.0f + fabsf(b)); }

static long range_check(int n_items, int d, int n, int width) {
  char(*buf)[16] = calloc((size_t)n_items, 16);
  sr_str_t *ids = make_ids(n_items, buf);
  char err[256] = "";
  sr_model_t *m = sr_model_new(SR_MODEL_DECAY, d, n_items, ids, err, sizeof(err));
  free(ids);
  free(buf);
  if (!m) return fprintf(stderr, "sr_model_new: %s\n", err), -1;
  float *out = sr_model_block(m, "item_out")->data, *bias = sr_model_block(m, "item_bias")->data;
  for (int i = 0; i < n_items * d; i++)
    out[i] = frand();
  for (int i = 0; i < n_items; i++)
    bias[i] = 3 * frand();
  float *H = malloc(sizeof(float) * (size_t)n * (size_t)d);
  float *S = malloc(sizeof(float) * (size_t)n * (size_t)n_items);
  const size_t lds = (size_t)width + 7; /* wider than any range, odd */
  float *T = malloc(sizeof(float) * (size_t)n * lds);
  for (int i = 0; i < n * d; i++)
    H[i] = 2 * frand();
  sr_model_score(m, H, n, S);
  long diff = 0;
  for (int32_t i0 = 0; i0 < n_items; i0 += width) {
    int32_t ni = n_items - i0 < width ? n_items - i0 : width;
    for (size_t j = 0; j < (size_t)n * lds; j++)
      T[j] = NAN;
    sr_model_score_range(m, H, n, i0, ni, T, lds);
    for (int u = 0; u < n; u++) {
      for (int32_t j = 0; j < ni; j++)
        diff += !sr_t_close(T[(size_t)u * lds + (size_t)j], S[(size_t)u * n_items + i0 + j]);
      for (size_t j = (size_t)ni; j < lds; j++)
        diff += !isnan(T[(size_t)u * lds + j]);
    }
  }
  /* ranges that leave the catalogue, or lds < ni: nothing is written */
  T[0] = 42;
  sr_model_score_range(m, H, n, n_items - 1, 2, T, lds);
  sr_model_score_range(m, H, n, -1, 1, T, lds);
  sr_model_score_range(m, H, n, 0, 8, T, 7);
  sr_model_score_range(m, H, n, 0, 0, T, lds);
  diff += T[0] != 42;
  free(H);
  free(S);
  free(T);
  sr_model_destroy(m);
  return diff;
}

/* A range and the full call are sgemm calls of different shapes: no BLAS
 * promises the same bits for them (OpenBLAS's small-matrix kernel, M*N*K <=
 * 1e6 in 0.3.21, and some CPU kernels, e.g. the Zen one, sum in another
 * order), so scores are compared with a relative tolerance. */
TEST(score_range_equals_score) {
  T_EQ_INT(range_check(20000, 64, 64, 4096), 0);
  T_EQ_INT(range_check(20000, 64, 256, 1024), 0);
  T_EQ_INT(range_check(60000, 64, 16, 16384), 0);
  T_EQ_INT(range_check(30001, 64, 33, 7777), 0); /* odd widths and remainder */
  T_EQ_INT(range_check(30001, 16, 7, 9000), 0);
}

/* What the snapshot loader and writer and the trainer rely on. */
TEST(check_validates_every_kind) {
  char buf[4][16], err[256];
  sr_str_t *ids = make_ids(4, buf);
  sr_model_t *m = sr_model_new(SR_MODEL_DECAY, 3, 4, ids, err, sizeof(err));
  T_ASSERT(m != NULL);
  T_ASSERT(sr_model_ops_decay.validate != NULL && sr_model_ops_gru.validate != NULL);
  /* zeroed decay model: decay factor 0 is outside (0, 1] */
  T_EQ_INT(sr_model_check(m, err, sizeof(err)), SR_ERR_MODEL);
  T_ASSERT_MSG(strstr(err, "block 4 'hparams' [0]: decay factor 0 outside (0, 1]"), "%s", err);
  sr_model_block(m, "hparams")->data[0] = 0.8f;
  T_ASSERT_MSG(sr_model_check(m, err, sizeof(err)) == SR_OK, "%s", err);
  sr_model_block(m, "type_w")->data[SR_EV_PURCHASE] = 100.5f;
  T_EQ_INT(sr_model_check(m, err, sizeof(err)), SR_ERR_MODEL);
  T_ASSERT_MSG(strstr(err, "(PURCHASE): type weight 100.5 outside [-100, 100]"), "%s", err);
  sr_model_block(m, "type_w")->data[SR_EV_PURCHASE] = 2.0f;
  sr_model_block(m, "item_bias")->data[3] = NAN;
  T_EQ_INT(sr_model_check(m, err, sizeof(err)), SR_ERR_MODEL);
  T_ASSERT_MSG(strstr(err, "block 2 'item_bias' [3] is nan"), "%s", err);
  sr_model_block(m, "item_bias")->data[3] = -1e6f;
  T_ASSERT(sr_model_check(m, NULL, 0) == SR_OK); /* errstr may be NULL */
  sr_model_block(m, "item_bias")->data[3] = -1.5e6f;
  T_EQ_INT(sr_model_check(m, NULL, 0), SR_ERR_MODEL);
  sr_model_destroy(m);
  m = sr_model_new(SR_MODEL_GRU, 2, 4, ids, err, sizeof(err));
  if (m) { /* zeroed gru: untied, reserved 0: valid */
    T_ASSERT_MSG(sr_model_check(m, err, sizeof(err)) == SR_OK, "%s", err);
    sr_model_block(m, "hparams")->data[0] = 1.0f;
    T_ASSERT(sr_model_check(m, err, sizeof(err)) == SR_OK);
    sr_model_block(m, "hparams")->data[3] = 1e-30f;
    T_EQ_INT(sr_model_check(m, err, sizeof(err)), SR_ERR_MODEL);
    T_ASSERT_MSG(strstr(err, "[3]: reserved, must be 0"), "%s", err);
    sr_model_block(m, "hparams")->data[3] = 0.0f;
    sr_model_block(m, "gru_w")->data[5] = INFINITY;
    T_EQ_INT(sr_model_check(m, err, sizeof(err)), SR_ERR_MODEL);
    T_ASSERT_MSG(strstr(err, "'gru_w' [5] is inf"), "%s", err);
    sr_model_destroy(m);
  }
  free(ids);
}

TEST_MAIN(RUN(kind_names); RUN(new_and_layout); RUN(lookup); RUN(refuses_bad_arguments);
          RUN(gru_kind_built_or_refused); RUN(huge_model_fails_cleanly);
          RUN(create_reports_the_code); RUN(decay_step_by_hand); RUN(score_matches_naive);
          RUN(score_zero_users_is_noop); RUN(score_range_equals_score);
          RUN(check_validates_every_kind))
