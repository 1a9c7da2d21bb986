/*
 * Tiny test runner (librdkafka tests/ and libuv test/runner.c in spirit).
 * A test file defines TEST(name) functions and lists them in TEST_MAIN(...),
 * which may also hold set-up and tear-down code around the RUN(name) lines.
 * Assertions print file:line and the values, and fail the current case;
 * T_SKIP(reason) ends the current case as skipped (a tool it needs is missing).
 *
 * Every case runs in its own process: the runner forks one child per case;
 * the child runs the whole TEST_MAIN body with only that case's RUN enabled
 * (so set-up code runs afresh in each child, threads and all), and exits. The
 * parent reports a crash (signal), a sanitizer report (any other exit status)
 * or a timeout as a failure of that case and goes on with the next one.
 *
 *   t_NNNN-name          all cases, one child each: RUN/OK/FAIL/SKIP lines,
 *                        then "N passed, N failed[, N skipped]"
 *   t_NNNN-name CASE     just CASE, in this process (for gdb / rr)
 *   t_NNNN-name --list   the case names
 *
 * RUN_MOCK_ONLY(name) lists a case that needs the mock cluster's fault
 * injection (sr_broker_push_errors, sr_broker_set_down, ...). It runs as a
 * RUN case unless SR_TEST_BOOTSTRAP selects a real Kafka (tests/itest.h):
 * then the runner does not start it and prints one "MOCK-ONLY name: why"
 * line instead; such a case is neither a pass nor a skip.
 *
 * Exit status: 1 if a case failed, 77 if no case passed and every case
 * skipped or was left out as mock-only (ctest's SKIP_RETURN_CODE), else 0.
 * env: SR_TEST_CASE_TIMEOUT  seconds per case (default 120; 0: none).
 *      SR_TEST_BOOTSTRAP     host:port[,...] of a real Kafka (tests/itest.h).
 */
#ifndef SR_TEST_H
#define SR_TEST_H

#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif

/* Exit statuses of a case's child (anything else, or a signal, is a crash). */
#define SR_T_EXIT_SKIP 77      /* T_SKIP: ctest's SKIP_RETURN_CODE */
#define SR_T_EXIT_FAIL 99      /* an assertion failed (its FAIL line says where) */
#define SR_T_EXIT_UNREACHED 98 /* TEST_MAIN's set-up failed before the case's RUN */

static int sr_t_failed_ = 0;  /* the current case failed (tests may read it) */
static int sr_t_skipped_ = 0; /* the current case called T_SKIP */
static int sr_t_ran_ = 0;     /* RUN(sr_t_only_) was reached */
static const char *sr_t_name_ = "";
static const char *sr_t_only_ = NULL; /* the one case this process runs */

#define TEST(name) static void test_##name(void)

#define T_FAIL(...)                                                                                \
  do {                                                                                             \
    fprintf(stderr, "FAIL %s (%s:%d): ", sr_t_name_, __FILE__, __LINE__);                          \
    fprintf(stderr, __VA_ARGS__);                                                                  \
    fprintf(stderr, "\n");                                                                         \
    sr_t_failed_ = 1;                                                                              \
    return;                                                                                        \
  } while (0)

#define T_ASSERT(cond)                                                                             \
  do {                                                                                             \
    if (!(cond)) T_FAIL("assertion failed: %s", #cond);                                            \
  } while (0)
#define T_ASSERT_MSG(cond, ...)                                                                    \
  do {                                                                                             \
    if (!(cond)) T_FAIL(__VA_ARGS__);                                                              \
  } while (0)
#define T_EQ_INT(a, b)                                                                             \
  do {                                                                                             \
    long long a_ = (long long)(a), b_ = (long long)(b);                                            \
    if (a_ != b_) T_FAIL("%s == %lld, expected %s == %lld", #a, a_, #b, b_);                       \
  } while (0)
#define T_EQ_STR(a, b)                                                                             \
  do {                                                                                             \
    const char *a_ = (a), *b_ = (b);                                                               \
    if (strcmp(a_, b_)) T_FAIL("%s == \"%s\", expected \"%s\"", #a, a_, b_);                       \
  } while (0)
/* compare a borrowed slice (sr_str_t) to a C string */
#define T_EQ_SLICE(s, cstr)                                                                        \
  do {                                                                                             \
    sr_str_t s_ = (s);                                                                             \
    const char *c_ = (cstr);                                                                       \
    if (s_.len != strlen(c_) || memcmp(s_.ptr, c_, s_.len))                                        \
      T_FAIL("%s == \"%.*s\", expected \"%s\"", #s, (int)s_.len, s_.ptr, c_);                      \
  } while (0)
#define T_NEAR(a, b, tol)                                                                          \
  do {                                                                                             \
    double a_ = (a), b_ = (b);                                                                     \
    if (!(fabs(a_ - b_) <= (tol)))                                                                 \
      T_FAIL("%s == %.9g, expected %.9g (tol %g)", #a, a_, b_, (double)(tol));                     \
  } while (0)
/* End the current case as skipped, with the reason: for a missing tool or
 * input only, never to hide a failure (CI fails on any skip). */
#define T_SKIP(...)                                                                                \
  do {                                                                                             \
    fprintf(stderr, "SKIP %s (%s:%d): ", sr_t_name_, __FILE__, __LINE__);                          \
    fprintf(stderr, __VA_ARGS__);                                                                  \
    fprintf(stderr, "\n");                                                                         \
    sr_t_skipped_ = 1;                                                                             \
    return;                                                                                        \
  } while (0)

/* A wait bound of a test in ms, stretched by $SR_TEST_TIME_SCALE (3 in the
 * sanitizer builds, whose clients run several times slower): for bounds that
 * wait for work to happen, never for ones that assert it is fast. */
static inline int t_wait_ms(int ms) {
  const char *s = getenv("SR_TEST_TIME_SCALE");
  int k = s ? atoi(s) : 1;
  return ms * (k >= 1 && k <= 100 ? k : 1);
}

/* Per-test scratch path: $SR_TEST_TMP (or /tmp)/<pid>-<name>; not created. */
static inline const char *t_tmp_path(const char *name) {
  static char buf[4][512];
  static int i = 0;
  const char *d = getenv("SR_TEST_TMP");
  i = (i + 1) % 4;
  snprintf(buf[i], sizeof(buf[i]), "%s/%ld-%s", d ? d : "/tmp", (long)getpid(), name);
  return buf[i];
}

/* RUN(name) runs test_name when it is the case this process runs. */
#define RUN(name) sr_t_run_(#name, test_##name)
/* The same, for a case the runner leaves out on a real cluster (above). */
#define RUN_MOCK_ONLY(name) sr_t_run_(#name, test_##name)

/* The variable that selects a real Kafka for the integration tests instead
 * of the mock cluster: read here (the runner decides which cases to start)
 * and in tests/itest.h (which cluster they use). */
#define SR_T_BOOTSTRAP_ENV "SR_TEST_BOOTSTRAP"
#define SR_T_MOCK_ONLY_WHY                                                                         \
  "needs the mock cluster's fault injection; the real-cluster failure tests are tests/kafka/"
/* SR_TEST_BOOTSTRAP's value, or NULL when unset or empty (the mock cluster). */
static inline const char *sr_t_real_bootstrap(void) {
  const char *s = getenv(SR_T_BOOTSTRAP_ENV);
  return s && *s ? s : NULL;
}
static inline void sr_t_run_(const char *name, void (*fn)(void)) {
  if (!sr_t_only_ || strcmp(name, sr_t_only_)) return;
  sr_t_ran_ = 1;
  sr_t_name_ = name;
  sr_t_failed_ = sr_t_skipped_ = 0;
  fn();
}

/* The case names, in order, from TEST_MAIN's source text: every RUN(ident)
 * or RUN_MOCK_ONLY(ident) not preceded by an identifier character;
 * mock_only[i] says which form named case i. Returns the count (at most
 * max). */
static inline int sr_t_names_(const char *src, char names[][128], unsigned char *mock_only,
                              int max) {
  int n = 0;
  for (const char *p = src; (p = strstr(p, "RUN")) != NULL; p += 3) {
    if (p > src && (p[-1] == '_' || (p[-1] >= 'a' && p[-1] <= 'z') ||
                    (p[-1] >= 'A' && p[-1] <= 'Z') || (p[-1] >= '0' && p[-1] <= '9')))
      continue;
    int mock = !strncmp(p + 3, "_MOCK_ONLY(", 11);
    if (!mock && p[3] != '(') continue;
    const char *q = p + (mock ? 14 : 4);
    while (*q == ' ' || *q == '\n' || *q == '\t')
      q++;
    size_t len = strspn(q, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_");
    const char *e = q + len;
    while (*e == ' ' || *e == '\n' || *e == '\t')
      e++;
    if (len == 0 || len >= 128 || *e != ')' || n >= max) continue;
    int dup = 0;
    for (int i = 0; i < n; i++)
      dup |= strlen(names[i]) == len && !memcmp(names[i], q, len);
    if (dup) continue;
    memcpy(names[n], q, len);
    names[n][len] = '\0';
    mock_only[n++] = (unsigned char)mock;
  }
  return n;
}

/* The line for a case left out on a real cluster. */
static inline void sr_t_mock_only_line_(const char *name) {
  fprintf(stderr, "MOCK-ONLY %s: not run on the real Kafka at %s (%s): %s\n", name,
          sr_t_real_bootstrap(), SR_T_BOOTSTRAP_ENV, SR_T_MOCK_ONLY_WHY);
}

/* Runs the TEST_MAIN body with only `name` enabled; returns the exit status
 * of the case (0, SR_T_EXIT_SKIP, SR_T_EXIT_FAIL, SR_T_EXIT_UNREACHED). */
static inline int sr_t_case_(const char *name, int (*body)(void)) {
  sr_t_only_ = name;
  sr_t_name_ = name;
  int rc = body();
  if (!sr_t_ran_) {
    fprintf(stderr, "FAIL %s: not reached: TEST_MAIN's set-up %s\n", name,
            rc ? "failed" : "did not run it");
    return SR_T_EXIT_UNREACHED;
  }
  if (sr_t_failed_) return SR_T_EXIT_FAIL;
  if (rc) {
    fprintf(stderr, "FAIL %s: TEST_MAIN's tear-down returned %d\n", name, rc);
    return SR_T_EXIT_FAIL;
  }
  return sr_t_skipped_ ? SR_T_EXIT_SKIP : 0;
}

static inline double sr_t_now_(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* The child running now (its process group): killed with the runner. */
static volatile sig_atomic_t sr_t_child_ = 0;
static inline void sr_t_on_signal_(int sig) {
  if (sr_t_child_ > 0) kill(-(pid_t)sr_t_child_, SIGKILL);
  signal(sig, SIG_DFL);
  raise(sig);
}

/* Forks a child for `name`, waits (at most timeout s, 0: no limit) and
 * prints the verdict line; returns 0 passed, 1 failed, 2 skipped. */
static inline int sr_t_fork_(const char *name, int (*body)(void), double timeout) {
  fprintf(stderr, "RUN  %s\n", name);
  fflush(stdout);
  fflush(stderr);
  double t0 = sr_t_now_();
  pid_t pid = fork();
  if (pid < 0) {
    fprintf(stderr, "FAIL %s: fork: %s\n", name, strerror(errno));
    return 1;
  }
  if (pid == 0) {
    setpgid(0, 0); /* its own group: a timeout kills what it started too */
#ifdef __linux__
    prctl(PR_SET_PDEATHSIG, SIGKILL);
#endif
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    signal(SIGHUP, SIG_DFL);
    exit(sr_t_case_(name, body)); /* exit, not _exit: sanitizers' leak check */
  }
  setpgid(pid, pid); /* as the child does: no race on who runs first */
  sr_t_child_ = pid;
  int status = 0, timed_out = 0;
  long nap_us = 100;
  for (;;) {
    pid_t r = waitpid(pid, &status, WNOHANG);
    if (r == pid) break;
    if (r < 0 && errno != EINTR) {
      fprintf(stderr, "FAIL %s: waitpid: %s\n", name, strerror(errno));
      sr_t_child_ = 0;
      return 1;
    }
    if (timeout > 0 && sr_t_now_() - t0 > timeout) {
      kill(-pid, SIGKILL);
      kill(pid, SIGKILL);
      while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
      }
      timed_out = 1;
      break;
    }
    struct timespec nap = {0, nap_us * 1000};
    nanosleep(&nap, NULL);
    if (nap_us < 20000) nap_us *= 2;
  }
  kill(-pid, SIGKILL); /* whatever the case started and left running */
  sr_t_child_ = 0;
  double secs = sr_t_now_() - t0;
  if (timed_out) {
    fprintf(stderr, "FAIL %s: timed out after %.0f s (SR_TEST_CASE_TIMEOUT)\n", name, timeout);
    return 1;
  }
  if (WIFSIGNALED(status)) {
    fprintf(stderr, "FAIL %s: killed by signal %d (%s) after %.2f s\n", name, WTERMSIG(status),
            strsignal(WTERMSIG(status)), secs);
    return 1;
  }
  int code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  if (code == 0) {
    fprintf(stderr, "OK   %s (%.2f s)\n", name, secs);
    return 0;
  }
  if (code == SR_T_EXIT_SKIP) {
    fprintf(stderr, "SKIP %s\n", name);
    return 2;
  }
  if (code == SR_T_EXIT_FAIL || code == SR_T_EXIT_UNREACHED)
    fprintf(stderr, "FAIL %s (%.2f s)\n", name, secs);
  else
    fprintf(stderr, "FAIL %s: exited with status %d after %.2f s (a sanitizer report above?)\n",
            name, code, secs);
  return 1;
}

static inline int sr_t_main_(int argc, char **argv, const char *src, int (*body)(void)) {
  static char names[512][128];
  static unsigned char mock_only[512];
  int n = sr_t_names_(src, names, mock_only, 512);
  const int real = sr_t_real_bootstrap() != NULL;
  if (argc > 2 || (argc == 2 && argv[1][0] == '-' && strcmp(argv[1], "--list"))) {
    fprintf(stderr, "usage: %s [CASE | --list]\n", argv[0]);
    return 2;
  }
  if (argc == 2 && !strcmp(argv[1], "--list")) {
    for (int i = 0; i < n; i++)
      printf("%s\n", names[i]);
    return 0;
  }
  int n_pass = 0, n_fail = 0, n_skip = 0, n_mock = 0;
  if (argc == 2) { /* one case, in this process */
    int known = -1;
    for (int i = 0; i < n; i++)
      if (!strcmp(names[i], argv[1])) known = i;
    if (known < 0) {
      fprintf(stderr, "%s: no case '%s' (--list shows them)\n", argv[0], argv[1]);
      return 2;
    }
    if (real && mock_only[known]) {
      sr_t_mock_only_line_(argv[1]);
      return SR_T_EXIT_SKIP;
    }
    fprintf(stderr, "RUN  %s\n", argv[1]);
    int code = sr_t_case_(argv[1], body);
    if (code == 0)
      fprintf(stderr, "OK   %s\n", argv[1]), n_pass++;
    else if (code == SR_T_EXIT_SKIP)
      fprintf(stderr, "SKIP %s\n", argv[1]), n_skip++;
    else
      fprintf(stderr, "FAIL %s\n", argv[1]), n_fail++;
  } else {
    const char *t = getenv("SR_TEST_CASE_TIMEOUT");
    double timeout = t && *t ? atof(t) : 120;
    signal(SIGINT, sr_t_on_signal_);
    signal(SIGTERM, sr_t_on_signal_);
    signal(SIGHUP, sr_t_on_signal_);
    for (int i = 0; i < n; i++) {
      if (real && mock_only[i]) {
        sr_t_mock_only_line_(names[i]);
        n_mock++;
        continue;
      }
      int r = sr_t_fork_(names[i], body, timeout);
      n_pass += r == 0, n_fail += r == 1, n_skip += r == 2;
    }
  }
  printf("%d passed, %d failed", n_pass, n_fail);
  if (n_skip) printf(", %d skipped", n_skip);
  if (n_mock) printf(", %d mock-only not run", n_mock);
  printf("\n");
  if (n_fail || n == 0) return 1;
  return (n_skip || n_mock) && !n_pass ? SR_T_EXIT_SKIP : 0;
}

/* The body runs only in a case's process (see the top of this file). */
#define TEST_MAIN(...)                                                                             \
  static int sr_t_body_(void) {                                                                    \
    __VA_ARGS__;                                                                                   \
    return 0;                                                                                      \
  }                                                                                                \
  int main(int argc, char **argv) { return sr_t_main_(argc, argv, #__VA_ARGS__, sr_t_body_); }

/* Top-K parity up to BLAS rounding (docs/ARCHITECTURE.md "Parity"): two
 * lists of cnt entries computed by sgemm calls of different shapes agree
 * at position j when the scores there are within T_TOPK_TOL of each other,
 * and the item is the same, or it stands in the other list with a score
 * within tolerance of its own (a near-tie swapped places), or it is
 * missing there and its score ties the other list's last one (a near-tie
 * at the cut-off). No BLAS promises more for calls of different shapes. */
#define T_TOPK_TOL(x) (1e-5f * (1.0f + fabsf(x)))
static inline int t_topk_same(const int32_t *ai, const float *as, const int32_t *bi,
                              const float *bs, int cnt, int j) {
  if (fabsf(as[j] - bs[j]) > T_TOPK_TOL(bs[j])) return 0;
  if (ai[j] == bi[j]) return 1;
  for (int q = 0; q < cnt; q++)
    if (bi[q] == ai[j]) return fabsf(bs[q] - as[j]) <= T_TOPK_TOL(as[j]);
  return fabsf(as[j] - bs[cnt - 1]) <= T_TOPK_TOL(bs[cnt - 1]);
}

#endif
