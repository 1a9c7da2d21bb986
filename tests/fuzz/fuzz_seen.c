/*
 * libFuzzer target for sr_seen_deserialize (the seen set inside a user-state
 * changelog record: bytes from outside).
 *
 * Each input is decoded in both modes, into window 0 (items only) and into
 * a window conf (with times, absent_time ABSENT_TIME), and each of those
 * three ways: A with the default bound and a catalogue of 2^20 items, B
 * with a bound of 5, C with a catalogue of 1000 items.
 * Beyond "no crash, no sanitizer report, no leak":
 *  - a refusal carries a documented code (FORMAT, TRUNCATED, VERSION) and a
 *    reason, leaves the set empty with no heap memory, and *used, *dropped 0;
 *    validation depends neither on the bound nor on the mode (every A and B
 *    agree on the code);
 *  - an accepted set honours the contract: *used <= size, count <= max,
 *    count + dropped = the encoded count, items in [0, n_items) and
 *    distinct, times ascending (window 0: all 0), sorted() strictly
 *    ascending and equal to the entries' items sorted, has() true for each,
 *    the index present exactly from SR_SEEN_INDEX_MIN entries, bytes >= 4
 *    (items only) or 12 (with times) per entry, and without the index
 *    exactly the block sized to the count;
 *  - both modes give the same items in the same order (and *used,
 *    *dropped); a version 2 input decoded into the window has every time
 *    ABSENT_TIME;
 *  - B holds the newest 5 entries of A; C accepts iff every item of A is
 *    below 1000;
 *  - A re-serialises in its mode's version (1 with times, 2 items only; an
 *    empty set as 1 0): exactly data[0, used) when the input's version is
 *    that one (the encoding is canonical), and in every case bytes that
 *    decode again in that mode to the same entries and re-serialise to
 *    themselves;
 *  - the decoded set keeps working: one more consumption and an expiry
 *    against a naive check; an items-only set given times by a window
 *    event (all the event's time), then expired.
 * abort() on any violation so libFuzzer records the input.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "streamrec/seen.h"

#define N_ITEMS (1 << 20)
#define SMALL_MAX 5
#define SMALL_CATALOGUE 1000
#define WINDOW_MS 60000
#define ABSENT_TIME 1700000000000LL /* the clock given to entries without times */

static sr_buf_t enc, enc2;

static void cleanup(void) {
  sr_buf_free(&enc);
  sr_buf_free(&enc2);
}

static void must(int ok, const char *what, const char *detail) {
  if (ok) return;
  fprintf(stderr, "fuzz_seen: %s%s%s\n", what, detail ? ": " : "", detail ? detail : "");
  abort();
}

static int cmp_i32(const void *a, const void *b) {
  int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
  return (x > y) - (x < y);
}

static sr_seen_conf_t make_conf(uint32_t max, int timed) {
  sr_seen_conf_t c;
  sr_seen_conf_defaults(&c);
  c.max = max;
  c.window_ms = timed ? WINDOW_MS : 0;
  return c;
}

/* Log block bytes of capacity cap, as seen.h documents them. */
static size_t block_bytes(uint32_t cap, int timed) {
  return timed ? 8 + (((size_t)cap * 4 + 7) & ~(size_t)7) + (size_t)cap * 8 : 8 + (size_t)cap * 4;
}

typedef struct dec_s {
  sr_err_t err;
  sr_seen_t s;
  size_t used;
  uint32_t dropped;
  int32_t *items; /* entries, oldest first (count) */
  int64_t *ts;
  uint32_t n;
} dec_t;

static void dec_free(dec_t *d) {
  sr_seen_clear(&d->s);
  free(d->items);
  free(d->ts);
}

/* Decodes and checks everything that holds for one decode on its own. */
static void decode(dec_t *d, const uint8_t *data, size_t size, uint32_t max, int32_t n_items,
                   int timed) {
  char errstr[512] = "";
  sr_seen_conf_t c = make_conf(max, timed);
  memset(d, 0, sizeof(*d));
  sr_seen_init(&d->s);
  d->used = 12345;
  d->dropped = 12345;
  d->err = sr_seen_deserialize(&d->s, &c, n_items, ABSENT_TIME, data, size, &d->used, &d->dropped,
                               errstr, sizeof(errstr));
  if (d->err != SR_OK) {
    must(d->err == SR_ERR_FORMAT || d->err == SR_ERR_TRUNCATED || d->err == SR_ERR_VERSION,
         "undocumented error code", sr_err2name(d->err));
    must(errstr[0] != 0, "refusal without a reason", sr_err2name(d->err));
    must(sr_seen_count(&d->s) == 0 && sr_seen_bytes(&d->s) == 0 && !d->s.log && !d->s.index,
         "set not left empty after a refusal", errstr);
    must(d->used == 0 && d->dropped == 0, "*used/*dropped not 0 after a refusal", errstr);
    return;
  }
  const uint32_t n = sr_seen_count(&d->s);
  must(d->used >= 2 && d->used <= size, "*used out of range", NULL);
  must(n <= max, "count above the bound", NULL);
  must(d->dropped == 0 || n == max, "dropped entries while under the bound", NULL);
  must((d->s.index != NULL) == (n >= SR_SEEN_INDEX_MIN), "index presence", NULL);
  must(n == 0 ? sr_seen_bytes(&d->s) == 0 && !d->s.log
              : sr_seen_bytes(&d->s) >= (size_t)n * (timed ? 12 : 4),
       "bytes do not cover the entries", NULL);
  must(n == 0 || d->s.index || sr_seen_bytes(&d->s) == block_bytes(n, timed),
       "bytes are not the block sized to the count", NULL);
  d->n = n;
  d->items = malloc(((size_t)n + 1) * sizeof(int32_t));
  d->ts = malloc(((size_t)n + 1) * sizeof(int64_t));
  int32_t *sorted = malloc(((size_t)n + 1) * sizeof(int32_t));
  int32_t *check = malloc(((size_t)n + 1) * sizeof(int32_t));
  must(d->items && d->ts && sorted && check, "out of memory", NULL);
  must(sr_seen_entries(&d->s, d->items, d->ts) == n, "entries() count", NULL);
  must(sr_seen_sorted(&d->s, sorted) == n, "sorted() count", NULL);
  for (uint32_t i = 0; i < n; i++) {
    must(d->items[i] >= 0 && d->items[i] < n_items, "item outside [0, n_items)", NULL);
    must(i == 0 || d->ts[i - 1] <= d->ts[i], "times not ascending", NULL);
    must(timed || d->ts[i] == 0, "a time in an items-only set", NULL);
    must(i == 0 || sorted[i - 1] < sorted[i], "sorted() not strictly ascending", NULL);
    must(sr_seen_has(&d->s, d->items[i]), "has() misses an entry", NULL);
  }
  memcpy(check, d->items, (size_t)n * sizeof(int32_t));
  qsort(check, n, sizeof(int32_t), cmp_i32);
  must(!memcmp(check, sorted, (size_t)n * sizeof(int32_t)), "sorted() differs from the entries",
       NULL);
  free(sorted);
  free(check);
}

/* Re-serialises A (mode timed): its mode's version, the input's bytes when
 * the versions match, and bytes that decode again to the same entries. */
static void reserialise(const dec_t *a, const uint8_t *data, int timed) {
  sr_buf_reset(&enc);
  sr_seen_serialize(&a->s, &enc);
  must(enc.len >= 2, "re-serialised encoding too short", NULL);
  if (a->n == 0)
    must(enc.len == 2 && enc.data[0] == 1 && enc.data[1] == 0, "empty set not encoded as 1 0",
         NULL);
  else
    must(enc.data[0] == (timed ? 1 : 2), "re-serialised in the wrong version", NULL);
  if (enc.data[0] == data[0])
    must(enc.len == a->used && !memcmp(enc.data, data, a->used),
         "re-serialised bytes differ from the input", NULL);
  dec_t r;
  decode(&r, enc.data, enc.len, SR_SEEN_MAX_DEFAULT, N_ITEMS, timed);
  must(r.err == SR_OK && r.n == a->n && r.used == enc.len, "re-serialised set does not decode",
       sr_err2name(r.err));
  must(!memcmp(r.items, a->items, (size_t)a->n * sizeof(int32_t)) &&
           !memcmp(r.ts, a->ts, (size_t)a->n * sizeof(int64_t)),
       "round trip changed the entries", NULL);
  sr_buf_reset(&enc2);
  sr_seen_serialize(&r.s, &enc2);
  must(enc2.len == enc.len && !memcmp(enc2.data, enc.data, enc.len),
       "re-serialised bytes do not re-serialise to themselves", NULL);
  dec_free(&r);
}

/* The decoded set keeps working: a new newest consumption and an expiry;
 * an items-only set gets times from a window event first. */
static void still_works(dec_t *d, uint32_t max, int timed) {
  sr_seen_conf_t c = make_conf(max, timed);
  const int64_t newest = d->n ? d->ts[d->n - 1] : 0;
  const int64_t t = newest < INT64_MAX ? newest + 1 : newest;
  int32_t fresh = N_ITEMS; /* never in a decoded set */
  int dropped = sr_seen_add(&d->s, &c, fresh, t);
  must(dropped == (d->n == max ? 1 : 0), "add after decode: wrong drop count", NULL);
  must(sr_seen_has(&d->s, fresh), "add after decode: item missing", NULL);
  const uint32_t n = sr_seen_count(&d->s);
  must(n == (d->n == max ? d->n : d->n + 1), "add after decode: wrong count", NULL);
  int32_t *it = malloc(((size_t)n + 1) * sizeof(int32_t));
  int64_t *ts = malloc(((size_t)n + 1) * sizeof(int64_t));
  must(it && ts, "out of memory", NULL);
  must(sr_seen_entries(&d->s, it, ts) == n, "entries() count after add", NULL);
  must(it[n - 1] == fresh, "add after decode: not the newest entry", NULL);
  must(!memcmp(it, d->items + dropped, ((size_t)n - 1) * sizeof(int32_t)),
       "add after decode: the other entries changed", NULL);
  if (timed) {
    /* expire everything up to the median time of the original entries */
    if (d->n && t < INT64_MAX) {
      const int64_t limit = d->ts[d->n / 2];
      c.window_ms = 1;
      if (limit < INT64_MAX) {
        uint32_t expect = 0;
        for (uint32_t i = dropped; i < d->n; i++)
          expect += d->ts[i] <= limit;
        must(sr_seen_expire(&d->s, &c, limit + 1) == (int)expect, "expire after decode", NULL);
        must(sr_seen_count(&d->s) == n - expect, "count after expire", NULL);
        must(sr_seen_has(&d->s, fresh), "expire dropped the newest entry", NULL);
      }
    }
  } else {
    /* expire alone never drops entries without times ... */
    sr_seen_conf_t w = make_conf(max, 1);
    must(sr_seen_expire(&d->s, &w, INT64_MAX) == 0, "expire dropped entries without times", NULL);
    /* ... a window event gives them its time, excluded for one window */
    const int64_t now = ABSENT_TIME + 7;
    must(sr_seen_apply(&d->s, &w, SR_EV_IMPRESSION, -1, now, now) == 0, "conversion dropped", NULL);
    must(sr_seen_count(&d->s) == n, "conversion changed the count", NULL);
    must(sr_seen_entries(&d->s, it, ts) == n, "entries() count after conversion", NULL);
    for (uint32_t i = 0; i < n; i++)
      must(ts[i] == now, "converted entry without the event's time", NULL);
    must(sr_seen_expire(&d->s, &w, now + WINDOW_MS - 1) == 0, "converted entries expired early",
         NULL);
    must(sr_seen_expire(&d->s, &w, now + WINDOW_MS) == (int)n, "converted entries not expired",
         NULL);
    must(sr_seen_count(&d->s) == 0 && sr_seen_bytes(&d->s) == 0, "expired set holds memory", NULL);
  }
  free(it);
  free(ts);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static int init;
  if (!init) {
    sr_buf_init(&enc);
    sr_buf_init(&enc2);
    atexit(cleanup);
    init = 1;
  }
  dec_t a[2], b[2], c[2]; /* [0]: window 0 (items only), [1]: a window (with times) */
  for (int m = 0; m < 2; m++) {
    decode(&a[m], data, size, SR_SEEN_MAX_DEFAULT, N_ITEMS, m);
    decode(&b[m], data, size, SMALL_MAX, N_ITEMS, m);
    decode(&c[m], data, size, SR_SEEN_MAX_DEFAULT, SMALL_CATALOGUE, m);
    must(a[m].err == a[0].err, "the mode changes whether the input is valid",
         sr_err2name(a[m].err));
    must(a[m].err == b[m].err, "the bound changes whether the input is valid",
         sr_err2name(b[m].err));
  }
  if (a[0].err == SR_OK) {
    /* the encoded count fits SR_SEEN_MAX_DEFAULT: inputs are at most 4096 bytes */
    must(a[0].dropped == 0 || size > SR_SEEN_MAX_DEFAULT, "default bound dropped", NULL);
    /* both modes: the same entries in the same order */
    must(a[1].n == a[0].n && a[1].used == a[0].used && a[1].dropped == a[0].dropped,
         "the modes decode different counts", NULL);
    must(!memcmp(a[0].items, a[1].items, (size_t)a[0].n * sizeof(int32_t)),
         "the modes decode different items or orders", NULL);
    for (uint32_t i = 0; i < a[1].n && data[0] == 2; i++)
      must(a[1].ts[i] == ABSENT_TIME, "version 2 into a window: a time other than absent_time",
           NULL);
    for (int m = 0; m < 2; m++) {
      const uint32_t total = a[m].n + a[m].dropped;
      must(b[m].n + b[m].dropped == total, "B: count + dropped != the encoded count", NULL);
      must(b[m].n == (total < SMALL_MAX ? total : SMALL_MAX), "B: not min(count, max)", NULL);
      must(b[m].used == a[m].used, "B: *used differs", NULL);
      for (uint32_t i = 0; i < b[m].n; i++)
        must(b[m].items[i] == a[m].items[a[m].n - b[m].n + i] &&
                 b[m].ts[i] == a[m].ts[a[m].n - b[m].n + i],
             "B: not the newest entries of A", NULL);
      int all_small = 1;
      for (uint32_t i = 0; i < a[m].n; i++)
        all_small &= a[m].items[i] < SMALL_CATALOGUE;
      must((c[m].err == SR_OK) == all_small, "C: catalogue check", sr_err2name(c[m].err));
      must(c[m].err == SR_OK || c[m].err == SR_ERR_FORMAT, "C: a range error that is not FORMAT",
           sr_err2name(c[m].err));

      reserialise(&a[m], data, m);
      still_works(&a[m], SR_SEEN_MAX_DEFAULT, m);
      still_works(&b[m], SMALL_MAX, m);
    }
  } else {
    for (int m = 0; m < 2; m++)
      must(c[m].err == a[m].err || c[m].err == SR_ERR_FORMAT, "C: different refusal",
           sr_err2name(c[m].err));
  }
  for (int m = 0; m < 2; m++) {
    dec_free(&a[m]);
    dec_free(&b[m]);
    dec_free(&c[m]);
  }
  return 0;
}
