/* corpus/db_run_json.c: reading members of a run's config JSON with SQLite's json_type / json_extract
 * (see db.h, db_run_config_get), so no caller searches the JSON text by hand.
 * - The config text comes from db_run_get; the JSON functions run on a private in-memory connection
 *   (opened and closed per call), because the store's connection is private to db.c.
 *   TODO: once corpus/ has a private header for struct db (the split of db.c), run
 *   "SELECT json_type(config, ?2), json_extract(config, ?2) FROM run WHERE id = ?1" on it instead.
 * - Numbers written with %.17g read back as the same double (SQLite's text-to-double conversion).
 * - Nothing here writes; fields[] is owned by the caller, keys are borrowed for the call. */
#include "corpus/db.h"

#include "util/err.h"

#include <sqlite3.h>
#include <stdio.h>
#include <string.h>

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

static enum db_json_type type_of(const unsigned char *t)
{
    if (!t)
        return DB_JSON_ABSENT;
    if (strcmp((const char *)t, "integer") == 0)
        return DB_JSON_INTEGER;
    if (strcmp((const char *)t, "real") == 0)
        return DB_JSON_REAL;
    return DB_JSON_OTHER;
}

int db_run_config_get(struct db *db, int64_t id, struct db_json_field *fields, size_t n)
{
    struct db_run run;
    sqlite3 *h = NULL;
    sqlite3_stmt *st = NULL;
    int rc = db_run_get(db, id, &run);
    if (rc)
        return rc;
    for (size_t i = 0; i < n; i++) {
        if (!plain_key(fields[i].key)) {
            rc = sl_err(SL_EINVAL, "run config: '%s' is not a plain member name", fields[i].key ? fields[i].key : "");
            goto done;
        }
        fields[i].type = DB_JSON_ABSENT;
        fields[i].i = 0;
        fields[i].d = 0;
    }
    const char *json = run.config ? run.config : "";
    if (!*json || n == 0)
        goto done; /* an empty config has no members */
    if (sqlite3_open_v2(":memory:", &h, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(h, "SELECT json_type(?1), json_type(?1, ?2), json_extract(?1, ?2)", -1, &st, NULL) !=
            SQLITE_OK) {
        rc = sl_err(h ? SL_EDB : SL_ENOMEM, "%s: reading the config of run %lld: %s", db_path(db), (long long)id,
                    h ? sqlite3_errmsg(h) : "out of memory");
        goto done;
    }
    sqlite3_bind_text(st, 1, json, -1, SQLITE_STATIC);
    for (size_t i = 0; i < n; i++) {
        char path[80];
        snprintf(path, sizeof path, "$.%s", fields[i].key);
        sqlite3_bind_text(st, 2, path, -1, SQLITE_TRANSIENT);
        int s = sqlite3_step(st);
        const unsigned char *whole = s == SQLITE_ROW ? sqlite3_column_text(st, 0) : NULL;
        if (s != SQLITE_ROW || !whole || strcmp((const char *)whole, "object") != 0) {
            rc = sl_err(SL_ECORRUPT, "%s: the config of run %lld is not a JSON object", db_path(db), (long long)id);
            goto done;
        }
        fields[i].type = type_of(sqlite3_column_text(st, 1));
        if (fields[i].type == DB_JSON_INTEGER)
            fields[i].i = sqlite3_column_int64(st, 2);
        if (fields[i].type == DB_JSON_INTEGER || fields[i].type == DB_JSON_REAL)
            fields[i].d = sqlite3_column_double(st, 2);
        sqlite3_reset(st);
    }
done:
    sqlite3_finalize(st);
    sqlite3_close(h);
    db_run_clear(&run);
    return rc;
}
