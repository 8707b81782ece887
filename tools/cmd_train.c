/* tools/cmd_train.c: `seqlite train`. TODO(issue 3): not built yet; this file says so honestly. */
#include "tools/cli.h"

static int run(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    return cli_fail(&cmd_train, "not built yet (see issue 3)");
}

const struct cli_cmd cmd_train = {
    .name = "train",
    .summary = "train an LSTM encoder-decoder",
    .usage = "usage: seqlite train ...\n  (not built yet)\n",
    .run = run,
};
