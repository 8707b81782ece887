/* model/seq2seq.h: the LSTM encoder-decoder model API (training loss, validation loss, encoding, one
 * decoding step, decoding state for greedy and beam search).
 * Model: source embeddings -> L-layer LSTM encoder (optionally reading the source backwards); its final
 * (h, c) of every layer seed an L-layer LSTM decoder over BOS y_1..y_n -> Linear(H, V_tgt) -> softmax
 * cross-entropy against y_1..y_n EOS (pad ignored). Dropout on embeddings, between layers and before
 * the projection, only in s2s_loss_forward_backward.
 * Parameters: one flat float buffer described by s2s_model.table (names below); gradients and Adam
 * moments share its layout. Functions only read w; a workspace (one per thread) holds activations.
 * Every function is single-threaded (no OpenMP inside); a caller running them in OpenMP threads calls
 * gemm_set_threads(1) first. Token ids and lengths are int32_t; the special ids are the tokenizer's
 * (tokenizer/special.h: BPE_PAD, BPE_BOS, BPE_EOS). Dimension letters: nn/dims.h (T never counts
 * BOS / EOS; the decoder runs T1 = T + 1 steps).
 * ref: Sutskever, Vinyals & Le 2014; Zaremba, Sutskever & Vinyals 2014 (dropout). */
#ifndef SL_MODEL_SEQ2SEQ_H
#define SL_MODEL_SEQ2SEQ_H

#include <stddef.h>
#include <stdint.h>

#include "decoder/decoder.h"
#include "nn/attention.h"
#include "nn/bistack.h"
#include "nn/params.h"
#include "nn/stack.h"
#include "tokenizer/special.h"
#include "util/rng.h"

#define S2S_INIT_SCALE 0.08f /* uniform init range; forget-gate biases start at 1 */

struct s2s_config {
    size_t V_src, V_tgt;   /* vocabularies (specials included; V_tgt > BPE_EOS) */
    size_t E, H, L;        /* embedding width, hidden width, layers (1..NN_MAX_LAYERS) */
    float dropout;         /* training dropout rate in [0, 1) */
    int reverse_source;    /* nonzero: the encoder reads each source backwards */
    enum attn_score attention; /* ATTN_NONE (0): the plain model; else Luong attention with input feeding */
    int bidirectional;     /* nonzero: each encoder layer is a forward and a backward LSTM of H/2 (H even) */
    float label_smoothing; /* training loss: eps in [0, 1) (0: plain cross-entropy; perplexity never smoothed) */
};

/* Parameter views, in buffer order:
 *   enc.emb (V_src, E)   enc.lstm<l>.W (4H, I_l+H)   enc.lstm<l>.b (4H)     l = 0..L-1, I_0 = E, I_l = H
 *   dec.emb (V_tgt, E)   dec.lstm<l>.W (4H, I_l+H)   dec.lstm<l>.b (4H)
 *   out.W (V_tgt, H)     out.b (V_tgt)
 * Bidirectional encoder (nn/bistack.h): enc.emb, then per layer enc.lstm<l>.W/.b (forward) and
 * enc.lstm<l>_rev.W/.b (backward), each (4H/2, I_l + H/2); the decoder starts from both directions' final
 * states side by side. With attention: dec.lstm0.W is (4H, E + H + H) (input feeding: [emb | h~ | h]) and
 * the attention's views att.* (nn/attention.h) come before out.W; the output layer reads h~.
 * LSTM weights: gate rows i f g o, columns [x | h] (nn/lstm.h). */
struct s2s_model {
    struct s2s_config cfg;
    struct param_table table; /* the flat buffer holds table.total floats */
    struct stack_layout enc, dec; /* enc: unidirectional only; dec layer 0 reads E + H with attention */
    struct bistack_layout benc;   /* the bidirectional encoder (cfg.bidirectional) */
    struct attn_layout att;       /* cfg.attention != ATTN_NONE */
    struct dec_out out;
};

/* One training / validation batch. Sources and targets are batch-major and right-padded; a struct batch
 * (corpus/batch.h) has this layout, BOS and EOS are added by the decoder (decoder/decoder.h) only. */
struct s2s_batch {
    size_t B, S, T;
    const int32_t *src;     /* (B, S) source ids; row b is real for s < src_len[b] */
    const int32_t *src_len; /* (B) in [0, S] */
    const int32_t *tgt;     /* (B, T) target ids WITHOUT BOS or EOS */
    const int32_t *tgt_len; /* (B) in [0, T]; row b contributes tgt_len[b] + 1 tokens (EOS included) */
};

struct s2s_workspace;
struct s2s_decoder;
struct s2s_packed;

/* Checks cfg (SL_EINVAL with a message) and builds the parameter table. */
int s2s_model_init(struct s2s_model *m, const struct s2s_config *cfg);
void s2s_model_free(struct s2s_model *m);
/* w (table.total floats): uniform in ±S2S_INIT_SCALE, forget-gate biases 1, alignment gaps 0. */
void s2s_params_init(const struct s2s_model *m, float *w, struct rng *r);

/* A workspace sized for batches up to (max_B, max_S, max_T); it grows when a call needs more.
 * NULL on failure (message recorded). Not thread-safe: one per thread. */
struct s2s_workspace *s2s_workspace_create(const struct s2s_model *m, size_t max_B, size_t max_S, size_t max_T);
void s2s_workspace_free(struct s2s_workspace *ws);
/* Bytes currently held. */
size_t s2s_workspace_bytes(const struct s2s_workspace *ws);

/* Tokens the loss counts for bt: sum of tgt_len[b] + 1 (EOS included); lengths are not validated. */
size_t s2s_batch_tokens(const struct s2s_batch *bt);
/* Training: forward and backward with dropout cfg.dropout (masks drawn from r; r may be NULL when the
 * dropout is 0). Accumulates (+=) the gradient of grad_scale · loss_sum into g (table layout).
 * OUT: *loss_sum (sum of token cross-entropies, nats), *n_tokens. SL_EINVAL for bad ids or lengths
 * (nothing is accumulated then), SL_ENOMEM. */
int s2s_loss_forward_backward(const struct s2s_model *m, const float *w, float *g, struct s2s_workspace *ws,
                              const struct s2s_batch *bt, float grad_scale, struct rng *r, double *loss_sum,
                              size_t *n_tokens);
/* Validation / scoring: the same loss without dropout or gradients.
 * OUT: *loss_sum, *n_tokens, and row_loss (B) (each pair's -log p(target | source)) when not NULL. */
int s2s_loss_forward(const struct s2s_model *m, const float *w, struct s2s_workspace *ws,
                     const struct s2s_batch *bt, double *loss_sum, size_t *n_tokens, double *row_loss);
/* Encodes src (B, S) with lengths src_len (B). OUT: h, c (L, B, H): the decoder's initial state. */
int s2s_encode(const struct s2s_model *m, const float *w, struct s2s_workspace *ws, const int32_t *src,
               const int32_t *src_len, size_t B, size_t S, float *h, float *c);
/* One decoding step for M rows: reads prev (M) (the previous token, BPE_BOS first), advances (h, c)
 * (L, M, H) in place. OUT: logprobs (M, V_tgt), log-softmax of the next token. */
int s2s_decode_step(const struct s2s_model *m, const float *w, struct s2s_workspace *ws, const int32_t *prev,
                    size_t M, float *h, float *c, float *logprobs);
/* h_out, c_out (L, M, H): row i is row rows[i] (< M_in) of h, c (L, M_in, H). Outputs must not alias inputs. */
void s2s_state_gather(const struct s2s_model *m, const float *h, const float *c, size_t M_in, const size_t *rows,
                      size_t M, float *h_out, float *c_out);

/* The weights decoding multiplies a few rows at a time (the decoder's LSTM layers and output projection,
 * the encoder's recurrent weights) packed for those products (nn/gemm.h), made once and shared read-only
 * by any number of decoders (threads): packing is a pass over all those weights, a noticeable share of
 * greedy decoding when done per batch. m and w are borrowed. pack 0: no packed copy at all, for decoders
 * whose products never read one (bf16 / int8 decoding takes the autocast's copies): they then multiply
 * the weights as stored. NULL on failure. */
struct s2s_packed *s2s_packed_create(const struct s2s_model *m, const float *w, int pack);
/* Packs again from w: call after the weights changed (training), while no decoder runs. */
void s2s_packed_refresh(struct s2s_packed *p);
void s2s_packed_free(struct s2s_packed *p);

/* Decoding state of M hypotheses, for greedy and beam search; owns its workspace and state buffers.
 * m and w are borrowed and must outlive it. pk: packed weights of (m, w) shared with other decoders, or
 * NULL: the decoder packs its own copy at every s2s_decoder_start (so it follows changing weights).
 * NULL on failure. */
struct s2s_decoder *s2s_decoder_create(const struct s2s_model *m, const float *w, const struct s2s_packed *pk);
void s2s_decoder_free(struct s2s_decoder *d);
/* Encodes src (B, S) and starts M = B·K hypotheses: row b·K + k starts from source b's state. */
int s2s_decoder_start(struct s2s_decoder *d, const int32_t *src, const int32_t *src_len, size_t B, size_t S,
                      size_t K);
/* Advances the M hypotheses (M must equal s2s_decoder_rows(d)) by prev (M). OUT: logprobs (M, V_tgt).
 * Same shape as struct beam_model's step (decoder/beam.h): wrap it with a cast of ctx. */
int s2s_decoder_step(struct s2s_decoder *d, const int32_t *prev, size_t M, float *logprobs);
/* New hypothesis i continues old hypothesis rows[i] (i < M_new; rows in [0, M)); M becomes M_new.
 * M_new may exceed M (the buffers grow). Same shape as struct beam_model's reorder. */
int s2s_decoder_reorder(struct s2s_decoder *d, const size_t *rows, size_t M_new);
/* Alignment tracking (models with attention): with on != 0, every later s2s_decoder_step also records, per
 * row, the source position with the largest attention weight (the first on ties), in the source's own order
 * (a reversed source is mapped back) and counting its EOS when the source has one. SL_EINVAL for a model
 * without attention. */
int s2s_decoder_track_align(struct s2s_decoder *d, int on);
/* (M) the positions of the last step (M = s2s_decoder_rows at that step); NULL when not tracking. Borrowed
 * until the next call on d. */
const int32_t *s2s_decoder_align(const struct s2s_decoder *d);
/* The model d decodes with (borrowed). */
const struct s2s_model *s2s_decoder_model(const struct s2s_decoder *d);
/* Current number of hypotheses. */
size_t s2s_decoder_rows(const struct s2s_decoder *d);
/* The state (L, M, H) each; borrowed, valid until the next call on d. */
void s2s_decoder_state(const struct s2s_decoder *d, const float **h, const float **c);

#endif
