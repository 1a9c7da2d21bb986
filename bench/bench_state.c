/*
 * bench_state: memory per user and update rate of the user-state store,
 * seen sets included (issue #4: 10M users at d = 64 must fit in 6 GB;
 * issue #9: exact seen-item exclusion, bytes per user with the seen sets).
 *
 * For each user count (default 1M and 10M) a fresh child process:
 *  1. creates the users (ids "user-<n>", spread over the partitions by
 *     n % P, vec initialised), each consuming --history H distinct random
 *     items of the 10,000 (default 20) through sr_user_seen_apply (serve's
 *     rule), and measures the resident set growth from /proc/self/statm:
 *     measured, not estimated (sr_state_bytes() is printed next to it);
 *  2. applies updates to uniformly random existing users (the worst case
 *     for caches): sr_state_get + h = a*h + e[item] over d floats + the
 *     seen-set update + counters, and reports updates/s (wall clock, and
 *     CPU time, which is what to compare on a shared host).
 * Then, when a MovieLens ratings file is given or found (--movielens FILE,
 * default ../shared/data/movielens-small/ratings.csv), one more child
 * replays every user's real history (in time order, all of it consumed:
 * RATE events) into --ml-copies copies of each user (default 100, so the
 * RSS growth is large enough to measure) and reports bytes per user and
 * the distribution of history lengths.
 * One process per run, so memory freed by a previous run cannot be reused
 * and hide growth.
 *
 * usage: bench_state [--quick] [--users N[,N...]] [--dim D] [--history H]
 *                    [--partitions P] [--updates N] [--movielens FILE|none]
 *                    [--ml-copies C]
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "streamrec/common.h"
#include "streamrec/dataset.h"
#include "streamrec/state.h"

#define N_ITEMS 10000

static uint64_t rng = 0x9E3779B97F4A7C15ULL;
static inline uint64_t rnd64(void) {
  rng ^= rng << 13;
  rng ^= rng >> 7;
  rng ^= rng << 17;
  return rng;
}

static double cpu_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

/* the decay model's step: h = a*h + e (restrict: lets the compiler use SIMD) */
static void decay_step(float *restrict h, const float *restrict e, float a, int d) {
  for (int j = 0; j < d; j++)
    h[j] = a * h[j] + e[j];
}

static size_t rss_bytes(void) {
  FILE *f = fopen("/proc/self/statm", "r");
  unsigned long size = 0, res = 0;
  if (f) {
    if (fscanf(f, "%lu %lu", &size, &res) != 2) res = 0;
    fclose(f);
  }
  return (size_t)res * (size_t)sysconf(_SC_PAGESIZE);
}

/* "user-<n>" into buf; returns the length. */
static inline int user_id(char *buf, uint64_t n) {
  char tmp[24];
  int t = 0;
  do {
    tmp[t++] = (char)('0' + n % 10);
    n /= 10;
  } while (n);
  memcpy(buf, "user-", 5);
  for (int i = 0; i < t; i++)
    buf[5 + i] = tmp[t - 1 - i];
  return 5 + t;
}

static int run_one(size_t n_users, int dim, int history, int parts, size_t n_updates) {
  /* everything that is not the store is allocated before the baseline */
  float *emb = malloc((size_t)N_ITEMS * dim * sizeof(float));
  for (size_t i = 0; i < (size_t)N_ITEMS * dim; i++)
    emb[i] = (float)(rnd64() >> 40) * (1.0f / 16777216.0f) - 0.5f;
  char id[32];

  size_t rss0 = rss_bytes();
  sr_state_t *s = sr_state_new(dim, NULL);
  if (!s) {
    fprintf(stderr, "bench_state: bad dim\n");
    return 1;
  }
  for (int p = 0; p < parts; p++)
    sr_state_partition_add(s, p);

  int64_t t0 = sr_mono_ns();
  double c_ins0 = cpu_s();
  for (size_t u = 0; u < n_users; u++) {
    int len = user_id(id, u), created = 0;
    sr_user_t *usr = sr_state_get(s, (int32_t)(u % (size_t)parts), id, (size_t)len, 1, &created);
    if (!usr || !created) {
      fprintf(stderr, "bench_state: create of user %zu failed\n", u);
      return 1;
    }
    float *h = sr_user_vec(s, usr);
    for (int j = 0; j < dim; j++)
      h[j] = 0.01f * (float)j; /* as a model init would */
    for (int k = 0; k < history; k++) {
      usr->last_ts = 1 + k;
      sr_user_seen_apply(s, usr, SR_EV_VIEW, (int32_t)(rnd64() % N_ITEMS), usr->last_ts);
    }
    if (!history) usr->last_ts = 1;
  }
  double t_ins = (double)(sr_mono_ns() - t0) * 1e-9, c_ins = cpu_s() - c_ins0;
  size_t rss1 = rss_bytes();
  size_t held = sr_state_bytes(s);
  if (sr_state_users(s) != n_users) {
    fprintf(stderr, "bench_state: %zu users stored, expected %zu\n", sr_state_users(s), n_users);
    return 1;
  }

  const double per_user = (double)(rss1 - rss0) / (double)n_users;
  size_t seen_total = 0;
  for (size_t u = 0; u < n_users && u < 100000; u++) {
    int len = user_id(id, u);
    seen_total += sr_seen_count(
        &sr_state_get(s, (int32_t)(u % (size_t)parts), id, (size_t)len, 0, NULL)->seen);
  }
  printf("users=%zu partitions=%d d=%d history=%d random items per user (%.1f distinct on "
         "average)\n",
         n_users, parts, dim, history,
         (double)seen_total / (double)(n_users < 100000 ? n_users : 100000));
  printf("  create: %.2f s, %.2f M users/s (CPU time %.2f s)\n", t_ins,
         (double)n_users / t_ins * 1e-6, c_ins);
  printf("  RSS: +%.1f MB = %.1f bytes/user measured (sr_state_bytes: %.1f bytes/user)\n",
         (double)(rss1 - rss0) / 1048576.0, per_user, (double)held / (double)n_users);
  fflush(stdout);

  /* updates to uniformly random existing users */
  const float a = 0.95f;
  t0 = sr_mono_ns();
  double c0 = cpu_s();
  for (size_t k = 0; k < n_updates; k++) {
    uint64_t r = rnd64();
    uint64_t u = (r >> 20) % n_users;
    int32_t item = (int32_t)(r % N_ITEMS);
    int len = user_id(id, u);
    sr_user_t *usr = sr_state_get(s, (int32_t)(u % (uint64_t)parts), id, (size_t)len, 1, NULL);
    decay_step(sr_user_vec(s, usr), emb + (size_t)item * dim, a, dim);
    usr->n_events++;
    usr->last_ts = (int64_t)k + 2 + history;
    sr_user_seen_apply(s, usr, SR_EV_VIEW, item, usr->last_ts);
  }
  double t_upd = (double)(sr_mono_ns() - t0) * 1e-9, c_upd = cpu_s() - c0;
  printf("  update (get + d=%d decay step + seen set, uniform random users): %zu in %.2f s = "
         "%.2f M updates/s (%.0f ns each; CPU time %.0f ns each = %.2f M/s)\n",
         dim, n_updates, t_upd, (double)n_updates / t_upd * 1e-6, t_upd / (double)n_updates * 1e9,
         c_upd / (double)n_updates * 1e9, (double)n_updates / c_upd * 1e-6);
  if (dim == 64 && n_users >= 1000000) {
    double gb10m = per_user * 10e6 / 1e9;
    printf("  issue #4: %.1f bytes/user with %d-item seen sets; 10M users -> %.2f GB %s 6 GB\n",
           per_user, history, gb10m, gb10m <= 6.0 ? "<=" : "> (OVER)");
  }
  sr_state_destroy(s);
  free(emb);
  fflush(stdout); /* the child leaves with _exit */
  return 0;
}

/* Real histories: every MovieLens user's ratings, in time order, into
 * `copies` users each. */
static int run_movielens(const char *path, int copies, int dim, int parts) {
  char es[512];
  sr_dataset_t *ds = NULL;
  if (sr_dataset_load_csv(path, &ds, es, sizeof(es)) != SR_OK) {
    fprintf(stderr, "bench_state: %s\n", es);
    return 1;
  }
  int64_t longest = 0;
  int32_t *len = malloc((size_t)ds->n_users * sizeof(int32_t));
  for (int32_t u = 0; u < ds->n_users; u++) {
    len[u] = (int32_t)(ds->user_off[u + 1] - ds->user_off[u]);
    if (len[u] > longest) longest = len[u];
  }
  char id[32];
  size_t rss0 = rss_bytes();
  sr_state_t *s = sr_state_new(dim, NULL);
  for (int p = 0; p < parts; p++)
    sr_state_partition_add(s, p);
  const size_t n_users = (size_t)ds->n_users * (size_t)copies;
  int64_t t0 = sr_mono_ns();
  for (size_t n = 0; n < n_users; n++) {
    int32_t u = (int32_t)(n % (size_t)ds->n_users);
    int l = user_id(id, n);
    sr_user_t *usr = sr_state_get(s, (int32_t)(n % (size_t)parts), id, (size_t)l, 1, NULL);
    float *h = sr_user_vec(s, usr);
    for (int j = 0; j < dim; j++)
      h[j] = 0.01f * (float)j;
    for (int64_t e = ds->user_off[u]; e < ds->user_off[u + 1]; e++) {
      if (ds->ev_ts[e] > usr->last_ts) usr->last_ts = ds->ev_ts[e];
      sr_user_seen_apply(s, usr, (sr_event_type_t)ds->ev_type[e], ds->ev_item[e], ds->ev_ts[e]);
    }
  }
  double t = (double)(sr_mono_ns() - t0) * 1e-9;
  size_t rss1 = rss_bytes(), held = sr_state_bytes(s);
  size_t seen_total = 0;
  for (size_t n = 0; n < (size_t)ds->n_users; n++) {
    int l = user_id(id, n);
    seen_total +=
        sr_seen_count(&sr_state_get(s, (int32_t)(n % (size_t)parts), id, (size_t)l, 0, NULL)->seen);
  }
  /* median history length */
  int32_t *sorted = malloc((size_t)ds->n_users * sizeof(int32_t));
  memcpy(sorted, len, (size_t)ds->n_users * sizeof(int32_t));
  for (int32_t i = 1; i < ds->n_users; i++) /* insertion sort: 610 users */
    for (int32_t j = i; j > 0 && sorted[j - 1] > sorted[j]; j--) {
      int32_t x = sorted[j];
      sorted[j] = sorted[j - 1];
      sorted[j - 1] = x;
    }
  printf("movielens %s: %d users x %d copies = %zu users, d=%d; %lld ratings, history "
         "median %d, mean %.1f, longest %lld; seen items kept %.1f per user (%zu of %lld: "
         "%s), %llu dropped by state.seen.max %u\n",
         path, ds->n_users, copies, n_users, dim, (long long)ds->n_events, sorted[ds->n_users / 2],
         (double)ds->n_events / (double)ds->n_users, (long long)longest,
         (double)seen_total / (double)ds->n_users, seen_total, (long long)ds->n_events,
         seen_total == (size_t)ds->n_events ? "all" : "NOT all",
         (unsigned long long)sr_state_seen_dropped(s), (unsigned)sr_state_seen_conf(s)->max);
  printf("  replay: %.2f s; RSS: +%.1f MB = %.1f bytes/user measured (sr_state_bytes: %.1f "
         "bytes/user)\n",
         t, (double)(rss1 - rss0) / 1048576.0, (double)(rss1 - rss0) / (double)n_users,
         (double)held / (double)n_users);
  free(sorted);
  free(len);
  sr_state_destroy(s);
  sr_dataset_destroy(ds);
  fflush(stdout);
  return 0;
}

int main(int argc, char **argv) {
  int quick = 0, dim = 64, history = 20, parts = 8, copies = 100;
  const char *ml = NULL;
  size_t updates = 0;
  const char *users = NULL;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--quick"))
      quick = 1;
    else if (!strcmp(argv[i], "--users") && i + 1 < argc)
      users = argv[++i];
    else if (!strcmp(argv[i], "--dim") && i + 1 < argc)
      dim = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--history") && i + 1 < argc)
      history = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--movielens") && i + 1 < argc)
      ml = argv[++i];
    else if (!strcmp(argv[i], "--ml-copies") && i + 1 < argc)
      copies = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--partitions") && i + 1 < argc)
      parts = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--updates") && i + 1 < argc)
      updates = strtoull(argv[++i], NULL, 10);
    else {
      fprintf(stderr,
              "usage: %s [--quick] [--users N[,N...]] [--dim D] [--history H] [--partitions P] "
              "[--updates N] [--movielens FILE|none] [--ml-copies C]\n",
              argv[0]);
      return 2;
    }
  }
  if (!users) users = quick ? "1000000" : "1000000,10000000";
  if (!updates) updates = quick ? 2000000 : 10000000;
  if (dim < 1 || history < 0 || parts < 1 || copies < 1) {
    fprintf(stderr, "bench_state: bad --dim/--history/--partitions/--ml-copies\n");
    return 2;
  }
  if (!ml && access("../shared/data/movielens-small/ratings.csv", R_OK) == 0)
    ml = "../shared/data/movielens-small/ratings.csv";
  if (ml && !strcmp(ml, "none")) ml = NULL;
  printf("bench_state: pid %ld, page size %ld\n", (long)getpid(), sysconf(_SC_PAGESIZE));
  int rc = 0;
  char *list = sr_strdup(users);
  for (char *tok = strtok(list, ","); tok; tok = strtok(NULL, ",")) {
    size_t n = strtoull(tok, NULL, 10);
    if (n == 0) continue;
    fflush(stdout);
    pid_t pid = fork();
    if (pid < 0) {
      perror("fork");
      rc = 1;
      break;
    }
    if (pid == 0) _exit(run_one(n, dim, history, parts, updates));
    int st = 0;
    waitpid(pid, &st, 0);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
      fprintf(stderr, "bench_state: run with %zu users failed\n", n);
      rc = 1;
    }
  }
  sr_free(list);
  if (ml) {
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) _exit(run_movielens(ml, copies, dim, parts));
    int st = 0;
    waitpid(pid, &st, 0);
    if (pid < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0) rc = 1;
  } else {
    printf("movielens: no ratings file (--movielens FILE): real histories not measured\n");
  }
  return rc;
}
