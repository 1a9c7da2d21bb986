/*
 * rank: top-K selection over one score row, fused with the seen-item
 * filter. A bounded min-heap of K entries: O(N log K), no sort of the
 * catalogue. Plain functions over plain arrays; no dependencies.
 *
 * Tie rule (part of the parity contract between serve and eval): higher
 * score first; equal scores order by lower item index first. The rule is
 * exact on equal inputs; serve's and eval's score rows come from sgemm
 * calls of different shapes, so their lists agree up to near-ties
 * (docs/ARCHITECTURE.md "Parity between serve and eval").
 */
#ifndef STREAMREC_RANK_H
#define STREAMREC_RANK_H

#include <stdint.h>

/* Selects the k best items of scores[0..n), skipping the n_excl indices in
 * excl (any order, duplicates and out-of-range values allowed). Writes up to
 * k results sorted best first to out_idx/out_score; returns how many (less
 * than k only when fewer than k items remain). NaN scores are never chosen.
 * scores is read-only. Thread-safe; allocation-free. */
int sr_rank_topk(const float *scores, int32_t n, const int32_t *excl, int n_excl, int k,
                 int32_t *out_idx, float *out_score);

/* Rank (0-based) that `target` would get in the filtered ordering above:
 * the number of non-excluded items that beat it under the tie rule. Used by
 * eval for full-ranking metrics. */
int32_t sr_rank_position(const float *scores, int32_t n, const int32_t *excl, int n_excl,
                         int32_t target);

#endif
