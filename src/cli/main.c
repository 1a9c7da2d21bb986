/*
 * streamrec entry point: parses the subcommand and dispatches. Nothing else
 * lives here (each command owns its flags in cmd_<name>.c), except that the
 * commands doing dense math first make sure OpenBLAS runs the best core for
 * this CPU (sr_blas_ensure_core may re-execute the process, so it runs
 * before the command starts any thread or prints anything).
 */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "streamrec/blas.h"

typedef struct {
  const char *name;
  int (*fn)(int, char **);
  int dense; /* does BLAS work worth the right kernel: sr_blas_ensure_core first */
  const char *help;
} sr_cmd_t;

static const sr_cmd_t sr_cmds[] = {
    {"broker", sr_cmd_broker, 0, "run an embedded Kafka (mock cluster) on loopback"},
    {"gen", sr_cmd_gen, 0, "write a synthetic event CSV"},
    {"topics", sr_cmd_topics, 0, "create the worker's topics on a Kafka cluster"},
    {"load", sr_cmd_load, 0, "produce UserEvents from a CSV to Kafka"},
    {"train", sr_cmd_train, 1, "train a model from an event CSV and write a snapshot"},
    {"serve", sr_cmd_serve, 1, "the online worker: events in, recommendations out"},
    {"recs", sr_cmd_recs, 0, "read Recommendations from Kafka (JSON lines)"},
    {"eval", sr_cmd_eval, 1, "offline evaluation with full-ranking metrics"},
    {"split", sr_cmd_split, 0, "leave-one-out split of an event CSV"},
    {"config", sr_cmd_config, 0, "print the configuration reference"},
    {"doctor", sr_cmd_doctor, 1, "machine, OpenBLAS kernel and library report, with fixes"},
};

static void sr_usage(FILE *f) {
  fprintf(f,
          "streamrec %s: real-time recommendations on Kafka\n\nusage: streamrec COMMAND "
          "[options]\n\ncommands:\n",
          SR_VERSION);
  for (size_t i = 0; i < sizeof(sr_cmds) / sizeof(sr_cmds[0]); i++)
    fprintf(f, "  %-8s %s\n", sr_cmds[i].name, sr_cmds[i].help);
  fprintf(f, "\nRun 'streamrec COMMAND --help' for a command's options.\n");
}

/* `streamrec CMD --help` only prints usage: no kernel check, no log line. */
static int sr_wants_help(int argc, char **argv) {
  for (int i = 2; i < argc; i++)
    if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) return 1;
  return 0;
}

int main(int argc, char **argv) {
  if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
    sr_usage(argc < 2 ? stderr : stdout);
    return argc < 2 ? 2 : 0;
  }
  if (!strcmp(argv[1], "--version")) {
    printf("streamrec %s\n", SR_VERSION);
    return 0;
  }
  for (size_t i = 0; i < sizeof(sr_cmds) / sizeof(sr_cmds[0]); i++)
    if (!strcmp(argv[1], sr_cmds[i].name)) {
      if (sr_cmds[i].dense && !sr_wants_help(argc, argv)) sr_blas_ensure_core(argc, argv);
      return sr_cmds[i].fn(argc - 1, argv + 1);
    }
  fprintf(stderr, "streamrec: unknown command '%s'\n\n", argv[1]);
  sr_usage(stderr);
  return 2;
}
