/* corpus/db_ckpt.c: the checkpoint and tensor tables (see db.h). A tensor is a BLOB of little-endian
 * float32 whatever the host, with its shape as a JSON array and dtype 'f32' (the safetensors
 * convention), or in an export made with --precision bf16 (db_export.c) of little-endian bf16 (dtype
 * 'bf16', the upper 16 bits of each float32); a reader checks dtype, shape and byte size before it
 * copies anything, and reads bf16 back as the float32 it stands for.
 * - Trained checkpoints (averaged_from NULL) are what training saves, resumes from ("last") and
 *   prunes: a run keeps its newest `keep` trained checkpoints and its best (is_best, at most one per
 *   run).
 * - Averaged checkpoints (averaged_from: a JSON array of member ids, `seqlite average`) are never
 *   "last" while the run has a trained one, never counted among the newest `keep` and never pruned;
 *   they are deleted only with their run or by a rewind past their step. */
#include "corpus/db_internal.h"

#include "util/bf16.h"
#include "util/err.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int db_ckpt_insert(struct db *db, const struct db_checkpoint *c, int64_t *id)
{
    int rc = db_exec(db, "storing a checkpoint", DB_FOREIGNKEY,
                     "INSERT INTO checkpoint (run_id, step, epoch, src_vocab_id, tgt_vocab_id, valid_ppl,"
                     " valid_bleu, is_best, rng_state, data_pos) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9,"
                     " json_object('epoch', ?10, 'batch', ?11))",
                     DB_ARGS(db_int(c->run_id), db_int(c->step), db_int(c->epoch), db_id(c->src_vocab_id),
                             db_id(c->tgt_vocab_id), db_real_or_null(c->valid_ppl),
                             db_real_or_null(c->valid_bleu), db_int(c->is_best ? 1 : 0),
                             c->has_rng ? db_blob(c->rng_state, sizeof c->rng_state) : db_null(),
                             db_int(c->pos_epoch), db_int(c->pos_batch)));
    if (rc == SL_ENOTFOUND)
        return db_fail(db, rc, "checkpoint: no run %lld or no such vocabulary", (long long)c->run_id);
    if (!rc)
        *id = db_last_id(db);
    return rc;
}

static int ckpt_from_row(struct db *db, struct db_stmt *st, void *vout)
{
    struct db_checkpoint *out = vout;
    int rc = 0;
    out->id = db_col_int(st, 0);
    out->run_id = db_col_int(st, 1);
    out->step = db_col_int(st, 2);
    out->epoch = db_col_int(st, 3);
    out->src_vocab_id = db_col_int(st, 4);
    out->tgt_vocab_id = db_col_int(st, 5);
    out->valid_ppl = db_col_real_or_nan(st, 6);
    out->valid_bleu = db_col_real_or_nan(st, 7);
    out->is_best = (int)db_col_int(st, 8);
    if (!db_col_is_null(st, 9)) {
        size_t len;
        const void *rng = db_col_blob(st, 9, &len);
        if (len != sizeof out->rng_state) {
            rc = db_fail(db, SL_ECORRUPT, "checkpoint %lld: rng_state has %d bytes, not %zu", (long long)out->id,
                         (int)len, sizeof out->rng_state);
        } else {
            memcpy(out->rng_state, rng, sizeof out->rng_state);
            out->has_rng = 1;
        }
    }
    out->pos_epoch = db_col_int(st, 10);
    out->pos_batch = db_col_int(st, 11);
    out->averaged = !db_col_is_null(st, 12);
    return rc;
}

int db_ckpt_get(struct db *db, int64_t id, struct db_checkpoint *out)
{
    memset(out, 0, sizeof *out);
    return db_get_by_id(db, "checkpoint",
                        "SELECT id, run_id, step, epoch, src_vocab_id, tgt_vocab_id, valid_ppl, valid_bleu, is_best,"
                        " rng_state, json_extract(data_pos, '$.epoch'), json_extract(data_pos, '$.batch'),"
                        " averaged_from FROM checkpoint WHERE id = ?1",
                        id, ckpt_from_row, out);
}

int db_ckpt_find(struct db *db, int64_t run_id, const char *which, int64_t *id)
{
    int best = strcmp(which, "best") == 0;
    if (!best && strcmp(which, "last") != 0)
        return sl_err(SL_EINVAL, "checkpoint '%s': expected last, best or an id", which);
    /* last: the newest trained checkpoint; an averaged one only where there is no trained one (a
     * file written by seqlite export of an averaged checkpoint) */
    int rc = db_query_int(db, id, "querying",
                          best ? "SELECT id FROM checkpoint WHERE is_best = 1 AND (?1 = 0 OR run_id = ?1)"
                                 " ORDER BY run_id DESC, id DESC LIMIT 1"
                               : "SELECT id FROM checkpoint WHERE ?1 = 0 OR run_id = ?1"
                                 " ORDER BY averaged_from IS NULL DESC, id DESC LIMIT 1",
                          DB_ARGS(db_int(run_id)));
    if (rc == SL_ENOTFOUND && run_id)
        rc = db_fail(db, rc, "run %lld has no %scheckpoint", (long long)run_id, best ? "best " : "");
    else if (rc == SL_ENOTFOUND)
        rc = db_fail(db, rc, "no %scheckpoint (train a model first: seqlite train %s)", best ? "best " : "",
                     db->path);
    return rc;
}

int db_ckpt_set_best(struct db *db, int64_t id)
{
    return db_exec(db, "marking the best checkpoint", 0,
                   "UPDATE checkpoint SET is_best = (id = ?1) WHERE run_id = (SELECT run_id FROM checkpoint WHERE id = ?1)",
                   DB_ARGS(db_int(id)));
}

int db_ckpt_best_score(struct db *db, int64_t run_id, int64_t except_id, int by_bleu, double *out)
{
    struct db_stmt *st;
    int rc = db_query_row(db, &st, "reading checkpoints",
                          by_bleu ? "SELECT max(valid_bleu) FROM checkpoint WHERE run_id = ?1 AND id != ?2"
                                    " AND averaged_from IS NULL"
                                  : "SELECT min(valid_ppl) FROM checkpoint WHERE run_id = ?1 AND id != ?2"
                                    " AND averaged_from IS NULL",
                          DB_ARGS(db_int(run_id), db_int(except_id)));
    if (!rc)
        *out = db_col_real_or_nan(st, 0);
    return db_stmt_end(st, rc);
}

int db_ckpt_prune(struct db *db, int64_t run_id, int64_t keep)
{
    return db_exec(db, "pruning checkpoints", 0,
                   "DELETE FROM checkpoint WHERE run_id = ?1 AND is_best = 0 AND averaged_from IS NULL AND id NOT IN"
                   " (SELECT id FROM checkpoint WHERE run_id = ?1 AND averaged_from IS NULL"
                   " ORDER BY step DESC, id DESC LIMIT ?2)",
                   DB_ARGS(db_int(run_id), db_int(keep)));
}

int db_ckpt_count_trained(struct db *db, int64_t run_id, enum db_ckpt_rank rank, int64_t *n)
{
    return db_query_int(db, n, "counting checkpoints",
                        "SELECT count(*) FROM checkpoint WHERE run_id = ?1 AND averaged_from IS NULL"
                        " AND (?2 = 0 OR (?2 = 1 AND valid_ppl IS NOT NULL) OR (?2 = 2 AND valid_bleu IS NOT NULL))",
                        DB_ARGS(db_int(run_id), db_int((int64_t)rank)));
}

int db_ckpt_select(struct db *db, int64_t run_id, enum db_ckpt_rank rank, int64_t n, int64_t *ids, int64_t *n_out)
{
    static const char *const sql[] = {
        [DB_CKPT_NEWEST] = "SELECT id FROM (SELECT id FROM checkpoint WHERE run_id = ?1 AND averaged_from IS NULL"
                           " ORDER BY step DESC, id DESC LIMIT ?2) ORDER BY id",
        [DB_CKPT_LOWEST_PPL] = "SELECT id FROM (SELECT id FROM checkpoint WHERE run_id = ?1 AND averaged_from IS NULL"
                               " AND valid_ppl IS NOT NULL ORDER BY valid_ppl, step DESC, id DESC LIMIT ?2) ORDER BY id",
        [DB_CKPT_HIGHEST_BLEU] = "SELECT id FROM (SELECT id FROM checkpoint WHERE run_id = ?1"
                                 " AND averaged_from IS NULL AND valid_bleu IS NOT NULL"
                                 " ORDER BY valid_bleu DESC, step DESC, id DESC LIMIT ?2) ORDER BY id",
    };
    *n_out = 0;
    if ((int)rank < 0 || (int)rank > DB_CKPT_HIGHEST_BLEU || n < 0)
        return sl_err(SL_EINVAL, "db_ckpt_select: bad rank or count");
    struct db_stmt *st;
    int rc = db_query(db, &st, "selecting checkpoints", sql[rank], DB_ARGS(db_int(run_id), db_int(n)));
    while (!rc && *n_out < n && db_row(st) > 0)
        ids[(*n_out)++] = db_col_int(st, 0);
    return db_stmt_end(st, rc);
}

int db_ckpt_set_averaged_from(struct db *db, int64_t id, const int64_t *ids, size_t n)
{
    struct sbuf js;
    sbuf_init(&js);
    int rc = sbuf_putc(&js, '[');
    for (size_t i = 0; !rc && i < n; i++)
        rc = sbuf_printf(&js, "%s%lld", i ? "," : "", (long long)ids[i]);
    if (!rc)
        rc = sbuf_putc(&js, ']');
    if (rc) {
        sbuf_free(&js);
        return sl_err(SL_ENOMEM, "out of memory");
    }
    rc = db_exec(db, "marking an averaged checkpoint", 0, "UPDATE checkpoint SET averaged_from = ?2 WHERE id = ?1",
                 DB_ARGS(db_int(id), db_text_n(js.data, js.len)));
    sbuf_free(&js);
    if (!rc && db_changes(db) != 1)
        rc = db_fail(db, SL_ENOTFOUND, "no checkpoint with id %lld", (long long)id);
    return rc;
}

int db_ckpt_averaged_from(struct db *db, int64_t id, int64_t *ids, size_t cap, size_t *n)
{
    *n = 0;
    struct db_stmt *st;
    int rc = db_query(db, &st, "reading an averaged checkpoint",
                      "SELECT j.value FROM checkpoint c, json_each(c.averaged_from) j WHERE c.id = ?1 ORDER BY j.key",
                      DB_ARGS(db_int(id)));
    while (!rc && db_row(st) > 0) {
        if (*n < cap)
            ids[*n] = db_col_int(st, 0);
        (*n)++;
    }
    return db_stmt_end(st, rc);
}

/* The tensor BLOB format is little-endian float32 whatever the host. */
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
#define DB_HOST_BE 1
#else
#define DB_HOST_BE 0
#endif

static void f32_swap(void *p, size_t n)
{
    unsigned char *b = p;
    for (size_t i = 0; i < n; i++, b += 4) {
        unsigned char t0 = b[0], t1 = b[1];
        b[0] = b[3];
        b[1] = b[2];
        b[2] = t1;
        b[3] = t0;
    }
}

int db_tensor_insert(struct db *db, int64_t ckpt_id, const char *name, int ndim, const size_t *shape,
                     const float *data, size_t n)
{
    char shp[128];
    size_t len = 0, prod = 1;
    len += (size_t)snprintf(shp, sizeof shp, "[");
    for (int i = 0; i < ndim && len < sizeof shp; i++) {
        len += (size_t)snprintf(shp + len, sizeof shp - len, "%s%zu", i ? "," : "", shape[i]);
        prod *= shape[i];
    }
    if (len + 2 > sizeof shp || prod != n || ndim < 1)
        return sl_err(SL_EINVAL, "tensor %s: shape does not match its %zu floats", name, n);
    snprintf(shp + len, sizeof shp - len, "]");
    float *swapped = NULL;
    if (DB_HOST_BE) {
        if (!(swapped = malloc(n * sizeof *swapped)))
            return sl_err(SL_ENOMEM, "out of memory");
        memcpy(swapped, data, n * sizeof *data);
        f32_swap(swapped, n);
        data = swapped;
    }
    int rc = db_exec(db, "storing a tensor", DB_PRIMARYKEY | DB_FOREIGNKEY,
                     "INSERT INTO tensor (checkpoint_id, name, shape, dtype, data) VALUES (?1, ?2, ?3, 'f32', ?4)",
                     DB_ARGS(db_int(ckpt_id), db_text(name), db_text(shp), db_blob(data, n * 4)));
    free(swapped);
    if (rc == SL_EEXIST)
        return db_fail(db, rc, "checkpoint %lld has a tensor %s already", (long long)ckpt_id, name);
    if (rc == SL_ENOTFOUND)
        return db_fail(db, rc, "no checkpoint with id %lld", (long long)ckpt_id);
    return rc;
}

/* Parses a JSON array of non-negative integers ("[4, 256]"); returns the number of dims or -1. */
static int parse_shape(const char *s, size_t *dims, int max)
{
    int n = 0;
    while (*s == ' ')
        s++;
    if (*s++ != '[')
        return -1;
    for (;;) {
        while (*s == ' ')
            s++;
        if (*s == ']' && n == 0)
            break;
        if (*s < '0' || *s > '9' || n == max)
            return -1;
        size_t v = 0;
        while (*s >= '0' && *s <= '9') {
            if (v > ((size_t)-1 - 9) / 10)
                return -1;
            v = v * 10 + (size_t)(*s++ - '0');
        }
        dims[n++] = v;
        while (*s == ' ')
            s++;
        if (*s == ',') {
            s++;
            continue;
        }
        if (*s == ']')
            break;
        return -1;
    }
    s++;
    while (*s == ' ')
        s++;
    return *s ? -1 : n;
}

/* Checks the tensor row of st (shape, dtype, data) against what the caller expects; *data = its n
 * values (borrowed from the row), *width their bytes each (4: f32, 2: bf16). */
static int tensor_check(struct db *db, struct db_stmt *st, int64_t ckpt_id, const char *name, int ndim,
                        const size_t *shape, size_t n, const void **data /* OUT */, size_t *width /* OUT */)
{
    const char *shp = db_col_text(st, 0);
    const char *dtype = db_col_text(st, 1);
    size_t got[8];
    int gn = parse_shape(shp, got, 8);
    int same = gn == ndim;
    for (int i = 0; same && i < ndim; i++)
        same = got[i] == shape[i];
    if (strcmp(dtype, "f32") == 0)
        *width = 4;
    else if (strcmp(dtype, "bf16") == 0)
        *width = 2;
    else
        return db_fail(db, SL_ECORRUPT, "checkpoint %lld, tensor %s: dtype '%s', expected f32 or bf16",
                       (long long)ckpt_id, name, dtype);
    if (!same)
        return db_fail(db, SL_ECORRUPT,
                       "checkpoint %lld, tensor %s: shape %s does not match the model (made with another "
                       "configuration?)",
                       (long long)ckpt_id, name, shp);
    size_t bytes;
    *data = db_col_blob(st, 2, &bytes);
    if (bytes != n * *width || !*data)
        return db_fail(db, SL_ECORRUPT, "checkpoint %lld, tensor %s: %zu bytes of data, expected %zu (%zu per %s)",
                       (long long)ckpt_id, name, bytes, n * *width, *width, *width == 4 ? "float" : "bf16");
    return 0;
}

int db_tensor_read(struct db *db, int64_t ckpt_id, const char *name, int ndim, const size_t *shape,
                   float *dst, size_t n)
{
    struct db_stmt *st;
    int rc = db_query_row(db, &st, "reading a tensor",
                          "SELECT shape, dtype, data FROM tensor WHERE checkpoint_id = ?1 AND name = ?2",
                          DB_ARGS(db_int(ckpt_id), db_text(name)));
    if (rc == SL_ENOTFOUND)
        rc = db_fail(db, rc, "checkpoint %lld has no tensor %s", (long long)ckpt_id, name);
    const void *data = NULL;
    size_t width = 4;
    if (!rc && !(rc = tensor_check(db, st, ckpt_id, name, ndim, shape, n, &data, &width))) {
        if (width == 2) {
            /* bf16: the upper half of the float's bits, little-endian */
            const unsigned char *b = data;
            for (size_t i = 0; i < n; i++)
                dst[i] = bf16_widen((uint16_t)(b[2 * i] | b[2 * i + 1] << 8));
        } else {
            if (n)
                memcpy(dst, data, n * 4);
            if (DB_HOST_BE)
                f32_swap(dst, n);
        }
    }
    return db_stmt_end(st, rc);
}

int db_tensor_count(struct db *db, int64_t ckpt_id, int64_t *n)
{
    int rc = db_query_int(db, n, "querying", "SELECT count(*) FROM tensor WHERE checkpoint_id = ?1",
                          DB_ARGS(db_int(ckpt_id)));
    return rc == SL_ENOTFOUND ? db_fail(db, rc, "no tensors") : rc;
}

int db_tensor_count_dtype(struct db *db, int64_t ckpt_id, const char *dtype, int64_t *n)
{
    return db_query_int(db, n, "querying", "SELECT count(*) FROM tensor WHERE checkpoint_id = ?1 AND dtype = ?2",
                        DB_ARGS(db_int(ckpt_id), db_text(dtype)));
}

int db_has_checkpoint(struct db *db)
{
    char saved[1024];
    snprintf(saved, sizeof saved, "%s", sl_errmsg());
    int64_t n = 0;
    int rc = db_query_int(db, &n, "counting checkpoints", "SELECT count(*) FROM checkpoint", DB_NO_ARGS);
    sl_err(0, "%s", saved);
    return !rc && n > 0;
}
