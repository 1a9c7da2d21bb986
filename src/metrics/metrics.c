/*
 * metrics: Prometheus text exposition of the pipeline counters. Written by
 * hand (the format is a few lines of text) rather than with a client
 * library: Debian has no C Prometheus client package.
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

/* streamrec_build_info and streamrec_blas_core_suboptimal: the facts
 * `streamrec doctor` reports, for dashboards and alerts. */
static void sr_metrics_build_info(sr_buf_t *out) {
  sr_blas_info_t bi;
  char threads[16];
  sr_blas_info(&bi);
  snprintf(threads, sizeof(threads), "%d", bi.threads);
  sr_buf_printf(out, "# HELP streamrec_build_info Versions of streamrec and its libraries, the "
                     "OpenBLAS core in use and the best one for this CPU (always 1).\n"
                     "# TYPE streamrec_build_info gauge\n"
                     "streamrec_build_info{");
  sr_metrics_label(out, 1, "version", SR_VERSION);
  sr_metrics_label(out, 0, "openblas_core", bi.core);
  sr_metrics_label(out, 0, "openblas_core_best", bi.core_best);
  sr_metrics_label(out, 0, "openblas_core_source", sr_blas_source_name(bi.source));
  sr_metrics_label(out, 0, "openblas_threads", threads);
  sr_metrics_label(out, 0, "librdkafka", sr_kafka_version());
  sr_metrics_label(out, 0, "avro_c", sr_codec_avro_version());
  sr_metrics_label(out, 0, "cpu", bi.model_name);
  sr_buf_printf(out, "} 1\n");
  sr_metric(out, "streamrec_blas_core_suboptimal", "gauge",
            "1 when the OpenBLAS core in use ranks below the best one this CPU and OpenBLAS "
            "support (streamrec doctor says why and how to fix it).",
            sr_blas_core_suboptimal(&bi));
}

void sr_metrics_render(const sr_pipeline_stats_t *s, const sr_model_t *m, int64_t uptime_ms,
                       sr_buf_t *out) {
  sr_metric(out, "streamrec_ingest_messages_total", "counter",
            "Input messages consumed from the events topic.", (double)s->consumed);
  sr_metric(out, "streamrec_decode_events_total", "counter", "Valid UserEvents decoded.",
            (double)s->decoded);
  sr_metric(out, "streamrec_decode_dead_letter_total", "counter",
            "Messages sent to the dead-letter topic.", (double)s->dlq);
  sr_metric(out, "streamrec_state_unknown_items_total", "counter",
            "Events whose item is not in the model catalogue (state not updated).",
            (double)s->unknown_items);
  sr_metric(out, "streamrec_state_forgotten_total", "counter", "FORGET events applied.",
            (double)s->forgotten);
  sr_metric(out, "streamrec_state_users", "gauge", "Users held in state.", (double)s->users);
  sr_metric(out, "streamrec_score_coalesced_total", "counter",
            "Events merged into a later event of the same user in one micro-batch.",
            (double)s->coalesced);
  sr_metric(out, "streamrec_score_batches_total", "counter", "Scoring micro-batches.",
            (double)s->batches);
  sr_metric(out, "streamrec_score_seconds_total", "counter",
            "Time spent in batched scoring and top-K.", (double)s->score_ns / 1e9);
  sr_metric(out, "streamrec_publish_recommendations_total", "counter",
            "Recommendations handed to the producer.", (double)s->recs_sent);
  sr_metric(out, "streamrec_publish_delivered_total", "counter",
            "Recommendations acknowledged by the broker.", (double)s->recs_delivered);
  sr_metric(out, "streamrec_publish_failed_total", "counter",
            "Outputs whose delivery failed permanently.", (double)s->delivery_failed);
  sr_metric(out, "streamrec_publish_oversized_total", "counter",
            "Outputs over the producer's message.max.bytes (dead-lettered, or dead letters sent "
            "truncated).",
            (double)s->oversized);
  sr_metric(out, "streamrec_ingest_commits_total", "counter", "Offset commits sent.",
            (double)s->commits);
  sr_metric(out, "streamrec_ingest_consume_errors_total", "counter",
            "Consumer errors reported for a partition (dead-lettered).", (double)s->consume_errors);
  sr_metric(out, "streamrec_ingest_revoke_dropped_total", "counter",
            "Messages released unprocessed because their partition was revoked meanwhile.",
            (double)s->revoke_dropped);
  sr_metric(out, "streamrec_ingest_unassigned_seconds", "gauge",
            "Seconds without any assigned partition (0 while some are assigned).",
            (double)s->unassigned_ms / 1000.0);
  sr_metric(out, "streamrec_ingest_brokers_down_seconds", "gauge",
            "Seconds since the consumer reported all brokers down (0 when none is known).",
            (double)s->kafka_down_ms / 1000.0);
  sr_metric(out, "streamrec_decode_rejected_total", "counter",
            "Events refused by the input rules (dead-lettered).", (double)s->rejected);
  sr_metric(out, "streamrec_state_seen_dropped_total", "counter",
            "Consumed items forgotten by the per-user bound state.seen.max (the oldest first; "
            "they may be recommended again).",
            (double)s->seen_dropped);
  sr_metric(out, "streamrec_state_full_total", "counter",
            "Events of new users refused because their partition's state was full "
            "(dead-lettered).",
            (double)s->state_full);
  sr_metric(out, "streamrec_ingest_assigned_partitions", "gauge",
            "Partitions of the events topic assigned to this worker.",
            (double)s->assigned_partitions);
  sr_metric(out, "streamrec_uptime_seconds", "gauge", "Seconds since the worker started.",
            (double)uptime_ms / 1000.0);
  sr_metrics_build_info(out);
  if (m) {
    sr_buf_printf(out, "# HELP streamrec_model_info The model being served.\n"
                       "# TYPE streamrec_model_info gauge\n"
                       "streamrec_model_info{version=\"");
    sr_metrics_label_value(out, sr_model_version(m));
    sr_buf_printf(out, "\",kind=\"");
    sr_metrics_label_value(out, sr_model_kind_name(sr_model_kind(m)));
    sr_buf_printf(out, "\",dim=\"%d\",items=\"%d\"} 1\n", sr_model_dim(m),
                  (int)sr_model_n_items(m));
  }
}
