/* tests/test_eval.c: eval/ (13a tokenizer, Python lowercase, BLEU, chrF, output formats) against
 * sacreBLEU 2.x: every applicable vector of shared/docs/metrics.md (sacreBLEU's own tests, README
 * and the derived single-reference values) to the decimals given, plus edge cases; and the
 * `seqlite score` command line (suite score_cli). Not covered: tokenize='intl' (needs Unicode
 * categories; eval/ implements 13a, none and char only). */
#include <criterion/criterion.h>

#include "eval/bleu.h"
#include "eval/chrf.h"
#include "eval/evtext.h"
#include "eval/metric.h"
#include "eval/tok13a.h"
#include "tests/helpers.h"
#include "util/err.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- helpers */

#define MAXSEG 8
#define MAXREF 4

/* Corpus BLEU of nseg hypotheses against nref reference *streams* (sacreBLEU's layout). */
static struct bleu_score bleu_corpus(const struct bleu_opts *o, const char *const *hyps, size_t nseg,
                                     const char *const (*streams)[MAXSEG], size_t nref)
{
    struct bleu *b = bleu_create(o);
    cr_assert(b, "%s", sl_errmsg());
    for (size_t i = 0; i < nseg; i++) {
        const char *refs[MAXREF];
        for (size_t r = 0; r < nref; r++)
            refs[r] = streams[r][i];
        int rc = bleu_add(b, hyps[i], strlen(hyps[i]), refs, NULL, nref);
        cr_assert_eq(rc, 0, "%s", sl_errmsg());
    }
    struct bleu_score s;
    bleu_score(b, &s);
    bleu_free(b);
    return s;
}

static struct bleu_score bleu_one(const struct bleu_opts *o, const char *hyp, const char *ref)
{
    const char *const streams[1][MAXSEG] = {{ref}};
    return bleu_corpus(o, &hyp, 1, streams, 1);
}

static double chrf_corpus(const struct chrf_opts *o, const char *const *hyps, size_t nseg,
                          const char *const (*streams)[MAXSEG], size_t nref)
{
    struct chrf *c = chrf_create(o);
    cr_assert(c, "%s", sl_errmsg());
    for (size_t i = 0; i < nseg; i++) {
        const char *refs[MAXREF];
        for (size_t r = 0; r < nref; r++)
            refs[r] = streams[r][i];
        int rc = chrf_add(c, hyps[i], strlen(hyps[i]), refs, NULL, nref);
        cr_assert_eq(rc, 0, "%s", sl_errmsg());
    }
    double s = chrf_score(c);
    chrf_free(c);
    return s;
}

static double chrf_one(const struct chrf_opts *o, const char *hyp, const char *ref)
{
    const char *const streams[1][MAXSEG] = {{ref}};
    return chrf_corpus(o, &hyp, 1, streams, 1);
}

/* the README / test_bleu.py example: 3 segments, 2 reference streams */
static const char *const dog_hyps[3] = {"The dog bit the man.", "It wasn't surprising.",
                                        "The man had just bitten him."};
static const char *const dog_refs[2][MAXSEG] = {
    {"The dog bit the man.", "It was not unexpected.", "The man bit him first."},
    {"The dog had bit the man.", "No one was surprised.", "The man had bitten the dog."}};

#define EPS8 1e-8

static void check_tok(const char *in, const char *want)
{
    struct tok13a t;
    struct sbuf out;
    tok13a_init(&t);
    sbuf_init(&out);
    cr_assert_eq(tok13a_tokenize(&t, in, strlen(in), &out), 0);
    cr_assert_str_eq(out.data, want, "13a('%s')", in);
    tok13a_free(&t);
    sbuf_free(&out);
}

/* ---------------------------------------------------------------- 13a tokenizer */

Test(tok13a, metrics_md_examples)
{
    check_tok("It wasn't surprising.", "It wasn't surprising .");
    check_tok("Price: $1,000.50 (approx.) 3-4 &amp; \"x\"", "Price : $ 1,000.50 ( approx . ) 3 - 4 & \" x \"");
    check_tok("e.g. U.S.A., 10.5% of 1,000", "e . g . U . S . A . , 10.5 % of 1,000");
    check_tok("Hello-world -- end.", "Hello-world -- end .");
}

Test(tok13a, language_independent_part)
{
    check_tok("a<skipped>b", "ab");
    check_tok("line-\nbreak", "linebreak");
    check_tok("two\nlines", "two lines");
    /* the entity passes run one after another: &amp;lt; becomes &lt; and then < */
    check_tok("&amp;lt; &quot;q&quot; &gt;", "< \" q \" >");
    check_tok("&amp;quot;", "& quot ;"); /* &quot; was replaced before &amp; */
    check_tok("", "");
    check_tok("   \t ", "");
}

Test(tok13a, non_overlapping_regex_semantics)
{
    /* rule 2 consumes "a." so the following "." pairs with the next non-digit only once */
    check_tok("a..b", "a . . b");
    check_tok("1.5.6", "1.5.6");
    check_tok("x,1", "x , 1");
    check_tok("1,x", "1 , x");
    check_tok("3-4-5", "3 - 4 - 5");
    check_tok("a-1", "a-1");
    check_tok("1--2", "1 - -2");
    check_tok("don't-stop", "don't-stop");
    /* non-ASCII is never split; U+00A0 is whitespace for Python's split() */
    check_tok("naïve café. Ünïcode,x", "naïve café . Ünïcode , x");
    check_tok("a\xc2\xa0" "b", "a b");
    check_tok("x{y}|z~w[v]^u_t`s", "x { y } | z ~ w [ v ] ^ u _ t ` s");
}

/* ---------------------------------------------------------------- text helpers */

static void check_lower(const char *in, const char *want)
{
    struct sbuf out;
    sbuf_init(&out);
    cr_assert_eq(evtext_lower(in, strlen(in), &out), 0);
    cr_assert_str_eq(out.data, want, "lower('%s')", in);
    sbuf_free(&out);
}

Test(evtext, python_lowercase)
{
    check_lower("Hello WORLD 123", "hello world 123");
    check_lower("ÀÉÎÕÜ Ÿ Ǆ Ǉ", "àéîõü ÿ ǆ ǉ");
    check_lower("ПРИВЕТ Ёж", "привет ёж");
    check_lower("ẞ Ａ", "ß ａ");
    check_lower("İ", "i\xcc\x87"); /* one-to-many: i + U+0307 */
    /* Final_Sigma: final after a cased letter and before no cased letter */
    check_lower("ΟΔΟΣ", "οδος");
    check_lower("ΟΔΟΣ ΣΑ Σ", "οδος σα σ");
    check_lower("ΑΣ'Β", "ασ'β"); /* apostrophe is case-ignorable: a cased letter follows, not final */
    check_lower("ΑΣ'", "ας'");
}

Test(evtext, validation_whitespace_rstrip)
{
    size_t bad = 0;
    cr_assert(evtext_valid("ok é €", 9, &bad));
    cr_assert(!evtext_valid("ab\xff", 3, &bad));
    cr_assert_eq(bad, 2);
    cr_assert(!evtext_valid("\xc0\xaf", 2, &bad)); /* overlong */
    cr_assert(!evtext_valid("\xed\xa0\x80", 3, &bad)); /* surrogate */
    cr_assert(!evtext_valid("\xf4\x90\x80\x80", 4, &bad)); /* > U+10FFFF */
    cr_assert(!evtext_valid("\xe2\x82", 2, &bad)); /* truncated */
    cr_assert(evtext_is_space(0x1C) && evtext_is_space(0x3000) && evtext_is_space(0x85));
    cr_assert(!evtext_is_space(0x200B) && !evtext_is_space('a'));
    const char *s = "abc \xe3\x80\x80\t";
    cr_assert_eq(evtext_rstrip(s, strlen(s)), 3);
}

/* ---------------------------------------------------------------- BLEU */

Test(bleu, readme_two_references)
{
    struct bleu_opts o;
    bleu_opts_default(&o);
    struct bleu_score s = bleu_corpus(&o, dog_hyps, 3, dog_refs, 2);
    cr_assert_float_eq(s.score, 48.530827, EPS8, "got %.10f", s.score);
    cr_assert_eq(s.sys_len, 17);
    cr_assert_eq(s.ref_len, 18);
    struct sbuf v;
    sbuf_init(&v);
    cr_assert_eq(bleu_verbose(&s, &v), 0);
    cr_assert_str_eq(v.data, "82.4/50.0/45.5/37.5 (BP = 0.943 ratio = 0.944 hyp_len = 17 ref_len = 18)");
    sbuf_free(&v);
    o.smooth = BLEU_SMOOTH_NONE; /* every order has matches: same score */
    s = bleu_corpus(&o, dog_hyps, 3, dog_refs, 2);
    cr_assert_float_eq(s.score, 48.530827, EPS8);
    bleu_opts_default(&o);
    o.tok = BLEU_TOK_NONE;
    s = bleu_corpus(&o, dog_hyps, 3, dog_refs, 2);
    cr_assert_float_eq(s.score, 49.1919566, EPS8, "got %.10f", s.score);
}

Test(bleu, empty_hypotheses_are_kept)
{
    struct bleu_opts o;
    bleu_opts_default(&o);
    const char *const empty[3] = {"", "", ""};
    struct bleu_score s = bleu_corpus(&o, empty, 3, dog_refs, 2);
    cr_assert_eq(s.score, 0.0);
    cr_assert_eq(s.sys_len, 0);
    cr_assert_eq(s.ref_len, 6 + 5 + 6); /* the closest (shortest) reference of each segment */
    cr_assert_eq(s.bp, 0.0);
}

Test(bleu, max_ngram_order)
{
    static const char *const want[6] = {"77.65", "60.50", "53.93", "48.53", "46.14", "43.28"};
    for (size_t n = 1; n <= 6; n++) {
        struct bleu_opts o;
        bleu_opts_default(&o);
        o.max_order = n;
        struct bleu_score s = bleu_corpus(&o, dog_hyps, 3, dog_refs, 2);
        char got[32];
        snprintf(got, sizeof got, "%.2f", s.score);
        cr_assert_str_eq(got, want[n - 1], "order %zu", n);
    }
}

Test(bleu, compute_from_statistics)
{
    struct bleu_opts o;
    bleu_opts_default(&o);
    o.smooth = BLEU_SMOOTH_NONE;
    struct bleu_stats st;
    bleu_stats_zero(&st);
    const uint64_t c[4] = {9, 7, 5, 3}, t[4] = {10, 8, 6, 4};
    for (int k = 0; k < 4; k++)
        st.correct[k] = c[k], st.total[k] = t[k];
    st.sys_len = st.ref_len = 11;
    struct bleu_score s;
    bleu_compute(&st, &o, &s);
    cr_assert_float_eq(s.score / 100, 0.8375922397, EPS8);
}

Test(bleu, degenerate_statistics_floor)
{
    /* test_degenerate_statistics: {correct, total, sys_len, ref_len, floor value} -> exactly 0 */
    static const struct {
        uint64_t c[4], t[4], sys, ref;
        double floor;
    } cases[] = {
        {{0, 0, 0, 0}, {4, 4, 2, 1}, 0, 1, 0.0},   {{0, 0, 0, 0}, {10, 11, 12, 0}, 14, 10, 0.0},
        {{0, 0, 0, 0}, {0, 0, 0, 0}, 0, 0, 0.0},   {{6, 5, 4, 0}, {6, 5, 4, 3}, 6, 6, 0.0},
        {{0, 0, 0, 0}, {0, 0, 0, 0}, 0, 0, 0.1},   {{0, 0, 0, 0}, {0, 0, 0, 0}, 1, 5, 0.01},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct bleu_opts o;
        bleu_opts_default(&o);
        o.smooth = BLEU_SMOOTH_FLOOR;
        o.smooth_value = cases[i].floor;
        struct bleu_stats st;
        bleu_stats_zero(&st);
        for (int k = 0; k < 4; k++)
            st.correct[k] = cases[i].c[k], st.total[k] = cases[i].t[k];
        st.sys_len = cases[i].sys;
        st.ref_len = cases[i].ref;
        struct bleu_score s;
        bleu_compute(&st, &o, &s);
        cr_assert_eq(s.score, 0.0, "case %zu: %g", i, s.score);
    }
}

/* sacrebleu.raw_corpus_bleu(): no tokenisation, floor smoothing, effective order */
static struct bleu_opts raw_opts(double floor)
{
    struct bleu_opts o;
    bleu_opts_default(&o);
    o.tok = BLEU_TOK_NONE;
    o.smooth = BLEU_SMOOTH_FLOOR;
    o.smooth_value = floor;
    o.effective_order = 1;
    return o;
}

Test(bleu, raw_corpus_bleu_vectors)
{
    struct bleu_opts o = raw_opts(0.01);
    const char *const h2[2] = {"this is a test", "another test"};
    const char *const r2[1][MAXSEG] = {{"ref1", "ref2"}};
    cr_assert_eq(bleu_corpus(&o, h2, 2, r2, 1).score, 0.0); /* #141 */
    cr_assert_float_eq(bleu_one(&o, "this is a test", "this is a test").score / 100, 1.0, EPS8);
    cr_assert_float_eq(bleu_one(&o, "this is a fest", "this is a test").score / 100, 0.223606797749979, EPS8);
    /* effective order */
    cr_assert_float_eq(bleu_one(&o, "test", "a test").score / 100, 0.3678794411714425, EPS8);
    cr_assert_float_eq(bleu_one(&o, "a test", "a test").score / 100, 1.0, EPS8);
    cr_assert_float_eq(bleu_one(&o, "a little test", "a test").score / 100, 0.03218297948685433, EPS8);
}

Test(bleu, raw_statistics_and_floor_offset)
{
    const char *h = "am I am a character sequence", *r = "I am a symbol string sequence a a";
    struct bleu_opts o = raw_opts(0.01);
    struct bleu *b = bleu_create(&o);
    cr_assert(b);
    struct bleu_stats st;
    cr_assert_eq(bleu_segment(b, h, strlen(h), &r, NULL, 1, &st), 0);
    const uint64_t c[4] = {4, 2, 1, 0}, t[4] = {6, 5, 4, 3};
    for (int k = 0; k < 4; k++) {
        cr_assert_eq(st.correct[k], c[k], "correct[%d] = %llu", k, (unsigned long long)st.correct[k]);
        cr_assert_eq(st.total[k], t[k]);
    }
    bleu_free(b);
    o = raw_opts(0.0);
    cr_assert_eq(bleu_one(&o, h, r).score, 0.0);
    o = raw_opts(-1.0); /* the method's default value, 0.1 */
    cr_assert_float_eq(bleu_one(&o, h, r).score / 100, 0.1555722182, EPS8);
    o = raw_opts(0.1);
    cr_assert_float_eq(bleu_one(&o, h, r).score / 100, 0.1555722182, EPS8);
}

/* test_sentence_bleu.py: sentence BLEU (effective order) of a Romanian pair, tolerance 1e-3 */
static double ro_sentence(enum bleu_smooth m, double value, int lc, enum bleu_tok tok)
{
    struct bleu_opts o;
    bleu_opts_default(&o);
    o.smooth = m;
    o.smooth_value = value;
    o.lowercase = lc;
    o.tok = tok;
    o.effective_order = 1;
    return bleu_one(&o, "Producția de zahăr primă va fi exprimată în ceea ce privește zahărul alb;",
                    "producţia de zahăr brut se exprimă în zahăr alb;")
        .score;
}

Test(bleu, sentence_bleu_vectors)
{
    cr_assert_float_eq(ro_sentence(BLEU_SMOOTH_EXP, -1, 0, BLEU_TOK_13A), 8.493, 1e-3);
    cr_assert_float_eq(ro_sentence(BLEU_SMOOTH_NONE, -1, 0, BLEU_TOK_13A), 0.0, 1e-3);
    cr_assert_float_eq(ro_sentence(BLEU_SMOOTH_FLOOR, -1, 0, BLEU_TOK_13A), 4.51688, 1e-3);
    cr_assert_float_eq(ro_sentence(BLEU_SMOOTH_FLOOR, 0.1, 0, BLEU_TOK_13A), 4.51688, 1e-3);
    cr_assert_float_eq(ro_sentence(BLEU_SMOOTH_FLOOR, 0.5, 0, BLEU_TOK_13A), 10.10, 1e-3);
    cr_assert_float_eq(ro_sentence(BLEU_SMOOTH_ADDK, -1, 0, BLEU_TOK_13A), 14.882, 1e-3);
    cr_assert_float_eq(ro_sentence(BLEU_SMOOTH_ADDK, 1, 0, BLEU_TOK_13A), 14.882, 1e-3);
    cr_assert_float_eq(ro_sentence(BLEU_SMOOTH_ADDK, 2, 0, BLEU_TOK_13A), 21.389, 1e-3);
    cr_assert_float_eq(ro_sentence(BLEU_SMOOTH_EXP, -1, 0, BLEU_TOK_NONE), 7.347, 1e-3);
    cr_assert_float_eq(ro_sentence(BLEU_SMOOTH_EXP, -1, 0, BLEU_TOK_CHAR), 40.8759, 1e-3);
    cr_assert_float_eq(ro_sentence(BLEU_SMOOTH_EXP, -1, 1, BLEU_TOK_CHAR), 42.0267, 1e-3);
}

Test(bleu, sentence_bleu_zero_for_every_smoothing)
{
    const enum bleu_smooth m[4] = {BLEU_SMOOTH_EXP, BLEU_SMOOTH_NONE, BLEU_SMOOTH_FLOOR, BLEU_SMOOTH_ADDK};
    for (int i = 0; i < 4; i++) {
        struct bleu_opts o;
        bleu_opts_default(&o);
        o.smooth = m[i];
        o.effective_order = 1;
        cr_assert_eq(bleu_one(&o, "this is a cat", "okay thanks").score, 0.0, "smoothing %d", i);
    }
}

Test(bleu, derived_single_reference_vectors)
{
    struct bleu_opts o;
    bleu_opts_default(&o);
    const char *const s1[1][MAXSEG] = {{dog_refs[0][0], dog_refs[0][1], dog_refs[0][2]}};
    const char *const s2[1][MAXSEG] = {{dog_refs[1][0], dog_refs[1][1], dog_refs[1][2]}};
    struct bleu *b = bleu_create(&o);
    for (int i = 0; i < 3; i++)
        cr_assert_eq(bleu_add(b, dog_hyps[i], strlen(dog_hyps[i]), &s1[0][i], NULL, 1), 0);
    const struct bleu_stats *st = bleu_stats(b);
    const uint64_t c1[4] = {12, 6, 4, 3}, t1[4] = {17, 14, 11, 8};
    for (int k = 0; k < 4; k++)
        cr_assert(st->correct[k] == c1[k] && st->total[k] == t1[k], "order %d", k + 1);
    struct bleu_score s;
    bleu_score(b, &s);
    cr_assert_float_eq(s.score, 45.0675063211, 1e-9);
    cr_assert(s.bp == 1.0 && s.sys_len == 17 && s.ref_len == 17);
    bleu_free(b);

    s = bleu_corpus(&o, dog_hyps, 3, s2, 1);
    cr_assert_float_eq(s.score, 28.3305536644, 1e-9);
    cr_assert_float_eq(s.bp, 0.8890097654, 1e-9);
    cr_assert_eq(s.ref_len, 19);

    s = bleu_one(&o, "the the the the", "the cat");
    cr_assert_float_eq(s.score, 15.9735776062, 1e-9);
    struct sbuf v;
    sbuf_init(&v);
    bleu_verbose(&s, &v);
    cr_assert(strncmp(v.data, "25.0/16.7/12.5/12.5 ", 20) == 0, "got %s", v.data);
    sbuf_free(&v);
    o.smooth = BLEU_SMOOTH_NONE;
    cr_assert_eq(bleu_one(&o, "the the the the", "the cat").score, 0.0);
    bleu_opts_default(&o);
    b = bleu_create(&o);
    const char *r = "Hello world!";
    struct bleu_stats seg;
    cr_assert_eq(bleu_segment(b, "Hello, world!", 13, &r, NULL, 1, &seg), 0);
    cr_assert(seg.correct[0] == 3 && seg.correct[1] == 1 && seg.correct[2] == 0 && seg.correct[3] == 0);
    bleu_free(b);
    cr_assert_float_eq(bleu_one(&o, "Hello, world!", "Hello world!").score, 35.3553390593, 1e-9);
}

Test(bleu, signatures_and_formats)
{
    struct bleu_opts o;
    bleu_opts_default(&o);
    struct bleu *b = bleu_create(&o);
    for (int i = 0; i < 3; i++) {
        const char *refs[2] = {dog_refs[0][i], dog_refs[1][i]};
        cr_assert_eq(bleu_add(b, dog_hyps[i], strlen(dog_hyps[i]), refs, NULL, 2), 0);
    }
    struct metric_result r;
    metric_result_init(&r);
    cr_assert_eq(bleu_report(b, &r), 0);
    struct sbuf t;
    sbuf_init(&t);
    cr_assert_eq(metric_format_text(&r, 1, &t), 0);
    cr_assert_str_eq(t.data, "BLEU|nrefs:2|case:mixed|eff:no|tok:13a|smooth:exp|version:seqlite-" SEQLITE_VERSION
                             " = 48.5 82.4/50.0/45.5/37.5 (BP = 0.943 ratio = 0.944 hyp_len = 17 ref_len = 18)");
    sbuf_reset(&t);
    cr_assert_eq(metric_format_json(&r, 2, &t), 0);
    cr_assert_str_eq(t.data, "{\n \"name\": \"BLEU\",\n \"score\": 48.53,\n \"signature\": \"nrefs:2|case:mixed|"
                             "eff:no|tok:13a|smooth:exp|version:seqlite-" SEQLITE_VERSION "\",\n"
                             " \"verbose_score\": \"82.4/50.0/45.5/37.5 (BP = 0.943 ratio = 0.944 hyp_len = 17 "
                             "ref_len = 18)\",\n \"nrefs\": \"2\",\n \"case\": \"mixed\",\n \"eff\": \"no\",\n"
                             " \"tok\": \"13a\",\n \"smooth\": \"exp\",\n \"version\": \"seqlite-" SEQLITE_VERSION
                             "\"\n}");
    bleu_free(b);

    /* variable number of references, lowercase, floor value */
    o.lowercase = 1;
    o.smooth = BLEU_SMOOTH_FLOOR;
    b = bleu_create(&o);
    const char *refs[2] = {"a b", ""};
    cr_assert_eq(bleu_add(b, "A B", 3, refs, NULL, 2), 0);
    refs[1] = "a c";
    cr_assert_eq(bleu_add(b, "A C", 3, refs, NULL, 2), 0);
    sbuf_reset(&t);
    cr_assert_eq(bleu_signature(&o, bleu_stats(b), &t), 0);
    cr_assert_str_eq(t.data, "nrefs:var|case:lc|eff:no|tok:13a|smooth:floor[0.10]|version:seqlite-" SEQLITE_VERSION);
    bleu_free(b);
    o.smooth = BLEU_SMOOTH_ADDK;
    o.lowercase = 0;
    o.effective_order = 1;
    struct bleu_stats one = {.nsegs = 1, .nrefs_min = 1, .nrefs_max = 1};
    sbuf_reset(&t);
    cr_assert_eq(bleu_signature(&o, &one, &t), 0);
    cr_assert_str_eq(t.data, "nrefs:1|case:mixed|eff:yes|tok:13a|smooth:add-k[1.00]|version:seqlite-" SEQLITE_VERSION);
    metric_result_free(&r);
    sbuf_free(&t);
}

Test(bleu, edge_cases_and_bad_input)
{
    struct bleu_opts o;
    bleu_opts_default(&o);
    struct bleu *b = bleu_create(&o);
    struct bleu_stats seg;
    const char *refs[2] = {"", ""};
    cr_assert_eq(bleu_segment(b, "x", 1, refs, NULL, 2, &seg), SL_EINVAL);
    cr_assert(strstr(sl_errmsg(), "no non-empty reference"));
    refs[0] = "ok";
    cr_assert_eq(bleu_segment(b, "bad \xff", 5, refs, NULL, 1, &seg), SL_EUTF8);
    cr_assert(strstr(sl_errmsg(), "hypothesis: invalid UTF-8 at byte 5"), "%s", sl_errmsg());
    refs[0] = "\xc3";
    cr_assert_eq(bleu_segment(b, "x", 1, refs, NULL, 1, &seg), SL_EUTF8);
    cr_assert(strstr(sl_errmsg(), "reference 1"));
    /* nothing matches: 0, whatever the smoothing; an empty corpus scores 0 */
    struct bleu_score s;
    bleu_score(b, &s);
    cr_assert(s.score == 0.0 && s.ratio == 0.0 && s.bp == 1.0);
    refs[0] = "completely different words here";
    cr_assert_eq(bleu_add(b, "nothing in common", 17, refs, NULL, 1), 0);
    bleu_score(b, &s);
    cr_assert_eq(s.score, 0.0);
    cr_assert_eq(s.precisions[0], 0.0);
    /* trailing whitespace is ignored, embedded NULs are characters */
    bleu_reset(b);
    refs[0] = "a b c d";
    cr_assert_eq(bleu_add(b, "a b c d \t\xe3\x80\x80", 12, refs, NULL, 1), 0);
    bleu_score(b, &s);
    cr_assert_float_eq(s.score, 100.0, 1e-12);
    cr_assert_eq(bleu_create(&(struct bleu_opts){.max_order = 0}), NULL);
    bleu_free(b);
    bleu_free(NULL);
}

/* ---------------------------------------------------------------- chrF */

static struct chrf_opts chrf3(int eps, int whitespace)
{
    struct chrf_opts o;
    chrf_opts_default(&o);
    o.beta = 3;
    o.eps_smoothing = eps;
    o.whitespace = whitespace;
    return o;
}

Test(chrf, eps_smoothing_beta3_vectors)
{
    struct chrf_opts o = chrf3(1, 0);
    static const struct {
        const char *h, *r;
        double want;
    } v[] = {
        {"abcdefg", "hijklmnop", 0.0},
        {"a", "b", 0.0},
        {"", "b", 0.0},
        {"", "ref", 0.0},
        {"", "reference", 0.0},
        {"aa", "ab", 8.3333},
        {"a", "a", 16.6667},
        {"a b c", "a b c", 50.0},
        {"a b c", "abc", 50.0},
        {" risk assessment must be made of those who are qualified and expertise in the sector - these are "
         "the scientists .",
         "risk assessment has to be undertaken by those who are qualified and expert in that area - that is "
         "the scientists .",
         63.361730},
        {" Die    Beziehung zwischen  Obama und Netanjahu ist nicht gerade  freundlich. ",
         "Das Verhältnis zwischen Obama und Netanyahu ist nicht gerade freundschaftlich.", 64.1302698},
        {"Niemand hat die Absicht, eine Mauer zu errichten", "Niemand hat die Absicht, eine Mauer zu errichten",
         100.0},
    };
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        double s = chrf_one(&o, v[i].h, v[i].r);
        cr_assert_float_eq(s, v[i].want, 1e-4, "case %zu: %.7f", i, s);
    }
    const char *const h[2] = {"a", "b"};
    const char *const r[1][MAXSEG] = {{"a", "c"}};
    cr_assert_float_eq(chrf_corpus(&o, h, 2, r, 1), 8.3333, 1e-4);
}

Test(chrf, effective_order_beta3_vectors)
{
    struct chrf_opts o = chrf3(0, 0);
    cr_assert_float_eq(chrf_one(&o, "a", "a"), 100.0, 1e-4);
    cr_assert_float_eq(chrf_one(&o, "", "reference"), 0.0, 1e-4);
    cr_assert_float_eq(chrf_one(&o, "a b c", "a b c"), 100.0, 1e-4);
    cr_assert_float_eq(chrf_one(&o, "a b c", "abc"), 100.0, 1e-4);
    cr_assert_float_eq(chrf_one(&o, "", "c"), 0.0, 1e-4);
    cr_assert_float_eq(chrf_one(&o, "aa", "ab"), 25.0, 1e-4);
    const char *const h[2] = {"a", "b"};
    const char *const r[1][MAXSEG] = {{"a", "c"}};
    cr_assert_float_eq(chrf_corpus(&o, h, 2, r, 1), 50.0, 1e-4);
}

Test(chrf, keep_whitespace_vectors)
{
    struct chrf_opts o = chrf3(0, 1);
    cr_assert_float_eq(chrf_one(&o, "Die Beziehung zwischen Obama und Netanjahu ist nicht gerade freundlich.",
                                "Das Verhältnis zwischen Obama und Netanyahu ist nicht gerade freundschaftlich."),
                       67.3481606, 1e-4);
    cr_assert_float_eq(
        chrf_one(&o,
                 "risk assessment must be made of those who are qualified and expertise in the sector - these are "
                 "the scientists .",
                 "risk assessment has to be undertaken by those who are qualified and expert in that area - that "
                 "is the scientists ."),
        65.2414427, 1e-4);
}

Test(chrf, sentence_chrf2_eps_czech)
{
    struct chrf_opts o;
    chrf_opts_default(&o);
    o.eps_smoothing = 1;
    cr_assert_float_eq(chrf_one(&o, "Co nás nejvíc trápí, protože lékaři si vybírají, kdo bude žít a kdo zemře.",
                                "Nejvíce smutní jsme z toho, že musíme rozhodovat o tom, kdo bude žít a kdo zemře."),
                       39.14078509, 1e-4);
    cr_assert_float_eq(chrf_one(&o, "Nebo prostě nemají vybavení, které by jim pomohlo, uvedli lékaři.",
                                "A někdy nemáme ani potřebný materiál, abychom jim pomohli, popsali lékaři."),
                       31.22557079, 1e-4);
    cr_assert_float_eq(
        chrf_one(&o, "Lapali po dechu, jejich životy skončily dřív, než skutečně začaly.",
                 "Lapali po dechu a pak jejich život skončil - dřív, než skutečně mohl začít, připomněli."),
        57.15704367, 1e-4);
}

Test(chrf, readme_and_derived_vectors)
{
    struct chrf_opts o;
    chrf_opts_default(&o);
    double s = chrf_corpus(&o, dog_hyps, 3, dog_refs, 2);
    cr_assert_float_eq(s, 59.7275178268, 1e-9, "got %.10f", s);
    char got[16];
    snprintf(got, sizeof got, "%.2f", s);
    cr_assert_str_eq(got, "59.73"); /* README: chrF2 = 59.73 */
    const char *const s1[1][MAXSEG] = {{dog_refs[0][0], dog_refs[0][1], dog_refs[0][2]}};
    cr_assert_float_eq(chrf_corpus(&o, dog_hyps, 3, s1, 1), 50.0430636066, 1e-9);
    cr_assert_float_eq(chrf_one(&o, "the the the the", "the cat"), 17.8689218701, 1e-9);
    cr_assert_float_eq(chrf_one(&o, "Hello, world!", "Hello world!"), 63.5547913175, 1e-9);
    o.word_order = 2; /* chrF++ */
    cr_assert_float_eq(chrf_corpus(&o, dog_hyps, 3, dog_refs, 2), 59.1531044440, 1e-9);
    cr_assert_float_eq(chrf_corpus(&o, dog_hyps, 3, s1, 1), 51.7309698504, 1e-9);
    cr_assert_float_eq(chrf_one(&o, "the the the the", "the cat"), 18.6139223849, 1e-9);
    cr_assert_float_eq(chrf_one(&o, "Hello, world!", "Hello world!"), 65.1854938586, 1e-9);
}

Test(chrf, best_reference_per_segment_and_formats)
{
    struct chrf_opts o;
    chrf_opts_default(&o);
    /* the better reference wins whatever its position */
    const char *const h[1] = {"abcdef"};
    const char *const r[2][MAXSEG] = {{"zzzzzz"}, {"abcdef"}};
    cr_assert_float_eq(chrf_corpus(&o, h, 1, r, 2), 100.0, 1e-12);
    o.word_order = 2;
    struct chrf *c = chrf_create(&o);
    const char *refs[2] = {"a b", "a b"};
    cr_assert_eq(chrf_add(c, "a b", 3, refs, NULL, 2), 0);
    struct metric_result res;
    metric_result_init(&res);
    cr_assert_eq(chrf_report(c, &res), 0);
    struct sbuf t;
    sbuf_init(&t);
    cr_assert_eq(metric_format_text(&res, 1, &t), 0);
    cr_assert_str_eq(t.data, "chrF2++|nrefs:2|case:mixed|eff:yes|nc:6|nw:2|space:no|version:seqlite-" SEQLITE_VERSION
                             " = 100.0");
    sbuf_reset(&t);
    cr_assert_eq(metric_format_json(&res, 1, &t), 0);
    cr_assert(strstr(t.data, "\"name\": \"chrF2++\",\n \"score\": 100.0,\n"), "%s", t.data);
    cr_assert(!strstr(t.data, "verbose_score"));
    refs[0] = refs[1] = "";
    cr_assert_eq(chrf_add(c, "x", 1, refs, NULL, 2), SL_EINVAL);
    refs[0] = "\xe0\x80\x80";
    cr_assert_eq(chrf_add(c, "x", 1, refs, NULL, 1), SL_EUTF8);
    chrf_free(c);
    metric_result_free(&res);
    sbuf_free(&t);
    chrf_opts_default(&o);
    o.lowercase = 1;
    cr_assert_float_eq(chrf_one(&o, "ΟΔΟΣ ABC", "οδος abc"), 100.0, 1e-12);
}

/* ---------------------------------------------------------------- seqlite score */

struct cli_files {
    char *dir, *r1, *r2, *hyp;
};

static struct cli_files dog_files(void)
{
    struct cli_files f;
    f.dir = th_tmpdir();
    cr_assert(f.dir);
    f.r1 = th_path(f.dir, "ref1.txt");
    f.r2 = th_path(f.dir, "ref2.txt");
    f.hyp = th_path(f.dir, "hyp.txt");
    const char *r1 = "The dog bit the man.\nIt was not unexpected.\nThe man bit him first.\n";
    const char *r2 = "The dog had bit the man.\nNo one was surprised.\nThe man had bitten the dog.\n";
    const char *h = "The dog bit the man.\nIt wasn't surprising.\nThe man had just bitten him.  \n";
    cr_assert_eq(th_write_file(f.r1, r1, strlen(r1)), 0);
    cr_assert_eq(th_write_file(f.r2, r2, strlen(r2)), 0);
    cr_assert_eq(th_write_file(f.hyp, h, strlen(h)), 0);
    return f;
}

static void files_free(struct cli_files *f)
{
    th_rmdir(f->dir);
    free(f->dir);
    free(f->r1);
    free(f->r2);
    free(f->hyp);
}

static int run_score(const char *args, const char *in, char **out, char **err)
{
    return th_run(args, in, out, err);
}

Test(score_cli, default_text_output)
{
    struct cli_files f = dog_files();
    char args[4096], *out = NULL, *err = NULL;
    snprintf(args, sizeof args, "score '%s' '%s'", f.r1, f.r2);
    cr_assert_eq(run_score(args, f.hyp, &out, &err), 0, "stderr: %s", err);
    cr_assert_str_eq(out,
                     "BLEU|nrefs:2|case:mixed|eff:no|tok:13a|smooth:exp|version:seqlite-" SEQLITE_VERSION
                     " = 48.5 82.4/50.0/45.5/37.5 (BP = 0.943 ratio = 0.944 hyp_len = 17 ref_len = 18)\n"
                     "chrF2|nrefs:2|case:mixed|eff:yes|nc:6|nw:0|space:no|version:seqlite-" SEQLITE_VERSION
                     " = 59.7\n");
    free(out);
    free(err);
    snprintf(args, sizeof args, "score '%s' --metrics chrf++,bleu --lowercase --width 4", f.r1);
    cr_assert_eq(run_score(args, f.hyp, &out, &err), 0, "stderr: %s", err);
    cr_assert(strstr(out, "chrF2++|nrefs:1|case:lc|eff:yes|nc:6|nw:2|space:no|version:seqlite-"), "%s", out);
    cr_assert(strstr(out, "\nBLEU|nrefs:1|case:lc|eff:no|tok:13a|smooth:exp|version:seqlite-" SEQLITE_VERSION
                          " = 45.0675 70.6/42.9/36.4/37.5"), "%s", out);
    free(out);
    free(err);
    files_free(&f);
}

/* "-" reads a reference from standard input when --input names the hypotheses: the same scores as files. */
Test(score_cli, dash_is_stdin_for_a_reference)
{
    struct cli_files f = dog_files();
    char args[4096], *want = NULL, *out = NULL, *err = NULL;
    snprintf(args, sizeof args, "score '%s' '%s'", f.r1, f.r2);
    cr_assert_eq(run_score(args, f.hyp, &want, NULL), 0);
    snprintf(args, sizeof args, "score '%s' - --input '%s'", f.r1, f.hyp);
    cr_assert_eq(run_score(args, f.r2, &out, &err), 0, "stderr: %s", err);
    cr_assert_str_eq(out, want);
    free(out);
    free(err);
    snprintf(args, sizeof args, "score '%s' '%s' --input '%s'", f.r1, f.r2, f.hyp);
    cr_assert_eq(run_score(args, NULL, &out, &err), 0, "stderr: %s", err);
    cr_assert_str_eq(out, want);
    free(out);
    free(err);
    /* stdin cannot be both the hypotheses and a reference */
    snprintf(args, sizeof args, "score '%s' -", f.r1);
    cr_assert_eq(run_score(args, f.hyp, &out, &err), 2);
    cr_assert(strstr(err, "only one file can be '-'") && strstr(err, "--input"), "%s", err);
    free(out);
    free(err);
    /* a short reference on stdin is named */
    snprintf(args, sizeof args, "score - --input '%s'", f.hyp);
    cr_assert_eq(run_score(args, NULL, &out, &err), 1);
    cr_assert(strstr(err, "has 3 lines but stdin has 0"), "%s", err);
    free(out);
    free(err);
    free(want);
    files_free(&f);
}

Test(score_cli, json_output)
{
    struct cli_files f = dog_files();
    char args[4096], *out = NULL, *err = NULL;
    snprintf(args, sizeof args, "score '%s' '%s' --json --metrics bleu", f.r1, f.r2);
    cr_assert_eq(run_score(args, f.hyp, &out, &err), 0, "stderr: %s", err);
    cr_assert(out[0] == '{' && strstr(out, "\"score\": 48.5,") && strstr(out, "\"nrefs\": \"2\""), "%s", out);
    cr_assert(strstr(out, "\"verbose_score\": \"82.4/50.0/45.5/37.5 (BP = 0.943"), "%s", out);
    free(out);
    free(err);
    snprintf(args, sizeof args, "score '%s' '%s' --json", f.r1, f.r2);
    cr_assert_eq(run_score(args, f.hyp, &out, &err), 0, "stderr: %s", err);
    const char *head = "[\n{\n \"name\": \"BLEU\",\n";
    cr_assert(strncmp(out, head, strlen(head)) == 0, "%s", out);
    cr_assert(strstr(out, "},\n{\n \"name\": \"chrF2\",\n \"score\": 59.7,\n"), "%s", out);
    cr_assert(strcmp(out + strlen(out) - 4, "}\n]\n") == 0, "%s", out);
    free(out);
    free(err);
    files_free(&f);
}

Test(score_cli, line_count_mismatch_and_bad_utf8)
{
    struct cli_files f = dog_files();
    char *short_ref = th_path(f.dir, "short.txt"), *bad = th_path(f.dir, "bad.txt");
    cr_assert_eq(th_write_file(short_ref, "a\nb\n", 4), 0);
    cr_assert_eq(th_write_file(bad, "ok\nnot \xff ok\nfine\n", 17), 0);
    char args[4096], *out = NULL, *err = NULL;
    snprintf(args, sizeof args, "score '%s' '%s'", f.r1, short_ref);
    cr_assert_eq(run_score(args, f.hyp, &out, &err), 1);
    cr_assert_str_eq(out, "");
    cr_assert(strstr(err, "stdin has 3 lines but") && strstr(err, "short.txt has 2"), "%s", err);
    free(out);
    free(err);
    snprintf(args, sizeof args, "score '%s'", bad);
    cr_assert_eq(run_score(args, f.hyp, &out, &err), 1);
    cr_assert(strstr(err, "bad.txt line 2: invalid UTF-8 at byte 5"), "%s", err);
    free(out);
    free(err);
    snprintf(args, sizeof args, "score '%s'", f.r1);
    cr_assert_eq(run_score(args, bad, &out, &err), 1);
    cr_assert(strstr(err, "stdin line 2: invalid UTF-8"), "%s", err);
    free(out);
    free(err);
    /* an all-empty reference line, and a missing file */
    const char *holes = "x\n\ny\n";
    cr_assert_eq(th_write_file(short_ref, holes, strlen(holes)), 0);
    snprintf(args, sizeof args, "score '%s'", short_ref);
    cr_assert_eq(run_score(args, f.hyp, &out, &err), 1);
    cr_assert(strstr(err, "line 2: every reference is empty"), "%s", err);
    free(out);
    free(err);
    snprintf(args, sizeof args, "score '%s/nope.txt'", f.dir);
    cr_assert_eq(run_score(args, f.hyp, &out, &err), 1);
    cr_assert(strstr(err, "cannot open reference file") && strstr(err, "nope.txt"), "%s", err);
    free(out);
    free(err);
    free(short_ref);
    free(bad);
    files_free(&f);
}

Test(score_cli, usage_errors_exit_2)
{
    struct cli_files f = dog_files();
    char args[4096], *out = NULL, *err = NULL;
    cr_assert_eq(run_score("score", f.hyp, &out, &err), 2);
    cr_assert(strstr(err, "no reference file") && strstr(err, "see 'seqlite help score'"), "%s", err);
    free(out);
    free(err);
    snprintf(args, sizeof args, "score '%s' --metrics bleu,ter", f.r1);
    cr_assert_eq(run_score(args, f.hyp, &out, &err), 2);
    cr_assert(strstr(err, "unknown metric 'ter'"), "%s", err);
    free(out);
    free(err);
    snprintf(args, sizeof args, "score '%s' --tokenize intl", f.r1);
    cr_assert_eq(run_score(args, f.hyp, &out, &err), 2);
    free(out);
    free(err);
    cr_assert_eq(run_score("help score", NULL, &out, &err), 0);
    cr_assert(strstr(out, "usage: seqlite score REF"), "%s", out);
    free(out);
    free(err);
    files_free(&f);
}
