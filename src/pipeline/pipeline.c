/*
 * pipeline: the online worker loop. Owns the consumer, the producer, the
 * codec, the user state and the scorer, and drives them from one thread.
 *
 * Why one thread: the unavoidable cost per event is scoring the catalogue
 * (one sgemm row); decode, state update and encode are small next to it. A
 * single pipeline thread needs no locks on the per-event path and keeps the
 * offset bookkeeping trivially ordered; cores go to OpenBLAS inside sgemm
 * (docs/ARCHITECTURE.md). Scale-out is by more workers in the group.
 *
 * Offset bookkeeping: every consumed message belongs to a batch; a batch
 * record holds, per partition present in it, the next offset after its last
 * message, and a count of outputs still awaiting their delivery report
 * (plus one "seal" reference dropped when the batch is fully processed).
 * Batches retire strictly in order once their count reaches zero; retiring
 * moves the committable position of each of its partitions. Commits go out
 * every commit_interval_ms, on revocation (synchronously, after flushing the
 * producer) and at shutdown. A permanently failed delivery poisons its
 * batch: nothing at or after it is ever retired, and run() stops with
 * SR_ERR_DELIVERY. The same holds for every other way a batch can be left
 * unfinished (a send abandoned at stop, a fatal producer error): each path
 * that abandons a batch marks it failed. A ring slot is reused only once its
 * batch retired (sr_batch_open returns NULL rather than overwrite a live
 * one), and retire checks that the slot holds the sequence it retires.
 *
 * Per-event problems never stop the worker: undecodable input, input that
 * breaks the input rules (sr_pipeline_check), consumer errors, a user the
 * state cannot hold, a recommendation that cannot be encoded or is larger
 * than the producer accepts all become dead letters with the reason. A
 * dead letter that is itself too large is sent with its key and value
 * truncated (headers give the original sizes).
 */
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "streamrec/codec.h"
#include "streamrec/pipeline.h"
#include "streamrec/score.h"
#include "streamrec/state.h"

#define SR_PIPE_MOD "pipeline"

/* What a dead letter keeps of an input too large to copy whole. */
#define SR_DLQ_KEY_KEEP 1024
#define SR_DLQ_VALUE_KEEP 65536

typedef struct sr_batch_part_s {
  int32_t partition;
  int64_t next_offset;
} sr_batch_part_t;

typedef struct sr_batch_rec_s {
  uint64_t seq;
  int pending; /* outputs not yet acknowledged + 1 seal reference */
  int failed;
  int n_parts;
  sr_batch_part_t *parts; /* [batch_max], preallocated */
} sr_batch_rec_t;

/* One row of the micro-batch being built: an event and a copy of its
 * user's state and seen items right after that event (so several events
 * of one user in a batch each get the recommendation for their own moment).
 * With batch.coalesce, a user's later event reuses the user's row. */
typedef struct sr_slot_s {
  sr_user_t *user;
  int msg; /* index in the batch's messages of the event this row answers */
  int n_excl;
  size_t excl_off; /* into p->excl: the user's seen items, ascending */
  int32_t partition;
  int64_t offset;
  int64_t event_time;
  size_t user_off, user_len; /* into p->strs */
  size_t evid_off, evid_len;
  size_t scen_off, scen_len;
} sr_slot_t;

typedef struct sr_part_pos_s {
  int active;
  int64_t committable; /* next offset safe to commit, -1 none */
  int64_t committed;   /* last committed, -1 none */
} sr_part_pos_t;

#define SR_STAT_FIELDS(X)                                                                          \
  X(consumed)                                                                                      \
  X(decoded) X(dlq) X(unknown_items) X(forgotten) X(coalesced) X(recs_sent) X(recs_delivered)      \
      X(delivery_failed) X(batches) X(commits) X(users) X(users_peak) X(score_ns)                  \
          X(assigned_partitions) X(consume_errors) X(rejected) X(oversized) X(state_full)          \
              X(revoke_dropped) X(seen_dropped)

struct sr_pipeline_s {
  sr_pipeline_conf_t conf;
  char *brokers, *group, *events_topic, *recs_topic, *dlq_topic, *client_id;
  sr_kv_t *kafka_c, *kafka_p; /* both-clients properties followed by the client's own */
  int n_kafka_c, n_kafka_p;
  sr_model_t *model;
  sr_codec_t *codec;
  sr_state_t *state;
  sr_scorer_t *scorer;
  sr_ingest_t *ingest;
  sr_publish_t *publish;
  atomic_int stop;
  atomic_int abort_;
  _Atomic int64_t unassigned_since_ms; /* wall ms; 0 while partitions are assigned */
  int n_assigned;
  int64_t last_wait_log_us;
  int64_t last_skip_log_us;

  /* micro-batch scratch, preallocated */
  sr_msg_t *msgs;
  sr_slot_t *slots;
  int n_slots;
  sr_buf_t strs;
  sr_buf_t enc;
  const float **st_ptrs;
  float *st_copy; /* batch_max x state_size */
  int32_t *excl;  /* the rows' seen items (grows; reset per batch) */
  size_t excl_len, excl_cap;
  const int32_t **excl_ptrs;
  int *n_excl;
  int32_t *top_idx; /* batch_max x k */
  float *top_score;
  int *top_cnt;
  sr_rec_item_t *rec_items; /* k */

  /* batch ring */
  sr_batch_rec_t *batches;
  int ring_cap;
  uint64_t seq_head; /* oldest live batch */
  uint64_t seq_next; /* next batch to open */

  /* per-partition positions, indexed by partition id */
  sr_part_pos_t *pos;
  int n_pos;
  int64_t last_commit_us;

  sr_err_t fatal;
  char fatal_str[1024];

  struct {
#define SR__STAT_DECL(f) _Atomic uint64_t f;
    SR_STAT_FIELDS(SR__STAT_DECL)
#undef SR__STAT_DECL
  } st;
};

#define STAT_ADD(p, f, v) atomic_fetch_add_explicit(&(p)->st.f, (v), memory_order_relaxed)

void sr_pipeline_conf_defaults(sr_pipeline_conf_t *c) {
  memset(c, 0, sizeof(*c));
  c->group = "streamrec";
  c->events_topic = "events";
  c->recs_topic = "recommendations";
  c->dlq_topic = "events.dlq";
  c->client_id = "streamrec";
  c->k = 10;
  c->batch_max = 64;
  c->batch_wait_us = 1000;
  sr_seen_conf_defaults(&c->seen);
  c->event_schema_id = SR_DEFAULT_EVENT_SCHEMA_ID;
  c->rec_schema_id = SR_DEFAULT_REC_SCHEMA_ID;
  c->commit_interval_ms = 500;
  c->max_inflight_batches = 4096;
  c->id_max_bytes = 1024;
  c->future_max_ms = 86400000;
  c->key_check = 1;
  c->users_max = SR_STATE_USERS_MAX;
  c->shutdown_timeout_ms = 10000;
}

static void sr_pipeline_fatal(sr_pipeline_t *p, sr_err_t err, const char *fmt, const char *a) {
  if (p->fatal != SR_OK) return; /* keep the first cause */
  p->fatal = err;
  snprintf(p->fatal_str, sizeof(p->fatal_str), fmt, a);
  sr_log_error(SR_PIPE_MOD, "%s", p->fatal_str);
}

/* ---------------------------------------------------------------- offsets */

static sr_part_pos_t *sr_pipeline_pos(sr_pipeline_t *p, int32_t part) {
  if (part < 0) return NULL;
  if (part >= p->n_pos) {
    int n = p->n_pos ? p->n_pos : 16;
    while (n <= part)
      n *= 2;
    p->pos = sr_realloc(p->pos, (size_t)n * sizeof(*p->pos));
    for (int i = p->n_pos; i < n; i++) {
      p->pos[i].active = 0;
      p->pos[i].committable = -1;
      p->pos[i].committed = -1;
    }
    p->n_pos = n;
  }
  return &p->pos[part];
}

static sr_batch_rec_t *sr_batch_get(sr_pipeline_t *p, uint64_t seq) {
  if (seq < p->seq_head || seq >= p->seq_next) return NULL;
  return &p->batches[seq % (uint64_t)p->ring_cap];
}

/* Retires completed batches in order, advancing committable positions. */
static void sr_pipeline_retire(sr_pipeline_t *p) {
  while (p->seq_head < p->seq_next) {
    sr_batch_rec_t *b = &p->batches[p->seq_head % (uint64_t)p->ring_cap];
    if (b->seq != p->seq_head) {
      /* A slot overwritten while live would commit offsets whose outputs
       * were never delivered: refuse to retire anything ever again. */
      b->failed = 1;
      sr_pipeline_fatal(p, SR_ERR_STATE, "batch ring corrupt: slot holds batch %s",
                        "of another sequence; not committing past it");
    }
    if (b->pending > 0 || b->failed) break;
    for (int i = 0; i < b->n_parts; i++) {
      sr_part_pos_t *pp = sr_pipeline_pos(p, b->parts[i].partition);
      if (pp->active && b->parts[i].next_offset > pp->committable)
        pp->committable = b->parts[i].next_offset;
    }
    p->seq_head++;
  }
}

static void sr_on_delivery(void *opaque, void *msg_opaque, sr_err_t err, const char *reason) {
  sr_pipeline_t *p = opaque;
  uint64_t tag = (uint64_t)(uintptr_t)msg_opaque;
  uint64_t seq = tag >> 1; /* low bit: 1 = dead letter, 0 = recommendation */
  sr_batch_rec_t *b = sr_batch_get(p, seq);
  if (!b) {
    sr_log_error(SR_PIPE_MOD, "delivery report for unknown batch %llu", (unsigned long long)seq);
    return;
  }
  if (err != SR_OK) {
    b->failed = 1;
    STAT_ADD(p, delivery_failed, 1);
    sr_pipeline_fatal(p, SR_ERR_DELIVERY,
                      "output delivery failed permanently (%s): stopping without committing "
                      "past it; restart re-processes from the last commit",
                      reason ? reason : "?");
  } else if (!(tag & 1)) {
    STAT_ADD(p, recs_delivered, 1);
  }
  b->pending--;
}

static void sr_pipeline_commit_list(sr_pipeline_t *p, const int32_t *parts, const int64_t *offs,
                                    int n, int sync) {
  char es[256];
  if (n == 0) return;
  if (sr_ingest_commit(p->ingest, parts, offs, n, !sync, es, sizeof(es)) != SR_OK) {
    sr_log_warn(SR_PIPE_MOD, "commit failed (retried at the next interval): %s", es);
    return;
  }
  for (int j = 0; j < n; j++)
    p->pos[parts[j]].committed = offs[j];
  STAT_ADD(p, commits, 1);
}

/* Commits every active partition whose committable position moved. */
static void sr_pipeline_commit(sr_pipeline_t *p, int sync) {
  int32_t parts[256];
  int64_t offs[256];
  int n = 0;
  sr_pipeline_retire(p);
  for (int i = 0; i < p->n_pos; i++) {
    sr_part_pos_t *pp = &p->pos[i];
    if (!pp->active || pp->committable < 0 || pp->committable == pp->committed) continue;
    parts[n] = i;
    offs[n] = pp->committable;
    if (++n == (int)SR_ARRAY_SIZE(parts)) {
      sr_pipeline_commit_list(p, parts, offs, n, sync);
      n = 0;
    }
  }
  sr_pipeline_commit_list(p, parts, offs, n, sync);
  p->last_commit_us = sr_mono_us();
}

/* Waits up to shutdown_timeout_ms for every in-flight output (in steps, so
 * that abort ends the wait), then commits synchronously what retired. At
 * the final drain (shutdown) what is still undelivered is purged: it fails
 * its batch, so its offsets are not committed, and the producer need not
 * wait for it again when destroyed. At a revocation it stays in flight. */
static void sr_pipeline_drain(sr_pipeline_t *p, int final) {
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

static void sr_on_rebalance(void *opaque, int assigned, const int32_t *parts, int n) {
  sr_pipeline_t *p = opaque;
  if (assigned) {
    for (int i = 0; i < n; i++) {
      sr_part_pos_t *pp = sr_pipeline_pos(p, parts[i]);
      if (!pp) continue;
      pp->active = 1;
      pp->committable = -1;
      pp->committed = -1;
      /* Start from nothing: state left from an earlier ownership would have
       * the events since the last commit applied twice. */
      sr_state_partition_drop(p->state, parts[i]);
      sr_state_partition_add(p->state, parts[i]);
    }
    p->n_assigned += n;
    if (p->n_assigned > 0) atomic_store(&p->unassigned_since_ms, 0);
    STAT_ADD(p, assigned_partitions, (uint64_t)n);
    sr_log_info(SR_PIPE_MOD, "assigned %d partition(s) of %s", n, p->events_topic);
    return;
  }
  /* Revoke: finish and commit what we did for these partitions while we
   * still own them, then drop their state. */
  sr_pipeline_drain(p, 0);
  for (int i = 0; i < n; i++) {
    sr_part_pos_t *pp = sr_pipeline_pos(p, parts[i]);
    if (!pp) continue;
    if (pp->active) p->n_assigned--;
    pp->active = 0;
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

/* ------------------------------------------------------------------ batch */

static int sr_pipeline_stopping(sr_pipeline_t *p) {
  return atomic_load_explicit(&p->stop, memory_order_relaxed) ||
         atomic_load_explicit(&p->abort_, memory_order_relaxed);
}

/* Opens a batch record, waiting (serving delivery reports) while the ring
 * is full: this is the back-pressure point. The wait ends when the oldest
 * batch retires, or with NULL on a fatal error or stop: the slot of a live
 * batch is never reused (its messages then stay uncommitted). */
static sr_batch_rec_t *sr_batch_open(sr_pipeline_t *p) {
  while (p->seq_next - p->seq_head >= (uint64_t)p->ring_cap) {
    if (p->fatal != SR_OK || sr_pipeline_stopping(p)) return NULL;
    sr_publish_poll(p->publish, 10);
    sr_pipeline_retire(p);
  }
  if (p->fatal != SR_OK) return NULL;
  sr_batch_rec_t *b = &p->batches[p->seq_next % (uint64_t)p->ring_cap];
  b->seq = p->seq_next++;
  b->pending = 1; /* seal */
  b->failed = 0;
  b->n_parts = 0;
  return b;
}

static void sr_batch_note_offset(sr_batch_rec_t *b, int32_t part, int64_t offset) {
  for (int i = 0; i < b->n_parts; i++) {
    if (b->parts[i].partition == part) {
      if (offset + 1 > b->parts[i].next_offset) b->parts[i].next_offset = offset + 1;
      return;
    }
  }
  b->parts[b->n_parts].partition = part;
  b->parts[b->n_parts].next_offset = offset + 1;
  b->n_parts++;
}

/* Sends one message, serving delivery reports while the local queue is
 * full. Returns SR_OK; SR_ERR_TOO_LARGE (this message can never be sent:
 * the caller dead-letters or truncates; the batch is not failed); or
 * another error, after which the batch is failed (nothing at or after it is
 * committed): a permanent producer error (recorded as fatal) or a stop that
 * came while the queue was full (SR_ERR_STATE). */
static sr_err_t sr_pipeline_send(sr_pipeline_t *p, sr_batch_rec_t *b, int is_dlq, const char *topic,
                                 const void *key, size_t klen, const void *val, size_t vlen,
                                 const sr_header_t *hdrs, int nh, char *es, size_t essz) {
  for (;;) {
    sr_err_t e = sr_publish_send(p->publish, topic, -1, key, klen, val, vlen, hdrs, nh,
                                 (void *)(uintptr_t)((b->seq << 1) | (uint64_t)is_dlq), es, essz);
    if (e == SR_OK) {
      b->pending++;
      return SR_OK;
    }
    if (e == SR_ERR_TOO_LARGE) return e;
    if (e != SR_ERR_QUEUE_FULL) {
      b->failed = 1;
      sr_pipeline_fatal(p, e, "produce failed: %s", es);
      return e;
    }
    if (sr_pipeline_stopping(p)) {
      b->failed = 1; /* abandoned: its offsets must not be committed */
      return SR_ERR_STATE;
    }
    sr_publish_poll(p->publish, 10);
  }
}

/* Dead-letters m (its key and value, untouched) with the reason headers.
 * A dead letter larger than the producer accepts goes out with its key and
 * value cut to SR_DLQ_KEY_KEEP / SR_DLQ_VALUE_KEEP bytes (then with neither)
 * and headers giving the original sizes: it is never given up for size. */
static void sr_pipeline_dlq(sr_pipeline_t *p, sr_batch_rec_t *b, const sr_msg_t *m, sr_err_t why,
                            const char *reason) {
  char part[16], off[24], ts[24], ksz[24], vsz[24], es[256];
  snprintf(part, sizeof(part), "%d", (int)m->partition);
  snprintf(off, sizeof(off), "%lld", (long long)m->offset);
  snprintf(ts, sizeof(ts), "%lld", (long long)m->timestamp_ms);
  snprintf(ksz, sizeof(ksz), "%zu", m->key ? m->key_len : 0);
  snprintf(vsz, sizeof(vsz), "%zu", m->value ? m->len : 0);
  const char *ename = sr_err2name(why);
  const char *topic = m->topic ? m->topic : p->events_topic;
  sr_header_t h[] = {
      {"streamrec.error", ename, strlen(ename)},
      {"streamrec.reason", reason, strlen(reason)},
      {"streamrec.source.topic", topic, strlen(topic)},
      {"streamrec.source.partition", part, strlen(part)},
      {"streamrec.source.offset", off, strlen(off)},
      {"streamrec.source.timestamp", ts, strlen(ts)},
      {"streamrec.truncated", "true", 4},
      {"streamrec.original.key.size", ksz, strlen(ksz)},
      {"streamrec.original.value.size", vsz, strlen(vsz)},
  };
  sr_log_debug(SR_PIPE_MOD, "dead-letter %s[%d]@%lld: %s", topic, (int)m->partition,
               (long long)m->offset, reason);
  size_t klen = m->key ? m->key_len : 0, vlen = m->value ? m->len : 0;
  sr_err_t e =
      sr_pipeline_send(p, b, 1, p->dlq_topic, m->key, klen, m->value, vlen, h, 6, es, sizeof(es));
  if (e == SR_ERR_TOO_LARGE) {
    STAT_ADD(p, oversized, 1);
    e = sr_pipeline_send(p, b, 1, p->dlq_topic, m->key, SR_MIN(klen, SR_DLQ_KEY_KEEP), m->value,
                         SR_MIN(vlen, SR_DLQ_VALUE_KEEP), h, 9, es, sizeof(es));
    if (e == SR_ERR_TOO_LARGE)
      e = sr_pipeline_send(p, b, 1, p->dlq_topic, NULL, 0, NULL, 0, h, 9, es, sizeof(es));
    if (e == SR_ERR_TOO_LARGE) {
      b->failed = 1;
      sr_pipeline_fatal(p, SR_ERR_TOO_LARGE,
                        "a dead letter does not fit even without key and value (%s): raise "
                        "kafka.producer.message.max.bytes",
                        es);
    }
  }
  if (e == SR_OK) STAT_ADD(p, dlq, 1);
}

static size_t sr_strs_put(sr_pipeline_t *p, sr_str_t s) {
  size_t off = p->strs.len;
  sr_buf_append(&p->strs, s.ptr, s.len);
  return off;
}

/* "user_id 'abc…' (600000 bytes)": a bounded, printable rendering of an
 * untrusted id for a reason header. */
static void sr_pipeline_show(char *out, size_t cap, const void *ptr, size_t len) {
  size_t o = 0;
  const unsigned char *c = ptr;
  for (size_t i = 0; i < len && i < 32 && o + 5 < cap; i++)
    out[o++] = c[i] >= 0x20 && c[i] < 0x7f && c[i] != '\'' ? (char)c[i] : '?';
  out[o] = 0;
  if (len > 32 && o + 4 < cap) snprintf(out + o, cap - o, "...");
}

/* The input rules an event must meet before it touches state (documented
 * in docs/ARCHITECTURE.md, options in docs/CONFIGURATION.md): ids of at
 * most id_max_bytes, a finite value, a timestamp from 1970 up to
 * future_max_ms past the worker's clock, and (key_check) a Kafka key equal
 * to the user id, so that all of a user's events meet in one partition. */
static sr_err_t sr_pipeline_check(const sr_pipeline_t *p, const sr_msg_t *m, const sr_event_t *ev,
                                  char *es, size_t essz) {
  const struct {
    const char *name;
    sr_str_t v;
  } ids[] = {{"event_id", ev->event_id},
             {"user_id", ev->user_id},
             {"item_id", ev->item_id},
             {"scenario", ev->scenario}};
  for (size_t i = 0; i < SR_ARRAY_SIZE(ids); i++)
    if (ids[i].v.len > (size_t)p->conf.id_max_bytes)
      return sr_seterr(es, essz, SR_ERR_INVALID_FIELD,
                       "%s is %zu bytes, more than event.id.max.bytes (%d)", ids[i].name,
                       ids[i].v.len, p->conf.id_max_bytes);
  if (!isfinite(ev->value))
    return sr_seterr(es, essz, SR_ERR_INVALID_FIELD, "value is not a finite number (%g)",
                     (double)ev->value);
  if (ev->ts_ms < 0)
    return sr_seterr(es, essz, SR_ERR_INVALID_FIELD, "timestamp %lld ms is before 1970-01-01",
                     (long long)ev->ts_ms);
  const int64_t now = sr_now_ms();
  if (ev->ts_ms > now && ev->ts_ms - now > p->conf.future_max_ms)
    return sr_seterr(es, essz, SR_ERR_INVALID_FIELD,
                     "timestamp %lld ms is %lld ms ahead of this worker's clock (more than "
                     "event.time.future.max.ms %lld)",
                     (long long)ev->ts_ms, (long long)(ev->ts_ms - now),
                     (long long)p->conf.future_max_ms);
  if (p->conf.key_check &&
      (!m->key || m->key_len != ev->user_id.len || memcmp(m->key, ev->user_id.ptr, m->key_len))) {
    char k[48], u[48];
    sr_pipeline_show(k, sizeof(k), m->key, m->key ? m->key_len : 0);
    sr_pipeline_show(u, sizeof(u), ev->user_id.ptr, ev->user_id.len);
    return m->key ? sr_seterr(es, essz, SR_ERR_KEY_MISMATCH,
                              "Kafka key '%s' (%zu bytes) is not the user_id '%s' (%zu bytes): "
                              "a user's events must share one key (event.key.check)",
                              k, m->key_len, u, ev->user_id.len)
                  : sr_seterr(es, essz, SR_ERR_KEY_MISMATCH,
                              "message has no Kafka key; the key must be the user_id '%s' "
                              "(event.key.check)",
                              u);
  }
  return SR_OK;
}

/* Applies one decoded event (messages[mi] of the batch) to state and to
 * the batch slots. Returns SR_OK, or SR_ERR_STATE_FULL (with es) when a new
 * user does not fit: nothing was changed and the caller dead-letters it. */
static sr_err_t sr_pipeline_apply(sr_pipeline_t *p, const sr_msg_t *m, int mi, const sr_event_t *ev,
                                  char *es, size_t essz) {
  if (ev->type == SR_EV_FORGET) {
    /* Privacy: drop the user's state; nothing is recommended for a forget,
     * and the user's rows still waiting in this batch are dropped too. */
    for (int i = 0; i < p->n_slots; i++) {
      sr_slot_t *s = &p->slots[i];
      if (s->partition == m->partition && s->user_len == ev->user_id.len &&
          !memcmp(p->strs.data + s->user_off, ev->user_id.ptr, s->user_len))
        s->user = NULL;
    }
    sr_state_forget(p->state, m->partition, ev->user_id.ptr, ev->user_id.len);
    STAT_ADD(p, forgotten, 1);
    return SR_OK;
  }
  int created = 0;
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
  if (item < 0) {
    STAT_ADD(p, unknown_items, 1);
  } else {
    int64_t dt = u->last_ts > 0 && ev->ts_ms > u->last_ts ? ev->ts_ms - u->last_ts : 0;
    sr_model_step(p->model, h, item, ev->type, ev->value, dt);
    if (ev->ts_ms > u->last_ts) u->last_ts = ev->ts_ms;
    u->n_events++;
    if (sr_user_seen_apply(p->state, u, ev->type, item, ev->ts_ms)) STAT_ADD(p, seen_dropped, 1);
  }

  /* One row per event; with coalescing, one row per user (its newest event). */
  sr_slot_t *s = NULL;
  int si = -1;
  if (p->conf.coalesce)
    for (int i = 0; i < p->n_slots; i++)
      if (p->slots[i].user == u) {
        si = i;
        STAT_ADD(p, coalesced, 1);
        break;
      }
  if (si < 0) {
    si = p->n_slots++;
    s = &p->slots[si];
    s->user = u;
    s->user_off = sr_strs_put(p, ev->user_id);
    s->user_len = ev->user_id.len;
  }
  s = &p->slots[si];
  s->msg = mi;
  s->partition = m->partition;
  s->offset = m->offset;
  s->event_time = ev->ts_ms;
  s->evid_off = sr_strs_put(p, ev->event_id);
  s->evid_len = ev->event_id.len;
  s->scen_off = sr_strs_put(p, ev->scenario);
  s->scen_len = ev->scenario.len;
  int ss = sr_model_state_size(p->model);
  memcpy(p->st_copy + (size_t)si * (size_t)ss, h, (size_t)ss * sizeof(float));
  /* The row's filter is a copy: a later event of the user in this batch
   * changes the set. Grows geometrically, so amortised allocation-free. */
  uint32_t n_seen = sr_seen_count(&u->seen);
  if (p->excl_len + n_seen > p->excl_cap) {
    size_t cap = p->excl_cap;
    while (cap < p->excl_len + n_seen)
      cap *= 2;
    p->excl = sr_realloc(p->excl, cap * sizeof(*p->excl));
    p->excl_cap = cap;
  }
  s->excl_off = p->excl_len;
  s->n_excl = (int)sr_seen_sorted(&u->seen, p->excl + p->excl_len);
  p->excl_len += (size_t)s->n_excl;
  return SR_OK;
}

/* Scores the batch's users and publishes one Recommendation each; msgs are
 * the batch's input messages (a row whose recommendation cannot be
 * encoded or sent for size dead-letters its event instead). */
static void sr_pipeline_flush_slots(sr_pipeline_t *p, sr_batch_rec_t *b, const sr_msg_t *msgs) {
  int n = 0;
  int ss = sr_model_state_size(p->model);
  /* compact away rows detached by FORGET (with their state copies; their
   * seen copies stay where they are in p->excl, found by excl_off) */
  for (int i = 0; i < p->n_slots; i++) {
    if (!p->slots[i].user) continue;
    if (n != i) {
      p->slots[n] = p->slots[i];
      memcpy(p->st_copy + (size_t)n * (size_t)ss, p->st_copy + (size_t)i * (size_t)ss,
             (size_t)ss * sizeof(float));
    }
    n++;
  }
  p->n_slots = n;
  if (n == 0) return;
  for (int i = 0; i < n; i++) {
    p->st_ptrs[i] = p->st_copy + (size_t)i * (size_t)ss;
    p->excl_ptrs[i] = p->excl + p->slots[i].excl_off;
    p->n_excl[i] = p->slots[i].n_excl;
  }
  int64_t t0 = sr_mono_ns();
  sr_scorer_run(p->scorer, p->st_ptrs, n, p->excl_ptrs, p->n_excl, p->top_idx, p->top_score,
                p->top_cnt);
  STAT_ADD(p, score_ns, (uint64_t)(sr_mono_ns() - t0));
  int k = p->conf.k;
  const char *ver = sr_model_version(p->model);
  for (int i = 0; i < n; i++) {
    if (b->failed || p->fatal != SR_OK) {
      b->failed = 1; /* rows left unsent: nothing at or after this batch commits */
      break;
    }
    sr_slot_t *s = &p->slots[i];
    for (int j = 0; j < p->top_cnt[i]; j++) {
      p->rec_items[j].item_id = sr_model_item_id(p->model, p->top_idx[(size_t)i * k + j]);
      p->rec_items[j].score = p->top_score[(size_t)i * k + j];
      p->rec_items[j].propensity = 1.0f;
      p->rec_items[j].explore = 0;
    }
    const char *base = (const char *)p->strs.data;
    sr_rec_t rec = {
        .user_id = sr_str_make(base + s->user_off, s->user_len),
        .scenario = sr_str_make(base + s->scen_off, s->scen_len),
        .items = p->rec_items,
        .n_items = p->top_cnt[i],
        .model_version = sr_str_cstr(ver),
        .source_event_id = sr_str_make(base + s->evid_off, s->evid_len),
        .source_partition = s->partition,
        .source_offset = s->offset,
        .event_time = s->event_time,
        .produced_at = sr_now_ms(),
    };
    sr_buf_reset(&p->enc);
    char es[320];
    sr_err_t e = sr_codec_encode_rec(p->codec, &rec, &p->enc);
    if (e != SR_OK) {
      snprintf(es, sizeof(es), "the recommendation for this event could not be encoded: %s (%s)",
               sr_err2str(e), sr_err2name(e));
      sr_pipeline_dlq(p, b, &msgs[s->msg], SR_ERR_ENCODE, es);
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
      sr_pipeline_dlq(p, b, &msgs[s->msg], SR_ERR_TOO_LARGE, why);
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
  sr_batch_rec_t *b = sr_batch_open(p);
  if (!b) return; /* fatal or stopping with the ring full: nothing processed or committed */
  p->n_slots = 0;
  p->excl_len = 0;
  sr_buf_reset(&p->strs);
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
    sr_part_pos_t *pp = sr_pipeline_pos(p, m->partition);
    if (!pp || !pp->active) {
      /* Cannot happen with sr_ingest_poll's revocation rule; if it did, the
       * partition's owner processes it: never state for a partition we do
       * not own. */
      STAT_ADD(p, revoke_dropped, 1);
      sr_pipeline_skip_log(p, m);
      continue;
    }
    sr_batch_note_offset(b, m->partition, m->offset);
    sr_err_t e = sr_codec_decode_event(p->codec, m->value, m->len, &ev, es, sizeof(es));
    if (e == SR_OK) {
      STAT_ADD(p, decoded, 1);
      e = sr_pipeline_check(p, m, &ev, es, sizeof(es));
      if (e != SR_OK) STAT_ADD(p, rejected, 1);
    }
    if (e == SR_OK) e = sr_pipeline_apply(p, m, i, &ev, es, sizeof(es));
    if (e != SR_OK) sr_pipeline_dlq(p, b, m, e, es);
  }
  STAT_ADD(p, consumed, (uint64_t)n);
  if (!b->failed) sr_pipeline_flush_slots(p, b, msgs);
  b->pending--; /* seal */
  STAT_ADD(p, batches, 1);
  const uint64_t users = sr_state_users(p->state);
  atomic_store_explicit(&p->st.users, users, memory_order_relaxed);
  /* only this thread writes it: load + store is enough */
  if (users > atomic_load_explicit(&p->st.users_peak, memory_order_relaxed))
    atomic_store_explicit(&p->st.users_peak, users, memory_order_relaxed);
}

/* ------------------------------------------------------------- lifecycle */

/* Copies a then b into one list (b's entries are applied later, so win). */
static sr_kv_t *sr_pipeline_kv_merge(const sr_kv_t *a, int na, const sr_kv_t *b, int nb, int *n) {
  sr_kv_t *kv = sr_calloc((size_t)(na + nb) + 1, sizeof(*kv));
  for (int i = 0; i < na + nb; i++) {
    const sr_kv_t *src = i < na ? &a[i] : &b[i - na];
    kv[i].key = sr_strdup(src->key);
    kv[i].value = sr_strdup(src->value);
  }
  *n = na + nb;
  return kv;
}

static void sr_pipeline_kv_free(sr_kv_t *kv, int n) {
  for (int i = 0; kv && i < n; i++) {
    sr_free((char *)kv[i].key);
    sr_free((char *)kv[i].value);
  }
  sr_free(kv);
}

sr_pipeline_t *sr_pipeline_new(const sr_pipeline_conf_t *conf, sr_model_t *model, char *errstr,
                               size_t errsz) {
  sr_pipeline_t *p = NULL;
  if (!conf->brokers || !*conf->brokers) {
    sr_seterr(errstr, errsz, SR_ERR_CONF, "no brokers configured");
    return NULL;
  }
  if (conf->k < 1 || conf->k > 1000 || conf->batch_max < 1 || conf->batch_max > 4096 ||
      conf->max_inflight_batches < 2 || conf->id_max_bytes < 1 || conf->future_max_ms < 0 ||
      conf->users_max < 1 || conf->users_max > SR_STATE_USERS_MAX ||
      conf->shutdown_timeout_ms < 0) {
    sr_seterr(errstr, errsz, SR_ERR_CONF,
              "out of range: k 1..1000, batch_max 1..4096, "
              "max_inflight_batches >= 2, id_max_bytes >= 1, future_max_ms >= 0, "
              "users_max 1..%u, shutdown_timeout_ms >= 0",
              (unsigned)SR_STATE_USERS_MAX);
    return NULL;
  }
  p = sr_calloc(1, sizeof(*p));
  p->conf = *conf;
  p->brokers = sr_strdup(conf->brokers);
  p->group = sr_strdup(conf->group);
  p->events_topic = sr_strdup(conf->events_topic);
  p->recs_topic = sr_strdup(conf->recs_topic);
  p->dlq_topic = sr_strdup(conf->dlq_topic);
  p->client_id = sr_strdup(conf->client_id);
  p->kafka_c = sr_pipeline_kv_merge(conf->kafka, conf->n_kafka, conf->kafka_consumer,
                                    conf->n_kafka_consumer, &p->n_kafka_c);
  p->kafka_p = sr_pipeline_kv_merge(conf->kafka, conf->n_kafka, conf->kafka_producer,
                                    conf->n_kafka_producer, &p->n_kafka_p);
  p->conf.kafka = NULL; /* the merged copies above are what we use */
  p->conf.kafka_consumer = p->conf.kafka_producer = NULL;
  p->fatal = SR_OK;

  if (sr_seen_conf_check(&conf->seen, errstr, errsz) != SR_OK) return NULL;
  int bm = conf->batch_max, k = conf->k;
  p->codec = sr_codec_new(conf->event_schema_id, conf->rec_schema_id, errstr, errsz);
  if (!p->codec) goto fail;
  p->state = sr_state_new(sr_model_state_size(model), &conf->seen);
  sr_state_set_max_users(p->state, (uint32_t)conf->users_max);
  atomic_store(&p->unassigned_since_ms, sr_now_ms());
  p->scorer = sr_scorer_new(model, bm, k);
  if (!p->scorer) {
    sr_seterr(errstr, errsz, SR_ERR_NOMEM, "cannot allocate scoring buffers for %d x %d", bm,
              (int)sr_model_n_items(model));
    goto fail;
  }
  p->msgs = sr_calloc((size_t)bm, sizeof(*p->msgs));
  p->slots = sr_calloc((size_t)bm, sizeof(*p->slots));
  p->st_ptrs = sr_calloc((size_t)bm, sizeof(*p->st_ptrs));
  p->st_copy = sr_calloc((size_t)bm * (size_t)sr_model_state_size(model), sizeof(float));
  p->excl_cap = 1024; /* grows with the rows' seen sets; never NULL */
  p->excl = sr_malloc(p->excl_cap * sizeof(*p->excl));
  p->excl_ptrs = sr_calloc((size_t)bm, sizeof(*p->excl_ptrs));
  p->n_excl = sr_calloc((size_t)bm, sizeof(*p->n_excl));
  p->top_idx = sr_calloc((size_t)bm * (size_t)k, sizeof(*p->top_idx));
  p->top_score = sr_calloc((size_t)bm * (size_t)k, sizeof(*p->top_score));
  p->top_cnt = sr_calloc((size_t)bm, sizeof(*p->top_cnt));
  p->rec_items = sr_calloc((size_t)k, sizeof(*p->rec_items));
  sr_buf_init(&p->strs);
  sr_buf_init(&p->enc);
  sr_buf_reserve(&p->strs, (size_t)bm * 128);
  sr_buf_reserve(&p->enc, 4096);
  p->ring_cap = conf->max_inflight_batches;
  p->batches = sr_calloc((size_t)p->ring_cap, sizeof(*p->batches));
  for (int i = 0; i < p->ring_cap; i++)
    p->batches[i].parts = sr_calloc((size_t)bm, sizeof(sr_batch_part_t));

  sr_publish_conf_t pc = {.brokers = p->brokers,
                          .client_id = p->client_id,
                          .kafka = p->kafka_p,
                          .n_kafka = p->n_kafka_p,
                          .delivery_cb = sr_on_delivery,
                          .opaque = p};
  p->publish = sr_publish_new(&pc, errstr, errsz);
  if (!p->publish) goto fail;
  sr_ingest_conf_t ic = {.brokers = p->brokers,
                         .group = p->group,
                         .topic = p->events_topic,
                         .client_id = p->client_id,
                         .kafka = p->kafka_c,
                         .n_kafka = p->n_kafka_c,
                         .rebalance_cb = sr_on_rebalance,
                         .opaque = p};
  p->ingest = sr_ingest_new(&ic, errstr, errsz);
  if (!p->ingest) goto fail;
  p->model = model; /* ownership taken only on success */
  return p;
fail:
  sr_pipeline_destroy(p);
  return NULL;
}

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
    if (n > 0) {
      sr_pipeline_process(p, p->msgs, n);
      sr_ingest_release(p->ingest, p->msgs, n);
      total += (uint64_t)n;
      last_input_us = sr_mono_us();
    }
    sr_publish_poll(p->publish, 0);
    if (sr_mono_us() - p->last_commit_us >= (int64_t)p->conf.commit_interval_ms * 1000)
      sr_pipeline_commit(p, 0);
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
#define SR__STAT_COPY(f) out->f = atomic_load_explicit(&p->st.f, memory_order_relaxed);
  SR_STAT_FIELDS(SR__STAT_COPY)
#undef SR__STAT_COPY
  int64_t since =
      atomic_load_explicit(&((sr_pipeline_t *)p)->unassigned_since_ms, memory_order_relaxed);
  out->unassigned_ms = since > 0 ? SR_MAX(sr_now_ms() - since, 1) : 0;
  out->kafka_down_ms = p->ingest ? sr_ingest_down_ms(p->ingest) : 0;
}

const sr_model_t *sr_pipeline_model(const sr_pipeline_t *p) { return p->model; }

void sr_pipeline_destroy(sr_pipeline_t *p) {
  if (!p) return;
  sr_ingest_destroy(p->ingest);
  sr_publish_destroy(p->publish);
  sr_scorer_destroy(p->scorer);
  sr_state_destroy(p->state);
  sr_codec_destroy(p->codec);
  sr_model_destroy(p->model);
  if (p->batches)
    for (int i = 0; i < p->ring_cap; i++)
      sr_free(p->batches[i].parts);
  sr_free(p->batches);
  sr_free(p->pos);
  sr_free(p->msgs);
  sr_free(p->slots);
  sr_free(p->st_ptrs);
  sr_free(p->st_copy);
  sr_free(p->excl);
  sr_free(p->excl_ptrs);
  sr_free(p->n_excl);
  sr_free(p->top_idx);
  sr_free(p->top_score);
  sr_free(p->top_cnt);
  sr_free(p->rec_items);
  sr_buf_free(&p->strs);
  sr_buf_free(&p->enc);
  sr_pipeline_kv_free(p->kafka_c, p->n_kafka_c);
  sr_pipeline_kv_free(p->kafka_p, p->n_kafka_p);
  sr_free(p->brokers);
  sr_free(p->group);
  sr_free(p->events_topic);
  sr_free(p->recs_topic);
  sr_free(p->dlq_topic);
  sr_free(p->client_id);
  sr_free(p);
}
