/*
 * admin internals: the per-connection HTTP request handler, kept apart from
 * the sockets so that one code path serves both the libuv connections
 * (admin.c) and the libFuzzer target (tests/fuzz/fuzz_admin_http.c), which
 * drives it from bytes.
 *
 * The handler turns request bytes into at most one response at a time: after
 * a complete request (or a request it refuses) it pauses the parser and
 * appends exactly one response; the caller writes it, and only after that
 * write completed calls sr_admin_http_next() and feeds the bytes that
 * followed. So a connection never has two responses in flight, however many
 * requests a client pipelines into one packet.
 *
 * What it refuses, answered at once with an error status and
 * "Connection: close" (the caller closes after writing):
 *  - any request body (Content-Length > 0, Transfer-Encoding): 413, decided
 *    in on_headers_complete, without waiting for the body;
 *  - methods other than GET: 405;
 *  - a URL longer than SR_ADMIN_MAX_URL_BYTES: 414 (decided at the end of
 *    the headers, so the answer does not depend on how the bytes arrived);
 *  - a header section over SR_ADMIN_MAX_HEADER_BYTES (http-parser's own
 *    bound, lowered from its 80 KB default): 431;
 *  - anything http-parser rejects: 400.
 *
 * Thread: one handler is used by one thread at a time (the loop thread).
 */
#ifndef STREAMREC_ADMIN_INT_H
#define STREAMREC_ADMIN_INT_H

#include <http_parser.h>

#include "streamrec/admin.h"

#define SR_ADMIN_MAX_URL_BYTES 255
/* Process-wide: http_parser_set_max_header_size() is global, and admin/ is
 * the only http-parser user. */
#define SR_ADMIN_MAX_HEADER_BYTES (8 * 1024)

typedef struct sr_admin_http_s {
  http_parser parser;
  sr_admin_render_cb_t *render; /* may be NULL: every path answers 404 */
  void *opaque;
  sr_buf_t *out; /* borrowed for the duration of one sr_admin_http_feed() */
  char path[SR_ADMIN_MAX_URL_BYTES + 1];
  size_t path_len;
  int url_too_long; /* the URL passed SR_ADMIN_MAX_URL_BYTES: 414 at the headers' end */
  int refuse;       /* != 0: status of a refusal decided in a callback */
  int responded;    /* a response was appended; write it, then _next() */
  int keep_alive;   /* with responded: the connection may carry another request */
  int status;       /* with responded: the status sent */
  int error;        /* with responded: a refusal (4xx by the handler, not render) */
} sr_admin_http_t;

/* Prepares h for the first request of a connection. render and opaque are
 * borrowed; render runs inside sr_admin_http_feed(). */
void sr_admin_http_init(sr_admin_http_t *h, sr_admin_render_cb_t *render, void *opaque);

/* Feeds len bytes of the connection's input. Returns how many were used:
 * when h->responded becomes 1, exactly one complete response was appended to
 * out and data[return value..len) was not looked at (the next request; only
 * meaningful with h->keep_alive, else discard it and close after the write).
 * Otherwise all bytes were used and nothing was appended (incomplete
 * request). Returns 0 and does nothing while a response is pending
 * (h->responded). out is borrowed for the call. */
size_t sr_admin_http_feed(sr_admin_http_t *h, const char *data, size_t len, sr_buf_t *out);

/* After the response was written on a keep-alive connection: ready for the
 * next request (keeps the parser's position in the byte stream). */
void sr_admin_http_next(sr_admin_http_t *h);

#endif
