/*
 * `streamrec serve`: the online worker. Loads the snapshot, builds the
 * pipeline (library mode) and runs it on its own thread while the main
 * thread runs the libuv loop (signals, admin HTTP). Without --brokers it
 * starts the embedded broker in-process first, so the main job runs with no
 * setup.
 *
 * Options come from one typed table (sr_serve_opts) that also generates
 * --help and docs/CONFIGURATION.md; flags, a config file and -X key=value
 * all set the same keys, later ones winning.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "streamrec/admin.h"
#include "streamrec/conf.h"
#include "streamrec/kafka.h"
#include "streamrec/metrics.h"
#include "streamrec/pipeline.h"
#include "streamrec/snapshot.h"

#define I64MAX 9223372036854775807LL

const sr_conf_opt_t sr_serve_opts[] = {
    {"brokers", SR_CONF_STR, NULL, 0, 0,
     "Kafka bootstrap servers; unset = start the embedded broker in-process", "brokers"},
    {"snapshot", SR_CONF_STR, NULL, 0, 0, "model snapshot file written by `streamrec train`",
     "snapshot"},
    {"group", SR_CONF_STR, "streamrec", 0, 0, "consumer group id", "group"},
    {"client.id", SR_CONF_STR, "streamrec", 0, 0, "Kafka client id", NULL},
    {"topic.events", SR_CONF_STR, "events", 0, 0, "input topic of UserEvents", "events-topic"},
    {"topic.recommendations", SR_CONF_STR, "recommendations", 0, 0,
     "output topic of Recommendations", "recs-topic"},
    {"topic.dlq", SR_CONF_STR, "events.dlq", 0, 0,
     "dead-letter topic for undecodable input (original key/value + reason headers)", "dlq-topic"},
    {"k", SR_CONF_INT, "10", 1, 1000, "items per recommendation", "k"},
    {"batch.max", SR_CONF_INT, "64", 1, 4096, "users per scoring micro-batch (one sgemm)",
     "batch-max"},
    {"batch.wait.us", SR_CONF_INT, "1000", 0, 1000000,
     "longest wait to fill a micro-batch once the first event arrived", "batch-wait-us"},
    {"blas.threads", SR_CONF_INT, "1", 0, 256,
     "OpenBLAS threads for scoring (0 = OpenBLAS's default: OPENBLAS_NUM_THREADS or all "
     "cores); 1 leaves the other cores to Kafka's client and broker threads "
     "(docs/PERFORMANCE.md: 2 threads on 2 cores lost to 1 end to end)",
     "blas-threads"},
    {"batch.coalesce", SR_CONF_BOOL, "false", 0, 0,
     "true: a user's events within one micro-batch get one recommendation, for the newest "
     "(fewer outputs for bursty users); false: one recommendation per event",
     "coalesce"},
    {"state.seen.types", SR_CONF_STR, SR_SEEN_TYPES_DEFAULT, 0, 0,
     "event types that consume their item (comma-separated); recommendations never "
     "contain an item the user consumed (within state.seen.window.ms). FORGET clears "
     "the user's items; IMPRESSION and SKIP are left out by default",
     "seen-types"},
    {"state.seen.window.ms", SR_CONF_INT, "0", 0, I64MAX,
     "re-consumption window: an item consumed at t is excluded while the user's newest "
     "event time is less than t + window; 0 = never recommended again",
     "seen-window-ms"},
    {"state.seen.max", SR_CONF_INT, SR_XSTR(SR_SEEN_MAX_DEFAULT), 1, SR_SEEN_MAX_LIMIT,
     "consumed items remembered per user; past it the one consumed longest ago is "
     "dropped (and may be recommended again; counted in "
     "streamrec_state_seen_dropped_total)",
     "seen-max"},
    {"schema.id.event", SR_CONF_INT, "1", 0, 2147483647, "Confluent schema id of UserEvent",
     "event-schema-id"},
    {"schema.id.recommendation", SR_CONF_INT, "2", 0, 2147483647,
     "Confluent schema id of Recommendation", "rec-schema-id"},
    {"commit.interval.ms", SR_CONF_INT, "500", 1, 3600000,
     "how often delivered progress is committed (also on revoke and shutdown)",
     "commit-interval-ms"},
    {"inflight.batches.max", SR_CONF_INT, "4096", 2, 1000000,
     "micro-batches awaiting delivery before consumption waits (back-pressure)", NULL},
    {"event.id.max.bytes", SR_CONF_INT, "1024", 1, 1000000,
     "longest event_id, user_id, item_id or scenario accepted; longer events are "
     "dead-lettered (INVALID_FIELD)",
     NULL},
    {"event.time.future.max.ms", SR_CONF_INT, "86400000", 0, I64MAX,
     "latest event timestamp accepted, as ms past this worker's clock (timestamps before "
     "1970 are always refused); later events are dead-lettered (INVALID_FIELD)",
     NULL},
    {"event.key.check", SR_CONF_BOOL, "true", 0, 0,
     "true: an event whose Kafka key is not its user_id is dead-lettered (KEY_MISMATCH), "
     "since a user's state lives in the partition of its key",
     NULL},
    {"state.partition.users.max", SR_CONF_INT, "67108863", 1, 67108863,
     "users one input partition's state holds; events of further new users are "
     "dead-lettered (STATE_FULL)",
     NULL},
    {"shutdown.timeout.ms", SR_CONF_INT, "10000", 0, 3600000,
     "how long SIGINT/SIGTERM waits for outputs in flight; undelivered ones stay uncommitted "
     "(a second signal stops at once)",
     NULL},
    {"admin.addr", SR_CONF_STR, "127.0.0.1", 0, 0, "admin HTTP listen address", "admin-addr"},
    {"admin.port", SR_CONF_INT, "0", -1, 65535,
     "admin HTTP port for /metrics, /healthz, /readyz (0 = off, -1 = any free port)", "admin-port"},
    {"admin.max.connections", SR_CONF_INT, "64", 1, 65536,
     "admin HTTP connections open at once; more are answered 503 and closed (each one is a "
     "descriptor the Kafka clients cannot use)",
     NULL},
    {"admin.request.timeout.ms", SR_CONF_INT, "5000", 1, 3600000,
     "an admin HTTP connection that has not sent a complete request and taken its response "
     "within this long (from accept, or from the previous response) is closed",
     NULL},
    {"embedded.partitions", SR_CONF_INT, "4", 1, 1024,
     "partitions per topic of the embedded broker (without --brokers)", "partitions"},
    {"idle.exit.ms", SR_CONF_INT, "0", 0, 86400000,
     "exit after this long without input once events were processed (0 = never)", "idle-exit-ms"},
    {"max.events", SR_CONF_INT, "0", 0, I64MAX,
     "exit after this many input messages (0 = no limit)", "max-events"},
};
const int sr_serve_n_opts = (int)SR_ARRAY_SIZE(sr_serve_opts);

typedef struct sr_serve_ctx_s {
  sr_pipeline_t *pipe;
  sr_loop_t *loop;
  sr_err_t result;
  char errstr[512];
  volatile int done;
  int64_t started_ms;
  const char *brokers, *group; /* borrowed from the configuration */
} sr_serve_ctx_t;

static void *sr_serve_thread(void *arg) {
  sr_serve_ctx_t *ctx = arg;
  ctx->result = sr_pipeline_run(ctx->pipe, ctx->errstr, sizeof(ctx->errstr));
  ctx->done = 1;
  sr_loop_wake(ctx->loop);
  return NULL;
}

static int sr_serve_render(void *opaque, const char *path, sr_buf_t *out, const char **ctype) {
  sr_serve_ctx_t *ctx = opaque;
  sr_pipeline_stats_t st;
  sr_pipeline_stats(ctx->pipe, &st);
  if (!strcmp(path, "/metrics")) {
    *ctype = "text/plain; version=0.0.4; charset=utf-8";
    sr_metrics_render(&st, sr_pipeline_model(ctx->pipe), sr_now_ms() - ctx->started_ms, out);
    return 200;
  }
  if (!strcmp(path, "/healthz")) {
    sr_buf_printf(out, ctx->done ? "stopped\n" : "ok\n");
    return ctx->done ? 503 : 200;
  }
  if (!strcmp(path, "/readyz")) {
    int ready = !ctx->done && st.assigned_partitions > 0;
    if (ready)
      sr_buf_printf(out, "ready\n");
    else if (ctx->done)
      sr_buf_printf(out, "not ready: stopped\n");
    else if (st.kafka_down_ms > 0)
      sr_buf_printf(out,
                    "not ready: no partitions assigned for %.1f s; all brokers at %s "
                    "unreachable for %.1f s\n",
                    (double)st.unassigned_ms / 1e3, ctx->brokers, (double)st.kafka_down_ms / 1e3);
    else
      sr_buf_printf(out, "not ready: no partitions assigned for %.1f s (joining group %s)\n",
                    (double)st.unassigned_ms / 1e3, ctx->group);
    return ready ? 200 : 503;
  }
  sr_buf_printf(out, "not found; try /metrics /healthz /readyz\n");
  return 404;
}

static void sr_serve_usage(FILE *f) {
  fprintf(f,
          "usage: streamrec serve [--brokers B] --snapshot FILE [--k K] [--group G] [options]\n\n"
          "Consumes UserEvents, updates each user's state, publishes one Recommendation per\n"
          "event (coalesced per user within a micro-batch). Offsets are committed only after\n"
          "the recommendations are acknowledged. SIGINT/SIGTERM: finish, commit, leave.\n\n"
          "options:\n");
  sr_conf_usage(sr_serve_opts, sr_serve_n_opts, f);
  fprintf(f, "  %-28s %s\n  %-28s %s\n", "--config FILE", "read key = value lines", "-X key=value",
          "set any key; kafka.X goes to both Kafka clients, kafka.consumer.X / kafka.producer.X to "
          "one");
}

/* Parses argv into conf. Returns 0, or the exit code to return. */
int sr_serve_parse_args(sr_conf_t *conf, int argc, char **argv) {
  char es[512];
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
      sr_serve_usage(stdout);
      return -1;
    }
    const char *val = NULL;
    char flag[128];
    if (!strcmp(a, "-X")) {
      if (i + 1 >= argc) goto missing;
      char *kv = sr_strdup(argv[++i]);
      char *eq = strchr(kv, '=');
      sr_err_t e = eq ? (*eq = 0, sr_conf_set(conf, kv, eq + 1, es, sizeof(es)))
                      : sr_seterr(es, sizeof(es), SR_ERR_CONF, "-X expects key=value");
      sr_free(kv);
      if (e != SR_OK) goto bad;
      continue;
    }
    if (strncmp(a, "--", 2)) {
      snprintf(es, sizeof(es), "unexpected argument '%s'", a);
      goto bad;
    }
    const char *eq = strchr(a, '=');
    snprintf(flag, sizeof(flag), "%.*s", eq ? (int)(eq - a - 2) : (int)strlen(a + 2), a + 2);
    if (eq)
      val = eq + 1;
    else if (i + 1 < argc)
      val = argv[++i];
    else
      goto missing;
    if (!strcmp(flag, "config")) {
      if (sr_conf_load_file(conf, val, es, sizeof(es)) != SR_OK) goto bad;
      continue;
    }
    const sr_conf_opt_t *o = sr_conf_find_flag(conf, flag);
    if (!o) {
      snprintf(es, sizeof(es), "unknown option --%s (see --help)", flag);
      goto bad;
    }
    if (sr_conf_set(conf, o->name, val, es, sizeof(es)) != SR_OK) goto bad;
  }
  return 0;
missing:
  fprintf(stderr, "serve: option %s needs a value\n", argv[argc - 1]);
  return 2;
bad:
  fprintf(stderr, "serve: %s\n", es);
  return 2;
}

int sr_cmd_serve(int argc, char **argv) {
  int rc = 1;
  char es[512];
  sr_conf_t *conf = sr_conf_new(sr_serve_opts, sr_serve_n_opts);
  sr_broker_t *broker = NULL;
  sr_model_t *model = NULL;
  sr_loop_t *loop = NULL;
  sr_serve_ctx_t ctx;
  memset(&ctx, 0, sizeof(ctx));
  ctx.started_ms = sr_now_ms();

  int prc = sr_serve_parse_args(conf, argc, argv);
  if (prc != 0) {
    rc = prc < 0 ? 0 : prc;
    goto out;
  }
  const char *snap = sr_conf_str(conf, "snapshot");
  if (!snap) {
    fprintf(stderr, "serve: --snapshot is required (write one with `streamrec train`)\n");
    rc = 2;
    goto out;
  }
  sr_snapshot_info_t info;
  if (sr_snapshot_load(snap, &model, &info, es, sizeof(es)) != SR_OK) {
    fprintf(stderr, "serve: cannot load snapshot: %s\n", es);
    goto out;
  }
  const int blas_threads = sr_model_blas_threads((int)sr_conf_int(conf, "blas.threads"));
  sr_log_info("serve", "model %s: kind %s, d=%d, %d items; %d BLAS thread(s)",
              sr_model_version(model), sr_model_kind_name(sr_model_kind(model)),
              sr_model_dim(model), (int)sr_model_n_items(model), blas_threads);

  const char *brokers = sr_conf_str(conf, "brokers");
  if (!brokers) {
    broker = sr_broker_new(1, (int)sr_conf_int(conf, "embedded.partitions"), es, sizeof(es));
    if (!broker) {
      fprintf(stderr, "serve: cannot start the embedded broker: %s\n", es);
      goto out;
    }
    brokers = sr_broker_bootstrap(broker);
    sr_conf_set(conf, "brokers", brokers, NULL, 0);
    brokers = sr_conf_str(conf, "brokers");
    printf("bootstrap=%s\n", brokers);
    fflush(stdout);
    /* The embedded broker (librdkafka's mock cluster) holds an empty fetch
     * for the whole fetch.wait.max.ms instead of answering when data
     * arrives (bench/e2e at 2,000 events/s: p50 12 ms with the 10 ms
     * default, 5 ms with 1 ms). A real broker answers on arrival, so the
     * 1 ms wait is for the embedded broker only, unless set explicitly. */
    int has = 0, n;
    for (int w = 0; w < 2; w++) {
      const sr_kv_t *kv = sr_conf_kafka(conf, w ? SR_CONF_KAFKA_CONSUMER : SR_CONF_KAFKA_BOTH, &n);
      for (int i = 0; i < n; i++)
        has |= !strcmp(kv[i].key, "fetch.wait.max.ms");
    }
    if (!has) sr_conf_set(conf, "kafka.consumer.fetch.wait.max.ms", "1", NULL, 0);
  }

  loop = sr_loop_new(es, sizeof(es));
  if (!loop) {
    fprintf(stderr, "serve: %s\n", es);
    goto out;
  }

  sr_pipeline_conf_t pc;
  sr_pipeline_conf_defaults(&pc);
  pc.brokers = brokers;
  pc.group = sr_conf_str(conf, "group");
  pc.client_id = sr_conf_str(conf, "client.id");
  pc.events_topic = sr_conf_str(conf, "topic.events");
  pc.recs_topic = sr_conf_str(conf, "topic.recommendations");
  pc.dlq_topic = sr_conf_str(conf, "topic.dlq");
  pc.k = (int)sr_conf_int(conf, "k");
  pc.batch_max = (int)sr_conf_int(conf, "batch.max");
  pc.batch_wait_us = (int)sr_conf_int(conf, "batch.wait.us");
  if (sr_seen_parse_types(sr_conf_str(conf, "state.seen.types"), &pc.seen.types, es, sizeof(es)) !=
      SR_OK) {
    fprintf(stderr, "serve: %s\n", es);
    goto out;
  }
  pc.seen.window_ms = sr_conf_int(conf, "state.seen.window.ms");
  pc.seen.max = (uint32_t)sr_conf_int(conf, "state.seen.max");
  pc.coalesce = (int)sr_conf_int(conf, "batch.coalesce");
  pc.event_schema_id = (int32_t)sr_conf_int(conf, "schema.id.event");
  pc.rec_schema_id = (int32_t)sr_conf_int(conf, "schema.id.recommendation");
  pc.commit_interval_ms = (int)sr_conf_int(conf, "commit.interval.ms");
  pc.max_inflight_batches = (int)sr_conf_int(conf, "inflight.batches.max");
  pc.idle_exit_ms = (int)sr_conf_int(conf, "idle.exit.ms");
  pc.max_events = sr_conf_int(conf, "max.events");
  pc.id_max_bytes = (int)sr_conf_int(conf, "event.id.max.bytes");
  pc.future_max_ms = sr_conf_int(conf, "event.time.future.max.ms");
  pc.key_check = (int)sr_conf_int(conf, "event.key.check");
  pc.users_max = sr_conf_int(conf, "state.partition.users.max");
  pc.shutdown_timeout_ms = (int)sr_conf_int(conf, "shutdown.timeout.ms");
  pc.kafka = sr_conf_kafka(conf, SR_CONF_KAFKA_BOTH, &pc.n_kafka);
  pc.kafka_consumer = sr_conf_kafka(conf, SR_CONF_KAFKA_CONSUMER, &pc.n_kafka_consumer);
  pc.kafka_producer = sr_conf_kafka(conf, SR_CONF_KAFKA_PRODUCER, &pc.n_kafka_producer);

  if (sr_log_get_level() >= SR_LOG_INFO) {
    fprintf(stderr, "serve: effective configuration:\n");
    sr_conf_dump(conf, stderr);
  }
  ctx.brokers = brokers;
  ctx.group = pc.group;
  ctx.pipe = sr_pipeline_new(&pc, model, es, sizeof(es));
  if (!ctx.pipe) {
    fprintf(stderr, "serve: %s\n", es);
    goto out;
  }
  model = NULL; /* owned by the pipeline */
  ctx.loop = loop;
  int port = (int)sr_conf_int(conf, "admin.port");
  sr_admin_limits_t admin_limits = {
      .max_connections = (int)sr_conf_int(conf, "admin.max.connections"),
      .request_timeout_ms = (int)sr_conf_int(conf, "admin.request.timeout.ms")};
  if (sr_loop_admin_listen(loop, sr_conf_str(conf, "admin.addr"), port, &admin_limits,
                           sr_serve_render, &ctx, es, sizeof(es)) != SR_OK) {
    fprintf(stderr, "serve: %s\n", es);
    goto out;
  }
  if (port != 0)
    sr_log_info("serve", "admin HTTP on http://%s:%d/metrics", sr_conf_str(conf, "admin.addr"),
                sr_loop_admin_port(loop));

  pthread_t th;
  if (pthread_create(&th, NULL, sr_serve_thread, &ctx) != 0) {
    fprintf(stderr, "serve: cannot start the pipeline thread\n");
    goto out;
  }
  int64_t t0 = sr_mono_us();
  int sig = sr_loop_wait(loop);
  if (sig > 0) {
    sr_log_info("serve",
                "signal %d: finishing in-flight work (up to shutdown.timeout.ms %lld), committing, "
                "leaving the group; a second signal stops at once",
                sig, (long long)sr_conf_int(conf, "shutdown.timeout.ms"));
    sr_pipeline_stop(ctx.pipe);
    while (!ctx.done) {
      sig = sr_loop_wait(loop);
      if (sig > 0 && !ctx.done) {
        sr_log_warn("serve",
                    "signal %d again: stopping without waiting for deliveries or "
                    "committing (uncommitted events are processed again)",
                    sig);
        sr_pipeline_abort(ctx.pipe);
        /* The pipeline thread may sit in a blocking client call (a commit
         * or a leave against an unreachable coordinator): give it 5 s. */
        for (int i = 0; i < 50 && !ctx.done; i++)
          usleep(100 * 1000);
        if (!ctx.done) {
          fprintf(stderr, "serve: pipeline did not stop within 5 s of the second signal: "
                          "exiting; nothing uncommitted was lost (it is processed again)\n");
          fflush(NULL);
          _exit(130);
        }
      }
    }
  }
  pthread_join(th, NULL);
  double secs = (double)(sr_mono_us() - t0) / 1e6;
  sr_pipeline_stats_t st;
  sr_pipeline_stats(ctx.pipe, &st);
  printf("serve: consumed=%llu recommendations=%llu delivered=%llu dead_letter=%llu "
         "unknown_items=%llu coalesced=%llu users_peak=%llu commits=%llu elapsed=%.2fs "
         "rate=%.0f events/s\n",
         (unsigned long long)st.consumed, (unsigned long long)st.recs_sent,
         (unsigned long long)st.recs_delivered, (unsigned long long)st.dlq,
         (unsigned long long)st.unknown_items, (unsigned long long)st.coalesced,
         (unsigned long long)st.users_peak, (unsigned long long)st.commits, secs,
         secs > 0 ? (double)st.consumed / secs : 0.0);
  fflush(stdout);
  if (ctx.result != SR_OK) {
    fprintf(stderr, "serve: stopped with error: %s\n", ctx.errstr);
    goto out;
  }
  rc = 0;
out:
  sr_pipeline_destroy(ctx.pipe);
  sr_model_destroy(model);
  sr_loop_destroy(loop);
  sr_broker_destroy(broker);
  sr_conf_destroy(conf);
  return rc;
}

int sr_cmd_config(int argc, char **argv) {
  if (argc > 1 && !strcmp(argv[1], "--markdown")) {
    printf("# Configuration reference\n\n"
           "Generated by `streamrec config --markdown` from the option table in\n"
           "`src/cli/cmd_serve.c`; do not edit by hand. Every key can be set in a config\n"
           "file (`--config FILE`, lines of `key = value`), with `-X key=value`, or with\n"
           "the flag shown. Keys starting with `kafka.` are passed verbatim (without the\n"
           "prefix) to both Kafka clients (librdkafka properties); `kafka.consumer.X` and\n"
           "`kafka.producer.X` go to that client only. Unknown keys and\n"
           "out-of-range values stop the worker at startup with `file:line: reason`.\n\n"
           "Kafka client defaults chosen for latency first (override with `kafka.*`):\n\n"
           "| client | property | value | why |\n|---|---|---|---|\n"
           "| consumer | `enable.auto.commit` | `false` | offsets are committed by the pipeline "
           "after delivery |\n"
           "| consumer | `enable.auto.offset.store` | `false` | same |\n"
           "| consumer | `auto.offset.reset` | `earliest` | a new group reads the whole topic |\n"
           "| consumer | `fetch.wait.max.ms` | `10` (`1` with the embedded broker) | a fetch "
           "returns quickly when the topic is quiet; the embedded (mock) broker holds empty "
           "fetches for the whole wait |\n"
           "| producer | `enable.idempotence` | `true` | no duplicates or reordering on retries |\n"
           "| producer | `acks` | `all` | a recommendation counts as delivered only when "
           "replicated |\n"
           "| producer | `linger.ms` | `1` | batches form within a millisecond |\n\n");
    sr_conf_markdown(sr_serve_opts, sr_serve_n_opts, "streamrec serve", stdout);
    return 0;
  }
  sr_conf_t *c = sr_conf_new(sr_serve_opts, sr_serve_n_opts);
  sr_conf_dump(c, stdout);
  sr_conf_destroy(c);
  return 0;
}
