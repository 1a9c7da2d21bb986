/*
 * C11 <threads.h> on top of pthreads, linked into the executables of a
 * ThreadSanitizer build only (CMake SR_TSAN). librdkafka creates its threads
 * with thrd_create and locks with mtx_lock/cnd_wait; glibc implements those
 * by calling its internal pthread functions, past TSan's interceptors (GCC
 * 12's and LLVM 14's TSan intercept the pthread calls, not thrd_create, mtx_lock, cnd_wait). So
 * TSan never learns of librdkafka's threads (their first malloc crashes in
 * TSan's allocator) nor of its locks (every hand-over between its threads
 * and our callbacks looks like a race). Defined in the executable, these
 * take precedence over glibc's for librdkafka.so; each is the pthread call
 * glibc's own makes, through the intercepted entry point.
 */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <threads.h>

static int sr_thrd_rc(int e) {
  return e == 0           ? thrd_success
         : e == ENOMEM    ? thrd_nomem
         : e == EBUSY     ? thrd_busy
         : e == ETIMEDOUT ? thrd_timedout
                          : thrd_error;
}

typedef struct {
  thrd_start_t fn;
  void *arg;
} sr_thrd_start_t;

static void *sr_thrd_main(void *p) {
  sr_thrd_start_t s = *(sr_thrd_start_t *)p;
  free(p);
  return (void *)(intptr_t)s.fn(s.arg);
}

int thrd_create(thrd_t *thr, thrd_start_t func, void *arg) {
  sr_thrd_start_t *s = malloc(sizeof(*s));
  if (!s) return thrd_nomem;
  s->fn = func;
  s->arg = arg;
  int e = pthread_create((pthread_t *)thr, NULL, sr_thrd_main, s);
  if (e) free(s);
  return sr_thrd_rc(e);
}

int thrd_join(thrd_t thr, int *res) {
  void *ret = NULL;
  int e = pthread_join((pthread_t)thr, &ret);
  if (!e && res) *res = (int)(intptr_t)ret;
  return sr_thrd_rc(e);
}

int thrd_detach(thrd_t thr) { return sr_thrd_rc(pthread_detach((pthread_t)thr)); }

int mtx_init(mtx_t *m, int type) {
  pthread_mutexattr_t a;
  pthread_mutexattr_init(&a);
  if (type & mtx_recursive) pthread_mutexattr_settype(&a, PTHREAD_MUTEX_RECURSIVE);
  int e = pthread_mutex_init((pthread_mutex_t *)m, &a);
  pthread_mutexattr_destroy(&a);
  return sr_thrd_rc(e);
}
int mtx_lock(mtx_t *m) { return sr_thrd_rc(pthread_mutex_lock((pthread_mutex_t *)m)); }
int mtx_trylock(mtx_t *m) { return sr_thrd_rc(pthread_mutex_trylock((pthread_mutex_t *)m)); }
int mtx_timedlock(mtx_t *restrict m, const struct timespec *restrict ts) {
  return sr_thrd_rc(pthread_mutex_timedlock((pthread_mutex_t *)m, ts));
}
int mtx_unlock(mtx_t *m) { return sr_thrd_rc(pthread_mutex_unlock((pthread_mutex_t *)m)); }
void mtx_destroy(mtx_t *m) { pthread_mutex_destroy((pthread_mutex_t *)m); }

int cnd_init(cnd_t *c) { return sr_thrd_rc(pthread_cond_init((pthread_cond_t *)c, NULL)); }
int cnd_signal(cnd_t *c) { return sr_thrd_rc(pthread_cond_signal((pthread_cond_t *)c)); }
int cnd_broadcast(cnd_t *c) { return sr_thrd_rc(pthread_cond_broadcast((pthread_cond_t *)c)); }
int cnd_wait(cnd_t *c, mtx_t *m) {
  return sr_thrd_rc(pthread_cond_wait((pthread_cond_t *)c, (pthread_mutex_t *)m));
}
int cnd_timedwait(cnd_t *restrict c, mtx_t *restrict m, const struct timespec *restrict ts) {
  return sr_thrd_rc(pthread_cond_timedwait((pthread_cond_t *)c, (pthread_mutex_t *)m, ts));
}
void cnd_destroy(cnd_t *c) { pthread_cond_destroy((pthread_cond_t *)c); }

void call_once(once_flag *flag, void (*func)(void)) { pthread_once((pthread_once_t *)flag, func); }
