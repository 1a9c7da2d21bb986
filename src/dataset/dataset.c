/*
 * dataset: CSV parsing and the in-memory event data set used by the offline
 * tools (train, eval, split, gen/load).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "streamrec/dataset.h"

/* ---- CSV ---- */
static int sr_parse_num(const char *p, size_t n, double *out) {
  char tmp[64];
  if (n == 0 || n >= sizeof(tmp)) return -1;
  memcpy(tmp, p, n);
  tmp[n] = 0;
  char *end;
  errno = 0;
  double v = strtod(tmp, &end);
  if (errno || end == tmp) return -1;
  while (*end == ' ')
    end++;
  if (*end) return -1;
  *out = v;
  return 0;
}

static sr_str_t sr_trim(const char *p, size_t n) {
  while (n && (*p == ' ' || *p == '\t'))
    p++, n--;
  while (n && (p[n - 1] == ' ' || p[n - 1] == '\t'))
    n--;
  if (n >= 2 && p[0] == '"' && p[n - 1] == '"') p++, n -= 2;
  return sr_str_make(p, n);
}

sr_err_t sr_csv_parse(const char *line, size_t len, sr_csv_row_t *row, char *errstr, size_t errsz) {
  sr_str_t col[6];
  int ncol = 0;
  if (len && line[len - 1] == '\r') len--;
  if (len == 0) return SR_ERR_NOT_FOUND;
  size_t start = 0;
  for (size_t i = 0; i <= len && ncol < 6; i++) {
    if (i == len || line[i] == ',') {
      col[ncol++] = sr_trim(line + start, i - start);
      start = i + 1;
    }
  }
  if (ncol < 4)
    return sr_seterr(errstr, errsz, SR_ERR_FORMAT, "expected at least 4 columns, got %d", ncol);
  if (col[0].len == 0) return sr_seterr(errstr, errsz, SR_ERR_FORMAT, "empty user id");
  if (col[1].len == 0) return sr_seterr(errstr, errsz, SR_ERR_FORMAT, "empty item id");
  double v = 0, ts = 0;
  if (col[2].len && sr_parse_num(col[2].ptr, col[2].len, &v) != 0)
    return sr_seterr(errstr, errsz, SR_ERR_FORMAT, "value '%.*s' is not a number",
                     (int)SR_MIN(col[2].len, 40), col[2].ptr);
  if (sr_parse_num(col[3].ptr, col[3].len, &ts) != 0 || ts < 0)
    return sr_seterr(errstr, errsz, SR_ERR_FORMAT, "timestamp '%.*s' is not a number",
                     (int)SR_MIN(col[3].len, 40), col[3].ptr);
  row->user = col[0];
  row->item = col[1];
  row->value = (float)v;
  row->ts_ms = ts < 1e11 ? (int64_t)(ts * 1000.0) : (int64_t)ts;
  row->type = -1;
  if (ncol >= 5 && col[4].len) {
    row->type = sr_event_type_parse(col[4].ptr, col[4].len);
    if (row->type < 0)
      return sr_seterr(errstr, errsz, SR_ERR_FORMAT, "unknown event type '%.*s'",
                       (int)SR_MIN(col[4].len, 40), col[4].ptr);
  }
  return SR_OK;
}

/* ---- data set ---- */
typedef struct {
  int32_t user, item;
  float value;
  int64_t ts;
  uint8_t type;
  int64_t seq;
} sr_tmp_ev_t;

static int sr_tmp_ev_cmp(const void *a, const void *b) {
  const sr_tmp_ev_t *x = a, *y = b;
  if (x->user != y->user) return x->user < y->user ? -1 : 1;
  if (x->ts != y->ts) return x->ts < y->ts ? -1 : 1;
  return x->seq < y->seq ? -1 : (x->seq > y->seq);
}

static sr_dataset_t *sr_dataset_build(sr_strmap_t *users, sr_strmap_t *items, sr_tmp_ev_t *evs,
                                      int64_t n) {
  sr_dataset_t *ds = sr_calloc(1, sizeof(*ds));
  ds->users = users;
  ds->items = items;
  ds->n_users = sr_strmap_count(users);
  ds->n_items = sr_strmap_count(items);
  ds->n_events = n;
  qsort(evs, (size_t)n, sizeof(*evs), sr_tmp_ev_cmp);
  ds->user_off = sr_calloc((size_t)ds->n_users + 1, sizeof(int64_t));
  ds->ev_item = sr_malloc((size_t)n * sizeof(int32_t));
  ds->ev_value = sr_malloc((size_t)n * sizeof(float));
  ds->ev_ts = sr_malloc((size_t)n * sizeof(int64_t));
  ds->ev_type = sr_malloc((size_t)n);
  ds->ev_seq = sr_malloc((size_t)n * sizeof(int64_t));
  for (int64_t i = 0; i < n; i++) {
    ds->user_off[evs[i].user + 1]++;
    ds->ev_item[i] = evs[i].item;
    ds->ev_value[i] = evs[i].value;
    ds->ev_ts[i] = evs[i].ts;
    ds->ev_type[i] = evs[i].type;
    ds->ev_seq[i] = evs[i].seq;
  }
  for (int32_t u = 0; u < ds->n_users; u++)
    ds->user_off[u + 1] += ds->user_off[u];
  return ds;
}

sr_err_t sr_dataset_from_rows(const sr_csv_row_t *rows, int64_t n, sr_dataset_t **out) {
  sr_strmap_t *users = sr_strmap_new(1024), *items = sr_strmap_new(1024);
  sr_tmp_ev_t *evs = sr_malloc((size_t)(n ? n : 1) * sizeof(*evs));
  for (int64_t i = 0; i < n; i++) {
    evs[i].user = sr_strmap_intern(users, rows[i].user.ptr, rows[i].user.len, NULL);
    evs[i].item = sr_strmap_intern(items, rows[i].item.ptr, rows[i].item.len, NULL);
    evs[i].value = rows[i].value;
    evs[i].ts = rows[i].ts_ms;
    evs[i].type = (uint8_t)(rows[i].type < 0 ? SR_EV_RATE : rows[i].type);
    evs[i].seq = i;
  }
  *out = sr_dataset_build(users, items, evs, n);
  sr_free(evs);
  return SR_OK;
}

sr_err_t sr_dataset_load_csv(const char *path, sr_dataset_t **out, char *errstr, size_t errsz) {
  FILE *f = strcmp(path, "-") ? fopen(path, "r") : stdin;
  if (!f) return sr_seterr(errstr, errsz, SR_ERR_IO, "%s: %s", path, strerror(errno));
  sr_strmap_t *users = sr_strmap_new(1024), *items = sr_strmap_new(1024);
  size_t cap = 1 << 16;
  int64_t n = 0, lineno = 0, bad = 0;
  sr_tmp_ev_t *evs = sr_malloc(cap * sizeof(*evs));
  char *line = NULL;
  size_t lcap = 0;
  ssize_t got;
  char err[256];
  while ((got = getline(&line, &lcap, f)) >= 0) {
    lineno++;
    size_t len = (size_t)got;
    if (len && line[len - 1] == '\n') len--;
    sr_csv_row_t row;
    sr_err_t e = sr_csv_parse(line, len, &row, err, sizeof(err));
    if (e == SR_ERR_NOT_FOUND) continue;
    if (e != SR_OK) {
      if (lineno == 1) continue; /* header */
      if (bad < 10) sr_log_warn("dataset", "%s:%lld: skipped: %s", path, (long long)lineno, err);
      bad++;
      continue;
    }
    if ((size_t)n == cap) {
      cap *= 2;
      evs = sr_realloc(evs, cap * sizeof(*evs));
    }
    evs[n].user = sr_strmap_intern(users, row.user.ptr, row.user.len, NULL);
    evs[n].item = sr_strmap_intern(items, row.item.ptr, row.item.len, NULL);
    evs[n].value = row.value;
    evs[n].ts = row.ts_ms;
    evs[n].type = (uint8_t)(row.type < 0 ? SR_EV_RATE : row.type);
    evs[n].seq = n;
    n++;
  }
  free(line);
  if (f != stdin) fclose(f);
  if (bad > 10) sr_log_warn("dataset", "%s: %lld bad lines skipped in all", path, (long long)bad);
  *out = sr_dataset_build(users, items, evs, n);
  (*out)->bad_lines = bad;
  sr_free(evs);
  return SR_OK;
}

sr_dataset_t *sr_dataset_filter_min_count(const sr_dataset_t *ds, int min_count) {
  int64_t *ucnt = sr_calloc((size_t)ds->n_users + 1, sizeof(int64_t));
  int64_t *icnt = sr_calloc((size_t)ds->n_items + 1, sizeof(int64_t));
  for (int32_t u = 0; u < ds->n_users; u++) {
    ucnt[u] = ds->user_off[u + 1] - ds->user_off[u];
    for (int64_t e = ds->user_off[u]; e < ds->user_off[u + 1]; e++)
      icnt[ds->ev_item[e]]++;
  }
  sr_strmap_t *users = sr_strmap_new(1024), *items = sr_strmap_new(1024);
  sr_tmp_ev_t *evs = sr_malloc((size_t)(ds->n_events ? ds->n_events : 1) * sizeof(*evs));
  int64_t n = 0;
  /* Intern in file order so dense ids follow first appearance as in a fresh load. */
  int64_t *order = sr_malloc((size_t)(ds->n_events ? ds->n_events : 1) * sizeof(int64_t));
  int32_t *owner = sr_malloc((size_t)(ds->n_events ? ds->n_events : 1) * sizeof(int32_t));
  for (int32_t u = 0; u < ds->n_users; u++)
    for (int64_t e = ds->user_off[u]; e < ds->user_off[u + 1]; e++) {
      order[ds->ev_seq[e]] = e;
      owner[ds->ev_seq[e]] = u;
    }
  for (int64_t s = 0; s < ds->n_events; s++) {
    int64_t e = order[s];
    int32_t u = owner[s];
    if (ucnt[u] < min_count || icnt[ds->ev_item[e]] < min_count) continue;
    sr_str_t uk = sr_strmap_key(ds->users, u), ik = sr_strmap_key(ds->items, ds->ev_item[e]);
    evs[n].user = sr_strmap_intern(users, uk.ptr, uk.len, NULL);
    evs[n].item = sr_strmap_intern(items, ik.ptr, ik.len, NULL);
    evs[n].value = ds->ev_value[e];
    evs[n].ts = ds->ev_ts[e];
    evs[n].type = ds->ev_type[e];
    evs[n].seq = n;
    n++;
  }
  sr_dataset_t *out = sr_dataset_build(users, items, evs, n);
  sr_free(evs);
  sr_free(order);
  sr_free(owner);
  sr_free(ucnt);
  sr_free(icnt);
  return out;
}

sr_err_t sr_dataset_write_csv(const sr_dataset_t *ds, FILE *f, int with_header) {
  if (with_header) fprintf(f, "userId,itemId,value,timestamp_ms,type\n");
  for (int32_t u = 0; u < ds->n_users; u++) {
    sr_str_t uk = sr_strmap_key(ds->users, u);
    for (int64_t e = ds->user_off[u]; e < ds->user_off[u + 1]; e++) {
      sr_str_t ik = sr_strmap_key(ds->items, ds->ev_item[e]);
      fprintf(f, "%.*s,%.*s,%g,%lld,%s\n", (int)uk.len, uk.ptr, (int)ik.len, ik.ptr,
              (double)ds->ev_value[e], (long long)ds->ev_ts[e],
              sr_event_type_name((sr_event_type_t)ds->ev_type[e]));
    }
  }
  return ferror(f) ? SR_ERR_IO : SR_OK;
}

void sr_dataset_destroy(sr_dataset_t *ds) {
  if (!ds) return;
  sr_strmap_destroy(ds->users);
  sr_strmap_destroy(ds->items);
  sr_free(ds->user_off);
  sr_free(ds->ev_item);
  sr_free(ds->ev_value);
  sr_free(ds->ev_ts);
  sr_free(ds->ev_type);
  sr_free(ds->ev_seq);
  sr_free(ds);
}
