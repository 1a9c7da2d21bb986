/*
 * pipeline: the online worker in library mode (new / run / stop / destroy),
 * so `serve`, tests and benchmarks build the same thing in-process.
 *
 *   consume (ingest) -> decode -> user state step -> micro-batch score+top-K
 *   -> encode -> produce (publish) -> delivery reports -> commit offsets
 *
 * Thread model: sr_pipeline_run() runs everything on the calling thread (the
 * pipeline thread): consumer poll, decode, state, BLAS scoring, produce and
 * delivery reports. No locks on the per-event path. sr_pipeline_stop() and
 * sr_pipeline_stats() may be called from any thread.
 *
 * Delivery guarantee: at-least-once. An input offset is committed only
 * after every output of that event and of all earlier events of its
 * partition (the recommendation, or the dead-letter copy) was acknowledged
 * by the broker. A delivery that fails permanently stops the pipeline with
 * SR_ERR_DELIVERY before anything past it is committed; a restart
 * re-processes from the last commit.
 */
#ifndef STREAMREC_PIPELINE_H
#define STREAMREC_PIPELINE_H

#include <stdint.h>
#include "streamrec/kafka.h"
#include "streamrec/model.h"
#include "streamrec/seen.h"

typedef struct sr_pipeline_s sr_pipeline_t;

typedef struct sr_pipeline_conf_s {
  const char *brokers;      /* required */
  const char *group;        /* consumer group, default "streamrec" */
  const char *events_topic; /* default "events" */
  const char *recs_topic;   /* default "recommendations" */
  const char *dlq_topic;    /* default "events.dlq" */
  const char *client_id;    /* default "streamrec" */
  int k;                    /* items per recommendation, default 10 */
  int batch_max;            /* users per scoring micro-batch, default 64 */
  int batch_wait_us;        /* max wait to fill a batch, default 1000 */
  sr_seen_conf_t seen;      /* the seen-item filter: what consumes an item, the
                               re-consumption window and the bound per user
                               (sr_seen_conf_defaults) */
  int coalesce;             /* 1: a user's events within one micro-batch share one
                               recommendation (for the newest); 0 (default): one
                               recommendation per event */
  int32_t event_schema_id;  /* default 1 */
  int32_t rec_schema_id;    /* default 2 */
  int commit_interval_ms;   /* default 500 */
  int max_inflight_batches; /* back-pressure bound, default 4096 */
  int idle_exit_ms;         /* >0: return from run after this long without input once
                               at least one event was processed (demos, benches) */
  /* Input rules (docs/ARCHITECTURE.md "Input rules"); a violation is
   * dead-lettered with INVALID_FIELD or KEY_MISMATCH. */
  int id_max_bytes;        /* event_id, user_id, item_id, scenario: at most this many
                              bytes, default 1024 */
  int64_t future_max_ms;   /* timestamp at most this far ahead of the worker's clock,
                              default 86400000 (1 day); never before 1970 */
  int key_check;           /* 1 (default): the Kafka key must be the user_id */
  int64_t users_max;       /* users one partition's state may hold, default and
                              ceiling SR_STATE_USERS_MAX; events of new users past it
                              are dead-lettered (STATE_FULL) */
  int shutdown_timeout_ms; /* how long stop waits for outputs in flight, default
                              10000; what is not delivered then is not committed */
  int64_t max_events;      /* >0: stop after this many input messages */
  const sr_kv_t *kafka;    /* passed to both consumer and producer */
  int n_kafka;
  const sr_kv_t *kafka_consumer; /* consumer only, applied after `kafka` */
  int n_kafka_consumer;
  const sr_kv_t *kafka_producer; /* producer only, applied after `kafka` */
  int n_kafka_producer;
} sr_pipeline_conf_t;

void sr_pipeline_conf_defaults(sr_pipeline_conf_t *c);

/* Counters; a snapshot is consistent per field (relaxed atomics). */
typedef struct sr_pipeline_stats_s {
  uint64_t consumed;       /* input messages taken from Kafka */
  uint64_t decoded;        /* valid UserEvents */
  uint64_t dlq;            /* messages sent to the dead-letter topic */
  uint64_t unknown_items;  /* events whose item the model does not know */
  uint64_t forgotten;      /* FORGET events applied */
  uint64_t coalesced;      /* events merged into a later event of the same user in a batch
                              (only with coalesce) */
  uint64_t recs_sent;      /* recommendations handed to the producer */
  uint64_t recs_delivered; /* recommendations acknowledged by the broker */
  uint64_t delivery_failed;
  uint64_t batches;
  uint64_t commits;
  uint64_t users;      /* users in state now (0 once partitions are revoked) */
  uint64_t users_peak; /* most users held at once */
  uint64_t score_ns;   /* time in scoring + top-K */
  uint64_t assigned_partitions;
  uint64_t consume_errors; /* per-partition consumer errors (dead-lettered) */
  uint64_t rejected;       /* events refused by the input rules (dead-lettered) */
  uint64_t oversized;      /* outputs over message.max.bytes (dead-lettered or truncated) */
  uint64_t state_full;     /* events of new users refused by users_max (dead-lettered) */
  uint64_t revoke_dropped; /* messages released unprocessed because their partition was
                              revoked while they were being collected */
  uint64_t seen_dropped;   /* seen entries dropped by the bound per user (seen.max) */
  int64_t unassigned_ms;   /* ms without any assigned partition (0 while some are) */
  int64_t kafka_down_ms;   /* ms since the consumer reported all brokers down (0 = none) */
} sr_pipeline_stats_t;

/* Returns a new pipeline serving `model` (takes ownership on success; on
 * failure the caller keeps it) or NULL with errstr. Creates the Kafka
 * clients; does not consume yet. Any thread; then use from one thread. */
sr_pipeline_t *sr_pipeline_new(const sr_pipeline_conf_t *conf, sr_model_t *model, char *errstr,
                               size_t errsz);

/* Runs until sr_pipeline_stop(), idle_exit_ms, max_events, or a fatal
 * error. On return everything delivered has been committed and the group
 * has been left. Returns SR_OK or the fatal error (errstr says why). */
sr_err_t sr_pipeline_run(sr_pipeline_t *p, char *errstr, size_t errsz);

/* Asks run() to finish in-flight work and return: waits up to
 * shutdown_timeout_ms for outputs in flight, commits what was delivered,
 * leaves the group. Every wait inside run() checks this flag. Any thread. */
void sr_pipeline_stop(sr_pipeline_t *p);
/* Like stop, but does not wait for deliveries, does not commit and does not
 * leave the group (the second SIGINT/SIGTERM): what was not committed is
 * processed again by the partition's next owner. Any thread. */
void sr_pipeline_abort(sr_pipeline_t *p);

void sr_pipeline_stats(const sr_pipeline_t *p, sr_pipeline_stats_t *out); /* any thread */

/* Borrowed: the model being served. */
const sr_model_t *sr_pipeline_model(const sr_pipeline_t *p);

void sr_pipeline_destroy(sr_pipeline_t *p); /* accepts NULL; after run returned */

#endif
