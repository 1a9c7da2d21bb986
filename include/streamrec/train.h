/*
 * train: learns a model from an event history (sr_dataset_t) and returns it
 * ready for sr_snapshot_write(). With model/, the only module that calls
 * BLAS. The forward pass uses sr_model_step() itself, so the state serve
 * computes online is exactly the state the trainer optimised.
 *
 * Thread: runs on the calling thread; BLAS may use its own threads.
 */
#ifndef STREAMREC_TRAIN_H
#define STREAMREC_TRAIN_H

#include <stdint.h>
#include "streamrec/dataset.h"
#include "streamrec/model.h"
#include "streamrec/snapshot.h"

typedef struct sr_train_conf_s {
  sr_model_kind_t kind;
  int dim;          /* embedding size d */
  int epochs;       /* maximum epochs */
  int batch;        /* positions per gradient step */
  float lr;         /* learning rate */
  float l2;         /* weight decay */
  float valid_frac; /* fraction of users whose last event is held out for early stopping */
  int patience;     /* epochs without validation improvement before stopping */
  uint64_t seed;
  int threads;        /* BLAS threads; 0 = all cores */
  int progress;       /* 1 = progress line on stderr (auto: isatty) */
  double max_seconds; /* stop after this much training time; 0 = no limit */
} sr_train_conf_t;

/* Defaults for a model kind: the tuned hyper-parameters of that kind
 * (docs/MODEL.md for gru; decay's are its own). SR_MODEL_GRU is the
 * product default (streamrec train without --kind). */
void sr_train_conf_defaults(sr_train_conf_t *c, sr_model_kind_t kind);

/* Trains on ds. On SR_OK *out is a new model (free with sr_model_destroy)
 * and *info holds the training summary for the snapshot. Errors (errstr
 * set, *out NULL): SR_ERR_CONF for a configuration out of range or one the
 * kind cannot build (e.g. GRU with dim > 256), SR_ERR_INVALID_ARG for a
 * data set too small to train on, SR_ERR_NOMEM when the model's parameters
 * cannot be allocated, SR_ERR_MODEL when training diverges. */
sr_err_t sr_train_run(const sr_dataset_t *ds, const sr_train_conf_t *conf, sr_model_t **out,
                      sr_snapshot_info_t *info, char *errstr, size_t errsz);

#endif
