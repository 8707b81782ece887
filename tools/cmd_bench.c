/* tools/cmd_bench.c: `seqlite bench train|greedy|beam`: the synthetic speed benchmark of tools/bench/bench.h,
 * printing one JSON line with the keys of the PyTorch peer benchmark plus gflops,
 * roofline_pct (with --peak) and the settings used (shards, split, omp_wait_policy).
 * OMP_WAIT_POLICY: libgomp reads it when it loads, so when it is unset the command sets PASSIVE and
 * re-executes itself once (spinning OpenMP threads fight OpenBLAS's threads on 2 cores).
 * ref: tools/bench/bench.h (workload, FLOP model), tools/bench/compare.sh (the side-by-side runs). */
#include "tools/cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "nn/attention.h"
#include "nn/autocast.h"
#include "nn/gemm.h"
#include "tools/bench/bench.h"
#include "util/clock.h"
#include "util/err.h"

#define UNSET (-1)

/* machine-wide busy CPU seconds and this process's CPU seconds (as the peer computes others_cores) */
static void cpu_snapshot(double *machine, double *self)
{
    unsigned long long v[8] = {0};
    FILE *f = fopen("/proc/stat", "r");
    *machine = 0;
    if (f) {
        if (fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", v, v + 1, v + 2, v + 3, v + 4, v + 5, v + 6,
                   v + 7) == 8)
            *machine = (double)(v[0] + v[1] + v[2] + v[5] + v[6] + v[7]) / (double)sysconf(_SC_CLK_TCK);
        fclose(f);
    }
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    *self = (double)ru.ru_utime.tv_sec + 1e-6 * (double)ru.ru_utime.tv_usec + (double)ru.ru_stime.tv_sec +
            1e-6 * (double)ru.ru_stime.tv_usec;
}

static int run(int argc, char **argv)
{
    if (!getenv("OMP_WAIT_POLICY") && !getenv("SEQLITE_BENCH_REEXEC")) {
        setenv("OMP_WAIT_POLICY", "PASSIVE", 1);
        setenv("SEQLITE_BENCH_REEXEC", "1", 1);
        char **av = calloc((size_t)argc + 2, sizeof *av);
        if (av) {
            av[0] = "seqlite";
            for (int i = 0; i < argc; i++)
                av[i + 1] = argv[i];
            execv("/proc/self/exe", av);
            free(av); /* exec failed: carry on with the default policy */
        }
    }
    int64_t sv = UNSET, tv = UNSET, e = UNSET, h = UNSET, l = UNSET, b = UNSET, sl = UNSET, tl = UNSET;
    int64_t threads = 1, steps = 10, warmup = 2, sentences = 64, beam = 5, seed = 1, shards = 0;
    double peak = 0;
    const char *config = "base", *split = "auto", *attention = "none", *encoder = "uni", *precision = "fp32";
    const struct cli_opt opts[] = {
        {"src-vocab", CLI_INT, &sv, 5, 1 << 24},   {"tgt-vocab", CLI_INT, &tv, 5, 1 << 24},
        {"emb", CLI_INT, &e, 1, 65536},            {"hidden", CLI_INT, &h, 1, 65536},
        {"layers", CLI_INT, &l, 1, 8},             {"batch", CLI_INT, &b, 1, 1 << 20},
        {"src-len", CLI_INT, &sl, 1, 1 << 16},     {"tgt-len", CLI_INT, &tl, 1, 1 << 16},
        {"threads", CLI_INT, &threads, 1, 256},    {"steps", CLI_INT, &steps, 1, 1e9},
        {"warmup", CLI_INT, &warmup, 0, 1e9},      {"sentences", CLI_INT, &sentences, 1, 1e9},
        {"beam", CLI_INT, &beam, 1, 1024},         {"seed", CLI_INT, &seed, 0, 9e18},
        {"shards", CLI_INT, &shards, 0, 256},      {"peak", CLI_DOUBLE, &peak, 0, 1e9},
        {"config", CLI_STR, &config, 0, 0},        {"split", CLI_STR, &split, 0, 0},
        {"attention", CLI_STR, &attention, 0, 0},  {"encoder", CLI_STR, &encoder, 0, 0},
        {"precision", CLI_STR, &precision, 0, 0},
        {NULL, 0, NULL, 0, 0},
    };
    char *pos[1];
    int npos = 0;
    int rc = cli_parse(&cmd_bench, argc, argv, opts, pos, 1, &npos);
    if (rc == CLI_HELP_SHOWN)
        return 0;
    if (rc)
        return rc;
    if (npos != 1)
        return cli_usage_error(&cmd_bench, "give one mode: train, greedy or beam");
    struct bench_opts o;
    bench_defaults(&o);
    if (strcmp(pos[0], "train") == 0)
        o.mode = BENCH_TRAIN;
    else if (strcmp(pos[0], "greedy") == 0)
        o.mode = BENCH_GREEDY;
    else if (strcmp(pos[0], "beam") == 0)
        o.mode = BENCH_BEAM;
    else
        return cli_usage_error(&cmd_bench, "unknown mode '%s' (train, greedy or beam)", pos[0]);
    if (bench_config(&o, config))
        return cli_usage_error(&cmd_bench, "%s", sl_errmsg());
    enum attn_score att;
    if (attn_score_parse(attention, &att))
        return cli_usage_error(&cmd_bench, "--attention: '%s' is not none, dot, general or mlp", attention);
    o.attention = (int)att;
    if (strcmp(encoder, "uni") && strcmp(encoder, "bi"))
        return cli_usage_error(&cmd_bench, "--encoder: '%s' is not uni or bi", encoder);
    o.bidirectional = strcmp(encoder, "bi") == 0;
    enum precision prec;
    if (precision_parse(precision, "--precision", &prec))
        return cli_usage_error(&cmd_bench, "%s", sl_errmsg());
    if (prec == PRECISION_INT8 && o.mode == BENCH_TRAIN)
        return cli_usage_error(&cmd_bench, "--precision int8 is for decoding (greedy, beam); train takes fp32 or bf16");
    o.precision = (int)prec;
    if (strcmp(split, "auto") == 0 || strcmp(split, "batches") == 0)
        o.split = BENCH_SPLIT_BATCHES;
    else if (strcmp(split, "blas") == 0)
        o.split = BENCH_SPLIT_BLAS;
    else
        return cli_usage_error(&cmd_bench, "unknown --split '%s' (auto, batches or blas)", split);
#define OVERRIDE(dst, v)                                                                                      \
    if ((v) != UNSET)                                                                                         \
        (dst) = (size_t)(v);
    OVERRIDE(o.V_src, sv) OVERRIDE(o.V_tgt, tv) OVERRIDE(o.E, e) OVERRIDE(o.H, h) OVERRIDE(o.L, l)
    OVERRIDE(o.B, b) OVERRIDE(o.S, sl) OVERRIDE(o.T1, tl)
#undef OVERRIDE
    o.threads = (int)threads, o.steps = (size_t)steps, o.warmup = (size_t)warmup;
    o.sentences = (size_t)sentences, o.K = (size_t)beam, o.seed = (uint64_t)seed, o.shards = (int)shards;

    struct bench_result r;
    double m0, s0, m1, s1, w0 = clock_now();
    cpu_snapshot(&m0, &s0);
    rc = bench_run(&o, &r);
    cpu_snapshot(&m1, &s1);
    double dw = clock_now() - w0;
    if (rc)
        return cli_fail_status(&cmd_bench, rc);
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    double others = ((m1 - m0) - (s1 - s0)) / dw;
    const char *wp = getenv("OMP_WAIT_POLICY");
    printf("{\"mode\": \"%s\", \"threads\": %d, \"blas\": \"%s\", \"src_vocab\": %zu, \"tgt_vocab\": %zu, "
           "\"emb\": %zu, \"hidden\": %zu, \"layers\": %zu, \"batch\": %zu, \"src_len\": %zu, \"tgt_len\": %zu, "
           "\"attention\": \"%s\", \"encoder\": \"%s\", \"precision\": \"%s\", ",
           pos[0], o.threads, gemm_corename(), o.V_src, o.V_tgt, o.E, o.H, o.L, o.B, o.S, o.T1,
           attn_score_name((enum attn_score)o.attention), o.bidirectional ? "bi" : "uni", precision_name(prec));
    if (o.mode == BENCH_TRAIN)
        printf("\"steps\": %zu, \"steps_per_s\": %.4f, \"tgt_tokens_per_s\": %.1f, \"tokens_per_s\": %.1f, "
               "\"loss_first\": %.4f, \"loss_last\": %.4f, \"shards\": %d, ",
               o.steps, r.steps_per_s, r.tgt_tokens_per_s, r.tokens_per_s, r.loss_first, r.loss_last,
               o.shards > 0 ? o.shards : o.threads);
    else
        printf("\"beam\": %zu, \"sentences\": %zu, \"sentences_per_s\": %.2f, \"tgt_tokens_per_s\": %.1f, "
               "\"checksum\": %lld, \"split\": \"%s\", ",
               o.mode == BENCH_BEAM ? o.K : 1, o.sentences, r.sentences_per_s, r.tgt_tokens_per_s, r.checksum,
               o.threads > 1 ? (o.split == BENCH_SPLIT_BLAS ? "blas" : "batches") : "none");
    double gflops = r.gflop / r.sec;
    printf("\"sec\": %.3f, \"peak_rss_mib\": %.1f, \"others_cores\": %.2f, \"gflops\": %.1f", r.sec,
           (double)ru.ru_maxrss / 1024.0, others > 0 ? others : 0.0, gflops);
    if (peak > 0)
        printf(", \"roofline_pct\": %.1f", 100.0 * gflops / peak);
    printf(", \"omp_wait_policy\": \"%s\"}\n", wp ? wp : "");
    return 0;
}

const struct cli_cmd cmd_bench = {
    .name = "bench",
    .summary = "training and decoding speed on a synthetic workload (JSON line)",
    .usage = "usage: seqlite bench train|greedy|beam [--config tiny|base] [flags]\n"
             "  Synthetic benchmark, same workload and JSON keys as shared/bench/peer_torch.py.\n"
             "  train: --steps timed steps (after --warmup) of forward, backward, clip 5.0, Adam 1e-3 on\n"
             "         4 seeded batches of random ids; greedy / beam: --sentences random sources in batches\n"
             "         of --batch, every hypothesis runs --tgt-len steps.\n"
             "  --config tiny|base        canonical sizes (default base); the size flags override them\n"
             "  --attention none|dot|general|mlp  the model (default none: the peer's plain model)\n"
             "  --encoder uni|bi          a bidirectional encoder (default uni)\n"
             "  --precision fp32|bf16|int8  matrix products in bf16 or int8 (decoding; default fp32)\n"
             "  --src-vocab N --tgt-vocab N --emb N --hidden N --layers N --batch N --src-len N --tgt-len N\n"
             "  --threads N               threads (default 1)\n"
             "  --shards N                training: data-parallel shards (default = threads; 1 = one shard\n"
             "                            with N BLAS threads)\n"
             "  --split auto|batches|blas decoding with threads > 1: batches across threads (auto) or one\n"
             "                            thread with N BLAS threads\n"
             "  --steps N (10) --warmup N (2) --sentences N (64) --beam K (5) --seed N (1)\n"
             "  --peak GFLOPS             add roofline_pct = achieved GEMM GFLOP/s / GFLOPS\n"
             "  OMP_WAIT_POLICY defaults to PASSIVE; OPENBLAS_CORETYPE picks the BLAS kernel.\n",
    .run = run,
};
