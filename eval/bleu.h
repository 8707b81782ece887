/* eval/bleu.h: corpus BLEU exactly as sacreBLEU 2.x computes it (default: 13a tokenizer, exp
 * smoothing, max order 4, case-sensitive, no effective order). Sufficient statistics are
 * accumulated segment by segment (bleu_add) and the score comes from their sums, never from an
 * average of sentence scores. Sentence BLEU = the statistics of one segment, usually with
 * effective_order set. Inputs are UTF-8 byte strings with lengths (embedded NULs allowed).
 * ref: Papineni et al. 2002; sacrebleu/metrics/bleu.py (compute_bleu, _get_closest_ref_len). */
#ifndef SL_EVAL_BLEU_H
#define SL_EVAL_BLEU_H

#include "eval/metric.h"
#include "eval/ngram.h"

#include <stddef.h>
#include <stdint.h>

enum bleu_tok { BLEU_TOK_13A, BLEU_TOK_NONE, BLEU_TOK_CHAR };
enum bleu_smooth { BLEU_SMOOTH_EXP, BLEU_SMOOTH_FLOOR, BLEU_SMOOTH_ADDK, BLEU_SMOOTH_NONE };

struct bleu_opts {
    size_t max_order;        /* 4; 1..NGRAM_MAX_ORDER */
    enum bleu_tok tok;       /* BLEU_TOK_13A */
    enum bleu_smooth smooth; /* BLEU_SMOOTH_EXP */
    double smooth_value;     /* < 0: the method's default (floor 0.1, add-k 1) */
    int lowercase;           /* Python str.lower() before tokenising */
    int effective_order;     /* average only the orders that have n-grams (sentence BLEU) */
};

struct bleu_stats {
    uint64_t sys_len, ref_len; /* hypothesis tokens; closest reference lengths (ties: shorter) */
    uint64_t correct[NGRAM_MAX_ORDER], total[NGRAM_MAX_ORDER]; /* index k: (k+1)-grams */
    size_t nsegs, nrefs_min, nrefs_max; /* segments; fewest / most non-empty references used */
};

struct bleu_score {
    double score; /* 0..100 */
    double bp, ratio;
    double precisions[NGRAM_MAX_ORDER]; /* 0..100, smoothed; max_order entries used */
    size_t order;                       /* max_order */
    uint64_t sys_len, ref_len;
};

struct bleu;

void bleu_opts_default(struct bleu_opts *o);
/* NULL opts: defaults. NULL on bad options or no memory (message in sl_errmsg()). */
struct bleu *bleu_create(const struct bleu_opts *o);
void bleu_free(struct bleu *b);
const struct bleu_opts *bleu_opts(const struct bleu *b);
/* Forgets the accumulated statistics. */
void bleu_reset(struct bleu *b);
/* Statistics of one segment into *seg (not accumulated). Empty references (length 0) are skipped
 * as sacreBLEU does; SL_EINVAL if none is left, SL_EUTF8 on invalid UTF-8. ref_lens NULL: strlen. */
int bleu_segment(struct bleu *b, const char *hyp, size_t hyp_len, const char *const *refs,
                 const size_t *ref_lens, size_t nrefs, struct bleu_stats *seg /* OUT */);
/* bleu_segment() added to the corpus statistics. */
int bleu_add(struct bleu *b, const char *hyp, size_t hyp_len, const char *const *refs,
             const size_t *ref_lens, size_t nrefs);
/* The accumulated corpus statistics (valid until the next add/reset/free). */
const struct bleu_stats *bleu_stats(const struct bleu *b);
void bleu_stats_zero(struct bleu_stats *s);
void bleu_stats_add(struct bleu_stats *dst, const struct bleu_stats *src);
/* sacreBLEU's compute_bleu(): the score of summed statistics under options o. */
void bleu_compute(const struct bleu_stats *st, const struct bleu_opts *o, struct bleu_score *out /* OUT */);
/* The corpus score of the accumulated statistics. */
void bleu_score(const struct bleu *b, struct bleu_score *out /* OUT */);
/* Appends the signature, e.g. "nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:seqlite-0.1.0". */
int bleu_signature(const struct bleu_opts *o, const struct bleu_stats *st, struct sbuf *out);
/* Appends "82.4/50.0/45.5/37.5 (BP = 0.943 ratio = 0.944 hyp_len = 17 ref_len = 18)". */
int bleu_verbose(const struct bleu_score *s, struct sbuf *out);
/* Fills r (initialised by the caller) with name, score, signature and verbose part. */
int bleu_report(const struct bleu *b, struct metric_result *r);

#endif
