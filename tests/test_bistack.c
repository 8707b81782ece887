/* tests/test_bistack.c: nn/bistack, the embedding + bidirectional LSTM stack:
 *  - the parameter table (names, shapes, order; bad sizes refused);
 *  - finite-difference gradient checks of a loss on the top outputs and the final states, w.r.t. every
 *    parameter group, L = 2, variable lengths with a zero-length row; without dropout on the BLAS and the
 *    packed path, and with dropout (the same masks in every forward);
 *  - against a reference built from plain nn/lstm forwards, one row at a time, the backward direction
 *    reading the row reversed by hand;
 *  - padding (extra steps and rows, junk ids at padded steps) changes neither the real rows' outputs and
 *    final states nor the gradients of a loss on them;
 *  - learning: predicting the NEXT token from the top output at each position needs the future, so the
 *    bidirectional stack learns it and a forward-only stack (nn/stack.h) of the same width stays at chance. */
#include <criterion/criterion.h>

#include <math.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "nn/adam.h"
#include "nn/arena.h"
#include "nn/bistack.h"
#include "nn/embed.h"
#include "nn/gemm.h"
#include "nn/lstm.h"
#include "nn/params.h"
#include "nn/proj.h"
#include "nn/stack.h"
#include "util/err.h"
#include "util/rng.h"

static int close_enough(double a, double n, double atol, double rtol)
{
    double m = fabs(a) > fabs(n) ? fabs(a) : fabs(n);
    return fabs(a - n) <= atol + rtol * m;
}

/* ---- the parameter table ---- */

Test(bistack, table_names_shapes_and_bad_sizes)
{
    struct param_table t;
    struct bistack_layout lay;
    param_table_init(&t);
    cr_assert_eq(bistack_table_add(&lay, &t, "enc", 7, 3, 6, 2), 0);
    static const char *const names[] = {"enc.emb",      "enc.lstm0.W", "enc.lstm0.b", "enc.lstm0_rev.W",
                                        "enc.lstm0_rev.b", "enc.lstm1.W", "enc.lstm1.b", "enc.lstm1_rev.W",
                                        "enc.lstm1_rev.b"};
    static const size_t d0[] = {7, 12, 12, 12, 12, 12, 12, 12, 12}, d1[] = {3, 6, 1, 6, 1, 9, 1, 9, 1};
    cr_assert_eq(t.n, 9);
    for (size_t i = 0; i < 9; i++) {
        cr_assert_str_eq(t.views[i].name, names[i]);
        cr_assert_eq(t.views[i].shape[0], d0[i], "%s", names[i]);
        cr_assert_eq(t.views[i].shape[1], d1[i], "%s", names[i]);
    }
    cr_assert_eq(lay.emb, t.views[0].offset);
    for (size_t l = 0; l < 2; l++)
        for (size_t d = 0; d < 2; d++) {
            cr_assert_eq(lay.W[l][d], t.views[1 + 4 * l + 2 * d].offset);
            cr_assert_eq(lay.b[l][d], t.views[2 + 4 * l + 2 * d].offset);
        }
    cr_assert(lay.V == 7 && lay.E == 3 && lay.H == 6 && lay.L == 2);
    /* odd or zero width, no layers, too many layers: refused, nothing added */
    const size_t bad[][4] = {{7, 3, 5, 1}, {7, 3, 0, 1}, {7, 3, 6, 0}, {7, 3, 6, NN_MAX_LAYERS + 1}, {0, 3, 6, 1}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cr_assert_eq(bistack_table_add(&lay, &t, "src", bad[i][0], bad[i][1], bad[i][2], bad[i][3]), SL_EINVAL);
        cr_assert(strstr(sl_errmsg(), "H even") != NULL, "%s", sl_errmsg());
        cr_assert_eq(t.n, 9);
    }
    /* the same side twice: a duplicate name */
    cr_assert_eq(bistack_table_add(&lay, &t, "enc", 7, 3, 6, 1), SL_EEXIST);
    param_table_free(&t);
}

/* ---- a small case: V 7, E 3, H 6 (Hd 3), L 2 ---- */

#define MAXB 8

struct bi_case {
    struct bistack_layout lay;
    struct param_table tab;
    float *w, *g;
    struct arena ar;
    struct bistack_acts a;
    size_t T, B;
    int32_t lens[MAXB];
    float *rtop, *rh, *rc; /* loss weights: (T, B, H), (L, B, H), (L, B, H) */
    float p;
    uint64_t drop_seed;
};

/* The weights depend only on wseed; ids and loss weights are drawn from dseed. */
static void bi_case_make(struct bi_case *s, size_t T, size_t B, const int32_t *lens, float p, uint64_t wseed,
                         uint64_t dseed)
{
    struct rng r;
    const size_t V = 7, E = 3, H = 6, L = 2;
    memset(s, 0, sizeof *s);
    param_table_init(&s->tab);
    cr_assert_eq(bistack_table_add(&s->lay, &s->tab, "enc", V, E, H, L), 0);
    s->w = param_buf_create(s->tab.total);
    s->g = param_buf_create(s->tab.total);
    rng_seed(&r, wseed);
    for (size_t i = 0; i < s->tab.n; i++)
        param_init_uniform(s->w + s->tab.views[i].offset, s->tab.views[i].size, 0.6f, &r);
    s->T = T, s->B = B;
    struct arena m = {0};
    bistack_acts_carve(&s->a, &m, &s->lay, T, B);
    cr_assert_eq(arena_reserve(&s->ar, m.used), 0);
    bistack_acts_carve(&s->a, &s->ar, &s->lay, T, B);
    rng_seed(&r, dseed);
    for (size_t k = 0; k < T * B; k++)
        s->a.ids[k] = (int32_t)rng_below(&r, V);
    for (size_t b = 0; b < B; b++)
        s->lens[b] = s->a.lens[b] = lens[b];
    const size_t LBH = L * B * H;
    s->rtop = malloc(T * B * H * sizeof(float));
    s->rh = malloc(LBH * sizeof(float));
    s->rc = malloc(LBH * sizeof(float));
    param_init_uniform(s->rtop, T * B * H, 1, &r);
    param_init_uniform(s->rh, LBH, 1, &r);
    param_init_uniform(s->rc, LBH, 1, &r);
    s->p = p;
    s->drop_seed = 77;
}

static void bi_case_free(struct bi_case *s)
{
    param_buf_free(s->w), param_buf_free(s->g);
    arena_release(&s->ar);
    param_table_free(&s->tab);
    free(s->rtop), free(s->rh), free(s->rc);
}

static void bi_forward(struct bi_case *s)
{
    struct rng r;
    rng_seed(&r, s->drop_seed); /* the same dropout masks in every forward */
    bistack_forward(&s->lay, s->w, &s->a, s->p, &r);
}

/* loss = Σ rtop·top + Σ rh·h_T + Σ rc·c_T over all layers, in double */
static double bi_loss(struct bi_case *s)
{
    bi_forward(s);
    const size_t BH = s->B * s->lay.H;
    const float *top = bistack_top(&s->lay, &s->a);
    double L = 0;
    for (size_t k = 0; k < s->T * BH; k++)
        L += (double)s->rtop[k] * top[k];
    for (size_t l = 0; l < s->lay.L; l++)
        for (size_t k = 0; k < BH; k++)
            L += (double)s->rh[l * BH + k] * bistack_final_h(&s->a, l)[k] +
                 (double)s->rc[l * BH + k] * bistack_final_c(&s->a, l)[k];
    return L;
}

static double central_diff(struct bi_case *s, float *x, float eps)
{
    float save = *x;
    *x = save + eps;
    double lp = bi_loss(s);
    *x = save - eps;
    double lm = bi_loss(s);
    *x = save;
    return (lp - lm) / (2.0 * (double)eps);
}

/* Differences of bi_loss w.r.t. x (n) against g, extrapolated from steps eps and 2·eps (float forwards
 * make small steps noisy); returns the number of mismatches. */
static int check_group(struct bi_case *s, float *x, const float *g, size_t n, const char *what)
{
    int bad = 0;
    const float eps = 4e-2f;
    double worst = 0;
    for (size_t k = 0; k < n; k++) {
        double d1 = central_diff(s, x + k, eps), d2 = central_diff(s, x + k, 2 * eps);
        double num = (4 * d1 - d2) / 3; /* Richardson: the eps² terms cancel, so eps can be large */
        worst = fabs(g[k] - num) > worst ? fabs(g[k] - num) : worst;
        if (!close_enough(g[k], num, 5e-5, 2e-3)) {
            cr_log_error("%s[%zu]: analytic %.7g numeric %.7g", what, k, g[k], num);
            bad++;
        }
    }
    cr_log_info("%s: largest difference %.3g", what, worst);
    return bad;
}

static const int32_t case_lens[4] = {5, 2, 0, 4};

/* Every parameter of every group (embedding, both directions' W and b of both layers) is checked. */
static void bi_gradcheck(float p, int blas_threads)
{
    gemm_set_threads(blas_threads);
    struct bi_case s;
    bi_case_make(&s, 5, 4, case_lens, p, 9, 10);
    bi_loss(&s);
    if (p > 0) { /* the masks really drop something, on the embeddings and between the layers */
        size_t zeros0 = 0, zeros1 = 0;
        for (size_t k = 0; k < s.T * s.B * s.lay.E; k++)
            zeros0 += s.a.m0[k] == 0;
        for (size_t k = 0; k < s.T * s.B * s.lay.H; k++)
            zeros1 += s.a.md[1][k] == 0;
        cr_assert(zeros0 > 0 && zeros1 > 0);
    }
    bistack_backward(&s.lay, s.w, s.g, &s.a, s.rtop, s.rh, s.rc);
    int bad = 0;
    for (size_t i = 0; i < s.tab.n; i++) {
        const struct param_view *v = &s.tab.views[i];
        int b = check_group(&s, s.w + v->offset, s.g + v->offset, v->size, v->name);
        if (b)
            cr_log_error("%s: %d of %zu gradients wrong", v->name, b, v->size);
        bad += b;
    }
    cr_assert_eq(bad, 0, "p = %g, BLAS threads %d", p, blas_threads);
    bi_case_free(&s);
}

Test(bistack, gradient_check_two_layers_no_dropout) { bi_gradcheck(0.0f, 2); }

Test(bistack, gradient_check_two_layers_no_dropout_packed) { bi_gradcheck(0.0f, 1); }

Test(bistack, gradient_check_two_layers_with_dropout) { bi_gradcheck(0.3f, 1); }

/* Only the top outputs, or only the final states, receive gradient: the two parts add up to the whole,
 * and backward accumulates into g. */
Test(bistack, backward_parts_add_up_and_accumulate)
{
    struct bi_case s;
    bi_case_make(&s, 5, 4, case_lens, 0.0f, 9, 10);
    const size_t n = s.tab.total;
    float *g1 = param_buf_create(n), *g2 = param_buf_create(n);
    bi_forward(&s);
    bistack_backward(&s.lay, s.w, s.g, &s.a, s.rtop, s.rh, s.rc);
    bi_forward(&s);
    bistack_backward(&s.lay, s.w, g1, &s.a, s.rtop, NULL, NULL);
    bi_forward(&s);
    bistack_backward(&s.lay, s.w, g1, &s.a, NULL, s.rh, NULL);
    bi_forward(&s);
    bistack_backward(&s.lay, s.w, g1, &s.a, NULL, NULL, s.rc);
    bi_forward(&s);
    bistack_backward(&s.lay, s.w, g2, &s.a, NULL, NULL, NULL);
    size_t nonzero = 0;
    for (size_t k = 0; k < n; k++) {
        cr_assert(close_enough(g1[k], s.g[k], 1e-6, 1e-5), "g[%zu] parts %g whole %g", k, g1[k], s.g[k]);
        cr_assert_eq(g2[k], 0.0f);
        nonzero += s.g[k] != 0.0f;
    }
    cr_assert_gt(nonzero, n / 2);
    param_buf_free(g1), param_buf_free(g2);
    bi_case_free(&s);
}

/* ---- against plain LSTMs, one row at a time ---- */

/* y (n, Hd) = outputs of one plain LSTM over x (n, I) from zero states; OUT: hT, cT (Hd). */
static void plain_lstm(const float *W, const float *b, const float *x, size_t n, size_t I, size_t Hd, float *y,
                       float *hT, float *cT)
{
    float *buf = param_buf_create(lstm_acts_floats(n, 1, Hd));
    struct lstm_acts a;
    lstm_acts_carve(&a, buf, n, 1, Hd);
    lstm_forward(W, b, x, NULL, n, 1, I, Hd, NULL, NULL, &a);
    memcpy(y, a.h + Hd, n * Hd * sizeof(float));
    memcpy(hT, a.h + n * Hd, Hd * sizeof(float));
    memcpy(cT, a.c + n * Hd, Hd * sizeof(float));
    param_buf_free(buf);
}

Test(bistack, each_direction_equals_a_plain_lstm_on_the_row_read_by_hand)
{
    gemm_set_threads(1);
    struct bi_case s;
    const int32_t lens[5] = {5, 2, 0, 4, 1};
    bi_case_make(&s, 5, 5, lens, 0.0f, 3, 4);
    bi_forward(&s);
    const size_t T = s.T, B = s.B, E = s.lay.E, H = s.lay.H, Hd = H / 2, L = s.lay.L;
    const float *top = bistack_top(&s.lay, &s.a);
    float x[5 * 6], xr[5 * 6], yf[5 * 3], yb[5 * 3], hf[3], cf[3], hb[3], cb[3];
    for (size_t b = 0; b < B; b++) {
        const size_t n = (size_t)lens[b];
        if (n == 0) { /* zero states, and the outputs at its (padded) steps are those states */
            for (size_t l = 0; l < L; l++)
                for (size_t j = 0; j < H; j++) {
                    cr_assert_eq(bistack_final_h(&s.a, l)[b * H + j], 0.0f);
                    cr_assert_eq(bistack_final_c(&s.a, l)[b * H + j], 0.0f);
                }
            for (size_t t = 0; t < T; t++)
                for (size_t j = 0; j < H; j++)
                    cr_assert_eq(top[(t * B + b) * H + j], 0.0f);
            continue;
        }
        size_t I = E;
        for (size_t t = 0; t < n; t++)
            embed_forward(s.w + s.lay.emb, s.lay.V, E, &s.a.ids[t * B + b], 1, x + t * E);
        for (size_t l = 0; l < L; l++) {
            for (size_t t = 0; t < n; t++) /* the row backwards: x_{n-1} .. x_0 */
                memcpy(xr + t * I, x + (n - 1 - t) * I, I * sizeof(float));
            plain_lstm(s.w + s.lay.W[l][BISTACK_FWD], s.w + s.lay.b[l][BISTACK_FWD], x, n, I, Hd, yf, hf, cf);
            plain_lstm(s.w + s.lay.W[l][BISTACK_BWD], s.w + s.lay.b[l][BISTACK_BWD], xr, n, I, Hd, yb, hb, cb);
            for (size_t j = 0; j < Hd; j++) {
                cr_assert_float_eq(bistack_final_h(&s.a, l)[b * H + j], hf[j], 1e-6, "row %zu layer %zu", b, l);
                cr_assert_float_eq(bistack_final_c(&s.a, l)[b * H + j], cf[j], 1e-6, "row %zu layer %zu", b, l);
                cr_assert_float_eq(bistack_final_h(&s.a, l)[b * H + Hd + j], hb[j], 1e-6, "row %zu layer %zu", b, l);
                cr_assert_float_eq(bistack_final_c(&s.a, l)[b * H + Hd + j], cb[j], 1e-6, "row %zu layer %zu", b, l);
            }
            /* the next layer reads [fwd at t ; bwd after reading x_t] */
            for (size_t t = 0; t < n; t++) {
                memcpy(x + t * H, yf + t * Hd, Hd * sizeof(float));
                memcpy(x + t * H + Hd, yb + (n - 1 - t) * Hd, Hd * sizeof(float));
            }
            I = H;
        }
        for (size_t t = 0; t < T; t++)
            for (size_t j = 0; j < H; j++) {
                /* padded steps carry the final states of the top layer */
                float want = t < n ? x[t * H + j] : bistack_final_h(&s.a, L - 1)[b * H + j];
                cr_assert_float_eq(top[(t * B + b) * H + j], want, 1e-6, "row %zu step %zu j %zu", b, t, j);
            }
    }
    bi_case_free(&s);
}

/* ---- padding ---- */

Test(bistack, padding_changes_neither_real_outputs_nor_gradients)
{
    gemm_set_threads(1);
    struct bi_case s, big;
    bi_case_make(&s, 5, 4, case_lens, 0.0f, 5, 6);
    /* 3 more steps, 2 more rows; the original rows land at rows where[b] */
    const size_t where[4] = {2, 0, 5, 3};
    const int32_t big_lens[6] = {2, 8, 5, 4, 6, 0};
    bi_case_make(&big, 8, 6, big_lens, 0.0f, 5, 7);
    const size_t H = s.lay.H, L = s.lay.L;
    cr_assert_eq(memcmp(s.w, big.w, s.tab.total * sizeof(float)), 0);
    memset(big.rtop, 0, big.T * big.B * H * sizeof(float));
    memset(big.rh, 0, L * big.B * H * sizeof(float));
    memset(big.rc, 0, L * big.B * H * sizeof(float));
    for (size_t b = 0; b < s.B; b++) {
        const size_t bb = where[b];
        cr_assert_eq(big.a.lens[bb], s.a.lens[b]);
        for (size_t t = 0; t < (size_t)s.lens[b]; t++) {
            big.a.ids[t * big.B + bb] = s.a.ids[t * s.B + b];
            memcpy(big.rtop + (t * big.B + bb) * H, s.rtop + (t * s.B + b) * H, H * sizeof(float));
        }
        for (size_t l = 0; l < L; l++) {
            memcpy(big.rh + (l * big.B + bb) * H, s.rh + (l * s.B + b) * H, H * sizeof(float));
            memcpy(big.rc + (l * big.B + bb) * H, s.rc + (l * s.B + b) * H, H * sizeof(float));
        }
    }
    /* the small case's own loss weights on its padded steps are zeroed too */
    for (size_t t = 0; t < s.T; t++)
        for (size_t b = 0; b < s.B; b++)
            if ((int32_t)t >= s.lens[b])
                memset(s.rtop + (t * s.B + b) * H, 0, H * sizeof(float));
    bi_forward(&s);
    bi_forward(&big);
    const float *top = bistack_top(&s.lay, &s.a), *btop = bistack_top(&big.lay, &big.a);
    for (size_t b = 0; b < s.B; b++) {
        const size_t bb = where[b];
        for (size_t t = 0; t < (size_t)s.lens[b]; t++)
            for (size_t j = 0; j < H; j++)
                cr_assert_float_eq(btop[(t * big.B + bb) * H + j], top[(t * s.B + b) * H + j], 1e-6,
                                   "row %zu step %zu", b, t);
        for (size_t l = 0; l < L; l++)
            for (size_t j = 0; j < H; j++) {
                cr_assert_float_eq(bistack_final_h(&big.a, l)[bb * H + j], bistack_final_h(&s.a, l)[b * H + j],
                                   1e-6, "row %zu", b);
                cr_assert_float_eq(bistack_final_c(&big.a, l)[bb * H + j], bistack_final_c(&s.a, l)[b * H + j],
                                   1e-6, "row %zu", b);
            }
    }
    bistack_backward(&s.lay, s.w, s.g, &s.a, s.rtop, s.rh, s.rc);
    bistack_backward(&big.lay, big.w, big.g, &big.a, big.rtop, big.rh, big.rc);
    for (size_t i = 0; i < s.tab.n; i++) {
        const struct param_view *v = &s.tab.views[i];
        for (size_t k = 0; k < v->size; k++)
            cr_assert(close_enough(big.g[v->offset + k], s.g[v->offset + k], 1e-6, 1e-5), "%s[%zu]: %g vs %g",
                      v->name, k, big.g[v->offset + k], s.g[v->offset + k]);
    }
    bi_case_free(&s);
    bi_case_free(&big);
}

/* ---- learning: the next token from the top output needs the future ---- */

enum { LV = 8, LE = 8, LH = 16, LT = 10, LB = 32 };

struct learner {
    int bi;                    /* 1: nn/bistack, 0: nn/stack (forward only) */
    struct bistack_layout bl;
    struct stack_layout sl;
    struct param_table tab;
    size_t out_W, out_b;       /* (V, H), (V) */
    float *w, *g, *m, *v;
    struct arena ar;
    struct bistack_acts ba;
    struct stack_acts sa;
    int32_t *ids, *lens, *labels; /* borrowed from the acts: (T, B), (B); labels (T, B) */
    float *dtop;               /* (T, B, H) */
    float *scr;                /* proj scratch */
};

static size_t add_view(struct param_table *t, const char *name, int ndim, size_t d0, size_t d1)
{
    cr_assert_eq(param_table_add(t, name, ndim, (size_t[]){d0, d1}), 0);
    return t->views[t->n - 1].offset;
}

static void learner_make(struct learner *n, int bi, struct rng *r)
{
    memset(n, 0, sizeof *n);
    n->bi = bi;
    param_table_init(&n->tab);
    if (bi) {
        cr_assert_eq(bistack_table_add(&n->bl, &n->tab, "enc", LV, LE, LH, 1), 0);
    } else {
        n->sl.V = LV, n->sl.E = LE, n->sl.H = LH, n->sl.L = 1;
        n->sl.emb = add_view(&n->tab, "enc.emb", 2, LV, LE);
        n->sl.W[0] = add_view(&n->tab, "enc.lstm0.W", 2, 4 * LH, LE + LH);
        n->sl.b[0] = add_view(&n->tab, "enc.lstm0.b", 1, 4 * LH, 1);
    }
    n->out_W = add_view(&n->tab, "out.W", 2, LV, LH);
    n->out_b = add_view(&n->tab, "out.b", 1, LV, 1);
    const size_t total = n->tab.total;
    n->w = param_buf_create(total), n->g = param_buf_create(total);
    n->m = param_buf_create(total), n->v = param_buf_create(total);
    for (size_t i = 0; i < n->tab.n; i++)
        param_init_uniform(n->w + n->tab.views[i].offset, n->tab.views[i].size, 0.3f, r);
    struct arena meas = {0};
    if (bi)
        bistack_acts_carve(&n->ba, &meas, &n->bl, LT, LB);
    else
        stack_acts_carve(&n->sa, &meas, &n->sl, LT, LB);
    cr_assert_eq(arena_reserve(&n->ar, meas.used), 0);
    if (bi) {
        bistack_acts_carve(&n->ba, &n->ar, &n->bl, LT, LB);
        n->ids = n->ba.ids, n->lens = n->ba.lens;
    } else {
        stack_acts_carve(&n->sa, &n->ar, &n->sl, LT, LB);
        n->ids = n->sa.ids, n->lens = n->sa.lens;
    }
    n->labels = malloc(LT * LB * sizeof(int32_t));
    n->dtop = malloc(LT * LB * LH * sizeof(float));
    n->scr = malloc(proj_scratch_floats(LT * LB, LV) * sizeof(float));
}

static void learner_free(struct learner *n)
{
    param_buf_free(n->w), param_buf_free(n->g), param_buf_free(n->m), param_buf_free(n->v);
    arena_release(&n->ar);
    param_table_free(&n->tab);
    free(n->labels), free(n->dtop), free(n->scr);
}

/* A batch of uniform random tokens, lengths 5..LT; the label at step t is the token at t+1 (none at the
 * last real step and at padding). */
static void learner_batch(struct learner *n, struct rng *r)
{
    for (size_t b = 0; b < LB; b++)
        n->lens[b] = 5 + (int32_t)rng_below(r, LT - 4);
    for (size_t k = 0; k < LT * LB; k++)
        n->ids[k] = (int32_t)rng_below(r, LV);
    for (size_t t = 0; t < LT; t++)
        for (size_t b = 0; b < LB; b++)
            n->labels[t * LB + b] = (int32_t)t + 1 < n->lens[b] ? n->ids[(t + 1) * LB + b] : -1;
}

static const float *learner_forward(struct learner *n)
{
    if (n->bi) {
        bistack_forward(&n->bl, n->w, &n->ba, 0.0f, NULL);
        return bistack_top(&n->bl, &n->ba);
    }
    stack_forward(&n->sl, n->w, &n->sa, NULL, NULL, 0.0f, NULL);
    return stack_top(&n->sl, &n->sa);
}

static void learner_train(struct learner *n, struct rng *r, int steps)
{
    const struct adam_hparams hp = adam_defaults(0.02f);
    for (int s = 1; s <= steps; s++) {
        learner_batch(n, r);
        const float *top = learner_forward(n);
        memset(n->g, 0, n->tab.total * sizeof(float));
        memset(n->dtop, 0, LT * LB * LH * sizeof(float));
        double loss;
        size_t count;
        /* count is unknown until the pass: scale by a fixed 1/(T·B) */
        proj_xent_forward_backward(n->w + n->out_W, n->w + n->out_b, top, n->labels, LT * LB, LH, LV,
                                   1.0f / (LT * LB), n->g + n->out_W, n->g + n->out_b, n->dtop, n->scr, LT * LB,
                                   &loss, &count);
        if (n->bi)
            bistack_backward(&n->bl, n->w, n->g, &n->ba, n->dtop, NULL, NULL);
        else
            stack_backward(&n->sl, n->w, n->g, &n->sa, n->dtop, NULL, NULL, NULL, NULL);
        adam_step(n->w, n->g, n->m, n->v, n->tab.total, &hp, s);
    }
}

/* Fraction of labelled steps of a few fresh batches whose argmax is the label. */
static double learner_accuracy(struct learner *n, struct rng *r)
{
    size_t right = 0, total = 0;
    float *lp = malloc(LB * LV * sizeof(float));
    for (int rep = 0; rep < 4; rep++) {
        learner_batch(n, r);
        const float *top = learner_forward(n);
        for (size_t t = 0; t < LT; t++) {
            proj_logprobs(n->w + n->out_W, n->w + n->out_b, top + t * LB * LH, LB, LH, LV, lp);
            for (size_t b = 0; b < LB; b++) {
                int32_t y = n->labels[t * LB + b];
                if (y < 0)
                    continue;
                right += proj_argmax(lp + b * LV, LV) == (size_t)y;
                total++;
            }
        }
    }
    free(lp);
    return (double)right / (double)total;
}

Test(learn_bistack, next_token_needs_the_backward_direction)
{
    gemm_set_threads(1);
    double acc[2];
    for (int bi = 0; bi < 2; bi++) {
        struct rng r;
        rng_seed(&r, 2024);
        struct learner n;
        learner_make(&n, bi, &r);
        learner_train(&n, &r, 300);
        acc[bi] = learner_accuracy(&n, &r);
        cr_log_info("%s: next-token accuracy %.3f (chance %.3f)", bi ? "bidirectional" : "forward only", acc[bi],
                    1.0 / LV);
        learner_free(&n);
    }
    cr_assert_gt(acc[1], 0.9, "bidirectional accuracy %.3f", acc[1]);
    cr_assert_lt(acc[0], 0.25, "forward-only accuracy %.3f: the task leaks the future", acc[0]);
}
