/* tools/cmd_translate.c: `seqlite translate`. TODO(issue 4): not built yet; this file says so honestly. */
#include "tools/cli.h"

static int run(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    return cli_fail(&cmd_translate, "not built yet (see issue 4)");
}

const struct cli_cmd cmd_translate = {
    .name = "translate",
    .summary = "translate stdin to stdout",
    .usage = "usage: seqlite translate ...\n  (not built yet)\n",
    .run = run,
};
