/*
 * `streamrec recs`: reads Recommendations back from Kafka and prints them,
 * one per line: JSON (--json, for scripts and tests) or a short readable
 * form. A debugging and demo tool, so it takes every partition of the topic
 * itself (rd_kafka_assign, no consumer group, nothing committed) and never
 * disturbs the pipeline's groups.
 *
 * --exit-at-end turns on partition EOF events and stops once every assigned
 * partition has reported EOF since its last message: "everything that was
 * in the topic when we got there". Undecodable messages are printed as
 * {"_error": ..., "_kafka": ...} lines and counted, not fatal: this tool is
 * how one finds them.
 *
 * The partition count comes from one metadata request bounded by
 * --connect-timeout-ms; when it fails (brokers unreachable, or no such
 * topic) recs exits SR_CLI_EXIT_UNREACHABLE before creating its consumer.
 * With --exit-at-end the same span without a message or an EOF event (the
 * brokers went away on the way to the end) ends the read with exit 1.
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
#include <librdkafka/rdkafka.h>

#include "cli/cli.h"
#include "streamrec/common.h"
#include "streamrec/codec.h"
#include "streamrec/event.h"
#include "streamrec/kafka.h"

#define RECS_MAX_X 64

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
          "  --exit-at-end       exit once every partition has been read to its end\n"
          "  --limit N           exit after N messages\n"
          "  --json              JSON lines (default: readable lines)\n"
          "  --rec-schema-id N   expected schema id (default %d)\n"
          "  --connect-timeout-ms N\n"
          "                      bound on the first metadata request (default %d; the\n"
          "                      request does not use -X settings); with --exit-at-end\n"
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

static json_t *recs_kafka_meta(const rd_kafka_message_t *rkm) {
  rd_kafka_timestamp_type_t tstype;
  int64_t ts = rd_kafka_message_timestamp(rkm, &tstype);
  return json_pack("{s:i, s:I, s:o}", "partition", (int)rkm->partition, "offset",
                   (json_int_t)rkm->offset, "timestamp",
                   tstype == RD_KAFKA_TIMESTAMP_NOT_AVAILABLE ? json_null()
                                                              : json_integer((json_int_t)ts));
}

static void recs_print_error_json(const rd_kafka_message_t *rkm, const char *what) {
  json_t *o = json_pack("{s:s, s:o}", "_error", what, "_kafka", recs_kafka_meta(rkm));
  if (!o) { /* only if `what` were not UTF-8: it is ours, so this is a bug */
    printf("{\"_error\": \"unprintable error\"}\n");
    return;
  }
  json_dumpf(o, stdout, JSON_COMPACT | JSON_REAL_PRECISION(9));
  fputc('\n', stdout);
  json_decref(o);
}

/* Returns 0, or -1 when a string field is not valid UTF-8. */
static int recs_print_json(const sr_rec_t *r, const rd_kafka_message_t *rkm) {
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
      (json_int_t)r->produced_at, "_kafka", recs_kafka_meta(rkm));
  if (!o) return -1;
  json_dumpf(o, stdout, JSON_COMPACT | JSON_REAL_PRECISION(9));
  fputc('\n', stdout);
  json_decref(o);
  return 0;
}

static void recs_print_text(const sr_rec_t *r, const rd_kafka_message_t *rkm) {
  printf("[%" PRId32 "@%" PRId64 "] user=%.*s scenario=%.*s model=%.*s src=%.*s(%" PRId32
         "@%" PRId64 ") items:",
         rkm->partition, rkm->offset, (int)r->user_id.len, r->user_id.ptr, (int)r->scenario.len,
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
  char *xbufs[RECS_MAX_X];
  int n_x = 0;
  char err[512];
  sr_codec_t *codec = NULL;
  rd_kafka_t *rk = NULL;
  uint8_t *at_eof = NULL;
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
      if (!strchr(optarg, '=') || optarg[0] == '=' || n_x == RECS_MAX_X) {
        fprintf(stderr, "streamrec recs: -X expects key=value (at most %d), got '%s'\n", RECS_MAX_X,
                optarg);
        goto usage_err;
      }
      xbufs[n_x++] = sr_strdup(optarg);
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

  n_parts = sr_kafka_partition_count(brokers, topic, NULL, 0, (int)connect_ms, err, sizeof(err));
  if (n_parts <= 0) {
    fprintf(stderr,
            "streamrec recs: cannot reach Kafka at %s within %d ms, or topic %s is not there "
            "(%s); check --brokers and --topic\n",
            brokers, (int)connect_ms, topic, n_parts == 0 ? "topic has no partitions" : err);
    rc = SR_CLI_EXIT_UNREACHABLE;
    goto out;
  }
  codec = sr_codec_new(SR_DEFAULT_EVENT_SCHEMA_ID, (int32_t)schema_id, err, sizeof(err));
  if (!codec) {
    fprintf(stderr, "streamrec recs: codec: %s\n", err);
    goto out;
  }

  /* librdkafka 2.0 refuses rd_kafka_assign() without a group.id (Local:
   * Unknown group), although a manual assignment never joins the group nor
   * talks to its coordinator; with auto commit off nothing is stored under
   * this throwaway id either. */
  char group[64];
  snprintf(group, sizeof(group), "streamrec-recs-%ld", (long)getpid());
  rd_kafka_conf_t *conf = rd_kafka_conf_new();
  const char *props[][2] = {
      {"bootstrap.servers", brokers},
      {"group.id", group},
      {"client.id", "streamrec-recs"},
      {"enable.auto.commit", "false"},
      {"enable.partition.eof", exit_at_end ? "true" : "false"},
      {"auto.offset.reset", "earliest"}, /* if our start offset is out of range */
      {"fetch.wait.max.ms", "10"},       /* show new recs as they come */
  };
  for (size_t i = 0; i < SR_ARRAY_SIZE(props); i++)
    if (rd_kafka_conf_set(conf, props[i][0], props[i][1], err, sizeof(err))) {
      fprintf(stderr, "streamrec recs: %s=%s: %s\n", props[i][0], props[i][1], err);
      rd_kafka_conf_destroy(conf);
      goto out;
    }
  for (int i = 0; i < n_x; i++) {
    char *eq = strchr(xbufs[i], '=');
    *eq = '\0';
    if (rd_kafka_conf_set(conf, xbufs[i], eq + 1, err, sizeof(err))) {
      fprintf(stderr, "streamrec recs: -X %s=%s: %s\n", xbufs[i], eq + 1, err);
      *eq = '=';
      rd_kafka_conf_destroy(conf);
      goto usage_err;
    }
    *eq = '=';
  }
  rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof(err));
  if (!rk) {
    fprintf(stderr, "streamrec recs: %s\n", err);
    rd_kafka_conf_destroy(conf);
    goto out;
  }
  rd_kafka_poll_set_consumer(rk);

  rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(n_parts);
  for (int p = 0; p < n_parts; p++)
    rd_kafka_topic_partition_list_add(parts, topic, p)->offset =
        from_beginning ? RD_KAFKA_OFFSET_BEGINNING : RD_KAFKA_OFFSET_END;
  rd_kafka_resp_err_t kerr = rd_kafka_assign(rk, parts);
  rd_kafka_topic_partition_list_destroy(parts);
  if (kerr) {
    fprintf(stderr, "streamrec recs: assign %s: %s\n", topic, rd_kafka_err2str(kerr));
    goto out;
  }

  struct sigaction sa, old_int, old_term;
  memset(&sa, 0, sizeof(sa));
  sa.sa_handler = recs_on_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, &old_int);
  sigaction(SIGTERM, &sa, &old_term);
  recs_stop = 0;

  at_eof = sr_calloc((size_t)n_parts, 1);
  int n_eof = 0;
  int64_t n_recs = 0, n_err = 0, n_client_err = 0, t0 = sr_mono_us();
  int64_t t_progress = t0; /* last message or EOF event */
  const char *why = "interrupted";
  rc = 0;
  while (!recs_stop) {
    if (limit >= 0 && n_recs + n_err >= limit) {
      why = "limit reached";
      break;
    }
    if (exit_at_end && sr_mono_us() - t_progress >= connect_ms * 1000) {
      fprintf(stderr,
              "streamrec recs: no message and no end of partition from %s for %d ms "
              "(%d of %d partition(s) read to their end); giving up\n",
              brokers, (int)connect_ms, n_eof, n_parts);
      rc = 1;
      why = "brokers stopped answering";
      break;
    }
    rd_kafka_message_t *rkm = rd_kafka_consumer_poll(rk, 200);
    if (rkm && (!rkm->err || rkm->err == RD_KAFKA_RESP_ERR__PARTITION_EOF))
      t_progress = sr_mono_us();
    if (!rkm) {
      fflush(stdout); /* idle: let a reader of a pipe see what we have */
      continue;
    }
    if (rkm->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
      if (rkm->partition >= 0 && rkm->partition < n_parts && !at_eof[rkm->partition]) {
        at_eof[rkm->partition] = 1;
        n_eof++;
      }
      rd_kafka_message_destroy(rkm);
      if (exit_at_end && n_eof == n_parts) {
        why = "end of all partitions";
        break;
      }
      continue;
    }
    if (rkm->err) {
      int fatal = rkm->err == RD_KAFKA_RESP_ERR__FATAL;
      if (n_client_err++ < 10 || fatal)
        fprintf(stderr, "streamrec recs: %s\n", rd_kafka_message_errstr(rkm));
      rd_kafka_message_destroy(rkm);
      if (fatal) {
        rc = 1;
        why = "fatal client error";
        break;
      }
      continue;
    }
    if (rkm->partition >= 0 && rkm->partition < n_parts && at_eof[rkm->partition]) {
      at_eof[rkm->partition] = 0; /* more data arrived after its EOF */
      n_eof--;
    }
    sr_rec_t rec;
    char derr[256];
    sr_err_t e = sr_codec_decode_rec(codec, rkm->payload, rkm->len, &rec, derr, sizeof(derr));
    if (e != SR_OK) {
      char what[400];
      snprintf(what, sizeof(what), "%s: %s", sr_err2name(e), derr);
      n_err++;
      if (as_json)
        recs_print_error_json(rkm, what);
      else
        printf("[%" PRId32 "@%" PRId64 "] undecodable: %s\n", rkm->partition, rkm->offset, what);
    } else if (as_json) {
      if (recs_print_json(&rec, rkm) == 0) {
        n_recs++;
      } else {
        n_err++;
        recs_print_error_json(rkm, "invalid UTF-8 in a string field");
      }
    } else {
      recs_print_text(&rec, rkm);
      n_recs++;
    }
    rd_kafka_message_destroy(rkm);
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
  if (rk) {
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
  }
  sr_codec_destroy(codec);
  sr_free(at_eof);
  for (int i = 0; i < n_x; i++)
    sr_free(xbufs[i]);
  return rc;
}
