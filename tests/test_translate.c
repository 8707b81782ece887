/* tests/test_translate.c: the translation engine (train/translate.h) on an in-memory model (random
 * parameters, a BPE learned from a few generated sentences): options and bad input, line alignment
 * with empty and invalid lines, beam 1 against decoder/greedy.h, the same output for 1 and 2 threads
 * and for any sub-batch size, n-best order and length limits. */
#include <criterion/criterion.h>

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "decoder/greedy.h"
#include "decoder/seq2seq.h"
#include "nn/params.h"
#include "tokenizer/bpe.h"
#include "train/translate.h"
#include "util/err.h"
#include "util/rng.h"
#include "util/sbuf.h"

static const char *words[] = {"haus", "katze", "der", "die", "und", "ein", "hund", "baum", "grün", "läuft",
                              "schnell", "über", "straße", "kind", "spielt", "mit", "ball", "rot"};
#define N_WORDS (sizeof words / sizeof words[0])

struct fixture {
    struct bpe *bpe;
    struct s2s_model m;
    float *w;
    char **lines;
    size_t *lens;
    size_t n;
};

static char *make_sentence(struct rng *r)
{
    struct sbuf s;
    sbuf_init(&s);
    size_t n = 1 + rng_below(r, 9);
    for (size_t i = 0; i < n; i++)
        sbuf_printf(&s, "%s%s", i ? " " : "", words[rng_below(r, N_WORDS)]);
    return s.data;
}

/* A model over a BPE learned from 60 sentences; eos_bias is added to out.b[EOS] so some hypotheses
 * end early. n_lines test lines (generated, different seed). */
static void fixture_make(struct fixture *f, size_t L, int reverse, float eos_bias, size_t n_lines)
{
    memset(f, 0, sizeof *f);
    struct rng r;
    rng_seed(&r, 7);
    struct bpe_learner *l = bpe_learner_create(TOK_NORM_NFKC);
    cr_assert_not_null(l);
    for (int i = 0; i < 60; i++) {
        char *s = make_sentence(&r);
        cr_assert_eq(bpe_learner_add(l, s, strlen(s)), 0);
        free(s);
    }
    struct bpe_learn_opts lo = {.size = 300, .min_count = 1};
    cr_assert_eq(bpe_learner_learn(l, &lo, &f->bpe), 0);
    bpe_learner_free(l);
    size_t V = bpe_size(f->bpe);
    struct s2s_config cfg = {.V_src = V, .V_tgt = V, .E = 12, .H = 16, .L = L, .reverse_source = reverse};
    cr_assert_eq(s2s_model_init(&f->m, &cfg), 0);
    f->w = param_buf_create(f->m.table.total);
    cr_assert_not_null(f->w);
    s2s_params_init(&f->m, f->w, &r);
    const struct param_view *ob = param_table_find(&f->m.table, "out.b");
    cr_assert_not_null(ob);
    f->w[ob->offset + S2S_EOS] += eos_bias;
    f->n = n_lines;
    f->lines = calloc(n_lines, sizeof *f->lines);
    f->lens = calloc(n_lines, sizeof *f->lens);
    rng_seed(&r, 99);
    for (size_t i = 0; i < n_lines; i++) {
        f->lines[i] = make_sentence(&r);
        f->lens[i] = strlen(f->lines[i]);
    }
}

static void fixture_free(struct fixture *f)
{
    for (size_t i = 0; i < f->n; i++)
        free(f->lines[i]);
    free(f->lines);
    free(f->lens);
    param_buf_free(f->w);
    s2s_model_free(&f->m);
    bpe_free(f->bpe);
}

static struct translator *make(struct fixture *f, size_t beam, size_t nbest, size_t batch, int threads)
{
    struct translate_opts o;
    translate_opts_default(&o);
    o.beam = beam;
    o.nbest = nbest;
    o.batch = batch;
    o.threads = threads;
    struct translator *t = translator_create(&f->m, f->w, f->bpe, f->bpe, &o);
    cr_assert_not_null(t, "%s", sl_errmsg());
    return t;
}

static void run(struct translator *t, struct fixture *f)
{
    int rc = translator_run(t, (const char *const *)f->lines, f->lens, f->n);
    cr_assert_eq(rc, 0, "%s", sl_errmsg());
}

/* Every result of a and b is identical (texts, token counts, scores bit for bit). */
static void assert_same(const struct translator *a, const struct translator *b, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const struct translate_result *x = translator_result(a, i), *y = translator_result(b, i);
        cr_assert_eq(x->status, y->status, "line %zu", i);
        cr_assert_eq(x->n_hyps, y->n_hyps, "line %zu", i);
        for (size_t k = 0; k < x->n_hyps; k++) {
            cr_assert_str_eq(x->hyps[k].text, y->hyps[k].text, "line %zu hyp %zu", i, k);
            cr_assert_eq(x->hyps[k].n_tokens, y->hyps[k].n_tokens);
            cr_assert_eq(x->hyps[k].score, y->hyps[k].score, "line %zu hyp %zu: %.9g vs %.9g", i, k,
                         x->hyps[k].score, y->hyps[k].score);
            cr_assert_eq(x->hyps[k].logprob, y->hyps[k].logprob);
        }
    }
}

Test(translate, defaults_and_bad_options)
{
    struct translate_opts o;
    translate_opts_default(&o);
    cr_assert_eq(o.beam, 5);
    cr_assert_eq(o.nbest, 1);
    cr_assert_float_eq(o.alpha, 0.6f, 1e-7);
    cr_assert_eq(o.src_eos, 1);
    cr_assert_eq(o.max_len_cap, 256);
    struct fixture f;
    fixture_make(&f, 1, 0, 0.0f, 1);
    o.nbest = 6; /* > beam */
    cr_assert_null(translator_create(&f.m, f.w, f.bpe, f.bpe, &o));
    cr_assert(strstr(sl_errmsg(), "bad options"), "%s", sl_errmsg());
    translate_opts_default(&o);
    o.beam = 0;
    cr_assert_null(translator_create(&f.m, f.w, f.bpe, f.bpe, &o));
    translate_opts_default(&o);
    o.alpha = -1.0f;
    cr_assert_null(translator_create(&f.m, f.w, f.bpe, f.bpe, &o));
    translate_opts_default(&o);
    o.batch = 0;
    cr_assert_null(translator_create(&f.m, f.w, f.bpe, f.bpe, &o));
    cr_assert_null(translator_create(&f.m, f.w, f.bpe, NULL, NULL));
    /* a model whose target vocabulary is larger than the BPE's */
    struct s2s_model big;
    struct s2s_config cfg = f.m.cfg;
    cfg.V_tgt = bpe_size(f.bpe) + 5;
    cr_assert_eq(s2s_model_init(&big, &cfg), 0);
    cr_assert_null(translator_create(&big, f.w, f.bpe, f.bpe, NULL));
    cr_assert(strstr(sl_errmsg(), "vocabularies"), "%s", sl_errmsg());
    s2s_model_free(&big);
    fixture_free(&f);
}

Test(translate, alignment_with_empty_and_invalid_lines)
{
    struct fixture f;
    fixture_make(&f, 1, 0, 0.5f, 0);
    const char *lines[] = {"", "der hund", "ab\xff" "cd", "die katze spielt", "", "\xc3", " "};
    size_t n = sizeof lines / sizeof lines[0], lens[16];
    for (size_t i = 0; i < n; i++)
        lens[i] = strlen(lines[i]);
    struct translator *t = make(&f, 3, 2, 4, 1);
    cr_assert_eq(translator_run(t, lines, lens, n), 0, "%s", sl_errmsg());
    for (size_t i = 0; i < n; i++) {
        const struct translate_result *r = translator_result(t, i);
        if (i == 2 || i == 5) {
            cr_assert_eq(r->status, SL_EUTF8, "line %zu", i);
            cr_assert_eq(r->bad_off, i == 2 ? 2 : 0);
            cr_assert_eq(r->n_hyps, 0);
        } else if (lens[i] == 0) {
            cr_assert_eq(r->status, 0);
            cr_assert_eq(r->n_hyps, 0);
            cr_assert_eq(r->n_src_tokens, 0);
        } else {
            cr_assert_eq(r->status, 0);
            cr_assert_geq(r->n_hyps, 1, "line %zu", i);
            cr_assert_leq(r->n_hyps, 2);
            cr_assert_gt(r->n_src_tokens, 0);
            for (size_t k = 0; k < r->n_hyps; k++) {
                cr_assert_eq(strlen(r->hyps[k].text), r->hyps[k].len);
                cr_assert_null(strchr(r->hyps[k].text, '\n'));
                cr_assert_eq(tok_utf8_check(r->hyps[k].text, r->hyps[k].len, NULL), 0);
            }
        }
    }
    size_t nl = 0, ns = 0;
    translator_totals(t, &nl, &ns, NULL, NULL);
    cr_assert_eq(nl, 3);
    cr_assert_eq(ns, translator_result(t, 1)->n_src_tokens + translator_result(t, 3)->n_src_tokens +
                         translator_result(t, 6)->n_src_tokens);
    /* a batch of nothing but empty lines, and an empty batch */
    const char *empty[] = {"", ""};
    size_t zl[] = {0, 0};
    cr_assert_eq(translator_run(t, empty, zl, 2), 0);
    cr_assert_eq(translator_result(t, 1)->n_hyps, 0);
    cr_assert_eq(translator_run(t, empty, zl, 0), 0);
    translator_free(t);
    fixture_free(&f);
}

/* Beam 1 is greedy decoding: same tokens as s2s_greedy with the same length limit, and for a
 * hypothesis that ended with EOS the same log-probability. */
static void check_greedy(size_t L, int reverse)
{
    struct fixture f;
    fixture_make(&f, L, reverse, 1.2f, 30);
    struct translator *t = make(&f, 1, 1, 8, 1);
    run(t, &f);
    struct s2s_decoder *d = s2s_decoder_create(&f.m, f.w);
    struct tok_ids ids;
    tok_ids_init(&ids);
    struct sbuf txt;
    sbuf_init(&txt);
    size_t n_fin = 0, n_cut = 0;
    for (size_t i = 0; i < f.n; i++) {
        cr_assert_eq(bpe_encode(f.bpe, f.lines[i], f.lens[i], &ids), 0);
        int32_t src[64];
        cr_assert_lt(ids.n, 63);
        memcpy(src, ids.ids, ids.n * sizeof *src);
        src[ids.n] = S2S_EOS;
        int32_t slen = (int32_t)ids.n + 1;
        size_t max_len = 2 * ids.n + 10; /* the default limit: floor(2.0 n) + 10 */
        int32_t out[128], out_len;
        float score;
        cr_assert_eq(s2s_greedy(d, src, &slen, 1, (size_t)slen, max_len, out, &out_len, &score), 0);
        const struct translate_result *r = translator_result(t, i);
        cr_assert_eq(r->n_hyps, 1);
        cr_assert_eq(r->hyps[0].n_tokens, (size_t)out_len, "line %zu", i);
        cr_assert_eq(bpe_decode(f.bpe, out, (size_t)out_len, &txt), 0);
        struct sbuf rep;
        sbuf_init(&rep);
        cr_assert_eq(tok_utf8_repair(txt.data, txt.len, &rep), 0);
        for (size_t c = 0; c < rep.len; c++)
            if (rep.data[c] == '\n' || rep.data[c] == '\r')
                rep.data[c] = ' ';
        cr_assert_str_eq(r->hyps[0].text, rep.data ? rep.data : "", "line %zu", i);
        sbuf_free(&rep);
        if ((size_t)out_len < max_len) {
            n_fin++;
            cr_assert(r->hyps[0].finished);
            cr_assert(fabs(r->hyps[0].logprob - score) < 1e-3 * (1 + fabs(score)), "line %zu: %g vs %g", i,
                      r->hyps[0].logprob, (double)score);
        } else {
            n_cut++;
        }
    }
    cr_assert_gt(n_fin, 0, "the EOS bias should end some hypotheses early");
    sbuf_free(&txt);
    tok_ids_free(&ids);
    s2s_decoder_free(d);
    translator_free(t);
    fixture_free(&f);
}

Test(translate, beam1_equals_greedy) { check_greedy(1, 0); }
Test(translate, beam1_equals_greedy_two_layers_reversed) { check_greedy(2, 1); }

Test(translate, threads_do_not_change_the_output)
{
    struct fixture f;
    fixture_make(&f, 2, 1, 0.8f, 45);
    struct translator *a = make(&f, 5, 3, 4, 1), *b = make(&f, 5, 3, 4, 2);
    run(a, &f);
    run(b, &f);
    assert_same(a, b, f.n);
    run(b, &f); /* reused workers give the same again */
    assert_same(a, b, f.n);
    translator_free(a);
    translator_free(b);
    fixture_free(&f);
}

Test(translate, batch_size_does_not_change_the_output)
{
    struct fixture f;
    fixture_make(&f, 1, 0, 0.8f, 37);
    struct translator *a = make(&f, 4, 2, 1, 1), *b = make(&f, 4, 2, 7, 2), *c = make(&f, 4, 2, 64, 1);
    run(a, &f);
    run(b, &f);
    run(c, &f);
    assert_same(a, b, f.n);
    assert_same(a, c, f.n);
    /* one line at a time (as --unbuffered) gives the same as the whole batch */
    for (size_t i = 0; i < f.n; i++) {
        cr_assert_eq(translator_run(b, (const char *const *)&f.lines[i], &f.lens[i], 1), 0);
        const struct translate_result *x = translator_result(a, i), *y = translator_result(b, 0);
        cr_assert_eq(x->n_hyps, y->n_hyps);
        cr_assert_str_eq(x->hyps[0].text, y->hyps[0].text);
        cr_assert_eq(x->hyps[0].score, y->hyps[0].score);
    }
    translator_free(a);
    translator_free(b);
    translator_free(c);
    fixture_free(&f);
}

Test(translate, nbest_order_and_length_limit)
{
    struct fixture f;
    fixture_make(&f, 1, 0, 0.0f, 20);
    struct translate_opts o;
    translate_opts_default(&o);
    o.beam = 4;
    o.nbest = 4;
    o.max_len_ratio = 0.5;
    o.max_len_extra = 1;
    o.max_len_cap = 3;
    o.threads = 1;
    struct translator *t = translator_create(&f.m, f.w, f.bpe, f.bpe, &o);
    cr_assert_not_null(t);
    run(t, &f);
    for (size_t i = 0; i < f.n; i++) {
        const struct translate_result *r = translator_result(t, i);
        size_t lim = (size_t)(0.5 * (double)r->n_src_tokens) + 1;
        if (lim > 3)
            lim = 3;
        cr_assert_eq(r->n_hyps, 4, "line %zu", i);
        for (size_t k = 0; k < r->n_hyps; k++) {
            cr_assert_leq(r->hyps[k].n_tokens, lim, "line %zu: %zu tokens, limit %zu", i, r->hyps[k].n_tokens, lim);
            cr_assert(r->hyps[k].finished); /* EOS is forced at the limit */
            cr_assert_leq(r->hyps[k].logprob, 0.0);
            double lp = pow((5.0 + (double)(r->hyps[k].n_tokens + 1)) / 6.0, (double)0.6f);
            cr_assert(fabs(r->hyps[k].score - r->hyps[k].logprob / lp) < 1e-9, "%g %g %g %zu", r->hyps[k].score, r->hyps[k].logprob, lp, r->hyps[k].n_tokens);
            if (k > 0)
                cr_assert_geq(r->hyps[k - 1].score, r->hyps[k].score);
        }
    }
    translator_free(t);
    fixture_free(&f);
}
