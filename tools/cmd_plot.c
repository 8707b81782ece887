/* tools/cmd_plot.c: `seqlite plot DB -o OUT.svg`: the learning curves of some runs of DB drawn with
 * PLplot's SVG driver: training loss, validation perplexity and validation BLEU against the step (or
 * the wall time), one panel each (a panel without data is left out), the runs overlaid in one colour
 * each, one legend beside the top panel. The only file that includes <plplot.h>.
 * - Loss and perplexity use a log y axis with ticks of our own (PLplot's log axis labels decades
 *   only, and a learning curve often spans less than one); BLEU is linear. All panels share one x
 *   range so their steps line up.
 * - Nothing half-written: the SVG is drawn into a temporary file next to OUT, checked to be
 *   complete and renamed onto OUT; any failure removes it and leaves OUT as it was.
 * - PLplot writes its warnings to stderr and calls exit() on a fatal error: its stderr goes to a
 *   scratch file while it draws (shown after our own message when drawing fails), and the exit
 *   handler removes the temporary file and says what failed.
 * ref: PLplot API reference (plinit, plbox, pllegend, plmtex, plsexit), corpus/db.h learning curves. */
#include "tools/cli.h"

#include "corpus/db.h"
#include "util/err.h"

#include <plplot.h>

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_RUNS 64 /* runs in one figure: enough colours and legend rows stay readable below it */

enum panel { PANEL_LOSS, PANEL_PPL, PANEL_BLEU, N_PANELS };

static const struct panel_def {
    const char *label;       /* y axis label */
    const char *split, *metric; /* metric rows to read; NULL: train_log loss */
    int log_y;
} PANELS[N_PANELS] = {
    {"training loss (nats/token)", NULL, NULL, 1},
    {"validation perplexity", "valid", "ppl", 1},
    {"validation BLEU", "valid", "bleu", 0},
};

/* One curve: n points (x, y). */
struct curve {
    double *x, *y; /* (n) */
    size_t n, cap;
};

struct plot_run {
    int64_t id;
    char name[64];
    int64_t n_loss, n_valid;
    struct curve c[N_PANELS];
};

struct plot {
    struct plot_run run[MAX_RUNS]; /* every run of DB, in id order */
    size_t n_runs;
    int selected[MAX_RUNS];        /* run[i] is drawn */
    int by_time;                   /* x is elapsed_s (else step) */
    int cur_panel;                 /* the curve points_add fills */
    struct plot_run *cur;
};

/* ---- reading ---- */

static int runs_add(void *ctx, const struct db_curve_run *r)
{
    struct plot *p = ctx;
    if (p->n_runs == MAX_RUNS)
        return sl_err(SL_EINVAL, "DB holds more than %d runs: choose some with --run", MAX_RUNS);
    struct plot_run *pr = &p->run[p->n_runs++];
    memset(pr, 0, sizeof *pr);
    pr->id = r->id;
    snprintf(pr->name, sizeof pr->name, "%s", r->name);
    pr->n_loss = r->n_loss;
    pr->n_valid = r->n_valid;
    return 0;
}

static int points_add(void *ctx, const struct db_curve_point *pt)
{
    struct plot *p = ctx;
    struct curve *c = &p->cur->c[p->cur_panel];
    double x = p->by_time ? pt->elapsed_s : (double)pt->step;
    if (!isfinite(x) || !isfinite(pt->value) || (PANELS[p->cur_panel].log_y && pt->value <= 0))
        return 0; /* no wall time for it, or nothing a log axis can show */
    if (c->n == c->cap) {
        size_t cap = c->cap ? 2 * c->cap : 64;
        double *nx = realloc(c->x, cap * sizeof *nx);
        if (nx)
            c->x = nx;
        double *ny = nx ? realloc(c->y, cap * sizeof *ny) : NULL;
        if (!ny)
            return sl_err(SL_ENOMEM, "out of memory reading the curves");
        c->y = ny;
        c->cap = cap;
    }
    c->x[c->n] = x;
    c->y[c->n] = pt->value;
    c->n++;
    return 0;
}

static int run_load(struct db *db, struct plot *p, struct plot_run *r)
{
    p->cur = r;
    int rc = 0;
    for (int k = 0; k < N_PANELS && !rc; k++) {
        p->cur_panel = k;
        rc = PANELS[k].metric ? db_curve_metric_foreach(db, r->id, PANELS[k].split, PANELS[k].metric, points_add, p)
                              : db_curve_loss_foreach(db, r->id, points_add, p);
    }
    return rc;
}

static void plot_free(struct plot *p)
{
    for (size_t i = 0; i < p->n_runs; i++)
        for (int k = 0; k < N_PANELS; k++) {
            free(p->run[i].c[k].x);
            free(p->run[i].c[k].y);
        }
}

/* Marks the runs named by spec (ids or names, comma-separated) among the runs of the database at
 * path; 0, or 1 with the message in msg. */
static int select_runs(struct plot *p, const char *path, const char *spec, char *msg, size_t cap)
{
    const char *s = spec;
    while (*s) {
        size_t len = strcspn(s, ",");
        char key[80];
        snprintf(key, sizeof key, "%.*s", (int)(len < sizeof key - 1 ? len : sizeof key - 1), s);
        if (!key[0]) {
            snprintf(msg, cap, "--run: empty run name in '%s'", spec);
            return 1;
        }
        char *end;
        long long id = strtoll(key, &end, 10);
        size_t hit = p->n_runs;
        for (size_t i = 0; i < p->n_runs && hit == p->n_runs; i++)
            if ((!*end && p->run[i].id == id) || strcmp(p->run[i].name, key) == 0)
                hit = i;
        if (hit == p->n_runs) {
            int n = snprintf(msg, cap, "no run '%s' in %s (runs:", key, path);
            for (size_t i = 0; i < p->n_runs && n > 0 && (size_t)n < cap; i++)
                n += snprintf(msg + n, cap - (size_t)n, " %lld %s%s", (long long)p->run[i].id, p->run[i].name,
                              i + 1 < p->n_runs ? "," : ")");
            return 1;
        }
        p->selected[hit] = 1;
        s += len;
        if (*s == ',')
            s++;
    }
    return 0;
}

/* ---- axes ---- */

struct range {
    double lo, hi; /* world coordinates: the value, or log10 of it on a log axis */
};

static int panel_has_data(const struct plot *p, int k)
{
    for (size_t i = 0; i < p->n_runs; i++)
        if (p->selected[i] && p->run[i].c[k].n)
            return 1;
    return 0;
}

/* The x range shared by every panel, and each panel's y range (with a margin). */
static void ranges(const struct plot *p, struct range *x, struct range y[N_PANELS])
{
    x->lo = 0;
    x->hi = 0;
    for (int k = 0; k < N_PANELS; k++) {
        double lo = INFINITY, hi = -INFINITY;
        for (size_t i = 0; i < p->n_runs; i++) {
            if (!p->selected[i])
                continue;
            const struct curve *c = &p->run[i].c[k];
            for (size_t j = 0; j < c->n; j++) {
                double v = PANELS[k].log_y ? log10(c->y[j]) : c->y[j];
                lo = fmin(lo, v);
                hi = fmax(hi, v);
                x->hi = fmax(x->hi, c->x[j]);
            }
        }
        if (!(lo <= hi)) {
            lo = 0;
            hi = 1;
        }
        if (!PANELS[k].log_y)
            lo = fmin(lo, 0); /* BLEU from 0: its growth reads true */
        double pad = hi > lo ? 0.06 * (hi - lo) : (PANELS[k].log_y ? 0.05 : fmax(0.5, fabs(hi) * 0.1));
        y[k].lo = (PANELS[k].log_y || lo < 0) ? lo - pad : lo;
        y[k].hi = hi + pad;
    }
    if (x->hi <= 0)
        x->hi = 1;
    x->hi *= 1.02;
}

/* A "nice" step (1, 2 or 5 times a power of ten) giving about n intervals over span. */
static double nice_step(double span, int n)
{
    double raw = span / n, p10 = pow(10, floor(log10(raw))), m = raw / p10;
    return (m < 1.5 ? 1 : m < 3.5 ? 2 : m < 7.5 ? 5 : 10) * p10;
}

/* Ticks of a log axis over [10^lo, 10^hi]: mantissas 1..9, 1/2/5 or 1 of each decade, the densest
 * set with at most 8 ticks; a range too narrow for 3 of those gets evenly spaced values. Returns
 * the count written to v (cap entries). */
static int log_ticks(double lo, double hi, double *v, int cap)
{
    static const double sets[3][9] = {{1, 2, 3, 4, 5, 6, 7, 8, 9}, {1, 2, 5}, {1}};
    static const int set_n[3] = {9, 3, 1};
    for (int s = 0; s < 3; s++) {
        int n = 0;
        for (double d = floor(lo); d <= ceil(hi); d++)
            for (int m = 0; m < set_n[s]; m++) {
                double t = sets[s][m] * pow(10, d), l = log10(t);
                if (l >= lo && l <= hi && n < cap)
                    v[n++] = t;
            }
        if (n >= 3 && n <= 8)
            return n;
        if (s == 2 && n > 8) { /* many decades: every k-th */
            int k = (n + 7) / 8, w = 0;
            for (int i = 0; i < n; i += k)
                v[w++] = v[i];
            return w;
        }
    }
    double a = pow(10, lo), b = pow(10, hi), step = nice_step(b - a, 5);
    int n = 0;
    for (double t = ceil(a / step) * step; t <= b && n < cap; t += step)
        if (t > 0)
            v[n++] = t;
    return n;
}

/* Colour map 0: 0 the background, 1 text and frames, 2 the grid, then one colour per run
 * (Okabe and Ito's palette, which stays distinct for colour-blind readers). */
#define COL_TEXT 1
#define COL_GRID 2
#define COL_RUN0 3
static const unsigned char PALETTE[][3] = {
    {255, 255, 255}, {0, 0, 0},     {215, 215, 215}, {0, 114, 178},  {213, 94, 0},
    {0, 158, 115},   {204, 121, 167}, {230, 159, 0}, {86, 180, 233}, {90, 90, 90},
};
#define N_RUN_COLOURS ((int)(sizeof PALETTE / sizeof PALETTE[0]) - COL_RUN0)

static void run_style(size_t i, PLINT *colour, PLINT *style)
{
    *colour = COL_RUN0 + (PLINT)(i % N_RUN_COLOURS);
    *style = 1 + (PLINT)((i / N_RUN_COLOURS) % 8); /* more runs than colours: dashed ones */
}

/* The y axis of a log panel: grid lines, ticks on both sides and labels on the left. */
static void log_axis(const struct range *x, const struct range *y)
{
    double t[32];
    int n = log_ticks(y->lo, y->hi, t, 32);
    double tick = (x->hi - x->lo) * 0.008;
    for (int i = 0; i < n; i++) {
        double l = log10(t[i]);
        char label[32];
        snprintf(label, sizeof label, "%.6g", t[i]);
        plcol0(COL_GRID);
        plwidth(0.6);
        pljoin(x->lo, l, x->hi, l);
        plcol0(COL_TEXT);
        plwidth(1);
        pljoin(x->lo, l, x->lo + tick, l);
        pljoin(x->hi, l, x->hi - tick, l);
        plmtex("lv", 0.6, (l - y->lo) / (y->hi - y->lo), 1.0, label);
    }
}

static void panel_draw(const struct plot *p, int k, const struct range *x, const struct range *y, double x0,
                       double x1, double y0, double y1, const char *x_label, int bottom)
{
    plvpor(x0, x1, y0, y1);
    plwind(x->lo, x->hi, y->lo, y->hi);
    plcol0(COL_GRID);
    plwidth(0.6);
    plbox("g", 0, 0, PANELS[k].log_y ? "" : "g", 0, 0);
    plcol0(COL_TEXT);
    plwidth(1);
    plbox("bcnst", 0, 0, PANELS[k].log_y ? "bc" : "bcnstv", 0, 0);
    if (PANELS[k].log_y)
        log_axis(x, y);
    plmtex("l", 5.2, 0.5, 0.5, PANELS[k].label);
    if (bottom)
        plmtex("b", 3.0, 0.5, 0.5, x_label);
    for (size_t i = 0; i < p->n_runs; i++) {
        const struct curve *c = &p->run[i].c[k];
        if (!p->selected[i] || !c->n)
            continue;
        PLFLT *yy = malloc(c->n * sizeof *yy); /* (n) the world y */
        if (!yy)
            continue; /* leaves the curve out; the figure is still whole */
        for (size_t j = 0; j < c->n; j++)
            yy[j] = PANELS[k].log_y ? log10(c->y[j]) : c->y[j];
        PLINT colour, style;
        run_style(i, &colour, &style);
        plcol0(colour);
        pllsty(style);
        plwidth(2);
        if (c->n > 1)
            plline((PLINT)c->n, c->x, yy);
        pllsty(1);
        if (PANELS[k].metric || c->n == 1) /* validations are few: mark each */
            plstring((PLINT)c->n, c->x, yy, "#(840)");
        free(yy);
    }
    plwidth(1);
}

#define LEGEND_COLUMNS 3
#define LEGEND_NAME_MAX 26 /* longer names are cut, with ".." (a column holds about 30 characters) */

static size_t n_selected(const struct plot *p)
{
    size_t n = 0;
    for (size_t i = 0; i < p->n_runs; i++)
        n += (size_t)p->selected[i];
    return n;
}

/* The legend, in the current viewport (the band between the title and the top panel): one entry
 * per run (a stretch of its line, its marker, its name), LEGEND_COLUMNS to a row, the rows centred.
 * Laid out here rather than by pllegend, which sizes its box from PLplot's own font metrics and
 * so misjudges the SVG viewer's text. */
static void legend_draw(const struct plot *p)
{
    size_t n = n_selected(p), cols = n < LEGEND_COLUMNS ? n : LEGEND_COLUMNS, rows = (n + cols - 1) / cols;
    plwind(0, 1, 0, 1);
    size_t e = 0;
    for (size_t i = 0; i < p->n_runs; i++) {
        if (!p->selected[i])
            continue;
        size_t row = e / cols, col = e % cols, in_row = row + 1 < rows ? cols : n - row * cols;
        double x = (double)col / LEGEND_COLUMNS + (double)(LEGEND_COLUMNS - in_row) / (2.0 * LEGEND_COLUMNS);
        double y = 1 - (row + 0.5) / (double)rows;
        char name[LEGEND_NAME_MAX + 1];
        const char *nm = p->run[i].name;
        size_t nl = strlen(nm);
        if (nl > LEGEND_NAME_MAX) {
            memcpy(name, nm, LEGEND_NAME_MAX - 2);
            memcpy(name + LEGEND_NAME_MAX - 2, "..", 3);
        } else {
            memcpy(name, nm, nl + 1);
        }
        PLINT colour, style;
        run_style(i, &colour, &style);
        plcol0(colour);
        pllsty(style);
        plwidth(2);
        pljoin(x + 0.01, y, x + 0.07, y);
        pllsty(1);
        PLFLT mx = x + 0.04, my = y;
        plstring(1, &mx, &my, "#(840)");
        plwidth(1);
        plcol0(COL_TEXT);
        plptex(x + 0.085, y, 1, 0, 0.0, name);
        e++;
    }
}

/* ---- PLplot's messages and fatal errors ---- */

static char pl_abort_msg[256];   /* PLplot's last "aborting operation" message */
static const char *pl_tmp_path; /* the temporary file, removed if PLplot exits */
static int pl_saved_stderr = -1;

static void pl_on_abort(PLCHAR_VECTOR msg) { snprintf(pl_abort_msg, sizeof pl_abort_msg, "%s", msg); }

static void stderr_restore(void)
{
    if (pl_saved_stderr >= 0) {
        fflush(stderr);
        dup2(pl_saved_stderr, STDERR_FILENO);
        close(pl_saved_stderr);
        pl_saved_stderr = -1;
    }
}

/* PLplot calls exit() after this: say why, leave nothing behind and keep its own lines quiet. */
static int pl_on_exit(PLCHAR_VECTOR msg)
{
    stderr_restore();
    if (pl_tmp_path)
        unlink(pl_tmp_path);
    cli_fail(&cmd_plot, "PLplot failed: %s", msg);
    int null = open("/dev/null", O_WRONLY);
    if (null >= 0)
        dup2(null, STDERR_FILENO);
    return 1;
}

/* stderr into scratch (a temporary file) until stderr_restore. */
static void stderr_capture(FILE *scratch)
{
    fflush(stderr);
    pl_saved_stderr = scratch ? dup(STDERR_FILENO) : -1;
    if (pl_saved_stderr >= 0)
        dup2(fileno(scratch), STDERR_FILENO);
}

static int svg_driver_present(void)
{
    PLCHAR_VECTOR menu_v[64], names_v[64], *menu = menu_v, *names = names_v;
    int n = 64; /* out: the drivers' count (PLplot has far fewer than 64 and does not check) */
    plgDevs(&menu, &names, &n);
    for (int i = 0; i < n; i++)
        if (strcmp(names[i], "svg") == 0)
            return 1;
    return 0;
}

/* Draws the figure into path (an existing, writable file). */
static void figure_draw(const struct plot *p, const char *path, const char *title, const char *x_label)
{
    int panels[N_PANELS], np = 0;
    for (int k = 0; k < N_PANELS; k++)
        if (panel_has_data(p, k))
            panels[np++] = k;
    struct range x, y[N_PANELS];
    ranges(p, &x, y);

    plsdev("svg");
    plsfnam(path);
    /* pixels: the title, the legend's rows, each panel with its tick labels, the x label */
    const double title_h = 80, legend_h = 36.0 * (double)((n_selected(p) + LEGEND_COLUMNS - 1) / LEGEND_COLUMNS),
                 panel_h = 320, xlabel_h = 70;
    const double page_h = title_h + legend_h + 10 + panel_h * np + xlabel_h;
    plspage(0, 0, 1000, (PLINT)page_h, 0, 0);
    plscmap0n((PLINT)(sizeof PALETTE / sizeof PALETTE[0]));
    for (int i = 0; i < (int)(sizeof PALETTE / sizeof PALETTE[0]); i++)
        plscol0(i, PALETTE[i][0], PALETTE[i][1], PALETTE[i][2]);
    plinit();
    pladv(0);
    plcol0(COL_TEXT);
    plvpor(0, 1, 0, 1);
    plschr(0, 1.1);
    plmtex("t", -2.2, 0.5, 0.5, title);
    plschr(0, 0.8);
    const double left = 0.11, right = 0.97;
    plvpor(left, right, 1 - (title_h + legend_h) / page_h, 1 - title_h / page_h);
    legend_draw(p);
    /* the panels stacked below it, a gap between them for the x tick labels */
    double top = 1 - (title_h + legend_h + 10) / page_h, bottom = xlabel_h / page_h, gap = 60 / page_h;
    double h = (top - bottom - gap * (np - 1)) / np;
    for (int i = 0; i < np; i++) {
        double y1 = top - i * (h + gap), y0 = y1 - h;
        panel_draw(p, panels[i], &x, &y[panels[i]], left, right, y0, y1, x_label, i == np - 1);
    }
    plend();
}

/* 1 when the file at path is a complete SVG document (its last element is </svg>). */
static int svg_complete(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return 0;
    char tail[64] = {0};
    long n = 0;
    if (fseek(f, -(long)(sizeof tail - 1), SEEK_END) == 0)
        n = (long)fread(tail, 1, sizeof tail - 1, f);
    fclose(f);
    tail[n > 0 ? n : 0] = 0;
    return strstr(tail, "</svg>") != NULL;
}

/* ---- the command ---- */

/* argv without the --run / -o flags, which cli_parse cannot take (--run repeats, -o is short). */
static int split_args(int argc, char **argv, char **rest, int *nrest, const char **runs, int *nruns,
                      const char **out)
{
    *nrest = 0;
    *nruns = 0;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (i > 0 && (strcmp(a, "--run") == 0 || strcmp(a, "-o") == 0 || strcmp(a, "--output") == 0)) {
            if (i + 1 >= argc)
                return cli_usage_error(&cmd_plot, "%s needs a value", a);
            if (strcmp(a, "--run") != 0)
                *out = argv[++i];
            else if (*nruns < MAX_RUNS)
                runs[(*nruns)++] = argv[++i];
            else
                return cli_usage_error(&cmd_plot, "more than %d --run flags", MAX_RUNS);
        } else if (i > 0 && strncmp(a, "--run=", 6) == 0) {
            if (*nruns == MAX_RUNS)
                return cli_usage_error(&cmd_plot, "more than %d --run flags", MAX_RUNS);
            runs[(*nruns)++] = a + 6;
        } else if (i > 0 && strncmp(a, "--output=", 9) == 0) {
            *out = a + 9;
        } else {
            rest[(*nrest)++] = argv[i];
        }
    }
    return 0;
}

/* The directory of path plus "/.NAME.XXXXXX" (malloc'd), for mkstemp. */
static char *tmp_name_for(const char *path)
{
    const char *slash = strrchr(path, '/');
    size_t dir = slash ? (size_t)(slash - path + 1) : 0;
    size_t n = strlen(path) + 16;
    char *t = malloc(n);
    if (t)
        snprintf(t, n, "%.*s.%s.XXXXXX", (int)dir, path, path + dir);
    return t;
}

static int run(int argc, char **argv)
{
    const char *out = NULL, *xaxis = "step", *title = NULL, *runs[MAX_RUNS];
    const struct cli_opt opts[] = {
        {"x", CLI_STR, &xaxis, 0, 0},
        {"title", CLI_STR, &title, 0, 0},
        {NULL, 0, NULL, 0, 0},
    };
    char *pos[1];
    int npos = 0;
    char **rest = malloc((size_t)(argc > 0 ? argc : 1) * sizeof *rest);
    int nrest, nruns;
    if (!rest)
        return cli_fail(&cmd_plot, "out of memory");
    int rc = split_args(argc, argv, rest, &nrest, runs, &nruns, &out);
    if (!rc)
        rc = cli_parse(&cmd_plot, nrest, rest, opts, pos, 1, &npos);
    free(rest);
    if (rc == CLI_HELP_SHOWN)
        return 0;
    if (rc)
        return rc;
    if (npos != 1)
        return cli_usage_error(&cmd_plot, "expected DB");
    if (!out)
        return cli_usage_error(&cmd_plot, "expected -o OUT.svg");
    size_t olen = strlen(out);
    if (olen < 5 || strcmp(out + olen - 4, ".svg") != 0)
        return cli_usage_error(&cmd_plot, "-o: '%s' does not end in .svg (the figure is SVG)", out);
    if (strcmp(xaxis, "step") && strcmp(xaxis, "time"))
        return cli_usage_error(&cmd_plot, "--x: '%s' is not step or time", xaxis);

    int status = 1;
    struct db *db = NULL;
    struct plot *p = calloc(1, sizeof *p);
    char *tmp = NULL;
    FILE *scratch = NULL;
    int fd = -1;
    if (!p) {
        cli_fail(&cmd_plot, "out of memory");
        goto cleanup;
    }
    p->by_time = strcmp(xaxis, "time") == 0;
    rc = db_open(pos[0], 0, &db);
    if (rc == SL_ENOTFOUND) {
        cli_fail(&cmd_plot, "%s does not exist", pos[0]);
        goto cleanup;
    }
    if (rc || (rc = db_curve_runs_foreach(db, runs_add, p))) {
        cli_fail_status(&cmd_plot, rc);
        goto cleanup;
    }
    if (!p->n_runs) {
        cli_fail(&cmd_plot, "no training run in %s (run seqlite train first)", pos[0]);
        goto cleanup;
    }
    char msg[1024];
    for (int i = 0; i < nruns; i++)
        if (select_runs(p, pos[0], runs[i], msg, sizeof msg)) {
            cli_fail(&cmd_plot, "%s", msg);
            goto cleanup;
        }
    size_t n_drawn = 0;
    double max_x = 0;
    for (size_t i = 0; i < p->n_runs; i++) {
        if (nruns == 0)
            p->selected[i] = 1;
        if (!p->selected[i])
            continue;
        if ((rc = run_load(db, p, &p->run[i]))) {
            cli_fail_status(&cmd_plot, rc);
            goto cleanup;
        }
        size_t n = 0;
        for (int k = 0; k < N_PANELS; k++) {
            n += p->run[i].c[k].n;
            for (size_t j = 0; j < p->run[i].c[k].n; j++)
                max_x = fmax(max_x, p->run[i].c[k].x[j]);
        }
        if (!n) {
            fprintf(stderr, "plot: run %lld '%s' has no logged steps yet: left out\n", (long long)p->run[i].id,
                    p->run[i].name);
            p->selected[i] = 0;
        }
        n_drawn += n > 0;
    }
    if (!n_drawn) {
        cli_fail(&cmd_plot, "nothing to plot: %s has no train_log rows or validation metrics for %s yet%s",
                 pos[0], nruns ? "those runs" : "any run",
                 p->by_time ? " (with wall times: try --x step)" : "");
        goto cleanup;
    }

    /* the x axis in steps, or wall time in a unit that keeps its numbers short */
    const char *x_label = "step";
    if (p->by_time) {
        double div = max_x >= 3 * 3600 ? 3600 : max_x >= 180 ? 60 : 1;
        x_label = div == 3600 ? "wall time (hours)" : div == 60 ? "wall time (minutes)" : "wall time (seconds)";
        for (size_t i = 0; i < p->n_runs; i++)
            for (int k = 0; k < N_PANELS; k++)
                for (size_t j = 0; j < p->run[i].c[k].n; j++)
                    p->run[i].c[k].x[j] /= div;
    }
    char dflt_title[256];
    if (!title) {
        const char *base = strrchr(pos[0], '/');
        snprintf(dflt_title, sizeof dflt_title, "learning curves: %s", base ? base + 1 : pos[0]);
        title = dflt_title;
    }

    if (!svg_driver_present()) {
        cli_fail(&cmd_plot, "PLplot has no svg driver (install PLplot with its svg driver: scripts/setup.sh)");
        goto cleanup;
    }
    if (!(tmp = tmp_name_for(out))) {
        cli_fail(&cmd_plot, "out of memory");
        goto cleanup;
    }
    if ((fd = mkstemp(tmp)) < 0) {
        cli_fail(&cmd_plot, "cannot write %s: %s", out, strerror(errno));
        free(tmp);
        tmp = NULL;
        goto cleanup;
    }
    mode_t mask = umask(0);
    umask(mask);
    fchmod(fd, 0666 & ~mask); /* mkstemp's 0600 would make OUT private */
    close(fd);
    fd = -1;

    pl_tmp_path = tmp;
    pl_abort_msg[0] = 0;
    plsexit(pl_on_exit);
    plsabort(pl_on_abort);
    scratch = tmpfile();
    stderr_capture(scratch);
    figure_draw(p, tmp, title, x_label);
    stderr_restore();
    pl_tmp_path = NULL;
    if (pl_abort_msg[0] || !svg_complete(tmp)) {
        cli_fail(&cmd_plot, "drawing %s failed%s%s", out, pl_abort_msg[0] ? ": " : "", pl_abort_msg);
        goto cleanup;
    }
    if (rename(tmp, out) != 0) {
        cli_fail(&cmd_plot, "cannot write %s: %s", out, strerror(errno));
        goto cleanup;
    }
    free(tmp);
    tmp = NULL;
    size_t n_sel = n_selected(p);
    fprintf(stderr, "plot: %zu run%s -> %s\n", n_sel, n_sel == 1 ? "" : "s", out);
    status = 0;

cleanup:
    if (tmp) {
        unlink(tmp);
        free(tmp);
    }
    if (scratch)
        fclose(scratch);
    if (p)
        plot_free(p);
    free(p);
    db_close(db);
    return status;
}

const struct cli_cmd cmd_plot = {
    .name = "plot",
    .summary = "draw the learning curves of runs (loss, validation perplexity, BLEU) as SVG",
    .usage =
        "usage: seqlite plot DB -o OUT.svg [--run ID|NAME ...] [--x step|time] [--title T]\n"
        "  Draws the learning curves of the runs of DB into an SVG file: training loss (train_log),\n"
        "  validation perplexity and validation BLEU (metric rows of the valid split, one point per\n"
        "  step), one panel each, against the step or the wall time, the runs overlaid with a\n"
        "  legend. Loss and perplexity are on a log scale. A panel without data is left out, and\n"
        "  so is a run without logged steps. OUT is written whole or not at all.\n"
        "options:\n"
        "  -o, --output OUT.svg  the file to write\n"
        "  --run R               a run id or name; repeat it or give a comma list (default: all runs)\n"
        "  --x step|time         x axis: optimiser steps (default) or wall time since the run started\n"
        "  --title T             the figure's title (default: learning curves: DB)\n"
        "exit status: 0 ok, 1 no such run / nothing to plot / cannot write OUT, 2 usage error\n",
    .run = run,
};
