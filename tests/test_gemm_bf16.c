/* tests/test_gemm_bf16.c: nn/gemm_bf16 — the f32 -> bf16 rounding on hand-picked values; bf16 GEMMs
 * against f32 sgemm to bf16 precision on the model's shapes (scaled down where they would take long) and
 * on odd ones, every transpose, beta 0, 1 and 0.5, strided operands, per call and through a weight copy;
 * against sgemm of the bf16-rounded inputs to f32 precision (so the rounding is the one oneDNN sees);
 * per-shard calls inside parallel regions give the same bits on 1 and 2 threads; without AMX one
 * primitive serves every shape (one per orientation and beta, none made on a second pass); and, in child
 * processes, ONEDNN_MAX_CPU_ISA=avx2 (no bf16 matmul in oneDNN: f32 instead, said so), avx512_core
 * (emulated bf16) and SEQLITE_BF16_PER_SHAPE=1 (one primitive per shape, AMX's way). Built without oneDNN, the calls are sgemm's and the tests that need
 * oneDNN skip. */
#include <criterion/criterion.h>

#include <math.h>
#include <omp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "nn/gemm.h"
#include "nn/gemm_bf16.h"
#include "util/rng.h"

static void fill_uniform(float *x, size_t n, float a, struct rng *r)
{
    for (size_t k = 0; k < n; k++)
        x[k] = (2.0f * rng_uniform(r) - 1.0f) * a;
}

static uint32_t bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

static float from_bits(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

Test(gemm_bf16, conversion_rounds_to_nearest_even)
{
    const float x[] = {1.0f, 1.0f + 0x1p-8f, 1.0f + 3 * 0x1p-8f, 1.0f + 0x1p-8f + 0x1p-20f, -2.5f, -0.0f,
                       INFINITY, 3.4028235e38f, from_bits(0x7F800001u), 0x1p-130f};
    const uint16_t want[] = {0x3F80, 0x3F80 /* tie: to even */, 0x3F82 /* tie: to even, up */, 0x3F81,
                             0xC020, 0x8000, 0x7F80, 0x7F80 /* FLT_MAX rounds to infinity */, 0, 0};
    uint16_t y[sizeof x / sizeof x[0]];
    float back[sizeof x / sizeof x[0]];
    gemm_bf16_from_f32(x, y, sizeof x / sizeof x[0]);
    gemm_bf16_to_f32(y, back, sizeof x / sizeof x[0]);
    for (size_t i = 0; i < 8; i++)
        cr_expect_eq(y[i], want[i], "x[%zu] = %a: 0x%04x, want 0x%04x", i, (double)x[i], y[i], want[i]);
    cr_expect(isnan(back[8]), "a signalling NaN with only low mantissa bits must stay a NaN (0x%04x)", y[8]);
    cr_expect_eq(bits(back[9]), bits(0x1p-130f), "a subnormal bf16 holds survives: 0x%04x", y[9]);
    cr_expect_eq(back[2], 1.0f + 0x1p-6f);
}

struct shape {
    size_t m, n, k;
    int ta, tb;
    float beta;
    size_t pad; /* extra row stride on A, B and C */
};

/* The model's GEMMs (decoder step greedy 64 x 1024 x 2048 and beam 160 x 768 x 2048 as they are, the
 * output projection 1536 x 512 x 8000 with fewer rows and columns) and odd sizes over every transpose. */
static const struct shape shapes[] = {
    {192, 1000, 512, 0, 0, 0.0f, 0},  {192, 1000, 512, 0, 1, 1.0f, 0},  {64, 2048, 1024, 0, 1, 0.0f, 0},
    {160, 2048, 768, 0, 1, 1.0f, 0},  {512, 96, 192, 1, 0, 1.0f, 0},    {7, 5, 13, 0, 0, 0.0f, 0},
    {7, 5, 13, 0, 1, 1.0f, 3},        {7, 5, 13, 1, 0, 0.0f, 2},        {7, 5, 13, 1, 1, 1.0f, 1},
    {7, 5, 13, 1, 1, 0.5f, 4},        {1, 1, 1, 0, 0, 1.0f, 0},         {33, 17, 129, 1, 1, 0.0f, 5},
    /* the own kernel's edges (gemm_bf16_dot.h): rows not a multiple of 8, columns not of 32 or 16, odd k,
     * k past one block of 256 pairs, rows past one row block (256 rows at 256 pairs), training's 16 rows */
    {300, 70, 1100, 0, 1, 0.5f, 3},   {17, 33, 3, 1, 0, 1.0f, 1},       {9, 64, 767, 0, 1, 0.0f, 0},
    {16, 1024, 512, 0, 0, 1.0f, 0},   {5, 16, 2, 0, 1, 0.0f, 2},
};

/* Checks Cb (bf16 GEMM) against Cf (sgemm of the same f32 inputs) to bf16 precision: rounding A and B
 * to bf16 (8 significant bits, unit roundoff u = 2^-8) moves each product a·b by at most (2u + u²)|a||b|,
 * so |Cb - Cf| <= (2^-7 + 2^-16) S per element with S = sum |a||b| (beta C is f32 in both; the bound is
 * reached only with few terms, so the edge shapes with k 2 and 3 are the ones that test it), plus both f32 sums' rounding (k 2^-23 S). Cr
 * (sgemm of the bf16-rounded inputs; NULL: not checked) must match Cb to f32 accumulation precision.
 * Returns the number of elements off (printing the first on stderr); *worst = the largest |Cb - Cf| / S,
 * for the caller to check that rounding did happen. No criterion asserts: child processes run it too. */
static int check(const struct shape *s, const float *Cb, const float *Cf, const float *Cr, const float *S,
                 size_t ldc, const char *what, double *worst)
{
    int bad = 0;
    const double acc = (double)s->k * 0x1p-23;
    *worst = 0;
    for (size_t i = 0; i < s->m; i++)
        for (size_t j = 0; j < s->n; j++) {
            const size_t x = i * ldc + j;
            const double b = Cb[x], f = Cf[x], sum = S[x] + 1e-30;
            const int off = !(fabs(b - f) <= (0x1p-7 + 0x1p-16 + acc) * sum + 1e-6) ||
                            (Cr && !(fabs(b - Cr[x]) <= 2 * acc * sum + 1e-6));
            if (off && bad++ == 0)
                fprintf(stderr, "%s m %zu n %zu k %zu ta %d tb %d beta %g: C(%zu,%zu) %.9g, sgemm %.9g, sgemm of "
                        "the rounded inputs %.9g, S %.3g\n", what, s->m, s->n, s->k, s->ta, s->tb, (double)s->beta,
                        i, j, b, f, Cr ? (double)Cr[x] : NAN, sum);
            *worst = fabs(b - f) / sum > *worst ? fabs(b - f) / sum : *worst;
        }
    return bad;
}

/* Every shape through gemm_bf16_run and gemm_bf16_run_weight on ctx; in the oneDNN modes the result
 * must differ from sgemm somewhere (bf16 was used), in GEMM_BF16_FP32 it must be sgemm's to the bit.
 * Returns the number of failed checks (details on stderr); log: cr_log_info per shape (not in a child). */
static int check_all_shapes(struct gemm_bf16_ctx *ctx, enum gemm_bf16_mode mode, int log)
{
    struct rng r;
    rng_seed(&r, 7);
    int fails = 0;
    for (size_t t = 0; t < sizeof shapes / sizeof shapes[0]; t++) {
        const struct shape *s = &shapes[t];
        const size_t lda = (s->ta ? s->m : s->k) + s->pad, ldb = (s->tb ? s->k : s->n) + s->pad;
        const size_t ldc = s->n + s->pad;
        const size_t na = (s->ta ? s->k : s->m) * lda, nb = (s->tb ? s->n : s->k) * ldb, nc = s->m * ldc;
        float *A = malloc(na * sizeof *A), *B = malloc(nb * sizeof *B), *Ar = malloc(na * sizeof *A);
        float *Br = malloc(nb * sizeof *B), *absA = malloc(na * sizeof *A), *absB = malloc(nb * sizeof *B);
        float *C0 = malloc(nc * sizeof *C0), *Cb = malloc(nc * sizeof *C0), *Cf = malloc(nc * sizeof *C0);
        float *Cr = malloc(nc * sizeof *C0), *S = calloc(nc, sizeof *C0);
        uint16_t *t16 = malloc((na > nb ? na : nb) * sizeof *t16);
        if (!(A && B && Ar && Br && absA && absB && C0 && Cb && Cf && Cr && S && t16))
            abort();
        fill_uniform(A, na, 1.0f, &r);
        fill_uniform(B, nb, 0.5f, &r);
        fill_uniform(C0, nc, 1.0f, &r);
        gemm_bf16_from_f32(A, t16, na);
        gemm_bf16_to_f32(t16, Ar, na);
        gemm_bf16_from_f32(B, t16, nb);
        gemm_bf16_to_f32(t16, Br, nb);
        for (size_t i = 0; i < na; i++)
            absA[i] = fabsf(A[i]);
        for (size_t i = 0; i < nb; i++)
            absB[i] = fabsf(B[i]);
        const enum gemm_trans ta = s->ta ? GEMM_T : GEMM_N, tb = s->tb ? GEMM_T : GEMM_N;
        const float *Crr = mode == GEMM_BF16_FP32 ? NULL : Cr;
        gemm_run(ta, tb, s->m, s->n, s->k, 1.0f, absA, lda, absB, ldb, 0.0f, S, ldc);
        memcpy(Cf, C0, nc * sizeof *C0);
        gemm_run(ta, tb, s->m, s->n, s->k, 1.0f, A, lda, B, ldb, s->beta, Cf, ldc);
        memcpy(Cr, C0, nc * sizeof *C0);
        gemm_run(ta, tb, s->m, s->n, s->k, 1.0f, Ar, lda, Br, ldb, s->beta, Cr, ldc);

        double worst;
        memcpy(Cb, C0, nc * sizeof *C0);
        fails += gemm_bf16_run(ctx, ta, tb, s->m, s->n, s->k, A, lda, B, ldb, s->beta, Cb, ldc) != 0;
        fails += check(s, Cb, Cf, Crr, S, ldc, "run", &worst) != 0;
        for (size_t i = 0; i < s->m; i++) /* the padding of C is not written */
            for (size_t j = s->n; j < ldc; j++)
                if (bits(Cb[i * ldc + j]) != bits(C0[i * ldc + j])) {
                    fprintf(stderr, "m %zu n %zu k %zu: C(%zu,%zu) past n was written\n", s->m, s->n, s->k, i, j);
                    fails++;
                }
        if (mode == GEMM_BF16_FP32 && memcmp(Cb, Cf, nc * sizeof *Cb) != 0) {
            fprintf(stderr, "m %zu n %zu k %zu: f32 mode, but not sgemm's result\n", s->m, s->n, s->k);
            fails++;
        } else if (mode != GEMM_BF16_FP32 && s->m * s->n * s->k > 64 && worst <= 0x1p-20) {
            fprintf(stderr, "m %zu n %zu k %zu: within %g of sgemm: were the inputs rounded to bf16?\n", s->m, s->n,
                    s->k, worst);
            fails++;
        }
        if (log)
            cr_log_info("m %zu n %zu k %zu ta %d tb %d beta %g: %s, max |diff|/S %.3g", s->m, s->n, s->k, s->ta,
                        s->tb, (double)s->beta, gemm_bf16_last_impl(ctx), worst);

        struct gemm_bf16_weight w;
        fails += gemm_bf16_weight_init(&w, s->k, s->n) != 0;
        gemm_bf16_weight_refresh(&w, tb, B, ldb);
        memcpy(Cb, C0, nc * sizeof *C0);
        fails += gemm_bf16_run_weight(ctx, ta, s->m, A, lda, &w, s->beta, Cb, ldc) != 0;
        fails += check(s, Cb, Cf, Crr, S, ldc, "run_weight", &worst) != 0;
        gemm_bf16_weight_free(&w);
        free(A), free(B), free(Ar), free(Br), free(absA), free(absB), free(C0), free(Cb), free(Cf), free(Cr), free(S);
        free(t16);
    }
    return fails;
}

/* The primitives check_all_shapes needs: with one primitive for every shape, one per (orientation of
 * the converted operands, beta) — gemm_bf16_run converts A and B as stored, gemm_bf16_run_weight
 * converts A to (m, k) against the (k, n) weight; per shape, one per distinct (shape, orientation,
 * beta). */
static size_t primitives_needed(int per_shape)
{
    size_t keys[2 * sizeof shapes / sizeof shapes[0]][6], n = 0;
    for (size_t t = 0; t < sizeof shapes / sizeof shapes[0]; t++)
        for (int w = 0; w < (gemm_bf16_own_kernel() ? 1 : 2); w++) { /* the own kernel makes none */
            const struct shape *s = &shapes[t];
            const size_t key[6] = {per_shape ? s->m : 0, per_shape ? s->n : 0, per_shape ? s->k : 0,
                                   w ? 0 : (size_t)s->ta, w ? 0 : (size_t)s->tb, (size_t)(s->beta * 4)};
            size_t i = 0;
            while (i < n && memcmp(keys[i], key, sizeof key) != 0)
                i++;
            if (i == n)
                memcpy(keys[n++], key, sizeof key);
        }
    return n;
}

Test(gemm_bf16, agrees_with_sgemm_to_bf16_precision)
{
    cr_log_info("%s", gemm_bf16_note());
    struct gemm_bf16_ctx *ctx = gemm_bf16_ctx_create(1);
    cr_assert_not_null(ctx);
    cr_assert_str_eq(gemm_bf16_last_impl(ctx), "");
    cr_assert_eq(check_all_shapes(ctx, gemm_bf16_mode(), 1), 0, "failures: see stderr");
    const size_t made = gemm_bf16_primitives_made(ctx);
    /* a second pass reuses the cached primitives */
    cr_assert_eq(check_all_shapes(ctx, gemm_bf16_mode(), 0), 0, "failures on the second pass: see stderr");
    cr_expect_eq(gemm_bf16_primitives_made(ctx), made, "the second pass made primitives again");
    if (gemm_bf16_mode() != GEMM_BF16_FP32 && !strstr(gemm_bf16_isa(), "amx")) /* one for every shape */
        cr_expect_eq(made, primitives_needed(0), "%zu primitives for %zu shapes, want one per orientation and beta",
                     made, sizeof shapes / sizeof shapes[0]);
    cr_log_info("%zu primitives for %zu shapes (ISA %s)", made, sizeof shapes / sizeof shapes[0], gemm_bf16_isa());
    __builtin_cpu_init();
    if (gemm_bf16_mode() == GEMM_BF16_NATIVE && !strstr(gemm_bf16_isa(), "amx") && !getenv("SEQLITE_BF16_DOT") &&
        !getenv("SEQLITE_BF16_PER_SHAPE"))
        cr_expect(gemm_bf16_own_kernel() == !!__builtin_cpu_supports("avx512bf16"), "AVX512-BF16 without AMX: the own kernel");
    if (gemm_bf16_own_kernel()) { /* a product against a weight ran it */
        struct gemm_bf16_weight w;
        float A[6] = {1, 2, 3, 4, 5, 6}, B[6] = {1, 0, 0, 1, 1, 1}, C[4];
        cr_assert_eq(gemm_bf16_weight_init(&w, 3, 2), 0);
        gemm_bf16_weight_refresh(&w, GEMM_N, B, 2);
        cr_assert_eq(gemm_bf16_run_weight(ctx, GEMM_N, 2, A, 3, &w, 0.0f, C, 2), 0);
        cr_expect_str_eq(gemm_bf16_last_impl(ctx), "seqlite:avx512_bf16");
        cr_expect(C[0] == 4 && C[1] == 5 && C[2] == 10 && C[3] == 11, "%g %g %g %g", C[0], C[1], C[2], C[3]);
        gemm_bf16_weight_free(&w);
    }
    gemm_bf16_ctx_free(ctx);
    if (gemm_bf16_built())
        cr_expect_neq(gemm_bf16_mode(), GEMM_BF16_FP32, "oneDNN is built in but gives no bf16 here: %s", gemm_bf16_note());
}

Test(gemm_bf16, two_threads_outside_a_region_agree)
{
    struct gemm_bf16_ctx *ctx = gemm_bf16_ctx_create(2);
    cr_assert_not_null(ctx);
    cr_assert_eq(check_all_shapes(ctx, gemm_bf16_mode(), 0), 0, "failures: see stderr");
    gemm_bf16_ctx_free(ctx);
}

Test(gemm_bf16, k_zero_empty_shapes_and_bad_weights)
{
    struct gemm_bf16_ctx *ctx = gemm_bf16_ctx_create(1);
    cr_assert_not_null(ctx);
    float C[4] = {1, 2, 3, 4};
    cr_assert_eq(gemm_bf16_run(ctx, GEMM_N, GEMM_N, 2, 2, 0, NULL, 1, NULL, 2, 0.5f, C, 2), 0);
    cr_assert_eq(C[3], 2.0f);
    cr_assert_eq(gemm_bf16_run(ctx, GEMM_N, GEMM_N, 2, 2, 0, NULL, 1, NULL, 2, 0.0f, C, 2), 0);
    cr_assert_eq(C[0], 0.0f);
    C[0] = 9;
    cr_assert_eq(gemm_bf16_run(ctx, GEMM_N, GEMM_N, 0, 2, 3, NULL, 3, NULL, 2, 0.0f, C, 2), 0);
    cr_assert_eq(C[0], 9.0f);
    cr_assert_eq(gemm_bf16_prepare(ctx, 4, 4, 4, 4, 1.0f), 0);
    struct gemm_bf16_weight w;
    cr_assert_lt(gemm_bf16_weight_init(&w, 0, 3), 0);
    gemm_bf16_weight_free(&w); /* freeable after a failed init */
    gemm_bf16_ctx_free(ctx);
    gemm_bf16_ctx_free(NULL);
}

/* Per-shard GEMMs inside a parallel region, one context per thread: each shard multiplies its rows of A
 * by a shared weight copy, its block of A transposed by a per-call B, and its long rows X (8 x 16384) by
 * Y (16384 x 8) into a C with padded rows (a shape oneDNN gives its jit gemm, which splits k between
 * threads when it has two: different bits). The bits must not depend on 1 or 2 threads, nor differ from
 * the same calls made outside any region on a one-thread context. */
#define SH_N 6
#define SH_LM 8
#define SH_LK 16384
struct shard_data {
    size_t m, n, k;
    const float *A, *B, *X, *Y; /* A (SH_N, m, k), B (k, n), X (SH_N, SH_LM, SH_LK), Y (SH_LK, SH_LM) */
    const struct gemm_bf16_weight *w; /* (k, n) */
    float *C, *D; /* C (SH_N, m, n), D (SH_N, SH_LM, SH_LM + 1) */
};

static int one_shard(struct gemm_bf16_ctx *c, const struct shard_data *d, int s)
{
    const size_t m = d->m, n = d->n, k = d->k, ldd = SH_LM + 1;
    const float *A = d->A + (size_t)s * m * k;
    float *C = d->C + (size_t)s * m * n;
    int fails = gemm_bf16_run_weight(c, GEMM_N, m, A, k, d->w, 0.0f, C, n) != 0;
    /* op(A) = A^T of the same block viewed (k, m) (m == k): another layout */
    fails += gemm_bf16_run(c, GEMM_T, GEMM_N, m, n, k, A, m, d->B, n, 1.0f, C, n) != 0;
    fails += gemm_bf16_run(c, GEMM_N, GEMM_N, SH_LM, SH_LM, SH_LK, d->X + (size_t)s * SH_LM * SH_LK, SH_LK, d->Y,
                           SH_LM, 0.0f, d->D + (size_t)s * SH_LM * ldd, ldd) != 0;
    return fails;
}

static void shard_products(int n_threads, const struct shard_data *d)
{
    struct gemm_bf16_ctx *ctx[2] = {gemm_bf16_ctx_create(1), gemm_bf16_ctx_create(1)};
    cr_assert(ctx[0] && ctx[1]);
    int fails = 0;
    if (n_threads == 0) { /* no region */
        for (int s = 0; s < SH_N; s++)
            fails += one_shard(ctx[0], d, s);
    } else {
#pragma omp parallel for num_threads(n_threads) schedule(dynamic, 1) reduction(+ : fails)
        for (int s = 0; s < SH_N; s++)
            fails += one_shard(ctx[omp_get_thread_num()], d, s);
    }
    cr_assert_eq(fails, 0);
    gemm_bf16_ctx_free(ctx[0]);
    gemm_bf16_ctx_free(ctx[1]);
}

Test(gemm_bf16, shards_give_the_same_bits_on_1_and_2_threads)
{
    const size_t m = 96, n = 512, k = 96, nc = SH_N * m * n, nd = SH_N * SH_LM * (SH_LM + 1);
    struct rng r;
    rng_seed(&r, 5);
    float *A = malloc(SH_N * m * k * sizeof *A), *B = malloc(k * n * sizeof *B), *W = malloc(n * k * sizeof *W);
    float *X = malloc((size_t)SH_N * SH_LM * SH_LK * sizeof *X), *Y = malloc((size_t)SH_LK * SH_LM * sizeof *Y);
    float *C[3], *D[3];
    for (int i = 0; i < 3; i++) {
        C[i] = calloc(nc, sizeof *C[i]);
        D[i] = calloc(nd, sizeof *D[i]);
        cr_assert(C[i] && D[i]);
    }
    cr_assert(A && B && W && X && Y);
    fill_uniform(A, SH_N * m * k, 1, &r);
    fill_uniform(B, k * n, 1, &r);
    fill_uniform(W, n * k, 1, &r);
    fill_uniform(X, (size_t)SH_N * SH_LM * SH_LK, 1, &r);
    fill_uniform(Y, (size_t)SH_LK * SH_LM, 1, &r);
    struct gemm_bf16_weight w;
    cr_assert_eq(gemm_bf16_weight_init(&w, k, n), 0);
    gemm_bf16_weight_refresh(&w, GEMM_T, W, k);
    const int blas = gemm_get_threads();
    gemm_set_threads(1); /* the f32 mode's sgemm inside the region */
    const int threads[3] = {1, 2, 0};
    for (int i = 0; i < 3; i++) {
        struct shard_data d = {.m = m, .n = n, .k = k, .A = A, .B = B, .X = X, .Y = Y, .w = &w, .C = C[i], .D = D[i]};
        shard_products(threads[i], &d);
    }
    gemm_set_threads(blas);
    cr_assert(memcmp(C[0], C[1], nc * sizeof *C[0]) == 0, "1 and 2 threads differ");
    cr_assert(memcmp(D[0], D[1], nd * sizeof *D[0]) == 0, "1 and 2 threads differ (long k)");
    cr_assert(memcmp(C[0], C[2], nc * sizeof *C[0]) == 0, "inside and outside a region differ");
    cr_assert(memcmp(D[0], D[2], nd * sizeof *D[0]) == 0, "inside and outside a region differ (long k)");
    gemm_bf16_weight_free(&w);
    free(A), free(B), free(W), free(X), free(Y);
    for (int i = 0; i < 3; i++)
        free(C[i]), free(D[i]);
}

/* Runs the shape check twice in a child process with the variable name set to value (oneDNN reads
 * ONEDNN_MAX_CPU_ISA once, at its first call, and gemm_bf16 its own variables once: this process must not
 * have called either). The child writes its note to a pipe and exits 0 when the mode is want and every
 * shape passed (1: a check failed, 2: another mode, 4: the second pass made primitives, or
 * SEQLITE_BF16_PER_SHAPE=1 made fewer than one per shape). */
static void child_with_env(const char *name, const char *value, enum gemm_bf16_mode want, char *note, size_t cap)
{
    int fd[2];
    cr_assert_eq(pipe(fd), 0);
    fflush(NULL);
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        close(fd[0]);
        setenv(name, value, 1);
        const char *line = gemm_bf16_note();
        ssize_t wr = write(fd[1], line, strlen(line));
        if (wr != (ssize_t)strlen(line) || gemm_bf16_mode() != want)
            _exit(2);
        struct gemm_bf16_ctx *ctx = gemm_bf16_ctx_create(1);
        if (!ctx)
            _exit(3);
        int fails = check_all_shapes(ctx, want, 0);
        /* one primitive per shape: at least one per distinct key, and a second pass makes none */
        const size_t made = gemm_bf16_primitives_made(ctx);
        const int per_shape = strcmp(name, "SEQLITE_BF16_PER_SHAPE") == 0;
        fails += check_all_shapes(ctx, want, 0);
        if (made != gemm_bf16_primitives_made(ctx) || (per_shape && made < primitives_needed(1)))
            _exit(4);
        gemm_bf16_ctx_free(ctx);
        _exit(fails ? 1 : 0);
    }
    close(fd[1]);
    size_t got = 0;
    ssize_t rd;
    while (got + 1 < cap && (rd = read(fd[0], note + got, cap - 1 - got)) > 0)
        got += (size_t)rd;
    note[got] = 0;
    close(fd[0]);
    int status;
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "%s=%s: child %s %d; its note: %s", name, value,
              WIFEXITED(status) ? "exited" : "died of signal", WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status),
              note);
    cr_log_info("%s=%s: %s", name, value, note);
}

static void child_with_isa(const char *isa, enum gemm_bf16_mode want, char *note, size_t cap)
{
    child_with_env("ONEDNN_MAX_CPU_ISA", isa, want, note, cap);
}

Test(gemm_bf16, forced_isa_avx2_falls_back_to_f32_and_says_so)
{
    if (!gemm_bf16_built())
        cr_skip_test("built without oneDNN");
    char note[256];
    child_with_isa("avx2", GEMM_BF16_FP32, note, sizeof note);
    cr_assert(strstr(note, "f32 instead"), "%s", note);
    cr_assert(strstr(note, "avx2") || strstr(note, "avx") || strstr(note, "sse41"), "%s", note);
}

Test(gemm_bf16, forced_isa_avx512_core_emulates_bf16)
{
    if (!gemm_bf16_built())
        cr_skip_test("built without oneDNN");
    __builtin_cpu_init();
    if (!__builtin_cpu_supports("avx512f") || !__builtin_cpu_supports("avx512bw") ||
        !__builtin_cpu_supports("avx512vl") || !__builtin_cpu_supports("avx512dq"))
        cr_skip_test("this CPU has no AVX-512 core");
    char note[256];
    child_with_isa("avx512_core", GEMM_BF16_EMULATED, note, sizeof note);
    cr_assert(strstr(note, "emulates") && strstr(note, "avx512_core"), "%s", note);
}

Test(gemm_bf16, one_primitive_per_shape_when_asked_agrees_with_sgemm)
{
    if (!gemm_bf16_built())
        cr_skip_test("built without oneDNN");
    __builtin_cpu_init();
    if (!__builtin_cpu_supports("avx512bf16")) /* not gemm_bf16_mode(): the child must make the first call */
        cr_skip_test("this CPU has no AVX512-BF16");
    char note[256];
    child_with_env("SEQLITE_BF16_PER_SHAPE", "1", GEMM_BF16_NATIVE, note, sizeof note);
}

Test(gemm_bf16, products_against_weights_through_onednn_when_asked_agree_with_sgemm)
{
    if (!gemm_bf16_built())
        cr_skip_test("built without oneDNN");
    __builtin_cpu_init();
    if (!__builtin_cpu_supports("avx512bf16"))
        cr_skip_test("this CPU has no AVX512-BF16");
    char note[256];
    child_with_env("SEQLITE_BF16_DOT", "0", GEMM_BF16_NATIVE, note, sizeof note);
    cr_assert(!strstr(note, "seqlite's"), "%s", note);
}

/* The own kernel outside a region on 2 threads (the panels split between them) gives the bits of 1. */
Test(gemm_bf16, weight_products_on_2_threads_give_the_bits_of_1)
{
    const size_t m = 300, n = 1000, k = 1100;
    struct rng r;
    rng_seed(&r, 9);
    float *A = malloc(m * k * sizeof *A), *W = malloc(n * k * sizeof *W), *C1 = malloc(m * n * sizeof *C1);
    float *C2 = malloc(m * n * sizeof *C2);
    cr_assert(A && W && C1 && C2);
    fill_uniform(A, m * k, 1, &r);
    fill_uniform(W, n * k, 1, &r);
    fill_uniform(C1, m * n, 1, &r);
    memcpy(C2, C1, m * n * sizeof *C1);
    struct gemm_bf16_weight w;
    cr_assert_eq(gemm_bf16_weight_init(&w, k, n), 0);
    gemm_bf16_weight_refresh(&w, GEMM_T, W, k);
    struct gemm_bf16_ctx *c1 = gemm_bf16_ctx_create(1), *c2 = gemm_bf16_ctx_create(2);
    cr_assert(c1 && c2);
    cr_assert_eq(gemm_bf16_run_weight(c1, GEMM_N, m, A, k, &w, 1.0f, C1, n), 0);
    cr_assert_eq(gemm_bf16_run_weight(c2, GEMM_N, m, A, k, &w, 1.0f, C2, n), 0);
    cr_log_info("%s", gemm_bf16_last_impl(c2));
    if (gemm_bf16_own_kernel() || gemm_bf16_mode() == GEMM_BF16_FP32)
        cr_assert(memcmp(C1, C2, m * n * sizeof *C1) == 0, "1 and 2 threads differ (%s)", gemm_bf16_last_impl(c2));
    gemm_bf16_ctx_free(c1), gemm_bf16_ctx_free(c2);
    gemm_bf16_weight_free(&w);
    free(A), free(W), free(C1), free(C2);
}

/* ---- int8 ---- */

/* The int8 product against the same integer sums computed here from the weight's q and scales and A
 * quantised per row as gemm_bf16.h says (to f32 rounding), and against f32 sgemm to int8 precision; every
 * transpose of A and B, beta 0 and 0.5, odd shapes. */
Test(gemm_bf16, int8_products_are_the_quantised_sums_and_close_to_f32)
{
    if (!gemm_int8_available())
        cr_log_info("%s: the plain C reference runs", gemm_int8_note());
    const size_t dims[][3] = {{64, 96, 80}, {5, 33, 17}, {160, 256, 300}};
    struct rng r;
    rng_seed(&r, 11);
    struct gemm_bf16_ctx *c = gemm_bf16_ctx_create(1);
    cr_assert(c);
    for (size_t si = 0; si < 3; si++)
        for (int ta = 0; ta < 2; ta++)
            for (int tb = 0; tb < 2; tb++) {
                const size_t m = dims[si][0], k = dims[si][1], n = dims[si][2];
                float *A = malloc(m * k * sizeof(float)), *B = malloc(k * n * sizeof(float));
                float *C = malloc(m * n * sizeof(float)), *R = malloc(m * n * sizeof(float));
                float *F = malloc(m * n * sizeof(float));
                fill_uniform(A, m * k, 1.0f, &r);
                fill_uniform(B, k * n, 0.3f, &r);
                struct gemm_int8_weight W;
                cr_assert_eq(gemm_int8_weight_init(&W, k, n), 0);
                const size_t lda = ta ? m : k, ldb = tb ? k : n;
                gemm_int8_weight_refresh(&W, (enum gemm_trans)tb, B, ldb);
                const float beta = si == 1 ? 0.5f : 0.0f;
                for (size_t i = 0; i < m * n; i++)
                    C[i] = R[i] = F[i] = (float)i * 1e-3f;
                cr_assert_eq(gemm_int8_run_weight(c, (enum gemm_trans)ta, m, A, lda, &W, beta, C, n), 0);
                gemm_run_f32((enum gemm_trans)ta, (enum gemm_trans)tb, m, n, k, 1.0f, A, lda, B, ldb, beta, F, n);
                double max_ref = 0, max_f32 = 0, big = 0;
                for (size_t i = 0; i < m; i++) {
                    float amax = 0;
                    for (size_t p = 0; p < k; p++)
                        amax = fmaxf(amax, fabsf(ta ? A[p * m + i] : A[i * k + p]));
                    const float s = amax > 0 ? amax / 127.0f : 1.0f;
                    for (size_t j = 0; j < n; j++) {
                        int32_t acc = 0;
                        for (size_t p = 0; p < k; p++) {
                            float q = nearbyintf((ta ? A[p * m + i] : A[i * k + p]) * (1.0f / s));
                            q = fminf(127.0f, fmaxf(-127.0f, q));
                            acc += (int32_t)q * (int32_t)W.q[p * n + j];
                        }
                        const double want = (double)s * ((double)acc * W.scale[j]) + beta * R[i * n + j];
                        max_ref = fmax(max_ref, fabs(C[i * n + j] - want));
                        max_f32 = fmax(max_f32, fabs(C[i * n + j] - F[i * n + j]));
                        big = fmax(big, fabs(F[i * n + j]));
                    }
                }
                cr_expect(max_ref < 1e-5 * big + 1e-6, "%zu x %zu x %zu ta %d tb %d: %g off the quantised sums (largest %g)",
                          m, k, n, ta, tb, max_ref, big);
                cr_expect(max_f32 < 3e-2 * big, "%zu x %zu x %zu ta %d tb %d: %g off f32 (largest %g)", m, k, n, ta,
                          tb, max_f32, big);
                cr_expect(max_f32 > 0, "int8 equals f32 to the last bit: it did not run");
                gemm_int8_weight_free(&W);
                free(A), free(B), free(C), free(R), free(F);
            }
    if (gemm_int8_available())
        cr_expect(strncmp(gemm_bf16_last_impl(c), "brg", 3) == 0 || strstr(gemm_bf16_last_impl(c), "gemm"),
                  "oneDNN ran it: %s", gemm_bf16_last_impl(c));
    gemm_bf16_ctx_free(c);
}
