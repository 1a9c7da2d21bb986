/*
 * bench_e2e: the whole pipeline on the embedded broker, in one process.
 *
 * A producer thread writes UserEvents (generated, or a CSV) to "events" at
 * full speed or at --rate events/s while the pipeline consumes them; when
 * the pipeline has been idle for a second both topics are read back and
 *   - sustained events/s = events / (last rec timestamp - first rec timestamp)
 *   - latency = recommendation's Kafka timestamp - its source event's Kafka
 *     timestamp (both set by the producers at produce time, ms resolution)
 * are printed, with the scoring-only limit measured in the same run
 * (batched sgemm + top-K of the same model, no Kafka) and the ratio to it.
 *
 * The embedded broker keeps only the newest ~5 MiB of each partition
 * (src/broker/broker.c): with 4 partitions that is ~94k recommendations of
 * ~220 bytes, fewer than the default 200k events produce. Both figures are
 * therefore computed over the recommendations that can be read back (the
 * newest ones: steady state, after any start-up backlog) and say how many
 * that was; reading stops once the topic has been quiet for 2 s.
 *
 * Usage: bench_e2e [--events E] [--users U] [--items N] [--dim D] [--k K]
 *                  [--rate R] [--batch-max B] [--partitions P] [--csv FILE]
 *                  [--snapshot FILE] [--kind gru|decay]
 *                  [--batch-wait-us U] [--blas-threads N (default 1, as serve; 0 = OpenBLAS's)]
 *                  [-X consumer.K=V] [-X producer.K=V] [-X load.K=V]
 * BENCH_E2E_DUMP=FILE writes "ms since first event, latency ms" per recommendation.
 * Without --snapshot the model is random, of --kind (default gru, the
 * sequential model: O(d^2) per event; decay is O(d)).
 */
#include <getopt.h>
#include <pthread.h>
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
    while (sr_publish_send(p, "events", -1, c->keys[i], strlen(c->keys[i]), c->vals[i].data,
                           c->vals[i].len, NULL, 0, NULL, es, sizeof(es)) == SR_ERR_QUEUE_FULL)
      sr_publish_poll(p, 1);
    if ((i & 1023) == 0) sr_publish_poll(p, 0);
  }
  sr_publish_flush(p, 60000);
  c->t_last_us = sr_mono_us();
  sr_publish_destroy(p);
  return NULL;
}

static void *pipeline_main(void *arg) {
  pipe_ctx_t *c = arg;
  c->rc = sr_pipeline_run(c->p, c->es, sizeof(c->es));
  return NULL;
}

static int cmp_i64(const void *a, const void *b) {
  int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
  return x < y ? -1 : x > y;
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

int main(int argc, char **argv) {
  sr_blas_ensure_core(argc, argv); /* may re-execute with OPENBLAS_CORETYPE (blas.h) */
  int n_events = 200000, n_users = 10000, n_items = 10000, dim = 64, k = 10, batch = 64, parts = 4;
  double rate = 0;
  int batch_wait_us = -1; /* -1: the pipeline's default */
  int blas_threads = 1;   /* serve's default (blas.threads); 0 = OpenBLAS's own */
  const char *csv = NULL, *snap = NULL;
  sr_model_kind_t kind = SR_MODEL_GRU;
  /* -X consumer.K=V / -X producer.K=V / -X load.K=V: client properties of
   * the pipeline's consumer, its producer, or the load producer */
  enum { MAXX = 16 };
  sr_kv_t xc[MAXX], xp[MAXX], xl[MAXX + 1];
  int nxc = 0, nxp = 0, nxl = 0;
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
                                     {"batch-wait-us", 1, 0, 'w'},
                                     {"blas-threads", 1, 0, 't'},
                                     {0, 0, 0, 0}};
  int o;
  while ((o = getopt_long(argc, argv, "X:", lo, NULL)) != -1) {
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
    case 'X': {
      char *eq = strchr(optarg, '='), *dot = strchr(optarg, '.');
      if (!eq || !dot || dot > eq) {
        fprintf(stderr, "bench: -X wants consumer.K=V, producer.K=V or load.K=V\n");
        return 2;
      }
      *eq = 0;
      *dot = 0;
      sr_kv_t kv = {dot + 1, eq + 1};
      if (!strcmp(optarg, "consumer") && nxc < MAXX)
        xc[nxc++] = kv;
      else if (!strcmp(optarg, "producer") && nxp < MAXX)
        xp[nxp++] = kv;
      else if (!strcmp(optarg, "load") && nxl < MAXX)
        xl[nxl++] = kv;
      else {
        fprintf(stderr, "bench: -X %s: unknown client or too many properties\n", optarg);
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
  sr_log_set_level(SR_LOG_WARN);
  double la0[3] = {0, 0, 0}; /* the machine is shared: report its load */
  if (getloadavg(la0, 3) != 3) la0[0] = la0[1] = la0[2] = 0;
  char es[512];
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
  sr_codec_t *codec = sr_codec_new(1, 2, es, sizeof(es));
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

  sr_broker_t *broker = sr_broker_new(1, parts, es, sizeof(es));
  if (!broker) {
    fprintf(stderr, "bench: %s\n", es);
    return 1;
  }
  const char *bs = sr_broker_bootstrap(broker);
  sr_pipeline_conf_t pc;
  sr_pipeline_conf_defaults(&pc);
  pc.brokers = bs;
  pc.k = k;
  pc.batch_max = batch;
  pc.idle_exit_ms = 1500;
  if (batch_wait_us >= 0) pc.batch_wait_us = batch_wait_us;
  /* As serve does with its embedded broker (src/cli/cmd_serve.c): the mock
   * cluster holds empty fetches for the whole fetch.wait.max.ms. */
  int fetch_wait_set = 0;
  for (int i = 0; i < nxc; i++)
    fetch_wait_set |= !strcmp(xc[i].key, "fetch.wait.max.ms");
  if (!fetch_wait_set && nxc < MAXX) xc[nxc++] = (sr_kv_t){"fetch.wait.max.ms", "1"};
  pc.kafka_consumer = xc;
  pc.n_kafka_consumer = nxc;
  pc.kafka_producer = xp;
  pc.n_kafka_producer = nxp;
  pipe_ctx_t pctx = {0};
  pctx.p = sr_pipeline_new(&pc, model, es, sizeof(es));
  if (!pctx.p) {
    fprintf(stderr, "bench: %s\n", es);
    return 1;
  }
  /* Let the consumer join the group before events flow, so latency does not
   * include the group join. */
  pthread_t pt, lt;
  pthread_create(&pt, NULL, pipeline_main, &pctx);
  pthread_setname_np(pt, "sr-pipeline"); /* for perf/top */
  sleep(3);
  sr_kv_t lkv[MAXX + 1];
  lkv[0] = (sr_kv_t){"linger.ms", "1"};
  for (int i = 0; i < nxl; i++)
    lkv[1 + i] = xl[i];
  prod_ctx_t lc = {.bs = bs,
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

  /* Read both topics back: event timestamps by (partition, offset). */
  int64_t **ev_ts = calloc((size_t)parts, sizeof(int64_t *));
  for (int p = 0; p < parts; p++)
    ev_ts[p] = calloc((size_t)n_events + 1, sizeof(int64_t));
  int64_t *lat = calloc((size_t)st.recs_sent + 1, sizeof(int64_t));
  int64_t *lat_ets = calloc((size_t)st.recs_sent + 1, sizeof(int64_t)); /* source event ts */
  int64_t n_lat = 0, rec_first = INT64_MAX, rec_last = 0;
  const char *topics[2] = {"events", "recommendations"};
  for (int t = 0; t < 2; t++) {
    char group[64];
    snprintf(group, sizeof(group), "bench-reader-%d", t);
    sr_ingest_conf_t ic = {.brokers = bs, .group = group, .topic = topics[t], .client_id = "bench"};
    sr_ingest_t *in = sr_ingest_new(&ic, es, sizeof(es));
    sr_msg_t msgs[256];
    int64_t want = t == 0 ? n_events : (int64_t)st.recs_sent, got = 0;
    int64_t deadline = sr_mono_us() + 30000000, last_msg = sr_mono_us() + 8000000;
    /* until all arrived, 2 s of quiet once reading started (retention may
     * have dropped the oldest), or 30 s */
    while (got < want && sr_mono_us() < deadline && sr_mono_us() - last_msg < 2000000) {
      int n = sr_ingest_poll(in, msgs, 256, 200, 0, es, sizeof(es));
      if (n > 0) last_msg = sr_mono_us();
      for (int i = 0; i < n; i++) {
        if (t == 0) {
          if (msgs[i].offset <= n_events)
            ev_ts[msgs[i].partition][msgs[i].offset] = msgs[i].timestamp_ms;
        } else {
          sr_rec_t r;
          if (sr_codec_decode_rec(codec, msgs[i].value, msgs[i].len, &r, es, sizeof(es)) == SR_OK &&
              r.source_partition < parts && r.source_offset <= n_events) {
            int64_t ets = ev_ts[r.source_partition][r.source_offset];
            lat_ets[n_lat] = ets;
            lat[n_lat++] = msgs[i].timestamp_ms - ets;
            if (msgs[i].timestamp_ms < rec_first) rec_first = msgs[i].timestamp_ms;
            if (msgs[i].timestamp_ms > rec_last) rec_last = msgs[i].timestamp_ms;
          }
        }
      }
      got += n > 0 ? n : 0;
      sr_ingest_release(in, msgs, n > 0 ? n : 0);
    }
    sr_ingest_destroy(in);
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
  for (int64_t i = 0; i < n_lat; i++)
    if (lat_ets[i] >= ev_first + 1000) steady[n_steady++] = lat[i];
  qsort(lat, (size_t)n_lat, sizeof(int64_t), cmp_i64);
  qsort(steady, (size_t)n_steady, sizeof(int64_t), cmp_i64);
  double span = (double)(rec_last - rec_first) / 1000.0;
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
  printf("setup: model=%s events=%d items=%d dim=%d k=%d batch.max=%d batch.wait.us=%d "
         "partitions=%d input=%s rate=%s\n",
         sr_model_kind_name(sr_model_kind(sr_pipeline_model(pctx.p))), n_events, n_items,
         sr_model_dim(sr_pipeline_model(pctx.p)), k, batch, pc.batch_wait_us, parts,
         csv ? csv : "generated", rate > 0 ? "fixed" : "full speed");
  for (int i = 0; i < nxc; i++)
    printf("consumer: %s=%s\n", xc[i].key, xc[i].value);
  for (int i = 0; i < nxp; i++)
    printf("producer: %s=%s\n", xp[i].key, xp[i].value);
  for (int i = 0; i < nxl; i++)
    printf("load producer: %s=%s\n", xl[i].key, xl[i].value);
  if (rate > 0) printf("input rate: %.0f events/s requested\n", rate);
  printf("pipeline: consumed=%llu recommendations=%llu coalesced=%llu dlq=%llu unknown_items=%llu "
         "batches=%llu (mean %.1f events)\n",
         (unsigned long long)st.consumed, (unsigned long long)st.recs_sent,
         (unsigned long long)st.coalesced, (unsigned long long)st.dlq,
         (unsigned long long)st.unknown_items, (unsigned long long)st.batches,
         st.batches ? (double)st.consumed / (double)st.batches : 0.0);
  printf("sustained: %.0f events/s from first to last recommendation read back (%.2f s, %lld "
         "of %llu recommendations%s)\n",
         eps, span, (long long)n_lat, (unsigned long long)st.recs_sent,
         n_lat < (int64_t)st.recs_sent ? ": the newest ones, broker retention" : "");
  if (st.recs_sent > 0)
    printf("pipeline time in scoring + top-K: %.2f s in all, %.1f us per recommendation\n",
           (double)st.score_ns * 1e-9, (double)st.score_ns * 1e-3 / (double)st.recs_sent);
  printf("scoring-only limit (same run, batch %d, %d BLAS thread(s)): %.0f users/s; ratio %.2f\n",
         batch, blas_threads, limit, limit > 0 ? eps / limit : 0);
  if (n_lat > 0)
    printf("latency event->recommendation (ms, Kafka timestamps, n=%lld): p50 %lld  p90 %lld  "
           "p99 %lld  max %lld\n",
           (long long)n_lat, (long long)lat[n_lat / 2], (long long)lat[n_lat * 9 / 10],
           (long long)lat[n_lat * 99 / 100], (long long)lat[n_lat - 1]);
  if (n_steady > 0)
    printf("latency after the first second (n=%lld): p50 %lld  p90 %lld  p99 %lld  max %lld\n",
           (long long)n_steady, (long long)steady[n_steady / 2],
           (long long)steady[n_steady * 9 / 10], (long long)steady[n_steady * 99 / 100],
           (long long)steady[n_steady - 1]);
  free(steady);
  free(lat_ets);
  sr_pipeline_destroy(pctx.p);
  sr_broker_destroy(broker);
  return pctx.rc == SR_OK ? 0 : 1;
}
