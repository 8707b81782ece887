/* eval/metric.h: a computed corpus metric as sacreBLEU reports it, and its two output formats:
 * the text line "NAME|signature = score verbose" and sacreBLEU's JSON object
 * ({"name", "score", "signature", "verbose_score", then one key per signature field}).
 * bleu_report() and chrf_report() fill one; tools/ prints the strings. Also the steps BLEU and chrF
 * share per segment (input check, reference counts). The version field of every
 * signature is "seqlite-" SEQLITE_VERSION: the numbers follow sacreBLEU 2.x but do not claim it.
 * ref: sacrebleu/metrics/base.py (Score.format, Signature.format). */
#ifndef SL_EVAL_METRIC_H
#define SL_EVAL_METRIC_H

#include "util/sbuf.h"

struct metric_result {
    char name[16];         /* "BLEU", "chrF2", "chrF2++" */
    double score;          /* 0..100 */
    struct sbuf signature; /* "nrefs:1|case:mixed|...|version:seqlite-0.1.0" */
    struct sbuf verbose;   /* "82.4/50.0/45.5/37.5 (BP = ...)"; empty for chrF */
};

void metric_result_init(struct metric_result *r);
void metric_result_free(struct metric_result *r);
/* The signature's version value: "seqlite-<SEQLITE_VERSION>". */
const char *metric_version(void);
/* Appends "nrefs:N" (or "nrefs:var" when segments had different numbers of references). */
int metric_put_nrefs(struct sbuf *sig, size_t nrefs_min, size_t nrefs_max);
/* Folds the segment counts and the fewest / most references of one statistics block (src_*) into
 * another's (bleu_stats_add, chrf_stats_add: both carry nsegs, nrefs_min, nrefs_max). */
void metric_nrefs_add(size_t *nsegs, size_t *nrefs_min, size_t *nrefs_max, size_t src_nsegs, size_t src_min,
                      size_t src_max);
/* 0 when the hypothesis and every reference of a segment are valid UTF-8, else SL_EUTF8 with
 * "hypothesis: invalid UTF-8 at byte B" or "reference R: ..." (B, R 1-based). ref_lens NULL: strlen. */
int metric_check_utf8(const char *hyp, size_t hyp_len, const char *const *refs, const size_t *ref_lens,
                      size_t nrefs);
/* Appends "NAME|signature = score[ verbose]" with `width` decimals (the sacreBLEU CLI uses 1). */
int metric_format_text(const struct metric_result *r, int width, struct sbuf *out);
/* Appends sacreBLEU's JSON object (json.dumps(indent=1)); score rounded to `width` decimals. */
int metric_format_json(const struct metric_result *r, int width, struct sbuf *out);

#endif
