/* tests/test_info.c: `seqlite info`, end to end through the binary: a database with only a corpus, a
 * half-trained one (a run stopped by SIGTERM, a run left 'running' by a dead owner: interrupted, with
 * the commands that resume each), a finished one with an evaluation and a run owned by a live process
 * (running, not interrupted); the --json object checked with SQLite's JSON functions; bad input; and
 * that info never writes to the file. */
#include <criterion/criterion.h>

#include <fcntl.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "corpus/db.h"
#include "tests/helpers.h"
#include "util/rng.h"
#include "util/sbuf.h"

TestSuite(info, .timeout = 180);

static const char *const WORDS[] = {"red", "blue", "green", "cat", "dog", "sun", "moon", "tree", "fish", "bird"};
#define N_WORDS (sizeof WORDS / sizeof WORDS[0])

/* n lines of a copy task into dir/name.src and dir/name.tgt. */
static void write_pairs(const char *dir, const char *name, size_t n, uint64_t seed)
{
    struct rng r;
    rng_seed(&r, seed);
    struct sbuf s;
    sbuf_init(&s);
    for (size_t i = 0; i < n; i++) {
        size_t k = 1 + rng_below(&r, 5);
        for (size_t j = 0; j < k; j++)
            sbuf_printf(&s, "%s%s", j ? " " : "", WORDS[rng_below(&r, N_WORDS)]);
        sbuf_putc(&s, '\n');
    }
    const char *ext[] = {"src", "tgt"};
    for (int e = 0; e < 2; e++) {
        char fn[64];
        snprintf(fn, sizeof fn, "%s.%s", name, ext[e]);
        char *p = th_path(dir, fn);
        cr_assert_eq(th_write_file(p, s.data, s.len), 0);
        free(p);
    }
    sbuf_free(&s);
}

static int runf(char **out, char **err, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int runf(char **out, char **err, const char *fmt, ...)
{
    char args[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    return th_run(args, NULL, out, err);
}

/* Runs a seqlite command that must succeed. */
#define RUN_OK(...)                                                                                   \
    do {                                                                                              \
        char *err_ = NULL;                                                                            \
        int st_ = runf(NULL, &err_, __VA_ARGS__);                                                     \
        cr_assert_eq(st_, 0, "exit %d: %s", st_, err_);                                               \
        free(err_);                                                                                   \
    } while (0)

#define TINY "--layers 1 --emb 8 --hidden 8 --batch 10 --threads 1 --valid-bleu 5"

/* dir/name.db with a train corpus (and, with_valid, a valid and a test corpus). */
static char *make_db(const char *dir, const char *name, int with_valid)
{
    char fn[64];
    snprintf(fn, sizeof fn, "%s.db", name);
    char *db = th_path(dir, fn);
    write_pairs(dir, "train", 60, 1);
    RUN_OK("import '%s' '%s/train.src' '%s/train.tgt' --src-lang en --tgt-lang de", db, dir, dir);
    if (with_valid) {
        write_pairs(dir, "valid", 10, 2);
        write_pairs(dir, "test", 8, 3);
        RUN_OK("import '%s' '%s/valid.src' '%s/valid.tgt' --split valid", db, dir, dir);
        RUN_OK("import '%s' '%s/test.src' '%s/test.tgt' --split test", db, dir, dir);
    }
    return db;
}

static void exec_sql(const char *path, const char *sql)
{
    sqlite3 *h;
    cr_assert_eq(sqlite3_open_v2(path, &h, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
    sqlite3_busy_timeout(h, 10000);
    char *msg = NULL;
    cr_assert_eq(sqlite3_exec(h, sql, NULL, NULL, &msg), SQLITE_OK, "%s: %s", sql, msg);
    sqlite3_close(h);
}

/* The text of a one-row query on the JSON text j ("" for NULL; malloc'd); ?1 is j, ?2 is arg. */
static char *json_query(const char *j, const char *sql, const char *arg)
{
    sqlite3 *h;
    cr_assert_eq(sqlite3_open(":memory:", &h), SQLITE_OK);
    sqlite3_stmt *st;
    cr_assert_eq(sqlite3_prepare_v2(h, sql, -1, &st, NULL), SQLITE_OK, "%s", sqlite3_errmsg(h));
    sqlite3_bind_text(st, 1, j, -1, SQLITE_TRANSIENT);
    if (arg)
        sqlite3_bind_text(st, 2, arg, -1, SQLITE_TRANSIENT);
    cr_assert_eq(sqlite3_step(st), SQLITE_ROW, "%s", sqlite3_errmsg(h));
    const char *t = (const char *)sqlite3_column_text(st, 0);
    char *r = strdup(t ? t : "");
    sqlite3_finalize(st);
    sqlite3_close(h);
    return r;
}

/* json_extract(j, path) as text ("" for null or absent). */
static char *jx(const char *j, const char *path)
{
    return json_query(j, "SELECT json_extract(?1, ?2)", path);
}

static void assert_jx(const char *j, const char *path, const char *want)
{
    char *v = jx(j, path);
    cr_assert_str_eq(v, want, "%s: got '%s' in %s", path, v, j);
    free(v);
}

/* The output is one valid JSON object with the five arrays; returns nothing, asserts. */
static void assert_json_shape(const char *j)
{
    char *v = json_query(j, "SELECT json_valid(?1) AND json_type(?1) = 'object'", NULL);
    cr_assert_str_eq(v, "1", "not a JSON object: %s", j);
    free(v);
    static const char *const keys[] = {"$.corpora", "$.vocabularies", "$.runs", "$.checkpoints", "$.evaluations"};
    for (size_t i = 0; i < sizeof keys / sizeof *keys; i++) {
        v = json_query(j, "SELECT json_type(?1, ?2)", keys[i]);
        cr_assert_str_eq(v, "array", "%s: %s", keys[i], j);
        free(v);
    }
}

/* The line of out that contains every one of the NULL-terminated needles (malloc'd), or NULL. */
static char *line_with(const char *out, ...)
{
    for (const char *p = out; p && *p;) {
        const char *e = strchr(p, '\n');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        char *line = strndup(p, n);
        int all = 1;
        va_list ap;
        va_start(ap, out);
        for (const char *s; all && (s = va_arg(ap, const char *));)
            all = strstr(line, s) != NULL;
        va_end(ap);
        if (all)
            return line;
        free(line);
        p = e ? e + 1 : NULL;
    }
    return NULL;
}

#define ASSERT_LINE(out, ...)                                                         \
    do {                                                                              \
        char *l_ = line_with(out, __VA_ARGS__, (const char *)NULL);                   \
        cr_assert_not_null(l_, "no line with " #__VA_ARGS__ " in:\n%s", out);         \
        free(l_);                                                                     \
    } while (0)

/* Where the last cell of a table line starts (after the last run of two or more spaces). */
static size_t last_cell(const char *p, size_t n)
{
    size_t i = n;
    while (i > 1 && !(p[i - 1] == ' ' && p[i - 2] == ' '))
        i--;
    return i;
}

/* Every table of out (the indented lines under a title) is aligned: its lines have one length (the
 * last column right-aligned) or their last cells start in one column (left-aligned); no line is longer
 * than 100 columns. */
static void assert_aligned(const char *out)
{
    size_t width = 0, start = 0, n_lines = 0;
    int same_width = 1, same_start = 1;
    for (const char *p = out; *p;) {
        const char *e = strchr(p, '\n');
        cr_assert_not_null(e, "output does not end with a newline");
        size_t n = (size_t)(e - p);
        cr_assert_leq(n, 100, "too wide: %.*s", (int)n, p);
        int in_table = n > 2 && p[0] == ' ' && p[1] == ' ' && strncmp(p, "  resume", 8) != 0;
        if (in_table && n_lines++ == 0) {
            width = n;
            start = last_cell(p, n);
        } else if (in_table) {
            same_width &= n == width;
            same_start &= last_cell(p, n) == start;
        }
        if (!in_table || !e[1]) {
            cr_assert(same_width || same_start, "misaligned table ending before '%.*s' in:\n%s", (int)n, p, out);
            n_lines = 0;
            same_width = same_start = 1;
        }
        p = e + 1;
    }
}

/* Asserts that in the table of out whose title line has head_needle, the line with row_needle has want
 * in the left-aligned column titled title (the cell starts where the title does). */
static void assert_cell(const char *out, const char *head_needle, const char *title, const char *row_needle,
                        const char *want)
{
    char *head = line_with(out, head_needle, title, (const char *)NULL);
    cr_assert_not_null(head, "no title line with '%s' and '%s' in:\n%s", head_needle, title, out);
    char *row = line_with(out, row_needle, (const char *)NULL);
    cr_assert_not_null(row, "no line with '%s' in:\n%s", row_needle, out);
    const size_t at = (size_t)(strstr(head, title) - head), n = strlen(want);
    cr_assert(strlen(row) >= at + n && strncmp(row + at, want, n) == 0 && (row[at + n] == ' ' || !row[at + n]) &&
                  row[at - 1] == ' ',
              "column '%s' of '%s' is not '%s' (title line '%s')", title, row, want, head);
    free(head);
    free(row);
}

static char *file_bytes(const char *path, size_t *n)
{
    char *b = th_read_file(path, n);
    cr_assert_not_null(b, "%s", path);
    return b;
}

Test(info, database_with_only_a_corpus)
{
    char *dir = th_tmpdir();
    char *db = make_db(dir, "e", 0);
    size_t n0, n1;
    char *before = file_bytes(db, &n0);
    char *out = NULL, *err = NULL;
    cr_assert_eq(runf(&out, &err, "info '%s'", db), 0, "%s", err);
    ASSERT_LINE(out, "name", "split", "languages", "pairs", "skipped");
    ASSERT_LINE(out, "train", "train", "en-de", "60", "0");
    ASSERT_LINE(out, "vocabularies: none (seqlite vocab");
    char want[512];
    snprintf(want, sizeof want, "runs: none (seqlite train %s)", db);
    cr_assert(strstr(out, want), "%s", out);
    cr_assert_null(strstr(out, "checkpoints"), "%s", out);
    cr_assert_null(strstr(out, "evaluations"), "%s", out);
    assert_aligned(out);
    free(out), free(err);
    cr_assert_eq(runf(&out, &err, "info '%s' --json", db), 0, "%s", err);
    assert_json_shape(out);
    assert_jx(out, "$.corpora[0].name", "train");
    assert_jx(out, "$.corpora[0].src_lang", "en");
    assert_jx(out, "$.corpora[0].pairs", "60");
    char *v = json_query(out, "SELECT json_type(?1, '$.corpora[0].pairs')", NULL);
    cr_assert_str_eq(v, "integer"); /* a number, not a string */
    free(v);
    v = json_query(out, "SELECT json_array_length(?1, '$.runs') + json_array_length(?1, '$.vocabularies')", NULL);
    cr_assert_str_eq(v, "0");
    free(v), free(out), free(err);
    /* info wrote nothing */
    char *after = file_bytes(db, &n1);
    cr_assert(n0 == n1 && memcmp(before, after, n0) == 0, "info changed the database file");
    free(before), free(after), free(db);
    th_rmdir(dir);
    free(dir);
}

Test(info, bad_input)
{
    char *dir = th_tmpdir();
    char *out = NULL, *err = NULL;
    char *missing = th_path(dir, "missing.db");
    cr_assert_eq(runf(&out, &err, "info '%s'", missing), 1);
    cr_assert(strstr(err, missing) && strstr(err, "no such database"), "%s", err);
    cr_assert_str_eq(out, "");
    struct stat sb;
    cr_assert_neq(stat(missing, &sb), 0, "info created %s", missing);
    free(out), free(err);
    char *text = th_path(dir, "notes.txt");
    cr_assert_eq(th_write_file(text, "not a database\n", 15), 0);
    cr_assert_eq(runf(NULL, &err, "info '%s'", text), 1);
    cr_assert(strstr(err, "not a seqlite database"), "%s", err);
    free(err);
    char *db = make_db(dir, "b", 0);
    cr_assert_eq(runf(&out, &err, "info '%s' --run nosuchrun", db), 1);
    cr_assert(strstr(err, "no run 'nosuchrun'"), "%s", err);
    free(out), free(err);
    cr_assert_eq(runf(NULL, &err, "info '%s' --run 3", db), 1);
    cr_assert(strstr(err, "no run '3'"), "%s", err);
    free(err);
    cr_assert_eq(runf(NULL, &err, "info"), 2);
    cr_assert(strstr(err, "expected DB"), "%s", err);
    free(err);
    cr_assert_eq(runf(NULL, &err, "info '%s' --frobnicate", db), 2);
    free(err);
    free(missing), free(text), free(db);
    th_rmdir(dir);
    free(dir);
}

/* Trains a run in a child process until it has saved a checkpoint, then stops it with SIGTERM (the
 * trainer saves, marks the run stopped and exits 143 = 128 + SIGTERM). */
static void train_then_stop(const char *db)
{
    pid_t pid = fork();
    cr_assert(pid >= 0);
    if (pid == 0) {
        int fd = open("/dev/null", O_WRONLY);
        dup2(fd, 1);
        dup2(fd, 2);
        execl(SEQLITE_BIN, SEQLITE_BIN, "train", db, "--layers", "1", "--emb", "8", "--hidden", "8", "--batch", "10",
              "--threads", "1", "--valid-bleu", "5", "--steps", "100000000", "--time-limit", "2", "--valid-every", "2", "--save-every",
              "2", "--name", "first", (char *)NULL);
        _exit(127);
    }
    sqlite3 *h;
    int64_t n = 0;
    for (int i = 0; i < 6000 && n < 1; i++) {
        usleep(10000);
        if (sqlite3_open_v2(db, &h, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
            sqlite3_close(h);
            continue;
        }
        sqlite3_busy_timeout(h, 10000);
        sqlite3_stmt *st;
        if (sqlite3_prepare_v2(h, "SELECT count(*) FROM checkpoint", -1, &st, NULL) == SQLITE_OK &&
            sqlite3_step(st) == SQLITE_ROW)
            n = sqlite3_column_int64(st, 0);
        sqlite3_finalize(st);
        sqlite3_close(h);
    }
    cr_assert_geq(n, 1, "no checkpoint after 60 s");
    /* while it trains: info reads beside the writer (its status is the lease's business: running with
     * a live owner, interrupted while the trainer holds no lease; the finished_run test checks both) */
    char *out = NULL, *err = NULL;
    cr_assert_eq(runf(&out, &err, "info '%s' --json", db), 0, "%s", err);
    assert_json_shape(out);
    assert_jx(out, "$.runs[0].name", "first");
    assert_jx(out, "$.runs[0].ended_at", "");
    free(out), free(err);
    cr_assert_eq(kill(pid, SIGTERM), 0);
    int status;
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 143, "trainer status %d", status);
}

Test(info, half_trained_stopped_and_interrupted_runs)
{
    char *dir = th_tmpdir();
    char *db = make_db(dir, "h", 1);
    RUN_OK("vocab '%s' --size 300 --min-count 1", db);
    train_then_stop(db);
    RUN_OK("train '%s' " TINY " --steps 3 --name second", db);
    /* the second run "crashed": running, owned by a process that does not exist on this host */
    char self[128], sql[512];
    db_run_owner_self(self, sizeof self);
    snprintf(sql, sizeof sql,
             "UPDATE run SET status = 'running', ended_at = NULL, owner = '999999999%s',"
             " heartbeat_at = strftime('%%Y-%%m-%%dT%%H:%%M:%%fZ', 'now') WHERE id = 2",
             strchr(self, '@'));
    exec_sql(db, sql);

    char *out = NULL, *err = NULL, want[1024];
    cr_assert_eq(runf(&out, &err, "info '%s'", db), 0, "%s", err);
    ASSERT_LINE(out, "vocabularies");
    ASSERT_LINE(out, "bpe", "joint", "NFKC");
    ASSERT_LINE(out, "id", "name", "status", "model", "steps", "time", "best ppl", "BLEU");
    ASSERT_LINE(out, " 1  first ", " stopped ", " 1x8 bi general ");
    ASSERT_LINE(out, " 2  second ", " interrupted ", " 3/3 ");
    snprintf(want, sizeof want, "resume run 1: seqlite train %s --resume --run 1\n", db);
    cr_assert(strstr(out, want), "%s", out);
    snprintf(want, sizeof want, "resume run 2: seqlite train %s --resume\n", db);
    cr_assert(strstr(out, want), "%s", out);
    ASSERT_LINE(out, "checkpoints of run 2");
    ASSERT_LINE(out, "id", "step", "valid ppl", "BLEU", "flags", "MB", "Adam MB");
    ASSERT_LINE(out, " 3 ", " best "); /* the last step (3) validated: the best checkpoint */
    ASSERT_LINE(out, "evaluations: none (seqlite eval");
    assert_aligned(out);
    free(out), free(err);

    /* --run by name: the first run's checkpoints */
    cr_assert_eq(runf(&out, &err, "info '%s' --run first", db), 0, "%s", err);
    ASSERT_LINE(out, "checkpoints of run 1");
    free(out), free(err);

    cr_assert_eq(runf(&out, &err, "info '%s' --json", db), 0, "%s", err);
    assert_json_shape(out);
    assert_jx(out, "$.runs[0].status", "stopped");
    assert_jx(out, "$.runs[1].status", "interrupted");
    assert_jx(out, "$.runs[1].model", "1x8 bi general");
    assert_jx(out, "$.runs[1].steps", "3");
    assert_jx(out, "$.runs[0].steps", "100000000");
    snprintf(want, sizeof want, "seqlite train %s --resume --run 1", db);
    assert_jx(out, "$.runs[0].resume", want);
    snprintf(want, sizeof want, "seqlite train %s --resume", db);
    assert_jx(out, "$.runs[1].resume", want);
    assert_jx(out, "$.checkpoints[0].run_id", "2");
    assert_jx(out, "$.checkpoints[#-1].best", "1");
    assert_jx(out, "$.checkpoints[0].averaged_from", "");
    char *v = json_query(out, "SELECT json_extract(?1, '$.checkpoints[0].bytes') > "
                              "json_extract(?1, '$.checkpoints[0].adam_bytes') AND "
                              "json_extract(?1, '$.checkpoints[0].adam_bytes') > 0", NULL);
    cr_assert_str_eq(v, "1", "%s", out);
    free(v);
    v = json_query(out, "SELECT json_type(?1, '$.runs[0].best_valid_ppl')", NULL);
    cr_assert_str_eq(v, "real", "%s", out);
    free(v), free(out), free(err), free(db);
    th_rmdir(dir);
    free(dir);
}

Test(info, finished_run_with_an_evaluation_and_a_live_owner)
{
    char *dir = th_tmpdir();
    char *db = make_db(dir, "f", 1);
    RUN_OK("vocab '%s' --size 300 --min-count 1", db);
    RUN_OK("train '%s' " TINY " --steps 4 --valid-every 2", db);
    RUN_OK("eval '%s' --beam 2 --length-penalty 0.8 --limit 5 --threads 1", db);

    char *out = NULL, *err = NULL;
    cr_assert_eq(runf(&out, &err, "info '%s'", db), 0, "%s", err);
    ASSERT_LINE(out, " 1  run-1 ", " done ", " 4/4 ");
    cr_assert_null(strstr(out, "resume"), "%s", out);
    ASSERT_LINE(out, "id", "ckpt", "split", "beam", "lp", "limit", "ensemble", "precision", "BLEU", "chrF", "sent/s",
                "when");
    ASSERT_LINE(out, " test ", " 2 ", " 0.80 ", " 5 ");
    assert_cell(out, "ensemble", "precision", " 0.80 ", "fp32");
    assert_aligned(out);
    free(out), free(err);
    /* another precision, and one not recorded (an evaluation stored before schema 4): "-" */
    exec_sql(db, "UPDATE evaluation SET precision = 'bf16'");
    cr_assert_eq(runf(&out, &err, "info '%s'", db), 0, "%s", err);
    assert_cell(out, "ensemble", "precision", " 0.80 ", "bf16");
    free(out), free(err);
    exec_sql(db, "UPDATE evaluation SET precision = NULL");
    cr_assert_eq(runf(&out, &err, "info '%s'", db), 0, "%s", err);
    assert_cell(out, "ensemble", "precision", " 0.80 ", "-");
    assert_aligned(out);
    free(out), free(err);
    cr_assert_eq(runf(&out, &err, "info '%s' --json", db), 0, "%s", err);
    char *t = json_query(out, "SELECT json_type(?1, '$.evaluations[0].precision')", NULL);
    cr_assert_str_eq(t, "null", "%s", out);
    free(t), free(out), free(err);
    exec_sql(db, "UPDATE evaluation SET precision = 'fp32'");

    cr_assert_eq(runf(&out, &err, "info '%s' --json", db), 0, "%s", err);
    assert_json_shape(out);
    assert_jx(out, "$.runs[0].status", "done");
    assert_jx(out, "$.runs[0].resume", "");
    assert_jx(out, "$.evaluations[0].split", "test");
    assert_jx(out, "$.evaluations[0].beam", "2");
    assert_jx(out, "$.evaluations[0].length_penalty", "0.8");
    assert_jx(out, "$.evaluations[0].limit", "5");
    assert_jx(out, "$.evaluations[0].sentences", "5");
    assert_jx(out, "$.evaluations[0].members", "");
    assert_jx(out, "$.evaluations[0].precision", "fp32");
    char *v = json_query(out, "SELECT json_type(?1, '$.evaluations[0].bleu') IN ('real', 'integer') AND"
                              " json_type(?1, '$.evaluations[0].chrf') IN ('real', 'integer') AND"
                              " json_extract(?1, '$.evaluations[0].checkpoint_id') ="
                              " json_extract(?1, '$.runs[0].best_checkpoint')", NULL);
    cr_assert_str_eq(v, "1", "%s", out);
    free(v), free(out), free(err);

    /* a run trained right now by a live process (this one) is running, not interrupted */
    char self[128], sql[512];
    db_run_owner_self(self, sizeof self);
    snprintf(sql, sizeof sql,
             "UPDATE run SET status = 'running', ended_at = NULL, owner = '%s',"
             " heartbeat_at = strftime('%%Y-%%m-%%dT%%H:%%M:%%fZ', 'now') WHERE id = 1",
             self);
    exec_sql(db, sql);
    cr_assert_eq(runf(&out, &err, "info '%s'", db), 0, "%s", err);
    ASSERT_LINE(out, " 1  run-1 ", " running ");
    cr_assert_null(strstr(out, "interrupted"), "%s", out);
    cr_assert_null(strstr(out, "resume"), "%s", out);
    free(out), free(err);
    cr_assert_eq(runf(&out, &err, "info '%s' --json", db), 0, "%s", err);
    assert_jx(out, "$.runs[0].status", "running");
    assert_jx(out, "$.runs[0].owner", self);
    free(out), free(err);
    /* a run stored before the attention and encoder options is the plain model */
    exec_sql(db, "UPDATE run SET config = json_remove(config, '$.attention', '$.encoder') WHERE id = 1");
    cr_assert_eq(runf(&out, &err, "info '%s' --json", db), 0, "%s", err);
    assert_jx(out, "$.runs[0].model", "1x8 uni");
    assert_jx(out, "$.runs[0].encoder", "uni");
    assert_jx(out, "$.runs[0].attention", "none");
    free(out), free(err), free(db);
    th_rmdir(dir);
    free(dir);
}
