/* tools/cmd_translate.c: `seqlite translate DB < input > output`: translates stdin line by line with
 * a stored checkpoint (translate/translator.h), writing exactly one output line per input line in input
 * order (N lines per input with --nbest N, Moses format "ID ||| hypothesis ||| score"), with an ensemble
 * of checkpoints (--checkpoint 12,15,18) and word alignments (--alignment, Marian's " ||| " field). Streams:
 * reads --batch lines, translates, writes, repeats (constant memory); --unbuffered (the default on a
 * terminal) answers each line and flushes before reading the next. An invalid UTF-8 line, or one
 * holding a NUL byte (as import refuses them), gives an empty output line and a message naming it;
 * the run goes on and exits 1 at the end.
 * ref: Moses n-best list format (statmt.org/moses, "n-best lists"); translate/translator.h. */
#include "tools/cli.h"

#include "corpus/db.h"
#include "model/checkpoint.h"
#include "translate/translator.h"
#include "util/clock.h"
#include "util/err.h"
#include "util/sbuf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Opens path and loads the checkpoints of which (one, or an ensemble); on failure prints the message and
 * returns 1. */
static int open_model(const char *path, const char *run_key, const char *which, struct db **db, struct ckpt_model **ck, size_t *n_ck)
{
    int rc = db_open(path, DB_READ, db);
    if (rc == SL_ENOTFOUND)
        return cli_fail(&cmd_translate, "no trained model: %s does not exist (run seqlite import, vocab and "
                        "train first)", path);
    if (rc)
        return cli_fail_status(&cmd_translate, rc);
    rc = ckpt_ensemble_load_run(*db, run_key, which, ck, n_ck);
    if (rc == SL_ENOTFOUND && (strcmp(which, "last") == 0 || strcmp(which, "best") == 0) && !db_has_checkpoint(*db))
        return cli_fail(&cmd_translate, "no trained model: run seqlite train %s first", path);
    if (rc)
        return cli_fail_status(&cmd_translate, rc);
    return 0;
}

/* The longest line translated: decoding memory grows with the source length (a 1 MB line would take
 * gigabytes), and no sentence is this long. */
#define TRANSLATE_MAX_LINE 16384
#define LINE_TOO_LONG ((size_t)-1)

/* The lines of one round, in one buffer. */
struct round {
    struct sbuf buf;
    size_t *off;
    size_t *len;
    const char **ptr;
    size_t *nul; /* 1-based byte of line i's first NUL, or LINE_TOO_LONG (the line is then translated as
                    empty), or 0 */
    size_t n, cap;
};

static int round_add(struct round *r, const char *s, size_t n)
{
    if (r->n == r->cap) {
        size_t c = r->cap ? 2 * r->cap : 64;
        size_t *o = realloc(r->off, c * sizeof *o);
        if (!o)
            return SL_ENOMEM;
        r->off = o;
        size_t *l = realloc(r->len, c * sizeof *l);
        if (!l)
            return SL_ENOMEM;
        r->len = l;
        const char **p = realloc(r->ptr, c * sizeof *p);
        if (!p)
            return SL_ENOMEM;
        r->ptr = p;
        size_t *z = realloc(r->nul, c * sizeof *z);
        if (!z)
            return SL_ENOMEM;
        r->nul = z;
        r->cap = c;
    }
    const char *nul = memchr(s, '\0', n); /* import refuses NUL bytes: so does translate */
    r->nul[r->n] = nul ? (size_t)(nul - s) + 1 : n > TRANSLATE_MAX_LINE ? LINE_TOO_LONG : 0;
    if (r->nul[r->n])
        n = 0;
    r->off[r->n] = r->buf.len;
    r->len[r->n] = n;
    r->n++;
    return sbuf_append(&r->buf, s, n);
}

/* Writes the results of one round; counts invalid lines in *n_bad. first: 0-based index of line 0. */
static int write_round(struct translator *t, const struct round *r, size_t first, size_t nbest, int scores,
                       int alignment, struct sbuf *out, size_t *n_bad)
{
    sbuf_reset(out);
    for (size_t i = 0; i < r->n; i++) {
        const struct translate_result *res = translator_result(t, i);
        size_t n_hyps = r->nul[i] ? 0 : res->n_hyps;
        int rc = 0;
        if (r->nul[i] == LINE_TOO_LONG)
            fprintf(stderr, "seqlite: translate: line %zu: longer than %d bytes (a sentence is shorter; memory "
                    "grows with the length): wrote an empty line\n", first + i + 1, TRANSLATE_MAX_LINE);
        else if (r->nul[i])
            fprintf(stderr, "seqlite: translate: line %zu, byte %zu: NUL byte: wrote an empty line\n",
                    first + i + 1, r->nul[i]);
        else if (res->status)
            fprintf(stderr, "seqlite: translate: line %zu: invalid UTF-8 at byte %zu: wrote an empty line\n",
                    first + i + 1, res->bad_off + 1);
        *n_bad += r->nul[i] || res->status;
        if (nbest > 1) {
            if (n_hyps == 0)
                rc = sbuf_printf(out, "%zu |||  ||| %s0\n", first + i, alignment ? " ||| " : "");
            for (size_t k = 0; !rc && k < n_hyps; k++)
                rc = sbuf_printf(out, "%zu ||| %s ||| %s%s%.6f\n", first + i, res->hyps[k].text,
                                 alignment ? res->hyps[k].align : "", alignment ? " ||| " : "", res->hyps[k].score);
        } else {
            if (n_hyps)
                rc = sbuf_append(out, res->hyps[0].text, res->hyps[0].len);
            if (!rc && alignment)
                rc = sbuf_printf(out, " ||| %s", n_hyps ? res->hyps[0].align : "");
            if (!rc && scores)
                rc = sbuf_printf(out, "\t%.6f", n_hyps ? res->hyps[0].score : 0.0);
            if (!rc)
                rc = sbuf_putc(out, '\n');
        }
        if (rc)
            return rc;
    }
    if (out->len && fwrite(out->data, 1, out->len, stdout) != out->len)
        return sl_err(SL_EIO, "cannot write to standard output");
    return 0;
}

static int run(int argc, char **argv)
{
    const char *precision = NULL, *which = "best", *run_key = NULL;
    int64_t beam = 5, nbest = 1, batch = 64, threads = 0;
    double alpha = 0.6, ratio = 2.0;
    int unbuffered = 0, scores = 0, alignment = 0;
    const struct cli_opt opts[] = {
        {"checkpoint", CLI_STR, &which, 0, 0},
        {"run", CLI_STR, &run_key, 0, 0},
        {"beam", CLI_INT, &beam, 1, 100},
        {"nbest", CLI_INT, &nbest, 1, 100},
        {"length-penalty", CLI_DOUBLE, &alpha, 0, 10},
        {"max-len-ratio", CLI_DOUBLE, &ratio, 0, 100},
        {"batch", CLI_INT, &batch, 1, 100000},
        {"threads", CLI_INT, &threads, 0, 256},
        {"precision", CLI_STR, &precision, 0, 0},
        {"unbuffered", CLI_BOOL, &unbuffered, 0, 0},
        {"scores", CLI_BOOL, &scores, 0, 0},
        {"alignment", CLI_BOOL, &alignment, 0, 0},
        {NULL, 0, NULL, 0, 0},
    };
    char *pos[1];
    int npos = 0;
    int rc = cli_parse(&cmd_translate, argc, argv, opts, pos, 1, &npos);
    if (rc == CLI_HELP_SHOWN)
        return 0;
    if (rc)
        return rc;
    if (npos != 1)
        return cli_usage_error(&cmd_translate, "expected DB");
    if (nbest > beam)
        return cli_usage_error(&cmd_translate, "--nbest %lld is larger than --beam %lld", (long long)nbest,
                               (long long)beam);
    enum precision prec = PRECISION_FP32;
    if (precision && cli_precision(&cmd_translate, precision, &prec))
        return 2;
    if (isatty(STDIN_FILENO))
        unbuffered = 1;

    int status = 1;
    struct db *db = NULL;
    struct ckpt_model *ck = NULL;
    size_t n_ck = 0;
    struct translator *t = NULL;
    struct round r;
    memset(&r, 0, sizeof r);
    sbuf_init(&r.buf);
    struct sbuf line, out;
    sbuf_init(&line);
    sbuf_init(&out);
    size_t n_lines = 0, n_bad = 0;
    const double t0 = clock_now();

    if (open_model(pos[0], run_key, which, &db, &ck, &n_ck))
        goto cleanup;
    db_close(db); /* everything needed is in memory now */
    db = NULL;
    if (!precision)
        prec = cli_stored_precision(ck, n_ck);
    const struct s2s_model *models[CKPT_ENSEMBLE_MAX];
    const float *weights[CKPT_ENSEMBLE_MAX];
    int any_attention = 0;
    for (size_t i = 0; i < n_ck; i++) {
        models[i] = &ck[i].model;
        weights[i] = ck[i].w;
        any_attention |= ck[i].model.cfg.attention != ATTN_NONE;
    }
    if (alignment && !any_attention) {
        status = cli_usage_error(&cmd_translate, "--alignment needs a model with attention: %s --attention "
                                 "none", n_ck == 1 ? "the checkpoint has" : "every checkpoint has");
        goto cleanup;
    }
    struct translate_opts to;
    translate_opts_default(&to);
    to.beam = (size_t)beam;
    to.nbest = (size_t)nbest;
    to.alpha = (float)alpha;
    to.max_len_ratio = ratio;
    to.threads = (int)threads;
    to.precision = (int)prec;
    to.src_eos = ck[0].src_eos;
    to.alignment = alignment;
    if (!(t = translator_create_ensemble(models, weights, n_ck, ck[0].src_bpe, ck[0].tgt_bpe, &to))) {
        cli_fail_status(&cmd_translate, SL_EINVAL);
        goto cleanup;
    }
    size_t per_round = unbuffered ? 1 : (size_t)batch;
    int eof = 0;
    while (!eof) {
        r.n = 0;
        sbuf_reset(&r.buf);
        while (r.n < per_round) {
            rc = sbuf_getline(&line, stdin);
            if (rc < 0) {
                cli_fail(&cmd_translate, "cannot read standard input: %s", sl_errmsg());
                goto cleanup;
            }
            if (rc == 0) {
                eof = 1;
                break;
            }
            size_t n = line.len;
            if (n && line.data[n - 1] == '\r') /* CRLF input, as import reads it */
                n--;
            if (round_add(&r, line.data, n)) {
                cli_fail(&cmd_translate, "out of memory reading line %zu", n_lines + r.n + 1);
                goto cleanup;
            }
        }
        if (r.n == 0)
            break;
        for (size_t i = 0; i < r.n; i++)
            r.ptr[i] = r.buf.data + r.off[i];
        if ((rc = translator_run(t, r.ptr, r.len, r.n)) != 0) {
            cli_fail(&cmd_translate, "lines %zu-%zu: %s", n_lines + 1, n_lines + r.n, sl_errmsg());
            goto cleanup;
        }
        if ((rc = write_round(t, &r, n_lines, (size_t)nbest, scores, alignment, &out, &n_bad)) != 0) {
            cli_fail_status(&cmd_translate, rc);
            goto cleanup;
        }
        n_lines += r.n;
        if (unbuffered && fflush(stdout) != 0) {
            cli_fail(&cmd_translate, "cannot write to standard output");
            goto cleanup;
        }
    }
    if (fflush(stdout) != 0) {
        cli_fail(&cmd_translate, "cannot write to standard output");
        goto cleanup;
    }
    const double wall = clock_since(t0);
    size_t done = 0, src_tok = 0, tgt_tok = 0;
    double secs = 0;
    translator_totals(t, &done, &src_tok, &tgt_tok, &secs);
    if (!unbuffered)
        fprintf(stderr, "translate: %zu line%s (%zu translated) in %.2f s (decoding %.2f s: %.1f sentences/s, "
                "%.0f target tokens/s), checkpoint %lld (run %lld, step %lld)%s, beam %lld, %s, %d threads\n",
                n_lines, n_lines == 1 ? "" : "s", done, wall, secs, secs > 0 ? (double)done / secs : 0.0,
                secs > 0 ? (double)tgt_tok / secs : 0.0, (long long)ck[0].checkpoint_id, (long long)ck[0].run_id,
                (long long)ck[0].step, n_ck > 1 ? " and the rest of the ensemble" : "", (long long)beam,
                precision_name((enum precision)translator_opts(t)->precision), translator_opts(t)->threads);
    if (n_bad) {
        cli_fail(&cmd_translate, "%zu line%s had invalid UTF-8, a NUL byte or more than %d bytes (empty lines written for them)",
                 n_bad, n_bad == 1 ? "" : "s", TRANSLATE_MAX_LINE);
        goto cleanup;
    }
    status = 0;

cleanup:
    translator_free(t);
    ckpt_ensemble_free(ck, n_ck);
    db_close(db);
    sbuf_free(&line);
    sbuf_free(&out);
    sbuf_free(&r.buf);
    free(r.off);
    free(r.len);
    free(r.ptr);
    free(r.nul);
    return status;
}

const struct cli_cmd cmd_translate = {
    .name = "translate",
    .summary = "translate stdin to stdout with a trained model",
    .usage =
        "usage: seqlite translate DB [options] < INPUT > OUTPUT\n"
        "  Translates each line of stdin with a checkpoint of DB and writes exactly one line per\n"
        "  input line, in input order. Empty input lines give empty output lines. A line that is not\n"
        "  valid UTF-8, holds a NUL byte or is longer than 16384 bytes (memory grows with the length)\n"
        "  gives an empty output line and a message on stderr naming it; the run goes on and exits 1.\n"
        "  Input is read --batch lines at a time, sorted by length and decoded by --threads threads;\n"
        "  the output does not depend on --batch or --threads.\n"
        "options:\n"
        "  --checkpoint C      best (default: the best checkpoint of the newest run that validated, else the\n"
        "                      newest), last (the newest trained checkpoint) or an id; a comma-separated\n"
        "                      list (12,15,18 or best,last) decodes with the ensemble: the mean of the\n"
        "                      members' log-probabilities at every step (the members may differ in\n"
        "                      architecture but must share both vocabularies)\n"
        "  --run R             take --checkpoint's best / last within run R (an id or a name)\n"
        "  --beam K            beam size (default 5; 1 = greedy)\n"
        "  --nbest N           write the N best hypotheses per line (N <= K), Moses format:\n"
        "                        ID ||| hypothesis ||| score   (ID 0-based line index, best first;\n"
        "                      an empty or invalid line gives one line \"ID |||  ||| 0\")\n"
        "  --length-penalty A  GNMT length penalty: score = log p / ((5 + |Y|) / 6)^A (default 0.6)\n"
        "  --max-len-ratio R   at most floor(R * source tokens) + 10 target tokens, at most 256\n"
        "                      (default 2.0)\n"
        "  --batch N           lines read and translated at a time (default 64)\n"
        "  --threads N         decoding threads (default 0: all cores)\n"
        "  --precision P       fp32 (default), bf16 (products in bf16 with f32 sums; AVX512-BF16\n"
        "                      or AMX) or int8 (weights int8 per output unit, inputs per row;\n"
        "                      VNNI or AMX); elsewhere fp32 with a note. Default for a model stored\n"
        "                      in bf16 (export --precision bf16): bf16 where the CPU has it\n"
        "  --unbuffered        translate and flush each line before reading the next (default when\n"
        "                      stdin is a terminal)\n"
        "  --scores            append a TAB and the score (length-normalised log-probability) to\n"
        "                      each line (without --nbest)\n"
        "  --alignment         append \" ||| \" and the hard word alignment SRC-TGT of each hypothesis\n"
        "                      (0-based whitespace-separated words of the source and the output; for\n"
        "                      each target subword the source subword with the largest attention weight;\n"
        "                      EOS left out; pairs sorted by source, then target), Moses / Marian style:\n"
        "                        hypothesis ||| 0-0 1-2 2-1   (--nbest: ID ||| hyp ||| 0-0 ... ||| score)\n"
        "                      Needs attention; an ensemble uses its first member with attention\n"
        "  A summary (lines, sentences/s, target tokens/s) goes to stderr unless --unbuffered.\n"
        "exit status: 0 ok, 1 no model / invalid input line / I/O error, 2 usage error\n",
    .run = run,
};
