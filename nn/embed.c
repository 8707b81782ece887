/* nn/embed.c: embedding gather / scatter-add (see embed.h). */
#include "nn/embed.h"

#include <assert.h>
#include <string.h>

void embed_forward(const float *table, size_t V, size_t E, const int32_t *ids, size_t n, float *out)
{
    (void)V;
    for (size_t k = 0; k < n; k++) {
        assert(ids[k] >= 0 && (size_t)ids[k] < V);
        memcpy(out + k * E, table + (size_t)ids[k] * E, E * sizeof(float));
    }
}

void embed_backward(float *dtable, size_t V, size_t E, const int32_t *ids, size_t n, const float *dout)
{
    (void)V;
    for (size_t k = 0; k < n; k++) {
        assert(ids[k] >= 0 && (size_t)ids[k] < V);
        float *d = dtable + (size_t)ids[k] * E;
        const float *s = dout + k * E;
#pragma omp simd
        for (size_t e = 0; e < E; e++)
            d[e] += s[e];
    }
}
