/*
 * A revocation inside sr_ingest_poll(): messages collected before the
 * revocation belong to partitions this member no longer owns (or owns again
 * from the last commit). Returned anyway, they would be processed by two
 * members, or twice by one after a re-assignment (the defect: state for the
 * revoked partition re-created and replayed events applied twice).
 *
 * Member A holds both partitions, commits its first message, then sits in
 * a long poll with everything else collected while member B joins the
 * group. Required: the poll returns promptly after the revocation with no
 * message of a partition revoked during it (before the fix it returned the
 * 99 it held), and A and B together then see every event.
 */
#include "itest.h"

#define N_PARTS 2
#define N_EVENTS 100

typedef struct {
  pthread_mutex_t mu;
  int seen[N_PARTS][N_EVENTS]; /* times (partition, offset) was returned */
  int revokes;                 /* revocations seen by A */
  int revoked[N_PARTS];        /* partitions revoked from A during the watched poll */
  int reassigned[N_PARTS];     /* ... and assigned to A again after that */
  int watching;
  _Atomic int stop_b; /* set by the test thread, read by member b */
  const char *bs;
} rev_t;

static rev_t R = {.mu = PTHREAD_MUTEX_INITIALIZER};

static void a_rebalance(void *opaque, int assigned, const int32_t *parts, int n) {
  if (assigned) {
    for (int i = 0; i < n; i++)
      if (R.watching && parts[i] >= 0 && parts[i] < N_PARTS && R.revoked[parts[i]])
        R.reassigned[parts[i]] = 1;
    return;
  }
  R.revokes++;
  for (int i = 0; i < n; i++)
    if (R.watching && parts[i] >= 0 && parts[i] < N_PARTS) R.revoked[parts[i]] = 1;
}

/* Commits what a member processed, as the pipeline does: a later
 * rebalance must not make anyone read it again. */
static void commit_all(sr_ingest_t *in, const sr_msg_t *m, int n) {
  char es[256];
  int32_t parts[N_PARTS];
  int64_t next[N_PARTS];
  int k = 0;
  for (int p = 0; p < N_PARTS; p++) {
    int64_t hi = -1;
    for (int i = 0; i < n; i++)
      if (m[i].err == SR_OK && m[i].partition == p && m[i].offset + 1 > hi) hi = m[i].offset + 1;
    if (hi > 0) parts[k] = p, next[k++] = hi;
  }
  if (k && sr_ingest_commit(in, parts, next, k, 0, es, sizeof(es)) != SR_OK)
    fprintf(stderr, "  commit: %s\n", es);
}

static void record(const sr_msg_t *m, int n) {
  pthread_mutex_lock(&R.mu);
  for (int i = 0; i < n; i++)
    if (m[i].err == SR_OK && m[i].partition >= 0 && m[i].partition < N_PARTS && m[i].offset >= 0 &&
        m[i].offset < N_EVENTS)
      R.seen[m[i].partition][m[i].offset]++;
  pthread_mutex_unlock(&R.mu);
}

static const sr_kv_t kv[] = {{"session.timeout.ms", "6000"},
                             {"heartbeat.interval.ms", "100"},
                             {"partition.assignment.strategy", "range"}};

static void *member_b(void *arg) {
  char es[256];
  sr_ingest_conf_t ic = {.brokers = R.bs,
                         .group = IT_GROUP("g-revoke"),
                         .topic = IT_TOPIC("events"),
                         .client_id = "member-b",
                         .kafka = kv,
                         .n_kafka = 3};
  sr_ingest_t *b = sr_ingest_new(&ic, es, sizeof(es));
  if (!b) return NULL;
  sr_msg_t msgs[64];
  while (!R.stop_b) {
    int n = sr_ingest_poll(b, msgs, 64, 100, 0, es, sizeof(es));
    if (n > 0) {
      record(msgs, n);
      commit_all(b, msgs, n);
      sr_ingest_release(b, msgs, n);
    }
  }
  sr_ingest_destroy(b);
  return NULL;
}

static int distinct_and_dups(int *dups) {
  int d = 0;
  *dups = 0;
  pthread_mutex_lock(&R.mu);
  for (int p = 0; p < N_PARTS; p++)
    for (int o = 0; o < N_EVENTS; o++) {
      d += R.seen[p][o] > 0;
      *dups += R.seen[p][o] > 1 ? R.seen[p][o] - 1 : 0;
    }
  pthread_mutex_unlock(&R.mu);
  return d;
}

TEST(revoke_inside_poll_returns_no_stale_messages) {
  char es[256];
  it_cluster_t *cluster = it_cluster_new(1, N_PARTS);
  T_ASSERT(cluster);
  R.bs = it_cluster_bootstrap(cluster);
  it_events_t evs;
  it_events_make(&evs, 10, 20, 10, 23); /* 100 events over 2 partitions */
  T_EQ_INT(it_produce_events(R.bs, &evs), N_EVENTS);

  sr_ingest_conf_t ic = {.brokers = R.bs,
                         .group = IT_GROUP("g-revoke"),
                         .topic = IT_TOPIC("events"),
                         .client_id = "member-a",
                         .kafka = kv,
                         .n_kafka = 3,
                         .rebalance_cb = a_rebalance};
  sr_ingest_t *a = sr_ingest_new(&ic, es, sizeof(es));
  T_ASSERT_MSG(a, "%s", es);
  sr_msg_t *msgs = calloc(1000, sizeof(*msgs));

  /* 1. A's first message, committed: the baseline both members start from. */
  int64_t t0 = sr_mono_us();
  int n = 0;
  while (n == 0 && sr_mono_us() - t0 < 30000000)
    n = sr_ingest_poll(a, msgs, 1, 100, 0, es, sizeof(es));
  T_EQ_INT(n, 1);
  record(msgs, 1);
  int64_t next = msgs[0].offset + 1;
  int32_t first_part = msgs[0].partition;
  T_EQ_INT(sr_ingest_commit(a, &msgs[0].partition, &next, 1, 0, es, sizeof(es)), SR_OK);
  sr_ingest_release(a, msgs, 1);

  /* 2. B joins while A sits in a long poll holding the rest. */
  pthread_t tb;
  R.watching = 1;
  T_ASSERT(pthread_create(&tb, NULL, member_b, NULL) == 0);
  int64_t t1 = sr_mono_us();
  n = sr_ingest_poll(a, msgs, 1000, 100, 15000000, es, sizeof(es));
  double held = (double)(sr_mono_us() - t1) / 1e6;
  R.watching = 0;
  fprintf(stderr,
          "  long poll: %d message(s) returned after %.2f s; revocations %d (p0 %d, p1 %d)\n", n,
          held, R.revokes, R.revoked[0], R.revoked[1]);
  T_ASSERT_MSG(R.revokes >= 1, "member B's join did not revoke anything from A within %.1f s",
               held);
  /* Stale: of a partition revoked during the poll and not given back. A
   * partition given back within the same poll restarts from its last
   * commit: one message of it may come back, and it must be that one (one
   * consumer_poll call can serve revoke, assign and a first fetch). */
  int stale = 0;
  for (int i = 0; i < n; i++) {
    int32_t p = msgs[i].partition;
    if (p < 0 || p >= N_PARTS || !R.revoked[p]) continue;
    if (!R.reassigned[p]) {
      stale++;
      continue;
    }
    int64_t start = p == first_part ? next : 0;
    T_ASSERT_MSG(msgs[i].offset == start,
                 "p%d given back during the poll: returned @%lld, its last commit is %lld", (int)p,
                 (long long)msgs[i].offset, (long long)start);
  }
  record(msgs, n);
  commit_all(a, msgs, n);
  sr_ingest_release(a, msgs, n);
  T_EQ_INT(stale, 0);

  /* 3. Both members consume until every event was seen once. */
  int dups = 0, distinct = 0;
  t1 = sr_mono_us();
  while ((distinct = distinct_and_dups(&dups)) < N_EVENTS && sr_mono_us() - t1 < 20000000) {
    n = sr_ingest_poll(a, msgs, 64, 100, 0, es, sizeof(es));
    if (n > 0) {
      record(msgs, n);
      commit_all(a, msgs, n);
      sr_ingest_release(a, msgs, n);
    }
  }
  usleep(500 * 1000); /* anything B would read twice arrives by now */
  R.stop_b = 1;
  pthread_join(tb, NULL);
  distinct = distinct_and_dups(&dups);
  fprintf(stderr,
          "  afterwards: %d distinct events seen, %d seen twice; %llu released unprocessed\n",
          distinct, dups, (unsigned long long)sr_ingest_revoke_dropped(a));
  fprintf(stderr, "  revocations seen by A: %d; first message p%d@%lld\n", R.revokes,
          (int)first_part, (long long)(next - 1));
  for (int p = 0; p < N_PARTS; p++) { /* gaps below the highest offset seen */
    int end = 0;
    for (int o = 0; o < N_EVENTS; o++)
      if (R.seen[p][o]) end = o + 1;
    for (int o = 0; o < end; o++)
      if (!R.seen[p][o]) fprintf(stderr, "  never seen: p%d@%d\n", p, o);
    fprintf(stderr, "  p%d: highest offset seen %d\n", p, end - 1);
  }
  /* Nothing lost. Re-reads can still happen legitimately (at-least-once):
   * a commit sent while the group rebalances is refused, and the next owner
   * reads from the last accepted commit; they are reported, not asserted. */
  T_EQ_INT(distinct, N_EVENTS);
  free(msgs);
  sr_ingest_destroy(a);
  it_events_free(&evs);
  it_cluster_destroy(cluster);
}

TEST_MAIN(RUN(revoke_inside_poll_returns_no_stale_messages))
