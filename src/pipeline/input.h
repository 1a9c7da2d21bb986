/*
 * input: what the pipeline decides about one input message on its own,
 * internal to src/pipeline: the input rules an event must meet before it
 * touches state, and the headers of the dead letter that carries a message
 * the pipeline could not serve (docs/ARCHITECTURE.md "Input rules" and
 * "Dead letters"). Pure functions: no Kafka client, no logging.
 *
 * Thread: any (no shared state).
 */
#ifndef STREAMREC_PIPELINE_INPUT_H
#define STREAMREC_PIPELINE_INPUT_H

#include <stddef.h>
#include "streamrec/event.h"
#include "streamrec/kafka.h"
#include "streamrec/pipeline.h"

/* What a dead letter keeps of an input too large to copy whole. */
#define SR_DLQ_KEY_KEEP 1024
#define SR_DLQ_VALUE_KEEP 65536

/* Checks decoded event ev of message m against the input rules of c
 * (id_max_bytes, future_max_ms against the wall clock now_ms, key_check).
 * Returns SR_OK, SR_ERR_INVALID_FIELD or SR_ERR_KEY_MISMATCH with es
 * saying which rule and the offending value (bounded, printable). */
sr_err_t sr_pipeline_input_check(const sr_pipeline_conf_t *c, const sr_msg_t *m,
                                 const sr_event_t *ev, int64_t now_ms, char *es, size_t essz);

/* The headers of a dead letter of m: error name, reason, source topic
 * (m->topic, else default_topic), partition, offset, timestamp, then three
 * that only a truncated dead letter carries (truncated, original key and
 * value sizes). */
#define SR_DLQ_HEADERS 6     /* headers of a whole dead letter */
#define SR_DLQ_HEADERS_CUT 9 /* ... of a truncated one */
typedef struct sr_pipeline_dlq_headers_s {
  char part[16], off[24], ts[24], ksz[24], vsz[24];
  sr_header_t h[SR_DLQ_HEADERS_CUT];
} sr_pipeline_dlq_headers_t;
/* Fills *d (its h[] point into *d, at why's static name and at reason and
 * the topic, which must outlive the send). */
void sr_pipeline_dlq_headers(sr_pipeline_dlq_headers_t *d, const sr_msg_t *m,
                             const char *default_topic, sr_err_t why, const char *reason);

#endif
