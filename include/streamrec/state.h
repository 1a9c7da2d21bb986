/*
 * state: per-user online state, grouped by the input partition it came from.
 *
 * A user record is fixed-size: key hash, last event time, event count, the
 * model state vector (state_size floats) and a ring of the last `ring_len`
 * item indices (used to filter recently seen items). Records live in chunks
 * that never move, so a user pointer stays valid until its partition is
 * dropped or the user is forgotten; the per-partition index is an
 * open-addressing table of 32-bit slot numbers keyed by the 64-bit xxHash of
 * the user id (ids themselves are not stored: see docs/ARCHITECTURE.md for
 * the collision bound).
 *
 * Partitions are added on assignment and dropped on revocation, so a later
 * changelog restore can rebuild exactly the partitions a worker owns.
 *
 * Thread: one state store belongs to the pipeline thread; no locks.
 */
#ifndef STREAMREC_STATE_H
#define STREAMREC_STATE_H

#include <stddef.h>
#include <stdint.h>
#include "streamrec/common.h"

typedef struct sr_state_s sr_state_t;

typedef struct sr_user_s {
  uint64_t key;      /* xxHash64 of the user id */
  int64_t last_ts;   /* event time of the last applied event, ms; 0 = none */
  uint32_t n_events; /* events applied */
  uint16_t ring_pos; /* next write position in ring */
  uint16_t ring_cnt; /* valid entries in ring (<= ring_len) */
  /* followed in memory by: float vec[state_size]; int32_t ring[ring_len]; */
} sr_user_t;

/* Returns a new store for records of state_size floats and ring_len recent
 * items (ring_len 0..4096). Free with sr_state_destroy(). */
sr_state_t *sr_state_new(int state_size, int ring_len);
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
/* Writes the recent items (oldest first) into out (capacity ring_len);
 * returns the count. */
int sr_user_recent(const sr_state_t *s, const sr_user_t *u, int32_t *out);
/* Appends item to the recent ring (overwrites the oldest when full). */
void sr_user_push_item(const sr_state_t *s, sr_user_t *u, int32_t item);

/* Serialises one user (for the changelog): fixed little-endian layout,
 * sr_state_record_size() bytes. restore creates/overwrites the user. */
size_t sr_state_record_size(const sr_state_t *s);
void sr_state_serialize(const sr_state_t *s, const sr_user_t *u, unsigned char *out);
sr_err_t sr_state_restore(sr_state_t *s, int32_t partition, const unsigned char *rec,
                          size_t len);

int sr_state_state_size(const sr_state_t *s);
int sr_state_ring_len(const sr_state_t *s);
size_t sr_state_users(const sr_state_t *s);           /* all partitions */
size_t sr_state_partition_users(const sr_state_t *s, int32_t partition);
size_t sr_state_bytes(const sr_state_t *s);           /* memory held */

#endif
