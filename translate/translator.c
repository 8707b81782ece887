/* translate/translator.c: the translation engine (see translator.h).
 * One run: (1) serial: validate and encode every line into src_ids, sort the decodable lines by
 * source length, size every buffer the parallel part needs (worker source matrices, the token slots
 * of every hypothesis); (2) the sub-batches as jobs on OpenMP threads (util/jobs.h, dynamic
 * schedule; a failing sub-batch's status and message reach the caller): each worker fills its (N, S)
 * source matrix, starts its s2s_decoder and runs its beam_search, whose model callbacks wrap s2s_decoder_step /
 * s2s_decoder_reorder and force EOS for rows whose sentence reached its own length limit (a row ->
 * sentence map follows the reorders); the hypotheses' tokens (and alignment positions) are copied to the
 * line's slots; (3) serial: decode the tokens with the target BPE into text, in input order, and format
 * the alignments. An ensemble's workers hold one s2s_decoder per member, stepped and reordered together.
 * No allocation in the parallel part except inside s2s_decoder_start when a sub-batch is larger
 * than any before (its buffers grow once, then are reused).
 * ref: decoder/beam.h (callbacks, GNMT length penalty), model/seq2seq.h. */
#include "translate/translator.h"

#include "decoder/beam.h"
#include "translate/align.h"
#include "nn/autocast.h"
#include "nn/gemm.h"
#include "nn/params.h"
#include "util/clock.h"
#include "util/err.h"
#include "util/jobs.h"
#include "util/sbuf.h"
#include "util/vec.h"

#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

/* One worker: a decoder, a beam search and their buffers. */
struct tr_worker {
    struct translator *t;
    struct s2s_decoder **dec;   /* (n_models) */
    float *lp;                  /* (batch * K, V) a member's log-probabilities (ensembles) */
    struct beam_search *bs;
    size_t *row_sent, *row_tmp; /* (batch * K) sentence (within the sub-batch) of each row */
    size_t *limit;              /* (batch) max tokens of each sentence */
    size_t step;                /* step() calls so far in this run: the index of the token produced */
    int32_t *src, *src_len;     /* (batch, S_cap), (batch) */
    size_t S_cap;
};

/* A raw hypothesis: tokens in the line's slot. */
struct tr_raw {
    size_t len;
    double score, logprob;
    int finished;
};

struct tr_sort {
    size_t n_src, line;
};

struct translator {
    const struct s2s_model *m; /* the first member (the shared V_tgt) */
    size_t n_models;
    const struct bpe *sb, *tb;
    struct translate_opts o;
    struct s2s_packed **pk; /* (n_models) the weights decoding multiplies, packed once, shared by the workers */
    struct autocast *ac;    /* o.precision bf16: the products' bf16 weight copies, shared by the workers */
    size_t align_member;   /* the member whose attention gives the alignments */
    size_t n_workers;
    struct tr_worker *wk;
    /* per run, sized for cap lines */
    size_t cap;
    struct translate_result *res; /* (cap) */
    size_t *src_off;              /* (cap) offset of line i's source ids in src_ids */
    size_t *out_off;              /* (cap) offset of line i's nbest token slots in out_tok */
    size_t *limit;                /* (cap) max tokens of line i */
    struct tr_raw *raw;           /* (cap * nbest) */
    struct translate_hyp *hyps;   /* (cap * nbest) */
    size_t *text_off;             /* (cap * nbest) */
    struct tr_sort *order;        /* (cap) decodable lines, longest first */
    int32_t *src_ids;
    size_t src_ids_cap;
    int32_t *out_tok;
    size_t out_tok_cap;
    int32_t *out_pos;             /* as out_tok: the aligned source subword of each token (alignment) */
    size_t out_pos_cap;
    size_t *align_off;            /* (cap * nbest) */
    int32_t *src_word, *tgt_word; /* alignment scratch: word index of each subword */
    size_t src_word_cap, tgt_word_cap;
    uint64_t *pairs;
    size_t pairs_cap;
    struct tok_ids ids;
    struct sbuf text, tmp;
    /* totals */
    size_t tot_lines, tot_src, tot_tgt;
    double tot_seconds;
};

void translate_opts_default(struct translate_opts *o)
{
    memset(o, 0, sizeof *o);
    o->beam = 5;
    o->nbest = 1;
    o->alpha = 0.6f;
    o->max_len_ratio = 2.0;
    o->max_len_extra = 10;
    o->max_len_cap = 256;
    o->batch = 32;
    o->threads = 0;
    o->src_eos = 1;
}

static size_t max_tokens(const struct translate_opts *o, size_t n_src)
{
    double r = o->max_len_ratio * (double)n_src;
    size_t n = r >= (double)o->max_len_cap ? o->max_len_cap : (size_t)r;
    n += o->max_len_extra;
    if (n > o->max_len_cap)
        n = o->max_len_cap;
    return n ? n : 1;
}

/* ---- beam_model callbacks ---- */

static int cb_step(void *ctx, const int32_t *prev, size_t M, float *logprobs)
{
    struct tr_worker *w = ctx;
    const size_t V = w->t->m->cfg.V_tgt, n_models = w->t->n_models, MV = M * V;
    int rc = s2s_decoder_step(w->dec[0], prev, M, logprobs);
    if (rc)
        return rc;
    if (n_models > 1) { /* the mean of the members' log-probabilities */
        for (size_t i = 1; i < n_models; i++) {
            if ((rc = s2s_decoder_step(w->dec[i], prev, M, w->lp)))
                return rc;
            for (size_t k = 0; k < MV; k++)
                logprobs[k] += w->lp[k];
        }
        const float n = (float)n_models;
        for (size_t k = 0; k < MV; k++)
            logprobs[k] /= n;
    }
    for (size_t r = 0; r < M; r++) {
        if (w->step < w->limit[w->row_sent[r]])
            continue;
        /* this sentence has max_tokens tokens: only EOS may follow (its own log-probability kept) */
        float *z = logprobs + r * V;
        float eos = z[BPE_EOS];
        for (size_t v = 0; v < V; v++)
            z[v] = -INFINITY;
        z[BPE_EOS] = isfinite(eos) ? eos : 0.0f;
    }
    w->step++;
    return 0;
}

static int cb_reorder(void *ctx, const size_t *src, size_t M)
{
    struct tr_worker *w = ctx;
    for (size_t r = 0; r < M; r++)
        w->row_tmp[r] = w->row_sent[src[r]];
    size_t *x = w->row_sent;
    w->row_sent = w->row_tmp;
    w->row_tmp = x;
    for (size_t i = 0; i < w->t->n_models; i++) {
        int rc = s2s_decoder_reorder(w->dec[i], src, M);
        if (rc)
            return rc;
    }
    return 0;
}

static const int32_t *cb_aux(void *ctx)
{
    struct tr_worker *w = ctx;
    return s2s_decoder_align(w->dec[w->t->align_member]);
}

/* ---- creation ---- */

static void worker_free(struct tr_worker *w, size_t n_models)
{
    for (size_t i = 0; w->dec && i < n_models; i++)
        s2s_decoder_free(w->dec[i]);
    free(w->dec);
    param_buf_free(w->lp);
    beam_search_free(w->bs);
    free(w->row_sent);
    free(w->row_tmp);
    free(w->limit);
    free(w->src);
    free(w->src_len);
}

struct translator *translator_create(const struct s2s_model *m, const float *w, const struct bpe *src,
                                     const struct bpe *tgt, const struct translate_opts *opts)
{
    return translator_create_ensemble(&m, &w, 1, src, tgt, opts);
}

/* Checks the members against each other and the BPE models; OUT: *align_member. */
static int check_members(const struct s2s_model *const *m, const float *const *w, size_t n, const struct bpe *src,
                         const struct bpe *tgt, int alignment, size_t *align_member)
{
    if (!m || !w || n < 1 || !src || !tgt)
        return sl_err(SL_EINVAL, "translator: model, parameters and both BPE models are needed");
    *align_member = n;
    for (size_t i = 0; i < n; i++) {
        if (!m[i] || !w[i])
            return sl_err(SL_EINVAL, "translator: model, parameters and both BPE models are needed");
        if (bpe_size(src) > m[i]->cfg.V_src || m[i]->cfg.V_tgt > bpe_size(tgt))
            return sl_err(SL_EINVAL, "translator: vocabularies do not match the model (source BPE %zu tokens, "
                          "model V_src %zu; target BPE %zu tokens, model V_tgt %zu)", bpe_size(src),
                          m[i]->cfg.V_src, bpe_size(tgt), m[i]->cfg.V_tgt);
        if (m[i]->cfg.V_tgt != m[0]->cfg.V_tgt)
            return sl_err(SL_EINVAL, "translator: ensemble member %zu has V_tgt %zu, member 1 has %zu", i + 1,
                          m[i]->cfg.V_tgt, m[0]->cfg.V_tgt);
        if (*align_member == n && m[i]->cfg.attention != ATTN_NONE)
            *align_member = i;
    }
    if (alignment && *align_member == n)
        return sl_err(SL_EINVAL, "translator: alignments need a model with attention (%s --attention none)",
                      n == 1 ? "the model has" : "every member has");
    return 0;
}

struct translator *translator_create_ensemble(const struct s2s_model *const *m, const float *const *w,
                                              size_t n_models, const struct bpe *src, const struct bpe *tgt,
                                              const struct translate_opts *opts)
{
    struct translate_opts o;
    if (opts)
        o = *opts;
    else
        translate_opts_default(&o);
    if (o.beam < 1 || o.beam > 1000 || o.nbest < 1 || o.nbest > o.beam || !(o.alpha >= 0.0f) ||
        isinf(o.alpha) || !(o.max_len_ratio >= 0.0) || isinf(o.max_len_ratio) || o.max_len_cap < 1 ||
        o.max_len_cap > 100000 || o.batch < 1 || o.batch > 100000 || o.threads < 0 || o.threads > 1024) {
        sl_err(SL_EINVAL, "translator: bad options (beam %zu, nbest %zu, alpha %g, max_len_ratio %g, "
               "max_len_cap %zu, batch %zu, threads %d)", o.beam, o.nbest, (double)o.alpha, o.max_len_ratio,
               o.max_len_cap, o.batch, o.threads);
        return NULL;
    }
    size_t align_member = 0;
    if (check_members(m, w, n_models, src, tgt, o.alignment, &align_member))
        return NULL;
    if (o.threads == 0)
        o.threads = omp_get_max_threads();
    struct translator *t = calloc(1, sizeof *t);
    if (!t) {
        sl_err(SL_ENOMEM, "translator: out of memory");
        return NULL;
    }
    t->m = m[0], t->n_models = n_models, t->sb = src, t->tb = tgt, t->o = o;
    t->align_member = align_member;
    tok_ids_init(&t->ids);
    sbuf_init(&t->text);
    sbuf_init(&t->tmp);
    t->n_workers = (size_t)o.threads;
    if (!(t->pk = calloc(n_models, sizeof *t->pk)))
        goto nomem;
    for (size_t i = 0; i < n_models; i++) /* bf16 / int8: the autocast's copies instead */
        if (!(t->pk[i] = s2s_packed_create(m[i], w[i], o.precision == PRECISION_FP32)))
            goto fail;
    if (o.precision != PRECISION_FP32) { /* the members' weights converted once, at their first products */
        if (!(t->ac = autocast_create((enum precision)o.precision, w[0], m[0]->table.total, 1)))
            goto fail;
        for (size_t i = 1; i < n_models; i++)
            if (autocast_add_buffer(t->ac, w[i], m[i]->table.total))
                goto fail;
    }
    if (!(t->wk = calloc(t->n_workers, sizeof *t->wk)))
        goto nomem;
    const size_t K = o.beam, NB = o.batch, V = m[0]->cfg.V_tgt;
    for (size_t i = 0; i < t->n_workers; i++) {
        struct tr_worker *wk = &t->wk[i];
        wk->t = t;
        if (!(wk->dec = calloc(n_models, sizeof *wk->dec)))
            goto nomem;
        for (size_t j = 0; j < n_models; j++) {
            if (!(wk->dec[j] = s2s_decoder_create(m[j], w[j], t->pk[j])))
                goto fail;
            if (o.alignment && j == align_member && s2s_decoder_track_align(wk->dec[j], 1))
                goto fail;
        }
        if (!(wk->bs = beam_search_create(NB, K, V, o.max_len_cap + 1)))
            goto fail;
        if (n_models > 1 && !(wk->lp = param_buf_create(NB * K * V)))
            goto nomem;
        if (!(wk->row_sent = malloc(NB * K * sizeof *wk->row_sent)) ||
            !(wk->row_tmp = malloc(NB * K * sizeof *wk->row_tmp)) || !(wk->limit = malloc(NB * sizeof *wk->limit)) ||
            !(wk->src_len = malloc(NB * sizeof *wk->src_len)))
            goto nomem;
    }
    return t;
nomem:
    sl_err(SL_ENOMEM, "translator: out of memory (%zu threads, batch %zu, beam %zu, %zu models)", t->n_workers,
           o.batch, o.beam, n_models);
fail:
    translator_free(t);
    return NULL;
}

void translator_free(struct translator *t)
{
    if (!t)
        return;
    for (size_t i = 0; t->wk && i < t->n_workers; i++)
        worker_free(&t->wk[i], t->n_models);
    free(t->wk);
    autocast_free(t->ac);
    for (size_t i = 0; t->pk && i < t->n_models; i++)
        s2s_packed_free(t->pk[i]);
    free(t->pk);
    free(t->res);
    free(t->src_off);
    free(t->out_off);
    free(t->limit);
    free(t->raw);
    free(t->hyps);
    free(t->text_off);
    free(t->order);
    free(t->src_ids);
    free(t->out_tok);
    free(t->out_pos);
    free(t->align_off);
    free(t->src_word);
    free(t->tgt_word);
    free(t->pairs);
    tok_ids_free(&t->ids);
    sbuf_free(&t->text);
    sbuf_free(&t->tmp);
    free(t);
}

const struct translate_opts *translator_opts(const struct translator *t) { return &t->o; }

void translator_weights_changed(struct translator *t)
{
    for (size_t i = 0; i < t->n_models; i++)
        s2s_packed_refresh(t->pk[i]);
}

const struct translate_result *translator_result(const struct translator *t, size_t i) { return &t->res[i]; }

void translator_totals(const struct translator *t, size_t *lines, size_t *src_tokens, size_t *tgt_tokens,
                       double *seconds)
{
    if (lines)
        *lines = t->tot_lines;
    if (src_tokens)
        *src_tokens = t->tot_src;
    if (tgt_tokens)
        *tgt_tokens = t->tot_tgt;
    if (seconds)
        *seconds = t->tot_seconds;
}

/* ---- one run ---- */

static int reserve_lines(struct translator *t, size_t n)
{
    if (n <= t->cap)
        return 0;
    size_t c = t->cap ? t->cap : 16, nb = t->o.nbest;
    while (c < n)
        c *= 2;
    int rc;
    if ((rc = vec_resize(&t->res, c, sizeof *t->res)) ||
        (rc = vec_resize(&t->src_off, c, sizeof *t->src_off)) ||
        (rc = vec_resize(&t->out_off, c, sizeof *t->out_off)) ||
        (rc = vec_resize(&t->limit, c, sizeof *t->limit)) ||
        (rc = vec_resize(&t->order, c, sizeof *t->order)) ||
        (rc = vec_resize(&t->raw, c * nb, sizeof *t->raw)) ||
        (rc = vec_resize(&t->hyps, c * nb, sizeof *t->hyps)) ||
        (rc = vec_resize(&t->text_off, c * nb, sizeof *t->text_off)) ||
        (rc = vec_resize(&t->align_off, c * nb, sizeof *t->align_off)))
        return sl_err_prefix(rc, "translator: %zu lines", c);
    t->cap = c;
    return 0;
}

static int cmp_sort(const void *a, const void *b)
{
    const struct tr_sort *x = a, *y = b;
    if (x->n_src != y->n_src)
        return x->n_src > y->n_src ? -1 : 1; /* longest first: the slowest sub-batches start first */
    return x->line < y->line ? -1 : x->line > y->line;
}

/* Decodes sorted lines order[a..b) with worker w. */
static int run_chunk(struct tr_worker *w, size_t a, size_t b)
{
    struct translator *t = w->t;
    const struct translate_opts *o = &t->o;
    size_t N = b - a, K = o->beam, eos = o->src_eos ? 1 : 0;
    size_t S = t->order[a].n_src + eos; /* the longest: order is longest first */
    size_t T = 0;
    for (size_t j = 0; j < N; j++) {
        const struct tr_sort *s = &t->order[a + j];
        const int32_t *ids = t->src_ids + t->src_off[s->line];
        int32_t *row = w->src + j * S;
        memcpy(row, ids, s->n_src * sizeof *row);
        if (eos)
            row[s->n_src] = BPE_EOS;
        for (size_t x = s->n_src + eos; x < S; x++)
            row[x] = BPE_PAD;
        w->src_len[j] = (int32_t)(s->n_src + eos);
        w->limit[j] = t->limit[s->line];
        if (w->limit[j] + 1 > T)
            T = w->limit[j] + 1;
        for (size_t k = 0; k < K; k++)
            w->row_sent[j * K + k] = j;
    }
    for (size_t i = 0; i < t->n_models; i++) {
        int rc = s2s_decoder_start(w->dec[i], w->src, w->src_len, N, S, K);
        if (rc)
            return rc;
    }
    w->step = 0;
    struct beam_model bm = {
        .ctx = w, .V = t->m->cfg.V_tgt, .bos = BPE_BOS, .eos = BPE_EOS, .pad = BPE_PAD,
        .step = cb_step, .reorder = cb_reorder, .aux = o->alignment ? cb_aux : NULL,
    };
    struct beam_opts bo = {.nbest = o->nbest, .max_len = T, .alpha = o->alpha, .fixed_length = 0};
    int rc = beam_search_run(w->bs, &bm, N, &bo);
    if (rc != 0)
        return rc;
    for (size_t j = 0; j < N; j++) {
        size_t line = t->order[a + j].line, cnt = 0;
        const struct beam_hyp *h = beam_search_nbest(w->bs, j, &cnt);
        struct translate_result *r = &t->res[line];
        r->n_hyps = cnt;
        for (size_t k = 0; k < cnt; k++) {
            struct tr_raw *x = &t->raw[line * o->nbest + k];
            size_t len = h[k].len <= t->limit[line] ? h[k].len : t->limit[line];
            memcpy(t->out_tok + t->out_off[line] + k * t->limit[line], h[k].tokens, len * sizeof(int32_t));
            if (o->alignment)
                memcpy(t->out_pos + t->out_off[line] + k * t->limit[line], h[k].aux, len * sizeof(int32_t));
            x->len = len;
            x->score = h[k].score;
            x->logprob = h[k].logprob;
            x->finished = h[k].finished;
        }
    }
    return 0;
}

/* One run's sub-batches as jobs (util/jobs.h): job c decodes sorted lines [c * batch, (c + 1) * batch)
 * with the worker of the thread that runs it. */
struct tr_run {
    struct translator *t;
    size_t n_dec; /* decodable lines in order */
};

static int run_job(void *ctx, size_t c, int thread)
{
    const struct tr_run *r = ctx;
    size_t bs = r->t->o.batch, a = c * bs, b = a + bs < r->n_dec ? a + bs : r->n_dec;
    return run_chunk(&r->t->wk[thread], a, b);
}

/* Appends text to t->text with '\n' and '\r' turned into spaces and invalid UTF-8 repaired. */
static int put_text(struct translator *t, const char *s, size_t n)
{
    size_t at = t->text.len;
    int rc = tok_utf8_check(s, n, NULL) == 0 ? sbuf_append(&t->text, s, n) : tok_utf8_repair(s, n, &t->text);
    if (rc)
        return rc;
    for (size_t i = at; i < t->text.len; i++)
        if (t->text.data[i] == '\n' || t->text.data[i] == '\r')
            t->text.data[i] = ' ';
    return sbuf_putc(&t->text, '\0'); /* each hypothesis NUL-terminated inside the buffer */
}

/* Appends the word alignment of hypothesis k of line i (tokens tok (n_tok)) to t->text, NUL-terminated. */
static int put_alignment(struct translator *t, size_t i, size_t k, const int32_t *tok, size_t n_tok)
{
    const size_t nb = t->o.nbest, n_src = t->res[i].n_src_tokens;
    const int32_t *pos = t->out_pos + t->out_off[i] + k * t->limit[i];
    int rc;
    if ((rc = vec_reserve(&t->src_word, &t->src_word_cap, n_src + 1, sizeof *t->src_word)) ||
        (rc = vec_reserve(&t->tgt_word, &t->tgt_word_cap, n_tok + 1, sizeof *t->tgt_word)) ||
        (rc = vec_reserve(&t->pairs, &t->pairs_cap, n_tok + 1, sizeof *t->pairs)))
        return rc;
    if ((rc = align_word_index(t->sb, t->src_ids + t->src_off[i], n_src, t->src_word)) ||
        (rc = align_word_index(t->tb, tok, n_tok, t->tgt_word)))
        return rc;
    const size_t at = t->text.len;
    t->align_off[i * nb + k] = at;
    if ((rc = align_format(t->src_word, n_src, t->tgt_word, pos, n_tok, t->pairs, &t->text)) ||
        (rc = sbuf_putc(&t->text, '\0')))
        return rc;
    t->hyps[i * nb + k].align_len = t->text.len - 1 - at;
    return 0;
}

int translator_run(struct translator *t, const char *const *lines, const size_t *lens, size_t n)
{
    const double t0 = clock_now();
    const struct translate_opts *o = &t->o;
    size_t nb = o->nbest, eos = o->src_eos ? 1 : 0;
    int rc = reserve_lines(t, n);
    if (rc)
        return rc;
    sl_err_clear();
    /* (1) encode */
    size_t n_ids = 0, n_dec = 0, n_out = 0;
    for (size_t i = 0; i < n; i++) {
        struct translate_result *r = &t->res[i];
        memset(r, 0, sizeof *r);
        r->hyps = t->hyps + i * nb;
        t->src_off[i] = n_ids;
        t->limit[i] = 0;
        if (lens[i] == 0)
            continue;
        size_t bad = 0;
        if (tok_utf8_check(lines[i], lens[i], &bad) != 0) {
            r->status = SL_EUTF8;
            r->bad_off = bad;
            continue;
        }
        if ((rc = bpe_encode(t->sb, lines[i], lens[i], &t->ids)) != 0)
            return sl_err_prefix(rc, "line %zu", i + 1);
        if (t->ids.n == 0)
            continue;
        if ((rc = vec_reserve(&t->src_ids, &t->src_ids_cap, n_ids + t->ids.n, sizeof *t->src_ids)) != 0)
            return rc;
        memcpy(t->src_ids + n_ids, t->ids.ids, t->ids.n * sizeof *t->ids.ids);
        n_ids += t->ids.n;
        r->n_src_tokens = t->ids.n;
        t->limit[i] = max_tokens(o, t->ids.n);
        t->out_off[i] = n_out;
        n_out += nb * t->limit[i];
        t->order[n_dec].n_src = t->ids.n;
        t->order[n_dec].line = i;
        n_dec++;
    }
    qsort(t->order, n_dec, sizeof *t->order, cmp_sort);
    if ((rc = vec_reserve(&t->out_tok, &t->out_tok_cap, n_out ? n_out : 1, sizeof *t->out_tok)) != 0)
        return rc;
    if (o->alignment && (rc = vec_reserve(&t->out_pos, &t->out_pos_cap, n_out ? n_out : 1, sizeof *t->out_pos)))
        return rc;
    /* worker source matrices: the longest sub-batch is the first one */
    size_t S_max = n_dec ? t->order[0].n_src + eos : 1;
    for (size_t i = 0; i < t->n_workers; i++) {
        struct tr_worker *w = &t->wk[i];
        if ((rc = vec_reserve(&w->src, &w->S_cap, o->batch * S_max, sizeof *w->src)) != 0)
            return rc;
    }
    /* (2) decode the sub-batches */
    size_t n_chunks = (n_dec + o->batch - 1) / o->batch;
    int old_threads = gemm_get_threads();
    gemm_set_threads(1);
    struct autocast *old_ac = autocast_current();
    if (t->ac)
        autocast_use(t->ac);
    int nth = (int)(t->n_workers < n_chunks ? t->n_workers : n_chunks);
    struct tr_run run = {t, n_dec};
    rc = jobs_run(n_chunks, nth, JOBS_DYNAMIC, run_job, &run);
    if (t->ac)
        autocast_use(old_ac);
    gemm_set_threads(old_threads);
    if (rc)
        return rc;
    /* (3) detokenise in input order */
    sbuf_reset(&t->text);
    for (size_t i = 0; i < n; i++) {
        struct translate_result *r = &t->res[i];
        for (size_t k = 0; k < r->n_hyps; k++) {
            const struct tr_raw *x = &t->raw[i * nb + k];
            const int32_t *tok = t->out_tok + t->out_off[i] + k * t->limit[i];
            if ((rc = bpe_decode(t->tb, tok, x->len, &t->tmp)) != 0)
                return sl_err_prefix(rc, "line %zu", i + 1);
            t->text_off[i * nb + k] = t->text.len;
            if ((rc = put_text(t, t->tmp.data, t->tmp.len)) != 0)
                return rc;
            struct translate_hyp *h = &t->hyps[i * nb + k];
            h->len = t->text.len - 1 - t->text_off[i * nb + k];
            h->n_tokens = x->len;
            h->score = x->score;
            h->logprob = x->logprob;
            h->finished = x->finished;
            h->align_len = 0;
            if (o->alignment && (rc = put_alignment(t, i, k, tok, x->len)) != 0)
                return sl_err_prefix(rc, "line %zu", i + 1);
        }
        if (r->n_hyps) {
            t->tot_lines++;
            t->tot_src += r->n_src_tokens;
            t->tot_tgt += t->hyps[i * nb].n_tokens;
        }
    }
    for (size_t i = 0; i < n; i++)
        for (size_t k = 0; k < t->res[i].n_hyps; k++) {
            t->hyps[i * nb + k].text = t->text.data + t->text_off[i * nb + k];
            t->hyps[i * nb + k].align = o->alignment ? t->text.data + t->align_off[i * nb + k] : NULL;
        }
    t->tot_seconds += clock_since(t0);
    return 0;
}
