/*
 * `streamrec gen`: writes a synthetic event history in the MovieLens
 * ratings.csv shape ("userId,movieId,rating,timestamp", seconds), with
 * enough structure that a sequential recommender has something to learn and
 * a popularity baseline something to beat:
 *
 *  - item popularity is Zipf-like (weight 1/rank);
 *  - items fall into clusters ("genres"); each user has 1-3 tastes
 *    (clusters) and draws most items from them;
 *  - sequential habits: every item has 3 fixed successors in its cluster
 *    and with some probability a user's next item is a successor of the
 *    previous one (the signal a session model picks up);
 *  - activity is skewed (few heavy users), and users come back in sessions;
 *  - ratings centre higher inside a user's tastes, with a per-user bias;
 *  - timestamps strictly increase over the whole file, so the file is sorted
 *    by time across users and can be replayed as a stream;
 *  - a (user, item) pair appears at most once (like ratings), best effort.
 *
 * Deterministic per --seed: our own PRNG (streamrec/rng.h, the trainers'
 * xoshiro256**), never rand(). The file is written to a temp name,
 * fsync'ed and renamed (no half files).
 */
#include <errno.h>
#include <getopt.h>
#include <libgen.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <unistd.h>

#include "cli/cli.h"
#include "streamrec/common.h"
#include "streamrec/rng.h"

/* ---------------------------------------------------------------- PRNG */
/* The generator is streamrec/rng.h (shared with the trainers); the two
 * mappings below are gen's own and part of its output for a seed. */

/* uniform in [0, n): multiply-shift of the draw's top 32 bits */
static inline uint32_t gen_below(sr_rng_t *r, uint32_t n) {
  return (uint32_t)(((sr_rng_next(r) >> 32) * (uint64_t)n) >> 32);
}
static double gen_normal(sr_rng_t *r) {
  double u = sr_rng_uniform(r), v = sr_rng_uniform(r);
  return sqrt(-2.0 * log(u + 1e-300)) * cos(2.0 * M_PI * v);
}

/* index i with cdf[i-1] <= x < cdf[i] (cdf increasing, last = total) */
static uint32_t gen_search(const double *cdf, uint32_t n, double x) {
  uint32_t lo = 0, hi = n - 1;
  while (lo < hi) {
    uint32_t mid = lo + (hi - lo) / 2;
    if (cdf[mid] > x)
      hi = mid;
    else
      lo = mid + 1;
  }
  return lo;
}

/* -------------------------------------------------------------- model */
#define GEN_MAX_TASTES 3
#define GEN_NSUCC 3
#define GEN_P_SEQ 0.35    /* next item is a successor of the previous one */
#define GEN_P_TASTE 0.80  /* otherwise: from one of the user's clusters ... */
                          /* ... else from global popularity (exploration) */
#define GEN_P_SESSION 0.5 /* next event continues a recently active user */
#define GEN_RING 64
#define GEN_T0 1600000000LL          /* 2020-09-13, seconds */
#define GEN_SPAN (2LL * 365 * 86400) /* the history covers about two years */

typedef struct {
  uint32_t n_items, n_users, k; /* k clusters */
  /* items are handled by popularity rank r (0 = most popular) */
  double *pop_cdf;   /* n_items */
  uint32_t *item_id; /* rank -> printed id (a shuffle of 1..n_items) */
  uint32_t *cl_off;  /* k + 1: cluster c holds ranks cl_rank[cl_off[c]..cl_off[c+1]) */
  uint32_t *cl_rank;
  double *cl_cdf;    /* same layout as cl_rank */
  uint32_t *succ;    /* n_items * GEN_NSUCC */
  double *act_cdf;   /* n_users: activity by user rank */
  uint32_t *user_id; /* user rank -> printed id */
  /* per user (by rank) */
  uint8_t *n_tastes;
  uint32_t *tastes; /* n_users * GEN_MAX_TASTES */
  float *bias;
  int32_t *last; /* last item rank, -1 none */
  /* seen (user, item) pairs: open addressing over keys u<<32|r, +1 */
  uint64_t *seen;
  uint64_t seen_mask;
} gen_model_t;

static uint32_t gen_cluster_of(const gen_model_t *m, uint32_t r) { return r % m->k; }

static uint32_t gen_from_cluster(const gen_model_t *m, sr_rng_t *rng, uint32_t c) {
  uint32_t a = m->cl_off[c], n = m->cl_off[c + 1] - a;
  const double *cdf = m->cl_cdf + a;
  return m->cl_rank[a + gen_search(cdf, n, sr_rng_uniform(rng) * cdf[n - 1])];
}

static uint32_t gen_from_all(const gen_model_t *m, sr_rng_t *rng) {
  return gen_search(m->pop_cdf, m->n_items, sr_rng_uniform(rng) * m->pop_cdf[m->n_items - 1]);
}

/* 1 when (u, r) was new (and is now recorded); always 1 without the set. */
static int gen_mark(gen_model_t *m, uint32_t u, uint32_t r) {
  if (!m->seen) return 1;
  uint64_t key = (((uint64_t)u << 32) | r) + 1;
  uint64_t h = (key * 0x9e3779b97f4a7c15ULL) >> 17;
  for (uint64_t i = h & m->seen_mask;; i = (i + 1) & m->seen_mask) {
    if (m->seen[i] == key) return 0;
    if (m->seen[i] == 0) {
      m->seen[i] = key;
      return 1;
    }
  }
}

static void gen_shuffle_ids(uint32_t *ids, uint32_t n, sr_rng_t *rng) {
  for (uint32_t i = 0; i < n; i++)
    ids[i] = i + 1;
  for (uint32_t i = n; i > 1; i--) {
    uint32_t j = gen_below(rng, i);
    uint32_t t = ids[i - 1];
    ids[i - 1] = ids[j];
    ids[j] = t;
  }
}

static void gen_model_init(gen_model_t *m, uint32_t n_users, uint32_t n_items, int64_t n_events,
                           sr_rng_t *rng) {
  memset(m, 0, sizeof(*m));
  m->n_items = n_items;
  m->n_users = n_users;
  uint32_t k = (uint32_t)(sqrt((double)n_items) / 2.0);
  m->k = k < 1 ? 1 : k > 64 ? 64 : k;

  m->pop_cdf = sr_malloc(n_items * sizeof(double));
  double acc = 0;
  for (uint32_t r = 0; r < n_items; r++)
    m->pop_cdf[r] = (acc += 1.0 / (r + 1.0));
  m->item_id = sr_malloc(n_items * sizeof(uint32_t));
  gen_shuffle_ids(m->item_id, n_items, rng);

  /* clusters: rank r goes to r % k, so every cluster has a head and a tail */
  m->cl_off = sr_calloc(m->k + 1, sizeof(uint32_t));
  m->cl_rank = sr_malloc(n_items * sizeof(uint32_t));
  m->cl_cdf = sr_malloc(n_items * sizeof(double));
  for (uint32_t r = 0; r < n_items; r++)
    m->cl_off[gen_cluster_of(m, r) + 1]++;
  for (uint32_t c = 0; c < m->k; c++)
    m->cl_off[c + 1] += m->cl_off[c];
  uint32_t *fill = sr_calloc(m->k, sizeof(uint32_t));
  for (uint32_t r = 0; r < n_items; r++) {
    uint32_t c = gen_cluster_of(m, r), at = m->cl_off[c] + fill[c]++;
    m->cl_rank[at] = r;
    m->cl_cdf[at] = (at > m->cl_off[c] ? m->cl_cdf[at - 1] : 0.0) + 1.0 / (r + 1.0);
  }
  sr_free(fill);

  /* fixed successors: popular-ish items of the same cluster, not itself */
  m->succ = sr_malloc((size_t)n_items * GEN_NSUCC * sizeof(uint32_t));
  for (uint32_t r = 0; r < n_items; r++)
    for (int j = 0; j < GEN_NSUCC; j++) {
      uint32_t s = r;
      for (int t = 0; t < 8 && s == r; t++)
        s = gen_from_cluster(m, rng, gen_cluster_of(m, r));
      m->succ[(size_t)r * GEN_NSUCC + j] = s;
    }

  /* users: skewed activity (weight 1/rank^0.7), 1-3 tastes, a rating bias */
  m->act_cdf = sr_malloc(n_users * sizeof(double));
  acc = 0;
  for (uint32_t u = 0; u < n_users; u++)
    m->act_cdf[u] = (acc += pow(u + 1.0, -0.7));
  m->user_id = sr_malloc(n_users * sizeof(uint32_t));
  gen_shuffle_ids(m->user_id, n_users, rng);
  m->n_tastes = sr_malloc(n_users);
  m->tastes = sr_malloc((size_t)n_users * GEN_MAX_TASTES * sizeof(uint32_t));
  m->bias = sr_malloc(n_users * sizeof(float));
  m->last = sr_malloc(n_users * sizeof(int32_t));
  for (uint32_t u = 0; u < n_users; u++) {
    m->n_tastes[u] = (uint8_t)(1 + gen_below(rng, GEN_MAX_TASTES));
    for (int j = 0; j < GEN_MAX_TASTES; j++)
      m->tastes[(size_t)u * GEN_MAX_TASTES + j] = gen_below(rng, m->k);
    m->bias[u] = (float)(0.4 * gen_normal(rng));
    m->last[u] = -1;
  }

  /* the pair set costs 16 bytes per event: skip it for huge outputs */
  if (n_events > 0 && n_events <= 50 * 1000 * 1000) {
    uint64_t cap = 1024;
    while (cap < (uint64_t)n_events * 2)
      cap <<= 1;
    m->seen = sr_calloc(cap, sizeof(uint64_t));
    m->seen_mask = cap - 1;
  }
}

static void gen_model_free(gen_model_t *m) {
  sr_free(m->pop_cdf);
  sr_free(m->item_id);
  sr_free(m->cl_off);
  sr_free(m->cl_rank);
  sr_free(m->cl_cdf);
  sr_free(m->succ);
  sr_free(m->act_cdf);
  sr_free(m->user_id);
  sr_free(m->n_tastes);
  sr_free(m->tastes);
  sr_free(m->bias);
  sr_free(m->last);
  sr_free(m->seen);
}

/* Next item rank for user u. */
static uint32_t gen_pick_item(gen_model_t *m, sr_rng_t *rng, uint32_t u) {
  for (int attempt = 0; attempt < 10; attempt++) {
    uint32_t r;
    double x = sr_rng_uniform(rng);
    if (m->last[u] >= 0 && x < GEN_P_SEQ && attempt < 3)
      r = m->succ[(size_t)m->last[u] * GEN_NSUCC + gen_below(rng, GEN_NSUCC)];
    else if (sr_rng_uniform(rng) < GEN_P_TASTE)
      r = gen_from_cluster(m, rng,
                           m->tastes[(size_t)u * GEN_MAX_TASTES + gen_below(rng, m->n_tastes[u])]);
    else
      r = gen_from_all(m, rng);
    if (gen_mark(m, u, r)) return r;
  }
  /* a user who has seen most of their world: allow a repeat */
  return gen_from_all(m, rng);
}

static float gen_rating(const gen_model_t *m, sr_rng_t *rng, uint32_t u, uint32_t r) {
  int in_taste = 0;
  uint32_t c = gen_cluster_of(m, r);
  for (int j = 0; j < m->n_tastes[u]; j++)
    in_taste |= m->tastes[(size_t)u * GEN_MAX_TASTES + j] == c;
  double pop = 1.0 - log(r + 1.0) / log(m->n_items + 1.0); /* 1 head .. 0 tail */
  double mu = (in_taste ? 3.9 : 3.0) + m->bias[u] + 0.3 * pop;
  double v = round((mu + 0.7 * gen_normal(rng)) * 2.0) / 2.0;
  return (float)(v < 0.5 ? 0.5 : v > 5.0 ? 5.0 : v);
}

/* ------------------------------------------------------------ command */

static void gen_usage(FILE *f) {
  fprintf(f, "usage: streamrec gen --users N --items M --events E --out FILE [--seed S]\n"
             "\n"
             "Writes a synthetic rating history as CSV (header userId,movieId,rating,timestamp;\n"
             "timestamps in seconds, increasing through the file): Zipf item popularity,\n"
             "item clusters with 1-3 tastes per user, sequential habits (fixed successor\n"
             "items), skewed user activity in sessions, ratings 0.5..5. Same seed, same file.\n"
             "\n"
             "  --users N     number of users (>= 1)\n"
             "  --items M     number of items (>= 1)\n"
             "  --events E    number of events (rows) to write (>= 0)\n"
             "  --out FILE    output path ('-' = stdout); written atomically\n"
             "  --seed S      PRNG seed (default 42)\n"
             "  -h, --help    this help\n");
}

static int gen_parse_i64(const char *opt, const char *s, int64_t min, int64_t max, int64_t *out) {
  char *end;
  errno = 0;
  long long v = strtoll(s, &end, 10);
  if (errno || end == s || *end || v < min || v > max) {
    fprintf(stderr, "streamrec gen: %s: expected an integer in [%lld, %lld], got '%s'\n", opt,
            (long long)min, (long long)max, s);
    return -1;
  }
  *out = v;
  return 0;
}

/* fsync the directory holding path so the rename is durable */
static void gen_fsync_dir(const char *path) {
  char *copy = sr_strdup(path);
  int fd = open(dirname(copy), O_RDONLY | O_DIRECTORY);
  if (fd >= 0) {
    (void)fsync(fd);
    close(fd);
  }
  sr_free(copy);
}

int sr_cmd_gen(int argc, char **argv) {
  static const struct option opts[] = {{"users", required_argument, NULL, 'u'},
                                       {"items", required_argument, NULL, 'i'},
                                       {"events", required_argument, NULL, 'e'},
                                       {"out", required_argument, NULL, 'o'},
                                       {"seed", required_argument, NULL, 's'},
                                       {"help", no_argument, NULL, 'h'},
                                       {NULL, 0, NULL, 0}};
  int64_t users = -1, items = -1, events = -1, seed = 42;
  const char *out = NULL;
  int c;

  optind = 0; /* full getopt reset: commands may run more than once per process */
  while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
    switch (c) {
    case 'u':
      if (gen_parse_i64("--users", optarg, 1, UINT32_MAX - 1, &users)) return 2;
      break;
    case 'i':
      if (gen_parse_i64("--items", optarg, 1, UINT32_MAX - 1, &items)) return 2;
      break;
    case 'e':
      if (gen_parse_i64("--events", optarg, 0, INT64_MAX / 2, &events)) return 2;
      break;
    case 's':
      if (gen_parse_i64("--seed", optarg, INT64_MIN, INT64_MAX, &seed)) return 2;
      break;
    case 'o': out = optarg; break;
    case 'h': gen_usage(stdout); return 0;
    default: gen_usage(stderr); return 2;
    }
  }
  if (optind < argc) {
    fprintf(stderr, "streamrec gen: unexpected argument '%s'\n", argv[optind]);
    gen_usage(stderr);
    return 2;
  }
  if (users < 0 || items < 0 || events < 0 || !out) {
    fprintf(stderr, "streamrec gen: --users, --items, --events and --out are required\n");
    gen_usage(stderr);
    return 2;
  }

  int64_t t_start = sr_mono_us();
  sr_rng_t rng;
  sr_rng_seed(&rng, (uint64_t)seed);
  gen_model_t m;
  gen_model_init(&m, (uint32_t)users, (uint32_t)items, events, &rng);

  int to_stdout = strcmp(out, "-") == 0;
  char *tmp = NULL;
  FILE *f = stdout;
  if (!to_stdout) {
    size_t n = strlen(out) + 32;
    tmp = sr_malloc(n);
    snprintf(tmp, n, "%s.tmp.%ld", out, (long)getpid());
    f = fopen(tmp, "w");
    if (!f) {
      fprintf(stderr, "streamrec gen: %s: %s\n", tmp, strerror(errno));
      gen_model_free(&m);
      sr_free(tmp);
      return 1;
    }
  }
  static char iobuf[1 << 20];
  setvbuf(f, iobuf, _IOFBF, sizeof(iobuf));

  uint32_t ring[GEN_RING];
  int ring_n = 0, ring_at = 0;
  double mean_gap = (double)GEN_SPAN / (double)(events > 0 ? events : 1) - 1.0;
  int64_t t = GEN_T0;
  fputs("userId,movieId,rating,timestamp\n", f);
  for (int64_t e = 0; e < events; e++) {
    uint32_t u;
    if (ring_n > 0 && sr_rng_uniform(&rng) < GEN_P_SESSION) {
      u = ring[gen_below(&rng, (uint32_t)ring_n)];
    } else {
      u = gen_search(m.act_cdf, m.n_users, sr_rng_uniform(&rng) * m.act_cdf[m.n_users - 1]);
      ring[ring_at] = u;
      ring_at = (ring_at + 1) % GEN_RING;
      if (ring_n < GEN_RING) ring_n++;
    }
    uint32_t r = gen_pick_item(&m, &rng, u);
    float rating = gen_rating(&m, &rng, u, r);
    m.last[u] = (int32_t)r;
    if (mean_gap > 0) t += (int64_t)(-log(1.0 - sr_rng_uniform(&rng)) * mean_gap);
    t += 1; /* strictly increasing */
    fprintf(f, "%u,%u,%.1f,%lld\n", m.user_id[u], m.item_id[r], rating, (long long)t);
  }

  int rc = 0;
  if (fflush(f) != 0 || ferror(f)) {
    fprintf(stderr, "streamrec gen: write %s: %s\n", to_stdout ? "stdout" : tmp, strerror(errno));
    rc = 1;
  }
  if (!to_stdout) {
    if (rc == 0 && fsync(fileno(f)) != 0) {
      fprintf(stderr, "streamrec gen: fsync %s: %s\n", tmp, strerror(errno));
      rc = 1;
    }
    if (fclose(f) != 0 && rc == 0) {
      fprintf(stderr, "streamrec gen: close %s: %s\n", tmp, strerror(errno));
      rc = 1;
    }
    if (rc == 0 && rename(tmp, out) != 0) {
      fprintf(stderr, "streamrec gen: rename %s -> %s: %s\n", tmp, out, strerror(errno));
      rc = 1;
    }
    if (rc != 0)
      unlink(tmp);
    else
      gen_fsync_dir(out);
    sr_free(tmp);
  }
  if (rc == 0)
    fprintf(stderr, "gen: wrote %lld events (%u users, %u items, %u clusters) to %s in %.2fs\n",
            (long long)events, m.n_users, m.n_items, m.k, out,
            (double)(sr_mono_us() - t_start) / 1e6);
  gen_model_free(&m);
  return rc;
}
