/*
 * Poison pills: one event must never stop the worker, on this run or the
 * next. Each case below stopped serve (or committed without output) before:
 *  - an output larger than message.max.bytes (a 600 KB user id carried by
 *    key and value, an undecodable 1 MiB message whose dead letter is the
 *    input plus headers): now a dead letter with key and value cut to
 *    1 KiB / 64 KiB and headers giving the original sizes;
 *  - a recommendation too large to produce: its event is dead-lettered;
 *  - a recommendation that cannot be encoded (an empty item id in the
 *    model): its event is dead-lettered, never committed without output;
 *  - a new user in a partition whose state is full: dead-lettered
 *    (STATE_FULL), where sr_state_get's NULL was dereferenced.
 * In every case all offsets are committed and every dead letter delivered.
 */
#include "itest.h"

#define N_PARTS 2

static int total_committed(const char *bs, const char *group, int n_parts) {
  int64_t c[8];
  if (it_committed(bs, group, n_parts, c) != 0) return -1;
  int64_t t = 0;
  for (int p = 0; p < n_parts; p++)
    t += c[p] > 0 ? c[p] : 0;
  return (int)t;
}

TEST(oversized_outputs_become_truncated_dead_letters) {
  char es[512];
  it_cluster_t *cluster = it_cluster_new(1, N_PARTS);
  T_ASSERT(cluster);
  const char *bs = it_cluster_bootstrap(cluster);
  it_events_t evs;
  it_events_make(&evs, 6, 20, 4, 7);
  const char *snap = t_tmp_path("poison1.snap");
  T_EQ_INT(it_snapshot(&evs, 8, snap), 0);
  T_EQ_INT(it_produce_events(bs, &evs), evs.n);

  /* a valid UserEvent whose user id (and so its key) is 600,000 bytes */
  const size_t big_id = 600000, big_garbage = 1 << 20;
  char *uid = malloc(big_id + 1);
  memset(uid, 'u', big_id);
  uid[big_id] = 0;
  sr_codec_t *c = sr_codec_new(1, 2, es, sizeof(es));
  sr_event_t ev = {.event_id = SR_STR("big-user"),
                   .user_id = sr_str_make(uid, big_id),
                   .item_id = SR_STR("i3"),
                   .type = SR_EV_VIEW,
                   .ts_ms = 1700000000000LL,
                   .scenario = SR_STR("default")};
  sr_buf_t vals[2];
  sr_buf_init(&vals[0]);
  sr_buf_init(&vals[1]);
  T_EQ_INT(sr_codec_encode_event(c, &ev, &vals[0]), SR_OK);
  /* an undecodable 1 MiB message */
  for (size_t i = 0; i < big_garbage; i++)
    sr_buf_putc(&vals[1], (unsigned char)('a' + i % 26));
  const char *keys[2] = {uid, "big-garbage"};
  T_EQ_INT(it_produce_raw(bs, IT_TOPIC("events"), keys, vals, 2), 2);

  sr_pipeline_stats_t st;
  sr_err_t e = it_run_pipeline(bs, snap, IT_GROUP("g-big"), 4, 3000, &st, es, sizeof(es));
  T_ASSERT_MSG(e == SR_OK, "run: %s", es);
  T_EQ_INT(st.consumed, evs.n + 2);
  T_EQ_INT(st.dlq, 2);
  T_EQ_INT(st.oversized, 2);
  T_EQ_INT(st.recs_sent, evs.n);
  T_EQ_INT(total_committed(bs, IT_GROUP("g-big"), N_PARTS), evs.n + 2);

  it_msg_t dlq[4];
  int got = it_read_topic(bs, IT_TOPIC("events.dlq"), 4, 8000, dlq);
  T_EQ_INT(got, 2);
  for (int d = 0; d < got; d++) {
    fprintf(stderr,
            "  dead letter %s: key %zu bytes, value %zu bytes, truncated=%s, original "
            "key %s / value %s bytes: %s\n",
            dlq[d].hdr_error, dlq[d].key_len, dlq[d].len, dlq[d].hdr_truncated, dlq[d].hdr_key_size,
            dlq[d].hdr_value_size, dlq[d].hdr_reason);
    T_EQ_STR(dlq[d].hdr_truncated, "true");
    int big_user = !strcmp(dlq[d].hdr_error, "INVALID_FIELD");
    T_ASSERT_MSG(big_user || !strcmp(dlq[d].hdr_error, "BAD_FRAMING"), "error %s",
                 dlq[d].hdr_error);
    size_t vlen = big_user ? vals[0].len : vals[1].len;
    size_t klen = big_user ? big_id : strlen("big-garbage");
    T_EQ_INT(atoll(dlq[d].hdr_key_size), klen);
    T_EQ_INT(atoll(dlq[d].hdr_value_size), vlen);
    T_EQ_INT(dlq[d].key_len, klen < 1024 ? klen : 1024);
    T_EQ_INT(dlq[d].len, 65536);
    /* the kept bytes are the input's first bytes */
    T_ASSERT(memcmp(dlq[d].value, big_user ? vals[0].data : vals[1].data, 65536) == 0);
  }
  it_msgs_free(dlq, got);
  sr_buf_free(&vals[0]);
  sr_buf_free(&vals[1]);
  free(uid);
  sr_codec_destroy(c);
  it_events_free(&evs);
  it_cluster_destroy(cluster);
  unlink(snap);
}

/* A model with n items called "<prefix>-NNN" plus the ids given, all
 * parameters finite, a decay factor of 0.5 and event weights 1. */
static sr_model_t *make_model(int n, int id_len, const char *odd_id, float odd_bias) {
  char es[256];
  int total = n + (odd_id ? 1 : 0);
  sr_str_t *ids = calloc((size_t)total, sizeof(*ids));
  char(*buf)[128] = calloc((size_t)total, 128);
  for (int i = 0; i < n; i++) {
    snprintf(buf[i], 128, "item-%03d-%0*d", i, id_len > 9 ? id_len - 9 : 1, 0);
    ids[i] = sr_str_cstr(buf[i]);
  }
  if (odd_id) ids[n] = sr_str_cstr(odd_id);
  sr_model_t *m = sr_model_new(SR_MODEL_DECAY, 4, total, ids, es, sizeof(es));
  if (!m) {
    fprintf(stderr, "make_model: %s\n", es);
    goto out;
  }
  sr_param_block_t b[8];
  int nb = sr_model_params(m, b, 8);
  unsigned s = 1;
  for (int k = 0; k < nb; k++)
    for (size_t j = 0; j < b[k].count; j++) {
      s = s * 1103515245u + 12345u;
      b[k].data[j] = !strcmp(b[k].name, "hparams")  ? 0.5f
                     : !strcmp(b[k].name, "type_w") ? 1.0f
                                                    : (float)((s >> 8) % 1000) / 1000.0f;
    }
  if (odd_id)
    for (int k = 0; k < nb; k++)
      if (!strcmp(b[k].name, "item_bias")) b[k].data[n] = odd_bias;
  sr_model_set_version(m, "test-poison");
out:
  free(ids);
  free(buf);
  return m;
}

/* Events of n_users users over the model's first items. */
static int produce_item_events(const char *bs, int n_users, int per_user) {
  char es[256];
  sr_codec_t *c = sr_codec_new(1, 2, es, sizeof(es));
  int n = n_users * per_user;
  sr_buf_t *vals = calloc((size_t)n, sizeof(*vals));
  const char **keys = calloc((size_t)n, sizeof(*keys));
  char(*users)[16] = calloc((size_t)n, 16), (*items)[128] = calloc((size_t)n, 128),
  (*evid)[16] = calloc((size_t)n, 16);
  for (int i = 0; i < n; i++) {
    snprintf(users[i], 16, "u%d", i % n_users);
    snprintf(items[i], 128, "item-%03d-%0*d", i % 7, 1, 0);
    snprintf(evid[i], 16, "e%d", i);
    sr_event_t ev = {.event_id = sr_str_cstr(evid[i]),
                     .user_id = sr_str_cstr(users[i]),
                     .item_id = sr_str_cstr(items[i]),
                     .type = SR_EV_CLICK,
                     .value = 1,
                     .ts_ms = 1700000000000LL + i,
                     .scenario = SR_STR("default")};
    sr_buf_init(&vals[i]);
    sr_codec_encode_event(c, &ev, &vals[i]);
    keys[i] = users[i];
  }
  int got = it_produce_raw(bs, IT_TOPIC("events"), keys, vals, n);
  for (int i = 0; i < n; i++)
    sr_buf_free(&vals[i]);
  free(vals), free(keys), free(users), free(items), free(evid);
  sr_codec_destroy(c);
  return got;
}

static void tiny_producer(sr_pipeline_conf_t *pc) {
  static const sr_kv_t kv[] = {{"message.max.bytes", "1000"}};
  pc->kafka_producer = kv;
  pc->n_kafka_producer = 1;
  pc->k = 100;
}

TEST(recommendation_too_large_is_dead_lettered) {
  char es[512];
  it_cluster_t *cluster = it_cluster_new(1, N_PARTS);
  T_ASSERT(cluster);
  const char *bs = it_cluster_bootstrap(cluster);
  /* 200 items with 10-byte ids: 100 of them make a ~2 KB recommendation,
   * over the producer's message.max.bytes of 1000 (its minimum). */
  sr_model_t *m = make_model(200, 10, NULL, 0);
  T_ASSERT(m);
  T_EQ_INT(produce_item_events(bs, 4, 3), 12);
  it_conf_hook = tiny_producer;
  sr_pipeline_stats_t st;
  sr_err_t e = it_run_model(bs, m, IT_GROUP("g-toolarge"), 4, 3000, &st, es, sizeof(es));
  it_conf_hook = NULL;
  T_ASSERT_MSG(e == SR_OK, "run: %s", es);
  T_EQ_INT(st.recs_sent, 0);
  T_EQ_INT(st.oversized, 12);
  T_EQ_INT(st.dlq, 12);
  T_EQ_INT(total_committed(bs, IT_GROUP("g-toolarge"), N_PARTS), 12);
  it_msg_t dlq[16];
  int got = it_read_topic(bs, IT_TOPIC("events.dlq"), 16, 8000, dlq);
  T_EQ_INT(got, 12);
  fprintf(stderr, "  %s: %s\n", dlq[0].hdr_error, dlq[0].hdr_reason);
  for (int d = 0; d < got; d++) {
    T_EQ_STR(dlq[d].hdr_error, "TOO_LARGE");
    T_ASSERT(dlq[d].hdr_truncated[0] == 0); /* the event itself fits: sent whole */
  }
  it_msgs_free(dlq, got);
  it_cluster_destroy(cluster);
}

TEST(unencodable_recommendation_is_dead_lettered) {
  char es[512];
  it_cluster_t *cluster = it_cluster_new(1, N_PARTS);
  T_ASSERT(cluster);
  const char *bs = it_cluster_bootstrap(cluster);
  /* an item with an empty id, scored first for everyone: the Avro encoder
   * refuses the recommendation (the snapshot loader refuses such models;
   * this is the pipeline's own line of defence) */
  sr_model_t *m = make_model(20, 10, "", 1000.0f);
  if (!m) {
    fprintf(stderr, "  sr_model_new refuses an empty item id: the case cannot arise\n");
    it_cluster_destroy(cluster);
    return;
  }
  T_EQ_INT(produce_item_events(bs, 3, 2), 6);
  sr_pipeline_stats_t st;
  sr_err_t e = it_run_model(bs, m, IT_GROUP("g-encode"), 4, 3000, &st, es, sizeof(es));
  T_ASSERT_MSG(e == SR_OK, "run: %s", es);
  T_EQ_INT(st.recs_sent, 0);
  T_EQ_INT(st.dlq, 6);
  T_EQ_INT(total_committed(bs, IT_GROUP("g-encode"), N_PARTS), 6);
  it_msg_t dlq[8];
  int got = it_read_topic(bs, IT_TOPIC("events.dlq"), 8, 8000, dlq);
  T_EQ_INT(got, 6);
  fprintf(stderr, "  %s: %s\n", dlq[0].hdr_error, dlq[0].hdr_reason);
  for (int d = 0; d < got; d++)
    T_EQ_STR(dlq[d].hdr_error, "ENCODE");
  it_msgs_free(dlq, got);
  it_cluster_destroy(cluster);
}

static void three_users(sr_pipeline_conf_t *pc) { pc->users_max = 3; }

TEST(full_partition_state_dead_letters_new_users) {
  char es[512];
  it_cluster_t *cluster = it_cluster_new(1, 1);
  T_ASSERT(cluster);
  const char *bs = it_cluster_bootstrap(cluster);
  sr_model_t *m = make_model(20, 10, NULL, 0);
  T_ASSERT(m);
  T_EQ_INT(produce_item_events(bs, 6, 3), 18); /* u0..u5 round-robin */
  it_conf_hook = three_users;
  sr_pipeline_stats_t st;
  sr_err_t e = it_run_model(bs, m, IT_GROUP("g-full"), 4, 3000, &st, es, sizeof(es));
  it_conf_hook = NULL;
  T_ASSERT_MSG(e == SR_OK, "run: %s", es);
  T_EQ_INT(st.users_peak, 3);
  T_EQ_INT(st.state_full, 9);
  T_EQ_INT(st.dlq, 9);
  T_EQ_INT(st.recs_sent, 9);
  T_EQ_INT(total_committed(bs, IT_GROUP("g-full"), 1), 18);
  it_msg_t dlq[12];
  int got = it_read_topic(bs, IT_TOPIC("events.dlq"), 12, 8000, dlq);
  T_EQ_INT(got, 9);
  fprintf(stderr, "  %s: %s\n", dlq[0].hdr_error, dlq[0].hdr_reason);
  for (int d = 0; d < got; d++) {
    T_EQ_STR(dlq[d].hdr_error, "STATE_FULL");
    T_ASSERT_MSG(!strcmp(dlq[d].key, "u3") || !strcmp(dlq[d].key, "u4") ||
                     !strcmp(dlq[d].key, "u5"),
                 "user %s refused, but u0..u2 came first", dlq[d].key);
  }
  it_msgs_free(dlq, got);
  it_cluster_destroy(cluster);
}

TEST_MAIN(RUN(oversized_outputs_become_truncated_dead_letters);
          RUN(recommendation_too_large_is_dead_lettered);
          RUN(unencodable_recommendation_is_dead_lettered);
          RUN(full_partition_state_dead_letters_new_users))
