/* tests/test_concurrency.c: one database under load from several processes at once. For a dozen
 * seconds a training run saves and prunes a checkpoint every few steps and imports of another corpus
 * follow one another, while translate, eval and sqlite3 (with a busy timeout) read in loops. Every
 * reader must succeed every time: exit 0 and no "locked" or "busy" on stderr; the trainer and the
 * imports too. The counts go to stderr (the test log). Skipped when sqlite3 is not installed. */
#include <criterion/criterion.h>

#include "tests/helpers.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define LOAD_SECONDS 12

static char *dir, *db;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void run_ok(const char *args)
{
    char *err = NULL;
    cr_assert_eq(th_run(args, NULL, NULL, &err), 0, "seqlite %s: %s", args, err);
    free(err);
}

/* A database with train and valid corpora, a vocabulary and a trained tiny model (checkpoints with
 * validation scores, so there is a best one). */
static void setup(void)
{
    dir = th_tmpdir();
    cr_assert(dir);
    db = th_path(dir, "c.db");
    cr_assert_eq(th_write_copy(dir, "train", 400, 1), 0);
    cr_assert_eq(th_write_copy(dir, "valid", 20, 2), 0);
    cr_assert_eq(th_write_copy(dir, "other", 3000, 3), 0);
    char args[4096];
    snprintf(args, sizeof args, "import '%s' '%s/train.src' '%s/train.tgt' --name train", db, dir, dir);
    run_ok(args);
    snprintf(args, sizeof args, "import '%s' '%s/valid.src' '%s/valid.tgt' --split valid --name valid", db, dir, dir);
    run_ok(args);
    snprintf(args, sizeof args, "vocab '%s' --size 300 --min-count 1", db);
    run_ok(args);
    snprintf(args, sizeof args,
             "train '%s' --layers 1 --emb 8 --hidden 16 --batch 16 --steps 6 --valid-every 3 --valid-bleu 0"
             " --save-every 3 --keep 1 --threads 1 --time-limit 1",
             db);
    run_ok(args);
    char *in = th_path(dir, "in.txt");
    const char text[] = "haus katze\nder hund mit ball\nrot\n";
    cr_assert_eq(th_write_file(in, text, sizeof text - 1), 0);
    free(in);
}

static void teardown(void)
{
    th_rmdir(dir);
    free(dir);
    free(db);
}

/* A loop in a child process: runs cmd (a shell command; "%d" in it becomes the iteration) until the
 * deadline, counting runs and failures (a non-zero exit, or with reader set "locked" / "busy" in what
 * it printed on stderr: a writer may say that it waits for another); writes "RUNS FAILS" to dir/name.count and the first failure's stderr to dir/name.fail. */
static pid_t loop_start(const char *name, const char *cmd, int reader, double deadline)
{
    pid_t pid = fork();
    cr_assert(pid >= 0);
    if (pid)
        return pid;
    char *errp = th_path(dir, name), line[4200], shell[8400];
    snprintf(line, sizeof line, "%s.err", errp);
    long runs = 0, fails = 0;
    while (now_s() < deadline) {
        char c[4096];
        snprintf(c, sizeof c, cmd, (int)runs);
        snprintf(shell, sizeof shell, "%s >/dev/null 2>'%s'", c, line);
        int st = system(shell);
        size_t n = 0;
        char *e = th_read_file(line, &n);
        int bad = st == -1 || !WIFEXITED(st) || WEXITSTATUS(st) != 0 ||
                  (reader && e && (strstr(e, "locked") || strstr(e, "busy")));
        if (bad && fails++ == 0) {
            char failp[4200];
            snprintf(failp, sizeof failp, "%s.fail", errp);
            char head[32];
            int k = snprintf(head, sizeof head, "exit %d: ", WIFEXITED(st) ? WEXITSTATUS(st) : -1);
            FILE *f = fopen(failp, "w");
            if (f) {
                fwrite(head, 1, (size_t)k, f);
                if (e)
                    fwrite(e, 1, n, f);
                fclose(f);
            }
        }
        free(e);
        runs++;
    }
    char countp[4200], out[64];
    snprintf(countp, sizeof countp, "%s.count", errp);
    int k = snprintf(out, sizeof out, "%ld %ld", runs, fails);
    th_write_file(countp, out, (size_t)k);
    _exit(0);
}

/* The counts of loop name (after it ended); *fail_msg: its first failure (malloc'd) or NULL. */
static void loop_counts(const char *name, long *runs, long *fails, char **fail_msg)
{
    char p[4200];
    snprintf(p, sizeof p, "%s/%s.count", dir, name);
    char *s = th_read_file(p, NULL);
    cr_assert(s, "loop %s wrote no counts", name);
    cr_assert_eq(sscanf(s, "%ld %ld", runs, fails), 2, "%s: %s", name, s);
    free(s);
    snprintf(p, sizeof p, "%s/%s.fail", dir, name);
    *fail_msg = th_read_file(p, NULL);
}

TestSuite(concurrency, .init = setup, .fini = teardown, .timeout = 120);

Test(concurrency, readers_while_training_prunes_and_an_import_writes)
{
    if (system("command -v sqlite3 >/dev/null 2>&1") != 0)
        cr_skip_test("sqlite3 is not installed (scripts/setup.sh installs it)");
    const double deadline = now_s() + LOAD_SECONDS;
    char cmd[4096];
    /* a new run that validates, saves and prunes every 3 steps: the newest run's best checkpoint (what
     * translate and eval load by default) changes and the older ones go while they read */
    snprintf(cmd, sizeof cmd,
             "'%s' train '%s' --name load --layers 1 --emb 8 --hidden 16 --batch 16 --steps 1000000"
             " --valid-every 3 --valid-bleu 0 --save-every 3 --keep 1 --log-every 3 --threads 1"
             " --time-limit %.3f",
             SEQLITE_BIN, db, (double)(LOAD_SECONDS - 1) / 60.0);
    /* the trainer is a loop too: it runs once (its time limit ends it before the deadline) */
    static const char *const names[] = {"train", "import", "translate", "eval", "sqlite3"};
    char cmds[5][4096];
    snprintf(cmds[0], sizeof cmds[0], "%s", cmd);
    snprintf(cmds[1], sizeof cmds[1], "'%s' import '%s' '%s/other.src' '%s/other.tgt' --split test --name other%%d",
             SEQLITE_BIN, db, dir, dir);
    snprintf(cmds[2], sizeof cmds[2], "'%s' translate '%s' --threads 1 <'%s/in.txt'", SEQLITE_BIN, db, dir);
    snprintf(cmds[3], sizeof cmds[3], "'%s' eval '%s' --split valid --limit 5 --beam 1 --threads 1", SEQLITE_BIN, db);
    snprintf(cmds[4], sizeof cmds[4],
             "sqlite3 -cmd '.timeout 10000' '%s' 'SELECT count(*) FROM checkpoint; SELECT count(*) FROM tensor;"
             " SELECT max(step) FROM train_log'",
             db);
    pid_t pids[5];
    for (int i = 0; i < 5; i++)
        pids[i] = loop_start(names[i], cmds[i], i >= 2, i == 0 ? deadline - LOAD_SECONDS + 0.5 : deadline);
    for (int i = 0; i < 5; i++) {
        int st;
        cr_assert_eq(waitpid(pids[i], &st, 0), pids[i]);
        cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "loop %s died", names[i]);
    }
    long total_fails = 0;
    char report[2048];
    size_t len = 0;
    for (int i = 0; i < 5; i++) {
        long runs, fails;
        char *msg;
        loop_counts(names[i], &runs, &fails, &msg);
        len += (size_t)snprintf(report + len, sizeof report - len, "%s%s %ld runs %ld failed", i ? ", " : "",
                                names[i], runs, fails);
        if (msg) {
            fprintf(stderr, "concurrency: %s first failure: %s\n", names[i], msg);
            free(msg);
        }
        total_fails += fails;
        cr_expect_eq(fails, 0, "%s: %ld of %ld runs failed", names[i], fails, runs);
        cr_expect_geq(runs, 1, "%s never ran", names[i]);
        if (i >= 2) /* the readers ran throughout, not once */
            cr_expect_geq(runs, 3, "%s ran only %ld times", names[i], runs);
    }
    fprintf(stderr, "concurrency: %s\n", report);
    cr_assert_eq(total_fails, 0, "%s", report);
    /* the trainer saved and pruned while they read: its run went past several --save-every 3 */
    snprintf(cmd, sizeof cmd, "sqlite3 -cmd '.timeout 10000' '%s' \"SELECT steps_done || ' ' || status FROM run"
             " WHERE name = 'load'\"", db);
    FILE *p = popen(cmd, "r");
    cr_assert(p);
    long steps = 0;
    char status[32] = "";
    cr_assert_eq(fscanf(p, "%ld %31s", &steps, status), 2);
    pclose(p);
    fprintf(stderr, "concurrency: the trainer did %ld steps (%s)\n", steps, status);
    cr_assert_geq(steps, 9, "the trainer saved fewer than 3 times");
    cr_assert_str_eq(status, "stopped", "the run ended %s", status);
}
