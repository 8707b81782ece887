/* tools/cmd_eval.c: `seqlite eval DB`: translates the stored pairs of one split with a checkpoint
 * (translate/evaluate.h), scores them against the stored references with BLEU and chrF as sacreBLEU 2.x
 * does (hypotheses and references rstripped, as `seqlite score`), and stores, in one transaction,
 * every hypothesis with its log-probability (translation rows) and both scores with their
 * signatures (metric rows). Prints sacreBLEU's text line per metric on stdout, the speed on stderr.
 * ref: eval/metric.h (output format), translate/evaluate.h (what is stored). */
#include "tools/cli.h"

#include "corpus/db.h"
#include "eval/metric.h"
#include "model/checkpoint.h"
#include "translate/evaluate.h"
#include "translate/translator.h"
#include "util/clock.h"
#include "util/err.h"
#include "util/sbuf.h"

#include <stdio.h>
#include <string.h>

static int run(int argc, char **argv)
{
    const char *precision = NULL, *which = "best", *split = "test", *run_key = NULL;
    int64_t beam = 5, limit = 0, threads = 0;
    double alpha = 0.6;
    const struct cli_opt opts[] = {
        {"split", CLI_STR, &split, 0, 0},
        {"checkpoint", CLI_STR, &which, 0, 0},
        {"run", CLI_STR, &run_key, 0, 0},
        {"beam", CLI_INT, &beam, 1, 100},
        {"length-penalty", CLI_DOUBLE, &alpha, 0, 10},
        {"limit", CLI_INT, &limit, 0, 1e12},
        {"threads", CLI_INT, &threads, 0, 256},
        {"precision", CLI_STR, &precision, 0, 0},
        {NULL, 0, NULL, 0, 0},
    };
    char *pos[1];
    int npos = 0;
    int rc = cli_parse(&cmd_eval, argc, argv, opts, pos, 1, &npos);
    if (rc == CLI_HELP_SHOWN)
        return 0;
    if (rc)
        return rc;
    if (npos != 1)
        return cli_usage_error(&cmd_eval, "expected DB");
    if (strcmp(split, "train") && strcmp(split, "valid") && strcmp(split, "test"))
        return cli_usage_error(&cmd_eval, "--split: '%s' is not train, valid or test", split);
    enum precision prec = PRECISION_FP32;
    if (precision && cli_precision(&cmd_eval, precision, &prec))
        return 2;

    int status = 1;
    struct db *db = NULL;
    struct ckpt_model *cks = NULL;
    size_t n_ck = 0;
    struct translator *t = NULL;
    struct eval_set p;
    memset(&p, 0, sizeof p);
    struct eval_out ev;
    eval_out_init(&ev, 1); /* the hypotheses are stored after decoding, in one short transaction, so a
                              training run writing to the same database is not held up */
    struct sbuf out;
    sbuf_init(&out);
    double t0 = 0;

    rc = db_open(pos[0], DB_READ, &db); /* on read-only media: scored, printed, not stored */
    if (rc == SL_ENOTFOUND) {
        cli_fail(&cmd_eval, "no trained model: %s does not exist (run seqlite import, vocab and train first)",
                 pos[0]);
        goto cleanup;
    }
    if (rc) {
        cli_fail_status(&cmd_eval, rc);
        goto cleanup;
    }
    rc = ckpt_ensemble_load_run(db, run_key, which, &cks, &n_ck);
    if (rc == SL_ENOTFOUND && (strcmp(which, "last") == 0 || strcmp(which, "best") == 0) && !db_has_checkpoint(db)) {
        cli_fail(&cmd_eval, "no trained model: run seqlite train %s first", pos[0]);
        goto cleanup;
    }
    if (rc) {
        cli_fail_status(&cmd_eval, rc);
        goto cleanup;
    }
    if ((rc = eval_set_load(db, split, (size_t)limit, &p))) {
        cli_fail_status(&cmd_eval, rc);
        goto cleanup;
    }
    if (p.n == 0) {
        cli_fail(&cmd_eval, "no %s pairs in %s (seqlite import --split %s ...)", split, pos[0], split);
        goto cleanup;
    }
    if (!precision)
        prec = cli_stored_precision(cks, n_ck);
    const struct ckpt_model ck = cks[0];
    const struct s2s_model *models[CKPT_ENSEMBLE_MAX];
    const float *weights[CKPT_ENSEMBLE_MAX];
    for (size_t i = 0; i < n_ck; i++)
        models[i] = &cks[i].model, weights[i] = cks[i].w;
    struct translate_opts to;
    translate_opts_default(&to);
    to.beam = (size_t)beam;
    to.alpha = (float)alpha;
    to.threads = (int)threads;
    to.precision = (int)prec;
    to.src_eos = ck.src_eos;
    if (!(t = translator_create_ensemble(models, weights, n_ck, ck.src_bpe, ck.tgt_bpe, &to))) {
        cli_fail_status(&cmd_eval, SL_EINVAL);
        goto cleanup;
    }
    t0 = clock_now();
    if ((rc = eval_translate(t, &p, &ev))) {
        cli_fail(&cmd_eval, "%s split: %s", split, sl_errmsg());
        goto cleanup;
    }
    double t_decode = 0;
    translator_totals(t, NULL, NULL, NULL, &t_decode);
    double wall = clock_since(t0);
    /* an ensemble's evaluation names its first member and lists all of them */
    char members[1024] = "";
    for (size_t i = 0; n_ck > 1 && i < n_ck; i++) {
        size_t used = strlen(members);
        snprintf(members + used, sizeof members - used, "%s%lld%s", i ? "," : "[", (long long)cks[i].checkpoint_id,
                 i + 1 == n_ck ? "]" : "");
    }
    const struct eval_record rec = {
        .run_id = ck.run_id,
        .checkpoint_id = ck.checkpoint_id,
        .step = ck.step,
        .split = split,
        .beam = (int)beam,
        .alpha = alpha,
        .limit = (size_t)limit,
        .members = n_ck > 1 ? members : NULL,
        .precision = translator_opts(t)->precision, /* after cli_precision's fallback: what decoded */
        .seconds = t_decode,
    };
    if (!db_read_only(db) && (rc = eval_store(db, &rec, &p, &ev)) != 0) {
        cli_fail_status(&cmd_eval, rc);
        goto cleanup;
    }
    if ((rc = metric_format_text(&ev.bleu, 1, &out)) != 0 || (rc = sbuf_putc(&out, '\n')) != 0 ||
        (rc = metric_format_text(&ev.chrf, 1, &out)) != 0 || (rc = sbuf_putc(&out, '\n')) != 0) {
        cli_fail_status(&cmd_eval, rc);
        goto cleanup;
    }
    if (fwrite(out.data, 1, out.len, stdout) != out.len || fflush(stdout) != 0) {
        cli_fail(&cmd_eval, "cannot write to standard output");
        goto cleanup;
    }
    size_t done = 0, tgt_tok = 0;
    translator_totals(t, &done, NULL, &tgt_tok, NULL);
    fprintf(stderr, "eval: %s split, %zu pairs, checkpoint %lld (run %lld, step %lld), beam %lld, length "
            "penalty %g, %s, %d threads: decoding %.2f s (%.1f sentences/s, %.0f target tokens/s), total %.2f s\n",
            split, p.n, (long long)ck.checkpoint_id, (long long)ck.run_id, (long long)ck.step, (long long)beam,
            alpha, precision_name((enum precision)rec.precision), translator_opts(t)->threads, t_decode, t_decode > 0 ? (double)done / t_decode : 0.0,
            t_decode > 0 ? (double)tgt_tok / t_decode : 0.0, wall);
    if (db_read_only(db))
        fprintf(stderr, "eval: %s cannot be written here (read-only): the scores were not stored\n", pos[0]);
    if (ev.n_bad)
        fprintf(stderr, "eval: %zu stored source%s had invalid UTF-8 (scored as empty hypotheses)\n", ev.n_bad,
                ev.n_bad == 1 ? "" : "s");
    status = 0;

cleanup:
    eval_out_free(&ev);
    sbuf_free(&out);
    translator_free(t);
    eval_set_free(&p);
    ckpt_ensemble_free(cks, n_ck);
    db_close(db);
    return status;
}

const struct cli_cmd cmd_eval = {
    .name = "eval",
    .summary = "translate a stored split and score it (BLEU, chrF)",
    .usage =
        "usage: seqlite eval DB [options]\n"
        "  Translates the source side of every pair of a split (all its corpora, in import order),\n"
        "  scores the hypotheses against the stored targets with BLEU and chrF as sacreBLEU 2.x does\n"
        "  (13a tokenizer, exp smoothing; chrF2), and stores in one transaction every hypothesis\n"
        "  (table translation) and both scores with their signatures (table metric), grouped by one\n"
        "  evaluation row with the settings (table evaluation). Prints one\n"
        "  line per metric on stdout, as `seqlite score`, and the decoding speed on stderr.\n"
        "options:\n"
        "  --split S           train, valid or test (default test)\n"
        "  --checkpoint C      best (default), last or a checkpoint id (see seqlite translate); a\n"
        "                      comma-separated list decodes with the ensemble (evaluation.members)\n"
        "  --run R             take --checkpoint's best / last within run R (an id or a name)\n"
        "  --beam K            beam size (default 5; 1 = greedy)\n"
        "  --length-penalty A  GNMT length penalty exponent (default 0.6)\n"
        "  --limit N           only the first N pairs (default 0: all)\n"
        "  --threads N         decoding threads (default 0: all cores)\n"
        "  --precision P       fp32 (default), bf16 (products in bf16 with f32 sums; AVX512-BF16\n"
        "                      or AMX) or int8 (weights int8 per output unit, inputs per row;\n"
        "                      VNNI or AMX); elsewhere fp32 with a note (evaluation.precision\n"
        "                      stores the one decoded with). Default for a model stored in bf16\n"
        "                      (export --precision bf16): bf16 where the CPU has it\n"
        "exit status: 0 ok, 1 no model / no pairs / database error, 2 usage error\n",
    .run = run,
};
