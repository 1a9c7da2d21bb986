/*
 * seen: the items one user has consumed, the seen-item filter of serve and
 * of every evaluation protocol (one rule, one code path: what eval measures
 * is what serve publishes).
 *
 * Rules (sr_seen_conf_t, set by `state.seen.*` options):
 *  - which event types consume their item (default: every type except
 *    IMPRESSION and SKIP; FORGET clears the set);
 *  - a re-consumption window: an item last consumed at time t stays
 *    excluded while clock - t < window; 0 (the default) = never again;
 *  - a bound per user (`state.seen.max`): past it the entry consumed
 *    longest ago is dropped (counted by the caller in a metric).
 * Times are event times (ms), and a user's clock is the newest event time
 * applied to that user, so serve and an offline replay of the same events
 * decide the same way whatever the wall clock.
 *
 * Representation: a log with one entry per distinct item in a ring buffer,
 * in the order the bound (and the window) drop from. Its mode is decided
 * when its block is allocated (first entry after the set was empty):
 *  - with a window (c->window_ms > 0): entries (item, time of its newest
 *    consumption) ordered by that time (ties: arrival order); 12 bytes per
 *    entry of capacity;
 *  - with window 0 (the default): the items only, in arrival order (a
 *    re-consumption moves its item to the tail, the most recent; the bound
 *    drops the item consumed longest ago in that order); 4 bytes per entry
 *    of capacity, and sr_seen_entries gives time 0 for every entry.
 * An items-only set later used with a window (robustness: a process's
 * conf does not change) becomes a with-times one whose entries all get the
 * time of the event being applied (excluded for one more window); a
 * with-times set used with window 0 keeps and maintains its times.
 * From SR_SEEN_INDEX_MIN items up, a CRoaring bitmap of the same items is
 * the membership index and gives the items in ascending order; below it a
 * scan of the log is both faster and smaller than a bitmap. An empty set
 * holds no heap memory (the log is freed whenever the set empties). The
 * log block has an 8-byte header (capacity, mode); the capacity starts at 4
 * and doubles up to max.
 *
 * The struct is public only so that user records can embed it (24 bytes);
 * its fields are private to src/seen.
 *
 * Thread: a set belongs to the thread that owns the user record; the
 * functions keep no global state.
 */
#ifndef STREAMREC_SEEN_H
#define STREAMREC_SEEN_H

#include <stddef.h>
#include <stdint.h>
#include "streamrec/common.h"
#include "streamrec/event.h"

/* Log entries at which the membership index is built (dropped again when
 * the set falls below half of it). */
#define SR_SEEN_INDEX_MIN 64
/* Default and largest bound of items per user (plain numbers: the option
 * table prints the default with SR_XSTR). The default keeps every item of
 * the longest MovieLens history (2,698 ratings) with room to spare. */
#define SR_SEEN_MAX_DEFAULT 10000
#define SR_SEEN_MAX_LIMIT 16777216
/* Default consuming types, as state.seen.types reads them; what
 * sr_seen_conf_defaults sets (it parses this string). */
#define SR_SEEN_TYPES_DEFAULT "VIEW,CLICK,CART,PURCHASE,RATE"

typedef struct sr_seen_conf_s {
  uint32_t types;    /* bit (1u << type) set: events of that type consume their item */
  int64_t window_ms; /* 0: excluded for good; > 0: excluded while clock - t < window_ms */
  uint32_t max;      /* entries per user, 1..SR_SEEN_MAX_LIMIT; oldest dropped first */
} sr_seen_conf_t;

/* types SR_SEEN_TYPES_DEFAULT (every type but IMPRESSION, SKIP and FORGET);
 * window 0; max SR_SEEN_MAX_DEFAULT. */
void sr_seen_conf_defaults(sr_seen_conf_t *c);
/* Parses a comma-separated list of event type names (case-insensitive,
 * spaces allowed around names) into a types mask. FORGET is refused (it
 * clears the set, it never consumes); an empty list is refused. Returns
 * SR_OK or SR_ERR_INVALID_ARG with errstr naming the bad entry. */
sr_err_t sr_seen_parse_types(const char *s, uint32_t *types, char *errstr, size_t errsz);
/* Writes the mask as "VIEW,CLICK,..." in type order (always NUL-terminated). */
void sr_seen_types_str(uint32_t types, char *buf, size_t n);
/* Checks a conf (types non-empty, no FORGET bit, no bit >= SR_EV__CNT,
 * window >= 0, max in 1..SR_SEEN_MAX_LIMIT). Returns SR_OK or SR_ERR_CONF
 * with errstr naming the option ("state.seen.types", "state.seen.window.ms",
 * "state.seen.max"); SR_ERR_INVALID_ARG when c is NULL. */
sr_err_t sr_seen_conf_check(const sr_seen_conf_t *c, char *errstr, size_t errsz);

static inline int sr_seen_consumes(const sr_seen_conf_t *c, sr_event_type_t t) {
  return (unsigned)t < 32u && (c->types >> (unsigned)t & 1u);
}

typedef struct sr_seen_s {
  void *log;     /* private: ring block (capacity, mode, items[, times]); NULL when empty */
  void *index;   /* private: roaring_bitmap_t * or NULL */
  uint32_t head; /* private: ring position of the oldest entry */
  uint32_t n;    /* private: entries (read with sr_seen_count) */
} sr_seen_t;     /* 24 bytes (checked in src/seen); may be moved with a plain copy */

/* A zeroed sr_seen_t is a valid empty set; init just zeroes it. A set owns
 * its heap memory: copying the struct moves the set (then use only one
 * copy); free it with sr_seen_clear. */
void sr_seen_init(sr_seen_t *s);
/* Empties the set and frees its memory; s stays valid (empty). */
void sr_seen_clear(sr_seen_t *s);

/* The one rule serve and eval share, for one event of the user:
 *  - FORGET: clears the set;
 *  - item < 0 (not in the catalogue) or a type that does not consume:
 *    adds nothing;
 *  - a consuming type: with times, item's entry gets time max(its time,
 *    ts) and moves behind every entry with time <= that; items-only, it
 *    moves to the tail (a new entry when absent, at its place by time or at
 *    the tail; the bound then drops the oldest entry first if the set is
 *    full, even when the new entry is older than it);
 *  - then, with a window, drops entries with time <= clock - window (also
 *    for events that added nothing: the window follows the clock). An
 *    items-only set is first given times (all ts) when c has a window.
 * clock is the user's clock after the event (newest event time applied).
 * Returns the number of entries the bound dropped (0 or 1; more only if
 * c->max was lowered since the set filled up). */
int sr_seen_apply(sr_seen_t *s, const sr_seen_conf_t *c, sr_event_type_t type, int32_t item,
                  int64_t ts, int64_t clock);

/* Building blocks of sr_seen_apply (also for restore and tests). add
 * (item < 0: nothing; an items-only set with a window conf is first given
 * times, all ts) returns the number the bound dropped; expire (window 0 or
 * an items-only set: nothing) the number expired. */
int sr_seen_add(sr_seen_t *s, const sr_seen_conf_t *c, int32_t item, int64_t ts);
int sr_seen_expire(sr_seen_t *s, const sr_seen_conf_t *c, int64_t clock);

int sr_seen_has(const sr_seen_t *s, int32_t item);
uint32_t sr_seen_count(const sr_seen_t *s);
/* Writes the items in ascending order to out (capacity sr_seen_count(s));
 * returns how many. Allocation-free. Thread: read-only, so concurrent
 * readers of an unchanging set are fine. */
uint32_t sr_seen_sorted(const sr_seen_t *s, int32_t *out);
/* Writes entries oldest first (item, time) to items/ts (capacity
 * sr_seen_count(s); ts may be NULL); returns how many. A set that keeps no
 * times (window 0, see Representation) writes 0 for every time. */
uint32_t sr_seen_entries(const sr_seen_t *s, int32_t *items, int64_t *ts);
/* Heap bytes held (log block + index), as allocated (the index's blocks
 * are summed from CRoaring's structs; malloc's own overhead not counted).
 * The block is 8 + 4 * capacity bytes items-only, 8 + 12 * capacity (4 *
 * capacity rounded up to 8) with times. */
size_t sr_seen_bytes(const sr_seen_t *s);

/* Serialisation (the user-state changelog): appends a self-delimiting,
 * versioned encoding of the entries, oldest first (version byte, then
 * LEB128 varints: count, and per entry the item, and with times the time
 * delta; the format is written out in src/seen/seen.c). A set with times
 * (and an empty set) writes version 1, an items-only set version 2. At
 * most 6 + 15 * count bytes (6 + 5 * count for version 2). */
void sr_seen_serialize(const sr_seen_t *s, sr_buf_t *out);
/* Reads one encoding, of either version, from p[0..len) (bytes from
 * outside: every field is checked; items must lie in [0, n_items), be
 * distinct, times ascending). Replaces *s's contents (frees what it held)
 * with a set in the mode c gives (times kept iff c->window_ms > 0): the
 * times of a version 1 encoding decoded into window 0 are checked, then
 * dropped (the order is kept); absent_time is the time given to entries of
 * an encoding without times (version 2) decoded into a window: pass the
 * user's clock, so they stay excluded for one window. Keeps only the newest
 * c->max entries (the rest count as dropped in *dropped, which may be NULL)
 * and applies nothing else (no window). *used (may be NULL) gets the bytes
 * read; bytes after the encoding are not looked at. Returns SR_OK, or
 * SR_ERR_FORMAT (also for a count the remaining bytes cannot hold),
 * SR_ERR_TRUNCATED or SR_ERR_VERSION with errstr (errstr may be NULL); on
 * error *s is left empty and *used, *dropped are 0. Allocates at most
 * min(count, c->max) entries, and only after the count passed that check. */
sr_err_t sr_seen_deserialize(sr_seen_t *s, const sr_seen_conf_t *c, int32_t n_items,
                             int64_t absent_time, const unsigned char *p, size_t len, size_t *used,
                             uint32_t *dropped, char *errstr, size_t errsz);

#endif
