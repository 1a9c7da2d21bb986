/*
 * model: the only module (with train/) that calls BLAS.
 *
 * A model is an item catalogue (string ids <-> dense indices) plus learned
 * parameters, and defines two operations the rest of the system is built on:
 *
 *   step:  h <- f(h, item, type, value, dt)  per event, in place, O(d^2) max.
 *          The SAME function is used by the trainer's forward pass and by
 *          serve, so online state equals offline state exactly.
 *   score: S = H . E^T (+ bias) for a micro-batch of user states, one
 *          cblas_sgemm call (never one sgemv per user).
 *
 * Model kinds are a small vtable (src/model/model_int.h); parameters are
 * exposed as named float blocks so snapshot/ can persist any kind
 * generically.
 *
 * Thread: a loaded model is immutable and may be shared by any number of
 * threads for step/score (each caller brings its own buffers).
 */
#ifndef STREAMREC_MODEL_H
#define STREAMREC_MODEL_H

#include <stddef.h>
#include <stdint.h>
#include "streamrec/common.h"
#include "streamrec/event.h"

typedef struct sr_model_s sr_model_t;

typedef enum sr_model_kind_e {
  SR_MODEL_DECAY = 1, /* decayed weighted sum of item input embeddings */
  SR_MODEL_GRU = 2    /* gated recurrent cell (issue #3) */
} sr_model_kind_t;

const char *sr_model_kind_name(sr_model_kind_t k); /* "decay", "gru", "?" */
int sr_model_kind_parse(const char *s);            /* -1 when unknown */

/* A named parameter block, float32, row-major. data is owned by the model. */
typedef struct sr_param_block_s {
  const char *name;
  float *data;
  size_t count;
} sr_param_block_t;

/* Creates a model with zeroed parameters for the given catalogue.
 * item_ids: n_items distinct ids (copied). Returns SR_OK with *out the new
 * model (free with sr_model_destroy()), or an error with *out NULL and
 * errstr set: SR_ERR_INVALID_ARG for bad arguments (unknown kind, dim < 1
 * or above the kind's limit, no items, a duplicate id), SR_ERR_NOMEM when
 * the parameter memory cannot be allocated or its size overflows.
 * Thread: any (the new model is the caller's). */
sr_err_t sr_model_create(sr_model_t **out, sr_model_kind_t kind, int dim, int32_t n_items,
                         const sr_str_t *item_ids, char *errstr, size_t errsz);
/* sr_model_create() for callers that need no error code: the new model, or
 * NULL with errstr set. */
sr_model_t *sr_model_new(sr_model_kind_t kind, int dim, int32_t n_items, const sr_str_t *item_ids,
                         char *errstr, size_t errsz);
void sr_model_destroy(sr_model_t *m); /* accepts NULL */

/* Lists the parameter blocks in a fixed, kind-defined order. Returns the
 * count; fills at most max entries of blocks (may be NULL with max 0). The
 * data pointers stay valid for the model's life. */
int sr_model_params(sr_model_t *m, sr_param_block_t *blocks, int max);

sr_model_kind_t sr_model_kind(const sr_model_t *m);
int sr_model_dim(const sr_model_t *m);
int32_t sr_model_n_items(const sr_model_t *m);
/* Number of floats of per-user state (d for the current kinds). */
int sr_model_state_size(const sr_model_t *m);

/* Version string stamped in every Recommendation. Borrowed. */
const char *sr_model_version(const sr_model_t *m);
void sr_model_set_version(sr_model_t *m, const char *version); /* copies */

/* Catalogue lookups. lookup returns -1 for unknown ids. item_id is borrowed
 * (valid for the model's life). */
int32_t sr_model_item_lookup(const sr_model_t *m, const char *id, size_t len);
sr_str_t sr_model_item_id(const sr_model_t *m, int32_t idx);

/* Initial state of a new user (writes state_size floats). */
void sr_model_state_init(const sr_model_t *m, float *h);

/* One event: updates h in place. item is a valid index (unknown items are
 * the caller's business: they update nothing). dt_ms = time since the user's
 * previous event (0 for the first). Thread-safe; allocation-free. */
void sr_model_step(const sr_model_t *m, float *h, int32_t item, sr_event_type_t type, float value,
                   int64_t dt_ms);

/* Scores n user states against the whole catalogue:
 * S[u * n_items + i] = score of item i for state H[u * state_size ...].
 * One sgemm. Thread-safe; allocation-free. */
void sr_model_score(const sr_model_t *m, const float *H, int n, float *S);

/* Scores n user states against the item range [i0, i0 + ni) only:
 * S[u * lds + j] = score of item i0 + j, 0 <= j < ni, for H as above
 * (lds >= ni: S may be a column block of a wider matrix). Same arithmetic
 * as sr_model_score (bias, then one sgemm with beta = 1 adding the dot
 * product), so a catalogue scored range by range equals one sr_model_score
 * call up to BLAS rounding: sgemm calls of different shapes are not
 * bit-identical on every kernel (OpenBLAS's Zen kernel and its small-matrix
 * path differ in the last bits; see model.c). score/ uses
 * this to keep a tile of scores in cache while it ranks it. Does nothing
 * when n <= 0, ni <= 0, lds < ni or the range leaves the catalogue.
 * Thread-safe; allocation-free. */
void sr_model_score_range(const sr_model_t *m, const float *H, int n, int32_t i0, int32_t ni,
                          float *S, size_t lds);

/* Sets the number of threads OpenBLAS uses for scoring in this process
 * (n >= 1; 0 leaves OpenBLAS's own default: OPENBLAS_NUM_THREADS or all
 * cores) and returns the count in effect. Thread: call before scoring
 * starts (process-wide setting). */
int sr_model_blas_threads(int n);

/* Bytes of parameter memory held. */
size_t sr_model_bytes(const sr_model_t *m);

#endif
