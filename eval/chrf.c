/* eval/chrf.c: sacreBLEU-compatible chrF / chrF++ (see chrf.h). Character n-grams are over code
 * points (Python str indexing), after optional lowercasing and, by default, removal of every
 * Unicode whitespace character (''.join(s.split())). Word n-grams (chrF++) come from
 * _remove_punctuation: whitespace split, then a word longer than one character loses one trailing
 * ASCII punctuation character into its own word, or else one leading one.
 * ref: Popovic 2015, 2017; sacrebleu/metrics/chrf.py, helpers.py. */
#include "eval/chrf.h"

#include "eval/evtext.h"
#include "util/err.h"
#include "util/vec.h"

#include <stdlib.h>
#include <stdio.h>
#include <string.h>

struct chrf {
    struct chrf_opts o;
    struct chrf_stats st;
    struct sbuf low;
    uint32_t *chars; /* (chars_cap) code points of the line being read */
    size_t chars_cap;
    uint32_t *words; /* (words_cap) word ids of the line being read */
    size_t words_cap;
    struct ngram_counter *cc, *wc; /* characters, words (NULL for chrF) */
    struct ngram_vocab *vocab;
};

void chrf_opts_default(struct chrf_opts *o)
{
    o->char_order = 6;
    o->word_order = 0;
    o->beta = 2;
    o->lowercase = 0;
    o->whitespace = 0;
    o->eps_smoothing = 0;
}

struct chrf *chrf_create(const struct chrf_opts *o)
{
    struct chrf_opts d;
    if (!o) {
        chrf_opts_default(&d);
        o = &d;
    }
    if (o->char_order < 1 || o->char_order > NGRAM_MAX_ORDER || o->word_order > NGRAM_MAX_ORDER ||
        o->beta < 0 || o->beta > 1000) {
        sl_err(SL_EINVAL, "bad chrF options (char order %zu, word order %zu, beta %d)", o->char_order,
               o->word_order, o->beta);
        return NULL;
    }
    struct chrf *c = calloc(1, sizeof *c);
    if (!c) {
        sl_err(SL_ENOMEM, "out of memory");
        return NULL;
    }
    c->o = *o;
    sbuf_init(&c->low);
    c->cc = ngram_counter_create(o->char_order);
    c->vocab = ngram_vocab_create();
    if (o->word_order)
        c->wc = ngram_counter_create(o->word_order);
    if (!c->cc || !c->vocab || (o->word_order && !c->wc)) {
        chrf_free(c);
        return NULL;
    }
    chrf_reset(c);
    return c;
}

void chrf_free(struct chrf *c)
{
    if (!c)
        return;
    sbuf_free(&c->low);
    free(c->chars);
    free(c->words);
    ngram_counter_free(c->cc);
    ngram_counter_free(c->wc);
    ngram_vocab_free(c->vocab);
    free(c);
}

const struct chrf_opts *chrf_opts(const struct chrf *c) { return &c->o; }

void chrf_reset(struct chrf *c) { memset(&c->st, 0, sizeof c->st); }

const struct chrf_stats *chrf_stats(const struct chrf *c) { return &c->st; }

void chrf_stats_add(struct chrf_stats *dst, const struct chrf_stats *src)
{
    for (size_t i = 0; i < CHRF_MAX_STATS; i++)
        dst->v[i] += src->v[i];
    metric_nrefs_add(&dst->nsegs, &dst->nrefs_min, &dst->nrefs_max, src->nsegs, src->nrefs_min,
                     src->nrefs_max);
}

static int is_punct(unsigned char c)
{
    return (c >= 33 && c <= 47) || (c >= 58 && c <= 64) || (c >= 91 && c <= 96) || (c >= 123 && c <= 126);
}

/* c->chars[0..*nc) and (chrF++) c->words[0..*nw) of one line. */
static int read_line(struct chrf *c, const char *s, size_t n, size_t *nc, size_t *nw)
{
    int rc;
    if (c->o.lowercase) {
        if ((rc = evtext_lower(s, n, &c->low)))
            return rc;
        s = c->low.data;
        n = c->low.len;
    }
    if ((rc = vec_reserve(&c->chars, &c->chars_cap, n, sizeof *c->chars)))
        return rc;
    size_t k = 0, i = 0;
    while (i < n) {
        uint32_t cp = evtext_next(s, n, &i);
        if (c->o.whitespace || !evtext_is_space(cp))
            c->chars[k++] = cp;
    }
    *nc = k;
    *nw = 0;
    if (!c->o.word_order)
        return 0;
    /* words: at most one extra word per whitespace-separated token, so n + 1 ids suffice */
    if ((rc = vec_reserve(&c->words, &c->words_cap, n + 1, sizeof *c->words)))
        return rc;
    size_t w = 0, at;
    i = 0;
    while (evtext_next_word(s, n, &i, &at)) {
        size_t end = i, second = at;
        evtext_next(s, n, &second);
        int multi = second < end; /* more than one code point: punctuation may split off */
        /* punctuation is ASCII, so checking the first / last byte checks the code point */
        size_t parts[2][2]; /* {offset, length} */
        size_t np = 1;
        parts[0][0] = at, parts[0][1] = end - at;
        if (multi && is_punct((unsigned char)s[end - 1])) {
            parts[0][1] = end - 1 - at;
            parts[1][0] = end - 1, parts[1][1] = 1;
            np = 2;
        } else if (multi && is_punct((unsigned char)s[at])) {
            parts[0][1] = 1;
            parts[1][0] = at + 1, parts[1][1] = end - at - 1;
            np = 2;
        }
        for (size_t p = 0; p < np; p++) {
            if ((rc = ngram_vocab_id(c->vocab, s + parts[p][0], parts[p][1], &c->words[w])))
                return rc;
            w++;
        }
    }
    *nw = w;
    return 0;
}

/* One order's triple from the counter's answer for one reference. */
static void put_triples(uint64_t *v, size_t order, const uint64_t *hyp_total, const uint64_t *match,
                        const uint64_t *ref_total)
{
    for (size_t k = 0; k < order; k++) {
        v[3 * k + 0] = ref_total[k] ? hyp_total[k] : 0;
        v[3 * k + 1] = ref_total[k];
        v[3 * k + 2] = match[k];
    }
}

int chrf_segment(struct chrf *c, const char *hyp, size_t hyp_len, const char *const *refs,
                 const size_t *ref_lens, size_t nrefs, struct chrf_stats *seg)
{
    size_t nc, nw;
    memset(seg, 0, sizeof *seg);
    int rc = metric_check_utf8(hyp, hyp_len, refs, ref_lens, nrefs);
    if (rc)
        return rc;
    ngram_vocab_reset(c->vocab);
    if ((rc = read_line(c, hyp, hyp_len, &nc, &nw)) || (rc = ngram_set_hyp(c->cc, c->chars, nc)))
        return rc;
    if (c->wc && (rc = ngram_set_hyp(c->wc, c->words, nw)))
        return rc;
    size_t used = 0;
    double best = -1.0;
    struct chrf_stats cur;
    memset(&cur, 0, sizeof cur);
    uint64_t match[NGRAM_MAX_ORDER], ref_total[NGRAM_MAX_ORDER];
    for (size_t r = 0; r < nrefs; r++) {
        size_t rl = ref_lens ? ref_lens[r] : strlen(refs[r]);
        if (rl == 0)
            continue;
        if ((rc = read_line(c, refs[r], rl, &nc, &nw)))
            return rc;
        ngram_match_ref(c->cc, c->chars, nc, match, ref_total);
        put_triples(cur.v, c->o.char_order, ngram_hyp_total(c->cc), match, ref_total);
        if (c->wc) {
            ngram_match_ref(c->wc, c->words, nw, match, ref_total);
            put_triples(cur.v + 3 * c->o.char_order, c->o.word_order, ngram_hyp_total(c->wc), match,
                        ref_total);
        }
        double f = chrf_compute(&cur, &c->o);
        if (f > best) {
            best = f;
            memcpy(seg->v, cur.v, sizeof cur.v);
        }
        used++;
    }
    if (used == 0)
        return sl_err(SL_EINVAL, "no non-empty reference for this segment (sacreBLEU rejects it too)");
    seg->nsegs = 1;
    seg->nrefs_min = seg->nrefs_max = used;
    return 0;
}

int chrf_add(struct chrf *c, const char *hyp, size_t hyp_len, const char *const *refs,
             const size_t *ref_lens, size_t nrefs)
{
    struct chrf_stats seg;
    int rc = chrf_segment(c, hyp, hyp_len, refs, ref_lens, nrefs, &seg);
    if (rc)
        return rc;
    chrf_stats_add(&c->st, &seg);
    return 0;
}

double chrf_compute(const struct chrf_stats *st, const struct chrf_opts *o)
{
    const double eps = 1e-16;
    double factor = (double)o->beta * (double)o->beta;
    size_t order = o->char_order + o->word_order;
    double score = 0.0, avg_prec = 0.0, avg_rec = 0.0;
    size_t eff = 0;
    for (size_t i = 0; i < order; i++) {
        uint64_t n_hyp = st->v[3 * i], n_ref = st->v[3 * i + 1], n_match = st->v[3 * i + 2];
        double prec = n_hyp > 0 ? (double)n_match / (double)n_hyp : eps;
        double rec = n_ref > 0 ? (double)n_match / (double)n_ref : eps;
        double denom = factor * prec + rec;
        score += denom > 0 ? (1 + factor) * prec * rec / denom : eps;
        if (n_hyp > 0 && n_ref > 0) {
            avg_prec += prec;
            avg_rec += rec;
            eff++;
        }
    }
    if (o->eps_smoothing)
        return 100.0 * score / (double)order;
    if (eff == 0)
        return 0.0;
    avg_prec /= (double)eff;
    avg_rec /= (double)eff;
    if (avg_prec + avg_rec == 0.0)
        return 0.0;
    score = (1 + factor) * avg_prec * avg_rec / (factor * avg_prec + avg_rec);
    return 100.0 * score;
}

double chrf_score(const struct chrf *c) { return chrf_compute(&c->st, &c->o); }

int chrf_signature(const struct chrf_opts *o, const struct chrf_stats *st, struct sbuf *out)
{
    int rc = metric_put_nrefs(out, st->nrefs_min, st->nrefs_max);
    if (!rc)
        rc = sbuf_printf(out, "|case:%s|eff:%s|nc:%zu|nw:%zu|space:%s|version:%s",
                         o->lowercase ? "lc" : "mixed", o->eps_smoothing ? "no" : "yes", o->char_order,
                         o->word_order, o->whitespace ? "yes" : "no", metric_version());
    return rc;
}

int chrf_report(const struct chrf *c, struct metric_result *r)
{
    size_t n = (size_t)snprintf(r->name, sizeof r->name, "chrF%d", c->o.beta);
    for (size_t k = 0; k < c->o.word_order && n + 1 < sizeof r->name; k++, n++) {
        r->name[n] = '+';
        r->name[n + 1] = '\0';
    }
    r->score = chrf_score(c);
    sbuf_reset(&r->signature);
    sbuf_reset(&r->verbose);
    return chrf_signature(&c->o, &c->st, &r->signature);
}
