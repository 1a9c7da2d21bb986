/*
 * `streamrec topics`: creates the project's topics on a real cluster (the
 * embedded broker creates its own), for scripts/kafka.sh, docker-compose and
 * anyone setting up a cluster by hand. Re-runnable: a topic already there
 * with the partition count asked for is reported and left as it is.
 *
 * The names are the pipeline's defaults (topic.events, topic.recommendations,
 * topic.dlq of sr_pipeline_conf_defaults), so `serve` with no topic options
 * finds what this made; --prefix puts a string in front of each. The
 * settings of each topic are the one table below (sr_topics_table) plus one
 * rule (SR_TOPICS_MIN_ISR_FROM).
 *
 * Thread: single-threaded; each admin call blocks (src/kafka/kafka_admin.c).
 */
#include <errno.h>
#include <getopt.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "streamrec/common.h"
#include "streamrec/conf.h"
#include "streamrec/kafka.h"
#include "streamrec/pipeline.h"

#define TOPICS_DEFAULT_PARTITIONS 8
/* --replication's default: min(this, brokers in the cluster). */
#define TOPICS_REPLICATION_MAX_DEFAULT 3
/* Bound on the CreateTopics request and on the wait for leaders. */
#define TOPICS_CREATE_TIMEOUT_MS 60000

/* With this replication factor or more, min.insync.replicas is 2: with the
 * producer's acks=all (sr_kafka_defaults) an acknowledged output is then on
 * two brokers, and writes go on with one broker down. Below it the brokers'
 * default (1) stays: 2 of 2 would stop every write when one broker is down. */
#define SR_TOPICS_MIN_ISR_FROM 3
#define SR_TOPICS_MIN_ISR "2"

/* The project's topics: where the name comes from, and the settings. */
typedef struct {
  size_t name_field; /* offset of the const char * in sr_pipeline_conf_t */
  const char *option;
  const char *cleanup_policy;
} sr_topics_row_t;

static const sr_topics_row_t sr_topics_table[] = {
    /* history the trainer reads back (train --brokers): retention by time */
    {offsetof(sr_pipeline_conf_t, events_topic), "topic.events", "delete"},
    /* one message per event, not a latest-per-user table: retention by time */
    {offsetof(sr_pipeline_conf_t, recs_topic), "topic.recommendations", "delete"},
    /* evidence of bad input, kept whole until it expires */
    {offsetof(sr_pipeline_conf_t, dlq_topic), "topic.dlq", "delete"},
};
#define SR_TOPICS_N ((int)SR_ARRAY_SIZE(sr_topics_table))

static void topics_usage(FILE *f) {
  fprintf(f,
          "usage: streamrec topics --brokers B [--partitions N] [--replication R]\n"
          "                        [--prefix P] [--connect-timeout-ms N] [-X key=value ...]\n"
          "\n"
          "Creates the topics the worker uses (the defaults of topic.events,\n"
          "topic.recommendations and topic.dlq, each with --prefix in front) on a Kafka\n"
          "cluster, with cleanup.policy=delete, and min.insync.replicas=%s when the\n"
          "replication factor is %d or more. Prints one line per topic: created, or\n"
          "already there (with the partition count asked for: left as it is). A topic\n"
          "that exists with another partition count is an error (exit 1).\n"
          "Exit status %d when the brokers do not answer within --connect-timeout-ms.\n"
          "\n"
          "  --brokers B            bootstrap servers (host:port[,...])\n"
          "  --partitions N         partitions per topic (default %d)\n"
          "  --replication R        replication factor (default: min(%d, brokers in the\n"
          "                         cluster))\n"
          "  --prefix P             put P in front of each topic name (default none)\n"
          "  --connect-timeout-ms N bound on the first metadata request (default %d);\n"
          "                         creation waits up to %d ms more\n"
          "  -X key=value           librdkafka property of the admin client (security,\n"
          "                         SASL, ...; repeatable)\n"
          "  -h, --help             this help\n",
          SR_TOPICS_MIN_ISR, SR_TOPICS_MIN_ISR_FROM, SR_CLI_EXIT_UNREACHABLE,
          TOPICS_DEFAULT_PARTITIONS, TOPICS_REPLICATION_MAX_DEFAULT, SR_CLI_CONNECT_TIMEOUT_MS,
          TOPICS_CREATE_TIMEOUT_MS);
}

static int topics_parse_int(const char *opt, const char *s, int min, int max, int *out) {
  char *end;
  errno = 0;
  long v = strtol(s, &end, 10);
  if (errno || end == s || *end || v < min || v > max) {
    fprintf(stderr, "streamrec topics: %s: expected an integer in [%d, %d], got '%s'\n", opt, min,
            max, s);
    return -1;
  }
  *out = (int)v;
  return 0;
}

int sr_cmd_topics(int argc, char **argv) {
  static const struct option opts[] = {{"brokers", required_argument, NULL, 'b'},
                                       {"partitions", required_argument, NULL, 'p'},
                                       {"replication", required_argument, NULL, 'r'},
                                       {"prefix", required_argument, NULL, 'P'},
                                       {"connect-timeout-ms", required_argument, NULL, 'T'},
                                       {"help", no_argument, NULL, 'h'},
                                       {NULL, 0, NULL, 0}};
  const char *brokers = NULL, *prefix = "";
  int partitions = TOPICS_DEFAULT_PARTITIONS, replication = 0,
      connect_ms = SR_CLI_CONNECT_TIMEOUT_MS;
  int c, rc = 1;
  sr_kv_list_t xs = {0};
  char err[512];
  char names[SR_TOPICS_N][512];
  sr_kv_t cfg[SR_TOPICS_N][2];
  sr_kafka_topic_spec_t spec[SR_TOPICS_N];
  sr_kafka_topic_outcome_t outcome[SR_TOPICS_N];

  optind = 0;
  while ((c = getopt_long(argc, argv, "hX:", opts, NULL)) != -1) {
    switch (c) {
    case 'b': brokers = optarg; break;
    case 'p':
      if (topics_parse_int("--partitions", optarg, 1, 100000, &partitions)) goto usage_err;
      break;
    case 'r':
      if (topics_parse_int("--replication", optarg, 1, 32767, &replication)) goto usage_err;
      break;
    case 'P': prefix = optarg; break;
    case 'T':
      if (topics_parse_int("--connect-timeout-ms", optarg, 1, 3600000, &connect_ms)) goto usage_err;
      break;
    case 'X':
      if (sr_kv_list_add_arg(&xs, optarg, err, sizeof(err)) != SR_OK) {
        fprintf(stderr, "streamrec topics: %s\n", err);
        goto usage_err;
      }
      break;
    case 'h':
      topics_usage(stdout);
      rc = 0;
      goto out;
    default: goto usage_err;
    }
  }
  if (optind < argc) {
    fprintf(stderr, "streamrec topics: unexpected argument '%s'\n", argv[optind]);
    goto usage_err;
  }
  if (!brokers) {
    fprintf(stderr, "streamrec topics: --brokers is required\n");
    goto usage_err;
  }
  if (sr_kafka_kv_check(SR_KAFKA_PRODUCER, xs.kv, xs.n, err, sizeof(err)) != SR_OK) {
    fprintf(stderr, "streamrec topics: -X %s\n", err);
    goto usage_err;
  }

  /* ---- run ---- */
  int n_brokers = sr_kafka_broker_count(brokers, xs.kv, xs.n, connect_ms, err, sizeof(err));
  if (n_brokers <= 0) {
    fprintf(stderr, "streamrec topics: cannot reach Kafka at %s within %d ms (%s)\n", brokers,
            connect_ms, n_brokers == 0 ? "no brokers in the metadata" : err);
    rc = SR_CLI_EXIT_UNREACHABLE;
    goto out;
  }
  if (!replication) replication = SR_MIN(TOPICS_REPLICATION_MAX_DEFAULT, n_brokers);
  if (replication > n_brokers) {
    fprintf(stderr, "streamrec topics: --replication %d: the cluster at %s has %d broker(s)\n",
            replication, brokers, n_brokers);
    goto out;
  }

  sr_pipeline_conf_t defaults;
  sr_pipeline_conf_defaults(&defaults);
  for (int i = 0; i < SR_TOPICS_N; i++) {
    const sr_topics_row_t *row = &sr_topics_table[i];
    const char *base = *(const char *const *)((const char *)&defaults + row->name_field);
    if ((size_t)snprintf(names[i], sizeof(names[i]), "%s%s", prefix, base) >= sizeof(names[i])) {
      fprintf(stderr, "streamrec topics: --prefix: name of %s too long\n", row->option);
      goto out;
    }
    int n_cfg = 0;
    cfg[i][n_cfg++] = (sr_kv_t){"cleanup.policy", row->cleanup_policy};
    if (replication >= SR_TOPICS_MIN_ISR_FROM)
      cfg[i][n_cfg++] = (sr_kv_t){"min.insync.replicas", SR_TOPICS_MIN_ISR};
    spec[i] = (sr_kafka_topic_spec_t){.name = names[i],
                                      .partitions = partitions,
                                      .replication = replication,
                                      .config = cfg[i],
                                      .n_config = n_cfg};
  }
  if (sr_kafka_topics_create(brokers, spec, SR_TOPICS_N, xs.kv, xs.n, TOPICS_CREATE_TIMEOUT_MS,
                             outcome, err, sizeof(err)) != SR_OK) {
    /* the topics done before the error are still worth a line each */
    for (int i = 0; i < SR_TOPICS_N; i++)
      if (outcome[i] != SR_KAFKA_TOPIC_FAILED)
        printf("%s: %s\n", names[i],
               outcome[i] == SR_KAFKA_TOPIC_CREATED ? "created" : "already there");
    fprintf(stderr, "streamrec topics: %s\n", err);
    goto out;
  }
  for (int i = 0; i < SR_TOPICS_N; i++) {
    if (outcome[i] == SR_KAFKA_TOPIC_CREATED) {
      printf("%s: created (%s, partitions=%d replication=%d", names[i], sr_topics_table[i].option,
             partitions, replication);
      for (int k = 0; k < spec[i].n_config; k++)
        printf(" %s=%s", spec[i].config[k].key, spec[i].config[k].value);
      printf(")\n");
    } else {
      printf("%s: already there (%s, partitions=%d; configuration left as it is)\n", names[i],
             sr_topics_table[i].option, partitions);
    }
  }
  rc = 0;
  goto out;

usage_err:
  topics_usage(stderr);
  rc = 2;
out:
  sr_kv_list_free(&xs);
  return rc;
}
