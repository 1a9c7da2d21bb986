/*
 * batch: the rows of the micro-batch being built, internal to src/pipeline.
 *
 * A row answers one event (or, with coalescing, a user's newest event in
 * the batch): the user, where the event came from, its strings (user id,
 * event id, scenario, copied into one arena because the consumed messages
 * are released before the next batch), a copy of the user's seen items
 * right after that event (the row's filter: a later event of the user in
 * this batch changes the set) and the user's state right after that event.
 * The state is written once, straight into the scorer's input matrix
 * (sr_scorer_row): row i of the batch is row i of the matrix, so several
 * events of one user in a batch each get the recommendation for their own
 * moment and no state is copied a second time on its way to sgemm.
 *
 * A FORGET detaches the user's rows (user = NULL); sr_pipeline_batch_score compacts
 * them away first (moving the later rows' states up in the matrix; their
 * filter copies stay where they are in the arena, found by excl_off).
 *
 * Thread: the pipeline thread.
 */
#ifndef STREAMREC_PIPELINE_BATCH_H
#define STREAMREC_PIPELINE_BATCH_H

#include <stddef.h>
#include <stdint.h>
#include "streamrec/event.h"
#include "streamrec/kafka.h"
#include "streamrec/score.h"
#include "streamrec/state.h"

typedef struct sr_pipeline_batch_row_s {
  sr_user_t *user; /* NULL: detached by a FORGET */
  int msg;         /* index in the batch's messages of the event this row answers */
  int n_excl;
  size_t excl_off; /* into excl: the user's seen items, ascending */
  int32_t partition;
  int64_t offset;
  int64_t event_time;
  size_t user_off, user_len; /* into strs */
  size_t evid_off, evid_len;
  size_t scen_off, scen_len;
} sr_pipeline_batch_row_t;

typedef struct sr_pipeline_batch_s {
  sr_scorer_t *scorer; /* borrowed; its input matrix holds the rows' states */
  int max, k, state_size;
  int n;                         /* rows in use */
  sr_pipeline_batch_row_t *rows; /* [max] */
  sr_buf_t strs;
  int32_t *excl; /* the rows' seen items (grows; reset per batch) */
  size_t excl_len, excl_cap;
  const int32_t **excl_ptrs; /* [max] */
  int *n_excl;               /* [max] */
  /* results of sr_pipeline_batch_score: k per row */
  int32_t *top_idx;
  float *top_score;
  int *top_cnt;
} sr_pipeline_batch_t;

/* Returns new rows for up to max events scored by sc (borrowed: outlives
 * the batch; its max_batch must be >= max; results hold sc's k per row)
 * with state vectors of state_size floats (sc's model's), or NULL on bad
 * arguments. Free with sr_pipeline_batch_destroy(). After sr_scorer_set_model on
 * sc, rows written before are lost: swap models between batches. */
sr_pipeline_batch_t *sr_pipeline_batch_new(sr_scorer_t *sc, int max, int state_size);
void sr_pipeline_batch_destroy(sr_pipeline_batch_t *b); /* accepts NULL */
/* Empties the batch (keeps its memory). */
void sr_pipeline_batch_reset(sr_pipeline_batch_t *b);

/* Adds the row for ev (message m, index mi in the batch's messages) of user
 * u, whose state h and seen set are as right after the event. With
 * coalesce, a row of the same user already in the batch is reused (its
 * strings, state and filter replaced by this event's; *coalesced = 1).
 * Must not be called more than max times between resets without
 * coalescing. Returns the row (borrowed, valid until reset). */
sr_pipeline_batch_row_t *sr_pipeline_batch_put(sr_pipeline_batch_t *b, sr_user_t *u, const float *h,
                                               const sr_seen_t *seen, const sr_msg_t *m, int mi,
                                               const sr_event_t *ev, int coalesce, int *coalesced);
/* Detaches every row of user_id in partition (FORGET: nothing is
 * recommended for the user from this batch). */
void sr_pipeline_batch_forget(sr_pipeline_batch_t *b, int32_t partition, const char *user_id,
                              size_t len);
/* Compacts away detached rows, scores the rest (one sr_scorer_run_rows:
 * rows 0..n-1 of the scorer's matrix) into top_idx/top_score/top_cnt, and
 * returns the number of rows (b->n). */
int sr_pipeline_batch_score(sr_pipeline_batch_t *b);
/* Fills *rec for row i after sr_pipeline_batch_score: ids, source, event time and
 * the items (k entries of items, caller-provided, filled from m's
 * catalogue); model_version and produced_at are the caller's. Strings are
 * borrowed from the batch (valid until reset). */
void sr_pipeline_batch_rec(const sr_pipeline_batch_t *b, int i, const sr_model_t *m,
                           sr_rec_item_t *items, sr_rec_t *rec);

#endif
