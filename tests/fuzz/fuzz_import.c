/* tests/fuzz/fuzz_import.c: fuzz target for the import line reader (corpus/import.h). Input: split at
 * the first NUL byte into the source and the target file (no NUL: the same bytes for both), written
 * to a scratch directory and imported into one database kept for the whole run (a successful import
 * is deleted again through a second SQLite connection). Properties: an import either succeeds or
 * fails leaving no corpus behind; on success the counts add up (pairs + skipped = lines = the number
 * of lines of the source file) and every stored text is valid UTF-8 without '\n' or NUL. */
#include "tests/fuzz/fuzz_common.h"

#include "corpus/db.h"
#include "corpus/import.h"
#include "util/err.h"
#include "util/utf8.h"

#include <sqlite3.h>
#include <string.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct db *db;
static sqlite3 *raw;
static const char *src_path, *tgt_path;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    const char *path = fuzz_path(0, "import.db");
    FUZZ_CHECK(db_open(path, DB_CREATE, &db) == 0, "db_open: %s", sl_errmsg());
    FUZZ_CHECK(sqlite3_open(path, &raw) == SQLITE_OK, "sqlite3_open");
    sqlite3_busy_timeout(raw, 10000);
    src_path = fuzz_path(1, "in.src");
    tgt_path = fuzz_path(2, "in.tgt");
    return 0;
}

static int count_corpora(void *ctx, const struct db_corpus *c)
{
    (void)c;
    (*(int *)ctx)++;
    return 0;
}

static int check_pair(void *ctx, int64_t pair_id, const char *src, size_t srclen, const char *tgt, size_t tgtlen)
{
    (void)pair_id;
    (*(int64_t *)ctx)++;
    FUZZ_CHECK(utf8_valid(src, srclen, NULL) && utf8_valid(tgt, tgtlen, NULL), "stored invalid UTF-8");
    FUZZ_CHECK(!memchr(src, '\n', srclen) && !memchr(tgt, '\n', tgtlen), "stored a newline");
    FUZZ_CHECK(!memchr(src, '\0', srclen) && !memchr(tgt, '\0', tgtlen), "stored a NUL");
    FUZZ_CHECK(srclen > 0 && tgtlen > 0, "stored an empty side");
    return 0;
}

/* Lines as getline sees them: '\n'-terminated, plus a last unterminated one. */
static int64_t count_lines(const uint8_t *p, size_t n)
{
    int64_t k = 0;
    for (size_t i = 0; i < n; i++)
        k += p[i] == '\n';
    return k + (n > 0 && p[n - 1] != '\n');
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *nul = memchr(data, 0, size);
    const uint8_t *tgt = nul ? nul + 1 : data;
    const size_t ns = nul ? (size_t)(nul - data) : size, nt = nul ? size - ns - 1 : size;
    fuzz_write(src_path, data, ns);
    fuzz_write(tgt_path, tgt, nt);
    struct import_opts o = {.src_path = src_path, .tgt_path = tgt_path, .name = "fuzz"};
    struct import_result r;
    const int rc = import_run(db, &o, &r);
    int n_corpora = 0;
    FUZZ_CHECK(db_corpus_foreach(db, count_corpora, &n_corpora) == 0, "corpus list: %s", sl_errmsg());
    if (rc) {
        FUZZ_CHECK(n_corpora == 0, "a failed import (%s) left a corpus", sl_errmsg());
        FUZZ_CHECK(rc != SL_EDB, "database error: %s", sl_errmsg());
        return 0;
    }
    FUZZ_CHECK(n_corpora == 1, "%d corpora after one import", n_corpora);
    FUZZ_CHECK(r.n_lines == count_lines(data, ns), "%lld lines read, the file has %lld", (long long)r.n_lines,
               (long long)count_lines(data, ns));
    FUZZ_CHECK(r.n_pairs + r.n_skip_src + r.n_skip_tgt + r.n_skip_both == r.n_lines, "counts do not add up");
    int64_t stored = 0;
    FUZZ_CHECK(db_pairs_foreach(db, "train", check_pair, &stored) == 0, "pairs: %s", sl_errmsg());
    FUZZ_CHECK(stored == r.n_pairs, "%lld pairs stored, %lld reported", (long long)stored, (long long)r.n_pairs);
    char *err = NULL;
    FUZZ_CHECK(sqlite3_exec(raw, "DELETE FROM pair; DELETE FROM corpus;", NULL, NULL, &err) == SQLITE_OK,
               "cleanup: %s", err ? err : "?");
    return 0;
}
