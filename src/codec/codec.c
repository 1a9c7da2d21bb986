/*
 * codec: owns the Avro wire format of UserEvent and Recommendation, both
 * ways (the only file in streamrec that includes Avro C).
 *
 * Why it is built this way:
 * - Each schema is parsed once per codec and checked against the field
 *   tables below (name, type, enum symbols), so a schema edit that the C
 *   structs do not follow fails at sr_codec_new(), not on the first message.
 * - Avro C 1.11 trusts its input: it allocates whatever string length a
 *   varint claims, loops over any array block count and shifts int varints
 *   past 32 bits. So every body is first walked by sr__walk(), a validator
 *   for exactly our two schemas.
 * - UserEvent (the serve hot path) is decoded by that walk alone: the
 *   record is flat, so the values the validator captures are the event,
 *   its strings are slices of the message (zero copy) and nothing is
 *   allocated; Avro C never reads an event. Recommendation (nested items,
 *   read by `recs` and the tests) is validated the same way and then read
 *   by avro_value_read(), which allocates per string it reads.
 * - Encoding both records goes through Avro C's writer. Values, reader and
 *   writer are made once per codec and reused; decode and encode use
 *   separate values, so encoding never invalidates the strings a decode
 *   lent out. Encoding keeps the Recommendation items array alive across
 *   calls (it only shrinks by reset), so steady-state encoding does not
 *   allocate.
 *
 * Thread: a codec is used by one thread at a time (codec.h).
 */
#include <avro.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "schemas_gen.h"
#include "streamrec/codec.h"

#define SR__HDR 5 /* magic byte + big-endian int32 schema id */

/* The wire kinds our two schemas use. */
typedef enum {
  SR__K_STRING,
  SR__K_INT,
  SR__K_LONG,
  SR__K_FLOAT,
  SR__K_BOOL,
  SR__K_ENUM,
  SR__K_ITEMS
} sr__kind_t;

typedef struct sr__field_s {
  const char *name;
  sr__kind_t kind;
} sr__field_t;

/* Field order is wire order: it must match the .avsc files (checked at codec creation). */
enum {
  SR__EV_EVENT_ID,
  SR__EV_USER_ID,
  SR__EV_ITEM_ID,
  SR__EV_TYPE,
  SR__EV_VALUE,
  SR__EV_TS,
  SR__EV_SCENARIO,
  SR__EV__CNT
};
static const sr__field_t sr__ev_fields[SR__EV__CNT] = {
    {"event_id", SR__K_STRING}, {"user_id", SR__K_STRING}, {"item_id", SR__K_STRING},
    {"type", SR__K_ENUM},       {"value", SR__K_FLOAT},    {"timestamp", SR__K_LONG},
    {"scenario", SR__K_STRING}};

enum { SR__RI_ITEM_ID, SR__RI_SCORE, SR__RI_PROPENSITY, SR__RI_EXPLORE, SR__RI__CNT };
static const sr__field_t sr__ri_fields[SR__RI__CNT] = {{"item_id", SR__K_STRING},
                                                       {"score", SR__K_FLOAT},
                                                       {"propensity", SR__K_FLOAT},
                                                       {"explore", SR__K_BOOL}};
#define SR__RI_MIN_BYTES 10 /* empty item_id (1) + 2 floats (8) + boolean (1) */

enum {
  SR__REC_USER_ID,
  SR__REC_SCENARIO,
  SR__REC_ITEMS,
  SR__REC_MODEL_VERSION,
  SR__REC_SOURCE_EVENT_ID,
  SR__REC_SOURCE_PARTITION,
  SR__REC_SOURCE_OFFSET,
  SR__REC_EVENT_TIME,
  SR__REC_PRODUCED_AT,
  SR__REC__CNT
};
static const sr__field_t sr__rec_fields[SR__REC__CNT] = {{"user_id", SR__K_STRING},
                                                         {"scenario", SR__K_STRING},
                                                         {"items", SR__K_ITEMS},
                                                         {"model_version", SR__K_STRING},
                                                         {"source_event_id", SR__K_STRING},
                                                         {"source_partition", SR__K_INT},
                                                         {"source_offset", SR__K_LONG},
                                                         {"event_time", SR__K_LONG},
                                                         {"produced_at", SR__K_LONG}};

static const avro_type_t sr__avro_type[] = {
    [SR__K_STRING] = AVRO_STRING, [SR__K_INT] = AVRO_INT32,    [SR__K_LONG] = AVRO_INT64,
    [SR__K_FLOAT] = AVRO_FLOAT,   [SR__K_BOOL] = AVRO_BOOLEAN, [SR__K_ENUM] = AVRO_ENUM,
    [SR__K_ITEMS] = AVRO_ARRAY};

struct sr_codec_s {
  int32_t ev_id, rec_id;
  avro_schema_t ev_schema, rec_schema;
  avro_value_iface_t *ev_iface, *rec_iface;
  /* iface == NULL until created; a UserEvent is never read by Avro C (the walk decodes it) */
  avro_value_t ev_out, rec_in, rec_out;
  avro_reader_t reader;
  avro_writer_t writer;
  sr_rec_item_t *items; /* lent out by sr_codec_decode_rec() */
  size_t items_cap;
  sr_buf_t scratch; /* NUL-terminated copy of the string being encoded */
};

/* ------------------------------------------------------------------------ */
/* Schema loading                                                           */

/* Checks that record schema s has exactly the fields in f[0..n). */
static sr_err_t sr__check_schema(avro_schema_t s, const sr__field_t *f, size_t n, char *errstr,
                                 size_t errsz) {
  if (!is_avro_record(s) || avro_schema_record_size(s) != n)
    return sr_seterr(errstr, errsz, SR_ERR_FATAL, "schema %s: expected a record of %zu fields",
                     s ? avro_schema_name(s) : "?", n);
  for (size_t i = 0; i < n; i++) {
    const char *name = avro_schema_record_field_name(s, (int)i);
    avro_schema_t fs = avro_schema_record_field_get_by_index(s, (int)i);
    if (!name || !fs || strcmp(name, f[i].name) || avro_typeof(fs) != sr__avro_type[f[i].kind])
      return sr_seterr(errstr, errsz, SR_ERR_FATAL,
                       "schema %s: field %zu is '%s', the codec expects '%s' of Avro type %d",
                       avro_schema_name(s), i, name ? name : "?", f[i].name,
                       (int)sr__avro_type[f[i].kind]);
    if (f[i].kind == SR__K_ENUM) {
      int ok = avro_schema_enum_number_of_symbols(fs) == SR_EV__CNT;
      for (int j = 0; ok && j < SR_EV__CNT; j++) {
        const char *sym = avro_schema_enum_get(fs, j);
        ok = sym && !strcmp(sym, sr_event_type_name((sr_event_type_t)j));
      }
      if (!ok)
        return sr_seterr(errstr, errsz, SR_ERR_FATAL,
                         "schema %s: enum %s symbols differ from SR_EVENT_TYPE_MAP",
                         avro_schema_name(s), f[i].name);
    } else if (f[i].kind == SR__K_ITEMS) {
      sr_err_t err =
          sr__check_schema(avro_schema_array_items(fs), sr__ri_fields, SR__RI__CNT, errstr, errsz);
      if (err) return err;
    }
  }
  return SR_OK;
}

/* Parses json into *schema and makes its generic class, the write value out and, unless in
 * is NULL, a read value. */
static sr_err_t sr__load(const char *json, const sr__field_t *f, size_t n, avro_schema_t *schema,
                         avro_value_iface_t **iface, avro_value_t *in, avro_value_t *out,
                         char *errstr, size_t errsz) {
  sr_err_t err;
  if (avro_schema_from_json_length(json, strlen(json), schema))
    return sr_seterr(errstr, errsz, SR_ERR_FATAL, "schema: %s", avro_strerror());
  if ((err = sr__check_schema(*schema, f, n, errstr, errsz))) return err;
  if (!(*iface = avro_generic_class_from_schema(*schema)))
    return sr_seterr(errstr, errsz, SR_ERR_FATAL, "schema %s: %s", avro_schema_name(*schema),
                     avro_strerror());
  if ((in && avro_generic_value_new(*iface, in)) || avro_generic_value_new(*iface, out))
    return sr_seterr(errstr, errsz, SR_ERR_NOMEM, "schema %s: %s", avro_schema_name(*schema),
                     avro_strerror());
  return SR_OK;
}

sr_codec_t *sr_codec_new(int32_t event_schema_id, int32_t rec_schema_id, char *errstr,
                         size_t errsz) {
  sr_codec_t *c = sr_calloc(1, sizeof(*c));
  c->ev_id = event_schema_id;
  c->rec_id = rec_schema_id;
  sr_buf_init(&c->scratch);
  if (sr__load(SR_SCHEMA_USER_EVENT_JSON, sr__ev_fields, SR__EV__CNT, &c->ev_schema, &c->ev_iface,
               NULL, &c->ev_out, errstr, errsz) ||
      sr__load(SR_SCHEMA_RECOMMENDATION_JSON, sr__rec_fields, SR__REC__CNT, &c->rec_schema,
               &c->rec_iface, &c->rec_in, &c->rec_out, errstr, errsz))
    goto fail;
  c->reader = avro_reader_memory("", 0);
  c->writer = avro_writer_memory("", 0);
  if (!c->reader || !c->writer) {
    sr_seterr(errstr, errsz, SR_ERR_NOMEM, "avro memory reader/writer: %s", avro_strerror());
    goto fail;
  }
  return c;
fail:
  sr_codec_destroy(c);
  return NULL;
}

static void sr__value_free(avro_value_t *v) {
  if (v->iface) avro_value_decref(v);
  v->iface = NULL;
}

void sr_codec_destroy(sr_codec_t *c) {
  if (!c) return;
  sr__value_free(&c->ev_out);
  sr__value_free(&c->rec_in);
  sr__value_free(&c->rec_out);
  if (c->ev_iface) avro_value_iface_decref(c->ev_iface);
  if (c->rec_iface) avro_value_iface_decref(c->rec_iface);
  if (c->ev_schema) avro_schema_decref(c->ev_schema);
  if (c->rec_schema) avro_schema_decref(c->rec_schema);
  if (c->reader) avro_reader_free(c->reader);
  if (c->writer) avro_writer_free(c->writer);
  sr_free(c->items);
  sr_buf_free(&c->scratch);
  sr_free(c);
}

const char *sr_codec_event_schema_json(void) { return SR_SCHEMA_USER_EVENT_JSON; }
const char *sr_codec_rec_schema_json(void) { return SR_SCHEMA_RECOMMENDATION_JSON; }

#ifndef SR_AVRO_C_VERSION /* set by CMakeLists.txt from pkg-config */
#define SR_AVRO_C_VERSION "unknown"
#endif
const char *sr_codec_avro_version(void) { return SR_AVRO_C_VERSION; }

/* ------------------------------------------------------------------------ */
/* Validator: walks an untrusted body exactly as the schema says            */

typedef struct sr__rd_s {
  const unsigned char *p, *end;
  long long item; /* index into items while inside one, else -1 (for messages) */
  char *errstr;
  size_t errsz;
} sr__rd_t;

/* Formats "<field>: <reason>" (field prefixed with items[i]. inside an item). */
static sr_err_t __attribute__((format(printf, 3, 4)))
sr__bad(sr__rd_t *r, const char *field, const char *fmt, ...) {
  if (r->errstr && r->errsz) {
    int n = r->item >= 0 ? snprintf(r->errstr, r->errsz, "items[%lld].%s: ", r->item, field)
                         : snprintf(r->errstr, r->errsz, "%s: ", field);
    if (n >= 0 && (size_t)n < r->errsz) {
      va_list ap;
      va_start(ap, fmt);
      vsnprintf(r->errstr + n, r->errsz - (size_t)n, fmt, ap);
      va_end(ap);
    }
  }
  return SR_ERR_BAD_AVRO;
}

static size_t sr__left(const sr__rd_t *r) { return (size_t)(r->end - r->p); }

/* Reads a zigzag varint of at most maxb bytes (5: int, 10: long), rejecting
 * longer encodings and bits beyond 32/64. */
static sr_err_t sr__varint(sr__rd_t *r, const char *field, int maxb, int64_t *out) {
  uint64_t v = 0;
  for (int i = 0;; i++) {
    if (i == maxb) return sr__bad(r, field, "varint longer than %d bytes", maxb);
    if (r->p == r->end) return sr__bad(r, field, "truncated varint");
    unsigned b = *r->p++;
    v |= (uint64_t)(b & 0x7f) << (7 * i);
    if (!(b & 0x80)) {
      if (i == maxb - 1 && (b >> (maxb == 5 ? 4 : 1)))
        return sr__bad(r, field, "varint overflows %d bits", maxb == 5 ? 32 : 64);
      break;
    }
  }
  *out = (int64_t)((v >> 1) ^ (0 - (v & 1)));
  return SR_OK;
}

/* Length of the valid UTF-8 prefix of p[0..n) (RFC 3629: no overlongs, no
 * surrogates, nothing above U+10FFFF). Avro strings must be UTF-8; strict
 * consumers (python's decoder) reject anything else, so bad text is refused
 * here rather than copied into recommendations. */
static size_t sr__utf8_prefix(const unsigned char *p, size_t n) {
  size_t i = 0;
  while (i < n) {
    unsigned c = p[i];
    size_t len;
    unsigned lo = 0x80, hi = 0xbf;
    if (c < 0x80) {
      i++;
      continue;
    }
    if (c >= 0xc2 && c <= 0xdf)
      len = 2;
    else if (c >= 0xe0 && c <= 0xef) {
      len = 3;
      if (c == 0xe0) lo = 0xa0;
      if (c == 0xed) hi = 0x9f;
    } else if (c >= 0xf0 && c <= 0xf4) {
      len = 4;
      if (c == 0xf0) lo = 0x90;
      if (c == 0xf4) hi = 0x8f;
    } else
      return i;
    if (i + len > n) return i;
    if (p[i + 1] < lo || p[i + 1] > hi) return i;
    for (size_t k = 2; k < len; k++)
      if ((p[i + k] & 0xc0) != 0x80) return i;
    i += len;
  }
  return n;
}

/* A field value captured by the walker (strings point into the message). */
typedef struct sr__val_s {
  sr_str_t s;
  int64_t i;
  float f;
} sr__val_t;

static sr_err_t sr__walk(sr__rd_t *r, const sr__field_t *f, size_t n, sr__val_t *out);

/* Array of RecItem: blocks of count items; a negative count -N is followed by
 * the block's byte size (Avro spec), which must match the items exactly. */
static sr_err_t sr__walk_items(sr__rd_t *r, const char *field) {
  sr_err_t err;
  int64_t count, size, total = 0;
  for (;;) {
    if ((err = sr__varint(r, field, 10, &count))) return err;
    if (count == 0) return SR_OK;
    size = -1;
    if (count < 0) {
      if (count == INT64_MIN)
        return sr__bad(r, field, "array block count %lld out of range", (long long)count);
      count = -count;
      if ((err = sr__varint(r, field, 10, &size))) return err;
      if (size < 0 || (uint64_t)size > sr__left(r))
        return sr__bad(r, field, "array block byte size %lld out of range 0..%zu", (long long)size,
                       sr__left(r));
    }
    if ((uint64_t)count > sr__left(r) / SR__RI_MIN_BYTES || total + count > INT_MAX)
      return sr__bad(r, field, "array block count %lld exceeds what %zu remaining bytes can hold",
                     (long long)count, sr__left(r));
    const unsigned char *block = r->p;
    for (int64_t i = 0; i < count; i++) {
      r->item = total + i;
      if ((err = sr__walk(r, sr__ri_fields, SR__RI__CNT, NULL))) return err;
    }
    r->item = -1;
    if (size >= 0 && r->p - block != size)
      return sr__bad(r, field, "array block byte size %lld does not match its %td bytes of items",
                     (long long)size, r->p - block);
    total += count;
  }
}

/* Validates n fields; when out != NULL also captures each field's value. */
static sr_err_t sr__walk(sr__rd_t *r, const sr__field_t *f, size_t n, sr__val_t *out) {
  sr_err_t err = SR_OK;
  int64_t v = 0;
  for (size_t i = 0; i < n && !err; i++) {
    const char *name = f[i].name;
    switch (f[i].kind) {
    case SR__K_STRING:
      if ((err = sr__varint(r, name, 10, &v))) break;
      if (v < 0)
        err = sr__bad(r, name, "negative string length %lld", (long long)v);
      else if ((uint64_t)v > sr__left(r))
        err = sr__bad(r, name, "string length %lld exceeds remaining %zu bytes", (long long)v,
                      sr__left(r));
      else {
        size_t ok = sr__utf8_prefix(r->p, (size_t)v);
        if (ok != (size_t)v) {
          err = sr__bad(r, name, "invalid UTF-8 at byte %zu of %lld", ok, (long long)v);
          break;
        }
        if (out) out[i].s = sr_str_make((const char *)r->p, (size_t)v);
        r->p += v;
      }
      break;
    case SR__K_INT: err = sr__varint(r, name, 5, &v); break;
    case SR__K_LONG: err = sr__varint(r, name, 10, &v); break;
    case SR__K_FLOAT:
      if (sr__left(r) < 4)
        err = sr__bad(r, name, "float needs 4 bytes, %zu remain", sr__left(r));
      else {
        if (out) { /* Avro floats are IEEE 754 little-endian */
          uint32_t u = (uint32_t)r->p[0] | (uint32_t)r->p[1] << 8 | (uint32_t)r->p[2] << 16 |
                       (uint32_t)r->p[3] << 24;
          memcpy(&out[i].f, &u, 4);
        }
        r->p += 4;
      }
      break;
    case SR__K_BOOL:
      if (!sr__left(r))
        err = sr__bad(r, name, "truncated boolean");
      else if (*r->p > 1)
        err = sr__bad(r, name, "boolean byte 0x%02x is not 0 or 1", *r->p);
      else
        r->p++;
      break;
    case SR__K_ENUM:
      if ((err = sr__varint(r, name, 10, &v))) break;
      if (v < 0 || v >= SR_EV__CNT)
        err = sr__bad(r, name, "enum index %lld out of range 0..%d", (long long)v, SR_EV__CNT - 1);
      break;
    case SR__K_ITEMS: err = sr__walk_items(r, name); break;
    }
    if (out && f[i].kind != SR__K_STRING && f[i].kind != SR__K_FLOAT) out[i].i = v;
  }
  return err;
}

/* ------------------------------------------------------------------------ */
/* Decoding                                                                 */

/* Checks framing, the schema id, and validates the body for the schema; then
 * lets Avro C read it into v. */
static sr_err_t sr__decode(sr_codec_t *c, const void *buf, size_t len, int32_t want_id,
                           const char *what, const sr__field_t *f, size_t n, avro_value_t *v,
                           sr__val_t *vals, char *errstr, size_t errsz) {
  const unsigned char *b = buf;
  if (!b && len) return sr_seterr(errstr, errsz, SR_ERR_INVALID_ARG, "NULL buffer");
  if (len < SR__HDR)
    return sr_seterr(errstr, errsz, SR_ERR_BAD_FRAMING,
                     "message of %zu bytes is shorter than the 5-byte Confluent header", len);
  if (b[0] != 0) return sr_seterr(errstr, errsz, SR_ERR_BAD_FRAMING, "bad magic byte 0x%02x", b[0]);
  int32_t id = (int32_t)((uint32_t)b[1] << 24 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 8 | b[4]);
  if (id != want_id)
    return sr_seterr(errstr, errsz, SR_ERR_UNKNOWN_SCHEMA,
                     "schema id %d is not the %s schema id %d", (int)id, what, (int)want_id);

  sr__rd_t r = {b + SR__HDR, b + len, -1, errstr, errsz};
  sr_err_t err = sr__walk(&r, f, n, vals);
  if (err) return err;
  if (r.p != r.end)
    return sr_seterr(errstr, errsz, SR_ERR_BAD_AVRO, "trailing %zu bytes after record",
                     sr__left(&r));
  if (!v) return SR_OK; /* the caller uses the captured values */

  avro_reader_memory_set_source(c->reader, (const char *)b + SR__HDR, (int64_t)(len - SR__HDR));
  if (avro_value_read(c->reader, v))
    return sr_seterr(errstr, errsz, SR_ERR_BAD_AVRO, "%s: %s", what, avro_strerror());
  return SR_OK;
}

/* Field accessors for values that passed sr__check_schema(): the Avro calls
 * cannot fail on them, so outputs are just pre-set to zero values. */
static sr_str_t sr__get_str(avro_value_t *rec, int idx) {
  avro_value_t f;
  const char *p = NULL;
  size_t sz = 0;
  if (!avro_value_get_by_index(rec, idx, &f, NULL)) avro_value_get_string(&f, &p, &sz);
  return p && sz ? sr_str_make(p, sz - 1) : sr_str_make("", 0); /* Avro's size counts the NUL */
}

static int64_t sr__get_long(avro_value_t *rec, int idx) {
  avro_value_t f;
  int64_t x = 0;
  if (!avro_value_get_by_index(rec, idx, &f, NULL)) avro_value_get_long(&f, &x);
  return x;
}

static float sr__get_float(avro_value_t *rec, int idx) {
  avro_value_t f;
  float x = 0;
  if (!avro_value_get_by_index(rec, idx, &f, NULL)) avro_value_get_float(&f, &x);
  return x;
}

static sr_str_t sr__scenario(sr_str_t s) { return s.len ? s : SR_STR("default"); }

/* UserEvent is flat, so the validator's captured values are the decoded
 * event: strings are slices of buf (zero copy), nothing is allocated. This
 * is the hot path of serve; Avro C still parses and checks the schema at
 * codec creation, and the fuzz targets cross-check this decoder against
 * Avro C's encoder. */
sr_err_t sr_codec_decode_event(sr_codec_t *c, const void *buf, size_t len, sr_event_t *ev,
                               char *errstr, size_t errsz) {
  sr__val_t vals[SR__EV__CNT];
  sr_err_t err;
  if (!c || !ev) return sr_seterr(errstr, errsz, SR_ERR_INVALID_ARG, "NULL codec or event");
  memset(vals, 0, sizeof(vals));
  if ((err = sr__decode(c, buf, len, c->ev_id, "UserEvent", sr__ev_fields, SR__EV__CNT, NULL, vals,
                        errstr, errsz)))
    return err;
  sr_event_t e = {0};
  e.event_id = vals[SR__EV_EVENT_ID].s;
  e.user_id = vals[SR__EV_USER_ID].s;
  e.item_id = vals[SR__EV_ITEM_ID].s;
  e.type = (sr_event_type_t)vals[SR__EV_TYPE].i;
  e.value = vals[SR__EV_VALUE].f;
  e.ts_ms = vals[SR__EV_TS].i;
  e.scenario = sr__scenario(vals[SR__EV_SCENARIO].s);
  if (!e.user_id.len) return sr_seterr(errstr, errsz, SR_ERR_MISSING_FIELD, "user_id is empty");
  if (!e.item_id.len) return sr_seterr(errstr, errsz, SR_ERR_MISSING_FIELD, "item_id is empty");
  *ev = e;
  return SR_OK;
}

sr_err_t sr_codec_decode_rec(sr_codec_t *c, const void *buf, size_t len, sr_rec_t *rec,
                             char *errstr, size_t errsz) {
  avro_value_t *v, arr, item, f;
  size_t n = 0;
  int32_t part = 0;
  sr_err_t err;
  if (!c || !rec) return sr_seterr(errstr, errsz, SR_ERR_INVALID_ARG, "NULL codec or rec");
  v = &c->rec_in;
  if ((err = sr__decode(c, buf, len, c->rec_id, "Recommendation", sr__rec_fields, SR__REC__CNT, v,
                        NULL, errstr, errsz)))
    return err;

  sr_rec_t r = {0};
  r.user_id = sr__get_str(v, SR__REC_USER_ID);
  r.scenario = sr__scenario(sr__get_str(v, SR__REC_SCENARIO));
  r.model_version = sr__get_str(v, SR__REC_MODEL_VERSION);
  r.source_event_id = sr__get_str(v, SR__REC_SOURCE_EVENT_ID);
  if (!avro_value_get_by_index(v, SR__REC_SOURCE_PARTITION, &f, NULL))
    avro_value_get_int(&f, &part);
  r.source_partition = part;
  r.source_offset = sr__get_long(v, SR__REC_SOURCE_OFFSET);
  r.event_time = sr__get_long(v, SR__REC_EVENT_TIME);
  r.produced_at = sr__get_long(v, SR__REC_PRODUCED_AT);
  if (!r.user_id.len) return sr_seterr(errstr, errsz, SR_ERR_MISSING_FIELD, "user_id is empty");

  if (!avro_value_get_by_index(v, SR__REC_ITEMS, &arr, NULL)) avro_value_get_size(&arr, &n);
  if (n > c->items_cap) { /* n <= INT_MAX: the validator bounded it */
    c->items_cap = SR_MAX(n, 2 * c->items_cap);
    c->items = sr_realloc(c->items, c->items_cap * sizeof(*c->items));
  }
  for (size_t i = 0; i < n; i++) {
    sr_rec_item_t *it = &c->items[i];
    int explore = 0;
    memset(it, 0, sizeof(*it));
    if (avro_value_get_by_index(&arr, i, &item, NULL)) continue;
    it->item_id = sr__get_str(&item, SR__RI_ITEM_ID);
    it->score = sr__get_float(&item, SR__RI_SCORE);
    it->propensity = sr__get_float(&item, SR__RI_PROPENSITY);
    if (!avro_value_get_by_index(&item, SR__RI_EXPLORE, &f, NULL))
      avro_value_get_boolean(&f, &explore);
    it->explore = explore;
    if (!it->item_id.len)
      return sr_seterr(errstr, errsz, SR_ERR_MISSING_FIELD, "items[%zu].item_id is empty", i);
  }
  r.items = c->items;
  r.n_items = (int)n;
  *rec = r;
  return SR_OK;
}

/* ------------------------------------------------------------------------ */
/* Encoding                                                                 */

/* Copies s into field idx of rec. Avro's string setters want a NUL-terminated
 * source and a size counting the NUL, and our slices have neither. */
static int sr__set_str(sr_codec_t *c, avro_value_t *rec, int idx, sr_str_t s) {
  avro_value_t f;
  if (!s.ptr && s.len) return EINVAL;
  sr_buf_reset(&c->scratch);
  sr_buf_append(&c->scratch, s.ptr, s.len);
  sr_buf_putc(&c->scratch, 0);
  return avro_value_get_by_index(rec, idx, &f, NULL) ||
         avro_value_set_string_len(&f, (const char *)c->scratch.data, s.len + 1);
}

static int sr__set_long(avro_value_t *rec, int idx, int64_t x) {
  avro_value_t f;
  return avro_value_get_by_index(rec, idx, &f, NULL) || avro_value_set_long(&f, x);
}

static int sr__set_float(avro_value_t *rec, int idx, float x) {
  avro_value_t f;
  return avro_value_get_by_index(rec, idx, &f, NULL) || avro_value_set_float(&f, x);
}

/* Appends header + body of v to out; out is unchanged on failure. */
static sr_err_t sr__write(sr_codec_t *c, avro_value_t *v, int32_t id, sr_buf_t *out) {
  size_t sz;
  if (avro_value_sizeof(v, &sz)) goto fail;
  sr_buf_reserve(out, SR__HDR + sz);
  unsigned char *h = out->data + out->len;
  uint32_t uid = (uint32_t)id;
  h[0] = 0;
  h[1] = (unsigned char)(uid >> 24);
  h[2] = (unsigned char)(uid >> 16);
  h[3] = (unsigned char)(uid >> 8);
  h[4] = (unsigned char)uid;
  avro_writer_memory_set_dest(c->writer, (const char *)h + SR__HDR, (int64_t)sz);
  if (avro_value_write(c->writer, v) || avro_writer_tell(c->writer) != (int64_t)sz) goto fail;
  out->len += SR__HDR + sz;
  return SR_OK;
fail:
  sr_log_error("decode", "encode schema id %d: %s", (int)id, avro_strerror());
  return SR_ERR_BAD_AVRO;
}

/* Also rejects what our decoder would reject: SR_ERR_MISSING_FIELD for an
 * empty user_id/item_id, SR_ERR_INVALID_ARG for a bad type or NULL slice.
 * An empty scenario is written as "default". */
sr_err_t sr_codec_encode_event(sr_codec_t *c, const sr_event_t *ev, sr_buf_t *out) {
  avro_value_t *v, f;
  if (!c || !ev || !out || (unsigned)ev->type >= SR_EV__CNT) return SR_ERR_INVALID_ARG;
  if (!ev->user_id.len || !ev->item_id.len) return SR_ERR_MISSING_FIELD;
  v = &c->ev_out;
  if (sr__set_str(c, v, SR__EV_EVENT_ID, ev->event_id) ||
      sr__set_str(c, v, SR__EV_USER_ID, ev->user_id) ||
      sr__set_str(c, v, SR__EV_ITEM_ID, ev->item_id) ||
      avro_value_get_by_index(v, SR__EV_TYPE, &f, NULL) || avro_value_set_enum(&f, (int)ev->type) ||
      sr__set_float(v, SR__EV_VALUE, ev->value) || sr__set_long(v, SR__EV_TS, ev->ts_ms) ||
      sr__set_str(c, v, SR__EV_SCENARIO, sr__scenario(ev->scenario)))
    return SR_ERR_INVALID_ARG;
  return sr__write(c, v, c->ev_id, out);
}

/* Same rules as sr_codec_encode_event; every items[i].item_id must be set. */
sr_err_t sr_codec_encode_rec(sr_codec_t *c, const sr_rec_t *rec, sr_buf_t *out) {
  avro_value_t *v, arr, item, f;
  size_t have = 0;
  if (!c || !rec || !out || rec->n_items < 0 || (rec->n_items && !rec->items))
    return SR_ERR_INVALID_ARG;
  if (!rec->user_id.len) return SR_ERR_MISSING_FIELD;
  for (int i = 0; i < rec->n_items; i++)
    if (!rec->items[i].item_id.len) return SR_ERR_MISSING_FIELD;
  v = &c->rec_out;
  if (sr__set_str(c, v, SR__REC_USER_ID, rec->user_id) ||
      sr__set_str(c, v, SR__REC_SCENARIO, sr__scenario(rec->scenario)) ||
      sr__set_str(c, v, SR__REC_MODEL_VERSION, rec->model_version) ||
      sr__set_str(c, v, SR__REC_SOURCE_EVENT_ID, rec->source_event_id) ||
      avro_value_get_by_index(v, SR__REC_SOURCE_PARTITION, &f, NULL) ||
      avro_value_set_int(&f, rec->source_partition) ||
      sr__set_long(v, SR__REC_SOURCE_OFFSET, rec->source_offset) ||
      sr__set_long(v, SR__REC_EVENT_TIME, rec->event_time) ||
      sr__set_long(v, SR__REC_PRODUCED_AT, rec->produced_at) ||
      avro_value_get_by_index(v, SR__REC_ITEMS, &arr, NULL) || avro_value_get_size(&arr, &have))
    return SR_ERR_INVALID_ARG;
  /* The generic array can only shrink by reset, which frees every element's
   * strings: reuse the existing elements and reset only when K shrinks. */
  if (have > (size_t)rec->n_items) {
    if (avro_value_reset(&arr)) return SR_ERR_INVALID_ARG;
    have = 0;
  }
  for (int i = 0; i < rec->n_items; i++) {
    const sr_rec_item_t *it = &rec->items[i];
    if (((size_t)i < have ? avro_value_get_by_index(&arr, i, &item, NULL)
                          : avro_value_append(&arr, &item, NULL)) ||
        sr__set_str(c, &item, SR__RI_ITEM_ID, it->item_id) ||
        sr__set_float(&item, SR__RI_SCORE, it->score) ||
        sr__set_float(&item, SR__RI_PROPENSITY, it->propensity) ||
        avro_value_get_by_index(&item, SR__RI_EXPLORE, &f, NULL) ||
        avro_value_set_boolean(&f, it->explore != 0))
      return SR_ERR_INVALID_ARG;
  }
  return sr__write(c, v, c->rec_id, out);
}
