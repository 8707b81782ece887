/* tests/greedy_oracle.h: a test oracle for greedy decoding, written independently of beam search (which is
 * the production greedy decoder with beam 1, decoder/beam.h): at every step each unfinished sentence takes
 * its most probable next token (the first on ties), until EOS or max_len tokens. Finished sentences leave
 * the batch (their rows are dropped with s2s_decoder_reorder), so the work shrinks as sentences end.
 * ref: Sutskever et al. 2014 (left-to-right decoding; beam width 1). */
#ifndef SL_TESTS_GREEDY_ORACLE_H
#define SL_TESTS_GREEDY_ORACLE_H

#include <stddef.h>
#include <stdint.h>

#include "model/seq2seq.h"

/* Translates src (B, S) with lengths src_len (B) using the decoder state d (reused across calls).
 * OUT: out (B, max_len) tokens without BOS / EOS, padded with BPE_PAD; out_len (B) token counts;
 * score (B) when not NULL: the sum of the chosen tokens' log-probabilities, EOS included when it was
 * produced (a sentence cut at max_len has no EOS term). */
int greedy_oracle_decode(struct s2s_decoder *d, const int32_t *src, const int32_t *src_len, size_t B, size_t S,
                         size_t max_len, int32_t *out, int32_t *out_len, float *score);

/* The same for an ensemble of n >= 1 decoders d[0..n) (models that share V_tgt): each step takes the argmax
 * of the mean of the members' log-probabilities (summed in member order in float, divided by n); score sums
 * those means. n = 1 is greedy_oracle_decode. */
int greedy_oracle_decode_n(struct s2s_decoder *const *d, size_t n, const int32_t *src, const int32_t *src_len,
                           size_t B, size_t S, size_t max_len, int32_t *out, int32_t *out_len, float *score);

#endif
