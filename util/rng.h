/* util/rng.h: the project's random number generator, xoshiro256** seeded through splitmix64.
 * The whole state is 32 bytes (struct rng), saved in checkpoints so a resumed run draws the same
 * numbers. Not thread-safe: each thread or each consumer owns its own struct rng.
 * ref: Blackman & Vigna, "Scrambled linear pseudorandom number generators" (2018). */
#ifndef SL_UTIL_RNG_H
#define SL_UTIL_RNG_H

#include <stddef.h>
#include <stdint.h>

struct rng {
    uint64_t s[4];
};

void rng_seed(struct rng *r, uint64_t seed);
uint64_t rng_next(struct rng *r);
/* Uniform in [0, 1) with 24 random bits. */
float rng_uniform(struct rng *r);
/* Uniform integer in [0, n), n > 0, without modulo bias. */
uint64_t rng_below(struct rng *r, uint64_t n);
/* Fisher-Yates shuffle of n elements of size sz. */
void rng_shuffle(struct rng *r, void *base, size_t n, size_t sz);

#endif
