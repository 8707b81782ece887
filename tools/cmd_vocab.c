/* tools/cmd_vocab.c: `seqlite vocab`. TODO(issue 2): not built yet; this file says so honestly. */
#include "tools/cli.h"

static int run(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    return cli_fail(&cmd_vocab, "not built yet (see issue 2)");
}

const struct cli_cmd cmd_vocab = {
    .name = "vocab",
    .summary = "learn or show the subword vocabulary",
    .usage = "usage: seqlite vocab ...\n  (not built yet)\n",
    .run = run,
};
