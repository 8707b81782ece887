/* tools/cmd_train.c: `seqlite train DB`: trains (or --resume's) an LSTM encoder-decoder on the train
 * split with the newest vocabulary (train_run). Progress goes to stderr: one line per --log-every
 * steps (text redrawn in place on a terminal and cut to its width; --log-format json: JSON lines, as
 * train/progress.h formats them); stdout gets one summary line at the end.
 * SIGINT, SIGTERM, SIGHUP, SIGQUIT and SIGPIPE set a flag the trainer polls: it saves a checkpoint,
 * marks the run 'stopped' and we exit 128 + the signal (130 for ^C, 143 for kill); a second signal
 * restores the default action (kills at once).
 * The flags and their usage lines come from the option table (train/options.h): each row gives one flag
 * (a BOOL row two: --FLAG and --no-FLAG); --resume, --corpus, --allow-new-data, --init-from
 * are this file's own.
 * ref: train/train.h, train/options.h. */
#include "tools/cli.h"

#include "corpus/db.h"
#include "train/options.h"
#include "train/progress.h"
#include "train/train.h"
#include "util/err.h"
#include "util/sbuf.h"
#include "util/utf8.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

static volatile sig_atomic_t stop_flag, stop_signal;

/* The signals that stop a run cleanly: ^C, kill, a closed terminal, ^\, a closed pipe on stdout or
 * stderr. The exit status is then 128 + the signal's number, as a shell reports a death by it. */
static const int stop_signals[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGPIPE};
#define N_STOP_SIGNALS (sizeof stop_signals / sizeof stop_signals[0])

static void on_signal(int sig)
{
    stop_flag = 1;
    stop_signal = sig;
    /* a second ^C (or kill) kills; a closed pipe is ignored from now on, so writing the last lines to
     * it fails quietly instead of killing the process before it has marked the run stopped */
    signal(sig, sig == SIGPIPE ? SIG_IGN : SIG_DFL);
}

static void catch_stop_signals(int on)
{
    for (size_t i = 0; i < N_STOP_SIGNALS; i++)
        signal(stop_signals[i], on ? on_signal : SIG_DFL);
}

struct view {
    int tty;
    int open_line; /* a \r line is on screen */
    enum train_log_format fmt;
    struct sbuf line;
};

/* The terminal's columns: TIOCGWINSZ on stderr, else $COLUMNS, else 80. Read at every redraw, so a
 * resized window is followed. */
static size_t stderr_width(void)
{
    struct winsize ws;
    if (ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0)
        return ws.ws_col;
    const char *c = getenv("COLUMNS");
    long n = c ? strtol(c, NULL, 10) : 0;
    return n > 0 && n < 100000 ? (size_t)n : 80;
}

static void end_line(struct view *v)
{
    if (v->open_line) {
        fputc('\n', stderr);
        v->open_line = 0;
    }
}

/* Text on a terminal: the progress line redrawn in place (\r, clear to the end of the line), cut to the
 * width; other lines below it. Text elsewhere and JSON: one line per event. */
static void progress(void *ctx, const struct train_progress *p)
{
    struct view *v = ctx;
    const int redraw = v->tty && v->fmt == TRAIN_LOG_TEXT && p->event == TRAIN_EV_LOG;
    sbuf_reset(&v->line);
    if (train_progress_format(p, v->fmt, redraw ? stderr_width() : 0, &v->line))
        return;
    if (redraw) {
        fprintf(stderr, "\r\033[K%s", v->line.data ? v->line.data : "");
        v->open_line = 1;
    } else {
        end_line(v);
        fprintf(stderr, "%s\n", v->line.data ? v->line.data : "");
    }
    fflush(stderr);
}

/* The command-line values of one table row that do not go straight into struct train_opts. */
struct flag_slot {
    int on, off;        /* BOOL: --FLAG, --no-FLAG given */
    char no_name[48];   /* BOOL: "no-FLAG" */
    const char *choice; /* CHOICE: the name given */
};

/* The flags of the table (and this file's own: --resume, --corpus,
 * --allow-new-data, --init-from) into opts (room for
 * 2 * train_opt_count + TRAIN_OWN_FLAGS + 1). */
#define TRAIN_OWN_FLAGS 4
static void make_flags(struct train_opts *o, struct flag_slot *slot, int *resume, struct cli_opt *opts)
{
    size_t n = 0;
    for (size_t i = 0; i < train_opt_count; i++) {
        const struct train_opt *d = &train_opt_table[i];
        void *field = (char *)o + d->field;
        switch (d->type) {
        case TRAIN_OPT_INT:
            opts[n++] = (struct cli_opt){d->flag, CLI_INT, field, d->min, d->max};
            break;
        case TRAIN_OPT_DOUBLE:
            opts[n++] = (struct cli_opt){d->flag, CLI_DOUBLE, field, d->min, d->max};
            break;
        case TRAIN_OPT_STRING:
            opts[n++] = (struct cli_opt){d->flag, CLI_STR, field, 0, 0};
            break;
        case TRAIN_OPT_CHOICE:
            opts[n++] = (struct cli_opt){d->flag, CLI_STR, &slot[i].choice, 0, 0};
            break;
        case TRAIN_OPT_BOOL:
            snprintf(slot[i].no_name, sizeof slot[i].no_name, "no-%s", d->flag);
            opts[n++] = (struct cli_opt){d->flag, CLI_BOOL, &slot[i].on, 0, 0};
            opts[n++] = (struct cli_opt){slot[i].no_name, CLI_BOOL, &slot[i].off, 0, 0};
            break;
        }
    }
    opts[n++] = (struct cli_opt){"resume", CLI_BOOL, resume, 0, 0};
    opts[n++] = (struct cli_opt){"corpus", CLI_STR, &o->corpus, 0, 0};
    opts[n++] = (struct cli_opt){"allow-new-data", CLI_BOOL, &o->allow_new_data, 0, 0};
    opts[n++] = (struct cli_opt){"init-from", CLI_INT, &o->init_from, 1, 9e15};
    opts[n] = (struct cli_opt){NULL, 0, NULL, 0, 0};
}

/* BOOL and CHOICE flags into o, STRING ones checked: length, UTF-8, no control characters (cli_parse
 * checks numbers).
 * A usage error (2) or 0. */
static int take_flags(struct train_opts *o, const struct flag_slot *slot)
{
    for (size_t i = 0; i < train_opt_count; i++) {
        const struct train_opt *d = &train_opt_table[i];
        int64_t *v = (int64_t *)((char *)o + d->field);
        const char *str = d->type == TRAIN_OPT_STRING ? *(const char **)((char *)o + d->field) : NULL;
        if (str && (strlen(str) < d->min || strlen(str) > d->max))
            return cli_usage_error(&cmd_train, "--%s must have %g to %g bytes", d->flag, d->min, d->max);
        /* the checks import makes of its labels: a name is printed and queried, never raw bytes */
        if (str && !utf8_valid(str, strlen(str), NULL))
            return cli_usage_error(&cmd_train, "--%s is not valid UTF-8", d->flag);
        for (const char *c = str; c && *c; c++)
            if ((unsigned char)*c < 0x20 || *c == 0x7f)
                return cli_usage_error(&cmd_train, "--%s holds a control character", d->flag);
        if (d->type == TRAIN_OPT_BOOL && slot[i].on && slot[i].off)
            return cli_usage_error(&cmd_train, "--%s and --no-%s exclude each other", d->flag, d->flag);
        if (d->type == TRAIN_OPT_BOOL && (slot[i].on || slot[i].off))
            *v = slot[i].on ? 1 : 0;
        if (d->type == TRAIN_OPT_CHOICE && slot[i].choice) {
            int64_t k = 0;
            while (d->choices[k] && strcmp(d->choices[k], slot[i].choice) != 0)
                k++;
            if (!d->choices[k]) {
                char names[128] = "";
                for (size_t j = 0; d->choices[j]; j++)
                    snprintf(names + strlen(names), sizeof names - strlen(names), "%s%s", j ? " or " : "",
                             d->choices[j]);
                return cli_usage_error(&cmd_train, "--%s: '%s' is not %s", d->flag, slot[i].choice, names);
            }
            *v = k;
        }
    }
    return 0;
}

static int run(int argc, char **argv)
{
    struct train_opts o;
    train_opts_init(&o);
    int resume = 0;
    struct flag_slot slot[TRAIN_OPT_MAX];
    struct cli_opt opts[2 * TRAIN_OPT_MAX + TRAIN_OWN_FLAGS + 1];
    memset(slot, 0, sizeof slot);
    make_flags(&o, slot, &resume, opts);
    char *pos[1];
    int npos = 0;
    int rc = cli_parse(&cmd_train, argc, argv, opts, pos, 1, &npos);
    if (rc == CLI_HELP_SHOWN)
        return 0;
    if (rc)
        return rc;
    if (npos != 1)
        return cli_usage_error(&cmd_train, "expected DB");
    if ((rc = take_flags(&o, slot)))
        return rc;
    o.resume = resume;
    o.stop = &stop_flag;
    struct view v = {.tty = cli_stderr_is_tty(), .fmt = o.log_format == TRAIN_LOG_JSON ? TRAIN_LOG_JSON : TRAIN_LOG_TEXT};
    sbuf_init(&v.line);
    o.progress = progress;
    o.progress_ctx = &v;

    struct db *db = NULL;
    if ((rc = db_open(pos[0], 0, &db)))
        return cli_fail_status(&cmd_train, rc);
    catch_stop_signals(1);
    struct train_result r;
    rc = train_run(db, &o, &r);
    catch_stop_signals(0);
    if (stop_signal == SIGPIPE)
        signal(SIGPIPE, SIG_IGN);
    end_line(&v);
    sbuf_free(&v.line);
    db_close(db);
    if (rc == SL_EINVAL && r.run_id == 0)
        return cli_usage_error(&cmd_train, "%s", sl_errmsg());
    if (rc)
        return cli_fail_status(&cmd_train, rc);
    printf("run %lld: %s after %lld steps (epoch %lld), valid ppl %.3f, valid BLEU %.2f, checkpoint %lld, best "
           "%lld, %.0f/%.0f src/tgt tok/s, %.1f s\n",
           (long long)r.run_id, r.status, (long long)r.steps_done, (long long)r.epoch + 1, r.valid_ppl,
           r.valid_bleu, (long long)r.last_checkpoint_id, (long long)r.best_checkpoint_id, r.src_tok_s, r.tgt_tok_s, r.elapsed_s);
    fflush(stdout);
    if (stop_flag) {
        fprintf(stderr, "stopped: checkpoint %lld saved; continue with: seqlite train %s --resume\n",
                (long long)r.last_checkpoint_id, pos[0]);
        return 128 + (int)stop_signal;
    }
    return 0;
}

/* The usage: a fixed head, then one line (or more) per table row, then --resume. Built before main()
 * runs, because `seqlite help train` and usage errors print cmd_train.usage without calling run(). */
static char usage_text[8192];

static const char usage_head[] =
    "usage: seqlite train DB [options]\n"
    "       seqlite train DB --resume [--steps N | --epochs N] [--time-limit M] [--threads T]\n"
    "       seqlite train DB --init-from CHECKPOINT [options]\n"
    "  Trains on the train split of DB with its newest vocabulary; validates on the valid split\n"
    "  (perplexity, and BLEU / chrF of greedy translations as seqlite eval computes them);\n"
    "  saves checkpoints in DB. Progress on stderr, a summary line on stdout.\n"
    "  Ctrl-C saves a checkpoint and stops (continue with --resume). One process trains a run at a\n"
    "  time. While another writer holds DB, checkpoints and log rows are retried, not lost (busy\n"
    "  timeout: SEQLITE_BUSY_TIMEOUT_MS, default 10000).\n";

/* One flag's lines: "  --FLAG ARG" padded to the help column, the help with "{default}" replaced and
 * each '\n' continued on a line indented to that column. */
static void usage_flag(struct sbuf *b, const char *flag, const char *arg, const char *help, const char *def)
{
    char left[64];
    snprintf(left, sizeof left, "--%s%s%s", flag, arg ? " " : "", arg ? arg : "");
    sbuf_printf(b, "  %-18s  ", left);
    for (const char *p = help; *p; p++) {
        if (*p == '\n')
            sbuf_printf(b, "\n%22s", "");
        else if (strncmp(p, "{default}", 9) == 0) {
            sbuf_printf(b, "%s", def);
            p += 8;
        } else
            sbuf_putc(b, *p);
    }
    sbuf_putc(b, '\n');
}

__attribute__((constructor)) static void usage_build(void)
{
    struct sbuf b;
    sbuf_init(&b);
    sbuf_printf(&b, "%s", usage_head);
    for (size_t i = 0; i < train_opt_count; i++) {
        const struct train_opt *d = &train_opt_table[i];
        char def[32];
        train_opt_format_default(d, def, sizeof def);
        usage_flag(&b, d->flag, d->arg, d->help, def);
    }
    usage_flag(&b, "corpus", "NAME[,..]", "train on these train corpora only (default: every train\n"
                                            "corpus; stored with the run)", "");
    usage_flag(&b, "init-from", "C", "a new run starting from checkpoint C's weights (fine-tuning):\n"
                                     "its run's model options, the same vocabulary, a fresh optimizer", "");
    usage_flag(&b, "resume", NULL, "continue the newest run (its options; may change steps, epochs,\n"
                                   "time limit, threads, intervals)", "");
    usage_flag(&b, "allow-new-data", NULL, "with --resume: continue although train corpora were imported\n"
                                           "or removed since the run started (recorded in its config)", "");
    snprintf(usage_text, sizeof usage_text, "%s", b.data ? b.data : usage_head);
    sbuf_free(&b);
}

const struct cli_cmd cmd_train = {
    .name = "train",
    .summary = "train an LSTM encoder-decoder",
    .usage = usage_text,
    .run = run,
};
