/* corpus/db.c: the seqlite database (see db.h): opening, migrations, transactions, and the one
 * statement helper of corpus/db_internal.h that the table-group files (db_corpus.c, db_vocab.c,
 * db_run.c, db_ckpt.c, db_translation.c) use. The only file that includes <sqlite3.h>.
 * Invariants:
 * - PRAGMA application_id = 0x53514C54 ("SQLT"), PRAGMA user_version = schema version;
 *   migrations[i] brings version i to i + 1 in one transaction; a file that is not ours or is newer
 *   is refused before anything is written to it.
 * - Connections use WAL (readers see the last commit while training writes), busy_timeout 10 s (the
 *   environment variable SEQLITE_BUSY_TIMEOUT_MS, milliseconds, overrides it: tests use it),
 *   foreign_keys=ON; every table is STRICT. Times are UTC text "YYYY-MM-DDTHH:MM:SS.SSSZ".
 *   A bulk import (db_bulk_mode) switches to a rollback journal while no other connection is open.
 * - The schema is the DDL below; docs/schema.md documents every table and column of it for users
 *   (tests/test_db.c checks the two against a fresh database's sqlite_schema).
 * - Statements: every one goes through the cache of db_stmt_start (prepared once per connection,
 *   reset after each use); only the fixed multi-statement scripts (a migration, connection pragmas)
 *   run through sqlite3_exec.
 * ref: sqlite.org/pragma.html, sqlite.org/wal.html, sqlite.org/stricttables.html,
 *      sqlite.org/fileformat.html (header offsets 60 user_version, 68 application_id). */
#include "corpus/db_internal.h"

#include "util/bf16.h"
#include "util/err.h"
#include "util/sbuf.h"

#include <assert.h>
#include <errno.h>
#include <math.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

/* migrations[i] brings user_version i to i + 1. Never edit a released entry: append a new one. */
static const char *const migrations[] = {
    /* 1: everything */
    "CREATE TABLE corpus ("
    " id INTEGER PRIMARY KEY,"
    " name TEXT NOT NULL UNIQUE,"
    " split TEXT NOT NULL CHECK (split IN ('train','valid','test')),"
    " src_lang TEXT NOT NULL,"
    " tgt_lang TEXT NOT NULL,"
    " src_path TEXT NOT NULL,"
    " tgt_path TEXT NOT NULL,"
    " n_pairs INTEGER NOT NULL DEFAULT 0,"
    " n_skipped INTEGER NOT NULL DEFAULT 0,"
    " first_pair_id INTEGER,"
    " last_pair_id INTEGER,"
    " created_at TEXT NOT NULL DEFAULT " DB_NOW ","
    " CHECK ((first_pair_id IS NULL) = (last_pair_id IS NULL))) STRICT;"
    "CREATE TABLE pair ("
    " id INTEGER PRIMARY KEY,"
    " corpus_id INTEGER NOT NULL REFERENCES corpus(id) ON DELETE CASCADE,"
    " line INTEGER NOT NULL,"
    " src TEXT NOT NULL,"
    " tgt TEXT NOT NULL,"
    " src_tokens INTEGER,"
    " tgt_tokens INTEGER) STRICT;"
    "CREATE TABLE vocab ("
    " id INTEGER PRIMARY KEY,"
    " kind TEXT NOT NULL,"
    " side TEXT NOT NULL CHECK (side IN ('joint','src','tgt')),"
    " size INTEGER NOT NULL CHECK (size >= 0),"
    " normalization TEXT NOT NULL,"
    " settings TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(settings)),"
    " created_at TEXT NOT NULL DEFAULT " DB_NOW ") STRICT;"
    "CREATE TABLE token ("
    " vocab_id INTEGER NOT NULL REFERENCES vocab(id) ON DELETE CASCADE,"
    " id INTEGER NOT NULL CHECK (id >= 0),"
    " surface TEXT NOT NULL,"
    " bytes BLOB NOT NULL,"
    " count INTEGER NOT NULL DEFAULT 0,"
    " kind TEXT NOT NULL CHECK (kind IN ('normal','special','byte')),"
    " PRIMARY KEY (vocab_id, id)) STRICT, WITHOUT ROWID;"
    "CREATE TABLE merge ("
    " vocab_id INTEGER NOT NULL REFERENCES vocab(id) ON DELETE CASCADE,"
    " rank INTEGER NOT NULL CHECK (rank >= 0),"
    " left_id INTEGER NOT NULL,"
    " right_id INTEGER NOT NULL,"
    " result_id INTEGER NOT NULL,"
    " PRIMARY KEY (vocab_id, rank)) STRICT, WITHOUT ROWID;"
    "CREATE TABLE run ("
    " id INTEGER PRIMARY KEY,"
    " name TEXT NOT NULL UNIQUE,"
    " status TEXT NOT NULL DEFAULT 'running'"
    "  CHECK (status IN ('running','done','stopped','failed')),"
    " src_vocab_id INTEGER REFERENCES vocab(id),"
    " tgt_vocab_id INTEGER REFERENCES vocab(id),"
    " seed INTEGER,"
    " layers INTEGER,"
    " emb INTEGER,"
    " hidden INTEGER,"
    " dropout REAL,"
    " batch INTEGER,"
    " batch_tokens INTEGER,"
    " lr REAL,"
    " clip REAL,"
    " epochs INTEGER,"
    " steps INTEGER,"
    " max_len INTEGER,"
    " reverse_source INTEGER CHECK (reverse_source IN (0,1)),"
    " threads INTEGER,"
    " valid_every INTEGER,"
    " save_every INTEGER,"
    " keep INTEGER,"
    " config TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(config)),"
    " steps_done INTEGER NOT NULL DEFAULT 0,"
    " started_at TEXT NOT NULL DEFAULT " DB_NOW ","
    " ended_at TEXT,"
    " message TEXT) STRICT;"
    "CREATE TABLE train_log ("
    " run_id INTEGER NOT NULL REFERENCES run(id) ON DELETE CASCADE,"
    " step INTEGER NOT NULL,"
    " epoch INTEGER NOT NULL,"
    " loss REAL,"
    " ppl REAL,"
    " lr REAL,"
    " grad_norm REAL,"
    " src_tok_s REAL,"
    " tgt_tok_s REAL,"
    " elapsed_s REAL,"
    " created_at TEXT NOT NULL DEFAULT " DB_NOW ","
    " PRIMARY KEY (run_id, step)) STRICT, WITHOUT ROWID;"
    "CREATE TABLE checkpoint ("
    " id INTEGER PRIMARY KEY,"
    " run_id INTEGER NOT NULL REFERENCES run(id) ON DELETE CASCADE,"
    " step INTEGER NOT NULL,"
    " epoch INTEGER NOT NULL,"
    " src_vocab_id INTEGER REFERENCES vocab(id),"
    " tgt_vocab_id INTEGER REFERENCES vocab(id),"
    " valid_ppl REAL,"
    " valid_bleu REAL,"
    " is_best INTEGER NOT NULL DEFAULT 0 CHECK (is_best IN (0,1)),"
    " rng_state BLOB,"
    " data_pos TEXT CHECK (data_pos IS NULL OR json_valid(data_pos)),"
    " created_at TEXT NOT NULL DEFAULT " DB_NOW ") STRICT;"
    "CREATE INDEX checkpoint_run ON checkpoint(run_id, step);"
    "CREATE TABLE tensor ("
    " checkpoint_id INTEGER NOT NULL REFERENCES checkpoint(id) ON DELETE CASCADE,"
    " name TEXT NOT NULL,"
    " shape TEXT NOT NULL CHECK (json_valid(shape)),"
    " dtype TEXT NOT NULL DEFAULT 'f32' CHECK (dtype IN ('f32')),"
    " data BLOB NOT NULL,"
    " PRIMARY KEY (checkpoint_id, name)) STRICT;"
    "CREATE TABLE metric ("
    " id INTEGER PRIMARY KEY,"
    " run_id INTEGER REFERENCES run(id) ON DELETE CASCADE,"
    " checkpoint_id INTEGER REFERENCES checkpoint(id) ON DELETE SET NULL,"
    " step INTEGER,"
    " split TEXT,"
    " name TEXT NOT NULL,"
    " value REAL,"
    " signature TEXT,"
    " created_at TEXT NOT NULL DEFAULT " DB_NOW ") STRICT;"
    "CREATE INDEX metric_run ON metric(run_id, step);"
    "CREATE TABLE translation ("
    " id INTEGER PRIMARY KEY,"
    " checkpoint_id INTEGER REFERENCES checkpoint(id) ON DELETE SET NULL,"
    " corpus_id INTEGER REFERENCES corpus(id) ON DELETE CASCADE,"
    " pair_id INTEGER REFERENCES pair(id) ON DELETE CASCADE,"
    " beam INTEGER NOT NULL DEFAULT 1,"
    " length_penalty REAL NOT NULL DEFAULT 0,"
    " hypothesis TEXT NOT NULL,"
    " score REAL,"
    " created_at TEXT NOT NULL DEFAULT " DB_NOW ") STRICT;"
    "CREATE INDEX translation_checkpoint ON translation(checkpoint_id, corpus_id);",
    /* 2: the run's options are stored once, in config; the columns users query them by are generated
     * from it (read-only, computed on read) */
    "ALTER TABLE run DROP COLUMN seed;"
    "ALTER TABLE run DROP COLUMN layers;"
    "ALTER TABLE run DROP COLUMN emb;"
    "ALTER TABLE run DROP COLUMN hidden;"
    "ALTER TABLE run DROP COLUMN dropout;"
    "ALTER TABLE run DROP COLUMN batch;"
    "ALTER TABLE run DROP COLUMN batch_tokens;"
    "ALTER TABLE run DROP COLUMN lr;"
    "ALTER TABLE run DROP COLUMN clip;"
    "ALTER TABLE run DROP COLUMN epochs;"
    "ALTER TABLE run DROP COLUMN steps;"
    "ALTER TABLE run DROP COLUMN max_len;"
    "ALTER TABLE run DROP COLUMN reverse_source;"
    "ALTER TABLE run DROP COLUMN valid_every;"
    "ALTER TABLE run DROP COLUMN save_every;"
    "ALTER TABLE run DROP COLUMN keep;"
    "ALTER TABLE run ADD COLUMN seed INTEGER AS (json_extract(config, '$.seed')) VIRTUAL;"
    "ALTER TABLE run ADD COLUMN layers INTEGER AS (json_extract(config, '$.layers')) VIRTUAL;"
    "ALTER TABLE run ADD COLUMN emb INTEGER AS (json_extract(config, '$.emb')) VIRTUAL;"
    "ALTER TABLE run ADD COLUMN hidden INTEGER AS (json_extract(config, '$.hidden')) VIRTUAL;"
    "ALTER TABLE run ADD COLUMN dropout REAL AS (json_extract(config, '$.dropout')) VIRTUAL;"
    "ALTER TABLE run ADD COLUMN batch INTEGER AS (json_extract(config, '$.batch')) VIRTUAL;"
    "ALTER TABLE run ADD COLUMN batch_tokens INTEGER AS (nullif(json_extract(config, '$.batch_tokens'), 0)) VIRTUAL;"
    "ALTER TABLE run ADD COLUMN lr REAL AS (json_extract(config, '$.lr')) VIRTUAL;"
    "ALTER TABLE run ADD COLUMN clip REAL AS (json_extract(config, '$.clip')) VIRTUAL;"
    "ALTER TABLE run ADD COLUMN epochs INTEGER AS (json_extract(config, '$.epochs')) VIRTUAL;"
    "ALTER TABLE run ADD COLUMN steps INTEGER AS (nullif(json_extract(config, '$.steps'), 0)) VIRTUAL;"
    "ALTER TABLE run ADD COLUMN max_len INTEGER AS (json_extract(config, '$.max_len')) VIRTUAL;"
    "ALTER TABLE run ADD COLUMN reverse_source INTEGER AS (json_extract(config, '$.reverse_source')) VIRTUAL;"
    "ALTER TABLE run ADD COLUMN valid_every INTEGER AS (json_extract(config, '$.valid_every')) VIRTUAL;"
    "ALTER TABLE run ADD COLUMN save_every INTEGER AS (json_extract(config, '$.save_every')) VIRTUAL;"
    "ALTER TABLE run ADD COLUMN keep INTEGER AS (json_extract(config, '$.keep')) VIRTUAL",
    /* 3: evaluation records (an evaluation row groups its translations and scores and keeps its
     * settings; it outlives the checkpoint it scored), run ownership (a lease), the training data a
     * run started on, and where an averaged checkpoint came from */
    "CREATE TABLE evaluation ("
    " id INTEGER PRIMARY KEY,"
    " run_id INTEGER REFERENCES run(id) ON DELETE SET NULL,"
    " checkpoint_id INTEGER REFERENCES checkpoint(id) ON DELETE SET NULL,"
    " step INTEGER,"
    " split TEXT NOT NULL,"
    " beam INTEGER CHECK (beam >= 1),"
    " length_penalty REAL,"
    " max_sentences INTEGER CHECK (max_sentences IS NULL OR max_sentences >= 1),"
    " members TEXT CHECK (members IS NULL OR json_valid(members)),"
    " n_sentences INTEGER,"
    " seconds REAL,"
    " sentences_per_s REAL,"
    " created_at TEXT NOT NULL DEFAULT " DB_NOW ") STRICT;"
    "CREATE INDEX evaluation_checkpoint ON evaluation(checkpoint_id);"
    "ALTER TABLE translation ADD COLUMN evaluation_id INTEGER REFERENCES evaluation(id) ON DELETE CASCADE;"
    "CREATE INDEX translation_evaluation ON translation(evaluation_id);"
    "ALTER TABLE metric ADD COLUMN evaluation_id INTEGER REFERENCES evaluation(id) ON DELETE CASCADE;"
    /* scores stored by `seqlite eval` before schema 3 (the only metric rows with a checkpoint then: a
     * bleu row and the chrf row after it) become evaluations whose settings were not recorded */
    "INSERT INTO evaluation (run_id, checkpoint_id, step, split, created_at)"
    " SELECT run_id, checkpoint_id, step, coalesce(split, ''), created_at FROM metric"
    " WHERE checkpoint_id IS NOT NULL AND name = 'bleu' ORDER BY id;"
    "UPDATE metric SET evaluation_id = (SELECT e.id FROM evaluation e WHERE e.checkpoint_id = metric.checkpoint_id"
    "  AND e.created_at = metric.created_at AND e.step IS metric.step ORDER BY e.id LIMIT 1)"
    " WHERE checkpoint_id IS NOT NULL AND name = 'bleu';"
    "UPDATE metric SET evaluation_id = (SELECT b.evaluation_id FROM metric b WHERE b.id = metric.id - 1"
    "  AND b.name = 'bleu' AND b.checkpoint_id = metric.checkpoint_id)"
    " WHERE checkpoint_id IS NOT NULL AND name = 'chrf';"
    "ALTER TABLE checkpoint ADD COLUMN averaged_from TEXT"
    " CHECK (averaged_from IS NULL OR json_valid(averaged_from));"
    "ALTER TABLE run ADD COLUMN owner TEXT;"
    "ALTER TABLE run ADD COLUMN heartbeat_at TEXT;"
    "ALTER TABLE run ADD COLUMN train_data TEXT CHECK (train_data IS NULL OR json_valid(train_data))",
    /* 4: the precision an evaluation decoded with (after the fallback to fp32 where the CPU lacks the
     * requested one); evaluations stored before schema 4 keep NULL: not recorded. Three pieces, not two:
     * clang's -Wstring-concatenation takes an entry of exactly two for a missing comma */
    "ALTER TABLE evaluation ADD COLUMN precision TEXT"
    " CHECK (precision IS NULL"
    " OR precision IN ('fp32','bf16','int8'))",
    /* 5: a tensor may be stored in bf16 (`seqlite export --precision bf16`). ALTER TABLE cannot change a
     * CHECK constraint; widening one changes nothing on disk, so the table's CREATE statement is edited
     * in sqlite_schema as sqlite.org/lang_altertable.html describes for such changes, and migrate()
     * then bumps the schema cookie (finish_schema_edit) */
    "PRAGMA writable_schema = ON;"
    "UPDATE sqlite_schema SET sql = replace(sql, 'CHECK (dtype IN (''f32''))',"
    " 'CHECK (dtype IN (''f32'',''bf16''))') WHERE type = 'table' AND name = 'tensor'",
};
#define N_MIGRATIONS ((int)(sizeof migrations / sizeof migrations[0]))
_Static_assert(N_MIGRATIONS == DB_SCHEMA_VERSION, "one migration per schema version");

const char *db_migration_script(int from) { return from >= 0 && from < N_MIGRATIONS ? migrations[from] : NULL; }

/* ---- the statement helper (db_internal.h) ---- */

struct db_stmt {
    struct db *db;
    const char *sql; /* the cache key: its address */
    const char *what;
    sqlite3_stmt *st;
    struct db_stmt *next; /* in db->cache */
    int in_use;
    int fresh; /* not cached: finalised when released */
    int err;   /* the error of a failed db_row */
};

/* Records "PATH: what: sqlite message" as SL_EDB. */
static int dberr(struct db *db, const char *what)
{
    db->busy = (sqlite3_extended_errcode(db->h) & 0xff) == SQLITE_BUSY;
    return sl_err(SL_EDB, "%s: %s: %s", db->path, what, sqlite3_errmsg(db->h));
}

int db_failed_busy(const struct db *db, int rc) { return rc == SL_EDB && db->busy; }

int db_busy_timeout_default(void)
{
    const char *env = getenv("SEQLITE_BUSY_TIMEOUT_MS");
    char *end;
    long ms = env && *env ? strtol(env, &end, 10) : -1;
    return env && *env && !*end && ms >= 0 && ms <= 3600000 ? (int)ms : 10000;
}

void db_set_busy_timeout(struct db *db, int ms)
{
    sqlite3_busy_timeout(db->h, ms < 0 ? db_busy_timeout_default() : ms);
}

int db_fail(struct db *db, int code, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return sl_err(code, "%s: %s", db->path, msg);
}

static int bind_args(struct db_stmt *s, const struct db_val *args, int n_args)
{
    assert(n_args == sqlite3_bind_parameter_count(s->st));
    for (int i = 0; i < n_args; i++) {
        const struct db_val *v = &args[i];
        int r = SQLITE_OK;
        switch (v->kind) {
        case DB_V_NULL: r = sqlite3_bind_null(s->st, i + 1); break;
        case DB_V_INT: r = sqlite3_bind_int64(s->st, i + 1, v->i); break;
        case DB_V_REAL: r = sqlite3_bind_double(s->st, i + 1, v->r); break;
        case DB_V_TEXT:
            r = v->n == SIZE_MAX ? sqlite3_bind_text(s->st, i + 1, v->p, -1, SQLITE_STATIC)
                                 : sqlite3_bind_text64(s->st, i + 1, v->p, v->n, SQLITE_STATIC, SQLITE_UTF8);
            break;
        case DB_V_BLOB: r = sqlite3_bind_blob64(s->st, i + 1, v->p, v->n, SQLITE_STATIC); break;
        }
        if (r != SQLITE_OK)
            return dberr(s->db, s->what);
    }
    return 0;
}

static void stmt_release(struct db_stmt *s)
{
    if (s->fresh) {
        sqlite3_finalize(s->st);
        free(s);
        return;
    }
    sqlite3_reset(s->st);
    s->in_use = 0;
    s->err = 0;
    s->what = NULL;
}

/* The statement for sql, bound: the cached one, or a fresh one when that is in use. */
static int stmt_start(struct db *db, struct db_stmt **out, const char *what, const char *sql,
                      const struct db_val *args, int n_args)
{
    *out = NULL;
    struct db_stmt *s = db->cache;
    while (s && s->sql != sql)
        s = s->next;
    if (!s || s->in_use) {
        int fresh = s != NULL;
        if (!(s = calloc(1, sizeof *s)))
            return sl_err(SL_ENOMEM, "out of memory");
        if (sqlite3_prepare_v3(db->h, sql, -1, fresh ? 0 : SQLITE_PREPARE_PERSISTENT, &s->st, NULL) !=
            SQLITE_OK) {
            free(s);
            return dberr(db, what);
        }
        s->db = db;
        s->sql = sql;
        s->fresh = fresh;
        if (!fresh) {
            s->next = db->cache;
            db->cache = s;
        }
    }
    s->in_use = 1;
    s->what = what;
    int rc = bind_args(s, args, n_args);
    if (rc) {
        stmt_release(s);
        return rc;
    }
    *out = s;
    return 0;
}

/* The status of a failed step: an expected constraint failure as its SL_E* code, else SL_EDB. */
static int step_error(struct db *db, int r, int expect, const char *what)
{
    static const struct {
        int sqlite, mask, code;
    } kinds[] = {
        {SQLITE_CONSTRAINT_UNIQUE, DB_UNIQUE, SL_EEXIST},
        {SQLITE_CONSTRAINT_PRIMARYKEY, DB_PRIMARYKEY, SL_EEXIST},
        {SQLITE_CONSTRAINT_FOREIGNKEY, DB_FOREIGNKEY, SL_ENOTFOUND},
        {SQLITE_CONSTRAINT_CHECK, DB_CHECK, SL_EINVAL},
        {SQLITE_CONSTRAINT_NOTNULL, DB_NOTNULL, SL_EINVAL},
    };
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
        if (r == kinds[i].sqlite && (expect & kinds[i].mask))
            return sl_err(kinds[i].code, "%s: %s: %s", db->path, what, sqlite3_errmsg(db->h));
    return dberr(db, what);
}

int db_exec(struct db *db, const char *what, int expect, const char *sql, const struct db_val *args, int n_args)
{
    struct db_stmt *s;
    int rc = stmt_start(db, &s, what, sql, args, n_args);
    if (rc)
        return rc;
    int r = sqlite3_step(s->st);
    if (r != SQLITE_DONE)
        rc = step_error(db, r, expect, what);
    stmt_release(s);
    return rc;
}

int db_query(struct db *db, struct db_stmt **out, const char *what, const char *sql, const struct db_val *args,
             int n_args)
{
    return stmt_start(db, out, what, sql, args, n_args);
}

int db_row(struct db_stmt *s)
{
    int r = sqlite3_step(s->st);
    if (r == SQLITE_ROW)
        return 1;
    if (r == SQLITE_DONE)
        return 0;
    return s->err = dberr(s->db, s->what);
}

int db_query_row(struct db *db, struct db_stmt **out, const char *what, const char *sql,
                 const struct db_val *args, int n_args)
{
    int rc = stmt_start(db, out, what, sql, args, n_args);
    if (rc)
        return rc;
    rc = db_row(*out);
    if (rc == 0)
        return sl_err(SL_ENOTFOUND, "%s: %s: no row", db->path, what);
    return rc < 0 ? rc : 0;
}

int db_query_int(struct db *db, int64_t *v, const char *what, const char *sql, const struct db_val *args,
                 int n_args)
{
    struct db_stmt *s;
    int rc = db_query_row(db, &s, what, sql, args, n_args);
    if (!rc && db_col_is_null(s, 0))
        rc = sl_err(SL_ENOTFOUND, "%s: %s: NULL", db->path, what);
    else if (!rc)
        *v = db_col_int(s, 0);
    return db_stmt_end(s, rc);
}

int db_get_by_id(struct db *db, const char *thing, const char *sql, int64_t id,
                 int (*read)(struct db *db, struct db_stmt *st, void *out), void *out)
{
    char what[64];
    snprintf(what, sizeof what, "reading a %s", thing);
    struct db_stmt *s;
    int rc = db_query_row(db, &s, what, sql, DB_ARGS(db_int(id)));
    if (rc == SL_ENOTFOUND)
        rc = db_fail(db, rc, "no %s with id %lld", thing, (long long)id);
    if (!rc)
        rc = read(db, s, out);
    return db_stmt_end(s, rc);
}

int db_stmt_end(struct db_stmt *s, int rc)
{
    if (!s)
        return rc;
    int err = s->err;
    stmt_release(s);
    return rc ? rc : err;
}

int64_t db_col_int(struct db_stmt *s, int i) { return sqlite3_column_int64(s->st, i); }

double db_col_real(struct db_stmt *s, int i) { return sqlite3_column_double(s->st, i); }

double db_col_real_or_nan(struct db_stmt *s, int i)
{
    return db_col_is_null(s, i) ? (double)NAN : sqlite3_column_double(s->st, i);
}

int db_col_is_null(struct db_stmt *s, int i) { return sqlite3_column_type(s->st, i) == SQLITE_NULL; }

const char *db_col_text(struct db_stmt *s, int i)
{
    const char *t = (const char *)sqlite3_column_text(s->st, i);
    return t ? t : "";
}

const char *db_col_text_n(struct db_stmt *s, int i, size_t *len)
{
    const char *t = db_col_text(s, i);
    *len = (size_t)sqlite3_column_bytes(s->st, i);
    return t;
}

const void *db_col_blob(struct db_stmt *s, int i, size_t *len)
{
    const void *p = sqlite3_column_blob(s->st, i);
    *len = (size_t)sqlite3_column_bytes(s->st, i);
    return p || *len ? p : "";
}

int64_t db_changes(struct db *db) { return sqlite3_changes(db->h); }

int64_t db_last_id(struct db *db) { return sqlite3_last_insert_rowid(db->h); }

/* Runs a fixed script of statements without parameters (a migration, connection pragmas). */
static int script(struct db *db, const char *sql, const char *what)
{
    if (sqlite3_exec(db->h, sql, NULL, NULL, NULL) != SQLITE_OK)
        return dberr(db, what);
    return 0;
}

/* ---- opening ---- */

static struct db *db_alloc(const char *path)
{
    struct db *db = calloc(1, sizeof *db);
    if (!db)
        return NULL;
    sbuf_init(&db->tmp);
    if (!(db->path = strdup(path))) {
        free(db);
        return NULL;
    }
    return db;
}

static uint32_t be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

/* "file:" URI for path, percent-encoding everything but unreserved characters and '/'. */
static char *uri_for(const char *path, const char *query)
{
    struct sbuf b;
    sbuf_init(&b);
    int rc = sbuf_append(&b, "file:", 5);
    for (const unsigned char *p = (const unsigned char *)path; !rc && *p; p++) {
        if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
            strchr("/-._~", *p))
            rc = sbuf_putc(&b, (char)*p);
        else
            rc = sbuf_printf(&b, "%%%02X", *p);
    }
    if (!rc)
        rc = sbuf_printf(&b, "?%s", query);
    if (rc) {
        sbuf_free(&b);
        return NULL;
    }
    return b.data;
}

/* Counts the schema entries of an existing file without writing anything (immutable read-only open).
 * Returns SL_ECORRUPT when SQLite cannot read it. */
static int count_schema_readonly(const char *path, int64_t *n)
{
    char *uri = uri_for(path, "immutable=1");
    struct db *ro = uri ? db_alloc(path) : NULL;
    int rc = 0;
    if (!ro) {
        rc = sl_err(SL_ENOMEM, "out of memory");
        goto done;
    }
    if (sqlite3_open_v2(uri, &ro->h, SQLITE_OPEN_READONLY | SQLITE_OPEN_URI, NULL) != SQLITE_OK ||
        db_query_int(ro, n, "reading the schema", "SELECT count(*) FROM sqlite_schema", DB_NO_ARGS))
        rc = sl_err(SL_ECORRUPT, "%s: not a seqlite database (SQLite cannot read it: %s)", path,
                    ro->h ? sqlite3_errmsg(ro->h) : "out of memory");
done:
    db_close(ro);
    free(uri);
    return rc;
}

/* Checks app id / version / emptiness against what this build accepts. */
static int check_identity(const char *path, uint32_t app_id, int64_t version, int64_t n_schema)
{
    if (app_id != DB_APPLICATION_ID && app_id != 0)
        return sl_err(SL_ECORRUPT,
                      "%s: not a seqlite database (an SQLite database of another program, "
                      "application_id 0x%08X)",
                      path, app_id);
    if (app_id == 0 && n_schema > 0)
        return sl_err(SL_ECORRUPT,
                      "%s: not a seqlite database (an SQLite database of another program: it has %lld "
                      "schema object%s and no seqlite application_id)",
                      path, (long long)n_schema, n_schema == 1 ? "" : "s");
    if (version > DB_SCHEMA_VERSION)
        return sl_err(SL_EVERSION,
                      "%s: made by a newer seqlite (schema %lld, this build knows %d): upgrade seqlite",
                      path, (long long)version, DB_SCHEMA_VERSION);
    return 0;
}

/* Looks at an existing file before SQLite opens it for writing: *fresh = 1 when it is empty (0 bytes,
 * or an SQLite file with no schema and no application id). Nothing is written. */
static int precheck(const char *path, int *exists, int *fresh)
{
    struct stat sb;
    *exists = 0;
    *fresh = 1;
    if (stat(path, &sb) != 0) {
        if (errno == ENOENT)
            return 0;
        return sl_err(SL_EIO, "%s: %s", path, strerror(errno));
    }
    *exists = 1;
    if (S_ISDIR(sb.st_mode))
        return sl_err(SL_EIO, "%s: is a directory, not a database file", path);
    if (sb.st_size == 0)
        return 0;
    unsigned char hdr[100];
    FILE *f = fopen(path, "rb");
    if (!f)
        return sl_err(SL_EIO, "%s: %s", path, strerror(errno));
    size_t n = fread(hdr, 1, sizeof hdr, f);
    fclose(f);
    if (n < sizeof hdr || memcmp(hdr, "SQLite format 3", 16) != 0)
        return sl_err(SL_ECORRUPT, "%s: not a seqlite database (not an SQLite file)", path);
    uint32_t app_id = be32(hdr + 68);
    int64_t version = be32(hdr + 60);
    int64_t n_schema = 0;
    if (app_id == 0) {
        int rc = count_schema_readonly(path, &n_schema);
        if (rc)
            return rc;
    }
    int rc = check_identity(path, app_id, version, n_schema);
    if (rc)
        return rc;
    *fresh = app_id == 0;
    return 0;
}

/* The identity as SQLite sees it (includes changes still in the WAL). */
static int read_identity(struct db *db, uint32_t *app_id, int64_t *version, int64_t *n_schema)
{
    int64_t a = 0;
    int rc = db_query_int(db, &a, "reading the schema", "PRAGMA application_id", DB_NO_ARGS);
    if (!rc)
        rc = db_query_int(db, version, "reading the schema", "PRAGMA user_version", DB_NO_ARGS);
    if (!rc)
        rc = db_query_int(db, n_schema, "reading the schema", "SELECT count(*) FROM sqlite_schema", DB_NO_ARGS);
    *app_id = (uint32_t)a;
    return rc;
}

/* After a migration that edited a table's CREATE statement in sqlite_schema (migrations[from] with
 * writable_schema on): checks that the edit took (a tensor table that is not seqlite's is refused, not
 * guessed at), bumps the schema cookie so every connection reads the schema again, and turns
 * writable_schema off. Inside the migration's transaction. */
static int finish_schema_edit(struct db *db, int from)
{
    if (from != 4)
        return 0;
    int64_t ok = 0, cookie = 0;
    int rc = db_query_int(db, &ok, "checking the tensor table",
                          "SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = 'tensor'"
                          " AND instr(sql, 'CHECK (dtype IN (''f32'',''bf16''))') > 0",
                          DB_NO_ARGS);
    if (!rc && ok != 1)
        rc = sl_err(SL_ECORRUPT, "%s: the tensor table's definition is not seqlite's: cannot upgrade it to schema 5",
                    db->path);
    if (!rc)
        rc = db_query_int(db, &cookie, "reading the schema cookie", "PRAGMA schema_version", DB_NO_ARGS);
    if (!rc) {
        char sql[96];
        snprintf(sql, sizeof sql, "PRAGMA schema_version = %lld; PRAGMA writable_schema = OFF;",
                 (long long)cookie + 1);
        rc = script(db, sql, "bumping the schema cookie");
    }
    return rc;
}

static int migrate(struct db *db)
{
    for (;;) {
        uint32_t app_id;
        int64_t version = 0, n_schema = 0;
        int rc = read_identity(db, &app_id, &version, &n_schema);
        if (!rc)
            rc = check_identity(db->path, app_id, version, n_schema);
        if (rc)
            return rc;
        if (version == DB_SCHEMA_VERSION)
            return 0;
        if ((rc = db_begin(db)))
            return rc;
        /* another process may have migrated between the read and the lock: read again */
        rc = read_identity(db, &app_id, &version, &n_schema);
        if (!rc)
            rc = check_identity(db->path, app_id, version, n_schema);
        if (!rc && version < DB_SCHEMA_VERSION) {
            char pragmas[128];
            snprintf(pragmas, sizeof pragmas, "PRAGMA application_id = %d; PRAGMA user_version = %d;",
                     (int)DB_APPLICATION_ID, (int)version + 1);
            rc = script(db, migrations[version], "creating the schema");
            if (!rc)
                rc = finish_schema_edit(db, (int)version);
            if (!rc)
                rc = script(db, pragmas, "setting the schema version");
        }
        if (rc) {
            if (version == 4)
                sqlite3_exec(db->h, "PRAGMA writable_schema = OFF", NULL, NULL, NULL);
            db_rollback(db);
            return rc;
        }
        if ((rc = db_commit(db)))
            return rc;
    }
}

/* Sets the journal mode (WAL, or with wal 0 a rollback journal); returns 1 when it took effect. Best
 * effort: another connection keeps the database in WAL mode (the busy timeout is dropped meanwhile,
 * so nothing waits for it), and a failure leaves the thread's error message as it was. */
static int set_journal_mode(struct db *db, int wal)
{
    char saved[1024];
    snprintf(saved, sizeof saved, "%s", sl_errmsg());
    struct db_stmt *st = NULL;
    sqlite3_busy_timeout(db->h, 0);
    int ok = db_query_row(db, &st, "setting the journal mode",
                          wal ? "PRAGMA journal_mode = WAL" : "PRAGMA journal_mode = DELETE", DB_NO_ARGS) == 0 &&
             sqlite3_stricmp(db_col_text(st, 0), wal ? "WAL" : "DELETE") == 0;
    db_stmt_end(st, 0);
    db_set_busy_timeout(db, -1);
    sl_err(0, "%s", saved);
    return ok;
}

/* seqlite_bf16(BLOB of little-endian float32) -> BLOB of little-endian bf16, each float rounded to the
 * nearest bf16, ties to even (util/bf16.h: what the bf16 products round weights to). For
 * `seqlite export --precision bf16` (db_export.c); NULL gives NULL, a BLOB whose size is not a
 * multiple of 4 an error. */
static void sql_bf16(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
    (void)argc;
    if (sqlite3_value_type(argv[0]) == SQLITE_NULL)
        return;
    int bytes = sqlite3_value_bytes(argv[0]);
    const unsigned char *in = sqlite3_value_blob(argv[0]);
    if (bytes % 4 != 0) {
        sqlite3_result_error(ctx, "seqlite_bf16: a BLOB of float32 has a multiple of 4 bytes", -1);
        return;
    }
    unsigned char *out = sqlite3_malloc(bytes / 2 + 1);
    if (!out) {
        sqlite3_result_error_nomem(ctx);
        return;
    }
    for (int i = 0; i < bytes / 4; i++) {
        const unsigned char *b = in + 4 * i;
        uint32_t u = (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
        float f;
        memcpy(&f, &u, sizeof f);
        const uint16_t h = bf16_round(f);
        out[2 * i] = (unsigned char)h;
        out[2 * i + 1] = (unsigned char)(h >> 8);
    }
    sqlite3_result_blob(ctx, out, bytes / 2, sqlite3_free);
}

/* The application functions of every connection. */
static int add_functions(struct db *db)
{
    if (sqlite3_create_function(db->h, "seqlite_bf16", 1, SQLITE_UTF8 | SQLITE_DETERMINISTIC | SQLITE_DIRECTONLY,
                                NULL, sql_bf16, NULL, NULL) != SQLITE_OK)
        return dberr(db, "setting up the connection");
    return 0;
}

/* Opens an existing database for reading only where it cannot be written (a read-only medium, or a
 * file this user may not write): WAL readers need a writable -shm next to the file, so on a read-only
 * file system the file is opened immutable (nothing can change it there). No migration: an older
 * schema is refused with what to do. */
static int open_readonly(struct db *db, int immutable)
{
    char *uri = uri_for(db->path, immutable ? "immutable=1" : "mode=ro");
    if (!uri)
        return sl_err(SL_ENOMEM, "out of memory");
    int orc = sqlite3_open_v2(uri, &db->h, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_URI, NULL);
    free(uri);
    if (orc != SQLITE_OK)
        return db->h ? dberr(db, "opening read-only") : sl_err(SL_ENOMEM, "out of memory");
    sqlite3_extended_result_codes(db->h, 1);
    sqlite3_busy_timeout(db->h, 10000);
    uint32_t app_id;
    int64_t version = 0, n_schema = 0;
    int rc = read_identity(db, &app_id, &version, &n_schema);
    if (!rc)
        rc = check_identity(db->path, app_id, version, n_schema);
    if (!rc && version < DB_SCHEMA_VERSION)
        rc = sl_err(SL_EVERSION,
                    "%s: schema %lld needs an upgrade to %d, which a read-only file cannot take: open it once "
                    "where it is writable (any seqlite command, e.g. seqlite info)",
                    db->path, (long long)version, DB_SCHEMA_VERSION);
    if (!rc)
        rc = script(db, "PRAGMA foreign_keys = ON;", "setting up the connection");
    if (!rc)
        rc = add_functions(db);
    return rc;
}

/* Whether path lies on a read-only file system, or this user may not write it or its folder. */
static int read_only_place(const char *path, int *medium)
{
    struct statvfs vs;
    *medium = statvfs(path, &vs) == 0 && (vs.f_flag & ST_RDONLY);
    if (*medium)
        return 1;
    char *dir = strdup(path);
    if (!dir)
        return 0;
    char *slash = strrchr(dir, '/');
    const char *d = slash ? (slash == dir ? "/" : (*slash = '\0', dir)) : ".";
    int ro = access(path, W_OK) != 0 || access(d, W_OK) != 0;
    free(dir);
    return ro;
}

int db_open(const char *path, int flags, struct db **out)
{
    *out = NULL;
    int exists, fresh;
    int rc = precheck(path, &exists, &fresh);
    if (rc)
        return rc;
    if (fresh && !(flags & DB_CREATE))
        return sl_err(SL_ENOTFOUND, "%s: %s (run seqlite import %s ... first)", path,
                      exists ? "empty database" : "no such database", path);
    struct db *db = db_alloc(path);
    if (!db)
        return sl_err(SL_ENOMEM, "out of memory");
    int medium = 0;
    if ((flags & DB_READ) && exists && read_only_place(path, &medium)) {
        if ((rc = open_readonly(db, medium)) && !medium) {
            /* mode=ro could not read the WAL (no -shm can be made here): the file cannot change either */
            sqlite3_close(db->h);
            db->h = NULL;
            rc = open_readonly(db, 1);
        }
        if (rc)
            goto fail;
        *out = db;
        return 0;
    }
    int oflags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_URI |
                 ((flags & DB_CREATE) ? SQLITE_OPEN_CREATE : 0);
    /* Paths are paths: opened as a percent-encoded file: URI, so a name such as "file:x.db?mode=memory"
     * (which an SQLite built with URI filenames would take as a URI) is the file of that name. */
    char *uri = uri_for(path, "");
    if (!uri) {
        rc = sl_err(SL_ENOMEM, "out of memory");
        goto fail;
    }
    int orc = sqlite3_open_v2(uri, &db->h, oflags, NULL);
    free(uri);
    if (orc != SQLITE_OK) {
        rc = db->h ? dberr(db, "opening") : sl_err(SL_ENOMEM, "out of memory");
        goto fail;
    }
    sqlite3_extended_result_codes(db->h, 1);
    db_set_busy_timeout(db, -1);
    /* The first migration runs in rollback-journal mode, so the application id reaches the main file
     * before WAL is switched on: a later precheck always sees it in the header. */
    if ((rc = migrate(db)))
        goto fail;
    /* Best effort: a database that another connection holds in rollback mode (a bulk import in
     * progress) stays so for now; everything works in either mode. */
    set_journal_mode(db, 1);
    rc = script(db, "PRAGMA foreign_keys = ON; PRAGMA synchronous = NORMAL;", "setting up the connection");
    if (!rc)
        rc = add_functions(db);
    if (rc)
        goto fail;
    *out = db;
    return 0;
fail:
    db_close(db);
    return rc;
}

void db_close(struct db *db)
{
    if (!db)
        return;
    for (struct db_stmt *s = db->cache, *next; s; s = next) {
        next = s->next;
        sqlite3_finalize(s->st);
        free(s);
    }
    sqlite3_close(db->h);
    sbuf_free(&db->tmp);
    free(db->path);
    free(db);
}

const char *db_path(const struct db *db) { return db->path; }

int db_read_only(const struct db *db) { return sqlite3_db_readonly(db->h, "main") == 1; }

int db_begin(struct db *db) { return db_exec(db, "starting a transaction", 0, "BEGIN IMMEDIATE", DB_NO_ARGS); }

int db_commit(struct db *db) { return db_exec(db, "committing", 0, "COMMIT", DB_NO_ARGS); }

int db_read_begin(struct db *db)
{
    int64_t n;
    int rc = db_exec(db, "starting a read transaction", 0, "BEGIN DEFERRED", DB_NO_ARGS);
    /* the snapshot starts at the first read */
    if (!rc && (rc = db_query_int(db, &n, "starting a read transaction", "SELECT count(*) FROM sqlite_schema",
                                  DB_NO_ARGS)))
        db_rollback(db);
    return rc;
}

int db_read_end(struct db *db) { return db_rollback(db); }

int db_rollback(struct db *db)
{
    if (sqlite3_get_autocommit(db->h))
        return 0; /* nothing open (SQLite may have rolled back already) */
    return db_exec(db, "rolling back", 0, "ROLLBACK", DB_NO_ARGS);
}

int db_bulk_mode(struct db *db, int on)
{
    if (!sqlite3_get_autocommit(db->h))
        return sl_err(SL_EINVAL, "%s: db_bulk_mode inside a transaction", db->path);
    /* The bulk loader only inserts pairs of the corpus row it created in the same transaction, so
     * the foreign key check of every pair (a tenth of the import time) proves nothing. */
    int rc = script(db,
                    on ? "PRAGMA foreign_keys = OFF; PRAGMA cache_size = -65536"
                       : "PRAGMA foreign_keys = ON; PRAGMA cache_size = -2000",
                    "setting up a bulk load");
    if (rc)
        return rc;
    /* In WAL mode every new page is written twice (to the WAL, then by the checkpoint); a rollback
     * journal writes appended pages once and journals only the few pages that existed: the import
     * takes half the time, and stays atomic and durable (synchronous=NORMAL). When another
     * connection has the database open the switch is skipped and the load runs in WAL mode. */
    set_journal_mode(db, !on);
    return 0;
}

int db_schema_columns(struct db *db, int (*cb)(void *ctx, const char *table, const char *column), void *ctx)
{
    struct db_stmt *st;
    int rc = db_query(db, &st, "reading the schema",
                      "SELECT m.name, c.name FROM sqlite_schema AS m, pragma_table_xinfo(m.name) AS c"
                      " WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite!_%' ESCAPE '!'"
                      " ORDER BY m.name, c.cid",
                      DB_NO_ARGS);
    while (!rc && db_row(st) > 0)
        rc = cb(ctx, db_col_text(st, 0), db_col_text(st, 1));
    return db_stmt_end(st, rc);
}
