/* nn/gemm_packed.c: C = A · op(B) + beta C with op(B) packed once into 16-column panels (see gemm.h).
 * Why: for the few-row products of a time step (M = 32..64 rows against a 2048 x 768 weight) OpenBLAS
 * repacks the whole weight on every call; the profile of greedy decoding showed its packing routine
 * (sgemm_incopy) at 32% of the time. Packing a weight once per batch (decoding) or once per layer and
 * pass (training's recurrent products) removes that cost.
 * Kernel: 6 rows x 16 columns of C in 12 AVX2 registers, k blocked by 256 so a 16 KiB panel block stays in
 * L1; selected at run time (__builtin_cpu_supports), with a portable loop as fallback. Single-threaded.
 * ref: Goto & van de Geijn 2008 (packing, register blocking); OpenBLAS Haswell sgemm 6x16 micro-kernel. */
#include "nn/gemm.h"

#include <string.h>

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define HAVE_X86 1
#else
#define HAVE_X86 0
#endif

#define PANEL GEMM_PANEL
#define KC 256
#define MR 6

size_t gemm_packed_floats(size_t K, size_t N) { return (N + PANEL - 1) / PANEL * PANEL * K; }

void gemm_pack_b(enum gemm_trans tb, size_t K, size_t N, const float *B, size_t ldb, float *P)
{
    const size_t np = (N + PANEL - 1) / PANEL;
    for (size_t j = 0; j < np; j++) {
        float *pj = P + j * PANEL * K; /* (K, 16) */
        const size_t n0 = j * PANEL, nn = N - n0 < PANEL ? N - n0 : PANEL;
        if (tb == GEMM_T) { /* op(B)(k, n) = B[n * ldb + k] */
            if (nn < PANEL)
                memset(pj, 0, PANEL * K * sizeof(float));
            for (size_t c = 0; c < nn; c++) {
                const float *src = B + (n0 + c) * ldb;
                for (size_t k = 0; k < K; k++)
                    pj[k * PANEL + c] = src[k];
            }
        } else { /* op(B)(k, n) = B[k * ldb + n] */
            for (size_t k = 0; k < K; k++) {
                const float *src = B + k * ldb + n0;
                size_t c = 0;
                for (; c < nn; c++)
                    pj[k * PANEL + c] = src[c];
                for (; c < PANEL; c++)
                    pj[k * PANEL + c] = 0.0f;
            }
        }
    }
}

/* Portable tile: C tile (mr, nn) (+)= A (mr, kc) · panel block (kc, 16). */
static void tile_generic(size_t mr, size_t nn, size_t kc, const float *A, size_t lda, const float *pb,
                         float *C, size_t ldc, int load)
{
    float acc[MR][PANEL];
    for (size_t r = 0; r < mr; r++)
        for (size_t c = 0; c < PANEL; c++)
            acc[r][c] = load && c < nn ? C[r * ldc + c] : 0.0f;
    for (size_t k = 0; k < kc; k++)
        for (size_t r = 0; r < mr; r++) {
            float a = A[r * lda + k];
            for (size_t c = 0; c < PANEL; c++)
                acc[r][c] += a * pb[k * PANEL + c];
        }
    for (size_t r = 0; r < mr; r++)
        for (size_t c = 0; c < nn; c++)
            C[r * ldc + c] = acc[r][c];
}

#if HAVE_X86
/* AVX2 + FMA tile, mr <= 6 rows (a constant after inlining, so the loops unroll and the accumulators stay
 * in registers), nn <= 16 columns (masked loads / stores at the edge). */
__attribute__((target("avx2,fma"), always_inline)) static inline void
tile_avx2_mr(const size_t mr, size_t nn, size_t kc, const float *A, size_t lda, const float *pb, float *C,
             size_t ldc, int load)
{
    __m256 c0[MR], c1[MR];
    const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    const __m256i m0 = _mm256_cmpgt_epi32(_mm256_set1_epi32((int)nn), lane);
    const __m256i m1 = _mm256_cmpgt_epi32(_mm256_set1_epi32((int)nn - 8), lane);
#pragma GCC unroll 6
    for (size_t r = 0; r < mr; r++) {
        if (load) {
            c0[r] = _mm256_maskload_ps(C + r * ldc, m0);
            c1[r] = _mm256_maskload_ps(C + r * ldc + 8, m1);
        } else {
            c0[r] = _mm256_setzero_ps();
            c1[r] = _mm256_setzero_ps();
        }
    }
    for (size_t k = 0; k < kc; k++) {
        __m256 b0 = _mm256_loadu_ps(pb + k * PANEL), b1 = _mm256_loadu_ps(pb + k * PANEL + 8);
#pragma GCC unroll 6
        for (size_t r = 0; r < mr; r++) {
            __m256 a = _mm256_broadcast_ss(A + r * lda + k);
            c0[r] = _mm256_fmadd_ps(a, b0, c0[r]);
            c1[r] = _mm256_fmadd_ps(a, b1, c1[r]);
        }
    }
#pragma GCC unroll 6
    for (size_t r = 0; r < mr; r++) {
        _mm256_maskstore_ps(C + r * ldc, m0, c0[r]);
        _mm256_maskstore_ps(C + r * ldc + 8, m1, c1[r]);
    }
}

__attribute__((target("avx2,fma"))) static void tile_avx2(size_t mr, size_t nn, size_t kc, const float *A,
                                                          size_t lda, const float *pb, float *C, size_t ldc,
                                                          int load)
{
    switch (mr) {
    case 6: tile_avx2_mr(6, nn, kc, A, lda, pb, C, ldc, load); break;
    case 5: tile_avx2_mr(5, nn, kc, A, lda, pb, C, ldc, load); break;
    case 4: tile_avx2_mr(4, nn, kc, A, lda, pb, C, ldc, load); break;
    case 3: tile_avx2_mr(3, nn, kc, A, lda, pb, C, ldc, load); break;
    case 2: tile_avx2_mr(2, nn, kc, A, lda, pb, C, ldc, load); break;
    default: tile_avx2_mr(1, nn, kc, A, lda, pb, C, ldc, load); break;
    }
}

static int use_avx2(void)
{
    static int v = -1;
    if (v < 0) {
        __builtin_cpu_init();
        v = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    }
    return v;
}
#endif

void gemm_run_packed(size_t M, size_t N, size_t K, const float *A, size_t lda, const float *P, float beta,
                     float *C, size_t ldc)
{
    if (M == 0 || N == 0)
        return;
    if (K == 0 || (beta != 0.0f && beta != 1.0f)) { /* scale C first; then accumulate */
        for (size_t i = 0; i < M; i++)
            for (size_t j = 0; j < N; j++)
                C[i * ldc + j] = beta == 0.0f ? 0.0f : beta * C[i * ldc + j];
        if (K == 0)
            return;
        beta = 1.0f;
    }
    const size_t np = (N + PANEL - 1) / PANEL;
#if HAVE_X86
    const int avx2 = use_avx2();
#endif
    for (size_t k0 = 0; k0 < K; k0 += KC) {
        const size_t kc = K - k0 < KC ? K - k0 : KC;
        const int load = k0 > 0 || beta != 0.0f;
        for (size_t j = 0; j < np; j++) {
            const size_t n0 = j * PANEL, nn = N - n0 < PANEL ? N - n0 : PANEL;
            const float *pb = P + j * PANEL * K + k0 * PANEL; /* (kc, 16) */
            for (size_t i = 0; i < M; i += MR) {
                const size_t mr = M - i < MR ? M - i : MR;
                const float *a = A + i * lda + k0;
                float *c = C + i * ldc + n0;
#if HAVE_X86
                if (avx2) {
                    tile_avx2(mr, nn, kc, a, lda, pb, c, ldc, load);
                    continue;
                }
#endif
                tile_generic(mr, nn, kc, a, lda, pb, c, ldc, load);
            }
        }
    }
}
