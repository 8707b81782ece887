/* util/bf16.h: one float32 <-> bfloat16 conversion for the whole project: the bf16 products
 * (nn/gemm_bf16.c, nn/gemm_bf16_dot.c) and the store's bf16 tensors (corpus/db.c, db_ckpt.c) round and
 * widen alike, so a model exported in bf16 decodes exactly as bf16 decoding of its source.
 * bf16 is the upper 16 bits of a float32. Header-only (the conversions sit in vectorised loops). */
#ifndef SL_UTIL_BF16_H
#define SL_UTIL_BF16_H

#include <stdint.h>
#include <string.h>

/* f32 -> bf16, to nearest, ties to even on the upper 16 bits; a NaN keeps its sign and top mantissa bits
 * and is made quiet, so the truncation cannot turn it into an infinity. */
static inline uint16_t bf16_round(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    uint32_t r = (u + 0x7FFFu + ((u >> 16) & 1u)) >> 16;
    uint32_t q = (u >> 16) | 0x40u;
    return (uint16_t)((u & 0x7FFFFFFFu) > 0x7F800000u ? q : r);
}

/* bf16 -> f32, exactly. */
static inline float bf16_widen(uint16_t h)
{
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

#endif
