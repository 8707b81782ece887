/* decoder/attn_stack.h: the decoder's LSTM stack with global attention and input feeding (Luong et al.
 * 2015), teacher-forced over a time-major (T, B) batch, and one decoding step.
 *   x_t   = [dropout(emb(y_{t-1})) ; h~_{t-1}]          (B, E+H), h~_{-1} = 0 (input feeding)
 *   h^l_t = LSTM_l(x^l_t, h^l_{t-1}, c^l_{t-1})         x^0 = x_t, x^l = dropout(h^{l-1}_t)
 *   h~_t  = attention(h^{L-1}_t, Hs)                     nn/attention.h: tanh(W_c [c_t ; h_t])
 * h~_t (T, B, H) is what the output projection reads (decoder/decoder.h dec_loss on it, which also
 * applies the output dropout). The stack is seeded with (h0, c0) (L, B, H), the encoder's final states.
 * Layer 0's weight is (4H, E+H+H): columns [emb | h~ | h]; layers above (4H, H+H) as in nn/stack.h, so the
 * offsets live in a struct stack_layout whose layer 0 input width is E+H (attn_stack_in_dim).
 * The steps run one after the other (input feeding makes step t depend on h~_{t-1}); padded steps are
 * computed like real ones: nothing real depends on them, and the loss gives them zero gradient.
 * Activations are carved from the caller's arena; single-threaded; no allocation.
 * ref: Luong, Pham & Manning 2015 (sec. 3.1 global attention, sec. 3.3 input feeding). */
#ifndef SL_DECODER_ATTN_STACK_H
#define SL_DECODER_ATTN_STACK_H

#include <stddef.h>
#include <stdint.h>

#include "nn/arena.h"
#include "nn/attention.h"
#include "nn/dims.h"
#include "nn/lstm.h"
#include "nn/stack.h"
#include "util/rng.h"

/* Input width of layer l: E + H for layer 0 (embedding and fed h~), H above. */
size_t attn_stack_in_dim(const struct stack_layout *lay, size_t l);

/* Activations of one batch: T steps of B rows over S source positions. The caller fills ids (T, B)
 * (time-major: BOS y_1 .. y_n, pad after) after attn_stack_acts_carve. Each (step, layer) cell is one
 * product over its [x | h] block (nn/lstm.h lstm_cell_forward); the blocks and the gate values of a layer
 * are kept contiguous over the steps, so the backward computes each layer's weight gradient with one
 * product over all T·B rows after the time loop. */
struct attn_stack_acts {
    size_t T, B, S, H, E, L;
    float p;                        /* dropout rate of the last forward */
    int32_t *ids;                   /* (T, B) decoder inputs */
    float *emb;                     /* (T, B, E) embeddings after dropout */
    uint8_t *memb;                  /* (T, B, E) its mask */
    float *xh[NN_MAX_LAYERS];       /* (T, B, I_l + H) cell inputs [x^l_t | h^l_{t-1}]: layer 0's x is
                                     * [emb_t | h~_{t-1}] (E+H), above it dropout(h^{l-1}_t) (H) */
    uint8_t *md[NN_MAX_LAYERS];     /* (T, B, H) the dropout mask of layer l's x (l >= 1) */
    float *gates[NN_MAX_LAYERS];    /* (T, B, 4H) gate values; attn_stack_backward overwrites them with dG */
    float *c[NN_MAX_LAYERS];        /* (T+1, B, H) cell states: c[l][0] = c0, then c_1 .. c_T */
    float *tc[NN_MAX_LAYERS];       /* (T, B, H) tanh(c_t) */
    float *hout;                    /* (B, H) the output h^l_t of the cell just run */
    struct attn_acts att;           /* per-step attention activations; att.ht (T, B, H) is the output */
    float *keys, *dkeys;            /* (S, B, KW) attention keys and their gradient */
    float *dht;                     /* (B, H) gradient w.r.t. h~_t */
    float *dh;                      /* (B, H) gradient w.r.t. one layer's output h^l_t */
    float *dxh[NN_MAX_LAYERS];      /* (B, I_l + H) gradient w.r.t. [x^l_t | h^l_{t-1}] of the last step
                                     * run backward */
    float *dc;                      /* (L, B, H) gradient w.r.t. the carried cell state */
    float *demb;                    /* (B, E) gradient w.r.t. one step's embeddings */
    float *scratch;                 /* attn_backward_floats(att, B, S) */
    float *pk[NN_MAX_LAYERS];       /* NULL, or layer l's W packed (lstm_cell_pack_floats): for W^T in the
                                     * forward, then for W in the backward */
    float *pka;                     /* NULL, or the attention's step weights packed (attn_pack_floats) */
};

/* Takes the arrays of a for (T, B, S) from ar (nn/arena.h measure-then-carve protocol), the buffers of
 * the packed weights included: a pass in f32 on one BLAS thread packs each per-step weight once (forward,
 * then again for the backward) instead of OpenBLAS repacking it at every step; setting a->pk[l] or a->pka
 * to NULL multiplies that weight unpacked (through gemm_run, as an autocast or several BLAS threads do). */
void attn_stack_acts_carve(struct attn_stack_acts *a, struct arena *ar, const struct stack_layout *lay,
                           const struct attn_layout *att, size_t T, size_t B, size_t S);
/* Teacher-forced forward from (h0, c0) (L, B, H) over the source states Hs (S, B, H) (borrowed: must stay
 * unchanged until attn_stack_backward) with source lengths src_len (B) in [0, S]; dropout p (masks from
 * r, unused when p == 0). The output is attn_stack_top(a), (T, B, H). */
void attn_stack_forward(const struct stack_layout *lay, const struct attn_layout *att, const float *w,
                        struct attn_stack_acts *a, const float *Hs, const int32_t *src_len, const float *h0,
                        const float *c0, float p, struct rng *r);
/* h~_1..h~_T, (T, B, H), borrowed from a. */
const float *attn_stack_top(const struct attn_stack_acts *a);
/* Backward of the last attn_stack_forward on a (same Hs, src_len) from dtop (T, B, H), the gradient w.r.t.
 * its outputs. Accumulates (+=) into g (decoder stack and attention weights), dHs (S, B, H), and
 * dh0, dc0 (L, B, H). Overwrites the gate values in a. The weights' gradients (LSTM W, b; attention W_c,
 * W_2) are summed over all steps at the end, one product per weight. */
void attn_stack_backward(const struct stack_layout *lay, const struct attn_layout *att, const float *w, float *g,
                         struct attn_stack_acts *a, const float *Hs, const int32_t *src_len, const float *dtop,
                         float *dHs, float *dh0, float *dc0);

/* Floats of scratch attn_stack_step needs for M rows over sources of up to S positions. */
size_t attn_stack_step_floats(const struct stack_layout *lay, const struct attn_layout *att, size_t M, size_t S);
/* One decoding step for M rows without dropout: ids (M) in [0, V); (h, c) (L, M, H) and feed (M, H) (h~ of
 * the previous step, zeros first) are updated in place; row r attends to source src_row[r] of Hs (S, B, H)
 * with keys (S, B, KW) (attn_keys_forward) and lengths src_len (B). OUT: feed = h~_t; align (M, S) the
 * attention weights when not NULL. P: NULL, or the decoder's packed weights: layer l's W packed as
 * gemm_pack_b(GEMM_T, I_l + H, 4H, W_l, I_l + H) at P + pk_lstm[l] and attn_pack at P + pk_att.
 * scratch: attn_stack_step_floats(lay, att, M, S) floats. */
void attn_stack_step(const struct stack_layout *lay, const struct attn_layout *att, const float *w, const float *P,
                     const size_t *pk_lstm, size_t pk_att, const int32_t *ids, size_t M, const float *Hs,
                     const float *keys, const int32_t *src_len, size_t S, size_t B, const int32_t *src_row,
                     float *h, float *c, float *feed, float *align, float *scratch);

#endif
