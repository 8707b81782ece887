/* nn/bistack.h: an embedding followed by L bidirectional LSTM layers, the body of a bidirectional encoder.
 * Forward and backward over a time-major (T, B) batch with right padding:
 *  - each layer l has a forward LSTM and a backward LSTM, Hd = H/2 wide each (H even), both reading the
 *    layer's input x_l (T, B, I_l), I_l = E (l = 0) or H;
 *  - the backward LSTM reads each row's real tokens in reverse: row b is real for t < lens[b], and only
 *    those steps are reversed (a b c <pad> is read c b a <pad>), so padding stays at the end;
 *  - the layer's output at step t is [h_fwd_t ; h_bwd_t] (H wide), where h_bwd_t is the backward LSTM's
 *    state after it has read x_t (having read x_{lens-1} .. x_t); at a padded step both halves carry the
 *    row's final states, as nn/stack.h's padded outputs do;
 *  - the final state of layer l is [h_fwd after the last real token ; h_bwd after position 0] (B, H), the
 *    same for c: PyTorch's torch.cat([h[0::2], h[1::2]], dim=2) of a bidirectional nn.LSTM of hidden H/2,
 *    which seeds a decoder of width H. A zero-length row keeps zero states (and zero outputs).
 * Dropout (inverted, rate p) on the embeddings and between layers, never on the recurrent connections;
 * the top layer's output is returned undropped. Both directions start from zero states.
 * Parameters are views into a flat buffer (nn/params.h), addressed by float offsets in bistack_layout;
 * a gradient buffer uses the same offsets. Activations are carved from the caller's arena.
 * Single-threaded (BLAS as nn/gemm.h says); no allocation after carving.
 * ref: Schuster & Paliwal 1997 (bidirectional RNNs); Bahdanau, Cho & Bengio 2015 (bidirectional encoder);
 * PyTorch nn.LSTM(bidirectional=True) and OpenNMT-py's brnn encoder (final states joined per layer). */
#ifndef SL_NN_BISTACK_H
#define SL_NN_BISTACK_H

#include <stddef.h>
#include <stdint.h>

#include "nn/arena.h"
#include "nn/dims.h"
#include "nn/lstm.h"
#include "nn/params.h"
#include "util/rng.h"

/* The two directions of a layer, the second index of bistack_layout.W and .b. */
enum bistack_dir { BISTACK_FWD = 0, BISTACK_BWD = 1 };

/* Sizes and float offsets of one bidirectional stack's parameters in the flat buffer. */
struct bistack_layout {
    size_t V, E, H, L;             /* H = 2·Hd, each direction Hd = H/2 wide */
    size_t emb;                    /* (V, E) */
    size_t W[NN_MAX_LAYERS][2];    /* [l][dir]: (4Hd, I_l + Hd), gate rows i f g o, columns [x | h] */
    size_t b[NN_MAX_LAYERS][2];    /* [l][dir]: (4Hd) */
};

/* Activations of one batch. The caller fills ids and lens after bistack_acts_carve. */
struct bistack_acts {
    size_t T, B, H, L;
    float p;                          /* dropout rate of the last forward (0: none) */
    int32_t *ids;                     /* (T, B) time-major token ids, in [0, V) also at padded steps */
    int32_t *lens;                    /* (B) real steps per row, 0..T */
    float *x0;                        /* (T, B, E) embeddings (after dropout) */
    uint8_t *m0;                      /* (T, B, E) dropout mask of x0 */
    float *xin[NN_MAX_LAYERS];        /* input of layer l: x0, y[l-1], or xd[l] */
    float *xd[NN_MAX_LAYERS];         /* (T, B, H) dropped output of layer l-1 (l >= 1) */
    uint8_t *md[NN_MAX_LAYERS];       /* (T, B, H) its mask */
    float *y[NN_MAX_LAYERS];          /* (T, B, H) output of layer l: [h_fwd ; h_bwd] per step */
    struct lstm_acts fw[NN_MAX_LAYERS], bw[NN_MAX_LAYERS]; /* (T, B, Hd) each; bw in reversed order */
    float *hT, *cT;                   /* (L, B, H) final states */
    float *xr;                        /* (T, B, max(E, H)) a layer's input, each row's real steps reversed */
    float *dxa, *dxb;                 /* (T, B, max(E, H)) backward ping-pong */
    float *dxr;                       /* (T, B, max(E, H)) gradient w.r.t. xr */
    float *dyf, *dyb;                 /* (T, B, Hd) gradient w.r.t. each direction's outputs (dyb reversed) */
    float *dst;                       /* (4, B, Hd) dh, dc of the forward, then the backward direction */
    float *scratch;                   /* lstm_scratch_floats(B, Hd) */
    float *pk;                        /* lstm_pack_floats(Hd): packed recurrent weight, shared by all LSTMs */
};

/* Appends the views of a bidirectional stack to t, in this order: "<side>.emb" (V, E), then per layer l
 * "<side>.lstm<l>.W" (4Hd, I_l + Hd), "<side>.lstm<l>.b" (4Hd) (forward direction),
 * "<side>.lstm<l>_rev.W", "<side>.lstm<l>_rev.b" (backward direction), and fills lay with their offsets.
 * SL_EINVAL (nothing added) when H is odd or 0, V or E is 0, L is outside 1..NN_MAX_LAYERS, or side is
 * NULL or leaves no room for the suffixes in PARAM_NAME_MAX; otherwise
 * param_table_add's errors (the views added before the failing one stay in t). */
int bistack_table_add(struct bistack_layout *lay, struct param_table *t, const char *side, size_t V, size_t E,
                      size_t H, size_t L);
/* Takes the arrays of a for (T, B), T >= 1, from ar (see nn/arena.h for the measure-then-carve protocol). */
void bistack_acts_carve(struct bistack_acts *a, struct arena *ar, const struct bistack_layout *lay, size_t T,
                        size_t B);
/* Forward from zero states with dropout rate p (0 at inference), masks drawn from r (unused when p == 0;
 * embeddings first, then between layers in layer order, as nn/stack.c). */
void bistack_forward(const struct bistack_layout *lay, const float *w, struct bistack_acts *a, float p,
                     struct rng *r);
/* The top layer's outputs: (T, B, H), borrowed from a (valid until a's next forward or backward). */
const float *bistack_top(const struct bistack_layout *lay, const struct bistack_acts *a);
/* Final state of layer l, (B, H) each, borrowed from a. bistack_final_h(a, 0) is the start of all L
 * layers' final h as one (L, B, H) array (a decoder's h0), likewise c. */
const float *bistack_final_h(const struct bistack_acts *a, size_t l);
const float *bistack_final_c(const struct bistack_acts *a, size_t l);
/* Backward of the last bistack_forward on a (destroys its gate values). dtop (T, B, H): gradient w.r.t. the
 * top outputs, or NULL; dhT, dcT (L, B, H): w.r.t. the final states, or NULL (any of them; an attention
 * decoder sends both). Accumulates (+=) into the gradient buffer g (same offsets as w). */
void bistack_backward(const struct bistack_layout *lay, const float *w, float *g, struct bistack_acts *a,
                      const float *dtop, const float *dhT, const float *dcT);

#endif
