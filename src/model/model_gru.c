/*
 * The "gru" model kind (issue #3): a user is the hidden state h of a gated
 * recurrent cell that reads one event at a time,
 *
 *   x  = item_in[item] + type_emb[type] + gap_emb[gap(dt)]
 *   a  = x W + b                 (W: d x 3d, columns [r | z | n])
 *   c  = h U                     (U: d x 3d)
 *   r  = sigmoid(a_r + c_r)
 *   z  = sigmoid(a_z + c_z)
 *   n  = tanh(a_n + r * (c_n + bhn))
 *   h' = (1 - z) * n + z * h     (computed as n + z * (h - n))
 *
 * and is scored like every kind by model.c: S = h . item_out^T + item_bias.
 * docs/MODEL.md has the full write-up (gap buckets, training, figures).
 *
 * Why no BLAS in the step: serve calls it once per event for one user,
 * where a BLAS call costs more than the O(d^2) arithmetic. Both products
 * are axpy sweeps over the input index k (out[j] += x[k] * W[k][j]),
 * vectorised across j with register blocking (sr_gru_vecmat), so every
 * output is one fixed-order sum: the result is a pure function of the
 * inputs, whatever the call site (no reassociation, no thread count, no
 * libm: sigmoid and tanh are built on our own exp).
 *
 * Why the cell is exported: the trainer (train/train_gru.c) runs its
 * forward pass through sr_model_gru_cell() itself, on the (dropped-out)
 * input x, and asks for the gate activations it needs for back-propagation
 * through the optional cache argument. So the state the trainer optimises
 * and the state serve computes are the same bits, not merely close.
 *
 * Parameter layout (block order is part of the snapshot format):
 *   item_in   n_items x d   input embedding of an event's item
 *   item_out  n_items x d   output embedding (scoring)
 *   item_bias n_items       per-item score offset
 *   gru_w     d x 3d        input -> gates [r | z | n]
 *   gru_u     d x 3d        hidden -> gates [r | z | n]
 *   gru_b     3d            gate biases (input side)
 *   gru_bhn   d             hidden-side bias of the candidate (inside r *)
 *   type_emb  8 x d         event-type embedding VIEW..FORGET
 *   gap_emb   24 x d        time-gap bucket embedding (sr_model_gru_gap)
 *   hparams   4             [0] = 1: the input embedding is item_out (tied;
 *                           item_in unused), 0: untied; [1..3] reserved (0).
 *                           Any other value is refused (sr_gru_validate).
 *
 * Limits: d <= SR_GRU_MAX_DIM (256, model_int.h): the step keeps its
 * scratch on the stack (4 KiB at d = 256) and never allocates. Larger d is
 * refused by the layout (sr_model_create fails with SR_ERR_INVALID_ARG).
 *
 * Thread: step/state_init/cell are pure functions of (model, inputs): any
 * thread.
 */
#include <string.h>

#include "model/model_int.h"

#define SR_GRU_GAP_BUCKETS 24

enum {
  SR_GRU_IN = 0,
  SR_GRU_OUT,
  SR_GRU_BIAS,
  SR_GRU_W,
  SR_GRU_U,
  SR_GRU_B,
  SR_GRU_BHN,
  SR_GRU_TYPE,
  SR_GRU_GAP,
  SR_GRU_HPARAMS,
  SR_GRU_NBLOCKS
};

static int sr_gru_layout(int dim, int32_t n_items, const char **names, size_t *counts, int max) {
  static const char *const names_ordered[SR_GRU_NBLOCKS] = {
      [SR_GRU_IN] = "item_in",     [SR_GRU_OUT] = "item_out",  [SR_GRU_BIAS] = "item_bias",
      [SR_GRU_W] = "gru_w",        [SR_GRU_U] = "gru_u",       [SR_GRU_B] = "gru_b",
      [SR_GRU_BHN] = "gru_bhn",    [SR_GRU_TYPE] = "type_emb", [SR_GRU_GAP] = "gap_emb",
      [SR_GRU_HPARAMS] = "hparams"};
  if (dim < 1 || dim > SR_GRU_MAX_DIM) return 0;
  const size_t d = (size_t)dim, nd = (size_t)n_items * d;
  const size_t bc[SR_GRU_NBLOCKS] = {[SR_GRU_IN] = nd,
                                     [SR_GRU_OUT] = nd,
                                     [SR_GRU_BIAS] = (size_t)n_items,
                                     [SR_GRU_W] = d * 3 * d,
                                     [SR_GRU_U] = d * 3 * d,
                                     [SR_GRU_B] = 3 * d,
                                     [SR_GRU_BHN] = d,
                                     [SR_GRU_TYPE] = SR_EV__CNT * d,
                                     [SR_GRU_GAP] = SR_GRU_GAP_BUCKETS * d,
                                     [SR_GRU_HPARAMS] = 4};
  for (int i = 0; i < SR_GRU_NBLOCKS && i < max; i++) {
    names[i] = names_ordered[i];
    counts[i] = bc[i];
  }
  return SR_GRU_NBLOCKS;
}

static int sr_gru_state_size(int dim) { return dim; }

static void sr_gru_state_init(const sr_model_t *m, float *h) {
  memset(h, 0, (size_t)m->state_size * sizeof(float));
}

/* Time-gap bucket: 0 for dt <= 0 (a user's first event, or an event with
 * the same timestamp), else 1 + floor(log2(1 + dt seconds)) capped at 23:
 * 1 s -> 2, 1 min -> 6, 1 h -> 12, 1 day -> 17, 1 year -> 23. Integer-only,
 * so the bucket of a dt never depends on the libm. */
int sr_model_gru_gap(int64_t dt_ms) {
  if (dt_ms <= 0) return 0;
  uint64_t s = (uint64_t)(dt_ms / 1000) + 1; /* >= 1 */
  int b = 1;
  while (s > 1 && b < SR_GRU_GAP_BUCKETS - 1) {
    s >>= 1;
    b++;
  }
  return b;
}

const float *sr_model_gru_in_table(const sr_model_t *m) {
  return m->blocks[SR_GRU_HPARAMS].data[0] != 0.0f ? m->blocks[SR_GRU_OUT].data
                                                   : m->blocks[SR_GRU_IN].data;
}

/* x (d floats) = input embedding of one event. item must be valid. */
void sr_model_gru_input(const sr_model_t *m, int32_t item, sr_event_type_t type, int64_t dt_ms,
                        float *restrict x) {
  const int d = m->dim;
  const float *restrict e = sr_model_gru_in_table(m) + (size_t)item * (size_t)d;
  const float *restrict g = m->blocks[SR_GRU_GAP].data + (size_t)sr_model_gru_gap(dt_ms) * d;
  if ((unsigned)type < SR_EV__CNT) {
    const float *restrict t = m->blocks[SR_GRU_TYPE].data + (size_t)type * (size_t)d;
    for (int i = 0; i < d; i++)
      x[i] = e[i] + t[i] + g[i];
  } else {
    for (int i = 0; i < d; i++)
      x[i] = e[i] + g[i];
  }
}

/* ---- the cell's arithmetic ----
 * 16-float vectors (GCC/Clang vector extension). On x86-64 with GCC the
 * cell is compiled three times (AVX-512, AVX2, SSE2) and picked at load
 * time, with FMA contraction off: every clone does the same roundings in
 * the same order, so a state is the same bits on any x86-64 machine, and
 * the exp/sigmoid/tanh are ours (no libm: no dependency on its version). */
typedef float sr_gru_v16 __attribute__((vector_size(64)));
typedef int32_t sr_gru_v16i __attribute__((vector_size(64)));

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && !defined(SR_NO_CLONES)
#define SR_GRU_CLONES                                                                              \
  __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default"),                     \
                 optimize("fp-contract=off")))
#elif defined(__GNUC__) && !defined(__clang__)
#define SR_GRU_CLONES __attribute__((optimize("fp-contract=off")))
#else
#define SR_GRU_CLONES
#endif
#define SR_GRU_INLINE static inline __attribute__((always_inline))

/* lane-wise m ? a : b */
#define SR_GRU_SEL(m, a, b) ((sr_gru_v16)((((sr_gru_v16i)(a)) & (m)) | (((sr_gru_v16i)(b)) & ~(m))))

/* *px = exp(*px) lane-wise, arguments clamped to [-87, 88] (Cody-Waite
 * reduction, Cephes degree-6 polynomial: about 1 ulp). */
SR_GRU_INLINE void sr_gru_exp16(sr_gru_v16 *px) {
  const sr_gru_v16 lo = (sr_gru_v16){0} - 87.0f, hi = (sr_gru_v16){0} + 88.0f;
  sr_gru_v16 x = SR_GRU_SEL(*px < lo, lo, *px);
  x = SR_GRU_SEL(x > hi, hi, x);
  const sr_gru_v16 t = x * 1.44269504088896341f + 12582912.0f; /* round to nearest */
  const sr_gru_v16 n = t - 12582912.0f;
  sr_gru_v16 r = x - n * 0.693359375f;
  r = r - n * -2.12194440e-4f;
  sr_gru_v16 p = r * 1.9875691500e-4f + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * (r * r) + r + 1.0f;
  const sr_gru_v16i e = (__builtin_convertvector(n, sr_gru_v16i) + 127) << 23;
  *px = p * (sr_gru_v16)e;
}

/* unaligned 16-float load (a macro: no 64-byte vector return values) */
#define SR_GRU_LD(dst, p) memcpy(&(dst), (p), sizeof(sr_gru_v16))

/* out[j] = init[j] + v[0] M[0][j] + v[1] M[1][j] + ... + v[K-1] M[K-1][j]
 * for j < n (M row-major K x n; init NULL = 0). Every out[j] is the same
 * left-to-right sum whichever branch computes it (64-wide register block,
 * 16-wide, scalar), so the result never depends on n. */
SR_GRU_INLINE void sr_gru_vecmat(const float *restrict v, const float *restrict M, int K, int n,
                                 const float *restrict init, float *restrict out) {
  int j = 0;
  sr_gru_v16 w0, w1, w2, w3;
  for (; j + 64 <= n; j += 64) {
    sr_gru_v16 a0 = {0}, a1 = {0}, a2 = {0}, a3 = {0};
    if (init) {
      SR_GRU_LD(a0, init + j);
      SR_GRU_LD(a1, init + j + 16);
      SR_GRU_LD(a2, init + j + 32);
      SR_GRU_LD(a3, init + j + 48);
    }
    for (int k = 0; k < K; k++) {
      const float *restrict row = M + (size_t)k * n + j;
      const sr_gru_v16 s = (sr_gru_v16){0} + v[k];
      SR_GRU_LD(w0, row);
      SR_GRU_LD(w1, row + 16);
      SR_GRU_LD(w2, row + 32);
      SR_GRU_LD(w3, row + 48);
      a0 += s * w0;
      a1 += s * w1;
      a2 += s * w2;
      a3 += s * w3;
    }
    memcpy(out + j, &a0, sizeof(a0));
    memcpy(out + j + 16, &a1, sizeof(a1));
    memcpy(out + j + 32, &a2, sizeof(a2));
    memcpy(out + j + 48, &a3, sizeof(a3));
  }
  for (; j + 16 <= n; j += 16) {
    sr_gru_v16 a0 = {0};
    if (init) SR_GRU_LD(a0, init + j);
    for (int k = 0; k < K; k++) {
      SR_GRU_LD(w0, M + (size_t)k * n + j);
      a0 += ((sr_gru_v16){0} + v[k]) * w0;
    }
    memcpy(out + j, &a0, sizeof(a0));
  }
  for (; j < n; j++) {
    float a = init ? init[j] : 0.0f;
    for (int k = 0; k < K; k++)
      a += v[k] * M[(size_t)k * n + j];
    out[j] = a;
  }
}

/* Gates of 16 units from padded inputs (see sr_model_gru_cell). */
SR_GRU_INLINE void sr_gru_gates16(const float *ar, const float *cr, const float *az,
                                  const float *cz, const float *an, const float *cn,
                                  const float *bhn, float *h, float *cache, int d) {
  sr_gru_v16 r, z, n, hn, hv, t0, t1;
  SR_GRU_LD(t0, ar);
  SR_GRU_LD(t1, cr);
  r = (sr_gru_v16){0} - (t0 + t1);
  SR_GRU_LD(t0, az);
  SR_GRU_LD(t1, cz);
  z = (sr_gru_v16){0} - (t0 + t1);
  sr_gru_exp16(&r);
  sr_gru_exp16(&z);
  r = 1.0f / (r + 1.0f); /* sigmoid */
  z = 1.0f / (z + 1.0f);
  SR_GRU_LD(t0, cn);
  SR_GRU_LD(t1, bhn);
  hn = t0 + t1;
  SR_GRU_LD(t0, an);
  n = (sr_gru_v16){0} - 2.0f * (t0 + r * hn);
  sr_gru_exp16(&n);
  n = 2.0f / (n + 1.0f) - 1.0f; /* tanh(v) = 2 sigmoid(2v) - 1 */
  SR_GRU_LD(hv, h);
  const sr_gru_v16 hnew = n + z * (hv - n);
  memcpy(h, &hnew, sizeof(hnew));
  if (cache) {
    memcpy(cache, &r, sizeof(r));
    memcpy(cache + d, &z, sizeof(z));
    memcpy(cache + 2 * d, &n, sizeof(n));
    memcpy(cache + 3 * d, &hn, sizeof(hn));
  }
}

/* The cell: h <- GRU(h, x) in place. cache, when not NULL, receives the
 * activations back-propagation needs (4d floats: r, z, n, c_n + bhn). */
SR_GRU_CLONES void sr_model_gru_cell(const sr_model_t *m, const float *restrict x,
                                     float *restrict h, float *restrict cache) {
  const int d = m->dim, d3 = 3 * d;
  const float *restrict bhn = m->blocks[SR_GRU_BHN].data;
  float a[3 * SR_GRU_MAX_DIM], c[3 * SR_GRU_MAX_DIM];

  sr_gru_vecmat(x, m->blocks[SR_GRU_W].data, d, d3, m->blocks[SR_GRU_B].data, a);
  sr_gru_vecmat(h, m->blocks[SR_GRU_U].data, d, d3, NULL, c);
  int i = 0;
  for (; i + 16 <= d; i += 16)
    sr_gru_gates16(a + i, c + i, a + d + i, c + d + i, a + 2 * d + i, c + 2 * d + i, bhn + i, h + i,
                   cache ? cache + i : NULL, d);
  if (i < d) { /* tail: the same vector code on zero-padded copies */
    const int t = d - i;
    float p[7][16], hc[16], cc[4 * 16];
    memset(p, 0, sizeof(p));
    memset(hc, 0, sizeof(hc));
    const float *src[7] = {a + i,         c + i,         a + d + i, c + d + i,
                           a + 2 * d + i, c + 2 * d + i, bhn + i};
    for (int q = 0; q < 7; q++)
      memcpy(p[q], src[q], (size_t)t * sizeof(float));
    memcpy(hc, h + i, (size_t)t * sizeof(float));
    sr_gru_gates16(p[0], p[1], p[2], p[3], p[4], p[5], p[6], hc, cache ? cc : NULL, 16);
    memcpy(h + i, hc, (size_t)t * sizeof(float));
    if (cache)
      for (int q = 0; q < 4; q++)
        memcpy(cache + q * d + i, cc + q * 16, (size_t)t * sizeof(float));
  }
}

static void sr_gru_step(const sr_model_t *m, float *h, int32_t item, sr_event_type_t type,
                        float value, int64_t dt_ms) {
  (void)value;
  if (item < 0 || item >= m->n_items) return;
  float x[SR_GRU_MAX_DIM];
  sr_model_gru_input(m, item, type, dt_ms, x);
  sr_model_gru_cell(m, x, h, NULL);
}

/* hparams: [0] is the tying switch, 0 or 1 exactly (the trainer writes one
 * of the two); [1..3] are reserved and must be 0 so that a future meaning
 * can never be misread by this build. The learned blocks only need to be
 * finite and bounded (sr_model_check): the gates saturate, h stays in
 * [-1, 1]. */
static int sr_gru_validate(const sr_model_t *m, char *errstr, size_t errsz) {
  const float *hp = m->blocks[SR_GRU_HPARAMS].data;
  if (hp[0] != 0.0f && hp[0] != 1.0f) {
    sr_seterr(errstr, errsz, SR_ERR_MODEL, "block %d '%s' [0]: tying switch %g is neither 0 nor 1",
              SR_GRU_HPARAMS, m->blocks[SR_GRU_HPARAMS].name, (double)hp[0]);
    return -1;
  }
  for (int i = 1; i < 4; i++)
    if (hp[i] != 0.0f) {
      sr_seterr(errstr, errsz, SR_ERR_MODEL, "block %d '%s' [%d]: reserved, must be 0 (is %g)",
                SR_GRU_HPARAMS, m->blocks[SR_GRU_HPARAMS].name, i, (double)hp[i]);
      return -1;
    }
  return 0;
}

const sr_model_ops_t sr_model_ops_gru = {
    .kind = SR_MODEL_GRU,
    .name = "gru",
    .layout = sr_gru_layout,
    .state_size = sr_gru_state_size,
    .state_init = sr_gru_state_init,
    .step = sr_gru_step,
    .validate = sr_gru_validate,
};
