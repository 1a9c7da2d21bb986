/*
 * strmap (common/): string interning, key -> dense id 0..count-1. The served
 * model's item map and the offline data set's user and item ids.
 *
 * Thread: one writer; sr_strmap_find/key/count are read-only and safe from
 * many threads while nobody interns.
 */
#ifndef STREAMREC_STRMAP_H
#define STREAMREC_STRMAP_H

#include <stddef.h>
#include <stdint.h>
#include "streamrec/common.h"

typedef struct sr_strmap_s sr_strmap_t;
/* Returns a new map; free with sr_strmap_destroy(). */
sr_strmap_t *sr_strmap_new(size_t hint);
void sr_strmap_destroy(sr_strmap_t *m); /* accepts NULL */
/* Id of key, inserting a copy with the next id when absent (*inserted = 1). */
int32_t sr_strmap_intern(sr_strmap_t *m, const char *key, size_t len, int *inserted);
/* Id of key or -1. Read-only: safe from many threads while nobody interns. */
int32_t sr_strmap_find(const sr_strmap_t *m, const char *key, size_t len);
/* Key of id: borrowed, valid until the map is destroyed (not moved by interning). */
sr_str_t sr_strmap_key(const sr_strmap_t *m, int32_t id);
int32_t sr_strmap_count(const sr_strmap_t *m);
/* Bytes held by the map (keys + index). */
size_t sr_strmap_bytes(const sr_strmap_t *m);

#endif
