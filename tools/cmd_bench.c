/* tools/cmd_bench.c: `seqlite bench`. TODO(issue 5): not built yet; this file says so honestly. */
#include "tools/cli.h"

static int run(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    return cli_fail(&cmd_bench, "not built yet (see issue 5)");
}

const struct cli_cmd cmd_bench = {
    .name = "bench",
    .summary = "training and decoding speed on a synthetic workload",
    .usage = "usage: seqlite bench ...\n  (not built yet)\n",
    .run = run,
};
