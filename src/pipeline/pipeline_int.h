/*
 * pipeline internals, shared by the files of src/pipeline that drive one
 * worker: pipeline.c (the loop: poll, decode, apply, score, send, dead
 * letters, rebalance), pipeline_commit.c (delivery reports and commit
 * results in, offset commits out, the back-pressure wait), pipeline_txn.c
 * (the transactions of delivery.guarantee=exactly_once) and
 * pipeline_new.c (construction and teardown). The pure rooms (ledger.h,
 * batch.h, input.h) know nothing of this struct.
 *
 * Thread: everything here runs on the pipeline thread, except the atomics
 * (stop, abort_, unassigned_since_ms, st) that sr_pipeline_stop/abort/stats
 * touch from any thread.
 */
#ifndef STREAMREC_PIPELINE_INT_H
#define STREAMREC_PIPELINE_INT_H

#include <stdatomic.h>

#include "streamrec/codec.h"
#include "streamrec/pipeline.h"
#include "streamrec/score.h"
#include "streamrec/state.h"
#include "pipeline/batch.h"
#include "pipeline/ledger.h"

#define SR_PIPE_MOD "pipeline"

struct sr_pipeline_s {
  sr_pipeline_conf_t conf;
  char *brokers, *group, *events_topic, *recs_topic, *dlq_topic, *client_id;
  sr_kv_t *kafka_c, *kafka_p; /* both-clients properties followed by the client's own */
  int n_kafka_c, n_kafka_p;
  sr_model_t *model;
  sr_codec_t *codec;
  sr_state_t *state;
  sr_scorer_t *scorer;
  sr_ingest_t *ingest;
  sr_publish_t *publish;
  atomic_int stop;
  atomic_int abort_;
  _Atomic int64_t unassigned_since_ms; /* wall ms; 0 while partitions are assigned */
  int n_assigned;
  int64_t last_wait_log_us;
  int64_t last_skip_log_us;

  sr_msg_t *msgs;               /* batch_max */
  sr_pipeline_batch_t *rows;    /* the micro-batch being built */
  sr_buf_t enc;                 /* one encoded Recommendation */
  sr_rec_item_t *rec_items;     /* k */
  sr_pipeline_ledger_t *ledger; /* batches and offsets */
  int64_t last_commit_us;

  sr_err_t fatal;
  char fatal_str[1024];

  /* exactly_once (pipeline_txn.c); all zero with at_least_once */
  int eos;
  char *txn_id;       /* the producer's transactional.id */
  int txn_open;       /* begun, not committed or aborted yet */
  int txn_abort;      /* an abortable error was seen: the open transaction must abort */
  int txn_aborting;   /* inside the abort: failed (purged) delivery reports are expected */
  int rewind_pending; /* aborted inside a poll: rewind before processing anything more */
  int64_t *first_off; /* per partition: first offset consumed in this ownership, -1 */
  int n_first_off;

  struct { /* the statistics list (SR_PIPELINE_STATS in pipeline.h) */
#define SR__STAT_DECL(f, kind, metric, div, help) _Atomic uint64_t f;
    SR_PIPELINE_STATS(SR__STAT_DECL)
#undef SR__STAT_DECL
  } st;
};

#define STAT_ADD(p, f, v) atomic_fetch_add_explicit(&(p)->st.f, (v), memory_order_relaxed)

/* Records the first fatal error (fmt has one %s for a) and logs it; run()
 * stops and returns it. */
void sr_pipeline_fatal(sr_pipeline_t *p, sr_err_t err, const char *fmt, const char *a);
int sr_pipeline_stopping(sr_pipeline_t *p); /* stop or abort asked */

/* pipeline_commit.c */
/* Retires finished batches (a corrupt ring is fatal). */
void sr_pipeline_retire(sr_pipeline_t *p);
/* Opens a batch record, waiting while the ring is full (back-pressure);
 * NULL on a fatal error or a stop during the wait. */
sr_pipeline_ledger_batch_t *sr_pipeline_open(sr_pipeline_t *p);
/* Commits the ledger's plan (sync: blocking, and everything not confirmed). */
void sr_pipeline_commit(sr_pipeline_t *p, int sync);
/* Waits for outputs in flight, then commits synchronously (final: at
 * shutdown, what is left undelivered is purged and fails its batch). */
void sr_pipeline_drain(sr_pipeline_t *p, int final);
/* The clients' callbacks (opaque = the pipeline). */
void sr_pipeline_on_delivery(void *opaque, void *msg_opaque, sr_err_t err, const char *reason);
void sr_pipeline_on_commit(void *opaque, int32_t part, int64_t next_offset, sr_err_t err,
                           const char *reason);
/* pipeline.c */
void sr_pipeline_on_rebalance(void *opaque, int assigned, const int32_t *parts, int n);

/* pipeline_txn.c (exactly_once only) */
/* Registers the transactional.id (fences an older instance, which aborts
 * its open transaction); a failure is fatal. */
void sr_pipeline_txn_init(sr_pipeline_t *p);
/* Begins a transaction unless one is open; 0, or -1 after recording a fatal
 * error. */
int sr_pipeline_txn_begin(sr_pipeline_t *p);
/* Ends the open transaction: waits for its outputs, sends the offsets,
 * commits; on an abortable error aborts and marks the rewind due
 * (final: at shutdown, where an abort is an error and no rewind follows). */
void sr_pipeline_txn_finish(sr_pipeline_t *p, int final);
/* Moves the consumer back to the committed positions after an abort. */
void sr_pipeline_txn_rewind(sr_pipeline_t *p);
/* Notes the first offset consumed of a partition in this ownership;
 * sr_pipeline_txn_assigned forgets it at a new assignment. */
void sr_pipeline_txn_note(sr_pipeline_t *p, int32_t part, int64_t offset);
void sr_pipeline_txn_assigned(sr_pipeline_t *p, int32_t part);

#endif
