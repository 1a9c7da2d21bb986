/*
 * 0050 snapshot: bit-exact round trip of parameters, ids and the training
 * summary; deterministic version strings; and refusal (never a crash) of
 * every single-byte corruption, every truncation, bad magic, a future
 * format version, lying lengths behind a valid checksum, and missing files;
 * the content rules behind a valid checksum (docs/SNAPSHOT.md,
 * "Validation": finite and bounded parameters, the kinds' ranges, item ids,
 * the version string), the same rules in the writer, non-regular files
 * (a FIFO must not hang the loader), the in-memory loader, a model too big
 * for memory reported as NOMEM, and the escaping of Prometheus label
 * values.
 */
#include <fcntl.h>
#include <malloc.h>
#include <signal.h>
#include <stdint.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <xxhash.h>

#include "model/model_int.h"
#include "streamrec/metrics.h"
#include "streamrec/snapshot.h"
#include "test.h"

#define HDR 136 /* docs/SNAPSHOT.md */

static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;
static float frand(void) {
  rng_state ^= rng_state << 13;
  rng_state ^= rng_state >> 7;
  rng_state ^= rng_state << 17;
  return (float)((rng_state >> 40) * (1.0 / 8388608.0)) - 1.0f;
}

/* 20 items with ids of varied length (one empty-free UTF-8, one long). */
static sr_model_t *make_model(int n, int d) {
  static char buf[64][300];
  sr_str_t ids[64];
  for (int i = 0; i < n; i++) {
    if (i == 3)
      snprintf(buf[i], sizeof(buf[i]), "caf\xc3\xa9-%d", i);
    else if (i == 7) {
      memset(buf[i], 'x', 250);
      buf[i][250] = 0;
    } else
      snprintf(buf[i], sizeof(buf[i]), "movie/%d", i * 37);
    ids[i] = sr_str_cstr(buf[i]);
  }
  char err[256];
  sr_model_t *m = sr_model_new(SR_MODEL_DECAY, d, n, ids, err, sizeof(err));
  if (!m) {
    fprintf(stderr, "sr_model_new: %s\n", err);
    return NULL;
  }
  sr_param_block_t b[SR_MODEL_MAX_BLOCKS];
  int nb = sr_model_params(m, b, SR_MODEL_MAX_BLOCKS);
  for (int i = 0; i < nb; i++)
    for (size_t j = 0; j < b[i].count; j++)
      b[i].data[j] = frand() * 3;
  /* -0 and a subnormal must survive bit-exactly too (NaN is refused) */
  b[0].data[0] = -0.0f;
  b[0].data[1] = 1e-40f;
  sr_model_block(m, "hparams")->data[0] = 0.05f + 0.9f * fabsf(frand()); /* in (0, 1] */
  return m;
}

static void fill_info(sr_snapshot_info_t *info) {
  memset(info, 0, sizeof(*info));
  info->created_ms = 1700000000123LL; /* 2023-11-14T22:13:20.123Z */
  info->train_events = 123456789012ULL;
  info->train_users = 610;
  info->epochs = 7;
  info->train_loss = 6.25f;
  info->valid_metric = 0.0512f;
}

static int read_file(const char *path, unsigned char **buf, size_t *len) {
  char err[256];
  return sr_file_read_all(path, buf, len, err, sizeof(err)) == SR_OK ? 0 : -1;
}

static void write_raw(const char *path, const unsigned char *buf, size_t len) {
  FILE *f = fopen(path, "wb");
  if (!f) abort();
  if (len && fwrite(buf, 1, len, f) != len) abort();
  fclose(f);
}

static void put_u32(unsigned char *p, uint32_t v) {
  for (int i = 0; i < 4; i++)
    p[i] = (unsigned char)(v >> (8 * i));
}
static void put_u64(unsigned char *p, uint64_t v) {
  for (int i = 0; i < 8; i++)
    p[i] = (unsigned char)(v >> (8 * i));
}
/* Recomputes the trailer so that only the structural checks can object. */
static void reseal(unsigned char *buf, size_t len) {
  put_u64(buf + len - 8, XXH64(buf, len - 8, 0));
}

static sr_err_t load_code(const char *path, char *err, size_t errsz) {
  sr_model_t *m = NULL;
  sr_err_t e = sr_snapshot_load(path, &m, NULL, err, errsz);
  if (e == SR_OK)
    sr_model_destroy(m);
  else if (m)
    return SR_ERR_FATAL; /* *mp must stay NULL on error */
  return e;
}

TEST(round_trip) {
  const char *path = t_tmp_path("rt.snap");
  sr_model_t *m = make_model(20, 4);
  T_ASSERT(m != NULL);
  sr_snapshot_info_t info;
  fill_info(&info);
  char err[512] = "";
  sr_err_t e = sr_snapshot_write(m, &info, path, err, sizeof(err));
  T_ASSERT_MSG(e == SR_OK, "write: %s", err);
  T_ASSERT_MSG(strncmp(info.version, "decay-d4-20231114T221320-", 25) == 0 &&
                   strlen(info.version) == 33,
               "version %s", info.version);
  T_EQ_STR(sr_model_version(m), info.version);
  T_EQ_INT(info.format_version, SR_SNAPSHOT_FORMAT_VERSION);
  T_EQ_INT(info.kind, SR_MODEL_DECAY);
  T_EQ_INT(info.dim, 4);
  T_EQ_INT(info.n_items, 20);
  T_ASSERT(info.checksum != 0);

  /* the trailer is XXH64(seed 0) of everything before it */
  unsigned char *raw;
  size_t len;
  T_ASSERT(read_file(path, &raw, &len) == 0);
  T_ASSERT(memcmp(raw, "SRSNAP01", 8) == 0);
  uint64_t tr = 0;
  for (int i = 7; i >= 0; i--)
    tr = tr << 8 | raw[len - 8 + i];
  T_ASSERT(tr == info.checksum);
  T_ASSERT(XXH64(raw, len - 8, 0) == tr);
  free(raw);

  sr_model_t *l = NULL;
  sr_snapshot_info_t li;
  e = sr_snapshot_load(path, &l, &li, err, sizeof(err));
  T_ASSERT_MSG(e == SR_OK, "load: %s", err);
  T_EQ_INT(sr_model_kind(l), SR_MODEL_DECAY);
  T_EQ_INT(sr_model_dim(l), 4);
  T_EQ_INT(sr_model_n_items(l), 20);
  T_EQ_STR(sr_model_version(l), info.version);
  for (int i = 0; i < 20; i++) {
    sr_str_t a = sr_model_item_id(m, i), b = sr_model_item_id(l, i);
    T_ASSERT(sr_str_eq(a, b));
    T_EQ_INT(sr_model_item_lookup(l, a.ptr, a.len), i);
  }
  sr_param_block_t bm[SR_MODEL_MAX_BLOCKS], bl[SR_MODEL_MAX_BLOCKS];
  int nm = sr_model_params(m, bm, SR_MODEL_MAX_BLOCKS);
  T_EQ_INT(sr_model_params(l, bl, SR_MODEL_MAX_BLOCKS), nm);
  for (int i = 0; i < nm; i++) {
    T_EQ_STR(bl[i].name, bm[i].name);
    T_EQ_INT(bl[i].count, bm[i].count);
    T_ASSERT_MSG(memcmp(bl[i].data, bm[i].data, bm[i].count * 4) == 0, "block %s differs",
                 bm[i].name);
  }
  T_EQ_INT(li.format_version, SR_SNAPSHOT_FORMAT_VERSION);
  T_EQ_INT(li.kind, SR_MODEL_DECAY);
  T_EQ_INT(li.dim, 4);
  T_EQ_INT(li.n_items, 20);
  T_EQ_INT(li.created_ms, 1700000000123LL);
  T_ASSERT(li.train_events == 123456789012ULL);
  T_EQ_INT(li.train_users, 610);
  T_EQ_INT(li.epochs, 7);
  T_ASSERT(li.train_loss == 6.25f);
  T_ASSERT(li.valid_metric == 0.0512f);
  T_EQ_STR(li.version, info.version);
  T_ASSERT(li.checksum == info.checksum);

  /* Same model + same summary => same version and same bytes. */
  const char *path2 = t_tmp_path("rt2.snap");
  sr_snapshot_info_t info2;
  fill_info(&info2);
  T_ASSERT(sr_snapshot_write(l, &info2, path2, err, sizeof(err)) == SR_OK);
  T_EQ_STR(info2.version, info.version);
  unsigned char *r1, *r2;
  size_t l1, l2;
  T_ASSERT(read_file(path, &r1, &l1) == 0 && read_file(path2, &r2, &l2) == 0);
  T_ASSERT(l1 == l2 && memcmp(r1, r2, l1) == 0);
  free(r1);
  free(r2);
  /* A different parameter => a different version. */
  sr_model_block(l, "item_bias")->data[5] += 1.0f;
  T_ASSERT(sr_snapshot_write(l, &info2, path2, err, sizeof(err)) == SR_OK);
  T_ASSERT(strcmp(info2.version, info.version) != 0);
  /* NULL info is allowed: created = now, valid metric NaN. */
  T_ASSERT(sr_snapshot_write(l, NULL, path2, err, sizeof(err)) == SR_OK);
  sr_model_destroy(l);
  l = NULL;
  T_ASSERT(sr_snapshot_load(path2, &l, &li, err, sizeof(err)) == SR_OK);
  T_ASSERT(isnan(li.valid_metric));
  T_ASSERT(li.created_ms > 1700000000000LL);
  sr_model_destroy(l);
  sr_model_destroy(m);
  unlink(path);
  unlink(path2);
}

/* Expected refusal for a byte flipped at pos (docs/SNAPSHOT.md). */
static int flip_ok(size_t pos, sr_err_t e) {
  if (pos < 8) return e == SR_ERR_FORMAT;   /* magic */
  if (pos < 12) return e == SR_ERR_VERSION; /* format version */
  if (pos >= 128 && pos < HDR)              /* payload_bytes */
    return e == SR_ERR_CHECKSUM || e == SR_ERR_TRUNCATED;
  return e == SR_ERR_CHECKSUM;
}

TEST(every_byte_flip_is_refused) {
  const char *path = t_tmp_path("flip.snap"), *bad = t_tmp_path("flip-bad.snap");
  sr_model_t *m = make_model(20, 4);
  sr_snapshot_info_t info;
  fill_info(&info);
  char err[512];
  T_ASSERT(sr_snapshot_write(m, &info, path, err, sizeof(err)) == SR_OK);
  sr_model_destroy(m);
  unsigned char *raw;
  size_t len;
  T_ASSERT(read_file(path, &raw, &len) == 0);
  unsigned char *cp = malloc(len);
  for (size_t pos = 0; pos < len; pos++) {
    for (int k = 0; k < 2; k++) {
      memcpy(cp, raw, len);
      cp[pos] ^= k ? 0x01 : 0xFF;
      write_raw(bad, cp, len);
      err[0] = 0;
      sr_err_t e = load_code(bad, err, sizeof(err));
      if (!flip_ok(pos, e)) {
        free(cp);
        free(raw);
        T_FAIL("flip at %zu: got %s (%s)", pos, sr_err2name(e), err);
      }
      if (!strstr(err, bad)) {
        free(cp);
        free(raw);
        T_FAIL("flip at %zu: message does not name the file: %s", pos, err);
      }
      if (e == SR_ERR_CHECKSUM && !strstr(err, "checksum mismatch (file corrupt or truncated)")) {
        free(cp);
        free(raw);
        T_FAIL("flip at %zu: message: %s", pos, err);
      }
    }
  }
  free(cp);
  free(raw);
  unlink(path);
  unlink(bad);
}

TEST(every_truncation_is_refused) {
  const char *path = t_tmp_path("trunc.snap"), *bad = t_tmp_path("trunc-bad.snap");
  sr_model_t *m = make_model(20, 4);
  char err[512];
  T_ASSERT(sr_snapshot_write(m, NULL, path, err, sizeof(err)) == SR_OK);
  sr_model_destroy(m);
  unsigned char *raw;
  size_t len;
  T_ASSERT(read_file(path, &raw, &len) == 0);
  for (size_t l = 0; l < len; l++) {
    write_raw(bad, raw, l);
    sr_err_t e = load_code(bad, err, sizeof(err));
    if (e != SR_ERR_TRUNCATED) {
      free(raw);
      T_FAIL("truncated to %zu of %zu: got %s (%s)", l, len, sr_err2name(e), err);
    }
  }
  /* trailing garbage: the trailer no longer matches */
  unsigned char *big = malloc(len + 3);
  memcpy(big, raw, len);
  memcpy(big + len, "abc", 3);
  write_raw(bad, big, len + 3);
  T_EQ_INT(load_code(bad, err, sizeof(err)), SR_ERR_CHECKSUM);
  free(big);
  free(raw);
  unlink(path);
  unlink(bad);
}

TEST(bad_magic_and_future_version) {
  const char *path = t_tmp_path("magic.snap"), *bad = t_tmp_path("magic-bad.snap");
  sr_model_t *m = make_model(5, 3);
  char err[512];
  T_ASSERT(sr_snapshot_write(m, NULL, path, err, sizeof(err)) == SR_OK);
  sr_model_destroy(m);
  unsigned char *raw;
  size_t len;
  T_ASSERT(read_file(path, &raw, &len) == 0);

  memcpy(raw, "SRSNAP02", 8);
  reseal(raw, len);
  write_raw(bad, raw, len);
  T_EQ_INT(load_code(bad, err, sizeof(err)), SR_ERR_FORMAT);
  T_ASSERT_MSG(strstr(err, "bad magic") && strstr(err, bad), "err: %s", err);

  const char *text = "userId,movieId,rating,timestamp\n1,1,4.0,964982703\n";
  write_raw(bad, (const unsigned char *)text, strlen(text));
  T_EQ_INT(load_code(bad, err, sizeof(err)), SR_ERR_FORMAT);

  memcpy(raw, "SRSNAP01", 8);
  put_u32(raw + 8, 2);
  reseal(raw, len);
  write_raw(bad, raw, len);
  T_EQ_INT(load_code(bad, err, sizeof(err)), SR_ERR_VERSION);
  T_ASSERT_MSG(strstr(err, "version 2") && strstr(err, bad), "err: %s", err);
  free(raw);
  unlink(path);
  unlink(bad);
}

/* Structural lies behind a valid checksum are refused as FORMAT (or MODEL
 * for a kind this build lacks), without large allocations or overreads. */
TEST(lengths_are_checked_after_checksum) {
  const char *path = t_tmp_path("lie.snap"), *bad = t_tmp_path("lie-bad.snap");
  sr_model_t *m = make_model(6, 3);
  char err[512];
  T_ASSERT(sr_snapshot_write(m, NULL, path, err, sizeof(err)) == SR_OK);
  sr_model_destroy(m);
  unsigned char *raw, *cp;
  size_t len;
  T_ASSERT(read_file(path, &raw, &len) == 0);
  cp = malloc(len);
  struct {
    const char *what;
    size_t off;
    int width; /* 4 or 8 */
    uint64_t val;
  } lies[] = {
      {"kind 9", 12, 4, 9},
      {"dim 0", 16, 4, 0},
      {"dim 2^31", 16, 4, 0x80000000u},
      {"dim 2^30", 16, 4, 1u << 30},
      {"dim 4", 16, 4, 4},
      {"n_items 0", 20, 4, 0},
      {"n_items 2^31-1", 20, 4, 0x7fffffffu},
      {"n_items 7", 20, 4, 7},
      {"n_items 5", 20, 4, 5},
      {"n_blocks 4", 124, 4, 4},
      {"n_blocks 2^32-1", 124, 4, 0xffffffffu},
      {"payload +1", 128, 8, len - HDR - 8 + 1},
      {"payload -1", 128, 8, len - HDR - 8 - 1},
      {"payload 2^63", 128, 8, 1ULL << 63},
      {"first id length 2^32-1", HDR, 4, 0xffffffffu},
      {"first id length 1000", HDR, 4, 1000},
      {"first id length 0", HDR, 4, 0},
  };
  for (size_t i = 0; i < SR_ARRAY_SIZE(lies); i++) {
    memcpy(cp, raw, len);
    if (lies[i].width == 4)
      put_u32(cp + lies[i].off, (uint32_t)lies[i].val);
    else
      put_u64(cp + lies[i].off, lies[i].val);
    reseal(cp, len);
    write_raw(bad, cp, len);
    err[0] = 0;
    sr_err_t e = load_code(bad, err, sizeof(err));
    if (e != SR_ERR_FORMAT) {
      free(cp);
      free(raw);
      T_FAIL("%s: got %s (%s)", lies[i].what, sr_err2name(e), err);
    }
  }
  /* a block renamed, and its float count changed */
  size_t off = HDR;
  for (int i = 0; i < 6; i++) {
    uint32_t l = raw[off] | raw[off + 1] << 8 | raw[off + 2] << 16 | (uint32_t)raw[off + 3] << 24;
    off += 4 + l;
  }
  T_ASSERT(memcmp(raw + off + 4, "item_in", 7) == 0);
  memcpy(cp, raw, len);
  cp[off + 4 + 6] = 'x';
  reseal(cp, len);
  write_raw(bad, cp, len);
  T_EQ_INT(load_code(bad, err, sizeof(err)), SR_ERR_FORMAT);
  T_ASSERT_MSG(strstr(err, "item_ix"), "err: %s", err);
  memcpy(cp, raw, len);
  put_u64(cp + off + 4 + 7, 17);
  reseal(cp, len);
  write_raw(bad, cp, len);
  T_EQ_INT(load_code(bad, err, sizeof(err)), SR_ERR_FORMAT);
  memcpy(cp, raw, len);
  put_u32(cp + off, 0xfffffff0u); /* block name length */
  reseal(cp, len);
  write_raw(bad, cp, len);
  T_EQ_INT(load_code(bad, err, sizeof(err)), SR_ERR_FORMAT);
  /* duplicate ids: make id 1 equal to id 0 ("movie/0" vs "movie/37") */
  memcpy(cp, raw, len);
  T_ASSERT(memcmp(cp + HDR + 4, "movie/0", 7) == 0);
  T_ASSERT(memcmp(cp + HDR + 4 + 7 + 4, "movie/37", 8) == 0);
  memcpy(cp + HDR + 4 + 7 + 4, "movie/0\0", 8);
  put_u32(cp + HDR + 4 + 7, 7);
  memmove(cp + HDR + 4 + 7 + 4 + 7, cp + HDR + 4 + 7 + 4 + 8, len - (HDR + 4 + 7 + 4 + 8));
  put_u64(cp + 128, len - 1 - HDR - 8);
  reseal(cp, len - 1);
  write_raw(bad, cp, len - 1);
  T_EQ_INT(load_code(bad, err, sizeof(err)), SR_ERR_FORMAT);
  T_ASSERT_MSG(strstr(err, "duplicate"), "err: %s", err);
  /* unterminated version string */
  memcpy(cp, raw, len);
  memset(cp + 60, 'v', 64);
  reseal(cp, len);
  write_raw(bad, cp, len);
  T_EQ_INT(load_code(bad, err, sizeof(err)), SR_ERR_FORMAT);
  /* the GRU kind: refused as not built, or as a layout mismatch */
  memcpy(cp, raw, len);
  put_u32(cp + 12, SR_MODEL_GRU);
  reseal(cp, len);
  write_raw(bad, cp, len);
  sr_err_t e = load_code(bad, err, sizeof(err));
  T_ASSERT_MSG(e == SR_ERR_MODEL || e == SR_ERR_FORMAT, "gru: %s (%s)", sr_err2name(e), err);
  free(cp);
  free(raw);
  unlink(path);
  unlink(bad);
}

/* ---- content rules (docs/SNAPSHOT.md, "Validation") ---- */

static uint32_t get_u32(const unsigned char *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static uint64_t get_u64(const unsigned char *p) {
  return (uint64_t)get_u32(p) | (uint64_t)get_u32(p + 4) << 32;
}
static void put_f32(unsigned char *p, float f) {
  uint32_t v;
  memcpy(&v, &f, 4);
  put_u32(p, v);
}

/* Offset of the first float of block b in a raw snapshot of n_items items. */
static size_t block_data_off(const unsigned char *raw, uint32_t n_items, int b) {
  size_t off = HDR;
  for (uint32_t i = 0; i < n_items; i++)
    off += 4 + get_u32(raw + off);
  for (int i = 0;; i++) {
    uint32_t nl = get_u32(raw + off);
    size_t data = off + 4 + nl + 8;
    if (i == b) return data;
    off = data + 4 * (size_t)get_u64(raw + off + 4 + nl);
  }
}

/* Offset of the length field of item id i. */
static size_t id_off(const unsigned char *raw, uint32_t i) {
  size_t off = HDR;
  for (uint32_t k = 0; k < i; k++)
    off += 4 + get_u32(raw + off);
  return off;
}

/* A new buffer: raw with [off, off + del) replaced by ins[0..n_ins),
 * payload_bytes fixed up and the trailer recomputed. */
static unsigned char *splice_bytes(const unsigned char *raw, size_t len, size_t off, size_t del,
                                   const void *ins, size_t n_ins, size_t *out_len) {
  size_t nl = len - del + n_ins;
  unsigned char *o = malloc(nl);
  memcpy(o, raw, off);
  memcpy(o + off, ins, n_ins);
  memcpy(o + off + n_ins, raw + off + del, len - off - del);
  put_u64(o + 128, nl - HDR - 8);
  reseal(o, nl);
  *out_len = nl;
  return o;
}

/* Item id i of raw replaced by the n bytes at id. */
static unsigned char *with_id(const unsigned char *raw, size_t len, uint32_t i, const char *id,
                              size_t n, size_t *out_len) {
  size_t off = id_off(raw, i);
  unsigned char *ins = malloc(4 + n);
  put_u32(ins, (uint32_t)n);
  memcpy(ins + 4, id, n);
  unsigned char *o = splice_bytes(raw, len, off, 4 + get_u32(raw + off), ins, 4 + n, out_len);
  free(ins);
  return o;
}

/* A copy of raw with float idx of block b set to v, resealed. */
static unsigned char *with_param(const unsigned char *raw, size_t len, uint32_t n_items, int b,
                                 size_t idx, float v) {
  unsigned char *o = malloc(len);
  memcpy(o, raw, len);
  put_f32(o + block_data_off(o, n_items, b) + 4 * idx, v);
  reseal(o, len);
  return o;
}

static char last_err[512];
static sr_err_t load_buf(const char *path, const unsigned char *buf, size_t len) {
  write_raw(path, buf, len);
  last_err[0] = 0;
  return load_code(path, last_err, sizeof(last_err));
}

/* buf (freed here) written to path must be refused with want, and the
 * message must name the file and contain needle. Prints the message. */
#define T_REFUSED(path, buf, len, want, needle)                                                    \
  do {                                                                                             \
    unsigned char *b_ = (buf);                                                                     \
    sr_err_t e_ = load_buf(path, b_, len);                                                         \
    free(b_);                                                                                      \
    T_ASSERT_MSG(e_ == (want) && strstr(last_err, needle) && strstr(last_err, path),               \
                 "expected %s with \"%s\", got %s: %s", sr_err2name(want), needle,                 \
                 sr_err2name(e_), last_err);                                                       \
    fprintf(stderr, "  refused (%s): %s\n", sr_err2name(e_), last_err);                            \
  } while (0)
#define T_ACCEPTED(path, buf, len)                                                                 \
  do {                                                                                             \
    unsigned char *b_ = (buf);                                                                     \
    sr_err_t e_ = load_buf(path, b_, len);                                                         \
    free(b_);                                                                                      \
    T_ASSERT_MSG(e_ == SR_OK, "expected SR_OK, got %s: %s", sr_err2name(e_), last_err);            \
  } while (0)

/* Well-formed files (valid checksum, valid structure) whose parameters
 * would break serving: NaN/Inf anywhere, an all-NaN bias (empty
 * recommendation lists), huge values, and the decay kind's ranges. */
TEST(decay_parameters_are_validated) {
  const char *path = t_tmp_path("par.snap"), *bad = t_tmp_path("par-bad.snap");
  sr_model_t *m = make_model(6, 3);
  char err[512];
  T_ASSERT_MSG(sr_snapshot_write(m, NULL, path, err, sizeof(err)) == SR_OK, "%s", err);
  sr_model_destroy(m);
  unsigned char *raw;
  size_t len;
  T_ASSERT(read_file(path, &raw, &len) == 0);
  /* blocks: 0 item_in (18), 1 item_out (18), 2 item_bias (6), 3 type_w (8), 4 hparams (1) */
  T_REFUSED(bad, with_param(raw, len, 6, 0, 4, NAN), len, SR_ERR_MODEL,
            "block 0 'item_in' [4] is nan (parameters must be finite)");
  T_REFUSED(bad, with_param(raw, len, 6, 1, 0, INFINITY), len, SR_ERR_MODEL,
            "block 1 'item_out' [0] is inf");
  T_REFUSED(bad, with_param(raw, len, 6, 1, 17, -INFINITY), len, SR_ERR_MODEL,
            "block 1 'item_out' [17] is -inf");
  unsigned char *allnan = malloc(len);
  memcpy(allnan, raw, len);
  for (int i = 0; i < 6; i++)
    put_f32(allnan + block_data_off(raw, 6, 2) + 4 * i, NAN);
  reseal(allnan, len);
  T_REFUSED(bad, allnan, len, SR_ERR_MODEL, "block 2 'item_bias' [0] is nan");
  T_REFUSED(bad, with_param(raw, len, 6, 2, 5, 2e6f), len, SR_ERR_MODEL,
            "block 2 'item_bias' [5] is 2e+06 (|parameter| must be <= 1e+06)");
  T_ACCEPTED(bad, with_param(raw, len, 6, 2, 5, 1e6f), len);
  /* the decay factor: (0, 1] */
  T_REFUSED(bad, with_param(raw, len, 6, 4, 0, 1e30f), len, SR_ERR_MODEL,
            "block 4 'hparams' [0]: decay factor 1.00000002e+30 outside (0, 1]");
  T_REFUSED(bad, with_param(raw, len, 6, 4, 0, nextafterf(1.0f, 2.0f)), len, SR_ERR_MODEL,
            "decay factor 1.00000012 outside (0, 1]");
  T_REFUSED(bad, with_param(raw, len, 6, 4, 0, 0.0f), len, SR_ERR_MODEL, "decay factor 0 outside");
  T_REFUSED(bad, with_param(raw, len, 6, 4, 0, -0.5f), len, SR_ERR_MODEL,
            "decay factor -0.5 outside");
  T_REFUSED(bad, with_param(raw, len, 6, 4, 0, NAN), len, SR_ERR_MODEL, "decay factor nan");
  T_ACCEPTED(bad, with_param(raw, len, 6, 4, 0, 1.0f), len);
  T_ACCEPTED(bad, with_param(raw, len, 6, 4, 0, 1e-6f), len);
  /* type weights: [-100, 100] */
  T_REFUSED(bad, with_param(raw, len, 6, 3, 2, 1e4f), len, SR_ERR_MODEL,
            "block 3 'type_w' [2] (CART): type weight 10000 outside [-100, 100]");
  T_REFUSED(bad, with_param(raw, len, 6, 3, 6, -101.0f), len, SR_ERR_MODEL,
            "[6] (SKIP): type weight -101");
  T_REFUSED(bad, with_param(raw, len, 6, 3, 0, NAN), len, SR_ERR_MODEL, "type weight nan");
  T_ACCEPTED(bad, with_param(raw, len, 6, 3, 6, -100.0f), len);
  free(raw);
  unlink(path);
  unlink(bad);
}

static sr_model_t *make_gru(void) {
  sr_str_t ids[3] = {SR_STR("a"), SR_STR("b"), SR_STR("c")};
  char err[256];
  sr_model_t *m = sr_model_new(SR_MODEL_GRU, 2, 3, ids, err, sizeof(err));
  if (!m) return NULL;
  sr_param_block_t b[SR_MODEL_MAX_BLOCKS];
  int nb = sr_model_params(m, b, SR_MODEL_MAX_BLOCKS);
  for (int i = 0; i < nb; i++)
    for (size_t j = 0; j < b[i].count; j++)
      b[i].data[j] = frand() * 0.5f;
  float *hp = sr_model_block(m, "hparams")->data;
  hp[0] = 1.0f, hp[1] = hp[2] = hp[3] = 0.0f;
  return m;
}

TEST(gru_parameters_are_validated) {
  const char *path = t_tmp_path("gru.snap"), *bad = t_tmp_path("gru-bad.snap");
  sr_model_t *m = make_gru();
  if (!m) {
    fprintf(stderr, "SKIP gru_parameters_are_validated: gru kind not built\n");
    return;
  }
  char err[512];
  T_ASSERT_MSG(sr_snapshot_write(m, NULL, path, err, sizeof(err)) == SR_OK, "%s", err);
  sr_model_destroy(m);
  unsigned char *raw;
  size_t len;
  T_ASSERT(read_file(path, &raw, &len) == 0);
  /* blocks: 0 item_in, 1 item_out, 2 item_bias, 3 gru_w, 4 gru_u, 5 gru_b, 6 gru_bhn,
   * 7 type_emb, 8 gap_emb, 9 hparams */
  T_REFUSED(bad, with_param(raw, len, 3, 4, 1, NAN), len, SR_ERR_MODEL,
            "block 4 'gru_u' [1] is nan");
  T_REFUSED(bad, with_param(raw, len, 3, 8, 47, -INFINITY), len, SR_ERR_MODEL,
            "block 8 'gap_emb' [47] is -inf");
  T_REFUSED(bad, with_param(raw, len, 3, 9, 0, 0.5f), len, SR_ERR_MODEL,
            "block 9 'hparams' [0]: tying switch 0.5 is neither 0 nor 1");
  T_REFUSED(bad, with_param(raw, len, 3, 9, 0, NAN), len, SR_ERR_MODEL, "tying switch nan");
  T_REFUSED(bad, with_param(raw, len, 3, 9, 2, 1.0f), len, SR_ERR_MODEL,
            "block 9 'hparams' [2]: reserved, must be 0 (is 1)");
  T_ACCEPTED(bad, with_param(raw, len, 3, 9, 0, 0.0f), len);
  free(raw);
  unlink(path);
  unlink(bad);
}

/* Item ids: non-empty (the Recommendation encoder refuses an empty id, so
 * serve would commit batches without output), valid UTF-8, at most
 * SR_SNAPSHOT_ITEM_ID_MAX bytes. Duplicates: lengths_are_checked_after_checksum. */
TEST(item_ids_are_validated) {
  const char *path = t_tmp_path("ids.snap"), *bad = t_tmp_path("ids-bad.snap");
  sr_model_t *m = make_model(6, 3);
  char err[512];
  T_ASSERT(sr_snapshot_write(m, NULL, path, err, sizeof(err)) == SR_OK);
  sr_model_destroy(m);
  unsigned char *raw;
  size_t len, nl;
  T_ASSERT(read_file(path, &raw, &len) == 0);
  T_ASSERT(get_u32(raw + id_off(raw, 1)) == 8 && !memcmp(raw + id_off(raw, 1) + 4, "movie/37", 8));
  T_REFUSED(bad, with_id(raw, len, 1, "", 0, &nl), nl, SR_ERR_FORMAT, ": item 1: empty id");
  T_REFUSED(bad, with_id(raw, len, 5, "", 0, &nl), nl, SR_ERR_FORMAT, ": item 5: empty id");
  T_REFUSED(bad,
            with_id(raw, len, 1,
                    "movie/\xff"
                    "7",
                    8, &nl),
            nl, SR_ERR_FORMAT, "item 1: id is not valid UTF-8 (byte 6 of 8: 0xff)");
  T_REFUSED(bad,
            with_id(raw, len, 1,
                    "movi\xc0\xaf"
                    "37",
                    8, &nl),
            nl, SR_ERR_FORMAT, "(byte 4 of 8: 0xc0)"); /* overlong '/' */
  T_REFUSED(bad, with_id(raw, len, 2, "x\xed\xa0\x80", 4, &nl), nl, SR_ERR_FORMAT,
            "item 2: id is not valid UTF-8 (byte 1 of 4: 0xed)"); /* surrogate */
  T_REFUSED(bad, with_id(raw, len, 2, "x\xf4\x90\x80\x80", 5, &nl), nl, SR_ERR_FORMAT,
            "not valid UTF-8 (byte 1 of 5: 0xf4)"); /* > U+10FFFF */
  T_REFUSED(bad, with_id(raw, len, 2, "caf\xc3", 4, &nl), nl, SR_ERR_FORMAT,
            "not valid UTF-8 (byte 3 of 4: 0xc3)"); /* cut in the middle */
  T_ACCEPTED(bad, with_id(raw, len, 2, "\xf0\x9f\x8e\xac \xe2\x82\xac", 8, &nl), nl);
  char *longid = malloc(SR_SNAPSHOT_ITEM_ID_MAX + 1);
  memset(longid, 'q', SR_SNAPSHOT_ITEM_ID_MAX + 1);
  T_REFUSED(bad, with_id(raw, len, 4, longid, SR_SNAPSHOT_ITEM_ID_MAX + 1, &nl), nl, SR_ERR_FORMAT,
            "item 4: id of 1025 bytes (at most 1024)");
  T_ACCEPTED(bad, with_id(raw, len, 4, longid, SR_SNAPSHOT_ITEM_ID_MAX, &nl), nl);
  free(longid);
  free(raw);
  unlink(path);
  unlink(bad);
}

/* The version ends up in a Prometheus label, log lines and every
 * Recommendation: only [A-Za-z0-9._:+-], non-empty. */
TEST(version_string_is_validated) {
  const char *path = t_tmp_path("ver.snap"), *bad = t_tmp_path("ver-bad.snap");
  sr_model_t *m = make_model(4, 2);
  char err[512];
  T_ASSERT(sr_snapshot_write(m, NULL, path, err, sizeof(err)) == SR_OK);
  sr_model_destroy(m);
  unsigned char *raw;
  size_t len;
  T_ASSERT(read_file(path, &raw, &len) == 0);
  static const struct {
    const char *v, *needle;
  } cases[] = {
      {"x\"} 1\nstreamrec_fake 1\n#", "version string has byte 0x22 at 1 (allowed: A-Z a-z 0-9 "
                                      "and \"._:+-\")"},
      {"", "version string is empty"},
      {"decay d4", "byte 0x20 at 5"},
      {"v\\1", "byte 0x5c at 1"},
      {"v\x01", "byte 0x01 at 1"},
      {"caf\xc3\xa9", "byte 0xc3 at 3"},
      {"ok-but-then\n", "byte 0x0a at 11"},
  };
  for (size_t i = 0; i < SR_ARRAY_SIZE(cases); i++) {
    unsigned char *cp = malloc(len);
    memcpy(cp, raw, len);
    memset(cp + 60, 0, 64);
    memcpy(cp + 60, cases[i].v, strlen(cases[i].v));
    reseal(cp, len);
    T_REFUSED(bad, cp, len, SR_ERR_FORMAT, cases[i].needle);
  }
  const char *okv = "my-model_v1.2+build:3";
  unsigned char *cp = malloc(len);
  memcpy(cp, raw, len);
  memset(cp + 60, 0, 64);
  memcpy(cp + 60, okv, strlen(okv));
  reseal(cp, len);
  write_raw(bad, cp, len);
  free(cp);
  sr_model_t *l = NULL;
  T_ASSERT_MSG(sr_snapshot_load(bad, &l, NULL, err, sizeof(err)) == SR_OK, "%s", err);
  T_EQ_STR(sr_model_version(l), okv);
  sr_model_destroy(l);
  free(raw);
  unlink(path);
  unlink(bad);
}

/* The writer refuses (and writes nothing) what the loader would refuse. */
TEST(writer_refuses_what_the_loader_refuses) {
  const char *path = t_tmp_path("wr.snap");
  char err[512];
  unlink(path);
  sr_model_t *m = make_model(5, 2);
  sr_model_block(m, "item_out")->data[3] = NAN;
  T_EQ_INT(sr_snapshot_write(m, NULL, path, err, sizeof(err)), SR_ERR_MODEL);
  T_ASSERT_MSG(strstr(err, path) &&
                   strstr(err, "refusing to write the model: block 1 'item_out' [3] is nan"),
               "err: %s", err);
  fprintf(stderr, "  refused: %s\n", err);
  T_ASSERT(access(path, F_OK) != 0);
  T_EQ_STR(sr_model_version(m), "decay-d2-untrained"); /* unchanged */
  sr_model_block(m, "item_out")->data[3] = 0.5f;
  sr_model_block(m, "hparams")->data[0] = 2.0f;
  T_EQ_INT(sr_snapshot_write(m, NULL, path, err, sizeof(err)), SR_ERR_MODEL);
  T_ASSERT_MSG(strstr(err, "decay factor 2 outside (0, 1]"), "err: %s", err);
  T_ASSERT(access(path, F_OK) != 0);
  /* a zeroed (never trained) decay model has decay factor 0 */
  sr_model_destroy(m);
  sr_str_t two[2] = {SR_STR("a"), SR_STR("b")};
  m = sr_model_new(SR_MODEL_DECAY, 2, 2, two, err, sizeof(err));
  T_EQ_INT(sr_snapshot_write(m, NULL, path, err, sizeof(err)), SR_ERR_MODEL);
  sr_model_destroy(m);
  /* ids */
  sr_str_t ids[2] = {SR_STR("a"), SR_STR("")};
  m = sr_model_new(SR_MODEL_DECAY, 2, 2, ids, err, sizeof(err));
  T_ASSERT(m != NULL);
  sr_model_block(m, "hparams")->data[0] = 0.5f;
  T_EQ_INT(sr_snapshot_write(m, NULL, path, err, sizeof(err)), SR_ERR_INVALID_ARG);
  T_ASSERT_MSG(strstr(err, "item 1: empty id"), "err: %s", err);
  sr_model_destroy(m);
  ids[1] = sr_str_make("\xc3(", 2);
  m = sr_model_new(SR_MODEL_DECAY, 2, 2, ids, err, sizeof(err));
  sr_model_block(m, "hparams")->data[0] = 0.5f;
  T_EQ_INT(sr_snapshot_write(m, NULL, path, err, sizeof(err)), SR_ERR_INVALID_ARG);
  T_ASSERT_MSG(strstr(err, "item 1: id is not valid UTF-8"), "err: %s", err);
  T_ASSERT(access(path, F_OK) != 0);
  sr_model_destroy(m);
  m = make_gru();
  if (m) {
    sr_model_block(m, "hparams")->data[0] = 0.5f;
    T_EQ_INT(sr_snapshot_write(m, NULL, path, err, sizeof(err)), SR_ERR_MODEL);
    T_ASSERT_MSG(strstr(err, "tying switch 0.5"), "err: %s", err);
    sr_model_destroy(m);
  }
  T_ASSERT(access(path, F_OK) != 0);
}

/* A FIFO as snapshot path used to block startup forever in open(). The
 * load runs in a child with alarm(5), so the old code fails this test in
 * 5 s instead of hanging it. */
TEST(only_regular_files_are_loaded) {
  const char *fifo = t_tmp_path("snap.fifo");
  unlink(fifo);
  T_ASSERT(mkfifo(fifo, 0600) == 0);
  fflush(NULL);
  pid_t pid = fork();
  T_ASSERT(pid >= 0);
  if (pid == 0) {
    alarm(5);
    char e[512] = "";
    sr_err_t code = load_code(fifo, e, sizeof(e));
    fprintf(stderr, "  refused (%s): %s\n", sr_err2name(code), e);
    _exit(code == SR_ERR_IO && strstr(e, fifo) && strstr(e, "not a regular file (a FIFO)") ? 0 : 1);
  }
  int st = 0;
  T_ASSERT(waitpid(pid, &st, 0) == pid);
  unlink(fifo);
  T_ASSERT_MSG(!WIFSIGNALED(st), "the loader hung on a FIFO (child killed by signal %d)",
               WTERMSIG(st));
  T_ASSERT_MSG(WIFEXITED(st) && WEXITSTATUS(st) == 0, "FIFO not refused as SR_ERR_IO");
  char err[512];
  const char *dir = getenv("SR_TEST_TMP") ? getenv("SR_TEST_TMP") : "/tmp";
  T_EQ_INT(load_code(dir, err, sizeof(err)), SR_ERR_IO);
  T_ASSERT_MSG(strstr(err, "not a regular file (a directory)"), "err: %s", err);
  T_EQ_INT(load_code("/dev/null", err, sizeof(err)), SR_ERR_IO);
  T_ASSERT_MSG(strstr(err, "not a regular file (a character device)"), "err: %s", err);
}

/* sr_snapshot_load_mem is the same loader without the file. */
TEST(load_mem_equals_load) {
  const char *path = t_tmp_path("mem.snap");
  sr_model_t *m = make_model(7, 3);
  char err[512];
  T_ASSERT(sr_snapshot_write(m, NULL, path, err, sizeof(err)) == SR_OK);
  unsigned char *raw;
  size_t len;
  T_ASSERT(read_file(path, &raw, &len) == 0);
  sr_model_t *a = NULL, *b = NULL;
  sr_snapshot_info_t ia, ib;
  T_ASSERT(sr_snapshot_load(path, &a, &ia, err, sizeof(err)) == SR_OK);
  T_ASSERT_MSG(sr_snapshot_load_mem(raw, len, "mem.snap", &b, &ib, err, sizeof(err)) == SR_OK, "%s",
               err);
  T_ASSERT(ia.checksum == ib.checksum);
  T_EQ_STR(sr_model_version(a), sr_model_version(b));
  sr_param_block_t ba[SR_MODEL_MAX_BLOCKS], bb[SR_MODEL_MAX_BLOCKS];
  int n = sr_model_params(a, ba, SR_MODEL_MAX_BLOCKS);
  T_EQ_INT(sr_model_params(b, bb, SR_MODEL_MAX_BLOCKS), n);
  for (int i = 0; i < n; i++)
    T_ASSERT(!memcmp(ba[i].data, bb[i].data, ba[i].count * 4));
  sr_model_destroy(a);
  sr_model_destroy(b);
  b = (sr_model_t *)(uintptr_t)1;
  raw[len - 1] ^= 1;
  T_EQ_INT(sr_snapshot_load_mem(raw, len, NULL, &b, NULL, err, sizeof(err)), SR_ERR_CHECKSUM);
  T_ASSERT(b == NULL);
  T_ASSERT_MSG(strstr(err, "(memory): checksum mismatch"), "err: %s", err);
  T_EQ_INT(sr_snapshot_load_mem(NULL, 0, "empty", &b, NULL, err, sizeof(err)), SR_ERR_TRUNCATED);
  free(raw);
  sr_model_destroy(m);
  unlink(path);
}

/* Label values are escaped in the exposition (defence in depth: the
 * loader refuses such versions, sr_model_set_version does not). */
TEST(metrics_label_values_are_escaped) {
  sr_model_t *m = make_model(3, 2);
  sr_model_set_version(m, "x\"} 1\nstreamrec_fake 1\n#\\y");
  sr_pipeline_stats_t st;
  memset(&st, 0, sizeof(st));
  sr_buf_t b;
  sr_buf_init(&b);
  sr_metrics_render(&st, m, 1000, &b);
  sr_buf_putc(&b, 0);
  const char *text = (const char *)b.data;
  const char *want =
      "\nstreamrec_model_info{version=\"x\\\"} 1\\nstreamrec_fake 1\\n#\\\\y\",kind=\"decay\","
      "dim=\"2\",items=\"3\"} 1\n";
  T_ASSERT_MSG(strstr(text, want) != NULL, "exposition:\n%s", text);
  T_ASSERT_MSG(strstr(text, "\nstreamrec_fake") == NULL, "injected line:\n%s", text);
  /* every line is a comment or one sample "name[{...}] value" */
  int samples = 0;
  for (const char *line = text; *line;) {
    const char *nl = strchr(line, '\n');
    T_ASSERT(nl != NULL);
    if (*line != '#') {
      samples++;
      T_ASSERT_MSG(!strncmp(line, "streamrec_", 10), "line: %.*s", (int)(nl - line), line);
    }
    line = nl + 1;
  }
  T_ASSERT(samples >= 16);
  sr_buf_free(&b);
  sr_model_destroy(m);
}

/* A well-formed file whose model cannot be allocated is NOMEM (the
 * constructor's code passes through), not a format error. The child
 * process caps its address space just above what it uses, then loads a
 * 16 MB model from memory. RLIMIT_AS does not mix with the sanitizers'
 * shadow memory, so that build skips the case (and says so). */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define T_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer) ||                         \
    __has_feature(memory_sanitizer)
#define T_SANITIZED 1
#endif
#endif
TEST(model_allocation_failure_is_nomem) {
#ifdef T_SANITIZED
  fprintf(stderr, "SKIP model_allocation_failure_is_nomem: RLIMIT_AS under a sanitizer\n");
  return;
#else
  const char *path = t_tmp_path("big.snap");
  sr_model_t *m = make_model(2, 1 << 20); /* 2 x 2^20 x 2 blocks x 4 B = 16 MB */
  T_ASSERT(m != NULL);
  char err[512] = "";
  T_ASSERT_MSG(sr_snapshot_write(m, NULL, path, err, sizeof(err)) == SR_OK, "%s", err);
  sr_model_destroy(m);
  unsigned char *raw = NULL;
  size_t len = 0;
  T_ASSERT(read_file(path, &raw, &len) == 0);
  unlink(path);
  /* Unlimited, the bytes load. */
  m = NULL;
  T_ASSERT_MSG(sr_snapshot_load_mem(raw, len, "big", &m, NULL, err, sizeof(err)) == SR_OK, "%s",
               err);
  sr_model_destroy(m);
  fflush(NULL);
  pid_t pid = fork();
  T_ASSERT(pid >= 0);
  if (pid == 0) {
    /* Give back the free heap (the load above left 16 MB there), so the
     * model's allocation needs new address space. */
    malloc_trim(0);
    long pages = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f || fscanf(f, "%ld", &pages) != 1) _exit(100);
    fclose(f);
    struct rlimit rl;
    rl.rlim_cur = rl.rlim_max = (rlim_t)pages * (rlim_t)sysconf(_SC_PAGESIZE) + (4u << 20);
    if (setrlimit(RLIMIT_AS, &rl) != 0) _exit(101);
    sr_model_t *cm = (sr_model_t *)(uintptr_t)1;
    char cerr[512] = "";
    sr_err_t e = sr_snapshot_load_mem(raw, len, "big", &cm, NULL, cerr, sizeof(cerr));
    fprintf(stderr, "  capped: %s: %s\n", sr_err2name(e), cerr);
    _exit(e == SR_ERR_NOMEM && cm == NULL && strstr(cerr, "cannot allocate") ? 0 : 1);
  }
  int st = 0;
  T_ASSERT(waitpid(pid, &st, 0) == pid);
  free(raw);
  T_ASSERT_MSG(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child status %d (exit %d)", st,
               WIFEXITED(st) ? WEXITSTATUS(st) : -1);
#endif
}

TEST(missing_file_and_bad_dir) {
  char err[512] = "";
  sr_model_t *m = (sr_model_t *)(uintptr_t)1;
  const char *path = t_tmp_path("does-not-exist.snap");
  T_EQ_INT(sr_snapshot_load(path, &m, NULL, err, sizeof(err)), SR_ERR_IO);
  T_ASSERT(m == NULL);
  T_ASSERT_MSG(strstr(err, path) != NULL, "err: %s", err);
  sr_model_t *mm = make_model(3, 2);
  T_EQ_INT(sr_snapshot_write(mm, NULL, "/nonexistent-dir/x/model.snap", err, sizeof(err)),
           SR_ERR_IO);
  T_EQ_STR(sr_model_version(mm), "decay-d2-untrained"); /* unchanged on failure */
  sr_model_destroy(mm);
}

TEST_MAIN(RUN(round_trip); RUN(every_byte_flip_is_refused); RUN(every_truncation_is_refused);
          RUN(bad_magic_and_future_version); RUN(lengths_are_checked_after_checksum);
          RUN(missing_file_and_bad_dir); RUN(model_allocation_failure_is_nomem);
          RUN(decay_parameters_are_validated); RUN(gru_parameters_are_validated);
          RUN(item_ids_are_validated); RUN(version_string_is_validated);
          RUN(writer_refuses_what_the_loader_refuses); RUN(only_regular_files_are_loaded);
          RUN(load_mem_equals_load); RUN(metrics_label_values_are_escaped))
