/*
 * model: the kind-independent half of every model.
 *
 * Owns the kind table, the parameter arena, the item catalogue and scoring.
 * A kind (model_<kind>.c) only describes its parameter layout and its
 * per-event step; everything else is here, so serving, snapshots and the
 * trainers treat all kinds alike.
 *
 * Why one arena: all parameter blocks live in one 64-byte-aligned
 * allocation in layout order (each block starts on a 64-byte boundary, so
 * every block is SIMD/BLAS friendly). Snapshots, optimiser state and "keep
 * the best epoch" copies are then one memcpy or one parallel array of the
 * same shape (train/ relies on this).
 *
 * Why one sgemm in score: a micro-batch of n user states scores against the
 * whole catalogue as S = H . item_out^T + item_bias. The bias is copied into
 * every row of S first and the sgemm runs with beta = 1, so the whole
 * micro-batch is a single level-3 BLAS call (n sgemv calls would re-read
 * item_out n times). sr_model_score_range does the same for a column block
 * of S (an item range): score/ tiles the catalogue with it so that the
 * bias copy, the sgemm's read-modify-write of S and the top-K scan all hit
 * cache instead of streaming an n x n_items matrix through memory three
 * times (docs/PERFORMANCE.md). Every score is bias + the same dot product
 * either way: splitting the item dimension does not change the order in
 * which most of BLAS's kernels sum over the state, so tiled and untiled
 * scores agree, but not bit for bit on every CPU: OpenBLAS's Zen kernel (AMD
 * Zen 4 here) and its small-matrix kernel (M*N*K <= 1e6) sum in another
 * order, so tests/unit/0040-model compares within a relative 1e-5 and
 * score/ keeps its tiles far above the small-matrix size.
 *
 * Each kind lives in its own model_<kind>.c and is listed in the kind table.
 *
 * Thread: sr_model_new/destroy/set_version on one thread; everything else
 * on a built model is read-only and may run on any number of threads.
 */
#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/model_int.h"

/* Kind table: index = kind. NULL entries are kinds not built in. */
static const sr_model_ops_t *sr_model_kind_ops(int kind) {
  switch (kind) {
  case SR_MODEL_DECAY: return &sr_model_ops_decay;
  case SR_MODEL_GRU: return &sr_model_ops_gru;
  default: return NULL;
  }
}

static const char *const sr_model_kind_names[] = {
    [SR_MODEL_DECAY] = "decay",
    [SR_MODEL_GRU] = "gru",
};

const char *sr_model_kind_name(sr_model_kind_t k) {
  if ((int)k <= 0 || (size_t)k >= SR_ARRAY_SIZE(sr_model_kind_names) || !sr_model_kind_names[k])
    return "?";
  return sr_model_kind_names[k];
}

int sr_model_kind_parse(const char *s) {
  if (!s) return -1;
  for (size_t k = 1; k < SR_ARRAY_SIZE(sr_model_kind_names); k++)
    if (sr_model_kind_names[k] && !strcasecmp(s, sr_model_kind_names[k])) return (int)k;
  return -1;
}

/* Floats per 64-byte line: every block is padded to a multiple of this. */
#define SR_MODEL_ALIGN_FLOATS 16

sr_err_t sr_model_create(sr_model_t **mp, sr_model_kind_t kind, int dim, int32_t n_items,
                         const sr_str_t *item_ids, char *errstr, size_t errsz) {
  const sr_model_ops_t *ops = sr_model_kind_ops((int)kind);
  const char *names[SR_MODEL_MAX_BLOCKS];
  size_t counts[SR_MODEL_MAX_BLOCKS];
  sr_model_t *m = NULL;
  sr_err_t err = SR_OK;

  *mp = NULL;
  if ((int)kind <= 0 || (size_t)kind >= SR_ARRAY_SIZE(sr_model_kind_names))
    return sr_seterr(errstr, errsz, SR_ERR_INVALID_ARG, "unknown model kind %d", (int)kind);
  if (!ops)
    return sr_seterr(errstr, errsz, SR_ERR_INVALID_ARG,
                     "model kind '%s' is not built into this binary", sr_model_kind_name(kind));
  if (dim < 1)
    return sr_seterr(errstr, errsz, SR_ERR_INVALID_ARG, "model dim must be >= 1 (got %d)", dim);
  if (n_items < 1)
    return sr_seterr(errstr, errsz, SR_ERR_INVALID_ARG, "model needs at least one item (got %ld)",
                     (long)n_items);
  if (!item_ids) return sr_seterr(errstr, errsz, SR_ERR_INVALID_ARG, "model item ids missing");
  /* A kind refuses dimensions it cannot run (GRU: d > 256) with no blocks. */
  int nb = ops->layout(dim, n_items, names, counts, SR_MODEL_MAX_BLOCKS);
  if (nb < 1 || nb > SR_MODEL_MAX_BLOCKS)
    return sr_seterr(errstr, errsz, SR_ERR_INVALID_ARG, "%s: bad parameter layout (%d blocks)",
                     ops->name, nb);
  int ss = ops->state_size(dim);

  /* Arena size with per-block padding; refuse sizes that overflow size_t. */
  size_t total = 0;
  const size_t maxf = SIZE_MAX / sizeof(float) - SR_MODEL_ALIGN_FLOATS;
  for (int i = 0; i < nb; i++) {
    size_t c = counts[i];
    if (c > maxf - total)
      return sr_seterr(errstr, errsz, SR_ERR_NOMEM,
                       "%s model d=%d with %ld items: parameter size overflows", ops->name, dim,
                       (long)n_items);
    c = (c + SR_MODEL_ALIGN_FLOATS - 1) / SR_MODEL_ALIGN_FLOATS * SR_MODEL_ALIGN_FLOATS;
    total += c;
  }
  if (total == 0) total = SR_MODEL_ALIGN_FLOATS;

  m = sr_calloc(1, sizeof(*m));
  m->ops = ops;
  m->dim = dim;
  m->state_size = ss;
  m->n_items = n_items;
  /* Parameters first: a catalogue too big for memory fails here, before
   * the (aborting) small-allocation wrappers see it. */
  m->arena = aligned_alloc(64, total * sizeof(float));
  if (!m->arena) {
    err = sr_seterr(errstr, errsz, SR_ERR_NOMEM,
                    "%s model d=%d with %ld items: cannot allocate %zu bytes of parameters",
                    ops->name, dim, (long)n_items, total * sizeof(float));
    goto fail;
  }
  memset(m->arena, 0, total * sizeof(float));
  m->arena_floats = total;
  m->n_blocks = nb;
  size_t off = 0;
  for (int i = 0; i < nb; i++) {
    m->blocks[i].name = names[i];
    m->blocks[i].data = m->arena + off;
    m->blocks[i].count = counts[i];
    off += (counts[i] + SR_MODEL_ALIGN_FLOATS - 1) / SR_MODEL_ALIGN_FLOATS * SR_MODEL_ALIGN_FLOATS;
  }
  sr_param_block_t *out = sr_model_block(m, "item_out");
  sr_param_block_t *bias = sr_model_block(m, "item_bias");
  if (!out || !bias || out->count != (size_t)n_items * (size_t)ss ||
      bias->count != (size_t)n_items) {
    err = sr_seterr(errstr, errsz, SR_ERR_INVALID_ARG,
                    "%s: layout lacks item_out (n_items x state) / item_bias (n_items)", ops->name);
    goto fail;
  }
  m->item_out = out->data;
  m->item_bias = bias->data;

  m->items = sr_strmap_new((size_t)n_items);
  for (int32_t i = 0; i < n_items; i++) {
    int inserted = 0;
    sr_str_t k = item_ids[i].ptr ? item_ids[i] : sr_str_make("", 0);
    int32_t id = sr_strmap_intern(m->items, k.ptr, k.len, &inserted);
    if (!inserted) {
      err = sr_seterr(errstr, errsz, SR_ERR_INVALID_ARG,
                      "duplicate item id '%.*s' at index %ld (first at %ld)",
                      (int)SR_MIN(k.len, 80), k.ptr, (long)i, (long)id);
      goto fail;
    }
  }
  snprintf(m->version, sizeof(m->version), "%s-d%d-untrained", ops->name, dim);
  *mp = m;
  return SR_OK;
fail:
  sr_model_destroy(m);
  return err;
}

sr_model_t *sr_model_new(sr_model_kind_t kind, int dim, int32_t n_items, const sr_str_t *item_ids,
                         char *errstr, size_t errsz) {
  sr_model_t *m = NULL;
  sr_model_create(&m, kind, dim, n_items, item_ids, errstr, errsz);
  return m;
}

void sr_model_destroy(sr_model_t *m) {
  if (!m) return;
  sr_strmap_destroy(m->items);
  free(m->arena);
  sr_free(m);
}

int sr_model_params(sr_model_t *m, sr_param_block_t *blocks, int max) {
  for (int i = 0; i < m->n_blocks && i < max; i++)
    blocks[i] = m->blocks[i];
  return m->n_blocks;
}

/* The kind's ranges first (their messages say what the value means, e.g.
 * "decay factor 1e+30 outside (0, 1]"), then one pass per block; the first
 * bad value is reported (a broken model usually has many, the first is
 * enough to find the cause). */
sr_err_t sr_model_check(const sr_model_t *m, char *errstr, size_t errsz) {
  if (m->ops->validate && m->ops->validate(m, errstr, errsz) != 0) return SR_ERR_MODEL;
  for (int b = 0; b < m->n_blocks; b++) {
    const sr_param_block_t *bl = &m->blocks[b];
    for (size_t i = 0; i < bl->count; i++) {
      const float v = bl->data[i];
      if (!isfinite(v))
        return sr_seterr(errstr, errsz, SR_ERR_MODEL,
                         "block %d '%s' [%zu] is %g (parameters must be finite)", b, bl->name, i,
                         (double)v);
      if (fabsf(v) > SR_MODEL_PARAM_MAX)
        return sr_seterr(errstr, errsz, SR_ERR_MODEL,
                         "block %d '%s' [%zu] is %g (|parameter| must be <= %g)", b, bl->name, i,
                         (double)v, (double)SR_MODEL_PARAM_MAX);
    }
  }
  return SR_OK;
}

sr_param_block_t *sr_model_block(sr_model_t *m, const char *name) {
  for (int i = 0; i < m->n_blocks; i++)
    if (!strcmp(m->blocks[i].name, name)) return &m->blocks[i];
  return NULL;
}

sr_model_kind_t sr_model_kind(const sr_model_t *m) { return m->ops->kind; }
int sr_model_dim(const sr_model_t *m) { return m->dim; }
int32_t sr_model_n_items(const sr_model_t *m) { return m->n_items; }
int sr_model_state_size(const sr_model_t *m) { return m->state_size; }

const char *sr_model_version(const sr_model_t *m) { return m->version; }

void sr_model_set_version(sr_model_t *m, const char *version) {
  snprintf(m->version, sizeof(m->version), "%s", version ? version : "");
}

int32_t sr_model_item_lookup(const sr_model_t *m, const char *id, size_t len) {
  if (!id) return -1;
  return sr_strmap_find(m->items, id, len);
}

sr_str_t sr_model_item_id(const sr_model_t *m, int32_t idx) {
  if (idx < 0 || idx >= m->n_items) return sr_str_make("", 0);
  return sr_strmap_key(m->items, idx);
}

void sr_model_state_init(const sr_model_t *m, float *h) { m->ops->state_init(m, h); }

void sr_model_step(const sr_model_t *m, float *h, int32_t item, sr_event_type_t type, float value,
                   int64_t dt_ms) {
  m->ops->step(m, h, item, type, value, dt_ms);
}

void sr_model_score(const sr_model_t *m, const float *H, int n, float *S) {
  sr_model_score_range(m, H, n, 0, m->n_items, S, (size_t)m->n_items);
}

int sr_model_blas_threads(int n) {
  if (n > 0) openblas_set_num_threads(n);
  return openblas_get_num_threads();
}

void sr_model_score_range(const sr_model_t *m, const float *H, int n, int32_t i0, int32_t ni,
                          float *S, size_t lds) {
  if (n <= 0 || ni <= 0 || i0 < 0 || ni > m->n_items - i0 || lds < (size_t)ni) return;
  const size_t ss = (size_t)m->state_size;
  for (int u = 0; u < n; u++)
    memcpy(S + (size_t)u * lds, m->item_bias + i0, (size_t)ni * sizeof(float));
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, (blasint)ni, (blasint)ss, 1.0f, H,
              (blasint)ss, m->item_out + (size_t)i0 * ss, (blasint)ss, 1.0f, S, (blasint)lds);
}

size_t sr_model_bytes(const sr_model_t *m) {
  return m->arena_floats * sizeof(float) + (m->items ? sr_strmap_bytes(m->items) : 0);
}
