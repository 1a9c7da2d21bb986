/*
 * 0032-ledger: the pipeline's offset ledger (src/pipeline/ledger.h) as plain
 * data, no Kafka: acknowledgements out of order, a poisoned batch, a
 * revocation and a re-assignment, commits that fail and are sent again
 * (at the next interval and at the final sync commit), the ring full, the
 * slot-overwrite guard, and the rewind after an aborted transaction.
 */
#include "test.h"
#include "pipeline/ledger.h"

/* One finished batch: notes [lo, hi] of partition part, no outputs. */
static sr_pipeline_ledger_batch_t *batch_of(sr_pipeline_ledger_t *l, int32_t part, int64_t lo,
                                            int64_t hi) {
  sr_pipeline_ledger_batch_t *b = sr_pipeline_ledger_open(l);
  if (!b) return NULL;
  for (int64_t o = lo; o <= hi; o++)
    if (sr_pipeline_ledger_note(l, b, part, o) != SR_OK) return NULL;
  return b;
}

static int64_t committable(const sr_pipeline_ledger_t *l, int32_t part) {
  const sr_pipeline_ledger_pos_t *pp = sr_pipeline_ledger_pos(l, part);
  return pp ? pp->committable : -2;
}

static int64_t committed(const sr_pipeline_ledger_t *l, int32_t part) {
  const sr_pipeline_ledger_pos_t *pp = sr_pipeline_ledger_pos(l, part);
  return pp ? pp->committed : -2;
}

TEST(bad_args) {
  T_ASSERT(sr_pipeline_ledger_new(0, 4) == NULL);
  T_ASSERT(sr_pipeline_ledger_new(4, 0) == NULL);
  sr_pipeline_ledger_destroy(NULL);
}

TEST(out_of_order_acks) {
  sr_pipeline_ledger_t *l = sr_pipeline_ledger_new(8, 4);
  sr_pipeline_ledger_assign(l, 0);
  sr_pipeline_ledger_assign(l, 1);
  sr_pipeline_ledger_batch_t *a = sr_pipeline_ledger_open(l);
  T_ASSERT(a != NULL);
  for (int o = 0; o < 5; o++)
    T_EQ_INT(sr_pipeline_ledger_note(l, a, 0, o), SR_OK);
  T_EQ_INT(sr_pipeline_ledger_note(l, a, 1, 1), SR_OK);
  T_EQ_INT(sr_pipeline_ledger_note(l, a, 1, 0), SR_OK); /* lower offset: next stays 2 */
  T_EQ_INT(a->n_parts, 2);
  for (int i = 0; i < 3; i++)
    sr_pipeline_ledger_hold(a);  /* three outputs */
  sr_pipeline_ledger_release(a); /* seal */
  sr_pipeline_ledger_batch_t *b = sr_pipeline_ledger_open(l);
  for (int o = 5; o < 10; o++)
    T_EQ_INT(sr_pipeline_ledger_note(l, b, 0, o), SR_OK);
  sr_pipeline_ledger_hold(b);
  sr_pipeline_ledger_hold(b);
  sr_pipeline_ledger_release(b); /* seal */
  T_EQ_INT(a->seq + 1, b->seq);
  T_ASSERT(sr_pipeline_ledger_batch(l, b->seq) == b);

  /* the later batch is acknowledged first: nothing is committable */
  sr_pipeline_ledger_release(b);
  sr_pipeline_ledger_release(b);
  T_EQ_INT(sr_pipeline_ledger_retire(l), SR_OK);
  T_EQ_INT(committable(l, 0), -1);
  T_EQ_INT(committable(l, 1), -1);
  const int32_t *parts;
  const int64_t *offs;
  T_EQ_INT(sr_pipeline_ledger_plan(l, 0, &parts, &offs), 0);
  T_EQ_INT(sr_pipeline_ledger_live(l), 2);

  /* two of a's three, still nothing; the third retires both */
  sr_pipeline_ledger_release(a);
  sr_pipeline_ledger_release(a);
  T_EQ_INT(sr_pipeline_ledger_retire(l), SR_OK);
  T_EQ_INT(committable(l, 0), -1);
  sr_pipeline_ledger_release(a);
  T_EQ_INT(sr_pipeline_ledger_retire(l), SR_OK);
  T_EQ_INT(sr_pipeline_ledger_live(l), 0);
  T_EQ_INT(committable(l, 0), 10);
  T_EQ_INT(committable(l, 1), 2);
  T_ASSERT(sr_pipeline_ledger_batch(l, b->seq) == NULL); /* retired */
  T_EQ_INT(sr_pipeline_ledger_plan(l, 0, &parts, &offs), 2);
  T_EQ_INT(parts[0], 0);
  T_EQ_INT(offs[0], 10);
  T_EQ_INT(parts[1], 1);
  T_EQ_INT(offs[1], 2);
  sr_pipeline_ledger_destroy(l);
}

TEST(poisoned_batch) {
  sr_pipeline_ledger_t *l = sr_pipeline_ledger_new(8, 4);
  sr_pipeline_ledger_assign(l, 0);
  sr_pipeline_ledger_assign(l, 3);
  sr_pipeline_ledger_batch_t *ok = batch_of(l, 0, 0, 9);
  sr_pipeline_ledger_release(ok);
  sr_pipeline_ledger_batch_t *bad = batch_of(l, 0, 10, 19);
  T_EQ_INT(sr_pipeline_ledger_note(l, bad, 3, 7), SR_OK);
  sr_pipeline_ledger_hold(bad);
  sr_pipeline_ledger_release(bad); /* seal */
  sr_pipeline_ledger_batch_t *after = batch_of(l, 3, 8, 20);
  sr_pipeline_ledger_release(after);
  /* the delivery of bad's output fails permanently */
  sr_pipeline_ledger_fail(bad);
  sr_pipeline_ledger_release(bad);
  T_EQ_INT(bad->pending, 0);
  for (int round = 0; round < 3; round++) {
    T_EQ_INT(sr_pipeline_ledger_retire(l), SR_OK);
    T_EQ_INT(committable(l, 0), 10);         /* the batch before it only */
    T_EQ_INT(committable(l, 3), -1);         /* nothing of it or after it */
    T_EQ_INT(sr_pipeline_ledger_live(l), 2); /* never retired */
  }
  const int32_t *parts;
  const int64_t *offs;
  T_EQ_INT(sr_pipeline_ledger_plan(l, 1, &parts, &offs), 1);
  T_EQ_INT(parts[0], 0);
  T_EQ_INT(offs[0], 10);
  sr_pipeline_ledger_destroy(l);
}

TEST(revoke_and_reassign) {
  sr_pipeline_ledger_t *l = sr_pipeline_ledger_new(8, 4);
  const int32_t *parts;
  const int64_t *offs;
  sr_pipeline_ledger_assign(l, 0);
  sr_pipeline_ledger_assign(l, 1);
  T_ASSERT(sr_pipeline_ledger_active(l, 0) && sr_pipeline_ledger_active(l, 1));
  T_ASSERT(!sr_pipeline_ledger_active(l, 2) && !sr_pipeline_ledger_active(l, -1));
  sr_pipeline_ledger_batch_t *b = batch_of(l, 0, 0, 4);
  T_EQ_INT(sr_pipeline_ledger_note(l, b, 1, 0), SR_OK);
  sr_pipeline_ledger_release(b);
  T_EQ_INT(sr_pipeline_ledger_retire(l), SR_OK);
  T_EQ_INT(sr_pipeline_ledger_plan(l, 0, &parts, &offs), 2);
  sr_pipeline_ledger_commit_sent(l, parts, offs, 2);

  /* a batch of partition 0 still in flight when 0 is revoked */
  sr_pipeline_ledger_batch_t *old = batch_of(l, 0, 5, 9);
  sr_pipeline_ledger_hold(old);
  sr_pipeline_ledger_release(old); /* seal */
  T_EQ_INT(sr_pipeline_ledger_revoke(l, 0), 1);
  T_EQ_INT(sr_pipeline_ledger_revoke(l, 0), 0);  /* not active any more */
  T_EQ_INT(sr_pipeline_ledger_revoke(l, 99), 0); /* never seen */
  T_ASSERT(!sr_pipeline_ledger_active(l, 0));
  T_EQ_INT(committable(l, 0), -1);
  /* the commit result of the old ownership arrives late: ignored */
  T_EQ_INT(sr_pipeline_ledger_commit_result(l, 0, 5, SR_OK), 0);
  T_EQ_INT(committed(l, 0), -1);
  T_EQ_INT(sr_pipeline_ledger_commit_result(l, 1, 1, SR_OK), 0);
  T_EQ_INT(committed(l, 1), 1);
  /* messages of a partition we do not own are never noted */
  sr_pipeline_ledger_batch_t *c = sr_pipeline_ledger_open(l);
  T_EQ_INT(sr_pipeline_ledger_note(l, c, 0, 10), SR_ERR_STATE);
  T_EQ_INT(c->n_parts, 0);
  sr_pipeline_ledger_release(c);
  T_EQ_INT(sr_pipeline_ledger_plan(l, 1, &parts, &offs), 0); /* 1 is committed, 0 is gone */

  /* re-assigned: starts fresh, and the old ownership's batch retiring
   * now does not move the new ownership's position */
  sr_pipeline_ledger_assign(l, 0);
  T_ASSERT(sr_pipeline_ledger_active(l, 0));
  T_EQ_INT(committable(l, 0), -1);
  T_EQ_INT(committed(l, 0), -1);
  sr_pipeline_ledger_release(old); /* its output is delivered */
  T_EQ_INT(sr_pipeline_ledger_retire(l), SR_OK);
  T_EQ_INT(committable(l, 0), -1);
  T_EQ_INT(sr_pipeline_ledger_plan(l, 1, &parts, &offs), 0);
  sr_pipeline_ledger_batch_t *d =
      batch_of(l, 0, 3, 6); /* the new owner reads from the last commit */
  sr_pipeline_ledger_release(d);
  T_EQ_INT(sr_pipeline_ledger_retire(l), SR_OK);
  T_EQ_INT(committable(l, 0), 7);
  T_EQ_INT(sr_pipeline_ledger_plan(l, 0, &parts, &offs), 1);
  T_EQ_INT(parts[0], 0);
  T_EQ_INT(offs[0], 7);
  sr_pipeline_ledger_destroy(l);
}

TEST(async_commit_failure_is_sent_again) {
  sr_pipeline_ledger_t *l = sr_pipeline_ledger_new(8, 4);
  const int32_t *parts;
  const int64_t *offs;
  sr_pipeline_ledger_assign(l, 2);
  sr_pipeline_ledger_batch_t *b = batch_of(l, 2, 0, 41);
  sr_pipeline_ledger_release(b);
  T_EQ_INT(sr_pipeline_ledger_retire(l), SR_OK);
  T_EQ_INT(sr_pipeline_ledger_plan(l, 0, &parts, &offs), 1);
  T_EQ_INT(offs[0], 42);
  sr_pipeline_ledger_commit_sent(l, parts, offs, 1);
  /* in flight: the next interval does not send it again, the position is
   * not committed yet */
  T_EQ_INT(sr_pipeline_ledger_plan(l, 0, &parts, &offs), 0);
  T_EQ_INT(committed(l, 2), -1);
  /* the broker refuses it (reported twice: counted once) */
  T_EQ_INT(sr_pipeline_ledger_commit_result(l, 2, 42, SR_ERR_KAFKA), 1);
  T_EQ_INT(sr_pipeline_ledger_commit_result(l, 2, 42, SR_ERR_KAFKA), 0);
  T_EQ_INT(sr_pipeline_ledger_commit_failed(l), 1);
  T_EQ_INT(committed(l, 2), -1);
  /* the next interval sends it again */
  T_EQ_INT(sr_pipeline_ledger_plan(l, 0, &parts, &offs), 1);
  T_EQ_INT(parts[0], 2);
  T_EQ_INT(offs[0], 42);
  sr_pipeline_ledger_commit_sent(l, parts, offs, 1);
  T_EQ_INT(sr_pipeline_ledger_commit_result(l, 2, 42, SR_OK), 0);
  T_EQ_INT(committed(l, 2), 42);
  T_EQ_INT(sr_pipeline_ledger_plan(l, 1, &parts, &offs), 0);      /* nothing left, even for sync */
  T_EQ_INT(sr_pipeline_ledger_commit_result(l, 2, 42, SR_OK), 0); /* repeated: no change */
  T_EQ_INT(committed(l, 2), 42);

  /* an OK for an offset this ownership never had committable is ignored */
  T_EQ_INT(sr_pipeline_ledger_commit_result(l, 2, 500, SR_OK), 0);
  T_EQ_INT(committed(l, 2), 42);

  /* progress while a commit is in flight: the newer offset goes out, and
   * the older one's failure is superseded (not counted, nothing re-sent) */
  b = batch_of(l, 2, 42, 49);
  sr_pipeline_ledger_release(b);
  T_EQ_INT(sr_pipeline_ledger_retire(l), SR_OK);
  T_EQ_INT(sr_pipeline_ledger_plan(l, 0, &parts, &offs), 1);
  sr_pipeline_ledger_commit_sent(l, parts, offs, 1);
  b = batch_of(l, 2, 50, 59);
  sr_pipeline_ledger_release(b);
  T_EQ_INT(sr_pipeline_ledger_retire(l), SR_OK);
  T_EQ_INT(sr_pipeline_ledger_plan(l, 0, &parts, &offs), 1);
  T_EQ_INT(offs[0], 60);
  sr_pipeline_ledger_commit_sent(l, parts, offs, 1);
  T_EQ_INT(sr_pipeline_ledger_commit_result(l, 2, 50, SR_ERR_KAFKA), 0);
  T_EQ_INT(sr_pipeline_ledger_commit_failed(l), 1);
  T_EQ_INT(sr_pipeline_ledger_plan(l, 0, &parts, &offs), 0); /* 60 is in flight */

  /* 60 fails too, and its result comes after the last interval: the final
   * (sync) commit sends it */
  T_EQ_INT(sr_pipeline_ledger_commit_result(l, 2, 60, SR_ERR_KAFKA), 1);
  T_EQ_INT(sr_pipeline_ledger_commit_failed(l), 2);
  T_EQ_INT(sr_pipeline_ledger_plan(l, 1, &parts, &offs), 1);
  T_EQ_INT(offs[0], 60);
  sr_pipeline_ledger_commit_sent(l, parts, offs, 1);
  T_EQ_INT(sr_pipeline_ledger_commit_result(l, 2, 60, SR_OK), 0); /* a sync commit that succeeded */
  T_EQ_INT(committed(l, 2), 60);
  T_EQ_INT(sr_pipeline_ledger_plan(l, 1, &parts, &offs), 0);
  sr_pipeline_ledger_destroy(l);
}

TEST(sync_commit_sends_what_is_in_flight) {
  /* an async result that never arrives (the client was closing): the
   * final sync commit does not trust the flight and sends it again */
  sr_pipeline_ledger_t *l = sr_pipeline_ledger_new(4, 2);
  const int32_t *parts;
  const int64_t *offs;
  sr_pipeline_ledger_assign(l, 0);
  sr_pipeline_ledger_assign(l, 1);
  sr_pipeline_ledger_batch_t *b = batch_of(l, 0, 0, 2);
  T_EQ_INT(sr_pipeline_ledger_note(l, b, 1, 8), SR_OK);
  sr_pipeline_ledger_release(b);
  T_EQ_INT(sr_pipeline_ledger_retire(l), SR_OK);
  T_EQ_INT(sr_pipeline_ledger_plan(l, 0, &parts, &offs), 2);
  sr_pipeline_ledger_commit_sent(l, parts, offs, 2);
  T_EQ_INT(sr_pipeline_ledger_commit_result(l, 1, 9, SR_OK), 0); /* only 1's result came */
  T_EQ_INT(sr_pipeline_ledger_plan(l, 0, &parts, &offs), 0);
  T_EQ_INT(sr_pipeline_ledger_plan(l, 1, &parts, &offs), 1);
  T_EQ_INT(parts[0], 0);
  T_EQ_INT(offs[0], 3);
  /* the sync commit could not be made at all: still open, counted */
  sr_pipeline_ledger_commit_sent(l, parts, offs, 1);
  T_EQ_INT(sr_pipeline_ledger_commit_result(l, 0, 3, SR_ERR_KAFKA), 1);
  T_EQ_INT(sr_pipeline_ledger_plan(l, 0, &parts, &offs), 1);
  sr_pipeline_ledger_destroy(l);
}

TEST(ring_full) {
  sr_pipeline_ledger_t *l = sr_pipeline_ledger_new(3, 2);
  sr_pipeline_ledger_assign(l, 0);
  sr_pipeline_ledger_batch_t *b[3];
  for (int i = 0; i < 3; i++) {
    T_ASSERT(!sr_pipeline_ledger_full(l));
    b[i] = batch_of(l, 0, i * 10, i * 10 + 9);
    T_ASSERT(b[i] != NULL);
    sr_pipeline_ledger_hold(b[i]);
    sr_pipeline_ledger_release(b[i]); /* sealed, one output in flight */
  }
  T_ASSERT(sr_pipeline_ledger_full(l));
  T_ASSERT(sr_pipeline_ledger_open(l) == NULL); /* never overwrites a live batch */
  /* the newest two are delivered: still full, the oldest holds the ring */
  sr_pipeline_ledger_release(b[2]);
  sr_pipeline_ledger_release(b[1]);
  T_EQ_INT(sr_pipeline_ledger_retire(l), SR_OK);
  T_ASSERT(sr_pipeline_ledger_open(l) == NULL);
  T_EQ_INT(committable(l, 0), -1);
  sr_pipeline_ledger_release(b[0]);
  T_EQ_INT(sr_pipeline_ledger_retire(l), SR_OK);
  T_EQ_INT(committable(l, 0), 30);
  T_EQ_INT(sr_pipeline_ledger_live(l), 0);
  /* the ring wraps: slot 0 holds sequence 3 */
  sr_pipeline_ledger_batch_t *n = sr_pipeline_ledger_open(l);
  T_ASSERT(n == b[0]);
  T_EQ_INT(n->seq, 3);
  T_EQ_INT(n->pending, 1);
  T_EQ_INT(n->n_parts, 0);
  T_EQ_INT(n->failed, 0);
  sr_pipeline_ledger_destroy(l);
}

TEST(too_many_partitions) {
  sr_pipeline_ledger_t *l = sr_pipeline_ledger_new(2, 2);
  for (int p = 0; p < 3; p++)
    sr_pipeline_ledger_assign(l, p);
  sr_pipeline_ledger_batch_t *b = sr_pipeline_ledger_open(l);
  T_EQ_INT(sr_pipeline_ledger_note(l, b, 0, 1), SR_OK);
  T_EQ_INT(sr_pipeline_ledger_note(l, b, 1, 1), SR_OK);
  T_EQ_INT(sr_pipeline_ledger_note(l, b, 2, 1), SR_ERR_INVALID_ARG);
  T_EQ_INT(sr_pipeline_ledger_note(l, b, 1, 4), SR_OK); /* a partition it names: fine */
  T_EQ_INT(b->n_parts, 2);
  sr_pipeline_ledger_destroy(l);
}

TEST(slot_overwrite_guard) {
  sr_pipeline_ledger_t *l = sr_pipeline_ledger_new(4, 2);
  sr_pipeline_ledger_assign(l, 0);
  sr_pipeline_ledger_batch_t *a = batch_of(l, 0, 0, 4);
  sr_pipeline_ledger_release(a);
  sr_pipeline_ledger_batch_t *b = batch_of(l, 0, 5, 9);
  sr_pipeline_ledger_release(b);
  /* b's slot was overwritten while live (what sr_pipeline_ledger_open refuses to
   * do): the sequence it holds is not the one due */
  uint64_t seq = b->seq;
  b->seq += 4;
  T_ASSERT(sr_pipeline_ledger_batch(l, seq) == NULL); /* its reports find no batch */
  T_EQ_INT(sr_pipeline_ledger_retire(l), SR_ERR_STATE);
  T_EQ_INT(committable(l, 0), 5);                       /* a retired, b did not */
  T_EQ_INT(sr_pipeline_ledger_retire(l), SR_ERR_STATE); /* says so every time */
  b->seq = seq;                                         /* even if the slot looks right again */
  T_EQ_INT(sr_pipeline_ledger_retire(l), SR_ERR_STATE);
  T_EQ_INT(committable(l, 0), 5);
  T_ASSERT(sr_pipeline_ledger_open(l) == NULL);
  sr_pipeline_ledger_destroy(l);
}

/* Exactly-once abort (src/pipeline/pipeline_txn.c): the live batches are
 * forgotten, their late delivery reports find nothing, and each partition's
 * committable position goes back to the committed one, so no offset of the
 * aborted work is committed; the replay of the same offsets then commits. */
TEST(rewind_after_abort) {
  sr_pipeline_ledger_t *l = sr_pipeline_ledger_new(8, 4);
  const int32_t *parts;
  const int64_t *offs;
  sr_pipeline_ledger_assign(l, 0);
  sr_pipeline_ledger_assign(l, 1);
  /* p0 [0,4] retired and committed */
  sr_pipeline_ledger_batch_t *a = batch_of(l, 0, 0, 4);
  sr_pipeline_ledger_release(a);
  T_EQ_INT(sr_pipeline_ledger_retire(l), SR_OK);
  T_EQ_INT(sr_pipeline_ledger_plan(l, 0, &parts, &offs), 1);
  sr_pipeline_ledger_commit_sent(l, parts, offs, 1);
  T_EQ_INT(sr_pipeline_ledger_commit_result(l, 0, 5, SR_OK), 0);
  T_EQ_INT(committed(l, 0), 5);
  /* p0 [5,9] and p1 [0,2] retired, their commit in flight when the
   * transaction aborts; p0 [10,12] still waits for two delivery reports */
  sr_pipeline_ledger_batch_t *b = batch_of(l, 0, 5, 9);
  T_EQ_INT(sr_pipeline_ledger_note(l, b, 1, 0), SR_OK);
  T_EQ_INT(sr_pipeline_ledger_note(l, b, 1, 2), SR_OK);
  sr_pipeline_ledger_release(b);
  T_EQ_INT(sr_pipeline_ledger_retire(l), SR_OK);
  T_EQ_INT(committable(l, 0), 10);
  T_EQ_INT(committable(l, 1), 3);
  T_EQ_INT(sr_pipeline_ledger_plan(l, 0, &parts, &offs), 2);
  sr_pipeline_ledger_commit_sent(l, parts, offs, 2);
  sr_pipeline_ledger_batch_t *c = batch_of(l, 0, 10, 12);
  uint64_t c_seq = c->seq;
  sr_pipeline_ledger_hold(c);
  sr_pipeline_ledger_hold(c);
  sr_pipeline_ledger_release(c); /* seal */
  T_EQ_INT(sr_pipeline_ledger_live(l), 1);

  sr_pipeline_ledger_rewind(l);
  T_EQ_INT(sr_pipeline_ledger_live(l), 0);
  T_ASSERT(sr_pipeline_ledger_batch(l, c_seq) == NULL); /* its late reports find no batch */
  T_EQ_INT(committable(l, 0), 5);
  T_EQ_INT(committable(l, 1), -1);
  T_EQ_INT(committed(l, 0), 5);
  T_EQ_INT(sr_pipeline_ledger_plan(l, 1, &parts, &offs), 0); /* nothing, even for sync */
  /* the aborted commit's late OK is past what this position may commit */
  T_EQ_INT(sr_pipeline_ledger_commit_result(l, 0, 10, SR_OK), 0);
  T_EQ_INT(committed(l, 0), 5);
  T_EQ_INT(sr_pipeline_ledger_retire(l), SR_OK);
  T_EQ_INT(committable(l, 0), 5);

  /* the consumer was rewound to 5 and 0: the replay commits as usual */
  sr_pipeline_ledger_batch_t *d = batch_of(l, 0, 5, 12);
  T_ASSERT(d != NULL && d->seq > c_seq);
  T_EQ_INT(sr_pipeline_ledger_note(l, d, 1, 0), SR_OK);
  T_EQ_INT(sr_pipeline_ledger_note(l, d, 1, 2), SR_OK);
  sr_pipeline_ledger_release(d);
  T_EQ_INT(sr_pipeline_ledger_retire(l), SR_OK);
  T_EQ_INT(sr_pipeline_ledger_plan(l, 0, &parts, &offs), 2);
  T_EQ_INT(parts[0], 0);
  T_EQ_INT(offs[0], 13);
  T_EQ_INT(parts[1], 1);
  T_EQ_INT(offs[1], 3);
  sr_pipeline_ledger_commit_sent(l, parts, offs, 2);
  T_EQ_INT(sr_pipeline_ledger_commit_result(l, 0, 13, SR_OK), 0);
  T_EQ_INT(sr_pipeline_ledger_commit_result(l, 1, 3, SR_OK), 0);
  T_EQ_INT(committed(l, 0), 13);
  T_EQ_INT(committed(l, 1), 3);
  T_EQ_INT(sr_pipeline_ledger_commit_failed(l), 0);
  sr_pipeline_ledger_destroy(l);
}

TEST_MAIN(RUN(bad_args); RUN(out_of_order_acks); RUN(poisoned_batch); RUN(revoke_and_reassign);
          RUN(async_commit_failure_is_sent_again); RUN(sync_commit_sends_what_is_in_flight);
          RUN(ring_full); RUN(too_many_partitions); RUN(slot_overwrite_guard);
          RUN(rewind_after_abort))
