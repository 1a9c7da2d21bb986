/*
 * Event-history input for the offline tools (train, eval, split, gen/load):
 * the CSV contract and an in-memory data set with
 * each user's events in time order.
 *
 * CSV contract: the first four columns are user, item, rating (value),
 * timestamp (seconds or milliseconds: values below 1e11 are seconds); an
 * optional fifth column is the event type (VIEW..FORGET, case-insensitive).
 * A first line whose timestamp column is not a number is a header.
 * MovieLens ratings.csv loads as is.
 */
#ifndef STREAMREC_DATASET_H
#define STREAMREC_DATASET_H

#include <stdint.h>
#include <stdio.h>
#include "streamrec/common.h"
#include "streamrec/event.h"
#include "streamrec/strmap.h"

/* ---- one CSV line ---- */
typedef struct sr_csv_row_s {
  sr_str_t user; /* borrowed from the line */
  sr_str_t item; /* borrowed from the line */
  float value;
  int64_t ts_ms;
  int type; /* sr_event_type_t, or -1 when the column is absent */
} sr_csv_row_t;

/* Parses line[0..len) (no newline; a trailing '\r' is ignored). The line is
 * not modified; row strings point into it. Returns SR_OK, SR_ERR_NOT_FOUND
 * for an empty line, or SR_ERR_FORMAT with the reason in errstr. */
sr_err_t sr_csv_parse(const char *line, size_t len, sr_csv_row_t *row, char *errstr, size_t errsz);

/* ---- in-memory data set ---- */
typedef struct sr_dataset_s {
  sr_strmap_t *users; /* user id <-> dense index */
  sr_strmap_t *items; /* item id <-> dense index */
  int32_t n_users, n_items;
  int64_t n_events;
  /* Events grouped by user; within a user by time, ties in file order.
   * User u's events are [user_off[u], user_off[u+1]). */
  int64_t *user_off; /* n_users + 1 */
  int32_t *ev_item;
  float *ev_value;
  int64_t *ev_ts;
  uint8_t *ev_type;
  int64_t *ev_seq;   /* position in the source file (0-based, data lines only) */
  int64_t bad_lines; /* lines skipped while loading */
} sr_dataset_t;

/* Loads a CSV file (path "-" = stdin). Bad lines are skipped, counted in
 * bad_lines and reported (first 10) through sr_log_warn. Returns a new data
 * set in *out (free with sr_dataset_destroy). */
sr_err_t sr_dataset_load_csv(const char *path, sr_dataset_t **out, char *errstr, size_t errsz);
/* Builds a data set from parallel arrays of rows in "file order". Used by
 * the Kafka-topic reader of train and by tests. Copies everything. */
sr_err_t sr_dataset_from_rows(const sr_csv_row_t *rows, int64_t n, sr_dataset_t **out);
/* One-pass min-count filter: count interactions per user and per item over
 * the whole set, drop each interaction whose user or item has fewer than
 * min_count. Returns a new data set (ids re-densified, order kept). */
sr_dataset_t *sr_dataset_filter_min_count(const sr_dataset_t *ds, int min_count);
/* Writes the events of the given users' ranges as CSV (user,item,value,ts_ms,type)
 * in time order per user. Used by split. */
sr_err_t sr_dataset_write_csv(const sr_dataset_t *ds, FILE *f, int with_header);
void sr_dataset_destroy(sr_dataset_t *ds); /* accepts NULL */

#endif
