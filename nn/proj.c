/* nn/proj.c: fused projection + log-softmax + cross-entropy, plain or label-smoothed (see proj.h). */
#include "nn/proj.h"

#include <assert.h>
#include <math.h>

#include "nn/gemm.h"
#include "nn/vmath.h"

size_t proj_scratch_floats(size_t chunk, size_t V) { return chunk * V; }

/* z (V) += b, then z[k] = exp(z[k] - max); OUT: *sum = sum of the new z. Returns max. */
VM_CLONES static float row_exp(float *z, const float *b, size_t V, double *sum)
{
    float mx = -INFINITY;
#pragma omp simd reduction(max : mx)
    for (size_t k = 0; k < V; k++) {
        z[k] += b[k];
        mx = z[k] > mx ? z[k] : mx;
    }
    double s = 0.0;
#pragma omp simd reduction(+ : s)
    for (size_t k = 0; k < V; k++) {
        z[k] = vm_expf(z[k] - mx);
        s += z[k];
    }
    *sum = s;
    return mx;
}

/* sum_k (z[k] + b[k]) over V, in double */
VM_CLONES static double row_sum_biased(const float *z, const float *b, size_t V)
{
    double s = 0.0;
#pragma omp simd reduction(+ : s)
    for (size_t k = 0; k < V; k++)
        s += (double)(z[k] + b[k]);
    return s;
}

/* eps: label smoothing (0: plain cross-entropy, exactly the unsmoothed arithmetic). OUT: *loss_sum (smoothed),
 * *nll_sum (unsmoothed, may be NULL), *n_tokens, row_loss (unsmoothed). */
static void xent_chunks(const float *W, const float *b, const float *Y, const int32_t *labels, size_t N,
                        size_t H, size_t V, float eps, float scale, float *dW, float *db, float *dY, float *scratch,
                        size_t chunk, double *loss_sum, double *nll_sum, size_t *n_tokens, double *row_loss)
{
    double loss = 0.0, nll = 0.0;
    size_t count = 0;
    if (chunk == 0)
        chunk = 1;
    for (size_t r0 = 0; r0 < N; r0 += chunk) {
        size_t nc = N - r0 < chunk ? N - r0 : chunk;
        float *Z = scratch; /* (nc, V) logits, then softmax, then dlogits */
        gemm_run(GEMM_N, GEMM_T, nc, V, H, 1.0f, Y + r0 * H, H, W, H, 0.0f, Z, V);
        for (size_t r = 0; r < nc; r++) {
            float *z = Z + r * V;
            int32_t y = labels[r0 + r];
            if (y < 0) {
                if (row_loss)
                    row_loss[r0 + r] = 0.0;
                if (dW)
                    for (size_t k = 0; k < V; k++)
                        z[k] = 0.0f;
                continue;
            }
            float zy = z[y] + b[y];
            double zmean = eps != 0.0f ? row_sum_biased(z, b, V) / (double)V : 0.0;
            double s;
            double lse = row_exp(z, b, V, &s) + log(s); /* z now holds exp(z - max) */
            double l = lse - zy;
            nll += l;
            /* smoothed: (1-eps)·(-log p_y) + eps·mean_v(-log p_v), -log p_v = lse - z_v */
            loss += eps != 0.0f ? (1.0 - (double)eps) * l + (double)eps * (lse - zmean) : l;
            count++;
            if (row_loss)
                row_loss[r0 + r] = l;
            if (dW) {
                /* loss = lse(z) - z[y]  =>  dz = p - onehot(y), p = exp(z - lse) */
                float inv = (float)(scale / s);
                if (eps != 0.0f) { /* dz = p - (1-eps)·onehot(y) - eps/V */
                    float u = scale * eps / (float)V;
#pragma omp simd
                    for (size_t k = 0; k < V; k++)
                        z[k] = z[k] * inv - u;
                    z[y] -= scale * (1.0f - eps);
                } else {
#pragma omp simd
                    for (size_t k = 0; k < V; k++)
                        z[k] *= inv;
                    z[y] -= scale;
                }
            }
        }
        if (dW) {
            const float *dZ = Z; /* (nc, V) */
            gemm_run(GEMM_T, GEMM_N, V, H, nc, 1.0f, dZ, V, Y + r0 * H, H, 1.0f, dW, H);
            gemm_run(GEMM_N, GEMM_N, nc, H, V, 1.0f, dZ, V, W, H, 1.0f, dY + r0 * H, H);
            for (size_t r = 0; r < nc; r++) {
                const float *dz = dZ + r * V;
#pragma omp simd
                for (size_t k = 0; k < V; k++)
                    db[k] += dz[k];
            }
        }
    }
    *loss_sum = loss;
    if (nll_sum)
        *nll_sum = nll;
    *n_tokens = count;
}

void proj_xent_forward(const float *W, const float *b, const float *Y, const int32_t *labels, size_t N,
                       size_t H, size_t V, float *scratch, size_t chunk, double *loss_sum, size_t *n_tokens,
                       double *row_loss)
{
    xent_chunks(W, b, Y, labels, N, H, V, 0.0f, 0.0f, NULL, NULL, NULL, scratch, chunk, loss_sum, NULL, n_tokens,
                row_loss);
}

void proj_xent_forward_backward(const float *W, const float *b, const float *Y, const int32_t *labels,
                                size_t N, size_t H, size_t V, float scale, float *dW, float *db, float *dY,
                                float *scratch, size_t chunk, double *loss_sum, size_t *n_tokens)
{
    xent_chunks(W, b, Y, labels, N, H, V, 0.0f, scale, dW, db, dY, scratch, chunk, loss_sum, NULL, n_tokens, NULL);
}

void proj_xent_smoothed_forward_backward(const float *W, const float *b, const float *Y, const int32_t *labels,
                                         size_t N, size_t H, size_t V, float eps, float scale, float *dW, float *db,
                                         float *dY, float *scratch, size_t chunk, double *loss_sum, double *nll_sum,
                                         size_t *n_tokens)
{
    assert(eps >= 0.0f && eps < 1.0f && (dW == NULL) == (db == NULL) && (dW == NULL) == (dY == NULL));
    xent_chunks(W, b, Y, labels, N, H, V, eps, scale, dW, db, dY, scratch, chunk, loss_sum, nll_sum, n_tokens,
                NULL);
}

/* out (M, V) holds logits without the bias: add it and take the log-softmax of every row. */
VM_CLONES static void logsoftmax_rows(const float *b, size_t M, size_t V, float *out)
{
    for (size_t r = 0; r < M; r++) {
        float *z = out + r * V;
        float mx = -INFINITY;
#pragma omp simd reduction(max : mx)
        for (size_t k = 0; k < V; k++) {
            z[k] += b[k];
            mx = z[k] > mx ? z[k] : mx;
        }
        double s = 0.0;
#pragma omp simd reduction(+ : s)
        for (size_t k = 0; k < V; k++)
            s += vm_expf(z[k] - mx);
        float lse = (float)(log(s) + mx);
#pragma omp simd
        for (size_t k = 0; k < V; k++)
            z[k] -= lse;
    }
}

VM_CLONES size_t proj_argmax(const float *z, size_t V)
{
    float mx = -INFINITY;
#pragma omp simd reduction(max : mx)
    for (size_t k = 0; k < V; k++)
        mx = z[k] > mx ? z[k] : mx;
    for (size_t k = 0; k < V; k++)
        if (z[k] == mx)
            return k;
    return 0;
}

void proj_logprobs(const float *W, const float *b, const float *Y, size_t M, size_t H, size_t V, float *out)
{
    gemm_run(GEMM_N, GEMM_T, M, V, H, 1.0f, Y, H, W, H, 0.0f, out, V);
    logsoftmax_rows(b, M, V, out);
}

void proj_logprobs_packed(const float *P, const float *b, const float *Y, size_t M, size_t H, size_t V,
                          float *out)
{
    gemm_run_packed(M, V, H, Y, H, P, 0.0f, out, V);
    logsoftmax_rows(b, M, V, out);
}
