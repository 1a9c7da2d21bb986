/*
 * admin: the only module that includes libuv. Owns the main thread's
 * event loop: SIGINT/SIGTERM handling, cross-thread wake-ups (uv_async_send,
 * the one thread-safe libuv call), and the admin HTTP endpoint (/metrics in
 * Prometheus text, /healthz, /readyz).
 *
 * The admin port is bounded, because it shares the process with the Kafka
 * clients: every admin connection is a descriptor they can no longer open,
 * and a fault campaign held 3,000 idle connections for good and, under
 * ulimit -n 1024, starved the clients and /healthz with 1,100. So:
 *  - at most max_connections at once; one more is answered 503 and closed
 *    at once (counted as rejected);
 *  - each connection must complete a request, and take its response,
 *    within request_timeout_ms of its start (of the accept, or of the end
 *    of the previous response on a keep-alive connection); otherwise it is
 *    closed (counted as timed out);
 *  - GET only, no request bodies (413 without waiting for the body), URL
 *    and header section bounded (414, 431): nothing a client sends is
 *    buffered beyond a few KB;
 *  - one response in flight per connection: pipelined requests are
 *    answered one after the other, each after the previous write completed.
 *
 * Thread: create, run and destroy on the main thread; sr_loop_wake() from
 * any thread.
 */
#ifndef STREAMREC_ADMIN_H
#define STREAMREC_ADMIN_H

#include "streamrec/common.h"

typedef struct sr_loop_s sr_loop_t;

/* Renders the body of an admin endpoint into out; returns the HTTP status.
 * Runs on the loop thread. path is the request path ("/metrics", ...). */
typedef int(sr_admin_render_cb_t)(void *opaque, const char *path, sr_buf_t *out,
                                  const char **content_type);

sr_loop_t *sr_loop_new(char *errstr, size_t errsz);
void sr_loop_destroy(sr_loop_t *l); /* accepts NULL */

#define SR_ADMIN_DEFAULT_MAX_CONNECTIONS 64
#define SR_ADMIN_DEFAULT_REQUEST_TIMEOUT_MS 5000

/* Limits of the admin HTTP server (see the top of this file for why). */
typedef struct sr_admin_limits_s {
  int max_connections;    /* open connections at once; <= 0: the default (64) */
  int request_timeout_ms; /* per request, accept to response written; <= 0: default (5000) */
} sr_admin_limits_t;

/* Serves HTTP GET on addr:port (port 0 = disabled) with render_cb.
 * limits may be NULL (defaults); copied. cb and opaque are borrowed until
 * sr_loop_destroy(). */
sr_err_t sr_loop_admin_listen(sr_loop_t *l, const char *addr, int port,
                              const sr_admin_limits_t *limits, sr_admin_render_cb_t *cb,
                              void *opaque, char *errstr, size_t errsz);
/* The port actually bound (useful with port -1 = ephemeral). */
int sr_loop_admin_port(const sr_loop_t *l);

/* Counters of the admin HTTP server since sr_loop_admin_listen(). */
typedef struct sr_admin_stats_s {
  int64_t connections; /* open now */
  int64_t accepted;    /* connections served (not counting rejected ones) */
  int64_t rejected;    /* answered 503 and closed: max_connections reached */
  int64_t timeouts;    /* closed for not completing a request in request_timeout_ms */
  int64_t responses;   /* responses written or queued, refusals included */
  int64_t refused;     /* requests refused by the handler (400, 405, 413, 414, 431) */
} sr_admin_stats_t;
/* Fills st. Thread: the loop thread, or any thread while no sr_loop_wait()
 * runs (the counters are plain integers owned by the loop). */
void sr_loop_admin_stats(const sr_loop_t *l, sr_admin_stats_t *st);

/* Runs the loop until SIGINT/SIGTERM (returns the signal number) or
 * sr_loop_wake() (returns 0). */
int sr_loop_wait(sr_loop_t *l);
/* Makes sr_loop_wait() return 0. Any thread. */
void sr_loop_wake(sr_loop_t *l);

/* Waits for SIGINT/SIGTERM on a loop of its own (for commands that serve
 * nothing over HTTP, e.g. `streamrec broker`). Returns the signal number,
 * or -1 when the loop cannot be created (logged). Thread: the main thread
 * (it installs the signal handlers); no other sr_loop_t may be waiting. */
int sr_admin_wait_signal(void);

#endif
