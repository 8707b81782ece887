/* corpus/vocab_store.c: learn a BPE vocabulary from the train split, store it with the pairs' token
 * counts in one transaction, load it back (see vocab_store.h). Only db_* calls: no SQL here.
 * Order of work: read train pairs into the learner(s) (read-only), learn, encode every pair of every
 * split (read-only; counts kept in memory because db_pairs_foreach callbacks must not write), then
 * BEGIN, write vocab/token/merge rows and the counts, COMMIT (ROLLBACK on any failure).
 * ref: Sennrich, Haddow & Birch 2016. */
#include "corpus/vocab_store.h"

#include "corpus/db.h"
#include "util/clock.h"
#include "util/err.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct read_ctx {
    struct bpe_learner *src, *tgt; /* the same learner when joint */
    int64_t n;
};

static int read_cb(void *ctx, int64_t pair_id, const char *src, size_t srclen, const char *tgt,
                   size_t tgtlen)
{
    struct read_ctx *c = ctx;
    int rc = bpe_learner_add(c->src, src, srclen);
    if (rc)
        return sl_err_prefix(rc, "pair %lld, source", (long long)pair_id);
    if ((rc = bpe_learner_add(c->tgt, tgt, tgtlen)))
        return sl_err_prefix(rc, "pair %lld, target", (long long)pair_id);
    c->n++;
    return 0;
}

struct count_ctx {
    const struct bpe *src, *tgt;
    struct tok_ids ids;
    int64_t *pair_id, *ns, *nt; /* (n) */
    size_t n, cap;
};

static int count_cb(void *ctx, int64_t pair_id, const char *src, size_t srclen, const char *tgt,
                    size_t tgtlen)
{
    struct count_ctx *c = ctx;
    if (c->n == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 4096;
        int64_t *a = realloc(c->pair_id, cap * sizeof *a);
        if (a)
            c->pair_id = a;
        int64_t *b = realloc(c->ns, cap * sizeof *b);
        if (b)
            c->ns = b;
        int64_t *d = realloc(c->nt, cap * sizeof *d);
        if (d)
            c->nt = d;
        if (!a || !b || !d)
            return sl_err(SL_ENOMEM, "out of memory (token counts of %zu pairs)", cap);
        c->cap = cap;
    }
    int rc = bpe_encode(c->src, src, srclen, &c->ids);
    if (rc)
        return sl_err_prefix(rc, "pair %lld, source", (long long)pair_id);
    c->ns[c->n] = (int64_t)c->ids.n;
    if ((rc = bpe_encode(c->tgt, tgt, tgtlen, &c->ids)))
        return sl_err_prefix(rc, "pair %lld, target", (long long)pair_id);
    c->nt[c->n] = (int64_t)c->ids.n;
    c->pair_id[c->n] = pair_id;
    c->n++;
    return 0;
}

static int store_model(struct db *db, const struct bpe *b, const char *side, const char *settings,
                       int64_t *id)
{
    int rc = db_vocab_insert(db, "bpe", side, tok_norm_name(bpe_norm(b)), settings, (int64_t)bpe_size(b), id);
    if (rc)
        return rc;
    for (int32_t t = 0; (size_t)t < bpe_size(b); t++) {
        size_t len;
        const char *s = bpe_token(b, t, &len);
        if ((rc = db_token_insert(db, *id, t, s, len, bpe_token_count(b, t),
                                  bpe_kind_name(bpe_token_kind(b, t)))))
            return rc;
    }
    for (size_t r = 0; r < bpe_n_merges(b); r++) {
        int32_t l, rr, x;
        bpe_merge(b, r, &l, &rr, &x);
        if ((rc = db_merge_insert(db, *id, (int64_t)r, l, rr, x)))
            return rc;
    }
    return 0;
}

static size_t n_chars(const struct bpe *b)
{
    /* base characters sit between the "▁" token and the first merge result */
    if (bpe_n_merges(b) == 0)
        return bpe_size(b) - BPE_FIRST_LEARNED;
    int32_t l, r, x;
    bpe_merge(b, 0, &l, &r, &x);
    return (size_t)x - BPE_FIRST_LEARNED;
}

int corpus_vocab_learn(struct db *db, const struct corpus_vocab_opts *o, struct corpus_vocab_result *out)
{
    memset(out, 0, sizeof *out);
    if (o->size < BPE_SIZE_MIN || o->size > BPE_SIZE_MAX)
        return sl_err(SL_EINVAL, "vocabulary size %zu out of range (%d to %d)", o->size, BPE_SIZE_MIN,
                      BPE_SIZE_MAX);
    if (o->min_count < 1)
        return sl_err(SL_EINVAL, "min count must be at least 1");
    double t0 = clock_now();
    int64_t n_train = 0;
    int rc = db_split_count(db, "train", &n_train);
    if (rc)
        return rc;
    if (n_train == 0)
        return sl_err(SL_ENOTFOUND,
                      "no training pairs in the database: import some first (seqlite import DB SRC TGT "
                      "--split train)");
    int joint = o->mode == CORPUS_VOCAB_JOINT;
    struct bpe_learner *ls = bpe_learner_create(o->norm);
    struct bpe_learner *lt = joint ? ls : bpe_learner_create(o->norm);
    struct bpe *bs = NULL, *bt = NULL;
    struct count_ctx cc;
    memset(&cc, 0, sizeof cc);
    tok_ids_init(&cc.ids);
    int in_tx = 0;
    if (!ls || !lt) {
        rc = SL_ENOMEM;
        goto done;
    }
    struct read_ctx rd = {ls, lt, 0};
    if ((rc = db_pairs_foreach(db, "train", read_cb, &rd)))
        goto done;
    double t1 = clock_now();
    struct bpe_learn_opts lo = {o->size, o->min_count};
    if ((rc = bpe_learner_learn(ls, &lo, &bs)))
        goto done;
    if (joint) {
        bt = bs;
    } else if ((rc = bpe_learner_learn(lt, &lo, &bt))) {
        goto done;
    }
    out->learn_seconds = clock_now() - t1;
    /* free the word tables before encoding everything */
    bpe_learner_free(ls);
    if (lt != ls)
        bpe_learner_free(lt);
    ls = lt = NULL;

    cc.src = bs;
    cc.tgt = bt;
    static const char *const splits[] = {"train", "valid", "test"};
    for (int s = 0; s < 3; s++)
        if ((rc = db_pairs_foreach(db, splits[s], count_cb, &cc)))
            goto done;

    char settings[512];
    snprintf(settings, sizeof settings,
             "{\"size\":%zu,\"min_count\":%lld,\"normalization\":\"%s\",\"mode\":\"%s\",\"train_pairs\":%lld}",
             o->size, (long long)o->min_count, tok_norm_name(o->norm), joint ? "joint" : "separate",
             (long long)rd.n);
    if ((rc = db_begin(db)))
        goto done;
    in_tx = 1;
    if ((rc = store_model(db, bs, joint ? "joint" : "src", settings, &out->src_id)))
        goto done;
    if (joint)
        out->tgt_id = out->src_id;
    else if ((rc = store_model(db, bt, "tgt", settings, &out->tgt_id)))
        goto done;
    for (size_t i = 0; i < cc.n; i++)
        if ((rc = db_pair_set_tokens(db, cc.pair_id[i], cc.ns[i], cc.nt[i])))
            goto done;
    if ((rc = db_commit(db)))
        goto done;
    in_tx = 0;
    out->src_size = bpe_size(bs);
    out->tgt_size = bpe_size(bt);
    out->src_merges = bpe_n_merges(bs);
    out->tgt_merges = bpe_n_merges(bt);
    out->src_chars = n_chars(bs);
    out->tgt_chars = n_chars(bt);
    out->n_pairs = rd.n;
    out->n_encoded = (int64_t)cc.n;
    out->total_seconds = clock_now() - t0;
done:
    if (in_tx)
        db_rollback(db); /* keeps the first error's message: rollback only reports its own failure */
    if (lt != ls)
        bpe_learner_free(lt);
    bpe_learner_free(ls);
    if (bt != bs)
        bpe_free(bt);
    bpe_free(bs);
    tok_ids_free(&cc.ids);
    free(cc.pair_id);
    free(cc.ns);
    free(cc.nt);
    return rc;
}

struct load_ctx {
    struct bpe *b;
};

static int token_cb(void *ctx, int64_t token_id, const char *bytes, size_t len, int64_t count, const char *kind)
{
    struct load_ctx *c = ctx;
    enum bpe_kind k;
    if (bpe_kind_parse(kind, &k))
        return sl_err(SL_ECORRUPT, "token %lld: unknown kind '%s'", (long long)token_id, kind);
    if (token_id < 0 || token_id >= BPE_SIZE_MAX)
        return sl_err(SL_ECORRUPT, "token id %lld out of range", (long long)token_id);
    return bpe_add_token(c->b, (int32_t)token_id, bytes, len, k, count);
}

static int merge_cb(void *ctx, int64_t rank, int64_t left, int64_t right, int64_t result)
{
    struct load_ctx *c = ctx;
    if (rank < 0 || rank >= BPE_SIZE_MAX || left < 0 || left >= BPE_SIZE_MAX || right < 0 ||
        right >= BPE_SIZE_MAX || result < 0 || result >= BPE_SIZE_MAX)
        return sl_err(SL_ECORRUPT, "merge %lld: id out of range", (long long)rank);
    return bpe_add_merge(c->b, (int32_t)rank, (int32_t)left, (int32_t)right, (int32_t)result);
}

int corpus_vocab_load(struct db *db, int64_t vocab_id, struct bpe **out)
{
    *out = NULL;
    struct db_vocab v;
    memset(&v, 0, sizeof v);
    int rc = db_vocab_get(db, vocab_id, &v);
    if (rc)
        return rc;
    struct load_ctx c = {NULL};
    enum tok_norm norm;
    if (strcmp(v.kind, "bpe") != 0) {
        rc = sl_err(SL_ECORRUPT, "vocab %lld: kind '%s' is not bpe", (long long)vocab_id, v.kind);
        goto done;
    }
    if (tok_norm_parse(v.normalization, &norm)) {
        rc = sl_err_prefix(SL_ECORRUPT, "vocab %lld", (long long)vocab_id);
        goto done;
    }
    if (!(c.b = bpe_create(norm))) {
        rc = SL_ENOMEM;
        goto done;
    }
    if ((rc = db_tokens_foreach(db, vocab_id, token_cb, &c)) ||
        (rc = db_merges_foreach(db, vocab_id, merge_cb, &c)) || (rc = bpe_finalize(c.b))) {
        sl_err_prefix(rc, "vocab %lld", (long long)vocab_id);
        goto done;
    }
    if ((int64_t)bpe_size(c.b) != v.size) {
        rc = sl_err(SL_ECORRUPT, "vocab %lld: %zu tokens stored, size says %lld", (long long)vocab_id,
                    bpe_size(c.b), (long long)v.size);
        goto done;
    }
    *out = c.b;
    c.b = NULL;
done:
    bpe_free(c.b);
    db_vocab_clear(&v);
    return rc;
}

int corpus_vocab_latest(struct db *db, const char *side, int64_t *id)
{
    if (!side || (strcmp(side, "src") && strcmp(side, "tgt") && strcmp(side, "joint")))
        return sl_err(SL_EINVAL, "side '%s' is not src, tgt or joint", side ? side : "(null)");
    return db_vocab_latest(db, side, id);
}

int corpus_vocab_load_latest(struct db *db, const char *side, struct bpe **out, int64_t *id)
{
    int64_t v = 0;
    *out = NULL;
    int rc = corpus_vocab_latest(db, side, &v);
    if (rc)
        return rc;
    if ((rc = corpus_vocab_load(db, v, out)))
        return rc;
    if (id)
        *id = v;
    return 0;
}

int corpus_vocab_encode(void *ctx, const char *text, size_t len, enum batch_side side,
                        const int32_t **ids, size_t *n)
{
    struct corpus_vocab_encoder *e = ctx;
    int rc = bpe_encode(side == BATCH_TGT ? e->tgt : e->src, text, len, &e->ids);
    if (rc)
        return rc;
    *ids = e->ids.ids;
    *n = e->ids.n;
    return 0;
}
