/*
 * rank: top-K over one score row with the seen-item filter fused in.
 *
 * The row is scanned once, in index order, against a bounded heap of K
 * entries whose root is the worst kept entry. Because items arrive in
 * increasing index order, an item with a score equal to the root's can
 * never beat it (the root has the lower index), so the only test on the hot
 * path is `score > threshold` (threshold = root score). NaN fails that test
 * for free. The scan checks 32 scores at a time with vector compares and
 * drops the block when none passes: after the first few thousand items
 * almost every block is rejected with 8 compares, an OR tree and a branch;
 * a block that passes yields a bit mask and only its set bits are visited
 * (~K ln(N/K) blocks pass per row). This keeps ranking far below the cost
 * of the sgemm that produced the row.
 *
 * The heap lives in the caller's out_idx/out_score arrays (any k, no
 * allocation) and is heap-sorted into best-first order at the end.
 *
 * Exclusions are only consulted for items that pass the threshold. The
 * first SR_RANK_EXCL_FAST (4096) of them go into an open-addressing set on
 * the stack (32 KB), built per call; entries beyond that (rare: a user with
 * thousands of filtered items) are checked by a linear scan per candidate.
 * sr_rank_position handles any number in windows of 4096 (see there).
 * Duplicates and out-of-range exclusions are harmless either way.
 *
 * Ordering (the serve/eval parity contract, rank.h): higher score first,
 * equal scores by lower index first; NaN is never chosen and, for
 * sr_rank_position, ranks after every number.
 *
 * Thread-safe, allocation-free, no dependencies.
 */
#include <math.h>
#include <string.h>

#include "streamrec/common.h" /* SR_MIN only */
#include "streamrec/rank.h"

#define SR_RANK_EXCL_FAST 4096
#define EXCL_SET_CAP (2 * SR_RANK_EXCL_FAST)
#define BLOCK 32 /* scores per rejection test (block_mask); bits of a uint32_t */

typedef float v4f __attribute__((vector_size(16)));
typedef int32_t v4i __attribute__((vector_size(16)));

typedef struct excl_s {
  int32_t *set; /* NULL: linear scan of list (or nothing to exclude) */
  uint32_t mask;
  int shift;
  const int32_t *list;
  int n_list;
} excl_t;

static inline uint32_t excl_hash(const excl_t *x, int32_t v) {
  return ((uint32_t)v * 2654435761u) >> x->shift;
}

/* Inserts v into the set; returns 1 when it was not there. */
static inline int set_add(const excl_t *x, int32_t v) {
  uint32_t h = excl_hash(x, v);
  for (;;) {
    int32_t e = x->set[h];
    if (e == v) return 0;
    if (e == -1) break;
    h = (h + 1) & x->mask;
  }
  x->set[h] = v;
  return 1;
}

/* Sizes and clears the set for up to m entries. buf has EXCL_SET_CAP. */
static void set_reset(excl_t *x, int32_t *buf, int m) {
  int bits = 4;
  while ((1 << bits) < 2 * m)
    bits++;
  x->set = buf;
  x->mask = (1u << bits) - 1;
  x->shift = 32 - bits;
  memset(buf, 0xFF, ((size_t)x->mask + 1) * sizeof(*buf)); /* -1: empty */
}

/* Builds the filter: the first SR_RANK_EXCL_FAST entries in the set, the
 * rest (if any) scanned linearly. */
static void excl_init(excl_t *x, int32_t *buf, const int32_t *excl, int n_excl, int32_t n) {
  memset(x, 0, sizeof(*x));
  if (!excl || n_excl <= 0) return;
  int m = SR_MIN(n_excl, SR_RANK_EXCL_FAST);
  set_reset(x, buf, m);
  for (int e = 0; e < m; e++)
    if (excl[e] >= 0 && excl[e] < n) set_add(x, excl[e]);
  x->list = excl + m;
  x->n_list = n_excl - m;
}

static inline int excl_has(const excl_t *x, int32_t v) {
  if (x->set) {
    uint32_t h = excl_hash(x, v);
    for (;;) {
      int32_t e = x->set[h];
      if (e == v) return 1;
      if (e == -1) break;
      h = (h + 1) & x->mask;
    }
  }
  for (int e = 0; e < x->n_list; e++)
    if (x->list[e] == v) return 1;
  return 0;
}

/* a is worse than b under the ordering (NaN never enters the heap) */
static inline int worse(float sa, int32_t ia, float sb, int32_t ib) {
  return sa < sb || (sa == sb && ia > ib);
}

/* Min-heap (root = worst) over hi/hs[0..cnt). */
static inline void sift_down(int32_t *hi, float *hs, int cnt, int pos) {
  int32_t idx = hi[pos];
  float sc = hs[pos];
  for (;;) {
    int c = 2 * pos + 1;
    if (c >= cnt) break;
    if (c + 1 < cnt && worse(hs[c + 1], hi[c + 1], hs[c], hi[c])) c++;
    if (!worse(hs[c], hi[c], sc, idx)) break;
    hi[pos] = hi[c];
    hs[pos] = hs[c];
    pos = c;
  }
  hi[pos] = idx;
  hs[pos] = sc;
}

static inline void sift_up(int32_t *hi, float *hs, int pos) {
  int32_t idx = hi[pos];
  float sc = hs[pos];
  while (pos > 0) {
    int p = (pos - 1) / 2;
    if (!worse(sc, idx, hs[p], hi[p])) break;
    hi[pos] = hi[p];
    hs[pos] = hs[p];
    pos = p;
  }
  hi[pos] = idx;
  hs[pos] = sc;
}

/* Nonzero when any of scores[0..BLOCK) > thr (NaN compares false). The
 * compares are OR-ed lane-wise and reduced once per block: ~1 instruction
 * per score for a rejected block with plain SSE2 (no -march needed). */
/* Bit j set when scores[j] > thr, j < BLOCK (NaN compares false); 0 when
 * no score passes, which is decided first with one OR-tree of compares and
 * a single mask extraction: ~1 instruction per score for a rejected block.
 * SSE2 is in every x86-64 baseline, so no -march flag is needed. */
#if defined(__SSE2__)
#include <emmintrin.h>
static inline uint32_t block_mask(const float *s, float thr) {
  const __m128 t = _mm_set1_ps(thr);
  __m128 c0 = _mm_cmpgt_ps(_mm_loadu_ps(s), t), c1 = _mm_cmpgt_ps(_mm_loadu_ps(s + 4), t);
  __m128 c2 = _mm_cmpgt_ps(_mm_loadu_ps(s + 8), t), c3 = _mm_cmpgt_ps(_mm_loadu_ps(s + 12), t);
  __m128 c4 = _mm_cmpgt_ps(_mm_loadu_ps(s + 16), t), c5 = _mm_cmpgt_ps(_mm_loadu_ps(s + 20), t);
  __m128 c6 = _mm_cmpgt_ps(_mm_loadu_ps(s + 24), t), c7 = _mm_cmpgt_ps(_mm_loadu_ps(s + 28), t);
  __m128 any = _mm_or_ps(_mm_or_ps(_mm_or_ps(c0, c1), _mm_or_ps(c2, c3)),
                         _mm_or_ps(_mm_or_ps(c4, c5), _mm_or_ps(c6, c7)));
  if (!_mm_movemask_ps(any)) return 0;
  return (uint32_t)_mm_movemask_ps(c0) | (uint32_t)_mm_movemask_ps(c1) << 4 |
         (uint32_t)_mm_movemask_ps(c2) << 8 | (uint32_t)_mm_movemask_ps(c3) << 12 |
         (uint32_t)_mm_movemask_ps(c4) << 16 | (uint32_t)_mm_movemask_ps(c5) << 20 |
         (uint32_t)_mm_movemask_ps(c6) << 24 | (uint32_t)_mm_movemask_ps(c7) << 28;
}
#else
static inline v4i gt4(const float *s, v4f t) {
  v4f a;
  memcpy(&a, s, sizeof(a)); /* unaligned load */
  return a > t;
}
static inline uint32_t block_mask(const float *s, float thr) {
  const v4f t = {thr, thr, thr, thr};
  v4i m = ((gt4(s, t) | gt4(s + 4, t)) | (gt4(s + 8, t) | gt4(s + 12, t))) |
          ((gt4(s + 16, t) | gt4(s + 20, t)) | (gt4(s + 24, t) | gt4(s + 28, t)));
  if (!(m[0] | m[1] | m[2] | m[3])) return 0;
  uint32_t mask = 0;
  for (int j = 0; j < BLOCK; j++)
    mask |= (uint32_t)(s[j] > thr) << j;
  return mask;
}
#endif

/* The threshold scan over whole blocks, from i while i + BLOCK <= n: the
 * hot loop of sr_rank_topk. Written once as a macro so that it can be
 * compiled twice, with the baseline SSE2 block_mask and (on x86-64 with GCC
 * or Clang) with an AVX2 one chosen at run time: the AVX2 test is half the
 * instructions per block, and the scan is what top-K costs once the scores
 * are in cache (src/score tiles the catalogue so that they are). Both make
 * the same comparisons, so they select exactly the same items. Returns the
 * next unscanned index; *thr is updated. */
#define DEFINE_SCAN_BLOCKS(ATTR, NAME, MASK_FN)                                                    \
  ATTR static int32_t NAME(const float *scores, int32_t i, int32_t n, const excl_t *x, int k,      \
                           int32_t *out_idx, float *out_score, float *thr) {                       \
    float t = *thr;                                                                                \
    for (; i + BLOCK <= n; i += BLOCK) {                                                           \
      uint32_t mask = MASK_FN(scores + i, t);                                                      \
      while (mask) { /* ~1 set bit per passing block: visit only those */                          \
        const int32_t c = i + __builtin_ctz(mask);                                                 \
        mask &= mask - 1;                                                                          \
        const float s = scores[c];                                                                 \
        if (s > t && !excl_has(x, c)) { /* t may have risen meanwhile */                           \
          out_idx[0] = c;                                                                          \
          out_score[0] = s;                                                                        \
          sift_down(out_idx, out_score, k, 0);                                                     \
          t = out_score[0];                                                                        \
        }                                                                                          \
      }                                                                                            \
    }                                                                                              \
    *thr = t;                                                                                      \
    return i;                                                                                      \
  }

DEFINE_SCAN_BLOCKS(, scan_blocks, block_mask)

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define HAVE_SCAN_AVX2 1
#define SR_AVX2 __attribute__((target("avx2")))
/* block_mask with 8-wide compares (_CMP_GT_OQ: false for NaN, like SSE's). */
SR_AVX2 static inline uint32_t block_mask_avx2(const float *s, float thr) {
  const __m256 t = _mm256_set1_ps(thr);
  __m256 c0 = _mm256_cmp_ps(_mm256_loadu_ps(s), t, _CMP_GT_OQ);
  __m256 c1 = _mm256_cmp_ps(_mm256_loadu_ps(s + 8), t, _CMP_GT_OQ);
  __m256 c2 = _mm256_cmp_ps(_mm256_loadu_ps(s + 16), t, _CMP_GT_OQ);
  __m256 c3 = _mm256_cmp_ps(_mm256_loadu_ps(s + 24), t, _CMP_GT_OQ);
  __m256 any = _mm256_or_ps(_mm256_or_ps(c0, c1), _mm256_or_ps(c2, c3));
  if (_mm256_testz_ps(any, any)) return 0;
  return (uint32_t)_mm256_movemask_ps(c0) | (uint32_t)_mm256_movemask_ps(c1) << 8 |
         (uint32_t)_mm256_movemask_ps(c2) << 16 | (uint32_t)_mm256_movemask_ps(c3) << 24;
}

DEFINE_SCAN_BLOCKS(SR_AVX2, scan_blocks_avx2, block_mask_avx2)
#endif

int sr_rank_topk(const float *scores, int32_t n, const int32_t *excl, int n_excl, int k,
                 int32_t *out_idx, float *out_score) {
  if (k <= 0 || n <= 0) return 0;
  int32_t setbuf[EXCL_SET_CAP];
  excl_t x;
  excl_init(&x, setbuf, excl, n_excl, n);

  /* fill: the first k eligible items */
  int cnt = 0;
  int32_t i = 0;
  for (; i < n && cnt < k; i++) {
    float s = scores[i];
    if (isnan(s) || excl_has(&x, i)) continue;
    out_idx[cnt] = i;
    out_score[cnt] = s;
    sift_up(out_idx, out_score, cnt);
    cnt++;
  }

  if (cnt == k) {
    float thr = out_score[0];
    /* scalar up to a block boundary is not needed: unaligned loads */
#ifdef HAVE_SCAN_AVX2
    if (__builtin_cpu_supports("avx2"))
      i = scan_blocks_avx2(scores, i, n, &x, k, out_idx, out_score, &thr);
    else
#endif
      i = scan_blocks(scores, i, n, &x, k, out_idx, out_score, &thr);
    for (; i < n; i++) {
      float s = scores[i];
      if (s > thr && !excl_has(&x, i)) {
        out_idx[0] = i;
        out_score[0] = s;
        sift_down(out_idx, out_score, k, 0);
        thr = out_score[0];
      }
    }
  }

  /* heap-sort: move the worst to the end repeatedly -> best first */
  for (int m = cnt - 1; m > 0; m--) {
    int32_t ti = out_idx[0];
    float ts = out_score[0];
    out_idx[0] = out_idx[m];
    out_score[0] = out_score[m];
    out_idx[m] = ti;
    out_score[m] = ts;
    sift_down(out_idx, out_score, m, 0);
  }
  return cnt;
}

/* Does item j beat target (score t, tnan = isnan(t)) under the ordering? */
static inline int beats(const float *scores, int32_t j, int32_t target, float t, int tnan) {
  float v = scores[j];
  if (tnan) return j != target && (!isnan(v) || j < target);
  return j < target ? v >= t : v > t; /* j == target: v > v is false */
}

/* Returns -1 when target is out of range. An excluded target gets the rank
 * it would have among the remaining items.
 *
 * Counts the beaters over the whole row (no filter in the loop), then
 * subtracts the distinct excluded beaters. Exclusions are taken in windows
 * of SR_RANK_EXCL_FAST: a window's beating entries go into the stack set,
 * entries of earlier windows are struck out of it (tombstone -2) so each
 * item is subtracted once, and what is left is counted. O(n + n_excl^2 /
 * 4096), allocation-free, for any number of exclusions. */
int32_t sr_rank_position(const float *scores, int32_t n, const int32_t *excl, int n_excl,
                         int32_t target) {
  if (target < 0 || target >= n) return -1;
  const float t = scores[target];
  const int tnan = isnan(t);
  int32_t beat = 0;
  if (tnan) {
    /* NaN ranks after every number; NaNs among themselves by index */
    for (int32_t j = 0; j < n; j++)
      beat += !isnan(scores[j]) || j < target;
  } else {
    for (int32_t j = 0; j < target; j++)
      beat += scores[j] >= t;
    for (int32_t j = target + 1; j < n; j++)
      beat += scores[j] > t;
  }
  if (!excl || n_excl <= 0) return beat;

  int32_t setbuf[EXCL_SET_CAP];
  excl_t x;
  memset(&x, 0, sizeof(x));
  for (int w0 = 0; w0 < n_excl; w0 += SR_RANK_EXCL_FAST) {
    int wn = SR_MIN(SR_RANK_EXCL_FAST, n_excl - w0);
    set_reset(&x, setbuf, wn);
    int live = 0;
    for (int e = w0; e < w0 + wn; e++) {
      int32_t v = excl[e];
      if (v >= 0 && v < n && beats(scores, v, target, t, tnan)) live += set_add(&x, v);
    }
    for (int e = 0; e < w0 && live > 0; e++) { /* already subtracted by a window before */
      int32_t v = excl[e];
      if (v < 0 || v >= n) continue;
      uint32_t h = excl_hash(&x, v);
      for (;;) {
        int32_t s = setbuf[h];
        if (s == v) {
          setbuf[h] = -2;
          live--;
          break;
        }
        if (s == -1) break;
        h = (h + 1) & x.mask;
      }
    }
    beat -= live;
  }
  return beat;
}
