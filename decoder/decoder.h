/* decoder/decoder.h: the target side of the seq2seq model: embeddings + L-layer LSTM (nn/stack.h) seeded
 * with the encoder's final states, the output projection (V_tgt, H) and the teacher-forced loss.
 * Teacher forcing: for a target y_1..y_n (given without BOS / EOS: this is the one place that adds them)
 * the decoder reads BOS y_1 .. y_n and predicts y_1 .. y_n EOS: n+1 steps, n+1 counted tokens; steps
 * past n+1 are padding (ignored). A batch of targets padded to T runs T1 = T + 1 steps (nn/dims.h).
 * Dropout (rate p) also applies to the top outputs before the projection.
 * The loss buffers live in a struct dec_loss_ws carved by the caller for (T+1, B).
 * ref: Sutskever et al. 2014; Williams & Zipser 1989 (teacher forcing). */
#ifndef SL_DECODER_DECODER_H
#define SL_DECODER_DECODER_H

#include <stddef.h>
#include <stdint.h>

#include "nn/arena.h"
#include "nn/stack.h"
#include "util/rng.h"

/* The output projection: sizes and float offsets of W (V, H) and b (V) in the flat buffer. */
struct dec_out {
    size_t V, H;
    size_t W, b;
    float label_smoothing; /* eps in [0, 1) of the training loss (dec_loss with g); 0: plain cross-entropy */
};

/* Buffers of the loss for T1 = T + 1 decoder steps and B rows. */
struct dec_loss_ws {
    size_t T1, B, chunk;
    int32_t *labels;  /* (T1, B) time-major labels, -1 at padding */
    int32_t *where;   /* (T1·B) index t·B + b of each real row, in time-major order */
    int32_t *lreal;   /* (T1·B) labels of the real rows */
    float *ytop;      /* (T1, B, H) top outputs after dropout */
    uint8_t *mtop;    /* (T1, B, H) its mask */
    float *yreal;     /* (T1·B, H) real rows, compacted */
    float *dyreal;    /* (T1·B, H) their gradient */
    float *dtop;      /* (T1, B, H) gradient w.r.t. the stack's top outputs */
    float *proj;      /* (chunk, V) logits of one chunk */
    double *rloss;    /* (T1·B) loss of each real row */
};

/* Takes the buffers of d for (T1, B) from ar (nn/arena.h protocol); chunk = rows per projection chunk. */
void dec_loss_carve(struct dec_loss_ws *d, struct arena *ar, size_t T1, size_t B, size_t H, size_t V,
                    size_t chunk);
/* Fills ids (T1, B) time-major and lens (B) (T1 = T + 1 steps: BOS y_1..y_n) and d->labels (y_1..y_n EOS)
 * from tgt (B, T) and tgt_len (B) (targets without BOS / EOS). Checks tgt_len[b] in [0, T] and ids in
 * [0, V): SL_EINVAL otherwise. ids, lens and d must be carved for (T1, B) (the decoder stack's ids and
 * lens: nn/stack.h or decoder/attn_stack.h). */
int dec_load(int32_t *ids, int32_t *lens, struct dec_loss_ws *d, const int32_t *tgt, const int32_t *tgt_len, size_t B,
             size_t T, size_t V, int32_t bos, int32_t eos);
/* Loss of the decoder's top outputs top (T1, B, H) (after stack_forward on the loaded batch).
 * When g != NULL also accumulates the gradient of scale·loss into g (out.W, out.b) and writes d->dtop,
 * the gradient w.r.t. top for stack_backward. p: dropout rate of the top outputs (masks from r).
 * With o->label_smoothing > 0 the gradient is that of the smoothed loss; *loss_sum is always the
 * unsmoothed cross-entropy (perplexity). OUT: *loss_sum, *n_tokens; when g == NULL and row_loss != NULL, row_loss (B): each row's loss. */
void dec_loss(const struct dec_out *o, const float *w, float *g, struct dec_loss_ws *d, const int32_t *lens,
              const float *top, float p, struct rng *r, float scale, double *loss_sum, size_t *n_tokens,
              double *row_loss);
/* out (M, V): log-softmax of the projection of the top states y (M, H). */
void dec_logprobs(const struct dec_out *o, const float *w, const float *y, size_t M, float *out);

#endif
