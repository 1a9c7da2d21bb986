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

/* Waits for SIGINT/SIGTERM on a libuv loop (src/admin/). Returns the signal. */
int sr_cli_wait_signal(void);

#endif
