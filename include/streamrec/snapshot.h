/*
 * snapshot: the versioned model file written by `train` and loaded by
 * `serve` and `eval`. Format: docs/SNAPSHOT.md. A whole-file XXH64 checksum
 * makes any corruption or truncation a clear refusal at load time; writes go
 * through temp file + fsync + rename + fsync(dir).
 */
#ifndef STREAMREC_SNAPSHOT_H
#define STREAMREC_SNAPSHOT_H

#include <stdint.h>
#include "streamrec/model.h"

#define SR_SNAPSHOT_FORMAT_VERSION 1

/* Content limits enforced by both the writer and the loader
 * (docs/SNAPSHOT.md, "Validation"): an item id is 1..SR_SNAPSHOT_ITEM_ID_MAX
 * bytes of valid UTF-8 (the pipeline's default event.id.max.bytes, so every
 * catalogue id is also a valid event id); a version string is non-empty and
 * made of A-Z a-z 0-9 and the characters of SR_SNAPSHOT_VERSION_PUNCT only
 * (it is written into Prometheus labels, logs and Recommendations). */
#define SR_SNAPSHOT_ITEM_ID_MAX 1024
#define SR_SNAPSHOT_VERSION_PUNCT "._:+-"

typedef struct sr_snapshot_info_s {
  uint32_t format_version;
  sr_model_kind_t kind;
  int dim;
  int32_t n_items;
  int64_t created_ms;
  /* training data summary */
  uint64_t train_events;
  uint64_t train_users;
  uint32_t epochs;
  float train_loss;
  float valid_metric; /* e.g. validation NDCG@10; NaN when none */
  char version[64];   /* model version string, e.g. "decay-d64-20261123T115501-1a2b3c4d" */
  uint64_t checksum;  /* filled by load/write */
} sr_snapshot_info_t;

/* Writes m to path atomically. info: training summary (format_version, kind,
 * dim, n_items, checksum and version are filled in by the writer; version is
 * also set on m). Refuses, writing nothing, a model the loader would refuse:
 * a non-finite or out-of-range parameter (SR_ERR_MODEL) or an empty, too
 * long or non-UTF-8 item id (SR_ERR_INVALID_ARG). Returns SR_OK or an error
 * with errstr. */
sr_err_t sr_snapshot_write(sr_model_t *m, sr_snapshot_info_t *info, const char *path, char *errstr,
                           size_t errsz);

/* Loads and verifies a snapshot. On SR_OK *mp is a new model (free with
 * sr_model_destroy) whose version is the file's, and *info (may be NULL) is
 * filled; on error *mp is NULL. Refuses a path that is not a regular file
 * or cannot be read (SR_ERR_IO), bad magic (SR_ERR_FORMAT), unknown format
 * version (SR_ERR_VERSION), truncation (SR_ERR_TRUNCATED), checksum
 * mismatch (SR_ERR_CHECKSUM), bad structure, item ids or version string
 * (SR_ERR_FORMAT) and non-finite or out-of-range parameters (SR_ERR_MODEL),
 * with a message naming the file and, where there is one, the item or
 * block index. */
sr_err_t sr_snapshot_load(const char *path, sr_model_t **mp, sr_snapshot_info_t *info, char *errstr,
                          size_t errsz);

/* sr_snapshot_load on the len bytes at data (borrowed, only read during the
 * call; the model copies what it keeps). name stands for the file in
 * messages (may be NULL: "(memory)"). Same checks, same results; no I/O.
 * Thread: any; shares nothing. */
sr_err_t sr_snapshot_load_mem(const void *data, size_t len, const char *name, sr_model_t **mp,
                              sr_snapshot_info_t *info, char *errstr, size_t errsz);

#endif
