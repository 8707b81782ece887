/* nn/embed.h: embedding lookup (gather) and its backward (scatter-add).
 * Ids must be in [0, V); callers validate user data before (the kernels only assert).
 * No padding index: the model masks padded steps in the LSTM, so a pad position's embedding gets an
 * exactly zero gradient there anyway.
 * ref: Bengio et al. 2003 (word embeddings as a lookup table). */
#ifndef SL_NN_EMBED_H
#define SL_NN_EMBED_H

#include <stddef.h>
#include <stdint.h>

/* out (n, E): out[k] = table[ids[k]], table (V, E). */
void embed_forward(const float *table, size_t V, size_t E, const int32_t *ids, size_t n, float *out);
/* dtable[ids[k]] += dout[k] for k < n (dout (n, E)). */
void embed_backward(float *dtable, size_t V, size_t E, const int32_t *ids, size_t n, const float *dout);

#endif
