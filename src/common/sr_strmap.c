/*
 * String interning map (key -> dense id). Keys live in one arena (offsets,
 * not pointers) with an open-addressing index of ids: compact enough to hold
 * a catalogue of millions of item ids, and keys never move once interned.
 * Used by the served model's item map and by the offline data set.
 */
#include <stdlib.h>
#include <string.h>

#include "streamrec/strmap.h"

struct sr_strmap_s {
  char *arena;
  size_t arena_len, arena_cap;
  uint64_t *key_off; /* id -> offset into arena; key length in key_len */
  uint32_t *key_len;
  int32_t count, cap_ids;
  int32_t *index; /* slot -> id or -1 */
  uint64_t *index_hash;
  size_t index_cap; /* power of two */
};

sr_strmap_t *sr_strmap_new(size_t hint) {
  sr_strmap_t *m = sr_calloc(1, sizeof(*m));
  size_t cap = 64;
  while (cap < hint * 2)
    cap *= 2;
  m->index_cap = cap;
  m->index = sr_malloc(cap * sizeof(*m->index));
  m->index_hash = sr_malloc(cap * sizeof(*m->index_hash));
  memset(m->index, 0xff, cap * sizeof(*m->index));
  return m;
}

void sr_strmap_destroy(sr_strmap_t *m) {
  if (!m) return;
  sr_free(m->arena);
  sr_free(m->key_off);
  sr_free(m->key_len);
  sr_free(m->index);
  sr_free(m->index_hash);
  sr_free(m);
}

static int sr_strmap_keyeq(const sr_strmap_t *m, int32_t id, const char *k, size_t len) {
  return m->key_len[id] == len && memcmp(m->arena + m->key_off[id], k, len) == 0;
}

static void sr_strmap_grow(sr_strmap_t *m) {
  size_t ncap = m->index_cap * 2;
  int32_t *nidx = sr_malloc(ncap * sizeof(*nidx));
  uint64_t *nh = sr_malloc(ncap * sizeof(*nh));
  memset(nidx, 0xff, ncap * sizeof(*nidx));
  for (size_t i = 0; i < m->index_cap; i++) {
    if (m->index[i] < 0) continue;
    size_t s = m->index_hash[i] & (ncap - 1);
    while (nidx[s] >= 0)
      s = (s + 1) & (ncap - 1);
    nidx[s] = m->index[i];
    nh[s] = m->index_hash[i];
  }
  sr_free(m->index);
  sr_free(m->index_hash);
  m->index = nidx;
  m->index_hash = nh;
  m->index_cap = ncap;
}

int32_t sr_strmap_find(const sr_strmap_t *m, const char *key, size_t len) {
  uint64_t h = sr_hash64(key, len);
  size_t s = h & (m->index_cap - 1);
  while (m->index[s] >= 0) {
    if (m->index_hash[s] == h && sr_strmap_keyeq(m, m->index[s], key, len)) return m->index[s];
    s = (s + 1) & (m->index_cap - 1);
  }
  return -1;
}

int32_t sr_strmap_intern(sr_strmap_t *m, const char *key, size_t len, int *inserted) {
  uint64_t h = sr_hash64(key, len);
  size_t s = h & (m->index_cap - 1);
  while (m->index[s] >= 0) {
    if (m->index_hash[s] == h && sr_strmap_keyeq(m, m->index[s], key, len)) {
      if (inserted) *inserted = 0;
      return m->index[s];
    }
    s = (s + 1) & (m->index_cap - 1);
  }
  if (m->count == m->cap_ids) {
    m->cap_ids = m->cap_ids ? m->cap_ids * 2 : 64;
    m->key_off = sr_realloc(m->key_off, (size_t)m->cap_ids * sizeof(*m->key_off));
    m->key_len = sr_realloc(m->key_len, (size_t)m->cap_ids * sizeof(*m->key_len));
  }
  if (m->arena_len + len + 1 > m->arena_cap) {
    size_t c = m->arena_cap ? m->arena_cap : 1024;
    while (c < m->arena_len + len + 1)
      c *= 2;
    m->arena = sr_realloc(m->arena, c);
    m->arena_cap = c;
  }
  int32_t id = m->count++;
  m->key_off[id] = m->arena_len;
  m->key_len[id] = (uint32_t)len;
  memcpy(m->arena + m->arena_len, key, len);
  m->arena[m->arena_len + len] = '\0'; /* keys are also NUL-terminated */
  m->arena_len += len + 1;
  m->index[s] = id;
  m->index_hash[s] = h;
  if ((size_t)m->count * 10 > m->index_cap * 7) sr_strmap_grow(m);
  if (inserted) *inserted = 1;
  return id;
}

sr_str_t sr_strmap_key(const sr_strmap_t *m, int32_t id) {
  return sr_str_make(m->arena + m->key_off[id], m->key_len[id]);
}

int32_t sr_strmap_count(const sr_strmap_t *m) { return m->count; }

size_t sr_strmap_bytes(const sr_strmap_t *m) {
  return m->arena_cap + (size_t)m->cap_ids * (sizeof(uint64_t) + sizeof(uint32_t)) +
         m->index_cap * (sizeof(int32_t) + sizeof(uint64_t));
}
