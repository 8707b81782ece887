/* tools/cmd_eval.c: `seqlite eval`. TODO(issue 4): not built yet; this file says so honestly. */
#include "tools/cli.h"

static int run(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    return cli_fail(&cmd_eval, "not built yet (see issue 4)");
}

const struct cli_cmd cmd_eval = {
    .name = "eval",
    .summary = "translate a stored split and score it",
    .usage = "usage: seqlite eval ...\n  (not built yet)\n",
    .run = run,
};
