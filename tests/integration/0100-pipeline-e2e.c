/*
 * End to end on the test cluster (itest.h): events produced to Kafka, the pipeline
 * in-process, recommendations read back and checked one by one against the
 * events that caused them; committed offsets checked after the run.
 */
#include "itest.h"

#define N_USERS 30
#define N_ITEMS 40
#define PER_USER 10
#define N_PARTS 3

static it_cluster_t *cluster;
static it_events_t evs;
static const char *snap;
static char version[64];

static int find_event(const char *evid) {
  int i;
  if (sscanf(evid, "ev-%d", &i) != 1 || i < 0 || i >= evs.n) return -1;
  return i;
}

/* Checks a decoded rec against its source event; returns NULL or a reason. */
static const char *check_rec(const sr_rec_t *r, const char *key, int k, int *ev_out) {
  static char why[256];
  char evid[64];
  snprintf(evid, sizeof(evid), "%.*s", (int)r->source_event_id.len, r->source_event_id.ptr);
  int i = find_event(evid);
  *ev_out = i;
  if (i < 0) return "source_event_id does not name a produced event";
  if (!sr_str_eq(r->user_id, evs.rows[i].user)) return "user_id differs from the event's user";
  if (strlen(key) != r->user_id.len || memcmp(key, r->user_id.ptr, r->user_id.len))
    return "Kafka key is not the user id";
  if (r->event_time != evs.rows[i].ts_ms) return "event_time differs from the event timestamp";
  if (r->n_items != k) return "not K items";
  if (!sr_str_eq(r->model_version, sr_str_cstr(version))) return "wrong model_version";
  if (!sr_str_eq(r->scenario, SR_STR("default"))) return "scenario not 'default'";
  if (r->source_partition < 0 || r->source_partition >= N_PARTS) return "bad source_partition";
  if (r->produced_at < r->event_time) return "produced_at before event_time";
  for (int a = 0; a < r->n_items; a++) {
    if (r->items[a].propensity != 1.0f || r->items[a].explore) return "propensity/explore";
    if (a > 0 && r->items[a].score > r->items[a - 1].score) return "scores not descending";
    for (int b = 0; b < a; b++)
      if (sr_str_eq(r->items[a].item_id, r->items[b].item_id)) return "duplicate item";
    /* no item the user touched up to and including this event */
    for (int j = 0; j <= i; j++)
      if (sr_str_eq(evs.rows[j].user, r->user_id) &&
          sr_str_eq(evs.rows[j].item, r->items[a].item_id)) {
        snprintf(why, sizeof(why), "recommended seen item %s (event %d)", evs.items[j], j);
        return why;
      }
  }
  return NULL;
}

/* Runs the pipeline under group with batch_max, then reads every
 * recommendation back and checks it against its source event; all events
 * must have exactly one recommendation and all offsets must be committed. */
static void run_and_verify(const char *group, int batch_max, int *failed) {
  char es[512];
  sr_pipeline_stats_t st;
  const char *bs = it_cluster_bootstrap(cluster);
  *failed = 1;
  sr_err_t e = it_run_pipeline(bs, snap, group, batch_max, 2000, &st, es, sizeof(es));
  T_ASSERT_MSG(e == SR_OK, "run: %s", es);
  T_EQ_INT(st.consumed, evs.n);
  T_EQ_INT(st.decoded, evs.n);
  T_EQ_INT(st.dlq, 0);
  T_EQ_INT(st.coalesced, 0);
  T_EQ_INT(st.recs_sent, evs.n);
  T_EQ_INT(st.recs_delivered, evs.n);
  T_EQ_INT(st.users, 0);            /* gauge: state is dropped with the partitions at shutdown */
  T_EQ_INT(st.users_peak, N_USERS); /* every user held at once before that */

  it_msg_t *msgs = calloc((size_t)evs.n * 3, sizeof(*msgs));
  int got = it_read_topic(bs, IT_TOPIC("recommendations"), evs.n * 3, 8000, msgs);
  sr_codec_t *c = sr_codec_new(1, 2, es, sizeof(es));
  int *seen = calloc((size_t)evs.n, sizeof(int));
  int64_t end[N_PARTS] = {0};
  int mine = 0;
  for (int m = 0; m < got; m++) {
    sr_rec_t r;
    T_ASSERT_MSG(sr_codec_decode_rec(c, msgs[m].value, msgs[m].len, &r, es, sizeof(es)) == SR_OK,
                 "decode rec %d: %s", m, es);
    int i;
    const char *why = check_rec(&r, msgs[m].key, 10, &i);
    T_ASSERT_MSG(!why, "rec %d (event %d): %s", m, i, why);
    seen[i]++;
    mine++;
    if (r.source_offset + 1 > end[r.source_partition])
      end[r.source_partition] = r.source_offset + 1;
  }
  /* the topic holds the outputs of every run so far: each run adds one per event */
  T_EQ_INT(mine % evs.n, 0);
  for (int i = 0; i < evs.n; i++)
    T_ASSERT_MSG(seen[i] == mine / evs.n, "event %d has %d recs over %d runs", i, seen[i],
                 mine / evs.n);
  /* Offsets: everything delivered => committed == end of each partition. */
  int64_t committed[N_PARTS];
  T_EQ_INT(it_committed(bs, group, N_PARTS, committed), 0);
  int64_t total = 0;
  for (int p = 0; p < N_PARTS; p++) {
    T_EQ_INT(committed[p], end[p]);
    total += end[p];
  }
  T_EQ_INT(total, evs.n);
  free(seen);
  sr_codec_destroy(c);
  it_msgs_free(msgs, got);
  free(msgs);
  *failed = 0;
}

TEST(one_recommendation_per_event_batch_1) {
  int failed;
  run_and_verify(IT_GROUP("g-b1"), 1, &failed);
  T_ASSERT(!failed);
}

/* Batches of 64 hold several events of one user: each still gets the
 * recommendation for its own moment (its own state, its own seen items). */
TEST(one_recommendation_per_event_batch_64) {
  int failed;
  run_and_verify(IT_GROUP("g-b64"), 64, &failed);
  T_ASSERT(!failed);
}

/* With batch.coalesce a user's events in one batch share one recommendation. */
TEST(coalesce_per_user) {
  char es[512];
  sr_pipeline_stats_t st;
  const char *bs = it_cluster_bootstrap(cluster);
  it_coalesce = 1;
  sr_err_t e = it_run_pipeline(bs, snap, IT_GROUP("g-coalesce"), 64, 2000, &st, es, sizeof(es));
  it_coalesce = 0;
  T_ASSERT_MSG(e == SR_OK, "run: %s", es);
  T_EQ_INT(st.consumed, evs.n);
  T_ASSERT(st.coalesced > 0);
  T_EQ_INT(st.recs_sent + st.coalesced, evs.n);
  int64_t committed[N_PARTS];
  T_EQ_INT(it_committed(bs, IT_GROUP("g-coalesce"), N_PARTS, committed), 0);
  int64_t total = 0;
  for (int p = 0; p < N_PARTS; p++)
    total += committed[p];
  T_EQ_INT(total, evs.n);
}

TEST_MAIN({
  char es[256];
  cluster = it_cluster_new(1, N_PARTS);
  if (!cluster) return 1;
  it_events_make(&evs, N_USERS, N_ITEMS, PER_USER, 7);
  snap = t_tmp_path("e2e.snap");
  if (it_snapshot(&evs, 16, snap) != 0) return 1;
  sr_model_t *m = NULL;
  if (sr_snapshot_load(snap, &m, NULL, es, sizeof(es)) != SR_OK) return 1;
  snprintf(version, sizeof(version), "%s", sr_model_version(m));
  sr_model_destroy(m);
  /* each case runs in its own process with its own cluster (or topics): all read these */
  int produced = it_produce_events(it_cluster_bootstrap(cluster), &evs);
  if (produced != evs.n) {
    fprintf(stderr, "produced %d of %d events\n", produced, evs.n);
    return 1;
  }
  RUN(one_recommendation_per_event_batch_1);
  RUN(one_recommendation_per_event_batch_64);
  RUN(coalesce_per_user);
  it_events_free(&evs);
  it_cluster_destroy(cluster);
  unlink(snap);
})
