/* nn/clip.h: global L2-norm gradient clipping over a flat gradient buffer, and a finiteness check.
 * The norm is summed in double in index order, so it does not depend on threads or scheduling.
 * ref: Pascanu et al. 2013 (norm clipping); Sutskever et al. 2014 (threshold 5). */
#ifndef SL_NN_CLIP_H
#define SL_NN_CLIP_H

#include <stddef.h>

/* sum g² over n floats in double, in a fixed order (NaN or inf if g holds one). A norm over a buffer
 * cut into fixed chunks is sqrt of the chunks' sums added in chunk order: the same for any thread count. */
double clip_sumsq(const float *g, size_t n);
/* sqrt(sum g²) over n floats (NaN or inf if g holds one): sqrt(clip_sumsq(g, n)). */
double clip_norm(const float *g, size_t n);
/* If the norm exceeds max_norm (> 0), scales g by max_norm / norm. Returns the norm before clipping;
 * a non-finite norm leaves g unchanged. */
double clip_global(float *g, size_t n, double max_norm);
/* Number of NaN or infinite values among x[0..n). */
size_t clip_count_nonfinite(const float *x, size_t n);

#endif
