/*
 * `streamrec load`: replays an event CSV (MovieLens ratings.csv as is, or
 * `streamrec gen` output) into Kafka as Confluent-framed Avro UserEvents,
 * keyed by user id so each user's events stay in order on one partition.
 *
 * It waits for every delivery report before it prints its summary, so
 * "sent=N" means N events are in the log (the producer is idempotent: no
 * duplicates from retries). --rate paces with a token bucket whose waits are
 * spent serving delivery reports inside the client's poll, never spinning.
 *
 * Every wait on the brokers is bounded by --connect-timeout-ms: before
 * reading the CSV, one metadata request (brokers reachable, topic there)
 * must answer within it, or load exits SR_CLI_EXIT_UNREACHABLE at once
 * instead of queueing everything and failing it message.timeout.ms (5 min)
 * later. Afterwards, the same span with messages outstanding and not a
 * single delivery report (while reading, on a full queue or in the final
 * flush) means the brokers are gone: load stops reading, and what is still
 * queued is purged and counted as failed.
 *
 * Thread: single-threaded; the producer's callbacks run inside our polls.
 */
#include <errno.h>
#include <getopt.h>
#include <libgen.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "streamrec/common.h"
#include "streamrec/dataset.h"
#include "streamrec/codec.h"
#include "streamrec/conf.h"
#include "streamrec/event.h"
#include "streamrec/kafka.h"

#define LOAD_MAX_BAD_REPORTS 20
#define LOAD_MAX_FAIL_REPORTS 5

typedef struct {
  int64_t ok, failed;
} load_dr_t;

static volatile sig_atomic_t load_stop = 0; /* signals received */
static void load_on_signal(int sig) { load_stop++; }

/* Progress detector for the waits on the brokers: returns 1 once messages
 * have been outstanding for stall_ms (0 = never) without a single delivery
 * report (ok or failed). *seen and *since_us hold the report count and the
 * time it last changed or the queue was last seen empty. Called between
 * polls, which are never more than about a second apart. */
static int load_stalled(sr_publish_t *pub, const load_dr_t *d, int64_t *seen, int64_t *since_us,
                        int stall_ms) {
  int64_t now = sr_mono_us(), n = d->ok + d->failed;
  if (n != *seen || sr_publish_outq_len(pub) == 0) {
    *seen = n;
    *since_us = now;
    return 0;
  }
  return stall_ms > 0 && now - *since_us >= (int64_t)stall_ms * 1000;
}

static void load_dr_cb(void *opaque, void *msg_opaque, sr_err_t err, const char *reason) {
  load_dr_t *d = opaque;
  if (err == SR_OK) {
    d->ok++;
    return;
  }
  if (d->failed++ < LOAD_MAX_FAIL_REPORTS)
    fprintf(stderr, "streamrec load: delivery failed: %s\n", reason ? reason : sr_err2str(err));
}

static void load_usage(FILE *f) {
  fprintf(f,
          "usage: streamrec load --brokers B --csv FILE [--topic events] [--rate N]\n"
          "                      [--limit N] [--event-schema-id N] [--connect-timeout-ms N]\n"
          "                      [-X key=value ...]\n"
          "\n"
          "Produces each CSV row (user,item,rating,timestamp[,type]; header optional;\n"
          "MovieLens ratings.csv works as is) as a Confluent-framed Avro UserEvent with\n"
          "key = user id, event_id = <csv basename>:<line>, type RATE unless given.\n"
          "Bad lines are reported with their line number and skipped. Waits for all\n"
          "delivery reports, then prints\n"
          "  sent=N failed=N bad_lines=N elapsed=S rate=R msgs/s\n"
          "Exit status 1 when any message failed; %d when the brokers gave no metadata\n"
          "for the topic within --connect-timeout-ms (unreachable, or no such topic):\n"
          "nothing is sent then.\n"
          "\n"
          "  --brokers B           bootstrap servers (host:port[,...])\n"
          "  --csv FILE            input CSV ('-' = stdin)\n"
          "  --topic T             topic (default events)\n"
          "  --rate N              events per second (default: as fast as possible)\n"
          "  --limit N             stop after N events\n"
          "  --event-schema-id N   schema id in the framing (default %d)\n"
          "  --connect-timeout-ms N\n"
          "                        bound on the first metadata request, and the longest\n"
          "                        wait without any delivery report before the rest is\n"
          "                        given up as failed (default %d). 0 = no check and no\n"
          "                        bound but the producer's message.timeout.ms; use 0\n"
          "                        when the cluster needs -X settings, which the check\n"
          "                        does not use\n"
          "  -X key=value          librdkafka producer property (repeatable)\n"
          "  -h, --help            this help\n",
          SR_CLI_EXIT_UNREACHABLE, SR_DEFAULT_EVENT_SCHEMA_ID, SR_CLI_CONNECT_TIMEOUT_MS);
}

static int load_parse_num(const char *opt, const char *s, double min, double max, double *out) {
  char *end;
  errno = 0;
  double v = strtod(s, &end);
  if (errno || end == s || *end || !(v >= min && v <= max)) {
    fprintf(stderr, "streamrec load: %s: expected a number in [%g, %g], got '%s'\n", opt, min, max,
            s);
    return -1;
  }
  *out = v;
  return 0;
}

/* A failing first line with at least four columns is a header
 * ("userId,movieId,rating,timestamp"), not a bad line. */
static int load_is_header(const char *line, size_t len, int64_t lineno) {
  int commas = 0;
  if (lineno != 1) return 0;
  for (size_t i = 0; i < len; i++)
    commas += line[i] == ',';
  return commas >= 3;
}

int sr_cmd_load(int argc, char **argv) {
  static const struct option opts[] = {{"brokers", required_argument, NULL, 'b'},
                                       {"topic", required_argument, NULL, 't'},
                                       {"csv", required_argument, NULL, 'c'},
                                       {"rate", required_argument, NULL, 'r'},
                                       {"limit", required_argument, NULL, 'l'},
                                       {"event-schema-id", required_argument, NULL, 's'},
                                       {"connect-timeout-ms", required_argument, NULL, 'T'},
                                       {"help", no_argument, NULL, 'h'},
                                       {NULL, 0, NULL, 0}};
  const char *brokers = NULL, *topic = "events", *csv = NULL;
  double rate = 0, limit_d = 0, schema_d = SR_DEFAULT_EVENT_SCHEMA_ID;
  double connect_d = SR_CLI_CONNECT_TIMEOUT_MS;
  int64_t limit = -1;
  sr_kv_list_t xs = {0};
  int c, rc = 1;
  char err[512];

  optind = 0;
  while ((c = getopt_long(argc, argv, "hX:", opts, NULL)) != -1) {
    switch (c) {
    case 'b': brokers = optarg; break;
    case 't': topic = optarg; break;
    case 'c': csv = optarg; break;
    case 'r':
      if (load_parse_num("--rate", optarg, 1e-3, 1e9, &rate)) goto usage_err;
      break;
    case 'l':
      if (load_parse_num("--limit", optarg, 0, 9e18, &limit_d) || limit_d != floor(limit_d)) {
        fprintf(stderr, "streamrec load: --limit: expected a whole number\n");
        goto usage_err;
      }
      limit = (int64_t)limit_d;
      break;
    case 's':
      if (load_parse_num("--event-schema-id", optarg, 0, 2147483647.0, &schema_d) ||
          schema_d != floor(schema_d)) {
        fprintf(stderr, "streamrec load: --event-schema-id: expected a whole number\n");
        goto usage_err;
      }
      break;
    case 'T':
      if (load_parse_num("--connect-timeout-ms", optarg, 0, 3600000, &connect_d) ||
          connect_d != floor(connect_d)) {
        fprintf(stderr, "streamrec load: --connect-timeout-ms: expected a whole number\n");
        goto usage_err;
      }
      break;
    case 'X':
      if (sr_kv_list_add_arg(&xs, optarg, err, sizeof(err)) != SR_OK) {
        fprintf(stderr, "streamrec load: %s\n", err);
        goto usage_err;
      }
      break;
    case 'h':
      load_usage(stdout);
      rc = 0;
      goto out_args;
    default: goto usage_err;
    }
  }
  if (optind < argc) {
    fprintf(stderr, "streamrec load: unexpected argument '%s'\n", argv[optind]);
    goto usage_err;
  }
  if (!brokers || !csv) {
    fprintf(stderr, "streamrec load: --brokers and --csv are required\n");
    goto usage_err;
  }
  /* a bad -X is a usage error, found before anything is read or sent */
  if (sr_kafka_kv_check(SR_KAFKA_PRODUCER, xs.kv, xs.n, err, sizeof(err)) != SR_OK) {
    fprintf(stderr, "streamrec load: -X %s\n", err);
    goto usage_err;
  }

  /* ---- run ---- */
  const int connect_ms = (int)connect_d;
  FILE *f = strcmp(csv, "-") == 0 ? stdin : fopen(csv, "r");
  if (!f) {
    fprintf(stderr, "streamrec load: %s: %s\n", csv, strerror(errno));
    goto out_args;
  }
  /* A producer queues into the void when no broker answers and fails each
   * message only after message.timeout.ms: ask first, with a bound. */
  if (connect_ms > 0) {
    int n_parts =
        sr_kafka_partition_count(brokers, topic, xs.kv, xs.n, connect_ms, err, sizeof(err));
    if (n_parts <= 0) {
      fprintf(stderr,
              "streamrec load: cannot reach Kafka at %s within %d ms, or topic %s is not "
              "there (%s); check --brokers and --topic\n",
              brokers, connect_ms, topic, n_parts == 0 ? "topic has no partitions" : err);
      if (f != stdin) fclose(f);
      rc = SR_CLI_EXIT_UNREACHABLE;
      goto out_args;
    }
  }
  sr_codec_t *codec = sr_codec_new((int32_t)schema_d, SR_DEFAULT_REC_SCHEMA_ID, err, sizeof(err));
  if (!codec) {
    fprintf(stderr, "streamrec load: codec: %s\n", err);
    if (f != stdin) fclose(f);
    goto out_args;
  }
  load_dr_t dr = {0};
  sr_publish_conf_t pc = {.brokers = brokers,
                          .client_id = "streamrec-load",
                          .kafka = xs.kv,
                          .n_kafka = xs.n,
                          .delivery_cb = load_dr_cb,
                          .opaque = &dr};
  sr_publish_t *pub = sr_publish_new(&pc, err, sizeof(err));
  if (!pub) {
    fprintf(stderr, "streamrec load: %s\n", err);
    sr_codec_destroy(codec);
    if (f != stdin) fclose(f);
    goto out_args;
  }

  struct sigaction sa, old_int, old_term;
  memset(&sa, 0, sizeof(sa));
  sa.sa_handler = load_on_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, &old_int);
  sigaction(SIGTERM, &sa, &old_term);
  load_stop = 0;

  char *pathcopy = sr_strdup(strcmp(csv, "-") == 0 ? "stdin" : csv);
  const char *base = basename(pathcopy);
  char event_id[512];
  char *line = NULL;
  size_t cap = 0;
  ssize_t len;
  int64_t lineno = 0, bad = 0, queued = 0, send_failed = 0;
  int stalled = 0; /* gave up: no delivery report for connect_ms */
  int64_t seen = 0, since = sr_mono_us();
  sr_buf_t buf;
  sr_buf_init(&buf);
  /* token bucket: up to 20 ms worth of burst, refilled continuously */
  double tokens = 1.0, burst = rate > 0 ? SR_MAX(1.0, rate / 50.0) : 0;
  int64_t t_last = sr_mono_us(), t_start = t_last;

  while (!load_stop && !stalled && (limit < 0 || queued < limit) &&
         (len = getline(&line, &cap, f)) >= 0) {
    lineno++;
    if (len > 0 && line[len - 1] == '\n') len--;
    sr_csv_row_t row;
    sr_err_t e = sr_csv_parse(line, (size_t)len, &row, err, sizeof(err));
    if (e == SR_ERR_NOT_FOUND) continue; /* empty line */
    if (e != SR_OK) {
      if (load_is_header(line, (size_t)len, lineno)) continue;
      if (bad++ < LOAD_MAX_BAD_REPORTS)
        fprintf(stderr, "streamrec load: %s:%lld: %s\n", csv, (long long)lineno, err);
      continue;
    }

    if (rate > 0) {
      for (;;) {
        int64_t now = sr_mono_us();
        tokens = SR_MIN(burst, tokens + (double)(now - t_last) * rate / 1e6);
        t_last = now;
        if (tokens >= 1.0) break;
        double wait_ms = ceil((1.0 - tokens) / rate * 1e3);
        sr_publish_poll(pub, (int)SR_MAX(1.0, SR_MIN(wait_ms, 1000.0)));
        if (load_stop) break;
      }
      if (load_stop) break;
      tokens -= 1.0;
    }

    int idlen = snprintf(event_id, sizeof(event_id), "%s:%lld", base, (long long)lineno);
    sr_event_t ev = {.event_id =
                         sr_str_make(event_id, (size_t)SR_MIN(idlen, (int)sizeof(event_id) - 1)),
                     .user_id = row.user,
                     .item_id = row.item,
                     .type = row.type < 0 ? SR_EV_RATE : (sr_event_type_t)row.type,
                     .value = row.value,
                     .ts_ms = row.ts_ms,
                     .scenario = SR_STR("default")};
    sr_buf_reset(&buf);
    e = sr_codec_encode_event(codec, &ev, &buf);
    if (e != SR_OK) {
      if (bad++ < LOAD_MAX_BAD_REPORTS)
        fprintf(stderr, "streamrec load: %s:%lld: cannot encode: %s\n", csv, (long long)lineno,
                sr_err2str(e));
      continue;
    }
    for (;;) {
      e = sr_publish_send(pub, topic, -1, row.user.ptr, row.user.len, buf.data, buf.len, NULL, 0,
                          NULL, err, sizeof(err));
      if (e != SR_ERR_QUEUE_FULL) break;
      sr_publish_poll(pub, 10); /* local queue full: let deliveries drain it */
      if (load_stop) break;
      if (load_stalled(pub, &dr, &seen, &since, connect_ms)) {
        stalled = 1;
        fprintf(stderr,
                "streamrec load: %s:%lld: queue full and no delivery report from %s for %d ms; "
                "giving up\n",
                csv, (long long)lineno, brokers, connect_ms);
        break;
      }
    }
    if (e == SR_ERR_QUEUE_FULL) break; /* interrupted or stalled: this row is not sent */
    if (e != SR_OK) {
      if (send_failed++ < LOAD_MAX_FAIL_REPORTS)
        fprintf(stderr, "streamrec load: %s:%lld: %s\n", csv, (long long)lineno, err);
      continue;
    }
    if ((++queued & 1023) == 0) sr_publish_poll(pub, 0);
    if (load_stalled(pub, &dr, &seen, &since, connect_ms)) { /* brokers gone mid-load */
      stalled = 1;
      fprintf(stderr, "streamrec load: %s:%lld: no delivery report from %s for %d ms; giving up\n",
              csv, (long long)lineno, brokers, connect_ms);
    }
  }
  if (ferror(f)) fprintf(stderr, "streamrec load: read %s: %s\n", csv, strerror(errno));
  if (bad > LOAD_MAX_BAD_REPORTS)
    fprintf(stderr, "streamrec load: %lld bad lines in all (first %d shown)\n", (long long)bad,
            LOAD_MAX_BAD_REPORTS);
  if (load_stop) fprintf(stderr, "streamrec load: interrupted, waiting for deliveries\n");

  /* Every queued message ends in a report: delivered, or failed once
   * message.timeout.ms expires. A signal during this wait, or connect_ms
   * without any report (brokers gone), gives up on the rest: purged, and
   * counted as failed when the purge reports are served. */
  int sigs_before = load_stop;
  while (sr_publish_outq_len(pub) > 0 && load_stop == sigs_before && !stalled) {
    sr_publish_flush(pub, 200);
    if (load_stalled(pub, &dr, &seen, &since, connect_ms)) {
      fprintf(stderr, "streamrec load: no delivery report from %s for %d ms; giving up\n", brokers,
              connect_ms);
      stalled = 1;
    }
  }
  int undelivered = sr_publish_outq_len(pub);
  if (undelivered > 0) {
    fprintf(stderr, "streamrec load: %d message(s) undelivered, counted as failed\n", undelivered);
    sr_publish_purge(pub);
    sr_publish_flush(pub, 1000); /* serves the purge reports */
  }
  double elapsed = (double)(sr_mono_us() - t_start) / 1e6;
  sr_publish_destroy(pub); /* purges what might be left: reported as failed */
  int64_t failed = dr.failed + send_failed;
  printf("sent=%lld failed=%lld bad_lines=%lld elapsed=%.2fs rate=%.0f msgs/s\n", (long long)dr.ok,
         (long long)failed, (long long)bad, elapsed, elapsed > 0 ? (double)dr.ok / elapsed : 0.0);
  fflush(stdout);
  rc = failed > 0 || load_stop || stalled ? 1 : 0;

  sigaction(SIGINT, &old_int, NULL);
  sigaction(SIGTERM, &old_term, NULL);
  sr_buf_free(&buf);
  free(line);
  sr_free(pathcopy);
  sr_codec_destroy(codec);
  if (f != stdin) fclose(f);
  goto out_args;

usage_err:
  load_usage(stderr);
  rc = 2;
out_args:
  sr_kv_list_free(&xs);
  return rc;
}
