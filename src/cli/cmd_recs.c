/*
 * `streamrec recs`: reads Recommendations back from Kafka and prints them,
 * one per line: JSON (--json, for scripts and tests) or a short readable
 * form. A debugging and demo tool, so it reads through the topic reader of
 * src/kafka (every partition assigned, no consumer group, nothing
 * committed) and never disturbs the pipeline's groups.
 *
 * --exit-at-end stops at the end offsets found at start: "everything that
 * was in the topic when we got there". Undecodable messages are printed as
 * {"_error": ..., "_kafka": ...} lines and counted, not fatal: this tool is
 * how one finds them.
 *
 * The reader's first metadata request is bounded by --connect-timeout-ms;
 * when it fails (brokers unreachable, or no such topic) recs exits
 * SR_CLI_EXIT_UNREACHABLE before reading. With --exit-at-end the same span
 * without a message or an end of partition (the brokers went away on the
 * way to the end) ends the read with exit 1.
 *
 * Thread: single-threaded.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "cli/cli.h"
#include "streamrec/common.h"
#include "streamrec/codec.h"
#include "streamrec/conf.h"
#include "streamrec/event.h"
#include "streamrec/kafka.h"

static volatile sig_atomic_t recs_stop = 0;
static void recs_on_signal(int sig) { recs_stop = 1; }

static void recs_usage(FILE *f) {
  fprintf(f,
          "usage: streamrec recs --brokers B [--topic recommendations] [--from-beginning]\n"
          "                      [--exit-at-end] [--limit N] [--json] [--connect-timeout-ms N]\n"
          "                      [-X key=value ...]\n"
          "\n"
          "Reads Recommendations (Confluent-framed Avro) from every partition of the topic\n"
          "(no consumer group, nothing committed) and prints one per line. With --json,\n"
          "each line is an object with all fields plus \"_kafka\": {partition, offset,\n"
          "timestamp}; undecodable messages become {\"_error\": ..., \"_kafka\": ...}.\n"
          "A summary goes to stderr at exit. Exit status %d when the brokers gave no\n"
          "metadata for the topic within --connect-timeout-ms (unreachable, or no such\n"
          "topic), 1 on other failures.\n"
          "\n"
          "  --brokers B         bootstrap servers (host:port[,...])\n"
          "  --topic T           topic (default recommendations)\n"
          "  --from-beginning    start at the earliest offset (default: only new messages)\n"
          "  --exit-at-end       exit at the end offsets found at start\n"
          "  --limit N           exit after N messages\n"
          "  --json              JSON lines (default: readable lines)\n"
          "  --rec-schema-id N   expected schema id (default %d)\n"
          "  --connect-timeout-ms N\n"
          "                      bound on the first metadata request (default %d; of\n"
          "                      -X it uses the connection settings: security.*, sasl.*,\n"
          "                      ssl.*, socket.*, broker.*); with --exit-at-end\n"
          "                      also the longest wait for a message or the end of a\n"
          "                      partition before giving up (exit 1)\n"
          "  -X key=value        librdkafka consumer property (repeatable)\n"
          "  -h, --help          this help\n",
          SR_CLI_EXIT_UNREACHABLE, SR_DEFAULT_REC_SCHEMA_ID, SR_CLI_CONNECT_TIMEOUT_MS);
}

static int recs_parse_i64(const char *opt, const char *s, int64_t min, int64_t max, int64_t *out) {
  char *end;
  errno = 0;
  long long v = strtoll(s, &end, 10);
  if (errno || end == s || *end || v < min || v > max) {
    fprintf(stderr, "streamrec recs: %s: expected an integer in [%lld, %lld], got '%s'\n", opt,
            (long long)min, (long long)max, s);
    return -1;
  }
  *out = v;
  return 0;
}

static json_t *recs_kafka_meta(const sr_msg_t *m) {
  return json_pack("{s:i, s:I, s:o}", "partition", (int)m->partition, "offset",
                   (json_int_t)m->offset, "timestamp",
                   m->timestamp_ms < 0 ? json_null() : json_integer((json_int_t)m->timestamp_ms));
}

static void recs_print_error_json(const sr_msg_t *m, const char *what) {
  json_t *o = json_pack("{s:s, s:o}", "_error", what, "_kafka", recs_kafka_meta(m));
  if (!o) { /* only if `what` were not UTF-8: it is ours, so this is a bug */
    printf("{\"_error\": \"unprintable error\"}\n");
    return;
  }
  json_dumpf(o, stdout, JSON_COMPACT | JSON_REAL_PRECISION(9));
  fputc('\n', stdout);
  json_decref(o);
}

/* Returns 0, or -1 when a string field is not valid UTF-8. */
static int recs_print_json(const sr_rec_t *r, const sr_msg_t *m) {
  json_t *items = json_array();
  for (int i = 0; i < r->n_items; i++) {
    const sr_rec_item_t *it = &r->items[i];
    json_t *o = json_pack("{s:s%, s:f, s:f, s:b}", "item_id", it->item_id.ptr, it->item_id.len,
                          "score", (double)it->score, "propensity", (double)it->propensity,
                          "explore", it->explore ? 1 : 0);
    if (!o) {
      json_decref(items);
      return -1;
    }
    json_array_append_new(items, o);
  }
  /* "s:o" steals the reference to items and to the _kafka object, also
   * when packing fails, so there is nothing to release on that path */
  json_t *o = json_pack(
      "{s:s%, s:s%, s:o, s:s%, s:s%, s:i, s:I, s:I, s:I, s:o}", "user_id", r->user_id.ptr,
      r->user_id.len, "scenario", r->scenario.ptr, r->scenario.len, "items", items, "model_version",
      r->model_version.ptr, r->model_version.len, "source_event_id", r->source_event_id.ptr,
      r->source_event_id.len, "source_partition", (int)r->source_partition, "source_offset",
      (json_int_t)r->source_offset, "event_time", (json_int_t)r->event_time, "produced_at",
      (json_int_t)r->produced_at, "_kafka", recs_kafka_meta(m));
  if (!o) return -1;
  json_dumpf(o, stdout, JSON_COMPACT | JSON_REAL_PRECISION(9));
  fputc('\n', stdout);
  json_decref(o);
  return 0;
}

static void recs_print_text(const sr_rec_t *r, const sr_msg_t *m) {
  printf("[%" PRId32 "@%" PRId64 "] user=%.*s scenario=%.*s model=%.*s src=%.*s(%" PRId32
         "@%" PRId64 ") items:",
         m->partition, m->offset, (int)r->user_id.len, r->user_id.ptr, (int)r->scenario.len,
         r->scenario.ptr, (int)r->model_version.len, r->model_version.ptr,
         (int)r->source_event_id.len, r->source_event_id.ptr, r->source_partition,
         r->source_offset);
  for (int i = 0; i < r->n_items; i++)
    printf(" %.*s:%.3f%s", (int)r->items[i].item_id.len, r->items[i].item_id.ptr, r->items[i].score,
           r->items[i].explore ? "*" : "");
  printf(" (%lld ms after event)\n", (long long)(r->produced_at - r->event_time));
}

int sr_cmd_recs(int argc, char **argv) {
  static const struct option opts[] = {{"brokers", required_argument, NULL, 'b'},
                                       {"topic", required_argument, NULL, 't'},
                                       {"from-beginning", no_argument, NULL, 'B'},
                                       {"exit-at-end", no_argument, NULL, 'e'},
                                       {"limit", required_argument, NULL, 'l'},
                                       {"json", no_argument, NULL, 'j'},
                                       {"rec-schema-id", required_argument, NULL, 's'},
                                       {"connect-timeout-ms", required_argument, NULL, 'T'},
                                       {"help", no_argument, NULL, 'h'},
                                       {NULL, 0, NULL, 0}};
  const char *brokers = NULL, *topic = "recommendations";
  int from_beginning = 0, exit_at_end = 0, as_json = 0, c, rc = 1;
  int64_t limit = -1, schema_id = SR_DEFAULT_REC_SCHEMA_ID;
  int64_t connect_ms = SR_CLI_CONNECT_TIMEOUT_MS;
  sr_kv_list_t xs = {0};
  char err[512];
  sr_codec_t *codec = NULL;
  sr_kafka_reader_t *reader = NULL;
  int n_parts = 0;

  optind = 0;
  while ((c = getopt_long(argc, argv, "hX:", opts, NULL)) != -1) {
    switch (c) {
    case 'b': brokers = optarg; break;
    case 't': topic = optarg; break;
    case 'B': from_beginning = 1; break;
    case 'e': exit_at_end = 1; break;
    case 'j': as_json = 1; break;
    case 'l':
      if (recs_parse_i64("--limit", optarg, 0, INT64_MAX, &limit)) goto usage_err;
      break;
    case 's':
      if (recs_parse_i64("--rec-schema-id", optarg, 0, INT32_MAX, &schema_id)) goto usage_err;
      break;
    case 'T': /* needed for the partition count: no 0 = "skip" here */
      if (recs_parse_i64("--connect-timeout-ms", optarg, 1, 3600000, &connect_ms)) goto usage_err;
      break;
    case 'X':
      if (sr_kv_list_add_arg(&xs, optarg, err, sizeof(err)) != SR_OK) {
        fprintf(stderr, "streamrec recs: %s\n", err);
        goto usage_err;
      }
      break;
    case 'h':
      recs_usage(stdout);
      rc = 0;
      goto out;
    default: goto usage_err;
    }
  }
  if (optind < argc) {
    fprintf(stderr, "streamrec recs: unexpected argument '%s'\n", argv[optind]);
    goto usage_err;
  }
  if (!brokers) {
    fprintf(stderr, "streamrec recs: --brokers is required\n");
    goto usage_err;
  }

  /* a bad -X is a usage error, whatever the brokers say */
  if (sr_kafka_kv_check(SR_KAFKA_CONSUMER, xs.kv, xs.n, err, sizeof(err)) != SR_OK) {
    fprintf(stderr, "streamrec recs: -X %s\n", err);
    goto usage_err;
  }
  codec = sr_codec_new(SR_DEFAULT_EVENT_SCHEMA_ID, (int32_t)schema_id, err, sizeof(err));
  if (!codec) {
    fprintf(stderr, "streamrec recs: codec: %s\n", err);
    goto out;
  }
  sr_kafka_reader_conf_t rdc = {.brokers = brokers,
                                .topic = topic,
                                .client_id = "streamrec-recs",
                                .kafka = xs.kv,
                                .n_kafka = xs.n,
                                .from_beginning = from_beginning,
                                .to_end = exit_at_end,
                                .connect_timeout_ms = (int)connect_ms};
  sr_err_t re = sr_kafka_reader_new(&rdc, &reader, err, sizeof(err));
  if (re == SR_ERR_CONF) {
    fprintf(stderr, "streamrec recs: %s\n", err);
    goto usage_err;
  }
  if (re != SR_OK) {
    fprintf(stderr,
            "streamrec recs: cannot reach Kafka at %s within %d ms, or topic %s is not there "
            "(%s); check --brokers and --topic\n",
            brokers, (int)connect_ms, topic, err);
    rc = SR_CLI_EXIT_UNREACHABLE;
    goto out;
  }
  n_parts = sr_kafka_reader_partitions(reader);

  struct sigaction sa, old_int, old_term;
  memset(&sa, 0, sizeof(sa));
  sa.sa_handler = recs_on_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, &old_int);
  sigaction(SIGTERM, &sa, &old_term);
  recs_stop = 0;

  int64_t n_recs = 0, n_err = 0, n_client_err = 0, t0 = sr_mono_us();
  const char *why = "interrupted";
  rc = 0;
  while (!recs_stop) {
    if (limit >= 0 && n_recs + n_err >= limit) {
      why = "limit reached";
      break;
    }
    if (exit_at_end && sr_kafka_reader_at_end(reader)) {
      why = "end of all partitions";
      break;
    }
    if (exit_at_end && sr_kafka_reader_idle_ms(reader) >= connect_ms) {
      fprintf(stderr,
              "streamrec recs: no message and no end of partition from %s for %d ms "
              "(%d of %d partition(s) read to their end); giving up\n",
              brokers, (int)connect_ms, sr_kafka_reader_partitions_at_end(reader), n_parts);
      rc = 1;
      why = "brokers stopped answering";
      break;
    }
    sr_msg_t m;
    int got = sr_kafka_reader_next(reader, &m, 200, err, sizeof(err));
    if (got < 0) {
      fprintf(stderr, "streamrec recs: %s\n", err);
      rc = 1;
      why = "fatal client error";
      break;
    }
    if (got == 0) {
      fflush(stdout); /* idle: let a reader of a pipe see what we have */
      continue;
    }
    if (m.err != SR_OK) {
      if (n_client_err++ < 10) fprintf(stderr, "streamrec recs: %s\n", m.errstr);
      continue;
    }
    sr_rec_t rec;
    char derr[256];
    sr_err_t e = sr_codec_decode_rec(codec, m.value, m.len, &rec, derr, sizeof(derr));
    if (e != SR_OK) {
      char what[400];
      snprintf(what, sizeof(what), "%s: %s", sr_err2name(e), derr);
      n_err++;
      if (as_json)
        recs_print_error_json(&m, what);
      else
        printf("[%" PRId32 "@%" PRId64 "] undecodable: %s\n", m.partition, m.offset, what);
    } else if (as_json) {
      if (recs_print_json(&rec, &m) == 0) {
        n_recs++;
      } else {
        n_err++;
        recs_print_error_json(&m, "invalid UTF-8 in a string field");
      }
    } else {
      recs_print_text(&rec, &m);
      n_recs++;
    }
  }
  fflush(stdout);
  fprintf(stderr, "recs: %lld recommendations, %lld undecodable, %d partition(s), %.2fs (%s)\n",
          (long long)n_recs, (long long)n_err, n_parts, (double)(sr_mono_us() - t0) / 1e6, why);
  sigaction(SIGINT, &old_int, NULL);
  sigaction(SIGTERM, &old_term, NULL);
  goto out;

usage_err:
  recs_usage(stderr);
  rc = 2;
out:
  sr_kafka_reader_destroy(reader);
  sr_codec_destroy(codec);
  sr_kv_list_free(&xs);
  return rc;
}
