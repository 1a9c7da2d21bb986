/*
 * 0011-decode-interop: our codec against Apache Avro's Python library, an
 * implementation that shares no code with Avro C.
 *
 * python -> C: tests/interop/avro_interop.py writes framed messages, we
 * decode them and check every field. C -> python: we encode the same
 * vectors, the script decodes them, checks every field and compares the
 * bytes with its own encoding (it exits non-zero on any mismatch). The
 * vectors below repeat EVENTS/RECS in the script: keep the two in step.
 *
 * Needs /usr/bin/python3 with the avro module (python3-avro); without them
 * the tests FAIL, they do not skip.
 */
#include <errno.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "streamrec/codec.h"
#include "test.h"

#define PYTHON "/usr/bin/python3"

/* ---- the vectors (same as avro_interop.py) ---- */
typedef struct {
  const char *eid, *uid, *iid;
  int type;
  float value;
  int64_t ts;
  const char *scen;
} ev_vec_t;

#define N_EVENTS 12
static ev_vec_t events[N_EVENTS] = {
    {"ev-0", "user-42", "item-7", SR_EV_VIEW, 0.0f, 1732361400123LL, "home"},
    {"évènement-1", "ユーザー-ü", "商品🎧", SR_EV_PURCHASE, 4.5f, -1, "首页"},
    {"", "u", "i", SR_EV_FORGET, -0.25f, INT64_MAX, ""},
    {"ev-3", "user-3", "item-3", SR_EV_RATE, 3.4028234663852886e38f, INT64_MIN, "default"},
};
static char ev_strs[8][3][16];

typedef struct {
  const char *uid, *scen;
  int n;
  sr_rec_item_t items[100];
  const char *mv, *seid;
  int32_t part;
  int64_t off, et, pa;
} rec_vec_t;

#define LIT(s)                                                                                     \
  { (s), sizeof(s) - 1 } /* sr_str_t in a static initializer */
#define N_RECS 3
static rec_vec_t recs[N_RECS] = {
    {.uid = "user-42",
     .scen = "home",
     .n = 0,
     .mv = "mf-v1",
     .seid = "ev-0",
     .part = 0,
     .off = 0,
     .et = 1732361400123LL,
     .pa = 1732361400200LL},
    {.uid = "ユーザー",
     .scen = "首页",
     .n = 3,
     .items = {{LIT("商品🎧"), 0.875f, 0.5f, 1},
               {LIT("item-2"), -1.5f, 1.0f, 0},
               {LIT("i"), 0.0f, 0.125f, 1}},
     .mv = "als-2024-11",
     .seid = "évènement-1",
     .part = INT32_MAX,
     .off = INT64_MAX,
     .et = -1,
     .pa = 0},
    /* items filled by vectors_init() */
    {.uid = "u",
     .scen = "",
     .n = 100,
     .mv = "m",
     .seid = "e",
     .part = INT32_MIN,
     .off = 123456789012LL,
     .et = 1,
     .pa = 2},
};
static char rec_ids[100][16];

static void vectors_init(void) {
  for (int t = 0; t < 8; t++) {
    snprintf(ev_strs[t][0], 16, "ev-t%d", t);
    snprintf(ev_strs[t][1], 16, "user-%d", t);
    snprintf(ev_strs[t][2], 16, "item-%d", t);
    events[4 + t] = (ev_vec_t){
        ev_strs[t][0], ev_strs[t][1], ev_strs[t][2], t, (float)t * 0.5f, 1700000000000LL + t, "s"};
  }
  for (int i = 0; i < 100; i++) {
    snprintf(rec_ids[i], sizeof(rec_ids[i]), "item-%03d", i);
    recs[2].items[i] = (sr_rec_item_t){sr_str_cstr(rec_ids[i]), 100.0f - 0.5f * (float)i,
                                       (float)(i % 8) / 8.0f, i % 3 == 0};
  }
}

static const char *scen_or_default(const char *s) { return *s ? s : "default"; }

/* ---- plumbing ---- */

/* tests/interop/avro_interop.py: via $SR_SOURCE_DIR (set by CTest), else
 * relative to this file. */
static const char *script_path(void) {
  static char buf[1024];
  const char *src = getenv("SR_SOURCE_DIR");
  if (src && *src) {
    snprintf(buf, sizeof(buf), "%s/tests/interop/avro_interop.py", src);
  } else {
    snprintf(buf, sizeof(buf), "%s", __FILE__);
    char *slash = strrchr(buf, '/');
    if (slash)
      *slash = 0;
    else
      snprintf(buf, sizeof(buf), ".");
    strncat(buf, "/../interop/avro_interop.py", sizeof(buf) - strlen(buf) - 1);
  }
  return buf;
}

/* Empty string when python + avro + the script are usable, else why not. */
static const char *python_problem(void) {
  static char why[1200];
  if (access(PYTHON, X_OK) != 0)
    return PYTHON " not found: install python3 and python3-avro (the interop test needs them)";
  if (system(PYTHON " -c 'import avro.io, avro.schema' >/dev/null 2>&1") != 0)
    return "python module 'avro' missing for " PYTHON ": install python3-avro";
  if (access(script_path(), R_OK) != 0) {
    snprintf(why, sizeof(why), "interop script %s: %s (set SR_SOURCE_DIR)", script_path(),
             strerror(errno));
    return why;
  }
  return "";
}

static int run_script(const char *cmd, const char *dir) {
  char line[2048];
  snprintf(line, sizeof(line), "%s '%s' %s '%s'", PYTHON, script_path(), cmd, dir);
  int rc = system(line);
  return rc == -1 ? -1 : WIFEXITED(rc) ? WEXITSTATUS(rc) : 128;
}

static void rm_rf(const char *dir) {
  char line[1200];
  snprintf(line, sizeof(line), "rm -rf '%s'", dir);
  if (system(line) != 0) fprintf(stderr, "warning: could not remove %s\n", dir);
}

static int write_file(const char *path, const void *p, size_t n) {
  FILE *f = fopen(path, "wb");
  if (!f) return -1;
  int ok = fwrite(p, 1, n, f) == n;
  return fclose(f) == 0 && ok ? 0 : -1;
}

/* ---- tests ---- */

TEST(python_available) {
  const char *why = python_problem();
  T_ASSERT_MSG(!*why, "%s", why);
}

TEST(python_writes_c_reads) {
  const char *why = python_problem();
  T_ASSERT_MSG(!*why, "%s", why);
  char dir[600], path[700], errstr[512] = "";
  snprintf(dir, sizeof(dir), "%s", t_tmp_path("interop-py2c"));
  T_ASSERT_MSG(mkdir(dir, 0755) == 0 || errno == EEXIST, "mkdir %s: %s", dir, strerror(errno));
  T_EQ_INT(run_script("write", dir), 0);

  sr_codec_t *c =
      sr_codec_new(SR_DEFAULT_EVENT_SCHEMA_ID, SR_DEFAULT_REC_SCHEMA_ID, errstr, sizeof(errstr));
  T_ASSERT_MSG(c, "%s", errstr);
  unsigned char *data = NULL;
  size_t len;
  for (int i = 0; i < N_EVENTS; i++) {
    const ev_vec_t *v = &events[i];
    sr_event_t ev;
    snprintf(path, sizeof(path), "%s/py_event_%02d.bin", dir, i);
    free(data);
    T_EQ_INT(sr_file_read_all(path, &data, &len, errstr, sizeof(errstr)), SR_OK);
    sr_err_t err = sr_codec_decode_event(c, data, len, &ev, errstr, sizeof(errstr));
    T_ASSERT_MSG(err == SR_OK, "%s: %s", path, errstr);
    T_EQ_SLICE(ev.event_id, v->eid);
    T_EQ_SLICE(ev.user_id, v->uid);
    T_EQ_SLICE(ev.item_id, v->iid);
    T_EQ_INT(ev.type, v->type);
    T_ASSERT_MSG(ev.value == v->value, "event %d value %g", i, (double)ev.value);
    T_EQ_INT(ev.ts_ms, v->ts);
    T_EQ_SLICE(ev.scenario, scen_or_default(v->scen));
  }
  for (int i = 0; i < N_RECS; i++) {
    const rec_vec_t *v = &recs[i];
    sr_rec_t r;
    snprintf(path, sizeof(path), "%s/py_rec_%02d.bin", dir, i);
    free(data);
    T_EQ_INT(sr_file_read_all(path, &data, &len, errstr, sizeof(errstr)), SR_OK);
    sr_err_t err = sr_codec_decode_rec(c, data, len, &r, errstr, sizeof(errstr));
    T_ASSERT_MSG(err == SR_OK, "%s: %s", path, errstr);
    T_EQ_SLICE(r.user_id, v->uid);
    T_EQ_SLICE(r.scenario, scen_or_default(v->scen));
    T_EQ_SLICE(r.model_version, v->mv);
    T_EQ_SLICE(r.source_event_id, v->seid);
    T_EQ_INT(r.source_partition, v->part);
    T_EQ_INT(r.source_offset, v->off);
    T_EQ_INT(r.event_time, v->et);
    T_EQ_INT(r.produced_at, v->pa);
    T_EQ_INT(r.n_items, v->n);
    for (int k = 0; k < v->n; k++) {
      T_ASSERT_MSG(sr_str_eq(r.items[k].item_id, v->items[k].item_id), "rec %d item %d id", i, k);
      T_ASSERT_MSG(r.items[k].score == v->items[k].score, "rec %d item %d score", i, k);
      T_ASSERT_MSG(r.items[k].propensity == v->items[k].propensity, "rec %d item %d prop", i, k);
      T_EQ_INT(r.items[k].explore, v->items[k].explore);
    }
  }
  free(data);
  sr_codec_destroy(c);
  rm_rf(dir);
}

TEST(c_writes_python_reads) {
  const char *why = python_problem();
  T_ASSERT_MSG(!*why, "%s", why);
  char dir[600], path[700], errstr[512] = "";
  snprintf(dir, sizeof(dir), "%s", t_tmp_path("interop-c2py"));
  T_ASSERT_MSG(mkdir(dir, 0755) == 0 || errno == EEXIST, "mkdir %s: %s", dir, strerror(errno));

  sr_codec_t *c =
      sr_codec_new(SR_DEFAULT_EVENT_SCHEMA_ID, SR_DEFAULT_REC_SCHEMA_ID, errstr, sizeof(errstr));
  T_ASSERT_MSG(c, "%s", errstr);
  sr_buf_t out;
  sr_buf_init(&out);
  for (int i = 0; i < N_EVENTS; i++) {
    const ev_vec_t *v = &events[i];
    sr_event_t ev = {sr_str_cstr(v->eid),
                     sr_str_cstr(v->uid),
                     sr_str_cstr(v->iid),
                     (sr_event_type_t)v->type,
                     v->value,
                     v->ts,
                     sr_str_cstr(v->scen)};
    sr_buf_reset(&out);
    T_EQ_INT(sr_codec_encode_event(c, &ev, &out), SR_OK);
    snprintf(path, sizeof(path), "%s/c_event_%02d.bin", dir, i);
    T_ASSERT_MSG(write_file(path, out.data, out.len) == 0, "write %s", path);
  }
  for (int i = 0; i < N_RECS; i++) {
    const rec_vec_t *v = &recs[i];
    sr_rec_t r = {sr_str_cstr(v->uid),
                  sr_str_cstr(v->scen),
                  v->items,
                  v->n,
                  sr_str_cstr(v->mv),
                  sr_str_cstr(v->seid),
                  v->part,
                  v->off,
                  v->et,
                  v->pa};
    sr_buf_reset(&out);
    T_EQ_INT(sr_codec_encode_rec(c, &r, &out), SR_OK);
    snprintf(path, sizeof(path), "%s/c_rec_%02d.bin", dir, i);
    T_ASSERT_MSG(write_file(path, out.data, out.len) == 0, "write %s", path);
  }
  sr_buf_free(&out);
  sr_codec_destroy(c);
  int rc = run_script("check", dir);
  T_ASSERT_MSG(rc == 0, "python rejected our encoding (exit %d); files kept in %s", rc, dir);
  rm_rf(dir);
}

TEST_MAIN(vectors_init(); RUN(python_available); RUN(python_writes_c_reads);
          RUN(c_writes_python_reads))
