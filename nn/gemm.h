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

/* Pre-packed right operand (nn/gemm_packed.c), for products with few rows and a weight reused across
 * calls (time steps): OpenBLAS repacks its operands on every call, a large share of a product with few
 * rows. op(B) (K, N) is packed into zero-padded panels of (K, 16) floats (AVX2) or (K, 32)
 * (AVX-512, used when OpenBLAS runs AVX-512 kernels). Single-threaded (whatever gemm_set_threads says);
 * thread-safe: the kernels are chosen once per process (pthread_once), at the first call from any thread. */
#define GEMM_PANEL_MAX 32
/* Floats gemm_pack_b writes for op(B) of shape (K, N). */
size_t gemm_packed_floats(size_t K, size_t N);
/* P (gemm_packed_floats(K, N)) = op(B) packed; B is stored (K, N) if tb == GEMM_N else (N, K), stride ldb. */
void gemm_pack_b(enum gemm_trans tb, size_t K, size_t N, const float *B, size_t ldb, float *P);
/* C (M, N) = A (M, K) · op(B) + beta · C with op(B) packed in P. */
void gemm_run_packed(size_t M, size_t N, size_t K, const float *A, size_t lda, const float *P, float beta,
                     float *C, size_t ldc);

#endif
