/*
 * libFuzzer target for the admin server's request handler
 * (sr_admin_http_feed(), src/admin/admin_int.h) on untrusted bytes, driven
 * the way admin.c drives it: feed, and after each response take the rest of
 * the input only if the response kept the connection alive.
 *
 * Oracles, abort() on any violation so libFuzzer records the input:
 *  - every response starts with "HTTP/1.1 NNN ", has one Content-Length equal
 *    to its body length and a Connection header that matches keep_alive;
 *  - at most one response per feed; nothing after a "Connection: close";
 *  - the render callback runs only for complete requests: its i-th path is
 *    the i-th URL (query stripped) that a second, unpaused http-parser sees
 *    complete on the same bytes, and there are never more responses than
 *    header sections that parser completed (+1 for a final refusal of bad
 *    input); no response at all for a valid incomplete prefix;
 *  - refusals are 400/405/413/414/431 and close;
 *  - feeding the input in one piece and byte by byte gives the same bytes.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin/admin_int.h"

#define MAXREC 64

static void must(int ok, const char *what) {
  if (ok) return;
  fprintf(stderr, "fuzz_admin_http: %s\n", what);
  abort();
}

/* ---- the render callback: records what it was asked for ---- */
typedef struct {
  int calls;
  char paths[MAXREC][SR_ADMIN_MAX_URL_BYTES + 1];
} render_log_t;

static int render(void *opaque, const char *path, sr_buf_t *out, const char **ctype) {
  render_log_t *rl = opaque;
  must(strlen(path) <= SR_ADMIN_MAX_URL_BYTES, "render path longer than the URL bound");
  must(strchr(path, '?') == NULL, "render path kept its query");
  if (rl->calls < MAXREC) strcpy(rl->paths[rl->calls], path);
  rl->calls++;
  if (!strcmp(path, "/healthz")) {
    sr_buf_printf(out, "ok\n");
    return 200;
  }
  if (!strcmp(path, "/metrics")) {
    *ctype = "text/plain; version=0.0.4; charset=utf-8";
    for (int i = 0; i < 200; i++)
      sr_buf_printf(out, "streamrec_fuzz_total{i=\"%d\"} %d\n", i, i);
    return 200;
  }
  if (!strcmp(path, "/readyz")) return 503; /* empty body */
  sr_buf_printf(out, "not found\n");
  return 404;
}

/* ---- reference: a plain http-parser over the whole input, never paused ---- */
typedef struct {
  int headers, complete, long_url;
  size_t url_len;
  char url[SR_ADMIN_MAX_URL_BYTES + 2];
  char urls[MAXREC][SR_ADMIN_MAX_URL_BYTES + 2];
} ref_t;

static int ref_begin(http_parser *p) {
  ref_t *r = p->data;
  r->url_len = 0;
  r->url[0] = 0;
  return 0;
}
static int ref_url(http_parser *p, const char *at, size_t len) {
  ref_t *r = p->data;
  if (r->url_len + len > SR_ADMIN_MAX_URL_BYTES) r->long_url = 1;
  size_t n = SR_MIN(len, sizeof(r->url) - 1 - r->url_len);
  memcpy(r->url + r->url_len, at, n);
  r->url_len += n;
  r->url[r->url_len] = 0;
  return 0;
}
static int ref_headers(http_parser *p) {
  ((ref_t *)p->data)->headers++;
  return 0;
}
static int ref_complete(http_parser *p) {
  ref_t *r = p->data;
  if (r->complete < MAXREC) {
    strcpy(r->urls[r->complete], r->url);
    char *q = strchr(r->urls[r->complete], '?');
    if (q) *q = 0;
  }
  r->complete++;
  return 0;
}
static const http_parser_settings ref_settings = {
    .on_message_begin = ref_begin,
    .on_url = ref_url,
    .on_headers_complete = ref_headers,
    .on_message_complete = ref_complete,
};

/* ---- one response: well formed, returns its status ---- */
static int check_response(const sr_buf_t *out, int keep_alive) {
  const char *p = (const char *)out->data;
  size_t n = out->len;
  must(n >= 13 && !memcmp(p, "HTTP/1.1 ", 9), "response does not start with HTTP/1.1");
  must(p[9] >= '1' && p[9] <= '5' && p[10] >= '0' && p[10] <= '9' && p[11] >= '0' && p[11] <= '9' &&
           p[12] == ' ',
       "bad status code");
  int status = (p[9] - '0') * 100 + (p[10] - '0') * 10 + (p[11] - '0');
  const char *hend = memmem(p, n, "\r\n\r\n", 4);
  must(hend != NULL, "response without the end of its headers");
  size_t hlen = (size_t)(hend - p) + 4;
  const char *cl = memmem(p, hlen, "\r\nContent-Length: ", 18);
  must(cl != NULL, "response without Content-Length");
  must(memmem(cl + 18, hlen - (size_t)(cl + 18 - p), "\r\nContent-Length: ", 18) == NULL,
       "two Content-Length headers");
  char *e;
  unsigned long len = strtoul(cl + 18, &e, 10);
  must(e[0] == '\r' && e[1] == '\n', "Content-Length not a number");
  must(len == n - hlen, "Content-Length differs from the body length");
  const char *conn = keep_alive ? "\r\nConnection: keep-alive\r\n" : "\r\nConnection: close\r\n";
  must(memmem(p, hlen, conn, strlen(conn)) != NULL, "Connection header does not match");
  return status;
}

/* Drives one connection over data in chunks of step bytes (0 = whole);
 * appends every response to all. Returns the number of responses. */
static int drive(const uint8_t *data, size_t size, size_t step, render_log_t *rl, sr_buf_t *all,
                 int *n_refused) {
  sr_admin_http_t h;
  sr_buf_t out;
  int responses = 0;
  sr_buf_init(&out);
  sr_admin_http_init(&h, render, rl);
  size_t off = 0;
  int open = 1;
  *n_refused = 0;
  while (off < size && open) {
    size_t chunk = step ? SR_MIN(step, size - off) : size - off;
    sr_buf_reset(&out);
    int before = rl->calls;
    size_t used = sr_admin_http_feed(&h, (const char *)data + off, chunk, &out);
    must(used <= chunk, "used more than fed");
    if (!h.responded) {
      must(used == chunk, "stopped early without a response");
      must(out.len == 0, "output without a response");
      must(rl->calls == before, "rendered without a response");
      off += chunk;
      continue;
    }
    responses++;
    int status = check_response(&out, h.keep_alive);
    must(status == h.status, "status differs from h.status");
    if (h.error) {
      must(rl->calls == before, "a refusal ran the render callback");
      must(status == 400 || status == 405 || status == 413 || status == 414 || status == 431,
           "unexpected refusal status");
      must(!h.keep_alive, "a refusal kept the connection alive");
      (*n_refused)++;
    } else {
      must(rl->calls == before + 1, "one response, not one render");
    }
    sr_buf_t extra;
    sr_buf_init(&extra);
    must(sr_admin_http_feed(&h, "GET / HTTP/1.1\r\n\r\n", 18, &extra) == 0 && extra.len == 0,
         "fed while a response was pending");
    sr_buf_free(&extra);
    sr_buf_append(all, out.data, out.len);
    off += used;
    if (h.keep_alive)
      sr_admin_http_next(&h);
    else
      open = 0;
  }
  sr_buf_free(&out);
  return responses;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  render_log_t rl1, rl2;
  sr_buf_t all1, all2;
  int refused1, refused2;
  ref_t ref;
  memset(&rl1, 0, sizeof(rl1));
  memset(&rl2, 0, sizeof(rl2));
  sr_buf_init(&all1);
  sr_buf_init(&all2);

  int n1 = drive(data, size, 0, &rl1, &all1, &refused1);
  int n2 = drive(data, size, 1, &rl2, &all2, &refused2);
  must(n1 == n2 && refused1 == refused2, "response count depends on how the bytes arrive");
  must(all1.len == all2.len && (all1.len == 0 || !memcmp(all1.data, all2.data, all1.len)),
       "responses depend on how the bytes arrive");
  must(rl1.calls == rl2.calls, "render calls depend on how the bytes arrive");
  must(refused1 <= 1, "more than one refusal on one connection");

  /* The reference parser (same global header bound, set by _init above). */
  memset(&ref, 0, sizeof(ref));
  http_parser p;
  http_parser_init(&p, HTTP_REQUEST);
  p.data = &ref;
  http_parser_execute(&p, &ref_settings, (const char *)data, size);
  int ref_error = HTTP_PARSER_ERRNO(&p) != HPE_OK;

  must(rl1.calls <= ref.complete, "rendered a request the reference did not complete");
  for (int i = 0; i < rl1.calls && i < MAXREC; i++)
    must(!strcmp(rl1.paths[i], ref.urls[i]), "rendered path is not the request's URL");
  must(n1 <= ref.headers + (ref_error || ref.long_url || p.upgrade ? 1 : 0),
       "more responses than requests");
  if (!ref_error && !ref.long_url && ref.headers == 0)
    must(n1 == 0, "a response for an incomplete request");

  sr_buf_free(&all1);
  sr_buf_free(&all2);
  return 0;
}
