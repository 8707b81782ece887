/* decoder/beam.c: batched beam search (see beam.h).
 * Per step t (layout_t = the M_t rows given to step()): for each live sentence, a size-K min-heap
 * keeps the best extensions (row k, token v) by score[k] + logp[k][v], ordered by score, then row
 * rank, then token id; extensions of the same row compare by logp alone, so K = 1 reproduces the
 * argmax exactly. Selected extensions are taken in rank order: EOS ones go to the sentence's
 * finished list (capacity nbest, sorted by normalised score, stable), the others fill the sentence's
 * rows of layout_{t+1} (unused rows: score -inf, token pad). History: hist_tok/hist_back[t][i] give
 * row i of layout_{t+1} its token and its parent row in layout_t, so every hypothesis is read back
 * by walking parents; with beam_model.aux, hist_aux[t][i] is the aux value of that token (its parent's row
 * at step t), read back along the same walk. Stopping: an open hypothesis with log-prob p <= 0 can end with at most
 * p / lp(L) for some L in [t+2, max_len] (log-probs only decrease), so a sentence whose nbest-th
 * finished score is >= that bound cannot change its result and stops; its rows leave the batch.
 * ref: Wu et al. 2016 (length penalty); Koehn 2004 (beam search for MT). */
#include "decoder/beam.h"

#include "nn/params.h"

#include "util/err.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

struct cand {
    double sc;   /* score[row] + lp */
    float lp;    /* logp[row][tok] */
    int32_t row; /* in layout_t */
    int32_t tok;
};

/* A finished (or finalised) hypothesis: tokens = walk from (u0, r0) back to step 0, then `extra`
 * (if >= 0); ntok tokens in all. */
struct fin {
    double logprob, score;
    int32_t u0, r0, extra;
    size_t ntok, steps;
    int finished;
    int32_t extra_aux; /* aux value of `extra` */
};

struct beam_search {
    size_t max_B, K, V, max_len; /* sentences, beam, vocabulary, steps (EOS included) */
    size_t max_M;          /* max_B * K */
    int32_t *prev;         /* (max_M) tokens fed to the next step */
    float *logp;           /* (max_M, V) */
    double *score;         /* (max_M) log-prob of each row of the current layout; -inf: empty row */
    unsigned char *done;   /* (max_M) fixed-length mode: the row has produced EOS */
    double *nscore;        /* (max_M) next layout, before compaction */
    int32_t *ntok;         /* (max_M) */
    size_t *nsrc;          /* (max_M) parent rows in the current layout */
    unsigned char *ndone;  /* (max_M) */
    size_t *src;           /* (max_M) compacted parents, given to reorder() */
    int32_t *hist_tok;     /* (max_len, max_M) */
    int32_t *hist_back;    /* (max_len, max_M) */
    int32_t *hist_aux;     /* (max_len, max_M) beam_model.aux values, as hist_tok */
    int32_t *naux;         /* (max_M) next layout's aux values, before compaction */
    const int32_t *cur_aux; /* (M) the model's aux values of the current step; NULL without aux */
    size_t *active;        /* (max_B) sentence of each live slot */
    struct cand *heap;     /* (K) */
    struct fin *fins;      /* (max_B, K) */
    size_t *nfin;          /* (max_B) */
    int32_t *out_tok;      /* (max_B, K, max_len) */
    int32_t *out_aux;      /* (max_B, K, max_len) */
    struct beam_hyp *res;  /* (max_B, K) */
    size_t *nres;          /* (max_B) */
    size_t steps;
};

double beam_length_penalty(size_t len, float alpha)
{
    if (alpha == 0.0f)
        return 1.0;
    return pow((5.0 + (double)len) / 6.0, (double)alpha);
}

void beam_search_free(struct beam_search *bs)
{
    if (!bs)
        return;
    free(bs->prev);
    param_buf_free(bs->logp);
    free(bs->score);
    free(bs->done);
    free(bs->nscore);
    free(bs->ntok);
    free(bs->nsrc);
    free(bs->ndone);
    free(bs->src);
    free(bs->hist_tok);
    free(bs->hist_back);
    free(bs->hist_aux);
    free(bs->naux);
    free(bs->out_aux);
    free(bs->active);
    free(bs->heap);
    free(bs->fins);
    free(bs->nfin);
    free(bs->out_tok);
    free(bs->res);
    free(bs->nres);
    free(bs);
}

/* n * size, or 0 on overflow */
static size_t mul(size_t a, size_t b) { return (b && a > SIZE_MAX / b) ? 0 : a * b; }

struct beam_search *beam_search_create(size_t max_B, size_t K, size_t V, size_t max_len)
{
    if (!max_B || !K || !V || !max_len || V > INT32_MAX || mul(max_B, K) == 0 ||
        mul(max_B, K) > INT32_MAX || mul(mul(max_B, K), V) == 0 || mul(mul(max_B, K), max_len) == 0) {
        sl_err(SL_EINVAL, "beam search: bad sizes (B %zu, K %zu, V %zu, max_len %zu)", max_B, K, V, max_len);
        return NULL;
    }
    struct beam_search *bs = calloc(1, sizeof *bs);
    if (!bs)
        goto oom;
    size_t M = max_B * K;
    bs->max_B = max_B, bs->K = K, bs->V = V, bs->max_len = max_len, bs->max_M = M;
    if (!(bs->prev = malloc(M * sizeof *bs->prev)) || !(bs->logp = param_buf_create(M * V)) ||
        !(bs->score = malloc(M * sizeof *bs->score)) || !(bs->done = malloc(M)) ||
        !(bs->nscore = malloc(M * sizeof *bs->nscore)) || !(bs->ntok = malloc(M * sizeof *bs->ntok)) ||
        !(bs->nsrc = malloc(M * sizeof *bs->nsrc)) || !(bs->ndone = malloc(M)) ||
        !(bs->src = malloc(M * sizeof *bs->src)) ||
        !(bs->hist_tok = malloc(max_len * M * sizeof *bs->hist_tok)) ||
        !(bs->hist_back = malloc(max_len * M * sizeof *bs->hist_back)) ||
        !(bs->hist_aux = malloc(max_len * M * sizeof *bs->hist_aux)) || !(bs->naux = malloc(M * sizeof *bs->naux)) ||
        !(bs->out_aux = malloc(mul(M, max_len) * sizeof *bs->out_aux)) ||
        !(bs->active = malloc(max_B * sizeof *bs->active)) || !(bs->heap = malloc(K * sizeof *bs->heap)) ||
        !(bs->fins = malloc(M * sizeof *bs->fins)) || !(bs->nfin = calloc(max_B, sizeof *bs->nfin)) ||
        !(bs->out_tok = malloc(mul(M, max_len) * sizeof *bs->out_tok)) ||
        !(bs->res = calloc(M, sizeof *bs->res)) || !(bs->nres = calloc(max_B, sizeof *bs->nres)))
        goto oom;
    return bs;
oom:
    beam_search_free(bs);
    sl_err(SL_ENOMEM, "beam search: out of memory (B %zu, K %zu, V %zu, max_len %zu)", max_B, K, V, max_len);
    return NULL;
}

/* 1 if a ranks before b. */
static int better(const struct cand *a, const struct cand *b)
{
    if (a->row == b->row) {
        if (a->lp != b->lp)
            return a->lp > b->lp;
        return a->tok < b->tok;
    }
    if (a->sc != b->sc)
        return a->sc > b->sc;
    return a->row < b->row;
}

/* min-heap on `better`: heap[0] is the worst kept candidate */
static void sift_down(struct cand *h, size_t n, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, w = i;
        if (l < n && better(&h[w], &h[l]))
            w = l;
        if (r < n && better(&h[w], &h[r]))
            w = r;
        if (w == i)
            return;
        struct cand t = h[i];
        h[i] = h[w];
        h[w] = t;
        i = w;
    }
}

static void sift_up(struct cand *h, size_t i)
{
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!better(&h[p], &h[i]))
            return;
        struct cand t = h[i];
        h[i] = h[p];
        h[p] = t;
        i = p;
    }
}

/* A float threshold t such that l < t implies s + l < worst in double arithmetic: the exact
 * difference minus a margin far above the rounding error of the double sum, rounded down. */
static float reject_below(double worst, double s)
{
    double d = worst - s;
    if (!(d > -HUGE_VAL))
        return -INFINITY;
    d -= (fabs(worst) + fabs(s)) * 1e-12 + 1e-30;
    if (d >= FLT_MAX)
        return FLT_MAX;
    if (d <= -FLT_MAX)
        return -INFINITY;
    float f = (float)d;
    return (double)f > d ? nextafterf(f, -INFINITY) : f;
}

/* The best (at most K) extensions of rows [base, base+K) into bs->heap, best first; returns how
 * many. SL_ENUM (negative) on a NaN / +inf log-probability. */
static long select_topk(struct beam_search *bs, const struct beam_model *m, size_t base, int fixed)
{
    size_t K = bs->K, V = bs->V, n = 0;
    struct cand *h = bs->heap;
    for (size_t k = 0; k < K; k++) {
        size_t row = base + k;
        double s = bs->score[row];
        if (s == -INFINITY)
            continue;
        const float *lp = bs->logp + row * V;
        if (fixed && bs->done[row]) { /* a finished row only extends with pad, at no cost */
            struct cand c = {s, 0.0f, (int32_t)row, m->pad};
            if (n < K) {
                h[n] = c;
                sift_up(h, n++);
            } else if (better(&c, &h[0])) {
                h[0] = c;
                sift_down(h, n, 0);
            }
            continue;
        }
        float thr = n == K ? reject_below(h[0].sc, s) : -INFINITY;
        for (size_t v = 0; v < V; v++) {
            if ((v & 15) == 0 && v + 16 <= V) { /* skip a block of 16 that cannot enter (vectorised) */
                int any = 0;
                for (size_t i = 0; i < 16; i++)
                    any |= !(lp[v + i] < thr); /* NaN counts as a hit: it must be reported */
                if (!any) {
                    v += 15;
                    continue;
                }
            }
            float l = lp[v];
            if (l < thr) /* certainly worse than the worst kept candidate (the common case) */
                continue;
            if (l != l || l == INFINITY)
                return sl_err(SL_ENUM, "beam search: log-probability of token %zu in row %zu is %f", v, row,
                              (double)l);
            if (l == -INFINITY)
                continue;
            double sc = s + (double)l;
            if (n == K && sc < h[0].sc) /* equal scores take the full comparison */
                continue;
            struct cand c = {sc, l, (int32_t)row, (int32_t)v};
            if (n < K) {
                h[n] = c;
                sift_up(h, n++);
            } else if (better(&c, &h[0])) {
                h[0] = c;
                sift_down(h, n, 0);
            } else {
                continue;
            }
            if (n == K)
                thr = reject_below(h[0].sc, s);
        }
    }
    /* heap -> best first: repeatedly move the worst to the end */
    for (size_t e = n; e > 1; e--) {
        struct cand t = h[0];
        h[0] = h[e - 1];
        h[e - 1] = t;
        sift_down(h, e - 1, 0);
    }
    return (long)n;
}

/* Inserts f into sentence s's finished list (capacity cap), after every entry scoring >= f. */
static void add_fin(struct beam_search *bs, size_t s, size_t cap, const struct fin *f)
{
    struct fin *list = bs->fins + s * bs->K;
    size_t n = bs->nfin[s];
    if (n == cap && !(f->score > list[n - 1].score))
        return;
    size_t pos = n < cap ? n : cap - 1;
    while (pos > 0 && list[pos - 1].score < f->score) {
        list[pos] = list[pos - 1];
        pos--;
    }
    list[pos] = *f;
    if (n < cap)
        bs->nfin[s] = n + 1;
}

/* Writes f's tokens to dst (f->ntok of them) and, when dst_aux is not NULL, their aux values to dst_aux. */
static void read_back(const struct beam_search *bs, const struct fin *f, int32_t *dst, int32_t *dst_aux)
{
    size_t pos = f->ntok;
    if (f->extra >= 0) {
        dst[--pos] = f->extra;
        if (dst_aux)
            dst_aux[pos] = f->extra_aux;
    }
    int32_t r = f->r0;
    for (int32_t u = f->u0; u >= 0 && pos > 0; u--) {
        size_t at = (size_t)u * bs->max_M + (size_t)r;
        dst[--pos] = bs->hist_tok[at];
        if (dst_aux)
            dst_aux[pos] = bs->hist_aux[at];
        r = bs->hist_back[at];
    }
}

/* The settings of one run, resolved from struct beam_opts. */
struct run {
    const struct beam_model *m;
    size_t max_len, nbest; /* steps (EOS included); hypotheses kept per sentence */
    float alpha;
    int fixed;             /* fixed-length mode */
    double lp_max;         /* beam_length_penalty(max_len) */
};

/* Checks the model and the options against the workspace; OUT: *r. */
static int run_check(const struct beam_search *bs, const struct beam_model *m, size_t B, const struct beam_opts *o,
                     struct run *r)
{
    const size_t K = bs->K, V = bs->V;
    r->m = m;
    r->max_len = o->max_len ? o->max_len : bs->max_len;
    r->nbest = o->nbest ? o->nbest : 1;
    r->alpha = o->alpha;
    r->fixed = o->fixed_length != 0;
    if (!m || !m->step || !m->reorder || m->V != V)
        return sl_err(SL_EINVAL, "beam search: model missing callbacks or V %zu != workspace V %zu",
                      m ? m->V : 0, V);
    if (B == 0 || B > bs->max_B || r->max_len > bs->max_len || r->nbest > K || !(o->alpha >= 0.0f) ||
        isinf(o->alpha))
        return sl_err(SL_EINVAL, "beam search: B %zu (max %zu), max_len %zu (max %zu), nbest %zu (K %zu), "
                      "alpha %g out of range", B, bs->max_B, r->max_len, bs->max_len, r->nbest, K, (double)o->alpha);
    if (m->bos < 0 || (size_t)m->bos >= V || m->eos < 0 || (size_t)m->eos >= V || m->pad < 0 ||
        (size_t)m->pad >= V)
        return sl_err(SL_EINVAL, "beam search: bos/eos/pad ids outside the vocabulary");
    r->lp_max = beam_length_penalty(r->max_len, r->alpha);
    return 0;
}

/* Layout_0: every sentence live, one hypothesis (row k = 0) each, all rows fed bos. */
static void run_start(struct beam_search *bs, const struct run *r, size_t B)
{
    const size_t K = bs->K;
    for (size_t s = 0; s < B; s++) {
        bs->active[s] = s;
        bs->nfin[s] = 0;
        bs->nres[s] = 0;
        for (size_t k = 0; k < K; k++) {
            size_t row = s * K + k;
            bs->score[row] = k == 0 ? 0.0 : -INFINITY; /* one live hypothesis per sentence at first */
            bs->prev[row] = r->m->bos;
            bs->done[row] = 0;
        }
    }
    bs->steps = 0;
}

/* Step t of the j-th live sentence s (rows [j·K, j·K + K) of layout_t): selects its extensions, moves
 * those ending in EOS to its finished list and lays the others out in the next-layout slots of the same
 * rows (nsrc, ntok, nscore, ndone). OUT: *stop = 1 when the sentence is done (nothing open, the last
 * step, or no open hypothesis can beat its nbest-th finished one). SL_ENUM on a bad log-probability. */
static int run_extend(struct beam_search *bs, const struct run *r, size_t j, size_t s, size_t t, int *stop)
{
    const struct beam_model *m = r->m;
    const size_t K = bs->K, base = j * K;
    long nc = select_topk(bs, m, base, r->fixed);
    if (nc < 0)
        return (int)nc;
    size_t open = 0;
    for (long c = 0; c < nc; c++) {
        const struct cand *cd = &bs->heap[c];
        if (!r->fixed && cd->tok == m->eos) {
            struct fin f = {cd->sc, cd->sc / beam_length_penalty(t + 1, r->alpha), (int32_t)t - 1, cd->row, -1, t,
                            t + 1, 1, -1};
            add_fin(bs, s, r->nbest, &f);
            continue;
        }
        size_t slot = base + open++;
        bs->nsrc[slot] = (size_t)cd->row;
        bs->ntok[slot] = cd->tok;
        bs->nscore[slot] = cd->sc;
        bs->ndone[slot] = r->fixed && (bs->done[cd->row] || cd->tok == m->eos);
        if (bs->cur_aux)
            bs->naux[slot] = bs->cur_aux[cd->row];
    }
    for (size_t k = open; k < K; k++) {
        bs->nsrc[base + k] = base;
        bs->ntok[base + k] = m->pad;
        bs->nscore[base + k] = -INFINITY;
        bs->ndone[base + k] = 0;
    }
    *stop = 0;
    if (r->fixed)
        return 0;
    if (open == 0) {
        *stop = 1;
    } else if (t + 1 == r->max_len) { /* finalise the open hypotheses as they are */
        for (size_t k = 0; k < open; k++) {
            size_t slot = base + k;
            struct fin f = {bs->nscore[slot], bs->nscore[slot] / r->lp_max, (int32_t)t - 1, (int32_t)bs->nsrc[slot],
                            bs->ntok[slot], t + 1, t + 1, 0, bs->cur_aux ? bs->naux[slot] : -1};
            add_fin(bs, s, r->nbest, &f);
        }
        *stop = 1;
    } else if (bs->nfin[s] == r->nbest) {
        double p = bs->nscore[base]; /* log-prob of the best open hypothesis */
        double bound = fmax(p / beam_length_penalty(t + 2, r->alpha), p / r->lp_max);
        *stop = bound <= bs->fins[s * K + r->nbest - 1].score;
    }
    return 0;
}

/* Compacts: the rows prepared at slots [from·K, from·K + K) become rows [to·K, to·K + K) of layout_{t+1},
 * with their history entries of step t. */
static void run_compact(struct beam_search *bs, size_t from, size_t to, size_t t)
{
    const size_t K = bs->K;
    for (size_t k = 0; k < K; k++) {
        size_t a = from * K + k, b = to * K + k;
        size_t at = t * bs->max_M + b;
        bs->hist_tok[at] = bs->ntok[a];
        bs->hist_back[at] = (int32_t)bs->nsrc[a];
        bs->src[b] = bs->nsrc[a];
        bs->prev[b] = bs->ntok[a];
        bs->score[b] = bs->nscore[a];
        bs->done[b] = bs->ndone[a];
        if (bs->cur_aux)
            bs->hist_aux[at] = bs->naux[a];
    }
}

/* Fixed-length mode after the last step: every live row is a result, cut at its first EOS and ranked by
 * its normalised score. */
static void run_finish_fixed(struct beam_search *bs, const struct run *r, size_t n_active)
{
    const size_t K = bs->K, n_steps = r->max_len;
    for (size_t j = 0; j < n_active; j++) {
        size_t s = bs->active[j];
        for (size_t k = 0; k < K; k++) {
            size_t row = j * K + k;
            if (bs->score[row] == -INFINITY)
                continue;
            struct fin f = {bs->score[row], 0, (int32_t)n_steps - 1, (int32_t)row, -1, n_steps, n_steps, 0, -1};
            int32_t *tmp = bs->out_tok + (s * K + K - 1) * bs->max_len; /* scratch: last result slot */
            read_back(bs, &f, tmp, NULL);
            for (size_t i = 0; i < n_steps; i++)
                if (tmp[i] == r->m->eos) {
                    f.finished = 1;
                    f.steps = i + 1;
                    break;
                }
            f.score = f.logprob / beam_length_penalty(f.steps, r->alpha);
            add_fin(bs, s, r->nbest, &f);
        }
    }
}

/* Reads every sentence's finished list back into its results (tokens, length, scores). */
static void run_results(struct beam_search *bs, const struct run *r, size_t B)
{
    const size_t K = bs->K;
    for (size_t s = 0; s < B; s++) {
        size_t n = bs->nfin[s];
        for (size_t i = 0; i < n; i++) {
            const struct fin *f = bs->fins + s * K + i;
            int32_t *dst = bs->out_tok + (s * K + i) * bs->max_len;
            int32_t *dst_aux = r->m->aux ? bs->out_aux + (s * K + i) * bs->max_len : NULL;
            read_back(bs, f, dst, dst_aux);
            struct beam_hyp *h = bs->res + s * K + i;
            h->tokens = dst;
            h->aux = dst_aux;
            h->len = f->ntok;
            if (r->fixed) /* the tokens before the first EOS; pads follow it */
                h->len = f->finished ? f->steps - 1 : f->ntok;
            h->logprob = f->logprob;
            h->score = f->score;
            h->finished = f->finished;
        }
        bs->nres[s] = n;
    }
}

int beam_search_run(struct beam_search *bs, const struct beam_model *m, size_t B, const struct beam_opts *o)
{
    struct run r = {0};
    int rc = run_check(bs, m, B, o, &r);
    if (rc)
        return rc;
    run_start(bs, &r, B);
    bs->cur_aux = NULL;
    const size_t K = bs->K;
    size_t n_active = B, M = B * K;
    for (size_t t = 0; t < r.max_len && n_active > 0; t++) {
        if ((rc = m->step(m->ctx, bs->prev, M, bs->logp)))
            return rc;
        bs->steps++;
        if (m->aux && !(bs->cur_aux = m->aux(m->ctx)))
            return sl_err(SL_EINVAL, "beam search: the model gave no aux values at step %zu", t);
        /* each live sentence extends its rows; those that go on move to the front of layout_{t+1} */
        size_t kept = 0;
        for (size_t j = 0; j < n_active; j++) {
            int stop = 0;
            if ((rc = run_extend(bs, &r, j, bs->active[j], t, &stop)))
                return rc;
            if (stop)
                continue;
            run_compact(bs, j, kept, t);
            bs->active[kept++] = bs->active[j];
        }
        /* the model follows the new layout (unless it is the old one, or nothing is left to decode) */
        size_t M_new = kept * K;
        if (t + 1 < r.max_len && M_new > 0) {
            int identity = M_new == M;
            for (size_t i = 0; identity && i < M_new; i++)
                identity = bs->src[i] == i;
            if (!identity && (rc = m->reorder(m->ctx, bs->src, M_new)))
                return rc;
        }
        n_active = kept;
        M = M_new;
    }
    if (r.fixed)
        run_finish_fixed(bs, &r, n_active);
    run_results(bs, &r, B);
    return 0;
}

const struct beam_hyp *beam_search_nbest(const struct beam_search *bs, size_t n, size_t *count)
{
    if (n >= bs->max_B) {
        *count = 0;
        return NULL;
    }
    *count = bs->nres[n];
    return bs->res + n * bs->K;
}

size_t beam_search_steps(const struct beam_search *bs) { return bs->steps; }
