/* Units of blas/: cpuid feature parsing (with the OS-state checks), the core
 * ranking and choice, the re-exec decision, the warnings and their fixes,
 * the facts of this host cross-checked with /proc/cpuinfo, and the probe. */
#include <cblas.h>
#include <stdio.h>

#include "streamrec/blas.h"
#include "test.h"

/* cpuid words of a CPU with AVX-512 and BF16 (Zen 4/5, Cooper Lake,
 * Sapphire Rapids class) under an OS that saves all of its state. */
static sr_blas_cpuid_t cpuid_bf16(void) {
  sr_blas_cpuid_t r = {0};
  r.max_leaf = 0x10;
  r.l1_ecx = (1u << 0) | (1u << 9) | (1u << 12) | (1u << 19) | (1u << 20) | (1u << 27) | (1u << 28);
  r.l7_ebx = (1u << 5) | (1u << 16) | (1u << 17) | (1u << 28) | (1u << 30) | (1u << 31);
  r.l7_ecx = 1u << 11;
  r.l7_max_sub = 1;
  r.l7s1_eax = (1u << 4) | (1u << 5);
  r.xcr0 = 0xe7;
  return r;
}

TEST(features_from_cpuid) {
  sr_blas_cpuid_t r = cpuid_bf16();
  uint32_t f = sr_blas_features_from_cpuid(&r);
  const uint32_t want = SR_BLAS_F_SSE3 | SR_BLAS_F_SSSE3 | SR_BLAS_F_SSE4_1 | SR_BLAS_F_SSE4_2 |
                        SR_BLAS_F_AVX | SR_BLAS_F_FMA | SR_BLAS_F_AVX2 | SR_BLAS_F_AVX512F |
                        SR_BLAS_F_AVX512CD | SR_BLAS_F_AVX512BW | SR_BLAS_F_AVX512DQ |
                        SR_BLAS_F_AVX512VL | SR_BLAS_F_AVX512_VNNI | SR_BLAS_F_AVX512_BF16 |
                        SR_BLAS_F_AVX_VNNI;
  T_EQ_INT(f, want);

  /* the OS does not save the AVX-512 state (XCR0 bits 5-7): no AVX-512 at all */
  r.xcr0 = 0x7;
  f = sr_blas_features_from_cpuid(&r);
  T_ASSERT(f & SR_BLAS_F_AVX2);
  T_ASSERT(f & SR_BLAS_F_FMA);
  T_ASSERT(f & SR_BLAS_F_AVX_VNNI);
  T_EQ_INT(f & (SR_BLAS_F_AVX512_SKX | SR_BLAS_F_AVX512_BF16 | SR_BLAS_F_AVX512_VNNI), 0);
  /* only one of the three AVX-512 state bits missing is as bad */
  r.xcr0 = 0xa7;
  T_EQ_INT(sr_blas_features_from_cpuid(&r) & SR_BLAS_F_AVX512F, 0);

  /* no YMM state (XCR0 bit 2): no AVX, FMA, AVX2 and no AVX-512 either */
  r = cpuid_bf16();
  r.xcr0 = 0x3;
  f = sr_blas_features_from_cpuid(&r);
  T_EQ_INT(f & (SR_BLAS_F_AVX | SR_BLAS_F_FMA | SR_BLAS_F_AVX2 | SR_BLAS_F_AVX512F), 0);
  T_ASSERT(f & SR_BLAS_F_SSE4_2);

  /* OSXSAVE clear: XCR0 is not to be trusted (not even read), so no AVX */
  r = cpuid_bf16();
  r.l1_ecx &= ~(1u << 27);
  f = sr_blas_features_from_cpuid(&r);
  T_EQ_INT(f & (SR_BLAS_F_AVX | SR_BLAS_F_AVX2 | SR_BLAS_F_AVX512F), 0);
  T_EQ_INT(f, SR_BLAS_F_SSE3 | SR_BLAS_F_SSSE3 | SR_BLAS_F_SSE4_1 | SR_BLAS_F_SSE4_2);

  /* leaf 7 beyond the maximum leaf: its words mean nothing */
  r = cpuid_bf16();
  r.max_leaf = 6;
  f = sr_blas_features_from_cpuid(&r);
  T_ASSERT(f & SR_BLAS_F_FMA);
  T_EQ_INT(f & (SR_BLAS_F_AVX2 | SR_BLAS_F_AVX512F | SR_BLAS_F_AVX512_BF16), 0);

  /* subleaf 1 not reported: no BF16, AVX_VNNI */
  r = cpuid_bf16();
  r.l7_max_sub = 0;
  f = sr_blas_features_from_cpuid(&r);
  T_ASSERT(f & SR_BLAS_F_AVX512F);
  T_EQ_INT(f & (SR_BLAS_F_AVX512_BF16 | SR_BLAS_F_AVX_VNNI), 0);

  /* AVX-512 sub-features without the foundation bit are not usable */
  r = cpuid_bf16();
  r.l7_ebx &= ~(1u << 16);
  f = sr_blas_features_from_cpuid(&r);
  T_EQ_INT(f & (SR_BLAS_F_AVX512_SKX | SR_BLAS_F_AVX512_BF16 | SR_BLAS_F_AVX512CD), 0);

  /* AMX needs its tile state in XCR0 (bits 17, 18) */
  r = cpuid_bf16();
  r.l7_edx = (1u << 22) | (1u << 24);
  T_EQ_INT(sr_blas_features_from_cpuid(&r) & (SR_BLAS_F_AMX_TILE | SR_BLAS_F_AMX_BF16), 0);
  r.xcr0 |= 0x60000;
  T_EQ_INT(sr_blas_features_from_cpuid(&r) & (SR_BLAS_F_AMX_TILE | SR_BLAS_F_AMX_BF16),
           SR_BLAS_F_AMX_TILE | SR_BLAS_F_AMX_BF16);

  sr_blas_cpuid_t none = {0};
  T_EQ_INT(sr_blas_features_from_cpuid(&none), 0);
  T_EQ_INT(sr_blas_features_from_cpuid(NULL), 0);
}

TEST(feature_names) {
  T_EQ_STR(sr_blas_feature_name(SR_BLAS_F_AVX2), "avx2");
  T_EQ_STR(sr_blas_feature_name(SR_BLAS_F_AVX512_BF16), "avx512_bf16");
  T_ASSERT(sr_blas_feature_name(0) == NULL);
  T_ASSERT(sr_blas_feature_name(SR_BLAS_F_AVX | SR_BLAS_F_FMA) == NULL);
  sr_buf_t b;
  sr_buf_init(&b);
  sr_blas_features_format(SR_BLAS_F_AVX512F | SR_BLAS_F_FMA | SR_BLAS_F_AVX, ",", &b);
  sr_buf_putc(&b, 0);
  T_EQ_STR((const char *)b.data, "avx,fma,avx512f"); /* in bit order */
  sr_buf_free(&b);
}

TEST(core_ranking) {
  T_ASSERT(sr_blas_core_rank("Prescott") > 0);
  T_EQ_INT(sr_blas_core_rank("Prescott"), sr_blas_core_rank("Core2"));
  T_EQ_INT(sr_blas_core_rank("Prescott"), sr_blas_core_rank("Nehalem"));
  T_ASSERT(sr_blas_core_rank("Nehalem") < sr_blas_core_rank("Sandybridge"));
  T_ASSERT(sr_blas_core_rank("Sandybridge") < sr_blas_core_rank("Haswell"));
  T_EQ_INT(sr_blas_core_rank("Haswell"), sr_blas_core_rank("Zen"));
  T_EQ_INT(sr_blas_core_rank("Sandybridge"), sr_blas_core_rank("Excavator"));
  T_ASSERT(sr_blas_core_rank("Zen") < sr_blas_core_rank("SkylakeX"));
  T_ASSERT(sr_blas_core_rank("SkylakeX") < sr_blas_core_rank("Cooperlake"));
  /* OPENBLAS_CORETYPE is matched case-insensitively, so are we */
  T_EQ_INT(sr_blas_core_rank("haswell"), sr_blas_core_rank("Haswell"));
  T_EQ_STR(sr_blas_core_canonical("COOPERLAKE"), "Cooperlake");
  T_EQ_STR(sr_blas_core_canonical("opteron_sse3"), "Opteron_SSE3");
  /* unknown names (a newer OpenBLAS's own choice) rank 0 */
  T_EQ_INT(sr_blas_core_rank("SapphireRapids"), 0);
  T_EQ_INT(sr_blas_core_rank("Unknown"), 0);
  T_EQ_INT(sr_blas_core_rank(""), 0);
  T_EQ_INT(sr_blas_core_rank(NULL), 0);
  T_ASSERT(sr_blas_core_canonical("Haswel") == NULL);
  /* the table: unique names, distinct bits, canonical spelling */
  uint64_t all = 0;
  int n = 0;
  for (int i = 0; sr_blas_core_name(i); i++, n++) {
    const char *c = sr_blas_core_name(i);
    T_EQ_STR(sr_blas_core_canonical(c), c);
    T_EQ_INT(sr_blas_core_bit(c), (uint64_t)1 << i);
    T_ASSERT(!(all & sr_blas_core_bit(c)));
    all |= sr_blas_core_bit(c);
  }
  T_ASSERT(n >= 25 && n <= 64);
  T_EQ_INT(sr_blas_core_bit("nope"), 0);
  T_ASSERT(sr_blas_core_name(-1) == NULL);
}

TEST(core_runnable) {
  sr_blas_cpuid_t r = cpuid_bf16();
  const uint32_t bf16 = sr_blas_features_from_cpuid(&r);
  r.xcr0 = 0x7;
  const uint32_t avx2 = sr_blas_features_from_cpuid(&r);
  const char *ladder[] = {"Prescott", "Core2", "Nehalem",  "Sandybridge",
                          "Haswell",  "Zen",   "SkylakeX", "Cooperlake"};
  for (size_t i = 0; i < SR_ARRAY_SIZE(ladder); i++)
    T_ASSERT_MSG(sr_blas_core_runnable(ladder[i], bf16), "%s on a BF16 CPU", ladder[i]);
  T_ASSERT(sr_blas_core_runnable("Haswell", avx2));
  T_ASSERT(sr_blas_core_runnable("zen", avx2));
  T_ASSERT(!sr_blas_core_runnable("SkylakeX", avx2));
  T_ASSERT(!sr_blas_core_runnable("Cooperlake", avx2));
  /* AVX-512 without BF16: SkylakeX yes, Cooperlake no */
  T_ASSERT(sr_blas_core_runnable("SkylakeX", bf16 & ~SR_BLAS_F_AVX512_BF16));
  T_ASSERT(!sr_blas_core_runnable("Cooperlake", bf16 & ~SR_BLAS_F_AVX512_BF16));
  /* AVX without FMA: no Haswell */
  T_ASSERT(!sr_blas_core_runnable("Haswell", avx2 & ~SR_BLAS_F_FMA));
  T_ASSERT(sr_blas_core_runnable("Sandybridge", avx2 & ~SR_BLAS_F_FMA));
  /* cores whose needs the table does not give are never called runnable */
  T_ASSERT(!sr_blas_core_runnable("Bulldozer", bf16));
  T_ASSERT(!sr_blas_core_runnable("SapphireRapids", bf16));
  T_ASSERT(!sr_blas_core_runnable("Prescott", 0));
}

TEST(best_core) {
  sr_blas_cpuid_t r = cpuid_bf16();
  const uint32_t bf16 = sr_blas_features_from_cpuid(&r);
  const uint32_t skx = bf16 & ~SR_BLAS_F_AVX512_BF16;
  r.xcr0 = 0x7;
  const uint32_t avx2 = sr_blas_features_from_cpuid(&r);
  const uint32_t avx = avx2 & ~(SR_BLAS_F_AVX2 | SR_BLAS_F_FMA);
  const uint32_t sse = SR_BLAS_F_SSE3 | SR_BLAS_F_SSSE3;
  const uint64_t all = ~(uint64_t)0;

  T_EQ_STR(sr_blas_best_core(bf16, 0, all), "Cooperlake");
  T_EQ_STR(sr_blas_best_core(bf16, 1, all), "Cooperlake");
  T_EQ_STR(sr_blas_best_core(skx, 0, all), "SkylakeX");
  T_EQ_STR(sr_blas_best_core(avx2, 0, all), "Haswell");
  T_EQ_STR(sr_blas_best_core(avx2, 1, all), "Zen"); /* AMD: OpenBLAS's name for its AVX2 core */
  T_EQ_STR(sr_blas_best_core(avx, 0, all), "Sandybridge");
  T_EQ_STR(sr_blas_best_core(sse, 0, all), "Prescott");
  T_ASSERT(sr_blas_best_core(0, 0, all) == NULL);
  /* only what the build has: an older build without Cooperlake */
  const uint64_t no_cpl = all & ~sr_blas_core_bit("Cooperlake");
  T_EQ_STR(sr_blas_best_core(bf16, 0, no_cpl), "SkylakeX");
  /* a build without Zen on AMD falls to Haswell, without both to Sandybridge */
  T_EQ_STR(sr_blas_best_core(avx2, 1, all & ~sr_blas_core_bit("Zen")), "Haswell");
  T_EQ_STR(
      sr_blas_best_core(avx2, 1, all & ~sr_blas_core_bit("Zen") & ~sr_blas_core_bit("Haswell")),
      "Sandybridge");
  /* nothing known: no answer rather than a guess */
  T_ASSERT(sr_blas_best_core(bf16, 0, 0) == NULL);
  T_EQ_STR(sr_blas_best_core(bf16, 0, sr_blas_core_bit("Prescott")), "Prescott");
}

TEST(reexec_decision) {
  /* the issue: 0.3.21 chose Prescott on a Xeon with AVX-512 BF16 */
  T_EQ_STR(sr_blas_reexec_target("Prescott", "Cooperlake", 1, 0, 0), "Cooperlake");
  T_EQ_STR(sr_blas_reexec_target("prescott", "cooperlake", 1, 0, 0), "Cooperlake");
  T_EQ_STR(sr_blas_reexec_target("Haswell", "SkylakeX", 1, 0, 0), "SkylakeX");
  T_EQ_STR(sr_blas_reexec_target("Sandybridge", "Zen", 1, 0, 0), "Zen");
  /* never: a value the user set, a second exec, a build without DYNAMIC_ARCH */
  T_ASSERT(sr_blas_reexec_target("Prescott", "Cooperlake", 1, 1, 0) == NULL);
  T_ASSERT(sr_blas_reexec_target("Prescott", "Cooperlake", 1, 0, 1) == NULL);
  T_ASSERT(sr_blas_reexec_target("Prescott", "Cooperlake", 0, 0, 0) == NULL);
  /* not for equal rank (Zen = Haswell) nor for a better core than "best" */
  T_ASSERT(sr_blas_reexec_target("Zen", "Haswell", 1, 0, 0) == NULL);
  T_ASSERT(sr_blas_reexec_target("Haswell", "Zen", 1, 0, 0) == NULL);
  T_ASSERT(sr_blas_reexec_target("Cooperlake", "Cooperlake", 1, 0, 0) == NULL);
  T_ASSERT(sr_blas_reexec_target("Cooperlake", "SkylakeX", 1, 0, 0) == NULL);
  /* a core we cannot rank (a newer OpenBLAS's choice) is never replaced */
  T_ASSERT(sr_blas_reexec_target("SapphireRapids", "Cooperlake", 1, 0, 0) == NULL);
  T_ASSERT(sr_blas_reexec_target("", "Cooperlake", 1, 0, 0) == NULL);
  /* no best core known: nothing to do */
  T_ASSERT(sr_blas_reexec_target("Prescott", NULL, 1, 0, 0) == NULL);
  T_ASSERT(sr_blas_reexec_target("Prescott", "", 1, 0, 0) == NULL);
}

/* A healthy machine: Cooperlake-class CPU running Cooperlake. */
static sr_blas_info_t info_ok(void) {
  sr_blas_info_t bi;
  sr_blas_cpuid_t r = cpuid_bf16();
  memset(&bi, 0, sizeof(bi));
  bi.features = sr_blas_features_from_cpuid(&r);
  bi.xcr0 = r.xcr0;
  bi.cpus_online = bi.cpus_affinity = bi.cpus_usable = 4;
  bi.dynamic_arch = 1;
  for (int i = 0; sr_blas_core_name(i); i++)
    bi.known |= sr_blas_core_bit(sr_blas_core_name(i));
  snprintf(bi.core, sizeof(bi.core), "Cooperlake");
  snprintf(bi.core_best, sizeof(bi.core_best), "Cooperlake");
  snprintf(bi.core_best_cpu, sizeof(bi.core_best_cpu), "Cooperlake");
  bi.source = SR_BLAS_SRC_DETECTED;
  bi.threads = 1;
  return bi;
}

static const sr_blas_warning_t *find_warning(const sr_blas_warning_t *w, int n, const char *id) {
  for (int i = 0; i < n; i++)
    if (!strcmp(w[i].id, id)) return &w[i];
  return NULL;
}

TEST(warnings_core) {
  sr_blas_warning_t w[SR_BLAS_MAX_WARNINGS];
  const sr_blas_warning_t *x;
  sr_blas_info_t bi = info_ok();
  T_EQ_INT(sr_blas_warnings(&bi, w, SR_BLAS_MAX_WARNINGS), 0);
  T_EQ_INT(sr_blas_core_suboptimal(&bi), 0);

  /* OpenBLAS's own weak choice that was not fixed */
  snprintf(bi.core, sizeof(bi.core), "Prescott");
  T_EQ_INT(sr_blas_core_suboptimal(&bi), 1);
  T_EQ_INT(sr_blas_warnings(&bi, w, SR_BLAS_MAX_WARNINGS), 1);
  T_EQ_STR(w[0].id, "core_weak");
  T_ASSERT_MSG(strstr(w[0].fix, "set OPENBLAS_CORETYPE=Cooperlake"), "fix: %s", w[0].fix);
  T_ASSERT_MSG(strstr(w[0].message, "Prescott"), "message: %s", w[0].message);

  /* the user's weaker value: kept, with a warning saying how to get the best */
  bi = info_ok();
  bi.source = SR_BLAS_SRC_USER;
  snprintf(bi.coretype_env, sizeof(bi.coretype_env), "haswell");
  snprintf(bi.core, sizeof(bi.core), "Haswell");
  T_EQ_INT(sr_blas_warnings(&bi, w, SR_BLAS_MAX_WARNINGS), 1); /* case differs: no mismatch */
  T_EQ_STR(w[0].id, "core_weak");
  T_ASSERT_MSG(strstr(w[0].fix, "unset OPENBLAS_CORETYPE") &&
                   strstr(w[0].fix, "OPENBLAS_CORETYPE=Cooperlake"),
               "fix: %s", w[0].fix);
  T_ASSERT_MSG(strstr(w[0].message, "never overrides"), "message: %s", w[0].message);

  /* the user's value names no core of this OpenBLAS: it runs its own choice */
  snprintf(bi.coretype_env, sizeof(bi.coretype_env), "SapphireRapids");
  snprintf(bi.core, sizeof(bi.core), "Cooperlake");
  T_EQ_INT(sr_blas_warnings(&bi, w, SR_BLAS_MAX_WARNINGS), 1);
  T_EQ_STR(w[0].id, "core_mismatch");
  T_ASSERT_MSG(strstr(w[0].message, "SapphireRapids") && strstr(w[0].message, "runs Cooperlake"),
               "message: %s", w[0].message);

  /* a user's core the CPU cannot run */
  bi = info_ok();
  sr_blas_cpuid_t r = cpuid_bf16();
  r.xcr0 = 0x7;
  bi.features = sr_blas_features_from_cpuid(&r);
  snprintf(bi.core_best, sizeof(bi.core_best), "Zen");
  snprintf(bi.core_best_cpu, sizeof(bi.core_best_cpu), "Zen");
  bi.source = SR_BLAS_SRC_USER;
  snprintf(bi.coretype_env, sizeof(bi.coretype_env), "SkylakeX");
  snprintf(bi.core, sizeof(bi.core), "SkylakeX");
  T_EQ_INT(sr_blas_warnings(&bi, w, SR_BLAS_MAX_WARNINGS), 1);
  T_EQ_STR(w[0].id, "core_unsupported");
  T_ASSERT_MSG(strstr(w[0].message, "avx512f") && strstr(w[0].message, "SIGILL"), "message: %s",
               w[0].message);
  T_EQ_STR(w[0].fix, "unset OPENBLAS_CORETYPE or set OPENBLAS_CORETYPE=Zen");
  T_EQ_INT(sr_blas_core_suboptimal(&bi), 0);

  /* re-executed, and OpenBLAS ignored the request */
  bi = info_ok();
  bi.source = SR_BLAS_SRC_REEXEC;
  snprintf(bi.core_before, sizeof(bi.core_before), "Prescott");
  snprintf(bi.coretype_env, sizeof(bi.coretype_env), "Cooperlake");
  snprintf(bi.core, sizeof(bi.core), "Prescott");
  int n = sr_blas_warnings(&bi, w, SR_BLAS_MAX_WARNINGS);
  T_EQ_INT(n, 2);
  T_ASSERT((x = find_warning(w, n, "core_mismatch")) != NULL);
  T_ASSERT_MSG(strstr(x->message, "OPENBLAS_CORETYPE=Cooperlake") &&
                   strstr(x->message, "runs Prescott"),
               "message: %s", x->message);
  T_ASSERT(find_warning(w, n, "core_weak") != NULL);
  /* re-executed and got it: nothing to say */
  snprintf(bi.core, sizeof(bi.core), "Cooperlake");
  T_EQ_INT(sr_blas_warnings(&bi, w, SR_BLAS_MAX_WARNINGS), 0);
}

TEST(warnings_build) {
  sr_blas_warning_t w[SR_BLAS_MAX_WARNINGS];
  const sr_blas_warning_t *x;
  /* a single-core build (no DYNAMIC_ARCH, no kernel tables) for Haswell */
  sr_blas_info_t bi = info_ok();
  bi.dynamic_arch = 0;
  bi.known = 0;
  bi.core_best[0] = '\0';
  snprintf(bi.core, sizeof(bi.core), "Haswell");
  T_EQ_INT(sr_blas_core_suboptimal(&bi), 1); /* against the CPU's best */
  int n = sr_blas_warnings(&bi, w, SR_BLAS_MAX_WARNINGS);
  T_EQ_INT(n, 1);
  T_EQ_STR(w[0].id, "no_dynamic_arch");
  T_ASSERT_MSG(strstr(w[0].fix, "DYNAMIC_ARCH=1") && strstr(w[0].fix, "TARGET=COOPERLAKE"),
               "fix: %s", w[0].fix);
  /* the same build made for the best core: nothing to fix */
  snprintf(bi.core, sizeof(bi.core), "Cooperlake");
  T_EQ_INT(sr_blas_warnings(&bi, w, SR_BLAS_MAX_WARNINGS), 0);

  /* DYNAMIC_ARCH but the kernel tables are not visible */
  bi = info_ok();
  bi.known = 0;
  bi.core_best[0] = '\0';
  snprintf(bi.core, sizeof(bi.core), "Haswell");
  n = sr_blas_warnings(&bi, w, SR_BLAS_MAX_WARNINGS);
  T_ASSERT((x = find_warning(w, n, "cores_unknown")) != NULL);
  T_ASSERT_MSG(strstr(x->fix, "OPENBLAS_CORETYPE=Cooperlake"), "fix: %s", x->fix);
  T_ASSERT(find_warning(w, n, "core_weak") != NULL);
}

TEST(warnings_cpus) {
  sr_blas_warning_t w[SR_BLAS_MAX_WARNINGS];
  sr_blas_info_t bi = info_ok();
  bi.threads = 8;
  bi.cpus_usable = 2;
  int n = sr_blas_warnings(&bi, w, SR_BLAS_MAX_WARNINGS);
  T_EQ_INT(n, 1);
  T_EQ_STR(w[0].id, "threads_over_cpus");
  T_ASSERT_MSG(strstr(w[0].fix, "OPENBLAS_NUM_THREADS=2"), "fix: %s", w[0].fix);
  T_ASSERT_MSG(strstr(w[0].message, "8 threads"), "message: %s", w[0].message);
  /* the variable asks for more than the library granted: still worth saying */
  bi.threads = 2;
  snprintf(bi.num_threads_env, sizeof(bi.num_threads_env), "16");
  n = sr_blas_warnings(&bi, w, SR_BLAS_MAX_WARNINGS);
  T_EQ_INT(n, 1);
  T_ASSERT_MSG(strstr(w[0].message, "16 threads (OPENBLAS_NUM_THREADS=16)"), "message: %s",
               w[0].message);
  /* a cgroup quota of 1.5 CPUs rounds up to 2 usable: fine with 2 threads */
  bi.num_threads_env[0] = '\0';
  bi.cpu_quota = 1.5;
  T_EQ_INT(sr_blas_warnings(&bi, w, SR_BLAS_MAX_WARNINGS), 0);
  /* one usable CPU */
  bi.threads = 1;
  bi.cpus_usable = 1;
  n = sr_blas_warnings(&bi, w, SR_BLAS_MAX_WARNINGS);
  T_EQ_INT(n, 1);
  T_EQ_STR(w[0].id, "one_cpu");
  T_ASSERT_MSG(strstr(w[0].message, "cgroup CPU quota 1.50"), "message: %s", w[0].message);
  /* max is honoured */
  bi.threads = 4;
  snprintf(bi.core, sizeof(bi.core), "Prescott");
  T_EQ_INT(sr_blas_warnings(&bi, w, SR_BLAS_MAX_WARNINGS), 3);
  T_EQ_INT(sr_blas_warnings(&bi, w, 1), 1);
  T_EQ_INT(sr_blas_warnings(&bi, w, 0), 0);
}

/* 1 when /proc/cpuinfo's first "flags" line lists flag. */
static int cpuinfo_has(const char *flag) {
  static char flags[8192];
  if (!flags[0]) {
    FILE *f = fopen("/proc/cpuinfo", "r");
    char line[8192];
    while (f && fgets(line, sizeof(line), f))
      if (!strncmp(line, "flags", 5)) {
        snprintf(flags, sizeof(flags), " %s ", strchr(line, ':') ? strchr(line, ':') + 1 : "");
        flags[strcspn(flags, "\n")] = ' ';
        break;
      }
    if (f) fclose(f);
  }
  char pat[64];
  snprintf(pat, sizeof(pat), " %s ", flag);
  return strstr(flags, pat) != NULL;
}

TEST(this_host) {
  sr_blas_info_t bi;
  sr_blas_info(&bi);
  T_ASSERT(bi.config[0]);
  T_ASSERT_MSG(strstr(bi.config, "OpenBLAS"), "config: %s", bi.config);
  T_ASSERT(bi.cpus_online >= 1);
  T_ASSERT(bi.cpus_usable >= 1 && bi.cpus_usable <= bi.cpus_online);
  T_EQ_INT(bi.threads, openblas_get_num_threads());
  if (!getenv("SR_BLAS_TEST_DETECTED")) T_EQ_STR(bi.core, openblas_get_corename());
  T_EQ_INT(bi.source, getenv("OPENBLAS_CORETYPE") ? SR_BLAS_SRC_USER : SR_BLAS_SRC_DETECTED);
#if defined(__x86_64__)
  T_ASSERT(bi.vendor[0]);
  T_ASSERT(bi.features & SR_BLAS_F_SSE3); /* every x86-64 CPU OpenBLAS runs on */
  T_ASSERT(bi.family > 0);
  /* our cpuid + XCR0 reading agrees with the kernel's view, both ways for the
   * features any kernel knows, one way (kernel says yes => we say yes) for
   * the newer ones an old kernel may not list */
  const char *both[] = {"avx",      "fma",      "avx2",  "avx512f", "avx512bw",
                        "avx512vl", "avx512dq", "ssse3", "sse4_2"};
  for (size_t i = 0; i < SR_ARRAY_SIZE(both); i++) {
    uint32_t bit = 0;
    for (int b = 0; b < 32; b++)
      if (sr_blas_feature_name(1u << b) && !strcmp(sr_blas_feature_name(1u << b), both[i]))
        bit = 1u << b;
    T_ASSERT(bit);
    T_ASSERT_MSG(!!(bi.features & bit) == cpuinfo_has(both[i]), "%s: ours %d, /proc/cpuinfo %d",
                 both[i], !!(bi.features & bit), cpuinfo_has(both[i]));
  }
  T_ASSERT(!cpuinfo_has("avx512_bf16") || (bi.features & SR_BLAS_F_AVX512_BF16));
  T_ASSERT(!cpuinfo_has("avx512_vnni") || (bi.features & SR_BLAS_F_AVX512_VNNI));
  T_ASSERT(!cpuinfo_has("pni") || (bi.features & SR_BLAS_F_SSE3));
  /* Debian's OpenBLAS is a DYNAMIC_ARCH build exporting its kernel tables */
  if (bi.dynamic_arch && bi.known) {
    T_ASSERT_MSG(bi.known & sr_blas_core_bit(bi.core), "core %s not among the known", bi.core);
    T_ASSERT(bi.core_best[0]);
    T_ASSERT(bi.known & sr_blas_core_bit(bi.core_best));
    T_ASSERT(sr_blas_core_runnable(bi.core_best, bi.features));
    T_ASSERT(sr_blas_core_rank(bi.core_best) <= sr_blas_core_rank(bi.core_best_cpu));
  }
#endif
  char d[192];
  sr_blas_describe(&bi, d, sizeof(d));
  T_ASSERT_MSG(!strncmp(d, "core=", 5) && strstr(d, bi.core) && strstr(d, "source="), "%s", d);
}

TEST(probe_sgemm) {
  const int before = openblas_get_num_threads();
  sr_blas_probe_t p;
  char err[256] = "";
  T_EQ_INT(sr_blas_probe_sgemm(0.05, 1, &p, err, sizeof(err)), SR_OK);
  T_EQ_INT(p.threads, 1);
  T_EQ_INT(openblas_get_num_threads(), before); /* restored */
  T_EQ_INT(p.m, 64);
  T_EQ_INT(p.n, 10000);
  T_EQ_INT(p.k, 64);
  T_EQ_INT(p.sq, 1024);
  T_ASSERT(p.score_calls >= 2 && p.ref_calls >= 2);
  T_ASSERT_MSG(p.score_gflops > 0.1 && p.ref_gflops > 0.1, "%g %g", p.score_gflops, p.ref_gflops);
  T_ASSERT_MSG(p.max_rel_err < 1e-5, "max_rel_err %g (core %s)", p.max_rel_err,
               openblas_get_corename());
  T_ASSERT(p.seconds > 0.04 && p.seconds < 30);
}

TEST_MAIN(RUN(features_from_cpuid); RUN(feature_names); RUN(core_ranking); RUN(core_runnable);
          RUN(best_core); RUN(reexec_decision); RUN(warnings_core); RUN(warnings_build);
          RUN(warnings_cpus); RUN(this_host); RUN(probe_sgemm))
