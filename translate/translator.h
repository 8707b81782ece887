/* translate/translator.h: the translation engine: text lines in, detokenised hypotheses out (no printing).
 * A batch of N lines is validated (UTF-8) and encoded with the source BPE serially, sorted by source
 * length (ties: input order) and cut into sub-batches of opts.batch sentences; the sub-batches are
 * decoded by OpenMP threads, each with its own s2s_decoder + beam_search (made once by
 * translator_create and reused), with OpenBLAS at one thread; the hypotheses are decoded with the
 * target BPE in input order. Sub-batches do not depend on the thread count, and a sentence's result
 * does not depend on its neighbours (each sentence has its own length limit: after max_tokens tokens
 * only EOS is allowed), so the output is the same for any threads and batch size.
 * Length limit per sentence: max_tokens = min(max_len_cap, floor(max_len_ratio * n_src) + max_len_extra).
 * Scores: GNMT length normalisation, score = logprob / ((5 + |Y|) / 6)^alpha with |Y| counting EOS
 * (decoder/beam.h); alpha 0.6 by default as in Wu et al. (Marian's 0.6 divides by |Y|^0.6 instead).
 * Line errors (invalid UTF-8) are per line: that result has status SL_EUTF8 and no hypothesis.
 * Ensembles (translator_create_ensemble): every member keeps its own encoder states and decoder state per
 * hypothesis (beam reordering applies to each); the search reads, per step, the mean of the members'
 * log-probabilities, summed in member order in float and divided by the member count (not renormalised,
 * as the mean of log-probabilities in OpenNMT-py's ensembles). One member is translator_create exactly.
 * Alignments (opts.alignment): per target subword the argmax source subword of the attention weights of the
 * first member with attention, carried through the beam with each hypothesis, mapped to word pairs by
 * translate/align.h (target EOS and source EOS left out).
 * ref: Wu et al. 2016 (length penalty); Sutskever et al. 2014 (beam search for seq2seq). */
#ifndef SL_TRANSLATE_TRANSLATOR_H
#define SL_TRANSLATE_TRANSLATOR_H

#include "model/seq2seq.h"
#include "tokenizer/bpe.h"

#include <stddef.h>
#include <stdint.h>

struct translate_opts {
    size_t beam;          /* K >= 1 (default 5; 1 is greedy decoding) */
    size_t nbest;         /* hypotheses kept per line, 1..beam (default 1) */
    float alpha;          /* length penalty exponent >= 0 (default 0.6; 0: plain log-probability) */
    double max_len_ratio; /* default 2.0 */
    size_t max_len_extra; /* default 10 */
    size_t max_len_cap;   /* default 256: no hypothesis is longer (tokens, EOS not counted) */
    size_t batch;         /* sentences per decoding sub-batch (default 32) */
    int threads;          /* OpenMP threads (0: omp_get_max_threads()) */
    int src_eos;          /* 1: each source ends with EOS, as corpus/batch.h src_eos does in training */
    int alignment;        /* 1: word alignments for every hypothesis (a member must have attention) */
    int precision;        /* enum precision (nn/autocast.h): PRECISION_BF16 / PRECISION_INT8 run the products
                           * in bf16 / int8 (where autocast_available(); SL_EINVAL otherwise). PRECISION_FP32 (default) leaves an
                           * autocast the caller has in use alone (training's validation decodes with it). */
};

/* One hypothesis of a line. text is borrowed: valid until the next translator_run or free. */
struct translate_hyp {
    const char *text; /* UTF-8 (invalid sequences repaired to U+FFFD), no '\n' or '\r', NUL-terminated */
    size_t len;
    size_t n_tokens;  /* target subword tokens (EOS not counted) */
    double score;     /* length-normalised log-probability (what ranks hypotheses) */
    double logprob;   /* sum of the token log-probabilities, EOS included when finished */
    int finished;     /* 1: ended with EOS; 0: cut at the length limit */
    const char *align; /* with opts.alignment: "s-t s-t ..." source-target word pairs (translate/align.h),
                        * NUL-terminated, borrowed as text; NULL otherwise */
    size_t align_len;
};

struct translate_result {
    int status;          /* 0; SL_EUTF8: invalid UTF-8 (bad_off), no hypothesis */
    size_t bad_off;      /* byte offset of the first invalid byte when status == SL_EUTF8 */
    size_t n_src_tokens; /* source subword tokens (EOS not counted); 0 for an empty line */
    size_t n_hyps;       /* 0 for an empty or invalid line, else 1..nbest */
    const struct translate_hyp *hyps; /* (n_hyps) best first */
};

struct translator;

void translate_opts_default(struct translate_opts *o);
/* A translator for model m with parameters w and BPE models src / tgt (all borrowed: they must
 * outlive it). Needs bpe_size(src) <= V_src and V_tgt <= bpe_size(tgt). NULL on bad options or
 * ENOMEM (message in sl_errmsg()). */
struct translator *translator_create(const struct s2s_model *m, const float *w, const struct bpe *src,
                                     const struct bpe *tgt, const struct translate_opts *o);
/* An ensemble of n_models >= 1 members m[i] with parameters w[i] (borrowed), which must share V_tgt and
 * accept the source BPE (bpe_size(src) <= V_src of each). NULL on bad options, an alignment request
 * without a member with attention, or ENOMEM (message in sl_errmsg()). */
struct translator *translator_create_ensemble(const struct s2s_model *const *m, const float *const *w,
                                              size_t n_models, const struct bpe *src, const struct bpe *tgt,
                                              const struct translate_opts *o);
void translator_free(struct translator *t);
/* The options in use (defaults filled in). */
const struct translate_opts *translator_opts(const struct translator *t);
/* Tells t that the parameters w changed since it was created (training's validation): the decoder's packed
 * copy of them is refreshed. Translating with changed weights without this call uses the old ones. */
void translator_weights_changed(struct translator *t);
/* Translates lines[0..n) (lens[i] bytes each, need not be NUL-terminated). Per-line problems go to
 * the results; returns 0, or a negative SL_E* code for a failure of the whole batch (ENOMEM, a
 * model error), after which the results are undefined. */
int translator_run(struct translator *t, const char *const *lines, const size_t *lens, size_t n);
/* Result of line i (< n) of the last run; borrowed until the next run or free. */
const struct translate_result *translator_result(const struct translator *t, size_t i);
/* Totals since creation: lines translated (non-empty, valid), source and target tokens of the best
 * hypotheses, and wall seconds spent in translator_run. OUT pointers may be NULL. */
void translator_totals(const struct translator *t, size_t *lines, size_t *src_tokens, size_t *tgt_tokens,
                       double *seconds);

#endif
