/*
 * streamrec entry point: parses the subcommand and dispatches. Nothing else
 * lives here (each command owns its flags in cmd_<name>.c).
 */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"

typedef struct {
  const char *name;
  int (*fn)(int, char **);
  const char *help;
} sr_cmd_t;

static const sr_cmd_t sr_cmds[] = {
    {"broker", sr_cmd_broker, "run an embedded Kafka (mock cluster) on loopback"},
    {"gen", sr_cmd_gen, "write a synthetic event CSV"},
    {"load", sr_cmd_load, "produce UserEvents from a CSV to Kafka"},
    {"train", sr_cmd_train, "train a model from an event CSV and write a snapshot"},
    {"serve", sr_cmd_serve, "the online worker: events in, recommendations out"},
    {"recs", sr_cmd_recs, "read Recommendations from Kafka (JSON lines)"},
    {"eval", sr_cmd_eval, "offline evaluation with full-ranking metrics"},
    {"split", sr_cmd_split, "leave-one-out split of an event CSV"},
    {"config", sr_cmd_config, "print the configuration reference"},
};

static void sr_usage(FILE *f) {
  fprintf(f, "streamrec %s: real-time recommendations on Kafka\n\nusage: streamrec COMMAND [options]\n\ncommands:\n",
          SR_VERSION);
  for (size_t i = 0; i < sizeof(sr_cmds) / sizeof(sr_cmds[0]); i++)
    fprintf(f, "  %-8s %s\n", sr_cmds[i].name, sr_cmds[i].help);
  fprintf(f, "\nRun 'streamrec COMMAND --help' for a command's options.\n");
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
    if (!strcmp(argv[1], sr_cmds[i].name)) return sr_cmds[i].fn(argc - 1, argv + 1);
  fprintf(stderr, "streamrec: unknown command '%s'\n\n", argv[1]);
  sr_usage(stderr);
  return 2;
}
