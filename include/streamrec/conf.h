/*
 * conf: one typed table of options (name, type, default, range, help)
 * drives the config file, command-line flags, --help, the generated
 * docs/CONFIGURATION.md and the effective-config log line (librdkafka's
 * rdkafka_conf.c + CONFIGURATION.md pattern).
 *
 * Keys under "kafka." pass verbatim (prefix stripped) to both Kafka clients;
 * "kafka.consumer.X" and "kafka.producer.X" to one of them only.
 * Unknown keys and invalid values are errors reported as "file:line: reason"
 * (fatal at startup), never logged and ignored.
 *
 * Thread: build and read on one thread, before the pipeline starts.
 */
#ifndef STREAMREC_CONF_H
#define STREAMREC_CONF_H

#include <stdio.h>
#include "streamrec/common.h"

/* A key/value Kafka client property, passed verbatim to rd_kafka_conf_set
 * (config keys "kafka.X" arrive here as "X"). */
typedef struct sr_kv_s {
  const char *key;
  const char *value;
} sr_kv_t;

typedef enum { SR_CONF_INT, SR_CONF_STR, SR_CONF_BOOL } sr_conf_type_t;

typedef struct sr_conf_opt_s {
  const char *name; /* "batch.max" */
  sr_conf_type_t type;
  const char *def;    /* default as text; NULL = unset */
  long long min, max; /* for INT */
  const char *help;
  const char *flag; /* long command-line flag ("batch-max") or NULL */
} sr_conf_opt_t;

typedef struct sr_conf_s sr_conf_t;

/* table is borrowed (static storage). Returns a new conf with defaults. */
sr_conf_t *sr_conf_new(const sr_conf_opt_t *table, int n);
void sr_conf_destroy(sr_conf_t *c); /* accepts NULL */
/* Sets key (table name or kafka.*) from text. Errors: SR_ERR_CONF. */
sr_err_t sr_conf_set(sr_conf_t *c, const char *key, const char *value, char *errstr, size_t errsz);
/* sr_conf_set that also records, for a kafka.* key, where the value came
 * from (origin: "FILE:LINE", "-X", "--flag"; copied; NULL = unknown), so a
 * property librdkafka refuses later (sr_kafka_conf_check) is reported
 * there. kafka.* values are only stored here, not checked. */
sr_err_t sr_conf_set_from(sr_conf_t *c, const char *key, const char *value, const char *origin,
                          char *errstr, size_t errsz);
/* Reads "key = value" lines ('#' comments). Errors name file:line; kafka.*
 * keys remember their "FILE:LINE" (sr_conf_kafka_origin). */
sr_err_t sr_conf_load_file(sr_conf_t *c, const char *path, char *errstr, size_t errsz);
/* Typed getters; the name must be in the table (abort otherwise: a bug). */
const char *sr_conf_str(const sr_conf_t *c, const char *name); /* NULL when unset */
long long sr_conf_int(const sr_conf_t *c, const char *name);
typedef enum {
  SR_CONF_KAFKA_BOTH = 0,
  SR_CONF_KAFKA_CONSUMER,
  SR_CONF_KAFKA_PRODUCER
} sr_conf_client_t;
/* kafka.* properties for `which`, prefix stripped. Borrowed until destroy. */
const sr_kv_t *sr_conf_kafka(const sr_conf_t *c, sr_conf_client_t which, int *n);
/* Where property i of sr_conf_kafka(c, which, ..) was last set (see
 * sr_conf_set_from), or NULL when unknown. Borrowed until the next set or
 * destroy. */
const char *sr_conf_kafka_origin(const sr_conf_t *c, sr_conf_client_t which, int i);
/* Option by its long flag, or NULL. */
const sr_conf_opt_t *sr_conf_find_flag(const sr_conf_t *c, const char *flag);
/* Writes the effective configuration, one "key=value" per line, with values
 * of keys that look secret (password, secret, sasl, key) redacted. */
void sr_conf_dump(const sr_conf_t *c, FILE *f);
/* Markdown reference of the table. */
void sr_conf_markdown(const sr_conf_opt_t *table, int n, const char *title, FILE *f);
/* Usage lines for flags of the table. */
void sr_conf_usage(const sr_conf_opt_t *table, int n, FILE *f);

/* ---- "-X key=value" arguments of the CLI tools, parsed in one place ---- */
/* A growing list of properties that owns its strings. Zero-initialise. */
typedef struct sr_kv_list_s {
  sr_kv_t *kv;
  int n, cap;
} sr_kv_list_t;
/* Splits arg at its first '=' into a new entry of l (key non-empty; the
 * value may be empty; a key set twice keeps its place and takes the later
 * value). Returns SR_OK, or SR_ERR_CONF with errstr
 * ("-X expects key=value, got 'ARG'"). */
sr_err_t sr_kv_list_add_arg(sr_kv_list_t *l, const char *arg, char *errstr, size_t errsz);
void sr_kv_list_free(sr_kv_list_t *l); /* frees the entries; l can be reused */

#endif
