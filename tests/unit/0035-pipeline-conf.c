/*
 * 0035: the pipeline's options are written once (src/pipeline/pipeline_conf.c):
 * the library defaults are the table's default texts, the range check of
 * sr_pipeline_new is the table's min/max and names the option, and a parsed
 * configuration fills every field. No Kafka.
 */
#include "streamrec/conf.h"
#include "streamrec/event.h"
#include "streamrec/pipeline.h"
#include "streamrec/seen.h"
#include "streamrec/state.h"
#include "test.h"

static const sr_conf_opt_t *row(const char *name) {
  int n;
  const sr_conf_opt_t *t = sr_pipeline_conf_table(&n);
  for (int i = 0; i < n; i++)
    if (!strcmp(t[i].name, name)) return &t[i];
  return NULL;
}

/* The defaults a library caller gets are the ones `serve` documents. */
TEST(defaults_are_the_table) {
  sr_pipeline_conf_t c;
  sr_pipeline_conf_defaults(&c);
  T_EQ_STR(c.group, row("group")->def);
  T_EQ_STR(c.group, "streamrec");
  T_EQ_STR(c.events_topic, "events");
  T_EQ_STR(c.recs_topic, "recommendations");
  T_EQ_STR(c.dlq_topic, "events.dlq");
  T_EQ_STR(c.client_id, "streamrec");
  T_EQ_INT(c.k, 10);
  T_EQ_INT(c.batch_max, 64);
  T_EQ_INT(c.batch_wait_us, 1000);
  T_EQ_INT(c.coalesce, 0);
  T_EQ_INT(c.event_schema_id, 1);
  T_EQ_INT(c.rec_schema_id, 2);
  T_EQ_INT(c.commit_interval_ms, 500);
  T_EQ_INT(c.max_inflight_batches, 4096);
  T_EQ_INT(c.id_max_bytes, 1024);
  T_EQ_INT(c.future_max_ms, 86400000);
  T_EQ_INT(c.key_check, 1);
  T_EQ_INT(c.users_max, SR_STATE_USERS_MAX);
  T_EQ_INT(c.shutdown_timeout_ms, 10000);
  T_EQ_INT(c.idle_exit_ms, 0);
  T_EQ_INT(c.max_events, 0);
  T_ASSERT(c.brokers == NULL && c.kafka == NULL && c.n_kafka == 0);
  /* the seen filter's defaults: its own macros, parsed, agree with its struct defaults */
  sr_seen_conf_t s;
  sr_seen_conf_defaults(&s);
  T_EQ_INT(c.seen.types, s.types);
  T_EQ_INT(c.seen.window_ms, s.window_ms);
  T_EQ_INT(c.seen.max, s.max);
}

/* Every integer row's default lies in its range; the defaults with brokers
 * pass the check, the bounds pass, one past either bound fails naming the
 * option. */
TEST(check_uses_the_table_ranges) {
  char es[256];
  sr_pipeline_conf_t c;
  sr_pipeline_conf_defaults(&c);
  T_EQ_INT(sr_pipeline_conf_check(&c, es, sizeof(es)), SR_ERR_CONF);
  T_ASSERT_MSG(strstr(es, "brokers") != NULL, "%s", es);
  c.brokers = "localhost:9092";
  T_EQ_INT(sr_pipeline_conf_check(&c, es, sizeof(es)), SR_OK);

  int n;
  const sr_conf_opt_t *t = sr_pipeline_conf_table(&n);
  T_ASSERT(n >= 20);
  for (int i = 0; i < n; i++) {
    if (t[i].type != SR_CONF_INT) continue;
    long long d = strtoll(t[i].def, NULL, 10);
    T_ASSERT_MSG(d >= t[i].min && d <= t[i].max, "%s default %lld outside %lld..%lld", t[i].name, d,
                 t[i].min, t[i].max);
  }
  c.k = 1000;
  c.batch_max = 1;
  T_EQ_INT(sr_pipeline_conf_check(&c, es, sizeof(es)), SR_OK);
  c.k = 1001;
  T_EQ_INT(sr_pipeline_conf_check(&c, es, sizeof(es)), SR_ERR_CONF);
  T_EQ_STR(es, "k: 1001 is out of range 1..1000");
  c.k = 10;
  c.batch_max = 0;
  T_EQ_INT(sr_pipeline_conf_check(&c, es, sizeof(es)), SR_ERR_CONF);
  T_EQ_STR(es, "batch.max: 0 is out of range 1..4096");
  c.batch_max = 64;
  c.max_inflight_batches = 1;
  T_EQ_INT(sr_pipeline_conf_check(&c, es, sizeof(es)), SR_ERR_CONF);
  T_ASSERT_MSG(!strncmp(es, "inflight.batches.max: 1 ", 24), "%s", es);
  c.max_inflight_batches = 2;
  c.users_max = (int64_t)SR_STATE_USERS_MAX + 1;
  T_EQ_INT(sr_pipeline_conf_check(&c, es, sizeof(es)), SR_ERR_CONF);
  T_ASSERT_MSG(!strncmp(es, "state.partition.users.max: ", 27), "%s", es);
  c.users_max = SR_STATE_USERS_MAX;
  c.seen.max = 0;
  T_EQ_INT(sr_pipeline_conf_check(&c, es, sizeof(es)), SR_ERR_CONF);
  T_ASSERT_MSG(!strncmp(es, "state.seen.max: 0 ", 18), "%s", es);
  c.seen.max = 1;
  c.seen.types = 0;
  T_EQ_INT(sr_pipeline_conf_check(&c, es, sizeof(es)), SR_ERR_CONF);
  T_ASSERT_MSG(strstr(es, "state.seen.types") != NULL, "%s", es);
}

/* A configuration parsed from keys fills each field and the kafka lists. */
TEST(from_conf_sets_every_row) {
  char es[256];
  int n;
  const sr_conf_opt_t *t = sr_pipeline_conf_table(&n);
  sr_conf_t *conf = sr_conf_new(t, n);
  T_EQ_INT(sr_conf_set(conf, "k", "7", es, sizeof(es)), SR_OK);
  T_EQ_INT(sr_conf_set(conf, "topic.events", "in", es, sizeof(es)), SR_OK);
  T_EQ_INT(sr_conf_set(conf, "batch.coalesce", "true", es, sizeof(es)), SR_OK);
  T_EQ_INT(sr_conf_set(conf, "event.key.check", "0", es, sizeof(es)), SR_OK);
  T_EQ_INT(sr_conf_set(conf, "state.seen.types", "VIEW, rate", es, sizeof(es)), SR_OK);
  T_EQ_INT(sr_conf_set(conf, "state.seen.max", "3", es, sizeof(es)), SR_OK);
  T_EQ_INT(sr_conf_set(conf, "event.time.future.max.ms", "9000000000", es, sizeof(es)), SR_OK);
  T_EQ_INT(sr_conf_set(conf, "schema.id.recommendation", "42", es, sizeof(es)), SR_OK);
  T_EQ_INT(sr_conf_set(conf, "max.events", "5", es, sizeof(es)), SR_OK);
  T_EQ_INT(sr_conf_set(conf, "kafka.consumer.fetch.min.bytes", "1", es, sizeof(es)), SR_OK);
  sr_pipeline_conf_t c;
  T_EQ_INT(sr_pipeline_conf_from(&c, conf, es, sizeof(es)), SR_OK);
  T_EQ_INT(c.k, 7);
  T_EQ_STR(c.events_topic, "in");
  T_EQ_STR(c.recs_topic, "recommendations");
  T_EQ_INT(c.coalesce, 1);
  T_EQ_INT(c.key_check, 0);
  T_EQ_INT(c.seen.types, (1u << SR_EV_VIEW) | (1u << SR_EV_RATE));
  T_EQ_INT(c.seen.max, 3);
  T_EQ_INT(c.future_max_ms, 9000000000LL);
  T_EQ_INT(c.rec_schema_id, 42);
  T_EQ_INT(c.max_events, 5);
  T_EQ_INT(c.batch_max, 64);
  T_ASSERT(c.brokers == NULL);
  T_EQ_INT(c.n_kafka, 0);
  T_EQ_INT(c.n_kafka_consumer, 1);
  T_EQ_STR(c.kafka_consumer[0].key, "fetch.min.bytes");
  T_EQ_INT(c.n_kafka_producer, 0);
  c.brokers = "b:1";
  T_EQ_INT(sr_pipeline_conf_check(&c, es, sizeof(es)), SR_OK);
  /* a value the table admits (a string) that the field cannot hold */
  T_EQ_INT(sr_conf_set(conf, "state.seen.types", "VIEW,NOPE", es, sizeof(es)), SR_OK);
  T_EQ_INT(sr_pipeline_conf_from(&c, conf, es, sizeof(es)), SR_ERR_CONF);
  T_ASSERT_MSG(!strncmp(es, "state.seen.types: ", 18) && strstr(es, "NOPE"), "%s", es);
  sr_conf_destroy(conf);
}

/* delivery.guarantee and transaction.scope take their names only;
 * exactly_once refuses kafka.* properties that would break it, and an
 * empty transactional.id. */
TEST(delivery_guarantee_options) {
  char es[256];
  int n;
  const sr_conf_opt_t *t = sr_pipeline_conf_table(&n);
  sr_pipeline_conf_t c;
  sr_pipeline_conf_defaults(&c);
  T_EQ_INT(c.delivery, SR_DELIVERY_AT_LEAST_ONCE);
  T_EQ_INT(c.txn_scope, SR_TXN_SCOPE_INTERVAL);
  T_ASSERT(c.transactional_id == NULL);
  T_EQ_STR(row("delivery.guarantee")->def, "at_least_once");

  sr_conf_t *conf = sr_conf_new(t, n);
  T_EQ_INT(sr_conf_set(conf, "delivery.guarantee", "exactly_once", es, sizeof(es)), SR_OK);
  T_EQ_INT(sr_conf_set(conf, "transaction.scope", "batch", es, sizeof(es)), SR_OK);
  T_EQ_INT(sr_conf_set(conf, "transactional.id", "worker-1", es, sizeof(es)), SR_OK);
  T_EQ_INT(sr_pipeline_conf_from(&c, conf, es, sizeof(es)), SR_OK);
  T_EQ_INT(c.delivery, SR_DELIVERY_EXACTLY_ONCE);
  T_EQ_INT(c.txn_scope, SR_TXN_SCOPE_BATCH);
  T_EQ_STR(c.transactional_id, "worker-1");
  c.brokers = "b:1";
  T_EQ_INT(sr_pipeline_conf_check(&c, es, sizeof(es)), SR_OK);

  /* unknown names: refused, naming the option and the accepted values */
  T_EQ_INT(sr_conf_set(conf, "delivery.guarantee", "exactly-once", es, sizeof(es)), SR_OK);
  T_EQ_INT(sr_pipeline_conf_from(&c, conf, es, sizeof(es)), SR_ERR_CONF);
  T_EQ_STR(es, "delivery.guarantee: 'exactly-once' is not at_least_once or exactly_once");
  T_EQ_INT(sr_conf_set(conf, "delivery.guarantee", "exactly_once", es, sizeof(es)), SR_OK);
  T_EQ_INT(sr_conf_set(conf, "transaction.scope", "txn", es, sizeof(es)), SR_OK);
  T_EQ_INT(sr_pipeline_conf_from(&c, conf, es, sizeof(es)), SR_ERR_CONF);
  T_EQ_STR(es, "transaction.scope: 'txn' is not interval or batch");
  T_EQ_INT(sr_conf_set(conf, "transaction.scope", "interval", es, sizeof(es)), SR_OK);

  /* exactly_once and kafka.* that would break it */
  T_EQ_INT(sr_conf_set(conf, "kafka.consumer.isolation.level", "read_uncommitted", es, sizeof(es)),
           SR_OK);
  T_EQ_INT(sr_pipeline_conf_from(&c, conf, es, sizeof(es)), SR_OK);
  c.brokers = "b:1";
  T_EQ_INT(sr_pipeline_conf_check(&c, es, sizeof(es)), SR_ERR_CONF);
  T_ASSERT_MSG(strstr(es, "isolation.level=read_uncommitted") != NULL, "%s", es);
  /* the same with at_least_once is the user's choice */
  c.delivery = SR_DELIVERY_AT_LEAST_ONCE;
  T_EQ_INT(sr_pipeline_conf_check(&c, es, sizeof(es)), SR_OK);
  sr_conf_destroy(conf);

  conf = sr_conf_new(t, n);
  T_EQ_INT(sr_conf_set(conf, "delivery.guarantee", "exactly_once", es, sizeof(es)), SR_OK);
  T_EQ_INT(sr_conf_set(conf, "kafka.enable.auto.commit", "true", es, sizeof(es)), SR_OK);
  T_EQ_INT(sr_pipeline_conf_from(&c, conf, es, sizeof(es)), SR_OK);
  c.brokers = "b:1";
  T_EQ_INT(sr_pipeline_conf_check(&c, es, sizeof(es)), SR_ERR_CONF);
  T_ASSERT_MSG(strstr(es, "enable.auto.commit=true") != NULL, "%s", es);
  sr_conf_destroy(conf);

  conf = sr_conf_new(t, n);
  T_EQ_INT(sr_conf_set(conf, "delivery.guarantee", "exactly_once", es, sizeof(es)), SR_OK);
  T_EQ_INT(sr_conf_set(conf, "kafka.producer.transactional.id", "x", es, sizeof(es)), SR_OK);
  T_EQ_INT(sr_pipeline_conf_from(&c, conf, es, sizeof(es)), SR_OK);
  c.brokers = "b:1";
  T_EQ_INT(sr_pipeline_conf_check(&c, es, sizeof(es)), SR_ERR_CONF);
  T_ASSERT_MSG(strstr(es, "the option transactional.id") != NULL, "%s", es);
  sr_conf_destroy(conf);

  sr_pipeline_conf_defaults(&c);
  c.brokers = "b:1";
  c.delivery = SR_DELIVERY_EXACTLY_ONCE;
  c.transactional_id = "";
  T_EQ_INT(sr_pipeline_conf_check(&c, es, sizeof(es)), SR_ERR_CONF);
  T_ASSERT_MSG(!strncmp(es, "transactional.id: empty", 23), "%s", es);
  c.transactional_id = NULL;
  T_EQ_INT(sr_pipeline_conf_check(&c, es, sizeof(es)), SR_OK);
  c.delivery = (sr_delivery_t)7;
  T_EQ_INT(sr_pipeline_conf_check(&c, es, sizeof(es)), SR_ERR_CONF);
  T_ASSERT_MSG(!strncmp(es, "delivery.guarantee: 7 ", 22), "%s", es);
}

TEST_MAIN(RUN(defaults_are_the_table); RUN(check_uses_the_table_ranges);
          RUN(from_conf_sets_every_row); RUN(delivery_guarantee_options))
