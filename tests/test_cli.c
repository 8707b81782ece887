/* tests/test_cli.c: end-to-end tests of the `seqlite` command line (usage, exit codes). Module
 * specific CLI tests live with their module's tests and use th_run() too. */
#include <criterion/criterion.h>

#include "tests/helpers.h"

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

Test(cli, unknown_command_and_flag_exit_2_with_usage_on_stderr)
{
    char *out = NULL, *err = NULL;
    cr_assert_eq(th_run("frobnicate", NULL, &out, &err), 2);
    cr_assert_str_eq(out, "");
    cr_assert(strstr(err, "unknown command 'frobnicate'") && strstr(err, "usage:"), "got '%s'", err);
    free(out);
    free(err);
    cr_assert_eq(th_run("import --no-such-flag", NULL, &out, &err), 2);
    cr_assert(strstr(err, "seqlite: import: unknown flag '--no-such-flag'"), "got '%s'", err);
    cr_assert(strstr(err, "usage: seqlite import"), "got '%s'", err);
    free(out);
    free(err);
    cr_assert_eq(th_run("", NULL, &out, &err), 2);
    free(out);
    free(err);
}
