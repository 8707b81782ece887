/* tools/cmd_import.c: `seqlite import`. TODO(issue 2): not built yet; this file says so honestly. */
#include "tools/cli.h"

static int run(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    return cli_fail(&cmd_import, "not built yet (see issue 2)");
}

const struct cli_cmd cmd_import = {
    .name = "import",
    .summary = "import a parallel corpus (two line-aligned files) into DB",
    .usage = "usage: seqlite import ...\n  (not built yet)\n",
    .run = run,
};
