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
 * Delivery guarantee (delivery.guarantee): at_least_once, the default. An
 * input offset is committed only after every output of that event and of
 * all earlier events of its partition (the recommendation, or the
 * dead-letter copy) was acknowledged by the broker. A delivery that fails
 * permanently stops the pipeline with SR_ERR_DELIVERY before anything past
 * it is committed; a restart re-processes from the last commit.
 *
 * exactly_once: the outputs and the input offsets of a micro-batch or of a
 * commit interval (transaction.scope) are one Kafka transaction of the
 * worker's producer (transactional.id), read by read_committed consumers:
 * they become visible together or not at all. An aborted transaction
 * rewinds the consumer to the last committed offsets; user state is not
 * part of the transaction (docs/ARCHITECTURE.md "Exactly-once mode").
 */
#ifndef STREAMREC_PIPELINE_H
#define STREAMREC_PIPELINE_H

#include <stdint.h>
#include "streamrec/conf.h"
#include "streamrec/kafka.h"
#include "streamrec/model.h"
#include "streamrec/seen.h"

typedef struct sr_pipeline_s sr_pipeline_t;

/* delivery.guarantee */
typedef enum { SR_DELIVERY_AT_LEAST_ONCE = 0, SR_DELIVERY_EXACTLY_ONCE = 1 } sr_delivery_t;
/* transaction.scope (exactly_once): one transaction per commit.interval.ms
 * or per micro-batch */
typedef enum { SR_TXN_SCOPE_INTERVAL = 0, SR_TXN_SCOPE_BATCH = 1 } sr_txn_scope_t;

/* Each field is set by the option named in its comment; defaults, ranges
 * and meaning are in that option's row (sr_pipeline_conf_table,
 * docs/CONFIGURATION.md), not repeated here. */
typedef struct sr_pipeline_conf_s {
  const char *brokers;      /* required (no row: serve's `brokers` decides) */
  const char *group;        /* group */
  const char *events_topic; /* topic.events */
  const char *recs_topic;   /* topic.recommendations */
  const char *dlq_topic;    /* topic.dlq */
  const char *client_id;    /* client.id */
  int k;                    /* k */
  int batch_max;            /* batch.max */
  int batch_wait_us;        /* batch.wait.us */
  sr_seen_conf_t seen;      /* state.seen.types, state.seen.window.ms, state.seen.max */
  int coalesce;             /* batch.coalesce (1 true, 0 false) */
  int32_t event_schema_id;  /* schema.id.event */
  int32_t rec_schema_id;    /* schema.id.recommendation */
  int commit_interval_ms;   /* commit.interval.ms */
  int max_inflight_batches; /* inflight.batches.max */
  int idle_exit_ms;         /* idle.exit.ms (demos, benches) */
  /* Input rules (docs/ARCHITECTURE.md "Input rules"); a violation is
   * dead-lettered with INVALID_FIELD, KEY_MISMATCH or STATE_FULL. */
  int id_max_bytes;             /* event.id.max.bytes */
  int64_t future_max_ms;        /* event.time.future.max.ms */
  int key_check;                /* event.key.check (1 true, 0 false) */
  int64_t users_max;            /* state.partition.users.max (at most SR_STATE_USERS_MAX) */
  int shutdown_timeout_ms;      /* shutdown.timeout.ms */
  int64_t max_events;           /* max.events */
  sr_delivery_t delivery;       /* delivery.guarantee */
  sr_txn_scope_t txn_scope;     /* transaction.scope */
  const char *transactional_id; /* transactional.id (NULL: "<group>-<client.id>") */
  const sr_kv_t *kafka;         /* passed to both consumer and producer */
  int n_kafka;
  const sr_kv_t *kafka_consumer; /* consumer only, applied after `kafka` */
  int n_kafka_consumer;
  const sr_kv_t *kafka_producer; /* producer only, applied after `kafka` */
  int n_kafka_producer;
} sr_pipeline_conf_t;

/* Option rows, defaults and ranges: written once, in the pipeline's rows of
 * the option table (src/pipeline/pipeline_conf.c). `serve` builds its table
 * from these rows plus its own; library callers start from the defaults.
 *
 * The pipeline's rows (name, type, default, range, help, flag): static
 * storage; *n receives the count. Any thread. */
const sr_conf_opt_t *sr_pipeline_conf_table(int *n);

/* Fills *c with the table's defaults; brokers and the kafka lists are left
 * unset, string fields point to static text. Any thread. */
void sr_pipeline_conf_defaults(sr_pipeline_conf_t *c);

/* Fills *c from conf, whose table must hold the pipeline's rows (see
 * sr_pipeline_conf_table): every field of a row, and the kafka,
 * kafka.consumer and kafka.producer lists. Leaves brokers NULL (the caller
 * decides where the brokers are). Strings and lists are borrowed from conf,
 * valid until sr_conf_destroy(conf). Errors: SR_ERR_CONF (a value the
 * table admits but the field cannot hold, e.g. an unknown seen type),
 * naming the option. */
sr_err_t sr_pipeline_conf_from(sr_pipeline_conf_t *c, const sr_conf_t *conf, char *errstr,
                               size_t errsz);

/* Checks *c against the table's ranges, the seen configuration and the
 * presence of brokers; sr_pipeline_new() calls it. Returns SR_OK or
 * SR_ERR_CONF with errstr naming the option ("batch.max: 0 is out of range
 * 1..4096"). Any thread. */
sr_err_t sr_pipeline_conf_check(const sr_pipeline_conf_t *c, char *errstr, size_t errsz);

/* The statistics list, written once: it generates sr_pipeline_stats_t, the
 * pipeline's atomic counters and their copy (sr_pipeline_stats), the
 * /metrics exposition (metric name, # TYPE, # HELP; the value divided by
 * `div`, e.g. ns to seconds) and docs/METRICS.md (sr_metrics_markdown).
 *
 *   X(field, kind, metric, div, help)
 *
 * kind is counter or gauge. SR_PIPELINE_STATS are uint64 atomics the
 * pipeline thread adds to (STAT_ADD) or stores; SR_PIPELINE_STATS_CLOCK are
 * int64 durations computed when the snapshot is taken. */
#define SR_PIPELINE_STATS(X)                                                                       \
  X(consumed, counter, "streamrec_ingest_messages_total", 1,                                       \
    "Input messages consumed from the events topic.")                                              \
  X(decoded, counter, "streamrec_decode_events_total", 1, "Valid UserEvents decoded.")             \
  X(dlq, counter, "streamrec_decode_dead_letter_total", 1,                                         \
    "Messages sent to the dead-letter topic.")                                                     \
  X(rejected, counter, "streamrec_decode_rejected_total", 1,                                       \
    "Events refused by the input rules (dead-lettered).")                                          \
  X(unknown_items, counter, "streamrec_state_unknown_items_total", 1,                              \
    "Events whose item is not in the model catalogue (state not updated).")                        \
  X(forgotten, counter, "streamrec_state_forgotten_total", 1, "FORGET events applied.")            \
  X(users, gauge, "streamrec_state_users", 1,                                                      \
    "Users held in state (0 once partitions are revoked).")                                        \
  X(users_peak, gauge, "streamrec_state_users_peak", 1, "Most users held in state at once.")       \
  X(state_full, counter, "streamrec_state_full_total", 1,                                          \
    "Events of new users refused because their partition's state was full "                        \
    "(dead-lettered).")                                                                            \
  X(seen_dropped, counter, "streamrec_state_seen_dropped_total", 1,                                \
    "Consumed items forgotten by the per-user bound state.seen.max (the oldest first; "            \
    "they may be recommended again).")                                                             \
  X(coalesced, counter, "streamrec_score_coalesced_total", 1,                                      \
    "Events merged into a later event of the same user in one micro-batch.")                       \
  X(batches, counter, "streamrec_score_batches_total", 1, "Scoring micro-batches.")                \
  X(score_ns, counter, "streamrec_score_seconds_total", 1e9,                                       \
    "Time spent in batched scoring and top-K.")                                                    \
  X(recs_sent, counter, "streamrec_publish_recommendations_total", 1,                              \
    "Recommendations handed to the producer.")                                                     \
  X(recs_delivered, counter, "streamrec_publish_delivered_total", 1,                               \
    "Recommendations acknowledged by the broker.")                                                 \
  X(delivery_failed, counter, "streamrec_publish_failed_total", 1,                                 \
    "Outputs whose delivery failed permanently.")                                                  \
  X(oversized, counter, "streamrec_publish_oversized_total", 1,                                    \
    "Outputs over the producer's message.max.bytes (dead-lettered, or dead letters sent "          \
    "truncated).")                                                                                 \
  X(commits, counter, "streamrec_ingest_commits_total", 1, "Offset commits sent.")                 \
  X(commit_failed, counter, "streamrec_ingest_commit_failed_total", 1,                             \
    "Offset commits the broker refused; retried.")                                                 \
  X(consume_errors, counter, "streamrec_ingest_consume_errors_total", 1,                           \
    "Consumer errors reported for a partition (dead-lettered).")                                   \
  X(revoke_dropped, counter, "streamrec_ingest_revoke_dropped_total", 1,                           \
    "Messages released unprocessed because their partition was revoked meanwhile.")                \
  X(assigned_partitions, gauge, "streamrec_ingest_assigned_partitions", 1,                         \
    "Partitions of the events topic assigned to this worker.")                                     \
  X(txn_committed, counter, "streamrec_publish_transactions_committed_total", 1,                   \
    "Transactions committed (delivery.guarantee exactly_once): their outputs and input "           \
    "offsets became visible together.")                                                            \
  X(txn_aborted, counter, "streamrec_publish_transactions_aborted_total", 1,                       \
    "Transactions aborted (exactly_once); their events are consumed again from the last "          \
    "committed offsets.")                                                                          \
  X(txn_retries, counter, "streamrec_publish_transaction_retries_total", 1,                        \
    "Transaction calls retried after a retriable error (exactly_once).")                           \
  X(txn_commit_ns, counter, "streamrec_publish_transaction_commit_seconds_total", 1e9,             \
    "Time spent finishing transactions: waiting for their outputs, sending the offsets, "          \
    "committing (exactly_once).")                                                                  \
  X(rewinds, counter, "streamrec_ingest_rewinds_total", 1,                                         \
    "Partitions moved back to their last committed offset after an aborted transaction "           \
    "(exactly_once).")

#define SR_PIPELINE_STATS_CLOCK(X)                                                                 \
  X(unassigned_ms, gauge, "streamrec_ingest_unassigned_seconds", 1e3,                              \
    "Seconds without any assigned partition (0 while some are assigned).")                         \
  X(kafka_down_ms, gauge, "streamrec_ingest_brokers_down_seconds", 1e3,                            \
    "Seconds since the consumer reported all brokers down (0 when none is known).")

/* A snapshot of the statistics; consistent per field (relaxed atomics). */
typedef struct sr_pipeline_stats_s {
#define SR__STATS_U64(f, kind, metric, div, help) uint64_t f;
#define SR__STATS_I64(f, kind, metric, div, help) int64_t f;
  SR_PIPELINE_STATS(SR__STATS_U64)
  SR_PIPELINE_STATS_CLOCK(SR__STATS_I64)
#undef SR__STATS_U64
#undef SR__STATS_I64
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
