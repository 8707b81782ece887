/* tests/test_beam.c: decoder/beam.c against a fake model whose next-token distribution depends on
 * the row's prefix (the fake keeps each row's prefix and reorder() permutes them). Hand-computed
 * cases: beam 2 beats greedy, n-best order, the length penalty changing the winner, deterministic
 * ties, max length; properties: K = 1 equals a greedy loop, an unpruned beam equals brute force
 * over every sequence, a batch equals its sentences decoded one at a time, finished sentences leave
 * the batch; the fixed-length benchmark mode; bad input. */
#include <criterion/criterion.h>

#include "decoder/beam.h"
#include "util/err.h"
#include "util/rng.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ids: 0 pad, 1 bos, 2 eos, 3 unk, 4 A, 5 B, 6 C */
enum { PAD = 0, BOS = 1, EOS = 2, TA = 4, TB = 5, TC = 6 };
#define FMAXM 512
#define FMAXL 40

/* table kinds (per sentence, through the row's seed) */
enum { TAB_GREEDY_WRONG = 1000, TAB_LENGTH = 1001, TAB_NO_EOS = 1002, TAB_LONG = 1003 };

struct fake {
    size_t V;
    int32_t pre[FMAXM][FMAXL]; /* each row's tokens after BOS */
    size_t plen[FMAXM];
    uint64_t seed[FMAXM]; /* < 1000: random table with that seed; else a hand table */
    size_t steps, Ms[64];
    int fail_at;          /* step() returns SL_EIO at this call (1-based); 0: never */
    int nan_at;
};

static void fake_init(struct fake *f, size_t V, size_t N, size_t K, const uint64_t *seeds)
{
    memset(f, 0, sizeof *f);
    f->V = V;
    for (size_t s = 0; s < N; s++)
        for (size_t k = 0; k < K; k++)
            f->seed[s * K + k] = seeds[s];
}

/* P(eos), P(A), P(B), P(C) after prefix (hand tables use only A and B) */
static void dist(uint64_t seed, const int32_t *pre, size_t n, float p[4])
{
    char key[FMAXL + 1];
    for (size_t i = 0; i < n; i++)
        key[i] = pre[i] == TA ? 'A' : pre[i] == TB ? 'B' : pre[i] == TC ? 'C' : pre[i] == EOS ? 'E' : 'P';
    key[n] = '\0';
    p[3] = 0.0f;
    if (seed == TAB_GREEDY_WRONG) {
        static const struct {
            const char *k;
            float e, a, b;
        } t[] = {{"", 0.0f, 0.6f, 0.4f}, {"A", 0.3f, 0.35f, 0.35f}, {"B", 0.9f, 0.05f, 0.05f},
                 {"AA", 0.4f, 0.3f, 0.3f}, {"AB", 0.5f, 0.25f, 0.25f}};
        p[0] = 0.5f, p[1] = 0.25f, p[2] = 0.25f;
        for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
            if (strcmp(key, t[i].k) == 0)
                p[0] = t[i].e, p[1] = t[i].a, p[2] = t[i].b;
    } else if (seed == TAB_LENGTH) {
        static const struct {
            const char *k;
            float e, a, b;
        } t[] = {{"", 0.0f, 0.6f, 0.4f}, {"A", 0.05f, 0.9f, 0.05f}, {"B", 0.9f, 0.05f, 0.05f},
                 {"AA", 0.6f, 0.35f, 0.05f}};
        p[0] = 0.5f, p[1] = 0.25f, p[2] = 0.25f;
        for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
            if (strcmp(key, t[i].k) == 0)
                p[0] = t[i].e, p[1] = t[i].a, p[2] = t[i].b;
    } else if (seed == TAB_LONG) {
        static const struct {
            const char *k;
            float e, a, b;
        } t[] = {{"", 0.0f, 0.42f, 0.58f}, {"B", 0.99f, 0.005f, 0.005f}, {"A", 0.04f, 0.95f, 0.01f},
                 {"AA", 0.04f, 0.95f, 0.01f}, {"AAA", 0.04f, 0.95f, 0.01f}, {"AAAA", 0.99f, 0.005f, 0.005f}};
        p[0] = 0.5f, p[1] = 0.25f, p[2] = 0.25f;
        for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
            if (strcmp(key, t[i].k) == 0)
                p[0] = t[i].e, p[1] = t[i].a, p[2] = t[i].b;
    } else if (seed == TAB_NO_EOS) {
        p[0] = 0.0f, p[1] = 0.5f, p[2] = 0.5f;
    } else { /* random, prefix dependent */
        uint64_t h = rng_mix64(seed + 1);
        for (size_t i = 0; i < n; i++)
            h = rng_mix64(h ^ (uint64_t)pre[i] * 0x9E3779B97F4A7C15ULL);
        float w[4], sum = 0;
        for (int i = 0; i < 4; i++) {
            h = rng_mix64(h + (uint64_t)i);
            w[i] = 0.05f + (float)(h >> 40) / (float)(1u << 24);
            sum += w[i];
        }
        for (int i = 0; i < 4; i++)
            p[i] = w[i] / sum;
    }
}

static int fake_step(void *ctx, const int32_t *prev, size_t M, float *lp)
{
    struct fake *f = ctx;
    f->steps++;
    if (f->steps < 64)
        f->Ms[f->steps - 1] = M;
    if (f->fail_at && (int)f->steps == f->fail_at)
        return sl_err(SL_EIO, "fake model failed");
    cr_assert_leq(M, (size_t)FMAXM);
    for (size_t m = 0; m < M; m++) {
        if (prev[m] != BOS && f->plen[m] < FMAXL)
            f->pre[m][f->plen[m]++] = prev[m];
        float p[4];
        dist(f->seed[m], f->pre[m], f->plen[m], p);
        float *row = lp + m * f->V;
        for (size_t v = 0; v < f->V; v++)
            row[v] = -INFINITY;
        row[EOS] = logf(p[0]);
        row[TA] = logf(p[1]);
        row[TB] = logf(p[2]);
        if (f->V > TC)
            row[TC] = logf(p[3]);
        if (f->nan_at && (int)f->steps == f->nan_at)
            row[TA] = NAN;
    }
    return 0;
}

static int fake_reorder(void *ctx, const size_t *src, size_t M)
{
    struct fake *f = ctx;
    static int32_t pre[FMAXM][FMAXL];
    static size_t plen[FMAXM];
    static uint64_t seed[FMAXM];
    for (size_t m = 0; m < M; m++) {
        cr_assert_lt(src[m], (size_t)FMAXM);
        memcpy(pre[m], f->pre[src[m]], sizeof pre[m]);
        plen[m] = f->plen[src[m]];
        seed[m] = f->seed[src[m]];
    }
    memcpy(f->pre, pre, M * sizeof pre[0]);
    memcpy(f->plen, plen, M * sizeof plen[0]);
    memcpy(f->seed, seed, M * sizeof seed[0]);
    return 0;
}

static struct beam_model model_of(struct fake *f)
{
    struct beam_model m = {f, f->V, BOS, EOS, PAD, fake_step, fake_reorder, NULL};
    return m;
}

static double L(float p) { return (double)logf(p); }

static void assert_tokens(const struct beam_hyp *h, const int32_t *want, size_t n)
{
    cr_assert_eq(h->len, n, "length %zu, want %zu", h->len, n);
    for (size_t i = 0; i < n; i++)
        cr_assert_eq(h->tokens[i], want[i], "token %zu: %d, want %d", i, h->tokens[i], want[i]);
}

/* Runs one sentence of table `seed`. */
static struct beam_search *run1(uint64_t seed, size_t V, size_t K, size_t T, size_t nbest, float alpha,
                                int fixed, struct fake *f)
{
    fake_init(f, V, 1, K, &seed);
    struct beam_model m = model_of(f);
    struct beam_search *bs = beam_search_create(1, K, V, T);
    cr_assert(bs, "%s", sl_errmsg());
    struct beam_opts o = {nbest, T, alpha, fixed};
    cr_assert_eq(beam_search_run(bs, &m, 1, &o), 0, "%s", sl_errmsg());
    return bs;
}

/* ---------------------------------------------------------------- hand-computed cases */

Test(beam, beam2_finds_what_greedy_misses)
{
    static struct fake f;
    /* greedy: A (.6), A (.35, tie with B: lower id), EOS (.4): "AA", p = .084 */
    struct beam_search *bs = run1(TAB_GREEDY_WRONG, 7, 1, 10, 1, 0.0f, 0, &f);
    size_t n;
    const struct beam_hyp *h = beam_search_nbest(bs, 0, &n);
    cr_assert_eq(n, 1);
    assert_tokens(&h[0], (int32_t[]){TA, TA}, 2);
    cr_assert_float_eq(h[0].logprob, L(0.6f) + L(0.35f) + L(0.4f), 1e-12);
    cr_assert(h[0].finished);
    beam_search_free(bs);
    /* beam 2: "B" (.4 * .9 = .36) beats "AA"; 2-best = [B, AA]; stops after step 3 because the open
     * "AAA" (.063) cannot beat .084 */
    bs = run1(TAB_GREEDY_WRONG, 7, 2, 10, 2, 0.0f, 0, &f);
    h = beam_search_nbest(bs, 0, &n);
    cr_assert_eq(n, 2);
    assert_tokens(&h[0], (int32_t[]){TB}, 1);
    cr_assert_float_eq(h[0].logprob, L(0.4f) + L(0.9f), 1e-12);
    cr_assert_float_eq(h[0].score, h[0].logprob, 0);
    assert_tokens(&h[1], (int32_t[]){TA, TA}, 2);
    cr_assert_float_eq(h[1].logprob, L(0.6f) + L(0.35f) + L(0.4f), 1e-12);
    cr_assert(h[0].finished && h[1].finished);
    cr_assert_eq(beam_search_steps(bs), 3);
    beam_search_free(bs);
    /* 1-best with beam 2 stops one step earlier: after step 2 the open "AA" (.21) < .36 */
    bs = run1(TAB_GREEDY_WRONG, 7, 2, 10, 1, 0.0f, 0, &f);
    h = beam_search_nbest(bs, 0, &n);
    cr_assert_eq(n, 1);
    assert_tokens(&h[0], (int32_t[]){TB}, 1);
    cr_assert_eq(beam_search_steps(bs), 2);
    beam_search_free(bs);
}

Test(beam, length_penalty_changes_the_winner)
{
    static struct fake f;
    size_t n;
    /* alpha 0: "B" (.36) beats "AA" (.6*.9*.6 = .324) */
    struct beam_search *bs = run1(TAB_LENGTH, 7, 2, 6, 1, 0.0f, 0, &f);
    const struct beam_hyp *h = beam_search_nbest(bs, 0, &n);
    assert_tokens(&h[0], (int32_t[]){TB}, 1);
    beam_search_free(bs);
    /* alpha 1: log(.36)/(7/6) = -0.8757 < log(.324)/(8/6) = -0.8452: "AA" wins; the open "AAA"
     * (.189) is bounded by log(.189)/lp(6) = -0.909 and the search stops after step 3 */
    bs = run1(TAB_LENGTH, 7, 2, 6, 1, 1.0f, 0, &f);
    h = beam_search_nbest(bs, 0, &n);
    cr_assert_eq(n, 1);
    assert_tokens(&h[0], (int32_t[]){TA, TA}, 2);
    double lpY = L(0.6f) + L(0.9f) + L(0.6f);
    cr_assert_float_eq(h[0].logprob, lpY, 1e-12);
    cr_assert_float_eq(h[0].score, lpY / (8.0 / 6.0), 1e-12);
    cr_assert_float_eq(beam_length_penalty(3, 1.0f), 8.0 / 6.0, 1e-15);
    cr_assert_eq(beam_length_penalty(3, 0.0f), 1.0);
    cr_assert_eq(beam_search_steps(bs), 3);
    beam_search_free(bs);
}

Test(beam, early_stop_bound_uses_the_longest_possible_length)
{
    static struct fake f;
    size_t n;
    /* After step 2 the finished "B" scores log(.58*.99)/lp(2) = -0.4076 and the open "AA" has
     * S = log(.42*.95) = -0.919: S/lp(3) = -0.517 is below it but S/lp(8) = -0.196 is not, so the
     * search must go on, and "AAAA" (log-prob -1.0314, lp(5) = 2.778: -0.3713) wins at alpha 2. */
    struct beam_search *bs = run1(TAB_LONG, 7, 2, 8, 1, 2.0f, 0, &f);
    const struct beam_hyp *h = beam_search_nbest(bs, 0, &n);
    assert_tokens(&h[0], (int32_t[]){TA, TA, TA, TA}, 4);
    cr_assert_float_eq(h[0].score, (L(0.42f) + 3 * L(0.95f) + L(0.99f)) / pow(10.0 / 6.0, 2.0), 1e-12);
    cr_assert_eq(beam_search_steps(bs), 5);
    beam_search_free(bs);
    bs = run1(TAB_LONG, 7, 2, 8, 1, 0.0f, 0, &f);
    assert_tokens(beam_search_nbest(bs, 0, &n), (int32_t[]){TB}, 1);
    beam_search_free(bs);
}

Test(beam, ties_are_broken_by_row_rank_then_token_id)
{
    static struct fake f;
    size_t n;
    /* every extension has p = .5 and no EOS: ranks follow (row rank, token id); all cut at max_len */
    struct beam_search *bs = run1(TAB_NO_EOS, 7, 3, 4, 3, 0.0f, 0, &f);
    const struct beam_hyp *h = beam_search_nbest(bs, 0, &n);
    cr_assert_eq(n, 3);
    assert_tokens(&h[0], (int32_t[]){TA, TA, TA, TA}, 4);
    assert_tokens(&h[1], (int32_t[]){TA, TA, TA, TB}, 4);
    assert_tokens(&h[2], (int32_t[]){TA, TA, TB, TA}, 4);
    for (int i = 0; i < 3; i++) {
        cr_assert(!h[i].finished);
        cr_assert_float_eq(h[i].logprob, 4 * L(0.5f), 1e-12);
    }
    beam_search_free(bs);
    /* a full finished list keeps the earlier of equal scores */
    bs = run1(TAB_NO_EOS, 7, 3, 4, 2, 0.0f, 0, &f);
    h = beam_search_nbest(bs, 0, &n);
    cr_assert_eq(n, 2);
    assert_tokens(&h[0], (int32_t[]){TA, TA, TA, TA}, 4);
    assert_tokens(&h[1], (int32_t[]){TA, TA, TA, TB}, 4);
    beam_search_free(bs);
}

Test(beam, max_length_is_respected)
{
    static struct fake f;
    size_t n;
    /* max_len 2: "B EOS" finishes, "AA" is finalised unfinished */
    struct beam_search *bs = run1(TAB_GREEDY_WRONG, 7, 2, 2, 2, 0.0f, 0, &f);
    const struct beam_hyp *h = beam_search_nbest(bs, 0, &n);
    cr_assert_eq(n, 2);
    assert_tokens(&h[0], (int32_t[]){TB}, 1);
    cr_assert(h[0].finished);
    assert_tokens(&h[1], (int32_t[]){TA, TA}, 2);
    cr_assert(!h[1].finished);
    cr_assert_float_eq(h[1].logprob, L(0.6f) + L(0.35f), 1e-12);
    cr_assert_eq(beam_search_steps(bs), 2);
    beam_search_free(bs);
    /* greedy without EOS runs exactly max_len steps */
    bs = run1(TAB_NO_EOS, 7, 1, 5, 1, 0.0f, 0, &f);
    h = beam_search_nbest(bs, 0, &n);
    cr_assert_eq(h[0].len, 5);
    cr_assert_eq(beam_search_steps(bs), 5);
    beam_search_free(bs);
}

Test(beam, fixed_length_mode_runs_every_step)
{
    static struct fake f;
    size_t n;
    /* rows after step 2: [B EOS (.36), AA (.21)]; finished rows extend with pad at no cost */
    struct beam_search *bs = run1(TAB_GREEDY_WRONG, 7, 2, 4, 2, 0.0f, 1, &f);
    cr_assert_eq(beam_search_steps(bs), 4);
    for (int i = 0; i < 4; i++)
        cr_assert_eq(f.Ms[i], 2);
    const struct beam_hyp *h = beam_search_nbest(bs, 0, &n);
    cr_assert_eq(n, 2);
    assert_tokens(&h[0], (int32_t[]){TB}, 1);
    cr_assert(h[0].finished);
    cr_assert_float_eq(h[0].logprob, L(0.4f) + L(0.9f), 1e-12);
    assert_tokens(&h[1], (int32_t[]){TA, TA}, 2);
    cr_assert_float_eq(h[1].logprob, L(0.6f) + L(0.35f) + L(0.4f), 1e-12);
    beam_search_free(bs);
}

/* ---------------------------------------------------------------- properties */

/* argmax each step, lowest id on ties, until EOS or T tokens */
static size_t greedy_ref(uint64_t seed, size_t V, size_t T, int32_t *out, double *logprob)
{
    static struct fake f;
    fake_init(&f, V, 1, 1, &seed);
    float *lp = malloc(V * sizeof *lp);
    int32_t prev = BOS;
    size_t n = 0;
    *logprob = 0;
    for (size_t t = 0; t < T; t++) {
        fake_step(&f, &prev, 1, lp);
        size_t best = 0;
        for (size_t v = 1; v < V; v++)
            if (lp[v] > lp[best])
                best = v;
        *logprob += lp[best];
        if ((int32_t)best == EOS)
            break;
        out[n++] = (int32_t)best;
        prev = (int32_t)best;
    }
    free(lp);
    return n;
}

Test(beam, k1_equals_greedy)
{
    static struct fake f;
    for (uint64_t seed = 0; seed < 200; seed++) {
        int32_t want[16];
        double want_lp;
        size_t wn = greedy_ref(seed, 7, 12, want, &want_lp);
        struct beam_search *bs = run1(seed, 7, 1, 12, 1, 0.0f, 0, &f);
        size_t n;
        const struct beam_hyp *h = beam_search_nbest(bs, 0, &n);
        cr_assert_eq(n, 1);
        assert_tokens(&h[0], want, wn);
        cr_assert_eq(h[0].logprob, want_lp, "seed %llu", (unsigned long long)seed);
        beam_search_free(bs);
    }
    /* the hand tables too (with a tie at the second step) */
    int32_t want[16];
    double want_lp;
    size_t wn = greedy_ref(TAB_GREEDY_WRONG, 7, 10, want, &want_lp);
    cr_assert_eq(wn, 2);
    struct beam_search *bs = run1(TAB_GREEDY_WRONG, 7, 1, 10, 1, 0.0f, 0, &f);
    size_t n;
    assert_tokens(beam_search_nbest(bs, 0, &n), want, wn);
    beam_search_free(bs);
}

/* Fixed-length beam 1 (the benchmark's greedy): every one of the T steps runs with the one row, EOS does
 * not stop it, and the result is greedy's: the same tokens before EOS, the same log-probability (the pads
 * after EOS cost nothing) and finished exactly when greedy met EOS. */
Test(beam, k1_fixed_length_is_greedy_run_to_the_end)
{
    static struct fake f;
    size_t n_eos = 0;
    for (uint64_t seed = 0; seed < 200; seed++) {
        int32_t want[16];
        double want_lp;
        size_t wn = greedy_ref(seed, 7, 12, want, &want_lp);
        struct beam_search *bs = run1(seed, 7, 1, 12, 1, 0.0f, 1, &f);
        cr_assert_eq(beam_search_steps(bs), 12, "seed %llu", (unsigned long long)seed);
        for (size_t i = 0; i < 12; i++)
            cr_assert_eq(f.Ms[i], 1);
        size_t n;
        const struct beam_hyp *h = beam_search_nbest(bs, 0, &n);
        cr_assert_eq(n, 1);
        assert_tokens(&h[0], want, wn);
        cr_assert_eq(h[0].finished, wn < 12, "seed %llu", (unsigned long long)seed);
        cr_assert_float_eq(h[0].logprob, want_lp, 1e-12, "seed %llu", (unsigned long long)seed);
        n_eos += h[0].finished != 0;
        beam_search_free(bs);
    }
    cr_assert(n_eos > 0 && n_eos < 200, "%zu of 200 ended with EOS: the test needs both kinds", n_eos);
}

/* every sequence over {A, B, C} of up to T steps (EOS-terminated, or T tokens without EOS) */
struct brute {
    double score[512], lp[512];
    int32_t tok[512][8];
    size_t len[512], n;
};

static void brute_walk(uint64_t seed, size_t T, float alpha, int32_t *pre, size_t n, double lp, struct brute *b)
{
    float p[4];
    dist(seed, pre, n, p);
    double e = lp + L(p[0]);
    b->lp[b->n] = e, b->score[b->n] = e / beam_length_penalty(n + 1, alpha), b->len[b->n] = n;
    memcpy(b->tok[b->n++], pre, n * sizeof *pre);
    for (int v = 0; v < 3; v++) {
        pre[n] = TA + v;
        double l = lp + L(p[1 + v]);
        if (n + 1 == T) {
            b->lp[b->n] = l, b->score[b->n] = l / beam_length_penalty(T, alpha), b->len[b->n] = T;
            memcpy(b->tok[b->n++], pre, T * sizeof *pre);
        } else {
            brute_walk(seed, T, alpha, pre, n + 1, l, b);
        }
    }
}

Test(beam, unpruned_beam_equals_brute_force)
{
    static struct fake f;
    static struct brute b;
    const size_t T = 5, K = 324; /* at most 4 * 3^4 = 324 extensions per step: nothing is pruned */
    const float alphas[3] = {0.0f, 0.6f, 2.0f};
    for (uint64_t seed = 0; seed < 40; seed++) {
        for (int a = 0; a < 3; a++) {
            b.n = 0;
            int32_t pre[8];
            brute_walk(seed, T, alphas[a], pre, 0, 0.0, &b);
            cr_assert_eq(b.n, 1 + 3 + 9 + 27 + 81 + 243);
            struct beam_search *bs = run1(seed, 7, K, T, 5, alphas[a], 0, &f);
            size_t n;
            const struct beam_hyp *h = beam_search_nbest(bs, 0, &n);
            cr_assert_eq(n, 5);
            for (size_t i = 0; i < n; i++) { /* the i-th best of brute force */
                size_t best = SIZE_MAX;
                for (size_t j = 0; j < b.n; j++)
                    if (b.score[j] > -INFINITY && (best == SIZE_MAX || b.score[j] > b.score[best]))
                        best = j;
                cr_assert_float_eq(h[i].score, b.score[best], 1e-12, "seed %llu alpha %g rank %zu",
                                   (unsigned long long)seed, (double)alphas[a], i);
                cr_assert_float_eq(h[i].logprob, b.lp[best], 1e-12);
                assert_tokens(&h[i], b.tok[best], b.len[best]);
                b.score[best] = -INFINITY;
            }
            beam_search_free(bs);
        }
    }
}

Test(beam, batch_equals_one_at_a_time)
{
    static struct fake f;
    const size_t N = 5, K = 3, T = 9;
    const uint64_t seeds[5] = {11, TAB_GREEDY_WRONG, 12, TAB_NO_EOS, 13};
    fake_init(&f, 7, N, K, seeds);
    struct beam_model m = model_of(&f);
    struct beam_search *bs = beam_search_create(N, K, 7, T);
    struct beam_opts o = {3, T, 0.7f, 0};
    cr_assert_eq(beam_search_run(bs, &m, N, &o), 0, "%s", sl_errmsg());
    /* finished sentences leave the batch: the no-EOS sentence runs all T steps, the others not */
    cr_assert_eq(beam_search_steps(bs), T);
    cr_assert_eq(f.Ms[0], N * K);
    cr_assert_lt(f.Ms[T - 1], N * K);
    cr_assert_geq(f.Ms[T - 1], K);
    for (size_t s = 0; s < N; s++) {
        static struct fake f1;
        struct beam_search *one = run1(seeds[s], 7, K, T, 3, 0.7f, 0, &f1);
        size_t n1, nb;
        const struct beam_hyp *h1 = beam_search_nbest(one, 0, &n1), *hb = beam_search_nbest(bs, s, &nb);
        cr_assert_eq(nb, n1);
        cr_assert_eq(nb, 3);
        for (size_t i = 0; i < nb; i++) {
            cr_assert_eq(hb[i].logprob, h1[i].logprob, "sentence %zu rank %zu", s, i);
            cr_assert_eq(hb[i].score, h1[i].score);
            cr_assert_eq(hb[i].finished, h1[i].finished);
            assert_tokens(&hb[i], h1[i].tokens, h1[i].len);
            if (i)
                cr_assert_geq(hb[i - 1].score, hb[i].score);
        }
        beam_search_free(one);
    }
    /* the workspace is reusable: a second run gives the same answer */
    double first = beam_search_nbest(bs, 0, &(size_t){0})[0].logprob;
    fake_init(&f, 7, N, K, seeds);
    cr_assert_eq(beam_search_run(bs, &m, N, &o), 0);
    cr_assert_eq(beam_search_nbest(bs, 0, &(size_t){0})[0].logprob, first);
    beam_search_free(bs);
}

/* ---------------------------------------------------------------- bad input */

Test(beam, bad_input_and_model_errors)
{
    static struct fake f;
    cr_assert_null(beam_search_create(0, 2, 7, 5));
    cr_assert_null(beam_search_create(1, 0, 7, 5));
    cr_assert_null(beam_search_create(1, 2, 0, 5));
    cr_assert_null(beam_search_create(1, 2, 7, 0));
    uint64_t seed = 3;
    fake_init(&f, 7, 1, 2, &seed);
    struct beam_model m = model_of(&f);
    struct beam_search *bs = beam_search_create(2, 2, 7, 5);
    struct beam_opts o = {1, 5, 0.0f, 0};
    cr_assert_eq(beam_search_run(bs, &m, 3, &o), SL_EINVAL); /* N > max_N */
    o.nbest = 3;
    cr_assert_eq(beam_search_run(bs, &m, 1, &o), SL_EINVAL); /* nbest > K */
    o.nbest = 1;
    o.max_len = 6;
    cr_assert_eq(beam_search_run(bs, &m, 1, &o), SL_EINVAL);
    o.max_len = 5;
    o.alpha = -1.0f;
    cr_assert_eq(beam_search_run(bs, &m, 1, &o), SL_EINVAL);
    o.alpha = 0.0f;
    m.V = 8;
    cr_assert_eq(beam_search_run(bs, &m, 1, &o), SL_EINVAL);
    cr_assert(strstr(sl_errmsg(), "V 8"), "%s", sl_errmsg());
    m.V = 7;
    f.fail_at = 2;
    cr_assert_eq(beam_search_run(bs, &m, 1, &o), SL_EIO);
    cr_assert_str_eq(sl_errmsg(), "fake model failed");
    fake_init(&f, 7, 1, 2, &seed);
    f.nan_at = 1;
    cr_assert_eq(beam_search_run(bs, &m, 1, &o), SL_ENUM);
    cr_assert(strstr(sl_errmsg(), "token 4"), "%s", sl_errmsg());
    size_t n;
    cr_assert_null(beam_search_nbest(bs, 2, &n));
    cr_assert_eq(n, 0);
    beam_search_free(bs);
    beam_search_free(NULL);
}
