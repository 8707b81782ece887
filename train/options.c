/* train/options.c: the table of training options and what is derived from it (see options.h):
 * defaults, checks, the stored config JSON and run columns, and resolving options on resume.
 * Column types in struct db_run: INT and CHOICE int64_t, DOUBLE double, BOOL int, STRING char[hi + 1]. */
#include "train/options.h"

#include "corpus/db.h"
#include "nn/dims.h"
#include "train/train.h"
#include "util/err.h"
#include "util/sbuf.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#define OPT(f) offsetof(struct train_opts, f)
#define COL(f) offsetof(struct db_run, f)

_Static_assert(sizeof(int64_t) == sizeof(double), "INT and DOUBLE fields and columns are 8 bytes");
_Static_assert(offsetof(struct db_run, id) == 0, "column offset 0 means no column (id is never an option)");

static const char *const best_by_names[] = {"ppl", "bleu", NULL};
/* in the order of enum attn_score (nn/attention.h): the stored value is the index */
static const char *const attention_names[] = {"none", "dot", "general", "mlp", NULL};
static const char *const encoder_names[] = {"uni", "bi", NULL};
/* in the order of enum train_log_format (train/progress.h) */
static const char *const precision_names[] = {"fp32", "bf16", NULL};
static const char *const log_format_names[] = {"text", "json", NULL};
static const double plain = 0; /* runs stored before attention, bidirectional encoders and label smoothing */
static const double off = 0; /* runs stored before validation BLEU existed did not measure it */

/* In the order of the usage. The config keys are the stored format: never rename one. */
const struct train_opt train_opt_table[] = {
    {.flag = "layers", .arg = "N", .type = TRAIN_OPT_INT, .field = OPT(layers), .def = 2,
     .min = 1, .max = NN_MAX_LAYERS, .lo = 1, .hi = NN_MAX_LAYERS,
     .resume = TRAIN_RESUME_SAME, .key = "layers", .column = COL(layers),
     .help = "LSTM layers (default {default})"},
    {.flag = "emb", .arg = "N", .type = TRAIN_OPT_INT, .field = OPT(emb), .def = 256,
     .min = 1, .max = 8192, .lo = 1, .hi = 65536,
     .resume = TRAIN_RESUME_SAME, .key = "emb", .column = COL(emb),
     .help = "embedding width (default {default})"},
    {.flag = "hidden", .arg = "N", .type = TRAIN_OPT_INT, .field = OPT(hidden), .def = 256,
     .min = 1, .max = 8192, .lo = 1, .hi = 65536,
     .resume = TRAIN_RESUME_SAME, .key = "hidden", .column = COL(hidden),
     .help = "LSTM width (default {default})"},
    {.flag = "dropout", .arg = "P", .type = TRAIN_OPT_DOUBLE, .field = OPT(dropout), .def = 0.2,
     .min = 0, .max = 0.95, .lo = 0, .hi = 1, .open = TRAIN_OPEN_HI,
     .resume = TRAIN_RESUME_SAME, .key = "dropout", .column = COL(dropout),
     .help = "dropout rate (default {default})"},
    /* with a token budget, a batch's sentence count is bounded by the budget (a sentence has a token) */
    {.flag = "batch", .arg = "N", .type = TRAIN_OPT_INT, .field = OPT(batch), .def = 64, .def_from = "batch-tokens",
     .min = 1, .max = 100000, .lo = 1, .hi = INFINITY,
     .resume = TRAIN_RESUME_SAME, .key = "batch", .column = COL(batch),
     .help = "sentences per batch (default {default})"},
    {.flag = "batch-tokens", .arg = "N", .type = TRAIN_OPT_INT, .field = OPT(batch_tokens), .def = 0,
     .min = 1, .max = 10000000, .lo = 0, .hi = INFINITY,
     .resume = TRAIN_RESUME_SAME, .key = "batch_tokens", .column = COL(batch_tokens),
     .help = "padded tokens per batch instead (rows x longest side)"},
    {.flag = "epochs", .arg = "N", .type = TRAIN_OPT_INT, .field = OPT(epochs), .def = 10,
     .min = 1, .max = 100000, .lo = 1, .hi = INFINITY,
     .resume = TRAIN_RESUME_LIMIT, .key = "epochs", .column = COL(epochs),
     .help = "passes over the data (default {default})"},
    {.flag = "steps", .arg = "N", .type = TRAIN_OPT_INT, .field = OPT(steps), .def = 0,
     .min = 1, .max = 1e12, .lo = 0, .hi = INFINITY,
     .resume = TRAIN_RESUME_LIMIT, .key = "steps", .column = COL(steps),
     .help = "stop after N updates instead"},
    {.flag = "lr", .arg = "X", .type = TRAIN_OPT_DOUBLE, .field = OPT(lr), .def = 0.003,
     .min = 1e-7, .max = 1.0, .lo = 0, .hi = 10, .open = TRAIN_OPEN_LO | TRAIN_OPEN_HI,
     .resume = TRAIN_RESUME_SAME, .key = "lr", .column = COL(lr),
     .help = "Adam learning rate (default {default})"},
    {.flag = "lr-decay", .arg = "F", .type = TRAIN_OPT_DOUBLE, .field = OPT(lr_decay), .def = 1.0,
     .min = 1e-6, .max = 1.0, .lo = 0, .hi = 1, .open = TRAIN_OPEN_LO,
     .resume = TRAIN_RESUME_SAME, .key = "lr_decay",
     .help = "multiply the lr by F every --lr-decay-every steps after step\n"
             "--lr-decay-start (default {default}: constant lr; Sutskever et al.: 0.5)"},
    {.flag = "lr-decay-start", .arg = "N", .type = TRAIN_OPT_INT, .field = OPT(lr_decay_start), .def = 0,
     .min = 0, .max = 1e12, .lo = 0, .hi = INFINITY,
     .resume = TRAIN_RESUME_SAME, .key = "lr_decay_start",
     .help = "(default {default})"},
    {.flag = "lr-decay-every", .arg = "N", .type = TRAIN_OPT_INT, .field = OPT(lr_decay_every), .def = 0,
     .min = 1, .max = 1e12, .lo = 0, .hi = INFINITY,
     .resume = TRAIN_RESUME_SAME, .key = "lr_decay_every",
     .help = "(default: one epoch of batches)"},
    {.flag = "clip", .arg = "X", .type = TRAIN_OPT_DOUBLE, .field = OPT(clip), .def = 5.0,
     .min = 1e-3, .max = 1e6, .lo = 0, .hi = INFINITY, .open = TRAIN_OPEN_LO,
     .resume = TRAIN_RESUME_SAME, .key = "clip", .column = COL(clip),
     .help = "gradient norm clip (default {default})"},
    {.flag = "seed", .arg = "N", .type = TRAIN_OPT_INT, .field = OPT(seed), .def = 1,
     .min = 0, .max = 9e15, .lo = -INFINITY, .hi = INFINITY,
     .resume = TRAIN_RESUME_SAME, .key = "seed", .column = COL(seed),
     .help = "initialisation, batching and dropout seed (default {default})"},
    /* not in the config: the run's threads column holds the threads it used (db_run_update), and a resume
     * without --threads uses that many again */
    {.flag = "threads", .arg = "N", .type = TRAIN_OPT_INT, .field = OPT(threads), .def = 0,
     .min = 1, .max = 1024, .lo = 0, .hi = INFINITY,
     .resume = TRAIN_RESUME_KEEP, .column = COL(threads),
     .help = "OpenMP threads (default: all cores); results do not depend on it"},
    {.flag = "shards", .arg = "N", .type = TRAIN_OPT_INT, .field = OPT(shards), .def = 4,
     .min = 1, .max = 256, .lo = 1, .hi = 256,
     .resume = TRAIN_RESUME_SAME, .key = "shards",
     .help = "pieces each batch is cut into (default {default}); results depend on it"},
    {.flag = "reverse-source", .type = TRAIN_OPT_BOOL, .field = OPT(reverse_source), .def = 1,
     .lo = 0, .hi = 1,
     .resume = TRAIN_RESUME_SAME, .key = "reverse_source", .column = COL(reverse_source),
     .help = "read sources backwards (default); --no-reverse-source: forwards"},
    /* defaults chosen by test-split BLEU on the main job's corpus (README, "Translation quality") */
    {.flag = "attention", .arg = "A", .type = TRAIN_OPT_CHOICE, .field = OPT(attention), .def = 2,
     .choices = attention_names, .resume = TRAIN_RESUME_SAME, .key = "attention", .absent = &plain,
     .help = "Luong global attention with input feeding: general (default), dot, mlp\n"
             "(Bahdanau's additive score) or none (the encoder's final states only)"},
    {.flag = "encoder", .arg = "E", .type = TRAIN_OPT_CHOICE, .field = OPT(encoder), .def = 1,
     .choices = encoder_names, .resume = TRAIN_RESUME_SAME, .key = "encoder", .absent = &plain,
     .help = "bi (default): each layer a forward and a backward LSTM of hidden/2, their final\n"
             "states side by side seed the decoder; uni: one forward LSTM per layer"},
    {.flag = "label-smoothing", .arg = "E", .type = TRAIN_OPT_DOUBLE, .field = OPT(label_smoothing), .def = 0,
     .min = 0, .max = 0.5, .lo = 0, .hi = 1, .open = TRAIN_OPEN_HI,
     .resume = TRAIN_RESUME_SAME, .key = "label_smoothing", .absent = &plain,
     .help = "training loss smoothing toward the uniform distribution (default {default});\n"
             "perplexity is reported unsmoothed"},
    /* the master weights, gradients and Adam stay f32 in both: a run may change it on resume */
    {.flag = "precision", .arg = "P", .type = TRAIN_OPT_CHOICE, .field = OPT(precision), .def = 0,
     .choices = precision_names, .resume = TRAIN_RESUME_KEEP, .key = "precision", .absent = &plain,
     .help = "fp32 (default) or bf16: matrix products in bf16 with f32 sums (oneDNN;\n"
             "AVX512-BF16 or AMX, else fp32 with a note); weights and Adam stay f32"},
    {.flag = "max-len", .arg = "N", .type = TRAIN_OPT_INT, .field = OPT(max_len), .def = 64,
     .min = 1, .max = 4096, .lo = 1, .hi = INFINITY,
     .resume = TRAIN_RESUME_SAME, .key = "max_len", .column = COL(max_len),
     .help = "leave out pairs with a side longer than N tokens (default {default})"},
    {.flag = "valid-every", .arg = "N", .type = TRAIN_OPT_INT, .field = OPT(valid_every), .def = 500,
     .min = 0, .max = 1e12, .lo = 0, .hi = INFINITY,
     .resume = TRAIN_RESUME_KEEP, .key = "valid_every", .column = COL(valid_every),
     .help = "validation every N steps (default {default}; 0: at the end)"},
    {.flag = "valid-max", .arg = "N", .type = TRAIN_OPT_INT, .field = OPT(valid_max), .def = 0,
     .min = 0, .max = 1e12, .lo = 0, .hi = INFINITY,
     .resume = TRAIN_RESUME_SAME, .key = "valid_max",
     .help = "perplexity on the first N valid pairs only (default all)"},
    {.flag = "valid-bleu", .arg = "N", .type = TRAIN_OPT_INT, .field = OPT(valid_bleu), .def = 200,
     .min = 0, .max = 1e9, .lo = 0, .hi = INFINITY,
     .resume = TRAIN_RESUME_SAME, .key = "valid_bleu", .absent = &off,
     .help = "BLEU and chrF on the first N valid pairs, translated (default {default};\n0: none)"},
    {.flag = "valid-beam", .arg = "K", .type = TRAIN_OPT_INT, .field = OPT(valid_beam), .def = 1,
     .min = 1, .max = 100, .lo = 1, .hi = 100,
     .resume = TRAIN_RESUME_SAME, .key = "valid_beam",
     .help = "beam for those translations (default {default}: greedy)"},
    {.flag = "best-by", .arg = "M", .type = TRAIN_OPT_CHOICE, .field = OPT(best_by_bleu), .def = 0,
     .choices = best_by_names,
     .resume = TRAIN_RESUME_SAME, .key = "best_by_bleu",
     .help = "ppl (default: lowest validation perplexity) or bleu (highest BLEU):\n"
             "the checkpoint kept as best, which translate and eval use"},
    /* the stall state is replayed from the run's validations on resume (train/stall.h): both stay the run's */
    {.flag = "patience", .arg = "N", .type = TRAIN_OPT_INT, .field = OPT(patience), .def = 0,
     .min = 0, .max = 1e9, .lo = 0, .hi = INFINITY,
     .resume = TRAIN_RESUME_SAME, .key = "patience",
     .help = "stop after N validations in a row that do not improve the --best-by\n"
             "metric (default {default}: never)"},
    {.flag = "lr-decay-on-stall", .arg = "F", .type = TRAIN_OPT_DOUBLE, .field = OPT(lr_decay_on_stall), .def = 1.0,
     .min = 1e-6, .max = 1.0, .lo = 0, .hi = 1, .open = TRAIN_OPEN_LO,
     .resume = TRAIN_RESUME_SAME, .key = "lr_decay_on_stall",
     .help = "multiply the lr by F after each validation that does not improve the\n"
             "--best-by metric, on top of --lr-decay (default {default}: never)"},
    {.flag = "save-every", .arg = "N", .type = TRAIN_OPT_INT, .field = OPT(save_every), .def = 500,
     .min = 0, .max = 1e12, .lo = 0, .hi = INFINITY,
     .resume = TRAIN_RESUME_KEEP, .key = "save_every", .column = COL(save_every),
     .help = "checkpoint every N steps (default {default}; 0: at the end)"},
    {.flag = "log-every", .arg = "N", .type = TRAIN_OPT_INT, .field = OPT(log_every), .def = 50,
     .min = 1, .max = 1e12, .lo = 1, .hi = INFINITY,
     .resume = TRAIN_RESUME_KEEP, .key = "log_every",
     .help = "progress line and train_log row every N steps (default {default})"},
    /* how this invocation reports progress: not stored (like --threads), the caller's callback reads it */
    {.flag = "log-format", .arg = "F", .type = TRAIN_OPT_CHOICE, .field = OPT(log_format), .def = 0,
     .choices = log_format_names, .resume = TRAIN_RESUME_FREE,
     .help = "progress on stderr as text (default: one line, cut to the terminal's width)\n"
             "or json (one object per line: log steps, validations, saves, notes)"},
    {.flag = "keep", .arg = "N", .type = TRAIN_OPT_INT, .field = OPT(keep), .def = 3,
     .min = 1, .max = 1000, .lo = 1, .hi = INFINITY,
     .resume = TRAIN_RESUME_KEEP, .key = "keep", .column = COL(keep),
     .help = "newest checkpoints kept, besides the best (default {default})"},
    {.flag = "time-limit", .arg = "M", .type = TRAIN_OPT_DOUBLE, .field = OPT(time_limit_min), .def = 0,
     .min = 0.001, .max = 1e7, .lo = -INFINITY, .hi = INFINITY,
     .resume = TRAIN_RESUME_FREE,
     .help = "stop cleanly with a checkpoint after M minutes"},
    /* the library takes "" for "run-<id>" */
    {.flag = "name", .arg = "NAME", .type = TRAIN_OPT_STRING, .field = OPT(name),
     .min = 1, .max = 63, .lo = 0, .hi = 63,
     .resume = TRAIN_RESUME_SAME, .column = COL(name),
     .help = "run name (default run-ID)"},
};
const size_t train_opt_count = sizeof train_opt_table / sizeof train_opt_table[0];

_Static_assert(sizeof train_opt_table / sizeof train_opt_table[0] <= TRAIN_OPT_MAX, "raise TRAIN_OPT_MAX");
_Static_assert(sizeof(((struct db_run *)0)->name) == 63 + 1, "the name row's hi is the column's size - 1");

/* ---- one value ---- */

static int64_t *opt_i(const struct train_opt *d, struct train_opts *o) { return (int64_t *)((char *)o + d->field); }
static double *opt_d(const struct train_opt *d, struct train_opts *o) { return (double *)((char *)o + d->field); }
static const char **opt_s(const struct train_opt *d, struct train_opts *o)
{
    return (const char **)((char *)o + d->field);
}
static int64_t get_i(const struct train_opt *d, const struct train_opts *o)
{
    return *(const int64_t *)((const char *)o + d->field);
}
static double get_d(const struct train_opt *d, const struct train_opts *o)
{
    return *(const double *)((const char *)o + d->field);
}
static const char *get_s(const struct train_opt *d, const struct train_opts *o)
{
    return *(const char *const *)((const char *)o + d->field);
}

static size_t n_choices(const struct train_opt *d)
{
    size_t n = 0;
    while (d->choices && d->choices[n])
        n++;
    return n;
}

const struct train_opt *train_opt_find(const char *flag)
{
    for (size_t i = 0; i < train_opt_count; i++)
        if (strcmp(train_opt_table[i].flag, flag) == 0)
            return &train_opt_table[i];
    return NULL;
}

int train_opt_is_set(const struct train_opt *d, const struct train_opts *o)
{
    switch (d->type) {
    case TRAIN_OPT_DOUBLE:
        return !isnan(get_d(d, o));
    case TRAIN_OPT_STRING:
        return get_s(d, o) != NULL;
    default:
        return get_i(d, o) != TRAIN_UNSET;
    }
}

/* The value of d in o as a user writes it: "--hidden 64", "--no-reverse-source" (given) or "hidden 64",
 * "--reverse-source" (stored). */
static void format_value(const struct train_opt *d, const struct train_opts *o, int given, char *buf, size_t cap)
{
    const char *dash = given ? "--" : "";
    switch (d->type) {
    case TRAIN_OPT_INT:
        snprintf(buf, cap, "%s%s %lld", dash, d->flag, (long long)get_i(d, o));
        break;
    case TRAIN_OPT_DOUBLE:
        snprintf(buf, cap, "%s%s %g", dash, d->flag, get_d(d, o));
        break;
    case TRAIN_OPT_BOOL:
        snprintf(buf, cap, "--%s%s", get_i(d, o) ? "" : "no-", d->flag);
        break;
    case TRAIN_OPT_CHOICE: {
        int64_t v = get_i(d, o);
        snprintf(buf, cap, "%s%s %s", dash, d->flag, v >= 0 && (size_t)v < n_choices(d) ? d->choices[v] : "?");
        break;
    }
    case TRAIN_OPT_STRING:
        snprintf(buf, cap, "%s%s %s", dash, d->flag, get_s(d, o));
        break;
    }
}

void train_opt_format_default(const struct train_opt *d, char *buf, size_t cap)
{
    if (d->type == TRAIN_OPT_CHOICE && d->def >= 0 && (size_t)d->def < n_choices(d))
        snprintf(buf, cap, "%s", d->choices[(size_t)d->def]);
    else if (d->type == TRAIN_OPT_DOUBLE)
        snprintf(buf, cap, "%g", d->def);
    else
        snprintf(buf, cap, "%.0f", d->def);
}

/* ---- the whole set ---- */

void train_opts_init(struct train_opts *o)
{
    memset(o, 0, sizeof *o);
    for (size_t i = 0; i < train_opt_count; i++) {
        const struct train_opt *d = &train_opt_table[i];
        if (d->type == TRAIN_OPT_DOUBLE)
            *opt_d(d, o) = NAN;
        else if (d->type == TRAIN_OPT_STRING)
            *opt_s(d, o) = NULL;
        else
            *opt_i(d, o) = TRAIN_UNSET;
    }
}

/* The default of d given the other options of o: def_from's value (given or its default) when nonzero. */
static double default_of(const struct train_opt *d, const struct train_opts *o)
{
    const struct train_opt *from = d->def_from ? train_opt_find(d->def_from) : NULL;
    if (from) {
        double v = train_opt_is_set(from, o) ? (double)get_i(from, o) : from->def;
        if (v != 0)
            return v;
    }
    return d->def;
}

void train_opts_fill_defaults(struct train_opts *o)
{
    for (size_t i = 0; i < train_opt_count; i++) {
        const struct train_opt *d = &train_opt_table[i];
        if (train_opt_is_set(d, o) || d->type == TRAIN_OPT_STRING)
            continue;
        if (d->type == TRAIN_OPT_DOUBLE)
            *opt_d(d, o) = default_of(d, o);
        else
            *opt_i(d, o) = (int64_t)default_of(d, o);
    }
}

/* 1 when x lies in d's library range. */
static int in_range(const struct train_opt *d, double x)
{
    return (d->open & TRAIN_OPEN_LO ? x > d->lo : x >= d->lo) && (d->open & TRAIN_OPEN_HI ? x < d->hi : x <= d->hi);
}

/* "--lr: 50 is not in (0, 10)", "--clip: -1 is not > 0". */
static int range_error(const struct train_opt *d, const char *value)
{
    char want[64];
    if (isinf(d->hi))
        snprintf(want, sizeof want, "%s %g", d->open & TRAIN_OPEN_LO ? ">" : ">=", d->lo);
    else
        snprintf(want, sizeof want, "in %c%g, %g%c", d->open & TRAIN_OPEN_LO ? '(' : '[', d->lo, d->hi,
                 d->open & TRAIN_OPEN_HI ? ')' : ']');
    return sl_err(SL_EINVAL, "--%s: %s is not %s", d->flag, value, want);
}

/* One given option against its row. */
static int check_one(const struct train_opt *d, const struct train_opts *o)
{
    char v[64];
    switch (d->type) {
    case TRAIN_OPT_INT:
    case TRAIN_OPT_BOOL:
        if (in_range(d, (double)get_i(d, o)))
            return 0;
        snprintf(v, sizeof v, "%lld", (long long)get_i(d, o));
        return range_error(d, v);
    case TRAIN_OPT_DOUBLE:
        if (in_range(d, get_d(d, o)))
            return 0;
        snprintf(v, sizeof v, "%g", get_d(d, o));
        return range_error(d, v);
    case TRAIN_OPT_CHOICE:
        if (get_i(d, o) >= 0 && (size_t)get_i(d, o) < n_choices(d))
            return 0;
        return sl_err(SL_EINVAL, "--%s: %lld is not a choice (0 to %zu)", d->flag, (long long)get_i(d, o),
                      n_choices(d) - 1);
    case TRAIN_OPT_STRING:
        if (in_range(d, (double)strlen(get_s(d, o))))
            return 0;
        return sl_err(SL_EINVAL, "--%s must have %g to %g bytes", d->flag, d->lo, d->hi);
    }
    return sl_err(SL_EINVAL, "--%s: unknown option type", d->flag);
}

int train_opts_check(const struct train_opts *o)
{
    for (size_t i = 0; i < train_opt_count; i++) {
        const struct train_opt *d = &train_opt_table[i];
        int rc = train_opt_is_set(d, o) ? check_one(d, o) : 0;
        if (rc)
            return rc;
    }
    if (o->best_by_bleu == 1 && o->valid_bleu == 0)
        return sl_err(SL_EINVAL, "keeping the best checkpoint by BLEU needs --valid-bleu N > 0");
    if ((o->patience > 0 || (!isnan(o->lr_decay_on_stall) && o->lr_decay_on_stall < 1)) && o->valid_every == 0)
        return sl_err(SL_EINVAL, "--patience and --lr-decay-on-stall act on the validations every --valid-every "
                      "steps: give --valid-every N > 0");
    if (o->encoder == 1 && o->hidden != TRAIN_UNSET && o->hidden % 2)
        return sl_err(SL_EINVAL, "--encoder bi needs an even --hidden (each direction has hidden/2), not %lld",
                      (long long)o->hidden);
    return 0;
}

/* ---- storing ---- */

int train_opts_config_json(const struct train_opts *o, const char *extra, struct sbuf *out)
{
    int rc = sbuf_putc(out, '{');
    const char *sep = "";
    for (size_t i = 0; i < train_opt_count && !rc; i++) {
        const struct train_opt *d = &train_opt_table[i];
        if (!d->key)
            continue;
        if (d->type == TRAIN_OPT_DOUBLE)
            rc = sbuf_printf(out, "%s\"%s\":%.17g", sep, d->key, get_d(d, o));
        else if (d->type == TRAIN_OPT_STRING)
            rc = sl_err(SL_EINVAL, "--%s: string options are not stored in the config", d->flag);
        else
            rc = sbuf_printf(out, "%s\"%s\":%lld", sep, d->key, (long long)get_i(d, o));
        sep = ",";
    }
    if (!rc && extra && *extra)
        rc = sbuf_printf(out, "%s%s", sep, extra);
    if (!rc)
        rc = sbuf_putc(out, '}');
    return rc;
}

/* Copies d's value between o and its run column col: to_run 1: o -> col, 0: col -> o (a string then
 * points into the run row). */
static void column_copy(const struct train_opt *d, struct train_opts *o, char *col, int to_run)
{
    char *f = (char *)o + d->field;
    if (d->type == TRAIN_OPT_BOOL) {
        if (to_run)
            *(int *)col = (int)*(const int64_t *)f;
        else
            *(int64_t *)f = *(const int *)col;
    } else if (d->type == TRAIN_OPT_STRING) {
        if (to_run)
            snprintf(col, (size_t)d->hi + 1, "%s", *(const char **)f ? *(const char **)f : "");
        else
            *(const char **)f = col;
    } else { /* int64_t or double on both sides */
        memcpy(to_run ? col : f, to_run ? f : col, sizeof(int64_t));
    }
}

void train_opts_run_columns(const struct train_opts *o, struct db_run *r)
{
    struct train_opts copy = *o;
    for (size_t i = 0; i < train_opt_count; i++)
        if (train_opt_table[i].column)
            column_copy(&train_opt_table[i], &copy, (char *)r + train_opt_table[i].column, 1);
}

/* ---- resume ---- */

/* The stored value of d (from the config member f, or the column of run) into the scratch set s.
 * 0: s holds it; 1: the run does not store d. */
static int stored_value(const struct train_opt *d, const struct db_json_field *f, const struct db_run *run,
                        struct train_opts *s)
{
    if (d->key) {
        if (f->type == DB_JSON_ABSENT) {
            double v = d->absent ? *d->absent : d->def;
            if (d->type == TRAIN_OPT_DOUBLE)
                *opt_d(d, s) = v;
            else
                *opt_i(d, s) = (int64_t)v;
        } else if (d->type == TRAIN_OPT_DOUBLE && (f->type == DB_JSON_INTEGER || f->type == DB_JSON_REAL)) {
            *opt_d(d, s) = f->d;
        } else if (d->type != TRAIN_OPT_DOUBLE && f->type == DB_JSON_INTEGER) {
            *opt_i(d, s) = f->i;
        } else {
            return sl_err(SL_ECORRUPT, "run %lld: config member '%s' is not %s", (long long)run->id, d->key,
                          d->type == TRAIN_OPT_DOUBLE ? "a number" : "a whole number");
        }
        return 0;
    }
    if (!d->column)
        return 1;
    column_copy(d, s, (char *)run + d->column, 0); /* reads only: run stays unchanged */
    return 0;
}

static int same_value(const struct train_opt *d, const struct train_opts *a, const struct train_opts *b)
{
    switch (d->type) {
    case TRAIN_OPT_DOUBLE:
        return get_d(d, a) == get_d(d, b);
    case TRAIN_OPT_STRING:
        return strcmp(get_s(d, a), get_s(d, b)) == 0;
    default:
        return get_i(d, a) == get_i(d, b);
    }
}

static void copy_value(const struct train_opt *d, struct train_opts *dst, const struct train_opts *src)
{
    if (d->type == TRAIN_OPT_DOUBLE)
        *opt_d(d, dst) = get_d(d, src);
    else if (d->type != TRAIN_OPT_STRING) /* strings are borrowed from the run row: never copied */
        *opt_i(d, dst) = get_i(d, src);
}

int train_opts_resume(struct db *db, const struct db_run *run, struct train_opts *o)
{
    struct db_json_field f[TRAIN_OPT_MAX];
    size_t nf = 0, at[TRAIN_OPT_MAX] = {0};
    for (size_t i = 0; i < train_opt_count; i++)
        if (train_opt_table[i].key) {
            at[i] = nf;
            f[nf++] = (struct db_json_field){.key = train_opt_table[i].key};
        }
    int rc = db_run_config_get(db, run->id, f, nf);
    if (rc)
        return rc;
    int limits_given = 0;
    for (size_t i = 0; i < train_opt_count; i++)
        if (train_opt_table[i].resume == TRAIN_RESUME_LIMIT && train_opt_is_set(&train_opt_table[i], o))
            limits_given = 1;
    struct train_opts s; /* the run's values */
    train_opts_init(&s);
    for (size_t i = 0; i < train_opt_count; i++) {
        const struct train_opt *d = &train_opt_table[i];
        if ((rc = stored_value(d, d->key ? &f[at[i]] : NULL, run, &s)) < 0)
            return rc;
        if (rc == 1) { /* not stored */
            rc = 0;
            continue;
        }
        int given = train_opt_is_set(d, o);
        switch (d->resume) {
        case TRAIN_RESUME_SAME:
            if (given && !same_value(d, o, &s)) {
                char a[128], b[128];
                format_value(d, o, 1, a, sizeof a);
                format_value(d, &s, 0, b, sizeof b);
                return sl_err(SL_EINVAL, "%s conflicts with run %lld (%s); resume without it", a,
                              (long long)run->id, b);
            }
            copy_value(d, o, &s);
            break;
        case TRAIN_RESUME_KEEP:
            if (!given)
                copy_value(d, o, &s);
            break;
        case TRAIN_RESUME_LIMIT:
            if (!limits_given)
                copy_value(d, o, &s);
            break;
        case TRAIN_RESUME_FREE:
            break;
        }
    }
    return 0;
}

/* ---- inheriting options from another run ---- */

int train_opts_inherit(struct db *db, const struct db_run *run, const char *const *flags, const char *whose,
                       struct train_opts *o)
{
    struct train_opts s; /* every option of run, as a resume would read it */
    train_opts_init(&s);
    int rc = train_opts_resume(db, run, &s);
    if (rc)
        return rc;
    for (const char *const *f = flags; *f; f++) {
        const struct train_opt *d = train_opt_find(*f);
        if (!d)
            return sl_err(SL_EINVAL, "--%s: no such option", *f);
        if (train_opt_is_set(d, o) && !same_value(d, o, &s)) {
            char a[128], b[128];
            format_value(d, o, 1, a, sizeof a);
            format_value(d, &s, 0, b, sizeof b);
            return sl_err(SL_EINVAL, "%s conflicts with %s (%s); leave it out", a, whose, b);
        }
        copy_value(d, o, &s);
    }
    return 0;
}
