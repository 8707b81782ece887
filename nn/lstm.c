/* nn/lstm.c: LSTM layer forward / backward (see lstm.h for the equations and layouts).
 * Forward: one GEMM for the input part of all T·B rows, then per step one (B, H)·(H, 4H) GEMM and the
 * pointwise cell. Backward: per step the pointwise cell backward (dh, dc -> dG in place of the gates) and
 * one (B, 4H)·(4H, H) GEMM for dh_{t-1}; then dx, dW and db for all steps as big GEMMs over T·B rows.
 * The cell on a prepared [x | h] block (lstm_cell_*) is the same cell for callers that run the steps
 * themselves: one fused product per step forward and backward, the weights' gradient left for one product
 * over all the caller's steps.
 * TODO: padded rows still go through the per-step GEMMs; with rows sorted by length (PyTorch's packed
 * sequences) each step could multiply only its live prefix of rows.
 * ref: Graves 2013 "Generating sequences with RNNs" (LSTM gradients); karpathy/llm.c (backward layout). */
#include "nn/lstm.h"

#include <string.h>

#include "nn/autocast.h"
#include "nn/gemm.h"
#include "nn/vmath.h"

static size_t round16(size_t n) { return (n + 15) / 16 * 16; }

size_t lstm_acts_floats(size_t T, size_t B, size_t H)
{
    return round16(T * B * 4 * H) + 2 * round16((T + 1) * B * H) + round16(T * B * H);
}

void lstm_acts_carve(struct lstm_acts *a, float *buf, size_t T, size_t B, size_t H)
{
    /* buf is NULL while an arena measures (nn/arena.h): then every array is NULL (NULL + n is undefined) */
    const size_t ng = round16(T * B * 4 * H), ns = round16((T + 1) * B * H);
    a->gates = buf;
    a->h = buf ? buf + ng : NULL;
    a->c = buf ? buf + ng + ns : NULL;
    a->tc = buf ? buf + ng + 2 * ns : NULL;
    a->pk = NULL;
    a->pkw = NULL;
}

/* W[:, I:] packed either way has the shape of a cell weight with no input (I = 0) */
size_t lstm_pack_floats(size_t H) { return lstm_cell_pack_floats(0, H); }

void lstm_pack_recurrent(const float *W, size_t I, size_t H, float *P) /* op = W[:, I:]^T (H, 4H) */
{
    gemm_pack_b(GEMM_T, H, 4 * H, W + I, I + H, P);
}

size_t lstm_scratch_floats(size_t B, size_t H) { return 3 * B * H; }

size_t lstm_step_floats(size_t M, size_t H) { return 5 * M * H; }

/* The cell for one row: pre-activations pre (4H) plus bias -> gate values in gv (4H, may alias pre),
 * c = f*cp + i*g, h = o*tanh(c); tc (H) receives tanh(c). c may alias cp. */
VM_CLONES static void cell_forward(const float *pre, const float *bias, float *gv, const float *cp, float *c,
                                   float *h, float *tc, size_t H)
{
#pragma omp simd
    for (size_t j = 0; j < H; j++) {
        float i = vm_sigmoidf(pre[j] + bias[j]);
        float f = vm_sigmoidf(pre[H + j] + bias[H + j]);
        float g = vm_tanhf(pre[2 * H + j] + bias[2 * H + j]);
        float o = vm_sigmoidf(pre[3 * H + j] + bias[3 * H + j]);
        float cn = f * cp[j] + i * g;
        float t = vm_tanhf(cn);
        gv[j] = i;
        gv[H + j] = f;
        gv[2 * H + j] = g;
        gv[3 * H + j] = o;
        c[j] = cn;
        h[j] = o * t;
        tc[j] = t;
    }
}

/* Backward of cell_forward for one real row: gate values g4 (4H) in, dG (4H) out in place; dh (H) is
 * the gradient w.r.t. h_t; dc (H) w.r.t. c_t in, w.r.t. c_{t-1} out; cp = c_{t-1}, tc = tanh(c_t). */
VM_CLONES static void cell_backward(float *g4, const float *dh, float *dc, const float *cp, const float *tc, size_t H)
{
#pragma omp simd
    for (size_t j = 0; j < H; j++) {
        float i = g4[j], f = g4[H + j], g = g4[2 * H + j], o = g4[3 * H + j], tcv = tc[j];
        /* h_t = o*tanh(c_t) */
        float dO = dh[j] * tcv;
        float dC = dc[j] + dh[j] * o * (1.0f - tcv * tcv);
        /* c_t = f*c_{t-1} + i*g */
        dc[j] = dC * f;
        /* gate pre-activations: σ' = s(1-s), tanh' = 1-g² */
        g4[j] = dC * g * i * (1.0f - i);
        g4[H + j] = dC * cp[j] * f * (1.0f - f);
        g4[2 * H + j] = dC * i * (1.0f - g * g);
        g4[3 * H + j] = dO * o * (1.0f - o);
    }
}

void lstm_forward(const float *W, const float *b, const float *x, const int32_t *lens, size_t T, size_t B,
                  size_t I, size_t H, const float *h0, const float *c0, struct lstm_acts *a)
{
    const size_t G = 4 * H, IH = I + H, BH = B * H;
    if (h0)
        memcpy(a->h, h0, BH * sizeof(float));
    else
        memset(a->h, 0, BH * sizeof(float));
    if (c0)
        memcpy(a->c, c0, BH * sizeof(float));
    else
        memset(a->c, 0, BH * sizeof(float));
    /* gates (T·B, 4H) = x (T·B, I) · W[:, :I]^T; the bias is added in the cell */
    gemm_run(GEMM_N, GEMM_T, T * B, G, I, 1.0f, x, I, W, IH, 0.0f, a->gates, G);
    const int packed = (a->pkw || a->pk) && T > 1 && gemm_get_threads() == 1 && !autocast_active();
    const float *P = a->pkw ? a->pkw : a->pk;
    if (packed && !a->pkw)
        lstm_pack_recurrent(W, I, H, a->pk);
    for (size_t t = 0; t < T; t++) {
        float *gt = a->gates + t * B * G;        /* (B, 4H) */
        const float *hp = a->h + t * BH, *cp = a->c + t * BH;
        float *hn = a->h + (t + 1) * BH, *cn = a->c + (t + 1) * BH, *tc = a->tc + t * BH;
        if (packed && (t > 0 || h0))
            gemm_run_packed(B, G, H, hp, H, P, 1.0f, gt, G);
        else if (t > 0 || h0) /* gates += h_{t-1} (B, H) · W[:, I:]^T */
            gemm_run(GEMM_N, GEMM_T, B, G, H, 1.0f, hp, H, W + I, IH, 1.0f, gt, G);
        for (size_t r = 0; r < B; r++) {
            if (lens && (int64_t)t >= lens[r]) { /* padding: carry the state */
                memcpy(hn + r * H, hp + r * H, H * sizeof(float));
                memcpy(cn + r * H, cp + r * H, H * sizeof(float));
                continue;
            }
            cell_forward(gt + r * G, b, gt + r * G, cp + r * H, cn + r * H, hn + r * H, tc + r * H, H);
        }
    }
}

void lstm_backward(const float *W, const float *x, const int32_t *lens, size_t T, size_t B, size_t I,
                   size_t H, struct lstm_acts *a, const float *dy, const float *dhT, const float *dcT,
                   float *dW, float *db, float *dx, float *dh0, float *dc0, float *scratch)
{
    const size_t G = 4 * H, IH = I + H, BH = B * H;
    float *dh = scratch, *dc = scratch + BH, *dhp = scratch + 2 * BH; /* (B, H) each */
    if (dhT)
        memcpy(dh, dhT, BH * sizeof(float));
    else
        memset(dh, 0, BH * sizeof(float));
    if (dcT)
        memcpy(dc, dcT, BH * sizeof(float));
    else
        memset(dc, 0, BH * sizeof(float));
    const int packed = a->pk && T > 1 && gemm_get_threads() == 1 && !autocast_active();
    if (packed) /* op = W[:, I:] (4H, H) */
        gemm_pack_b(GEMM_N, G, H, W + I, IH, a->pk);
    for (size_t t = T; t-- > 0;) {
        float *gt = a->gates + t * B * G; /* (B, 4H): gate values in, dG out */
        const float *cp = a->c + t * BH, *tcs = a->tc + t * BH;
        if (dy) {
            const float *dyt = dy + t * BH;
#pragma omp simd
            for (size_t k = 0; k < BH; k++)
                dh[k] += dyt[k];
        }
        for (size_t r = 0; r < B; r++) {
            if (lens && (int64_t)t >= lens[r]) { /* padding: h, c were copied, so dh, dc pass through */
                memset(gt + r * G, 0, G * sizeof(float));
                continue;
            }
            cell_backward(gt + r * G, dh + r * H, dc + r * H, cp + r * H, tcs + r * H, H);
        }
        if (t == 0 && !dh0)
            break;
        /* dh_{t-1} (B, H) = dG_t (B, 4H) · W[:, I:] (4H, H) */
        if (packed)
            gemm_run_packed(B, H, G, gt, G, a->pk, 0.0f, dhp, H);
        else
            gemm_run(GEMM_N, GEMM_N, B, H, G, 1.0f, gt, G, W + I, IH, 0.0f, dhp, H);
        if (lens)
            for (size_t r = 0; r < B; r++)
                if ((int64_t)t >= lens[r])
                    memcpy(dhp + r * H, dh + r * H, H * sizeof(float));
        float *tmp = dh;
        dh = dhp;
        dhp = tmp;
    }
    if (dh0)
        for (size_t k = 0; k < BH; k++)
            dh0[k] += dh[k];
    if (dc0)
        for (size_t k = 0; k < BH; k++)
            dc0[k] += dc[k];
    const size_t N = T * B;
    const float *dG = a->gates; /* (T·B, 4H) */
    if (dx) /* dx (T·B, I) += dG · W[:, :I] */
        gemm_run(GEMM_N, GEMM_N, N, I, G, 1.0f, dG, G, W, IH, 1.0f, dx, I);
    /* dW[:, :I] += dG^T · x ;  dW[:, I:] += dG^T · h_{t-1} */
    gemm_run(GEMM_T, GEMM_N, G, I, N, 1.0f, dG, G, x, I, 1.0f, dW, IH);
    gemm_run(GEMM_T, GEMM_N, G, H, N, 1.0f, dG, G, a->h, H, 1.0f, dW + I, IH);
    for (size_t n = 0; n < N; n++) {
        const float *d = dG + n * G;
#pragma omp simd
        for (size_t k = 0; k < G; k++)
            db[k] += d[k];
    }
}

size_t lstm_cell_pack_floats(size_t I, size_t H)
{
    size_t f = gemm_packed_floats(I + H, 4 * H), b = gemm_packed_floats(4 * H, I + H);
    return f > b ? f : b;
}

void lstm_cell_pack_forward(const float *W, size_t I, size_t H, float *P) /* op = W^T (I+H, 4H) */
{
    gemm_pack_b(GEMM_T, I + H, 4 * H, W, I + H, P);
}

void lstm_cell_pack_backward(const float *W, size_t I, size_t H, float *P) /* op = W (4H, I+H) */
{
    gemm_pack_b(GEMM_N, 4 * H, I + H, W, I + H, P);
}

void lstm_cell_forward(const float *W, const float *P, const float *b, const float *xh, size_t B, size_t I,
                       size_t H, const float *cp, float *gv, float *c, float *h, float *tc)
{
    const size_t G = 4 * H, IH = I + H;
    /* gates (B, 4H) = [x_t | h_{t-1}] (B, I+H) · W^T; the bias is added in the cell */
    if (P)
        gemm_run_packed(B, G, IH, xh, IH, P, 0.0f, gv, G);
    else
        gemm_run(GEMM_N, GEMM_T, B, G, IH, 1.0f, xh, IH, W, IH, 0.0f, gv, G);
    for (size_t r = 0; r < B; r++)
        cell_forward(gv + r * G, b, gv + r * G, cp + r * H, c + r * H, h + r * H, tc + r * H, H);
}

void lstm_cell_backward(const float *W, const float *P, size_t B, size_t I, size_t H, float *gv, const float *dh,
                        float *dc, const float *cp, const float *tc, float *dxh)
{
    const size_t G = 4 * H, IH = I + H;
    for (size_t r = 0; r < B; r++)
        cell_backward(gv + r * G, dh + r * H, dc + r * H, cp + r * H, tc + r * H, H);
    /* forward: gates = [x | h] W^T  =>  d[x | h] (B, I+H) += dG (B, 4H) · W (4H, I+H) */
    if (P)
        gemm_run_packed(B, IH, G, gv, G, P, 1.0f, dxh, IH);
    else
        gemm_run(GEMM_N, GEMM_N, B, IH, G, 1.0f, gv, G, W, IH, 1.0f, dxh, IH);
}

void lstm_cell_backward_weights(const float *dG, const float *xh, size_t N, size_t I, size_t H, float *dW,
                                float *db)
{
    const size_t G = 4 * H, IH = I + H;
    /* forward: gates = [x | h] W^T + b  =>  dW (4H, I+H) += dG^T (4H, N) · [x | h] (N, I+H) */
    gemm_run(GEMM_T, GEMM_N, G, IH, N, 1.0f, dG, G, xh, IH, 1.0f, dW, IH);
    for (size_t n = 0; n < N; n++) {
        const float *d = dG + n * G;
#pragma omp simd
        for (size_t k = 0; k < G; k++)
            db[k] += d[k];
    }
}

void lstm_step_forward(const float *W, const float *b, const float *x, size_t M, size_t I, size_t H,
                       float *h, float *c, float *scratch)
{
    float *gates = scratch, *tc = scratch + M * 4 * H; /* (M, 4H), (M, H) */
    const size_t G = 4 * H, IH = I + H;
    gemm_run(GEMM_N, GEMM_T, M, G, I, 1.0f, x, I, W, IH, 0.0f, gates, G);
    gemm_run(GEMM_N, GEMM_T, M, G, H, 1.0f, h, H, W + I, IH, 1.0f, gates, G);
    for (size_t r = 0; r < M; r++)
        cell_forward(gates + r * G, b, gates + r * G, c + r * H, c + r * H, h + r * H, tc + r * H, H);
}

size_t lstm_step_packed_floats(size_t M, size_t I, size_t H) { return M * (I + H) + 5 * M * H; }

void lstm_step_forward_packed(const float *P, const float *b, const float *x, size_t M, size_t I, size_t H,
                              float *h, float *c, float *scratch)
{
    const size_t G = 4 * H, IH = I + H;
    float *xh = scratch, *gates = scratch + M * IH, *tc = gates + M * G; /* (M, I+H), (M, 4H), (M, H) */
    for (size_t r = 0; r < M; r++) {
        memcpy(xh + r * IH, x + r * I, I * sizeof(float));
        memcpy(xh + r * IH + I, h + r * H, H * sizeof(float));
    }
    gemm_run_packed(M, G, IH, xh, IH, P, 0.0f, gates, G);
    for (size_t r = 0; r < M; r++)
        cell_forward(gates + r * G, b, gates + r * G, c + r * H, c + r * H, h + r * H, tc + r * H, H);
}
