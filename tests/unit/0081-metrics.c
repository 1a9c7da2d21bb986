/*
 * 0081: /metrics and docs/METRICS.md come from one list. Every field of the
 * statistics list is served under its metric name with its value (scaled
 * where the list says), and the Markdown reference has a row for exactly the
 * metrics the exposition serves.
 */
#include "streamrec/metrics.h"
#include "streamrec/pipeline.h"
#include "test.h"

static int has_line(const char *text, const char *line) {
  size_t n = strlen(line);
  for (const char *p = text; (p = strstr(p, line)); p++)
    if ((p == text || p[-1] == '\n') && p[n] == '\n') return 1;
  return 0;
}

TEST(every_stat_is_served) {
  sr_pipeline_stats_t st;
  memset(&st, 0, sizeof(st));
  st.consumed = 400;
  st.commit_failed = 3;
  st.score_ns = 1500000000; /* 1.5 s */
  st.unassigned_ms = 2500;
  st.users_peak = 9;
  sr_buf_t b;
  sr_buf_init(&b);
  sr_metrics_render(&st, NULL, 1000, &b);
  sr_buf_putc(&b, 0);
  const char *text = (const char *)b.data;
  T_ASSERT_MSG(has_line(text, "streamrec_ingest_messages_total 400"), "%s", text);
  T_ASSERT_MSG(has_line(text, "streamrec_ingest_commit_failed_total 3"), "%s", text);
  T_ASSERT_MSG(has_line(text, "# TYPE streamrec_ingest_commit_failed_total counter"), "%s", text);
  T_ASSERT_MSG(has_line(text, "# HELP streamrec_ingest_commit_failed_total Offset commits the "
                              "broker refused; retried."),
               "%s", text);
  T_ASSERT_MSG(has_line(text, "streamrec_score_seconds_total 1.5"), "%s", text);
  T_ASSERT_MSG(has_line(text, "streamrec_ingest_unassigned_seconds 2.5"), "%s", text);
  T_ASSERT_MSG(has_line(text, "# TYPE streamrec_ingest_unassigned_seconds gauge"), "%s", text);
  T_ASSERT_MSG(has_line(text, "streamrec_state_users_peak 9"), "%s", text);
  T_ASSERT_MSG(has_line(text, "streamrec_uptime_seconds 1"), "%s", text);
  T_ASSERT_MSG(strstr(text, "\nstreamrec_model_info") == NULL, "no model, no model_info");
  /* one # TYPE per list entry, plus uptime, build_info, blas_core_suboptimal */
  int types = 0;
  for (const char *p = text; (p = strstr(p, "# TYPE ")); p++)
    types++;
#define COUNT(f, kind, metric, div, help) +1
  T_EQ_INT(types, 0 SR_PIPELINE_STATS(COUNT) SR_PIPELINE_STATS_CLOCK(COUNT) + 3);
#undef COUNT
  sr_buf_free(&b);
}

/* The doc lists what is served, no more, no less (what 0230 checks against
 * a live worker, here without one). */
TEST(markdown_matches_exposition) {
  sr_pipeline_stats_t st;
  memset(&st, 0, sizeof(st));
  sr_buf_t m, d;
  sr_buf_init(&m);
  sr_buf_init(&d);
  sr_metrics_render(&st, NULL, 0, &m);
  sr_buf_putc(&m, 0);
  sr_metrics_markdown(&d);
  sr_buf_putc(&d, 0);
  const char *text = (const char *)m.data, *doc = (const char *)d.data;
  int served = 0;
  for (const char *p = text; (p = strstr(p, "# TYPE ")); p++) {
    char name[128], want[160];
    T_ASSERT(sscanf(p, "# TYPE %127s", name) == 1);
    snprintf(want, sizeof(want), "\n| `%s", name);
    T_ASSERT_MSG(strstr(doc, want) != NULL, "%s served but not documented", name);
    served++;
  }
  int rows = 0;
  for (const char *p = doc; (p = strstr(p, "\n| `streamrec_")); p++)
    rows++;
  T_EQ_INT(rows, served + 1); /* + streamrec_model_info, served with a model */
  T_ASSERT(strstr(doc, "\n| `streamrec_model_info{version,kind,dim,items}` | gauge |") != NULL);
  T_ASSERT(strstr(doc, "\n| `streamrec_ingest_commit_failed_total` | counter | Offset commits "
                       "the broker refused; retried. |\n") != NULL);
  sr_buf_free(&m);
  sr_buf_free(&d);
}

TEST_MAIN(RUN(every_stat_is_served); RUN(markdown_matches_exposition))
