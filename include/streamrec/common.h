/*
 * Kafka-agnostic helpers shared by every module: allocation wrappers that
 * abort on out-of-memory (Redis zmalloc style; used for small allocations
 * only: large buffers such as model parameters use malloc and handle
 * failure), a growable byte buffer, borrowed string slices, clocks and a
 * logger. Nothing here knows about Kafka, Avro, BLAS or libuv.
 */
#ifndef STREAMREC_COMMON_H
#define STREAMREC_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <stdarg.h>

#include "streamrec/err.h"

#define SR_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define SR_MIN(a, b) ((a) < (b) ? (a) : (b))
#define SR_MAX(a, b) ((a) > (b) ? (a) : (b))

/* ---- allocation (abort on OOM; any thread) ---- */
void *sr_malloc(size_t n);
void *sr_calloc(size_t nmemb, size_t size);
void *sr_realloc(void *p, size_t n);
char *sr_strdup(const char *s);
char *sr_strndup(const char *s, size_t n);
void sr_free(void *p); /* accepts NULL */

/* ---- borrowed string slice: not NUL-terminated, not owned ---- */
typedef struct sr_str_s {
  const char *ptr;
  size_t len;
} sr_str_t;
#define SR_STR(lit) ((sr_str_t){(lit), sizeof(lit) - 1})
/* The expansion of macro x as a string literal ("10000" for a 10000). */
#define SR_XSTR(x) SR_XSTR_(x)
#define SR_XSTR_(x) #x
static inline sr_str_t sr_str_make(const char *p, size_t n) {
  sr_str_t s = {p, n};
  return s;
}
sr_str_t sr_str_cstr(const char *s); /* slice over a NUL-terminated string */
int sr_str_eq(sr_str_t a, sr_str_t b);

/* ---- growable byte buffer (owns its memory) ---- */
typedef struct sr_buf_s {
  unsigned char *data;
  size_t len;
  size_t cap;
} sr_buf_t;
void sr_buf_init(sr_buf_t *b);
void sr_buf_free(sr_buf_t *b);  /* releases memory; b may be reused after init */
void sr_buf_reset(sr_buf_t *b); /* len = 0, keeps capacity */
void sr_buf_reserve(sr_buf_t *b, size_t extra);
void sr_buf_append(sr_buf_t *b, const void *p, size_t n);
void sr_buf_putc(sr_buf_t *b, unsigned char c);
void sr_buf_printf(sr_buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ---- clocks ---- */
int64_t sr_now_ms(void);  /* wall clock, ms since epoch */
int64_t sr_mono_us(void); /* monotonic, microseconds */
int64_t sr_mono_ns(void); /* monotonic, nanoseconds */

/* ---- hashing (xxHash64) ---- */
uint64_t sr_hash64(const void *p, size_t n);

/* ---- logging to stderr: "2026-11-23T11:30:00.123Z LEVEL module: msg" ---- */
typedef enum { SR_LOG_ERROR = 0, SR_LOG_WARN, SR_LOG_INFO, SR_LOG_DEBUG } sr_log_level_t;
/* The level in effect: the last sr_log_set_level(), else SR_LOG_LEVEL
 * (debug|info|warn|error, read once), else INFO. Thread: any; sr_log may be
 * called from any thread, librdkafka's included (one line at a time). */
void sr_log_set_level(sr_log_level_t lvl);
sr_log_level_t sr_log_get_level(void);
void sr_log(sr_log_level_t lvl, const char *module, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
#define sr_log_error(mod, ...) sr_log(SR_LOG_ERROR, mod, __VA_ARGS__)
#define sr_log_warn(mod, ...) sr_log(SR_LOG_WARN, mod, __VA_ARGS__)
#define sr_log_info(mod, ...) sr_log(SR_LOG_INFO, mod, __VA_ARGS__)
#define sr_log_debug(mod, ...) sr_log(SR_LOG_DEBUG, mod, __VA_ARGS__)

/* snprintf into errstr when errstr != NULL && errsz > 0. Returns err. */
sr_err_t sr_seterr(char *errstr, size_t errsz, sr_err_t err, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* ---- files ---- */
/* Writes data to path atomically: temp file in the same directory, fsync,
 * rename, fsync(dir) (Redis rdb.c). */
sr_err_t sr_file_write_atomic(const char *path, const void *data, size_t len, char *errstr,
                              size_t errsz);
/* Reads a whole file into *out (new allocation, free with free()). */
sr_err_t sr_file_read_all(const char *path, unsigned char **out, size_t *len, char *errstr,
                          size_t errsz);

#endif
