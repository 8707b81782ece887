/* nn/average.h: the element-wise mean of parameter buffers (checkpoint averaging). Each element is
 * summed in double, one buffer after the other in the caller's order, then divided once and rounded
 * to float: the result depends only on the buffers and their order (no threads, no reassociation),
 * and the mean of one buffer is that buffer exactly.
 * ref: Vaswani et al. 2017 (averaging the last checkpoints); Junczys-Dowmunt et al. 2016. */
#ifndef SL_NN_AVERAGE_H
#define SL_NN_AVERAGE_H

#include <stddef.h>

/* sum[i] += x[i] for i < n (sum in double, caller-owned, zeroed before the first buffer). */
void average_add(double *sum, const float *x, size_t n);
/* out[i] = (float)(sum[i] / count) for i < n; count >= 1. */
void average_mean(float *out, const double *sum, size_t n, size_t count);

#endif
