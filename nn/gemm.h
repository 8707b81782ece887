/* nn/gemm.h: single-precision matrix product over CBLAS (OpenBLAS); gemm.c is the only file of
 * seqlite that includes <cblas.h>. Row-major; ld* are row strides in floats.
 * Threads: Debian's libopenblas is the pthreads build with its own worker threads. Code that calls
 * gemm_run from inside an OpenMP region must first call gemm_set_threads(1) (outside the region).
 * ref: BLAS sgemm (netlib), OpenBLAS openblas_set_num_threads. */
#ifndef SL_NN_GEMM_H
#define SL_NN_GEMM_H

#include <stddef.h>

enum gemm_trans { GEMM_N = 0, GEMM_T = 1 };

/* C (M, N) = alpha * op(A) (M, K) * op(B) (K, N) + beta * C. op(X) is X or X^T; A is stored
 * (M, K) if ta == GEMM_N else (K, M), likewise B. K == 0 scales C by beta. */
void gemm_run(enum gemm_trans ta, enum gemm_trans tb, size_t M, size_t N, size_t K, float alpha,
              const float *A, size_t lda, const float *B, size_t ldb, float beta, float *C, size_t ldc);
/* Number of threads OpenBLAS uses for one call (process-wide). */
void gemm_set_threads(int n);
int gemm_get_threads(void);
/* Name of the OpenBLAS kernel in use ("Haswell", "Cooperlake", ...). Static string. */
const char *gemm_corename(void);

#endif
