/*
 * `streamrec broker`: runs the embedded Kafka (librdkafka mock cluster) in
 * the foreground until SIGINT/SIGTERM, for demos and the interop tests.
 *
 * Scripts read the first stdout line, exactly "bootstrap=HOST:PORT[,...]",
 * so it is printed and flushed before anything else on stdout; logs go to
 * stderr. Data lives in memory only (see src/broker/broker.c for the
 * per-partition retention limits of the mock cluster).
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "streamrec/admin.h"
#include "streamrec/common.h"
#include "streamrec/kafka.h"

static void broker_usage(FILE *f) {
  fprintf(f, "usage: streamrec broker [--partitions N] [--brokers-count N]\n"
             "\n"
             "Runs an in-memory Kafka cluster (librdkafka mock cluster) on 127.0.0.1 with\n"
             "the topics events, recommendations and events.dlq, until SIGINT/SIGTERM.\n"
             "The first line on stdout is 'bootstrap=HOST:PORT[,HOST:PORT...]'.\n"
             "Each partition keeps at most 5 MiB / 100000 batches (older data is dropped).\n"
             "\n"
             "  --partitions N      partitions per topic (default 4)\n"
             "  --brokers-count N   number of brokers (default 1)\n"
             "  -h, --help          this help\n");
}

static int broker_parse_int(const char *opt, const char *s, int min, int max, int *out) {
  char *end;
  errno = 0;
  long v = strtol(s, &end, 10);
  if (errno || end == s || *end || v < min || v > max) {
    fprintf(stderr, "streamrec broker: %s: expected an integer in [%d, %d], got '%s'\n", opt, min,
            max, s);
    return -1;
  }
  *out = (int)v;
  return 0;
}

int sr_cmd_broker(int argc, char **argv) {
  static const struct option opts[] = {{"partitions", required_argument, NULL, 'p'},
                                       {"brokers-count", required_argument, NULL, 'b'},
                                       {"help", no_argument, NULL, 'h'},
                                       {NULL, 0, NULL, 0}};
  int partitions = 4, n_brokers = 1, c;
  char err[512];

  optind = 0;
  while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
    switch (c) {
    case 'p':
      if (broker_parse_int("--partitions", optarg, 1, 10000, &partitions)) return 2;
      break;
    case 'b':
      if (broker_parse_int("--brokers-count", optarg, 1, 64, &n_brokers)) return 2;
      break;
    case 'h': broker_usage(stdout); return 0;
    default: broker_usage(stderr); return 2;
    }
  }
  if (optind < argc) {
    fprintf(stderr, "streamrec broker: unexpected argument '%s'\n", argv[optind]);
    broker_usage(stderr);
    return 2;
  }

  sr_broker_t *b = sr_broker_new(n_brokers, partitions, err, sizeof(err));
  if (!b) {
    fprintf(stderr, "streamrec broker: %s\n", err);
    return 1;
  }
  printf("bootstrap=%s\n", sr_broker_bootstrap(b));
  fflush(stdout);
  sr_log_info("broker",
              "%d broker(s), topics events, recommendations, events.dlq with %d "
              "partition(s) each; Ctrl-C to stop",
              n_brokers, partitions);

  int sig = sr_admin_wait_signal();
  sr_log_info("broker", "signal %d: shutting down", sig);
  sr_broker_destroy(b);
  return 0;
}
