/*
 * kafka_admin: topic administration on a real cluster through librdkafka's
 * Admin API (CreateTopics, DeleteTopics), for `streamrec topics` and the
 * integration tests' real-cluster mode. The embedded mock cluster has its
 * own topic call (sr_broker_topic_create).
 *
 * Built for re-runs: a topic that already exists with the partition count
 * asked for counts as done (Kafka refuses to shrink a topic, and a different
 * count would move keys to other partitions, so that is an error naming
 * both counts); its configuration is left as it is. A created topic is
 * reported only once every broker's metadata shows it with a leader for
 * every partition, so a producer or reader started next finds it.
 *
 * Each call makes one short-lived client (a producer handle: no group, no
 * idempotence, nothing sent) with the caller's properties as given, and
 * blocks until the result or the timeout. Thread: any.
 */
#include <stdlib.h>
#include <string.h>

#include "kafka/kafka_int.h"
#include "streamrec/common.h"
#include "streamrec/kafka.h"

/* Short pause between metadata polls while a created topic propagates. */
#define SR_ADMIN_METADATA_POLL_MS 100

/* A client for admin requests: bootstrap, client id, the log callback, then
 * the caller's properties verbatim. NULL with errstr (SR_ERR_CONF for a
 * refused property, SR_ERR_KAFKA when the client cannot be made). */
static rd_kafka_t *sr_admin_client(const char *brokers, const sr_kv_t *kafka, int n_kafka,
                                   sr_err_t *err, char *errstr, size_t errsz) {
  char kerr[512];
  rd_kafka_t *rk = NULL;
  rd_kafka_conf_t *conf = rd_kafka_conf_new();
  rd_kafka_conf_set_log_cb(conf, sr_kafka_log_cb);
  *err = SR_ERR_CONF;
  if (rd_kafka_conf_set(conf, "bootstrap.servers", brokers, kerr, sizeof(kerr)) ||
      rd_kafka_conf_set(conf, "client.id", "streamrec-admin", kerr, sizeof(kerr))) {
    sr_seterr(errstr, errsz, SR_ERR_CONF, "%s", kerr);
    goto fail;
  }
  for (int i = 0; kafka && i < n_kafka; i++) {
    if (!kafka[i].key || !kafka[i].value) {
      sr_seterr(errstr, errsz, SR_ERR_CONF, "kafka property %d has no key or value", i);
      goto fail;
    }
    if (rd_kafka_conf_set(conf, kafka[i].key, kafka[i].value, kerr, sizeof(kerr))) {
      sr_seterr(errstr, errsz, SR_ERR_CONF, "kafka.%s=%s: %s", kafka[i].key, kafka[i].value, kerr);
      goto fail;
    }
  }
  *err = SR_ERR_KAFKA;
  rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, kerr, sizeof(kerr));
  if (!rk) {
    sr_seterr(errstr, errsz, SR_ERR_KAFKA, "rd_kafka_new: %s", kerr);
    goto fail;
  }
  *err = SR_OK;
  return rk; /* conf is the client's now */
fail:
  rd_kafka_conf_destroy(conf);
  return NULL;
}

/* The topic's entry in md, or NULL. */
static const rd_kafka_metadata_topic_t *sr_admin_md_topic(const struct rd_kafka_metadata *md,
                                                          const char *name) {
  for (int i = 0; i < md->topic_cnt; i++)
    if (!strcmp(md->topics[i].topic, name)) return &md->topics[i];
  return NULL;
}

/* 1 when t is usable: no error, `partitions` partitions, each with a leader. */
static int sr_admin_topic_ready(const rd_kafka_metadata_topic_t *t, int partitions) {
  if (!t || t->err || t->partition_cnt != partitions) return 0;
  for (int p = 0; p < t->partition_cnt; p++)
    if (t->partitions[p].err || t->partitions[p].leader < 0) return 0;
  return 1;
}

/* 1 when md shows every topic of topics ready (sr_admin_topic_ready; any
 * partition count for partitions -1). */
static int sr_admin_all_ready(const struct rd_kafka_metadata *md,
                              const sr_kafka_topic_spec_t *topics, int n) {
  for (int i = 0; i < n; i++) {
    const rd_kafka_metadata_topic_t *t = sr_admin_md_topic(md, topics[i].name);
    int want = topics[i].partitions > 0 ? topics[i].partitions : (t ? t->partition_cnt : 1);
    if (!sr_admin_topic_ready(t, want)) return 0;
  }
  return 1;
}

/* Milliseconds left until deadline_us (at least 1). */
static int sr_admin_left_ms(int64_t deadline_us) {
  int64_t left = (deadline_us - sr_mono_us()) / 1000;
  return left < 1 ? 1 : (int)SR_MIN(left, 2147483647LL);
}

/* Sends the admin request already queued on q's client and waits for its
 * result event of type want. NULL with errstr on timeout or a request-level
 * error (the event is destroyed then). */
static rd_kafka_event_t *sr_admin_wait(rd_kafka_queue_t *q, int want, const char *what,
                                       const char *brokers, int64_t deadline_us, sr_err_t *err,
                                       char *errstr, size_t errsz) {
  rd_kafka_event_t *ev = rd_kafka_queue_poll(q, sr_admin_left_ms(deadline_us));
  if (!ev) {
    *err = sr_seterr(errstr, errsz, SR_ERR_TIMEOUT, "%s on %s: no answer in time", what, brokers);
    return NULL;
  }
  if (rd_kafka_event_type(ev) != want || rd_kafka_event_error(ev)) {
    *err = sr_seterr(errstr, errsz, SR_ERR_KAFKA, "%s on %s: %s", what, brokers,
                     rd_kafka_event_error(ev) ? rd_kafka_event_error_string(ev)
                                              : "unexpected result event");
    rd_kafka_event_destroy(ev);
    return NULL;
  }
  *err = SR_OK;
  return ev;
}

static rd_kafka_AdminOptions_t *sr_admin_options(rd_kafka_t *rk, rd_kafka_admin_op_t op,
                                                 int timeout_ms) {
  char kerr[256];
  rd_kafka_AdminOptions_t *o = rd_kafka_AdminOptions_new(rk, op);
  /* out-of-range values are refused and leave librdkafka's defaults */
  rd_kafka_AdminOptions_set_request_timeout(o, timeout_ms, kerr, sizeof(kerr));
  rd_kafka_AdminOptions_set_operation_timeout(o, timeout_ms, kerr, sizeof(kerr));
  return o;
}

sr_err_t sr_kafka_topics_create(const char *brokers, const sr_kafka_topic_spec_t *topics, int n,
                                const sr_kv_t *kafka, int n_kafka, int timeout_ms,
                                sr_kafka_topic_outcome_t *outcome, char *errstr, size_t errsz) {
  char kerr[512];
  sr_err_t ret = SR_OK;
  rd_kafka_t *rk = NULL;
  rd_kafka_queue_t *q = NULL;
  rd_kafka_AdminOptions_t *opts = NULL;
  rd_kafka_event_t *ev = NULL;
  const struct rd_kafka_metadata *md = NULL;
  rd_kafka_NewTopic_t **nt = NULL;
  int n_nt = 0;
  char(*addrs)[320] = NULL; /* the brokers, "host:port" */
  int n_addrs = 0;
  for (int i = 0; outcome && i < n; i++)
    outcome[i] = SR_KAFKA_TOPIC_FAILED;
  if (!brokers || !topics || n <= 0 || timeout_ms <= 0)
    return sr_seterr(errstr, errsz, SR_ERR_INVALID_ARG,
                     "sr_kafka_topics_create: brokers, topics, n > 0 and timeout_ms > 0 needed");
  for (int i = 0; i < n; i++)
    if (!topics[i].name || !topics[i].name[0])
      return sr_seterr(errstr, errsz, SR_ERR_INVALID_ARG, "topic %d has no name", i);
  const int64_t deadline = sr_mono_us() + (int64_t)timeout_ms * 1000;

  rk = sr_admin_client(brokers, kafka, n_kafka, &ret, errstr, errsz);
  if (!rk) goto out;
  nt = sr_calloc((size_t)n, sizeof(*nt));
  for (n_nt = 0; n_nt < n; n_nt++) {
    const sr_kafka_topic_spec_t *s = &topics[n_nt];
    nt[n_nt] = rd_kafka_NewTopic_new(s->name, s->partitions, s->replication, kerr, sizeof(kerr));
    if (!nt[n_nt]) {
      ret = sr_seterr(errstr, errsz, SR_ERR_INVALID_ARG, "topic %s: %s", s->name, kerr);
      goto out;
    }
    for (int c = 0; s->config && c < s->n_config; c++)
      if (rd_kafka_NewTopic_set_config(nt[n_nt], s->config[c].key, s->config[c].value)) {
        ret = sr_seterr(errstr, errsz, SR_ERR_INVALID_ARG, "topic %s: config %s=%s refused",
                        s->name, s->config[c].key, s->config[c].value);
        rd_kafka_NewTopic_destroy(nt[n_nt]);
        goto out;
      }
  }
  q = rd_kafka_queue_new(rk);
  opts = sr_admin_options(rk, RD_KAFKA_ADMIN_OP_CREATETOPICS, timeout_ms);
  rd_kafka_CreateTopics(rk, nt, (size_t)n, opts, q);
  ev = sr_admin_wait(q, RD_KAFKA_EVENT_CREATETOPICS_RESULT, "CreateTopics", brokers, deadline, &ret,
                     errstr, errsz);
  if (!ev) goto out;

  /* Per topic: created, already there (checked below), or refused. */
  size_t cnt = 0;
  const rd_kafka_topic_result_t **res =
      rd_kafka_CreateTopics_result_topics(rd_kafka_event_CreateTopics_result(ev), &cnt);
  for (size_t r = 0; r < cnt; r++) {
    const char *name = rd_kafka_topic_result_name(res[r]);
    rd_kafka_resp_err_t e = rd_kafka_topic_result_error(res[r]);
    if (e == RD_KAFKA_RESP_ERR_NO_ERROR || e == RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) continue;
    const char *why = rd_kafka_topic_result_error_string(res[r]);
    ret = sr_seterr(errstr, errsz, SR_ERR_KAFKA, "create topic %s: %s (%s)", name,
                    why && *why ? why : rd_kafka_err2str(e), rd_kafka_err2name(e));
    goto out;
  }

  /* Wait until every topic is in the metadata with a leader per partition;
   * one that existed before must have the partition count asked for. */
  for (;;) {
    rd_kafka_resp_err_t e = rd_kafka_metadata(rk, 1, NULL, &md, sr_admin_left_ms(deadline));
    if (e) {
      ret = sr_seterr(errstr, errsz, SR_ERR_KAFKA, "metadata from %s: %s", brokers,
                      rd_kafka_err2str(e));
      goto out;
    }
    int pending = 0; /* topics not in the metadata yet, or without leaders */
    for (size_t r = 0; r < cnt; r++) {
      const char *name = rd_kafka_topic_result_name(res[r]);
      int existed = rd_kafka_topic_result_error(res[r]) == RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS;
      int i = 0;
      while (i < n && strcmp(topics[i].name, name))
        i++;
      if (i == n) continue; /* not one we asked for */
      const rd_kafka_metadata_topic_t *t = sr_admin_md_topic(md, name);
      if (existed && t && !t->err && t->partition_cnt > 0 &&
          t->partition_cnt != topics[i].partitions && topics[i].partitions > 0) {
        ret = sr_seterr(errstr, errsz, SR_ERR_STATE,
                        "topic %s already exists with %d partitions, not the %d asked for "
                        "(partitions cannot be taken away, and adding some moves keys: "
                        "delete it or ask for %d)",
                        name, t->partition_cnt, topics[i].partitions, t->partition_cnt);
        goto out;
      }
      int want = topics[i].partitions > 0 ? topics[i].partitions : (t ? t->partition_cnt : 1);
      if (sr_admin_topic_ready(t, want)) {
        if (outcome) outcome[i] = existed ? SR_KAFKA_TOPIC_EXISTED : SR_KAFKA_TOPIC_CREATED;
      } else {
        pending++;
      }
    }
    if (!pending) {
      addrs = sr_calloc((size_t)SR_MAX(md->broker_cnt, 1), sizeof(*addrs));
      for (n_addrs = 0; n_addrs < md->broker_cnt; n_addrs++)
        snprintf(addrs[n_addrs], sizeof(addrs[n_addrs]), "%s:%d", md->brokers[n_addrs].host,
                 md->brokers[n_addrs].port);
    }
    rd_kafka_metadata_destroy(md);
    md = NULL;
    if (!pending) break;
    if (sr_mono_us() >= deadline) {
      ret = sr_seterr(errstr, errsz, SR_ERR_TIMEOUT,
                      "%d topic(s) created on %s but not ready (a leader for every partition) "
                      "within %d ms",
                      pending, brokers, timeout_ms);
      goto out;
    }
    rd_kafka_poll(rk, SR_MIN(SR_ADMIN_METADATA_POLL_MS, sr_admin_left_ms(deadline)));
  }

  /* Each broker learns of a new topic on its own, a moment after the
   * controller: ask every one of them (a fresh client bootstrapped to that
   * broker alone asks it first), so a client made next, whichever broker
   * it asks, finds the topics. */
  for (int b = 0; b < n_addrs; b++) {
    for (;;) {
      rd_kafka_t *one = sr_admin_client(addrs[b], kafka, n_kafka, &ret, errstr, errsz);
      if (!one) goto out;
      rd_kafka_resp_err_t e = rd_kafka_metadata(one, 1, NULL, &md, sr_admin_left_ms(deadline));
      int ready = !e && sr_admin_all_ready(md, topics, n);
      if (md) rd_kafka_metadata_destroy(md);
      md = NULL;
      rd_kafka_destroy(one);
      if (ready) break;
      if (sr_mono_us() >= deadline) {
        ret = sr_seterr(errstr, errsz, SR_ERR_TIMEOUT,
                        "topics created, but broker %s did not show them ready within %d ms%s%s",
                        addrs[b], timeout_ms, e ? ": " : "", e ? rd_kafka_err2str(e) : "");
        goto out;
      }
      rd_kafka_poll(rk, SR_MIN(SR_ADMIN_METADATA_POLL_MS, sr_admin_left_ms(deadline)));
    }
  }

out:
  sr_free(addrs);
  if (md) rd_kafka_metadata_destroy(md);
  if (ev) rd_kafka_event_destroy(ev);
  if (opts) rd_kafka_AdminOptions_destroy(opts);
  if (q) rd_kafka_queue_destroy(q);
  if (nt) rd_kafka_NewTopic_destroy_array(nt, (size_t)n_nt);
  sr_free(nt);
  if (rk) rd_kafka_destroy(rk);
  return ret;
}

sr_err_t sr_kafka_topics_delete(const char *brokers, const char *const *names, int n,
                                const sr_kv_t *kafka, int n_kafka, int timeout_ms, char *errstr,
                                size_t errsz) {
  sr_err_t ret = SR_OK;
  rd_kafka_t *rk = NULL;
  rd_kafka_queue_t *q = NULL;
  rd_kafka_AdminOptions_t *opts = NULL;
  rd_kafka_event_t *ev = NULL;
  rd_kafka_DeleteTopic_t **dt = NULL;
  if (!brokers || !names || n <= 0 || timeout_ms <= 0)
    return sr_seterr(errstr, errsz, SR_ERR_INVALID_ARG,
                     "sr_kafka_topics_delete: brokers, names, n > 0 and timeout_ms > 0 needed");
  const int64_t deadline = sr_mono_us() + (int64_t)timeout_ms * 1000;
  rk = sr_admin_client(brokers, kafka, n_kafka, &ret, errstr, errsz);
  if (!rk) goto out;
  dt = sr_calloc((size_t)n, sizeof(*dt));
  for (int i = 0; i < n; i++)
    dt[i] = rd_kafka_DeleteTopic_new(names[i] ? names[i] : "");
  q = rd_kafka_queue_new(rk);
  opts = sr_admin_options(rk, RD_KAFKA_ADMIN_OP_DELETETOPICS, timeout_ms);
  rd_kafka_DeleteTopics(rk, dt, (size_t)n, opts, q);
  ev = sr_admin_wait(q, RD_KAFKA_EVENT_DELETETOPICS_RESULT, "DeleteTopics", brokers, deadline, &ret,
                     errstr, errsz);
  if (!ev) goto out;
  size_t cnt = 0;
  const rd_kafka_topic_result_t **res =
      rd_kafka_DeleteTopics_result_topics(rd_kafka_event_DeleteTopics_result(ev), &cnt);
  for (size_t r = 0; r < cnt; r++) {
    rd_kafka_resp_err_t e = rd_kafka_topic_result_error(res[r]);
    if (e == RD_KAFKA_RESP_ERR_NO_ERROR || e == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART) continue;
    const char *why = rd_kafka_topic_result_error_string(res[r]);
    ret = sr_seterr(errstr, errsz, SR_ERR_KAFKA, "delete topic %s: %s (%s)",
                    rd_kafka_topic_result_name(res[r]), why && *why ? why : rd_kafka_err2str(e),
                    rd_kafka_err2name(e));
    goto out;
  }
out:
  if (ev) rd_kafka_event_destroy(ev);
  if (opts) rd_kafka_AdminOptions_destroy(opts);
  if (q) rd_kafka_queue_destroy(q);
  if (dt) rd_kafka_DeleteTopic_destroy_array(dt, (size_t)n);
  sr_free(dt);
  if (rk) rd_kafka_destroy(rk);
  return ret;
}

int sr_kafka_broker_count(const char *brokers, const sr_kv_t *kafka, int n_kafka, int timeout_ms,
                          char *errstr, size_t errsz) {
  sr_err_t err;
  int ret = -1;
  const struct rd_kafka_metadata *md = NULL;
  rd_kafka_t *rk = sr_admin_client(brokers, kafka, n_kafka, &err, errstr, errsz);
  if (!rk) return -1;
  /* all_topics 0 and no topic: brokers only, nothing auto-created */
  rd_kafka_resp_err_t e = rd_kafka_metadata(rk, 0, NULL, &md, timeout_ms);
  if (e) {
    sr_seterr(errstr, errsz, SR_ERR_KAFKA, "metadata from %s: %s", brokers, rd_kafka_err2str(e));
    goto out;
  }
  ret = md->broker_cnt;
out:
  if (md) rd_kafka_metadata_destroy(md);
  rd_kafka_destroy(rk);
  return ret;
}
