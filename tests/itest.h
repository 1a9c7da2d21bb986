/*
 * Helpers for the integration tests (01xx): the cluster they run on, a
 * small trained model, producing UserEvents, reading a topic back in full
 * (through the topic reader of src/kafka, the one `recs` and `train
 * --brokers` use).
 *
 * The cluster: librdkafka's mock cluster (sr_broker_new) by default, or the
 * real Kafka that SR_TEST_BOOTSTRAP=host:port[,...] names (the same test
 * code). On a real cluster every case (one process each, test.h) works in
 * its own namespace: IT_TOPIC("events") and IT_GROUP("g-x") put the case's
 * prefix "it-<pid>-<ms>-" in front of a name, it_cluster_new creates the
 * case's topics with the partition count the test asks for, and
 * it_cluster_destroy deletes them, so cases never see each other's data or
 * group members. On the mock the prefix is empty: the names are today's.
 * Every topic and group name of a test goes through IT_TOPIC / IT_GROUP;
 * the helpers below do it for the names they fill in themselves (the
 * events topic of it_produce_events and it_committed, the three topics of
 * it_pipeline_conf). Cases that need the mock's fault injection are listed
 * with RUN_MOCK_ONLY (test.h).
 */
#ifndef SR_ITEST_H
#define SR_ITEST_H

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "streamrec/dataset.h"
#include "streamrec/codec.h"
#include "streamrec/kafka.h"
#include "streamrec/model.h"
#include "streamrec/pipeline.h"
#include "streamrec/snapshot.h"
#include "streamrec/train.h"
#include "test.h"

/* ---------------------------------------------------------------- cluster */

/* The largest message a test produces and reads back (0105's oversized
 * inputs): the producer's message.max.bytes, the reader's
 * fetch.message.max.bytes and, on a real cluster, each case topic's
 * max.message.bytes (a broker's default is 1 MiB; the mock takes anything). */
#define IT_MSG_MAX_BYTES "4000000"

/* The case's prefix: "" on the mock, "it-<pid>-<ms>-" on a real cluster
 * (fixed at the first call of the process, i.e. of the case). */
static inline const char *it_prefix(void) {
  static char prefix[64];
  static int done = 0;
  if (!done) {
    if (sr_t_real_bootstrap())
      snprintf(prefix, sizeof(prefix), "it-%ld-%lld-", (long)getpid(), (long long)sr_now_ms());
    done = 1;
  }
  return prefix;
}

/* name with the case's prefix; the same pointer for the same name, valid
 * for the process's life. Aborts past 64 distinct names (a test bug). */
static inline const char *it_name(const char *name) {
  static char names[64][256];
  static int n = 0;
  char want[256];
  snprintf(want, sizeof(want), "%s%s", it_prefix(), name);
  for (int i = 0; i < n; i++)
    if (!strcmp(names[i], want)) return names[i];
  if (n == 64) {
    fprintf(stderr, "it_name: more than 64 names\n");
    abort();
  }
  snprintf(names[n], sizeof(names[n]), "%s", want);
  return names[n++];
}
#define IT_TOPIC(name) it_name(name)
#define IT_GROUP(name) it_name(name)

typedef struct it_cluster_s {
  sr_broker_t *mock; /* NULL on a real cluster */
  const char *bootstrap;
  const char *topics[16]; /* created on the real cluster: deleted by destroy */
  int n_topics;
} it_cluster_t;

/* A topic on the cluster with `partitions` partitions: the mock's own call,
 * or sr_kafka_topics_create (replication: the brokers' default; messages up
 * to IT_MSG_MAX_BYTES). name is
 * used as given (pass IT_TOPIC(...)) and must stay valid for the cluster's
 * life. Returns SR_OK or the error (printed). */
static inline sr_err_t it_cluster_topic_create(it_cluster_t *c, const char *name, int partitions) {
  char es[512];
  if (c->mock) return sr_broker_topic_create(c->mock, name, partitions);
  static const sr_kv_t cfg[] = {{"max.message.bytes", IT_MSG_MAX_BYTES}};
  sr_kafka_topic_spec_t spec = {
      .name = name, .partitions = partitions, .replication = -1, .config = cfg, .n_config = 1};
  sr_err_t e = sr_kafka_topics_create(c->bootstrap, &spec, 1, NULL, 0, t_wait_ms(60000), NULL, es,
                                      sizeof(es));
  if (e != SR_OK)
    fprintf(stderr, "it_cluster: %s\n", es);
  else if (c->n_topics < (int)SR_ARRAY_SIZE(c->topics))
    c->topics[c->n_topics++] = name;
  return e;
}

/* The cluster of this case, with the pipeline's three topics (the defaults
 * of topic.events, topic.recommendations and topic.dlq, through IT_TOPIC)
 * of `partitions` partitions each. n_brokers is the mock's broker count; a
 * real cluster is what SR_TEST_BOOTSTRAP names (a case that needs more than
 * one broker to fail is mock-only anyway). Returns NULL (reason printed) on
 * failure. Free with it_cluster_destroy. */
static inline it_cluster_t *it_cluster_new(int n_brokers, int partitions) {
  char es[512];
  it_cluster_t *c = calloc(1, sizeof(*c));
  const char *real = sr_t_real_bootstrap();
  if (!real) {
    c->mock = sr_broker_new(n_brokers, partitions, es, sizeof(es));
    if (!c->mock) {
      fprintf(stderr, "it_cluster: sr_broker_new: %s\n", es);
      free(c);
      return NULL;
    }
    c->bootstrap = sr_broker_bootstrap(c->mock);
    return c;
  }
  c->bootstrap = real;
  sr_pipeline_conf_t pc;
  sr_pipeline_conf_defaults(&pc);
  const char *base[3] = {pc.events_topic, pc.recs_topic, pc.dlq_topic};
  for (int i = 0; i < 3; i++)
    if (it_cluster_topic_create(c, it_name(base[i]), partitions) != SR_OK) {
      free(c);
      return NULL;
    }
  return c;
}

/* "host:port[,...]" of the cluster. Borrowed, valid for the cluster's life. */
static inline const char *it_cluster_bootstrap(const it_cluster_t *c) { return c->bootstrap; }
/* The mock cluster (for its fault injection), NULL on a real cluster. */
static inline sr_broker_t *it_cluster_mock(const it_cluster_t *c) { return c->mock; }

/* Stops the mock, or deletes the case's topics on a real cluster (a failure
 * is printed, not fatal: the names are the case's own). Accepts NULL. */
static inline void it_cluster_destroy(it_cluster_t *c) {
  char es[512];
  if (!c) return;
  if (c->mock) sr_broker_destroy(c->mock);
  if (!c->mock && c->n_topics &&
      sr_kafka_topics_delete(c->bootstrap, c->topics, c->n_topics, NULL, 0, t_wait_ms(30000), es,
                             sizeof(es)) != SR_OK)
    fprintf(stderr, "it_cluster: deleting the case's topics: %s\n", es);
  free(c);
}

/* A synthetic history: n_users users walking items with a sequential habit
 * (item i is mostly followed by i+1). Row strings live in static buffers. */
typedef struct it_events_s {
  int n;
  sr_csv_row_t *rows;
  char (*users)[16];
  char (*items)[16];
} it_events_t;

static inline void it_events_make(it_events_t *e, int n_users, int n_items, int per_user,
                                  unsigned seed) {
  e->n = n_users * per_user;
  e->rows = calloc((size_t)e->n, sizeof(*e->rows));
  e->users = calloc((size_t)e->n, 16);
  e->items = calloc((size_t)e->n, 16);
  unsigned s = seed;
  int k = 0;
  /* interleave users round-robin so the stream looks like a stream */
  int *cur = calloc((size_t)n_users, sizeof(int));
  for (int u = 0; u < n_users; u++) {
    s = s * 1103515245u + 12345u;
    cur[u] = (int)((s >> 8) % (unsigned)n_items);
  }
  for (int t = 0; t < per_user; t++)
    for (int u = 0; u < n_users; u++) {
      s = s * 1103515245u + 12345u;
      int next =
          ((s >> 8) % 10) < 8 ? (cur[u] + 1) % n_items : (int)((s >> 12) % (unsigned)n_items);
      cur[u] = next;
      snprintf(e->users[k], 16, "u%d", u);
      snprintf(e->items[k], 16, "i%d", next);
      e->rows[k].user = sr_str_cstr(e->users[k]);
      e->rows[k].item = sr_str_cstr(e->items[k]);
      e->rows[k].value = 1.0f;
      e->rows[k].ts_ms = 1700000000000LL + (int64_t)k * 1000;
      e->rows[k].type = SR_EV_CLICK;
      k++;
    }
  free(cur);
}

static inline void it_events_free(it_events_t *e) {
  free(e->rows);
  free(e->users);
  free(e->items);
}

/* Trains a small decay model on the events (a few seconds at most). */
static inline sr_model_t *it_train(const it_events_t *e, int dim) {
  sr_dataset_t *ds = NULL;
  sr_model_t *m = NULL;
  char es[256];
  sr_train_conf_t tc;
  sr_dataset_from_rows(e->rows, e->n, &ds);
  sr_train_conf_defaults(&tc, SR_MODEL_DECAY);
  tc.dim = dim;
  tc.epochs = 3;
  tc.threads = 1;
  tc.progress = 0;
  sr_snapshot_info_t info;
  memset(&info, 0, sizeof(info));
  if (sr_train_run(ds, &tc, &m, &info, es, sizeof(es)) != SR_OK) {
    fprintf(stderr, "it_train: %s\n", es);
    m = NULL;
  } else {
    sr_model_set_version(m, "test-model-v1");
  }
  sr_dataset_destroy(ds);
  return m;
}

static int it_failed_deliveries;
static void it_dr(void *opaque, void *msg_opaque, sr_err_t err, const char *reason) {
  if (err != SR_OK) it_failed_deliveries++;
}

/* Produces raw messages (a NULL key is sent as no key); returns the number
 * delivered. Messages up to IT_MSG_MAX_BYTES. */
static inline int it_produce_raw(const char *brokers, const char *topic, const char *const *keys,
                                 const sr_buf_t *vals, int n) {
  char es[256];
  static const sr_kv_t big[] = {{"message.max.bytes", IT_MSG_MAX_BYTES}};
  sr_publish_conf_t pc = {.brokers = brokers,
                          .client_id = "it-producer",
                          .delivery_cb = it_dr,
                          .kafka = big,
                          .n_kafka = 1};
  sr_publish_t *p = sr_publish_new(&pc, es, sizeof(es));
  if (!p) {
    fprintf(stderr, "it_produce_raw: %s\n", es);
    return -1;
  }
  it_failed_deliveries = 0;
  for (int i = 0; i < n; i++) {
    while (sr_publish_send(p, topic, -1, keys[i], keys[i] ? strlen(keys[i]) : 0, vals[i].data,
                           vals[i].len, NULL, 0, NULL, es, sizeof(es)) == SR_ERR_QUEUE_FULL)
      sr_publish_poll(p, 10);
  }
  sr_publish_flush(p, 30000);
  sr_publish_destroy(p);
  return n - it_failed_deliveries;
}

/* Encodes and produces the events to IT_TOPIC("events"); returns the
 * delivered count. */
static inline int it_produce_events(const char *brokers, const it_events_t *e) {
  char es[256];
  sr_codec_t *c = sr_codec_new(1, 2, es, sizeof(es));
  sr_buf_t *vals = calloc((size_t)e->n, sizeof(sr_buf_t));
  const char **keys = calloc((size_t)e->n, sizeof(char *));
  char(*ids)[32] = calloc((size_t)e->n, 32);
  for (int i = 0; i < e->n; i++) {
    snprintf(ids[i], 32, "ev-%d", i);
    sr_event_t ev = {.event_id = sr_str_cstr(ids[i]),
                     .user_id = e->rows[i].user,
                     .item_id = e->rows[i].item,
                     .type = (sr_event_type_t)e->rows[i].type,
                     .value = e->rows[i].value,
                     .ts_ms = e->rows[i].ts_ms,
                     .scenario = SR_STR("default")};
    sr_buf_init(&vals[i]);
    sr_codec_encode_event(c, &ev, &vals[i]);
    keys[i] = e->users[i];
  }
  int n = it_produce_raw(brokers, IT_TOPIC("events"), keys, vals, e->n);
  for (int i = 0; i < e->n; i++)
    sr_buf_free(&vals[i]);
  free(vals);
  free(keys);
  free(ids);
  sr_codec_destroy(c);
  return n;
}

/* A message read back, with its interesting headers copied. */
typedef struct it_msg_s {
  int32_t partition;
  int64_t offset;
  int64_t timestamp_ms;
  char key[64];
  size_t key_len;
  unsigned char *value;
  size_t len;
  char hdr_error[64], hdr_reason[256], hdr_topic[64], hdr_partition[16], hdr_offset[24];
  char hdr_truncated[8], hdr_key_size[24], hdr_value_size[24];
} it_msg_t;

static inline void it_copy_hdr(const sr_msg_t *m, const char *name, char *out, size_t cap) {
  const void *v;
  size_t len;
  out[0] = 0;
  if (sr_kafka_msg_header(m, name, &v, &len)) snprintf(out, cap, "%.*s", (int)len, (const char *)v);
}

/* Reads `want` messages of topic from the beginning, live (what arrives
 * while it reads counts too), with the topic reader of src/kafka (every
 * partition assigned, no group), waiting up to timeout_ms. Consumer error
 * entries are skipped. Returns the count read, -1 when the reader cannot
 * be made. */
static inline int it_read_topic(const char *brokers, const char *topic, int want, int timeout_ms,
                                it_msg_t *out) {
  timeout_ms = t_wait_ms(timeout_ms);
  char es[256];
  static const sr_kv_t big[] = {{"fetch.message.max.bytes", IT_MSG_MAX_BYTES}};
  sr_kafka_reader_conf_t rc = {.brokers = brokers,
                               .topic = topic,
                               .client_id = "it-reader",
                               .kafka = big,
                               .n_kafka = 1,
                               .from_beginning = 1,
                               .connect_timeout_ms = timeout_ms};
  sr_kafka_reader_t *r = NULL;
  if (sr_kafka_reader_new(&rc, &r, es, sizeof(es)) != SR_OK) {
    fprintf(stderr, "it_read_topic: %s\n", es);
    return -1;
  }
  int got = 0;
  sr_msg_t m;
  int64_t deadline = sr_mono_us() + (int64_t)timeout_ms * 1000;
  while (got < want && sr_mono_us() < deadline) {
    int n = sr_kafka_reader_next(r, &m, 100, es, sizeof(es));
    if (n < 0) {
      fprintf(stderr, "it_read_topic: %s\n", es);
      break;
    }
    if (n == 0 || m.err != SR_OK) continue;
    it_msg_t *o = &out[got++];
    memset(o, 0, sizeof(*o));
    o->partition = m.partition;
    o->offset = m.offset;
    o->timestamp_ms = m.timestamp_ms;
    snprintf(o->key, sizeof(o->key), "%.*s", (int)m.key_len, (const char *)m.key);
    o->key_len = m.key_len;
    o->value = malloc(m.len ? m.len : 1);
    if (m.len) memcpy(o->value, m.value, m.len); /* a CONSUME dead letter has no value */
    o->len = m.len;
    it_copy_hdr(&m, "streamrec.error", o->hdr_error, sizeof(o->hdr_error));
    it_copy_hdr(&m, "streamrec.reason", o->hdr_reason, sizeof(o->hdr_reason));
    it_copy_hdr(&m, "streamrec.source.topic", o->hdr_topic, sizeof(o->hdr_topic));
    it_copy_hdr(&m, "streamrec.source.partition", o->hdr_partition, sizeof(o->hdr_partition));
    it_copy_hdr(&m, "streamrec.source.offset", o->hdr_offset, sizeof(o->hdr_offset));
    it_copy_hdr(&m, "streamrec.truncated", o->hdr_truncated, sizeof(o->hdr_truncated));
    it_copy_hdr(&m, "streamrec.original.key.size", o->hdr_key_size, sizeof(o->hdr_key_size));
    it_copy_hdr(&m, "streamrec.original.value.size", o->hdr_value_size, sizeof(o->hdr_value_size));
  }
  sr_kafka_reader_destroy(r);
  return got;
}

static inline void it_msgs_free(it_msg_t *m, int n) {
  for (int i = 0; i < n; i++)
    free(m[i].value);
}

/* Committed offsets of group (pass IT_GROUP(...)) for partitions 0..n-1
 * of IT_TOPIC("events"). */
static inline int it_committed(const char *brokers, const char *group, int n_parts, int64_t *offs) {
  char es[256];
  int32_t parts[64];
  /* Observe only: a subscribed reader would join the group under test and
   * hold up the next member's assignment. */
  sr_ingest_conf_t ic = {.brokers = brokers,
                         .group = group,
                         .topic = IT_TOPIC("events"),
                         .client_id = "it-committed",
                         .observe_only = 1};
  sr_ingest_t *in = sr_ingest_new(&ic, es, sizeof(es));
  if (!in) return -1;
  for (int i = 0; i < n_parts; i++)
    parts[i] = i;
  sr_err_t e = sr_ingest_committed(in, parts, offs, n_parts, t_wait_ms(10000));
  sr_ingest_destroy(in);
  return e == SR_OK ? 0 : -1;
}

/* Trains on e and writes the snapshot to path; returns 0 on success. */
static inline int it_snapshot(const it_events_t *e, int dim, const char *path) {
  char es[256];
  sr_model_t *m = it_train(e, dim);
  if (!m) return -1;
  sr_snapshot_info_t info;
  memset(&info, 0, sizeof(info));
  int rc = sr_snapshot_write(m, &info, path, es, sizeof(es)) == SR_OK ? 0 : -1;
  if (rc) fprintf(stderr, "it_snapshot: %s\n", es);
  sr_model_destroy(m);
  return rc;
}

/* Set to 1 to run pipelines with batch.coalesce. */
static int it_coalesce = 0;
/* When set, called on the pipeline configuration before the pipeline is
 * made (a test's own limits and client properties). */
static void (*it_conf_hook)(sr_pipeline_conf_t *pc) = NULL;

/* Watchdog of it_run_pipeline: stops the pipeline after IT_RUN_LIMIT_S so a
 * run that never gets events (e.g. no partition assignment) fails the test
 * in a minute instead of hanging until ctest's timeout. */
#ifndef IT_RUN_LIMIT_S
#define IT_RUN_LIMIT_S 90
#endif
typedef struct {
  sr_pipeline_t *p;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  int done, fired;
} it_watchdog_t;

static void *it_watchdog_main(void *arg) {
  it_watchdog_t *w = arg;
  struct timespec until;
  clock_gettime(CLOCK_REALTIME, &until);
  until.tv_sec += IT_RUN_LIMIT_S;
  pthread_mutex_lock(&w->mu);
  while (!w->done)
    if (pthread_cond_timedwait(&w->cv, &w->mu, &until) != 0) break;
  if (!w->done) {
    w->fired = 1;
    sr_pipeline_stop(w->p);
  }
  pthread_mutex_unlock(&w->mu);
  return NULL;
}

/* The pipeline's defaults with the case's topics (IT_TOPIC of the default
 * names): what every pipeline of a test starts from. */
static inline void it_pipeline_conf(sr_pipeline_conf_t *pc) {
  sr_pipeline_conf_defaults(pc);
  pc->events_topic = it_name(pc->events_topic);
  pc->recs_topic = it_name(pc->recs_topic);
  pc->dlq_topic = it_name(pc->dlq_topic);
}

/* Runs a pipeline serving the snapshot at snap under group (pass
 * IT_GROUP(...)); returns run()'s result, or SR_ERR_TIMEOUT when the
 * watchdog had to stop it. */
static inline sr_err_t it_run_model(const char *brokers, sr_model_t *m, const char *group,
                                    int batch_max, int idle_exit_ms, sr_pipeline_stats_t *st,
                                    char *es, size_t essz);

static inline sr_err_t it_run_pipeline(const char *brokers, const char *snap, const char *group,
                                       int batch_max, int idle_exit_ms, sr_pipeline_stats_t *st,
                                       char *es, size_t essz) {
  sr_model_t *m = NULL;
  sr_err_t e = sr_snapshot_load(snap, &m, NULL, es, essz);
  if (e != SR_OK) return e;
  return it_run_model(brokers, m, group, batch_max, idle_exit_ms, st, es, essz);
}

/* Same as it_run_pipeline, serving model m (ownership taken). */
static inline sr_err_t it_run_model(const char *brokers, sr_model_t *m, const char *group,
                                    int batch_max, int idle_exit_ms, sr_pipeline_stats_t *st,
                                    char *es, size_t essz) {
  sr_err_t e;
  sr_pipeline_conf_t pc;
  it_pipeline_conf(&pc);
  pc.brokers = brokers;
  pc.group = group;
  pc.batch_max = batch_max;
  pc.idle_exit_ms = idle_exit_ms;
  pc.commit_interval_ms = 100;
  pc.coalesce = it_coalesce;
  /* The mock coordinator waits out a departed member's session before a
   * new one joins: keep that short in tests (6000 is also the smallest a
   * real broker accepts: group.min.session.timeout.ms). */
  static const sr_kv_t kv[] = {{"session.timeout.ms", "6000"}, {"heartbeat.interval.ms", "500"}};
  pc.kafka_consumer = kv;
  pc.n_kafka_consumer = 2;
  if (it_conf_hook) it_conf_hook(&pc);
  sr_pipeline_t *p = sr_pipeline_new(&pc, m, es, essz);
  if (!p) {
    sr_model_destroy(m);
    return SR_ERR_FATAL;
  }
  it_watchdog_t w = {.p = p, .mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};
  pthread_t wt;
  int have_wd = pthread_create(&wt, NULL, it_watchdog_main, &w) == 0;
  e = sr_pipeline_run(p, es, essz);
  if (have_wd) {
    pthread_mutex_lock(&w.mu);
    w.done = 1;
    pthread_cond_signal(&w.cv);
    pthread_mutex_unlock(&w.mu);
    pthread_join(wt, NULL);
  }
  if (w.fired) {
    snprintf(es, essz, "pipeline still running after %d s (no events? no assignment?): stopped",
             IT_RUN_LIMIT_S);
    e = SR_ERR_TIMEOUT;
  }
  if (st) sr_pipeline_stats(p, st);
  sr_pipeline_destroy(p);
  return e;
}

#endif
