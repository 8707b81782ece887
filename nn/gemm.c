/* nn/gemm.c: the CBLAS wrapper (see gemm.h). */
#include "nn/gemm.h"

#include <assert.h>
#include <cblas.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "nn/autocast.h"

void gemm_run(enum gemm_trans ta, enum gemm_trans tb, size_t m, size_t n, size_t k, float alpha,
              const float *A, size_t lda, const float *B, size_t ldb, float beta, float *C, size_t ldc)
{
    if (autocast_active())
        autocast_gemm(ta, tb, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc);
    else
        gemm_run_f32(ta, tb, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc);
}

void gemm_run_f32(enum gemm_trans ta, enum gemm_trans tb, size_t m, size_t n, size_t k, float alpha,
              const float *A, size_t lda, const float *B, size_t ldb, float beta, float *C, size_t ldc)
{
    if (m == 0 || n == 0)
        return;
    if (k == 0) {
        for (size_t i = 0; i < m; i++)
            for (size_t j = 0; j < n; j++)
                C[i * ldc + j] = beta == 0.0f ? 0.0f : beta * C[i * ldc + j];
        return;
    }
    assert(m <= INT_MAX && n <= INT_MAX && k <= INT_MAX && lda <= INT_MAX && ldb <= INT_MAX && ldc <= INT_MAX);
    cblas_sgemm(CblasRowMajor, ta == GEMM_T ? CblasTrans : CblasNoTrans, tb == GEMM_T ? CblasTrans : CblasNoTrans,
                (int)m, (int)n, (int)k, alpha, A, (int)lda, B, (int)ldb, beta, C, (int)ldc);
}

void gemm_set_threads(int n) { openblas_set_num_threads(n < 1 ? 1 : n); }

int gemm_get_threads(void) { return openblas_get_num_threads(); }

const char *gemm_corename(void) { return openblas_get_corename(); }

const char *gemm_kernel_advice(void)
{
#if defined(__x86_64__) && defined(__GNUC__)
    if (getenv("OPENBLAS_CORETYPE"))
        return NULL;
    __builtin_cpu_init();
    if (!__builtin_cpu_supports("avx2") || !__builtin_cpu_supports("fma"))
        return NULL;
    /* OpenBLAS's x86-64 kernels with AVX2 + FMA (its DYNAMIC_ARCH names) */
    static const char *const fine[] = {"Haswell", "Zen", "SkylakeX", "Cooperlake", "SapphireRapids"};
    const char *core = gemm_corename();
    for (size_t i = 0; core && i < sizeof fine / sizeof fine[0]; i++)
        if (strcmp(core, fine[i]) == 0)
            return NULL;
    int avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                 __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl");
    return avx512 ? "SkylakeX" : "Haswell";
#else
    return NULL;
#endif
}

void gemm_use_best_kernel(char *const argv[])
{
    const char *core = gemm_kernel_advice();
    if (!core)
        return;
    if (getenv("SEQLITE_KERNEL_NOTE"))
        fprintf(stderr, "seqlite: OpenBLAS picked %s kernels on a CPU with %s; using OPENBLAS_CORETYPE=%s\n",
                gemm_corename(), strcmp(core, "Haswell") == 0 ? "AVX2" : "AVX-512", core);
    if (setenv("OPENBLAS_CORETYPE", core, 1) != 0)
        return;
    fflush(NULL);
    execv("/proc/self/exe", argv);
    unsetenv("OPENBLAS_CORETYPE"); /* exec failed: go on with what OpenBLAS picked */
}
