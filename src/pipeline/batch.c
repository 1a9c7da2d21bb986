/*
 * batch: the micro-batch rows (see batch.h for what a row holds and why
 * its state lives in the scorer's matrix).
 *
 * Memory: everything is sized at creation for max rows except the two
 * arenas, the strings (reserved for ~128 bytes a row) and the filter
 * copies, which grow geometrically and are reset, not freed, per batch:
 * amortised, the per-event path allocates nothing.
 */
#include <string.h>

#include "pipeline/batch.h"

sr_pipeline_batch_t *sr_pipeline_batch_new(sr_scorer_t *sc, int max, int state_size) {
  if (!sc || max < 1 || max > sr_scorer_max_batch(sc) || state_size < 1) return NULL;
  sr_pipeline_batch_t *b = sr_calloc(1, sizeof(*b));
  const int k = sr_scorer_k(sc);
  b->scorer = sc;
  b->max = max;
  b->k = k;
  b->state_size = state_size;
  b->rows = sr_calloc((size_t)max, sizeof(*b->rows));
  b->excl_cap = 1024; /* grows with the rows' seen sets; never NULL */
  b->excl = sr_malloc(b->excl_cap * sizeof(*b->excl));
  b->excl_ptrs = sr_calloc((size_t)max, sizeof(*b->excl_ptrs));
  b->n_excl = sr_calloc((size_t)max, sizeof(*b->n_excl));
  b->top_idx = sr_calloc((size_t)max * (size_t)k, sizeof(*b->top_idx));
  b->top_score = sr_calloc((size_t)max * (size_t)k, sizeof(*b->top_score));
  b->top_cnt = sr_calloc((size_t)max, sizeof(*b->top_cnt));
  sr_buf_init(&b->strs);
  sr_buf_reserve(&b->strs, (size_t)max * 128);
  return b;
}

void sr_pipeline_batch_destroy(sr_pipeline_batch_t *b) {
  if (!b) return;
  sr_free(b->rows);
  sr_free(b->excl);
  sr_free(b->excl_ptrs);
  sr_free(b->n_excl);
  sr_free(b->top_idx);
  sr_free(b->top_score);
  sr_free(b->top_cnt);
  sr_buf_free(&b->strs);
  sr_free(b);
}

void sr_pipeline_batch_reset(sr_pipeline_batch_t *b) {
  b->n = 0;
  b->excl_len = 0;
  sr_buf_reset(&b->strs);
}

static size_t sr_pipeline_batch_str_put(sr_pipeline_batch_t *b, sr_str_t s) {
  size_t off = b->strs.len;
  sr_buf_append(&b->strs, s.ptr, s.len);
  return off;
}

sr_pipeline_batch_row_t *sr_pipeline_batch_put(sr_pipeline_batch_t *b, sr_user_t *u, const float *h,
                                               const sr_seen_t *seen, const sr_msg_t *m, int mi,
                                               const sr_event_t *ev, int coalesce, int *coalesced) {
  /* One row per event; with coalescing, one row per user (its newest event). */
  int si = -1;
  *coalesced = 0;
  if (coalesce)
    for (int i = 0; i < b->n; i++)
      if (b->rows[i].user == u) {
        si = i;
        *coalesced = 1;
        break;
      }
  sr_pipeline_batch_row_t *r;
  if (si < 0) {
    si = b->n++;
    r = &b->rows[si];
    r->user = u;
    r->user_off = sr_pipeline_batch_str_put(b, ev->user_id);
    r->user_len = ev->user_id.len;
  }
  r = &b->rows[si];
  r->msg = mi;
  r->partition = m->partition;
  r->offset = m->offset;
  r->event_time = ev->ts_ms;
  r->evid_off = sr_pipeline_batch_str_put(b, ev->event_id);
  r->evid_len = ev->event_id.len;
  r->scen_off = sr_pipeline_batch_str_put(b, ev->scenario);
  r->scen_len = ev->scenario.len;
  /* the one copy of the state: into the row sgemm reads */
  memcpy(sr_scorer_row(b->scorer, si), h, (size_t)b->state_size * sizeof(float));
  /* The row's filter is a copy: a later event of the user in this batch
   * changes the set. Grows geometrically, so amortised allocation-free. */
  uint32_t n_seen = sr_seen_count(seen);
  if (b->excl_len + n_seen > b->excl_cap) {
    size_t cap = b->excl_cap;
    while (cap < b->excl_len + n_seen)
      cap *= 2;
    b->excl = sr_realloc(b->excl, cap * sizeof(*b->excl));
    b->excl_cap = cap;
  }
  r->excl_off = b->excl_len;
  r->n_excl = (int)sr_seen_sorted(seen, b->excl + b->excl_len);
  b->excl_len += (size_t)r->n_excl;
  return r;
}

void sr_pipeline_batch_forget(sr_pipeline_batch_t *b, int32_t partition, const char *user_id,
                              size_t len) {
  for (int i = 0; i < b->n; i++) {
    sr_pipeline_batch_row_t *r = &b->rows[i];
    if (r->partition == partition && r->user_len == len &&
        !memcmp(b->strs.data + r->user_off, user_id, len))
      r->user = NULL;
  }
}

int sr_pipeline_batch_score(sr_pipeline_batch_t *b) {
  const size_t row_bytes = (size_t)b->state_size * sizeof(float);
  int n = 0;
  /* compact away rows detached by FORGET (with their states in the
   * matrix; their seen copies stay where they are in excl) */
  for (int i = 0; i < b->n; i++) {
    if (!b->rows[i].user) continue;
    if (n != i) {
      b->rows[n] = b->rows[i];
      memcpy(sr_scorer_row(b->scorer, n), sr_scorer_row(b->scorer, i), row_bytes);
    }
    n++;
  }
  b->n = n;
  if (n == 0) return 0;
  for (int i = 0; i < n; i++) {
    b->excl_ptrs[i] = b->excl + b->rows[i].excl_off;
    b->n_excl[i] = b->rows[i].n_excl;
  }
  sr_scorer_run_rows(b->scorer, n, b->excl_ptrs, b->n_excl, b->top_idx, b->top_score, b->top_cnt);
  return n;
}

void sr_pipeline_batch_rec(const sr_pipeline_batch_t *b, int i, const sr_model_t *m,
                           sr_rec_item_t *items, sr_rec_t *rec) {
  const sr_pipeline_batch_row_t *r = &b->rows[i];
  const size_t k = (size_t)b->k;
  for (int j = 0; j < b->top_cnt[i]; j++) {
    items[j].item_id = sr_model_item_id(m, b->top_idx[(size_t)i * k + (size_t)j]);
    items[j].score = b->top_score[(size_t)i * k + (size_t)j];
    items[j].propensity = 1.0f;
    items[j].explore = 0;
  }
  const char *base = (const char *)b->strs.data;
  memset(rec, 0, sizeof(*rec));
  rec->user_id = sr_str_make(base + r->user_off, r->user_len);
  rec->scenario = sr_str_make(base + r->scen_off, r->scen_len);
  rec->items = items;
  rec->n_items = b->top_cnt[i];
  rec->source_event_id = sr_str_make(base + r->evid_off, r->evid_len);
  rec->source_partition = r->partition;
  rec->source_offset = r->offset;
  rec->event_time = r->event_time;
}
