/*
 * libFuzzer target for the snapshot loader (sr_snapshot_load_mem, the
 * parser behind sr_snapshot_load) on untrusted bytes.
 *
 * Each input runs twice: as is, and with its XXH64 trailer recomputed over
 * everything before it (docs/SNAPSHOT.md: seed 0, bytes [0, end-8)), so
 * that mutations get past the checksum and reach the structure and content
 * checks instead of dying at "checksum mismatch".
 *
 * Beyond "no crash, no sanitizer report": a refused input must leave *mp
 * NULL and carry a reason; an accepted model must satisfy the loader's
 * documented rules (n_items >= 1, every id non-empty, valid UTF-8, at most
 * SR_SNAPSHOT_ITEM_ID_MAX bytes and found again by lookup, every parameter
 * finite and in range as sr_model_check says, a version of the safe
 * character set), score finitely after one event of every type, and
 * survive a write and a reload with the same kind, dim, ids and parameters
 * bit for bit. abort() on any violation so libFuzzer records the input.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <xxhash.h>

#include "model/model_int.h"
#include "streamrec/snapshot.h"

static char tmp_path[256];
static unsigned char *fixed;
static size_t fixed_cap;

static void cleanup(void) {
  if (tmp_path[0]) unlink(tmp_path);
  free(fixed);
}

static void must(int ok, const char *what, const char *detail) {
  if (ok) return;
  fprintf(stderr, "fuzz_snapshot: %s%s%s\n", what, detail ? ": " : "", detail ? detail : "");
  abort();
}

static int version_ok(const char *v) {
  if (!v[0]) return 0;
  for (; *v; v++)
    if (!((*v >= 'A' && *v <= 'Z') || (*v >= 'a' && *v <= 'z') || (*v >= '0' && *v <= '9') ||
          strchr(SR_SNAPSHOT_VERSION_PUNCT, *v)))
      return 0;
  return 1;
}

static void check_accepted(sr_model_t *m) {
  char errstr[512] = "";
  const int32_t n = sr_model_n_items(m);
  must(n >= 1, "accepted a model without items", NULL);
  must(sr_model_dim(m) >= 1, "accepted dim < 1", NULL);
  must(version_ok(sr_model_version(m)), "accepted an unsafe version string", NULL);
  for (int32_t i = 0; i < n; i++) {
    sr_str_t id = sr_model_item_id(m, i);
    must(id.len >= 1, "accepted an empty item id", NULL);
    must(id.len <= SR_SNAPSHOT_ITEM_ID_MAX, "accepted an over-long item id", NULL);
    must(sr_model_item_lookup(m, id.ptr, id.len) == i, "item id not found again", NULL);
  }
  must(sr_model_check(m, errstr, sizeof(errstr)) == SR_OK,
       "accepted a model that fails "
       "sr_model_check",
       errstr);
  sr_param_block_t b[SR_MODEL_MAX_BLOCKS];
  int nb = sr_model_params(m, b, SR_MODEL_MAX_BLOCKS);
  for (int k = 0; k < nb; k++)
    for (size_t j = 0; j < b[k].count; j++)
      must(isfinite(b[k].data[j]), "accepted a non-finite parameter", b[k].name);

  /* One event of every type for item 0, then the first few scores. */
  const int ss = sr_model_state_size(m);
  const int32_t ns = n < 64 ? n : 64;
  float *h = malloc((size_t)ss * sizeof(float)), *s = malloc((size_t)n * sizeof(float));
  must(h && s, "out of memory", NULL);
  sr_model_state_init(m, h);
  for (int t = 0; t < SR_EV__CNT; t++)
    sr_model_step(m, h, 0, (sr_event_type_t)t, 1.0f, 60000);
  for (int i = 0; i < ss; i++)
    must(isfinite(h[i]), "non-finite state after an event", NULL);
  sr_model_score_range(m, h, 1, 0, ns, s, (size_t)ns);
  for (int32_t i = 0; i < ns; i++)
    must(isfinite(s[i]), "non-finite score", NULL);
  free(h);
  free(s);

  /* Write, reload, compare. */
  must(sr_snapshot_write(m, NULL, tmp_path, errstr, sizeof(errstr)) == SR_OK,
       "cannot re-write an accepted model", errstr);
  sr_model_t *r = NULL;
  must(sr_snapshot_load(tmp_path, &r, NULL, errstr, sizeof(errstr)) == SR_OK,
       "the re-written file does not load", errstr);
  must(sr_model_kind(r) == sr_model_kind(m) && sr_model_dim(r) == sr_model_dim(m) &&
           sr_model_n_items(r) == n,
       "kind/dim/n_items differ after a round trip", NULL);
  must(!strcmp(sr_model_version(r), sr_model_version(m)), "version differs after a round trip",
       NULL);
  for (int32_t i = 0; i < n; i++)
    must(sr_str_eq(sr_model_item_id(m, i), sr_model_item_id(r, i)),
         "item id differs after a round trip", NULL);
  sr_param_block_t c[SR_MODEL_MAX_BLOCKS];
  must(sr_model_params(r, c, SR_MODEL_MAX_BLOCKS) == nb, "block count differs", NULL);
  for (int k = 0; k < nb; k++)
    must(b[k].count == c[k].count && !memcmp(b[k].data, c[k].data, b[k].count * sizeof(float)),
         "parameters differ after a round trip", b[k].name);
  sr_model_destroy(r);
}

static void run(const uint8_t *data, size_t size) {
  char errstr[512] = "";
  sr_model_t *m = (sr_model_t *)(uintptr_t)1;
  sr_snapshot_info_t info;
  sr_err_t err = sr_snapshot_load_mem(data, size, "fuzz.snap", &m, &info, errstr, sizeof(errstr));
  if (err != SR_OK) {
    must(m == NULL, "*mp not NULL after a refusal", sr_err2name(err));
    must(err == SR_ERR_FORMAT || err == SR_ERR_TRUNCATED || err == SR_ERR_VERSION ||
             err == SR_ERR_CHECKSUM || err == SR_ERR_MODEL || err == SR_ERR_NOMEM,
         "undocumented error code", sr_err2name(err));
    must(errstr[0] != 0, "refusal without a reason", sr_err2name(err));
    must(strstr(errstr, "fuzz.snap") != NULL, "refusal does not name the file", errstr);
    return;
  }
  must(m != NULL, "SR_OK without a model", NULL);
  must(info.n_items == sr_model_n_items(m) && info.dim == sr_model_dim(m),
       "info disagrees with the model", NULL);
  check_accepted(m);
  sr_model_destroy(m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (!tmp_path[0]) {
    const char *d = getenv("TMPDIR");
    snprintf(tmp_path, sizeof(tmp_path), "%s/fuzz_snapshot.%ld.snap", d && *d ? d : "/tmp",
             (long)getpid());
    atexit(cleanup);
  }
  run(data, size);
  if (size >= 16) { /* with the checksum fixed up: reach the parser */
    if (size > fixed_cap) {
      free(fixed);
      fixed = malloc(size);
      must(fixed != NULL, "out of memory", NULL);
      fixed_cap = size;
    }
    memcpy(fixed, data, size);
    uint64_t sum = XXH64(fixed, size - 8, 0);
    for (int i = 0; i < 8; i++)
      fixed[size - 8 + i] = (unsigned char)(sum >> (8 * i));
    run(fixed, size);
  }
  return 0;
}
