/* tools/cmd_score.c: `seqlite score REF [REF2 ...] < HYP`: corpus BLEU / chrF / chrF++ of the
 * hypotheses on stdin (or in --input FILE; then one REF may be "-", standard input) against one or
 * more line-aligned reference files, as sacreBLEU 2.x computes them (every line rstripped, empty
 * references skipped, 13a tokenizer, exp smoothing). Prints sacreBLEU's text line per metric (or its
 * JSON with --json). Exit 1 on bad input (unreadable file, invalid UTF-8, different line counts), 2 on
 * usage errors.
 * ref: sacrebleu/sacrebleu.py (main), eval/bleu.h, eval/chrf.h. */
#include "tools/cli.h"

#include "eval/bleu.h"
#include "eval/chrf.h"
#include "eval/evtext.h"
#include "eval/metric.h"
#include "util/err.h"
#include "util/sbuf.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_REFS 64
#define MAX_METRICS 8

/* All lines of one input, rstripped, in one buffer. */
struct lines {
    const char *name;
    struct sbuf buf;
    size_t *off, *len; /* (n) */
    size_t n, cap;
};

static void lines_free(struct lines *l)
{
    sbuf_free(&l->buf);
    free(l->off);
    free(l->len);
}

/* Reads every line of f; on error fills msg and returns nonzero. */
static int lines_read(struct lines *l, FILE *f, char *msg, size_t msg_cap)
{
    struct sbuf line;
    sbuf_init(&line);
    int rc;
    while ((rc = sbuf_getline(&line, f)) == 1) {
        size_t bad;
        if (!evtext_valid(line.data, line.len, &bad)) {
            snprintf(msg, msg_cap, "%s line %zu: invalid UTF-8 at byte %zu (the files must be UTF-8)",
                     l->name, l->n + 1, bad + 1);
            rc = SL_EUTF8;
            break;
        }
        if (l->n == l->cap) {
            size_t cap = l->cap ? 2 * l->cap : 1024;
            size_t *o = realloc(l->off, cap * sizeof *o);
            if (o)
                l->off = o;
            size_t *n = o ? realloc(l->len, cap * sizeof *n) : NULL;
            if (!n) {
                snprintf(msg, msg_cap, "out of memory reading %s", l->name);
                rc = SL_ENOMEM;
                break;
            }
            l->len = n;
            l->cap = cap;
        }
        size_t len = evtext_rstrip(line.data, line.len); /* sacreBLEU's CLI rstrips every line */
        l->off[l->n] = l->buf.len;
        l->len[l->n] = len;
        if ((rc = sbuf_append(&l->buf, line.data, len)) != 0) {
            snprintf(msg, msg_cap, "out of memory reading %s", l->name);
            break;
        }
        l->n++;
    }
    if (rc < 0 && !msg[0])
        snprintf(msg, msg_cap, "cannot read %s: %s", l->name, sl_errmsg());
    sbuf_free(&line);
    return rc < 0 ? rc : 0;
}

static const char *line_at(const struct lines *l, size_t i) { return l->buf.data + l->off[i]; }

enum metric_kind { M_BLEU, M_CHRF, M_CHRFPP };

static int run(int argc, char **argv)
{
    const char *metrics_arg = "bleu,chrf", *tok_arg = "13a", *smooth_arg = "exp";
    int lowercase = 0, json = 0;
    int64_t width = 1;
    double smooth_value = -1.0;
    const char *input = "-";
    const struct cli_opt opts[] = {
        {"input", CLI_STR, &input, 0, 0},
        {"metrics", CLI_STR, &metrics_arg, 0, 0},
        {"lowercase", CLI_BOOL, &lowercase, 0, 0},
        {"json", CLI_BOOL, &json, 0, 0},
        {"width", CLI_INT, &width, 0, 10},
        {"tokenize", CLI_STR, &tok_arg, 0, 0},
        {"smooth", CLI_STR, &smooth_arg, 0, 0},
        {"smooth-value", CLI_DOUBLE, &smooth_value, 0, 1e6},
        {NULL, 0, NULL, 0, 0},
    };
    char *pos[MAX_REFS];
    int npos = 0;
    int rc = cli_parse(&cmd_score, argc, argv, opts, pos, MAX_REFS, &npos);
    if (rc == CLI_HELP_SHOWN)
        return 0;
    if (rc)
        return rc;
    if (npos == 0)
        return cli_usage_error(&cmd_score, "no reference file given");
    int n_stdin = strcmp(input, "-") == 0;
    for (int r = 0; r < npos; r++)
        n_stdin += strcmp(pos[r], "-") == 0;
    if (n_stdin > 1)
        return cli_usage_error(&cmd_score, "only one file can be '-' (standard input): the hypotheses %s",
                               strcmp(input, "-") ? "and a reference"
                                                  : "are read from it (give --input HYP)");

    struct bleu_opts bo;
    bleu_opts_default(&bo);
    bo.lowercase = lowercase;
    bo.smooth_value = smooth_value;
    if (strcmp(tok_arg, "13a") == 0)
        bo.tok = BLEU_TOK_13A;
    else if (strcmp(tok_arg, "none") == 0)
        bo.tok = BLEU_TOK_NONE;
    else if (strcmp(tok_arg, "char") == 0)
        bo.tok = BLEU_TOK_CHAR;
    else
        return cli_usage_error(&cmd_score, "--tokenize: unknown tokenizer '%s' (known: 13a, none, char)",
                               tok_arg);
    if (strcmp(smooth_arg, "exp") == 0)
        bo.smooth = BLEU_SMOOTH_EXP;
    else if (strcmp(smooth_arg, "floor") == 0)
        bo.smooth = BLEU_SMOOTH_FLOOR;
    else if (strcmp(smooth_arg, "add-k") == 0)
        bo.smooth = BLEU_SMOOTH_ADDK;
    else if (strcmp(smooth_arg, "none") == 0)
        bo.smooth = BLEU_SMOOTH_NONE;
    else
        return cli_usage_error(&cmd_score, "--smooth: unknown method '%s' (known: exp, floor, add-k, none)",
                               smooth_arg);

    enum metric_kind kinds[MAX_METRICS];
    size_t nkinds = 0;
    for (const char *p = metrics_arg; *p;) {
        const char *comma = strchr(p, ',');
        size_t n = comma ? (size_t)(comma - p) : strlen(p);
        enum metric_kind k;
        if (n == 4 && strncmp(p, "bleu", 4) == 0)
            k = M_BLEU;
        else if (n == 4 && strncmp(p, "chrf", 4) == 0)
            k = M_CHRF;
        else if (n == 6 && strncmp(p, "chrf++", 6) == 0)
            k = M_CHRFPP;
        else
            return cli_usage_error(&cmd_score, "--metrics: unknown metric '%.*s' (known: bleu, chrf, chrf++)",
                                   (int)n, p);
        int dup = 0;
        for (size_t i = 0; i < nkinds; i++)
            dup |= kinds[i] == k;
        if (!dup && nkinds < MAX_METRICS)
            kinds[nkinds++] = k;
        p += n + (comma ? 1 : 0);
    }
    if (nkinds == 0)
        return cli_usage_error(&cmd_score, "--metrics: no metric named");

    int status = 1;
    char msg[1024] = "";
    size_t nrefs = (size_t)npos;
    struct lines hyp = {.name = strcmp(input, "-") ? input : "stdin"}, refs[MAX_REFS];
    sbuf_init(&hyp.buf);
    for (size_t r = 0; r < nrefs; r++) {
        memset(&refs[r], 0, sizeof refs[r]);
        refs[r].name = strcmp(pos[r], "-") ? pos[r] : "stdin";
        sbuf_init(&refs[r].buf);
    }
    struct bleu *bleu = NULL;
    struct chrf *chrf[2] = {NULL, NULL}; /* chrF, chrF++ */
    struct metric_result res;
    struct sbuf out;
    metric_result_init(&res);
    sbuf_init(&out);

    for (size_t r = 0; r <= nrefs; r++) {
        /* the references, then the hypotheses; "-" is standard input */
        const char *path = r < nrefs ? pos[r] : input;
        FILE *f = strcmp(path, "-") ? fopen(path, "rb") : stdin;
        if (!f) {
            cli_fail(&cmd_score, "cannot open %s file %s: %s", r < nrefs ? "reference" : "hypothesis", path,
                     strerror(errno));
            goto cleanup;
        }
        rc = lines_read(r < nrefs ? &refs[r] : &hyp, f, msg, sizeof msg);
        if (f != stdin)
            fclose(f);
        if (rc) {
            cli_fail(&cmd_score, "%s", msg);
            goto cleanup;
        }
    }
    for (size_t r = 0; r < nrefs; r++) {
        if (refs[r].n != hyp.n) {
            cli_fail(&cmd_score,
                     "%s has %zu lines but %s has %zu: hypotheses and references must be line-aligned",
                     hyp.name, hyp.n, refs[r].name, refs[r].n);
            goto cleanup;
        }
    }
    if (hyp.n == 0) {
        cli_fail(&cmd_score, "no hypotheses in %s (and the references are empty too)", hyp.name);
        goto cleanup;
    }

    for (size_t k = 0; k < nkinds; k++) {
        if (kinds[k] == M_BLEU) {
            if (!(bleu = bleu_create(&bo))) {
                cli_fail_status(&cmd_score, SL_EINVAL);
                goto cleanup;
            }
        } else {
            struct chrf_opts co;
            chrf_opts_default(&co);
            co.lowercase = lowercase;
            co.word_order = kinds[k] == M_CHRFPP ? 2 : 0;
            if (!(chrf[kinds[k] == M_CHRFPP] = chrf_create(&co))) {
                cli_fail_status(&cmd_score, SL_EINVAL);
                goto cleanup;
            }
        }
    }
    const char *rp[MAX_REFS];
    size_t rl[MAX_REFS];
    for (size_t i = 0; i < hyp.n; i++) {
        for (size_t r = 0; r < nrefs; r++) {
            rp[r] = line_at(&refs[r], i);
            rl[r] = refs[r].len[i];
        }
        rc = 0;
        if (bleu)
            rc = bleu_add(bleu, line_at(&hyp, i), hyp.len[i], rp, rl, nrefs);
        for (int c = 0; !rc && c < 2; c++)
            if (chrf[c])
                rc = chrf_add(chrf[c], line_at(&hyp, i), hyp.len[i], rp, rl, nrefs);
        if (rc) {
            if (rc == SL_EINVAL)
                cli_fail(&cmd_score, "line %zu: every reference is empty (sacreBLEU rejects this too; "
                                     "drop the line from all files)", i + 1);
            else
                cli_fail(&cmd_score, "line %zu: %s", i + 1, sl_errmsg());
            goto cleanup;
        }
    }

    if (json && nkinds > 1)
        rc = sbuf_printf(&out, "[\n");
    for (size_t k = 0; !rc && k < nkinds; k++) {
        if (kinds[k] == M_BLEU)
            rc = bleu_report(bleu, &res);
        else
            rc = chrf_report(chrf[kinds[k] == M_CHRFPP], &res);
        if (!rc && json && k > 0)
            rc = sbuf_printf(&out, ",\n");
        if (!rc)
            rc = json ? metric_format_json(&res, (int)width, &out) : metric_format_text(&res, (int)width, &out);
        if (!rc && !json)
            rc = sbuf_putc(&out, '\n');
    }
    if (!rc && json)
        rc = sbuf_printf(&out, nkinds > 1 ? "\n]\n" : "\n");
    if (rc) {
        cli_fail_status(&cmd_score, rc);
        goto cleanup;
    }
    if (fwrite(out.data, 1, out.len, stdout) != out.len || fflush(stdout) != 0) {
        cli_fail(&cmd_score, "cannot write the scores to stdout");
        goto cleanup;
    }
    status = 0;

cleanup:
    bleu_free(bleu);
    chrf_free(chrf[0]);
    chrf_free(chrf[1]);
    metric_result_free(&res);
    sbuf_free(&out);
    lines_free(&hyp);
    for (size_t r = 0; r < nrefs; r++)
        lines_free(&refs[r]);
    return status;
}

const struct cli_cmd cmd_score = {
    .name = "score",
    .summary = "BLEU and chrF of hypotheses (stdin) against reference files",
    .usage =
        "usage: seqlite score REF [REF2 ...] [options] < HYP\n"
        "       seqlite score - --input HYP [options] < REF\n"
        "  Corpus BLEU / chrF of the hypotheses on stdin (or in --input HYP) against line-aligned\n"
        "  reference files (several files: several references per line; with --input one of them\n"
        "  may be '-', standard input), computed as sacreBLEU 2.x does: every line rstripped,\n"
        "  empty references skipped, 13a tokenizer and exp smoothing for BLEU, chrF2 over\n"
        "  characters without whitespace. Input must be UTF-8. One line per metric:\n"
        "    BLEU|nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:seqlite-" SEQLITE_VERSION
        " = 45.1 70.6/42.9/36.4/37.5 (BP = ...)\n"
        "  The version field names seqlite, not sacreBLEU: confirm headline numbers with sacreBLEU.\n"
        "options:\n"
        "  --input HYP         read the hypotheses from HYP instead of stdin\n"
        "  --metrics LIST      comma-separated: bleu, chrf, chrf++ (default bleu,chrf)\n"
        "  --lowercase         case-insensitive (Python str.lower()), for every metric named\n"
        "                      (sacreBLEU: -lc for BLEU, --chrf-lowercase for chrF)\n"
        "  --json              sacreBLEU's JSON: one object, or an array for several metrics\n"
        "  --width N           decimals of the score (default 1, as the sacreBLEU command)\n"
        "  --tokenize T        BLEU tokenizer: 13a (default), none, char\n"
        "  --smooth M          BLEU smoothing: exp (default), floor, add-k, none\n"
        "  --smooth-value X    value for floor (default 0.1) or add-k (default 1)\n"
        "exit status: 0 ok, 1 bad input (unreadable file, invalid UTF-8, line counts differ),\n"
        "  2 usage error\n",
    .run = run,
};
