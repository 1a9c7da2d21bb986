/*
 * libFuzzer target for sr_seen_deserialize (the seen set inside a user-state
 * changelog record: bytes from outside).
 *
 * Each input is decoded three ways: A with the default bound and a catalogue
 * of 2^20 items, B with a bound of 5, C with a catalogue of 1000 items.
 * Beyond "no crash, no sanitizer report, no leak":
 *  - a refusal carries a documented code (FORMAT, TRUNCATED, VERSION) and a
 *    reason, leaves the set empty with no heap memory, and *used, *dropped 0;
 *    validation does not depend on the bound (A and B agree on the code);
 *  - an accepted set honours the contract: *used <= size, count <= max,
 *    count + dropped = the encoded count, items in [0, n_items) and
 *    distinct, times ascending, sorted() strictly ascending and equal to the
 *    entries' items sorted, has() true for each, the index present exactly
 *    from SR_SEEN_INDEX_MIN entries, bytes >= 12 per entry;
 *  - B holds the newest 5 entries of A; C accepts iff every item of A is
 *    below 1000;
 *  - A re-serialises to exactly data[0, used) (the encoding is canonical),
 *    and that decodes again to the same entries;
 *  - the decoded set keeps working: one more consumption and an expiry
 *    against a naive check.
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

static sr_buf_t enc;

static void cleanup(void) { sr_buf_free(&enc); }

static void must(int ok, const char *what, const char *detail) {
  if (ok) return;
  fprintf(stderr, "fuzz_seen: %s%s%s\n", what, detail ? ": " : "", detail ? detail : "");
  abort();
}

static int cmp_i32(const void *a, const void *b) {
  int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
  return (x > y) - (x < y);
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
static void decode(dec_t *d, const uint8_t *data, size_t size, uint32_t max, int32_t n_items) {
  char errstr[512] = "";
  sr_seen_conf_t c;
  sr_seen_conf_defaults(&c);
  c.max = max;
  memset(d, 0, sizeof(*d));
  sr_seen_init(&d->s);
  d->used = 12345;
  d->dropped = 12345;
  d->err = sr_seen_deserialize(&d->s, &c, n_items, data, size, &d->used, &d->dropped, errstr,
                               sizeof(errstr));
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
  must(n == 0 ? sr_seen_bytes(&d->s) == 0 : sr_seen_bytes(&d->s) >= (size_t)n * 12,
       "bytes do not cover the entries", NULL);
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

/* The decoded set keeps working: a new newest consumption and an expiry. */
static void still_works(dec_t *d, uint32_t max) {
  sr_seen_conf_t c;
  sr_seen_conf_defaults(&c);
  c.max = max;
  const int64_t newest = d->n ? d->ts[d->n - 1] : 0;
  const int64_t t = newest < INT64_MAX ? newest + 1 : newest;
  int32_t fresh = N_ITEMS; /* never in a decoded set */
  int dropped = sr_seen_add(&d->s, &c, fresh, t);
  must(dropped == (d->n == max ? 1 : 0), "add after decode: wrong drop count", NULL);
  must(sr_seen_has(&d->s, fresh), "add after decode: item missing", NULL);
  const uint32_t n = sr_seen_count(&d->s);
  must(n == (d->n == max ? d->n : d->n + 1), "add after decode: wrong count", NULL);
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
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static int init;
  if (!init) {
    sr_buf_init(&enc);
    atexit(cleanup);
    init = 1;
  }
  dec_t a, b, c;
  decode(&a, data, size, SR_SEEN_MAX_DEFAULT, N_ITEMS);
  decode(&b, data, size, SMALL_MAX, N_ITEMS);
  decode(&c, data, size, SR_SEEN_MAX_DEFAULT, SMALL_CATALOGUE);
  must(a.err == b.err, "the bound changes whether the input is valid", sr_err2name(b.err));
  if (a.err == SR_OK) {
    /* the encoded count fits SR_SEEN_MAX_DEFAULT: inputs are at most 4096 bytes */
    must(a.dropped == 0 || size > 2 * SR_SEEN_MAX_DEFAULT, "default bound dropped", NULL);
    const uint32_t total = a.n + a.dropped;
    must(b.n + b.dropped == total, "B: count + dropped != the encoded count", NULL);
    must(b.n == (total < SMALL_MAX ? total : SMALL_MAX), "B: not min(count, max)", NULL);
    must(b.used == a.used, "B: *used differs", NULL);
    for (uint32_t i = 0; i < b.n; i++)
      must(b.items[i] == a.items[a.n - b.n + i] && b.ts[i] == a.ts[a.n - b.n + i],
           "B: not the newest entries of A", NULL);
    int all_small = 1;
    for (uint32_t i = 0; i < a.n; i++)
      all_small &= a.items[i] < SMALL_CATALOGUE;
    must((c.err == SR_OK) == all_small, "C: catalogue check", sr_err2name(c.err));
    must(c.err == SR_OK || c.err == SR_ERR_FORMAT, "C: a range error that is not FORMAT",
         sr_err2name(c.err));

    /* canonical: re-serialising gives the same bytes, which decode the same */
    sr_buf_reset(&enc);
    sr_seen_serialize(&a.s, &enc);
    must(enc.len == a.used && !memcmp(enc.data, data, a.used),
         "re-serialised bytes differ from the input", NULL);
    dec_t r;
    decode(&r, enc.data, enc.len, SR_SEEN_MAX_DEFAULT, N_ITEMS);
    must(r.err == SR_OK && r.n == a.n && r.used == enc.len, "re-serialised set does not decode",
         sr_err2name(r.err));
    must(!memcmp(r.items, a.items, (size_t)a.n * sizeof(int32_t)) &&
             !memcmp(r.ts, a.ts, (size_t)a.n * sizeof(int64_t)),
         "round trip changed the entries", NULL);
    dec_free(&r);

    still_works(&a, SR_SEEN_MAX_DEFAULT);
    still_works(&b, SMALL_MAX);
  } else {
    must(c.err == a.err || c.err == SR_ERR_FORMAT, "C: different refusal", sr_err2name(c.err));
  }
  dec_free(&a);
  dec_free(&b);
  dec_free(&c);
  return 0;
}
