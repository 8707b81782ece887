/* tools/bench/bench.c: the synthetic training / decoding benchmark (see bench.h).
 * Training step: K shards of the batch run s2s_loss_forward_backward in OpenMP threads (one BLAS thread
 * each) into per-shard gradient buffers; then the optimizer step of train/update.h, as training does:
 * shard sum with the global norm in one parallel pass, clipping (5.0) and Adam in a second. Nothing is
 * allocated in the timed loop.
 * ref: the PyTorch peer (workload and FLOP model, see bench.h), train/train.c. */
#include "tools/bench/bench.h"

#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "decoder/beam.h"
#include "model/seq2seq.h"
#include "nn/adam.h"
#include "nn/gemm.h"
#include "nn/proj.h"
#include "nn/params.h"
#include "train/update.h"
#include "util/clock.h"
#include "util/err.h"
#include "util/rng.h"

#define BENCH_FIRST_ID 4     /* ids 0..3 are specials */
#define BENCH_NBATCH 4       /* seeded training batches, cycled */
#define BENCH_CLIP 5.0
#define BENCH_LR 1e-3f

void bench_defaults(struct bench_opts *o)
{
    memset(o, 0, sizeof *o);
    o->mode = BENCH_TRAIN;
    bench_config(o, "base");
    o->threads = 1;
    o->steps = 10;
    o->warmup = 2;
    o->sentences = 64;
    o->K = 5;
    o->seed = 1;
}

int bench_config(struct bench_opts *o, const char *name)
{
    if (strcmp(name, "tiny") == 0) {
        o->V_src = o->V_tgt = 2000, o->E = 128, o->H = 256, o->L = 1, o->B = 32, o->S = o->T = 16;
    } else if (strcmp(name, "base") == 0) {
        o->V_src = o->V_tgt = 8000, o->E = 256, o->H = 512, o->L = 2, o->B = 64, o->S = o->T = 24;
    } else {
        return sl_err(SL_EINVAL, "unknown config '%s' (tiny or base)", name);
    }
    return 0;
}

/* sum over layers of (I_l + H) */
static double lstm_width(const struct bench_opts *o)
{
    return (double)(o->E + o->H) + (double)(o->L - 1) * 2.0 * (double)o->H;
}

double bench_train_flops(const struct bench_opts *o)
{
    const double G = 4.0 * (double)o->H, W = lstm_width(o), B = (double)o->B;
    return 3.0 * (2.0 * B * (double)o->S * G * W + 2.0 * B * (double)o->T * G * W +
                  2.0 * B * (double)o->T * (double)o->H * (double)o->V_tgt);
}

double bench_decode_flops(const struct bench_opts *o, size_t n)
{
    const double G = 4.0 * (double)o->H, W = lstm_width(o), N = (double)n;
    const double M = N * (double)(o->mode == BENCH_BEAM ? o->K : 1);
    return 2.0 * N * (double)o->S * G * W +
           (double)o->T * (2.0 * M * G * W + 2.0 * M * (double)o->H * (double)o->V_tgt);
}

static void rand_ids(struct rng *r, int32_t *x, size_t n, size_t V)
{
    for (size_t i = 0; i < n; i++)
        x[i] = (int32_t)(BENCH_FIRST_ID + rng_below(r, V - BENCH_FIRST_ID));
}

static int check_opts(const struct bench_opts *o)
{
    if (o->V_src <= BENCH_FIRST_ID || o->V_tgt <= BENCH_FIRST_ID)
        return sl_err(SL_EINVAL, "bench: vocabularies must exceed %d (ids are drawn from [4, V))", BENCH_FIRST_ID);
    if (o->B < 1 || o->S < 1 || o->T < 1 || o->threads < 1 || o->shards < 0 || o->threads > 256 ||
        o->shards > 256)
        return sl_err(SL_EINVAL, "bench: batch, lengths and threads must be >= 1 (threads, shards <= 256)");
    if (o->mode == BENCH_TRAIN && o->steps < 1)
        return sl_err(SL_EINVAL, "bench: --steps must be >= 1");
    if (o->mode != BENCH_TRAIN && (o->sentences < 1 || (o->mode == BENCH_BEAM && o->K < 1)))
        return sl_err(SL_EINVAL, "bench: --sentences and --beam must be >= 1");
    return 0;
}

/* ---- training ---- */

struct trainer {
    const struct bench_opts *o;
    const struct s2s_model *model;
    size_t N, K, nthreads;      /* parameters (buffer floats), shards, OpenMP threads */
    float *w, *m, *v;           /* (N) each */
    float **gs;                 /* (K) shard gradients (N) each; gs[0] receives the sum */
    struct s2s_workspace **ws;  /* (K) */
    int32_t *src, *tgt, *len_s, *len_t; /* (NBATCH, B, S), (NBATCH, B, T-1), (B), (B) */
    double *part;               /* (update_chunks(N)) scratch of update_sum_shards */
    int *rc;                    /* (K) */
};

static void trainer_free(struct trainer *t)
{
    param_buf_free(t->w), param_buf_free(t->m), param_buf_free(t->v);
    if (t->gs)
        for (size_t k = 0; k < t->K; k++)
            param_buf_free(t->gs[k]);
    if (t->ws)
        for (size_t k = 0; k < t->K; k++)
            s2s_workspace_free(t->ws[k]);
    free(t->gs), free(t->ws), free(t->src), free(t->tgt), free(t->len_s), free(t->len_t), free(t->part), free(t->rc);
}

/* One training step on batch i; OUT: mean token loss. */
static int train_step(struct trainer *t, size_t i, long step, double *loss)
{
    const struct bench_opts *o = t->o;
    const size_t K = t->K, N = t->N, B = o->B, S = o->S, T1 = o->T - 1;
    const size_t total = B * o->T;
    const float scale = 1.0f / (float)total;
    double shard_loss[256];
    const int32_t *src = t->src + i * B * S, *tgt = t->tgt + i * B * T1;
#pragma omp parallel for num_threads((int)t->nthreads) schedule(static, 1) if (t->nthreads > 1)
    for (size_t k = 0; k < K; k++) {
        size_t lo = k * B / K, hi = (k + 1) * B / K;
        struct s2s_batch bt = {.B = hi - lo, .S = S, .T = T1, .src = src + lo * S, .src_len = t->len_s + lo,
                               .tgt = tgt + lo * T1, .tgt_len = t->len_t + lo};
        size_t ntok = 0;
        memset(t->gs[k], 0, N * sizeof(float));
        shard_loss[k] = 0;
        t->rc[k] = s2s_loss_forward_backward(t->model, t->w, t->gs[k], t->ws[k], &bt, scale, NULL,
                                             &shard_loss[k], &ntok);
    }
    double sum = 0;
    for (size_t k = 0; k < K; k++) {
        if (t->rc[k])
            return t->rc[k];
        sum += shard_loss[k];
    }
    *loss = sum / (double)total;
    const double norm = update_sum_shards(t->gs, K, N, t->part, (int)t->nthreads);
    const float clip = isfinite(norm) && norm > BENCH_CLIP ? (float)(BENCH_CLIP / norm) : 1.0f;
    const struct adam_hparams hp = adam_defaults(BENCH_LR);
    update_adam(t->w, t->gs[0], t->m, t->v, N, clip, &hp, step, (int)t->nthreads);
    return 0;
}

static int run_train(const struct bench_opts *o, const struct s2s_model *model, struct bench_result *res)
{
    struct trainer t = {.o = o};
    t.model = model;
    int rc = 0;
    t.K = (size_t)(o->shards > 0 ? o->shards : o->threads);
    if (t.K > o->B)
        t.K = o->B;
    t.nthreads = (size_t)o->threads < t.K ? (size_t)o->threads : t.K;
    t.N = t.model->table.total;
    const size_t B = o->B, S = o->S, T1 = o->T - 1;
    t.w = param_buf_create(t.N), t.m = param_buf_create(t.N), t.v = param_buf_create(t.N);
    t.gs = calloc(t.K, sizeof *t.gs), t.ws = calloc(t.K, sizeof *t.ws), t.rc = calloc(t.K, sizeof *t.rc);
    t.src = malloc(BENCH_NBATCH * B * S * sizeof(int32_t));
    t.tgt = malloc((BENCH_NBATCH * B * T1 + 1) * sizeof(int32_t));
    t.len_s = malloc(B * sizeof(int32_t)), t.len_t = malloc(B * sizeof(int32_t));
    t.part = malloc(update_chunks(t.N) * sizeof(double));
    if (!t.w || !t.m || !t.v || !t.gs || !t.ws || !t.rc || !t.src || !t.tgt || !t.len_s || !t.len_t || !t.part) {
        rc = sl_err(SL_ENOMEM, "bench: out of memory for %zu parameters", t.N);
        goto done;
    }
    for (size_t k = 0; k < t.K; k++) {
        size_t rows = (k + 1) * B / t.K - k * B / t.K;
        t.gs[k] = param_buf_create(t.N);
        t.ws[k] = s2s_workspace_create(t.model, rows, S, T1);
        if (!t.gs[k] || !t.ws[k]) {
            rc = sl_err(SL_ENOMEM, "bench: out of memory for shard %zu", k);
            goto done;
        }
    }
    struct rng r;
    rng_seed(&r, o->seed);
    s2s_params_init(t.model, t.w, &r);
    for (size_t i = 0; i < BENCH_NBATCH; i++) {
        rand_ids(&r, t.tgt + i * B * T1, B * T1, o->V_tgt);
        rand_ids(&r, t.src + i * B * S, B * S, o->V_src);
    }
    for (size_t b = 0; b < B; b++)
        t.len_s[b] = (int32_t)S, t.len_t[b] = (int32_t)T1;
    /* shards: OpenMP threads with one BLAS thread each; one shard: BLAS gets every thread */
    gemm_set_threads(t.nthreads > 1 ? 1 : o->threads);
    double loss = 0;
    long step = 0;
    for (size_t i = 0; i < o->warmup; i++)
        if ((rc = train_step(&t, (size_t)step % BENCH_NBATCH, step + 1, &loss)))
            goto done;
        else
            step++;
    double t0 = clock_now();
    for (size_t i = 0; i < o->steps; i++) {
        if ((rc = train_step(&t, (size_t)step % BENCH_NBATCH, step + 1, &loss)))
            goto done;
        step++;
        if (i == 0)
            res->loss_first = loss;
    }
    res->sec = clock_now() - t0;
    res->loss_last = loss;
    res->steps_per_s = (double)o->steps / res->sec;
    res->tgt_tokens_per_s = res->steps_per_s * (double)(B * o->T);
    res->tokens_per_s = res->steps_per_s * (double)(B * (S + o->T));
    res->gflop = bench_train_flops(o) * (double)o->steps / 1e9;
done:
    trainer_free(&t);
    return rc;
}

/* ---- decoding ---- */

struct decoder_worker {
    struct s2s_decoder *dec;
    struct beam_search *bs;  /* beam mode */
    float *logprobs;         /* (B, V) greedy mode */
    int32_t *prev;           /* (B) */
    unsigned char *done;     /* (B) */
    long long checksum;
    int rc;
};

static int beam_cb_step(void *ctx, const int32_t *prev, size_t M, float *logprobs)
{
    return s2s_decoder_step(ctx, prev, M, logprobs);
}

static int beam_cb_reorder(void *ctx, const size_t *src, size_t M) { return s2s_decoder_reorder(ctx, src, M); }

/* Decodes one batch of B sources, every hypothesis for exactly T steps; adds the output ids of its first
 * `counted` rows to checksum (the peer sums the outputs of the first --sentences sources only). */
static int decode_batch(const struct bench_opts *o, const struct s2s_model *model, struct decoder_worker *dw,
                        const int32_t *src, const int32_t *src_len, size_t counted)
{
    const size_t B = o->B, V = o->V_tgt;
    if (o->mode == BENCH_BEAM) {
        int rc = s2s_decoder_start(dw->dec, src, src_len, B, o->S, o->K);
        if (rc)
            return rc;
        struct beam_model bm = {.ctx = dw->dec, .V = V, .bos = S2S_BOS, .eos = S2S_EOS, .pad = S2S_PAD,
                                .step = beam_cb_step, .reorder = beam_cb_reorder};
        struct beam_opts bo = {.nbest = 1, .max_len = o->T, .alpha = 0.0f, .fixed_length = 1};
        if ((rc = beam_search_run(dw->bs, &bm, B, &bo)))
            return rc;
        for (size_t j = 0; j < counted; j++) {
            size_t cnt = 0;
            const struct beam_hyp *h = beam_search_nbest(dw->bs, j, &cnt);
            for (size_t k = 0; cnt > 0 && k < h[0].len; k++)
                dw->checksum += h[0].tokens[k];
            if (cnt > 0 && h[0].finished)
                dw->checksum += S2S_EOS;
        }
        (void)model;
        return 0;
    }
    /* greedy, no early stop: a finished row continues with pad (as the peer does) */
    int rc = s2s_decoder_start(dw->dec, src, src_len, B, o->S, 1);
    if (rc)
        return rc;
    for (size_t b = 0; b < B; b++)
        dw->prev[b] = S2S_BOS, dw->done[b] = 0;
    for (size_t t = 0; t < o->T; t++) {
        if ((rc = s2s_decoder_step(dw->dec, dw->prev, B, dw->logprobs)))
            return rc;
        for (size_t b = 0; b < B; b++) {
            const float *z = dw->logprobs + b * V;
            const size_t best = proj_argmax(z, V);
            int32_t tok = dw->done[b] ? S2S_PAD : (int32_t)best;
            dw->done[b] |= tok == S2S_EOS;
            dw->prev[b] = tok;
            if (b < counted)
                dw->checksum += tok;
        }
    }
    return 0;
}

static int run_decode(const struct bench_opts *o, const struct s2s_model *model, struct bench_result *res)
{
    const size_t B = o->B, S = o->S, V = o->V_tgt;
    const size_t nb = (o->sentences + B - 1) / B;
    const int split = o->threads > 1 && o->split == BENCH_SPLIT_BATCHES;
    const size_t nw = split ? (size_t)o->threads : 1;
    int rc = 0;
    float *w = param_buf_create(model->table.total);
    int32_t *src = malloc(nb * B * S * sizeof(int32_t)), *len = malloc(B * sizeof(int32_t));
    struct decoder_worker *dw = calloc(nw, sizeof *dw);
    struct s2s_packed *pk = NULL;
    if (!w || !src || !len || !dw) {
        rc = sl_err(SL_ENOMEM, "bench: out of memory");
        goto done;
    }
    struct rng r;
    rng_seed(&r, o->seed);
    s2s_params_init(model, w, &r);
    rand_ids(&r, src, nb * B * S, o->V_src);
    if (!(pk = s2s_packed_create(model, w))) { /* once, as translate does: loading the model */
        rc = SL_ENOMEM;
        goto done;
    }
    for (size_t i = 0; i < nw; i++) {
        dw[i].dec = s2s_decoder_create(model, w, pk);
        dw[i].prev = malloc(B * sizeof(int32_t));
        dw[i].done = malloc(B);
        if (o->mode == BENCH_BEAM)
            dw[i].bs = beam_search_create(B, o->K, V, o->T);
        else
            dw[i].logprobs = param_buf_create(B * V);
        if (!dw[i].dec || !dw[i].prev || !dw[i].done || (o->mode == BENCH_BEAM ? !dw[i].bs : !dw[i].logprobs)) {
            rc = sl_err(SL_ENOMEM, "bench: out of memory for a decoder");
            goto done;
        }
    }
    for (size_t b = 0; b < B; b++)
        len[b] = (int32_t)S;
    gemm_set_threads(split ? 1 : o->threads);
    /* warmup: every worker decodes `warmup` batches (its buffers grow here, not in the timed part) */
#pragma omp parallel for num_threads((int)nw) schedule(static, 1) if (nw > 1)
    for (size_t i = 0; i < nw; i++)
        for (size_t j = 0; j < o->warmup && !dw[i].rc; j++)
            dw[i].rc = decode_batch(o, model, &dw[i], src + ((i + j) % nb) * B * S, len, B);
    for (size_t i = 0; i < nw; i++) {
        if ((rc = dw[i].rc))
            goto done;
        dw[i].checksum = 0;
    }
    double t0 = clock_now();
#pragma omp parallel for num_threads((int)nw) schedule(static, 1) if (nw > 1)
    for (size_t j = 0; j < nb; j++) {
        struct decoder_worker *d = &dw[omp_get_thread_num()];
        if (!d->rc)
            d->rc = decode_batch(o, model, d, src + j * B * S, len,
                                 o->sentences - j * B < B ? o->sentences - j * B : B);
    }
    res->sec = clock_now() - t0;
    res->checksum = 0;
    for (size_t i = 0; i < nw; i++) {
        if ((rc = dw[i].rc))
            goto done;
        res->checksum += dw[i].checksum;
    }
    res->sentences_per_s = (double)o->sentences / res->sec;
    res->tgt_tokens_per_s = res->sentences_per_s * (double)o->T;
    res->gflop = bench_decode_flops(o, nb * B) / 1e9;
done:
    if (dw)
        for (size_t i = 0; i < nw; i++) {
            s2s_decoder_free(dw[i].dec);
            beam_search_free(dw[i].bs);
            param_buf_free(dw[i].logprobs);
            free(dw[i].prev), free(dw[i].done);
        }
    free(dw), free(src), free(len);
    s2s_packed_free(pk);
    param_buf_free(w);
    return rc;
}

int bench_run(const struct bench_opts *o, struct bench_result *res)
{
    memset(res, 0, sizeof *res);
    int rc = check_opts(o);
    if (rc)
        return rc;
    struct s2s_config cfg = {.V_src = o->V_src, .V_tgt = o->V_tgt, .E = o->E, .H = o->H, .L = o->L};
    struct s2s_model model;
    if ((rc = s2s_model_init(&model, &cfg)))
        return rc;
    rc = o->mode == BENCH_TRAIN ? run_train(o, &model, res) : run_decode(o, &model, res);
    s2s_model_free(&model);
    return rc;
}
