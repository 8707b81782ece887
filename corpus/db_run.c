/* corpus/db_run.c: the run, train_log and metric tables (see db.h): a training run's settings and
 * status, its log lines and its measured numbers, and rewinding them when a run resumes from an
 * earlier step. Integers stored as NULL (no limit, no parent) are 0 in the structs; measured numbers
 * stored as NULL are NaN. */
#include "corpus/db_internal.h"

#include "util/err.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int db_run_create(struct db *db, const struct db_run *r, int64_t *id)
{
    int auto_name = !r->name[0];
    /* the options live in config; the run's option columns are generated from it (schema 2) */
    int rc = db_exec(db, "creating a run", DB_UNIQUE | DB_FOREIGNKEY,
                     "INSERT INTO run (name, src_vocab_id, tgt_vocab_id, threads, config)"
                     " VALUES (coalesce(?1, 'run-' || hex(randomblob(6))), ?2, ?3, ?4, ?5)",
                     DB_ARGS(db_text(auto_name ? NULL : r->name), db_id(r->src_vocab_id), db_id(r->tgt_vocab_id),
                             db_int(r->threads), db_text(r->config ? r->config : "{}")));
    if (rc == SL_EEXIST)
        return db_fail(db, rc, "a run named '%s' exists already", r->name);
    if (rc == SL_ENOTFOUND)
        return db_fail(db, rc, "the run's vocabulary does not exist");
    if (rc)
        return rc;
    *id = db_last_id(db);
    if (auto_name)
        rc = db_exec(db, "naming a run", 0, "UPDATE run SET name = 'run-' || ?1 WHERE id = ?1", DB_ARGS(db_int(*id)));
    return rc;
}

static void copy_text(char *dst, size_t cap, const char *src) { snprintf(dst, cap, "%s", src); }

static int run_from_row(struct db *db, struct db_stmt *st, void *vout)
{
    struct db_run *out = vout;
    (void)db;
    out->id = db_col_int(st, 0);
    copy_text(out->name, sizeof out->name, db_col_text(st, 1));
    copy_text(out->status, sizeof out->status, db_col_text(st, 2));
    out->src_vocab_id = db_col_int(st, 3);
    out->tgt_vocab_id = db_col_int(st, 4);
    out->seed = db_col_int(st, 5);
    out->layers = db_col_int(st, 6);
    out->emb = db_col_int(st, 7);
    out->hidden = db_col_int(st, 8);
    out->dropout = db_col_real(st, 9);
    out->batch = db_col_int(st, 10);
    out->batch_tokens = db_col_int(st, 11);
    out->lr = db_col_real(st, 12);
    out->clip = db_col_real(st, 13);
    out->epochs = db_col_int(st, 14);
    out->steps = db_col_int(st, 15);
    out->max_len = db_col_int(st, 16);
    out->reverse_source = (int)db_col_int(st, 17);
    out->threads = db_col_int(st, 18);
    out->valid_every = db_col_int(st, 19);
    out->save_every = db_col_int(st, 20);
    out->keep = db_col_int(st, 21);
    out->config = strdup(db_col_text(st, 22));
    out->steps_done = db_col_int(st, 23);
    copy_text(out->started_at, sizeof out->started_at, db_col_text(st, 24));
    copy_text(out->ended_at, sizeof out->ended_at, db_col_text(st, 25));
    return out->config ? 0 : sl_err(SL_ENOMEM, "out of memory");
}

int db_run_get(struct db *db, int64_t id, struct db_run *out)
{
    memset(out, 0, sizeof *out);
    return db_get_by_id(db, "run",
                        "SELECT id, name, status, src_vocab_id, tgt_vocab_id, seed, layers, emb, hidden, dropout,"
                        " batch, batch_tokens, lr, clip, epochs, steps, max_len, reverse_source, threads,"
                        " valid_every, save_every, keep, config, steps_done, started_at, ended_at"
                        " FROM run WHERE id = ?1",
                        id, run_from_row, out);
}

void db_run_clear(struct db_run *r)
{
    if (!r)
        return;
    free(r->config);
    memset(r, 0, sizeof *r);
}

int db_run_latest(struct db *db, int64_t *id)
{
    int rc = db_query_int(db, id, "querying", "SELECT max(id) FROM run", DB_NO_ARGS);
    return rc == SL_ENOTFOUND ? db_fail(db, rc, "no training run (run seqlite train first)") : rc;
}

int db_run_update(struct db *db, int64_t id, const char *status, int64_t steps_done, int64_t threads,
                  const char *message)
{
    int rc = db_exec(db, "updating a run", DB_CHECK,
                     "UPDATE run SET status = ?2, steps_done = ?3, message = coalesce(?4, message),"
                     " threads = CASE WHEN ?5 > 0 THEN ?5 ELSE threads END,"
                     " ended_at = CASE WHEN ?2 = 'running' THEN NULL ELSE " DB_NOW " END WHERE id = ?1",
                     DB_ARGS(db_int(id), db_text(status), db_int(steps_done), db_text(message), db_int(threads)));
    if (rc == SL_EINVAL)
        return db_fail(db, rc, "bad run status '%s'", status);
    if (!rc && db_changes(db) != 1)
        rc = db_fail(db, SL_ENOTFOUND, "no run with id %lld", (long long)id);
    return rc;
}

/* ---- ownership ---- */

void db_run_owner_self(char *buf, size_t cap)
{
    char host[64];
    if (gethostname(host, sizeof host) != 0)
        snprintf(host, sizeof host, "localhost");
    host[sizeof host - 1] = '\0';
    snprintf(buf, cap, "%ld@%s", (long)getpid(), host);
}

/* Whether owner (PID@HOST) is this host's process pid and that process exists. -1: another host. */
static int owner_pid_exists(const char *owner)
{
    char self[128];
    db_run_owner_self(self, sizeof self);
    const char *at = strchr(owner, '@'), *self_at = strchr(self, '@');
    if (!at || !self_at || strcmp(at, self_at) != 0)
        return -1;
    char *end;
    long pid = strtol(owner, &end, 10);
    if (end != at || pid <= 0)
        return 0;
    return kill((pid_t)pid, 0) == 0 || errno == EPERM;
}

int db_run_liveness(struct db *db, int64_t id, enum db_run_liveness *out, char *owner, size_t cap)
{
    struct db_stmt *st;
    int rc = db_query_row(db, &st, "reading a run's owner",
                          "SELECT status, owner, heartbeat_at IS NOT NULL AND"
                          " (julianday('now') - julianday(heartbeat_at)) * 86400.0 < ?2 FROM run WHERE id = ?1",
                          DB_ARGS(db_int(id), db_int(DB_RUN_STALE_S)));
    if (rc == SL_ENOTFOUND)
        rc = db_fail(db, rc, "no run with id %lld", (long long)id);
    if (!rc) {
        const char *who = db_col_text(st, 1);
        const int fresh = (int)db_col_int(st, 2);
        if (owner && cap)
            snprintf(owner, cap, "%s", who);
        if (strcmp(db_col_text(st, 0), "running") != 0)
            *out = DB_RUN_ENDED;
        else if (!who[0] || !fresh)
            *out = DB_RUN_INTERRUPTED;
        else
            *out = owner_pid_exists(who) == 0 ? DB_RUN_INTERRUPTED : DB_RUN_ALIVE;
    }
    return db_stmt_end(st, rc);
}

int db_run_claim(struct db *db, int64_t id)
{
    char self[128], owner[128];
    db_run_owner_self(self, sizeof self);
    enum db_run_liveness live;
    int rc = db_begin(db);
    if (rc)
        return rc;
    if ((rc = db_run_liveness(db, id, &live, owner, sizeof owner)))
        goto fail;
    if (live == DB_RUN_ALIVE && strcmp(owner, self) != 0) {
        rc = sl_err(SL_EBUSY, "run %lld is being trained by process %s (stop it first, or wait for it)",
                    (long long)id, owner);
        goto fail;
    }
    if ((rc = db_exec(db, "claiming a run", 0, "UPDATE run SET owner = ?2, heartbeat_at = " DB_NOW " WHERE id = ?1",
                      DB_ARGS(db_int(id), db_text(self)))) ||
        (rc = db_commit(db)))
        goto fail;
    return 0;
fail:
    db_rollback(db);
    return rc;
}

int db_run_heartbeat(struct db *db, int64_t id)
{
    char self[128];
    db_run_owner_self(self, sizeof self);
    int rc = db_exec(db, "refreshing a run's heartbeat", 0,
                     "UPDATE run SET heartbeat_at = " DB_NOW " WHERE id = ?1 AND owner = ?2",
                     DB_ARGS(db_int(id), db_text(self)));
    if (!rc && db_changes(db) != 1)
        rc = sl_err(SL_EBUSY, "run %lld: another process took the run over", (long long)id);
    return rc;
}

int db_run_release(struct db *db, int64_t id)
{
    char self[128];
    db_run_owner_self(self, sizeof self);
    return db_exec(db, "releasing a run", 0, "UPDATE run SET owner = NULL WHERE id = ?1 AND owner = ?2",
                   DB_ARGS(db_int(id), db_text(self)));
}

int db_train_log_insert(struct db *db, int64_t run_id, const struct db_train_log *l)
{
    int rc = db_exec(db, "storing a log line", DB_FOREIGNKEY,
                     "INSERT OR REPLACE INTO train_log (run_id, step, epoch, loss, ppl, lr, grad_norm,"
                     " src_tok_s, tgt_tok_s, elapsed_s) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                     DB_ARGS(db_int(run_id), db_int(l->step), db_int(l->epoch), db_real_or_null(l->loss),
                             db_real_or_null(l->ppl), db_real_or_null(l->lr), db_real_or_null(l->grad_norm),
                             db_real_or_null(l->src_tok_s), db_real_or_null(l->tgt_tok_s),
                             db_real_or_null(l->elapsed_s)));
    return rc == SL_ENOTFOUND ? db_fail(db, rc, "no run with id %lld", (long long)run_id) : rc;
}

int db_train_log_foreach(struct db *db, int64_t run_id, int (*cb)(void *ctx, const struct db_train_log *l),
                         void *ctx)
{
    struct db_stmt *st;
    int rc = db_query(db, &st, "reading the training log",
                      "SELECT step, epoch, loss, ppl, lr, grad_norm, src_tok_s, tgt_tok_s, elapsed_s"
                      " FROM train_log WHERE run_id = ?1 ORDER BY step",
                      DB_ARGS(db_int(run_id)));
    while (!rc && db_row(st) > 0) {
        struct db_train_log l = {
            .step = db_col_int(st, 0),
            .epoch = db_col_int(st, 1),
            .loss = db_col_real_or_nan(st, 2),
            .ppl = db_col_real_or_nan(st, 3),
            .lr = db_col_real_or_nan(st, 4),
            .grad_norm = db_col_real_or_nan(st, 5),
            .src_tok_s = db_col_real_or_nan(st, 6),
            .tgt_tok_s = db_col_real_or_nan(st, 7),
            .elapsed_s = db_col_real_or_nan(st, 8),
        };
        rc = cb(ctx, &l);
    }
    return db_stmt_end(st, rc);
}

int db_metric_insert(struct db *db, int64_t run_id, int64_t checkpoint_id, int64_t step, const char *split,
                     const char *name, double value, const char *signature)
{
    int rc = db_exec(db, "storing a metric", DB_FOREIGNKEY,
                     "INSERT INTO metric (run_id, checkpoint_id, step, split, name, value, signature)"
                     " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                     DB_ARGS(db_id(run_id), db_id(checkpoint_id), db_int(step), db_text(split), db_text(name),
                             db_real_or_null(value), db_text(signature)));
    if (rc == SL_ENOTFOUND)
        return db_fail(db, rc, "metric: no run %lld or checkpoint %lld", (long long)run_id,
                       (long long)checkpoint_id);
    return rc;
}

int db_metric_link_checkpoint(struct db *db, int64_t run_id, int64_t step, int64_t checkpoint_id)
{
    return db_exec(db, "linking validation metrics to their checkpoint", 0,
                   "UPDATE metric SET checkpoint_id = ?3 WHERE run_id = ?1 AND step = ?2 AND split = 'valid'"
                   " AND checkpoint_id IS NULL AND evaluation_id IS NULL",
                   DB_ARGS(db_int(run_id), db_int(step), db_int(checkpoint_id)));
}

int db_metric_latest(struct db *db, int64_t run_id, const char *split, const char *name, double *value,
                     int64_t *step)
{
    struct db_stmt *st;
    int rc = db_query_row(db, &st, "reading a metric",
                          "SELECT value, step FROM metric WHERE run_id = ?1 AND split IS ?2 AND name = ?3"
                          " ORDER BY id DESC LIMIT 1",
                          DB_ARGS(db_int(run_id), db_text(split), db_text(name)));
    if (!rc) {
        *value = db_col_real_or_nan(st, 0);
        if (step)
            *step = db_col_int(st, 1);
    } else if (rc == SL_ENOTFOUND) {
        rc = db_fail(db, rc, "run %lld has no metric '%s'", (long long)run_id, name);
    }
    return db_stmt_end(st, rc);
}

int db_metric_valid_foreach(struct db *db, int64_t run_id, const char *name, int64_t max_step,
                            int (*cb)(void *ctx, int64_t step, double value), void *ctx)
{
    struct db_stmt *st;
    int rc = db_query(db, &st, "reading validation metrics",
                      "SELECT step, value FROM metric WHERE run_id = ?1 AND split = 'valid' AND name = ?2 AND"
                      " evaluation_id IS NULL AND step <= ?3 ORDER BY step, id",
                      DB_ARGS(db_int(run_id), db_text(name), db_int(max_step)));
    while (!rc && db_row(st) > 0)
        rc = cb(ctx, db_col_int(st, 0), db_col_real_or_nan(st, 1));
    return db_stmt_end(st, rc);
}

int db_run_rewind(struct db *db, int64_t run_id, int64_t step)
{
    int rc = db_begin(db);
    if (rc)
        return rc;
    if ((rc = db_exec(db, "deleting checkpoints", 0, "DELETE FROM checkpoint WHERE run_id = ?1 AND step > ?2",
                      DB_ARGS(db_int(run_id), db_int(step)))) ||
        (rc = db_exec(db, "deleting training log rows", 0, "DELETE FROM train_log WHERE run_id = ?1 AND step > ?2",
                      DB_ARGS(db_int(run_id), db_int(step)))) ||
        (rc = db_exec(db, "deleting validation metrics", 0,
                      "DELETE FROM metric WHERE run_id = ?1 AND step > ?2 AND split = 'valid' AND"
                      " evaluation_id IS NULL",
                      DB_ARGS(db_int(run_id), db_int(step)))) ||
        (rc = db_commit(db))) {
        db_rollback(db);
        return rc;
    }
    return 0;
}

/* ---- train_data ---- */

static int plain_key(const char *k);

void db_train_data_clear(struct db_train_data *d)
{
    if (!d)
        return;
    free(d->corpora);
    memset(d, 0, sizeof *d);
}

/* d as {"corpora":[ids],"pairs":N,"last_pair_id":I}. */
static int train_data_json(const struct db_train_data *d, struct sbuf *out)
{
    int rc = sbuf_printf(out, "{\"corpora\":");
    if (!rc)
        rc = db_ids_json(d->corpora, d->n, out);
    if (!rc)
        rc = sbuf_printf(out, ",\"pairs\":%lld,\"last_pair_id\":%lld}", (long long)d->pairs,
                         (long long)d->last_pair_id);
    return rc ? sl_err(SL_ENOMEM, "out of memory") : 0;
}

int db_train_data_now(struct db *db, const int64_t *ids, size_t n, struct db_train_data *out)
{
    memset(out, 0, sizeof *out);
    struct sbuf js;
    sbuf_init(&js);
    struct db_stmt *st = NULL;
    int rc = db_ids_json(ids, n, &js) ? sl_err(SL_ENOMEM, "out of memory") : 0;
    if (!rc && !(out->corpora = malloc((n ? n : 1) * sizeof *out->corpora)))
        rc = sl_err(SL_ENOMEM, "out of memory");
    if (!rc)
        rc = db_query(db, &st, "reading the train corpora",
                      "SELECT id, n_pairs, last_pair_id FROM corpus WHERE id IN (SELECT value FROM json_each(?1))"
                      " ORDER BY id",
                      DB_ARGS(db_text(js.data)));
    while (!rc && db_row(st) > 0 && out->n < n) {
        out->corpora[out->n++] = db_col_int(st, 0);
        out->pairs += db_col_int(st, 1);
        if (db_col_int(st, 2) > out->last_pair_id)
            out->last_pair_id = db_col_int(st, 2);
    }
    rc = db_stmt_end(st, rc);
    if (!rc && out->n != n)
        rc = db_fail(db, SL_ENOTFOUND, "a train corpus no longer exists");
    sbuf_free(&js);
    if (rc)
        db_train_data_clear(out);
    return rc;
}

int db_run_train_data_get(struct db *db, int64_t id, struct db_train_data *out, int *stored)
{
    memset(out, 0, sizeof *out);
    *stored = 0;
    struct db_stmt *st;
    int rc = db_query_row(db, &st, "reading a run's train data",
                          "SELECT train_data IS NOT NULL, json_type(train_data, '$.corpora') IS 'array'"
                          " AND json_type(train_data, '$.pairs') IS 'integer'"
                          " AND json_type(train_data, '$.last_pair_id') IS 'integer',"
                          " json_extract(train_data, '$.pairs'), json_extract(train_data, '$.last_pair_id'),"
                          " json_array_length(train_data, '$.corpora') FROM run WHERE id = ?1",
                          DB_ARGS(db_int(id)));
    if (rc == SL_ENOTFOUND)
        rc = db_fail(db, rc, "no run with id %lld", (long long)id);
    int present = rc ? 0 : (int)db_col_int(st, 0), ok = rc ? 0 : (int)db_col_int(st, 1);
    const int64_t n = ok ? db_col_int(st, 4) : 0;
    if (ok) {
        out->pairs = db_col_int(st, 2);
        out->last_pair_id = db_col_int(st, 3);
    }
    if ((rc = db_stmt_end(st, rc)) || !present)
        return rc;
    if (!ok || n < 0)
        return db_fail(db, SL_ECORRUPT, "run %lld: train_data is not {\"corpora\":[ids],\"pairs\":N,"
                       "\"last_pair_id\":I}", (long long)id);
    if (!(out->corpora = malloc((size_t)(n ? n : 1) * sizeof *out->corpora)))
        return sl_err(SL_ENOMEM, "out of memory");
    rc = db_query(db, &st, "reading a run's train data",
                  "SELECT value, type FROM run, json_each(run.train_data, '$.corpora') WHERE run.id = ?1"
                  " ORDER BY value",
                  DB_ARGS(db_int(id)));
    while (!rc && db_row(st) > 0) {
        if ((int64_t)out->n >= n || strcmp(db_col_text(st, 1), "integer") != 0) {
            rc = db_fail(db, SL_ECORRUPT, "run %lld: train_data.corpora is not an array of ids", (long long)id);
            break;
        }
        out->corpora[out->n++] = db_col_int(st, 0);
    }
    rc = db_stmt_end(st, rc);
    if (rc)
        db_train_data_clear(out);
    else
        *stored = 1;
    return rc;
}

int db_run_train_data_set(struct db *db, int64_t id, const struct db_train_data *d)
{
    struct sbuf js;
    sbuf_init(&js);
    int rc = train_data_json(d, &js);
    if (!rc)
        rc = db_exec(db, "storing a run's train data", 0, "UPDATE run SET train_data = ?2 WHERE id = ?1",
                     DB_ARGS(db_int(id), db_text(js.data)));
    if (!rc && db_changes(db) != 1)
        rc = db_fail(db, SL_ENOTFOUND, "no run with id %lld", (long long)id);
    sbuf_free(&js);
    return rc;
}

int db_run_note_new_data(struct db *db, int64_t id, int64_t step, const struct db_train_data *old_d,
                         const struct db_train_data *new_d)
{
    struct sbuf js;
    sbuf_init(&js);
    int rc = sbuf_printf(&js, "{\"step\":%lld,\"from\":", (long long)step) ? sl_err(SL_ENOMEM, "out of memory") : 0;
    if (!rc)
        rc = train_data_json(old_d, &js);
    if (!rc && sbuf_printf(&js, ",\"to\":"))
        rc = sl_err(SL_ENOMEM, "out of memory");
    if (!rc)
        rc = train_data_json(new_d, &js);
    if (!rc && sbuf_putc(&js, '}'))
        rc = sl_err(SL_ENOMEM, "out of memory");
    if (!rc)
        rc = db_exec(db, "recording new train data", 0,
                     "UPDATE run SET config = json_set(config, '$.allow_new_data',"
                     " json(json_insert(coalesce(json_extract(config, '$.allow_new_data'), '[]'), '$[#]', json(?2))))"
                     " WHERE id = ?1",
                     DB_ARGS(db_int(id), db_text(js.data)));
    sbuf_free(&js);
    return rc;
}

int db_run_config_text(struct db *db, int64_t id, const char *key, struct sbuf *out)
{
    if (!plain_key(key))
        return sl_err(SL_EINVAL, "run config: '%s' is not a plain member name", key ? key : "");
    char path[80];
    snprintf(path, sizeof path, "$.%s", key);
    struct db_stmt *st;
    int rc = db_query_row(db, &st, "reading a run's config",
                          "SELECT json_valid(config) AND json_type(config) = 'object', json_type(config, ?2),"
                          " json_extract(config, ?2) FROM run WHERE id = ?1",
                          DB_ARGS(db_int(id), db_text(path)));
    if (rc == SL_ENOTFOUND)
        rc = db_fail(db, rc, "no run with id %lld", (long long)id);
    else if (!rc && !db_col_int(st, 0))
        rc = db_fail(db, SL_ECORRUPT, "the config of run %lld is not a JSON object", (long long)id);
    else if (!rc && (db_col_is_null(st, 1) || strcmp(db_col_text(st, 1), "text") != 0))
        rc = SL_ENOTFOUND;
    else if (!rc) {
        sbuf_reset(out);
        if (sbuf_printf(out, "%s", db_col_text(st, 2)))
            rc = sl_err(SL_ENOMEM, "out of memory");
    }
    return db_stmt_end(st, rc);
}

/* ---- run config members (json_type / json_extract, never a search of the text) ---- */

/* A member name that needs no quoting in a JSON path: [A-Za-z0-9_]+. */
static int plain_key(const char *k)
{
    if (!k || !*k)
        return 0;
    for (; *k; k++)
        if (!((*k >= 'a' && *k <= 'z') || (*k >= 'A' && *k <= 'Z') || (*k >= '0' && *k <= '9') || *k == '_'))
            return 0;
    return 1;
}

int db_run_config_get(struct db *db, int64_t id, struct db_json_field *fields, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (!plain_key(fields[i].key))
            return sl_err(SL_EINVAL, "run config: '%s' is not a plain member name",
                          fields[i].key ? fields[i].key : "");
        fields[i].type = DB_JSON_ABSENT;
        fields[i].i = 0;
        fields[i].d = 0;
    }
    struct db_stmt *st = NULL;
    /* 0: no config (no members), 1: a JSON object, 2: anything else */
    int rc = db_query_row(db, &st, "reading a run's config",
                          "SELECT CASE WHEN coalesce(config, '') = '' THEN 0"
                          " WHEN json_valid(config) AND json_type(config) = 'object' THEN 1 ELSE 2 END"
                          " FROM run WHERE id = ?1",
                          DB_ARGS(db_int(id)));
    const int64_t kind = rc ? -1 : db_col_int(st, 0);
    rc = db_stmt_end(st, rc);
    if (rc == SL_ENOTFOUND)
        return db_fail(db, rc, "no run with id %lld", (long long)id);
    if (rc)
        return rc;
    if (kind == 2)
        return db_fail(db, SL_ECORRUPT, "the config of run %lld is not a JSON object", (long long)id);
    for (size_t i = 0; kind == 1 && i < n; i++) {
        char path[80];
        snprintf(path, sizeof path, "$.%s", fields[i].key);
        st = NULL;
        rc = db_query_row(db, &st, "reading a run's config",
                          "SELECT json_type(config, ?2), json_extract(config, ?2) FROM run WHERE id = ?1",
                          DB_ARGS(db_int(id), db_text(path)));
        if (!rc && !db_col_is_null(st, 0)) {
            const char *t = db_col_text(st, 0);
            if (strcmp(t, "integer") == 0) {
                fields[i].type = DB_JSON_INTEGER;
                fields[i].i = db_col_int(st, 1);
                fields[i].d = db_col_real(st, 1);
            } else if (strcmp(t, "real") == 0) {
                fields[i].type = DB_JSON_REAL;
                fields[i].d = db_col_real(st, 1);
            } else {
                fields[i].type = DB_JSON_OTHER;
            }
        }
        if ((rc = db_stmt_end(st, rc)))
            return rc;
    }
    return 0;
}
