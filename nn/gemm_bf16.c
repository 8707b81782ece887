/* nn/gemm_bf16.c: bf16 GEMMs through oneDNN's matmul primitive (see gemm_bf16.h). Built with
 * SL_HAVE_DNNL when meson found oneDNN; without it every call is gemm_run in f32.
 * - The process state (engine, mode, ISA name, note) is set once (pthread_once) and never freed.
 * - A context's cache is a small table searched linearly; an entry owns its primitive and, when its
 *   shape is fixed, the memory objects whose data handles each call points at the caller's C and the
 *   context's staging buffers. A runtime entry (every shape: m, n, k and ldc DNNL_RUNTIME_DIM_VAL) makes
 *   its three memory objects per call instead (microseconds, against a primitive's 0.1-4 ms: measured,
 *   a per-shape cache made 1,600 primitives a minute in training and evicted them again).
 * - oneDNN is asked for plain layouts only: A (m, k) and B (k, n) bf16 with unit column stride, C (m, n)
 *   f32 with row stride ldc; beta != 0 is its "sum" post-op (C = beta · C + A·B).
 * - On AVX512-BF16 without AMX, products against a weight copy skip oneDNN: the copy also holds pair
 *   panels made at each refresh, multiplied by seqlite's kernel (gemm_bf16_dot.h), since oneDNN copies a
 *   plain weight into its blocks on every call (the cost that made its 16-row products slow).
 * TODO: with AMX, keep weights in the blocked layout oneDNN's brgemm kernels read (format "any", one
 * reorder per refresh) instead of plain (k, n), which the kernels copy into blocks on every call.
 * ref: oneDNN developer guide, matmul primitive and primitive attributes (scratchpad, post-ops). */
#include "nn/gemm_bf16.h"

#include <math.h>
#include <omp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nn/gemm_bf16_dot.h"
#include "nn/vmath.h"
#include "util/bf16.h"
#include "util/bigmem.h"
#include "util/err.h"

#ifdef SL_HAVE_DNNL
#include <dnnl.h>
#endif

/* ---- conversion ---- */

/* VM_CLONES: the baseline's SSE2 has no 32 -> 16-bit narrowing and spends a dozen shuffles per four
 * values, AVX2 / AVX-512 one pack (measured on AMD EPYC Zen 4, `seqlite bench train --attention general
 * --encoder bi --precision bf16`, 1 thread: the conversions 8.8% -> 5.8% of the time, +13% tokens/s). */
VM_CLONES void gemm_bf16_from_f32(const float *x, uint16_t *y, size_t n)
{
#pragma omp simd
    for (size_t i = 0; i < n; i++)
        y[i] = bf16_round(x[i]);
}

VM_CLONES void gemm_bf16_to_f32(const uint16_t *x, float *y, size_t n)
{
#pragma omp simd
    for (size_t i = 0; i < n; i++)
        y[i] = bf16_widen(x[i]);
}

#define TB 64 /* transpose block: 64 x 64 floats in, 64 x 64 bf16 out */

/* Y (rows, cols) = op(X) rounded to bf16, Y row stride ldy; X is stored (rows, cols) if t == GEMM_N else
 * (cols, rows), stride ldx. Row blocks on nthr threads (1: no parallel region). */
VM_CLONES static void convert_block(enum gemm_trans t, size_t r0, size_t r1, size_t cols, const float *X, size_t ldx,
                          uint16_t *Y, size_t ldy)
{
    if (t == GEMM_N) {
        for (size_t i = r0; i < r1; i++)
            gemm_bf16_from_f32(X + i * ldx, Y + i * ldy, cols);
        return;
    }
    /* op(X)(i, j) = X[j * ldx + i], in TB x TB tiles: a tile is transposed in f32 (in L1), then its rows
     * are rounded by the vectorised conversion (a transposed 1280 x 2048 weight copy on AMD EPYC Zen 4:
     * 12.7-13.7 ms -> 2.2-5.6 ms, against rounding element by element in the strided loop) */
    float tile[TB * TB];
    for (size_t i0 = r0; i0 < r1; i0 += TB) {
        const size_t ni = r1 - i0 < TB ? r1 - i0 : TB;
        for (size_t j0 = 0; j0 < cols; j0 += TB) {
            const size_t nj = cols - j0 < TB ? cols - j0 : TB;
            for (size_t j = 0; j < nj; j++)
                for (size_t i = 0; i < ni; i++)
                    tile[i * TB + j] = X[(j0 + j) * ldx + i0 + i];
            for (size_t i = 0; i < ni; i++)
                gemm_bf16_from_f32(tile + i * TB, Y + (i0 + i) * ldy + j0, nj);
        }
    }
}

static void convert_op(enum gemm_trans t, size_t rows, size_t cols, const float *X, size_t ldx, uint16_t *Y,
                       size_t ldy, int nthr)
{
    const size_t nb = (rows + TB - 1) / TB;
    if (nthr <= 1 || rows * cols < (size_t)1 << 16) { /* no parallel region at all (shards call this) */
        convert_block(t, 0, rows, cols, X, ldx, Y, ldy);
        return;
    }
#pragma omp parallel for num_threads(nthr) schedule(static)
    for (size_t b = 0; b < nb; b++)
        convert_block(t, b * TB, rows - b * TB < TB ? rows : b * TB + TB, cols, X, ldx, Y, ldy);
}

/* Y (rows, cols) = op(X) in f32 (the weight snapshot of GEMM_BF16_FP32). */
static void copy_op(enum gemm_trans t, size_t rows, size_t cols, const float *X, size_t ldx, float *Y)
{
    if (t == GEMM_N) {
        for (size_t i = 0; i < rows; i++)
            memcpy(Y + i * cols, X + i * ldx, cols * sizeof(float));
        return;
    }
    for (size_t i0 = 0; i0 < rows; i0 += TB)
        for (size_t j0 = 0; j0 < cols; j0 += TB) {
            const size_t i1 = rows - i0 < TB ? rows : i0 + TB, j1 = cols - j0 < TB ? cols : j0 + TB;
            for (size_t j = j0; j < j1; j++)
                for (size_t i = i0; i < i1; i++)
                    Y[i * cols + j] = X[j * ldx + i];
        }
}

/* ---- process state ---- */

static struct {
    enum gemm_bf16_mode mode;
    const char *isa;
    char note[200];
    char note8[200]; /* the same for int8 */
    int int8;        /* oneDNN makes an s8 x s8 -> f32 matmul with VNNI (or AMX) here */
    int per_shape;   /* one bf16 primitive per shape (AMX: brgemm), not one for every shape (gemm:jit) */
    int dot;         /* products against weight copies run gemm_bf16_dot (AVX512-BF16 without AMX) */
#ifdef SL_HAVE_DNNL
    dnnl_engine_t engine;
#endif
} g;
static pthread_once_t g_once = PTHREAD_ONCE_INIT;

#ifdef SL_HAVE_DNNL
static const char *isa_name(dnnl_cpu_isa_t isa)
{
    switch (isa) {
    case dnnl_cpu_isa_sse41: return "sse41";
    case dnnl_cpu_isa_avx: return "avx";
    case dnnl_cpu_isa_avx2: return "avx2";
    case dnnl_cpu_isa_avx2_vnni: return "avx2_vnni";
    case dnnl_cpu_isa_avx512_mic: return "avx512_mic";
    case dnnl_cpu_isa_avx512_mic_4ops: return "avx512_mic_4ops";
    case dnnl_cpu_isa_avx512_core: return "avx512_core";
    case dnnl_cpu_isa_avx512_core_vnni: return "avx512_core_vnni";
    case dnnl_cpu_isa_avx512_core_bf16: return "avx512_core_bf16";
    case dnnl_cpu_isa_avx512_core_amx: return "avx512_core_amx";
    default: return "unknown";
    }
}

/* Can oneDNN make a bf16 x bf16 -> f32 matmul here at all? (Below AVX-512 Debian's 2.6 cannot.) */
static int probe_bf16(void)
{
    dnnl_memory_desc_t a, b, c;
    const dnnl_dims_t d = {16, 16}, s = {16, 1};
    dnnl_matmul_desc_t md;
    dnnl_primitive_desc_t pd = NULL;
    if (dnnl_memory_desc_init_by_strides(&a, 2, d, dnnl_bf16, s) != dnnl_success ||
        dnnl_memory_desc_init_by_strides(&b, 2, d, dnnl_bf16, s) != dnnl_success ||
        dnnl_memory_desc_init_by_strides(&c, 2, d, dnnl_f32, s) != dnnl_success ||
        dnnl_matmul_desc_init(&md, &a, &b, NULL, &c) != dnnl_success ||
        dnnl_primitive_desc_create(&pd, &md, NULL, g.engine, NULL) != dnnl_success)
        return 0;
    dnnl_primitive_desc_destroy(pd);
    return 1;
}
#endif

#ifdef SL_HAVE_DNNL
/* Sets g.int8 and g.note8: an s8 x s8 -> f32 matmul with runtime column scales, on a CPU with VNNI
 * (AVX512-VNNI, AVX-VNNI or AMX: without it the int8 kernels are no faster than f32). */
static void probe_int8(dnnl_cpu_isa_t isa, const dnnl_version_t *v)
{
    dnnl_memory_desc_t a, b, c;
    const dnnl_dims_t d = {16, 16}, s = {16, 1};
    dnnl_matmul_desc_t md;
    dnnl_primitive_attr_t attr = NULL;
    dnnl_primitive_desc_t pd = NULL;
    const float runtime = DNNL_RUNTIME_F32_VAL;
    const unsigned vnni = (unsigned)dnnl_cpu_isa_avx512_core_vnni, vnni2 = (unsigned)dnnl_cpu_isa_avx2_vnni;
    const int has_vnni = ((unsigned)isa & vnni) == vnni || ((unsigned)isa & vnni2) == vnni2;
    int ok = dnnl_memory_desc_init_by_strides(&a, 2, d, dnnl_s8, s) == dnnl_success &&
             dnnl_memory_desc_init_by_strides(&b, 2, d, dnnl_s8, s) == dnnl_success &&
             dnnl_memory_desc_init_by_strides(&c, 2, d, dnnl_f32, s) == dnnl_success &&
             dnnl_matmul_desc_init(&md, &a, &b, NULL, &c) == dnnl_success &&
             dnnl_primitive_attr_create(&attr) == dnnl_success &&
             dnnl_primitive_attr_set_output_scales(attr, 1, 1 << 1, &runtime) == dnnl_success &&
             dnnl_primitive_desc_create(&pd, &md, attr, g.engine, NULL) == dnnl_success;
    if (pd)
        dnnl_primitive_desc_destroy(pd);
    if (attr)
        dnnl_primitive_attr_destroy(attr);
    g.int8 = ok && has_vnni;
    if (g.int8)
        snprintf(g.note8, sizeof g.note8, "int8 GEMMs: oneDNN %d.%d.%d (ISA %s)", v->major, v->minor, v->patch, g.isa);
    else
        snprintf(g.note8, sizeof g.note8, "int8 GEMMs: not available (oneDNN %d.%d.%d, ISA %s: %s): f32 instead",
                 v->major, v->minor, v->patch, g.isa, ok ? "no VNNI" : "no int8 matmul");
}
#endif

static void g_init(void)
{
#ifdef SL_HAVE_DNNL
    const dnnl_version_t *v = dnnl_version();
    const dnnl_cpu_isa_t isa = dnnl_get_effective_cpu_isa();
    g.isa = isa_name(isa);
    g.mode = GEMM_BF16_FP32;
    if (dnnl_engine_create(&g.engine, dnnl_cpu, 0) != dnnl_success) {
        g.engine = NULL;
        snprintf(g.note, sizeof g.note, "bf16 GEMMs: not available (oneDNN %d.%d.%d could not create its CPU engine): f32 instead",
                 v->major, v->minor, v->patch);
        snprintf(g.note8, sizeof g.note8, "int8 GEMMs: not available (no oneDNN CPU engine): f32 instead");
        return;
    }
    if (!probe_bf16()) {
        probe_int8(isa, v);
        snprintf(g.note, sizeof g.note,
                 "bf16 GEMMs: not available (oneDNN %d.%d.%d has no bf16 matmul for ISA %s): f32 instead", v->major,
                 v->minor, v->patch, g.isa);
        return;
    }
    probe_int8(isa, v);
    const unsigned amx_bits = (unsigned)dnnl_cpu_isa_avx512_core_amx;
    const char *ps = getenv("SEQLITE_BF16_PER_SHAPE");
    g.per_shape = ((unsigned)isa & amx_bits) == amx_bits || (ps && strcmp(ps, "1") == 0);
    const unsigned bf16_bits = (unsigned)dnnl_cpu_isa_avx512_core_bf16;
    if (((unsigned)isa & bf16_bits) == bf16_bits) {
        g.mode = GEMM_BF16_NATIVE;
        const char *dot = getenv("SEQLITE_BF16_DOT");
        g.dot = !g.per_shape && gemm_bf16_dot_cpu() && !(dot && strcmp(dot, "0") == 0);
        snprintf(g.note, sizeof g.note, "bf16 GEMMs: oneDNN %d.%d.%d, native bf16 (ISA %s)%s", v->major, v->minor,
                 v->patch, g.isa, g.dot ? "; products against weights: seqlite's AVX512-BF16 kernel" : "");
    } else {
        g.mode = GEMM_BF16_EMULATED;
        snprintf(g.note, sizeof g.note,
                 "bf16 GEMMs: oneDNN %d.%d.%d emulates bf16 (ISA %s has no bf16 instructions; slower than native)",
                 v->major, v->minor, v->patch, g.isa);
    }
#else
    g.mode = GEMM_BF16_FP32;
    g.isa = "none";
    snprintf(g.note, sizeof g.note, "bf16 GEMMs: not available (seqlite was built without oneDNN): f32 instead");
    snprintf(g.note8, sizeof g.note8, "int8 GEMMs: not available (seqlite was built without oneDNN): f32 instead");
#endif
}

enum gemm_bf16_mode gemm_bf16_mode(void)
{
    pthread_once(&g_once, g_init);
    return g.mode;
}

int gemm_bf16_built(void)
{
#ifdef SL_HAVE_DNNL
    return 1;
#else
    return 0;
#endif
}

const char *gemm_bf16_isa(void)
{
    pthread_once(&g_once, g_init);
    return g.isa;
}

int gemm_bf16_own_kernel(void)
{
    pthread_once(&g_once, g_init);
    return g.dot;
}

const char *gemm_bf16_note(void)
{
    pthread_once(&g_once, g_init);
    return g.note;
}

/* ---- weights ---- */

int gemm_bf16_weight_init(struct gemm_bf16_weight *w, size_t k, size_t n)
{
    memset(w, 0, sizeof *w);
    if (k == 0 || n == 0)
        return sl_err(SL_EINVAL, "gemm_bf16_weight_init: empty weight (%zu x %zu)", k, n);
    w->k = k, w->n = n;
    if (gemm_bf16_mode() == GEMM_BF16_FP32)
        w->f32 = big_alloc(k * n * sizeof(float));
    else if (g.dot) /* seqlite's kernel reads only the pair panels, packed straight from the f32 weight */
        w->pairs = big_alloc(gemm_bf16_dot_packed_size(k, n) * sizeof(uint32_t));
    else
        w->bf16 = big_alloc(k * n * sizeof(uint16_t));
    if (!w->f32 && !w->bf16 && !w->pairs)
        return sl_err(SL_ENOMEM, "out of memory for a %zu x %zu bf16 weight copy", k, n);
    return 0;
}

void gemm_bf16_weight_refresh(struct gemm_bf16_weight *w, enum gemm_trans tb, const float *B, size_t ldb)
{
    if (w->pairs)
        gemm_bf16_dot_pack(tb, B, ldb, w->k, w->n, w->pairs);
    else if (w->bf16)
        convert_op(tb, w->k, w->n, B, ldb, w->bf16, w->n, 1);
    else
        copy_op(tb, w->k, w->n, B, ldb, w->f32);
}

void gemm_bf16_weight_free(struct gemm_bf16_weight *w)
{
    big_free(w->bf16);
    big_free(w->f32);
    big_free(w->pairs);
    memset(w, 0, sizeof *w);
}

/* ---- contexts ---- */

struct entry {
    size_t m, n, k, ldc;
    float beta;
    int nthr;
    int rt;   /* m, n, k and ldc are given at execution (the operands' memories are then made per call) */
    int kind; /* KIND_* bits: int8 (s8 x s8 -> f32 with runtime column scales) instead of bf16; the
               * operands' layout as converted (op(A), op(B) plain, or the stored transposes) */
    uint64_t used; /* the context's clock at the last use; 0: empty */
#ifdef SL_HAVE_DNNL
    dnnl_primitive_t prim; /* NULL: oneDNN has no implementation for this shape: f32 gemm_run */
    dnnl_memory_t src, wei, dst, pad, scl;
#endif
    size_t pad_bytes;
    char impl[48];
};

enum {
    KIND_INT8 = 1, /* gemm_int8_run_weight */
    KIND_AT = 2,   /* the converted A is (k, m) plain: src described with strides (1, m) */
    KIND_BT = 4,   /* the converted B is (n, k) plain: weights described with strides (1, k) */
};

struct gemm_bf16_ctx {
    int n_threads;
    uint64_t clock;
    size_t made; /* primitives created */
    struct entry e[GEMM_BF16_CACHE];
    const char *last;
    void *a16; /* (m, k) bf16: op(A) converted */
    void *b16; /* (k, n) bf16: op(B) converted, for gemm_bf16_run */
    void *w32; /* (k, n) f32: a bf16 weight widened, for a shape oneDNN cannot do */
    void *pad; /* scratchpad, shared by every entry */
    void *a8;  /* (m, k) int8: op(A) quantised per row */
    float *as; /* (m) its row scales */
    float *o32; /* (m, n) f32: an int8 product before its row scales */
    size_t a16_cap, b16_cap, w32_cap, pad_cap, a8_cap, as_cap, o32_cap; /* bytes */
#ifdef SL_HAVE_DNNL
    dnnl_stream_t stream;
#endif
};

/* Grows *buf to at least bytes (contents not kept). 0 or SL_ENOMEM. */
static int reserve(void **buf, size_t *cap, size_t bytes)
{
    if (bytes <= *cap)
        return 0;
    big_free(*buf);
    *cap = 0;
    if (!(*buf = big_alloc(bytes)))
        return sl_err(SL_ENOMEM, "out of memory for a %zu-byte bf16 GEMM buffer", bytes);
    *cap = bytes;
    return 0;
}

static void entry_clear(struct entry *e)
{
#ifdef SL_HAVE_DNNL
    if (e->prim)
        dnnl_primitive_destroy(e->prim);
    dnnl_memory_t *mems[] = {&e->src, &e->wei, &e->dst, &e->pad, &e->scl};
    for (size_t i = 0; i < sizeof mems / sizeof mems[0]; i++)
        if (*mems[i])
            dnnl_memory_destroy(*mems[i]);
#endif
    memset(e, 0, sizeof *e);
}

struct gemm_bf16_ctx *gemm_bf16_ctx_create(int n_threads)
{
    struct gemm_bf16_ctx *c = calloc(1, sizeof *c);
    if (!c) {
        sl_err(SL_ENOMEM, "out of memory for a bf16 GEMM context");
        return NULL;
    }
    c->n_threads = n_threads < 1 ? 1 : n_threads;
    c->last = "";
#ifdef SL_HAVE_DNNL
    if (gemm_bf16_mode() != GEMM_BF16_FP32 && dnnl_stream_create(&c->stream, g.engine, dnnl_stream_default_flags) != dnnl_success) {
        free(c);
        sl_err(SL_ENOMEM, "oneDNN could not create a stream");
        return NULL;
    }
#endif
    return c;
}

void gemm_bf16_ctx_free(struct gemm_bf16_ctx *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < GEMM_BF16_CACHE; i++)
        entry_clear(&c->e[i]);
#ifdef SL_HAVE_DNNL
    if (c->stream)
        dnnl_stream_destroy(c->stream);
#endif
    big_free(c->a16), big_free(c->b16), big_free(c->w32), big_free(c->pad);
    big_free(c->a8), big_free(c->as), big_free(c->o32);
    free(c);
}

const char *gemm_bf16_last_impl(const struct gemm_bf16_ctx *c) { return c->last; }

size_t gemm_bf16_primitives_made(const struct gemm_bf16_ctx *c) { return c->made; }

/* The threads a call from here runs on: one inside any parallel region (even an inactive one of one
 * thread, where omp_in_parallel() is 0 but oneDNN would still fork its own team), else the context's. */
static int threads_here(const struct gemm_bf16_ctx *c) { return omp_get_level() > 0 ? 1 : c->n_threads; }

#ifdef SL_HAVE_DNNL
/* Sets the calling thread's OpenMP thread count to nthr for oneDNN; returns the previous one. */
static int threads_push(int nthr)
{
    int prev = omp_get_max_threads();
    if (prev != nthr)
        omp_set_num_threads(nthr);
    return prev;
}

static void threads_pop(int prev, int nthr)
{
    if (prev != nthr)
        omp_set_num_threads(prev);
}

/* a, b, d: e's operands for a call with m, n, k, ldc, or, with call 0, for creating e's primitive (a
 * runtime entry's dimensions and strides then DNNL_RUNTIME_DIM_VAL). */
static int describe(const struct entry *e, int call, size_t m, size_t n, size_t k, size_t ldc, dnnl_memory_desc_t *a,
                    dnnl_memory_desc_t *b, dnnl_memory_desc_t *d)
{
    const dnnl_dim_t rt = DNNL_RUNTIME_DIM_VAL;
    const int any = !call && e->rt;
    const dnnl_dim_t M = any ? rt : (dnnl_dim_t)m, N = any ? rt : (dnnl_dim_t)n, K = any ? rt : (dnnl_dim_t)k;
    const dnnl_dim_t L = any ? rt : (dnnl_dim_t)ldc;
    const int at = (e->kind & KIND_AT) != 0, bt = (e->kind & KIND_BT) != 0;
    const dnnl_data_type_t in = (e->kind & KIND_INT8) ? dnnl_s8 : dnnl_bf16;
    const dnnl_dims_t da = {M, K}, db = {K, N}, dd = {M, N};
    const dnnl_dims_t sa = {at ? 1 : K, at ? M : 1}, sb = {bt ? 1 : N, bt ? K : 1}, sd = {L, 1};
    return dnnl_memory_desc_init_by_strides(a, 2, da, in, sa) == dnnl_success &&
           dnnl_memory_desc_init_by_strides(b, 2, db, in, sb) == dnnl_success &&
           dnnl_memory_desc_init_by_strides(d, 2, dd, dnnl_f32, sd) == dnnl_success;
}

/* Makes e's primitive for its key. 0, or SL_ENOMEM. A shape oneDNN has no implementation for leaves
 * e->prim NULL (calls go to gemm_run). */
static int entry_create(struct gemm_bf16_ctx *c, struct entry *e)
{
    dnnl_memory_desc_t a, b, d;
    const int int8 = (e->kind & KIND_INT8) != 0;
    const dnnl_dims_t ds = {(dnnl_dim_t)e->n};
    dnnl_memory_desc_t sc;
    dnnl_matmul_desc_t md;
    dnnl_primitive_attr_t attr = NULL;
    dnnl_post_ops_t po = NULL;
    dnnl_primitive_desc_t pd = NULL;
    const dnnl_memory_desc_t *pad = NULL;
    const char *impl = "";
    int rc = 0;
    const int prev = threads_push(e->nthr);
    if (!describe(e, 0, e->m, e->n, e->k, e->ldc, &a, &b, &d) || dnnl_matmul_desc_init(&md, &a, &b, NULL, &d) != dnnl_success ||
        dnnl_primitive_attr_create(&attr) != dnnl_success ||
        dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user) != dnnl_success)
        goto unsupported;
    const float runtime = DNNL_RUNTIME_F32_VAL; /* int8: the weight's column scales, given at each call */
    if (int8 && (dnnl_primitive_attr_set_output_scales(attr, 1, 1 << 1, &runtime) != dnnl_success ||
                    dnnl_memory_desc_init_by_tag(&sc, 1, ds, dnnl_f32, dnnl_a) != dnnl_success))
        goto unsupported;
    if (e->beta != 0.0f && (dnnl_post_ops_create(&po) != dnnl_success || dnnl_post_ops_append_sum(po, e->beta) != dnnl_success ||
                            dnnl_primitive_attr_set_post_ops(attr, po) != dnnl_success))
        goto unsupported;
    if (dnnl_primitive_desc_create(&pd, &md, attr, g.engine, NULL) != dnnl_success)
        goto unsupported;
    dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &impl);
    snprintf(e->impl, sizeof e->impl, "%s", impl);
    pad = dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0);
    e->pad_bytes = pad ? dnnl_memory_desc_get_size(pad) : 0;
    c->made++;
    if (dnnl_primitive_create(&e->prim, pd) != dnnl_success ||
        (!e->rt && dnnl_memory_create(&e->src, &a, g.engine, DNNL_MEMORY_NONE) != dnnl_success) ||
        (!e->rt && dnnl_memory_create(&e->wei, &b, g.engine, DNNL_MEMORY_NONE) != dnnl_success) ||
        (!e->rt && dnnl_memory_create(&e->dst, &d, g.engine, DNNL_MEMORY_NONE) != dnnl_success) ||
        (e->pad_bytes && dnnl_memory_create(&e->pad, pad, g.engine, DNNL_MEMORY_NONE) != dnnl_success) ||
        (int8 && dnnl_memory_create(&e->scl, &sc, g.engine, DNNL_MEMORY_NONE) != dnnl_success)) {
        rc = sl_err(SL_ENOMEM, "oneDNN could not create a %zu x %zu x %zu %s matmul", e->m, e->k, e->n,
                    int8 ? "int8" : "bf16");
        goto done;
    }
    rc = reserve(&c->pad, &c->pad_cap, e->pad_bytes);
    goto done;
unsupported:
    snprintf(e->impl, sizeof e->impl, "sgemm");
done:
    threads_pop(prev, e->nthr);
    if (pd)
        dnnl_primitive_desc_destroy(pd);
    if (po)
        dnnl_post_ops_destroy(po);
    if (attr)
        dnnl_primitive_attr_destroy(attr);
    return rc;
}
#endif

/* The entry for this key, created if new (evicting the least recently used). 0, or SL_ENOMEM (*out then
 * NULL). */
static int lookup(struct gemm_bf16_ctx *c, size_t m, size_t n, size_t k, size_t ldc, float beta, int nthr, int kind,
                  struct entry **out)
{
    struct entry *victim = &c->e[0];
    c->clock++;
    *out = NULL;
    for (size_t i = 0; i < GEMM_BF16_CACHE; i++) {
        struct entry *e = &c->e[i];
        if (e->used && (e->rt || (e->m == m && e->n == n && e->k == k && e->ldc == ldc)) && e->nthr == nthr &&
            e->kind == kind &&
            memcmp(&e->beta, &beta, sizeof beta) == 0) {
            e->used = c->clock;
            *out = e;
            return 0;
        }
        if (e->used < victim->used)
            victim = e;
    }
    entry_clear(victim);
    victim->rt = !g.per_shape && !(kind & KIND_INT8);
    victim->m = m, victim->n = n, victim->k = k, victim->ldc = ldc, victim->beta = beta, victim->nthr = nthr;
    victim->kind = kind;
    victim->used = c->clock;
    int rc = 0;
#ifdef SL_HAVE_DNNL
    rc = entry_create(c, victim);
#else
    snprintf(victim->impl, sizeof victim->impl, "sgemm");
#endif
    if (rc < 0) {
        entry_clear(victim);
        return rc;
    }
    *out = victim;
    return 0;
}

int gemm_bf16_prepare(struct gemm_bf16_ctx *c, size_t m, size_t n, size_t k, size_t ldc, float beta)
{
    if (m == 0 || n == 0 || k == 0 || gemm_bf16_mode() == GEMM_BF16_FP32)
        return 0;
    struct entry *e;
    return lookup(c, m, n, k, ldc, beta, threads_here(c), 0, &e);
}

static void scale_c(size_t m, size_t n, float beta, float *C, size_t ldc)
{
    for (size_t i = 0; i < m; i++)
        for (size_t j = 0; j < n; j++)
            C[i * ldc + j] = beta == 0.0f ? 0.0f : beta * C[i * ldc + j];
}

#ifdef SL_HAVE_DNNL
/* C = A16 (m, k) · B16 (k, n) [+ beta C] with e's primitive. */
static int execute(struct gemm_bf16_ctx *c, struct entry *e, size_t m, size_t n, size_t k, size_t ldc, const void *A, const void *B, float *C,
                   const float *scales)
{
    /* oneDNN takes non-const handles; it only reads src, weights and scales */
    void *src, *wei, *scl;
    memcpy(&src, &A, sizeof src);
    memcpy(&wei, &B, sizeof wei);
    memcpy(&scl, &scales, sizeof scl);
    dnnl_memory_t msrc = e->src, mwei = e->wei, mdst = e->dst;
    if (e->rt) { /* this call's dimensions: its own memories */
        dnnl_memory_desc_t a, b, d;
        msrc = mwei = mdst = NULL;
        if (!describe(e, 1, m, n, k, ldc, &a, &b, &d) || dnnl_memory_create(&msrc, &a, g.engine, src) != dnnl_success ||
            dnnl_memory_create(&mwei, &b, g.engine, wei) != dnnl_success ||
            dnnl_memory_create(&mdst, &d, g.engine, C) != dnnl_success) {
            if (msrc)
                dnnl_memory_destroy(msrc);
            if (mwei)
                dnnl_memory_destroy(mwei);
            return sl_err(SL_ENOMEM, "oneDNN could not describe a %zu x %zu x %zu matmul's operands", m, k, n);
        }
    }
    dnnl_exec_arg_t args[5] = {{DNNL_ARG_SRC, msrc}, {DNNL_ARG_WEIGHTS, mwei}, {DNNL_ARG_DST, mdst}};
    int nargs = 3;
    if (e->pad)
        args[nargs++] = (dnnl_exec_arg_t){DNNL_ARG_SCRATCHPAD, e->pad};
    if (e->scl)
        args[nargs++] = (dnnl_exec_arg_t){DNNL_ARG_ATTR_OUTPUT_SCALES, e->scl};
    dnnl_status_t st = dnnl_success;
    if ((!e->rt && (dnnl_memory_set_data_handle(msrc, src) != dnnl_success ||
                    dnnl_memory_set_data_handle(mwei, wei) != dnnl_success ||
                    dnnl_memory_set_data_handle(mdst, C) != dnnl_success)) ||
        (e->pad && dnnl_memory_set_data_handle(e->pad, c->pad) != dnnl_success) ||
        (e->scl && dnnl_memory_set_data_handle(e->scl, scl) != dnnl_success))
        st = dnnl_invalid_arguments;
    if (st == dnnl_success) {
        const int prev = threads_push(e->nthr);
        st = dnnl_primitive_execute(e->prim, c->stream, nargs, args);
        if (st == dnnl_success)
            st = dnnl_stream_wait(c->stream);
        threads_pop(prev, e->nthr);
    }
    if (e->rt) {
        dnnl_memory_destroy(msrc);
        dnnl_memory_destroy(mwei);
        dnnl_memory_destroy(mdst);
    }
    c->last = e->impl;
    if (st != dnnl_success)
        return sl_err(SL_EINVAL, "oneDNN matmul %zu x %zu x %zu failed (status %d)", m, k, n, (int)st);
    return 0;
}
#endif

int gemm_bf16_run(struct gemm_bf16_ctx *c, enum gemm_trans ta, enum gemm_trans tb, size_t m, size_t n, size_t k,
                  const float *A, size_t lda, const float *B, size_t ldb, float beta, float *C, size_t ldc)
{
    if (m == 0 || n == 0)
        return 0;
    if (k == 0) {
        scale_c(m, n, beta, C, ldc);
        return 0;
    }
    struct entry *e = NULL;
    const int nthr = threads_here(c);
    /* a transposed operand is converted as stored (a fast plain pass) and oneDNN reads it transposed */
    const int kind = (ta == GEMM_T ? KIND_AT : 0) | (tb == GEMM_T ? KIND_BT : 0);
    int rc = gemm_bf16_mode() == GEMM_BF16_FP32 ? 0 : lookup(c, m, n, k, ldc, beta, nthr, kind, &e);
    if (rc < 0)
        return rc;
#ifdef SL_HAVE_DNNL
    if (e && e->prim) {
        if ((rc = reserve(&c->a16, &c->a16_cap, m * k * sizeof(uint16_t))) < 0 ||
            (rc = reserve(&c->b16, &c->b16_cap, k * n * sizeof(uint16_t))) < 0)
            return rc;
        /* each operand as stored: A (m, k) or (k, m), B (k, n) or (n, k) */
        convert_op(GEMM_N, ta == GEMM_T ? k : m, ta == GEMM_T ? m : k, A, lda, c->a16, ta == GEMM_T ? m : k, nthr);
        convert_op(GEMM_N, tb == GEMM_T ? n : k, tb == GEMM_T ? k : n, B, ldb, c->b16, tb == GEMM_T ? k : n, nthr);
        return execute(c, e, m, n, k, ldc, c->a16, c->b16, C, NULL);
    }
#endif
    gemm_run_f32(ta, tb, m, n, k, 1.0f, A, lda, B, ldb, beta, C, ldc);
    c->last = "sgemm";
    return 0;
}

int gemm_bf16_run_weight(struct gemm_bf16_ctx *c, enum gemm_trans ta, size_t m, const float *A, size_t lda,
                         const struct gemm_bf16_weight *W, float beta, float *C, size_t ldc)
{
    const size_t n = W->n, k = W->k;
    if (m == 0)
        return 0;
    if (W->f32) { /* GEMM_BF16_FP32: the weight is an f32 snapshot */
        gemm_run_f32(ta, GEMM_N, m, n, k, 1.0f, A, lda, W->f32, n, beta, C, ldc);
        c->last = "sgemm";
        return 0;
    }
    struct entry *e = NULL;
    const int nthr = threads_here(c);
    int rc;
    if (W->pairs) { /* seqlite's kernel: A rounded into rows of even stride (a zero after an odd k) */
        const size_t lda16 = k + (k & 1);
        if ((rc = reserve(&c->a16, &c->a16_cap, m * lda16 * sizeof(uint16_t))) < 0)
            return rc;
        uint16_t *a16 = c->a16;
        convert_op(ta, m, k, A, lda, a16, lda16, nthr);
        for (size_t i = 0; i < m && (k & 1); i++)
            a16[i * lda16 + k] = 0;
        gemm_bf16_dot_run(m, n, k, a16, lda16, W->pairs, beta, C, ldc, nthr);
        c->last = "seqlite:avx512_bf16";
        return 0;
    }
    if ((rc = lookup(c, m, n, k, ldc, beta, nthr, 0, &e)) < 0)
        return rc;
#ifdef SL_HAVE_DNNL
    if (e->prim) {
        if ((rc = reserve(&c->a16, &c->a16_cap, m * k * sizeof(uint16_t))) < 0)
            return rc;
        convert_op(ta, m, k, A, lda, c->a16, k, nthr);
        return execute(c, e, m, n, k, ldc, c->a16, W->bf16, C, NULL);
    }
#endif
    /* no primitive for this shape: the bf16 weight widened exactly, then f32 */
    if ((rc = reserve(&c->w32, &c->w32_cap, k * n * sizeof(float))) < 0)
        return rc;
    gemm_bf16_to_f32(W->bf16, c->w32, k * n);
    gemm_run_f32(ta, GEMM_N, m, n, k, 1.0f, A, lda, c->w32, n, beta, C, ldc);
    c->last = "sgemm";
    return 0;
}

/* ---- int8 ---- */

/* q = round(x / s) clamped to [-127, 127], s = max |x| / 127 over the n values (1 when all are 0). */
static float quant_scale(float amax) { return amax > 0.0f ? amax / 127.0f : 1.0f; }

/* round(x · inv) clamped to [-127, 127]: clamped first (the bounds are integers, so the order does not
 * matter), then rounded to nearest even by adding and subtracting 1.5 · 2^23 (exact for |r| <= 2^22),
 * which vectorises where nearbyintf is a call. */
static inline int8_t quant(float x, float inv)
{
    float r = x * inv;
    r = r > 127.0f ? 127.0f : (r < -127.0f ? -127.0f : r);
    r = (r + 0x1.8p23f) - 0x1.8p23f;
    return (int8_t)(int)r;
}

int gemm_int8_available(void)
{
    pthread_once(&g_once, g_init);
#ifdef SL_HAVE_DNNL
    return g.int8;
#else
    return 0;
#endif
}

const char *gemm_int8_note(void)
{
    pthread_once(&g_once, g_init);
    return g.note8;
}

int gemm_int8_weight_init(struct gemm_int8_weight *w, size_t k, size_t n)
{
    memset(w, 0, sizeof *w);
    if (k == 0 || n == 0)
        return sl_err(SL_EINVAL, "gemm_int8_weight_init: empty weight (%zu x %zu)", k, n);
    w->k = k, w->n = n;
    w->q = big_alloc(k * n);
    w->scale = big_alloc(n * sizeof(float));
    if (!w->q || !w->scale) {
        gemm_int8_weight_free(w);
        return sl_err(SL_ENOMEM, "out of memory for a %zu x %zu int8 weight copy", k, n);
    }
    return 0;
}

void gemm_int8_weight_refresh(struct gemm_int8_weight *w, enum gemm_trans tb, const float *B, size_t ldb)
{
    const size_t k = w->k, n = w->n;
    /* op(B)(i, j) = tb == GEMM_N ? B[i * ldb + j] : B[j * ldb + i]; column j of op(B) is output unit j */
    for (size_t j = 0; j < n; j++)
        w->scale[j] = 0.0f;
    for (size_t i = 0; i < k; i++)
        for (size_t j = 0; j < n; j++) {
            const float a = fabsf(tb == GEMM_N ? B[i * ldb + j] : B[j * ldb + i]);
            if (a > w->scale[j])
                w->scale[j] = a;
        }
    for (size_t j = 0; j < n; j++)
        w->scale[j] = quant_scale(w->scale[j]);
    for (size_t i = 0; i < k; i++)
        for (size_t j = 0; j < n; j++)
            w->q[i * n + j] = quant(tb == GEMM_N ? B[i * ldb + j] : B[j * ldb + i], 1.0f / w->scale[j]);
}

void gemm_int8_weight_free(struct gemm_int8_weight *w)
{
    big_free(w->q);
    big_free(w->scale);
    memset(w, 0, sizeof *w);
}

/* q = quant(x, inv) for a row of n values. */
VM_CLONES static void quant_row(const float *x, size_t n, float inv, int8_t *q)
{
#pragma omp simd
    for (size_t j = 0; j < n; j++)
        q[j] = quant(x[j], inv);
}

VM_CLONES static float row_absmax(const float *x, size_t n)
{
    float amax = 0.0f;
#pragma omp simd reduction(max : amax)
    for (size_t j = 0; j < n; j++) {
        const float a = fabsf(x[j]);
        amax = a > amax ? a : amax;
    }
    return amax;
}

/* a8 (m, k) = op(A) quantised per row, as (m) its row scales. */
static void quant_rows(enum gemm_trans ta, size_t m, size_t k, const float *A, size_t lda, int8_t *a8, float *as)
{
    if (ta == GEMM_N) {
        for (size_t i = 0; i < m; i++) {
            as[i] = quant_scale(row_absmax(A + i * lda, k));
            quant_row(A + i * lda, k, 1.0f / as[i], a8 + i * k);
        }
        return;
    }
    for (size_t i = 0; i < m; i++) { /* op(A)(i, j) = A[j * lda + i] */
        float amax = 0.0f;
        for (size_t j = 0; j < k; j++) {
            const float a = fabsf(A[j * lda + i]);
            amax = a > amax ? a : amax;
        }
        as[i] = quant_scale(amax);
        const float inv = 1.0f / as[i];
        for (size_t j = 0; j < k; j++)
            a8[i * k + j] = quant(A[j * lda + i], inv);
    }
}

/* C row i (n) = s · O row i [+ beta · C row i]. */
VM_CLONES static void scale_rows(size_t m, size_t n, const float *s, const float *O, float beta, float *C, size_t ldc)
{
    for (size_t i = 0; i < m; i++) {
        const float si = s[i];
        float *Ci = C + i * ldc;
        const float *Oi = O + i * n;
        if (beta == 0.0f) {
#pragma omp simd
            for (size_t j = 0; j < n; j++)
                Ci[j] = si * Oi[j];
        } else {
#pragma omp simd
            for (size_t j = 0; j < n; j++)
                Ci[j] = si * Oi[j] + beta * Ci[j];
        }
    }
}

int gemm_int8_run_weight(struct gemm_bf16_ctx *c, enum gemm_trans ta, size_t m, const float *A, size_t lda,
                         const struct gemm_int8_weight *W, float beta, float *C, size_t ldc)
{
    const size_t n = W->n, k = W->k;
    if (m == 0)
        return 0;
    int rc;
    if ((rc = reserve(&c->a8, &c->a8_cap, m * k)) < 0 || (rc = reserve((void **)&c->as, &c->as_cap, m * sizeof(float))) < 0 ||
        (rc = reserve((void **)&c->o32, &c->o32_cap, m * n * sizeof(float))) < 0)
        return rc;
    quant_rows(ta, m, k, A, lda, c->a8, c->as);
    struct entry *e = NULL;
#ifdef SL_HAVE_DNNL
    if (g.int8 && (rc = lookup(c, m, n, k, n, 0.0f, threads_here(c), KIND_INT8, &e)) < 0)
        return rc;
#endif
    float *O = c->o32; /* (m, n): Σ q_a q_w · scale_w[j] */
#ifdef SL_HAVE_DNNL
    if (e && e->prim) {
        if ((rc = execute(c, e, m, n, k, n, c->a8, W->q, O, W->scale)) < 0)
            return rc;
    } else
#endif
    { /* no int8 matmul here: the same integer sums in plain C (slow; tests and odd shapes) */
        const int8_t *a8 = c->a8;
        for (size_t i = 0; i < m; i++)
            for (size_t j = 0; j < n; j++) {
                int32_t acc = 0;
                for (size_t p = 0; p < k; p++)
                    acc += (int32_t)a8[i * k + p] * (int32_t)W->q[p * n + j];
                O[i * n + j] = (float)acc * W->scale[j];
            }
        c->last = "int8:ref";
    }
    scale_rows(m, n, c->as, O, beta, C, ldc);
    return 0;
}
