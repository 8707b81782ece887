/* nn/dropout.c: inverted dropout (see dropout.h). */
#include "nn/dropout.h"

#include "nn/vmath.h"

/* Draws in blocks of DROPOUT_BLOCK through rng_fill_uniform (the same numbers as one rng_uniform per
 * element, without a call and a state store per element). */
#define DROPOUT_BLOCK 256

VM_CLONES void dropout_forward(const float *x, float *y, uint8_t *mask, size_t n, float p, struct rng *r)
{
    const float scale = 1.0f / (1.0f - p);
    float u[DROPOUT_BLOCK];
    for (size_t k0 = 0; k0 < n; k0 += DROPOUT_BLOCK) {
        const size_t len = n - k0 < DROPOUT_BLOCK ? n - k0 : DROPOUT_BLOCK;
        rng_fill_uniform(r, u, len);
#pragma omp simd
        for (size_t k = 0; k < len; k++) {
            mask[k0 + k] = u[k] >= p;
            y[k0 + k] = mask[k0 + k] ? x[k0 + k] * scale : 0.0f;
        }
    }
}

VM_CLONES void dropout_backward(float *d, const uint8_t *mask, size_t n, float p)
{
    const float scale = 1.0f / (1.0f - p);
#pragma omp simd
    for (size_t k = 0; k < n; k++)
        d[k] = mask[k] ? d[k] * scale : 0.0f;
}
