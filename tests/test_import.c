/* tests/test_import.c: corpus/import.c: the strict UTF-8 validator, default names and languages, a
 * successful import (BOM and CR stripped, line numbers, skipped pairs), every failure leaving the
 * database byte-for-byte unchanged, and `seqlite import` through the command line. */
#include <criterion/criterion.h>

#include "corpus/db.h"
#include "corpus/import.h"
#include "tests/helpers.h"
#include "util/err.h"
#include "util/utf8.h"

#include <fcntl.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>

static char *dir;

static void setup(void) { dir = th_tmpdir(); }
static void teardown(void)
{
    th_rmdir(dir);
    free(dir);
}

TestSuite(utf8);
TestSuite(import, .init = setup, .fini = teardown);
TestSuite(import_cli, .init = setup, .fini = teardown);

/* ---- validator ---- */

static int bad_at(const char *s, size_t n)
{
    size_t bad = 12345;
    if (utf8_valid(s, n, &bad))
        return -1;
    return (int)bad;
}

Test(utf8, valid_sequences)
{
    cr_assert_eq(bad_at("", 0), -1);
    cr_assert_eq(bad_at("plain ascii text, longer than eight", 35), -1);
    cr_assert_eq(bad_at("\xc2\x80\xdf\xbf", 4), -1);                 /* U+0080, U+07FF */
    cr_assert_eq(bad_at("\xe0\xa0\x80\xed\x9f\xbf\xef\xbf\xbf", 9), -1); /* U+0800, U+D7FF, U+FFFF */
    cr_assert_eq(bad_at("\xee\x80\x80", 3), -1);                     /* U+E000 after the surrogates */
    cr_assert_eq(bad_at("\xf0\x90\x80\x80", 4), -1);                 /* U+10000 */
    cr_assert_eq(bad_at("\xf0\x9f\x98\x80", 4), -1);                 /* U+1F600 emoji */
    cr_assert_eq(bad_at("\xf4\x8f\xbf\xbf", 4), -1);                 /* U+10FFFF, the last */
    cr_assert_eq(bad_at("Gr\xc3\xbc\xc3\x9f" "e", 7), -1);
    cr_assert_eq(utf8_seqlen((const unsigned char *)"\xf0\x9f\x98\x80", 4), 4);
    cr_assert_eq(utf8_seqlen((const unsigned char *)"\xe2\x82\xac", 3), 3);
    cr_assert_eq(utf8_seqlen((const unsigned char *)"\xc3\xa9", 2), 2);
    cr_assert_eq(utf8_seqlen((const unsigned char *)"a", 1), 1);
}

Test(utf8, overlong_forms)
{
    cr_assert_eq(bad_at("\xc0\xaf", 2), 0);             /* '/' in two bytes */
    cr_assert_eq(bad_at("\xc1\xbf", 2), 0);
    cr_assert_eq(bad_at("ab\xe0\x80\xaf", 5), 2);       /* '/' in three bytes */
    cr_assert_eq(bad_at("\xe0\x9f\xbf", 3), 0);         /* U+07FF in three bytes */
    cr_assert_eq(bad_at("\xf0\x80\x80\xaf", 4), 0);     /* '/' in four bytes */
    cr_assert_eq(bad_at("\xf0\x8f\xbf\xbf", 4), 0);     /* U+FFFF in four bytes */
}

Test(utf8, surrogates_and_beyond_u10ffff)
{
    cr_assert_eq(bad_at("x\xed\xa0\x80", 4), 1);        /* U+D800 */
    cr_assert_eq(bad_at("\xed\xbf\xbf", 3), 0);         /* U+DFFF */
    cr_assert_eq(bad_at("\xf4\x90\x80\x80", 4), 0);     /* U+110000 */
    cr_assert_eq(bad_at("\xf5\x80\x80\x80", 4), 0);
    cr_assert_eq(bad_at("\xff", 1), 0);
    cr_assert_eq(bad_at("\xfe", 1), 0);
}

Test(utf8, truncated_and_stray_bytes)
{
    cr_assert_eq(bad_at("abc\xe2\x82", 5), 3);          /* euro sign cut at the end */
    cr_assert_eq(bad_at("\xe2\x82x", 3), 0);            /* cut in the middle */
    cr_assert_eq(bad_at("\xf0\x9f\x98", 3), 0);
    cr_assert_eq(bad_at("\xc3", 1), 0);
    cr_assert_eq(bad_at("a\x80", 2), 1);                /* stray continuation byte */
    cr_assert_eq(bad_at("\xc3\xa9\xa9", 3), 2);         /* one continuation too many */
    /* after the ASCII fast path: the offset is exact */
    cr_assert_eq(bad_at("0123456789abcdef\x80", 17), 16);
    cr_assert_eq(bad_at("01234567\xc3\xa9" "89\xc3", 13), 12);
    cr_assert_eq(utf8_seqlen((const unsigned char *)"\xe2\x82\xac", 2), 0);
}

/* ---- defaults ---- */

Test(utf8, default_name_and_languages)
{
    char name[64], a[16], b[16];
    import_default_name("data/train.en", "train", name, sizeof name);
    cr_assert_str_eq(name, "train");
    import_default_name("/x/newstest2014.en", "test", name, sizeof name);
    cr_assert_str_eq(name, "newstest2014-test");
    import_default_name("corpus", "valid", name, sizeof name);
    cr_assert_str_eq(name, "corpus-valid");
    import_default_name("dir/.en", "valid", name, sizeof name);
    cr_assert_str_eq(name, ".en-valid");
    import_default_langs("a/train.en", "a/train.de", a, b, sizeof a);
    cr_assert_str_eq(a, "en");
    cr_assert_str_eq(b, "de");
    import_default_langs("src.txt", "tgt.txt", a, b, sizeof a);
    cr_assert_str_eq(a, "src");
    cr_assert_str_eq(b, "tgt");
    import_default_langs("x.en", "y.en", a, b, sizeof a); /* the same: not a language pair */
    cr_assert_str_eq(a, "src");
    import_default_langs("x.english", "y.de", a, b, sizeof a);
    cr_assert_str_eq(a, "src");
    cr_assert_str_eq(b, "tgt");
    /* a compressed file is named as its content */
    import_default_name("data/train.en.gz", "train", name, sizeof name);
    cr_assert_str_eq(name, "train");
    import_default_name("news.gz", "test", name, sizeof name);
    cr_assert_str_eq(name, "news-test");
    import_default_langs("a/train.en.gz", "a/train.de", a, b, sizeof a);
    cr_assert_str_eq(a, "en");
    cr_assert_str_eq(b, "de");
}

/* ---- importing ---- */

static char *write_tmp(const char *name, const char *data, size_t len)
{
    char *p = th_path(dir, name);
    cr_assert_eq(th_write_file(p, data, len), 0);
    return p;
}
#define WRITE(name, lit) write_tmp(name, lit, sizeof(lit) - 1)

struct pairs {
    int n;
    int64_t id[16];
    char src[16][64], tgt[16][64];
};

static int collect(void *ctx, int64_t pair_id, const char *src, size_t srclen, const char *tgt,
                   size_t tgtlen)
{
    struct pairs *p = ctx;
    cr_assert_lt(p->n, 16);
    p->id[p->n] = pair_id;
    snprintf(p->src[p->n], 64, "%.*s", (int)srclen, src);
    snprintf(p->tgt[p->n], 64, "%.*s", (int)tgtlen, tgt);
    p->n++;
    return 0;
}

static struct db *open_db(const char *path)
{
    struct db *db = NULL;
    cr_assert_eq(db_open(path, DB_CREATE, &db), 0, "%s", sl_errmsg());
    return db;
}

Test(import, stores_pairs_strips_bom_and_cr_and_skips_empty_sides)
{
    char *src = WRITE("train.en", "\xef\xbb\xbfHello world\r\nSecond line\n\n  \t\nfive\nsix\xc3\xa9");
    char *tgt = WRITE("train.de", "Hallo Welt\r\nZweite Zeile\nleer\n \nfünf\r\nsechs\r\n");
    char *dbp = th_path(dir, "x.db");
    struct db *db = open_db(dbp);
    struct import_opts o = {.src_path = src, .tgt_path = tgt};
    struct import_result r;
    cr_assert_eq(import_run(db, &o, &r), 0, "%s", sl_errmsg());
    cr_assert_eq(r.n_lines, 6);
    cr_assert_eq(r.n_pairs, 4);
    cr_assert_eq(r.n_skip_src, 1);
    cr_assert_eq(r.n_skip_tgt, 0);
    cr_assert_eq(r.n_skip_both, 1);
    cr_assert_str_eq(r.name, "train");
    cr_assert_str_eq(r.split, "train");
    cr_assert_str_eq(r.src_lang, "en");
    cr_assert_str_eq(r.tgt_lang, "de");

    struct pairs p = {0};
    cr_assert_eq(db_pairs_foreach(db, "train", collect, &p), 0);
    cr_assert_eq(p.n, 4);
    cr_assert_str_eq(p.src[0], "Hello world");
    cr_assert_str_eq(p.tgt[0], "Hallo Welt");
    cr_assert_str_eq(p.src[1], "Second line");
    cr_assert_str_eq(p.src[2], "five");
    cr_assert_str_eq(p.tgt[2], "fünf");
    cr_assert_str_eq(p.src[3], "six\xc3\xa9"); /* last line without a newline */
    cr_assert_str_eq(p.tgt[3], "sechs");
    int64_t lines[4] = {1, 2, 5, 6};
    for (int i = 0; i < 4; i++) {
        int64_t corpus, line;
        cr_assert_eq(db_pair_get(db, p.id[i], &corpus, &line), 0);
        cr_assert_eq(corpus, r.corpus_id);
        cr_assert_eq(line, lines[i], "pair %d: line %lld", i, (long long)line);
    }
    struct db_corpus c;
    cr_assert_eq(db_corpus_get(db, "train", &c), 0);
    cr_assert_eq(c.n_pairs, 4);
    cr_assert_eq(c.n_skipped, 2);
    cr_assert_str_eq(c.src_path, src);
    db_corpus_clear(&c);

    /* a second corpus with explicit labels */
    struct import_opts o2 = {.src_path = src, .tgt_path = tgt, .split = "valid", .name = "dev",
                             .src_lang = "eng", .tgt_lang = "deu"};
    cr_assert_eq(import_run(db, &o2, &r), 0, "%s", sl_errmsg());
    cr_assert_str_eq(r.name, "dev");
    cr_assert_str_eq(r.src_lang, "eng");
    int64_t n;
    cr_assert_eq(db_split_count(db, "valid", &n), 0);
    cr_assert_eq(n, 4);
    cr_assert_eq(db_split_count(db, "train", &n), 0);
    cr_assert_eq(n, 4);
    db_close(db);
    free(src);
    free(tgt);
    free(dbp);
}

Test(import, works_with_a_second_connection_open_and_leaves_wal_mode)
{
    char *src = WRITE("w.en", "a\nb\nc\n");
    char *tgt = WRITE("w.de", "x\ny\nz\n");
    char *dbp = th_path(dir, "w.db");
    struct db *db = open_db(dbp), *reader = open_db(dbp);
    int64_t n = -1;
    cr_assert_eq(db_split_count(reader, "train", &n), 0);
    cr_assert_eq(n, 0);
    struct import_opts o = {.src_path = src, .tgt_path = tgt};
    struct import_result r;
    cr_assert_eq(import_run(db, &o, &r), 0, "%s", sl_errmsg());
    cr_assert_eq(db_split_count(reader, "train", &n), 0, "%s", sl_errmsg());
    cr_assert_eq(n, 3);
    db_close(reader);
    /* alone now: the import switches to a rollback journal and back */
    struct import_opts o2 = {.src_path = src, .tgt_path = tgt, .name = "again"};
    cr_assert_eq(import_run(db, &o2, &r), 0, "%s", sl_errmsg());
    db_close(db);
    size_t len;
    char *b = th_read_file(dbp, &len);
    cr_assert_geq(len, 100);
    cr_assert_eq(b[18], 2, "not in WAL mode after an import"); /* file format versions: 2 = WAL */
    cr_assert_eq(b[19], 2);
    free(b);
    free(src);
    free(tgt);
    free(dbp);
}

Test(import, empty_files_make_an_empty_corpus)
{
    char *src = WRITE("e.en", "");
    char *tgt = WRITE("e.de", "");
    char *dbp = th_path(dir, "e.db");
    struct db *db = open_db(dbp);
    struct import_opts o = {.src_path = src, .tgt_path = tgt, .split = "test"};
    struct import_result r;
    cr_assert_eq(import_run(db, &o, &r), 0, "%s", sl_errmsg());
    cr_assert_eq(r.n_pairs, 0);
    cr_assert_eq(r.n_lines, 0);
    cr_assert_str_eq(r.name, "e-test");
    db_close(db);
    free(src);
    free(tgt);
    free(dbp);
}

/* A database holding one corpus, closed so its file is checkpointed; returns its path. */
static char *base_db(void)
{
    char *src = WRITE("base.en", "one\ntwo\n");
    char *tgt = WRITE("base.de", "eins\nzwei\n");
    char *dbp = th_path(dir, "base.db");
    struct db *db = open_db(dbp);
    struct import_opts o = {.src_path = src, .tgt_path = tgt};
    struct import_result r;
    cr_assert_eq(import_run(db, &o, &r), 0, "%s", sl_errmsg());
    db_close(db);
    free(src);
    free(tgt);
    return dbp;
}

/* Zeroes SQLite's file change counter (header offsets 24 and 92): an import switches the journal
 * mode for speed (db_bulk_mode), which counts as a change even when the import is rolled back. */
static void mask_counters(char *b, size_t n)
{
    cr_assert_geq(n, 100);
    memset(b + 24, 0, 4);
    memset(b + 92, 0, 4);
}

/* Runs an import that must fail with code and a message containing want; then checks that the
 * database file is byte-for-byte what it was (but for the change counter). */
static void assert_import_fails(const char *dbp, struct import_opts *o, int code, const char *want)
{
    size_t n0, n1;
    char *before = th_read_file(dbp, &n0);
    struct db *db = open_db(dbp);
    struct import_result r;
    int rc = import_run(db, o, &r);
    cr_assert_eq(rc, code, "rc %d: %s", rc, sl_errmsg());
    cr_assert(strstr(sl_errmsg(), want), "message '%s' lacks '%s'", sl_errmsg(), want);
    int64_t n = -1;
    cr_assert_eq(db_split_count(db, "train", &n), 0);
    cr_assert_eq(n, 2);
    db_close(db);
    char *after = th_read_file(dbp, &n1);
    cr_assert_eq(n0, n1, "size changed");
    mask_counters(before, n0);
    mask_counters(after, n1);
    cr_assert(memcmp(before, after, n0) == 0, "the database file changed");
    free(before);
    free(after);
}

Test(import, mismatched_line_counts_leave_db_unchanged)
{
    char *dbp = base_db();
    /* enough lines that some pairs were stored before the mismatch showed */
    char *src = WRITE("m.en", "a\nb\nc\nd\ne\nf\ng\nh\ni\nj\n");
    char *tgt = WRITE("m.de", "a\nb\nc\nd\ne\nf\ng\nh\ni\n");
    struct import_opts o = {.src_path = src, .tgt_path = tgt, .name = "m"};
    char want[512];
    snprintf(want, sizeof want, "%s has 10 lines but %s has 9", src, tgt);
    assert_import_fails(dbp, &o, SL_EINVAL, want);
    struct import_opts o2 = {.src_path = tgt, .tgt_path = src, .name = "m"};
    snprintf(want, sizeof want, "%s has 9 lines but %s has 10", tgt, src);
    assert_import_fails(dbp, &o2, SL_EINVAL, want);
    free(src);
    free(tgt);
    free(dbp);
}

Test(import, invalid_utf8_names_file_line_and_byte)
{
    char *dbp = base_db();
    char *src = WRITE("u.en", "ok\nfine\nalso fine\n");
    char *tgt = WRITE("u.de", "gut\nauch gut\nschlecht: \xc3\x28 hier\n");
    struct import_opts o = {.src_path = src, .tgt_path = tgt, .name = "u"};
    char want[512];
    snprintf(want, sizeof want, "%s: line 3, byte 11: invalid UTF-8", tgt);
    assert_import_fails(dbp, &o, SL_EUTF8, want);
    /* on line 1 the offset counts the BOM that was stripped */
    char *bom = WRITE("b.en", "\xef\xbb\xbf" "ab\xed\xa0\x80\n");
    char *one = WRITE("b.de", "x\n");
    struct import_opts o2 = {.src_path = bom, .tgt_path = one, .name = "b"};
    snprintf(want, sizeof want, "%s: line 1, byte 6: invalid UTF-8", bom);
    assert_import_fails(dbp, &o2, SL_EUTF8, want);
    free(src);
    free(tgt);
    free(bom);
    free(one);
    free(dbp);
}

Test(import, nul_byte_is_an_error)
{
    char *dbp = base_db();
    char *src = write_tmp("n.en", "ok\na\0b\n", 7);
    char *tgt = WRITE("n.de", "gut\nx\n");
    struct import_opts o = {.src_path = src, .tgt_path = tgt, .name = "n"};
    char want[512];
    snprintf(want, sizeof want, "%s: line 2, byte 2: NUL byte", src);
    assert_import_fails(dbp, &o, SL_EINVAL, want);
    free(src);
    free(tgt);
    free(dbp);
}

Test(import, existing_name_and_missing_file_leave_db_unchanged)
{
    char *dbp = base_db();
    char *src = WRITE("ok.en", "a\n");
    char *tgt = WRITE("ok.de", "b\n");
    struct import_opts o = {.src_path = src, .tgt_path = tgt, .name = "base-train"};
    assert_import_fails(dbp, &o, SL_EEXIST, "a corpus named 'base-train' exists already");
    char *missing = th_path(dir, "missing.de");
    struct import_opts o2 = {.src_path = src, .tgt_path = missing, .name = "other"};
    char want[512];
    snprintf(want, sizeof want, "%s: cannot read", missing);
    assert_import_fails(dbp, &o2, SL_EIO, want);
    struct import_opts o3 = {.src_path = src, .tgt_path = tgt, .split = "dev"};
    assert_import_fails(dbp, &o3, SL_EINVAL, "bad split 'dev'");
    struct import_opts o4 = {.src_path = src, .tgt_path = tgt, .name = "tab\there"};
    assert_import_fails(dbp, &o4, SL_EINVAL, "control character");
    free(src);
    free(tgt);
    free(missing);
    free(dbp);
}

static int64_t q_int(const char *path, const char *query)
{
    sqlite3 *h;
    cr_assert_eq(sqlite3_open_v2(path, &h, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
    sqlite3_stmt *st;
    cr_assert_eq(sqlite3_prepare_v2(h, query, -1, &st, NULL), SQLITE_OK, "%s", sqlite3_errmsg(h));
    cr_assert_eq(sqlite3_step(st), SQLITE_ROW);
    int64_t v = sqlite3_column_type(st, 0) == SQLITE_TEXT ? strcmp((const char *)sqlite3_column_text(st, 0), "ok")
                                                         : sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(h);
    return v;
}

/* Writes len bytes gzip-compressed (zlib's gzip format) to dir/name; returns the path. */
static char *write_gz(const char *name, const char *data, size_t len)
{
    char *p = th_path(dir, name);
    gzFile f = gzopen(p, "wb");
    cr_assert(f);
    cr_assert_eq(gzwrite(f, data, (unsigned)len), (int)len);
    cr_assert_eq(gzclose(f), Z_OK);
    return p;
}

/* n lines "line I word" (malloc'd, length in *len). */
static char *numbered_lines(int n, const char *word, size_t *len)
{
    char *b = malloc((size_t)n * 32);
    size_t k = 0;
    for (int i = 0; i < n; i++)
        k += (size_t)sprintf(b + k, "line %d %s\n", i, word);
    *len = k;
    return b;
}

/* A gzip file imports exactly like its plain content, across many read chunks, from a file or stdin. */
Test(import, gzip_files_import_like_plain_ones)
{
    size_t ns, nt;
    char *s = numbered_lines(200000, "src", &ns), *t = numbered_lines(200000, "tgt", &nt);
    cr_assert_gt(ns, (size_t)2 << 20, "more than two read chunks");
    char *src = write_gz("big.en.gz", s, ns), *tgt = write_gz("big.de.gz", t, nt);
    char *plain = write_tmp("big.de", t, nt);
    char *dbp = th_path(dir, "gz.db");
    struct db *db = open_db(dbp);
    struct import_opts o = {.src_path = src, .tgt_path = tgt};
    struct import_result r;
    cr_assert_eq(import_run(db, &o, &r), 0, "%s", sl_errmsg());
    cr_assert_eq(r.n_pairs, 200000);
    cr_assert_str_eq(r.name, "big-train");
    cr_assert_str_eq(r.src_lang, "en");
    struct import_opts o2 = {.src_path = src, .tgt_path = plain, .name = "mixed"};
    cr_assert_eq(import_run(db, &o2, &r), 0, "%s", sl_errmsg());
    cr_assert_eq(r.n_pairs, 200000);
    db_close(db);
    cr_assert_eq(q_int(dbp, "SELECT count(*) FROM pair a JOIN pair b ON a.corpus_id = 1 AND b.corpus_id = 2 "
                            "AND a.line = b.line AND a.src = b.src AND a.tgt = b.tgt"), 200000);
    cr_assert_eq(q_int(dbp, "SELECT count(*) FROM pair WHERE line = 123457 AND src = 'line 123456 src' "
                            "AND tgt = 'line 123456 tgt'"), 2);
    /* through standard input */
    char args[4096], *err = NULL;
    snprintf(args, sizeof args, "import '%s' - '%s' --name piped", dbp, plain);
    cr_assert_eq(th_run(args, src, NULL, &err), 0, "%s", err);
    cr_assert(strstr(err, "imported 200000 pairs"), "%s", err);
    free(err);
    free(s), free(t), free(src), free(tgt), free(plain), free(dbp);
}

/* A damaged or cut gzip file is an error naming the file; the database is unchanged. */
Test(import, corrupt_gzip_names_the_file_and_leaves_db_unchanged)
{
    size_t n;
    char *text = numbered_lines(5000, "x", &n);
    char *good = write_gz("good.en.gz", text, n);
    char *tgt = write_tmp("c.de", text, n);
    size_t gn;
    char *gz = th_read_file(good, &gn);
    cr_assert_gt(gn, 100);
    char *dbp = base_db();
    char want[512];
    /* a flipped byte in the deflate data, then one in the CRC trailer */
    size_t at[] = {gn / 2, gn - 6};
    for (size_t i = 0; i < 2; i++) {
        char *bad = malloc(gn);
        memcpy(bad, gz, gn);
        bad[at[i]] ^= 0x55;
        char *p = write_tmp("bad.en.gz", bad, gn);
        struct import_opts o = {.src_path = p, .tgt_path = tgt, .name = "bad"};
        snprintf(want, sizeof want, "%s: corrupt gzip data", p);
        assert_import_fails(dbp, &o, SL_EIO, want);
        free(bad), free(p);
    }
    /* cut short: every line read so far is dropped too */
    char *cut = write_tmp("cut.en.gz", gz, gn / 2);
    struct import_opts o = {.src_path = cut, .tgt_path = tgt, .name = "cut"};
    snprintf(want, sizeof want, "%s: truncated gzip file", cut);
    assert_import_fails(dbp, &o, SL_EIO, want);
    /* from the command line, into a new database: the message, and no database left behind */
    char args[4096], *err = NULL, *fresh = th_path(dir, "fresh.db");
    snprintf(args, sizeof args, "import '%s' '%s' '%s'", fresh, tgt, cut);
    cr_assert_eq(th_run(args, NULL, NULL, &err), 1);
    cr_assert(strstr(err, "seqlite: import: ") && strstr(err, "cut.en.gz: truncated gzip file"), "%s", err);
    cr_assert_neq(access(fresh, F_OK), 0);
    free(err);
    free(text), free(good), free(tgt), free(gz), free(dbp), free(cut), free(fresh);
}

Test(import, long_lines_have_no_limit)
{
    size_t n = 1 << 20;
    char *big = malloc(n + 1);
    for (size_t i = 0; i < n; i++)
        big[i] = (char)('a' + i % 26);
    big[n] = '\n';
    char *src = write_tmp("long.en", big, n + 1);
    char *tgt = WRITE("long.de", "kurz\n");
    char *dbp = th_path(dir, "l.db");
    struct db *db = open_db(dbp);
    struct import_opts o = {.src_path = src, .tgt_path = tgt};
    struct import_result r;
    cr_assert_eq(import_run(db, &o, &r), 0, "%s", sl_errmsg());
    cr_assert_eq(r.n_pairs, 1);
    db_close(db);
    free(big);
    free(src);
    free(tgt);
    free(dbp);
}

/* ---- command line ---- */

Test(import_cli, usage_errors_exit_2)
{
    char *out = NULL, *err = NULL;
    cr_assert_eq(th_run("import --no-such-flag", NULL, &out, &err), 2);
    cr_assert(strstr(err, "seqlite: import: unknown flag '--no-such-flag'"), "got '%s'", err);
    cr_assert(strstr(err, "see 'seqlite help import'"), "got '%s'", err);
    cr_assert_str_eq(out, "");
    free(out);
    free(err);
    cr_assert_eq(th_run("import a.db a.en a.de --split dev", NULL, &out, &err), 2);
    cr_assert(strstr(err, "seqlite: import: --split: 'dev' is not train, valid or test"), "got '%s'", err);
    free(out);
    free(err);
    cr_assert_eq(th_run("import a.db a.en", NULL, &out, &err), 2);
    cr_assert(strstr(err, "expected DB SRC TGT"), "got '%s'", err);
    free(out);
    free(err);
    cr_assert_eq(th_run("import --split", NULL, &out, &err), 2);
    cr_assert(strstr(err, "--split needs a value"), "got '%s'", err);
    free(out);
    free(err);
    cr_assert_eq(th_run("import --help", NULL, &out, &err), 0);
    cr_assert(strstr(out, "usage: seqlite import DB SRC TGT"), "got '%s'", out);
    free(out);
    free(err);
}

Test(import_cli, success_and_failures)
{
    char *src = WRITE("c.en", "one\n\ntwo\n");
    char *tgt = WRITE("c.de", "eins\nleer\nzwei\n");
    char *dbp = th_path(dir, "cli.db");
    char args[4096];
    char *out = NULL, *err = NULL;
    snprintf(args, sizeof args, "import '%s' '%s' '%s' --split valid", dbp, src, tgt);
    cr_assert_eq(th_run(args, NULL, &out, &err), 0, "stderr: %s", err);
    cr_assert_str_eq(out, "");
    cr_assert(strstr(err, "imported 2 pairs as corpus 'c-valid' (valid, en-de)"), "got '%s'", err);
    cr_assert(strstr(err, "skipped 1 of 3 lines: 1 with an empty source"), "got '%s'", err);
    free(out);
    free(err);
    /* the same again: the name exists */
    cr_assert_eq(th_run(args, NULL, &out, &err), 1);
    cr_assert(strstr(err, "seqlite: import: ") && strstr(err, "a corpus named 'c-valid' exists already") &&
                  strstr(err, "--name"),
              "got '%s'", err);
    free(out);
    free(err);
    /* a missing file, into a database that does not exist yet: no database is left behind */
    char *fresh = th_path(dir, "fresh.db");
    snprintf(args, sizeof args, "import '%s' '%s' '%s/nope.de'", fresh, src, dir);
    cr_assert_eq(th_run(args, NULL, &out, &err), 1);
    cr_assert(strstr(err, "seqlite: import: ") && strstr(err, "nope.de: cannot read"), "got '%s'", err);
    cr_assert_neq(access(fresh, F_OK), 0, "a failed import left %s behind", fresh);
    free(out);
    free(err);
    /* not a database */
    snprintf(args, sizeof args, "import '%s' '%s' '%s'", src, src, tgt);
    cr_assert_eq(th_run(args, NULL, &out, &err), 1);
    cr_assert(strstr(err, "seqlite: import: ") && strstr(err, "not a seqlite database"), "got '%s'", err);
    free(out);
    free(err);
    free(src);
    free(tgt);
    free(dbp);
    free(fresh);
}

/* The summary line: "1 pair" (not "1 pairs"), and its rate counts stored pairs, not lines read. */
Test(import_cli, summary_counts_pairs)
{
    char *src = WRITE("one.en", "hello\n");
    char *tgt = WRITE("one.de", "hallo\n");
    char *dbp = th_path(dir, "sum.db");
    char args[4096], *err = NULL;
    snprintf(args, sizeof args, "import '%s' '%s' '%s'", dbp, src, tgt);
    cr_assert_eq(th_run(args, NULL, NULL, &err), 0, "%s", err);
    cr_assert(strstr(err, "imported 1 pair as corpus 'one-train'"), "%s", err);
    free(err);
    /* one pair among 600,000 empty lines */
    size_t n = 300001 * 2;
    char *s = malloc(n), *t = malloc(n);
    memset(s, '\n', n);
    memset(t, '\n', n);
    memcpy(s, "a", 1);
    memcpy(t, "b", 1);
    char *sp = write_tmp("sparse.en", s, n), *tp = write_tmp("sparse.de", t, n);
    snprintf(args, sizeof args, "import '%s' '%s' '%s'", dbp, sp, tp);
    cr_assert_eq(th_run(args, NULL, NULL, &err), 0, "%s", err);
    double secs = -1, rate = -1;
    const char *p = strstr(err, "imported 1 pair as corpus 'sparse-train'");
    cr_assert(p && sscanf(strstr(p, " in "), " in %lf s (%lf pairs/s)", &secs, &rate) == 2, "%s", err);
    /* both are rounded (secs to 0.01, the rate to 1): 1 pair, not 600,001 lines, within that */
    cr_assert(secs >= 0.01 && (rate - 0.5) * (secs - 0.005) <= 1.0, "%g pairs/s over %g s for 1 pair: %s", rate,
              secs, err);
    free(err);
    free(s), free(t), free(sp), free(tp), free(src), free(tgt), free(dbp);
}

/* Bytes written to a pipe and not yet read (FIONREAD works on the write end on Linux). */
static int ioctl_unread(int fd, int *n) { return ioctl(fd, FIONREAD, n); }


/* "-" is standard input for one of the two files; the corpus is named after the other file. */
Test(import_cli, dash_is_stdin)
{
    char *src = WRITE("news.en", "one\ntwo\n");
    char *tgt = WRITE("news.de", "eins\nzwei\n");
    char *dbp = th_path(dir, "dash.db");
    char args[4096], *err = NULL;
    snprintf(args, sizeof args, "import '%s' - '%s'", dbp, tgt);
    cr_assert_eq(th_run(args, src, NULL, &err), 0, "%s", err);
    cr_assert(strstr(err, "imported 2 pairs as corpus 'news-train'"), "%s", err);
    free(err);
    snprintf(args, sizeof args, "import '%s' '%s' - --split valid", dbp, src);
    cr_assert_eq(th_run(args, tgt, NULL, &err), 0, "%s", err);
    free(err);
    cr_assert_eq(q_int(dbp, "SELECT count(*) FROM pair JOIN corpus c ON c.id = corpus_id "
                            "WHERE c.src_path = '-' AND c.name = 'news-train'"), 2);
    cr_assert_eq(q_int(dbp, "SELECT count(*) FROM pair WHERE src = 'two' AND tgt = 'zwei'"), 2);
    /* a short stdin is named in the message; nothing is stored */
    snprintf(args, sizeof args, "import '%s' '%s' - --name short", dbp, src);
    cr_assert_eq(th_run(args, NULL, NULL, &err), 1);
    cr_assert(strstr(err, "has 2 lines but stdin has 0"), "%s", err);
    free(err);
    cr_assert_eq(q_int(dbp, "SELECT count(*) FROM corpus"), 2);
    snprintf(args, sizeof args, "import '%s' - -", dbp);
    cr_assert_eq(th_run(args, src, NULL, &err), 2);
    cr_assert(strstr(err, "only one of SRC and TGT can be '-'"), "%s", err);
    free(err);
    free(src), free(tgt), free(dbp);
}

/* An import killed with SIGKILL halfway through its input (fed through FIFOs, so it is surely
 * mid-transaction) leaves the database as it was: no partial corpus, the name free, integrity ok. */
Test(import_cli, killed_midway_leaves_nothing)
{
    char *src = WRITE("a.en", "one\ntwo\n");
    char *tgt = WRITE("a.de", "eins\nzwei\n");
    char *dbp = th_path(dir, "k.db");
    char args[4096], *err = NULL;
    snprintf(args, sizeof args, "import '%s' '%s' '%s' --name first", dbp, src, tgt);
    cr_assert_eq(th_run(args, NULL, NULL, &err), 0, "%s", err);
    free(err);
    char *fs = th_path(dir, "s.fifo"), *ft = th_path(dir, "t.fifo");
    cr_assert_eq(mkfifo(fs, 0600), 0);
    cr_assert_eq(mkfifo(ft, 0600), 0);
    pid_t pid = fork();
    cr_assert(pid >= 0);
    if (pid == 0) {
        int fd = open("/dev/null", O_WRONLY);
        dup2(fd, 2);
        execl(SEQLITE_BIN, SEQLITE_BIN, "import", dbp, fs, ft, "--name", "second", (char *)NULL);
        _exit(127);
    }
    FILE *a = fopen(fs, "w"), *b = fopen(ft, "w");
    cr_assert(a && b);
    for (int i = 0; i < 2000; i++) { /* ~20 KB a side: fits the pipe buffers */
        fprintf(a, "line %d\n", i);
        fprintf(b, "Zeile %d\n", i);
    }
    fflush(a);
    fflush(b);
    /* wait until the importer has read both pipes empty, then kill it while it waits for more */
    for (int i = 0; i < 500; i++) {
        int na = 0, nb = 0;
        if (ioctl_unread(fileno(a), &na) == 0 && ioctl_unread(fileno(b), &nb) == 0 && na == 0 && nb == 0)
            break;
        usleep(10000);
    }
    usleep(100000);
    cr_assert_eq(kill(pid, SIGKILL), 0);
    int status;
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_assert(WIFSIGNALED(status));
    fclose(a);
    fclose(b);
    cr_assert_eq(q_int(dbp, "PRAGMA integrity_check"), 0);
    cr_assert_eq(q_int(dbp, "SELECT count(*) FROM corpus"), 1);
    cr_assert_eq(q_int(dbp, "SELECT count(*) FROM pair"), 2);
    snprintf(args, sizeof args, "import '%s' '%s' '%s' --name second", dbp, src, tgt);
    cr_assert_eq(th_run(args, NULL, NULL, &err), 0, "%s", err);
    free(err);
    cr_assert_eq(q_int(dbp, "SELECT count(*) FROM pair"), 4);
    free(fs), free(ft), free(dbp), free(src), free(tgt);
}

/* No file left in dir whose name starts with prefix (a temporary database of a failed import). */
static int leftovers(const char *prefix)
{
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "ls '%s' | grep -c '^%s' >/dev/null", dir, prefix);
    return system(cmd) == 0;
}

/* A first import (into a database that does not exist yet) fails while a second import creates and
 * fills that database: the second import's corpus survives, nothing is deleted that the failing
 * import did not create, and no temporary file is left. */
Test(import_cli, failed_first_import_keeps_a_database_another_process_filled)
{
    char *src = WRITE("r.en", "one\ntwo\nthree\n");
    char *tgt = WRITE("r.de", "eins\nzwei\ndrei\n");
    char *dbp = th_path(dir, "race.db");
    char *fs = th_path(dir, "rs.fifo");
    cr_assert_eq(mkfifo(fs, 0600), 0);
    pid_t pid = fork();
    cr_assert(pid >= 0);
    if (pid == 0) {
        int fd = open("/dev/null", O_WRONLY);
        dup2(fd, 2);
        execl(SEQLITE_BIN, SEQLITE_BIN, "import", dbp, fs, tgt, "--name", "slow", (char *)NULL);
        _exit(127);
    }
    FILE *a = fopen(fs, "w"); /* the first import is now reading its source */
    cr_assert(a);
    fputs("uno\n", a);
    fflush(a);
    char args[4096], *err = NULL;
    snprintf(args, sizeof args, "import '%s' '%s' '%s' --name fast", dbp, src, tgt);
    cr_assert_eq(th_run(args, NULL, NULL, &err), 0, "%s", err);
    free(err);
    fputs("dos\ntres\ncuatro\n", a); /* 4 source lines for 3 target lines: the first import fails */
    fclose(a);
    int status;
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 1, "status %d", status);
    cr_assert_eq(q_int(dbp, "PRAGMA integrity_check"), 0);
    cr_assert_eq(q_int(dbp, "SELECT count(*) FROM corpus WHERE name = 'fast' AND n_pairs = 3"), 1);
    cr_assert_eq(q_int(dbp, "SELECT count(*) FROM corpus"), 1);
    cr_assert(!leftovers("race.db.import-"), "a temporary database was left behind");
    free(fs), free(dbp), free(src), free(tgt);
}

/* A first import through a dangling symlink creates the file the link names; a failed one leaves both
 * the link and the missing target as they were. */
Test(import_cli, dangling_symlink)
{
    char *src = WRITE("s.en", "one\ntwo\n");
    char *tgt = WRITE("s.de", "eins\nzwei\n");
    char *bad = WRITE("s-bad.de", "eins\n");
    char *link = th_path(dir, "link.db"), *target = th_path(dir, "target.db");
    cr_assert_eq(symlink("target.db", link), 0);
    char args[4096], *err = NULL;
    snprintf(args, sizeof args, "import '%s' '%s' '%s'", link, src, bad);
    cr_assert_eq(th_run(args, NULL, NULL, &err), 1, "%s", err);
    free(err);
    struct stat sb;
    cr_assert_eq(lstat(link, &sb), 0, "the failed import deleted the symlink");
    cr_assert(S_ISLNK(sb.st_mode));
    cr_assert_neq(access(target, F_OK), 0, "the failed import left %s behind", target);
    cr_assert(!leftovers("target.db.import-"));
    snprintf(args, sizeof args, "import '%s' '%s' '%s'", link, src, tgt);
    cr_assert_eq(th_run(args, NULL, NULL, &err), 0, "%s", err);
    free(err);
    cr_assert_eq(lstat(link, &sb), 0);
    cr_assert(S_ISLNK(sb.st_mode), "the symlink was replaced");
    cr_assert_eq(q_int(target, "SELECT count(*) FROM pair"), 2);
    free(link), free(target), free(src), free(tgt), free(bad);
}
