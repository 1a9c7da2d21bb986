/*
 * metrics: renders the pipeline's statistics in Prometheus text format.
 * Names follow streamrec_<stage>_<thing>_total; one function renders all,
 * from the statistics list (SR_PIPELINE_STATS in streamrec/pipeline.h) and
 * this module's own metric table, and docs/METRICS.md is generated from the
 * same descriptions (sr_metrics_markdown), so the two cannot drift.
 *
 * Thread: any (reads a stats snapshot).
 */
#ifndef STREAMREC_METRICS_H
#define STREAMREC_METRICS_H

#include "streamrec/common.h"
#include "streamrec/pipeline.h"

/* Appends the exposition text for stats and the served model to out (m
 * may be NULL: no streamrec_model_info), and the build and machine facts
 * (streamrec_build_info: versions, OpenBLAS core in use, best and source,
 * from sr_blas_info(); streamrec_blas_core_suboptimal). Label values (the
 * model version, the kind, the CPU name, ...) are escaped per the text
 * format (backslash, double quote, line feed), so no value can add or break
 * exposition lines. */
void sr_metrics_render(const sr_pipeline_stats_t *s, const sr_model_t *m, int64_t uptime_ms,
                       sr_buf_t *out);

/* Appends docs/METRICS.md (Markdown: the admin paths and one row per metric
 * sr_metrics_render can serve, with its type and help) to out. Printed by
 * `streamrec config --metrics-markdown`. */
void sr_metrics_markdown(sr_buf_t *out);

#endif
