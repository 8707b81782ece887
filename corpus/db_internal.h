/* corpus/db_internal.h: private to corpus/db*.c. The connection struct and the one statement helper
 * every store file uses, so a domain function is its SQL, its parameters and the messages of the
 * failures it expects. No <sqlite3.h> here: db.c alone includes it.
 * - Every statement is prepared once per connection and cached, keyed by the address of its SQL
 *   text (so the text must be a string literal or otherwise live as long as the program); a
 *   statement already in use (a callback of a loop over it runs the same statement) gets a fresh
 *   one, finalised when released.
 * - Parameters are given as a DB_ARGS(...) list of db_int / db_text / ... values, ?1 first; every
 *   parameter of the statement is bound on every use (the count is asserted).
 * - Failures: SL_EDB with "PATH: what: sqlite message". A constraint failure whose kind the caller
 *   lists in its `expect` mask returns the SL_E* code of that kind (DB_UNIQUE, DB_PRIMARYKEY:
 *   SL_EEXIST; DB_FOREIGNKEY: SL_ENOTFOUND; DB_CHECK, DB_NOTNULL: SL_EINVAL); the caller then states
 *   what was wrong with db_fail. Other constraint failures stay SL_EDB.
 * Ownership: texts and blobs read from a row are borrowed until the next db_row or db_stmt_end of
 * that statement; bound texts and blobs are borrowed until the statement is released. */
#ifndef SL_CORPUS_DB_INTERNAL_H
#define SL_CORPUS_DB_INTERNAL_H

#include "corpus/db.h"
#include "util/sbuf.h"

#include <stddef.h>
#include <stdint.h>

struct sqlite3;
struct db_stmt;

struct db {
    struct sqlite3 *h;
    char *path;
    struct db_stmt *cache; /* the cached statements, a list */
    /* corpus group: pair ids inserted for corpus ins_corpus since db_corpus_create (checked by
     * db_corpus_finish) */
    int64_t ins_corpus, ins_first, ins_last, ins_n;
    struct sbuf tmp; /* vocab group: scratch for token surfaces */
    int busy;        /* the last SQLite failure recorded (dberr) was SQLITE_BUSY */
};

/* Appends ids[0..n) to out as the JSON array json_each reads ("[3,5]"). SL_ENOMEM. */
int db_ids_json(const int64_t *ids, size_t n, struct sbuf *out);

/* ---- parameters ---- */

enum db_val_kind { DB_V_NULL, DB_V_INT, DB_V_REAL, DB_V_TEXT, DB_V_BLOB };

struct db_val {
    enum db_val_kind kind;
    int64_t i;
    double r;
    const void *p; /* text or blob (borrowed) */
    size_t n;      /* its length in bytes (text: SIZE_MAX means NUL-terminated) */
};

static inline struct db_val db_null(void) { return (struct db_val){.kind = DB_V_NULL}; }
static inline struct db_val db_int(int64_t v) { return (struct db_val){.kind = DB_V_INT, .i = v}; }
static inline struct db_val db_real(double v) { return (struct db_val){.kind = DB_V_REAL, .r = v}; }
/* An id column: NULL when v <= 0 (no parent). */
static inline struct db_val db_id(int64_t v)
{
    return v > 0 ? db_int(v) : db_null();
}
/* A measured number: NULL when v is NaN (not measured). */
static inline struct db_val db_real_or_null(double v)
{
    return v == v ? db_real(v) : db_null();
}
/* A NUL-terminated text; NULL binds NULL. */
static inline struct db_val db_text(const char *s)
{
    return s ? (struct db_val){.kind = DB_V_TEXT, .p = s, .n = SIZE_MAX} : db_null();
}
/* A text of n bytes (not NUL-terminated; n 0 is the empty text, not NULL). */
static inline struct db_val db_text_n(const char *s, size_t n)
{
    return (struct db_val){.kind = DB_V_TEXT, .p = n ? s : "", .n = n};
}
/* A blob of n bytes (n 0 is an empty blob, not NULL). */
static inline struct db_val db_blob(const void *p, size_t n)
{
    return (struct db_val){.kind = DB_V_BLOB, .p = n ? p : "", .n = n};
}

/* The parameter list of one statement: DB_ARGS(db_int(id), db_text(name)) or DB_NO_ARGS. */
#define DB_ARGS(...) \
    (const struct db_val[]){__VA_ARGS__}, \
    (int)(sizeof((const struct db_val[]){__VA_ARGS__}) / sizeof(struct db_val))
#define DB_NO_ARGS NULL, 0

/* The current time as the schema stores it (UTC, milliseconds). */
#define DB_NOW "(strftime('%Y-%m-%dT%H:%M:%fZ','now'))"

/* ---- statements ---- */

/* Constraint kinds a caller expects (a mask for db_exec). */
enum db_expect {
    DB_UNIQUE = 1 << 0,     /* -> SL_EEXIST */
    DB_PRIMARYKEY = 1 << 1, /* -> SL_EEXIST */
    DB_FOREIGNKEY = 1 << 2, /* -> SL_ENOTFOUND */
    DB_CHECK = 1 << 3,      /* -> SL_EINVAL */
    DB_NOTNULL = 1 << 4,    /* -> SL_EINVAL */
};

/* Runs a statement that returns no row (bind, step to done, reset). 0, the code of an expected
 * constraint failure, or SL_EDB naming what. */
int db_exec(struct db *db, const char *what, int expect, const char *sql, const struct db_val *args, int n_args);
/* Starts a query: prepared (cached) and bound, no row read yet; release it with db_stmt_end.
 * 0 or SL_EDB naming what (then *out is NULL). */
int db_query(struct db *db, struct db_stmt **out /* OUT */, const char *what, const char *sql,
             const struct db_val *args, int n_args);
/* db_query, then the first row: 0 when a row is ready, SL_ENOTFOUND when there is none (the caller
 * states what is missing with db_fail), SL_EDB naming what. Release with db_stmt_end in every case. */
int db_query_row(struct db *db, struct db_stmt **out /* OUT */, const char *what, const char *sql,
                 const struct db_val *args, int n_args);
/* One integer: the first column of the first row. SL_ENOTFOUND when there is no row or it is NULL. */
int db_query_int(struct db *db, int64_t *v /* OUT */, const char *what, const char *sql,
                 const struct db_val *args, int n_args);
/* Reads the row of sql whose ?1 is id: read is called once, with the row ready. SL_ENOTFOUND
 * "PATH: no THING with id ID" when there is none, SL_EDB naming "reading a THING", or read's status. */
int db_get_by_id(struct db *db, const char *thing, const char *sql, int64_t id,
                 int (*read)(struct db *db, struct db_stmt *st, void *out), void *out);
/* Steps a query: 1 a row is ready, 0 done, < 0 SL_EDB (also returned by db_stmt_end). */
int db_row(struct db_stmt *st);
/* Releases a query (NULL is a no-op). Returns rc when it is nonzero, else the error of a failed
 * db_row, else 0: `while (!rc && db_row(st) > 0) rc = cb(...); return db_stmt_end(st, rc);` */
int db_stmt_end(struct db_stmt *st, int rc);

/* Columns of the current row, 0-based. NULL reads as 0, 0.0 or "" (an empty text or blob). */
int64_t db_col_int(struct db_stmt *st, int i);
double db_col_real(struct db_stmt *st, int i);
double db_col_real_or_nan(struct db_stmt *st, int i); /* NULL reads as NaN */
int db_col_is_null(struct db_stmt *st, int i);
const char *db_col_text(struct db_stmt *st, int i);
const char *db_col_text_n(struct db_stmt *st, int i, size_t *len /* OUT */);
const void *db_col_blob(struct db_stmt *st, int i, size_t *len /* OUT */);

/* Rows changed by the last db_exec; the rowid of the last insert. */
int64_t db_changes(struct db *db);
int64_t db_last_id(struct db *db);
/* Records "PATH: message" with code and returns code. */
int db_fail(struct db *db, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#endif
