/*
 * Internals shared by the modules that include librdkafka (ingest/,
 * publish/, broker/). Not part of the public interface.
 */
#ifndef SR_KAFKA_INT_H
#define SR_KAFKA_INT_H

#include <librdkafka/rdkafka.h>

/* librdkafka log lines (from its internal threads) into our logger, with
 * syslog levels mapped to ours. Install with rd_kafka_conf_set_log_cb. */
void sr_kafka_log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf);

#endif
