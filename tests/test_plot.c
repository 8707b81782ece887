/* tests/test_plot.c: the learning-curve store reads (corpus/db_curve.c) and `seqlite plot` end to end:
 * a tiny database is built through the command line (import, vocab, two short training runs), then
 * plotted; the SVG is parsed back with Python's XML parser (python3 is a set-up dependency), which
 * checks that it is well-formed and yields the text of its <text> elements (PLplot writes every
 * character as a character reference, so the raw file cannot be searched). Bad input: an unknown
 * run, runs without any logged step, an unwritable output path; none of them leaves a file behind. */
#include <criterion/criterion.h>

#include "corpus/db.h"
#include "tests/helpers.h"
#include "util/err.h"

#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

TestSuite(plot, .timeout = 240);

/* dir/NAME.{xx,yy}: n copy-task lines (the target is the source). */
static void write_pairs(const char *dir, const char *name, int n, unsigned seed)
{
    static const char *const words[] = {"red", "blue", "green", "cat", "dog", "sun", "moon", "tree"};
    char file[64], line[128];
    char *text = calloc((size_t)n, sizeof line);
    cr_assert(text);
    size_t len = 0;
    for (int i = 0; i < n; i++) {
        seed = seed * 1103515245u + 12345u;
        snprintf(line, sizeof line, "%s %s %s\n", words[seed >> 28 & 7], words[seed >> 24 & 7], words[seed >> 20 & 7]);
        memcpy(text + len, line, strlen(line));
        len += strlen(line);
    }
    for (int side = 0; side < 2; side++) {
        snprintf(file, sizeof file, "%s.%s", name, side ? "yy" : "xx");
        char *path = th_path(dir, file);
        cr_assert_eq(th_write_file(path, text, len), 0);
        free(path);
    }
    free(text);
}

/* Runs "seqlite ARGS", asserting that it succeeds. */
static void seq_ok(const char *args)
{
    char *err = NULL;
    int rc = th_run(args, NULL, NULL, &err);
    cr_assert_eq(rc, 0, "seqlite %s: %s", args, err ? err : "");
    free(err);
}

/* dir/c.db: a train and a valid corpus, a vocabulary and two tiny runs ('first', 'second') that log
 * every 2 steps and validate (perplexity and BLEU) every 3. Returns the path (malloc'd). */
static char *make_trained_db(const char *dir)
{
    write_pairs(dir, "train", 40, 1);
    write_pairs(dir, "valid", 10, 2);
    char *db = th_path(dir, "c.db"), *tr = th_path(dir, "train.xx"), *va = th_path(dir, "valid.xx");
    char args[2048];
    snprintf(args, sizeof args, "import '%s' '%s' '%.*syy'", db, tr, (int)strlen(tr) - 2, tr);
    seq_ok(args);
    snprintf(args, sizeof args, "import '%s' '%s' '%.*syy' --split valid", db, va, (int)strlen(va) - 2, va);
    seq_ok(args);
    snprintf(args, sizeof args, "vocab '%s' --size 300 --min-count 1", db);
    seq_ok(args);
    for (int r = 0; r < 2; r++) {
        snprintf(args, sizeof args,
                 "train '%s' --name %s --seed %d --steps 6 --log-every 2 --valid-every 3 --valid-bleu 5"
                 " --save-every 0 --layers 1 --emb 8 --hidden 12 --batch 10 --threads 1",
                 db, r ? "second" : "first", r + 1);
        seq_ok(args);
    }
    free(tr);
    free(va);
    return db;
}

/* The text of every <text> element of the SVG at path, one per line (malloc'd); NULL when it is not
 * well-formed XML or not an <svg> document. */
static char *svg_texts(const char *path)
{
    char cmd[2048];
    snprintf(cmd, sizeof cmd,
             "python3 -c 'import sys, xml.etree.ElementTree as E\n"
             "root = E.parse(sys.argv[1]).getroot()\n"
             "assert root.tag == \"{http://www.w3.org/2000/svg}svg\", root.tag\n"
             "for t in root.iter(\"{http://www.w3.org/2000/svg}text\"): print(\"\".join(t.itertext()))' '%s' 2>/dev/null",
             path);
    FILE *f = popen(cmd, "r");
    cr_assert(f);
    size_t cap = 1 << 16, n = 0;
    char *out = malloc(cap);
    cr_assert(out);
    size_t got;
    while ((got = fread(out + n, 1, cap - 1 - n, f)) > 0) {
        n += got;
        if (n == cap - 1) {
            cap *= 2;
            out = realloc(out, cap);
            cr_assert(out);
        }
    }
    out[n] = 0;
    if (pclose(f) != 0) {
        free(out);
        return NULL;
    }
    return out;
}

/* 1 when texts (svg_texts) has a line equal to s. */
static int has_line(const char *texts, const char *s)
{
    size_t len = strlen(s);
    for (const char *p = texts; (p = strstr(p, s)) != NULL; p++)
        if ((p == texts || p[-1] == '\n') && (p[len] == '\n' || p[len] == 0))
            return 1;
    return 0;
}

/* Entries of dir whose name starts with prefix. */
static int count_entries(const char *dir, const char *prefix)
{
    DIR *d = opendir(dir);
    cr_assert(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        n += strncmp(e->d_name, prefix, strlen(prefix)) == 0;
    closedir(d);
    return n;
}

struct pts {
    int64_t step[64];
    double x[64], v[64];
    int n;
};

static int pts_add(void *ctx, const struct db_curve_point *p)
{
    struct pts *s = ctx;
    if (s->n < 64) {
        s->step[s->n] = p->step;
        s->x[s->n] = p->elapsed_s;
        s->v[s->n] = p->value;
        s->n++;
    }
    return 0;
}

struct runs {
    int64_t id[8], n_loss[8], n_valid[8];
    char name[8][64];
    int n;
};

static int runs_add(void *ctx, const struct db_curve_run *r)
{
    struct runs *s = ctx;
    if (s->n < 8) {
        s->id[s->n] = r->id;
        s->n_loss[s->n] = r->n_loss;
        s->n_valid[s->n] = r->n_valid;
        snprintf(s->name[s->n], sizeof s->name[0], "%s", r->name);
        s->n++;
    }
    return 0;
}

Test(plot, store_reads_the_curves_of_a_run)
{
    char *dir = th_tmpdir(), *path = make_trained_db(dir);
    struct db *db;
    cr_assert_eq(db_open(path, 0, &db), 0, "%s", sl_errmsg());
    struct runs R = {0};
    cr_assert_eq(db_curve_runs_foreach(db, runs_add, &R), 0, "%s", sl_errmsg());
    cr_assert_eq(R.n, 2);
    cr_assert_str_eq(R.name[0], "first");
    cr_assert_str_eq(R.name[1], "second");
    cr_assert_eq(R.n_loss[0], 3, "steps 2, 4, 6 logged: %lld", (long long)R.n_loss[0]);

    struct pts L = {0}, P = {0}, B = {0};
    cr_assert_eq(db_curve_loss_foreach(db, R.id[0], pts_add, &L), 0, "%s", sl_errmsg());
    cr_assert_eq(L.n, 3);
    for (int i = 0; i < 3; i++) {
        cr_assert_eq(L.step[i], 2 * (i + 1));
        cr_assert(L.v[i] > 0 && isfinite(L.x[i]));
    }
    cr_assert_eq(db_curve_metric_foreach(db, R.id[0], "valid", "ppl", pts_add, &P), 0, "%s", sl_errmsg());
    cr_assert_eq(P.n, 2, "validations at steps 3 and 6: %d", P.n);
    cr_assert_eq(P.step[0], 3);
    cr_assert_eq(P.step[1], 6);
    /* the wall time of step 3 is that of the last logged step before it (2) */
    cr_assert_float_eq(P.x[0], L.x[0], 1e-12);
    cr_assert_float_eq(P.x[1], L.x[2], 1e-12);

    /* a second value at a step (a later eval) does not add a point: the first one stays */
    cr_assert_eq(db_metric_insert(db, R.id[0], 0, 6, "valid", "bleu", 99.0, NULL), 0, "%s", sl_errmsg());
    cr_assert_eq(db_curve_metric_foreach(db, R.id[0], "valid", "bleu", pts_add, &B), 0, "%s", sl_errmsg());
    cr_assert_eq(B.n, 2);
    cr_assert(B.v[1] != 99.0);
    db_close(db);
    th_rmdir(dir);
    free(dir);
    free(path);
}

Test(plot, two_runs_overlaid_in_a_well_formed_svg)
{
    char *dir = th_tmpdir(), *path = make_trained_db(dir), *svg = th_path(dir, "curve.svg");
    char args[2048], *out = NULL, *err = NULL;
    snprintf(args, sizeof args, "plot '%s' -o '%s'", path, svg);
    cr_assert_eq(th_run(args, NULL, &out, &err), 0, "%s", err);
    cr_assert_str_eq(out, "", "PLplot printed on stdout: %s", out);
    cr_assert(strstr(err, "plot: 2 runs -> ") && !strstr(err, "PLPLOT"), "%s", err);
    free(out);
    free(err);

    size_t len;
    char *raw = th_read_file(svg, &len);
    cr_assert(raw && len > 0);
    cr_assert(strncmp(raw, "<?xml", 5) == 0 || strncmp(raw, "<svg", 4) == 0);
    cr_assert(strstr(raw, "</svg>"));
    free(raw);
    char *texts = svg_texts(svg);
    cr_assert(texts, "not a well-formed SVG document");
    const char *want[] = {"first", "second", "step", "training loss (nats/token)", "validation perplexity",
                          "validation BLEU", "learning curves: c.db"};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        cr_assert(has_line(texts, want[i]), "no text '%s' in:\n%s", want[i], texts);
    free(texts);

    /* one run by name, the wall time on x, a title */
    snprintf(args, sizeof args, "plot '%s' --run second --x time --title 'run two' --output='%s'", path, svg);
    cr_assert_eq(th_run(args, NULL, NULL, &err), 0, "%s", err);
    free(err);
    texts = svg_texts(svg);
    cr_assert(texts);
    cr_assert(has_line(texts, "second") && !has_line(texts, "first"), "%s", texts);
    cr_assert(has_line(texts, "run two") && has_line(texts, "wall time (seconds)"), "%s", texts);
    free(texts);

    /* ids and names, repeated and comma-separated */
    snprintf(args, sizeof args, "plot '%s' --run 2 --run=first,2 -o '%s'", path, svg);
    cr_assert_eq(th_run(args, NULL, NULL, &err), 0, "%s", err);
    cr_assert(strstr(err, "plot: 2 runs"), "%s", err);
    free(err);
    cr_assert_eq(count_entries(dir, "."), 2, "only . and .. besides the files: no temporary file left");
    th_rmdir(dir);
    free(dir);
    free(path);
    free(svg);
}

Test(plot, bad_runs_and_paths_fail_clearly_and_write_nothing)
{
    char *dir = th_tmpdir(), *path = make_trained_db(dir), *svg = th_path(dir, "curve.svg");
    cr_assert_eq(th_write_file(svg, "old", 3), 0);
    char args[2048], *err = NULL;

    snprintf(args, sizeof args, "plot '%s' --run nosuch -o '%s'", path, svg);
    cr_assert_eq(th_run(args, NULL, NULL, &err), 1);
    cr_assert(strstr(err, "seqlite: plot: no run 'nosuch' in ") && strstr(err, "1 first, 2 second"), "%s", err);
    free(err);

    /* a run without a single logged step: alone it is an error, among others it is left out */
    struct db *db;
    cr_assert_eq(db_open(path, 0, &db), 0);
    struct db_run r = {.name = "empty", .threads = 1};
    int64_t id;
    cr_assert_eq(db_run_create(db, &r, &id), 0, "%s", sl_errmsg());
    db_close(db);
    snprintf(args, sizeof args, "plot '%s' --run empty -o '%s'", path, svg);
    cr_assert_eq(th_run(args, NULL, NULL, &err), 1);
    cr_assert(strstr(err, "seqlite: plot: nothing to plot:"), "%s", err);
    free(err);
    size_t len;
    char *raw = th_read_file(svg, &len);
    cr_assert(raw && len == 3 && memcmp(raw, "old", 3) == 0, "OUT changed by a failed plot");
    free(raw);

    snprintf(args, sizeof args, "plot '%s' -o '%s'", path, svg);
    cr_assert_eq(th_run(args, NULL, NULL, &err), 0, "%s", err);
    cr_assert(strstr(err, "run 3 'empty' has no logged steps yet: left out"), "%s", err);
    cr_assert(strstr(err, "plot: 2 runs"), "%s", err);
    free(err);
    char *texts = svg_texts(svg);
    cr_assert(texts && has_line(texts, "first") && !has_line(texts, "empty"));
    free(texts);

    /* unwritable: a missing directory, a directory in the way */
    snprintf(args, sizeof args, "plot '%s' -o '%s/no/such/dir/x.svg'", path, dir);
    cr_assert_eq(th_run(args, NULL, NULL, &err), 1);
    cr_assert(strstr(err, "seqlite: plot: cannot write ") && strstr(err, "No such file or directory"), "%s", err);
    free(err);
    char *sub = th_path(dir, "d.svg");
    char mk[1024];
    snprintf(mk, sizeof mk, "mkdir '%s'", sub);
    cr_assert_eq(system(mk), 0);
    snprintf(args, sizeof args, "plot '%s' -o '%s'", path, sub);
    cr_assert_eq(th_run(args, NULL, NULL, &err), 1);
    cr_assert(strstr(err, "seqlite: plot: cannot write "), "%s", err);
    free(err);
    cr_assert_eq(count_entries(dir, "."), 2, "a temporary file was left behind");

    /* usage errors */
    snprintf(args, sizeof args, "plot '%s' -o '%s/x.png'", path, dir);
    cr_assert_eq(th_run(args, NULL, NULL, &err), 2);
    cr_assert(strstr(err, "does not end in .svg"), "%s", err);
    free(err);
    snprintf(args, sizeof args, "plot '%s'", path);
    cr_assert_eq(th_run(args, NULL, NULL, &err), 2);
    cr_assert(strstr(err, "expected -o OUT.svg"), "%s", err);
    free(err);
    snprintf(args, sizeof args, "plot '%s' -o '%s' --x epoch", path, svg);
    cr_assert_eq(th_run(args, NULL, NULL, &err), 2);
    free(err);
    th_rmdir(dir);
    free(dir);
    free(path);
    free(svg);
    free(sub);
}

Test(plot, a_database_without_runs_is_an_error)
{
    char *dir = th_tmpdir(), *path = th_path(dir, "e.db"), *svg = th_path(dir, "e.svg");
    struct db *db;
    cr_assert_eq(db_open(path, DB_CREATE, &db), 0);
    db_close(db);
    char args[2048], *err = NULL;
    snprintf(args, sizeof args, "plot '%s' -o '%s'", path, svg);
    cr_assert_eq(th_run(args, NULL, NULL, &err), 1);
    cr_assert(strstr(err, "no training run in "), "%s", err);
    free(err);
    FILE *f = fopen(svg, "r");
    cr_assert_null(f, "nothing written");
    th_rmdir(dir);
    free(dir);
    free(path);
    free(svg);
}
