/* train/update.h: the optimizer step that training (train.c) and the benchmark (bench.c) share. The n_shards
 * per-shard gradients are summed in shard order into gs[0] with the global L2 norm computed in the same
 * parallel pass (a double sum of squares per chunk, the chunks added in order), then clipping and Adam
 * run in one parallel pass. Chunks are fixed, so the thread count never changes a bit of the result.
 * ref: Pascanu et al. 2013 (norm clipping); Kingma & Ba 2015 (Adam); nn/clip.h, nn/adam.h. */
#ifndef SL_TRAIN_UPDATE_H
#define SL_TRAIN_UPDATE_H

#include <stddef.h>

#include "nn/adam.h"

#define UPDATE_CHUNK ((size_t)1 << 15) /* floats per chunk */

/* Chunks of N floats: the size of update_sum_shards' part array. */
size_t update_chunks(size_t N);
/* gs[0] = ((gs[0] + gs[1]) + gs[2]) + ... element by element; returns the L2 norm of the sum (NaN or
 * inf if it holds one). part: update_chunks(N) doubles of scratch. */
double update_sum_shards(float *const *gs, size_t n_shards, size_t N, double *part, int nthreads);
/* Adam (nn/adam.h) at step t on w, m, v with the gradient g scaled in place by gscale (the clipping
 * factor; 1 leaves it unscaled). */
void update_adam(float *w, float *g, float *m, float *v, size_t N, float gscale, const struct adam_hparams *hp,
                 long t, int nthreads);

#endif
