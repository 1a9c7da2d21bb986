/*
 * train: the kind-independent half of training.
 *
 * sr_train_run() validates the configuration, creates a zeroed model for
 * the data set's catalogue (model item i == data set item i), pins the BLAS
 * thread count, and hands over to the kind's trainer (train_<kind>.c)
 * through a kind table. Everything a trainer needs besides its own maths
 * lives here too (prototypes in train_util.h), so that every kind splits,
 * validates, reports and stops early in exactly the same way:
 *
 *  - validation split: a valid_frac sample of users loses its last event;
 *  - validation metric: NDCG@10 / HR@10 with full ranking, computed through
 *    sr_model_step + sr_model_score, i.e. the serving path itself, so the
 *    number early stopping optimises is the number serve will see;
 *  - Adam over the parameter arena, fused softmax cross-entropy, a
 *    deterministic parallel-for, the progress line, best-epoch keeping.
 *
 * Each kind's trainer lives in its own train_<kind>.c, listed in the table.
 *
 * Thread: sr_train_run runs on the caller's thread. It sets OpenBLAS's
 * (process-global) thread count for the duration and restores it after;
 * do not score on other threads while training in the same process.
 */
#include <cblas.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "train/train_util.h"

static const struct {
  sr_model_kind_t kind;
  sr_train_kind_fn_t *fn; /* NULL: kind not built */
} sr_train_kinds[] = {
    {SR_MODEL_DECAY, sr_train_decay},
    {SR_MODEL_GRU, sr_train_gru},
};

void sr_train_conf_defaults(sr_train_conf_t *c, sr_model_kind_t kind) {
  memset(c, 0, sizeof(*c));
  c->kind = kind;
  c->dim = 64;
  c->batch = 256;
  c->l2 = 0.0f;
  c->seed = 42;
  if (kind == SR_MODEL_GRU) {
    /* Tuned on the MovieLens 5-core split (docs/MODEL.md, "Hyper-parameters"):
     * the epoch cap is a cap, early stopping ends training first. */
    c->epochs = 200;
    c->lr = 0.005f;
    c->valid_frac = 0.5f;
    c->patience = 20;
  } else {
    c->epochs = 20;
    c->lr = 0.01f;
    c->valid_frac = 0.1f;
    c->patience = 3;
  }
  c->threads = 0;
  c->progress = isatty(2);
  c->max_seconds = 0;
}

sr_err_t sr_train_run(const sr_dataset_t *ds, const sr_train_conf_t *conf, sr_model_t **out,
                      sr_snapshot_info_t *info, char *errstr, size_t errsz) {
  sr_err_t err = SR_OK;
  sr_model_t *m = NULL;
  sr_str_t *ids = NULL;
  sr_train_kind_fn_t *fn = NULL;
  *out = NULL;
  if (!ds || !conf || !info)
    return sr_seterr(errstr, errsz, SR_ERR_INVALID_ARG, "train: missing data set/conf/info");
  if (conf->dim < 1 || conf->epochs < 1 || conf->batch < 1 || !(conf->lr > 0) ||
      !isfinite(conf->lr) || !(conf->l2 >= 0) || !(conf->valid_frac >= 0) ||
      !(conf->valid_frac <= 1) || conf->threads < 0 || !(conf->max_seconds >= 0))
    return sr_seterr(errstr, errsz, SR_ERR_CONF,
                     "train: invalid configuration (dim %d, epochs %d, batch %d, lr %g, l2 %g, "
                     "valid_frac %g, threads %d, max_seconds %g)",
                     conf->dim, conf->epochs, conf->batch, (double)conf->lr, (double)conf->l2,
                     (double)conf->valid_frac, conf->threads, conf->max_seconds);
  if (ds->n_items < 1 || ds->n_events < 1)
    return sr_seterr(errstr, errsz, SR_ERR_INVALID_ARG, "train: the data set holds no events");
  /* Too little data: the loss is a mean over training positions (every
   * event of a user but the first, after the validation hold-out), so
   * with none there is nothing to learn and the "model" would be its
   * random init with a NaN loss. Same split as the kind trainers (same
   * arguments, deterministic), computed here so that every kind refuses
   * alike and before any allocation. */
  {
    sr_train_split_t sp;
    sr_train_split_init(&sp, ds, conf->valid_frac, conf->seed);
    const int64_t positions = sp.train_positions;
    const int32_t n_valid = sp.n_valid;
    sr_train_split_free(&sp);
    if (positions < 1)
      return sr_seterr(errstr, errsz, SR_ERR_INVALID_ARG,
                       "train: too little data to train: %lld event%s from %ld user%s%s give "
                       "no training position (training needs a user with at least 2 events%s)",
                       (long long)ds->n_events, ds->n_events == 1 ? "" : "s", (long)ds->n_users,
                       ds->n_users == 1 ? "" : "s",
                       n_valid > 0 ? " minus the held-out validation events" : "",
                       n_valid > 0 ? " left after the validation hold-out, or --valid-frac 0" : "");
  }
  for (size_t i = 0; i < SR_ARRAY_SIZE(sr_train_kinds); i++)
    if (sr_train_kinds[i].kind == conf->kind) fn = sr_train_kinds[i].fn;
  if (!fn)
    return sr_seterr(errstr, errsz, SR_ERR_CONF,
                     "train: model kind '%s' is not built into this binary",
                     sr_model_kind_name(conf->kind));

  ids = sr_malloc((size_t)ds->n_items * sizeof(*ids));
  for (int32_t i = 0; i < ds->n_items; i++)
    ids[i] = sr_strmap_key(ds->items, i);
  /* The constructor's INVALID_ARG is about the configuration (a dim the
   * kind cannot run: GRU above 256): SR_ERR_CONF. NOMEM passes through. */
  char merr[256];
  err = sr_model_create(&m, conf->kind, conf->dim, ds->n_items, ids, merr, sizeof(merr));
  sr_free(ids);
  if (err != SR_OK)
    return sr_seterr(errstr, errsz, err == SR_ERR_INVALID_ARG ? SR_ERR_CONF : err, "train: %s",
                     merr);

  memset(info, 0, sizeof(*info));
  info->format_version = SR_SNAPSHOT_FORMAT_VERSION;
  info->kind = conf->kind;
  info->dim = conf->dim;
  info->n_items = ds->n_items;
  info->created_ms = sr_now_ms();
  info->valid_metric = NAN;

  int old_threads = openblas_get_num_threads();
  openblas_set_num_threads(sr_train_threads(conf));
  int64_t t0 = sr_mono_us();
  err = fn(ds, conf, m, info, errstr, errsz);
  openblas_set_num_threads(old_threads);
  if (err != SR_OK) goto fail;
  /* Never hand out a model that cannot be served: a NaN loss or a
   * non-finite / out-of-range parameter is an error, not a snapshot. */
  if (!isfinite(info->train_loss)) {
    err = sr_seterr(errstr, errsz, SR_ERR_MODEL,
                    "train: %s d=%d: training loss is %g after %u epochs (diverged or nothing "
                    "learned); no model",
                    sr_model_kind_name(conf->kind), conf->dim, (double)info->train_loss,
                    info->epochs);
    goto fail;
  }
  char cerr[200];
  if ((err = sr_model_check(m, cerr, sizeof(cerr))) != SR_OK) {
    err = sr_seterr(errstr, errsz, err, "train: %s d=%d: the trained model is unusable: %s",
                    sr_model_kind_name(conf->kind), conf->dim, cerr);
    goto fail;
  }

  /* Provisional version: the snapshot writer appends the content hash. */
  time_t ct = (time_t)(info->created_ms / 1000);
  struct tm tm;
  char ts[32] = "0";
  if (gmtime_r(&ct, &tm)) strftime(ts, sizeof(ts), "%Y%m%dT%H%M%S", &tm);
  snprintf(info->version, sizeof(info->version), "%s-d%d-%s", sr_model_kind_name(conf->kind),
           conf->dim, ts);
  sr_model_set_version(m, info->version);
  sr_log_info("train", "%s d=%d: %u epochs in %.1fs, loss %.4f, valid NDCG@10 %.4f",
              sr_model_kind_name(conf->kind), conf->dim, info->epochs,
              (double)(sr_mono_us() - t0) / 1e6, (double)info->train_loss,
              (double)info->valid_metric);
  *out = m;
  return SR_OK;
fail:
  sr_model_destroy(m);
  return err;
}

/* ======================= shared helpers (train_util.h) ======================= */

int sr_train_threads(const sr_train_conf_t *conf) {
  if (conf->threads > 0) return conf->threads;
  long n = sysconf(_SC_NPROCESSORS_ONLN);
  return n > 0 ? (int)SR_MIN(n, 256) : 1;
}

/* ---- parallel-for ---- */
typedef struct {
  void (*fn)(void *, int64_t, int64_t);
  void *ctx;
  int64_t lo, hi;
} sr_par_job_t;

static void *sr_par_main(void *arg) {
  sr_par_job_t *j = arg;
  j->fn(j->ctx, j->lo, j->hi);
  return NULL;
}

void sr_train_parallel(int threads, int64_t n, void (*fn)(void *ctx, int64_t lo, int64_t hi),
                       void *ctx) {
  if (n <= 0) return;
  if (threads > 64) threads = 64;
  if (threads <= 1 || n < threads) {
    fn(ctx, 0, n);
    return;
  }
  sr_par_job_t jobs[64];
  pthread_t tid[64];
  int started[64] = {0};
  for (int t = 0; t < threads; t++) {
    jobs[t].fn = fn;
    jobs[t].ctx = ctx;
    jobs[t].lo = n * t / threads;
    jobs[t].hi = n * (t + 1) / threads;
  }
  for (int t = 1; t < threads; t++)
    started[t] = pthread_create(&tid[t], NULL, sr_par_main, &jobs[t]) == 0;
  fn(ctx, jobs[0].lo, jobs[0].hi);
  for (int t = 1; t < threads; t++) {
    if (started[t])
      pthread_join(tid[t], NULL);
    else
      fn(ctx, jobs[t].lo, jobs[t].hi); /* could not start a thread: do it here */
  }
}

/* ---- softmax cross-entropy ----
 * The exp over B x n_items logits costs as much as the sgemms around it, so
 * it is written with GCC vector extensions (16 lanes) and cloned for
 * AVX-512 / AVX2 where the CPU has them. exp: Cody-Waite reduction and the
 * Cephes degree-6 polynomial (about 1 ulp on the reduced range). */
typedef float sr_v16f __attribute__((vector_size(64)));
typedef int32_t sr_v16i __attribute__((vector_size(64)));

/* Not under TSan: its instrumentation of ifunc resolvers crashes at load. */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) &&                             \
    !defined(__SANITIZE_THREAD__) && !defined(SR_NO_CLONES)
#define SR_SIMD_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define SR_SIMD_CLONES
#endif

/* Lane-wise mask ? a : b. (Macros and pointer arguments: passing 64-byte
 * vectors by value would warn about the AVX-512 ABI.) */
#define SR_V16_SELECT(mask, a, b)                                                                  \
  ((sr_v16f)((((sr_v16i)(a)) & (mask)) | (((sr_v16i)(b)) & ~(mask))))

/* *px = exp(*px), lane-wise. */
static inline __attribute__((always_inline)) void sr_v16_exp(sr_v16f *px) {
  const sr_v16f lo = (sr_v16f){0} - 87.0f;
  sr_v16f x = SR_V16_SELECT(*px < lo, lo, *px);
  sr_v16f t = x * 1.44269504088896341f + 12582912.0f; /* round to nearest via 1.5*2^23 */
  sr_v16f n = t - 12582912.0f;
  sr_v16f r = x - n * 0.693359375f;
  r = r - n * -2.12194440e-4f;
  sr_v16f p = 1.9875691500e-4f * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * (r * r) + r + 1.0f;
  sr_v16i e = (__builtin_convertvector(n, sr_v16i) + 127) << 23;
  *px = p * (sr_v16f)e;
}

typedef struct {
  float *L;
  int cols;
  const int32_t *targets;
  float scale;
  float *inv_sum; /* NULL: write dlogits; else leave exp(L - max) and 1/sum here */
  double *row_loss;
} sr_sm_ctx_t;

SR_SIMD_CLONES static void sr_softmax_rows(void *arg, int64_t r0, int64_t r1) {
  sr_sm_ctx_t *c = arg;
  const int cols = c->cols, nv = cols / 16, tail = cols % 16;
  for (int64_t r = r0; r < r1; r++) {
    float *x = c->L + (size_t)r * (size_t)cols;
    sr_v16f v, tv;
    /* max */
    sr_v16f mx = (sr_v16f){0} - INFINITY;
    for (int i = 0; i < nv; i++) {
      memcpy(&v, x + 16 * i, sizeof(v));
      mx = SR_V16_SELECT(v > mx, v, mx);
    }
    if (tail) {
      tv = (sr_v16f){0} - INFINITY;
      memcpy(&tv, x + 16 * nv, (size_t)tail * sizeof(float));
      mx = SR_V16_SELECT(tv > mx, tv, mx);
    }
    float m = mx[0];
    for (int j = 1; j < 16; j++)
      m = mx[j] > m ? mx[j] : m;
    const float zt = x[c->targets[r]];
    /* exp and sum, lane-wise partial sums in a fixed order */
    sr_v16f acc = (sr_v16f){0};
    for (int i = 0; i < nv; i++) {
      memcpy(&v, x + 16 * i, sizeof(v));
      v -= m;
      sr_v16_exp(&v);
      acc += v;
      memcpy(x + 16 * i, &v, sizeof(v));
    }
    if (tail) {
      tv = (sr_v16f){0} - INFINITY;
      memcpy(&tv, x + 16 * nv, (size_t)tail * sizeof(float));
      tv -= m;
      sr_v16_exp(&tv);
      for (int j = tail; j < 16; j++)
        tv[j] = 0;
      acc += tv;
      memcpy(x + 16 * nv, &tv, (size_t)tail * sizeof(float));
    }
    double sum = 0;
    for (int j = 0; j < 16; j++)
      sum += acc[j];
    c->row_loss[r] = (double)m + log(sum) - (double)zt;
    if (c->inv_sum) {
      c->inv_sum[r] = (float)(1.0 / sum);
      continue;
    }
    const float k = (float)(c->scale / sum);
    for (int i = 0; i < nv; i++) {
      memcpy(&v, x + 16 * i, sizeof(v));
      v *= k;
      memcpy(x + 16 * i, &v, sizeof(v));
    }
    for (int j = 16 * nv; j < cols; j++)
      x[j] *= k;
    x[c->targets[r]] -= c->scale;
  }
}

static double sr_softmax_run(float *L, int rows, int cols, const int32_t *targets, float scale,
                             float *inv_sum, int threads) {
  double *row_loss = sr_malloc((size_t)(rows > 0 ? rows : 1) * sizeof(double));
  sr_sm_ctx_t c = {L, cols, targets, scale, inv_sum, row_loss};
  sr_train_parallel(threads, rows, sr_softmax_rows, &c);
  double s = 0;
  for (int r = 0; r < rows; r++)
    s += row_loss[r];
  sr_free(row_loss);
  return s;
}

double sr_train_softmax_xent(float *L, int rows, int cols, const int32_t *targets, float scale,
                             int threads) {
  return sr_softmax_run(L, rows, cols, targets, scale, NULL, threads);
}

double sr_train_softmax_exp(float *L, int rows, int cols, const int32_t *targets, float *inv_sum,
                            int threads) {
  return sr_softmax_run(L, rows, cols, targets, 1.0f, inv_sum, threads);
}

/* ---- Adam ---- */
sr_err_t sr_adam_init(sr_adam_t *a, size_t arena_floats, float lr, float l2, int threads,
                      char *errstr, size_t errsz) {
  memset(a, 0, sizeof(*a));
  a->m1 = calloc(arena_floats ? arena_floats : 1, sizeof(float));
  a->m2 = calloc(arena_floats ? arena_floats : 1, sizeof(float));
  if (!a->m1 || !a->m2) {
    sr_adam_free(a);
    return sr_seterr(errstr, errsz, SR_ERR_NOMEM,
                     "train: cannot allocate %zu bytes of optimiser state",
                     2 * arena_floats * sizeof(float));
  }
  a->n = arena_floats;
  a->lr = lr;
  a->b1 = 0.9f;
  a->b2 = 0.999f;
  a->eps = 1e-8f;
  a->l2 = l2;
  a->threads = threads;
  return SR_OK;
}

void sr_adam_next(sr_adam_t *a) {
  a->t++;
  double bc1 = 1.0 - pow(a->b1, (double)a->t), bc2 = 1.0 - pow(a->b2, (double)a->t);
  a->step_lr = (float)(a->lr * sqrt(bc2) / bc1);
}

typedef struct {
  sr_adam_t *a;
  float *p, *m1, *m2;
  const float *g;
} sr_adam_ctx_t;

/* sqrt(v) for v >= 0 as v * rsqrt(v): bit-trick estimate + 3 Newton steps
 * (about 1 ulp). Written with vector extensions because glibc's errno
 * contract keeps GCC from vectorising sqrtf at -O2. */
static inline __attribute__((always_inline)) void sr_v16_sqrt(sr_v16f *pv) {
  const sr_v16f v = *pv;
  sr_v16f y = (sr_v16f)(0x5f375a86 - ((sr_v16i)v >> 1));
  const sr_v16f hv = 0.5f * v;
  y = y * (1.5f - hv * y * y);
  y = y * (1.5f - hv * y * y);
  y = y * (1.5f - hv * y * y);
  *pv = v * y;
}

/* One 16-lane Adam step on vectors (a macro: no 64-byte vector arguments). */
#define SR_ADAM_V16(p, g, m1, m2)                                                                  \
  do {                                                                                             \
    (g) += l2 * (p);                                                                               \
    (m1) = b1 * (m1) + (1.0f - b1) * (g);                                                          \
    (m2) = b2 * (m2) + (1.0f - b2) * (g) * (g);                                                    \
    sr_v16f sq_ = (m2);                                                                            \
    sr_v16_sqrt(&sq_);                                                                             \
    (p) -= lr * (m1) / (sq_ + eps);                                                                \
  } while (0)

SR_SIMD_CLONES static void sr_adam_range(void *arg, int64_t lo, int64_t hi) {
  sr_adam_ctx_t *c = arg;
  const float b1 = c->a->b1, b2 = c->a->b2, eps = c->a->eps, l2 = c->a->l2, lr = c->a->step_lr;
  sr_v16f p, g, m1, m2;
  int64_t i = lo;
  for (; i + 16 <= hi; i += 16) {
    memcpy(&p, c->p + i, sizeof(p));
    memcpy(&g, c->g + i, sizeof(g));
    memcpy(&m1, c->m1 + i, sizeof(m1));
    memcpy(&m2, c->m2 + i, sizeof(m2));
    SR_ADAM_V16(p, g, m1, m2);
    memcpy(c->p + i, &p, sizeof(p));
    memcpy(c->m1 + i, &m1, sizeof(m1));
    memcpy(c->m2 + i, &m2, sizeof(m2));
  }
  if (i < hi) { /* tail: same arithmetic on a zero-padded vector */
    const size_t n = (size_t)(hi - i) * sizeof(float);
    p = g = m1 = m2 = (sr_v16f){0};
    memcpy(&p, c->p + i, n);
    memcpy(&g, c->g + i, n);
    memcpy(&m1, c->m1 + i, n);
    memcpy(&m2, c->m2 + i, n);
    SR_ADAM_V16(p, g, m1, m2);
    memcpy(c->p + i, &p, n);
    memcpy(c->m1 + i, &m1, n);
    memcpy(c->m2 + i, &m2, n);
  }
}

void sr_adam_update(sr_adam_t *a, float *p, const float *g, size_t off, size_t n) {
  sr_adam_ctx_t c = {a, p, a->m1 + off, a->m2 + off, g};
  sr_train_parallel(n >= (1 << 15) ? a->threads : 1, (int64_t)n, sr_adam_range, &c);
}

void sr_adam_free(sr_adam_t *a) {
  free(a->m1);
  free(a->m2);
  a->m1 = a->m2 = NULL;
}

/* ---- best epoch ---- */
sr_err_t sr_train_best_init(sr_train_best_t *b, const sr_model_t *m, char *errstr, size_t errsz) {
  memset(b, 0, sizeof(*b));
  b->metric = -INFINITY;
  b->params = malloc(m->arena_floats * sizeof(float));
  if (!b->params)
    return sr_seterr(errstr, errsz, SR_ERR_NOMEM, "train: cannot allocate %zu bytes",
                     m->arena_floats * sizeof(float));
  b->n = m->arena_floats;
  return SR_OK;
}

int sr_train_best_offer(sr_train_best_t *b, const sr_model_t *m, int epoch, double metric,
                        float loss, int patience) {
  if (metric > b->metric) { /* NaN never improves */
    b->metric = metric;
    b->epoch = epoch;
    b->loss = loss;
    b->bad = 0;
    memcpy(b->params, m->arena, b->n * sizeof(float));
    return 0;
  }
  b->bad++;
  return b->bad >= SR_MAX(patience, 1);
}

void sr_train_best_restore(const sr_train_best_t *b, sr_model_t *m) {
  if (b->epoch > 0 && b->params) memcpy(m->arena, b->params, b->n * sizeof(float));
}

void sr_train_best_free(sr_train_best_t *b) {
  free(b->params);
  b->params = NULL;
}

/* ---- validation split ---- */
void sr_train_split_init(sr_train_split_t *s, const sr_dataset_t *ds, float valid_frac,
                         uint64_t seed) {
  memset(s, 0, sizeof(*s));
  int32_t nu = ds->n_users;
  s->train_end = sr_malloc((size_t)(nu > 0 ? nu : 1) * sizeof(int64_t));
  int32_t *elig = sr_malloc((size_t)(nu > 0 ? nu : 1) * sizeof(int32_t));
  int32_t ne = 0;
  for (int32_t u = 0; u < nu; u++) {
    s->train_end[u] = ds->user_off[u + 1];
    if (ds->user_off[u + 1] - ds->user_off[u] >= 2) elig[ne++] = u;
  }
  int32_t nv = (int32_t)floor((double)valid_frac * ne + 0.5);
  if (valid_frac > 0 && nv == 0 && ne > 0) nv = 1;
  if (nv > ne) nv = ne;
  sr_rng_t rng;
  sr_rng_seed(&rng, seed ^ 0x76616c6964ULL); /* "valid": its own stream */
  for (int32_t i = 0; i < nv; i++) {         /* partial Fisher-Yates */
    int32_t j = i + (int32_t)sr_rng_below(&rng, (uint64_t)(ne - i));
    int32_t t = elig[i];
    elig[i] = elig[j];
    elig[j] = t;
  }
  s->valid_users = sr_malloc((size_t)(nv > 0 ? nv : 1) * sizeof(int32_t));
  for (int32_t i = 0; i < nv; i++)
    s->train_end[elig[i]]--;
  s->n_valid = 0;
  for (int32_t u = 0; u < nu; u++) { /* ascending order */
    int64_t n = s->train_end[u] - ds->user_off[u];
    if (s->train_end[u] < ds->user_off[u + 1]) s->valid_users[s->n_valid++] = u;
    s->train_events += n;
    if (n > 0) s->train_users++;
    if (n > 1) s->train_positions += n - 1;
  }
  sr_free(elig);
}

void sr_train_split_free(sr_train_split_t *s) {
  sr_free(s->train_end);
  sr_free(s->valid_users);
  memset(s, 0, sizeof(*s));
}

/* ---- validation metric ---- */
sr_err_t sr_train_validate(const sr_model_t *m, const sr_dataset_t *ds, const sr_train_split_t *s,
                           int k, sr_train_metric_t *out, char *errstr, size_t errsz) {
  out->ndcg = out->hr = NAN;
  out->n = 0;
  if (s->n_valid == 0) return SR_OK;
  const int32_t N = m->n_items;
  const int ss = m->state_size;
  int rows = (int)SR_MAX(1, SR_MIN(64, (1 << 24) / (int64_t)N));
  float *H = malloc((size_t)rows * (size_t)ss * sizeof(float));
  float *S = malloc((size_t)rows * (size_t)N * sizeof(float));
  int32_t *mark = calloc((size_t)N, sizeof(int32_t));
  if (!H || !S || !mark) {
    free(H);
    free(S);
    free(mark);
    return sr_seterr(errstr, errsz, SR_ERR_NOMEM, "train: validation: out of memory");
  }
  double ndcg = 0, hr = 0;
  for (int32_t v0 = 0; v0 < s->n_valid; v0 += rows) {
    int nr = (int)SR_MIN(rows, s->n_valid - v0);
    for (int r = 0; r < nr; r++) {
      int32_t u = s->valid_users[v0 + r];
      float *h = H + (size_t)r * ss;
      sr_model_state_init(m, h);
      for (int64_t e = ds->user_off[u]; e < s->train_end[u]; e++)
        sr_model_step(m, h, ds->ev_item[e], (sr_event_type_t)ds->ev_type[e], ds->ev_value[e],
                      e > ds->user_off[u] ? ds->ev_ts[e] - ds->ev_ts[e - 1] : 0);
    }
    sr_model_score(m, H, nr, S);
    for (int r = 0; r < nr; r++) {
      int32_t u = s->valid_users[v0 + r], stamp = v0 + r + 1;
      int32_t target = ds->ev_item[s->train_end[u]];
      for (int64_t e = ds->user_off[u]; e < s->train_end[u]; e++)
        mark[ds->ev_item[e]] = stamp;
      const float *sc = S + (size_t)r * N;
      const float st = sc[target];
      int64_t rank = 0;
      if (isnan(st))
        rank = N;
      else
        for (int32_t j = 0; j < N; j++) {
          if (j == target || mark[j] == stamp) continue;
          if (sc[j] > st || (sc[j] == st && j < target)) rank++;
        }
      if (rank < k) {
        hr += 1;
        ndcg += 1.0 / log2((double)rank + 2.0);
      }
    }
  }
  out->n = s->n_valid;
  out->ndcg = ndcg / s->n_valid;
  out->hr = hr / s->n_valid;
  free(H);
  free(S);
  free(mark);
  return SR_OK;
}

/* ---- progress line ---- */
void sr_train_progress_begin(sr_train_progress_t *p, const sr_train_conf_t *conf) {
  memset(p, 0, sizeof(*p));
  p->on = conf->progress;
  p->epochs = conf->epochs;
  p->valid = NAN;
  p->t_start_us = sr_mono_us();
}

void sr_train_progress_epoch(sr_train_progress_t *p, int epoch) {
  p->epoch = epoch;
  p->t_epoch_us = sr_mono_us();
}

static void sr_fmt_secs(char *b, size_t n, double s) {
  if (!(s >= 0) || s > 1e7)
    snprintf(b, n, "?");
  else if (s < 60)
    snprintf(b, n, "%.0fs", s);
  else if (s < 3600)
    snprintf(b, n, "%dm%02ds", (int)(s / 60), (int)s % 60);
  else
    snprintf(b, n, "%dh%02dm", (int)(s / 3600), ((int)s % 3600) / 60);
}

void sr_train_progress_update(sr_train_progress_t *p, int64_t done, int64_t total, double loss,
                              int force) {
  if (!p->on) return;
  int64_t now = sr_mono_us();
  if (!force && now - p->t_last_print_us < 250000) return;
  p->t_last_print_us = now;
  double el = (double)(now - p->t_epoch_us) / 1e6;
  double rate = el > 0 ? (double)done / el : 0;
  char rbuf[32], vbuf[32], ebuf[32];
  if (rate >= 1e6)
    snprintf(rbuf, sizeof(rbuf), "%.1fM", rate / 1e6);
  else if (rate >= 1e3)
    snprintf(rbuf, sizeof(rbuf), "%.0fk", rate / 1e3);
  else
    snprintf(rbuf, sizeof(rbuf), "%.0f", rate);
  if (isnan(p->valid))
    snprintf(vbuf, sizeof(vbuf), "-");
  else
    snprintf(vbuf, sizeof(vbuf), "%.4f", p->valid);
  double eta = rate > 0 ? (double)(total - done) / rate +
                              (double)(p->epochs - p->epoch) * (double)total / rate
                        : -1;
  sr_fmt_secs(ebuf, sizeof(ebuf), eta);
  char line[160];
  int n = snprintf(line, sizeof(line), "epoch %d/%d loss %.3f valid NDCG@10 %s %s ev/s eta %s",
                   p->epoch, p->epochs, loss, vbuf, rbuf, ebuf);
  if (n < 0) return;
  size_t len = (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1;
  fprintf(stderr, "\r%s%*s", line, p->last_len > len ? (int)(p->last_len - len) : 0, "");
  fflush(stderr);
  p->last_len = len;
}

void sr_train_progress_end(sr_train_progress_t *p) {
  if (p->on && p->last_len) {
    fputc('\n', stderr);
    fflush(stderr);
  }
  p->last_len = 0;
}
