/*
 * 0070 eval: the evaluator's figures on a hand-built data set and model
 * whose every ranking is worked out below, for the model and both
 * baselines; the sampled protocol when every item gets sampled; the
 * leave-one-out split (exact file contents) and its equivalence with LOO
 * on the unsplit data; prequential replay; the one-user top-K (parity API)
 * in both seen-filter modes; the one-pass min-count filter.
 *
 * The data set (k = 2 throughout; ts = T + offset seconds, T = 1e9):
 *
 *   user  events in time order  history     target
 *   u1    a b c d               a b c       d
 *   u2    b c e                 b c         e
 *   u3    a c f b               a c f       b
 *   u4    d e                   d e         - (2 events: skipped)
 *   u5    a d z                 a d         z (not in the model: miss)
 *   u6    c d e                 c d         e
 *
 * History: 14 events. Popularity a 3, b 2, c 4, d 3, e 1, f 1, so the
 * most-popular order (count, then lower index) is c a d b e f and an
 * item's self-information is log2(14 / count).
 * Transitions: a>b, a>c, a>d, c>f, c>d, d>e once, b>c twice.
 *
 * The model (decay, d = 2, a = 0.5, every type weight 1, no bias) uses the
 * same vector as input and output embedding:
 *   a (1,0)  b (0,1)  c (-1,0)  d (0,-1)  e (1,1)  f (-1,1)
 * so h = sum 0.5^(age) x_item, and score_i = h . x_i.
 */
#include <stdint.h>

#include "streamrec/dataset.h"
#include "streamrec/eval.h"
#include "streamrec/model.h"
#include "test.h"

#define TOL 1e-6
#define L2(x) log2(x)

static const char *const k_csv = "userId,movieId,rating,timestamp\n"
                                 "u1,a,4,1000000100\n"
                                 "u1,b,4,1000000200\n"
                                 "u2,b,3,1000000150\n"
                                 "u1,c,5,1000000300\n"
                                 "u3,a,1,1000000110\n"
                                 "u2,c,2.5,1000000250\n"
                                 "u1,d,3,1000000400\n"
                                 "u3,c,3,1000000210\n"
                                 "u4,d,2,1000000120\n"
                                 "u2,e,4,1000000350\n"
                                 "u3,f,4,1000000310\n"
                                 "u4,e,5,1000000220\n"
                                 "u3,b,2,1000000410\n"
                                 "u5,a,1,1000000130\n"
                                 "u5,d,2,1000000230\n"
                                 "u5,z,3,1000000330\n"
                                 "u6,c,4,1000000140\n"
                                 "u6,d,4,1000000240\n"
                                 "u6,e,4,1000000340\n";

static int write_file(const char *path, const char *text) {
  FILE *f = fopen(path, "w");
  if (!f) return -1;
  fputs(text, f);
  return fclose(f);
}

static sr_dataset_t *load_text(const char *name, const char *text) {
  const char *path = t_tmp_path(name);
  if (write_file(path, text)) return NULL;
  sr_dataset_t *ds = NULL;
  char err[256];
  if (sr_dataset_load_csv(path, &ds, err, sizeof(err)) != SR_OK) return NULL;
  unlink(path);
  return ds;
}

static sr_model_t *tiny_model(void) {
  static const char *const names[6] = {"a", "b", "c", "d", "e", "f"};
  static const float emb[12] = {1, 0, 0, 1, -1, 0, 0, -1, 1, 1, -1, 1};
  sr_str_t ids[6];
  for (int i = 0; i < 6; i++)
    ids[i] = sr_str_cstr(names[i]);
  char err[256];
  sr_model_t *m = sr_model_new(SR_MODEL_DECAY, 2, 6, ids, err, sizeof(err));
  if (!m) return NULL;
  sr_param_block_t b[16];
  int nb = sr_model_params(m, b, 16);
  for (int i = 0; i < nb; i++) {
    if (!strcmp(b[i].name, "item_in") || !strcmp(b[i].name, "item_out"))
      memcpy(b[i].data, emb, sizeof(emb));
    else if (!strcmp(b[i].name, "item_bias"))
      memset(b[i].data, 0, b[i].count * sizeof(float));
    else if (!strcmp(b[i].name, "type_w"))
      for (size_t j = 0; j < b[i].count; j++)
        b[i].data[j] = 1.0f;
    else if (!strcmp(b[i].name, "hparams"))
      b[i].data[0] = 0.5f;
  }
  return m;
}

static sr_eval_conf_t conf_k2(void) {
  sr_eval_conf_t c;
  sr_eval_conf_defaults(&c);
  c.k = 2;
  return c;
}

/* Checks every figure of the model run on the data set above. */
static int check_loo_figures(const sr_eval_result_t *r) {
  const double s = sqrt(0.5); /* cos 45 degrees */
  int bad = 0;
#define CHK(a, b)                                                                                  \
  do {                                                                                             \
    if (!(fabs((double)(a) - (double)(b)) <= TOL)) {                                               \
      fprintf(stderr, "  %s = %.9g, expected %.9g\n", #a, (double)(a), (double)(b));               \
      bad = 1;                                                                                     \
    }                                                                                              \
  } while (0)
  CHK(r->catalogue, 6);
  CHK(r->users, 6);
  CHK(r->evaluated, 5);
  CHK(r->skipped, 1);
  CHK(r->unknown_targets, 1);
  CHK(r->history_events, 14);
  CHK(r->history_unknown, 0);

  /* Model. States and scores (a..f), seen items filtered:
   *  u1 h = .25a + .5b + c = (-.75, .5): f 1.25, e -.25, d -.5    d rank 2
   *  u2 h = .5b + c = (-1, .5):          f 1.5, d -.5, e -.5      e rank 2
   *     (d and e tie at -.5: the lower index, d, goes first)
   *  u3 h = .25a + .5c + f = (-1.25, 1): b 1, e -.25, d -1        b rank 0
   *  u5 h = .5a + d = (.5, -1):          c -.5, e -.5, b -1, f    (z unknown)
   *  u6 h = .5c + d = (-.5, -1):         a -.5, f -.5, b -1, e    e rank 3
   * Lists: {f,e} {f,d} {b,e} {c,e} {a,f}. One hit (u3). */
  const sr_eval_metrics_t *m = &r->m[SR_EVAL_MODEL];
  CHK(m->valid, 1);
  CHK(m->hits, 1);
  CHK(m->hr, 1.0 / 5);
  CHK(m->ndcg, 1.0 / 5);
  CHK(m->mrr, (1.0 / 3 + 1.0 / 3 + 1.0 + 0 + 1.0 / 4) / 5);
  CHK(m->coverage, 6.0 / 6);
  CHK(m->novelty, (L2(14) + (L2(14) + L2(14 / 3.)) / 2 + (L2(7) + L2(14)) / 2 +
                   (L2(3.5) + L2(14)) / 2 + (L2(14 / 3.) + L2(14)) / 2) /
                      5);
  /* 1 - cos: {f,e} 1, {f,d} 1+s, {b,e} 1-s, {c,e} 1+s, {a,f} 1+s */
  CHK(m->ild, (1 + (1 + s) + (1 - s) + (1 + s) + (1 + s)) / 5);

  /* Most popular (c a d b e f), seen filtered:
   *  u1 {a,b,c}: d e f      d rank 0   list {d,e}
   *  u2 {b,c}:   a d e f    e rank 2   list {a,d}
   *  u3 {a,c,f}: d b e      b rank 1   list {d,b}
   *  u5 {a,d}:   c b e f    (unknown)  list {c,b}
   *  u6 {c,d}:   a b e f    e rank 2   list {a,b}
   * Lists cover a b c d e (5 of 6). */
  const sr_eval_metrics_t *p = &r->m[SR_EVAL_POP];
  CHK(p->valid, 1);
  CHK(p->hits, 2);
  CHK(p->hr, 2.0 / 5);
  CHK(p->ndcg, (1.0 + 1.0 / L2(3)) / 5);
  CHK(p->mrr, (1.0 + 1.0 / 3 + 1.0 / 2 + 0 + 1.0 / 3) / 5);
  CHK(p->coverage, 5.0 / 6);
  CHK(p->novelty, ((L2(14 / 3.) + L2(14)) / 2 + L2(14 / 3.) + (L2(14 / 3.) + L2(7)) / 2 +
                   (L2(3.5) + L2(7)) / 2 + (L2(14 / 3.) + L2(7)) / 2) /
                      5);
  /* {d,e} 1+s, {a,d} 1, {d,b} 2, {c,b} 1, {a,b} 1 */
  CHK(p->ild, (6 + s) / 5);

  /* Markov from the last history item, ties by popularity then index:
   *  u1 last c (> f, d; d more popular): d f e      d rank 0  list {d,f}
   *  u2 last c: d f a e                             e rank 3  list {d,f}
   *  u3 last f (no successor): popularity d b e     b rank 1  list {d,b}
   *  u5 last d (> e): e c b f                       (unknown) list {e,c}
   *  u6 last d (> e): e a b f                       e rank 0  list {e,a} */
  const sr_eval_metrics_t *k = &r->m[SR_EVAL_MARKOV];
  CHK(k->valid, 1);
  CHK(k->hits, 3);
  CHK(k->hr, 3.0 / 5);
  CHK(k->ndcg, (1.0 + 1.0 / L2(3) + 1.0) / 5);
  CHK(k->mrr, (1.0 + 1.0 / 4 + 1.0 / 2 + 0 + 1.0) / 5);
  CHK(k->coverage, 6.0 / 6);
  CHK(k->novelty, ((L2(14 / 3.) + L2(14)) + (L2(14 / 3.) + L2(7)) / 2 + (L2(14) + L2(3.5)) / 2 +
                   (L2(14) + L2(14 / 3.)) / 2) /
                      5);
  /* {d,f} 1+s twice, {d,b} 2, {e,c} 1+s, {e,a} 1-s */
  CHK(k->ild, (6 + 2 * s) / 5);
#undef CHK
  return bad;
}

TEST(loo_hand_figures) {
  sr_dataset_t *ds = load_text("loo.csv", k_csv);
  sr_model_t *m = tiny_model();
  T_ASSERT(ds && m);
  sr_eval_conf_t c = conf_k2();
  sr_eval_result_t r;
  char err[256];
  T_EQ_INT(sr_eval_loo(m, ds, &c, &r, err, sizeof(err)), SR_OK);
  int bad = check_loo_figures(&r);
  /* sampled protocol off: NaN */
  int s_nan = isnan(r.m[SR_EVAL_MODEL].s_hr) && r.m[SR_EVAL_MODEL].s_hits == 0;
  /* micro-batch size must not matter */
  sr_eval_result_t r1;
  c.batch = 1;
  sr_eval_loo(m, ds, &c, &r1, err, sizeof(err));
  c.batch = 2;
  sr_eval_result_t r2;
  sr_eval_loo(m, ds, &c, &r2, err, sizeof(err));
  sr_model_destroy(m);
  sr_dataset_destroy(ds);
  T_ASSERT_MSG(!bad, "figures differ from the hand computation (above)");
  T_ASSERT(s_nan);
  T_ASSERT_MSG(!check_loo_figures(&r1), "batch 1 differs");
  T_ASSERT_MSG(!check_loo_figures(&r2), "batch 2 differs");
}

TEST(baselines_without_model) {
  /* Catalogue = the data's 7 ids in byte order: a..f keep their indices and
   * z is 6 with popularity 0. Popularity and Markov are unchanged except for
   * u5, whose target z now exists: ranked last of c b e f z (rank 4), and
   * coverage is over 7 items. ILD needs embeddings: NaN. */
  sr_dataset_t *ds = load_text("nomodel.csv", k_csv);
  T_ASSERT(ds);
  sr_eval_conf_t c = conf_k2();
  sr_eval_result_t r;
  char err[256];
  T_EQ_INT(sr_eval_loo(NULL, ds, &c, &r, err, sizeof(err)), SR_OK);
  sr_dataset_destroy(ds);
  T_EQ_INT(r.catalogue, 7);
  T_EQ_INT(r.unknown_targets, 0);
  T_EQ_INT(r.m[SR_EVAL_MODEL].valid, 0);
  T_EQ_INT(r.m[SR_EVAL_POP].hits, 2);
  T_NEAR(r.m[SR_EVAL_POP].mrr, (1.0 + 1.0 / 3 + 1.0 / 2 + 1.0 / 5 + 1.0 / 3) / 5, TOL);
  T_NEAR(r.m[SR_EVAL_POP].coverage, 5.0 / 7, TOL);
  /* u5 under Markov: e c b f z -> rank 4 */
  T_NEAR(r.m[SR_EVAL_MARKOV].mrr, (1.0 + 1.0 / 4 + 1.0 / 2 + 1.0 / 5 + 1.0) / 5, TOL);
  T_NEAR(r.m[SR_EVAL_MARKOV].hr, 3.0 / 5, TOL);
  T_ASSERT(isnan(r.m[SR_EVAL_POP].ild));
}

TEST(sampled_all_items) {
  /* With 100 negatives and 6 items every non-interacted item is sampled,
   * so the sampled rank is the full-ranking rank: identical figures. */
  sr_dataset_t *ds = load_text("s100.csv", k_csv);
  sr_model_t *m = tiny_model();
  T_ASSERT(ds && m);
  sr_eval_conf_t c = conf_k2();
  c.n_negatives = 100;
  sr_eval_result_t r;
  char err[256];
  T_EQ_INT(sr_eval_loo(m, ds, &c, &r, err, sizeof(err)), SR_OK);
  int bad = check_loo_figures(&r); /* full ranking still reported */
  /* one negative per user: deterministic for a seed, never below full ranking */
  sr_eval_result_t a, b;
  c.n_negatives = 1;
  sr_eval_loo(m, ds, &c, &a, err, sizeof(err));
  sr_eval_loo(m, ds, &c, &b, err, sizeof(err));
  sr_model_destroy(m);
  sr_dataset_destroy(ds);
  T_ASSERT(!bad);
  for (int i = 0; i < SR_EVAL__N_METHODS; i++) {
    const sr_eval_metrics_t *x = &r.m[i];
    T_EQ_INT(r.n_negatives, 100);
    T_EQ_INT(x->s_hits, x->hits);
    T_NEAR(x->s_hr, x->hr, TOL);
    T_NEAR(x->s_ndcg, x->ndcg, TOL);
    T_NEAR(x->s_mrr, x->mrr, TOL);
    T_NEAR(a.m[i].s_mrr, b.m[i].s_mrr, 0);
    T_ASSERT(a.m[i].s_hits >= r.m[i].hits);
    /* 1 negative, k = 2: every known target is a hit (4 of 5 users) */
    T_EQ_INT(a.m[i].s_hits, 4);
  }
}

TEST(ties_and_repeats) {
  /* A repeated target is what serve would never list again (the default
   * filter, state.seen.window.ms 0): a miss for every method, counted in
   * seen_targets. Ties go to the lower index in the rank of the target as
   * well as in the lists (k = 2):
   *
   *   v1  a b a   history a b, target a: consumed before, a miss
   *   v2  c b d   history c b, target d
   *   v3  d c     skipped
   * Popularity a 1, b 2, c 2, d 1, e 0, f 0: order b c a d e f.
   *   pop v1 (a b filtered): c d e f           list {c,d}
   *   pop v2 (b c):          a d e f  d rank 1 (ties a, which has the lower
   *                                   index)   list {a,d}
   * Markov: b has no successor, so both users get the popularity lists.
   * Model (item_out a (1,0) b (0,1) c (-1,0) d (0,-1) e (1,1) f (-1,1)):
   *   v1 h = .5a + b = (.5, 1): e 1.5, f .5 (a, b filtered)   list {e,f}
   *   v2 h = .5c + b = (-.5, 1): f 1.5, e .5, a -.5, d -1: d rank 3, list {f,e}
   * The sampled protocol samples every non-interacted item here, so its
   * ranks equal the full ones. */
  static const char *const csv = "user,item,rating,ts\n"
                                 "v1,a,1,1000000001\nv2,c,1,1000000002\nv1,b,1,1000000003\n"
                                 "v3,d,1,1000000004\nv2,b,1,1000000005\nv1,a,1,1000000006\n"
                                 "v3,c,1,1000000007\nv2,d,1,1000000008\n";
  sr_dataset_t *ds = load_text("ties.csv", csv);
  sr_model_t *m = tiny_model();
  T_ASSERT(ds && m);
  sr_eval_conf_t c = conf_k2();
  c.n_negatives = 100;
  sr_eval_result_t r;
  char err[256];
  T_EQ_INT(sr_eval_loo(m, ds, &c, &r, err, sizeof(err)), SR_OK);
  T_EQ_INT(r.evaluated, 2);
  T_EQ_INT(r.skipped, 1);
  T_EQ_INT(r.seen_targets, 1);
  T_EQ_INT(r.history_events, 6);
  const sr_eval_metrics_t *x = &r.m[SR_EVAL_MODEL];
  T_EQ_INT(x->hits, 0);
  T_NEAR(x->ndcg, 0, TOL);
  T_NEAR(x->mrr, (1.0 / 4) / 2, TOL);
  T_NEAR(x->coverage, 2.0 / 6, TOL);
  for (int i = SR_EVAL_POP; i <= SR_EVAL_MARKOV; i++) {
    x = &r.m[i];
    T_EQ_INT(x->hits, 1);
    T_NEAR(x->ndcg, (1.0 / log2(3.0)) / 2, TOL);
    T_NEAR(x->mrr, 0.5 / 2, TOL);
    T_NEAR(x->coverage, 3.0 / 6, TOL);
  }
  for (int i = 0; i < SR_EVAL__N_METHODS; i++) {
    T_EQ_INT(r.m[i].s_hits, r.m[i].hits);
    T_NEAR(r.m[i].s_mrr, r.m[i].mrr, TOL);
    T_NEAR(r.m[i].s_ndcg, r.m[i].ndcg, TOL);
  }

  /* With a re-consumption window of 1.5 s the items consumed 1.5 s or more
   * before each user's last history event are back: v1 filters b only,
   * and its target a is rankable again; v2 filters b only.
   *   model v1: e 1.5, a .5 (ties f, lower index)  a rank 1, list {e,a}
   *   model v2 (h (-.5, 1)): f 1.5, c .5, e .5, a -.5, d -1: d rank 4,
   *            list {f,c} */
  c.seen.window_ms = 1500;
  T_EQ_INT(sr_eval_loo(m, ds, &c, &r, err, sizeof(err)), SR_OK);
  T_EQ_INT(r.seen_targets, 0);
  x = &r.m[SR_EVAL_MODEL];
  T_EQ_INT(x->hits, 1);
  T_NEAR(x->ndcg, (1.0 / log2(3.0)) / 2, TOL);
  T_NEAR(x->mrr, (1.0 / 2 + 1.0 / 5) / 2, TOL);
  T_NEAR(x->coverage, 4.0 / 6, TOL);
  c.seen.window_ms = 0;
  sr_model_destroy(m);
  sr_dataset_destroy(ds);

  /* Baseline ties go by item id, not by catalogue index: a model whose
   * catalogue is d c b a (so d has the lowest index) and no model at all
   * (catalogue a b c d) give the figures above, d still after a for v2. */
  sr_str_t rev[4] = {SR_STR("d"), SR_STR("c"), SR_STR("b"), SR_STR("a")};
  sr_model_t *mr = sr_model_new(SR_MODEL_DECAY, 2, 4, rev, err, sizeof(err));
  ds = load_text("ties2.csv", csv);
  T_ASSERT(mr && ds);
  sr_eval_result_t rr, rn;
  T_EQ_INT(sr_eval_loo(mr, ds, &c, &rr, err, sizeof(err)), SR_OK);
  T_EQ_INT(sr_eval_loo(NULL, ds, &c, &rn, err, sizeof(err)), SR_OK);
  sr_model_destroy(mr);
  sr_dataset_destroy(ds);
  for (int i = SR_EVAL_POP; i <= SR_EVAL_MARKOV; i++) {
    T_EQ_INT(rr.m[i].hits, 1);
    T_EQ_INT(rn.m[i].hits, 1);
    T_NEAR(rr.m[i].ndcg, (1.0 / log2(3.0)) / 2, TOL);
    T_NEAR(rn.m[i].ndcg, (1.0 / log2(3.0)) / 2, TOL);
    T_NEAR(rr.m[i].mrr, 0.25, TOL);
    T_NEAR(rn.m[i].mrr, 0.25, TOL);
    T_NEAR(rr.m[i].coverage, 3.0 / 4, TOL); /* lists {c,d} {a,d} */
    T_NEAR(rn.m[i].s_mrr, 0.25, TOL);
    T_NEAR(rr.m[i].s_mrr, 0.25, TOL);
  }
}

static const char *const k_train = "userId,itemId,value,timestamp_ms,type\n"
                                   "u1,a,4,1000000100000,RATE\n"
                                   "u1,b,4,1000000200000,RATE\n"
                                   "u1,c,5,1000000300000,RATE\n"
                                   "u2,b,3,1000000150000,RATE\n"
                                   "u2,c,2.5,1000000250000,RATE\n"
                                   "u3,a,1,1000000110000,RATE\n"
                                   "u3,c,3,1000000210000,RATE\n"
                                   "u3,f,4,1000000310000,RATE\n"
                                   "u4,d,2,1000000120000,RATE\n"
                                   "u4,e,5,1000000220000,RATE\n"
                                   "u5,a,1,1000000130000,RATE\n"
                                   "u5,d,2,1000000230000,RATE\n"
                                   "u6,c,4,1000000140000,RATE\n"
                                   "u6,d,4,1000000240000,RATE\n";
static const char *const k_test = "userId,itemId,value,timestamp_ms,type\n"
                                  "u1,d,3,1000000400000,RATE\n"
                                  "u2,e,4,1000000350000,RATE\n"
                                  "u3,b,2,1000000410000,RATE\n"
                                  "u5,z,3,1000000330000,RATE\n"
                                  "u6,e,4,1000000340000,RATE\n";

TEST(split_contents_and_eval) {
  sr_dataset_t *ds = load_text("split.csv", k_csv);
  T_ASSERT(ds);
  sr_buf_t tr, te;
  sr_buf_init(&tr);
  sr_buf_init(&te);
  sr_eval_split_stats_t st;
  sr_eval_split_loo(ds, 3, &tr, &te, &st);
  sr_buf_putc(&tr, 0);
  sr_buf_putc(&te, 0);
  int ok_tr = !strcmp((const char *)tr.data, k_train);
  int ok_te = !strcmp((const char *)te.data, k_test);
  if (!ok_tr) fprintf(stderr, "train.csv:\n%s", (const char *)tr.data);
  if (!ok_te) fprintf(stderr, "test.csv:\n%s", (const char *)te.data);
  sr_buf_free(&tr);
  sr_buf_free(&te);
  sr_dataset_destroy(ds);
  T_ASSERT(ok_tr);
  T_ASSERT(ok_te);
  T_EQ_INT(st.users, 6);
  T_EQ_INT(st.items, 7);
  T_EQ_INT(st.events, 19);
  T_EQ_INT(st.test_users, 5);
  T_EQ_INT(st.train_events, 14);
  T_EQ_INT(st.test_events, 5);

  /* eval on the split == LOO on the unsplit data (full and sampled) */
  sr_dataset_t *dtr = load_text("train.csv", k_train), *dte = load_text("test.csv", k_test);
  sr_dataset_t *all = load_text("all.csv", k_csv);
  sr_model_t *m = tiny_model();
  T_ASSERT(dtr && dte && all && m);
  sr_eval_conf_t c = conf_k2();
  c.n_negatives = 2;
  sr_eval_result_t a, b;
  char err[256];
  T_EQ_INT(sr_eval_split(m, dtr, dte, &c, &a, err, sizeof(err)), SR_OK);
  T_EQ_INT(sr_eval_loo(m, all, &c, &b, err, sizeof(err)), SR_OK);
  int bad = check_loo_figures(&a);
  sr_model_destroy(m);
  sr_dataset_destroy(dtr);
  sr_dataset_destroy(dte);
  sr_dataset_destroy(all);
  T_ASSERT(!bad);
  for (int i = 0; i < SR_EVAL__N_METHODS; i++) {
    T_NEAR(a.m[i].s_hr, b.m[i].s_hr, 0);
    T_NEAR(a.m[i].s_ndcg, b.m[i].s_ndcg, 0);
    T_NEAR(a.m[i].s_mrr, b.m[i].s_mrr, 0);
  }
  T_EQ_INT(a.users, b.users);
  T_EQ_INT(a.skipped, b.skipped);
}

TEST(prequential) {
  /* Global order: p1 a, p2 a, p1 b, p2 b, p3 c, p3 e (file order differs).
   * Warm-up floor(0.2 * 6) = 1 event; k = 3; 5 events evaluated.
   * Incremental popularity before each event, seen items filtered, ties
   * by id:
   *   p2 a: a1                 -> a b c        hit
   *   p1 b: a2; p1 saw a       -> b c d        hit
   *   p2 b: a2 b1; p2 saw a    -> b c d        hit
   *   p3 c: a2 b2              -> a b c        hit
   *   p3 e: a2 b2 c1; saw c    -> a b d (d ties e at 0, lower id)  miss
   *   recall 4/5
   * Model (h = 0 for a new user: all scores 0, lowest index first):
   *   p2 a: new user           -> a b c        hit
   *   p1 b: h = a = (1,0): a 1, e 1, b 0, d 0, c -1, f -1; a seen
   *                            -> e b d        hit
   *   p2 b: the same           -> e b d        hit
   *   p3 c: new user           -> a b c        hit
   *   p3 e: h = c = (-1,0): c 1, f 1, b 0, d 0, a -1, e -1; c seen
   *                            -> f b d        miss (e is 5th: a first)
   *   recall 4/5 */
  static const char *const csv = "user,item,rating,ts\n"
                                 "p3,e,1,1000000006\n"
                                 "p3,c,1,1000000005\n"
                                 "p1,a,1,1000000001\n"
                                 "p2,a,1,1000000002\n"
                                 "p2,b,1,1000000004\n"
                                 "p1,b,1,1000000003\n";
  sr_dataset_t *ds = load_text("preq.csv", csv);
  sr_model_t *m = tiny_model();
  T_ASSERT(ds && m);
  sr_eval_conf_t c;
  sr_eval_conf_defaults(&c);
  c.k = 3;
  sr_eval_preq_result_t r, r1, rn;
  char err[256];
  T_EQ_INT(sr_eval_prequential(m, ds, &c, &r, err, sizeof(err)), SR_OK);
  c.batch = 1;
  T_EQ_INT(sr_eval_prequential(m, ds, &c, &r1, err, sizeof(err)), SR_OK);
  T_EQ_INT(sr_eval_prequential(NULL, ds, &c, &rn, err, sizeof(err)), SR_OK);
  /* k = 1: popularity hits p2 a, p1 b, p2 b (3); the model only p2 a */
  sr_eval_preq_result_t r2;
  c.k = 1;
  c.batch = 256;
  T_EQ_INT(sr_eval_prequential(m, ds, &c, &r2, err, sizeof(err)), SR_OK);
  sr_model_destroy(m);
  sr_dataset_destroy(ds);
  T_EQ_INT(r.events, 6);
  T_EQ_INT(r.warmup, 1);
  T_EQ_INT(r.evaluated, 5);
  T_EQ_INT(r.unknown_items, 0);
  T_EQ_INT(r.hits_pop, 4);
  T_EQ_INT(r.hits_model, 4);
  T_NEAR(r.recall_pop, 0.8, TOL);
  T_NEAR(r.recall_model, 0.8, TOL);
  T_EQ_INT(r1.hits_model, 4);
  T_EQ_INT(r1.hits_pop, 4);
  T_EQ_INT(r2.hits_pop, 3);
  T_EQ_INT(r2.hits_model, 1);
  /* without a model the catalogue is a b c e: p3 e is then 3rd (a b e): hit */
  T_EQ_INT(rn.catalogue, 4);
  T_EQ_INT(rn.hits_pop, 5);
  T_ASSERT(isnan(rn.recall_model));
}

TEST(time_split) {
  /* Same events as the prequential test (file order differs from time
   * order): the cut keeps the first floor(0.5 * 6) = 3 by time; test.csv
   * holds all six in time order and replays to the same prequential result
   * as the unsorted file. */
  static const char *const csv = "user,item,rating,ts\n"
                                 "p3,e,1,1000000006\n"
                                 "p3,c,1,1000000005\n"
                                 "p1,a,1,1000000001\n"
                                 "p2,a,1,1000000002\n"
                                 "p2,b,1,1000000004\n"
                                 "p1,b,1,1000000003\n";
  static const char *const want_train = "userId,itemId,value,timestamp_ms,type\n"
                                        "p1,a,1,1000000001000,RATE\n"
                                        "p2,a,1,1000000002000,RATE\n"
                                        "p1,b,1,1000000003000,RATE\n";
  static const char *const want_test = "userId,itemId,value,timestamp_ms,type\n"
                                       "p1,a,1,1000000001000,RATE\n"
                                       "p2,a,1,1000000002000,RATE\n"
                                       "p1,b,1,1000000003000,RATE\n"
                                       "p2,b,1,1000000004000,RATE\n"
                                       "p3,c,1,1000000005000,RATE\n"
                                       "p3,e,1,1000000006000,RATE\n";
  sr_dataset_t *ds = load_text("tsplit.csv", csv);
  T_ASSERT(ds);
  sr_buf_t tr, te;
  sr_buf_init(&tr);
  sr_buf_init(&te);
  sr_eval_split_stats_t st;
  sr_eval_split_time(ds, 0.5, &tr, &te, &st);
  sr_buf_putc(&tr, 0);
  sr_buf_putc(&te, 0);
  int ok_tr = !strcmp((const char *)tr.data, want_train);
  int ok_te = !strcmp((const char *)te.data, want_test);
  if (!ok_tr) fprintf(stderr, "train.csv:\n%s", (const char *)tr.data);
  if (!ok_te) fprintf(stderr, "test.csv:\n%s", (const char *)te.data);
  sr_dataset_t *replay = load_text("treplay.csv", (const char *)te.data);
  sr_buf_free(&tr);
  sr_buf_free(&te);
  T_ASSERT(ok_tr);
  T_ASSERT(ok_te);
  T_EQ_INT(st.train_events, 3);
  T_EQ_INT(st.test_events, 3);
  T_EQ_INT(st.test_users, 2); /* p2 and p3 have events after the cut */
  sr_model_t *m = tiny_model();
  T_ASSERT(replay && m);
  sr_eval_conf_t c;
  sr_eval_conf_defaults(&c);
  c.k = 3;
  sr_eval_preq_result_t a, b;
  char err[256];
  T_EQ_INT(sr_eval_prequential(m, ds, &c, &a, err, sizeof(err)), SR_OK);
  T_EQ_INT(sr_eval_prequential(m, replay, &c, &b, err, sizeof(err)), SR_OK);
  T_EQ_INT(a.hits_model, b.hits_model);
  T_EQ_INT(a.hits_pop, b.hits_pop);
  T_EQ_INT(b.evaluated, 5);
  sr_model_destroy(m);
  sr_dataset_destroy(replay);
  sr_dataset_destroy(ds);
}

TEST(user_topk_parity_api) {
  /* u1's a b c d: h = .125a + .25b + .5c + d = (-.375, -.75):
   *   a -.375, b -.75, c .375, d .75, e -1.125, f -.375
   * The default filter excludes a b c d: f e. With a window of 2.5 s, at
   * the clock 5000 a (2000 <= 5000 - 2500) has expired, b c d have not:
   * a f e (tie: a first). Only RATE consuming: d (CLICK) comes back: d f e.
   * An unknown item updates nothing; FORGET starts over. */
  sr_model_t *m = tiny_model();
  T_ASSERT(m);
  sr_eval_event_t ev[7] = {{SR_STR("b"), SR_EV_RATE, 1, 1000},   {SR_STR("x"), SR_EV_RATE, 1, 1500},
                           {SR_STR("b"), SR_EV_FORGET, 0, 1600}, {SR_STR("a"), SR_EV_RATE, 1, 2000},
                           {SR_STR("b"), SR_EV_RATE, 1, 3000},   {SR_STR("c"), SR_EV_RATE, 1, 4000},
                           {SR_STR("d"), SR_EV_CLICK, 1, 5000}};
  int32_t idx[3];
  float sc[3], h[2];
  int n = sr_eval_user_topk(m, ev, 7, NULL, 3, idx, sc, h);
  T_EQ_INT(n, 2);
  T_EQ_INT(idx[0], 5);
  T_EQ_INT(idx[1], 4);
  T_NEAR(sc[0], -0.375, 0);
  T_NEAR(sc[1], -1.125, 0);
  T_NEAR(h[0], -0.375, 0);
  T_NEAR(h[1], -0.75, 0);
  sr_seen_conf_t sk;
  sr_seen_conf_defaults(&sk);
  sk.window_ms = 2500;
  n = sr_eval_user_topk(m, ev, 7, &sk, 3, idx, NULL, NULL);
  T_EQ_INT(n, 3);
  T_EQ_INT(idx[0], 0);
  T_EQ_INT(idx[1], 5);
  T_EQ_INT(idx[2], 4);
  sr_seen_conf_defaults(&sk);
  T_EQ_INT(sr_seen_parse_types("rate", &sk.types, NULL, 0), SR_OK);
  n = sr_eval_user_topk(m, ev + 3, 4, &sk, 3, idx, sc, NULL);
  T_EQ_INT(n, 3);
  T_EQ_INT(idx[0], 3);
  T_EQ_INT(idx[1], 5);
  T_EQ_INT(idx[2], 4);
  sk.max = 0;
  T_EQ_INT(sr_eval_user_topk(m, ev, 7, &sk, 3, idx, sc, NULL), SR_ERR_INVALID_ARG);
  T_EQ_INT(sr_eval_user_topk(m, ev, 7, NULL, 0, idx, sc, NULL), SR_ERR_INVALID_ARG);
  sr_model_destroy(m);
}

TEST(bad_arguments) {
  sr_dataset_t *ds = load_text("args.csv", k_csv);
  T_ASSERT(ds);
  sr_eval_conf_t c = conf_k2();
  sr_eval_result_t r;
  char err[256] = "";
  c.k = 0;
  T_EQ_INT(sr_eval_loo(NULL, ds, &c, &r, err, sizeof(err)), SR_ERR_INVALID_ARG);
  T_ASSERT(strstr(err, "k must be") != NULL);
  c = conf_k2();
  c.warmup_frac = 1.0;
  sr_eval_preq_result_t p;
  T_EQ_INT(sr_eval_prequential(NULL, ds, &c, &p, err, sizeof(err)), SR_ERR_INVALID_ARG);
  sr_dataset_destroy(ds);
}

TEST(min_count_filter) {
  /* One pass: a has 3 interactions, b and c one each, u3 one event. With
   * min-count 2 only u1-a and u2-a survive (an iterated core would go on
   * to drop both users, now with a single event each). */
  static const char *const csv =
      "u,i,r,t\nu1,a,1,1000000001\nu1,b,1,1000000002\nu2,a,1,1000000003\n"
      "u2,c,1,1000000004\nu3,a,1,1000000005\n";
  sr_dataset_t *ds = load_text("mc.csv", csv);
  T_ASSERT(ds);
  sr_dataset_t *f = sr_dataset_filter_min_count(ds, 2);
  sr_dataset_destroy(ds);
  T_EQ_INT(f->n_users, 2);
  T_EQ_INT(f->n_items, 1);
  T_EQ_INT(f->n_events, 2);
  sr_dataset_destroy(f);

  /* MovieLens latest-small, when the shared data is beside the repo:
   * 5-core one pass = 610 users, 3,650 items, 90,274 interactions. */
  const char *src = getenv("SR_SOURCE_DIR");
  char path[1024];
  snprintf(path, sizeof(path), "%s/../shared/data/movielens-small/ratings.csv", src ? src : ".");
  if (access(path, R_OK) != 0) {
    fprintf(stderr, "  (MovieLens not found at %s: skipped)\n", path);
    return;
  }
  char err[256];
  T_EQ_INT(sr_dataset_load_csv(path, &ds, err, sizeof(err)), SR_OK);
  f = sr_dataset_filter_min_count(ds, 5);
  sr_dataset_destroy(ds);
  T_EQ_INT(f->n_users, 610);
  T_EQ_INT(f->n_items, 3650);
  T_EQ_INT(f->n_events, 90274);
  sr_eval_split_stats_t st;
  sr_buf_t tr, te;
  sr_buf_init(&tr);
  sr_buf_init(&te);
  sr_eval_split_loo(f, 3, &tr, &te, &st);
  sr_buf_free(&tr);
  sr_buf_free(&te);
  sr_dataset_destroy(f);
  T_EQ_INT(st.test_users, 610);
  T_EQ_INT(st.test_events, 610);
  T_EQ_INT(st.train_events, 90274 - 610);
}

TEST_MAIN(RUN(loo_hand_figures); RUN(baselines_without_model); RUN(sampled_all_items);
          RUN(ties_and_repeats); RUN(split_contents_and_eval); RUN(prequential); RUN(time_split);
          RUN(user_topk_parity_api); RUN(bad_arguments); RUN(min_count_filter))
