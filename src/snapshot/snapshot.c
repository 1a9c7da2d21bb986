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

/* ---- little-endian encoding ---- */
static void sr_put_u32(unsigned char *p, uint32_t v) {
  for (int i = 0; i < 4; i++) p[i] = (unsigned char)(v >> (8 * i));
}
static void sr_put_u64(unsigned char *p, uint64_t v) {
  for (int i = 0; i < 8; i++) p[i] = (unsigned char)(v >> (8 * i));
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
  for (size_t i = 0; i < n; i++) sr_put_f32(p + 4 * i, f[i]);
#endif
}
static void sr_get_floats(float *f, const unsigned char *p, size_t n) {
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
  memcpy(f, p, n * 4);
#else
  for (size_t i = 0; i < n; i++) f[i] = sr_get_f32(p + 4 * i);
#endif
}

/* "<kind>-d<dim>-<yyyymmddTHHMMSS UTC>-<8 hex>" */
static void sr_snap_version(char *out, size_t outsz, const char *kind, int dim,
                            int64_t created_ms, uint64_t content_hash) {
  time_t t = (time_t)(created_ms / 1000);
  struct tm tm;
  char ts[32];
  if (!gmtime_r(&t, &tm) || !strftime(ts, sizeof(ts), "%Y%m%dT%H%M%S", &tm))
    snprintf(ts, sizeof(ts), "%lld", (long long)created_ms);
  snprintf(out, outsz, "%s-d%d-%s-%08x", kind, dim, ts, (unsigned)(content_hash >> 32));
}

sr_err_t sr_snapshot_write(sr_model_t *m, sr_snapshot_info_t *info, const char *path,
                           char *errstr, size_t errsz) {
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

  /* Exact size first: a large snapshot buffer is allocated once, and its
   * failure is an error, not an abort. */
  size_t size = SR_SNAP_HDR_LEN + SR_SNAP_TRAILER_LEN;
  for (int32_t i = 0; i < n; i++) {
    sr_str_t id = sr_model_item_id(m, i);
    if (id.len > UINT32_MAX)
      return sr_seterr(errstr, errsz, SR_ERR_INVALID_ARG, "%s: item id %ld too long", path,
                       (long)i);
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
  sr_snap_version(version, sizeof(version), sr_model_kind_name(sr_model_kind(m)),
                  sr_model_dim(m), created, content);
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

sr_err_t sr_snapshot_load(const char *path, sr_model_t **mp, sr_snapshot_info_t *info,
                          char *errstr, size_t errsz) {
  unsigned char *buf = NULL;
  size_t len = 0;
  sr_str_t *ids = NULL;
  sr_model_t *m = NULL, *probe = NULL;
  sr_err_t err;
  *mp = NULL;

  err = sr_file_read_all(path, &buf, &len, errstr, errsz);
  if (err != SR_OK) return err;

  const size_t min_len = SR_SNAP_HDR_LEN + SR_SNAP_TRAILER_LEN;
  if (len < SR_SNAP_MAGIC_LEN) {
    err = memcmp(buf, SR_SNAP_MAGIC, len) == 0
              ? sr_seterr(errstr, errsz, SR_ERR_TRUNCATED,
                          "%s: truncated: %zu bytes, a snapshot has at least %zu", path, len,
                          min_len)
              : sr_seterr(errstr, errsz, SR_ERR_FORMAT,
                          "%s: not a streamrec snapshot (bad magic)", path);
    goto out;
  }
  if (memcmp(buf, SR_SNAP_MAGIC, SR_SNAP_MAGIC_LEN) != 0) {
    err = sr_seterr(errstr, errsz, SR_ERR_FORMAT,
                    "%s: not a streamrec snapshot (bad magic, expected \"%s\")", path,
                    SR_SNAP_MAGIC);
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
                      path, len, (unsigned long long)payload + min_len,
                      (unsigned long long)stored, (unsigned long long)computed);
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
  if (!strcmp(sr_model_kind_name((sr_model_kind_t)kind), "?")) {
    err = sr_seterr(errstr, errsz, SR_ERR_FORMAT, "%s: unknown model kind %u", path, kind);
    goto out;
  }
  if (dim < 1 || dim > INT32_MAX || n_items < 1 || n_items > INT32_MAX) {
    err = sr_seterr(errstr, errsz, SR_ERR_FORMAT, "%s: bad dim %u / n_items %u", path, dim,
                    n_items);
    goto out;
  }
  /* The kind's layout for (dim, n_items), from a one-item probe model, so
   * that sizes are checked against the file before the real allocation. */
  char perr[256];
  sr_str_t probe_id = SR_STR("probe");
  probe = sr_model_new((sr_model_kind_t)kind, 1, 1, &probe_id, perr, sizeof(perr));
  if (!probe) {
    err = sr_seterr(errstr, errsz, SR_ERR_MODEL, "%s: %s", path, perr);
    goto out;
  }
  const char *names[SR_MODEL_MAX_BLOCKS];
  size_t counts[SR_MODEL_MAX_BLOCKS];
  int nb = probe->ops->layout((int)dim, (int32_t)n_items, names, counts, SR_MODEL_MAX_BLOCKS);
  if (nb < 1 || nb > SR_MODEL_MAX_BLOCKS || (uint32_t)nb != n_blocks) {
    err = sr_seterr(errstr, errsz, SR_ERR_FORMAT,
                    "%s: %u parameter blocks, kind %s d=%u has %d", path, n_blocks,
                    sr_model_kind_name((sr_model_kind_t)kind), dim, nb);
    goto out;
  }
  uint64_t need = 0;
  for (int b = 0; b < nb; b++) {
    if (counts[b] > (payload - need) / 4) {
      err = sr_seterr(errstr, errsz, SR_ERR_FORMAT,
                      "%s: %u items x d=%u needs more parameter bytes than the file holds",
                      path, n_items, dim);
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
    ids[i] = sr_str_make((const char *)ip, il);
  }
  char merr[256];
  m = sr_model_new((sr_model_kind_t)kind, (int)dim, (int32_t)n_items, ids, merr, sizeof(merr));
  if (!m) {
    err = sr_seterr(errstr, errsz, strstr(merr, "allocate") ? SR_ERR_NOMEM : SR_ERR_FORMAT,
                    "%s: %s", path, merr);
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
      err = sr_seterr(errstr, errsz, SR_ERR_FORMAT, "%s: block %d is '%.*s', expected '%s'",
                      path, b, (int)nl, (const char *)np, blocks[b].name);
      goto out;
    }
    if (sr_cur_u64(&c, &cnt) || cnt != blocks[b].count) {
      err = sr_seterr(errstr, errsz, SR_ERR_FORMAT,
                      "%s: block '%s' has %llu floats, expected %zu", path, blocks[b].name,
                      (unsigned long long)cnt, blocks[b].count);
      goto out;
    }
    if (sr_cur_bytes(&c, (size_t)cnt * 4, &fp)) {
      err = sr_seterr(errstr, errsz, SR_ERR_FORMAT, "%s: block '%s' overruns the payload",
                      path, blocks[b].name);
      goto out;
    }
    sr_get_floats(blocks[b].data, fp, (size_t)cnt);
  }
  if (c.left != 0) {
    err = sr_seterr(errstr, errsz, SR_ERR_FORMAT, "%s: %zu unexpected bytes after the last block",
                    path, c.left);
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
  free(buf);
  return err;
}
