/*
 * admin_http: the admin server's request handler, bytes in, one response out
 * (contract and refusals in admin_int.h). No sockets here, so the fuzzer and
 * the libuv connections in admin.c run the same code.
 *
 * The handler pauses http-parser in on_message_complete, so one
 * http_parser_execute() never answers two pipelined requests; refusals are
 * decided as early as the parser allows (a body in on_headers_complete, a
 * long URL in on_url) by returning non-zero from the callback, so a client
 * announcing a body that never comes is answered at once, not at the
 * request timeout.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "admin/admin_int.h"

static const char *sr_admin_http_reason(int status) {
  switch (status) {
  case 200: return "OK";
  case 400: return "Bad Request";
  case 404: return "Not Found";
  case 405: return "Method Not Allowed";
  case 413: return "Content Too Large";
  case 414: return "URI Too Long";
  case 431: return "Request Header Fields Too Large";
  case 500: return "Internal Server Error";
  case 503: return "Service Unavailable";
  default: return status < 300 ? "OK" : status < 500 ? "Error" : "Server Error";
  }
}

static void sr_admin_http_respond(sr_admin_http_t *h, int status, const char *ctype,
                                  const sr_buf_t *body, int keep_alive) {
  size_t n = body ? body->len : 0;
  sr_buf_printf(h->out,
                "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n%s"
                "Connection: %s\r\n\r\n",
                status, sr_admin_http_reason(status), ctype, n,
                status == 405 ? "Allow: GET\r\n" : "", keep_alive ? "keep-alive" : "close");
  if (n) sr_buf_append(h->out, body->data, n);
  h->responded = 1;
  h->keep_alive = keep_alive;
  h->status = status;
}

static void sr_admin_http_refuse(sr_admin_http_t *h, int status, const char *why) {
  sr_buf_t body;
  sr_buf_init(&body);
  sr_buf_printf(&body, "%s\n", why);
  sr_admin_http_respond(h, status, "text/plain; charset=utf-8", &body, 0);
  h->error = 1;
  sr_buf_free(&body);
}

static int sr_admin_http_on_begin(http_parser *hp) {
  sr_admin_http_t *h = hp->data;
  h->path_len = 0;
  h->path[0] = 0;
  h->url_too_long = 0;
  return 0;
}

/* A long URL is only marked here and refused at the end of the headers:
 * on_url runs once per read chunk, so refusing here would answer 414 or 400
 * depending on how the bytes arrived. Its bytes still count towards the
 * header bound, so a never-ending URL meets 431. */
static int sr_admin_http_on_url(http_parser *hp, const char *at, size_t len) {
  sr_admin_http_t *h = hp->data;
  if (h->url_too_long || len > SR_ADMIN_MAX_URL_BYTES - h->path_len) {
    h->url_too_long = 1;
    return 0;
  }
  memcpy(h->path + h->path_len, at, len);
  h->path_len += len;
  h->path[h->path_len] = 0;
  return 0;
}

static int sr_admin_http_on_headers(http_parser *hp) {
  sr_admin_http_t *h = hp->data;
  int has_body = (hp->flags & F_CHUNKED) || hp->uses_transfer_encoding ||
                 ((hp->flags & F_CONTENTLENGTH) && hp->content_length != 0 &&
                  hp->content_length != UINT64_MAX);
  if (h->url_too_long)
    h->refuse = 414;
  else if (has_body)
    h->refuse = 413;
  else if (hp->method != HTTP_GET)
    h->refuse = 405;
  return h->refuse ? -1 : 0;
}

static int sr_admin_http_on_complete(http_parser *hp) {
  sr_admin_http_t *h = hp->data;
  sr_buf_t body;
  sr_buf_init(&body);
  char *q = strchr(h->path, '?');
  if (q) *q = 0;
  const char *ctype = "text/plain; charset=utf-8";
  int status = h->render ? h->render(h->opaque, h->path, &body, &ctype) : 404;
  if (status < 100 || status > 599) status = 500;
  /* After an upgrade request the rest of the stream is another protocol. */
  sr_admin_http_respond(h, status, ctype, &body, !hp->upgrade && http_should_keep_alive(hp));
  sr_buf_free(&body);
  http_parser_pause(hp, 1);
  return 0;
}

static const http_parser_settings sr_admin_http_settings = {
    .on_message_begin = sr_admin_http_on_begin,
    .on_url = sr_admin_http_on_url,
    .on_headers_complete = sr_admin_http_on_headers,
    .on_message_complete = sr_admin_http_on_complete,
};

void sr_admin_http_init(sr_admin_http_t *h, sr_admin_render_cb_t *render, void *opaque) {
  memset(h, 0, sizeof(*h));
  http_parser_set_max_header_size(SR_ADMIN_MAX_HEADER_BYTES);
  http_parser_init(&h->parser, HTTP_REQUEST);
  h->parser.data = h;
  h->render = render;
  h->opaque = opaque;
}

size_t sr_admin_http_feed(sr_admin_http_t *h, const char *data, size_t len, sr_buf_t *out) {
  if (h->responded || len == 0) return 0;
  h->out = out;
  size_t used = http_parser_execute(&h->parser, &sr_admin_http_settings, data, len);
  enum http_errno e = HTTP_PARSER_ERRNO(&h->parser);
  if (h->responded) { /* paused in on_message_complete */
    if (e == HPE_PAUSED) http_parser_pause(&h->parser, 0);
  } else if (h->refuse) {
    sr_admin_http_refuse(h, h->refuse,
                         h->refuse == 413   ? "request bodies are not accepted"
                         : h->refuse == 405 ? "only GET"
                                            : "URL too long");
    used = len;
  } else if (e != HPE_OK) {
    char why[96];
    snprintf(why, sizeof(why), "bad request: %s", http_errno_name(e));
    sr_admin_http_refuse(h, e == HPE_HEADER_OVERFLOW ? 431 : 400, why);
    used = len;
  } else if (h->parser.upgrade) { /* upgrade without a complete request: not ours */
    sr_admin_http_refuse(h, 400, "bad request: upgrade");
    used = len;
  }
  h->out = NULL;
  return used;
}

void sr_admin_http_next(sr_admin_http_t *h) {
  h->responded = h->keep_alive = h->status = h->error = 0;
  h->refuse = 0;
}
