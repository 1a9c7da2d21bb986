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
 * also set on m). Returns SR_OK or an error with errstr. */
sr_err_t sr_snapshot_write(sr_model_t *m, sr_snapshot_info_t *info, const char *path,
                           char *errstr, size_t errsz);

/* Loads and verifies a snapshot. On SR_OK *mp is a new model (free with
 * sr_model_destroy) whose version is the file's, and *info (may be NULL) is
 * filled. Refuses bad magic (SR_ERR_FORMAT), unknown format version
 * (SR_ERR_VERSION), truncation (SR_ERR_TRUNCATED), checksum mismatch
 * (SR_ERR_CHECKSUM), with a message naming the file. */
sr_err_t sr_snapshot_load(const char *path, sr_model_t **mp, sr_snapshot_info_t *info,
                          char *errstr, size_t errsz);

#endif
