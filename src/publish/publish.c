/*
 * publish: the producer for recommendations, dead letters and the load tool.
 *
 * Idempotent (enable.idempotence=true, which implies acks=all, retries and
 * max.in.flight <= 5): a retried batch is never written twice and per
 * partition order is kept, so "delivered" in a delivery report means exactly
 * once in the log. The pipeline commits its input offsets only after these
 * reports, which makes the whole path at-least-once end to end.
 *
 * Latency first: linger.ms=1 (librdkafka 2.0 defaults to 5): a message waits
 * at most 1 ms for companions before its batch is sent. Under load, batches
 * still fill because sends pile up while the previous request is in flight;
 * with light traffic a recommendation leaves in about a millisecond.
 * Override with kafka.linger.ms for bulk loads. These values live in the
 * defaults table of src/kafka/kafka.c, which builds the configuration.
 *
 * The first send to each topic blocks for one metadata round trip (see
 * sr_publish_warm()); every later send only enqueues.
 *
 * Every accepted send gets exactly one delivery report, also when the
 * handle is destroyed with messages outstanding (they are purged and
 * reported as failed).
 *
 * Transactional (exactly-once, conf->transactional_id set): the same
 * producer with transactional.id, which librdkafka makes idempotent too.
 * The sr_publish_txn_* calls wrap librdkafka's transaction API and sort its
 * errors into the four outcomes a caller acts on (kafka.h): retry, abort,
 * fatal (fenced: a newer producer with the same transactional.id), bug.
 *
 * Thread: the handle belongs to the thread that created it; delivery and
 * error callbacks run on it inside sr_publish_poll()/flush()/destroy().
 * librdkafka's log callback (src/kafka) runs on its internal threads and
 * only logs.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <librdkafka/rdkafka.h>

#include "kafka/kafka_int.h"
#include "streamrec/common.h"
#include "streamrec/kafka.h"

#define SR_PUBLISH_MOD "publish"

#define SR_PUBLISH_MAX_WARM 8
#define SR_PUBLISH_WARM_TIMEOUT_MS 1000

struct sr_publish_s {
  rd_kafka_t *rk;
  char *txn_id; /* transactional.id, NULL when not transactional */
  sr_delivery_cb_t *delivery_cb;
  void *opaque;
  char *warm[SR_PUBLISH_MAX_WARM]; /* topics whose metadata we fetched */
  int n_warm;
};

/* Client-level errors; the client keeps retrying on its own. A fatal error
 * (idempotence guarantee broken) makes every later send fail with it. */
static void sr_publish_error_cb(rd_kafka_t *rk, int err, const char *reason, void *opaque) {
  sr_kafka_log_error(rk, SR_PUBLISH_MOD, "producer", err, reason);
}

static void sr_publish_dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *rkm, void *opaque) {
  sr_publish_t *p = opaque;
  if (!p->delivery_cb) return;
  if (rkm->err)
    /* not rd_kafka_message_errstr(): on a delivery report the payload is
     * the message, not an error string */
    p->delivery_cb(p->opaque, rkm->_private, SR_ERR_DELIVERY, rd_kafka_err2str(rkm->err));
  else
    p->delivery_cb(p->opaque, rkm->_private, SR_OK, NULL);
}

sr_publish_t *sr_publish_new(const sr_publish_conf_t *c, char *errstr, size_t errsz) {
  char kerr[512];
  sr_publish_t *p = NULL;
  rd_kafka_conf_t *conf = NULL;

  if (!c || !c->brokers || !*c->brokers) {
    sr_seterr(errstr, errsz, SR_ERR_INVALID_ARG, "publish: brokers are required");
    return NULL;
  }
  p = sr_calloc(1, sizeof(*p));
  p->delivery_cb = c->delivery_cb;
  p->opaque = c->opaque;
  if (c->transactional_id) p->txn_id = sr_strdup(c->transactional_id);

  /* our producer defaults (src/kafka), then the user's kafka.*, which win */
  const sr_kv_t fixed[] = {{"transactional.id", c->transactional_id}};
  conf = sr_kafka_conf_new(SR_KAFKA_PRODUCER, c->brokers, c->client_id, fixed,
                           c->transactional_id ? 1 : 0, c->kafka, c->n_kafka, errstr, errsz);
  if (!conf) goto fail;
  rd_kafka_conf_set_error_cb(conf, sr_publish_error_cb);
  rd_kafka_conf_set_dr_msg_cb(conf, sr_publish_dr_cb);
  rd_kafka_conf_set_opaque(conf, p);

  p->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, kerr, sizeof(kerr));
  if (!p->rk) {
    sr_seterr(errstr, errsz, SR_ERR_KAFKA, "publish: rd_kafka_new: %s", kerr);
    goto fail;
  }
  return p;

fail:
  if (conf) rd_kafka_conf_destroy(conf);
  sr_publish_destroy(p);
  return NULL;
}

void sr_publish_destroy(sr_publish_t *p) {
  if (!p) return;
  if (p->rk) {
    rd_kafka_resp_err_t err = rd_kafka_flush(p->rk, 10 * 1000);
    if (err) {
      int left = rd_kafka_outq_len(p->rk);
      sr_log_warn(SR_PUBLISH_MOD, "destroy: %d message(s) not delivered after 10 s; purging", left);
      /* Purged messages come back as failed delivery reports (__PURGE_*):
       * serve them so the owner's accounting sees every message once. */
      rd_kafka_purge(p->rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
      rd_kafka_flush(p->rk, 1000);
    }
    rd_kafka_destroy(p->rk);
  }
  for (int i = 0; i < p->n_warm; i++)
    sr_free(p->warm[i]);
  sr_free(p->txn_id);
  sr_free(p);
}

/* First send to a topic: fetch its metadata synchronously. Without this, a
 * topic first used while the client's bootstrap connection is still
 * settling is only looked up by the client's 1 s timer scan of unknown
 * topics (librdkafka issue #3202; reproduced against the mock cluster in
 * about 1 run of 6): the first messages would sit for a second. Costs one
 * round trip once per topic; at most SR_PUBLISH_WARM_TIMEOUT_MS when the
 * cluster is unreachable (then the messages wait for the brokers anyway). */
static void sr_publish_warm(sr_publish_t *p, const char *topic) {
  for (int i = 0; i < p->n_warm; i++)
    if (strcmp(p->warm[i], topic) == 0) return;
  if (p->n_warm == SR_PUBLISH_MAX_WARM) return;
  p->warm[p->n_warm++] = sr_strdup(topic);
  rd_kafka_topic_t *rkt = rd_kafka_topic_new(p->rk, topic, NULL);
  if (!rkt) return;
  const struct rd_kafka_metadata *md = NULL;
  rd_kafka_resp_err_t err = rd_kafka_metadata(p->rk, 0, rkt, &md, SR_PUBLISH_WARM_TIMEOUT_MS);
  if (err) sr_log_debug(SR_PUBLISH_MOD, "metadata for %s: %s", topic, rd_kafka_err2str(err));
  if (md) rd_kafka_metadata_destroy(md);
  rd_kafka_topic_destroy(rkt);
}

void sr_publish_prepare(sr_publish_t *p, const char *topic) { sr_publish_warm(p, topic); }

sr_err_t sr_publish_send(sr_publish_t *p, const char *topic, int32_t partition, const void *key,
                         size_t klen, const void *value, size_t vlen, const sr_header_t *hdrs,
                         int n_hdrs, void *msg_opaque, char *errstr, size_t errsz) {
  /* produceva is producev with an array instead of varargs: the only way to
   * pass a runtime number of headers without building an rd_kafka_headers_t. */
  enum { FIXED = 6, STACK_HDRS = 8 };
  rd_kafka_vu_t stack_vus[FIXED + STACK_HDRS];
  rd_kafka_vu_t *vus = stack_vus;
  size_t cnt = 0;
  sr_err_t ret = SR_OK;

  if (n_hdrs < 0) n_hdrs = 0;
  sr_publish_warm(p, topic); /* blocks once per topic, see above */
  if (n_hdrs > STACK_HDRS) vus = sr_malloc((size_t)(FIXED + n_hdrs) * sizeof(*vus));

  vus[cnt].vtype = RD_KAFKA_VTYPE_TOPIC;
  vus[cnt++].u.cstr = topic;
  vus[cnt].vtype = RD_KAFKA_VTYPE_PARTITION;
  vus[cnt++].u.i32 = partition < 0 ? RD_KAFKA_PARTITION_UA : partition;
  vus[cnt].vtype = RD_KAFKA_VTYPE_MSGFLAGS;
  vus[cnt++].u.i = RD_KAFKA_MSG_F_COPY;
  vus[cnt].vtype = RD_KAFKA_VTYPE_KEY;
  vus[cnt].u.mem.ptr = (void *)key;
  vus[cnt++].u.mem.size = key ? klen : 0;
  vus[cnt].vtype = RD_KAFKA_VTYPE_VALUE;
  vus[cnt].u.mem.ptr = (void *)value;
  vus[cnt++].u.mem.size = value ? vlen : 0;
  vus[cnt].vtype = RD_KAFKA_VTYPE_OPAQUE;
  vus[cnt++].u.ptr = msg_opaque;
  for (int i = 0; i < n_hdrs; i++) {
    vus[cnt].vtype = RD_KAFKA_VTYPE_HEADER;
    vus[cnt].u.header.name = hdrs[i].name;
    vus[cnt].u.header.val = hdrs[i].value;
    vus[cnt++].u.header.size = hdrs[i].value ? (ssize_t)hdrs[i].len : -1;
  }

  rd_kafka_error_t *error = rd_kafka_produceva(p->rk, vus, cnt);
  if (error) {
    rd_kafka_resp_err_t err = rd_kafka_error_code(error);
    if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL)
      ret = SR_ERR_QUEUE_FULL;
    else if (err == RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE)
      ret = sr_seterr(errstr, errsz, SR_ERR_TOO_LARGE,
                      "produce to %s: %zu bytes of key and value exceed message.max.bytes", topic,
                      (key ? klen : 0) + (value ? vlen : 0));
    else
      ret = sr_seterr(errstr, errsz, SR_ERR_KAFKA, "produce to %s: %s", topic,
                      rd_kafka_error_string(error));
    rd_kafka_error_destroy(error);
  }
  if (vus != stack_vus) sr_free(vus);
  return ret;
}

int sr_publish_poll(sr_publish_t *p, int timeout_ms) { return rd_kafka_poll(p->rk, timeout_ms); }

sr_err_t sr_publish_flush(sr_publish_t *p, int timeout_ms) {
  rd_kafka_resp_err_t err = rd_kafka_flush(p->rk, timeout_ms);
  if (err == RD_KAFKA_RESP_ERR__TIMED_OUT) return SR_ERR_TIMEOUT;
  return err ? SR_ERR_KAFKA : SR_OK;
}

int sr_publish_outq_len(sr_publish_t *p) { return rd_kafka_outq_len(p->rk); }

void sr_publish_purge(sr_publish_t *p) {
  rd_kafka_purge(p->rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
}

/* ------------------------------------------------------------ transactions */

/* Sorts a transaction call's error into the outcomes of kafka.h and frees
 * it. NULL is success. */
static sr_err_t sr_publish_txn_result(sr_publish_t *p, rd_kafka_error_t *error, const char *what,
                                      char *errstr, size_t errsz) {
  if (!error) return SR_OK;
  sr_err_t ret = rd_kafka_error_is_fatal(error)             ? SR_ERR_FATAL
                 : rd_kafka_error_txn_requires_abort(error) ? SR_ERR_KAFKA
                 : rd_kafka_error_is_retriable(error)       ? SR_ERR_TIMEOUT
                                                            : SR_ERR_STATE;
  sr_seterr(errstr, errsz, ret, "transactional.id %s: %s: %s: %s", p->txn_id, what,
            rd_kafka_error_name(error), rd_kafka_error_string(error));
  rd_kafka_error_destroy(error);
  return ret;
}

static sr_err_t sr_publish_txn_check(sr_publish_t *p, char *errstr, size_t errsz) {
  if (p->txn_id) return SR_OK;
  return sr_seterr(errstr, errsz, SR_ERR_STATE, "publish: the producer is not transactional");
}

sr_err_t sr_publish_txn_init(sr_publish_t *p, int timeout_ms, char *errstr, size_t errsz) {
  sr_err_t e = sr_publish_txn_check(p, errstr, errsz);
  if (e != SR_OK) return e;
  return sr_publish_txn_result(p, rd_kafka_init_transactions(p->rk, timeout_ms),
                               "init_transactions", errstr, errsz);
}

sr_err_t sr_publish_txn_begin(sr_publish_t *p, char *errstr, size_t errsz) {
  sr_err_t e = sr_publish_txn_check(p, errstr, errsz);
  if (e != SR_OK) return e;
  return sr_publish_txn_result(p, rd_kafka_begin_transaction(p->rk), "begin_transaction", errstr,
                               errsz);
}

sr_err_t sr_publish_txn_send_offsets(sr_publish_t *p, const sr_ingest_group_t *g, const char *topic,
                                     const int32_t *parts, const int64_t *next_offsets, int n,
                                     int timeout_ms, char *errstr, size_t errsz) {
  sr_err_t e = sr_publish_txn_check(p, errstr, errsz);
  if (e != SR_OK) return e;
  if (!g || !g->md)
    return sr_seterr(errstr, errsz, SR_ERR_STATE,
                     "transactional.id %s: send_offsets_to_transaction: no group metadata",
                     p->txn_id);
  if (n <= 0) return SR_OK;
  rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(n);
  for (int i = 0; i < n; i++)
    rd_kafka_topic_partition_list_add(l, topic, parts[i])->offset = next_offsets[i];
  e = sr_publish_txn_result(p, rd_kafka_send_offsets_to_transaction(p->rk, l, g->md, timeout_ms),
                            "send_offsets_to_transaction", errstr, errsz);
  rd_kafka_topic_partition_list_destroy(l);
  return e;
}

sr_err_t sr_publish_txn_commit(sr_publish_t *p, int timeout_ms, char *errstr, size_t errsz) {
  sr_err_t e = sr_publish_txn_check(p, errstr, errsz);
  if (e != SR_OK) return e;
  return sr_publish_txn_result(p, rd_kafka_commit_transaction(p->rk, timeout_ms),
                               "commit_transaction", errstr, errsz);
}

sr_err_t sr_publish_txn_abort(sr_publish_t *p, int timeout_ms, char *errstr, size_t errsz) {
  sr_err_t e = sr_publish_txn_check(p, errstr, errsz);
  if (e != SR_OK) return e;
  return sr_publish_txn_result(p, rd_kafka_abort_transaction(p->rk, timeout_ms),
                               "abort_transaction", errstr, errsz);
}

sr_err_t sr_publish_fatal_error(sr_publish_t *p, char *errstr, size_t errsz) {
  char reason[512];
  rd_kafka_resp_err_t err = rd_kafka_fatal_error(p->rk, reason, sizeof(reason));
  if (!err) return SR_OK;
  if (p->txn_id)
    return sr_seterr(errstr, errsz, SR_ERR_FATAL,
                     "transactional.id %s: fatal producer error %s: %s", p->txn_id,
                     rd_kafka_err2name(err), reason);
  return sr_seterr(errstr, errsz, SR_ERR_FATAL, "fatal producer error %s: %s",
                   rd_kafka_err2name(err), reason);
}
