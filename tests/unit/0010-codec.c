/*
 * 0010-decode: the Confluent/Avro codec (src/decode/decode.c).
 *
 * Round trips assert every field; error paths assert the code and the errstr
 * reason; hand-written byte strings (computed from the Avro spec, not from
 * our encoder) pin the wire format. Malformed bodies are built with the tiny
 * spec writer below (m_*), which is independent of the code under test.
 */
#include <float.h>
#include <limits.h>
#include <stdint.h>

#include "streamrec/codec.h"
#include "test.h"

/* ---- spec writer: Avro binary encoding by the book ---- */
typedef struct {
  unsigned char b[8192];
  size_t n;
} msg_t;

static void m_raw(msg_t *m, const void *p, size_t n) {
  memcpy(m->b + m->n, p, n);
  m->n += n;
}
static void m_byte(msg_t *m, unsigned c) { m->b[m->n++] = (unsigned char)c; }
static void m_hdr(msg_t *m, int32_t id) {
  m->n = 0;
  m_byte(m, 0);
  for (int s = 24; s >= 0; s -= 8)
    m_byte(m, ((uint32_t)id >> s) & 0xff);
}
static void m_long(msg_t *m, int64_t v) {
  uint64_t z = ((uint64_t)v << 1) ^ (v < 0 ? ~0ULL : 0);
  do {
    m_byte(m, (z & 0x7f) | (z > 0x7f ? 0x80 : 0));
    z >>= 7;
  } while (z);
}
static void m_str(msg_t *m, const char *s) {
  m_long(m, (int64_t)strlen(s));
  m_raw(m, s, strlen(s));
}
static void m_float(msg_t *m, float f) {
  uint32_t u;
  memcpy(&u, &f, 4);
  for (int i = 0; i < 4; i++)
    m_byte(m, (u >> (8 * i)) & 0xff);
}
static void m_event(msg_t *m, const char *eid, const char *uid, const char *iid, int type,
                    float value, int64_t ts, const char *scen) {
  m_hdr(m, SR_DEFAULT_EVENT_SCHEMA_ID);
  m_str(m, eid);
  m_str(m, uid);
  m_str(m, iid);
  m_long(m, type);
  m_float(m, value);
  m_long(m, ts);
  m_str(m, scen);
}
/* Recommendation fields after items. */
static void m_rec_tail(msg_t *m) {
  m_str(m, "mv");
  m_str(m, "ev");
  m_long(m, 3);
  m_long(m, 4);
  m_long(m, 5);
  m_long(m, 6);
}
static void m_item(msg_t *m, const char *id, float s, float p, int ex) {
  m_str(m, id);
  m_float(m, s);
  m_float(m, p);
  m_byte(m, (unsigned)ex);
}

static int has(const char *hay, const char *needle) { return strstr(hay, needle) != NULL; }

#define NEW_CODEC(c)                                                                               \
  char errstr[512] = "";                                                                           \
  sr_codec_t *c =                                                                                  \
      sr_codec_new(SR_DEFAULT_EVENT_SCHEMA_ID, SR_DEFAULT_REC_SCHEMA_ID, errstr, sizeof(errstr));  \
  T_ASSERT_MSG(c, "sr_codec_new: %s", errstr)

/* Decodes m as an event expecting err, and errstr containing why. */
#define EXPECT_EV_ERR(c, m, err, why)                                                              \
  do {                                                                                             \
    sr_event_t e_;                                                                                 \
    errstr[0] = 0;                                                                                 \
    sr_err_t r_ = sr_codec_decode_event(c, (m)->b, (m)->n, &e_, errstr, sizeof(errstr));           \
    T_ASSERT_MSG(r_ == (err), "got %s (%s), expected %s", sr_err2name(r_), errstr,                 \
                 sr_err2name(err));                                                                \
    T_ASSERT_MSG(has(errstr, why), "errstr \"%s\" lacks \"%s\"", errstr, why);                     \
  } while (0)
#define EXPECT_REC_ERR(c, m, err, why)                                                             \
  do {                                                                                             \
    sr_rec_t r__;                                                                                  \
    errstr[0] = 0;                                                                                 \
    sr_err_t r_ = sr_codec_decode_rec(c, (m)->b, (m)->n, &r__, errstr, sizeof(errstr));            \
    T_ASSERT_MSG(r_ == (err), "got %s (%s), expected %s", sr_err2name(r_), errstr,                 \
                 sr_err2name(err));                                                                \
    T_ASSERT_MSG(has(errstr, why), "errstr \"%s\" lacks \"%s\"", errstr, why);                     \
  } while (0)

/* ---- round trips ---- */

TEST(event_roundtrip) {
  NEW_CODEC(c);
  sr_buf_t out;
  sr_buf_init(&out);
  static const int64_t ts[] = {1732361400123LL, 0, -1, INT64_MIN, INT64_MAX};
  for (int t = 0; t < SR_EV__CNT; t++) {
    sr_event_t in = {SR_STR("évènement-1"), SR_STR("ユーザー-ü"), SR_STR("商品🎧"),
                     (sr_event_type_t)t,    4.5f - (float)t,      ts[t % 5],
                     SR_STR("首页")};
    sr_event_t ev;
    sr_buf_reset(&out);
    T_EQ_INT(sr_codec_encode_event(c, &in, &out), SR_OK);
    T_EQ_INT(sr_codec_decode_event(c, out.data, out.len, &ev, errstr, sizeof(errstr)), SR_OK);
    T_EQ_SLICE(ev.event_id, "évènement-1");
    T_EQ_SLICE(ev.user_id, "ユーザー-ü");
    T_EQ_SLICE(ev.item_id, "商品🎧");
    T_EQ_INT(ev.type, t);
    T_ASSERT(ev.value == 4.5f - (float)t);
    T_EQ_INT(ev.ts_ms, ts[t % 5]);
    T_EQ_SLICE(ev.scenario, "首页");
  }
  /* empty scenario and empty event_id; out is appended to, not reset */
  sr_event_t a = {SR_STR(""), SR_STR("u1"), SR_STR("i1"), SR_EV_RATE, FLT_MAX, 7, SR_STR("")};
  sr_event_t b = {SR_STR("e2"), SR_STR("u2"), SR_STR("i2"), SR_EV_SKIP, -0.0f, 8, SR_STR("s")};
  sr_event_t ev;
  sr_buf_reset(&out);
  T_EQ_INT(sr_codec_encode_event(c, &a, &out), SR_OK);
  size_t first = out.len;
  T_EQ_INT(sr_codec_encode_event(c, &b, &out), SR_OK);
  T_ASSERT(out.len > first);
  T_EQ_INT(sr_codec_decode_event(c, out.data, first, &ev, errstr, sizeof(errstr)), SR_OK);
  T_EQ_SLICE(ev.event_id, "");
  T_EQ_SLICE(ev.user_id, "u1");
  T_EQ_SLICE(ev.scenario, "default");
  T_ASSERT(ev.value == FLT_MAX);
  T_EQ_INT(sr_codec_decode_event(c, out.data + first, out.len - first, &ev, errstr, sizeof(errstr)),
           SR_OK);
  T_EQ_SLICE(ev.event_id, "e2");
  T_EQ_SLICE(ev.item_id, "i2");
  T_EQ_INT(ev.type, SR_EV_SKIP);
  T_EQ_INT(ev.ts_ms, 8);
  T_EQ_SLICE(ev.scenario, "s");
  sr_buf_free(&out);
  sr_codec_destroy(c);
}

static void fill_items(sr_rec_item_t *items, char (*ids)[32], int k) {
  for (int i = 0; i < k; i++) {
    snprintf(ids[i], sizeof(ids[i]), "item-%03d-é", i);
    items[i] = (sr_rec_item_t){sr_str_cstr(ids[i]), 100.0f - 0.5f * (float)i, (float)(i % 8) / 8.0f,
                               i % 3 == 0};
  }
}

TEST(rec_roundtrip) {
  NEW_CODEC(c);
  sr_buf_t out;
  sr_buf_init(&out);
  static sr_rec_item_t items[100];
  static char ids[100][32];
  fill_items(items, ids, 100);
  /* K = 100, then 0 (empty array), then 3: exercises the encoder's element reuse. */
  static const int ks[] = {100, 0, 3, 100, 100};
  for (size_t n = 0; n < SR_ARRAY_SIZE(ks); n++) {
    int k = ks[n];
    sr_rec_t in = {SR_STR("ユーザー"),
                   SR_STR("首页"),
                   items,
                   k,
                   SR_STR("als-2024-11"),
                   SR_STR("ev-ü-1"),
                   n % 2 ? INT32_MIN : INT32_MAX,
                   INT64_MAX,
                   -1,
                   1732361400200LL};
    sr_rec_t r;
    sr_buf_reset(&out);
    T_EQ_INT(sr_codec_encode_rec(c, &in, &out), SR_OK);
    T_EQ_INT(sr_codec_decode_rec(c, out.data, out.len, &r, errstr, sizeof(errstr)), SR_OK);
    T_EQ_SLICE(r.user_id, "ユーザー");
    T_EQ_SLICE(r.scenario, "首页");
    T_EQ_SLICE(r.model_version, "als-2024-11");
    T_EQ_SLICE(r.source_event_id, "ev-ü-1");
    T_EQ_INT(r.source_partition, n % 2 ? INT32_MIN : INT32_MAX);
    T_EQ_INT(r.source_offset, INT64_MAX);
    T_EQ_INT(r.event_time, -1);
    T_EQ_INT(r.produced_at, 1732361400200LL);
    T_EQ_INT(r.n_items, k);
    for (int i = 0; i < k; i++) {
      T_EQ_SLICE(r.items[i].item_id, ids[i]);
      T_ASSERT(r.items[i].score == 100.0f - 0.5f * (float)i);
      T_ASSERT(r.items[i].propensity == (float)(i % 8) / 8.0f);
      T_EQ_INT(r.items[i].explore, i % 3 == 0);
    }
  }
  /* empty scenario decodes as "default"; explore != 0 encodes as true */
  sr_rec_item_t one = {SR_STR("x"), 1, 1, 42};
  sr_rec_t in = {SR_STR("u"), SR_STR(""), &one, 1, SR_STR(""), SR_STR(""), 0, 0, 0, 0}, r;
  sr_buf_reset(&out);
  T_EQ_INT(sr_codec_encode_rec(c, &in, &out), SR_OK);
  T_EQ_INT(sr_codec_decode_rec(c, out.data, out.len, &r, errstr, sizeof(errstr)), SR_OK);
  T_EQ_SLICE(r.scenario, "default");
  T_EQ_SLICE(r.model_version, "");
  T_EQ_INT(r.items[0].explore, 1);
  sr_buf_free(&out);
  sr_codec_destroy(c);
}

/* ---- wire format pinned by hand from the Avro 1.11 spec ---- */

TEST(event_bytes_by_hand) {
  NEW_CODEC(c);
  /* event_id "e1", user_id "u", item_id "i", type CLICK (index 1), value 1.0,
   * timestamp 1000, scenario "s".
   * strings: zigzag(len) then bytes: len 2 -> 0x04, len 1 -> 0x02.
   * enum index 1 -> zigzag 2 -> 0x02.  float 1.0 = 0x3f800000, little endian.
   * long 1000 -> zigzag 2000 = 0b1111_1010000 -> 0xd0 0x0f. */
  static const unsigned char want[] = {0x00, 0x00, 0x00, 0x00, 0x01, /* magic, id 1 */
                                       0x04, 'e',  '1',  0x02, 'u',  0x02, 'i',  0x02,
                                       0x00, 0x00, 0x80, 0x3f, 0xd0, 0x0f, 0x02, 's'};
  sr_event_t in = {SR_STR("e1"), SR_STR("u"), SR_STR("i"), SR_EV_CLICK, 1.0f, 1000, SR_STR("s")};
  sr_buf_t out;
  sr_buf_init(&out);
  T_EQ_INT(sr_codec_encode_event(c, &in, &out), SR_OK);
  T_EQ_INT(out.len, sizeof(want));
  T_ASSERT(!memcmp(out.data, want, sizeof(want)));
  sr_event_t ev;
  T_EQ_INT(sr_codec_decode_event(c, want, sizeof(want), &ev, errstr, sizeof(errstr)), SR_OK);
  T_EQ_SLICE(ev.event_id, "e1");
  T_EQ_INT(ev.type, SR_EV_CLICK);
  T_ASSERT(ev.value == 1.0f);
  T_EQ_INT(ev.ts_ms, 1000);
  /* timestamp -65 -> zigzag 129 -> 0x81 0x01; a non-canonical zero varint
   * (0x80 0x00) is still valid Avro and decodes as 0. */
  unsigned char b[sizeof(want)];
  memcpy(b, want, sizeof(want));
  b[17] = 0x81, b[18] = 0x01;
  T_EQ_INT(sr_codec_decode_event(c, b, sizeof(b), &ev, errstr, sizeof(errstr)), SR_OK);
  T_EQ_INT(ev.ts_ms, -65);
  b[17] = 0x80, b[18] = 0x00;
  T_EQ_INT(sr_codec_decode_event(c, b, sizeof(b), &ev, errstr, sizeof(errstr)), SR_OK);
  T_EQ_INT(ev.ts_ms, 0);
  sr_buf_free(&out);
  sr_codec_destroy(c);
}

TEST(rec_bytes_by_hand) {
  NEW_CODEC(c);
  /* user "u", scenario "s", items [{"a", 0.5, 0.25, true}], model "m",
   * source event "e", partition -1 (zigzag 1), offset 3 (zigzag 6),
   * event_time 0, produced_at 1 (zigzag 2). Arrays: block count 1 (0x02),
   * the items, then count 0. float 0.5 = 0x3f000000, 0.25 = 0x3e800000. */
  static const unsigned char want[] = {0x00, 0x00, 0x00, 0x00, 0x02, 0x02, 'u',  0x02, 's',  0x02,
                                       0x02, 'a',  0x00, 0x00, 0x00, 0x3f, 0x00, 0x00, 0x80, 0x3e,
                                       0x01, 0x00, 0x02, 'm',  0x02, 'e',  0x01, 0x06, 0x00, 0x02};
  sr_rec_item_t it = {SR_STR("a"), 0.5f, 0.25f, 1};
  sr_rec_t in = {SR_STR("u"), SR_STR("s"), &it, 1, SR_STR("m"), SR_STR("e"), -1, 3, 0, 1}, r;
  sr_buf_t out;
  sr_buf_init(&out);
  T_EQ_INT(sr_codec_encode_rec(c, &in, &out), SR_OK);
  T_EQ_INT(out.len, sizeof(want));
  T_ASSERT(!memcmp(out.data, want, sizeof(want)));
  /* The same array as two blocks, the second in the negative-count form
   * (count -1 -> zigzag 1, then its byte size 11 -> zigzag 22 = 0x16). */
  msg_t m;
  m_hdr(&m, 2);
  m_str(&m, "u");
  m_str(&m, "s");
  m_long(&m, 1);
  m_item(&m, "a", 0.5f, 0.25f, 1);
  m_byte(&m, 0x01);
  m_byte(&m, 0x16);
  m_item(&m, "b", 2.0f, 0.125f, 0);
  m_long(&m, 0);
  m_rec_tail(&m);
  T_EQ_INT(sr_codec_decode_rec(c, m.b, m.n, &r, errstr, sizeof(errstr)), SR_OK);
  T_EQ_INT(r.n_items, 2);
  T_EQ_SLICE(r.items[0].item_id, "a");
  T_EQ_SLICE(r.items[1].item_id, "b");
  T_ASSERT(r.items[1].score == 2.0f && r.items[1].propensity == 0.125f);
  T_EQ_INT(r.items[1].explore, 0);
  T_EQ_SLICE(r.model_version, "mv");
  T_EQ_INT(r.source_partition, 3);
  T_EQ_INT(r.produced_at, 6);
  sr_buf_free(&out);
  sr_codec_destroy(c);
}

/* ---- framing ---- */

TEST(framing_errors) {
  NEW_CODEC(c);
  msg_t m;
  m_event(&m, "e", "u", "i", 0, 0, 0, "s");
  sr_event_t ev;
  sr_rec_t r;
  for (size_t n = 0; n < 5; n++) {
    T_EQ_INT(sr_codec_decode_event(c, m.b, n, &ev, errstr, sizeof(errstr)), SR_ERR_BAD_FRAMING);
    T_ASSERT_MSG(has(errstr, "shorter than the 5-byte Confluent header"), "%s", errstr);
    T_EQ_INT(sr_codec_decode_rec(c, m.b, n, &r, errstr, sizeof(errstr)), SR_ERR_BAD_FRAMING);
  }
  T_EQ_INT(sr_codec_decode_event(c, NULL, 0, &ev, errstr, sizeof(errstr)), SR_ERR_BAD_FRAMING);
  T_EQ_INT(sr_codec_decode_event(c, NULL, 10, &ev, errstr, sizeof(errstr)), SR_ERR_INVALID_ARG);
  T_EQ_INT(sr_codec_decode_event(NULL, m.b, m.n, &ev, errstr, sizeof(errstr)), SR_ERR_INVALID_ARG);
  /* JSON where Avro was expected */
  msg_t j = {.n = 0};
  m_raw(&j, "{\"user_id\":\"u\"}", 15);
  EXPECT_EV_ERR(c, &j, SR_ERR_BAD_FRAMING, "bad magic byte 0x7b");
  m.b[0] = 1;
  EXPECT_EV_ERR(c, &m, SR_ERR_BAD_FRAMING, "bad magic byte 0x01");
  m.b[0] = 0;
  /* schema ids: 9, the Recommendation id on the event path and vice versa, negative */
  m.b[4] = 9;
  EXPECT_EV_ERR(c, &m, SR_ERR_UNKNOWN_SCHEMA, "schema id 9 is not the UserEvent schema id 1");
  m.b[4] = 2;
  EXPECT_EV_ERR(c, &m, SR_ERR_UNKNOWN_SCHEMA, "schema id 2 is not the UserEvent schema id 1");
  m.b[4] = 1;
  EXPECT_REC_ERR(c, &m, SR_ERR_UNKNOWN_SCHEMA, "schema id 1 is not the Recommendation schema id 2");
  m.b[1] = 0xff;
  EXPECT_EV_ERR(c, &m, SR_ERR_UNKNOWN_SCHEMA, "schema id -16777215 is not");
  /* errstr may be NULL */
  T_EQ_INT(sr_codec_decode_event(c, m.b, m.n, &ev, NULL, 0), SR_ERR_UNKNOWN_SCHEMA);
  sr_codec_destroy(c);
}

TEST(custom_schema_ids) {
  char errstr[256];
  sr_codec_t *c = sr_codec_new(100042, 7, errstr, sizeof(errstr));
  T_ASSERT_MSG(c, "%s", errstr);
  sr_event_t in = {SR_STR("e"), SR_STR("u"), SR_STR("i"), SR_EV_VIEW, 0, 0, SR_STR("")}, ev;
  sr_buf_t out;
  sr_buf_init(&out);
  T_EQ_INT(sr_codec_encode_event(c, &in, &out), SR_OK);
  static const unsigned char hdr[] = {0, 0x00, 0x01, 0x86, 0xca}; /* 100042 = 0x000186ca */
  T_ASSERT(!memcmp(out.data, hdr, 5));
  T_EQ_INT(sr_codec_decode_event(c, out.data, out.len, &ev, errstr, sizeof(errstr)), SR_OK);
  T_EQ_SLICE(ev.user_id, "u");
  sr_buf_free(&out);
  sr_codec_destroy(c);
}

/* ---- body validation ---- */

TEST(truncated_everywhere) {
  NEW_CODEC(c);
  sr_buf_t out;
  sr_buf_init(&out);
  sr_event_t in = {SR_STR("evt-123"), SR_STR("ユーザー"), SR_STR("item"), SR_EV_PURCHASE, 2.5f,
                   1732361400123LL,   SR_STR("home")},
             ev;
  T_EQ_INT(sr_codec_encode_event(c, &in, &out), SR_OK);
  for (size_t n = 0; n < out.len; n++) {
    sr_err_t want = n < 5 ? SR_ERR_BAD_FRAMING : SR_ERR_BAD_AVRO;
    sr_err_t got = sr_codec_decode_event(c, out.data, n, &ev, errstr, sizeof(errstr));
    T_ASSERT_MSG(got == want, "event cut at %zu/%zu: %s (%s)", n, out.len, sr_err2name(got),
                 errstr);
  }
  sr_rec_item_t items[3] = {
      {SR_STR("a"), 1, 0.5f, 0}, {SR_STR("bb"), 2, 0.25f, 1}, {SR_STR("ccc"), 3, 0.125f, 0}};
  sr_rec_t rin = {SR_STR("u"), SR_STR("s"), items,     3, SR_STR("m"),
                  SR_STR("e"), 300,         1LL << 40, 5, 6},
           r;
  sr_buf_reset(&out);
  T_EQ_INT(sr_codec_encode_rec(c, &rin, &out), SR_OK);
  for (size_t n = 0; n < out.len; n++) {
    sr_err_t want = n < 5 ? SR_ERR_BAD_FRAMING : SR_ERR_BAD_AVRO;
    sr_err_t got = sr_codec_decode_rec(c, out.data, n, &r, errstr, sizeof(errstr));
    T_ASSERT_MSG(got == want, "rec cut at %zu/%zu: %s (%s)", n, out.len, sr_err2name(got), errstr);
  }
  /* and the whole thing still decodes */
  T_EQ_INT(sr_codec_decode_rec(c, out.data, out.len, &r, errstr, sizeof(errstr)), SR_OK);
  T_EQ_SLICE(r.items[2].item_id, "ccc");
  sr_buf_free(&out);
  sr_codec_destroy(c);
}

TEST(string_lengths) {
  NEW_CODEC(c);
  msg_t m;
  m_hdr(&m, 1);
  m_long(&m, -1); /* event_id length -1 */
  m_raw(&m, "xxxxxxxxxxxxxxxxxxxx", 20);
  EXPECT_EV_ERR(c, &m, SR_ERR_BAD_AVRO, "event_id: negative string length -1");

  m_hdr(&m, 1);
  m_str(&m, "e");
  m_long(&m, 123456); /* user_id; 3 varint bytes, then 10 bytes */
  m_raw(&m, "0123456789", 10);
  EXPECT_EV_ERR(c, &m, SR_ERR_BAD_AVRO, "user_id: string length 123456 exceeds remaining 10 bytes");

  m_hdr(&m, 1);
  m_str(&m, "e");
  m_str(&m, "u");
  m_long(&m, INT64_MAX); /* item_id */
  m_raw(&m, "abc", 3);
  EXPECT_EV_ERR(c, &m, SR_ERR_BAD_AVRO,
                "item_id: string length 9223372036854775807 exceeds remaining 3 bytes");

  m_hdr(&m, 1);
  m_long(&m, INT64_MIN);
  EXPECT_EV_ERR(c, &m, SR_ERR_BAD_AVRO, "event_id: negative string length -9223372036854775808");

  /* varints: 11 bytes, and a 10th byte carrying bits past 64 */
  m_hdr(&m, 1);
  for (int i = 0; i < 10; i++)
    m_byte(&m, 0x80);
  m_byte(&m, 0x00);
  EXPECT_EV_ERR(c, &m, SR_ERR_BAD_AVRO, "event_id: varint longer than 10 bytes");
  m_hdr(&m, 1);
  for (int i = 0; i < 9; i++)
    m_byte(&m, 0xff);
  m_byte(&m, 0x02);
  EXPECT_EV_ERR(c, &m, SR_ERR_BAD_AVRO, "event_id: varint overflows 64 bits");
  sr_codec_destroy(c);
}

TEST(bad_enum_and_values) {
  NEW_CODEC(c);
  msg_t m;
  m_event(&m, "e", "u", "i", 8, 0, 0, "s");
  EXPECT_EV_ERR(c, &m, SR_ERR_BAD_AVRO, "type: enum index 8 out of range 0..7");
  m_event(&m, "e", "u", "i", -1, 0, 0, "s");
  EXPECT_EV_ERR(c, &m, SR_ERR_BAD_AVRO, "type: enum index -1 out of range 0..7");
  m_event(&m, "e", "u", "i", 7, 0, 0, "s");
  sr_event_t ev;
  T_EQ_INT(sr_codec_decode_event(c, m.b, m.n, &ev, errstr, sizeof(errstr)), SR_OK);
  T_EQ_INT(ev.type, SR_EV_FORGET);

  /* float cut short: header + 3 strings + enum + 2 of 4 float bytes */
  m_hdr(&m, 1);
  m_str(&m, "e");
  m_str(&m, "u");
  m_str(&m, "i");
  m_long(&m, 0);
  m_byte(&m, 0);
  m_byte(&m, 0);
  EXPECT_EV_ERR(c, &m, SR_ERR_BAD_AVRO, "value: float needs 4 bytes, 2 remain");

  /* int varint for source_partition: 6 bytes, and 5 bytes overflowing 32 bits */
  m_hdr(&m, 2);
  m_str(&m, "u");
  m_str(&m, "s");
  m_long(&m, 0);
  m_str(&m, "m");
  m_str(&m, "e");
  size_t at = m.n;
  m_raw(&m, "\x80\x80\x80\x80\x80\x00", 6);
  m_long(&m, 0), m_long(&m, 0), m_long(&m, 0);
  EXPECT_REC_ERR(c, &m, SR_ERR_BAD_AVRO, "source_partition: varint longer than 5 bytes");
  m.n = at;
  m_raw(&m, "\xff\xff\xff\xff\x1f", 5);
  m_long(&m, 0), m_long(&m, 0), m_long(&m, 0);
  EXPECT_REC_ERR(c, &m, SR_ERR_BAD_AVRO, "source_partition: varint overflows 32 bits");
  m.n = at;
  m_raw(&m, "\xfe\xff\xff\xff\x0f", 5); /* zigzag 0xfffffffe = INT32_MAX */
  m_long(&m, 0), m_long(&m, 0), m_long(&m, 0);
  sr_rec_t r;
  T_EQ_INT(sr_codec_decode_rec(c, m.b, m.n, &r, errstr, sizeof(errstr)), SR_OK);
  T_EQ_INT(r.source_partition, INT32_MAX);

  /* boolean byte 2 in items[1].explore */
  m_hdr(&m, 2);
  m_str(&m, "u");
  m_str(&m, "s");
  m_long(&m, 2);
  m_item(&m, "a", 1, 1, 1);
  m_item(&m, "b", 1, 1, 2);
  m_long(&m, 0);
  m_rec_tail(&m);
  EXPECT_REC_ERR(c, &m, SR_ERR_BAD_AVRO, "items[1].explore: boolean byte 0x02 is not 0 or 1");
  sr_codec_destroy(c);
}

TEST(trailing_bytes) {
  NEW_CODEC(c);
  msg_t m;
  m_event(&m, "e", "u", "i", 0, 0, 0, "s");
  m_raw(&m, "abc", 3);
  EXPECT_EV_ERR(c, &m, SR_ERR_BAD_AVRO, "trailing 3 bytes after record");
  m_hdr(&m, 2);
  m_str(&m, "u");
  m_str(&m, "s");
  m_long(&m, 0);
  m_rec_tail(&m);
  m_byte(&m, 0);
  EXPECT_REC_ERR(c, &m, SR_ERR_BAD_AVRO, "trailing 1 bytes after record");
  sr_codec_destroy(c);
}

TEST(array_blocks) {
  NEW_CODEC(c);
  msg_t m;
  /* a block count far beyond what the bytes could hold (Avro C would loop on it) */
  m_hdr(&m, 2);
  m_str(&m, "u");
  m_str(&m, "s");
  m_long(&m, 1LL << 62);
  m_item(&m, "a", 1, 1, 1);
  m_long(&m, 0);
  m_rec_tail(&m);
  EXPECT_REC_ERR(c, &m, SR_ERR_BAD_AVRO,
                 "items: array block count 4611686018427387904 exceeds what 22 remaining bytes");
  /* three items need at least 30 bytes: 22 are left */
  m_hdr(&m, 2);
  m_str(&m, "u");
  m_str(&m, "s");
  m_long(&m, 3);
  m_item(&m, "a", 1, 1, 1);
  m_long(&m, 0);
  m_rec_tail(&m);
  EXPECT_REC_ERR(c, &m, SR_ERR_BAD_AVRO,
                 "items: array block count 3 exceeds what 22 remaining bytes can hold");
  /* negative count: INT64_MIN, a negative byte size, a size that lies */
  m_hdr(&m, 2);
  m_str(&m, "u");
  m_str(&m, "s");
  size_t at = m.n;
  m_long(&m, INT64_MIN);
  m_long(&m, 10);
  m_item(&m, "a", 1, 1, 1);
  m_long(&m, 0);
  m_rec_tail(&m);
  EXPECT_REC_ERR(c, &m, SR_ERR_BAD_AVRO,
                 "items: array block count -9223372036854775808 out of range");
  m.n = at;
  m_long(&m, -1);
  m_long(&m, -10);
  m_item(&m, "a", 1, 1, 1);
  m_long(&m, 0);
  m_rec_tail(&m);
  EXPECT_REC_ERR(c, &m, SR_ERR_BAD_AVRO, "items: array block byte size -10 out of range");
  m.n = at;
  m_long(&m, -1);
  m_long(&m, 12);
  m_item(&m, "a", 1, 1, 1);
  m_long(&m, 0);
  m_rec_tail(&m);
  EXPECT_REC_ERR(c, &m, SR_ERR_BAD_AVRO,
                 "items: array block byte size 12 does not match its 11 bytes of items");
  /* a bad string inside an item names the item */
  m.n = at;
  m_long(&m, 3);
  m_item(&m, "a", 1, 1, 1);
  m_item(&m, "b", 1, 1, 1);
  m_long(&m, 50);
  m_raw(&m, "0123456789", 10);
  m_long(&m, 0);
  m_rec_tail(&m);
  EXPECT_REC_ERR(c, &m, SR_ERR_BAD_AVRO, "items[2].item_id: string length 50 exceeds remaining");
  sr_codec_destroy(c);
}

TEST(missing_fields) {
  NEW_CODEC(c);
  msg_t m;
  sr_event_t ev;
  m_event(&m, "e", "", "i", 0, 0, 0, "s");
  EXPECT_EV_ERR(c, &m, SR_ERR_MISSING_FIELD, "user_id is empty");
  m_event(&m, "e", "u", "", 0, 0, 0, "s");
  EXPECT_EV_ERR(c, &m, SR_ERR_MISSING_FIELD, "item_id is empty");
  m_event(&m, "", "u", "i", 0, 0, 0, "");
  T_EQ_INT(sr_codec_decode_event(c, m.b, m.n, &ev, errstr, sizeof(errstr)), SR_OK);
  T_EQ_SLICE(ev.scenario, "default");
  T_EQ_SLICE(ev.event_id, "");

  m_hdr(&m, 2);
  m_str(&m, "");
  m_str(&m, "s");
  m_long(&m, 0);
  m_rec_tail(&m);
  EXPECT_REC_ERR(c, &m, SR_ERR_MISSING_FIELD, "user_id is empty");
  m_hdr(&m, 2);
  m_str(&m, "u");
  m_str(&m, "");
  m_long(&m, 2);
  m_item(&m, "a", 1, 1, 1);
  m_item(&m, "", 1, 1, 1);
  m_long(&m, 0);
  m_rec_tail(&m);
  EXPECT_REC_ERR(c, &m, SR_ERR_MISSING_FIELD, "items[1].item_id is empty");

  /* the encoder refuses what the decoder would refuse, and leaves out alone */
  sr_buf_t out;
  sr_buf_init(&out);
  sr_buf_append(&out, "xy", 2);
  sr_event_t bad = {SR_STR("e"), SR_STR(""), SR_STR("i"), SR_EV_VIEW, 0, 0, SR_STR("")};
  T_EQ_INT(sr_codec_encode_event(c, &bad, &out), SR_ERR_MISSING_FIELD);
  bad.user_id = SR_STR("u"), bad.item_id = SR_STR("");
  T_EQ_INT(sr_codec_encode_event(c, &bad, &out), SR_ERR_MISSING_FIELD);
  bad.item_id = SR_STR("i"), bad.type = SR_EV__CNT;
  T_EQ_INT(sr_codec_encode_event(c, &bad, &out), SR_ERR_INVALID_ARG);
  bad.type = (sr_event_type_t)-1;
  T_EQ_INT(sr_codec_encode_event(c, &bad, &out), SR_ERR_INVALID_ARG);
  sr_rec_item_t it = {SR_STR(""), 0, 0, 0};
  sr_rec_t rb = {SR_STR("u"), SR_STR(""), &it, 1, SR_STR(""), SR_STR(""), 0, 0, 0, 0};
  T_EQ_INT(sr_codec_encode_rec(c, &rb, &out), SR_ERR_MISSING_FIELD);
  rb.items = NULL;
  T_EQ_INT(sr_codec_encode_rec(c, &rb, &out), SR_ERR_INVALID_ARG);
  rb.n_items = -1;
  T_EQ_INT(sr_codec_encode_rec(c, &rb, &out), SR_ERR_INVALID_ARG);
  T_EQ_INT(out.len, 2);
  sr_buf_free(&out);
  sr_codec_destroy(c);
}

/* Errors leave the codec usable, and every failure path keeps the next decode right. */
TEST(keeps_working_after_errors) {
  NEW_CODEC(c);
  msg_t good, bad;
  sr_event_t ev;
  sr_rec_t r;
  for (int round = 0; round < 50; round++) {
    char uid[32];
    snprintf(uid, sizeof(uid), "user-%d", round);
    m_event(&good, "e", uid, "item", round % 8, (float)round, round, "");
    switch (round % 5) {
    case 0: m_event(&bad, "e", "u", "i", 99, 0, 0, ""); break;
    case 1: bad = good, bad.n -= 1; break;
    case 2: bad = good, bad.b[0] = 0x7b; break;
    case 3: m_event(&bad, "e", "", "i", 0, 0, 0, ""); break;
    case 4: bad = good, m_raw(&bad, "zz", 2); break;
    }
    T_ASSERT(sr_codec_decode_event(c, bad.b, bad.n, &ev, errstr, sizeof(errstr)) != SR_OK);
    T_ASSERT(sr_codec_decode_rec(c, good.b, good.n, &r, errstr, sizeof(errstr)) != SR_OK);
    T_EQ_INT(sr_codec_decode_event(c, good.b, good.n, &ev, errstr, sizeof(errstr)), SR_OK);
    T_EQ_SLICE(ev.user_id, uid);
    T_EQ_SLICE(ev.item_id, "item");
    T_EQ_INT(ev.type, round % 8);
    T_ASSERT(ev.value == (float)round);
    T_EQ_INT(ev.ts_ms, round);
    T_EQ_SLICE(ev.scenario, "default");
  }
  sr_codec_destroy(c);
}

TEST(schema_json) {
  T_ASSERT(has(sr_codec_event_schema_json(), "\"UserEvent\""));
  T_ASSERT(has(sr_codec_event_schema_json(), "\"FORGET\""));
  T_ASSERT(has(sr_codec_rec_schema_json(), "\"Recommendation\""));
  T_ASSERT(has(sr_codec_rec_schema_json(), "\"RecItem\""));
  sr_codec_destroy(NULL);
}

/* Avro strings are UTF-8: invalid sequences are refused with the field and
 * byte position; valid multi-byte text passes. */
TEST(invalid_utf8) {
  char es[256];
  sr_codec_t *c = sr_codec_new(1, 2, es, sizeof(es));
  T_ASSERT(c);
  static const struct {
    const char *bytes;
    int ok;
  } cases[] = {
      {"plain", 1},
      {"caf\xc3\xa9", 1},
      {"\xe2\x82\xac", 1},
      {"\xf0\x9f\x98\x80", 1},
      {"bad\xff", 0},
      {"\xc0\xaf", 0}, /* overlong '/' */
      {"\xed\xa0\x80", 0},
      /* surrogate */ {"\xe2\x82", 0}, /* truncated */
      {"\xf4\x90\x80\x80", 0},         /* > U+10FFFF */
  };
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    /* framing, event_id "e", user_id = case, item_id "i", VIEW, 0.0f, ts 1, scenario "" */
    unsigned char buf[64];
    size_t n = 0, ul = strlen(cases[i].bytes);
    const unsigned char head[] = {0, 0, 0, 0, 1, 2, 'e'};
    memcpy(buf, head, sizeof(head));
    n = sizeof(head);
    buf[n++] = (unsigned char)(ul * 2);
    memcpy(buf + n, cases[i].bytes, ul);
    n += ul;
    const unsigned char tail[] = {2, 'i', 0, 0, 0, 0, 0, 2, 0};
    memcpy(buf + n, tail, sizeof(tail));
    n += sizeof(tail);
    sr_event_t ev;
    sr_err_t e = sr_codec_decode_event(c, buf, n, &ev, es, sizeof(es));
    if (cases[i].ok) {
      T_ASSERT_MSG(e == SR_OK, "case %zu: %s", i, es);
      T_EQ_INT(ev.user_id.len, ul);
    } else {
      T_ASSERT_MSG(e == SR_ERR_BAD_AVRO, "case %zu accepted", i);
      T_ASSERT_MSG(strstr(es, "user_id: invalid UTF-8") != NULL, "case %zu: %s", i, es);
    }
  }
  sr_codec_destroy(c);
}

TEST_MAIN(RUN(invalid_utf8); RUN(event_roundtrip); RUN(rec_roundtrip); RUN(event_bytes_by_hand);
          RUN(rec_bytes_by_hand); RUN(framing_errors); RUN(custom_schema_ids);
          RUN(truncated_everywhere); RUN(string_lengths); RUN(bad_enum_and_values);
          RUN(trailing_bytes); RUN(array_blocks); RUN(missing_fields);
          RUN(keeps_working_after_errors); RUN(schema_json))
