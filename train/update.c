/* train/update.c: shard sum with global norm, then clipping and Adam (see update.h). */
#include "train/update.h"

#include <math.h>

#include "nn/clip.h"

size_t update_chunks(size_t N) { return (N + UPDATE_CHUNK - 1) / UPDATE_CHUNK; }

double update_sum_shards(float *const *gs, size_t n_shards, size_t N, double *part, int nthreads)
{
    const size_t nchunks = update_chunks(N);
#pragma omp parallel for num_threads(nthreads) schedule(static) if (nthreads > 1)
    for (size_t c = 0; c < nchunks; c++) {
        const size_t lo = c * UPDATE_CHUNK, hi = lo + UPDATE_CHUNK < N ? lo + UPDATE_CHUNK : N;
        float *g0 = gs[0];
        for (size_t k = 1; k < n_shards; k++) {
            const float *gk = gs[k];
#pragma omp simd
            for (size_t i = lo; i < hi; i++)
                g0[i] += gk[i];
        }
        part[c] = clip_sumsq(g0 + lo, hi - lo);
    }
    double sq = 0;
    for (size_t c = 0; c < nchunks; c++)
        sq += part[c];
    return sqrt(sq);
}

void update_adam(float *w, float *g, float *m, float *v, size_t N, float gscale, const struct adam_hparams *hp,
                 long t, int nthreads)
{
    const size_t nchunks = update_chunks(N);
#pragma omp parallel for num_threads(nthreads) schedule(static) if (nthreads > 1)
    for (size_t c = 0; c < nchunks; c++) {
        const size_t lo = c * UPDATE_CHUNK, len = lo + UPDATE_CHUNK < N ? UPDATE_CHUNK : N - lo;
        if (gscale != 1.0f)
#pragma omp simd
            for (size_t i = lo; i < lo + len; i++)
                g[i] *= gscale;
        adam_step(w + lo, g + lo, m + lo, v + lo, len, hp, t);
    }
}
