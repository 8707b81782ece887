/* util/rng.c: xoshiro256** with splitmix64 seeding (see rng.h). */
#include "util/rng.h"

#include <string.h>

uint64_t rng_mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static uint64_t splitmix64(uint64_t *x) { return rng_mix64(*x += RNG_GOLDEN_GAMMA); }

static inline uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

void rng_seed(struct rng *r, uint64_t seed)
{
    uint64_t x = seed;
    for (int i = 0; i < 4; i++)
        r->s[i] = splitmix64(&x);
}

/* The generator's step, inlined into every draw of this file (rng_next itself may be interposed in a
 * PIC build, so calls to it are not inlined). */
static inline uint64_t next(uint64_t *s)
{
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

static inline float uniform(uint64_t *s) { return (float)(next(s) >> 40) * (1.0f / 16777216.0f); }

uint64_t rng_next(struct rng *r) { return next(r->s); }

float rng_uniform(struct rng *r) { return uniform(r->s); }

void rng_fill_uniform(struct rng *r, float *out, size_t n)
{
    uint64_t s[4] = {r->s[0], r->s[1], r->s[2], r->s[3]}; /* in registers, stored back once */
    for (size_t k = 0; k < n; k++)
        out[k] = uniform(s);
    memcpy(r->s, s, sizeof s);
}

uint64_t rng_below(struct rng *r, uint64_t n)
{
    /* reject the top partial block so every value is equally likely */
    uint64_t limit = UINT64_MAX - UINT64_MAX % n;
    uint64_t x;
    do
        x = rng_next(r);
    while (x >= limit);
    return x % n;
}

void rng_shuffle(struct rng *r, void *base, size_t n, size_t sz)
{
    unsigned char *a = base;
    unsigned char tmp[64];
    if (n < 2 || sz > sizeof tmp)
        return;
    for (size_t i = n - 1; i > 0; i--) {
        size_t j = (size_t)rng_below(r, (uint64_t)i + 1);
        if (j == i)
            continue;
        memcpy(tmp, a + i * sz, sz);
        memcpy(a + i * sz, a + j * sz, sz);
        memcpy(a + j * sz, tmp, sz);
    }
}
