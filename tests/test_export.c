/* tests/test_export.c: shipping and averaging checkpoints: `seqlite export` (a small database that
 * translates byte for byte as the original, without optimizer state, never replacing a file, leaving
 * nothing behind when it fails), `seqlite average` (the mean of trained checkpoints, exact for one,
 * element by element for two, averaged_from, bad input storing nothing), and how averaged checkpoints
 * stay out of "last", resume and pruning (corpus/db_ckpt.c); the mean itself (nn/average.h). */
#include <criterion/criterion.h>

#include <dirent.h>
#include <math.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "corpus/db.h"
#include "model/checkpoint.h"
#include "nn/average.h"
#include "nn/params.h"
#include "tests/helpers.h"
#include "util/err.h"

static int runf(char **out, char **err, const char *in, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static int runf(char **out, char **err, const char *in, const char *fmt, ...)
{
    char args[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    return th_run(args, in, out, err);
}

/* Runs sql on the file directly (what a user with the sqlite3 shell can do); returns the first
 * column of the first row as an integer (0 when there is none). */
static int64_t sql_int(const char *db_path, const char *sql)
{
    sqlite3 *h;
    cr_assert_eq(sqlite3_open(db_path, &h), SQLITE_OK);
    sqlite3_busy_timeout(h, 10000);
    sqlite3_stmt *st;
    cr_assert_eq(sqlite3_prepare_v2(h, sql, -1, &st, NULL), SQLITE_OK, "%s: %s", sql, sqlite3_errmsg(h));
    int r = sqlite3_step(st);
    cr_assert(r == SQLITE_ROW || r == SQLITE_DONE, "%s: %s", sql, sqlite3_errmsg(h));
    int64_t v = r == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
    sqlite3_finalize(st);
    sqlite3_close(h);
    return v;
}

static char *trained_db_sized(const char *dir, int steps, int emb, int hidden);
/* dir/m.db with train, valid (and test) corpora and a vocabulary, trained for `steps` steps of a tiny
 * copy model with a checkpoint every 10 steps (keep 3). Returns the db path (malloc'd). */
static char *trained_db(const char *dir, int steps) { return trained_db_sized(dir, steps, 16, 24); }

/* trained_db with embeddings of emb and hidden units. */
static char *trained_db_sized(const char *dir, int steps, int emb, int hidden)
{
    cr_assert_eq(th_write_copy(dir, "train", 200, 11), 0);
    cr_assert_eq(th_write_copy(dir, "valid", 20, 12), 0);
    cr_assert_eq(th_write_copy(dir, "test", 20, 13), 0);
    char *db = th_path(dir, "m.db");
    char *err = NULL;
    cr_assert_eq(runf(NULL, &err, NULL, "import '%s' '%s/train.src' '%s/train.tgt'", db, dir, dir), 0, "%s", err);
    free(err);
    cr_assert_eq(runf(NULL, NULL, NULL, "import '%s' '%s/valid.src' '%s/valid.tgt' --split valid", db, dir, dir), 0);
    cr_assert_eq(runf(NULL, NULL, NULL, "vocab '%s' --size 300 --min-count 1", db), 0);
    cr_assert_eq(runf(NULL, &err, NULL,
                      "train '%s' --layers 1 --emb %d --hidden %d --steps %d --batch 32 --lr 0.05 --dropout 0 "
                      "--valid-every 10 --save-every 10 --keep 3 --valid-bleu 0 --log-every 1000 --threads 1",
                      db, emb, hidden, steps),
                 0, "%s", err);
    free(err);
    return db;
}

/* The checkpoint id printed by `seqlite average` ("checkpoint ID: ..."). */
static int64_t average_id(const char *out)
{
    cr_assert(out && strncmp(out, "checkpoint ", 11) == 0, "%s", out ? out : "(null)");
    return strtoll(out + 11, NULL, 10);
}

static int64_t average(const char *db, const char *args)
{
    char *out = NULL, *err = NULL;
    cr_assert_eq(runf(&out, &err, NULL, "average '%s' %s", db, args), 0, "%s", err);
    int64_t id = average_id(out);
    free(out);
    free(err);
    return id;
}

/* Number of entries in dir (besides . and ..). */
static int dir_entries(const char *dir)
{
    DIR *d = opendir(dir);
    cr_assert_not_null(d);
    int n = 0;
    for (struct dirent *e; (e = readdir(d));)
        n += strcmp(e->d_name, ".") && strcmp(e->d_name, "..");
    closedir(d);
    return n;
}

/* ---- the mean ---- */

Test(average, mean_in_double_exact_for_one_buffer)
{
    const float a[4] = {1.0f, -2.5f, 0.1f, 3.0e-8f};
    const float b[4] = {3.0f, 0.5f, 0.2f, 1.0f};
    double sum[4] = {0};
    float out[4];
    average_add(sum, a, 4);
    average_mean(out, sum, 4, 1);
    cr_assert(memcmp(out, a, sizeof a) == 0, "the mean of one buffer is that buffer");
    average_add(sum, b, 4);
    average_mean(out, sum, 4, 2);
    cr_assert_eq(out[0], 2.0f);
    cr_assert_eq(out[1], -1.0f);
    cr_assert_eq(out[2], (float)(((double)0.1f + (double)0.2f) / 2.0));
    cr_assert_eq(out[3], (float)(((double)3.0e-8f + 1.0) / 2.0));
    /* in double: a float sum would lose the small term */
    const float big = 16777216.0f, one = 1.0f;
    double s2[1] = {0};
    average_add(s2, &big, 1);
    average_add(s2, &one, 1);
    average_add(s2, &one, 1);
    average_mean(out, s2, 1, 3);
    cr_assert_eq(out[0], (float)(16777218.0 / 3.0));
}

/* ---- the store: averaged checkpoints are not "last", not pruned, not counted as kept ---- */

Test(average_store, last_prune_and_select_skip_averaged)
{
    char *dir = th_tmpdir();
    char *path = th_path(dir, "s.db");
    struct db *db;
    cr_assert_eq(db_open(path, DB_CREATE, &db), 0, "%s", sl_errmsg());
    struct db_run r;
    memset(&r, 0, sizeof r);
    r.config = "{\"best_by_bleu\":0}";
    int64_t run_id, ids[4], avg;
    cr_assert_eq(db_run_create(db, &r, &run_id), 0, "%s", sl_errmsg());
    const double ppl[4] = {9.0, 7.0, 8.0, NAN};
    for (int i = 0; i < 4; i++) {
        struct db_checkpoint c = {.run_id = run_id, .step = 10 * (i + 1), .valid_ppl = ppl[i], .valid_bleu = NAN};
        cr_assert_eq(db_ckpt_insert(db, &c, &ids[i]), 0, "%s", sl_errmsg());
    }
    struct db_checkpoint c = {.run_id = run_id, .step = 40, .valid_ppl = NAN, .valid_bleu = NAN};
    cr_assert_eq(db_ckpt_insert(db, &c, &avg), 0, "%s", sl_errmsg());
    cr_assert_eq(db_ckpt_set_averaged_from(db, avg, ids + 2, 2), 0, "%s", sl_errmsg());

    int64_t id, n, got[4];
    size_t nm;
    cr_assert_eq(db_ckpt_find(db, run_id, "last", &id), 0);
    cr_assert_eq(id, ids[3], "last is the newest trained checkpoint, not the averaged %lld", (long long)avg);
    cr_assert_eq(db_ckpt_find(db, 0, "last", &id), 0);
    cr_assert_eq(id, ids[3]);
    struct db_checkpoint back;
    cr_assert_eq(db_ckpt_get(db, avg, &back), 0);
    cr_assert(back.averaged && !back.is_best);
    cr_assert_eq(db_ckpt_get(db, ids[0], &back), 0);
    cr_assert(!back.averaged);
    cr_assert_eq(db_ckpt_averaged_from(db, avg, got, 4, &nm), 0);
    cr_assert(nm == 2 && got[0] == ids[2] && got[1] == ids[3]);
    cr_assert_eq(db_ckpt_averaged_from(db, ids[0], got, 4, &nm), 0);
    cr_assert_eq(nm, 0);

    /* selection: trained only, ascending ids */
    cr_assert_eq(db_ckpt_count_trained(db, run_id, DB_CKPT_NEWEST, &n), 0);
    cr_assert_eq(n, 4);
    cr_assert_eq(db_ckpt_count_trained(db, run_id, DB_CKPT_LOWEST_PPL, &n), 0);
    cr_assert_eq(n, 3);
    cr_assert_eq(db_ckpt_select(db, run_id, DB_CKPT_NEWEST, 2, got, &n), 0);
    cr_assert(n == 2 && got[0] == ids[2] && got[1] == ids[3]);
    cr_assert_eq(db_ckpt_select(db, run_id, DB_CKPT_LOWEST_PPL, 2, got, &n), 0);
    cr_assert(n == 2 && got[0] == ids[1] && got[1] == ids[2], "ppl 7 and 8: %lld %lld", (long long)got[0],
              (long long)got[1]);
    cr_assert_eq(db_ckpt_select(db, run_id, DB_CKPT_HIGHEST_BLEU, 2, got, &n), 0);
    cr_assert_eq(n, 0);

    /* pruning to 1 keeps the newest trained one (the averaged one is not counted) and the averaged one */
    cr_assert_eq(db_ckpt_prune(db, run_id, 1), 0);
    cr_assert_eq(db_ckpt_get(db, avg, &back), 0, "pruning deleted the averaged checkpoint");
    cr_assert_eq(db_ckpt_get(db, ids[3], &back), 0, "the newest trained checkpoint is kept");
    cr_assert_eq(db_ckpt_get(db, ids[2], &back), SL_ENOTFOUND);
    cr_assert_eq(db_ckpt_get(db, ids[0], &back), SL_ENOTFOUND);

    /* with only averaged checkpoints left (an exported file), "last" falls back to one */
    cr_assert_eq(db_run_rewind(db, run_id, 0), 0);
    int64_t only;
    struct db_checkpoint c2 = {.run_id = run_id, .step = 0, .valid_ppl = NAN, .valid_bleu = NAN};
    cr_assert_eq(db_ckpt_insert(db, &c2, &only), 0);
    cr_assert_eq(db_ckpt_set_averaged_from(db, only, ids, 2), 0);
    cr_assert_eq(db_ckpt_find(db, run_id, "last", &id), 0);
    cr_assert_eq(id, only);
    cr_assert_eq(db_ckpt_set_averaged_from(db, 9999, ids, 2), SL_ENOTFOUND);
    db_close(db);
    th_rmdir(dir);
    free(dir);
    free(path);
}

/* ---- export ---- */

Test(export_cli, translates_identically_without_optimizer_state, .timeout = 120)
{
    char *dir = th_tmpdir();
    char *db = trained_db(dir, 40);
    char *out_db = th_path(dir, "ship.db");
    char *out = NULL, *err = NULL;
    cr_assert_eq(runf(&out, &err, NULL, "export '%s' '%s'", db, out_db), 0, "%s", err);
    int64_t best = sql_int(db, "SELECT id FROM checkpoint WHERE is_best = 1");
    char want[256];
    snprintf(want, sizeof want, "exported checkpoint %lld (run 'run-1', step ", (long long)best);
    cr_assert(strstr(out, want) && strstr(out, "with optimizer state)"), "%s", out);
    free(out);
    free(err);
    cr_assert_gt(sql_int(db, "SELECT count(*) FROM tensor WHERE name LIKE 'adam.%'"), 0);
    cr_assert_eq(sql_int(out_db, "SELECT count(*) FROM tensor WHERE name LIKE 'adam.%'"), 0);
    cr_assert_eq(sql_int(out_db, "SELECT count(*) FROM tensor"),
                 sql_int(db, "SELECT count(*) FROM tensor WHERE checkpoint_id = (SELECT id FROM checkpoint WHERE"
                             " is_best = 1) AND name NOT LIKE 'adam.%'"));
    cr_assert_eq(sql_int(out_db, "SELECT count(*) FROM checkpoint"), 1);
    cr_assert_eq(sql_int(out_db, "SELECT id FROM checkpoint"), best, "ids are kept");
    cr_assert_eq(sql_int(out_db, "SELECT count(*) FROM run WHERE name = 'run-1' AND status = 'done'"), 1);
    cr_assert_eq(sql_int(out_db, "SELECT count(*) FROM pair"), 0);
    cr_assert_eq(sql_int(out_db, "SELECT count(*) FROM token"), sql_int(db, "SELECT count(*) FROM token"));
    cr_assert_eq(sql_int(out_db, "SELECT count(*) FROM merge"), sql_int(db, "SELECT count(*) FROM merge"));
    cr_assert_eq(sql_int(out_db, "PRAGMA freelist_count"), 0, "vacuumed");

    /* the same output, greedy and beam with n-best */
    char *src = th_path(dir, "test.src");
    const char *modes[] = {"--beam 1", "--beam 3 --nbest 2"};
    for (int i = 0; i < 2; i++) {
        char *a = NULL, *b = NULL;
        cr_assert_eq(runf(&a, NULL, src, "translate '%s' %s", db, modes[i]), 0);
        cr_assert_eq(runf(&b, NULL, src, "translate '%s' %s", out_db, modes[i]), 0);
        cr_assert_str_eq(a, b, "%s", modes[i]);
        size_t nonempty = 0;
        for (const char *p = a; *p; p++)
            nonempty += p[0] != '\n' && (p[1] == '\n');
        cr_assert_gt(nonempty, 0, "the model translates something: '%s'", a);
        free(a);
        free(b);
    }
    /* eval works once a test split is imported into the export, with the same scores */
    cr_assert_eq(runf(NULL, NULL, NULL, "import '%s' '%s/test.src' '%s/test.tgt' --split test", out_db, dir, dir), 0);
    cr_assert_eq(runf(NULL, NULL, NULL, "import '%s' '%s/test.src' '%s/test.tgt' --split test", db, dir, dir), 0);
    char *ea = NULL, *eb = NULL;
    cr_assert_eq(runf(&ea, &err, NULL, "eval '%s' --beam 2", db), 0, "%s", err);
    free(err);
    cr_assert_eq(runf(&eb, &err, NULL, "eval '%s' --beam 2", out_db), 0, "%s", err);
    free(err);
    cr_assert_str_eq(ea, eb);
    free(ea);
    free(eb);
    free(src);
    free(out_db);
    free(db);
    th_rmdir(dir);
    free(dir);
}

/* float32 -> bf16, to nearest, ties to even (finite values). */
static uint16_t bf16_of(float x)
{
    uint32_t u;
    memcpy(&u, &x, 4);
    return (uint16_t)((u + 0x7FFFu + ((u >> 16) & 1u)) >> 16);
}

/* Every value of a tensor of checkpoint id in the two files: a bf16 one is the rounded f32 one, or the
 * same bf16 one. */
static void check_rounded(const char *src_path, const char *bf16_path, int64_t id)
{
    sqlite3 *a, *b;
    cr_assert_eq(sqlite3_open(src_path, &a), SQLITE_OK);
    cr_assert_eq(sqlite3_open(bf16_path, &b), SQLITE_OK);
    sqlite3_stmt *sa, *sb;
    cr_assert_eq(sqlite3_prepare_v2(b, "SELECT name, dtype, data FROM tensor WHERE checkpoint_id = ?1", -1, &sb, NULL),
                 SQLITE_OK);
    cr_assert_eq(sqlite3_prepare_v2(a, "SELECT data, dtype FROM tensor WHERE checkpoint_id = ?1 AND name = ?2", -1, &sa,
                                    NULL),
                 SQLITE_OK);
    sqlite3_bind_int64(sb, 1, id);
    int n_bf16 = 0;
    while (sqlite3_step(sb) == SQLITE_ROW) {
        const char *name = (const char *)sqlite3_column_text(sb, 0);
        const char *dtype = (const char *)sqlite3_column_text(sb, 1);
        sqlite3_reset(sa);
        sqlite3_bind_int64(sa, 1, id);
        sqlite3_bind_text(sa, 2, name, -1, SQLITE_TRANSIENT);
        cr_assert_eq(sqlite3_step(sa), SQLITE_ROW, "%s", name);
        const unsigned char *fa = sqlite3_column_blob(sa, 0), *fb = sqlite3_column_blob(sb, 2);
        int na = sqlite3_column_bytes(sa, 0), nb = sqlite3_column_bytes(sb, 2);
        if (strcmp(dtype, (const char *)sqlite3_column_text(sa, 1)) == 0) {
            cr_assert(na == nb && memcmp(fa, fb, (size_t)na) == 0, "%s: %s tensor changed", name, dtype);
            n_bf16 += strcmp(dtype, "bf16") == 0;
            continue;
        }
        cr_assert_str_eq(dtype, "bf16", "%s", name);
        cr_assert_eq(nb * 2, na, "%s: %d bytes of bf16 for %d of f32", name, nb, na);
        n_bf16++;
        for (int i = 0; i < na / 4; i++) {
            float x;
            memcpy(&x, fa + 4 * i, 4); /* little-endian host (the test's assumption) */
            uint16_t got = (uint16_t)(fb[2 * i] | fb[2 * i + 1] << 8);
            cr_assert_eq(got, bf16_of(x), "%s[%d]: %#x, want %#x (of %a)", name, i, got, bf16_of(x), (double)x);
        }
    }
    cr_assert_gt(n_bf16, 0);
    sqlite3_finalize(sa);
    sqlite3_finalize(sb);
    sqlite3_close(a);
    sqlite3_close(b);
}

/* --precision bf16 stores the matrices (weights, embeddings) rounded to bf16, biases as they were: about
 * half the file; decoding it in bf16 gives exactly the source's bf16 translations (those products round
 * the weights to the same values), in fp32 it translates too; bad data in a bf16 tensor is named. Sizes
 * (emb 32, hidden 64) where every product with a weight is large enough to run in bf16. */
Test(export_cli, bf16_rounds_the_matrices_and_decodes_as_bf16_does, .timeout = 120)
{
    setenv("SEQLITE_BF16_EMULATED", "1", 1); /* a CPU without AVX512-BF16 emulates (same numbers) */
    char *dir = th_tmpdir();
    char *db = trained_db_sized(dir, 30, 32, 64);
    char *full = th_path(dir, "full.db"), *half = th_path(dir, "half.db");
    char *out = NULL, *err = NULL;
    cr_assert_eq(runf(NULL, &err, NULL, "export '%s' '%s'", db, full), 0, "%s", err);
    free(err);
    cr_assert_eq(runf(&out, &err, NULL, "export '%s' '%s' --precision bf16", db, half), 0, "%s", err);
    cr_assert(strstr(out, "half.db in bf16: "), "%s", out);
    free(out);
    free(err);
    int64_t best = sql_int(half, "SELECT id FROM checkpoint");
    cr_assert_eq(sql_int(half, "SELECT count(*) FROM tensor WHERE dtype = 'bf16'"),
                 sql_int(full, "SELECT count(*) FROM tensor WHERE json_array_length(shape) = 2"));
    cr_assert_eq(sql_int(half, "SELECT count(*) FROM tensor WHERE dtype = 'f32'"),
                 sql_int(full, "SELECT count(*) FROM tensor WHERE json_array_length(shape) = 1"));
    cr_assert_gt(sql_int(half, "SELECT count(*) FROM tensor WHERE dtype = 'f32'"), 0, "the biases");
    check_rounded(db, half, best);
    int64_t bytes_full = sql_int(full, "SELECT sum(length(data)) FROM tensor");
    int64_t bytes_half = sql_int(half, "SELECT sum(length(data)) FROM tensor");
    cr_assert(bytes_half < bytes_full * 0.52 && bytes_half > bytes_full * 0.5, "%lld of %lld", (long long)bytes_half,
              (long long)bytes_full);
    /* a bf16 export of a bf16 export is the same tensors */
    char *again = th_path(dir, "again.db");
    cr_assert_eq(runf(NULL, NULL, NULL, "export '%s' '%s' --precision bf16", half, again), 0);
    cr_assert_eq(sql_int(again, "SELECT count(*) FROM tensor"), sql_int(half, "SELECT count(*) FROM tensor"));
    check_rounded(half, again, best);

    char *src = th_path(dir, "test.src");
    const char *modes[] = {"--beam 1", "--beam 3 --nbest 2"};
    for (int i = 0; i < 2; i++) {
        char *a = NULL, *b = NULL;
        cr_assert_eq(runf(&a, &err, src, "translate '%s' --checkpoint %lld %s --precision bf16", db, (long long)best,
                          modes[i]),
                     0, "%s", err);
        free(err);
        cr_assert_eq(runf(&b, &err, src, "translate '%s' %s --precision bf16", half, modes[i]), 0, "%s", err);
        free(err);
        cr_assert_str_eq(a, b, "%s", modes[i]);
        free(b);
        /* bf16 is the default precision of a model stored in bf16 */
        cr_assert_eq(runf(&b, &err, src, "translate '%s' %s", half, modes[i]), 0, "%s", err);
        free(err);
        cr_assert_str_eq(a, b, "%s", modes[i]);
        free(b);
        /* fp32 decoding runs on the rounded weights: it translates, each line */
        cr_assert_eq(runf(&b, &err, src, "translate '%s' %s --precision fp32", half, modes[i]), 0, "%s", err);
        free(err);
        size_t la = 0, lb = 0;
        for (const char *p = a; *p; p++)
            la += *p == '\n';
        for (const char *p = b; *p; p++)
            lb += *p == '\n';
        cr_assert_eq(la, lb, "%s", modes[i]);
        free(a);
        free(b);
    }
    /* eval too: bf16 by default, stored as such, the scores of the source's bf16 decoding */
    cr_assert_eq(runf(NULL, NULL, NULL, "import '%s' '%s/test.src' '%s/test.tgt' --split test", half, dir, dir), 0);
    cr_assert_eq(runf(NULL, NULL, NULL, "import '%s' '%s/test.src' '%s/test.tgt' --split test", db, dir, dir), 0);
    char *ea = NULL, *eb = NULL;
    cr_assert_eq(runf(&ea, &err, NULL, "eval '%s' --checkpoint %lld --precision bf16", db, (long long)best), 0, "%s",
                 err);
    free(err);
    cr_assert_eq(runf(&eb, &err, NULL, "eval '%s'", half), 0, "%s", err);
    free(err);
    cr_assert(strncmp(ea, eb, strcspn(ea, "\n")) == 0, "'%s' against '%s'", ea, eb);
    cr_assert_eq(sql_int(half, "SELECT count(*) FROM evaluation WHERE precision = 'bf16'"), 1);
    free(ea);
    free(eb);
    /* bad data in a bf16 tensor: named, nothing translated */
    sql_int(half, "UPDATE tensor SET data = substr(data, 1, 6) WHERE name = 'out.W'");
    cr_assert_eq(runf(&out, &err, src, "translate '%s'", half), 1);
    cr_assert(strstr(err, "tensor out.W: 6 bytes of data, expected") && strstr(err, "(2 per bf16)"), "%s", err);
    cr_assert_str_eq(out, "");
    free(out);
    free(err);
    /* usage */
    char *bad = th_path(dir, "bad.db");
    cr_assert_eq(runf(NULL, &err, NULL, "export '%s' '%s' --precision int8", db, bad), 2);
    cr_assert(strstr(err, "--precision int8: an export is stored in fp32 or bf16"), "%s", err);
    free(err);
    cr_assert_eq(runf(NULL, &err, NULL, "export '%s' '%s' --precision fp16", db, bad), 2);
    cr_assert(strstr(err, "fp16"), "%s", err);
    free(err);
    cr_assert_eq(access(bad, F_OK), -1, "no file for a usage error");
    free(bad);
    free(src);
    free(again);
    free(full);
    free(half);
    free(db);
    th_rmdir(dir);
    free(dir);
}

Test(export_cli, never_replaces_and_leaves_nothing_on_failure, .timeout = 120)
{
    char *dir = th_tmpdir();
    char *db = trained_db(dir, 20);
    char *out_db = th_path(dir, "taken.db");
    const char *mine = "not a database: a file of the user's\n";
    cr_assert_eq(th_write_file(out_db, mine, strlen(mine)), 0);
    char *err = NULL;
    cr_assert_eq(runf(NULL, &err, NULL, "export '%s' '%s'", db, out_db), 1);
    cr_assert(strstr(err, "taken.db: exists already"), "%s", err);
    free(err);
    size_t len;
    char *back = th_read_file(out_db, &len);
    cr_assert(back && len == strlen(mine) && memcmp(back, mine, len) == 0, "the existing file is unchanged");
    free(back);
    /* the database itself as OUT */
    cr_assert_eq(runf(NULL, &err, NULL, "export '%s' '%s'", db, db), 1);
    cr_assert(strstr(err, "exists already"), "%s", err);
    free(err);
    /* a directory that cannot hold it */
    cr_assert_eq(runf(NULL, &err, NULL, "export '%s' '%s/no/such/dir/x.db'", db, dir), 1);
    cr_assert(strstr(err, "cannot create a file in the directory") && strstr(err, "no/such/dir"), "%s", err);
    free(err);
    cr_assert_eq(runf(NULL, &err, NULL, "export '%s' '%s/train.src/x.db'", db, dir), 1);
    cr_assert(strstr(err, "train.src: Not a directory"), "%s", err);
    free(err);
    /* a failure half-way (a checkpoint without its tensors) removes the temporary file */
    int before = dir_entries(dir);
    int64_t last = sql_int(db, "SELECT max(id) FROM checkpoint");
    char sql[128];
    snprintf(sql, sizeof sql, "DELETE FROM tensor WHERE checkpoint_id = %lld", (long long)last);
    sql_int(db, sql);
    cr_assert_eq(runf(NULL, &err, NULL, "export '%s' '%s/new.db' --checkpoint %lld", db, dir, (long long)last), 1);
    cr_assert(strstr(err, "no model tensors"), "%s", err);
    free(err);
    cr_assert_eq(dir_entries(dir), before, "nothing left behind");
    /* usage */
    cr_assert_eq(runf(NULL, &err, NULL, "export '%s'", db), 2);
    cr_assert(strstr(err, "expected DB and OUT.db") && strstr(err, "see 'seqlite help export'"), "%s", err);
    free(err);
    cr_assert_eq(runf(NULL, &err, NULL, "export '%s' '%s/n.db' --checkpoint 999", db, dir), 1);
    cr_assert(strstr(err, "999"), "%s", err);
    free(err);
    cr_assert_eq(dir_entries(dir), before);
    free(out_db);
    free(db);
    th_rmdir(dir);
    free(dir);
}

/* ---- average ---- */

/* Every parameter of checkpoint avg against the mean of members[0..n), element by element. */
static void check_mean(struct db *db, int64_t avg, const int64_t *members, size_t n)
{
    char which[32];
    struct ckpt_model a, m[2];
    snprintf(which, sizeof which, "%lld", (long long)avg);
    cr_assert_eq(ckpt_model_load(db, which, &a), 0, "%s", sl_errmsg());
    cr_assert(n <= 2);
    for (size_t k = 0; k < n; k++) {
        snprintf(which, sizeof which, "%lld", (long long)members[k]);
        cr_assert_eq(ckpt_model_load(db, which, &m[k]), 0, "%s", sl_errmsg());
    }
    size_t differ = 0;
    for (size_t i = 0; i < a.model.table.total; i++) {
        float want = n == 1 ? m[0].w[i] : (float)(((double)m[0].w[i] + (double)m[1].w[i]) / 2.0);
        differ += memcmp(&want, &a.w[i], sizeof want) != 0;
    }
    cr_assert_eq(differ, 0, "%zu of %zu parameters are not the mean", differ, a.model.table.total);
    if (n == 2) {
        /* one tensor straight from the rows */
        const struct param_view *v = param_table_find(&a.model.table, "out.W");
        cr_assert_not_null(v);
        float *x = malloc(v->size * sizeof *x), *y = malloc(v->size * sizeof *y), *z = malloc(v->size * sizeof *z);
        cr_assert_eq(db_tensor_read(db, avg, "out.W", v->ndim, v->shape, z, v->size), 0, "%s", sl_errmsg());
        cr_assert_eq(db_tensor_read(db, members[0], "out.W", v->ndim, v->shape, x, v->size), 0);
        cr_assert_eq(db_tensor_read(db, members[1], "out.W", v->ndim, v->shape, y, v->size), 0);
        size_t moved = 0;
        for (size_t i = 0; i < v->size; i++) {
            cr_assert_eq(z[i], (float)(((double)x[i] + (double)y[i]) / 2.0), "out.W[%zu]", i);
            moved += x[i] != y[i];
        }
        cr_assert_gt(moved, 0, "the members differ");
        free(x);
        free(y);
        free(z);
    }
    for (size_t k = 0; k < n; k++)
        ckpt_model_free(&m[k]);
    ckpt_model_free(&a);
}

Test(average_cli, one_is_exact_two_is_the_mean, .timeout = 120)
{
    char *dir = th_tmpdir();
    char *db_path = trained_db(dir, 30); /* checkpoints at 10, 20, 30 */
    int64_t one = average(db_path, "--last 1");
    int64_t two = average(db_path, "--last 2");
    struct db *db;
    cr_assert_eq(db_open(db_path, 0, &db), 0);
    int64_t ids[3], n;
    cr_assert_eq(db_ckpt_select(db, 1, DB_CKPT_NEWEST, 3, ids, &n), 0);
    cr_assert_eq(n, 3);
    check_mean(db, one, ids + 2, 1);
    check_mean(db, two, ids + 1, 2);
    int64_t got[4];
    size_t nm;
    cr_assert_eq(db_ckpt_averaged_from(db, two, got, 4, &nm), 0);
    cr_assert(nm == 2 && got[0] == ids[1] && got[1] == ids[2], "averaged_from lists the members");
    struct db_checkpoint c, newest;
    cr_assert_eq(db_ckpt_get(db, two, &c), 0);
    cr_assert_eq(db_ckpt_get(db, ids[2], &newest), 0);
    cr_assert(c.averaged && !c.is_best && isnan(c.valid_ppl) && isnan(c.valid_bleu) && !c.has_rng);
    cr_assert_eq(c.step, newest.step);
    cr_assert_eq(c.run_id, newest.run_id);
    int64_t nt, nmodel;
    cr_assert_eq(db_tensor_count(db, two, &nt), 0);
    cr_assert_eq(db_tensor_count(db, ids[2], &nmodel), 0);
    cr_assert_eq(nt * 3, nmodel, "no optimizer state: %lld of %lld tensors", (long long)nt, (long long)nmodel);
    db_close(db);

    /* --best: the lowest validation perplexities */
    int64_t b = average(db_path, "--best 2 --run 1");
    int64_t lo = sql_int(db_path, "SELECT id FROM checkpoint WHERE averaged_from IS NULL ORDER BY valid_ppl, id DESC"
                                  " LIMIT 1");
    char sql[256];
    snprintf(sql, sizeof sql, "SELECT json_array_length(averaged_from) = 2 AND %lld IN (SELECT value FROM"
             " json_each(averaged_from)) FROM checkpoint WHERE id = %lld", (long long)lo, (long long)b);
    cr_assert_eq(sql_int(db_path, sql), 1);
    /* --run takes the run's name too, as translate and eval do */
    int64_t b2 = average(db_path, "--best 2 --run run-1");
    snprintf(sql, sizeof sql, "SELECT (SELECT averaged_from FROM checkpoint WHERE id = %lld) = (SELECT averaged_from"
             " FROM checkpoint WHERE id = %lld)", (long long)b, (long long)b2);
    cr_assert_eq(sql_int(db_path, sql), 1, "--run run-1 averaged other checkpoints than --run 1");
    /* translate and export use it by id */
    char *src = th_path(dir, "valid.src"), *err = NULL;
    cr_assert_eq(runf(NULL, &err, src, "translate '%s' --checkpoint %lld", db_path, (long long)two), 0, "%s", err);
    char want[64];
    snprintf(want, sizeof want, "checkpoint %lld (run 1", (long long)two);
    cr_assert(strstr(err, want), "%s", err);
    free(err);
    char *ship = th_path(dir, "avg.db"), *a = NULL, *s = NULL;
    cr_assert_eq(runf(NULL, &err, NULL, "export '%s' '%s' --checkpoint %lld", db_path, ship, (long long)two), 0, "%s",
                 err);
    free(err);
    cr_assert_eq(runf(&a, NULL, src, "translate '%s' --checkpoint %lld", db_path, (long long)two), 0);
    cr_assert_eq(runf(&s, NULL, src, "translate '%s'", ship), 0, "the export of an averaged checkpoint translates");
    cr_assert_str_eq(a, s);
    free(a);
    free(s);
    free(ship);
    free(src);
    free(db_path);
    th_rmdir(dir);
    free(dir);
}

Test(average_cli, resume_continues_from_the_last_trained_and_pruning_keeps_it, .timeout = 120)
{
    char *dir = th_tmpdir();
    char *db_path = trained_db(dir, 30);
    int64_t last_trained = sql_int(db_path, "SELECT max(id) FROM checkpoint");
    int64_t avg = average(db_path, "--last 3");
    char *src = th_path(dir, "valid.src"), *err = NULL;
    cr_assert_eq(runf(NULL, &err, src, "translate '%s' --checkpoint last", db_path), 0, "%s", err);
    char want[96];
    snprintf(want, sizeof want, "checkpoint %lld (run 1", (long long)last_trained);
    cr_assert(strstr(err, want), "--checkpoint last is the last trained one: %s", err);
    free(err);
    cr_assert_eq(runf(NULL, &err, NULL, "train '%s' --resume --steps 60 --threads 1", db_path), 0, "%s", err);
    snprintf(want, sizeof want, "resuming run 1 from checkpoint %lld (step 30", (long long)last_trained);
    cr_assert(strstr(err, want), "%s", err);
    free(err);
    /* keep 3: the saves at 40, 50, 60 pruned the trained ones at 10, 20, 30 (but the best), not the average */
    char sql[160];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM checkpoint WHERE id = %lld AND averaged_from IS NOT NULL",
             (long long)avg);
    cr_assert_eq(sql_int(db_path, sql), 1, "pruning kept the averaged checkpoint");
    cr_assert_eq(sql_int(db_path, "SELECT count(*) FROM checkpoint WHERE averaged_from IS NULL AND step > 30"), 3);
    cr_assert_eq(sql_int(db_path, "SELECT count(*) FROM checkpoint WHERE averaged_from IS NULL AND step <= 30"
                                  " AND is_best = 0"), 0, "the older trained ones were pruned");
    cr_assert_eq(sql_int(db_path, "SELECT max(step) FROM checkpoint WHERE averaged_from IS NULL"), 60);
    cr_assert_eq(runf(NULL, &err, src, "translate '%s' --checkpoint %lld", db_path, (long long)avg), 0, "%s", err);
    free(err);
    free(src);
    free(db_path);
    th_rmdir(dir);
    free(dir);
}

Test(average_cli, bad_input_stores_nothing, .timeout = 120)
{
    char *dir = th_tmpdir();
    char *db = trained_db(dir, 20);
    const int64_t n0 = sql_int(db, "SELECT count(*) FROM checkpoint");
    char *err = NULL;
    struct {
        const char *args, *msg;
        int code;
    } const cases[] = {
        {"", "give one of --last N and --best N", 2},
        {"--last 1 --best 1", "give one of --last N and --best N", 2},
        {"--last 0", "--last: 0 is out of range", 2},
        {"--best -1", "--best: -1 is out of range", 2},
        {"--last 3", "has 2 trained checkpoints: --last 3 needs 3", 1},
        {"--best 3", "has 2 trained checkpoints with a validation perplexity: --best 3 needs 3", 1},
        {"--last 1 --run 7", "no run '7' (neither the id nor the name of a run)", 1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        cr_assert_eq(runf(NULL, &err, NULL, "average '%s' %s", db, cases[i].args), cases[i].code, "%s: %s",
                     cases[i].args, err);
        cr_assert(strstr(err, cases[i].msg), "%s: %s", cases[i].args, err);
        free(err);
    }
    cr_assert_eq(sql_int(db, "SELECT count(*) FROM checkpoint"), n0);
    /* different vocabularies: a second vocabulary, named by one checkpoint's row */
    cr_assert_eq(runf(NULL, NULL, NULL, "vocab '%s' --size 300 --min-count 1", db), 0);
    int64_t v2 = sql_int(db, "SELECT max(id) FROM vocab");
    int64_t second = sql_int(db, "SELECT max(id) FROM checkpoint");
    char sql[160];
    snprintf(sql, sizeof sql, "UPDATE checkpoint SET tgt_vocab_id = %lld WHERE id = %lld", (long long)v2,
             (long long)second);
    sql_int(db, sql);
    cr_assert_eq(runf(NULL, &err, NULL, "average '%s' --last 2", db), 1);
    cr_assert(strstr(err, "different vocabularies"), "%s", err);
    free(err);
    snprintf(sql, sizeof sql, "UPDATE checkpoint SET tgt_vocab_id = src_vocab_id WHERE id = %lld", (long long)second);
    sql_int(db, sql);
    /* a tensor of another shape */
    snprintf(sql, sizeof sql, "UPDATE tensor SET shape = '[1,1]' WHERE checkpoint_id = %lld AND name = 'out.W'",
             (long long)second);
    sql_int(db, sql);
    cr_assert_eq(runf(NULL, &err, NULL, "average '%s' --last 2", db), 1);
    cr_assert(strstr(err, "out.W") && strstr(err, "does not match"), "%s", err);
    free(err);
    cr_assert_eq(sql_int(db, "SELECT count(*) FROM checkpoint"), n0, "nothing stored");
    cr_assert_eq(sql_int(db, "SELECT count(*) FROM checkpoint WHERE averaged_from IS NOT NULL"), 0);
    free(db);
    th_rmdir(dir);
    free(dir);
}
