/* nn/autocast.c: gemm_run in bf16 while an autocast is in use (see autocast.h).
 * - The autocast in use is one process-wide pointer (atomic); gemm_run reads it on every call.
 * - Weight views: a fixed table appended under the mutex; its length is published with a release store
 *   so readers scan it without the lock. A view's copy carries the generation it was made for; a reader
 *   that finds it stale takes the mutex, and the first one there converts (the others find it fresh).
 * - Contexts: one per OpenMP thread number, each with its own mutex (uncontended in OpenMP teams). */
#include "nn/autocast.h"

#include <omp.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "nn/gemm_bf16.h"
#include "util/err.h"

struct view {
    const float *B;
    enum gemm_trans tb;
    size_t k, n, ldb;
    struct gemm_bf16_weight w;   /* bf16 */
    struct gemm_int8_weight w8;  /* int8 */
    uint64_t gen; /* generation of w's contents (0: never made); atomic */
};

struct slot {
    pthread_mutex_t mu;
    struct gemm_bf16_ctx *ctx;
    int failed; /* the context could not be made: f32 from then on */
};

struct autocast {
    enum precision p; /* PRECISION_BF16 or PRECISION_INT8 */
    const float *w[AUTOCAST_MAX_BUFFERS];
    size_t n[AUTOCAST_MAX_BUFFERS], n_buf;
    int n_threads;
    uint64_t gen; /* current generation, >= 1; changed only while no product runs */
    pthread_mutex_t mu;
    struct view views[AUTOCAST_MAX_WEIGHTS];
    size_t n_views; /* atomic */
    struct slot slots[AUTOCAST_MAX_THREADS];
    size_t bf16_calls, weight_calls, f32_calls, conversions, errors; /* atomic */
};

static struct autocast *g_use; /* atomic */

int precision_parse(const char *s, const char *flag, enum precision *out)
{
    if (s && strcmp(s, "fp32") == 0)
        *out = PRECISION_FP32;
    else if (s && strcmp(s, "bf16") == 0)
        *out = PRECISION_BF16;
    else if (s && strcmp(s, "int8") == 0)
        *out = PRECISION_INT8;
    else
        return sl_err(SL_EINVAL, "%s '%s': expected fp32, bf16 or int8", flag, s ? s : "");
    return 0;
}

const char *precision_name(enum precision p)
{
    return p == PRECISION_BF16 ? "bf16" : p == PRECISION_INT8 ? "int8" : "fp32";
}

const char *precision_note(enum precision p) { return p == PRECISION_INT8 ? gemm_int8_note() : gemm_bf16_note(); }

int autocast_available(enum precision p)
{
    if (p == PRECISION_INT8)
        return gemm_int8_available();
    if (p != PRECISION_BF16)
        return 0;
    const enum gemm_bf16_mode m = gemm_bf16_mode();
    const char *e = getenv("SEQLITE_BF16_EMULATED");
    return m == GEMM_BF16_NATIVE || (m == GEMM_BF16_EMULATED && e && strcmp(e, "1") == 0);
}

struct autocast *autocast_create(enum precision p, const float *w, size_t n, int n_threads)
{
    if (p == PRECISION_INT8 ? !gemm_int8_available() : p != PRECISION_BF16 || gemm_bf16_mode() == GEMM_BF16_FP32) {
        sl_err(SL_EINVAL, "%s", precision_note(p));
        return NULL;
    }
    struct autocast *a = calloc(1, sizeof *a);
    if (!a) {
        sl_err(SL_ENOMEM, "out of memory for bf16 GEMMs");
        return NULL;
    }
    a->p = p;
    a->w[0] = w, a->n[0] = n, a->n_buf = 1, a->n_threads = n_threads < 1 ? 1 : n_threads, a->gen = 1;
    pthread_mutex_init(&a->mu, NULL);
    for (size_t i = 0; i < AUTOCAST_MAX_THREADS; i++)
        pthread_mutex_init(&a->slots[i].mu, NULL);
    return a;
}

void autocast_free(struct autocast *a)
{
    if (!a)
        return;
    if (autocast_current() == a)
        autocast_use(NULL);
    for (size_t i = 0; i < a->n_views; i++) {
        gemm_bf16_weight_free(&a->views[i].w);
        gemm_int8_weight_free(&a->views[i].w8);
    }
    for (size_t i = 0; i < AUTOCAST_MAX_THREADS; i++) {
        gemm_bf16_ctx_free(a->slots[i].ctx);
        pthread_mutex_destroy(&a->slots[i].mu);
    }
    pthread_mutex_destroy(&a->mu);
    free(a);
}

int autocast_add_buffer(struct autocast *a, const float *w, size_t n)
{
    if (a->n_buf >= AUTOCAST_MAX_BUFFERS)
        return sl_err(SL_EINVAL, "bf16 GEMMs: more than %d parameter buffers", AUTOCAST_MAX_BUFFERS);
    a->w[a->n_buf] = w, a->n[a->n_buf] = n;
    a->n_buf++;
    return 0;
}

void autocast_weights_changed(struct autocast *a) { __atomic_add_fetch(&a->gen, 1, __ATOMIC_RELEASE); }

void autocast_use(struct autocast *a) { __atomic_store_n(&g_use, a, __ATOMIC_RELEASE); }

int autocast_active(void) { return __atomic_load_n(&g_use, __ATOMIC_ACQUIRE) != NULL; }

struct autocast *autocast_current(void) { return __atomic_load_n(&g_use, __ATOMIC_ACQUIRE); }

void autocast_stats(const struct autocast *a, struct autocast_stats *out)
{
    out->bf16_calls = __atomic_load_n(&a->bf16_calls, __ATOMIC_RELAXED);
    out->weight_calls = __atomic_load_n(&a->weight_calls, __ATOMIC_RELAXED);
    out->f32_calls = __atomic_load_n(&a->f32_calls, __ATOMIC_RELAXED);
    out->conversions = __atomic_load_n(&a->conversions, __ATOMIC_RELAXED);
    out->errors = __atomic_load_n(&a->errors, __ATOMIC_RELAXED);
    out->weight_views = __atomic_load_n(&a->n_views, __ATOMIC_ACQUIRE);
}

static int is_weight(const struct autocast *a, const float *B)
{
    const uintptr_t b = (uintptr_t)B;
    for (size_t i = 0; i < a->n_buf; i++) {
        const uintptr_t lo = (uintptr_t)a->w[i], hi = lo + a->n[i] * sizeof(float);
        if (b >= lo && b < hi)
            return 1;
    }
    return 0;
}

static struct view *find_view(struct autocast *a, size_t count, const float *B, enum gemm_trans tb, size_t k,
                              size_t n, size_t ldb)
{
    for (size_t i = 0; i < count; i++) {
        struct view *v = &a->views[i];
        if (v->B == B && v->tb == tb && v->k == k && v->n == n && v->ldb == ldb)
            return v;
    }
    return NULL;
}

/* Makes v's copy from its weight as of generation gen. */
static void view_refresh(struct autocast *a, struct view *v, uint64_t gen)
{
    if (a->p == PRECISION_INT8)
        gemm_int8_weight_refresh(&v->w8, v->tb, v->B, v->ldb);
    else
        gemm_bf16_weight_refresh(&v->w, v->tb, v->B, v->ldb);
    __atomic_add_fetch(&a->conversions, 1, __ATOMIC_RELAXED);
    __atomic_store_n(&v->gen, gen, __ATOMIC_RELEASE);
}

/* The view of op(B) (k, n) with a fresh copy (bf16 or int8), made or refreshed here if needed; NULL when
 * the table is full or memory ran out (the product then converts B in the call, or runs f32 for int8). */
static const struct view *weight_copy(struct autocast *a, const float *B, enum gemm_trans tb, size_t k, size_t n,
                                     size_t ldb)
{
    const uint64_t gen = __atomic_load_n(&a->gen, __ATOMIC_ACQUIRE);
    struct view *v = find_view(a, __atomic_load_n(&a->n_views, __ATOMIC_ACQUIRE), B, tb, k, n, ldb);
    if (v && __atomic_load_n(&v->gen, __ATOMIC_ACQUIRE) == gen)
        return v;
    pthread_mutex_lock(&a->mu);
    if (!v && !(v = find_view(a, a->n_views, B, tb, k, n, ldb)) && a->n_views < AUTOCAST_MAX_WEIGHTS) {
        struct view *nv = &a->views[a->n_views];
        memset(nv, 0, sizeof *nv);
        nv->B = B, nv->tb = tb, nv->k = k, nv->n = n, nv->ldb = ldb;
        if ((a->p == PRECISION_INT8 ? gemm_int8_weight_init(&nv->w8, k, n) : gemm_bf16_weight_init(&nv->w, k, n)) == 0) {
            v = nv;
            __atomic_store_n(&a->n_views, a->n_views + 1, __ATOMIC_RELEASE);
        } else {
            gemm_bf16_weight_free(&nv->w);
            gemm_int8_weight_free(&nv->w8);
        }
    }
    if (v && __atomic_load_n(&v->gen, __ATOMIC_ACQUIRE) != gen)
        view_refresh(a, v, gen);
    pthread_mutex_unlock(&a->mu);
    return v;
}

void autocast_refresh(struct autocast *a, int n_threads)
{
    const uint64_t gen = __atomic_load_n(&a->gen, __ATOMIC_ACQUIRE);
    const size_t nv = __atomic_load_n(&a->n_views, __ATOMIC_ACQUIRE);
    /* views differ in size (the output projection is the largest): handed out one at a time */
#pragma omp parallel for num_threads(n_threads) schedule(dynamic, 1) if (n_threads > 1)
    for (size_t i = 0; i < nv; i++)
        if (__atomic_load_n(&a->views[i].gen, __ATOMIC_ACQUIRE) != gen)
            view_refresh(a, &a->views[i], gen);
}

void autocast_gemm(enum gemm_trans ta, enum gemm_trans tb, size_t m, size_t n, size_t k, float alpha, const float *A,
                   size_t lda, const float *B, size_t ldb, float beta, float *C, size_t ldc)
{
    struct autocast *a = autocast_current();
    const int tn = omp_get_thread_num();
    const int ok = a && alpha == 1.0f && (double)m * (double)n * (double)k >= AUTOCAST_MIN_FLOPS && tn >= 0 &&
                   tn < AUTOCAST_MAX_THREADS;
    const struct view *W = ok && is_weight(a, B) ? weight_copy(a, B, tb, k, n, ldb) : NULL;
    if (!ok || (a->p == PRECISION_INT8 && !W)) { /* int8 is for weights only: activation products stay f32 */
        if (a)
            __atomic_add_fetch(&a->f32_calls, 1, __ATOMIC_RELAXED);
        gemm_run_f32(ta, tb, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc);
        return;
    }
    struct slot *s = &a->slots[tn];
    pthread_mutex_lock(&s->mu);
    if (!s->ctx && !s->failed && !(s->ctx = gemm_bf16_ctx_create(a->n_threads)))
        s->failed = 1;
    int rc = -1;
    if (s->ctx && a->p == PRECISION_INT8)
        rc = gemm_int8_run_weight(s->ctx, ta, m, A, lda, &W->w8, beta, C, ldc);
    else if (s->ctx)
        rc = W ? gemm_bf16_run_weight(s->ctx, ta, m, A, lda, &W->w, beta, C, ldc)
               : gemm_bf16_run(s->ctx, ta, tb, m, n, k, A, lda, B, ldb, beta, C, ldc);
    if (rc == 0 && strcmp(gemm_bf16_last_impl(s->ctx), "sgemm") != 0) {
        __atomic_add_fetch(&a->bf16_calls, 1, __ATOMIC_RELAXED);
        if (W)
            __atomic_add_fetch(&a->weight_calls, 1, __ATOMIC_RELAXED);
    } else if (rc == 0) { /* a shape oneDNN has no implementation for: gemm_bf16 ran it in f32 */
        __atomic_add_fetch(&a->f32_calls, 1, __ATOMIC_RELAXED);
    }
    pthread_mutex_unlock(&s->mu);
    if (rc != 0) { /* no context, or oneDNN failed before writing C: f32 */
        __atomic_add_fetch(&a->errors, 1, __ATOMIC_RELAXED);
        __atomic_add_fetch(&a->f32_calls, 1, __ATOMIC_RELAXED);
        gemm_run_f32(ta, tb, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc);
    }
}
