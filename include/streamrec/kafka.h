/*
 * The Kafka side of streamrec: four modules, the only ones that include
 * librdkafka. Everything else sees the plain structs and opaque handles of
 * this header.
 *
 * kafka: the one place that builds client configurations (our defaults,
 *   one table: sr_kafka_defaults(), then the kafka.* passthrough), checks
 *   kafka.* properties at startup (sr_kafka_conf_check), the metadata
 *   calls (partition count: the connect check of the CLI tools), and the
 *   topic reader (every partition assigned, no consumer group, nothing
 *   committed: `recs`, `train --brokers`, the tests).
 * ingest: a consumer-group member reading the events topic with manual
 *   offset commits (enable.auto.commit=false, enable.auto.offset.store=false):
 *   the pipeline commits explicitly once the results of the events are
 *   delivered. Rebalances are reported through a callback that runs on the
 *   polling thread, inside sr_ingest_poll(), before the assignment changes
 *   (revoke) or after it changed (assign).
 * publish: an idempotent producer (enable.idempotence=true, acks=all) with
 *   delivery reports routed to a callback with the per-message opaque.
 * broker: the embedded cluster (librdkafka's mock cluster) and its fault
 *   injection, for `streamrec broker`, `serve` without --brokers and tests.
 *   No other production code calls it.
 *
 * Thread: each handle is used by the thread that created it (the pipeline
 * thread); callbacks of ours run on that thread during poll calls.
 * librdkafka's own threads run only the log callback (src/kafka/kafka.c),
 * which calls nothing but the thread-safe sr_log().
 */
#ifndef STREAMREC_KAFKA_H
#define STREAMREC_KAFKA_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include "streamrec/common.h"
#include "streamrec/conf.h"

/* sr_kv_t (a Kafka client property) is defined in conf.h. */

/* A consumed message (from sr_ingest_poll or sr_kafka_reader_next). All
 * pointers are borrowed from the underlying client message and valid until
 * it is released (sr_ingest_release, or the reader's next call).
 * err != SR_OK (SR_ERR_CONSUME) marks a consumer error that the client
 * reported for a partition instead of a message (fetch failed, message
 * corrupt, not authorised, ...): errstr says what ("NAME: text"), partition
 * and offset say where as far as the client knows (offset is the fetch
 * position, not a message the caller may commit past; -1 when unknown),
 * key/value are empty. The pipeline dead-letters these: none is skipped
 * silently. */
typedef struct sr_msg_s {
  sr_err_t err;
  const char *errstr; /* NULL when err == SR_OK */
  const char *topic;
  int32_t partition;
  int64_t offset;
  int64_t timestamp_ms; /* message timestamp (producer create time), -1 if none */
  const void *key;
  size_t key_len;
  const void *value;
  size_t len;
  void *priv_; /* rd_kafka_message_t*, owned by the module that returned it */
} sr_msg_t;

/* Finds the last header called name on a consumed (not yet released)
 * message. Returns 1 and sets *val and *len (borrowed, valid until release;
 * *val NULL for a header with a null value), or 0 when absent. */
int sr_kafka_msg_header(const sr_msg_t *m, const char *name, const void **val, size_t *len);

/* ----------------------------------------------------------------- kafka */
typedef enum { SR_KAFKA_CONSUMER = 0, SR_KAFKA_PRODUCER = 1 } sr_kafka_client_t;

/* One of our defaults for a client kind, applied before the user's kafka.*
 * properties (which override it). */
typedef struct sr_kafka_default_s {
  sr_kafka_client_t client;
  const char *key, *value;
  const char *why; /* one line for docs/CONFIGURATION.md */
} sr_kafka_default_t;

/* The defaults table (static storage, *n entries). Any thread. */
const sr_kafka_default_t *sr_kafka_defaults(int *n);
/* Writes the defaults table as the Markdown section of docs/CONFIGURATION.md. */
void sr_kafka_defaults_markdown(FILE *f);

/* Checks conf's kafka.* properties against librdkafka before anything is
 * started: builds a throwaway consumer configuration (defaults + kafka.* +
 * kafka.consumer.*) and a producer one (defaults + kafka.* +
 * kafka.producer.*). Returns SR_OK, or SR_ERR_CONF with errstr
 * "ORIGIN: kafka.X: librdkafka's reason", ORIGIN being where the property
 * was set (sr_conf_kafka_origin: "FILE:LINE", "-X"; left out when unknown).
 * Thread: the one that owns conf. */
sr_err_t sr_kafka_conf_check(const sr_conf_t *conf, char *errstr, size_t errsz);

/* Checks plain properties for one client kind (the -X list of a tool):
 * SR_OK, or SR_ERR_CONF with errstr "KEY=VALUE: librdkafka's reason". */
sr_err_t sr_kafka_kv_check(sr_kafka_client_t client, const sr_kv_t *kafka, int n_kafka,
                           char *errstr, size_t errsz);

/* Number of partitions of topic (blocking metadata request, at most
 * timeout_ms), or -1 with errstr (unreachable cluster, missing topic). Of
 * kafka (may be NULL) only the connection properties are used (security.*,
 * sasl.*, ssl.*, socket.*, broker.*, ...), so a tool can pass its whole
 * client configuration. The connect check of the CLI tools. Any thread. */
int sr_kafka_partition_count(const char *brokers, const char *topic, const sr_kv_t *kafka,
                             int n_kafka, int timeout_ms, char *errstr, size_t errsz);

/* Version of the librdkafka linked at run time ("2.0.2": rd_kafka_version_str()),
 * for doctor and /metrics. Static storage. Any thread. */
const char *sr_kafka_version(void);

/* ---- topic reader: every partition assigned, no consumer group joined,
 * nothing committed (a throwaway group.id, which librdkafka's assign()
 * wants, is never used). Reads each partition from its first available
 * offset (from_beginning) or from its end, and either live (to_end 0) or
 * up to the end offsets found when the reader was made (to_end 1: a
 * consistent snapshot of the topic as it was). Consumer defaults of
 * sr_kafka_defaults() apply, then kafka. */
typedef struct sr_kafka_reader_s sr_kafka_reader_t;

typedef struct sr_kafka_reader_conf_s {
  const char *brokers;
  const char *topic;
  const char *client_id; /* NULL = "streamrec-reader" */
  const sr_kv_t *kafka;  /* consumer properties, may be NULL */
  int n_kafka;
  int from_beginning;     /* 1: first available offset; 0: only messages after the end */
  int to_end;             /* 1: stop at the end offsets found at start */
  int connect_timeout_ms; /* bound on the metadata and watermark requests; 0 = 10000 */
} sr_kafka_reader_conf_t;

/* Makes a reader: one metadata request (the topic's partitions) and, with
 * from_beginning or to_end, one watermark request per partition, each
 * bounded by connect_timeout_ms. Returns SR_OK with *out (free with
 * sr_kafka_reader_destroy), SR_ERR_CONF (a bad property) or another error
 * (brokers unreachable, no such topic, no partitions) with errstr.
 * Blocking; any thread, then only that thread uses the reader. */
sr_err_t sr_kafka_reader_new(const sr_kafka_reader_conf_t *conf, sr_kafka_reader_t **out,
                             char *errstr, size_t errsz);
void sr_kafka_reader_destroy(sr_kafka_reader_t *r); /* accepts NULL */
/* Waits up to timeout_ms for the next message. Returns 1 with *m set (a
 * message, or a consumer error entry with m->err set: see sr_msg_t; valid
 * until the next call or destroy), 0 when nothing came (timeout, or a
 * partition reached its end: check sr_kafka_reader_at_end), -1 with errstr
 * on a fatal client error. With to_end, messages at or past a partition's
 * end offset are never returned. */
int sr_kafka_reader_next(sr_kafka_reader_t *r, sr_msg_t *m, int timeout_ms, char *errstr,
                         size_t errsz);
/* Partitions of the topic, and how many of them are read to their end
 * (to_end: the end found at start; live: the end as of the last
 * end-of-partition event, until more data arrives). */
int sr_kafka_reader_partitions(const sr_kafka_reader_t *r);
int sr_kafka_reader_partitions_at_end(const sr_kafka_reader_t *r);
/* 1 when to_end and every partition is read to its end offset. */
int sr_kafka_reader_at_end(const sr_kafka_reader_t *r);
/* ms since the last message or end-of-partition event (or since the
 * reader was made): a stall detector for callers. */
int64_t sr_kafka_reader_idle_ms(const sr_kafka_reader_t *r);

/* Reads topic from the beginning up to the end offsets found at the start,
 * calling cb for each message (borrowed, valid during the call; a non-zero
 * return stops the read with an error); consumer error entries are logged
 * and skipped. Returns the number of messages, or -1 with errstr (also when
 * the end is not reached within timeout_ms). Used by `train --brokers`.
 * Blocking; any thread. */
typedef int(sr_msg_cb_t)(void *opaque, const sr_msg_t *m);
int64_t sr_kafka_read_topic(const char *brokers, const char *topic, const sr_kv_t *kafka,
                            int n_kafka, sr_msg_cb_t *cb, void *opaque, int timeout_ms,
                            char *errstr, size_t errsz);

/* ---------------------------------------------------------------- ingest */
typedef struct sr_ingest_s sr_ingest_t;

/* Rebalance notification. assigned = 1: parts were added (after the
 * assignment took effect); 0: parts are being revoked (before they are
 * taken away: commit now). Runs on the polling thread. */
typedef void(sr_rebalance_cb_t)(void *opaque, int assigned, const int32_t *parts, int n);

/* Result of an offset commit (sync or async), per partition of the
 * subscribed topic: err SR_OK (next_offset is now the group's committed
 * position) or SR_ERR_KAFKA with the broker's reason. Runs on the polling
 * thread, during sr_ingest_poll() or inside a sync sr_ingest_commit(); a
 * partition may be reported more than once for one commit. The only way an
 * async commit's outcome becomes known. */
typedef void(sr_commit_cb_t)(void *opaque, int32_t partition, int64_t next_offset, sr_err_t err,
                             const char *reason);

typedef struct sr_ingest_conf_s {
  const char *brokers;
  const char *group;
  const char *topic;
  const char *client_id;
  const sr_kv_t *kafka; /* extra client properties, may be NULL */
  int n_kafka;
  sr_rebalance_cb_t *rebalance_cb; /* may be NULL */
  sr_commit_cb_t *commit_cb;       /* may be NULL */
  void *opaque;                    /* for both callbacks */
  /* 1: never subscribe (never joins the group): for reading the group's
   * committed offsets without taking part in its rebalances. */
  int observe_only;
  /* 1: the input side of exactly-once: isolation.level=read_committed
   * (aborted and open transactions' messages are never returned) and no
   * offset commits through the consumer (sr_ingest_commit refuses with
   * SR_ERR_STATE): offsets go into the producer's transaction
   * (sr_publish_txn_send_offsets). */
  int transactional;
} sr_ingest_conf_t;

/* Returns a new consumer, subscribed unless conf->observe_only, or NULL with
 * errstr (bad property names/values are reported with the key). Free with
 * sr_ingest_destroy(). */
sr_ingest_t *sr_ingest_new(const sr_ingest_conf_t *conf, char *errstr, size_t errsz);
/* Leaves the group (runs the revoke callback) and closes. Idempotent. */
void sr_ingest_close(sr_ingest_t *in);
/* Marks the handle so that destroy does not leave the group (no revoke
 * callback, no LeaveGroup round trip): for a shutdown that must not wait on
 * an unreachable coordinator. The group notices after session.timeout.ms. */
void sr_ingest_abandon(sr_ingest_t *in);
void sr_ingest_destroy(sr_ingest_t *in); /* closes if needed; accepts NULL */

/* Collects up to max messages: waits up to timeout_ms for the first, then
 * keeps taking already-fetched messages for at most max_wait_us more.
 * Returns the count (0 on timeout). Per-partition consumer errors are
 * returned as entries with err set (see sr_msg_t); client-level errors
 * (e.g. broker transport, all brokers down) are logged, not returned;
 * partition EOF events are skipped. Fatal consumer errors return -1 with
 * errstr.
 * Rebalances: when partitions are revoked during the call (the rebalance
 * callback runs inside it), messages of those partitions collected before
 * the revocation are released, not returned (the partition's next owner,
 * or this member after a re-assignment, reads them again from the last
 * commit), and the call returns at once with what is left. So every
 * returned message belongs to a partition assigned when the call returns. */
int sr_ingest_poll(sr_ingest_t *in, sr_msg_t *msgs, int max, int timeout_ms, int max_wait_us,
                   char *errstr, size_t errsz);
void sr_ingest_release(sr_ingest_t *in, sr_msg_t *msgs, int n);

/* Commits next_offsets[i] (the offset of the next message to read) for
 * parts[i] of the subscribed topic. async = 0 blocks until the broker acked.
 * Either way the outcome per partition reaches conf->commit_cb; the return
 * value is SR_ERR_KAFKA only when the request could not be made (or, sync,
 * failed). */
sr_err_t sr_ingest_commit(sr_ingest_t *in, const int32_t *parts, const int64_t *next_offsets, int n,
                          int async, char *errstr, size_t errsz);
/* Reads the committed offsets of parts from the group coordinator
 * (-1 = none). Blocking, up to timeout_ms. For tests and the admin view. */
sr_err_t sr_ingest_committed(sr_ingest_t *in, const int32_t *parts, int64_t *offsets, int n,
                             int timeout_ms);

/* Pause/resume fetching of all assigned partitions (back-pressure). */
void sr_ingest_pause(sr_ingest_t *in, int pause);

/* ---- exactly-once: what the producer's transaction needs of the consumer */

/* The consumer's group metadata (group id, generation, member id) as an
 * opaque handle, for sr_publish_txn_send_offsets: the group coordinator
 * refuses offsets of a member whose generation is over (the fence against
 * a zombie that lost its partitions). Take a fresh one for each send: the
 * generation changes at every rebalance. Returns a new handle (free with
 * sr_ingest_group_destroy), or NULL when the client has no group. Thread:
 * the consumer's (also inside the rebalance callback, where it still
 * carries the generation being revoked). */
typedef struct sr_ingest_group_s sr_ingest_group_t;
sr_ingest_group_t *sr_ingest_group_metadata(sr_ingest_t *in);
void sr_ingest_group_destroy(sr_ingest_group_t *g); /* accepts NULL */

/* Moves the fetch position of each of parts (assigned partitions of the
 * subscribed topic) to offsets[i], waiting up to timeout_ms for the client
 * to apply it; messages fetched before from those partitions are discarded
 * by the client and never returned. For the rewind after an aborted
 * transaction. Returns SR_OK, or SR_ERR_KAFKA with errstr naming the first
 * partition that failed. Thread: the consumer's. */
sr_err_t sr_ingest_seek(sr_ingest_t *in, const int32_t *parts, const int64_t *offsets, int n,
                        int timeout_ms, char *errstr, size_t errsz);

/* Wall-clock ms since the client reported all brokers down and nothing
 * (message, assignment) arrived since; 0 when no outage is known. */
int64_t sr_ingest_down_ms(const sr_ingest_t *in);
/* Messages released unprocessed because their partition was revoked during
 * a poll (see sr_ingest_poll). */
uint64_t sr_ingest_revoke_dropped(const sr_ingest_t *in);

/* --------------------------------------------------------------- publish */
typedef struct sr_publish_s sr_publish_t;

typedef struct sr_header_s {
  const char *name;
  const void *value;
  size_t len;
} sr_header_t;

/* Delivery report: msg_opaque as given to send; err SR_OK or
 * SR_ERR_DELIVERY with the client's reason. Runs on the polling thread. */
typedef void(sr_delivery_cb_t)(void *opaque, void *msg_opaque, sr_err_t err, const char *reason);

typedef struct sr_publish_conf_s {
  const char *brokers;
  const char *client_id;
  const sr_kv_t *kafka;
  int n_kafka;
  sr_delivery_cb_t *delivery_cb;
  void *opaque;
  /* NULL: the idempotent producer. Set: a transactional producer with this
   * transactional.id (copied; exactly-once): call sr_publish_txn_init once,
   * then produce only inside sr_publish_txn_begin .. commit/abort. */
  const char *transactional_id;
} sr_publish_conf_t;

sr_publish_t *sr_publish_new(const sr_publish_conf_t *conf, char *errstr, size_t errsz);
/* Flushes (up to 10 s, logging what is left) and frees. Accepts NULL. */
void sr_publish_destroy(sr_publish_t *p);

/* Enqueues one message (key, value and headers are copied). The first send
 * to a topic fetches its metadata (one round trip; up to 1 s when the
 * cluster is unreachable) so a new topic is not delayed by the client's
 * periodic metadata scan. partition -1 =
 * the default partitioner (by key). Returns SR_OK, SR_ERR_QUEUE_FULL (poll
 * and retry), SR_ERR_TOO_LARGE (key + value + headers exceed the producer's
 * message.max.bytes: this message can never be sent, others can), or
 * SR_ERR_KAFKA with errstr for other permanent errors (unknown topic, fatal
 * producer state). On error no delivery report will follow. */
sr_err_t sr_publish_send(sr_publish_t *p, const char *topic, int32_t partition, const void *key,
                         size_t klen, const void *value, size_t vlen, const sr_header_t *hdrs,
                         int n_hdrs, void *msg_opaque, char *errstr, size_t errsz);
/* Fetches topic's metadata now (what the first send would do): call at start
 * for the topics a worker will write, so the first event does not pay for
 * it. Idempotent per topic. */
void sr_publish_prepare(sr_publish_t *p, const char *topic);
/* Serves delivery reports; returns how many. */
int sr_publish_poll(sr_publish_t *p, int timeout_ms);
/* Waits until everything in flight has been delivered or failed. */
sr_err_t sr_publish_flush(sr_publish_t *p, int timeout_ms);
/* Fails everything still queued or in flight now (each gets its failed
 * delivery report during the next poll/flush): for an abandoned shutdown. */
void sr_publish_purge(sr_publish_t *p);
/* Messages enqueued but not yet reported. */
int sr_publish_outq_len(sr_publish_t *p);

/* ---- transactions (a producer made with transactional_id; exactly-once).
 * Each call blocks the calling thread (the producer's) for at most
 * timeout_ms where it takes one, serving delivery reports meanwhile, and
 * returns, with errstr ("transactional.id ID: what: librdkafka's reason"):
 *   SR_OK;
 *   SR_ERR_TIMEOUT  retriable: call the same function again (the client's
 *                   retriable errors, timeouts included);
 *   SR_ERR_KAFKA    the transaction must be aborted (sr_publish_txn_abort),
 *                   then a new one may begin;
 *   SR_ERR_FATAL    the producer is unusable: fenced by a newer producer
 *                   with the same transactional.id, or another fatal error;
 *                   stop and make a new one;
 *   SR_ERR_STATE    called in the wrong state (a bug), or the producer is
 *                   not transactional.
 * A producer that turned fatal also fails sends (SR_ERR_KAFKA);
 * sr_publish_fatal_error tells it apart. */

/* Registers the transactional.id with the transaction coordinator: fences
 * an earlier producer with the same id (its sends and commits fail from
 * then on) and completes or aborts the transaction it left open. Once,
 * before the first begin; may be called again after SR_ERR_TIMEOUT. */
sr_err_t sr_publish_txn_init(sr_publish_t *p, int timeout_ms, char *errstr, size_t errsz);
/* Starts a transaction (local, no round trip). */
sr_err_t sr_publish_txn_begin(sr_publish_t *p, char *errstr, size_t errsz);
/* Adds the consumer's next offsets (parts[i] of topic -> next_offsets[i])
 * to the transaction: they are committed for g's group if and only if the
 * transaction commits. g is borrowed (sr_ingest_group_metadata). */
sr_err_t sr_publish_txn_send_offsets(sr_publish_t *p, const sr_ingest_group_t *g, const char *topic,
                                     const int32_t *parts, const int64_t *next_offsets, int n,
                                     int timeout_ms, char *errstr, size_t errsz);
/* Flushes what was produced in the transaction and commits it: every
 * message of it, and the offsets sent, become visible to read_committed
 * consumers together. A failed delivery makes it SR_ERR_KAFKA (abort). */
sr_err_t sr_publish_txn_commit(sr_publish_t *p, int timeout_ms, char *errstr, size_t errsz);
/* Aborts the transaction: messages still queued are purged (their failed
 * delivery reports come during the next poll/flush), the ones written are
 * marked aborted, the offsets sent are discarded. */
sr_err_t sr_publish_txn_abort(sr_publish_t *p, int timeout_ms, char *errstr, size_t errsz);
/* SR_ERR_FATAL with errstr (the fatal error's name and reason) when the
 * producer raised a fatal error, else SR_OK. */
sr_err_t sr_publish_fatal_error(sr_publish_t *p, char *errstr, size_t errsz);

/* ---------------------------------------------------------------- broker */
/* The embedded cluster: for `streamrec broker`, `serve` without --brokers,
 * benchmarks and tests only; nothing on a production path calls it. */
typedef struct sr_broker_s sr_broker_t;

/* Starts an embedded Kafka (librdkafka mock cluster) on loopback with
 * n_brokers brokers and creates the topics events, recommendations and
 * events.dlq with `partitions` partitions each. Returns NULL with errstr on
 * failure. Free with sr_broker_destroy(). Any thread. */
sr_broker_t *sr_broker_new(int n_brokers, int partitions, char *errstr, size_t errsz);
void sr_broker_destroy(sr_broker_t *b); /* accepts NULL */
/* "127.0.0.1:PORT[,...]". Borrowed, valid for the broker's life. */
const char *sr_broker_bootstrap(const sr_broker_t *b);
/* Creates another topic. */
sr_err_t sr_broker_topic_create(sr_broker_t *b, const char *topic, int partitions);
/* Fault injection for tests: take broker id (1..n) down / up. */
sr_err_t sr_broker_set_down(sr_broker_t *b, int32_t broker_id, int down);
/* Moves the leader of topic's partition (-1 = every partition) to broker_id. */
sr_err_t sr_broker_set_leader(sr_broker_t *b, const char *topic, int32_t partition,
                              int32_t broker_id);
/* Makes broker_id the group coordinator of group. */
sr_err_t sr_broker_set_coordinator(sr_broker_t *b, const char *group, int32_t broker_id);
/* Makes the next `cnt` requests of Kafka API `apikey` fail with Kafka error
 * code `kafka_err` (numeric, e.g. 7 = REQUEST_TIMED_OUT). */
void sr_broker_push_errors(sr_broker_t *b, int apikey, int cnt, int kafka_err);
/* Drops errors still queued for apikey by sr_broker_push_errors. */
void sr_broker_clear_errors(sr_broker_t *b, int apikey);

/* ----------------------------------------------------------- topic admin */
/* Topic administration on a real cluster through the Admin API
 * (src/kafka/kafka_admin.c): `streamrec topics`, and the integration tests
 * when they run against a real Kafka. The embedded cluster does not serve
 * these requests: use sr_broker_topic_create there. Each call makes one
 * short-lived client from brokers and kafka (may be NULL: connection and
 * security properties, applied as given; a property librdkafka refuses is
 * SR_ERR_CONF "kafka.KEY=VALUE: reason") and blocks for at most timeout_ms.
 * Thread: any; nothing is shared between calls. */
typedef struct sr_kafka_topic_spec_s {
  const char *name;
  int partitions;        /* >= 1 (-1: the brokers' num.partitions) */
  int replication;       /* >= 1, or -1: the brokers' default.replication.factor */
  const sr_kv_t *config; /* topic configs (cleanup.policy, min.insync.replicas, ...); may be NULL */
  int n_config;
} sr_kafka_topic_spec_t;

typedef enum {
  SR_KAFKA_TOPIC_FAILED = 0,  /* not done (the call returned an error) */
  SR_KAFKA_TOPIC_CREATED = 1, /* created by this call */
  SR_KAFKA_TOPIC_EXISTED = 2, /* already there with the partition count asked for */
} sr_kafka_topic_outcome_t;

/* Creates topics[0..n-1] in one CreateTopics request and returns once the
 * metadata of every broker shows each with a leader for every partition (so
 * a client made next finds it, whichever broker it asks). A topic that
 * already exists is fine when it has the partition count asked for (its
 * configuration is not compared or changed); with another count the call
 * fails with SR_ERR_STATE and an errstr naming both counts. Returns SR_OK
 * with outcome[i] (may be NULL; borrowed, n entries) per topic, or
 * SR_ERR_INVALID_ARG, SR_ERR_CONF, SR_ERR_KAFKA (the broker refused:
 * policy, replication factor above the broker count, bad config; errstr
 * has the broker's reason) or SR_ERR_TIMEOUT with errstr. Topics are
 * borrowed for the call. */
sr_err_t sr_kafka_topics_create(const char *brokers, const sr_kafka_topic_spec_t *topics, int n,
                                const sr_kv_t *kafka, int n_kafka, int timeout_ms,
                                sr_kafka_topic_outcome_t *outcome, char *errstr, size_t errsz);

/* Deletes the topics names[0..n-1] (a topic already gone is not an error).
 * Returns SR_OK, or SR_ERR_INVALID_ARG, SR_ERR_CONF, SR_ERR_KAFKA or
 * SR_ERR_TIMEOUT with errstr. */
sr_err_t sr_kafka_topics_delete(const char *brokers, const char *const *names, int n,
                                const sr_kv_t *kafka, int n_kafka, int timeout_ms, char *errstr,
                                size_t errsz);

/* Number of brokers the cluster's metadata lists, or -1 with errstr
 * (unreachable within timeout_ms, refused property). */
int sr_kafka_broker_count(const char *brokers, const sr_kv_t *kafka, int n_kafka, int timeout_ms,
                          char *errstr, size_t errsz);

#endif
