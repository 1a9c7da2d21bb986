/*
 * score: micro-batch scoring = gather states, one sgemm, top-K per row.
 *
 * Why batched: scoring a user alone is an sgemv that streams the whole
 * item_out matrix (n_items x d floats) from memory for 2 flops per float;
 * a batch of B users reuses each streamed row B times, turning a memory-
 * bound loop into a compute-bound sgemm (bench/kernel measures both).
 *
 * Why tiled: the B x n_items score matrix of a whole batch (100 MB at 100k
 * items x 256 users) does not fit any cache, and it would cross memory
 * three times (bias copy, sgemm read-modify-write, top-K read). The
 * catalogue is therefore scored in item tiles sized so that one tile of
 * all B rows (SR_SCORE_TILE_BYTES, ~4 MB: both cores' L2) stays in cache
 * from the bias copy to the top-K scan; item_out is still streamed once
 * per batch (one sgemm per tile, B rows each). bench/kernel: 100k x 256
 * went from 52% to ~70% of the reference sgemm (docs/PERFORMANCE.md).
 *
 * Top-K across tiles uses sr_rank_topk unchanged (the serve/eval parity
 * contract lives there): each tile row is preceded by a prefix of k slots
 * holding the user's best k so far (best first; NaN where fewer), so
 * ranking [prefix | tile] continues the selection. This is exact under
 * rank.h's tie rule because every carried item has a lower index than
 * every tile item and the carried list is already in tie-rule order, so
 * local positions order ties like global indices. The seen-item filter is
 * applied by writing NaN over the tile's excluded scores (NaN is never
 * chosen, exactly like an excluded item). Scores are those of one
 * sr_model_score call over the same batch up to BLAS rounding (model.c: not
 * bit for bit on every kernel; every tile holds at least ~0.4M scores, so
 * OpenBLAS never takes its small-matrix kernel for a tile), and the lists
 * equal sr_model_score + sr_rank_topk over whole rows up to near-ties
 * (tests/unit/0031-score).
 *
 * The scorer owns two 64-byte-aligned buffers sized once: H (max_batch x
 * state_size, the gathered states, contiguous as sgemm wants them) and the
 * tile (max_batch rows of kp + tile items). sr_scorer_run gathers states
 * into H; serve writes each state into its H row directly (sr_scorer_row)
 * and runs sr_scorer_run_rows, so a state is copied once on its way from
 * the user record to sgemm. Neither run allocates; results accumulate in
 * the caller's output arrays.
 *
 * Batches larger than max_batch are accepted and scored in max_batch
 * slices (the header asks for n <= max_batch; this is only a safety net).
 *
 * Thread: a scorer belongs to one thread (its buffers are scratch); the
 * model it borrows is immutable and may be shared.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "streamrec/rank.h"
#include "streamrec/score.h"

/* Bytes of one tile of scores (all rows of a batch). Measured on a 2-core
 * EPYC (2 MB L2 per core, 2 BLAS threads, bench/kernel): 2-4 MB is best at
 * 100k items x 256 users; much smaller tiles lose to per-call sgemm
 * overhead, much larger ones spill to memory. */
#define SR_SCORE_TILE_BYTES (4u << 20)
/* Fewest items per tile whatever max_batch is (per-sgemm-call overhead). */
#define SR_SCORE_TILE_MIN 1024
#define ALIGN_FLOATS 16 /* 64 bytes */

struct sr_scorer_s {
  const sr_model_t *m;
  int max_batch;
  int k;
  int kp; /* k rounded up to ALIGN_FLOATS: room for the carried top-K */
  int state_size;
  int32_t n_items;
  float *H;
  float *T;            /* tile: max_batch rows of kp + tile_items floats */
  int32_t *carry;      /* k: indices of the carried top-K of one user */
  int *cur;            /* max_batch: per row, next exclusion to apply (ascending lists) */
  size_t h_cap, t_cap; /* floats allocated */
};

static size_t round_up(size_t v, size_t a) { return (v + a - 1) / a * a; }

/* 64-byte-aligned float buffer, or NULL (size overflow or no memory). */
static float *alloc_floats(size_t a, size_t b) {
  if (a && b > SIZE_MAX / sizeof(float) / a) return NULL;
  size_t bytes = a * b * sizeof(float);
  bytes = (bytes + 63) & ~(size_t)63;
  if (bytes == 0) bytes = 64;
  return aligned_alloc(64, bytes);
}

/* Items per tile at full batch for a catalogue of n: the byte budget split
 * over max_batch rows, at least SR_SCORE_TILE_MIN, at most the catalogue,
 * a multiple of ALIGN_FLOATS. */
static size_t tile_items(const sr_scorer_t *sc, int32_t n) {
  size_t t = SR_SCORE_TILE_BYTES / sizeof(float) / (size_t)sc->max_batch;
  t = t > (size_t)sc->kp ? t - (size_t)sc->kp : 0;
  if (t < SR_SCORE_TILE_MIN) t = SR_SCORE_TILE_MIN;
  t = t / ALIGN_FLOATS * ALIGN_FLOATS;
  if (t > round_up((size_t)n, ALIGN_FLOATS)) t = round_up((size_t)n, ALIGN_FLOATS);
  return t;
}

sr_scorer_t *sr_scorer_new(const sr_model_t *m, int max_batch, int k) {
  if (!m || max_batch < 1 || k < 1 || k > INT32_MAX - ALIGN_FLOATS) return NULL;
  sr_scorer_t *sc = sr_calloc(1, sizeof(*sc));
  sc->max_batch = max_batch;
  sc->k = k;
  sc->kp = (int)round_up((size_t)k, ALIGN_FLOATS);
  sc->carry = malloc((size_t)k * sizeof(int32_t));
  sc->cur = malloc((size_t)max_batch * sizeof(int));
  if (!sc->carry || !sc->cur || sr_scorer_set_model(sc, m) != SR_OK) {
    sr_scorer_destroy(sc);
    return NULL;
  }
  return sc;
}

void sr_scorer_destroy(sr_scorer_t *sc) {
  if (!sc) return;
  free(sc->H);
  free(sc->T);
  free(sc->carry);
  free(sc->cur);
  sr_free(sc);
}

sr_err_t sr_scorer_set_model(sr_scorer_t *sc, const sr_model_t *m) {
  if (!m) return SR_ERR_INVALID_ARG;
  const int ss = sr_model_state_size(m);
  const int32_t n = sr_model_n_items(m);
  const size_t row = (size_t)sc->kp + tile_items(sc, n);
  const size_t h_need = (size_t)sc->max_batch * (size_t)ss;
  const size_t t_need = (size_t)sc->max_batch * row;
  /* keep buffers that fit unless they are more than twice too big */
  int new_h = !sc->H || h_need > sc->h_cap || h_need < sc->h_cap / 2;
  int new_t = !sc->T || t_need > sc->t_cap || t_need < sc->t_cap / 2;
  float *H = new_h ? alloc_floats((size_t)sc->max_batch, (size_t)ss) : sc->H;
  float *T = new_t ? alloc_floats((size_t)sc->max_batch, row) : sc->T;
  if (!H || !T) {
    if (new_h) free(H);
    if (new_t) free(T);
    return SR_ERR_NOMEM; /* old model and buffers stay */
  }
  if (new_h) {
    free(sc->H);
    sc->H = H;
    sc->h_cap = h_need;
  }
  if (new_t) {
    free(sc->T);
    sc->T = T;
    sc->t_cap = t_need;
  }
  sc->m = m;
  sc->state_size = ss;
  sc->n_items = n;
  return SR_OK;
}

/* Scores and ranks one slice of nb <= max_batch users (global index g0..). */
static void run_slice(sr_scorer_t *sc, int g0, int nb, const int32_t *const *excl,
                      const int *n_excl, int32_t *out_idx, float *out_score, int *out_cnt) {
  const int k = sc->k, kp = sc->kp;
  const int32_t N = sc->n_items;
  /* Tile width for this slice: the whole buffer over nb rows (smaller
   * batches get wider tiles), balanced so the last tile is not a sliver. */
  size_t w = sc->t_cap / (size_t)nb - (size_t)kp;
  w = w / ALIGN_FLOATS * ALIGN_FLOATS;
  if (w >= (size_t)N) {
    w = (size_t)N;
  } else {
    size_t tiles = ((size_t)N + w - 1) / w;
    w = round_up(((size_t)N + tiles - 1) / tiles, ALIGN_FLOATS);
  }
  const size_t ld = (size_t)kp + w;
  for (int u = 0; u < nb; u++) {
    out_cnt[g0 + u] = 0;
    /* an ascending list is applied with a cursor that moves across the
     * tiles (O(list + tiles)); any other order is scanned whole per tile */
    const int32_t *ex = excl ? excl[g0 + u] : NULL;
    const int nex = (ex && n_excl) ? n_excl[g0 + u] : 0;
    int sorted = 1;
    for (int e = 1; e < nex && sorted; e++)
      sorted = ex[e - 1] <= ex[e];
    sc->cur[u] = sorted ? 0 : -1;
  }

  int32_t tn;
  for (int32_t i0 = 0; i0 < N; i0 += tn) {
    tn = (int32_t)SR_MIN((size_t)(N - i0), w);
    sr_model_score_range(sc->m, sc->H, nb, i0, tn, sc->T + kp, ld);
    for (int u = 0; u < nb; u++) {
      const int g = g0 + u;
      float *row = sc->T + (size_t)u * ld; /* [kp slots | tn scores] */
      int32_t *oi = out_idx + (size_t)g * k;
      float *os = out_score + (size_t)g * k;
      const int32_t *ex = excl ? excl[g] : NULL;
      const int nex = (ex && n_excl) ? n_excl[g] : 0;
      /* seen filter: NaN is never chosen */
      if (sc->cur[u] >= 0) {
        int e = sc->cur[u];
        while (e < nex && ex[e] < i0)
          e++; /* negative entries */
        for (; e < nex && ex[e] < i0 + tn; e++)
          row[kp + (ex[e] - i0)] = NAN;
        sc->cur[u] = e;
      } else {
        for (int e = 0; e < nex; e++) {
          uint32_t l = (uint32_t)ex[e] - (uint32_t)i0;
          if (ex[e] >= i0 && l < (uint32_t)tn) row[kp + l] = NAN;
        }
      }
      /* carried best-so-far as the prefix (none before the first tile) */
      const int p = i0 == 0 ? 0 : k, c = out_cnt[g];
      if (p) {
        float *pre = row + kp - p;
        memcpy(pre, os, (size_t)c * sizeof(float));
        for (int j = c; j < p; j++)
          pre[j] = NAN;
        memcpy(sc->carry, oi, (size_t)c * sizeof(int32_t));
      }
      const int cnt = sr_rank_topk(row + kp - p, tn + p, NULL, 0, k, oi, os);
      for (int j = 0; j < cnt; j++)
        oi[j] = oi[j] < p ? sc->carry[oi[j]] : i0 + (oi[j] - p);
      out_cnt[g] = cnt;
    }
  }
}

void sr_scorer_run(sr_scorer_t *sc, const float *const *states, int n, const int32_t *const *excl,
                   const int *n_excl, int32_t *out_idx, float *out_score, int *out_cnt) {
  const size_t ss = (size_t)sc->state_size;
  for (int b0 = 0; b0 < n; b0 += sc->max_batch) {
    const int nb = SR_MIN(sc->max_batch, n - b0);
    for (int u = 0; u < nb; u++) {
      if (states[b0 + u])
        memcpy(sc->H + (size_t)u * ss, states[b0 + u], ss * sizeof(float));
      else
        memset(sc->H + (size_t)u * ss, 0, ss * sizeof(float));
    }
    run_slice(sc, b0, nb, excl, n_excl, out_idx, out_score, out_cnt);
  }
}

float *sr_scorer_row(sr_scorer_t *sc, int i) {
  if (i < 0 || i >= sc->max_batch) return NULL;
  return sc->H + (size_t)i * (size_t)sc->state_size;
}

void sr_scorer_run_rows(sr_scorer_t *sc, int n, const int32_t *const *excl, const int *n_excl,
                        int32_t *out_idx, float *out_score, int *out_cnt) {
  if (n > sc->max_batch) n = sc->max_batch;
  if (n > 0) run_slice(sc, 0, n, excl, n_excl, out_idx, out_score, out_cnt);
}

int sr_scorer_k(const sr_scorer_t *sc) { return sc->k; }
int sr_scorer_max_batch(const sr_scorer_t *sc) { return sc->max_batch; }
