/*
 * Subcommands of the streamrec binary. main.c parses the first argument and
 * dispatches; each command parses its own flags (getopt_long), prints usage
 * on --help, and returns the process exit code (0 ok, 1 runtime failure,
 * 2 usage error).
 */
#ifndef SR_CLI_H
#define SR_CLI_H

int sr_cmd_broker(int argc, char **argv);
int sr_cmd_load(int argc, char **argv);
int sr_cmd_gen(int argc, char **argv);
int sr_cmd_train(int argc, char **argv);
int sr_cmd_serve(int argc, char **argv);
int sr_cmd_recs(int argc, char **argv);
int sr_cmd_eval(int argc, char **argv);
int sr_cmd_split(int argc, char **argv);
int sr_cmd_config(int argc, char **argv);
int sr_cmd_doctor(int argc, char **argv);
int sr_cmd_topics(int argc, char **argv);

/* Exit code of a tool that could not get metadata from --brokers (brokers
 * unreachable, or the topic missing) within its --connect-timeout-ms, so a
 * script can tell "Kafka not there" from a failure of the work itself. */
#define SR_CLI_EXIT_UNREACHABLE 3
/* Default of --connect-timeout-ms: the bound on that first metadata request. */
#define SR_CLI_CONNECT_TIMEOUT_MS 10000

#endif
