/*
 * `streamrec doctor`: what a user needs to know about the machine and the
 * build before trusting a throughput figure: the CPU and its BLAS-relevant
 * features, the CPUs this process may use, the OpenBLAS core in use and the
 * best one (and whether streamrec re-executed to get it, or the user chose
 * it), library versions, a short sgemm probe of the scoring shape beside a
 * square reference, and warnings each with its fix.
 *
 * The facts and warnings come from src/blas (sr_blas_info, sr_blas_warnings,
 * sr_blas_probe_sgemm); this file only renders them, as text or, with
 * --json, one JSON object (jansson, as eval and recs).
 *
 * Exit status: 0 whatever the warnings say (they are advice, and scripts
 * read them from --json), 1 when the probe fails (a wrong product or no
 * memory for it), 2 on a usage error.
 */
#include <getopt.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "streamrec/blas.h"
#include "streamrec/common.h"
#include "streamrec/codec.h"
#include "streamrec/kafka.h"

extern char **environ;

typedef struct sr_doctor_s {
  sr_blas_info_t bi;
  sr_blas_warning_t warn[SR_BLAS_MAX_WARNINGS];
  int n_warn;
  sr_blas_probe_t probe;
  const char *probe_status; /* "ok", "skipped", "failed" */
  char probe_reason[256];
} sr_doctor_t;

static void sr_doctor_usage(FILE *f) {
  fprintf(
      f, "usage: streamrec doctor [--json] [--no-probe] [--probe-seconds S] [--probe-threads N]\n\n"
         "Reports the CPU, the CPUs this process may use, the OpenBLAS core in use and the\n"
         "best one for this CPU (train, eval, serve and doctor re-execute themselves with\n"
         "OPENBLAS_CORETYPE when OpenBLAS chose a weaker core; a value you set is kept),\n"
         "library versions, a short sgemm probe, and warnings with their fixes.\n\n"
         "options:\n"
         "  --json              one JSON object instead of text\n"
         "  --no-probe          skip the sgemm probe\n"
         "  --probe-seconds S   probe duration (default 0.3)\n"
         "  --probe-threads N   OpenBLAS threads of the probe (default 1, as serve's\n"
         "                      blas.threads; 0 = OpenBLAS's own setting)\n\n"
         "exit status: 0 (also with warnings), 1 when the probe fails, 2 usage error\n");
}

/* Appends the cores of mask (in table order) to out, space-separated. */
static void sr_doctor_cores(uint64_t mask, sr_buf_t *out) {
  int first = 1;
  for (int i = 0; sr_blas_core_name(i); i++) {
    if (!(mask & ((uint64_t)1 << i))) continue;
    sr_buf_printf(out, "%s%s", first ? "" : " ", sr_blas_core_name(i));
    first = 0;
  }
}

/* Known cores this CPU can run (the cores with known needs only). */
static uint64_t sr_doctor_runnable(const sr_blas_info_t *bi) {
  uint64_t m = 0;
  for (int i = 0; sr_blas_core_name(i); i++)
    if ((bi->known & ((uint64_t)1 << i)) &&
        sr_blas_core_runnable(sr_blas_core_name(i), bi->features))
      m |= (uint64_t)1 << i;
  return m;
}

static int sr_doctor_has_warning(const sr_doctor_t *d, const char *id) {
  for (int i = 0; i < d->n_warn; i++)
    if (!strcmp(d->warn[i].id, id)) return 1;
  return 0;
}

static int sr_doctor_env_relevant(const char *kv) {
  return !strncmp(kv, "OPENBLAS_", 9) || !strncmp(kv, "GOTO_NUM_THREADS=", 17) ||
         !strncmp(kv, "OMP_NUM_THREADS=", 16);
}

static const char *sr_doctor_or_null(const char *s) { return s && *s ? s : NULL; }

static json_t *sr_jstr_or_null(const char *s) {
  return sr_doctor_or_null(s) ? json_string(s) : json_null();
}

/* Round to 0.1 for JSON (the figures are noisy, more digits mislead). */
static json_t *sr_jrate(double x) { return json_real(round(x * 10.0) / 10.0); }

static json_t *sr_doctor_json(const sr_doctor_t *d) {
  const sr_blas_info_t *bi = &d->bi;
  json_t *o = json_object(), *cpu = json_object(), *cpus = json_object(), *ob = json_object(),
         *lib = json_object(), *env = json_object(), *pr = json_object(), *w = json_array(),
         *feat = json_array(), *known = json_array(), *run = json_array();
  char x[32];

  json_object_set_new(o, "streamrec", json_string(SR_VERSION));
  json_object_set_new(cpu, "vendor", json_string(bi->vendor));
  json_object_set_new(cpu, "model_name", json_string(bi->model_name));
  json_object_set_new(cpu, "family", json_integer(bi->family));
  json_object_set_new(cpu, "model", json_integer(bi->model));
  json_object_set_new(cpu, "stepping", json_integer(bi->stepping));
  for (int b = 0; b < 32; b++)
    if ((bi->features & (1u << b)) && sr_blas_feature_name(1u << b))
      json_array_append_new(feat, json_string(sr_blas_feature_name(1u << b)));
  json_object_set_new(cpu, "features", feat);
  snprintf(x, sizeof(x), "0x%llx", (unsigned long long)bi->xcr0);
  json_object_set_new(cpu, "xcr0", json_string(x));
  json_object_set_new(cpu, "os_avx", json_boolean((bi->xcr0 & 0x6) == 0x6));
  json_object_set_new(cpu, "os_avx512", json_boolean((bi->xcr0 & 0xe6) == 0xe6));
  json_object_set_new(o, "cpu", cpu);

  json_object_set_new(cpus, "online", json_integer(bi->cpus_online));
  json_object_set_new(cpus, "affinity",
                      bi->cpus_affinity > 0 ? json_integer(bi->cpus_affinity) : json_null());
  json_object_set_new(cpus, "cgroup_quota",
                      bi->cpu_quota > 0 ? json_real(bi->cpu_quota) : json_null());
  json_object_set_new(cpus, "usable", json_integer(bi->cpus_usable));
  json_object_set_new(o, "cpus", cpus);

  json_object_set_new(ob, "config", json_string(bi->config));
  json_object_set_new(ob, "dynamic_arch", json_boolean(bi->dynamic_arch));
  json_object_set_new(ob, "core", json_string(bi->core));
  json_object_set_new(ob, "core_best", sr_jstr_or_null(bi->core_best));
  json_object_set_new(ob, "core_best_cpu", sr_jstr_or_null(bi->core_best_cpu));
  json_object_set_new(ob, "core_source", json_string(sr_blas_source_name(bi->source)));
  json_object_set_new(ob, "core_before", sr_jstr_or_null(bi->core_before));
  json_object_set_new(ob, "coretype_env", sr_jstr_or_null(bi->coretype_env));
  json_object_set_new(ob, "reexec_failed", json_boolean(bi->reexec_failed));
  json_object_set_new(ob, "suboptimal", json_boolean(sr_blas_core_suboptimal(bi)));
  const uint64_t runnable = sr_doctor_runnable(bi);
  for (int i = 0; sr_blas_core_name(i); i++) {
    if (bi->known & ((uint64_t)1 << i))
      json_array_append_new(known, json_string(sr_blas_core_name(i)));
    if (runnable & ((uint64_t)1 << i))
      json_array_append_new(run, json_string(sr_blas_core_name(i)));
  }
  json_object_set_new(ob, "cores_known", known);
  json_object_set_new(ob, "cores_runnable", run);
  json_object_set_new(ob, "threads", json_integer(bi->threads));
  json_object_set_new(ob, "num_threads_env", sr_jstr_or_null(bi->num_threads_env));
  json_object_set_new(o, "openblas", ob);

  json_object_set_new(lib, "librdkafka", json_string(sr_kafka_version()));
  json_object_set_new(lib, "avro_c", json_string(sr_codec_avro_version()));
  json_object_set_new(lib, "jansson", json_string(jansson_version_str()));
  json_object_set_new(o, "libraries", lib);

  for (char **e = environ; e && *e; e++) {
    if (!sr_doctor_env_relevant(*e)) continue;
    const char *eq = strchr(*e, '=');
    if (!eq) continue;
    char name[128];
    snprintf(name, sizeof(name), "%.*s", (int)(eq - *e), *e);
    json_object_set_new(env, name, json_string(eq + 1));
  }
  json_object_set_new(o, "environment", env);

  json_object_set_new(pr, "status", json_string(d->probe_status));
  json_object_set_new(pr, "reason", sr_jstr_or_null(d->probe_reason));
  if (!strcmp(d->probe_status, "ok")) {
    const sr_blas_probe_t *p = &d->probe;
    json_object_set_new(pr, "threads", json_integer(p->threads));
    json_object_set_new(pr, "m", json_integer(p->m));
    json_object_set_new(pr, "n", json_integer(p->n));
    json_object_set_new(pr, "k", json_integer(p->k));
    json_object_set_new(pr, "score_gflops", sr_jrate(p->score_gflops));
    json_object_set_new(pr, "score_calls", json_integer(p->score_calls));
    json_object_set_new(pr, "ref_n", json_integer(p->sq));
    json_object_set_new(pr, "ref_gflops", sr_jrate(p->ref_gflops));
    json_object_set_new(pr, "ref_calls", json_integer(p->ref_calls));
    json_object_set_new(
        pr, "ratio",
        json_real(p->ref_gflops > 0 ? round(p->score_gflops / p->ref_gflops * 100) / 100 : 0));
    json_object_set_new(pr, "max_rel_err", json_real(p->max_rel_err));
    json_object_set_new(pr, "seconds", json_real(round(p->seconds * 1000) / 1000));
  }
  json_object_set_new(o, "probe", pr);

  for (int i = 0; i < d->n_warn; i++) {
    json_t *j = json_object();
    json_object_set_new(j, "id", json_string(d->warn[i].id));
    json_object_set_new(j, "message", json_string(d->warn[i].message));
    json_object_set_new(j, "fix", json_string(d->warn[i].fix));
    json_array_append_new(w, j);
  }
  json_object_set_new(o, "warnings", w);
  return o;
}

static void sr_doctor_text(const sr_doctor_t *d, FILE *f) {
  const sr_blas_info_t *bi = &d->bi;
  sr_buf_t b;
  sr_buf_init(&b);

  fprintf(f, "streamrec %s doctor\n\nCPU\n", SR_VERSION);
  fprintf(f, "  model         %s (%s, family %d model %d stepping %d)\n",
          bi->model_name[0] ? bi->model_name : "?", bi->vendor[0] ? bi->vendor : "?", bi->family,
          bi->model, bi->stepping);
  sr_blas_features_format(bi->features, " ", &b);
  sr_buf_putc(&b, 0);
  fprintf(f, "  features      %s\n", b.len > 1 ? (const char *)b.data : "(none)");
  fprintf(f, "  OS saves      %s (XCR0 0x%llx)\n",
          (bi->xcr0 & 0xe6) == 0xe6 ? "SSE, AVX and AVX-512 state"
          : (bi->xcr0 & 0x6) == 0x6 ? "SSE and AVX state (no AVX-512)"
                                    : "no AVX state",
          (unsigned long long)bi->xcr0);
  fprintf(f, "  usable CPUs   %d (affinity %d of %d online; ", bi->cpus_usable,
          bi->cpus_affinity > 0 ? bi->cpus_affinity : bi->cpus_online, bi->cpus_online);
  if (bi->cpu_quota > 0)
    fprintf(f, "cgroup CPU quota %.2f)\n", bi->cpu_quota);
  else
    fprintf(f, "no cgroup CPU limit)\n");

  fprintf(f, "\nOpenBLAS\n  build         %s\n", bi->config);
  fprintf(f, "  core          %s", bi->core);
  switch (bi->source) {
  case SR_BLAS_SRC_REEXEC:
    fprintf(f, " (streamrec re-executed with OPENBLAS_CORETYPE=%s; OpenBLAS had chosen %s)\n",
            bi->coretype_env, bi->core_before);
    break;
  case SR_BLAS_SRC_USER:
    fprintf(f, " (OPENBLAS_CORETYPE=%s set in the environment)\n", bi->coretype_env);
    break;
  default: fprintf(f, " (chosen by OpenBLAS)\n");
  }
  fprintf(f, "  best core     %s\n",
          bi->core_best[0] ? bi->core_best : "? (cannot tell which cores this build has)");
  sr_buf_reset(&b);
  sr_doctor_cores(bi->known, &b);
  sr_buf_putc(&b, 0);
  fprintf(f, "  cores known   %s\n", b.len > 1 ? (const char *)b.data : "?");
  sr_buf_reset(&b);
  sr_doctor_cores(sr_doctor_runnable(bi), &b);
  sr_buf_putc(&b, 0);
  fprintf(f, "  runnable here %s\n", b.len > 1 ? (const char *)b.data : "?");
  fprintf(f, "  threads       %d (OPENBLAS_NUM_THREADS=%s)\n", bi->threads,
          bi->num_threads_env[0] ? bi->num_threads_env : "unset");
  int n_env = 0;
  for (char **e = environ; e && *e; e++)
    if (sr_doctor_env_relevant(*e)) fprintf(f, "%s%s", n_env++ ? " " : "  environment   ", *e);
  if (n_env) fprintf(f, "\n");

  fprintf(f,
          "\nLibraries\n  librdkafka    %s\n  avro-c        %s (at build time)\n"
          "  jansson       %s\n",
          sr_kafka_version(), sr_codec_avro_version(), jansson_version_str());

  const sr_blas_probe_t *p = &d->probe;
  if (!strcmp(d->probe_status, "ok")) {
    fprintf(f, "\nsgemm probe (%d OpenBLAS thread%s, %.2f s)\n", p->threads,
            p->threads == 1 ? "" : "s", p->seconds);
    char label[64];
    snprintf(label, sizeof(label), "scoring shape %dx%dx%d (A.B^T)", p->m, p->n, p->k);
    fprintf(f, "  %-32s %7.1f GFLOP/s (%d calls)\n", label, p->score_gflops, p->score_calls);
    snprintf(label, sizeof(label), "square %d^3", p->sq);
    fprintf(f, "  %-32s %7.1f GFLOP/s (%d calls)\n", label, p->ref_gflops, p->ref_calls);
    fprintf(f, "  %-32s %7.2f\n", "ratio", p->ref_gflops > 0 ? p->score_gflops / p->ref_gflops : 0);
  } else {
    fprintf(f, "\nsgemm probe: %s%s%s\n", d->probe_status, d->probe_reason[0] ? ": " : "",
            d->probe_reason);
  }

  if (!d->n_warn)
    fprintf(f, "\nWarnings: none\n");
  else
    fprintf(f, "\nWarnings\n");
  for (int i = 0; i < d->n_warn; i++)
    fprintf(f, "  - [%s] %s\n    fix: %s\n", d->warn[i].id, d->warn[i].message, d->warn[i].fix);
  sr_buf_free(&b);
}

int sr_cmd_doctor(int argc, char **argv) {
  int json = 0, probe = 1, probe_threads = 1;
  double probe_s = 0.3;
  static const struct option longopts[] = {{"json", no_argument, 0, 'j'},
                                           {"no-probe", no_argument, 0, 'n'},
                                           {"probe-seconds", required_argument, 0, 's'},
                                           {"probe-threads", required_argument, 0, 't'},
                                           {"help", no_argument, 0, 'h'},
                                           {0, 0, 0, 0}};
  int c;
  optind = 1;
  while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
    char *end;
    switch (c) {
    case 'j': json = 1; break;
    case 'n': probe = 0; break;
    case 's':
      probe_s = strtod(optarg, &end);
      if (end == optarg || *end || !(probe_s > 0 && probe_s <= 60)) {
        fprintf(stderr, "doctor: --probe-seconds must be in (0, 60]\n");
        return 2;
      }
      break;
    case 't':
      probe_threads = (int)strtol(optarg, &end, 10);
      if (end == optarg || *end || probe_threads < 0 || probe_threads > 256) {
        fprintf(stderr, "doctor: --probe-threads must be in 0..256\n");
        return 2;
      }
      break;
    case 'h': sr_doctor_usage(stdout); return 0;
    default: sr_doctor_usage(stderr); return 2;
    }
  }
  if (optind < argc) {
    fprintf(stderr, "doctor: unexpected argument '%s'\n", argv[optind]);
    sr_doctor_usage(stderr);
    return 2;
  }

  sr_doctor_t *d = sr_calloc(1, sizeof(*d));
  int rc = 0;
  sr_blas_info(&d->bi);
  d->n_warn = sr_blas_warnings(&d->bi, d->warn, SR_BLAS_MAX_WARNINGS);
  d->probe_status = "skipped";
  if (!probe) {
    snprintf(d->probe_reason, sizeof(d->probe_reason), "--no-probe");
  } else if (sr_doctor_has_warning(d, "core_unsupported")) {
    /* the core needs features this CPU lacks: the probe would die of SIGILL */
    snprintf(d->probe_reason, sizeof(d->probe_reason), "core %s needs CPU features this CPU lacks",
             d->bi.core);
  } else if (sr_blas_probe_sgemm(probe_s, probe_threads, &d->probe, d->probe_reason,
                                 sizeof(d->probe_reason)) == SR_OK) {
    d->probe_status = "ok";
  } else {
    d->probe_status = "failed";
    rc = 1;
  }
  if (json) {
    json_t *o = sr_doctor_json(d);
    if (json_dumpf(o, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(6)) ||
        printf("\n") < 0) {
      fprintf(stderr, "doctor: cannot write JSON\n");
      rc = 1;
    }
    json_decref(o);
  } else {
    sr_doctor_text(d, stdout);
  }
  if (!strcmp(d->probe_status, "failed")) fprintf(stderr, "doctor: %s\n", d->probe_reason);
  sr_free(d);
  return rc;
}
