/* corpus/db_info.c: the project summary of `seqlite info` (see db.h, "project summary"): vocabularies,
 * runs with their model, wall time and best checkpoint, a run's checkpoints with their sizes, and the
 * newest evaluations with their scores. Read-only: nothing here writes, so it runs beside a trainer
 * (WAL readers see the last commit). Times are computed by SQLite from the stored UTC texts.
 * Ownership: the strings handed to callbacks are the statement's, borrowed for the callback. */
#include "corpus/db_internal.h"

#include "util/err.h"


int db_info_begin(struct db *db)
{
    return db_exec(db, "starting a read transaction", 0, "BEGIN DEFERRED", DB_NO_ARGS);
}

int db_info_end(struct db *db) { return db_exec(db, "ending a read transaction", 0, "COMMIT", DB_NO_ARGS); }

int db_info_vocabs(struct db *db, int (*cb)(void *ctx, const struct db_info_vocab *v), void *ctx)
{
    struct db_stmt *st;
    int rc = db_query(db, &st, "listing vocabularies",
                      "SELECT id, size, kind, side, normalization, created_at FROM vocab ORDER BY id", DB_NO_ARGS);
    while (!rc && db_row(st) > 0) {
        const struct db_info_vocab v = {
            .id = db_col_int(st, 0),
            .size = db_col_int(st, 1),
            .kind = db_col_text(st, 2),
            .side = db_col_text(st, 3),
            .normalization = db_col_text(st, 4),
            .created_at = db_col_text(st, 5),
        };
        rc = cb(ctx, &v);
    }
    return db_stmt_end(st, rc);
}

/* A config member as an integer, -1 when absent or when the config is not JSON (an SQL expression
 * over column config of run r; M is a plain member name). */
#define CONFIG_INT(M) \
    "coalesce(CASE WHEN json_valid(r.config) THEN json_extract(r.config, '$." M "') END, -1)"
/* Seconds from the run's started_at to the SQL time T. */
#define SECONDS_TO(T) "(julianday(" T ") - julianday(r.started_at)) * 86400.0"

int db_info_runs(struct db *db, int (*cb)(void *ctx, const struct db_info_run *r), void *ctx)
{
    struct db_stmt *st;
    int rc = db_query(db, &st, "listing runs",
                      "SELECT r.id, r.name, r.status, coalesce(r.owner, ''), r.layers, r.hidden, " CONFIG_INT("attention") ","
                      " " CONFIG_INT("encoder") ", r.steps_done, coalesce(r.steps, 0), r.started_at, r.ended_at,"
                      " " SECONDS_TO("coalesce(r.ended_at, 'now')") ", " SECONDS_TO("r.heartbeat_at") ","
                      " b.id, b.valid_ppl, b.valid_bleu"
                      " FROM run r LEFT JOIN checkpoint b ON b.id ="
                      "  (SELECT max(c.id) FROM checkpoint c WHERE c.run_id = r.id AND c.is_best = 1)"
                      " ORDER BY r.id",
                      DB_NO_ARGS);
    while (!rc && db_row(st) > 0) {
        struct db_info_run r = {
            .id = db_col_int(st, 0),
            .name = db_col_text(st, 1),
            .status = db_col_text(st, 2),
            .owner = db_col_text(st, 3),
            .layers = db_col_int(st, 4),
            .hidden = db_col_int(st, 5),
            .attention = db_col_int(st, 6),
            .encoder = db_col_int(st, 7),
            .steps_done = db_col_int(st, 8),
            .steps = db_col_int(st, 9),
            .started_at = db_col_text(st, 10),
            .ended_at = db_col_text(st, 11),
            .seconds = db_col_real_or_nan(st, 12),
            .best_checkpoint_id = db_col_int(st, 14),
            .best_valid_ppl = db_col_real_or_nan(st, 15),
            .best_valid_bleu = db_col_real_or_nan(st, 16),
        };
        if ((rc = db_run_liveness(db, r.id, &r.liveness, NULL, 0)))
            break;
        if (r.liveness == DB_RUN_INTERRUPTED && !db_col_is_null(st, 13))
            r.seconds = db_col_real(st, 13);
        rc = cb(ctx, &r);
    }
    return db_stmt_end(st, rc);
}

int db_info_run_find(struct db *db, const char *key, int64_t *id)
{
    /* an id when key is all digits and such a run exists, else a name */
    int rc = db_query_int(db, id, "looking a run up",
                          "SELECT coalesce((SELECT id FROM run WHERE ?1 <> '' AND ?1 NOT GLOB '*[^0-9]*'"
                          " AND id = CAST(?1 AS INTEGER)), (SELECT id FROM run WHERE name = ?1))",
                          DB_ARGS(db_text(key)));
    return rc == SL_ENOTFOUND ? db_fail(db, rc, "no run '%s' (neither the id nor the name of a run)", key) : rc;
}

int db_info_checkpoints(struct db *db, int64_t run_id, int (*cb)(void *ctx, const struct db_info_checkpoint *c),
                        void *ctx)
{
    struct db_stmt *st;
    /* length() of a BLOB is read from its header: the tensor data itself is not loaded */
    int rc = db_query(db, &st, "listing checkpoints",
                      "SELECT c.id, c.run_id, c.step, c.valid_ppl, c.valid_bleu, c.is_best, json(c.averaged_from),"
                      " count(t.name), coalesce(sum(length(t.data)), 0),"
                      " coalesce(sum(CASE WHEN t.name GLOB 'adam.*' THEN length(t.data) END), 0), c.created_at"
                      " FROM checkpoint c LEFT JOIN tensor t ON t.checkpoint_id = c.id WHERE c.run_id = ?1"
                      " GROUP BY c.id ORDER BY c.step, c.id",
                      DB_ARGS(db_int(run_id)));
    while (!rc && db_row(st) > 0) {
        const struct db_info_checkpoint c = {
            .id = db_col_int(st, 0),
            .run_id = db_col_int(st, 1),
            .step = db_col_int(st, 2),
            .valid_ppl = db_col_real_or_nan(st, 3),
            .valid_bleu = db_col_real_or_nan(st, 4),
            .is_best = db_col_int(st, 5) != 0,
            .averaged_from = db_col_text(st, 6),
            .n_tensors = db_col_int(st, 7),
            .bytes = db_col_int(st, 8),
            .adam_bytes = db_col_int(st, 9),
            .created_at = db_col_text(st, 10),
        };
        rc = cb(ctx, &c);
    }
    return db_stmt_end(st, rc);
}

int db_info_evaluations(struct db *db, int64_t run_id, int64_t limit,
                        int (*cb)(void *ctx, const struct db_info_evaluation *e), void *ctx)
{
    struct db_stmt *st;
    int rc = db_query(db, &st, "listing evaluations",
                      "SELECT * FROM (SELECT e.id, e.run_id, e.checkpoint_id, e.step, e.split, e.beam, e.length_penalty,"
                      " e.max_sentences, json(e.members), e.n_sentences, e.seconds, e.sentences_per_s,"
                      " (SELECT m.value FROM metric m WHERE m.evaluation_id = e.id AND m.name = 'bleu'"
                      "  ORDER BY m.id DESC LIMIT 1),"
                      " (SELECT m.value FROM metric m WHERE m.evaluation_id = e.id AND m.name = 'chrf'"
                      "  ORDER BY m.id DESC LIMIT 1), e.created_at, e.precision"
                      " FROM evaluation e WHERE ?1 = 0 OR e.run_id = ?1 ORDER BY e.id DESC LIMIT ?2) ORDER BY 1",
                      DB_ARGS(db_int(run_id), db_int(limit)));
    while (!rc && db_row(st) > 0) {
        const struct db_info_evaluation e = {
            .id = db_col_int(st, 0),
            .run_id = db_col_int(st, 1),
            .checkpoint_id = db_col_int(st, 2),
            .step = db_col_int(st, 3),
            .split = db_col_text(st, 4),
            .beam = db_col_int(st, 5),
            .length_penalty = db_col_real_or_nan(st, 6),
            .max_sentences = db_col_int(st, 7),
            .members = db_col_text(st, 8),
            .n_sentences = db_col_int(st, 9),
            .seconds = db_col_real_or_nan(st, 10),
            .sentences_per_s = db_col_real_or_nan(st, 11),
            .bleu = db_col_real_or_nan(st, 12),
            .chrf = db_col_real_or_nan(st, 13),
            .created_at = db_col_text(st, 14),
            .precision = db_col_text(st, 15),
        };
        rc = cb(ctx, &e);
    }
    return db_stmt_end(st, rc);
}
