/*
 * 0090: Kafka configuration without a cluster: the one defaults table, the
 * startup check of kafka.* properties (a bad one named with the config
 * file line, or -X, it came from), and the one -X key=value parser.
 */
#include <stdio.h>
#include <string.h>

#include "streamrec/common.h"
#include "streamrec/conf.h"
#include "streamrec/kafka.h"
#include "test.h"

static const sr_conf_opt_t opts[] = {
    {"k", SR_CONF_INT, "10", 1, 1000, "items", "k"},
};

static const char *find_default(sr_kafka_client_t client, const char *key) {
  int n;
  const sr_kafka_default_t *d = sr_kafka_defaults(&n);
  for (int i = 0; i < n; i++)
    if (d[i].client == client && !strcmp(d[i].key, key)) return d[i].value;
  return NULL;
}

TEST(defaults_table) {
  /* every latency and safety default the clients relied on, once */
  static const struct {
    sr_kafka_client_t c;
    const char *k, *v;
  } want[] = {{SR_KAFKA_CONSUMER, "enable.auto.commit", "false"},
              {SR_KAFKA_CONSUMER, "enable.auto.offset.store", "false"},
              {SR_KAFKA_CONSUMER, "auto.offset.reset", "earliest"},
              {SR_KAFKA_CONSUMER, "enable.partition.eof", "false"},
              {SR_KAFKA_CONSUMER, "fetch.wait.max.ms", "10"},
              {SR_KAFKA_CONSUMER, "fetch.min.bytes", "1"},
              {SR_KAFKA_PRODUCER, "enable.idempotence", "true"},
              {SR_KAFKA_PRODUCER, "acks", "all"},
              {SR_KAFKA_PRODUCER, "linger.ms", "1"}};
  int n;
  sr_kafka_defaults(&n);
  T_EQ_INT(n, (int)(sizeof(want) / sizeof(want[0])));
  for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
    const char *v = find_default(want[i].c, want[i].k);
    T_ASSERT_MSG(v && !strcmp(v, want[i].v), "%s = %s, want %s", want[i].k, v ? v : "(none)",
                 want[i].v);
  }
  /* the markdown docs/CONFIGURATION.md is generated from has each row */
  char *buf = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&buf, &len);
  sr_kafka_defaults_markdown(f);
  fclose(f);
  T_ASSERT(strstr(buf, "| consumer | `fetch.min.bytes` | `1` |") != NULL);
  T_ASSERT(strstr(buf, "| consumer | `enable.partition.eof` | `false` |") != NULL);
  T_ASSERT(strstr(buf, "| producer | `linger.ms` | `1` |") != NULL);
  free(buf);
}

/* Writes lines to a config file and loads it into a new conf. */
static sr_conf_t *conf_from(const char *path, const char *text) {
  char es[512];
  FILE *f = fopen(path, "w");
  if (!f) return NULL;
  fputs(text, f);
  fclose(f);
  sr_conf_t *c = sr_conf_new(opts, 1);
  if (sr_conf_load_file(c, path, es, sizeof(es)) != SR_OK) {
    fprintf(stderr, "load: %s\n", es);
    sr_conf_destroy(c);
    return NULL;
  }
  return c;
}

TEST(check_names_file_line) {
  char es[512], want[700];
  const char *path = t_tmp_path("kafka.conf");
  /* unknown property on line 4, after good ones of every level */
  sr_conf_t *c = conf_from(path, "# a comment\n"
                                 "k = 5\n"
                                 "kafka.consumer.session.timeout.ms = 6000\n"
                                 "kafka.no.such.property = 1\n"
                                 "kafka.producer.linger.ms = 5\n");
  T_ASSERT(c);
  snprintf(want, sizeof(want), "%s:3", path);
  T_EQ_STR(sr_conf_kafka_origin(c, SR_CONF_KAFKA_CONSUMER, 0), want);
  es[0] = 0;
  T_EQ_INT(sr_kafka_conf_check(c, es, sizeof(es)), SR_ERR_CONF);
  snprintf(want, sizeof(want), "%s:4: kafka.no.such.property: ", path);
  T_ASSERT_MSG(!strncmp(es, want, strlen(want)), "errstr: %s (want prefix %s)", es, want);
  T_ASSERT_MSG(strstr(es, "No such configuration property") != NULL, "errstr: %s", es);
  sr_conf_destroy(c);

  /* a bad value for one client, on line 2 */
  c = conf_from(path, "kafka.fetch.wait.max.ms = 10\nkafka.producer.linger.ms = soon\n");
  T_ASSERT(c);
  T_EQ_INT(sr_kafka_conf_check(c, es, sizeof(es)), SR_ERR_CONF);
  snprintf(want, sizeof(want), "%s:2: kafka.producer.linger.ms: ", path);
  T_ASSERT_MSG(!strncmp(es, want, strlen(want)), "errstr: %s (want prefix %s)", es, want);

  /* set again later by -X: the later origin is the one reported */
  T_EQ_INT(sr_conf_set_from(c, "kafka.producer.linger.ms", "later", "-X", es, sizeof(es)), SR_OK);
  T_EQ_INT(sr_kafka_conf_check(c, es, sizeof(es)), SR_ERR_CONF);
  T_ASSERT_MSG(!strncmp(es, "-X: kafka.producer.linger.ms: ", 30), "errstr: %s", es);
  T_EQ_STR(sr_conf_kafka_origin(c, SR_CONF_KAFKA_PRODUCER, 0), "-X");

  /* fixed: the check passes; no origin when set by the program */
  T_EQ_INT(sr_conf_set(c, "kafka.producer.linger.ms", "2", es, sizeof(es)), SR_OK);
  T_ASSERT(sr_conf_kafka_origin(c, SR_CONF_KAFKA_PRODUCER, 0) == NULL);
  T_EQ_INT(sr_kafka_conf_check(c, es, sizeof(es)), SR_OK);
  T_ASSERT(sr_conf_kafka_origin(c, SR_CONF_KAFKA_PRODUCER, 5) == NULL);
  sr_conf_destroy(c);
  unlink(path);
}

TEST(xarg_parse_once) {
  char es[256];
  sr_kv_list_t l = {0};
  T_EQ_INT(sr_kv_list_add_arg(&l, "linger.ms=5", es, sizeof(es)), SR_OK);
  T_EQ_INT(sr_kv_list_add_arg(&l, "sasl.password=a=b", es, sizeof(es)), SR_OK);
  T_EQ_INT(sr_kv_list_add_arg(&l, "client.rack=", es, sizeof(es)), SR_OK);
  T_EQ_INT(sr_kv_list_add_arg(&l, "linger.ms=7", es, sizeof(es)), SR_OK); /* later wins */
  T_EQ_INT(l.n, 3);
  T_EQ_STR(l.kv[0].key, "linger.ms");
  T_EQ_STR(l.kv[0].value, "7");
  T_EQ_STR(l.kv[1].key, "sasl.password");
  T_EQ_STR(l.kv[1].value, "a=b");
  T_EQ_STR(l.kv[2].value, "");
  T_EQ_INT(sr_kv_list_add_arg(&l, "noequals", es, sizeof(es)), SR_ERR_CONF);
  T_ASSERT_MSG(strstr(es, "-X expects key=value") && strstr(es, "noequals"), "errstr: %s", es);
  T_EQ_INT(sr_kv_list_add_arg(&l, "=v", es, sizeof(es)), SR_ERR_CONF);
  T_EQ_INT(l.n, 3);

  /* the tools' check of plain -X properties names the key and librdkafka's reason */
  T_ASSERT_MSG(sr_kafka_kv_check(SR_KAFKA_PRODUCER, l.kv, l.n, es, sizeof(es)) == SR_OK,
               "errstr: %s", es);
  T_EQ_INT(sr_kv_list_add_arg(&l, "fetch.wait.max.ms=never", es, sizeof(es)), SR_OK);
  T_EQ_INT(sr_kafka_kv_check(SR_KAFKA_CONSUMER, l.kv, l.n, es, sizeof(es)), SR_ERR_CONF);
  T_ASSERT_MSG(!strncmp(es, "fetch.wait.max.ms=never: ", 25), "errstr: %s", es);
  sr_kv_list_free(&l);
  T_EQ_INT(l.n, 0);
}

TEST_MAIN(RUN(defaults_table); RUN(check_names_file_line); RUN(xarg_parse_once))
