/*
 * 0021-seen: the per-user seen set (src/seen). The rules one by one (which
 * types consume, re-consumption, the bound with in- and out-of-order
 * times, the window at its exact boundary, FORGET, unknown items), the
 * index threshold and its hysteresis, long random event sequences checked
 * step by step against a naive reference implementation of the same rules,
 * memory accounting, the changelog encoding (a golden byte string, round
 * trips with and without the index, a smaller bound on restore, every
 * malformed case and every truncation), and the option parsers.
 *
 * A few checks look at the private index field (white box): they pin down
 * when the index exists, which the public API cannot observe.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "streamrec/seen.h"
#include "test.h"

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

/* ---- naive reference: a plain array ordered by time, same rules ---- */
typedef struct ref_s {
  int32_t *item;
  int64_t *t;
  uint32_t n;
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
static int ref_apply(ref_t *r, const sr_seen_conf_t *c, sr_event_type_t type, int32_t item,
                     int64_t ts, int64_t clock) {
  int dropped = 0;
  if (type == SR_EV_FORGET) {
    r->n = 0;
    return 0;
  }
  if (item >= 0 && sr_seen_consumes(c, type)) {
    uint32_t q = 0;
    while (q < r->n && r->item[q] != item)
      q++;
    if (q < r->n) {
      int64_t t = r->t[q] > ts ? r->t[q] : ts;
      ref_remove(r, q);
      ref_insert(r, item, t);
    } else {
      while (r->n >= c->max) {
        ref_remove(r, 0);
        dropped++;
      }
      ref_insert(r, item, ts);
    }
  }
  if (c->window_ms > 0)
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
  sr_seen_conf_t c = conf(0, 100);
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
  const int64_t ts[] = {100, 200, 300};
  T_ASSERT(entries_are(&s, it, ts, 3));
  int32_t sorted[3];
  T_EQ_INT(sr_seen_sorted(&s, sorted), 3);
  T_EQ_INT(sorted[0], 0);
  T_EQ_INT(sorted[1], 3);
  T_EQ_INT(sorted[2], 7);
  int32_t only[3];
  T_EQ_INT(sr_seen_entries(&s, only, NULL), 3); /* ts may be NULL */
  T_EQ_INT(only[2], 0);
  sr_seen_clear(&s);
  T_EQ_INT(sr_seen_count(&s), 0);
  T_EQ_INT(sr_seen_has(&s, 7), 0);
  T_EQ_INT(sr_seen_sorted(&s, sorted), 0);
}

TEST(reconsume_keeps_one_entry) {
  sr_seen_conf_t c = conf(0, 100);
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

TEST(out_of_order_insert) {
  sr_seen_conf_t c = conf(0, 100);
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
}

TEST(bound_drops_oldest) {
  sr_seen_conf_t c = conf(0, 3);
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
  sr_seen_conf_t c1 = conf(0, 1);
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
  sr_seen_conf_t c5 = conf(0, 5);
  int drops = 0;
  for (int i = 0; i < 1000; i++)
    drops += sr_seen_add(&s, &c5, i, i);
  T_EQ_INT(drops, 995);
  const int32_t it[] = {995, 996, 997, 998, 999};
  const int64_t ts[] = {995, 996, 997, 998, 999};
  T_ASSERT(entries_are(&s, it, ts, 5));
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
  /* window 0: nothing ever expires */
  sr_seen_conf_t c0 = conf(0, 100);
  sr_seen_add(&s, &c0, 1, INT64_MIN);
  T_EQ_INT(sr_seen_expire(&s, &c0, INT64_MAX), 0);
  T_EQ_INT(sr_seen_count(&s), 1);
  /* extreme clocks do not overflow */
  T_EQ_INT(sr_seen_expire(&s, &c, INT64_MIN), 0);
  T_EQ_INT(sr_seen_expire(&s, &c, INT64_MIN + 999), 0);
  T_EQ_INT(sr_seen_expire(&s, &c, INT64_MIN + 1000), 1); /* limit == INT64_MIN == its time */
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
  sr_seen_conf_t c = conf(0, 1000);
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
}

/* Runs n_steps random events through the set and the reference with conf c,
 * comparing after every step (count, membership of the event's item, the
 * drop count) and every `every` steps everything (entries with times,
 * sorted items, a has() for random items). */
static int random_vs_reference(const sr_seen_conf_t *c, int n_items, int n_steps, int every,
                               int forget_per_million, int *builds, int *saw_drop) {
  sr_seen_t s;
  ref_t r;
  sr_seen_init(&s);
  r.item = malloc((c->max + 1) * sizeof(int32_t));
  r.t = malloc((c->max + 1) * sizeof(int64_t));
  r.n = 0;
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
    const void *had_index = s.index;
    int d1 = sr_seen_apply(&s, c, type, item, ts, clock);
    int d2 = ref_apply(&r, c, type, item, ts, clock);
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
      if (r.n && sr_seen_bytes(&s) < (size_t)r.n * 12) goto out;
    }
  }
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
    const char *types; /* NULL: defaults */
    int min_builds;    /* index builds the sequence must reach */
    int drops;         /* whether the bound must drop */
  } cases[] = {
      {0, 1000, 20, NULL, 1, 1},       /* the bound at work */
      {120000, 1000, 20, NULL, 1, 1},  /* bound and window together */
      {2200, 1000, 50, NULL, 3, 0},    /* window only, around the index thresholds */
      {0, 50, 1000, NULL, 0, 1},       /* a bound below INDEX_MIN: never an index */
      {0, 70, 100, NULL, 2, 1},        /* a bound just past INDEX_MIN */
      {20000, 10000, 0, "VIEW", 1, 0}, /* one consuming type */
  };
  for (size_t i = 0; i < SR_ARRAY_SIZE(cases); i++) {
    sr_seen_conf_t c = conf(cases[i].window, cases[i].max);
    if (cases[i].types) T_EQ_INT(sr_seen_parse_types(cases[i].types, &c.types, NULL, 0), SR_OK);
    T_EQ_INT(sr_seen_conf_check(&c, NULL, 0), SR_OK);
    int builds = 0, saw_drop = 0;
    T_ASSERT_MSG(random_vs_reference(&c, 5000, 100000, 7, cases[i].forget_ppm, &builds, &saw_drop),
                 "case %zu differs from the reference", i);
    /* the sequences do reach what they are meant to exercise */
    fprintf(stderr, "  case %zu: %d index builds, drops %d\n", i, builds, saw_drop);
    T_ASSERT_MSG(cases[i].min_builds ? builds >= cases[i].min_builds : builds == 0,
                 "case %zu: %d index builds", i, builds);
    T_EQ_INT(saw_drop, cases[i].drops);
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
  sr_seen_conf_t c = conf(0, 1000);
  sr_seen_t s;
  sr_seen_init(&s);
  T_EQ_INT(sr_seen_bytes(&s), 0);
  sr_seen_add(&s, &c, 1, 1);
  T_EQ_INT(sr_seen_bytes(&s), 8 + 16 + 32); /* header + 4 items + 4 times */
  size_t prev = sr_seen_bytes(&s);
  for (int i = 2; i <= 1000; i++) {
    sr_seen_add(&s, &c, i * 5, i);
    size_t b = sr_seen_bytes(&s);
    T_ASSERT_MSG(b >= prev, "bytes shrank at %d: %zu -> %zu", i, prev, b);
    if (i == 4) T_EQ_INT(b, 8 + 16 + 32);     /* capacity 4, full */
    if (i == 5) T_EQ_INT(b, 8 + 32 + 64);     /* doubled to 8 */
    if (i == 63) T_EQ_INT(b, 8 + 256 + 512);  /* capacity 64, no index yet */
    if (i == 64) T_ASSERT(b > 8 + 256 + 512); /* + the index */
    prev = b;
  }
  /* capacity doublings 4..512, then clamped to max = 1000 entries */
  T_ASSERT(prev >= 8 + 1000 * 12);
  T_ASSERT(prev < 1000 * 12 + 4096); /* + the index for 1000 items under 2^16 */
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

/* ---- serialisation ---- */

TEST(encoding_golden) {
  sr_seen_conf_t c = conf(0, 100);
  sr_seen_t s;
  sr_buf_t b;
  sr_seen_init(&s);
  sr_buf_init(&b);
  sr_seen_serialize(&s, &b);
  T_EQ_INT(b.len, 2);
  T_ASSERT(b.data[0] == 1 && b.data[1] == 0);
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
  T_EQ_INT(sr_seen_deserialize(&s, &c, 1000, b.data, b.len, &used, &dropped, NULL, 0), SR_OK);
  T_EQ_INT(used, sizeof(want)); /* trailing bytes are the caller's */
  T_EQ_INT(dropped, 0);
  const int32_t it[] = {5, 3, 7};
  const int64_t ts[] = {1000, 1000, 1130};
  T_ASSERT(entries_are(&s, it, ts, 3));
  T_EQ_INT(sr_seen_deserialize(&s, &c, 1000, b.data + at, b.len - at, &used, NULL, NULL, 0), SR_OK);
  const int32_t it2[] = {0, 300};
  const int64_t ts2[] = {-1, 0};
  T_ASSERT(entries_are(&s, it2, ts2, 2));
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
  if (sr_seen_deserialize(&r, c, n_items, b1.data, b1.len, &used, &dropped, err, sizeof(err)) !=
      SR_OK) {
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

TEST(round_trip) {
  sr_seen_conf_t c = conf(0, 10000);
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
  T_EQ_INT(sr_seen_deserialize(&r, &c, INT32_MAX - 1, b.data, b.len, NULL, NULL, NULL, 0),
           SR_ERR_FORMAT);
  T_EQ_INT(sr_seen_count(&r), 0);
  sr_buf_free(&b);
  sr_seen_clear(&s);
}

TEST(restore_smaller_max_keeps_newest) {
  sr_seen_conf_t big = conf(0, 1000);
  sr_seen_t s, r;
  sr_seen_init(&s);
  sr_seen_init(&r);
  for (int i = 0; i < 500; i++)
    sr_seen_add(&s, &big, 499 - i, 10 * i);
  sr_buf_t b;
  sr_buf_init(&b);
  sr_seen_serialize(&s, &b);
  const uint32_t maxes[] = {1, 10, 40, 64, 100, 499, 500, 501};
  for (size_t k = 0; k < SR_ARRAY_SIZE(maxes); k++) {
    sr_seen_conf_t c = conf(0, maxes[k]);
    uint32_t dropped = 12345;
    size_t used = 0;
    T_EQ_INT(sr_seen_deserialize(&r, &c, 500, b.data, b.len, &used, &dropped, NULL, 0), SR_OK);
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
      T_EQ_INT(ts[i], 10 * j);
    }
    T_EQ_INT(sr_seen_has(&r, 499 - (500 - (int)keep)), 1);
    if (keep < 500) T_EQ_INT(sr_seen_has(&r, 499 - (500 - (int)keep) + 1), 0);
    T_ASSERT(sr_seen_bytes(&r) <= 8 + (size_t)keep * 12 + 8 + 4096); /* sized to keep */
    /* a restored set keeps working under its bound */
    T_EQ_INT(sr_seen_add(&r, &c, 10000, 1000000), keep == maxes[k] ? 1 : 0);
    T_EQ_INT(sr_seen_has(&r, 10000), 1);
  }
  sr_buf_free(&b);
  sr_seen_clear(&s);
  sr_seen_clear(&r);
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
      {"version 2", {2, 0}, 2, SR_ERR_VERSION, "version 2"},
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
  };
  sr_seen_conf_t c = conf(0, 100);
  sr_seen_t s;
  sr_seen_init(&s);
  for (size_t i = 0; i < SR_ARRAY_SIZE(bad); i++) {
    for (int k = 0; k < 100; k++)
      sr_seen_add(&s, &c, k, k); /* full, with index */
    char err[256] = "";
    size_t used = 77;
    uint32_t dropped = 77;
    sr_err_t e = sr_seen_deserialize(&s, &c, 10, bad[i].bytes, bad[i].len, &used, &dropped, err,
                                     sizeof(err));
    T_ASSERT_MSG(e == bad[i].err, "%s: %s (%s), expected %s", bad[i].name, sr_err2name(e), err,
                 sr_err2name(bad[i].err));
    T_ASSERT_MSG(strstr(err, bad[i].needle) != NULL, "%s: '%s' lacks '%s'", bad[i].name, err,
                 bad[i].needle);
    T_ASSERT_MSG(sr_seen_count(&s) == 0 && sr_seen_bytes(&s) == 0 && !s.log && !s.index,
                 "%s: set not left empty", bad[i].name);
    T_EQ_INT(used, 0);
    T_EQ_INT(dropped, 0);
    /* errstr may be NULL */
    T_EQ_INT(sr_seen_deserialize(&s, &c, 10, bad[i].bytes, bad[i].len, NULL, NULL, NULL, 0),
             bad[i].err);
  }
  /* NULL input */
  T_EQ_INT(sr_seen_deserialize(&s, &c, 10, NULL, 0, NULL, NULL, NULL, 0), SR_ERR_TRUNCATED);
  /* no catalogue: only the empty set decodes */
  const unsigned char empty[] = {1, 0}, one[] = {1, 1, 0, 0};
  T_EQ_INT(sr_seen_deserialize(&s, &c, 0, empty, 2, NULL, NULL, NULL, 0), SR_OK);
  T_EQ_INT(sr_seen_deserialize(&s, &c, 0, one, 4, NULL, NULL, NULL, 0), SR_ERR_FORMAT);
  T_EQ_INT(sr_seen_deserialize(&s, &c, -5, one, 4, NULL, NULL, NULL, 0), SR_ERR_FORMAT);
  T_EQ_INT(sr_seen_deserialize(&s, &c, 1, one, 4, NULL, NULL, NULL, 0), SR_OK);
  T_EQ_INT(sr_seen_count(&s), 1);
  sr_seen_clear(&s);
}

/* A duplicate among >= INDEX_MIN entries (the bitmap path), also among
 * entries the bound would drop, and every proper prefix of valid encodings. */
TEST(malformed_large_and_prefixes) {
  sr_seen_conf_t c = conf(0, 10000), c10 = conf(0, 10);
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
  T_EQ_INT(sr_seen_deserialize(&r, &c, 5000, b.data, b.len, NULL, NULL, err, sizeof(err)),
           SR_ERR_FORMAT);
  T_ASSERT_MSG(strstr(err, "entry 150") && strstr(err, "twice"), "%s", err);
  T_EQ_INT(sr_seen_count(&r), 0);
  /* entry 3 would be dropped by a bound of 10: still refused */
  T_EQ_INT(sr_seen_deserialize(&r, &c10, 5000, b.data, b.len, NULL, NULL, NULL, 0), SR_ERR_FORMAT);
  T_EQ_INT(sr_seen_bytes(&r), 0);

  /* every proper prefix of a valid encoding (small and indexed) is refused */
  for (int round = 0; round < 2; round++) {
    sr_seen_clear(&s);
    int n = round ? 100 : 5;
    for (int i = 0; i < n; i++)
      sr_seen_add(&s, &c, (int32_t)(rnd() % 100000), (int64_t)rnd() % 1000000000);
    sr_buf_reset(&b);
    sr_seen_serialize(&s, &b);
    for (size_t len = 0; len < b.len; len++) {
      sr_err_t e = sr_seen_deserialize(&r, &c, 100000, b.data, len, NULL, NULL, NULL, 0);
      T_ASSERT_MSG(e == SR_ERR_TRUNCATED || e == SR_ERR_FORMAT, "prefix %zu of %zu: %s", len, b.len,
                   sr_err2name(e));
      T_ASSERT(sr_seen_count(&r) == 0 && sr_seen_bytes(&r) == 0);
    }
    T_EQ_INT(sr_seen_deserialize(&r, &c, 100000, b.data, b.len, NULL, NULL, NULL, 0), SR_OK);
    T_EQ_INT(sr_seen_count(&r), sr_seen_count(&s));
  }
  /* deserialize replaces what the set held */
  sr_seen_clear(&s);
  sr_seen_add(&s, &c, 1, 1);
  sr_buf_reset(&b);
  sr_seen_serialize(&s, &b);
  T_EQ_INT(sr_seen_deserialize(&r, &c, 10, b.data, b.len, NULL, NULL, NULL, 0), SR_OK);
  T_EQ_INT(sr_seen_count(&r), 1);
  T_EQ_INT(sr_seen_has(&r, 1), 1);
  sr_buf_free(&b);
  sr_seen_clear(&s);
  sr_seen_clear(&r);
}

TEST_MAIN(RUN(defaults); RUN(conf_check); RUN(parse_types); RUN(add_has_count);
          RUN(reconsume_keeps_one_entry); RUN(out_of_order_insert); RUN(bound_drops_oldest);
          RUN(window_boundary); RUN(apply_rules); RUN(index_threshold); RUN(random_vs_reference);
          RUN(sorted_ascending); RUN(bytes_grow_and_clear); RUN(encoding_golden); RUN(round_trip);
          RUN(restore_smaller_max_keeps_newest); RUN(malformed); RUN(malformed_large_and_prefixes))
