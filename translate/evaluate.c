/* translate/evaluate.c: translate a stored split and score it (see evaluate.h). */
#include "translate/evaluate.h"

#include "corpus/db.h"
#include "eval/bleu.h"
#include "eval/chrf.h"
#include "eval/evtext.h"
#include "nn/autocast.h"
#include "translate/translator.h"
#include "util/err.h"
#include "util/vec.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define EVAL_ROUND 2048 /* pairs handed to translator_run at a time */

static int set_cb(void *ctx, int64_t pair_id, const char *src, size_t srclen, const char *tgt, size_t tgtlen)
{
    struct eval_set *s = ctx;
    if (s->limit && s->n >= s->limit)
        return 1; /* enough: stop the scan */
    if (s->n == s->cap) {
        size_t c = s->cap ? 2 * s->cap : 1024;
        int rc;
        if ((rc = vec_resize(&s->pair_id, c, sizeof *s->pair_id)) ||
            (rc = vec_resize(&s->src_off, c, sizeof *s->src_off)) ||
            (rc = vec_resize(&s->src_len, c, sizeof *s->src_len)) ||
            (rc = vec_resize(&s->tgt_off, c, sizeof *s->tgt_off)) ||
            (rc = vec_resize(&s->tgt_len, c, sizeof *s->tgt_len)))
            return rc;
        s->cap = c;
    }
    s->pair_id[s->n] = pair_id;
    s->src_off[s->n] = s->buf.len;
    s->src_len[s->n] = srclen;
    int rc = sbuf_append(&s->buf, src, srclen);
    s->tgt_off[s->n] = s->buf.len;
    s->tgt_len[s->n] = tgtlen;
    if (!rc)
        rc = sbuf_append(&s->buf, tgt, tgtlen);
    if (rc)
        return rc;
    s->n++;
    return 0;
}

int eval_set_load(struct db *db, const char *split, size_t limit, struct eval_set *s)
{
    memset(s, 0, sizeof *s);
    sbuf_init(&s->buf);
    s->limit = limit;
    int rc = db_pairs_foreach(db, split, set_cb, s);
    if (rc < 0) {
        eval_set_free(s);
        return rc;
    }
    return 0;
}

void eval_set_free(struct eval_set *s)
{
    sbuf_free(&s->buf);
    free(s->pair_id);
    free(s->src_off);
    free(s->src_len);
    free(s->tgt_off);
    free(s->tgt_len);
    memset(s, 0, sizeof *s);
}

void eval_out_init(struct eval_out *o, int keep_hyps)
{
    memset(o, 0, sizeof *o);
    metric_result_init(&o->bleu);
    metric_result_init(&o->chrf);
    sbuf_init(&o->hyps);
    o->keep_hyps = keep_hyps;
}

void eval_out_free(struct eval_out *o)
{
    metric_result_free(&o->bleu);
    metric_result_free(&o->chrf);
    sbuf_free(&o->hyps);
    free(o->hyp_off);
    free(o->hyp_lp);
    o->hyp_off = NULL;
    o->hyp_lp = NULL;
}

int eval_translate(struct translator *t, const struct eval_set *s, struct eval_out *o)
{
    struct bleu *bleu = bleu_create(NULL);
    struct chrf *chrf = chrf_create(NULL);
    const char **ptr = malloc(EVAL_ROUND * sizeof *ptr);
    int rc = 0;
    if (!bleu || !chrf || !ptr) {
        rc = sl_err(SL_ENOMEM, "out of memory");
        goto done;
    }
    o->n_bad = 0;
    sbuf_reset(&o->hyps);
    if (o->keep_hyps && s->n) {
        if ((rc = vec_resize(&o->hyp_off, s->n, sizeof *o->hyp_off)) ||
            (rc = vec_resize(&o->hyp_lp, s->n, sizeof *o->hyp_lp)))
            goto done;
    }
    for (size_t a = 0; a < s->n; a += EVAL_ROUND) {
        size_t n = s->n - a < EVAL_ROUND ? s->n - a : EVAL_ROUND;
        for (size_t i = 0; i < n; i++)
            ptr[i] = s->buf.data + s->src_off[a + i];
        if ((rc = translator_run(t, ptr, s->src_len + a, n))) {
            rc = sl_err_prefix(rc, "pairs %zu-%zu", a + 1, a + n);
            goto done;
        }
        for (size_t i = 0; i < n; i++) {
            const struct translate_result *res = translator_result(t, i);
            const char *hyp = res->n_hyps ? res->hyps[0].text : "";
            size_t hlen = res->n_hyps ? res->hyps[0].len : 0;
            if (res->status)
                o->n_bad++;
            if (o->keep_hyps) {
                o->hyp_off[a + i] = o->hyps.len;
                o->hyp_lp[a + i] = res->n_hyps ? res->hyps[0].logprob : 0.0;
                if ((rc = sbuf_append(&o->hyps, hyp, hlen)) || (rc = sbuf_putc(&o->hyps, '\0')))
                    goto done;
            }
            const char *ref = s->buf.data + s->tgt_off[a + i];
            size_t rl = evtext_rstrip(ref, s->tgt_len[a + i]), hl = evtext_rstrip(hyp, hlen);
            if (rl == 0)
                continue; /* sacreBLEU skips empty references; import never stores one */
            if ((rc = bleu_add(bleu, hyp, hl, &ref, &rl, 1)) || (rc = chrf_add(chrf, hyp, hl, &ref, &rl, 1))) {
                rc = sl_err_prefix(rc, "pair %lld", (long long)s->pair_id[a + i]);
                goto done;
            }
        }
    }
    metric_result_free(&o->bleu);
    metric_result_free(&o->chrf);
    metric_result_init(&o->bleu);
    metric_result_init(&o->chrf);
    if (!(rc = bleu_report(bleu, &o->bleu)))
        rc = chrf_report(chrf, &o->chrf);
done:
    free(ptr);
    bleu_free(bleu);
    chrf_free(chrf);
    return rc;
}

/* Corpus id ranges of the split, to name each pair's corpus without a query per pair. */
struct ranges {
    const char *split;
    int64_t id[256], first[256], last[256];
    size_t n;
};

static int ranges_cb(void *ctx, const struct db_corpus *c)
{
    struct ranges *r = ctx;
    if (strcmp(c->split, r->split) != 0 || c->n_pairs == 0)
        return 0;
    if (r->n == sizeof r->id / sizeof r->id[0])
        return 0; /* more corpora than slots: the rest get a per-pair lookup */
    r->id[r->n] = c->id;
    r->first[r->n] = c->first_pair_id;
    r->last[r->n] = c->last_pair_id;
    r->n++;
    return 0;
}

static int corpus_of(struct db *db, const struct ranges *r, int64_t pair_id, int64_t *corpus_id)
{
    for (size_t i = 0; i < r->n; i++)
        if (pair_id >= r->first[i] && pair_id <= r->last[i]) {
            *corpus_id = r->id[i];
            return 0;
        }
    int64_t line;
    return db_pair_get(db, pair_id, corpus_id, &line);
}

int eval_store(struct db *db, const struct eval_record *r, const struct eval_set *s, const struct eval_out *o)
{
    struct ranges rg;
    memset(&rg, 0, sizeof rg);
    rg.split = r->split;
    int rc = db_corpus_foreach(db, ranges_cb, &rg);
    if (rc < 0)
        return rc;
    struct db_evaluation e = {
        .run_id = r->run_id,
        .checkpoint_id = r->checkpoint_id,
        .step = r->step,
        .split = r->split,
        .beam = r->beam,
        .length_penalty = r->alpha,
        .max_sentences = (int64_t)r->limit,
        .members = r->members,
        .precision = precision_name((enum precision)r->precision),
        .n_sentences = (int64_t)s->n,
        .seconds = r->seconds > 0 ? r->seconds : NAN,
        .sentences_per_s = r->seconds > 0 ? (double)s->n / r->seconds : NAN,
    };
    int64_t eid = 0;
    if ((rc = db_begin(db)) != 0)
        return rc;
    if ((rc = db_evaluation_insert(db, &e, &eid)) != 0)
        goto fail;
    for (size_t i = 0; i < s->n; i++) {
        int64_t cid = 0;
        if ((rc = corpus_of(db, &rg, s->pair_id[i], &cid)) != 0 ||
            (rc = db_translation_insert(db, eid, e.checkpoint_id, cid, s->pair_id[i], r->beam, r->alpha,
                                        o->hyps.data + o->hyp_off[i], o->hyp_lp[i])) != 0)
            goto fail;
    }
    if ((rc = db_evaluation_metric_insert(db, eid, "bleu", o->bleu.score, o->bleu.signature.data)) != 0 ||
        (rc = db_evaluation_metric_insert(db, eid, "chrf", o->chrf.score, o->chrf.signature.data)) != 0 ||
        (rc = db_commit(db)) != 0)
        goto fail;
    return 0;
fail:
    db_rollback(db);
    return rc;
}
