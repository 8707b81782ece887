/* tests/test_attention.c: nn/attention (global attention, one step at a time) and the label-smoothed loss of
 * nn/proj: hand-computed values on a 2x3 example (every score), masking (exact zeros in the weights and the
 * gradients past each row's length, padded source states without influence, an empty source), central-
 * difference gradient checks of each score's step (w.r.t. h_t, Hs, the keys and every weight), of the keys
 * precompute, of both together, and of a chain of steps with input feeding through a toy recurrence
 * h_t = tanh(U [x_t; h~_{t-1}]); the decoding step (rows sharing a source, packed weights) against the
 * training step; the parameter layout; the smoothed loss (hand values, gradient check, eps = 0 equal bit for
 * bit to the plain loss). Every gradient check is also shown to fail on a deliberately broken gradient. */
#include <criterion/criterion.h>

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "nn/arena.h"
#include "nn/attention.h"
#include "nn/params.h"
#include "nn/proj.h"
#include "util/err.h"
#include "util/rng.h"

static void fill_uniform(float *x, size_t n, float a, struct rng *r)
{
    for (size_t k = 0; k < n; k++)
        x[k] = (2.0f * rng_uniform(r) - 1.0f) * a;
}

static int close_enough(double a, double n, double atol, double rtol)
{
    double m = fabs(a) > fabs(n) ? fabs(a) : fabs(n);
    return fabs(a - n) <= atol + rtol * m;
}

static float *zeros(size_t n) { return calloc(n + 1, sizeof(float)); }

/* Central differences of loss(ctx) w.r.t. x (n) against the analytic gradient g; returns the mismatches. */
static int quiet_checks;

static int fd_check(double (*loss)(void *), void *ctx, float *x, const float *g, size_t n, const char *what)
{
    int bad = 0;
    const float eps = 5e-3f;
    for (size_t k = 0; k < n; k++) {
        float save = x[k];
        x[k] = save + eps;
        double lp = loss(ctx);
        x[k] = save - eps;
        double lm = loss(ctx);
        x[k] = save;
        double num = (lp - lm) / (2.0 * eps);
        if (!close_enough(g[k], num, 2e-4, 1e-2)) {
            if (!quiet_checks)
                cr_log_error("%s[%zu]: analytic %g numeric %g", what, k, g[k], num);
            bad++;
        }
    }
    return bad;
}

/* Perturbs g[k] and checks that fd_check now fails: the check can fail. */
static void expect_broken_fails(double (*loss)(void *), void *ctx, float *x, float *g, size_t n, size_t k,
                                const char *what)
{
    float save = g[k];
    g[k] += copysignf(0.02f + 0.05f * fabsf(save), save); /* well outside the check's tolerance */
    quiet_checks = 1;
    int bad = fd_check(loss, ctx, x, g, n, what);
    quiet_checks = 0;
    g[k] = save;
    cr_assert_eq(bad, 1, "%s: a broken gradient was not caught (%d mismatches)", what, bad);
}

/* ---- one attention step on tiny shapes ---- */

enum loss_mode { MODE_STEP, MODE_KEYS, MODE_FULL };

struct acase {
    size_t B, S, H, A, KW;
    int32_t len[4];
    struct param_table tab;
    struct attn_layout lay;
    float *w, *g;                /* (tab.total) */
    float *Hs, *dHs;             /* (S, B, H) */
    float *keys, *dkeys, *Rk;    /* (S, B, KW) */
    float *h, *dh, *R;           /* (B, H); R: loss weights of h~ */
    float *a, *ch, *ht, *q;      /* the step's arrays */
    float *dpre, *dq;            /* the step's backward arrays */
    float *scratch;
    struct attn_step st;
    enum loss_mode mode;
};

static void acase_make(struct acase *c, enum attn_score s, uint64_t seed)
{
    struct rng r;
    rng_seed(&r, seed);
    c->B = 3, c->S = 4, c->H = 3, c->A = 2;
    c->len[0] = 4, c->len[1] = 2, c->len[2] = 3;
    param_table_init(&c->tab);
    cr_assert_eq(attn_layout_add(&c->lay, &c->tab, "att", s, c->H, c->A), 0);
    c->KW = attn_key_width(&c->lay);
    const size_t B = c->B, S = c->S, H = c->H, SB = S * B;
    c->w = param_buf_create(c->tab.total);
    c->g = param_buf_create(c->tab.total);
    for (size_t i = 0; i < c->tab.n; i++)
        fill_uniform(c->w + c->tab.views[i].offset, c->tab.views[i].size, 0.9f, &r);
    c->Hs = zeros(SB * H), c->dHs = zeros(SB * H);
    c->keys = zeros(SB * c->KW), c->dkeys = zeros(SB * c->KW), c->Rk = zeros(SB * c->KW);
    c->h = zeros(B * H), c->dh = zeros(B * H), c->R = zeros(B * H);
    fill_uniform(c->Hs, SB * H, 1.0f, &r);
    fill_uniform(c->keys, SB * c->KW, 1.0f, &r);
    fill_uniform(c->Rk, SB * c->KW, 1.0f, &r);
    fill_uniform(c->h, B * H, 1.0f, &r);
    fill_uniform(c->R, B * H, 1.0f, &r);
    c->a = zeros(B * S), c->ch = zeros(B * 2 * H), c->ht = zeros(B * H), c->q = zeros(B * c->A);
    c->dpre = zeros(B * H), c->dq = zeros(B * c->A);
    c->scratch = zeros(attn_backward_floats(&c->lay, B, S));
    c->st = (struct attn_step){.a = c->a, .ch = c->ch, .ht = c->ht, .q = c->q, .dpre = c->dpre, .dq = c->dq};
    c->mode = MODE_STEP;
}

static void acase_free(struct acase *c)
{
    param_table_free(&c->tab);
    param_buf_free(c->w), param_buf_free(c->g);
    free(c->Hs), free(c->dHs), free(c->keys), free(c->dkeys), free(c->Rk), free(c->h), free(c->dh), free(c->R);
    free(c->a), free(c->ch), free(c->ht), free(c->q), free(c->dpre), free(c->dq), free(c->scratch);
}

static void acase_forward(struct acase *c)
{
    if (c->mode != MODE_STEP)
        attn_keys_forward(&c->lay, c->w, c->Hs, c->S, c->B, c->keys);
    if (c->mode != MODE_KEYS)
        attn_step_forward(&c->lay, c->w, NULL, c->Hs, c->keys, c->len, c->S, c->B, c->h, &c->st);
}

/* MODE_KEYS: sum Rk·keys; otherwise sum R·h~ */
static double acase_loss(void *ctx)
{
    struct acase *c = ctx;
    acase_forward(c);
    double L = 0.0;
    if (c->mode == MODE_KEYS)
        for (size_t k = 0; k < c->S * c->B * c->KW; k++)
            L += (double)c->Rk[k] * c->keys[k];
    else
        for (size_t k = 0; k < c->B * c->H; k++)
            L += (double)c->R[k] * c->ht[k];
    return L;
}

/* The analytic gradients of acase_loss into g, dh, dHs, dkeys (zeroed first). */
static void acase_grads(struct acase *c)
{
    const size_t SB = c->S * c->B;
    memset(c->g, 0, c->tab.total * sizeof(float));
    memset(c->dh, 0, c->B * c->H * sizeof(float));
    memset(c->dHs, 0, SB * c->H * sizeof(float));
    memset(c->dkeys, 0, SB * c->KW * sizeof(float));
    acase_forward(c);
    if (c->mode == MODE_KEYS) {
        attn_keys_backward(&c->lay, c->w, c->g, c->Hs, c->S, c->B, c->Rk, c->dHs);
        return;
    }
    attn_step_backward(&c->lay, c->w, NULL, c->g, c->Hs, c->keys, c->len, c->S, c->B, &c->st, c->R, c->dh, c->dHs,
                       c->KW ? c->dkeys : NULL, c->scratch);
    attn_step_backward_weights(&c->lay, c->g, &c->st, c->B);
    if (c->mode == MODE_FULL)
        attn_keys_backward(&c->lay, c->w, c->g, c->Hs, c->S, c->B, c->dkeys, c->dHs);
}

static void step_gradcheck(enum attn_score s, enum loss_mode mode)
{
    struct acase c;
    acase_make(&c, s, 10 + (uint64_t)s);
    c.mode = mode;
    acase_grads(&c);
    const size_t SB = c.S * c.B;
    int bad = fd_check(acase_loss, &c, c.Hs, c.dHs, SB * c.H, "dHs");
    bad += fd_check(acase_loss, &c, c.w, c.g, c.tab.total, "dw");
    if (mode != MODE_KEYS)
        bad += fd_check(acase_loss, &c, c.h, c.dh, c.B * c.H, "dh");
    if (mode == MODE_STEP)
        bad += fd_check(acase_loss, &c, c.keys, c.dkeys, SB * c.KW, "dkeys");
    cr_assert_eq(bad, 0, "score %s, mode %d", attn_score_name(s), (int)mode);
    /* every weight the loss depends on has a nonzero gradient (so the checks above tested something) */
    const struct attn_layout *L = &c.lay;
    const char *used[] = {"att.Wa", "att.W1", "att.W2", "att.v", "att.Wc"};
    for (size_t i = 0; i < sizeof used / sizeof *used; i++) {
        const struct param_view *v = param_table_find(&c.tab, used[i]);
        int expected = v && (mode == MODE_KEYS ? (i < 2) : mode == MODE_FULL || i >= 2);
        if (!expected)
            continue;
        size_t nz = 0;
        for (size_t k = 0; k < v->size; k++)
            nz += c.g[v->offset + k] != 0.0f;
        cr_assert_eq(nz, v->size, "%s: %zu of %zu gradient entries nonzero", used[i], nz, v->size);
    }
    expect_broken_fails(acase_loss, &c, c.Hs, c.dHs, SB * c.H, 1, "dHs (broken on purpose)");
    const size_t wk = mode == MODE_KEYS ? (s == ATTN_GENERAL ? L->Wa : L->W1) + 1 : L->Wc + 1;
    expect_broken_fails(acase_loss, &c, c.w, c.g, c.tab.total, wk, "dw (broken on purpose)");
    if (mode != MODE_KEYS)
        expect_broken_fails(acase_loss, &c, c.h, c.dh, c.B * c.H, 2, "dh (broken on purpose)");
    acase_free(&c);
}

Test(attention, gradient_check_dot_step) { step_gradcheck(ATTN_DOT, MODE_STEP); }
Test(attention, gradient_check_general_step) { step_gradcheck(ATTN_GENERAL, MODE_STEP); }
Test(attention, gradient_check_mlp_step) { step_gradcheck(ATTN_MLP, MODE_STEP); }
Test(attention, gradient_check_general_keys) { step_gradcheck(ATTN_GENERAL, MODE_KEYS); }
Test(attention, gradient_check_mlp_keys) { step_gradcheck(ATTN_MLP, MODE_KEYS); }
Test(attention, gradient_check_general_keys_and_step) { step_gradcheck(ATTN_GENERAL, MODE_FULL); }
Test(attention, gradient_check_mlp_keys_and_step) { step_gradcheck(ATTN_MLP, MODE_FULL); }

/* ---- masking ---- */

static void masking_case(enum attn_score s)
{
    struct acase c;
    acase_make(&c, s, 20 + (uint64_t)s);
    c.mode = MODE_FULL;
    c.len[1] = 0; /* an empty source */
    const size_t B = c.B, S = c.S, H = c.H, SB = S * B;
    acase_grads(&c);
    for (size_t b = 0; b < B; b++) {
        double sum = 0.0;
        for (size_t t = 0; t < S; t++) {
            float p = c.a[b * S + t];
            if ((int32_t)t >= c.len[b])
                cr_assert(p == 0.0f && !signbit(p), "a[%zu,%zu] = %g past len %d", b, t, p, c.len[b]);
            else
                cr_assert_gt(p, 0.0f);
            sum += p;
        }
        cr_assert_float_eq(sum, c.len[b] ? 1.0 : 0.0, 1e-6, "row %zu sums to %g", b, sum);
        for (size_t t = (size_t)c.len[b]; t < S; t++) {
            for (size_t j = 0; j < H; j++)
                cr_assert(c.dHs[(t * B + b) * H + j] == 0.0f, "dHs[%zu,%zu,%zu] = %g", t, b, j,
                          c.dHs[(t * B + b) * H + j]);
            for (size_t j = 0; j < c.KW; j++)
                cr_assert(c.dkeys[(t * B + b) * c.KW + j] == 0.0f);
        }
    }
    /* the empty row: context 0, h~ = tanh(W_c[:, H:] h), and finite */
    for (size_t j = 0; j < H; j++) {
        cr_assert(c.ch[1 * 2 * H + j] == 0.0f);
        double pre = 0.0;
        for (size_t k = 0; k < H; k++)
            pre += (double)c.w[c.lay.Wc + j * 2 * H + H + k] * c.h[1 * H + k];
        cr_assert_float_eq(c.ht[1 * H + j], tanh(pre), 1e-6);
    }
    /* padded source states (and their keys) have no influence on the step */
    float *ht0 = malloc(B * H * sizeof(float)), *a0 = malloc(B * S * sizeof(float));
    memcpy(ht0, c.ht, B * H * sizeof(float));
    memcpy(a0, c.a, B * S * sizeof(float));
    for (size_t b = 0; b < B; b++)
        for (size_t t = (size_t)c.len[b]; t < S; t++)
            for (size_t j = 0; j < H; j++)
                c.Hs[(t * B + b) * H + j] = 1e3f * (float)(j + 1);
    acase_forward(&c);
    cr_assert_eq(memcmp(ht0, c.ht, B * H * sizeof(float)), 0);
    cr_assert_eq(memcmp(a0, c.a, B * S * sizeof(float)), 0);
    /* the step never reads them: NaN there reaches no output and no gradient (0·NaN would) */
    for (size_t b = 0; b < B; b++)
        for (size_t t = (size_t)c.len[b]; t < S; t++) {
            for (size_t j = 0; j < H; j++)
                c.Hs[(t * B + b) * H + j] = NAN;
            for (size_t j = 0; j < c.KW; j++)
                c.keys[(t * B + b) * c.KW + j] = NAN;
        }
    c.mode = MODE_STEP;
    acase_grads(&c);
    cr_assert_eq(memcmp(ht0, c.ht, B * H * sizeof(float)), 0);
    cr_assert_eq(memcmp(a0, c.a, B * S * sizeof(float)), 0);
    for (size_t k = 0; k < c.tab.total; k++)
        cr_assert(isfinite(c.g[k]), "g[%zu] = %g", k, c.g[k]);
    for (size_t k = 0; k < B * H; k++)
        cr_assert(isfinite(c.dh[k]), "dh[%zu] = %g", k, c.dh[k]);
    for (size_t k = 0; k < SB * H; k++)
        cr_assert(isfinite(c.dHs[k]), "dHs[%zu] = %g", k, c.dHs[k]);
    for (size_t k = 0; k < SB * c.KW; k++)
        cr_assert(isfinite(c.dkeys[k]), "dkeys[%zu] = %g", k, c.dkeys[k]);
    free(ht0), free(a0);
    acase_free(&c);
}

Test(attention, masking_dot) { masking_case(ATTN_DOT); }
Test(attention, masking_general) { masking_case(ATTN_GENERAL); }
Test(attention, masking_mlp) { masking_case(ATTN_MLP); }

/* ---- hand-computed values: B = 2 rows, S = 3 positions, H = 2 ---- */

/* Hs (3, 2, 2): row 0 reads (1,0) (0,1) (1,1); row 1 (len 2) reads (2,0) (0,0) and a masked (9,9).
 * h: row 0 (ln 2, ln 3), row 1 (ln 3 / 2, 5). W_c = [I | I], so h~ = tanh(c + h). */
static const float hand_Hs[12] = {1, 0, 2, 0, 0, 1, 0, 0, 1, 1, 9, 9};
static const int32_t hand_len[2] = {3, 2};

static void hand_layout(struct attn_layout *lay, struct param_table *t, float **w, enum attn_score s, size_t A)
{
    param_table_init(t);
    cr_assert_eq(attn_layout_add(lay, t, "att", s, 2, A), 0);
    *w = param_buf_create(t->total);
    for (size_t j = 0; j < 2; j++)
        (*w)[lay->Wc + j * 4 + j] = 1.0f, (*w)[lay->Wc + j * 4 + 2 + j] = 1.0f;
}

static void hand_check(const float *a, const float *ch, const float *ht, const float *h, const double ea[2][3],
                       const double ec[2][2])
{
    for (size_t b = 0; b < 2; b++) {
        for (size_t t = 0; t < 3; t++)
            cr_assert_float_eq(a[b * 3 + t], ea[b][t], 1e-6, "a[%zu,%zu] = %g, expected %g", b, t, a[b * 3 + t],
                               ea[b][t]);
        for (size_t j = 0; j < 2; j++) {
            cr_assert_float_eq(ch[b * 4 + j], ec[b][j], 1e-6, "c[%zu,%zu]", b, j);
            cr_assert_eq(ch[b * 4 + 2 + j], h[b * 2 + j]);
            cr_assert_float_eq(ht[b * 2 + j], tanh(ec[b][j] + h[b * 2 + j]), 1e-6, "h~[%zu,%zu]", b, j);
        }
    }
}

Test(attention, hand_computed_dot_and_general_with_identity)
{
    const float h[4] = {logf(2.0f), logf(3.0f), logf(3.0f) / 2.0f, 5.0f};
    /* row 0: e = (ln 2, ln 3, ln 6), a = (2, 3, 6)/11, c = (8/11, 9/11);
     * row 1: e = (ln 3, 0, masked), a = (3/4, 1/4, 0), c = (3/2, 0) */
    const double ea[2][3] = {{2.0 / 11, 3.0 / 11, 6.0 / 11}, {0.75, 0.25, 0.0}};
    const double ec[2][2] = {{8.0 / 11, 9.0 / 11}, {1.5, 0.0}};
    for (int general = 0; general <= 1; general++) {
        struct attn_layout lay;
        struct param_table t;
        float *w;
        hand_layout(&lay, &t, &w, general ? ATTN_GENERAL : ATTN_DOT, 0);
        float keys[12], a[6], ch[8], ht[4];
        if (general) { /* W_a = I: the same scores as dot */
            w[lay.Wa] = w[lay.Wa + 3] = 1.0f;
            attn_keys_forward(&lay, w, hand_Hs, 3, 2, keys);
            for (size_t k = 0; k < 12; k++)
                cr_assert_eq(keys[k], hand_Hs[k]);
        }
        struct attn_step st = {.a = a, .ch = ch, .ht = ht, .q = NULL};
        attn_step_forward(&lay, w, NULL, hand_Hs, general ? keys : NULL, hand_len, 3, 2, h, &st);
        hand_check(a, ch, ht, h, ea, ec);
        param_buf_free(w);
        param_table_free(&t);
    }
}

Test(attention, hand_computed_mlp)
{
    /* A = 1, W_1 = (1, 0), W_2 = (0, 1), v = 2: e = 2 tanh(hs_0 + h_1) */
    struct attn_layout lay;
    struct param_table t;
    float *w;
    hand_layout(&lay, &t, &w, ATTN_MLP, 1);
    w[lay.W1] = 1.0f, w[lay.W2 + 1] = 1.0f, w[lay.v] = 2.0f;
    const float h[4] = {0.5f, -0.25f, 0.0f, 0.5f};
    double ea[2][3], ec[2][2];
    for (size_t b = 0; b < 2; b++) {
        double e[3], sum = 0.0;
        for (size_t s = 0; s < (size_t)hand_len[b]; s++)
            sum += e[s] = exp(2.0 * tanh(hand_Hs[(s * 2 + b) * 2] + h[b * 2 + 1]));
        ec[b][0] = ec[b][1] = 0.0;
        for (size_t s = 0; s < 3; s++) {
            ea[b][s] = (int32_t)s < hand_len[b] ? e[s] / sum : 0.0;
            for (size_t j = 0; j < 2; j++)
                ec[b][j] += ea[b][s] * hand_Hs[(s * 2 + b) * 2 + j];
        }
    }
    float keys[6], a[6], ch[8], ht[4], q[2];
    attn_keys_forward(&lay, w, hand_Hs, 3, 2, keys);
    struct attn_step st = {.a = a, .ch = ch, .ht = ht, .q = q};
    attn_step_forward(&lay, w, NULL, hand_Hs, keys, hand_len, 3, 2, h, &st);
    cr_assert_eq(q[0], h[1]);
    cr_assert_eq(q[1], h[3]);
    hand_check(a, ch, ht, h, ea, ec);
    param_buf_free(w);
    param_table_free(&t);
}

/* ---- input feeding through time: h_t = tanh(U [x_t; h~_{t-1}]), h~_0 = 0, loss = sum_t R_t·h~_t ---- */

struct chain {
    struct acase c;    /* Hs, len, weights; its h, R, step arrays are unused */
    size_t T, X;
    float *U, *dU;     /* (H, X + H) */
    float *x, *dx;     /* (T, B, X) */
    float *in;         /* (T, B, X + H) */
    float *hs, *dhs;   /* (T, B, H) decoder states */
    float *R;          /* (T, B, H) */
    float *carry, *dpre, *din; /* (B, H), (B, H), (B, X + H) */
    struct arena ar;
    struct attn_acts acts;
};

static void chain_make(struct chain *ch, enum attn_score s)
{
    struct rng r;
    acase_make(&ch->c, s, 30 + (uint64_t)s);
    rng_seed(&r, 40 + (uint64_t)s);
    const size_t B = ch->c.B, H = ch->c.H, T = 3, X = 2, XH = X + H;
    ch->T = T, ch->X = X;
    ch->U = zeros(H * XH), ch->dU = zeros(H * XH);
    ch->x = zeros(T * B * X), ch->dx = zeros(T * B * X);
    ch->in = zeros(T * B * XH);
    ch->hs = zeros(T * B * H), ch->dhs = zeros(T * B * H);
    ch->R = zeros(T * B * H);
    ch->carry = zeros(B * H), ch->dpre = zeros(B * H), ch->din = zeros(B * XH);
    fill_uniform(ch->U, H * XH, 0.9f, &r);
    fill_uniform(ch->x, T * B * X, 1.0f, &r);
    fill_uniform(ch->R, T * B * H, 1.0f, &r);
    memset(&ch->ar, 0, sizeof ch->ar);
    attn_acts_carve(&ch->acts, &ch->ar, &ch->c.lay, T, B, ch->c.S);
    cr_assert_eq(arena_reserve(&ch->ar, ch->ar.used), 0);
    attn_acts_carve(&ch->acts, &ch->ar, &ch->c.lay, T, B, ch->c.S);
}

static void chain_free(struct chain *ch)
{
    acase_free(&ch->c);
    free(ch->U), free(ch->dU), free(ch->x), free(ch->dx), free(ch->in), free(ch->hs), free(ch->dhs), free(ch->R);
    free(ch->carry), free(ch->dpre), free(ch->din);
    arena_release(&ch->ar);
}

static double chain_loss(void *ctx)
{
    struct chain *ch = ctx;
    struct acase *c = &ch->c;
    const size_t B = c->B, H = c->H, X = ch->X, XH = X + H;
    attn_keys_forward(&c->lay, c->w, c->Hs, c->S, B, c->keys);
    double L = 0.0;
    for (size_t t = 0; t < ch->T; t++) {
        float *in = ch->in + t * B * XH, *h = ch->hs + t * B * H;
        const float *prev = t ? ch->acts.ht + (t - 1) * B * H : NULL;
        for (size_t b = 0; b < B; b++) {
            memcpy(in + b * XH, ch->x + (t * B + b) * X, X * sizeof(float));
            for (size_t j = 0; j < H; j++)
                in[b * XH + X + j] = prev ? prev[b * H + j] : 0.0f;
        }
        for (size_t b = 0; b < B; b++)
            for (size_t j = 0; j < H; j++) {
                double s = 0.0;
                for (size_t k = 0; k < XH; k++)
                    s += (double)ch->U[j * XH + k] * in[b * XH + k];
                h[b * H + j] = (float)tanh(s);
            }
        struct attn_step st = attn_acts_step(&ch->acts, t);
        attn_step_forward(&c->lay, c->w, NULL, c->Hs, c->keys, c->len, c->S, B, h, &st);
        for (size_t k = 0; k < B * H; k++)
            L += (double)ch->R[t * B * H + k] * st.ht[k];
    }
    return L;
}

static void chain_grads(struct chain *ch)
{
    struct acase *c = &ch->c;
    const size_t B = c->B, H = c->H, X = ch->X, XH = X + H, SB = c->S * B;
    memset(c->g, 0, c->tab.total * sizeof(float));
    memset(c->dHs, 0, SB * H * sizeof(float));
    memset(c->dkeys, 0, SB * c->KW * sizeof(float));
    memset(ch->dU, 0, H * XH * sizeof(float));
    memset(ch->dx, 0, ch->T * B * X * sizeof(float));
    memset(ch->carry, 0, B * H * sizeof(float));
    chain_loss(ch);
    for (size_t t = ch->T; t-- > 0;) {
        /* dh~_t = R_t + what step t+1 read of it through its input */
        float *dht = ch->carry;
        for (size_t k = 0; k < B * H; k++)
            dht[k] += ch->R[t * B * H + k];
        float *dh = ch->dhs + t * B * H;
        memset(dh, 0, B * H * sizeof(float));
        struct attn_step st = attn_acts_step(&ch->acts, t);
        attn_step_backward(&c->lay, c->w, NULL, c->g, c->Hs, c->keys, c->len, c->S, B, &st, dht, dh, c->dHs,
                           c->KW ? c->dkeys : NULL, ch->acts.scratch);
        /* h = tanh(U in)  =>  dpre = dh (1 - h²), dU += dpre^T in, din = dpre U */
        const float *h = ch->hs + t * B * H, *in = ch->in + t * B * XH;
        for (size_t k = 0; k < B * H; k++)
            ch->dpre[k] = dh[k] * (1.0f - h[k] * h[k]);
        memset(ch->din, 0, B * XH * sizeof(float));
        for (size_t b = 0; b < B; b++)
            for (size_t j = 0; j < H; j++)
                for (size_t k = 0; k < XH; k++) {
                    ch->dU[j * XH + k] += ch->dpre[b * H + j] * in[b * XH + k];
                    ch->din[b * XH + k] += ch->dpre[b * H + j] * ch->U[j * XH + k];
                }
        for (size_t b = 0; b < B; b++) {
            memcpy(ch->dx + (t * B + b) * X, ch->din + b * XH, X * sizeof(float));
            memcpy(ch->carry + b * H, ch->din + b * XH + X, H * sizeof(float)); /* dh~_{t-1} */
        }
    }
    /* W_c's (and W_2's) gradient over all steps at once, as the decoder does it */
    struct attn_step all = attn_acts_step(&ch->acts, 0);
    attn_step_backward_weights(&c->lay, c->g, &all, ch->T * B);
    attn_keys_backward(&c->lay, c->w, c->g, c->Hs, c->S, B, c->dkeys, c->dHs);
}

static void chain_gradcheck(enum attn_score s)
{
    struct chain ch;
    chain_make(&ch, s);
    struct acase *c = &ch.c;
    const size_t XH = ch.X + c->H;
    chain_grads(&ch);
    int bad = fd_check(chain_loss, &ch, c->w, c->g, c->tab.total, "dw");
    bad += fd_check(chain_loss, &ch, c->Hs, c->dHs, c->S * c->B * c->H, "dHs");
    bad += fd_check(chain_loss, &ch, ch.U, ch.dU, c->H * XH, "dU");
    bad += fd_check(chain_loss, &ch, ch.x, ch.dx, ch.T * c->B * ch.X, "dx");
    cr_assert_eq(bad, 0, "score %s", attn_score_name(s));
    /* the first step's input x_0 reaches the loss of the last step only through h~_0, h~_1 (input
     * feeding): with R_0 = R_1 = 0 its gradient must still be nonzero */
    memset(ch.R, 0, 2 * c->B * c->H * sizeof(float));
    chain_grads(&ch);
    size_t nz = 0;
    for (size_t k = 0; k < c->B * ch.X; k++)
        nz += ch.dx[k] != 0.0f;
    cr_assert_eq(nz, c->B * ch.X, "x_0 must influence the last step through input feeding");
    cr_assert_eq(fd_check(chain_loss, &ch, ch.x, ch.dx, ch.T * c->B * ch.X, "dx (last step only)"), 0);
    expect_broken_fails(chain_loss, &ch, ch.x, ch.dx, ch.T * c->B * ch.X, 1, "dx (broken on purpose)");
    expect_broken_fails(chain_loss, &ch, c->w, c->g, c->tab.total, c->lay.Wc, "dw (broken on purpose)");
    chain_free(&ch);
}

Test(attention, gradient_check_input_feeding_dot) { chain_gradcheck(ATTN_DOT); }
Test(attention, gradient_check_input_feeding_general) { chain_gradcheck(ATTN_GENERAL); }
Test(attention, gradient_check_input_feeding_mlp) { chain_gradcheck(ATTN_MLP); }

/* ---- backward accumulates ---- */

Test(attention, step_backward_accumulates)
{
    for (enum attn_score s = ATTN_DOT; s <= ATTN_MLP; s++) {
        struct acase c;
        acase_make(&c, s, 50 + (uint64_t)s);
        c.mode = MODE_FULL;
        acase_grads(&c);
        const size_t n = c.tab.total, nH = c.S * c.B * c.H;
        float *g1 = malloc(n * sizeof(float)), *dHs1 = malloc(nH * sizeof(float)), *dh1 = malloc(c.B * c.H * sizeof(float));
        memcpy(g1, c.g, n * sizeof(float));
        memcpy(dHs1, c.dHs, nH * sizeof(float));
        memcpy(dh1, c.dh, c.B * c.H * sizeof(float));
        memset(c.dkeys, 0, c.S * c.B * c.KW * sizeof(float));
        /* a second pass on top of the first, without zeroing */
        attn_step_backward(&c.lay, c.w, NULL, c.g, c.Hs, c.keys, c.len, c.S, c.B, &c.st, c.R, c.dh, c.dHs,
                           c.KW ? c.dkeys : NULL, c.scratch);
        attn_step_backward_weights(&c.lay, c.g, &c.st, c.B);
        attn_keys_backward(&c.lay, c.w, c.g, c.Hs, c.S, c.B, c.dkeys, c.dHs);
        for (size_t k = 0; k < n; k++)
            cr_assert_float_eq(c.g[k], 2.0f * g1[k], 1e-5, "%s g[%zu]", attn_score_name(s), k);
        for (size_t k = 0; k < nH; k++)
            cr_assert_float_eq(c.dHs[k], 2.0f * dHs1[k], 1e-5);
        for (size_t k = 0; k < c.B * c.H; k++)
            cr_assert_float_eq(c.dh[k], 2.0f * dh1[k], 1e-5);
        free(g1), free(dHs1), free(dh1);
        acase_free(&c);
    }
}

/* ---- decoding: rows sharing sources, packed weights ---- */

Test(attention, decode_step_matches_the_training_step_on_expanded_sources)
{
    for (enum attn_score s = ATTN_DOT; s <= ATTN_MLP; s++) {
        struct acase c; /* B = 3 sources */
        acase_make(&c, s, 60 + (uint64_t)s);
        c.mode = MODE_FULL;
        const size_t B = c.B, S = c.S, H = c.H, KW = c.KW, M = 5;
        const int32_t src_row[5] = {2, 0, 2, 1, 2};
        struct rng r;
        rng_seed(&r, 70);
        float *h = zeros(M * H);
        fill_uniform(h, M * H, 1.0f, &r);
        attn_keys_forward(&c.lay, c.w, c.Hs, S, B, c.keys);
        /* the reference: the training step over M sources, row r a copy of source src_row[r] */
        float *He = zeros(S * M * H), *Ke = zeros(S * M * KW);
        int32_t le[5];
        for (size_t m = 0; m < M; m++) {
            le[m] = c.len[src_row[m]];
            for (size_t t = 0; t < S; t++) {
                memcpy(He + (t * M + m) * H, c.Hs + (t * B + (size_t)src_row[m]) * H, H * sizeof(float));
                memcpy(Ke + (t * M + m) * KW, c.keys + (t * B + (size_t)src_row[m]) * KW, KW * sizeof(float));
            }
        }
        float *ra = zeros(M * S), *rch = zeros(M * 2 * H), *rht = zeros(M * H), *rq = zeros(M * c.A);
        struct attn_step st = {.a = ra, .ch = rch, .ht = rht, .q = rq};
        attn_step_forward(&c.lay, c.w, NULL, He, Ke, le, S, M, h, &st);
        float *a = zeros(M * S), *ht = zeros(M * H), *scr = param_buf_create(attn_decode_floats(&c.lay, M));
        float *P = param_buf_create(attn_pack_floats(&c.lay));
        attn_pack(&c.lay, c.w, P);
        for (int packed = 0; packed <= 1; packed++) {
            attn_decode_step(&c.lay, c.w, packed ? P : NULL, c.Hs, c.keys, c.len, S, B, src_row, M, h, a, ht, scr);
            const double tol = packed ? 1e-5 : 1e-6;
            for (size_t k = 0; k < M * S; k++) {
                cr_assert_float_eq(a[k], ra[k], tol, "%s packed=%d a[%zu]", attn_score_name(s), packed, k);
                if ((int32_t)(k % S) >= le[k / S])
                    cr_assert(a[k] == 0.0f);
            }
            for (size_t k = 0; k < M * H; k++)
                cr_assert_float_eq(ht[k], rht[k], tol, "%s packed=%d h~[%zu]", attn_score_name(s), packed, k);
        }
        /* src_row NULL: row r reads source r */
        attn_decode_step(&c.lay, c.w, NULL, He, Ke, le, S, M, NULL, M, h, a, ht, scr);
        for (size_t k = 0; k < M * H; k++)
            cr_assert_float_eq(ht[k], rht[k], 1e-6);
        free(h), free(He), free(Ke), free(ra), free(rch), free(rht), free(rq), free(a), free(ht);
        param_buf_free(scr), param_buf_free(P);
        acase_free(&c);
    }
}

/* ---- layout ---- */

Test(attention, layout_names_shapes_and_sizes)
{
    struct param_table t;
    struct attn_layout lay;
    param_table_init(&t);
    cr_assert_eq(param_table_add(&t, "out.W", 2, (size_t[]){5, 4}), 0);
    cr_assert_eq(attn_layout_add(&lay, &t, "att", ATTN_MLP, 4, 6), 0);
    cr_assert_eq(lay.score, ATTN_MLP);
    cr_assert_eq(lay.H, 4);
    cr_assert_eq(lay.A, 6);
    const struct { const char *name; size_t off, d0, d1; } want[] = {
        {"att.W1", lay.W1, 6, 4}, {"att.W2", lay.W2, 6, 4}, {"att.v", lay.v, 6, 1}, {"att.Wc", lay.Wc, 4, 8}};
    for (size_t i = 0; i < 4; i++) {
        const struct param_view *v = param_table_find(&t, want[i].name);
        cr_assert_not_null(v, "%s", want[i].name);
        cr_assert_eq(v->offset, want[i].off, "%s", want[i].name);
        cr_assert_eq(v->shape[0], want[i].d0);
        cr_assert_eq(v->shape[1], want[i].d1);
    }
    cr_assert_null(param_table_find(&t, "att.Wa"));
    cr_assert_eq(param_table_count(&t), 20 + attn_param_floats(ATTN_MLP, 4, 6));
    cr_assert_eq(attn_key_width(&lay), 6);
    param_table_free(&t);

    param_table_init(&t);
    cr_assert_eq(attn_layout_add(&lay, &t, "a", ATTN_GENERAL, 3, 99), 0);
    cr_assert_eq(lay.A, 0);
    cr_assert_eq(t.n, 2);
    cr_assert_str_eq(t.views[0].name, "a.Wa");
    cr_assert_str_eq(t.views[1].name, "a.Wc");
    cr_assert_eq(param_table_count(&t), attn_param_floats(ATTN_GENERAL, 3, 99));
    cr_assert_eq(attn_key_width(&lay), 3);
    param_table_free(&t);

    param_table_init(&t);
    cr_assert_eq(attn_layout_add(&lay, &t, "att", ATTN_DOT, 3, 0), 0);
    cr_assert_eq(t.n, 1);
    cr_assert_eq(param_table_count(&t), 18);
    cr_assert_eq(attn_key_width(&lay), 0);
    cr_assert_eq(attn_layout_add(&lay, &t, "att", ATTN_DOT, 3, 0), SL_EEXIST);
    cr_assert_eq(attn_layout_add(&lay, &t, "x", ATTN_NONE, 3, 0), SL_EINVAL);
    cr_assert_eq(attn_layout_add(&lay, &t, "x", ATTN_DOT, 0, 0), SL_EINVAL);
    cr_assert_eq(attn_layout_add(&lay, &t, "x", ATTN_MLP, 3, 0), SL_EINVAL);
    cr_assert_eq(attn_layout_add(&lay, &t, "a-prefix-far-too-long-for-a-parameter-name", ATTN_DOT, 3, 0),
                 SL_EINVAL);
    cr_assert(strstr(sl_errmsg(), "too long") != NULL);
    cr_assert_eq(attn_param_floats(ATTN_NONE, 3, 3), 0);
    param_table_free(&t);
}

Test(attention, score_names_round_trip)
{
    for (enum attn_score s = ATTN_NONE; s <= ATTN_MLP; s++) {
        enum attn_score back = ATTN_MLP + 1;
        cr_assert_eq(attn_score_parse(attn_score_name(s), &back), 0);
        cr_assert_eq(back, s);
    }
    enum attn_score x = ATTN_DOT;
    cr_assert_eq(attn_score_parse("foo", &x), SL_EINVAL);
    cr_assert(strstr(sl_errmsg(), "'foo'") != NULL);
    cr_assert_eq(attn_score_parse("", &x), SL_EINVAL);
    cr_assert_eq(x, ATTN_DOT);
    cr_assert_null(attn_score_name((enum attn_score)7));
}

/* ---- label smoothing ---- */

struct xcase {
    size_t N, H, V, chunk;
    float eps, scale;
    float *W, *b, *Y;  /* (V, H), (V), (N, H) */
    int32_t labels[6];
    float *scratch;
};

static void xcase_make(struct xcase *x, uint64_t seed)
{
    struct rng r;
    rng_seed(&r, seed);
    x->N = 6, x->H = 4, x->V = 7, x->chunk = 4, x->eps = 0.1f, x->scale = 0.7f;
    x->W = zeros(x->V * x->H), x->b = zeros(x->V), x->Y = zeros(x->N * x->H);
    fill_uniform(x->W, x->V * x->H, 1.0f, &r);
    fill_uniform(x->b, x->V, 0.5f, &r);
    fill_uniform(x->Y, x->N * x->H, 1.0f, &r);
    const int32_t lab[6] = {3, 0, -1, 6, 2, 3};
    memcpy(x->labels, lab, sizeof lab);
    x->scratch = zeros(proj_scratch_floats(x->chunk, x->V));
}

static void xcase_free(struct xcase *x) { free(x->W), free(x->b), free(x->Y), free(x->scratch); }

static double xcase_loss(void *ctx)
{
    struct xcase *x = ctx;
    double loss, nll;
    size_t n;
    proj_xent_smoothed_forward_backward(x->W, x->b, x->Y, x->labels, x->N, x->H, x->V, x->eps, x->scale, NULL,
                                        NULL, NULL, x->scratch, x->chunk, &loss, &nll, &n);
    return x->scale * loss;
}

Test(attention, smoothed_loss_gradient_check)
{
    struct xcase x;
    xcase_make(&x, 80);
    float *dW = zeros(x.V * x.H), *db = zeros(x.V), *dY = zeros(x.N * x.H);
    double loss, nll;
    size_t n;
    proj_xent_smoothed_forward_backward(x.W, x.b, x.Y, x.labels, x.N, x.H, x.V, x.eps, x.scale, dW, db, dY,
                                        x.scratch, x.chunk, &loss, &nll, &n);
    cr_assert_eq(n, 5);
    cr_assert_gt(loss, nll * 0.5);
    int bad = fd_check(xcase_loss, &x, x.W, dW, x.V * x.H, "dW") + fd_check(xcase_loss, &x, x.b, db, x.V, "db") +
              fd_check(xcase_loss, &x, x.Y, dY, x.N * x.H, "dY");
    cr_assert_eq(bad, 0);
    /* the ignored row gets no gradient; the smoothed dlogits of a row sum to 0, so db sums to 0 */
    for (size_t k = 0; k < x.H; k++)
        cr_assert(dY[2 * x.H + k] == 0.0f);
    double sdb = 0.0;
    for (size_t k = 0; k < x.V; k++)
        sdb += db[k];
    cr_assert_float_eq(sdb, 0.0, 1e-5);
    expect_broken_fails(xcase_loss, &x, x.Y, dY, x.N * x.H, 5, "dY (broken on purpose)");
    expect_broken_fails(xcase_loss, &x, x.b, db, x.V, 1, "db (broken on purpose)");
    free(dW), free(db), free(dY);
    xcase_free(&x);
}

Test(attention, smoothed_loss_with_eps_0_is_the_plain_loss_bit_for_bit)
{
    struct xcase x;
    xcase_make(&x, 81);
    const size_t nW = x.V * x.H, nY = x.N * x.H;
    float *dW[2], *db[2], *dY[2];
    double loss[2], nll = -1.0;
    size_t n[2];
    for (int k = 0; k < 2; k++) { /* nonzero starting gradients: both accumulate */
        dW[k] = zeros(nW), db[k] = zeros(x.V), dY[k] = zeros(nY);
        for (size_t i = 0; i < nW; i++)
            dW[k][i] = 0.01f * (float)i;
        for (size_t i = 0; i < nY; i++)
            dY[k][i] = -0.02f * (float)i;
    }
    proj_xent_forward_backward(x.W, x.b, x.Y, x.labels, x.N, x.H, x.V, x.scale, dW[0], db[0], dY[0], x.scratch,
                               x.chunk, &loss[0], &n[0]);
    proj_xent_smoothed_forward_backward(x.W, x.b, x.Y, x.labels, x.N, x.H, x.V, 0.0f, x.scale, dW[1], db[1],
                                        dY[1], x.scratch, x.chunk, &loss[1], &nll, &n[1]);
    cr_assert(loss[0] == loss[1], "loss %.17g vs %.17g", loss[0], loss[1]);
    cr_assert(nll == loss[0]);
    cr_assert_eq(n[0], n[1]);
    cr_assert_eq(memcmp(dW[0], dW[1], nW * sizeof(float)), 0);
    cr_assert_eq(memcmp(db[0], db[1], x.V * sizeof(float)), 0);
    cr_assert_eq(memcmp(dY[0], dY[1], nY * sizeof(float)), 0);
    /* with smoothing the reported unsmoothed sum is still the plain loss */
    double ls;
    proj_xent_smoothed_forward_backward(x.W, x.b, x.Y, x.labels, x.N, x.H, x.V, 0.1f, x.scale, NULL, NULL, NULL,
                                        x.scratch, x.chunk, &ls, &nll, &n[1]);
    cr_assert(nll == loss[0]);
    cr_assert(ls != loss[0]);
    for (int k = 0; k < 2; k++)
        free(dW[k]), free(db[k]), free(dY[k]);
    xcase_free(&x);
}

Test(attention, smoothed_loss_hand_computed)
{
    /* H = 1, Y = 1, W = (0, ln 2, ln 3), b = 0: p = (1, 2, 3)/6; label 1, eps = 0.1, scale 1 */
    const float W[3] = {0.0f, logf(2.0f), logf(3.0f)}, b[3] = {0}, Y[1] = {1.0f};
    const int32_t lab[1] = {1};
    float dW[3] = {0}, db[3] = {0}, dY[1] = {0}, scratch[3];
    double loss, nll;
    size_t n;
    proj_xent_smoothed_forward_backward(W, b, Y, lab, 1, 1, 3, 0.1f, 1.0f, dW, db, dY, scratch, 1, &loss, &nll, &n);
    const double nlp[3] = {log(6.0), log(3.0), log(2.0)}; /* -log p_v */
    cr_assert_float_eq(nll, nlp[1], 1e-6);
    cr_assert_float_eq(loss, 0.9 * nlp[1] + 0.1 * (nlp[0] + nlp[1] + nlp[2]) / 3.0, 1e-6);
    const double p[3] = {1.0 / 6, 2.0 / 6, 3.0 / 6};
    double dy = 0.0;
    for (size_t k = 0; k < 3; k++) {
        double dz = p[k] - (k == 1 ? 0.9 : 0.0) - 0.1 / 3.0;
        cr_assert_float_eq(db[k], dz, 1e-6, "db[%zu] = %g, expected %g", k, db[k], dz);
        cr_assert_float_eq(dW[k], dz * Y[0], 1e-6);
        dy += dz * W[k];
    }
    cr_assert_float_eq(dY[0], dy, 1e-6);
}
