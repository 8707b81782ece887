/* nn/gemm_bf16.h: C (m, n) = op(A) (m, k) · op(B) (k, n) [+ beta · C] with the inputs rounded to bf16,
 * f32 accumulation and f32 output, through oneDNN's matmul primitive; gemm_bf16.c is the only file of
 * seqlite that includes <dnnl.h>. Row-major; ld* are row strides in elements. Same m, n, k as nn/gemm.h.
 * - Inputs arrive as f32 and are rounded to bf16 (nearest, ties to even) on the way in: A on every call;
 *   B either on every call (gemm_bf16_run) or once into a struct gemm_bf16_weight, a bf16 copy of a
 *   weight refreshed once per training step or once per model (gemm_bf16_run_weight). A converted operand
 *   is packed tight in its stored orientation: plain (m, k) / (k, n), or for a transposed operand (k, m) /
 *   (n, k), which oneDNN reads through strides (a transposing conversion cost more than the product's
 *   own reordering); a weight copy is always (k, n).
 * - Modes, chosen once per process (gemm_bf16_mode, gemm_bf16_note):
 *     GEMM_BF16_NATIVE    oneDNN with the CPU's bf16 instructions (AVX512-BF16, AMX);
 *     GEMM_BF16_EMULATED  oneDNN with AVX-512 F only: it computes the same bf16 products without the
 *                         bf16 instructions (slower; useful to test bf16 numerics, not for speed);
 *     GEMM_BF16_FP32      no bf16: built without oneDNN, or oneDNN's ISA is below AVX-512 (Debian's
 *                         oneDNN 2.6 has no bf16 matmul there: the primitive is "unimplemented"). The
 *                         calls are then plain f32 gemm_run on the unrounded inputs, under gemm.h's
 *                         thread rules (OpenBLAS threads are the caller's business there).
 *   oneDNN itself reads ONEDNN_MAX_CPU_ISA (once per process, at its first call), so that variable
 *   forces the lower modes: avx512_core gives EMULATED, avx2 gives FP32.
 * - A context (struct gemm_bf16_ctx) caches its primitives, made at the first call that needs each and
 *   reused (least recently used evicted past GEMM_BF16_CACHE); gemm_bf16_prepare makes one ahead of a time
 *   loop. Which calls share a primitive depends on the CPU (chosen once per process):
 *     without AMX (AVX512-BF16, or emulated): one bf16 primitive for every shape, its m, n, k and ldc
 *       given at each call (oneDNN's shape-agnostic "gemm:jit"; as fast there as the per-shape brgemm
 *       kernels, and training's shapes, which change with every batch's lengths, then make no
 *       primitive after the first products: about a dozen per context in all, one per operand
 *       orientation, beta and thread count);
 *     with AMX (or SEQLITE_BF16_PER_SHAPE=1): one primitive per shape, key (m, n, k, ldc, beta, threads,
 *       orientation), since only the per-shape brgemm kernels use the tiles. int8 is always per shape.
 *   lda / ldb are never part of a key: the converted operands are packed tight. The engine is created
 *   once per process; each context has its own stream, staging buffers and scratchpad.
 * - Threads: a call made inside an OpenMP parallel region (any, even of one thread: omp_get_level() > 0)
 *   runs on the calling thread; outside one it runs on the context's n_threads. The thread count oneDNN
 *   sees is set around both creation and execution (omp_set_num_threads on the calling thread, restored
 *   after: oneDNN 2.6 with the OpenMP runtime has no thread setting of its own and plans its blocking from
 *   omp_get_max_threads at creation). So a per-shard call gives the same bits whatever the number of
 *   threads running shards (the blocking, hence the summation order, is that of one thread).
 * - Ownership: the caller creates and frees contexts; a context is used by one thread at a time (it is
 *   not thread-safe; any thread may create it), and contexts on different threads run concurrently. A
 *   struct gemm_bf16_weight is the caller's; runs only read it, so one weight may be shared by every
 *   thread between refreshes.
 *
 * Use (nn/autocast.h wires it into gemm_run for train, translate, eval and bench --precision):
 * - Training with --precision bf16: f32 master weights, gradients and Adam moments stay as they are.
 *   Once per step, after the update, each weight matrix is refreshed into its gemm_bf16_weight (one
 *   conversion per weight per step, shared by every shard); the shards' forward and backward products
 *   take their activations (and, for weight gradients, the upstream gradients) as f32 and call
 *   gemm_bf16_run / gemm_bf16_run_weight with one context per shard thread, created with the workspace.
 *   The LSTM cell, the attention softmax, log-softmax and the loss, the gradient sums, clipping and Adam
 *   stay f32; gradient checks stay f32 (--precision fp32).
 * - Decoding with --precision bf16: the weights are converted once per model (gemm_bf16_weight) and each
 *   decoding thread's step products use its own context.
 * - When gemm_bf16_mode() is not GEMM_BF16_NATIVE the command uses fp32 instead, printing
 *   gemm_bf16_note() once (one line, on stderr).
 * ref: oneDNN matmul primitive (dnnl_matmul_desc_init) and CPU ISA controls (dnnl_get_effective_cpu_isa,
 * ONEDNN_MAX_CPU_ISA); bfloat16: Kalamkar et al. 2019, "A Study of BFLOAT16 for Deep Learning Training". */
#ifndef SL_NN_GEMM_BF16_H
#define SL_NN_GEMM_BF16_H

#include <stddef.h>
#include <stdint.h>

#include "nn/gemm.h"

enum gemm_bf16_mode { GEMM_BF16_FP32 = 0, GEMM_BF16_EMULATED = 1, GEMM_BF16_NATIVE = 2 };

/* Shapes one context keeps primitives for. */
#define GEMM_BF16_CACHE 64

/* The mode of this process (above); thread-safe, decided at the first call of any gemm_bf16 function. */
enum gemm_bf16_mode gemm_bf16_mode(void);
/* 1 when this build has oneDNN (whatever the mode). */
int gemm_bf16_built(void);
/* oneDNN's effective ISA ("avx512_core_bf16", "avx512_core_amx", "avx2", ...; "none" without oneDNN).
 * Static string. */
const char *gemm_bf16_isa(void);
/* One line, no newline, saying how bf16 GEMMs run here, e.g. "bf16 GEMMs: oneDNN 2.6.3, native bf16
 * (ISA avx512_core_bf16)" or "bf16 GEMMs: not available (oneDNN ISA avx2 has no bf16 matmul): f32
 * instead". Static string. */
const char *gemm_bf16_note(void);

/* f32 <-> bf16, rounding to nearest, ties to even; a NaN stays a NaN. Elementwise, n values. */
void gemm_bf16_from_f32(const float *x, uint16_t *y, size_t n);
void gemm_bf16_to_f32(const uint16_t *x, float *y, size_t n);

/* A converted copy of op(B) (k, n): bf16 row-major with stride n for oneDNN, or gemm_bf16_dot's pair
 * panels where that kernel runs the products against weights, or f32 (a snapshot) in GEMM_BF16_FP32;
 * exactly one of the three. The caller holds it. */
struct gemm_bf16_weight {
    size_t k, n;
    uint16_t *bf16;  /* (k, n) or NULL */
    float *f32;      /* (k, n) or NULL */
    uint32_t *pairs; /* gemm_bf16_dot's pair panels of bf16, or NULL when that kernel is not used here */
};
/* Allocates the copy for op(B) of shape (k, n) (contents undefined until the first refresh). 0, or
 * SL_ENOMEM / SL_EINVAL (a zero size); on failure *w is left freeable. */
int gemm_bf16_weight_init(struct gemm_bf16_weight *w, size_t k, size_t n);
/* w = op(B) converted; B is stored (k, n) if tb == GEMM_N else (n, k), stride ldb. Single-threaded;
 * no other thread may run with w meanwhile. */
void gemm_bf16_weight_refresh(struct gemm_bf16_weight *w, enum gemm_trans tb, const float *B, size_t ldb);
void gemm_bf16_weight_free(struct gemm_bf16_weight *w);

struct gemm_bf16_ctx;
/* A context whose calls from outside OpenMP regions run on n_threads (>= 1) threads. NULL on failure
 * (message recorded). gemm_bf16_ctx_free(NULL) is a no-op. */
struct gemm_bf16_ctx *gemm_bf16_ctx_create(int n_threads);
void gemm_bf16_ctx_free(struct gemm_bf16_ctx *c);

/* C (m, n) = op(A) (m, k) · op(B) (k, n) + beta · C (beta 0: C is only written). A is stored (m, k) if
 * ta == GEMM_N else (k, m), likewise B. k == 0 scales C by beta. 0, or SL_ENOMEM (staging buffers). */
int gemm_bf16_run(struct gemm_bf16_ctx *c, enum gemm_trans ta, enum gemm_trans tb, size_t m, size_t n, size_t k,
                  const float *A, size_t lda, const float *B, size_t ldb, float beta, float *C, size_t ldc);
/* The same with op(B) = W (k = W->k, n = W->n). */
int gemm_bf16_run_weight(struct gemm_bf16_ctx *c, enum gemm_trans ta, size_t m, const float *A, size_t lda,
                         const struct gemm_bf16_weight *W, float beta, float *C, size_t ldc);
/* Creates (if new) the primitive a call of this shape from the calling thread's place (inside or outside
 * a parallel region) would use, so no creation happens inside a time loop. 0, or SL_ENOMEM. */
int gemm_bf16_prepare(struct gemm_bf16_ctx *c, size_t m, size_t n, size_t k, size_t ldc, float beta);
/* 1 when products against weight copies (gemm_bf16_run_weight) run seqlite's own AVX512-BF16 kernel
 * (nn/gemm_bf16_dot.h) instead of oneDNN: native bf16 without AMX and without SEQLITE_BF16_PER_SHAPE=1,
 * unless SEQLITE_BF16_DOT=0. Such a weight copy also holds the kernel's pair panels, made at each refresh;
 * its products make no oneDNN primitive. (On AMD EPYC Zen 4 the kernel runs a training shard's 16-row
 * step products at about 200 GFLOP/s against oneDNN's 105-150, and every model shape at least as fast.) */
int gemm_bf16_own_kernel(void);
/* oneDNN's name of the implementation the context's last call ran ("brg:avx512_core_bf16", "gemm:jit",
 * ...), "sgemm" when it ran as f32 gemm_run, "seqlite:avx512_bf16" for the own kernel, "" before any call. Valid until the next call on c. */
const char *gemm_bf16_last_impl(const struct gemm_bf16_ctx *c);
/* Primitives the context has created so far (one evicted and made again counts twice). */
size_t gemm_bf16_primitives_made(const struct gemm_bf16_ctx *c);

/* ---- int8 (decoding): C = op(A) · W with op(A) quantised to s8 per row (symmetric, scale max|row|/127,
 * round to nearest) and W an s8 copy of a weight quantised per column (per output unit), s32 sums
 * through oneDNN's matmul (VNNI / AMX), scaled back to f32 by both scales. Same contexts as bf16. ---- */

/* 1 when oneDNN makes the int8 matmul here with VNNI or AMX (else the products run a plain C reference:
 * right, slow). gemm_int8_note: one line saying which, like gemm_bf16_note. */
int gemm_int8_available(void);
const char *gemm_int8_note(void);

/* op(B) (k, n) as int8: op(B)(i, j) ≈ q[i * n + j] · scale[j]. */
struct gemm_int8_weight {
    size_t k, n;
    int8_t *q;    /* (k, n) */
    float *scale; /* (n) */
};
int gemm_int8_weight_init(struct gemm_int8_weight *w, size_t k, size_t n);
void gemm_int8_weight_refresh(struct gemm_int8_weight *w, enum gemm_trans tb, const float *B, size_t ldb);
void gemm_int8_weight_free(struct gemm_int8_weight *w);
/* C (m, n) = quant(op(A)) · W, dequantised, + beta · C. 0, or SL_ENOMEM / SL_EINVAL (oneDNN failed). */
int gemm_int8_run_weight(struct gemm_bf16_ctx *c, enum gemm_trans ta, size_t m, const float *A, size_t lda,
                         const struct gemm_int8_weight *W, float beta, float *C, size_t ldc);

#endif
