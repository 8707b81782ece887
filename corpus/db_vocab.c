/* corpus/db_vocab.c: the vocab, token and merge tables (see db.h): tokenizer-agnostic arrays of a
 * learned vocabulary. A token keeps its exact bytes and a display surface made from them
 * (db_token_display); token ids and merge ranks are keys within their vocabulary. */
#include "corpus/db_internal.h"

#include "util/err.h"
#include "util/sbuf.h"
#include "util/utf8.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int db_vocab_insert(struct db *db, const char *kind, const char *side, const char *normalization,
                    const char *settings_json, int64_t size, int64_t *id)
{
    int rc = db_exec(db, "storing a vocabulary", DB_CHECK | DB_NOTNULL,
                     "INSERT INTO vocab (kind, side, normalization, settings, size) VALUES (?1, ?2, ?3, ?4, ?5)",
                     DB_ARGS(db_text(kind), db_text(side), db_text(normalization),
                             db_text(settings_json ? settings_json : "{}"), db_int(size)));
    if (rc == SL_EINVAL)
        return db_fail(db, rc, "bad vocabulary (side '%s' must be joint, src or tgt; size %lld; settings must be JSON)",
                       side ? side : "(null)", (long long)size);
    if (!rc)
        *id = db_last_id(db);
    return rc;
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

static int no_vocab(struct db *db, int64_t vocab_id)
{
    return db_fail(db, SL_ENOTFOUND, "no vocabulary with id %lld", (long long)vocab_id);
}

int db_token_insert(struct db *db, int64_t vocab_id, int64_t token_id, const char *bytes, size_t len,
                    int64_t count, const char *kind)
{
    int rc = db_token_display(bytes, len, &db->tmp);
    if (rc)
        return rc;
    /* a zero-length blob must still be a blob, not NULL (db_blob) */
    rc = db_exec(db, "storing a token", DB_PRIMARYKEY | DB_FOREIGNKEY | DB_CHECK | DB_NOTNULL,
                 "INSERT INTO token (vocab_id, id, surface, bytes, count, kind) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                 DB_ARGS(db_int(vocab_id), db_int(token_id), db_text_n(db->tmp.data, db->tmp.len),
                         db_blob(bytes, len), db_int(count), db_text(kind)));
    if (rc == SL_EEXIST)
        return db_fail(db, rc, "vocabulary %lld has a token %lld already", (long long)vocab_id,
                       (long long)token_id);
    if (rc == SL_ENOTFOUND)
        return no_vocab(db, vocab_id);
    if (rc == SL_EINVAL)
        return db_fail(db, rc, "bad token %lld (kind '%s' must be normal, special or byte)", (long long)token_id,
                       kind ? kind : "(null)");
    return rc;
}

int db_merge_insert(struct db *db, int64_t vocab_id, int64_t rank, int64_t left, int64_t right,
                    int64_t result)
{
    int rc = db_exec(db, "storing a merge", DB_PRIMARYKEY | DB_FOREIGNKEY,
                     "INSERT INTO merge (vocab_id, rank, left_id, right_id, result_id) VALUES (?1, ?2, ?3, ?4, ?5)",
                     DB_ARGS(db_int(vocab_id), db_int(rank), db_int(left), db_int(right), db_int(result)));
    if (rc == SL_EEXIST)
        return db_fail(db, rc, "vocabulary %lld has a merge of rank %lld already", (long long)vocab_id,
                       (long long)rank);
    return rc == SL_ENOTFOUND ? no_vocab(db, vocab_id) : rc;
}

static void copy_text(char *dst, size_t cap, const char *src) { snprintf(dst, cap, "%s", src); }

int db_vocab_get(struct db *db, int64_t vocab_id, struct db_vocab *out)
{
    memset(out, 0, sizeof *out);
    struct db_stmt *st;
    int rc = db_query_row(db, &st, "reading a vocabulary",
                          "SELECT id, kind, side, normalization, settings, size FROM vocab WHERE id = ?1",
                          DB_ARGS(db_int(vocab_id)));
    if (!rc) {
        out->id = db_col_int(st, 0);
        copy_text(out->kind, sizeof out->kind, db_col_text(st, 1));
        copy_text(out->side, sizeof out->side, db_col_text(st, 2));
        copy_text(out->normalization, sizeof out->normalization, db_col_text(st, 3));
        out->settings = strdup(db_col_text(st, 4));
        out->size = db_col_int(st, 5);
        if (!out->settings)
            rc = sl_err(SL_ENOMEM, "out of memory");
    } else if (rc == SL_ENOTFOUND) {
        rc = no_vocab(db, vocab_id);
    }
    return db_stmt_end(st, rc);
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
    int rc = db_query_int(db, id, "finding the vocabulary",
                          "SELECT id FROM vocab WHERE ?1 IS NULL OR side = ?1"
                          " OR (side = 'joint' AND ?1 IN ('src','tgt')) ORDER BY id DESC LIMIT 1",
                          DB_ARGS(db_text(side)));
    if (rc == SL_ENOTFOUND)
        rc = db_fail(db, rc, "no vocabulary%s%s: run seqlite vocab %s first", side ? " for side " : "",
                     side ? side : "", db->path);
    return rc;
}

int db_tokens_foreach(struct db *db, int64_t vocab_id,
                      int (*cb)(void *ctx, int64_t token_id, const char *bytes, size_t len,
                                int64_t count, const char *kind),
                      void *ctx)
{
    struct db_stmt *st;
    int rc = db_query(db, &st, "reading tokens", "SELECT id, bytes, count, kind FROM token WHERE vocab_id = ?1 ORDER BY id",
                      DB_ARGS(db_int(vocab_id)));
    while (!rc && db_row(st) > 0) {
        size_t len;
        const char *bytes = db_col_blob(st, 1, &len);
        rc = cb(ctx, db_col_int(st, 0), bytes, len, db_col_int(st, 2), db_col_text(st, 3));
    }
    return db_stmt_end(st, rc);
}

int db_merges_foreach(struct db *db, int64_t vocab_id,
                      int (*cb)(void *ctx, int64_t rank, int64_t left, int64_t right, int64_t result),
                      void *ctx)
{
    struct db_stmt *st;
    int rc = db_query(db, &st, "reading merges",
                      "SELECT rank, left_id, right_id, result_id FROM merge WHERE vocab_id = ?1 ORDER BY rank",
                      DB_ARGS(db_int(vocab_id)));
    while (!rc && db_row(st) > 0)
        rc = cb(ctx, db_col_int(st, 0), db_col_int(st, 1), db_col_int(st, 2), db_col_int(st, 3));
    return db_stmt_end(st, rc);
}
