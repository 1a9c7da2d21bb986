/*
 * 0050 snapshot: bit-exact round trip of parameters, ids and the training
 * summary; deterministic version strings; and refusal (never a crash) of
 * every single-byte corruption, every truncation, bad magic, a future
 * format version, lying lengths behind a valid checksum, and missing files.
 */
#include <stdint.h>
#include <xxhash.h>

#include "model/model_int.h"
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
    for (size_t j = 0; j < b[i].count; j++) b[i].data[j] = frand() * 3;
  b[0].data[0] = NAN; /* NaN and -0 must survive bit-exactly too */
  b[0].data[1] = -0.0f;
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
  for (int i = 0; i < 4; i++) p[i] = (unsigned char)(v >> (8 * i));
}
static void put_u64(unsigned char *p, uint64_t v) {
  for (int i = 0; i < 8; i++) p[i] = (unsigned char)(v >> (8 * i));
}
/* Recomputes the trailer so that only the structural checks can object. */
static void reseal(unsigned char *buf, size_t len) {
  put_u64(buf + len - 8, XXH64(buf, len - 8, 0));
}

static sr_err_t load_code(const char *path, char *err, size_t errsz) {
  sr_model_t *m = NULL;
  sr_err_t e = sr_snapshot_load(path, &m, NULL, err, errsz);
  if (e == SR_OK) sr_model_destroy(m);
  else if (m) return SR_ERR_FATAL; /* *mp must stay NULL on error */
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
  for (int i = 7; i >= 0; i--) tr = tr << 8 | raw[len - 8 + i];
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
  if (pos < 8) return e == SR_ERR_FORMAT;                 /* magic */
  if (pos < 12) return e == SR_ERR_VERSION;               /* format version */
  if (pos >= 128 && pos < HDR)                            /* payload_bytes */
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
    if (lies[i].width == 4) put_u32(cp + lies[i].off, (uint32_t)lies[i].val);
    else put_u64(cp + lies[i].off, lies[i].val);
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
          RUN(missing_file_and_bad_dir))
