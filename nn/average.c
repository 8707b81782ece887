/* nn/average.c: element-wise mean of parameter buffers (see average.h). */
#include "nn/average.h"

#include <assert.h>

void average_add(double *sum, const float *x, size_t n)
{
    for (size_t i = 0; i < n; i++)
        sum[i] += (double)x[i];
}

void average_mean(float *out, const double *sum, size_t n, size_t count)
{
    assert(count >= 1);
    const double c = (double)count;
    for (size_t i = 0; i < n; i++)
        out[i] = (float)(sum[i] / c);
}
