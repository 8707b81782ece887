/* tests/test_batch.c: corpus/batch.c: padding and lengths by hand, every pair exactly once per
 * epoch, max_len and token-budget filtering, determinism by (seed, epoch) and resuming, and loading a
 * split through an encoder callback. */
#include <criterion/criterion.h>

#include "corpus/batch.h"
#include "corpus/db.h"
#include "tests/helpers.h"
#include "util/err.h"

#include <stdlib.h>
#include <string.h>

/* Pair i has a source of src_n[i] tokens 100*i+1, 100*i+2, ... and a target of tgt_n[i] tokens
 * 100*i+51, ... so every id says which pair and position it came from. */
static struct batch_data *make_data(size_t n, const size_t *src_n, const size_t *tgt_n, size_t max_len)
{
    struct batch_data *d = batch_data_create(max_len);
    cr_assert(d);
    int32_t s[64], t[64];
    for (size_t i = 0; i < n; i++) {
        cr_assert_leq(src_n[i], 64);
        cr_assert_leq(tgt_n[i], 64);
        for (size_t k = 0; k < src_n[i]; k++)
            s[k] = (int32_t)(100 * i + 1 + k);
        for (size_t k = 0; k < tgt_n[i]; k++)
            t[k] = (int32_t)(100 * i + 51 + k);
        cr_assert_eq(batch_data_add(d, (int64_t)(1000 + i), s, src_n[i], t, tgt_n[i]), 0);
    }
    return d;
}

/* A pseudo-random data set of n pairs with lengths 1..maxl. */
static struct batch_data *random_data(size_t n, size_t maxl, unsigned seed)
{
    size_t *a = malloc(n * sizeof *a), *b = malloc(n * sizeof *b);
    unsigned x = seed;
    for (size_t i = 0; i < n; i++) {
        x = x * 1103515245u + 12345u;
        a[i] = 1 + (x >> 16) % maxl;
        x = x * 1103515245u + 12345u;
        b[i] = 1 + (x >> 16) % maxl;
    }
    struct batch_data *d = make_data(n, a, b, 0);
    free(a);
    free(b);
    return d;
}

Test(batch, data_arrays_and_filtering)
{
    size_t s[] = {2, 5, 0, 3, 1};
    size_t t[] = {3, 1, 2, 4, 0};
    struct batch_data *d = make_data(5, s, t, 4);
    /* pair 1 (5 source tokens) is too long; pairs 2 and 4 have an empty side */
    cr_assert_eq(d->n, 2);
    cr_assert_eq(d->n_long, 1);
    cr_assert_eq(d->n_empty, 2);
    cr_assert_eq(d->n_ids, 2 + 3 + 3 + 4);
    cr_assert_eq(d->pair_id[0], 1000);
    cr_assert_eq(d->pair_id[1], 1003);
    cr_assert_eq(d->off[1], 5);
    cr_assert_eq(d->src_len[1], 3);
    cr_assert_eq(d->tgt_len[1], 4);
    cr_assert_eq(d->ids[d->off[1]], 301);
    cr_assert_eq(d->ids[d->off[1] + 3], 351);
    batch_data_shrink(d);
    cr_assert_eq(d->cap, 2);
    cr_assert_eq(d->cap_ids, 12);
    cr_assert_eq(d->ids[11], 354);
    batch_data_free(d);
    batch_data_free(NULL);
}

Test(batch, padding_and_lengths_by_hand)
{
    /* two pairs of equal lengths so they share one batch; a third alone */
    size_t s[] = {2, 3, 2};
    size_t t[] = {1, 2, 3};
    struct batch_data *d = make_data(3, s, t, 0);
    struct batch_opts o = {.max_sents = 2, .seed = 7, .src_eos = 1};
    struct batch_plan *p = batch_plan_create(d, &o);
    cr_assert(p);
    cr_assert_eq(batch_plan_count(p), 0);
    cr_assert_eq(batch_plan_epoch(p, 0), 0);
    /* sorted by (src_len, tgt_len): pair 0 (2,1), pair 2 (2,3), pair 1 (3,2) -> [0,2] [1] */
    cr_assert_eq(batch_plan_count(p), 2);
    struct batch *b = batch_create(p);
    cr_assert(b);
    int seen_pair_batch = 0;
    for (size_t i = 0; i < 2; i++) {
        cr_assert_eq(batch_plan_fill(p, i, b), 0, "%s", sl_errmsg());
        if (b->B == 2) {
            seen_pair_batch = 1;
            cr_assert_eq(b->S, 3); /* 2 tokens + EOS */
            cr_assert_eq(b->T, 3); /* the target tokens: the decoder adds BOS and EOS */
            int32_t src[2][3] = {{1, 2, BPE_EOS}, {201, 202, BPE_EOS}};
            int32_t tgt[2][3] = {{51, BPE_PAD, BPE_PAD}, {251, 252, 253}};
            for (int r = 0; r < 2; r++) {
                for (int k = 0; k < 3; k++)
                    cr_assert_eq(b->src[r * 3 + k], src[r][k], "src[%d][%d]", r, k);
                for (int k = 0; k < 3; k++)
                    cr_assert_eq(b->tgt[r * 3 + k], tgt[r][k], "tgt[%d][%d] = %d", r, k, b->tgt[r * 3 + k]);
            }
            cr_assert_eq(b->src_len[0], 3);
            cr_assert_eq(b->src_len[1], 3);
            cr_assert_eq(b->tgt_len[0], 1);
            cr_assert_eq(b->tgt_len[1], 3);
            cr_assert_eq(b->pair_id[0], 1000);
            cr_assert_eq(b->pair_id[1], 1002);
            cr_assert_eq(b->index[1], 2);
            cr_assert_eq(b->n_src_tokens, 6);
            cr_assert_eq(b->n_tgt_tokens, 4);
        } else {
            cr_assert_eq(b->B, 1);
            cr_assert_eq(b->S, 4);
            cr_assert_eq(b->T, 2);
            int32_t src[4] = {101, 102, 103, BPE_EOS};
            int32_t tgt[2] = {151, 152};
            cr_assert(memcmp(b->src, src, sizeof src) == 0);
            cr_assert(memcmp(b->tgt, tgt, sizeof tgt) == 0);
        }
    }
    cr_assert(seen_pair_batch);
    cr_assert_eq(batch_plan_fill(p, 2, b), SL_EINVAL);

    /* without src_eos the source rows are the bare tokens, padded with 0 */
    struct batch_opts o2 = {.max_sents = 3, .seed = 7};
    struct batch_plan *p2 = batch_plan_create(d, &o2);
    cr_assert_eq(batch_plan_epoch(p2, 0), 0);
    cr_assert_eq(batch_plan_count(p2), 1);
    struct batch *b2 = batch_create(p2);
    cr_assert_eq(batch_plan_fill(p2, 0, b2), 0);
    cr_assert_eq(b2->B, 3);
    cr_assert_eq(b2->S, 3);
    cr_assert_eq(b2->src[0 * 3 + 2], BPE_PAD); /* pair 0: 1 2 pad */
    cr_assert_eq(b2->src[2 * 3 + 2], 103);       /* pair 1 is last (longest source) */
    cr_assert_eq(b2->src_len[0], 2);
    batch_free(b2);
    batch_plan_free(p2);
    batch_free(b);
    batch_plan_free(p);
    batch_data_free(d);
}

/* Checks that the epoch covers every pair of d exactly once and every batch respects the limits. */
static void check_epoch(struct batch_plan *p, const struct batch_data *d, const struct batch_opts *o,
                        struct batch *b)
{
    char *seen = calloc(d->n, 1);
    size_t total = 0;
    for (size_t i = 0; i < batch_plan_count(p); i++) {
        cr_assert_eq(batch_plan_fill(p, i, b), 0, "%s", sl_errmsg());
        cr_assert_geq(b->B, 1);
        cr_assert_leq(b->B, o->max_sents);
        if (o->max_tokens) {
            size_t m = b->S > b->T + 2 ? b->S : b->T + 2; /* the budget counts BOS and EOS */
            cr_assert_leq(b->B * m, o->max_tokens, "batch %zu: %zu x %zu", i, b->B, m);
        }
        for (size_t r = 0; r < b->B; r++) {
            size_t idx = b->index[r];
            cr_assert_lt(idx, d->n);
            cr_assert_not(seen[idx], "pair %zu twice", idx);
            seen[idx] = 1;
            cr_assert_eq(b->src_len[r], (int32_t)d->src_len[idx] + (o->src_eos ? 1 : 0));
            cr_assert_eq(b->tgt_len[r], (int32_t)d->tgt_len[idx]);
            cr_assert_leq((size_t)b->src_len[r], b->S);
            cr_assert_leq((size_t)b->tgt_len[r], b->T);
            /* the row's padding is all zeros; the target is the pair's tokens, no BOS / EOS */
            for (size_t k = (size_t)b->src_len[r]; k < b->S; k++)
                cr_assert_eq(b->src[r * b->S + k], BPE_PAD);
            cr_assert(memcmp(b->tgt + r * b->T, d->ids + d->off[idx] + d->src_len[idx],
                             d->tgt_len[idx] * sizeof *d->ids) == 0, "row %zu: target differs", r);
            for (size_t k = (size_t)b->tgt_len[r]; k < b->T; k++)
                cr_assert_eq(b->tgt[r * b->T + k], BPE_PAD);
        }
        total += b->B;
    }
    cr_assert_eq(total + batch_plan_n_over(p), d->n);
    free(seen);
}

Test(batch, every_pair_once_per_epoch)
{
    struct batch_data *d = random_data(500, 30, 1);
    struct batch_opts o = {.max_sents = 16, .seed = 3};
    struct batch_plan *p = batch_plan_create(d, &o);
    struct batch *b = batch_create(p);
    for (uint64_t e = 0; e < 3; e++) {
        cr_assert_eq(batch_plan_epoch(p, e), 0);
        cr_assert_geq(batch_plan_count(p), 500 / 16);
        check_epoch(p, d, &o, b);
    }
    batch_free(b);
    batch_plan_free(p);
    batch_data_free(d);
}

Test(batch, token_budget_is_never_exceeded)
{
    struct batch_data *d = random_data(400, 40, 2);
    struct batch_opts o = {.max_sents = 1000, .max_tokens = 120, .seed = 5, .src_eos = 1};
    struct batch_plan *p = batch_plan_create(d, &o);
    struct batch *b = batch_create(p);
    cr_assert_eq(batch_plan_n_over(p), 0); /* longest padded side is 42 */
    cr_assert_leq(b->cap_src, 120);
    for (uint64_t e = 0; e < 2; e++) {
        cr_assert_eq(batch_plan_epoch(p, e), 0);
        check_epoch(p, d, &o, b);
    }
    batch_free(b);
    batch_plan_free(p);

    /* a budget smaller than some pairs: those are left out and counted */
    size_t s[] = {3, 10, 2};
    size_t t[] = {3, 2, 9};
    struct batch_data *d2 = make_data(3, s, t, 0);
    struct batch_opts o2 = {.max_sents = 8, .max_tokens = 10, .seed = 1};
    struct batch_plan *p2 = batch_plan_create(d2, &o2);
    /* pair 1: S 10 fits; pair 2: T 9 + 2 = 11 > 10 does not */
    cr_assert_eq(batch_plan_n_over(p2), 1);
    cr_assert_eq(batch_plan_min_tokens(p2), 5); /* pair 0: max(3, 3 + 2) */
    cr_assert_eq(batch_plan_epoch(p2, 0), 0);
    struct batch *b2 = batch_create(p2);
    check_epoch(p2, d2, &o2, b2);
    cr_assert_eq(batch_plan_count(p2), 2); /* 2 x max(10, 5) > 10: one pair per batch */
    batch_free(b2);
    batch_plan_free(p2);
    batch_data_free(d2);
    batch_data_free(d);
}

/* Fingerprint of a whole epoch: the pair ids in batch order. */
static void epoch_ids(struct batch_plan *p, struct batch *b, uint64_t e, int64_t *out, size_t n)
{
    cr_assert_eq(batch_plan_epoch(p, e), 0);
    size_t k = 0;
    for (size_t i = 0; i < batch_plan_count(p); i++) {
        cr_assert_eq(batch_plan_fill(p, i, b), 0);
        for (size_t r = 0; r < b->B; r++) {
            cr_assert_lt(k, n);
            out[k++] = b->pair_id[r];
        }
    }
    cr_assert_eq(k, n);
}

Test(batch, deterministic_by_seed_and_epoch_and_resumable)
{
    /* few distinct lengths, so the tie-break matters as much as the batch order */
    struct batch_data *d = random_data(300, 4, 9);
    size_t n = d->n;
    struct batch_opts o = {.max_sents = 8, .seed = 42};
    struct batch_plan *p1 = batch_plan_create(d, &o), *p2 = batch_plan_create(d, &o);
    struct batch *b = batch_create(p1);
    int64_t *a0 = malloc(n * sizeof *a0), *a1 = malloc(n * sizeof *a1), *c = malloc(n * sizeof *c);
    epoch_ids(p1, b, 0, a0, n);
    epoch_ids(p1, b, 1, a1, n);
    cr_assert(memcmp(a0, a1, n * sizeof *a0) != 0, "epochs 0 and 1 give the same batches");
    /* a fresh plan asked for epoch 1 directly (resume) gives epoch 1 exactly */
    epoch_ids(p2, b, 1, c, n);
    cr_assert(memcmp(a1, c, n * sizeof *c) == 0, "resumed epoch 1 differs");
    /* and going back to epoch 0 gives epoch 0 again */
    epoch_ids(p2, b, 0, c, n);
    cr_assert(memcmp(a0, c, n * sizeof *c) == 0, "epoch 0 is not reproducible");
    /* another seed, another order */
    struct batch_opts o3 = o;
    o3.seed = 43;
    struct batch_plan *p3 = batch_plan_create(d, &o3);
    epoch_ids(p3, b, 0, c, n);
    cr_assert(memcmp(a0, c, n * sizeof *c) != 0, "seeds 42 and 43 give the same batches");
    /* within a batch the lengths are close: batches come from the sorted order */
    cr_assert_eq(batch_plan_epoch(p1, 0), 0);
    for (size_t i = 0; i < batch_plan_count(p1); i++) {
        cr_assert_eq(batch_plan_fill(p1, i, b), 0);
        int32_t lo = b->src_len[0], hi = b->src_len[b->B - 1];
        cr_assert_leq(lo, hi);
        cr_assert_leq(hi - lo, 1, "batch %zu spans source lengths %d..%d", i, lo, hi);
    }
    free(a0);
    free(a1);
    free(c);
    batch_free(b);
    batch_plan_free(p1);
    batch_plan_free(p2);
    batch_plan_free(p3);
    batch_data_free(d);
}

Test(batch, bad_options)
{
    struct batch_data *d = batch_data_create(0);
    struct batch_opts o = {.max_sents = 0};
    cr_assert_null(batch_plan_create(d, &o));
    cr_assert(strstr(sl_errmsg(), "at least 1"), "%s", sl_errmsg());
    /* an empty data set plans zero batches */
    o.max_sents = 4;
    struct batch_plan *p = batch_plan_create(d, &o);
    cr_assert(p);
    struct batch *b = batch_create(p);
    cr_assert_eq(batch_plan_fill(p, 0, b), SL_EINVAL); /* before any epoch */
    cr_assert_eq(batch_plan_epoch(p, 0), 0);
    cr_assert_eq(batch_plan_count(p), 0);
    cr_assert_eq(batch_plan_fill(p, 0, b), SL_EINVAL);
    batch_free(b);
    batch_plan_free(p);
    batch_data_free(d);
}

/* Test encoder: one id per byte (byte + 4), side 1 adds 1000; "!" fails. */
static int byte_encode(void *ctx, const char *text, size_t len, enum batch_side side,
                       const int32_t **ids, size_t *n)
{
    int32_t *buf = ctx;
    if (len > 64)
        return sl_err(SL_EINVAL, "too long");
    for (size_t i = 0; i < len; i++) {
        if (text[i] == '!')
            return sl_err(SL_EINVAL, "bang at byte %zu", i);
        buf[i] = (int32_t)(unsigned char)text[i] + 4 + (side == BATCH_TGT ? 1000 : 0);
    }
    *ids = buf;
    *n = len;
    return 0;
}

Test(batch, load_a_split_through_an_encoder)
{
    char *dir = th_tmpdir();
    char *path = th_path(dir, "b.db");
    struct db *db = NULL;
    cr_assert_eq(db_open(path, DB_CREATE, &db), 0, "%s", sl_errmsg());
    int64_t c;
    cr_assert_eq(db_begin(db), 0);
    cr_assert_eq(db_corpus_create(db, "t", "train", "en", "de", "a", "b", &c), 0);
    cr_assert_eq(db_pair_insert(db, c, 1, "ab", 2, "xyz", 3), 0);
    cr_assert_eq(db_pair_insert(db, c, 2, "abcdefgh", 8, "x", 1), 0);
    cr_assert_eq(db_pair_insert(db, c, 3, "c", 1, "yy", 2), 0);
    cr_assert_eq(db_corpus_finish(db, c, 3, 0), 0, "%s", sl_errmsg());
    cr_assert_eq(db_corpus_create(db, "v", "valid", "en", "de", "a", "b", &c), 0);
    cr_assert_eq(db_pair_insert(db, c, 1, "bad!", 4, "ok", 2), 0);
    cr_assert_eq(db_corpus_finish(db, c, 1, 0), 0, "%s", sl_errmsg());
    cr_assert_eq(db_commit(db), 0);

    int32_t buf[64];
    struct batch_data *d = batch_data_create(5);
    cr_assert_eq(batch_data_load(d, db, "train", byte_encode, buf), 0, "%s", sl_errmsg());
    cr_assert_eq(d->n, 2);
    cr_assert_eq(d->n_long, 1);
    cr_assert_eq(d->src_len[0], 2);
    cr_assert_eq(d->tgt_len[0], 3);
    int32_t want[] = {'a' + 4, 'b' + 4, 'x' + 1004, 'y' + 1004, 'z' + 1004, 'c' + 4, 'y' + 1004, 'y' + 1004};
    cr_assert_eq(d->n_ids, 8);
    cr_assert(memcmp(d->ids, want, sizeof want) == 0);
    int64_t corpus, line;
    cr_assert_eq(db_pair_get(db, d->pair_id[1], &corpus, &line), 0);
    cr_assert_eq(line, 3);
    batch_data_free(d);

    d = batch_data_create(0);
    cr_assert_eq(batch_data_load(d, db, "valid", byte_encode, buf), SL_EINVAL);
    cr_assert(strstr(sl_errmsg(), "source: bang at byte 3") && strstr(sl_errmsg(), "pair "), "%s",
              sl_errmsg());
    batch_data_free(d);
    db_close(db);
    th_rmdir(dir);
    free(dir);
    free(path);
}
