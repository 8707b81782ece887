/* nn/dropout.c: inverted dropout (see dropout.h). */
#include "nn/dropout.h"

void dropout_forward(const float *x, float *y, uint8_t *mask, size_t n, float p, struct rng *r)
{
    const float scale = 1.0f / (1.0f - p);
    for (size_t k = 0; k < n; k++) {
        mask[k] = rng_uniform(r) >= p;
        y[k] = mask[k] ? x[k] * scale : 0.0f;
    }
}

void dropout_backward(float *d, const uint8_t *mask, size_t n, float p)
{
    const float scale = 1.0f / (1.0f - p);
    for (size_t k = 0; k < n; k++)
        d[k] = mask[k] ? d[k] * scale : 0.0f;
}
