/*
 * input: the input rules and the dead-letter headers (see input.h).
 *
 * Why rules at all: an event is untrusted input that reaches per-user
 * state; an id of megabytes, a NaN rating or a timestamp far in the future
 * (which would pin the user's clock, and with it the seen filter's window)
 * is refused before it touches anything, and dead-lettered with the rule
 * it broke. key_check keeps every event of a user in one partition, which
 * the per-partition state relies on.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "pipeline/input.h"

/* "abc…": a bounded, printable rendering of an untrusted id for a reason
 * header. */
static void sr_pipeline_input_show(char *out, size_t cap, const void *ptr, size_t len) {
  size_t o = 0;
  const unsigned char *c = ptr;
  for (size_t i = 0; i < len && i < 32 && o + 5 < cap; i++)
    out[o++] = c[i] >= 0x20 && c[i] < 0x7f && c[i] != '\'' ? (char)c[i] : '?';
  out[o] = 0;
  if (len > 32 && o + 4 < cap) snprintf(out + o, cap - o, "...");
}

/* The input rules (documented in docs/ARCHITECTURE.md, options in
 * docs/CONFIGURATION.md): ids of at most id_max_bytes, a finite value, a
 * timestamp from 1970 up to future_max_ms past the worker's clock, and
 * (key_check) a Kafka key equal to the user id, so that all of a user's
 * events meet in one partition. */
sr_err_t sr_pipeline_input_check(const sr_pipeline_conf_t *c, const sr_msg_t *m,
                                 const sr_event_t *ev, int64_t now, char *es, size_t essz) {
  const struct {
    const char *name;
    sr_str_t v;
  } ids[] = {{"event_id", ev->event_id},
             {"user_id", ev->user_id},
             {"item_id", ev->item_id},
             {"scenario", ev->scenario}};
  for (size_t i = 0; i < SR_ARRAY_SIZE(ids); i++)
    if (ids[i].v.len > (size_t)c->id_max_bytes)
      return sr_seterr(es, essz, SR_ERR_INVALID_FIELD,
                       "%s is %zu bytes, more than event.id.max.bytes (%d)", ids[i].name,
                       ids[i].v.len, c->id_max_bytes);
  if (!isfinite(ev->value))
    return sr_seterr(es, essz, SR_ERR_INVALID_FIELD, "value is not a finite number (%g)",
                     (double)ev->value);
  if (ev->ts_ms < 0)
    return sr_seterr(es, essz, SR_ERR_INVALID_FIELD, "timestamp %lld ms is before 1970-01-01",
                     (long long)ev->ts_ms);
  if (ev->ts_ms > now && ev->ts_ms - now > c->future_max_ms)
    return sr_seterr(es, essz, SR_ERR_INVALID_FIELD,
                     "timestamp %lld ms is %lld ms ahead of this worker's clock (more than "
                     "event.time.future.max.ms %lld)",
                     (long long)ev->ts_ms, (long long)(ev->ts_ms - now),
                     (long long)c->future_max_ms);
  if (c->key_check &&
      (!m->key || m->key_len != ev->user_id.len || memcmp(m->key, ev->user_id.ptr, m->key_len))) {
    char k[48], u[48];
    sr_pipeline_input_show(k, sizeof(k), m->key, m->key ? m->key_len : 0);
    sr_pipeline_input_show(u, sizeof(u), ev->user_id.ptr, ev->user_id.len);
    return m->key ? sr_seterr(es, essz, SR_ERR_KEY_MISMATCH,
                              "Kafka key '%s' (%zu bytes) is not the user_id '%s' (%zu bytes): "
                              "a user's events must share one key (event.key.check)",
                              k, m->key_len, u, ev->user_id.len)
                  : sr_seterr(es, essz, SR_ERR_KEY_MISMATCH,
                              "message has no Kafka key; the key must be the user_id '%s' "
                              "(event.key.check)",
                              u);
  }
  return SR_OK;
}

void sr_pipeline_dlq_headers(sr_pipeline_dlq_headers_t *d, const sr_msg_t *m,
                             const char *default_topic, sr_err_t why, const char *reason) {
  snprintf(d->part, sizeof(d->part), "%d", (int)m->partition);
  snprintf(d->off, sizeof(d->off), "%lld", (long long)m->offset);
  snprintf(d->ts, sizeof(d->ts), "%lld", (long long)m->timestamp_ms);
  snprintf(d->ksz, sizeof(d->ksz), "%zu", m->key ? m->key_len : 0);
  snprintf(d->vsz, sizeof(d->vsz), "%zu", m->value ? m->len : 0);
  const char *ename = sr_err2name(why);
  const char *topic = m->topic ? m->topic : default_topic;
  const sr_header_t h[SR_DLQ_HEADERS_CUT] = {
      {"streamrec.error", ename, strlen(ename)},
      {"streamrec.reason", reason, strlen(reason)},
      {"streamrec.source.topic", topic, strlen(topic)},
      {"streamrec.source.partition", d->part, strlen(d->part)},
      {"streamrec.source.offset", d->off, strlen(d->off)},
      {"streamrec.source.timestamp", d->ts, strlen(d->ts)},
      {"streamrec.truncated", "true", 4},
      {"streamrec.original.key.size", d->ksz, strlen(d->ksz)},
      {"streamrec.original.value.size", d->vsz, strlen(d->vsz)},
  };
  memcpy(d->h, h, sizeof(h));
}
