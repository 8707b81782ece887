/* tests/fuzz/fuzz_ckpt.c: fuzz target for loading a checkpoint from a database with tampered rows
 * (model/checkpoint.h). LLVMFuzzerInitialize makes two valid tiny databases (a plain and an attention
 * model, one checkpoint each); every input copies one of them and applies a list of edits through a
 * second SQLite connection (CHECK constraints off, so shapes and configs need not be valid JSON),
 * then calls ckpt_model_load and, when that succeeds, translates a fixed line with the model.
 * Input: byte 0 bit 0 chooses the database, bits 1-2 the checkpoint asked for ("last", "best", "1",
 * "2"); then edits, each [op][row][len][len bytes of value] (see ops below; row picks the row by
 * position). Property: the load fails cleanly (no crash, no leak, no read out of bounds) or gives a
 * model that translates. */
#include "tests/fuzz/fuzz_common.h"

#include "corpus/db.h"
#include "model/checkpoint.h"
#include "translate/translator.h"
#include "util/err.h"

#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    fuzz_model_db(0);
    fuzz_model_db(1);
    return 0;
}

/* An edit: SQL with ?1 the value and ?2 the row position (OFFSET). How the value is bound: */
enum bind { AS_BLOB, AS_TEXT, AS_INT, AS_REAL };
static const struct {
    const char *sql;
    enum bind bind;
} ops[] = {
    {"UPDATE tensor SET data = ?1 WHERE rowid = (SELECT rowid FROM tensor ORDER BY rowid LIMIT 1 OFFSET ?2)", AS_BLOB},
    {"UPDATE tensor SET shape = ?1 WHERE rowid = (SELECT rowid FROM tensor ORDER BY rowid LIMIT 1 OFFSET ?2)", AS_TEXT},
    {"UPDATE tensor SET name = ?1 WHERE rowid = (SELECT rowid FROM tensor ORDER BY rowid LIMIT 1 OFFSET ?2)", AS_TEXT},
    {"UPDATE tensor SET data = substr(data, 1, ?1) WHERE rowid = (SELECT rowid FROM tensor ORDER BY rowid LIMIT 1 "
     "OFFSET ?2)", AS_INT},
    {"DELETE FROM tensor WHERE rowid = (SELECT rowid FROM tensor ORDER BY rowid LIMIT 1 OFFSET ?2) AND ?1 IS NOT NULL",
     AS_INT},
    {"UPDATE tensor SET dtype = ?1 WHERE rowid = (SELECT rowid FROM tensor ORDER BY rowid LIMIT 1 OFFSET ?2)", AS_TEXT},
    {"UPDATE run SET config = ?1 WHERE ?2 IS NOT NULL", AS_TEXT},
    {"UPDATE run SET config = json_set(config, '$.' || (SELECT key FROM json_each(run.config) LIMIT 1 OFFSET ?2), "
     "?1)", AS_INT},
    {"UPDATE run SET config = json_set(config, '$.' || (SELECT key FROM json_each(run.config) LIMIT 1 OFFSET ?2), "
     "?1)", AS_REAL},
    {"UPDATE run SET config = json_set(config, '$.' || (SELECT key FROM json_each(run.config) LIMIT 1 OFFSET ?2), "
     "?1)", AS_TEXT},
    {"UPDATE token SET bytes = ?1 WHERE id = ?2", AS_BLOB},
    {"UPDATE token SET kind = ?1 WHERE id = ?2", AS_TEXT},
    {"UPDATE token SET id = ?1 WHERE id = ?2", AS_INT},
    {"DELETE FROM token WHERE id = ?2 + 256 * (?1 & 3)", AS_INT},
    {"UPDATE merge SET left_id = ?1 WHERE rank = ?2", AS_INT},
    {"UPDATE merge SET right_id = ?1 WHERE rank = ?2", AS_INT},
    {"UPDATE merge SET result_id = ?1 WHERE rank = ?2", AS_INT},
    {"UPDATE merge SET rank = ?1 WHERE rank = ?2", AS_INT},
    {"DELETE FROM merge WHERE rank = ?2 AND ?1 IS NOT NULL", AS_INT},
    {"UPDATE vocab SET size = ?1 WHERE ?2 IS NOT NULL", AS_INT},
    {"UPDATE vocab SET normalization = ?1 WHERE ?2 IS NOT NULL", AS_TEXT},
    {"UPDATE vocab SET kind = ?1 WHERE ?2 IS NOT NULL", AS_TEXT},
    {"UPDATE checkpoint SET src_vocab_id = ?1 WHERE ?2 IS NOT NULL", AS_INT},
    {"UPDATE checkpoint SET tgt_vocab_id = ?1 WHERE ?2 IS NOT NULL", AS_INT},
    {"UPDATE checkpoint SET run_id = ?1 WHERE ?2 IS NOT NULL", AS_INT},
    {"UPDATE checkpoint SET rng_state = ?1 WHERE ?2 IS NOT NULL", AS_BLOB},
    {"UPDATE checkpoint SET data_pos = ?1 WHERE ?2 IS NOT NULL", AS_TEXT},
    {"UPDATE checkpoint SET step = ?1, is_best = ?2 & 1", AS_INT},
    {"UPDATE checkpoint SET valid_ppl = ?1 WHERE ?2 IS NOT NULL", AS_REAL},
    {"INSERT INTO checkpoint (run_id, step, epoch, src_vocab_id, tgt_vocab_id, is_best) "
     "SELECT run_id, step + 1, epoch, src_vocab_id, tgt_vocab_id, ?2 & 1 FROM checkpoint WHERE ?1 IS NOT NULL "
     "LIMIT 1", AS_INT},
    {"INSERT INTO vocab (kind, side, size, normalization) VALUES ('bpe', 'joint', ?2, ?1)", AS_TEXT},
};
#define N_OPS (sizeof ops / sizeof *ops)

static int64_t read_int(const uint8_t *p, size_t n)
{
    uint64_t v = 0;
    for (size_t i = 0; i < n && i < 8; i++)
        v |= (uint64_t)p[i] << (8 * i);
    if (n == 1)
        return (int8_t)v; /* small values, negative ones too */
    if (n == 2)
        return (int16_t)v;
    if (n <= 4)
        return (int32_t)v;
    return (int64_t)v;
}

static void apply_edits(sqlite3 *h, const uint8_t *p, size_t n)
{
    while (n >= 3) {
        const unsigned op = p[0] % N_OPS, row = p[1];
        size_t len = p[2];
        p += 3;
        n -= 3;
        if (len > n)
            len = n;
        sqlite3_stmt *st;
        FUZZ_CHECK(sqlite3_prepare_v2(h, ops[op].sql, -1, &st, NULL) == SQLITE_OK, "edit %u: %s", op,
                   sqlite3_errmsg(h));
        switch (ops[op].bind) {
        case AS_BLOB:
            sqlite3_bind_blob(st, 1, len ? (const void *)p : "", (int)len, SQLITE_TRANSIENT);
            break;
        case AS_TEXT:
            sqlite3_bind_text(st, 1, len ? (const char *)p : "", (int)len, SQLITE_TRANSIENT);
            break;
        case AS_INT:
            sqlite3_bind_int64(st, 1, read_int(p, len));
            break;
        case AS_REAL: {
            double d = 0;
            if (len >= sizeof d)
                memcpy(&d, p, sizeof d);
            else
                d = (double)read_int(p, len) / 16;
            sqlite3_bind_double(st, 1, d);
            break;
        }
        }
        sqlite3_bind_int(st, 2, (int)row);
        sqlite3_step(st); /* constraint errors (types, uniqueness) are fine: the edit is dropped */
        sqlite3_finalize(st);
        p += len;
        n -= len;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    static const char *const which[] = {"last", "best", "1", "2"};
    const char *path = fuzz_path(0, "ckpt.db");
    fuzz_remove_db(path);
    fuzz_copy(fuzz_model_db(data[0] & 1), path);
    sqlite3 *h;
    FUZZ_CHECK(sqlite3_open(path, &h) == SQLITE_OK, "sqlite3_open");
    FUZZ_CHECK(sqlite3_exec(h, "PRAGMA ignore_check_constraints = ON; BEGIN", NULL, NULL, NULL) == SQLITE_OK,
               "%s", sqlite3_errmsg(h));
    apply_edits(h, data + 1, size - 1);
    FUZZ_CHECK(sqlite3_exec(h, "COMMIT", NULL, NULL, NULL) == SQLITE_OK, "%s", sqlite3_errmsg(h));
    sqlite3_close(h);

    struct db *db;
    FUZZ_CHECK(db_open(path, 0, &db) == 0, "db_open: %s", sl_errmsg());
    struct ckpt_model m;
    if (ckpt_model_load(db, which[(data[0] >> 1) & 3], &m) == 0) {
        struct translate_opts o;
        translate_opts_default(&o);
        o.beam = 2;
        o.max_len_cap = 8;
        o.threads = 1;
        o.src_eos = m.src_eos;
        struct translator *t = translator_create(&m.model, m.w, m.src_bpe, m.tgt_bpe, &o);
        FUZZ_CHECK(t, "a loaded model makes no translator: %s", sl_errmsg());
        const char *line = "the dog runs in the park";
        const size_t len = strlen(line);
        FUZZ_CHECK(translator_run(t, &line, &len, 1) == 0, "translator_run: %s", sl_errmsg());
        translator_free(t);
        ckpt_model_free(&m);
    }
    db_close(db);
    return 0;
}
