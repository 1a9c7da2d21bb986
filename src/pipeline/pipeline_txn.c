/*
 * pipeline_txn: delivery.guarantee = exactly_once. The pipeline's outputs
 * (recommendations and dead letters) and its input offsets go into one
 * Kafka transaction of the worker's producer (transactional.id), and
 * read_committed consumers see a transaction's outputs only once it
 * committed, together with the offsets that say its events are done. So a
 * crash, an abort or a fenced zombie never leaves an output visible whose
 * event is consumed again, nor an event committed without its output.
 *
 * One transaction spans one micro-batch (transaction.scope = batch) or
 * every batch of one commit interval (interval). The offset ledger is the
 * same as at-least-once (ledger.h): finishing a transaction first waits
 * until every output of it is acknowledged, so every batch of it retired
 * and the ledger's plan holds exactly the positions after its events; the
 * plan goes into the transaction (send_offsets_to_transaction with the
 * consumer's group metadata), then the transaction commits. The consumer
 * commits nothing itself (ingest's transactional mode).
 *
 * Errors, as librdkafka sorts them (sr_publish_txn_*):
 * - retriable: the same call again, at most SR_TXN_TRIES times, each bounded
 *   by SR_TXN_CALL_MS; still failing, the transaction is aborted;
 * - abortable (a delivery failed, the group generation ended, a send refused
 *   in the transaction's state): abort, forget the aborted batches and move
 *   the consumer back to the committed positions (sr_pipeline_txn_rewind);
 *   processing goes on from there;
 * - fatal (fenced by another producer with the same transactional.id, or
 *   the producer's own fatal error): run() stops with a message naming the
 *   transactional.id.
 *
 * What is not in the transaction: user state. Events between the last
 * committed offsets and an abort were applied to their users' state and are
 * applied again after the rewind (a state step seen twice). Making state
 * durable and transactional is issue 12; until then, exactly-once holds for
 * the records in Kafka, not for the state they were computed from.
 *
 * Thread: the pipeline thread (run(), and the rebalance callback inside the
 * consumer poll).
 */
#include <stdio.h>
#include <string.h>

#include "pipeline/pipeline_int.h"

#define SR_TXN_CALL_MS 10000 /* bound of one blocking transaction call */
#define SR_TXN_TRIES 5       /* attempts of a call failing with a retriable error */

/* Records a fatal transaction error (es names the transactional.id: every
 * sr_publish_txn_* error does) and, when fenced, says what that means. */
static void sr_pipeline_txn_fatal(sr_pipeline_t *p, sr_err_t e, const char *es) {
  char msg[900];
  const int fenced = strstr(es, "FENCED") != NULL || strstr(es, "INVALID_PRODUCER_EPOCH") != NULL;
  snprintf(msg, sizeof(msg), "exactly-once: %s", es);
  if (fenced)
    snprintf(msg + strlen(msg), sizeof(msg) - strlen(msg),
             " (fenced: another worker started with transactional.id %s, which must be unique "
             "per worker; this one stops)",
             p->txn_id);
  sr_pipeline_fatal(p, e == SR_ERR_STATE ? SR_ERR_STATE : SR_ERR_FATAL, "%s", msg);
}

/* ---- retried calls: SR_OK, SR_ERR_KAFKA (abort), or fatal (es) */

typedef enum { SR_TXN_OP_INIT, SR_TXN_OP_OFFSETS, SR_TXN_OP_COMMIT, SR_TXN_OP_ABORT } sr_txn_op_t;

typedef struct sr_txn_offsets_s {
  const int32_t *parts;
  const int64_t *offs;
  int n;
} sr_txn_offsets_t;

static sr_err_t sr_pipeline_txn_call(sr_pipeline_t *p, sr_txn_op_t op, const sr_txn_offsets_t *o,
                                     char *es, size_t essz) {
  sr_err_t e = SR_ERR_TIMEOUT;
  for (int attempt = 0; attempt < SR_TXN_TRIES; attempt++) {
    if (attempt > 0) {
      STAT_ADD(p, txn_retries, 1);
      sr_log_warn(SR_PIPE_MOD, "%s: retrying (%d of %d)", es, attempt + 1, SR_TXN_TRIES);
    }
    switch (op) {
    case SR_TXN_OP_INIT: e = sr_publish_txn_init(p->publish, SR_TXN_CALL_MS, es, essz); break;
    case SR_TXN_OP_OFFSETS: {
      sr_ingest_group_t *g = sr_ingest_group_metadata(p->ingest);
      e = sr_publish_txn_send_offsets(p->publish, g, p->events_topic, o->parts, o->offs, o->n,
                                      SR_TXN_CALL_MS, es, essz);
      sr_ingest_group_destroy(g);
      break;
    }
    case SR_TXN_OP_COMMIT: e = sr_publish_txn_commit(p->publish, SR_TXN_CALL_MS, es, essz); break;
    case SR_TXN_OP_ABORT: e = sr_publish_txn_abort(p->publish, SR_TXN_CALL_MS, es, essz); break;
    }
    if (e != SR_ERR_TIMEOUT) break;
    /* a second signal ends the retries (init: a stop does too, nothing began) */
    if (atomic_load(&p->abort_) || (op == SR_TXN_OP_INIT && sr_pipeline_stopping(p))) break;
  }
  if (e == SR_ERR_TIMEOUT) {
    if (op == SR_TXN_OP_INIT || op == SR_TXN_OP_ABORT)
      return SR_ERR_FATAL; /* nothing else to try */
    return SR_ERR_KAFKA;   /* still retriable after the bound: abort the transaction */
  }
  return e;
}

void sr_pipeline_txn_init(sr_pipeline_t *p) {
  char es[512];
  sr_log_info(SR_PIPE_MOD,
              "exactly-once: transactional.id %s, one transaction per %s; registering with the "
              "transaction coordinator",
              p->txn_id,
              p->conf.txn_scope == SR_TXN_SCOPE_BATCH ? "micro-batch" : "commit interval");
  sr_err_t e = sr_pipeline_txn_call(p, SR_TXN_OP_INIT, NULL, es, sizeof(es));
  if (e != SR_OK) sr_pipeline_txn_fatal(p, e == SR_ERR_KAFKA ? SR_ERR_FATAL : e, es);
}

int sr_pipeline_txn_begin(sr_pipeline_t *p) {
  char es[512];
  if (p->txn_open) return 0;
  sr_err_t e = sr_publish_txn_begin(p->publish, es, sizeof(es));
  if (e != SR_OK) {
    sr_pipeline_txn_fatal(p, e, es);
    return -1;
  }
  p->txn_open = 1;
  return 0;
}

/* Waits (serving delivery reports) until the producer has nothing in
 * flight, up to ms, a second signal, or (unless purged) an abortable error. */
static void sr_pipeline_txn_wait(sr_pipeline_t *p, int ms, int purged) {
  const int64_t deadline = sr_mono_us() + (int64_t)ms * 1000;
  while (sr_publish_outq_len(p->publish) > 0 && (purged || !p->txn_abort) &&
         !atomic_load(&p->abort_) && sr_mono_us() < deadline)
    sr_publish_flush(p->publish, 100);
  sr_publish_poll(p->publish, 0);
}

/* Aborts the open transaction for why: its outputs are marked aborted (no
 * read_committed consumer sees them), its offsets discarded, its batches
 * forgotten; the consumer is rewound (now, or after the poll the abort ran
 * in). */
static void sr_pipeline_txn_abort(sr_pipeline_t *p, const char *why, int final) {
  char es[512];
  sr_log_warn(SR_PIPE_MOD,
              "exactly-once: aborting the transaction of transactional.id %s (%s); its events "
              "are consumed again from the last committed offsets",
              p->txn_id, why);
  p->txn_aborting = 1;
  sr_err_t e = sr_pipeline_txn_call(p, SR_TXN_OP_ABORT, NULL, es, sizeof(es));
  /* the purged outputs' reports, while their batches still exist */
  sr_pipeline_txn_wait(p, 1000, 1);
  p->txn_aborting = 0;
  p->txn_abort = 0;
  p->txn_open = 0;
  sr_pipeline_ledger_rewind(p->ledger);
  if (e != SR_OK) {
    sr_pipeline_txn_fatal(p, e, es);
    return;
  }
  STAT_ADD(p, txn_aborted, 1);
  if (final) {
    sr_pipeline_fatal(p, SR_ERR_DELIVERY,
                      "shutdown: the last transaction was aborted (%s); its events are processed "
                      "again after a restart",
                      why);
    return;
  }
  /* State is kept: the events between the committed offsets and here are
   * applied to it once more after the rewind (state is not transactional
   * yet, issue 12). */
  p->rewind_pending = 1;
}

void sr_pipeline_txn_finish(sr_pipeline_t *p, int final) {
  char es[512], why[600];
  p->last_commit_us = sr_mono_us();
  if (!p->txn_open) return;
  /* Second signal: no wait, no commit, no abort (either could block on the
   * coordinator). The broker aborts the transaction after
   * transaction.timeout.ms, or the restarted worker's init does at once. */
  if (atomic_load(&p->abort_)) return;
  const int64_t t0 = sr_mono_ns();
  sr_pipeline_txn_wait(p, p->conf.shutdown_timeout_ms, 0);
  sr_pipeline_retire(p);
  const int left = sr_publish_outq_len(p->publish);
  why[0] = '\0';
  if (p->txn_abort)
    snprintf(why, sizeof(why), "an output of it failed");
  else if (left > 0)
    snprintf(why, sizeof(why), "%d output(s) not delivered within %d ms (shutdown.timeout.ms)",
             left, p->conf.shutdown_timeout_ms);
  else if (sr_pipeline_ledger_live(p->ledger) > 0 || p->fatal != SR_OK)
    snprintf(why, sizeof(why), "a micro-batch of it was left unfinished");
  if (!why[0]) {
    const int32_t *parts;
    const int64_t *offs;
    const int n = sr_pipeline_ledger_plan(p->ledger, 1, &parts, &offs);
    const sr_txn_offsets_t o = {parts, offs, n};
    sr_err_t e = n > 0 ? sr_pipeline_txn_call(p, SR_TXN_OP_OFFSETS, &o, es, sizeof(es)) : SR_OK;
    if (e == SR_OK) e = sr_pipeline_txn_call(p, SR_TXN_OP_COMMIT, NULL, es, sizeof(es));
    if (e == SR_OK) {
      p->txn_open = 0;
      for (int j = 0; j < n; j++)
        sr_pipeline_ledger_commit_result(p->ledger, parts[j], offs[j], SR_OK);
      STAT_ADD(p, txn_committed, 1);
      if (n > 0) STAT_ADD(p, commits, 1);
      STAT_ADD(p, txn_commit_ns, (uint64_t)(sr_mono_ns() - t0));
      return;
    }
    if (e != SR_ERR_KAFKA) { /* fatal, or a call in the wrong state */
      p->txn_open = 0;
      sr_pipeline_txn_fatal(p, e, es);
      return;
    }
    snprintf(why, sizeof(why), "%s", es);
  }
  sr_pipeline_txn_abort(p, why, final);
  STAT_ADD(p, txn_commit_ns, (uint64_t)(sr_mono_ns() - t0));
}

void sr_pipeline_txn_rewind(sr_pipeline_t *p) {
  char es[512];
  p->rewind_pending = 0;
  if (p->fatal != SR_OK) return;
  /* Where each active partition's committed offset is, without asking the
   * coordinator: what our last committed transaction of this ownership
   * wrote (the ledger's committed position), or, before any, where the
   * consumer started when the partition was assigned (its first offset
   * consumed since). A partition with neither consumed nothing: its
   * position is still the committed one. */
  int32_t *parts = sr_calloc((size_t)(p->n_first_off ? p->n_first_off : 1), sizeof(*parts));
  int64_t *offs = sr_calloc((size_t)(p->n_first_off ? p->n_first_off : 1), sizeof(*offs));
  int n = 0;
  for (int32_t part = 0; part < p->n_first_off; part++) {
    const sr_pipeline_ledger_pos_t *pp = sr_pipeline_ledger_pos(p->ledger, part);
    if (!pp || !pp->active) continue;
    const int64_t to = pp->committed >= 0 ? pp->committed : p->first_off[part];
    if (to < 0) continue;
    parts[n] = part;
    offs[n++] = to;
  }
  if (n > 0) {
    sr_err_t e = sr_ingest_seek(p->ingest, parts, offs, n, SR_TXN_CALL_MS, es, sizeof(es));
    if (e != SR_OK)
      sr_pipeline_fatal(p, e,
                        "exactly-once: cannot move the consumer back to the committed offsets "
                        "after an aborted transaction (%s): stopping rather than skip events",
                        es);
    else
      STAT_ADD(p, rewinds, (uint64_t)n);
  }
  sr_free(parts);
  sr_free(offs);
}

/* The per-partition array of first offsets, grown to hold part. */
static void sr_pipeline_txn_grow(sr_pipeline_t *p, int32_t part) {
  if (part < p->n_first_off) return;
  int n = p->n_first_off ? p->n_first_off : 16;
  while (n <= part)
    n *= 2;
  p->first_off = sr_realloc(p->first_off, (size_t)n * sizeof(*p->first_off));
  for (int i = p->n_first_off; i < n; i++)
    p->first_off[i] = -1;
  p->n_first_off = n;
}

void sr_pipeline_txn_note(sr_pipeline_t *p, int32_t part, int64_t offset) {
  if (part < 0) return;
  sr_pipeline_txn_grow(p, part);
  if (p->first_off[part] < 0) p->first_off[part] = offset;
}

void sr_pipeline_txn_assigned(sr_pipeline_t *p, int32_t part) {
  if (part < 0) return;
  sr_pipeline_txn_grow(p, part);
  p->first_off[part] = -1;
}
