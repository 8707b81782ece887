/* nn/adam.h: the Adam update over flat buffers (parameters, gradients, first and second moments share
 * the layout of nn/params.h, so one call updates the whole model).
 *   m = β1 m + (1-β1) g;  v = β2 v + (1-β2) g²;  w -= lr · (m / (1-β1^t)) / (sqrt(v / (1-β2^t)) + eps)
 * ref: Kingma & Ba 2015, Algorithm 1. */
#ifndef SL_NN_ADAM_H
#define SL_NN_ADAM_H

#include <stddef.h>

struct adam_hparams {
    float lr;    /* 1e-3 */
    float beta1; /* 0.9 */
    float beta2; /* 0.999 */
    float eps;   /* 1e-8 */
};

/* The defaults above, with learning rate lr. */
struct adam_hparams adam_defaults(float lr);
/* One update of n floats at step t (1 for the first update; it sets the bias correction). */
void adam_step(float *w, const float *g, float *m, float *v, size_t n, const struct adam_hparams *hp,
               long t);

#endif
