/* eval/chrf.h: chrF / chrF++ exactly as sacreBLEU 2.x computes them (default chrF2: character
 * n-grams 1..6 over code points with all whitespace removed, beta 2, no word n-grams,
 * effective-order averaging). Per segment and order the statistics are [hypothesis n-grams (0 if
 * the reference has none of that order), reference n-grams, clipped matches]; with several
 * references the one with the best sentence-level F is used (first on ties). The corpus score is
 * the F of the summed statistics. word_order 2 gives chrF++ (words split off one leading or
 * trailing ASCII punctuation character).
 * ref: Popovic 2015, 2017; sacrebleu/metrics/chrf.py (_compute_f_score, _remove_punctuation). */
#ifndef SL_EVAL_CHRF_H
#define SL_EVAL_CHRF_H

#include "eval/metric.h"
#include "eval/ngram.h"

#include <stddef.h>
#include <stdint.h>

#define CHRF_MAX_STATS (3 * 2 * NGRAM_MAX_ORDER)

struct chrf_opts {
    size_t char_order; /* 6; 1..NGRAM_MAX_ORDER */
    size_t word_order; /* 0 (chrF); 2 for chrF++; 0..NGRAM_MAX_ORDER */
    int beta;          /* 2 */
    int lowercase;     /* Python str.lower() first */
    int whitespace;    /* keep whitespace inside character n-grams (default 0: removed) */
    int eps_smoothing; /* chrF++.py / NLTK style smoothing (default 0: effective order) */
};

struct chrf_stats {
    uint64_t v[CHRF_MAX_STATS]; /* 3 per order: char orders 1..nc, then word orders 1..nw */
    size_t nsegs, nrefs_min, nrefs_max;
};

struct chrf;

void chrf_opts_default(struct chrf_opts *o);
/* NULL opts: defaults. NULL on bad options or no memory. */
struct chrf *chrf_create(const struct chrf_opts *o);
void chrf_free(struct chrf *c);
const struct chrf_opts *chrf_opts(const struct chrf *c);
void chrf_reset(struct chrf *c);
/* Statistics of one segment (best reference) into *seg. Empty references are skipped; SL_EINVAL
 * if none is left, SL_EUTF8 on invalid UTF-8. ref_lens NULL: strlen. */
int chrf_segment(struct chrf *c, const char *hyp, size_t hyp_len, const char *const *refs,
                 const size_t *ref_lens, size_t nrefs, struct chrf_stats *seg /* OUT */);
int chrf_add(struct chrf *c, const char *hyp, size_t hyp_len, const char *const *refs,
             const size_t *ref_lens, size_t nrefs);
const struct chrf_stats *chrf_stats(const struct chrf *c);
void chrf_stats_add(struct chrf_stats *dst, const struct chrf_stats *src);
/* The score (0..100) of statistics under options o. */
double chrf_compute(const struct chrf_stats *st, const struct chrf_opts *o);
/* The corpus score of the accumulated statistics. */
double chrf_score(const struct chrf *c);
/* Appends "nrefs:1|case:mixed|eff:yes|nc:6|nw:0|space:no|version:seqlite-0.1.0". */
int chrf_signature(const struct chrf_opts *o, const struct chrf_stats *st, struct sbuf *out);
/* Fills r with name ("chrF2", "chrF2++"), score and signature. */
int chrf_report(const struct chrf *c, struct metric_result *r);

#endif
