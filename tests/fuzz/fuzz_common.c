/* tests/fuzz/fuzz_common.c: the fuzz targets' shared helpers (see fuzz_common.h). */
#include "tests/fuzz/fuzz_common.h"

#include "corpus/db.h"
#include "corpus/import.h"
#include "corpus/vocab_store.h"
#include "model/seq2seq.h"
#include "nn/params.h"
#include "train/checkpoint.h"
#include "util/err.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

void fuzz_fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("fuzz: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    abort();
}

static char dir_buf[256];

static void remove_dir(void)
{
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir_buf);
    if (system(cmd) != 0)
        fprintf(stderr, "fuzz: could not remove %s\n", dir_buf);
}

const char *fuzz_dir(void)
{
    if (dir_buf[0])
        return dir_buf;
    const char *base = getenv("SEQLITE_FUZZ_DIR");
    if (!base || !*base)
        base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : getenv("TMPDIR");
    snprintf(dir_buf, sizeof dir_buf, "%s/seqlite-fuzz-XXXXXX", base && *base ? base : "/tmp");
    if (!mkdtemp(dir_buf))
        fuzz_fail("cannot create a scratch directory %s", dir_buf);
    atexit(remove_dir);
    return dir_buf;
}

const char *fuzz_path(int slot, const char *name)
{
    static char paths[4][320];
    snprintf(paths[slot & 3], sizeof paths[0], "%s/%s", fuzz_dir(), name);
    return paths[slot & 3];
}

void fuzz_write(const char *path, const void *p, size_t n)
{
    FILE *f = fopen(path, "wb");
    FUZZ_CHECK(f, "cannot write %s", path);
    FUZZ_CHECK(fwrite(p, 1, n, f) == n && fclose(f) == 0, "cannot write %s", path);
}

void fuzz_copy(const char *src, const char *dst)
{
    FILE *f = fopen(src, "rb");
    FUZZ_CHECK(f, "cannot read %s", src);
    char *buf = NULL;
    size_t n = 0, cap = 0;
    for (;;) {
        if (n == cap) {
            cap = cap ? 2 * cap : 65536;
            buf = realloc(buf, cap);
            FUZZ_CHECK(buf, "out of memory");
        }
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (got == 0)
            break;
    }
    fclose(f);
    fuzz_write(dst, buf, n);
    free(buf);
}

void fuzz_remove_db(const char *path)
{
    static const char *const ext[] = {"", "-wal", "-shm", "-journal"};
    char p[400];
    for (size_t i = 0; i < sizeof ext / sizeof *ext; i++) {
        snprintf(p, sizeof p, "%s%s", path, ext[i]);
        unlink(p);
    }
}

const char fuzz_text[] =
    "the dog runs in the park\n"
    "der Hund läuft im Park\n"
    "a cat sleeps on the red mat, and the dog barks!\n"
    "die Katze schläft auf der roten Matte.\n"
    "Ünïcödé: café naïve résumé — “quotes” 42.5% ½ ﬁ Ⅻ\n"
    "日本語のテキストと中文文本 한국어 텍스트\n"
    "emoji 👩‍👩‍👧 🇩🇪 ❤️ and tabs\there\n"
    "numbers 1,000.50 and 3-4 dashes -- hyphen-ated words\n"
    "the the the dog dog park park runs runs\n"
    "Привет мир, это тест. مرحبا بالعالم\n";

const struct bpe *fuzz_bpe(void)
{
    static struct bpe *b;
    if (b)
        return b;
    struct bpe_learner *l = bpe_learner_create(TOK_NORM_NFKC);
    FUZZ_CHECK(l, "out of memory");
    for (const char *s = fuzz_text; *s;) {
        const char *e = strchr(s, '\n');
        FUZZ_CHECK(bpe_learner_add(l, s, (size_t)(e - s)) == 0, "learner: %s", sl_errmsg());
        s = e + 1;
    }
    struct bpe_learn_opts o = {.size = 400, .min_count = 1};
    FUZZ_CHECK(bpe_learner_learn(l, &o, &b) == 0, "learn: %s", sl_errmsg());
    bpe_learner_free(l);
    return b;
}

/* Builds the model database at path (see fuzz_model_db). */
static void make_model_db(const char *path, int attention)
{
    const char *src = fuzz_path(0, "model-train.src"), *tgt = fuzz_path(1, "model-train.tgt");
    fuzz_write(src, fuzz_text, sizeof fuzz_text - 1);
    fuzz_write(tgt, fuzz_text, sizeof fuzz_text - 1);
    struct db *db;
    FUZZ_CHECK(db_open(path, DB_CREATE, &db) == 0, "db_open: %s", sl_errmsg());
    struct import_opts io = {.src_path = src, .tgt_path = tgt, .name = "train"};
    struct import_result ir;
    FUZZ_CHECK(import_run(db, &io, &ir) == 0, "import: %s", sl_errmsg());
    struct corpus_vocab_opts vo = {300, CORPUS_VOCAB_JOINT, 1, TOK_NORM_NFKC};
    struct corpus_vocab_result vr;
    FUZZ_CHECK(corpus_vocab_learn(db, &vo, &vr) == 0, "vocab: %s", sl_errmsg());
    struct bpe *b;
    FUZZ_CHECK(corpus_vocab_load(db, vr.src_id, &b) == 0, "vocab load: %s", sl_errmsg());
    struct db_run run;
    memset(&run, 0, sizeof run);
    run.src_vocab_id = run.tgt_vocab_id = vr.src_id;
    run.threads = 1;
    char config[400];
    snprintf(config, sizeof config,
             "{\"seed\":1,\"layers\":1,\"emb\":8,\"hidden\":8,\"batch\":4,\"lr\":0.001,\"clip\":5,\"epochs\":1,"
             "\"max_len\":32,\"reverse_source\":1,\"keep\":3,\"src_eos\":1%s}",
             attention ? ",\"attention\":2" : "");
    run.config = config;
    int64_t run_id, ck;
    FUZZ_CHECK(db_run_create(db, &run, &run_id) == 0, "run: %s", sl_errmsg());
    struct s2s_config cfg = {.V_src = bpe_size(b), .V_tgt = bpe_size(b), .E = 8, .H = 8, .L = 1,
                             .reverse_source = 1, .attention = attention ? ATTN_GENERAL : ATTN_NONE};
    struct s2s_model m;
    FUZZ_CHECK(s2s_model_init(&m, &cfg) == 0, "model: %s", sl_errmsg());
    float *w = param_buf_create(m.table.total);
    FUZZ_CHECK(w, "out of memory");
    struct rng r;
    rng_seed(&r, 7);
    s2s_params_init(&m, w, &r);
    struct ckpt_save_req req = {.run_id = run_id, .step = 10, .src_vocab_id = vr.src_id,
                                .tgt_vocab_id = vr.src_id, .model = &m, .w = w, .valid_ppl = NAN,
                                .keep = 3};
    FUZZ_CHECK(ckpt_save(db, &req, &ck) == 0, "checkpoint: %s", sl_errmsg());
    param_buf_free(w);
    s2s_model_free(&m);
    bpe_free(b);
    db_close(db);
}

const char *fuzz_model_db(int attention)
{
    static char paths[2][320];
    char *p = paths[attention ? 1 : 0];
    if (!p[0]) {
        snprintf(p, sizeof paths[0], "%s/model%d.db", fuzz_dir(), attention ? 1 : 0);
        make_model_db(p, attention);
    }
    return p;
}
