/* tools/cmd_score.c: `seqlite score`. TODO(issue 4): not built yet; this file says so honestly. */
#include "tools/cli.h"

static int run(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    return cli_fail(&cmd_score, "not built yet (see issue 4)");
}

const struct cli_cmd cmd_score = {
    .name = "score",
    .summary = "BLEU and chrF of a hypothesis file against references",
    .usage = "usage: seqlite score ...\n  (not built yet)\n",
    .run = run,
};
