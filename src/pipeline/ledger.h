/*
 * ledger: the pipeline's offset bookkeeping, the heart of the delivery
 * guarantee (docs/ARCHITECTURE.md), as plain data: no Kafka, no logging, no
 * clock. The pipeline feeds it what happened (messages noted, outputs sent
 * and acknowledged, partitions assigned and revoked, commit results) and
 * asks it what may be committed. Internal to src/pipeline; the struct
 * bodies are here so that the unit test (tests/unit/0032-ledger) can check
 * the guards that the ledger's own calls never trip.
 *
 * Batches: every consumed message belongs to a batch. A batch record holds,
 * per partition present in it, the next offset after its last message, and
 * a count of references: one per output still awaiting its delivery report
 * plus one "seal" reference that the pipeline drops when it has finished
 * processing the batch. Batches retire strictly in order once their count
 * reaches zero; retiring moves the committable position of each of its
 * partitions. A failed batch (a delivery failed permanently, or work on it
 * was abandoned) never retires, so nothing at or after it is committed.
 * The records live in a ring of ring_cap slots: a slot is reused only once
 * its batch retired (sr_pipeline_ledger_open returns NULL rather than overwrite a
 * live one), and retiring checks that the slot holds the sequence it
 * retires (if not, nothing retires ever again).
 *
 * Positions, per partition: active (assigned to us), committable (next
 * offset whose every earlier message's outputs were delivered), committed
 * (the group's position as far as a commit result said SR_OK) and inflight
 * (an offset sent for commit whose result is not known yet). A position is
 * committed only when a result says so: a failed commit leaves it to be
 * sent again by the next plan. Ownership is counted by an epoch bumped at
 * each assignment: a batch retiring after its partition was revoked and
 * assigned again does not move the new ownership's position.
 *
 * Thread: a ledger belongs to the pipeline thread (delivery reports, commit
 * results and rebalances all run there).
 */
#ifndef STREAMREC_PIPELINE_LEDGER_H
#define STREAMREC_PIPELINE_LEDGER_H

#include <stdint.h>
#include "streamrec/common.h"

typedef struct sr_pipeline_ledger_part_s {
  int32_t partition;
  uint32_t epoch; /* the partition's ownership when the offset was noted */
  int64_t next_offset;
} sr_pipeline_ledger_part_t;

/* One batch record (a ring slot). */
typedef struct sr_pipeline_ledger_batch_s {
  uint64_t seq;
  int pending; /* outputs not yet acknowledged + 1 seal reference */
  int failed;
  int n_parts;
  sr_pipeline_ledger_part_t *parts; /* [parts_max], preallocated */
} sr_pipeline_ledger_batch_t;

typedef struct sr_pipeline_ledger_pos_s {
  int active;
  uint32_t epoch;      /* bumped by every assignment */
  int64_t committable; /* next offset safe to commit, -1 none */
  int64_t committed;   /* last commit confirmed (SR_OK), -1 none */
  int64_t inflight;    /* sent for commit, result not known yet, -1 none */
} sr_pipeline_ledger_pos_t;

typedef struct sr_pipeline_ledger_s {
  sr_pipeline_ledger_batch_t *ring;
  int ring_cap;
  int parts_max;
  uint64_t head;                 /* oldest live batch */
  uint64_t next;                 /* next batch to open */
  int corrupt;                   /* a slot held another sequence: nothing retires any more */
  sr_pipeline_ledger_pos_t *pos; /* indexed by partition id */
  int n_pos;
  int32_t *plan_parts; /* [n_pos]: the last plan */
  int64_t *plan_offs;
  uint64_t commit_failed;
} sr_pipeline_ledger_t;

/* Returns a new ledger with ring_cap batch slots of parts_max partitions
 * each (a batch of up to parts_max messages can name no more), or NULL when
 * either is < 1. Free with sr_pipeline_ledger_destroy(). */
sr_pipeline_ledger_t *sr_pipeline_ledger_new(int ring_cap, int parts_max);
void sr_pipeline_ledger_destroy(sr_pipeline_ledger_t *l); /* accepts NULL */

/* ---- batches ---- */

/* Opens the next batch (pending = 1, the seal reference). Returns NULL when
 * the ring is full (every slot holds a live batch: retire, or wait for
 * delivery reports and retry) or after the ring was found corrupt. The
 * record is borrowed, valid until it retires. */
sr_pipeline_ledger_batch_t *sr_pipeline_ledger_open(sr_pipeline_ledger_t *l);
/* 1 when every slot holds a live batch. */
int sr_pipeline_ledger_full(const sr_pipeline_ledger_t *l);
/* Live batches (opened, not retired). */
uint64_t sr_pipeline_ledger_live(const sr_pipeline_ledger_t *l);
/* The live batch of sequence seq, or NULL (retired, never opened, or its
 * slot holds another sequence). */
sr_pipeline_ledger_batch_t *sr_pipeline_ledger_batch(sr_pipeline_ledger_t *l, uint64_t seq);
/* Notes that message (partition, offset) belongs to b: the batch's next
 * offset for the partition becomes at least offset + 1, recorded for the
 * partition's current ownership. Returns SR_OK, SR_ERR_STATE when the
 * partition is not active (nothing noted: never commit for a partition we
 * do not own), or SR_ERR_INVALID_ARG when b already names parts_max other
 * partitions. */
sr_err_t sr_pipeline_ledger_note(sr_pipeline_ledger_t *l, sr_pipeline_ledger_batch_t *b,
                                 int32_t partition, int64_t offset);
/* One more reference on b (an output was handed to the producer). */
static inline void sr_pipeline_ledger_hold(sr_pipeline_ledger_batch_t *b) { b->pending++; }
/* Drops one reference (a delivery report, or the seal). */
static inline void sr_pipeline_ledger_release(sr_pipeline_ledger_batch_t *b) { b->pending--; }
/* Marks b failed: it never retires, nothing at or after it is committed. */
static inline void sr_pipeline_ledger_fail(sr_pipeline_ledger_batch_t *b) { b->failed = 1; }
/* Retires finished batches in order, moving committable positions of the
 * partitions still owned by the ownership that noted them. Returns SR_OK,
 * or SR_ERR_STATE when a slot holds a sequence other than the one due
 * (nothing retires from then on; every call says so again). */
sr_err_t sr_pipeline_ledger_retire(sr_pipeline_ledger_t *l);

/* ---- positions ---- */

/* Partition assigned to us: active, a new epoch, every position -1
 * (nothing committable or known committed yet). Negative ids are ignored. */
void sr_pipeline_ledger_assign(sr_pipeline_ledger_t *l, int32_t partition);
/* Partition revoked: inactive, its positions dropped (-1). Returns 1 when
 * it was active. */
int sr_pipeline_ledger_revoke(sr_pipeline_ledger_t *l, int32_t partition);
int sr_pipeline_ledger_active(const sr_pipeline_ledger_t *l, int32_t partition);
/* The partition's positions; NULL for a partition never seen. Borrowed,
 * valid until the next call that assigns a new partition id. */
const sr_pipeline_ledger_pos_t *sr_pipeline_ledger_pos(const sr_pipeline_ledger_t *l,
                                                       int32_t partition);

/* ---- commits ---- */

/* The commit plan: the (partition, next offset) pairs to commit now, in
 * partition order: every active partition whose committable position is
 * not known committed, and, unless sync, is not already in flight (an
 * async commit whose result is pending is not sent again; a sync commit
 * sends everything not confirmed, so the final one re-sends whatever a
 * lost result left open). Call sr_pipeline_ledger_retire first. Returns the count;
 * *parts and *offs are borrowed, valid until the next sr_pipeline_ledger_plan or
 * sr_pipeline_ledger_assign of a new partition id. */
int sr_pipeline_ledger_plan(sr_pipeline_ledger_t *l, int sync, const int32_t **parts,
                            const int64_t **offs);
/* The pairs of a plan were sent: each is in flight until its result. */
void sr_pipeline_ledger_commit_sent(sr_pipeline_ledger_t *l, const int32_t *parts,
                                    const int64_t *offs, int n);
/* A commit result for (partition, next offset): SR_OK marks it committed
 * (a successful sync commit may report it directly); an error ends its
 * flight, so the next plan sends the partition again. Results may repeat
 * and arrive late: one for a partition not active, or (SR_OK) for an offset
 * past the partition's committable position, is ignored; one failure is
 * counted once. Returns 1 when the result failed a commit in flight
 * (counted in sr_pipeline_ledger_commit_failed), else 0. */
int sr_pipeline_ledger_commit_result(sr_pipeline_ledger_t *l, int32_t partition,
                                     int64_t next_offset, sr_err_t err);
/* After an aborted transaction (exactly-once): forgets every live batch
 * (their outputs were aborted; delivery reports still to come for them
 * find no batch) and moves each active partition's committable position
 * back to its committed one, so that nothing of the aborted work is
 * committed; the consumer is rewound to the same positions. */
void sr_pipeline_ledger_rewind(sr_pipeline_ledger_t *l);

/* Failed commit results counted so far. */
uint64_t sr_pipeline_ledger_commit_failed(const sr_pipeline_ledger_t *l);

#endif
