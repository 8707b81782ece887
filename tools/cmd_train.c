/* tools/cmd_train.c: `seqlite train DB`: trains (or --resume's) an LSTM encoder-decoder on the train
 * split with the newest vocabulary (train_run). Progress goes to stderr: one line per --log-every
 * steps (redrawn in place on a terminal); stdout gets one summary line at the end.
 * SIGINT / SIGTERM set a flag the trainer polls: it saves a checkpoint, marks the run 'stopped' and
 * we exit 130; a second signal restores the default action (kills at once).
 * ref: train/train.h. */
#include "tools/cli.h"

#include "corpus/db.h"
#include "train/train.h"
#include "util/err.h"

#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

static volatile sig_atomic_t stop_flag;

static void on_signal(int sig)
{
    stop_flag = 1;
    signal(sig, SIG_DFL); /* a second ^C kills */
}

struct view {
    int tty;
    int open_line; /* a \r line is on screen */
};

static void fmt_time(char *buf, size_t cap, double s)
{
    if (s < 0 || !isfinite(s)) {
        snprintf(buf, cap, "?");
        return;
    }
    long t = (long)(s + 0.5);
    if (t >= 3600)
        snprintf(buf, cap, "%ldh%02ldm", t / 3600, t / 60 % 60);
    else
        snprintf(buf, cap, "%ldm%02lds", t / 60, t % 60);
}

static void end_line(struct view *v)
{
    if (v->open_line) {
        fputc('\n', stderr);
        v->open_line = 0;
    }
}

static void progress(void *ctx, const struct train_progress *p)
{
    struct view *v = ctx;
    char el[32], eta[32];
    switch (p->event) {
    case TRAIN_EV_LOG:
        fmt_time(el, sizeof el, p->elapsed_s);
        fmt_time(eta, sizeof eta, p->eta_s);
        fprintf(stderr,
                "%sepoch %lld step %lld/%lld loss %.4f ppl %.2f gnorm %.3g lr %g %.0f/%.0f src/tgt tok/s %s "
                "eta %s%s",
                v->tty ? "\r\033[K" : "", (long long)p->epoch + 1, (long long)p->step, (long long)p->total_steps,
                p->loss, p->ppl, p->grad_norm, p->lr, p->src_tok_s, p->tgt_tok_s, el, eta, v->tty ? "" : "\n");
        v->open_line = v->tty;
        break;
    case TRAIN_EV_VALID:
        end_line(v);
        if (isnan(p->valid_bleu))
            fprintf(stderr, "step %lld: valid ppl %.3f (%.1f s)\n", (long long)p->step, p->valid_ppl,
                    p->valid_seconds);
        else
            fprintf(stderr, "step %lld: valid ppl %.3f, BLEU %.2f, chrF2 %.2f on %lld sentences (%.1f s)\n",
                    (long long)p->step, p->valid_ppl, p->valid_bleu, p->valid_chrf, (long long)p->valid_sents,
                    p->valid_seconds);
        break;
    case TRAIN_EV_SAVE:
        end_line(v);
        fprintf(stderr, "step %lld: checkpoint %lld saved\n", (long long)p->step, (long long)p->checkpoint_id);
        break;
    case TRAIN_EV_NOTE:
        end_line(v);
        fprintf(stderr, "%s\n", p->note);
        break;
    }
    fflush(stderr);
}

static int run(int argc, char **argv)
{
    struct train_opts o;
    train_opts_init(&o);
    int rev = 0, no_rev = 0, resume = 0;
    double time_limit = NAN;
    const char *best_by = NULL;
    const struct cli_opt opts[] = {
        {"layers", CLI_INT, &o.layers, 1, 8},
        {"emb", CLI_INT, &o.emb, 1, 8192},
        {"hidden", CLI_INT, &o.hidden, 1, 8192},
        {"dropout", CLI_DOUBLE, &o.dropout, 0, 0.95},
        {"batch", CLI_INT, &o.batch, 1, 100000},
        {"batch-tokens", CLI_INT, &o.batch_tokens, 1, 10000000},
        {"epochs", CLI_INT, &o.epochs, 1, 100000},
        {"steps", CLI_INT, &o.steps, 1, 1e12},
        {"lr", CLI_DOUBLE, &o.lr, 1e-7, 1.0},
        {"clip", CLI_DOUBLE, &o.clip, 1e-3, 1e6},
        {"lr-decay", CLI_DOUBLE, &o.lr_decay, 1e-6, 1.0},
        {"lr-decay-start", CLI_INT, &o.lr_decay_start, 0, 1e12},
        {"lr-decay-every", CLI_INT, &o.lr_decay_every, 1, 1e12},
        {"seed", CLI_INT, &o.seed, 0, 9e15},
        {"threads", CLI_INT, &o.threads, 1, 1024},
        {"reverse-source", CLI_BOOL, &rev, 0, 0},
        {"no-reverse-source", CLI_BOOL, &no_rev, 0, 0},
        {"valid-every", CLI_INT, &o.valid_every, 0, 1e12},
        {"save-every", CLI_INT, &o.save_every, 0, 1e12},
        {"log-every", CLI_INT, &o.log_every, 1, 1e12},
        {"valid-max", CLI_INT, &o.valid_max, 0, 1e12},
        {"valid-bleu", CLI_INT, &o.valid_bleu, 0, 1e9},
        {"valid-beam", CLI_INT, &o.valid_beam, 1, 100},
        {"best-by", CLI_STR, &best_by, 0, 0},
        {"max-len", CLI_INT, &o.max_len, 1, 4096},
        {"time-limit", CLI_DOUBLE, &time_limit, 0.001, 1e7},
        {"resume", CLI_BOOL, &resume, 0, 0},
        {"keep", CLI_INT, &o.keep, 1, 1000},
        {"shards", CLI_INT, &o.shards, 1, 256},
        {"name", CLI_STR, &o.name, 0, 0},
        {NULL, 0, NULL, 0, 0},
    };
    char *pos[1];
    int npos = 0;
    int rc = cli_parse(&cmd_train, argc, argv, opts, pos, 1, &npos);
    if (rc == CLI_HELP_SHOWN)
        return 0;
    if (rc)
        return rc;
    if (npos != 1)
        return cli_usage_error(&cmd_train, "expected DB");
    if (rev && no_rev)
        return cli_usage_error(&cmd_train, "--reverse-source and --no-reverse-source exclude each other");
    if (rev || no_rev)
        o.reverse_source = rev ? 1 : 0;
    if (o.name && (!*o.name || strlen(o.name) >= 64))
        return cli_usage_error(&cmd_train, "--name must have 1 to 63 bytes");
    if (best_by) {
        if (strcmp(best_by, "ppl") && strcmp(best_by, "bleu"))
            return cli_usage_error(&cmd_train, "--best-by: '%s' is not ppl or bleu", best_by);
        o.best_by_bleu = strcmp(best_by, "bleu") == 0;
    }
    o.time_limit_min = time_limit;
    o.resume = resume;
    o.stop = &stop_flag;
    struct view v = {.tty = cli_stderr_is_tty()};
    o.progress = progress;
    o.progress_ctx = &v;

    struct db *db = NULL;
    if ((rc = db_open(pos[0], 0, &db)))
        return cli_fail_status(&cmd_train, rc);
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    struct train_result r;
    rc = train_run(db, &o, &r);
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    end_line(&v);
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
        return 130;
    }
    return 0;
}

const struct cli_cmd cmd_train = {
    .name = "train",
    .summary = "train an LSTM encoder-decoder",
    .usage = "usage: seqlite train DB [options]\n"
             "       seqlite train DB --resume [--steps N | --epochs N] [--time-limit M] [--threads T]\n"
             "  Trains on the train split of DB with its newest vocabulary; validates on the valid split\n"
             "  (perplexity, and BLEU / chrF of greedy translations as seqlite eval computes them);\n"
             "  saves checkpoints in DB. Progress on stderr, a summary line on stdout.\n"
             "  Ctrl-C saves a checkpoint and stops (continue with --resume).\n"
             "  --layers N          LSTM layers (default 2)\n"
             "  --emb N             embedding width (default 256)\n"
             "  --hidden N          LSTM width (default 256)\n"
             "  --dropout P         dropout rate (default 0.2)\n"
             "  --batch N           sentences per batch (default 64)\n"
             "  --batch-tokens N    padded tokens per batch instead (rows x longest side)\n"
             "  --epochs N          passes over the data (default 10)\n"
             "  --steps N           stop after N updates instead\n"
             "  --lr X              Adam learning rate (default 0.003)\n"
             "  --lr-decay F        multiply the lr by F every --lr-decay-every steps after step\n"
             "                      --lr-decay-start (default 1: constant lr; Sutskever et al.: 0.5)\n"
             "  --lr-decay-start N  (default 0)\n"
             "  --lr-decay-every N  (default: one epoch of batches)\n"
             "  --clip X            gradient norm clip (default 5)\n"
             "  --seed N            initialisation, batching and dropout seed (default 1)\n"
             "  --threads N         OpenMP threads (default: all cores); results do not depend on it\n"
             "  --shards N          pieces each batch is cut into (default 4); results depend on it\n"
             "  --reverse-source    read sources backwards (default); --no-reverse-source: forwards\n"
             "  --max-len N         leave out pairs with a side longer than N tokens (default 64)\n"
             "  --valid-every N     validation every N steps (default 500; 0: at the end)\n"
             "  --valid-max N       perplexity on the first N valid pairs only (default all)\n"
             "  --valid-bleu N      BLEU and chrF on the first N valid pairs, translated (default 200;\n"
             "                      0: none)\n"
             "  --valid-beam K      beam for those translations (default 1: greedy)\n"
             "  --best-by M         ppl (default: lowest validation perplexity) or bleu (highest BLEU):\n"
             "                      the checkpoint kept as best, which translate and eval use\n"
             "  --save-every N      checkpoint every N steps (default 500; 0: at the end)\n"
             "  --log-every N       progress line and train_log row every N steps (default 50)\n"
             "  --keep N            newest checkpoints kept, besides the best (default 3)\n"
             "  --time-limit M      stop cleanly with a checkpoint after M minutes\n"
             "  --resume            continue the newest run (its options; may change steps, epochs,\n"
             "                      time limit, threads, intervals)\n"
             "  --name NAME         run name (default run-ID)\n",
    .run = run,
};
