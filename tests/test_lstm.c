/* tests/test_lstm.c: nn/lstm and nn/stack — the LSTM layer against a naive double-precision reference
 * of the equations (with padding and an initial state), finite-difference gradient checks of the layer
 * (w.r.t. W, b, x, h0, c0, with variable lengths; on the BLAS path and on the packed path of every ISA
 * the CPU has, which must also match the BLAS path) and of the embedding + 2-layer stack with dropout
 * (BLAS and packed), the single decoding step against the batch forward, and the cell on a prepared
 * [x | h] block (the attention decoder's steps) against the layer, with its gradient check. */
#include <criterion/criterion.h>

#include <math.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "nn/arena.h"
#include "nn/gemm.h"
#include "nn/lstm.h"
#include "nn/params.h"
#include "nn/stack.h"
#include "tests/helpers.h"
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

static double sigm(double x) { return 1.0 / (1.0 + exp(-x)); }

/* ---- one layer ---- */

struct layer_case {
    size_t T, B, I, H;
    int32_t lens[4];
    float *W, *b, *x, *h0, *c0; /* (4H, I+H), (4H), (T, B, I), (B, H), (B, H) */
    float *ry, *rh, *rc;        /* loss weights: (T, B, H), (B, H), (B, H) */
    float *acts_buf;
    struct lstm_acts a;
    /* cells: layer_loss runs the steps as lstm_cell_forward on [x | h] blocks (no padding) into these */
    int cells;
    float *xh, *gv, *ch, *cc, *ctc; /* (T, B, I+H), (T, B, 4H), (T+1, B, H) h and c, (T, B, H) */
};

static void layer_case_make(struct layer_case *c, uint64_t seed)
{
    struct rng r;
    rng_seed(&r, seed);
    c->T = 5, c->B = 3, c->I = 4, c->H = 3;
    c->lens[0] = 5, c->lens[1] = 2, c->lens[2] = 0;
    size_t G = 4 * c->H;
    c->W = malloc(G * (c->I + c->H) * sizeof(float));
    c->b = malloc(G * sizeof(float));
    c->x = malloc(c->T * c->B * c->I * sizeof(float));
    c->h0 = malloc(c->B * c->H * sizeof(float));
    c->c0 = malloc(c->B * c->H * sizeof(float));
    c->ry = malloc(c->T * c->B * c->H * sizeof(float));
    c->rh = malloc(c->B * c->H * sizeof(float));
    c->rc = malloc(c->B * c->H * sizeof(float));
    fill_uniform(c->W, G * (c->I + c->H), 0.7f, &r);
    fill_uniform(c->b, G, 0.5f, &r);
    fill_uniform(c->x, c->T * c->B * c->I, 1.0f, &r);
    fill_uniform(c->h0, c->B * c->H, 0.8f, &r);
    fill_uniform(c->c0, c->B * c->H, 0.8f, &r);
    fill_uniform(c->ry, c->T * c->B * c->H, 1.0f, &r);
    fill_uniform(c->rh, c->B * c->H, 1.0f, &r);
    fill_uniform(c->rc, c->B * c->H, 1.0f, &r);
    c->acts_buf = param_buf_create(lstm_acts_floats(c->T, c->B, c->H));
    lstm_acts_carve(&c->a, c->acts_buf, c->T, c->B, c->H);
    c->cells = 0;
    c->xh = malloc(c->T * c->B * (c->I + c->H) * sizeof(float));
    c->gv = malloc(c->T * c->B * G * sizeof(float));
    c->ch = malloc((c->T + 1) * c->B * c->H * sizeof(float));
    c->cc = malloc((c->T + 1) * c->B * c->H * sizeof(float));
    c->ctc = malloc(c->T * c->B * c->H * sizeof(float));
}

static void layer_case_free(struct layer_case *c)
{
    free(c->W), free(c->b), free(c->x), free(c->h0), free(c->c0), free(c->ry), free(c->rh), free(c->rc);
    free(c->xh), free(c->gv), free(c->ch), free(c->cc), free(c->ctc);
    param_buf_free(c->acts_buf);
}

/* The T steps as cells: xh_t = [x_t | h_{t-1}] rows, states into ch, cc (step 0 = h0, c0). */
static void cells_forward(struct layer_case *c)
{
    const size_t B = c->B, I = c->I, H = c->H, IH = I + H, BH = B * H;
    memcpy(c->ch, c->h0, BH * sizeof(float));
    memcpy(c->cc, c->c0, BH * sizeof(float));
    for (size_t t = 0; t < c->T; t++) {
        float *xh = c->xh + t * B * IH;
        for (size_t r = 0; r < B; r++) {
            memcpy(xh + r * IH, c->x + (t * B + r) * I, I * sizeof(float));
            memcpy(xh + r * IH + I, c->ch + t * BH + r * H, H * sizeof(float));
        }
        lstm_cell_forward(c->W, NULL, c->b, xh, B, I, H, c->cc + t * BH, c->gv + t * B * 4 * H, c->cc + (t + 1) * BH,
                          c->ch + (t + 1) * BH, c->ctc + t * BH);
    }
}

/* loss = Σ ry·y + Σ rh·h_T + Σ rc·c_T, in double */
static double layer_loss(struct layer_case *c)
{
    if (c->cells) {
        cells_forward(c);
        const size_t BH = c->B * c->H;
        double L = 0;
        for (size_t k = 0; k < c->T * BH; k++)
            L += (double)c->ry[k] * c->ch[BH + k];
        for (size_t k = 0; k < BH; k++)
            L += (double)c->rh[k] * c->ch[c->T * BH + k] + (double)c->rc[k] * c->cc[c->T * BH + k];
        return L;
    }
    lstm_forward(c->W, c->b, c->x, c->lens, c->T, c->B, c->I, c->H, c->h0, c->c0, &c->a);
    const size_t BH = c->B * c->H;
    double L = 0;
    for (size_t k = 0; k < c->T * BH; k++)
        L += (double)c->ry[k] * c->a.h[BH + k];
    for (size_t k = 0; k < BH; k++)
        L += (double)c->rh[k] * c->a.h[c->T * BH + k] + (double)c->rc[k] * c->a.c[c->T * BH + k];
    return L;
}

Test(lstm, forward_matches_naive_reference_with_padding)
{
    struct layer_case c;
    layer_case_make(&c, 1);
    layer_loss(&c);
    const size_t T = c.T, B = c.B, I = c.I, H = c.H, G = 4 * H;
    for (size_t r = 0; r < B; r++) {
        double h[8], cc[8];
        for (size_t j = 0; j < H; j++)
            h[j] = c.h0[r * H + j], cc[j] = c.c0[r * H + j];
        for (size_t t = 0; t < T; t++) {
            if ((int32_t)t < c.lens[r]) {
                double pre[32], hn[8];
                for (size_t g = 0; g < G; g++) {
                    double s = c.b[g];
                    for (size_t k = 0; k < I; k++)
                        s += (double)c.W[g * (I + H) + k] * c.x[(t * B + r) * I + k];
                    for (size_t k = 0; k < H; k++)
                        s += (double)c.W[g * (I + H) + I + k] * h[k];
                    pre[g] = s;
                }
                for (size_t j = 0; j < H; j++) {
                    double i = sigm(pre[j]), f = sigm(pre[H + j]), g = tanh(pre[2 * H + j]), o = sigm(pre[3 * H + j]);
                    cc[j] = f * cc[j] + i * g;
                    hn[j] = o * tanh(cc[j]);
                }
                memcpy(h, hn, sizeof hn);
            }
            for (size_t j = 0; j < H; j++) {
                cr_assert_float_eq(c.a.h[((t + 1) * B + r) * H + j], h[j], 1e-5, "h t=%zu r=%zu j=%zu", t, r, j);
                cr_assert_float_eq(c.a.c[((t + 1) * B + r) * H + j], cc[j], 1e-5, "c t=%zu r=%zu j=%zu", t, r, j);
            }
        }
    }
    /* the row of length 0 keeps its initial state; the row of length 2 its state after step 2 */
    for (size_t j = 0; j < H; j++) {
        cr_assert_eq(c.a.h[(T * B + 2) * H + j], c.h0[2 * H + j]);
        cr_assert_eq(c.a.c[(T * B + 1) * H + j], c.a.c[(2 * B + 1) * H + j]);
    }
    layer_case_free(&c);
}

/* Checks all entries of x (n) against g; returns the number of mismatches. */
static int quiet_checks;

static int check_layer(struct layer_case *c, float *x, const float *g, size_t n, const char *what)
{
    int bad = 0;
    const float eps = 5e-3f;
    for (size_t k = 0; k < n; k++) {
        float save = x[k];
        x[k] = save + eps;
        double lp = layer_loss(c);
        x[k] = save - eps;
        double lm = layer_loss(c);
        x[k] = save;
        double num = (lp - lm) / (2.0 * eps);
        if (!close_enough(g[k], num, 2e-4, 1e-2)) {
            if (!quiet_checks) /* the deliberately broken check below fails silently */
                cr_log_error("%s[%zu]: analytic %g numeric %g", what, k, g[k], num);
            bad++;
        }
    }
    return bad;
}

static void layer_grads(struct layer_case *c, int with_state, float *dW, float *db, float *dx, float *dh0, float *dc0)
{
    const size_t BH = c->B * c->H;
    float *scratch = malloc(lstm_scratch_floats(c->B, c->H) * sizeof(float));
    layer_loss(c);
    lstm_backward(c->W, c->x, c->lens, c->T, c->B, c->I, c->H, &c->a, c->ry, with_state ? c->rh : NULL,
                  with_state ? c->rc : NULL, dW, db, dx, dh0, dc0, scratch);
    (void)BH;
    free(scratch);
}

/* The layer gradient check, on the BLAS path (isa NULL: acts.pk unset) or on the packed path with the
 * kernels of isa (the recurrent products take it when acts.pk is set, T > 1 and BLAS runs one thread),
 * which must also give the forward states and the gradients of the BLAS path. */
static void layer_gradcheck(const char *isa)
{
    if (isa && !th_gemm_isa(isa))
        cr_skip_test("this CPU cannot run the %s kernels", isa);
    struct layer_case c;
    layer_case_make(&c, 2);
    const size_t G = 4 * c.H, nW = G * (c.I + c.H), nx = c.T * c.B * c.I, BH = c.B * c.H;
    const size_t nh = (c.T + 1) * BH;
    float *pk = NULL;
    if (isa) {
        gemm_set_threads(1);
        cr_assert_eq(gemm_get_threads(), 1);
        pk = param_buf_create(lstm_pack_floats(c.H));
        c.a.pk = pk;
    }
    float *dW = calloc(nW, sizeof(float)), *db = calloc(G, sizeof(float)), *dx = calloc(nx, sizeof(float));
    float *dh0 = calloc(BH, sizeof(float)), *dc0 = calloc(BH, sizeof(float));
    layer_grads(&c, 1, dW, db, dx, dh0, dc0);
    if (isa) {
        /* the packed path ran (it packed W into pk), and agrees with the BLAS path */
        size_t nonzero = 0;
        for (size_t k = 0; k < lstm_pack_floats(c.H); k++)
            nonzero += pk[k] != 0.0f;
        cr_assert_gt(nonzero, 0, "the packed path was not taken");
        float *h1 = malloc(nh * sizeof(float)), *c1 = malloc(nh * sizeof(float));
        layer_loss(&c);
        memcpy(h1, c.a.h, nh * sizeof(float));
        memcpy(c1, c.a.c, nh * sizeof(float));
        c.a.pk = NULL;
        layer_loss(&c);
        for (size_t k = 0; k < nh; k++) {
            cr_assert_float_eq(h1[k], c.a.h[k], 1e-6, "h[%zu] packed %g, BLAS %g", k, h1[k], c.a.h[k]);
            cr_assert_float_eq(c1[k], c.a.c[k], 1e-6, "c[%zu] packed %g, BLAS %g", k, c1[k], c.a.c[k]);
        }
        float *rW = calloc(nW, sizeof(float)), *rb = calloc(G, sizeof(float)), *rx = calloc(nx, sizeof(float));
        float *rh0 = calloc(BH, sizeof(float)), *rc0 = calloc(BH, sizeof(float));
        layer_grads(&c, 1, rW, rb, rx, rh0, rc0);
        for (size_t k = 0; k < nW; k++)
            cr_assert(close_enough(dW[k], rW[k], 1e-6, 1e-5), "dW[%zu] packed %g, BLAS %g", k, dW[k], rW[k]);
        for (size_t k = 0; k < G; k++)
            cr_assert(close_enough(db[k], rb[k], 1e-6, 1e-5), "db[%zu] packed %g, BLAS %g", k, db[k], rb[k]);
        for (size_t k = 0; k < nx; k++)
            cr_assert(close_enough(dx[k], rx[k], 1e-6, 1e-5), "dx[%zu] packed %g, BLAS %g", k, dx[k], rx[k]);
        for (size_t k = 0; k < BH; k++) {
            cr_assert(close_enough(dh0[k], rh0[k], 1e-6, 1e-5), "dh0[%zu] packed %g, BLAS %g", k, dh0[k], rh0[k]);
            cr_assert(close_enough(dc0[k], rc0[k], 1e-6, 1e-5), "dc0[%zu] packed %g, BLAS %g", k, dc0[k], rc0[k]);
        }
        free(h1), free(c1), free(rW), free(rb), free(rx), free(rh0), free(rc0);
        c.a.pk = pk; /* the finite differences below run the packed forward too */
    }
    int bad = check_layer(&c, c.W, dW, nW, "dW") + check_layer(&c, c.b, db, G, "db") +
              check_layer(&c, c.x, dx, nx, "dx") + check_layer(&c, c.h0, dh0, BH, "dh0") +
              check_layer(&c, c.c0, dc0, BH, "dc0");
    cr_assert_eq(bad, 0, "%s path", isa ? isa : "BLAS");
    /* x at padded steps has no influence: exactly zero gradient */
    for (size_t t = 2; t < c.T; t++)
        for (size_t k = 0; k < c.I; k++)
            cr_assert_eq(dx[(t * c.B + 1) * c.I + k], 0.0f);
    /* the zero-length row passes the final-state gradient straight to the initial state */
    for (size_t j = 0; j < c.H; j++) {
        double dy_sum = 0;
        for (size_t t = 0; t < c.T; t++)
            dy_sum += c.ry[(t * c.B + 2) * c.H + j];
        cr_assert_float_eq(dh0[2 * c.H + j], c.rh[2 * c.H + j] + dy_sum, 1e-5);
        cr_assert_float_eq(dc0[2 * c.H + j], c.rc[2 * c.H + j], 1e-6);
    }
    /* a deliberately broken gradient fails the check */
    dW[5] *= 1.5f;
    dW[5] += 0.01f;
    quiet_checks = 1;
    cr_assert_eq(check_layer(&c, c.W, dW, nW, "dW (broken on purpose)"), 1);
    quiet_checks = 0;
    free(dW), free(db), free(dx), free(dh0), free(dc0);
    param_buf_free(pk);
    layer_case_free(&c);
}

/* An arena measures with a NULL base (nn/arena.h): carving from NULL must do no pointer arithmetic on
 * it (undefined; UBSan in clang reports "applying non-zero offset to null pointer", found by fuzzing). */
Test(lstm, carve_from_null_gives_null_arrays)
{
    struct lstm_acts a;
    memset(&a, 0xAB, sizeof a);
    lstm_acts_carve(&a, NULL, 3, 2, 4);
    cr_assert_null(a.gates);
    cr_assert_null(a.h);
    cr_assert_null(a.c);
    cr_assert_null(a.tc);
    float buf[512];
    lstm_acts_carve(&a, buf, 3, 2, 4);
    /* gates (T, B, 4H) = 96 floats, then h and c ((T + 1) B H = 32 each), then tc */
    cr_assert_eq(a.gates, buf);
    cr_assert_eq(a.h, buf + 96);
    cr_assert_eq(a.c, buf + 128);
    cr_assert_eq(a.tc, buf + 160);
}

Test(lstm, gradient_check_with_padding_and_initial_state) { layer_gradcheck(NULL); }

Test(lstm, gradient_check_packed_generic) { layer_gradcheck("generic"); }

Test(lstm, gradient_check_packed_avx2) { layer_gradcheck("avx2"); }

Test(lstm, gradient_check_packed_avx512) { layer_gradcheck("avx512"); }

Test(lstm, backward_accumulates_and_null_state_grads_are_allowed)
{
    struct layer_case c;
    layer_case_make(&c, 3);
    const size_t G = 4 * c.H, nW = G * (c.I + c.H);
    float *dW1 = calloc(nW, sizeof(float)), *db1 = calloc(G, sizeof(float));
    float *dW2 = calloc(nW, sizeof(float)), *db2 = calloc(G, sizeof(float));
    layer_grads(&c, 0, dW1, db1, NULL, NULL, NULL);
    layer_grads(&c, 0, dW2, db2, NULL, NULL, NULL);
    layer_grads(&c, 0, dW2, db2, NULL, NULL, NULL);
    for (size_t k = 0; k < nW; k++)
        cr_assert_float_eq(dW2[k], 2 * dW1[k], 1e-5);
    for (size_t k = 0; k < G; k++)
        cr_assert_float_eq(db2[k], 2 * db1[k], 1e-5);
    free(dW1), free(db1), free(dW2), free(db2);
    layer_case_free(&c);
}

Test(lstm, step_forward_equals_one_step_of_the_batch_forward)
{
    struct layer_case c;
    layer_case_make(&c, 4);
    layer_loss(&c);
    const size_t B = c.B, H = c.H, G = 4 * H;
    float h[3 * 3], cc[3 * 3], gates[3 * 15];
    cr_assert_eq(lstm_step_floats(3, 3), 45);
    memcpy(h, c.h0, sizeof h);
    memcpy(cc, c.c0, sizeof cc);
    lstm_step_forward(c.W, c.b, c.x, B, c.I, H, h, cc, gates);
    (void)G;
    for (size_t k = 0; k < 2 * H; k++) { /* rows 0 and 1 are real at t = 0 */
        cr_assert_float_eq(h[k], c.a.h[B * H + k], 1e-6);
        cr_assert_float_eq(cc[k], c.a.c[B * H + k], 1e-6);
    }
    layer_case_free(&c);
}

/* ---- one cell on a prepared [x | h] block (the attention decoder's steps) ---- */

/* The gradients of the cells' loss as the attention decoder computes them: per step the cell backward and
 * d[x | h] = dG · W, the weights' gradient once over all T·B rows at the end. */
static void cells_grads(struct layer_case *c, float *dW, float *db, float *dx, float *dh0, float *dc0)
{
    const size_t B = c->B, I = c->I, H = c->H, IH = I + H, BH = B * H;
    float *dxh = calloc(B * IH, sizeof(float)), *dh = malloc(BH * sizeof(float)), *dc = malloc(BH * sizeof(float));
    layer_loss(c);
    memcpy(dc, c->rc, BH * sizeof(float));
    for (size_t r = 0; r < B; r++) /* the recurrent half of dxh is d h_t from step t+1: rh at the end */
        memcpy(dxh + r * IH + I, c->rh + r * H, H * sizeof(float));
    for (size_t t = c->T; t-- > 0;) {
        for (size_t r = 0; r < B; r++)
            for (size_t j = 0; j < H; j++)
                dh[r * H + j] = c->ry[(t * B + r) * H + j] + dxh[r * IH + I + j];
        memset(dxh, 0, B * IH * sizeof(float));
        lstm_cell_backward(c->W, NULL, B, I, H, c->gv + t * B * 4 * H, dh, dc, c->cc + t * BH, c->ctc + t * BH, dxh);
        for (size_t r = 0; r < B; r++)
            memcpy(dx + (t * B + r) * I, dxh + r * IH, I * sizeof(float));
    }
    for (size_t r = 0; r < B; r++)
        memcpy(dh0 + r * H, dxh + r * IH + I, H * sizeof(float));
    memcpy(dc0, dc, BH * sizeof(float));
    lstm_cell_backward_weights(c->gv, c->xh, c->T * B, I, H, dW, db);
    free(dxh), free(dh), free(dc);
}

Test(lstm, cells_on_xh_blocks_match_the_layer_and_pass_a_gradient_check)
{
    gemm_set_threads(1);
    struct layer_case c;
    layer_case_make(&c, 5);
    const size_t T = c.T, B = c.B, H = c.H, G = 4 * H, nW = G * (c.I + H), nx = T * B * c.I, BH = B * H;
    /* the same states as the layer's forward without padding (one fused product instead of two) */
    lstm_forward(c.W, c.b, c.x, NULL, T, B, c.I, H, c.h0, c.c0, &c.a);
    c.cells = 1;
    layer_loss(&c);
    for (size_t k = 0; k < (T + 1) * BH; k++) {
        cr_assert(close_enough(c.ch[k], c.a.h[k], 1e-6, 1e-5), "h[%zu] cells %g, layer %g", k, c.ch[k], c.a.h[k]);
        cr_assert(close_enough(c.cc[k], c.a.c[k], 1e-6, 1e-5), "c[%zu] cells %g, layer %g", k, c.cc[k], c.a.c[k]);
    }
    float *dW = calloc(nW, sizeof(float)), *db = calloc(G, sizeof(float)), *dx = calloc(nx, sizeof(float));
    float *dh0 = calloc(BH, sizeof(float)), *dc0 = calloc(BH, sizeof(float));
    cells_grads(&c, dW, db, dx, dh0, dc0);
    int bad = check_layer(&c, c.W, dW, nW, "dW") + check_layer(&c, c.b, db, G, "db") +
              check_layer(&c, c.x, dx, nx, "dx") + check_layer(&c, c.h0, dh0, BH, "dh0") +
              check_layer(&c, c.c0, dc0, BH, "dc0");
    cr_assert_eq(bad, 0, "%d cell gradients wrong", bad);
    /* the deferred weight product accumulates: a second backward doubles dW and db */
    float *dW2 = malloc(nW * sizeof(float)), *db2 = malloc(G * sizeof(float));
    memcpy(dW2, dW, nW * sizeof(float));
    memcpy(db2, db, G * sizeof(float));
    cells_grads(&c, dW2, db2, dx, dh0, dc0);
    for (size_t k = 0; k < nW; k++)
        cr_assert_float_eq(dW2[k], 2 * dW[k], 1e-5);
    for (size_t k = 0; k < G; k++)
        cr_assert_float_eq(db2[k], 2 * db[k], 1e-5);
    /* a deliberately broken gradient fails the check */
    dW[7] += 0.02f + 0.05f * fabsf(dW[7]);
    quiet_checks = 1;
    cr_assert_eq(check_layer(&c, c.W, dW, nW, "dW (broken on purpose)"), 1);
    quiet_checks = 0;
    free(dW), free(db), free(dx), free(dh0), free(dc0), free(dW2), free(db2);
    layer_case_free(&c);
}

/* ---- the stack: embedding + 2 layers, dropout ---- */

struct stack_case {
    struct stack_layout lay;
    struct param_table tab;
    float *w, *g;
    struct arena ar;
    struct stack_acts a;
    float *h0, *c0, *rtop, *rh, *rc; /* (L,B,H), (L,B,H), (T,B,H), (L,B,H), (L,B,H) */
    float p;
    uint64_t drop_seed;
};

static void stack_case_make(struct stack_case *s, float p)
{
    struct rng r;
    rng_seed(&r, 9);
    const size_t V = 6, E = 3, H = 4, L = 2, T = 4, B = 3;
    memset(s, 0, sizeof *s);
    s->lay.V = V, s->lay.E = E, s->lay.H = H, s->lay.L = L;
    param_table_init(&s->tab);
    cr_assert_eq(param_table_add(&s->tab, "emb", 2, (size_t[]){V, E}), 0);
    s->lay.emb = s->tab.views[0].offset;
    for (size_t l = 0; l < L; l++) {
        char n[16];
        snprintf(n, sizeof n, "W%zu", l);
        cr_assert_eq(param_table_add(&s->tab, n, 2, (size_t[]){4 * H, (l ? H : E) + H}), 0);
        s->lay.W[l] = s->tab.views[s->tab.n - 1].offset;
        snprintf(n, sizeof n, "b%zu", l);
        cr_assert_eq(param_table_add(&s->tab, n, 1, (size_t[]){4 * H}), 0);
        s->lay.b[l] = s->tab.views[s->tab.n - 1].offset;
    }
    s->w = param_buf_create(s->tab.total);
    s->g = param_buf_create(s->tab.total);
    for (size_t i = 0; i < s->tab.n; i++)
        fill_uniform(s->w + s->tab.views[i].offset, s->tab.views[i].size, 0.6f, &r);
    struct arena m = {0};
    stack_acts_carve(&s->a, &m, &s->lay, T, B);
    cr_assert_eq(arena_reserve(&s->ar, m.used), 0);
    stack_acts_carve(&s->a, &s->ar, &s->lay, T, B);
    for (size_t k = 0; k < T * B; k++)
        s->a.ids[k] = (int32_t)rng_below(&r, V);
    s->a.lens[0] = 4, s->a.lens[1] = 1, s->a.lens[2] = 3;
    size_t LBH = L * B * H;
    s->h0 = malloc(LBH * sizeof(float));
    s->c0 = malloc(LBH * sizeof(float));
    s->rh = malloc(LBH * sizeof(float));
    s->rc = malloc(LBH * sizeof(float));
    s->rtop = malloc(T * B * H * sizeof(float));
    fill_uniform(s->h0, LBH, 0.5f, &r);
    fill_uniform(s->c0, LBH, 0.5f, &r);
    fill_uniform(s->rh, LBH, 1, &r);
    fill_uniform(s->rc, LBH, 1, &r);
    fill_uniform(s->rtop, T * B * H, 1, &r);
    s->p = p;
    s->drop_seed = 77;
}

static void stack_case_free(struct stack_case *s)
{
    param_buf_free(s->w), param_buf_free(s->g);
    arena_release(&s->ar);
    param_table_free(&s->tab);
    free(s->h0), free(s->c0), free(s->rh), free(s->rc), free(s->rtop);
}

static double stack_loss(struct stack_case *s)
{
    struct rng r;
    rng_seed(&r, s->drop_seed); /* the same dropout masks in every forward */
    stack_forward(&s->lay, s->w, &s->a, s->h0, s->c0, s->p, &r);
    const size_t BH = s->a.B * s->lay.H;
    const float *top = stack_top(&s->lay, &s->a);
    double L = 0;
    for (size_t k = 0; k < s->a.T * BH; k++)
        L += (double)s->rtop[k] * top[k];
    for (size_t l = 0; l < s->lay.L; l++)
        for (size_t k = 0; k < BH; k++)
            L += (double)s->rh[l * BH + k] * stack_final_h(&s->a, l)[k] +
                 (double)s->rc[l * BH + k] * stack_final_c(&s->a, l)[k];
    return L;
}

static int check_stack(struct stack_case *s, float *x, const float *g, size_t n, size_t stride, const char *what)
{
    int bad = 0;
    const float eps = 5e-3f;
    for (size_t k = 0; k < n; k += stride) {
        float save = x[k];
        x[k] = save + eps;
        double lp = stack_loss(s);
        x[k] = save - eps;
        double lm = stack_loss(s);
        x[k] = save;
        double num = (lp - lm) / (2.0 * eps);
        if (!close_enough(g[k], num, 3e-4, 1e-2)) {
            cr_log_error("%s[%zu]: analytic %g numeric %g", what, k, g[k], num);
            bad++;
        }
    }
    return bad;
}

/* BLAS threads 1 sends the stack's recurrent products through the packed path (the stack always sets
 * acts.pk), 2 through BLAS; the packed path must also give the gradients of the BLAS path. */
static void stack_gradcheck(float p, int blas_threads)
{
    gemm_set_threads(blas_threads);
    struct stack_case s;
    stack_case_make(&s, p);
    const size_t LBH = s.lay.L * s.a.B * s.lay.H;
    float *dh0 = calloc(LBH, sizeof(float)), *dc0 = calloc(LBH, sizeof(float));
    stack_loss(&s);
    stack_backward(&s.lay, s.w, s.g, &s.a, s.rtop, s.rh, s.rc, dh0, dc0);
    if (blas_threads == 1) {
        gemm_set_threads(2);
        if (gemm_get_threads() != 2) {
            cr_log_warn("BLAS does not run 2 threads here: packed path not compared with BLAS");
        } else {
            float *g2 = param_buf_create(s.tab.total), *dh2 = calloc(LBH, sizeof(float)),
                  *dc2 = calloc(LBH, sizeof(float));
            stack_loss(&s);
            stack_backward(&s.lay, s.w, g2, &s.a, s.rtop, s.rh, s.rc, dh2, dc2);
            for (size_t k = 0; k < s.tab.total; k++)
                cr_assert(close_enough(s.g[k], g2[k], 1e-6, 1e-5), "g[%zu] packed %g, BLAS %g", k, s.g[k], g2[k]);
            for (size_t k = 0; k < LBH; k++)
                cr_assert(close_enough(dh0[k], dh2[k], 1e-6, 1e-5) && close_enough(dc0[k], dc2[k], 1e-6, 1e-5),
                          "dh0 / dc0 [%zu]", k);
            param_buf_free(g2), free(dh2), free(dc2);
        }
        gemm_set_threads(1);
    }
    int bad = 0;
    for (size_t i = 0; i < s.tab.n; i++) {
        const struct param_view *v = &s.tab.views[i];
        bad += check_stack(&s, s.w + v->offset, s.g + v->offset, v->size, 1, v->name);
    }
    bad += check_stack(&s, s.h0, dh0, LBH, 1, "dh0") + check_stack(&s, s.c0, dc0, LBH, 1, "dc0");
    cr_assert_eq(bad, 0, "p = %g, BLAS threads %d", p, blas_threads);
    free(dh0), free(dc0);
    stack_case_free(&s);
}

Test(stack, gradient_check_two_layers_no_dropout) { stack_gradcheck(0.0f, 2); }

Test(stack, gradient_check_two_layers_with_dropout) { stack_gradcheck(0.3f, 2); }

Test(stack, gradient_check_two_layers_with_dropout_packed) { stack_gradcheck(0.3f, 1); }

Test(stack, dropout_masks_depend_only_on_the_rng_state)
{
    struct stack_case s;
    stack_case_make(&s, 0.5f);
    double a = stack_loss(&s), b = stack_loss(&s);
    cr_assert_eq(a, b);
    s.drop_seed = 78;
    cr_assert_neq(stack_loss(&s), a);
    s.p = 0;
    double c = stack_loss(&s);
    s.drop_seed = 79;
    cr_assert_eq(stack_loss(&s), c);
    stack_case_free(&s);
}

Test(stack, step_matches_batch_forward)
{
    struct stack_case s;
    stack_case_make(&s, 0.0f);
    s.a.lens[0] = s.a.lens[1] = s.a.lens[2] = 4;
    stack_loss(&s);
    const size_t B = s.a.B, H = s.lay.H, L = s.lay.L, BH = B * H;
    float *h = malloc(L * BH * sizeof(float)), *c = malloc(L * BH * sizeof(float));
    float *scratch = malloc(stack_step_floats(&s.lay, B) * sizeof(float));
    memcpy(h, s.h0, L * BH * sizeof(float));
    memcpy(c, s.c0, L * BH * sizeof(float));
    for (size_t t = 0; t < s.a.T; t++) {
        stack_step(&s.lay, s.w, s.a.ids + t * B, B, h, c, scratch);
        const float *top = stack_top(&s.lay, &s.a) + t * BH;
        for (size_t k = 0; k < BH; k++)
            cr_assert_float_eq(h[(L - 1) * BH + k], top[k], 1e-5, "t %zu k %zu", t, k);
    }
    for (size_t l = 0; l < L; l++)
        for (size_t k = 0; k < BH; k++) {
            cr_assert_float_eq(h[l * BH + k], stack_final_h(&s.a, l)[k], 1e-5);
            cr_assert_float_eq(c[l * BH + k], stack_final_c(&s.a, l)[k], 1e-5);
        }
    free(h), free(c), free(scratch);
    stack_case_free(&s);
}
