/*
 * 0041 gru: the cell and its gradients.
 *
 *  - layout, gap buckets, state init, unknown items;
 *  - sr_model_step against an independent double-precision implementation
 *    of the cell equations (docs/MODEL.md);
 *  - the trainer's analytic gradient (full softmax with seen items masked,
 *    BPTT across a user change inside a chunk, tied and untied embeddings)
 *    against central finite differences of that double-precision loss, for
 *    every learned parameter;
 *  - the sampled-softmax gradient against finite differences of its own
 *    loss (same negatives: the hook reseeds);
 *  - the trainer's batched forward (lanes x chunks) against sequential
 *    sr_model_step: bit-identical.
 */
#include <math.h>
#include <stdint.h>

#include "model/model_int.h" /* the GRU kind's functions */
#include "streamrec/dataset.h"
#include "streamrec/model.h"
#include "test.h"
#include "train/train_int.h" /* the GRU trainer's test hooks */

static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;
static double urand(void) { /* [0, 1) */
  rng_state ^= rng_state << 13;
  rng_state ^= rng_state >> 7;
  rng_state ^= rng_state << 17;
  return (double)(rng_state >> 11) * (1.0 / 9007199254740992.0);
}

/* ---- fixtures ---- */

typedef struct {
  int user, item, type;
  int64_t ts;
} ev_t;

/* Data set with item ids "i<k>"; items are interned in first-appearance
 * order, so the item index of "i<k>" is looked up, not assumed. */
static sr_dataset_t *make_ds(const ev_t *ev, int n) {
  sr_csv_row_t *rows = calloc((size_t)n, sizeof(*rows));
  char(*ub)[16] = calloc((size_t)n, 16), (*ib)[16] = calloc((size_t)n, 16);
  for (int i = 0; i < n; i++) {
    snprintf(ub[i], 16, "u%d", ev[i].user);
    snprintf(ib[i], 16, "i%d", ev[i].item);
    rows[i].user = sr_str_cstr(ub[i]);
    rows[i].item = sr_str_cstr(ib[i]);
    rows[i].value = 1.0f;
    rows[i].ts_ms = ev[i].ts;
    rows[i].type = ev[i].type;
  }
  sr_dataset_t *ds = NULL;
  sr_dataset_from_rows(rows, n, &ds);
  free(rows);
  free(ub);
  free(ib);
  return ds;
}

static sr_model_t *make_model(const sr_dataset_t *ds, int d) {
  sr_str_t *ids = calloc((size_t)ds->n_items, sizeof(*ids));
  for (int32_t i = 0; i < ds->n_items; i++)
    ids[i] = sr_strmap_key(ds->items, i);
  char err[256] = "";
  sr_model_t *m = sr_model_new(SR_MODEL_GRU, d, ds->n_items, ids, err, sizeof(err));
  if (!m) fprintf(stderr, "sr_model_new: %s\n", err);
  free(ids);
  return m;
}

/* every learned float uniform in [-a, a); hparams[0] = tied */
static void randomize(sr_model_t *m, double a, int tied) {
  for (int b = 0; b < m->n_blocks; b++) {
    sr_param_block_t *blk = &m->blocks[b];
    for (size_t i = 0; i < blk->count; i++)
      blk->data[i] = (float)(a * (2.0 * urand() - 1.0));
  }
  sr_param_block_t *hp = sr_model_block(m, "hparams");
  memset(hp->data, 0, hp->count * sizeof(float));
  hp->data[0] = tied ? 1.0f : 0.0f;
}

/* ---- double-precision reference of the model (docs/MODEL.md) ---- */

typedef struct {
  const sr_model_t *m;
  const double *p; /* parameters, arena-shaped */
  size_t o_in, o_out, o_bias, o_w, o_u, o_b, o_bhn, o_type, o_gap;
  int tied;
} ref_t;

static size_t off_of(sr_model_t *m, const char *name) {
  return (size_t)(sr_model_block(m, name)->data - m->arena);
}

static void ref_init(ref_t *R, sr_model_t *m, const double *p) {
  R->m = m;
  R->p = p;
  R->o_in = off_of(m, "item_in");
  R->o_out = off_of(m, "item_out");
  R->o_bias = off_of(m, "item_bias");
  R->o_w = off_of(m, "gru_w");
  R->o_u = off_of(m, "gru_u");
  R->o_b = off_of(m, "gru_b");
  R->o_bhn = off_of(m, "gru_bhn");
  R->o_type = off_of(m, "type_emb");
  R->o_gap = off_of(m, "gap_emb");
  R->tied = sr_model_block(m, "hparams")->data[0] != 0.0f;
}

static double sigm(double v) { return 1.0 / (1.0 + exp(-v)); }

static void ref_step(const ref_t *R, double *h, int32_t item, int type, int64_t dt) {
  const int d = R->m->dim, d3 = 3 * d;
  const double *p = R->p;
  double x[64], a[192], c[192];
  const size_t oe = (R->tied ? R->o_out : R->o_in) + (size_t)item * d;
  const size_t og = R->o_gap + (size_t)sr_model_gru_gap(dt) * d;
  for (int i = 0; i < d; i++)
    x[i] = p[oe + i] + p[R->o_type + (size_t)type * d + i] + p[og + i];
  for (int j = 0; j < d3; j++) {
    a[j] = p[R->o_b + j];
    c[j] = 0.0;
    for (int k = 0; k < d; k++) {
      a[j] += x[k] * p[R->o_w + (size_t)k * d3 + j];
      c[j] += h[k] * p[R->o_u + (size_t)k * d3 + j];
    }
  }
  for (int i = 0; i < d; i++) {
    double r = sigm(a[i] + c[i]), z = sigm(a[d + i] + c[d + i]);
    double n = tanh(a[2 * d + i] + r * (c[2 * d + i] + p[R->o_bhn + i]));
    h[i] = (1.0 - z) * n + z * h[i];
  }
}

/* mean over every (user, position) of -log softmax(target), with the items
 * the user had up to and including the input masked (except the target) */
static double ref_loss(const ref_t *R, const sr_dataset_t *ds) {
  const int d = R->m->dim;
  const int32_t N = R->m->n_items;
  double h[64], *s = malloc(sizeof(double) * (size_t)N), tot = 0.0;
  int64_t rows = 0;
  for (int32_t u = 0; u < ds->n_users; u++) {
    const int64_t e0 = ds->user_off[u], e1 = ds->user_off[u + 1];
    for (int i = 0; i < d; i++)
      h[i] = 0.0;
    for (int64_t e = e0; e + 1 < e1; e++) {
      ref_step(R, h, ds->ev_item[e], ds->ev_type[e], e > e0 ? ds->ev_ts[e] - ds->ev_ts[e - 1] : 0);
      const int32_t tgt = ds->ev_item[e + 1];
      double mx = -INFINITY;
      for (int32_t i = 0; i < N; i++) {
        int masked = 0;
        for (int64_t q = e0; q <= e; q++)
          masked |= ds->ev_item[q] == i && i != tgt;
        if (masked) {
          s[i] = -INFINITY;
          continue;
        }
        s[i] = R->p[R->o_bias + i];
        for (int k = 0; k < d; k++)
          s[i] += h[k] * R->p[R->o_out + (size_t)i * d + k];
        if (s[i] > mx) mx = s[i];
      }
      double z = 0.0;
      for (int32_t i = 0; i < N; i++)
        z += exp(s[i] - mx);
      tot += log(z) + mx - s[tgt];
      rows++;
    }
  }
  free(s);
  return tot / (double)rows;
}

/* ---- tests ---- */

TEST(layout_and_basics) {
  const ev_t ev[] = {{0, 0, SR_EV_RATE, 1000}, {0, 1, SR_EV_RATE, 2000}, {1, 2, SR_EV_VIEW, 5}};
  sr_dataset_t *ds = make_ds(ev, 3);
  sr_model_t *m = make_model(ds, 6);
  T_ASSERT(m != NULL);
  T_EQ_INT(sr_model_state_size(m), 6);
  static const char *names[] = {"item_in", "item_out", "item_bias", "gru_w",   "gru_u",
                                "gru_b",   "gru_bhn",  "type_emb",  "gap_emb", "hparams"};
  static const size_t counts[] = {18, 18, 3, 108, 108, 18, 6, 48, 144, 4};
  sr_param_block_t b[SR_MODEL_MAX_BLOCKS];
  T_EQ_INT(sr_model_params(m, b, SR_MODEL_MAX_BLOCKS), 10);
  for (int i = 0; i < 10; i++) {
    T_EQ_STR(b[i].name, names[i]);
    T_EQ_INT(b[i].count, counts[i]);
  }
  /* zero state, unknown items change nothing */
  float h[6] = {1, 2, 3, 4, 5, 6}, h0[6];
  sr_model_state_init(m, h);
  for (int i = 0; i < 6; i++)
    T_ASSERT(h[i] == 0.0f);
  randomize(m, 0.5, 0);
  for (int i = 0; i < 6; i++)
    h[i] = (float)i;
  memcpy(h0, h, sizeof(h));
  sr_model_step(m, h, -1, SR_EV_VIEW, 1.0f, 10);
  sr_model_step(m, h, 3, SR_EV_VIEW, 1.0f, 10);
  T_ASSERT(memcmp(h, h0, sizeof(h)) == 0);
  sr_model_step(m, h, 2, SR_EV_VIEW, 1.0f, 10);
  T_ASSERT(memcmp(h, h0, sizeof(h)) != 0);
  /* h' = (1 - z) n + z h is a convex mix of tanh(.) and h */
  for (int i = 0; i < 6; i++)
    T_ASSERT(fabsf(h[i]) <= fmaxf(1.0f, fabsf(h0[i])));
  sr_model_destroy(m);
  /* d above the stack limit is refused */
  sr_str_t one = SR_STR("x");
  char err[256] = "";
  T_ASSERT(sr_model_new(SR_MODEL_GRU, 257, 1, &one, err, sizeof(err)) == NULL);
  m = sr_model_new(SR_MODEL_GRU, 256, 1, &one, err, sizeof(err));
  T_ASSERT_MSG(m != NULL, "%s", err);
  sr_model_destroy(m);
  sr_dataset_destroy(ds);
}

TEST(gap_buckets) {
  T_EQ_INT(sr_model_gru_gap(-5), 0);
  T_EQ_INT(sr_model_gru_gap(0), 0);
  T_EQ_INT(sr_model_gru_gap(1), 1);
  T_EQ_INT(sr_model_gru_gap(999), 1);
  T_EQ_INT(sr_model_gru_gap(1000), 2);
  T_EQ_INT(sr_model_gru_gap(60 * 1000), 6);
  T_EQ_INT(sr_model_gru_gap(3600 * 1000), 12);
  T_EQ_INT(sr_model_gru_gap(86400LL * 1000), 17);
  T_EQ_INT(sr_model_gru_gap(365LL * 86400 * 1000), 23);
  T_EQ_INT(sr_model_gru_gap(INT64_MAX), 23);
  for (int64_t dt = 1; dt < (1LL << 40); dt = dt * 3 + 1) /* monotone */
    T_ASSERT(sr_model_gru_gap(dt) <= sr_model_gru_gap(dt * 3 + 1));
}

/* sr_model_step == the double reference, for d hitting every vector path */
TEST(step_matches_reference) {
  const int dims[] = {1, 5, 8, 12, 64};
  ev_t ev[40];
  for (int i = 0; i < 40; i++)
    ev[i] = (ev_t){0, i % 9, i % 8, 1000LL * i * i};
  sr_dataset_t *ds = make_ds(ev, 40);
  for (size_t di = 0; di < SR_ARRAY_SIZE(dims); di++) {
    const int d = dims[di];
    sr_model_t *m = make_model(ds, d);
    for (int tied = 0; tied <= 1; tied++) {
      randomize(m, 0.4, tied);
      double *p = malloc(sizeof(double) * m->arena_floats);
      for (size_t i = 0; i < m->arena_floats; i++)
        p[i] = m->arena[i];
      ref_t R;
      ref_init(&R, m, p);
      float h[64];
      double hr[64];
      sr_model_state_init(m, h);
      double worst = 0.0;
      for (int64_t e = 0; e < ds->n_events; e++) {
        const int64_t dt = e ? ds->ev_ts[e] - ds->ev_ts[e - 1] : 0;
        for (int i = 0; i < d; i++)
          hr[i] = h[i]; /* one step from the same state */
        sr_model_step(m, h, ds->ev_item[e], (sr_event_type_t)ds->ev_type[e], 1.0f, dt);
        ref_step(&R, hr, ds->ev_item[e], ds->ev_type[e], dt);
        for (int i = 0; i < d; i++) {
          double err = fabs(h[i] - hr[i]) / fmax(fabs(hr[i]), 1e-2);
          if (err > worst) worst = err;
        }
      }
      free(p);
      /* float vs double over sums of d products: a few 1e-6; a wrong term is O(1) */
      T_ASSERT_MSG(worst < 1e-4, "d=%d tied=%d: step vs reference rel err %g", d, tied, worst);
    }
    sr_model_destroy(m);
  }
  sr_dataset_destroy(ds);
}

/* analytic gradient vs central differences of the double reference */
static void grad_check(int tied) {
  /* 3 users; user 0 re-visits an item (a target that was seen before must
   * not be masked); user 2 repeats an item back to back; types and gaps
   * vary. Two lanes: the third user starts inside the chunk of a lane. */
  const ev_t ev[] = {
      {0, 0, SR_EV_RATE, 1000},   {0, 1, SR_EV_VIEW, 1000},        {0, 0, SR_EV_CLICK, 4000},
      {0, 2, SR_EV_RATE, 90000},  {0, 3, SR_EV_PURCHASE, 5000000}, {1, 4, SR_EV_VIEW, 10},
      {1, 5, SR_EV_VIEW, 510},    {1, 6, SR_EV_CART, 900000},      {1, 1, SR_EV_VIEW, 900000},
      {2, 2, SR_EV_RATE, 100000}, {2, 6, SR_EV_RATE, 100000},      {2, 3, SR_EV_RATE, 200000},
      {2, 3, SR_EV_SKIP, 300000}, {2, 5, SR_EV_RATE, 86400000},    {2, 0, SR_EV_RATE, 1000000000}};
  sr_dataset_t *ds = make_ds(ev, (int)SR_ARRAY_SIZE(ev));
  const int d = 5;
  sr_model_t *m = make_model(ds, d);
  T_ASSERT(m != NULL);
  randomize(m, 0.5, tied);
  const size_t n = m->arena_floats;
  float *g = calloc(n, sizeof(float));
  double loss = 0.0;
  T_EQ_INT(sr_train_gru_gradient(m, ds, 2, 16, 0, g, &loss), SR_OK);

  double *p = malloc(sizeof(double) * n);
  for (size_t i = 0; i < n; i++)
    p[i] = m->arena[i];
  ref_t R;
  ref_init(&R, m, p);
  const double l0 = ref_loss(&R, ds);
  T_ASSERT_MSG(fabs(loss - l0) < 1e-5 * fabs(l0), "trainer loss %.9g, reference %.9g", loss, l0);

  const double eps = 1e-6;
  int checked = 0;
  for (int b = 0; b < m->n_blocks; b++) {
    const sr_param_block_t *blk = &m->blocks[b];
    if (!strcmp(blk->name, "hparams")) continue;
    const size_t o = (size_t)(blk->data - m->arena);
    double worst = 0.0, gmax = 0.0;
    size_t worst_i = 0;
    for (size_t i = 0; i < blk->count; i++) {
      const double keep = p[o + i];
      p[o + i] = keep + eps;
      const double lp = ref_loss(&R, ds);
      p[o + i] = keep - eps;
      const double lm = ref_loss(&R, ds);
      p[o + i] = keep;
      const double num = (lp - lm) / (2 * eps), ana = g[o + i];
      const double err = fabs(ana - num) / fmax(fmax(fabs(ana), fabs(num)), 1e-4);
      if (err > worst) {
        worst = err;
        worst_i = i;
      }
      if (fabs(num) > gmax) gmax = fabs(num);
      checked++;
    }
    /* blocks that carry gradient must have some (tied: item_in has none) */
    if (!(tied && !strcmp(blk->name, "item_in")))
      T_ASSERT_MSG(gmax > 1e-3, "block %s: no gradient (max %g)", blk->name, gmax);
    T_ASSERT_MSG(worst < 1e-2, "tied=%d block %s[%zu]: analytic %.6g numeric rel err %.3g", tied,
                 blk->name, worst_i, (double)g[o + worst_i], worst);
  }
  T_ASSERT(checked > 300);
  free(p);
  free(g);
  sr_model_destroy(m);
  sr_dataset_destroy(ds);
}

TEST(grad_untied) { grad_check(0); }
TEST(grad_tied) { grad_check(1); }

/* sampled softmax (forced by a threshold below the catalogue): gradient vs
 * central differences of the sampled loss itself (the hook reseeds, so the
 * negatives are the same at every evaluation). Norm-wise per block. One
 * chunk (64 >= any lane's rows), so nothing is truncated. */
TEST(grad_sampled_softmax) {
  ev_t ev[60];
  for (int i = 0; i < 60; i++)
    ev[i] = (ev_t){i / 12, (i * 7 + i / 12) % 23, SR_EV_VIEW, 1000LL * i};
  sr_dataset_t *ds = make_ds(ev, 60);
  sr_model_t *m = make_model(ds, 4);
  randomize(m, 0.5, 0);
  const size_t n = m->arena_floats;
  float *g = calloc(n, sizeof(float)), *g2 = calloc(n, sizeof(float));
  double loss = 0.0, l2 = 0.0;
  T_EQ_INT(sr_train_gru_gradient(m, ds, 3, 64, 10, g, &loss), SR_OK);
  T_ASSERT(isfinite(loss) && loss > 0.0);
  const char *blocks[] = {"item_out", "item_bias", "gru_w", "gru_u", "item_in"};
  const float eps = 1e-2f;
  for (size_t bi = 0; bi < SR_ARRAY_SIZE(blocks); bi++) {
    sr_param_block_t *blk = sr_model_block(m, blocks[bi]);
    double num2 = 0.0, diff2 = 0.0;
    for (size_t i = 0; i < blk->count; i++) {
      const float keep = blk->data[i];
      blk->data[i] = keep + eps;
      sr_train_gru_gradient(m, ds, 3, 64, 10, g2, &l2);
      const double lp = l2;
      blk->data[i] = keep - eps;
      sr_train_gru_gradient(m, ds, 3, 64, 10, g2, &l2);
      const double lm = l2;
      blk->data[i] = keep;
      const double num = (lp - lm) / (2.0 * eps), ana = g[(size_t)(blk->data - m->arena) + i];
      num2 += num * num;
      diff2 += (num - ana) * (num - ana);
    }
    T_ASSERT_MSG(num2 > 0.0, "block %s has no gradient", blocks[bi]);
    T_ASSERT_MSG(sqrt(diff2 / num2) < 1e-2, "sampled: block %s norm-wise rel err %.3g", blocks[bi],
                 sqrt(diff2 / num2));
  }
  free(g);
  free(g2);
  sr_model_destroy(m);
  sr_dataset_destroy(ds);
}

/* the trainer's lanes x chunks forward == sequential sr_model_step */
static void forward_check(int d, int lanes, int chunk) {
  ev_t *ev = malloc(sizeof(ev_t) * 40 * 70);
  int n = 0;
  for (int u = 0; u < 40; u++) {
    const int len = 1 + (int)(urand() * 70);
    int64_t ts = 0;
    for (int k = 0; k < len; k++) {
      ts += (int64_t)(urand() < 0.3 ? 0 : urand() * 1e7);
      ev[n++] = (ev_t){u, (int)(urand() * 50), (int)(urand() * 8), ts};
    }
  }
  sr_dataset_t *ds = make_ds(ev, n);
  sr_model_t *m = make_model(ds, d);
  randomize(m, 0.5, d % 2);
  float *H = calloc((size_t)ds->n_events * d, sizeof(float));
  T_EQ_INT(sr_train_gru_forward_states(m, ds, lanes, chunk, H), SR_OK);
  float h[64];
  int64_t compared = 0, identical = 0;
  double worst = 0.0;
  for (int32_t u = 0; u < ds->n_users; u++) {
    sr_model_state_init(m, h);
    for (int64_t e = ds->user_off[u]; e + 1 < ds->user_off[u + 1]; e++) {
      const int64_t dt = e > ds->user_off[u] ? ds->ev_ts[e] - ds->ev_ts[e - 1] : 0;
      sr_model_step(m, h, ds->ev_item[e], (sr_event_type_t)ds->ev_type[e], 1.0f, dt);
      const float *t = H + (size_t)e * d;
      for (int i = 0; i < d; i++) {
        double err = fabs((double)t[i] - h[i]) / fmax(fabs(h[i]), 1e-6);
        if (err > worst) worst = err;
      }
      identical += memcmp(t, h, sizeof(float) * (size_t)d) == 0;
      compared++;
    }
  }
  T_ASSERT(compared > 500);
  T_ASSERT_MSG(worst <= 1e-5, "d=%d: batched forward vs sr_model_step rel err %g", d, worst);
  T_ASSERT_MSG(identical == compared, "d=%d: %lld of %lld states not bit-identical", d,
               (long long)(compared - identical), (long long)compared);
  free(H);
  free(ev);
  sr_model_destroy(m);
  sr_dataset_destroy(ds);
}

TEST(batched_forward_equals_step) {
  forward_check(12, 7, 9);
  forward_check(7, 3, 32);
  forward_check(64, 16, 5);
}

TEST_MAIN(RUN(layout_and_basics); RUN(gap_buckets); RUN(step_matches_reference); RUN(grad_untied);
          RUN(grad_tied); RUN(grad_sampled_softmax); RUN(batched_forward_equals_step))
