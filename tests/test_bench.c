/* tests/test_bench.c: the synthetic benchmark (tools/bench/bench.h) and `seqlite bench`: the canonical configs
 * and FLOP model against the PyTorch peer benchmark's published numbers; tiny train, greedy and beam runs
 * print exactly one line of JSON with the keys of the peer (its finish()) and
 * consistent, positive values; decoding gives the same ids with 1 and 2 threads and beam 1 equals greedy;
 * usage errors (unknown mode, out-of-range flags) exit 2 with a one-line message and a help hint on stderr. */
#include <criterion/criterion.h>

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/helpers.h"
#include "nn/attention.h"
#include "tools/bench/bench.h"
#include "util/err.h"

/* ---- a flat JSON object: {"key": "string" | number, ...} ---- */

#define JSON_MAX 48

struct json_flat {
    int n;
    char key[JSON_MAX][32];
    int is_str[JSON_MAX];
    char str[JSON_MAX][64];
    double num[JSON_MAX];
};

static const char *json_ws(const char *p)
{
    while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
        p++;
    return p;
}

/* A JSON string without escapes (the bench prints none) into out (cap bytes); NULL on a syntax error. */
static const char *json_string(const char *p, char *out, size_t cap)
{
    if (*p++ != '"')
        return NULL;
    size_t n = 0;
    for (; *p && *p != '"'; p++) {
        if (*p == '\\' || (unsigned char)*p < 0x20 || n + 1 >= cap)
            return NULL;
        out[n++] = *p;
    }
    out[n] = 0;
    return *p == '"' ? p + 1 : NULL;
}

/* A JSON number (RFC 8259 grammar: no inf, nan, leading '+' or '.'); NULL on a syntax error. */
static const char *json_number(const char *p, double *out)
{
    const char *s = p;
    if (*p == '-')
        p++;
    if (*p == '0')
        p++;
    else if (*p >= '1' && *p <= '9')
        while (isdigit((unsigned char)*p))
            p++;
    else
        return NULL;
    if (*p == '.') {
        if (!isdigit((unsigned char)*++p))
            return NULL;
        while (isdigit((unsigned char)*p))
            p++;
    }
    if (*p == 'e' || *p == 'E') {
        p++;
        if (*p == '+' || *p == '-')
            p++;
        if (!isdigit((unsigned char)*p))
            return NULL;
        while (isdigit((unsigned char)*p))
            p++;
    }
    *out = strtod(s, NULL);
    return p;
}

/* Parses s, which must hold one flat object and nothing else but whitespace; 0 ok, -1 syntax error,
 * -2 duplicate key or too many keys. */
static int json_flat_parse(const char *s, struct json_flat *o)
{
    memset(o, 0, sizeof *o);
    const char *p = json_ws(s);
    if (*p++ != '{')
        return -1;
    p = json_ws(p);
    if (*p == '}')
        return *json_ws(p + 1) ? -1 : 0;
    for (;;) {
        if (o->n == JSON_MAX)
            return -2;
        char *key = o->key[o->n];
        if (!(p = json_string(p, key, sizeof o->key[0])))
            return -1;
        for (int i = 0; i < o->n; i++)
            if (strcmp(o->key[i], key) == 0)
                return -2;
        p = json_ws(p);
        if (*p++ != ':')
            return -1;
        p = json_ws(p);
        if (*p == '"') {
            o->is_str[o->n] = 1;
            p = json_string(p, o->str[o->n], sizeof o->str[0]);
        } else {
            p = json_number(p, &o->num[o->n]);
        }
        if (!p)
            return -1;
        o->n++;
        p = json_ws(p);
        if (*p == '}')
            return *json_ws(p + 1) ? -1 : 0;
        if (*p++ != ',')
            return -1;
        p = json_ws(p);
    }
}

static int json_find(const struct json_flat *o, const char *key)
{
    for (int i = 0; i < o->n; i++)
        if (strcmp(o->key[i], key) == 0)
            return i;
    return -1;
}

/* The number under key (the test fails if it is missing or a string). */
static double jnum(const struct json_flat *o, const char *key)
{
    int i = json_find(o, key);
    cr_assert(i >= 0, "key '%s' missing", key);
    cr_assert(!o->is_str[i], "key '%s' is a string, want a number", key);
    return o->num[i];
}

static const char *jstr(const struct json_flat *o, const char *key)
{
    int i = json_find(o, key);
    cr_assert(i >= 0, "key '%s' missing", key);
    cr_assert(o->is_str[i], "key '%s' is a number, want a string", key);
    return o->str[i];
}

static int is_integer(double x) { return x == floor(x); }

/* Keys of every line of the peer (its finish()), then of its train and its
 * greedy / beam lines. */
static const char *const PEER_KEYS[] = {"mode",    "threads", "blas",   "src_vocab",    "tgt_vocab",
                                        "emb",     "hidden",  "layers", "batch",        "src_len",
                                        "tgt_len", "sec",     "peak_rss_mib", "others_cores", NULL};
static const char *const PEER_TRAIN_KEYS[] = {"steps",      "steps_per_s", "tgt_tokens_per_s", "tokens_per_s",
                                              "loss_first", "loss_last",   NULL};
static const char *const PEER_DECODE_KEYS[] = {"beam", "sentences", "sentences_per_s", "tgt_tokens_per_s",
                                               "checksum", NULL};

/* Runs `seqlite bench ARGS`, which must exit 0 and print exactly one line on stdout: a flat JSON object
 * with every key of the peer for its mode (and the C's gflops). Checks what holds for every mode. */
static void run_bench(const char *args, const char *mode, struct json_flat *o)
{
    char cmd[512], *out = NULL, *err = NULL;
    snprintf(cmd, sizeof cmd, "bench %s", args);
    int rc = th_run(cmd, NULL, &out, &err);
    cr_assert_eq(rc, 0, "seqlite %s: exit %d, stderr: %s", cmd, rc, err ? err : "");
    cr_assert_not_null(out);
    size_t len = strlen(out);
    cr_assert(len > 0 && out[len - 1] == '\n', "stdout does not end with a newline: '%s'", out);
    cr_assert(strchr(out, '\n') == out + len - 1, "stdout has more than one line: '%s'", out);
    int prc = json_flat_parse(out, o);
    cr_assert_eq(prc, 0, "not one flat JSON object (%d): %s", prc, out);
    for (int i = 0; PEER_KEYS[i]; i++)
        cr_assert(json_find(o, PEER_KEYS[i]) >= 0, "key '%s' missing: %s", PEER_KEYS[i], out);
    const char *const *extra = strcmp(mode, "train") == 0 ? PEER_TRAIN_KEYS : PEER_DECODE_KEYS;
    for (int i = 0; extra[i]; i++)
        cr_assert(json_find(o, extra[i]) >= 0, "key '%s' missing: %s", extra[i], out);
    cr_assert_str_eq(jstr(o, "mode"), mode);
    cr_assert(jstr(o, "blas")[0], "empty blas");
    static const char *const sizes[] = {"threads", "src_vocab", "tgt_vocab", "emb", "hidden", "layers",
                                        "batch", "src_len", "tgt_len", NULL};
    for (int i = 0; sizes[i]; i++) {
        double v = jnum(o, sizes[i]);
        cr_assert(v >= 1 && is_integer(v), "%s = %g", sizes[i], v);
    }
    cr_assert_gt(jnum(o, "sec"), 0);
    cr_assert_gt(jnum(o, "peak_rss_mib"), 1);
    cr_assert_geq(jnum(o, "others_cores"), 0);
    cr_assert_gt(jnum(o, "gflops"), 0);
    free(out);
    free(err);
}

/* The peer's tiny config with --batch batch --src-len 12 (unlike tgt_len, so that a mixup
 * of the two shows) */
static void expect_tiny_sizes(const struct json_flat *o, double batch)
{
    cr_assert_eq(jnum(o, "src_vocab"), 2000);
    cr_assert_eq(jnum(o, "tgt_vocab"), 2000);
    cr_assert_eq(jnum(o, "emb"), 128);
    cr_assert_eq(jnum(o, "hidden"), 256);
    cr_assert_eq(jnum(o, "layers"), 1);
    cr_assert_eq(jnum(o, "batch"), batch);
    cr_assert_eq(jnum(o, "src_len"), 12);
    cr_assert_eq(jnum(o, "tgt_len"), 16);
}

/* |a - b| <= rel·max(|a|, |b|) + abs */
static int near(double a, double b, double rel, double abs_tol)
{
    return fabs(a - b) <= rel * fmax(fabs(a), fabs(b)) + abs_tol;
}

TestSuite(bench, .timeout = 120);

/* ---- the library ---- */

Test(bench, configs_and_flop_model_match_the_peer_readme)
{
    struct bench_opts o;
    bench_defaults(&o);
    cr_assert_eq(o.mode, BENCH_TRAIN);
    cr_assert(o.threads == 1 && o.steps == 10 && o.warmup == 2 && o.sentences == 64 && o.K == 5 && o.seed == 1);
    /* defaults = base: V 8000, E 256, H 512, L 2, B 64, lengths 24; 105.39 GFLOP per training step */
    cr_assert(o.V_src == 8000 && o.V_tgt == 8000 && o.E == 256 && o.H == 512 && o.L == 2 && o.B == 64 &&
              o.S == 24 && o.T1 == 24);
    cr_assert(near(bench_train_flops(&o) / 1e9, 105.39, 0, 0.005), "%.4f", bench_train_flops(&o) / 1e9);
    /* bidirectional + general attention, by hand: encoder 2 dirs x 2 B S 2H (I + H/2) over I = 256, 512:
     * 8.0531 G; keys 2 S B H H 0.8053 G; 24 steps of decoder gates 2 B 4H (1280 + 1024) 0.6040 G, scores and
     * context 2 x 2 B S H 0.0031 G, W_c 2 B 2H H 0.0671 G, output 2 B H V 0.5243 G; x3 = 112.87 G */
    o.attention = ATTN_GENERAL, o.bidirectional = 1;
    cr_assert(near(bench_train_flops(&o) / 1e9, 112.87, 0, 0.005), "%.4f", bench_train_flops(&o) / 1e9);
    o.attention = ATTN_MLP; /* + per step W_2 h_t 2 B H H and v.tanh(K + q) 3 B S H, less a score 2 B S H */
    cr_assert(near(bench_train_flops(&o) / 1e9, 112.87 + 3 * 24 * (2.0 * 64 * 512 * 512 + 64 * 24 * 512) / 1e9,
                   0, 0.005), "%.4f", bench_train_flops(&o) / 1e9);
    o.attention = ATTN_NONE, o.bidirectional = 0;
    cr_assert_eq(bench_config(&o, "tiny"), 0);
    cr_assert(o.V_src == 2000 && o.V_tgt == 2000 && o.E == 128 && o.H == 256 && o.L == 1 && o.B == 32 &&
              o.S == 16 && o.T1 == 16);
    cr_assert(near(bench_train_flops(&o) / 1e9, 3.99, 0, 0.005), "%.4f", bench_train_flops(&o) / 1e9);
    cr_assert_eq(o.steps, 10, "bench_config changes only the sizes");
    /* decoding: the encoder over S source steps once per sentence, T steps of every hypothesis */
    o.mode = BENCH_GREEDY;
    double g1 = bench_decode_flops(&o, 1), g2 = bench_decode_flops(&o, 2);
    cr_assert(g1 > 0 && near(g2, 2 * g1, 1e-12, 0));
    o.mode = BENCH_BEAM;
    cr_assert_gt(bench_decode_flops(&o, 1), g1, "beam hypotheses cost more than greedy");
    cr_assert_eq(bench_config(&o, "huge"), SL_EINVAL);
    cr_assert(strstr(sl_errmsg(), "huge"), "%s", sl_errmsg());
    cr_assert_eq(o.H, 256, "a failed bench_config leaves the sizes alone");
}

/* ---- seqlite bench ---- */

Test(bench, train_prints_one_json_line_with_the_peer_keys)
{
    struct json_flat o;
    run_bench("train --config tiny --src-len 12 --steps 2 --warmup 1 --threads 1", "train", &o);
    expect_tiny_sizes(&o, 32);
    cr_assert_eq(jnum(&o, "threads"), 1);
    cr_assert_eq(jnum(&o, "steps"), 2);
    const double sps = jnum(&o, "steps_per_s"), tgt = jnum(&o, "tgt_tokens_per_s"), all = jnum(&o, "tokens_per_s");
    cr_assert_gt(sps, 0);
    /* the peer's definitions: steps·B·T / s and steps·B·(S + T) / s; sec = steps / steps_per_s */
    cr_assert(near(tgt, sps * 32 * 16, 1e-3, 0.1), "tgt_tokens_per_s %g, steps_per_s %g", tgt, sps);
    cr_assert(near(all, sps * 32 * (12 + 16), 1e-3, 0.1), "tokens_per_s %g, steps_per_s %g", all, sps);
    cr_assert(near(jnum(&o, "sec"), 2 / sps, 0.01, 0.002), "sec %g, steps_per_s %g", jnum(&o, "sec"), sps);
    /* a fresh model predicts ~uniformly over 2000 ids: cross-entropy near ln 2000 = 7.6 */
    cr_assert(fabs(jnum(&o, "loss_first") - log(2000.0)) < 0.5, "loss_first %g", jnum(&o, "loss_first"));
    cr_assert(fabs(jnum(&o, "loss_last") - log(2000.0)) < 0.5, "loss_last %g", jnum(&o, "loss_last"));
}

Test(bench, greedy_and_beam_print_one_json_line_with_the_peer_keys)
{
    struct json_flat g, b;
    run_bench("greedy --config tiny --src-len 12 --sentences 4 --batch 2 --warmup 1 --threads 1", "greedy", &g);
    run_bench("beam --config tiny --src-len 12 --sentences 4 --batch 2 --warmup 0 --beam 3 --threads 1", "beam", &b);
    const struct json_flat *runs[2] = {&g, &b};
    for (int i = 0; i < 2; i++) {
        const struct json_flat *o = runs[i];
        expect_tiny_sizes(o, 2);
        cr_assert_eq(jnum(o, "threads"), 1);
        cr_assert_eq(jnum(o, "sentences"), 4);
        const double sps = jnum(o, "sentences_per_s");
        cr_assert_gt(sps, 0);
        /* sentences·tgt_len / s; sec = sentences / sentences_per_s */
        cr_assert(near(jnum(o, "tgt_tokens_per_s"), sps * 16, 1e-3, 0.1), "tgt_tokens_per_s %g, sentences_per_s %g",
                  jnum(o, "tgt_tokens_per_s"), sps);
        cr_assert(near(jnum(o, "sec"), 4 / sps, 0.01, 0.002), "sec %g, sentences_per_s %g", jnum(o, "sec"), sps);
        /* the sum of 4 sentences x 16 output ids in [0, 2000) */
        const double cs = jnum(o, "checksum");
        cr_assert(is_integer(cs) && cs >= 0 && cs <= 4.0 * 16 * 1999, "checksum %g", cs);
    }
    cr_assert_eq(jnum(&g, "beam"), 1);
    cr_assert_eq(jnum(&b, "beam"), 3);
}

Test(bench, decoding_ids_do_not_depend_on_threads_and_beam_1_is_greedy)
{
    struct json_flat a, b, c;
    run_bench("greedy --config tiny --sentences 6 --batch 2 --warmup 0 --threads 1 --seed 3", "greedy", &a);
    run_bench("greedy --config tiny --sentences 6 --batch 2 --warmup 0 --threads 2 --seed 3", "greedy", &b);
    run_bench("beam --config tiny --sentences 6 --batch 2 --warmup 0 --beam 1 --threads 1 --seed 3", "beam", &c);
    cr_assert_eq(jnum(&b, "threads"), 2);
    cr_assert_eq(jnum(&a, "checksum"), jnum(&b, "checksum"), "greedy ids differ between 1 and 2 threads");
    cr_assert_eq(jnum(&a, "checksum"), jnum(&c, "checksum"), "beam 1 and greedy decode different ids");
}

/* `seqlite bench ARGS` must exit 2, print nothing on stdout and an error containing what plus the help hint
 * (not the whole usage) on stderr. */
static void expect_usage_error(const char *args, const char *what)
{
    char cmd[256], *out = NULL, *err = NULL;
    snprintf(cmd, sizeof cmd, "bench %s", args);
    int rc = th_run(cmd, NULL, &out, &err);
    cr_assert_eq(rc, 2, "seqlite %s: exit %d, want 2; stderr: %s", cmd, rc, err ? err : "");
    cr_assert(out && out[0] == 0, "seqlite %s printed on stdout: %s", cmd, out ? out : "");
    cr_assert(err && strstr(err, "seqlite: bench: "), "seqlite %s: stderr %s", cmd, err ? err : "");
    cr_assert(strstr(err, what), "seqlite %s: stderr lacks '%s': %s", cmd, what, err);
    cr_assert(strstr(err, "\nsee 'seqlite help bench'\n"), "seqlite %s: no help hint on stderr: %s", cmd, err);
    cr_assert_null(strstr(err, "usage:"), "seqlite %s: the whole usage on stderr: %s", cmd, err);
    free(out);
    free(err);
}

/* A failure is "seqlite: bench: message", the command named once (it was "seqlite: bench: bench: out of
 * memory"): a model too large to allocate. Under ASan the allocator must return NULL instead of aborting. */
Test(bench, out_of_memory_names_the_command_once)
{
    const char *asan = getenv("ASAN_OPTIONS");
    char env[512];
    snprintf(env, sizeof env, "%s%sallocator_may_return_null=1", asan ? asan : "", asan && *asan ? ":" : "");
    setenv("ASAN_OPTIONS", env, 1);
    char *out = NULL, *err = NULL;
    int rc = th_run("bench train --config tiny --src-vocab 16777216 --emb 65536 --steps 1 --warmup 0", NULL, &out,
                    &err);
    cr_assert_eq(rc, 1, "exit %d: %s", rc, err);
    /* the line may follow ASan's "failed to allocate" warnings */
    const char *line = strstr(err, "seqlite: bench: out of memory");
    cr_assert(line && (line == err || line[-1] == '\n'), "%s", err);
    cr_assert_null(strstr(err, "bench: bench:"), "%s", err);
    cr_assert_str_eq(out, "");
    free(out);
    free(err);
}

Test(bench, usage_errors_exit_2)
{
    expect_usage_error("sideways --config tiny", "unknown mode 'sideways'");
    expect_usage_error("--config tiny", "give one mode");
    expect_usage_error("train greedy --config tiny", "unexpected argument 'greedy'");
    expect_usage_error("train --config tiny --threads -1", "--threads");
    expect_usage_error("train --config tiny --threads 0", "--threads");
    expect_usage_error("beam --config tiny --beam 0", "--beam");
    expect_usage_error("train --config tiny --steps 0", "--steps");
    expect_usage_error("train --config tiny --steps many", "--steps");
    expect_usage_error("greedy --config tiny --hidden 0", "--hidden");
    expect_usage_error("train --config huge", "huge");
    expect_usage_error("greedy --config tiny --split sideways", "--split");
    expect_usage_error("train --config tiny --no-such-flag", "--no-such-flag");
    /* help is not an error */
    char *out = NULL, *err = NULL;
    cr_assert_eq(th_run("help bench", NULL, &out, &err), 0);
    cr_assert(strstr(out, "usage: seqlite bench"), "%s", out);
    free(out);
    free(err);
}

/* OpenBLAS 0.3.21 falls back to its SSE3 kernels on CPUs it does not know by model (seen: a Xeon with
 * AVX-512 behind a hypervisor, 3.9x slower training); the seqlite command then runs itself again with
 * OPENBLAS_CORETYPE set (nn/gemm.h: gemm_kernel_advice). Whatever OpenBLAS detects, on a CPU with AVX2 + FMA
 * the kernel in use is one with AVX2; a kernel the user names stands. */
static char *bench_blas(const char *env)
{
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "%s '%s' bench train --config tiny --steps 1 --warmup 0", env, SEQLITE_BIN);
    FILE *p = popen(cmd, "r");
    cr_assert_not_null(p);
    char line[4096] = "";
    cr_assert_not_null(fgets(line, sizeof line, p), "no output from: %s", cmd);
    cr_assert_eq(pclose(p), 0, "%s failed", cmd);
    char *k = strstr(line, "\"blas\": \"");
    cr_assert_not_null(k, "%s", line);
    k += 9;
    return strndup(k, strcspn(k, "\""));
}

Test(bench, the_command_runs_avx2_kernels_on_a_cpu_that_has_them)
{
    __builtin_cpu_init();
    char *named = bench_blas("OPENBLAS_CORETYPE=Prescott");
    cr_assert_str_eq(named, "Prescott", "a kernel named in OPENBLAS_CORETYPE is used as named");
    free(named);
    if (!__builtin_cpu_supports("avx2") || !__builtin_cpu_supports("fma"))
        return;
    char *core = bench_blas("env -u OPENBLAS_CORETYPE");
    static const char *const fine[] = {"Haswell", "Zen", "SkylakeX", "Cooperlake", "SapphireRapids"};
    int ok = 0;
    for (size_t i = 0; i < sizeof fine / sizeof fine[0]; i++)
        ok |= strcmp(core, fine[i]) == 0;
    cr_assert(ok, "OpenBLAS runs '%s' kernels on a CPU with AVX2 + FMA", core);
    free(core);
}
