/*
 * bench_state: memory per user and update rate of the user-state store
 * (issue #4: 10M users at d = 64 must fit in 6 GB; target <= 512 bytes per
 * user at d = 64, ring 32, index included).
 *
 * For each user count (default 1M and 10M) a fresh child process:
 *  1. creates the users (ids "user-<n>", spread over the partitions by
 *     n % P, vec initialised) and measures the resident set growth from
 *     /proc/self/statm: measured, not estimated (sr_state_bytes() is
 *     printed next to it for comparison);
 *  2. applies updates to uniformly random existing users (the worst case
 *     for caches): sr_state_get + h = a*h + e[item] over d floats +
 *     sr_user_push_item + counters, and reports updates/s (wall clock, and
 *     CPU time, which is what to compare on a shared host).
 * One process per count, so memory freed by a previous run cannot be
 * reused and hide growth.
 *
 * usage: bench_state [--quick] [--users N[,N...]] [--dim D] [--ring R]
 *                    [--partitions P] [--updates N]
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "streamrec/common.h"
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
  for (int j = 0; j < d; j++) h[j] = a * h[j] + e[j];
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
  for (int i = 0; i < t; i++) buf[5 + i] = tmp[t - 1 - i];
  return 5 + t;
}

static int run_one(size_t n_users, int dim, int ring, int parts, size_t n_updates) {
  /* everything that is not the store is allocated before the baseline */
  float *emb = malloc((size_t)N_ITEMS * dim * sizeof(float));
  for (size_t i = 0; i < (size_t)N_ITEMS * dim; i++)
    emb[i] = (float)(rnd64() >> 40) * (1.0f / 16777216.0f) - 0.5f;
  char id[32];

  size_t rss0 = rss_bytes();
  sr_state_t *s = sr_state_new(dim, ring);
  if (!s) {
    fprintf(stderr, "bench_state: bad dim/ring\n");
    return 1;
  }
  for (int p = 0; p < parts; p++) sr_state_partition_add(s, p);

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
    for (int j = 0; j < dim; j++) h[j] = 0.01f * (float)j; /* as a model init would */
    usr->last_ts = 1;
  }
  double t_ins = (double)(sr_mono_ns() - t0) * 1e-9, c_ins = cpu_s() - c_ins0;
  size_t rss1 = rss_bytes();
  size_t held = sr_state_bytes(s);
  if (sr_state_users(s) != n_users) {
    fprintf(stderr, "bench_state: %zu users stored, expected %zu\n", sr_state_users(s), n_users);
    return 1;
  }

  const double per_user = (double)(rss1 - rss0) / (double)n_users;
  printf("users=%zu partitions=%d d=%d ring=%d (record %zu bytes serialized)\n", n_users, parts,
         dim, ring, sr_state_record_size(s));
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
    sr_user_push_item(s, usr, item);
    usr->n_events++;
    usr->last_ts = (int64_t)k + 2;
  }
  double t_upd = (double)(sr_mono_ns() - t0) * 1e-9, c_upd = cpu_s() - c0;
  printf("  update (get + d=%d decay step + push_item, uniform random users): %zu in %.2f s = "
         "%.2f M updates/s (%.0f ns each; CPU time %.0f ns each = %.2f M/s)\n",
         dim, n_updates, t_upd, (double)n_updates / t_upd * 1e-6,
         t_upd / (double)n_updates * 1e9, c_upd / (double)n_updates * 1e9,
         (double)n_updates / c_upd * 1e-6);
  if (dim == 64 && ring == 32 && n_users >= 1000000) {
    double gb10m = per_user * 10e6 / 1e9;
    printf("  issue #4: %.1f bytes/user %s 512; 10M users -> %.2f GB %s 6 GB\n", per_user,
           per_user <= 512 ? "<=" : "> (OVER)", gb10m, gb10m <= 6.0 ? "<=" : "> (OVER)");
  }
  sr_state_destroy(s);
  free(emb);
  fflush(stdout); /* the child leaves with _exit */
  return 0;
}

int main(int argc, char **argv) {
  int quick = 0, dim = 64, ring = 32, parts = 8;
  size_t updates = 0;
  const char *users = NULL;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--quick"))
      quick = 1;
    else if (!strcmp(argv[i], "--users") && i + 1 < argc)
      users = argv[++i];
    else if (!strcmp(argv[i], "--dim") && i + 1 < argc)
      dim = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--ring") && i + 1 < argc)
      ring = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--partitions") && i + 1 < argc)
      parts = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--updates") && i + 1 < argc)
      updates = strtoull(argv[++i], NULL, 10);
    else {
      fprintf(stderr,
              "usage: %s [--quick] [--users N[,N...]] [--dim D] [--ring R] [--partitions P] "
              "[--updates N]\n",
              argv[0]);
      return 2;
    }
  }
  if (!users) users = quick ? "1000000" : "1000000,10000000";
  if (!updates) updates = quick ? 2000000 : 10000000;
  if (dim < 1 || ring < 0 || ring > 4096 || parts < 1) {
    fprintf(stderr, "bench_state: bad --dim/--ring/--partitions\n");
    return 2;
  }
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
    if (pid == 0) _exit(run_one(n, dim, ring, parts, updates));
    int st = 0;
    waitpid(pid, &st, 0);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
      fprintf(stderr, "bench_state: run with %zu users failed\n", n);
      rc = 1;
    }
  }
  sr_free(list);
  return rc;
}
