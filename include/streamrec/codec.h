/*
 * decode: the only module that includes Avro C.
 *
 * Encodes and decodes UserEvent and Recommendation in the Confluent wire
 * framing: byte 0 = magic 0, bytes 1..4 = schema id (big-endian int32),
 * then the Avro binary body. Schemas are compiled in (schemas/ (the .avsc files)) and
 * parsed once per codec; Avro values are reused across messages (no
 * per-message schema parsing). Encoding allocates nothing in steady state.
 * UserEvent decoding (the serve hot path) takes the fields straight from
 * the validated bytes, allocation-free; Recommendation decoding (CLI tools)
 * goes through Avro C's generic values, which allocate per string.
 *
 * Untrusted input: Avro C 1.11 does not bound string/bytes lengths or array
 * block counts, so every body is first walked by our own validator that
 * checks varint encodings, lengths against the remaining bytes, enum range
 * and that nothing trails the record, before Avro C sees a byte of it.
 *
 * Thread: a codec is used by one thread at a time; make one per thread.
 */
#ifndef STREAMREC_DECODE_H
#define STREAMREC_DECODE_H

#include <stddef.h>
#include <stdint.h>
#include "streamrec/common.h"
#include "streamrec/event.h"

typedef struct sr_codec_s sr_codec_t;

#define SR_DEFAULT_EVENT_SCHEMA_ID 1
#define SR_DEFAULT_REC_SCHEMA_ID 2

/* Returns a new codec or NULL with the reason in errstr. Free with
 * sr_codec_destroy(). */
sr_codec_t *sr_codec_new(int32_t event_schema_id, int32_t rec_schema_id, char *errstr,
                         size_t errsz);
void sr_codec_destroy(sr_codec_t *c); /* accepts NULL */

/* Decodes a framed UserEvent from buf[0..len).
 * Returns SR_OK and fills *ev; ev's strings are slices of buf (zero copy:
 * valid as long as buf is) except a defaulted scenario (static storage).
 * Allocation-free.
 * Errors: SR_ERR_BAD_FRAMING (short, wrong magic), SR_ERR_UNKNOWN_SCHEMA
 * (id != event schema id), SR_ERR_BAD_AVRO (truncated/invalid body or
 * trailing bytes), SR_ERR_MISSING_FIELD (empty user_id or item_id; empty
 * scenario is replaced by "default"); errstr says what exactly. */
sr_err_t sr_codec_decode_event(sr_codec_t *c, const void *buf, size_t len, sr_event_t *ev,
                               char *errstr, size_t errsz);

/* Appends a framed UserEvent to out (out is not reset). Errors, with out
 * unchanged: SR_ERR_INVALID_ARG (NULL arguments, type out of range),
 * SR_ERR_MISSING_FIELD (empty user_id or item_id). An empty scenario is
 * written as "default". */
sr_err_t sr_codec_encode_event(sr_codec_t *c, const sr_event_t *ev, sr_buf_t *out);

/* Appends a framed Recommendation to out (out is not reset). Errors, with
 * out unchanged: SR_ERR_INVALID_ARG (NULL arguments, n_items < 0 or items
 * NULL with n_items > 0), SR_ERR_MISSING_FIELD (empty user_id). */
sr_err_t sr_codec_encode_rec(sr_codec_t *c, const sr_rec_t *rec, sr_buf_t *out);

/* Decodes a framed Recommendation. rec's strings and items array are borrowed
 * from the codec, valid until the next sr_codec_decode_rec() or destroy.
 * Same error codes as sr_codec_decode_event. */
sr_err_t sr_codec_decode_rec(sr_codec_t *c, const void *buf, size_t len, sr_rec_t *rec,
                             char *errstr, size_t errsz);

/* The compiled-in schema JSON texts (static storage). */
const char *sr_codec_event_schema_json(void);
const char *sr_codec_rec_schema_json(void);

/* Version of Avro C this module was built against ("1.11.1": pkg-config's
 * modversion of avro-c at configure time, SR_AVRO_C_VERSION; Avro C has no
 * run-time version call), for doctor and /metrics. Static storage. */
const char *sr_codec_avro_version(void);

#endif
