/*
 * kafka: what every Kafka client of the process shares, written once.
 *
 * - Configurations: sr_kafka_conf_new() builds every rd_kafka_conf_t (the
 *   group member, the producer, the topic reader), applying our defaults
 *   from ONE table (sr_kafka_defaults: the same rows `streamrec config
 *   --markdown` prints into docs/CONFIGURATION.md) and then the user's
 *   kafka.* properties, which override them. sr_kafka_conf_check() runs the
 *   same steps on throwaway configurations at startup, so a bad kafka.*
 *   property stops the worker before the snapshot is read, named with the
 *   config file line it came from.
 * - The log callback (librdkafka's threads) and the shared part of the
 *   error callbacks.
 * - Metadata: the partition count (the connect check of the CLI tools) and
 *   the library version.
 * - The topic reader: every partition assigned by hand (no group joined,
 *   nothing committed), from the beginning or the end, live or up to the
 *   end offsets found at start. `recs`, `train --brokers` and the tests read
 *   topics only through it.
 *
 * Why the defaults are what they are is in the table's "why" column; the
 * longer reasoning (latency first, commits after delivery, idempotence) is
 * in src/ingest/ingest.c and src/publish/publish.c.
 *
 * Thread: the functions here may be called from any thread; a reader
 * belongs to the thread that uses it. sr_kafka_log_cb runs on librdkafka's
 * internal threads.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "kafka/kafka_int.h"
#include "streamrec/common.h"
#include "streamrec/kafka.h"

#define SR_KAFKA_MOD "kafka"
#define SR_KAFKA_CONNECT_TIMEOUT_MS 10000

/* ---------------------------------------------------------------- defaults */

/* Our defaults, per client kind. Every value here has a reason tied to the
 * delivery guarantee or to latency; kafka.* (or kafka.consumer.* /
 * kafka.producer.*) overrides any of them. */
static const sr_kafka_default_t sr_kafka_default_table[] = {
    {SR_KAFKA_CONSUMER, "enable.auto.commit", "false",
     "offsets are committed by the pipeline after delivery"},
    {SR_KAFKA_CONSUMER, "enable.auto.offset.store", "false",
     "offsets are passed explicitly with each commit"},
    {SR_KAFKA_CONSUMER, "auto.offset.reset", "earliest",
     "a new group reads the whole retained topic instead of skipping it"},
    {SR_KAFKA_CONSUMER, "enable.partition.eof", "false",
     "the group member needs no end-of-partition events (the topic reader turns them on)"},
    {SR_KAFKA_CONSUMER, "fetch.wait.max.ms", "10",
     "latency first: a fetch for a quiet partition returns after 10 ms, not 500 "
     "(`serve` with the embedded broker sets 1: the mock broker holds empty fetches for "
     "the whole wait)"},
    {SR_KAFKA_CONSUMER, "fetch.min.bytes", "1", "a fetch is answered as soon as one byte is there"},
    {SR_KAFKA_PRODUCER, "enable.idempotence", "true", "no duplicates or reordering on retries"},
    {SR_KAFKA_PRODUCER, "acks", "all", "a recommendation counts as delivered only when replicated"},
    {SR_KAFKA_PRODUCER, "linger.ms", "1",
     "latency first: batches form within a millisecond (librdkafka's default is 5)"},
};

const sr_kafka_default_t *sr_kafka_defaults(int *n) {
  *n = (int)SR_ARRAY_SIZE(sr_kafka_default_table);
  return sr_kafka_default_table;
}

void sr_kafka_defaults_markdown(FILE *f) {
  fprintf(f, "Kafka client defaults chosen for latency first and for the delivery guarantee\n"
             "(override with `kafka.*`; generated from the table in `src/kafka/kafka.c`):\n\n"
             "| client | property | value | why |\n|---|---|---|---|\n");
  for (size_t i = 0; i < SR_ARRAY_SIZE(sr_kafka_default_table); i++) {
    const sr_kafka_default_t *d = &sr_kafka_default_table[i];
    fprintf(f, "| %s | `%s` | `%s` | %s |\n",
            d->client == SR_KAFKA_CONSUMER ? "consumer" : "producer", d->key, d->value, d->why);
  }
  fprintf(f, "\n");
}

/* ------------------------------------------------------------ configuration */

/* Sets key=value on conf, reporting the key on failure. */
static int sr_kafka_set(rd_kafka_conf_t *conf, const char *key, const char *value, char *errstr,
                        size_t errsz) {
  char kerr[512];
  if (rd_kafka_conf_set(conf, key, value, kerr, sizeof(kerr)) != RD_KAFKA_CONF_OK) {
    sr_seterr(errstr, errsz, SR_ERR_CONF, "kafka.%s=%s: %s", key, value, kerr);
    return -1;
  }
  return 0;
}

static int sr_kafka_set_all(rd_kafka_conf_t *conf, const sr_kv_t *kv, int n, char *errstr,
                            size_t errsz) {
  for (int i = 0; kv && i < n; i++) {
    if (!kv[i].key || !kv[i].value) {
      sr_seterr(errstr, errsz, SR_ERR_CONF, "kafka property %d has no key or value", i);
      return -1;
    }
    if (sr_kafka_set(conf, kv[i].key, kv[i].value, errstr, errsz)) return -1;
  }
  return 0;
}

static int sr_kafka_set_defaults(rd_kafka_conf_t *conf, sr_kafka_client_t client, char *errstr,
                                 size_t errsz) {
  for (size_t i = 0; i < SR_ARRAY_SIZE(sr_kafka_default_table); i++) {
    const sr_kafka_default_t *d = &sr_kafka_default_table[i];
    if (d->client == client && sr_kafka_set(conf, d->key, d->value, errstr, errsz)) return -1;
  }
  return 0;
}

rd_kafka_conf_t *sr_kafka_conf_new(sr_kafka_client_t client, const char *brokers,
                                   const char *client_id, const sr_kv_t *fixed, int n_fixed,
                                   const sr_kv_t *kafka, int n_kafka, char *errstr, size_t errsz) {
  rd_kafka_conf_t *conf = rd_kafka_conf_new();
  rd_kafka_conf_set_log_cb(conf, sr_kafka_log_cb);
  if ((brokers && sr_kafka_set(conf, "bootstrap.servers", brokers, errstr, errsz)) ||
      (client_id && sr_kafka_set(conf, "client.id", client_id, errstr, errsz)) ||
      sr_kafka_set_defaults(conf, client, errstr, errsz) ||
      sr_kafka_set_all(conf, fixed, n_fixed, errstr, errsz) ||
      sr_kafka_set_all(conf, kafka, n_kafka, errstr, errsz)) {
    rd_kafka_conf_destroy(conf);
    return NULL;
  }
  return conf;
}

sr_err_t sr_kafka_kv_check(sr_kafka_client_t client, const sr_kv_t *kafka, int n_kafka,
                           char *errstr, size_t errsz) {
  char kerr[512];
  sr_err_t ret = SR_OK;
  rd_kafka_conf_t *conf = rd_kafka_conf_new();
  if (sr_kafka_set_defaults(conf, client, errstr, errsz)) {
    ret = SR_ERR_CONF;
    goto out;
  }
  for (int i = 0; kafka && i < n_kafka; i++)
    if (rd_kafka_conf_set(conf, kafka[i].key, kafka[i].value, kerr, sizeof(kerr)) !=
        RD_KAFKA_CONF_OK) {
      ret = sr_seterr(errstr, errsz, SR_ERR_CONF, "%s=%s: %s", kafka[i].key, kafka[i].value, kerr);
      goto out;
    }
out:
  rd_kafka_conf_destroy(conf);
  return ret;
}

/* Applies one level of conf's kafka properties (which) to a throwaway
 * configuration, reporting the first refused one with its origin. */
static sr_err_t sr_kafka_check_level(rd_kafka_conf_t *conf, const sr_conf_t *c,
                                     sr_conf_client_t which, char *errstr, size_t errsz) {
  static const char *const prefix[] = {"kafka.", "kafka.consumer.", "kafka.producer."};
  char kerr[512];
  int n;
  const sr_kv_t *kv = sr_conf_kafka(c, which, &n);
  for (int i = 0; i < n; i++) {
    if (rd_kafka_conf_set(conf, kv[i].key, kv[i].value, kerr, sizeof(kerr)) == RD_KAFKA_CONF_OK)
      continue;
    const char *origin = sr_conf_kafka_origin(c, which, i);
    return sr_seterr(errstr, errsz, SR_ERR_CONF, "%s%s%s%s: %s", origin ? origin : "",
                     origin ? ": " : "", prefix[which], kv[i].key, kerr);
  }
  return SR_OK;
}

sr_err_t sr_kafka_conf_check(const sr_conf_t *c, char *errstr, size_t errsz) {
  static const sr_conf_client_t own[] = {SR_CONF_KAFKA_CONSUMER, SR_CONF_KAFKA_PRODUCER};
  sr_err_t ret = SR_OK;
  for (int k = 0; k < 2 && ret == SR_OK; k++) {
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    /* our defaults first, as the clients get them: a default is never the
     * culprit, but a user value must be checked against the same state */
    if (sr_kafka_set_defaults(conf, (sr_kafka_client_t)k, errstr, errsz)) ret = SR_ERR_CONF;
    if (ret == SR_OK) ret = sr_kafka_check_level(conf, c, SR_CONF_KAFKA_BOTH, errstr, errsz);
    if (ret == SR_OK) ret = sr_kafka_check_level(conf, c, own[k], errstr, errsz);
    rd_kafka_conf_destroy(conf);
  }
  return ret;
}

/* ---------------------------------------------------------- log and errors */

void sr_kafka_log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf) {
  /* librdkafka's thread: thread-safe calls only (rd_kafka_name, sr_log) */
  sr_log_level_t lvl = level <= 3   ? SR_LOG_ERROR
                       : level == 4 ? SR_LOG_WARN
                       : level <= 6 ? SR_LOG_INFO
                                    : SR_LOG_DEBUG;
  sr_log(lvl, "rdkafka", "%s: %s: %s", rd_kafka_name(rk), fac, buf);
}

void sr_kafka_log_error(rd_kafka_t *rk, const char *mod, const char *client, int err,
                        const char *reason) {
  if (err == RD_KAFKA_RESP_ERR__FATAL) {
    char fatal[512];
    rd_kafka_resp_err_t ferr = rd_kafka_fatal_error(rk, fatal, sizeof(fatal));
    sr_log_error(mod, "fatal %s error %s: %s", client, rd_kafka_err2name(ferr), fatal);
    return;
  }
  /* transport errors are already in librdkafka's own log line */
  sr_log(err == RD_KAFKA_RESP_ERR__TRANSPORT ? SR_LOG_DEBUG : SR_LOG_WARN, mod, "%s error %s: %s",
         client, rd_kafka_err2name((rd_kafka_resp_err_t)err), reason);
}

/* ---------------------------------------------------------------- messages */

void sr_kafka_msg_fill(sr_msg_t *m, rd_kafka_message_t *rkm) {
  rd_kafka_timestamp_type_t tstype;
  int64_t ts = rd_kafka_message_timestamp(rkm, &tstype);
  m->err = SR_OK;
  m->errstr = NULL;
  m->topic = rd_kafka_topic_name(rkm->rkt);
  m->partition = rkm->partition;
  m->offset = rkm->offset;
  m->timestamp_ms = tstype == RD_KAFKA_TIMESTAMP_NOT_AVAILABLE ? -1 : ts;
  m->key = rkm->key;
  m->key_len = rkm->key_len;
  m->value = rkm->payload;
  m->len = rkm->len;
  m->priv_ = rkm;
}

void sr_kafka_msg_fill_error(sr_msg_t *m, rd_kafka_message_t *rkm, const char *topic) {
  memset(m, 0, sizeof(*m));
  m->err = SR_ERR_CONSUME;
  m->topic = rkm->rkt ? rd_kafka_topic_name(rkm->rkt) : topic;
  m->partition = rkm->partition;
  m->offset = rkm->offset >= 0 ? rkm->offset : -1;
  m->timestamp_ms = -1;
  char *txt = sr_malloc(512);
  snprintf(txt, 512, "%s: %s", rd_kafka_err2name(rkm->err), rd_kafka_message_errstr(rkm));
  m->errstr = txt;
  m->priv_ = rkm;
}

int sr_kafka_msg_header(const sr_msg_t *m, const char *name, const void **val, size_t *len) {
  rd_kafka_headers_t *hdrs = NULL;
  const void *v = NULL;
  size_t l = 0;
  /* headers are parsed lazily by the client and owned by the message */
  if (!m || !m->priv_ || rd_kafka_message_headers(m->priv_, &hdrs) != RD_KAFKA_RESP_ERR_NO_ERROR)
    return 0;
  if (rd_kafka_header_get_last(hdrs, name, &v, &l) != RD_KAFKA_RESP_ERR_NO_ERROR) return 0;
  if (val) *val = v; /* NULL for a header with a null value */
  if (len) *len = v ? l : 0;
  return 1;
}

/* ---------------------------------------------------------------- metadata */

/* Properties that say how to reach and authenticate to the cluster: the
 * ones of a tool's client that the metadata client takes over. */
static int sr_kafka_is_connection_prop(const char *key) {
  static const char *const prefixes[] = {"security.",  "sasl.",     "ssl.",       "ssl_",
                                         "socket.",    "broker.",   "client.dns", "api.version",
                                         "reconnect.", "enable.ssl"};
  for (size_t i = 0; i < SR_ARRAY_SIZE(prefixes); i++)
    if (!strncmp(key, prefixes[i], strlen(prefixes[i]))) return 1;
  return 0;
}

const char *sr_kafka_version(void) { return rd_kafka_version_str(); }

int sr_kafka_partition_count(const char *brokers, const char *topic, const sr_kv_t *kafka,
                             int n_kafka, int timeout_ms, char *errstr, size_t errsz) {
  char kerr[512];
  rd_kafka_t *rk = NULL;
  const struct rd_kafka_metadata *md = NULL;
  int ret = -1;
  rd_kafka_conf_t *conf = rd_kafka_conf_new();

  rd_kafka_conf_set_log_cb(conf, sr_kafka_log_cb);
  if (rd_kafka_conf_set(conf, "bootstrap.servers", brokers, kerr, sizeof(kerr)) ||
      rd_kafka_conf_set(conf, "client.id", "streamrec-metadata", kerr, sizeof(kerr))) {
    sr_seterr(errstr, errsz, SR_ERR_CONF, "%s", kerr);
    rd_kafka_conf_destroy(conf);
    return -1;
  }
  for (int i = 0; kafka && i < n_kafka; i++) {
    if (!kafka[i].key || !kafka[i].value || !sr_kafka_is_connection_prop(kafka[i].key)) continue;
    if (rd_kafka_conf_set(conf, kafka[i].key, kafka[i].value, kerr, sizeof(kerr))) {
      sr_seterr(errstr, errsz, SR_ERR_CONF, "kafka.%s: %s", kafka[i].key, kerr);
      rd_kafka_conf_destroy(conf);
      return -1;
    }
  }
  rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, kerr, sizeof(kerr));
  if (!rk) {
    sr_seterr(errstr, errsz, SR_ERR_KAFKA, "rd_kafka_new: %s", kerr);
    rd_kafka_conf_destroy(conf);
    return -1;
  }
  /* Ask for all topics and look ours up: a request naming the topic makes
   * the mock cluster (and brokers with auto.create.topics.enable) create it,
   * whatever allow.auto.create.topics says, and a typo must be an error. */
  rd_kafka_resp_err_t err = rd_kafka_metadata(rk, 1, NULL, &md, timeout_ms);
  if (err) {
    sr_seterr(errstr, errsz, SR_ERR_KAFKA, "metadata from %s: %s", brokers, rd_kafka_err2str(err));
    goto out;
  }
  for (int i = 0; i < md->topic_cnt; i++) {
    if (strcmp(md->topics[i].topic, topic) != 0) continue;
    if (md->topics[i].err) {
      sr_seterr(errstr, errsz, SR_ERR_KAFKA, "topic %s: %s", topic,
                rd_kafka_err2str(md->topics[i].err));
      goto out;
    }
    ret = md->topics[i].partition_cnt;
    goto out;
  }
  sr_seterr(errstr, errsz, SR_ERR_NOT_FOUND, "topic %s does not exist on %s", topic, brokers);

out:
  if (md) rd_kafka_metadata_destroy(md);
  rd_kafka_destroy(rk);
  return ret;
}

/* ------------------------------------------------------------ topic reader */

struct sr_kafka_reader_s {
  rd_kafka_t *rk;
  char *topic;
  int n_parts;
  int to_end;
  int64_t *end;        /* [n_parts] end offset found at start (to_end) */
  unsigned char *done; /* [n_parts] read to its end */
  int n_done;
  rd_kafka_message_t *cur; /* returned by the last next(); destroyed by the next one */
  char *cur_err;           /* its error text, if it was an error entry */
  int64_t progress_us;     /* last message or end-of-partition event */
};

static void sr_kafka_reader_mark_done(sr_kafka_reader_t *r, int32_t p) {
  if (p < 0 || p >= r->n_parts || r->done[p]) return;
  r->done[p] = 1;
  r->n_done++;
}

sr_err_t sr_kafka_reader_new(const sr_kafka_reader_conf_t *c, sr_kafka_reader_t **out, char *errstr,
                             size_t errsz) {
  char kerr[512], group[96];
  sr_err_t ret = SR_OK;
  sr_kafka_reader_t *r = NULL;
  rd_kafka_conf_t *conf = NULL;
  rd_kafka_topic_partition_list_t *assign = NULL;
  *out = NULL;
  if (!c || !c->brokers || !*c->brokers || !c->topic || !*c->topic)
    return sr_seterr(errstr, errsz, SR_ERR_INVALID_ARG, "reader: brokers and topic are required");
  const int tmo = c->connect_timeout_ms > 0 ? c->connect_timeout_ms : SR_KAFKA_CONNECT_TIMEOUT_MS;

  /* bad properties first: they are the caller's to fix, whatever the brokers */
  if ((ret = sr_kafka_kv_check(SR_KAFKA_CONSUMER, c->kafka, c->n_kafka, errstr, errsz)) != SR_OK)
    return ret;
  int n_parts =
      sr_kafka_partition_count(c->brokers, c->topic, c->kafka, c->n_kafka, tmo, errstr, errsz);
  if (n_parts == 0)
    sr_seterr(errstr, errsz, SR_ERR_NOT_FOUND, "topic %s has no partitions", c->topic);
  if (n_parts <= 0) return SR_ERR_KAFKA;

  r = sr_calloc(1, sizeof(*r));
  r->topic = sr_strdup(c->topic);
  r->n_parts = n_parts;
  r->to_end = c->to_end;
  r->end = sr_calloc((size_t)n_parts, sizeof(*r->end));
  r->done = sr_calloc((size_t)n_parts, 1);
  r->progress_us = sr_mono_us();

  /* librdkafka 2.0 refuses rd_kafka_assign() without a group.id (Local:
   * Unknown group), although a manual assignment never joins the group nor
   * talks to its coordinator; with auto commit off nothing is stored under
   * this throwaway id either. End-of-partition events tell where the end
   * is even when the last offsets are not messages (control records). */
  snprintf(group, sizeof(group), "streamrec-reader-%ld-%lld", (long)getpid(),
           (long long)sr_mono_us());
  const sr_kv_t fixed[] = {{"group.id", group}, {"enable.partition.eof", "true"}};
  conf = sr_kafka_conf_new(SR_KAFKA_CONSUMER, c->brokers,
                           c->client_id ? c->client_id : "streamrec-reader", fixed,
                           (int)SR_ARRAY_SIZE(fixed), c->kafka, c->n_kafka, errstr, errsz);
  if (!conf) {
    ret = SR_ERR_CONF;
    goto fail;
  }
  r->rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, kerr, sizeof(kerr));
  if (!r->rk) {
    ret = sr_seterr(errstr, errsz, SR_ERR_KAFKA, "reader: rd_kafka_new: %s", kerr);
    goto fail;
  }
  conf = NULL; /* owned by rk */
  rd_kafka_poll_set_consumer(r->rk);

  assign = rd_kafka_topic_partition_list_new(n_parts);
  for (int p = 0; p < n_parts; p++) {
    int64_t lo = 0, hi = 0, start;
    if (c->from_beginning || c->to_end) {
      rd_kafka_resp_err_t e = rd_kafka_query_watermark_offsets(r->rk, c->topic, p, &lo, &hi, tmo);
      if (e) {
        ret = sr_seterr(errstr, errsz, SR_ERR_KAFKA, "%s[%d]: watermarks: %s", c->topic, p,
                        rd_kafka_err2str(e));
        goto fail;
      }
      if (lo > 0 && c->from_beginning && c->to_end)
        sr_log_warn(SR_KAFKA_MOD, "%s[%d] starts at offset %" PRId64 " (earlier messages are gone)",
                    c->topic, p, lo);
      start = c->from_beginning ? lo : hi;
    } else {
      start = RD_KAFKA_OFFSET_END;
    }
    r->end[p] = hi;
    if (c->to_end && start >= hi) {
      sr_kafka_reader_mark_done(r, p);
      continue;
    }
    rd_kafka_topic_partition_list_add(assign, c->topic, p)->offset = start;
  }
  if (assign->cnt > 0) {
    rd_kafka_resp_err_t e = rd_kafka_assign(r->rk, assign);
    if (e) {
      ret = sr_seterr(errstr, errsz, SR_ERR_KAFKA, "reader: assign %s: %s", c->topic,
                      rd_kafka_err2str(e));
      goto fail;
    }
  }
  rd_kafka_topic_partition_list_destroy(assign);
  *out = r;
  return SR_OK;

fail:
  if (assign) rd_kafka_topic_partition_list_destroy(assign);
  if (conf) rd_kafka_conf_destroy(conf);
  sr_kafka_reader_destroy(r);
  return ret;
}

static void sr_kafka_reader_release(sr_kafka_reader_t *r) {
  if (r->cur) rd_kafka_message_destroy(r->cur);
  r->cur = NULL;
  sr_free(r->cur_err);
  r->cur_err = NULL;
}

void sr_kafka_reader_destroy(sr_kafka_reader_t *r) {
  if (!r) return;
  sr_kafka_reader_release(r);
  if (r->rk) {
    rd_kafka_consumer_close(r->rk);
    rd_kafka_destroy(r->rk);
  }
  sr_free(r->end);
  sr_free(r->done);
  sr_free(r->topic);
  sr_free(r);
}

int sr_kafka_reader_next(sr_kafka_reader_t *r, sr_msg_t *m, int timeout_ms, char *errstr,
                         size_t errsz) {
  sr_kafka_reader_release(r);
  int64_t deadline = sr_mono_us() + (int64_t)(timeout_ms > 0 ? timeout_ms : 0) * 1000;
  while (!sr_kafka_reader_at_end(r)) {
    int64_t left = deadline - sr_mono_us();
    rd_kafka_message_t *rkm =
        rd_kafka_consumer_poll(r->rk, left <= 0 ? 0 : (int)((left + 999) / 1000));
    if (!rkm) return 0;
    int32_t p = rkm->partition;
    int known = p >= 0 && p < r->n_parts;
    if (rkm->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
      r->progress_us = sr_mono_us();
      /* live: at the end for now; to_end: done once past the end found at start */
      if (known && (!r->to_end || rkm->offset >= r->end[p])) sr_kafka_reader_mark_done(r, p);
      rd_kafka_message_destroy(rkm);
      return 0;
    }
    if (rkm->err == RD_KAFKA_RESP_ERR__FATAL) {
      char fatal[512];
      rd_kafka_resp_err_t ferr = rd_kafka_fatal_error(r->rk, fatal, sizeof(fatal));
      sr_seterr(errstr, errsz, SR_ERR_FATAL, "reader: fatal consumer error %s: %s",
                rd_kafka_err2name(ferr), fatal);
      rd_kafka_message_destroy(rkm);
      return -1;
    }
    if (rkm->err) {
      sr_kafka_msg_fill_error(m, rkm, r->topic);
      r->cur = rkm;
      r->cur_err = (char *)m->errstr;
      return 1;
    }
    if (known && r->to_end) {
      if (r->done[p] || rkm->offset >= r->end[p]) { /* past the snapshot */
        rd_kafka_message_destroy(rkm);
        continue;
      }
      if (rkm->offset + 1 >= r->end[p]) sr_kafka_reader_mark_done(r, p);
    } else if (known && r->done[p]) { /* live: more data after its end */
      r->done[p] = 0;
      r->n_done--;
    }
    r->progress_us = sr_mono_us();
    sr_kafka_msg_fill(m, rkm);
    r->cur = rkm;
    return 1;
  }
  return 0;
}

int sr_kafka_reader_partitions(const sr_kafka_reader_t *r) { return r->n_parts; }
int sr_kafka_reader_partitions_at_end(const sr_kafka_reader_t *r) { return r->n_done; }
int sr_kafka_reader_at_end(const sr_kafka_reader_t *r) {
  return r->to_end && r->n_done == r->n_parts;
}
int64_t sr_kafka_reader_idle_ms(const sr_kafka_reader_t *r) {
  return (sr_mono_us() - r->progress_us) / 1000;
}

int64_t sr_kafka_read_topic(const char *brokers, const char *topic, const sr_kv_t *kafka,
                            int n_kafka, sr_msg_cb_t *cb, void *opaque, int timeout_ms,
                            char *errstr, size_t errsz) {
  sr_kafka_reader_t *r = NULL;
  sr_kafka_reader_conf_t rc = {.brokers = brokers,
                               .topic = topic,
                               .kafka = kafka,
                               .n_kafka = n_kafka,
                               .from_beginning = 1,
                               .to_end = 1,
                               .connect_timeout_ms = timeout_ms};
  if (sr_kafka_reader_new(&rc, &r, errstr, errsz) != SR_OK) return -1;
  int64_t count = 0, deadline = sr_mono_us() + (int64_t)timeout_ms * 1000;
  sr_msg_t m;
  while (!sr_kafka_reader_at_end(r)) {
    if (sr_mono_us() > deadline) {
      sr_seterr(errstr, errsz, SR_ERR_TIMEOUT,
                "%s: %d partition(s) did not reach their end offsets within %d ms", topic,
                r->n_parts - r->n_done, timeout_ms);
      count = -1;
      break;
    }
    int got = sr_kafka_reader_next(r, &m, 100, errstr, errsz);
    if (got < 0) {
      count = -1;
      break;
    }
    if (got == 0) continue;
    if (m.err != SR_OK) {
      sr_log_warn(SR_KAFKA_MOD, "%s: %s", topic, m.errstr);
      continue;
    }
    count++;
    if (cb(opaque, &m) != 0) {
      sr_seterr(errstr, errsz, SR_ERR_FATAL, "stopped by the message callback");
      count = -1;
      break;
    }
  }
  sr_kafka_reader_destroy(r);
  return count;
}
