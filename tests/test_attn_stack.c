/* tests/test_attn_stack.c: decoder/attn_stack — the attention decoder with input feeding: finite-difference
 * gradient checks through time (every weight, the source states, the initial state; each score; with
 * dropout replayed), and the decoding step against the teacher-forced forward. */
#include <criterion/criterion.h>

#include "decoder/attn_stack.h"
#include "nn/gemm.h"
#include "nn/params.h"
#include "util/rng.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int close_enough(double a, double n, double atol, double rtol)
{
    double m = fabs(a) > fabs(n) ? fabs(a) : fabs(n);
    return fabs(a - n) <= atol + rtol * m;
}

/* A small decoder: V 7, E 3, H 4, L 2 over S 5 source positions, T 4 steps, B 3 rows (source lengths 5,
 * 2, 0: a row with no source attends to nothing). */
struct case_ {
    size_t V, E, H, L, S, T, B, A;
    struct param_table table;
    struct stack_layout lay;
    struct attn_layout att;
    float *w, *Hs, *h0, *c0, *R; /* R (T, B, H): loss = sum(top .* R) */
    int32_t ids[4 * 3];
    int32_t src_len[3];
    struct arena ar;
    struct attn_stack_acts a;
    float p;
    uint64_t seed;
};

static void add(struct case_ *c, size_t *off, const char *name, int ndim, size_t d0, size_t d1)
{
    size_t shape[2] = {d0, d1};
    cr_assert_eq(param_table_add(&c->table, name, ndim, shape), 0);
    *off = c->table.views[c->table.n - 1].offset;
}

static void case_make(struct case_ *c, enum attn_score score, float p)
{
    memset(c, 0, sizeof *c);
    c->V = 7, c->E = 3, c->H = 4, c->L = 2, c->S = 5, c->T = 4, c->B = 3, c->A = 3, c->p = p, c->seed = 99;
    param_table_init(&c->table);
    c->lay.V = c->V, c->lay.E = c->E, c->lay.H = c->H, c->lay.L = c->L;
    add(c, &c->lay.emb, "dec.emb", 2, c->V, c->E);
    for (size_t l = 0; l < c->L; l++) {
        char n[32];
        snprintf(n, sizeof n, "dec.lstm%zu.W", l);
        add(c, &c->lay.W[l], n, 2, 4 * c->H, attn_stack_in_dim(&c->lay, l) + c->H);
        snprintf(n, sizeof n, "dec.lstm%zu.b", l);
        add(c, &c->lay.b[l], n, 1, 4 * c->H, 1);
    }
    cr_assert_eq(attn_layout_add(&c->att, &c->table, "att", score, c->H, c->A), 0);
    struct rng r;
    rng_seed(&r, 7);
    c->w = calloc(c->table.total, sizeof(float));
    for (size_t i = 0; i < c->table.n; i++)
        for (size_t k = 0; k < c->table.views[i].size; k++)
            c->w[c->table.views[i].offset + k] = 0.6f * (rng_uniform(&r) - 0.5f);
    const size_t SBH = c->S * c->B * c->H, LBH = c->L * c->B * c->H, TBH = c->T * c->B * c->H;
    c->Hs = malloc(SBH * sizeof(float));
    c->h0 = malloc(LBH * sizeof(float));
    c->c0 = malloc(LBH * sizeof(float));
    c->R = malloc(TBH * sizeof(float));
    for (size_t k = 0; k < SBH; k++)
        c->Hs[k] = rng_uniform(&r) * 1.6f - 0.8f;
    for (size_t k = 0; k < LBH; k++) {
        c->h0[k] = rng_uniform(&r) - 0.5f;
        c->c0[k] = rng_uniform(&r) - 0.5f;
    }
    for (size_t k = 0; k < TBH; k++)
        c->R[k] = rng_uniform(&r) * 2 - 1;
    for (size_t k = 0; k < c->T * c->B; k++)
        c->ids[k] = (int32_t)rng_below(&r, c->V);
    c->src_len[0] = 5, c->src_len[1] = 2, c->src_len[2] = 0;
    struct arena measure = {0};
    attn_stack_acts_carve(&c->a, &measure, &c->lay, &c->att, c->T, c->B, c->S);
    cr_assert_eq(arena_reserve(&c->ar, measure.used), 0);
    attn_stack_acts_carve(&c->a, &c->ar, &c->lay, &c->att, c->T, c->B, c->S);
    memcpy(c->a.ids, c->ids, sizeof c->ids);
}

static void case_free(struct case_ *c)
{
    param_table_free(&c->table);
    free(c->w), free(c->Hs), free(c->h0), free(c->c0), free(c->R);
    arena_release(&c->ar);
}

static double case_loss(struct case_ *c)
{
    struct rng r;
    rng_seed(&r, c->seed); /* the same dropout masks at every evaluation */
    attn_stack_forward(&c->lay, &c->att, c->w, &c->a, c->Hs, c->src_len, c->h0, c->c0, c->p, &r);
    const float *top = attn_stack_top(&c->a);
    double s = 0;
    for (size_t k = 0; k < c->T * c->B * c->H; k++)
        s += (double)top[k] * c->R[k];
    return s;
}

static int check(struct case_ *c, float *x, const float *g, size_t n, const char *what, int quiet)
{
    int bad = 0;
    const float eps = 5e-3f;
    for (size_t k = 0; k < n; k++) {
        float save = x[k];
        x[k] = save + eps;
        double lp = case_loss(c);
        x[k] = save - eps;
        double lm = case_loss(c);
        x[k] = save;
        double num = (lp - lm) / (2.0 * eps);
        if (!close_enough(g[k], num, 3e-4, 1e-2)) {
            if (!quiet)
                cr_log_error("%s[%zu]: analytic %g numeric %g", what, k, g[k], num);
            bad++;
        }
    }
    return bad;
}

static void gradcheck(enum attn_score score, float p)
{
    gemm_set_threads(1);
    struct case_ c;
    case_make(&c, score, p);
    const size_t N = c.table.total, SBH = c.S * c.B * c.H, LBH = c.L * c.B * c.H;
    float *g = calloc(N, sizeof(float)), *dHs = calloc(SBH, sizeof(float));
    float *dh0 = calloc(LBH, sizeof(float)), *dc0 = calloc(LBH, sizeof(float));
    case_loss(&c);
    attn_stack_backward(&c.lay, &c.att, c.w, g, &c.a, c.Hs, c.src_len, c.R, dHs, dh0, dc0);
    int bad = 0;
    for (size_t i = 0; i < c.table.n; i++) {
        const struct param_view *v = &c.table.views[i];
        bad += check(&c, c.w + v->offset, g + v->offset, v->size, v->name, 0);
    }
    bad += check(&c, c.Hs, dHs, SBH, "dHs", 0);
    bad += check(&c, c.h0, dh0, LBH, "dh0", 0);
    bad += check(&c, c.c0, dc0, LBH, "dc0", 0);
    cr_assert_eq(bad, 0, "%s, dropout %g: %d gradients wrong", attn_score_name(score), (double)p, bad);
    /* source positions past a row's length get exactly no gradient */
    for (size_t s = 0; s < c.S; s++)
        for (size_t b = 0; b < c.B; b++)
            if ((int32_t)s >= c.src_len[b])
                for (size_t j = 0; j < c.H; j++)
                    cr_assert_eq(dHs[(s * c.B + b) * c.H + j], 0.0f, "dHs at padding s %zu b %zu", s, b);
    /* a deliberately broken gradient fails the check */
    const struct param_view *wc = param_table_find(&c.table, "att.Wc");
    cr_assert_not_null(wc);
    g[wc->offset + 3] += 0.05f;
    cr_assert_eq(check(&c, c.w + wc->offset, g + wc->offset, wc->size, "att.Wc (broken on purpose)", 1), 1);
    free(g), free(dHs), free(dh0), free(dc0);
    case_free(&c);
}

Test(attn_stack, gradient_check_dot) { gradcheck(ATTN_DOT, 0.0f); }
Test(attn_stack, gradient_check_general) { gradcheck(ATTN_GENERAL, 0.0f); }
Test(attn_stack, gradient_check_mlp) { gradcheck(ATTN_MLP, 0.0f); }
Test(attn_stack, gradient_check_general_with_dropout) { gradcheck(ATTN_GENERAL, 0.3f); }

/* A pass on one BLAS thread multiplies its per-step weights packed (the gradient checks above run that
 * way); with the packs taken away (a->pk, a->pka NULL, as under an autocast) it multiplies them through
 * gemm_run: outputs and every gradient agree to float rounding. */
static void packs_agree(enum attn_score score)
{
    gemm_set_threads(1);
    struct case_ c;
    case_make(&c, score, 0.0f);
    const size_t N = c.table.total, SBH = c.S * c.B * c.H, LBH = c.L * c.B * c.H, TBH = c.T * c.B * c.H;
    float *top[2], *g[2], *dHs[2], *dh0[2], *dc0[2];
    float *pk[NN_MAX_LAYERS], *pka = c.a.pka;
    for (size_t l = 0; l < c.L; l++)
        pk[l] = c.a.pk[l];
    for (int run = 0; run < 2; run++) {
        for (size_t l = 0; l < c.L; l++)
            c.a.pk[l] = run ? NULL : pk[l];
        c.a.pka = run ? NULL : pka;
        g[run] = calloc(N, sizeof(float)), dHs[run] = calloc(SBH, sizeof(float));
        dh0[run] = calloc(LBH, sizeof(float)), dc0[run] = calloc(LBH, sizeof(float));
        top[run] = malloc(TBH * sizeof(float));
        case_loss(&c);
        memcpy(top[run], attn_stack_top(&c.a), TBH * sizeof(float));
        attn_stack_backward(&c.lay, &c.att, c.w, g[run], &c.a, c.Hs, c.src_len, c.R, dHs[run], dh0[run], dc0[run]);
    }
    struct {
        const char *what;
        float **x;
        size_t n;
    } arrays[] = {{"top", top, TBH}, {"g", g, N}, {"dHs", dHs, SBH}, {"dh0", dh0, LBH}, {"dc0", dc0, LBH}};
    for (size_t i = 0; i < sizeof arrays / sizeof *arrays; i++)
        for (size_t k = 0; k < arrays[i].n; k++)
            cr_assert(close_enough(arrays[i].x[0][k], arrays[i].x[1][k], 1e-6, 1e-5),
                      "%s: %s[%zu] packed %g, unpacked %g", attn_score_name(score), arrays[i].what, k,
                      arrays[i].x[0][k], arrays[i].x[1][k]);
    for (int run = 0; run < 2; run++)
        free(top[run]), free(g[run]), free(dHs[run]), free(dh0[run]), free(dc0[run]);
    case_free(&c);
}

Test(attn_stack, packed_and_unpacked_weights_agree)
{
    packs_agree(ATTN_DOT);
    packs_agree(ATTN_GENERAL);
    packs_agree(ATTN_MLP);
}

/* Decoding step by step (feeding h~ back) gives the teacher-forced forward's outputs, with and without
 * the packed weights. */
static void step_matches(enum attn_score score, int packed)
{
    gemm_set_threads(1);
    struct case_ c;
    case_make(&c, score, 0.0f);
    case_loss(&c);
    const float *top = attn_stack_top(&c.a);
    const size_t B = c.B, H = c.H, L = c.L, KW = attn_key_width(&c.att);
    float *h = malloc(L * B * H * sizeof(float)), *cc = malloc(L * B * H * sizeof(float));
    float *feed = calloc(B * H, sizeof(float)), *align = malloc(B * c.S * sizeof(float));
    float *keys = malloc((c.S * B * KW + 1) * sizeof(float));
    float *scr = malloc(attn_stack_step_floats(&c.lay, &c.att, B, c.S) * sizeof(float));
    memcpy(h, c.h0, L * B * H * sizeof(float));
    memcpy(cc, c.c0, L * B * H * sizeof(float));
    attn_keys_forward(&c.att, c.w, c.Hs, c.S, B, keys);
    float *P = NULL;
    size_t pk_lstm[NN_MAX_LAYERS], pk_att = 0, n = 0;
    if (packed) {
        for (size_t l = 0; l < L; l++) {
            pk_lstm[l] = n;
            n += gemm_packed_floats(attn_stack_in_dim(&c.lay, l) + H, 4 * H);
        }
        pk_att = n;
        n += attn_pack_floats(&c.att);
        P = param_buf_create(n);
        for (size_t l = 0; l < L; l++) {
            const size_t IH = attn_stack_in_dim(&c.lay, l) + H;
            gemm_pack_b(GEMM_T, IH, 4 * H, c.w + c.lay.W[l], IH, P + pk_lstm[l]);
        }
        attn_pack(&c.att, c.w, P + pk_att);
    }
    for (size_t t = 0; t < c.T; t++) {
        attn_stack_step(&c.lay, &c.att, c.w, P, pk_lstm, pk_att, c.ids + t * B, B, c.Hs, keys, c.src_len, c.S, B,
                        NULL, h, cc, feed, align, scr);
        for (size_t k = 0; k < B * H; k++)
            cr_assert(close_enough(feed[k], top[t * B * H + k], 1e-5, 1e-4), "%s step %zu [%zu]: %g vs %g",
                      attn_score_name(score), t, k, feed[k], top[t * B * H + k]);
        for (size_t b = 0; b < B; b++) {
            double sum = 0;
            for (size_t s = 0; s < c.S; s++) {
                if ((int32_t)s >= c.src_len[b])
                    cr_assert_eq(align[b * c.S + s], 0.0f);
                sum += align[b * c.S + s];
            }
            if (c.src_len[b] > 0)
                cr_assert_float_eq(sum, 1.0, 1e-5);
        }
    }
    param_buf_free(P);
    free(h), free(cc), free(feed), free(align), free(keys), free(scr);
    case_free(&c);
}

Test(attn_stack, decoding_steps_match_the_teacher_forced_forward)
{
    for (int s = ATTN_DOT; s <= ATTN_MLP; s++) {
        step_matches((enum attn_score)s, 0);
        step_matches((enum attn_score)s, 1);
    }
}
