/*
 * kafka internals: what the modules that include librdkafka (kafka/,
 * ingest/, publish/, broker/) share. Not part of the public interface, and
 * no other module includes it: it pulls in <librdkafka/rdkafka.h>.
 *
 * Every librdkafka configuration of the process is built here by
 * sr_kafka_conf_new(), so our defaults (one table, sr_kafka_defaults()) and
 * the kafka.* passthrough are applied in one order everywhere:
 *   bootstrap.servers, client.id, defaults of the client kind, the caller's
 *   fixed properties, then the user's properties (which win).
 */
#ifndef SR_KAFKA_INT_H
#define SR_KAFKA_INT_H

#include <librdkafka/rdkafka.h>

#include "streamrec/kafka.h"

/* Returns a new configuration (free with rd_kafka_conf_destroy, or hand it
 * to rd_kafka_new, which takes it on success), or NULL with errstr
 * ("kafka.KEY=VALUE: librdkafka's reason"; SR_ERR_CONF). brokers and
 * client_id may be NULL (not set); fixed and kafka may be NULL. The log
 * callback (sr_kafka_log_cb) is installed. Any thread. */
rd_kafka_conf_t *sr_kafka_conf_new(sr_kafka_client_t client, const char *brokers,
                                   const char *client_id, const sr_kv_t *fixed, int n_fixed,
                                   const sr_kv_t *kafka, int n_kafka, char *errstr, size_t errsz);

/* librdkafka's log lines into our logger (syslog levels mapped to ours).
 * Thread: runs on librdkafka's internal threads (broker and main threads of
 * every client), and now and then on the thread calling rd_kafka_new() or
 * rd_kafka_destroy(): it must only call thread-safe code. It calls
 * rd_kafka_name() and sr_log() (one locked fprintf), nothing else. */
void sr_kafka_log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf);

/* The shared part of a client's error callback: logs a client-level error
 * (all brokers down, authentication, a fatal error with its cause) at the
 * right level, in module mod, naming the client ("consumer", "producer").
 * Transport errors go to debug: librdkafka's own log line already said it.
 * Thread: the thread serving the client's queue (inside our poll calls). */
void sr_kafka_log_error(rd_kafka_t *rk, const char *mod, const char *client, int err,
                        const char *reason);

/* Fills m from a client message (err must be 0): pointers borrowed from
 * rkm, priv_ = rkm (the caller keeps ownership of rkm). */
void sr_kafka_msg_fill(sr_msg_t *m, rd_kafka_message_t *rkm);
/* Fills m as the error entry of a per-partition consumer error (rkm->err
 * set): errstr is a new "NAME: text" string (free with sr_free), priv_ =
 * rkm. */
void sr_kafka_msg_fill_error(sr_msg_t *m, rd_kafka_message_t *rkm, const char *topic);

/* The consumer's group metadata (sr_ingest_group_metadata) as the producer
 * reads it (sr_publish_txn_send_offsets): ingest makes it, publish only
 * borrows md. */
struct sr_ingest_group_s {
  rd_kafka_consumer_group_metadata_t *md;
};

#endif
