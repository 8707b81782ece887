/* nn/gemm_bf16_dot.h: seqlite's own bf16 GEMM for products against a weight copy on CPUs with
 * AVX512-BF16 and no AMX (nn/gemm_bf16.c decides when; nothing else calls it). C (m, n) = A (m, k) · W
 * (k, n) [+ beta · C], A and W bf16, f32 sums (VDPBF16PS: one instruction multiplies 16 pairs of bf16
 * and adds both products to 16 f32 sums), f32 C.
 * - The weight is packed once per refresh in pair panels, straight from the f32 master weight (rounded
 *   by util/bf16.h, as gemm_bf16_from_f32 rounds): 32 columns per panel, and within a panel, for each pair of rows
 *   (2p, 2p + 1), 32 dwords, dword j = W(2p, j) | W(2p + 1, j) << 16. Columns past n and the row past an
 *   odd k are zeros, so the kernel never branches on them.
 * - A is bf16 row-major with an even row stride; when k is odd its element k of each row must be 0.
 * - The kernel holds 8 rows x 32 columns of C in 16 registers and broadcasts each A pair from memory:
 *   a weight panel is read once per 8 rows, and with 16 rows (a training shard's step) once per 2 row
 *   groups while it is in L1. k is cut in blocks of GEMM_BF16_DOT_KC pairs; each block adds to C.
 * - Every element of C is summed in the same order whatever nthr (threads split the panels), so results
 *   do not depend on the number of threads.
 * Why (AMD EPYC Zen 4, 1 thread, a training shard's step products 16 x 768 x 1024 and the like): oneDNN's
 * gemm:jit copies the plain weight into its own blocks on every call and ran them at 105-126 GFLOP/s in
 * training; this kernel on the prepacked weight runs them at about 200 (docs/benchmarks.md).
 * ref: Intel SDM, VDPBF16PS; Goto & van de Geijn 2008 (register blocking, packed panels). */
#ifndef SL_NN_GEMM_BF16_DOT_H
#define SL_NN_GEMM_BF16_DOT_H

#include <stddef.h>
#include <stdint.h>

#include "nn/gemm.h"

#define GEMM_BF16_DOT_NR 32  /* columns per panel */
#define GEMM_BF16_DOT_KC 256 /* pairs of k per block */

/* 1 when this CPU has AVX512-BF16 (and this build the kernel). */
int gemm_bf16_dot_cpu(void);
/* dwords of the pair panels of a (k, n) weight. */
size_t gemm_bf16_dot_packed_size(size_t k, size_t n);
/* P = the pair panels of W = op(B) (k, n) rounded to bf16; B f32, stored (k, n) if tb == GEMM_N else
 * (n, k), row stride ldb. Single-threaded. */
void gemm_bf16_dot_pack(enum gemm_trans tb, const float *B, size_t ldb, size_t k, size_t n, uint32_t *P);
/* C (m, n) = A · W + beta · C (beta 0: C only written). A bf16 (m, k), row stride lda (even, >= k + k % 2),
 * P from gemm_bf16_dot_pack. nthr > 1 opens a parallel region over the panels (never inside one). */
void gemm_bf16_dot_run(size_t m, size_t n, size_t k, const uint16_t *A, size_t lda, const uint32_t *P, float beta,
                       float *C, size_t ldc, int nthr);

#endif
