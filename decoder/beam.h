/* decoder/beam.h: batched beam search over any model that can advance M hypothesis rows by one
 * token (struct beam_model callbacks), so it is tested with a fake model and wrapped around the
 * seq2seq decoder by the translation code. B sentences x K hypotheses advance together; per step and
 * sentence the K best of the K*V extensions are kept (partial selection), hypotheses that choose EOS
 * move to the sentence's list of finished ones, and a sentence stops when no open hypothesis can
 * still beat its nbest-th finished one under the length-normalised score, or at max_len (open
 * hypotheses are then finalised as they are). Rows of stopped sentences are dropped (the model is
 * told by reorder with a smaller M). K = 1 is exactly greedy decoding (argmax, lowest id on ties): the
 * production greedy decoder.
 * Fixed-length mode (beam_opts.fixed_length) is how the benchmark decodes, greedy (K = 1) and beam
 * alike: every hypothesis runs exactly max_len steps, as the PyTorch peer benchmark does
 * (tools/bench/bench.h).
 * Per-token values (beam_model.aux, optional): the model may give one int32 per row at every step (the
 * translator's argmax source position of the attention); the search carries them along the back-pointer
 * history like the tokens, so each returned hypothesis has the value of the row that chose each token.
 * All memory is allocated by beam_search_create(); a run allocates nothing. Letters: nn/dims.h
 * (B sentences, K beam, M = B·K rows, V vocabulary).
 * ref: Wu et al. 2016 (GNMT length penalty lp(Y) = ((5+|Y|)/6)^alpha). */
#ifndef SL_DECODER_BEAM_H
#define SL_DECODER_BEAM_H

#include <stddef.h>
#include <stdint.h>

/* The model, as seen by the search. Rows are laid out sentence-major: row j*K + k is hypothesis k of
 * the j-th sentence still being decoded. The first step() gets M = B*K rows, all with prev = bos. */
struct beam_model {
    void *ctx;
    size_t V;                 /* vocabulary size */
    int32_t bos, eos, pad;    /* ids (seqlite: 1, 2, 0) */
    /* Advance M rows by one token each: prev[m] is row m's last token (pad for an empty row).
     * OUT: logprobs (M, V), log-softmax over the next token (values <= 0; -inf allowed, NaN is an
     * error). Returns 0 or a negative SL_E* code, which the search returns as is. */
    int (*step)(void *ctx, const int32_t *prev, size_t M, float *logprobs);
    /* After a step: new row m := old row src[m], m < M. M is at most the previous row count (rows of
     * sentences that stopped are dropped). Not called when nothing changes. Returns 0 or SL_E*. */
    int (*reorder)(void *ctx, const size_t *src, size_t M);
    /* Optional (NULL: no per-token values): called after each step(), returns (M) values for the rows of
     * that step, borrowed until the next callback; row m's value goes with every token chosen from row m
     * at that step (struct beam_hyp.aux). */
    const int32_t *(*aux)(void *ctx);
};

struct beam_opts {
    size_t nbest;     /* hypotheses returned per sentence, 1..K (0: 1) */
    size_t max_len;   /* decoding steps, EOS included, 1..the workspace's max_len (0: that) */
    float alpha;      /* length penalty exponent, >= 0; 0: plain log-probability */
    int fixed_length; /* decode exactly max_len steps, EOS ignored: every sentence runs them with all K
                       * rows; a row that chose EOS continues with pad at no cost; nothing is dropped or
                       * stopped (the benchmark's mode, K = 1 for greedy) */
};

/* One returned hypothesis. */
struct beam_hyp {
    const int32_t *tokens; /* (len) ids without BOS / EOS; valid until the next run or free */
    const int32_t *aux;    /* (len) beam_model.aux's value for each token; NULL without aux; as tokens */
    size_t len;
    double logprob;        /* sum of the chosen tokens' log-probabilities, EOS included */
    double score;          /* logprob / lp(|Y|); |Y| = steps taken = len + 1 with EOS, else len */
    int finished;          /* 1: ended with EOS; 0: cut at max_len */
};

struct beam_search;

/* Workspace for up to max_B sentences, beam K, vocabulary V, max_len steps. NULL on bad sizes or no
 * memory (message in sl_errmsg()). Holds (max_B*K, V) floats of log-probabilities. */
struct beam_search *beam_search_create(size_t max_B, size_t K, size_t V, size_t max_len);
void beam_search_free(struct beam_search *bs);
/* Decodes B sentences (B <= max_B). m->V must equal the workspace's V. On error the model's state is
 * undefined (restart it). */
int beam_search_run(struct beam_search *bs, const struct beam_model *m, size_t B, const struct beam_opts *o);
/* Sentence n's results of the last run, best first (ties: the earlier found first). OUT: *count
 * (<= nbest; fewer only if the model gave -inf to almost everything). Valid until the next run. */
const struct beam_hyp *beam_search_nbest(const struct beam_search *bs, size_t n, size_t *count);
/* Number of step() calls the last run made. */
size_t beam_search_steps(const struct beam_search *bs);
/* GNMT length penalty ((5 + len) / 6)^alpha. */
double beam_length_penalty(size_t len, float alpha);

#endif
