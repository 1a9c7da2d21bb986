/*
 * 0030-rank: sr_rank_topk and sr_rank_position against a naive full sort of
 * the filtered row under the tie rule (higher score first, equal scores by
 * lower index, NaN never chosen / ranked last). Random rows with many ties,
 * NaN and infinities, k beyond what remains, duplicate and out-of-range
 * exclusions, and more exclusions than the fast set holds.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "streamrec/common.h"
#include "streamrec/rank.h"
#include "test.h"

static uint64_t rng = 0x9E3779B97F4A7C15ULL;
static uint32_t rnd(void) {
  rng ^= rng << 13;
  rng ^= rng >> 7;
  rng ^= rng << 17;
  return (uint32_t)(rng >> 16);
}

static const float *g_scores;
/* naive ordering: NaN last, then score desc, then index asc */
static int cmp_naive(const void *pa, const void *pb) {
  int32_t a = *(const int32_t *)pa, b = *(const int32_t *)pb;
  float sa = g_scores[a], sb = g_scores[b];
  int na = isnan(sa), nb = isnan(sb);
  if (na != nb) return na - nb;
  if (!na) {
    if (sa > sb) return -1;
    if (sa < sb) return 1;
  }
  return (a > b) - (a < b);
}

/* Fills order with every non-excluded index (plus `also` when >= 0) sorted
 * naively; returns the count. */
static int naive_order(const float *s, int32_t n, const int32_t *excl, int n_excl, int32_t also,
                       int32_t *order) {
  int m = 0;
  char *mark = calloc((size_t)n + 1, 1);
  for (int e = 0; e < n_excl; e++)
    if (excl[e] >= 0 && excl[e] < n) mark[excl[e]] = 1;
  for (int32_t i = 0; i < n; i++)
    if (i == also || !mark[i]) order[m++] = i;
  free(mark);
  g_scores = s;
  qsort(order, (size_t)m, sizeof(*order), cmp_naive);
  return m;
}

static void fill_row(float *s, int32_t n, int mode) {
  for (int32_t i = 0; i < n; i++) {
    uint32_t r = rnd();
    switch (mode) {
    case 0: /* heavy ties */ s[i] = (float)(r % 7) - 3.0f; break;
    case 1: /* continuous */ s[i] = (float)((double)r / 4294967296.0 * 2.0 - 1.0); break;
    case 2: /* ascending: every item replaces the heap root */ s[i] = (float)i; break;
    default: /* ties + specials */
      s[i] = (float)(r % 5);
      if (r % 11 == 0) s[i] = NAN;
      if (r % 97 == 0) s[i] = INFINITY;
      if (r % 89 == 0) s[i] = -INFINITY;
      if (r % 83 == 0) s[i] = -0.0f;
      if (r % 79 == 0) s[i] = 0.0f;
      break;
    }
  }
}

/* One comparison of topk and position with the naive ordering. */
static int check_case(const float *s, int32_t n, const int32_t *excl, int n_excl, int k,
                      int32_t *order, int32_t *oi, float *os, char *why, size_t whysz) {
  int m = naive_order(s, n, excl, n_excl, -1, order);
  int eligible = 0;
  while (eligible < m && !isnan(s[order[eligible]]))
    eligible++;
  int want = k < 0 ? 0 : SR_MIN(k, eligible);
  for (int j = 0; j < k + 2 && k >= 0; j++)
    oi[j] = -77;
  int got = sr_rank_topk(s, n, excl, n_excl, k, oi, os);
  if (got != want) {
    snprintf(why, whysz, "n=%d k=%d n_excl=%d: got %d results, want %d", n, k, n_excl, got, want);
    return 0;
  }
  for (int j = 0; j < got; j++) {
    if (oi[j] != order[j] || memcmp(&os[j], &s[order[j]], sizeof(float)) != 0) {
      snprintf(why, whysz, "n=%d k=%d n_excl=%d: result %d is %d (%g), want %d (%g)", n, k, n_excl,
               j, oi[j], os[j], order[j], s[order[j]]);
      return 0;
    }
  }
  if (k >= 0 && oi[k] != -77) {
    snprintf(why, whysz, "wrote past k");
    return 0;
  }
  /* position of non-excluded items = their place in the naive order (all
   * of them for short rows, a sample plus the ends for long ones) */
  for (int q = 0; q < SR_MIN(m, 60); q++) {
    int j = m <= 60 ? q : q < 5 ? q : q < 10 ? m - 1 - (q - 5) : (int)(rnd() % (uint32_t)m);
    int32_t p = sr_rank_position(s, n, excl, n_excl, order[j]);
    if (p != j) {
      snprintf(why, whysz, "n=%d n_excl=%d: position(%d) = %d, want %d", n, n_excl, order[j], p, j);
      return 0;
    }
  }
  return 1;
}

TEST(random_rows_vs_naive) {
  enum { NMAX = 3000 };
  float *s = malloc(NMAX * sizeof(float));
  int32_t *order = malloc(NMAX * sizeof(int32_t)), *oi = malloc((NMAX + 16) * sizeof(int32_t));
  float *os = malloc((NMAX + 16) * sizeof(float));
  int32_t excl[600];
  char why[256];
  for (int iter = 0; iter < 400; iter++) {
    int32_t n = (int32_t)(rnd() % (iter < 50 ? 40 : NMAX));
    fill_row(s, n, iter % 4);
    int n_excl = (int)(rnd() % 600);
    if (iter % 5 == 0) n_excl = 0;
    for (int e = 0; e < n_excl; e++) {
      uint32_t r = rnd();
      if (r % 10 == 0)
        excl[e] = (int32_t)(r % 50) - 60; /* negative */
      else if (r % 10 == 1)
        excl[e] = n + (int32_t)(r % 50); /* past the end */
      else if (r % 10 == 2 && e > 0)
        excl[e] = excl[rnd() % (uint32_t)e]; /* duplicate */
      else
        excl[e] = n ? (int32_t)(r % (uint32_t)n) : 0;
    }
    int k;
    switch (iter % 6) {
    case 0: k = 10; break;
    case 1: k = 1; break;
    case 2: k = n + 5; break; /* more than remain */
    case 3: k = SR_MAX(0, n - n_excl / 2); break;
    case 4: k = 0; break;
    default: k = (int)(rnd() % 100); break;
    }
    if (k > NMAX + 10) k = NMAX + 10;
    T_ASSERT_MSG(check_case(s, n, n_excl ? excl : NULL, n_excl, k, order, oi, os, why, sizeof(why)),
                 "iter %d: %s", iter, why);
  }
  free(s);
  free(order);
  free(oi);
  free(os);
}

/* Exact top-K on a hand-made row (content, not just parity). */
TEST(exact_small) {
  const float s[] = {1.0f, 3.0f, NAN, 3.0f, 2.0f, 3.0f, -1.0f, 2.0f};
  const int32_t ex[] = {3, 3, 99, -1};
  int32_t oi[8];
  float os[8];
  int got = sr_rank_topk(s, 8, ex, 4, 4, oi, os);
  T_EQ_INT(got, 4);
  const int32_t want[] = {1, 5, 4, 7};
  for (int j = 0; j < 4; j++)
    T_EQ_INT(oi[j], want[j]);
  T_ASSERT(os[0] == 3.0f && os[1] == 3.0f && os[2] == 2.0f && os[3] == 2.0f);
  /* all remaining items: NaN and the excluded one never appear */
  got = sr_rank_topk(s, 8, ex, 4, 8, oi, os);
  T_EQ_INT(got, 6);
  T_EQ_INT(oi[4], 0);
  T_EQ_INT(oi[5], 6);
  /* positions */
  T_EQ_INT(sr_rank_position(s, 8, ex, 4, 1), 0);
  T_EQ_INT(sr_rank_position(s, 8, ex, 4, 5), 1);
  T_EQ_INT(sr_rank_position(s, 8, ex, 4, 3), 1); /* excluded target: among the rest */
  T_EQ_INT(sr_rank_position(s, 8, NULL, 0, 3), 1);
  T_EQ_INT(sr_rank_position(s, 8, NULL, 0, 5), 2);
  T_EQ_INT(sr_rank_position(s, 8, ex, 4, 2), 6); /* NaN after all numbers */
  T_EQ_INT(sr_rank_position(s, 8, ex, 4, 8), -1);
  T_EQ_INT(sr_rank_position(s, 8, ex, 4, -1), -1);
  /* degenerate arguments */
  T_EQ_INT(sr_rank_topk(s, 0, NULL, 0, 5, oi, os), 0);
  T_EQ_INT(sr_rank_topk(s, 8, NULL, 0, 0, oi, os), 0);
  T_EQ_INT(sr_rank_topk(s, 8, NULL, 0, -3, oi, os), 0);
  const float allnan[] = {NAN, NAN, NAN};
  T_EQ_INT(sr_rank_topk(allnan, 3, NULL, 0, 2, oi, os), 0);
}

/* Large rows (block-scan path) with K=10, and > 4096 exclusions (fallback). */
TEST(large_rows_and_many_exclusions) {
  enum { N = 100000 };
  float *s = malloc(N * sizeof(float));
  int32_t *order = malloc(N * sizeof(int32_t)), oi[64];
  float os[64];
  int32_t *excl = malloc(9000 * sizeof(int32_t));
  char why[256];
  for (int iter = 0; iter < 6; iter++) {
    fill_row(s, N, iter % 4);
    /* 4096: largest fast set; 6000: scan / two windows; 9000: three windows
     * of 300 distinct values repeated (duplicates across windows) */
    int n_excl = iter < 3 ? 4096 : iter < 5 ? 6000 : 9000;
    for (int e = 0; e < n_excl; e++)
      excl[e] = iter < 5 ? (int32_t)(rnd() % N) : (int32_t)(rnd() % 300) * 331;
    /* exclude the current best items too so the filter matters */
    int m = naive_order(s, N, NULL, 0, -1, order);
    (void)m;
    for (int e = 0; e < 20; e++)
      excl[e] = order[e * 2];
    int k = iter % 2 ? 10 : 50;
    int mm = naive_order(s, N, excl, n_excl, -1, order);
    int got = sr_rank_topk(s, N, excl, n_excl, k, oi, os);
    T_EQ_INT(got, SR_MIN(k, mm));
    for (int j = 0; j < got; j++)
      T_ASSERT_MSG(oi[j] == order[j], "iter %d result %d: %d want %d", iter, j, oi[j], order[j]);
    for (int j = 0; j < 30; j++) {
      int32_t t = order[j < 3 ? j : j < 6 ? mm - 1 - (j - 3) : (int)((size_t)rnd() % (size_t)mm)];
      int32_t want = -1;
      for (int q = 0; q < mm; q++)
        if (order[q] == t) want = q;
      T_EQ_INT(sr_rank_position(s, N, excl, n_excl, t), want);
    }
    if (iter == 0) T_ASSERT(check_case(s, 2000, excl, 300, 10, order, oi, os, why, sizeof(why)));
  }
  free(s);
  free(order);
  free(excl);
}

TEST_MAIN(RUN(exact_small); RUN(random_rows_vs_naive); RUN(large_rows_and_many_exclusions))
