/* tools/cmd_average.c: `seqlite average DB --last N | --best N`: stores a new checkpoint whose
 * weights are the element-wise mean (nn/average.h) of N trained checkpoints of one run: its newest,
 * or its best by the run's --best-by metric (validation perplexity, or BLEU). One write transaction
 * reads the members and stores the result, so a training run pruning meanwhile cannot remove a
 * member half-way, and a failure stores nothing.
 * The new checkpoint: no optimizer state and no random state, averaged_from = the member ids
 * (ascending, the order they are summed in), step and data position of the newest member, no
 * validation scores, never the run's best; training neither resumes from it nor prunes it
 * (corpus/db_ckpt.c).
 * ref: Vaswani et al. 2017, section 6.1 (averaging the last checkpoints). */
#include "tools/cli.h"

#include "corpus/db.h"
#include "model/checkpoint.h"
#include "nn/average.h"
#include "nn/params.h"
#include "util/err.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The mean of members[0..n) (trained checkpoints of one run, ascending ids) into a new checkpoint;
 * inside the caller's transaction. */
static int average_store(struct db *db, const int64_t *members, size_t n, int64_t *new_id /* OUT */)
{
    struct ckpt_model ck;
    double *sum = NULL;
    float *buf = NULL;
    char first[32];
    snprintf(first, sizeof first, "%lld", (long long)members[0]);
    int rc = ckpt_model_load(db, first, &ck); /* the architecture, and the first member's weights */
    if (rc)
        return rc;
    const size_t total = ck.model.table.total;
    sum = calloc(total, sizeof *sum);
    buf = param_buf_create(total);
    if (!sum || !buf) {
        rc = sl_err(SL_ENOMEM, "out of memory (%zu parameters)", total);
        goto done;
    }
    average_add(sum, ck.w, total);
    struct db_checkpoint c0, newest;
    if ((rc = db_ckpt_get(db, members[0], &c0)))
        goto done;
    newest = c0;
    for (size_t i = 1; i < n; i++) {
        struct db_checkpoint c;
        if ((rc = db_ckpt_get(db, members[i], &c)))
            goto done;
        if (c.src_vocab_id != c0.src_vocab_id || c.tgt_vocab_id != c0.tgt_vocab_id) {
            rc = sl_err(SL_EINVAL,
                        "%s: checkpoints %lld and %lld have different vocabularies (%lld/%lld and %lld/%lld): "
                        "they cannot be averaged",
                        db_path(db), (long long)members[0], (long long)c.id, (long long)c0.src_vocab_id,
                        (long long)c0.tgt_vocab_id, (long long)c.src_vocab_id, (long long)c.tgt_vocab_id);
            goto done;
        }
        /* checks every tensor's shape against the first member's model */
        if ((rc = ckpt_state_load(db, c.id, &ck.model, buf, NULL, NULL))) {
            sl_err_prefix(rc, "cannot average checkpoint %lld with %lld", (long long)c.id, (long long)members[0]);
            goto done;
        }
        average_add(sum, buf, total);
        if (c.step > newest.step || (c.step == newest.step && c.id > newest.id))
            newest = c;
    }
    average_mean(buf, sum, total, n);

    struct db_checkpoint row = newest;
    row.valid_ppl = NAN;
    row.valid_bleu = NAN;
    row.is_best = 0;
    row.has_rng = 0;
    if ((rc = db_ckpt_insert(db, &row, new_id)) || (rc = db_ckpt_set_averaged_from(db, *new_id, members, n)))
        goto done;
    for (size_t i = 0; !rc && i < ck.model.table.n; i++) {
        const struct param_view *v = &ck.model.table.views[i];
        rc = db_tensor_insert(db, *new_id, v->name, v->ndim, v->shape, buf + v->offset, v->size);
    }
done:
    param_buf_free(buf);
    free(sum);
    ckpt_model_free(&ck);
    return rc;
}

static int run(int argc, char **argv)
{
    int64_t run_id = 0, last = 0, best = 0;
    const char *run_key = NULL;
    const struct cli_opt opts[] = {
        {"run", CLI_STR, &run_key, 0, 0},
        {"last", CLI_INT, &last, 1, 1e6},
        {"best", CLI_INT, &best, 1, 1e6},
        {NULL, 0, NULL, 0, 0},
    };
    char *pos[1];
    int npos = 0;
    int rc = cli_parse(&cmd_average, argc, argv, opts, pos, 1, &npos);
    if (rc == CLI_HELP_SHOWN)
        return 0;
    if (rc)
        return rc;
    if (npos != 1)
        return cli_usage_error(&cmd_average, "expected DB");
    if ((last > 0) == (best > 0))
        return cli_usage_error(&cmd_average, "give one of --last N and --best N");

    int status = 1, in_tx = 0;
    struct db *db = NULL;
    struct db_run r;
    memset(&r, 0, sizeof r);
    int64_t *members = NULL, n_found = 0, n_avail = 0, new_id = 0;
    const int64_t n = last > 0 ? last : best;
    enum db_ckpt_rank rank = DB_CKPT_NEWEST;
    if ((rc = db_open(pos[0], 0, &db)) || (run_key && (rc = db_info_run_find(db, run_key, &run_id))) ||
        (!run_id && (rc = db_run_latest(db, &run_id))) ||
        (rc = db_run_get(db, run_id, &r)))
        goto fail;
    if (best > 0) {
        struct db_json_field by = {.key = "best_by_bleu"};
        if ((rc = db_run_config_get(db, run_id, &by, 1)))
            goto fail;
        rank = by.type == DB_JSON_INTEGER && by.i == 1 ? DB_CKPT_HIGHEST_BLEU : DB_CKPT_LOWEST_PPL;
    }
    if (!(members = malloc((size_t)n * sizeof *members))) {
        rc = sl_err(SL_ENOMEM, "out of memory");
        goto fail;
    }
    if ((rc = db_begin(db)))
        goto fail;
    in_tx = 1;
    if ((rc = db_ckpt_count_trained(db, run_id, rank, &n_avail)))
        goto fail;
    if (n_avail < n) {
        static const char *const scored[] = {"", " with a validation perplexity", " with a validation BLEU"};
        rc = sl_err(SL_EINVAL, "%s: run %lld ('%s') has %lld trained checkpoint%s%s: --%s %lld needs %lld",
                    pos[0], (long long)run_id, r.name, (long long)n_avail, n_avail == 1 ? "" : "s", scored[rank],
                    last > 0 ? "last" : "best", (long long)n, (long long)n);
        goto fail;
    }
    if ((rc = db_ckpt_select(db, run_id, rank, n, members, &n_found)) ||
        (rc = average_store(db, members, (size_t)n_found, &new_id)) || (rc = db_commit(db)))
        goto fail;
    in_tx = 0;
    printf("checkpoint %lld: the mean of checkpoint%s", (long long)new_id, n_found == 1 ? "" : "s");
    for (int64_t i = 0; i < n_found; i++)
        printf("%s %lld", i ? "," : "", (long long)members[i]);
    printf(" (run %lld '%s', the %lld %s)\n", (long long)run_id, r.name, (long long)n_found,
           rank == DB_CKPT_NEWEST ? "newest" : rank == DB_CKPT_LOWEST_PPL ? "best by perplexity" : "best by BLEU");
    status = 0;
    goto cleanup;
fail:
    cli_fail_status(&cmd_average, rc);
cleanup:
    if (in_tx)
        db_rollback(db);
    free(members);
    db_run_clear(&r);
    db_close(db);
    return status;
}

const struct cli_cmd cmd_average = {
    .name = "average",
    .summary = "store the mean of a run's last or best checkpoints as a new checkpoint",
    .usage =
        "usage: seqlite average DB [--run ID|NAME] (--last N | --best N)\n"
        "  Stores a new checkpoint whose weights are the element-wise mean of N trained checkpoints\n"
        "  of a run (summed in double, in id order): its N newest (--last), or its N best by the\n"
        "  run's --best-by metric (validation perplexity, or BLEU). Prints the new checkpoint's id\n"
        "  first: \"checkpoint ID: the mean of checkpoints A, B, ...\". Use it with translate and eval\n"
        "  --checkpoint ID, or ship it with seqlite export --checkpoint ID.\n"
        "  The new checkpoint has no optimizer state and no validation scores; checkpoint.averaged_from\n"
        "  lists its members. Training never resumes from it (--checkpoint last and --resume mean the\n"
        "  last trained checkpoint) and never prunes it. One transaction: on failure nothing is stored.\n"
        "options:\n"
        "  --run R     the run, by id or name (default: the newest)\n"
        "  --last N    average the N newest trained checkpoints\n"
        "  --best N    average the N best trained checkpoints\n"
        "exit status: 0 ok, 1 failure (fewer than N checkpoints, members that do not match), 2 usage error\n",
    .run = run,
};
