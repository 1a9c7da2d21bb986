/*
 * admin: the only module (with the pipeline runner in cli/) that includes
 * libuv. Owns the main thread's event loop: SIGINT/SIGTERM handling,
 * cross-thread wake-ups (uv_async_send, the one thread-safe libuv call), and
 * the admin HTTP endpoint (/metrics in Prometheus text, /healthz, /readyz).
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

/* Serves HTTP GET on addr:port (port 0 = disabled) with render_cb. */
sr_err_t sr_loop_admin_listen(sr_loop_t *l, const char *addr, int port,
                              sr_admin_render_cb_t *cb, void *opaque, char *errstr,
                              size_t errsz);
/* The port actually bound (useful with port -1 = ephemeral). */
int sr_loop_admin_port(const sr_loop_t *l);

/* Runs the loop until SIGINT/SIGTERM (returns the signal number) or
 * sr_loop_wake() (returns 0). */
int sr_loop_wait(sr_loop_t *l);
/* Makes sr_loop_wait() return 0. Any thread. */
void sr_loop_wake(sr_loop_t *l);

#endif
