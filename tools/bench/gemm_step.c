/* tools/bench/gemm_step.c: `gemm-step [ROWS ...]`: how fast the GEMMs of one decoding step run alone, next to
 * the machine's sgemm 2048^3 rate, in one run on one thread. A decoding step of the base model
 * multiplies ROWS hypothesis rows by the decoder's two packed LSTM weights ((E+H) x 4H, 2H x 4H) and the
 * packed output projection (H x V): 31 MB of weights per step, cycled 24 times as a sentence is decoded.
 * This is the ceiling of seqlite's greedy (32 rows) and beam (160 rows) decoding before the encoder,
 * the LSTM cells and the softmax take their share. Prints GFLOP/s and % of the 2048^3 rate per ROWS.
 * Sizes: E 256, H 512, V 8000 (flags --emb --hidden --vocab); ROWS default 32 160.
 * OPENBLAS_CORETYPE picks OpenBLAS's kernels and, with them, the packed kernel's ISA (nn/gemm.h). */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nn/gemm.h"
#include "nn/params.h"

static double best_of(int reps, void (*fn)(void *), void *ctx)
{
    double best = 1e30;
    for (int r = 0; r < reps; r++) {
        double t0 = omp_get_wtime();
        fn(ctx);
        double t = omp_get_wtime() - t0;
        best = t < best ? t : best;
    }
    return best;
}

struct step_ctx {
    size_t M, K[3], N[3];
    float *P[3], *A, *C;
};

static void run_steps(void *p)
{
    struct step_ctx *s = p;
    for (int t = 0; t < 24; t++)
        for (int j = 0; j < 3; j++)
            gemm_run_packed(s->M, s->N[j], s->K[j], s->A, s->K[j], s->P[j], 0.0f, s->C, s->N[j]);
}

struct sq_ctx {
    size_t n;
    float *X, *Y, *Z;
};

static void run_square(void *p)
{
    struct sq_ctx *s = p;
    gemm_run(GEMM_N, GEMM_N, s->n, s->n, s->n, 1.0f, s->X, s->n, s->Y, s->n, 0.0f, s->Z, s->n);
}

static int usage(void)
{
    fputs("usage: gemm-step [--emb E] [--hidden H] [--vocab V] [ROWS ...]\n", stderr);
    return 2;
}

int main(int argc, char **argv)
{
    size_t E = 256, H = 512, V = 8000, rows[16], nr = 0;
    for (int i = 1; i < argc; i++) {
        size_t *dst = strcmp(argv[i], "--emb") == 0 ? &E : strcmp(argv[i], "--hidden") == 0 ? &H
                      : strcmp(argv[i], "--vocab") == 0 ? &V : NULL;
        char *end;
        if (dst && i + 1 < argc) {
            unsigned long v = strtoul(argv[++i], &end, 10);
            if (*end || v == 0 || v > 100000)
                return usage();
            *dst = v;
        } else if (!dst && nr < 16) {
            unsigned long v = strtoul(argv[i], &end, 10);
            if (*end || v == 0 || v > 4096)
                return usage();
            rows[nr++] = v;
        } else {
            return usage();
        }
    }
    if (nr == 0)
        rows[nr++] = 32, rows[nr++] = 160;
    gemm_set_threads(1);
    struct sq_ctx sq = {.n = 2048};
    sq.X = param_buf_create(sq.n * sq.n), sq.Y = param_buf_create(sq.n * sq.n), sq.Z = param_buf_create(sq.n * sq.n);
    struct step_ctx s = {.K = {E + H, 2 * H, H}, .N = {4 * H, 4 * H, V}};
    size_t maxM = 0, maxK = E + H > 2 * H ? E + H : 2 * H;
    for (size_t i = 0; i < nr; i++)
        maxM = rows[i] > maxM ? rows[i] : maxM;
    s.A = param_buf_create(maxM * maxK), s.C = param_buf_create(maxM * (V > 4 * H ? V : 4 * H));
    int ok = sq.X && sq.Y && sq.Z && s.A && s.C;
    double wbytes = 0;
    for (int j = 0; j < 3 && ok; j++) {
        float *B = param_buf_create(s.K[j] * s.N[j]);
        s.P[j] = param_buf_create(gemm_packed_floats(s.K[j], s.N[j]));
        if (!B || !s.P[j]) {
            ok = 0;
        } else {
            for (size_t i = 0; i < s.K[j] * s.N[j]; i++)
                B[i] = (float)(i % 13) * 0.01f - 0.06f;
            gemm_pack_b(GEMM_T, s.K[j], s.N[j], B, s.K[j], s.P[j]);
            wbytes += 4.0 * (double)(s.K[j] * s.N[j]);
        }
        param_buf_free(B);
    }
    if (!ok) {
        fputs("gemm-step: out of memory\n", stderr);
        return 1;
    }
    for (size_t i = 0; i < sq.n * sq.n; i++)
        sq.X[i] = sq.Y[i] = (float)(i % 7) * 0.1f;
    for (size_t i = 0; i < maxM * maxK; i++)
        s.A[i] = (float)(i % 5) * 0.1f;
    const double sq_rate = 2.0 * 2048 * 2048 * 2048 / best_of(5, run_square, &sq) / 1e9;
    printf("kernel %s, 1 thread: sgemm 2048^3 %.1f GFLOP/s; step weights %.1f MB\n", gemm_corename(), sq_rate,
           wbytes / 1e6);
    for (size_t i = 0; i < nr; i++) {
        s.M = rows[i];
        double fl = 0;
        for (int j = 0; j < 3; j++)
            fl += 2.0 * (double)(s.M * s.K[j] * s.N[j]);
        double sec = best_of(10, run_steps, &s) / 24;
        printf("rows %4zu: step GEMMs %.1f GFLOP/s = %.0f%% of sgemm 2048^3 (weights streamed at %.1f GB/s)\n",
               s.M, fl / sec / 1e9, 100 * fl / sec / 1e9 / sq_rate, wbytes / sec / 1e9);
    }
    for (int j = 0; j < 3; j++)
        param_buf_free(s.P[j]);
    param_buf_free(s.A), param_buf_free(s.C), param_buf_free(sq.X), param_buf_free(sq.Y), param_buf_free(sq.Z);
    return 0;
}
