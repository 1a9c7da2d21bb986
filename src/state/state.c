/*
 * state: the per-user online state store, one independent store per input
 * partition (so a revoked partition is dropped wholesale and a restore can
 * rebuild exactly the assigned ones).
 *
 * Why it is built this way (issue #4: 10M users at d=64 in < 6 GB, and an
 * update path that touches as few cache lines as possible):
 *
 *  - Records are fixed-size: sr_user_t header (48 bytes with the embedded
 *    seen set), float vec[state_size], padded to 8 bytes (304 bytes at
 *    d=64). No per-user malloc for the record, no user id strings (only the
 *    64-bit xxHash). The seen set's entries are the one per-user heap
 *    allocation (src/seen), made only once the user consumes an item.
 *  - Records live in chunks that never move, so sr_user_t pointers are
 *    stable. Chunk sizes start small and double (64, 64, 128, 256, 512
 *    records: 1024 in all) and are then 1024 records each (304 KB at d=64),
 *    so a partition with a handful of users does not pin megabytes and the
 *    unused tail of the last chunk stays under 304 KB per partition. (4096
 *    records per chunk measured 645 bytes/user at 5k users per partition.)
 *    A slot number maps to (chunk, offset) with one clz; see slot_ptr().
 *  - The index is open addressing with linear probing over uint32 entries.
 *    An entry holds the slot number in its low 26 bits and the top 6 bits of
 *    the key hash as a tag: a probe dereferences a record only when the tag
 *    matches, so a miss (new user) costs ~1 record access instead of ~6 at
 *    load 0.7. Cost: at most SLOT_MAX (2^26 - 1 = 67M) users per partition.
 *    The home bucket uses the low hash bits, the tag the high ones.
 *  - The index grows x2 when the load passes 0.7 (4 bytes / 0.35..0.7 load =
 *    6..11 bytes per user). Rehash scans the chunks sequentially (records
 *    carry their key; free records are marked) rather than chasing the old
 *    index: sequential memory, prefetcher-friendly.
 *  - Deletion (forget) uses backward-shift deletion, so there are no
 *    tombstones and probe lengths do not decay over time. The wiped record
 *    goes on a per-partition free list (next pointer kept in n_events,
 *    flags_ = FREE_MARK) and is reused by the next new user; its seen set
 *    is freed first.
 *  - Two ids with the same 64-bit hash are the same user (no ids stored;
 *    see docs/ARCHITECTURE.md for the collision bound).
 *
 * The partition map is a small sorted array searched by bisection with a
 * one-entry cache (consecutive events mostly come from the same partition).
 *
 * Memory for records is allocated with sr_malloc: running out of memory
 * aborts (there is no error path in sr_state_get()). Records are zeroed
 * when handed out, so untouched chunk tails are never faulted in.
 *
 * Changelog record (sr_state_serialize), all little-endian:
 *   0  u64 key          8 i64 last_ts      16 u32 n_events
 *   20 u32 state_size  24 u16 version (2)  26 u16 reserved (0)
 *   28 u32 seen_bytes
 *   32 f32 vec[state_size] (IEEE-754 binary32 bits)
 *   .. the seen set, seen_bytes bytes (sr_seen_serialize: entries oldest
 *      first, so the layout does not depend on the in-memory ring).
 *
 * Thread: one store belongs to the pipeline thread; no locks.
 */
#include <stdlib.h>
#include <string.h>

#include "streamrec/state.h"

#define SLOT_BITS 26
#define SLOT_MASK ((1u << SLOT_BITS) - 1)
#define SLOT_MAX SLOT_MASK /* slot SLOT_MASK never used: EMPTY has it */
#define IX_EMPTY UINT32_MAX
#define TAG_OF(key) ((uint32_t)((key) >> (64 - (32 - SLOT_BITS))) << SLOT_BITS)
#define FREE_MARK 0xFFFFu  /* flags_ of a record on the free list */
#define NO_SLOT UINT32_MAX /* end of the free list */

#define CHUNK_BIG_SHIFT 10 /* 1024 records per chunk after the first 1024 */
#define CHUNK_BIG (1u << CHUNK_BIG_SHIFT)
#define CHUNK_SMALL_SHIFT 6                                      /* first chunk: 64 records */
#define N_SMALL_CHUNKS (CHUNK_BIG_SHIFT - CHUNK_SMALL_SHIFT + 1) /* 64,64,..,512 */

#define SER_HDR 32
#define SER_VERSION 2

typedef struct part_s {
  int32_t id;
  uint32_t count;     /* live users */
  uint32_t n_slots;   /* slots ever handed out (high-water mark) */
  uint32_t free_head; /* free list of forgotten slots */
  uint32_t *index;    /* ix_mask + 1 entries */
  uint32_t ix_mask;
  unsigned char **chunks;
  uint32_t n_chunks, cap_chunks;
  size_t chunk_bytes; /* bytes of records allocated */
} part_t;

struct sr_state_s {
  uint32_t max_users; /* per partition, <= SLOT_MAX */
  int state_size;
  size_t rec_size;
  sr_seen_conf_t seen;
  uint64_t seen_dropped;
  part_t **parts; /* sorted by id */
  int n_parts, cap_parts;
  int last; /* index in parts of the last partition looked up */
};

/* ---- slots and chunks ---- */

static inline uint32_t chunk_cap(uint32_t c) {
  if (c == 0) return 1u << CHUNK_SMALL_SHIFT;
  if (c < N_SMALL_CHUNKS) return 1u << (CHUNK_SMALL_SHIFT + c - 1);
  return CHUNK_BIG;
}

static inline unsigned char *slot_ptr(const sr_state_t *s, const part_t *p, uint32_t slot) {
  uint32_t c, off;
  if (slot >= CHUNK_BIG) {
    c = N_SMALL_CHUNKS - 1 + (slot >> CHUNK_BIG_SHIFT);
    off = slot & (CHUNK_BIG - 1);
  } else if (slot < (1u << CHUNK_SMALL_SHIFT)) {
    c = 0;
    off = slot;
  } else {
    uint32_t b = 31u - (uint32_t)__builtin_clz(slot);
    c = b - CHUNK_SMALL_SHIFT + 1;
    off = slot - (1u << b);
  }
  return p->chunks[c] + (size_t)off * s->rec_size;
}

static inline sr_user_t *slot_user(const sr_state_t *s, const part_t *p, uint32_t slot) {
  return (sr_user_t *)(void *)slot_ptr(s, p, slot);
}

/* Calls fn on every live record of p (slot order). */
#define FOR_EACH_USER(s, p, u, body)                                                               \
  do {                                                                                             \
    uint32_t slot_ = 0;                                                                            \
    for (uint32_t c_ = 0; c_ < (p)->n_chunks && slot_ < (p)->n_slots; c_++) {                      \
      unsigned char *base_ = (p)->chunks[c_];                                                      \
      uint32_t n_ = SR_MIN(chunk_cap(c_), (p)->n_slots - slot_);                                   \
      for (uint32_t o_ = 0; o_ < n_; o_++, slot_++) {                                              \
        sr_user_t *u = (sr_user_t *)(void *)(base_ + (size_t)o_ * (s)->rec_size);                  \
        if (u->flags_ == FREE_MARK) continue;                                                      \
        body;                                                                                      \
      }                                                                                            \
    }                                                                                              \
  } while (0)

/* Returns a fresh slot number (from the free list or the high-water mark),
 * or NO_SLOT when the partition is full. The record is not initialised. */
static uint32_t slot_alloc(sr_state_t *s, part_t *p) {
  if (p->free_head != NO_SLOT) {
    uint32_t slot = p->free_head;
    p->free_head = slot_user(s, p, slot)->n_events;
    return slot;
  }
  if (p->n_slots >= SLOT_MAX) return NO_SLOT;
  uint32_t slot = p->n_slots;
  /* first slot of chunk n_chunks? (sum of capacities of chunks < n_chunks) */
  uint32_t have = p->n_chunks == 0               ? 0
                  : p->n_chunks < N_SMALL_CHUNKS ? (1u << (CHUNK_SMALL_SHIFT + p->n_chunks - 1))
                                                 : (p->n_chunks - N_SMALL_CHUNKS + 1) * CHUNK_BIG;
  if (slot == have) {
    if (p->n_chunks == p->cap_chunks) {
      p->cap_chunks = p->cap_chunks ? p->cap_chunks * 2 : 16;
      p->chunks = sr_realloc(p->chunks, p->cap_chunks * sizeof(*p->chunks));
    }
    size_t bytes = (size_t)chunk_cap(p->n_chunks) * s->rec_size;
    p->chunks[p->n_chunks++] = sr_malloc(bytes);
    p->chunk_bytes += bytes;
  }
  p->n_slots++;
  return slot;
}

/* ---- index ---- */

static void index_insert_nocheck(uint32_t *ix, uint32_t mask, uint64_t key, uint32_t slot) {
  uint32_t i = (uint32_t)key & mask;
  while (ix[i] != IX_EMPTY)
    i = (i + 1) & mask;
  ix[i] = TAG_OF(key) | slot;
}

/* Doubles the index; keys are read from the records in slot order. */
static void index_grow(sr_state_t *s, part_t *p) {
  uint32_t ncap = (p->ix_mask + 1) * 2, nmask = ncap - 1;
  uint32_t *nix = sr_malloc((size_t)ncap * sizeof(*nix));
  memset(nix, 0xFF, (size_t)ncap * sizeof(*nix));
  FOR_EACH_USER(s, p, u, index_insert_nocheck(nix, nmask, u->key, slot_));
  free(p->index);
  p->index = nix;
  p->ix_mask = nmask;
}

/* Position in the index of key, or (when absent) of the empty bucket that
 * ends its probe sequence, with *found set accordingly. */
static inline uint32_t index_find(const sr_state_t *s, const part_t *p, uint64_t key, int *found) {
  const uint32_t mask = p->ix_mask, tag = TAG_OF(key);
  const uint32_t *ix = p->index;
  uint32_t i = (uint32_t)key & mask;
  for (;;) {
    uint32_t e = ix[i];
    if (e == IX_EMPTY) {
      *found = 0;
      return i;
    }
    if ((e & ~SLOT_MASK) == tag && slot_user(s, p, e & SLOT_MASK)->key == key) {
      *found = 1;
      return i;
    }
    i = (i + 1) & mask;
  }
}

/* Backward-shift deletion of bucket i (Knuth 6.4 algorithm R): later members
 * of the cluster whose home is not in (i, j] move back into the hole. */
static void index_delete(const sr_state_t *s, part_t *p, uint32_t i) {
  const uint32_t mask = p->ix_mask;
  uint32_t *ix = p->index;
  uint32_t j = i;
  for (;;) {
    j = (j + 1) & mask;
    uint32_t e = ix[j];
    if (e == IX_EMPTY) break;
    uint32_t home = (uint32_t)slot_user(s, p, e & SLOT_MASK)->key & mask;
    if (((j - home) & mask) >= ((j - i) & mask)) {
      ix[i] = e;
      i = j;
    }
  }
  ix[i] = IX_EMPTY;
}

/* ---- partitions ---- */

static part_t *part_new(int32_t id) {
  part_t *p = sr_calloc(1, sizeof(*p));
  p->id = id;
  p->free_head = NO_SLOT;
  p->ix_mask = 63;
  p->index = sr_malloc(64 * sizeof(*p->index));
  memset(p->index, 0xFF, 64 * sizeof(*p->index));
  return p;
}

static void part_free(const sr_state_t *s, part_t *p) {
  if (!p) return;
  FOR_EACH_USER(s, p, u, sr_seen_clear(&u->seen));
  for (uint32_t c = 0; c < p->n_chunks; c++)
    free(p->chunks[c]);
  free(p->chunks);
  free(p->index);
  free(p);
}

static size_t part_bytes(const part_t *p) {
  return sizeof(*p) + p->chunk_bytes + (size_t)(p->ix_mask + 1) * sizeof(*p->index) +
         p->cap_chunks * sizeof(*p->chunks);
}

/* Bisection over the sorted array: index of partition or -(insert pos) - 1. */
static int part_search(const sr_state_t *s, int32_t id) {
  int lo = 0, hi = s->n_parts;
  while (lo < hi) {
    int mid = (lo + hi) / 2;
    if (s->parts[mid]->id < id)
      lo = mid + 1;
    else
      hi = mid;
  }
  if (lo < s->n_parts && s->parts[lo]->id == id) return lo;
  return -lo - 1;
}

static part_t *part_get(sr_state_t *s, int32_t id) {
  if (s->last < s->n_parts && s->parts[s->last]->id == id) return s->parts[s->last];
  int i = part_search(s, id);
  if (i < 0) return NULL;
  s->last = i;
  return s->parts[i];
}

static const part_t *part_get_c(const sr_state_t *s, int32_t id) {
  int i = part_search(s, id);
  return i < 0 ? NULL : s->parts[i];
}

/* ---- public API ---- */

sr_state_t *sr_state_new(int state_size, const sr_seen_conf_t *seen) {
  sr_seen_conf_t sc;
  if (seen)
    sc = *seen;
  else
    sr_seen_conf_defaults(&sc);
  if (state_size < 0 || state_size > (1 << 20) || sr_seen_conf_check(&sc, NULL, 0) != SR_OK)
    return NULL;
  sr_state_t *s = sr_calloc(1, sizeof(*s));
  s->max_users = SLOT_MAX;
  s->state_size = state_size;
  s->seen = sc;
  s->rec_size = (sizeof(sr_user_t) + (size_t)state_size * sizeof(float) + 7) & ~(size_t)7;
  return s;
}

void sr_state_destroy(sr_state_t *s) {
  if (!s) return;
  for (int i = 0; i < s->n_parts; i++)
    part_free(s, s->parts[i]);
  free(s->parts);
  free(s);
}

void sr_state_partition_add(sr_state_t *s, int32_t partition) {
  int i = part_search(s, partition);
  if (i >= 0) return;
  i = -i - 1;
  if (s->n_parts == s->cap_parts) {
    s->cap_parts = s->cap_parts ? s->cap_parts * 2 : 8;
    s->parts = sr_realloc(s->parts, (size_t)s->cap_parts * sizeof(*s->parts));
  }
  memmove(&s->parts[i + 1], &s->parts[i], (size_t)(s->n_parts - i) * sizeof(*s->parts));
  s->parts[i] = part_new(partition);
  s->n_parts++;
  s->last = i;
}

void sr_state_partition_drop(sr_state_t *s, int32_t partition) {
  int i = part_search(s, partition);
  if (i < 0) return;
  part_free(s, s->parts[i]);
  memmove(&s->parts[i], &s->parts[i + 1], (size_t)(s->n_parts - i - 1) * sizeof(*s->parts));
  s->n_parts--;
  s->last = 0;
}

int sr_state_partition_has(const sr_state_t *s, int32_t partition) {
  return part_search(s, partition) >= 0;
}

/* Find or create by key hash (shared by get and restore). */
static sr_user_t *get_by_key(sr_state_t *s, part_t *p, uint64_t key, int create, int *created) {
  int found;
  uint32_t i = index_find(s, p, key, &found);
  if (created) *created = 0;
  if (found) return slot_user(s, p, p->index[i] & SLOT_MASK);
  if (!create) return NULL;
  /* Full: the caller decides (the pipeline dead-letters the event). */
  if (p->count >= s->max_users) return NULL;
  uint32_t slot = slot_alloc(s, p);
  if (slot == NO_SLOT) return NULL;
  sr_user_t *u = slot_user(s, p, slot);
  memset(u, 0, s->rec_size);
  u->key = key;
  p->index[i] = TAG_OF(key) | slot;
  p->count++;
  /* grow at load 0.7 (the new user is already indexed; u does not move) */
  if ((uint64_t)p->count * 10 > (uint64_t)(p->ix_mask + 1) * 7) index_grow(s, p);
  if (created) *created = 1;
  return u;
}

sr_user_t *sr_state_get(sr_state_t *s, int32_t partition, const char *user_id, size_t len,
                        int create, int *created) {
  if (created) *created = 0;
  part_t *p = part_get(s, partition);
  if (!p) return NULL;
  return get_by_key(s, p, sr_hash64(user_id, len), create, created);
}

int sr_state_forget(sr_state_t *s, int32_t partition, const char *user_id, size_t len) {
  part_t *p = part_get(s, partition);
  if (!p) return 0;
  int found;
  uint32_t i = index_find(s, p, sr_hash64(user_id, len), &found);
  if (!found) return 0;
  uint32_t slot = p->index[i] & SLOT_MASK;
  index_delete(s, p, i); /* reads keys: before the record is wiped */
  sr_user_t *u = slot_user(s, p, slot);
  sr_seen_clear(&u->seen);
  memset(u, 0, s->rec_size); /* privacy: nothing of the user survives */
  u->flags_ = FREE_MARK;
  u->n_events = p->free_head;
  p->free_head = slot;
  p->count--;
  return 1;
}

float *sr_user_vec(const sr_state_t *s, sr_user_t *u) {
  (void)s;
  return (float *)(void *)((unsigned char *)u + sizeof(sr_user_t));
}

int sr_user_seen_apply(sr_state_t *s, sr_user_t *u, sr_event_type_t type, int32_t item,
                       int64_t ts) {
  int dropped = sr_seen_apply(&u->seen, &s->seen, type, item, ts, u->last_ts);
  s->seen_dropped += (uint64_t)dropped;
  return dropped;
}

int sr_user_step(const sr_model_t *m, const sr_seen_conf_t *sc, float *h, int64_t *clock,
                 sr_seen_t *seen, sr_event_type_t type, int32_t item, float value, int64_t ts) {
  if (type == SR_EV_FORGET) {
    if (m) sr_model_state_init(m, h);
    *clock = 0;
    return sr_seen_apply(seen, sc, type, -1, ts, 0); /* clears the set */
  }
  if (item < 0) return 0; /* unknown items update nothing */
  if (m) {
    int64_t dt = *clock > 0 && ts > *clock ? ts - *clock : 0;
    sr_model_step(m, h, item, type, value, dt);
  }
  if (ts > *clock) *clock = ts;
  return sr_seen_apply(seen, sc, type, item, ts, *clock);
}

int sr_user_apply(sr_state_t *s, sr_user_t *u, const sr_model_t *m, sr_event_type_t type,
                  int32_t item, float value, int64_t ts) {
  int dropped =
      sr_user_step(m, &s->seen, sr_user_vec(s, u), &u->last_ts, &u->seen, type, item, value, ts);
  if (type == SR_EV_FORGET)
    u->n_events = 0;
  else if (item >= 0)
    u->n_events++;
  s->seen_dropped += (uint64_t)dropped;
  return dropped;
}

const sr_seen_conf_t *sr_state_seen_conf(const sr_state_t *s) { return &s->seen; }
uint64_t sr_state_seen_dropped(const sr_state_t *s) { return s->seen_dropped; }

/* ---- changelog records ---- */

static inline void put16(unsigned char *p, uint16_t v) {
  p[0] = (unsigned char)v;
  p[1] = (unsigned char)(v >> 8);
}
static inline void put32(unsigned char *p, uint32_t v) {
  for (int i = 0; i < 4; i++)
    p[i] = (unsigned char)(v >> (8 * i));
}
static inline void put64(unsigned char *p, uint64_t v) {
  for (int i = 0; i < 8; i++)
    p[i] = (unsigned char)(v >> (8 * i));
}
static inline uint16_t get16(const unsigned char *p) { return (uint16_t)(p[0] | (p[1] << 8)); }
static inline uint32_t get32(const unsigned char *p) {
  uint32_t v = 0;
  for (int i = 0; i < 4; i++)
    v |= (uint32_t)p[i] << (8 * i);
  return v;
}
static inline uint64_t get64(const unsigned char *p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; i++)
    v |= (uint64_t)p[i] << (8 * i);
  return v;
}

void sr_state_serialize(const sr_state_t *s, const sr_user_t *u, sr_buf_t *out) {
  const size_t hdr_at = out->len;
  sr_buf_reserve(out, SER_HDR + (size_t)s->state_size * 4);
  unsigned char *h = (unsigned char *)out->data + hdr_at;
  put64(h + 0, u->key);
  put64(h + 8, (uint64_t)u->last_ts);
  put32(h + 16, u->n_events);
  put32(h + 20, (uint32_t)s->state_size);
  put16(h + 24, SER_VERSION);
  put16(h + 26, 0);
  put32(h + 28, 0); /* seen_bytes, patched below */
  unsigned char *p = h + SER_HDR;
  const float *vec = (const float *)(const void *)((const unsigned char *)u + sizeof(sr_user_t));
  for (int i = 0; i < s->state_size; i++, p += 4) {
    uint32_t bits;
    memcpy(&bits, &vec[i], 4);
    put32(p, bits);
  }
  out->len = hdr_at + SER_HDR + (size_t)s->state_size * 4;
  const size_t seen_at = out->len;
  sr_seen_serialize(&u->seen, out);
  put32((unsigned char *)out->data + hdr_at + 28, (uint32_t)(out->len - seen_at));
}

sr_err_t sr_state_restore(sr_state_t *s, int32_t partition, const unsigned char *rec, size_t len,
                          int32_t n_items) {
  const size_t vec_bytes = (size_t)s->state_size * 4;
  if (!rec || len < SER_HDR) return SR_ERR_TRUNCATED;
  if (get16(rec + 24) != SER_VERSION) return SR_ERR_VERSION;
  if (get32(rec + 20) != (uint32_t)s->state_size)
    return SR_ERR_MODEL; /* written by a store of another shape */
  const size_t seen_bytes = get32(rec + 28);
  if (len < SER_HDR + vec_bytes || len - SER_HDR - vec_bytes < seen_bytes) return SR_ERR_TRUNCATED;
  if (len - SER_HDR - vec_bytes > seen_bytes) return SR_ERR_FORMAT;
  part_t *p = part_get(s, partition);
  if (!p) return SR_ERR_STATE; /* partition not assigned to this worker */
  /* decode the seen set before touching the store: a bad record changes nothing */
  sr_seen_t seen;
  size_t used = 0;
  uint32_t dropped = 0;
  sr_seen_init(&seen);
  sr_err_t err =
      sr_seen_deserialize(&seen, &s->seen, n_items, (int64_t)get64(rec + 8),
                          rec + SER_HDR + vec_bytes, seen_bytes, &used, &dropped, NULL, 0);
  if (err == SR_OK && used != seen_bytes) err = SR_ERR_FORMAT;
  if (err != SR_OK) {
    sr_seen_clear(&seen);
    return err == SR_ERR_TRUNCATED || err == SR_ERR_VERSION ? err : SR_ERR_FORMAT;
  }
  sr_user_t *u = get_by_key(s, p, get64(rec), 1, NULL);
  if (!u) {
    sr_seen_clear(&seen);
    return SR_ERR_STATE_FULL;
  }
  sr_seen_clear(&u->seen);
  u->seen = seen;
  s->seen_dropped += dropped;
  u->last_ts = (int64_t)get64(rec + 8);
  u->n_events = get32(rec + 16);
  const unsigned char *q = rec + SER_HDR;
  float *vec = sr_user_vec(s, u);
  for (int i = 0; i < s->state_size; i++, q += 4) {
    uint32_t bits = get32(q);
    memcpy(&vec[i], &bits, 4);
  }
  return SR_OK;
}

/* ---- accounting ---- */

uint32_t sr_state_set_max_users(sr_state_t *s, uint32_t max_users) {
  s->max_users = max_users < 1 ? 1 : max_users > SLOT_MAX ? SLOT_MAX : max_users;
  return s->max_users;
}

uint32_t sr_state_max_users(const sr_state_t *s) { return s->max_users; }

int sr_state_state_size(const sr_state_t *s) { return s->state_size; }

size_t sr_state_users(const sr_state_t *s) {
  size_t n = 0;
  for (int i = 0; i < s->n_parts; i++)
    n += s->parts[i]->count;
  return n;
}

size_t sr_state_partition_users(const sr_state_t *s, int32_t partition) {
  const part_t *p = part_get_c(s, partition);
  return p ? p->count : 0;
}

size_t sr_state_bytes(const sr_state_t *s) {
  size_t n = sizeof(*s) + (size_t)s->cap_parts * sizeof(*s->parts);
  for (int i = 0; i < s->n_parts; i++) {
    const part_t *p = s->parts[i];
    n += part_bytes(p);
    FOR_EACH_USER(s, p, u, n += sr_seen_bytes(&u->seen));
  }
  return n;
}
