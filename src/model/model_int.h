/*
 * Model internals shared by model/, snapshot/ and train/ (not public).
 *
 * A model kind is a small vtable. Every kind's parameter layout MUST contain
 * the two scoring blocks "item_out" (n_items x state_size, row-major) and
 * "item_bias" (n_items): scoring is common to all kinds (model.c:
 * S = H . item_out^T + item_bias, one sgemm). All blocks live in one
 * contiguous 64-byte-aligned arena (m->arena) in layout order.
 */
#ifndef SR_MODEL_INT_H
#define SR_MODEL_INT_H

#include "streamrec/dataset.h"
#include "streamrec/model.h"

#define SR_MODEL_MAX_BLOCKS 24

typedef struct sr_model_ops_s {
  sr_model_kind_t kind;
  const char *name; /* "decay", "gru" */
  /* Parameter layout for (dim, n_items): fills names[i] (static strings) and
   * counts[i] (floats) for up to max blocks; returns the number of blocks. */
  int (*layout)(int dim, int32_t n_items, const char **names, size_t *counts, int max);
  /* Floats of per-user state for dim. */
  int (*state_size)(int dim);
  /* Fresh parameters are zero; init_state writes a new user's state. */
  void (*state_init)(const sr_model_t *m, float *h);
  /* The per-event update; see sr_model_step(). */
  void (*step)(const sr_model_t *m, float *h, int32_t item, sr_event_type_t type,
               float value, int64_t dt_ms);
} sr_model_ops_t;

struct sr_model_s {
  const sr_model_ops_t *ops;
  int dim;
  int state_size;
  int32_t n_items;
  sr_strmap_t *items; /* item id <-> index */
  char version[64];
  float *arena; /* all parameters, aligned_alloc(64) */
  size_t arena_floats;
  int n_blocks;
  sr_param_block_t blocks[SR_MODEL_MAX_BLOCKS];
  float *item_out;  /* -> block "item_out" */
  float *item_bias; /* -> block "item_bias" */
};

/* Block by name, or NULL. */
sr_param_block_t *sr_model_block(sr_model_t *m, const char *name);

/* Kind vtables (one per model_<kind>.c). */
extern const sr_model_ops_t sr_model_ops_decay;
extern const sr_model_ops_t sr_model_ops_gru;

#endif
