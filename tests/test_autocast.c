/* tests/test_autocast.c: nn/autocast — a whole model's loss and gradient with every product in bf16 agree
 * with f32 to bf16 precision (and differ from it: bf16 really ran), each weight view is converted once per
 * generation and its copy follows autocast_weights_changed, small products and alpha != 1 stay f32
 * bit for bit, per-shard products give the same bits on 1 and 2 threads, and where oneDNN has no bf16
 * (ONEDNN_MAX_CPU_ISA=avx2, in a child process) autocast_available() says no and creation fails with the
 * note. On a CPU with AVX-512 but no bf16 instructions the tests run oneDNN's emulation
 * (SEQLITE_BF16_EMULATED=1); below AVX-512 they skip. */
#include <criterion/criterion.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "model/seq2seq.h"
#include "nn/autocast.h"
#include "nn/gemm.h"
#include "nn/gemm_bf16.h"
#include "nn/params.h"
#include "util/err.h"
#include "util/jobs.h"
#include "util/rng.h"

static void need_bf16(void)
{
    setenv("SEQLITE_BF16_EMULATED", "1", 1); /* read at each autocast_available call */
    if (!autocast_available(PRECISION_BF16))
        cr_skip_test("no bf16 GEMMs here: %s", gemm_bf16_note());
}

#define BB 8
#define SS 7
#define TT 6
#define VV 60

/* A model with attention and a bidirectional encoder, big enough that its products pass
 * AUTOCAST_MIN_FLOPS, and one random batch. */
struct fixture {
    struct s2s_model m;
    float *w, *g;
    struct s2s_workspace *ws;
    int32_t src[BB * SS], slen[BB], tgt[BB * TT], tlen[BB];
    struct s2s_batch bt;
};

static void fixture_init(struct fixture *f)
{
    gemm_set_threads(1);
    struct s2s_config cfg = {.V_src = VV, .V_tgt = VV, .E = 16, .H = 32, .L = 2, .attention = ATTN_GENERAL,
                             .bidirectional = 1};
    cr_assert_eq(s2s_model_init(&f->m, &cfg), 0, "%s", sl_errmsg());
    f->w = param_buf_create(f->m.table.total);
    f->g = param_buf_create(f->m.table.total);
    cr_assert(f->w && f->g);
    struct rng r;
    rng_seed(&r, 7);
    s2s_params_init(&f->m, f->w, &r);
    for (size_t i = 0; i < f->m.table.total; i++) /* larger weights than the init: more bf16 error to see */
        f->w[i] *= 4.0f;
    for (size_t b = 0; b < BB; b++) {
        f->slen[b] = 3 + (int32_t)rng_below(&r, SS - 2);
        f->tlen[b] = 2 + (int32_t)rng_below(&r, TT - 1);
        for (size_t s = 0; s < SS; s++)
            f->src[b * SS + s] = (int32_t)s < f->slen[b] ? 4 + (int32_t)rng_below(&r, VV - 4) : 0;
        for (size_t t = 0; t < TT; t++)
            f->tgt[b * TT + t] = (int32_t)t < f->tlen[b] ? 4 + (int32_t)rng_below(&r, VV - 4) : 0;
    }
    f->bt = (struct s2s_batch){BB, SS, TT, f->src, f->slen, f->tgt, f->tlen};
    cr_assert(f->ws = s2s_workspace_create(&f->m, BB, SS, TT));
}

static void fixture_free(struct fixture *f)
{
    s2s_workspace_free(f->ws);
    param_buf_free(f->w);
    param_buf_free(f->g);
    s2s_model_free(&f->m);
}

/* Loss (mean per token) and gradient (into f->g) of the batch. */
static double loss_grad(struct fixture *f)
{
    memset(f->g, 0, f->m.table.total * sizeof(float));
    double sum = 0;
    size_t n = 0;
    cr_assert_eq(s2s_loss_forward_backward(&f->m, f->w, f->g, f->ws, &f->bt, 1.0f, NULL, &sum, &n), 0, "%s",
                 sl_errmsg());
    return sum / (double)n;
}

static double cosine(const float *a, const float *b, size_t n)
{
    double ab = 0, aa = 0, bb = 0;
    for (size_t i = 0; i < n; i++)
        ab += (double)a[i] * b[i], aa += (double)a[i] * a[i], bb += (double)b[i] * b[i];
    return ab / sqrt(aa * bb);
}

Test(autocast, model_loss_and_gradient_in_bf16_are_close_to_fp32_and_not_equal)
{
    need_bf16();
    struct fixture f;
    fixture_init(&f);
    const size_t P = f.m.table.total;
    const double l32 = loss_grad(&f);
    float *g32 = malloc(P * sizeof *g32);
    memcpy(g32, f.g, P * sizeof *g32);
    struct autocast *a = autocast_create(PRECISION_BF16, f.w, P, 1);
    cr_assert(a, "%s", sl_errmsg());
    autocast_use(a);
    cr_assert(autocast_active());
    const double l16 = loss_grad(&f);
    autocast_use(NULL);
    cr_assert(!autocast_active());
    const double rel = fabs(l16 - l32) / l32, cs = cosine(f.g, g32, P);
    cr_log_info("loss f32 %.9g, bf16 %.9g (relative %.2g); gradient cosine %.6f", l32, l16, rel, cs);
    cr_expect(l16 != l32, "the bf16 loss equals f32 to the last bit: bf16 did not run");
    cr_expect(rel < 1e-2, "bf16 loss %.9g vs f32 %.9g", l16, l32);
    cr_expect(cs > 0.995, "gradient cosine %.6f", cs);
    struct autocast_stats st;
    autocast_stats(a, &st);
    cr_expect(st.bf16_calls > 20, "%zu bf16 products", st.bf16_calls);
    cr_expect(st.weight_calls > 10, "%zu products with a weight copy", st.weight_calls);
    cr_expect(st.weight_views >= 8, "%zu weight views", st.weight_views);
    cr_expect_eq(st.conversions, st.weight_views, "each view converted once: %zu conversions, %zu views",
                 st.conversions, st.weight_views);
    cr_expect_eq(st.errors, 0);
    autocast_free(a);
    free(g32);
    fixture_free(&f);
}

/* A bf16 autocast over f's parameters, in use (skips without native bf16). */
static struct autocast *bf16_in_use(struct fixture *f)
{
    need_bf16();
    fixture_init(f);
    struct autocast *a = autocast_create(PRECISION_BF16, f->w, f->m.table.total, 1);
    cr_assert(a, "%s", sl_errmsg());
    autocast_use(a);
    return a;
}

/* autocast_refresh makes every known copy at once, on two threads: the products after it convert nothing
 * and give the bits of copies made lazily at their first use; before any product it has nothing to make. */
Test(autocast, refresh_makes_every_copy_up_front_with_the_same_bits)
{
    struct fixture f;
    struct autocast *a = bf16_in_use(&f);
    const size_t P = f.m.table.total;
    autocast_refresh(a, 2); /* no view known yet: nothing to do */
    struct autocast_stats s0, s1, s2, s3;
    autocast_stats(a, &s0);
    cr_expect_eq(s0.conversions, 0);
    loss_grad(&f); /* the views become known */
    autocast_stats(a, &s1);
    for (size_t i = 0; i < P; i++)
        f.w[i] *= 0.5f;
    autocast_weights_changed(a);
    const double lazy = loss_grad(&f); /* copies made at their first use */
    for (size_t i = 0; i < P; i++)
        f.w[i] *= 2.0f;
    autocast_weights_changed(a);
    loss_grad(&f);
    for (size_t i = 0; i < P; i++)
        f.w[i] *= 0.5f;
    autocast_weights_changed(a);
    autocast_stats(a, &s2);
    autocast_refresh(a, 2);
    autocast_stats(a, &s3);
    cr_expect_eq(s3.conversions - s2.conversions, s1.weight_views, "refresh converts every view once: %zu of %zu",
                 s3.conversions - s2.conversions, s1.weight_views);
    const double eager = loss_grad(&f);
    struct autocast_stats s4;
    autocast_stats(a, &s4);
    cr_expect_eq(s4.conversions, s3.conversions, "a product after the refresh converted a weight again");
    cr_expect_eq(eager, lazy, "refreshed copies %.9g, lazy copies %.9g: not the same bits", eager, lazy);
    autocast_refresh(a, 2);
    autocast_stats(a, &s4);
    cr_expect_eq(s4.conversions, s3.conversions, "a second refresh of the same generation converted again");
    autocast_use(NULL);
    autocast_free(a);
    fixture_free(&f);
}

Test(autocast, weight_copies_are_made_once_per_generation_and_follow_weights_changed)
{
    struct fixture f;
    struct autocast *a = bf16_in_use(&f);
    const size_t P = f.m.table.total;
    const double l1 = loss_grad(&f);
    struct autocast_stats s1, s2, s3;
    autocast_stats(a, &s1);
    cr_assert_eq(loss_grad(&f), l1, "the same weights and copies: the same bits");
    autocast_stats(a, &s2);
    cr_expect_eq(s2.conversions, s1.conversions, "no new conversion without autocast_weights_changed");
    for (size_t i = 0; i < P; i++)
        f.w[i] *= 0.5f;
    const double stale = loss_grad(&f); /* the copies still hold the old weights: only f32 paths see the change */
    autocast_weights_changed(a);
    const double l2 = loss_grad(&f);
    autocast_stats(a, &s3);
    cr_expect_eq(s3.conversions, 2 * s1.conversions, "every view converted again once: %zu then %zu",
                 s1.conversions, s3.conversions);
    autocast_use(NULL);
    const double l2_32 = loss_grad(&f);
    cr_log_info("loss %.6f; weights halved: stale copies %.6f, refreshed %.6f, f32 %.6f", l1, stale, l2, l2_32);
    cr_expect(fabs(l2 - l2_32) / l2_32 < 1e-2, "refreshed copies follow the new weights: %.6f vs f32 %.6f", l2,
              l2_32);
    cr_expect(fabs(stale - l2_32) > 10 * fabs(l2 - l2_32), "stale copies %.6f should be far from %.6f", stale, l2_32);
    autocast_free(a);
    fixture_free(&f);
}

Test(autocast, small_products_and_alpha_stay_f32_bit_for_bit)
{
    need_bf16();
    struct rng r;
    rng_seed(&r, 3);
    float A[64 * 64], Bm[64 * 64], C1[64 * 64], C2[64 * 64];
    for (size_t i = 0; i < 64 * 64; i++)
        A[i] = rng_uniform(&r) - 0.5f, Bm[i] = rng_uniform(&r) - 0.5f;
    struct autocast *a = autocast_create(PRECISION_BF16, Bm, 64 * 64, 1);
    cr_assert(a, "%s", sl_errmsg());
    autocast_use(a);
    gemm_run(GEMM_N, GEMM_N, 4, 8, 8, 1.0f, A, 8, Bm, 8, 0.0f, C1, 8); /* 256 multiply-adds */
    gemm_run_f32(GEMM_N, GEMM_N, 4, 8, 8, 1.0f, A, 8, Bm, 8, 0.0f, C2, 8);
    cr_expect(memcmp(C1, C2, 32 * sizeof(float)) == 0, "a small product runs in f32");
    gemm_run(GEMM_N, GEMM_T, 64, 64, 64, 2.0f, A, 64, Bm, 64, 0.0f, C1, 64);
    gemm_run_f32(GEMM_N, GEMM_T, 64, 64, 64, 2.0f, A, 64, Bm, 64, 0.0f, C2, 64);
    cr_expect(memcmp(C1, C2, sizeof C1) == 0, "alpha 2 runs in f32");
    gemm_run(GEMM_N, GEMM_T, 64, 64, 64, 1.0f, A, 64, Bm, 64, 0.0f, C1, 64);
    cr_expect(memcmp(C1, C2, sizeof C1) != 0, "a 64^3 product with alpha 1 runs in bf16");
    double err = 0, ref = 0;
    gemm_run_f32(GEMM_N, GEMM_T, 64, 64, 64, 1.0f, A, 64, Bm, 64, 0.0f, C2, 64);
    for (size_t i = 0; i < 64 * 64; i++)
        err = fmax(err, fabs(C1[i] - C2[i])), ref = fmax(ref, fabs(C2[i]));
    cr_expect(err < 2e-2 * ref, "bf16 product off by %g (largest %g)", err, ref);
    struct autocast_stats st;
    autocast_stats(a, &st);
    cr_expect_eq(st.f32_calls, 2);
    cr_expect_eq(st.bf16_calls, 1);
    cr_expect_eq(st.weight_calls, 1, "Bm is inside the buffer: a weight");
    autocast_free(a);
    cr_expect(!autocast_active(), "freeing the autocast in use stops using it");
}

/* Two shards' gradients, computed as jobs on n threads. */
struct shards {
    struct fixture *f;
    struct s2s_workspace *ws[2];
    float *g[2];
    struct s2s_batch bt[2];
};

static int shard_job(void *ctx, size_t k, int thread)
{
    (void)thread;
    struct shards *s = ctx;
    double sum;
    size_t n;
    memset(s->g[k], 0, s->f->m.table.total * sizeof(float));
    return s2s_loss_forward_backward(&s->f->m, s->f->w, s->g[k], s->ws[k], &s->bt[k], 1.0f, NULL, &sum, &n);
}

Test(autocast, per_shard_products_are_identical_on_1_and_2_threads)
{
    need_bf16();
    struct fixture f;
    fixture_init(&f);
    const size_t P = f.m.table.total, h = BB / 2;
    struct shards s = {.f = &f};
    for (int k = 0; k < 2; k++) {
        s.ws[k] = s2s_workspace_create(&f.m, h, SS, TT);
        s.g[k] = param_buf_create(P);
        s.bt[k] = (struct s2s_batch){h, SS, TT, f.src + k * h * SS, f.slen + k * h, f.tgt + k * h * TT, f.tlen + k * h};
    }
    struct autocast *a = autocast_create(PRECISION_BF16, f.w, P, 1);
    cr_assert(a, "%s", sl_errmsg());
    autocast_use(a);
    float *one[2] = {malloc(P * sizeof(float)), malloc(P * sizeof(float))};
    cr_assert_eq(jobs_run(2, 1, JOBS_STATIC, shard_job, &s), 0, "%s", sl_errmsg());
    memcpy(one[0], s.g[0], P * sizeof(float)), memcpy(one[1], s.g[1], P * sizeof(float));
    autocast_weights_changed(a); /* the copies made again, now by two threads at once */
    cr_assert_eq(jobs_run(2, 2, JOBS_STATIC, shard_job, &s), 0, "%s", sl_errmsg());
    for (int k = 0; k < 2; k++)
        cr_expect(memcmp(one[k], s.g[k], P * sizeof(float)) == 0, "shard %d differs on 2 threads", k);
    struct autocast_stats st;
    autocast_stats(a, &st);
    cr_expect(st.bf16_calls > 40 && st.errors == 0, "%zu bf16 products, %zu errors", st.bf16_calls, st.errors);
    autocast_free(a);
    for (int k = 0; k < 2; k++)
        s2s_workspace_free(s.ws[k]), param_buf_free(s.g[k]), free(one[k]);
    fixture_free(&f);
}

Test(autocast, without_a_bf16_matmul_it_is_not_available_and_says_why)
{
    if (!gemm_bf16_built())
        cr_skip_test("built without oneDNN");
    pid_t pid = fork();
    cr_assert(pid >= 0);
    if (pid == 0) { /* oneDNN reads the variable once per process: a child of its own */
        setenv("ONEDNN_MAX_CPU_ISA", "avx2", 1);
        setenv("SEQLITE_BF16_EMULATED", "1", 1);
        float w[4] = {0};
        int ok = !autocast_available(PRECISION_BF16) && !autocast_create(PRECISION_BF16, w, 4, 1) && strstr(sl_errmsg(), "not available") &&
                 strstr(gemm_bf16_note(), "f32 instead") && !autocast_available(PRECISION_INT8) &&
                 strstr(gemm_int8_note(), "f32 instead");
        _exit(ok ? 0 : 1);
    }
    int status;
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the child saw bf16 as available");
}

Test(autocast, precision_names_parse_and_others_are_refused)
{
    enum precision p;
    cr_expect_eq(precision_parse("fp32", "--precision", &p), 0);
    cr_expect_eq(p, PRECISION_FP32);
    cr_expect_eq(precision_parse("bf16", "--precision", &p), 0);
    cr_expect_eq(p, PRECISION_BF16);
    cr_expect_eq(precision_parse("fp16", "--precision", &p), SL_EINVAL);
    cr_expect(strstr(sl_errmsg(), "--precision 'fp16': expected fp32, bf16 or int8"), "%s", sl_errmsg());
    cr_expect_str_eq(precision_name(PRECISION_BF16), "bf16");
}

Test(autocast, int8_model_loss_is_close_to_fp32_and_only_weight_products_are_int8)
{
    if (!gemm_bf16_built())
        cr_skip_test("built without oneDNN");
    if (!autocast_available(PRECISION_INT8))
        cr_log_info("%s (the plain C reference runs)", gemm_int8_note());
    struct fixture f;
    fixture_init(&f);
    const size_t P = f.m.table.total;
    double sum = 0;
    size_t n = 0;
    cr_assert_eq(s2s_loss_forward(&f.m, f.w, f.ws, &f.bt, &sum, &n, NULL), 0);
    const double l32 = sum / (double)n;
    struct autocast *a = autocast_available(PRECISION_INT8) ? autocast_create(PRECISION_INT8, f.w, P, 1) : NULL;
    if (!a)
        cr_skip_test("%s", gemm_int8_note());
    autocast_use(a);
    cr_assert_eq(s2s_loss_forward(&f.m, f.w, f.ws, &f.bt, &sum, &n, NULL), 0);
    autocast_use(NULL);
    const double l8 = sum / (double)n;
    cr_log_info("loss f32 %.9g, int8 %.9g", l32, l8);
    cr_expect(l8 != l32 && fabs(l8 - l32) < 3e-2 * l32, "int8 loss %.9g vs f32 %.9g", l8, l32);
    struct autocast_stats st;
    autocast_stats(a, &st);
    cr_expect(st.weight_calls > 10 && st.weight_calls == st.bf16_calls, "%zu low-precision products, %zu with weights",
              st.bf16_calls, st.weight_calls);
    cr_expect_eq(st.conversions, st.weight_views);
    cr_expect_eq(st.errors, 0);
    autocast_free(a);
    fixture_free(&f);
}
