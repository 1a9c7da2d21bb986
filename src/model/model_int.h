/*
 * Model internals shared by model/, snapshot/ and train/ (not public),
 * including the GRU kind's functions its trainer calls.
 *
 * A model kind is a small vtable. Every kind's parameter layout MUST contain
 * the two scoring blocks "item_out" (n_items x state_size, row-major) and
 * "item_bias" (n_items): scoring is common to all kinds (model.c:
 * S = H . item_out^T + item_bias, one sgemm). All blocks live in one
 * contiguous 64-byte-aligned arena (m->arena) in layout order.
 */
#ifndef SR_MODEL_INT_H
#define SR_MODEL_INT_H

#include "streamrec/strmap.h"
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
  void (*step)(const sr_model_t *m, float *h, int32_t item, sr_event_type_t type, float value,
               int64_t dt_ms);
  /* Kind-specific parameter ranges (hyper-parameters, fixed weights),
   * checked by sr_model_check() before its generic "finite and
   * |x| <= SR_MODEL_PARAM_MAX" pass over every block (so the hook must
   * treat NaN as out of range: write range tests as !(lo <= x && x <= hi)).
   * Returns 0, or -1 with errstr naming the block, the index and the rule.
   * The range must include whatever the kind's trainer can produce
   * (docs/SNAPSHOT.md, "Validation"). NULL: no kind-specific rules. */
  int (*validate)(const sr_model_t *m, char *errstr, size_t errsz);
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

/* Largest parameter magnitude a model may hold. Far above anything the
 * trainers produce (Adam moves a parameter by about lr per step), and small
 * enough that a score (a d <= 1024 dot product plus a bias) stays finite. */
#define SR_MODEL_PARAM_MAX 1e6f

/* Checks every parameter of m: the kind's validate hook, then finite and
 * |x| <= SR_MODEL_PARAM_MAX in every block. Returns SR_OK, or
 * SR_ERR_MODEL with errstr naming the block, the index and the value
 * (e.g. "block 'item_bias' [3] is nan (parameters must be finite)").
 * The snapshot writer and loader and the trainer call it, so a model that
 * fails it is never written, never loaded, never returned by training.
 * Thread: any (reads m only). */
sr_err_t sr_model_check(const sr_model_t *m, char *errstr, size_t errsz);

/* Block by name, or NULL. */
sr_param_block_t *sr_model_block(sr_model_t *m, const char *name);

/* Kind vtables (one per model_<kind>.c). */
extern const sr_model_ops_t sr_model_ops_decay;
extern const sr_model_ops_t sr_model_ops_gru;

/* ---- GRU kind (model_gru.c), exported to its trainer (train/train_gru.c)
 * and the unit tests, which run the very cell serve runs. Thread: any
 * (pure functions of the model and their arguments); allocation-free. */

/* Largest d the GRU kind builds (its step keeps scratch on the stack). */
#define SR_GRU_MAX_DIM 256
/* Time-gap bucket of dt_ms (0 .. 23) selecting a row of "gap_emb". */
int sr_model_gru_gap(int64_t dt_ms);
/* The input embedding table: "item_out" when tied (hparams[0] = 1), else
 * "item_in". Borrowed from m. */
const float *sr_model_gru_in_table(const sr_model_t *m);
/* x (d floats) = input embedding of one event (item must be valid). */
void sr_model_gru_input(const sr_model_t *m, int32_t item, sr_event_type_t type, int64_t dt_ms,
                        float *x);
/* h <- GRU(h, x) in place; cache (4d floats) receives the activations
 * back-propagation needs, or is NULL. */
void sr_model_gru_cell(const sr_model_t *m, const float *x, float *h, float *cache);

#endif
