/*
 * admin: the main-thread libuv loop. Signals and wake-ups end a wait; the
 * admin HTTP server answers GET requests with whatever the render callback
 * produces (the pipeline's Prometheus metrics and health). HTTP requests are
 * parsed with http-parser (Debian libhttp-parser-dev) rather than by hand,
 * by the socket-free handler in admin_http.c (shared with the fuzzer).
 *
 * A connection here owns a TCP handle, a request timer and its handler; it
 * never has more than one response in flight. A response gets a fresh
 * write request and buffer; while it is being written the connection stops
 * reading, and bytes that followed the answered request (a pipelined next
 * request) wait in c->pending until the write completed. Two pipelined
 * requests in one packet used to run on_message_complete twice in one
 * http_parser_execute(), reuse the queued uv_write_t and realloc the buffer
 * it pointed into (SIGSEGV).
 *
 * Limits (the why is in admin.h): connections beyond max_connections get a
 * 503 by uv_try_write and are closed at once; the timer closes a connection
 * that has not completed a request and its response within
 * request_timeout_ms; refusals (bodies, non-GET, long URL or headers) are
 * answered at once. After a "Connection: close" response the connection
 * shuts down its write side and discards input until the peer closes
 * (bounded by the same timer), so the peer reads the response instead of a
 * reset caused by unread input.
 *
 * The wait is one-shot per call: the handles stay open across calls so a
 * second SIGINT during shutdown is still caught (and ends a second wait).
 */
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "admin/admin_int.h"
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
  sr_admin_limits_t limits;
  sr_admin_stats_t stats;
};

typedef struct sr_http_conn_s {
  uv_tcp_t tcp;     /* data = this connection */
  uv_timer_t timer; /* request timeout; data = this connection */
  uv_shutdown_t shutdown;
  sr_loop_t *l;
  sr_admin_http_t http;
  sr_buf_t pending; /* read after the request being answered; parsed after its write */
  int open_handles; /* tcp + timer; freed when both closed */
  int reading, writing, draining, closing;
} sr_http_conn_t;

/* One response: its own write request and buffer, freed in the write cb. */
typedef struct sr_http_write_s {
  uv_write_t req;
  sr_http_conn_t *c;
  sr_buf_t out;
  int keep_alive;
} sr_http_write_t;

static void sr_http_conn_close(sr_http_conn_t *c);

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

/* The loop's own handles carry data = l; connection handles carry their
 * connection, which is closed (and freed) as a whole. */
static void sr_loop_close_walk(uv_handle_t *h, void *arg) {
  if (uv_is_closing(h)) return;
  if (h->data && h->data != arg)
    sr_http_conn_close(h->data);
  else
    uv_close(h, NULL);
}

void sr_loop_destroy(sr_loop_t *l) {
  if (!l) return;
  uv_walk(&l->loop, sr_loop_close_walk, l);
  uv_run(&l->loop, UV_RUN_DEFAULT);
  uv_loop_close(&l->loop);
  sr_free(l);
}

int sr_loop_wait(sr_loop_t *l) {
  l->result = -1;
  while (l->result < 0)
    uv_run(&l->loop, UV_RUN_DEFAULT);
  return l->result;
}

void sr_loop_wake(sr_loop_t *l) { uv_async_send(&l->wake); }

/* ---- HTTP ---- */
static void sr_http_on_close(uv_handle_t *h) {
  sr_http_conn_t *c = h->data;
  if (--c->open_handles > 0) return;
  c->l->stats.connections--;
  sr_buf_free(&c->pending);
  sr_free(c);
}

/* Idempotent; a write or shutdown still queued is cancelled (its callback
 * runs before the close callbacks, so c is still valid there). */
static void sr_http_conn_close(sr_http_conn_t *c) {
  if (c->closing) return;
  c->closing = 1;
  uv_close((uv_handle_t *)&c->tcp, sr_http_on_close);
  uv_close((uv_handle_t *)&c->timer, sr_http_on_close);
}

static void sr_http_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  static char slab[4096]; /* loop thread only; data is parsed (or copied to
                           * c->pending) before the next read */
  buf->base = slab;
  buf->len = sizeof(slab);
}

static void sr_http_on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);

static void sr_http_conn_read(sr_http_conn_t *c) {
  if (c->reading || c->closing) return;
  if (uv_read_start((uv_stream_t *)&c->tcp, sr_http_alloc, sr_http_on_read) != 0) {
    sr_http_conn_close(c);
    return;
  }
  c->reading = 1;
}

static void sr_http_on_timeout(uv_timer_t *t) {
  sr_http_conn_t *c = t->data;
  if (!c->draining) c->l->stats.timeouts++;
  sr_http_conn_close(c);
}

static void sr_http_on_shutdown(uv_shutdown_t *req, int status) {
  sr_http_conn_t *c = req->data;
  if (status != 0) sr_http_conn_close(c);
}

static void sr_http_conn_process(sr_http_conn_t *c, const char *data, size_t len);

static void sr_http_on_written(uv_write_t *req, int status) {
  sr_http_write_t *w = req->data;
  sr_http_conn_t *c = w->c;
  int keep = w->keep_alive && status == 0;
  sr_buf_free(&w->out);
  sr_free(w);
  c->writing = 0;
  if (c->closing) return;
  if (status != 0) {
    sr_http_conn_close(c);
    return;
  }
  if (!keep) {
    /* FIN after the response, then discard input until the peer closes or
     * the timer fires: closing with unread input would send a reset that
     * can destroy the response in the peer's receive queue. */
    c->draining = 1;
    c->shutdown.data = c;
    if (uv_shutdown(&c->shutdown, (uv_stream_t *)&c->tcp, sr_http_on_shutdown) != 0) {
      sr_http_conn_close(c);
      return;
    }
    sr_buf_free(&c->pending);
    sr_http_conn_read(c);
    return;
  }
  /* Keep-alive: the next request has its own deadline, and the bytes that
   * arrived with the previous one are parsed now, not before. */
  sr_admin_http_next(&c->http);
  uv_timer_start(&c->timer, sr_http_on_timeout, (uint64_t)c->l->limits.request_timeout_ms, 0);
  sr_buf_t in = c->pending;
  sr_buf_init(&c->pending);
  sr_http_conn_process(c, (const char *)in.data, in.len);
  sr_buf_free(&in);
  if (!c->writing) sr_http_conn_read(c);
}

/* Feeds bytes to the connection's handler; a complete response goes out on a
 * fresh write request and reading stops until it was written. */
static void sr_http_conn_process(sr_http_conn_t *c, const char *data, size_t len) {
  sr_buf_t out;
  if (c->closing || len == 0) return;
  if (c->writing) { /* not reading while writing; kept for safety */
    sr_buf_append(&c->pending, data, len);
    return;
  }
  sr_buf_init(&out);
  size_t used = sr_admin_http_feed(&c->http, data, len, &out);
  if (!c->http.responded) {
    sr_buf_free(&out);
    return;
  }
  sr_loop_t *l = c->l;
  l->stats.responses++;
  if (c->http.error) l->stats.refused++;
  sr_http_write_t *w = sr_calloc(1, sizeof(*w));
  w->c = c;
  w->out = out; /* moved */
  w->keep_alive = c->http.keep_alive;
  w->req.data = w;
  if (w->keep_alive && used < len) sr_buf_append(&c->pending, data + used, len - used);
  if (c->reading) {
    uv_read_stop((uv_stream_t *)&c->tcp);
    c->reading = 0;
  }
  uv_buf_t b = uv_buf_init((char *)w->out.data, (unsigned)w->out.len);
  if (uv_write(&w->req, (uv_stream_t *)&c->tcp, &b, 1, sr_http_on_written) != 0) {
    sr_buf_free(&w->out);
    sr_free(w);
    sr_http_conn_close(c);
    return;
  }
  c->writing = 1;
}

static void sr_http_on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
  sr_http_conn_t *c = s->data;
  if (nread < 0) { /* EOF or error; a response still being written was not
                    * reading, so this never cuts one short */
    sr_http_conn_close(c);
    return;
  }
  if (nread == 0 || c->draining) return;
  sr_http_conn_process(c, buf->base, (size_t)nread);
}

static void sr_http_on_close_free(uv_handle_t *h) { sr_free(h); }

static void sr_http_reject(sr_loop_t *l, uv_stream_t *server) {
  static const char busy[] = "HTTP/1.1 503 Service Unavailable\r\n"
                             "Content-Type: text/plain; charset=utf-8\r\n"
                             "Content-Length: 27\r\nConnection: close\r\n\r\n"
                             "too many admin connections\n";
  uv_tcp_t *t = sr_calloc(1, sizeof(*t));
  uv_tcp_init(&l->loop, t);
  t->data = NULL;
  if (uv_accept(server, (uv_stream_t *)t) == 0) {
    uv_buf_t b = uv_buf_init((char *)busy, sizeof(busy) - 1);
    (void)uv_try_write((uv_stream_t *)t, &b, 1); /* best effort: the close matters */
    l->stats.rejected++;
  }
  uv_close((uv_handle_t *)t, sr_http_on_close_free);
}

static void sr_http_on_connect(uv_stream_t *server, int status) {
  sr_loop_t *l = server->data;
  if (status < 0) return;
  if (l->stats.connections >= l->limits.max_connections) {
    sr_http_reject(l, server);
    return;
  }
  sr_http_conn_t *c = sr_calloc(1, sizeof(*c));
  c->l = l;
  sr_buf_init(&c->pending);
  uv_tcp_init(&l->loop, &c->tcp);
  uv_timer_init(&l->loop, &c->timer);
  c->tcp.data = c->timer.data = c;
  c->open_handles = 2;
  l->stats.connections++;
  if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0) {
    sr_http_conn_close(c);
    return;
  }
  l->stats.accepted++;
  sr_admin_http_init(&c->http, l->render, l->opaque);
  uv_timer_start(&c->timer, sr_http_on_timeout, (uint64_t)l->limits.request_timeout_ms, 0);
  sr_http_conn_read(c);
}

sr_err_t sr_loop_admin_listen(sr_loop_t *l, const char *addr, int port,
                              const sr_admin_limits_t *limits, sr_admin_render_cb_t *cb,
                              void *opaque, char *errstr, size_t errsz) {
  struct sockaddr_in sa;
  int r;
  if (port == 0) return SR_OK;
  l->render = cb;
  l->opaque = opaque;
  l->limits.max_connections = limits && limits->max_connections > 0
                                  ? limits->max_connections
                                  : SR_ADMIN_DEFAULT_MAX_CONNECTIONS;
  l->limits.request_timeout_ms = limits && limits->request_timeout_ms > 0
                                     ? limits->request_timeout_ms
                                     : SR_ADMIN_DEFAULT_REQUEST_TIMEOUT_MS;
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

void sr_loop_admin_stats(const sr_loop_t *l, sr_admin_stats_t *st) { *st = l->stats; }

int sr_loop_admin_port(const sr_loop_t *l) { return l->port; }

int sr_admin_wait_signal(void) {
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
