/* translate/evaluate.h: translating the stored pairs of a split and scoring the hypotheses against the
 * stored targets with BLEU and chrF2 as sacreBLEU 2.x does (both sides rstripped, as `seqlite score`;
 * empty references skipped). The one code path behind `seqlite eval` and training's validation BLEU.
 * Pairs are translated EVAL_ROUND at a time (translator_run sorts each round by length), so memory
 * holds the split's texts and the best hypotheses, not a round's decoder states for every pair.
 * ref: eval/metric.h (results, signatures), translate/translator.h (the decoding). */
#ifndef SL_TRANSLATE_EVALUATE_H
#define SL_TRANSLATE_EVALUATE_H

#include "eval/metric.h"
#include "util/sbuf.h"

#include <stddef.h>
#include <stdint.h>

struct db;
struct translator;

/* The pairs of a split, in import order: texts in one buffer. */
struct eval_set {
    struct sbuf buf;
    int64_t *pair_id;                         /* (n) */
    size_t *src_off, *src_len, *tgt_off, *tgt_len; /* (n) into buf */
    size_t n, cap, limit;
};

/* Reads the first `limit` pairs (0: all) of split into s (initialised here). 0, or a database / memory
 * error (s is then empty; eval_set_free is harmless). n == 0 is not an error. */
int eval_set_load(struct db *db, const char *split, size_t limit, struct eval_set *s /* OUT */);
void eval_set_free(struct eval_set *s);

/* What one evaluation gives. */
struct eval_out {
    struct metric_result bleu, chrf;
    size_t n_bad;     /* sources with invalid UTF-8 (scored as empty hypotheses) */
    /* with keep_hyps: the best hypothesis of pair i, NUL-terminated, at hyps.data + hyp_off[i], and
     * its log-probability (EOS included when finished; 0 for an empty hypothesis) in hyp_lp[i] */
    int keep_hyps;
    struct sbuf hyps;
    size_t *hyp_off;  /* (n) */
    double *hyp_lp;   /* (n) */
};

void eval_out_init(struct eval_out *o, int keep_hyps);
void eval_out_free(struct eval_out *o);
/* Translates every source of s with t and scores the best hypotheses (o: from eval_out_init; a second
 * call on the same o replaces its results). 0, or SL_ENOMEM / a model error for the whole set, with a
 * message naming the pairs. */
int eval_translate(struct translator *t, const struct eval_set *s, struct eval_out *o);

/* What an evaluation scored and with which settings. */
struct eval_record {
    int64_t run_id, checkpoint_id, step; /* the model (an ensemble: its first member) */
    const char *split;
    int beam;
    double alpha;        /* length penalty */
    size_t limit;        /* first N pairs only (0: all) */
    const char *members; /* JSON array of an ensemble's checkpoint ids; NULL: one model */
    int precision;       /* enum precision (nn/autocast.h) the products ran in: the translator's, i.e. after
                          * a command's fallback to fp32 where the CPU lacks the one asked for */
    double seconds;      /* decoding time (0: not measured) */
};

/* Stores an evaluation in one transaction: an evaluation row with r's settings, every hypothesis of s
 * with its log-probability (translation rows, o must have been made with keep_hyps) and both scores
 * with their signatures (metric rows), all referencing that evaluation. A checkpoint deleted since it
 * was loaded (pruned by training) is stored as NULL, the evaluation keeps its run and step. Nothing is
 * stored on failure. */
int eval_store(struct db *db, const struct eval_record *r, const struct eval_set *s, const struct eval_out *o);

#endif
