/* tests/test_signals.c: `seqlite train` stopped by a signal — ^C, kill, a closed terminal, ^\, a closed
 * pipe — saves a checkpoint, marks the run stopped and exits with 128 + the signal's number. */
#include <criterion/criterion.h>

#include "tests/helpers.h"

#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static char *dir, *db;

/* A database with a small train corpus and a vocabulary. */
static void setup(void)
{
    dir = th_tmpdir();
    db = th_path(dir, "s.db");
    char *src = th_path(dir, "train.en"), *tgt = th_path(dir, "train.de");
    FILE *a = fopen(src, "w"), *b = fopen(tgt, "w");
    cr_assert(a && b);
    for (int i = 0; i < 200; i++) {
        fprintf(a, "the cat %d sat on mat %d\n", i % 17, i % 5);
        fprintf(b, "die katze %d sass auf matte %d\n", i % 17, i % 5);
    }
    fclose(a);
    fclose(b);
    char args[4096], *err = NULL;
    snprintf(args, sizeof args, "import '%s' '%s' '%s'", db, src, tgt);
    cr_assert_eq(th_run(args, NULL, NULL, &err), 0, "%s", err);
    free(err);
    snprintf(args, sizeof args, "vocab '%s' --size 300 --min-count 1", db);
    cr_assert_eq(th_run(args, NULL, NULL, &err), 0, "%s", err);
    free(err);
    free(src);
    free(tgt);
}

static void teardown(void)
{
    th_rmdir(dir);
    free(dir);
    free(db);
}

static int64_t q_int(const char *query)
{
    sqlite3 *h;
    cr_assert_eq(sqlite3_open_v2(db, &h, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    sqlite3_busy_timeout(h, 5000);
    sqlite3_stmt *st;
    int64_t v = -1;
    if (sqlite3_prepare_v2(h, query, -1, &st, NULL) == SQLITE_OK) {
        if (sqlite3_step(st) == SQLITE_ROW)
            v = sqlite3_column_int64(st, 0);
        sqlite3_finalize(st);
    }
    sqlite3_close(h);
    return v;
}

/* Starts a long training run (stderr into err_fd), waits until it has logged a step, sends sig, and
 * returns the exit status. */
static int train_then_signal(int sig, int err_fd)
{
    pid_t pid = fork();
    cr_assert(pid >= 0);
    if (pid == 0) {
        dup2(err_fd, 2);
        FILE *null = fopen("/dev/null", "w");
        dup2(fileno(null), 1);
        execl(SEQLITE_BIN, SEQLITE_BIN, "train", db, "--steps", "1000000", "--time-limit", "2", "--layers", "1", "--emb", "8",
              "--hidden", "8", "--batch", "4", "--valid-every", "0", "--valid-bleu", "0", "--save-every", "0",
              "--log-every", "1", "--threads", "1", (char *)NULL);
        _exit(127);
    }
    for (int i = 0; i < 3000 && q_int("SELECT count(*) FROM train_log") < 2; i++)
        usleep(10000);
    cr_assert_geq(q_int("SELECT count(*) FROM train_log"), 2, "the run never logged a step");
    cr_assert_eq(kill(pid, sig), 0);
    int status;
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    return status;
}

static void assert_stopped(int sig, int status)
{
    cr_assert(WIFEXITED(status), "signal %d: killed by signal %d instead of stopping", sig,
              WIFSIGNALED(status) ? WTERMSIG(status) : 0);
    cr_assert_eq(WEXITSTATUS(status), 128 + sig, "signal %d: exit %d", sig, WEXITSTATUS(status));
    cr_assert_eq(q_int("SELECT count(*) FROM run WHERE status = 'stopped' AND ended_at IS NOT NULL"), 1,
                 "signal %d: the run is not marked stopped", sig);
    cr_assert_eq(q_int("SELECT count(*) FROM checkpoint c JOIN run r ON r.id = c.run_id WHERE c.step = r.steps_done"),
                 1, "signal %d: no checkpoint of the last step", sig);
}

TestSuite(signals, .init = setup, .fini = teardown);

Test(signals, term_hup_quit_int_stop_the_run_cleanly)
{
    const int sigs[] = {SIGTERM, SIGHUP, SIGQUIT, SIGINT};
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++) {
        FILE *null = fopen("/dev/null", "w");
        int status = train_then_signal(sigs[i], fileno(null));
        fclose(null);
        assert_stopped(sigs[i], status);
        char *err = NULL;
        char args[4096];
        snprintf(args, sizeof args, "train '%s' --resume --steps %lld", db,
                 (long long)q_int("SELECT steps_done FROM run") + 1);
        cr_assert_eq(th_run(args, NULL, NULL, &err), 0, "%s", err); /* resumable: ends done */
        free(err);
        cr_assert_eq(q_int("SELECT count(*) FROM run WHERE status = 'done'"), 1);
        /* the next signal stops a new run */
        sqlite3 *h;
        cr_assert_eq(sqlite3_open(db, &h), SQLITE_OK);
        cr_assert_eq(sqlite3_exec(h, "PRAGMA foreign_keys = ON; DELETE FROM run", NULL, NULL, NULL), SQLITE_OK);
        sqlite3_close(h);
    }
}

/* stderr is a pipe whose reader goes away: the next progress line raises SIGPIPE. */
Test(signals, closed_pipe_stops_the_run_cleanly)
{
    int p[2];
    cr_assert_eq(pipe(p), 0);
    pid_t pid = fork();
    cr_assert(pid >= 0);
    if (pid == 0) {
        close(p[0]);
        dup2(p[1], 2);
        FILE *null = fopen("/dev/null", "w");
        dup2(fileno(null), 1);
        execl(SEQLITE_BIN, SEQLITE_BIN, "train", db, "--steps", "1000000", "--time-limit", "2", "--layers", "1", "--emb", "8",
              "--hidden", "8", "--batch", "4", "--valid-every", "0", "--valid-bleu", "0", "--save-every", "0",
              "--log-every", "1", "--threads", "1", (char *)NULL);
        _exit(127);
    }
    close(p[1]);
    for (int i = 0; i < 3000 && q_int("SELECT count(*) FROM train_log") < 2; i++)
        usleep(10000);
    close(p[0]); /* the reader goes away */
    int status;
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    assert_stopped(SIGPIPE, status);
}

/* The short crash torture (tools/torture.sh): SIGKILLs training, import, vocab, eval (and export)
 * at random moments and at commits; after each kill the database is intact, the last checkpoint
 * translates and --resume goes on from no earlier step. */
Test(torture, eight_kills)
{
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "bash '%s/tools/torture.sh' --rounds 8 --bin '%s' 2>&1", SEQLITE_SRCDIR, SEQLITE_BIN);
    FILE *p = popen(cmd, "r");
    cr_assert(p);
    char out[16384];
    size_t n = fread(out, 1, sizeof out - 1, p);
    out[n] = '\0';
    int st = pclose(p);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "%s", out);
    cr_assert(strstr(out, "torture: 8/8 rounds passed"), "%s", out);
}
