/* encoder/encoder.h: the source side of the seq2seq model: embeddings + L-layer LSTM (nn/stack.h) over
 * a batch of sources, optionally reading each source backwards. Reversal touches only the real tokens:
 * a source a b c <pad> is read c b a <pad>, so padding stays at the end and the masks stay right-padded.
 * The encoder's result is every layer's final (h, c) (the state after the last real token of each row;
 * a zero-length row keeps the zero initial state) and the top layer's states at all steps.
 * Activations live in a struct stack_acts carved by the caller for (S, B).
 * ref: Sutskever, Vinyals & Le 2014, "Sequence to sequence learning with neural networks" (sec. 3.3). */
#ifndef SL_ENCODER_ENCODER_H
#define SL_ENCODER_ENCODER_H

#include <stddef.h>
#include <stdint.h>

#include "nn/stack.h"
#include "util/rng.h"

/* Fills ids (S, B) time-major and lens (B) from src (B, S) and src_len (B), reversed when reverse != 0;
 * padded steps get id 0. Checks src_len[b] in [0, S] and real ids in [0, V): SL_EINVAL with the row and
 * position otherwise. ids and lens are the encoder stack's (nn/stack.h or nn/bistack.h, carved for (S, B)). */
int enc_load(int32_t *ids, int32_t *lens, const int32_t *src, const int32_t *src_len, size_t B, size_t S, size_t V,
             int reverse);
/* Forward with dropout rate p (0 at inference; masks from r). */
void enc_forward(const struct stack_layout *lay, const float *w, struct stack_acts *a, float p, struct rng *r);
/* Backward from the gradients w.r.t. the top states dtop (S, B, H) (attention; NULL: none) and the final
 * states dhT, dcT (L, B, H); accumulates into g. */
void enc_backward(const struct stack_layout *lay, const float *w, float *g, struct stack_acts *a, const float *dtop,
                  const float *dhT, const float *dcT);
/* OUT: h, c (L, B, H): copies of the final states of every layer. */
void enc_final_state(const struct stack_layout *lay, const struct stack_acts *a, float *h, float *c);
/* The top layer's states h_1..h_S, (S, B, H) time-major in the encoder's reading order; borrowed. */
const float *enc_top_states(const struct stack_layout *lay, const struct stack_acts *a);

#endif
