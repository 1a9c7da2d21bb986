/*
 * state: per-user online state, grouped by the input partition it came from.
 *
 * A user record is fixed-size: key hash, the user's clock (newest event
 * time applied), event count, the seen set (seen.h: the items the user
 * consumed, the seen-item filter; its entries live on the heap) and the
 * model state vector (state_size floats). Records live in chunks
 * that never move, so a user pointer stays valid until its partition is
 * dropped or the user is forgotten; the per-partition index is an
 * open-addressing table of 32-bit slot numbers keyed by the 64-bit xxHash of
 * the user id (ids themselves are not stored: see docs/ARCHITECTURE.md for
 * the collision bound).
 *
 * Partitions are added on assignment and dropped on revocation, so that a
 * changelog restore (not built yet: see sr_state_serialize) could rebuild
 * exactly the partitions a worker owns.
 *
 * Thread: one state store belongs to the pipeline thread; no locks.
 */
#ifndef STREAMREC_STATE_H
#define STREAMREC_STATE_H

#include <stddef.h>
#include <stdint.h>
#include "streamrec/common.h"
#include "streamrec/model.h"
#include "streamrec/seen.h"

typedef struct sr_state_s sr_state_t;

typedef struct sr_user_s {
  uint64_t key;      /* xxHash64 of the user id */
  int64_t last_ts;   /* the user's clock: newest event time applied, ms; 0 = none */
  uint32_t n_events; /* events applied */
  uint32_t flags_;   /* private to src/state */
  sr_seen_t seen;    /* items consumed; change it only through sr_user_apply (the serve
                        rule) or sr_user_seen_apply (the set alone) */
  /* followed in memory by: float vec[state_size]; */
} sr_user_t;

/* Returns a new store for records of state_size floats whose seen sets
 * follow the rules of *seen (copied; NULL = sr_seen_conf_defaults), or NULL
 * when an argument is out of range (sr_seen_conf_check). Free with
 * sr_state_destroy(). */
sr_state_t *sr_state_new(int state_size, const sr_seen_conf_t *seen);
void sr_state_destroy(sr_state_t *s); /* accepts NULL */

/* Partition lifecycle. add is idempotent; drop frees all users of it. */
void sr_state_partition_add(sr_state_t *s, int32_t partition);
void sr_state_partition_drop(sr_state_t *s, int32_t partition);
int sr_state_partition_has(const sr_state_t *s, int32_t partition);

/* Largest number of users one partition may hold (default and ceiling:
 * SR_STATE_USERS_MAX, what the 26-bit slot numbers of the index address).
 * Returns the bound in effect (clamped to 1..SR_STATE_USERS_MAX). */
#define SR_STATE_USERS_MAX 67108863u /* 2^26 - 1 */
uint32_t sr_state_set_max_users(sr_state_t *s, uint32_t max_users);
uint32_t sr_state_max_users(const sr_state_t *s);

/* Finds the user in partition (which must have been added), creating a
 * zeroed record when absent and create != 0 (*created = 1; the caller
 * initialises vec). Returns NULL when absent and !create, when the
 * partition is not present, or when creating would pass the partition's
 * user bound (sr_state_set_max_users): callers must handle NULL. The
 * pointer is valid until the user is forgotten or the partition dropped. */
sr_user_t *sr_state_get(sr_state_t *s, int32_t partition, const char *user_id, size_t len,
                        int create, int *created);
/* Removes a user (privacy: forget). Returns 1 when it existed. */
int sr_state_forget(sr_state_t *s, int32_t partition, const char *user_id, size_t len);

float *sr_user_vec(const sr_state_t *s, sr_user_t *u);
/* Applies one event to the user's seen set with the store's rules
 * (sr_seen_apply with the user's clock u->last_ts, which the caller has
 * already advanced for this event). Returns the entries the bound dropped
 * (0 or 1), also counted in sr_state_seen_dropped(). */
int sr_user_seen_apply(sr_state_t *s, sr_user_t *u, sr_event_type_t type, int32_t item, int64_t ts);
/* The serve rule: one event applied to one user, written once and shared by
 * serve (sr_user_apply) and every offline replay (eval), so that what eval
 * measures is what serve would publish by construction.
 *   - item < 0 (not in the model's catalogue): nothing changes;
 *   - FORGET: the user starts over (m's initial state, clock 0, the seen
 *     set cleared), what serve's forget + re-creation amounts to;
 *   - otherwise: the model step with dt = ts - clock when clock > 0 and ts
 *     is later, else 0; the clock advances to ts when later; the seen set
 *     applies the event with rules sc and the new clock.
 * m may be NULL (baselines replay without a model): h is then unused and
 * may be NULL, the clock and the seen set follow the same rule. Returns the
 * seen entries the bound dropped (0 or 1). Allocation-free but for the seen
 * set's growth. Thread: the caller owns h, *clock and *seen. */
int sr_user_step(const sr_model_t *m, const sr_seen_conf_t *sc, float *h, int64_t *clock,
                 sr_seen_t *seen, sr_event_type_t type, int32_t item, float value, int64_t ts);
/* sr_user_step on the record u of s (its vector, clock u->last_ts, seen
 * set with the store's rules); an applied event (item >= 0, not FORGET)
 * also counts in u->n_events; FORGET sets n_events to 0. Dropped seen
 * entries are counted in sr_state_seen_dropped() too. Returns as
 * sr_user_step. A record just created by sr_state_get needs
 * sr_model_state_init on its vector first. */
int sr_user_apply(sr_state_t *s, sr_user_t *u, const sr_model_t *m, sr_event_type_t type,
                  int32_t item, float value, int64_t ts);
const sr_seen_conf_t *sr_state_seen_conf(const sr_state_t *s);
/* Seen entries dropped by the bound (state.seen.max) since creation. */
uint64_t sr_state_seen_dropped(const sr_state_t *s);

/* Serialises one user, little-endian, appended to out: a 32-byte header,
 * the state vector, then the seen set (sr_seen_serialize). The record
 * format is for a state changelog that does not exist yet: nothing in
 * serve writes or reads these records today (only tests/unit/0020 does),
 * so a worker that gains a partition, or restarts, starts its users from
 * the model's initial state and the events after the last commit.
 * restore creates/overwrites the user from one such record; n_items bounds
 * the seen items (the catalogue the record's indices refer to). Errors:
 * SR_ERR_TRUNCATED, SR_ERR_VERSION, SR_ERR_MODEL (another state size),
 * SR_ERR_FORMAT (bad seen set or trailing bytes), SR_ERR_STATE (partition
 * not present), SR_ERR_STATE_FULL (user bound). */
void sr_state_serialize(const sr_state_t *s, const sr_user_t *u, sr_buf_t *out);
sr_err_t sr_state_restore(sr_state_t *s, int32_t partition, const unsigned char *rec, size_t len,
                          int32_t n_items);

int sr_state_state_size(const sr_state_t *s);
size_t sr_state_users(const sr_state_t *s); /* all partitions */
size_t sr_state_partition_users(const sr_state_t *s, int32_t partition);
/* Memory held: records, indexes and the seen sets' heap (the latter is a
 * walk over every user: for benchmarks and tests, not the hot path). */
size_t sr_state_bytes(const sr_state_t *s);

#endif
