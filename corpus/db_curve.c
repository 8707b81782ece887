/* corpus/db_curve.c: learning curves (see db.h, "learning curves"): the runs with how much each has
 * logged, and the points of one curve of a run: the training loss of its train_log rows, or one
 * metric of one split. Read only.
 * - Points come in step order, one per step. A metric measured twice at a step (training's own
 *   validation, then a later `seqlite eval` of that step's checkpoint) gives the first value stored.
 * - A point's elapsed_s is the run's wall time at that step: train_log.elapsed_s of the row at the
 *   step (for a metric: the last row at or before it), NaN when there is none. Rows whose value is
 *   NULL are left out. */
#include "corpus/db_internal.h"

int db_curve_runs_foreach(struct db *db, int (*cb)(void *ctx, const struct db_curve_run *r), void *ctx)
{
    struct db_stmt *st;
    int rc = db_query(db, &st, "reading the runs",
                      "SELECT id, name, status,"
                      " (SELECT count(*) FROM train_log WHERE run_id = run.id AND loss IS NOT NULL),"
                      " (SELECT count(*) FROM metric WHERE run_id = run.id AND split = 'valid'"
                      "  AND value IS NOT NULL)"
                      " FROM run ORDER BY id",
                      DB_NO_ARGS);
    while (!rc && db_row(st) > 0) {
        struct db_curve_run r = {
            .id = db_col_int(st, 0),
            .name = db_col_text(st, 1),
            .status = db_col_text(st, 2),
            .n_loss = db_col_int(st, 3),
            .n_valid = db_col_int(st, 4),
        };
        rc = cb(ctx, &r);
    }
    return db_stmt_end(st, rc);
}

/* Calls cb for every row of st: (step, elapsed_s, value). */
static int points_read(struct db_stmt *st, int rc, int (*cb)(void *ctx, const struct db_curve_point *p),
                       void *ctx)
{
    while (!rc && db_row(st) > 0) {
        struct db_curve_point p = {
            .step = db_col_int(st, 0),
            .elapsed_s = db_col_real_or_nan(st, 1),
            .value = db_col_real(st, 2),
        };
        rc = cb(ctx, &p);
    }
    return db_stmt_end(st, rc);
}

int db_curve_loss_foreach(struct db *db, int64_t run_id, int (*cb)(void *ctx, const struct db_curve_point *p),
                          void *ctx)
{
    struct db_stmt *st;
    int rc = db_query(db, &st, "reading the training log",
                      "SELECT step, elapsed_s, loss FROM train_log WHERE run_id = ?1 AND loss IS NOT NULL"
                      " ORDER BY step",
                      DB_ARGS(db_int(run_id)));
    return points_read(st, rc, cb, ctx);
}

int db_curve_metric_foreach(struct db *db, int64_t run_id, const char *split, const char *name,
                            int (*cb)(void *ctx, const struct db_curve_point *p), void *ctx)
{
    struct db_stmt *st;
    int rc = db_query(db, &st, "reading metrics",
                      "SELECT m.step,"
                      " (SELECT elapsed_s FROM train_log WHERE run_id = m.run_id AND step <= m.step"
                      "  ORDER BY step DESC LIMIT 1),"
                      " m.value FROM metric m"
                      " WHERE m.run_id = ?1 AND m.split = ?2 AND m.name = ?3 AND m.value IS NOT NULL"
                      " AND m.step IS NOT NULL AND m.id = (SELECT min(id) FROM metric WHERE run_id = m.run_id"
                      "  AND split = m.split AND name = m.name AND step = m.step AND value IS NOT NULL)"
                      " ORDER BY m.step",
                      DB_ARGS(db_int(run_id), db_text(split), db_text(name)));
    return points_read(st, rc, cb, ctx);
}
