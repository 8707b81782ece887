/* tests/test_db.c: the store (corpus/db*.c): schema identity (application_id, user_version) and
 * refusing foreign, non-SQLite and newer files without touching them; corpus, pair, vocab, token and
 * merge storage; docs/schema.md documents exactly the tables and columns of a fresh database
 * (found through SEQLITE_SRCDIR, the source tree).
 * Foreign and newer files are made by patching the header of a seqlite file (offset 60
 * user_version, 68 application_id, big-endian), so the tests need no SQLite header of their own. */
#include <criterion/criterion.h>

#include "corpus/db.h"
#include "tests/helpers.h"
#include "util/err.h"
#include "util/sbuf.h"

#include <math.h>
#include <sqlite3.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char *dir;

static void setup(void) { dir = th_tmpdir(); }
static void teardown(void)
{
    th_rmdir(dir);
    free(dir);
}

TestSuite(db, .init = setup, .fini = teardown);

static uint32_t be32_at(const char *p)
{
    const unsigned char *u = (const unsigned char *)p;
    return (uint32_t)u[0] << 24 | (uint32_t)u[1] << 16 | (uint32_t)u[2] << 8 | u[3];
}

static void put_be32(char *p, uint32_t v)
{
    p[0] = (char)(v >> 24);
    p[1] = (char)(v >> 16);
    p[2] = (char)(v >> 8);
    p[3] = (char)v;
}

static int exists(const char *path) { return access(path, F_OK) == 0; }

/* Creates a closed seqlite database at name and returns its path. */
static char *make_db(const char *name)
{
    char *path = th_path(dir, name);
    struct db *db = NULL;
    cr_assert_eq(db_open(path, DB_CREATE, &db), 0, "%s", sl_errmsg());
    db_close(db);
    return path;
}

/* Asserts that db_open refuses path with code and a message containing want, and that the file's
 * bytes are the same afterwards and no -wal / -shm file appeared. */
static void assert_refused(const char *path, int flags, int code, const char *want)
{
    size_t n0, n1;
    char *before = th_read_file(path, &n0);
    cr_assert(before);
    struct db *db = NULL;
    int rc = db_open(path, flags, &db);
    cr_assert_eq(rc, code, "rc %d, message '%s'", rc, sl_errmsg());
    cr_assert_null(db);
    cr_assert(strstr(sl_errmsg(), want), "message '%s' lacks '%s'", sl_errmsg(), want);
    cr_assert(strstr(sl_errmsg(), path), "message '%s' does not name the file", sl_errmsg());
    char *after = th_read_file(path, &n1);
    cr_assert_eq(n0, n1);
    cr_assert(memcmp(before, after, n0) == 0, "the file was changed");
    char side[4200];
    snprintf(side, sizeof side, "%s-wal", path);
    cr_assert_not(exists(side));
    snprintf(side, sizeof side, "%s-shm", path);
    cr_assert_not(exists(side));
    free(before);
    free(after);
}

static void patch_header(const char *path, size_t off, uint32_t v)
{
    size_t n;
    char *b = th_read_file(path, &n);
    cr_assert(b && n >= 100);
    put_be32(b + off, v);
    cr_assert_eq(th_write_file(path, b, n), 0);
    free(b);
}

Test(db, fresh_database_has_application_id_and_schema_version)
{
    char *path = make_db("a.db");
    size_t n;
    char *b = th_read_file(path, &n);
    cr_assert(n >= 100);
    cr_assert(memcmp(b, "SQLite format 3", 16) == 0);
    cr_assert_eq(be32_at(b + 68), 0x53514C54u);
    cr_assert_eq(be32_at(b + 68), (uint32_t)DB_APPLICATION_ID);
    cr_assert_eq(be32_at(b + 60), 5u);
    cr_assert_eq(be32_at(b + 60), (uint32_t)DB_SCHEMA_VERSION);
    cr_assert_eq(b[18], 2, "not in WAL mode"); /* file format write/read versions: 2 = WAL */
    cr_assert_eq(b[19], 2);
    free(b);
    /* reopening (without DB_CREATE) works and keeps the version */
    struct db *db = NULL;
    cr_assert_eq(db_open(path, 0, &db), 0, "%s", sl_errmsg());
    cr_assert_str_eq(db_path(db), path);
    db_close(db);
    b = th_read_file(path, &n);
    cr_assert_eq(be32_at(b + 60), 5u);
    free(b);
    free(path);
}

Test(db, missing_file_without_create_is_not_created)
{
    char *path = th_path(dir, "none.db");
    struct db *db = NULL;
    cr_assert_eq(db_open(path, 0, &db), SL_ENOTFOUND);
    cr_assert_null(db);
    cr_assert(strstr(sl_errmsg(), "no such database"), "%s", sl_errmsg());
    cr_assert_not(exists(path));
    free(path);
}

Test(db, empty_file_is_initialised_only_with_create)
{
    char *path = th_path(dir, "empty.db");
    cr_assert_eq(th_write_file(path, "", 0), 0);
    struct db *db = NULL;
    cr_assert_eq(db_open(path, 0, &db), SL_ENOTFOUND);
    cr_assert(strstr(sl_errmsg(), "empty database"), "%s", sl_errmsg());
    cr_assert_eq(db_open(path, DB_CREATE, &db), 0, "%s", sl_errmsg());
    db_close(db);
    size_t n;
    char *b = th_read_file(path, &n);
    cr_assert_eq(be32_at(b + 68), 0x53514C54u);
    free(b);
    free(path);
}

Test(db, non_sqlite_file_is_refused_and_unchanged)
{
    char *path = th_path(dir, "text.db");
    const char *text = "this is not a database, just some text that is long enough to have a header"
                       " of one hundred bytes and more, honestly.\n";
    cr_assert_eq(th_write_file(path, text, strlen(text)), 0);
    assert_refused(path, DB_CREATE, SL_ECORRUPT, "not an SQLite file");
    assert_refused(path, 0, SL_ECORRUPT, "not a seqlite database");
    /* a short file too */
    cr_assert_eq(th_write_file(path, "hi", 2), 0);
    assert_refused(path, DB_CREATE, SL_ECORRUPT, "not an SQLite file");
    free(path);
}

Test(db, other_application_id_is_refused_and_unchanged)
{
    char *path = make_db("foreign.db");
    patch_header(path, 68, 0x46534C31); /* another program's id */
    assert_refused(path, DB_CREATE, SL_ECORRUPT, "application_id 0x46534C31");
    free(path);
}

Test(db, tables_without_application_id_are_refused_and_unchanged)
{
    char *path = make_db("noid.db");
    patch_header(path, 68, 0);
    patch_header(path, 60, 0);
    assert_refused(path, DB_CREATE, SL_ECORRUPT, "another program");
    free(path);
}

Test(db, newer_schema_is_refused_and_unchanged)
{
    char *path = make_db("new.db");
    patch_header(path, 60, 999);
    assert_refused(path, DB_CREATE, SL_EVERSION, "made by a newer seqlite (schema 999, this build knows 5)");
    assert_refused(path, 0, SL_EVERSION, "upgrade seqlite");
    /* and the very next version (a file of the build after this one) */
    patch_header(path, 60, DB_SCHEMA_VERSION + 1);
    assert_refused(path, DB_CREATE, SL_EVERSION, "made by a newer seqlite (schema 6, this build knows 5): upgrade seqlite");
    assert_refused(path, DB_READ, SL_EVERSION, "made by a newer seqlite (schema 6, this build knows 5)");
    free(path);
}

Test(db, directory_is_refused)
{
    struct db *db = NULL;
    cr_assert_eq(db_open(dir, DB_CREATE, &db), SL_EIO);
    cr_assert(strstr(sl_errmsg(), "directory"), "%s", sl_errmsg());
}

struct collected {
    int n;
    int64_t ids[16];
    char text[16][64];
};

static int collect_pair(void *ctx, int64_t pair_id, const char *src, size_t srclen, const char *tgt,
                        size_t tgtlen)
{
    struct collected *c = ctx;
    cr_assert_lt(c->n, 16);
    c->ids[c->n] = pair_id;
    snprintf(c->text[c->n], sizeof c->text[0], "%.*s|%.*s", (int)srclen, src, (int)tgtlen, tgt);
    c->n++;
    return 0;
}

static int stop_at_two(void *ctx, int64_t pair_id, const char *src, size_t srclen, const char *tgt,
                       size_t tgtlen)
{
    int *n = ctx;
    (void)pair_id, (void)src, (void)srclen, (void)tgt, (void)tgtlen;
    return ++*n == 2 ? 42 : 0;
}

/* Creates corpus name of split with the given pairs (texts "s<i>", "t<i>" with a prefix). */
static int64_t add_corpus(struct db *db, const char *name, const char *split, int n, const char *prefix)
{
    int64_t id;
    cr_assert_eq(db_begin(db), 0, "%s", sl_errmsg());
    cr_assert_eq(db_corpus_create(db, name, split, "en", "de", "a.en", "a.de", &id), 0, "%s", sl_errmsg());
    for (int i = 0; i < n; i++) {
        char s[32], t[32];
        int ls = snprintf(s, sizeof s, "%ss%d", prefix, i);
        int lt = snprintf(t, sizeof t, "%st%d", prefix, i);
        cr_assert_eq(db_pair_insert(db, id, i + 1, s, (size_t)ls, t, (size_t)lt), 0, "%s", sl_errmsg());
    }
    cr_assert_eq(db_corpus_finish(db, id, n, 1), 0, "%s", sl_errmsg());
    cr_assert_eq(db_commit(db), 0, "%s", sl_errmsg());
    return id;
}

Test(db, corpora_and_pairs)
{
    char *path = th_path(dir, "c.db");
    struct db *db = NULL;
    cr_assert_eq(db_open(path, DB_CREATE, &db), 0, "%s", sl_errmsg());
    int64_t a = add_corpus(db, "first", "train", 3, "a");
    int64_t v = add_corpus(db, "dev", "valid", 1, "v");
    int64_t b = add_corpus(db, "second", "train", 2, "b");
    cr_assert(a < v && v < b);

    int64_t id;
    cr_assert_eq(db_corpus_create(db, "first", "test", "en", "de", "x", "y", &id), SL_EEXIST);
    cr_assert(strstr(sl_errmsg(), "a corpus named 'first' exists already"), "%s", sl_errmsg());
    cr_assert_eq(db_corpus_create(db, "bad", "dev", "en", "de", "x", "y", &id), SL_EINVAL);
    cr_assert(strstr(sl_errmsg(), "bad split 'dev'"), "%s", sl_errmsg());

    struct collected c = {0};
    cr_assert_eq(db_pairs_foreach(db, "train", collect_pair, &c), 0, "%s", sl_errmsg());
    cr_assert_eq(c.n, 5);
    const char *want[] = {"as0|at0", "as1|at1", "as2|at2", "bs0|bt0", "bs1|bt1"};
    for (int i = 0; i < 5; i++)
        cr_assert_str_eq(c.text[i], want[i]);
    int64_t corpus, line;
    cr_assert_eq(db_pair_get(db, c.ids[4], &corpus, &line), 0);
    cr_assert_eq(corpus, b);
    cr_assert_eq(line, 2);
    cr_assert_eq(db_pair_get(db, 9999, &corpus, &line), SL_ENOTFOUND);

    struct collected cv = {0};
    cr_assert_eq(db_pairs_foreach(db, "valid", collect_pair, &cv), 0);
    cr_assert_eq(cv.n, 1);
    cr_assert_str_eq(cv.text[0], "vs0|vt0");
    struct collected ct = {0};
    cr_assert_eq(db_pairs_foreach(db, "test", collect_pair, &ct), 0);
    cr_assert_eq(ct.n, 0);
    int stop = 0;
    cr_assert_eq(db_pairs_foreach(db, "train", stop_at_two, &stop), 42);

    int64_t n = -1;
    cr_assert_eq(db_split_count(db, "train", &n), 0);
    cr_assert_eq(n, 5);
    cr_assert_eq(db_split_count(db, "test", &n), 0);
    cr_assert_eq(n, 0);

    struct db_corpus info;
    cr_assert_eq(db_corpus_get(db, "second", &info), 0, "%s", sl_errmsg());
    cr_assert_eq(info.id, b);
    cr_assert_str_eq(info.split, "train");
    cr_assert_str_eq(info.src_lang, "en");
    cr_assert_str_eq(info.tgt_path, "a.de");
    cr_assert_eq(info.n_pairs, 2);
    cr_assert_eq(info.n_skipped, 1);
    cr_assert_eq(info.last_pair_id - info.first_pair_id, 1);
    cr_assert_eq(strlen(info.created_at), 24, "%s", info.created_at);
    db_corpus_clear(&info);
    cr_assert_eq(db_corpus_get(db, "nope", &info), SL_ENOTFOUND);

    cr_assert_eq(db_pair_set_tokens(db, c.ids[0], 4, 5), 0, "%s", sl_errmsg());
    cr_assert_eq(db_pair_set_tokens(db, 12345, 4, 5), SL_ENOTFOUND);
    db_close(db);
    free(path);
}

Test(db, finish_checks_the_pair_count)
{
    char *path = th_path(dir, "f.db");
    struct db *db = NULL;
    cr_assert_eq(db_open(path, DB_CREATE, &db), 0, "%s", sl_errmsg());
    int64_t id;
    cr_assert_eq(db_begin(db), 0);
    cr_assert_eq(db_corpus_create(db, "x", "train", "en", "de", "a", "b", &id), 0);
    cr_assert_eq(db_pair_insert(db, id, 1, "a", 1, "b", 1), 0);
    cr_assert_eq(db_corpus_finish(db, id, 2, 0), SL_EINVAL);
    cr_assert(strstr(sl_errmsg(), "not inserted as one run"), "%s", sl_errmsg());
    cr_assert_eq(db_rollback(db), 0);
    /* the rollback removed the corpus */
    struct db_corpus info;
    cr_assert_eq(db_corpus_get(db, "x", &info), SL_ENOTFOUND);
    db_close(db);
    free(path);
}

Test(db, transactions_roll_back)
{
    char *path = th_path(dir, "t.db");
    struct db *db = NULL;
    cr_assert_eq(db_open(path, DB_CREATE, &db), 0);
    int64_t id;
    cr_assert_eq(db_begin(db), 0);
    cr_assert_eq(db_begin(db), SL_EDB); /* no nesting */
    cr_assert_eq(db_corpus_create(db, "x", "train", "en", "de", "a", "b", &id), 0);
    cr_assert_eq(db_rollback(db), 0);
    cr_assert_eq(db_rollback(db), 0); /* nothing open: no-op */
    struct db_corpus info;
    cr_assert_eq(db_corpus_get(db, "x", &info), SL_ENOTFOUND);
    cr_assert_eq(db_commit(db), SL_EDB);
    db_close(db);
    db_close(NULL);
    free(path);
}

struct tok_seen {
    int n;
    int64_t ids[8], counts[8];
    char bytes[8][16];
    size_t lens[8];
    char kinds[8][8];
};

static int collect_token(void *ctx, int64_t token_id, const char *bytes, size_t len, int64_t count,
                         const char *kind)
{
    struct tok_seen *t = ctx;
    cr_assert_lt(t->n, 8);
    cr_assert_leq(len, 16);
    t->ids[t->n] = token_id;
    t->counts[t->n] = count;
    memcpy(t->bytes[t->n], bytes, len);
    t->lens[t->n] = len;
    snprintf(t->kinds[t->n], 8, "%s", kind);
    t->n++;
    return 0;
}

static int collect_merge(void *ctx, int64_t rank, int64_t left, int64_t right, int64_t result)
{
    int64_t *m = ctx; /* m[0] = count, then 4 per merge */
    int64_t k = m[0]++;
    m[1 + 4 * k] = rank;
    m[2 + 4 * k] = left;
    m[3 + 4 * k] = right;
    m[4 + 4 * k] = result;
    return 0;
}

Test(db, vocab_tokens_and_merges)
{
    char *path = th_path(dir, "v.db");
    struct db *db = NULL;
    cr_assert_eq(db_open(path, DB_CREATE, &db), 0);
    int64_t id = 0;
    cr_assert_eq(db_vocab_latest(db, "src", &id), SL_ENOTFOUND);
    cr_assert(strstr(sl_errmsg(), "no vocabulary") && strstr(sl_errmsg(), "run seqlite vocab"), "%s",
              sl_errmsg());

    int64_t vj, vt;
    cr_assert_eq(db_vocab_insert(db, "bpe", "joint", "NFKC", "{\"size\":8}", 5, &vj), 0, "%s", sl_errmsg());
    cr_assert_eq(db_vocab_insert(db, "bpe", "both", "NFKC", NULL, 5, &id), SL_EINVAL);
    cr_assert_eq(db_vocab_insert(db, "bpe", "src", "NFKC", "{not json", 5, &id), SL_EINVAL);
    /* tokens inserted out of order come back in id order, bytes exact */
    cr_assert_eq(db_token_insert(db, vj, 4, "\xff", 1, 0, "byte"), 0, "%s", sl_errmsg());
    cr_assert_eq(db_token_insert(db, vj, 0, "<pad>", 5, 0, "special"), 0, "%s", sl_errmsg());
    cr_assert_eq(db_token_insert(db, vj, 5, "\xe2\x96\x81" "ab", 5, 17, "normal"), 0, "%s", sl_errmsg());
    cr_assert_eq(db_token_insert(db, vj, 6, "", 0, 0, "normal"), 0, "%s", sl_errmsg());
    cr_assert_eq(db_token_insert(db, vj, 5, "x", 1, 0, "normal"), SL_EEXIST);
    cr_assert_eq(db_token_insert(db, vj, 7, "x", 1, 0, "weird"), SL_EINVAL);
    cr_assert_eq(db_token_insert(db, 999, 0, "x", 1, 0, "normal"), SL_ENOTFOUND);
    struct tok_seen t = {0};
    cr_assert_eq(db_tokens_foreach(db, vj, collect_token, &t), 0, "%s", sl_errmsg());
    cr_assert_eq(t.n, 4);
    cr_assert_eq(t.ids[0], 0);
    cr_assert_eq(t.ids[1], 4);
    cr_assert_eq(t.ids[2], 5);
    cr_assert_eq(t.ids[3], 6);
    cr_assert_eq(t.lens[1], 1);
    cr_assert_eq((unsigned char)t.bytes[1][0], 0xff);
    cr_assert_str_eq(t.kinds[1], "byte");
    cr_assert_eq(t.lens[2], 5);
    cr_assert(memcmp(t.bytes[2], "\xe2\x96\x81" "ab", 5) == 0);
    cr_assert_eq(t.counts[2], 17);
    cr_assert_eq(t.lens[3], 0);

    cr_assert_eq(db_merge_insert(db, vj, 1, 5, 6, 7), 0, "%s", sl_errmsg());
    cr_assert_eq(db_merge_insert(db, vj, 0, 4, 5, 6), 0, "%s", sl_errmsg());
    cr_assert_eq(db_merge_insert(db, vj, 0, 1, 1, 1), SL_EEXIST);
    int64_t m[9] = {0};
    cr_assert_eq(db_merges_foreach(db, vj, collect_merge, m), 0);
    cr_assert_eq(m[0], 2);
    int64_t want[8] = {0, 4, 5, 6, 1, 5, 6, 7};
    for (int i = 0; i < 8; i++)
        cr_assert_eq(m[1 + i], want[i], "merge field %d", i);

    struct db_vocab v;
    cr_assert_eq(db_vocab_get(db, vj, &v), 0);
    cr_assert_str_eq(v.kind, "bpe");
    cr_assert_str_eq(v.side, "joint");
    cr_assert_str_eq(v.normalization, "NFKC");
    cr_assert_str_eq(v.settings, "{\"size\":8}");
    cr_assert_eq(v.size, 5);
    db_vocab_clear(&v);
    cr_assert_eq(db_vocab_get(db, 777, &v), SL_ENOTFOUND);

    /* latest: a joint vocabulary serves both sides until a side-specific one is newer */
    cr_assert_eq(db_vocab_latest(db, "src", &id), 0);
    cr_assert_eq(id, vj);
    cr_assert_eq(db_vocab_insert(db, "bpe", "tgt", "none", NULL, 3, &vt), 0);
    cr_assert_eq(db_vocab_latest(db, "tgt", &id), 0);
    cr_assert_eq(id, vt);
    cr_assert_eq(db_vocab_latest(db, "src", &id), 0);
    cr_assert_eq(id, vj);
    cr_assert_eq(db_vocab_latest(db, "joint", &id), 0);
    cr_assert_eq(id, vj);
    cr_assert_eq(db_vocab_latest(db, NULL, &id), 0);
    cr_assert_eq(id, vt);
    db_close(db);
    free(path);
}

Test(db, token_display_surface)
{
    struct sbuf b;
    sbuf_init(&b);
    cr_assert_eq(db_token_display("ab\xe2\x96\x81", 5, &b), 0);
    cr_assert_str_eq(b.data, "ab\xe2\x96\x81");
    cr_assert_eq(db_token_display("\xe4", 1, &b), 0);
    cr_assert_str_eq(b.data, "<0xE4>");
    cr_assert_eq(db_token_display("a\xc3\x28", 3, &b), 0); /* broken 2-byte sequence */
    cr_assert_str_eq(b.data, "a<0xC3>(");
    cr_assert_eq(db_token_display("\0", 1, &b), 0);
    cr_assert_str_eq(b.data, "<0x00>");
    sbuf_free(&b);
}

Test(db, data_survives_reopen)
{
    char *path = th_path(dir, "r.db");
    struct db *db = NULL;
    cr_assert_eq(db_open(path, DB_CREATE, &db), 0);
    add_corpus(db, "keep", "test", 2, "k");
    db_close(db);
    cr_assert_eq(db_open(path, 0, &db), 0, "%s", sl_errmsg());
    struct collected c = {0};
    cr_assert_eq(db_pairs_foreach(db, "test", collect_pair, &c), 0);
    cr_assert_eq(c.n, 2);
    cr_assert_str_eq(c.text[1], "ks1|kt1");
    db_close(db);
    free(path);
}

struct set_ctx {
    struct db *db;
    int64_t n, last_id;
};

static int set_tokens_cb(void *vctx, int64_t pair_id, const char *src, size_t srclen, const char *tgt,
                         size_t tgtlen)
{
    struct set_ctx *c = vctx;
    (void)src, (void)tgt;
    cr_assert_gt(pair_id, c->last_id, "ids must increase");
    c->last_id = pair_id;
    c->n++;
    return db_pair_set_tokens(c->db, pair_id, (int64_t)srclen, (int64_t)tgtlen);
}

Test(db, set_tokens_while_iterating)
{
    char *path = th_path(dir, "it.db");
    struct db *db = NULL;
    cr_assert_eq(db_open(path, DB_CREATE, &db), 0);
    int64_t id;
    char text[300];
    memset(text, 'x', sizeof text);
    cr_assert_eq(db_begin(db), 0);
    cr_assert_eq(db_corpus_create(db, "big", "train", "en", "de", "a", "b", &id), 0);
    for (int i = 0; i < 2000; i++)
        cr_assert_eq(db_pair_insert(db, id, i + 1, text, 1 + (size_t)i % 300, text, 300 - (size_t)i % 300), 0);
    cr_assert_eq(db_corpus_finish(db, id, 2000, 0), 0, "%s", sl_errmsg());
    cr_assert_eq(db_commit(db), 0);
    cr_assert_eq(db_begin(db), 0);
    struct set_ctx c = {.db = db};
    cr_assert_eq(db_pairs_foreach(db, "train", set_tokens_cb, &c), 0, "%s", sl_errmsg());
    cr_assert_eq(db_commit(db), 0);
    cr_assert_eq(c.n, 2000);
    db_close(db);
    free(path);
}

/* An evaluation of a checkpoint deleted meanwhile (pruned by a training run) is stored, with no
 * checkpoint: its run, step, settings and scores stay. */
Test(db, evaluation_outlives_a_deleted_checkpoint)
{
    char *path = make_db("eval.db");
    struct db *db;
    cr_assert_eq(db_open(path, DB_CREATE, &db), 0, "%s", sl_errmsg());
    struct db_run r;
    memset(&r, 0, sizeof r);
    r.config = "{}";
    int64_t run_id, ck_id;
    cr_assert_eq(db_run_create(db, &r, &run_id), 0, "%s", sl_errmsg());
    struct db_checkpoint c;
    memset(&c, 0, sizeof c);
    c.run_id = run_id;
    c.step = 7;
    c.valid_ppl = c.valid_bleu = NAN;
    cr_assert_eq(db_ckpt_insert(db, &c, &ck_id), 0, "%s", sl_errmsg());
    for (int gone = 0; gone <= 1; gone++) {
        if (gone) { /* a newer checkpoint, then pruning to one: ck_id is deleted */
            int64_t newer;
            c.step = 8;
            cr_assert_eq(db_ckpt_insert(db, &c, &newer), 0, "%s", sl_errmsg());
            cr_assert_eq(db_ckpt_prune(db, run_id, 1), 0, "%s", sl_errmsg());
        }
        struct db_evaluation e = {.run_id = run_id, .checkpoint_id = ck_id, .step = 7, .split = "test",
                                  .beam = 4, .length_penalty = 0.6, .n_sentences = 1, .seconds = NAN,
                                  .sentences_per_s = NAN};
        int64_t eid;
        cr_assert_eq(db_begin(db), 0);
        cr_assert_eq(db_evaluation_insert(db, &e, &eid), 0, "%s", sl_errmsg());
        cr_assert_eq(e.checkpoint_id, gone ? 0 : ck_id);
        cr_assert_eq(db_translation_insert(db, eid, e.checkpoint_id, 0, 0, 4, 0.6, "hyp", -1.0), 0, "%s", sl_errmsg());
        cr_assert_eq(db_evaluation_metric_insert(db, eid, "bleu", 12.5, "sig"), 0, "%s", sl_errmsg());
        cr_assert_eq(db_commit(db), 0);
    }
    cr_assert_eq(db_evaluation_metric_insert(db, 99, "bleu", 1, NULL), SL_ENOTFOUND);
    db_close(db);
    free(path);
}

/* An evaluation stores the precision it decoded with (NULL: not recorded); anything but fp32, bf16 and
 * int8 is refused with a message naming it. */
Test(db, evaluation_precision_is_stored_and_checked)
{
    char *path = make_db("prec.db");
    struct db *db;
    cr_assert_eq(db_open(path, 0, &db), 0, "%s", sl_errmsg());
    static const char *const precs[] = {"int8", NULL, "bf16", "fp16"};
    for (int i = 0; i < 4; i++) {
        struct db_evaluation e = {.split = "test", .beam = 1, .length_penalty = 0, .precision = precs[i],
                                  .seconds = NAN, .sentences_per_s = NAN};
        int64_t eid = 0;
        cr_assert_eq(db_begin(db), 0);
        int rc = db_evaluation_insert(db, &e, &eid);
        if (i < 3) {
            cr_assert_eq(rc, 0, "%s", sl_errmsg());
            cr_assert_eq(db_commit(db), 0);
        } else {
            cr_assert_eq(rc, SL_EINVAL);
            cr_assert(strstr(sl_errmsg(), "precision 'fp16'"), "%s", sl_errmsg());
            cr_assert_eq(db_rollback(db), 0);
        }
    }
    db_close(db);
    sqlite3 *h;
    cr_assert_eq(sqlite3_open(path, &h), SQLITE_OK);
    sqlite3_stmt *st;
    cr_assert_eq(sqlite3_prepare_v2(h, "SELECT group_concat(coalesce(precision, 'NULL'), ' ') FROM"
                                       " (SELECT precision FROM evaluation ORDER BY id)", -1, &st, NULL),
                 SQLITE_OK, "%s", sqlite3_errmsg(h));
    cr_assert_eq(sqlite3_step(st), SQLITE_ROW);
    cr_assert_str_eq((const char *)sqlite3_column_text(st, 0), "int8 NULL bf16");
    sqlite3_finalize(st);
    sqlite3_close(h);
    free(path);
}

static void set_owner(const char *path, const char *owner, const char *age_s)
{
    sqlite3 *h;
    char sql[256];
    cr_assert_eq(sqlite3_open(path, &h), SQLITE_OK);
    snprintf(sql, sizeof sql,
             "UPDATE run SET owner = '%s', heartbeat_at = strftime('%%Y-%%m-%%dT%%H:%%M:%%fZ', 'now', '-%s seconds')",
             owner, age_s);
    cr_assert_eq(sqlite3_exec(h, sql, NULL, NULL, NULL), SQLITE_OK, "%s", sqlite3_errmsg(h));
    sqlite3_close(h);
}

/* A run is owned by one live process: a live owner's lease is refused to others; a dead owner's (its
 * pid gone on this host, or its heartbeat stale) is taken over; released leases are free. */
Test(db, run_lease)
{
    char *path = make_db("lease.db");
    struct db *db;
    cr_assert_eq(db_open(path, 0, &db), 0, "%s", sl_errmsg());
    struct db_run r;
    memset(&r, 0, sizeof r);
    r.config = "{}";
    int64_t id;
    cr_assert_eq(db_run_create(db, &r, &id), 0, "%s", sl_errmsg());
    enum db_run_liveness live;
    cr_assert_eq(db_run_liveness(db, id, &live, NULL, 0), 0);
    cr_assert_eq(live, DB_RUN_INTERRUPTED, "a running run nobody owns is interrupted");
    cr_assert_eq(db_run_claim(db, id), 0, "%s", sl_errmsg());
    cr_assert_eq(db_run_claim(db, id), 0, "the owner may claim again");
    cr_assert_eq(db_run_heartbeat(db, id), 0, "%s", sl_errmsg());
    cr_assert_eq(db_run_liveness(db, id, &live, NULL, 0), 0);
    cr_assert_eq(live, DB_RUN_ALIVE);
    char self[128], host[160];
    db_run_owner_self(self, sizeof self);
    snprintf(host, sizeof host, "1%s", strchr(self, '@')); /* pid 1 of this host: alive */
    set_owner(path, host, "1");
    cr_assert_eq(db_run_claim(db, id), SL_EBUSY);
    cr_assert(strstr(sl_errmsg(), host), "%s", sl_errmsg());
    cr_assert_eq(db_run_heartbeat(db, id), SL_EBUSY, "the lease was taken over: stop");
    set_owner(path, host, "3600"); /* alive pid, but no heartbeat for an hour */
    cr_assert_eq(db_run_claim(db, id), 0, "%s", sl_errmsg());
    snprintf(host, sizeof host, "999999999%s", strchr(self, '@')); /* no such pid */
    set_owner(path, host, "1");
    cr_assert_eq(db_run_liveness(db, id, &live, NULL, 0), 0);
    cr_assert_eq(live, DB_RUN_INTERRUPTED);
    cr_assert_eq(db_run_claim(db, id), 0, "%s", sl_errmsg());
    set_owner(path, "12@another-host", "1"); /* another host, fresh heartbeat: alive */
    cr_assert_eq(db_run_claim(db, id), SL_EBUSY);
    set_owner(path, "12@another-host", "61");
    cr_assert_eq(db_run_claim(db, id), 0, "%s", sl_errmsg());
    cr_assert_eq(db_run_release(db, id), 0);
    cr_assert_eq(db_run_update(db, id, "done", 0, 0, NULL), 0);
    cr_assert_eq(db_run_liveness(db, id, &live, NULL, 0), 0);
    cr_assert_eq(live, DB_RUN_ENDED);
    db_close(db);
    free(path);
}

/* ---- docs/schema.md against the live schema ---- */

#define SCHEMA_MAX 256

/* (table, column) pairs, in the order found. */
struct schema {
    int n;
    char table[SCHEMA_MAX][32];
    char column[SCHEMA_MAX][32];
};

static void schema_add(struct schema *s, const char *table, size_t tlen, const char *col, size_t clen)
{
    cr_assert_lt(s->n, SCHEMA_MAX, "more than %d columns", SCHEMA_MAX);
    cr_assert(tlen > 0 && tlen < 32 && clen > 0 && clen < 32, "bad name '%.*s.%.*s'", (int)tlen, table, (int)clen,
              col);
    snprintf(s->table[s->n], 32, "%.*s", (int)tlen, table);
    snprintf(s->column[s->n], 32, "%.*s", (int)clen, col);
    s->n++;
}

static int schema_has(const struct schema *s, const char *table, const char *col)
{
    for (int i = 0; i < s->n; i++)
        if (strcmp(s->table[i], table) == 0 && (!col || strcmp(s->column[i], col) == 0))
            return 1;
    return 0;
}

static int is_blank(char c) { return c == ' ' || c == '\t'; }

/* Reads the tables documented in a schema.md text: a "### NAME: ..." heading starts table NAME, and
 * each row "| COLUMNS | meaning |" of the table under it names its columns (COLUMNS may list several:
 * "id, name"); the header row ("| column |") and the rule row ("| --- |") are skipped. */
static void schema_parse_doc(const char *text, struct schema *out)
{
    const char *table = NULL;
    size_t tlen = 0;
    for (const char *line = text; *line;) {
        const char *end = strchr(line, '\n');
        if (!end)
            end = line + strlen(line);
        if (strncmp(line, "### ", 4) == 0) {
            table = line + 4;
            const char *colon = memchr(table, ':', (size_t)(end - table));
            tlen = colon ? (size_t)(colon - table) : 0;
            cr_assert(tlen > 0, "docs/schema.md: heading '%.*s' lacks 'NAME:'", (int)(end - line), line);
        } else if (strncmp(line, "#", 1) == 0) {
            table = NULL;
        } else if (table && line[0] == '|') {
            const char *cell = line + 1, *bar = memchr(cell, '|', (size_t)(end - cell));
            cr_assert(bar, "docs/schema.md: row '%.*s' has one cell", (int)(end - line), line);
            while (cell < bar && is_blank(*cell))
                cell++;
            if (strncmp(cell, "column ", 7) != 0 && strncmp(cell, "---", 3) != 0) {
                while (cell < bar) {
                    const char *comma = memchr(cell, ',', (size_t)(bar - cell));
                    const char *stop = comma ? comma : bar, *e = stop;
                    while (e > cell && is_blank(e[-1]))
                        e--;
                    schema_add(out, table, tlen, cell, (size_t)(e - cell));
                    cell = comma ? comma + 1 : bar;
                    while (cell < bar && is_blank(*cell))
                        cell++;
                }
            }
        }
        line = *end ? end + 1 : end;
    }
}

static int schema_collect(void *ctx, const char *table, const char *column)
{
    schema_add(ctx, table, strlen(table), column, strlen(column));
    return 0;
}

/* Every difference between the documented and the live schema, "; "-separated ("" when none). */
static void schema_diff(const struct schema *doc, const struct schema *live, struct sbuf *msg)
{
    sbuf_reset(msg);
    for (int i = 0; i < doc->n; i++) {
        if (i > 0 && strcmp(doc->table[i], doc->table[i - 1]) == 0 && !schema_has(live, doc->table[i], NULL))
            continue; /* the table is reported once */
        if (!schema_has(live, doc->table[i], NULL))
            sbuf_printf(msg, "docs/schema.md documents table %s, which the database does not have; ", doc->table[i]);
        else if (!schema_has(live, doc->table[i], doc->column[i]))
            sbuf_printf(msg, "docs/schema.md documents column %s.%s, which the database does not have; ",
                        doc->table[i], doc->column[i]);
    }
    for (int i = 0; i < live->n; i++) {
        if (i > 0 && strcmp(live->table[i], live->table[i - 1]) == 0 && !schema_has(doc, live->table[i], NULL))
            continue;
        if (!schema_has(doc, live->table[i], NULL))
            sbuf_printf(msg, "table %s is not documented in docs/schema.md; ", live->table[i]);
        else if (!schema_has(doc, live->table[i], live->column[i]))
            sbuf_printf(msg, "column %s.%s is not documented in docs/schema.md; ", live->table[i], live->column[i]);
    }
}

/* The columns of a freshly created database. */
static void schema_live(struct schema *live)
{
    char *path = th_path(dir, "schema.db");
    struct db *db = NULL;
    cr_assert_eq(db_open(path, DB_CREATE, &db), 0, "%s", sl_errmsg());
    cr_assert_eq(db_schema_columns(db, schema_collect, live), 0, "%s", sl_errmsg());
    db_close(db);
    free(path);
}

Test(db, schema_doc_matches_the_live_schema)
{
    size_t n;
    char *text = th_read_file(SEQLITE_SRCDIR "/docs/schema.md", &n);
    cr_assert(text, "cannot read %s", SEQLITE_SRCDIR "/docs/schema.md");
    static struct schema doc, live;
    schema_parse_doc(text, &doc);
    schema_live(&live);
    cr_assert_geq(live.n, 11, "only %d columns in the live schema", live.n);
    const char *tables[] = {"corpus", "pair", "vocab", "token", "merge", "run", "train_log", "checkpoint",
                            "tensor", "metric", "translation"};
    for (size_t i = 0; i < sizeof tables / sizeof tables[0]; i++)
        cr_assert(schema_has(&live, tables[i], NULL), "the live schema has no table %s", tables[i]);
    struct sbuf msg;
    sbuf_init(&msg);
    schema_diff(&doc, &live, &msg);
    cr_assert_eq(msg.len, 0, "%s", msg.data);
    sbuf_free(&msg);
    free(text);
}

Test(db, schema_doc_check_names_what_differs)
{
    static struct schema doc, live;
    schema_parse_doc("## Schema\n\n### corpus: one corpus\n\n| column | meaning |\n| --- | --- |\n"
                     "| id, name , colour | x |\n| split | y |\n\n### pear: no such table\n\n| id | z |\n"
                     "\n## Examples\n\n| not | a table row |\n",
                     &doc);
    cr_assert_eq(doc.n, 5);
    cr_assert_str_eq(doc.column[1], "name");
    cr_assert_str_eq(doc.column[2], "colour");
    cr_assert_str_eq(doc.table[4], "pear");
    schema_live(&live);
    struct sbuf msg;
    sbuf_init(&msg);
    schema_diff(&doc, &live, &msg);
    const char *want[] = {"documents column corpus.colour,", "documents table pear,",
                          "column corpus.src_lang is not documented", "table pair is not documented"};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        cr_assert(strstr(msg.data, want[i]), "'%s' lacks '%s'", msg.data, want[i]);
    cr_assert_null(strstr(msg.data, "corpus.name"), "%s", msg.data);
    cr_assert_null(strstr(msg.data, "corpus.split"), "%s", msg.data);
    sbuf_free(&msg);
}

/* A schema-1 database (the run's options in columns and in config) is upgraded in place: the options
 * are then stored once, in config, and the same columns read them back, generated from it. */
Test(db, schema_1_run_options_become_generated_columns)
{
    char *tdir = th_tmpdir();
    char *path = th_path(tdir, "v1.db");
    sqlite3 *h;
    cr_assert_eq(sqlite3_open(path, &h), SQLITE_OK);
    cr_assert_eq(sqlite3_exec(h, db_migration_script(0), NULL, NULL, NULL), SQLITE_OK, "%s", sqlite3_errmsg(h));
    char pragmas[96];
    snprintf(pragmas, sizeof pragmas, "PRAGMA application_id = %d; PRAGMA user_version = 1;", DB_APPLICATION_ID);
    cr_assert_eq(sqlite3_exec(h, pragmas, NULL, NULL, NULL), SQLITE_OK);
    cr_assert_eq(sqlite3_exec(h,
                              "INSERT INTO run (name, seed, layers, emb, hidden, dropout, batch, batch_tokens, lr, clip,"
                              " epochs, steps, max_len, reverse_source, threads, valid_every, save_every, keep, config)"
                              " VALUES ('old', 5, 3, 32, 48, 0.25, 16, NULL, 0.002, 4.5, 7, NULL, 50, 1, 2, 100, 200,"
                              " 4, '{\"seed\":5,\"layers\":3,\"emb\":32,\"hidden\":48,\"dropout\":0.25,"
                              "\"batch\":16,\"batch_tokens\":0,\"lr\":0.002,\"clip\":4.5,\"epochs\":7,"
                              "\"steps\":0,\"max_len\":50,\"reverse_source\":1,\"valid_every\":100,"
                              "\"save_every\":200,\"keep\":4}')",
                              NULL, NULL, NULL),
                 SQLITE_OK, "%s", sqlite3_errmsg(h));
    sqlite3_close(h);
    struct db *db;
    cr_assert_eq(db_open(path, 0, &db), 0, "%s", sl_errmsg());
    struct db_run r;
    cr_assert_eq(db_run_get(db, 1, &r), 0, "%s", sl_errmsg());
    cr_assert_eq(r.seed, 5);
    cr_assert_eq(r.layers, 3);
    cr_assert_eq(r.emb, 32);
    cr_assert_eq(r.hidden, 48);
    cr_assert(r.dropout == 0.25 && r.lr == 0.002 && r.clip == 4.5);
    cr_assert_eq(r.batch, 16);
    cr_assert_eq(r.batch_tokens, 0);
    cr_assert_eq(r.epochs, 7);
    cr_assert_eq(r.steps, 0);
    cr_assert_eq(r.max_len, 50);
    cr_assert_eq(r.reverse_source, 1);
    cr_assert_eq(r.threads, 2);
    cr_assert_eq(r.valid_every, 100);
    cr_assert_eq(r.save_every, 200);
    cr_assert_eq(r.keep, 4);
    db_run_clear(&r);
    db_close(db);
    /* the columns are generated from config: changing config changes them, and they cannot be written */
    cr_assert_eq(sqlite3_open(path, &h), SQLITE_OK);
    sqlite3_stmt *st;
    cr_assert_eq(sqlite3_prepare_v2(h, "PRAGMA user_version", -1, &st, NULL), SQLITE_OK);
    cr_assert_eq(sqlite3_step(st), SQLITE_ROW);
    cr_assert_eq(sqlite3_column_int(st, 0), DB_SCHEMA_VERSION);
    sqlite3_finalize(st);
    cr_assert_eq(sqlite3_exec(h, "UPDATE run SET config = json_set(config, '$.layers', 6)", NULL, NULL, NULL),
                 SQLITE_OK);
    cr_assert_eq(sqlite3_prepare_v2(h, "SELECT layers, typeof(lr), steps IS NULL FROM run", -1, &st, NULL),
                 SQLITE_OK);
    cr_assert_eq(sqlite3_step(st), SQLITE_ROW);
    cr_assert_eq(sqlite3_column_int(st, 0), 6);
    cr_assert_str_eq((const char *)sqlite3_column_text(st, 1), "real");
    cr_assert_eq(sqlite3_column_int(st, 2), 1);
    sqlite3_finalize(st);
    cr_assert_neq(sqlite3_exec(h, "UPDATE run SET layers = 1", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(h);
    th_rmdir(tdir);
    free(path);
    free(tdir);
}

static int64_t count_rows(sqlite3 *h, const char *sql)
{
    sqlite3_stmt *st;
    cr_assert_eq(sqlite3_prepare_v2(h, sql, -1, &st, NULL), SQLITE_OK, "%s: %s", sql, sqlite3_errmsg(h));
    cr_assert_eq(sqlite3_step(st), SQLITE_ROW, "%s", sql);
    int64_t n = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return n;
}

/* A new database file at path with the schema of version `from`, built by the migrations a build of that
 * version ran, left open (foreign keys on) for the caller's rows. */
static sqlite3 *create_at_schema(const char *path, int from)
{
    sqlite3 *h;
    cr_assert_eq(sqlite3_open(path, &h), SQLITE_OK);
    cr_assert_eq(sqlite3_exec(h, "PRAGMA foreign_keys = ON", NULL, NULL, NULL), SQLITE_OK);
    for (int v = 0; v < from; v++)
        cr_assert_eq(sqlite3_exec(h, db_migration_script(v), NULL, NULL, NULL), SQLITE_OK, "%s", sqlite3_errmsg(h));
    char pragmas[96];
    snprintf(pragmas, sizeof pragmas, "PRAGMA application_id = %d; PRAGMA user_version = %d;", DB_APPLICATION_ID,
             from);
    cr_assert_eq(sqlite3_exec(h, pragmas, NULL, NULL, NULL), SQLITE_OK);
    return h;
}

/* Builds a database of schema `from` with a row in every table, opens it (which upgrades it) and checks
 * that every row is kept and the old evaluation scores are grouped. */
static void upgrade_keeps_every_row(int from)
{
    char *tdir = th_tmpdir();
    char *path = th_path(tdir, from == 1 ? "v1.db" : "v2.db");
    sqlite3 *h = create_at_schema(path, from);
    const char *rows =
        "INSERT INTO corpus (id, name, split, src_lang, tgt_lang, src_path, tgt_path, n_pairs, first_pair_id,"
        " last_pair_id) VALUES (1, 'test', 'test', 'en', 'de', 't.en', 't.de', 2, 1, 2);"
        "INSERT INTO pair (id, corpus_id, line, src, tgt) VALUES (1, 1, 1, 'a', 'b'), (2, 1, 2, 'c', 'd');"
        "INSERT INTO vocab (id, kind, side, size, normalization) VALUES (1, 'bpe', 'joint', 4, 'NFKC');"
        "INSERT INTO token (vocab_id, id, surface, bytes, count, kind) VALUES (1, 0, '<pad>', x'', 0, 'special');"
        "INSERT INTO merge (vocab_id, rank, left_id, right_id, result_id) VALUES (1, 0, 0, 0, 0);"
        "INSERT INTO run (id, name, src_vocab_id, tgt_vocab_id, config) VALUES (1, 'r', 1, 1, '{\"layers\":1}');"
        "INSERT INTO train_log (run_id, step, epoch, loss) VALUES (1, 10, 0, 2.5);"
        "INSERT INTO checkpoint (id, run_id, step, epoch) VALUES (1, 1, 10, 0);"
        "INSERT INTO tensor (checkpoint_id, name, shape, data) VALUES (1, 'out.b', '[1]', x'00000000');"
        "INSERT INTO metric (run_id, step, split, name, value) VALUES (1, 10, 'valid', 'ppl', 50);"
        "INSERT INTO metric (run_id, checkpoint_id, step, split, name, value, created_at)"
        " VALUES (1, 1, 10, 'test', 'bleu', 3.5, '2026-01-01T00:00:00.000Z'),"
        "        (1, 1, 10, 'test', 'chrf', 20.5, '2026-01-01T00:00:00.001Z'),"
        "        (1, 1, 10, 'test', 'bleu', 3.7, '2026-01-02T00:00:00.000Z'),"
        "        (1, 1, 10, 'test', 'chrf', 20.7, '2026-01-02T00:00:00.000Z');"
        "INSERT INTO translation (checkpoint_id, corpus_id, pair_id, beam, hypothesis) VALUES (1, 1, 1, 5, 'x');";
    cr_assert_eq(sqlite3_exec(h, rows, NULL, NULL, NULL), SQLITE_OK, "%s", sqlite3_errmsg(h));
    static const char *const tables[] = {"corpus", "pair",   "vocab",  "token",  "merge",      "run",
                                         "train_log", "checkpoint", "tensor", "metric", "translation"};
    int64_t before[sizeof tables / sizeof tables[0]];
    char sql[128];
    for (size_t i = 0; i < sizeof tables / sizeof tables[0]; i++) {
        snprintf(sql, sizeof sql, "SELECT count(*) FROM %s", tables[i]);
        before[i] = count_rows(h, sql);
        cr_assert_gt(before[i], 0, "%s", tables[i]);
    }
    sqlite3_close(h);
    struct db *db;
    cr_assert_eq(db_open(path, 0, &db), 0, "%s", sl_errmsg());
    db_close(db);
    cr_assert_eq(sqlite3_open(path, &h), SQLITE_OK);
    cr_assert_eq(count_rows(h, "PRAGMA user_version"), DB_SCHEMA_VERSION);
    for (size_t i = 0; i < sizeof tables / sizeof tables[0]; i++) {
        snprintf(sql, sizeof sql, "SELECT count(*) FROM %s", tables[i]);
        cr_assert_eq(count_rows(h, sql), before[i], "%s lost rows", tables[i]);
    }
    cr_assert_eq(count_rows(h, "SELECT count(*) FROM evaluation"), 2);
    cr_assert_eq(count_rows(h, "SELECT count(DISTINCT evaluation_id) FROM metric WHERE split = 'test'"), 2);
    cr_assert_eq(count_rows(h, "SELECT count(*) FROM metric WHERE split = 'test' AND evaluation_id IS NULL"), 0);
    cr_assert_eq(count_rows(h, "SELECT count(*) FROM metric m JOIN evaluation e ON e.id = m.evaluation_id"
                               " WHERE e.checkpoint_id = m.checkpoint_id AND e.step = 10"), 4);
    cr_assert_eq(count_rows(h, "SELECT evaluation_id IS NULL FROM metric WHERE name = 'ppl'"), 1);
    cr_assert_eq(count_rows(h, "SELECT count(*) FROM pragma_foreign_key_check"), 0);
    sqlite3_close(h);
    th_rmdir(tdir);
    free(path);
    free(tdir);
}

/* A schema-2 (and a schema-1) database with a row in every table is upgraded to the current schema in
 * place and keeps every row; the scores `seqlite eval` stored then become evaluations (a bleu row and its
 * chrf row each), training's validation scores stay training's (no evaluation). */
Test(db, schema_2_upgrade_keeps_every_row_and_groups_old_evaluations) { upgrade_keeps_every_row(2); }
Test(db, schema_1_upgrade_keeps_every_row) { upgrade_keeps_every_row(1); }

/* A schema-3 database with a stored evaluation (its translations and scores linked to it) is upgraded
 * in place to schema 4: every row stays, the evaluation keeps its settings and gets precision NULL (not
 * recorded), and the new column takes only fp32, bf16 or int8. */
Test(db, schema_3_upgrade_keeps_evaluations_with_precision_not_recorded)
{
    char *path = th_path(dir, "v3.db");
    sqlite3 *h = create_at_schema(path, 3);
    const char *rows =
        "INSERT INTO corpus (id, name, split, src_lang, tgt_lang, src_path, tgt_path, n_pairs, first_pair_id,"
        " last_pair_id) VALUES (1, 'test', 'test', 'en', 'de', 't.en', 't.de', 2, 1, 2);"
        "INSERT INTO pair (id, corpus_id, line, src, tgt) VALUES (1, 1, 1, 'a', 'b'), (2, 1, 2, 'c', 'd');"
        "INSERT INTO vocab (id, kind, side, size, normalization) VALUES (1, 'bpe', 'joint', 4, 'NFKC');"
        "INSERT INTO run (id, name, src_vocab_id, tgt_vocab_id, config) VALUES (1, 'r', 1, 1, '{\"layers\":1}');"
        "INSERT INTO checkpoint (id, run_id, step, epoch) VALUES (1, 1, 10, 0);"
        "INSERT INTO evaluation (id, run_id, checkpoint_id, step, split, beam, length_penalty, max_sentences,"
        " n_sentences, seconds, sentences_per_s) VALUES (1, 1, 1, 10, 'test', 4, 0.6, 2, 2, 0.5, 4.0);"
        "INSERT INTO metric (run_id, checkpoint_id, step, split, name, value, evaluation_id)"
        " VALUES (1, 1, 10, 'test', 'bleu', 3.5, 1), (1, 1, 10, 'test', 'chrf', 20.5, 1);"
        "INSERT INTO translation (checkpoint_id, corpus_id, pair_id, beam, hypothesis, evaluation_id)"
        " VALUES (1, 1, 1, 4, 'x', 1), (1, 1, 2, 4, 'y', 1);";
    cr_assert_eq(sqlite3_exec(h, rows, NULL, NULL, NULL), SQLITE_OK, "%s", sqlite3_errmsg(h));
    cr_assert_eq(count_rows(h, "SELECT count(*) FROM pragma_table_info('evaluation') WHERE name = 'precision'"), 0);
    sqlite3_close(h);

    struct db *db;
    cr_assert_eq(db_open(path, 0, &db), 0, "%s", sl_errmsg());
    db_close(db);
    cr_assert_eq(sqlite3_open(path, &h), SQLITE_OK);
    cr_assert_eq(count_rows(h, "PRAGMA user_version"), DB_SCHEMA_VERSION);
    cr_assert_eq(count_rows(h, "SELECT count(*) FROM pragma_table_info('evaluation') WHERE name = 'precision'"
                               " AND type = 'TEXT'"), 1);
    cr_assert_eq(count_rows(h, "SELECT count(*) FROM evaluation WHERE id = 1 AND precision IS NULL AND beam = 4 AND"
                               " length_penalty = 0.6 AND max_sentences = 2 AND n_sentences = 2 AND seconds = 0.5"
                               " AND sentences_per_s = 4.0 AND checkpoint_id = 1 AND run_id = 1"), 1);
    cr_assert_eq(count_rows(h, "SELECT count(*) FROM evaluation"), 1);
    cr_assert_eq(count_rows(h, "SELECT count(*) FROM metric WHERE evaluation_id = 1"), 2);
    cr_assert_eq(count_rows(h, "SELECT count(*) FROM translation WHERE evaluation_id = 1"), 2);
    cr_assert_eq(count_rows(h, "SELECT count(*) FROM pair"), 2);
    cr_assert_eq(count_rows(h, "SELECT count(*) FROM pragma_foreign_key_check"), 0);
    /* the new column's check: the three precisions and NULL, nothing else */
    cr_assert_eq(sqlite3_exec(h, "UPDATE evaluation SET precision = 'int8'", NULL, NULL, NULL), SQLITE_OK,
                 "%s", sqlite3_errmsg(h));
    cr_assert_eq(sqlite3_exec(h, "UPDATE evaluation SET precision = 'fp16'", NULL, NULL, NULL), SQLITE_CONSTRAINT);
    cr_assert_eq(count_rows(h, "SELECT count(*) FROM evaluation WHERE precision = 'int8'"), 1);
    sqlite3_close(h);
    /* opening again changes nothing: the migration ran once */
    cr_assert_eq(db_open(path, 0, &db), 0, "%s", sl_errmsg());
    db_close(db);
    cr_assert_eq(sqlite3_open(path, &h), SQLITE_OK);
    cr_assert_eq(count_rows(h, "PRAGMA user_version"), DB_SCHEMA_VERSION);
    cr_assert_eq(count_rows(h, "SELECT count(*) FROM evaluation WHERE precision = 'int8'"), 1);
    sqlite3_close(h);
    free(path);
}

/* A schema-4 database is upgraded in place to schema 5, whose tensor table also takes dtype 'bf16': the
 * tensors stay as they were (the table's CREATE statement is edited, nothing is copied), the file passes
 * SQLite's integrity check, another connection open meanwhile sees the new constraint, nothing but f32
 * and bf16 is taken, and a tensor table that is not seqlite's is refused without changing the file. */
Test(db, schema_4_upgrade_lets_tensors_be_bf16_and_keeps_them)
{
    char *path = th_path(dir, "v4.db");
    sqlite3 *h = create_at_schema(path, 4);
    const char *rows =
        "INSERT INTO vocab (id, kind, side, size, normalization) VALUES (1, 'bpe', 'joint', 4, 'NFKC');"
        "INSERT INTO run (id, name, src_vocab_id, tgt_vocab_id, config) VALUES (1, 'r', 1, 1, '{\"layers\":1}');"
        "INSERT INTO checkpoint (id, run_id, step, epoch) VALUES (1, 1, 10, 0);"
        "INSERT INTO tensor (checkpoint_id, name, shape, data) VALUES (1, 'out.b', '[2]', x'0000803f00000040');";
    cr_assert_eq(sqlite3_exec(h, rows, NULL, NULL, NULL), SQLITE_OK, "%s", sqlite3_errmsg(h));
    cr_assert_eq(sqlite3_exec(h, "INSERT INTO tensor (checkpoint_id, name, shape, dtype, data)"
                                 " VALUES (1, 'w', '[1]', 'bf16', x'803f')", NULL, NULL, NULL),
                 SQLITE_CONSTRAINT, "schema 4 takes f32 only");
    int64_t cookie = count_rows(h, "PRAGMA schema_version");
    /* h stays open over the upgrade: it must see the new schema afterwards */
    struct db *db;
    cr_assert_eq(db_open(path, 0, &db), 0, "%s", sl_errmsg());
    db_close(db);
    cr_assert_gt(count_rows(h, "PRAGMA schema_version"), cookie, "the schema cookie was bumped");
    cr_assert_eq(count_rows(h, "PRAGMA user_version"), 5);
    cr_assert_eq(count_rows(h, "PRAGMA writable_schema"), 0);
    cr_assert_eq(sqlite3_exec(h, "INSERT INTO tensor (checkpoint_id, name, shape, dtype, data)"
                                 " VALUES (1, 'w', '[1]', 'bf16', x'803f')", NULL, NULL, NULL),
                 SQLITE_OK, "%s", sqlite3_errmsg(h));
    cr_assert_eq(sqlite3_exec(h, "INSERT INTO tensor (checkpoint_id, name, shape, dtype, data)"
                                 " VALUES (1, 'v', '[1]', 'i8', x'01')", NULL, NULL, NULL),
                 SQLITE_CONSTRAINT);
    cr_assert_eq(count_rows(h, "SELECT count(*) FROM tensor WHERE name = 'out.b' AND dtype = 'f32'"
                               " AND data = x'0000803f00000040'"), 1);
    cr_assert_eq(count_rows(h, "SELECT count(*) FROM pragma_integrity_check WHERE integrity_check <> 'ok'"), 0);
    sqlite3_close(h);
    /* and the values read back: f32 as stored, bf16 as the float it is the upper half of */
    cr_assert_eq(db_open(path, 0, &db), 0, "%s", sl_errmsg());
    float v[2];
    const size_t two = 2, one = 1;
    cr_assert_eq(db_tensor_read(db, 1, "out.b", 1, &two, v, 2), 0, "%s", sl_errmsg());
    cr_assert(v[0] == 1.0f && v[1] == 2.0f);
    cr_assert_eq(db_tensor_read(db, 1, "w", 1, &one, v, 1), 0, "%s", sl_errmsg());
    cr_assert(v[0] == 1.0f, "%g", (double)v[0]);
    db_close(db);

    /* a schema-4 file whose tensor table was defined otherwise is not upgraded */
    char *other = th_path(dir, "v4other.db");
    h = create_at_schema(other, 4);
    cr_assert_eq(sqlite3_exec(h, "DROP TABLE tensor; CREATE TABLE tensor (checkpoint_id INTEGER, name TEXT,"
                                 " shape TEXT, dtype TEXT CHECK (dtype = 'f32'), data BLOB) STRICT", NULL, NULL, NULL),
                 SQLITE_OK, "%s", sqlite3_errmsg(h));
    sqlite3_close(h);
    cr_assert_neq(db_open(other, 0, &db), 0);
    cr_assert(strstr(sl_errmsg(), "the tensor table's definition is not seqlite's"), "%s", sl_errmsg());
    cr_assert_eq(sqlite3_open(other, &h), SQLITE_OK);
    cr_assert_eq(count_rows(h, "PRAGMA user_version"), 4, "unchanged");
    cr_assert_eq(count_rows(h, "PRAGMA writable_schema"), 0);
    sqlite3_close(h);
    free(other);
    free(path);
}

/* A path that looks like an SQLite URI is a path: the database is the file of that name, on disk. */
Test(db, a_path_starting_with_file_colon_is_a_file)
{
    char *tdir = th_tmpdir();
    cr_assert_eq(chdir(tdir), 0);
    struct db *db;
    cr_assert_eq(db_open("file:x.db?mode=memory", DB_CREATE, &db), 0, "%s", sl_errmsg());
    db_close(db);
    cr_assert_eq(access("file:x.db?mode=memory", F_OK), 0, "no file of that name was written");
    cr_assert_neq(access("x.db", F_OK), 0);
    cr_assert_eq(db_open("file:x.db?mode=memory", 0, &db), 0, "%s", sl_errmsg()); /* and it opens again */
    db_close(db);
    cr_assert_eq(chdir("/"), 0);
    th_rmdir(tdir);
    free(tdir);
}
