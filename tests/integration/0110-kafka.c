/*
 * 0110: ingest + publish + broker + the topic reader (src/kafka) against
 * the test cluster (itest.h: the embedded mock cluster, or the real Kafka
 * of SR_TEST_BOOTSTRAP; the cases that take brokers down or inject request
 * errors are mock-only).
 *
 * Each test starts its own cluster (or topics) so they are independent. Assertions are
 * on content: keys, values and headers as consumed, the partition a key
 * maps to, contiguous offsets, the offsets committed and read back, the
 * partitions handed to the rebalance callback, and what the producer
 * reports while the broker is down.
 */
#include <inttypes.h>
#include <stdint.h>
#include <string.h>

#include <librdkafka/rdkafka.h> /* header count cross-check on sr_msg_t.priv_ */

#include "itest.h"
#include "streamrec/common.h"
#include "streamrec/kafka.h"

#define NPART 4

/* ---------------------------------------------------------------- helpers */

typedef struct {
  int ok, failed;
  int *seen; /* per message index (opaque - 1): number of reports */
  int cap;
  char last_reason[256];
} dr_ctx_t;

static void dr_cb(void *opaque, void *msg_opaque, sr_err_t err, const char *reason) {
  dr_ctx_t *d = opaque;
  intptr_t idx = (intptr_t)msg_opaque - 1;
  if (idx >= 0 && idx < d->cap) d->seen[idx]++;
  if (err == SR_OK) {
    d->ok++;
  } else {
    d->failed++;
    snprintf(d->last_reason, sizeof(d->last_reason), "%s", reason ? reason : "(null)");
  }
}

typedef struct {
  int n_assign, n_revoke;
  int assigned[64]; /* last assignment, sorted */
  int n_assigned;
  int revoked[64];
  int n_revoked;
  int first_revoked; /* size of the first revocation, -1 none */
  int owns;          /* eager protocol: holds its last assignment */
} rb_ctx_t;

static int cmp_int(const void *a, const void *b) { return *(const int *)a - *(const int *)b; }

static void rb_cb(void *opaque, int assigned, const int32_t *parts, int n) {
  rb_ctx_t *r = opaque;
  int *dst = assigned ? r->assigned : r->revoked;
  n = SR_MIN(n, 64);
  for (int i = 0; i < n; i++)
    dst[i] = parts[i];
  qsort(dst, (size_t)n, sizeof(int), cmp_int);
  if (assigned) {
    r->n_assign++;
    r->n_assigned = n;
    r->owns = 1;
  } else {
    if (r->n_revoke++ == 0) r->first_revoked = n;
    r->n_revoked = n;
    r->owns = 0;
  }
}

static sr_publish_t *mk_pub(const char *brokers, dr_ctx_t *d, const sr_kv_t *kv, int nkv) {
  char err[512];
  sr_publish_conf_t pc = {.brokers = brokers,
                          .client_id = "t0110-pub",
                          .kafka = kv,
                          .n_kafka = nkv,
                          .delivery_cb = dr_cb,
                          .opaque = d};
  sr_publish_t *p = sr_publish_new(&pc, err, sizeof(err));
  if (!p) fprintf(stderr, "sr_publish_new: %s\n", err);
  return p;
}

static sr_ingest_t *mk_in(const char *brokers, const char *group, rb_ctx_t *r) {
  char err[512];
  /* Short session so a second member's join is settled quickly. */
  static sr_kv_t kv[] = {
      {"session.timeout.ms", "6000"}, {"heartbeat.interval.ms", "500"}, {"debug", ""}};
  kv[2].value = getenv("T_KDEBUG");
  sr_ingest_conf_t ic = {.brokers = brokers,
                         .group = group,
                         .topic = IT_TOPIC("events"),
                         .client_id = "t0110-in",
                         .kafka = kv,
                         .n_kafka = kv[2].value ? 3 : 2,
                         .rebalance_cb = rb_cb,
                         .opaque = r};
  sr_ingest_t *in = sr_ingest_new(&ic, err, sizeof(err));
  if (!in) fprintf(stderr, "sr_ingest_new: %s\n", err);
  return in;
}

/* Sends messages [from, to): key "user-(i%20)", value "value-i", headers
 * trace-id="t-i" and a null-valued "flag". opaque = i + 1. */
static int send_range(sr_publish_t *p, int from, int to) {
  char err[512], key[32], val[32], trace[32];
  for (int i = from; i < to; i++) {
    snprintf(key, sizeof(key), "user-%d", i % 20);
    snprintf(val, sizeof(val), "value-%d", i);
    snprintf(trace, sizeof(trace), "t-%d", i);
    sr_header_t h[2] = {{"trace-id", trace, strlen(trace)}, {"flag", NULL, 0}};
    sr_err_t e;
    while ((e = sr_publish_send(p, IT_TOPIC("events"), -1, key, strlen(key), val, strlen(val), h, 2,
                                (void *)(intptr_t)(i + 1), err, sizeof(err))) == SR_ERR_QUEUE_FULL)
      sr_publish_poll(p, 10);
    if (e != SR_OK) {
      fprintf(stderr, "send %d: %s %s\n", i, sr_err2name(e), err);
      return -1;
    }
  }
  return 0;
}

typedef struct {
  int n;
  int idx[4096]; /* message index parsed from the value */
  int part[4096];
  int64_t off[4096];
  int bad; /* content mismatches (key/header vs value) */
} got_t;

/* Records msgs into g, checking each message's key and headers against its
 * value ("value-<idx>"). */
static void take(got_t *g, const sr_msg_t *msgs, int n) {
  for (int i = 0; i < n; i++) {
    const sr_msg_t *m = &msgs[i];
    int idx = -1;
    char val[64], key[32], trace[32];
    snprintf(val, sizeof(val), "%.*s", (int)m->len, (const char *)m->value);
    if (sscanf(val, "value-%d", &idx) != 1 || idx < 0) {
      g->bad++;
      continue;
    }
    snprintf(key, sizeof(key), "user-%d", idx % 20);
    if (m->key_len != strlen(key) || memcmp(m->key, key, m->key_len)) g->bad++;
    if (strcmp(m->topic, IT_TOPIC("events")) || m->timestamp_ms <= 0) g->bad++;
    /* headers through the contract, cross-checked on the client message */
    const void *hv = NULL;
    size_t hl = 0;
    snprintf(trace, sizeof(trace), "t-%d", idx);
    if (!sr_kafka_msg_header(m, "trace-id", &hv, &hl) || hl != strlen(trace) ||
        memcmp(hv, trace, hl))
      g->bad++;
    if (!sr_kafka_msg_header(m, "flag", &hv, &hl) || hv != NULL || hl != 0) g->bad++;
    if (sr_kafka_msg_header(m, "absent", &hv, &hl)) g->bad++;
    rd_kafka_headers_t *hdrs = NULL;
    if (rd_kafka_message_headers(m->priv_, &hdrs) || rd_kafka_header_cnt(hdrs) != 2) g->bad++;
    if (g->n < 4096) {
      g->idx[g->n] = idx;
      g->part[g->n] = m->partition;
      g->off[g->n] = m->offset;
      g->n++;
    }
  }
}

/* Polls until `want` messages arrived in total or timeout_ms passed. */
static int consume(sr_ingest_t *in, got_t *g, int want, int timeout_ms) {
  sr_msg_t msgs[64];
  char err[512];
  int64_t end = sr_mono_us() + (int64_t)t_wait_ms(timeout_ms) * 1000;
  while (g->n < want && sr_mono_us() < end) {
    int n = sr_ingest_poll(in, msgs, 64, 100, 1000, err, sizeof(err));
    if (n < 0) {
      fprintf(stderr, "poll: %s\n", err);
      return -1;
    }
    take(g, msgs, n);
    sr_ingest_release(in, msgs, n);
  }
  return g->n;
}

/* Polls (serving callbacks) until the rebalance callback assigned
 * n_assign times; messages that arrive meanwhile go to g. */
static int wait_assigned(sr_ingest_t *in, rb_ctx_t *r, int n_assign, int timeout_ms, got_t *g) {
  sr_msg_t msgs[16];
  char err[256];
  int64_t end = sr_mono_us() + (int64_t)timeout_ms * 1000;
  while (r->n_assign < n_assign && sr_mono_us() < end) {
    int n = sr_ingest_poll(in, msgs, 16, 100, 0, err, sizeof(err));
    if (n < 0) return -1;
    if (g) take(g, msgs, n);
    sr_ingest_release(in, msgs, n);
  }
  return r->n_assign >= n_assign ? 0 : -1;
}

/* ------------------------------------------------------------------ tests */

TEST(broker_metadata) {
  char err[512];
  it_cluster_t *c = it_cluster_new(1, NPART);
  T_ASSERT(c);
  const char *bs = it_cluster_bootstrap(c);
  const char *none = IT_TOPIC("no-such-topic"), *extra = IT_TOPIC("extra");
  if (it_cluster_mock(c))
    T_ASSERT(strncmp(bs, "127.0.0.1:", 10) == 0 || strncmp(bs, "localhost:", 10) == 0);
  const int wait = t_wait_ms(5000);
  T_EQ_INT(sr_kafka_partition_count(bs, IT_TOPIC("events"), NULL, 0, wait, err, sizeof(err)),
           NPART);
  T_EQ_INT(
      sr_kafka_partition_count(bs, IT_TOPIC("recommendations"), NULL, 0, wait, err, sizeof(err)),
      NPART);
  T_EQ_INT(sr_kafka_partition_count(bs, IT_TOPIC("events.dlq"), NULL, 0, wait, err, sizeof(err)),
           NPART);
  err[0] = 0;
  T_EQ_INT(sr_kafka_partition_count(bs, none, NULL, 0, wait, err, sizeof(err)), -1);
  T_ASSERT_MSG(strstr(err, none) != NULL, "errstr: %s", err);
  /* the metadata probe must not have auto-created it */
  T_EQ_INT(sr_kafka_partition_count(bs, none, NULL, 0, wait, err, sizeof(err)), -1);
  T_EQ_INT(it_cluster_topic_create(c, extra, 3), SR_OK);
  T_EQ_INT(sr_kafka_partition_count(bs, extra, NULL, 0, wait, err, sizeof(err)), 3);
  if (!it_cluster_mock(c)) {
    /* the Admin API (the mock does not serve it): an existing topic with the
     * count asked for is fine and reported as such; another count is an
     * error that names both; delete removes it */
    sr_kafka_topic_spec_t s = {.name = extra, .partitions = 3, .replication = -1};
    sr_kafka_topic_outcome_t o = SR_KAFKA_TOPIC_FAILED;
    T_EQ_INT(sr_kafka_topics_create(bs, &s, 1, NULL, 0, t_wait_ms(30000), &o, err, sizeof(err)),
             SR_OK);
    T_EQ_INT(o, SR_KAFKA_TOPIC_EXISTED);
    s.partitions = 5;
    T_EQ_INT(sr_kafka_topics_create(bs, &s, 1, NULL, 0, t_wait_ms(30000), &o, err, sizeof(err)),
             SR_ERR_STATE);
    T_ASSERT_MSG(strstr(err, "3 partitions") && strstr(err, "5"), "errstr: %s", err);
    T_EQ_INT(o, SR_KAFKA_TOPIC_FAILED);
    /* a new one with a topic config, created and ready at once */
    static const sr_kv_t cfg[] = {{"cleanup.policy", "delete"}};
    s = (sr_kafka_topic_spec_t){
        .name = none, .partitions = 2, .replication = -1, .config = cfg, .n_config = 1};
    T_EQ_INT(sr_kafka_topics_create(bs, &s, 1, NULL, 0, t_wait_ms(30000), &o, err, sizeof(err)),
             SR_OK);
    T_EQ_INT(o, SR_KAFKA_TOPIC_CREATED);
    T_EQ_INT(sr_kafka_partition_count(bs, none, NULL, 0, wait, err, sizeof(err)), 2);
    /* a config the broker refuses is an error with the broker's reason */
    static const sr_kv_t badcfg[] = {{"cleanup.policy", "sometimes"}};
    s = (sr_kafka_topic_spec_t){.name = IT_TOPIC("bad-config"),
                                .partitions = 1,
                                .replication = -1,
                                .config = badcfg,
                                .n_config = 1};
    T_EQ_INT(sr_kafka_topics_create(bs, &s, 1, NULL, 0, t_wait_ms(30000), &o, err, sizeof(err)),
             SR_ERR_KAFKA);
    T_ASSERT_MSG(strstr(err, "bad-config") && strstr(err, "sometimes"), "errstr: %s", err);
    T_EQ_INT(sr_kafka_topics_delete(bs, &none, 1, NULL, 0, t_wait_ms(30000), err, sizeof(err)),
             SR_OK);
    int64_t end = sr_mono_us() + (int64_t)t_wait_ms(30000) * 1000;
    while (sr_kafka_partition_count(bs, none, NULL, 0, wait, err, sizeof(err)) != -1 &&
           sr_mono_us() < end)
      usleep(100 * 1000);
    T_EQ_INT(sr_kafka_partition_count(bs, none, NULL, 0, wait, err, sizeof(err)), -1);
  }
  it_cluster_destroy(c);
}

/* The mock cluster's own interface: several brokers, their ids checked. */
TEST(mock_brokers) {
  char err[512];
  sr_broker_t *b = NULL;
  /* three brokers: one bootstrap address each */
  b = sr_broker_new(3, 2, err, sizeof(err));
  T_ASSERT_MSG(b, "sr_broker_new(3): %s", err);
  const char *c1 = strchr(sr_broker_bootstrap(b), ',');
  T_ASSERT(c1 && strchr(c1 + 1, ','));
  T_EQ_INT(sr_kafka_partition_count(sr_broker_bootstrap(b), IT_TOPIC("events"), NULL, 0, 5000, err,
                                    sizeof(err)),
           2);
  T_EQ_INT(sr_broker_set_down(b, 99, 1), SR_ERR_INVALID_ARG);
  sr_broker_destroy(b);
  T_ASSERT(sr_broker_new(0, 4, err, sizeof(err)) == NULL);
}

TEST(conf_errors) {
  char err[512];
  sr_kv_t bad[] = {{"no.such.property", "1"}};
  sr_ingest_conf_t ic = {.brokers = "127.0.0.1:1",
                         .group = IT_GROUP("g"),
                         .topic = IT_TOPIC("events"),
                         .kafka = bad,
                         .n_kafka = 1};
  err[0] = 0;
  T_ASSERT(sr_ingest_new(&ic, err, sizeof(err)) == NULL);
  T_ASSERT_MSG(strstr(err, "no.such.property") != NULL, "errstr: %s", err);

  sr_kv_t badval[] = {{"linger.ms", "soon"}};
  sr_publish_conf_t pc = {.brokers = "127.0.0.1:1", .kafka = badval, .n_kafka = 1};
  err[0] = 0;
  T_ASSERT(sr_publish_new(&pc, err, sizeof(err)) == NULL);
  T_ASSERT_MSG(strstr(err, "linger.ms") != NULL, "errstr: %s", err);

  ic.kafka = NULL;
  ic.n_kafka = 0;
  ic.group = NULL;
  T_ASSERT(sr_ingest_new(&ic, err, sizeof(err)) == NULL);
}

TEST(produce_consume_commit) {
  enum { N = 200, M = 10 };
  char err[512];
  int seen[N + M] = {0};
  dr_ctx_t d = {.seen = seen, .cap = N + M};
  rb_ctx_t r = {0};
  got_t *g = sr_calloc(1, sizeof(*g));
  it_cluster_t *c = it_cluster_new(1, NPART);
  T_ASSERT(c);
  const char *bs = it_cluster_bootstrap(c);

  sr_publish_t *p = mk_pub(bs, &d, NULL, 0);
  T_ASSERT(p);
  T_EQ_INT(send_range(p, 0, N), 0);
  T_EQ_INT(sr_publish_flush(p, 10000), SR_OK);
  T_EQ_INT(sr_publish_outq_len(p), 0);
  T_EQ_INT(d.ok, N);
  T_EQ_INT(d.failed, 0);
  for (int i = 0; i < N; i++)
    T_ASSERT_MSG(seen[i] == 1, "message %d reported %d times", i, seen[i]);

  sr_ingest_t *in = mk_in(bs, IT_GROUP("g-0110"), &r);
  T_ASSERT(in);
  T_EQ_INT(consume(in, g, N, 30000), N);
  T_EQ_INT(g->bad, 0);
  /* rebalance: one assignment of all partitions, before any message */
  T_EQ_INT(r.n_assign, 1);
  T_EQ_INT(r.n_assigned, NPART);
  for (int i = 0; i < NPART; i++)
    T_EQ_INT(r.assigned[i], i);

  /* every index once; a key always maps to one partition; offsets of each
   * partition are 0,1,2,... in arrival order */
  int count[N] = {0}, key_part[20], nparts_used = 0;
  int64_t next_off[NPART] = {0};
  for (int k = 0; k < 20; k++)
    key_part[k] = -1;
  for (int i = 0; i < g->n; i++) {
    int idx = g->idx[i], pt = g->part[i];
    T_ASSERT(idx >= 0 && idx < N && pt >= 0 && pt < NPART);
    count[idx]++;
    if (key_part[idx % 20] < 0) key_part[idx % 20] = pt;
    T_ASSERT_MSG(key_part[idx % 20] == pt, "key user-%d on partitions %d and %d", idx % 20,
                 key_part[idx % 20], pt);
    T_ASSERT_MSG(g->off[i] == next_off[pt], "partition %d: offset %" PRId64 ", expected %" PRId64,
                 pt, g->off[i], next_off[pt]);
    next_off[pt]++;
  }
  for (int i = 0; i < N; i++)
    T_ASSERT_MSG(count[i] == 1, "value-%d seen %d times", i, count[i]);
  for (int pt = 0; pt < NPART; pt++)
    nparts_used += next_off[pt] > 0;
  T_ASSERT(nparts_used >= 2); /* 20 keys spread over the partitions */

  /* commit the next offsets and read them back from the coordinator */
  int32_t parts[NPART] = {0, 1, 2, 3};
  int64_t committed[NPART];
  T_EQ_INT(sr_ingest_commit(in, parts, next_off, NPART, 0, err, sizeof(err)), SR_OK);
  T_EQ_INT(sr_ingest_committed(in, parts, committed, NPART, 5000), SR_OK);
  for (int pt = 0; pt < NPART; pt++)
    T_EQ_INT(committed[pt], next_off[pt]);

  /* leaving the group revokes everything through the callback */
  sr_ingest_close(in);
  T_EQ_INT(r.n_revoke, 1);
  T_EQ_INT(r.n_revoked, NPART);
  sr_ingest_close(in); /* idempotent */
  sr_ingest_destroy(in);

  /* a new member of the same group resumes at the commit: only new data */
  T_EQ_INT(send_range(p, N, N + M), 0);
  T_EQ_INT(sr_publish_flush(p, 10000), SR_OK);
  T_EQ_INT(d.ok, N + M);
  rb_ctx_t r2 = {0};
  memset(g, 0, sizeof(*g));
  in = mk_in(bs, IT_GROUP("g-0110"), &r2);
  T_ASSERT(in);
  T_EQ_INT(wait_assigned(in, &r2, 1, 30000, g), 0);
  T_EQ_INT(consume(in, g, M + 1, 3000), M); /* waits the full 3 s for an extra one */
  T_EQ_INT(g->bad, 0);
  for (int i = 0; i < g->n; i++) {
    T_ASSERT_MSG(g->idx[i] >= N, "re-read old message value-%d", g->idx[i]);
    T_ASSERT(g->off[i] >= next_off[g->part[i]]);
  }
  sr_ingest_destroy(in);

  sr_publish_destroy(p);
  it_cluster_destroy(c);
  sr_free(g);
}

TEST(pause_resume) {
  dr_ctx_t d = {0};
  rb_ctx_t r = {0};
  got_t *g = sr_calloc(1, sizeof(*g));
  it_cluster_t *c = it_cluster_new(1, NPART);
  T_ASSERT(c);
  sr_publish_t *p = mk_pub(it_cluster_bootstrap(c), &d, NULL, 0);
  sr_ingest_t *in = mk_in(it_cluster_bootstrap(c), IT_GROUP("g-pause"), &r);
  T_ASSERT(p && in);
  T_EQ_INT(wait_assigned(in, &r, 1, 20000, NULL), 0);

  sr_ingest_pause(in, 1);
  /* Pausing is an op librdkafka's main thread applies later. Under TSan one
   * run in 12 got 4 of the 5 messages after the resume; our reading is that a
   * message fetched before the pause took effect was purged by it and 2.0.2
   * resumed after it (nothing consumed yet). Let the pause take effect before
   * producing: the case tests that a paused partition delivers nothing and a
   * resumed one everything. (The pipeline never pauses: it stops polling.) */
  T_EQ_INT(consume(in, g, 1, 500), 0);
  T_EQ_INT(send_range(p, 0, 5), 0);
  T_EQ_INT(sr_publish_flush(p, 10000), SR_OK);
  T_EQ_INT(consume(in, g, 1, 1500), 0); /* paused: nothing arrives */
  sr_ingest_pause(in, 0);
  T_EQ_INT(consume(in, g, 5, 10000), 5);
  T_EQ_INT(g->bad, 0);

  sr_ingest_destroy(in);
  sr_publish_destroy(p);
  it_cluster_destroy(c);
  sr_free(g);
}

TEST(two_members_split_partitions) {
  char err[512];
  rb_ctx_t r1 = {0}, r2 = {0};
  it_cluster_t *cl = it_cluster_new(1, NPART);
  T_ASSERT(cl);
  sr_ingest_t *a = mk_in(it_cluster_bootstrap(cl), IT_GROUP("g-two"), &r1);
  T_ASSERT(a);
  T_EQ_INT(wait_assigned(a, &r1, 1, 20000, NULL), 0);
  T_EQ_INT(r1.n_assigned, NPART);

  /* a second member joins: the first gives everything back (eager
   * protocol), then both get half. One thread polls both handles, each
   * handle only from this thread. */
  sr_ingest_t *c = mk_in(it_cluster_bootstrap(cl), IT_GROUP("g-two"), &r2);
  T_ASSERT(c);
  sr_msg_t msgs[8];
  int64_t end = sr_mono_us() + 30 * 1000000LL;
  /* Wait for the settled state rather than an exact sequence: under load
   * the coordinator may run more than one round (a member that was slow
   * to rejoin), each revoking everything first. */
  while (!(r1.owns && r2.owns && r1.n_assigned + r2.n_assigned == NPART) && sr_mono_us() < end) {
    int n = sr_ingest_poll(a, msgs, 8, 50, 0, err, sizeof(err));
    if (n > 0) sr_ingest_release(a, msgs, n);
    n = sr_ingest_poll(c, msgs, 8, 50, 0, err, sizeof(err));
    if (n > 0) sr_ingest_release(c, msgs, n);
  }
  T_ASSERT(r1.owns && r2.owns);
  T_ASSERT(r1.n_revoke >= 1);
  T_EQ_INT(r1.first_revoked, NPART); /* the first member gave back all four */
  T_ASSERT(r1.n_assign >= 2 && r2.n_assign >= 1);
  T_ASSERT(r1.n_assigned > 0 && r2.n_assigned > 0);
  T_EQ_INT(r1.n_assigned + r2.n_assigned, NPART);
  int all[NPART], k = 0;
  for (int i = 0; i < r1.n_assigned; i++)
    all[k++] = r1.assigned[i];
  for (int i = 0; i < r2.n_assigned; i++)
    all[k++] = r2.assigned[i];
  qsort(all, NPART, sizeof(int), cmp_int);
  for (int i = 0; i < NPART; i++)
    T_EQ_INT(all[i], i);

  sr_ingest_destroy(c);
  sr_ingest_destroy(a);
  it_cluster_destroy(cl);
}

TEST(broker_down_holds_then_delivers) {
  int seen[16] = {0};
  dr_ctx_t d = {.seen = seen, .cap = 16};
  it_cluster_t *c = it_cluster_new(1, NPART);
  T_ASSERT(c);
  sr_broker_t *b = it_cluster_mock(c);
  static const sr_kv_t kv[] = {{"reconnect.backoff.max.ms", "500"}};
  sr_publish_t *p = mk_pub(it_cluster_bootstrap(c), &d, kv, 1);
  T_ASSERT(p);
  /* warm up: connection, metadata and producer id in place */
  T_EQ_INT(send_range(p, 0, 1), 0);
  T_EQ_INT(sr_publish_flush(p, 10000), SR_OK);
  T_EQ_INT(d.ok, 1);

  T_EQ_INT(sr_broker_set_down(b, 1, 1), SR_OK);
  T_EQ_INT(send_range(p, 1, 6), 0);
  int64_t end = sr_mono_us() + 2000000;
  while (sr_mono_us() < end)
    sr_publish_poll(p, 100);
  /* observed: no report at all while the only broker is down; the messages
   * wait in the client (message.timeout.ms defaults to 300 s) */
  T_EQ_INT(d.ok, 1);
  T_EQ_INT(d.failed, 0);
  T_EQ_INT(sr_publish_outq_len(p), 5);

  T_EQ_INT(sr_broker_set_down(b, 1, 0), SR_OK);
  T_EQ_INT(sr_publish_flush(p, 30000), SR_OK);
  T_EQ_INT(d.ok, 6);
  T_EQ_INT(d.failed, 0);
  for (int i = 0; i < 6; i++)
    T_EQ_INT(seen[i], 1);
  sr_publish_destroy(p);
  it_cluster_destroy(c);
}

TEST(broker_down_delivery_timeout) {
  int seen[16] = {0};
  dr_ctx_t d = {.seen = seen, .cap = 16};
  static const sr_kv_t kv[] = {{"message.timeout.ms", "1500"}};
  it_cluster_t *c = it_cluster_new(1, NPART);
  T_ASSERT(c);
  sr_broker_t *b = it_cluster_mock(c);
  sr_publish_t *p = mk_pub(it_cluster_bootstrap(c), &d, kv, 1);
  T_ASSERT(p);
  T_EQ_INT(send_range(p, 0, 1), 0);
  T_EQ_INT(sr_publish_flush(p, 10000), SR_OK);

  T_EQ_INT(sr_broker_set_down(b, 1, 1), SR_OK);
  T_EQ_INT(send_range(p, 1, 4), 0);
  int64_t end = sr_mono_us() + 10 * 1000000LL;
  while (d.failed < 3 && sr_mono_us() < end)
    sr_publish_poll(p, 100);
  /* observed: each message fails once with a local timeout, after ~1.5 s */
  T_EQ_INT(d.ok, 1);
  T_EQ_INT(d.failed, 3);
  T_ASSERT_MSG(strstr(d.last_reason, "timed out") != NULL, "reason: %s", d.last_reason);
  for (int i = 1; i < 4; i++)
    T_EQ_INT(seen[i], 1);
  T_EQ_INT(sr_publish_outq_len(p), 0);

  T_EQ_INT(sr_broker_set_down(b, 1, 0), SR_OK);
  sr_publish_destroy(p);
  it_cluster_destroy(c);
}

TEST(produce_errors_retried_without_duplicates) {
  enum { N = 50 };
  int seen[N] = {0};
  dr_ctx_t d = {.seen = seen, .cap = N};
  rb_ctx_t r = {0};
  got_t *g = sr_calloc(1, sizeof(*g));
  it_cluster_t *c = it_cluster_new(1, NPART);
  T_ASSERT(c);
  sr_broker_t *b = it_cluster_mock(c);
  sr_publish_t *p = mk_pub(it_cluster_bootstrap(c), &d, NULL, 0);
  T_ASSERT(p);
  /* the next 3 Produce requests (ApiKey 0) fail with NOT_LEADER_OR_FOLLOWER
   * (6), which the client retries after a metadata refresh */
  sr_broker_push_errors(b, 0, 3, 6);
  T_EQ_INT(send_range(p, 0, N), 0);
  T_EQ_INT(sr_publish_flush(p, 30000), SR_OK);
  T_EQ_INT(d.ok, N);
  T_EQ_INT(d.failed, 0);
  for (int i = 0; i < N; i++)
    T_EQ_INT(seen[i], 1);

  sr_ingest_t *in = mk_in(it_cluster_bootstrap(c), IT_GROUP("g-retry"), &r);
  T_ASSERT(in);
  T_EQ_INT(consume(in, g, N + 1, 5000), N); /* exactly N in the log */
  T_EQ_INT(g->bad, 0);
  int count[N] = {0};
  for (int i = 0; i < g->n; i++)
    count[g->idx[i]]++;
  for (int i = 0; i < N; i++)
    T_EQ_INT(count[i], 1);
  sr_ingest_destroy(in);
  sr_publish_destroy(p);
  it_cluster_destroy(c);
  sr_free(g);
}

/* Reads a reader until at_end (to_end) or until want messages (live). */
static int drain_reader(sr_kafka_reader_t *rd, got_t *g, int want, int timeout_ms) {
  char err[512];
  sr_msg_t m;
  int64_t end = sr_mono_us() + (int64_t)timeout_ms * 1000;
  while (!sr_kafka_reader_at_end(rd) && (want < 0 || g->n < want) && sr_mono_us() < end) {
    int n = sr_kafka_reader_next(rd, &m, 100, err, sizeof(err));
    if (n < 0) {
      fprintf(stderr, "reader: %s\n", err);
      return -1;
    }
    if (n == 1 && m.err == SR_OK) take(g, &m, 1);
  }
  return g->n;
}

static int count_cb(void *opaque, const sr_msg_t *m) {
  (*(int *)opaque)++;
  return 0;
}

TEST(topic_reader) {
  enum { N = 120, M = 7 };
  char err[512];
  dr_ctx_t d = {0};
  got_t *g = sr_calloc(1, sizeof(*g));
  it_cluster_t *c = it_cluster_new(1, NPART);
  T_ASSERT(c);
  const char *bs = it_cluster_bootstrap(c);
  sr_publish_t *p = mk_pub(bs, &d, NULL, 0);
  T_ASSERT(p);
  T_EQ_INT(send_range(p, 0, N), 0);
  T_EQ_INT(sr_publish_flush(p, 10000), SR_OK);
  T_EQ_INT(d.ok, N);

  /* snapshot: from the beginning to the end offsets found at start */
  sr_kafka_reader_t *rd = NULL;
  sr_kafka_reader_conf_t rc = {.brokers = bs,
                               .topic = IT_TOPIC("events"),
                               .from_beginning = 1,
                               .to_end = 1,
                               .connect_timeout_ms = 5000};
  T_EQ_INT(sr_kafka_reader_new(&rc, &rd, err, sizeof(err)), SR_OK);
  T_EQ_INT(sr_kafka_reader_partitions(rd), NPART);
  /* written after the reader started: not part of its snapshot */
  T_EQ_INT(send_range(p, N, N + M), 0);
  T_EQ_INT(sr_publish_flush(p, 10000), SR_OK);
  T_EQ_INT(drain_reader(rd, g, -1, 20000), N);
  T_ASSERT(sr_kafka_reader_at_end(rd));
  T_EQ_INT(sr_kafka_reader_partitions_at_end(rd), NPART);
  T_EQ_INT(g->bad, 0); /* keys, headers (sr_kafka_msg_header) and topic as sent */
  int count[N] = {0};
  int64_t next_off[NPART] = {0};
  for (int i = 0; i < g->n; i++) {
    T_ASSERT_MSG(g->idx[i] < N, "read value-%d, written after the snapshot", g->idx[i]);
    count[g->idx[i]]++;
    T_EQ_INT(g->off[i], next_off[g->part[i]]); /* each partition in order from 0 */
    next_off[g->part[i]]++;
  }
  for (int i = 0; i < N; i++)
    T_EQ_INT(count[i], 1);
  sr_msg_t m;
  T_EQ_INT(sr_kafka_reader_next(rd, &m, 300, err, sizeof(err)), 0); /* at end: nothing more */
  sr_kafka_reader_destroy(rd);

  /* live from the end: only what is written once it is at the end */
  memset(g, 0, sizeof(*g));
  rc.from_beginning = 0;
  rc.to_end = 0;
  T_EQ_INT(sr_kafka_reader_new(&rc, &rd, err, sizeof(err)), SR_OK);
  int64_t end = sr_mono_us() + 20 * 1000000LL;
  while (sr_kafka_reader_partitions_at_end(rd) < NPART && sr_mono_us() < end)
    T_ASSERT(sr_kafka_reader_next(rd, &m, 100, err, sizeof(err)) == 0); /* old data: none */
  T_EQ_INT(sr_kafka_reader_partitions_at_end(rd), NPART);
  T_ASSERT(!sr_kafka_reader_at_end(rd)); /* live readers never end */
  T_EQ_INT(send_range(p, N + M, N + 2 * M), 0);
  T_EQ_INT(sr_publish_flush(p, 10000), SR_OK);
  T_EQ_INT(drain_reader(rd, g, M, 20000), M);
  T_EQ_INT(g->bad, 0);
  for (int i = 0; i < g->n; i++)
    T_ASSERT(g->idx[i] >= N + M);
  sr_kafka_reader_destroy(rd);

  /* the whole-topic read of `train --brokers` */
  int seen = 0;
  T_EQ_INT(sr_kafka_read_topic(bs, IT_TOPIC("events"), NULL, 0, count_cb, &seen, 20000, err,
                               sizeof(err)),
           N + 2 * M);
  T_EQ_INT(seen, N + 2 * M);
  /* an empty topic is at its end at once */
  rc.topic = IT_TOPIC("recommendations");
  rc.from_beginning = rc.to_end = 1;
  T_EQ_INT(sr_kafka_reader_new(&rc, &rd, err, sizeof(err)), SR_OK);
  T_ASSERT(sr_kafka_reader_at_end(rd));
  T_EQ_INT(sr_kafka_reader_next(rd, &m, 100, err, sizeof(err)), 0);
  sr_kafka_reader_destroy(rd);

  /* errors: a bad property is SR_ERR_CONF (before any request); a missing
   * topic is not, and names the topic */
  static const sr_kv_t bad[] = {{"fetch.wait.max.ms", "never"}};
  rc.topic = IT_TOPIC("events");
  rc.kafka = bad;
  rc.n_kafka = 1;
  T_EQ_INT(sr_kafka_reader_new(&rc, &rd, err, sizeof(err)), SR_ERR_CONF);
  T_ASSERT(rd == NULL);
  T_ASSERT_MSG(strstr(err, "fetch.wait.max.ms") != NULL, "errstr: %s", err);
  rc.kafka = NULL;
  rc.n_kafka = 0;
  rc.topic = IT_TOPIC("no-such-topic");
  sr_err_t e = sr_kafka_reader_new(&rc, &rd, err, sizeof(err));
  T_ASSERT(e != SR_OK && e != SR_ERR_CONF && rd == NULL);
  T_ASSERT_MSG(strstr(err, rc.topic) != NULL, "errstr: %s", err);

  sr_publish_destroy(p);
  it_cluster_destroy(c);
  sr_free(g);
}

TEST_MAIN(RUN(broker_metadata); RUN_MOCK_ONLY(mock_brokers); RUN(conf_errors);
          RUN(produce_consume_commit); RUN(pause_resume); RUN(two_members_split_partitions);
          RUN_MOCK_ONLY(broker_down_holds_then_delivers);
          RUN_MOCK_ONLY(broker_down_delivery_timeout);
          RUN_MOCK_ONLY(produce_errors_retried_without_duplicates); RUN(topic_reader))
