/*
 * snapshot: serialises any model kind to one self-checking file and back.
 * The byte format is specified in docs/SNAPSHOT.md; keep the two in step.
 *
 * Built around two decisions:
 *  - The whole file is assembled in one buffer and written with
 *    sr_file_write_atomic (temp + fsync + rename + fsync(dir)), so a reader
 *    sees the old snapshot or the new one, never half of one.
 *  - The loader reads the whole file and verifies magic, format version and
 *    the XXH64 trailer before it interprets anything, and then still checks
 *    every length against the bytes that remain (a checksum proves the file
 *    is what some writer wrote, not that the writer was sane). The expected
 *    parameter sizes come from the kind's own layout, so a header that lies
 *    about dim or n_items is refused before any large allocation.
 *  - A file that passes all of that is still only loaded if its content is
 *    sane for serving (docs/SNAPSHOT.md, "Validation"): every parameter
 *    finite and bounded, the kind's own ranges (the kind's validate hook,
 *    through sr_model_check), item ids non-empty, valid UTF-8 and at most
 *    SR_SNAPSHOT_ITEM_ID_MAX bytes, and a version string of a safe
 *    character set (it ends up in Prometheus labels, log lines and every
 *    Recommendation). The writer applies the same rules, so a file it
 *    writes always loads.
 *
 * Parameters are handled generically through sr_model_params(): snapshot/
 * knows nothing about any particular kind.
 *
 * Thread: both functions run on the calling thread and share nothing.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <xxhash.h>

#include "model/model_int.h"
#include "streamrec/snapshot.h"

#define SR_SNAP_MAGIC "SRSNAP01"
#define SR_SNAP_MAGIC_LEN 8
#define SR_SNAP_HDR_LEN 136 /* see docs/SNAPSHOT.md */
#define SR_SNAP_TRAILER_LEN 8
#define SR_SNAP_VERSION_LEN 64
#define SR_SNAP_NAME_MAX 255

/* Header field offsets. */
enum {
  SR_SNAP_OFF_FORMAT = 8,
  SR_SNAP_OFF_KIND = 12,
  SR_SNAP_OFF_DIM = 16,
  SR_SNAP_OFF_NITEMS = 20,
  SR_SNAP_OFF_CREATED = 24,
  SR_SNAP_OFF_TEVENTS = 32,
  SR_SNAP_OFF_TUSERS = 40,
  SR_SNAP_OFF_EPOCHS = 48,
  SR_SNAP_OFF_LOSS = 52,
  SR_SNAP_OFF_VALID = 56,
  SR_SNAP_OFF_VERSION = 60,
  SR_SNAP_OFF_NBLOCKS = 124,
  SR_SNAP_OFF_PAYLOAD = 128
};

/* XXH64 seed of the trailer; 0 so that `head -c -8 f | xxhsum -H1` agrees. */
#define SR_SNAP_SEED 0

/* ---- content rules (docs/SNAPSHOT.md, "Validation") ---- */

/* Length of the valid UTF-8 prefix of p[0..n) (RFC 3629: no overlong
 * forms, no surrogates, nothing above U+10FFFF). */
static size_t sr_snap_utf8_prefix(const unsigned char *p, size_t n) {
  size_t i = 0;
  while (i < n) {
    const unsigned c = p[i];
    size_t k;
    unsigned lo = 0x80, hi = 0xBF; /* range of the first continuation byte */
    if (c < 0x80) {
      i++;
      continue;
    } else if (c >= 0xC2 && c <= 0xDF) {
      k = 1;
    } else if (c >= 0xE0 && c <= 0xEF) {
      k = 2;
      if (c == 0xE0)
        lo = 0xA0; /* overlong */
      else if (c == 0xED)
        hi = 0x9F; /* surrogates */
    } else if (c >= 0xF0 && c <= 0xF4) {
      k = 3;
      if (c == 0xF0)
        lo = 0x90; /* overlong */
      else if (c == 0xF4)
        hi = 0x8F; /* > U+10FFFF */
    } else {
      return i;
    }
    if (n - i <= k || p[i + 1] < lo || p[i + 1] > hi) return i;
    for (size_t j = 2; j <= k; j++)
      if ((p[i + j] & 0xC0) != 0x80) return i;
    i += k + 1;
  }
  return n;
}

/* Item id i: NULL when acceptable, else why not (into why[]). */
static const char *sr_snap_id_problem(const unsigned char *p, size_t n, char *why, size_t whysz) {
  if (n == 0) return "empty id";
  if (n > SR_SNAPSHOT_ITEM_ID_MAX) {
    snprintf(why, whysz, "id of %zu bytes (at most %d)", n, SR_SNAPSHOT_ITEM_ID_MAX);
    return why;
  }
  size_t ok = sr_snap_utf8_prefix(p, n);
  if (ok != n) {
    snprintf(why, whysz, "id is not valid UTF-8 (byte %zu of %zu: 0x%02x)", ok, n, p[ok]);
    return why;
  }
  return NULL;
}

/* Version string: NULL when acceptable, else why not (into why[]). */
static const char *sr_snap_version_problem(const char *v, char *why, size_t whysz) {
  if (!v[0]) return "version string is empty";
  for (size_t i = 0; v[i]; i++) {
    const unsigned char c = (unsigned char)v[i];
    if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
        strchr(SR_SNAPSHOT_VERSION_PUNCT, c))
      continue;
    snprintf(why, whysz, "version string has byte 0x%02x at %zu (allowed: A-Z a-z 0-9 and \"%s\")",
             c, i, SR_SNAPSHOT_VERSION_PUNCT);
    return why;
  }
  return NULL;
}

/* ---- little-endian encoding ---- */
static void sr_put_u32(unsigned char *p, uint32_t v) {
  for (int i = 0; i < 4; i++)
    p[i] = (unsigned char)(v >> (8 * i));
}
static void sr_put_u64(unsigned char *p, uint64_t v) {
  for (int i = 0; i < 8; i++)
    p[i] = (unsigned char)(v >> (8 * i));
}
static void sr_put_f32(unsigned char *p, float f) {
  uint32_t v;
  memcpy(&v, &f, 4);
  sr_put_u32(p, v);
}
static uint32_t sr_get_u32(const unsigned char *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static uint64_t sr_get_u64(const unsigned char *p) {
  return (uint64_t)sr_get_u32(p) | (uint64_t)sr_get_u32(p + 4) << 32;
}
static float sr_get_f32(const unsigned char *p) {
  uint32_t v = sr_get_u32(p);
  float f;
  memcpy(&f, &v, 4);
  return f;
}
static void sr_put_floats(unsigned char *p, const float *f, size_t n) {
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
  memcpy(p, f, n * 4);
#else
  for (size_t i = 0; i < n; i++)
    sr_put_f32(p + 4 * i, f[i]);
#endif
}
static void sr_get_floats(float *f, const unsigned char *p, size_t n) {
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
  memcpy(f, p, n * 4);
#else
  for (size_t i = 0; i < n; i++)
    f[i] = sr_get_f32(p + 4 * i);
#endif
}

/* "<kind>-d<dim>-<yyyymmddTHHMMSS UTC>-<8 hex>" */
static void sr_snap_version(char *out, size_t outsz, const char *kind, int dim, int64_t created_ms,
                            uint64_t content_hash) {
  time_t t = (time_t)(created_ms / 1000);
  struct tm tm;
  char ts[32];
  if (!gmtime_r(&t, &tm) || !strftime(ts, sizeof(ts), "%Y%m%dT%H%M%S", &tm))
    snprintf(ts, sizeof(ts), "%lld", (long long)created_ms);
  snprintf(out, outsz, "%s-d%d-%s-%08x", kind, dim, ts, (unsigned)(content_hash >> 32));
}

sr_err_t sr_snapshot_write(sr_model_t *m, sr_snapshot_info_t *info, const char *path, char *errstr,
                           size_t errsz) {
  sr_snapshot_info_t local;
  if (!m || !path) return sr_seterr(errstr, errsz, SR_ERR_INVALID_ARG, "snapshot: no model/path");
  if (!info) {
    memset(&local, 0, sizeof(local));
    local.valid_metric = NAN;
    info = &local;
  }
  sr_param_block_t blocks[SR_MODEL_MAX_BLOCKS];
  int nb = sr_model_params(m, blocks, SR_MODEL_MAX_BLOCKS);
  const int32_t n = sr_model_n_items(m);

  /* The loader's content rules first: the trainer (or anyone) can never
   * write a file that serve would refuse, least of all a NaN model. */
  char why[160];
  sr_err_t cerr = sr_model_check(m, why, sizeof(why));
  if (cerr != SR_OK)
    return sr_seterr(errstr, errsz, cerr, "%s: refusing to write the model: %s", path, why);

  /* Exact size first: a large snapshot buffer is allocated once, and its
   * failure is an error, not an abort. */
  size_t size = SR_SNAP_HDR_LEN + SR_SNAP_TRAILER_LEN;
  for (int32_t i = 0; i < n; i++) {
    sr_str_t id = sr_model_item_id(m, i);
    const char *bad = sr_snap_id_problem((const unsigned char *)id.ptr, id.len, why, sizeof(why));
    if (bad)
      return sr_seterr(errstr, errsz, SR_ERR_INVALID_ARG,
                       "%s: refusing to write the model: item %ld: %s", path, (long)i, bad);
    size += 4 + id.len;
  }
  for (int b = 0; b < nb; b++) {
    size_t nl = strlen(blocks[b].name);
    if (nl > SR_SNAP_NAME_MAX)
      return sr_seterr(errstr, errsz, SR_ERR_INVALID_ARG, "%s: block name too long", path);
    size += 4 + nl + 8 + blocks[b].count * 4;
  }
  unsigned char *buf = malloc(size);
  if (!buf)
    return sr_seterr(errstr, errsz, SR_ERR_NOMEM, "%s: cannot allocate %zu bytes for snapshot",
                     path, size);

  int64_t created = info->created_ms > 0 ? info->created_ms : sr_now_ms();
  memset(buf, 0, SR_SNAP_HDR_LEN);
  memcpy(buf, SR_SNAP_MAGIC, SR_SNAP_MAGIC_LEN);
  sr_put_u32(buf + SR_SNAP_OFF_FORMAT, SR_SNAPSHOT_FORMAT_VERSION);
  sr_put_u32(buf + SR_SNAP_OFF_KIND, (uint32_t)sr_model_kind(m));
  sr_put_u32(buf + SR_SNAP_OFF_DIM, (uint32_t)sr_model_dim(m));
  sr_put_u32(buf + SR_SNAP_OFF_NITEMS, (uint32_t)n);
  sr_put_u64(buf + SR_SNAP_OFF_CREATED, (uint64_t)created);
  sr_put_u64(buf + SR_SNAP_OFF_TEVENTS, info->train_events);
  sr_put_u64(buf + SR_SNAP_OFF_TUSERS, info->train_users);
  sr_put_u32(buf + SR_SNAP_OFF_EPOCHS, info->epochs);
  sr_put_f32(buf + SR_SNAP_OFF_LOSS, info->train_loss);
  sr_put_f32(buf + SR_SNAP_OFF_VALID, info->valid_metric);
  /* version stays all-zero until the content hash is known */
  sr_put_u32(buf + SR_SNAP_OFF_NBLOCKS, (uint32_t)nb);
  sr_put_u64(buf + SR_SNAP_OFF_PAYLOAD, (uint64_t)(size - SR_SNAP_HDR_LEN - SR_SNAP_TRAILER_LEN));

  unsigned char *p = buf + SR_SNAP_HDR_LEN;
  for (int32_t i = 0; i < n; i++) {
    sr_str_t id = sr_model_item_id(m, i);
    sr_put_u32(p, (uint32_t)id.len);
    if (id.len) memcpy(p + 4, id.ptr, id.len);
    p += 4 + id.len;
  }
  for (int b = 0; b < nb; b++) {
    size_t nl = strlen(blocks[b].name);
    sr_put_u32(p, (uint32_t)nl);
    memcpy(p + 4, blocks[b].name, nl);
    sr_put_u64(p + 4 + nl, (uint64_t)blocks[b].count);
    p += 4 + nl + 8;
    sr_put_floats(p, blocks[b].data, blocks[b].count);
    p += blocks[b].count * 4;
  }

  /* Version = f(every byte but the version field and trailer): the same
   * model and summary always get the same version. */
  char version[SR_SNAP_VERSION_LEN];
  uint64_t content = XXH64(buf, size - SR_SNAP_TRAILER_LEN, SR_SNAP_SEED);
  sr_snap_version(version, sizeof(version), sr_model_kind_name(sr_model_kind(m)), sr_model_dim(m),
                  created, content);
  memcpy(buf + SR_SNAP_OFF_VERSION, version, strlen(version)); /* rest stays NUL */
  uint64_t sum = XXH64(buf, size - SR_SNAP_TRAILER_LEN, SR_SNAP_SEED);
  sr_put_u64(buf + size - SR_SNAP_TRAILER_LEN, sum);

  sr_err_t err = sr_file_write_atomic(path, buf, size, errstr, errsz);
  free(buf);
  if (err != SR_OK) return err;
  sr_model_set_version(m, version);
  info->format_version = SR_SNAPSHOT_FORMAT_VERSION;
  info->kind = sr_model_kind(m);
  info->dim = sr_model_dim(m);
  info->n_items = n;
  info->created_ms = created;
  snprintf(info->version, sizeof(info->version), "%s", version);
  info->checksum = sum;
  return SR_OK;
}

/* ---- loading ---- */

/* Bounds-checked reader over the payload. */
typedef struct {
  const unsigned char *p;
  size_t left;
} sr_cur_t;

static int sr_cur_u32(sr_cur_t *c, uint32_t *v) {
  if (c->left < 4) return -1;
  *v = sr_get_u32(c->p);
  c->p += 4, c->left -= 4;
  return 0;
}
static int sr_cur_u64(sr_cur_t *c, uint64_t *v) {
  if (c->left < 8) return -1;
  *v = sr_get_u64(c->p);
  c->p += 8, c->left -= 8;
  return 0;
}
static int sr_cur_bytes(sr_cur_t *c, size_t n, const unsigned char **out) {
  if (c->left < n) return -1;
  *out = c->p;
  c->p += n, c->left -= n;
  return 0;
}

sr_err_t sr_snapshot_load(const char *path, sr_model_t **mp, sr_snapshot_info_t *info, char *errstr,
                          size_t errsz) {
  unsigned char *buf = NULL;
  size_t len = 0;
  *mp = NULL;
  sr_err_t err = sr_file_read_all(path, &buf, &len, errstr, errsz);
  if (err != SR_OK) return err;
  err = sr_snapshot_load_mem(buf, len, path, mp, info, errstr, errsz);
  free(buf);
  return err;
}

sr_err_t sr_snapshot_load_mem(const void *data, size_t len, const char *name, sr_model_t **mp,
                              sr_snapshot_info_t *info, char *errstr, size_t errsz) {
  const unsigned char *buf = data;
  const char *path = name ? name : "(memory)";
  sr_str_t *ids = NULL;
  sr_model_t *m = NULL, *probe = NULL;
  sr_err_t err;
  char why[160];
  *mp = NULL;
  if (!buf && len)
    return sr_seterr(errstr, errsz, SR_ERR_INVALID_ARG, "%s: no snapshot bytes", path);
  if (!buf) buf = (const unsigned char *)"";

  const size_t min_len = SR_SNAP_HDR_LEN + SR_SNAP_TRAILER_LEN;
  if (len < SR_SNAP_MAGIC_LEN) {
    err =
        memcmp(buf, SR_SNAP_MAGIC, len) == 0
            ? sr_seterr(errstr, errsz, SR_ERR_TRUNCATED,
                        "%s: truncated: %zu bytes, a snapshot has at least %zu", path, len, min_len)
            : sr_seterr(errstr, errsz, SR_ERR_FORMAT, "%s: not a streamrec snapshot (bad magic)",
                        path);
    goto out;
  }
  if (memcmp(buf, SR_SNAP_MAGIC, SR_SNAP_MAGIC_LEN) != 0) {
    err =
        sr_seterr(errstr, errsz, SR_ERR_FORMAT,
                  "%s: not a streamrec snapshot (bad magic, expected \"%s\")", path, SR_SNAP_MAGIC);
    goto out;
  }
  if (len < min_len) {
    err = sr_seterr(errstr, errsz, SR_ERR_TRUNCATED,
                    "%s: truncated: %zu bytes, a snapshot has at least %zu", path, len, min_len);
    goto out;
  }
  /* The format version comes before the checksum: a newer format may
   * checksum differently, and "too new" is the useful message then. */
  uint32_t fmt = sr_get_u32(buf + SR_SNAP_OFF_FORMAT);
  if (fmt != SR_SNAPSHOT_FORMAT_VERSION) {
    err = sr_seterr(errstr, errsz, SR_ERR_VERSION,
                    "%s: snapshot format version %u is not supported (this build reads "
                    "version %d)",
                    path, fmt, SR_SNAPSHOT_FORMAT_VERSION);
    goto out;
  }
  const size_t body = len - SR_SNAP_TRAILER_LEN;
  uint64_t stored = sr_get_u64(buf + body);
  uint64_t computed = XXH64(buf, body, SR_SNAP_SEED);
  uint64_t payload = sr_get_u64(buf + SR_SNAP_OFF_PAYLOAD);
  if (stored != computed) {
    if (payload > body - SR_SNAP_HDR_LEN)
      err = sr_seterr(errstr, errsz, SR_ERR_TRUNCATED,
                      "%s: truncated: %zu bytes, header declares %llu (checksum stored "
                      "0x%016llx, computed 0x%016llx)",
                      path, len, (unsigned long long)payload + min_len, (unsigned long long)stored,
                      (unsigned long long)computed);
    else
      err = sr_seterr(errstr, errsz, SR_ERR_CHECKSUM,
                      "%s: checksum mismatch (file corrupt or truncated): stored 0x%016llx, "
                      "computed 0x%016llx",
                      path, (unsigned long long)stored, (unsigned long long)computed);
    goto out;
  }
  if (payload != body - SR_SNAP_HDR_LEN) {
    err = sr_seterr(errstr, errsz, SR_ERR_FORMAT,
                    "%s: header declares %llu payload bytes, file holds %zu", path,
                    (unsigned long long)payload, body - SR_SNAP_HDR_LEN);
    goto out;
  }

  /* Header fields. */
  uint32_t kind = sr_get_u32(buf + SR_SNAP_OFF_KIND);
  uint32_t dim = sr_get_u32(buf + SR_SNAP_OFF_DIM);
  uint32_t n_items = sr_get_u32(buf + SR_SNAP_OFF_NITEMS);
  uint32_t n_blocks = sr_get_u32(buf + SR_SNAP_OFF_NBLOCKS);
  const char *vfield = (const char *)buf + SR_SNAP_OFF_VERSION;
  if (!memchr(vfield, 0, SR_SNAP_VERSION_LEN)) {
    err = sr_seterr(errstr, errsz, SR_ERR_FORMAT, "%s: version string not terminated", path);
    goto out;
  }
  const char *vbad = sr_snap_version_problem(vfield, why, sizeof(why));
  if (vbad) {
    err = sr_seterr(errstr, errsz, SR_ERR_FORMAT, "%s: %s", path, vbad);
    goto out;
  }
  if (!strcmp(sr_model_kind_name((sr_model_kind_t)kind), "?")) {
    err = sr_seterr(errstr, errsz, SR_ERR_FORMAT, "%s: unknown model kind %u", path, kind);
    goto out;
  }
  if (dim < 1 || dim > INT32_MAX || n_items < 1 || n_items > INT32_MAX) {
    err =
        sr_seterr(errstr, errsz, SR_ERR_FORMAT, "%s: bad dim %u / n_items %u", path, dim, n_items);
    goto out;
  }
  /* The kind's layout for (dim, n_items), from a one-item probe model, so
   * that sizes are checked against the file before the real allocation. */
  char perr[256];
  sr_str_t probe_id = SR_STR("probe");
  err = sr_model_create(&probe, (sr_model_kind_t)kind, 1, 1, &probe_id, perr, sizeof(perr));
  if (err != SR_OK) { /* a kind this binary does not build */
    err = sr_seterr(errstr, errsz, err == SR_ERR_NOMEM ? err : SR_ERR_MODEL, "%s: %s", path, perr);
    goto out;
  }
  const char *names[SR_MODEL_MAX_BLOCKS];
  size_t counts[SR_MODEL_MAX_BLOCKS];
  int nb = probe->ops->layout((int)dim, (int32_t)n_items, names, counts, SR_MODEL_MAX_BLOCKS);
  if (nb < 1 || nb > SR_MODEL_MAX_BLOCKS || (uint32_t)nb != n_blocks) {
    err = sr_seterr(errstr, errsz, SR_ERR_FORMAT, "%s: %u parameter blocks, kind %s d=%u has %d",
                    path, n_blocks, sr_model_kind_name((sr_model_kind_t)kind), dim, nb);
    goto out;
  }
  uint64_t need = 0;
  for (int b = 0; b < nb; b++) {
    if (counts[b] > (payload - need) / 4) {
      err = sr_seterr(errstr, errsz, SR_ERR_FORMAT,
                      "%s: %u items x d=%u needs more parameter bytes than the file holds", path,
                      n_items, dim);
      goto out;
    }
    need += counts[b] * 4;
  }

  /* Item id table. need >= 4 * n_items (item_bias), so ids is bounded by
   * the file size. */
  sr_cur_t c = {buf + SR_SNAP_HDR_LEN, (size_t)payload};
  ids = sr_malloc((size_t)n_items * sizeof(*ids));
  for (uint32_t i = 0; i < n_items; i++) {
    uint32_t il;
    const unsigned char *ip;
    if (sr_cur_u32(&c, &il) || sr_cur_bytes(&c, il, &ip)) {
      err = sr_seterr(errstr, errsz, SR_ERR_FORMAT,
                      "%s: item id table overruns the payload at item %u", path, i);
      goto out;
    }
    const char *bad = sr_snap_id_problem(ip, il, why, sizeof(why));
    if (bad) {
      err = sr_seterr(errstr, errsz, SR_ERR_FORMAT, "%s: item %u: %s", path, i, bad);
      goto out;
    }
    ids[i] = sr_str_make((const char *)ip, il);
  }
  /* The constructor's INVALID_ARG is about what the file declares (e.g. a
   * duplicate item id): a malformed file. NOMEM passes through. */
  char merr[256];
  err = sr_model_create(&m, (sr_model_kind_t)kind, (int)dim, (int32_t)n_items, ids, merr,
                        sizeof(merr));
  if (err != SR_OK) {
    err = sr_seterr(errstr, errsz, err == SR_ERR_INVALID_ARG ? SR_ERR_FORMAT : err, "%s: %s", path,
                    merr);
    goto out;
  }
  sr_param_block_t blocks[SR_MODEL_MAX_BLOCKS];
  int mb = sr_model_params(m, blocks, SR_MODEL_MAX_BLOCKS);
  if (mb != nb) { /* cannot happen: same layout function */
    err = sr_seterr(errstr, errsz, SR_ERR_MODEL, "%s: model layout changed", path);
    goto out;
  }
  for (int b = 0; b < nb; b++) {
    uint32_t nl = 0;
    uint64_t cnt = 0;
    const unsigned char *np, *fp;
    if (sr_cur_u32(&c, &nl) || nl > SR_SNAP_NAME_MAX || sr_cur_bytes(&c, nl, &np)) {
      err = sr_seterr(errstr, errsz, SR_ERR_FORMAT, "%s: block %d: bad name", path, b);
      goto out;
    }
    if (nl != strlen(blocks[b].name) || memcmp(np, blocks[b].name, nl) != 0) {
      err = sr_seterr(errstr, errsz, SR_ERR_FORMAT, "%s: block %d is '%.*s', expected '%s'", path,
                      b, (int)nl, (const char *)np, blocks[b].name);
      goto out;
    }
    if (sr_cur_u64(&c, &cnt) || cnt != blocks[b].count) {
      err = sr_seterr(errstr, errsz, SR_ERR_FORMAT, "%s: block '%s' has %llu floats, expected %zu",
                      path, blocks[b].name, (unsigned long long)cnt, blocks[b].count);
      goto out;
    }
    if (sr_cur_bytes(&c, (size_t)cnt * 4, &fp)) {
      err = sr_seterr(errstr, errsz, SR_ERR_FORMAT, "%s: block '%s' overruns the payload", path,
                      blocks[b].name);
      goto out;
    }
    sr_get_floats(blocks[b].data, fp, (size_t)cnt);
  }
  if (c.left != 0) {
    err = sr_seterr(errstr, errsz, SR_ERR_FORMAT, "%s: %zu unexpected bytes after the last block",
                    path, c.left);
    goto out;
  }
  if ((err = sr_model_check(m, why, sizeof(why))) != SR_OK) {
    err = sr_seterr(errstr, errsz, err, "%s: %s", path, why);
    goto out;
  }
  sr_model_set_version(m, vfield);
  if (info) {
    memset(info, 0, sizeof(*info));
    info->format_version = fmt;
    info->kind = (sr_model_kind_t)kind;
    info->dim = (int)dim;
    info->n_items = (int32_t)n_items;
    info->created_ms = (int64_t)sr_get_u64(buf + SR_SNAP_OFF_CREATED);
    info->train_events = sr_get_u64(buf + SR_SNAP_OFF_TEVENTS);
    info->train_users = sr_get_u64(buf + SR_SNAP_OFF_TUSERS);
    info->epochs = sr_get_u32(buf + SR_SNAP_OFF_EPOCHS);
    info->train_loss = sr_get_f32(buf + SR_SNAP_OFF_LOSS);
    info->valid_metric = sr_get_f32(buf + SR_SNAP_OFF_VALID);
    snprintf(info->version, sizeof(info->version), "%s", vfield);
    info->checksum = stored;
  }
  *mp = m;
  m = NULL;
  err = SR_OK;
out:
  sr_model_destroy(m);
  sr_model_destroy(probe);
  sr_free(ids);
  return err;
}
