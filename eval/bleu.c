/* eval/bleu.c: sacreBLEU-compatible BLEU (see bleu.h). Per segment: optional lowercase, rstrip,
 * tokenise (13a / none / char), split on Unicode whitespace, intern the words, count hypothesis
 * n-grams, clip them by their maximum count in any one reference, take the reference length
 * closest to the hypothesis length (ties: the shorter). Scoring follows compute_bleu(): no match
 * at all gives 0 (#141); exp smoothing halves the credit of each further zero order; log(0) is
 * taken as -9999999999; BP = exp(1 - r/c) for c < r, 0 for c = 0.
 * ref: Papineni et al. 2002; sacrebleu/metrics/bleu.py; Chen & Cherry 2014 (smoothing). */
#include "eval/bleu.h"

#include "eval/evtext.h"
#include "eval/tok13a.h"
#include "util/err.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

struct bleu {
    struct bleu_opts o;
    struct bleu_stats st;
    struct tok13a tok;
    struct sbuf low, toks; /* lowercased input, tokenised input */
    uint32_t *ids;         /* (ids_cap) word ids of the segment being read */
    size_t ids_cap;
    struct ngram_counter *counter;
    struct ngram_vocab *vocab;
};

void bleu_opts_default(struct bleu_opts *o)
{
    o->max_order = 4;
    o->tok = BLEU_TOK_13A;
    o->smooth = BLEU_SMOOTH_EXP;
    o->smooth_value = -1.0;
    o->lowercase = 0;
    o->effective_order = 0;
}

struct bleu *bleu_create(const struct bleu_opts *o)
{
    struct bleu_opts d;
    if (!o) {
        bleu_opts_default(&d);
        o = &d;
    }
    if (o->max_order < 1 || o->max_order > NGRAM_MAX_ORDER) {
        sl_err(SL_EINVAL, "BLEU max order %zu is out of range (1 to %d)", o->max_order, NGRAM_MAX_ORDER);
        return NULL;
    }
    if ((unsigned)o->tok > BLEU_TOK_CHAR || (unsigned)o->smooth > BLEU_SMOOTH_NONE ||
        !(o->smooth_value < 1e9)) {
        sl_err(SL_EINVAL, "bad BLEU options");
        return NULL;
    }
    struct bleu *b = calloc(1, sizeof *b);
    if (!b) {
        sl_err(SL_ENOMEM, "out of memory");
        return NULL;
    }
    b->o = *o;
    tok13a_init(&b->tok);
    sbuf_init(&b->low);
    sbuf_init(&b->toks);
    b->counter = ngram_counter_create(o->max_order);
    b->vocab = ngram_vocab_create();
    if (!b->counter || !b->vocab) {
        bleu_free(b);
        return NULL;
    }
    bleu_reset(b);
    return b;
}

void bleu_free(struct bleu *b)
{
    if (!b)
        return;
    tok13a_free(&b->tok);
    sbuf_free(&b->low);
    sbuf_free(&b->toks);
    free(b->ids);
    ngram_counter_free(b->counter);
    ngram_vocab_free(b->vocab);
    free(b);
}

const struct bleu_opts *bleu_opts(const struct bleu *b) { return &b->o; }

void bleu_stats_zero(struct bleu_stats *s) { memset(s, 0, sizeof *s); }

void bleu_stats_add(struct bleu_stats *dst, const struct bleu_stats *src)
{
    dst->sys_len += src->sys_len;
    dst->ref_len += src->ref_len;
    for (size_t k = 0; k < NGRAM_MAX_ORDER; k++) {
        dst->correct[k] += src->correct[k];
        dst->total[k] += src->total[k];
    }
    metric_nrefs_add(&dst->nsegs, &dst->nrefs_min, &dst->nrefs_max, src->nsegs, src->nrefs_min,
                     src->nrefs_max);
}

void bleu_reset(struct bleu *b) { bleu_stats_zero(&b->st); }

const struct bleu_stats *bleu_stats(const struct bleu *b) { return &b->st; }

/* b->ids[0..*n) := word ids of one preprocessed, tokenised line. */
static int read_words(struct bleu *b, const char *s, size_t n, size_t *nw)
{
    int rc;
    if (b->o.lowercase) {
        if ((rc = evtext_lower(s, n, &b->low)))
            return rc;
        s = b->low.data;
        n = b->low.len;
    }
    n = evtext_rstrip(s, n);
    const char *t = s;
    size_t tn = n;
    if (b->o.tok == BLEU_TOK_13A) {
        if ((rc = tok13a_tokenize(&b->tok, s, n, &b->toks)))
            return rc;
        t = b->toks.data;
        tn = b->toks.len;
    }
    /* split on Unicode whitespace; the char tokenizer makes every code point of a word a word */
    size_t count = 0, i = 0, word;
    while (evtext_next_word(t, tn, &i, &word)) {
        for (size_t at = word, end; at < i; at = end) {
            end = i;
            if (b->o.tok == BLEU_TOK_CHAR) {
                end = at;
                evtext_next(t, tn, &end);
            }
            if (count == b->ids_cap) {
                size_t cap = b->ids_cap ? 2 * b->ids_cap : 256;
                uint32_t *p = realloc(b->ids, cap * sizeof *p);
                if (!p)
                    return sl_err(SL_ENOMEM, "out of memory");
                b->ids = p;
                b->ids_cap = cap;
            }
            if ((rc = ngram_vocab_id(b->vocab, t + at, end - at, &b->ids[count])))
                return rc;
            count++;
        }
    }
    *nw = count;
    return 0;
}

int bleu_segment(struct bleu *b, const char *hyp, size_t hyp_len, const char *const *refs,
                 const size_t *ref_lens, size_t nrefs, struct bleu_stats *seg)
{
    bleu_stats_zero(seg);
    int rc = metric_check_utf8(hyp, hyp_len, refs, ref_lens, nrefs);
    if (rc)
        return rc;
    ngram_vocab_reset(b->vocab);
    size_t hyp_n;
    if ((rc = read_words(b, hyp, hyp_len, &hyp_n)) || (rc = ngram_set_hyp(b->counter, b->ids, hyp_n)))
        return rc;
    size_t used = 0;
    uint64_t closest = 0, closest_diff = 0;
    uint64_t match[NGRAM_MAX_ORDER], ref_total[NGRAM_MAX_ORDER];
    for (size_t r = 0; r < nrefs; r++) {
        size_t rl = ref_lens ? ref_lens[r] : strlen(refs[r]);
        if (rl == 0) /* sacreBLEU drops empty references (variable number of refs) */
            continue;
        size_t ref_n;
        if ((rc = read_words(b, refs[r], rl, &ref_n)))
            return rc;
        ngram_match_ref(b->counter, b->ids, ref_n, match, ref_total);
        uint64_t diff = ref_n > hyp_n ? ref_n - hyp_n : hyp_n - ref_n;
        if (used == 0 || diff < closest_diff || (diff == closest_diff && ref_n < closest)) {
            closest_diff = diff;
            closest = ref_n;
        }
        used++;
    }
    if (used == 0)
        return sl_err(SL_EINVAL, "no non-empty reference for this segment (sacreBLEU rejects it too)");
    seg->sys_len = hyp_n;
    seg->ref_len = closest;
    const uint64_t *tot = ngram_hyp_total(b->counter), *cl = ngram_clipped(b->counter);
    for (size_t k = 0; k < b->o.max_order; k++) {
        seg->correct[k] = cl[k];
        seg->total[k] = tot[k];
    }
    seg->nsegs = 1;
    seg->nrefs_min = seg->nrefs_max = used;
    return 0;
}

int bleu_add(struct bleu *b, const char *hyp, size_t hyp_len, const char *const *refs,
             const size_t *ref_lens, size_t nrefs)
{
    struct bleu_stats seg;
    int rc = bleu_segment(b, hyp, hyp_len, refs, ref_lens, nrefs, &seg);
    if (rc)
        return rc;
    bleu_stats_add(&b->st, &seg);
    return 0;
}

static double my_log(double x) { return x == 0.0 ? -9999999999.0 : log(x); }

static double smooth_value(const struct bleu_opts *o)
{
    if (o->smooth_value >= 0)
        return o->smooth_value;
    return o->smooth == BLEU_SMOOTH_FLOOR ? 0.1 : o->smooth == BLEU_SMOOTH_ADDK ? 1.0 : 0.0;
}

void bleu_compute(const struct bleu_stats *st, const struct bleu_opts *o, struct bleu_score *out)
{
    size_t N = o->max_order;
    memset(out, 0, sizeof *out);
    out->order = N;
    out->sys_len = st->sys_len;
    out->ref_len = st->ref_len;
    out->ratio = st->ref_len ? (double)st->sys_len / (double)st->ref_len : 0.0;
    if (st->sys_len < st->ref_len)
        out->bp = st->sys_len > 0 ? exp(1.0 - (double)st->ref_len / (double)st->sys_len) : 0.0;
    else
        out->bp = 1.0;
    int any = 0;
    for (size_t k = 0; k < N; k++)
        any |= st->correct[k] != 0;
    if (!any) /* sacreBLEU #141: no matching n-gram of any order */
        return;
    double sv = smooth_value(o);
    double mteval = 1.0;
    size_t eff = N;
    for (size_t n = 1; n <= N; n++) {
        double correct = (double)st->correct[n - 1], total = (double)st->total[n - 1];
        if (o->smooth == BLEU_SMOOTH_ADDK && n > 1) {
            correct += sv;
            total += sv;
        }
        if (total == 0.0)
            break;
        if (o->effective_order)
            eff = n;
        if (correct == 0.0) {
            if (o->smooth == BLEU_SMOOTH_EXP) {
                mteval *= 2.0;
                out->precisions[n - 1] = 100.0 / (mteval * total);
            } else if (o->smooth == BLEU_SMOOTH_FLOOR) {
                out->precisions[n - 1] = 100.0 * sv / total;
            }
        } else {
            out->precisions[n - 1] = 100.0 * correct / total;
        }
    }
    double sum = 0.0;
    for (size_t k = 0; k < eff; k++)
        sum += my_log(out->precisions[k]);
    out->score = out->bp * exp(sum / (double)eff);
}

void bleu_score(const struct bleu *b, struct bleu_score *out) { bleu_compute(&b->st, &b->o, out); }

int bleu_signature(const struct bleu_opts *o, const struct bleu_stats *st, struct sbuf *out)
{
    static const char *const toks[] = {"13a", "none", "char"};
    int rc = metric_put_nrefs(out, st->nrefs_min, st->nrefs_max);
    if (!rc)
        rc = sbuf_printf(out, "|case:%s|eff:%s|tok:%s|smooth:", o->lowercase ? "lc" : "mixed",
                         o->effective_order ? "yes" : "no", toks[o->tok]);
    if (!rc) {
        switch (o->smooth) {
        case BLEU_SMOOTH_EXP: rc = sbuf_printf(out, "exp"); break;
        case BLEU_SMOOTH_NONE: rc = sbuf_printf(out, "none"); break;
        case BLEU_SMOOTH_FLOOR: rc = sbuf_printf(out, "floor[%.2f]", smooth_value(o)); break;
        case BLEU_SMOOTH_ADDK: rc = sbuf_printf(out, "add-k[%.2f]", smooth_value(o)); break;
        }
    }
    return rc ? rc : sbuf_printf(out, "|version:%s", metric_version());
}

int bleu_verbose(const struct bleu_score *s, struct sbuf *out)
{
    int rc = 0;
    for (size_t k = 0; !rc && k < s->order; k++)
        rc = sbuf_printf(out, "%s%.1f", k ? "/" : "", s->precisions[k]);
    if (!rc)
        rc = sbuf_printf(out, " (BP = %.3f ratio = %.3f hyp_len = %llu ref_len = %llu)", s->bp, s->ratio,
                         (unsigned long long)s->sys_len, (unsigned long long)s->ref_len);
    return rc;
}

int bleu_report(const struct bleu *b, struct metric_result *r)
{
    struct bleu_score s;
    bleu_score(b, &s);
    strcpy(r->name, "BLEU");
    r->score = s.score;
    sbuf_reset(&r->signature);
    sbuf_reset(&r->verbose);
    int rc = bleu_signature(&b->o, &b->st, &r->signature);
    return rc ? rc : bleu_verbose(&s, &r->verbose);
}
