/*
 * eval: offline evaluation (leave-one-out, its sampled variant and
 * prequential), the two baselines, the leave-one-out split writer and the
 * one-user top-K used by the serve/eval parity test. Definitions of every
 * figure: docs/EVALUATION.md.
 *
 * Why it is built this way:
 *  - States and each user's filter come from replaying events through
 *    serve's rule itself, sr_user_step() (state.h: the model step, the
 *    user's clock and sr_seen_apply() with serve's state.seen.* rules,
 *    conf->seen; unknown items update nothing; FORGET starts the user over),
 *    and the model's lists from serve's scorer
 *    (sr_scorer_run()): what eval measures is what serve would have
 *    published, up to near-ties (scores within BLAS rounding of each other
 *    may order differently in calls of different shapes: tests/integration/
 *    0103). The target's rank in the whole catalogue (MRR, sampled
 *    protocol) comes from full score rows (sr_model_score() +
 *    sr_rank_position(), the same tie rule).
 *  - A target the filter excludes (the user consumed it before, within the
 *    window) is a miss for every method: serve could not have listed it.
 *  - Model scoring is micro-batched: up to conf->batch user states go
 *    through one sr_model_score() call (one sgemm), so full ranking of every
 *    user against the whole catalogue costs a few sgemms, not one gemv each.
 *  - The baselines rank double-valued keys (counts, and Markov's
 *    "transitions, then popularity" as trans * (max_pop + 1) + pop) with a
 *    private ranker: higher key first, equal keys by item id in byte order.
 *    Doubles keep those keys exact far beyond the 2^24 where float counts
 *    would start to merge, and breaking ties by id rather than by catalogue
 *    index makes the baseline figures of a data set the same whichever
 *    snapshot (or none) defines the catalogue. The model path never uses
 *    this ranker: it uses rank/ and serve's index tie rule.
 *  - Seen-item filters of the baselines are stamp arrays (mark[i] == stamp
 *    means "filtered for the current user"), so nothing is cleared per user.
 *  - Negatives of the sampled protocol come from a per-user generator seeded
 *    with seed ^ xxh64(user id) that draws positions in id byte order: the
 *    same users get the same negative ids whatever the order of users in
 *    the files or of items in the catalogue (LOO on a data set and eval of
 *    its split give identical figures; so do runs with and without a
 *    snapshot for the baselines).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "streamrec/eval.h"
#include "streamrec/rank.h"
#include "streamrec/score.h"
#include "streamrec/seen.h"
#include "streamrec/state.h"

#define SR_EVAL_MOD "eval"
/* Cap of the score buffer of one micro-batch (floats): bounds memory for
 * very large catalogues by shrinking the batch. */
#define SR_EVAL_MAX_SCORE_FLOATS ((size_t)1 << 26)

const char *sr_eval_method_name(sr_eval_method_t m) {
  switch (m) {
  case SR_EVAL_MODEL: return "model";
  case SR_EVAL_POP: return "most-popular";
  case SR_EVAL_MARKOV: return "markov";
  default: return "?";
  }
}

void sr_eval_conf_defaults(sr_eval_conf_t *c) {
  memset(c, 0, sizeof(*c));
  c->k = 10;
  c->n_negatives = 0;
  c->seed = 42;
  c->batch = 256;
  c->min_history = 2;
  c->warmup_frac = 0.2;
  sr_seen_conf_defaults(&c->seen);
}

static sr_err_t sr_eval_check_conf(const sr_eval_conf_t *c, char *errstr, size_t errsz) {
  if (!c) return sr_seterr(errstr, errsz, SR_ERR_INVALID_ARG, "eval: no configuration");
  if (c->k < 1 || c->k > 10000)
    return sr_seterr(errstr, errsz, SR_ERR_INVALID_ARG, "eval: k must be 1..10000 (got %d)", c->k);
  if (c->n_negatives < 0)
    return sr_seterr(errstr, errsz, SR_ERR_INVALID_ARG, "eval: negatives must be >= 0");
  if (c->batch < 1) return sr_seterr(errstr, errsz, SR_ERR_INVALID_ARG, "eval: batch must be >= 1");
  if (c->min_history < 0)
    return sr_seterr(errstr, errsz, SR_ERR_INVALID_ARG, "eval: min_history must be >= 0");
  if (!(c->warmup_frac >= 0 && c->warmup_frac < 1))
    return sr_seterr(errstr, errsz, SR_ERR_INVALID_ARG, "eval: warm-up fraction must be in [0,1)");
  return sr_seen_conf_check(&c->seen, errstr, errsz);
}

/* ------------------------------------------------------------------------
 * Catalogue: the model's items, or (no model) the data's item ids in byte
 * order. Also holds the item_out embeddings used for intra-list diversity.
 * ---------------------------------------------------------------------- */
typedef struct sr_cat_s {
  const sr_model_t *m;
  sr_strmap_t *own; /* no-model catalogue */
  int32_t n;
  int32_t *tie;     /* baseline tie key: rank of the item id in byte order */
  int32_t *by_tie;  /* inverse of tie: r-th id in byte order -> index */
  const float *emb; /* item_out, n x emb_dim; NULL without a model */
  int emb_dim;
  double *emb_norm;
} sr_cat_t;

static int sr_str_bytes_cmp(const void *a, const void *b) {
  const sr_str_t *x = a, *y = b;
  size_t n = x->len < y->len ? x->len : y->len;
  int c = n ? memcmp(x->ptr, y->ptr, n) : 0;
  if (c) return c;
  return x->len < y->len ? -1 : x->len > y->len;
}

static int sr_idx_id_cmp(const void *a, const void *b, void *arg) {
  const sr_model_t *m = arg;
  sr_str_t x = sr_model_item_id(m, *(const int32_t *)a);
  sr_str_t y = sr_model_item_id(m, *(const int32_t *)b);
  return sr_str_bytes_cmp(&x, &y);
}

static sr_err_t sr_cat_init(sr_cat_t *c, const sr_model_t *m, const sr_dataset_t *a,
                            const sr_dataset_t *b, char *errstr, size_t errsz) {
  memset(c, 0, sizeof(*c));
  c->m = m;
  if (m) {
    c->n = sr_model_n_items(m);
    c->emb_dim = sr_model_state_size(m);
    /* sr_model_params takes a non-const model only because the trainer
     * writes through the pointers; eval only reads them. */
    sr_model_t *mm = (sr_model_t *)m;
    int nb = sr_model_params(mm, NULL, 0);
    sr_param_block_t *blk = sr_calloc((size_t)(nb > 0 ? nb : 1), sizeof(*blk));
    nb = sr_model_params(mm, blk, nb);
    for (int i = 0; i < nb; i++)
      if (!strcmp(blk[i].name, "item_out") && blk[i].count == (size_t)c->n * (size_t)c->emb_dim)
        c->emb = blk[i].data;
    sr_free(blk);
    if (!c->emb)
      sr_log_warn(SR_EVAL_MOD, "model has no item_out block of %d x %d: ILD not computed",
                  (int)c->n, c->emb_dim);
    c->by_tie = sr_malloc((size_t)(c->n ? c->n : 1) * sizeof(int32_t));
    c->tie = sr_malloc((size_t)(c->n ? c->n : 1) * sizeof(int32_t));
    for (int32_t i = 0; i < c->n; i++)
      c->by_tie[i] = i;
    qsort_r(c->by_tie, (size_t)c->n, sizeof(int32_t), sr_idx_id_cmp, (void *)m);
    for (int32_t i = 0; i < c->n; i++)
      c->tie[c->by_tie[i]] = i;
    if (c->emb) {
      c->emb_norm = sr_malloc((size_t)(c->n ? c->n : 1) * sizeof(double));
      for (int32_t i = 0; i < c->n; i++) {
        const float *v = c->emb + (size_t)i * (size_t)c->emb_dim;
        double s = 0;
        for (int d = 0; d < c->emb_dim; d++)
          s += (double)v[d] * (double)v[d];
        c->emb_norm[i] = sqrt(s);
      }
    }
    return SR_OK;
  }
  int64_t cap = (a ? a->n_items : 0) + (b ? b->n_items : 0);
  sr_str_t *keys = sr_malloc((size_t)(cap ? cap : 1) * sizeof(*keys));
  int64_t n = 0;
  for (int32_t i = 0; a && i < a->n_items; i++)
    keys[n++] = sr_strmap_key(a->items, i);
  for (int32_t i = 0; b && i < b->n_items; i++)
    keys[n++] = sr_strmap_key(b->items, i);
  qsort(keys, (size_t)n, sizeof(*keys), sr_str_bytes_cmp);
  c->own = sr_strmap_new((size_t)n);
  for (int64_t i = 0; i < n; i++)
    sr_strmap_intern(c->own, keys[i].ptr, keys[i].len, NULL);
  c->n = sr_strmap_count(c->own);
  sr_free(keys);
  c->tie = sr_malloc((size_t)(c->n ? c->n : 1) * sizeof(int32_t));
  c->by_tie = sr_malloc((size_t)(c->n ? c->n : 1) * sizeof(int32_t));
  for (int32_t i = 0; i < c->n; i++)
    c->tie[i] = c->by_tie[i] = i; /* already in byte order */
  if (c->n == 0) {
    sr_strmap_destroy(c->own);
    c->own = NULL;
    return sr_seterr(errstr, errsz, SR_ERR_INVALID_ARG, "eval: no items in the input");
  }
  return SR_OK;
}

static void sr_cat_free(sr_cat_t *c) {
  sr_strmap_destroy(c->own);
  sr_free(c->tie);
  sr_free(c->by_tie);
  sr_free(c->emb_norm);
  memset(c, 0, sizeof(*c));
}

static int32_t sr_cat_find(const sr_cat_t *c, sr_str_t id) {
  if (c->m) return sr_model_item_lookup(c->m, id.ptr, id.len);
  return sr_strmap_find(c->own, id.ptr, id.len);
}

/* Data set item index -> catalogue index (-1 unknown). New array. */
static int32_t *sr_cat_map(const sr_cat_t *c, const sr_dataset_t *ds) {
  int32_t *map = sr_malloc((size_t)(ds->n_items ? ds->n_items : 1) * sizeof(int32_t));
  for (int32_t i = 0; i < ds->n_items; i++)
    map[i] = sr_cat_find(c, sr_strmap_key(ds->items, i));
  return map;
}

/* Mean pairwise (1 - cosine) of a list's item_out rows; NaN for < 2 items. */
static double sr_cat_ild(const sr_cat_t *c, const int32_t *list, int n) {
  if (!c->emb || n < 2) return NAN;
  double sum = 0;
  int pairs = 0;
  for (int a = 0; a < n; a++)
    for (int b = a + 1; b < n; b++) {
      const float *x = c->emb + (size_t)list[a] * (size_t)c->emb_dim;
      const float *y = c->emb + (size_t)list[b] * (size_t)c->emb_dim;
      double na = c->emb_norm[list[a]], nb = c->emb_norm[list[b]], cos = 0;
      if (na > 0 && nb > 0) {
        double dot = 0;
        for (int d = 0; d < c->emb_dim; d++)
          dot += (double)x[d] * (double)y[d];
        cos = dot / (na * nb);
      }
      sum += 1.0 - cos;
      pairs++;
    }
  return sum / pairs;
}

/* ------------------------------------------------------------------------
 * A user with no events yet: the model's initial state, clock 0. Every
 * event is then applied with serve's rule itself, sr_user_step() (state.h),
 * by every protocol and sr_eval_user_topk().
 * ---------------------------------------------------------------------- */
static void sr_replay_reset(const sr_model_t *m, float *h, int64_t *last_ts) {
  if (m) sr_model_state_init(m, h);
  *last_ts = 0;
}

/* ------------------------------------------------------------------------
 * Baseline ranker over double keys: higher key first, then lower tie[]
 * (id byte order); exclusion by stamp. Keys are counts: never NaN.
 * ---------------------------------------------------------------------- */
static inline int sr_dbetter(const double *s, const int32_t *tie, int32_t a, int32_t b) {
  return s[a] > s[b] || (s[a] == s[b] && tie[a] < tie[b]);
}

/* Top k into out (best first); an insertion list: k is small and almost
 * every item fails the first comparison with the current k-th. */
static int sr_dtopk(const double *s, const int32_t *tie, int32_t n, const uint32_t *mark,
                    uint32_t stamp, int32_t never_excl, int k, int32_t *out) {
  int cnt = 0;
  for (int32_t j = 0; j < n; j++) {
    if (mark[j] == stamp && j != never_excl) continue;
    if (cnt == k && !sr_dbetter(s, tie, j, out[k - 1])) continue;
    int p = cnt < k ? cnt++ : k - 1;
    while (p > 0 && sr_dbetter(s, tie, j, out[p - 1])) {
      out[p] = out[p - 1];
      p--;
    }
    out[p] = j;
  }
  return cnt;
}

/* Items (not excluded) that beat target; stops counting at cap. */
static int64_t sr_dposition(const double *s, const int32_t *tie, int32_t n, const uint32_t *mark,
                            uint32_t stamp, int32_t target, int64_t cap) {
  int64_t r = 0;
  for (int32_t j = 0; j < n && r < cap; j++) {
    if (j == target || mark[j] == stamp) continue;
    r += sr_dbetter(s, tie, j, target);
  }
  return r;
}

/* a beats b under rank/'s rule (sr_rank_position): NaN ranks after every
 * number, NaNs among themselves by index */
static int sr_fbetter(float sa, int32_t a, float sb, int32_t b) {
  if (isnan(sa)) return isnan(sb) && a < b;
  if (isnan(sb)) return 1;
  return sa > sb || (sa == sb && a < b);
}

/* ------------------------------------------------------------------------
 * Sampling
 * ---------------------------------------------------------------------- */
static uint64_t sr_splitmix64(uint64_t *x) {
  uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

static int32_t sr_uniform(uint64_t *x, int32_t n) {
  return (int32_t)(((unsigned __int128)sr_splitmix64(x) * (uint64_t)n) >> 64);
}

/* Stamp arrays: a new stamp per user; wrap-around clears the array. */
typedef struct sr_marks_s {
  uint32_t *a;
  int32_t n;
  uint32_t stamp;
} sr_marks_t;

static void sr_marks_init(sr_marks_t *m, int32_t n) {
  m->a = sr_calloc((size_t)(n ? n : 1), sizeof(uint32_t));
  m->n = n;
  m->stamp = 0;
}

static uint32_t sr_marks_next(sr_marks_t *m) {
  if (m->stamp == UINT32_MAX) {
    memset(m->a, 0, (size_t)m->n * sizeof(uint32_t));
    m->stamp = 0;
  }
  return ++m->stamp;
}

/* ------------------------------------------------------------------------
 * Leave-one-out core
 * ---------------------------------------------------------------------- */
typedef struct sr_loo_s {
  const sr_dataset_t *hist;
  const int32_t *hmap; /* hist item -> catalogue (-1 unknown) */
  const int64_t *hend; /* per hist user: end of its history events */
  int32_t n_cases;
  const int32_t *c_user;   /* hist user per case */
  const int32_t *c_target; /* catalogue index per case, -1 unknown */
} sr_loo_t;

typedef struct sr_acc_s {
  double ndcg, rr, nov, ild, s_ndcg, s_rr;
  int64_t hits, s_hits, n_nov, n_ild;
  uint8_t *rec; /* recommended at least once */
} sr_acc_t;

/* list_rank: the target's position in the published list (-1: absent),
 * for HR and NDCG; rank: its position in the whole filtered ordering (-1:
 * not ranked), for MRR. The baselines' list is a prefix of their ordering,
 * so both agree there; for the model the list comes from the scorer (what
 * serve publishes) and the rank from the full score row, which agree up to
 * near-ties (BLAS rounding of calls of different shapes). */
static void sr_acc_add(sr_acc_t *a, int64_t list_rank, int64_t rank, int k, const int32_t *list,
                       int n_list, const sr_cat_t *cat, const double *selfinfo) {
  if (list_rank >= 0 && list_rank < k) {
    a->hits++;
    a->ndcg += 1.0 / log2((double)list_rank + 2.0);
  }
  if (rank >= 0) a->rr += 1.0 / ((double)rank + 1.0);
  if (n_list > 0) {
    double s = 0;
    for (int i = 0; i < n_list; i++) {
      a->rec[list[i]] = 1;
      s += selfinfo[list[i]];
    }
    a->nov += s / n_list;
    a->n_nov++;
  }
  double ild = sr_cat_ild(cat, list, n_list);
  if (!isnan(ild)) {
    a->ild += ild;
    a->n_ild++;
  }
}

static void sr_acc_add_sampled(sr_acc_t *a, int64_t rank, int k) {
  if (rank < 0) return;
  if (rank < k) {
    a->s_hits++;
    a->s_ndcg += 1.0 / log2((double)rank + 2.0);
  }
  a->s_rr += 1.0 / ((double)rank + 1.0);
}

static void sr_acc_finish(const sr_acc_t *a, int64_t n_users, int32_t n_cat, int sampled,
                          sr_eval_metrics_t *o) {
  double n = (double)n_users;
  o->valid = 1;
  o->hits = a->hits;
  o->hr = n_users ? (double)a->hits / n : NAN;
  o->ndcg = n_users ? a->ndcg / n : NAN;
  o->mrr = n_users ? a->rr / n : NAN;
  int64_t distinct = 0;
  for (int32_t i = 0; i < n_cat; i++)
    distinct += a->rec[i];
  o->coverage = n_users && n_cat ? (double)distinct / (double)n_cat : NAN;
  o->novelty = a->n_nov ? a->nov / (double)a->n_nov : NAN;
  o->ild = a->n_ild ? a->ild / (double)a->n_ild : NAN;
  o->s_hits = sampled ? a->s_hits : 0;
  o->s_hr = sampled && n_users ? (double)a->s_hits / n : NAN;
  o->s_ndcg = sampled && n_users ? a->s_ndcg / n : NAN;
  o->s_mrr = sampled && n_users ? a->s_rr / n : NAN;
}

static void sr_metrics_clear(sr_eval_metrics_t *o) {
  memset(o, 0, sizeof(*o));
  o->hr = o->ndcg = o->mrr = o->coverage = o->novelty = o->ild = NAN;
  o->s_hr = o->s_ndcg = o->s_mrr = NAN;
}

/* Growable int32 array. */
typedef struct sr_ivec_s {
  int32_t *v;
  size_t n, cap;
} sr_ivec_t;

static void sr_ivec_reserve(sr_ivec_t *a, size_t extra) {
  if (a->n + extra <= a->cap) return;
  size_t cap = a->cap ? a->cap : 1024;
  while (cap < a->n + extra)
    cap *= 2;
  a->v = sr_realloc(a->v, cap * sizeof(int32_t));
  a->cap = cap;
}

/* Appends the seen set's items, ascending (the row's filter). */
static void sr_ivec_push_seen(sr_ivec_t *a, const sr_seen_t *seen) {
  const uint32_t n = sr_seen_count(seen);
  if (!n) return; /* a->v may still be NULL */
  sr_ivec_reserve(a, n);
  a->n += sr_seen_sorted(seen, a->v + a->n);
}

/* Position of x in list[0..n), or -1. */
static int64_t sr_list_pos(const int32_t *list, int n, int32_t x) {
  for (int i = 0; i < n; i++)
    if (list[i] == x) return i;
  return -1;
}

/* Whether x is in the ascending list[0..n). */
static int sr_sorted_has(const int32_t *list, size_t n, int32_t x) {
  size_t lo = 0, hi = n;
  while (lo < hi) {
    size_t mid = (lo + hi) / 2;
    if (list[mid] < x)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo < n && list[lo] == x;
}

/* Transition counts src -> dst in CSR form. */
typedef struct sr_trans_s {
  int64_t *off; /* n_cat + 1 */
  int32_t *dst;
  int64_t *cnt;
} sr_trans_t;

typedef struct sr_pair_s {
  int32_t src, dst;
} sr_pair_t;

static int sr_pair_cmp(const void *a, const void *b) {
  const sr_pair_t *x = a, *y = b;
  if (x->src != y->src) return x->src < y->src ? -1 : 1;
  return x->dst < y->dst ? -1 : x->dst > y->dst;
}

/* Sorts p in place. */
static void sr_trans_build(sr_trans_t *t, sr_pair_t *p, size_t n, int32_t n_cat) {
  qsort(p, n, sizeof(*p), sr_pair_cmp);
  t->off = sr_calloc((size_t)n_cat + 1, sizeof(int64_t));
  t->dst = sr_malloc((n ? n : 1) * sizeof(int32_t));
  t->cnt = sr_malloc((n ? n : 1) * sizeof(int64_t));
  size_t u = 0;
  for (size_t i = 0; i < n; i++) {
    if (i && p[i].src == p[i - 1].src && p[i].dst == p[i - 1].dst) {
      t->cnt[u - 1]++;
      continue;
    }
    t->dst[u] = p[i].dst;
    t->cnt[u] = 1;
    t->off[p[i].src + 1]++;
    u++;
  }
  for (int32_t i = 0; i < n_cat; i++)
    t->off[i + 1] += t->off[i];
}

static void sr_trans_free(sr_trans_t *t) {
  sr_free(t->off);
  sr_free(t->dst);
  sr_free(t->cnt);
}

static sr_err_t sr_eval_run_loo(const sr_cat_t *cat, const sr_loo_t *L, const sr_eval_conf_t *conf,
                                sr_eval_result_t *res) {
  const sr_dataset_t *ds = L->hist;
  const sr_model_t *m = cat->m;
  const int32_t n_cat = cat->n;
  const int k = conf->k;
  const int n_neg = conf->n_negatives;

  /* ---- history statistics: popularity and transitions ---- */
  int64_t *pop = sr_calloc((size_t)n_cat, sizeof(int64_t));
  sr_pair_t *pairs = sr_malloc((size_t)(ds->n_events ? ds->n_events : 1) * sizeof(*pairs));
  size_t n_pairs = 0;
  int64_t hist_total = 0, hist_unknown = 0;
  for (int32_t u = 0; u < ds->n_users; u++) {
    int32_t prev = -1;
    for (int64_t e = ds->user_off[u]; e < L->hend[u]; e++) {
      if (ds->ev_type[e] == SR_EV_FORGET) {
        prev = -1;
        continue;
      }
      hist_total++;
      int32_t it = L->hmap[ds->ev_item[e]];
      if (it < 0) {
        hist_unknown++;
        continue;
      }
      pop[it]++;
      if (prev >= 0) pairs[n_pairs++] = (sr_pair_t){prev, it};
      prev = it;
    }
  }
  sr_trans_t tr;
  sr_trans_build(&tr, pairs, n_pairs, n_cat);
  sr_free(pairs);
  int64_t pop_max = 0;
  double *pop_d = sr_malloc((size_t)n_cat * sizeof(double));
  double *mk_d = sr_malloc((size_t)n_cat * sizeof(double));
  double *selfinfo = sr_malloc((size_t)n_cat * sizeof(double));
  for (int32_t i = 0; i < n_cat; i++) {
    pop_d[i] = mk_d[i] = (double)pop[i];
    if (pop[i] > pop_max) pop_max = pop[i];
    /* never-seen items count as 1 interaction so novelty stays finite */
    selfinfo[i] = hist_total ? -log2((double)(pop[i] > 0 ? pop[i] : 1) / (double)hist_total) : NAN;
  }
  const double mk_scale = (double)pop_max + 1.0;
  res->history_events = hist_total;
  res->history_unknown = hist_unknown;

  /* ---- buffers ---- */
  int ss = m ? sr_model_state_size(m) : 0;
  int B = conf->batch;
  if (m) {
    size_t cap = SR_EVAL_MAX_SCORE_FLOATS / (size_t)(n_cat ? n_cat : 1);
    if (cap < 1) cap = 1;
    if ((size_t)B > cap) B = (int)cap;
  } else {
    B = 1;
  }
  float *H = NULL, *S = NULL;
  sr_scorer_t *scorer = NULL;
  int32_t *top_idx = NULL;
  float *top_sc = NULL;
  int *top_cnt = NULL;
  const float **st_ptrs = NULL;
  const int32_t **ex_ptrs = NULL;
  int *n_ex_arr = NULL;
  if (m) {
    H = malloc((size_t)B * (size_t)ss * sizeof(float));
    S = malloc((size_t)B * (size_t)n_cat * sizeof(float));
    scorer = sr_scorer_new(m, B, k);
    if (!H || !S || !scorer) {
      free(H);
      free(S);
      sr_scorer_destroy(scorer);
      sr_free(pop);
      sr_free(pop_d);
      sr_free(mk_d);
      sr_free(selfinfo);
      sr_trans_free(&tr);
      return SR_ERR_NOMEM;
    }
    top_idx = sr_malloc((size_t)B * (size_t)k * sizeof(int32_t));
    top_sc = sr_malloc((size_t)B * (size_t)k * sizeof(float));
    top_cnt = sr_malloc((size_t)B * sizeof(int));
    st_ptrs = sr_malloc((size_t)B * sizeof(*st_ptrs));
    ex_ptrs = sr_malloc((size_t)B * sizeof(*ex_ptrs));
    n_ex_arr = sr_malloc((size_t)B * sizeof(int));
  }
  sr_ivec_t excl = {0};
  sr_ivec_reserve(&excl, 1); /* never NULL: rows point into it even when empty */
  sr_seen_t seen;
  sr_seen_init(&seen);
  size_t *row_off = sr_malloc(((size_t)B + 1) * sizeof(size_t));
  int32_t *row_last = sr_malloc((size_t)B * sizeof(int32_t));
  int32_t *list = sr_malloc((size_t)k * sizeof(int32_t));
  int32_t *neg = sr_malloc((size_t)(n_neg ? n_neg : 1) * sizeof(int32_t));
  sr_marks_t mark, negmark;
  sr_marks_init(&mark, n_cat);
  sr_marks_init(&negmark, n_cat);
  sr_acc_t acc[SR_EVAL__N_METHODS];
  memset(acc, 0, sizeof(acc));
  for (int i = 0; i < SR_EVAL__N_METHODS; i++)
    acc[i].rec = sr_calloc((size_t)n_cat, 1);
  int64_t unknown_targets = 0, seen_targets = 0;

  for (int32_t b0 = 0; b0 < L->n_cases; b0 += B) {
    int nb = L->n_cases - b0 < B ? L->n_cases - b0 : B;
    excl.n = 0;
    /* replay each user's history exactly as serve applies it: state row,
     * seen set (serve's filter, sr_seen_apply), last item */
    for (int r = 0; r < nb; r++) {
      int32_t u = L->c_user[b0 + r];
      float *h = m ? H + (size_t)r * (size_t)ss : NULL;
      int64_t last_ts = 0;
      sr_replay_reset(m, h, &last_ts);
      sr_seen_clear(&seen);
      row_last[r] = -1;
      for (int64_t e = ds->user_off[u]; e < L->hend[u]; e++) {
        sr_event_type_t ty = (sr_event_type_t)ds->ev_type[e];
        int32_t it = ty == SR_EV_FORGET ? -1 : L->hmap[ds->ev_item[e]];
        sr_user_step(m, &conf->seen, h, &last_ts, &seen, ty, it, ds->ev_value[e], ds->ev_ts[e]);
        if (ty == SR_EV_FORGET)
          row_last[r] = -1;
        else if (it >= 0)
          row_last[r] = it;
      }
      row_off[r] = excl.n;
      sr_ivec_push_seen(&excl, &seen);
    }
    row_off[nb] = excl.n;
    if (m) {
      /* the lists: serve's scorer over the same rows and filters; the full
       * rows: for the target's rank in the whole catalogue (MRR, sampled) */
      for (int r = 0; r < nb; r++) {
        st_ptrs[r] = H + (size_t)r * (size_t)ss;
        ex_ptrs[r] = excl.v + row_off[r];
        n_ex_arr[r] = (int)(row_off[r + 1] - row_off[r]);
      }
      sr_scorer_run(scorer, st_ptrs, nb, ex_ptrs, n_ex_arr, top_idx, top_sc, top_cnt);
      sr_model_score(m, H, nb, S);
    }

    for (int r = 0; r < nb; r++) {
      int32_t u = L->c_user[b0 + r], target = L->c_target[b0 + r];
      const int32_t *ex = excl.v + row_off[r];
      int n_ex = (int)(row_off[r + 1] - row_off[r]);
      uint32_t st = sr_marks_next(&mark);
      for (int i = 0; i < n_ex; i++)
        mark.a[ex[i]] = st; /* distinct: a set */
      const int64_t distinct = n_ex;
      if (target < 0) unknown_targets++;
      /* a target the filter excludes can be in no list: a miss for all */
      const int target_seen = target >= 0 && sr_sorted_has(ex, (size_t)n_ex, target);
      if (target_seen) seen_targets++;
      const int ranked = target >= 0 && !target_seen;

      /* negatives: uniform over items the user never interacted with */
      int n_s = 0;
      if (n_neg > 0 && ranked) {
        int64_t avail = (int64_t)n_cat - distinct - 1;
        if (avail <= n_neg) {
          for (int32_t j = 0; j < n_cat; j++)
            if (j != target && mark.a[j] != st) neg[n_s++] = j;
        } else {
          sr_str_t uid = sr_strmap_key(ds->users, u);
          uint64_t rng = conf->seed ^ sr_hash64(uid.ptr, uid.len);
          uint32_t nst = sr_marks_next(&negmark);
          while (n_s < n_neg) {
            int32_t j = cat->by_tie[sr_uniform(&rng, n_cat)];
            if (j == target || mark.a[j] == st || negmark.a[j] == nst) continue;
            negmark.a[j] = nst;
            neg[n_s++] = j;
          }
        }
      }

      /* model: the scorer's list, the full row's rank */
      if (m) {
        const float *srow = S + (size_t)r * (size_t)n_cat;
        const int32_t *ml = top_idx + (size_t)r * (size_t)k;
        const int n_list = top_cnt[r];
        int64_t rank = ranked ? sr_rank_position(srow, n_cat, ex, n_ex, target) : -1;
        int64_t lrank = ranked ? sr_list_pos(ml, n_list, target) : -1;
        sr_acc_add(&acc[SR_EVAL_MODEL], lrank, rank, k, ml, n_list, cat, selfinfo);
        if (n_s) {
          int64_t sr = 0;
          for (int i = 0; i < n_s; i++)
            sr += sr_fbetter(srow[neg[i]], neg[i], srow[target], target);
          sr_acc_add_sampled(&acc[SR_EVAL_MODEL], sr, k);
        }
      }
      /* most popular */
      {
        int n_list = sr_dtopk(pop_d, cat->tie, n_cat, mark.a, st, -1, k, list);
        int64_t rank =
            ranked ? sr_dposition(pop_d, cat->tie, n_cat, mark.a, st, target, INT64_MAX) : -1;
        sr_acc_add(&acc[SR_EVAL_POP], rank, rank, k, list, n_list, cat, selfinfo);
        if (n_s) {
          int64_t sr = 0;
          for (int i = 0; i < n_s; i++)
            sr += sr_dbetter(pop_d, cat->tie, neg[i], target);
          sr_acc_add_sampled(&acc[SR_EVAL_POP], sr, k);
        }
      }
      /* Markov: transitions from the last history item, then popularity */
      {
        int32_t last = row_last[r];
        if (last >= 0)
          for (int64_t t = tr.off[last]; t < tr.off[last + 1]; t++)
            mk_d[tr.dst[t]] += (double)tr.cnt[t] * mk_scale;
        int n_list = sr_dtopk(mk_d, cat->tie, n_cat, mark.a, st, -1, k, list);
        int64_t rank =
            ranked ? sr_dposition(mk_d, cat->tie, n_cat, mark.a, st, target, INT64_MAX) : -1;
        sr_acc_add(&acc[SR_EVAL_MARKOV], rank, rank, k, list, n_list, cat, selfinfo);
        if (n_s) {
          int64_t sr = 0;
          for (int i = 0; i < n_s; i++)
            sr += sr_dbetter(mk_d, cat->tie, neg[i], target);
          sr_acc_add_sampled(&acc[SR_EVAL_MARKOV], sr, k);
        }
        if (last >= 0)
          for (int64_t t = tr.off[last]; t < tr.off[last + 1]; t++)
            mk_d[tr.dst[t]] = pop_d[tr.dst[t]];
      }
    }
  }

  res->evaluated = L->n_cases;
  res->unknown_targets = unknown_targets;
  res->seen_targets = seen_targets;
  for (int i = 0; i < SR_EVAL__N_METHODS; i++) {
    if (i == SR_EVAL_MODEL && !m) continue;
    sr_acc_finish(&acc[i], L->n_cases, n_cat, n_neg > 0, &res->m[i]);
    sr_free(acc[i].rec);
  }
  if (!m) sr_free(acc[SR_EVAL_MODEL].rec);

  free(H);
  free(S);
  sr_scorer_destroy(scorer);
  sr_free(top_idx);
  sr_free(top_sc);
  sr_free(top_cnt);
  sr_free(st_ptrs);
  sr_free(ex_ptrs);
  sr_free(n_ex_arr);
  sr_seen_clear(&seen);
  sr_free(excl.v);
  sr_free(row_off);
  sr_free(row_last);
  sr_free(list);
  sr_free(neg);
  sr_free(mark.a);
  sr_free(negmark.a);
  sr_free(pop);
  sr_free(pop_d);
  sr_free(mk_d);
  sr_free(selfinfo);
  sr_trans_free(&tr);
  return SR_OK;
}

static void sr_result_init(sr_eval_result_t *res, const sr_eval_conf_t *conf, int32_t n_cat) {
  memset(res, 0, sizeof(*res));
  res->k = conf->k;
  res->n_negatives = conf->n_negatives;
  res->catalogue = n_cat;
  for (int i = 0; i < SR_EVAL__N_METHODS; i++)
    sr_metrics_clear(&res->m[i]);
}

static sr_err_t sr_eval_check_model(const sr_model_t *m, char *errstr, size_t errsz) {
  if (m && sr_model_n_items(m) < 1)
    return sr_seterr(errstr, errsz, SR_ERR_INVALID_ARG, "eval: the model has no items");
  return SR_OK;
}

sr_err_t sr_eval_loo(const sr_model_t *m, const sr_dataset_t *events, const sr_eval_conf_t *conf,
                     sr_eval_result_t *res, char *errstr, size_t errsz) {
  sr_err_t err;
  if ((err = sr_eval_check_conf(conf, errstr, errsz)) != SR_OK) return err;
  if ((err = sr_eval_check_model(m, errstr, errsz)) != SR_OK) return err;
  if (!events || !res)
    return sr_seterr(errstr, errsz, SR_ERR_INVALID_ARG, "eval: no events or no result");
  int64_t t0 = sr_mono_us();
  sr_cat_t cat;
  if ((err = sr_cat_init(&cat, m, events, NULL, errstr, errsz)) != SR_OK) return err;
  sr_result_init(res, conf, cat.n);
  const sr_dataset_t *ds = events;
  int32_t *hmap = sr_cat_map(&cat, ds);
  int64_t *hend = sr_malloc(((size_t)ds->n_users + 1) * sizeof(int64_t));
  int32_t *c_user = sr_malloc(((size_t)ds->n_users + 1) * sizeof(int32_t));
  int32_t *c_target = sr_malloc(((size_t)ds->n_users + 1) * sizeof(int32_t));
  int32_t n_cases = 0;
  for (int32_t u = 0; u < ds->n_users; u++) {
    int64_t beg = ds->user_off[u], end = ds->user_off[u + 1];
    if (end - beg >= (int64_t)conf->min_history + 1 && end > beg) {
      hend[u] = end - 1;
      c_user[n_cases] = u;
      c_target[n_cases] = hmap[ds->ev_item[end - 1]];
      n_cases++;
    } else {
      hend[u] = end;
    }
  }
  sr_loo_t L = {ds, hmap, hend, n_cases, c_user, c_target};
  err = sr_eval_run_loo(&cat, &L, conf, res);
  res->users = ds->n_users;
  res->skipped = ds->n_users - n_cases;
  if (err != SR_OK) sr_seterr(errstr, errsz, err, "eval: out of memory for score buffers");
  sr_free(hmap);
  sr_free(hend);
  sr_free(c_user);
  sr_free(c_target);
  sr_cat_free(&cat);
  res->elapsed_s = (double)(sr_mono_us() - t0) / 1e6;
  return err;
}

sr_err_t sr_eval_split(const sr_model_t *m, const sr_dataset_t *train, const sr_dataset_t *test,
                       const sr_eval_conf_t *conf, sr_eval_result_t *res, char *errstr,
                       size_t errsz) {
  sr_err_t err;
  if ((err = sr_eval_check_conf(conf, errstr, errsz)) != SR_OK) return err;
  if ((err = sr_eval_check_model(m, errstr, errsz)) != SR_OK) return err;
  if (!train || !test || !res)
    return sr_seterr(errstr, errsz, SR_ERR_INVALID_ARG, "eval: no train, test or result");
  int64_t t0 = sr_mono_us();
  sr_cat_t cat;
  if ((err = sr_cat_init(&cat, m, train, test, errstr, errsz)) != SR_OK) return err;
  sr_result_init(res, conf, cat.n);
  int32_t *hmap = sr_cat_map(&cat, train);
  int32_t *tmap = sr_cat_map(&cat, test);
  int64_t *hend = sr_malloc(((size_t)train->n_users + 1) * sizeof(int64_t));
  int32_t *c_user = sr_malloc(((size_t)train->n_users + 1) * sizeof(int32_t));
  int32_t *c_target = sr_malloc(((size_t)train->n_users + 1) * sizeof(int32_t));
  int32_t n_cases = 0;
  int64_t extra = 0, test_only = 0;
  for (int32_t u = 0; u < train->n_users; u++) {
    hend[u] = train->user_off[u + 1];
    sr_str_t uid = sr_strmap_key(train->users, u);
    int32_t tu = sr_strmap_find(test->users, uid.ptr, uid.len);
    if (tu < 0) continue;
    int64_t tb = test->user_off[tu], te = test->user_off[tu + 1];
    if (te <= tb) continue;
    extra += te - tb - 1;
    if (train->user_off[u + 1] - train->user_off[u] < (int64_t)conf->min_history) continue;
    c_user[n_cases] = u;
    c_target[n_cases] = tmap[test->ev_item[tb]];
    n_cases++;
  }
  for (int32_t tu = 0; tu < test->n_users; tu++) {
    sr_str_t uid = sr_strmap_key(test->users, tu);
    if (sr_strmap_find(train->users, uid.ptr, uid.len) < 0) test_only++;
  }
  if (extra)
    sr_log_warn(SR_EVAL_MOD, "%lld test events ignored: only each user's earliest is a target",
                (long long)extra);
  sr_loo_t L = {train, hmap, hend, n_cases, c_user, c_target};
  err = sr_eval_run_loo(&cat, &L, conf, res);
  res->users = train->n_users + test_only;
  res->skipped = res->users - n_cases;
  if (err != SR_OK) sr_seterr(errstr, errsz, err, "eval: out of memory for score buffers");
  sr_free(hmap);
  sr_free(tmap);
  sr_free(hend);
  sr_free(c_user);
  sr_free(c_target);
  sr_cat_free(&cat);
  res->elapsed_s = (double)(sr_mono_us() - t0) / 1e6;
  return err;
}

/* ------------------------------------------------------------------------
 * Prequential
 * ---------------------------------------------------------------------- */
static int sr_preq_cmp(const void *a, const void *b, void *arg) {
  const sr_dataset_t *ds = arg;
  int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
  if (ds->ev_ts[x] != ds->ev_ts[y]) return ds->ev_ts[x] < ds->ev_ts[y] ? -1 : 1;
  return ds->ev_seq[x] < ds->ev_seq[y] ? -1 : ds->ev_seq[x] > ds->ev_seq[y];
}

/* The events of ds in global time order (ties in file order: the order the
 * prequential protocol replays and split --time cuts), and each event's
 * user. Both arrays are new (sr_free). */
static void sr_time_order(const sr_dataset_t *ds, int64_t **order_out, int32_t **owner_out) {
  const size_t ne = (size_t)(ds->n_events ? ds->n_events : 1);
  int64_t *order = sr_malloc(ne * sizeof(int64_t));
  int32_t *owner = sr_malloc(ne * sizeof(int32_t));
  for (int32_t u = 0; u < ds->n_users; u++)
    for (int64_t e = ds->user_off[u]; e < ds->user_off[u + 1]; e++)
      owner[e] = u;
  for (int64_t e = 0; e < ds->n_events; e++)
    order[e] = e;
  qsort_r(order, (size_t)ds->n_events, sizeof(int64_t), sr_preq_cmp, (void *)ds);
  *order_out = order;
  *owner_out = owner;
}

typedef struct sr_preq_s {
  const sr_model_t *m;
  int32_t n_cat;
  int ss, k, nb, B;
  sr_scorer_t *scorer; /* its input rows hold the pending rows' states */
  int32_t *row_target;
  size_t *row_off; /* B + 1: each row's filter in excl */
  sr_ivec_t excl;  /* the rows' seen items (copies: the sets change after) */
  const int32_t **ex_ptrs;
  int *n_ex;
  int32_t *top_idx;
  float *top_sc;
  int *top_cnt;
  int64_t hits;
} sr_preq_t;

/* Scores the pending rows with serve's scorer; a hit is the target in the
 * row's list. */
static void sr_preq_flush(sr_preq_t *p) {
  if (!p->nb) return;
  for (int r = 0; r < p->nb; r++) {
    p->ex_ptrs[r] = p->excl.v + p->row_off[r];
    p->n_ex[r] = (int)(p->row_off[r + 1] - p->row_off[r]);
  }
  sr_scorer_run_rows(p->scorer, p->nb, p->ex_ptrs, p->n_ex, p->top_idx, p->top_sc, p->top_cnt);
  for (int r = 0; r < p->nb; r++)
    if (sr_list_pos(p->top_idx + (size_t)r * (size_t)p->k, p->top_cnt[r], p->row_target[r]) >= 0)
      p->hits++;
  p->nb = 0;
  p->excl.n = 0;
}

sr_err_t sr_eval_prequential(const sr_model_t *m, const sr_dataset_t *events,
                             const sr_eval_conf_t *conf, sr_eval_preq_result_t *res, char *errstr,
                             size_t errsz) {
  sr_err_t err;
  if ((err = sr_eval_check_conf(conf, errstr, errsz)) != SR_OK) return err;
  if ((err = sr_eval_check_model(m, errstr, errsz)) != SR_OK) return err;
  if (!events || !res)
    return sr_seterr(errstr, errsz, SR_ERR_INVALID_ARG, "eval: no events or no result");
  int64_t t0 = sr_mono_us();
  const sr_dataset_t *ds = events;
  sr_cat_t cat;
  if ((err = sr_cat_init(&cat, m, ds, NULL, errstr, errsz)) != SR_OK) return err;
  memset(res, 0, sizeof(*res));
  res->k = conf->k;
  res->catalogue = cat.n;
  res->has_model = m != NULL;
  res->events = ds->n_events;
  res->warmup = (int64_t)floor(conf->warmup_frac * (double)ds->n_events);

  const int32_t n_cat = cat.n;
  int32_t *map = sr_cat_map(&cat, ds);
  int64_t *order;
  int32_t *owner;
  sr_time_order(ds, &order, &owner);

  sr_preq_t p;
  memset(&p, 0, sizeof(p));
  p.m = m;
  p.n_cat = n_cat;
  p.k = conf->k;
  sr_seen_t *seen = sr_calloc((size_t)ds->n_users + 1, sizeof(sr_seen_t));
  int64_t *last_ts = sr_calloc((size_t)ds->n_users + 1, sizeof(int64_t));
  int64_t *pop = sr_calloc((size_t)n_cat, sizeof(int64_t));
  int32_t *scratch = sr_malloc((size_t)conf->seen.max * sizeof(int32_t));
  float *state = NULL;
  int B = conf->batch;
  if (m) {
    p.ss = sr_model_state_size(m);
    size_t cap = SR_EVAL_MAX_SCORE_FLOATS / (size_t)n_cat;
    if (cap < 1) cap = 1;
    if ((size_t)B > cap) B = (int)cap;
    p.B = B;
    state = malloc(((size_t)ds->n_users + 1) * (size_t)p.ss * sizeof(float));
    p.scorer = sr_scorer_new(m, B, p.k);
    if (!state || !p.scorer) {
      err = sr_seterr(errstr, errsz, SR_ERR_NOMEM, "eval: out of memory for user states");
      goto out;
    }
    for (int32_t u = 0; u < ds->n_users; u++)
      sr_model_state_init(m, state + (size_t)u * (size_t)p.ss);
    sr_ivec_reserve(&p.excl, 1); /* never NULL: rows point into it even when empty */
    p.row_target = sr_malloc((size_t)B * sizeof(int32_t));
    p.row_off = sr_malloc(((size_t)B + 1) * sizeof(size_t));
    p.ex_ptrs = sr_malloc((size_t)B * sizeof(*p.ex_ptrs));
    p.n_ex = sr_malloc((size_t)B * sizeof(int));
    p.top_idx = sr_malloc((size_t)B * (size_t)p.k * sizeof(int32_t));
    p.top_sc = sr_malloc((size_t)B * (size_t)p.k * sizeof(float));
    p.top_cnt = sr_malloc((size_t)B * sizeof(int));
  }
  sr_marks_t mark;
  sr_marks_init(&mark, n_cat);

  for (int64_t s = 0; s < ds->n_events; s++) {
    int64_t e = order[s];
    int32_t u = owner[e];
    sr_event_type_t ty = (sr_event_type_t)ds->ev_type[e];
    float *h = m ? state + (size_t)u * (size_t)p.ss : NULL;
    if (ty == SR_EV_FORGET) {
      sr_user_step(m, &conf->seen, h, &last_ts[u], &seen[u], ty, -1, 0, ds->ev_ts[e]);
      continue;
    }
    int32_t it = map[ds->ev_item[e]];
    if (s >= res->warmup) {
      res->evaluated++;
      if (it < 0) {
        res->unknown_items++;
      } else if (sr_seen_has(&seen[u], it)) {
        res->seen_items++; /* serve would not list it: a miss for every method */
      } else {
        /* incremental most-popular: < k unfiltered items beat the target */
        uint32_t st = sr_marks_next(&mark);
        uint32_t n_seen = sr_seen_sorted(&seen[u], scratch);
        for (uint32_t i = 0; i < n_seen; i++)
          mark.a[scratch[i]] = st;
        int64_t better = 0;
        int64_t pt = pop[it];
        for (int32_t j = 0; j < n_cat && better < p.k; j++) {
          if (j == it || mark.a[j] == st) continue;
          if (pop[j] > pt || (pop[j] == pt && cat.tie[j] < cat.tie[it])) better++;
        }
        if (better < p.k) res->hits_pop++;
        if (m) {
          memcpy(sr_scorer_row(p.scorer, p.nb), h, (size_t)p.ss * sizeof(float));
          p.row_target[p.nb] = it;
          p.row_off[p.nb] = p.excl.n;
          if (n_seen) {
            sr_ivec_reserve(&p.excl, n_seen);
            memcpy(p.excl.v + p.excl.n, scratch, (size_t)n_seen * sizeof(int32_t));
            p.excl.n += n_seen;
          }
          p.nb++;
          p.row_off[p.nb] = p.excl.n;
        }
      }
    }
    sr_user_step(m, &conf->seen, h, &last_ts[u], &seen[u], ty, it, ds->ev_value[e], ds->ev_ts[e]);
    if (it >= 0) pop[it]++;
    if (m && p.nb == B) sr_preq_flush(&p);
  }
  if (m) sr_preq_flush(&p);
  res->hits_model = p.hits;
  double n = (double)res->evaluated;
  res->recall_pop = res->evaluated ? (double)res->hits_pop / n : NAN;
  res->recall_model = m && res->evaluated ? (double)res->hits_model / n : NAN;
  sr_free(mark.a);
  err = SR_OK;
out:
  free(state);
  sr_scorer_destroy(p.scorer);
  sr_free(p.row_target);
  sr_free(p.row_off);
  sr_free(p.ex_ptrs);
  sr_free(p.n_ex);
  sr_free(p.top_idx);
  sr_free(p.top_sc);
  sr_free(p.top_cnt);
  sr_free(p.excl.v);
  for (int32_t u = 0; u < ds->n_users; u++)
    sr_seen_clear(&seen[u]);
  sr_free(seen);
  sr_free(scratch);
  sr_free(last_ts);
  sr_free(pop);
  sr_free(order);
  sr_free(owner);
  sr_free(map);
  sr_cat_free(&cat);
  res->elapsed_s = (double)(sr_mono_us() - t0) / 1e6;
  return err;
}

/* ------------------------------------------------------------------------
 * Split
 * ---------------------------------------------------------------------- */
/* Shortest of %g / %.9g that reads back as the same float. */
static void sr_fmt_value(char *buf, size_t n, float v) {
  snprintf(buf, n, "%g", (double)v);
  if ((float)strtod(buf, NULL) != v) snprintf(buf, n, "%.9g", (double)v);
}

static void sr_split_line(sr_buf_t *b, const sr_dataset_t *ds, sr_str_t uk, int64_t e) {
  char val[48];
  sr_str_t ik = sr_strmap_key(ds->items, ds->ev_item[e]);
  sr_fmt_value(val, sizeof(val), ds->ev_value[e]);
  sr_buf_printf(b, "%.*s,%.*s,%s,%lld,%s\n", (int)uk.len, uk.ptr, (int)ik.len, ik.ptr, val,
                (long long)ds->ev_ts[e], sr_event_type_name((sr_event_type_t)ds->ev_type[e]));
}

/* Both files' header line; s = ds's counts, nothing split yet. */
static void sr_split_begin(const sr_dataset_t *ds, sr_buf_t *train, sr_buf_t *test,
                           sr_eval_split_stats_t *s) {
  static const char hdr[] = "userId,itemId,value,timestamp_ms,type\n";
  memset(s, 0, sizeof(*s));
  s->users = ds->n_users;
  s->items = ds->n_items;
  s->events = ds->n_events;
  sr_buf_append(train, hdr, sizeof(hdr) - 1);
  sr_buf_append(test, hdr, sizeof(hdr) - 1);
}

void sr_eval_split_loo(const sr_dataset_t *ds, int min_events, sr_buf_t *train, sr_buf_t *test,
                       sr_eval_split_stats_t *st) {
  sr_eval_split_stats_t s;
  sr_split_begin(ds, train, test, &s);
  for (int32_t u = 0; u < ds->n_users; u++) {
    sr_str_t uk = sr_strmap_key(ds->users, u);
    int64_t beg = ds->user_off[u], end = ds->user_off[u + 1];
    int held = end - beg >= (int64_t)min_events && end > beg;
    for (int64_t e = beg; e < end; e++) {
      if (held && e == end - 1) {
        sr_split_line(test, ds, uk, e);
        s.test_events++;
      } else {
        sr_split_line(train, ds, uk, e);
        s.train_events++;
      }
    }
    s.test_users += held;
  }
  if (st) *st = s;
}

void sr_eval_split_time(const sr_dataset_t *ds, double frac, sr_buf_t *train, sr_buf_t *test,
                        sr_eval_split_stats_t *st) {
  sr_eval_split_stats_t s;
  sr_split_begin(ds, train, test, &s);
  int64_t *order;
  int32_t *owner;
  uint8_t *counted = sr_calloc((size_t)ds->n_users + 1, 1);
  sr_time_order(ds, &order, &owner);
  const int64_t cut = frac <= 0   ? 0
                      : frac >= 1 ? ds->n_events
                                  : (int64_t)floor(frac * (double)ds->n_events);
  for (int64_t i = 0; i < ds->n_events; i++) {
    const int64_t e = order[i];
    const int32_t u = owner[e];
    sr_str_t uk = sr_strmap_key(ds->users, u);
    sr_split_line(test, ds, uk, e);
    if (i < cut) {
      sr_split_line(train, ds, uk, e);
      s.train_events++;
    } else {
      s.test_events++;
      if (!counted[u]) s.test_users++;
      counted[u] = 1;
    }
  }
  sr_free(order);
  sr_free(owner);
  sr_free(counted);
  if (st) *st = s;
}

/* ------------------------------------------------------------------------
 * One user's top-K (serve/eval parity)
 * ---------------------------------------------------------------------- */
int sr_eval_user_topk(const sr_model_t *m, const sr_eval_event_t *evs, int n,
                      const sr_seen_conf_t *seen_conf, int k, int32_t *out_idx, float *out_score,
                      float *state_out) {
  sr_seen_conf_t sc;
  if (seen_conf)
    sc = *seen_conf;
  else
    sr_seen_conf_defaults(&sc);
  if (!m || n < 0 || (n > 0 && !evs) || k < 1 || !out_idx ||
      sr_seen_conf_check(&sc, NULL, 0) != SR_OK)
    return SR_ERR_INVALID_ARG;
  int ss = sr_model_state_size(m);
  float *h = sr_malloc((size_t)ss * sizeof(float));
  float *sco = out_score ? out_score : sr_malloc((size_t)k * sizeof(float));
  sr_scorer_t *scorer = sr_scorer_new(m, 1, k);
  sr_seen_t seen;
  sr_seen_init(&seen);
  int32_t *excl = NULL;
  int64_t last_ts = 0;
  int cnt = 0;
  if (!scorer) {
    cnt = SR_ERR_NOMEM;
    goto out;
  }
  sr_replay_reset(m, h, &last_ts);
  for (int i = 0; i < n; i++) {
    int32_t it = evs[i].type == SR_EV_FORGET
                     ? -1
                     : sr_model_item_lookup(m, evs[i].item.ptr, evs[i].item.len);
    sr_user_step(m, &sc, h, &last_ts, &seen, evs[i].type, it, evs[i].value, evs[i].ts_ms);
  }
  uint32_t n_excl = sr_seen_count(&seen);
  excl = sr_malloc((size_t)(n_excl ? n_excl : 1) * sizeof(int32_t));
  n_excl = sr_seen_sorted(&seen, excl);
  const float *st = h;
  const int32_t *ex = excl;
  int nex = (int)n_excl;
  sr_scorer_run(scorer, &st, 1, &ex, &nex, out_idx, sco, &cnt);
  if (state_out) memcpy(state_out, h, (size_t)ss * sizeof(float));
out:
  sr_scorer_destroy(scorer);
  sr_seen_clear(&seen);
  sr_free(h);
  if (sco != out_score) sr_free(sco);
  sr_free(excl);
  return cnt;
}
