/* corpus/db_corpus.c: the corpus and pair tables (see db.h). An import appends a corpus's pairs as
 * one contiguous id range inside one transaction; db_corpus_finish checks that the pairs inserted
 * since db_corpus_create form that range (struct db keeps it: ins_*) and records it, and every
 * reader selects a corpus's pairs by that range (there is no index on pair.corpus_id). */
#include "corpus/db_internal.h"

#include "util/err.h"

#include <stdlib.h>
#include <string.h>

#define CORPUS_COLS \
    "id, name, split, src_lang, tgt_lang, src_path, tgt_path, created_at, n_pairs, n_skipped," \
    " first_pair_id, last_pair_id"

int db_corpus_create(struct db *db, const char *name, const char *split, const char *src_lang,
                     const char *tgt_lang, const char *src_path, const char *tgt_path, int64_t *id)
{
    int rc = db_exec(db, "creating a corpus", DB_UNIQUE | DB_CHECK,
                     "INSERT INTO corpus (name, split, src_lang, tgt_lang, src_path, tgt_path)"
                     " VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                     DB_ARGS(db_text(name), db_text(split), db_text(src_lang), db_text(tgt_lang),
                             db_text(src_path), db_text(tgt_path)));
    if (rc == SL_EEXIST)
        return db_fail(db, rc, "a corpus named '%s' exists already", name);
    if (rc == SL_EINVAL)
        return db_fail(db, rc, "bad split '%s' (train, valid or test)", split);
    if (rc)
        return rc;
    *id = db_last_id(db);
    db->ins_corpus = *id;
    db->ins_first = db->ins_last = db->ins_n = 0;
    return 0;
}

int db_corpus_finish(struct db *db, int64_t id, int64_t n_pairs, int64_t n_skipped)
{
    /* the id range is what db_pairs_foreach reads: it must hold exactly this corpus's pairs */
    if (n_pairs > 0 &&
        (db->ins_corpus != id || db->ins_n != n_pairs || db->ins_last - db->ins_first + 1 != n_pairs))
        return db_fail(db, SL_EINVAL, "corpus %lld: its %lld pairs were not inserted as one run since "
                                      "db_corpus_create",
                       (long long)id, (long long)n_pairs);
    int rc = db_exec(db, "recording the corpus counts", 0,
                     "UPDATE corpus SET n_pairs = ?2, n_skipped = ?3, first_pair_id = ?4,"
                     " last_pair_id = ?5 WHERE id = ?1",
                     DB_ARGS(db_int(id), db_int(n_pairs), db_int(n_skipped),
                             db_id(n_pairs > 0 ? db->ins_first : 0), db_id(n_pairs > 0 ? db->ins_last : 0)));
    if (!rc && db_changes(db) != 1)
        rc = db_fail(db, SL_ENOTFOUND, "no corpus with id %lld", (long long)id);
    return rc;
}

/* The corpus of the current row of a CORPUS_COLS query (strings borrowed from the row). */
static void corpus_from_row(struct db_stmt *st, struct db_corpus *c)
{
    c->id = db_col_int(st, 0);
    c->name = db_col_text(st, 1);
    c->split = db_col_text(st, 2);
    c->src_lang = db_col_text(st, 3);
    c->tgt_lang = db_col_text(st, 4);
    c->src_path = db_col_text(st, 5);
    c->tgt_path = db_col_text(st, 6);
    c->created_at = db_col_text(st, 7);
    c->n_pairs = db_col_int(st, 8);
    c->n_skipped = db_col_int(st, 9);
    c->first_pair_id = db_col_int(st, 10);
    c->last_pair_id = db_col_int(st, 11);
}

void db_corpus_clear(struct db_corpus *c)
{
    if (!c)
        return;
    free((char *)c->name);
    free((char *)c->split);
    free((char *)c->src_lang);
    free((char *)c->tgt_lang);
    free((char *)c->src_path);
    free((char *)c->tgt_path);
    free((char *)c->created_at);
    memset(c, 0, sizeof *c);
}

static const char *dup_text(const char *s, int *oom)
{
    char *d = strdup(s);
    if (!d)
        *oom = 1;
    return d;
}

int db_corpus_get(struct db *db, const char *name, struct db_corpus *out)
{
    memset(out, 0, sizeof *out);
    struct db_stmt *st;
    int rc = db_query_row(db, &st, "reading a corpus", "SELECT " CORPUS_COLS " FROM corpus WHERE name = ?1",
                          DB_ARGS(db_text(name)));
    if (rc == SL_ENOTFOUND)
        rc = db_fail(db, rc, "no corpus named '%s'", name);
    if (!rc) {
        struct db_corpus c;
        corpus_from_row(st, &c);
        int oom = 0;
        *out = c;
        out->name = dup_text(c.name, &oom);
        out->split = dup_text(c.split, &oom);
        out->src_lang = dup_text(c.src_lang, &oom);
        out->tgt_lang = dup_text(c.tgt_lang, &oom);
        out->src_path = dup_text(c.src_path, &oom);
        out->tgt_path = dup_text(c.tgt_path, &oom);
        out->created_at = dup_text(c.created_at, &oom);
        if (oom) {
            db_corpus_clear(out);
            rc = sl_err(SL_ENOMEM, "out of memory");
        }
    }
    return db_stmt_end(st, rc);
}

int db_corpus_foreach(struct db *db, int (*cb)(void *ctx, const struct db_corpus *c), void *ctx)
{
    struct db_stmt *st;
    int rc = db_query(db, &st, "listing corpora", "SELECT " CORPUS_COLS " FROM corpus ORDER BY id", DB_NO_ARGS);
    while (!rc && db_row(st) > 0) {
        struct db_corpus c;
        corpus_from_row(st, &c);
        rc = cb(ctx, &c);
    }
    return db_stmt_end(st, rc);
}

int db_pair_insert(struct db *db, int64_t corpus_id, int64_t line, const char *src, size_t srclen,
                   const char *tgt, size_t tgtlen)
{
    int rc = db_exec(db, "storing a pair", 0, "INSERT INTO pair (corpus_id, line, src, tgt) VALUES (?1, ?2, ?3, ?4)",
                     DB_ARGS(db_int(corpus_id), db_int(line), db_text_n(src, srclen), db_text_n(tgt, tgtlen)));
    if (rc)
        return rc;
    int64_t id = db_last_id(db);
    if (db->ins_corpus != corpus_id || db->ins_n == 0 || id != db->ins_last + 1) {
        /* not a continuation of the current run: start a new one (db_corpus_finish checks it) */
        db->ins_corpus = corpus_id;
        db->ins_first = id;
        db->ins_n = 0;
    }
    db->ins_last = id;
    db->ins_n++;
    return 0;
}

int db_pairs_foreach(struct db *db, const char *split,
                     int (*cb)(void *ctx, int64_t pair_id, const char *src, size_t srclen,
                               const char *tgt, size_t tgtlen),
                     void *ctx)
{
    return db_pairs_foreach_in(db, split, NULL, 0, cb, ctx);
}

int db_ids_json(const int64_t *ids, size_t n, struct sbuf *out)
{
    int rc = sbuf_putc(out, '[');
    for (size_t i = 0; i < n && !rc; i++)
        rc = sbuf_printf(out, "%s%lld", i ? "," : "", (long long)ids[i]);
    return rc ? rc : sbuf_putc(out, ']');
}

int db_pairs_foreach_in(struct db *db, const char *split, const int64_t *corpus_ids, size_t n_ids,
                        int (*cb)(void *ctx, int64_t pair_id, const char *src, size_t srclen,
                                  const char *tgt, size_t tgtlen),
                        void *ctx)
{
    struct sbuf ids;
    sbuf_init(&ids);
    if (corpus_ids && db_ids_json(corpus_ids, n_ids, &ids)) {
        sbuf_free(&ids);
        return sl_err(SL_ENOMEM, "out of memory");
    }
    struct db_stmt *st;
    int rc = db_query(db, &st, "reading pairs",
                      /* CROSS JOIN fixes the loop order: corpora, then each one's id range */
                      "SELECT pair.id, pair.src, pair.tgt, pair.corpus_id = corpus.id, corpus.name"
                      " FROM corpus CROSS JOIN pair WHERE corpus.split = ?1"
                      " AND (?2 IS NULL OR corpus.id IN (SELECT value FROM json_each(?2)))"
                      " AND pair.id >= corpus.first_pair_id AND pair.id <= corpus.last_pair_id"
                      " ORDER BY corpus.id, pair.id",
                      DB_ARGS(db_text(split), db_text(corpus_ids ? ids.data : NULL)));
    while (!rc && db_row(st) > 0) {
        if (!db_col_int(st, 3)) {
            rc = db_fail(db, SL_ECORRUPT, "corpus '%s': pair %lld is in its id range but not its own",
                         db_col_text(st, 4), (long long)db_col_int(st, 0));
            break;
        }
        size_t srclen, tgtlen;
        const char *src = db_col_text_n(st, 1, &srclen);
        const char *tgt = db_col_text_n(st, 2, &tgtlen);
        rc = cb(ctx, db_col_int(st, 0), src, srclen, tgt, tgtlen);
    }
    rc = db_stmt_end(st, rc);
    sbuf_free(&ids);
    return rc;
}

int db_pair_set_tokens(struct db *db, int64_t pair_id, int64_t n_src, int64_t n_tgt)
{
    int rc = db_exec(db, "recording token counts", 0, "UPDATE pair SET src_tokens = ?2, tgt_tokens = ?3 WHERE id = ?1",
                     DB_ARGS(db_int(pair_id), db_int(n_src), db_int(n_tgt)));
    if (!rc && db_changes(db) != 1)
        rc = db_fail(db, SL_ENOTFOUND, "no pair with id %lld", (long long)pair_id);
    return rc;
}

int db_pair_get(struct db *db, int64_t pair_id, int64_t *corpus_id, int64_t *line)
{
    struct db_stmt *st;
    int rc = db_query_row(db, &st, "reading a pair", "SELECT corpus_id, line FROM pair WHERE id = ?1",
                          DB_ARGS(db_int(pair_id)));
    if (!rc) {
        *corpus_id = db_col_int(st, 0);
        *line = db_col_int(st, 1);
    } else if (rc == SL_ENOTFOUND) {
        rc = db_fail(db, rc, "no pair with id %lld", (long long)pair_id);
    }
    return db_stmt_end(st, rc);
}

int db_split_count(struct db *db, const char *split, int64_t *n)
{
    struct db_stmt *st;
    int rc = db_query_row(db, &st, "counting pairs", "SELECT total(n_pairs) FROM corpus WHERE split = ?1",
                          DB_ARGS(db_text(split)));
    if (!rc)
        *n = (int64_t)db_col_real(st, 0);
    return db_stmt_end(st, rc);
}
