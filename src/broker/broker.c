/*
 * broker: an embedded Kafka for demos and tests, built on the librdkafka
 * mock cluster (rdkafka_mock.h), and its fault injection. Only the CLI's
 * `broker` command, `serve` without --brokers, benchmarks and tests use it;
 * no production path depends on it (metadata lives in src/kafka).
 *
 * The mock cluster speaks the real wire protocol on loopback (produce,
 * fetch, consumer groups, offset commits, idempotent producer ids), so every
 * other component, kcat and kafka-python talk to it exactly as to a real
 * cluster. It needs an rd_kafka_t to host it (for its timers and logging):
 * we create a bare producer handle that never produces anything.
 *
 * Retention, as read from librdkafka's rdkafka_mock.c (partition init: the
 * same in 2.0.2 and later): each partition keeps at most
 *   max_size = 5 MiB of record-batch bytes  and  max_cnt = 100000 batches;
 * on append, the oldest batches are dropped until both hold (the newest batch
 * always stays), moving the partition's start (low watermark) forward. The
 * limits are not settable through the public mock API. So with N partitions
 * the topic holds about N * 5 MiB: a consumer that starts from the beginning
 * after a large load sees a start offset > 0. Checked on 2.0.2: after a
 * 1M-event `streamrec load` (about 60 bytes a record) each of 4 partitions
 * keeps the last ~86k events (4.5 MB of keys+values) and starts at offset
 * 130k-185k. A 100k-event MovieLens load fits. Everything lives in memory
 * and is lost with sr_broker_destroy().
 *
 * Also seen on 2.0.2: a control call into the mock thread (topic create,
 * broker up/down, error injection) now and then takes 1 s instead of
 * microseconds (a missed wake-up of the mock's 1 s poll loop), so startup
 * and fault injection may lag by a second. Client traffic is not affected.
 *
 * Thread: the mock cluster runs its own I/O thread; these functions may be
 * called from any thread, but not concurrently with sr_broker_destroy().
 */
#include <stdio.h>
#include <string.h>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include "kafka/kafka_int.h"
#include "streamrec/common.h"
#include "streamrec/kafka.h"

#define SR_BROKER_MOD "broker"

struct sr_broker_s {
  rd_kafka_t *rk; /* hosts the mock cluster; never produces */
  rd_kafka_mock_cluster_t *mc;
  char *bootstrap;
  int n_brokers;
};

sr_broker_t *sr_broker_new(int n_brokers, int partitions, char *errstr, size_t errsz) {
  static const char *const topics[] = {"events", "recommendations", "events.dlq"};
  char kerr[512];
  sr_broker_t *b = NULL;
  rd_kafka_conf_t *conf = NULL;

  if (n_brokers < 1 || n_brokers > 64 || partitions < 1 || partitions > 10000) {
    sr_seterr(errstr, errsz, SR_ERR_INVALID_ARG,
              "broker: need 1..64 brokers and 1..10000 partitions (got %d, %d)", n_brokers,
              partitions);
    return NULL;
  }
  b = sr_calloc(1, sizeof(*b));
  b->n_brokers = n_brokers;

  conf = rd_kafka_conf_new();
  rd_kafka_conf_set_log_cb(conf, sr_kafka_log_cb);
  /* The host handle has no bootstrap servers on purpose: silence the
   * resulting configuration warning (errors still come through). */
  if (rd_kafka_conf_set(conf, "log_level", "3", kerr, sizeof(kerr)) != RD_KAFKA_CONF_OK ||
      rd_kafka_conf_set(conf, "client.id", "streamrec-broker", kerr, sizeof(kerr)) !=
          RD_KAFKA_CONF_OK) {
    sr_seterr(errstr, errsz, SR_ERR_CONF, "broker: %s", kerr);
    goto fail;
  }
  b->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, kerr, sizeof(kerr));
  if (!b->rk) {
    sr_seterr(errstr, errsz, SR_ERR_KAFKA, "broker: rd_kafka_new: %s", kerr);
    goto fail; /* conf is still ours on failure */
  }
  conf = NULL; /* owned by rk now */

  b->mc = rd_kafka_mock_cluster_new(b->rk, n_brokers);
  if (!b->mc) {
    sr_seterr(errstr, errsz, SR_ERR_KAFKA,
              "broker: cannot start mock cluster (loopback sockets unavailable?)");
    goto fail;
  }
  b->bootstrap = sr_strdup(rd_kafka_mock_cluster_bootstraps(b->mc));

  for (size_t i = 0; i < SR_ARRAY_SIZE(topics); i++) {
    if (sr_broker_topic_create(b, topics[i], partitions) != SR_OK) {
      sr_seterr(errstr, errsz, SR_ERR_KAFKA, "broker: cannot create topic %s", topics[i]);
      goto fail;
    }
  }
  sr_log_debug(SR_BROKER_MOD, "mock cluster up: %d broker(s), %d partitions, bootstrap %s",
               n_brokers, partitions, b->bootstrap);
  return b;

fail:
  if (conf) rd_kafka_conf_destroy(conf);
  sr_broker_destroy(b);
  return NULL;
}

void sr_broker_destroy(sr_broker_t *b) {
  if (!b) return;
  /* The cluster must go before the handle that hosts it. */
  if (b->mc) rd_kafka_mock_cluster_destroy(b->mc);
  if (b->rk) rd_kafka_destroy(b->rk);
  sr_free(b->bootstrap);
  sr_free(b);
}

const char *sr_broker_bootstrap(const sr_broker_t *b) { return b->bootstrap; }

sr_err_t sr_broker_topic_create(sr_broker_t *b, const char *topic, int partitions) {
  /* Replicas only matter for leader placement in the mock (there is no
   * replication traffic); min(n, 3) mirrors a small real cluster. */
  int rf = SR_MIN(b->n_brokers, 3);
  rd_kafka_resp_err_t err = rd_kafka_mock_topic_create(b->mc, topic, partitions, rf);
  if (err) {
    sr_log_error(SR_BROKER_MOD, "create topic %s: %s", topic, rd_kafka_err2str(err));
    return SR_ERR_KAFKA;
  }
  return SR_OK;
}

sr_err_t sr_broker_set_down(sr_broker_t *b, int32_t broker_id, int down) {
  rd_kafka_resp_err_t err = down ? rd_kafka_mock_broker_set_down(b->mc, broker_id)
                                 : rd_kafka_mock_broker_set_up(b->mc, broker_id);
  if (err) {
    sr_log_error(SR_BROKER_MOD, "broker %d set %s: %s", (int)broker_id, down ? "down" : "up",
                 rd_kafka_err2str(err));
    return SR_ERR_INVALID_ARG;
  }
  return SR_OK;
}

sr_err_t sr_broker_set_leader(sr_broker_t *b, const char *topic, int32_t partition,
                              int32_t broker_id) {
  int n = partition >= 0 ? partition + 1
                         : sr_kafka_partition_count(b->bootstrap, topic, NULL, 0, 5000, NULL, 0);
  for (int32_t p = partition >= 0 ? partition : 0; p < n; p++) {
    rd_kafka_resp_err_t err = rd_kafka_mock_partition_set_leader(b->mc, topic, p, broker_id);
    if (err) {
      sr_log_error(SR_BROKER_MOD, "leader of %s [%d] -> broker %d: %s", topic, (int)p,
                   (int)broker_id, rd_kafka_err2str(err));
      return SR_ERR_INVALID_ARG;
    }
  }
  return n > 0 ? SR_OK : SR_ERR_NOT_FOUND;
}

sr_err_t sr_broker_set_coordinator(sr_broker_t *b, const char *group, int32_t broker_id) {
  rd_kafka_resp_err_t err = rd_kafka_mock_coordinator_set(b->mc, "group", group, broker_id);
  if (err) {
    sr_log_error(SR_BROKER_MOD, "coordinator of group %s -> broker %d: %s", group, (int)broker_id,
                 rd_kafka_err2str(err));
    return SR_ERR_INVALID_ARG;
  }
  return SR_OK;
}

void sr_broker_push_errors(sr_broker_t *b, int apikey, int cnt, int kafka_err) {
  if (cnt <= 0) return;
  rd_kafka_resp_err_t *errs = sr_malloc((size_t)cnt * sizeof(*errs));
  for (int i = 0; i < cnt; i++)
    errs[i] = (rd_kafka_resp_err_t)kafka_err;
  rd_kafka_mock_push_request_errors_array(b->mc, (int16_t)apikey, (size_t)cnt, errs);
  sr_free(errs);
}

void sr_broker_clear_errors(sr_broker_t *b, int apikey) {
  rd_kafka_mock_clear_request_errors(b->mc, (int16_t)apikey);
}
