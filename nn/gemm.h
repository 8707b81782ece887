/* nn/gemm.h: single-precision matrix product over CBLAS (OpenBLAS); gemm.c is the only file of
 * seqlite that includes <cblas.h>. Row-major; ld* are row strides in floats.
 * Threads: Debian's libopenblas is the pthreads build with its own worker threads. Code that calls
 * gemm_run from inside an OpenMP region must first call gemm_set_threads(1) (outside the region).
 * ref: BLAS sgemm (netlib), OpenBLAS openblas_set_num_threads. */
#ifndef SL_NN_GEMM_H
#define SL_NN_GEMM_H

#include <stddef.h>

enum gemm_trans { GEMM_N = 0, GEMM_T = 1 };

/* C (m, n) = alpha * op(A) (m, k) * op(B) (k, n) + beta * C. op(X) is X or X^T; A is stored
 * (m, k) if ta == GEMM_N else (k, m), likewise B. k == 0 scales C by beta. The GEMM sizes are BLAS's
 * lower-case m, n, k (nn/dims.h gives M, N, K other meanings). While an autocast is in use
 * (nn/autocast.h) the product runs in bf16 instead. */
void gemm_run(enum gemm_trans ta, enum gemm_trans tb, size_t m, size_t n, size_t k, float alpha,
              const float *A, size_t lda, const float *B, size_t ldb, float beta, float *C, size_t ldc);
/* The same product always in f32 (OpenBLAS), autocast or not. */
void gemm_run_f32(enum gemm_trans ta, enum gemm_trans tb, size_t m, size_t n, size_t k, float alpha,
                  const float *A, size_t lda, const float *B, size_t ldb, float beta, float *C, size_t ldc);
/* Number of threads OpenBLAS uses for one call (process-wide). */
void gemm_set_threads(int n);
int gemm_get_threads(void);
/* Name of the OpenBLAS kernel in use ("Haswell", "Cooperlake", ...). Static string. */
const char *gemm_corename(void);
/* The OpenBLAS kernel this CPU should run when the one OpenBLAS picked (gemm_corename) lacks the AVX2 + FMA
 * the CPU has: "SkylakeX" (AVX-512 F, BW, DQ, VL) or "Haswell" (AVX2 + FMA). NULL when the pick is fine,
 * the CPU has neither, or OPENBLAS_CORETYPE is set (the user's choice stands). OpenBLAS 0.3.21 (Debian 12)
 * falls back to its SSE3 "Prescott" kernels on CPUs it does not know by model number (a Xeon whose model a
 * hypervisor hides, newer CPUs): 3-4x slower GEMMs. OpenBLAS reads OPENBLAS_CORETYPE only when it loads,
 * so acting on this means running the program again with it set (gemm_use_best_kernel). Static string. */
const char *gemm_kernel_advice(void);
/* Acts on gemm_kernel_advice: sets OPENBLAS_CORETYPE to its kernel and runs this program again at once
 * (/proc/self/exe with argv, NULL-terminated), so call it first thing in main, before anything is read or
 * opened. With SEQLITE_KERNEL_NOTE set it says so on stderr. Returns only when there is nothing to do or the
 * exec failed (then OPENBLAS_CORETYPE is unset again and the program goes on with OpenBLAS's pick). */
void gemm_use_best_kernel(char *const argv[]);

/* Pre-packed right operand (nn/gemm_packed.c), for products with few rows and a weight reused across
 * calls (time steps): OpenBLAS repacks its operands on every call, a large share of a product with few
 * rows. op(B) (k, n) is packed into zero-padded panels of (k, 16) floats (AVX2) or (k, 32)
 * (AVX-512, used when OpenBLAS runs AVX-512 kernels). Single-threaded (whatever gemm_set_threads says);
 * thread-safe: the kernels are chosen once per process (pthread_once), at the first call from any thread. */
#define GEMM_PANEL_MAX 32
/* Floats gemm_pack_b writes for op(B) of shape (k, n). */
size_t gemm_packed_floats(size_t k, size_t n);
/* P (gemm_packed_floats(k, n)) = op(B) packed; B is stored (k, n) if tb == GEMM_N else (n, k), stride ldb. */
void gemm_pack_b(enum gemm_trans tb, size_t k, size_t n, const float *B, size_t ldb, float *P);
/* C (m, n) = A (m, k) · op(B) + beta · C with op(B) packed in P. */
void gemm_run_packed(size_t m, size_t n, size_t k, const float *A, size_t lda, const float *P, float beta,
                     float *C, size_t ldc);

#endif
