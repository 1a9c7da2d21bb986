/*
 * 0021-seen: the per-user seen set (src/seen), in both of its modes: with
 * times (a window conf) and items only (window 0). The rules one by one
 * (which types consume, re-consumption, the bound with in- and
 * out-of-order times, arrival order and move-to-tail without times, the
 * window at its exact boundary, FORGET, unknown items), the conversion of
 * an items-only set used with a window, the index threshold and its
 * hysteresis, long random event sequences checked step by step against a
 * naive reference implementation of the same rules (both modes and mixed
 * confs), memory accounting (12 and 4 bytes per entry), the changelog
 * encoding (golden byte strings of versions 1 and 2, round trips with and
 * without the index, decoding across modes, a smaller bound on restore,
 * every malformed case and every truncation), and the option parsers.
 *
 * A few checks look at the private index field (white box): they pin down
 * when the index exists, which the public API cannot observe.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "streamrec/seen.h"
#include "test.h"

/* A window no test reaches: a set with times that (practically) never
 * expires, for the tests of time order. */
#define TIMED INT64_MAX

static sr_seen_conf_t conf(int64_t window_ms, uint32_t max) {
  sr_seen_conf_t c;
  sr_seen_conf_defaults(&c);
  c.window_ms = window_ms;
  c.max = max;
  return c;
}

/* 1 when the entries oldest first are exactly items[]/ts[] */
static int entries_are(const sr_seen_t *s, const int32_t *items, const int64_t *ts, uint32_t n) {
  int32_t gi[64];
  int64_t gt[64];
  if (sr_seen_count(s) != n || n > 64) return 0;
  if (sr_seen_entries(s, gi, gt) != n) return 0;
  for (uint32_t i = 0; i < n; i++)
    if (gi[i] != items[i] || gt[i] != ts[i]) return 0;
  return 1;
}

/* 1 when the entries oldest first are exactly items[] and carry no times */
static int items_are(const sr_seen_t *s, const int32_t *items, uint32_t n) {
  int64_t zero[64] = {0};
  return entries_are(s, items, zero, n);
}

/* Log block bytes of capacity cap (what sr_seen_bytes gives without index). */
static size_t block_timed(uint32_t cap) {
  return 8 + (((size_t)cap * 4 + 7) & ~(size_t)7) + 8 * (size_t)cap;
}
static size_t block_items(uint32_t cap) { return 8 + 4 * (size_t)cap; }

/* ---- naive reference: a plain array, same rules ----
 * With times: ordered by time (ties: arrival). Items only (the mode a set
 * takes when its first entry comes with window 0): arrival order, a
 * re-consumption moves to the tail, times all 0. An items-only reference
 * used with a window gets times (all ts), as the set does. */
typedef struct ref_s {
  int32_t *item;
  int64_t *t;
  uint32_t n;
  int timed;       /* mode of the current "block" (meaningful while n > 0) */
  int conversions; /* items-only -> with times */
} ref_t;

static void ref_remove(ref_t *r, uint32_t q) {
  memmove(r->item + q, r->item + q + 1, (r->n - q - 1) * sizeof(int32_t));
  memmove(r->t + q, r->t + q + 1, (r->n - q - 1) * sizeof(int64_t));
  r->n--;
}
static void ref_insert(ref_t *r, int32_t item, int64_t t) { /* after every time <= t */
  uint32_t k = r->n;
  while (k > 0 && r->t[k - 1] > t)
    k--;
  memmove(r->item + k + 1, r->item + k, (r->n - k) * sizeof(int32_t));
  memmove(r->t + k + 1, r->t + k, (r->n - k) * sizeof(int64_t));
  r->item[k] = item;
  r->t[k] = t;
  r->n++;
}
static void ref_append(ref_t *r, int32_t item) {
  r->item[r->n] = item;
  r->t[r->n] = 0;
  r->n++;
}
static int ref_apply(ref_t *r, const sr_seen_conf_t *c, sr_event_type_t type, int32_t item,
                     int64_t ts, int64_t clock) {
  int dropped = 0;
  if (type == SR_EV_FORGET) {
    r->n = 0;
    return 0;
  }
  if (c->window_ms > 0 && r->n && !r->timed) { /* items-only used with a window */
    for (uint32_t i = 0; i < r->n; i++)
      r->t[i] = ts;
    r->timed = 1;
    r->conversions++;
  }
  if (item >= 0 && sr_seen_consumes(c, type)) {
    if (r->n == 0) r->timed = c->window_ms > 0; /* a new block decides the mode */
    uint32_t q = 0;
    while (q < r->n && r->item[q] != item)
      q++;
    if (q < r->n) {
      int64_t t = r->t[q] > ts ? r->t[q] : ts;
      ref_remove(r, q);
      if (r->timed)
        ref_insert(r, item, t);
      else
        ref_append(r, item);
    } else {
      while (r->n >= c->max) {
        ref_remove(r, 0);
        dropped++;
      }
      if (r->timed)
        ref_insert(r, item, ts);
      else
        ref_append(r, item);
    }
  }
  if (c->window_ms > 0 && r->timed)
    while (r->n && r->t[0] <= clock - c->window_ms)
      ref_remove(r, 0);
  return dropped;
}

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static uint64_t rnd(void) { /* splitmix64 */
  uint64_t z = (rng_state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

static int cmp_i32(const void *a, const void *b) {
  int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
  return (x > y) - (x < y);
}

/* ---- conf ---- */

TEST(defaults) {
  sr_seen_conf_t c;
  memset(&c, 0xff, sizeof(c));
  sr_seen_conf_defaults(&c);
  T_EQ_INT(c.window_ms, 0);
  T_EQ_INT(c.max, SR_SEEN_MAX_DEFAULT);
  T_EQ_INT(sr_seen_consumes(&c, SR_EV_VIEW), 1);
  T_EQ_INT(sr_seen_consumes(&c, SR_EV_CLICK), 1);
  T_EQ_INT(sr_seen_consumes(&c, SR_EV_CART), 1);
  T_EQ_INT(sr_seen_consumes(&c, SR_EV_PURCHASE), 1);
  T_EQ_INT(sr_seen_consumes(&c, SR_EV_RATE), 1);
  T_EQ_INT(sr_seen_consumes(&c, SR_EV_IMPRESSION), 0);
  T_EQ_INT(sr_seen_consumes(&c, SR_EV_SKIP), 0);
  T_EQ_INT(sr_seen_consumes(&c, SR_EV_FORGET), 0);
  T_EQ_INT(sr_seen_consumes(&c, (sr_event_type_t)40), 0);
  char buf[128];
  sr_seen_types_str(c.types, buf, sizeof(buf));
  T_EQ_STR(buf, "VIEW,CLICK,CART,PURCHASE,RATE");
  T_EQ_INT(sr_seen_conf_check(&c, NULL, 0), SR_OK);
  /* a zeroed set is empty and holds nothing */
  sr_seen_t s;
  memset(&s, 0, sizeof(s));
  T_EQ_INT(sr_seen_count(&s), 0);
  T_EQ_INT(sr_seen_bytes(&s), 0);
  T_EQ_INT(sr_seen_has(&s, 0), 0);
  T_EQ_INT(sizeof(sr_seen_t), 24);
}

TEST(conf_check) {
  char err[256];
  sr_seen_conf_t c = conf(0, 10);
  c.types = 0;
  err[0] = 0;
  T_EQ_INT(sr_seen_conf_check(&c, err, sizeof(err)), SR_ERR_CONF);
  T_ASSERT_MSG(strstr(err, "state.seen.types") != NULL, "%s", err);
  c.types = 1u << SR_EV_FORGET | 1u << SR_EV_VIEW;
  err[0] = 0;
  T_EQ_INT(sr_seen_conf_check(&c, err, sizeof(err)), SR_ERR_CONF);
  T_ASSERT_MSG(strstr(err, "state.seen.types") && strstr(err, "FORGET"), "%s", err);
  c.types = 1u << SR_EV__CNT | 1u << SR_EV_VIEW;
  err[0] = 0;
  T_EQ_INT(sr_seen_conf_check(&c, err, sizeof(err)), SR_ERR_CONF);
  T_ASSERT_MSG(strstr(err, "state.seen.types") != NULL, "%s", err);
  c = conf(-1, 10);
  err[0] = 0;
  T_EQ_INT(sr_seen_conf_check(&c, err, sizeof(err)), SR_ERR_CONF);
  T_ASSERT_MSG(strstr(err, "state.seen.window.ms") != NULL, "%s", err);
  c = conf(0, 0);
  err[0] = 0;
  T_EQ_INT(sr_seen_conf_check(&c, err, sizeof(err)), SR_ERR_CONF);
  T_ASSERT_MSG(strstr(err, "state.seen.max") != NULL, "%s", err);
  c = conf(0, SR_SEEN_MAX_LIMIT + 1);
  T_EQ_INT(sr_seen_conf_check(&c, NULL, 0), SR_ERR_CONF);
  c = conf(0, SR_SEEN_MAX_LIMIT);
  T_EQ_INT(sr_seen_conf_check(&c, NULL, 0), SR_OK);
  c = conf(1, 1);
  T_EQ_INT(sr_seen_conf_check(&c, NULL, 0), SR_OK);
  c.types = 1u << SR_EV_SKIP; /* any non-empty set of non-FORGET types */
  T_EQ_INT(sr_seen_conf_check(&c, NULL, 0), SR_OK);
}

TEST(parse_types) {
  char err[256], buf[128];
  uint32_t t = 12345;
  T_EQ_INT(sr_seen_parse_types("VIEW", &t, err, sizeof(err)), SR_OK);
  T_EQ_INT(t, 1u << SR_EV_VIEW);
  T_EQ_INT(sr_seen_parse_types(" purchase , Rate,view ", &t, err, sizeof(err)), SR_OK);
  T_EQ_INT(t, 1u << SR_EV_VIEW | 1u << SR_EV_PURCHASE | 1u << SR_EV_RATE);
  sr_seen_types_str(t, buf, sizeof(buf));
  T_EQ_STR(buf, "VIEW,PURCHASE,RATE"); /* enum order, not input order */
  T_EQ_INT(sr_seen_parse_types("\tIMPRESSION,SKIP,CLICK,CART\n", &t, err, sizeof(err)), SR_OK);
  sr_seen_types_str(t, buf, sizeof(buf));
  T_EQ_STR(buf, "CLICK,CART,IMPRESSION,SKIP");
  T_EQ_INT(sr_seen_parse_types("VIEW,VIEW", &t, err, sizeof(err)), SR_OK);
  T_EQ_INT(t, 1u << SR_EV_VIEW);
  /* the defaults' string parses back to the defaults */
  sr_seen_conf_t d;
  sr_seen_conf_defaults(&d);
  sr_seen_types_str(d.types, buf, sizeof(buf));
  T_EQ_INT(sr_seen_parse_types(buf, &t, err, sizeof(err)), SR_OK);
  T_EQ_INT(t, d.types);

  /* refused: *types untouched, a reason naming the bad entry */
  static const struct {
    const char *in, *needle;
  } bad[] = {
      {"", "empty"},
      {"   ", "empty"},
      {"VIEW,", "empty entry"},
      {",VIEW", "empty"},
      {"VIEW,,CLICK", "empty"},
      {"VIEW, ,CLICK", "empty"},
      {"VIEWS", "'VIEWS'"},
      {"VIEW;CLICK", "'VIEW;CLICK'"},
      {"VIEW,FORGET", "FORGET"},
      {"forget", "forget"},
      {"VI EW", "'VI EW'"},
  };
  for (size_t i = 0; i < SR_ARRAY_SIZE(bad); i++) {
    t = 777;
    err[0] = 0;
    T_ASSERT_MSG(sr_seen_parse_types(bad[i].in, &t, err, sizeof(err)) == SR_ERR_INVALID_ARG,
                 "'%s' accepted", bad[i].in);
    T_EQ_INT(t, 777);
    T_ASSERT_MSG(strstr(err, bad[i].needle) != NULL, "'%s': reason '%s' lacks '%s'", bad[i].in, err,
                 bad[i].needle);
  }
  T_EQ_INT(sr_seen_parse_types(NULL, &t, NULL, 0), SR_ERR_INVALID_ARG);

  /* types_str: empty mask, truncation always NUL-terminated */
  sr_seen_types_str(0, buf, sizeof(buf));
  T_EQ_STR(buf, "");
  char small[8];
  memset(small, 'x', sizeof(small));
  sr_seen_types_str(d.types, small, sizeof(small));
  T_ASSERT(memchr(small, 0, sizeof(small)) != NULL);
  T_EQ_STR(small, "VIEW");              /* "VIEW,CLICK" does not fit: stops at a whole name */
  sr_seen_types_str(d.types, small, 0); /* no-op, no crash */
}

/* ---- rules ---- */

TEST(add_has_count) {
  for (int timed = 0; timed < 2; timed++) {
    sr_seen_conf_t c = conf(timed ? TIMED : 0, 100);
    sr_seen_t s;
    sr_seen_init(&s);
    T_EQ_INT(sr_seen_add(&s, &c, 7, 100), 0);
    T_EQ_INT(sr_seen_add(&s, &c, 3, 200), 0);
    T_EQ_INT(sr_seen_add(&s, &c, 0, 300), 0);
    T_EQ_INT(sr_seen_add(&s, &c, -1, 400), 0); /* not in the catalogue: nothing */
    T_EQ_INT(sr_seen_count(&s), 3);
    T_EQ_INT(sr_seen_has(&s, 7), 1);
    T_EQ_INT(sr_seen_has(&s, 3), 1);
    T_EQ_INT(sr_seen_has(&s, 0), 1);
    T_EQ_INT(sr_seen_has(&s, 1), 0);
    T_EQ_INT(sr_seen_has(&s, -1), 0);
    T_EQ_INT(sr_seen_has(&s, INT32_MAX), 0);
    const int32_t it[] = {7, 3, 0};
    const int64_t ts[] = {100, 200, 300}, none[] = {0, 0, 0};
    T_ASSERT(entries_are(&s, it, timed ? ts : none, 3)); /* window 0: no times kept */
    int32_t sorted[3];
    T_EQ_INT(sr_seen_sorted(&s, sorted), 3);
    T_EQ_INT(sorted[0], 0);
    T_EQ_INT(sorted[1], 3);
    T_EQ_INT(sorted[2], 7);
    int32_t only[3];
    T_EQ_INT(sr_seen_entries(&s, only, NULL), 3); /* ts may be NULL */
    T_EQ_INT(only[2], 0);
    T_EQ_INT(sr_seen_bytes(&s), timed ? block_timed(4) : block_items(4));
    sr_seen_clear(&s);
    T_EQ_INT(sr_seen_count(&s), 0);
    T_EQ_INT(sr_seen_has(&s, 7), 0);
    T_EQ_INT(sr_seen_sorted(&s, sorted), 0);
  }
}

TEST(reconsume_keeps_one_entry) {
  sr_seen_conf_t c = conf(TIMED, 100);
  sr_seen_t s;
  sr_seen_init(&s);
  sr_seen_add(&s, &c, 1, 100);
  sr_seen_add(&s, &c, 2, 200);
  sr_seen_add(&s, &c, 3, 300);
  /* newer consumption: entry moves to the tail with the new time */
  T_EQ_INT(sr_seen_add(&s, &c, 1, 400), 0);
  {
    const int32_t it[] = {2, 3, 1};
    const int64_t ts[] = {200, 300, 400};
    T_ASSERT(entries_are(&s, it, ts, 3));
  }
  /* older consumption: the time stays max(old, ts) = 300 ... */
  T_EQ_INT(sr_seen_add(&s, &c, 3, 50), 0);
  {
    const int32_t it[] = {2, 3, 1};
    const int64_t ts[] = {200, 300, 400};
    T_ASSERT(entries_are(&s, it, ts, 3));
  }
  /* ... and a re-consumption is an arrival: after every entry with an equal time */
  sr_seen_add(&s, &c, 4, 300);
  {
    const int32_t it[] = {2, 3, 4, 1};
    const int64_t ts[] = {200, 300, 300, 400};
    T_ASSERT(entries_are(&s, it, ts, 4));
  }
  sr_seen_add(&s, &c, 3, 300);
  {
    const int32_t it[] = {2, 4, 3, 1};
    const int64_t ts[] = {200, 300, 300, 400};
    T_ASSERT(entries_are(&s, it, ts, 4));
  }
  /* to the middle */
  sr_seen_add(&s, &c, 2, 350);
  {
    const int32_t it[] = {4, 3, 2, 1};
    const int64_t ts[] = {300, 300, 350, 400};
    T_ASSERT(entries_are(&s, it, ts, 4));
  }
  /* same item over and over: one entry */
  for (int i = 0; i < 1000; i++)
    sr_seen_add(&s, &c, 9, 1000 + i);
  T_EQ_INT(sr_seen_count(&s), 5);
  sr_seen_clear(&s);
}

/* Window 0: arrival order, a re-consumption moves its item to the tail
 * whatever its time (both shift directions of the ring, wrapped or not). */
TEST(reconsume_items_only) {
  sr_seen_conf_t c = conf(0, 100);
  sr_seen_t s;
  sr_seen_init(&s);
  sr_seen_add(&s, &c, 1, 100);
  sr_seen_add(&s, &c, 2, 200);
  sr_seen_add(&s, &c, 3, 300);
  T_EQ_INT(sr_seen_add(&s, &c, 1, 400), 0);
  {
    const int32_t it[] = {2, 3, 1};
    T_ASSERT(items_are(&s, it, 3));
  }
  T_EQ_INT(sr_seen_add(&s, &c, 3, 50), 0); /* an older event is still the newest arrival */
  {
    const int32_t it[] = {2, 1, 3};
    T_ASSERT(items_are(&s, it, 3));
  }
  sr_seen_add(&s, &c, 4, 10); /* new entries go to the tail whatever their time */
  {
    const int32_t it[] = {2, 1, 3, 4};
    T_ASSERT(items_are(&s, it, 4));
  }
  sr_seen_add(&s, &c, 2, 500); /* the head */
  {
    const int32_t it[] = {1, 3, 4, 2};
    T_ASSERT(items_are(&s, it, 4));
  }
  sr_seen_add(&s, &c, 4, 500); /* near the tail: the entries after it shift */
  {
    const int32_t it[] = {1, 3, 2, 4};
    T_ASSERT(items_are(&s, it, 4));
  }
  sr_seen_add(&s, &c, 3, 500); /* near the head: the entries before it shift, the head moves */
  {
    const int32_t it[] = {1, 2, 4, 3};
    T_ASSERT(items_are(&s, it, 4));
  }
  sr_seen_add(&s, &c, 3, 500); /* the tail itself: nothing moves */
  {
    const int32_t it[] = {1, 2, 4, 3};
    T_ASSERT(items_are(&s, it, 4));
  }
  sr_seen_add(&s, &c, 5, 600); /* capacity 4 -> 8 */
  sr_seen_add(&s, &c, 1, 600);
  {
    const int32_t it[] = {2, 4, 3, 5, 1};
    T_ASSERT(items_are(&s, it, 5));
  }
  sr_seen_clear(&s);

  /* a full, wrapped ring (max = capacity = 4, head moved by the bound) */
  sr_seen_conf_t c4 = conf(0, 4);
  for (int i = 1; i <= 4; i++)
    sr_seen_add(&s, &c4, i, i);
  T_EQ_INT(sr_seen_add(&s, &c4, 5, 5), 1);
  {
    const int32_t it[] = {2, 3, 4, 5};
    T_ASSERT(items_are(&s, it, 4));
  }
  sr_seen_add(&s, &c4, 3, 6); /* head side, ring full */
  {
    const int32_t it[] = {2, 4, 5, 3};
    T_ASSERT(items_are(&s, it, 4));
  }
  sr_seen_add(&s, &c4, 2, 7);
  sr_seen_add(&s, &c4, 5, 8);
  {
    const int32_t it[] = {4, 3, 2, 5};
    T_ASSERT(items_are(&s, it, 4));
  }
  sr_seen_add(&s, &c4, 2, 9); /* tail side across the wrap */
  {
    const int32_t it[] = {4, 3, 5, 2};
    T_ASSERT(items_are(&s, it, 4));
  }
  T_EQ_INT(sr_seen_add(&s, &c4, 6, 10), 1); /* drops 4, the oldest arrival */
  {
    const int32_t it[] = {3, 5, 2, 6};
    T_ASSERT(items_are(&s, it, 4));
  }
  T_EQ_INT(sr_seen_bytes(&s), block_items(4));
  /* same item over and over: one entry */
  for (int i = 0; i < 1000; i++)
    sr_seen_add(&s, &c4, 9, 1000 + i);
  T_EQ_INT(sr_seen_count(&s), 4);
  sr_seen_clear(&s);
}

TEST(out_of_order_insert) {
  sr_seen_conf_t c = conf(TIMED, 100);
  sr_seen_t s;
  sr_seen_init(&s);
  sr_seen_add(&s, &c, 1, 100);
  sr_seen_add(&s, &c, 2, 300);
  sr_seen_add(&s, &c, 3, 200); /* late event: placed by time */
  sr_seen_add(&s, &c, 4, 50);  /* older than everything */
  sr_seen_add(&s, &c, 5, 200); /* tie: after the earlier arrival */
  const int32_t it[] = {4, 1, 3, 5, 2};
  const int64_t ts[] = {50, 100, 200, 200, 300};
  T_ASSERT(entries_are(&s, it, ts, 5));
  sr_seen_clear(&s);
  /* window 0: times do not matter, arrival order */
  sr_seen_conf_t c0 = conf(0, 100);
  sr_seen_add(&s, &c0, 1, 100);
  sr_seen_add(&s, &c0, 2, 300);
  sr_seen_add(&s, &c0, 3, 200);
  sr_seen_add(&s, &c0, 4, 50);
  sr_seen_add(&s, &c0, 5, 200);
  const int32_t arrival[] = {1, 2, 3, 4, 5};
  T_ASSERT(items_are(&s, arrival, 5));
  sr_seen_clear(&s);
}

TEST(bound_drops_oldest) {
  sr_seen_conf_t c = conf(TIMED, 3);
  sr_seen_t s;
  sr_seen_init(&s);
  T_EQ_INT(sr_seen_add(&s, &c, 10, 100), 0);
  T_EQ_INT(sr_seen_add(&s, &c, 11, 300), 0);
  T_EQ_INT(sr_seen_add(&s, &c, 12, 200), 0); /* out of order: log 10,12,11 */
  T_EQ_INT(sr_seen_add(&s, &c, 13, 400), 1); /* drops 10 (oldest by time) */
  {
    const int32_t it[] = {12, 11, 13};
    const int64_t ts[] = {200, 300, 400};
    T_ASSERT(entries_are(&s, it, ts, 3));
  }
  T_EQ_INT(sr_seen_has(&s, 10), 0);
  T_EQ_INT(sr_seen_add(&s, &c, 14, 250), 1); /* late and new: drops 12 (200) */
  {
    const int32_t it[] = {14, 11, 13};
    const int64_t ts[] = {250, 300, 400};
    T_ASSERT(entries_are(&s, it, ts, 3));
  }
  /* a re-consumption never drops */
  T_EQ_INT(sr_seen_add(&s, &c, 14, 500), 0);
  T_EQ_INT(sr_seen_count(&s), 3);
  /* a new entry older than all: the head goes first, the new one stays */
  T_EQ_INT(sr_seen_add(&s, &c, 15, 10), 1);
  {
    const int32_t it[] = {15, 13, 14};
    const int64_t ts[] = {10, 400, 500};
    T_ASSERT(entries_are(&s, it, ts, 3));
  }
  /* the same through apply */
  T_EQ_INT(sr_seen_apply(&s, &c, SR_EV_VIEW, 16, 600, 600), 1);
  T_EQ_INT(sr_seen_has(&s, 15), 0);
  /* max lowered between calls: drops down to the new bound */
  sr_seen_conf_t c1 = conf(TIMED, 1);
  T_EQ_INT(sr_seen_add(&s, &c1, 17, 700), 3);
  {
    const int32_t it[] = {17};
    const int64_t ts[] = {700};
    T_ASSERT(entries_are(&s, it, ts, 1));
  }
  /* max 1 keeps the newest only */
  T_EQ_INT(sr_seen_add(&s, &c1, 18, 800), 1);
  T_EQ_INT(sr_seen_has(&s, 18), 1);
  T_EQ_INT(sr_seen_count(&s), 1);
  sr_seen_clear(&s);

  /* a long in-order stream through the ring: always the newest max */
  sr_seen_conf_t c5 = conf(TIMED, 5);
  int drops = 0;
  for (int i = 0; i < 1000; i++)
    drops += sr_seen_add(&s, &c5, i, i);
  T_EQ_INT(drops, 995);
  const int32_t it[] = {995, 996, 997, 998, 999};
  const int64_t ts[] = {995, 996, 997, 998, 999};
  T_ASSERT(entries_are(&s, it, ts, 5));
  sr_seen_clear(&s);
}

/* Window 0: the bound drops the item consumed longest ago in arrival order
 * (a re-consumption counts as the newest arrival), whatever the times. */
TEST(bound_items_only) {
  sr_seen_conf_t c = conf(0, 3);
  sr_seen_t s;
  sr_seen_init(&s);
  T_EQ_INT(sr_seen_add(&s, &c, 10, 100), 0);
  T_EQ_INT(sr_seen_add(&s, &c, 11, 300), 0);
  T_EQ_INT(sr_seen_add(&s, &c, 12, 200), 0);
  T_EQ_INT(sr_seen_add(&s, &c, 13, 400), 1); /* drops 10 */
  {
    const int32_t it[] = {11, 12, 13};
    T_ASSERT(items_are(&s, it, 3));
  }
  T_EQ_INT(sr_seen_add(&s, &c, 11, 50), 0); /* re-consumption: never drops, moves to the tail */
  T_EQ_INT(sr_seen_add(&s, &c, 14, 10), 1); /* drops 12, now the oldest arrival */
  {
    const int32_t it[] = {13, 11, 14};
    T_ASSERT(items_are(&s, it, 3));
  }
  T_EQ_INT(sr_seen_has(&s, 12), 0);
  T_EQ_INT(sr_seen_apply(&s, &c, SR_EV_VIEW, 15, 600, 600), 1);
  T_EQ_INT(sr_seen_has(&s, 13), 0);
  /* max lowered between calls */
  sr_seen_conf_t c1 = conf(0, 1);
  T_EQ_INT(sr_seen_add(&s, &c1, 17, 700), 3);
  {
    const int32_t it[] = {17};
    T_ASSERT(items_are(&s, it, 1));
  }
  T_EQ_INT(sr_seen_add(&s, &c1, 18, 1), 1);
  T_EQ_INT(sr_seen_has(&s, 18), 1);
  T_EQ_INT(sr_seen_count(&s), 1);
  sr_seen_clear(&s);
  /* a long stream through the ring; item 0, consumed again every time,
   * stays the newest and is never dropped */
  sr_seen_conf_t c5 = conf(0, 5);
  int drops = 0;
  for (int i = 0; i < 1000; i++) {
    drops += sr_seen_add(&s, &c5, i, 1000 - i);
    drops += sr_seen_add(&s, &c5, 0, 0);
  }
  T_EQ_INT(drops, 995);
  const int32_t it[] = {996, 997, 998, 999, 0};
  T_ASSERT(items_are(&s, it, 5));
  sr_seen_clear(&s);
}

TEST(window_boundary) {
  sr_seen_conf_t c = conf(1000, 100);
  sr_seen_t s;
  sr_seen_init(&s);
  sr_seen_add(&s, &c, 1, 1000);
  sr_seen_add(&s, &c, 2, 1500);
  sr_seen_add(&s, &c, 3, 2000);
  T_EQ_INT(sr_seen_expire(&s, &c, 1999), 0); /* 1999 - 1000 = 999 < 1000: 1 stays */
  T_EQ_INT(sr_seen_has(&s, 1), 1);
  T_EQ_INT(sr_seen_expire(&s, &c, 2000), 1); /* time 1000 <= 2000 - 1000: expires */
  T_EQ_INT(sr_seen_has(&s, 1), 0);
  T_EQ_INT(sr_seen_has(&s, 2), 1);
  T_EQ_INT(sr_seen_expire(&s, &c, 2499), 0);
  T_EQ_INT(sr_seen_expire(&s, &c, 3000), 2); /* 1500 and 2000 */
  T_EQ_INT(sr_seen_count(&s), 0);
  T_EQ_INT(sr_seen_bytes(&s), 0); /* emptied by the window: memory freed */
  /* window 0: nothing ever expires, not even in a set with times */
  sr_seen_conf_t c0 = conf(0, 100);
  sr_seen_add(&s, &c, 1, INT64_MIN);
  T_EQ_INT(sr_seen_expire(&s, &c0, INT64_MAX), 0);
  T_EQ_INT(sr_seen_count(&s), 1);
  /* extreme clocks do not overflow */
  T_EQ_INT(sr_seen_expire(&s, &c, INT64_MIN), 0);
  T_EQ_INT(sr_seen_expire(&s, &c, INT64_MIN + 999), 0);
  T_EQ_INT(sr_seen_expire(&s, &c, INT64_MIN + 1000), 1); /* limit == INT64_MIN == its time */
  sr_seen_clear(&s);
  /* a set without times (made with window 0) never expires by expire alone */
  sr_seen_add(&s, &c0, 1, 1000);
  T_EQ_INT(sr_seen_expire(&s, &c, INT64_MAX), 0);
  T_EQ_INT(sr_seen_count(&s), 1);
  T_EQ_INT(sr_seen_bytes(&s), block_items(4)); /* and expire does not convert it */
  sr_seen_clear(&s);

  /* through apply: the re-consumption window */
  sr_seen_apply(&s, &c, SR_EV_VIEW, 5, 10000, 10000);
  sr_seen_apply(&s, &c, SR_EV_VIEW, 6, 10500, 10500);
  T_EQ_INT(sr_seen_has(&s, 5), 1);
  /* an event that adds nothing still moves the window with the clock */
  sr_seen_apply(&s, &c, SR_EV_IMPRESSION, 7, 11000, 11000);
  T_EQ_INT(sr_seen_has(&s, 5), 0);
  T_EQ_INT(sr_seen_has(&s, 6), 1);
  T_EQ_INT(sr_seen_has(&s, 7), 0);
  /* a late event already outside the window never shows up */
  sr_seen_apply(&s, &c, SR_EV_CLICK, 8, 9000, 11000);
  T_EQ_INT(sr_seen_has(&s, 8), 0);
  T_EQ_INT(sr_seen_count(&s), 1);
  sr_seen_clear(&s);
}

TEST(apply_rules) {
  sr_seen_conf_t c = conf(0, 100);
  sr_seen_t s;
  sr_seen_init(&s);
  T_EQ_INT(sr_seen_apply(&s, &c, SR_EV_IMPRESSION, 1, 100, 100), 0);
  T_EQ_INT(sr_seen_apply(&s, &c, SR_EV_SKIP, 2, 100, 100), 0);
  T_EQ_INT(sr_seen_count(&s), 0);
  T_EQ_INT(sr_seen_bytes(&s), 0);
  for (int t = SR_EV_VIEW; t <= SR_EV_RATE; t++)
    T_EQ_INT(sr_seen_apply(&s, &c, (sr_event_type_t)t, 10 + t, 200 + t, 200 + t), 0);
  T_EQ_INT(sr_seen_count(&s), 5);
  T_EQ_INT(sr_seen_apply(&s, &c, SR_EV_VIEW, -1, 300, 300), 0); /* unknown item */
  T_EQ_INT(sr_seen_apply(&s, &c, SR_EV_VIEW, INT32_MIN, 300, 300), 0);
  T_EQ_INT(sr_seen_count(&s), 5);
  T_EQ_INT(sr_seen_apply(&s, &c, (sr_event_type_t)99, 3, 300, 300), 0); /* out-of-range type */
  T_EQ_INT(sr_seen_count(&s), 5);
  /* a custom rule: only PURCHASE consumes */
  sr_seen_conf_t p = c;
  T_EQ_INT(sr_seen_parse_types("PURCHASE", &p.types, NULL, 0), SR_OK);
  sr_seen_apply(&s, &p, SR_EV_VIEW, 50, 400, 400);
  T_EQ_INT(sr_seen_has(&s, 50), 0);
  sr_seen_apply(&s, &p, SR_EV_PURCHASE, 50, 400, 400);
  T_EQ_INT(sr_seen_has(&s, 50), 1);
  /* FORGET clears (whatever the item) and frees */
  T_ASSERT(sr_seen_bytes(&s) > 0);
  T_EQ_INT(sr_seen_apply(&s, &c, SR_EV_FORGET, -1, 500, 500), 0);
  T_EQ_INT(sr_seen_count(&s), 0);
  T_EQ_INT(sr_seen_bytes(&s), 0);
  T_EQ_INT(sr_seen_has(&s, 50), 0);
  /* and the set works again afterwards */
  sr_seen_apply(&s, &c, SR_EV_VIEW, 1, 600, 600);
  T_EQ_INT(sr_seen_count(&s), 1);
  sr_seen_clear(&s);
}

TEST(index_threshold) {
  sr_seen_conf_t c = conf(TIMED, 1000);
  sr_seen_t s;
  sr_seen_init(&s);
  for (int i = 0; i < SR_SEEN_INDEX_MIN - 1; i++)
    sr_seen_add(&s, &c, 1000 - 7 * i, i);
  T_ASSERT(s.index == NULL);
  int32_t a[256], b[256];
  T_EQ_INT(sr_seen_sorted(&s, a), SR_SEEN_INDEX_MIN - 1);
  sr_seen_add(&s, &c, 5, 1000);
  T_ASSERT(s.index != NULL); /* built at SR_SEEN_INDEX_MIN */
  T_EQ_INT(sr_seen_sorted(&s, b), SR_SEEN_INDEX_MIN);
  T_EQ_INT(b[0], 5);
  for (int i = 0; i < SR_SEEN_INDEX_MIN - 1; i++)
    T_EQ_INT(b[i + 1], a[i]);
  T_EQ_INT(sr_seen_has(&s, 5), 1);
  T_EQ_INT(sr_seen_has(&s, 6), 0);
  T_EQ_INT(sr_seen_has(&s, 1000), 1);
  /* hysteresis: kept down to SR_SEEN_INDEX_MIN / 2, dropped below */
  sr_seen_conf_t w = conf(1, 1000);
  T_EQ_INT(sr_seen_expire(&s, &w, (SR_SEEN_INDEX_MIN / 2) + 1), SR_SEEN_INDEX_MIN / 2 + 1);
  T_EQ_INT(sr_seen_count(&s), SR_SEEN_INDEX_MIN / 2 - 1);
  T_ASSERT(s.index == NULL);
  sr_seen_clear(&s);
  for (int i = 0; i < SR_SEEN_INDEX_MIN; i++)
    sr_seen_add(&s, &c, i, i);
  T_ASSERT(s.index != NULL);
  T_EQ_INT(sr_seen_expire(&s, &w, SR_SEEN_INDEX_MIN / 2), SR_SEEN_INDEX_MIN / 2);
  T_EQ_INT(sr_seen_count(&s), SR_SEEN_INDEX_MIN / 2);
  T_ASSERT(s.index != NULL); /* still at half */
  T_EQ_INT(sr_seen_has(&s, 0), 0);
  T_EQ_INT(sr_seen_has(&s, SR_SEEN_INDEX_MIN / 2), 1);
  /* re-consumption with the index: the entry moves, nothing else changes */
  sr_seen_add(&s, &c, SR_SEEN_INDEX_MIN / 2, 10000);
  int32_t it[64];
  int64_t ts[64];
  uint32_t n = sr_seen_entries(&s, it, ts);
  T_EQ_INT(n, SR_SEEN_INDEX_MIN / 2);
  T_EQ_INT(it[n - 1], SR_SEEN_INDEX_MIN / 2);
  T_EQ_INT(ts[n - 1], 10000);
  /* a bound below the threshold never builds the index */
  sr_seen_clear(&s);
  sr_seen_conf_t c50 = conf(0, 50);
  for (int i = 0; i < 500; i++)
    sr_seen_add(&s, &c50, i, i);
  T_ASSERT(s.index == NULL);
  T_EQ_INT(sr_seen_count(&s), 50);
  sr_seen_clear(&s);
  T_ASSERT(s.index == NULL && s.log == NULL);
  /* items only: the same thresholds (a lowered bound is what shrinks it) */
  sr_seen_conf_t c0 = conf(0, 1000), c32 = conf(0, 32), c31 = conf(0, 31);
  for (int i = 0; i < SR_SEEN_INDEX_MIN - 1; i++)
    sr_seen_add(&s, &c0, 3 * i, 0);
  T_ASSERT(s.index == NULL);
  sr_seen_add(&s, &c0, 1, 0);
  T_ASSERT(s.index != NULL);
  T_EQ_INT(sr_seen_has(&s, 1), 1);
  T_EQ_INT(sr_seen_has(&s, 2), 0);
  sr_seen_add(&s, &c0, 0, 0); /* re-consumption with the index: moves, nothing else */
  T_EQ_INT(sr_seen_count(&s), SR_SEEN_INDEX_MIN);
  T_EQ_INT(sr_seen_add(&s, &c32, 1000, 0), SR_SEEN_INDEX_MIN - 31);
  T_EQ_INT(sr_seen_count(&s), SR_SEEN_INDEX_MIN / 2);
  T_ASSERT(s.index != NULL);       /* still at half */
  T_EQ_INT(sr_seen_has(&s, 0), 1); /* moved to the tail: survived */
  T_EQ_INT(sr_seen_has(&s, 3), 0);
  T_EQ_INT(sr_seen_add(&s, &c31, 1001, 0), 2);
  T_ASSERT(s.index == NULL);
  T_EQ_INT(sr_seen_has(&s, 0), 1);
  T_EQ_INT(sr_seen_has(&s, 1001), 1);
  sr_seen_clear(&s);
}

/* Runs n_steps random events through the set and the reference with conf c,
 * comparing after every step (count, membership of the event's item, the
 * drop count) and every `every` steps everything (entries with times,
 * sorted items, a has() for random items). */
static int random_vs_reference(const sr_seen_conf_t *c, const sr_seen_conf_t *alt,
                               int alt_per_million, int n_items, int n_steps, int every,
                               int forget_per_million, int *builds, int *saw_drop,
                               int *conversions) {
  sr_seen_t s;
  ref_t r;
  sr_seen_init(&s);
  r.item = malloc((c->max + 1) * sizeof(int32_t));
  r.t = malloc((c->max + 1) * sizeof(int64_t));
  r.n = 0;
  r.timed = 0;
  r.conversions = 0;
  int32_t *gi = malloc((c->max + 1) * sizeof(int32_t)),
          *si = malloc((c->max + 1) * sizeof(int32_t));
  int64_t *gt = malloc((c->max + 1) * sizeof(int64_t));
  int ok = 0;
  int64_t now = 1700000000000LL, clock = 0;
  for (int step = 0; step < n_steps; step++) {
    now += (int64_t)(rnd() % 50);
    int64_t ts = now;
    if (rnd() % 8 == 0) ts -= (int64_t)(rnd() % 3000); /* late event */
    if (ts > clock) clock = ts;
    sr_event_type_t type = (sr_event_type_t)(rnd() % 7); /* VIEW..SKIP */
    if ((int)(rnd() % 1000000) < forget_per_million) type = SR_EV_FORGET;
    /* skewed popularity so re-consumption happens */
    int32_t item = rnd() % 4 ? (int32_t)(rnd() % (uint64_t)(n_items / 10 + 1))
                             : (int32_t)(rnd() % (uint64_t)n_items);
    if (rnd() % 100 == 0) item = -1;
    /* now and then an event under the other conf (a set is robust to it) */
    const sr_seen_conf_t *ec = (int)(rnd() % 1000000) < alt_per_million ? alt : c;
    const void *had_index = s.index;
    int d1 = sr_seen_apply(&s, ec, type, item, ts, clock);
    int d2 = ref_apply(&r, ec, type, item, ts, clock);
    if (d1) *saw_drop = 1;
    if (s.index && !had_index) (*builds)++;
    if (d1 != d2 || sr_seen_count(&s) != r.n) {
      fprintf(stderr, "step %d: dropped %d/%d count %u/%u\n", step, d1, d2, sr_seen_count(&s), r.n);
      goto out;
    }
    int in_ref = 0;
    for (uint32_t i = 0; i < r.n && !in_ref; i++)
      in_ref = r.item[i] == item;
    if (sr_seen_has(&s, item) != in_ref) {
      fprintf(stderr, "step %d: has(%d) = %d\n", step, item, sr_seen_has(&s, item));
      goto out;
    }
    /* the index exists exactly as documented: from INDEX_MIN, never below half */
    if ((r.n >= SR_SEEN_INDEX_MIN && !s.index) || (r.n < SR_SEEN_INDEX_MIN / 2 && s.index) ||
        (r.n == 0 && (s.log || sr_seen_bytes(&s)))) {
      fprintf(stderr, "step %d: index %p with %u entries\n", step, s.index, r.n);
      goto out;
    }
    if (step % every == 0 || step == n_steps - 1) {
      if (sr_seen_entries(&s, gi, gt) != r.n) goto out;
      for (uint32_t i = 0; i < r.n; i++)
        if (gi[i] != r.item[i] || gt[i] != r.t[i]) {
          fprintf(stderr, "step %d: entry %u = (%d, %lld), expected (%d, %lld)\n", step, i, gi[i],
                  (long long)gt[i], r.item[i], (long long)r.t[i]);
          goto out;
        }
      memcpy(si, r.item, r.n * sizeof(int32_t));
      qsort(si, r.n, sizeof(int32_t), cmp_i32);
      if (sr_seen_sorted(&s, gi) != r.n) goto out;
      for (uint32_t i = 0; i < r.n; i++)
        if (gi[i] != si[i] || (i && gi[i] <= gi[i - 1])) {
          fprintf(stderr, "step %d: sorted[%u] = %d, expected %d\n", step, i, gi[i], si[i]);
          goto out;
        }
      for (int k = 0; k < 8; k++) {
        int32_t q = (int32_t)(rnd() % (uint64_t)n_items);
        if (sr_seen_has(&s, q) != (bsearch(&q, si, r.n, sizeof(int32_t), cmp_i32) != NULL)) {
          fprintf(stderr, "step %d: has(%d) wrong\n", step, q);
          goto out;
        }
      }
      if (r.n && sr_seen_bytes(&s) < (size_t)r.n * (r.timed ? 12 : 4)) goto out;
      if (r.n && !s.index &&
          sr_seen_bytes(&s) > (r.timed ? block_timed(c->max) : block_items(c->max)))
        goto out;
    }
  }
  *conversions = r.conversions;
  ok = 1;
out:
  sr_seen_clear(&s);
  free(r.item);
  free(r.t);
  free(gi);
  free(si);
  free(gt);
  return ok;
}

TEST(random_vs_reference) {
  static const struct {
    int64_t window;
    uint32_t max;
    int forget_ppm;
    const char *types;   /* NULL: defaults */
    int min_builds;      /* index builds the sequence must reach */
    int drops;           /* whether the bound must drop */
    int64_t alt_window;  /* the window of the other conf ... */
    int alt_ppm;         /* ... used for this share of the events */
    int min_conversions; /* items-only sets given times the sequence must reach */
  } cases[] = {
      /* window 0: items only */
      {0, 1000, 20, NULL, 1, 1, 0, 0, 0},   /* the bound at work */
      {0, 50, 1000, NULL, 0, 1, 0, 0, 0},   /* a bound below INDEX_MIN: never an index */
      {0, 70, 100, NULL, 2, 1, 0, 0, 0},    /* a bound just past INDEX_MIN */
      {0, 10000, 0, "VIEW", 1, 0, 0, 0, 0}, /* one consuming type */
      /* a window: with times */
      {120000, 1000, 20, NULL, 1, 1, 0, 0, 0},  /* bound and window together */
      {2200, 1000, 50, NULL, 3, 0, 0, 0, 0},    /* window only, around the index thresholds */
      {20000, 10000, 0, "VIEW", 1, 0, 0, 0, 0}, /* one consuming type */
      /* mixed confs: items-only sets converted by a window event, with-times
       * sets kept under window 0 (and new blocks made under either) */
      {0, 1000, 300, NULL, 1, 1, 60000, 500, 3},
      {0, 70, 3000, NULL, 2, 1, 5000, 20000, 20},
      {120000, 1000, 300, NULL, 1, 1, 0, 300000, 1},
  };
  for (size_t i = 0; i < SR_ARRAY_SIZE(cases); i++) {
    sr_seen_conf_t c = conf(cases[i].window, cases[i].max);
    if (cases[i].types) T_EQ_INT(sr_seen_parse_types(cases[i].types, &c.types, NULL, 0), SR_OK);
    T_EQ_INT(sr_seen_conf_check(&c, NULL, 0), SR_OK);
    sr_seen_conf_t alt = c;
    alt.window_ms = cases[i].alt_window;
    int builds = 0, saw_drop = 0, conversions = 0;
    T_ASSERT_MSG(random_vs_reference(&c, &alt, cases[i].alt_ppm, 5000, 100000, 7,
                                     cases[i].forget_ppm, &builds, &saw_drop, &conversions),
                 "case %zu differs from the reference", i);
    /* the sequences do reach what they are meant to exercise */
    fprintf(stderr, "  case %zu: %d index builds, drops %d, %d conversions\n", i, builds, saw_drop,
            conversions);
    T_ASSERT_MSG(cases[i].min_builds ? builds >= cases[i].min_builds : builds == 0,
                 "case %zu: %d index builds", i, builds);
    T_EQ_INT(saw_drop, cases[i].drops);
    T_ASSERT_MSG(conversions >= cases[i].min_conversions, "case %zu: %d conversions", i,
                 conversions);
    if (!cases[i].alt_ppm) T_EQ_INT(conversions, 0);
  }
}

TEST(sorted_ascending) {
  sr_seen_conf_t c = conf(0, 10000);
  sr_seen_t s;
  sr_seen_init(&s);
  static int32_t out[10000];
  for (int round = 0; round < 2; round++) {
    int n = round ? 5000 : 40;
    for (int i = 0; i < n; i++)
      sr_seen_add(&s, &c, (int32_t)(rnd() % 2000000), i);
    uint32_t k = sr_seen_sorted(&s, out);
    T_EQ_INT(k, sr_seen_count(&s));
    T_ASSERT(k > (uint32_t)n / 2);
    for (uint32_t i = 1; i < k; i++)
      T_ASSERT_MSG(out[i - 1] < out[i], "at %u", i);
    for (uint32_t i = 0; i < k; i++)
      T_ASSERT(sr_seen_has(&s, out[i]));
  }
  /* items past 2^16 and up to INT32_MAX (several roaring containers) */
  sr_seen_clear(&s);
  const int32_t big[] = {INT32_MAX, 0, 65535, 65536, 1 << 20, INT32_MAX - 1};
  for (int i = 0; i < 100; i++)
    sr_seen_add(&s, &c, 100000 + i * 3, i);
  for (size_t i = 0; i < SR_ARRAY_SIZE(big); i++)
    sr_seen_add(&s, &c, big[i], 1000);
  uint32_t k = sr_seen_sorted(&s, out);
  T_EQ_INT(k, 106);
  T_EQ_INT(out[0], 0);
  T_EQ_INT(out[1], 65535);
  T_EQ_INT(out[2], 65536);
  T_EQ_INT(out[3], 100000);
  T_EQ_INT(out[103], 1 << 20);
  T_EQ_INT(out[104], INT32_MAX - 1);
  T_EQ_INT(out[105], INT32_MAX);
  sr_seen_clear(&s);
}

TEST(bytes_grow_and_clear) {
  for (int timed = 0; timed < 2; timed++) {
    sr_seen_conf_t c = conf(timed ? TIMED : 0, 1000);
    const size_t per = timed ? 12 : 4; /* bytes per entry of capacity */
    sr_seen_t s;
    sr_seen_init(&s);
    T_EQ_INT(sr_seen_bytes(&s), 0);
    sr_seen_add(&s, &c, 1, 1);
    T_EQ_INT(sr_seen_bytes(&s), 8 + 4 * per); /* header + 4 items (+ 4 times) */
    size_t prev = sr_seen_bytes(&s);
    for (int i = 2; i <= 1000; i++) {
      sr_seen_add(&s, &c, i * 5, i);
      size_t b = sr_seen_bytes(&s);
      T_ASSERT_MSG(b >= prev, "bytes shrank at %d: %zu -> %zu", i, prev, b);
      if (i == 4) T_EQ_INT(b, 8 + 4 * per);    /* capacity 4, full */
      if (i == 5) T_EQ_INT(b, 8 + 8 * per);    /* doubled to 8 */
      if (i == 63) T_EQ_INT(b, 8 + 64 * per);  /* capacity 64, no index yet */
      if (i == 64) T_ASSERT(b > 8 + 64 * per); /* + the index */
      prev = b;
    }
    /* capacity doublings 4..512, then clamped to max = 1000 entries */
    T_ASSERT(prev >= 8 + 1000 * per);
    T_ASSERT(prev < 1000 * per + 4096); /* + the index for 1000 items under 2^16 */
    /* full: adding more does not grow */
    for (int i = 1001; i < 3000; i++)
      sr_seen_add(&s, &c, i * 5, i);
    T_EQ_INT(sr_seen_count(&s), 1000);
    T_ASSERT(sr_seen_bytes(&s) <= prev + 64);
    sr_seen_clear(&s);
    T_EQ_INT(sr_seen_bytes(&s), 0);
    T_ASSERT(s.log == NULL && s.index == NULL);
    /* the struct moves with a plain copy */
    for (int i = 0; i < 100; i++)
      sr_seen_add(&s, &c, i, i);
    sr_seen_t moved = s;
    sr_seen_init(&s);
    T_EQ_INT(sr_seen_count(&moved), 100);
    T_EQ_INT(sr_seen_has(&moved, 99), 1);
    sr_seen_clear(&moved);
  }
}

/* Window 0: 4 bytes per entry of capacity: for n entries without the index,
 * sr_seen_bytes = 8 + cap * 4 (cap: 4 doubling, clamped to max), against 8
 * + cap * 4 rounded up to 8 + cap * 8 with times; a decoded set is sized to
 * its count. */
TEST(items_only_bytes) {
  const uint32_t maxes[] = {1, 3, 10, 50, 1000};
  for (size_t m = 0; m < SR_ARRAY_SIZE(maxes); m++) {
    sr_seen_conf_t c0 = conf(0, maxes[m]), cw = conf(TIMED, maxes[m]);
    sr_seen_t a, b;
    sr_seen_init(&a);
    sr_seen_init(&b);
    uint32_t cap = 0;
    for (uint32_t n = 1; n < SR_SEEN_INDEX_MIN; n++) {
      sr_seen_add(&a, &c0, (int32_t)(n * 7), n);
      sr_seen_add(&b, &cw, (int32_t)(n * 7), n);
      const uint32_t want_n = n < maxes[m] ? n : maxes[m];
      if (want_n > cap)
        cap = cap ? (cap * 2 < maxes[m] ? cap * 2 : maxes[m]) : (maxes[m] < 4 ? maxes[m] : 4);
      T_EQ_INT(sr_seen_count(&a), want_n);
      T_ASSERT(a.index == NULL);
      T_ASSERT_MSG(sr_seen_bytes(&a) == block_items(cap), "max %u, %u entries: %zu bytes, cap %u",
                   maxes[m], n, sr_seen_bytes(&a), cap);
      T_ASSERT_MSG(sr_seen_bytes(&b) == block_timed(cap),
                   "max %u, %u entries: %zu bytes with times", maxes[m], n, sr_seen_bytes(&b));
    }
    sr_seen_clear(&a);
    sr_seen_clear(&b);
  }
  /* the cases of the task: cap 4 = 24 bytes, 8 = 40, 16 = 72, 32 = 136, 64 = 264 */
  T_EQ_INT(block_items(4), 24);
  T_EQ_INT(block_items(64), 264);
  T_EQ_INT(block_timed(4), 56);
  T_EQ_INT(block_timed(5), 8 + 24 + 40);
  /* decoded: capacity = count */
  sr_seen_conf_t c0 = conf(0, 1000);
  sr_seen_t s, r;
  sr_seen_init(&s);
  sr_seen_init(&r);
  sr_buf_t b;
  sr_buf_init(&b);
  for (uint32_t n = 1; n < SR_SEEN_INDEX_MIN; n++) {
    sr_seen_add(&s, &c0, (int32_t)n, 0);
    sr_buf_reset(&b);
    sr_seen_serialize(&s, &b);
    T_EQ_INT(sr_seen_deserialize(&r, &c0, 1000, 0, b.data, b.len, NULL, NULL, NULL, 0), SR_OK);
    T_EQ_INT(sr_seen_bytes(&r), block_items(n));
  }
  sr_buf_free(&b);
  sr_seen_clear(&s);
  sr_seen_clear(&r);
}

/* An items-only set used with a window conf becomes a set with times: every
 * entry gets the time of the event being applied; a set with times used
 * with window 0 keeps (and maintains) its times; an emptied set decides
 * again. */
TEST(convert_items_only_to_times) {
  sr_seen_conf_t c0 = conf(0, 100), cw = conf(1000, 100);
  sr_seen_t s;
  sr_seen_init(&s);
  sr_seen_add(&s, &c0, 1, 100);
  sr_seen_add(&s, &c0, 2, 200);
  sr_seen_add(&s, &c0, 3, 300);
  {
    const int32_t it[] = {1, 2, 3};
    T_ASSERT(items_are(&s, it, 3));
  }
  T_EQ_INT(sr_seen_bytes(&s), block_items(4));
  /* through apply with a consuming event: the old entries get ts, the new one goes after */
  T_EQ_INT(sr_seen_apply(&s, &cw, SR_EV_VIEW, 4, 5000, 5000), 0);
  {
    const int32_t it[] = {1, 2, 3, 4};
    const int64_t ts[] = {5000, 5000, 5000, 5000};
    T_ASSERT(entries_are(&s, it, ts, 4));
  }
  T_EQ_INT(sr_seen_bytes(&s), block_timed(4)); /* same capacity, now with times */
  T_EQ_INT(sr_seen_expire(&s, &cw, 5999), 0);  /* excluded for one window ... */
  T_EQ_INT(sr_seen_expire(&s, &cw, 6000), 4);  /* ... then gone */
  T_EQ_INT(sr_seen_bytes(&s), 0);

  /* through apply with an event that adds nothing (the window still applies) */
  sr_seen_add(&s, &c0, 7, 0);
  sr_seen_add(&s, &c0, 8, 0);
  T_EQ_INT(sr_seen_apply(&s, &cw, SR_EV_IMPRESSION, 9, 7000, 7000), 0);
  {
    const int32_t it[] = {7, 8};
    const int64_t ts[] = {7000, 7000};
    T_ASSERT(entries_are(&s, it, ts, 2));
  }
  sr_seen_clear(&s);

  /* through add, a re-consumption; a wrapped ring keeps its order */
  sr_seen_conf_t c4 = conf(0, 4), cw4 = conf(1000, 4);
  for (int i = 1; i <= 6; i++)
    sr_seen_add(&s, &c4, i, i); /* 3 4 5 6, head moved */
  T_EQ_INT(sr_seen_add(&s, &cw4, 4, 800), 0);
  {
    const int32_t it[] = {3, 5, 6, 4};
    const int64_t ts[] = {800, 800, 800, 800};
    T_ASSERT(entries_are(&s, it, ts, 4));
  }
  /* from here it is a set with times, also under window 0 */
  T_EQ_INT(sr_seen_add(&s, &c4, 7, 700), 1); /* drops 3 (the head), 7 goes by time */
  {
    const int32_t it[] = {7, 5, 6, 4};
    const int64_t ts[] = {700, 800, 800, 800};
    T_ASSERT(entries_are(&s, it, ts, 4));
  }
  T_EQ_INT(sr_seen_add(&s, &c4, 7, 900), 0);
  {
    const int32_t it[] = {5, 6, 4, 7};
    const int64_t ts[] = {800, 800, 800, 900};
    T_ASSERT(entries_are(&s, it, ts, 4));
  }
  T_EQ_INT(sr_seen_apply(&s, &c4, SR_EV_VIEW, -1, 1000000, 1000000), 0); /* window 0: no expiry */
  T_EQ_INT(sr_seen_count(&s), 4);
  sr_buf_t b;
  sr_buf_init(&b);
  sr_seen_serialize(&s, &b);
  T_EQ_INT(b.data[0], 1); /* version 1: it has times */
  /* an emptied set decides again: window 0 -> items only */
  sr_seen_apply(&s, &c4, SR_EV_FORGET, -1, 0, 1000000);
  sr_seen_add(&s, &c4, 1, 5);
  T_EQ_INT(sr_seen_bytes(&s), block_items(4));
  sr_buf_reset(&b);
  sr_seen_serialize(&s, &b);
  T_EQ_INT(b.data[0], 2);
  sr_seen_clear(&s);

  /* with the index: it survives the conversion */
  sr_seen_conf_t cbig = conf(0, 1000), cwbig = conf(1000, 1000);
  for (int i = 0; i < 100; i++)
    sr_seen_add(&s, &cbig, 1000 - i, i);
  T_ASSERT(s.index != NULL);
  const size_t before = sr_seen_bytes(&s);
  sr_seen_apply(&s, &cwbig, SR_EV_IMPRESSION, 5, 50, 50); /* converts, adds nothing */
  T_ASSERT(s.index != NULL);
  T_EQ_INT(sr_seen_count(&s), 100);
  T_EQ_INT(sr_seen_bytes(&s), before - block_items(128) + block_timed(128));
  sr_seen_apply(&s, &cwbig, SR_EV_CLICK, 5, 50, 50);
  T_EQ_INT(sr_seen_count(&s), 101);
  int32_t it[101];
  int64_t ts[101];
  T_EQ_INT(sr_seen_entries(&s, it, ts), 101);
  for (int i = 0; i < 100; i++) {
    T_EQ_INT(it[i], 1000 - i);
    T_EQ_INT(ts[i], 50);
  }
  T_EQ_INT(it[100], 5);
  T_EQ_INT(sr_seen_sorted(&s, it), 101);
  T_EQ_INT(it[0], 5);
  T_EQ_INT(it[1], 901);
  T_EQ_INT(sr_seen_expire(&s, &cwbig, 1050), 101);
  T_ASSERT(s.index == NULL && s.log == NULL);
  sr_buf_free(&b);
  sr_seen_clear(&s);
}

/* ---- serialisation ---- */

TEST(encoding_golden) {
  sr_seen_conf_t c = conf(TIMED, 100);
  sr_seen_t s;
  sr_buf_t b;
  sr_seen_init(&s);
  sr_buf_init(&b);
  sr_seen_serialize(&s, &b);
  T_EQ_INT(b.len, 2);
  T_ASSERT(b.data[0] == 1 && b.data[1] == 0); /* empty (no mode): version 1 */
  sr_buf_reset(&b);
  sr_seen_add(&s, &c, 5, 1000);
  sr_seen_add(&s, &c, 3, 1000);
  sr_seen_add(&s, &c, 7, 1130);
  sr_seen_serialize(&s, &b);
  /* version 1, count 3, (5, zigzag 1000 = 2000), (3, +0), (7, +130) */
  static const unsigned char want[] = {0x01, 0x03, 0x05, 0xd0, 0x0f, 0x03, 0x00, 0x07, 0x82, 0x01};
  T_EQ_INT(b.len, sizeof(want));
  T_ASSERT(!memcmp(b.data, want, sizeof(want)));
  /* appends; negative first time uses zigzag */
  sr_seen_clear(&s);
  sr_seen_add(&s, &c, 0, -1);
  sr_seen_add(&s, &c, 300, 0);
  size_t at = b.len;
  sr_seen_serialize(&s, &b);
  static const unsigned char want2[] = {0x01, 0x02, 0x00, 0x01, 0xac, 0x02, 0x01};
  T_EQ_INT(b.len - at, sizeof(want2));
  T_ASSERT(!memcmp(b.data + at, want2, sizeof(want2)));
  /* and decodes back, the first encoding included, with *used */
  size_t used = 0;
  uint32_t dropped = 9;
  T_EQ_INT(sr_seen_deserialize(&s, &c, 1000, 0, b.data, b.len, &used, &dropped, NULL, 0), SR_OK);
  T_EQ_INT(used, sizeof(want)); /* trailing bytes are the caller's */
  T_EQ_INT(dropped, 0);
  const int32_t it[] = {5, 3, 7};
  const int64_t ts[] = {1000, 1000, 1130};
  T_ASSERT(entries_are(&s, it, ts, 3));
  T_EQ_INT(sr_seen_deserialize(&s, &c, 1000, 0, b.data + at, b.len - at, &used, NULL, NULL, 0),
           SR_OK);
  const int32_t it2[] = {0, 300};
  const int64_t ts2[] = {-1, 0};
  T_ASSERT(entries_are(&s, it2, ts2, 2));
  sr_seen_clear(&s);

  /* window 0: version 2, the items in arrival order */
  sr_seen_conf_t c0 = conf(0, 100);
  sr_buf_reset(&b);
  sr_seen_add(&s, &c0, 5, 1000);
  sr_seen_add(&s, &c0, 3, 1000);
  sr_seen_add(&s, &c0, 7, 1130);
  sr_seen_add(&s, &c0, 5, 2000); /* moves to the tail */
  sr_seen_serialize(&s, &b);
  static const unsigned char want3[] = {0x02, 0x03, 0x03, 0x07, 0x05};
  T_EQ_INT(b.len, sizeof(want3));
  T_ASSERT(!memcmp(b.data, want3, sizeof(want3)));
  sr_seen_clear(&s);
  sr_seen_add(&s, &c0, 0, -1);
  sr_seen_add(&s, &c0, 300, 0);
  at = b.len;
  sr_seen_serialize(&s, &b);
  static const unsigned char want4[] = {0x02, 0x02, 0x00, 0xac, 0x02};
  T_EQ_INT(b.len - at, sizeof(want4));
  T_ASSERT(!memcmp(b.data + at, want4, sizeof(want4)));
  sr_seen_clear(&s);
  sr_seen_serialize(&s, &b); /* emptied: no mode, version 1 again */
  T_EQ_INT(b.len - at, sizeof(want4) + 2);
  T_ASSERT(b.data[b.len - 2] == 1 && b.data[b.len - 1] == 0);
  T_EQ_INT(sr_seen_deserialize(&s, &c0, 1000, 77, b.data, b.len, &used, &dropped, NULL, 0), SR_OK);
  T_EQ_INT(used, sizeof(want3));
  const int32_t it3[] = {3, 7, 5};
  T_ASSERT(items_are(&s, it3, 3));
  T_EQ_INT(sr_seen_deserialize(&s, &c0, 1000, 77, b.data + at, b.len - at, &used, NULL, NULL, 0),
           SR_OK);
  T_EQ_INT(used, sizeof(want4));
  const int32_t it4[] = {0, 300};
  T_ASSERT(items_are(&s, it4, 2));
  /* the empty version 2 encoding decodes too (into either mode) */
  static const unsigned char empty2[] = {0x02, 0x00};
  T_EQ_INT(sr_seen_deserialize(&s, &c0, 1000, 0, empty2, 2, &used, NULL, NULL, 0), SR_OK);
  T_EQ_INT(used, 2);
  T_EQ_INT(sr_seen_count(&s), 0);
  T_EQ_INT(sr_seen_bytes(&s), 0);
  T_EQ_INT(sr_seen_deserialize(&s, &c, 1000, 0, empty2, 2, &used, NULL, NULL, 0), SR_OK);
  T_EQ_INT(sr_seen_bytes(&s), 0);
  sr_seen_clear(&s);
  sr_buf_free(&b);
}

static int round_trip(sr_seen_t *s, const sr_seen_conf_t *c, int32_t n_items) {
  sr_buf_t b1, b2;
  sr_seen_t r;
  int ok = 0;
  sr_buf_init(&b1);
  sr_buf_init(&b2);
  sr_seen_init(&r);
  sr_seen_serialize(s, &b1);
  size_t used = 0;
  uint32_t dropped = 1;
  char err[256] = "";
  if (b1.data[0] != (c->window_ms > 0 || !sr_seen_count(s) ? 1 : 2)) goto out;
  if (sr_seen_deserialize(&r, c, n_items, 123, b1.data, b1.len, &used, &dropped, err,
                          sizeof(err)) != SR_OK) {
    fprintf(stderr, "round trip: %s\n", err);
    goto out;
  }
  if (used != b1.len || dropped != 0 || sr_seen_count(&r) != sr_seen_count(s)) goto out;
  if ((r.index != NULL) != (sr_seen_count(s) >= SR_SEEN_INDEX_MIN)) goto out;
  sr_seen_serialize(&r, &b2);
  if (b1.len != b2.len || memcmp(b1.data, b2.data, b1.len)) goto out;
  uint32_t n = sr_seen_count(s);
  int32_t *a = malloc((n + 1) * sizeof(int32_t)), *x = malloc((n + 1) * sizeof(int32_t));
  int64_t *at = malloc((n + 1) * sizeof(int64_t)), *xt = malloc((n + 1) * sizeof(int64_t));
  sr_seen_entries(s, a, at);
  sr_seen_entries(&r, x, xt);
  ok = !memcmp(a, x, n * sizeof(int32_t)) && !memcmp(at, xt, n * sizeof(int64_t));
  for (uint32_t i = 0; i < n && c->window_ms == 0; i++)
    ok = ok && at[i] == 0;
  sr_seen_sorted(s, a);
  sr_seen_sorted(&r, x);
  ok = ok && !memcmp(a, x, n * sizeof(int32_t));
  free(a);
  free(x);
  free(at);
  free(xt);
out:
  sr_seen_clear(&r);
  sr_buf_free(&b1);
  sr_buf_free(&b2);
  return ok;
}

/* Both modes: version 1 with times (window > 0), version 2 items only. */
TEST(round_trip) {
  for (int timed = 0; timed < 2; timed++) {
    sr_seen_conf_t c = conf(timed ? TIMED : 0, 10000);
    sr_seen_t s;
    sr_seen_init(&s);
    T_ASSERT(round_trip(&s, &c, 1)); /* empty */
    const uint32_t sizes[] = {1, 10, 63, 64, 65, 1000, 10000};
    for (size_t k = 0; k < SR_ARRAY_SIZE(sizes); k++) {
      sr_seen_clear(&s);
      int64_t t = -5000; /* through negative, zero and large times */
      while (sr_seen_count(&s) < sizes[k]) {
        t += (int64_t)(rnd() % 100000);
        if (rnd() % 5 == 0) t += 1LL << 40;
        sr_seen_add(&s, &c, (int32_t)(rnd() % 100000), t);
      }
      T_ASSERT_MSG(round_trip(&s, &c, 100000), "size %u", sizes[k]);
    }
    /* extreme times and items */
    sr_seen_clear(&s);
    sr_seen_add(&s, &c, INT32_MAX - 1, INT64_MIN);
    sr_seen_add(&s, &c, 0, 0);
    sr_seen_add(&s, &c, 1, INT64_MAX);
    T_ASSERT(round_trip(&s, &c, INT32_MAX));
    /* the item bound is exclusive */
    sr_buf_t b;
    sr_buf_init(&b);
    sr_seen_serialize(&s, &b);
    sr_seen_t r;
    sr_seen_init(&r);
    T_EQ_INT(sr_seen_deserialize(&r, &c, INT32_MAX - 1, 0, b.data, b.len, NULL, NULL, NULL, 0),
             SR_ERR_FORMAT);
    T_EQ_INT(sr_seen_count(&r), 0);
    sr_buf_free(&b);
    sr_seen_clear(&s);
  }
}

/* A version 1 encoding into window 0: times checked, then dropped, the
 * order kept (items only, re-serialised as version 2). A version 2 encoding
 * into a window: every entry gets absent_time (re-serialised as version 1). */
TEST(decode_across_modes) {
  sr_seen_conf_t c0 = conf(0, 10000), cw = conf(TIMED, 10000);
  sr_seen_t s, r, q;
  sr_seen_init(&s);
  sr_seen_init(&r);
  sr_seen_init(&q);
  sr_buf_t b, b2, b3;
  sr_buf_init(&b);
  sr_buf_init(&b2);
  sr_buf_init(&b3);
  const uint32_t sizes[] = {1, 5, 63, 64, 200, 3000};
  for (size_t k = 0; k < SR_ARRAY_SIZE(sizes); k++) {
    const uint32_t n = sizes[k];
    int32_t *it = malloc(n * sizeof(int32_t)), *it2 = malloc(n * sizeof(int32_t));
    int64_t *ts = malloc(n * sizeof(int64_t)), *ts2 = malloc(n * sizeof(int64_t));
    for (int dir = 0; dir < 2; dir++) {
      /* dir 0: v1 -> window 0; dir 1: v2 -> window */
      const sr_seen_conf_t *from = dir ? &c0 : &cw, *into = dir ? &cw : &c0;
      const int64_t absent = dir ? 1700000000000LL + (int64_t)k : 999;
      sr_seen_clear(&s);
      int64_t t = -100000;
      while (sr_seen_count(&s) < n) {
        t += (int64_t)(rnd() % 1000);
        sr_seen_add(&s, from, (int32_t)(rnd() % 50000), t - (int64_t)(rnd() % 500));
      }
      sr_buf_reset(&b);
      sr_seen_serialize(&s, &b);
      T_EQ_INT(b.data[0], dir ? 2 : 1);
      size_t used = 0;
      uint32_t dropped = 5;
      T_EQ_INT(
          sr_seen_deserialize(&r, into, 50000, absent, b.data, b.len, &used, &dropped, NULL, 0),
          SR_OK);
      T_EQ_INT(used, b.len);
      T_EQ_INT(dropped, 0);
      T_EQ_INT(sr_seen_count(&r), n);
      T_EQ_INT((r.index != NULL), n >= SR_SEEN_INDEX_MIN);
      if (n < SR_SEEN_INDEX_MIN) T_EQ_INT(sr_seen_bytes(&r), dir ? block_timed(n) : block_items(n));
      sr_seen_entries(&s, it, ts);
      sr_seen_entries(&r, it2, ts2);
      T_ASSERT(!memcmp(it, it2, n * sizeof(int32_t))); /* the order is kept */
      for (uint32_t i = 0; i < n; i++)
        T_ASSERT_MSG(ts2[i] == (dir ? absent : 0), "size %u dir %d: time %u = %lld", n, dir, i,
                     (long long)ts2[i]);
      /* it re-serialises in its own mode's version, and that decodes back the same */
      sr_buf_reset(&b2);
      sr_seen_serialize(&r, &b2);
      T_EQ_INT(b2.data[0], dir ? 1 : 2);
      T_EQ_INT(
          sr_seen_deserialize(&q, into, 50000, absent + 1, b2.data, b2.len, &used, NULL, NULL, 0),
          SR_OK);
      T_EQ_INT(used, b2.len);
      sr_buf_reset(&b3);
      sr_seen_serialize(&q, &b3);
      T_ASSERT(b3.len == b2.len && !memcmp(b3.data, b2.data, b2.len));
      /* the decoded set keeps working in its mode */
      sr_seen_apply(&r, into, SR_EV_VIEW, it[0], absent + 1, absent + 1);
      sr_seen_entries(&r, it2, ts2);
      T_EQ_INT(it2[n - 1], it[0]); /* the oldest, consumed again: the newest now */
      if (dir) {
        T_EQ_INT(ts2[n - 1], absent + 1);
        sr_seen_conf_t w = conf(10, 10000); /* excluded for one window from absent_time */
        T_EQ_INT(sr_seen_expire(&r, &w, absent + 9), 0);
        T_EQ_INT(sr_seen_expire(&r, &w, absent + 10), n - 1);
        T_EQ_INT(sr_seen_count(&r), 1);
      }
      /* a smaller bound keeps the newest (in the encoding's order) */
      sr_seen_conf_t small = *into;
      small.max = 3;
      T_EQ_INT(
          sr_seen_deserialize(&r, &small, 50000, absent, b.data, b.len, &used, &dropped, NULL, 0),
          SR_OK);
      const uint32_t keep = n < 3 ? n : 3;
      T_EQ_INT(dropped, n - keep);
      T_EQ_INT(sr_seen_entries(&r, it2, ts2), keep);
      T_ASSERT(!memcmp(it2, it + (n - keep), keep * sizeof(int32_t)));
      T_EQ_INT(sr_seen_bytes(&r), dir ? block_timed(keep) : block_items(keep));
    }
    free(it);
    free(it2);
    free(ts);
    free(ts2);
  }
  /* extreme absent times */
  static const unsigned char v2[] = {2, 2, 7, 9};
  const int64_t extremes[] = {INT64_MIN, -1, 0, INT64_MAX};
  for (size_t k = 0; k < SR_ARRAY_SIZE(extremes); k++) {
    T_EQ_INT(sr_seen_deserialize(&r, &cw, 10, extremes[k], v2, sizeof(v2), NULL, NULL, NULL, 0),
             SR_OK);
    const int32_t it[] = {7, 9};
    const int64_t ts[] = {extremes[k], extremes[k]};
    T_ASSERT(entries_are(&r, it, ts, 2));
    sr_buf_reset(&b);
    sr_seen_serialize(&r, &b);
    T_EQ_INT(sr_seen_deserialize(&q, &cw, 10, 0, b.data, b.len, NULL, NULL, NULL, 0), SR_OK);
    T_ASSERT(entries_are(&q, it, ts, 2));
  }
  sr_buf_free(&b);
  sr_buf_free(&b2);
  sr_buf_free(&b3);
  sr_seen_clear(&s);
  sr_seen_clear(&r);
  sr_seen_clear(&q);
}

/* Every pair of encoding version (the mode written) and decoding mode. */
TEST(restore_smaller_max_keeps_newest) {
  for (int mode = 0; mode < 4; mode++) {
    const int from_timed = mode & 1, into_timed = mode >> 1;
    const int64_t absent = 42;
    sr_seen_conf_t big = conf(from_timed ? TIMED : 0, 1000);
    sr_seen_t s, r;
    sr_seen_init(&s);
    sr_seen_init(&r);
    for (int i = 0; i < 500; i++)
      sr_seen_add(&s, &big, 499 - i, 10 * i);
    sr_buf_t b;
    sr_buf_init(&b);
    sr_seen_serialize(&s, &b);
    T_EQ_INT(b.data[0], from_timed ? 1 : 2);
    const uint32_t maxes[] = {1, 10, 40, 64, 100, 499, 500, 501};
    for (size_t k = 0; k < SR_ARRAY_SIZE(maxes); k++) {
      sr_seen_conf_t c = conf(into_timed ? TIMED : 0, maxes[k]);
      uint32_t dropped = 12345;
      size_t used = 0;
      T_EQ_INT(sr_seen_deserialize(&r, &c, 500, absent, b.data, b.len, &used, &dropped, NULL, 0),
               SR_OK);
      uint32_t keep = maxes[k] < 500 ? maxes[k] : 500;
      T_EQ_INT(used, b.len);
      T_EQ_INT(dropped, 500 - keep);
      T_EQ_INT(sr_seen_count(&r), keep);
      T_EQ_INT((r.index != NULL), keep >= SR_SEEN_INDEX_MIN);
      int32_t it[500];
      int64_t ts[500];
      T_EQ_INT(sr_seen_entries(&r, it, ts), keep);
      for (uint32_t i = 0; i < keep; i++) {
        int j = 500 - (int)keep + (int)i; /* the newest keep entries of s */
        T_EQ_INT(it[i], 499 - j);
        T_EQ_INT(ts[i], into_timed ? (from_timed ? 10 * j : absent) : 0);
      }
      T_EQ_INT(sr_seen_has(&r, 499 - (500 - (int)keep)), 1);
      if (keep < 500) T_EQ_INT(sr_seen_has(&r, 499 - (500 - (int)keep) + 1), 0);
      /* sized to keep */
      if (keep < SR_SEEN_INDEX_MIN)
        T_EQ_INT(sr_seen_bytes(&r), into_timed ? block_timed(keep) : block_items(keep));
      T_ASSERT(sr_seen_bytes(&r) <= 8 + (size_t)keep * (into_timed ? 12 : 4) + 8 + 4096);
      /* a restored set keeps working under its bound */
      T_EQ_INT(sr_seen_add(&r, &c, 10000, 1000000), keep == maxes[k] ? 1 : 0);
      T_EQ_INT(sr_seen_has(&r, 10000), 1);
    }
    sr_buf_free(&b);
    sr_seen_clear(&s);
    sr_seen_clear(&r);
  }
}

typedef struct bad_s {
  const char *name;
  unsigned char bytes[40];
  size_t len;
  sr_err_t err;
  const char *needle; /* in errstr */
} bad_t;

TEST(malformed) {
  static const bad_t bad[] = {
      {"empty", {0}, 0, SR_ERR_TRUNCATED, "empty"},
      {"version 3", {3, 0}, 2, SR_ERR_VERSION, "version 3"},
      {"version 3 with entries", {3, 2, 1, 2}, 4, SR_ERR_VERSION, "version 3"},
      {"version 255", {0xff, 0}, 2, SR_ERR_VERSION, "version 255"},
      {"version 0", {0, 0}, 2, SR_ERR_VERSION, "version 0"},
      {"count cut", {1, 0x80}, 2, SR_ERR_TRUNCATED, "count"},
      {"no count", {1}, 1, SR_ERR_TRUNCATED, "count"},
      {"count > bytes", {1, 3, 1, 0, 2, 0}, 6, SR_ERR_FORMAT, "count 3"},
      {"count huge", {1, 0xff, 0xff, 0xff, 0xff, 0x0f, 0, 0}, 8, SR_ERR_FORMAT, "count"},
      {"count 2^63",
       {1, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01},
       11,
       SR_ERR_FORMAT,
       "count"},
      {"count overflow",
       {1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02},
       11,
       SR_ERR_FORMAT,
       "overflow"},
      {"count over-long", {1, 0x80, 0x00}, 3, SR_ERR_FORMAT, "over-long"},
      {"time cut", {1, 2, 5, 0xd0, 0x0f, 6}, 6, SR_ERR_TRUNCATED, "time"},
      {"time varint cut", {1, 1, 5, 0xd0}, 4, SR_ERR_TRUNCATED, "time"},
      {"item cut", {1, 2, 5, 0, 0x86, 0x80}, 6, SR_ERR_TRUNCATED, "item"},
      {"item = n_items", {1, 1, 10, 0}, 4, SR_ERR_FORMAT, "item 10"},
      {"item huge", {1, 1, 0xff, 0xff, 0xff, 0xff, 0x0f, 0}, 8, SR_ERR_FORMAT, "item 4294967295"},
      {"item overflow",
       {1, 1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f, 0},
       13,
       SR_ERR_FORMAT,
       "overflow"},
      {"item over-long", {1, 1, 0x85, 0x00, 0}, 5, SR_ERR_FORMAT, "over-long"},
      {"duplicate", {1, 2, 5, 0, 5, 0}, 6, SR_ERR_FORMAT, "twice"},
      {"duplicate later", {1, 3, 5, 0, 6, 1, 5, 1}, 8, SR_ERR_FORMAT, "entry 2"},
      {"time overflow",
       {1, 1, 5, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x03},
       13,
       SR_ERR_FORMAT,
       "overflow"},
      /* first time INT64_MAX (zigzag 2^64 - 2), then any positive delta */
      {"time past int64",
       {1, 2, 5, 0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01, 6, 1},
       15,
       SR_ERR_FORMAT,
       "int64"},
      {"time over-long", {1, 1, 5, 0x81, 0x80, 0x00}, 6, SR_ERR_FORMAT, "over-long"},
      /* version 2 (items only) */
      {"v2 no count", {2}, 1, SR_ERR_TRUNCATED, "count"},
      {"v2 count cut", {2, 0x80}, 2, SR_ERR_TRUNCATED, "count"},
      {"v2 count over-long", {2, 0x80, 0x00}, 3, SR_ERR_FORMAT, "over-long"},
      {"v2 count > bytes", {2, 3, 1, 2}, 4, SR_ERR_FORMAT, "count 3"},
      {"v2 count > bytes by one", {2, 4, 1, 2, 3}, 5, SR_ERR_FORMAT, "at least 1 bytes"},
      {"v2 count huge", {2, 0xff, 0xff, 0xff, 0xff, 0x0f, 0, 1, 2}, 9, SR_ERR_FORMAT, "count"},
      {"v2 count 2^32",
       {2, 0x80, 0x80, 0x80, 0x80, 0x10, 0, 1, 2, 3, 4, 5, 6},
       13,
       SR_ERR_FORMAT,
       "count 4294967296"},
      {"v2 item cut", {2, 2, 5, 0x86}, 4, SR_ERR_TRUNCATED, "item"},
      {"v2 truncated", {2, 3, 5, 6, 0x87, 0x80}, 6, SR_ERR_TRUNCATED, "item"},
      {"v2 item = n_items", {2, 1, 10}, 3, SR_ERR_FORMAT, "item 10"},
      {"v2 item huge", {2, 1, 0xff, 0xff, 0xff, 0xff, 0x0f}, 7, SR_ERR_FORMAT, "item 4294967295"},
      {"v2 item 2^31", {2, 1, 0x80, 0x80, 0x80, 0x80, 0x08}, 7, SR_ERR_FORMAT, "item 2147483648"},
      {"v2 item overflow",
       {2, 1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f},
       12,
       SR_ERR_FORMAT,
       "overflow"},
      {"v2 item over-long", {2, 1, 0x85, 0x00}, 4, SR_ERR_FORMAT, "over-long"},
      {"v2 bad item later", {2, 3, 1, 2, 11}, 5, SR_ERR_FORMAT, "entry 2"},
      {"v2 duplicate", {2, 2, 5, 5}, 4, SR_ERR_FORMAT, "twice"},
      {"v2 duplicate later", {2, 3, 5, 6, 5}, 5, SR_ERR_FORMAT, "entry 2"},
  };
  sr_seen_conf_t cs[2] = {conf(0, 100), conf(TIMED, 100)}; /* decoded into either mode */
  sr_seen_t s;
  sr_seen_init(&s);
  for (size_t i = 0; i < 2 * SR_ARRAY_SIZE(bad); i++) {
    const sr_seen_conf_t c = cs[i & 1];
    const bad_t *bad_i = &bad[i / 2];
    for (int k = 0; k < 100; k++)
      sr_seen_add(&s, &c, k, k); /* full, with index */
    char err[256] = "";
    size_t used = 77;
    uint32_t dropped = 77;
    sr_err_t e = sr_seen_deserialize(&s, &c, 10, 5, bad_i->bytes, bad_i->len, &used, &dropped, err,
                                     sizeof(err));
    T_ASSERT_MSG(e == bad_i->err, "%s (%s): %s (%s), expected %s", bad_i->name,
                 c.window_ms ? "window" : "window 0", sr_err2name(e), err, sr_err2name(bad_i->err));
    T_ASSERT_MSG(strstr(err, bad_i->needle) != NULL, "%s: '%s' lacks '%s'", bad_i->name, err,
                 bad_i->needle);
    T_ASSERT_MSG(sr_seen_count(&s) == 0 && sr_seen_bytes(&s) == 0 && !s.log && !s.index,
                 "%s: set not left empty", bad_i->name);
    T_EQ_INT(used, 0);
    T_EQ_INT(dropped, 0);
    /* errstr may be NULL */
    T_EQ_INT(sr_seen_deserialize(&s, &c, 10, 5, bad_i->bytes, bad_i->len, NULL, NULL, NULL, 0),
             bad_i->err);
  }
  for (int m = 0; m < 2; m++) {
    const sr_seen_conf_t c = cs[m];
    /* NULL input */
    T_EQ_INT(sr_seen_deserialize(&s, &c, 10, 0, NULL, 0, NULL, NULL, NULL, 0), SR_ERR_TRUNCATED);
    /* no catalogue: only the empty set decodes */
    const unsigned char empty[] = {1, 0}, one[] = {1, 1, 0, 0};
    const unsigned char empty2[] = {2, 0}, one2[] = {2, 1, 0};
    T_EQ_INT(sr_seen_deserialize(&s, &c, 0, 0, empty, 2, NULL, NULL, NULL, 0), SR_OK);
    T_EQ_INT(sr_seen_deserialize(&s, &c, 0, 0, one, 4, NULL, NULL, NULL, 0), SR_ERR_FORMAT);
    T_EQ_INT(sr_seen_deserialize(&s, &c, -5, 0, one, 4, NULL, NULL, NULL, 0), SR_ERR_FORMAT);
    T_EQ_INT(sr_seen_deserialize(&s, &c, 1, 0, one, 4, NULL, NULL, NULL, 0), SR_OK);
    T_EQ_INT(sr_seen_count(&s), 1);
    T_EQ_INT(sr_seen_deserialize(&s, &c, 0, 0, empty2, 2, NULL, NULL, NULL, 0), SR_OK);
    T_EQ_INT(sr_seen_deserialize(&s, &c, 0, 0, one2, 3, NULL, NULL, NULL, 0), SR_ERR_FORMAT);
    T_EQ_INT(sr_seen_deserialize(&s, &c, -5, 0, one2, 3, NULL, NULL, NULL, 0), SR_ERR_FORMAT);
    T_EQ_INT(sr_seen_deserialize(&s, &c, 1, 0, one2, 3, NULL, NULL, NULL, 0), SR_OK);
    T_EQ_INT(sr_seen_count(&s), 1);
    /* the count check: exactly 1 byte per entry is enough for version 2, 2 for version 1 */
    const unsigned char v2full[] = {2, 3, 1, 2, 3}, v1short[] = {1, 2, 1, 0, 2};
    size_t used = 0;
    T_EQ_INT(sr_seen_deserialize(&s, &c, 10, 0, v2full, 5, &used, NULL, NULL, 0), SR_OK);
    T_EQ_INT(used, 5);
    T_EQ_INT(sr_seen_deserialize(&s, &c, 10, 0, v1short, 5, &used, NULL, NULL, 0), SR_ERR_FORMAT);
    sr_seen_clear(&s);
  }
}

/* A duplicate among >= INDEX_MIN entries (the bitmap path), also among
 * entries the bound would drop, and every proper prefix of valid encodings. */
TEST(malformed_large_and_prefixes) {
  sr_seen_conf_t c = conf(TIMED, 10000), c10 = conf(TIMED, 10), c0 = conf(0, 10000),
                 c010 = conf(0, 10);
  sr_seen_t s, r;
  sr_seen_init(&s);
  sr_seen_init(&r);
  sr_buf_t b;
  sr_buf_init(&b);
  for (int i = 0; i < 200; i++)
    sr_seen_add(&s, &c, 1000 + i, 1000 + i);
  sr_seen_serialize(&s, &b);
  /* turn entry 150's item (1150: 2-byte varint 0xfe 0x08) into entry 3's (1003) */
  size_t pos = 1 + 2; /* version, count (200 = 2 bytes) */
  for (int i = 0; i < 150; i++)
    pos += 2 + (i ? 1 : 2); /* item 2 bytes, time delta 1 (first 2) */
  T_ASSERT(b.data[pos] == (unsigned char)((1150 & 0x7f) | 0x80) && b.data[pos + 1] == 1150 >> 7);
  b.data[pos] = (unsigned char)((1003 & 0x7f) | 0x80);
  b.data[pos + 1] = 1003 >> 7;
  char err[256] = "";
  for (int m = 0; m < 2; m++) { /* into either mode */
    err[0] = 0;
    T_EQ_INT(
        sr_seen_deserialize(&r, m ? &c0 : &c, 5000, 0, b.data, b.len, NULL, NULL, err, sizeof(err)),
        SR_ERR_FORMAT);
    T_ASSERT_MSG(strstr(err, "entry 150") && strstr(err, "twice"), "%s", err);
    T_EQ_INT(sr_seen_count(&r), 0);
    /* entry 3 would be dropped by a bound of 10: still refused */
    T_EQ_INT(sr_seen_deserialize(&r, m ? &c010 : &c10, 5000, 0, b.data, b.len, NULL, NULL, NULL, 0),
             SR_ERR_FORMAT);
    T_EQ_INT(sr_seen_bytes(&r), 0);
  }
  /* the same in version 2: 200 items 1000.. in arrival order, 2 bytes each */
  sr_seen_clear(&s);
  for (int i = 0; i < 200; i++)
    sr_seen_add(&s, &c0, 1000 + i, 0);
  sr_buf_reset(&b);
  sr_seen_serialize(&s, &b);
  T_EQ_INT(b.len, 1 + 2 + 200 * 2);
  pos = 1 + 2 + 150 * 2;
  T_ASSERT(b.data[0] == 2 && b.data[pos] == (unsigned char)((1150 & 0x7f) | 0x80) &&
           b.data[pos + 1] == 1150 >> 7);
  b.data[pos] = (unsigned char)((1003 & 0x7f) | 0x80);
  b.data[pos + 1] = 1003 >> 7;
  for (int m = 0; m < 2; m++) {
    err[0] = 0;
    T_EQ_INT(
        sr_seen_deserialize(&r, m ? &c0 : &c, 5000, 0, b.data, b.len, NULL, NULL, err, sizeof(err)),
        SR_ERR_FORMAT);
    T_ASSERT_MSG(strstr(err, "entry 150") && strstr(err, "twice"), "%s", err);
    T_EQ_INT(sr_seen_deserialize(&r, m ? &c010 : &c10, 5000, 0, b.data, b.len, NULL, NULL, NULL, 0),
             SR_ERR_FORMAT);
    T_EQ_INT(sr_seen_bytes(&r), 0);
  }
  /* an item outside the catalogue among them */
  b.data[pos] = 0xff;
  b.data[pos + 1] = 0x7f; /* 16383 */
  err[0] = 0;
  T_EQ_INT(sr_seen_deserialize(&r, &c0, 5000, 0, b.data, b.len, NULL, NULL, err, sizeof(err)),
           SR_ERR_FORMAT);
  T_ASSERT_MSG(strstr(err, "entry 150") && strstr(err, "item 16383"), "%s", err);

  /* every proper prefix of a valid encoding (small and indexed, both
   * versions) is refused, decoded into either mode */
  for (int round = 0; round < 4; round++) {
    const sr_seen_conf_t *fc = round & 2 ? &c0 : &c;
    sr_seen_clear(&s);
    int n = round & 1 ? 100 : 5;
    for (int i = 0; i < n; i++)
      sr_seen_add(&s, fc, (int32_t)(rnd() % 100000), (int64_t)rnd() % 1000000000);
    sr_buf_reset(&b);
    sr_seen_serialize(&s, &b);
    T_EQ_INT(b.data[0], round & 2 ? 2 : 1);
    for (int m = 0; m < 2; m++) {
      const sr_seen_conf_t *dc = m ? &c0 : &c;
      for (size_t len = 0; len < b.len; len++) {
        sr_err_t e = sr_seen_deserialize(&r, dc, 100000, 0, b.data, len, NULL, NULL, NULL, 0);
        T_ASSERT_MSG(e == SR_ERR_TRUNCATED || e == SR_ERR_FORMAT, "prefix %zu of %zu: %s", len,
                     b.len, sr_err2name(e));
        T_ASSERT(sr_seen_count(&r) == 0 && sr_seen_bytes(&r) == 0);
      }
      T_EQ_INT(sr_seen_deserialize(&r, dc, 100000, 0, b.data, b.len, NULL, NULL, NULL, 0), SR_OK);
      T_EQ_INT(sr_seen_count(&r), sr_seen_count(&s));
    }
  }
  /* deserialize replaces what the set held */
  sr_seen_clear(&s);
  sr_seen_add(&s, &c, 1, 1);
  sr_buf_reset(&b);
  sr_seen_serialize(&s, &b);
  T_EQ_INT(sr_seen_deserialize(&r, &c, 10, 0, b.data, b.len, NULL, NULL, NULL, 0), SR_OK);
  T_EQ_INT(sr_seen_count(&r), 1);
  T_EQ_INT(sr_seen_has(&r, 1), 1);
  sr_buf_free(&b);
  sr_seen_clear(&s);
  sr_seen_clear(&r);
}

TEST_MAIN(RUN(defaults); RUN(conf_check); RUN(parse_types); RUN(add_has_count);
          RUN(reconsume_keeps_one_entry); RUN(reconsume_items_only); RUN(out_of_order_insert);
          RUN(bound_drops_oldest); RUN(bound_items_only); RUN(window_boundary); RUN(apply_rules);
          RUN(index_threshold); RUN(random_vs_reference); RUN(sorted_ascending);
          RUN(bytes_grow_and_clear); RUN(items_only_bytes); RUN(convert_items_only_to_times);
          RUN(encoding_golden); RUN(round_trip); RUN(decode_across_modes);
          RUN(restore_smaller_max_keeps_newest); RUN(malformed); RUN(malformed_large_and_prefixes))
