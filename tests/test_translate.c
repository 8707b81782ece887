/* tests/test_translate.c: the translation engine (translate/translator.h) on an in-memory model (random
 * parameters, a BPE learned from a few generated sentences): options and bad input, line alignment
 * with empty and invalid lines, beam 1 against the greedy oracle (tests/greedy_oracle.h), the same
 * output for 1 and 2 threads and for any sub-batch size, n-best order and length limits. */
#include <criterion/criterion.h>

#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/greedy_oracle.h"
#include "model/seq2seq.h"
#include "nn/autocast.h"
#include "nn/gemm_bf16.h"
#include "nn/params.h"
#include "tokenizer/bpe.h"
#include "translate/translator.h"
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
    f->w[ob->offset + BPE_EOS] += eos_bias;
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
    const char *lines[] = {"", "der hund", ("ab\xff" "cd"), "die katze spielt", "", "\xc3", " "};
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

/* Compares t's beam-1 results for f's lines with the greedy oracle over decoders d[0..n) (the same length
 * limit): the same tokens and text, and for a hypothesis that ended with EOS the same log-probability.
 * OUT: *n_fin (hypotheses that ended before the limit), *n_words (non-empty ones). */
static void compare_with_oracle(struct fixture *f, const struct translator *t, struct s2s_decoder *const *d, size_t n,
                                size_t *n_fin, size_t *n_words)
{
    struct tok_ids ids;
    tok_ids_init(&ids);
    struct sbuf txt;
    sbuf_init(&txt);
    *n_fin = *n_words = 0;
    for (size_t i = 0; i < f->n; i++) {
        cr_assert_eq(bpe_encode(f->bpe, f->lines[i], f->lens[i], &ids), 0);
        int32_t src[64];
        cr_assert_lt(ids.n, 63);
        memcpy(src, ids.ids, ids.n * sizeof *src);
        src[ids.n] = BPE_EOS;
        int32_t slen = (int32_t)ids.n + 1;
        size_t max_len = 2 * ids.n + 10; /* the default limit: floor(2.0 n) + 10 */
        int32_t out[128], out_len;
        float score;
        cr_assert_eq(greedy_oracle_decode_n(d, n, src, &slen, 1, (size_t)slen, max_len, out, &out_len, &score), 0);
        const struct translate_result *r = translator_result(t, i);
        cr_assert_eq(r->n_hyps, 1);
        cr_assert_eq(r->hyps[0].n_tokens, (size_t)out_len, "line %zu", i);
        cr_assert_eq(bpe_decode(f->bpe, out, (size_t)out_len, &txt), 0);
        struct sbuf rep;
        sbuf_init(&rep);
        cr_assert_eq(tok_utf8_repair(txt.data, txt.len, &rep), 0);
        for (size_t c = 0; c < rep.len; c++)
            if (rep.data[c] == '\n' || rep.data[c] == '\r')
                rep.data[c] = ' ';
        cr_assert_str_eq(r->hyps[0].text, rep.data ? rep.data : "", "line %zu", i);
        sbuf_free(&rep);
        *n_words += out_len > 0;
        if ((size_t)out_len < max_len) {
            (*n_fin)++;
            cr_assert(r->hyps[0].finished);
            cr_assert(fabs(r->hyps[0].logprob - score) < 1e-3 * (1 + fabs(score)), "line %zu: %g vs %g", i,
                      r->hyps[0].logprob, (double)score);
        }
    }
    sbuf_free(&txt);
    tok_ids_free(&ids);
}

/* Beam 1 is greedy decoding (compare_with_oracle with the one model). */
static void check_greedy(size_t L, int reverse)
{
    struct fixture f;
    fixture_make(&f, L, reverse, 1.2f, 30);
    struct translator *t = make(&f, 1, 1, 8, 1);
    run(t, &f);
    struct s2s_decoder *d = s2s_decoder_create(&f.m, f.w, NULL);
    size_t n_fin, n_words;
    compare_with_oracle(&f, t, &d, 1, &n_fin, &n_words);
    cr_assert_gt(n_fin, 0, "the EOS bias should end some hypotheses early");
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

/* ---- ensembles and alignments ---- */

#include "translate/align.h"

/* A model over f's BPE with its own architecture and random parameters (seed), EOS bias as the fixture's. */
static void member_make(const struct fixture *f, struct s2s_model *m, float **w, size_t E, size_t H, size_t L,
                        enum attn_score att, int bi, int reverse, uint64_t seed, float eos_bias)
{
    size_t V = bpe_size(f->bpe);
    struct s2s_config cfg = {.V_src = V, .V_tgt = V, .E = E, .H = H, .L = L, .reverse_source = reverse,
                             .attention = att, .bidirectional = bi};
    cr_assert_eq(s2s_model_init(m, &cfg), 0, "%s", sl_errmsg());
    *w = param_buf_create(m->table.total);
    cr_assert_not_null(*w);
    struct rng r;
    rng_seed(&r, seed);
    s2s_params_init(m, *w, &r);
    (*w)[param_table_find(&m->table, "out.b")->offset + BPE_EOS] += eos_bias;
}

static struct translator *make_n(const struct fixture *f, const struct s2s_model *const *m, const float *const *w,
                                 size_t n, size_t beam, size_t nbest, int alignment, int threads)
{
    struct translate_opts o;
    translate_opts_default(&o);
    o.beam = beam;
    o.nbest = nbest;
    o.batch = 4;
    o.threads = threads;
    o.alignment = alignment;
    struct translator *t = translator_create_ensemble(m, w, n, f->bpe, f->bpe, &o);
    cr_assert_not_null(t, "%s", sl_errmsg());
    return t;
}

/* The same model twice: the mean of two equal log-probabilities is each of them, so every output and score is
 * the single model's, bit for bit (greedy and beam, plain and attention). */
Test(ensemble, the_same_model_twice_is_that_model)
{
    struct fixture f;
    fixture_make(&f, 2, 1, 0.8f, 30);
    struct s2s_model am;
    float *aw;
    member_make(&f, &am, &aw, 8, 20, 1, ATTN_GENERAL, 1, 0, 5, 0.8f);
    const struct s2s_model *ms[2][2] = {{&f.m, &f.m}, {&am, &am}};
    const float *ws[2][2] = {{f.w, f.w}, {aw, aw}};
    for (int k = 0; k < 2; k++)
        for (size_t beam = 1; beam <= 5; beam += 4) {
            struct translator *one = make_n(&f, ms[k], ws[k], 1, beam, beam > 1 ? 3 : 1, 0, 2);
            struct translator *two = make_n(&f, ms[k], ws[k], 2, beam, beam > 1 ? 3 : 1, 0, 2);
            run(one, &f);
            run(two, &f);
            assert_same(one, two, f.n);
            translator_free(one);
            translator_free(two);
        }
    param_buf_free(aw);
    s2s_model_free(&am);
    fixture_free(&f);
}

/* Two different models (plain unidirectional, attention over a bidirectional encoder of other sizes): greedy
 * decoding takes the argmax of the mean log-probabilities at every step, as the N-model greedy oracle does.
 * eos_bias: the second member's (random models end either at once or never; the tests use both sides). */
static void check_ensemble_greedy(float eos_bias, int want_finished)
{
    struct fixture f;
    fixture_make(&f, 1, 0, 0.05f, 30);
    struct s2s_model am;
    float *aw;
    member_make(&f, &am, &aw, 8, 20, 2, ATTN_MLP, 1, 0, 11, eos_bias);
    const struct s2s_model *ms[2] = {&f.m, &am};
    const float *ws[2] = {f.w, aw};
    struct translator *t = make_n(&f, ms, ws, 2, 1, 1, 0, 1), *solo = make_n(&f, ms, ws, 1, 1, 1, 0, 1);
    run(t, &f);
    run(solo, &f);
    struct s2s_decoder *d[2] = {s2s_decoder_create(&f.m, f.w, NULL), s2s_decoder_create(&am, aw, NULL)};
    size_t n_fin, n_words, n_differ = 0;
    compare_with_oracle(&f, t, d, 2, &n_fin, &n_words);
    for (size_t i = 0; i < f.n; i++)
        n_differ += strcmp(translator_result(t, i)->hyps[0].text, translator_result(solo, i)->hyps[0].text) != 0;
    cr_assert_gt(n_differ, 0, "the second member should change some translations");
    if (want_finished)
        cr_assert_gt(n_fin, 0, "some hypotheses should end with EOS");
    cr_assert_gt(n_words, 0, "some hypotheses should have tokens");
    s2s_decoder_free(d[0]);
    s2s_decoder_free(d[1]);
    translator_free(t);
    translator_free(solo);
    param_buf_free(aw);
    s2s_model_free(&am);
    fixture_free(&f);
}

Test(ensemble, greedy_is_the_argmax_of_the_mean_log_probabilities) { check_ensemble_greedy(0.12f, 0); }
Test(ensemble, greedy_is_the_argmax_of_the_mean_log_probabilities_eos) { check_ensemble_greedy(0.13f, 1); }

Test(ensemble, members_must_share_the_target_vocabulary)
{
    struct fixture f;
    fixture_make(&f, 1, 0, 0.0f, 2);
    struct s2s_config cfg = f.m.cfg;
    cfg.V_tgt -= 1;
    struct s2s_model small;
    cr_assert_eq(s2s_model_init(&small, &cfg), 0);
    float *sw = param_buf_create(small.table.total);
    const struct s2s_model *ms[2] = {&f.m, &small};
    const float *ws[2] = {f.w, sw};
    cr_assert_null(translator_create_ensemble(ms, ws, 2, f.bpe, f.bpe, NULL));
    cr_assert(strstr(sl_errmsg(), "member 2 has V_tgt"), "%s", sl_errmsg());
    cr_assert_null(translator_create_ensemble(ms, ws, 0, f.bpe, f.bpe, NULL));
    param_buf_free(sw);
    s2s_model_free(&small);
    fixture_free(&f);
}

/* Words of a hand-made subword sequence: "▁h" "a" | "▁" then three byte tokens (one character) | "▁" "h"
 * <unk> | <pad> "▁" (trailing: no word) -> 0 0 1 1 1 1 2 2 2 -1 -1. */
Test(word_alignment, word_index_of_hand_made_subwords)
{
    struct bpe *b = bpe_create(TOK_NORM_NFKC);
    cr_assert_not_null(b);
    const char *spec[] = {"<pad>", "<s>", "</s>", "<unk>"};
    for (int32_t i = 0; i < 4; i++)
        cr_assert_eq(bpe_add_token(b, i, spec[i], strlen(spec[i]), BPE_KIND_SPECIAL, 0), 0);
    for (int32_t v = 0; v < 256; v++) {
        char c = (char)v;
        cr_assert_eq(bpe_add_token(b, BPE_BYTE0 + v, &c, 1, BPE_KIND_BYTE, 0), 0);
    }
    cr_assert_eq(bpe_add_token(b, 260, "\xe2\x96\x81", 3, BPE_KIND_NORMAL, 5), 0);
    cr_assert_eq(bpe_add_token(b, 261, "h", 1, BPE_KIND_NORMAL, 4), 0);
    cr_assert_eq(bpe_add_token(b, 262, "a", 1, BPE_KIND_NORMAL, 3), 0);
    cr_assert_eq(bpe_add_token(b, 263, "\xe2\x96\x81h", 4, BPE_KIND_NORMAL, 2), 0);
    cr_assert_eq(bpe_add_merge(b, 0, 260, 261, 263), 0);
    cr_assert_eq(bpe_finalize(b), 0, "%s", sl_errmsg());
    const int32_t ids[] = {263, 262, 260, BPE_BYTE0 + 0xE4, BPE_BYTE0 + 0xB8, BPE_BYTE0 + 0xAD, 260, 261, BPE_UNK,
                           BPE_PAD, 260};
    const int32_t want[] = {0, 0, 1, 1, 1, 1, 2, 2, 2, -1, -1};
    int32_t word[11];
    cr_assert_eq(align_word_index(b, ids, 11, word), 0);
    for (int i = 0; i < 11; i++)
        cr_assert_eq(word[i], want[i], "subword %d: word %d, want %d", i, word[i], want[i]);
    struct sbuf dec;
    sbuf_init(&dec);
    cr_assert_eq(bpe_decode(b, ids, 11, &dec), 0); /* three words, as the detokenised text has */
    cr_assert_eq(dec.len, strlen("ha \xe4\xb8\xad h\xe2\x81\x87 "));
    const int32_t bad = 9999;
    cr_assert_eq(align_word_index(b, &bad, 1, word), SL_EINVAL);
    /* pairs: target subwords 0..4 aligned to source subwords 2 0 0 5 (EOS: left out) 3 -> sorted unique */
    const int32_t src_word[] = {0, 0, 1, 1, 1}, tgt_word[] = {0, 1, 1, 2, 2}, tgt_src[] = {2, 0, 0, 5, 3};
    uint64_t scr[5];
    sbuf_reset(&dec);
    cr_assert_eq(align_format(src_word, 5, tgt_word, tgt_src, 5, scr, &dec), 0);
    cr_assert_str_eq(dec.data, "0-1 1-0 1-2");
    sbuf_free(&dec);
    bpe_free(b);
}

static size_t count_words(const char *s)
{
    size_t n = 0;
    for (int in = 0; *s; s++) {
        int sp = *s == ' ' || *s == '\t';
        n += !sp && !in;
        in = !sp;
    }
    return n;
}

/* Every n-best hypothesis has its alignment: unique pairs sorted by source then target, inside the word
 * counts of its line and of its own text; asking for alignments changes no translation. A plain model
 * (no attention) is refused. */
static void check_alignments(int reverse, int bi)
{
    struct fixture f;
    fixture_make(&f, 1, 0, 0.8f, 25);
    struct s2s_model am;
    float *aw;
    member_make(&f, &am, &aw, 8, 20, 1, ATTN_DOT, bi, reverse, 13, 0.5f);
    const struct s2s_model *ms[2] = {&f.m, &am};
    const float *ws[2] = {f.w, aw};
    struct translate_opts o;
    translate_opts_default(&o);
    o.alignment = 1;
    cr_assert_null(translator_create_ensemble(ms, ws, 1, f.bpe, f.bpe, &o));
    cr_assert(strstr(sl_errmsg(), "attention"), "%s", sl_errmsg());
    /* the ensemble aligns with its first member with attention (the second here) */
    struct translator *a = make_n(&f, ms, ws, 2, 4, 3, 1, 2), *plain = make_n(&f, ms, ws, 2, 4, 3, 0, 1);
    run(a, &f);
    run(plain, &f);
    assert_same(a, plain, f.n);
    size_t n_pairs = 0;
    for (size_t i = 0; i < f.n; i++) {
        const struct translate_result *r = translator_result(a, i);
        const size_t ns = count_words(f.lines[i]);
        for (size_t k = 0; k < r->n_hyps; k++) {
            const struct translate_hyp *h = &r->hyps[k];
            cr_assert_not_null(h->align, "line %zu hyp %zu", i, k);
            cr_assert_eq(strlen(h->align), h->align_len);
            cr_assert_null(translator_result(plain, i)->hyps[k].align);
            const size_t nt = count_words(h->text);
            long ps = -1, pt = -1;
            for (const char *p = h->align; *p;) {
                char *e;
                long s = strtol(p, &e, 10);
                cr_assert_eq(*e, '-', "line %zu: '%s'", i, h->align);
                long t = strtol(e + 1, &e, 10);
                cr_assert(s >= 0 && (size_t)s < ns && t >= 0 && (size_t)t < nt, "line %zu '%s' / '%s': %s", i,
                          f.lines[i], h->text, h->align);
                cr_assert(s > ps || (s == ps && t > pt), "line %zu: not sorted and unique: %s", i, h->align);
                ps = s, pt = t;
                n_pairs++;
                p = *e == ' ' ? e + 1 : e;
                cr_assert(*e == ' ' || *e == '\0');
            }
            cr_assert_eq(h->align_len == 0, nt == 0, "line %zu hyp %zu: '%s' has words, alignment '%s'", i, k,
                         h->text, h->align);
        }
    }
    cr_assert_gt(n_pairs, f.n);
    translator_free(a);
    translator_free(plain);
    param_buf_free(aw);
    s2s_model_free(&am);
    fixture_free(&f);
}

Test(word_alignment, nbest_hypotheses_each_have_an_alignment) { check_alignments(0, 1); }
Test(word_alignment, nbest_alignments_reversed_source) { check_alignments(1, 0); }

/* ---- the command line (seqlite translate / eval) on a database with a random-model checkpoint ---- */

#include <signal.h>
#include <sqlite3.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "corpus/db.h"
#include "corpus/vocab_store.h"
#include "tests/helpers.h"
#include "train/checkpoint.h"

/* n lines of generated sentences into dir/name.src and dir/name.tgt (target = source reversed by words). */
static void write_pairs(const char *dir, const char *name, size_t n, uint64_t seed)
{
    struct rng r;
    rng_seed(&r, seed);
    struct sbuf s, t;
    sbuf_init(&s);
    sbuf_init(&t);
    for (size_t i = 0; i < n; i++) {
        size_t k = 1 + rng_below(&r, 6), w[8];
        for (size_t j = 0; j < k; j++) {
            w[j] = rng_below(&r, N_WORDS);
            sbuf_printf(&s, "%s%s", j ? " " : "", words[w[j]]);
        }
        for (size_t j = 0; j < k; j++)
            sbuf_printf(&t, "%s%s", j ? " " : "", words[w[k - 1 - j]]);
        sbuf_putc(&s, '\n');
        sbuf_putc(&t, '\n');
    }
    char fn[64];
    snprintf(fn, sizeof fn, "%s.src", name);
    char *p = th_path(dir, fn);
    cr_assert_eq(th_write_file(p, s.data, s.len), 0);
    free(p);
    snprintf(fn, sizeof fn, "%s.tgt", name);
    p = th_path(dir, fn);
    cr_assert_eq(th_write_file(p, t.data, t.len), 0);
    free(p);
    sbuf_free(&s);
    sbuf_free(&t);
}

static int runf(char **out, char **err, const char *in, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int runf(char **out, char **err, const char *in, const char *fmt, ...)
{
    char args[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    return th_run(args, in, out, err);
}

static size_t count_lines(const char *s)
{
    size_t n = 0;
    for (; s && *s; s++)
        n += *s == '\n';
    return n;
}

static int64_t add_ckpt(const char *db_path, enum attn_score att, uint64_t seed);

/* A database with train + test corpora, a vocabulary and (with_ckpt) a checkpoint of a random model
 * whose EOS bias ends some hypotheses early. Returns the db path (malloc'd). */
static char *make_db(const char *dir, int with_ckpt)
{
    write_pairs(dir, "train", 120, 1);
    write_pairs(dir, "test", 12, 2);
    char *db_path = th_path(dir, "m.db");
    char *err = NULL;
    cr_assert_eq(runf(NULL, &err, NULL, "import '%s' '%s/train.src' '%s/train.tgt'", db_path, dir, dir), 0, "%s", err);
    free(err);
    cr_assert_eq(runf(NULL, &err, NULL, "import '%s' '%s/test.src' '%s/test.tgt' --split test", db_path, dir, dir),
                 0, "%s", err);
    free(err);
    cr_assert_eq(runf(NULL, &err, NULL, "vocab '%s' --size 300 --min-count 1", db_path), 0, "%s", err);
    free(err);
    if (with_ckpt)
        add_ckpt(db_path, ATTN_NONE, 3);
    return db_path;
}

/* Adds a run and a checkpoint of a random model (attention att, parameters from seed) over the newest
 * vocabulary of db_path; returns the checkpoint id. */
static int64_t add_ckpt(const char *db_path, enum attn_score att, uint64_t seed)
{
    struct db *db;
    cr_assert_eq(db_open(db_path, 0, &db), 0);
    int64_t vid;
    struct bpe *b;
    cr_assert_eq(corpus_vocab_load_latest(db, "src", &b, &vid), 0, "%s", sl_errmsg());
    struct db_run run;
    memset(&run, 0, sizeof run);
    run.src_vocab_id = run.tgt_vocab_id = vid;
    run.threads = 1;
    char config[512];
    snprintf(config, sizeof config, "{\"seed\":1,\"layers\":1,\"emb\":12,\"hidden\":16,\"batch\":8,\"lr\":0.001,"
             "\"clip\":5,\"epochs\":1,\"max_len\":64,\"reverse_source\":1,\"keep\":3,\"src_eos\":1,\"attention\":%d}",
             (int)att);
    run.config = config;
    int64_t run_id;
    cr_assert_eq(db_run_create(db, &run, &run_id), 0, "%s", sl_errmsg());
    struct s2s_config cfg = {.V_src = bpe_size(b), .V_tgt = bpe_size(b), .E = 12, .H = 16, .L = 1,
                             .reverse_source = 1, .attention = att};
    struct s2s_model m;
    cr_assert_eq(s2s_model_init(&m, &cfg), 0);
    float *w = param_buf_create(m.table.total);
    struct rng r;
    rng_seed(&r, seed);
    s2s_params_init(&m, w, &r);
    w[param_table_find(&m.table, "out.b")->offset + BPE_EOS] += 1.0f;
    struct ckpt_save_req req = {.run_id = run_id, .step = 10, .src_vocab_id = vid, .tgt_vocab_id = vid,
                                .model = &m, .w = w, .valid_ppl = NAN, .keep = 3};
    int64_t ck;
    cr_assert_eq(ckpt_save(db, &req, &ck), 0, "%s", sl_errmsg());
    param_buf_free(w);
    s2s_model_free(&m);
    bpe_free(b);
    db_close(db);
    return ck;
}

static int64_t count_rows(const char *db_path, const char *sql)
{
    sqlite3 *h;
    cr_assert_eq(sqlite3_open_v2(db_path, &h, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    sqlite3_stmt *st;
    cr_assert_eq(sqlite3_prepare_v2(h, sql, -1, &st, NULL), SQLITE_OK, "%s", sqlite3_errmsg(h));
    cr_assert_eq(sqlite3_step(st), SQLITE_ROW);
    int64_t n = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(h);
    return n;
}

/* evaluation.precision of the newest evaluation of db_path ("NULL" when not recorded; malloc'd). */
static char *newest_precision(const char *db_path)
{
    sqlite3 *h;
    cr_assert_eq(sqlite3_open_v2(db_path, &h, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    sqlite3_stmt *st;
    cr_assert_eq(sqlite3_prepare_v2(h, "SELECT coalesce(precision, 'NULL') FROM evaluation ORDER BY id DESC LIMIT 1",
                                    -1, &st, NULL),
                 SQLITE_OK, "%s", sqlite3_errmsg(h));
    cr_assert_eq(sqlite3_step(st), SQLITE_ROW, "no evaluation in %s", db_path);
    char *p = strdup((const char *)sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
    sqlite3_close(h);
    return p;
}

static void assert_newest_precision(const char *db_path, const char *want, const char *what)
{
    char *got = newest_precision(db_path);
    cr_assert_str_eq(got, want, "%s: evaluation.precision '%s', expected '%s'", what, got, want);
    free(got);
}

Test(translate_cli, alignment_errors_and_options)
{
    char *dir = th_tmpdir();
    char *db = make_db(dir, 1);
    char *in = th_path(dir, "in.txt");
    const char text[] = "der hund läuft\n\nab\xff\ndie katze\r\n \nkind spielt mit ball\n";
    cr_assert_eq(th_write_file(in, text, sizeof text - 1), 0);
    char *out = NULL, *err = NULL;
    cr_assert_eq(runf(&out, &err, in, "translate '%s' --beam 3", db), 1, "%s", err);
    cr_assert_eq(count_lines(out), 6, "%s", out);
    cr_assert(strstr(err, "line 3: invalid UTF-8 at byte 3"), "%s", err);
    cr_assert(strstr(err, "1 line had invalid UTF-8"), "%s", err);
    /* line 2 (empty) and line 3 (invalid) are empty output lines */
    const char *l2 = strchr(out, '\n') + 1;
    cr_assert_eq(l2[0], '\n');
    cr_assert_eq(l2[1], '\n');
    free(out), free(err);

    /* a NUL byte is refused as import refuses it: an empty line, a message naming it, exit 1, and the
     * other lines as without it (with --nbest: the one empty entry) */
    const char nul[] = "der hund l\xc3\xa4uft\nkind\0 spielt\ndie katze\n";
    const char clean[] = "der hund l\xc3\xa4uft\n\ndie katze\n";
    char *want = NULL;
    cr_assert_eq(th_write_file(in, clean, sizeof clean - 1), 0);
    cr_assert_eq(runf(&want, NULL, in, "translate '%s' --beam 2", db), 0);
    cr_assert_eq(th_write_file(in, nul, sizeof nul - 1), 0);
    cr_assert_eq(runf(&out, &err, in, "translate '%s' --beam 2", db), 1, "%s", err);
    cr_assert_str_eq(out, want);
    cr_assert(strstr(err, "seqlite: translate: line 2, byte 5: NUL byte: wrote an empty line"), "%s", err);
    cr_assert(strstr(err, "1 line had invalid UTF-8, a NUL byte or more than 16384 bytes"), "%s", err);
    free(out), free(err), free(want);
    cr_assert_eq(runf(&out, &err, in, "translate '%s' --beam 2 --nbest 2", db), 1, "%s", err);
    cr_assert(strstr(out, "\n1 |||  ||| 0\n2 ||| "), "%s", out);
    free(out), free(err);

    /* the same without the invalid line: exit 0; --batch / --threads do not change the output */
    const char ok[] = "der hund läuft\n\ndie katze\nkind spielt mit ball\nrot grün baum haus und ein kind\n";
    cr_assert_eq(th_write_file(in, ok, sizeof ok - 1), 0);
    char *o1 = NULL, *o2 = NULL;
    cr_assert_eq(runf(&o1, &err, in, "translate '%s' --batch 1 --threads 1", db), 0, "%s", err);
    cr_assert(strstr(err, "sentences/s"), "%s", err);
    free(err);
    cr_assert_eq(runf(&o2, NULL, in, "translate '%s' --batch 64 --threads 2 --checkpoint last", db), 0);
    cr_assert_eq(count_lines(o1), 5);
    cr_assert_str_eq(o1, o2);
    free(o2);
    /* --scores: text TAB score, same text */
    cr_assert_eq(runf(&o2, NULL, in, "translate '%s' --scores", db), 0);
    cr_assert_eq(count_lines(o2), 5);
    const char *a = o1, *b = o2;
    for (int i = 0; i < 5; i++) {
        const char *tab = strchr(b, '\t'), *nl = strchr(a, '\n');
        cr_assert_not_null(tab);
        cr_assert_eq((size_t)(tab - b), (size_t)(nl - a), "line %d", i + 1);
        cr_assert_eq(strncmp(a, b, (size_t)(nl - a)), 0);
        char *end;
        double sc = strtod(tab + 1, &end);
        cr_assert_eq(*end, '\n');
        cr_assert_leq(sc, 0.0);
        a = nl + 1;
        b = end + 1;
    }
    free(o2);
    /* n-best: 3 lines per non-empty line, Moses format, best first = the 1-best output */
    cr_assert_eq(runf(&o2, NULL, in, "translate '%s' --beam 4 --nbest 3", db), 0);
    cr_assert_eq(count_lines(o2), 3 + 1 + 3 + 3 + 3, "%s", o2);
    cr_assert_eq(strncmp(o2, "0 ||| ", 6), 0, "%s", o2);
    char first[256];
    const char *nl = strchr(o1, '\n');
    snprintf(first, sizeof first, "0 ||| %.*s ||| ", (int)(nl - o1), o1);
    char *o3 = NULL;
    cr_assert_eq(runf(&o3, NULL, in, "translate '%s' --beam 4", db), 0);
    nl = strchr(o3, '\n');
    snprintf(first, sizeof first, "0 ||| %.*s ||| ", (int)(nl - o3), o3);
    cr_assert_eq(strncmp(o2, first, strlen(first)), 0, "%s\nvs\n%s", o2, first);
    cr_assert(strstr(o2, "\n1 |||  ||| 0\n"), "%s", o2);
    free(o1), free(o2), free(o3);

    /* usage errors */
    cr_assert_eq(runf(NULL, NULL, in, "translate '%s' --beam 0", db), 2);
    cr_assert_eq(runf(NULL, NULL, in, "translate '%s' --beam 2 --nbest 3", db), 2);
    cr_assert_eq(runf(NULL, NULL, in, "translate"), 2);
    cr_assert_eq(runf(NULL, NULL, in, "eval '%s' --split dev", db), 2);
    /* missing database, a checkpoint that does not exist */
    cr_assert_eq(runf(NULL, &err, in, "translate '%s/none.db'", dir), 1);
    cr_assert(strstr(err, "no trained model"), "%s", err);
    free(err);
    cr_assert_eq(runf(NULL, &err, in, "translate '%s' --checkpoint 99", db), 1);
    free(err);
    free(in);
    free(db);
    th_rmdir(dir);
    free(dir);
}

/* --precision: bf16 and int8 translate every line and eval scores them, storing the precision in the
 * evaluation row; a value that is no precision is a usage error; where oneDNN has neither
 * (ONEDNN_MAX_CPU_ISA=avx2 in the child) the command says so in one line, prints exactly the fp32
 * translations, and eval stores fp32: what it decoded with, not what was asked for. */
Test(translate_cli, precision_bf16_int8_and_the_fp32_fallback)
{
    char *dir = th_tmpdir();
    char *db = make_db(dir, 1);
    char *in = th_path(dir, "test.src");
    char *f32 = NULL, *out = NULL, *err = NULL;
    cr_assert_eq(runf(&f32, &err, in, "translate '%s' --beam 3", db), 0, "%s", err);
    free(err);
    cr_assert_eq(count_lines(f32), 12);
    setenv("SEQLITE_BF16_EMULATED", "1", 1);
    static const char *const precs[] = {"bf16", "int8"};
    for (int i = 0; i < 2; i++) {
        /* bf16 (emulated where the CPU lacks it) runs wherever oneDNN is built; int8 needs VNNI or AMX */
        const enum precision p = i ? PRECISION_INT8 : PRECISION_BF16;
        cr_assert(p == PRECISION_INT8 || !gemm_bf16_built() || autocast_available(p));
        char ran[32]; /* the summary line names the precision the products ran in */
        snprintf(ran, sizeof ran, ", beam 3, %s, ", autocast_available(p) ? precs[i] : "fp32");
        cr_assert_eq(runf(&out, &err, in, "translate '%s' --beam 3 --precision %s", db, precs[i]), 0, "%s", err);
        cr_assert_eq(count_lines(out), 12, "%s: %s", precs[i], out);
        cr_assert(strstr(err, ran), "%s: the summary lacks '%s': %s", precs[i], ran, err);
        free(out), free(err);
        cr_assert_eq(runf(&out, &err, NULL, "eval '%s' --beam 2 --precision %s", db, precs[i]), 0, "%s", err);
        cr_assert(strncmp(out, "BLEU|", 5) == 0 && strstr(out, "\nchrF2|"), "%s: %s", precs[i], out);
        snprintf(ran, sizeof ran, "penalty 0.6, %s, ", autocast_available(p) ? precs[i] : "fp32");
        cr_assert(strstr(err, ran), "%s: the summary lacks '%s': %s", precs[i], ran, err);
        free(out), free(err);
        assert_newest_precision(db, autocast_available(p) ? precs[i] : "fp32", precs[i]);
    }
    cr_assert_eq(runf(&out, &err, NULL, "eval '%s' --beam 2 --limit 3", db), 0, "%s", err);
    free(out), free(err);
    assert_newest_precision(db, "fp32", "the default");
    cr_assert_eq(runf(&out, &err, in, "translate '%s' --precision fp16", db), 2);
    cr_assert(strstr(err, "--precision 'fp16': expected fp32, bf16 or int8"), "%s", err);
    free(out), free(err);
    if (gemm_bf16_built()) {
        setenv("ONEDNN_MAX_CPU_ISA", "avx2", 1);
        for (int i = 0; i < 2; i++) {
            cr_assert_eq(runf(&out, &err, in, "translate '%s' --beam 3 --precision %s", db, precs[i]), 0, "%s", err);
            cr_assert(strstr(err, "not available") && strstr(err, "f32 instead"), "%s: %s", precs[i], err);
            cr_assert_str_eq(out, f32, "%s falling back to fp32 translates as fp32", precs[i]);
            free(out), free(err);
            cr_assert_eq(runf(&out, &err, NULL, "eval '%s' --beam 2 --precision %s", db, precs[i]), 0, "%s", err);
            cr_assert(strstr(err, "not available") && strstr(err, "f32 instead"), "%s: %s", precs[i], err);
            cr_assert(strstr(err, "penalty 0.6, fp32, "), "%s: the summary names fp32: %s", precs[i], err);
            free(out), free(err);
            assert_newest_precision(db, "fp32", "a fallback");
        }
        unsetenv("ONEDNN_MAX_CPU_ISA");
    }
    free(f32), free(in), free(db);
    th_rmdir(dir);
    free(dir);
}

Test(translate_cli, no_model)
{
    char *dir = th_tmpdir();
    char *db = make_db(dir, 0);
    char *err = NULL;
    cr_assert_eq(runf(NULL, &err, NULL, "translate '%s'", db), 1);
    cr_assert(strstr(err, "no trained model: run seqlite train"), "%s", err);
    free(err);
    cr_assert_eq(runf(NULL, &err, NULL, "eval '%s'", db), 1);
    cr_assert(strstr(err, "no trained model: run seqlite train"), "%s", err);
    free(err);
    /* not a seqlite database */
    char *junk = th_path(dir, "junk.db");
    cr_assert_eq(th_write_file(junk, "hello\n", 6), 0);
    cr_assert_eq(runf(NULL, &err, NULL, "translate '%s'", junk), 1);
    cr_assert_neq(err[0], '\0');
    free(err);
    free(junk);
    free(db);
    th_rmdir(dir);
    free(dir);
}

Test(translate_cli, eval_stores_rows_and_matches_score)
{
    char *dir = th_tmpdir();
    char *db = make_db(dir, 1);
    char *out = NULL, *err = NULL;
    cr_assert_eq(runf(&out, &err, NULL, "eval '%s' --beam 2", db), 0, "%s", err);
    cr_assert_eq(count_lines(out), 2, "%s", out);
    cr_assert_eq(strncmp(out, "BLEU|nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:seqlite-", 66), 0, "%s", out);
    cr_assert(strstr(out, "\nchrF2|nrefs:1|"), "%s", out);
    cr_assert(strstr(err, "sentences/s"), "%s", err);
    free(err);
    cr_assert_eq(count_rows(db, "SELECT count(*) FROM translation WHERE beam = 2 AND pair_id IS NOT NULL"
                                " AND corpus_id = (SELECT id FROM corpus WHERE split = 'test')"), 12);
    cr_assert_eq(count_rows(db, "SELECT count(*) FROM metric WHERE split = 'test' AND name IN ('bleu','chrf')"
                                " AND signature LIKE 'nrefs:1|%' AND checkpoint_id IS NOT NULL"), 2);
    /* the stored hypotheses, scored by seqlite score against test.tgt, give the same lines */
    sqlite3 *h;
    cr_assert_eq(sqlite3_open_v2(db, &h, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    sqlite3_stmt *st;
    cr_assert_eq(sqlite3_prepare_v2(h, "SELECT hypothesis FROM translation ORDER BY pair_id", -1, &st, NULL), 0);
    struct sbuf hyp;
    sbuf_init(&hyp);
    while (sqlite3_step(st) == SQLITE_ROW)
        sbuf_printf(&hyp, "%s\n", (const char *)sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
    sqlite3_close(h);
    char *hp = th_path(dir, "hyp.txt");
    cr_assert_eq(th_write_file(hp, hyp.data, hyp.len), 0);
    char *sc = NULL;
    cr_assert_eq(runf(&sc, NULL, hp, "score '%s/test.tgt'", dir), 0);
    cr_assert_str_eq(sc, out);
    /* and so does seqlite translate of test.src */
    char *tr = NULL, *src = th_path(dir, "test.src");
    cr_assert_eq(runf(&tr, NULL, src, "translate '%s' --beam 2", db), 0);
    free(src);
    cr_assert_str_eq(tr, hyp.data);
    /* --limit */
    free(out);
    cr_assert_eq(runf(&out, NULL, NULL, "eval '%s' --beam 1 --limit 5 --length-penalty 0.25", db), 0);
    cr_assert_eq(count_rows(db, "SELECT count(*) FROM translation WHERE beam = 1"), 5);
    /* each evaluation is one row with its settings; its translations and scores reference it */
    cr_assert_eq(count_rows(db, "SELECT count(*) FROM evaluation"), 2);
    cr_assert_eq(count_rows(db, "SELECT count(*) FROM evaluation WHERE beam = 2 AND length_penalty = 0.6 AND"
                                " max_sentences IS NULL AND n_sentences = 12 AND split = 'test' AND members IS NULL"
                                " AND precision = 'fp32'"
                                " AND seconds > 0 AND sentences_per_s > 0 AND checkpoint_id IS NOT NULL"), 1);
    cr_assert_eq(count_rows(db, "SELECT count(*) FROM evaluation WHERE beam = 1 AND length_penalty = 0.25 AND"
                                " max_sentences = 5 AND n_sentences = 5"), 1);
    cr_assert_eq(count_rows(db, "SELECT count(*) FROM translation t JOIN evaluation e ON e.id = t.evaluation_id"
                                " WHERE t.beam = e.beam AND t.checkpoint_id = e.checkpoint_id"), 17);
    cr_assert_eq(count_rows(db, "SELECT count(*) FROM metric m JOIN evaluation e ON e.id = m.evaluation_id"
                                " WHERE m.checkpoint_id = e.checkpoint_id AND m.step = e.step"), 4);
    free(tr), free(sc), free(hp), free(out);
    sbuf_free(&hyp);
    free(db);
    th_rmdir(dir);
    free(dir);
}

/* A damaged checkpoint (a tensor missing) is reported as what it is, not as "no trained model". */
Test(translate_cli, damaged_checkpoint_is_named)
{
    char *dir = th_tmpdir();
    char *db = make_db(dir, 1);
    sqlite3 *h;
    cr_assert_eq(sqlite3_open(db, &h), SQLITE_OK);
    cr_assert_eq(sqlite3_exec(h, "DELETE FROM tensor WHERE name = 'out.b'", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(h);
    char *err = NULL;
    cr_assert_eq(runf(NULL, &err, NULL, "translate '%s'", db), 1);
    cr_assert(strstr(err, "out.b") && !strstr(err, "no trained model"), "%s", err);
    free(err);
    cr_assert_eq(runf(NULL, &err, NULL, "eval '%s'", db), 1);
    cr_assert(strstr(err, "out.b") && !strstr(err, "no trained model"), "%s", err);
    free(err);
    free(db);
    th_rmdir(dir);
    free(dir);
}

/* A vocabulary with a token deleted is named, as a damaged checkpoint is: not "no trained model". */
Test(translate_cli, damaged_vocabulary_is_named)
{
    char *dir = th_tmpdir();
    char *db = make_db(dir, 1);
    sqlite3 *h;
    cr_assert_eq(sqlite3_open(db, &h), SQLITE_OK);
    cr_assert_eq(sqlite3_exec(h, "DELETE FROM token WHERE vocab_id = 1 AND id = (SELECT max(id) FROM token "
                                 "WHERE vocab_id = 1)", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(h);
    char *out = NULL, *err = NULL;
    cr_assert_eq(runf(&out, &err, NULL, "translate '%s'", db), 1);
    cr_assert(strstr(err, "seqlite: translate: vocab 1: merge ") && strstr(err, "is not a learned token") &&
                  !strstr(err, "no trained model"), "%s", err);
    cr_assert_str_eq(out, "");
    free(out), free(err);
    cr_assert_eq(runf(NULL, &err, NULL, "eval '%s'", db), 1);
    cr_assert(strstr(err, "is not a learned token"), "%s", err);
    free(err);
    free(db);
    th_rmdir(dir);
    free(dir);
}

/* A database file cut in half (a copy that stopped midway, a full disk) is reported as malformed by
 * translate, eval and info, with exit 1, and is left as it was. */
Test(translate_cli, truncated_database_is_malformed_and_unchanged)
{
    char *dir = th_tmpdir();
    char *db = make_db(dir, 1);
    struct stat sb;
    cr_assert_eq(stat(db, &sb), 0);
    cr_assert_gt(sb.st_size, 8192, "a database of a few pages");
    cr_assert_eq(truncate(db, sb.st_size / 2), 0);
    size_t n0, n1;
    char *before = th_read_file(db, &n0);
    static const char *const cmds[] = {"translate", "eval", "info"};
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++) {
        char *out = NULL, *err = NULL;
        cr_assert_eq(runf(&out, &err, NULL, "%s '%s'", cmds[i], db), 1, "%s: %s", cmds[i], err);
        cr_assert(strstr(err, "database disk image is malformed"), "%s: %s", cmds[i], err);
        cr_assert_str_eq(out, "", "%s", cmds[i]);
        free(out), free(err);
    }
    char *after = th_read_file(db, &n1);
    cr_assert(n0 == n1 && memcmp(before, after, n0) == 0, "the damaged file was changed");
    free(before), free(after);
    free(db);
    th_rmdir(dir);
    free(dir);
}

/* Empty standard input: nothing on stdout, exit 0, the summary counts 0 lines. */
Test(translate_cli, empty_input_writes_nothing)
{
    char *dir = th_tmpdir();
    char *db = make_db(dir, 1);
    char *out = NULL, *err = NULL;
    cr_assert_eq(runf(&out, &err, NULL, "translate '%s'", db), 0, "%s", err);
    cr_assert_str_eq(out, "");
    cr_assert(strstr(err, "translate: 0 lines (0 translated)"), "%s", err);
    free(out), free(err);
    free(db);
    th_rmdir(dir);
    free(dir);
}

/* Runs "seqlite ARGS" (stdin from in, or /dev/null) in a private mount namespace where the folder ro is
 * remounted read-only (and checked to be: a file cannot be made in it); stdout and stderr into malloc'd
 * strings. The exit status, or -1. */
static int run_read_only(const char *ro, const char *args, const char *in, char **out, char **err)
{
    char *dir = th_tmpdir(), cmd[4096];
    char *o = th_path(dir, "out"), *e = th_path(dir, "err");
    snprintf(cmd, sizeof cmd,
             "unshare -rm sh -c \"mount --bind '%s' '%s' && mount -o remount,ro,bind '%s' &&"
             " ! touch '%s/probe' 2>/dev/null && '%s' %s <'%s' >'%s' 2>'%s'\"",
             ro, ro, ro, ro, SEQLITE_BIN, args, in ? in : "/dev/null", o, e);
    int st = system(cmd);
    *out = th_read_file(o, NULL), *err = th_read_file(e, NULL);
    free(o), free(e);
    th_rmdir(dir);
    free(dir);
    return st != -1 && WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* A model on a read-only file system (a bind mount remounted read-only in a private mount namespace)
 * translates as it does where it is writable, and eval scores as it does there (saying that it stored
 * nothing), with no -shm to create and nothing written. */
Test(translate_cli, read_only_medium)
{
    if (system("unshare -rm sh -c 'mount --bind /tmp /tmp' >/dev/null 2>&1") != 0)
        cr_skip_test("no private mount namespaces here (unshare -rm)");
    char *dir = th_tmpdir();
    char *ro = th_path(dir, "ro");
    cr_assert_eq(mkdir(ro, 0755), 0);
    char *db = make_db(ro, 1);
    char *in = th_path(dir, "in.txt");
    const char lines[] = "der hund\ndie katze spielt\n";
    cr_assert_eq(th_write_file(in, lines, sizeof lines - 1), 0);
    char *expect = NULL, *got = NULL, *msg = NULL, args[4096];
    cr_assert_eq(runf(&expect, NULL, in, "translate '%s' --beam 2", db), 0);
    snprintf(args, sizeof args, "translate '%s' --beam 2", db);
    int st = run_read_only(ro, args, in, &got, &msg);
    cr_assert(st == 0, "exit %d: %s", st, msg ? msg : "");
    cr_assert_str_eq(got, expect);
    free(got), free(msg), free(expect);
    /* eval: the same scores as where it could store them, a note that it did not, the file untouched */
    char *expect_eval = NULL;
    cr_assert_eq(runf(&expect_eval, NULL, NULL, "eval '%s' --split train --limit 5 --beam 2", db), 0);
    size_t n0, n1;
    char *before = th_read_file(db, &n0);
    snprintf(args, sizeof args, "eval '%s' --split train --limit 5 --beam 2", db);
    st = run_read_only(ro, args, NULL, &got, &msg);
    cr_assert(st == 0, "eval exit %d: %s", st, msg ? msg : "");
    cr_assert_str_eq(got, expect_eval);
    cr_assert(strstr(msg, "read-only): the scores were not stored"), "%s", msg);
    char *after = th_read_file(db, &n1);
    cr_assert(n0 == n1 && memcmp(before, after, n0) == 0, "eval changed the read-only file");
    free(before), free(after), free(expect_eval);
    free(got), free(msg);
    free(in), free(db), free(ro);
    th_rmdir(dir);
    free(dir);
}

/* --unbuffered through two pipes: each answer arrives before the next line is written. */
Test(translate_cli, unbuffered_pipe)
{
    char *dir = th_tmpdir();
    char *db = make_db(dir, 1);
    /* the expected answers, from a buffered run */
    char *in = th_path(dir, "in.txt");
    const char lines[] = "der hund\n\ndie katze spielt\n";
    cr_assert_eq(th_write_file(in, lines, sizeof lines - 1), 0);
    char *expect = NULL;
    cr_assert_eq(runf(&expect, NULL, in, "translate '%s'", db), 0);
    int to[2], from[2];
    cr_assert_eq(pipe(to), 0);
    cr_assert_eq(pipe(from), 0);
    pid_t pid = fork();
    cr_assert_neq(pid, -1);
    if (pid == 0) {
        dup2(to[0], 0);
        dup2(from[1], 1);
        close(to[0]), close(to[1]), close(from[0]), close(from[1]);
        execl(SEQLITE_BIN, SEQLITE_BIN, "translate", db, "--unbuffered", (char *)NULL);
        _exit(127);
    }
    close(to[0]);
    close(from[1]);
    FILE *r = fdopen(from[0], "r");
    const char *send[] = {"der hund\n", "\n", "die katze spielt\n"};
    struct sbuf got, line;
    sbuf_init(&got);
    sbuf_init(&line);
    for (int i = 0; i < 3; i++) {
        cr_assert_eq(write(to[1], send[i], strlen(send[i])), (ssize_t)strlen(send[i]));
        /* the pipe stays open: a buffered reader would wait here for more input (and the test hang) */
        cr_assert_eq(sbuf_getline(&line, r), 1, "no answer to line %d", i + 1);
        sbuf_printf(&got, "%s\n", line.data ? line.data : "");
    }
    close(to[1]);
    cr_assert_eq(sbuf_getline(&line, r), 0);
    fclose(r);
    int st;
    cr_assert_eq(waitpid(pid, &st, 0), pid);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    cr_assert_str_eq(got.data, expect);
    sbuf_free(&got);
    sbuf_free(&line);
    free(expect);
    free(in);
    free(db);
    th_rmdir(dir);
    free(dir);
}

/* ---- learning end to end: import, vocab, train a tiny copy model, eval, translate, score ---- */

/* The number after " = " on the line of out that starts with name. */
static double metric_value(const char *out, const char *name)
{
    const char *p = strstr(out, name);
    cr_assert_not_null(p, "%s", out);
    p = strstr(p, " = ");
    cr_assert_not_null(p);
    return strtod(p + 3, NULL);
}

Test(learn_e2e, train_then_translate_eval_score, .timeout = 120)
{
    char *dir = th_tmpdir();
    cr_assert_eq(th_write_copy(dir, "train", 300, 11), 0);
    cr_assert_eq(th_write_copy(dir, "valid", 30, 12), 0);
    cr_assert_eq(th_write_copy(dir, "test", 30, 13), 0);
    char *db = th_path(dir, "copy.db");
    char *out = NULL, *err = NULL;
    cr_assert_eq(runf(NULL, &err, NULL, "import '%s' '%s/train.src' '%s/train.tgt'", db, dir, dir), 0, "%s", err);
    free(err);
    cr_assert_eq(runf(NULL, NULL, NULL, "import '%s' '%s/valid.src' '%s/valid.tgt' --split valid", db, dir, dir), 0);
    cr_assert_eq(runf(NULL, NULL, NULL, "import '%s' '%s/test.src' '%s/test.tgt' --split test", db, dir, dir), 0);
    cr_assert_eq(runf(NULL, NULL, NULL, "vocab '%s' --size 300 --min-count 1", db), 0);
    /* before training: no model */
    cr_assert_eq(runf(NULL, NULL, NULL, "eval '%s'", db), 1);
    cr_assert_eq(runf(NULL, &err, NULL,
                      "train '%s' --layers 1 --emb 32 --hidden 64 --steps 500 --batch 32 --lr 0.01 --dropout 0 "
                      "--valid-every 0 --save-every 0 --log-every 500",
                      db),
                 0, "%s", err);
    free(err);
    cr_assert_eq(runf(&out, &err, NULL, "eval '%s' --beam 5", db), 0, "%s", err);
    double bleu = metric_value(out, "BLEU|"), chrf = metric_value(out, "chrF2|");
    cr_assert_gt(chrf, 60.0, "%s", out); /* a random model scores below 20 */
    cr_assert_gt(bleu, 15.0, "%s", out);
    cr_assert_eq(count_rows(db, "SELECT count(*) FROM translation"), 30);
    cr_assert_eq(count_rows(db, "SELECT count(*) FROM metric WHERE split = 'test' AND name IN ('bleu','chrf')"), 2);
    free(err);
    /* translate the test sources (plus an empty and an invalid line) and score them: same numbers */
    char *src = th_path(dir, "test.src");
    size_t n;
    char *text = th_read_file(src, &n);
    struct sbuf in;
    sbuf_init(&in);
    sbuf_append(&in, text, n);
    sbuf_append(&in, "\n\xfe\xff\n", 4);
    char *inp = th_path(dir, "in.txt");
    cr_assert_eq(th_write_file(inp, in.data, in.len), 0);
    char *tr = NULL;
    cr_assert_eq(runf(&tr, &err, inp, "translate '%s' --batch 7", db), 1, "%s", err);
    cr_assert(strstr(err, "line 32: invalid UTF-8 at byte 1"), "%s", err);
    cr_assert_eq(count_lines(tr), 32);
    size_t tl = strlen(tr);
    cr_assert(tl >= 2 && tr[tl - 1] == '\n' && tr[tl - 2] == '\n'); /* lines 31 and 32 are empty */
    tr[tl - 2] = '\0';
    char *hp = th_path(dir, "hyp.txt");
    cr_assert_eq(th_write_file(hp, tr, strlen(tr)), 0);
    char *sc = NULL;
    cr_assert_eq(runf(&sc, NULL, hp, "score '%s/test.tgt'", dir), 0);
    cr_assert_str_eq(sc, out);
    free(sc), free(hp), free(tr), free(err), free(inp), free(text), free(src), free(out);
    sbuf_free(&in);
    free(db);
    th_rmdir(dir);
    free(dir);
}

/* A number from a one-row query (NAN for NULL). */
static double query_real(const char *db_path, const char *sql)
{
    sqlite3 *h;
    cr_assert_eq(sqlite3_open_v2(db_path, &h, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    sqlite3_stmt *st;
    cr_assert_eq(sqlite3_prepare_v2(h, sql, -1, &st, NULL), SQLITE_OK, "%s", sqlite3_errmsg(h));
    cr_assert_eq(sqlite3_step(st), SQLITE_ROW);
    double v = sqlite3_column_type(st, 0) == SQLITE_NULL ? NAN : sqlite3_column_double(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(h);
    return v;
}

/* Validation BLEU during training: metric rows at every validation, the checkpoint's valid_bleu,
 * the best checkpoint by BLEU, and the same score as `seqlite eval` gives for that checkpoint. */
Test(learn_e2e, validation_bleu_is_eval_bleu, .timeout = 120)
{
    char *dir = th_tmpdir();
    cr_assert_eq(th_write_copy(dir, "train", 300, 21), 0);
    cr_assert_eq(th_write_copy(dir, "valid", 40, 22), 0);
    char *db = th_path(dir, "vb.db");
    char *out = NULL, *err = NULL;
    cr_assert_eq(runf(NULL, NULL, NULL, "import '%s' '%s/train.src' '%s/train.tgt'", db, dir, dir), 0);
    cr_assert_eq(runf(NULL, NULL, NULL, "import '%s' '%s/valid.src' '%s/valid.tgt' --split valid", db, dir, dir), 0);
    cr_assert_eq(runf(NULL, NULL, NULL, "vocab '%s' --size 300 --min-count 1", db), 0);
    cr_assert_eq(runf(NULL, &err, NULL, "train '%s' --steps 10 --best-by bleu --valid-bleu 0", db), 2);
    cr_assert(strstr(err, "--valid-bleu"), "%s", err);
    free(err);
    cr_assert_eq(runf(NULL, &err, NULL, "train '%s' --steps 10 --best-by wer", db), 2);
    free(err);
    cr_assert_eq(runf(&out, &err, NULL,
                      "train '%s' --layers 1 --emb 32 --hidden 64 --steps 400 --batch 32 --lr 0.01 --dropout 0 "
                      "--valid-every 100 --save-every 100 --log-every 100 --keep 1 --valid-bleu 30 --best-by bleu",
                      db),
                 0, "%s", err);
    cr_assert(strstr(err, "step 400: valid ppl"), "%s", err);
    cr_assert(strstr(err, "on 30 sentences"), "%s", err);
    free(out), free(err);
    cr_assert_eq(count_rows(db, "SELECT count(*) FROM metric WHERE split = 'valid' AND name = 'bleu'"), 4);
    cr_assert_eq(count_rows(db, "SELECT count(*) FROM metric WHERE split = 'valid' AND name = 'chrf'"), 4);
    cr_assert_eq(count_rows(db, "SELECT count(*) FROM metric WHERE split = 'valid' AND name = 'bleu' AND signature "
                                "LIKE 'nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:seqlite-%'"),
                 4);
    /* every kept checkpoint holds the BLEU measured at its step */
    cr_assert_eq(count_rows(db, "SELECT count(*) FROM checkpoint c JOIN metric m ON m.run_id = c.run_id AND "
                                "m.step = c.step AND m.name = 'bleu' AND m.split = 'valid' WHERE c.valid_bleu = "
                                "m.value"),
                 count_rows(db, "SELECT count(*) FROM checkpoint"));
    /* the best is the first checkpoint of highest BLEU, and it is kept (keep 1 keeps only the newest else) */
    double best = query_real(db, "SELECT max(value) FROM metric WHERE name = 'bleu' AND split = 'valid'");
    int64_t best_step = count_rows(db, "SELECT min(step) FROM metric WHERE name = 'bleu' AND split = 'valid' AND "
                                       "value = (SELECT max(value) FROM metric WHERE name = 'bleu')");
    cr_assert_eq(count_rows(db, "SELECT step FROM checkpoint WHERE is_best = 1"), best_step);
    /* it learned something (untrained: 0; 13.5-13.7 with AVX2 / AVX-512 kernels, 15+ with SSE3) */
    cr_assert_gt(best, 8.0, "best valid BLEU %.1f", best);
    /* seqlite eval of the last checkpoint, greedy, on the same 30 pairs: the same BLEU and chrF */
    double last_bleu = query_real(db, "SELECT value FROM metric WHERE name = 'bleu' AND split = 'valid' AND step = 400");
    double last_chrf = query_real(db, "SELECT value FROM metric WHERE name = 'chrf' AND split = 'valid' AND step = 400");
    cr_assert_eq(runf(&out, &err, NULL, "eval '%s' --split valid --checkpoint last --beam 1 --limit 30", db), 0, "%s",
                 err);
    cr_assert_float_eq(metric_value(out, "BLEU|"), round(last_bleu * 10) / 10, 1e-9, "%s vs %f", out, last_bleu);
    cr_assert_float_eq(metric_value(out, "chrF2|"), round(last_chrf * 10) / 10, 1e-9, "%s vs %f", out, last_chrf);
    free(out), free(err);
    free(db);
    th_rmdir(dir);
    free(dir);
}

/* Ensembles and alignments on the command line: the same checkpoint twice is that checkpoint (text and
 * scores), members of different architectures decode together, names work in the list, checkpoints of
 * different vocabularies are refused (exit 1, nothing written), --alignment needs attention (exit 2) and
 * gives every line (every n-best line) a " ||| " alignment field. */
Test(translate_cli, ensembles_and_alignments)
{
    char *dir = th_tmpdir();
    char *db = make_db(dir, 1); /* checkpoint 1: plain */
    cr_assert_eq(add_ckpt(db, ATTN_GENERAL, 4), 2);
    char *in = th_path(dir, "in.txt");
    const char ok[] = "der hund läuft\n\ndie katze\nkind spielt mit ball\n";
    cr_assert_eq(th_write_file(in, ok, sizeof ok - 1), 0);
    char *o1 = NULL, *o2 = NULL, *err = NULL;
    cr_assert_eq(runf(&o1, NULL, in, "translate '%s' --checkpoint 1 --scores", db), 0);
    cr_assert_eq(runf(&o2, &err, in, "translate '%s' --checkpoint 1,1 --scores", db), 0, "%s", err);
    cr_assert_str_eq(o1, o2);
    free(o1), free(o2), free(err);
    cr_assert_eq(runf(&o1, &err, in, "translate '%s' --checkpoint 1,2 --beam 3", db), 0, "%s", err);
    cr_assert_eq(count_lines(o1), 4);
    free(o1), free(err);
    cr_assert_eq(runf(&o1, NULL, in, "translate '%s' --checkpoint best,last,1", db), 0);
    cr_assert_eq(count_lines(o1), 4);
    free(o1);
    cr_assert_eq(runf(NULL, &err, in, "translate '%s' --checkpoint 1,,2", db), 1);
    cr_assert(strstr(err, "empty checkpoint name"), "%s", err);
    free(err);
    /* alignments */
    cr_assert_eq(runf(&o1, &err, in, "translate '%s' --checkpoint 1 --alignment", db), 2);
    cr_assert(strstr(err, "--alignment needs a model with attention"), "%s", err);
    cr_assert_str_eq(o1, "");
    free(o1), free(err);
    cr_assert_eq(runf(&o1, NULL, in, "translate '%s' --checkpoint 2", db), 0);
    cr_assert_eq(runf(&o2, &err, in, "translate '%s' --checkpoint 2 --alignment", db), 0, "%s", err);
    free(err);
    const char *a = o1, *b = o2;
    for (int i = 0; i < 4; i++) { /* the same text, then " ||| " and the pairs */
        const char *nl = strchr(a, '\n'), *sep = strstr(b, " ||| ");
        cr_assert_not_null(sep);
        cr_assert_eq((size_t)(sep - b), (size_t)(nl - a), "line %d: %s", i + 1, o2);
        cr_assert_eq(strncmp(a, b, (size_t)(nl - a)), 0);
        b = strchr(sep, '\n') + 1;
        a = nl + 1;
    }
    free(o1), free(o2);
    cr_assert_eq(runf(&o1, &err, in, "translate '%s' --checkpoint 1,2 --alignment --beam 4 --nbest 2", db), 0,
                 "%s", err);
    free(err);
    cr_assert_eq(count_lines(o1), 2 + 1 + 2 + 2, "%s", o1);
    for (const char *l = o1; *l; l = strchr(l, '\n') + 1) { /* ID ||| hyp ||| alignment ||| score */
        int fields = 1;
        for (const char *p = l; *p != '\n'; p++)
            fields += strncmp(p, " ||| ", 5) == 0;
        cr_assert_eq(fields, 4, "%s", o1);
    }
    free(o1);
    /* a checkpoint of another vocabulary */
    cr_assert_eq(runf(NULL, &err, NULL, "vocab '%s' --size 310 --min-count 1", db), 0, "%s", err);
    free(err);
    cr_assert_eq(add_ckpt(db, ATTN_NONE, 5), 3);
    cr_assert_eq(runf(&o1, &err, in, "translate '%s' --checkpoint 1,3", db), 1);
    cr_assert(strstr(err, "checkpoints 1 and 3 use different vocabularies"), "%s", err);
    cr_assert_str_eq(o1, "");
    free(o1), free(err);
    /* eval with an ensemble: stored as one evaluation naming its members */
    int64_t rows = count_rows(db, "SELECT count(*) FROM metric");
    cr_assert_eq(runf(&o1, &err, NULL, "eval '%s' --checkpoint 1,1 --beam 2", db), 0, "%s", err);
    free(err);
    cr_assert_eq(count_rows(db, "SELECT count(*) FROM metric"), rows + 2);
    cr_assert_eq(count_rows(db, "SELECT count(*) FROM evaluation WHERE members = '[1,1]' AND checkpoint_id = 1"), 1);
    cr_assert_eq(runf(&o2, NULL, NULL, "eval '%s' --checkpoint 1 --beam 2", db), 0);
    cr_assert_str_eq(o1, o2);
    cr_assert_eq(count_rows(db, "SELECT count(*) FROM metric"), rows + 4);
    cr_assert_eq(count_rows(db, "SELECT count(*) FROM evaluation WHERE members IS NULL AND checkpoint_id = 1"), 1);
    cr_assert_eq(runf(NULL, &err, NULL, "eval '%s' --checkpoint 2,3", db), 1);
    cr_assert(strstr(err, "different vocabularies"), "%s", err);
    free(o1), free(o2), free(err);
    free(in);
    free(db);
    th_rmdir(dir);
    free(dir);
}

/* translate and eval use the best checkpoint of the newest run that validated (a newer run that has
 * not validated yet does not take over), --run chooses another run, and stderr names the model. */
Test(translate_cli, default_model_is_the_newest_validated_run_and_run_chooses)
{
    char *dir = th_tmpdir();
    char *db = make_db(dir, 1);
    sqlite3 *h;
    cr_assert_eq(sqlite3_open(db, &h), SQLITE_OK);
    cr_assert_eq(sqlite3_exec(h, "UPDATE checkpoint SET is_best = 1, valid_ppl = 50", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(h);
    int64_t second = add_ckpt(db, ATTN_NONE, 4); /* a new run, not validated */
    char *in = th_path(dir, "in.txt");
    cr_assert_eq(th_write_file(in, "der hund\n", 9), 0);
    char *out = NULL, *err = NULL;
    cr_assert_eq(runf(&out, &err, in, "translate '%s'", db), 0, "%s", err);
    cr_assert(strstr(err, "checkpoint 1 (run 1, step"), "%s", err);
    free(out), free(err);
    cr_assert_eq(runf(&out, &err, in, "translate '%s' --run 2", db), 0, "%s", err);
    char want[64];
    snprintf(want, sizeof want, "checkpoint %lld (run 2, step", (long long)second);
    cr_assert(strstr(err, want), "%s", err);
    free(out), free(err);
    cr_assert_eq(runf(&out, &err, NULL, "eval '%s' --run 2 --beam 1", db), 0, "%s", err);
    cr_assert(strstr(err, want), "%s", err);
    free(out), free(err);
    cr_assert_eq(runf(&out, &err, in, "translate '%s' --run 9", db), 1);
    cr_assert(strstr(err, "no run '9'"), "%s", err);
    free(out), free(err);
    free(in), free(db);
    th_rmdir(dir);
    free(dir);
}

/* One 1 MB line is not decoded (an empty output line, a message naming it, exit 1): memory stays flat,
 * and the lines around it are translated as they are alone. */
Test(translate_cli, a_huge_line_is_refused_with_flat_memory)
{
    char *dir = th_tmpdir();
    char *db = make_db(dir, 1);
    char *in = th_path(dir, "in.txt"), *out = th_path(dir, "out.txt"), *err = th_path(dir, "err.txt");
    FILE *f = fopen(in, "w");
    cr_assert(f);
    fputs("der hund\n", f);
    for (int i = 0; i < (1 << 20) / 8; i++)
        fputs("wort aa ", f);
    fputs("\ndie katze\n", f);
    fclose(f);
    char *alone = th_path(dir, "alone.txt");
    cr_assert_eq(th_write_file(alone, "der hund\n\ndie katze\n", 20), 0);
    char *expect = NULL;
    cr_assert_eq(runf(&expect, NULL, alone, "translate '%s'", db), 0);
    pid_t pid = fork();
    cr_assert(pid >= 0);
    if (pid == 0) {
        if (!freopen(in, "r", stdin) || !freopen(out, "w", stdout) || !freopen(err, "w", stderr))
            _exit(126);
        execl(SEQLITE_BIN, SEQLITE_BIN, "translate", db, (char *)NULL);
        _exit(127);
    }
    int st;
    struct rusage ru;
    cr_assert_eq(wait4(pid, &st, 0, &ru), pid);
    char *got = th_read_file(out, NULL), *msg = th_read_file(err, NULL);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 1, "%d: %s", st, msg);
    cr_assert(strstr(msg, "line 2: longer than 16384 bytes"), "%s", msg);
    cr_assert_str_eq(got, expect);
    cr_assert_lt(ru.ru_maxrss, 200 * 1024, "peak RSS %ld KiB", ru.ru_maxrss);
    free(got), free(msg), free(expect), free(alone), free(in), free(out), free(err), free(db);
    th_rmdir(dir);
    free(dir);
}
