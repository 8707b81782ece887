/* nn/vmath.h: branch-free, call-free float exp / sigmoid / tanh that compilers can vectorise (glibc's
 * expf and tanhf are calls, so loops using them stay scalar without -ffast-math, which this project
 * forbids). Accuracy: vm_expf within ~2 ulp on [-87, 88] (inputs are clamped to that range);
 * vm_sigmoidf within ~3 ulp; vm_tanhf within ~1.5e-7 absolute (relative accuracy degrades near 0,
 * where it is computed as 1 - 2/(1 + e^2x)). NaN inputs give NaN.
 * Loops using them vectorise with `#pragma omp simd` when nn/ is compiled with -fno-trapping-math
 * (value-safe: it only lets GCC if-convert the clamps); SSE2 by default, wider with -Dnative=true.
 * ref: Cody & Waite 1980 (range reduction x = n·ln2 + r); Taylor series of e^r on |r| <= ln2/2. */
#ifndef SL_NN_VMATH_H
#define SL_NN_VMATH_H

#include <stdint.h>
#include <string.h>

/* VM_CLONES before a function whose loops use these: GCC compiles it for AVX-512, AVX2 and the baseline
 * and picks one at load time (ifunc), so an ordinary build gets 8- or 16-wide loops where the CPU has
 * them. Results per element do not depend on the width (no FMA contraction under ISO C); only
 * reductions (a max, a double sum) may associate differently between machines. */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && !defined(__AVX2__)
#define VM_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define VM_CLONES
#endif

static inline float vm_expf(float x)
{
    /* clamp so that 2^n stays a normal float; NaN fails both tests and passes through */
    x = x < -87.0f ? -87.0f : x;
    x = x > 88.0f ? 88.0f : x;
    /* n = round(x / ln2) by the 1.5·2^23 trick (adding it rounds to an integer in the low mantissa bits) */
    const float shifter = 12582912.0f;
    float t = x * 1.44269504088896341f + shifter;
    float n = t - shifter;
    uint32_t ti;
    memcpy(&ti, &t, sizeof ti);
    /* r = x - n·ln2, ln2 split in a part exact in float times n and a correction */
    float r = x - n * 0.693145751953125f;
    r = r - n * 1.42860682030941723212e-6f;
    /* e^r, |r| <= 0.347: Taylor to r^7 (remainder < 6e-9) */
    float p = 1.0f / 5040.0f;
    p = p * r + 1.0f / 720.0f;
    p = p * r + 1.0f / 120.0f;
    p = p * r + 1.0f / 24.0f;
    p = p * r + 1.0f / 6.0f;
    p = p * r + 0.5f;
    p = p * r + 1.0f;
    p = p * r + 1.0f;
    /* 2^n: exponent bits (n + 127) << 23; ti - 0x4B400000 is n as an integer (unsigned: NaN bits wrap) */
    uint32_t e = (ti - 0x4B400000u + 127u) << 23;
    float s;
    memcpy(&s, &e, sizeof s);
    return p * s;
}

static inline float vm_sigmoidf(float x) { return 1.0f / (1.0f + vm_expf(-x)); }

static inline float vm_tanhf(float x) { return 1.0f - 2.0f / (1.0f + vm_expf(2.0f * x)); }

#endif
