/* model/seq2seq.c: the model API over encoder/, decoder/ and nn/ (see seq2seq.h).
 * A workspace holds two arenas: `batch` (encoder and decoder activations and loss buffers of one batch,
 * carved afresh for each batch's (B, S, T) and grown when a batch needs more) and `step` (scratch of a
 * decoding step for M rows). Nothing is allocated once the arenas are large enough. */
#include "model/seq2seq.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "decoder/attn_stack.h"
#include "encoder/encoder.h"
#include "nn/arena.h"
#include "nn/autocast.h"
#include "nn/embed.h"
#include "nn/gemm.h"
#include "nn/lstm.h"
#include "nn/proj.h"
#include "util/err.h"
#include "util/vec.h"

#ifndef S2S_CHUNK
#define S2S_CHUNK 512 /* projection rows per chunk: (512, V) logits; nearby sizes ran no differently */
#endif

struct s2s_workspace {
    struct arena batch;
    struct arena step;
    struct stack_acts enc, dec;   /* enc: unidirectional; dec: without attention */
    struct bistack_acts benc;     /* the bidirectional encoder */
    struct attn_stack_acts adec;  /* the decoder with attention */
    int32_t *dlens;               /* (B) decoder steps per row (attention) */
    float *dHs;                   /* (S, B, H) gradient w.r.t. the encoder's top states (attention) */
    struct dec_loss_ws loss;
    float *h0, *c0;   /* (L, B, H) encoder final states = decoder initial states */
    float *dh0, *dc0; /* (L, B, H) their gradients */
    float *step_scratch;
};

/* The weights decoding multiplies few rows at a time, packed (nn/gemm.h): dec.lstm<l>.W at p + lstm[l],
 * out.W at p + out, and the recurrent part of enc.lstm<l>.W (lstm_pack_recurrent) at p + enc[l]. */
struct s2s_packed {
    const struct s2s_model *m;
    const float *w;
    float *p;
    size_t lstm[NN_MAX_LAYERS], out, enc[NN_MAX_LAYERS], att; /* enc: unidirectional encoders only */
};

struct s2s_decoder {
    const struct s2s_model *m;
    const float *w;
    struct s2s_workspace *ws;
    size_t M, cap;
    float *h, *c, *h2, *c2; /* (L, cap, H) */
    const struct s2s_packed *pk; /* the packed weights: shared, or own (re-packed by every start) */
    struct s2s_packed *own;
    float *scr; /* (cap) rows of step scratch: x (E) + lstm_step_packed_floats */
    /* attention: the encoded sources and each hypothesis's source row and fed h~ */
    const float *Hs;            /* (S, B_src, H) the encoder's top states (in the workspace) */
    const int32_t *src_len;     /* (B_src) */
    size_t S, B_src;
    float *keys;                /* (S, B_src, KW) attn_keys_forward */
    size_t keys_cap;
    int32_t *row, *row2;        /* (cap) source row of each hypothesis */
    float *feed, *feed2;        /* (cap, H) h~ of the previous step */
    float *ascr;                /* attn_stack_step_floats(M, S) */
    size_t ascr_cap;
    int track;                  /* s2s_decoder_track_align */
    float *aw;                  /* (M, S) the last step's attention weights (tracking) */
    size_t aw_cap;
    int32_t *apos;              /* (M) their argmax source positions (tracking) */
    size_t apos_cap;
};

/* ---- model ---- */

static int add_view(struct s2s_model *m, size_t *off, const char *name, int ndim, size_t d0, size_t d1)
{
    size_t shape[2] = {d0, d1};
    int rc = param_table_add(&m->table, name, ndim, shape);
    if (rc == 0)
        *off = m->table.views[m->table.n - 1].offset;
    return rc;
}

static int add_stack(struct s2s_model *m, struct stack_layout *lay, const char *side, size_t V, size_t I0)
{
    const struct s2s_config *c = &m->cfg;
    char name[PARAM_NAME_MAX];
    lay->V = V, lay->E = c->E, lay->H = c->H, lay->L = c->L;
    snprintf(name, sizeof name, "%s.emb", side);
    int rc = add_view(m, &lay->emb, name, 2, V, c->E);
    for (size_t l = 0; l < c->L && rc == 0; l++) {
        snprintf(name, sizeof name, "%s.lstm%zu.W", side, l);
        rc = add_view(m, &lay->W[l], name, 2, 4 * c->H, (l ? c->H : I0) + c->H);
        if (rc == 0) {
            snprintf(name, sizeof name, "%s.lstm%zu.b", side, l);
            rc = add_view(m, &lay->b[l], name, 1, 4 * c->H, 1);
        }
    }
    return rc;
}

int s2s_model_init(struct s2s_model *m, const struct s2s_config *cfg)
{
    memset(m, 0, sizeof *m);
    param_table_init(&m->table);
    const size_t big = (size_t)1 << 24;
    if (cfg->V_src < 1 || cfg->V_tgt <= BPE_EOS || cfg->V_src > big || cfg->V_tgt > big)
        return sl_err(SL_EINVAL, "model: vocabulary sizes %zu / %zu (need 1..%zu source, %d..%zu target)",
                      cfg->V_src, cfg->V_tgt, big, BPE_EOS + 1, big);
    if (cfg->E < 1 || cfg->H < 1 || cfg->E > 65536 || cfg->H > 65536)
        return sl_err(SL_EINVAL, "model: embedding %zu / hidden %zu outside 1..65536", cfg->E, cfg->H);
    if (cfg->L < 1 || cfg->L > NN_MAX_LAYERS)
        return sl_err(SL_EINVAL, "model: %zu layers (1..%d allowed)", cfg->L, NN_MAX_LAYERS);
    if (!(cfg->dropout >= 0.0f && cfg->dropout < 1.0f))
        return sl_err(SL_EINVAL, "model: dropout %g outside [0, 1)", (double)cfg->dropout);
    if (!(cfg->label_smoothing >= 0.0f && cfg->label_smoothing < 1.0f))
        return sl_err(SL_EINVAL, "model: label smoothing %g outside [0, 1)", (double)cfg->label_smoothing);
    if ((unsigned)cfg->attention > ATTN_MLP)
        return sl_err(SL_EINVAL, "model: attention %d unknown", (int)cfg->attention);
    if (cfg->bidirectional && cfg->H % 2)
        return sl_err(SL_EINVAL, "model: a bidirectional encoder needs an even hidden width (each direction H/2), "
                                 "not %zu", cfg->H);
    m->cfg = *cfg;
    const int att = cfg->attention != ATTN_NONE;
    int rc = cfg->bidirectional ? bistack_table_add(&m->benc, &m->table, "enc", cfg->V_src, cfg->E, cfg->H, cfg->L)
                                : add_stack(m, &m->enc, "enc", cfg->V_src, cfg->E);
    if (rc == 0)
        rc = add_stack(m, &m->dec, "dec", cfg->V_tgt, att ? cfg->E + cfg->H : cfg->E);
    if (rc == 0 && att)
        rc = attn_layout_add(&m->att, &m->table, "att", cfg->attention, cfg->H, cfg->H);
    m->out.V = cfg->V_tgt, m->out.H = cfg->H;
    m->out.label_smoothing = cfg->label_smoothing;
    if (rc == 0)
        rc = add_view(m, &m->out.W, "out.W", 2, cfg->V_tgt, cfg->H);
    if (rc == 0)
        rc = add_view(m, &m->out.b, "out.b", 1, cfg->V_tgt, 1);
    if (rc)
        s2s_model_free(m);
    return rc;
}

void s2s_model_free(struct s2s_model *m) { param_table_free(&m->table); }

void s2s_params_init(const struct s2s_model *m, float *w, struct rng *r)
{
    memset(w, 0, m->table.total * sizeof(float));
    for (size_t i = 0; i < m->table.n; i++)
        param_init_uniform(w + m->table.views[i].offset, m->table.views[i].size, S2S_INIT_SCALE, r);
    const size_t H = m->cfg.H;
    for (size_t l = 0; l < m->cfg.L; l++)
        for (size_t j = 0; j < H; j++) { /* gate order i f g o: f is rows H..2H-1 */
            if (!m->cfg.bidirectional)
                w[m->enc.b[l] + H + j] = 1.0f;
            w[m->dec.b[l] + H + j] = 1.0f;
        }
    const size_t Hd = H / 2; /* the bidirectional encoder: rows Hd..2Hd-1 of each direction */
    for (size_t l = 0; m->cfg.bidirectional && l < m->cfg.L; l++)
        for (int dir = 0; dir < 2; dir++)
            for (size_t j = 0; j < Hd; j++)
                w[m->benc.b[l][dir] + Hd + j] = 1.0f;
}

/* ---- workspace ---- */

static void layout_batch(struct s2s_workspace *ws, const struct s2s_model *m, struct arena *ar, size_t B, size_t S,
                         size_t T, int with_dec)
{
    const size_t LBH = m->cfg.L * B * m->cfg.H;
    const int att = m->cfg.attention != ATTN_NONE;
    if (m->cfg.bidirectional)
        bistack_acts_carve(&ws->benc, ar, &m->benc, S, B);
    else
        stack_acts_carve(&ws->enc, ar, &m->enc, S, B);
    if (with_dec) {
        if (att) {
            attn_stack_acts_carve(&ws->adec, ar, &m->dec, &m->att, T + 1, B, S);
            ws->dlens = arena_take(ar, B * sizeof(int32_t));
            ws->dHs = arena_take(ar, S * B * m->cfg.H * sizeof(float));
        } else {
            stack_acts_carve(&ws->dec, ar, &m->dec, T + 1, B);
        }
        dec_loss_carve(&ws->loss, ar, T + 1, B, m->cfg.H, m->cfg.V_tgt, S2S_CHUNK);
        ws->h0 = arena_take(ar, LBH * sizeof(float));
        ws->c0 = arena_take(ar, LBH * sizeof(float));
        ws->dh0 = arena_take(ar, LBH * sizeof(float));
        ws->dc0 = arena_take(ar, LBH * sizeof(float));
    }
}

/* The encoder's inputs (ids (S, B), lens (B)), its top states (S, B, H) after a forward, whichever kind. */
static int32_t *enc_ids(const struct s2s_model *m, struct s2s_workspace *ws)
{
    return m->cfg.bidirectional ? ws->benc.ids : ws->enc.ids;
}

static int32_t *enc_lens(const struct s2s_model *m, struct s2s_workspace *ws)
{
    return m->cfg.bidirectional ? ws->benc.lens : ws->enc.lens;
}

static const float *enc_top(const struct s2s_model *m, const struct s2s_workspace *ws)
{
    return m->cfg.bidirectional ? bistack_top(&m->benc, &ws->benc) : enc_top_states(&m->enc, &ws->enc);
}

/* Encoder forward of the loaded sources (dropout p), final states (L, B, H) into h, c. */
static void enc_run(const struct s2s_model *m, const float *w, struct s2s_workspace *ws, float p, struct rng *r,
                    float *h, float *c)
{
    if (m->cfg.bidirectional) {
        bistack_forward(&m->benc, w, &ws->benc, p, r);
        const size_t LBH = m->cfg.L * ws->benc.B * m->cfg.H;
        memcpy(h, bistack_final_h(&ws->benc, 0), LBH * sizeof(float)); /* (L, B, H) contiguous */
        memcpy(c, bistack_final_c(&ws->benc, 0), LBH * sizeof(float));
    } else {
        enc_forward(&m->enc, w, &ws->enc, p, r);
        enc_final_state(&m->enc, &ws->enc, h, c);
    }
}

static int prepare_batch(struct s2s_workspace *ws, const struct s2s_model *m, size_t B, size_t S, size_t T,
                         int with_dec)
{
    struct arena measure = {0};
    layout_batch(ws, m, &measure, B, S, T, with_dec);
    int rc = arena_reserve(&ws->batch, measure.used);
    if (rc)
        return rc;
    layout_batch(ws, m, &ws->batch, B, S, T, with_dec);
    return 0;
}

static int prepare_step(struct s2s_workspace *ws, const struct s2s_model *m, size_t M)
{
    size_t bytes = stack_step_floats(&m->dec, M) * sizeof(float);
    int rc = arena_reserve(&ws->step, bytes);
    if (rc)
        return rc;
    ws->step_scratch = arena_take(&ws->step, bytes);
    return 0;
}

struct s2s_workspace *s2s_workspace_create(const struct s2s_model *m, size_t max_B, size_t max_S, size_t max_T)
{
    struct s2s_workspace *ws = calloc(1, sizeof *ws);
    if (!ws) {
        sl_err(SL_ENOMEM, "out of memory for a model workspace");
        return NULL;
    }
    if (prepare_batch(ws, m, max_B, max_S, max_T, 1) || prepare_step(ws, m, max_B ? max_B : 1)) {
        s2s_workspace_free(ws);
        return NULL;
    }
    return ws;
}

void s2s_workspace_free(struct s2s_workspace *ws)
{
    if (!ws)
        return;
    arena_release(&ws->batch);
    arena_release(&ws->step);
    free(ws);
}

size_t s2s_workspace_bytes(const struct s2s_workspace *ws) { return ws->batch.cap + ws->step.cap; }

/* ---- loss ---- */

size_t s2s_batch_tokens(const struct s2s_batch *bt)
{
    size_t n = 0;
    for (size_t b = 0; b < bt->B; b++)
        n += (size_t)(bt->tgt_len[b] > 0 ? bt->tgt_len[b] : 0) + 1;
    return n;
}

static int load_batch(struct s2s_workspace *ws, const struct s2s_model *m, const struct s2s_batch *bt)
{
    int rc = prepare_batch(ws, m, bt->B, bt->S, bt->T, 1);
    if (rc == 0)
        rc = enc_load(enc_ids(m, ws), enc_lens(m, ws), bt->src, bt->src_len, bt->B, bt->S, m->cfg.V_src,
                      m->cfg.reverse_source);
    if (rc == 0 && m->cfg.attention != ATTN_NONE)
        rc = dec_load(ws->adec.ids, ws->dlens, &ws->loss, bt->tgt, bt->tgt_len, bt->B, bt->T, m->cfg.V_tgt, BPE_BOS,
                      BPE_EOS);
    else if (rc == 0)
        rc = dec_load(ws->dec.ids, ws->dec.lens, &ws->loss, bt->tgt, bt->tgt_len, bt->B, bt->T, m->cfg.V_tgt,
                      BPE_BOS, BPE_EOS);
    return rc;
}

/* Encoder and decoder forward of the loaded batch with dropout p. OUT: the decoder's top outputs (T1, B, H)
 * (h~ with attention) and their lengths (B), as dec_loss reads them. */
static void forward(const struct s2s_model *m, const float *w, struct s2s_workspace *ws, float p, struct rng *r,
                    const float **top, const int32_t **lens)
{
    enc_run(m, w, ws, p, r, ws->h0, ws->c0);
    if (m->cfg.attention != ATTN_NONE) {
        attn_stack_forward(&m->dec, &m->att, w, &ws->adec, enc_top(m, ws), enc_lens(m, ws), ws->h0, ws->c0, p, r);
        *top = attn_stack_top(&ws->adec);
        *lens = ws->dlens;
    } else {
        stack_forward(&m->dec, w, &ws->dec, ws->h0, ws->c0, p, r);
        *top = stack_top(&m->dec, &ws->dec);
        *lens = ws->dec.lens;
    }
}

int s2s_loss_forward_backward(const struct s2s_model *m, const float *w, float *g, struct s2s_workspace *ws,
                              const struct s2s_batch *bt, float grad_scale, struct rng *r, double *loss_sum,
                              size_t *n_tokens)
{
    *loss_sum = 0.0;
    *n_tokens = 0;
    if (bt->B == 0)
        return 0;
    const float p = m->cfg.dropout;
    if (p > 0 && !r)
        return sl_err(SL_EINVAL, "training with dropout needs a random number generator");
    int rc = load_batch(ws, m, bt);
    if (rc)
        return rc;
    const float *top;
    const int32_t *lens;
    forward(m, w, ws, p, r, &top, &lens);
    dec_loss(&m->out, w, g, &ws->loss, lens, top, p, r, grad_scale, loss_sum, n_tokens, NULL);
    const size_t LBH = m->cfg.L * bt->B * m->cfg.H;
    memset(ws->dh0, 0, LBH * sizeof(float));
    memset(ws->dc0, 0, LBH * sizeof(float));
    const float *dHs = NULL;
    if (m->cfg.attention != ATTN_NONE) {
        memset(ws->dHs, 0, bt->S * bt->B * m->cfg.H * sizeof(float));
        attn_stack_backward(&m->dec, &m->att, w, g, &ws->adec, enc_top(m, ws), enc_lens(m, ws), ws->loss.dtop,
                            ws->dHs, ws->dh0, ws->dc0);
        dHs = ws->dHs;
    } else {
        stack_backward(&m->dec, w, g, &ws->dec, ws->loss.dtop, NULL, NULL, ws->dh0, ws->dc0);
    }
    if (m->cfg.bidirectional)
        bistack_backward(&m->benc, w, g, &ws->benc, dHs, ws->dh0, ws->dc0);
    else
        enc_backward(&m->enc, w, g, &ws->enc, dHs, ws->dh0, ws->dc0);
    return 0;
}

int s2s_loss_forward(const struct s2s_model *m, const float *w, struct s2s_workspace *ws,
                     const struct s2s_batch *bt, double *loss_sum, size_t *n_tokens, double *row_loss)
{
    *loss_sum = 0.0;
    *n_tokens = 0;
    if (bt->B == 0)
        return 0;
    int rc = load_batch(ws, m, bt);
    if (rc)
        return rc;
    const float *top;
    const int32_t *lens;
    forward(m, w, ws, 0.0f, NULL, &top, &lens);
    dec_loss(&m->out, w, NULL, &ws->loss, lens, top, 0.0f, NULL, 1.0f, loss_sum, n_tokens, row_loss);
    return 0;
}

/* ---- decoding ---- */

/* s2s_encode with the encoder's recurrent weights taken already packed from pk (NULL: packed per call). */
static int encode(const struct s2s_model *m, const float *w, struct s2s_workspace *ws, const int32_t *src,
                  const int32_t *src_len, size_t B, size_t S, float *h, float *c, const struct s2s_packed *pk)
{
    if (B == 0)
        return 0;
    int rc = prepare_batch(ws, m, B, S, 0, 0);
    if (rc == 0)
        rc = enc_load(enc_ids(m, ws), enc_lens(m, ws), src, src_len, B, S, m->cfg.V_src, m->cfg.reverse_source);
    if (rc)
        return rc;
    const int uni = !m->cfg.bidirectional; /* TODO: packed recurrent weights for the bidirectional encoder */
    for (size_t l = 0; uni && l < m->cfg.L; l++)
        ws->enc.layer[l].pkw = pk && pk->p && !autocast_active() ? pk->p + pk->enc[l] : NULL;
    enc_run(m, w, ws, 0.0f, NULL, h, c);
    for (size_t l = 0; uni && l < m->cfg.L; l++)
        ws->enc.layer[l].pkw = NULL; /* the workspace may train next */
    return 0;
}

int s2s_encode(const struct s2s_model *m, const float *w, struct s2s_workspace *ws, const int32_t *src,
               const int32_t *src_len, size_t B, size_t S, float *h, float *c)
{
    return encode(m, w, ws, src, src_len, B, S, h, c, NULL);
}

int s2s_decode_step(const struct s2s_model *m, const float *w, struct s2s_workspace *ws, const int32_t *prev,
                    size_t M, float *h, float *c, float *logprobs)
{
    if (M == 0)
        return 0;
    if (m->cfg.attention != ATTN_NONE)
        return sl_err(SL_EINVAL, "s2s_decode_step: a model with attention decodes through s2s_decoder");
    for (size_t i = 0; i < M; i++)
        if (prev[i] < 0 || (size_t)prev[i] >= m->cfg.V_tgt)
            return sl_err(SL_EINVAL, "decoding row %zu: previous token %d outside [0, %zu)", i, (int)prev[i],
                          m->cfg.V_tgt);
    int rc = prepare_step(ws, m, M);
    if (rc)
        return rc;
    stack_step(&m->dec, w, prev, M, h, c, ws->step_scratch);
    dec_logprobs(&m->out, w, h + (m->cfg.L - 1) * M * m->cfg.H, M, logprobs);
    return 0;
}

void s2s_state_gather(const struct s2s_model *m, const float *h, const float *c, size_t M_in, const size_t *rows,
                      size_t M, float *h_out, float *c_out)
{
    const size_t H = m->cfg.H;
    for (size_t l = 0; l < m->cfg.L; l++)
        for (size_t i = 0; i < M; i++) {
            memcpy(h_out + (l * M + i) * H, h + (l * M_in + rows[i]) * H, H * sizeof(float));
            memcpy(c_out + (l * M + i) * H, c + (l * M_in + rows[i]) * H, H * sizeof(float));
        }
}

/* ---- decoding state ---- */

static void decoder_buffers_free(struct s2s_decoder *d)
{
    param_buf_free(d->h), param_buf_free(d->c), param_buf_free(d->h2), param_buf_free(d->c2);
    param_buf_free(d->scr);
    param_buf_free(d->feed), param_buf_free(d->feed2);
    free(d->row), free(d->row2);
    d->feed = d->feed2 = NULL;
    d->row = d->row2 = NULL;
}

static size_t max_in(const struct s2s_model *m) { return m->cfg.E > m->cfg.H ? m->cfg.E : m->cfg.H; }

/* Input width of decoder layer l: the embedding (and, with attention, the fed h~) for layer 0, H above. */
static size_t dec_in(const struct s2s_model *m, size_t l)
{
    return l ? m->cfg.H : m->cfg.E + (m->cfg.attention != ATTN_NONE ? m->cfg.H : 0);
}

/* Floats of packed-step scratch for M rows: embeddings (M, E), then one layer's step. */
static size_t step_scratch_floats(const struct s2s_model *m, size_t M)
{
    return M * m->cfg.E + lstm_step_packed_floats(M, max_in(m), m->cfg.H);
}

/* The decoder's row buffers are 64-byte aligned (param_buf_create): the packed GEMM's rows of A and C then
 * start on cache lines; with malloc's 16-byte alignment the step GEMMs ran measurably slower. */
static int decoder_grow(struct s2s_decoder *d, size_t M)
{
    if (M <= d->cap)
        return 0;
    const size_t n = d->m->cfg.L * M * d->m->cfg.H;
    float *p[5] = {param_buf_create(n), param_buf_create(n), param_buf_create(n), param_buf_create(n),
                   param_buf_create(step_scratch_floats(d->m, M))};
    const int att = d->m->cfg.attention != ATTN_NONE;
    float *f1 = att ? param_buf_create(M * d->m->cfg.H) : NULL, *f2 = att ? param_buf_create(M * d->m->cfg.H) : NULL;
    int32_t *r1 = att ? malloc(M * sizeof(int32_t)) : NULL, *r2 = att ? malloc(M * sizeof(int32_t)) : NULL;
    if (!p[0] || !p[1] || !p[2] || !p[3] || !p[4] || (att && (!f1 || !f2 || !r1 || !r2))) {
        for (int k = 0; k < 5; k++)
            param_buf_free(p[k]);
        param_buf_free(f1), param_buf_free(f2), free(r1), free(r2);
        return sl_err(SL_ENOMEM, "out of memory for %zu decoding rows", M);
    }
    decoder_buffers_free(d);
    d->h = p[0], d->c = p[1], d->h2 = p[2], d->c2 = p[3], d->scr = p[4];
    d->feed = f1, d->feed2 = f2, d->row = r1, d->row2 = r2;
    d->cap = M;
    d->M = 0; /* contents are gone */
    return 0;
}

struct s2s_packed *s2s_packed_create(const struct s2s_model *m, const float *w, int pack)
{
    struct s2s_packed *p = calloc(1, sizeof *p);
    if (!p) {
        sl_err(SL_ENOMEM, "out of memory for the packed decoder weights");
        return NULL;
    }
    p->m = m, p->w = w;
    const size_t H = m->cfg.H;
    size_t n = 0;
    for (size_t l = 0; l < m->cfg.L; l++) {
        p->lstm[l] = n;
        n += gemm_packed_floats(dec_in(m, l) + H, 4 * H);
    }
    p->out = n;
    n += gemm_packed_floats(H, m->cfg.V_tgt);
    for (size_t l = 0; !m->cfg.bidirectional && l < m->cfg.L; l++) {
        p->enc[l] = n;
        n += lstm_pack_floats(H);
    }
    p->att = n;
    if (m->cfg.attention != ATTN_NONE)
        n += attn_pack_floats(&m->att);
    if (!pack)
        return p;
    if (!(p->p = param_buf_create(n))) {
        sl_err(SL_ENOMEM, "out of memory for the packed decoder weights (%zu floats)", n);
        free(p);
        return NULL;
    }
    s2s_packed_refresh(p);
    return p;
}

void s2s_packed_refresh(struct s2s_packed *p)
{
    if (!p->p)
        return;
    const struct s2s_model *m = p->m;
    const size_t H = m->cfg.H;
    for (size_t l = 0; l < m->cfg.L; l++) {
        const size_t IH = dec_in(m, l) + H;
        gemm_pack_b(GEMM_T, IH, 4 * H, p->w + m->dec.W[l], IH, p->p + p->lstm[l]);
    }
    gemm_pack_b(GEMM_T, H, m->cfg.V_tgt, p->w + m->out.W, H, p->p + p->out);
    for (size_t l = 0; !m->cfg.bidirectional && l < m->cfg.L; l++)
        lstm_pack_recurrent(p->w + m->enc.W[l], l ? H : m->cfg.E, H, p->p + p->enc[l]);
    if (m->cfg.attention != ATTN_NONE)
        attn_pack(&m->att, p->w, p->p + p->att);
}

void s2s_packed_free(struct s2s_packed *p)
{
    if (!p)
        return;
    param_buf_free(p->p);
    free(p);
}

struct s2s_decoder *s2s_decoder_create(const struct s2s_model *m, const float *w, const struct s2s_packed *pk)
{
    struct s2s_decoder *d = calloc(1, sizeof *d);
    if (!d) {
        sl_err(SL_ENOMEM, "out of memory for a decoder");
        return NULL;
    }
    d->m = m;
    d->w = w;
    if (pk && (pk->m != m || pk->w != w)) {
        sl_err(SL_EINVAL, "decoder: packed weights of another model");
        free(d);
        return NULL;
    }
    d->pk = pk ? pk : (d->own = s2s_packed_create(m, w, 1));
    d->ws = s2s_workspace_create(m, 1, 1, 1);
    if (!d->ws || !d->pk) {
        s2s_workspace_free(d->ws);
        s2s_packed_free(d->own);
        free(d);
        return NULL;
    }
    return d;
}

void s2s_decoder_free(struct s2s_decoder *d)
{
    if (!d)
        return;
    s2s_workspace_free(d->ws);
    decoder_buffers_free(d);
    param_buf_free(d->keys);
    param_buf_free(d->ascr);
    param_buf_free(d->aw);
    free(d->apos);
    s2s_packed_free(d->own);
    free(d);
}

/* Makes *buf hold at least n floats (64-byte aligned; contents lost). */
static int floats_reserve(float **buf, size_t *cap, size_t n)
{
    if (n <= *cap && *buf)
        return 0;
    float *p = param_buf_create(n ? n : 1);
    if (!p)
        return sl_err(SL_ENOMEM, "out of memory for %zu decoding floats", n);
    param_buf_free(*buf);
    *buf = p;
    *cap = n ? n : 1;
    return 0;
}

int s2s_decoder_start(struct s2s_decoder *d, const int32_t *src, const int32_t *src_len, size_t B, size_t S,
                      size_t K)
{
    if (K == 0)
        return sl_err(SL_EINVAL, "beam width 0");
    int rc = decoder_grow(d, B * K > B ? B * K : B);
    if (rc)
        return rc;
    if (d->own)
        s2s_packed_refresh(d->own);
    if ((rc = encode(d->m, d->w, d->ws, src, src_len, B, S, d->h2, d->c2, d->pk)))
        return rc;
    const size_t H = d->m->cfg.H, M = B * K;
    for (size_t l = 0; l < d->m->cfg.L; l++)
        for (size_t i = 0; i < M; i++) {
            memcpy(d->h + (l * M + i) * H, d->h2 + (l * B + i / K) * H, H * sizeof(float));
            memcpy(d->c + (l * M + i) * H, d->c2 + (l * B + i / K) * H, H * sizeof(float));
        }
    if (d->m->cfg.attention != ATTN_NONE) {
        /* the sources' top states stay in the workspace's batch arena until the next start */
        const struct attn_layout *att = &d->m->att;
        d->Hs = enc_top(d->m, d->ws);
        d->src_len = enc_lens(d->m, d->ws);
        d->S = S, d->B_src = B;
        if ((rc = floats_reserve(&d->keys, &d->keys_cap, S * B * attn_key_width(att)))) /* step scratch: at each step */
            return rc;
        attn_keys_forward(att, d->w, d->Hs, S, B, d->keys);
        memset(d->feed, 0, M * H * sizeof(float));
        for (size_t i = 0; i < M; i++)
            d->row[i] = (int32_t)(i / K);
    }
    d->M = M;
    return 0;
}

/* apos[i] := the source position (the source's own order) of row i's largest weight in aw. */
static void align_argmax(struct s2s_decoder *d, size_t M)
{
    for (size_t i = 0; i < M; i++) {
        const size_t n = (size_t)d->src_len[d->row[i]];
        const float *a = d->aw + i * d->S;
        size_t best = 0;
        for (size_t s = 1; s < n; s++)
            if (a[s] > a[best])
                best = s;
        /* enc_load reversed the first n positions of a reversed source */
        d->apos[i] = (int32_t)(d->m->cfg.reverse_source && n ? n - 1 - best : best);
    }
}

int s2s_decoder_step(struct s2s_decoder *d, const int32_t *prev, size_t M, float *logprobs)
{
    if (M != d->M)
        return sl_err(SL_EINVAL, "decoding step for %zu rows, but %zu hypotheses are live", M, d->M);
    const struct s2s_model *m = d->m;
    const size_t H = m->cfg.H, E = m->cfg.E, MH = M * H;
    for (size_t i = 0; i < M; i++)
        if (prev[i] < 0 || (size_t)prev[i] >= m->cfg.V_tgt)
            return sl_err(SL_EINVAL, "decoding row %zu: previous token %d outside [0, %zu)", i, (int)prev[i],
                          m->cfg.V_tgt);
    if (M == 0)
        return 0;
    if (m->cfg.attention != ATTN_NONE) {
        /* multi-threaded BLAS: unpacked weights, OpenBLAS splits each product across its threads */
        const int packed = d->pk->p && gemm_get_threads() == 1 && !autocast_active(); /* bf16: the autocast's */
        int rc = floats_reserve(&d->ascr, &d->ascr_cap, attn_stack_step_floats(&m->dec, &m->att, M, d->S));
        if (rc)
            return rc;
        if (d->track && (rc = floats_reserve(&d->aw, &d->aw_cap, M * d->S)))
            return rc;
        if (d->track && (rc = vec_reserve(&d->apos, &d->apos_cap, M, sizeof *d->apos)))
            return rc;
        attn_stack_step(&m->dec, &m->att, d->w, packed ? d->pk->p : NULL, d->pk->lstm, d->pk->att, prev, M, d->Hs,
                        d->keys, d->src_len, d->S, d->B_src, d->row, d->h, d->c, d->feed, d->track ? d->aw : NULL,
                        d->ascr);
        if (d->track)
            align_argmax(d, M);
        if (packed)
            proj_logprobs_packed(d->pk->p + d->pk->out, d->w + m->out.b, d->feed, M, H, m->cfg.V_tgt, logprobs);
        else
            dec_logprobs(&m->out, d->w, d->feed, M, logprobs);
        return 0;
    }
    /* multi-threaded BLAS: OpenBLAS splits each product across its threads; bf16: the autocast's copies */
    if (gemm_get_threads() > 1 || autocast_active() || !d->pk->p)
        return s2s_decode_step(m, d->w, d->ws, prev, M, d->h, d->c, logprobs);
    /* as stack_step + dec_logprobs, with the packed weights (single-threaded) */
    float *x = d->scr, *cell = d->scr + M * E; /* (M, E); lstm_step_packed_floats */
    embed_forward(d->w + m->dec.emb, m->cfg.V_tgt, E, prev, M, x);
    for (size_t l = 0; l < m->cfg.L; l++) {
        const float *in = l == 0 ? x : d->h + (l - 1) * MH; /* (M, I_l) */
        lstm_step_forward_packed(d->pk->p + d->pk->lstm[l], d->w + m->dec.b[l], in, M, l ? H : E, H, d->h + l * MH,
                                 d->c + l * MH, cell);
    }
    proj_logprobs_packed(d->pk->p + d->pk->out, d->w + m->out.b, d->h + (m->cfg.L - 1) * MH, M, H, m->cfg.V_tgt,
                         logprobs);
    return 0;
}

int s2s_decoder_track_align(struct s2s_decoder *d, int on)
{
    if (on && d->m->cfg.attention == ATTN_NONE)
        return sl_err(SL_EINVAL, "alignments need a model with attention (this one has --attention none)");
    d->track = on != 0;
    return 0;
}

const int32_t *s2s_decoder_align(const struct s2s_decoder *d) { return d->track ? d->apos : NULL; }

/* The attention's per-hypothesis state: feed_out, row_out row i = row rows[i] of feed, row. */
static void attn_state_gather(size_t H, const float *feed, const int32_t *row, const size_t *rows, size_t M,
                              float *feed_out, int32_t *row_out)
{
    for (size_t i = 0; i < M; i++) {
        memcpy(feed_out + i * H, feed + rows[i] * H, H * sizeof(float));
        row_out[i] = row[rows[i]];
    }
}

int s2s_decoder_reorder(struct s2s_decoder *d, const size_t *rows, size_t M_new)
{
    for (size_t i = 0; i < M_new; i++)
        if (rows[i] >= d->M)
            return sl_err(SL_EINVAL, "reorder: row %zu outside [0, %zu)", rows[i], d->M);
    const int att = d->m->cfg.attention != ATTN_NONE;
    const size_t H = d->m->cfg.H, M = d->M;
    if (M_new > d->cap) { /* grow, keeping the current state */
        size_t n = d->m->cfg.L * M * H;
        float *h = malloc(n * sizeof(float)), *c = malloc(n * sizeof(float));
        float *feed = att ? malloc((M * H + 1) * sizeof(float)) : NULL;
        int32_t *row = att ? malloc((M + 1) * sizeof(int32_t)) : NULL;
        if (!h || !c || (att && (!feed || !row))) {
            free(h), free(c), free(feed), free(row);
            return sl_err(SL_ENOMEM, "out of memory for %zu decoding rows", M_new);
        }
        memcpy(h, d->h, n * sizeof(float));
        memcpy(c, d->c, n * sizeof(float));
        if (att) {
            memcpy(feed, d->feed, M * H * sizeof(float));
            memcpy(row, d->row, M * sizeof(int32_t));
        }
        int rc = decoder_grow(d, M_new);
        if (rc == 0) {
            s2s_state_gather(d->m, h, c, M, rows, M_new, d->h, d->c);
            if (att)
                attn_state_gather(H, feed, row, rows, M_new, d->feed, d->row);
            d->M = M_new;
        }
        free(h), free(c), free(feed), free(row);
        return rc;
    }
    s2s_state_gather(d->m, d->h, d->c, M, rows, M_new, d->h2, d->c2);
    float *t = d->h;
    d->h = d->h2, d->h2 = t;
    t = d->c;
    d->c = d->c2, d->c2 = t;
    if (att) {
        attn_state_gather(H, d->feed, d->row, rows, M_new, d->feed2, d->row2);
        t = d->feed;
        d->feed = d->feed2, d->feed2 = t;
        int32_t *r = d->row;
        d->row = d->row2, d->row2 = r;
    }
    d->M = M_new;
    return 0;
}

const struct s2s_model *s2s_decoder_model(const struct s2s_decoder *d) { return d->m; }

size_t s2s_decoder_rows(const struct s2s_decoder *d) { return d->M; }

void s2s_decoder_state(const struct s2s_decoder *d, const float **h, const float **c)
{
    *h = d->h;
    *c = d->c;
}
