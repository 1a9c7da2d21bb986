/*
 * ledger: the offset ledger of the pipeline (see ledger.h for the rules).
 *
 * Why a module of its own with no Kafka in it: the delivery guarantee is
 * decided here, and a rule that can only be exercised through a mock
 * cluster is tested by luck of timing. As plain data it is tested case by
 * case (tests/unit/0032-ledger): acks out of order, a poisoned batch, a
 * revocation, a commit that fails and is sent again.
 *
 * Positions are an array indexed by partition id that grows on demand (ids
 * are small and dense in Kafka). The batch ring holds ring_cap records
 * whose partition lists are allocated once, so the per-batch path
 * allocates nothing.
 */
#include <string.h>

#include "pipeline/ledger.h"

sr_pipeline_ledger_t *sr_pipeline_ledger_new(int ring_cap, int parts_max) {
  if (ring_cap < 1 || parts_max < 1) return NULL;
  sr_pipeline_ledger_t *l = sr_calloc(1, sizeof(*l));
  l->ring_cap = ring_cap;
  l->parts_max = parts_max;
  l->ring = sr_calloc((size_t)ring_cap, sizeof(*l->ring));
  for (int i = 0; i < ring_cap; i++)
    l->ring[i].parts = sr_calloc((size_t)parts_max, sizeof(sr_pipeline_ledger_part_t));
  return l;
}

void sr_pipeline_ledger_destroy(sr_pipeline_ledger_t *l) {
  if (!l) return;
  if (l->ring)
    for (int i = 0; i < l->ring_cap; i++)
      sr_free(l->ring[i].parts);
  sr_free(l->ring);
  sr_free(l->pos);
  sr_free(l->plan_parts);
  sr_free(l->plan_offs);
  sr_free(l);
}

/* The partition's record, created (inactive, no positions) when new; NULL
 * for a negative id. */
static sr_pipeline_ledger_pos_t *sr_pipeline_ledger_pos_get(sr_pipeline_ledger_t *l, int32_t part) {
  if (part < 0) return NULL;
  if (part >= l->n_pos) {
    int n = l->n_pos ? l->n_pos : 16;
    while (n <= part)
      n *= 2;
    l->pos = sr_realloc(l->pos, (size_t)n * sizeof(*l->pos));
    l->plan_parts = sr_realloc(l->plan_parts, (size_t)n * sizeof(*l->plan_parts));
    l->plan_offs = sr_realloc(l->plan_offs, (size_t)n * sizeof(*l->plan_offs));
    for (int i = l->n_pos; i < n; i++)
      l->pos[i] = (sr_pipeline_ledger_pos_t){.committable = -1, .committed = -1, .inflight = -1};
    l->n_pos = n;
  }
  return &l->pos[part];
}

/* ---------------------------------------------------------------- batches */

uint64_t sr_pipeline_ledger_live(const sr_pipeline_ledger_t *l) { return l->next - l->head; }

int sr_pipeline_ledger_full(const sr_pipeline_ledger_t *l) {
  return sr_pipeline_ledger_live(l) >= (uint64_t)l->ring_cap;
}

sr_pipeline_ledger_batch_t *sr_pipeline_ledger_open(sr_pipeline_ledger_t *l) {
  if (l->corrupt || sr_pipeline_ledger_full(l)) return NULL;
  sr_pipeline_ledger_batch_t *b = &l->ring[l->next % (uint64_t)l->ring_cap];
  b->seq = l->next++;
  b->pending = 1; /* seal */
  b->failed = 0;
  b->n_parts = 0;
  return b;
}

sr_pipeline_ledger_batch_t *sr_pipeline_ledger_batch(sr_pipeline_ledger_t *l, uint64_t seq) {
  if (seq < l->head || seq >= l->next) return NULL;
  sr_pipeline_ledger_batch_t *b = &l->ring[seq % (uint64_t)l->ring_cap];
  return b->seq == seq ? b : NULL;
}

sr_err_t sr_pipeline_ledger_note(sr_pipeline_ledger_t *l, sr_pipeline_ledger_batch_t *b,
                                 int32_t part, int64_t offset) {
  const sr_pipeline_ledger_pos_t *pp = sr_pipeline_ledger_pos(l, part);
  if (!pp || !pp->active) return SR_ERR_STATE;
  for (int i = 0; i < b->n_parts; i++) {
    sr_pipeline_ledger_part_t *bp = &b->parts[i];
    if (bp->partition == part && bp->epoch == pp->epoch) {
      if (offset + 1 > bp->next_offset) bp->next_offset = offset + 1;
      return SR_OK;
    }
  }
  if (b->n_parts >= l->parts_max) return SR_ERR_INVALID_ARG;
  b->parts[b->n_parts++] = (sr_pipeline_ledger_part_t){part, pp->epoch, offset + 1};
  return SR_OK;
}

sr_err_t sr_pipeline_ledger_retire(sr_pipeline_ledger_t *l) {
  while (l->head < l->next) {
    sr_pipeline_ledger_batch_t *b = &l->ring[l->head % (uint64_t)l->ring_cap];
    if (l->corrupt || b->seq != l->head) {
      /* A slot overwritten while live would commit offsets whose outputs
       * were never delivered: refuse to retire anything ever again. */
      l->corrupt = 1;
      b->failed = 1;
      return SR_ERR_STATE;
    }
    if (b->pending > 0 || b->failed) break;
    for (int i = 0; i < b->n_parts; i++) {
      sr_pipeline_ledger_pos_t *pp = sr_pipeline_ledger_pos_get(l, b->parts[i].partition);
      if (pp->active && pp->epoch == b->parts[i].epoch && b->parts[i].next_offset > pp->committable)
        pp->committable = b->parts[i].next_offset;
    }
    l->head++;
  }
  return SR_OK;
}

/* -------------------------------------------------------------- positions */

void sr_pipeline_ledger_assign(sr_pipeline_ledger_t *l, int32_t part) {
  sr_pipeline_ledger_pos_t *pp = sr_pipeline_ledger_pos_get(l, part);
  if (!pp) return;
  pp->active = 1;
  pp->epoch++;
  pp->committable = pp->committed = pp->inflight = -1;
}

int sr_pipeline_ledger_revoke(sr_pipeline_ledger_t *l, int32_t part) {
  if (part < 0 || part >= l->n_pos) return 0;
  sr_pipeline_ledger_pos_t *pp = &l->pos[part];
  int was = pp->active;
  pp->active = 0;
  pp->committable = pp->committed = pp->inflight = -1;
  return was;
}

const sr_pipeline_ledger_pos_t *sr_pipeline_ledger_pos(const sr_pipeline_ledger_t *l,
                                                       int32_t part) {
  return part >= 0 && part < l->n_pos ? &l->pos[part] : NULL;
}

int sr_pipeline_ledger_active(const sr_pipeline_ledger_t *l, int32_t part) {
  const sr_pipeline_ledger_pos_t *pp = sr_pipeline_ledger_pos(l, part);
  return pp && pp->active;
}

/* ---------------------------------------------------------------- commits */

int sr_pipeline_ledger_plan(sr_pipeline_ledger_t *l, int sync, const int32_t **parts,
                            const int64_t **offs) {
  int n = 0;
  for (int i = 0; i < l->n_pos; i++) {
    const sr_pipeline_ledger_pos_t *pp = &l->pos[i];
    if (!pp->active || pp->committable < 0 || pp->committable == pp->committed) continue;
    if (!sync && pp->committable == pp->inflight) continue;
    l->plan_parts[n] = i;
    l->plan_offs[n] = pp->committable;
    n++;
  }
  *parts = l->plan_parts;
  *offs = l->plan_offs;
  return n;
}

void sr_pipeline_ledger_commit_sent(sr_pipeline_ledger_t *l, const int32_t *parts,
                                    const int64_t *offs, int n) {
  for (int j = 0; j < n; j++) {
    sr_pipeline_ledger_pos_t *pp = sr_pipeline_ledger_pos_get(l, parts[j]);
    if (pp && pp->active) pp->inflight = offs[j];
  }
}

int sr_pipeline_ledger_commit_result(sr_pipeline_ledger_t *l, int32_t part, int64_t next_offset,
                                     sr_err_t err) {
  if (!sr_pipeline_ledger_active(l, part)) return 0; /* revoked meanwhile: positions dropped */
  sr_pipeline_ledger_pos_t *pp = &l->pos[part];
  if (err == SR_OK) {
    /* an offset past committable was not asked by this ownership */
    if (next_offset <= pp->committable && next_offset > pp->committed) pp->committed = next_offset;
    if (pp->inflight == next_offset) pp->inflight = -1;
    return 0;
  }
  if (pp->inflight != next_offset) return 0; /* repeated, or superseded by a later commit */
  pp->inflight = -1;
  l->commit_failed++;
  return 1;
}

void sr_pipeline_ledger_rewind(sr_pipeline_ledger_t *l) {
  l->head = l->next;
  for (int i = 0; i < l->n_pos; i++) {
    sr_pipeline_ledger_pos_t *pp = &l->pos[i];
    if (!pp->active) continue;
    pp->committable = pp->committed;
    pp->inflight = -1;
  }
}

uint64_t sr_pipeline_ledger_commit_failed(const sr_pipeline_ledger_t *l) {
  return l->commit_failed;
}
