/*
 * Bad input never crashes the worker and is never dropped silently: each
 * undecodable message, and each decodable one that breaks the input rules
 * (NaN/Inf value, timestamp before 1970 or far ahead, an id over
 * event.id.max.bytes, a Kafka key that is not the user id, no key), reaches
 * events.dlq with its original key and value and headers naming the reason
 * and the source; events for unknown items update nothing but still get a
 * recommendation; offsets still advance. Consumer errors the client reports
 * for a partition are dead-lettered too, never skipped.
 */
#include "itest.h"

#define N_PARTS 2
#define N_BAD 12
#define APIKEY_FETCH 1
#define KERR_CORRUPT_MESSAGE                                                                       \
  2 /* a fetch error librdkafka passes to the application, then retries */

typedef struct bad_s {
  const char *key;
  const char *want_error; /* sr_err2name */
  sr_buf_t val;
} bad_t;

TEST(malformed_messages_go_to_dlq_with_headers) {
  char es[512];
  it_cluster_t *cluster = it_cluster_new(1, N_PARTS);
  T_ASSERT(cluster);
  const char *bs = it_cluster_bootstrap(cluster);
  it_events_t evs;
  it_events_make(&evs, 10, 20, 5, 3);
  const char *snap = t_tmp_path("dlq.snap");
  T_EQ_INT(it_snapshot(&evs, 8, snap), 0);
  T_EQ_INT(it_produce_events(bs, &evs), evs.n);

  /* The bad ones, plus one valid event for an item the model never saw. */
  sr_codec_t *c = sr_codec_new(1, 2, es, sizeof(es));
  bad_t bad[N_BAD] = {{"bad-text", "BAD_FRAMING", {0}},      {"bad-magic", "BAD_FRAMING", {0}},
                      {"bad-schema", "UNKNOWN_SCHEMA", {0}}, {"bad-trunc", "BAD_AVRO", {0}},
                      {"bad-nouser", "MISSING_FIELD", {0}},  {"bad-nan", "INVALID_FIELD", {0}},
                      {"bad-inf", "INVALID_FIELD", {0}},     {"bad-ts-min", "INVALID_FIELD", {0}},
                      {"bad-ts-max", "INVALID_FIELD", {0}},  {"bad-longid", "INVALID_FIELD", {0}},
                      {"someone-else", "KEY_MISMATCH", {0}}, {NULL, "KEY_MISMATCH", {0}}};
  sr_event_t good = {.event_id = SR_STR("x1"),
                     .user_id = SR_STR("u1"),
                     .item_id = SR_STR("i3"),
                     .type = SR_EV_VIEW,
                     .value = 0,
                     .ts_ms = 1700000000000LL,
                     .scenario = SR_STR("default")};
  for (int i = 0; i < N_BAD; i++)
    sr_buf_init(&bad[i].val);
  sr_buf_append(&bad[0].val, "hello, not avro", 15);
  sr_codec_encode_event(c, &good, &bad[1].val);
  bad[1].val.data[0] = 0x7b; /* JSON-looking first byte */
  sr_codec_encode_event(c, &good, &bad[2].val);
  bad[2].val.data[4] = 99; /* schema id 99 */
  sr_codec_encode_event(c, &good, &bad[3].val);
  bad[3].val.len -= 3; /* truncated body */
  /* Our encoder refuses an empty user id, so write that body by hand (Avro
   * binary: zigzag-varint string lengths, enum index, 4-byte float,
   * zigzag-varint long). */
  static const unsigned char nouser[] = {0,  0,   0,   0,   1, /* framing: magic 0, schema id 1 */
                                         4,  'x', '1',         /* event_id "x1" */
                                         0,                    /* user_id "" */
                                         4,  'i', '3',         /* item_id "i3" */
                                         0,                    /* type VIEW */
                                         0,  0,   0,   0,      /* value 0.0f */
                                         2,                    /* timestamp 1 */
                                         14, 'd', 'e', 'f', 'a', 'u', 'l', 't'};
  sr_buf_append(&bad[4].val, nouser, sizeof(nouser));
  /* Valid Avro, hostile values; each keyed by its own user id. */
  sr_event_t h = good;
  h.user_id = SR_STR("bad-nan"), h.value = NAN;
  sr_codec_encode_event(c, &h, &bad[5].val);
  h = good, h.user_id = SR_STR("bad-inf"), h.value = -INFINITY;
  sr_codec_encode_event(c, &h, &bad[6].val);
  h = good, h.user_id = SR_STR("bad-ts-min"), h.ts_ms = INT64_MIN;
  sr_codec_encode_event(c, &h, &bad[7].val);
  h = good, h.user_id = SR_STR("bad-ts-max"), h.ts_ms = INT64_MAX;
  sr_codec_encode_event(c, &h, &bad[8].val);
  char longitem[1100];
  memset(longitem, 'x', sizeof(longitem));
  h = good, h.user_id = SR_STR("bad-longid"), h.item_id = sr_str_make(longitem, 1025);
  sr_codec_encode_event(c, &h, &bad[9].val);
  sr_codec_encode_event(c, &good, &bad[10].val); /* user u1 under key someone-else */
  sr_codec_encode_event(c, &good, &bad[11].val); /* user u1 without a key */
  const char *keys[N_BAD];
  sr_buf_t vals[N_BAD];
  for (int i = 0; i < N_BAD; i++) {
    keys[i] = bad[i].key;
    vals[i] = bad[i].val;
  }
  T_EQ_INT(it_produce_raw(bs, IT_TOPIC("events"), keys, vals, N_BAD), N_BAD);
  sr_event_t unk = good;
  unk.event_id = SR_STR("x-unknown");
  unk.item_id = SR_STR("never-seen-item");
  sr_buf_t uv;
  sr_buf_init(&uv);
  sr_codec_encode_event(c, &unk, &uv);
  const char *ukey = "u1";
  T_EQ_INT(it_produce_raw(bs, IT_TOPIC("events"), &ukey, &uv, 1), 1);

  sr_pipeline_stats_t st;
  sr_err_t e = it_run_pipeline(bs, snap, IT_GROUP("g-dlq"), 1, 2000, &st, es, sizeof(es));
  T_ASSERT_MSG(e == SR_OK, "run: %s", es);
  int total = evs.n + N_BAD + 1;
  T_EQ_INT(st.consumed, total);
  T_EQ_INT(st.dlq, N_BAD);
  T_EQ_INT(st.rejected, 7);
  T_EQ_INT(st.unknown_items, 1);
  T_EQ_INT(st.recs_sent, evs.n + 1);

  /* Where did the bad ones land in the events topic? */
  it_msg_t *src = calloc((size_t)total + 5, sizeof(*src));
  T_EQ_INT(it_read_topic(bs, IT_TOPIC("events"), total + 5, 8000, src), total);
  it_msg_t dlq[N_BAD + 4];
  int got = it_read_topic(bs, IT_TOPIC("events.dlq"), N_BAD + 4, 8000, dlq);
  T_EQ_INT(got, N_BAD);
  for (int d = 0; d < got; d++) {
    int b = -1;
    for (int i = 0; i < N_BAD; i++)
      if (!strcmp(dlq[d].key, bad[i].key ? bad[i].key : "")) b = i;
    T_ASSERT_MSG(b >= 0, "unexpected DLQ key %s", dlq[d].key);
    T_EQ_STR(dlq[d].hdr_error, bad[b].want_error);
    T_ASSERT_MSG(dlq[d].hdr_reason[0], "empty reason header for %s", dlq[d].key);
    fprintf(stderr, "  dead letter %-13s %-14s %s\n", bad[b].key ? bad[b].key : "(no key)",
            dlq[d].hdr_error, dlq[d].hdr_reason);
    T_EQ_STR(dlq[d].hdr_topic, IT_TOPIC("events"));
    T_EQ_INT(dlq[d].len, bad[b].val.len);
    T_ASSERT(memcmp(dlq[d].value, bad[b].val.data, bad[b].val.len) == 0);
    /* partition/offset headers name the original message */
    int found = 0;
    for (int s = 0; s < total; s++)
      if (!strcmp(src[s].key, bad[b].key ? bad[b].key : "")) {
        char p[16], o[24];
        snprintf(p, sizeof(p), "%d", (int)src[s].partition);
        snprintf(o, sizeof(o), "%lld", (long long)src[s].offset);
        T_EQ_STR(dlq[d].hdr_partition, p);
        T_EQ_STR(dlq[d].hdr_offset, o);
        found = 1;
      }
    T_ASSERT(found);
  }
  /* The unknown-item event still got a recommendation. */
  it_msg_t *recs = calloc((size_t)evs.n + 5, sizeof(*recs));
  int nr = it_read_topic(bs, IT_TOPIC("recommendations"), evs.n + 1, 8000, recs);
  T_EQ_INT(nr, evs.n + 1);
  int unk_rec = 0;
  for (int i = 0; i < nr; i++) {
    sr_rec_t r;
    T_ASSERT(sr_codec_decode_rec(c, recs[i].value, recs[i].len, &r, es, sizeof(es)) == SR_OK);
    if (sr_str_eq(r.source_event_id, SR_STR("x-unknown"))) {
      unk_rec++;
      T_EQ_INT(r.n_items, 10);
    }
  }
  T_EQ_INT(unk_rec, 1);
  /* DLQ deliveries count as done: everything committed. */
  int64_t committed[N_PARTS];
  T_EQ_INT(it_committed(bs, IT_GROUP("g-dlq"), N_PARTS, committed), 0);
  T_EQ_INT(committed[0] + committed[1], total);

  it_msgs_free(recs, nr);
  free(recs);
  it_msgs_free(dlq, got);
  it_msgs_free(src, total);
  free(src);
  for (int i = 0; i < N_BAD; i++)
    sr_buf_free(&bad[i].val);
  sr_buf_free(&uv);
  sr_codec_destroy(c);
  it_events_free(&evs);
  it_cluster_destroy(cluster);
  unlink(snap);
}

/* A fetch that fails for a partition reaches the application as a consumer
 * error for that partition: it must come out as a dead letter naming the
 * partition, the fetch offset and the error, and the events still get
 * their recommendations once the fetch succeeds again. */
TEST(consumer_errors_are_dead_lettered) {
  char es[512];
  it_cluster_t *cluster = it_cluster_new(1, N_PARTS);
  T_ASSERT(cluster);
  const char *bs = it_cluster_bootstrap(cluster);
  it_events_t evs;
  it_events_make(&evs, 6, 20, 4, 5);
  const char *snap = t_tmp_path("dlq-consume.snap");
  T_EQ_INT(it_snapshot(&evs, 8, snap), 0);
  T_EQ_INT(it_produce_events(bs, &evs), evs.n);
  sr_broker_push_errors(it_cluster_mock(cluster), APIKEY_FETCH, 2, KERR_CORRUPT_MESSAGE);
  sr_pipeline_stats_t st;
  sr_err_t e = it_run_pipeline(bs, snap, IT_GROUP("g-consume-err"), 4, 3000, &st, es, sizeof(es));
  T_ASSERT_MSG(e == SR_OK, "run: %s", es);
  T_ASSERT_MSG(st.consume_errors >= 1, "no consumer error surfaced (%llu)",
               (unsigned long long)st.consume_errors);
  T_EQ_INT(st.dlq, st.consume_errors);
  T_EQ_INT(st.recs_sent, evs.n);
  it_msg_t dlq[16];
  int got = it_read_topic(bs, IT_TOPIC("events.dlq"), (int)st.dlq, 8000, dlq);
  T_EQ_INT(got, st.dlq);
  for (int d = 0; d < got; d++) {
    fprintf(stderr, "  dead letter [%s]@%s %s: %s\n", dlq[d].hdr_partition, dlq[d].hdr_offset,
            dlq[d].hdr_error, dlq[d].hdr_reason);
    T_EQ_STR(dlq[d].hdr_error, "CONSUME");
    T_ASSERT_MSG(strstr(dlq[d].hdr_reason, "INVALID_MSG"), "reason: %s", dlq[d].hdr_reason);
    T_EQ_STR(dlq[d].hdr_topic, IT_TOPIC("events"));
    T_ASSERT_MSG(atoi(dlq[d].hdr_partition) >= 0 && atoi(dlq[d].hdr_partition) < N_PARTS,
                 "partition header %s", dlq[d].hdr_partition);
    T_ASSERT_MSG(dlq[d].hdr_offset[0], "no offset header");
  }
  int64_t committed[N_PARTS];
  T_EQ_INT(it_committed(bs, IT_GROUP("g-consume-err"), N_PARTS, committed), 0);
  T_EQ_INT(committed[0] + committed[1], evs.n);
  it_msgs_free(dlq, got);
  it_events_free(&evs);
  it_cluster_destroy(cluster);
  unlink(snap);
}

TEST_MAIN(RUN(malformed_messages_go_to_dlq_with_headers);
          RUN_MOCK_ONLY(consumer_errors_are_dead_lettered))
