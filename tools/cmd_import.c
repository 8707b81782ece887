/* tools/cmd_import.c: `seqlite import DB SRC TGT`: stores a parallel corpus (two line-aligned UTF-8
 * files, plain or gzip, one of them may be "-": standard input) as a new corpus of DB (created if
 * missing). All or nothing: on any error DB is unchanged. Reports on stderr; prints nothing on stdout. */
#include "tools/cli.h"

#include "corpus/db.h"
#include "corpus/import.h"
#include "util/clock.h"
#include "util/err.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void progress(void *ctx, int64_t lines)
{
    (void)ctx;
    fprintf(stderr, "\rimport: %lld lines", (long long)lines);
}

/* A first import builds the new database under a temporary name of its own (created exclusively, so
 * no other process knows it) and links it into place when it succeeded, so a failed first import
 * leaves nothing behind and deletes nothing it did not create — not a database another process
 * created and filled meanwhile, not a symlink. */
struct new_db {
    char target[4096]; /* where the database goes: the path, or the file a dangling symlink names */
    char tmp[4160];    /* the temporary file, "" when none */
};

/* 1 when path names no file yet (a dangling symlink counts: its target is the new file), 0 when it
 * exists, or an SL_E* error. */
static int new_db_plan(const char *path, struct new_db *n)
{
    struct stat sb;
    n->tmp[0] = '\0';
    snprintf(n->target, sizeof n->target, "%s", path);
    if (stat(path, &sb) == 0)
        return 0;
    if (errno != ENOENT)
        return sl_err(SL_EIO, "%s: %s", path, strerror(errno));
    if (lstat(path, &sb) == 0 && S_ISLNK(sb.st_mode)) {
        char link[4096];
        ssize_t k = readlink(path, link, sizeof link - 1);
        if (k < 0)
            return sl_err(SL_EIO, "%s: %s", path, strerror(errno));
        link[k] = '\0';
        const char *slash = strrchr(path, '/');
        int w = link[0] == '/' || !slash
                    ? snprintf(n->target, sizeof n->target, "%s", link)
                    : snprintf(n->target, sizeof n->target, "%.*s/%s", (int)(slash - path), path, link);
        if (w < 0 || (size_t)w >= sizeof n->target)
            return sl_err(SL_EINVAL, "%s: the path its symlink names is too long", path);
    }
    int w = snprintf(n->tmp, sizeof n->tmp, "%s.import-XXXXXX", n->target);
    if (w < 0 || (size_t)w >= sizeof n->tmp)
        return sl_err(SL_EINVAL, "%s: path too long", path);
    int fd = mkstemp(n->tmp);
    if (fd < 0) {
        int e = errno;
        n->tmp[0] = '\0';
        return sl_err(SL_EIO, "%s: cannot create the database: %s", path, strerror(e));
    }
    close(fd);
    return 1;
}

/* Removes the temporary database and its side files (ours alone). */
static void new_db_discard(struct new_db *n)
{
    if (!n->tmp[0])
        return;
    char side[4200];
    unlink(n->tmp);
    snprintf(side, sizeof side, "%s-wal", n->tmp);
    unlink(side);
    snprintf(side, sizeof side, "%s-shm", n->tmp);
    unlink(side);
    n->tmp[0] = '\0';
}

/* Puts the finished temporary database in place: 0, or 1 when another process created the target
 * meanwhile (the caller then imports into that one). */
static int new_db_publish(struct new_db *n)
{
    if (link(n->tmp, n->target) == 0) {
        new_db_discard(n);
        return 0;
    }
    int e = errno;
    new_db_discard(n);
    if (e == EEXIST)
        return 1;
    return sl_err(SL_EIO, "%s: cannot create the database: %s", n->target, strerror(e));
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
    struct new_db nd;
    int fresh = new_db_plan(pos[0], &nd);
    if (fresh < 0)
        return cli_fail_status(&cmd_import, fresh);
    for (;;) {
        if ((rc = db_open(fresh ? nd.tmp : pos[0], DB_CREATE, &db)) == 0)
            rc = import_run(db, &o, &res);
        db_close(db);
        db = NULL;
        if (!fresh)
            break;
        if (rc) {
            new_db_discard(&nd);
            break;
        }
        if ((rc = new_db_publish(&nd)) <= 0)
            break;
        /* another process created DB meanwhile: import into it (inputs that can be read again) */
        struct stat s1, s2;
        if (stat(pos[1], &s1) != 0 || stat(pos[2], &s2) != 0 || !S_ISREG(s1.st_mode) || !S_ISREG(s2.st_mode)) {
            rc = sl_err(SL_EIO, "%s was created by another process during this import, whose input cannot be "
                        "read again: run the import again", pos[0]);
            break;
        }
        fresh = 0;
        fprintf(stderr, "import: %s was created by another process meanwhile: importing into it\n", pos[0]);
    }
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
