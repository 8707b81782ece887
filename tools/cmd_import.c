/* tools/cmd_import.c: `seqlite import DB SRC TGT`: stores a parallel corpus (two line-aligned UTF-8
 * files, plain or gzip, one of them may be "-": standard input) as a new corpus of DB (created if
 * missing). All or nothing: on any error DB is unchanged. Reports on stderr; prints nothing on stdout. */
#include "tools/cli.h"

#include "corpus/db.h"
#include "corpus/import.h"
#include "util/clock.h"
#include "util/err.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

static void progress(void *ctx, int64_t lines)
{
    (void)ctx;
    fprintf(stderr, "\rimport: %lld lines", (long long)lines);
}

static void remove_db(const char *path)
{
    char side[4096];
    unlink(path);
    snprintf(side, sizeof side, "%s-wal", path);
    unlink(side);
    snprintf(side, sizeof side, "%s-shm", path);
    unlink(side);
}

static int run(int argc, char **argv)
{
    const char *split = "train", *name = NULL, *src_lang = NULL, *tgt_lang = NULL;
    const struct cli_opt opts[] = {
        {"split", CLI_STR, &split, 0, 0},
        {"name", CLI_STR, &name, 0, 0},
        {"src-lang", CLI_STR, &src_lang, 0, 0},
        {"tgt-lang", CLI_STR, &tgt_lang, 0, 0},
        {NULL, 0, NULL, 0, 0},
    };
    char *pos[3];
    int npos = 0;
    int rc = cli_parse(&cmd_import, argc, argv, opts, pos, 3, &npos);
    if (rc == CLI_HELP_SHOWN)
        return 0;
    if (rc)
        return rc;
    if (npos != 3)
        return cli_usage_error(&cmd_import, "expected DB SRC TGT (got %d argument%s)", npos,
                               npos == 1 ? "" : "s");
    if (strcmp(pos[1], "-") == 0 && strcmp(pos[2], "-") == 0)
        return cli_usage_error(&cmd_import, "only one of SRC and TGT can be '-' (standard input)");
    if (strcmp(split, "train") && strcmp(split, "valid") && strcmp(split, "test"))
        return cli_usage_error(&cmd_import, "--split: '%s' is not train, valid or test", split);
    if (name && !*name)
        return cli_usage_error(&cmd_import, "--name: empty name");

    struct import_opts o = {
        .src_path = pos[1],
        .tgt_path = pos[2],
        .split = split,
        .name = name,
        .src_lang = src_lang,
        .tgt_lang = tgt_lang,
        .progress = cli_stderr_is_tty() ? progress : NULL,
    };
    struct import_result res;
    struct db *db = NULL;
    double t0 = clock_now();
    int existed = access(pos[0], F_OK) == 0;
    if ((rc = db_open(pos[0], DB_CREATE, &db)))
        return cli_fail_status(&cmd_import, rc);
    rc = import_run(db, &o, &res);
    db_close(db);
    if (rc && !existed)
        remove_db(pos[0]); /* a failed first import leaves no empty database behind */
    if (o.progress)
        fputs("\r\033[K", stderr);
    if (rc == SL_EEXIST)
        return cli_fail(&cmd_import, "%s (choose another with --name)", sl_errmsg());
    if (rc)
        return cli_fail_status(&cmd_import, rc);
    double dt = clock_now() - t0;
    int64_t skipped = res.n_skip_src + res.n_skip_tgt + res.n_skip_both;
    fprintf(stderr, "imported %lld pair%s as corpus '%s' (%s, %s-%s) into %s in %.2f s (%.0f pairs/s)\n",
            (long long)res.n_pairs, res.n_pairs == 1 ? "" : "s", res.name, res.split, res.src_lang, res.tgt_lang,
            pos[0], dt, dt > 0 ? (double)res.n_pairs / dt : 0.0);
    if (skipped)
        fprintf(stderr,
                "skipped %lld of %lld lines: %lld with an empty source, %lld with an empty target, "
                "%lld with both empty\n",
                (long long)skipped, (long long)res.n_lines, (long long)res.n_skip_src,
                (long long)res.n_skip_tgt, (long long)res.n_skip_both);
    return 0;
}

const struct cli_cmd cmd_import = {
    .name = "import",
    .summary = "import a parallel corpus (two line-aligned files) into DB",
    .usage = "usage: seqlite import DB SRC TGT [--split train|valid|test] [--name NAME]\n"
             "                      [--src-lang XX] [--tgt-lang YY]\n"
             "  Stores the line pairs of SRC and TGT (UTF-8 text, one sentence per line, same number\n"
             "  of lines) as a new corpus of DB, creating DB if it does not exist. Either file may be\n"
             "  gzip-compressed (file.en.gz), one of them may be '-': standard input. A UTF-8 BOM and\n"
             "  CR line endings are removed; pairs with an empty (or all-blank) side are skipped and\n"
             "  counted. Any error (unequal line counts, invalid UTF-8, a NUL byte, a corrupt gzip\n"
             "  file, an existing name) leaves DB unchanged.\n"
             "  --split S      train (default), valid or test\n"
             "  --name NAME    corpus name (default: SRC's name without extension and .gz, plus\n"
             "                 -SPLIT; train.en with --split train gives 'train'; TGT's when SRC\n"
             "                 is '-')\n"
             "  --src-lang XX  source language (default: SRC's extension if 2-3 letters, else src)\n"
             "  --tgt-lang YY  target language (default: TGT's extension if 2-3 letters, else tgt)\n",
    .run = run,
};
