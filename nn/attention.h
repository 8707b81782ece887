/* nn/attention.h: global attention over the source states, one decoder step at a time (Luong et al. 2015),
 * for B rows over S source positions; the decoder calls it step by step because of input feeding.
 *   scores  dot:     e[b,s] = h_t · hs                      (hs = Hs[s,b], the top encoder state, (H))
 *           general: e[b,s] = h_t · (W_a hs)                W_a (H, H)
 *           mlp:     e[b,s] = v · tanh(W_1 hs + W_2 h_t)    W_1 (A, H), W_2 (A, H), v (A)   (Bahdanau's score)
 *   a[b,·] = softmax of e[b, s < len[b]]; a[b,s] = 0 exactly for s >= len[b] (a row with len 0 is all 0)
 *   c_t = sum_s a[b,s] hs                                   (H)
 *   h~_t = tanh(W_c [c_t; h_t])                             W_c (H, 2H), columns [c | h], no bias (eq. 5)
 * Keys: the source-side products that do not depend on t, K = W_a hs (general) or W_1 hs (mlp), are
 * computed once per batch by attn_keys_forward into keys (S, B, KW), KW = attn_key_width (0 for dot: the
 * steps read Hs itself), and their gradient dkeys, accumulated by every step, is folded back once by
 * attn_keys_backward.
 * Per-step activations (struct attn_step): a (B, S), ch (B, 2H) = [c_t | h_t] per row, h~ (B, H) and, for
 * mlp, q (B, A) = W_2 h_t. The mlp backward recomputes tanh(K + q) instead of storing the (B, S, A)
 * activations of every step (T·B·S·A floats a batch).
 * Weight gradients of W_c and W_2: a step's backward keeps the gradients of its products' outputs (dpre,
 * dq) in the step's arrays, and attn_step_backward_weights turns the rows of all T steps into dW_c, dW_2
 * with one product each (k = T·B) after the time loop, instead of a product with k = B per step.
 * Parameters: views in the flat buffer (nn/params.h) at the float offsets of struct attn_layout; a
 * gradient buffer uses the same offsets. Backward accumulates (+=) everywhere.
 * Single-threaded (call gemm_set_threads(1) first inside OpenMP regions); no allocation in the kernels.
 * ref: Luong, Pham & Manning 2015 (global attention, eq. 5, input feeding);
 *      Bahdanau, Cho & Bengio 2015 (additive score). */
#ifndef SL_NN_ATTENTION_H
#define SL_NN_ATTENTION_H

#include <stddef.h>
#include <stdint.h>

#include "nn/arena.h"
#include "nn/params.h"

/* The score function; ATTN_NONE is the model without attention (no kernel of this file takes it). */
enum attn_score { ATTN_NONE = 0, ATTN_DOT = 1, ATTN_GENERAL = 2, ATTN_MLP = 3 };

/* Sizes and float offsets of the attention's parameters; offsets of weights the score does not use are 0. */
struct attn_layout {
    enum attn_score score;
    size_t H;  /* hidden width of the decoder and of the source states */
    size_t A;  /* attention width (mlp; 0 otherwise) */
    size_t Wa; /* (H, H) general */
    size_t W1; /* (A, H) mlp, applied to hs */
    size_t W2; /* (A, H) mlp, applied to h_t */
    size_t v;  /* (A) mlp */
    size_t Wc; /* (H, 2H), columns [c | h] */
};

/* "none", "dot", "general", "mlp"; NULL for a value outside the enum. Static string. */
const char *attn_score_name(enum attn_score s);
/* OUT: *s = the score named `name` (one of the names above). SL_EINVAL with a message otherwise. */
int attn_score_parse(const char *name, enum attn_score *s);

/* Floats of parameters of a layout (alignment gaps excluded); 0 for ATTN_NONE. A matters only for mlp. */
size_t attn_param_floats(enum attn_score s, size_t H, size_t A);
/* Appends the views of the attention to t, named "<prefix>.Wa" (general), "<prefix>.W1", "<prefix>.W2",
 * "<prefix>.v" (mlp), then "<prefix>.Wc", and fills lay with their offsets. H >= 1; A >= 1 for mlp
 * (ignored otherwise). SL_EINVAL for ATTN_NONE, a bad size or name (with a message); SL_ENOMEM, SL_EEXIST
 * from param_table_add. On failure lay is unspecified and t may hold some of the views. */
int attn_layout_add(struct attn_layout *lay, struct param_table *t, const char *prefix, enum attn_score s,
                    size_t H, size_t A);

/* Width of one key row: 0 (dot), H (general), A (mlp). */
size_t attn_key_width(const struct attn_layout *lay);
/* keys (S, B, KW) = Hs (S, B, H) W^T with W = W_a or W_1; nothing for dot. Positions past a row's length
 * are computed too (they are masked in the steps). */
void attn_keys_forward(const struct attn_layout *lay, const float *w, const float *Hs, size_t S, size_t B,
                       float *keys);
/* Backward of attn_keys_forward: from dkeys (S, B, KW) accumulates g (W_a or W_1) += and dHs (S, B, H) +=
 * (dHs may be NULL). Nothing for dot. */
void attn_keys_backward(const struct attn_layout *lay, const float *w, float *g, const float *Hs, size_t S,
                        size_t B, const float *dkeys, float *dHs);

/* What one step keeps for its backward (B rows); the arrays are the caller's. */
struct attn_step {
    float *a;  /* (B, S) attention weights, 0 past each row's length */
    float *ch; /* (B, 2H) [c_t | h_t] */
    float *ht; /* (B, H) the attentional state h~_t */
    float *q;  /* (B, A) W_2 h_t (mlp), else unused (may be NULL) */
    float *dpre; /* (B, H) written by attn_step_backward: gradient w.r.t. [c | h] W_c^T (before the tanh) */
    float *dq;   /* (B, A) written by attn_step_backward: gradient w.r.t. q (mlp), else unused (may be NULL) */
};
/* The activations of T steps of one batch, time-major and contiguous: ht (T, B, H) can go to the output
 * projection whole, and attn_acts_step(a, 0) read as N = T·B rows spans all steps (for
 * attn_step_backward_weights). */
struct attn_acts {
    size_t T, B, S, H, A;
    float *a;  /* (T, B, S) */
    float *ch; /* (T, B, 2H) */
    float *ht; /* (T, B, H) */
    float *q;  /* (T, B, A) mlp, else NULL */
    float *dpre; /* (T, B, H) */
    float *dq;   /* (T, B, A) mlp, else NULL */
    float *scratch; /* attn_backward_floats(lay, B, S) */
};
/* Takes the arrays of a for T steps of (B, S) from ar (nn/arena.h protocol). */
void attn_acts_carve(struct attn_acts *a, struct arena *ar, const struct attn_layout *lay, size_t T, size_t B,
                     size_t S);
/* The arrays of step t < T of a (borrowed from a). */
struct attn_step attn_acts_step(const struct attn_acts *a, size_t t);

/* Forward of one step for B rows: h (B, H) the decoder's top state, Hs (S, B, H), keys (S, B, KW) from
 * attn_keys_forward (unused for dot, may be NULL), len (B) in [0, S]. Fills st (its ht is h~_t).
 * P: NULL, or w's step weights packed by attn_pack (the same sums in another order). */
void attn_step_forward(const struct attn_layout *lay, const float *w, const float *P, const float *Hs,
                       const float *keys, const int32_t *len, size_t S, size_t B, const float *h,
                       const struct attn_step *st);
/* Floats of scratch attn_step_backward needs: B·2H + S. */
size_t attn_backward_floats(const struct attn_layout *lay, size_t B, size_t S);
/* Backward of attn_step_forward (same lay, w, Hs, keys, len, S, B; st as it filled it) from dht (B, H),
 * the gradient w.r.t. h~_t (from the output layer plus, with input feeding, from the next step's input).
 * Accumulates: g (v for mlp) +=, dh (B, H) +=, dHs (S, B, H) +=, dkeys (S, B, KW) += (general, mlp; NULL
 * for dot). Positions s >= len[b] receive exactly nothing. Writes st->dpre and, for mlp, st->dq: the
 * gradients of W_c and W_2 are added by attn_step_backward_weights, which must follow (once per step, or
 * once for all steps). scratch: attn_backward_floats(lay, B, S) floats. P: NULL, or w's step weights
 * packed by attn_pack_backward. */
void attn_step_backward(const struct attn_layout *lay, const float *w, const float *P, float *g, const float *Hs,
                        const float *keys, const int32_t *len, size_t S, size_t B, const struct attn_step *st,
                        const float *dht, float *dh, float *dHs, float *dkeys, float *scratch);
/* The weight gradients of steps whose attn_step_backward ran: g (W_c) += dpre^T [c | h] and, for mlp,
 * g (W_2) += dq^T h, one product each with k = N, over the N rows of st's arrays (one step: N = B; all T
 * steps of an attn_acts: st = attn_acts_step(a, 0), N = T·B). */
void attn_step_backward_weights(const struct attn_layout *lay, float *g, const struct attn_step *st, size_t N);

/* Decoding: M rows (beam hypotheses) over B sources, row r reading source src_row[r] in [0, B) (several rows
 * may share one; NULL means r itself, M == B). Hs (S, B, H), keys (S, B, KW) and len (B) as for the step;
 * h (M, H). OUT: ht (M, H) = h~, a (M, S) the attention weights (for alignments; 0 past the length).
 * P: NULL, or the weights packed by attn_pack (faster for few rows; results differ in the last bits).
 * scratch: attn_decode_floats(lay, M) floats. No allocation; single-threaded. */
size_t attn_decode_floats(const struct attn_layout *lay, size_t M);
void attn_decode_step(const struct attn_layout *lay, const float *w, const float *P, const float *Hs,
                      const float *keys, const int32_t *len, size_t S, size_t B, const int32_t *src_row, size_t M,
                      const float *h, float *a, float *ht, float *scratch);
/* Floats of a pack: W_c packed for [c | h] (M, 2H) · W_c^T, then W_2 for h W_2^T (mlp); enough for
 * attn_pack_backward's orientation too. */
size_t attn_pack_floats(const struct attn_layout *lay);
/* P (attn_pack_floats(lay) floats) = the per-step weights of w packed (nn/gemm.h gemm_pack_b) for the
 * forward (attn_step_forward, attn_decode_step). */
void attn_pack(const struct attn_layout *lay, const float *w, float *P);
/* The same weights packed for attn_step_backward's products dpre · W_c and dq · W_2. */
void attn_pack_backward(const struct attn_layout *lay, const float *w, float *P);

#endif
