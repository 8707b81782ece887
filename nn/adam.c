/* nn/adam.c: Adam (see adam.h). The bias corrections are computed once per call in double. */
#include "nn/adam.h"

#include <math.h>

struct adam_hparams adam_defaults(float lr)
{
    struct adam_hparams hp = {lr, 0.9f, 0.999f, 1e-8f};
    return hp;
}

void adam_step(float *w, const float *g, float *m, float *v, size_t n, const struct adam_hparams *hp,
               long t)
{
    const float b1 = hp->beta1, b2 = hp->beta2, eps = hp->eps;
    const float c1 = (float)(1.0 / (1.0 - pow(b1, (double)t)));
    const float c2 = (float)(1.0 / (1.0 - pow(b2, (double)t)));
    const float lr = hp->lr;
#pragma omp simd
    for (size_t k = 0; k < n; k++) {
        float mk = b1 * m[k] + (1.0f - b1) * g[k];
        float vk = b2 * v[k] + (1.0f - b2) * g[k] * g[k];
        m[k] = mk;
        v[k] = vk;
        w[k] -= lr * (mk * c1) / (sqrtf(vk * c2) + eps);
    }
}
