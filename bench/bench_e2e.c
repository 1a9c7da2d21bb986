/*
 * bench_e2e: the whole pipeline on the embedded broker (or, with --brokers,
 * on an existing cluster), in one process.
 *
 * A producer thread writes UserEvents (generated, or a CSV) to the events
 * topic at full speed or at --rate events/s while the pipeline consumes
 * them, and a reader thread reads the recommendations as they become
 * visible (isolation.level=read_committed: with
 * delivery.guarantee=exactly_once a recommendation is visible once its
 * transaction committed). When the pipeline has been idle for 1.5 s the
 * events topic is read back for the events' timestamps, and
 *   - sustained events/s = recommendations / (last rec timestamp - first
 *     rec timestamp)
 *   - latency = recommendation's Kafka timestamp - its source event's Kafka
 *     timestamp (both set by the producers at produce time, ms resolution)
 *   - visible latency = when the reader got the recommendation (wall clock)
 *     - its source event's Kafka timestamp: what a read_committed consumer
 *     sees; with exactly_once it includes the wait for the commit
 * are printed, with the scoring-only limit measured in the same run
 * (batched sgemm + top-K of the same model, no Kafka) and the ratio to it.
 *
 * delivery.guarantee=exactly_once needs --brokers (the mock cluster
 * ignores read_committed and drops transactional offset commits; serve
 * refuses it there too). With --brokers each run makes its own topics (PREFIX.events,
 * PREFIX.recommendations, PREFIX.events.dlq, --partitions each, PREFIX =
 * bench-<pid>-<time>; sr_kafka_topics_create) and consumer group, so runs
 * never see each other's data. The embedded broker keeps only the newest
 * ~5 MiB of each partition (src/broker/broker.c): events whose timestamps
 * are gone by the read-back are counted and left out; a real cluster keeps
 * everything.
 *
 * Usage: bench_e2e [--events E] [--users U] [--items N] [--dim D] [--k K]
 *                  [--rate R] [--batch-max B] [--partitions P] [--csv FILE]
 *                  [--snapshot FILE] [--kind gru|decay] [--brokers BS]
 *                  [--batch-wait-us U] [--blas-threads N (default 1, as serve; 0 = OpenBLAS's)]
 *                  [-o NAME=VALUE (any pipeline option by its config name,
 *                   docs/CONFIGURATION.md: delivery.guarantee=exactly_once,
 *                   transaction.scope=batch, commit.interval.ms=100, ...;
 *                   applied after the flags)]
 *                  [-X consumer.K=V] [-X producer.K=V] [-X load.K=V]
 * BENCH_E2E_DUMP=FILE writes "ms since first event, latency ms" per recommendation.
 * Without --snapshot the model is random, of --kind (default gru, the
 * sequential model: O(d^2) per event; decay is O(d)).
 */
#include <getopt.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "streamrec/blas.h"
#include "streamrec/dataset.h"
#include "streamrec/codec.h"
#include "streamrec/kafka.h"
#include "streamrec/model.h"
#include "streamrec/pipeline.h"
#include "streamrec/score.h"
#include "streamrec/snapshot.h"

typedef struct {
  const char *bs;
  const char *topic;
  const sr_kv_t *kv; /* load producer properties (linger.ms=1 first) */
  int n_kv;
  int n;
  sr_buf_t *vals;
  char (*keys)[24];
  double rate;
  int64_t t_first_us, t_last_us;
} prod_ctx_t;

typedef struct {
  sr_pipeline_t *p;
  sr_err_t rc;
  char es[512];
} pipe_ctx_t;

static void dr_noop(void *o, void *mo, sr_err_t e, const char *r) {
  if (e != SR_OK) fprintf(stderr, "bench: event delivery failed: %s\n", r);
}

static void *producer_main(void *arg) {
  prod_ctx_t *c = arg;
  char es[256];
  sr_publish_conf_t pc = {.brokers = c->bs,
                          .client_id = "bench-load",
                          .kafka = c->kv,
                          .n_kafka = c->n_kv,
                          .delivery_cb = dr_noop};
  sr_publish_t *p = sr_publish_new(&pc, es, sizeof(es));
  if (!p) {
    fprintf(stderr, "bench: %s\n", es);
    return NULL;
  }
  c->t_first_us = sr_mono_us();
  for (int i = 0; i < c->n; i++) {
    if (c->rate > 0) {
      int64_t due = c->t_first_us + (int64_t)((double)i * 1e6 / c->rate);
      int64_t now = sr_mono_us();
      if (due > now + 200) {
        sr_publish_poll(p, 0);
        usleep((useconds_t)(due - now));
      }
    }
    while (sr_publish_send(p, c->topic, -1, c->keys[i], strlen(c->keys[i]), c->vals[i].data,
                           c->vals[i].len, NULL, 0, NULL, es, sizeof(es)) == SR_ERR_QUEUE_FULL)
      sr_publish_poll(p, 1);
    if ((i & 1023) == 0) sr_publish_poll(p, 0);
  }
  sr_publish_flush(p, 60000);
  c->t_last_us = sr_mono_us();
  sr_publish_destroy(p);
  return NULL;
}

/* One recommendation as the reader saw it. */
typedef struct {
  int32_t src_partition;
  int64_t src_offset;
  int64_t ts_ms;   /* its Kafka timestamp */
  int64_t seen_ms; /* wall clock when the reader got it */
} rec_seen_t;

/* The recommendations reader (its own thread): from the beginning, live,
 * until `stop` is set and either `want` recommendations arrived or none
 * came for 2 s (30 s at most after stop). */
typedef struct {
  const char *bs, *topic;
  const sr_kv_t *kv;
  int n_kv;
  int32_t rec_schema_id;
  atomic_int stop;
  _Atomic int64_t want;
  rec_seen_t *seen;
  int64_t n, cap, undecodable;
  sr_err_t rc;
  char es[512];
} reader_ctx_t;

static void *reader_main(void *arg) {
  reader_ctx_t *c = arg;
  sr_kafka_reader_t *r = NULL;
  sr_codec_t *codec = sr_codec_new(1, c->rec_schema_id, c->es, sizeof(c->es));
  sr_kafka_reader_conf_t rc = {.brokers = c->bs,
                               .topic = c->topic,
                               .client_id = "bench-reader",
                               .kafka = c->kv,
                               .n_kafka = c->n_kv,
                               .from_beginning = 1};
  c->rc = codec ? sr_kafka_reader_new(&rc, &r, c->es, sizeof(c->es)) : SR_ERR_INVALID_ARG;
  /* A topic just created can be in the metadata before its leader serves
   * offset requests ("Not leader for partition"): retry for up to 10 s. */
  for (int tries = 0; codec && c->rc != SR_OK && c->rc != SR_ERR_CONF && tries < 50; tries++) {
    usleep(200000);
    c->rc = sr_kafka_reader_new(&rc, &r, c->es, sizeof(c->es));
  }
  int64_t stop_at = 0;
  while (c->rc == SR_OK) {
    if (atomic_load(&c->stop)) {
      if (!stop_at) stop_at = sr_mono_us();
      if (c->n >= atomic_load(&c->want) || sr_kafka_reader_idle_ms(r) > 2000 ||
          sr_mono_us() - stop_at > 30000000)
        break;
    }
    sr_msg_t m;
    int got = sr_kafka_reader_next(r, &m, 100, c->es, sizeof(c->es));
    if (got < 0) {
      c->rc = SR_ERR_KAFKA;
      break;
    }
    if (got == 0 || m.err != SR_OK) continue;
    sr_rec_t rec;
    if (sr_codec_decode_rec(codec, m.value, m.len, &rec, NULL, 0) != SR_OK) {
      c->undecodable++;
      continue;
    }
    if (c->n == c->cap) {
      c->cap = c->cap ? c->cap * 2 : 65536;
      c->seen = realloc(c->seen, (size_t)c->cap * sizeof(*c->seen));
    }
    c->seen[c->n++] =
        (rec_seen_t){rec.source_partition, rec.source_offset, m.timestamp_ms, sr_now_ms()};
  }
  sr_kafka_reader_destroy(r);
  sr_codec_destroy(codec);
  return NULL;
}

static int cmp_i64(const void *a, const void *b) {
  int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
  return x < y ? -1 : x > y;
}

/* Prints "p50 A  p90 B  p99 C  max D" of v[0..n-1] (sorts v). */
static void print_pcts(int64_t *v, int64_t n) {
  qsort(v, (size_t)n, sizeof(int64_t), cmp_i64);
  printf("p50 %lld  p90 %lld  p99 %lld  max %lld\n", (long long)v[n / 2], (long long)v[n * 9 / 10],
         (long long)v[n * 99 / 100], (long long)v[n - 1]);
}

static void *pipeline_main(void *arg) {
  pipe_ctx_t *c = arg;
  c->rc = sr_pipeline_run(c->p, c->es, sizeof(c->es));
  return NULL;
}

static uint64_t rng_state = 88172645463325252ULL;
static uint64_t rnd(void) {
  rng_state ^= rng_state << 13;
  rng_state ^= rng_state >> 7;
  rng_state ^= rng_state << 17;
  return rng_state;
}
static float rndf(void) { return (float)((rnd() >> 11) * (1.0 / 9007199254740992.0)) * 2.f - 1.f; }

/* A model with random parameters: throughput does not depend on their values. */
static sr_model_t *random_model(sr_model_kind_t kind, int n_items, int dim) {
  char es[256], id[32];
  sr_str_t *ids = calloc((size_t)n_items, sizeof(*ids));
  char *arena = calloc((size_t)n_items, 16);
  for (int i = 0; i < n_items; i++) {
    snprintf(id, sizeof(id), "i%d", i);
    memcpy(arena + (size_t)i * 16, id, strlen(id));
    ids[i] = sr_str_make(arena + (size_t)i * 16, strlen(id));
  }
  sr_model_t *m = sr_model_new(kind, dim, n_items, ids, es, sizeof(es));
  free(ids);
  free(arena);
  if (!m) {
    fprintf(stderr, "bench: %s\n", es);
    exit(1);
  }
  sr_param_block_t b[32];
  int nb = sr_model_params(m, b, 32);
  for (int i = 0; i < nb; i++) {
    if (!strcmp(b[i].name, "hparams")) continue; /* kind switches (decay factor, tying) */
    for (size_t j = 0; j < b[i].count; j++)
      b[i].data[j] = rndf() * 0.1f;
  }
  sr_model_set_version(m, "bench-random");
  return m;
}

/* Scoring-only rate of this model: batched score + top-K, no Kafka. */
static double scoring_limit(const sr_model_t *m, int batch, int k) {
  sr_scorer_t *sc = sr_scorer_new(m, batch, k);
  int d = sr_model_state_size(m);
  float *H = calloc((size_t)batch * d, sizeof(float));
  const float **ptrs = calloc((size_t)batch, sizeof(*ptrs));
  int32_t *idx = calloc((size_t)batch * k, sizeof(int32_t));
  float *sco = calloc((size_t)batch * k, sizeof(float));
  int *cnt = calloc((size_t)batch, sizeof(int));
  for (int i = 0; i < batch * d; i++)
    H[i] = rndf();
  for (int i = 0; i < batch; i++)
    ptrs[i] = H + (size_t)i * d;
  int iters = 0;
  int64_t t0 = sr_mono_us();
  while (sr_mono_us() - t0 < 1500000 || iters < 5) {
    sr_scorer_run(sc, ptrs, batch, NULL, NULL, idx, sco, cnt);
    iters++;
  }
  double secs = (double)(sr_mono_us() - t0) / 1e6;
  sr_scorer_destroy(sc);
  free(H);
  free(ptrs);
  free(idx);
  free(sco);
  free(cnt);
  return (double)iters * batch / secs;
}

/* Sets key=value on conf, or exits 2 naming where it came from. */
static void conf_set_or_die(sr_conf_t *conf, const char *key, const char *value,
                            const char *origin) {
  char es[256];
  if (sr_conf_set(conf, key, value, es, sizeof(es)) != SR_OK) {
    fprintf(stderr, "bench: %s %s=%s: %s\n", origin, key, value, es);
    exit(2);
  }
}

int main(int argc, char **argv) {
  sr_blas_ensure_core(argc, argv); /* may re-execute with OPENBLAS_CORETYPE (blas.h) */
  int n_events = 200000, n_users = 10000, n_items = 10000, dim = 64, k = 10, batch = 64, parts = 4;
  double rate = 0;
  int batch_wait_us = -1; /* -1: the pipeline's default */
  int blas_threads = 1;   /* serve's default (blas.threads); 0 = OpenBLAS's own */
  const char *csv = NULL, *snap = NULL, *brokers = NULL;
  sr_model_kind_t kind = SR_MODEL_GRU;
  /* -X consumer.K=V / -X producer.K=V: the pipeline's consumer or producer
   * (kafka.consumer.K / kafka.producer.K of the pipeline options); -X
   * load.K=V: the load producer. -o NAME=VALUE: any pipeline option. */
  enum { MAXX = 16 };
  sr_kv_t xl[MAXX];
  int nxl = 0;
  sr_kv_list_t xpipe = {0}, opts = {0};
  static const struct option lo[] = {{"events", 1, 0, 'e'},
                                     {"users", 1, 0, 'u'},
                                     {"items", 1, 0, 'i'},
                                     {"dim", 1, 0, 'd'},
                                     {"k", 1, 0, 'k'},
                                     {"rate", 1, 0, 'r'},
                                     {"batch-max", 1, 0, 'b'},
                                     {"partitions", 1, 0, 'p'},
                                     {"csv", 1, 0, 'c'},
                                     {"snapshot", 1, 0, 's'},
                                     {"kind", 1, 0, 'K'},
                                     {"prop", 1, 0, 'X'},
                                     {"option", 1, 0, 'o'},
                                     {"brokers", 1, 0, 'B'},
                                     {"batch-wait-us", 1, 0, 'w'},
                                     {"blas-threads", 1, 0, 't'},
                                     {0, 0, 0, 0}};
  int o;
  char es[512];
  while ((o = getopt_long(argc, argv, "X:o:", lo, NULL)) != -1) {
    switch (o) {
    case 'e': n_events = atoi(optarg); break;
    case 'u': n_users = atoi(optarg); break;
    case 'i': n_items = atoi(optarg); break;
    case 'd': dim = atoi(optarg); break;
    case 'k': k = atoi(optarg); break;
    case 'r': rate = atof(optarg); break;
    case 'b': batch = atoi(optarg); break;
    case 'w': batch_wait_us = atoi(optarg); break;
    case 't': blas_threads = atoi(optarg); break;
    case 'p': parts = atoi(optarg); break;
    case 'c': csv = optarg; break;
    case 's': snap = optarg; break;
    case 'B': brokers = optarg; break;
    case 'o':
      if (sr_kv_list_add_arg(&opts, optarg, es, sizeof(es)) != SR_OK) {
        fprintf(stderr, "bench: -o: %s\n", es);
        return 2;
      }
      break;
    case 'X': {
      char *eq = strchr(optarg, '='), *dot = strchr(optarg, '.');
      if (!eq || !dot || dot > eq) {
        fprintf(stderr, "bench: -X wants consumer.K=V, producer.K=V or load.K=V\n");
        return 2;
      }
      if (!strncmp(optarg, "load.", 5)) {
        if (nxl == MAXX) {
          fprintf(stderr, "bench: -X %s: too many load properties\n", optarg);
          return 2;
        }
        *eq = 0;
        xl[nxl++] = (sr_kv_t){dot + 1, eq + 1};
      } else if (!strncmp(optarg, "consumer.", 9) || !strncmp(optarg, "producer.", 9)) {
        char kv[1024];
        snprintf(kv, sizeof(kv), "kafka.%s", optarg);
        if (sr_kv_list_add_arg(&xpipe, kv, es, sizeof(es)) != SR_OK) {
          fprintf(stderr, "bench: -X: %s\n", es);
          return 2;
        }
      } else {
        fprintf(stderr, "bench: -X %s: unknown client (consumer, producer, load)\n", optarg);
        return 2;
      }
      break;
    }
    case 'K': {
      int kk = sr_model_kind_parse(optarg);
      if (kk < 0) {
        fprintf(stderr, "bench: unknown model kind %s\n", optarg);
        return 2;
      }
      kind = (sr_model_kind_t)kk;
      break;
    }
    default: fprintf(stderr, "see the header of bench/bench_e2e.c\n"); return 2;
    }
  }
  if (brokers && !*brokers) {
    fprintf(stderr, "bench: --brokers: empty\n");
    return 2;
  }
  sr_log_set_level(SR_LOG_WARN);
  double la0[3] = {0, 0, 0}; /* the machine is shared: report its load */
  if (getloadavg(la0, 3) != 3) la0[0] = la0[1] = la0[2] = 0;

  /* The pipeline's configuration: the bench's settings, then -X, then -o. */
  int n_rows;
  const sr_conf_opt_t *rows = sr_pipeline_conf_table(&n_rows);
  sr_conf_t *conf = sr_conf_new(rows, n_rows);
  char num[32], prefix[64] = "", tname[3][128];
  snprintf(num, sizeof(num), "%d", k);
  conf_set_or_die(conf, "k", num, "--k");
  snprintf(num, sizeof(num), "%d", batch);
  conf_set_or_die(conf, "batch.max", num, "--batch-max");
  if (batch_wait_us >= 0) {
    snprintf(num, sizeof(num), "%d", batch_wait_us);
    conf_set_or_die(conf, "batch.wait.us", num, "--batch-wait-us");
  }
  conf_set_or_die(conf, "idle.exit.ms", "1500", "bench");
  if (brokers) {
    /* this run's own topics and group */
    snprintf(prefix, sizeof(prefix), "bench-%d-%lld.", (int)getpid(), (long long)sr_now_ms());
    static const char *const opt[3] = {"topic.events", "topic.recommendations", "topic.dlq"};
    for (int t = 0; t < 3; t++) {
      snprintf(tname[t], sizeof(tname[t]), "%s%s", prefix, sr_conf_str(conf, opt[t]));
      conf_set_or_die(conf, opt[t], tname[t], "--brokers");
    }
    snprintf(tname[0], sizeof(tname[0]), "%sbench", prefix);
    conf_set_or_die(conf, "group", tname[0], "--brokers");
  } else {
    /* As serve does with its embedded broker (src/cli/cmd_serve.c): the mock
     * cluster holds empty fetches for the whole fetch.wait.max.ms. */
    conf_set_or_die(conf, "kafka.consumer.fetch.wait.max.ms", "1", "bench");
  }
  for (int i = 0; i < xpipe.n; i++)
    conf_set_or_die(conf, xpipe.kv[i].key, xpipe.kv[i].value, "-X");
  for (int i = 0; i < opts.n; i++)
    conf_set_or_die(conf, opts.kv[i].key, opts.kv[i].value, "-o");
  sr_pipeline_conf_t pc;
  if (sr_pipeline_conf_from(&pc, conf, es, sizeof(es)) != SR_OK) {
    fprintf(stderr, "bench: %s\n", es);
    return 2;
  }
  if (pc.delivery == SR_DELIVERY_EXACTLY_ONCE && !brokers) {
    /* as serve (src/cli/cmd_serve.c): the figures would mean nothing */
    fprintf(stderr, "bench: delivery.guarantee=exactly_once needs a real Kafka (--brokers): the "
                    "embedded broker (librdkafka's mock cluster) ignores "
                    "isolation.level=read_committed and discards transactional offset commits\n");
    return 2;
  }
  k = pc.k;
  batch = pc.batch_max;

  sr_model_t *model = NULL;
  if (snap) {
    if (sr_snapshot_load(snap, &model, NULL, es, sizeof(es)) != SR_OK) {
      fprintf(stderr, "bench: %s\n", es);
      return 1;
    }
  } else {
    model = random_model(kind, n_items, dim);
  }
  n_items = sr_model_n_items(model);
  blas_threads = sr_model_blas_threads(blas_threads);

  /* Events: from a CSV, or users x Zipf-ish items over the model's catalogue. */
  sr_codec_t *codec = sr_codec_new(pc.event_schema_id, pc.rec_schema_id, es, sizeof(es));
  sr_buf_t *vals = calloc((size_t)n_events, sizeof(sr_buf_t));
  char(*keys)[24] = calloc((size_t)n_events, 24);
  sr_dataset_t *ds = NULL;
  if (csv) {
    if (sr_dataset_load_csv(csv, &ds, es, sizeof(es)) != SR_OK) {
      fprintf(stderr, "bench: %s\n", es);
      return 1;
    }
    if (ds->n_events < n_events) n_events = (int)ds->n_events;
  }
  for (int i = 0; i < n_events; i++) {
    sr_buf_init(&vals[i]);
    if (ds) continue; /* filled below in file order */
    char item[24], evid[24];
    snprintf(keys[i], 24, "u%d", (int)(rnd() % (uint64_t)n_users));
    double r = (double)(rnd() >> 11) / 9007199254740992.0;
    snprintf(item, sizeof(item), "i%d", (int)((double)n_items * r * r * r)); /* skewed */
    snprintf(evid, sizeof(evid), "b%d", i);
    sr_event_t ev = {.event_id = sr_str_cstr(evid),
                     .user_id = sr_str_cstr(keys[i]),
                     .item_id = sr_str_cstr(item),
                     .type = SR_EV_CLICK,
                     .value = 1,
                     .ts_ms = 1700000000000LL + i,
                     .scenario = SR_STR("default")};
    sr_codec_encode_event(codec, &ev, &vals[i]);
  }
  if (ds) {
    /* file order: invert ev_seq */
    for (int32_t u = 0; u < ds->n_users; u++)
      for (int64_t e = ds->user_off[u]; e < ds->user_off[u + 1]; e++) {
        int64_t s = ds->ev_seq[e];
        if (s >= n_events) continue;
        sr_str_t uk = sr_strmap_key(ds->users, u), ik = sr_strmap_key(ds->items, ds->ev_item[e]);
        char evid[24];
        snprintf(evid, sizeof(evid), "b%lld", (long long)s);
        snprintf(keys[s], 24, "%.*s", (int)uk.len, uk.ptr);
        sr_event_t ev = {.event_id = sr_str_cstr(evid),
                         .user_id = uk,
                         .item_id = ik,
                         .type = (sr_event_type_t)ds->ev_type[e],
                         .value = ds->ev_value[e],
                         .ts_ms = ds->ev_ts[e],
                         .scenario = SR_STR("default")};
        sr_codec_encode_event(codec, &ev, &vals[s]);
      }
  }

  double limit = scoring_limit(model, batch, k);

  sr_broker_t *broker = NULL;
  const char *bs = brokers;
  if (brokers) {
    sr_kafka_topic_spec_t spec[3] = {
        {.name = pc.events_topic, .partitions = parts, .replication = -1},
        {.name = pc.recs_topic, .partitions = parts, .replication = -1},
        {.name = pc.dlq_topic, .partitions = parts, .replication = -1}};
    if (sr_kafka_topics_create(brokers, spec, 3, NULL, 0, 60000, NULL, es, sizeof(es)) != SR_OK) {
      fprintf(stderr, "bench: creating the topics on %s: %s\n", brokers, es);
      return 1;
    }
  } else {
    broker = sr_broker_new(1, parts, es, sizeof(es));
    if (!broker) {
      fprintf(stderr, "bench: %s\n", es);
      return 1;
    }
    bs = sr_broker_bootstrap(broker);
    if (strcmp(pc.events_topic, "events") || strcmp(pc.recs_topic, "recommendations") ||
        strcmp(pc.dlq_topic, "events.dlq")) {
      const char *own[3] = {pc.events_topic, pc.recs_topic, pc.dlq_topic};
      for (int t = 0; t < 3; t++)
        sr_broker_topic_create(broker, own[t], parts);
    }
  }
  pc.brokers = bs;
  pipe_ctx_t pctx = {0};
  pctx.p = sr_pipeline_new(&pc, model, es, sizeof(es));
  if (!pctx.p) {
    fprintf(stderr, "bench: %s\n", es);
    return 1;
  }
  /* The recommendations reader: read_committed (what an exactly-once
   * pipeline's consumers use; the same as read_uncommitted without
   * transactions), and on the mock cluster the short fetch wait. */
  sr_kv_t rkv[2] = {{"isolation.level", "read_committed"}, {"fetch.wait.max.ms", "1"}};
  reader_ctx_t rd = {.bs = bs,
                     .topic = pc.recs_topic,
                     .kv = rkv,
                     .n_kv = brokers ? 1 : 2,
                     .rec_schema_id = pc.rec_schema_id};
  atomic_init(&rd.stop, 0);
  atomic_init(&rd.want, INT64_MAX);
  /* Let the consumer join the group (and the reader find its partitions)
   * before events flow, so latency does not include the group join. */
  pthread_t pt, lt, rt;
  pthread_create(&pt, NULL, pipeline_main, &pctx);
  pthread_setname_np(pt, "sr-pipeline"); /* for perf/top */
  pthread_create(&rt, NULL, reader_main, &rd);
  pthread_setname_np(rt, "sr-reader");
  sleep(3);
  sr_kv_t lkv[MAXX + 1];
  lkv[0] = (sr_kv_t){"linger.ms", "1"};
  for (int i = 0; i < nxl; i++)
    lkv[1 + i] = xl[i];
  prod_ctx_t lc = {.bs = bs,
                   .topic = pc.events_topic,
                   .kv = lkv,
                   .n_kv = 1 + nxl,
                   .n = n_events,
                   .vals = vals,
                   .keys = keys,
                   .rate = rate};
  pthread_create(&lt, NULL, producer_main, &lc);
  pthread_setname_np(lt, "sr-load");
  pthread_join(lt, NULL);
  pthread_join(pt, NULL);
  sr_pipeline_stats_t st;
  sr_pipeline_stats(pctx.p, &st);
  if (pctx.rc != SR_OK) fprintf(stderr, "bench: pipeline: %s\n", pctx.es);
  atomic_store(&rd.want, (int64_t)st.recs_delivered);
  atomic_store(&rd.stop, 1);
  pthread_join(rt, NULL);
  if (rd.rc != SR_OK) fprintf(stderr, "bench: recommendations reader: %s\n", rd.es);

  /* Event timestamps by (partition, offset): the events topic read back. */
  int64_t **ev_ts = calloc((size_t)parts, sizeof(int64_t *));
  for (int p = 0; p < parts; p++)
    ev_ts[p] = calloc((size_t)n_events + 1, sizeof(int64_t));
  {
    sr_kafka_reader_t *r = NULL;
    sr_kafka_reader_conf_t ec = {.brokers = bs,
                                 .topic = pc.events_topic,
                                 .client_id = "bench-reader",
                                 .kafka = rkv + 1,
                                 .n_kafka = brokers ? 0 : 1,
                                 .from_beginning = 1,
                                 .to_end = 1};
    if (sr_kafka_reader_new(&ec, &r, es, sizeof(es)) != SR_OK) {
      fprintf(stderr, "bench: reading %s back: %s\n", pc.events_topic, es);
    } else {
      int64_t deadline = sr_mono_us() + 60000000;
      while (!sr_kafka_reader_at_end(r) && sr_mono_us() < deadline) {
        sr_msg_t m;
        int got = sr_kafka_reader_next(r, &m, 200, es, sizeof(es));
        if (got < 0) {
          fprintf(stderr, "bench: reading %s back: %s\n", pc.events_topic, es);
          break;
        }
        if (got == 1 && m.err == SR_OK && m.partition < parts && m.offset >= 0 &&
            m.offset <= n_events)
          ev_ts[m.partition][m.offset] = m.timestamp_ms;
      }
      sr_kafka_reader_destroy(r);
    }
  }
  int64_t n_rec = rd.n, n_lat = 0, no_source = 0, rec_first = INT64_MAX, rec_last = 0;
  int64_t seen_first = INT64_MAX, seen_last = 0;
  int64_t *lat = calloc((size_t)n_rec + 1, sizeof(int64_t));
  int64_t *vis = calloc((size_t)n_rec + 1, sizeof(int64_t));
  int64_t *lat_ets = calloc((size_t)n_rec + 1, sizeof(int64_t)); /* source event ts */
  for (int64_t i = 0; i < n_rec; i++) {
    const rec_seen_t *r = &rd.seen[i];
    int64_t ets = r->src_partition >= 0 && r->src_partition < parts && r->src_offset >= 0 &&
                          r->src_offset <= n_events
                      ? ev_ts[r->src_partition][r->src_offset]
                      : 0;
    if (ets <= 0) { /* its event is gone (the mock's retention) */
      no_source++;
      continue;
    }
    lat_ets[n_lat] = ets;
    vis[n_lat] = r->seen_ms - ets;
    lat[n_lat++] = r->ts_ms - ets;
    if (r->ts_ms < rec_first) rec_first = r->ts_ms;
    if (r->ts_ms > rec_last) rec_last = r->ts_ms;
    if (r->seen_ms < seen_first) seen_first = r->seen_ms;
    if (r->seen_ms > seen_last) seen_last = r->seen_ms;
  }
  /* Steady state: events produced at least 1 s after the first event read
   * back (the first second holds client start-up: the output topic's
   * metadata, the first fetches). */
  int64_t ev_first = INT64_MAX, n_steady = 0;
  for (int64_t i = 0; i < n_lat; i++)
    if (lat_ets[i] < ev_first) ev_first = lat_ets[i];
  if (getenv("BENCH_E2E_DUMP")) {
    FILE *f = fopen(getenv("BENCH_E2E_DUMP"), "w");
    for (int64_t i = 0; f && i < n_lat; i++)
      fprintf(f, "%lld %lld\n", (long long)(lat_ets[i] - ev_first), (long long)lat[i]);
    if (f) fclose(f);
  }
  int64_t *steady = calloc((size_t)n_lat + 1, sizeof(int64_t));
  int64_t *steady_vis = calloc((size_t)n_lat + 1, sizeof(int64_t));
  for (int64_t i = 0; i < n_lat; i++)
    if (lat_ets[i] >= ev_first + 1000) {
      steady_vis[n_steady] = vis[i];
      steady[n_steady++] = lat[i];
    }
  double span = n_lat > 1 ? (double)(rec_last - rec_first) / 1000.0 : 0;
  double seen_span = n_lat > 1 ? (double)(seen_last - seen_first) / 1000.0 : 0;
  /* one recommendation per event (no coalescing in this bench) */
  double eps = span > 0 ? (double)n_lat / span : 0;
  long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
  double la[3] = {0, 0, 0};
  if (getloadavg(la, 3) != 3) la[0] = la[1] = la[2] = 0;
  printf("machine: %ld cores; BLAS threads %d (OPENBLAS_NUM_THREADS=%s); load average at end %.2f "
         "%.2f %.2f "
         "(at start %.2f %.2f %.2f)\n",
         ncpu, blas_threads,
         getenv("OPENBLAS_NUM_THREADS") ? getenv("OPENBLAS_NUM_THREADS") : "(all)", la[0], la[1],
         la[2], la0[0], la0[1], la0[2]);
  sr_blas_info_t bi;
  char bdesc[192];
  sr_blas_info(&bi);
  printf("openblas: %s\n", sr_blas_describe(&bi, bdesc, sizeof(bdesc)));
  printf("broker: %s%s%s\n", brokers ? brokers : "embedded (mock cluster, in process)",
         brokers ? ", topics " : "", prefix);
  printf("setup: model=%s events=%d items=%d dim=%d k=%d batch.max=%d batch.wait.us=%d "
         "partitions=%d input=%s rate=%s delivery.guarantee=%s transaction.scope=%s\n",
         sr_model_kind_name(sr_model_kind(sr_pipeline_model(pctx.p))), n_events, n_items,
         sr_model_dim(sr_pipeline_model(pctx.p)), k, batch, pc.batch_wait_us, parts,
         csv ? csv : "generated", rate > 0 ? "fixed" : "full speed",
         sr_conf_str(conf, "delivery.guarantee"), sr_conf_str(conf, "transaction.scope"));
  for (int i = 0; i < opts.n; i++)
    printf("option: %s=%s\n", opts.kv[i].key, opts.kv[i].value);
  static const char *const who[3] = {"kafka", "consumer", "producer"};
  for (int w = 0; w < 3; w++) {
    int n;
    const sr_kv_t *kv = sr_conf_kafka(conf, (sr_conf_client_t)w, &n);
    for (int i = 0; i < n; i++)
      printf("%s: %s=%s\n", who[w], kv[i].key, kv[i].value);
  }
  for (int i = 0; i < nxl; i++)
    printf("load producer: %s=%s\n", xl[i].key, xl[i].value);
  if (rate > 0) printf("input rate: %.0f events/s requested\n", rate);
  printf("pipeline: consumed=%llu recommendations=%llu delivered=%llu coalesced=%llu dlq=%llu "
         "unknown_items=%llu batches=%llu (mean %.1f events)",
         (unsigned long long)st.consumed, (unsigned long long)st.recs_sent,
         (unsigned long long)st.recs_delivered, (unsigned long long)st.coalesced,
         (unsigned long long)st.dlq, (unsigned long long)st.unknown_items,
         (unsigned long long)st.batches,
         st.batches ? (double)st.consumed / (double)st.batches : 0.0);
  if (pc.delivery == SR_DELIVERY_EXACTLY_ONCE)
    printf(" transactions=%llu aborted=%llu (%.1f ms each to finish)",
           (unsigned long long)st.txn_committed, (unsigned long long)st.txn_aborted,
           st.txn_committed ? (double)st.txn_commit_ns * 1e-6 / (double)st.txn_committed : 0.0);
  printf("\n");
  printf("reader: %lld recommendations read (read_committed)%s", (long long)n_rec,
         rd.undecodable ? ", some undecodable" : "");
  if (no_source)
    printf(", %lld without their event's timestamp (broker retention)", (long long)no_source);
  printf("\n");
  printf("sustained: %.0f events/s from first to last recommendation timestamp (%.2f s, %lld "
         "of %llu recommendations); %.0f events/s as the reader saw them (%.2f s)\n",
         eps, span, (long long)n_lat, (unsigned long long)st.recs_sent,
         seen_span > 0 ? (double)n_lat / seen_span : 0, seen_span);
  if (st.recs_sent > 0)
    printf("pipeline time in scoring + top-K: %.2f s in all, %.1f us per recommendation\n",
           (double)st.score_ns * 1e-9, (double)st.score_ns * 1e-3 / (double)st.recs_sent);
  printf("scoring-only limit (same run, batch %d, %d BLAS thread(s)): %.0f users/s; ratio %.2f\n",
         batch, blas_threads, limit, limit > 0 ? eps / limit : 0);
  if (n_lat > 0) {
    printf("latency event->recommendation (ms, Kafka timestamps, n=%lld): ", (long long)n_lat);
    print_pcts(lat, n_lat);
    printf("latency event->visible to the reader (ms, n=%lld): ", (long long)n_lat);
    print_pcts(vis, n_lat);
  }
  if (n_steady > 0) {
    printf("latency after the first second (n=%lld): ", (long long)n_steady);
    print_pcts(steady, n_steady);
    printf("visible after the first second (n=%lld): ", (long long)n_steady);
    print_pcts(steady_vis, n_steady);
  }
  int ok = pctx.rc == SR_OK && rd.rc == SR_OK;
  free(steady);
  free(steady_vis);
  free(lat);
  free(vis);
  free(lat_ets);
  for (int p = 0; p < parts; p++)
    free(ev_ts[p]);
  free(ev_ts);
  free(rd.seen);
  sr_pipeline_destroy(pctx.p);
  sr_broker_destroy(broker);
  sr_conf_destroy(conf);
  sr_kv_list_free(&xpipe);
  sr_kv_list_free(&opts);
  return ok ? 0 : 1;
}
