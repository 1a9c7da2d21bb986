/*
 * ingest: the consumer-group member that reads the events topic.
 *
 * Offsets are ours, not the client's: enable.auto.commit=false and
 * enable.auto.offset.store=false, so nothing is committed until the pipeline
 * calls sr_ingest_commit() with the offsets whose outputs the producer has
 * acknowledged (at-least-once, see docs/ARCHITECTURE.md). A new group starts
 * at the earliest offset (auto.offset.reset=earliest): a fresh deployment
 * replays the retained history instead of silently skipping it.
 *
 * Rebalances go through our callback so the pipeline gets its chance to
 * flush and commit before partitions go away: on revoke the user callback
 * runs first, then the assignment is dropped; on assign the assignment is
 * applied first, then the user is told. Both eager (range/roundrobin, the
 * default) and cooperative (cooperative-sticky via kafka.* properties)
 * protocols are handled.
 *
 * Latency first: fetch.wait.max.ms is lowered from 500 to 10 ms, so a fetch
 * for a quiet partition returns after 10 ms instead of holding a freshly
 * produced event for up to half a second; fetch.min.bytes=1 answers as soon
 * as one byte is there. Throughput does not suffer much because the client
 * pipelines fetches and pre-fetches up to queued.min.messages per partition.
 * Both can be overridden with kafka.* properties. These values live in the
 * defaults table of src/kafka/kafka.c (with the consumer's other defaults),
 * which builds the configuration.
 *
 * Exactly-once (conf->transactional): isolation.level=read_committed is
 * fixed (messages of open or aborted transactions are never returned) and
 * the consumer commits nothing itself: the pipeline sends the offsets into
 * the producer's transaction with the group metadata taken here
 * (sr_ingest_group_metadata), and after an aborted transaction moves the
 * fetch positions back (sr_ingest_seek).
 *
 * Thread: the handle belongs to the thread that created it (the pipeline
 * thread); every function here, and the rebalance, commit and error
 * callbacks, run on it. librdkafka's log callback (src/kafka) runs on its
 * internal threads and only logs.
 */
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include <librdkafka/rdkafka.h>

#include "kafka/kafka_int.h"
#include "streamrec/common.h"
#include "streamrec/kafka.h"

#define SR_INGEST_MOD "ingest"

struct sr_ingest_s {
  rd_kafka_t *rk;
  char *topic;
  sr_rebalance_cb_t *rebalance_cb;
  sr_commit_cb_t *commit_cb;
  void *opaque;
  int closed;
  int transactional; /* offsets go to the producer's transaction: no commits here */
  int paused;        /* back-pressure on: newly assigned partitions start paused */
  /* per-message error log rate limit: at most one line a second */
  int64_t errlog_last_us;
  int64_t errlog_suppressed;
  int64_t errors;                /* non-fatal consumer errors seen (messages with err) */
  int abandon;                   /* destroy without leaving the group */
  _Atomic int64_t down_since_ms; /* all brokers down reported at (wall ms), 0 = up */
  /* Revocations seen inside the current sr_ingest_poll(): partitions whose
   * already-collected messages must not be returned. */
  uint64_t revoke_gen;
  unsigned char *revoked; /* [n_revoked] flags, indexed by partition id */
  int n_revoked;
  uint64_t revoke_dropped;
};

/* Client-level errors (all brokers down, authentication, ...). Served from
 * the consumer queue (rd_kafka_poll_set_consumer), i.e. on the pipeline
 * thread inside sr_ingest_poll(). The client retries by itself. */
static void sr_ingest_error_cb(rd_kafka_t *rk, int err, const char *reason, void *opaque) {
  sr_ingest_t *in = opaque;
  if (err == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN) {
    int64_t zero = 0;
    atomic_compare_exchange_strong(&in->down_since_ms, &zero, sr_now_ms());
  }
  sr_kafka_log_error(rk, SR_INGEST_MOD, "consumer", err, reason);
}

/* Result of a commit (sync or async), served on the polling thread. Sync
 * callers get the error returned as well; this is where async failures
 * become visible. */
static void sr_ingest_commit_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                                rd_kafka_topic_partition_list_t *offsets, void *opaque) {
  sr_ingest_t *in = opaque;
  if (err == RD_KAFKA_RESP_ERR__NO_OFFSET) return; /* nothing was asked */
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
    sr_log_warn(SR_INGEST_MOD, "offset commit of %d partition(s) failed: %s",
                offsets ? offsets->cnt : 0, rd_kafka_err2str(err));
  if (!in->commit_cb || !offsets) return;
  for (int i = 0; i < offsets->cnt; i++) {
    const rd_kafka_topic_partition_t *e = &offsets->elems[i];
    if (strcmp(e->topic, in->topic)) continue;
    rd_kafka_resp_err_t perr = err ? err : e->err;
    in->commit_cb(in->opaque, e->partition, e->offset, perr ? SR_ERR_KAFKA : SR_OK,
                  perr ? rd_kafka_err2str(perr) : NULL);
  }
}

/* Partition ids of parts, as the flat array the user callback takes. */
static int32_t *sr_ingest_part_ids(const rd_kafka_topic_partition_list_t *parts) {
  int32_t *ids = sr_malloc((size_t)(parts->cnt ? parts->cnt : 1) * sizeof(*ids));
  for (int i = 0; i < parts->cnt; i++)
    ids[i] = parts->elems[i].partition;
  return ids;
}

static void sr_ingest_notify(sr_ingest_t *in, int assigned,
                             const rd_kafka_topic_partition_list_t *parts) {
  if (!in->rebalance_cb) return;
  int32_t *ids = sr_ingest_part_ids(parts);
  in->rebalance_cb(in->opaque, assigned, ids, parts->cnt);
  sr_free(ids);
}

/* Remembers revoked partitions for the poll in progress (sr_ingest_poll
 * drops what it collected of them before the revocation). */
static void sr_ingest_mark_revoked(sr_ingest_t *in, const rd_kafka_topic_partition_list_t *parts) {
  for (int i = 0; i < parts->cnt; i++) {
    int32_t p = parts->elems[i].partition;
    if (p < 0) continue;
    if (p >= in->n_revoked) {
      int n = in->n_revoked ? in->n_revoked : 64;
      while (n <= p)
        n *= 2;
      in->revoked = sr_realloc(in->revoked, (size_t)n);
      memset(in->revoked + in->n_revoked, 0, (size_t)(n - in->n_revoked));
      in->n_revoked = n;
    }
    in->revoked[p] = 1;
  }
  in->revoke_gen++;
}

static void sr_ingest_rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                                   rd_kafka_topic_partition_list_t *parts, void *opaque) {
  sr_ingest_t *in = opaque;
  int cooperative = strcmp(rd_kafka_rebalance_protocol(rk), "COOPERATIVE") == 0;
  rd_kafka_error_t *error = NULL;
  rd_kafka_resp_err_t aerr = RD_KAFKA_RESP_ERR_NO_ERROR;

  switch (err) {
  case RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS:
    if (cooperative)
      error = rd_kafka_incremental_assign(rk, parts);
    else
      aerr = rd_kafka_assign(rk, parts);
    if (error || aerr) {
      sr_log_error(SR_INGEST_MOD, "assign %d partition(s) failed: %s", parts->cnt,
                   error ? rd_kafka_error_string(error) : rd_kafka_err2str(aerr));
      if (error) rd_kafka_error_destroy(error);
      return; /* nothing was assigned: do not tell the pipeline it was */
    }
    if (in->paused) rd_kafka_pause_partitions(rk, parts);
    atomic_store(&in->down_since_ms, 0);
    sr_log_info(SR_INGEST_MOD, "assigned %d partition(s) of %s", parts->cnt, in->topic);
    sr_ingest_notify(in, 1, parts);
    break;

  case RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS:
    /* The pipeline flushes and commits while it still owns the partitions.
     * When the assignment was lost (session timeout) a commit will fail:
     * the new owner re-reads from the last commit (at-least-once). */
    if (rd_kafka_assignment_lost(rk))
      sr_log_warn(SR_INGEST_MOD, "assignment of %d partition(s) lost; commits will fail",
                  parts->cnt);
    sr_log_info(SR_INGEST_MOD, "revoking %d partition(s) of %s", parts->cnt, in->topic);
    sr_ingest_mark_revoked(in, parts);
    sr_ingest_notify(in, 0, parts);
    if (cooperative)
      error = rd_kafka_incremental_unassign(rk, parts);
    else
      aerr = rd_kafka_assign(rk, NULL);
    if (error || aerr) {
      sr_log_error(SR_INGEST_MOD, "unassign failed: %s",
                   error ? rd_kafka_error_string(error) : rd_kafka_err2str(aerr));
      if (error) rd_kafka_error_destroy(error);
    }
    break;

  default:
    /* librdkafka's documented recovery: drop the whole assignment and let
     * the group protocol hand out a new one. */
    sr_log_error(SR_INGEST_MOD, "rebalance error: %s", rd_kafka_err2str(err));
    if (cooperative) {
      if ((error = rd_kafka_incremental_unassign(rk, parts))) rd_kafka_error_destroy(error);
    } else {
      rd_kafka_assign(rk, NULL);
    }
    break;
  }
}

sr_ingest_t *sr_ingest_new(const sr_ingest_conf_t *c, char *errstr, size_t errsz) {
  char kerr[512];
  sr_ingest_t *in = NULL;
  rd_kafka_conf_t *conf = NULL;
  rd_kafka_topic_partition_list_t *sub = NULL;
  rd_kafka_resp_err_t err;

  if (!c || !c->brokers || !*c->brokers || !c->group || !*c->group || !c->topic || !*c->topic) {
    sr_seterr(errstr, errsz, SR_ERR_INVALID_ARG, "ingest: brokers, group and topic are required");
    return NULL;
  }
  in = sr_calloc(1, sizeof(*in));
  in->topic = sr_strdup(c->topic);
  in->rebalance_cb = c->rebalance_cb;
  in->commit_cb = c->commit_cb;
  in->opaque = c->opaque;
  in->transactional = c->transactional;

  /* our consumer defaults (src/kafka), then the user's kafka.*, which win
   * (the pipeline refuses kafka.* that would break exactly-once) */
  const sr_kv_t fixed[] = {{"group.id", c->group}, {"isolation.level", "read_committed"}};
  conf = sr_kafka_conf_new(SR_KAFKA_CONSUMER, c->brokers, c->client_id, fixed,
                           c->transactional ? 2 : 1, c->kafka, c->n_kafka, errstr, errsz);
  if (!conf) goto fail;
  rd_kafka_conf_set_error_cb(conf, sr_ingest_error_cb);
  rd_kafka_conf_set_rebalance_cb(conf, sr_ingest_rebalance_cb);
  rd_kafka_conf_set_offset_commit_cb(conf, sr_ingest_commit_cb);
  rd_kafka_conf_set_opaque(conf, in);

  in->rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, kerr, sizeof(kerr));
  if (!in->rk) {
    sr_seterr(errstr, errsz, SR_ERR_KAFKA, "ingest: rd_kafka_new: %s", kerr);
    goto fail;
  }
  conf = NULL; /* owned by rk */
  /* Route the main queue (error and log events) into the consumer queue so
   * that sr_ingest_poll() serves everything: no second poll loop. */
  rd_kafka_poll_set_consumer(in->rk);
  if (c->observe_only) {
    in->closed = 1; /* never joins: nothing to leave */
    return in;
  }

  sub = rd_kafka_topic_partition_list_new(1);
  rd_kafka_topic_partition_list_add(sub, c->topic, RD_KAFKA_PARTITION_UA);
  err = rd_kafka_subscribe(in->rk, sub);
  rd_kafka_topic_partition_list_destroy(sub);
  if (err) {
    sr_seterr(errstr, errsz, SR_ERR_KAFKA, "ingest: subscribe %s: %s", c->topic,
              rd_kafka_err2str(err));
    goto fail;
  }
  return in;

fail:
  if (conf) rd_kafka_conf_destroy(conf);
  if (in && in->rk) in->closed = 1; /* never joined: nothing to leave */
  sr_ingest_destroy(in);
  return NULL;
}

void sr_ingest_close(sr_ingest_t *in) {
  if (!in || in->closed || !in->rk) return;
  in->closed = 1;
  /* Serves the revoke callback (the pipeline commits there), then leaves. */
  rd_kafka_resp_err_t err = rd_kafka_consumer_close(in->rk);
  if (err) sr_log_warn(SR_INGEST_MOD, "consumer close: %s", rd_kafka_err2str(err));
}

void sr_ingest_abandon(sr_ingest_t *in) {
  if (in) in->abandon = 1;
}

void sr_ingest_destroy(sr_ingest_t *in) {
  if (!in) return;
  if (in->abandon) {
    if (in->rk) rd_kafka_destroy_flags(in->rk, RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE);
  } else {
    sr_ingest_close(in);
    if (in->rk) rd_kafka_destroy(in->rk);
  }
  sr_free(in->revoked);
  sr_free(in->topic);
  sr_free(in);
}

int64_t sr_ingest_down_ms(const sr_ingest_t *in) {
  int64_t since = atomic_load(&((sr_ingest_t *)in)->down_since_ms);
  return since > 0 ? SR_MAX(sr_now_ms() - since, 1) : 0;
}

uint64_t sr_ingest_revoke_dropped(const sr_ingest_t *in) { return in->revoke_dropped; }

/* Rate-limited (1/s) log line for a per-message consumer error. */
static void sr_ingest_log_msg_error(sr_ingest_t *in, const rd_kafka_message_t *rkm) {
  int64_t now = sr_mono_us();
  in->errors++;
  if (now - in->errlog_last_us < 1000000) {
    in->errlog_suppressed++;
    return;
  }
  sr_log_warn(SR_INGEST_MOD, "consume error on %s [%" PRId32 "] @%" PRId64 ": %s%s",
              rkm->rkt ? rd_kafka_topic_name(rkm->rkt) : "-", rkm->partition, rkm->offset,
              rd_kafka_message_errstr(rkm), in->errlog_suppressed ? " (and more)" : "");
  in->errlog_last_us = now;
  in->errlog_suppressed = 0;
}

/* After a revocation inside a poll: releases the entries of revoked
 * partitions collected before the consumer_poll call that served the
 * revocation (msgs[0..n_stale): their partition's position was reset, so
 * they come again) and compacts the rest. The message that call returned,
 * msgs[n_stale] if any, is kept: the client drops fetches of an older
 * assignment, so it comes from the assignment in force after the call, and
 * one call can serve the revocation, the re-assignment of the same
 * partition and return its first message from the last commit (seen on a
 * 3-broker Kafka: dropping that one lost it, the position having moved past
 * it; tests/integration/0104). */
static int sr_ingest_drop_revoked(sr_ingest_t *in, sr_msg_t *msgs, int n_stale, int n) {
  int keep = 0, dropped = 0;
  for (int i = 0; i < n; i++) {
    int32_t p = msgs[i].partition;
    if (i < n_stale && p >= 0 && p < in->n_revoked && in->revoked[p]) {
      sr_ingest_release(in, &msgs[i], 1);
      dropped++;
      continue;
    }
    if (keep != i) msgs[keep] = msgs[i];
    keep++;
  }
  if (dropped) {
    in->revoke_dropped += (uint64_t)dropped;
    sr_log_info(SR_INGEST_MOD,
                "released %d message(s) of revoked partitions unprocessed (read again from the "
                "last commit)",
                dropped);
  }
  return keep;
}

int sr_ingest_poll(sr_ingest_t *in, sr_msg_t *msgs, int max, int timeout_ms, int max_wait_us,
                   char *errstr, size_t errsz) {
  int n = 0;
  int64_t start = sr_mono_us();
  /* Until the first message: the caller's timeout. After it: max_wait_us. */
  int64_t deadline = start + (int64_t)(timeout_ms < 0 ? 0 : timeout_ms) * 1000;

  if (in->closed) {
    sr_seterr(errstr, errsz, SR_ERR_STATE, "ingest: poll after close");
    return -1;
  }
  const uint64_t gen = in->revoke_gen;
  if (in->n_revoked) memset(in->revoked, 0, (size_t)in->n_revoked);
  int n_stale = 0; /* entries collected before the current consumer_poll call */
  while (n < max && in->revoke_gen == gen) {
    int64_t now = sr_mono_us();
    n_stale = n;
    int tmo;
    if (timeout_ms < 0 && n == 0) {
      tmo = -1; /* wait forever for the first one */
    } else {
      int64_t left = deadline - now;
      /* Round up to whole ms so a sub-ms wait blocks instead of spinning;
       * the overshoot is below 1 ms. Zero left: take only what is queued. */
      tmo = left <= 0 ? 0 : (int)((left + 999) / 1000);
    }
    /* A revocation served inside consumer_poll does not end its wait:
     * re-check at least every 100 ms (see the revocation rule above). */
    if (tmo < 0 || tmo > 100) tmo = 100;
    rd_kafka_message_t *rkm = rd_kafka_consumer_poll(in->rk, tmo);
    if (!rkm) {
      if (in->revoke_gen != gen) break; /* return what is left at once */
      if (tmo == 0) break;              /* queue drained and no time left */
      if (sr_mono_us() >= deadline && !(timeout_ms < 0 && n == 0)) break;
      continue; /* woke for a served callback/event: keep waiting */
    }
    if (rkm->err) {
      if (rkm->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
        rd_kafka_message_destroy(rkm);
        continue;
      }
      if (rkm->err == RD_KAFKA_RESP_ERR__FATAL) {
        char fatal[512];
        rd_kafka_resp_err_t ferr = rd_kafka_fatal_error(in->rk, fatal, sizeof(fatal));
        sr_seterr(errstr, errsz, SR_ERR_FATAL, "ingest: fatal consumer error %s: %s",
                  rd_kafka_err2name(ferr), fatal);
        rd_kafka_message_destroy(rkm);
        sr_ingest_release(in, msgs, n);
        return -1;
      }
      /* Returned, not skipped: the caller dead-letters it (README:
       * nothing is dropped silently). */
      sr_ingest_log_msg_error(in, rkm);
      /* errstr is a copy owned by the entry (freed by sr_ingest_release) */
      sr_kafka_msg_fill_error(&msgs[n], rkm, in->topic);
    } else {
      sr_kafka_msg_fill(&msgs[n], rkm);
      if (atomic_load_explicit(&in->down_since_ms, memory_order_relaxed))
        atomic_store(&in->down_since_ms, 0);
    }
    if (n++ == 0) deadline = sr_mono_us() + (max_wait_us < 0 ? 0 : max_wait_us);
    if (in->revoke_gen != gen) break;
  }
  if (in->revoke_gen != gen) n = sr_ingest_drop_revoked(in, msgs, n_stale, n);
  return n;
}

void sr_ingest_release(sr_ingest_t *in, sr_msg_t *msgs, int n) {
  for (int i = 0; i < n; i++) {
    if (msgs[i].priv_) rd_kafka_message_destroy(msgs[i].priv_);
    msgs[i].priv_ = NULL;
    if (msgs[i].err != SR_OK) sr_free((char *)msgs[i].errstr);
    msgs[i].errstr = NULL;
    msgs[i].err = SR_OK;
  }
}

static rd_kafka_topic_partition_list_t *sr_ingest_parts(const sr_ingest_t *in, const int32_t *parts,
                                                        int n) {
  rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(n > 0 ? n : 1);
  for (int i = 0; i < n; i++)
    rd_kafka_topic_partition_list_add(l, in->topic, parts[i]);
  return l;
}

sr_err_t sr_ingest_commit(sr_ingest_t *in, const int32_t *parts, const int64_t *next_offsets, int n,
                          int async, char *errstr, size_t errsz) {
  if (in->transactional)
    return sr_seterr(errstr, errsz, SR_ERR_STATE,
                     "ingest: no consumer commits with exactly-once (offsets go to the "
                     "transaction)");
  if (n <= 0) return SR_OK;
  rd_kafka_topic_partition_list_t *l = sr_ingest_parts(in, parts, n);
  for (int i = 0; i < n; i++)
    l->elems[i].offset = next_offsets[i];
  /* async: failures are only logged (sr_ingest_commit_cb, during a later
   * poll); use a sync commit where the caller must know. */
  rd_kafka_resp_err_t err = rd_kafka_commit(in->rk, l, async);
  sr_err_t ret = SR_OK;
  if (err && err != RD_KAFKA_RESP_ERR__NO_OFFSET) {
    ret = sr_seterr(errstr, errsz, SR_ERR_KAFKA, "ingest: commit of %d partition(s): %s", n,
                    rd_kafka_err2str(err));
  } else if (!async) {
    for (int i = 0; i < l->cnt; i++) {
      if (l->elems[i].err) {
        ret = sr_seterr(errstr, errsz, SR_ERR_KAFKA, "ingest: commit %s [%" PRId32 "]: %s",
                        in->topic, l->elems[i].partition, rd_kafka_err2str(l->elems[i].err));
        break;
      }
    }
  }
  rd_kafka_topic_partition_list_destroy(l);
  return ret;
}

sr_err_t sr_ingest_committed(sr_ingest_t *in, const int32_t *parts, int64_t *offsets, int n,
                             int timeout_ms) {
  if (n <= 0) return SR_OK;
  rd_kafka_topic_partition_list_t *l = sr_ingest_parts(in, parts, n);
  rd_kafka_resp_err_t err = rd_kafka_committed(in->rk, l, timeout_ms);
  sr_err_t ret = SR_OK;
  if (err) {
    sr_log_warn(SR_INGEST_MOD, "committed offsets: %s", rd_kafka_err2str(err));
    ret = err == RD_KAFKA_RESP_ERR__TIMED_OUT ? SR_ERR_TIMEOUT : SR_ERR_KAFKA;
    goto out;
  }
  for (int i = 0; i < n; i++) {
    /* Same order as parts: the list was built from it and is updated in place. */
    const rd_kafka_topic_partition_t *e = &l->elems[i];
    if (e->err) {
      sr_log_warn(SR_INGEST_MOD, "committed offset of %s [%" PRId32 "]: %s", in->topic,
                  e->partition, rd_kafka_err2str(e->err));
      ret = SR_ERR_KAFKA;
      goto out;
    }
    offsets[i] = e->offset < 0 ? -1 : e->offset;
  }
out:
  rd_kafka_topic_partition_list_destroy(l);
  return ret;
}

void sr_ingest_pause(sr_ingest_t *in, int pause) {
  rd_kafka_topic_partition_list_t *l = NULL;
  in->paused = pause ? 1 : 0;
  rd_kafka_resp_err_t err = rd_kafka_assignment(in->rk, &l);
  if (err) {
    sr_log_warn(SR_INGEST_MOD, "assignment: %s", rd_kafka_err2str(err));
    return;
  }
  if (l->cnt > 0) {
    err = pause ? rd_kafka_pause_partitions(in->rk, l) : rd_kafka_resume_partitions(in->rk, l);
    if (err)
      sr_log_warn(SR_INGEST_MOD, "%s %d partition(s): %s", pause ? "pause" : "resume", l->cnt,
                  rd_kafka_err2str(err));
  }
  rd_kafka_topic_partition_list_destroy(l);
}

sr_ingest_group_t *sr_ingest_group_metadata(sr_ingest_t *in) {
  rd_kafka_consumer_group_metadata_t *md = rd_kafka_consumer_group_metadata(in->rk);
  if (!md) return NULL;
  sr_ingest_group_t *g = sr_calloc(1, sizeof(*g));
  g->md = md;
  return g;
}

void sr_ingest_group_destroy(sr_ingest_group_t *g) {
  if (!g) return;
  rd_kafka_consumer_group_metadata_destroy(g->md);
  sr_free(g);
}

sr_err_t sr_ingest_seek(sr_ingest_t *in, const int32_t *parts, const int64_t *offsets, int n,
                        int timeout_ms, char *errstr, size_t errsz) {
  if (n <= 0) return SR_OK;
  sr_err_t ret = SR_OK;
  rd_kafka_topic_partition_list_t *l = sr_ingest_parts(in, parts, n);
  for (int i = 0; i < n; i++)
    l->elems[i].offset = offsets[i];
  /* With a timeout the call waits until the fetcher applied each seek, so
   * nothing fetched from the old position is returned after it. */
  rd_kafka_error_t *error = rd_kafka_seek_partitions(in->rk, l, timeout_ms);
  if (error) {
    ret = sr_seterr(errstr, errsz, SR_ERR_KAFKA, "ingest: seek of %d partition(s): %s", n,
                    rd_kafka_error_string(error));
    rd_kafka_error_destroy(error);
    goto out;
  }
  for (int i = 0; i < l->cnt; i++) {
    if (l->elems[i].err) {
      ret = sr_seterr(errstr, errsz, SR_ERR_KAFKA,
                      "ingest: seek %s [%" PRId32 "] to %" PRId64 ": %s", in->topic,
                      l->elems[i].partition, l->elems[i].offset, rd_kafka_err2str(l->elems[i].err));
      break;
    }
  }
out:
  rd_kafka_topic_partition_list_destroy(l);
  return ret;
}
