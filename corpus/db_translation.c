/* corpus/db_translation.c: the evaluation and translation tables (see db.h): an evaluation row holds
 * the settings of one `seqlite eval` (or any stored decoding of a split) and groups its system outputs
 * (translation rows) and scores (metric rows). An evaluation outlives the checkpoint it scored: the
 * checkpoint is looked up when the row is written and stored as NULL when it was deleted meanwhile
 * (pruned by a training run), so a concurrent prune cannot fail an evaluation. */
#include "corpus/db_internal.h"

#include "util/err.h"

int db_evaluation_insert(struct db *db, struct db_evaluation *e, int64_t *id)
{
    int rc = db_exec(db, "storing an evaluation", DB_CHECK,
                     "INSERT INTO evaluation (run_id, checkpoint_id, step, split, beam, length_penalty,"
                     " max_sentences, members, n_sentences, seconds, sentences_per_s, precision)"
                     " VALUES ((SELECT id FROM run WHERE id = ?1), (SELECT id FROM checkpoint WHERE id = ?2),"
                     " ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
                     DB_ARGS(db_int(e->run_id), db_int(e->checkpoint_id), db_int(e->step), db_text(e->split),
                             db_int(e->beam), db_real(e->length_penalty), db_id(e->max_sentences),
                             e->members ? db_text(e->members) : db_null(), db_int(e->n_sentences),
                             db_real_or_null(e->seconds), db_real_or_null(e->sentences_per_s),
                             e->precision ? db_text(e->precision) : db_null()));
    if (rc == SL_EINVAL)
        return db_fail(db, rc, "evaluation: beam %d, limit %lld, members '%s' or precision '%s' out of range",
                       e->beam, (long long)e->max_sentences, e->members ? e->members : "",
                       e->precision ? e->precision : "");
    if (rc)
        return rc;
    *id = db_last_id(db);
    struct db_stmt *st;
    rc = db_query_row(db, &st, "reading an evaluation", "SELECT checkpoint_id FROM evaluation WHERE id = ?1",
                      DB_ARGS(db_int(*id)));
    if (!rc)
        e->checkpoint_id = db_col_int(st, 0);
    return db_stmt_end(st, rc);
}

int db_evaluation_metric_insert(struct db *db, int64_t evaluation_id, const char *name, double value,
                                const char *signature)
{
    int rc = db_exec(db, "storing a metric", 0,
                     "INSERT INTO metric (run_id, checkpoint_id, step, split, name, value, signature, evaluation_id)"
                     " SELECT run_id, checkpoint_id, step, split, ?2, ?3, ?4, id FROM evaluation WHERE id = ?1",
                     DB_ARGS(db_int(evaluation_id), db_text(name), db_real_or_null(value), db_text(signature)));
    if (!rc && db_changes(db) != 1)
        return db_fail(db, SL_ENOTFOUND, "metric: no evaluation %lld", (long long)evaluation_id);
    return rc;
}

int db_translation_insert(struct db *db, int64_t evaluation_id, int64_t checkpoint_id, int64_t corpus_id,
                          int64_t pair_id, int beam, double length_penalty, const char *hypothesis, double score)
{
    int rc = db_exec(db, "storing a translation", DB_FOREIGNKEY,
                     "INSERT INTO translation (evaluation_id, checkpoint_id, corpus_id, pair_id, beam,"
                     " length_penalty, hypothesis, score) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                     DB_ARGS(db_id(evaluation_id), db_id(checkpoint_id), db_id(corpus_id), db_id(pair_id),
                             db_int(beam), db_real(length_penalty), db_text(hypothesis), db_real_or_null(score)));
    return rc == SL_ENOTFOUND ? db_fail(db, rc, "translation: no such evaluation, checkpoint, corpus or pair") : rc;
}
