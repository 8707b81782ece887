/* tools/cmd_export.c: `seqlite export DB OUT.db`: writes one checkpoint of DB, without its optimizer
 * state, as a new small seqlite database to ship (corpus/db.h, db_export_checkpoint), with
 * --precision bf16 its matrices in bf16, and prints the two sizes. OUT.db must not exist: nothing is
 * ever replaced, and a failed export leaves no OUT.db. */
#include "tools/cli.h"

#include "corpus/db.h"
#include "model/checkpoint.h"
#include "nn/autocast.h"
#include "util/err.h"

#include <stdio.h>
#include <string.h>

/* bytes as "31.2 MB" (decimal units) into buf. */
static const char *size_text(char *buf, size_t cap, int64_t bytes)
{
    const double b = (double)bytes;
    if (b >= 1e9)
        snprintf(buf, cap, "%.1f GB", b / 1e9);
    else if (b >= 1e6)
        snprintf(buf, cap, "%.1f MB", b / 1e6);
    else if (b >= 1e3)
        snprintf(buf, cap, "%.1f kB", b / 1e3);
    else
        snprintf(buf, cap, "%lld bytes", (long long)bytes);
    return buf;
}

static int run(int argc, char **argv)
{
    const char *which = "best", *precision = "fp32";
    const struct cli_opt opts[] = {
        {"checkpoint", CLI_STR, &which, 0, 0},
        {"precision", CLI_STR, &precision, 0, 0},
        {NULL, 0, NULL, 0, 0},
    };
    char *pos[2];
    int npos = 0;
    int rc = cli_parse(&cmd_export, argc, argv, opts, pos, 2, &npos);
    if (rc == CLI_HELP_SHOWN)
        return 0;
    if (rc)
        return rc;
    if (npos != 2)
        return cli_usage_error(&cmd_export, "expected DB and OUT.db");
    /* a storage format, not how products run: no CPU check (cli_precision) */
    enum precision prec;
    if (precision_parse(precision, "--precision", &prec))
        return cli_usage_error(&cmd_export, "%s", sl_errmsg());
    if (prec == PRECISION_INT8)
        return cli_usage_error(&cmd_export, "--precision int8: an export is stored in fp32 or bf16 (translate "
                               "--precision int8 quantises either when it loads it)");

    int status = 1;
    struct db *db = NULL;
    struct db_run r;
    memset(&r, 0, sizeof r);
    int64_t id = 0;
    struct db_checkpoint c;
    struct db_export_sizes sz;
    if ((rc = db_open(pos[0], 0, &db)) || (rc = ckpt_find(db, 0, which, &id)) || (rc = db_ckpt_get(db, id, &c)) ||
        (rc = db_run_get(db, c.run_id, &r)) || (rc = db_export_checkpoint(db, id, pos[1], prec == PRECISION_BF16, &sz))) {
        cli_fail_status(&cmd_export, rc);
        goto cleanup;
    }
    char out_size[32], ckpt_size[32];
    printf("exported checkpoint %lld (run '%s', step %lld) to %s%s: %s (the checkpoint in %s: %s%s)\n",
           (long long)id, r.name, (long long)c.step, pos[1], prec == PRECISION_BF16 ? " in bf16" : "",
           size_text(out_size, sizeof out_size, sz.file_bytes),
           pos[0], size_text(ckpt_size, sizeof ckpt_size, sz.checkpoint_bytes),
           sz.checkpoint_bytes > sz.model_bytes ? " with optimizer state" : "");
    status = 0;
cleanup:
    db_run_clear(&r);
    db_close(db);
    return status;
}

const struct cli_cmd cmd_export = {
    .name = "export",
    .summary = "write one checkpoint, without optimizer state, as a small database to ship",
    .usage =
        "usage: seqlite export DB OUT.db [--checkpoint C] [--precision fp32|bf16]\n"
        "  Writes one checkpoint of DB as a new seqlite database OUT.db, the file to ship: the model's\n"
        "  tensors without the optimizer state (Adam's moments, two thirds of a training checkpoint),\n"
        "  its vocabularies and its run's settings, with the ids they have in DB (checkpoint 12 is\n"
        "  checkpoint 12 in both). `seqlite translate OUT.db` translates exactly as translate on DB\n"
        "  with that checkpoint does, and `seqlite eval OUT.db` works once a test split is imported\n"
        "  into it; the export cannot be trained on (--resume) without the optimizer state.\n"
        "  OUT.db must not exist: export never replaces a file. It is written under a temporary name\n"
        "  in OUT.db's directory (OUT.db.tmp-PID-N) and renamed when complete, so an interrupted export\n"
        "  leaves no OUT.db; a failed one removes its temporary file (a killed one may leave it).\n"
        "  Prints the size of OUT.db and of the checkpoint in DB.\n"
        "options:\n"
        "  --checkpoint C   best (default: the best validated checkpoint of the newest run, else its\n"
        "                   newest), last (the newest trained checkpoint) or a checkpoint id (an\n"
        "                   averaged one too)\n"
        "  --precision P    fp32 (default: the tensors as they are) or bf16: the model's matrices\n"
        "                   (weights, embeddings) rounded to bf16 (to nearest, ties to even) and\n"
        "                   stored in half the bytes, biases in fp32: about half the file.\n"
        "                   translate and eval decode it in bf16 by default, which gives the\n"
        "                   translations translate --precision bf16 gives from DB (those products\n"
        "                   round the weights to the same bf16 values); fp32 and int8 decoding of\n"
        "                   it run on the rounded values\n"
        "exit status: 0 ok, 1 failure (OUT.db exists, no such checkpoint, I/O error), 2 usage error\n",
    .run = run,
};
