/* tests/fuzz/fuzz_db_open.c: fuzz target for opening a damaged database file (corpus/db.h). Input: the
 * bytes of a database file (the seeds are small real seqlite databases), written to a scratch file and
 * opened with db_open (read-write, then DB_READ); when it opens, a few reads run through the public
 * API: the schema, the corpora and pairs, the newest vocabulary (loaded as a BPE model), the newest
 * run and its config, the checkpoints and a model load. Property: every call fails cleanly or
 * succeeds; nothing crashes, leaks or reads out of bounds. */
#include "tests/fuzz/fuzz_common.h"

#include "corpus/db.h"
#include "corpus/vocab_store.h"
#include "model/checkpoint.h"
#include "util/err.h"

#include <string.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    return 0;
}

static int count_column(void *ctx, const char *table, const char *column)
{
    (void)table, (void)column;
    (*(int *)ctx)++;
    return 0;
}

static int count_corpus(void *ctx, const struct db_corpus *c)
{
    (*(int *)ctx) += c->name != NULL;
    return 0;
}

static int count_pair(void *ctx, int64_t id, const char *s, size_t ns, const char *t, size_t nt)
{
    (void)id;
    (*(size_t *)ctx) += ns + nt + (s != NULL) + (t != NULL);
    return *(size_t *)ctx > 100000; /* stop early in a huge table */
}

static void reads(struct db *db)
{
    int n = 0;
    size_t bytes = 0;
    db_schema_columns(db, count_column, &n);
    db_corpus_foreach(db, count_corpus, &n);
    db_pairs_foreach(db, "train", count_pair, &bytes);
    int64_t x;
    db_split_count(db, "valid", &x);
    int64_t vid;
    if (db_vocab_latest(db, NULL, &vid) == 0) {
        struct db_vocab v;
        if (db_vocab_get(db, vid, &v) == 0)
            db_vocab_clear(&v);
        struct bpe *b = NULL;
        if (corpus_vocab_load(db, vid, &b) == 0)
            bpe_free(b);
    }
    int64_t rid;
    if (db_run_latest(db, &rid) == 0) {
        struct db_run r;
        if (db_run_get(db, rid, &r) == 0)
            db_run_clear(&r);
        struct db_json_field f[2] = {{.key = "layers"}, {.key = "attention"}};
        db_run_config_get(db, rid, f, 2);
        enum db_run_liveness l;
        char owner[128];
        db_run_liveness(db, rid, &l, owner, sizeof owner);
    }
    int64_t cid;
    if (db_ckpt_find(db, 0, "last", &cid) == 0) {
        struct ckpt_info info;
        ckpt_info_get(db, cid, &info);
        db_tensor_count(db, cid, &x);
    }
    struct ckpt_model m;
    if (ckpt_model_load(db, "best", &m) == 0)
        ckpt_model_free(&m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = fuzz_path(0, "open.db");
    for (int pass = 0; pass < 2; pass++) {
        fuzz_remove_db(path);
        fuzz_write(path, data, size);
        struct db *db = NULL;
        if (db_open(path, pass ? DB_READ : 0, &db) == 0) {
            FUZZ_CHECK(db, "db_open succeeded without a handle");
            reads(db);
            db_close(db);
        } else {
            FUZZ_CHECK(!db, "db_open failed but left a handle");
        }
    }
    fuzz_remove_db(path);
    return 0;
}
