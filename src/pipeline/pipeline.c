/*
 * pipeline: the online worker loop. Owns the consumer, the producer, the
 * codec, the user state and the scorer, and drives them from one thread:
 * poll, decode, apply, score, send, dead letters, rebalance. The module's
 * other rooms: pipeline_commit.c (delivery reports, commits,
 * back-pressure) over ledger.c (the offset ledger, pure), batch.c (the
 * micro-batch rows, written straight into the scorer's matrix), input.c
 * (the input rules and the dead-letter headers), pipeline_new.c (new and
 * destroy), pipeline_conf.c (the options).
 *
 * Why one thread: the unavoidable cost per event is scoring the catalogue
 * (one sgemm row); decode, state update and encode are small next to it. A
 * single pipeline thread needs no locks on the per-event path and keeps the
 * offset bookkeeping trivially ordered; cores go to OpenBLAS inside sgemm
 * (docs/ARCHITECTURE.md). Scale-out is by more workers in the group.
 *
 * Delivery guarantee (pipeline_commit.c, ledger.h): every consumed message
 * belongs to a batch record that its outputs hold until their delivery
 * reports; offsets are committed only past batches whose every output was
 * acknowledged, and only a commit result marks them committed. Each path
 * here that abandons a batch (a send given up at stop, a fatal producer
 * error, rows left unsent) marks it failed, so nothing at or after it is
 * committed.
 *
 * The serve rule (one event applied to one user) is sr_user_apply
 * (state.h), the same function eval replays with.
 *
 * Per-event problems never stop the worker: undecodable input, input that
 * breaks the input rules (sr_pipeline_input_check), consumer errors, a user the
 * state cannot hold, a recommendation that cannot be encoded or is larger
 * than the producer accepts all become dead letters with the reason. A
 * dead letter that is itself too large is sent with its key and value
 * truncated (headers give the original sizes).
 */
#include <stdio.h>
#include <string.h>

#include "pipeline/input.h"
#include "pipeline/pipeline_int.h"

void sr_pipeline_fatal(sr_pipeline_t *p, sr_err_t err, const char *fmt, const char *a) {
  if (p->fatal != SR_OK) return; /* keep the first cause */
  p->fatal = err;
  snprintf(p->fatal_str, sizeof(p->fatal_str), fmt, a);
  sr_log_error(SR_PIPE_MOD, "%s", p->fatal_str);
}

void sr_pipeline_on_rebalance(void *opaque, int assigned, const int32_t *parts, int n) {
  sr_pipeline_t *p = opaque;
  if (assigned) {
    for (int i = 0; i < n; i++) {
      if (parts[i] < 0) continue;
      sr_pipeline_ledger_assign(p->ledger, parts[i]);
      /* Start from nothing: state left from an earlier ownership would have
       * the events since the last commit applied twice. */
      sr_state_partition_drop(p->state, parts[i]);
      sr_state_partition_add(p->state, parts[i]);
      if (p->eos) sr_pipeline_txn_assigned(p, parts[i]);
    }
    p->n_assigned += n;
    if (p->n_assigned > 0) atomic_store(&p->unassigned_since_ms, 0);
    STAT_ADD(p, assigned_partitions, (uint64_t)n);
    sr_log_info(SR_PIPE_MOD, "assigned %d partition(s) of %s", n, p->events_topic);
    return;
  }
  /* Revoke: finish and commit what we did for these partitions while we
   * still own them, then drop their positions and state. */
  sr_pipeline_drain(p, 0);
  for (int i = 0; i < n; i++) {
    if (parts[i] < 0) continue;
    if (sr_pipeline_ledger_revoke(p->ledger, parts[i])) p->n_assigned--;
    sr_state_partition_drop(p->state, parts[i]);
  }
  if (p->n_assigned <= 0) {
    p->n_assigned = 0;
    atomic_store(&p->unassigned_since_ms, sr_now_ms());
  }
  atomic_fetch_sub_explicit(&p->st.assigned_partitions, (uint64_t)n, memory_order_relaxed);
  atomic_store_explicit(&p->st.users, sr_state_users(p->state), memory_order_relaxed);
  sr_log_info(SR_PIPE_MOD, "revoked %d partition(s) of %s", n, p->events_topic);
}

int sr_pipeline_stopping(sr_pipeline_t *p) {
  return atomic_load_explicit(&p->stop, memory_order_relaxed) ||
         atomic_load_explicit(&p->abort_, memory_order_relaxed);
}

/* Sends one message, serving delivery reports while the local queue is
 * full. Returns SR_OK; SR_ERR_TOO_LARGE (this message can never be sent:
 * the caller dead-letters or truncates; the batch is not failed); or
 * another error, after which the batch is failed (nothing at or after it is
 * committed): a permanent producer error (recorded as fatal; with
 * exactly_once only a fatal producer is, any other refusal aborts the
 * transaction) or a stop that came while the queue was full (SR_ERR_STATE). */
static sr_err_t sr_pipeline_send(sr_pipeline_t *p, sr_pipeline_ledger_batch_t *b, int is_dlq,
                                 const char *topic, const void *key, size_t klen, const void *val,
                                 size_t vlen, const sr_header_t *hdrs, int nh, char *es,
                                 size_t essz) {
  for (;;) {
    sr_err_t e = sr_publish_send(p->publish, topic, -1, key, klen, val, vlen, hdrs, nh,
                                 (void *)(uintptr_t)((b->seq << 1) | (uint64_t)is_dlq), es, essz);
    if (e == SR_OK) {
      sr_pipeline_ledger_hold(b);
      return SR_OK;
    }
    if (e == SR_ERR_TOO_LARGE) return e;
    if (p->eos && !sr_err_is_retriable(e)) {
      /* In a transaction a refused send (the transaction is in an abortable
       * state, a delivery failed) aborts it; only a fatal producer stops. */
      char fs[512];
      sr_pipeline_ledger_fail(b);
      if (sr_publish_fatal_error(p->publish, fs, sizeof(fs)) != SR_OK)
        sr_pipeline_fatal(p, SR_ERR_FATAL, "exactly-once: %s", fs);
      else
        p->txn_abort = 1;
      return e;
    }
    if (!sr_err_is_retriable(e)) { /* of what send returns, only QUEUE_FULL is */
      sr_pipeline_ledger_fail(b);
      sr_pipeline_fatal(p, e, "produce failed: %s", es);
      return e;
    }
    if (sr_pipeline_stopping(p)) {
      sr_pipeline_ledger_fail(b); /* abandoned: its offsets must not be committed */
      return SR_ERR_STATE;
    }
    sr_publish_poll(p->publish, 10);
  }
}

/* Dead-letters m (its key and value, untouched) with the reason headers.
 * A dead letter larger than the producer accepts goes out with its key and
 * value cut to SR_DLQ_KEY_KEEP / SR_DLQ_VALUE_KEEP bytes (then with neither)
 * and headers giving the original sizes: it is never given up for size. */
static void sr_pipeline_dlq(sr_pipeline_t *p, sr_pipeline_ledger_batch_t *b, const sr_msg_t *m,
                            sr_err_t why, const char *reason) {
  char es[256];
  sr_pipeline_dlq_headers_t d;
  sr_pipeline_dlq_headers(&d, m, p->events_topic, why, reason);
  sr_log_debug(SR_PIPE_MOD, "dead-letter %s[%d]@%lld: %s", m->topic ? m->topic : p->events_topic,
               (int)m->partition, (long long)m->offset, reason);
  size_t klen = m->key ? m->key_len : 0, vlen = m->value ? m->len : 0;
  sr_err_t e = sr_pipeline_send(p, b, 1, p->dlq_topic, m->key, klen, m->value, vlen, d.h,
                                SR_DLQ_HEADERS, es, sizeof(es));
  if (e == SR_ERR_TOO_LARGE) {
    STAT_ADD(p, oversized, 1);
    e = sr_pipeline_send(p, b, 1, p->dlq_topic, m->key, SR_MIN(klen, SR_DLQ_KEY_KEEP), m->value,
                         SR_MIN(vlen, SR_DLQ_VALUE_KEEP), d.h, SR_DLQ_HEADERS_CUT, es, sizeof(es));
    if (e == SR_ERR_TOO_LARGE)
      e = sr_pipeline_send(p, b, 1, p->dlq_topic, NULL, 0, NULL, 0, d.h, SR_DLQ_HEADERS_CUT, es,
                           sizeof(es));
    if (e == SR_ERR_TOO_LARGE) {
      sr_pipeline_ledger_fail(b);
      sr_pipeline_fatal(p, SR_ERR_TOO_LARGE,
                        "a dead letter does not fit even without key and value (%s): raise "
                        "kafka.producer.message.max.bytes",
                        es);
    }
  }
  if (e == SR_OK) STAT_ADD(p, dlq, 1);
}

/* Applies one decoded event (messages[mi] of the batch) to state (serve's
 * rule, sr_user_apply) and to the batch rows. Returns SR_OK, or
 * SR_ERR_STATE_FULL (with es) when a new user does not fit: nothing was
 * changed and the caller dead-letters it. */
static sr_err_t sr_pipeline_apply(sr_pipeline_t *p, const sr_msg_t *m, int mi, const sr_event_t *ev,
                                  char *es, size_t essz) {
  if (ev->type == SR_EV_FORGET) {
    /* Privacy: drop the user's state; nothing is recommended for a forget,
     * and the user's rows still waiting in this batch are dropped too. */
    sr_pipeline_batch_forget(p->rows, m->partition, ev->user_id.ptr, ev->user_id.len);
    sr_state_forget(p->state, m->partition, ev->user_id.ptr, ev->user_id.len);
    STAT_ADD(p, forgotten, 1);
    return SR_OK;
  }
  int created = 0, coalesced = 0;
  /* The partition is assigned (sr_pipeline_process checked): its store
   * exists, so NULL means the store is full. */
  sr_user_t *u =
      sr_state_get(p->state, m->partition, ev->user_id.ptr, ev->user_id.len, 1, &created);
  if (!u) {
    STAT_ADD(p, state_full, 1);
    return sr_seterr(es, essz, SR_ERR_STATE_FULL,
                     "partition %d holds %zu users, the most state.partition.users.max (%u) "
                     "allows: add partitions and workers, or raise the bound",
                     (int)m->partition, sr_state_partition_users(p->state, m->partition),
                     (unsigned)sr_state_max_users(p->state));
  }
  float *h = sr_user_vec(p->state, u);
  if (created) sr_model_state_init(p->model, h);
  int32_t item = sr_model_item_lookup(p->model, ev->item_id.ptr, ev->item_id.len);
  if (item < 0)
    STAT_ADD(p, unknown_items, 1);
  else if (sr_user_apply(p->state, u, p->model, ev->type, item, ev->value, ev->ts_ms))
    STAT_ADD(p, seen_dropped, 1);
  sr_pipeline_batch_put(p->rows, u, h, &u->seen, m, mi, ev, p->conf.coalesce, &coalesced);
  if (coalesced) STAT_ADD(p, coalesced, 1);
  return SR_OK;
}

/* Scores the batch's rows and publishes one Recommendation each; msgs are
 * the batch's input messages (a row whose recommendation cannot be
 * encoded or sent for size dead-letters its event instead). */
static void sr_pipeline_flush_rows(sr_pipeline_t *p, sr_pipeline_ledger_batch_t *b,
                                   const sr_msg_t *msgs) {
  int64_t t0 = sr_mono_ns();
  int n = sr_pipeline_batch_score(p->rows);
  if (n == 0) return;
  STAT_ADD(p, score_ns, (uint64_t)(sr_mono_ns() - t0));
  const char *ver = sr_model_version(p->model);
  for (int i = 0; i < n; i++) {
    if (b->failed || p->fatal != SR_OK) {
      sr_pipeline_ledger_fail(b); /* rows left unsent: nothing at or after this batch commits */
      break;
    }
    const sr_msg_t *src = &msgs[p->rows->rows[i].msg];
    sr_rec_t rec;
    sr_pipeline_batch_rec(p->rows, i, p->model, p->rec_items, &rec);
    rec.model_version = sr_str_cstr(ver);
    rec.produced_at = sr_now_ms();
    sr_buf_reset(&p->enc);
    char es[320];
    sr_err_t e = sr_codec_encode_rec(p->codec, &rec, &p->enc);
    if (e != SR_OK) {
      snprintf(es, sizeof(es), "the recommendation for this event could not be encoded: %s (%s)",
               sr_err2str(e), sr_err2name(e));
      sr_pipeline_dlq(p, b, src, SR_ERR_ENCODE, es);
      continue;
    }
    e = sr_pipeline_send(p, b, 0, p->recs_topic, rec.user_id.ptr, rec.user_id.len, p->enc.data,
                         p->enc.len, NULL, 0, es, sizeof(es));
    if (e == SR_OK) {
      STAT_ADD(p, recs_sent, 1);
    } else if (e == SR_ERR_TOO_LARGE) {
      char why[400];
      STAT_ADD(p, oversized, 1);
      snprintf(why, sizeof(why), "the recommendation for this event is too large to produce: %s",
               es);
      sr_pipeline_dlq(p, b, src, SR_ERR_TOO_LARGE, why);
    }
  }
}

/* Rate-limited (1/s) warning for messages of partitions not assigned. */
static void sr_pipeline_skip_log(sr_pipeline_t *p, const sr_msg_t *m) {
  int64_t now = sr_mono_us();
  if (now - p->last_skip_log_us < 1000000) return;
  p->last_skip_log_us = now;
  sr_log_warn(SR_PIPE_MOD, "message of unassigned partition %d @%lld not processed",
              (int)m->partition, (long long)m->offset);
}

static void sr_pipeline_process(sr_pipeline_t *p, sr_msg_t *msgs, int n) {
  /* exactly_once: every output and offset of the batch belongs to the open
   * transaction (a failure to begin one is fatal: nothing processed) */
  if (p->eos && sr_pipeline_txn_begin(p) != 0) return;
  sr_pipeline_ledger_batch_t *b = sr_pipeline_open(p);
  if (!b) return; /* fatal or stopping with the ring full: nothing processed or committed */
  sr_pipeline_batch_reset(p->rows);
  for (int i = 0; i < n && !b->failed; i++) {
    sr_msg_t *m = &msgs[i];
    sr_event_t ev;
    char es[320];
    if (m->err != SR_OK) {
      /* A consumer error: its offset is a fetch position, not a message
       * we read, so it is not noted for commit. */
      STAT_ADD(p, consume_errors, 1);
      sr_pipeline_dlq(p, b, m, m->err, m->errstr ? m->errstr : "consumer error");
      continue;
    }
    sr_err_t e = sr_pipeline_ledger_note(p->ledger, b, m->partition, m->offset);
    if (e == SR_ERR_STATE) {
      /* Not assigned: cannot happen with sr_ingest_poll's revocation rule;
       * if it did, the partition's owner processes it: never state for a
       * partition we do not own. */
      STAT_ADD(p, revoke_dropped, 1);
      sr_pipeline_skip_log(p, m);
      continue;
    }
    if (e != SR_OK) { /* more partitions than messages: cannot happen */
      sr_pipeline_ledger_fail(b);
      sr_pipeline_fatal(p, SR_ERR_STATE, "batch record full: %s", "not committing past it");
      break;
    }
    if (p->eos) sr_pipeline_txn_note(p, m->partition, m->offset);
    e = sr_codec_decode_event(p->codec, m->value, m->len, &ev, es, sizeof(es));
    if (e == SR_OK) {
      STAT_ADD(p, decoded, 1);
      e = sr_pipeline_input_check(&p->conf, m, &ev, sr_now_ms(), es, sizeof(es));
      if (e != SR_OK) STAT_ADD(p, rejected, 1);
    }
    if (e == SR_OK) e = sr_pipeline_apply(p, m, i, &ev, es, sizeof(es));
    if (e != SR_OK) sr_pipeline_dlq(p, b, m, e, es);
  }
  STAT_ADD(p, consumed, (uint64_t)n);
  if (!b->failed) sr_pipeline_flush_rows(p, b, msgs);
  sr_pipeline_ledger_release(b); /* seal */
  STAT_ADD(p, batches, 1);
  const uint64_t users = sr_state_users(p->state);
  atomic_store_explicit(&p->st.users, users, memory_order_relaxed);
  /* only this thread writes it: load + store is enough */
  if (users > atomic_load_explicit(&p->st.users_peak, memory_order_relaxed))
    atomic_store_explicit(&p->st.users_peak, users, memory_order_relaxed);
}

/* -------------------------------------------------------------------- run */

/* Every 10 s without an assignment: say so, and why if the client knows. */
static void sr_pipeline_wait_log(sr_pipeline_t *p) {
  int64_t since = atomic_load_explicit(&p->unassigned_since_ms, memory_order_relaxed);
  int64_t now = sr_mono_us();
  if (!since || now - p->last_wait_log_us < 10000000) return;
  int64_t waited = sr_now_ms() - since;
  if (waited < 10000) return;
  p->last_wait_log_us = now;
  int64_t down = sr_ingest_down_ms(p->ingest);
  if (down > 0)
    sr_log_warn(SR_PIPE_MOD,
                "no partition of %s assigned for %.0f s: all brokers at %s unreachable for "
                "%.0f s",
                p->events_topic, (double)waited / 1e3, p->brokers, (double)down / 1e3);
  else
    sr_log_warn(SR_PIPE_MOD,
                "no partition of %s assigned for %.0f s (group %s joining, or more members "
                "than partitions)",
                p->events_topic, (double)waited / 1e3, p->group);
}

sr_err_t sr_pipeline_run(sr_pipeline_t *p, char *errstr, size_t errsz) {
  int64_t last_input_us = sr_mono_us();
  uint64_t total = 0, revoke_dropped = 0;
  char es[512];
  p->last_commit_us = sr_mono_us();
  sr_log_info(SR_PIPE_MOD, "consuming %s as group %s; recommendations -> %s, dead letters -> %s",
              p->events_topic, p->group, p->recs_topic, p->dlq_topic);
  /* Output topics' metadata now, while the consumer joins, not at the
   * first event. */
  sr_publish_prepare(p->publish, p->recs_topic);
  sr_publish_prepare(p->publish, p->dlq_topic);
  if (p->eos) sr_pipeline_txn_init(p); /* fences an older instance of this worker */
  while (!atomic_load(&p->stop) && p->fatal == SR_OK) {
    int want = p->conf.batch_max;
    if (p->conf.max_events > 0 && (int64_t)(p->conf.max_events - total) < want)
      want = (int)(p->conf.max_events - total);
    int n = sr_ingest_poll(p->ingest, p->msgs, want, 100, p->conf.batch_wait_us, es, sizeof(es));
    sr_pipeline_wait_log(p);
    const uint64_t dropped = sr_ingest_revoke_dropped(p->ingest);
    if (dropped != revoke_dropped) {
      STAT_ADD(p, revoke_dropped, dropped - revoke_dropped);
      revoke_dropped = dropped;
    }
    if (n < 0) {
      sr_pipeline_fatal(p, SR_ERR_KAFKA, "consumer failed: %s", es);
      break;
    }
    if (p->rewind_pending) {
      /* a transaction was aborted inside the poll (revocation): what it
       * collected before is behind the rewind, and comes again after it */
      sr_ingest_release(p->ingest, p->msgs, n);
      n = 0;
      sr_pipeline_txn_rewind(p);
    }
    if (n > 0) {
      sr_pipeline_process(p, p->msgs, n);
      sr_ingest_release(p->ingest, p->msgs, n);
      total += (uint64_t)n;
      last_input_us = sr_mono_us();
    }
    sr_publish_poll(p->publish, 0);
    const int64_t commit_from = sr_mono_us();
    if (p->eos) {
      if (p->txn_abort || (n > 0 && p->conf.txn_scope == SR_TXN_SCOPE_BATCH) ||
          sr_mono_us() - p->last_commit_us >= (int64_t)p->conf.commit_interval_ms * 1000)
        sr_pipeline_txn_finish(p, 0);
      if (p->rewind_pending) sr_pipeline_txn_rewind(p);
    } else if (sr_mono_us() - p->last_commit_us >= (int64_t)p->conf.commit_interval_ms * 1000)
      sr_pipeline_commit(p, 0);
    /* Time blocked in our own commit (a transaction's commit waits for the
     * coordinator, seconds on a loaded cluster) is not time without input:
     * idle.exit.ms must not end the run while the next batch waits. */
    last_input_us += sr_mono_us() - commit_from;
    if (p->conf.max_events > 0 && (int64_t)total >= p->conf.max_events) break;
    if (p->conf.idle_exit_ms > 0 && total > 0 &&
        sr_mono_us() - last_input_us >= (int64_t)p->conf.idle_exit_ms * 1000)
      break;
  }
  /* Finish in-flight work, commit, leave the group (the revoke callback
   * drains and commits once more). After abort: none of that. */
  sr_pipeline_drain(p, 1);
  if (atomic_load(&p->abort_)) {
    sr_log_warn(SR_PIPE_MOD, "aborted: not committing, not leaving the group (its partitions "
                             "move after session.timeout.ms)");
    sr_ingest_abandon(p->ingest);
  } else {
    sr_ingest_close(p->ingest);
  }
  if (p->fatal != SR_OK) return sr_seterr(errstr, errsz, p->fatal, "%s", p->fatal_str);
  return SR_OK;
}

void sr_pipeline_stop(sr_pipeline_t *p) { atomic_store(&p->stop, 1); }

void sr_pipeline_abort(sr_pipeline_t *p) {
  atomic_store(&p->abort_, 1);
  atomic_store(&p->stop, 1);
}

void sr_pipeline_stats(const sr_pipeline_t *p, sr_pipeline_stats_t *out) {
#define SR__STAT_COPY(f, kind, metric, div, help)                                                  \
  out->f = atomic_load_explicit(&p->st.f, memory_order_relaxed);
  SR_PIPELINE_STATS(SR__STAT_COPY)
#undef SR__STAT_COPY
  /* SR_PIPELINE_STATS_CLOCK: durations computed at snapshot time */
  int64_t since =
      atomic_load_explicit(&((sr_pipeline_t *)p)->unassigned_since_ms, memory_order_relaxed);
  out->unassigned_ms = since > 0 ? SR_MAX(sr_now_ms() - since, 1) : 0;
  out->kafka_down_ms = p->ingest ? sr_ingest_down_ms(p->ingest) : 0;
}
