/* tools/cmd_eval.c: `seqlite eval DB`: translates the stored pairs of one split with a checkpoint
 * (train/translate.h), scores them against the stored references with BLEU and chrF as sacreBLEU 2.x
 * does (hypotheses and references rstripped, as `seqlite score`), and stores, in one transaction,
 * every hypothesis with its log-probability (translation rows) and both scores with their
 * signatures (metric rows). Prints sacreBLEU's text line per metric on stdout, the speed on stderr.
 * ref: eval/metric.h (output format), corpus/db.h (translation, metric rows). */
#include "tools/cli.h"

#include "corpus/db.h"
#include "eval/bleu.h"
#include "eval/chrf.h"
#include "eval/evtext.h"
#include "eval/metric.h"
#include "train/checkpoint.h"
#include "train/translate.h"
#include "util/err.h"
#include "util/sbuf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define EVAL_ROUND 2048 /* pairs translated at a time (sorted by length inside) */

/* The pairs of the split: texts in one buffer. */
struct pairs {
    struct sbuf buf;
    int64_t *pair_id;
    size_t *src_off, *src_len, *tgt_off, *tgt_len;
    size_t n, cap, limit;
};

static int pairs_cb(void *ctx, int64_t pair_id, const char *src, size_t srclen, const char *tgt, size_t tgtlen)
{
    struct pairs *p = ctx;
    if (p->limit && p->n >= p->limit)
        return 1; /* stop: --limit reached */
    if (p->n == p->cap) {
        size_t c = p->cap ? 2 * p->cap : 1024;
#define RE(f)                                        \
    do {                                             \
        void *q = realloc(p->f, c * sizeof *p->f);   \
        if (!q)                                      \
            return sl_err(SL_ENOMEM, "out of memory reading the pairs"); \
        p->f = q;                                    \
    } while (0)
        RE(pair_id);
        RE(src_off);
        RE(src_len);
        RE(tgt_off);
        RE(tgt_len);
#undef RE
        p->cap = c;
    }
    p->pair_id[p->n] = pair_id;
    p->src_off[p->n] = p->buf.len;
    p->src_len[p->n] = srclen;
    int rc = sbuf_append(&p->buf, src, srclen);
    p->tgt_off[p->n] = p->buf.len;
    p->tgt_len[p->n] = tgtlen;
    if (!rc)
        rc = sbuf_append(&p->buf, tgt, tgtlen);
    if (rc)
        return rc;
    p->n++;
    return 0;
}

static void pairs_free(struct pairs *p)
{
    sbuf_free(&p->buf);
    free(p->pair_id);
    free(p->src_off);
    free(p->src_len);
    free(p->tgt_off);
    free(p->tgt_len);
}

/* Corpus id ranges of the split, to name each pair's corpus without a query per pair. */
struct ranges {
    const char *split;
    int64_t id[256], first[256], last[256];
    size_t n;
};

static int ranges_cb(void *ctx, const struct db_corpus *c)
{
    struct ranges *r = ctx;
    if (strcmp(c->split, r->split) != 0 || c->n_pairs == 0)
        return 0;
    if (r->n == sizeof r->id / sizeof r->id[0])
        return 0; /* more corpora than slots: the rest get a per-pair lookup */
    r->id[r->n] = c->id;
    r->first[r->n] = c->first_pair_id;
    r->last[r->n] = c->last_pair_id;
    r->n++;
    return 0;
}

static int corpus_of(struct db *db, const struct ranges *r, int64_t pair_id, int64_t *corpus_id)
{
    for (size_t i = 0; i < r->n; i++)
        if (pair_id >= r->first[i] && pair_id <= r->last[i]) {
            *corpus_id = r->id[i];
            return 0;
        }
    int64_t line;
    return db_pair_get(db, pair_id, corpus_id, &line);
}

static double elapsed(const struct timespec *t0)
{
    struct timespec t1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    return (double)(t1.tv_sec - t0->tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0->tv_nsec);
}

static int run(int argc, char **argv)
{
    const char *which = "best", *split = "test";
    int64_t beam = 5, limit = 0, threads = 0;
    double alpha = 0.6;
    const struct cli_opt opts[] = {
        {"split", CLI_STR, &split, 0, 0},
        {"checkpoint", CLI_STR, &which, 0, 0},
        {"beam", CLI_INT, &beam, 1, 100},
        {"length-penalty", CLI_DOUBLE, &alpha, 0, 10},
        {"limit", CLI_INT, &limit, 0, 1e12},
        {"threads", CLI_INT, &threads, 0, 256},
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

    int status = 1, in_tx = 0;
    struct db *db = NULL;
    struct ckpt_model ck;
    memset(&ck, 0, sizeof ck);
    struct translator *t = NULL;
    struct pairs p;
    memset(&p, 0, sizeof p);
    sbuf_init(&p.buf);
    p.limit = (size_t)limit;
    struct ranges rg;
    memset(&rg, 0, sizeof rg);
    rg.split = split;
    struct bleu *bleu = NULL;
    struct chrf *chrf = NULL;
    struct metric_result mb, mc;
    metric_result_init(&mb);
    metric_result_init(&mc);
    struct sbuf out;
    sbuf_init(&out);
    const char **ptr = NULL;
    struct sbuf hyps; /* every hypothesis, NUL-terminated, at hyp_off[i] */
    sbuf_init(&hyps);
    size_t *hyp_off = NULL;
    double *hyp_lp = NULL; /* (p.n) log p(hypothesis) */
    struct timespec t0;

    rc = db_open(pos[0], 0, &db);
    if (rc == SL_ENOTFOUND) {
        cli_fail(&cmd_eval, "no trained model: %s does not exist (run seqlite import, vocab and train first)",
                 pos[0]);
        goto cleanup;
    }
    if (rc) {
        cli_fail_status(&cmd_eval, rc);
        goto cleanup;
    }
    rc = ckpt_model_load(db, which, &ck);
    if (rc == SL_ENOTFOUND && (strcmp(which, "last") == 0 || strcmp(which, "best") == 0)) {
        cli_fail(&cmd_eval, "no trained model: run seqlite train %s first", pos[0]);
        goto cleanup;
    }
    if (rc) {
        cli_fail_status(&cmd_eval, rc);
        goto cleanup;
    }
    if ((rc = db_pairs_foreach(db, split, pairs_cb, &p)) < 0 || (rc = db_corpus_foreach(db, ranges_cb, &rg)) < 0) {
        cli_fail_status(&cmd_eval, rc);
        goto cleanup;
    }
    if (p.n == 0) {
        cli_fail(&cmd_eval, "no %s pairs in %s (seqlite import --split %s ...)", split, pos[0], split);
        goto cleanup;
    }
    struct translate_opts to;
    translate_opts_default(&to);
    to.beam = (size_t)beam;
    to.alpha = (float)alpha;
    to.threads = (int)threads;
    to.src_eos = ck.src_eos;
    if (!(t = translator_create(&ck.model, ck.w, ck.src_bpe, ck.tgt_bpe, &to)) || !(bleu = bleu_create(NULL)) ||
        !(chrf = chrf_create(NULL))) {
        cli_fail_status(&cmd_eval, SL_EINVAL);
        goto cleanup;
    }
    if (!(ptr = malloc(EVAL_ROUND * sizeof *ptr))) {
        cli_fail(&cmd_eval, "out of memory");
        goto cleanup;
    }
    /* the hypotheses are kept until the end: the write transaction is short, so a training run
     * writing to the same database is not held up by the decoding */
    if (!(hyp_off = malloc(p.n * sizeof *hyp_off)) || !(hyp_lp = malloc(p.n * sizeof *hyp_lp))) {
        cli_fail(&cmd_eval, "out of memory");
        goto cleanup;
    }
    clock_gettime(CLOCK_MONOTONIC, &t0);
    double t_decode = 0;
    size_t n_bad = 0;
    for (size_t a = 0; a < p.n; a += EVAL_ROUND) {
        size_t n = p.n - a < EVAL_ROUND ? p.n - a : EVAL_ROUND;
        for (size_t i = 0; i < n; i++)
            ptr[i] = p.buf.data + p.src_off[a + i];
        if ((rc = translator_run(t, ptr, p.src_len + a, n)) != 0) {
            cli_fail(&cmd_eval, "pairs %zu-%zu of %s: %s", a + 1, a + n, split, sl_errmsg());
            goto cleanup;
        }
        for (size_t i = 0; i < n; i++) {
            const struct translate_result *res = translator_result(t, i);
            const char *hyp = res->n_hyps ? res->hyps[0].text : "";
            size_t hl = res->n_hyps ? evtext_rstrip(hyp, res->hyps[0].len) : 0;
            double score = res->n_hyps ? res->hyps[0].logprob : 0.0; /* the column holds log p(hyp) */
            if (res->status)
                n_bad++;
            const char *ref = p.buf.data + p.tgt_off[a + i];
            size_t rl = evtext_rstrip(ref, p.tgt_len[a + i]);
            int64_t pid = p.pair_id[a + i];
            hyp_off[a + i] = hyps.len;
            hyp_lp[a + i] = score;
            if (sbuf_append(&hyps, hyp, res->n_hyps ? res->hyps[0].len : 0) || sbuf_putc(&hyps, '\0')) {
                cli_fail(&cmd_eval, "out of memory");
                goto cleanup;
            }
            if (rl == 0)
                continue; /* sacreBLEU skips empty references; import never stores one */
            if ((rc = bleu_add(bleu, hyp, hl, &ref, &rl, 1)) != 0 || (rc = chrf_add(chrf, hyp, hl, &ref, &rl, 1)) != 0) {
                cli_fail(&cmd_eval, "pair %lld: %s", (long long)pid, sl_errmsg());
                goto cleanup;
            }
        }
    }
    translator_totals(t, NULL, NULL, NULL, &t_decode);
    double wall = elapsed(&t0);
    if ((rc = db_begin(db)) != 0) {
        cli_fail_status(&cmd_eval, rc);
        goto cleanup;
    }
    in_tx = 1;
    for (size_t i = 0; i < p.n; i++) {
        int64_t cid = 0;
        if ((rc = corpus_of(db, &rg, p.pair_id[i], &cid)) != 0 ||
            (rc = db_translation_insert(db, ck.checkpoint_id, cid, p.pair_id[i], (int)beam, alpha,
                                        hyps.data + hyp_off[i], hyp_lp[i])) != 0) {
            cli_fail_status(&cmd_eval, rc);
            goto cleanup;
        }
    }
    if ((rc = bleu_report(bleu, &mb)) != 0 || (rc = chrf_report(chrf, &mc)) != 0 ||
        (rc = db_metric_insert(db, ck.run_id, ck.checkpoint_id, ck.step, split, "bleu", mb.score,
                               mb.signature.data)) != 0 ||
        (rc = db_metric_insert(db, ck.run_id, ck.checkpoint_id, ck.step, split, "chrf", mc.score,
                               mc.signature.data)) != 0) {
        cli_fail_status(&cmd_eval, rc);
        goto cleanup;
    }
    if ((rc = db_commit(db)) != 0) {
        cli_fail_status(&cmd_eval, rc);
        goto cleanup;
    }
    in_tx = 0;
    if ((rc = metric_format_text(&mb, 1, &out)) != 0 || (rc = sbuf_putc(&out, '\n')) != 0 ||
        (rc = metric_format_text(&mc, 1, &out)) != 0 || (rc = sbuf_putc(&out, '\n')) != 0) {
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
            "penalty %g, %d threads: decoding %.2f s (%.1f sentences/s, %.0f target tokens/s), total %.2f s\n",
            split, p.n, (long long)ck.checkpoint_id, (long long)ck.run_id, (long long)ck.step, (long long)beam,
            alpha, translator_opts(t)->threads, t_decode, t_decode > 0 ? (double)done / t_decode : 0.0,
            t_decode > 0 ? (double)tgt_tok / t_decode : 0.0, wall);
    if (n_bad)
        fprintf(stderr, "eval: %zu stored source%s had invalid UTF-8 (scored as empty hypotheses)\n", n_bad,
                n_bad == 1 ? "" : "s");
    status = 0;

cleanup:
    if (in_tx)
        db_rollback(db);
    free(ptr);
    free(hyp_off);
    free(hyp_lp);
    sbuf_free(&hyps);
    metric_result_free(&mb);
    metric_result_free(&mc);
    sbuf_free(&out);
    bleu_free(bleu);
    chrf_free(chrf);
    translator_free(t);
    pairs_free(&p);
    ckpt_model_free(&ck);
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
        "  (table translation) and both scores with their signatures (table metric). Prints one\n"
        "  line per metric on stdout, as `seqlite score`, and the decoding speed on stderr.\n"
        "options:\n"
        "  --split S           train, valid or test (default test)\n"
        "  --checkpoint C      best (default), last or a checkpoint id (see seqlite translate)\n"
        "  --beam K            beam size (default 5; 1 = greedy)\n"
        "  --length-penalty A  GNMT length penalty exponent (default 0.6)\n"
        "  --limit N           only the first N pairs (default 0: all)\n"
        "  --threads N         decoding threads (default 0: all cores)\n"
        "exit status: 0 ok, 1 no model / no pairs / database error, 2 usage error\n",
    .run = run,
};
