/* train/checkpoint.c: saving a training state as checkpoint rows (see checkpoint.h). Only db_* calls
 * here, no SQL. Tensor names as model/checkpoint.h reads them back.
 * ref: safetensors (name, dtype, shape, little-endian data); Kingma & Ba 2015 (the moments). */
#include "train/checkpoint.h"

#include "corpus/db.h"
#include "nn/params.h"
#include "util/err.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

static int save_views(struct db *db, int64_t id, const struct param_table *t, const char *prefix,
                      const float *buf)
{
    char name[PARAM_NAME_MAX + 16];
    for (size_t i = 0; i < t->n; i++) {
        const struct param_view *v = &t->views[i];
        snprintf(name, sizeof name, "%s%s", prefix, v->name);
        int rc = db_tensor_insert(db, id, name, v->ndim, v->shape, buf + v->offset, v->size);
        if (rc)
            return rc;
    }
    return 0;
}

int ckpt_save(struct db *db, const struct ckpt_save_req *q, int64_t *id)
{
    if (q->keep < 1)
        return sl_err(SL_EINVAL, "keep must be at least 1 checkpoint");
    struct db_checkpoint c;
    memset(&c, 0, sizeof c);
    c.run_id = q->run_id;
    c.step = q->step;
    c.epoch = q->epoch;
    c.src_vocab_id = q->src_vocab_id;
    c.tgt_vocab_id = q->tgt_vocab_id;
    c.valid_ppl = q->valid_ppl;
    c.valid_bleu = q->has_bleu ? q->valid_bleu : NAN;
    c.pos_epoch = q->epoch;
    c.pos_batch = q->batch;
    if (q->rng) {
        /* the state as 4 little-endian 64-bit words */
        for (int w = 0; w < 4; w++)
            for (int b = 0; b < 8; b++)
                c.rng_state[w * 8 + b] = (unsigned char)(q->rng->s[w] >> (8 * b));
        c.has_rng = 1;
    }
    int rc = db_begin(db);
    if (rc)
        return rc;
    int64_t cid = 0;
    double best = NAN;
    if ((rc = db_ckpt_insert(db, &c, &cid)) || (rc = db_metric_link_checkpoint(db, q->run_id, q->step, cid)) ||
        (rc = save_views(db, cid, &q->model->table, "", q->w)))
        goto fail;
    if (q->m && (rc = save_views(db, cid, &q->model->table, "adam.m.", q->m)))
        goto fail;
    if (q->v && (rc = save_views(db, cid, &q->model->table, "adam.v.", q->v)))
        goto fail;
    if ((rc = db_ckpt_best_score(db, q->run_id, cid, q->best_by_bleu, &best)))
        goto fail;
    const double score = q->best_by_bleu ? c.valid_bleu : q->valid_ppl;
    const int better = isfinite(score) && (isnan(best) || (q->best_by_bleu ? score > best : score < best));
    if (better && (rc = db_ckpt_set_best(db, cid)))
        goto fail;
    if ((rc = db_ckpt_prune(db, q->run_id, q->keep)) || (rc = db_commit(db)))
        goto fail;
    *id = cid;
    return 0;
fail:
    db_rollback(db);
    return rc;
}

