/*
 * streamrec error codes.
 *
 * One list, written once as an X-macro, expands into the enum, sr_err2str()
 * and sr_err2name() (the libuv UV_ERRNO_MAP pattern). SR_OK is 0, errors are
 * negative. Foreign detail (rd_kafka_err2str, avro_strerror) goes into a
 * caller-provided errstr buffer, never into this list.
 *
 * The third column says whether an operation failing with the code may
 * succeed when retried unchanged, after a wait or a poll (librdkafka's
 * "retriable"): stages use it to choose between retry and dead-letter or
 * stop. QUEUE_FULL and TIMEOUT are; DELIVERY is not: a failed delivery
 * report comes after librdkafka's own retries (delivery.timeout.ms), so
 * the pipeline stops on it. STATE_FULL is not either: a partition's user
 * bound frees up only when users are forgotten, so the pipeline
 * dead-letters the event instead of waiting.
 */
#ifndef STREAMREC_ERR_H
#define STREAMREC_ERR_H

#define SR_ERR_MAP(X)                                                                              \
  X(OK, 0, 0, "success")                                                                           \
  X(NOMEM, -1, 1, "out of memory")                                                                 \
  X(INVALID_ARG, -2, 0, "invalid argument")                                                        \
  X(IO, -3, 1, "input/output error")                                                               \
  X(FORMAT, -4, 0, "malformed file")                                                               \
  X(CHECKSUM, -5, 0, "checksum mismatch")                                                          \
  X(TRUNCATED, -6, 0, "truncated input")                                                           \
  X(VERSION, -7, 0, "unsupported format version")                                                  \
  X(BAD_FRAMING, -8, 0, "bad Confluent framing (magic byte or length)")                            \
  X(UNKNOWN_SCHEMA, -9, 0, "unknown schema id")                                                    \
  X(BAD_AVRO, -10, 0, "invalid Avro body")                                                         \
  X(MISSING_FIELD, -11, 0, "required field missing or empty")                                      \
  X(UNKNOWN_ITEM, -12, 0, "item not in model catalogue")                                           \
  X(KAFKA, -13, 0, "Kafka client error")                                                           \
  X(TIMEOUT, -14, 1, "timed out")                                                                  \
  X(CONF, -15, 0, "invalid configuration")                                                         \
  X(NOT_FOUND, -16, 0, "not found")                                                                \
  X(QUEUE_FULL, -17, 1, "queue full")                                                              \
  X(DELIVERY, -18, 0, "message delivery failed")                                                   \
  X(STATE, -19, 0, "invalid state for operation")                                                  \
  X(MODEL, -20, 0, "model mismatch")                                                               \
  X(FATAL, -21, 0, "fatal error")                                                                  \
  X(INVALID_FIELD, -22, 0, "field value outside the accepted range")                               \
  X(KEY_MISMATCH, -23, 0, "Kafka key is not the event's user id")                                  \
  X(TOO_LARGE, -24, 0, "message larger than the producer accepts")                                 \
  X(STATE_FULL, -25, 0, "partition state holds its maximum of users")                              \
  X(CONSUME, -26, 0, "consumer error reported for a partition")                                    \
  X(ENCODE, -27, 0, "recommendation could not be encoded")

typedef enum sr_err_e {
#define SR__ERR_ENUM(name, code, retriable, msg) SR_ERR_##name = code,
  SR_ERR_MAP(SR__ERR_ENUM)
#undef SR__ERR_ENUM
      SR_OK = SR_ERR_OK
} sr_err_t;

/* Human-readable description of err. Never NULL; static storage. Any thread. */
const char *sr_err2str(sr_err_t err);
/* Symbolic name ("BAD_AVRO") of err. Never NULL; static storage. Any thread. */
const char *sr_err2name(sr_err_t err);
/* 1 when an operation that failed with err may succeed if retried unchanged
 * (the table's third column), 0 otherwise and for codes not in the table.
 * Any thread. */
int sr_err_is_retriable(sr_err_t err);

#endif
