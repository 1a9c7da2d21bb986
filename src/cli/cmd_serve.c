/*
 * `streamrec serve`: the online worker. Loads the snapshot, builds the
 * pipeline (library mode) and runs it on its own thread while the main
 * thread runs the libuv loop (signals, admin HTTP). Without --brokers it
 * starts the embedded broker in-process first, so the main job runs with no
 * setup.
 *
 * Options come from one typed table (serve's own rows in sr_serve_opts
 * plus the pipeline's, sr_pipeline_conf_table) that also generates --help
 * and docs/CONFIGURATION.md; flags, a config file and -X key=value all set
 * the same keys, later ones winning.
 */
#include <pthread.h>
#include <stdatomic.h>
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

/* serve's own rows; the pipeline's rows (topics, k, batching, input rules,
 * commit and shutdown timing, ...) are the pipeline module's
 * (sr_pipeline_conf_table), and sr_serve_table() joins the two. */
static const sr_conf_opt_t sr_serve_opts[] = {
    {"brokers", SR_CONF_STR, NULL, 0, 0,
     "Kafka bootstrap servers; unset = start the embedded broker in-process", "brokers"},
    {"snapshot", SR_CONF_STR, NULL, 0, 0, "model snapshot file written by `streamrec train`",
     "snapshot"},
    {"blas.threads", SR_CONF_INT, "1", 0, 256,
     "OpenBLAS threads for scoring (0 = OpenBLAS's default: OPENBLAS_NUM_THREADS or all "
     "cores); 1 leaves the other cores to Kafka's client and broker threads "
     "(docs/PERFORMANCE.md: 2 threads on 2 cores lost to 1 end to end)",
     "blas-threads"},
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
};
static const int sr_serve_n_opts = (int)SR_ARRAY_SIZE(sr_serve_opts);

/* serve's whole option table: its own rows, then the pipeline's. Returns a
 * new array of *n rows (free with sr_free); sr_conf_new borrows it, so free
 * it after sr_conf_destroy. */
static sr_conf_opt_t *sr_serve_table(int *n) {
  int np;
  const sr_conf_opt_t *pipe = sr_pipeline_conf_table(&np);
  sr_conf_opt_t *t = sr_malloc((size_t)(sr_serve_n_opts + np) * sizeof(*t));
  memcpy(t, sr_serve_opts, (size_t)sr_serve_n_opts * sizeof(*t));
  memcpy(t + sr_serve_n_opts, pipe, (size_t)np * sizeof(*t));
  *n = sr_serve_n_opts + np;
  return t;
}

typedef struct sr_serve_ctx_s {
  sr_pipeline_t *pipe;
  sr_loop_t *loop;
  sr_err_t result;
  char errstr[512];
  /* Set by the pipeline thread when sr_pipeline_run() returned (after it
   * wrote result and errstr, which the release store publishes), read by
   * the main thread (admin HTTP, signal handling). Atomic: a volatile int
   * read and written by two threads is a data race. */
  atomic_int done;
  int64_t started_ms;
  const char *brokers, *group; /* borrowed from the configuration */
} sr_serve_ctx_t;

static void *sr_serve_thread(void *arg) {
  sr_serve_ctx_t *ctx = arg;
  ctx->result = sr_pipeline_run(ctx->pipe, ctx->errstr, sizeof(ctx->errstr));
  atomic_store_explicit(&ctx->done, 1, memory_order_release);
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
  int np;
  const sr_conf_opt_t *pipe = sr_pipeline_conf_table(&np);
  sr_conf_usage(sr_serve_opts, sr_serve_n_opts, f);
  sr_conf_usage(pipe, np, f);
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
      sr_kv_list_t x = {0}; /* the one -X parser (common/sr_conf.c) */
      sr_err_t e = sr_kv_list_add_arg(&x, argv[++i], es, sizeof(es));
      if (e == SR_OK) e = sr_conf_set_from(conf, x.kv[0].key, x.kv[0].value, "-X", es, sizeof(es));
      sr_kv_list_free(&x);
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
  int n_opts;
  sr_conf_opt_t *opts = sr_serve_table(&n_opts);
  sr_conf_t *conf = sr_conf_new(opts, n_opts);
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
  /* kafka.* properties are librdkafka's to judge: ask it now, before the
   * snapshot is read, and name the config line (or -X) of a bad one */
  if (sr_kafka_conf_check(conf, es, sizeof(es)) != SR_OK) {
    fprintf(stderr, "serve: %s\n", es);
    rc = 2;
    goto out;
  }
  sr_pipeline_conf_t pc; /* every pipeline row and the kafka.* keys; borrowed from conf */
  /* the pipeline's values (delivery.guarantee, ...) are checked now too,
   * before the snapshot and the brokers: a bad one is a usage error */
  if (sr_pipeline_conf_from(&pc, conf, es, sizeof(es)) != SR_OK) {
    fprintf(stderr, "serve: %s\n", es);
    rc = 2;
    goto out;
  }
  pc.brokers = sr_conf_str(conf, "brokers") ? sr_conf_str(conf, "brokers") : "(embedded)";
  if (sr_pipeline_conf_check(&pc, es, sizeof(es)) != SR_OK) { /* sr_pipeline_new's own check */
    fprintf(stderr, "serve: %s\n", es);
    rc = 2;
    goto out;
  }
  if (pc.delivery == SR_DELIVERY_EXACTLY_ONCE && !sr_conf_str(conf, "brokers")) {
    fprintf(stderr,
            "serve: delivery.guarantee=exactly_once needs a real Kafka: the embedded broker "
            "(librdkafka's mock cluster) ignores isolation.level=read_committed and discards "
            "transactional offset commits, so exactly-once cannot be provided there; pass "
            "--brokers (a local Kafka: scripts/kafka.sh start)\n");
    rc = 2;
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

  /* again: the embedded broker's defaults above added kafka.* keys */
  if (sr_pipeline_conf_from(&pc, conf, es, sizeof(es)) != SR_OK) {
    fprintf(stderr, "serve: %s\n", es);
    goto out;
  }
  pc.brokers = brokers;

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
         "rate=%.0f events/s",
         (unsigned long long)st.consumed, (unsigned long long)st.recs_sent,
         (unsigned long long)st.recs_delivered, (unsigned long long)st.dlq,
         (unsigned long long)st.unknown_items, (unsigned long long)st.coalesced,
         (unsigned long long)st.users_peak, (unsigned long long)st.commits, secs,
         secs > 0 ? (double)st.consumed / secs : 0.0);
  if (pc.delivery == SR_DELIVERY_EXACTLY_ONCE) /* at_least_once's line stays as it was */
    printf(" transactions=%llu aborted=%llu", (unsigned long long)st.txn_committed,
           (unsigned long long)st.txn_aborted);
  printf("\n");
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
  sr_free(opts);
  return rc;
}

int sr_cmd_config(int argc, char **argv) {
  if (argc > 2 ||
      (argc == 2 && strcmp(argv[1], "--markdown") && strcmp(argv[1], "--metrics-markdown"))) {
    const int help = !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h");
    fprintf(help ? stdout : stderr,
            "usage: streamrec config [--markdown | --metrics-markdown]\n"
            "  (none)               the effective defaults of serve, one key=value per line\n"
            "  --markdown           the configuration reference (docs/CONFIGURATION.md)\n"
            "  --metrics-markdown   the metrics reference (docs/METRICS.md)\n");
    return help ? 0 : 2;
  }
  if (argc > 1 && !strcmp(argv[1], "--metrics-markdown")) {
    sr_buf_t b;
    sr_buf_init(&b);
    sr_metrics_markdown(&b);
    fwrite(b.data, 1, b.len, stdout);
    sr_buf_free(&b);
    return 0;
  }
  if (argc > 1 && !strcmp(argv[1], "--markdown")) {
    printf("# Configuration reference\n\n"
           "Generated by `streamrec config --markdown` from the option tables in\n"
           "`src/cli/cmd_serve.c` (serve's own rows) and `src/pipeline/pipeline_conf.c`\n"
           "(the pipeline's rows, which are also the defaults of `sr_pipeline_conf_t`);\n"
           "do not edit by hand. Every key can be set in a config\n"
           "file (`--config FILE`, lines of `key = value`), with `-X key=value`, or with\n"
           "the flag shown. Keys starting with `kafka.` are passed verbatim (without the\n"
           "prefix) to both Kafka clients (librdkafka properties); `kafka.consumer.X` and\n"
           "`kafka.producer.X` go to that client only. Unknown keys and\n"
           "out-of-range values stop the worker at startup with `file:line: reason`; so do\n"
           "`kafka.*` properties librdkafka refuses, before the snapshot is read.\n\n");
    sr_kafka_defaults_markdown(stdout); /* the one table the clients use (src/kafka) */
    int np;
    const sr_conf_opt_t *pipe = sr_pipeline_conf_table(&np);
    sr_conf_markdown(sr_serve_opts, sr_serve_n_opts, "streamrec serve", stdout);
    sr_conf_markdown(pipe, np, "streamrec serve: the pipeline", stdout);
    return 0;
  }
  int n_opts;
  sr_conf_opt_t *opts = sr_serve_table(&n_opts);
  sr_conf_t *c = sr_conf_new(opts, n_opts);
  sr_conf_dump(c, stdout);
  sr_conf_destroy(c);
  sr_free(opts);
  return 0;
}
