/* nn/dropout.h: inverted dropout. Training keeps each value with probability 1-p and scales kept values
 * by 1/(1-p), so inference uses the values unchanged. The mask is drawn from the caller's struct rng
 * (one uniform per element, element order), so the same rng state gives the same mask.
 * ref: Srivastava et al. 2014; Zaremba et al. 2014 (dropout on the non-recurrent LSTM connections). */
#ifndef SL_NN_DROPOUT_H
#define SL_NN_DROPOUT_H

#include <stddef.h>
#include <stdint.h>

#include "util/rng.h"

/* y (n) = x * mask / (1-p), mask[k] = 1 with probability 1-p; y may equal x. 0 <= p < 1. */
void dropout_forward(const float *x, float *y, uint8_t *mask, size_t n, float p, struct rng *r);
/* In place: d[k] = mask[k] ? d[k] / (1-p) : 0 (gradient of y = x*mask/(1-p)). */
void dropout_backward(float *d, const uint8_t *mask, size_t n, float p);

#endif
