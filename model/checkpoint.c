/* model/checkpoint.c: loading a model (or a training state) back from checkpoint rows (see checkpoint.h).
 * Only db_* calls here, no SQL. Tensor names: the param_table view names for the parameters,
 * "adam.m.<name>" / "adam.v.<name>" for the Adam moments; the alignment gaps of the flat buffers are
 * not stored (they are zero by design).
 * ref: safetensors (name, dtype, shape, little-endian data); Kingma & Ba 2015 (the moments). */
#include "model/checkpoint.h"

#include "corpus/db.h"
#include "corpus/vocab_store.h"
#include "nn/params.h"
#include "util/err.h"
#include "util/sbuf.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int load_views(struct db *db, int64_t id, const struct param_table *t, const char *prefix, float *buf)
{
    char name[PARAM_NAME_MAX + 16];
    memset(buf, 0, t->total * sizeof *buf); /* the gaps */
    for (size_t i = 0; i < t->n; i++) {
        const struct param_view *v = &t->views[i];
        snprintf(name, sizeof name, "%s%s", prefix, v->name);
        int rc = db_tensor_read(db, id, name, v->ndim, v->shape, buf + v->offset, v->size);
        if (rc)
            return rc;
        size_t bad = 0;
        for (size_t k = 0; k < v->size; k++)
            bad += !isfinite(buf[v->offset + k]);
        if (bad)
            return sl_err(SL_ECORRUPT, "%s: checkpoint %lld, tensor %s: %zu values are NaN or infinite",
                          db_path(db), (long long)id, name, bad);
    }
    return 0;
}

int ckpt_find(struct db *db, int64_t run_id, const char *which, int64_t *id)
{
    if (!which || !*which)
        which = "last";
    if (strcmp(which, "last") == 0)
        return db_ckpt_find(db, run_id, "last", id);
    if (strcmp(which, "best") == 0) {
        int64_t rid = run_id;
        int rc = 0;
        if (!rid) {
            /* the best checkpoint of the newest run that validated */
            if ((rc = db_ckpt_find(db, 0, "best", id)) != SL_ENOTFOUND)
                return rc;
            /* none validated: the newest checkpoint of the newest run that has one */
            int64_t last;
            if ((rc = db_ckpt_find(db, 0, "last", &last)))
                return rc;
            struct db_checkpoint c;
            if ((rc = db_ckpt_get(db, last, &c)))
                return rc;
            rid = c.run_id;
        }
        rc = db_ckpt_find(db, rid, "best", id);
        if (rc == SL_ENOTFOUND) /* no validation yet: the newest stands in */
            rc = db_ckpt_find(db, rid, "last", id);
        return rc;
    }
    char *end;
    errno = 0;
    long long v = strtoll(which, &end, 10);
    if (errno || *end || v <= 0)
        return sl_err(SL_EINVAL, "checkpoint '%s': expected last, best or a checkpoint id", which);
    struct db_checkpoint c;
    int rc = db_ckpt_get(db, (int64_t)v, &c);
    if (rc)
        return rc;
    if (run_id && c.run_id != run_id)
        return sl_err(SL_ENOTFOUND, "checkpoint %lld belongs to run %lld, not %lld", v, (long long)c.run_id,
                      (long long)run_id);
    *id = c.id;
    return 0;
}

int ckpt_info_get(struct db *db, int64_t id, struct ckpt_info *out)
{
    memset(out, 0, sizeof *out);
    struct db_checkpoint c;
    int rc = db_ckpt_get(db, id, &c);
    if (rc)
        return rc;
    out->id = c.id;
    out->run_id = c.run_id;
    out->step = c.step;
    out->epoch = c.pos_epoch;
    out->batch = c.pos_batch;
    out->src_vocab_id = c.src_vocab_id;
    out->tgt_vocab_id = c.tgt_vocab_id;
    out->valid_ppl = c.valid_ppl;
    out->valid_bleu = c.valid_bleu;
    out->is_best = c.is_best;
    out->has_rng = c.has_rng;
    if (c.has_rng)
        for (int w = 0; w < 4; w++) {
            uint64_t x = 0;
            for (int b = 0; b < 8; b++)
                x |= (uint64_t)c.rng_state[w * 8 + b] << (8 * b);
            out->rng.s[w] = x;
        }
    return 0;
}

int ckpt_state_load(struct db *db, int64_t id, const struct s2s_model *model, float *w, float *m, float *v)
{
    int rc = load_views(db, id, &model->table, "", w);
    if (!rc && m)
        rc = load_views(db, id, &model->table, "adam.m.", m);
    if (!rc && v)
        rc = load_views(db, id, &model->table, "adam.v.", v);
    return rc;
}

void ckpt_model_free(struct ckpt_model *m)
{
    if (!m)
        return;
    s2s_model_free(&m->model);
    param_buf_free(m->w);
    if (m->tgt_bpe != m->src_bpe)
        bpe_free(m->tgt_bpe);
    bpe_free(m->src_bpe);
    memset(m, 0, sizeof *m);
}

int ckpt_model_load(struct db *db, const char *which, struct ckpt_model *out)
{
    memset(out, 0, sizeof *out);
    int64_t id;
    struct ckpt_info info;
    struct db_run run;
    memset(&run, 0, sizeof run);
    int rc = ckpt_find(db, 0, which, &id);
    if (!rc)
        rc = ckpt_info_get(db, id, &info);
    if (!rc)
        rc = db_run_get(db, info.run_id, &run);
    if (rc)
        goto fail;
    if (info.src_vocab_id <= 0 || info.tgt_vocab_id <= 0) {
        rc = sl_err(SL_ECORRUPT, "%s: checkpoint %lld names no vocabulary", db_path(db), (long long)id);
        goto fail;
    }
    if ((rc = corpus_vocab_load(db, info.src_vocab_id, &out->src_bpe)))
        goto fail;
    if (info.tgt_vocab_id == info.src_vocab_id)
        out->tgt_bpe = out->src_bpe;
    else if ((rc = corpus_vocab_load(db, info.tgt_vocab_id, &out->tgt_bpe)))
        goto fail;
    if (run.layers < 1 || run.emb < 1 || run.hidden < 1) {
        rc = sl_err(SL_ECORRUPT, "%s: run %lld: bad model configuration (layers %lld, emb %lld, hidden %lld)",
                    db_path(db), (long long)run.id, (long long)run.layers, (long long)run.emb,
                    (long long)run.hidden);
        goto fail;
    }
    /* the architecture: runs stored before attention and bidirectional encoders have neither */
    struct db_json_field arch[3] = {{.key = "attention"}, {.key = "encoder"}, {.key = "src_eos"}};
    if ((rc = db_run_config_get(db, run.id, arch, 3)))
        goto fail;
    const int64_t att = arch[0].type == DB_JSON_INTEGER ? arch[0].i : 0;
    const int64_t enc = arch[1].type == DB_JSON_INTEGER ? arch[1].i : 0;
    if (att < ATTN_NONE || att > ATTN_MLP || enc < 0 || enc > 1) {
        rc = sl_err(SL_ECORRUPT, "%s: run %lld: unknown architecture (attention %lld, encoder %lld)", db_path(db),
                    (long long)run.id, (long long)att, (long long)enc);
        goto fail;
    }
    struct s2s_config cfg = {
        .V_src = bpe_size(out->src_bpe),
        .V_tgt = bpe_size(out->tgt_bpe),
        .E = (size_t)run.emb,
        .H = (size_t)run.hidden,
        .L = (size_t)run.layers,
        .dropout = 0.0f,
        .reverse_source = run.reverse_source,
        .attention = (enum attn_score)att,
        .bidirectional = enc == 1,
    };
    if ((rc = s2s_model_init(&out->model, &cfg))) {
        sl_err_prefix(rc, "%s: run %lld", db_path(db), (long long)run.id);
        goto fail;
    }
    out->w = param_buf_create(out->model.table.total);
    if (!out->w) {
        rc = sl_err(SL_ENOMEM, "out of memory (model of %zu floats)", out->model.table.total);
        goto fail;
    }
    if ((rc = ckpt_state_load(db, id, &out->model, out->w, NULL, NULL)))
        goto fail;
    int64_t n_bf16 = 0;
    if ((rc = db_tensor_count_dtype(db, id, "bf16", &n_bf16)))
        goto fail;
    out->stored_bf16 = n_bf16 > 0;
    out->run_id = run.id;
    out->checkpoint_id = id;
    out->step = info.step;
    out->epoch = info.epoch;
    out->src_vocab_id = info.src_vocab_id;
    out->tgt_vocab_id = info.tgt_vocab_id;
    out->src_eos = arch[2].type == DB_JSON_INTEGER && arch[2].i == 1;
    out->max_len = run.max_len;
    out->valid_ppl = info.valid_ppl;
    out->valid_bleu = info.valid_bleu;
    db_run_clear(&run);
    return 0;
fail:
    db_run_clear(&run);
    ckpt_model_free(out);
    return rc;
}

/* ---- ensembles ---- */

void ckpt_ensemble_free(struct ckpt_model *ms, size_t n)
{
    for (size_t i = 0; ms && i < n; i++)
        ckpt_model_free(&ms[i]);
    free(ms);
}

int ckpt_ensemble_load(struct db *db, const char *which, struct ckpt_model **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    size_t count = 1;
    for (const char *p = which; *p; p++)
        count += *p == ',';
    if (count > CKPT_ENSEMBLE_MAX)
        return sl_err(SL_EINVAL, "--checkpoint: %zu checkpoints, at most %d in an ensemble", count,
                      CKPT_ENSEMBLE_MAX);
    struct ckpt_model *ms = calloc(count, sizeof *ms);
    if (!ms)
        return sl_err(SL_ENOMEM, "out of memory for %zu checkpoints", count);
    size_t got = 0;
    int rc = 0;
    char name[64];
    for (const char *p = which; got < count; got++) {
        const char *e = strchr(p, ',');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (len == 0 || len >= sizeof name) {
            rc = sl_err(SL_EINVAL, "--checkpoint '%s': %s checkpoint name (names: best, last or an id; an "
                        "ensemble: a comma-separated list such as 12,15,18)", which, len ? "a too long" : "an empty");
            goto fail;
        }
        memcpy(name, p, len);
        name[len] = '\0';
        if ((rc = ckpt_model_load(db, name, &ms[got]))) {
            if (count > 1)
                sl_err_prefix(rc, "checkpoint '%s'", name);
            goto fail;
        }
        const struct ckpt_model *a = &ms[0], *b = &ms[got];
        if (a->src_vocab_id != b->src_vocab_id || a->tgt_vocab_id != b->tgt_vocab_id) {
            rc = sl_err(SL_EINVAL, "checkpoints %lld and %lld use different vocabularies (source %lld and %lld, "
                        "target %lld and %lld): an ensemble's members must share both", (long long)a->checkpoint_id,
                        (long long)b->checkpoint_id, (long long)a->src_vocab_id, (long long)b->src_vocab_id,
                        (long long)a->tgt_vocab_id, (long long)b->tgt_vocab_id);
            goto fail;
        }
        if (a->src_eos != b->src_eos) {
            rc = sl_err(SL_EINVAL, "checkpoints %lld and %lld were trained on different sources (with and without "
                        "a source EOS): they cannot decode together", (long long)a->checkpoint_id,
                        (long long)b->checkpoint_id);
            goto fail;
        }
        p = e ? e + 1 : p + len;
    }
    *out = ms;
    *n = count;
    return 0;
fail:
    ckpt_ensemble_free(ms, count); /* calloc'd: members never loaded are empty */
    return rc;
}

int ckpt_names_of_run(struct db *db, const char *run, const char *which, struct sbuf *out)
{
    int64_t run_id = 0;
    int rc = db_info_run_find(db, run, &run_id);
    if (rc)
        return rc;
    sbuf_reset(out);
    for (const char *p = which; !rc && *p;) {
        const char *comma = strchr(p, ',');
        size_t n = comma ? (size_t)(comma - p) : strlen(p);
        char name[64];
        snprintf(name, sizeof name, "%.*s", (int)(n < sizeof name ? n : sizeof name - 1), p);
        int64_t id = 0;
        if ((rc = ckpt_find(db, run_id, name, &id)) == 0)
            rc = sbuf_printf(out, "%s%lld", out->len ? "," : "", (long long)id);
        p += n + (comma != NULL);
    }
    return rc;
}

int ckpt_ensemble_load_run(struct db *db, const char *run, const char *which, struct ckpt_model **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    struct sbuf ids;
    sbuf_init(&ids);
    /* one snapshot: a checkpoint pruned by a training run meanwhile cannot vanish halfway */
    int rc = db_read_begin(db);
    if (rc)
        return rc;
    if (run && *run)
        rc = ckpt_names_of_run(db, run, which, &ids);
    if (!rc)
        rc = ckpt_ensemble_load(db, run && *run ? ids.data : which, out, n);
    db_read_end(db);
    sbuf_free(&ids);
    return rc;
}
