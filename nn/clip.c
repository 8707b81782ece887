/* nn/clip.c: gradient norm clipping (see clip.h). */
#include "nn/clip.h"

#include <math.h>

double clip_sumsq(const float *g, size_t n)
{
    /* four partial sums keep the loop vectorisable while the order stays fixed */
    double s[4] = {0, 0, 0, 0};
    size_t k = 0;
    for (; k + 4 <= n; k += 4)
        for (int j = 0; j < 4; j++)
            s[j] += (double)g[k + j] * g[k + j];
    for (; k < n; k++)
        s[0] += (double)g[k] * g[k];
    return (s[0] + s[1]) + (s[2] + s[3]);
}

double clip_norm(const float *g, size_t n) { return sqrt(clip_sumsq(g, n)); }

double clip_global(float *g, size_t n, double max_norm)
{
    double norm = clip_norm(g, n);
    if (isfinite(norm) && norm > max_norm && max_norm > 0) {
        float scale = (float)(max_norm / norm);
        for (size_t k = 0; k < n; k++)
            g[k] *= scale;
    }
    return norm;
}

size_t clip_count_nonfinite(const float *x, size_t n)
{
    size_t bad = 0;
    for (size_t k = 0; k < n; k++)
        bad += !isfinite(x[k]);
    return bad;
}
