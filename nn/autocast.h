/* nn/autocast.h: mixed precision for a whole model without touching its layers. While an autocast is in
 * use (autocast_use), every gemm_run of the process (nn/gemm.h) runs as a bf16 GEMM (nn/gemm_bf16.h):
 * inputs rounded to bf16, f32 accumulation and f32 output. Everything else (the LSTM cell, softmax, loss,
 * gradient sums, Adam, the f32 master weights) stays f32. What PyTorch calls autocast, for one buffer.
 * - Weights: a product whose right operand B lies inside the parameter buffer given at creation (the
 *   flat buffer of nn/params.h; more with autocast_add_buffer) is a product with a weight. Its bf16 copy, one per (B, transpose, k, n,
 *   ldb), is made at the first such product after creation or autocast_weights_changed, by whichever
 *   thread gets there first (the others wait for it), or all at once by autocast_refresh (training, once
 *   per step, on its threads), and shared by every thread until the weights change again: one conversion
 *   per weight view per training step, once per model when decoding. Any other
 *   right operand (activations, upstream gradients) is converted in the call.
 * - Threads: each OpenMP thread number has its own oneDNN context (made at its first product, guarded by
 *   a mutex, so a non-OpenMP thread is safe too); a product inside a parallel region runs on the calling
 *   thread, one outside runs on the autocast's n_threads. Training's per-shard products therefore run
 *   with one thread's blocking whatever the number of threads, and stay bit-identical across --threads.
 * - Products oneDNN cannot do (alpha != 1, products below AUTOCAST_MIN_FLOPS multiply-adds, shapes with
 *   no implementation) stay f32. gemm_run_packed is not affected: code that packs f32 weights for
 *   few-row products skips the packing while autocast_active() (the bf16 copies take its place).
 * - Only one autocast is in use per process at a time. Make it the one in use before starting threads
 *   and stop using it (autocast_use(NULL)) after they finished; autocast_weights_changed likewise runs
 *   while no product runs.
 * ref: Micikevicius et al. 2018, "Mixed Precision Training"; Kalamkar et al. 2019 (bf16 training);
 * PyTorch torch.autocast (per-operation casting with f32 master weights). */
#ifndef SL_NN_AUTOCAST_H
#define SL_NN_AUTOCAST_H

#include <stddef.h>

#include "nn/gemm.h"

#define AUTOCAST_MIN_FLOPS 4096   /* m·n·k below this: f32 (the conversion would cost more than it saves) */
#define AUTOCAST_MAX_WEIGHTS 256  /* weight views one autocast keeps bf16 copies of */
#define AUTOCAST_MAX_THREADS 256  /* OpenMP thread numbers with their own context */
#define AUTOCAST_MAX_BUFFERS 16   /* parameter buffers one autocast treats as weights */

/* PRECISION_INT8 is for decoding only: products with a weight take an int8 copy of it (quantised per output
 * unit) and quantise their left operand per row (nn/gemm_bf16.h, gemm_int8_run_weight); every other product
 * stays f32. */
enum precision { PRECISION_FP32 = 0, PRECISION_BF16 = 1, PRECISION_INT8 = 2 };

/* "fp32" / "bf16" / "int8" -> *out; SL_EINVAL with a message naming flag for anything else. */
int precision_parse(const char *s, const char *flag, enum precision *out);
const char *precision_name(enum precision p);
/* One line saying how p's products run here (gemm_bf16_note or gemm_int8_note). */
const char *precision_note(enum precision p);

/* 1 when p's products pay here. bf16: oneDNN runs them with the CPU's bf16 instructions (AVX512-BF16, AMX),
 * or emulates them and SEQLITE_BF16_EMULATED=1 is set (tests of the numerics on CPUs without them). int8:
 * gemm_int8_available() (VNNI or AMX). 0 otherwise (and for fp32): commands then run f32 and say
 * precision_note(p) (one line). */
int autocast_available(enum precision p);

struct autocast;
/* Products in precision p (bf16 or int8) for the parameter buffer w (n floats). n_threads: threads of a
 * product made outside OpenMP regions. NULL with a message when p's GEMMs cannot run here at all (bf16:
 * gemm_bf16_mode() == GEMM_BF16_FP32; int8: !gemm_int8_available(); fp32), or out of memory. */
struct autocast *autocast_create(enum precision p, const float *w, size_t n, int n_threads);
void autocast_free(struct autocast *a); /* stops using it first if it is in use; NULL: no-op */
/* One more parameter buffer whose products count as weights (an ensemble's members), up to
 * AUTOCAST_MAX_BUFFERS in all. 0, or SL_EINVAL (too many). Before any product runs. */
int autocast_add_buffer(struct autocast *a, const float *w, size_t n);
/* The buffer's values changed (an optimizer step, weights loaded): the bf16 copies are made again at their
 * next use. */
void autocast_weights_changed(struct autocast *a);
/* Makes every copy known so far (those the products since creation asked for) again now, on n_threads
 * threads, instead of one at a time at their next use (where a thread needing one waits for the thread
 * making another: the copies are made under one lock). The same copies either way. While no product
 * runs, after autocast_weights_changed. */
void autocast_refresh(struct autocast *a, int n_threads);
/* Makes a the autocast of every later gemm_run (NULL: f32 again). */
void autocast_use(struct autocast *a);
/* 1 when an autocast is in use. */
int autocast_active(void);
/* The autocast in use, or NULL (to restore it after using another one). */
struct autocast *autocast_current(void);

/* Counters since creation, for tests and benchmarks. */
struct autocast_stats {
    size_t bf16_calls;      /* products run in bf16 */
    size_t weight_calls;    /* of which with a weight's bf16 copy */
    size_t f32_calls;       /* products left in f32 (small, alpha != 1, no implementation, errors) */
    size_t conversions;     /* weight copies made */
    size_t weight_views;    /* distinct weight views seen */
    size_t errors;          /* oneDNN failures (the product then ran in f32) */
};
void autocast_stats(const struct autocast *a, struct autocast_stats *out);

/* The product gemm_run forwards while an autocast is in use (nn/gemm.c calls it; nothing else should). */
void autocast_gemm(enum gemm_trans ta, enum gemm_trans tb, size_t m, size_t n, size_t k, float alpha, const float *A,
                   size_t lda, const float *B, size_t ldb, float beta, float *C, size_t ldc);

#endif
