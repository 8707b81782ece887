/* tools/bench/bench.c: the synthetic training / decoding benchmark (see bench.h).
 * Training step: n_shards row ranges of the batch run s2s_loss_forward_backward as jobs on OpenMP threads
 * (util/jobs.h; one BLAS thread each) into per-shard gradient buffers; then the optimizer step of
 * train/update.h, as training does: shard sum with the global norm in one parallel pass, clipping (5.0)
 * and Adam in a second. Decoding, greedy and beam alike, is beam search (decoder/beam.h; greedy is beam 1)
 * in its fixed-length mode, batches of sentences as jobs. Nothing is allocated in the timed loops.
 * ref: the PyTorch peer (workload and FLOP model, see bench.h), train/train.c. */
#include "tools/bench/bench.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "decoder/beam.h"
#include "model/seq2seq.h"
#include "nn/adam.h"
#include "nn/autocast.h"
#include "nn/gemm.h"
#include "nn/params.h"
#include "tokenizer/special.h"
#include "train/update.h"
#include "util/clock.h"
#include "util/err.h"
#include "util/jobs.h"
#include "util/rng.h"

#define BENCH_FIRST_ID BPE_N_SPECIAL /* random ids skip the specials */
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
        o->V_src = o->V_tgt = 2000, o->E = 128, o->H = 256, o->L = 1, o->B = 32, o->S = o->T1 = 16;
    } else if (strcmp(name, "base") == 0) {
        o->V_src = o->V_tgt = 8000, o->E = 256, o->H = 512, o->L = 2, o->B = 64, o->S = o->T1 = 24;
    } else {
        return sl_err(SL_EINVAL, "unknown config '%s' (tiny or base)", name);
    }
    return 0;
}

/* The FLOP model (GEMMs and the attention's matrix-vector products; the LSTM cells, softmax and Adam are
 * left out, ~1% of the total). Notation of bench.h: B rows, S source, T1 decoder steps, E, H, L, V_tgt.
 *   encoder, uni:  2 B S 4H sum_l (I_l + H)             I_0 = E, I_l = H
 *   encoder, bi:   per layer two LSTMs of H/2: 2 * 2 B S 2H (I_l + H/2)
 *   decoder:       2 B T1 4H sum_l (J_l + H)            J_0 = E (+ H with input feeding), J_l = H
 *   attention keys, once per batch: general 2 S B H H, mlp 2 S B A H (A = H), dot none
 *   attention per step: scores 2 B S H (dot, general) or W_2 h_t 2 B A H + v.tanh(K + q) 3 B S A (mlp);
 *                  context 2 B S H; W_c [c; h] 2 B 2H H
 *   output layer:  2 B T1 H V
 * Training counts the forward and twice it for the backward (input and weight gradients), as the peer's
 * FLOP model does; decoding runs the encoder and keys once per batch of n sentences and every step for
 * M = n (greedy) or n K (beam) rows. */
static double enc_flops(const struct bench_opts *o, double rows)
{
    const double E = (double)o->E, H = (double)o->H, S = (double)o->S;
    double f = 0;
    for (size_t l = 0; l < o->L; l++) {
        double I = l == 0 ? E : H;
        f += o->bidirectional ? 2.0 * 2.0 * rows * S * 2.0 * H * (I + H / 2.0)
                              : 2.0 * rows * S * 4.0 * H * (I + H);
    }
    return f;
}

static double keys_flops(const struct bench_opts *o, double rows)
{
    const double H = (double)o->H, S = (double)o->S;
    return o->attention == ATTN_GENERAL || o->attention == ATTN_MLP ? 2.0 * S * rows * H * H : 0.0;
}

/* One decoder step of `rows` rows: the LSTM stack, attention and the output layer. */
static double step_flops(const struct bench_opts *o, double rows)
{
    const double E = (double)o->E, H = (double)o->H, S = (double)o->S, V = (double)o->V_tgt;
    const int att = o->attention != ATTN_NONE;
    double f = 0;
    for (size_t l = 0; l < o->L; l++)
        f += 2.0 * rows * 4.0 * H * ((l == 0 ? E + (att ? H : 0.0) : H) + H);
    if (att) {
        f += o->attention == ATTN_MLP ? 2.0 * rows * H * H + 3.0 * rows * S * H : 2.0 * rows * S * H;
        f += 2.0 * rows * S * H + 2.0 * rows * 2.0 * H * H;
    }
    return f + 2.0 * rows * H * V;
}

double bench_train_flops(const struct bench_opts *o)
{
    const double B = (double)o->B;
    return 3.0 * (enc_flops(o, B) + keys_flops(o, B) + (double)o->T1 * step_flops(o, B));
}

double bench_decode_flops(const struct bench_opts *o, size_t n)
{
    const double sent = (double)n;
    const double M = sent * (double)(o->mode == BENCH_BEAM ? o->K : 1);
    return enc_flops(o, sent) + keys_flops(o, sent) + (double)o->T1 * step_flops(o, M);
}

static void rand_ids(struct rng *r, int32_t *x, size_t n, size_t V)
{
    for (size_t i = 0; i < n; i++)
        x[i] = (int32_t)(BENCH_FIRST_ID + rng_below(r, V - BENCH_FIRST_ID));
}

static int check_opts(const struct bench_opts *o)
{
    if (o->V_src <= BENCH_FIRST_ID || o->V_tgt <= BENCH_FIRST_ID)
        return sl_err(SL_EINVAL, "vocabularies must exceed %d (ids are drawn from [4, V))", BENCH_FIRST_ID);
    if (o->B < 1 || o->S < 1 || o->T1 < 1 || o->threads < 1 || o->shards < 0 || o->threads > 256 ||
        o->shards > 256)
        return sl_err(SL_EINVAL, "batch, lengths and threads must be >= 1 (threads, shards <= 256)");
    if (o->mode == BENCH_TRAIN && o->steps < 1)
        return sl_err(SL_EINVAL, "--steps must be >= 1");
    if (o->mode != BENCH_TRAIN && (o->sentences < 1 || (o->mode == BENCH_BEAM && o->K < 1)))
        return sl_err(SL_EINVAL, "--sentences and --beam must be >= 1");
    return 0;
}

/* ---- training ---- */

/* Targets have T = T1 - 1 tokens (nn/dims.h): with EOS the decoder predicts T1 of them. */
struct trainer {
    const struct bench_opts *o;
    const struct s2s_model *model;
    size_t n_params, n_shards, nthreads; /* floats per buffer, row ranges of a batch, OpenMP threads */
    float *w, *m, *v;           /* (n_params) each */
    float **gs;                 /* (n_shards) shard gradients (n_params) each; gs[0] receives the sum */
    struct s2s_workspace **ws;  /* (n_shards) */
    int32_t *src, *tgt, *len_s, *len_t; /* (NBATCH, B, S), (NBATCH, B, T), (B), (B) */
    double *part;               /* (update_chunks(n_params)) scratch of update_sum_shards */
    double *shard_loss;         /* (n_shards) */
    const int32_t *bsrc, *btgt; /* the batch of the current step: (B, S), (B, T) */
    float scale;                /* 1 / the batch's loss tokens */
    struct autocast *ac;        /* o->bf16 */
};

static void trainer_free(struct trainer *t)
{
    param_buf_free(t->w), param_buf_free(t->m), param_buf_free(t->v);
    if (t->gs)
        for (size_t k = 0; k < t->n_shards; k++)
            param_buf_free(t->gs[k]);
    if (t->ws)
        for (size_t k = 0; k < t->n_shards; k++)
            s2s_workspace_free(t->ws[k]);
    free(t->gs), free(t->ws), free(t->src), free(t->tgt), free(t->len_s), free(t->len_t), free(t->part);
    free(t->shard_loss);
}

/* Job k of a step: forward and backward of shard k (rows [k·B/n_shards, (k+1)·B/n_shards)) into gs[k]. */
static int shard_job(void *ctx, size_t k, int thread)
{
    struct trainer *t = ctx;
    const size_t B = t->o->B, S = t->o->S, T = t->o->T1 - 1;
    size_t lo = k * B / t->n_shards, hi = (k + 1) * B / t->n_shards, ntok = 0;
    struct s2s_batch bt = {.B = hi - lo, .S = S, .T = T, .src = t->bsrc + lo * S, .src_len = t->len_s + lo,
                           .tgt = t->btgt + lo * T, .tgt_len = t->len_t + lo};
    (void)thread;
    memset(t->gs[k], 0, t->n_params * sizeof(float));
    t->shard_loss[k] = 0;
    return s2s_loss_forward_backward(t->model, t->w, t->gs[k], t->ws[k], &bt, t->scale, NULL, &t->shard_loss[k],
                                     &ntok);
}

/* One training step on batch i; OUT: mean token loss. */
static int train_step(struct trainer *t, size_t i, long step, double *loss)
{
    const struct bench_opts *o = t->o;
    const size_t n_shards = t->n_shards, n_params = t->n_params, B = o->B, S = o->S, T = o->T1 - 1;
    const size_t total = B * o->T1; /* every row: T tokens and EOS */
    t->scale = 1.0f / (float)total;
    t->bsrc = t->src + i * B * S, t->btgt = t->tgt + i * B * T;
    int rc = jobs_run(n_shards, (int)t->nthreads, JOBS_STATIC, shard_job, t);
    if (rc)
        return rc;
    double sum = 0;
    for (size_t k = 0; k < n_shards; k++)
        sum += t->shard_loss[k];
    *loss = sum / (double)total;
    const double norm = update_sum_shards(t->gs, n_shards, n_params, t->part, (int)t->nthreads);
    const float clip = isfinite(norm) && norm > BENCH_CLIP ? (float)(BENCH_CLIP / norm) : 1.0f;
    const struct adam_hparams hp = adam_defaults(BENCH_LR);
    update_adam(t->w, t->gs[0], t->m, t->v, n_params, clip, &hp, step, (int)t->nthreads);
    if (t->ac) { /* as train does */
        autocast_weights_changed(t->ac);
        autocast_refresh(t->ac, (int)t->nthreads);
    }
    return 0;
}

static int run_train(const struct bench_opts *o, const struct s2s_model *model, struct bench_result *res)
{
    struct trainer t = {.o = o};
    t.model = model;
    int rc = 0;
    t.n_shards = (size_t)(o->shards > 0 ? o->shards : o->threads);
    if (t.n_shards > o->B)
        t.n_shards = o->B;
    t.nthreads = (size_t)o->threads < t.n_shards ? (size_t)o->threads : t.n_shards;
    t.n_params = t.model->table.total;
    const size_t B = o->B, S = o->S, T = o->T1 - 1;
    t.w = param_buf_create(t.n_params), t.m = param_buf_create(t.n_params), t.v = param_buf_create(t.n_params);
    t.gs = calloc(t.n_shards, sizeof *t.gs), t.ws = calloc(t.n_shards, sizeof *t.ws);
    t.shard_loss = calloc(t.n_shards, sizeof *t.shard_loss);
    t.src = malloc(BENCH_NBATCH * B * S * sizeof(int32_t));
    t.tgt = malloc((BENCH_NBATCH * B * T + 1) * sizeof(int32_t));
    t.len_s = malloc(B * sizeof(int32_t)), t.len_t = malloc(B * sizeof(int32_t));
    t.part = malloc(update_chunks(t.n_params) * sizeof(double));
    if (!t.w || !t.m || !t.v || !t.gs || !t.ws || !t.shard_loss || !t.src || !t.tgt || !t.len_s || !t.len_t ||
        !t.part) {
        rc = sl_err(SL_ENOMEM, "out of memory for %zu parameters", t.n_params);
        goto done;
    }
    for (size_t k = 0; k < t.n_shards; k++) {
        size_t rows = (k + 1) * B / t.n_shards - k * B / t.n_shards;
        t.gs[k] = param_buf_create(t.n_params);
        t.ws[k] = s2s_workspace_create(t.model, rows, S, T);
        if (!t.gs[k] || !t.ws[k]) {
            rc = sl_err(SL_ENOMEM, "out of memory for shard %zu", k);
            goto done;
        }
    }
    struct rng r;
    rng_seed(&r, o->seed);
    s2s_params_init(t.model, t.w, &r);
    for (size_t i = 0; i < BENCH_NBATCH; i++) {
        rand_ids(&r, t.tgt + i * B * T, B * T, o->V_tgt);
        rand_ids(&r, t.src + i * B * S, B * S, o->V_src);
    }
    for (size_t b = 0; b < B; b++)
        t.len_s[b] = (int32_t)S, t.len_t[b] = (int32_t)T;
    /* shards: OpenMP threads with one BLAS thread each; one shard: BLAS gets every thread */
    gemm_set_threads(t.nthreads > 1 ? 1 : o->threads);
    if (o->precision && !(t.ac = autocast_create((enum precision)o->precision, t.w, t.n_params, t.nthreads > 1 ? 1 : o->threads))) {
        rc = SL_EINVAL;
        goto done;
    }
    autocast_use(t.ac);
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
    res->tgt_tokens_per_s = res->steps_per_s * (double)(B * o->T1);
    res->tokens_per_s = res->steps_per_s * (double)(B * (S + o->T1));
    res->gflop = bench_train_flops(o) * (double)o->steps / 1e9;
done:
    autocast_free(t.ac);
    trainer_free(&t);
    return rc;
}

/* ---- decoding ---- */

struct decoder_worker {
    struct s2s_decoder *dec;
    struct beam_search *bs;  /* beam width 1 for greedy */
    long long checksum;
};

/* The decoding jobs: the workers (one per thread), the sources and which batches a job decodes. */
struct decode_run {
    const struct bench_opts *o;
    struct decoder_worker *dw; /* (n_workers) */
    const int32_t *src;        /* (nb, B, S) */
    const int32_t *len;        /* (B) */
    size_t nb;
};

static int beam_cb_step(void *ctx, const int32_t *prev, size_t M, float *logprobs)
{
    return s2s_decoder_step(ctx, prev, M, logprobs);
}

static int beam_cb_reorder(void *ctx, const size_t *src, size_t M) { return s2s_decoder_reorder(ctx, src, M); }

/* Decodes one batch of B sources by beam search (width 1 for greedy) in fixed-length mode: every
 * hypothesis runs exactly T1 steps, EOS ignored (as the peer does). Adds the output ids of the first
 * `counted` rows to checksum, EOS included, pads after it as 0 (the peer sums the outputs of the first
 * --sentences sources only). */
static int decode_batch(const struct bench_opts *o, struct decoder_worker *dw, const int32_t *src,
                        const int32_t *src_len, size_t counted)
{
    const size_t K = o->mode == BENCH_BEAM ? o->K : 1;
    int rc = s2s_decoder_start(dw->dec, src, src_len, o->B, o->S, K);
    if (rc)
        return rc;
    struct beam_model bm = {.ctx = dw->dec, .V = o->V_tgt, .bos = BPE_BOS, .eos = BPE_EOS, .pad = BPE_PAD,
                            .step = beam_cb_step, .reorder = beam_cb_reorder};
    struct beam_opts bo = {.nbest = 1, .max_len = o->T1, .alpha = 0.0f, .fixed_length = 1};
    if ((rc = beam_search_run(dw->bs, &bm, o->B, &bo)))
        return rc;
    for (size_t j = 0; j < counted; j++) {
        size_t cnt = 0;
        const struct beam_hyp *h = beam_search_nbest(dw->bs, j, &cnt);
        for (size_t k = 0; cnt > 0 && k < h[0].len; k++)
            dw->checksum += h[0].tokens[k];
        if (cnt > 0 && h[0].finished)
            dw->checksum += BPE_EOS;
    }
    return 0;
}

/* Warmup job i: worker i decodes `warmup` batches (its buffers grow here, not in the timed part). */
static int warmup_job(void *ctx, size_t i, int thread)
{
    const struct decode_run *dr = ctx;
    const size_t B = dr->o->B, S = dr->o->S;
    (void)thread;
    for (size_t j = 0; j < dr->o->warmup; j++) {
        int rc = decode_batch(dr->o, &dr->dw[i], dr->src + ((i + j) % dr->nb) * B * S, dr->len, B);
        if (rc)
            return rc;
    }
    return 0;
}

/* Timed job j: batch j, decoded by the worker of the thread running it. */
static int batch_job(void *ctx, size_t j, int thread)
{
    const struct decode_run *dr = ctx;
    const size_t B = dr->o->B, S = dr->o->S, left = dr->o->sentences - j * B;
    return decode_batch(dr->o, &dr->dw[thread], dr->src + j * B * S, dr->len, left < B ? left : B);
}

static int run_decode(const struct bench_opts *o, const struct s2s_model *model, struct bench_result *res)
{
    const size_t B = o->B, S = o->S, V = o->V_tgt, K = o->mode == BENCH_BEAM ? o->K : 1;
    const size_t nb = (o->sentences + B - 1) / B;
    const int split = o->threads > 1 && o->split == BENCH_SPLIT_BATCHES;
    const size_t nw = split ? (size_t)o->threads : 1;
    int rc = 0;
    float *w = param_buf_create(model->table.total);
    int32_t *src = malloc(nb * B * S * sizeof(int32_t)), *len = malloc(B * sizeof(int32_t));
    struct decoder_worker *dw = calloc(nw, sizeof *dw);
    struct s2s_packed *pk = NULL;
    struct autocast *ac = NULL;
    if (!w || !src || !len || !dw) {
        rc = sl_err(SL_ENOMEM, "out of memory");
        goto done;
    }
    struct rng r;
    rng_seed(&r, o->seed);
    s2s_params_init(model, w, &r);
    rand_ids(&r, src, nb * B * S, o->V_src);
    /* once, as translate does: loading the model (bf16 / int8: none, the autocast's copies instead) */
    if (!(pk = s2s_packed_create(model, w, !o->precision))) {
        rc = SL_ENOMEM;
        goto done;
    }
    for (size_t i = 0; i < nw; i++) {
        dw[i].dec = s2s_decoder_create(model, w, pk);
        dw[i].bs = beam_search_create(B, K, V, o->T1);
        if (!dw[i].dec || !dw[i].bs) {
            rc = sl_err(SL_ENOMEM, "out of memory for a decoder");
            goto done;
        }
    }
    for (size_t b = 0; b < B; b++)
        len[b] = (int32_t)S;
    gemm_set_threads(split ? 1 : o->threads);
    if (o->precision && !(ac = autocast_create((enum precision)o->precision, w, model->table.total, split ? 1 : o->threads))) {
        rc = SL_EINVAL;
        goto done;
    }
    autocast_use(ac);
    struct decode_run dr = {.o = o, .dw = dw, .src = src, .len = len, .nb = nb};
    if ((rc = jobs_run(nw, (int)nw, JOBS_STATIC, warmup_job, &dr)))
        goto done;
    for (size_t i = 0; i < nw; i++)
        dw[i].checksum = 0;
    double t0 = clock_now();
    rc = jobs_run(nb, (int)nw, JOBS_STATIC, batch_job, &dr);
    res->sec = clock_now() - t0;
    if (rc)
        goto done;
    res->checksum = 0;
    for (size_t i = 0; i < nw; i++)
        res->checksum += dw[i].checksum;
    res->sentences_per_s = (double)o->sentences / res->sec;
    res->tgt_tokens_per_s = res->sentences_per_s * (double)o->T1;
    res->gflop = bench_decode_flops(o, nb * B) / 1e9;
done:
    if (dw)
        for (size_t i = 0; i < nw; i++) {
            s2s_decoder_free(dw[i].dec);
            beam_search_free(dw[i].bs);
        }
    free(dw), free(src), free(len);
    autocast_free(ac);
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
    struct s2s_config cfg = {.V_src = o->V_src, .V_tgt = o->V_tgt, .E = o->E, .H = o->H, .L = o->L,
                             .attention = (enum attn_score)o->attention, .bidirectional = o->bidirectional};
    struct s2s_model model;
    if ((rc = s2s_model_init(&model, &cfg)))
        return rc;
    rc = o->mode == BENCH_TRAIN ? run_train(o, &model, res) : run_decode(o, &model, res);
    s2s_model_free(&model);
    return rc;
}
