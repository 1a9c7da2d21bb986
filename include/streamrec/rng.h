/*
 * rng: the one deterministic pseudo-random generator of the tree
 * (xoshiro256** seeded through splitmix64, Blackman and Vigna), used by the
 * trainers (dealing, initialisation, dropout, negatives) and by
 * `streamrec gen` (synthetic histories).
 *
 * Why header-only: the trainers draw in their inner loops; static inline
 * lets every caller inline the few shifts. Why one copy: a seed must give
 * the same stream everywhere, and gen's files and the trainers' results
 * are reproducible only while this stays bit for bit what it is (changing
 * it changes every generated file and every trained model for a seed).
 *
 * Thread: a generator is plain state owned by its caller; use one per
 * thread (the trainers give each worker lane its own).
 */
#ifndef STREAMREC_RNG_H
#define STREAMREC_RNG_H

#include <math.h>
#include <stdint.h>

typedef struct sr_rng_s {
  uint64_t s[4];
} sr_rng_t;

static inline uint64_t sr_rng__splitmix64(uint64_t *x) {
  uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

static inline uint64_t sr_rng__rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

/* Seeds r: the same seed gives the same stream. */
static inline void sr_rng_seed(sr_rng_t *r, uint64_t seed) {
  for (int i = 0; i < 4; i++)
    r->s[i] = sr_rng__splitmix64(&seed);
}

/* Next 64 random bits. */
static inline uint64_t sr_rng_next(sr_rng_t *r) {
  uint64_t *s = r->s;
  uint64_t res = sr_rng__rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
  s[2] ^= s[0];
  s[3] ^= s[1];
  s[1] ^= s[2];
  s[0] ^= s[3];
  s[2] ^= t;
  s[3] = sr_rng__rotl(s[3], 45);
  return res;
}

/* Uniform double in [0, 1): the top 53 bits of one draw. */
static inline double sr_rng_uniform(sr_rng_t *r) {
  return (double)(sr_rng_next(r) >> 11) * 0x1.0p-53;
}

/* Uniform in [0, n), n > 0, unbiased (rejection; usually one draw). */
static inline uint64_t sr_rng_below(sr_rng_t *r, uint64_t n) {
  uint64_t lim = UINT64_MAX - UINT64_MAX % n, x;
  do
    x = sr_rng_next(r);
  while (x >= lim);
  return x % n;
}

/* Standard normal N(0, 1) as float (Box-Muller, two uniform draws). */
static inline float sr_rng_normal(sr_rng_t *r) {
  double u1 = sr_rng_uniform(r), u2 = sr_rng_uniform(r);
  if (u1 < 1e-300) u1 = 1e-300;
  return (float)(sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2));
}

#endif
