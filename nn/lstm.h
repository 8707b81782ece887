/* nn/lstm.h: one LSTM layer, forward and backward over a time-major (T, B) batch, and one decoding step.
 *   i = σ(W_i[x,h] + b_i)   f = σ(W_f[x,h] + b_f)   g = tanh(W_g[x,h] + b_g)   o = σ(W_o[x,h] + b_o)
 *   c_t = f*c_{t-1} + i*g   h_t = o*tanh(c_t)
 * Weights are fused: W (4H, I+H), rows in gate order i f g o, columns [x | h]; b (4H).
 * Padding: row b is real at step t iff t < lens[b] (lens NULL: all real); a padded step leaves that row's
 * h and c unchanged, so the final state of a short row is its last real step's state.
 * Everything is single-threaded (call gemm_set_threads(1) first inside OpenMP regions); no allocation.
 * ref: Hochreiter & Schmidhuber 1997; Zaremba et al. 2014 (equations); cuDNN-style input GEMM over all steps. */
#ifndef SL_NN_LSTM_H
#define SL_NN_LSTM_H

#include <stddef.h>
#include <stdint.h>

/* Activations of one layer for one batch, kept from forward for backward; the memory is the caller's. */
struct lstm_acts {
    float *gates; /* (T, B, 4H): gate values i f g o after σ / tanh; lstm_backward overwrites them with dG */
    float *h;     /* (T+1, B, H): h[0] = h0, h[t+1] = state after step t; h + B*H is the (T, B, H) output */
    float *c;     /* (T+1, B, H) */
    float *tc;    /* (T, B, H): tanh(c_t) at real steps */
    float *pk;    /* NULL, or lstm_pack_floats(H) floats of scratch: the recurrent weight is then packed once
                   * per pass for the per-step products (nn/gemm.h) when BLAS runs one thread */
    const float *pkw; /* NULL, or the recurrent weight already packed, lstm_pack_recurrent(W, I, H, ...): forward
                       * uses it instead of packing into pk (decoding, where the weights do not change) */
};

/* Floats of lstm_acts.pk for hidden size H. */
size_t lstm_pack_floats(size_t H);
/* Packs the recurrent part W[:, I:] of W (4H, I+H) as forward's per-step products read it, into
 * P (lstm_pack_floats(H) floats). */
void lstm_pack_recurrent(const float *W, size_t I, size_t H, float *P);

/* Floats lstm_acts_carve needs for (T, B, H); a multiple of 16. */
size_t lstm_acts_floats(size_t T, size_t B, size_t H);
/* Points the arrays of a into buf (lstm_acts_floats(T, B, H) floats, 64-byte aligned); a->pk = a->pkw = NULL.
 * buf NULL (an arena measuring): every array NULL. */
void lstm_acts_carve(struct lstm_acts *a, float *buf, size_t T, size_t B, size_t H);
/* Floats of scratch lstm_backward needs: 3·B·H. */
size_t lstm_scratch_floats(size_t B, size_t H);

/* Forward over x (T, B, I) from (h0, c0) (B, H) each, NULL meaning zeros. Fills a. */
void lstm_forward(const float *W, const float *b, const float *x, const int32_t *lens, size_t T, size_t B,
                  size_t I, size_t H, const float *h0, const float *c0, struct lstm_acts *a);
/* Backward of lstm_forward (same W, x, lens, dims; a as filled by it; a->gates is overwritten).
 * dy (T, B, H): gradient w.r.t. the outputs h_1..h_T, or NULL; dhT, dcT (B, H): gradient w.r.t. the
 * final state, or NULL. Accumulates (+=) into dW (4H, I+H), db (4H), and, when not NULL, dx (T, B, I),
 * dh0 and dc0 (B, H). scratch: lstm_scratch_floats(B, H) floats. */
void lstm_backward(const float *W, const float *x, const int32_t *lens, size_t T, size_t B, size_t I,
                   size_t H, struct lstm_acts *a, const float *dy, const float *dhT, const float *dcT,
                   float *dW, float *db, float *dx, float *dh0, float *dc0, float *scratch);
/* One cell on a prepared [x | h] block, for callers that run the steps themselves (the attention decoder,
 * whose input feeding makes step t's input depend on step t-1's output). No padding. The caller keeps the
 * blocks xh and gate values of all its steps contiguous, (T, B, I+H) and (T, B, 4H), so the weight
 * gradient is one product over all T·B rows after the time loop (lstm_cell_backward_weights) instead of
 * one with k = B per step.
 * Packed weights: a product with few rows (B) and a weight reused by every step is mostly OpenBLAS
 * repacking the weight on each call; a caller that runs f32 on one BLAS thread packs W once per pass
 * (lstm_cell_pack_forward before the forward steps, lstm_cell_pack_backward before the backward ones) and
 * passes it as P; P NULL multiplies W through gemm_run (autocast, several BLAS threads). Results differ
 * from gemm_run's in the last bits.
 * Forward: gates (B, 4H) = xh (B, I+H) · W^T, one product with W (4H, I+H) as its right operand (an
 * autocast reuses its converted copy, nn/autocast.h), then the cell. xh = [x_t | h_{t-1}]; cp (B, H) =
 * c_{t-1}. OUT: gv (B, 4H) gate values i f g o, c (B, H) = c_t (may equal cp), h (B, H) = h_t,
 * tc (B, H) = tanh(c_t). */
void lstm_cell_forward(const float *W, const float *P, const float *b, const float *xh, size_t B, size_t I,
                       size_t H, const float *cp, float *gv, float *c, float *h, float *tc);
/* Backward of lstm_cell_forward (same W, dims, cp, tc; P NULL or lstm_cell_pack_backward's): gv holds the
 * gate values in and dG (B, 4H), the gradient w.r.t. the pre-activations, out. dh (B, H): gradient w.r.t.
 * h_t; dc (B, H): w.r.t. c_t in, w.r.t. c_{t-1} out. Accumulates dxh (B, I+H) += dG · W, i.e.
 * [dx_t | dh_{t-1}]. The weights' gradient is left to lstm_cell_backward_weights. */
void lstm_cell_backward(const float *W, const float *P, size_t B, size_t I, size_t H, float *gv, const float *dh,
                        float *dc, const float *cp, const float *tc, float *dxh);
/* Floats of one packed cell weight, enough for either orientation: one buffer serves the forward's pack
 * and then the backward's. */
size_t lstm_cell_pack_floats(size_t I, size_t H);
/* P = W^T packed for lstm_cell_forward / W packed for lstm_cell_backward; W (4H, I+H). */
void lstm_cell_pack_forward(const float *W, size_t I, size_t H, float *P);
void lstm_cell_pack_backward(const float *W, size_t I, size_t H, float *P);
/* The weights' gradient of N cell rows (the steps' blocks stacked, N = T·B): dW (4H, I+H) += dG^T · xh
 * with dG (N, 4H) as lstm_cell_backward left it and xh (N, I+H) the forward's inputs; db (4H) += the
 * column sums of dG, in row order. */
void lstm_cell_backward_weights(const float *dG, const float *xh, size_t N, size_t I, size_t H, float *dW,
                                float *db);
/* One step for M rows without padding: (h, c) (M, H) each are updated in place from x (M, I).
 * scratch: lstm_step_floats(M, H) floats. */
size_t lstm_step_floats(size_t M, size_t H);
void lstm_step_forward(const float *W, const float *b, const float *x, size_t M, size_t I, size_t H,
                       float *h, float *c, float *scratch);
/* The same step with W pre-packed: P = gemm_pack_b(GEMM_T, I+H, 4H, W, I+H) (nn/gemm.h), one fused
 * [x | h] product. scratch: lstm_step_packed_floats(M, I, H) floats. */
size_t lstm_step_packed_floats(size_t M, size_t I, size_t H);
void lstm_step_forward_packed(const float *P, const float *b, const float *x, size_t M, size_t I, size_t H,
                              float *h, float *c, float *scratch);

#endif
