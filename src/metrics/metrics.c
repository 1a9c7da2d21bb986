/*
 * metrics: Prometheus text exposition of the pipeline statistics, and
 * docs/METRICS.md generated from the same descriptions. Written by hand
 * (the format is a few lines of text) rather than with a client library:
 * Debian has no C Prometheus client package.
 *
 * Each metric is described once: the pipeline's statistics by the
 * SR_PIPELINE_STATS lists in streamrec/pipeline.h, the metrics this module
 * adds (uptime, build and model facts) by sr_metrics_own[] below. Both the
 * exposition and the Markdown reference loop over those lists, so a metric
 * cannot be served undocumented or documented unserved.
 */
#include <stdio.h>

#include "streamrec/metrics.h"

#include "streamrec/blas.h"
#include "streamrec/codec.h"
#include "streamrec/kafka.h"

/* Appends v as a Prometheus label value, without the quotes: the text
 * format (exposition format 0.0.4) escapes exactly backslash, double quote
 * and line feed in label values. Every label value goes through here, even
 * ones that should be safe already (the snapshot loader refuses versions
 * outside [A-Za-z0-9._:+-], but sr_model_set_version takes any string): a
 * raw quote or newline would let a value end the label set and inject
 * metric lines. */
static void sr_metrics_label_value(sr_buf_t *out, const char *v) {
  for (const char *p = v ? v : ""; *p; p++) {
    switch (*p) {
    case '\\': sr_buf_append(out, "\\\\", 2); break;
    case '"': sr_buf_append(out, "\\\"", 2); break;
    case '\n': sr_buf_append(out, "\\n", 2); break;
    default: sr_buf_putc(out, (unsigned char)*p);
    }
  }
}

static void sr_metric(sr_buf_t *out, const char *name, const char *type, const char *help,
                      double v) {
  sr_buf_printf(out, "# HELP %s %s\n# TYPE %s %s\n%s %.17g\n", name, help, name, type, name, v);
}

/* Appends [,]name="value" with the value escaped. */
static void sr_metrics_label(sr_buf_t *out, int first, const char *name, const char *v) {
  sr_buf_printf(out, "%s%s=\"", first ? "" : ",", name);
  sr_metrics_label_value(out, v);
  sr_buf_putc(out, '"');
}

/* A metric of this module: name, type, the # HELP text, the label names
 * (NULL-terminated, or NULL for none) and what docs/METRICS.md adds to the
 * help (or ""). */
typedef struct sr_metric_desc_s {
  const char *name, *type, *help;
  const char *const *labels;
  const char *doc;
} sr_metric_desc_t;

static const char *const sr_build_info_labels[] = {"version",
                                                   "openblas_core",
                                                   "openblas_core_best",
                                                   "openblas_core_source",
                                                   "openblas_threads",
                                                   "librdkafka",
                                                   "avro_c",
                                                   "cpu",
                                                   NULL};
static const char *const sr_model_info_labels[] = {"version", "kind", "dim", "items", NULL};

enum { SR_M_UPTIME, SR_M_BUILD_INFO, SR_M_BLAS_SUBOPTIMAL, SR_M_MODEL_INFO, SR_M__CNT };

static const sr_metric_desc_t sr_metrics_own[SR_M__CNT] = {
    [SR_M_UPTIME] = {"streamrec_uptime_seconds", "gauge", "Seconds since the worker started.", NULL,
                     ""},
    [SR_M_BUILD_INFO] =
        {"streamrec_build_info", "gauge",
         "Versions of streamrec and its libraries, the OpenBLAS core in use and the best one "
         "for this CPU (always 1).",
         sr_build_info_labels,
         " Labels: the core in use, the best one this CPU and OpenBLAS build support, how the "
         "core was chosen (`detected`: OpenBLAS's own choice; `reexec`: streamrec re-executed "
         "itself with `OPENBLAS_CORETYPE` because OpenBLAS chose a weaker core; `user`: "
         "`OPENBLAS_CORETYPE` set in the environment, never overridden), BLAS threads, "
         "librdkafka (run time) and Avro C (build time) versions, the CPU's model name; "
         "`streamrec doctor` reports the same facts in detail."},
    [SR_M_BLAS_SUBOPTIMAL] =
        {"streamrec_blas_core_suboptimal", "gauge",
         "1 when the OpenBLAS core in use ranks below the best one this CPU and OpenBLAS "
         "support (streamrec doctor says why and how to fix it).",
         NULL, " For example a weaker `OPENBLAS_CORETYPE` set by hand."},
    [SR_M_MODEL_INFO] = {"streamrec_model_info", "gauge", "The model being served.",
                         sr_model_info_labels, " Always 1; served once a model is loaded."},
};

/* # HELP and # TYPE of d, then its sample with label values vals[] (in the
 * order of d->labels) and the value 1. */
static void sr_metric_info(sr_buf_t *out, const sr_metric_desc_t *d, const char *const *vals) {
  sr_buf_printf(out, "# HELP %s %s\n# TYPE %s %s\n%s{", d->name, d->help, d->name, d->type,
                d->name);
  for (int i = 0; d->labels[i]; i++)
    sr_metrics_label(out, i == 0, d->labels[i], vals[i]);
  sr_buf_printf(out, "} 1\n");
}

/* streamrec_build_info and streamrec_blas_core_suboptimal: the facts
 * `streamrec doctor` reports, for dashboards and alerts. */
static void sr_metrics_build_info(sr_buf_t *out) {
  sr_blas_info_t bi;
  char threads[16];
  sr_blas_info(&bi);
  snprintf(threads, sizeof(threads), "%d", bi.threads);
  const char *vals[] = {SR_VERSION,
                        bi.core,
                        bi.core_best,
                        sr_blas_source_name(bi.source),
                        threads,
                        sr_kafka_version(),
                        sr_codec_avro_version(),
                        bi.model_name};
  _Static_assert(SR_ARRAY_SIZE(vals) + 1 == SR_ARRAY_SIZE(sr_build_info_labels),
                 "one value per build_info label");
  sr_metric_info(out, &sr_metrics_own[SR_M_BUILD_INFO], vals);
  const sr_metric_desc_t *d = &sr_metrics_own[SR_M_BLAS_SUBOPTIMAL];
  sr_metric(out, d->name, d->type, d->help, sr_blas_core_suboptimal(&bi));
}

void sr_metrics_render(const sr_pipeline_stats_t *s, const sr_model_t *m, int64_t uptime_ms,
                       sr_buf_t *out) {
#define SR__M_STAT(f, kind, metric, div, help)                                                     \
  sr_metric(out, metric, #kind, help, (double)s->f / div);
  SR_PIPELINE_STATS(SR__M_STAT)
  SR_PIPELINE_STATS_CLOCK(SR__M_STAT)
#undef SR__M_STAT
  const sr_metric_desc_t *d = &sr_metrics_own[SR_M_UPTIME];
  sr_metric(out, d->name, d->type, d->help, (double)uptime_ms / 1000.0);
  sr_metrics_build_info(out);
  if (m) {
    char dim[16], items[16];
    snprintf(dim, sizeof(dim), "%d", sr_model_dim(m));
    snprintf(items, sizeof(items), "%d", (int)sr_model_n_items(m));
    const char *vals[] = {sr_model_version(m), sr_model_kind_name(sr_model_kind(m)), dim, items};
    _Static_assert(SR_ARRAY_SIZE(vals) + 1 == SR_ARRAY_SIZE(sr_model_info_labels),
                   "one value per model_info label");
    sr_metric_info(out, &sr_metrics_own[SR_M_MODEL_INFO], vals);
  }
}

static void sr_metrics_md_row(sr_buf_t *out, const char *name, const char *const *labels,
                              const char *type, const char *help, const char *doc) {
  sr_buf_printf(out, "| `%s", name);
  for (int i = 0; labels && labels[i]; i++)
    sr_buf_printf(out, "%s%s", i ? "," : "{", labels[i]);
  sr_buf_printf(out, "%s` | %s | %s%s |\n", labels ? "}" : "", type, help, doc);
}

void sr_metrics_markdown(sr_buf_t *out) {
  sr_buf_printf(
      out,
      "# Metrics and health\n\n"
      "<!-- Generated by `streamrec config --metrics-markdown` (`make metrics-doc`) from the\n"
      "statistics list SR_PIPELINE_STATS in include/streamrec/pipeline.h and the metric table\n"
      "of src/metrics/metrics.c; do not edit by hand. -->\n\n"
      "`streamrec serve --admin-port PORT` (or `admin.port` in the config; `-1` picks a free "
      "port and logs\nit) serves, on `admin.addr` (default 127.0.0.1):\n\n"
      "| path | answer |\n|---|---|\n"
      "| `/metrics` | Prometheus text format, below |\n"
      "| `/healthz` | 200 `ok` while the pipeline thread runs; 503 once it stopped |\n"
      "| `/readyz` | 200 when partitions of the events topic are assigned; 503 otherwise, "
      "saying for how long no partition has been assigned and, when the client reported all "
      "brokers down, for how long they have been unreachable |\n\n"
      "Every metric below is checked against this page by `tests/interop/0230-serve-cli.sh`.\n\n"
      "All metrics are rendered by one function, `sr_metrics_render()` in "
      "`src/metrics/metrics.c`,\nfrom the same descriptions as this page (the meaning is the "
      "`# HELP` text):\n\n"
      "| metric | type | meaning |\n|---|---|---|\n");
#define SR__M_MD(f, kind, metric, div, help) sr_metrics_md_row(out, metric, NULL, #kind, help, "");
  SR_PIPELINE_STATS(SR__M_MD)
  SR_PIPELINE_STATS_CLOCK(SR__M_MD)
#undef SR__M_MD
  for (int i = 0; i < SR_M__CNT; i++) {
    const sr_metric_desc_t *d = &sr_metrics_own[i];
    sr_metrics_md_row(out, d->name, d->labels, d->type, d->help, d->doc);
  }
}
