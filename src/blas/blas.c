/*
 * blas: owns the choice of the OpenBLAS core and the machine facts around
 * it (interface and ranking: include/streamrec/blas.h).
 *
 * Why it is built this way:
 * - The core is fixed by OpenBLAS's library constructor before main() runs,
 *   from OPENBLAS_CORETYPE or its own cpuid table; nothing later changes it
 *   (gotoblas_dynamic_init returns at once once a core is set). So the only
 *   remedy for a weak choice is a fresh process image with the variable set:
 *   execv of /proc/self/exe with the same argv, guarded by a marker variable
 *   so that a build that ignores the request cannot loop.
 * - "Best" is decided from what the kernels need (cpuid bits plus the OS
 *   state in XCR0), not from family/model tables: a table is exactly what
 *   goes stale when a new CPU ships, which is the bug this module works
 *   around. Which cores the build contains is asked of the loaded library
 *   (its exported gotoblas_<NAME> tables), not assumed from its version: an
 *   unknown OPENBLAS_CORETYPE silently falls back to OpenBLAS's own choice.
 * - The facts are computed once (pthread_once) and copied out, so /metrics
 *   can read them from the admin thread without locks.
 */
#include <ctype.h>
#include <dlfcn.h>
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <cblas.h>

#include "streamrec/blas.h"

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#define SR__X86 1
#else
#define SR__X86 0
#endif

#define SR_BLAS_MOD "blas"
#define SR__ENV_CORETYPE "OPENBLAS_CORETYPE"
#define SR__ENV_MARKER "SR_BLAS_REEXEC"
#define SR__ENV_TEST "SR_BLAS_TEST_DETECTED"

/* ------------------------------------------------------------ features */

uint32_t sr_blas_features_from_cpuid(const sr_blas_cpuid_t *r) {
  uint32_t f = 0;
  if (!r || r->max_leaf < 1) return 0;
  const uint32_t c1 = r->l1_ecx;
  if (c1 & (1u << 0)) f |= SR_BLAS_F_SSE3;
  if (c1 & (1u << 9)) f |= SR_BLAS_F_SSSE3;
  if (c1 & (1u << 19)) f |= SR_BLAS_F_SSE4_1;
  if (c1 & (1u << 20)) f |= SR_BLAS_F_SSE4_2;
  /* OSXSAVE and XCR0: the OS saves XMM+YMM state (bits 1, 2), and the
   * AVX-512 opmask and upper ZMM state (bits 5, 6, 7), AMX tiles (17, 18) */
  const int osxsave = (c1 & (1u << 27)) != 0;
  const int os_avx = osxsave && (r->xcr0 & 0x6) == 0x6;
  const int os_avx512 = os_avx && (r->xcr0 & 0xe0) == 0xe0;
  const int os_amx = os_avx && (r->xcr0 & 0x60000) == 0x60000;
  if (os_avx && (c1 & (1u << 28))) {
    f |= SR_BLAS_F_AVX;
    if (c1 & (1u << 12)) f |= SR_BLAS_F_FMA;
  }
  if (r->max_leaf < 7) return f;
  if ((f & SR_BLAS_F_AVX) && (r->l7_ebx & (1u << 5))) f |= SR_BLAS_F_AVX2;
  if ((f & SR_BLAS_F_AVX) && r->l7_max_sub >= 1 && (r->l7s1_eax & (1u << 4)))
    f |= SR_BLAS_F_AVX_VNNI;
  if (os_avx512 && (r->l7_ebx & (1u << 16))) {
    f |= SR_BLAS_F_AVX512F;
    if (r->l7_ebx & (1u << 17)) f |= SR_BLAS_F_AVX512DQ;
    if (r->l7_ebx & (1u << 28)) f |= SR_BLAS_F_AVX512CD;
    if (r->l7_ebx & (1u << 30)) f |= SR_BLAS_F_AVX512BW;
    if (r->l7_ebx & (1u << 31)) f |= SR_BLAS_F_AVX512VL;
    if (r->l7_ecx & (1u << 11)) f |= SR_BLAS_F_AVX512_VNNI;
    if (r->l7_edx & (1u << 23)) f |= SR_BLAS_F_AVX512_FP16;
    if (r->l7_max_sub >= 1 && (r->l7s1_eax & (1u << 5))) f |= SR_BLAS_F_AVX512_BF16;
  }
  if (os_amx && (r->l7_edx & (1u << 24))) {
    f |= SR_BLAS_F_AMX_TILE;
    if (r->l7_edx & (1u << 22)) f |= SR_BLAS_F_AMX_BF16;
  }
  return f;
}

const char *sr_blas_feature_name(uint32_t bit) {
  switch (bit) {
#define SR__BLAS_F_NAME(name, b, str)                                                              \
  case SR_BLAS_F_##name: return str;
    SR_BLAS_FEATURE_MAP(SR__BLAS_F_NAME)
#undef SR__BLAS_F_NAME
  default: return NULL;
  }
}

void sr_blas_features_format(uint32_t f, const char *sep, sr_buf_t *out) {
  int first = 1;
  for (int b = 0; b < 32; b++) {
    const char *n = (f & (1u << b)) ? sr_blas_feature_name(1u << b) : NULL;
    if (!n) continue;
    sr_buf_printf(out, "%s%s", first ? "" : sep, n);
    first = 0;
  }
}

/* --------------------------------------------------------------- cores */

typedef struct sr__core_s {
  const char *name; /* OpenBLAS's corename spelling */
  int rank;
  uint32_t needs; /* features its kernels use; 0 = not in the table of needs */
} sr__core_t;

#define SR__SSE (SR_BLAS_F_SSE3)
#define SR__AVX2 (SR_BLAS_F_AVX | SR_BLAS_F_AVX2 | SR_BLAS_F_FMA)
/* Every name gotoblas_corename() of 0.3.21 returns, plus SkylakeX's heir.
 * Needs are given for the cores a CPU is ever steered to (and for the test
 * matrix); the AMD pre-Zen and 32-bit cores only rank. */
static const sr__core_t sr__cores[] = {
    {"Prescott", 1, SR__SSE},
    {"Core2", 1, SR__SSE | SR_BLAS_F_SSSE3},
    {"Penryn", 1, 0},
    {"Dunnington", 1, 0},
    {"Nehalem", 1, SR__SSE | SR_BLAS_F_SSSE3 | SR_BLAS_F_SSE4_1 | SR_BLAS_F_SSE4_2},
    {"Atom", 1, 0},
    {"Nano", 1, 0},
    {"Katmai", 1, 0},
    {"Coppermine", 1, 0},
    {"Northwood", 1, 0},
    {"Banias", 1, 0},
    {"Athlon", 1, 0},
    {"Opteron", 1, 0},
    {"Opteron_SSE3", 1, 0},
    {"Barcelona", 1, 0},
    {"Bobcat", 1, 0},
    {"Sandybridge", 2, SR__SSE | SR_BLAS_F_AVX},
    {"Bulldozer", 2, 0},
    {"Piledriver", 2, 0},
    {"Steamroller", 2, 0},
    {"Excavator", 2, 0},
    {"Haswell", 3, SR__SSE | SR__AVX2},
    {"Zen", 3, SR__SSE | SR__AVX2},
    {"SkylakeX", 4, SR__SSE | SR__AVX2 | SR_BLAS_F_AVX512_SKX},
    {"Cooperlake", 5, SR__SSE | SR__AVX2 | SR_BLAS_F_AVX512_SKX | SR_BLAS_F_AVX512_BF16},
};

static const sr__core_t *sr__core_find(const char *name) {
  if (!name) return NULL;
  for (size_t i = 0; i < SR_ARRAY_SIZE(sr__cores); i++)
    if (!strcasecmp(name, sr__cores[i].name)) return &sr__cores[i];
  return NULL;
}

int sr_blas_core_rank(const char *name) {
  const sr__core_t *c = sr__core_find(name);
  return c ? c->rank : 0;
}

const char *sr_blas_core_canonical(const char *name) {
  const sr__core_t *c = sr__core_find(name);
  return c ? c->name : NULL;
}

const char *sr_blas_core_name(int i) {
  return i >= 0 && (size_t)i < SR_ARRAY_SIZE(sr__cores) ? sr__cores[i].name : NULL;
}

uint64_t sr_blas_core_bit(const char *name) {
  const sr__core_t *c = sr__core_find(name);
  return c ? (uint64_t)1 << (c - sr__cores) : 0;
}

int sr_blas_core_runnable(const char *name, uint32_t f) {
  const sr__core_t *c = sr__core_find(name);
  return c && c->needs && (f & c->needs) == c->needs;
}

const char *sr_blas_best_core(uint32_t f, int amd, uint64_t known) {
  const char *const order[] = {
      "Cooperlake",  "SkylakeX", amd ? "Zen" : "Haswell", amd ? "Haswell" : "Zen",
      "Sandybridge", "Prescott"};
  for (size_t i = 0; i < SR_ARRAY_SIZE(order); i++)
    if ((known & sr_blas_core_bit(order[i])) && sr_blas_core_runnable(order[i], f))
      return sr_blas_core_canonical(order[i]);
  return NULL;
}

const char *sr_blas_reexec_target(const char *chosen, const char *best, int dynamic_arch,
                                  int user_set, int after_reexec) {
  if (user_set || after_reexec || !dynamic_arch || !best) return NULL;
  const int rc = sr_blas_core_rank(chosen), rb = sr_blas_core_rank(best);
  return rc > 0 && rb > rc ? sr_blas_core_canonical(best) : NULL;
}

const char *sr_blas_source_name(sr_blas_source_t s) {
  switch (s) {
  case SR_BLAS_SRC_REEXEC: return "reexec";
  case SR_BLAS_SRC_USER: return "user";
  default: return "detected";
  }
}

/* ----------------------------------------------------- machine facts */

#if SR__X86
static uint64_t sr__xgetbv0(void) {
  uint32_t lo, hi;
  __asm__ volatile(".byte 0x0f, 0x01, 0xd0" : "=a"(lo), "=d"(hi) : "c"(0)); /* xgetbv */
  return ((uint64_t)hi << 32) | lo;
}
#endif

/* Raw cpuid words, vendor, display family/model/stepping, brand string. */
static void sr__cpuid_read(sr_blas_cpuid_t *r, sr_blas_info_t *bi, char *brand, size_t bn) {
  memset(r, 0, sizeof(*r));
  if (bn) brand[0] = '\0';
#if SR__X86
  unsigned a, b, c, d;
  if (!__get_cpuid(0, &a, &b, &c, &d)) return;
  r->max_leaf = a;
  memcpy(bi->vendor, &b, 4);
  memcpy(bi->vendor + 4, &d, 4);
  memcpy(bi->vendor + 8, &c, 4);
  bi->vendor[12] = '\0';
  if (r->max_leaf >= 1 && __get_cpuid(1, &a, &b, &c, &d)) {
    r->l1_ecx = c;
    const int fam = (a >> 8) & 0xf, xfam = (a >> 20) & 0xff, mod = (a >> 4) & 0xf,
              xmod = (a >> 16) & 0xf;
    bi->family = fam == 0xf ? fam + xfam : fam;
    bi->model = fam == 0x6 || fam == 0xf ? (xmod << 4) + mod : mod;
    bi->stepping = a & 0xf;
    if (c & (1u << 27)) r->xcr0 = sr__xgetbv0();
  }
  if (r->max_leaf >= 7 && __get_cpuid_count(7, 0, &a, &b, &c, &d)) {
    r->l7_max_sub = a;
    r->l7_ebx = b;
    r->l7_ecx = c;
    r->l7_edx = d;
    if (a >= 1 && __get_cpuid_count(7, 1, &a, &b, &c, &d)) r->l7s1_eax = a;
  }
  if (bn > 48 && __get_cpuid(0x80000000, &a, &b, &c, &d) && a >= 0x80000004) {
    unsigned w[12];
    for (unsigned i = 0; i < 3; i++)
      __get_cpuid(0x80000002 + i, &w[4 * i], &w[4 * i + 1], &w[4 * i + 2], &w[4 * i + 3]);
    memcpy(brand, w, 48);
    brand[48] = '\0';
  }
#else
  (void)bi;
#endif
}

/* Copies src into dst[n] without leading/trailing blanks. */
static void sr__copy_trim(char *dst, size_t n, const char *src) {
  while (*src == ' ' || *src == '\t')
    src++;
  size_t len = strcspn(src, "\n");
  while (len && (src[len - 1] == ' ' || src[len - 1] == '\t'))
    len--;
  snprintf(dst, n, "%.*s", (int)len, src);
}

static void sr__model_name(char *out, size_t n, const char *brand) {
  FILE *f = fopen("/proc/cpuinfo", "r");
  out[0] = '\0';
  if (f) {
    char line[512];
    while (fgets(line, sizeof(line), f)) {
      char *colon = strchr(line, ':');
      if (!strncmp(line, "model name", 10) && colon) {
        sr__copy_trim(out, n, colon + 1);
        break;
      }
    }
    fclose(f);
  }
  if (!out[0]) sr__copy_trim(out, n, brand);
}

/* Reads "QUOTA PERIOD" (v2 cpu.max) or one integer (v1 files). */
static int sr__read_line(const char *path, char *buf, size_t n) {
  FILE *f = fopen(path, "r");
  if (!f) return 0;
  int ok = fgets(buf, (int)n, f) != NULL;
  fclose(f);
  return ok;
}

/* Tightest CPU bandwidth limit (in CPUs) on the cgroup path cg and its
 * ancestors, under root (v2: cpu.max; v1: cpu.cfs_quota_us/_period_us). */
static double sr__cg_walk(const char *root, const char *cg, int v2) {
  char p[1024], path[1200], buf[128];
  double best = 0;
  snprintf(p, sizeof(p), "%s", cg);
  for (;;) {
    double q = 0;
    if (v2) {
      snprintf(path, sizeof(path), "%s%s/cpu.max", root, !strcmp(p, "/") ? "" : p);
      long long quota, period;
      if (sr__read_line(path, buf, sizeof(buf)) && sscanf(buf, "%lld %lld", &quota, &period) == 2 &&
          quota > 0 && period > 0)
        q = (double)quota / (double)period;
    } else {
      char b2[128];
      snprintf(path, sizeof(path), "%s%s/cpu.cfs_quota_us", root, !strcmp(p, "/") ? "" : p);
      int okq = sr__read_line(path, buf, sizeof(buf));
      snprintf(path, sizeof(path), "%s%s/cpu.cfs_period_us", root, !strcmp(p, "/") ? "" : p);
      if (okq && sr__read_line(path, b2, sizeof(b2)) && atoll(buf) > 0 && atoll(b2) > 0)
        q = (double)atoll(buf) / (double)atoll(b2);
    }
    if (q > 0 && (best == 0 || q < best)) best = q;
    char *slash = strrchr(p, '/');
    if (!slash || !strcmp(p, "/")) break;
    if (slash == p)
      p[1] = '\0';
    else
      *slash = '\0';
  }
  return best;
}

static double sr__cgroup_quota(void) {
  FILE *f = fopen("/proc/self/cgroup", "r");
  if (!f) return 0;
  char line[1024];
  double best = 0;
  while (fgets(line, sizeof(line), f)) {
    line[strcspn(line, "\n")] = '\0';
    char *c1 = strchr(line, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
    if (!c2 || c2[1] != '/') continue;
    double q = 0;
    *c2 = '\0';
    const char *ctrls = c1 + 1, *cg = c2 + 1;
    if (!strcmp(line, "0") && !*ctrls) {
      q = sr__cg_walk("/sys/fs/cgroup", cg, 1);
    } else {
      char tmp[256];
      snprintf(tmp, sizeof(tmp), ",%s,", ctrls);
      if (strstr(tmp, ",cpu,")) {
        q = sr__cg_walk("/sys/fs/cgroup/cpu", cg, 0);
        if (q == 0) q = sr__cg_walk("/sys/fs/cgroup/cpu,cpuacct", cg, 0);
      }
    }
    if (q > 0 && (best == 0 || q < best)) best = q;
  }
  fclose(f);
  return best;
}

static int sr__affinity_count(void) {
  int n = -1;
  cpu_set_t *set = CPU_ALLOC(4096);
  size_t sz = CPU_ALLOC_SIZE(4096);
  if (set && sched_getaffinity(0, sz, set) == 0) n = CPU_COUNT_S(sz, set);
  if (set) CPU_FREE(set);
  return n;
}

/* Cores whose kernel table gotoblas_<NAME> the loaded OpenBLAS exports. */
static uint64_t sr__known_cores(void) {
  uint64_t known = 0;
  for (int i = 0; sr_blas_core_name(i); i++) {
    char sym[64] = "gotoblas_";
    size_t o = strlen(sym);
    for (const char *p = sr_blas_core_name(i); *p && o + 1 < sizeof(sym); p++)
      sym[o++] = (char)toupper((unsigned char)*p);
    sym[o] = '\0';
    if (dlsym(RTLD_DEFAULT, sym)) known |= (uint64_t)1 << i;
  }
  return known;
}

static struct {
  pthread_once_t once;
  sr_blas_info_t info; /* all but the thread count; written by init and ensure only */
  int ensured;
} sr__st = {PTHREAD_ONCE_INIT};

static void sr__init(void) {
  sr_blas_info_t *bi = &sr__st.info;
  sr_blas_cpuid_t r;
  char brand[64];
  memset(bi, 0, sizeof(*bi));
  sr__cpuid_read(&r, bi, brand, sizeof(brand));
  bi->features = sr_blas_features_from_cpuid(&r);
  bi->xcr0 = r.xcr0;
  sr__model_name(bi->model_name, sizeof(bi->model_name), brand);

  long online = sysconf(_SC_NPROCESSORS_ONLN);
  bi->cpus_online = online > 0 ? (int)online : 1;
  bi->cpus_affinity = sr__affinity_count();
  bi->cpu_quota = sr__cgroup_quota();
  int usable = bi->cpus_affinity > 0 ? bi->cpus_affinity : bi->cpus_online;
  if (bi->cpu_quota > 0 && ceil(bi->cpu_quota) < usable) usable = (int)ceil(bi->cpu_quota);
  bi->cpus_usable = usable > 0 ? usable : 1;

  snprintf(bi->config, sizeof(bi->config), "%s", openblas_get_config());
  bi->config[strcspn(bi->config, "\n")] = '\0';
  bi->dynamic_arch = strstr(bi->config, "DYNAMIC_ARCH") != NULL;
  bi->known = sr__known_cores();
  const int amd = !strcmp(bi->vendor, "AuthenticAMD") || !strcmp(bi->vendor, "HygonGenuine");
  const char *best = sr_blas_best_core(bi->features, amd, bi->known);
  const char *best_cpu = sr_blas_best_core(bi->features, amd, ~(uint64_t)0);
  snprintf(bi->core_best, sizeof(bi->core_best), "%s", best ? best : "");
  snprintf(bi->core_best_cpu, sizeof(bi->core_best_cpu), "%s", best_cpu ? best_cpu : "");

  const char *marker = getenv(SR__ENV_MARKER), *user = getenv(SR__ENV_CORETYPE),
             *hook = getenv(SR__ENV_TEST), *real = openblas_get_corename();
  snprintf(bi->core, sizeof(bi->core), "%s", real ? real : "");
  if (marker && *marker) {
    bi->source = SR_BLAS_SRC_REEXEC;
    snprintf(bi->core_before, sizeof(bi->core_before), "%s", marker);
    snprintf(bi->coretype_env, sizeof(bi->coretype_env), "%s", user ? user : "");
  } else if (user) {
    bi->source = SR_BLAS_SRC_USER;
    snprintf(bi->coretype_env, sizeof(bi->coretype_env), "%s", user);
  } else {
    bi->source = SR_BLAS_SRC_DETECTED;
    if (hook && *hook) snprintf(bi->core, sizeof(bi->core), "%s", hook); /* test-only */
  }
  const char *nt = getenv("OPENBLAS_NUM_THREADS");
  snprintf(bi->num_threads_env, sizeof(bi->num_threads_env), "%s", nt ? nt : "");
}

void sr_blas_info(sr_blas_info_t *out) {
  pthread_once(&sr__st.once, sr__init);
  *out = sr__st.info;
  out->threads = openblas_get_num_threads();
}

int sr_blas_core_suboptimal(const sr_blas_info_t *bi) {
  const char *best = bi->core_best[0] ? bi->core_best : bi->core_best_cpu;
  const int rc = sr_blas_core_rank(bi->core);
  return rc > 0 && sr_blas_core_rank(best) > rc;
}

char *sr_blas_describe(const sr_blas_info_t *bi, char *buf, size_t n) {
  char before[64] = "";
  if (bi->source == SR_BLAS_SRC_REEXEC)
    snprintf(before, sizeof(before), " (OpenBLAS chose %s)", bi->core_before);
  snprintf(buf, n, "core=%s best=%s source=%s%s threads=%d", bi->core,
           bi->core_best[0] ? bi->core_best : "?", sr_blas_source_name(bi->source), before,
           bi->threads);
  return buf;
}

/* ------------------------------------------------------------ warnings */

static sr_blas_warning_t *sr__warn(sr_blas_warning_t *w, int *n, int max, const char *id) {
  if (*n >= max) return NULL;
  sr_blas_warning_t *x = &w[(*n)++];
  x->id = id;
  x->message[0] = x->fix[0] = '\0';
  return x;
}

static void sr__usable_why(const sr_blas_info_t *bi, char *buf, size_t n) {
  char q[48] = "";
  if (bi->cpu_quota > 0) snprintf(q, sizeof(q), ", cgroup CPU quota %.2f", bi->cpu_quota);
  snprintf(buf, n, "affinity %d of %d online%s",
           bi->cpus_affinity > 0 ? bi->cpus_affinity : bi->cpus_online, bi->cpus_online, q);
}

int sr_blas_warnings(const sr_blas_info_t *bi, sr_blas_warning_t *w, int max) {
  int n = 0;
  sr_blas_warning_t *x;
  /* what to compare with: the best core the build has; when the build's
   * cores cannot be listed (or it has no DYNAMIC_ARCH), the CPU's best */
  const char *best = bi->core_best[0] ? bi->core_best : bi->core_best_cpu;
  const sr__core_t *cc = sr__core_find(bi->core);
  const int user = bi->source == SR_BLAS_SRC_USER;

  if (cc && cc->needs && !sr_blas_core_runnable(bi->core, bi->features) &&
      (x = sr__warn(w, &n, max, "core_unsupported"))) {
    sr_buf_t miss;
    sr_buf_init(&miss);
    sr_blas_features_format(cc->needs & ~bi->features, ", ", &miss);
    sr_buf_putc(&miss, 0);
    snprintf(x->message, sizeof(x->message),
             "OpenBLAS runs %s kernels, which need CPU features this CPU or its OS does not "
             "provide (%s): BLAS calls may stop the process with SIGILL",
             bi->core, (const char *)miss.data);
    snprintf(x->fix, sizeof(x->fix), "%s%s%s", user ? "unset OPENBLAS_CORETYPE" : "",
             user && best[0] ? " or " : "", best[0] ? "set OPENBLAS_CORETYPE=" : "");
    if (best[0]) snprintf(x->fix + strlen(x->fix), sizeof(x->fix) - strlen(x->fix), "%s", best);
    sr_buf_free(&miss);
  } else if (bi->source == SR_BLAS_SRC_REEXEC && strcasecmp(bi->core, bi->coretype_env) &&
             (x = sr__warn(w, &n, max, "core_mismatch"))) {
    snprintf(x->message, sizeof(x->message),
             "streamrec re-executed with OPENBLAS_CORETYPE=%s (OpenBLAS had chosen %s), but "
             "OpenBLAS runs %s",
             bi->coretype_env, bi->core_before, bi->core);
    snprintf(x->fix, sizeof(x->fix),
             "set OPENBLAS_CORETYPE yourself to a core this OpenBLAS honours (streamrec keeps a "
             "value you set), and report the mismatch with the output of `streamrec doctor "
             "--json`");
  } else if (user && strcasecmp(bi->core, bi->coretype_env) &&
             (x = sr__warn(w, &n, max, "core_mismatch"))) {
    snprintf(x->message, sizeof(x->message),
             "OPENBLAS_CORETYPE=%s is not a core this OpenBLAS uses: it runs %s instead",
             bi->coretype_env, bi->core);
    snprintf(x->fix, sizeof(x->fix), "unset OPENBLAS_CORETYPE%s%s", best[0] ? " or set it to " : "",
             best);
  }

  if (sr_blas_core_suboptimal(bi)) {
    if (!bi->dynamic_arch) {
      if ((x = sr__warn(w, &n, max, "no_dynamic_arch"))) {
        snprintf(x->message, sizeof(x->message),
                 "this OpenBLAS is built for one core (%s, no DYNAMIC_ARCH): it cannot use the %s "
                 "kernels this CPU supports, and OPENBLAS_CORETYPE has no effect",
                 bi->core, best);
        char up[32];
        size_t i = 0;
        for (; best[i] && i + 1 < sizeof(up); i++)
          up[i] = (char)toupper((unsigned char)best[i]);
        up[i] = '\0';
        snprintf(x->fix, sizeof(x->fix),
                 "install an OpenBLAS built with DYNAMIC_ARCH=1 (Debian's libopenblas0-pthread "
                 "is) or one built with TARGET=%s",
                 up);
      }
    } else if (user) {
      if ((x = sr__warn(w, &n, max, "core_weak"))) {
        snprintf(x->message, sizeof(x->message),
                 "OPENBLAS_CORETYPE=%s (set in the environment) runs %s kernels, weaker than %s, "
                 "the best this CPU and OpenBLAS support; streamrec never overrides a value you "
                 "set",
                 bi->coretype_env, bi->core, best);
        snprintf(x->fix, sizeof(x->fix),
                 "unset OPENBLAS_CORETYPE (train, eval, serve and doctor then select %s "
                 "themselves) or set OPENBLAS_CORETYPE=%s",
                 best, best);
      }
    } else if ((x = sr__warn(w, &n, max, "core_weak"))) {
      snprintf(x->message, sizeof(x->message),
               "OpenBLAS runs %s, weaker than %s which this CPU supports%s", bi->core, best,
               bi->reexec_failed                  ? "; re-executing with OPENBLAS_CORETYPE failed"
               : bi->source == SR_BLAS_SRC_REEXEC ? " (even after the re-exec)"
                                                  : " (this process did not re-execute)");
      snprintf(x->fix, sizeof(x->fix),
               "set OPENBLAS_CORETYPE=%s in the environment (streamrec train, eval, serve and "
               "doctor do it themselves by re-executing when they can)",
               best);
    }
  }

  if (bi->dynamic_arch && bi->known == 0 && (x = sr__warn(w, &n, max, "cores_unknown"))) {
    snprintf(x->message, sizeof(x->message),
             "cannot tell which cores this OpenBLAS has (no gotoblas_* kernel tables visible: "
             "linked statically?), so streamrec leaves its choice (%s) as is; this CPU could run "
             "%s",
             bi->core, bi->core_best_cpu[0] ? bi->core_best_cpu : "?");
    snprintf(x->fix, sizeof(x->fix),
             "check the core with OPENBLAS_VERBOSE=2 and set OPENBLAS_CORETYPE=%s if this "
             "OpenBLAS has it",
             bi->core_best_cpu[0] ? bi->core_best_cpu : "<core>");
  }

  const int env_threads = atoi(bi->num_threads_env);
  const int thr = SR_MAX(bi->threads, env_threads);
  if (thr > bi->cpus_usable && (x = sr__warn(w, &n, max, "threads_over_cpus"))) {
    char why[128];
    sr__usable_why(bi, why, sizeof(why));
    snprintf(x->message, sizeof(x->message),
             "OpenBLAS is set to %d threads (OPENBLAS_NUM_THREADS=%s) but this process may use "
             "%d CPU(s) (%s): the extra threads only wait for each other",
             thr, bi->num_threads_env[0] ? bi->num_threads_env : "unset", bi->cpus_usable, why);
    snprintf(x->fix, sizeof(x->fix),
             "set OPENBLAS_NUM_THREADS=%d or lower (serve uses blas.threads, default 1)",
             bi->cpus_usable);
  }
  if (bi->cpus_usable == 1 && (x = sr__warn(w, &n, max, "one_cpu"))) {
    char why[128];
    sr__usable_why(bi, why, sizeof(why));
    snprintf(x->message, sizeof(x->message),
             "this process may use only one CPU (%s): the Kafka client threads, the pipeline and "
             "BLAS share it",
             why);
    snprintf(x->fix, sizeof(x->fix),
             "give it at least 2 CPUs (taskset, cgroup cpuset or container CPU limit); keep "
             "blas.threads at 1");
  }
  return n;
}

/* ------------------------------------------------------------- ensure */

/* The one log line of the decision when no exec happens. */
static void sr__log_decision(const sr_blas_info_t *bi) {
  sr_blas_warning_t w[SR_BLAS_MAX_WARNINGS];
  int n = sr_blas_warnings(bi, w, SR_BLAS_MAX_WARNINGS);
  const char *best = bi->core_best[0] ? bi->core_best : "?";
  for (int i = 0; i < n; i++) {
    if (!strncmp(w[i].id, "core", 4) || !strcmp(w[i].id, "no_dynamic_arch")) {
      sr_log_warn(SR_BLAS_MOD, "%s; fix: %s", w[i].message, w[i].fix);
      return;
    }
  }
  if (bi->source == SR_BLAS_SRC_REEXEC)
    sr_log_info(SR_BLAS_MOD,
                "OpenBLAS core %s: re-executed with OPENBLAS_CORETYPE=%s because OpenBLAS had "
                "chosen %s (best for this CPU and build: %s)",
                bi->core, bi->coretype_env, bi->core_before, best);
  else
    sr_log_info(SR_BLAS_MOD, "OpenBLAS core %s, %s (best for this CPU and build: %s)", bi->core,
                bi->source == SR_BLAS_SRC_USER ? "from OPENBLAS_CORETYPE" : "chosen by OpenBLAS",
                best);
}

void sr_blas_ensure_core(int argc, char **argv) {
  pthread_once(&sr__st.once, sr__init);
  if (sr__st.ensured) return;
  sr__st.ensured = 1;
  sr_blas_info_t *bi = &sr__st.info;
  bi->threads = openblas_get_num_threads();
  if (bi->source == SR_BLAS_SRC_REEXEC) {
    /* ours, not the user's: children of this process decide for themselves */
    unsetenv(SR__ENV_MARKER);
    unsetenv(SR__ENV_CORETYPE);
    sr__log_decision(bi);
    return;
  }
  const char *target = sr_blas_reexec_target(bi->core, bi->core_best, bi->dynamic_arch,
                                             bi->source == SR_BLAS_SRC_USER, 0);
  if (target && argv && argc > 0 && argv[argc] == NULL) {
    if (setenv(SR__ENV_CORETYPE, target, 1) == 0 && setenv(SR__ENV_MARKER, bi->core, 1) == 0) {
      fflush(NULL);
      execv("/proc/self/exe", argv);
    }
    const int e = errno;
    unsetenv(SR__ENV_CORETYPE);
    unsetenv(SR__ENV_MARKER);
    bi->reexec_failed = 1;
    sr_log_warn(SR_BLAS_MOD,
                "OpenBLAS chose %s, weaker than %s which this CPU supports, and re-executing with "
                "OPENBLAS_CORETYPE=%s failed (%s): continuing with %s; fix: set "
                "OPENBLAS_CORETYPE=%s in the environment",
                bi->core, target, target, strerror(e), bi->core, target);
    return;
  }
  sr__log_decision(bi);
}

/* --------------------------------------------------------------- probe */

typedef struct sr__gemm_s {
  int m, n, k, trans_b;
  float beta;
  const float *a, *b;
  float *c;
} sr__gemm_t;

static void sr__gemm_run(const sr__gemm_t *g) {
  cblas_sgemm(CblasRowMajor, CblasNoTrans, g->trans_b ? CblasTrans : CblasNoTrans, g->m, g->n, g->k,
              1.0f, g->a, g->k, g->b, g->trans_b ? g->k : g->n, g->beta, g->c, g->n);
}

/* Relative error of C[i][j] against a double dot product, scaled by
 * sum |a||b| (the float rounding bound grows with it). */
static double sr__gemm_err(const sr__gemm_t *g, int i, int j, double *want) {
  double s = 0, mag = 0;
  for (int p = 0; p < g->k; p++) {
    const double a = g->a[(size_t)i * g->k + p];
    const double b = g->trans_b ? g->b[(size_t)j * g->k + p] : g->b[(size_t)p * g->n + j];
    s += a * b;
    mag += fabs(a * b);
  }
  *want = s;
  return fabs((double)g->c[(size_t)i * g->n + j] - s) / (mag > 1e-30 ? mag : 1e-30);
}

/* One checked call, then runs of calls of >= budget/6 each until budget is
 * spent (at least 2 timed calls); returns the best run's GFLOP/s. */
static sr_err_t sr__gemm_time(const sr__gemm_t *g, double budget_s, const char *what,
                              double *gflops, int *calls, double *max_err, char *errstr,
                              size_t errsz) {
  const double flop = 2.0 * g->m * g->n * g->k;
  memset(g->c, 0, (size_t)g->m * g->n * sizeof(float));
  sr__gemm_run(g);
  const int is[] = {0, g->m / 2, g->m - 1}, js[] = {0, g->n / 3, g->n - 1};
  for (size_t a = 0; a < 3; a++)
    for (size_t b = 0; b < 3; b++) {
      double want, e = sr__gemm_err(g, is[a], js[b], &want);
      if (e > *max_err) *max_err = e;
      if (!(e <= 1e-3))
        return sr_seterr(errstr, errsz, SR_ERR_FATAL,
                         "sgemm probe (%s): C[%d][%d] = %.9g, expected %.9g (OpenBLAS core %s)",
                         what, is[a], js[b], (double)g->c[(size_t)is[a] * g->n + js[b]], want,
                         openblas_get_corename());
    }
  const int64_t t_end = sr_mono_ns() + (int64_t)(budget_s * 1e9);
  const int64_t run_ns = (int64_t)(budget_s * 1e9 / 6);
  double best = 0;
  *calls = 0;
  do {
    int reps = 0;
    const int64_t t0 = sr_mono_ns();
    int64_t dt;
    do {
      sr__gemm_run(g);
      reps++;
      dt = sr_mono_ns() - t0;
    } while (dt < run_ns);
    *calls += reps;
    const double r = flop * reps / (double)(dt > 0 ? dt : 1); /* flop/ns = GFLOP/s */
    if (r > best) best = r;
  } while (sr_mono_ns() < t_end || *calls < 2);
  *gflops = best;
  return SR_OK;
}

sr_err_t sr_blas_probe_sgemm(double budget_s, int threads, sr_blas_probe_t *out, char *errstr,
                             size_t errsz) {
  const int M = 64, N = 10000, K = 64, SQ = 1024;
  float *a = NULL, *b = NULL, *c = NULL, *x = NULL, *y = NULL, *z = NULL;
  sr_err_t rc = SR_OK;
  const int old_threads = openblas_get_num_threads();
  const int64_t t0 = sr_mono_ns();

  memset(out, 0, sizeof(*out));
  if (!(budget_s > 0)) budget_s = 0.3;
  a = malloc((size_t)M * K * sizeof(float));
  b = malloc((size_t)N * K * sizeof(float));
  c = malloc((size_t)M * N * sizeof(float));
  x = malloc((size_t)SQ * SQ * sizeof(float));
  y = malloc((size_t)SQ * SQ * sizeof(float));
  z = malloc((size_t)SQ * SQ * sizeof(float));
  if (!a || !b || !c || !x || !y || !z) {
    rc = sr_seterr(errstr, errsz, SR_ERR_NOMEM, "sgemm probe: cannot allocate its matrices");
    goto out;
  }
  uint64_t s = 0x9E3779B97F4A7C15ULL;
#define SR__FILL(p, cnt)                                                                           \
  for (size_t i_ = 0; i_ < (size_t)(cnt); i_++) {                                                  \
    s ^= s << 13, s ^= s >> 7, s ^= s << 17;                                                       \
    (p)[i_] = (float)(s >> 40) * (2.0f / 16777216.0f) - 1.0f;                                      \
  }
  SR__FILL(a, (size_t)M * K);
  SR__FILL(b, (size_t)N * K);
  SR__FILL(x, (size_t)SQ * SQ);
  SR__FILL(y, (size_t)SQ * SQ);
#undef SR__FILL
  if (threads > 0) openblas_set_num_threads(threads);
  out->threads = openblas_get_num_threads();
  out->m = M;
  out->n = N;
  out->k = K;
  out->sq = SQ;
  /* the scoring call: S (users x items) += H . item_out^T, beta 1 (bias) */
  const sr__gemm_t score = {M, N, K, 1, 1.0f, a, b, c};
  const sr__gemm_t ref = {SQ, SQ, SQ, 0, 0.0f, x, y, z};
  rc = sr__gemm_time(&score, budget_s * 0.6, "scoring shape", &out->score_gflops, &out->score_calls,
                     &out->max_rel_err, errstr, errsz);
  if (rc == SR_OK)
    rc = sr__gemm_time(&ref, budget_s * 0.4, "reference", &out->ref_gflops, &out->ref_calls,
                       &out->max_rel_err, errstr, errsz);
  if (threads > 0) openblas_set_num_threads(old_threads);
out:
  out->seconds = (double)(sr_mono_ns() - t0) / 1e9;
  free(a);
  free(b);
  free(c);
  free(x);
  free(y);
  free(z);
  return rc;
}
