/* tools/bench/bench.h: the synthetic speed benchmark behind `seqlite bench` (same workload as the PyTorch peer
 * benchmark, kept outside this repository): training steps (zero grad, forward, backward, global-norm
 * clip 5.0, Adam lr 1e-3) on 4 seeded batches of fixed-length random ids in [4, V), cycled; greedy and
 * beam decoding of seeded random sources where every hypothesis runs exactly T1 steps (no early stop). Greedy is beam
 * search with beam 1, the production decoder, in its fixed-length mode (decoder/beam.h).
 * Threads: training splits each batch into `shards` row ranges run as jobs on OpenMP threads (util/jobs.h)
 * with one BLAS thread each, gradients summed in shard order; decoding either splits the batches of
 * sentences across OpenMP threads (one s2s_decoder each, one BLAS thread) or runs one thread with
 * `threads` BLAS threads. A failing job's message reaches the caller (sl_errmsg).
 * ref: the PyTorch peer (workload, JSON keys); the FLOP model is bench_train_flops / bench_decode_flops. */
#ifndef SL_TOOLS_BENCH_BENCH_H
#define SL_TOOLS_BENCH_BENCH_H

#include <stddef.h>
#include <stdint.h>

enum bench_mode { BENCH_TRAIN, BENCH_GREEDY, BENCH_BEAM };

/* How decoding uses more than one thread. */
enum bench_split {
    BENCH_SPLIT_BATCHES = 0, /* batches of sentences across OpenMP threads, 1 BLAS thread each */
    BENCH_SPLIT_BLAS = 1,    /* one decoding thread, `threads` BLAS threads */
};

struct bench_opts {
    enum bench_mode mode;
    size_t V_src, V_tgt, E, H, L; /* model */
    int attention;                /* enum attn_score (nn/attention.h): 0 none (the peer's model), 1..3 */
    int bidirectional;            /* the bidirectional encoder */
    size_t B, S, T1;              /* batch rows, source length, decoder steps T1 = T + 1 (nn/dims.h): the
                                     peer's target length, EOS included */
    int threads;                  /* >= 1 */
    int shards;                   /* training shards (0: = threads) */
    enum bench_split split;       /* decoding with threads > 1 */
    size_t steps, warmup;         /* training steps timed / untimed; warmup = untimed decode batches too */
    size_t sentences, K;          /* decoding: sentences translated, beam width (beam mode) */
    uint64_t seed;
    int precision;                /* enum precision (nn/autocast.h): 0 fp32, bf16, int8 (decoding only); SL_EINVAL
                                     where its GEMMs cannot run */
};

struct bench_result {
    double sec;                    /* timed wall time */
    double steps_per_s, tgt_tokens_per_s, tokens_per_s, sentences_per_s;
    double loss_first, loss_last;  /* training: mean token cross-entropy of the first / last timed step */
    double gflop;                  /* GEMM GFLOP of the timed part (the FLOP model below) */
    long long checksum;            /* decoding: sum of the output ids */
};

/* The peer's canonical sizes: "tiny" or "base" (SL_EINVAL otherwise); leaves the other fields alone. */
int bench_config(struct bench_opts *o, const char *name);
/* Defaults: base sizes, 1 thread, 10 steps, 2 warmup, 64 sentences, beam 5, seed 1, mode train. */
void bench_defaults(struct bench_opts *o);
/* GEMM FLOPs of one training step, and of decoding n sentences (the peer's FLOP model). */
double bench_train_flops(const struct bench_opts *o);
double bench_decode_flops(const struct bench_opts *o, size_t n);
/* Runs the benchmark o->mode describes. SL_EINVAL for bad sizes, SL_ENOMEM. */
int bench_run(const struct bench_opts *o, struct bench_result *res);

#endif
