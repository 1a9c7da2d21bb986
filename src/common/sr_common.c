/*
 * Small helpers every module uses: allocation that aborts on OOM, the byte
 * buffer, clocks, hashing, logging, atomic file writes. Kept free of any
 * Kafka/Avro/BLAS/libuv knowledge so unit tests link it alone.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>

#include "streamrec/common.h"
#include "streamrec/event.h"

static void sr_oom(size_t n) {
  fprintf(stderr, "streamrec: out of memory allocating %zu bytes\n", n);
  abort();
}

void *sr_malloc(size_t n) {
  void *p = malloc(n ? n : 1);
  if (!p) sr_oom(n);
  return p;
}

void *sr_calloc(size_t nmemb, size_t size) {
  void *p = calloc(nmemb ? nmemb : 1, size ? size : 1);
  if (!p) sr_oom(nmemb * size);
  return p;
}

void *sr_realloc(void *p, size_t n) {
  void *q = realloc(p, n ? n : 1);
  if (!q) sr_oom(n);
  return q;
}

char *sr_strdup(const char *s) { return sr_strndup(s, strlen(s)); }

char *sr_strndup(const char *s, size_t n) {
  char *p = sr_malloc(n + 1);
  memcpy(p, s, n);
  p[n] = '\0';
  return p;
}

void sr_free(void *p) { free(p); }

sr_str_t sr_str_cstr(const char *s) { return sr_str_make(s, s ? strlen(s) : 0); }

int sr_str_eq(sr_str_t a, sr_str_t b) {
  return a.len == b.len && (a.len == 0 || memcmp(a.ptr, b.ptr, a.len) == 0);
}

void sr_buf_init(sr_buf_t *b) { memset(b, 0, sizeof(*b)); }
void sr_buf_free(sr_buf_t *b) {
  free(b->data);
  memset(b, 0, sizeof(*b));
}
void sr_buf_reset(sr_buf_t *b) { b->len = 0; }

void sr_buf_reserve(sr_buf_t *b, size_t extra) {
  if (b->len + extra <= b->cap) return;
  size_t cap = b->cap ? b->cap : 256;
  while (cap < b->len + extra)
    cap *= 2;
  b->data = sr_realloc(b->data, cap);
  b->cap = cap;
}

void sr_buf_append(sr_buf_t *b, const void *p, size_t n) {
  if (!n) return;
  sr_buf_reserve(b, n);
  memcpy(b->data + b->len, p, n);
  b->len += n;
}

void sr_buf_putc(sr_buf_t *b, unsigned char c) {
  sr_buf_reserve(b, 1);
  b->data[b->len++] = c;
}

void sr_buf_printf(sr_buf_t *b, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  if (n <= 0) return;
  sr_buf_reserve(b, (size_t)n + 1);
  va_start(ap, fmt);
  vsnprintf((char *)b->data + b->len, (size_t)n + 1, fmt, ap);
  va_end(ap);
  b->len += (size_t)n;
}

int64_t sr_now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t sr_mono_us(void) { return sr_mono_ns() / 1000; }

int64_t sr_mono_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

uint64_t sr_hash64(const void *p, size_t n) { return XXH64(p, n, 0x5eedULL); }

/* ---- logging ----
 * sr_log runs on any thread, librdkafka's own included (its log callback),
 * so the level is an atomic: -1 until set, then the level. The first read
 * without a sr_log_set_level() takes SR_LOG_LEVEL from the environment and
 * installs it with a compare-and-swap, so a concurrent set_level is never
 * overwritten by the lazy default. */
static _Atomic int sr_log_level = -1;
static pthread_mutex_t sr_log_lock = PTHREAD_MUTEX_INITIALIZER;

static sr_log_level_t sr_log_level_env(void) {
  const char *e = getenv("SR_LOG_LEVEL");
  if (!e) return SR_LOG_INFO;
  if (!strcasecmp(e, "debug")) return SR_LOG_DEBUG;
  if (!strcasecmp(e, "warn")) return SR_LOG_WARN;
  if (!strcasecmp(e, "error")) return SR_LOG_ERROR;
  return SR_LOG_INFO;
}

void sr_log_set_level(sr_log_level_t lvl) {
  atomic_store_explicit(&sr_log_level, (int)lvl, memory_order_relaxed);
}
sr_log_level_t sr_log_get_level(void) {
  int lvl = atomic_load_explicit(&sr_log_level, memory_order_relaxed);
  if (lvl < 0) {
    int expected = -1;
    lvl = (int)sr_log_level_env();
    if (!atomic_compare_exchange_strong(&sr_log_level, &expected, lvl)) lvl = expected;
  }
  return (sr_log_level_t)lvl;
}

void sr_log(sr_log_level_t lvl, const char *module, const char *fmt, ...) {
  static const char *names[] = {"ERROR", "WARN", "INFO", "DEBUG"};
  if (lvl > sr_log_get_level()) return;
  char tbuf[32];
  struct timespec ts;
  struct tm tm;
  clock_gettime(CLOCK_REALTIME, &ts);
  gmtime_r(&ts.tv_sec, &tm);
  strftime(tbuf, sizeof(tbuf), "%Y-%m-%dT%H:%M:%S", &tm);
  char msg[2048];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof(msg), fmt, ap);
  va_end(ap);
  pthread_mutex_lock(&sr_log_lock);
  fprintf(stderr, "%s.%03ldZ %-5s %s: %s\n", tbuf, ts.tv_nsec / 1000000, names[lvl], module, msg);
  pthread_mutex_unlock(&sr_log_lock);
}

sr_err_t sr_seterr(char *errstr, size_t errsz, sr_err_t err, const char *fmt, ...) {
  if (errstr && errsz > 0) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(errstr, errsz, fmt, ap);
    va_end(ap);
  }
  return err;
}

/* ---- files ---- */
sr_err_t sr_file_write_atomic(const char *path, const void *data, size_t len, char *errstr,
                              size_t errsz) {
  sr_err_t err = SR_OK;
  char *tmp = NULL, *dircopy = NULL;
  int fd = -1, dfd = -1;
  size_t plen = strlen(path);
  tmp = sr_malloc(plen + 32);
  snprintf(tmp, plen + 32, "%s.tmp.%ld", path, (long)getpid());
  fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) {
    err = sr_seterr(errstr, errsz, SR_ERR_IO, "%s: open: %s", tmp, strerror(errno));
    goto out;
  }
  const unsigned char *p = data;
  size_t left = len;
  while (left > 0) {
    ssize_t w = write(fd, p, left);
    if (w < 0) {
      if (errno == EINTR) continue;
      err = sr_seterr(errstr, errsz, SR_ERR_IO, "%s: write: %s", tmp, strerror(errno));
      goto out;
    }
    p += w;
    left -= (size_t)w;
  }
  if (fsync(fd) != 0) {
    err = sr_seterr(errstr, errsz, SR_ERR_IO, "%s: fsync: %s", tmp, strerror(errno));
    goto out;
  }
  close(fd);
  fd = -1;
  if (rename(tmp, path) != 0) {
    err = sr_seterr(errstr, errsz, SR_ERR_IO, "rename %s -> %s: %s", tmp, path, strerror(errno));
    goto out;
  }
  dircopy = sr_strdup(path);
  dfd = open(dirname(dircopy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) fsync(dfd); /* best effort: some filesystems refuse dir fsync */
out:
  if (fd >= 0) close(fd);
  if (dfd >= 0) close(dfd);
  if (err != SR_OK && tmp) unlink(tmp);
  sr_free(tmp);
  sr_free(dircopy);
  return err;
}

/* Only regular files: a FIFO (or a device, a directory) as a model or data
 * path would block startup forever or read garbage. O_NONBLOCK makes the
 * open itself return for a FIFO without a writer; fstat on the opened
 * descriptor (not stat then open) then decides, so the check and the read
 * are about the same file. The read loop stops at the size fstat saw. */
sr_err_t sr_file_read_all(const char *path, unsigned char **out, size_t *len, char *errstr,
                          size_t errsz) {
  sr_err_t err = SR_OK;
  unsigned char *buf = NULL;
  *out = NULL;
  *len = 0;
  int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
  if (fd < 0) return sr_seterr(errstr, errsz, SR_ERR_IO, "%s: %s", path, strerror(errno));
  struct stat st;
  if (fstat(fd, &st) != 0) {
    err = sr_seterr(errstr, errsz, SR_ERR_IO, "%s: stat: %s", path, strerror(errno));
    goto out;
  }
  if (!S_ISREG(st.st_mode)) {
    err = sr_seterr(errstr, errsz, SR_ERR_IO, "%s: not a regular file (%s)", path,
                    S_ISFIFO(st.st_mode)   ? "a FIFO"
                    : S_ISDIR(st.st_mode)  ? "a directory"
                    : S_ISCHR(st.st_mode)  ? "a character device"
                    : S_ISBLK(st.st_mode)  ? "a block device"
                    : S_ISSOCK(st.st_mode) ? "a socket"
                                           : "not a file");
    goto out;
  }
  if ((uintmax_t)st.st_size >= SIZE_MAX) {
    err = sr_seterr(errstr, errsz, SR_ERR_NOMEM, "%s: %lld bytes do not fit in memory", path,
                    (long long)st.st_size);
    goto out;
  }
  const size_t size = (size_t)st.st_size;
  buf = malloc(size + 1);
  if (!buf) {
    err = sr_seterr(errstr, errsz, SR_ERR_NOMEM, "%s: cannot allocate %zu bytes", path, size);
    goto out;
  }
  size_t got = 0;
  while (got < size) {
    ssize_t r = read(fd, buf + got, size - got);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) {
      err = sr_seterr(errstr, errsz, SR_ERR_IO, "%s: read: %s", path, strerror(errno));
      goto out;
    }
    if (r == 0) {
      err =
          sr_seterr(errstr, errsz, SR_ERR_IO, "%s: short read (%zu of %zu bytes)", path, got, size);
      goto out;
    }
    got += (size_t)r;
  }
  buf[size] = 0;
  *out = buf;
  *len = size;
  buf = NULL;
out:
  free(buf);
  close(fd);
  return err;
}

/* ---- event types ---- */
static const char *const sr_event_type_names[] = {
#define SR__EVN(n) #n,
    SR_EVENT_TYPE_MAP(SR__EVN)
#undef SR__EVN
};

const char *sr_event_type_name(sr_event_type_t t) {
  if ((int)t < 0 || t >= SR_EV__CNT) return "?";
  return sr_event_type_names[t];
}

int sr_event_type_parse(const char *s, size_t len) {
  for (int i = 0; i < SR_EV__CNT; i++) {
    if (strlen(sr_event_type_names[i]) == len && !strncasecmp(s, sr_event_type_names[i], len))
      return i;
  }
  return -1;
}
