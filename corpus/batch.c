/* corpus/batch.c: encoded pairs as flat arrays, and length-bucketed padded batches (see batch.h).
 * Determinism: everything random is drawn from an rng seeded by mix(seed, epoch), and the sort key
 * (src_len, tgt_len, random tie-break, index) is a total order, so qsort's instability cannot show.
 * ref: Sutskever, Vinyals & Le 2014; fairseq's max_tokens batching (ordered_indices + batch_by_size). */
#include "corpus/batch.h"

#include "corpus/db.h"
#include "util/err.h"
#include "util/rng.h"
#include "util/vec.h"

#include <stdlib.h>
#include <string.h>

_Static_assert(BPE_PAD == 0, "batch rows are padded by zeroing them");

/* ---- batch_data ---- */

struct batch_data *batch_data_create(size_t max_len)
{
    struct batch_data *d = calloc(1, sizeof *d);
    if (!d) {
        sl_err(SL_ENOMEM, "out of memory");
        return NULL;
    }
    d->max_len = max_len;
    return d;
}

void batch_data_free(struct batch_data *d)
{
    if (!d)
        return;
    free(d->ids);
    free(d->off);
    free(d->src_len);
    free(d->tgt_len);
    free(d->pair_id);
    free(d);
}

static int data_resize(struct batch_data *d, size_t cap)
{
    int rc;
    if ((rc = vec_resize(&d->off, cap, sizeof *d->off)) ||
        (rc = vec_resize(&d->src_len, cap, sizeof *d->src_len)) ||
        (rc = vec_resize(&d->tgt_len, cap, sizeof *d->tgt_len)) ||
        (rc = vec_resize(&d->pair_id, cap, sizeof *d->pair_id)))
        return rc;
    d->cap = cap;
    return 0;
}

int batch_data_add(struct batch_data *d, int64_t pair_id, const int32_t *src, size_t ns,
                   const int32_t *tgt, size_t nt)
{
    if (ns == 0 || nt == 0) {
        d->n_empty++;
        return 0;
    }
    if ((d->max_len && (ns > d->max_len || nt > d->max_len)) || ns > UINT32_MAX || nt > UINT32_MAX) {
        d->n_long++;
        return 0;
    }
    if (d->n == d->cap) {
        int rc = data_resize(d, d->cap ? d->cap * 2 : 1024);
        if (rc)
            return rc;
    }
    if (d->n_ids + ns + nt > d->cap_ids) {
        size_t cap = d->cap_ids ? d->cap_ids : 16384;
        while (cap < d->n_ids + ns + nt)
            cap *= 2;
        int rc = vec_resize(&d->ids, cap, sizeof *d->ids);
        if (rc)
            return rc;
        d->cap_ids = cap;
    }
    d->off[d->n] = d->n_ids;
    memcpy(d->ids + d->n_ids, src, ns * sizeof *src);
    memcpy(d->ids + d->n_ids + ns, tgt, nt * sizeof *tgt);
    d->n_ids += ns + nt;
    d->src_len[d->n] = (uint32_t)ns;
    d->tgt_len[d->n] = (uint32_t)nt;
    d->pair_id[d->n] = pair_id;
    d->n++;
    return 0;
}

void batch_data_shrink(struct batch_data *d)
{
    /* shrinking never fails in practice; if it does, the larger arrays stay */
    if (d->n && d->n < d->cap && data_resize(d, d->n) == 0)
        d->cap = d->n;
    if (d->n_ids && d->n_ids < d->cap_ids && vec_resize(&d->ids, d->n_ids, sizeof *d->ids) == 0)
        d->cap_ids = d->n_ids;
}

struct load_ctx {
    struct batch_data *d;
    batch_encode_fn encode;
    void *ctx;
    int32_t *src; /* copy of the source ids: the encoder's buffer is reused for the target */
    size_t cap;
};

static int load_one(void *vctx, int64_t pair_id, const char *src, size_t srclen, const char *tgt,
                    size_t tgtlen)
{
    struct load_ctx *c = vctx;
    const int32_t *ids;
    size_t ns, nt;
    int rc = c->encode(c->ctx, src, srclen, BATCH_SRC, &ids, &ns);
    if (rc)
        return sl_err_prefix(rc, "pair %lld, source", (long long)pair_id);
    if (ns > c->cap) {
        size_t cap = c->cap ? c->cap : 256;
        while (cap < ns)
            cap *= 2;
        if ((rc = vec_resize(&c->src, cap, sizeof *c->src)))
            return rc;
        c->cap = cap;
    }
    if (ns)
        memcpy(c->src, ids, ns * sizeof *ids);
    if ((rc = c->encode(c->ctx, tgt, tgtlen, BATCH_TGT, &ids, &nt)))
        return sl_err_prefix(rc, "pair %lld, target", (long long)pair_id);
    return batch_data_add(c->d, pair_id, c->src, ns, ids, nt);
}

int batch_data_load(struct batch_data *d, struct db *db, const char *split, batch_encode_fn encode,
                    void *ctx)
{
    return batch_data_load_in(d, db, split, NULL, 0, encode, ctx);
}

int batch_data_load_in(struct batch_data *d, struct db *db, const char *split, const int64_t *corpus_ids,
                       size_t n_ids, batch_encode_fn encode, void *ctx)
{
    struct load_ctx c = {.d = d, .encode = encode, .ctx = ctx};
    int rc = db_pairs_foreach_in(db, split, corpus_ids, n_ids, load_one, &c);
    free(c.src);
    if (!rc)
        batch_data_shrink(d);
    return rc;
}

/* ---- batch_plan ---- */

struct plan_key {
    uint32_t s, t; /* budget lengths: source (EOS included when src_eos), target + 2 (BOS, EOS) */
    uint32_t r;    /* random tie-break */
    uint32_t idx;  /* index in the data */
};

struct batch_plan {
    const struct batch_data *d;
    struct batch_opts o;
    size_t n;               /* pairs taking part (data minus n_over) */
    size_t n_over;
    size_t min_need;        /* the smallest max_tokens that fits one pair of d alone (0: d empty) */
    size_t max_s, max_t;    /* longest budget lengths (pad_s, pad_t) of any pair taking part */
    struct plan_key *keys;  /* (n) this epoch's sorted order */
    size_t *start;          /* (n + 1) batch j covers keys[start[j] .. start[j+1]) */
    size_t *order;          /* (n) batch order of this epoch: i-th batch is order[i] */
    size_t n_batches;
    int have_epoch;
};

static size_t max_z(size_t a, size_t b) { return a > b ? a : b; }

/* The lengths the token budget counts: the source row (EOS included), the target with BOS and EOS
 * (the decoder's T + 1 inputs and T + 1 labels span T + 2 ids). */
static size_t pad_s(const struct batch_plan *p, size_t i) { return p->d->src_len[i] + (p->o.src_eos ? 1 : 0); }
static size_t pad_t(const struct batch_plan *p, size_t i) { return (size_t)p->d->tgt_len[i] + 2; }

struct batch_plan *batch_plan_create(const struct batch_data *d, const struct batch_opts *o)
{
    if (o->max_sents < 1) {
        sl_err(SL_EINVAL, "batch size must be at least 1 sentence");
        return NULL;
    }
    if (d->n > UINT32_MAX) {
        sl_err(SL_EINVAL, "too many pairs for one batch plan (%zu)", d->n);
        return NULL;
    }
    struct batch_plan *p = calloc(1, sizeof *p);
    if (!p) {
        sl_err(SL_ENOMEM, "out of memory");
        return NULL;
    }
    p->d = d;
    p->o = *o;
    for (size_t i = 0; i < d->n; i++) {
        size_t s = pad_s(p, i), t = pad_t(p, i);
        if (i == 0 || max_z(s, t) < p->min_need)
            p->min_need = max_z(s, t);
        if (o->max_tokens && max_z(s, t) > o->max_tokens) {
            p->n_over++;
            continue;
        }
        p->n++;
        p->max_s = max_z(p->max_s, s);
        p->max_t = max_z(p->max_t, t);
    }
    p->keys = malloc(max_z(p->n, 1) * sizeof *p->keys);
    p->start = malloc((p->n + 1) * sizeof *p->start);
    p->order = malloc(max_z(p->n, 1) * sizeof *p->order);
    if (!p->keys || !p->start || !p->order) {
        batch_plan_free(p);
        sl_err(SL_ENOMEM, "out of memory (batch plan of %zu pairs)", d->n);
        return NULL;
    }
    return p;
}

void batch_plan_free(struct batch_plan *p)
{
    if (!p)
        return;
    free(p->keys);
    free(p->start);
    free(p->order);
    free(p);
}

static int key_cmp(const void *va, const void *vb)
{
    const struct plan_key *a = va, *b = vb;
    if (a->s != b->s)
        return a->s < b->s ? -1 : 1;
    if (a->t != b->t)
        return a->t < b->t ? -1 : 1;
    if (a->r != b->r)
        return a->r < b->r ? -1 : 1;
    return a->idx < b->idx ? -1 : a->idx > b->idx;
}

int batch_plan_epoch(struct batch_plan *p, uint64_t epoch)
{
    const struct batch_data *d = p->d;
    struct rng r;
    rng_seed(&r, rng_mix64(p->o.seed ^ rng_mix64(epoch + RNG_GOLDEN_GAMMA))); /* spread over the seed space */
    size_t k = 0;
    for (size_t i = 0; i < d->n; i++) {
        size_t s = pad_s(p, i), t = pad_t(p, i);
        if (p->o.max_tokens && max_z(s, t) > p->o.max_tokens)
            continue;
        p->keys[k].s = (uint32_t)s;
        p->keys[k].t = (uint32_t)t;
        p->keys[k].r = (uint32_t)(rng_next(&r) >> 32);
        p->keys[k].idx = (uint32_t)i;
        k++;
    }
    qsort(p->keys, p->n, sizeof *p->keys, key_cmp);
    /* cut greedily: a batch grows while it has room for one more row under both limits */
    size_t nb = 0, rows = 0, S = 0, T = 0;
    for (size_t i = 0; i < p->n; i++) {
        size_t s2 = max_z(S, p->keys[i].s), t2 = max_z(T, p->keys[i].t);
        int fits = rows < p->o.max_sents && (!p->o.max_tokens || (rows + 1) * max_z(s2, t2) <= p->o.max_tokens);
        if (rows == 0 || !fits) {
            p->start[nb++] = i;
            rows = 0;
            s2 = p->keys[i].s;
            t2 = p->keys[i].t;
        }
        rows++;
        S = s2;
        T = t2;
    }
    p->start[nb] = p->n;
    p->n_batches = nb;
    for (size_t j = 0; j < nb; j++)
        p->order[j] = j;
    rng_shuffle(&r, p->order, nb, sizeof *p->order);
    p->have_epoch = 1;
    return 0;
}

size_t batch_plan_count(const struct batch_plan *p) { return p->have_epoch ? p->n_batches : 0; }

size_t batch_plan_n_over(const struct batch_plan *p) { return p->n_over; }

size_t batch_plan_min_tokens(const struct batch_plan *p) { return p->min_need; }

struct batch *batch_create(const struct batch_plan *p)
{
    struct batch *b = calloc(1, sizeof *b);
    if (!b) {
        sl_err(SL_ENOMEM, "out of memory");
        return NULL;
    }
    size_t rows = p->o.max_sents;
    if (p->n && rows > p->n)
        rows = p->n;
    size_t cs = rows * p->max_s, ct = rows * p->max_t;
    if (p->o.max_tokens) {
        /* rows * max(S, T) <= max_tokens bounds both sides */
        if (cs > p->o.max_tokens)
            cs = p->o.max_tokens;
        if (ct > p->o.max_tokens)
            ct = p->o.max_tokens;
        if (rows > p->o.max_tokens)
            rows = p->o.max_tokens;
    }
    rows = max_z(rows, 1);
    b->src = malloc(max_z(cs, 1) * sizeof *b->src);
    b->tgt = malloc(max_z(ct, 1) * sizeof *b->tgt);
    b->src_len = malloc(rows * sizeof *b->src_len);
    b->tgt_len = malloc(rows * sizeof *b->tgt_len);
    b->index = malloc(rows * sizeof *b->index);
    b->pair_id = malloc(rows * sizeof *b->pair_id);
    if (!b->src || !b->tgt || !b->src_len || !b->tgt_len || !b->index || !b->pair_id) {
        batch_free(b);
        sl_err(SL_ENOMEM, "out of memory (batch buffers)");
        return NULL;
    }
    b->cap_rows = rows;
    b->cap_src = max_z(cs, 1);
    b->cap_tgt = max_z(ct, 1);
    return b;
}

void batch_free(struct batch *b)
{
    if (!b)
        return;
    free(b->src);
    free(b->tgt);
    free(b->src_len);
    free(b->tgt_len);
    free(b->index);
    free(b->pair_id);
    free(b);
}

int batch_plan_fill(const struct batch_plan *p, size_t i, struct batch *b)
{
    if (!p->have_epoch)
        return sl_err(SL_EINVAL, "batch_plan_fill before batch_plan_epoch");
    if (i >= p->n_batches)
        return sl_err(SL_EINVAL, "batch %zu out of range (%zu batches in this epoch)", i, p->n_batches);
    const struct batch_data *d = p->d;
    size_t j = p->order[i];
    size_t lo = p->start[j], hi = p->start[j + 1];
    size_t B = hi - lo, S = 0, T = 0;
    for (size_t k = lo; k < hi; k++) {
        S = max_z(S, p->keys[k].s);
        T = max_z(T, (size_t)p->keys[k].t - 2); /* keys count BOS and EOS; the rows hold neither */
    }
    if (B > b->cap_rows || B * S > b->cap_src || B * T > b->cap_tgt)
        return sl_err(SL_EINVAL, "batch buffers too small (made for another plan?)");
    b->B = B;
    b->S = S;
    b->T = T;
    b->n_src_tokens = b->n_tgt_tokens = 0;
    memset(b->src, 0, B * S * sizeof *b->src);
    memset(b->tgt, 0, B * T * sizeof *b->tgt);
    for (size_t r = 0; r < B; r++) {
        size_t idx = p->keys[lo + r].idx;
        size_t ns = d->src_len[idx], nt = d->tgt_len[idx];
        const int32_t *ids = d->ids + d->off[idx];
        int32_t *srow = b->src + r * S; /* (S) */
        int32_t *trow = b->tgt + r * T; /* (T) */
        memcpy(srow, ids, ns * sizeof *ids);
        if (p->o.src_eos)
            srow[ns++] = BPE_EOS;
        memcpy(trow, ids + d->src_len[idx], nt * sizeof *ids);
        b->src_len[r] = (int32_t)ns;
        b->tgt_len[r] = (int32_t)nt;
        b->index[r] = idx;
        b->pair_id[r] = d->pair_id[idx];
        b->n_src_tokens += ns;
        b->n_tgt_tokens += nt;
    }
    return 0;
}
