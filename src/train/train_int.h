/*
 * Trainer internals: one entry point per model kind (train_<kind>.c),
 * dispatched by sr_train_run() in train.c, which also owns the shared
 * pieces (validation split, progress line, full-ranking validation metric).
 */
#ifndef SR_TRAIN_INT_H
#define SR_TRAIN_INT_H

#include "streamrec/train.h"
#include "model/model_int.h"

/* Trains m (created by train.c with zeroed parameters for ds's catalogue,
 * item index i of m == item index i of ds) in place; fills info's training
 * summary fields (epochs, train_loss, valid_metric, train_events,
 * train_users). */
typedef sr_err_t(sr_train_kind_fn_t)(const sr_dataset_t *ds, const sr_train_conf_t *conf,
                                     sr_model_t *m, sr_snapshot_info_t *info, char *errstr,
                                     size_t errsz);
sr_train_kind_fn_t sr_train_decay;
sr_train_kind_fn_t sr_train_gru;

/* Test hooks of train_gru.c (tests/unit/0041): the trainer's forward pass
 * (H_ev[e * d] = the state after input event e) and the arena-shaped
 * gradient of one pass without dropout (contracts at the definitions). */
sr_err_t sr_train_gru_forward_states(sr_model_t *m, const sr_dataset_t *ds, int lanes, int chunk,
                                     float *H_ev);
sr_err_t sr_train_gru_gradient(sr_model_t *m, const sr_dataset_t *ds, int lanes, int chunk,
                               int32_t full_softmax_max, float *grad, double *loss);

#endif
