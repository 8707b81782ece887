/* nn/gemm_bf16_dot.c: the AVX512-BF16 GEMM over pair-packed weights (see gemm_bf16_dot.h).
 * Blocking: k in blocks of KC pairs, rows in blocks of MB, panels of 32 columns, tiles of 8 x 32. A
 * thread owns the same panels in every block (schedule(static) over the same count), so the blocks need
 * no barrier between them and each element of C is summed by one thread in k order. */
#include "nn/gemm_bf16_dot.h"

#include "nn/vmath.h"
#include "util/bf16.h"

#include <string.h>

#if defined(__x86_64__) && defined(__GNUC__) && (__GNUC__ >= 11 || defined(__clang__))
#define DOT_BUILT 1
#include <immintrin.h>
#define DOT_TARGET __attribute__((target("avx512f,avx512bw,avx512bf16")))
#else
#define DOT_BUILT 0
#endif

#define NR GEMM_BF16_DOT_NR
#define KC GEMM_BF16_DOT_KC
#define MR 8  /* rows of a tile */
#define A_BLOCK ((size_t)256 << 10) /* bytes of a row block's A slice (rows x kc pairs), kept in L2 across
                                      * the panels, so a weight panel is read once per that many rows */

int gemm_bf16_dot_cpu(void)
{
#if DOT_BUILT
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512bf16");
#else
    return 0;
#endif
}

static size_t pairs_of(size_t k) { return (k + 1) / 2; }
static size_t panels_of(size_t n) { return (n + NR - 1) / NR; }

size_t gemm_bf16_dot_packed_size(size_t k, size_t n) { return panels_of(n) * pairs_of(k) * NR; }

#define QB 64 /* pairs per block of the transposed packing: a 32 x 64-dword tile (8 KiB) in L1 */

/* The dword of two values (lo at k = 2q, hi at 2q + 1) of one column. */
static inline uint32_t pair_of(float lo, float hi)
{
    return (uint32_t)bf16_round(lo) | (uint32_t)bf16_round(hi) << 16;
}

/* op(B) = B (k, n): pair q of a panel reads 32 floats of rows 2q and 2q + 1. */
VM_CLONES static void pack_n(const float *B, size_t ldb, size_t k, size_t n, uint32_t *P)
{
    const size_t K2 = pairs_of(k), np = panels_of(n);
    for (size_t p = 0; p < np; p++) {
        const size_t j0 = p * NR, nj = n - j0 < NR ? n - j0 : NR;
        for (size_t q = 0; q < K2; q++) {
            uint32_t *out = P + (p * K2 + q) * NR;
            const float *lo = B + 2 * q * ldb + j0, *hi = 2 * q + 1 < k ? lo + ldb : NULL;
            if (nj == NR && hi) {
#pragma omp simd
                for (size_t j = 0; j < NR; j++)
                    out[j] = pair_of(lo[j], hi[j]);
                continue;
            }
            for (size_t j = 0; j < NR; j++)
                out[j] = j < nj ? pair_of(lo[j], hi ? hi[j] : 0.0f) : 0u;
        }
    }
}

/* op(B) = B^T, B (n, k): column j of op(B) is row j of B, whose pairs are contiguous. A panel's pairs are
 * made in blocks of QB: each of its 32 rows of B gives QB dwords into a tile, which is then written out
 * pair by pair (32 dwords each). */
VM_CLONES static void pack_t(const float *B, size_t ldb, size_t k, size_t n, uint32_t *P)
{
    const size_t K2 = pairs_of(k), np = panels_of(n);
    uint32_t tile[NR][QB];
    for (size_t p = 0; p < np; p++) {
        const size_t j0 = p * NR, nj = n - j0 < NR ? n - j0 : NR;
        for (size_t q0 = 0; q0 < K2; q0 += QB) {
            const size_t nq = K2 - q0 < QB ? K2 - q0 : QB;
            const size_t full = 2 * (q0 + nq) <= k ? nq : nq - 1; /* pairs with both values */
            for (size_t j = 0; j < NR; j++) {
                if (j >= nj) {
                    memset(tile[j], 0, sizeof tile[j]);
                    continue;
                }
                const float *row = B + (j0 + j) * ldb + 2 * q0;
#pragma omp simd
                for (size_t q = 0; q < full; q++)
                    tile[j][q] = pair_of(row[2 * q], row[2 * q + 1]);
                if (full < nq)
                    tile[j][full] = pair_of(row[2 * full], 0.0f);
            }
            for (size_t q = 0; q < nq; q++) {
                uint32_t *out = P + (p * K2 + q0 + q) * NR;
                for (size_t j = 0; j < NR; j++)
                    out[j] = tile[j][q];
            }
        }
    }
}

void gemm_bf16_dot_pack(enum gemm_trans tb, const float *B, size_t ldb, size_t k, size_t n, uint32_t *P)
{
    if (tb == GEMM_N)
        pack_n(B, ldb, k, n, P);
    else
        pack_t(B, ldb, k, n, P);
}

#if DOT_BUILT
/* C rows [0, mr) x the panel's 32 columns (masks m0, m1 for the two halves) += A · the kc pairs of b.
 * init: 0 starts from zero, 1 from beta · C, 2 from C (a later k block). mr is a constant at each call
 * site (always inlined), so the sums stay in registers. */
static inline __attribute__((always_inline)) DOT_TARGET void tile(const int mr, size_t kc, const uint16_t *a, size_t lda,
                                                                 const uint32_t *b, float *C, size_t ldc, __mmask16 m0,
                                                                 __mmask16 m1, int init, float beta)
{
    __m512 x[MR], y[MR];
    const __m512 vb = _mm512_set1_ps(beta);
    for (int i = 0; i < mr; i++) {
        if (init == 0) {
            x[i] = _mm512_setzero_ps(), y[i] = _mm512_setzero_ps();
        } else {
            x[i] = _mm512_maskz_loadu_ps(m0, C + (size_t)i * ldc);
            y[i] = _mm512_maskz_loadu_ps(m1, C + (size_t)i * ldc + 16);
            if (init == 1)
                x[i] = _mm512_mul_ps(x[i], vb), y[i] = _mm512_mul_ps(y[i], vb);
        }
    }
    for (size_t q = 0; q < kc; q++) {
        const __m512bh u = (__m512bh)_mm512_loadu_si512(b + q * NR);
        const __m512bh v = (__m512bh)_mm512_loadu_si512(b + q * NR + 16);
        for (int i = 0; i < mr; i++) {
            uint32_t pair;
            memcpy(&pair, a + (size_t)i * lda + 2 * q, sizeof pair);
            const __m512bh s = (__m512bh)_mm512_set1_epi32((int)pair);
            x[i] = _mm512_dpbf16_ps(x[i], s, u);
            y[i] = _mm512_dpbf16_ps(y[i], s, v);
        }
    }
    for (int i = 0; i < mr; i++) {
        _mm512_mask_storeu_ps(C + (size_t)i * ldc, m0, x[i]);
        _mm512_mask_storeu_ps(C + (size_t)i * ldc + 16, m1, y[i]);
    }
}

/* One block: rows [i0, i1) x panel p x pairs [q0, q0 + kc). */
static DOT_TARGET void block(size_t i0, size_t i1, size_t p, size_t q0, size_t kc, size_t n, size_t K2,
                             const uint16_t *A, size_t lda, const uint32_t *P, float beta, float *C, size_t ldc)
{
    const size_t j0 = p * NR, nj = n - j0 < NR ? n - j0 : NR;
    const __mmask16 m0 = (__mmask16)(nj >= 16 ? 0xFFFFu : (1u << nj) - 1u);
    const __mmask16 m1 = (__mmask16)(nj >= 32 ? 0xFFFFu : nj > 16 ? (1u << (nj - 16)) - 1u : 0u);
    const uint32_t *b = P + (p * K2 + q0) * NR;
    const int init = q0 > 0 ? 2 : beta != 0.0f ? 1 : 0;
    for (size_t i = i0; i < i1; i += MR) {
        const uint16_t *a = A + i * lda + 2 * q0;
        float *c = C + i * ldc + j0;
        switch (i1 - i < MR ? i1 - i : MR) {
        case 8: tile(8, kc, a, lda, b, c, ldc, m0, m1, init, beta); break;
        case 7: tile(7, kc, a, lda, b, c, ldc, m0, m1, init, beta); break;
        case 6: tile(6, kc, a, lda, b, c, ldc, m0, m1, init, beta); break;
        case 5: tile(5, kc, a, lda, b, c, ldc, m0, m1, init, beta); break;
        case 4: tile(4, kc, a, lda, b, c, ldc, m0, m1, init, beta); break;
        case 3: tile(3, kc, a, lda, b, c, ldc, m0, m1, init, beta); break;
        case 2: tile(2, kc, a, lda, b, c, ldc, m0, m1, init, beta); break;
        default: tile(1, kc, a, lda, b, c, ldc, m0, m1, init, beta); break;
        }
    }
}
#endif

void gemm_bf16_dot_run(size_t m, size_t n, size_t k, const uint16_t *A, size_t lda, const uint32_t *P, float beta,
                       float *C, size_t ldc, int nthr)
{
#if DOT_BUILT
    const size_t K2 = pairs_of(k), np = panels_of(n);
    if (m == 0 || n == 0)
        return;
    if (np < 2 || m * n * k < ((size_t)1 << 20))
        nthr = 1;
#pragma omp parallel num_threads(nthr) if (nthr > 1)
    for (size_t q0 = 0; q0 < K2; q0 += KC) {
        const size_t kc = K2 - q0 < KC ? K2 - q0 : KC;
        const size_t mb = A_BLOCK / (kc * 4) / MR * MR;
        for (size_t i0 = 0; i0 < m; i0 += mb) {
            const size_t i1 = m - i0 < mb ? m : i0 + mb;
#pragma omp for schedule(static) nowait
            for (size_t p = 0; p < np; p++)
                block(i0, i1, p, q0, kc, n, K2, A, lda, P, beta, C, ldc);
        }
    }
#else
    (void)m, (void)n, (void)k, (void)A, (void)lda, (void)P, (void)beta, (void)C, (void)ldc, (void)nthr;
#endif
}
