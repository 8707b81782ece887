/* nn/stack.h: an embedding followed by L stacked LSTM layers, the body shared by the encoder and the
 * decoder. Forward and backward over a time-major (T, B) batch with padding, and one decoding step.
 * Dropout (inverted, rate p) is applied to the embeddings and between layers, never on the recurrent
 * connections; the top layer's output is returned undropped. Layer l reads I_l = E (l = 0) or H.
 * Parameters are views into a flat buffer (nn/params.h), addressed by float offsets in stack_layout;
 * a gradient buffer uses the same offsets. Activations are carved from the caller's arena.
 * ref: Sutskever et al. 2014 (stacked LSTM); Zaremba et al. 2014 (where dropout goes). */
#ifndef SL_NN_STACK_H
#define SL_NN_STACK_H

#include <stddef.h>
#include <stdint.h>

#include "nn/arena.h"
#include "nn/dims.h"
#include "nn/lstm.h"
#include "util/rng.h"

/* Sizes and float offsets of one stack's parameters in the flat buffer. */
struct stack_layout {
    size_t V, E, H, L;
    size_t emb;               /* (V, E) */
    size_t W[NN_MAX_LAYERS];  /* (4H, I_l + H), gate rows i f g o, columns [x | h] */
    size_t b[NN_MAX_LAYERS];  /* (4H) */
};

/* Activations of one batch. The caller fills ids and lens after stack_acts_carve. */
struct stack_acts {
    size_t T, B, H, L;
    float p;                          /* dropout rate of the last forward (0: none) */
    int32_t *ids;                     /* (T, B) time-major token ids, in [0, V) also at padded steps */
    int32_t *lens;                    /* (B) real steps per row, 0..T */
    float *x0;                        /* (T, B, E) embeddings (after dropout) */
    uint8_t *m0;                      /* (T, B, E) dropout mask of x0 */
    float *xin[NN_MAX_LAYERS];        /* input of layer l: x0, the output of l-1, or xd[l] */
    float *xd[NN_MAX_LAYERS];         /* (T, B, H) dropped output of layer l-1 (l >= 1) */
    uint8_t *md[NN_MAX_LAYERS];       /* (T, B, H) its mask */
    struct lstm_acts layer[NN_MAX_LAYERS];
    float *dxa, *dxb;                 /* (T, B, max(E, H)) backward ping-pong */
    float *scratch;                   /* lstm_scratch_floats(B, H) */
    float *pk;                        /* lstm_pack_floats(H): packed recurrent weight, shared by the layers */
};

/* Takes the arrays of a for (T, B) from ar (see nn/arena.h for the measure-then-carve protocol). */
void stack_acts_carve(struct stack_acts *a, struct arena *ar, const struct stack_layout *lay, size_t T, size_t B);
/* Forward from (h0, c0) (L, B, H) each, NULL meaning zeros; dropout rate p (0 at inference) with masks
 * drawn from r (unused when p == 0). */
void stack_forward(const struct stack_layout *lay, const float *w, struct stack_acts *a, const float *h0,
                   const float *c0, float p, struct rng *r);
/* The top layer's outputs h_1..h_T: (T, B, H), borrowed from a. */
const float *stack_top(const struct stack_layout *lay, const struct stack_acts *a);
/* Final state of layer l, (B, H) each, borrowed from a (the carried state after step T). */
const float *stack_final_h(const struct stack_acts *a, size_t l);
const float *stack_final_c(const struct stack_acts *a, size_t l);
/* Backward of the last stack_forward on a (destroys its gate values). dtop (T, B, H): gradient w.r.t.
 * the top outputs, or NULL; dhT, dcT (L, B, H): w.r.t. the final states, or NULL. Accumulates into the
 * gradient buffer g (same offsets as w) and, when not NULL, into dh0, dc0 (L, B, H). */
void stack_backward(const struct stack_layout *lay, const float *w, float *g, struct stack_acts *a,
                    const float *dtop, const float *dhT, const float *dcT, float *dh0, float *dc0);
/* Floats of scratch stack_step needs for M rows. */
size_t stack_step_floats(const struct stack_layout *lay, size_t M);
/* One step without dropout or padding: ids (M) in [0, V), (h, c) (L, M, H) each updated in place.
 * The top output is h + (L-1)·M·H. scratch: stack_step_floats(lay, M) floats. */
void stack_step(const struct stack_layout *lay, const float *w, const int32_t *ids, size_t M, float *h,
                float *c, float *scratch);

#endif
