/* tools/bench/gemm_bf16.c: `gemm-bf16`: OpenBLAS sgemm against bf16 (nn/gemm_bf16.h) on the
 * model's GEMM shapes, on 1 and 2 threads, GFLOP/s side by side. Shapes M x K x N: 2048^3, the output
 * projection of a training batch (1536 x 512 x 8000), a greedy decoding step (64 x 1024 x 2048) and a
 * beam step (160 x 768 x 2048). op(B) is a weight stored (N, K), as seqlite stores them.
 * Columns: sgemm (gemm_run); bf16 with the weight converted once (gemm_bf16_run_weight: A is converted
 * on every call, inside the time); bf16 with B converted on every call too (gemm_bf16_run); the ratio of
 * the weight-copy column to sgemm; the implementations of both bf16 columns (seqlite's own kernel or
 * oneDNN's). Threads: OpenBLAS's and oneDNN's own (a call from outside any OpenMP region). Each figure is the best of repeated calls over at least 0.3 s.
 * Shapes can be given instead as arguments, `gemm-bf16 16x768x1024 ...` (M x K x N each).
 * Like `seqlite`, it starts again with OPENBLAS_CORETYPE set when OpenBLAS picked kernels without the
 * AVX2 / AVX-512 the CPU has (nn/gemm.h: gemm_use_best_kernel), so sgemm runs its best kernels. */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "nn/gemm.h"
#include "nn/gemm_bf16.h"
#include "nn/params.h"

struct job {
    size_t m, n, k;
    const float *A, *B; /* A (m, k), B (n, k) */
    const struct gemm_bf16_weight *w; /* op(B) (k, n) */
    struct gemm_bf16_ctx *ctx;
    float *C; /* (m, n) */
    int kind; /* 0 sgemm, 1 bf16 weight copy, 2 bf16 per call */
    int fail;
};

static void run_once(struct job *j)
{
    if (j->kind == 0)
        gemm_run(GEMM_N, GEMM_T, j->m, j->n, j->k, 1.0f, j->A, j->k, j->B, j->k, 0.0f, j->C, j->n);
    else if (j->kind == 1)
        j->fail |= gemm_bf16_run_weight(j->ctx, GEMM_N, j->m, j->A, j->k, j->w, 0.0f, j->C, j->n) != 0;
    else
        j->fail |= gemm_bf16_run(j->ctx, GEMM_N, GEMM_T, j->m, j->n, j->k, j->A, j->k, j->B, j->k, 0.0f, j->C, j->n) != 0;
}

/* GFLOP/s of the best call, calls repeated for at least 0.3 s (and 3 calls) after one warm-up call. */
static double rate(struct job *j)
{
    run_once(j);
    double best = 1e30, start = omp_get_wtime();
    for (int r = 0; r < 3 || omp_get_wtime() - start < 0.3; r++) {
        double t0 = omp_get_wtime();
        run_once(j);
        double t = omp_get_wtime() - t0;
        best = t < best ? t : best;
    }
    return 2.0 * (double)j->m * (double)j->n * (double)j->k / best / 1e9;
}

int main(int argc, char **argv)
{
    static size_t shapes[16][3] = {{2048, 2048, 2048}, {1536, 512, 8000}, {64, 1024, 2048}, {160, 768, 2048}};
    size_t n_shapes = 4;
    if (argc > 1) {
        n_shapes = 0;
        for (int i = 1; i < argc; i++) {
            size_t *d = shapes[n_shapes];
            char end;
            if (n_shapes == 16 || sscanf(argv[i], "%zux%zux%zu%c", &d[0], &d[1], &d[2], &end) != 3 || !d[0] || !d[1] ||
                !d[2] || d[0] > 8192 || d[1] > 8192 || d[2] > 8192) {
                fprintf(stderr, "gemm-bf16: '%s' is not a shape MxKxN (each 1 to 8192, at most 16 shapes)\n"
                        "usage: gemm-bf16 [MxKxN ...]   (OPENBLAS_CORETYPE and ONEDNN_MAX_CPU_ISA are honoured)\n",
                        argv[i]);
                return 2;
            }
            n_shapes++;
        }
    }
    gemm_use_best_kernel(argv); /* see the header comment */
    size_t maxa = 0, maxb = 0, maxc = 0;
    for (size_t s = 0; s < n_shapes; s++) {
        const size_t m = shapes[s][0], k = shapes[s][1], n = shapes[s][2];
        maxa = m * k > maxa ? m * k : maxa;
        maxb = n * k > maxb ? n * k : maxb;
        maxc = m * n > maxc ? m * n : maxc;
    }
    float *A = param_buf_create(maxa), *B = param_buf_create(maxb), *C = param_buf_create(maxc);
    if (!A || !B || !C) {
        fputs("gemm-bf16: out of memory\n", stderr);
        return 1;
    }
    for (size_t i = 0; i < maxa; i++)
        A[i] = (float)(i % 7) * 0.1f - 0.3f;
    for (size_t i = 0; i < maxb; i++)
        B[i] = (float)(i % 13) * 0.01f - 0.06f;
    printf("OpenBLAS kernel %s%s; %s\n", gemm_corename(), getenv("OPENBLAS_CORETYPE") ? " (OPENBLAS_CORETYPE)" : "",
           gemm_bf16_note());
    printf("%-16s %3s %12s %12s %12s %6s  %s\n", "M x K x N", "thr", "sgemm", "bf16 W copy", "bf16 per call", "ratio",
           "impl W copy / per call");
    int fail = 0;
    const int blas_threads = gemm_get_threads();
    for (size_t s = 0; s < n_shapes; s++) {
        const size_t m = shapes[s][0], k = shapes[s][1], n = shapes[s][2];
        struct gemm_bf16_weight w;
        if (gemm_bf16_weight_init(&w, k, n) != 0) {
            fputs("gemm-bf16: out of memory\n", stderr);
            return 1;
        }
        gemm_bf16_weight_refresh(&w, GEMM_T, B, k);
        for (int t = 1; t <= 2; t++) {
            struct gemm_bf16_ctx *ctx = gemm_bf16_ctx_create(t);
            if (!ctx) {
                fputs("gemm-bf16: out of memory\n", stderr);
                return 1;
            }
            gemm_set_threads(t);
            struct job j = {.m = m, .n = n, .k = k, .A = A, .B = B, .w = &w, .ctx = ctx, .C = C};
            double r[3];
            char impl_w[64] = "";
            for (j.kind = 0; j.kind < 3; j.kind++) {
                r[j.kind] = rate(&j);
                if (j.kind == 1)
                    snprintf(impl_w, sizeof impl_w, "%s", gemm_bf16_last_impl(ctx));
            }
            char name[32];
            snprintf(name, sizeof name, "%zu x %zu x %zu", m, k, n);
            printf("%-16s %3d %12.1f %12.1f %12.1f %5.2fx  %s / %s\n", name, t, r[0], r[1], r[2], r[1] / r[0],
                   impl_w, gemm_bf16_last_impl(ctx));
            fflush(stdout);
            fail |= j.fail;
            gemm_bf16_ctx_free(ctx);
        }
        gemm_bf16_weight_free(&w);
    }
    gemm_set_threads(blas_threads);
    param_buf_free(A), param_buf_free(B), param_buf_free(C);
    if (fail)
        fputs("gemm-bf16: a bf16 call failed\n", stderr);
    return fail ? 1 : 0;
}
