/* nn/gemm_packed.c: C = A · op(B) + beta C with op(B) packed once into 16-column panels (see gemm.h).
 * Why: for the few-row products of a time step (a few dozen rows against a whole weight) OpenBLAS
 * repacks the whole weight on every call, and in profiles of greedy decoding its packing routine
 * (sgemm_incopy) took a large share of the time. Packing a weight once per batch (decoding) or once per
 * layer and pass (training's recurrent products) removes that cost.
 * Kernels: 6 rows x 16 columns of C in 12 AVX2 registers (16-wide panels), or 12 rows x 32 in 24 AVX-512
 * registers (32-wide panels; used only when OpenBLAS runs AVX-512 kernels too); k blocked so a 16 KiB
 * panel block stays in L1;
 * chosen at run time (__builtin_cpu_supports), with a portable loop as fallback. Single-threaded.
 * On a decoding-step shape this AVX2 kernel beats OpenBLAS's Haswell sgemm (the figures: git history).
 * ref: Goto & van de Geijn 2008 (packing, register blocking); OpenBLAS Haswell sgemm 6x16 micro-kernel. */
#include "nn/gemm.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define HAVE_X86 1
#else
#define HAVE_X86 0
#endif

#define PANEL 16     /* AVX2 / portable panel width */
#define PANEL512 32  /* AVX-512 panel width (two registers per row) */
#define KC 256       /* k block: 16 KiB of a 16-wide panel */
#define KC512 128    /* 16 KiB of a 32-wide panel */
#define MR 6
#define MR512 12
/* Software prefetch: the first row tile of a panel block reads it from L3 or memory (the decoder's packed
 * weights are larger than the cache for base and do not stay in it between steps), and the hardware
 * prefetcher alone left that tile stalled on the loads (profiles put many samples on the instruction
 * after the panel load). So the first row tile prefetches its block PF_BYTES ahead (the best distance
 * tried), and the second row tile prefetches the whole next block, which then waits in cache for the
 * next first tile (faster step GEMMs in gemm-step and faster greedy decoding). */
#define PF_BYTES 4096

static int isa_level(void);

size_t gemm_packed_floats(size_t K, size_t N) { return (N + GEMM_PANEL_MAX - 1) / GEMM_PANEL_MAX * GEMM_PANEL_MAX * K; }

static size_t panel_width(void) { return isa_level() == 2 ? PANEL512 : PANEL; }

void gemm_pack_b(enum gemm_trans tb, size_t K, size_t N, const float *B, size_t ldb, float *P)
{
    const size_t pw = panel_width(), np = (N + pw - 1) / pw;
    for (size_t j = 0; j < np; j++) {
        float *pj = P + j * pw * K; /* (K, pw) */
        const size_t n0 = j * pw, nn = N - n0 < pw ? N - n0 : pw;
        if (tb == GEMM_T) { /* op(B)(k, n) = B[n * ldb + k] */
            if (nn < pw)
                memset(pj, 0, pw * K * sizeof(float));
            for (size_t k0 = 0; k0 < K; k0 += 64) { /* blocks of 64 k: the panel block stays in L1 */
                const size_t k1 = K - k0 < 64 ? K : k0 + 64;
                for (size_t c = 0; c < nn; c++) {
                    const float *src = B + (n0 + c) * ldb;
                    for (size_t k = k0; k < k1; k++)
                        pj[k * pw + c] = src[k];
                }
            }
        } else { /* op(B)(k, n) = B[k * ldb + n] */
            for (size_t k = 0; k < K; k++) {
                const float *src = B + k * ldb + n0;
                size_t c = 0;
                for (; c < nn; c++)
                    pj[k * pw + c] = src[c];
                for (; c < pw; c++)
                    pj[k * pw + c] = 0.0f;
            }
        }
    }
}

/* Portable tile: C tile (mr, nn) (+)= A (mr, kc) · panel block (kc, 16). The kernels read A's element
 * (r, k) at A[r·rs + k·ks]: in place rs = lda, ks = 1; copied into a row tile rs = 1, ks = mr. */
static void tile_generic(size_t mr, size_t nn, size_t kc, const float *A, size_t rs, size_t ks, const float *pb,
                         float *C, size_t ldc, int load)
{
    float acc[MR][PANEL]; /* mr <= MR */
    for (size_t r = 0; r < mr; r++)
        for (size_t c = 0; c < PANEL; c++)
            acc[r][c] = load && c < nn ? C[r * ldc + c] : 0.0f;
    for (size_t k = 0; k < kc; k++)
        for (size_t r = 0; r < mr; r++) {
            float a = A[r * rs + k * ks];
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
tile_avx2_mr(const size_t mr, size_t nn, size_t kc, const float *A, size_t rs, size_t ks, const float *pb, float *C,
             size_t ldc, int load, const char *pf, size_t pfs)
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
        _mm_prefetch(pf + k * pfs, _MM_HINT_T0);
        __m256 b0 = _mm256_loadu_ps(pb + k * PANEL), b1 = _mm256_loadu_ps(pb + k * PANEL + 8);
#pragma GCC unroll 6
        for (size_t r = 0; r < mr; r++) {
            __m256 a = _mm256_broadcast_ss(A + r * rs + k * ks);
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
                                                          size_t rs, size_t ks, const float *pb, float *C, size_t ldc,
                                                          int load, const char *pf, size_t pfs)
{
    switch (mr) {
    case 6: tile_avx2_mr(6, nn, kc, A, rs, ks, pb, C, ldc, load, pf, pfs); break;
    case 5: tile_avx2_mr(5, nn, kc, A, rs, ks, pb, C, ldc, load, pf, pfs); break;
    case 4: tile_avx2_mr(4, nn, kc, A, rs, ks, pb, C, ldc, load, pf, pfs); break;
    case 3: tile_avx2_mr(3, nn, kc, A, rs, ks, pb, C, ldc, load, pf, pfs); break;
    case 2: tile_avx2_mr(2, nn, kc, A, rs, ks, pb, C, ldc, load, pf, pfs); break;
    default: tile_avx2_mr(1, nn, kc, A, rs, ks, pb, C, ldc, load, pf, pfs); break;
    }
}

/* AVX-512 tile, mr <= 12 rows x 32 columns in 24 registers (masked at the column edge, nn <= 32). */
__attribute__((target("avx512f"), always_inline)) static inline void
tile_avx512_mr(const size_t mr, size_t nn, size_t kc, const float *A, size_t rs, size_t ks, const float *pb, float *C,
               size_t ldc, int load, const char *pf, size_t pfs)
{
    __m512 c0[MR512], c1[MR512];
    const __mmask16 m0 = (__mmask16)(nn >= 16 ? 0xFFFFu : (1u << nn) - 1u);
    const __mmask16 m1 = (__mmask16)(nn <= 16 ? 0u : (1u << (nn - 16)) - 1u);
#pragma GCC unroll 12
    for (size_t r = 0; r < mr; r++) {
        c0[r] = load ? _mm512_maskz_loadu_ps(m0, C + r * ldc) : _mm512_setzero_ps();
        c1[r] = load ? _mm512_maskz_loadu_ps(m1, C + r * ldc + 16) : _mm512_setzero_ps();
    }
    for (size_t k = 0; k < kc; k++) {
        _mm_prefetch(pf + k * pfs, _MM_HINT_T0);
        _mm_prefetch(pf + k * pfs + 64, _MM_HINT_T0);
        __m512 b0 = _mm512_loadu_ps(pb + k * PANEL512), b1 = _mm512_loadu_ps(pb + k * PANEL512 + 16);
#pragma GCC unroll 12
        for (size_t r = 0; r < mr; r++) {
            __m512 a = _mm512_set1_ps(A[r * rs + k * ks]);
            c0[r] = _mm512_fmadd_ps(a, b0, c0[r]);
            c1[r] = _mm512_fmadd_ps(a, b1, c1[r]);
        }
    }
#pragma GCC unroll 12
    for (size_t r = 0; r < mr; r++) {
        _mm512_mask_storeu_ps(C + r * ldc, m0, c0[r]);
        _mm512_mask_storeu_ps(C + r * ldc + 16, m1, c1[r]);
    }
}

__attribute__((target("avx512f"))) static void tile_avx512(size_t mr, size_t nn, size_t kc, const float *A,
                                                           size_t rs, size_t ks, const float *pb, float *C, size_t ldc,
                                                           int load, const char *pf, size_t pfs)
{
    switch (mr) {
    case 12: tile_avx512_mr(12, nn, kc, A, rs, ks, pb, C, ldc, load, pf, pfs); break;
    case 11: tile_avx512_mr(11, nn, kc, A, rs, ks, pb, C, ldc, load, pf, pfs); break;
    case 10: tile_avx512_mr(10, nn, kc, A, rs, ks, pb, C, ldc, load, pf, pfs); break;
    case 9: tile_avx512_mr(9, nn, kc, A, rs, ks, pb, C, ldc, load, pf, pfs); break;
    case 8: tile_avx512_mr(8, nn, kc, A, rs, ks, pb, C, ldc, load, pf, pfs); break;
    case 7: tile_avx512_mr(7, nn, kc, A, rs, ks, pb, C, ldc, load, pf, pfs); break;
    case 6: tile_avx512_mr(6, nn, kc, A, rs, ks, pb, C, ldc, load, pf, pfs); break;
    case 5: tile_avx512_mr(5, nn, kc, A, rs, ks, pb, C, ldc, load, pf, pfs); break;
    case 4: tile_avx512_mr(4, nn, kc, A, rs, ks, pb, C, ldc, load, pf, pfs); break;
    case 3: tile_avx512_mr(3, nn, kc, A, rs, ks, pb, C, ldc, load, pf, pfs); break;
    case 2: tile_avx512_mr(2, nn, kc, A, rs, ks, pb, C, ldc, load, pf, pfs); break;
    default: tile_avx512_mr(1, nn, kc, A, rs, ks, pb, C, ldc, load, pf, pfs); break;
    }
}

/* 2: AVX-512, 1: AVX2 + FMA, 0: portable. AVX-512 only when OpenBLAS itself runs AVX-512 kernels, so the
 * whole program uses one ISA (this environment pins OpenBLAS to Haswell = AVX2 with OPENBLAS_CORETYPE);
 * SEQLITE_GEMM_ISA=avx2|avx512|generic overrides. */
static int isa_value;
static pthread_once_t isa_once = PTHREAD_ONCE_INIT;

/* Runs once per process (pthread_once): the first call may come from several OpenMP threads at once
 * when nothing was packed before the first parallel step, and pthread_once orders that write before
 * every read. */
static void isa_detect(void)
{
    __builtin_cpu_init();
    int avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    int avx512 = avx2 && __builtin_cpu_supports("avx512f");
    const char *core = gemm_corename(), *env = getenv("SEQLITE_GEMM_ISA");
    int blas512 = core && (strstr(core, "Skylake") || strstr(core, "Cooperlake") || strstr(core, "Sapphire"));
    int lv = avx512 && blas512 ? 2 : avx2 ? 1 : 0;
    if (env && strcmp(env, "generic") == 0)
        lv = 0;
    else if (env && strcmp(env, "avx2") == 0 && avx2)
        lv = 1;
    else if (env && strcmp(env, "avx512") == 0 && avx512)
        lv = 2;
    isa_value = lv;
}

static int isa_level(void)
{
    pthread_once(&isa_once, isa_detect);
    return isa_value;
}
#else
static int isa_level(void) { return 0; }
#endif

/* A copied into row tiles (nn/gemm.h), one per thread: the tile of rows [i, i + mr) lies at i·K, k-major
 * (element (r, k) at k·mr + r), so a tile's kernel reads its A block as one contiguous stream. Why: read in
 * place, the mr rows of a tile are mr streams lda floats apart, and with lda a multiple of 512 floats
 * (2 KiB; K = 512, 1024 or 2048: the decoder's [x | h] blocks, dG, [c | h]) they fall into one or two
 * groups of L1 sets, more rows than the cache has ways: in the decoder those products ran at 66-75
 * GFLOP/s against 85-95 for K = 1280, and at 81-94 copied (AMD EPYC Zen 4, one thread). The copy is one
 * pass over A against N/32 passes of the kernels. The buffer grows to the largest A a thread multiplies
 * and is freed when the thread ends (its key's destructor). */
static __thread float *abuf;
static __thread size_t abuf_cap;
static pthread_key_t abuf_key;
static pthread_once_t abuf_once = PTHREAD_ONCE_INIT;

static void abuf_key_make(void) { (void)pthread_key_create(&abuf_key, free); }

/* The row-tiled copy of A (M, K), tiles of mstep rows (the last may have fewer); NULL when there is no
 * memory for it (the kernels then read A in place). */
static const float *tile_rows(size_t M, size_t K, const float *A, size_t lda, size_t mstep)
{
    const size_t need = M * K;
    if (need > abuf_cap) {
        pthread_once(&abuf_once, abuf_key_make);
        float *nb = aligned_alloc(64, (need * sizeof(float) + 63) / 64 * 64);
        if (!nb)
            return NULL;
        free(abuf);
        abuf = nb, abuf_cap = need;
        (void)pthread_setspecific(abuf_key, abuf);
    }
    for (size_t i = 0; i < M; i += mstep) {
        const size_t mr = M - i < mstep ? M - i : mstep;
        float *dst = abuf + i * K;
        for (size_t k0 = 0; k0 < K; k0 += 16) { /* a cache line of each row at a time */
            const size_t k1 = K - k0 < 16 ? K : k0 + 16;
            for (size_t r = 0; r < mr; r++) {
                const float *src = A + (i + r) * lda;
                for (size_t k = k0; k < k1; k++)
                    dst[k * mr + r] = src[k];
            }
        }
    }
    return abuf;
}

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
    const size_t pw = panel_width(), np = (N + pw - 1) / pw, kcb = pw == PANEL512 ? KC512 : KC;
#if HAVE_X86
    const int isa = isa_level();
    const size_t mstep = isa == 2 ? MR512 : MR;
#else
    const size_t mstep = MR;
#endif
    /* a tile's A block: at At + i·K + k0·mr, element (r, k) at r + k·mr; or in place (rs lda, ks 1).
     * Copied only for rows 512·j floats apart (at most 2 groups of L1 sets): farther-spread strides
     * (K = 1280: 4 groups, 3 rows of a 12-row tile each) ran as fast in place, where the copy cost 3-5%;
     * with one panel A is read once anyway */
    const float *At = N > pw && lda % 512 == 0 ? tile_rows(M, K, A, lda, mstep) : NULL;
    /* panel-major: the (M, pw) column of C stays in L1/L2 across the k blocks, A (M, K) stays in L2 */
    for (size_t j = 0; j < np; j++) {
        const size_t n0 = j * pw, nn = N - n0 < pw ? N - n0 : pw;
        for (size_t k0 = 0; k0 < K; k0 += kcb) {
            const size_t kc = K - k0 < kcb ? K - k0 : kcb;
            const int load = k0 > 0 || beta != 0.0f;
            const float *pb = P + j * pw * K + k0 * pw; /* (kc, pw) */
            for (size_t i = 0; i < M; i += mstep) {
                const size_t mr = M - i < mstep ? M - i : mstep;
                const float *a = At ? At + i * K + k0 * mr : A + i * lda + k0;
                const size_t rs = At ? 1 : lda, ks = At ? mr : 1;
                float *c = C + i * ldc + n0;
#if HAVE_X86
                /* prefetch: the first row tile reads its block PF_BYTES ahead; the second fetches the next
                 * block (the packed panels lie in the order they are read, so it starts at pb + kc·pw);
                 * the others touch their own block's first line (in L1 already: no cost) */
                const char *pf = (const char *)pb;
                size_t pfs = 0;
                if (i == 0)
                    pf += PF_BYTES, pfs = pw * sizeof(float);
                else if (i == mstep)
                    pf += kc * pw * sizeof(float), pfs = pw * sizeof(float);
                if (isa == 2) {
                    tile_avx512(mr, nn, kc, a, rs, ks, pb, c, ldc, load, pf, pfs);
                    continue;
                }
                if (isa == 1) {
                    tile_avx2(mr, nn, kc, a, rs, ks, pb, c, ldc, load, pf, pfs);
                    continue;
                }
#endif
                tile_generic(mr, nn, kc, a, rs, ks, pb, c, ldc, load);
            }
        }
    }
}
