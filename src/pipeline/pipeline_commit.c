/*
 * pipeline_commit: the pipeline's side of the delivery guarantee, between
 * the offset ledger (ledger.h: the rules, as plain data) and the Kafka
 * clients: delivery reports and commit results go into the ledger, the
 * ledger's commit plan goes out to the group coordinator.
 *
 * Every consumed message belongs to a batch record; each output holds a
 * reference on it until its delivery report; batches retire in order and
 * move the committable positions. Commits go out every
 * commit_interval_ms, on revocation (synchronously, after flushing the
 * producer) and at shutdown. A position counts as committed only when the
 * commit's result says so (sr_pipeline_on_commit, or a sync commit that
 * succeeded): a failed commit is sent again at the next interval, and at
 * the final drain. A permanently failed delivery poisons its batch:
 * nothing at or after it is ever retired, and run() stops with
 * SR_ERR_DELIVERY. The same holds for every other way a batch can be left
 * unfinished (a send abandoned at stop, a fatal producer error): each path
 * that abandons a batch marks it failed. The ring bounds the batches in
 * flight: opening one waits while it is full (back-pressure), and a slot is
 * never reused while its batch is live.
 */
#include <stdio.h>

#include "pipeline/pipeline_int.h"

void sr_pipeline_retire(sr_pipeline_t *p) {
  if (sr_pipeline_ledger_retire(p->ledger) != SR_OK)
    sr_pipeline_fatal(p, SR_ERR_STATE, "batch ring corrupt: slot holds batch %s",
                      "of another sequence; not committing past it");
}

void sr_pipeline_on_delivery(void *opaque, void *msg_opaque, sr_err_t err, const char *reason) {
  sr_pipeline_t *p = opaque;
  uint64_t tag = (uint64_t)(uintptr_t)msg_opaque;
  uint64_t seq = tag >> 1; /* low bit: 1 = dead letter, 0 = recommendation */
  sr_pipeline_ledger_batch_t *b = sr_pipeline_ledger_batch(p->ledger, seq);
  if (!b) {
    if (p->eos) /* an output of an aborted transaction: its batch was forgotten */
      sr_log_debug(SR_PIPE_MOD, "delivery report of aborted batch %llu", (unsigned long long)seq);
    else
      sr_log_error(SR_PIPE_MOD, "delivery report for unknown batch %llu", (unsigned long long)seq);
    return;
  }
  if (err != SR_OK && p->eos) {
    /* exactly_once: a failed output aborts its transaction (the outputs of
     * an abort itself, purged, are expected to fail) */
    sr_pipeline_ledger_fail(b);
    if (!p->txn_aborting) {
      STAT_ADD(p, delivery_failed, 1);
      if (!p->txn_abort)
        sr_log_warn(SR_PIPE_MOD, "output delivery failed (%s): aborting the transaction",
                    reason ? reason : "?");
      p->txn_abort = 1;
    }
  } else if (err != SR_OK) {
    sr_pipeline_ledger_fail(b);
    STAT_ADD(p, delivery_failed, 1);
    sr_pipeline_fatal(p, SR_ERR_DELIVERY,
                      "output delivery failed permanently (%s): stopping without committing "
                      "past it; restart re-processes from the last commit",
                      reason ? reason : "?");
  } else if (!(tag & 1)) {
    STAT_ADD(p, recs_delivered, 1);
  }
  sr_pipeline_ledger_release(b);
}

/* A commit's result for one partition (ingest's commit callback; also
 * called for the outcome of a sync commit). */
void sr_pipeline_on_commit(void *opaque, int32_t part, int64_t next_offset, sr_err_t err,
                           const char *reason) {
  sr_pipeline_t *p = opaque;
  if (!sr_pipeline_ledger_commit_result(p->ledger, part, next_offset, err)) return;
  STAT_ADD(p, commit_failed, 1);
  sr_log_debug(SR_PIPE_MOD, "commit of partition %d at %lld failed (%s): sent again", (int)part,
               (long long)next_offset, reason ? reason : "?");
}

/* Commits the ledger's plan: every active partition whose committable
 * position is not known committed (async: and not in flight already). */
void sr_pipeline_commit(sr_pipeline_t *p, int sync) {
  char es[256] = "";
  const int32_t *parts;
  const int64_t *offs;
  sr_pipeline_retire(p);
  int n = sr_pipeline_ledger_plan(p->ledger, sync, &parts, &offs);
  p->last_commit_us = sr_mono_us();
  if (n == 0) return;
  sr_pipeline_ledger_commit_sent(p->ledger, parts, offs, n);
  sr_err_t e = sr_ingest_commit(p->ingest, parts, offs, n, !sync, es, sizeof(es));
  if (e == SR_OK)
    STAT_ADD(p, commits, 1);
  else
    sr_log_warn(SR_PIPE_MOD, "commit failed (sent again at the next interval): %s", es);
  /* a sync commit's outcome is known now; an async one's arrives through
   * sr_pipeline_on_commit, unless the request could not even be made */
  for (int j = 0; j < n && (sync || e != SR_OK); j++)
    sr_pipeline_on_commit(p, parts[j], offs[j], e, es);
}

/* Waits up to shutdown_timeout_ms for every in-flight output (in steps, so
 * that abort ends the wait), then commits synchronously what retired. At
 * the final drain (shutdown) what is still undelivered is purged: it fails
 * its batch, so its offsets are not committed, and the producer need not
 * wait for it again when destroyed. At a revocation it stays in flight. */
void sr_pipeline_drain(sr_pipeline_t *p, int final) {
  if (p->eos) { /* the open transaction carries outputs and offsets together */
    sr_pipeline_txn_finish(p, final);
    return;
  }
  const int64_t deadline = sr_mono_us() + (int64_t)p->conf.shutdown_timeout_ms * 1000;
  while (sr_publish_outq_len(p->publish) > 0 && !atomic_load(&p->abort_) && sr_mono_us() < deadline)
    sr_publish_flush(p->publish, 100);
  sr_publish_poll(p->publish, 0);
  int left = sr_publish_outq_len(p->publish);
  if (left > 0) {
    char what[160];
    if (atomic_load(&p->abort_))
      snprintf(what, sizeof(what), "aborted with %d output(s) not delivered", left);
    else
      snprintf(what, sizeof(what), "%d output(s) not delivered within %d ms (shutdown.timeout.ms)",
               left, p->conf.shutdown_timeout_ms);
    if (final) {
      sr_pipeline_fatal(p, SR_ERR_DELIVERY,
                        "shutdown: %s; their input offsets are not committed and are "
                        "processed again after a restart",
                        what);
      sr_publish_purge(p->publish);
      sr_publish_flush(p->publish, 1000); /* serves the purged reports */
    } else {
      sr_log_warn(SR_PIPE_MOD, "revoke: %s; committing what was delivered", what);
    }
  }
  if (atomic_load(&p->abort_)) return; /* no commit: it could wait on the coordinator */
  sr_pipeline_commit(p, 1);
}

/* Opens a batch record, waiting (serving delivery reports) while the ring
 * is full: this is the back-pressure point. The wait ends when the oldest
 * batch retires, or with NULL on a fatal error or stop: the slot of a live
 * batch is never reused (its messages then stay uncommitted). */
sr_pipeline_ledger_batch_t *sr_pipeline_open(sr_pipeline_t *p) {
  while (sr_pipeline_ledger_full(p->ledger)) {
    if (p->fatal != SR_OK || sr_pipeline_stopping(p)) return NULL;
    sr_publish_poll(p->publish, 10);
    sr_pipeline_retire(p);
  }
  if (p->fatal != SR_OK) return NULL;
  return sr_pipeline_ledger_open(p->ledger);
}
