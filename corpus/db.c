/* corpus/db.c: the seqlite database (see db.h). The only file that includes <sqlite3.h>; every SQL
 * string of the project is here. Invariants: PRAGMA application_id = 0x53514C54 ("SQLT"),
 * PRAGMA user_version = schema version, migrations[i] brings version i to i+1 in one transaction;
 * a file that is not ours or is newer is refused before anything is written to it.
 * Connections use WAL (readers see the last commit while training writes), busy_timeout 10 s,
 * foreign_keys=ON; every table is STRICT. Times are UTC text "YYYY-MM-DDTHH:MM:SS.SSSZ".
 * A bulk import (db_bulk_mode) switches to a rollback journal while no other connection is open.
 *
 * Schema (version 1; docs/schema.md says the same for users):
 *  corpus      one imported parallel corpus (two line-aligned files).
 *              id, name (unique, chosen with --name), split ('train'|'valid'|'test'), src_lang,
 *              tgt_lang, src_path / tgt_path (the files as given to import), n_pairs (stored),
 *              n_skipped (pairs dropped because a side was empty), first_pair_id / last_pair_id
 *              (the corpus's pairs are exactly the ids first..last, in line order; NULL if none),
 *              created_at.
 *  pair        one sentence pair. id, corpus_id -> corpus, line (1-based line number in both input
 *              files), src, tgt (text, BOM and trailing CR removed), src_tokens / tgt_tokens (subword
 *              counts under the latest vocabulary, NULL until computed). No index besides id: an
 *              import appends its pairs as one contiguous id range (one write transaction), so
 *              (corpus, line) order is id order and a corpus is an id range; an index on
 *              corpus_id would cost a third of the import time.
 *  vocab       one learned subword vocabulary. id, kind ('bpe'), side ('joint' shared by both sides,
 *              'src' or 'tgt'), size (number of tokens), normalization ('NFKC'|'NFC'|'none'),
 *              settings (JSON of the options it was learned with), created_at.
 *  token       the tokens of a vocabulary. vocab_id -> vocab, id (token id, 0 pad 1 bos 2 eos 3 unk
 *              by convention), surface (display text: the bytes when they are UTF-8, else <0xHH>
 *              escapes), bytes (exact bytes), count (frequency in the training text), kind
 *              ('normal'|'special'|'byte'). Key (vocab_id, id).
 *  merge       BPE merges. vocab_id -> vocab, rank (0 = applied first), left_id + right_id ->
 *              result_id (token ids). Key (vocab_id, rank).
 *  run         one training run. id, name (unique), status ('running'|'done'|'stopped'|'failed'),
 *              src_vocab_id / tgt_vocab_id -> vocab, seed, layers, emb, hidden, dropout, batch
 *              (sentences per batch), batch_tokens (token budget per batch, NULL none), lr, clip
 *              (gradient norm clip), epochs, steps (limits, NULL none), max_len (longest pair kept),
 *              reverse_source (0|1), threads, valid_every, save_every (steps), keep (checkpoints
 *              kept), config (JSON of every option), steps_done, started_at, ended_at, message (why
 *              it stopped or failed).
 *  train_log   one line per logged step. run_id -> run, step, epoch, loss (mean cross-entropy per
 *              target token, nats), ppl (exp(loss)), lr, grad_norm (before clipping), src_tok_s /
 *              tgt_tok_s (throughput), elapsed_s (since the run started), created_at. Key (run_id,step).
 *  checkpoint  a saved model. id, run_id -> run, step, epoch, src_vocab_id / tgt_vocab_id -> vocab,
 *              valid_ppl, valid_bleu (NULL when not measured), is_best (0|1), rng_state (the
 *              generator's 32 bytes), data_pos (JSON: where in the data to resume), created_at.
 *  tensor      the parameters of a checkpoint. checkpoint_id -> checkpoint (deleted with it), name,
 *              shape (JSON array, e.g. "[4,256]"), dtype ('f32'), data (little-endian float32,
 *              4 * product(shape) bytes). Key (checkpoint_id, name).
 *  metric      a measured number. id, run_id -> run, checkpoint_id -> checkpoint (NULL when deleted),
 *              step, split, name ('ppl'|'bleu'|'chrf'|...), value, signature (how it was computed,
 *              e.g. the sacreBLEU-style signature), created_at.
 *  translation a system output. id, checkpoint_id -> checkpoint, corpus_id -> corpus, pair_id -> pair,
 *              beam (beam size, 1 greedy), length_penalty, hypothesis (detokenized text), score
 *              (model log-probability), created_at.
 * ref: sqlite.org/pragma.html, sqlite.org/wal.html, sqlite.org/stricttables.html,
 *      sqlite.org/fileformat.html (header offsets 60 user_version, 68 application_id). */
#include "corpus/db.h"

#include "util/err.h"
#include "util/utf8.h"
#include "util/sbuf.h"

#include <errno.h>
#include <math.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define NOW "(strftime('%Y-%m-%dT%H:%M:%fZ','now'))"

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
    " created_at TEXT NOT NULL DEFAULT " NOW ","
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
    " created_at TEXT NOT NULL DEFAULT " NOW ") STRICT;"
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
    " started_at TEXT NOT NULL DEFAULT " NOW ","
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
    " created_at TEXT NOT NULL DEFAULT " NOW ","
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
    " created_at TEXT NOT NULL DEFAULT " NOW ") STRICT;"
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
    " created_at TEXT NOT NULL DEFAULT " NOW ") STRICT;"
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
    " created_at TEXT NOT NULL DEFAULT " NOW ") STRICT;"
    "CREATE INDEX translation_checkpoint ON translation(checkpoint_id, corpus_id);",
};
#define N_MIGRATIONS ((int)(sizeof migrations / sizeof migrations[0]))
_Static_assert(N_MIGRATIONS == DB_SCHEMA_VERSION, "one migration per schema version");

/* Cached statements (prepared on first use, reset after each use). */
enum q {
    Q_CORPUS_CREATE,
    Q_CORPUS_FINISH,
    Q_CORPUS_GET,
    Q_PAIR_INSERT,
    Q_PAIR_SET_TOKENS,
    Q_PAIR_GET,
    Q_SPLIT_COUNT,
    Q_VOCAB_INSERT,
    Q_TOKEN_INSERT,
    Q_MERGE_INSERT,
    Q_VOCAB_GET,
    Q_VOCAB_LATEST,
    Q_COUNT
};

#define CORPUS_COLS \
    "id, name, split, src_lang, tgt_lang, src_path, tgt_path, created_at, n_pairs, n_skipped," \
    " first_pair_id, last_pair_id"

static const char *const q_sql[Q_COUNT] = {
    [Q_CORPUS_CREATE] = "INSERT INTO corpus (name, split, src_lang, tgt_lang, src_path, tgt_path)"
                        " VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    [Q_CORPUS_FINISH] = "UPDATE corpus SET n_pairs = ?2, n_skipped = ?3, first_pair_id = ?4,"
                        " last_pair_id = ?5 WHERE id = ?1",
    [Q_CORPUS_GET] = "SELECT " CORPUS_COLS " FROM corpus WHERE name = ?1",
    [Q_PAIR_INSERT] = "INSERT INTO pair (corpus_id, line, src, tgt) VALUES (?1, ?2, ?3, ?4)",
    [Q_PAIR_SET_TOKENS] = "UPDATE pair SET src_tokens = ?2, tgt_tokens = ?3 WHERE id = ?1",
    [Q_PAIR_GET] = "SELECT corpus_id, line FROM pair WHERE id = ?1",
    [Q_SPLIT_COUNT] = "SELECT total(n_pairs) FROM corpus WHERE split = ?1",
    [Q_VOCAB_INSERT] = "INSERT INTO vocab (kind, side, normalization, settings, size)"
                       " VALUES (?1, ?2, ?3, ?4, ?5)",
    [Q_TOKEN_INSERT] = "INSERT INTO token (vocab_id, id, surface, bytes, count, kind)"
                       " VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    [Q_MERGE_INSERT] = "INSERT INTO merge (vocab_id, rank, left_id, right_id, result_id)"
                       " VALUES (?1, ?2, ?3, ?4, ?5)",
    [Q_VOCAB_GET] = "SELECT id, kind, side, normalization, settings, size FROM vocab WHERE id = ?1",
    [Q_VOCAB_LATEST] = "SELECT id FROM vocab WHERE ?1 IS NULL OR side = ?1"
                       " OR (side = 'joint' AND ?1 IN ('src','tgt')) ORDER BY id DESC LIMIT 1",
};

struct db {
    sqlite3 *h;
    char *path;
    sqlite3_stmt *stmt[Q_COUNT];
    /* pair ids inserted for corpus ins_corpus since db_corpus_create (checked by db_corpus_finish) */
    int64_t ins_corpus, ins_first, ins_last, ins_n;
    struct sbuf tmp; /* scratch for token surfaces */
};

/* Records "PATH: what: sqlite message" as SL_EDB. */
static int dberr(struct db *db, const char *what)
{
    return sl_err(SL_EDB, "%s: %s: %s", db->path, what, sqlite3_errmsg(db->h));
}

/* The cached statement q, reset with bindings cleared. */
static int prep(struct db *db, enum q q, sqlite3_stmt **out)
{
    if (!db->stmt[q]) {
        if (sqlite3_prepare_v3(db->h, q_sql[q], -1, SQLITE_PREPARE_PERSISTENT, &db->stmt[q], NULL) !=
            SQLITE_OK)
            return dberr(db, "preparing a query");
    } else {
        sqlite3_reset(db->stmt[q]);
        sqlite3_clear_bindings(db->stmt[q]);
    }
    *out = db->stmt[q];
    return 0;
}

/* Runs a statement that returns no rows, then resets it. */
static int step_done(struct db *db, sqlite3_stmt *st, const char *what)
{
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc != SQLITE_DONE)
        return dberr(db, what);
    return 0;
}

static int exec(struct db *db, const char *sql, const char *what)
{
    if (sqlite3_exec(db->h, sql, NULL, NULL, NULL) != SQLITE_OK)
        return dberr(db, what);
    return 0;
}

/* Reads one integer from a single-value query. */
static int query_int(struct db *db, const char *sql, int64_t *v)
{
    sqlite3_stmt *st = NULL;
    int rc = 0;
    if (sqlite3_prepare_v2(db->h, sql, -1, &st, NULL) != SQLITE_OK)
        return dberr(db, "reading the schema");
    int s = sqlite3_step(st);
    if (s == SQLITE_ROW)
        *v = sqlite3_column_int64(st, 0);
    else
        rc = dberr(db, "reading the schema");
    sqlite3_finalize(st);
    return rc;
}

static const char *text_or_empty(const char *s) { return s ? s : ""; }

/* ---- opening ---- */

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
    if (!uri)
        return sl_err(SL_ENOMEM, "out of memory");
    sqlite3 *h = NULL;
    sqlite3_stmt *st = NULL;
    int rc = 0;
    if (sqlite3_open_v2(uri, &h, SQLITE_OPEN_READONLY | SQLITE_OPEN_URI, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(h, "SELECT count(*) FROM sqlite_schema", -1, &st, NULL) != SQLITE_OK ||
        sqlite3_step(st) != SQLITE_ROW) {
        rc = sl_err(SL_ECORRUPT, "%s: not a seqlite database (SQLite cannot read it: %s)", path,
                    h ? sqlite3_errmsg(h) : "out of memory");
        goto done;
    }
    *n = sqlite3_column_int64(st, 0);
done:
    sqlite3_finalize(st);
    sqlite3_close(h);
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
                      "schema objects and no seqlite application_id)",
                      path, (long long)n_schema);
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
    int rc = query_int(db, "PRAGMA application_id", &a);
    if (!rc)
        rc = query_int(db, "PRAGMA user_version", version);
    if (!rc)
        rc = query_int(db, "SELECT count(*) FROM sqlite_schema", n_schema);
    *app_id = (uint32_t)a;
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
            rc = exec(db, migrations[version], "creating the schema");
            if (!rc)
                rc = exec(db, pragmas, "setting the schema version");
        }
        if (rc) {
            db_rollback(db);
            return rc;
        }
        if ((rc = db_commit(db)))
            return rc;
    }
}

/* Sets the journal mode; returns 1 when it took effect. Best effort: another connection keeps the
 * database in WAL mode (the busy timeout is dropped meanwhile, so nothing waits for it). */
static int set_journal_mode(struct db *db, const char *mode)
{
    char sql[64];
    sqlite3_stmt *st = NULL;
    int ok = 0;
    snprintf(sql, sizeof sql, "PRAGMA journal_mode = %s", mode);
    sqlite3_busy_timeout(db->h, 0);
    if (sqlite3_prepare_v2(db->h, sql, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW) {
        const char *now = (const char *)sqlite3_column_text(st, 0);
        ok = now && sqlite3_stricmp(now, mode) == 0;
    }
    sqlite3_finalize(st);
    sqlite3_busy_timeout(db->h, 10000);
    return ok;
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
    struct db *db = calloc(1, sizeof *db);
    if (!db)
        return sl_err(SL_ENOMEM, "out of memory");
    sbuf_init(&db->tmp);
    db->path = strdup(path);
    if (!db->path) {
        free(db);
        return sl_err(SL_ENOMEM, "out of memory");
    }
    int oflags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | ((flags & DB_CREATE) ? SQLITE_OPEN_CREATE : 0);
    if (sqlite3_open_v2(path, &db->h, oflags, NULL) != SQLITE_OK) {
        rc = db->h ? dberr(db, "opening") : sl_err(SL_ENOMEM, "out of memory");
        goto fail;
    }
    sqlite3_extended_result_codes(db->h, 1);
    sqlite3_busy_timeout(db->h, 10000);
    /* The first migration runs in rollback-journal mode, so the application id reaches the main file
     * before WAL is switched on: a later precheck always sees it in the header. */
    if ((rc = migrate(db)))
        goto fail;
    /* Best effort: a database that another connection holds in rollback mode (a bulk import in
     * progress) stays so for now; everything works in either mode. */
    set_journal_mode(db, "WAL");
    rc = exec(db, "PRAGMA foreign_keys = ON; PRAGMA synchronous = NORMAL;", "setting up the connection");
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
    for (int i = 0; i < Q_COUNT; i++)
        sqlite3_finalize(db->stmt[i]);
    sqlite3_close(db->h);
    sbuf_free(&db->tmp);
    free(db->path);
    free(db);
}

const char *db_path(const struct db *db) { return db->path; }

int db_begin(struct db *db) { return exec(db, "BEGIN IMMEDIATE", "starting a transaction"); }

int db_commit(struct db *db) { return exec(db, "COMMIT", "committing"); }

int db_rollback(struct db *db)
{
    if (sqlite3_get_autocommit(db->h))
        return 0; /* nothing open (SQLite may have rolled back already) */
    return exec(db, "ROLLBACK", "rolling back");
}

int db_bulk_mode(struct db *db, int on)
{
    if (!sqlite3_get_autocommit(db->h))
        return sl_err(SL_EINVAL, "%s: db_bulk_mode inside a transaction", db->path);
    /* The bulk loader only inserts pairs of the corpus row it created in the same transaction, so
     * the foreign key check of every pair (a tenth of the import time) proves nothing. */
    int rc = exec(db,
                  on ? "PRAGMA foreign_keys = OFF; PRAGMA cache_size = -65536"
                     : "PRAGMA foreign_keys = ON; PRAGMA cache_size = -2000",
                  "setting up a bulk load");
    if (rc)
        return rc;
    /* In WAL mode every new page is written twice (to the WAL, then by the checkpoint); a rollback
     * journal writes appended pages once and journals only the few pages that existed: the import
     * takes half the time, and stays atomic and durable (synchronous=NORMAL). When another
     * connection has the database open the switch is skipped and the load runs in WAL mode. */
    if (on)
        set_journal_mode(db, "DELETE");
    else
        set_journal_mode(db, "WAL");
    return 0;
}

/* ---- corpus and pair ---- */

int db_corpus_create(struct db *db, const char *name, const char *split, const char *src_lang,
                     const char *tgt_lang, const char *src_path, const char *tgt_path, int64_t *id)
{
    sqlite3_stmt *st = NULL;
    int rc = prep(db, Q_CORPUS_CREATE, &st);
    if (rc)
        return rc;
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, split, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, src_lang, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, tgt_lang, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 5, src_path, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 6, tgt_path, -1, SQLITE_STATIC);
    int s = sqlite3_step(st);
    sqlite3_reset(st);
    if (s == SQLITE_CONSTRAINT_UNIQUE)
        return sl_err(SL_EEXIST, "%s: a corpus named '%s' exists already", db->path, name);
    if (s == SQLITE_CONSTRAINT_CHECK)
        return sl_err(SL_EINVAL, "%s: bad split '%s' (train, valid or test)", db->path, split);
    if (s != SQLITE_DONE)
        return dberr(db, "creating a corpus");
    *id = sqlite3_last_insert_rowid(db->h);
    db->ins_corpus = *id;
    db->ins_first = db->ins_last = db->ins_n = 0;
    return 0;
}

int db_corpus_finish(struct db *db, int64_t id, int64_t n_pairs, int64_t n_skipped)
{
    sqlite3_stmt *st = NULL;
    int rc = prep(db, Q_CORPUS_FINISH, &st);
    if (rc)
        return rc;
    sqlite3_bind_int64(st, 1, id);
    sqlite3_bind_int64(st, 2, n_pairs);
    sqlite3_bind_int64(st, 3, n_skipped);
    /* the id range is what db_pairs_foreach reads: it must hold exactly this corpus's pairs */
    if (n_pairs > 0) {
        if (db->ins_corpus != id || db->ins_n != n_pairs || db->ins_last - db->ins_first + 1 != n_pairs)
            return sl_err(SL_EINVAL,
                          "%s: corpus %lld: its %lld pairs were not inserted as one run since "
                          "db_corpus_create",
                          db->path, (long long)id, (long long)n_pairs);
        sqlite3_bind_int64(st, 4, db->ins_first);
        sqlite3_bind_int64(st, 5, db->ins_last);
    }
    if ((rc = step_done(db, st, "recording the corpus counts")))
        return rc;
    if (sqlite3_changes(db->h) != 1)
        return sl_err(SL_ENOTFOUND, "%s: no corpus with id %lld", db->path, (long long)id);
    return 0;
}

static void corpus_from_row(sqlite3_stmt *st, struct db_corpus *c)
{
    c->id = sqlite3_column_int64(st, 0);
    c->name = (const char *)sqlite3_column_text(st, 1);
    c->split = (const char *)sqlite3_column_text(st, 2);
    c->src_lang = (const char *)sqlite3_column_text(st, 3);
    c->tgt_lang = (const char *)sqlite3_column_text(st, 4);
    c->src_path = (const char *)sqlite3_column_text(st, 5);
    c->tgt_path = (const char *)sqlite3_column_text(st, 6);
    c->created_at = (const char *)sqlite3_column_text(st, 7);
    c->n_pairs = sqlite3_column_int64(st, 8);
    c->n_skipped = sqlite3_column_int64(st, 9);
    c->first_pair_id = sqlite3_column_int64(st, 10);
    c->last_pair_id = sqlite3_column_int64(st, 11);
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

static char *dup_or_null(const char *s, int *oom)
{
    char *d = strdup(text_or_empty(s));
    if (!d)
        *oom = 1;
    return d;
}

int db_corpus_get(struct db *db, const char *name, struct db_corpus *out)
{
    memset(out, 0, sizeof *out);
    sqlite3_stmt *st = NULL;
    int rc = prep(db, Q_CORPUS_GET, &st);
    if (rc)
        return rc;
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    int s = sqlite3_step(st);
    if (s == SQLITE_DONE) {
        sqlite3_reset(st);
        return sl_err(SL_ENOTFOUND, "%s: no corpus named '%s'", db->path, name);
    }
    if (s != SQLITE_ROW) {
        rc = dberr(db, "reading a corpus");
        sqlite3_reset(st);
        return rc;
    }
    struct db_corpus c;
    corpus_from_row(st, &c);
    int oom = 0;
    *out = c;
    out->name = dup_or_null(c.name, &oom);
    out->split = dup_or_null(c.split, &oom);
    out->src_lang = dup_or_null(c.src_lang, &oom);
    out->tgt_lang = dup_or_null(c.tgt_lang, &oom);
    out->src_path = dup_or_null(c.src_path, &oom);
    out->tgt_path = dup_or_null(c.tgt_path, &oom);
    out->created_at = dup_or_null(c.created_at, &oom);
    sqlite3_reset(st);
    if (oom) {
        db_corpus_clear(out);
        return sl_err(SL_ENOMEM, "out of memory");
    }
    return 0;
}

int db_corpus_foreach(struct db *db, int (*cb)(void *ctx, const struct db_corpus *c), void *ctx)
{
    sqlite3_stmt *st = NULL;
    int rc = 0, s;
    if (sqlite3_prepare_v2(db->h, "SELECT " CORPUS_COLS " FROM corpus ORDER BY id", -1, &st, NULL) !=
        SQLITE_OK)
        return dberr(db, "listing corpora");
    while ((s = sqlite3_step(st)) == SQLITE_ROW) {
        struct db_corpus c;
        corpus_from_row(st, &c);
        if ((rc = cb(ctx, &c)))
            goto done;
    }
    if (s != SQLITE_DONE)
        rc = dberr(db, "listing corpora");
done:
    sqlite3_finalize(st);
    return rc;
}

int db_pair_insert(struct db *db, int64_t corpus_id, int64_t line, const char *src, size_t srclen,
                   const char *tgt, size_t tgtlen)
{
    sqlite3_stmt *st = db->stmt[Q_PAIR_INSERT];
    if (!st) {
        int rc = prep(db, Q_PAIR_INSERT, &st);
        if (rc)
            return rc;
    }
    /* SQLITE_STATIC: the texts are only read during sqlite3_step below; every parameter is rebound
     * each time, so no clear_bindings. */
    sqlite3_bind_int64(st, 1, corpus_id);
    sqlite3_bind_int64(st, 2, line);
    sqlite3_bind_text64(st, 3, srclen ? src : "", srclen, SQLITE_STATIC, SQLITE_UTF8);
    sqlite3_bind_text64(st, 4, tgtlen ? tgt : "", tgtlen, SQLITE_STATIC, SQLITE_UTF8);
    int s = sqlite3_step(st);
    sqlite3_reset(st);
    if (s != SQLITE_DONE)
        return dberr(db, "storing a pair");
    int64_t id = sqlite3_last_insert_rowid(db->h);
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
    sqlite3_stmt *st = NULL;
    int rc = 0, s;
    if (sqlite3_prepare_v2(db->h,
                           /* CROSS JOIN fixes the loop order: corpora, then each one's id range */
                           "SELECT pair.id, pair.src, pair.tgt, pair.corpus_id = corpus.id, corpus.name"
                           " FROM corpus CROSS JOIN pair WHERE corpus.split = ?1"
                           " AND pair.id >= corpus.first_pair_id AND pair.id <= corpus.last_pair_id"
                           " ORDER BY corpus.id, pair.id",
                           -1, &st, NULL) != SQLITE_OK)
        return dberr(db, "reading pairs");
    sqlite3_bind_text(st, 1, split, -1, SQLITE_STATIC);
    while ((s = sqlite3_step(st)) == SQLITE_ROW) {
        if (!sqlite3_column_int(st, 3)) {
            rc = sl_err(SL_ECORRUPT, "%s: corpus '%s': pair %lld is in its id range but not its own",
                        db->path, (const char *)sqlite3_column_text(st, 4),
                        (long long)sqlite3_column_int64(st, 0));
            goto done;
        }
        const char *src = (const char *)sqlite3_column_text(st, 1);
        size_t srclen = (size_t)sqlite3_column_bytes(st, 1);
        const char *tgt = (const char *)sqlite3_column_text(st, 2);
        size_t tgtlen = (size_t)sqlite3_column_bytes(st, 2);
        if ((rc = cb(ctx, sqlite3_column_int64(st, 0), text_or_empty(src), srclen, text_or_empty(tgt),
                     tgtlen)))
            goto done;
    }
    if (s != SQLITE_DONE)
        rc = dberr(db, "reading pairs");
done:
    sqlite3_finalize(st);
    return rc;
}

int db_pair_set_tokens(struct db *db, int64_t pair_id, int64_t n_src, int64_t n_tgt)
{
    sqlite3_stmt *st = NULL;
    int rc = prep(db, Q_PAIR_SET_TOKENS, &st);
    if (rc)
        return rc;
    sqlite3_bind_int64(st, 1, pair_id);
    sqlite3_bind_int64(st, 2, n_src);
    sqlite3_bind_int64(st, 3, n_tgt);
    if ((rc = step_done(db, st, "recording token counts")))
        return rc;
    if (sqlite3_changes(db->h) != 1)
        return sl_err(SL_ENOTFOUND, "%s: no pair with id %lld", db->path, (long long)pair_id);
    return 0;
}

int db_pair_get(struct db *db, int64_t pair_id, int64_t *corpus_id, int64_t *line)
{
    sqlite3_stmt *st = NULL;
    int rc = prep(db, Q_PAIR_GET, &st);
    if (rc)
        return rc;
    sqlite3_bind_int64(st, 1, pair_id);
    int s = sqlite3_step(st);
    if (s == SQLITE_ROW) {
        *corpus_id = sqlite3_column_int64(st, 0);
        *line = sqlite3_column_int64(st, 1);
    } else if (s == SQLITE_DONE) {
        rc = sl_err(SL_ENOTFOUND, "%s: no pair with id %lld", db->path, (long long)pair_id);
    } else {
        rc = dberr(db, "reading a pair");
    }
    sqlite3_reset(st);
    return rc;
}

int db_split_count(struct db *db, const char *split, int64_t *n)
{
    sqlite3_stmt *st = NULL;
    int rc = prep(db, Q_SPLIT_COUNT, &st);
    if (rc)
        return rc;
    sqlite3_bind_text(st, 1, split, -1, SQLITE_STATIC);
    if (sqlite3_step(st) == SQLITE_ROW)
        *n = (int64_t)sqlite3_column_double(st, 0);
    else
        rc = dberr(db, "counting pairs");
    sqlite3_reset(st);
    return rc;
}

/* ---- vocab, token, merge ---- */

int db_vocab_insert(struct db *db, const char *kind, const char *side, const char *normalization,
                    const char *settings_json, int64_t size, int64_t *id)
{
    sqlite3_stmt *st = NULL;
    int rc = prep(db, Q_VOCAB_INSERT, &st);
    if (rc)
        return rc;
    sqlite3_bind_text(st, 1, kind, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, side, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, normalization, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, settings_json ? settings_json : "{}", -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 5, size);
    int s = sqlite3_step(st);
    sqlite3_reset(st);
    if (s == SQLITE_CONSTRAINT_CHECK || s == SQLITE_CONSTRAINT_NOTNULL)
        return sl_err(SL_EINVAL,
                      "%s: bad vocabulary (side '%s' must be joint, src or tgt; size %lld; settings must "
                      "be JSON)",
                      db->path, side ? side : "(null)", (long long)size);
    if (s != SQLITE_DONE)
        return dberr(db, "storing a vocabulary");
    *id = sqlite3_last_insert_rowid(db->h);
    return 0;
}

/* Display text for token bytes: valid UTF-8 sequences as they are, other bytes (and NUL) as <0xHH>. */
int db_token_display(const char *bytes, size_t len, struct sbuf *b)
{
    sbuf_reset(b);
    int rc = sbuf_reserve(b, len);
    size_t i = 0;
    while (!rc && i < len) {
        size_t k = utf8_seqlen((const unsigned char *)bytes + i, len - i);
        if (k && bytes[i] != '\0') {
            rc = sbuf_append(b, bytes + i, k);
            i += k;
        } else {
            rc = sbuf_printf(b, "<0x%02X>", (unsigned char)bytes[i]);
            i++;
        }
    }
    return rc;
}

int db_token_insert(struct db *db, int64_t vocab_id, int64_t token_id, const char *bytes, size_t len,
                    int64_t count, const char *kind)
{
    sqlite3_stmt *st = NULL;
    int rc = prep(db, Q_TOKEN_INSERT, &st);
    if (rc)
        return rc;
    if ((rc = db_token_display(bytes, len, &db->tmp)))
        return rc;
    sqlite3_bind_int64(st, 1, vocab_id);
    sqlite3_bind_int64(st, 2, token_id);
    sqlite3_bind_text64(st, 3, db->tmp.data, db->tmp.len, SQLITE_STATIC, SQLITE_UTF8);
    /* a zero-length blob must still be a blob, not NULL */
    sqlite3_bind_blob64(st, 4, len ? bytes : "", len, SQLITE_STATIC);
    sqlite3_bind_int64(st, 5, count);
    sqlite3_bind_text(st, 6, kind, -1, SQLITE_STATIC);
    int s = sqlite3_step(st);
    sqlite3_reset(st);
    if (s == SQLITE_CONSTRAINT_PRIMARYKEY)
        return sl_err(SL_EEXIST, "%s: vocabulary %lld has a token %lld already", db->path,
                      (long long)vocab_id, (long long)token_id);
    if (s == SQLITE_CONSTRAINT_FOREIGNKEY)
        return sl_err(SL_ENOTFOUND, "%s: no vocabulary with id %lld", db->path, (long long)vocab_id);
    if (s == SQLITE_CONSTRAINT_CHECK || s == SQLITE_CONSTRAINT_NOTNULL)
        return sl_err(SL_EINVAL, "%s: bad token %lld (kind '%s' must be normal, special or byte)",
                      db->path, (long long)token_id, kind ? kind : "(null)");
    if (s != SQLITE_DONE)
        return dberr(db, "storing a token");
    return 0;
}

int db_merge_insert(struct db *db, int64_t vocab_id, int64_t rank, int64_t left, int64_t right,
                    int64_t result)
{
    sqlite3_stmt *st = NULL;
    int rc = prep(db, Q_MERGE_INSERT, &st);
    if (rc)
        return rc;
    sqlite3_bind_int64(st, 1, vocab_id);
    sqlite3_bind_int64(st, 2, rank);
    sqlite3_bind_int64(st, 3, left);
    sqlite3_bind_int64(st, 4, right);
    sqlite3_bind_int64(st, 5, result);
    int s = sqlite3_step(st);
    sqlite3_reset(st);
    if (s == SQLITE_CONSTRAINT_PRIMARYKEY)
        return sl_err(SL_EEXIST, "%s: vocabulary %lld has a merge of rank %lld already", db->path,
                      (long long)vocab_id, (long long)rank);
    if (s == SQLITE_CONSTRAINT_FOREIGNKEY)
        return sl_err(SL_ENOTFOUND, "%s: no vocabulary with id %lld", db->path, (long long)vocab_id);
    if (s != SQLITE_DONE)
        return dberr(db, "storing a merge");
    return 0;
}

static void copy_text(char *dst, size_t cap, const unsigned char *src)
{
    snprintf(dst, cap, "%s", src ? (const char *)src : "");
}

int db_vocab_get(struct db *db, int64_t vocab_id, struct db_vocab *out)
{
    memset(out, 0, sizeof *out);
    sqlite3_stmt *st = NULL;
    int rc = prep(db, Q_VOCAB_GET, &st);
    if (rc)
        return rc;
    sqlite3_bind_int64(st, 1, vocab_id);
    int s = sqlite3_step(st);
    if (s == SQLITE_ROW) {
        out->id = sqlite3_column_int64(st, 0);
        copy_text(out->kind, sizeof out->kind, sqlite3_column_text(st, 1));
        copy_text(out->side, sizeof out->side, sqlite3_column_text(st, 2));
        copy_text(out->normalization, sizeof out->normalization, sqlite3_column_text(st, 3));
        out->settings = strdup(text_or_empty((const char *)sqlite3_column_text(st, 4)));
        out->size = sqlite3_column_int64(st, 5);
        if (!out->settings)
            rc = sl_err(SL_ENOMEM, "out of memory");
    } else if (s == SQLITE_DONE) {
        rc = sl_err(SL_ENOTFOUND, "%s: no vocabulary with id %lld", db->path, (long long)vocab_id);
    } else {
        rc = dberr(db, "reading a vocabulary");
    }
    sqlite3_reset(st);
    return rc;
}

void db_vocab_clear(struct db_vocab *v)
{
    if (!v)
        return;
    free(v->settings);
    memset(v, 0, sizeof *v);
}

int db_vocab_latest(struct db *db, const char *side, int64_t *id)
{
    sqlite3_stmt *st = NULL;
    int rc = prep(db, Q_VOCAB_LATEST, &st);
    if (rc)
        return rc;
    if (side)
        sqlite3_bind_text(st, 1, side, -1, SQLITE_STATIC);
    int s = sqlite3_step(st);
    if (s == SQLITE_ROW)
        *id = sqlite3_column_int64(st, 0);
    else if (s == SQLITE_DONE)
        rc = sl_err(SL_ENOTFOUND, "%s: no vocabulary%s%s: run seqlite vocab %s first", db->path,
                    side ? " for side " : "", side ? side : "", db->path);
    else
        rc = dberr(db, "finding the vocabulary");
    sqlite3_reset(st);
    return rc;
}

int db_tokens_foreach(struct db *db, int64_t vocab_id,
                      int (*cb)(void *ctx, int64_t token_id, const char *bytes, size_t len,
                                int64_t count, const char *kind),
                      void *ctx)
{
    sqlite3_stmt *st = NULL;
    int rc = 0, s;
    if (sqlite3_prepare_v2(db->h, "SELECT id, bytes, count, kind FROM token WHERE vocab_id = ?1 ORDER BY id",
                           -1, &st, NULL) != SQLITE_OK)
        return dberr(db, "reading tokens");
    sqlite3_bind_int64(st, 1, vocab_id);
    while ((s = sqlite3_step(st)) == SQLITE_ROW) {
        const char *bytes = sqlite3_column_blob(st, 1);
        size_t len = (size_t)sqlite3_column_bytes(st, 1);
        const char *kind = (const char *)sqlite3_column_text(st, 3);
        if ((rc = cb(ctx, sqlite3_column_int64(st, 0), bytes ? bytes : "", len,
                     sqlite3_column_int64(st, 2), text_or_empty(kind))))
            goto done;
    }
    if (s != SQLITE_DONE)
        rc = dberr(db, "reading tokens");
done:
    sqlite3_finalize(st);
    return rc;
}

int db_merges_foreach(struct db *db, int64_t vocab_id,
                      int (*cb)(void *ctx, int64_t rank, int64_t left, int64_t right, int64_t result),
                      void *ctx)
{
    sqlite3_stmt *st = NULL;
    int rc = 0, s;
    if (sqlite3_prepare_v2(db->h,
                           "SELECT rank, left_id, right_id, result_id FROM merge WHERE vocab_id = ?1"
                           " ORDER BY rank",
                           -1, &st, NULL) != SQLITE_OK)
        return dberr(db, "reading merges");
    sqlite3_bind_int64(st, 1, vocab_id);
    while ((s = sqlite3_step(st)) == SQLITE_ROW) {
        if ((rc = cb(ctx, sqlite3_column_int64(st, 0), sqlite3_column_int64(st, 1),
                     sqlite3_column_int64(st, 2), sqlite3_column_int64(st, 3))))
            goto done;
    }
    if (s != SQLITE_DONE)
        rc = dberr(db, "reading merges");
done:
    sqlite3_finalize(st);
    return rc;
}

/* ---- run, train_log, metric, translation ---- */

/* A one-off statement (finalised by the caller). */
static int stmt_new(struct db *db, const char *sql, const char *what, sqlite3_stmt **st)
{
    *st = NULL;
    if (sqlite3_prepare_v2(db->h, sql, -1, st, NULL) != SQLITE_OK)
        return dberr(db, what);
    return 0;
}

static void bind_id_or_null(sqlite3_stmt *st, int i, int64_t v)
{
    if (v > 0)
        sqlite3_bind_int64(st, i, v);
    else
        sqlite3_bind_null(st, i);
}

static void bind_real_or_null(sqlite3_stmt *st, int i, double v)
{
    if (v == v)
        sqlite3_bind_double(st, i, v);
    else
        sqlite3_bind_null(st, i);
}

static double column_real_or_nan(sqlite3_stmt *st, int i)
{
    return sqlite3_column_type(st, i) == SQLITE_NULL ? (double)NAN : sqlite3_column_double(st, i);
}

int db_run_create(struct db *db, const struct db_run *r, int64_t *id)
{
    sqlite3_stmt *st = NULL;
    int rc = stmt_new(db,
                      "INSERT INTO run (name, src_vocab_id, tgt_vocab_id, seed, layers, emb, hidden, dropout,"
                      " batch, batch_tokens, lr, clip, epochs, steps, max_len, reverse_source, threads,"
                      " valid_every, save_every, keep, config)"
                      " VALUES (coalesce(?1, 'run-' || hex(randomblob(6))), ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9,"
                      " ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21)",
                      "creating a run", &st);
    if (rc)
        return rc;
    int auto_name = !r->name[0];
    if (!auto_name)
        sqlite3_bind_text(st, 1, r->name, -1, SQLITE_STATIC);
    bind_id_or_null(st, 2, r->src_vocab_id);
    bind_id_or_null(st, 3, r->tgt_vocab_id);
    sqlite3_bind_int64(st, 4, r->seed);
    sqlite3_bind_int64(st, 5, r->layers);
    sqlite3_bind_int64(st, 6, r->emb);
    sqlite3_bind_int64(st, 7, r->hidden);
    sqlite3_bind_double(st, 8, r->dropout);
    sqlite3_bind_int64(st, 9, r->batch);
    bind_id_or_null(st, 10, r->batch_tokens);
    sqlite3_bind_double(st, 11, r->lr);
    sqlite3_bind_double(st, 12, r->clip);
    sqlite3_bind_int64(st, 13, r->epochs);
    bind_id_or_null(st, 14, r->steps);
    sqlite3_bind_int64(st, 15, r->max_len);
    sqlite3_bind_int(st, 16, r->reverse_source ? 1 : 0);
    sqlite3_bind_int64(st, 17, r->threads);
    sqlite3_bind_int64(st, 18, r->valid_every);
    sqlite3_bind_int64(st, 19, r->save_every);
    sqlite3_bind_int64(st, 20, r->keep);
    sqlite3_bind_text(st, 21, r->config ? r->config : "{}", -1, SQLITE_STATIC);
    int s = sqlite3_step(st);
    sqlite3_finalize(st);
    if (s == SQLITE_CONSTRAINT_UNIQUE)
        return sl_err(SL_EEXIST, "%s: a run named '%s' exists already", db->path, r->name);
    if (s == SQLITE_CONSTRAINT_FOREIGNKEY)
        return sl_err(SL_ENOTFOUND, "%s: the run's vocabulary does not exist", db->path);
    if (s != SQLITE_DONE)
        return dberr(db, "creating a run");
    *id = sqlite3_last_insert_rowid(db->h);
    if (auto_name) {
        char sql[96];
        snprintf(sql, sizeof sql, "UPDATE run SET name = 'run-%lld' WHERE id = %lld", (long long)*id,
                 (long long)*id);
        if (sqlite3_exec(db->h, sql, NULL, NULL, NULL) != SQLITE_OK)
            return dberr(db, "naming a run");
    }
    return 0;
}

int db_run_get(struct db *db, int64_t id, struct db_run *out)
{
    memset(out, 0, sizeof *out);
    sqlite3_stmt *st = NULL;
    int rc = stmt_new(db,
                      "SELECT id, name, status, src_vocab_id, tgt_vocab_id, seed, layers, emb, hidden, dropout,"
                      " batch, batch_tokens, lr, clip, epochs, steps, max_len, reverse_source, threads,"
                      " valid_every, save_every, keep, config, steps_done, started_at, ended_at"
                      " FROM run WHERE id = ?1",
                      "reading a run", &st);
    if (rc)
        return rc;
    sqlite3_bind_int64(st, 1, id);
    int s = sqlite3_step(st);
    if (s == SQLITE_ROW) {
        out->id = sqlite3_column_int64(st, 0);
        copy_text(out->name, sizeof out->name, sqlite3_column_text(st, 1));
        copy_text(out->status, sizeof out->status, sqlite3_column_text(st, 2));
        out->src_vocab_id = sqlite3_column_int64(st, 3);
        out->tgt_vocab_id = sqlite3_column_int64(st, 4);
        out->seed = sqlite3_column_int64(st, 5);
        out->layers = sqlite3_column_int64(st, 6);
        out->emb = sqlite3_column_int64(st, 7);
        out->hidden = sqlite3_column_int64(st, 8);
        out->dropout = sqlite3_column_double(st, 9);
        out->batch = sqlite3_column_int64(st, 10);
        out->batch_tokens = sqlite3_column_int64(st, 11);
        out->lr = sqlite3_column_double(st, 12);
        out->clip = sqlite3_column_double(st, 13);
        out->epochs = sqlite3_column_int64(st, 14);
        out->steps = sqlite3_column_int64(st, 15);
        out->max_len = sqlite3_column_int64(st, 16);
        out->reverse_source = sqlite3_column_int(st, 17);
        out->threads = sqlite3_column_int64(st, 18);
        out->valid_every = sqlite3_column_int64(st, 19);
        out->save_every = sqlite3_column_int64(st, 20);
        out->keep = sqlite3_column_int64(st, 21);
        out->config = strdup(text_or_empty((const char *)sqlite3_column_text(st, 22)));
        out->steps_done = sqlite3_column_int64(st, 23);
        copy_text(out->started_at, sizeof out->started_at, sqlite3_column_text(st, 24));
        copy_text(out->ended_at, sizeof out->ended_at, sqlite3_column_text(st, 25));
        if (!out->config)
            rc = sl_err(SL_ENOMEM, "out of memory");
    } else if (s == SQLITE_DONE) {
        rc = sl_err(SL_ENOTFOUND, "%s: no run with id %lld", db->path, (long long)id);
    } else {
        rc = dberr(db, "reading a run");
    }
    sqlite3_finalize(st);
    return rc;
}

void db_run_clear(struct db_run *r)
{
    if (!r)
        return;
    free(r->config);
    memset(r, 0, sizeof *r);
}

/* One integer from a query with an optional integer parameter ?1; SL_ENOTFOUND (message missing)
 * when it returns no row or NULL. */
static int one_int(struct db *db, const char *sql, int64_t p1, int64_t *v, const char *missing)
{
    sqlite3_stmt *st = NULL;
    int rc = stmt_new(db, sql, "querying", &st);
    if (rc)
        return rc;
    if (sqlite3_bind_parameter_count(st) >= 1)
        sqlite3_bind_int64(st, 1, p1);
    int s = sqlite3_step(st);
    if (s == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL)
        *v = sqlite3_column_int64(st, 0);
    else if (s == SQLITE_ROW || s == SQLITE_DONE)
        rc = sl_err(SL_ENOTFOUND, "%s: %s", db->path, missing);
    else
        rc = dberr(db, "querying");
    sqlite3_finalize(st);
    return rc;
}

int db_run_latest(struct db *db, int64_t *id)
{
    return one_int(db, "SELECT max(id) FROM run", 0, id, "no training run (run seqlite train first)");
}

int db_run_update(struct db *db, int64_t id, const char *status, int64_t steps_done, int64_t threads,
                  const char *message)
{
    sqlite3_stmt *st = NULL;
    int rc = stmt_new(db,
                      "UPDATE run SET status = ?2, steps_done = ?3, message = coalesce(?4, message),"
                      " threads = CASE WHEN ?5 > 0 THEN ?5 ELSE threads END,"
                      " ended_at = CASE WHEN ?2 = 'running' THEN NULL ELSE " NOW " END WHERE id = ?1",
                      "updating a run", &st);
    if (rc)
        return rc;
    sqlite3_bind_int64(st, 1, id);
    sqlite3_bind_text(st, 2, status, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, steps_done);
    if (message)
        sqlite3_bind_text(st, 4, message, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 5, threads);
    int s = sqlite3_step(st);
    int changed = sqlite3_changes(db->h);
    sqlite3_finalize(st);
    if (s == SQLITE_CONSTRAINT_CHECK)
        return sl_err(SL_EINVAL, "%s: bad run status '%s'", db->path, status);
    if (s != SQLITE_DONE)
        return dberr(db, "updating a run");
    if (changed != 1)
        return sl_err(SL_ENOTFOUND, "%s: no run with id %lld", db->path, (long long)id);
    return 0;
}

int db_train_log_insert(struct db *db, int64_t run_id, const struct db_train_log *l)
{
    sqlite3_stmt *st = NULL;
    int rc = stmt_new(db,
                      "INSERT OR REPLACE INTO train_log (run_id, step, epoch, loss, ppl, lr, grad_norm,"
                      " src_tok_s, tgt_tok_s, elapsed_s) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                      "storing a log line", &st);
    if (rc)
        return rc;
    sqlite3_bind_int64(st, 1, run_id);
    sqlite3_bind_int64(st, 2, l->step);
    sqlite3_bind_int64(st, 3, l->epoch);
    bind_real_or_null(st, 4, l->loss);
    bind_real_or_null(st, 5, l->ppl);
    bind_real_or_null(st, 6, l->lr);
    bind_real_or_null(st, 7, l->grad_norm);
    bind_real_or_null(st, 8, l->src_tok_s);
    bind_real_or_null(st, 9, l->tgt_tok_s);
    bind_real_or_null(st, 10, l->elapsed_s);
    int s = sqlite3_step(st);
    sqlite3_finalize(st);
    if (s == SQLITE_CONSTRAINT_FOREIGNKEY)
        return sl_err(SL_ENOTFOUND, "%s: no run with id %lld", db->path, (long long)run_id);
    if (s != SQLITE_DONE)
        return dberr(db, "storing a log line");
    return 0;
}

int db_train_log_foreach(struct db *db, int64_t run_id, int (*cb)(void *ctx, const struct db_train_log *l),
                         void *ctx)
{
    sqlite3_stmt *st = NULL;
    int rc = stmt_new(db,
                      "SELECT step, epoch, loss, ppl, lr, grad_norm, src_tok_s, tgt_tok_s, elapsed_s"
                      " FROM train_log WHERE run_id = ?1 ORDER BY step",
                      "reading the training log", &st);
    if (rc)
        return rc;
    sqlite3_bind_int64(st, 1, run_id);
    int s;
    while ((s = sqlite3_step(st)) == SQLITE_ROW) {
        struct db_train_log l = {
            .step = sqlite3_column_int64(st, 0),
            .epoch = sqlite3_column_int64(st, 1),
            .loss = column_real_or_nan(st, 2),
            .ppl = column_real_or_nan(st, 3),
            .lr = column_real_or_nan(st, 4),
            .grad_norm = column_real_or_nan(st, 5),
            .src_tok_s = column_real_or_nan(st, 6),
            .tgt_tok_s = column_real_or_nan(st, 7),
            .elapsed_s = column_real_or_nan(st, 8),
        };
        if ((rc = cb(ctx, &l)))
            goto done;
    }
    if (s != SQLITE_DONE)
        rc = dberr(db, "reading the training log");
done:
    sqlite3_finalize(st);
    return rc;
}

int db_metric_insert(struct db *db, int64_t run_id, int64_t checkpoint_id, int64_t step, const char *split,
                     const char *name, double value, const char *signature)
{
    sqlite3_stmt *st = NULL;
    int rc = stmt_new(db,
                      "INSERT INTO metric (run_id, checkpoint_id, step, split, name, value, signature)"
                      " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                      "storing a metric", &st);
    if (rc)
        return rc;
    bind_id_or_null(st, 1, run_id);
    bind_id_or_null(st, 2, checkpoint_id);
    sqlite3_bind_int64(st, 3, step);
    if (split)
        sqlite3_bind_text(st, 4, split, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 5, name, -1, SQLITE_STATIC);
    bind_real_or_null(st, 6, value);
    if (signature)
        sqlite3_bind_text(st, 7, signature, -1, SQLITE_STATIC);
    int s = sqlite3_step(st);
    sqlite3_finalize(st);
    if (s == SQLITE_CONSTRAINT_FOREIGNKEY)
        return sl_err(SL_ENOTFOUND, "%s: metric: no run %lld or checkpoint %lld", db->path, (long long)run_id,
                      (long long)checkpoint_id);
    if (s != SQLITE_DONE)
        return dberr(db, "storing a metric");
    return 0;
}

int db_metric_latest(struct db *db, int64_t run_id, const char *split, const char *name, double *value,
                     int64_t *step)
{
    sqlite3_stmt *st = NULL;
    int rc = stmt_new(db,
                      "SELECT value, step FROM metric WHERE run_id = ?1 AND split IS ?2 AND name = ?3"
                      " ORDER BY id DESC LIMIT 1",
                      "reading a metric", &st);
    if (rc)
        return rc;
    sqlite3_bind_int64(st, 1, run_id);
    if (split)
        sqlite3_bind_text(st, 2, split, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, name, -1, SQLITE_STATIC);
    int s = sqlite3_step(st);
    if (s == SQLITE_ROW) {
        *value = column_real_or_nan(st, 0);
        if (step)
            *step = sqlite3_column_int64(st, 1);
    } else if (s == SQLITE_DONE) {
        rc = sl_err(SL_ENOTFOUND, "%s: run %lld has no metric '%s'", db->path, (long long)run_id, name);
    } else {
        rc = dberr(db, "reading a metric");
    }
    sqlite3_finalize(st);
    return rc;
}

int db_translation_insert(struct db *db, int64_t checkpoint_id, int64_t corpus_id, int64_t pair_id, int beam,
                          double length_penalty, const char *hypothesis, double score)
{
    sqlite3_stmt *st = NULL;
    int rc = stmt_new(db,
                      "INSERT INTO translation (checkpoint_id, corpus_id, pair_id, beam, length_penalty,"
                      " hypothesis, score) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                      "storing a translation", &st);
    if (rc)
        return rc;
    bind_id_or_null(st, 1, checkpoint_id);
    bind_id_or_null(st, 2, corpus_id);
    bind_id_or_null(st, 3, pair_id);
    sqlite3_bind_int(st, 4, beam);
    sqlite3_bind_double(st, 5, length_penalty);
    sqlite3_bind_text(st, 6, hypothesis, -1, SQLITE_STATIC);
    bind_real_or_null(st, 7, score);
    int s = sqlite3_step(st);
    sqlite3_finalize(st);
    if (s == SQLITE_CONSTRAINT_FOREIGNKEY)
        return sl_err(SL_ENOTFOUND, "%s: translation: no such checkpoint, corpus or pair", db->path);
    if (s != SQLITE_DONE)
        return dberr(db, "storing a translation");
    return 0;
}

/* ---- checkpoint, tensor ---- */

int db_ckpt_insert(struct db *db, const struct db_checkpoint *c, int64_t *id)
{
    sqlite3_stmt *st = NULL;
    int rc = stmt_new(db,
                      "INSERT INTO checkpoint (run_id, step, epoch, src_vocab_id, tgt_vocab_id, valid_ppl,"
                      " valid_bleu, is_best, rng_state, data_pos) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9,"
                      " json_object('epoch', ?10, 'batch', ?11))",
                      "storing a checkpoint", &st);
    if (rc)
        return rc;
    sqlite3_bind_int64(st, 1, c->run_id);
    sqlite3_bind_int64(st, 2, c->step);
    sqlite3_bind_int64(st, 3, c->epoch);
    bind_id_or_null(st, 4, c->src_vocab_id);
    bind_id_or_null(st, 5, c->tgt_vocab_id);
    bind_real_or_null(st, 6, c->valid_ppl);
    bind_real_or_null(st, 7, c->valid_bleu);
    sqlite3_bind_int(st, 8, c->is_best ? 1 : 0);
    if (c->has_rng)
        sqlite3_bind_blob(st, 9, c->rng_state, (int)sizeof c->rng_state, SQLITE_STATIC);
    sqlite3_bind_int64(st, 10, c->pos_epoch);
    sqlite3_bind_int64(st, 11, c->pos_batch);
    int s = sqlite3_step(st);
    sqlite3_finalize(st);
    if (s == SQLITE_CONSTRAINT_FOREIGNKEY)
        return sl_err(SL_ENOTFOUND, "%s: checkpoint: no run %lld or no such vocabulary", db->path,
                      (long long)c->run_id);
    if (s != SQLITE_DONE)
        return dberr(db, "storing a checkpoint");
    *id = sqlite3_last_insert_rowid(db->h);
    return 0;
}

int db_ckpt_get(struct db *db, int64_t id, struct db_checkpoint *out)
{
    memset(out, 0, sizeof *out);
    sqlite3_stmt *st = NULL;
    int rc = stmt_new(db,
                      "SELECT id, run_id, step, epoch, src_vocab_id, tgt_vocab_id, valid_ppl, valid_bleu,"
                      " is_best, rng_state, json_extract(data_pos, '$.epoch'), json_extract(data_pos, '$.batch')"
                      " FROM checkpoint WHERE id = ?1",
                      "reading a checkpoint", &st);
    if (rc)
        return rc;
    sqlite3_bind_int64(st, 1, id);
    int s = sqlite3_step(st);
    if (s == SQLITE_ROW) {
        out->id = sqlite3_column_int64(st, 0);
        out->run_id = sqlite3_column_int64(st, 1);
        out->step = sqlite3_column_int64(st, 2);
        out->epoch = sqlite3_column_int64(st, 3);
        out->src_vocab_id = sqlite3_column_int64(st, 4);
        out->tgt_vocab_id = sqlite3_column_int64(st, 5);
        out->valid_ppl = column_real_or_nan(st, 6);
        out->valid_bleu = column_real_or_nan(st, 7);
        out->is_best = sqlite3_column_int(st, 8);
        if (sqlite3_column_type(st, 9) != SQLITE_NULL) {
            if (sqlite3_column_bytes(st, 9) != (int)sizeof out->rng_state) {
                rc = sl_err(SL_ECORRUPT, "%s: checkpoint %lld: rng_state has %d bytes, not %zu", db->path,
                            (long long)id, sqlite3_column_bytes(st, 9), sizeof out->rng_state);
            } else {
                memcpy(out->rng_state, sqlite3_column_blob(st, 9), sizeof out->rng_state);
                out->has_rng = 1;
            }
        }
        out->pos_epoch = sqlite3_column_int64(st, 10);
        out->pos_batch = sqlite3_column_int64(st, 11);
    } else if (s == SQLITE_DONE) {
        rc = sl_err(SL_ENOTFOUND, "%s: no checkpoint with id %lld", db->path, (long long)id);
    } else {
        rc = dberr(db, "reading a checkpoint");
    }
    sqlite3_finalize(st);
    return rc;
}

int db_ckpt_find(struct db *db, int64_t run_id, const char *which, int64_t *id)
{
    int best = strcmp(which, "best") == 0;
    if (!best && strcmp(which, "last") != 0)
        return sl_err(SL_EINVAL, "checkpoint '%s': expected last, best or an id", which);
    const char *sql = best ? "SELECT max(id) FROM checkpoint WHERE is_best = 1 AND (?1 = 0 OR run_id = ?1)"
                           : "SELECT max(id) FROM checkpoint WHERE ?1 = 0 OR run_id = ?1";
    char missing[160];
    if (run_id)
        snprintf(missing, sizeof missing, "run %lld has no %scheckpoint", (long long)run_id,
                 best ? "best " : "");
    else
        snprintf(missing, sizeof missing, "no %scheckpoint (train a model first: seqlite train %s)",
                 best ? "best " : "", db->path);
    return one_int(db, sql, run_id, id, missing);
}

int db_ckpt_set_best(struct db *db, int64_t id)
{
    sqlite3_stmt *st = NULL;
    int rc = stmt_new(db,
                      "UPDATE checkpoint SET is_best = (id = ?1)"
                      " WHERE run_id = (SELECT run_id FROM checkpoint WHERE id = ?1)",
                      "marking the best checkpoint", &st);
    if (rc)
        return rc;
    sqlite3_bind_int64(st, 1, id);
    int s = sqlite3_step(st);
    sqlite3_finalize(st);
    return s == SQLITE_DONE ? 0 : dberr(db, "marking the best checkpoint");
}

int db_ckpt_best_score(struct db *db, int64_t run_id, int64_t except_id, int by_bleu, double *out)
{
    sqlite3_stmt *st = NULL;
    int rc = stmt_new(db,
                      by_bleu ? "SELECT max(valid_bleu) FROM checkpoint WHERE run_id = ?1 AND id != ?2"
                              : "SELECT min(valid_ppl) FROM checkpoint WHERE run_id = ?1 AND id != ?2",
                      "reading checkpoints", &st);
    if (rc)
        return rc;
    sqlite3_bind_int64(st, 1, run_id);
    sqlite3_bind_int64(st, 2, except_id);
    int s = sqlite3_step(st);
    if (s == SQLITE_ROW)
        *out = column_real_or_nan(st, 0);
    else
        rc = dberr(db, "reading checkpoints");
    sqlite3_finalize(st);
    return rc;
}

static int run_delete(struct db *db, const char *sql, int64_t a, int64_t b, const char *what)
{
    sqlite3_stmt *st = NULL;
    int rc = stmt_new(db, sql, what, &st);
    if (rc)
        return rc;
    sqlite3_bind_int64(st, 1, a);
    sqlite3_bind_int64(st, 2, b);
    int s = sqlite3_step(st);
    sqlite3_finalize(st);
    return s == SQLITE_DONE ? 0 : dberr(db, what);
}

int db_ckpt_prune(struct db *db, int64_t run_id, int64_t keep)
{
    return run_delete(db,
                      "DELETE FROM checkpoint WHERE run_id = ?1 AND is_best = 0 AND id NOT IN"
                      " (SELECT id FROM checkpoint WHERE run_id = ?1 ORDER BY step DESC, id DESC LIMIT ?2)",
                      run_id, keep, "pruning checkpoints");
}

int db_run_rewind(struct db *db, int64_t run_id, int64_t step)
{
    int rc = db_begin(db);
    if (rc)
        return rc;
    if ((rc = run_delete(db, "DELETE FROM checkpoint WHERE run_id = ?1 AND step > ?2", run_id, step,
                         "deleting checkpoints")) ||
        (rc = run_delete(db, "DELETE FROM train_log WHERE run_id = ?1 AND step > ?2", run_id, step,
                         "deleting training log rows")) ||
        (rc = run_delete(db,
                         "DELETE FROM metric WHERE run_id = ?1 AND step > ?2 AND split = 'valid' AND"
                         " checkpoint_id IS NULL",
                         run_id, step, "deleting validation metrics")) ||
        (rc = db_commit(db))) {
        db_rollback(db);
        return rc;
    }
    return 0;
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
    sqlite3_stmt *st = NULL;
    int rc = stmt_new(db, "INSERT INTO tensor (checkpoint_id, name, shape, dtype, data) VALUES (?1, ?2, ?3, 'f32', ?4)",
                      "storing a tensor", &st);
    if (rc)
        return rc;
    sqlite3_bind_int64(st, 1, ckpt_id);
    sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, shp, -1, SQLITE_STATIC);
    float *swapped = NULL;
    if (DB_HOST_BE) {
        swapped = malloc(n * sizeof *swapped);
        if (!swapped) {
            sqlite3_finalize(st);
            return sl_err(SL_ENOMEM, "out of memory");
        }
        memcpy(swapped, data, n * sizeof *data);
        f32_swap(swapped, n);
        data = swapped;
    }
    sqlite3_bind_blob64(st, 4, n ? (const void *)data : "", (sqlite3_uint64)n * 4, SQLITE_STATIC);
    int s = sqlite3_step(st);
    sqlite3_finalize(st);
    free(swapped);
    if (s == SQLITE_CONSTRAINT_PRIMARYKEY)
        return sl_err(SL_EEXIST, "%s: checkpoint %lld has a tensor %s already", db->path, (long long)ckpt_id, name);
    if (s == SQLITE_CONSTRAINT_FOREIGNKEY)
        return sl_err(SL_ENOTFOUND, "%s: no checkpoint with id %lld", db->path, (long long)ckpt_id);
    if (s != SQLITE_DONE)
        return dberr(db, "storing a tensor");
    return 0;
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

int db_tensor_read(struct db *db, int64_t ckpt_id, const char *name, int ndim, const size_t *shape,
                   float *dst, size_t n)
{
    sqlite3_stmt *st = NULL;
    int rc = stmt_new(db, "SELECT shape, dtype, data FROM tensor WHERE checkpoint_id = ?1 AND name = ?2",
                      "reading a tensor", &st);
    if (rc)
        return rc;
    sqlite3_bind_int64(st, 1, ckpt_id);
    sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
    int s = sqlite3_step(st);
    if (s == SQLITE_DONE) {
        rc = sl_err(SL_ENOTFOUND, "%s: checkpoint %lld has no tensor %s", db->path, (long long)ckpt_id, name);
        goto done;
    }
    if (s != SQLITE_ROW) {
        rc = dberr(db, "reading a tensor");
        goto done;
    }
    const char *shp = (const char *)sqlite3_column_text(st, 0);
    const char *dtype = (const char *)sqlite3_column_text(st, 1);
    size_t got[8];
    int gn = parse_shape(text_or_empty(shp), got, 8);
    int same = gn == ndim;
    for (int i = 0; same && i < ndim; i++)
        same = got[i] == shape[i];
    if (!dtype || strcmp(dtype, "f32") != 0) {
        rc = sl_err(SL_ECORRUPT, "%s: checkpoint %lld, tensor %s: dtype '%s', expected f32", db->path,
                    (long long)ckpt_id, name, text_or_empty(dtype));
        goto done;
    }
    if (!same) {
        rc = sl_err(SL_ECORRUPT,
                    "%s: checkpoint %lld, tensor %s: shape %s does not match the model (made with another "
                    "configuration?)",
                    db->path, (long long)ckpt_id, name, text_or_empty(shp));
        goto done;
    }
    const void *blob = sqlite3_column_blob(st, 2);
    size_t bytes = (size_t)sqlite3_column_bytes(st, 2);
    if (bytes != n * 4 || (n && !blob)) {
        rc = sl_err(SL_ECORRUPT, "%s: checkpoint %lld, tensor %s: %zu bytes of data, expected %zu (4 per float)",
                    db->path, (long long)ckpt_id, name, bytes, n * 4);
        goto done;
    }
    if (n)
        memcpy(dst, blob, bytes);
    if (DB_HOST_BE)
        f32_swap(dst, n);
done:
    sqlite3_finalize(st);
    return rc;
}

int db_tensor_count(struct db *db, int64_t ckpt_id, int64_t *n)
{
    return one_int(db, "SELECT count(*) FROM tensor WHERE checkpoint_id = ?1", ckpt_id, n, "no tensors");
}
