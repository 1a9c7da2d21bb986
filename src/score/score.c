/*
 * score: micro-batch scoring = gather states, one sgemm, top-K per row.
 *
 * Why batched: scoring a user alone is an sgemv that streams the whole
 * item_out matrix (n_items x d floats) from memory for 2 flops per float;
 * a batch of B users reuses each streamed row B times, turning a memory-
 * bound loop into a compute-bound sgemm (bench/kernel measures both).
 *
 * The scorer owns two 64-byte-aligned buffers sized once: H (max_batch x
 * state_size, the gathered states, contiguous as sgemm wants them) and
 * S (max_batch x n_items, the score matrix). sr_scorer_run allocates
 * nothing; rank/ works in the caller's output arrays.
 *
 * Batches larger than max_batch are accepted and scored in max_batch
 * slices (the header asks for n <= max_batch; this is only a safety net).
 *
 * Thread: a scorer belongs to one thread (its buffers are scratch); the
 * model it borrows is immutable and may be shared.
 */
#include <stdlib.h>
#include <string.h>

#include "streamrec/rank.h"
#include "streamrec/score.h"

struct sr_scorer_s {
  const sr_model_t *m;
  int max_batch;
  int k;
  int state_size;
  int32_t n_items;
  float *H;
  float *S;
  size_t h_cap, s_cap; /* floats allocated */
};

/* 64-byte-aligned float buffer, or NULL (size overflow or no memory). */
static float *alloc_floats(size_t a, size_t b) {
  if (a && b > SIZE_MAX / sizeof(float) / a) return NULL;
  size_t bytes = a * b * sizeof(float);
  bytes = (bytes + 63) & ~(size_t)63;
  if (bytes == 0) bytes = 64;
  return aligned_alloc(64, bytes);
}

sr_scorer_t *sr_scorer_new(const sr_model_t *m, int max_batch, int k) {
  if (!m || max_batch < 1 || k < 1) return NULL;
  sr_scorer_t *sc = sr_calloc(1, sizeof(*sc));
  sc->max_batch = max_batch;
  sc->k = k;
  if (sr_scorer_set_model(sc, m) != SR_OK) {
    sr_scorer_destroy(sc);
    return NULL;
  }
  return sc;
}

void sr_scorer_destroy(sr_scorer_t *sc) {
  if (!sc) return;
  free(sc->H);
  free(sc->S);
  sr_free(sc);
}

sr_err_t sr_scorer_set_model(sr_scorer_t *sc, const sr_model_t *m) {
  if (!m) return SR_ERR_INVALID_ARG;
  const int ss = sr_model_state_size(m);
  const int32_t n = sr_model_n_items(m);
  const size_t h_need = (size_t)sc->max_batch * (size_t)ss;
  const size_t s_need = (size_t)sc->max_batch * (size_t)n;
  /* keep buffers that fit unless they are more than twice too big */
  int new_h = !sc->H || h_need > sc->h_cap || h_need < sc->h_cap / 2;
  int new_s = !sc->S || s_need > sc->s_cap || s_need < sc->s_cap / 2;
  float *H = new_h ? alloc_floats((size_t)sc->max_batch, (size_t)ss) : sc->H;
  float *S = new_s ? alloc_floats((size_t)sc->max_batch, (size_t)n) : sc->S;
  if (!H || !S) {
    if (new_h) free(H);
    if (new_s) free(S);
    return SR_ERR_NOMEM; /* old model and buffers stay */
  }
  if (new_h) {
    free(sc->H);
    sc->H = H;
    sc->h_cap = h_need;
  }
  if (new_s) {
    free(sc->S);
    sc->S = S;
    sc->s_cap = s_need;
  }
  sc->m = m;
  sc->state_size = ss;
  sc->n_items = n;
  return SR_OK;
}

void sr_scorer_run(sr_scorer_t *sc, const float *const *states, int n,
                   const int32_t *const *excl, const int *n_excl, int32_t *out_idx,
                   float *out_score, int *out_cnt) {
  const size_t ss = (size_t)sc->state_size, N = (size_t)sc->n_items;
  const int k = sc->k;
  for (int b0 = 0; b0 < n; b0 += sc->max_batch) {
    const int nb = SR_MIN(sc->max_batch, n - b0);
    for (int u = 0; u < nb; u++) {
      if (states[b0 + u])
        memcpy(sc->H + (size_t)u * ss, states[b0 + u], ss * sizeof(float));
      else
        memset(sc->H + (size_t)u * ss, 0, ss * sizeof(float));
    }
    sr_model_score(sc->m, sc->H, nb, sc->S);
    for (int u = 0; u < nb; u++) {
      const int g = b0 + u;
      const int32_t *ex = excl ? excl[g] : NULL;
      const int nex = (ex && n_excl) ? n_excl[g] : 0;
      out_cnt[g] = sr_rank_topk(sc->S + (size_t)u * N, (int32_t)N, ex, nex, k,
                                out_idx + (size_t)g * k, out_score + (size_t)g * k);
    }
  }
}

int sr_scorer_k(const sr_scorer_t *sc) { return sc->k; }
int sr_scorer_max_batch(const sr_scorer_t *sc) { return sc->max_batch; }
