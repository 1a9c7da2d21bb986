/*
 * Tiny test runner (librdkafka tests/ and libuv test/runner.c in spirit).
 * A test file defines TEST(name) functions and lists them in TEST_MAIN(...).
 * Assertions print file:line and the values, and fail the current test;
 * Tests in one file run in order in one process: each cleans up after itself.
 * Prints "N passed, N failed" and exits non-zero on any failure.
 */
#ifndef SR_TEST_H
#define SR_TEST_H

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int sr_t_failed_ = 0;
static const char *sr_t_name_ = "";

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

/* Per-test scratch path: $SR_TEST_TMP (or /tmp)/<pid>-<name>; not created. */
static inline const char *t_tmp_path(const char *name) {
  static char buf[4][512];
  static int i = 0;
  const char *d = getenv("SR_TEST_TMP");
  i = (i + 1) % 4;
  snprintf(buf[i], sizeof(buf[i]), "%s/%ld-%s", d ? d : "/tmp", (long)getpid(), name);
  return buf[i];
}

#define RUN(name)                                                                                  \
  do {                                                                                             \
    int before_ = sr_t_failed_;                                                                    \
    sr_t_failed_ = 0;                                                                              \
    sr_t_name_ = #name;                                                                            \
    fprintf(stderr, "RUN  %s\n", #name);                                                           \
    test_##name();                                                                                 \
    if (sr_t_failed_)                                                                              \
      n_fail_++;                                                                                   \
    else {                                                                                         \
      n_pass_++;                                                                                   \
      fprintf(stderr, "OK   %s\n", #name);                                                         \
    }                                                                                              \
    sr_t_failed_ |= before_;                                                                       \
  } while (0)

#define TEST_MAIN(...)                                                                             \
  int main(void) {                                                                                 \
    int n_pass_ = 0, n_fail_ = 0;                                                                  \
    __VA_ARGS__;                                                                                   \
    printf("%d passed, %d failed\n", n_pass_, n_fail_);                                            \
    return n_fail_ ? 1 : 0;                                                                        \
  }

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
