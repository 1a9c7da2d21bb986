/*
 * admin: the main-thread libuv loop. Signals and wake-ups end a wait; the
 * admin HTTP server answers GET requests with whatever the render callback
 * produces (the pipeline's Prometheus metrics and health). HTTP requests are
 * parsed with http-parser (Debian libhttp-parser-dev) rather than by hand.
 *
 * The wait is one-shot per call: the handles stay open across calls so a
 * second SIGINT during shutdown is still caught (and ends a second wait).
 */
#include <http_parser.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "cli/cli.h"
#include "streamrec/admin.h"

struct sr_loop_s {
  uv_loop_t loop;
  uv_signal_t sigint, sigterm;
  uv_async_t wake;
  uv_tcp_t server;
  int server_open;
  int port;
  int result;
  sr_admin_render_cb_t *render;
  void *opaque;
};

typedef struct sr_http_conn_s {
  uv_tcp_t tcp;
  sr_loop_t *l;
  http_parser parser;
  char path[256];
  int done;
  uv_write_t wreq;
  sr_buf_t out;
} sr_http_conn_t;

static void sr_loop_on_signal(uv_signal_t *h, int signum) {
  sr_loop_t *l = h->data;
  l->result = signum;
  uv_stop(&l->loop);
}

static void sr_loop_on_wake(uv_async_t *h) {
  sr_loop_t *l = h->data;
  l->result = 0;
  uv_stop(&l->loop);
}

sr_loop_t *sr_loop_new(char *errstr, size_t errsz) {
  sr_loop_t *l = sr_calloc(1, sizeof(*l));
  int r = uv_loop_init(&l->loop);
  if (r != 0) {
    sr_seterr(errstr, errsz, SR_ERR_FATAL, "uv_loop_init: %s", uv_strerror(r));
    sr_free(l);
    return NULL;
  }
  uv_signal_init(&l->loop, &l->sigint);
  uv_signal_init(&l->loop, &l->sigterm);
  uv_async_init(&l->loop, &l->wake, sr_loop_on_wake);
  l->sigint.data = l->sigterm.data = l->wake.data = l;
  uv_signal_start(&l->sigint, sr_loop_on_signal, SIGINT);
  uv_signal_start(&l->sigterm, sr_loop_on_signal, SIGTERM);
  return l;
}

static void sr_loop_close_walk(uv_handle_t *h, void *arg) {
  if (!uv_is_closing(h)) uv_close(h, NULL);
}

void sr_loop_destroy(sr_loop_t *l) {
  if (!l) return;
  uv_walk(&l->loop, sr_loop_close_walk, NULL);
  uv_run(&l->loop, UV_RUN_DEFAULT);
  uv_loop_close(&l->loop);
  sr_free(l);
}

int sr_loop_wait(sr_loop_t *l) {
  l->result = -1;
  while (l->result < 0) uv_run(&l->loop, UV_RUN_DEFAULT);
  return l->result;
}

void sr_loop_wake(sr_loop_t *l) { uv_async_send(&l->wake); }

/* ---- HTTP ---- */
static void sr_http_on_close(uv_handle_t *h) {
  sr_http_conn_t *c = h->data;
  sr_buf_free(&c->out);
  sr_free(c);
}

static void sr_http_on_written(uv_write_t *req, int status) {
  sr_http_conn_t *c = req->data;
  uv_close((uv_handle_t *)&c->tcp, sr_http_on_close);
}

static int sr_http_on_url(http_parser *hp, const char *at, size_t len) {
  sr_http_conn_t *c = hp->data;
  size_t have = strlen(c->path);
  size_t n = SR_MIN(len, sizeof(c->path) - 1 - have);
  memcpy(c->path + have, at, n);
  c->path[have + n] = 0;
  return 0;
}

static void sr_http_respond(sr_http_conn_t *c, int status, const char *ctype,
                            const sr_buf_t *body) {
  const char *reason = status == 200 ? "OK" : status == 404 ? "Not Found"
                       : status == 503 ? "Service Unavailable" : status == 405 ? "Method Not Allowed" : "Error";
  sr_buf_printf(&c->out,
                "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                "Connection: close\r\n\r\n",
                status, reason, ctype, body ? body->len : 0);
  if (body) sr_buf_append(&c->out, body->data, body->len);
  uv_buf_t b = uv_buf_init((char *)c->out.data, (unsigned)c->out.len);
  c->wreq.data = c;
  if (uv_write(&c->wreq, (uv_stream_t *)&c->tcp, &b, 1, sr_http_on_written) != 0)
    uv_close((uv_handle_t *)&c->tcp, sr_http_on_close);
}

static int sr_http_on_complete(http_parser *hp) {
  sr_http_conn_t *c = hp->data;
  sr_buf_t body;
  sr_buf_init(&body);
  c->done = 1;
  if (hp->method != HTTP_GET) {
    sr_buf_printf(&body, "only GET\n");
    sr_http_respond(c, 405, "text/plain", &body);
  } else {
    char *q = strchr(c->path, '?');
    if (q) *q = 0;
    const char *ctype = "text/plain; charset=utf-8";
    int status = c->l->render ? c->l->render(c->l->opaque, c->path, &body, &ctype) : 404;
    sr_http_respond(c, status, ctype, &body);
  }
  sr_buf_free(&body);
  return 0;
}

static const http_parser_settings sr_http_settings = {
    .on_url = sr_http_on_url,
    .on_message_complete = sr_http_on_complete,
};

static void sr_http_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  static char slab[4096]; /* loop thread only; data is parsed before the next read */
  buf->base = slab;
  buf->len = sizeof(slab);
}

static void sr_http_on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
  sr_http_conn_t *c = s->data;
  if (nread < 0) {
    if (!c->done) uv_close((uv_handle_t *)s, sr_http_on_close);
    return;
  }
  if (c->done || nread == 0) return;
  size_t used = http_parser_execute(&c->parser, &sr_http_settings, buf->base, (size_t)nread);
  if (used != (size_t)nread && !c->done) {
    sr_buf_t body;
    sr_buf_init(&body);
    sr_buf_printf(&body, "bad request: %s\n", http_errno_name(HTTP_PARSER_ERRNO(&c->parser)));
    c->done = 1;
    uv_read_stop(s);
    sr_http_respond(c, 400, "text/plain", &body);
    sr_buf_free(&body);
  } else if (c->done) {
    uv_read_stop(s);
  }
}

static void sr_http_on_connect(uv_stream_t *server, int status) {
  sr_loop_t *l = server->data;
  if (status < 0) return;
  sr_http_conn_t *c = sr_calloc(1, sizeof(*c));
  c->l = l;
  sr_buf_init(&c->out);
  uv_tcp_init(&l->loop, &c->tcp);
  c->tcp.data = c;
  if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0) {
    uv_close((uv_handle_t *)&c->tcp, sr_http_on_close);
    return;
  }
  http_parser_init(&c->parser, HTTP_REQUEST);
  c->parser.data = c;
  uv_read_start((uv_stream_t *)&c->tcp, sr_http_alloc, sr_http_on_read);
}

sr_err_t sr_loop_admin_listen(sr_loop_t *l, const char *addr, int port,
                              sr_admin_render_cb_t *cb, void *opaque, char *errstr,
                              size_t errsz) {
  struct sockaddr_in sa;
  int r;
  if (port == 0) return SR_OK;
  l->render = cb;
  l->opaque = opaque;
  if ((r = uv_ip4_addr(addr, port < 0 ? 0 : port, &sa)) != 0)
    return sr_seterr(errstr, errsz, SR_ERR_CONF, "admin address %s: %s", addr, uv_strerror(r));
  uv_tcp_init(&l->loop, &l->server);
  l->server.data = l;
  l->server_open = 1;
  if ((r = uv_tcp_bind(&l->server, (const struct sockaddr *)&sa, 0)) != 0 ||
      (r = uv_listen((uv_stream_t *)&l->server, 64, sr_http_on_connect)) != 0)
    return sr_seterr(errstr, errsz, SR_ERR_IO, "admin listen on %s:%d: %s", addr, port,
                     uv_strerror(r));
  struct sockaddr_storage ss;
  int len = sizeof(ss);
  uv_tcp_getsockname(&l->server, (struct sockaddr *)&ss, &len);
  l->port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
  return SR_OK;
}

int sr_loop_admin_port(const sr_loop_t *l) { return l->port; }

int sr_cli_wait_signal(void) {
  char es[256];
  sr_loop_t *l = sr_loop_new(es, sizeof(es));
  if (!l) {
    sr_log_error("admin", "%s", es);
    return -1;
  }
  int sig = sr_loop_wait(l);
  sr_loop_destroy(l);
  return sig;
}
