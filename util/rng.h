/* util/rng.h: the project's random number generator, xoshiro256** seeded through splitmix64, and the
 * exported 64-bit mixer (splitmix64's finaliser) for hashing and seed derivation.
 * The whole state is 32 bytes (struct rng), saved in checkpoints so a resumed run draws the same
 * numbers. Not thread-safe: each thread or each consumer owns its own struct rng.
 * ref: Blackman & Vigna, "Scrambled linear pseudorandom number generators" (2018); Steele, Lea &
 * Flood, "Fast splittable pseudorandom number generators" (2014, splitmix64). */
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
/* out[k] = the k-th of n rng_uniform draws (the same numbers and final state as n calls, faster). */
void rng_fill_uniform(struct rng *r, float *out, size_t n);
/* Uniform integer in [0, n), n > 0, without modulo bias. */
uint64_t rng_below(struct rng *r, uint64_t n);
/* Fisher-Yates shuffle of n elements of size sz. */
void rng_shuffle(struct rng *r, void *base, size_t n, size_t sz);

/* splitmix64's increment (2^64 / golden ratio, odd): splitmix64's next output from state x is
 * rng_mix64(x + RNG_GOLDEN_GAMMA). */
#define RNG_GOLDEN_GAMMA 0x9e3779b97f4a7c15ULL
/* splitmix64's finaliser (Stafford's mix13): a bijection on 64-bit values whose every output bit depends
 * on every input bit. For hashing keys and deriving seeds (not a generator: rng_mix64(0) == 0). Pure;
 * thread-safe. The values must never change: checkpointed runs and hash-table orders depend on them. */
uint64_t rng_mix64(uint64_t z);

#endif
