/* tests/test_cli.c: end-to-end tests of the `seqlite` command line (usage, usage errors, exit codes). Module
 * specific CLI tests live with their module's tests and use th_run() too. */
#include <criterion/criterion.h>

#include "tests/helpers.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

Test(cli, version_and_help)
{
    char *out = NULL, *err = NULL;
    cr_assert_eq(th_run("--version", NULL, &out, &err), 0);
    cr_assert(strncmp(out, "seqlite ", 8) == 0, "got '%s'", out);
    free(out);
    free(err);
    cr_assert_eq(th_run("--help", NULL, &out, &err), 0);
    cr_assert(strstr(out, "translate") && strstr(out, "import"));
    free(out);
    free(err);
    cr_assert_eq(th_run("help import", NULL, &out, &err), 0);
    cr_assert(strstr(out, "usage: seqlite import"), "got '%s'", out);
    free(out);
    free(err);
}

/* Counts the lines of s (each ends in '\n'; a last line without one counts too). */
static int count_lines(const char *s)
{
    int n = 0;
    for (const char *p = s; *p; p++)
        n += *p == '\n' || p[1] == '\0';
    return n;
}

/* `seqlite ARGS` must exit 2 with nothing on stdout and exactly the two lines want1, want2 on stderr. */
static void expect_two_lines(const char *args, const char *want1, const char *want2)
{
    char *out = NULL, *err = NULL, want[512];
    int rc = th_run(args, NULL, &out, &err);
    cr_assert_eq(rc, 2, "seqlite %s: exit %d, want 2: %s", args, rc, err);
    cr_assert_str_eq(out, "", "seqlite %s", args);
    cr_assert_eq(count_lines(err), 2, "seqlite %s: want 2 lines on stderr, got:\n%s", args, err);
    snprintf(want, sizeof want, "%s\n%s\n", want1, want2);
    cr_assert_str_eq(err, want, "seqlite %s", args);
    free(out);
    free(err);
}

Test(cli, unknown_command_exit_2_with_two_lines_on_stderr)
{
    expect_two_lines("frobnicate", "seqlite: unknown command 'frobnicate'", "see 'seqlite --help'");
    expect_two_lines("help frobnicate", "seqlite: help: unknown command 'frobnicate'", "see 'seqlite --help'");
    /* no command at all prints the command list (exit 2) */
    char *out = NULL, *err = NULL;
    cr_assert_eq(th_run("", NULL, &out, &err), 2);
    cr_assert(strstr(err, "commands:"), "got '%s'", err);
    free(out);
    free(err);
}

/* Every command: a bad flag, a missing argument and a bad value are one line and a hint, never the usage;
 * `help CMD` and `CMD --help` print the whole usage on stdout. */
Test(cli, usage_errors_of_every_command_are_two_lines)
{
    static const char *const cmds[] = {"import", "vocab", "tokenize", "train", "translate", "score", "eval",
                                       "bench"};
    char args[128], want1[128], want2[128];
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++) {
        snprintf(want2, sizeof want2, "see 'seqlite help %s'", cmds[i]);
        snprintf(args, sizeof args, "%s x.db --no-such-flag", cmds[i]);
        snprintf(want1, sizeof want1, "seqlite: %s: unknown flag '--no-such-flag'", cmds[i]);
        expect_two_lines(args, want1, want2);
        snprintf(args, sizeof args, "%s x.db -q", cmds[i]);
        snprintf(want1, sizeof want1, "seqlite: %s: unknown flag '-q'", cmds[i]);
        expect_two_lines(args, want1, want2);

        char *out = NULL, *help = NULL, *err = NULL;
        snprintf(args, sizeof args, "%s --help", cmds[i]);
        cr_assert_eq(th_run(args, NULL, &out, &err), 0, "%s", args);
        snprintf(args, sizeof args, "help %s", cmds[i]);
        cr_assert_eq(th_run(args, NULL, &help, NULL), 0, "%s", args);
        cr_assert_str_eq(out, help);
        snprintf(want1, sizeof want1, "usage: seqlite %s", cmds[i]);
        cr_assert(strncmp(out, want1, strlen(want1)) == 0, "%s", out);
        cr_assert_gt(count_lines(out), 2, "%s", out);
        cr_assert_str_eq(err, "");
        free(out);
        free(help);
        free(err);
    }
    expect_two_lines("import a.db a.en", "seqlite: import: expected DB SRC TGT (got 2 arguments)",
                     "see 'seqlite help import'");
    expect_two_lines("train", "seqlite: train: expected DB", "see 'seqlite help train'");
    expect_two_lines("train x.db --lr 50", "seqlite: train: --lr: 50 is out of range (1e-07 to 1)",
                     "see 'seqlite help train'");
    expect_two_lines("train x.db --steps", "seqlite: train: --steps needs a value", "see 'seqlite help train'");
    expect_two_lines("translate x.db --beam many", "seqlite: translate: --beam: 'many' is not a whole number",
                     "see 'seqlite help translate'");
    expect_two_lines("score", "seqlite: score: no reference file given", "see 'seqlite help score'");
}
