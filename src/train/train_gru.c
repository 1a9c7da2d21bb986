/*
 * Trainer of the "gru" model kind (model/model_gru.c, issue #3): truncated
 * back-propagation through time over each user's event sequence, softmax
 * cross-entropy of the next item at every step, Adam, dropout, early
 * stopping on held-out last events. Equations: docs/MODEL.md.
 *
 * How the work is laid out:
 *
 *  - Lanes. B users are walked side by side, one per lane, each lane in its
 *    user's time order; when a user ends, the lane takes the next user of
 *    its queue (fresh state) in the middle of a chunk. Per epoch the users
 *    are shuffled and dealt to lanes so that lanes carry about the same
 *    number of events (long users first, each to the least loaded lane): a
 *    MovieLens user with 2,000 events would otherwise keep one lane busy
 *    long after the others ran dry.
 *
 *  - Chunks. T time steps of all lanes (B * T = conf->batch positions) are
 *    one gradient step. The state is carried into the next chunk; the
 *    gradient stops at chunk borders (truncated BPTT) and at user changes.
 *
 *  - Forward = the model's own cell. Each lane step calls
 *    sr_model_gru_cell(), the function serve's sr_model_step() runs, on the
 *    dropped-out input, and keeps the gate activations it returns. With
 *    dropout off, the trainer's states are bit-identical to serve's
 *    (tests/unit/0041 checks it). Lanes are independent, so the forward and
 *    the backward recurrence run lane-parallel (sr_train_parallel, each
 *    lane with its own dropout stream: results do not depend on the thread
 *    count).
 *
 *  - Everything else is level-3 BLAS over the whole chunk: logits of all
 *    positions against the catalogue (one sgemm), their gradients (two
 *    more), the cell's weight and input gradients (three). The recurrence
 *    dh_{t-1} = dh_t z + dC_t U^T is a per-lane d x 3d product.
 *
 *  - Loss. Full softmax over the catalogue with the items the user already
 *    had masked out (eval and serve never recommend them, so the model
 *    should not spend probability on them; a repeat target stays
 *    unmasked). Above SR_GRU_FULL_SOFTMAX_MAX items a shared-negative
 *    sampled softmax with log-Q correction (negatives ~ count^0.75)
 *    replaces it.
 *
 * Determinism: the RNG is seeded from conf->seed (dealing, initialisation,
 * per-lane dropout streams, negatives); reductions run in fixed order; BLAS
 * results depend only on the thread count. Same seed + same threads =>
 * same bits.
 *
 * Thread: the caller's thread, which fans out to short-lived workers
 * (sr_train_parallel, conf->threads of them). OpenBLAS is switched to one
 * thread for the call (restored after): big products are sliced over our
 * workers instead (see "BLAS on our threads").
 */
#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "train/train_util.h"

/* ---- hyper-parameters beyond sr_train_conf_t (docs/MODEL.md) ---- */
#define SR_GRU_CHUNK 64     /* BPTT truncation length T */
#define SR_GRU_DROP_IN 0.3f /* dropout on the input embedding */
#define SR_GRU_DROP_H 0.4f  /* dropout on h before scoring */
#define SR_GRU_TIED 1       /* input embedding = item_out */
#define SR_GRU_EMA 0.995f   /* parameter averaging per step (0 = off) */
#define SR_GRU_FULL_SOFTMAX_MAX 50000
#define SR_GRU_N_SAMPLED 2048                /* shared negatives of the sampled softmax */
#define SR_GRU_MAX_LOGITS ((int64_t)1 << 25) /* logit buffer cap (floats) */

typedef struct {
  int chunk;
  float drop_in, drop_h;
  int tied;
  int mask_seen;
  float init_sd; /* 0: 1/sqrt(d) */
  int32_t full_max;
  int n_sampled;
  float ema;
} sr_gru_hp_t;

static void sr_gru_hp_defaults(sr_gru_hp_t *hp) {
  hp->chunk = SR_GRU_CHUNK;
  hp->drop_in = SR_GRU_DROP_IN;
  hp->drop_h = SR_GRU_DROP_H;
  hp->tied = SR_GRU_TIED;
  hp->mask_seen = 1;
  hp->init_sd = 0.0f;
  hp->full_max = SR_GRU_FULL_SOFTMAX_MAX;
  hp->n_sampled = SR_GRU_N_SAMPLED;
  hp->ema = SR_GRU_EMA;
#ifdef SR_TUNING
  const char *s;
  if ((s = getenv("SR_GRU_EMA"))) hp->ema = strtof(s, NULL);
  if ((s = getenv("SR_GRU_CHUNK"))) hp->chunk = atoi(s);
  if ((s = getenv("SR_GRU_DROP_IN"))) hp->drop_in = strtof(s, NULL);
  if ((s = getenv("SR_GRU_DROP_H"))) hp->drop_h = strtof(s, NULL);
  if ((s = getenv("SR_GRU_TIE"))) hp->tied = atoi(s);
  if ((s = getenv("SR_GRU_MASK"))) hp->mask_seen = atoi(s);
  if ((s = getenv("SR_GRU_INIT_SD"))) hp->init_sd = strtof(s, NULL);
  if ((s = getenv("SR_GRU_FULL_MAX"))) hp->full_max = atoi(s);
  if ((s = getenv("SR_GRU_NSAMPLED"))) hp->n_sampled = atoi(s);
#endif
}

#ifdef SR_TUNING
/* Tuning builds: called after every epoch (e.g. a driver's test metric). */
void (*sr_train_gru_epoch_cb)(sr_model_t *m, int epoch);
void (*sr_train_gru_epoch_cb)(sr_model_t *m, int epoch) = NULL;
#endif

/* ---- the training job ---- */
typedef struct {
  int32_t *q; /* users dealt to this lane for the epoch */
  int nq, qpos;
  int32_t u;        /* current user or -1 */
  int64_t pos, len; /* next input position, training length of u */
  float *h;
  sr_rng_t rng; /* dropout stream of this lane */
} sr_gru_lane_t;

typedef struct {
  const sr_dataset_t *ds;
  sr_model_t *m;
  sr_gru_hp_t hp;
  int threads;
  int d, d3, B, T, R; /* R = B * T rows per chunk */
  int32_t N;
  int sampled, cols;              /* sampled softmax; logit columns (N, or 1 + n_sampled) */
  const int64_t *end;             /* per user: training events are [user_off[u], end[u]) */
  float *in, *out, *bias, *W, *U; /* parameter blocks */
  float *UT;                      /* U^T (3d x d), refreshed per chunk */
  size_t o_in, o_out, o_bias, o_w, o_u, o_b, o_bhn, o_type, o_gap;
  float *g; /* gradient, arena-shaped */
  sr_gru_lane_t *lanes;
  int32_t *queue_buf;
  /* rows r = t * B + b of the chunk */
  float *X, *MX, *Hp, *H, *MH, *cache, *dA, *dC, *dH, *dX;
  uint8_t *active, *reset;
  int32_t *r_user, *r_item, *r_target, *r_type, *r_gap;
  int64_t *r_pos;
  /* the n active rows, compacted */
  int32_t *ridx, *tgt;
  float *Hd, *dHd, *L, *ones;
  /* sampled softmax */
  int32_t *samp;
  float *samp_logq, *q, *q_cdf, *Ws, *gWs;
  sr_rng_t rng;
} sr_gru_job_t;

static void sr_gru_job_free(sr_gru_job_t *j) {
  if (j->lanes)
    for (int b = 0; b < j->B; b++)
      sr_free(j->lanes[b].h);
  sr_free(j->lanes);
  sr_free(j->queue_buf);
  float *fl[] = {j->UT,    j->g,    j->X,         j->MX, j->Hp,    j->H,  j->MH,
                 j->cache, j->dA,   j->dC,        j->dH, j->dX,    j->Hd, j->dHd,
                 j->L,     j->ones, j->samp_logq, j->q,  j->q_cdf, j->Ws, j->gWs};
  for (size_t i = 0; i < SR_ARRAY_SIZE(fl); i++)
    free(fl[i]);
  sr_free(j->active);
  sr_free(j->reset);
  sr_free(j->r_user);
  sr_free(j->r_item);
  sr_free(j->r_target);
  sr_free(j->r_type);
  sr_free(j->r_gap);
  sr_free(j->r_pos);
  sr_free(j->ridx);
  sr_free(j->tgt);
  sr_free(j->samp);
  memset(j, 0, sizeof(*j));
}

/* 64-byte aligned, zeroed float buffer (NULL on failure) */
static float *sr_gru_falloc(size_t n) {
  size_t bytes = ((n ? n : 1) * sizeof(float) + 63) / 64 * 64;
  float *p = aligned_alloc(64, bytes);
  if (p) memset(p, 0, bytes);
  return p;
}

static size_t sr_gru_off(sr_model_t *m, const char *name, int *ok) {
  sr_param_block_t *b = sr_model_block(m, name);
  if (!b) {
    *ok = 0;
    return 0;
  }
  return (size_t)(b->data - m->arena);
}

/* lanes: requested B (reduced so that the logit buffer stays bounded) */
static sr_err_t sr_gru_job_init(sr_gru_job_t *j, const sr_dataset_t *ds, sr_model_t *m,
                                const sr_gru_hp_t *hp, int lanes, const int64_t *end, int threads,
                                uint64_t seed, char *errstr, size_t errsz) {
  memset(j, 0, sizeof(*j));
  j->ds = ds;
  j->m = m;
  j->hp = *hp;
  j->end = end;
  j->threads = threads < 1 ? 1 : threads;
  j->d = m->dim;
  j->d3 = 3 * m->dim;
  j->N = m->n_items;
  if (m->ops->kind != SR_MODEL_GRU || m->dim > SR_GRU_MAX_DIM || m->n_items != ds->n_items)
    return sr_seterr(errstr, errsz, SR_ERR_MODEL,
                     "train gru: not a gru model of this catalogue (dim %d, %ld items)", m->dim,
                     (long)m->n_items);
  int ok = 1;
  j->o_in = sr_gru_off(m, "item_in", &ok);
  j->o_out = sr_gru_off(m, "item_out", &ok);
  j->o_bias = sr_gru_off(m, "item_bias", &ok);
  j->o_w = sr_gru_off(m, "gru_w", &ok);
  j->o_u = sr_gru_off(m, "gru_u", &ok);
  j->o_b = sr_gru_off(m, "gru_b", &ok);
  j->o_bhn = sr_gru_off(m, "gru_bhn", &ok);
  j->o_type = sr_gru_off(m, "type_emb", &ok);
  j->o_gap = sr_gru_off(m, "gap_emb", &ok);
  if (!ok) return sr_seterr(errstr, errsz, SR_ERR_MODEL, "train gru: parameter block missing");
  j->in = m->arena + j->o_in;
  j->out = m->arena + j->o_out;
  j->bias = m->arena + j->o_bias;
  j->W = m->arena + j->o_w;
  j->U = m->arena + j->o_u;

  j->T = hp->chunk < 1 ? 1 : hp->chunk;
  j->sampled = j->N > hp->full_max;
  j->cols = j->sampled ? 1 + hp->n_sampled : (int)j->N;
  int64_t maxB = SR_GRU_MAX_LOGITS / ((int64_t)j->T * j->cols);
  j->B = (int)SR_MAX(1, SR_MIN((int64_t)lanes, maxB));
  j->R = j->B * j->T;
  const size_t R = (size_t)j->R, d = (size_t)j->d, d3 = (size_t)j->d3;
  j->g = sr_gru_falloc(m->arena_floats);
  j->UT = sr_gru_falloc(d3 * d);
  j->X = sr_gru_falloc(R * d);
  j->MX = sr_gru_falloc(R * d);
  j->Hp = sr_gru_falloc(R * d);
  j->H = sr_gru_falloc(R * d);
  j->MH = sr_gru_falloc(R * d);
  j->cache = sr_gru_falloc(R * 4 * d);
  j->dA = sr_gru_falloc(R * d3);
  j->dC = sr_gru_falloc(R * d3);
  j->dH = sr_gru_falloc(R * d);
  j->dX = sr_gru_falloc(R * d);
  j->Hd = sr_gru_falloc(R * d);
  j->dHd = sr_gru_falloc(R * d);
  j->L = sr_gru_falloc(R * (size_t)j->cols);
  j->ones = sr_gru_falloc(R > (size_t)j->cols ? R : (size_t)j->cols);
  if (!j->g || !j->UT || !j->X || !j->MX || !j->Hp || !j->H || !j->MH || !j->cache || !j->dA ||
      !j->dC || !j->dH || !j->dX || !j->Hd || !j->dHd || !j->L || !j->ones)
    return sr_seterr(errstr, errsz, SR_ERR_NOMEM,
                     "train gru: cannot allocate buffers for %zu rows x %d columns", R, j->cols);
  for (size_t i = 0; i < (R > (size_t)j->cols ? R : (size_t)j->cols); i++)
    j->ones[i] = 1.0f;
  if (j->sampled) {
    const size_t S = (size_t)hp->n_sampled;
    j->samp = sr_malloc(S * sizeof(int32_t));
    j->samp_logq = sr_gru_falloc(S);
    j->q = sr_gru_falloc((size_t)j->N);
    j->q_cdf = sr_gru_falloc((size_t)j->N);
    j->Ws = sr_gru_falloc(S * d);
    j->gWs = sr_gru_falloc(S * d);
    if (!j->samp_logq || !j->q || !j->q_cdf || !j->Ws || !j->gWs)
      return sr_seterr(errstr, errsz, SR_ERR_NOMEM, "train gru: cannot allocate the sampler");
  }
  j->active = sr_calloc(R, 1);
  j->reset = sr_calloc(R, 1);
  j->r_user = sr_calloc(R, sizeof(int32_t));
  j->r_item = sr_calloc(R, sizeof(int32_t));
  j->r_target = sr_calloc(R, sizeof(int32_t));
  j->r_type = sr_calloc(R, sizeof(int32_t));
  j->r_gap = sr_calloc(R, sizeof(int32_t));
  j->r_pos = sr_calloc(R, sizeof(int64_t));
  j->ridx = sr_calloc(R, sizeof(int32_t));
  j->tgt = sr_calloc(R, sizeof(int32_t));
  sr_rng_seed(&j->rng, seed);
  j->lanes = sr_calloc((size_t)j->B, sizeof(sr_gru_lane_t));
  for (int b = 0; b < j->B; b++) {
    j->lanes[b].h = sr_calloc(d, sizeof(float));
    j->lanes[b].u = -1;
    sr_rng_seed(&j->lanes[b].rng, sr_rng_next(&j->rng));
  }
  j->queue_buf = sr_malloc(((size_t)ds->n_users + 1) * sizeof(int32_t));
  return SR_OK;
}

/* Sampling distribution of the sampled softmax: (count + 1)^0.75 over the
 * training events. */
static void sr_gru_build_sampler(sr_gru_job_t *j) {
  const sr_dataset_t *ds = j->ds;
  double *c = sr_calloc((size_t)j->N, sizeof(double)), tot = 0.0, acc = 0.0;
  for (int32_t u = 0; u < ds->n_users; u++)
    for (int64_t e = ds->user_off[u]; e < j->end[u]; e++)
      c[ds->ev_item[e]] += 1.0;
  for (int32_t i = 0; i < j->N; i++)
    tot += (c[i] = pow(c[i] + 1.0, 0.75));
  for (int32_t i = 0; i < j->N; i++) {
    j->q[i] = (float)(c[i] / tot);
    acc += c[i] / tot;
    j->q_cdf[i] = (float)acc;
  }
  j->q_cdf[j->N - 1] = 1.0f;
  sr_free(c);
}

/* Deals users to lanes: shuffle, then long users (>= a quarter of a lane's
 * share) first by length, each user to the least loaded lane. */
static void sr_gru_deal(sr_gru_job_t *j, const int32_t *users, int n_users) {
  const int64_t *off = j->ds->user_off;
  int32_t *ord = sr_malloc(((size_t)n_users + 1) * sizeof(int32_t));
  memcpy(ord, users, (size_t)n_users * sizeof(int32_t));
  for (int i = n_users - 1; i > 0; i--) {
    int k = (int)sr_rng_below(&j->rng, (uint64_t)i + 1);
    int32_t t = ord[i];
    ord[i] = ord[k];
    ord[k] = t;
  }
  int64_t total = 0;
  for (int i = 0; i < n_users; i++)
    total += j->end[ord[i]] - off[ord[i]];
  const int64_t big = total / ((int64_t)j->B * 4) + 1;
  int nbig = 0;
  for (int i = 0; i < n_users; i++) { /* stable: big users to the front, longest first */
    const int32_t u = ord[i];
    const int64_t len = j->end[u] - off[u];
    if (len < big) continue;
    memmove(ord + nbig + 1, ord + nbig, (size_t)(i - nbig) * sizeof(int32_t));
    int k = nbig++;
    while (k > 0 && j->end[ord[k - 1]] - off[ord[k - 1]] < len) {
      ord[k] = ord[k - 1];
      k--;
    }
    ord[k] = u;
  }
  int64_t *load = sr_calloc((size_t)j->B, sizeof(int64_t));
  int *lane_of = sr_malloc(((size_t)n_users + 1) * sizeof(int)),
      *cnt = sr_calloc((size_t)j->B, sizeof(int));
  for (int i = 0; i < n_users; i++) {
    int best = 0;
    for (int b = 1; b < j->B; b++)
      if (load[b] < load[best]) best = b;
    lane_of[i] = best;
    load[best] += j->end[ord[i]] - off[ord[i]];
    cnt[best]++;
  }
  int pos = 0;
  for (int b = 0; b < j->B; b++) {
    sr_gru_lane_t *L = &j->lanes[b];
    L->q = j->queue_buf + pos;
    L->nq = L->qpos = 0;
    L->u = -1;
    pos += cnt[b];
  }
  for (int i = 0; i < n_users; i++) {
    sr_gru_lane_t *L = &j->lanes[lane_of[i]];
    L->q[L->nq++] = ord[i];
  }
  sr_free(ord);
  sr_free(load);
  sr_free(lane_of);
  sr_free(cnt);
}

typedef struct {
  sr_gru_job_t *j;
  int train;
} sr_gru_fwd_ctx_t;

/* Forward of lanes [lo, hi) over the chunk's T steps. */
static void sr_gru_fwd_lanes(void *arg, int64_t lo, int64_t hi) {
  sr_gru_fwd_ctx_t *c = arg;
  sr_gru_job_t *j = c->j;
  const sr_dataset_t *ds = j->ds;
  const int d = j->d, B = j->B;
  const float keep_in = 1.0f - j->hp.drop_in, keep_h = 1.0f - j->hp.drop_h;
  const int drop_in = c->train && j->hp.drop_in > 0.0f, drop_h = c->train && j->hp.drop_h > 0.0f;
  for (int64_t b = lo; b < hi; b++) {
    sr_gru_lane_t *L = &j->lanes[b];
    for (int t = 0; t < j->T; t++) {
      const size_t r = (size_t)t * B + (size_t)b;
      j->reset[r] = 0;
      if (L->u >= 0 && L->pos >= L->len - 1) L->u = -1; /* last event: no target */
      while (L->u < 0 && L->qpos < L->nq) {
        const int32_t u = L->q[L->qpos++];
        const int64_t len = j->end[u] - ds->user_off[u];
        if (len < 2) continue;
        L->u = u;
        L->pos = 0;
        L->len = len;
        sr_model_state_init(j->m, L->h);
        j->reset[r] = 1;
      }
      float *x = j->X + r * d, *mx = j->MX + r * d, *mh = j->MH + r * d;
      if (L->u < 0) {
        j->active[r] = 0;
        memset(x, 0, (size_t)d * sizeof(float));
        memset(j->Hp + r * d, 0, (size_t)d * sizeof(float));
        continue;
      }
      j->active[r] = 1;
      const int64_t e = ds->user_off[L->u] + L->pos;
      const int64_t dt = L->pos ? ds->ev_ts[e] - ds->ev_ts[e - 1] : 0;
      j->r_user[r] = L->u;
      j->r_pos[r] = L->pos;
      j->r_item[r] = ds->ev_item[e];
      j->r_target[r] = ds->ev_item[e + 1];
      j->r_type[r] = ds->ev_type[e];
      j->r_gap[r] = sr_model_gru_gap(dt);
      sr_model_gru_input(j->m, ds->ev_item[e], (sr_event_type_t)ds->ev_type[e], dt, x);
      for (int i = 0; i < d; i++) {
        mx[i] = !drop_in ? 1.0f : sr_rng_uniform(&L->rng) < keep_in ? 1.0f / keep_in : 0.0f;
        x[i] *= mx[i];
      }
      for (int i = 0; i < d; i++)
        mh[i] = !drop_h ? 1.0f : sr_rng_uniform(&L->rng) < keep_h ? 1.0f / keep_h : 0.0f;
      memcpy(j->Hp + r * d, L->h, (size_t)d * sizeof(float));
      sr_model_gru_cell(j->m, x, L->h, j->cache + r * 4 * (size_t)d);
      memcpy(j->H + r * d, L->h, (size_t)d * sizeof(float));
      L->pos++;
    }
  }
}

/* Forward of one chunk; returns the active rows (compacted into ridx). */
static int sr_gru_chunk_forward(sr_gru_job_t *j, int train) {
  sr_gru_fwd_ctx_t c = {j, train};
  sr_train_parallel(SR_MIN(j->threads, j->B), j->B, sr_gru_fwd_lanes, &c);
  int n = 0;
  for (int r = 0; r < j->R; r++)
    if (j->active[r]) {
      j->tgt[n] = j->r_target[r];
      j->ridx[n++] = r;
    }
  return n;
}

/* ---- BLAS on our threads ----
 * OpenBLAS runs single-threaded inside the trainer (its idle workers would
 * otherwise spin in sched_yield through every non-BLAS phase, taking a
 * core from the lane-parallel work); a big product is instead cut into
 * `threads` independent slices of output rows (or columns), each one
 * single-threaded sgemm on a worker of sr_train_parallel. No reduction
 * crosses slices, so the result is the same for a given thread count. */
typedef struct {
  CBLAS_TRANSPOSE ta, tb;
  int M, N, K, lda, ldb, ldc, split_n;
  const float *A, *B;
  float beta, *C;
} sr_gru_gemm_t;

static void sr_gru_gemm_part(void *arg, int64_t lo, int64_t hi) {
  const sr_gru_gemm_t *g = arg;
  const int n = (int)(hi - lo);
  if (!g->split_n)
    cblas_sgemm(CblasRowMajor, g->ta, g->tb, n, g->N, g->K, 1.0f,
                g->ta == CblasNoTrans ? g->A + lo * g->lda : g->A + lo, g->lda, g->B, g->ldb,
                g->beta, g->C + lo * g->ldc, g->ldc);
  else
    cblas_sgemm(CblasRowMajor, g->ta, g->tb, g->M, n, g->K, 1.0f, g->A, g->lda,
                g->tb == CblasNoTrans ? g->B + lo : g->B + lo * g->ldb, g->ldb, g->beta, g->C + lo,
                g->ldc);
}

/* C = op(A) op(B) + beta C (row-major), sliced over M (or N when split_n) */
static void sr_gru_gemm(const sr_gru_job_t *j, CBLAS_TRANSPOSE ta, CBLAS_TRANSPOSE tb, int M, int N,
                        int K, const float *A, int lda, const float *B, int ldb, float beta,
                        float *C, int ldc, int split_n) {
  sr_gru_gemm_t g = {ta, tb, M, N, K, lda, ldb, ldc, split_n, A, B, beta, C};
  const int n = split_n ? N : M;
  sr_train_parallel(n >= 64 ? j->threads : 1, n, sr_gru_gemm_part, &g);
}

/* y[0..cols) += column sums of A (rows x cols, row-major, lda) */
typedef struct {
  const float *A, *ones;
  int rows, lda;
  float *y;
} sr_gru_colsum_t;

static void sr_gru_colsum_part(void *arg, int64_t lo, int64_t hi) {
  const sr_gru_colsum_t *c = arg;
  cblas_sgemv(CblasRowMajor, CblasTrans, c->rows, (int)(hi - lo), 1.0f, c->A + lo, c->lda, c->ones,
              1, 1.0f, c->y + lo, 1);
}

static void sr_gru_colsum(const sr_gru_job_t *j, const float *A, int rows, int cols, int lda,
                          float *y) {
  sr_gru_colsum_t c = {A, j->ones, rows, lda, y};
  sr_train_parallel((int64_t)rows * cols >= (1 << 16) ? j->threads : 1, cols, sr_gru_colsum_part,
                    &c);
}

/* ---- vector kernels (16 floats; cloned for AVX-512 / AVX2 like train.c's) ---- */
typedef float sr_gru_v16 __attribute__((vector_size(64)));
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && !defined(SR_NO_CLONES)
#define SR_GRU_TRAIN_CLONES                                                                        \
  __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define SR_GRU_TRAIN_CLONES
#endif

/* Logit rows [lo, hi): + item_bias, the user's earlier items -> -inf. */
SR_GRU_TRAIN_CLONES static void sr_gru_bias_mask_rows(void *arg, int64_t lo, int64_t hi) {
  sr_gru_job_t *j = arg;
  const sr_dataset_t *ds = j->ds;
  const size_t N = (size_t)j->N;
  const float *restrict bias = j->bias;
  for (int64_t k = lo; k < hi; k++) {
    float *restrict row = j->L + (size_t)k * N;
    size_t i = 0;
    for (; i + 16 <= N; i += 16) {
      sr_gru_v16 v, w;
      memcpy(&v, row + i, sizeof(v));
      memcpy(&w, bias + i, sizeof(w));
      v += w;
      memcpy(row + i, &v, sizeof(v));
    }
    for (; i < N; i++)
      row[i] += bias[i];
    if (!j->hp.mask_seen) continue;
    const int r = j->ridx[k];
    const int32_t tgt = j->r_target[r];
    const int64_t e0 = ds->user_off[j->r_user[r]];
    for (int64_t e = e0; e <= e0 + j->r_pos[r]; e++)
      if (ds->ev_item[e] != tgt) row[ds->ev_item[e]] = -INFINITY;
  }
}

/* Full softmax: loss of the n rows; dHd, g(item_out), g(item_bias). */
static double sr_gru_softmax_full(sr_gru_job_t *j, int n, float scale) {
  const int d = j->d, N = (int)j->N;
  sr_gru_gemm(j, CblasNoTrans, CblasTrans, n, N, d, j->Hd, d, j->out, d, 0.0f, j->L, N, 0);
  sr_train_parallel(SR_MIN(j->threads, n), n, sr_gru_bias_mask_rows, j);
  double loss = sr_train_softmax_xent(j->L, n, N, j->tgt, scale, j->threads);
  sr_gru_gemm(j, CblasNoTrans, CblasNoTrans, n, d, N, j->L, N, j->out, d, 0.0f, j->dHd, d, 0);
  sr_gru_gemm(j, CblasTrans, CblasNoTrans, N, d, n, j->L, N, j->Hd, d, 1.0f, j->g + j->o_out, d, 0);
  sr_gru_colsum(j, j->L, n, N, N, j->g + j->o_bias);
  return loss;
}

/* Sampled softmax: column 0 is each row's target, columns 1..S the shared
 * negatives; every logit is corrected by -log(S q(item)); a negative equal
 * to the row's target (accidental hit) is removed. */
static double sr_gru_softmax_sampled(sr_gru_job_t *j, int n, float scale) {
  const int d = j->d, S = j->hp.n_sampled, C = j->cols;
  float *gout = j->g + j->o_out, *gb = j->g + j->o_bias;
  for (int s = 0; s < S; s++) {
    const float u = (float)sr_rng_uniform(&j->rng);
    int32_t lo = 0, hi = j->N - 1;
    while (lo < hi) {
      const int32_t mid = lo + (hi - lo) / 2;
      if (j->q_cdf[mid] > u)
        hi = mid;
      else
        lo = mid + 1;
    }
    j->samp[s] = lo;
    j->samp_logq[s] = logf((float)S * j->q[lo]);
    memcpy(j->Ws + (size_t)s * d, j->out + (size_t)lo * d, (size_t)d * sizeof(float));
  }
  sr_gru_gemm(j, CblasNoTrans, CblasTrans, n, S, d, j->Hd, d, j->Ws, d, 0.0f, j->L + 1, C, 0);
  for (int k = 0; k < n; k++) {
    float *row = j->L + (size_t)k * C;
    const int32_t tgt = j->tgt[k];
    const float *h = j->Hd + (size_t)k * d, *w = j->out + (size_t)tgt * d;
    float tl = j->bias[tgt] - logf((float)S * j->q[tgt]);
    for (int i = 0; i < d; i++)
      tl += h[i] * w[i];
    row[0] = tl;
    for (int s = 0; s < S; s++)
      row[1 + s] =
          j->samp[s] == tgt ? -INFINITY : row[1 + s] + j->bias[j->samp[s]] - j->samp_logq[s];
  }
  int32_t *zero = sr_calloc((size_t)n, sizeof(int32_t));
  double loss = sr_train_softmax_xent(j->L, n, C, zero, scale, j->threads);
  sr_free(zero);
  /* dHd = dL[:, 1:] Ws + dL[:, 0] w_target; the target's output row and bias */
  sr_gru_gemm(j, CblasNoTrans, CblasNoTrans, n, d, S, j->L + 1, C, j->Ws, d, 0.0f, j->dHd, d, 0);
  for (int k = 0; k < n; k++) {
    const int32_t tgt = j->tgt[k];
    const float tc = j->L[(size_t)k * C];
    const float *w = j->out + (size_t)tgt * d, *h = j->Hd + (size_t)k * d;
    float *dh = j->dHd + (size_t)k * d, *go = gout + (size_t)tgt * d;
    for (int i = 0; i < d; i++) {
      dh[i] += tc * w[i];
      go[i] += tc * h[i];
    }
    gb[tgt] += tc;
  }
  /* the negatives' output rows and biases */
  sr_gru_gemm(j, CblasTrans, CblasNoTrans, S, d, n, j->L + 1, C, j->Hd, d, 0.0f, j->gWs, d, 0);
  memset(j->samp_logq, 0, (size_t)S * sizeof(float)); /* log q is spent: column sums */
  sr_gru_colsum(j, j->L + 1, n, S, C, j->samp_logq);
  for (int s = 0; s < S; s++) {
    float *go = gout + (size_t)j->samp[s] * d;
    const float *src = j->gWs + (size_t)s * d;
    for (int i = 0; i < d; i++)
      go[i] += src[i];
    gb[j->samp[s]] += j->samp_logq[s];
  }
  return loss;
}

/* out[i] = add[i] + sum_j v[j] M[j][i] for i < n (M row-major K x n): the
 * axpy sweep of model_gru.c's cell, here for dh_prev = dp + dC U^T with
 * M = U^T. */
static inline __attribute__((always_inline)) void sr_gru_axpy_rows(const float *restrict v,
                                                                   const float *restrict M, int K,
                                                                   int n, const float *restrict add,
                                                                   float *restrict out) {
  int i = 0;
  sr_gru_v16 w, s;
  for (; i + 16 <= n; i += 16) {
    sr_gru_v16 acc;
    memcpy(&acc, add + i, sizeof(acc));
    for (int k = 0; k < K; k++) {
      memcpy(&w, M + (size_t)k * n + i, sizeof(w));
      s = (sr_gru_v16){0} + v[k];
      acc += s * w;
    }
    memcpy(out + i, &acc, sizeof(acc));
  }
  for (; i < n; i++) {
    float acc = add[i];
    for (int k = 0; k < K; k++)
      acc += v[k] * M[(size_t)k * n + i];
    out[i] = acc;
  }
}

/* Back-propagation through the chunk for lanes [lo, hi): dA (input-side
 * gate gradients) and dC (hidden-side) of every row. */
SR_GRU_TRAIN_CLONES static void sr_gru_bptt_lanes(void *arg, int64_t lo, int64_t hi) {
  sr_gru_job_t *j = arg;
  const int d = j->d, d3 = j->d3, B = j->B;
  float dnext[SR_GRU_MAX_DIM], dp[SR_GRU_MAX_DIM];
  for (int64_t b = lo; b < hi; b++) {
    memset(dnext, 0, sizeof(float) * (size_t)d);
    for (int t = j->T - 1; t >= 0; t--) {
      const size_t r = (size_t)t * B + (size_t)b;
      float *restrict dA = j->dA + r * d3, *restrict dC = j->dC + r * d3;
      if (!j->active[r]) {
        memset(dA, 0, (size_t)d3 * sizeof(float));
        memset(dC, 0, (size_t)d3 * sizeof(float));
        memset(dnext, 0, sizeof(float) * (size_t)d);
        continue;
      }
      const float *restrict c = j->cache + r * 4 * d, *restrict hp = j->Hp + r * d;
      const float *restrict dH = j->dH + r * d;
      for (int i = 0; i < d; i++) {
        const float rr = c[i], z = c[d + i], nn = c[2 * d + i], hn = c[3 * d + i];
        const float dh = dH[i] + dnext[i];
        const float dn = dh * (1.0f - z), dz = dh * (hp[i] - nn);
        const float dan = dn * (1.0f - nn * nn);
        const float dar = dan * hn * rr * (1.0f - rr), daz = dz * z * (1.0f - z);
        dA[i] = dC[i] = dar;
        dA[d + i] = dC[d + i] = daz;
        dA[2 * d + i] = dan;
        dC[2 * d + i] = dan * rr;
        dp[i] = dh * z;
      }
      if (t == 0 || j->reset[r]) { /* chunk border or a fresh user: truncate */
        memset(dnext, 0, sizeof(float) * (size_t)d);
        continue;
      }
      sr_gru_axpy_rows(dC, j->UT, d3, d, dp, dnext);
    }
  }
}

/* Loss + gradient of one chunk (forward done, n active rows) into j->g
 * (which the caller zeroed). Returns the summed loss. */
static double sr_gru_chunk_backward(sr_gru_job_t *j, int n) {
  const int d = j->d, d3 = j->d3, R = j->R;
  if (!n) return 0.0;
  const float scale = 1.0f / (float)n;
  for (int k = 0; k < n; k++) {
    const size_t r = (size_t)j->ridx[k];
    const float *h = j->H + r * d, *mh = j->MH + r * d;
    float *hd = j->Hd + (size_t)k * d;
    for (int i = 0; i < d; i++)
      hd[i] = h[i] * mh[i];
  }
  const double loss =
      j->sampled ? sr_gru_softmax_sampled(j, n, scale) : sr_gru_softmax_full(j, n, scale);
  memset(j->dH, 0, (size_t)R * d * sizeof(float));
  for (int k = 0; k < n; k++) {
    const size_t r = (size_t)j->ridx[k];
    const float *mh = j->MH + r * d, *src = j->dHd + (size_t)k * d;
    float *dst = j->dH + r * d;
    for (int i = 0; i < d; i++)
      dst[i] = src[i] * mh[i];
  }
  for (int k = 0; k < d; k++)
    for (int q = 0; q < d3; q++)
      j->UT[(size_t)q * d + k] = j->U[(size_t)k * d3 + q];
  sr_train_parallel(SR_MIN(j->threads, j->B), j->B, sr_gru_bptt_lanes, j);

  /* weight gradients over all rows (inactive rows are zero) */
  cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, d, d3, R, 1.0f, j->X, d, j->dA, d3, 1.0f,
              j->g + j->o_w, d3);
  cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, d, d3, R, 1.0f, j->Hp, d, j->dC, d3, 1.0f,
              j->g + j->o_u, d3);
  cblas_sgemv(CblasRowMajor, CblasTrans, R, d3, 1.0f, j->dA, d3, j->ones, 1, 1.0f, j->g + j->o_b,
              1);
  cblas_sgemv(CblasRowMajor, CblasTrans, R, d, 1.0f, j->dC + 2 * d, d3, j->ones, 1, 1.0f,
              j->g + j->o_bhn, 1);
  sr_gru_gemm(j, CblasNoTrans, CblasTrans, R, d, d3, j->dA, d3, j->W, d3, 0.0f, j->dX, d, 0);
  /* input embedding rows (through the dropout mask) */
  float *gemb = j->g + (j->hp.tied ? j->o_out : j->o_in);
  float *gtype = j->g + j->o_type, *ggap = j->g + j->o_gap;
  for (int k = 0; k < n; k++) {
    const size_t r = (size_t)j->ridx[k];
    const float *dx = j->dX + r * d, *mx = j->MX + r * d;
    float *ge = gemb + (size_t)j->r_item[r] * d, *gg = ggap + (size_t)j->r_gap[r] * d;
    float *gt = (unsigned)j->r_type[r] < SR_EV__CNT ? gtype + (size_t)j->r_type[r] * d : NULL;
    for (int i = 0; i < d; i++) {
      const float v = dx[i] * mx[i];
      ge[i] += v;
      gg[i] += v;
      if (gt) gt[i] += v;
    }
  }
  return loss;
}

/* Learned blocks, as (arena offset, count) for Adam; returns how many. */
static int sr_gru_learned(const sr_gru_job_t *j, size_t *off, size_t *cnt) {
  const size_t d = (size_t)j->d, N = (size_t)j->N;
  int k = 0;
  if (!j->hp.tied) off[k] = j->o_in, cnt[k++] = N * d;
  off[k] = j->o_out, cnt[k++] = N * d;
  off[k] = j->o_bias, cnt[k++] = N;
  off[k] = j->o_w, cnt[k++] = d * 3 * d;
  off[k] = j->o_u, cnt[k++] = d * 3 * d;
  off[k] = j->o_b, cnt[k++] = 3 * d;
  off[k] = j->o_bhn, cnt[k++] = d;
  off[k] = j->o_type, cnt[k++] = SR_EV__CNT * d;
  off[k] = j->o_gap, cnt[k++] = (size_t)sr_model_block(j->m, "gap_emb")->count;
  return k;
}

static void sr_gru_init_params(sr_gru_job_t *j, sr_rng_t *rng) {
  sr_model_t *m = j->m;
  const sr_dataset_t *ds = j->ds;
  const int d = j->d;
  memset(m->arena, 0, m->arena_floats * sizeof(float));
  const float sd = j->hp.init_sd > 0.0f ? j->hp.init_sd : 1.0f / sqrtf((float)d);
  const size_t nd = (size_t)j->N * d;
  if (!j->hp.tied)
    for (size_t i = 0; i < nd; i++)
      j->in[i] = sd * sr_rng_normal(rng);
  for (size_t i = 0; i < nd; i++)
    j->out[i] = sd * sr_rng_normal(rng);
  const float a = 1.0f / sqrtf((float)d); /* PyTorch's GRU init */
  for (size_t i = 0; i < (size_t)d * j->d3; i++)
    j->W[i] = a * (float)(2.0 * sr_rng_uniform(rng) - 1.0);
  for (size_t i = 0; i < (size_t)d * j->d3; i++)
    j->U[i] = a * (float)(2.0 * sr_rng_uniform(rng) - 1.0);
  /* item_bias = centred log popularity: training starts at most-popular */
  double *cnt = sr_calloc((size_t)j->N, sizeof(double)), mean = 0.0;
  for (int32_t u = 0; u < ds->n_users; u++)
    for (int64_t e = ds->user_off[u]; e < j->end[u]; e++)
      cnt[ds->ev_item[e]] += 1.0;
  for (int32_t i = 0; i < j->N; i++)
    mean += log(cnt[i] + 1.0) / j->N;
  for (int32_t i = 0; i < j->N; i++)
    j->bias[i] = (float)(log(cnt[i] + 1.0) - mean);
  sr_free(cnt);
  sr_model_block(m, "hparams")->data[0] = j->hp.tied ? 1.0f : 0.0f;
}

sr_err_t sr_train_gru(const sr_dataset_t *ds, const sr_train_conf_t *conf, sr_model_t *m,
                      sr_snapshot_info_t *info, char *errstr, size_t errsz) {
  sr_err_t err = SR_OK;
  sr_gru_hp_t hp;
  sr_gru_hp_defaults(&hp);
  const int threads = sr_train_threads(conf);
  sr_train_split_t split;
  sr_train_best_t best;
  sr_adam_t adam;
  sr_train_progress_t prog;
  sr_gru_job_t J, *j = &J;
  int32_t *users = NULL;
  float *ema = NULL, *tmp = NULL;
  memset(&best, 0, sizeof(best));
  memset(&adam, 0, sizeof(adam));
  memset(j, 0, sizeof(*j));
  const int blas_threads = openblas_get_num_threads();
  openblas_set_num_threads(1); /* see "BLAS on our threads" */
  sr_train_split_init(&split, ds, conf->valid_frac, conf->seed);

  const int lanes = SR_MAX(1, conf->batch / SR_MAX(1, hp.chunk));
  if ((err = sr_gru_job_init(j, ds, m, &hp, lanes, split.train_end, threads, conf->seed, errstr,
                             errsz)) != SR_OK)
    goto out;
  sr_gru_init_params(j, &j->rng);
  if (j->sampled) sr_gru_build_sampler(j);
  users = sr_malloc(((size_t)ds->n_users + 1) * sizeof(int32_t));
  int n_users = 0;
  for (int32_t u = 0; u < ds->n_users; u++)
    if (split.train_end[u] - ds->user_off[u] >= 2) users[n_users++] = u;
  if ((err = sr_adam_init(&adam, m->arena_floats, conf->lr, conf->l2, threads, errstr, errsz)) !=
      SR_OK)
    goto out;
  if ((err = sr_train_best_init(&best, m, errstr, errsz)) != SR_OK) goto out;
  size_t boff[16], bcnt[16];
  const int nb = sr_gru_learned(j, boff, bcnt);

  if (hp.ema > 0.0f) {
    ema = sr_gru_falloc(m->arena_floats);
    tmp = sr_gru_falloc(m->arena_floats);
    if (!ema || !tmp) {
      err = sr_seterr(errstr, errsz, SR_ERR_NOMEM, "train gru: cannot allocate the average");
      goto out;
    }
    memcpy(ema, m->arena, m->arena_floats * sizeof(float));
  }
  sr_train_progress_begin(&prog, conf);
  const int64_t t_start = sr_mono_us(), P = split.train_positions;
  int epoch, stop = 0;
  double epoch_loss = NAN;
  for (epoch = 1; epoch <= conf->epochs && !stop; epoch++) {
    sr_train_progress_epoch(&prog, epoch);
    sr_gru_deal(j, users, n_users);
    double loss_sum = 0.0;
    int64_t done = 0;
    int n;
    while ((n = sr_gru_chunk_forward(j, 1)) > 0) {
      memset(j->g, 0, m->arena_floats * sizeof(float));
      loss_sum += sr_gru_chunk_backward(j, n);
      sr_adam_next(&adam);
      for (int b = 0; b < nb; b++)
        sr_adam_update(&adam, m->arena + boff[b], j->g + boff[b], boff[b], bcnt[b]);
      if (ema) { /* Polyak average; warm start (1 + t) / (10 + t) */
        const float bt = SR_MIN(hp.ema, (float)(1 + adam.t) / (float)(10 + adam.t));
        for (int b = 0; b < nb; b++) {
          float *restrict e = ema + boff[b];
          const float *restrict p = m->arena + boff[b];
          for (size_t i = 0; i < bcnt[b]; i++)
            e[i] = bt * e[i] + (1.0f - bt) * p[i];
        }
      }
      done += n;
      sr_train_progress_update(&prog, done, P, loss_sum / (double)done, 0);
      if (conf->max_seconds > 0 && (double)(sr_mono_us() - t_start) / 1e6 >= conf->max_seconds) {
        stop = 1;
        break;
      }
    }
    epoch_loss = done ? loss_sum / (double)done : NAN;
    sr_train_metric_t vm;
    if (ema) { /* validate (and keep) the averaged parameters */
      memcpy(tmp, m->arena, m->arena_floats * sizeof(float));
      memcpy(m->arena, ema, m->arena_floats * sizeof(float));
    }
    if ((err = sr_train_validate(m, ds, &split, 10, &vm, errstr, errsz)) != SR_OK) goto out;
#ifdef SR_TUNING
    if (sr_train_gru_epoch_cb) {
      sr_train_progress_end(&prog);
      fprintf(stderr, "valid HR@10 %.4f NDCG@10 %.4f  %.1fs\n", vm.hr, vm.ndcg,
              (double)(sr_mono_us() - t_start) / 1e6);
      sr_train_gru_epoch_cb(m, epoch);
    }
#endif
    prog.valid = vm.ndcg;
    sr_train_progress_update(&prog, done, P, epoch_loss, 1);
    sr_train_progress_end(&prog);
    if (done && !isfinite(epoch_loss)) {
      err = sr_seterr(errstr, errsz, SR_ERR_STATE,
                      "train gru: loss diverged in epoch %d (try a smaller lr)", epoch);
      goto out;
    }
    sr_log_debug("train", "gru epoch %d loss %.4f valid NDCG@10 %.4f HR@10 %.4f (%d users) %.1fs",
                 epoch, epoch_loss, vm.ndcg, vm.hr, vm.n, (double)(sr_mono_us() - t_start) / 1e6);
    if (vm.n > 0 &&
        sr_train_best_offer(&best, m, epoch, vm.ndcg, (float)epoch_loss, conf->patience))
      stop = 1;
    if (ema) memcpy(m->arena, tmp, m->arena_floats * sizeof(float));
  }
  if (ema && best.epoch == 0) memcpy(m->arena, ema, m->arena_floats * sizeof(float));
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
  openblas_set_num_threads(blas_threads);
  free(ema);
  free(tmp);
  sr_free(users);
  sr_gru_job_free(j);
  sr_train_best_free(&best);
  sr_adam_free(&adam);
  sr_train_split_free(&split);
  return err;
}

/* ---- test hooks (single thread, no dropout, parameters as they are) ---- */

static int64_t *sr_gru_full_end(const sr_dataset_t *ds) {
  int64_t *end = sr_malloc(((size_t)ds->n_users + 1) * sizeof(int64_t));
  for (int32_t u = 0; u < ds->n_users; u++)
    end[u] = ds->user_off[u + 1];
  return end;
}

static void sr_gru_deal_all(sr_gru_job_t *j) {
  int32_t *users = sr_malloc(((size_t)j->ds->n_users + 1) * sizeof(int32_t));
  for (int32_t u = 0; u < j->ds->n_users; u++)
    users[u] = u;
  sr_gru_deal(j, users, j->ds->n_users);
  sr_free(users);
}

/* The state after each input event e (all but each user's last) into
 * H_ev[e * d], computed by the trainer's lanes x chunks forward. */
sr_err_t sr_train_gru_forward_states(sr_model_t *m, const sr_dataset_t *ds, int lanes, int chunk,
                                     float *H_ev) {
  sr_gru_hp_t hp;
  sr_gru_hp_defaults(&hp);
  hp.chunk = chunk;
  hp.tied = sr_model_gru_in_table(m) == m->item_out;
  int64_t *end = sr_gru_full_end(ds);
  sr_gru_job_t J, *j = &J;
  char err[128];
  sr_err_t rc = sr_gru_job_init(j, ds, m, &hp, lanes, end, 1, 1, err, sizeof(err));
  if (rc == SR_OK) {
    sr_gru_deal_all(j);
    int n;
    while ((n = sr_gru_chunk_forward(j, 0)) > 0)
      for (int k = 0; k < n; k++) {
        const int r = j->ridx[k];
        memcpy(H_ev + (size_t)(ds->user_off[j->r_user[r]] + j->r_pos[r]) * j->d,
               j->H + (size_t)r * j->d, (size_t)j->d * sizeof(float));
      }
  }
  sr_gru_job_free(j);
  sr_free(end);
  return rc;
}

/* Gradient (arena-shaped) of the chunk losses of one pass over ds, no
 * dropout, no update; *loss = mean loss per position. With one chunk
 * (lanes x chunk covering every user) it is the exact gradient of *loss.
 * full_softmax_max > 0 overrides the full/sampled threshold. */
sr_err_t sr_train_gru_gradient(sr_model_t *m, const sr_dataset_t *ds, int lanes, int chunk,
                               int32_t full_softmax_max, float *grad, double *loss) {
  sr_gru_hp_t hp;
  sr_gru_hp_defaults(&hp);
  hp.chunk = chunk;
  hp.drop_in = hp.drop_h = 0.0f;
  hp.tied = sr_model_gru_in_table(m) == m->item_out;
  if (full_softmax_max > 0) hp.full_max = full_softmax_max;
  int64_t *end = sr_gru_full_end(ds);
  sr_gru_job_t J, *j = &J;
  char err[128];
  sr_err_t rc = sr_gru_job_init(j, ds, m, &hp, lanes, end, 1, 1, err, sizeof(err));
  if (rc == SR_OK) {
    if (j->sampled) sr_gru_build_sampler(j);
    sr_gru_deal_all(j);
    memset(j->g, 0, m->arena_floats * sizeof(float));
    double ls = 0.0;
    int64_t rows = 0;
    int n;
    while ((n = sr_gru_chunk_forward(j, 0)) > 0) {
      ls += sr_gru_chunk_backward(j, n);
      rows += n;
    }
    memcpy(grad, j->g, m->arena_floats * sizeof(float));
    *loss = rows ? ls / (double)rows : 0.0;
  }
  sr_gru_job_free(j);
  sr_free(end);
  return rc;
}
