/*
 * Trainer of the "decay" kind (model/model_decay.c):
 *
 *   h_0 = 0,  h_{t+1} = a h_t + w_t x_t     (x_t = item_in[item_t], w_t = type_w[type_t])
 *   loss = mean over t >= 1 of cross-entropy(softmax(h_t . item_out^T + item_bias), item_t)
 *
 * i.e. next-item prediction with a full softmax over the catalogue; the
 * first event of a user (empty state) predicts nothing.
 *
 * Work unit: a segment = up to SR_DECAY_SEG consecutive positions of one
 * user. Segments are shuffled every epoch and packed into mini-batches of
 * at most conf->batch positions. For a batch (sr_decay_batch):
 *   forward   per segment [t0, t1): h_t0 by sr_model_step over events
 *             0..t0-1 with the current parameters (the real step function,
 *             so training sees exactly the states serve will compute), then
 *             one row of H per position;
 *   logits    L = H . item_out^T + item_bias (sr_model_score's arithmetic,
 *             sgemm per item slice), fused softmax cross-entropy;
 *   grads     item_out: dlogits^T H (sgemm), item_bias: column sums
 *             (sgemv), dH = dlogits . item_out (sgemm), with the softmax
 *             normalisation folded into the B x d operands;
 *   recursion reverse scan r_t = a r_{t+1} + dH_t; event t-1 receives
 *             w_{t-1} r_t in item_in. Below t0 r only decays; the scan stops
 *             once a^k < 1e-12 (far below float resolution of what was
 *             added; avoids denormals on long histories).
 * Adam (train.c) updates item_in, item_out and item_bias. type_w and the
 * decay factor a are fixed: type weights are a product decision (what a
 * CART is worth against a VIEW), a is tuned (SR_DECAY_A).
 *
 * Threads: every phase is split into conf->threads parts by this file, and
 * OpenBLAS is pinned to one thread for the duration (restored after).
 * OpenBLAS's own workers spin (sched_yield) between calls; on two cores
 * they took a third of the CPU and starved the softmax and Adam phases, and
 * under contention a descheduled BLAS worker stalls every call.
 *
 * Determinism: the RNG is seeded from conf->seed; segment order, batch
 * packing and the gradient scatter are sequential; parallel parts split
 * outputs, never a reduction. For a fixed thread count a run is
 * bit-reproducible.
 */
#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "train/train_util.h"

/* Decay factor of the recurrence. Tuned on MovieLens ml-latest-small
 * (leave-one-out over all 610 users, full ranking, lr 0.01, best epoch):
 * NDCG@10 0.066 at a = 0.5, about 0.07 at 0.8, 0.056 at 0.9 (the standard
 * error at 610 users is about 0.01). */
#define SR_DECAY_A 0.8f
/* Positions per segment. */
#define SR_DECAY_SEG 32
/* Logit buffer cap (floats): the batch shrinks for huge catalogues. */
#define SR_DECAY_MAX_LOGITS ((int64_t)1 << 26)
/* Initial embedding standard deviation. */
#define SR_DECAY_INIT_SD 0.1f

static const float sr_decay_type_w[SR_EV__CNT] = {
    [SR_EV_VIEW] = 0.5f, [SR_EV_CLICK] = 1.0f,      [SR_EV_CART] = 1.5f,  [SR_EV_PURCHASE] = 2.0f,
    [SR_EV_RATE] = 1.0f, [SR_EV_IMPRESSION] = 0.0f, [SR_EV_SKIP] = -0.5f, [SR_EV_FORGET] = 0.0f,
};

typedef struct {
  int32_t user, t0, t1; /* positions [t0, t1), relative to the user's first event */
} sr_seg_t;

/* Everything one mini-batch needs; buffers sized for B positions. */
typedef struct {
  sr_model_t *m;
  const sr_dataset_t *ds;
  int B, threads;
  float a;
  float *in, *out, *bias, *tw;  /* parameter blocks */
  float *g_in, *g_out, *g_bias; /* gradient blocks (arena-shaped buffer) */
  float *H, *Hs, *dH, *L, *w, *r;
  int32_t *targets;
  int *seg_row; /* per segment of the batch (at most B) */
} sr_decay_ctx_t;

static inline int64_t sr_dt(const sr_dataset_t *ds, int64_t base, int64_t e) {
  return e > base ? ds->ev_ts[e] - ds->ev_ts[e - 1] : 0;
}

/* ---- one mini-batch, in parallel phases ----
 * Work is split into `threads` fixed parts: items [N t/T, N (t+1)/T) for
 * the logits, item_out and item_bias gradients, rows for dH, segments for
 * the forward states. Every output element is computed by the same code
 * over the same reduction order whatever the split, and OpenBLAS runs
 * single-threaded inside each part (sr_train_decay pins it to 1 thread):
 * no BLAS worker threads spin between calls, and the softmax and Adam
 * phases get the cores to themselves. */
typedef struct {
  sr_decay_ctx_t *c;
  const sr_seg_t *segs;
  const int *seg_row; /* first row of each segment */
  int64_t n_segs;
  int rows, parts;
} sr_decay_job_t;

static void sr_decay_forward_part(void *arg, int64_t p0, int64_t p1) {
  const sr_decay_job_t *j = arg;
  const sr_decay_ctx_t *c = j->c;
  const sr_dataset_t *ds = c->ds;
  const sr_model_t *m = c->m;
  const int d = m->dim;
  for (int64_t p = p0; p < p1; p++)
    for (int64_t k = j->n_segs * p / j->parts; k < j->n_segs * (p + 1) / j->parts; k++) {
      const sr_seg_t *sg = &j->segs[k];
      const int64_t base = ds->user_off[sg->user];
      int row = j->seg_row[k];
      float *h = c->H + (size_t)row * d;
      sr_model_state_init(m, h);
      for (int64_t e = base; e < base + sg->t0; e++)
        sr_model_step(m, h, ds->ev_item[e], (sr_event_type_t)ds->ev_type[e], ds->ev_value[e],
                      sr_dt(ds, base, e));
      for (int32_t t = sg->t0; t < sg->t1; t++, row++) {
        const int64_t e = base + t;
        c->targets[row] = ds->ev_item[e];
        if (t + 1 < sg->t1) { /* next row = this row stepped by event t */
          float *hn = c->H + (size_t)(row + 1) * d;
          memcpy(hn, c->H + (size_t)row * d, (size_t)d * sizeof(float));
          sr_model_step(m, hn, ds->ev_item[e], (sr_event_type_t)ds->ev_type[e], ds->ev_value[e],
                        sr_dt(ds, base, e));
        }
      }
    }
}

/* L[:, items] = bias[items] + H . item_out[items]^T: sr_model_score's
 * arithmetic (bias copied in, sgemm with beta = 1) on a column slice. */
static void sr_decay_logits_part(void *arg, int64_t p0, int64_t p1) {
  const sr_decay_job_t *j = arg;
  const sr_decay_ctx_t *c = j->c;
  const int d = c->m->dim;
  const int32_t N = c->m->n_items;
  for (int64_t p = p0; p < p1; p++) {
    const int32_t n0 = (int32_t)(N * p / j->parts), n1 = (int32_t)(N * (p + 1) / j->parts);
    if (n1 <= n0) continue;
    for (int r = 0; r < j->rows; r++)
      memcpy(c->L + (size_t)r * N + n0, c->bias + n0, (size_t)(n1 - n0) * sizeof(float));
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, j->rows, n1 - n0, d, 1.0f, c->H, d,
                c->out + (size_t)n0 * d, d, 1.0f, c->L + n0, N);
  }
}

/* item_out / item_bias gradients of an item slice, dH of a row slice. */
static void sr_decay_grads_part(void *arg, int64_t p0, int64_t p1) {
  const sr_decay_job_t *j = arg;
  const sr_decay_ctx_t *c = j->c;
  const int d = c->m->dim;
  const int32_t N = c->m->n_items;
  for (int64_t p = p0; p < p1; p++) {
    const int32_t n0 = (int32_t)(N * p / j->parts), n1 = (int32_t)(N * (p + 1) / j->parts);
    if (n1 > n0) {
      /* item_out: E^T Hs; item_bias: E^T w */
      cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, n1 - n0, d, j->rows, 1.0f, c->L + n0, N,
                  c->Hs, d, 0.0f, c->g_out + (size_t)n0 * d, d);
      cblas_sgemv(CblasRowMajor, CblasTrans, j->rows, n1 - n0, 1.0f, c->L + n0, N, c->w, 1, 0.0f,
                  c->g_bias + n0, 1);
    }
    const int r0 = (int)(j->rows * p / j->parts), r1 = (int)(j->rows * (p + 1) / j->parts);
    if (r1 > r0) /* E out (the row scale and one-hot part follow) */
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, r1 - r0, d, N, 1.0f,
                  c->L + (size_t)r0 * N, N, c->out, d, 0.0f, c->dH + (size_t)r0 * d, d);
  }
}

/* Loss (sum over the batch's positions) and gradients of the mean loss for
 * the segments segs[0..n) (at most B positions in all). */
static double sr_decay_batch(sr_decay_ctx_t *c, const sr_seg_t *segs, int64_t n) {
  const sr_dataset_t *ds = c->ds;
  const int d = c->m->dim;
  const int32_t N = c->m->n_items;
  const float a = c->a;
  int rows = 0;
  for (int64_t k = 0; k < n; k++) {
    c->seg_row[k] = rows;
    rows += segs[k].t1 - segs[k].t0;
  }
  if (rows == 0) return 0;
  const int parts = SR_MAX(1, SR_MIN(c->threads, rows));
  sr_decay_job_t job = {c, segs, c->seg_row, n, rows, parts};
  /* forward: states (sr_model_step) and logits */
  sr_train_parallel(parts, parts, sr_decay_forward_part, &job);
  sr_train_parallel(parts, parts, sr_decay_logits_part, &job);
  /* The softmax leaves E = exp(L - max) and 1/sum per row; with s = 1/rows
   * the gradient of the mean loss is dlogits = s (diag(inv) E - Y).
   * Instead of rescaling the B x N matrix, the row scale goes into the
   * small operands (H, dH: B x d) and the one-hot part is B sparse row
   * updates. */
  double loss = sr_train_softmax_exp(c->L, rows, N, c->targets, c->w, c->threads);
  const float s = 1.0f / (float)rows;
  for (int i = 0; i < rows; i++) {
    c->w[i] *= s; /* row weight s / sum_r */
    const float *h = c->H + (size_t)i * d;
    float *hs = c->Hs + (size_t)i * d;
    for (int k = 0; k < d; k++)
      hs[k] = c->w[i] * h[k];
  }
  sr_train_parallel(parts, parts, sr_decay_grads_part, &job);
  for (int i = 0; i < rows; i++) { /* - s Y^T H, - s Y^T 1, dH = w E out - s out[target] */
    const int32_t t = c->targets[i];
    const float *h = c->H + (size_t)i * d, *o = c->out + (size_t)t * d;
    float *dh = c->dH + (size_t)i * d, *go = c->g_out + (size_t)t * d;
    for (int k = 0; k < d; k++) {
      dh[k] = c->w[i] * dh[k] - s * o[k];
      go[k] -= s * h[k];
    }
    c->g_bias[t] -= s;
  }
  /* back through the recursion, one segment at a time */
  memset(c->g_in, 0, (size_t)N * d * sizeof(float));
  float *r = c->r;
  for (int64_t k = 0; k < n; k++) {
    const sr_seg_t *sg = &segs[k];
    const int64_t base = ds->user_off[sg->user];
    const int row = c->seg_row[k];
    memset(r, 0, (size_t)d * sizeof(float));
    float fac = 1.0f;
    for (int32_t t = sg->t1 - 1; t >= 1; t--) {
      if (t >= sg->t0) {
        const float *g = c->dH + (size_t)(row + (t - sg->t0)) * d;
        for (int i = 0; i < d; i++)
          r[i] = a * r[i] + g[i];
      } else {
        fac *= a;
        if (fabsf(fac) < 1e-12f) break;
        for (int i = 0; i < d; i++)
          r[i] *= a;
      }
      const int64_t e = base + t - 1;
      const uint8_t ty = ds->ev_type[e];
      const float w = ty < SR_EV__CNT ? c->tw[ty] : 0.0f;
      if (w == 0.0f) continue;
      float *gi = c->g_in + (size_t)ds->ev_item[e] * d;
      for (int i = 0; i < d; i++)
        gi[i] += w * r[i];
    }
  }
  return loss;
}

/* Sets up ctx for batches of up to B positions; grad is an arena-shaped
 * buffer (m->arena_floats). */
static sr_err_t sr_decay_ctx_init(sr_decay_ctx_t *c, sr_model_t *m, const sr_dataset_t *ds, int B,
                                  int threads, float *grad, char *errstr, size_t errsz) {
  memset(c, 0, sizeof(*c));
  sr_param_block_t *b_in = sr_model_block(m, "item_in"), *b_out = sr_model_block(m, "item_out"),
                   *b_bias = sr_model_block(m, "item_bias"), *b_tw = sr_model_block(m, "type_w"),
                   *b_hp = sr_model_block(m, "hparams");
  if (m->ops->kind != SR_MODEL_DECAY || !b_in || !b_out || !b_bias || !b_tw || !b_hp ||
      b_tw->count != SR_EV__CNT)
    return sr_seterr(errstr, errsz, SR_ERR_MODEL, "train decay: not a decay model");
  const int d = m->dim;
  c->m = m;
  c->ds = ds;
  c->B = B;
  c->threads = threads;
  c->a = b_hp->data[0];
  c->in = b_in->data;
  c->out = b_out->data;
  c->bias = b_bias->data;
  c->tw = b_tw->data;
  c->g_in = grad + (c->in - m->arena);
  c->g_out = grad + (c->out - m->arena);
  c->g_bias = grad + (c->bias - m->arena);
  c->H = malloc((size_t)B * d * sizeof(float));
  c->dH = malloc((size_t)B * d * sizeof(float));
  c->L = malloc((size_t)B * (size_t)m->n_items * sizeof(float));
  c->Hs = malloc((size_t)B * d * sizeof(float));
  c->w = malloc((size_t)B * sizeof(float));
  c->r = malloc((size_t)d * sizeof(float));
  c->targets = malloc((size_t)B * sizeof(int32_t));
  c->seg_row = malloc((size_t)B * sizeof(int));
  if (!c->H || !c->Hs || !c->dH || !c->L || !c->w || !c->r || !c->targets || !c->seg_row)
    return sr_seterr(errstr, errsz, SR_ERR_NOMEM,
                     "train decay: cannot allocate buffers for %d x %ld logits", B,
                     (long)m->n_items);
  return SR_OK;
}

static void sr_decay_ctx_free(sr_decay_ctx_t *c) {
  free(c->H);
  free(c->dH);
  free(c->L);
  free(c->Hs);
  free(c->w);
  free(c->r);
  free(c->targets);
  free(c->seg_row);
  memset(c, 0, sizeof(*c));
}

/* Segments of at most seg_len positions over every user's training events
 * [user_off[u], end[u]). Returns a new array (sr_free) and its size. */
static sr_seg_t *sr_decay_segments(const sr_dataset_t *ds, const int64_t *end, int seg_len,
                                   int64_t *n_out) {
  int64_t n = 0;
  for (int32_t u = 0; u < ds->n_users; u++) {
    int64_t len = end[u] - ds->user_off[u];
    if (len > 1) n += (len - 1 + seg_len - 1) / seg_len;
  }
  sr_seg_t *segs = sr_malloc((size_t)(n > 0 ? n : 1) * sizeof(*segs));
  int64_t k = 0;
  for (int32_t u = 0; u < ds->n_users; u++) {
    int32_t len = (int32_t)(end[u] - ds->user_off[u]);
    for (int32_t t = 1; t < len; t += seg_len)
      segs[k++] = (sr_seg_t){u, t, SR_MIN(len, t + seg_len)};
  }
  *n_out = n;
  return segs;
}

sr_err_t sr_train_decay_loss_grad(sr_model_t *m, const sr_dataset_t *ds, float *grad, double *loss,
                                  char *errstr, size_t errsz) {
  sr_decay_ctx_t c;
  int64_t n_segs = 0;
  int64_t *end = sr_malloc((size_t)(ds->n_users > 0 ? ds->n_users : 1) * sizeof(int64_t));
  for (int32_t u = 0; u < ds->n_users; u++)
    end[u] = ds->user_off[u + 1];
  sr_seg_t *segs = sr_decay_segments(ds, end, SR_DECAY_SEG, &n_segs);
  int64_t P = 0;
  for (int64_t k = 0; k < n_segs; k++)
    P += segs[k].t1 - segs[k].t0;
  memset(grad, 0, m->arena_floats * sizeof(float));
  sr_err_t err = sr_decay_ctx_init(&c, m, ds, (int)SR_MAX(P, 1), 1, grad, errstr, errsz);
  if (err == SR_OK) *loss = P ? sr_decay_batch(&c, segs, n_segs) / (double)P : 0;
  sr_decay_ctx_free(&c);
  sr_free(segs);
  sr_free(end);
  return err;
}

sr_err_t sr_train_decay(const sr_dataset_t *ds, const sr_train_conf_t *conf, sr_model_t *m,
                        sr_snapshot_info_t *info, char *errstr, size_t errsz) {
  sr_err_t err = SR_OK;
  const int32_t N = m->n_items;
  const int threads = sr_train_threads(conf);
  sr_train_split_t split;
  sr_train_best_t best;
  sr_adam_t adam;
  sr_train_progress_t prog;
  sr_decay_ctx_t c;
  int blas_threads = 0;
  memset(&best, 0, sizeof(best));
  memset(&adam, 0, sizeof(adam));
  memset(&c, 0, sizeof(c));
  sr_seg_t *segs = NULL;
  float *grad = NULL;
  int64_t n_segs = 0;
  sr_train_split_init(&split, ds, conf->valid_frac, conf->seed);

  int B = conf->batch;
  if ((int64_t)B * N > SR_DECAY_MAX_LOGITS) B = (int)SR_MAX(1, SR_DECAY_MAX_LOGITS / N);
  grad = aligned_alloc(64, m->arena_floats * sizeof(float));
  if (!grad) {
    err = sr_seterr(errstr, errsz, SR_ERR_NOMEM, "train decay: cannot allocate %zu bytes",
                    m->arena_floats * sizeof(float));
    goto out;
  }
  memset(grad, 0, m->arena_floats * sizeof(float));
  /* fixed parameters first: the context reads a from hparams */
  sr_param_block_t *b_tw = sr_model_block(m, "type_w"), *b_hp = sr_model_block(m, "hparams");
  if (!b_tw || !b_hp || b_tw->count != SR_EV__CNT) {
    err = sr_seterr(errstr, errsz, SR_ERR_MODEL, "train decay: not a decay model");
    goto out;
  }
  memcpy(b_tw->data, sr_decay_type_w, sizeof(sr_decay_type_w));
  b_hp->data[0] = SR_DECAY_A;
  if ((err = sr_decay_ctx_init(&c, m, ds, B, threads, grad, errstr, errsz)) != SR_OK) goto out;

  /* Random embeddings; bias = centred log popularity, so the first epoch
   * starts from most-popular instead of uniform. */
  sr_rng_t rng;
  sr_rng_seed(&rng, conf->seed);
  for (size_t i = 0; i < (size_t)N * m->dim; i++)
    c.in[i] = SR_DECAY_INIT_SD * sr_rng_normal(&rng);
  for (size_t i = 0; i < (size_t)N * m->dim; i++)
    c.out[i] = SR_DECAY_INIT_SD * sr_rng_normal(&rng);
  {
    double *cnt = sr_calloc((size_t)N, sizeof(double)), mean = 0;
    for (int32_t u = 0; u < ds->n_users; u++)
      for (int64_t e = ds->user_off[u]; e < split.train_end[u]; e++)
        cnt[ds->ev_item[e]] += 1;
    for (int32_t i = 0; i < N; i++)
      mean += log(cnt[i] + 1.0) / N;
    for (int32_t i = 0; i < N; i++)
      c.bias[i] = (float)(log(cnt[i] + 1.0) - mean);
    sr_free(cnt);
  }

  segs = sr_decay_segments(ds, split.train_end, SR_MIN(SR_DECAY_SEG, B), &n_segs);
  const int64_t P = split.train_positions;
  if ((err = sr_adam_init(&adam, m->arena_floats, conf->lr, conf->l2, threads, errstr, errsz)) !=
      SR_OK)
    goto out;
  if ((err = sr_train_best_init(&best, m, errstr, errsz)) != SR_OK) goto out;

  blas_threads = openblas_get_num_threads();
  openblas_set_num_threads(1);
  sr_train_progress_begin(&prog, conf);
  const int64_t t_start = sr_mono_us();
  const size_t off_in = (size_t)(c.in - m->arena), off_bias = (size_t)(c.bias - m->arena);
  if (!(c.in < c.out && c.out < c.bias)) {
    err = sr_seterr(errstr, errsz, SR_ERR_MODEL, "train decay: unexpected block order");
    goto out;
  }
  int epoch, stop = 0;
  double epoch_loss = NAN;
  for (epoch = 1; epoch <= conf->epochs && !stop; epoch++) {
    sr_train_progress_epoch(&prog, epoch);
    for (int64_t i = n_segs - 1; i > 0; i--) { /* Fisher-Yates */
      int64_t j = (int64_t)sr_rng_below(&rng, (uint64_t)i + 1);
      sr_seg_t t = segs[i];
      segs[i] = segs[j];
      segs[j] = t;
    }
    double loss_sum = 0;
    int64_t done = 0, si = 0;
    while (si < n_segs) {
      int64_t s0 = si, rows = 0;
      while (si < n_segs && rows + (segs[si].t1 - segs[si].t0) <= B) {
        rows += segs[si].t1 - segs[si].t0;
        si++;
      }
      loss_sum += sr_decay_batch(&c, segs + s0, si - s0);
      /* item_in, item_out, item_bias are consecutive in the arena: one
       * update over the span (padding has zero parameters and gradients
       * and stays zero) */
      sr_adam_next(&adam);
      sr_adam_update(&adam, c.in, c.g_in, off_in, off_bias + (size_t)N - off_in);
      done += rows;
      sr_train_progress_update(&prog, done, P, loss_sum / (double)done, 0);
      if (conf->max_seconds > 0 && (double)(sr_mono_us() - t_start) / 1e6 >= conf->max_seconds) {
        stop = 1;
        break;
      }
    }
    epoch_loss = done ? loss_sum / (double)done : NAN;
    sr_train_metric_t vm;
    if ((err = sr_train_validate(m, ds, &split, 10, &vm, errstr, errsz)) != SR_OK) goto out;
    prog.valid = vm.ndcg;
    sr_train_progress_update(&prog, done, P, epoch_loss, 1);
    sr_train_progress_end(&prog);
    if (done && !isfinite(epoch_loss)) {
      err = sr_seterr(errstr, errsz, SR_ERR_STATE,
                      "train decay: loss diverged in epoch %d (try a smaller lr)", epoch);
      goto out;
    }
    sr_log_debug("train", "epoch %d loss %.4f valid NDCG@10 %.4f HR@10 %.4f (%d users) %.1fs",
                 epoch, epoch_loss, vm.ndcg, vm.hr, vm.n, (double)(sr_mono_us() - t_start) / 1e6);
    if (vm.n > 0 &&
        sr_train_best_offer(&best, m, epoch, vm.ndcg, (float)epoch_loss, conf->patience))
      stop = 1;
  }
  info->epochs = (uint32_t)(epoch - 1);
  if (best.epoch > 0) { /* early stopping: keep the best validation epoch */
    sr_train_best_restore(&best, m);
    info->train_loss = best.loss;
    info->valid_metric = (float)best.metric;
  } else {
    info->train_loss = (float)epoch_loss;
    info->valid_metric = NAN;
  }
  info->train_events = (uint64_t)split.train_events;
  info->train_users = (uint64_t)split.train_users;
out:
  if (blas_threads > 0) openblas_set_num_threads(blas_threads);
  sr_decay_ctx_free(&c);
  sr_train_best_free(&best);
  sr_adam_free(&adam);
  sr_train_split_free(&split);
  sr_free(segs);
  free(grad);
  return err;
}
