/*
 * 0031-score: sr_scorer_run (and its row variant, sr_scorer_row +
 * sr_scorer_run_rows, which must agree with it bit for bit) against a
 * naive double-precision reference:
 * S = H . item_out^T + item_bias computed in double, full sort of each
 * filtered row under the tie rule. Scores must agree within 1e-4 relative
 * (relative to sum |h_j * out_ij| + |bias_i|, the scale sgemm's rounding
 * error is proportional to), and the top-K index lists must be identical
 * whenever the reference has no near-tie inside the first K+1 (gap below
 * 1e-5 of that scale; worst-case sgemm error is about d * 2^-24 of it).
 *
 * Then the serve/eval parity contract on catalogues large enough for the
 * scorer to tile: its lists must equal sr_model_score + sr_rank_topk over
 * the whole row exactly (indices, bitwise scores), including massive ties
 * across tile boundaries, exclusions there, and NaN scores.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "streamrec/common.h"
#include "streamrec/model.h"
#include "streamrec/rank.h"
#include "streamrec/score.h"
#include "test.h"

static uint64_t rng = 88172645463325252ULL;
static uint32_t rnd(void) {
  rng ^= rng << 13;
  rng ^= rng >> 7;
  rng ^= rng << 17;
  return (uint32_t)(rng >> 16);
}
static float frand(void) { return (float)((double)rnd() / 4294967296.0 * 2.0 - 1.0); }

static sr_model_t *make_model(int d, int32_t n, char *errstr, size_t errsz) {
  sr_str_t *ids = malloc((size_t)n * sizeof(*ids));
  char *buf = malloc((size_t)n * 16);
  for (int32_t i = 0; i < n; i++) {
    int len = snprintf(buf + (size_t)i * 16, 16, "item%d", (int)i);
    ids[i] = sr_str_make(buf + (size_t)i * 16, (size_t)len);
  }
  sr_model_t *m = sr_model_new(SR_MODEL_DECAY, d, n, ids, errstr, errsz);
  free(ids);
  free(buf);
  if (!m) return NULL;
  sr_param_block_t blocks[24];
  int nb = sr_model_params(m, blocks, 24);
  for (int b = 0; b < nb && b < 24; b++) {
    if (!strcmp(blocks[b].name, "item_out") || !strcmp(blocks[b].name, "item_bias"))
      for (size_t j = 0; j < blocks[b].count; j++)
        blocks[b].data[j] = frand();
  }
  return m;
}

static const float *find_block(sr_model_t *m, const char *name, size_t *count) {
  sr_param_block_t blocks[24];
  int nb = sr_model_params(m, blocks, 24);
  for (int b = 0; b < nb && b < 24; b++)
    if (!strcmp(blocks[b].name, name)) {
      *count = blocks[b].count;
      return blocks[b].data;
    }
  return NULL;
}

static const double *g_ref;
static int cmp_ref(const void *pa, const void *pb) {
  int32_t a = *(const int32_t *)pa, b = *(const int32_t *)pb;
  if (g_ref[a] > g_ref[b]) return -1;
  if (g_ref[a] < g_ref[b]) return 1;
  return (a > b) - (a < b);
}

/* Scores n users (n may exceed max_batch) with sc and checks each one. */
static int check_run(sr_scorer_t *sc, sr_model_t *m, int n, int with_excl, int *checked_lists,
                     char *why, size_t whysz) {
  const int d = sr_model_state_size(m), k = sr_scorer_k(sc);
  const int32_t N = sr_model_n_items(m);
  size_t cnt;
  const float *out = find_block(m, "item_out", &cnt), *bias = find_block(m, "item_bias", &cnt);
  float *H = malloc((size_t)n * d * sizeof(float));
  const float **states = malloc((size_t)n * sizeof(*states));
  int32_t **ex = calloc((size_t)n, sizeof(*ex));
  int *nex = calloc((size_t)n, sizeof(int));
  int32_t *oi = malloc((size_t)n * k * sizeof(int32_t));
  float *os = malloc((size_t)n * k * sizeof(float));
  int *oc = malloc((size_t)n * sizeof(int));
  double *ref = malloc((size_t)N * sizeof(double)), *mag = malloc((size_t)N * sizeof(double));
  int32_t *order = malloc((size_t)N * sizeof(int32_t));
  char *mark = malloc((size_t)N);
  int ok = 0;
  for (int u = 0; u < n; u++) {
    for (int j = 0; j < d; j++)
      H[(size_t)u * d + j] = frand();
    states[u] = H + (size_t)u * d;
    if (with_excl) {
      nex[u] = (int)(rnd() % 40);
      if (u % 3 == 0) nex[u] = 0;
      ex[u] = malloc((size_t)(nex[u] + 1) * sizeof(int32_t));
      for (int e = 0; e < nex[u]; e++)
        ex[u][e] = (int32_t)(rnd() % (uint32_t)N);
    }
  }
  sr_scorer_run(sc, states, n, with_excl ? (const int32_t *const *)ex : NULL,
                with_excl ? nex : NULL, oi, os, oc);
  for (int u = 0; u < n; u++) {
    const float *h = states[u];
    memset(mark, 0, (size_t)N);
    for (int e = 0; e < nex[u]; e++)
      mark[ex[u][e]] = 1;
    int m_ok = 0;
    for (int32_t i = 0; i < N; i++) {
      double s = bias[i], a = fabs(bias[i]);
      for (int j = 0; j < d; j++) {
        double t = (double)h[j] * (double)out[(size_t)i * d + j];
        s += t;
        a += fabs(t);
      }
      ref[i] = s;
      mag[i] = a;
      if (!mark[i]) order[m_ok++] = i;
    }
    g_ref = ref;
    qsort(order, (size_t)m_ok, sizeof(*order), cmp_ref);
    int want = SR_MIN(k, m_ok);
    if (oc[u] != want) {
      snprintf(why, whysz, "user %d: %d results, want %d", u, oc[u], want);
      goto out;
    }
    int near_tie = 0;
    for (int j = 0; j + 1 < SR_MIN(k + 1, m_ok); j++) {
      double a = ref[order[j]], b = ref[order[j + 1]];
      if (a - b <= 1e-5 * (mag[order[j]] + mag[order[j + 1]])) near_tie = 1;
    }
    for (int j = 0; j < oc[u]; j++) {
      int32_t i = oi[(size_t)u * k + j];
      if (i < 0 || i >= N || mark[i]) {
        snprintf(why, whysz, "user %d result %d: item %d is excluded/out of range", u, j, i);
        goto out;
      }
      double s = os[(size_t)u * k + j];
      if (fabs(s - ref[i]) > 1e-4 * mag[i]) {
        snprintf(why, whysz, "user %d item %d: score %.9g, reference %.9g", u, i, s, ref[i]);
        goto out;
      }
      if (!near_tie && i != order[j]) {
        snprintf(why, whysz, "user %d result %d: item %d, reference item %d", u, j, i, order[j]);
        goto out;
      }
    }
    if (!near_tie) (*checked_lists)++;
  }
  ok = 1;
out:
  for (int u = 0; u < n; u++)
    free(ex[u]);
  free(H);
  free(states);
  free(ex);
  free(nex);
  free(oi);
  free(os);
  free(oc);
  free(ref);
  free(mag);
  free(order);
  free(mark);
  return ok;
}

TEST(batch_vs_double_reference) {
  char err[256] = "";
  sr_model_t *m = make_model(64, 5000, err, sizeof(err));
  T_ASSERT_MSG(m, "sr_model_new: %s", err);
  sr_scorer_t *sc = sr_scorer_new(m, 32, 10);
  T_ASSERT(sc);
  T_EQ_INT(sr_scorer_k(sc), 10);
  T_EQ_INT(sr_scorer_max_batch(sc), 32);
  char why[256];
  int checked = 0;
  T_ASSERT_MSG(check_run(sc, m, 32, 0, &checked, why, sizeof(why)), "full batch: %s", why);
  T_ASSERT_MSG(check_run(sc, m, 7, 1, &checked, why, sizeof(why)), "partial + excl: %s", why);
  T_ASSERT_MSG(check_run(sc, m, 1, 1, &checked, why, sizeof(why)), "single: %s", why);
  T_ASSERT_MSG(check_run(sc, m, 75, 1, &checked, why, sizeof(why)), "n > max_batch: %s", why);
  fprintf(stderr, "  %d of 115 top-K lists compared exactly (no near-ties)\n", checked);
  T_ASSERT_MSG(checked >= 100, "only %d of 115 top-K lists free of near-ties", checked);
  sr_scorer_destroy(sc);
  sr_model_destroy(m);
}

/* k larger than what remains after filtering; tiny catalogue; odd d */
TEST(k_beyond_catalogue) {
  char err[256] = "";
  sr_model_t *m = make_model(7, 12, err, sizeof(err));
  T_ASSERT_MSG(m, "sr_model_new: %s", err);
  sr_scorer_t *sc = sr_scorer_new(m, 4, 20);
  T_ASSERT(sc);
  char why[256];
  int checked = 0;
  T_ASSERT_MSG(check_run(sc, m, 4, 1, &checked, why, sizeof(why)), "%s", why);
  T_ASSERT_MSG(check_run(sc, m, 3, 0, &checked, why, sizeof(why)), "%s", why);
  sr_scorer_destroy(sc);
  sr_model_destroy(m);
  T_ASSERT(sr_scorer_new(NULL, 4, 10) == NULL);
}

/* hot reload: bigger catalogue and other d, then back to a smaller one */
TEST(set_model) {
  char err[256] = "";
  sr_model_t *a = make_model(16, 300, err, sizeof(err));
  sr_model_t *b = make_model(48, 4000, err, sizeof(err));
  T_ASSERT_MSG(a && b, "sr_model_new: %s", err);
  sr_scorer_t *sc = sr_scorer_new(a, 16, 5);
  T_ASSERT(sc);
  char why[256];
  int checked = 0;
  T_ASSERT_MSG(check_run(sc, a, 16, 1, &checked, why, sizeof(why)), "a: %s", why);
  T_EQ_INT(sr_scorer_set_model(sc, b), SR_OK);
  T_ASSERT_MSG(check_run(sc, b, 16, 1, &checked, why, sizeof(why)), "b: %s", why);
  T_EQ_INT(sr_scorer_set_model(sc, a), SR_OK);
  T_ASSERT_MSG(check_run(sc, a, 9, 0, &checked, why, sizeof(why)), "a again: %s", why);
  T_ASSERT(checked >= 35);
  sr_scorer_destroy(sc);
  sr_model_destroy(a);
  sr_model_destroy(b);
}

/* Scorer vs the untiled path (one sr_model_score, sr_rank_topk per row).
 * small_ints: parameters and states are small integers, so every score is
 * exact and ties are everywhere (the tie rule decides most lists). */
/* t_topk_same (test.h) is the parity rule. */
static int cmp_i32(const void *a, const void *b) {
  int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
  return (x > y) - (x < y);
}

static int parity_check(int32_t N, int d, int max_batch, int n, int k, int small_ints, char *why,
                        size_t whysz) {
  char err[256] = "";
  sr_model_t *m = make_model(d, N, err, sizeof(err));
  if (!m) return snprintf(why, whysz, "sr_model_new: %s", err), 0;
  size_t cnt;
  float *out = (float *)find_block(m, "item_out", &cnt);
  float *bias = (float *)find_block(m, "item_bias", &cnt);
  if (small_ints) {
    for (size_t j = 0; j < (size_t)N * d; j++)
      out[j] = (float)((int)(rnd() % 7) - 3);
    for (int32_t i = 0; i < N; i++)
      bias[i] = (float)((int)(rnd() % 5) - 2);
  }
  bias[N / 2] = NAN; /* a NaN score is never chosen, tiled or not */
  sr_scorer_t *sc = sr_scorer_new(m, max_batch, k);
  float *H = malloc((size_t)n * d * sizeof(float));
  float *S = malloc((size_t)n * N * sizeof(float));
  const float **states = malloc((size_t)n * sizeof(*states));
  int32_t **ex = calloc((size_t)n, sizeof(*ex));
  int *nex = calloc((size_t)n, sizeof(int));
  int32_t *oi = malloc((size_t)n * k * sizeof(int32_t)), *ri = malloc((size_t)k * sizeof(int32_t));
  float *os = malloc((size_t)n * k * sizeof(float)), *rs = malloc((size_t)k * sizeof(float));
  int *oc = malloc((size_t)n * sizeof(int));
  int ok = 0;
  if (!sc) {
    snprintf(why, whysz, "sr_scorer_new failed");
    goto out;
  }
  for (int u = 0; u < n; u++) {
    for (int j = 0; j < d; j++)
      H[(size_t)u * d + j] = small_ints ? (float)((int)(rnd() % 3) - 1) : frand();
    states[u] = H + (size_t)u * d;
    nex[u] = u % 4 == 0 ? 0 : (int)(rnd() % 300);
    ex[u] = malloc((size_t)(nex[u] + 4) * sizeof(int32_t));
    for (int e = 0; e < nex[u]; e++) {
      switch (rnd() % 4) {
      case 0: ex[u][e] = (int32_t)(rnd() % (uint32_t)N); break;
      case 1: ex[u][e] = (int32_t)(rnd() % 64); break; /* the start: ties at low indices */
      case 2: ex[u][e] = (int32_t)(rnd() % 2048) * 16 % N; break;   /* tile-edge-ish */
      default: ex[u][e] = e % 2 ? -1 - (int32_t)e : N + (int32_t)e; /* out of range */
      }
    }
    /* odd rows ascending (the seen sets' order: the scorer's cursor path),
     * even rows in any order (its whole-list path) */
    if (u % 2) qsort(ex[u], (size_t)nex[u], sizeof(int32_t), cmp_i32);
  }
  sr_scorer_run(sc, states, n, (const int32_t *const *)ex, nex, oi, os, oc);
  sr_model_score(m, H, n, S);
  for (int u = 0; u < n; u++) {
    int rc = sr_rank_topk(S + (size_t)u * N, N, ex[u], nex[u], k, ri, rs);
    if (oc[u] != rc) {
      snprintf(why, whysz, "user %d: %d results, untiled %d", u, oc[u], rc);
      goto out;
    }
    /* Tiles and the whole catalogue are sgemm calls of different shapes:
     * scores agree within a tolerance, not bit for bit (no BLAS promises
     * that), so an item may trade places with one whose score is a
     * near-tie, or with the first one left out at the list's end. */
    for (int j = 0; j < rc; j++)
      if (!t_topk_same(oi + (size_t)u * k, os + (size_t)u * k, ri, rs, rc, j)) {
        snprintf(why, whysz, "user %d result %d: item %d score %.9g, untiled item %d score %.9g", u,
                 j, oi[(size_t)u * k + j], os[(size_t)u * k + j], ri[j], rs[j]);
        goto out;
      }
  }
  ok = 1;
out:
  for (int u = 0; u < n; u++)
    free(ex[u]);
  free(ex);
  free(nex);
  free(H);
  free(S);
  free(states);
  free(oi);
  free(ri);
  free(os);
  free(rs);
  free(oc);
  sr_scorer_destroy(sc);
  sr_model_destroy(m);
  return ok;
}

TEST(tiled_equals_untiled) {
  char why[256];
  /* 60000 x 64 rows (15 MB) is several tiles; 5 rows fit one */
  T_ASSERT_MSG(parity_check(60000, 16, 64, 64, 10, 1, why, sizeof(why)), "ties: %s", why);
  T_ASSERT_MSG(parity_check(60000, 16, 64, 64, 10, 0, why, sizeof(why)), "floats: %s", why);
  T_ASSERT_MSG(parity_check(60000, 16, 64, 5, 10, 1, why, sizeof(why)), "5 rows: %s", why);
  /* k not a multiple of 16, many small tiles, n > max_batch */
  T_ASSERT_MSG(parity_check(50001, 8, 200, 230, 37, 1, why, sizeof(why)), "k=37: %s", why);
  T_ASSERT_MSG(parity_check(20000, 64, 256, 256, 10, 0, why, sizeof(why)), "d=64: %s", why);
}

/* The row API (serve's path: states written straight into the scorer's
 * matrix) gives exactly what sr_scorer_run gives for the same states: one
 * code path, same shape, so bit for bit; rows keep their contents across
 * runs; out-of-range rows are NULL; n past max_batch is clamped. */
TEST(rows_equal_run) {
  char err[256] = "";
  sr_model_t *m = make_model(24, 3000, err, sizeof(err));
  T_ASSERT_MSG(m, "sr_model_new: %s", err);
  const int B = 8, k = 7, d = 24;
  sr_scorer_t *sc = sr_scorer_new(m, B, k);
  T_ASSERT(sc);
  T_ASSERT(sr_scorer_row(sc, -1) == NULL && sr_scorer_row(sc, B) == NULL);
  float *st = malloc((size_t)B * d * sizeof(float));
  const float *ptrs[8];
  int32_t ex_store[8][5];
  const int32_t *ex[8];
  int nex[8];
  for (int u = 0; u < B; u++) {
    for (int j = 0; j < d; j++)
      st[u * d + j] = frand();
    ptrs[u] = st + (size_t)u * d;
    nex[u] = u % 3 == 0 ? 0 : 5;
    for (int e = 0; e < 5; e++)
      ex_store[u][e] = (int32_t)(e * 600 + u * 7); /* ascending */
    ex[u] = ex_store[u];
  }
  int32_t ai[8 * 7], bi[8 * 7];
  float as[8 * 7], bs[8 * 7];
  int ac[8], bc[8];
  for (int n = 1; n <= B; n += 3) {
    sr_scorer_run(sc, ptrs, n, ex, nex, ai, as, ac);
    for (int u = 0; u < n; u++)
      memcpy(sr_scorer_row(sc, u), ptrs[u], (size_t)d * sizeof(float));
    sr_scorer_run_rows(sc, n, ex, nex, bi, bs, bc);
    for (int u = 0; u < n; u++) {
      T_EQ_INT(bc[u], ac[u]);
      T_EQ_INT(bc[u], k);
      T_ASSERT_MSG(!memcmp(ai + u * k, bi + u * k, (size_t)k * sizeof(int32_t)) &&
                       !memcmp(as + u * k, bs + u * k, (size_t)k * sizeof(float)),
                   "n=%d row %d differs", n, u);
      for (int j = 0; j < k; j++)
        for (int e = 0; e < nex[u]; e++)
          T_ASSERT(bi[u * k + j] != ex[u][e]);
    }
    /* a second run over the same rows: same lists (a run does not change them) */
    sr_scorer_run_rows(sc, n, ex, nex, ai, as, ac);
    T_ASSERT(!memcmp(ai, bi, (size_t)n * k * sizeof(int32_t)));
  }
  sr_scorer_run_rows(sc, B + 5, ex, nex, bi, bs, bc); /* clamped to B rows */
  T_EQ_INT(bc[B - 1], k);
  free(st);
  sr_scorer_destroy(sc);
  sr_model_destroy(m);
}

TEST_MAIN(RUN(batch_vs_double_reference); RUN(k_beyond_catalogue); RUN(set_model);
          RUN(tiled_equals_untiled); RUN(rows_equal_run))
