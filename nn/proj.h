/* nn/proj.h: output projection, log-softmax and cross-entropy, fused and chunked.
 *   z = y W^T + b (V);  log p = z - logsumexp(z);  loss = -log p[label]
 * Rows are processed `chunk` at a time, so the (N, V) logits are never stored whole: a chunk's logits
 * become its softmax and, when training, its dlogits = scale·(p - onehot), which are multiplied into dW,
 * db and dY before the next chunk. Rows whose label is negative are ignored (no loss, no gradient).
 * The loss is accumulated in double. Single-threaded, no allocation (scratch is the caller's).
 * ref: Bridle 1990 (softmax); karpathy/llm.c (fused classifier, chunked logits). */
#ifndef SL_NN_PROJ_H
#define SL_NN_PROJ_H

#include <stddef.h>
#include <stdint.h>

/* Floats of scratch for a chunk of rows: chunk·V. */
size_t proj_scratch_floats(size_t chunk, size_t V);
/* Loss of rows Y (N, H) with labels (N) under W (V, H), b (V). OUT: *loss_sum (sum over counted rows),
 * *n_tokens (rows with label >= 0), row_loss (N) (0 for ignored rows) when not NULL. */
void proj_xent_forward(const float *W, const float *b, const float *Y, const int32_t *labels, size_t N,
                       size_t H, size_t V, float *scratch, size_t chunk, double *loss_sum, size_t *n_tokens,
                       double *row_loss);
/* As proj_xent_forward, and accumulates the gradients of scale·loss_sum: dW (V, H) +=, db (V) +=,
 * dY (N, H) +=. */
void proj_xent_forward_backward(const float *W, const float *b, const float *Y, const int32_t *labels,
                                size_t N, size_t H, size_t V, float scale, float *dW, float *db, float *dY,
                                float *scratch, size_t chunk, double *loss_sum, size_t *n_tokens);
/* As proj_xent_forward_backward with label smoothing eps in [0, 1): the loss of a counted row is
 *   (1-eps)·(-log p_y) + eps·mean_v(-log p_v)   (uniform over all V)
 * and dlogits = scale·(p - (1-eps)·onehot(y) - eps/V). OUT: *loss_sum (smoothed), *nll_sum (the
 * unsmoothed sum of -log p_y, for perplexity; may be NULL), *n_tokens. dW, db, dY all NULL: loss only.
 * eps == 0 gives exactly proj_xent_forward_backward's loss and gradients.
 * ref: Szegedy et al. 2016 (label smoothing, uniform prior over V; PyTorch's cross_entropy label_smoothing is
 *      the same; fairseq spreads eps over the V-1 other tokens instead). */
void proj_xent_smoothed_forward_backward(const float *W, const float *b, const float *Y, const int32_t *labels,
                                         size_t N, size_t H, size_t V, float eps, float scale, float *dW, float *db,
                                         float *dY, float *scratch, size_t chunk, double *loss_sum, double *nll_sum,
                                         size_t *n_tokens);
/* The first index of the largest of z[0..V) (greedy decoding's choice); NaN entries are never chosen,
 * 0 when all are NaN. Vectorised: one max pass, then a scan to its first occurrence. */
size_t proj_argmax(const float *z, size_t V);
/* out (M, V) = log_softmax(Y W^T + b) for Y (M, H). */
void proj_logprobs(const float *W, const float *b, const float *Y, size_t M, size_t H, size_t V, float *out);
/* The same with W pre-packed: P = gemm_pack_b(GEMM_T, H, V, W, H) (nn/gemm.h). */
void proj_logprobs_packed(const float *P, const float *b, const float *Y, size_t M, size_t H, size_t V,
                          float *out);

#endif
