/* tools/cmd_info.c: `seqlite info DB [--run ID|NAME] [--json]`: a summary of a project database:
 * its corpora, vocabularies, training runs (status, model, steps, time, best validation scores, how to
 * resume), the checkpoints of one run (scores, flags, size) and the newest evaluations with their
 * settings. Aligned plain-text tables on stdout, or one JSON object with --json.
 * - Read-only: the database is opened as translate opens it and read in one snapshot (db_info_begin),
 *   so a training run may write to it meanwhile; a run whose trainer died shows as interrupted.
 * - Tables: column widths come from the content (counted in code points); numbers right-aligned.
 * - Sections without rows say how to make them ("no training runs (seqlite train DB)").
 * ref: corpus/db.h ("project summary"), train/options.c (the attention and encoder choices). */
#include "tools/cli.h"

#include "corpus/db.h"
#include "train/options.h"
#include "util/err.h"
#include "util/json.h"
#include "util/sbuf.h"
#include "util/utf8.h"
#include "util/vec.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_COLS 12
#define N_EVALUATIONS 10 /* the newest evaluations shown */

/* ---- aligned tables ---- */

struct table {
    size_t n_cols;
    const char *const *head; /* (n_cols) column titles */
    const char *align;       /* (n_cols) 'l' or 'r' */
    struct sbuf text;        /* the cells, each NUL-terminated, row by row */
    size_t *off;             /* (n_cells) where each cell starts in text */
    size_t n_cells, cap;
    int rc;                  /* the first failure of table_cell (sticky: later cells are dropped) */
};

static void table_init(struct table *t, const char *const *head, const char *align)
{
    memset(t, 0, sizeof *t);
    t->head = head;
    t->align = align;
    t->n_cols = strlen(align);
    sbuf_init(&t->text);
}

static void table_free(struct table *t)
{
    sbuf_free(&t->text);
    free(t->off);
}

/* Appends the next cell (rows fill left to right); a failure is kept in t->rc. */
static void table_cell(struct table *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void table_cell(struct table *t, const char *fmt, ...)
{
    if (t->rc || (t->rc = vec_reserve(&t->off, &t->cap, t->n_cells + 1, sizeof *t->off)))
        return;
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    t->off[t->n_cells++] = t->text.len;
    t->rc = sbuf_append(&t->text, buf, strlen(buf) + 1);
}

/* Display width of s: its code points (ill-formed bytes count one each). */
static size_t text_width(const char *s)
{
    size_t w = 0, n = strlen(s);
    for (size_t i = 0; i < n; w++) {
        size_t k = utf8_seqlen((const unsigned char *)s + i, n - i);
        i += k ? k : 1;
    }
    return w;
}

static void print_cell(const char *s, size_t width, char align, int last)
{
    size_t pad = width - text_width(s);
    if (align == 'r')
        printf("%*s%s", (int)pad, "", s);
    else
        printf("%s%*s", s, last ? 0 : (int)pad, "");
}

/* Prints the title row and the cells, two spaces between columns, indented by two. */
static void table_print(const struct table *t)
{
    size_t width[MAX_COLS];
    for (size_t c = 0; c < t->n_cols; c++)
        width[c] = text_width(t->head[c]);
    for (size_t i = 0; i < t->n_cells; i++) {
        size_t w = text_width(t->text.data + t->off[i]);
        if (w > width[i % t->n_cols])
            width[i % t->n_cols] = w;
    }
    const size_t n_rows = t->n_cells / t->n_cols;
    for (size_t r = 0; r <= n_rows; r++) {
        fputs("  ", stdout);
        for (size_t c = 0; c < t->n_cols; c++) {
            const char *s = r == 0 ? t->head[c] : t->text.data + t->off[(r - 1) * t->n_cols + c];
            if (c)
                fputs("  ", stdout);
            print_cell(s, width[c], t->align[c], c + 1 == t->n_cols);
        }
        fputc('\n', stdout);
    }
}

/* ---- formatting ---- */

/* v with `decimals` decimals, or "-" when not measured. */
static const char *fmt_real(char *buf, size_t cap, double v, int decimals)
{
    if (isnan(v))
        snprintf(buf, cap, "-");
    else
        snprintf(buf, cap, "%.*f", decimals, v);
    return buf;
}

/* A duration: "45s", "8m05s", "2h03m", "3d04h" ("-" when unknown). */
static const char *fmt_duration(char *buf, size_t cap, double seconds)
{
    if (isnan(seconds) || seconds < 0) {
        snprintf(buf, cap, "-");
        return buf;
    }
    long long s = (long long)(seconds + 0.5);
    if (s < 60)
        snprintf(buf, cap, "%llds", s);
    else if (s < 3600)
        snprintf(buf, cap, "%lldm%02llds", s / 60, s % 60);
    else if (s < 86400)
        snprintf(buf, cap, "%lldh%02lldm", s / 3600, s % 3600 / 60);
    else
        snprintf(buf, cap, "%lldd%02lldh", s / 86400, s % 86400 / 3600);
    return buf;
}

/* A stored UTC time "YYYY-MM-DDTHH:MM:SS.SSSZ" as "YYYY-MM-DD HH:MM" (other texts unchanged). */
static const char *fmt_when(char *buf, size_t cap, const char *t)
{
    if (strlen(t) >= 16 && t[10] == 'T')
        snprintf(buf, cap, "%.10s %.5s", t, t + 11);
    else
        snprintf(buf, cap, "%s", t[0] ? t : "-");
    return buf;
}

/* The name of choice value v of training option flag ("?" when out of range); v -1 (absent from an
 * older run's config) means what such a config means. */
static const char *choice_name(const char *flag, int64_t v)
{
    const struct train_opt *d = train_opt_find(flag);
    if (!d || !d->choices)
        return "?";
    if (v < 0)
        v = (int64_t)(d->absent ? *d->absent : d->def);
    for (int64_t i = 0; d->choices[i]; i++)
        if (i == v)
            return d->choices[i];
    return "?";
}

/* "2x256 bi general"; a model without attention: "2x256 uni". */
static void fmt_model(char *buf, size_t cap, const struct db_info_run *r)
{
    const char *att = choice_name("attention", r->attention);
    snprintf(buf, cap, "%lldx%lld %s%s%s", (long long)r->layers, (long long)r->hidden,
             choice_name("encoder", r->encoder), strcmp(att, "none") ? " " : "", strcmp(att, "none") ? att : "");
}

/* path as one shell word: as it is when it needs no quoting, else in single quotes. */
static int shell_word(struct sbuf *out, const char *path)
{
    if (path[0] && strspn(path, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_./-+=:,@%") ==
                       strlen(path))
        return sbuf_append(out, path, strlen(path));
    int rc = sbuf_putc(out, '\'');
    for (const char *p = path; !rc && *p; p++)
        rc = *p == '\'' ? sbuf_append(out, "'\\''", 4) : sbuf_putc(out, *p);
    return rc ? rc : sbuf_putc(out, '\'');
}

/* ---- JSON members ---- */

static void j_int(struct json_writer *w, const char *key, int64_t v)
{
    json_key(w, key);
    json_int(w, v);
}

/* An id or count where 0 means none: null then. */
static void j_id(struct json_writer *w, const char *key, int64_t v)
{
    json_key(w, key);
    if (v)
        json_int(w, v);
    else
        json_null(w);
}

static void j_real(struct json_writer *w, const char *key, double v)
{
    json_key(w, key);
    json_real(w, v);
}

/* A text; "" (a NULL column) is null. */
static void j_str(struct json_writer *w, const char *key, const char *s)
{
    json_key(w, key);
    json_string(w, s[0] ? s : NULL);
}

/* A JSON text stored in a column; "" (NULL) is null. */
static void j_raw(struct json_writer *w, const char *key, const char *json)
{
    json_key(w, key);
    json_raw(w, json[0] ? json : NULL);
}

/* ---- the sections ---- */

struct info {
    const char *path;
    int json;
    struct json_writer *w;
    struct table t;
    size_t n;                  /* rows of the current section */
    size_t n_sections;         /* text mode: sections printed (a blank line between two) */
    int64_t newest_run;        /* 0: none */
    struct sbuf resume;        /* text mode: the resume lines printed under the runs table */
};

static int corpus_row(void *ctx, const struct db_corpus *c)
{
    struct info *in = ctx;
    in->n++;
    if (in->json) {
        struct json_writer *w = in->w;
        json_object_begin(w);
        j_int(w, "id", c->id);
        j_str(w, "name", c->name);
        j_str(w, "split", c->split);
        j_str(w, "src_lang", c->src_lang);
        j_str(w, "tgt_lang", c->tgt_lang);
        j_int(w, "pairs", c->n_pairs);
        j_int(w, "skipped", c->n_skipped);
        j_str(w, "created_at", c->created_at);
        json_object_end(w);
        return w->rc;
    }
    table_cell(&in->t, "%s", c->name);
    table_cell(&in->t, "%s", c->split);
    table_cell(&in->t, "%s-%s", c->src_lang, c->tgt_lang);
    table_cell(&in->t, "%lld", (long long)c->n_pairs);
    table_cell(&in->t, "%lld", (long long)c->n_skipped);
    return in->t.rc;
}

static int vocab_row(void *ctx, const struct db_info_vocab *v)
{
    struct info *in = ctx;
    in->n++;
    if (in->json) {
        struct json_writer *w = in->w;
        json_object_begin(w);
        j_int(w, "id", v->id);
        j_str(w, "kind", v->kind);
        j_str(w, "side", v->side);
        j_int(w, "size", v->size);
        j_str(w, "normalization", v->normalization);
        j_str(w, "created_at", v->created_at);
        json_object_end(w);
        return w->rc;
    }
    char when[40];
    table_cell(&in->t, "%lld", (long long)v->id);
    table_cell(&in->t, "%s", v->kind);
    table_cell(&in->t, "%s", v->side);
    table_cell(&in->t, "%lld", (long long)v->size);
    table_cell(&in->t, "%s", v->normalization);
    table_cell(&in->t, "%s", fmt_when(when, sizeof when, v->created_at));
    return in->t.rc;
}

/* The status users see: a running run without a live trainer is "interrupted". */
static const char *run_status(const struct db_info_run *r)
{
    return strcmp(r->status, "running") == 0 && r->liveness == DB_RUN_INTERRUPTED ? "interrupted" : r->status;
}

/* The command that continues run r, or "" when it is not resumable (done, failed, training now). */
static int resume_command(const struct info *in, const struct db_info_run *r, struct sbuf *out)
{
    sbuf_reset(out);
    const char *s = run_status(r);
    if (strcmp(s, "stopped") != 0 && strcmp(s, "interrupted") != 0)
        return sbuf_append(out, "", 0);
    int rc = sbuf_printf(out, "seqlite train ");
    if (!rc)
        rc = shell_word(out, in->path);
    if (!rc)
        rc = sbuf_printf(out, " --resume");
    if (!rc && r->id != in->newest_run)
        rc = sbuf_printf(out, " --run %lld", (long long)r->id);
    return rc;
}

static int run_row(void *ctx, const struct db_info_run *r)
{
    struct info *in = ctx;
    in->n++;
    char model[96];
    fmt_model(model, sizeof model, r);
    struct sbuf resume;
    sbuf_init(&resume);
    int rc = resume_command(in, r, &resume);
    if (rc)
        goto done;
    if (in->json) {
        struct json_writer *w = in->w;
        json_object_begin(w);
        j_int(w, "id", r->id);
        j_str(w, "name", r->name);
        j_str(w, "status", run_status(r));
        j_str(w, "owner", r->owner);
        j_str(w, "model", model);
        j_int(w, "layers", r->layers);
        j_int(w, "hidden", r->hidden);
        j_str(w, "encoder", choice_name("encoder", r->encoder));
        j_str(w, "attention", choice_name("attention", r->attention));
        j_int(w, "steps_done", r->steps_done);
        j_id(w, "steps", r->steps);
        j_str(w, "started_at", r->started_at);
        j_str(w, "ended_at", r->ended_at);
        j_real(w, "seconds", r->seconds);
        j_id(w, "best_checkpoint", r->best_checkpoint_id);
        j_real(w, "best_valid_ppl", r->best_valid_ppl);
        j_real(w, "best_valid_bleu", r->best_valid_bleu);
        j_str(w, "resume", resume.len ? resume.data : "");
        json_object_end(w);
        rc = w->rc;
        goto done;
    }
    char steps[48], time[32], ppl[32], bleu[32];
    if (r->steps > 0)
        snprintf(steps, sizeof steps, "%lld/%lld", (long long)r->steps_done, (long long)r->steps);
    else
        snprintf(steps, sizeof steps, "%lld", (long long)r->steps_done);
    table_cell(&in->t, "%lld", (long long)r->id);
    table_cell(&in->t, "%s", r->name);
    table_cell(&in->t, "%s", run_status(r));
    table_cell(&in->t, "%s", model);
    table_cell(&in->t, "%s", steps);
    table_cell(&in->t, "%s", fmt_duration(time, sizeof time, r->seconds));
    table_cell(&in->t, "%s", fmt_real(ppl, sizeof ppl, r->best_valid_ppl, 2));
    table_cell(&in->t, "%s", fmt_real(bleu, sizeof bleu, r->best_valid_bleu, 2));
    rc = in->t.rc;
    if (!rc && resume.len)
        rc = sbuf_printf(&in->resume, "  resume run %lld: %s\n", (long long)r->id, resume.data);
done:
    sbuf_free(&resume);
    return rc;
}

/* Megabytes (10^6 bytes), two decimals below 1 MB. */
static const char *fmt_mb(char *buf, size_t cap, int64_t bytes)
{
    const double mb = (double)bytes / 1e6;
    snprintf(buf, cap, mb < 1 ? "%.2f" : "%.1f", mb);
    return buf;
}

static int checkpoint_row(void *ctx, const struct db_info_checkpoint *c)
{
    struct info *in = ctx;
    in->n++;
    if (in->json) {
        struct json_writer *w = in->w;
        json_object_begin(w);
        j_int(w, "id", c->id);
        j_int(w, "run_id", c->run_id);
        j_int(w, "step", c->step);
        j_real(w, "valid_ppl", c->valid_ppl);
        j_real(w, "valid_bleu", c->valid_bleu);
        json_key(w, "best");
        json_bool(w, c->is_best);
        j_raw(w, "averaged_from", c->averaged_from);
        j_int(w, "tensors", c->n_tensors);
        j_int(w, "bytes", c->bytes);
        j_int(w, "adam_bytes", c->adam_bytes);
        j_str(w, "created_at", c->created_at);
        json_object_end(w);
        return w->rc;
    }
    char ppl[32], bleu[32], flags[32], mb[32], amb[32];
    snprintf(flags, sizeof flags, "%s%s%s", c->is_best ? "best" : "", c->is_best && c->averaged_from[0] ? " " : "",
             c->averaged_from[0] ? "averaged" : "");
    table_cell(&in->t, "%lld", (long long)c->id);
    table_cell(&in->t, "%lld", (long long)c->step);
    table_cell(&in->t, "%s", fmt_real(ppl, sizeof ppl, c->valid_ppl, 2));
    table_cell(&in->t, "%s", fmt_real(bleu, sizeof bleu, c->valid_bleu, 2));
    table_cell(&in->t, "%s", flags);
    table_cell(&in->t, "%s", fmt_mb(mb, sizeof mb, c->bytes));
    table_cell(&in->t, "%s", fmt_mb(amb, sizeof amb, c->adam_bytes));
    return in->t.rc;
}

static int evaluation_row(void *ctx, const struct db_info_evaluation *e)
{
    struct info *in = ctx;
    in->n++;
    if (in->json) {
        struct json_writer *w = in->w;
        json_object_begin(w);
        j_int(w, "id", e->id);
        j_id(w, "run_id", e->run_id);
        j_id(w, "checkpoint_id", e->checkpoint_id);
        j_int(w, "step", e->step);
        j_str(w, "split", e->split);
        j_id(w, "beam", e->beam);
        j_real(w, "length_penalty", e->length_penalty);
        j_id(w, "limit", e->max_sentences);
        j_raw(w, "members", e->members);
        j_str(w, "precision", e->precision);
        j_id(w, "sentences", e->n_sentences);
        j_real(w, "seconds", e->seconds);
        j_real(w, "bleu", e->bleu);
        j_real(w, "chrf", e->chrf);
        j_real(w, "sentences_per_s", e->sentences_per_s);
        j_str(w, "created_at", e->created_at);
        json_object_end(w);
        return w->rc;
    }
    char ck[32], beam[32], lp[32], limit[32], bleu[32], chrf[32], speed[32], when[40];
    snprintf(ck, sizeof ck, e->checkpoint_id ? "%lld" : "-", (long long)e->checkpoint_id);
    snprintf(beam, sizeof beam, e->beam ? "%lld" : "-", (long long)e->beam);
    /* an evaluation stored before schema 3 recorded no settings (no beam): its limit is unknown too */
    snprintf(limit, sizeof limit, e->max_sentences ? "%lld" : e->beam ? "all" : "-", (long long)e->max_sentences);
    table_cell(&in->t, "%lld", (long long)e->id);
    table_cell(&in->t, "%s", ck);
    table_cell(&in->t, "%s", e->split);
    table_cell(&in->t, "%s", beam);
    table_cell(&in->t, "%s", fmt_real(lp, sizeof lp, e->length_penalty, 2));
    table_cell(&in->t, "%s", limit);
    table_cell(&in->t, "%s", e->members[0] ? e->members : "-");
    table_cell(&in->t, "%s", e->precision[0] ? e->precision : "-"); /* "-": stored before schema 4 */
    table_cell(&in->t, "%s", fmt_real(bleu, sizeof bleu, e->bleu, 2));
    table_cell(&in->t, "%s", fmt_real(chrf, sizeof chrf, e->chrf, 2));
    table_cell(&in->t, "%s", fmt_real(speed, sizeof speed, e->sentences_per_s, 1));
    table_cell(&in->t, "%s", fmt_when(when, sizeof when, e->created_at));
    return in->t.rc;
}

/* One section: text mode: its title, then its table or, without rows, what to do; --json: "key":[...]. */
struct section {
    const char *key;           /* JSON member, and the heading of its text */
    const char *const *head;   /* column titles */
    const char *align;         /* 'l' or 'r' per column */
};

static void section_begin(struct info *in, const struct section *s)
{
    in->n = 0;
    if (in->json) {
        json_key(in->w, s->key);
        json_array_begin(in->w);
    } else {
        table_init(&in->t, s->head, s->align);
    }
}

/* Ends a section begun by section_begin, whose rows were written with status rc: text mode prints its
 * title (NULL: its key) and table, or without rows the title and empty (a printf format whose one
 * argument is the database path). Returns the first failure. */
static int section_end(struct info *in, const struct section *s, int rc, const char *title, const char *empty)
{
    if (in->json) {
        json_array_end(in->w);
        return rc ? rc : in->w->rc;
    }
    if (!rc) {
        if (in->n_sections++)
            fputc('\n', stdout);
        if (in->n) {
            printf("%s\n", title ? title : s->key);
            table_print(&in->t);
        } else {
            printf("%s: ", title ? title : s->key);
            printf(empty, in->path);
            fputc('\n', stdout);
        }
    }
    table_free(&in->t);
    return rc;
}

static const char *const corpus_head[] = {"name", "split", "languages", "pairs", "skipped"};
static const char *const vocab_head[] = {"id", "kind", "side", "size", "normalization", "created"};
static const char *const run_head[] = {"id", "name", "status", "model", "steps", "time", "best ppl", "BLEU"};
static const char *const ckpt_head[] = {"id", "step", "valid ppl", "BLEU", "flags", "MB", "Adam MB"};
static const char *const eval_head[] = {"id",       "ckpt",      "split", "beam", "lp",     "limit",
                                        "ensemble", "precision", "BLEU",  "chrF", "sent/s", "when"};
/* one 'l' or 'r' per title above */
static const char corpus_align[] = "lllrr", vocab_align[] = "rllrll", run_align[] = "rlllrrrr",
                  ckpt_align[] = "rrrrlrr", eval_align[] = "rrlrrrllrrrl";
#define COLS_MATCH(head, align) (sizeof head / sizeof head[0] == sizeof align - 1 && sizeof align - 1 <= MAX_COLS)
_Static_assert(COLS_MATCH(corpus_head, corpus_align) && COLS_MATCH(vocab_head, vocab_align) &&
                   COLS_MATCH(run_head, run_align) && COLS_MATCH(ckpt_head, ckpt_align) &&
                   COLS_MATCH(eval_head, eval_align),
               "a section's titles and alignments differ in number, or exceed MAX_COLS");
static const struct section sec_corpora = {"corpora", corpus_head, corpus_align};
static const struct section sec_vocabs = {"vocabularies", vocab_head, vocab_align};
static const struct section sec_runs = {"runs", run_head, run_align};
static const struct section sec_ckpts = {"checkpoints", ckpt_head, ckpt_align};
static const struct section sec_evals = {"evaluations", eval_head, eval_align};

/* Writes every section; run_key: --run (NULL: the newest run). */
static int info_write(struct db *db, struct info *in, const char *run_key)
{
    int64_t run_id = 0;
    int rc = 0;
    if (run_key && (rc = db_info_run_find(db, run_key, &run_id)))
        return rc;
    rc = db_run_latest(db, &in->newest_run);
    if (rc == SL_ENOTFOUND) {
        in->newest_run = 0;
        sl_err_clear();
        rc = 0;
    }
    if (rc)
        return rc;
    const int64_t shown = run_id ? run_id : in->newest_run;

    section_begin(in, &sec_corpora);
    rc = section_end(in, &sec_corpora, db_corpus_foreach(db, corpus_row, in), NULL, "none (seqlite import %s SRC TGT)");
    if (rc)
        return rc;
    section_begin(in, &sec_vocabs);
    rc = section_end(in, &sec_vocabs, db_info_vocabs(db, vocab_row, in), NULL, "none (seqlite vocab %s)");
    if (rc)
        return rc;
    section_begin(in, &sec_runs);
    rc = section_end(in, &sec_runs, db_info_runs(db, run_row, in), NULL, "none (seqlite train %s)");
    if (!rc && !in->json && in->resume.len)
        fputs(in->resume.data, stdout);
    if (rc)
        return rc;

    if (!shown && !in->json)
        return 0; /* no run: no checkpoints, no evaluations (the runs line said what to do) */
    char title[128];
    snprintf(title, sizeof title, "checkpoints of run %lld", (long long)shown);
    section_begin(in, &sec_ckpts);
    rc = section_end(in, &sec_ckpts, shown ? db_info_checkpoints(db, shown, checkpoint_row, in) : 0, title,
                     "none yet");
    if (rc)
        return rc;
    snprintf(title, sizeof title, run_id ? "evaluations of run %lld" : "evaluations", (long long)run_id);
    section_begin(in, &sec_evals);
    return section_end(in, &sec_evals, db_info_evaluations(db, run_id, N_EVALUATIONS, evaluation_row, in), title,
                       "none (seqlite eval %s)");
}

static int run(int argc, char **argv)
{
    const char *run_key = NULL;
    int json = 0;
    const struct cli_opt opts[] = {
        {"run", CLI_STR, &run_key, 0, 0},
        {"json", CLI_BOOL, &json, 0, 0},
        {NULL, 0, NULL, 0, 0},
    };
    char *pos[1];
    int npos = 0;
    int rc = cli_parse(&cmd_info, argc, argv, opts, pos, 1, &npos);
    if (rc == CLI_HELP_SHOWN)
        return 0;
    if (rc)
        return rc;
    if (npos != 1)
        return cli_usage_error(&cmd_info, "expected DB");

    struct db *db = NULL;
    rc = db_open(pos[0], 0, &db);
    if (rc)
        return cli_fail_status(&cmd_info, rc);
    struct sbuf out;
    sbuf_init(&out);
    struct json_writer w;
    json_writer_init(&w, &out);
    struct info in = {.path = pos[0], .json = json, .w = &w};
    sbuf_init(&in.resume);
    if (json)
        json_object_begin(&w);
    if (!(rc = db_info_begin(db))) {
        rc = info_write(db, &in, run_key);
        int end = db_info_end(db);
        rc = rc ? rc : end;
    }
    if (json) {
        json_object_end(&w);
        if (!rc)
            rc = json_writer_finish(&w);
        if (!rc && (fwrite(out.data, 1, out.len, stdout) != out.len || fputc('\n', stdout) == EOF))
            rc = sl_err(SL_EIO, "cannot write to standard output");
    }
    if (!rc && fflush(stdout) != 0)
        rc = sl_err(SL_EIO, "cannot write to standard output");
    int status = rc ? cli_fail_status(&cmd_info, rc) : 0;
    sbuf_free(&in.resume);
    sbuf_free(&out);
    db_close(db);
    return status;
}

const struct cli_cmd cmd_info = {
    .name = "info",
    .summary = "summarise a database: corpora, vocabularies, runs, checkpoints, evaluations",
    .usage =
        "usage: seqlite info DB [options]\n"
        "  Prints what DB holds, one aligned table per section: the corpora (split, languages, pairs,\n"
        "  lines skipped), the vocabularies, the training runs (status, model, steps done / --steps,\n"
        "  wall time, the validation perplexity and BLEU of the best checkpoint, and how to resume a\n"
        "  stopped one), the checkpoints of the newest run (validation scores, best / averaged, size\n"
        "  and how much of it is Adam state) and the newest 10 evaluations with their settings\n"
        "  (beam, length penalty, --limit, ensemble members, precision) and scores. A run whose\n"
        "  status is running but whose trainer died shows as interrupted. Only reads DB (one\n"
        "  snapshot; an older schema is upgraded first, as by every command): it may run while a\n"
        "  training run writes to it.\n"
        "options:\n"
        "  --run R   the checkpoints and evaluations of run R (an id or a name) instead\n"
        "  --json    one JSON object {\"corpora\":[...],\"vocabularies\":[...],\"runs\":[...],\n"
        "            \"checkpoints\":[...],\"evaluations\":[...]} (numbers as numbers, unknown as null)\n"
        "exit status: 0 ok, 1 no such database / not a seqlite database / no such run, 2 usage error\n",
    .run = run,
};
