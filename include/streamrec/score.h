/*
 * score: micro-batch scoring. Gathers up to max_batch user states into one
 * contiguous matrix and scores them against the catalogue in item blocks of
 * ~4 MB of scores (sr_model_score_range: one sgemm per block), keeping each
 * row's running top-K with the row's seen-item filter (rank/) while the
 * block is in cache. Callers either pass pointers to states
 * (sr_scorer_run: copied into the matrix) or write the states into the
 * matrix rows themselves (sr_scorer_row + sr_scorer_run_rows: no copy). Results equal
 * sr_model_score + sr_rank_topk over whole rows. Buffers are allocated once at creation: the hot
 * path allocates nothing.
 *
 * Thread: a scorer belongs to one thread.
 */
#ifndef STREAMREC_SCORE_H
#define STREAMREC_SCORE_H

#include <stdint.h>
#include "streamrec/model.h"

typedef struct sr_scorer_s sr_scorer_t;

/* Returns a new scorer for model m (borrowed: must outlive the scorer or be
 * replaced with sr_scorer_set_model), or NULL when buffers cannot be
 * allocated. Free with sr_scorer_destroy(). */
sr_scorer_t *sr_scorer_new(const sr_model_t *m, int max_batch, int k);
void sr_scorer_destroy(sr_scorer_t *sc); /* accepts NULL */
/* Switches to another model (hot reload); reallocates buffers when the
 * catalogue or state size changed. Returns SR_OK or SR_ERR_NOMEM (the old
 * model stays in use then). */
sr_err_t sr_scorer_set_model(sr_scorer_t *sc, const sr_model_t *m);

/* Row i (0 <= i < max_batch) of the scorer's input matrix: state_size
 * floats for the caller to fill with a user's state, so that a batch is
 * written once, straight where sgemm reads it (serve's micro-batch does
 * this), then scored by sr_scorer_run_rows. Contents stay until the row is
 * written again (a run reads them only); sr_scorer_run overwrites rows.
 * Borrowed: valid until sr_scorer_set_model (which may reallocate the
 * matrix: refill after it) or sr_scorer_destroy. NULL when i is out of
 * range. */
float *sr_scorer_row(sr_scorer_t *sc, int i);

/* Scores rows 0..n-1 of the input matrix as filled (n <= max_batch; more is
 * clamped), with filters and outputs as sr_scorer_run. Allocation-free. */
void sr_scorer_run_rows(sr_scorer_t *sc, int n, const int32_t *const *excl, const int *n_excl,
                        int32_t *out_idx, float *out_score, int *out_cnt);

/* Scores n (<= max_batch) users. states[u] points at state_size floats;
 * excl[u]/n_excl[u] are the items to filter for user u (may be NULL/0):
 * any order and out-of-range values are accepted, ascending order (what
 * sr_seen_sorted writes) is the fast path (one pass over the list per
 * batch instead of one per item tile).
 * Writes k results per user to out_idx[u*k ..], out_score[u*k ..] and the
 * count to out_cnt[u]. */
void sr_scorer_run(sr_scorer_t *sc, const float *const *states, int n, const int32_t *const *excl,
                   const int *n_excl, int32_t *out_idx, float *out_score, int *out_cnt);

int sr_scorer_k(const sr_scorer_t *sc);
int sr_scorer_max_batch(const sr_scorer_t *sc);

#endif
