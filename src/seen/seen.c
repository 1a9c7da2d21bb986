/*
 * seen: the per-user seen-item set (seen.h has the rules it implements).
 *
 * Why it is built this way:
 *
 *  - The log is a ring with one entry per distinct item, in one of two
 *    modes, decided when the block is allocated (the set's first entry
 *    after it was empty) and recorded in the block header:
 *     - with times (c->window_ms > 0): entries (item, time of its newest
 *       consumption) ordered by time ascending; equal times keep arrival
 *       order, where a re-consumption counts as an arrival (the entry
 *       leaves its place and goes in after every entry with a time <= its
 *       new time). Both the bound (drop the oldest) and the window (drop
 *       while time <= clock - window) therefore pop from the head, exactly
 *       and in O(1) per entry. A new entry is placed by a search from the
 *       tail backwards: events mostly arrive in time order, so that is O(1)
 *       too; an out-of-order event shifts the entries newer than it by one.
 *     - items only (window 0, the default): times are never needed (nothing
 *       expires), so the log holds the items alone in arrival order: a new
 *       item is appended at the tail, a re-consumption moves its entry to
 *       the tail (whichever side of it is shorter shifts by one), and the
 *       bound pops the head (the item consumed longest ago in arrival
 *       order). sr_seen_entries reports time 0 for every entry.
 *    A process's conf does not change, but a set is robust to one that
 *    does: an items-only set used with a window is converted to a
 *    with-times block whose entries all get the time of the event being
 *    applied (they stay excluded for one more window); a with-times set
 *    used with window 0 keeps its times and maintains them as with a
 *    window (only expiry is off).
 *  - The ring is one heap block: an 8-byte header (uint32 capacity, uint32
 *    flags: LOG_F_TIMES), then int32 items[cap], and with times the items
 *    padded to 8 bytes and int64 times[cap]: 4 bytes per entry items-only,
 *    12 with times. The capacity and the mode live in the block so that
 *    sr_seen_t stays at 24 bytes inside every user record. The capacity
 *    starts at 4 and doubles up to the bound; it never shrinks except when
 *    the set empties (clear, FORGET, or a window that expires every entry),
 *    which frees the block: an empty set holds no heap memory (and has no
 *    mode: its next block decides again).
 *  - Membership: below SR_SEEN_INDEX_MIN entries a scan of <= 64 int32 is
 *    faster and smaller than any index. From SR_SEEN_INDEX_MIN up, a CRoaring
 *    bitmap of the same items answers sr_seen_has and gives the items in
 *    ascending order (sr_seen_sorted, which the ranking filter consumes per
 *    recommendation). It is kept in step with every add and drop, and freed
 *    when the set falls below SR_SEEN_INDEX_MIN / 2 (hysteresis, so a set
 *    hovering around the threshold does not rebuild it on every event).
 *    Finding an entry's ring position for a re-consumption is still a scan
 *    (bounded by the bound); with the index, absent items skip it.
 *  - This file is the only user of CRoaring in streamrec (CMake links it
 *    PRIVATE to the core library). CRoaring 0.2.x has no allocation hooks
 *    and reports a failed allocation by returning NULL (create) or by
 *    asserting/printing inside the library (add): creation failures abort
 *    here, like sr_malloc.
 *  - sr_seen_bytes is computed, not estimated: the ring block as allocated
 *    (8 + 4 * cap items-only, 8 + pad8(4 * cap) + 8 * cap with times)
 *    plus the bitmap's heap blocks (the bitmap struct, its container-array
 *    block of allocation_size * (pointer + key + typecode), and per container
 *    its struct and payload: array capacity * 2, run capacity * 4, bitset
 *    8 KiB), walking the structs CRoaring 0.2.66 publishes in its installed
 *    headers. malloc's own overhead is not counted (seen.h).
 *
 * Serialisation (the user-state changelog). Varints are unsigned LEB128 (7
 * bits per byte, least significant group first, high bit set on every byte
 * but the last), at most 10 bytes, and canonical (no over-long encoding: a
 * last byte of 0 is only allowed for the value 0 itself), so one set has
 * exactly one encoding. A with-times set writes version 1, an items-only
 * set version 2; an empty set (no block, so no mode) writes version 1 with
 * count 0.
 *   version 1 (with times):
 *     u8      version = 1
 *     varint  count (entries that follow)
 *     count times, oldest entry first:
 *       varint  item (0 <= item < n_items; distinct)
 *       varint  time: the first entry: zigzag(time) (times are int64 ms and
 *               may be negative; zigzag maps 0,-1,1,-2.. to 0,1,2,3..);
 *               every later entry: time - previous time, >= 0 (ascending
 *               times are built into the format; a delta that would pass
 *               INT64_MAX is refused).
 *   version 2 (items only):
 *     u8      version = 2
 *     varint  count (entries that follow)
 *     count times, oldest entry (in arrival order) first:
 *       varint  item (0 <= item < n_items; distinct)
 * Either version decodes into either mode, the mode being the decoding
 * conf's (c->window_ms > 0: with times): version 1 into window 0 validates
 * the times, then drops them (the order is kept); version 2 into a window
 * gives every entry the caller's absent_time (the user's clock, so they
 * stay excluded for one window).
 * The decoder checks every field, never reads past len, refuses a count
 * that the remaining bytes cannot hold (each entry takes >= 2 bytes in
 * version 1, >= 1 in version 2) before it allocates anything, and allocates
 * at most min(count, max) entries. The stream is self-delimiting (*used);
 * trailing bytes are the caller's.
 *
 * Thread: none of its own; a set belongs to the thread that owns the user
 * record. No global state.
 */
#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <roaring/roaring.h>

#include "streamrec/seen.h"

_Static_assert(sizeof(sr_seen_t) == 24, "sr_seen_t is embedded in every user record");

#define SEEN_VERSION_TIMES 1 /* entries (item, time) */
#define SEEN_VERSION_ITEMS 2 /* items only */
#define LOG_MIN_CAP 4u
#define LOG_HDR 8u     /* uint32 cap, uint32 flags */
#define LOG_F_TIMES 1u /* flags: the block holds times[cap] after the items */
#define VARINT_MAX 10  /* bytes of a 64-bit LEB128 varint */
#define VARINT32_MAX 5 /* bytes of a 32-bit one */
/* bytes an entry takes at least: item varint + time varint (v1), item (v2) */
#define ENTRY_MIN_BYTES(version) ((version) == SEEN_VERSION_TIMES ? 2 : 1)

/* ---- the ring block ---- */

static inline size_t times_off(uint32_t cap) {
  return LOG_HDR + (((size_t)cap * sizeof(int32_t) + 7) & ~(size_t)7);
}
static inline size_t block_bytes(uint32_t cap, int timed) {
  return timed ? times_off(cap) + (size_t)cap * sizeof(int64_t)
               : LOG_HDR + (size_t)cap * sizeof(int32_t);
}
static inline uint32_t log_cap(const sr_seen_t *s) {
  return s->log ? ((const uint32_t *)s->log)[0] : 0;
}
/* 1 when the block holds times (also 0 for no block). */
static inline int log_timed(const sr_seen_t *s) {
  return s->log ? (((const uint32_t *)s->log)[1] & LOG_F_TIMES) != 0 : 0;
}
static inline int32_t *log_items(const sr_seen_t *s) {
  return (int32_t *)((unsigned char *)s->log + LOG_HDR);
}
/* Only for a block with times (log_timed). */
static inline int64_t *log_times(const sr_seen_t *s, uint32_t cap) {
  return (int64_t *)((unsigned char *)s->log + times_off(cap));
}
/* Ring slot of logical position k (0 = oldest); k < cap. */
static inline uint32_t slot(uint32_t head, uint32_t k, uint32_t cap) {
  uint32_t i = head + k;
  return i >= cap ? i - cap : i;
}

static void *block_new(uint32_t cap, int timed) {
  void *b = sr_malloc(block_bytes(cap, timed));
  uint32_t hdr[2] = {cap, timed ? LOG_F_TIMES : 0};
  memcpy(b, hdr, sizeof(hdr));
  return b;
}

/* c->max clamped to its documented range, so a conf that skipped
 * sr_seen_conf_check cannot make the bound 0. */
static inline uint32_t conf_max(const sr_seen_conf_t *c) {
  return c->max < 1 ? 1 : c->max > SR_SEEN_MAX_LIMIT ? SR_SEEN_MAX_LIMIT : c->max;
}

/* Moves the entries into a new block of capacity ncap (>= n) and mode
 * timed, unwrapping the ring (head 0). Entries of an items-only block
 * moved into a with-times one all get time t. */
static void log_realloc(sr_seen_t *s, uint32_t ncap, int timed, int64_t t) {
  const uint32_t cap = log_cap(s);
  const int was_timed = log_timed(s);
  void *nb = block_new(ncap, timed);
  int32_t *ni = (int32_t *)((unsigned char *)nb + LOG_HDR);
  int64_t *nt = timed ? (int64_t *)((unsigned char *)nb + times_off(ncap)) : NULL;
  if (s->n) {
    const int32_t *oi = log_items(s);
    const uint32_t first = SR_MIN(s->n, cap - s->head); /* entries before the wrap */
    memcpy(ni, oi + s->head, first * sizeof(int32_t));
    memcpy(ni + first, oi, (s->n - first) * sizeof(int32_t));
    if (timed && was_timed) {
      const int64_t *ot = log_times(s, cap);
      memcpy(nt, ot + s->head, first * sizeof(int64_t));
      memcpy(nt + first, ot, (s->n - first) * sizeof(int64_t));
    } else if (timed) {
      for (uint32_t i = 0; i < s->n; i++)
        nt[i] = t;
    }
  }
  sr_free(s->log);
  s->log = nb;
  s->head = 0;
}

/* Makes room for one more entry: doubles the capacity (from LOG_MIN_CAP),
 * capped at max but at least n + 1. A new block (the set was empty) takes
 * the mode `timed`; an existing one keeps its mode. */
static void log_grow(sr_seen_t *s, uint32_t max, int timed) {
  const uint32_t cap = log_cap(s);
  uint32_t ncap = cap ? (cap > max / 2 ? max : cap * 2) : LOG_MIN_CAP;
  if (ncap > max) ncap = max;
  if (ncap < s->n + 1) ncap = s->n + 1;
  log_realloc(s, ncap, s->log ? log_timed(s) : timed, 0);
}

/* An items-only set used with a window: every entry gets time t (the
 * event being applied), conservatively excluded for one more window. */
static void log_want_times(sr_seen_t *s, const sr_seen_conf_t *c, int64_t t) {
  if (c->window_ms > 0 && s->log && !log_timed(s)) log_realloc(s, log_cap(s), 1, t);
}

/* ---- the index ---- */

static roaring_bitmap_t *bitmap_new(void) {
  roaring_bitmap_t *r = roaring_bitmap_create();
  if (!r) {
    fprintf(stderr, "seen: out of memory creating a roaring bitmap\n");
    abort();
  }
  return r;
}

static void index_build(sr_seen_t *s) {
  const uint32_t cap = log_cap(s);
  const int32_t *it = log_items(s);
  const uint32_t first = SR_MIN(s->n, cap - s->head);
  roaring_bitmap_t *r = bitmap_new();
  /* items are >= 0 (add refuses negatives, deserialize checks the range) */
  roaring_bitmap_add_many(r, first, (const uint32_t *)(it + s->head));
  roaring_bitmap_add_many(r, s->n - first, (const uint32_t *)it);
  s->index = r;
}

/* Restores the index invariant after n changed: present from
 * SR_SEEN_INDEX_MIN entries, gone below half of it, and no heap at all for
 * an empty set. */
static void index_sync(sr_seen_t *s) {
  if (!s->index && s->n >= SR_SEEN_INDEX_MIN) {
    index_build(s);
  } else if (s->index && s->n < SR_SEEN_INDEX_MIN / 2) {
    roaring_bitmap_free((roaring_bitmap_t *)s->index);
    s->index = NULL;
  }
  if (s->n == 0 && s->log) {
    sr_free(s->log);
    s->log = NULL;
    s->head = 0;
  }
}

/* Heap bytes of a CRoaring 0.2.66 bitmap (see the file comment). */
static size_t index_bytes(const roaring_bitmap_t *r) {
  const roaring_array_t *ra = &r->high_low_container;
  size_t b = sizeof(*r) +
             (size_t)ra->allocation_size * (sizeof(void *) + sizeof(uint16_t) + sizeof(uint8_t));
  for (int32_t i = 0; i < ra->size; i++) {
    const void *c = ra->containers[i];
    switch (ra->typecodes[i]) {
    case ARRAY_CONTAINER_TYPE_CODE:
      b += sizeof(array_container_t) +
           (size_t)((const array_container_t *)c)->capacity * sizeof(uint16_t);
      break;
    case RUN_CONTAINER_TYPE_CODE:
      b += sizeof(run_container_t) +
           (size_t)((const run_container_t *)c)->capacity * sizeof(rle16_t);
      break;
    case BITSET_CONTAINER_TYPE_CODE:
      b += sizeof(bitset_container_t) + BITSET_CONTAINER_SIZE_IN_WORDS * sizeof(uint64_t);
      break;
    default: /* shared containers exist only with copy-on-write, never enabled here */
      b += sizeof(shared_container_t);
      break;
    }
  }
  return b;
}

/* ---- log operations ---- */

/* Logical position of item, or -1. A scan of the ring's two runs. */
static int64_t log_find(const sr_seen_t *s, int32_t item) {
  const uint32_t cap = log_cap(s);
  const int32_t *it = log_items(s);
  const uint32_t first = SR_MIN(s->n, cap - s->head);
  for (uint32_t i = 0; i < first; i++)
    if (it[s->head + i] == item) return i;
  for (uint32_t i = 0; i < s->n - first; i++)
    if (it[i] == item) return (int64_t)first + i;
  return -1;
}

/* Removes the oldest entry (n > 0). The caller restores the index
 * invariant (index_sync). */
static void log_drop_head(sr_seen_t *s) {
  const uint32_t cap = log_cap(s);
  if (s->index)
    roaring_bitmap_remove((roaring_bitmap_t *)s->index, (uint32_t)log_items(s)[s->head]);
  s->head = slot(s->head, 1, cap);
  s->n--;
  if (s->n == 0) s->head = 0;
}

/* Inserts a new entry (n < cap): with times after every entry with time
 * <= t, items-only at the tail. */
static void log_insert(sr_seen_t *s, int32_t item, int64_t t) {
  const uint32_t cap = log_cap(s);
  int32_t *it = log_items(s);
  if (!log_timed(s)) {
    it[slot(s->head, s->n, cap)] = item;
    s->n++;
    return;
  }
  int64_t *tm = log_times(s, cap);
  uint32_t k = s->n; /* logical position of the new entry */
  while (k > 0 && tm[slot(s->head, k - 1, cap)] > t) {
    const uint32_t from = slot(s->head, k - 1, cap), to = slot(s->head, k, cap);
    it[to] = it[from];
    tm[to] = tm[from];
    k--;
  }
  const uint32_t at = slot(s->head, k, cap);
  it[at] = item;
  tm[at] = t;
  s->n++;
}

/* Items-only: moves the entry at logical position q to the tail (it
 * becomes the most recent). Shifts the shorter side by one: the entries
 * after q back, or those before q forward with the head advancing (the
 * entry then lands in the slot after the old tail, which is q's old slot
 * or a free one). */
static void log_move_tail(sr_seen_t *s, uint32_t q) {
  const uint32_t cap = log_cap(s);
  int32_t *it = log_items(s);
  const int32_t item = it[slot(s->head, q, cap)];
  if (s->n - 1 - q <= q) {
    for (uint32_t k = q; k + 1 < s->n; k++)
      it[slot(s->head, k, cap)] = it[slot(s->head, k + 1, cap)];
    it[slot(s->head, s->n - 1, cap)] = item;
  } else {
    for (uint32_t k = q; k > 0; k--)
      it[slot(s->head, k, cap)] = it[slot(s->head, k - 1, cap)];
    const uint32_t tail = slot(s->head, s->n < cap ? s->n : 0, cap);
    s->head = slot(s->head, 1, cap);
    it[tail] = item;
  }
}

/* With times: moves the entry at logical position q to time t (>= its
 * time): it goes in after every entry with time <= t, the entries it
 * passes shift back. */
static void log_move(sr_seen_t *s, uint32_t q, int64_t t) {
  const uint32_t cap = log_cap(s);
  int32_t *it = log_items(s);
  int64_t *tm = log_times(s, cap);
  const int32_t item = it[slot(s->head, q, cap)];
  uint32_t k = q;
  while (k + 1 < s->n && tm[slot(s->head, k + 1, cap)] <= t) {
    const uint32_t from = slot(s->head, k + 1, cap), to = slot(s->head, k, cap);
    it[to] = it[from];
    tm[to] = tm[from];
    k++;
  }
  const uint32_t at = slot(s->head, k, cap);
  it[at] = item;
  tm[at] = t;
}

/* ---- conf ---- */

void sr_seen_conf_defaults(sr_seen_conf_t *c) {
  c->types = ((1u << SR_EV__CNT) - 1u) &
             ~((1u << SR_EV_IMPRESSION) | (1u << SR_EV_SKIP) | (1u << SR_EV_FORGET));
  c->window_ms = 0;
  c->max = SR_SEEN_MAX_DEFAULT;
}

sr_err_t sr_seen_parse_types(const char *s, uint32_t *types, char *errstr, size_t errsz) {
  if (!s) return sr_seterr(errstr, errsz, SR_ERR_INVALID_ARG, "no event type list");
  uint32_t mask = 0;
  const char *q = s;
  for (;;) {
    const char *end = strchr(q, ',');
    if (!end) end = q + strlen(q);
    const char *a = q, *b = end;
    while (a < b && isspace((unsigned char)*a))
      a++;
    while (b > a && isspace((unsigned char)b[-1]))
      b--;
    const int len = (int)SR_MIN((size_t)(b - a), 40);
    if (a == b) {
      if (q == s && !*end) /* the whole list is empty or blank */
        return sr_seterr(errstr, errsz, SR_ERR_INVALID_ARG,
                         "empty event type list (at least one type must consume its item)");
      return sr_seterr(errstr, errsz, SR_ERR_INVALID_ARG,
                       "empty entry at offset %zu of the event type list", (size_t)(q - s));
    }
    const int t = sr_event_type_parse(a, (size_t)(b - a));
    if (t < 0)
      return sr_seterr(errstr, errsz, SR_ERR_INVALID_ARG,
                       "unknown event type '%.*s' (VIEW, CLICK, CART, PURCHASE, RATE, "
                       "IMPRESSION or SKIP)",
                       len, a);
    if (t == SR_EV_FORGET)
      return sr_seterr(errstr, errsz, SR_ERR_INVALID_ARG,
                       "'%.*s' cannot consume an item (FORGET clears the seen set)", len, a);
    mask |= 1u << (unsigned)t;
    if (!*end) break;
    q = end + 1;
  }
  *types = mask;
  return SR_OK;
}

void sr_seen_types_str(uint32_t types, char *buf, size_t n) {
  if (!buf || !n) return;
  buf[0] = '\0';
  size_t len = 0;
  for (int t = 0; t < SR_EV__CNT; t++) {
    if (!(types >> t & 1u)) continue;
    const int w = snprintf(buf + len, n - len, "%s%s", len ? "," : "",
                           sr_event_type_name((sr_event_type_t)t));
    if (w < 0 || (size_t)w >= n - len) { /* does not fit: whole names only */
      buf[len] = '\0';
      return;
    }
    len += (size_t)w;
  }
}

sr_err_t sr_seen_conf_check(const sr_seen_conf_t *c, char *errstr, size_t errsz) {
  if (!c) return sr_seterr(errstr, errsz, SR_ERR_INVALID_ARG, "no seen configuration");
  if (c->types == 0)
    return sr_seterr(errstr, errsz, SR_ERR_CONF,
                     "state.seen.types: empty (at least one event type must consume its item)");
  if (c->types >> SR_EV__CNT)
    return sr_seterr(errstr, errsz, SR_ERR_CONF,
                     "state.seen.types: bits 0x%" PRIx32 " are not event types",
                     c->types & ~((1u << SR_EV__CNT) - 1u));
  if (c->types >> SR_EV_FORGET & 1u)
    return sr_seterr(errstr, errsz, SR_ERR_CONF,
                     "state.seen.types: FORGET cannot consume an item (it clears the seen set)");
  if (c->window_ms < 0)
    return sr_seterr(errstr, errsz, SR_ERR_CONF,
                     "state.seen.window.ms: %" PRId64 " is negative (0 = excluded for good)",
                     c->window_ms);
  if (c->max < 1 || c->max > SR_SEEN_MAX_LIMIT)
    return sr_seterr(errstr, errsz, SR_ERR_CONF,
                     "state.seen.max: %" PRIu32 " is out of range 1..%u", c->max,
                     SR_SEEN_MAX_LIMIT);
  return SR_OK;
}

/* ---- the set ---- */

void sr_seen_init(sr_seen_t *s) { memset(s, 0, sizeof(*s)); }

void sr_seen_clear(sr_seen_t *s) {
  if (s->index) roaring_bitmap_free((roaring_bitmap_t *)s->index);
  sr_free(s->log);
  memset(s, 0, sizeof(*s));
}

int sr_seen_add(sr_seen_t *s, const sr_seen_conf_t *c, int32_t item, int64_t ts) {
  if (item < 0) return 0;
  log_want_times(s, c, ts);
  if (s->n &&
      (!s->index || roaring_bitmap_contains((const roaring_bitmap_t *)s->index, (uint32_t)item))) {
    const int64_t q = log_find(s, item);
    if (q >= 0) {
      if (log_timed(s)) {
        const int64_t old = log_times(s, log_cap(s))[slot(s->head, (uint32_t)q, log_cap(s))];
        log_move(s, (uint32_t)q, SR_MAX(old, ts));
      } else {
        log_move_tail(s, (uint32_t)q);
      }
      return 0;
    }
  }
  const uint32_t max = conf_max(c);
  int dropped = 0;
  /* More than one only when c->max was lowered since the set was filled. */
  while (s->n >= max) {
    log_drop_head(s);
    dropped++;
  }
  if (s->n == log_cap(s)) log_grow(s, max, c->window_ms > 0);
  log_insert(s, item, ts);
  if (s->index) roaring_bitmap_add((roaring_bitmap_t *)s->index, (uint32_t)item);
  index_sync(s);
  return dropped;
}

int sr_seen_expire(sr_seen_t *s, const sr_seen_conf_t *c, int64_t clock) {
  const int64_t w = c->window_ms;
  /* window 0, or entries without times (an items-only set): nothing expires */
  if (w <= 0 || !s->n || !log_timed(s)) return 0;
  if (clock < INT64_MIN + w) return 0; /* clock - w < INT64_MIN: no time is that old */
  const int64_t limit = clock - w;
  const int64_t *tm = log_times(s, log_cap(s));
  int n = 0;
  while (s->n && tm[s->head] <= limit) {
    log_drop_head(s);
    n++;
  }
  index_sync(s);
  return n;
}

int sr_seen_apply(sr_seen_t *s, const sr_seen_conf_t *c, sr_event_type_t type, int32_t item,
                  int64_t ts, int64_t clock) {
  if (type == SR_EV_FORGET) {
    sr_seen_clear(s);
    return 0;
  }
  int dropped = 0;
  log_want_times(s, c, ts); /* also for an event that adds nothing: the window applies */
  if (item >= 0 && sr_seen_consumes(c, type)) dropped = sr_seen_add(s, c, item, ts);
  if (c->window_ms > 0) sr_seen_expire(s, c, clock);
  return dropped;
}

int sr_seen_has(const sr_seen_t *s, int32_t item) {
  if (item < 0 || !s->n) return 0;
  if (s->index) return roaring_bitmap_contains((const roaring_bitmap_t *)s->index, (uint32_t)item);
  return log_find(s, item) >= 0;
}

uint32_t sr_seen_count(const sr_seen_t *s) { return s->n; }

uint32_t sr_seen_sorted(const sr_seen_t *s, int32_t *out) {
  if (!s->n) return 0;
  if (s->index) {
    /* every item is in [0, INT32_MAX], so the uint32 view is the same order */
    roaring_bitmap_to_uint32_array((const roaring_bitmap_t *)s->index, (uint32_t *)out);
    return s->n;
  }
  /* n < SR_SEEN_INDEX_MIN: insertion sort of a copy */
  const uint32_t n = sr_seen_entries(s, out, NULL);
  for (uint32_t i = 1; i < n; i++) {
    const int32_t v = out[i];
    uint32_t j = i;
    for (; j > 0 && out[j - 1] > v; j--)
      out[j] = out[j - 1];
    out[j] = v;
  }
  return n;
}

uint32_t sr_seen_entries(const sr_seen_t *s, int32_t *items, int64_t *ts) {
  if (!s->n) return 0;
  const uint32_t cap = log_cap(s);
  const uint32_t first = SR_MIN(s->n, cap - s->head);
  const int32_t *it = log_items(s);
  memcpy(items, it + s->head, first * sizeof(int32_t));
  memcpy(items + first, it, (s->n - first) * sizeof(int32_t));
  if (ts && log_timed(s)) {
    const int64_t *tm = log_times(s, cap);
    memcpy(ts, tm + s->head, first * sizeof(int64_t));
    memcpy(ts + first, tm, (s->n - first) * sizeof(int64_t));
  } else if (ts) {
    memset(ts, 0, (size_t)s->n * sizeof(int64_t));
  }
  return s->n;
}

size_t sr_seen_bytes(const sr_seen_t *s) {
  size_t b = s->log ? block_bytes(log_cap(s), log_timed(s)) : 0;
  if (s->index) b += index_bytes((const roaring_bitmap_t *)s->index);
  return b;
}

/* ---- serialisation ---- */

static inline size_t put_varint(unsigned char *p, uint64_t v) {
  size_t n = 0;
  while (v >= 0x80) {
    p[n++] = (unsigned char)(v | 0x80);
    v >>= 7;
  }
  p[n++] = (unsigned char)v;
  return n;
}

static inline uint64_t zigzag(int64_t v) { return ((uint64_t)v << 1) ^ (0 - ((uint64_t)v >> 63)); }
static inline int64_t unzigzag(uint64_t u) { return (int64_t)(u >> 1) ^ -(int64_t)(u & 1); }

void sr_seen_serialize(const sr_seen_t *s, sr_buf_t *out) {
  sr_buf_reserve(out, 1 + VARINT32_MAX + (size_t)s->n * (VARINT32_MAX + VARINT_MAX));
  unsigned char *p = out->data + out->len;
  size_t k = 0;
  const int timed = !s->log || log_timed(s); /* an empty set: version 1, count 0 */
  p[k++] = timed ? SEEN_VERSION_TIMES : SEEN_VERSION_ITEMS;
  k += put_varint(p + k, s->n);
  if (s->n && !timed) {
    const uint32_t cap = log_cap(s);
    const int32_t *it = log_items(s);
    for (uint32_t j = 0; j < s->n; j++)
      k += put_varint(p + k, (uint32_t)it[slot(s->head, j, cap)]);
  } else if (s->n) {
    const uint32_t cap = log_cap(s);
    const int32_t *it = log_items(s);
    const int64_t *tm = log_times(s, cap);
    int64_t prev = 0;
    for (uint32_t j = 0; j < s->n; j++) {
      const uint32_t i = slot(s->head, j, cap);
      k += put_varint(p + k, (uint32_t)it[i]);
      k += put_varint(p + k, j ? (uint64_t)tm[i] - (uint64_t)prev : zigzag(tm[i]));
      prev = tm[i];
    }
  }
  out->len += k;
}

/* Reads one canonical varint at p[*pos..len). */
static sr_err_t get_varint(const unsigned char *p, size_t len, size_t *pos, uint64_t *out,
                           const char *what, char *errstr, size_t errsz) {
  const size_t start = *pos;
  uint64_t v = 0;
  for (int i = 0;; i++) {
    if (*pos >= len)
      return sr_seterr(errstr, errsz, SR_ERR_TRUNCATED,
                       "seen: input ends inside the %s varint at byte %zu", what, start);
    const unsigned char b = p[(*pos)++];
    if (i == VARINT_MAX - 1 && b > 1)
      return sr_seterr(errstr, errsz, SR_ERR_FORMAT,
                       "seen: the %s varint at byte %zu overflows 64 bits", what, start);
    v |= (uint64_t)(b & 0x7f) << (7 * i);
    if (!(b & 0x80)) {
      if (b == 0 && i > 0)
        return sr_seterr(errstr, errsz, SR_ERR_FORMAT,
                         "seen: the %s varint at byte %zu is over-long (not canonical)", what,
                         start);
      break;
    }
  }
  *out = v;
  return SR_OK;
}

sr_err_t sr_seen_deserialize(sr_seen_t *s, const sr_seen_conf_t *c, int32_t n_items,
                             int64_t absent_time, const unsigned char *p, size_t len, size_t *used,
                             uint32_t *dropped, char *errstr, size_t errsz) {
  sr_err_t err = SR_OK;
  roaring_bitmap_t *dup = NULL;     /* distinctness check for count >= INDEX_MIN */
  int32_t small[SR_SEEN_INDEX_MIN]; /* ... and the items themselves below it */
  uint64_t count = 0;
  uint32_t keep = 0, skip = 0;
  size_t pos = 0;

  sr_seen_clear(s);
  if (used) *used = 0;
  if (dropped) *dropped = 0;
  if (!p || len < 1) {
    err = sr_seterr(errstr, errsz, SR_ERR_TRUNCATED, "seen: empty input (no version byte)");
    goto out;
  }
  const unsigned version = p[0];
  if (version != SEEN_VERSION_TIMES && version != SEEN_VERSION_ITEMS) {
    err = sr_seterr(errstr, errsz, SR_ERR_VERSION, "seen: format version %u, expected %u or %u",
                    version, SEEN_VERSION_TIMES, SEEN_VERSION_ITEMS);
    goto out;
  }
  const int enc_times = version == SEEN_VERSION_TIMES;
  const int timed = c->window_ms > 0; /* the mode of the decoded set */
  pos = 1;
  if ((err = get_varint(p, len, &pos, &count, "count", errstr, errsz)) != SR_OK) goto out;
  if (count > (len - pos) / ENTRY_MIN_BYTES(version) || count > UINT32_MAX) {
    err = sr_seterr(errstr, errsz, SR_ERR_FORMAT,
                    "seen: count %" PRIu64 " needs at least %d bytes per entry, %zu remain", count,
                    ENTRY_MIN_BYTES(version), len - pos);
    goto out;
  }
  /* count <= len - pos from here: what is allocated is bounded by the input */
  keep = (uint32_t)SR_MIN(count, (uint64_t)conf_max(c));
  skip = (uint32_t)count - keep;
  if (keep) s->log = block_new(keep, timed);
  if (count >= SR_SEEN_INDEX_MIN) dup = bitmap_new();

  int32_t *items = keep ? log_items(s) : NULL;
  int64_t *times = keep && timed ? log_times(s, keep) : NULL;
  int64_t prev = 0;
  for (uint32_t i = 0; i < (uint32_t)count; i++) {
    const size_t at = pos;
    uint64_t item, tv;
    if ((err = get_varint(p, len, &pos, &item, "item", errstr, errsz)) != SR_OK) goto out;
    if (n_items <= 0 || item >= (uint64_t)n_items) {
      err = sr_seterr(errstr, errsz, SR_ERR_FORMAT,
                      "seen: entry %" PRIu32 " at byte %zu: item %" PRIu64 " outside [0, %" PRId32
                      ")",
                      i, at, item, n_items < 0 ? 0 : n_items);
      goto out;
    }
    int fresh = 1;
    if (dup) {
      fresh = roaring_bitmap_add_checked(dup, (uint32_t)item);
    } else {
      for (uint32_t j = 0; j < i && fresh; j++)
        fresh = small[j] != (int32_t)item;
      small[i] = (int32_t)item;
    }
    if (!fresh) {
      err = sr_seterr(errstr, errsz, SR_ERR_FORMAT,
                      "seen: entry %" PRIu32 " at byte %zu: item %" PRIu64 " appears twice", i, at,
                      item);
      goto out;
    }
    int64_t t = absent_time;
    if (!enc_times) {
      /* version 2: no time */
    } else if ((err = get_varint(p, len, &pos, &tv, "time", errstr, errsz)) != SR_OK) {
      goto out;
    } else if (i == 0) {
      t = unzigzag(tv);
    } else {
      if (tv > (uint64_t)INT64_MAX - (uint64_t)prev) {
        err = sr_seterr(errstr, errsz, SR_ERR_FORMAT,
                        "seen: entry %" PRIu32 " at byte %zu: time delta %" PRIu64 " after %" PRId64
                        " passes the int64 range",
                        i, at, tv, prev);
        goto out;
      }
      t = (int64_t)((uint64_t)prev + tv);
    }
    prev = t;
    if (i >= skip) {
      items[i - skip] = (int32_t)item;
      if (times) times[i - skip] = t;
      s->n++;
    }
  }
  if (dup && skip == 0) { /* the distinctness bitmap is exactly the index */
    s->index = dup;
    dup = NULL;
  }
  index_sync(s);
  if (used) *used = pos;
  if (dropped) *dropped = skip;

out:
  if (dup) roaring_bitmap_free(dup);
  if (err != SR_OK) sr_seen_clear(s);
  return err;
}
