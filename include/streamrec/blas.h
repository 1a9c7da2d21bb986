/*
 * blas: which OpenBLAS kernel set ("core") this process runs, whether it is
 * the best one the CPU and the OpenBLAS build support, and the machine facts
 * `streamrec doctor` and /metrics report (CPU, features, usable CPUs), plus a
 * short sgemm probe of the scoring shape.
 *
 * Why a module: OpenBLAS built with DYNAMIC_ARCH picks its core once, in a
 * library constructor that runs before main(), from the CPU's family and
 * model. A release older than the CPU falls back to an old core: Debian's
 * 0.3.21 runs "Prescott" (SSE3) kernels on an Intel Xeon family 6 model 207
 * with AVX-512 and BF16, 5x slower at the scoring sgemm than "Cooperlake".
 * Only OPENBLAS_CORETYPE, read by that constructor, changes the choice, so
 * sr_blas_ensure_core() re-executes the process with it set when the core
 * OpenBLAS chose ranks below the best one the CPU can run.
 *
 * Ranking (from the CPU features each core's kernels need, checked against
 * cpuid and, for AVX and AVX-512, against the register state the OS saves,
 * XCR0):
 *   1 SSE cores (Prescott, Core2, Nehalem, Barcelona, Atom, ...)
 *   2 AVX cores (Sandybridge, Bulldozer, Piledriver, Steamroller, Excavator)
 *   3 AVX2 + FMA: Haswell = Zen (the same level; OpenBLAS calls AMD's "Zen")
 *   4 AVX-512 F/BW/VL/DQ: SkylakeX
 *   5 SkylakeX + AVX512_BF16: Cooperlake
 * A core name outside this table (a newer OpenBLAS's own choice) ranks 0 and
 * is never replaced. SapphireRapids is not in the table: Debian's 0.3.21 does
 * not know it (no gotoblas_SAPPHIRERAPIDS; an unknown OPENBLAS_CORETYPE makes
 * 0.3.21 fall back to its own detection), and its name and kernel needs were
 * not verified against a release that does.
 *
 * Which cores the loaded OpenBLAS knows is read from the library itself: a
 * DYNAMIC_ARCH build exports one kernel table per core it contains,
 * gotoblas_<NAME> (gotoblas_HASWELL, gotoblas_COOPERLAKE, ...), found with
 * dlsym. A core is never requested unless its table is there.
 *
 * Environment:
 *   OPENBLAS_CORETYPE      a value the user set is never overridden (source
 *                          "user"); a warning says when it is weaker than
 *                          the best core or names a core OpenBLAS lacks.
 *   SR_BLAS_REEXEC         set by sr_blas_ensure_core() before the exec (to
 *                          the core OpenBLAS had chosen): the marker that
 *                          stops a second exec. The re-executed process
 *                          removes it and OPENBLAS_CORETYPE from its
 *                          environment, so its children decide for
 *                          themselves.
 *   SR_BLAS_TEST_DETECTED  TEST-ONLY hook: makes the check pretend OpenBLAS
 *                          chose this core (when neither OPENBLAS_CORETYPE
 *                          nor SR_BLAS_REEXEC is set), so the re-exec path
 *                          can be tested on a CPU OpenBLAS already knows
 *                          (tests/interop/0250-doctor.sh). Never set it in
 *                          production.
 *
 * Thread: sr_blas_ensure_core() on the main thread before any other thread
 * starts (it may replace the process image). Everything else: any thread.
 * Only this module, model/ and train/ call OpenBLAS.
 */
#ifndef STREAMREC_BLAS_H
#define STREAMREC_BLAS_H

#include <stddef.h>
#include <stdint.h>

#include "streamrec/common.h"

/* ---- CPU features relevant to the choice of core ---- */
/* name, bit, name as /proc/cpuinfo spells it (except sse3, which it calls
 * "pni"). X-macro: expands into the SR_BLAS_F_* bits and
 * sr_blas_feature_name(). */
#define SR_BLAS_FEATURE_MAP(X)                                                                     \
  X(SSE3, 0, "sse3")                                                                               \
  X(SSSE3, 1, "ssse3")                                                                             \
  X(SSE4_1, 2, "sse4_1")                                                                           \
  X(SSE4_2, 3, "sse4_2")                                                                           \
  X(AVX, 4, "avx")                                                                                 \
  X(FMA, 5, "fma")                                                                                 \
  X(AVX2, 6, "avx2")                                                                               \
  X(AVX512F, 7, "avx512f")                                                                         \
  X(AVX512CD, 8, "avx512cd")                                                                       \
  X(AVX512BW, 9, "avx512bw")                                                                       \
  X(AVX512DQ, 10, "avx512dq")                                                                      \
  X(AVX512VL, 11, "avx512vl")                                                                      \
  X(AVX512_VNNI, 12, "avx512_vnni")                                                                \
  X(AVX512_BF16, 13, "avx512_bf16")                                                                \
  X(AVX512_FP16, 14, "avx512_fp16")                                                                \
  X(AVX_VNNI, 15, "avx_vnni")                                                                      \
  X(AMX_TILE, 16, "amx_tile")                                                                      \
  X(AMX_BF16, 17, "amx_bf16")

enum {
#define SR__BLAS_F_ENUM(name, bit, str) SR_BLAS_F_##name = 1u << (bit),
  SR_BLAS_FEATURE_MAP(SR__BLAS_F_ENUM)
#undef SR__BLAS_F_ENUM
};
#define SR_BLAS_F_AVX512_SKX                                                                       \
  (SR_BLAS_F_AVX512F | SR_BLAS_F_AVX512BW | SR_BLAS_F_AVX512VL | SR_BLAS_F_AVX512DQ)

/* The cpuid words the features come from (raw, as the CPU returns them). */
typedef struct sr_blas_cpuid_s {
  uint32_t max_leaf;   /* leaf 0 EAX */
  uint32_t l1_ecx;     /* leaf 1 ECX */
  uint32_t l7_ebx;     /* leaf 7 subleaf 0 EBX */
  uint32_t l7_ecx;     /* leaf 7 subleaf 0 ECX */
  uint32_t l7_edx;     /* leaf 7 subleaf 0 EDX */
  uint32_t l7_max_sub; /* leaf 7 subleaf 0 EAX: highest subleaf */
  uint32_t l7s1_eax;   /* leaf 7 subleaf 1 EAX */
  uint64_t xcr0;       /* XGETBV(0); read only when OSXSAVE (leaf 1 ECX bit 27) is set */
} sr_blas_cpuid_t;

/* Usable features from raw cpuid words (pure function): a feature needs
 * its cpuid bit and the leaf it lives in (max_leaf, l7_max_sub); AVX, FMA,
 * AVX2 and AVX_VNNI also need OSXSAVE and XCR0 bits 1-2 (SSE and AVX
 * state); the AVX-512 features also XCR0 bits 5-7 (opmask, ZMM state); AMX
 * XCR0 bits 17-18. A CPU flag alone is not enough: an OS (or hypervisor)
 * that does not save a register file makes its instructions fault. */
uint32_t sr_blas_features_from_cpuid(const sr_blas_cpuid_t *r);
/* "avx2" for SR_BLAS_F_AVX2 (one bit); NULL for anything else. */
const char *sr_blas_feature_name(uint32_t bit);
/* Appends the names of the features in f to out, separated by sep. */
void sr_blas_features_format(uint32_t f, const char *sep, sr_buf_t *out);

/* ---- cores: ranking and choice (pure functions) ---- */
/* Rank of an OpenBLAS core name (case-insensitive, as OPENBLAS_CORETYPE is
 * matched): 1 (SSE) .. 5 (Cooperlake), see the top of this file; 0 for a
 * name not in the table (or NULL). */
int sr_blas_core_rank(const char *name);
/* The table's spelling of name ("haswell" -> "Haswell"), NULL when unknown.
 * Static storage. */
const char *sr_blas_core_canonical(const char *name);
/* Iterates the table: the i-th core name (0-based), NULL past the end. */
const char *sr_blas_core_name(int i);
/* Bit of the core in a "known cores" mask (1 << table index); 0 when the
 * name is not in the table. */
uint64_t sr_blas_core_bit(const char *name);
/* 1 when a CPU with features f can run core name's kernels: only for the
 * cores whose needs are in the table (Prescott, Core2, Nehalem, Sandybridge,
 * Haswell, Zen, SkylakeX, Cooperlake); 0 otherwise. */
int sr_blas_core_runnable(const char *name, uint32_t f);
/* The best core a CPU with features f can run among the cores in known
 * (a mask of sr_blas_core_bit()), trying Cooperlake, SkylakeX, the AVX2
 * core (Zen first when amd, else Haswell; the other one if the first is
 * not known), Sandybridge, Prescott. NULL when none fits (known == 0, or
 * not x86). Static storage. */
const char *sr_blas_best_core(uint32_t f, int amd, uint64_t known);
/* The decision sr_blas_ensure_core() takes: returns the core to re-execute
 * with, or NULL to keep the current one. Only when the user did not set
 * OPENBLAS_CORETYPE, this is not already the re-executed process,
 * OpenBLAS has DYNAMIC_ARCH, and chosen ranks (non-zero) below best. */
const char *sr_blas_reexec_target(const char *chosen, const char *best, int dynamic_arch,
                                  int user_set, int after_reexec);

/* ---- the facts of this process ---- */
typedef enum {
  SR_BLAS_SRC_DETECTED = 0, /* OpenBLAS's own choice, left as is */
  SR_BLAS_SRC_REEXEC,       /* streamrec re-executed with OPENBLAS_CORETYPE */
  SR_BLAS_SRC_USER          /* OPENBLAS_CORETYPE set by the user */
} sr_blas_source_t;
/* "detected", "reexec", "user". */
const char *sr_blas_source_name(sr_blas_source_t s);

typedef struct sr_blas_info_s {
  /* CPU */
  char vendor[16];             /* cpuid vendor ("GenuineIntel", "AuthenticAMD"); "" off x86 */
  char model_name[128];        /* /proc/cpuinfo "model name" (else the cpuid brand string) */
  int family, model, stepping; /* cpuid display family/model (base + extended) */
  uint32_t features;           /* SR_BLAS_F_* usable by this process */
  uint64_t xcr0;               /* register state the OS saves (0: no XSAVE) */
  /* CPUs this process may use */
  int cpus_online;   /* sysconf(_SC_NPROCESSORS_ONLN) */
  int cpus_affinity; /* sched_getaffinity count (-1: unknown) */
  double cpu_quota;  /* cgroup CPU bandwidth limit in CPUs (cpu.max, or v1
                        cfs quota/period, the tightest up the hierarchy);
                        0 = no limit found */
  int cpus_usable;   /* min(affinity (or online), ceil(cpu_quota)), >= 1 */
  /* OpenBLAS */
  char config[256];       /* openblas_get_config() */
  int dynamic_arch;       /* config says DYNAMIC_ARCH: the core can be chosen at start */
  uint64_t known;         /* cores this build has kernels for (sr_blas_core_bit mask);
                             0 = cannot tell (tables not visible) */
  char core[32];          /* the core in use (openblas_get_corename(); see the test hook) */
  char core_best[32];     /* best core the CPU can run among the known ones; "" none */
  char core_best_cpu[32]; /* best core the CPU can run, ignoring what the build knows */
  char core_before[32];   /* source REEXEC: the core OpenBLAS had chosen; else "" */
  char coretype_env[64];  /* source USER: OPENBLAS_CORETYPE as set; REEXEC: as asked */
  sr_blas_source_t source;
  int reexec_failed;        /* wanted to re-execute but execv failed */
  int threads;              /* openblas_get_num_threads(), read at the call */
  char num_threads_env[32]; /* OPENBLAS_NUM_THREADS as set; "" when unset */
} sr_blas_info_t;

/* Makes sure OpenBLAS runs the best core this CPU and build support: if
 * the check says the core is weaker (sr_blas_reexec_target), sets
 * OPENBLAS_CORETYPE and SR_BLAS_REEXEC and replaces the process with
 * execv("/proc/self/exe", argv) (argv as main received it, argv[argc] ==
 * NULL): on success it does not return. In the re-executed process it
 * checks that OpenBLAS runs the core asked for (a warning otherwise; never
 * a second exec). Logs the decision once (module "blas"). Call first thing
 * in main() of commands that do dense math, before any thread and before
 * any output (stdout and stderr are flushed before the exec). Main thread.
 * Idempotent: later calls return at once. */
void sr_blas_ensure_core(int argc, char **argv);

/* Fills *out with the facts of this process (computed once; threads and
 * the OpenBLAS thread count read at the call). Without sr_blas_ensure_core
 * the source is USER when OPENBLAS_CORETYPE is set, else DETECTED. Any
 * thread (after sr_blas_ensure_core returned, when it is used). */
void sr_blas_info(sr_blas_info_t *out);

/* 1 when the core in use ranks (non-zero) below the best core: the one the
 * build has, or the CPU's best when the build's cores cannot be listed. */
int sr_blas_core_suboptimal(const sr_blas_info_t *bi);

/* One line for headers and logs: "core=Cooperlake best=Cooperlake
 * source=reexec (OpenBLAS chose Prescott) threads=1". Returns buf. */
char *sr_blas_describe(const sr_blas_info_t *bi, char *buf, size_t n);

/* ---- warnings, each with its fix (pure function of the facts) ---- */
typedef struct sr_blas_warning_s {
  const char *id; /* stable identifier: core_weak, core_mismatch, core_unsupported,
                     no_dynamic_arch, cores_unknown, threads_over_cpus, one_cpu */
  char message[320];
  char fix[320];
} sr_blas_warning_t;
#define SR_BLAS_MAX_WARNINGS 8
/* Writes up to max warnings about bi to w; returns how many. */
int sr_blas_warnings(const sr_blas_info_t *bi, sr_blas_warning_t *w, int max);

/* ---- sgemm probe ---- */
typedef struct sr_blas_probe_s {
  int threads;         /* OpenBLAS threads the probe ran with */
  int m, n, k;         /* scoring shape: C (m x n) = A (m x k) . B^T (B: n x k) */
  double score_gflops; /* best rate over the runs */
  int score_calls;
  int sq; /* reference: square sgemm sq^3 */
  double ref_gflops;
  int ref_calls;
  double max_rel_err; /* checked entries of both products against a double dot product */
  double seconds;     /* wall time of the whole probe */
} sr_blas_probe_t;

/* Times cblas_sgemm at the scoring shape (64 users x 10000 items x d 64,
 * row-major A . B^T as sr_model_score) and a square 1024^3 sgemm, about
 * budget_s seconds in all (at least 2 calls each), with `threads` OpenBLAS
 * threads (0: the current setting; restored afterwards). Checks sampled
 * entries of each product against a double-precision dot product.
 * Returns SR_OK, SR_ERR_NOMEM, or SR_ERR_FATAL when a product is wrong
 * (errstr says which entry). Any thread, but it changes the process-wide
 * OpenBLAS thread count while it runs: not concurrently with other BLAS
 * users. */
sr_err_t sr_blas_probe_sgemm(double budget_s, int threads, sr_blas_probe_t *out, char *errstr,
                             size_t errsz);

#endif
