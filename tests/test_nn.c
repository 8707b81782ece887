/* tests/test_nn.c: nn/ kernels — the parameter table and buffers, the GEMM wrapper and the packed GEMM
 * (its layout, and its kernels for every ISA the CPU has, over tile, panel and k-block edges) against a
 * naive product, Adam and clipping against hand-computed values, dropout statistics and reproducibility,
 * the fused projection + cross-entropy (hand-computed case and finite-difference gradient check), the
 * embedding, and the workspace arena. LSTM and the stack are in test_lstm.c. */
#include <criterion/criterion.h>

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "nn/adam.h"
#include "nn/arena.h"
#include "nn/clip.h"
#include "nn/dropout.h"
#include "nn/embed.h"
#include "nn/gemm.h"
#include "nn/params.h"
#include "nn/proj.h"
#include "nn/vmath.h"
#include "tests/helpers.h"
#include "util/err.h"
#include "util/rng.h"

static void fill_uniform(float *x, size_t n, float a, struct rng *r)
{
    for (size_t k = 0; k < n; k++)
        x[k] = (2.0f * rng_uniform(r) - 1.0f) * a;
}

/* |a - n| <= atol + rtol·max(|a|, |n|) */
static int close_enough(double a, double n, double atol, double rtol)
{
    double m = fabs(a) > fabs(n) ? fabs(a) : fabs(n);
    return fabs(a - n) <= atol + rtol * m;
}

/* ---- params ---- */

Test(params, offsets_sizes_alignment_and_lookup)
{
    struct param_table t;
    param_table_init(&t);
    cr_assert_eq(param_table_add(&t, "a.W", 2, (size_t[]){3, 5}), 0);
    cr_assert_eq(param_table_add(&t, "a.b", 1, (size_t[]){7}), 0);
    cr_assert_eq(param_table_add(&t, "c", 3, (size_t[]){2, 3, 4}), 0);
    cr_assert_eq(t.n, 3);
    cr_assert_eq(t.views[0].offset, 0);
    cr_assert_eq(t.views[0].size, 15);
    cr_assert_eq(t.views[1].offset, 16); /* 15 rounded up to PARAM_ALIGN */
    cr_assert_eq(t.views[1].size, 7);
    cr_assert_eq(t.views[2].offset, 32);
    cr_assert_eq(t.views[2].size, 24);
    cr_assert_eq(t.views[2].shape[2], 4);
    cr_assert_eq(t.views[1].shape[1], 1);
    cr_assert_eq(t.total, 56);
    cr_assert_eq(param_table_count(&t), 46);
    const struct param_view *v = param_table_find(&t, "a.b");
    cr_assert_not_null(v);
    cr_assert_eq(v->offset, 16);
    cr_assert_null(param_table_find(&t, "nope"));
    param_table_free(&t);
    cr_assert_eq(t.n, 0);
}

Test(params, bad_input_is_rejected_and_table_unchanged)
{
    struct param_table t;
    param_table_init(&t);
    cr_assert_eq(param_table_add(&t, "x", 1, (size_t[]){4}), 0);
    cr_assert_eq(param_table_add(&t, "x", 1, (size_t[]){4}), SL_EEXIST);
    cr_assert_eq(param_table_add(&t, "y", 2, (size_t[]){4, 0}), SL_EINVAL);
    cr_assert_eq(param_table_add(&t, "y", 0, (size_t[]){4}), SL_EINVAL);
    cr_assert_eq(param_table_add(&t, "y", 4, (size_t[]){1, 1, 1, 1}), SL_EINVAL);
    cr_assert_eq(param_table_add(&t, "", 1, (size_t[]){4}), SL_EINVAL);
    char longname[PARAM_NAME_MAX + 1];
    memset(longname, 'n', PARAM_NAME_MAX);
    longname[PARAM_NAME_MAX] = 0;
    cr_assert_eq(param_table_add(&t, longname, 1, (size_t[]){4}), SL_EINVAL);
    cr_assert(strstr(sl_errmsg(), "longer") != NULL);
    cr_assert_eq(param_table_add(&t, "y", 2, (size_t[]){SIZE_MAX / 2, 4}), SL_EINVAL);
    cr_assert_eq(t.n, 1);
    cr_assert_eq(t.total, 4);
    param_table_free(&t);
}

Test(params, buffers_are_aligned_zeroed_and_init_is_in_range)
{
    float *w = param_buf_create(1001);
    cr_assert_not_null(w);
    cr_assert_eq((uintptr_t)w % 64, 0);
    for (size_t k = 0; k < 1001; k++)
        cr_assert_eq(w[k], 0.0f);
    struct rng r;
    rng_seed(&r, 3);
    param_init_uniform(w, 1001, 0.08f, &r);
    double s = 0, mx = 0;
    for (size_t k = 0; k < 1001; k++) {
        cr_assert(w[k] >= -0.08f && w[k] < 0.08f);
        s += w[k];
        mx = fabs(w[k]) > mx ? fabs(w[k]) : mx;
    }
    cr_assert_lt(fabs(s / 1001), 0.01);
    cr_assert_gt(mx, 0.07);
    param_buf_free(w);
    param_buf_free(NULL);
}

/* ---- gemm ---- */

static void naive(int ta, int tb, size_t M, size_t N, size_t K, float alpha, const float *A, size_t lda,
                  const float *B, size_t ldb, float beta, float *C, size_t ldc)
{
    for (size_t i = 0; i < M; i++)
        for (size_t j = 0; j < N; j++) {
            double s = 0;
            for (size_t k = 0; k < K; k++)
                s += (double)(ta ? A[k * lda + i] : A[i * lda + k]) * (tb ? B[j * ldb + k] : B[k * ldb + j]);
            C[i * ldc + j] = (float)(alpha * s + beta * C[i * ldc + j]);
        }
}

Test(gemm, all_transposes_with_strides_match_naive)
{
    struct rng r;
    rng_seed(&r, 11);
    const size_t M = 7, N = 5, K = 9, pad = 3;
    float A[(9 + 3) * (9 + 3)], B[(9 + 3) * (9 + 3)], C1[7 * 8], C2[7 * 8];
    for (int ta = 0; ta < 2; ta++)
        for (int tb = 0; tb < 2; tb++) {
            size_t lda = (ta ? M : K) + pad, ldb = (tb ? K : N) + pad, ldc = N + pad;
            fill_uniform(A, sizeof A / sizeof *A, 1, &r);
            fill_uniform(B, sizeof B / sizeof *B, 1, &r);
            fill_uniform(C1, sizeof C1 / sizeof *C1, 1, &r);
            memcpy(C2, C1, sizeof C1);
            gemm_run(ta ? GEMM_T : GEMM_N, tb ? GEMM_T : GEMM_N, M, N, K, 0.5f, A, lda, B, ldb, 2.0f, C1, ldc);
            naive(ta, tb, M, N, K, 0.5f, A, lda, B, ldb, 2.0f, C2, ldc);
            for (size_t i = 0; i < M; i++)
                for (size_t j = 0; j < ldc; j++)
                    cr_assert_float_eq(C1[i * ldc + j], C2[i * ldc + j], 1e-5, "ta %d tb %d (%zu,%zu)", ta, tb, i, j);
        }
}

Test(gemm, k_zero_scales_and_threads_are_settable)
{
    float C[4] = {1, 2, 3, 4};
    gemm_run(GEMM_N, GEMM_N, 2, 2, 0, 1.0f, NULL, 1, NULL, 2, 0.5f, C, 2);
    cr_assert_eq(C[3], 2.0f);
    gemm_run(GEMM_N, GEMM_N, 2, 2, 0, 1.0f, NULL, 1, NULL, 2, 0.0f, C, 2);
    cr_assert_eq(C[0], 0.0f);
    int before = gemm_get_threads();
    gemm_set_threads(1);
    cr_assert_eq(gemm_get_threads(), 1);
    gemm_set_threads(before);
    cr_assert_not_null(gemm_corename());
}

/* ---- packed gemm (nn/gemm_packed.c) ----
 * gemm_packed.c picks its kernels once per process, at the first pack or run, from the CPU and
 * SEQLITE_GEMM_ISA; each test below pins one ISA (th_gemm_isa) before its first packed call. */

/* Pins the packed kernels to isa (NULL: the automatic choice); skips the test when the CPU lacks it. */
static void pin_isa(const char *isa)
{
    if (!th_gemm_isa(isa))
        cr_skip_test("this CPU cannot run the %s kernels", isa);
}

/* The panel width gemm_pack_b uses: op(B) = [1; 2] (K 2, N 1) puts its 2 at P[width]. */
static size_t packed_panel_width(void)
{
    float B[2] = {1, 2}, P[2 * GEMM_PANEL_MAX];
    cr_assert_eq(gemm_packed_floats(2, 1), 2 * GEMM_PANEL_MAX);
    gemm_pack_b(GEMM_N, 2, 1, B, 1, P);
    for (size_t w = 1; w < 2 * GEMM_PANEL_MAX; w++)
        if (P[w] == 2.0f)
            return w;
    return 0;
}

#define PK_GUARD 64          /* floats after the packed buffer that gemm_pack_b must not touch */
#define PK_SENTINEL 12345.0f

/* gemm_run_packed against a double-precision triple loop for every M x N x K below (M across the 6- and
 * 12-row tiles, N across the 16- and 32-wide panels, K across the 128- and 256-deep k blocks), both
 * storages of B, A's row stride K + 3 (read in place) and 512 (copied into row tiles first) and beta 0
 * (C holds NaN: it must not be read), 1 and 0.5. Strided A, B, C have NaN in
 * their padding (never read); C's padding columns and one extra row must keep their bits. Tolerance 1e-5
 * relative to Σ|a·b| + |beta·c| (float sums of up to 257 terms). Returns the number of failed cases. */
static int packed_check_shapes(void)
{
    static const size_t Ms[] = {1, 2, 5, 6, 7, 12, 13, 33}, Ns[] = {1, 15, 16, 17, 31, 32, 33, 100},
                        Ks[] = {1, 63, 64, 65, 200, 257}; /* 257: past a 256-deep k block */
    static const float betas[] = {0.0f, 1.0f, 0.5f};
    const size_t nM = sizeof Ms / sizeof *Ms, nN = sizeof Ns / sizeof *Ns, nK = sizeof Ks / sizeof *Ks;
    const size_t maxM = 33, maxN = 100, maxK = 257, padA = 3, padB = 5, padC = 4;
    float *A = malloc(maxM * 512 * sizeof(float)); /* the larger of the two row strides */
    float *B = malloc((maxK + padB) * (maxN + padB) * sizeof(float));
    float *C = malloc((maxM + 1) * (maxN + padC) * sizeof(float));
    float *C0 = malloc((maxM + 1) * (maxN + padC) * sizeof(float));
    float *P = malloc((gemm_packed_floats(maxK, maxN) + PK_GUARD) * sizeof(float));
    cr_assert(A && B && C && C0 && P);
    struct rng r;
    rng_seed(&r, 23);
    int bad = 0, cases = 0;
    for (int tb = 0; tb < 2; tb++)
        for (size_t kn = 0; kn < nK * nN; kn++) {
            const size_t K = Ks[kn / nN], N = Ns[kn % nN];
            /* B stored (K, N) or (N, K) with padding columns */
            const size_t brows = tb ? N : K, bcols = tb ? K : N, ldb = bcols + padB;
            for (size_t i = 0; i < brows; i++)
                for (size_t j = 0; j < ldb; j++)
                    B[i * ldb + j] = j < bcols ? (2.0f * rng_uniform(&r) - 1.0f) : NAN;
            const size_t np = gemm_packed_floats(K, N);
            for (size_t k = 0; k < np + PK_GUARD; k++)
                P[k] = PK_SENTINEL;
            gemm_pack_b(tb ? GEMM_T : GEMM_N, K, N, B, ldb, P);
            for (size_t k = np; k < np + PK_GUARD; k++)
                if (P[k] != PK_SENTINEL) {
                    cr_log_error("tb %d K %zu N %zu: gemm_pack_b wrote P[%zu], past its %zu floats", tb, K, N, k,
                                 np);
                    bad++;
                    break;
                }
            for (size_t mi = 0; mi < 2 * nM; mi++) {
                const size_t M = Ms[mi % nM], lda = mi < nM ? K + padA : 512, ldc = N + padC;
                for (size_t i = 0; i < M; i++)
                    for (size_t k = 0; k < lda; k++)
                        A[i * lda + k] = k < K ? (2.0f * rng_uniform(&r) - 1.0f) : NAN;
                for (size_t bi = 0; bi < sizeof betas / sizeof *betas; bi++) {
                    const float beta = betas[bi];
                    for (size_t i = 0; i <= M; i++) /* row M: outside C */
                        for (size_t j = 0; j < ldc; j++)
                            C[i * ldc + j] = (beta == 0.0f && i < M && j < N) ? NAN : 2.0f * rng_uniform(&r) - 1.0f;
                    memcpy(C0, C, (M + 1) * ldc * sizeof(float));
                    gemm_run_packed(M, N, K, A, lda, P, beta, C, ldc);
                    cases++;
                    int first = 1;
                    for (size_t i = 0; i <= M && first; i++)
                        for (size_t j = 0; j < ldc && first; j++) {
                            const float got = C[i * ldc + j];
                            if (i == M || j >= N) {
                                if (memcmp(&got, &C0[i * ldc + j], sizeof got) != 0) {
                                    cr_log_error("tb %d M %zu N %zu K %zu beta %g: C(%zu,%zu) outside the product "
                                                 "changed from %g to %g", tb, M, N, K, beta, i, j, C0[i * ldc + j],
                                                 got);
                                    first = 0;
                                }
                                continue;
                            }
                            double s = 0, mag = 0;
                            for (size_t k = 0; k < K; k++) {
                                double p = (double)A[i * lda + k] * (tb ? B[j * ldb + k] : B[k * ldb + j]);
                                s += p;
                                mag += fabs(p);
                            }
                            if (beta != 0.0f) {
                                s += (double)beta * C0[i * ldc + j];
                                mag += fabs((double)beta * C0[i * ldc + j]);
                            }
                            if (!(fabs(got - s) <= 1e-5 * mag + 1e-7)) { /* NaN fails too */
                                cr_log_error("tb %d M %zu N %zu K %zu lda %zu beta %g: C(%zu,%zu) = %.9g, want %.9g",
                                             tb, M, N, K, lda, beta, i, j, got, s);
                                first = 0;
                            }
                        }
                    bad += !first;
                }
            }
        }
    cr_assert_eq(cases, 2 * 8 * 8 * 6 * 2 * 3);
    free(A), free(B), free(C), free(C0), free(P);
    return bad;
}

Test(gemm_packed, generic_kernel_matches_naive)
{
    pin_isa("generic");
    cr_assert_eq(packed_panel_width(), 16);
    cr_assert_eq(packed_check_shapes(), 0);
}

Test(gemm_packed, avx2_kernel_matches_naive)
{
    pin_isa("avx2");
    cr_assert_eq(packed_panel_width(), 16);
    cr_assert_eq(packed_check_shapes(), 0);
}

Test(gemm_packed, avx512_kernel_matches_naive)
{
    pin_isa("avx512");
    cr_assert_eq(packed_panel_width(), 32, "SEQLITE_GEMM_ISA=avx512 did not select the 32-wide panels");
    cr_assert_eq(packed_check_shapes(), 0);
}

Test(gemm_packed, automatic_choice_matches_naive_and_gemm_run)
{
    pin_isa(NULL);
    size_t w = packed_panel_width();
    cr_assert(w == 16 || w == 32, "panel width %zu", w);
    cr_assert_eq(packed_check_shapes(), 0);
    /* the packed product and the CBLAS one agree on a decoding-like shape, for both storages of B */
    struct rng r;
    rng_seed(&r, 29);
    const size_t M = 32, N = 96, K = 80;
    float *A = malloc(M * K * sizeof(float)), *B = malloc(K * N * sizeof(float));
    float *P = malloc(gemm_packed_floats(K, N) * sizeof(float));
    float *C1 = malloc(M * N * sizeof(float)), *C2 = malloc(M * N * sizeof(float));
    fill_uniform(A, M * K, 1, &r);
    fill_uniform(B, K * N, 1, &r);
    for (int tb = 0; tb < 2; tb++) {
        fill_uniform(C1, M * N, 1, &r);
        memcpy(C2, C1, M * N * sizeof(float));
        gemm_pack_b(tb ? GEMM_T : GEMM_N, K, N, B, tb ? K : N, P);
        gemm_run_packed(M, N, K, A, K, P, 1.0f, C1, N);
        gemm_run(GEMM_N, tb ? GEMM_T : GEMM_N, M, N, K, 1.0f, A, K, B, tb ? K : N, 1.0f, C2, N);
        for (size_t k = 0; k < M * N; k++)
            cr_assert(close_enough(C1[k], C2[k], 1e-5, 1e-5), "tb %d [%zu]: %g vs %g", tb, k, C1[k], C2[k]);
    }
    free(A), free(B), free(P), free(C1), free(C2);
}

/* The kernel choice is made once even when the first packed calls come from several threads at once
 * (as when nothing was packed before the first parallel training step): every thread's product equals
 * the same product computed afterwards in this thread, bit for bit. (Run under TSan, this also checks
 * that the one-time choice is not a data race.) */
Test(gemm_packed, first_calls_from_many_threads_agree)
{
    pin_isa(NULL);
    enum { NT = 4 };
    const size_t M = 12, N = 40, K = 24;
    struct rng r;
    rng_seed(&r, 31);
    float *A = malloc(M * K * sizeof(float)), *B = malloc(K * N * sizeof(float));
    float *P = malloc(NT * gemm_packed_floats(K, N) * sizeof(float));
    float *C = calloc(NT * M * N, sizeof(float)), *ref = calloc(M * N, sizeof(float));
    cr_assert(A && B && P && C && ref);
    fill_uniform(A, M * K, 1, &r);
    fill_uniform(B, K * N, 1, &r);
#pragma omp parallel for num_threads(NT) schedule(static, 1)
    for (int t = 0; t < NT; t++) {
        float *pt = P + (size_t)t * gemm_packed_floats(K, N);
        gemm_pack_b(GEMM_N, K, N, B, N, pt);
        gemm_run_packed(M, N, K, A, K, pt, 0.0f, C + (size_t)t * M * N, N);
    }
    gemm_pack_b(GEMM_N, K, N, B, N, P);
    gemm_run_packed(M, N, K, A, K, P, 0.0f, ref, N);
    for (int t = 0; t < NT; t++)
        cr_assert_eq(memcmp(C + (size_t)t * M * N, ref, M * N * sizeof(float)), 0, "thread %d differs", t);
    free(A), free(B), free(P), free(C), free(ref);
}

Test(gemm_packed, pack_writes_zero_padded_panels)
{
    pin_isa(NULL);
    const size_t w = packed_panel_width(), K = 3, N = w + 5, np = 2; /* a full panel and a partial one */
    float B[3 * 64], Bt[64 * 3], P[2 * GEMM_PANEL_MAX * 3];
    cr_assert_eq(gemm_packed_floats(K, N), GEMM_PANEL_MAX * K * (w == 32 ? 2 : 1));
    for (size_t k = 0; k < K; k++)
        for (size_t n = 0; n < N; n++)
            B[k * N + n] = Bt[n * K + k] = (float)(1 + k * 100 + n); /* op(B)(k, n), never 0 */
    for (int tb = 0; tb < 2; tb++) {
        for (size_t i = 0; i < sizeof P / sizeof *P; i++)
            P[i] = NAN;
        gemm_pack_b(tb ? GEMM_T : GEMM_N, K, N, tb ? Bt : B, tb ? K : N, P);
        for (size_t j = 0; j < np; j++) /* panel j: (K, w) floats at P + j·w·K */
            for (size_t k = 0; k < K; k++)
                for (size_t c = 0; c < w; c++) {
                    const size_t n = j * w + c;
                    const float want = n < N ? (float)(1 + k * 100 + n) : 0.0f;
                    cr_assert_eq(P[j * w * K + k * w + c], want, "tb %d panel %zu k %zu c %zu", tb, j, k, c);
                }
    }
}

Test(gemm_packed, k_zero_scales_and_empty_shapes_are_no_ops)
{
    pin_isa(NULL);
    float C[6] = {1, 2, 3, 4, NAN, 6};
    float P[GEMM_PANEL_MAX] = {0};
    gemm_run_packed(2, 2, 0, NULL, 1, P, 0.5f, C, 3); /* C (2, 2) with ldc 3 */
    cr_assert(C[0] == 0.5f && C[1] == 1.0f && C[3] == 2.0f && isnan(C[4]) && C[2] == 3.0f && C[5] == 6.0f);
    gemm_run_packed(2, 2, 0, NULL, 1, P, 0.0f, C, 3); /* beta 0 overwrites, even NaN */
    cr_assert(C[0] == 0.0f && C[1] == 0.0f && C[3] == 0.0f && C[4] == 0.0f && C[2] == 3.0f && C[5] == 6.0f);
    float D[2] = {7, 8};
    gemm_run_packed(0, 2, 3, NULL, 1, P, 0.0f, D, 2);
    gemm_run_packed(2, 0, 3, NULL, 1, P, 0.0f, D, 1);
    cr_assert(D[0] == 7.0f && D[1] == 8.0f);
}

/* ---- adam, clip ---- */

Test(adam, two_steps_hand_computed)
{
    float w = 1.0f, m = 0.0f, v = 0.0f, g = 0.5f;
    struct adam_hparams hp = adam_defaults(0.1f);
    cr_assert_float_eq(hp.beta2, 0.999f, 0);
    adam_step(&w, &g, &m, &v, 1, &hp, 1);
    /* m = 0.05, v = 0.00025, m̂ = 0.5, v̂ = 0.25: w = 1 - 0.1 * 0.5 / (0.5 + 1e-8) */
    cr_assert_float_eq(m, 0.05f, 1e-7);
    cr_assert_float_eq(v, 0.00025f, 1e-8);
    cr_assert_float_eq(w, 0.9f, 1e-6);
    g = -1.0f;
    adam_step(&w, &g, &m, &v, 1, &hp, 2);
    cr_assert_float_eq(m, -0.055f, 1e-7);
    cr_assert_float_eq(v, 0.00124975f, 5e-8); /* float (1 - 0.999f) is 1e-5 off */
    cr_assert_float_eq(w, 0.93661035f, 2e-6);
}

Test(clip, norm_and_scaling_hand_computed)
{
    float g[3] = {3, 0, 4};
    cr_assert_float_eq(clip_norm(g, 3), 5.0, 1e-12);
    cr_assert_float_eq(clip_global(g, 3, 10.0), 5.0, 1e-12);
    cr_assert_eq(g[0], 3.0f);
    cr_assert_float_eq(clip_global(g, 3, 1.0), 5.0, 1e-12);
    cr_assert_float_eq(g[0], 0.6f, 1e-7);
    cr_assert_float_eq(g[2], 0.8f, 1e-7);
    float h[9] = {1, 1, 1, 1, 1, 1, 1, 1, 1}; /* exercises the 4-way loop and its tail */
    cr_assert_float_eq(clip_norm(h, 9), 3.0, 1e-12);
}

Test(clip, nonfinite_values_are_counted_and_not_scaled)
{
    float g[4] = {1, NAN, INFINITY, 2};
    cr_assert_eq(clip_count_nonfinite(g, 4), 2);
    cr_assert_eq(clip_count_nonfinite(g, 1), 0);
    double n = clip_global(g, 4, 1.0);
    cr_assert(!isfinite(n));
    cr_assert_eq(g[3], 2.0f);
}

/* ---- dropout ---- */

Test(dropout, statistics_scaling_and_reproducibility)
{
    const size_t n = 100000;
    const float p = 0.3f;
    float *x = malloc(n * sizeof *x), *y = malloc(n * sizeof *y), *y2 = malloc(n * sizeof *y2);
    uint8_t *mk = malloc(n), *mk2 = malloc(n);
    for (size_t k = 0; k < n; k++)
        x[k] = 1.0f + (float)(k % 7);
    struct rng r, r2;
    rng_seed(&r, 5);
    rng_seed(&r2, 5);
    dropout_forward(x, y, mk, n, p, &r);
    dropout_forward(x, y2, mk2, n, p, &r2);
    size_t kept = 0;
    double sx = 0, sy = 0;
    for (size_t k = 0; k < n; k++) {
        cr_assert_eq(mk[k], mk2[k]);
        cr_assert_eq(y[k], y2[k]);
        kept += mk[k];
        cr_assert_float_eq(y[k], mk[k] ? x[k] / 0.7f : 0.0f, 1e-5);
        sx += x[k];
        sy += y[k];
    }
    cr_assert_float_eq((double)kept / n, 0.7, 0.01);
    cr_assert_float_eq(sy / sx, 1.0, 0.02); /* inverted dropout keeps the expectation */
    /* the mask is one rng_uniform draw per element, in order (n is no multiple of the draw blocks) */
    rng_seed(&r2, 5);
    for (size_t k = 0; k < n; k++)
        cr_assert_eq(mk[k], rng_uniform(&r2) >= p, "element %zu", k);
    cr_assert_eq(memcmp(&r, &r2, sizeof r), 0, "the generator's state after dropout");
    /* another seed: another mask */
    rng_seed(&r2, 6);
    dropout_forward(x, y2, mk2, n, p, &r2);
    cr_assert_neq(memcmp(mk, mk2, n), 0);
    /* backward in place: d = mask * d / (1-p) */
    for (size_t k = 0; k < n; k++)
        y2[k] = 2.0f;
    dropout_backward(y2, mk, n, p);
    for (size_t k = 0; k < 100; k++)
        cr_assert_float_eq(y2[k], mk[k] ? 2.0f / 0.7f : 0.0f, 1e-6);
    /* in place forward equals out of place */
    memcpy(y2, x, n * sizeof *x);
    rng_seed(&r, 5);
    dropout_forward(y2, y2, mk2, n, p, &r);
    cr_assert_eq(memcmp(y, y2, n * sizeof *y), 0);
    free(x), free(y), free(y2), free(mk), free(mk2);
}

/* ---- projection + cross-entropy ---- */

Test(proj, forward_backward_hand_computed)
{
    /* W (3, 2), b (3); rows y0 = (1, 2) label 1, y1 = (0.5, -1) label 2, y2 ignored:
     * z0 = (1, 2, 2), z1 = (0.5, -1, -1.5) */
    const float W[6] = {1, 0, 0, 1, 1, 1}, b[3] = {0, 0, -1}, Y[6] = {1, 2, 0.5f, -1, 7, 7};
    const int32_t lab[3] = {1, 2, -1};
    float scratch[2 * 3];
    double loss, rl[3];
    size_t n;
    proj_xent_forward(W, b, Y, lab, 3, 2, 3, scratch, 2, &loss, &n, rl);
    cr_assert_eq(n, 2);
    cr_assert_float_eq(rl[0], 0.8619948040582512, 1e-6);
    cr_assert_float_eq(rl[1], 2.3063557122291467, 1e-6);
    cr_assert_eq(rl[2], 0.0);
    cr_assert_float_eq(loss, 0.8619948040582512 + 2.3063557122291467, 1e-6);
    /* gradients with scale 1: dz0 = p0 - e1, dz1 = p1 - e2 */
    float dW[6] = {0}, db[3] = {0}, dY[6] = {0};
    proj_xent_forward_backward(W, b, Y, lab, 3, 2, 3, 1.0f, dW, db, dY, scratch, 2, &loss, &n);
    const double dz[2][3] = {{0.1553624034969636, 0.42231879825151813 - 1, 0.42231879825151813},
                             {0.7361247243125938, 0.1642516276250878, 0.0996236480623183 - 1}};
    for (int k = 0; k < 3; k++)
        cr_assert_float_eq(db[k], dz[0][k] + dz[1][k], 1e-6);
    /* dW[k] = dz0[k] y0 + dz1[k] y1 */
    for (int k = 0; k < 3; k++)
        for (int j = 0; j < 2; j++)
            cr_assert_float_eq(dW[k * 2 + j], dz[0][k] * Y[j] + dz[1][k] * Y[2 + j], 1e-6);
    /* dY0 = dz0 · W */
    cr_assert_float_eq(dY[0], dz[0][0] + dz[0][2], 1e-6);
    cr_assert_float_eq(dY[1], dz[0][1] + dz[0][2], 1e-6);
    cr_assert_eq(dY[4], 0.0f);
    cr_assert_eq(dY[5], 0.0f);
    /* log-probs of row 0 */
    float lp[3];
    proj_logprobs(W, b, Y, 1, 2, 3, lp);
    cr_assert_float_eq(lp[0], -1.8619948040582512, 1e-6);
    cr_assert_float_eq(lp[1], -0.8619948040582512, 1e-6);
    cr_assert_float_eq(lp[2], -0.8619948040582512, 1e-6);
}

struct proj_case {
    size_t N, H, V, chunk;
    float *W, *b, *Y, *scratch;
    int32_t *lab;
};

static double proj_loss(struct proj_case *c, float scale)
{
    double loss;
    size_t n;
    proj_xent_forward(c->W, c->b, c->Y, c->lab, c->N, c->H, c->V, c->scratch, c->chunk, &loss, &n, NULL);
    return scale * loss;
}

/* Central differences on every entry of x (n) against the analytic gradient g; returns failures. */
static int quiet_checks;

static int check_entries(struct proj_case *c, float *x, const float *g, size_t n, float scale, const char *what)
{
    int bad = 0;
    const float eps = 1e-2f;
    for (size_t k = 0; k < n; k++) {
        float save = x[k];
        x[k] = save + eps;
        double lp = proj_loss(c, scale);
        x[k] = save - eps;
        double lm = proj_loss(c, scale);
        x[k] = save;
        double num = (lp - lm) / (2.0 * eps);
        if (!close_enough(g[k], num, 1e-4, 1e-2)) {
            if (!quiet_checks) /* the deliberately broken check below fails silently */
                cr_log_error("%s[%zu]: analytic %g numeric %g", what, k, g[k], num);
            bad++;
        }
    }
    return bad;
}

Test(proj, gradient_check_with_chunks_and_ignored_rows)
{
    struct rng r;
    rng_seed(&r, 21);
    struct proj_case c = {.N = 7, .H = 5, .V = 11, .chunk = 3};
    c.W = malloc(c.V * c.H * sizeof(float));
    c.b = malloc(c.V * sizeof(float));
    c.Y = malloc(c.N * c.H * sizeof(float));
    c.scratch = malloc(c.chunk * c.V * sizeof(float));
    c.lab = malloc(c.N * sizeof(int32_t));
    fill_uniform(c.W, c.V * c.H, 1.0f, &r);
    fill_uniform(c.b, c.V, 1.0f, &r);
    fill_uniform(c.Y, c.N * c.H, 1.0f, &r);
    for (size_t k = 0; k < c.N; k++)
        c.lab[k] = k == 2 || k == 6 ? -1 : (int32_t)rng_below(&r, c.V);
    float *dW = calloc(c.V * c.H, sizeof(float)), *db = calloc(c.V, sizeof(float));
    float *dY = calloc(c.N * c.H, sizeof(float));
    const float scale = 0.7f;
    double loss;
    size_t n;
    proj_xent_forward_backward(c.W, c.b, c.Y, c.lab, c.N, c.H, c.V, scale, dW, db, dY, c.scratch, c.chunk,
                               &loss, &n);
    cr_assert_eq(n, 5);
    cr_assert_float_eq(scale * loss, proj_loss(&c, scale), 1e-9);
    int bad = check_entries(&c, c.W, dW, c.V * c.H, scale, "dW") + check_entries(&c, c.b, db, c.V, scale, "db") +
              check_entries(&c, c.Y, dY, c.N * c.H, scale, "dY");
    cr_assert_eq(bad, 0);
    for (size_t j = 0; j < c.H; j++)
        cr_assert_eq(dY[2 * c.H + j], 0.0f); /* ignored rows get no gradient */
    /* a deliberately wrong gradient is caught */
    db[3] += 0.05f;
    quiet_checks = 1;
    cr_assert_eq(check_entries(&c, c.b, db, c.V, scale, "db (broken on purpose)"), 1);
    quiet_checks = 0;
    free(c.W), free(c.b), free(c.Y), free(c.scratch), free(c.lab), free(dW), free(db), free(dY);
}

Test(proj, chunk_size_does_not_change_results)
{
    struct rng r;
    rng_seed(&r, 22);
    const size_t N = 10, H = 4, V = 9;
    float W[36], b[9], Y[40], s1[10 * 9], dW1[36] = {0}, dW2[36] = {0}, db1[9] = {0}, db2[9] = {0};
    float dY1[40] = {0}, dY2[40] = {0};
    int32_t lab[10];
    fill_uniform(W, 36, 1, &r);
    fill_uniform(b, 9, 1, &r);
    fill_uniform(Y, 40, 1, &r);
    for (size_t k = 0; k < N; k++)
        lab[k] = (int32_t)rng_below(&r, V);
    double l1, l2;
    size_t n1, n2;
    proj_xent_forward_backward(W, b, Y, lab, N, H, V, 1, dW1, db1, dY1, s1, 10, &l1, &n1);
    proj_xent_forward_backward(W, b, Y, lab, N, H, V, 1, dW2, db2, dY2, s1, 4, &l2, &n2);
    cr_assert_float_eq(l1, l2, 1e-9);
    cr_assert_eq(n1, 10);
    for (int k = 0; k < 36; k++)
        cr_assert_float_eq(dW1[k], dW2[k], 1e-5);
    for (int k = 0; k < 40; k++)
        cr_assert_float_eq(dY1[k], dY2[k], 1e-6);
}

/* ---- embedding ---- */

Test(proj, argmax_first_of_ties_nan_and_random_rows)
{
    float z[37];
    for (size_t k = 0; k < 37; k++)
        z[k] = -1.0f;
    cr_assert_eq(proj_argmax(z, 37), 0); /* all equal: the first */
    z[20] = 3.0f, z[33] = 3.0f, z[5] = 2.5f;
    cr_assert_eq(proj_argmax(z, 37), 20); /* ties: the first */
    z[36] = INFINITY;
    cr_assert_eq(proj_argmax(z, 37), 36);
    z[36] = NAN;
    cr_assert_eq(proj_argmax(z, 37), 20); /* NaN is never the maximum */
    for (size_t k = 0; k < 37; k++)
        z[k] = NAN;
    cr_assert_eq(proj_argmax(z, 37), 0);
    cr_assert_eq(proj_argmax(z, 0), 0);
    struct rng r;
    rng_seed(&r, 11);
    float row[1000];
    for (int t = 0; t < 200; t++) {
        size_t n = 1 + rng_below(&r, 1000), want = 0;
        for (size_t k = 0; k < n; k++)
            row[k] = (float)rng_below(&r, 50); /* many ties */
        for (size_t k = 1; k < n; k++)
            want = row[k] > row[want] ? k : want;
        cr_assert_eq(proj_argmax(row, n), want, "row %d of %zu", t, n);
    }
}

Test(embed, gather_and_scatter_add_with_repeats)
{
    const float table[3 * 2] = {1, 2, 3, 4, 5, 6};
    const int32_t ids[4] = {2, 0, 2, 1};
    float out[8];
    embed_forward(table, 3, 2, ids, 4, out);
    const float want[8] = {5, 6, 1, 2, 5, 6, 3, 4};
    for (int k = 0; k < 8; k++)
        cr_assert_eq(out[k], want[k]);
    /* loss = sum_k r_k · out_k is linear, so its gradient is exact: d table[v] = sum of r rows with id v */
    const float dout[8] = {1, -1, 0.5f, 0.25f, 2, 3, -4, 8};
    float d[6] = {0};
    embed_backward(d, 3, 2, ids, 4, dout);
    const float dwant[6] = {0.5f, 0.25f, -4, 8, 3, 2};
    for (int k = 0; k < 6; k++)
        cr_assert_eq(d[k], dwant[k]);
    embed_backward(d, 3, 2, ids, 1, dout); /* accumulates */
    cr_assert_eq(d[4], 4.0f);
}

/* ---- vectorisable math ---- */

Test(vmath, exp_sigmoid_tanh_accuracy_and_limits)
{
    double emax = 0, smax = 0, tmax = 0;
    for (int i = -870000; i <= 880000; i += 7) {
        float x = (float)i * 1e-4f;
        double e = exp((double)x);
        emax = fmax(emax, fabs(vm_expf(x) - e) / e);
        if (fabsf(x) < 40) {
            double s = 1.0 / (1.0 + exp(-(double)x));
            smax = fmax(smax, fabs(vm_sigmoidf(x) - s) / s);
        }
        if (fabsf(x) < 20)
            tmax = fmax(tmax, fabs(vm_tanhf(x) - tanh((double)x)));
    }
    cr_log_info("vm_expf max rel err %.3g, vm_sigmoidf %.3g, vm_tanhf max abs err %.3g", emax, smax, tmax);
    cr_assert_lt(emax, 3e-7);  /* about 2.5 ulp */
    cr_assert_lt(smax, 5e-7);
    cr_assert_lt(tmax, 3e-7);
    cr_assert_eq(vm_expf(0.0f), 1.0f);
    cr_assert(isfinite(vm_expf(1000.0f)) && vm_expf(1000.0f) > 1e38f);
    cr_assert(vm_expf(-1000.0f) >= 0.0f && vm_expf(-1000.0f) < 1e-37f);
    cr_assert_eq(vm_sigmoidf(1000.0f), 1.0f);
    cr_assert_lt(vm_sigmoidf(-1000.0f), 1e-37f);
    cr_assert_eq(vm_tanhf(1000.0f), 1.0f);
    cr_assert_eq(vm_tanhf(-1000.0f), -1.0f);
    cr_assert(isnan(vm_expf(NAN)) && isnan(vm_sigmoidf(NAN)) && isnan(vm_tanhf(NAN)));
}

/* ---- arena ---- */

Test(arena, measure_then_carve_gives_aligned_disjoint_arrays)
{
    struct arena a = {0};
    cr_assert_null(arena_take(&a, 10));
    cr_assert_null(arena_take(&a, 100));
    cr_assert_eq(a.used, 64 + 128);
    size_t need = a.used;
    cr_assert_eq(arena_reserve(&a, need), 0);
    char *p = arena_take(&a, 10), *q = arena_take(&a, 100);
    cr_assert_eq((uintptr_t)p % 64, 0);
    cr_assert_eq(q - p, 64);
    char *base = a.base;
    cr_assert_eq(arena_reserve(&a, 50), 0); /* big enough already: same block */
    cr_assert_eq(a.base, base);
    cr_assert_eq(a.used, 0);
    arena_release(&a);
    cr_assert_null(a.base);
}
