/* tools/cmd_tokenize.c: `seqlite tokenize`. TODO(issue 2): not built yet; this file says so honestly. */
#include "tools/cli.h"

static int run(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    return cli_fail(&cmd_tokenize, "not built yet (see issue 2)");
}

const struct cli_cmd cmd_tokenize = {
    .name = "tokenize",
    .summary = "encode stdin with the vocabulary (or decode ids)",
    .usage = "usage: seqlite tokenize ...\n  (not built yet)\n",
    .run = run,
};
