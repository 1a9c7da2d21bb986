/*
 * Offsets are committed only after the outputs are delivered:
 *  - transient produce errors are retried by the producer: every event still
 *    gets its recommendation and everything is committed;
 *  - a permanent produce failure stops the worker with SR_ERR_DELIVERY and
 *    nothing is committed past it; a restart re-processes from the last
 *    commit so every event ends with a delivered recommendation.
 */
#include "itest.h"

#define N_PARTS 2
#define APIKEY_PRODUCE 0
#define KERR_NOT_LEADER 6        /* retriable */
#define KERR_MSG_TOO_LARGE 10    /* not retriable */

static int count_recs_per_event(const char *bs, const it_events_t *evs, int *seen, int max) {
  char es[256];
  it_msg_t *recs = calloc((size_t)max, sizeof(*recs));
  int n = it_read_topic(bs, "recommendations", max, 6000, recs);
  sr_codec_t *c = sr_codec_new(1, 2, es, sizeof(es));
  for (int i = 0; i < n; i++) {
    sr_rec_t r;
    int ev;
    if (sr_codec_decode_rec(c, recs[i].value, recs[i].len, &r, es, sizeof(es)) != SR_OK) continue;
    char id[32];
    snprintf(id, sizeof(id), "%.*s", (int)r.source_event_id.len, r.source_event_id.ptr);
    if (sscanf(id, "ev-%d", &ev) == 1 && ev >= 0 && ev < evs->n) seen[ev]++;
  }
  sr_codec_destroy(c);
  it_msgs_free(recs, n);
  free(recs);
  return n;
}

TEST(transient_produce_errors_lose_nothing) {
  char es[512];
  sr_broker_t *broker = sr_broker_new(1, N_PARTS, es, sizeof(es));
  T_ASSERT_MSG(broker, "%s", es);
  const char *bs = sr_broker_bootstrap(broker);
  it_events_t evs;
  it_events_make(&evs, 8, 20, 6, 11);
  const char *snap = t_tmp_path("faults1.snap");
  T_EQ_INT(it_snapshot(&evs, 8, snap), 0);
  T_EQ_INT(it_produce_events(bs, &evs), evs.n);
  sr_broker_push_errors(broker, APIKEY_PRODUCE, 4, KERR_NOT_LEADER);
  sr_pipeline_stats_t st;
  sr_err_t e = it_run_pipeline(bs, snap, "g-transient", 1, 2000, &st, es, sizeof(es));
  T_ASSERT_MSG(e == SR_OK, "run: %s", es);
  T_EQ_INT(st.delivery_failed, 0);
  int *seen = calloc((size_t)evs.n, sizeof(int));
  count_recs_per_event(bs, &evs, seen, evs.n * 2);
  for (int i = 0; i < evs.n; i++) T_ASSERT_MSG(seen[i] >= 1, "event %d has no recommendation", i);
  int64_t committed[N_PARTS];
  T_EQ_INT(it_committed(bs, "g-transient", N_PARTS, committed), 0);
  T_EQ_INT(committed[0] + committed[1], evs.n);
  free(seen);
  it_events_free(&evs);
  sr_broker_destroy(broker);
  unlink(snap);
}

TEST(permanent_failure_stops_before_commit_and_restart_recovers) {
  char es[512];
  sr_broker_t *broker = sr_broker_new(1, N_PARTS, es, sizeof(es));
  T_ASSERT_MSG(broker, "%s", es);
  const char *bs = sr_broker_bootstrap(broker);
  it_events_t evs;
  it_events_make(&evs, 8, 20, 6, 13);
  const char *snap = t_tmp_path("faults2.snap");
  T_EQ_INT(it_snapshot(&evs, 8, snap), 0);
  T_EQ_INT(it_produce_events(bs, &evs), evs.n);

  /* Every produce request fails with a non-retriable error. */
  sr_broker_push_errors(broker, APIKEY_PRODUCE, 1000, KERR_MSG_TOO_LARGE);
  sr_pipeline_stats_t st;
  sr_err_t e = it_run_pipeline(bs, snap, "g-perm", 1, 2000, &st, es, sizeof(es));
  /* The first failure arrives as a delivery report (DELIVERY); with the
   * idempotent producer it may instead surface as the producer's fatal
   * state on the next send (KAFKA). Either way the worker stops. */
  T_ASSERT_MSG(e == SR_ERR_DELIVERY || e == SR_ERR_KAFKA, "run returned %s", sr_err2name(e));
  T_ASSERT(st.delivery_failed > 0);
  T_EQ_INT(st.recs_delivered, 0);
  int64_t committed[N_PARTS];
  T_EQ_INT(it_committed(bs, "g-perm", N_PARTS, committed), 0);
  for (int p = 0; p < N_PARTS; p++)
    T_ASSERT_MSG(committed[p] <= 0, "partition %d committed %lld despite failed delivery", p,
                 (long long)committed[p]);

  /* Fault cleared: a restart under the same group re-processes everything. */
  sr_broker_clear_errors(broker, APIKEY_PRODUCE);
  e = it_run_pipeline(bs, snap, "g-perm", 1, 2000, &st, es, sizeof(es));
  T_ASSERT_MSG(e == SR_OK, "restart: %s", es);
  T_EQ_INT(st.consumed, evs.n);
  int *seen = calloc((size_t)evs.n, sizeof(int));
  count_recs_per_event(bs, &evs, seen, evs.n * 2);
  for (int i = 0; i < evs.n; i++) T_ASSERT_MSG(seen[i] >= 1, "event %d has no recommendation", i);
  T_EQ_INT(it_committed(bs, "g-perm", N_PARTS, committed), 0);
  T_EQ_INT(committed[0] + committed[1], evs.n);
  free(seen);
  it_events_free(&evs);
  sr_broker_destroy(broker);
  unlink(snap);
}

TEST_MAIN(RUN(transient_produce_errors_lose_nothing);
          RUN(permanent_failure_stops_before_commit_and_restart_recovers))
