/* tests/test_train.c: checkpoints (round trip, corrupt rows, pruning, SQL view of the rows), the training
 * loop (1 vs 2 threads bit-identical, resume equals uninterrupted, stop request, bad options, the stop on a
 * NaN/Inf loss), early stopping and lr decay on a stalled validation (also across a resume), the
 * option table (its invariants, the stored config read back on resume), the progress lines (cut to a
 * width, JSON) and the `seqlite train` command. Each test builds a tiny database (synthetic copy-task pairs, a 300-token
 * vocabulary) in a temporary directory. The learn_ suite trains a small model to copy (slower). */
#include <criterion/criterion.h>

#include <fcntl.h>
#include <pthread.h>
#include <math.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "corpus/db.h"
#include "corpus/vocab_store.h"
#include "nn/autocast.h"
#include "nn/gemm_bf16.h"
#include "nn/params.h"
#include "tests/helpers.h"
#include "train/checkpoint.h"
#include "train/options.h"
#include "train/progress.h"
#include "train/train.h"
#include "util/err.h"
#include "util/rng.h"
#include "util/sbuf.h"

static const char *const WORDS[] = {"red", "blue", "green", "cat", "dog", "sun", "moon", "tree", "fish", "bird",
                                    "rock", "star"};
#define NWORDS 12

/* A sentence of 2..max_words words drawn from r. */
static void sentence(struct rng *r, char *buf, size_t cap, int max_words)
{
    int n = 2 + (int)rng_below(r, (uint64_t)(max_words - 1));
    size_t len = 0;
    buf[0] = 0;
    for (int i = 0; i < n; i++)
        len += (size_t)snprintf(buf + len, cap - len, "%s%s", i ? " " : "", WORDS[rng_below(r, NWORDS)]);
}

static void add_corpus(struct db *db, const char *name, const char *split, int n, uint64_t seed, int max_words)
{
    struct rng r;
    rng_seed(&r, seed);
    int64_t cid;
    cr_assert_eq(db_begin(db), 0);
    cr_assert_eq(db_corpus_create(db, name, split, "xx", "yy", "a.xx", "a.yy", &cid), 0, "%s", sl_errmsg());
    char buf[256];
    for (int i = 0; i < n; i++) {
        sentence(&r, buf, sizeof buf, max_words);
        /* copy task: the target is the source */
        cr_assert_eq(db_pair_insert(db, cid, i + 1, buf, strlen(buf), buf, strlen(buf)), 0);
    }
    cr_assert_eq(db_corpus_finish(db, cid, n, 0), 0, "%s", sl_errmsg());
    cr_assert_eq(db_commit(db), 0);
}

static int no_valid; /* make_db leaves out the valid split */

/* dir/name: n train pairs, 20 valid pairs, a joint vocabulary of 300 tokens. */
static char *make_db(const char *dir, const char *name, int n, int with_vocab)
{
    char *path = th_path(dir, name);
    struct db *db;
    cr_assert_eq(db_open(path, DB_CREATE, &db), 0, "%s", sl_errmsg());
    add_corpus(db, "train", "train", n, 7, 6);
    if (!no_valid)
        add_corpus(db, "valid", "valid", 20, 8, 6);
    if (with_vocab) {
        struct corpus_vocab_opts vo = {.size = 300, .mode = CORPUS_VOCAB_JOINT, .min_count = 1, .norm = TOK_NORM_NFKC};
        struct corpus_vocab_result vr;
        cr_assert_eq(corpus_vocab_learn(db, &vo, &vr), 0, "%s", sl_errmsg());
    }
    db_close(db);
    return path;
}

static void tiny_opts(struct train_opts *o)
{
    train_opts_init(o);
    o->layers = 2;
    o->emb = 8;
    o->hidden = 12;
    o->dropout = 0.1; /* dropout on: the per-shard streams must resume exactly too */
    o->batch = 10;
    o->lr = 0.01;
    o->log_every = 1;
    o->valid_every = 0;
    o->save_every = 0;
    o->shards = 3;
    o->threads = 1;
}

struct losses {
    double v[64], lr[64], gnorm[64];
    int64_t step[64];
    int n;
};

static int collect(void *ctx, const struct db_train_log *l)
{
    struct losses *L = ctx;
    if (L->n < 64) {
        L->v[L->n] = l->loss;
        L->lr[L->n] = l->lr;
        L->gnorm[L->n] = l->grad_norm;
        L->step[L->n] = l->step;
        L->n++;
    }
    return 0;
}

static void read_losses(struct db *db, int64_t run_id, struct losses *L)
{
    memset(L, 0, sizeof *L);
    cr_assert_eq(db_train_log_foreach(db, run_id, collect, L), 0, "%s", sl_errmsg());
}

/* Trains path with o; returns the run's losses and (malloc'd) final parameters. */
static float *train_and_read(const char *path, const struct train_opts *o, struct losses *L, size_t *n,
                             struct train_result *res)
{
    struct db *db;
    cr_assert_eq(db_open(path, 0, &db), 0);
    struct train_result r;
    int rc = train_run(db, o, &r);
    cr_assert_eq(rc, 0, "train_run: %s", sl_errmsg());
    if (res)
        *res = r;
    read_losses(db, r.run_id, L);
    struct ckpt_model m;
    cr_assert_eq(ckpt_model_load(db, "last", &m), 0, "%s", sl_errmsg());
    *n = m.model.table.total;
    float *w = malloc(*n * sizeof *w);
    memcpy(w, m.w, *n * sizeof *w);
    ckpt_model_free(&m);
    db_close(db);
    return w;
}

TestSuite(train, .timeout = 120);

/* Two runs on fresh copies of the same small corpus, with options a and b: their logs and final parameters. */
struct two_runs {
    struct losses L[2];
    float *w[2];
    size_t n;
};

static void train_two(const struct train_opts *oa, const struct train_opts *ob, struct two_runs *r)
{
    char *dir = th_tmpdir();
    const struct train_opts *o[2] = {oa, ob};
    size_t n[2];
    for (int i = 0; i < 2; i++) {
        char *path = make_db(dir, i ? "b.db" : "a.db", 60, 1);
        r->w[i] = train_and_read(path, o[i], &r->L[i], &n[i], NULL);
        free(path);
    }
    cr_assert_eq(n[0], n[1]);
    r->n = n[0];
    th_rmdir(dir);
    free(dir);
}

static void two_runs_free(struct two_runs *r) { free(r->w[0]), free(r->w[1]); }

/* 5 steps of options a on 1 and on 2 threads: the same losses and parameters, and the loss goes down. */
static void assert_threads_identical(struct train_opts *a)
{
    struct train_opts b;
    a->steps = 5;
    b = *a;
    b.threads = 2;
    struct two_runs r;
    train_two(a, &b, &r);
    cr_assert_eq(r.L[0].n, 5);
    cr_assert_eq(r.L[1].n, 5);
    for (int i = 0; i < 5; i++)
        cr_assert(r.L[0].v[i] == r.L[1].v[i], "step %d: %.17g vs %.17g", i + 1, r.L[0].v[i], r.L[1].v[i]);
    cr_assert(r.L[0].v[4] < r.L[0].v[0], "the loss goes down (%g -> %g)", r.L[0].v[0], r.L[0].v[4]);
    cr_assert(memcmp(r.w[0], r.w[1], r.n * sizeof *r.w[0]) == 0, "final parameters differ");
    two_runs_free(&r);
}

Test(train, threads_1_and_2_identical)
{
    struct train_opts a;
    tiny_opts(&a);
    assert_threads_identical(&a);
}

/* The attention model with the bidirectional encoder and label smoothing: the same on 1 and 2 threads, and
 * a resume repeats the uninterrupted run exactly. */
static void tiny_attention(struct train_opts *o)
{
    tiny_opts(o);
    o->attention = 2; /* general */
    o->encoder = 1;   /* bi */
    o->label_smoothing = 0.1;
}

Test(train, attention_bidirectional_threads_1_and_2_identical)
{
    struct train_opts a;
    tiny_attention(&a);
    assert_threads_identical(&a);
}

Test(train, attention_bidirectional_resume_equals_uninterrupted_and_architecture_is_kept)
{
    char *dir = th_tmpdir();
    char *a = make_db(dir, "a.db", 45, 1), *b = make_db(dir, "b.db", 45, 1);
    struct train_opts o;
    tiny_attention(&o);
    o.threads = 2;
    o.steps = 6;
    struct losses La, Lb;
    size_t na, nb;
    float *wa = train_and_read(a, &o, &La, &na, NULL);
    o.steps = 3;
    free(train_and_read(b, &o, &Lb, &nb, NULL));
    struct db *db;
    cr_assert_eq(db_open(b, 0, &db), 0);
    struct train_opts r;
    train_opts_init(&r);
    r.resume = 1;
    r.attention = 0; /* another architecture is refused, naming the flag */
    struct train_result res;
    cr_assert_eq(train_run(db, &r, &res), SL_EINVAL);
    cr_assert(strstr(sl_errmsg(), "--attention none conflicts"), "%s", sl_errmsg());
    train_opts_init(&r);
    r.resume = 1;
    r.encoder = 0;
    cr_assert_eq(train_run(db, &r, &res), SL_EINVAL);
    cr_assert(strstr(sl_errmsg(), "--encoder uni conflicts"), "%s", sl_errmsg());
    db_close(db);
    train_opts_init(&r);
    r.resume = 1;
    r.steps = 6;
    float *wb = train_and_read(b, &r, &Lb, &nb, &res);
    cr_assert_eq(res.steps_done, 6);
    cr_assert_eq(La.n, 6);
    cr_assert_eq(Lb.n, 6);
    for (int i = 0; i < 6; i++)
        cr_assert(La.v[i] == Lb.v[i], "step %d: %.17g vs %.17g", i + 1, La.v[i], Lb.v[i]);
    cr_assert_eq(na, nb);
    cr_assert(memcmp(wa, wb, na * sizeof *wa) == 0, "final parameters differ after resume");
    /* the checkpoint loads back as the same architecture */
    cr_assert_eq(db_open(b, 0, &db), 0);
    struct ckpt_model cm;
    cr_assert_eq(ckpt_model_load(db, "last", &cm), 0, "%s", sl_errmsg());
    cr_assert_eq(cm.model.cfg.attention, ATTN_GENERAL);
    cr_assert_eq(cm.model.cfg.bidirectional, 1);
    cr_assert(memcmp(cm.w, wb, nb * sizeof *wb) == 0);
    ckpt_model_free(&cm);
    db_close(db);
    free(wa), free(wb), free(a), free(b);
    th_rmdir(dir);
    free(dir);
}

/* The last step falls on a --save-every boundary and not on a validation: the final validation is still
 * stored with the last checkpoint, which becomes the best; with --valid-every 0 as well. */
Test(train, final_validation_is_attached_to_the_last_checkpoint)
{
    for (int every = 0; every <= 3; every += 3) {
        char *dir = th_tmpdir();
        char *path = make_db(dir, "a.db", 40, 1);
        struct train_opts o;
        tiny_opts(&o);
        o.steps = 4;
        o.save_every = 2;
        o.valid_every = every;
        o.valid_bleu = 0;
        struct losses L;
        size_t n;
        struct train_result res;
        free(train_and_read(path, &o, &L, &n, &res));
        struct db *db;
        cr_assert_eq(db_open(path, 0, &db), 0);
        int64_t best = 0, last = 0;
        cr_assert_eq(db_ckpt_find(db, res.run_id, "last", &last), 0, "%s", sl_errmsg());
        cr_assert_eq(db_ckpt_find(db, res.run_id, "best", &best), 0, "valid-every %d: no best checkpoint", every);
        struct db_checkpoint c;
        cr_assert_eq(db_ckpt_get(db, last, &c), 0);
        cr_assert_eq(c.step, 4);
        cr_assert(isfinite(c.valid_ppl), "valid-every %d: the step-4 checkpoint has no perplexity", every);
        cr_assert_eq(best, last, "valid-every %d: best %lld, last %lld", every, (long long)best, (long long)last);
        db_close(db);
        free(path);
        th_rmdir(dir);
        free(dir);
    }
}

Test(train, shards_change_result_but_not_threads)
{
    /* the shard count is part of the computation: another count gives (slightly) other numbers */
    struct train_opts a, b;
    tiny_opts(&a);
    a.steps = 3;
    a.dropout = 0;
    b = a;
    b.shards = 1;
    struct two_runs r;
    train_two(&a, &b, &r);
    /* step 1 has the same parameters: the same loss up to summation order */
    cr_assert(fabs(r.L[0].v[0] - r.L[1].v[0]) < 1e-5 * fabs(r.L[0].v[0]));
    cr_assert(memcmp(r.w[0], r.w[1], r.n * sizeof *r.w[0]) != 0);
    two_runs_free(&r);
}

Test(train, clipping_scales_the_update_and_logs_the_norm_before_it)
{
    /* one step with and without clipping to a tiny norm: Adam's first update is about lr * g / (|g| + eps),
     * so an unclipped step moves parameters by about lr and a gradient clipped to 1e-12 by almost nothing */
    struct train_opts a, b;
    tiny_opts(&a);
    a.steps = 1;
    a.dropout = 0;
    a.clip = 1e30;
    a.threads = 2;
    b = a;
    b.clip = 1e-12;
    struct two_runs r;
    train_two(&a, &b, &r);
    cr_assert(r.L[0].gnorm[0] == r.L[1].gnorm[0] && r.L[0].gnorm[0] > 1e-3, "logged norm %g vs %g (before clipping)",
              r.L[0].gnorm[0], r.L[1].gnorm[0]);
    double maxd = 0;
    for (size_t i = 0; i < r.n; i++)
        maxd = fmax(maxd, fabs((double)r.w[0][i] - r.w[1][i]));
    cr_assert(maxd > 0.5 * a.lr && maxd < 1.5 * a.lr, "max parameter difference %g, lr %g", maxd, a.lr);
    two_runs_free(&r);
}

Test(train, resume_equals_uninterrupted)
{
    char *dir = th_tmpdir();
    char *a = make_db(dir, "a.db", 45, 1), *b = make_db(dir, "b.db", 45, 1);
    struct train_opts o;
    tiny_opts(&o);
    o.threads = 2;
    o.steps = 8; /* 45 pairs / 10 per batch = 5 batches: crosses an epoch boundary */
    o.lr_decay = 0.5; /* halved after steps 2, 4 and 6: the resume must follow the schedule */
    o.lr_decay_start = 2;
    o.lr_decay_every = 2;
    struct losses La, Lb;
    size_t na, nb;
    float *wa = train_and_read(a, &o, &La, &na, NULL);
    o.steps = 3;
    free(train_and_read(b, &o, &Lb, &nb, NULL));
    cr_assert_eq(Lb.n, 3);
    struct train_opts r;
    train_opts_init(&r);
    r.resume = 1;
    r.steps = 8;
    r.threads = 1; /* another thread count on resume is allowed and changes nothing */
    struct train_result res;
    float *wb = train_and_read(b, &r, &Lb, &nb, &res);
    cr_assert_eq(res.steps_done, 8);
    cr_assert_str_eq(res.status, "done");
    cr_assert_eq(La.n, 8);
    cr_assert_eq(Lb.n, 8);
    static const double lr[8] = {0.01, 0.01, 0.005, 0.005, 0.0025, 0.0025, 0.00125, 0.00125};
    for (int i = 0; i < 8; i++) {
        cr_assert(La.v[i] == Lb.v[i], "step %lld: %.17g vs %.17g", (long long)La.step[i], La.v[i], Lb.v[i]);
        cr_assert_float_eq(La.lr[i], lr[i], 1e-12, "step %d: lr %g", i + 1, La.lr[i]);
        cr_assert_float_eq(Lb.lr[i], lr[i], 1e-12, "step %d: lr %g after resume", i + 1, Lb.lr[i]);
    }
    cr_assert_eq(na, nb);
    cr_assert(memcmp(wa, wb, na * sizeof *wa) == 0, "final parameters differ after resume");
    /* the run row: one run, done, 8 steps */
    struct db *db;
    cr_assert_eq(db_open(b, 0, &db), 0);
    struct db_run run;
    cr_assert_eq(db_run_get(db, res.run_id, &run), 0);
    cr_assert_eq(res.run_id, 1);
    cr_assert_str_eq(run.status, "done");
    cr_assert_eq(run.steps_done, 8);
    cr_assert_eq(run.hidden, 12);
    cr_assert_eq(run.reverse_source, 1);
    db_run_clear(&run);
    db_close(db);
    free(wa), free(wb), free(a), free(b);
    th_rmdir(dir);
    free(dir);
}

Test(train, resume_conflicting_option_is_refused)
{
    char *dir = th_tmpdir();
    char *a = make_db(dir, "a.db", 30, 1);
    struct train_opts o;
    tiny_opts(&o);
    o.steps = 2;
    struct losses L;
    size_t n;
    free(train_and_read(a, &o, &L, &n, NULL));
    struct db *db;
    cr_assert_eq(db_open(a, 0, &db), 0);
    struct train_opts r;
    train_opts_init(&r);
    r.resume = 1;
    r.hidden = 64;
    struct train_result res;
    cr_assert_eq(train_run(db, &r, &res), SL_EINVAL);
    cr_assert(strstr(sl_errmsg(), "--hidden 64 conflicts"), "%s", sl_errmsg());
    db_close(db);
    free(a);
    th_rmdir(dir);
    free(dir);
}

static volatile sig_atomic_t stop_now;

static void stop_after_2(void *ctx, const struct train_progress *p)
{
    (void)ctx;
    if (p->event == TRAIN_EV_LOG && p->step >= 2)
        stop_now = 1;
}

Test(train, stop_request_saves_and_marks_stopped)
{
    char *dir = th_tmpdir();
    char *a = make_db(dir, "a.db", 30, 1);
    struct train_opts o;
    tiny_opts(&o);
    o.steps = 50;
    stop_now = 0;
    o.stop = &stop_now;
    o.progress = stop_after_2;
    struct db *db;
    cr_assert_eq(db_open(a, 0, &db), 0);
    struct train_result r;
    cr_assert_eq(train_run(db, &o, &r), 0, "%s", sl_errmsg());
    cr_assert_str_eq(r.status, "stopped");
    cr_assert_eq(r.steps_done, 2);
    struct db_run run;
    cr_assert_eq(db_run_get(db, r.run_id, &run), 0);
    cr_assert_str_eq(run.status, "stopped");
    cr_assert_eq(run.steps_done, 2);
    cr_assert(run.ended_at[0]);
    db_run_clear(&run);
    struct ckpt_info ci;
    cr_assert_eq(ckpt_info_get(db, r.last_checkpoint_id, &ci), 0);
    cr_assert_eq(ci.step, 2);
    cr_assert_eq(ci.batch, 2);
    /* valid ppl measured at the end and stored as a metric */
    double v;
    int64_t step;
    cr_assert_eq(db_metric_latest(db, r.run_id, "valid", "ppl", &v, &step), 0);
    cr_assert_eq(step, 2);
    cr_assert(v > 1 && v == r.valid_ppl);
    db_close(db);
    free(a);
    th_rmdir(dir);
    free(dir);
}

struct notes {
    int n_valid, saw_skip_note;
};

static void count_events(void *ctx, const struct train_progress *p)
{
    struct notes *n = ctx;
    n->n_valid += p->event == TRAIN_EV_VALID;
    n->saw_skip_note |= p->event == TRAIN_EV_NOTE && strstr(p->note, "no valid split") != NULL;
}

Test(train, without_valid_split_validation_is_skipped)
{
    char *dir = th_tmpdir();
    no_valid = 1;
    char *a = make_db(dir, "a.db", 30, 1);
    no_valid = 0;
    struct train_opts o;
    tiny_opts(&o);
    o.steps = 4;
    o.valid_every = 2;
    struct notes n = {0, 0};
    o.progress = count_events;
    o.progress_ctx = &n;
    struct db *db;
    cr_assert_eq(db_open(a, 0, &db), 0);
    struct train_result r;
    cr_assert_eq(train_run(db, &o, &r), 0, "%s", sl_errmsg());
    cr_assert_str_eq(r.status, "done");
    cr_assert(isnan(r.valid_ppl));
    cr_assert_eq(n.n_valid, 0);
    cr_assert(n.saw_skip_note);
    double v;
    cr_assert_eq(db_metric_latest(db, r.run_id, "valid", "ppl", &v, NULL), SL_ENOTFOUND);
    /* the final checkpoint exists; without validation "best" falls back to the newest */
    int64_t id;
    cr_assert_eq(ckpt_find(db, r.run_id, "best", &id), 0);
    cr_assert_eq(id, r.last_checkpoint_id);
    db_close(db);
    free(a);
    th_rmdir(dir);
    free(dir);
}

Test(train, no_vocabulary_or_bad_options)
{
    char *dir = th_tmpdir();
    char *a = make_db(dir, "a.db", 10, 0);
    struct db *db;
    cr_assert_eq(db_open(a, 0, &db), 0);
    struct train_opts o;
    tiny_opts(&o);
    struct train_result r;
    cr_assert_eq(train_run(db, &o, &r), SL_ENOTFOUND);
    cr_assert(strstr(sl_errmsg(), "vocab"), "%s", sl_errmsg());
    tiny_opts(&o);
    o.dropout = 1.5;
    cr_assert_eq(train_run(db, &o, &r), SL_EINVAL);
    tiny_opts(&o);
    o.resume = 1;
    cr_assert_eq(train_run(db, &o, &r), SL_ENOTFOUND, "no run to resume");
    db_close(db);
    free(a);
    th_rmdir(dir);
    free(dir);
}

/* ---- the option table ---- */

static void set_number(const struct train_opt *d, struct train_opts *o, double v)
{
    if (d->type == TRAIN_OPT_DOUBLE)
        *(double *)((char *)o + d->field) = v;
    else
        *(int64_t *)((char *)o + d->field) = (int64_t)v;
}

Test(train, option_table_is_consistent)
{
    cr_assert_gt(train_opt_count, 20);
    for (size_t i = 0; i < train_opt_count; i++) {
        const struct train_opt *d = &train_opt_table[i];
        cr_assert(d->flag && d->help && d->help[0], "row %zu", i);
        cr_assert_eq(train_opt_find(d->flag), d, "--%s: one row per flag", d->flag);
        cr_assert_eq(d->arg == NULL, d->type == TRAIN_OPT_BOOL, "--%s: a value name unless BOOL", d->flag);
        for (size_t j = 0; j < i; j++)
            cr_assert(!d->key || !train_opt_table[j].key || strcmp(d->key, train_opt_table[j].key) != 0,
                      "config key %s twice", d->key);
        cr_assert_eq(d->resume == TRAIN_RESUME_FREE, !d->key && !d->column, "--%s: stored unless FREE", d->flag);
        cr_assert(!d->key || d->type != TRAIN_OPT_STRING, "--%s: strings are not config members", d->flag);
        if (d->def_from)
            cr_assert(train_opt_find(d->def_from) && train_opt_find(d->def_from)->type == TRAIN_OPT_INT,
                      "--%s: def_from names an integer option", d->flag);
        struct train_opts o;
        train_opts_init(&o);
        cr_assert_not(train_opt_is_set(d, &o), "--%s: unset after train_opts_init", d->flag);
        switch (d->type) {
        case TRAIN_OPT_INT:
        case TRAIN_OPT_DOUBLE:
            cr_assert(d->lo <= d->min && d->min <= d->max && d->max <= d->hi, "--%s: the command line's range lies "
                      "inside the library's", d->flag);
            cr_assert(!(d->open & TRAIN_OPEN_LO) || d->min > d->lo, "--%s", d->flag);
            cr_assert(!(d->open & TRAIN_OPEN_HI) || d->max < d->hi, "--%s", d->flag);
            set_number(d, &o, d->def);
            cr_assert_eq(train_opts_check(&o), 0, "--%s: the default is accepted: %s", d->flag, sl_errmsg());
            set_number(d, &o, d->lo);
            if (d->open & TRAIN_OPEN_LO)
                cr_assert_eq(train_opts_check(&o), SL_EINVAL, "--%s: lo itself is refused", d->flag);
            if (isfinite(d->hi)) {
                set_number(d, &o, d->hi + 1);
                cr_assert_eq(train_opts_check(&o), SL_EINVAL, "--%s: above hi", d->flag);
                cr_assert(strstr(sl_errmsg(), d->flag), "%s", sl_errmsg());
            }
            break;
        case TRAIN_OPT_BOOL:
            set_number(d, &o, 2);
            cr_assert_eq(train_opts_check(&o), SL_EINVAL, "--%s", d->flag);
            break;
        case TRAIN_OPT_CHOICE:
            cr_assert(d->choices && d->choices[0] && d->choices[(size_t)d->def], "--%s", d->flag);
            break;
        case TRAIN_OPT_STRING:
            cr_assert(d->lo <= d->min && d->max <= d->hi, "--%s", d->flag);
            break;
        }
    }
}

Test(train, option_defaults_and_config_json)
{
    struct train_opts o;
    train_opts_init(&o);
    train_opts_fill_defaults(&o);
    cr_assert_eq(o.layers, 2);
    cr_assert_eq(o.emb, 256);
    cr_assert(o.dropout == 0.2 && o.lr == 0.003 && o.clip == 5.0 && o.lr_decay == 1.0);
    cr_assert_eq(o.batch, 64);
    cr_assert_eq(o.batch_tokens, 0);
    cr_assert_eq(o.steps, 0);
    cr_assert_eq(o.epochs, 10);
    cr_assert_eq(o.reverse_source, 1);
    cr_assert_eq(o.valid_bleu, 200);
    cr_assert_eq(o.best_by_bleu, 0);
    cr_assert_eq(o.threads, 0);
    cr_assert_null(o.name);
    cr_assert_eq(train_opts_check(&o), 0, "%s", sl_errmsg());
    /* a token budget bounds the sentences per batch unless --batch is given */
    train_opts_init(&o);
    o.batch_tokens = 200000;
    train_opts_fill_defaults(&o);
    cr_assert_eq(o.batch, 200000);
    cr_assert_eq(train_opts_check(&o), 0, "%s", sl_errmsg());
    /* relations between options */
    o.best_by_bleu = 1;
    o.valid_bleu = 0;
    cr_assert_eq(train_opts_check(&o), SL_EINVAL);
    cr_assert(strstr(sl_errmsg(), "--valid-bleu"), "%s", sl_errmsg());
    o.best_by_bleu = 0;
    o.lr = 10;
    cr_assert_eq(train_opts_check(&o), SL_EINVAL);
    cr_assert_str_eq(sl_errmsg(), "--lr: 10 is not in (0, 10)");
    o.lr = 0.01;
    o.clip = 0;
    cr_assert_eq(train_opts_check(&o), SL_EINVAL);
    cr_assert_str_eq(sl_errmsg(), "--clip: 0 is not > 0");
    o.clip = 1e-12; /* the library takes what the command line does not (tests clip to nothing) */
    cr_assert_eq(train_opts_check(&o), 0, "%s", sl_errmsg());
    struct sbuf b;
    sbuf_init(&b);
    cr_assert_eq(train_opts_config_json(&o, "\"x\":1", &b), 0);
    cr_assert(strncmp(b.data, "{\"layers\":2,\"emb\":256,", 22) == 0, "%s", b.data);
    cr_assert(strstr(b.data, ",\"batch\":200000,"), "%s", b.data);
    cr_assert(strstr(b.data, ",\"clip\":9.9999999999999998e-13,"), "%s", b.data);
    cr_assert(strstr(b.data, ",\"best_by_bleu\":0,"), "%s", b.data);
    cr_assert_null(strstr(b.data, "threads"), "not stored: %s", b.data);
    cr_assert(strlen(b.data) > 6 && strcmp(b.data + strlen(b.data) - 7, ",\"x\":1}") == 0, "%s", b.data);
    sbuf_free(&b);
}

/* Stores o (resolved) as a run of db the way train_run does; returns its id. */
static int64_t store_run(struct db *db, const struct train_opts *o, const char *config)
{
    struct db_run row;
    memset(&row, 0, sizeof row);
    train_opts_run_columns(o, &row);
    struct sbuf b;
    sbuf_init(&b);
    cr_assert_eq(train_opts_config_json(o, "\"src_eos\":0", &b), 0);
    row.config = config ? (char *)config : b.data;
    int64_t id;
    cr_assert_eq(db_run_create(db, &row, &id), 0, "%s", sl_errmsg());
    sbuf_free(&b);
    return id;
}

/* train_opts_resume of the newest run of db on r; returns its status. */
static int resume_on(struct db *db, int64_t id, struct train_opts *r)
{
    struct db_run run;
    cr_assert_eq(db_run_get(db, id, &run), 0);
    int rc = train_opts_resume(db, &run, r);
    db_run_clear(&run);
    return rc;
}

/* A new empty database r.db in a new directory (*dir, *path: malloc'd). */
static struct db *empty_db(char **dir, char **path)
{
    *dir = th_tmpdir();
    *path = th_path(*dir, "r.db");
    struct db *db;
    cr_assert_eq(db_open(*path, DB_CREATE, &db), 0, "%s", sl_errmsg());
    return db;
}

Test(train, stored_options_resume_exactly_and_conflicts_name_the_flag)
{
    char *dir, *path;
    struct db *db = empty_db(&dir, &path);
    struct train_opts o;
    train_opts_init(&o);
    o.dropout = 0.1 + 0.2; /* doubles without a short decimal form */
    o.lr = 1.0 / 3.0;
    o.clip = 1e-12;
    o.lr_decay = 0.7;
    o.seed = ((int64_t)1 << 53) + 1; /* not a double: must stay an integer */
    o.reverse_source = 0;
    o.best_by_bleu = 1;
    o.valid_bleu = 7;
    o.keep = 9;
    o.steps = 77;
    o.name = "r1";
    train_opts_fill_defaults(&o);
    cr_assert_eq(train_opts_check(&o), 0, "%s", sl_errmsg());
    int64_t id = store_run(db, &o, NULL);
    struct db_run run;
    cr_assert_eq(db_run_get(db, id, &run), 0);
    cr_assert(run.dropout == o.dropout && run.lr == o.lr && run.reverse_source == 0 && run.seed == o.seed);
    cr_assert_str_eq(run.name, "r1");
    db_run_clear(&run);
    /* nothing given: every stored option is the run's, bit for bit */
    struct train_opts r;
    train_opts_init(&r);
    cr_assert_eq(resume_on(db, id, &r), 0, "%s", sl_errmsg());
    for (size_t i = 0; i < train_opt_count; i++) {
        const struct train_opt *d = &train_opt_table[i];
        if (d->type == TRAIN_OPT_STRING || d->resume == TRAIN_RESUME_FREE) {
            cr_assert_not(train_opt_is_set(d, &r), "--%s is not taken from the run", d->flag);
            continue;
        }
        cr_assert(memcmp((char *)&r + d->field, (char *)&o + d->field, 8) == 0, "--%s differs after resume",
                  d->flag);
    }
    /* given values: equal ones pass, others name the flag and the run's value */
    static const struct {
        const char *flag;
        double v;
        const char *name;
        const char *msg;
    } cases[] = {
        {"hidden", 64, NULL, "--hidden 64 conflicts with run 1 (hidden 256); resume without it"},
        {"dropout", 0.5, NULL, "--dropout 0.5 conflicts with run 1 (dropout 0.3); resume without it"},
        {"reverse-source", 1, NULL, "--reverse-source conflicts with run 1 (--no-reverse-source); resume without it"},
        {"best-by", 0, NULL, "--best-by ppl conflicts with run 1 (best-by bleu); resume without it"},
        {"name", 0, "other", "--name other conflicts with run 1 (name r1); resume without it"},
        {"lr-decay", 0.7, NULL, NULL},
        {"name", 0, "r1", NULL},
        {"keep", 2, NULL, NULL}, /* may change */
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        const struct train_opt *d = train_opt_find(cases[c].flag);
        cr_assert_not_null(d);
        train_opts_init(&r);
        if (d->type == TRAIN_OPT_STRING)
            r.name = cases[c].name;
        else
            set_number(d, &r, cases[c].v);
        int rc = resume_on(db, id, &r);
        if (cases[c].msg) {
            cr_assert_eq(rc, SL_EINVAL, "--%s", cases[c].flag);
            cr_assert_str_eq(sl_errmsg(), cases[c].msg);
        } else {
            cr_assert_eq(rc, 0, "--%s: %s", cases[c].flag, sl_errmsg());
        }
    }
    cr_assert_eq(r.keep, 2);
    /* the limits come as a pair: one given, the other is not the run's */
    train_opts_init(&r);
    r.epochs = 3;
    cr_assert_eq(resume_on(db, id, &r), 0);
    cr_assert_eq(r.epochs, 3);
    cr_assert_eq(r.steps, TRAIN_UNSET);
    db_close(db);
    th_rmdir(dir);
    free(dir), free(path);
}

Test(train, resume_reads_older_and_damaged_configs)
{
    char *dir, *path;
    struct db *db = empty_db(&dir, &path);
    struct train_opts o;
    train_opts_init(&o);
    train_opts_fill_defaults(&o);
    /* a run from before validation BLEU and the lr schedule: those members are missing */
    int64_t old = store_run(db, &o, "{\"layers\":3,\"dropout\":0.25,\"lr\":1}");
    struct train_opts r;
    train_opts_init(&r);
    cr_assert_eq(resume_on(db, old, &r), 0, "%s", sl_errmsg());
    cr_assert_eq(r.layers, 3);
    cr_assert(r.dropout == 0.25 && r.lr == 1.0, "an integer member read as a double");
    cr_assert_eq(r.valid_bleu, 0, "older runs did not translate");
    cr_assert(r.lr_decay == 1.0);
    cr_assert_eq(r.shards, 4);
    /* members read one by one */
    struct db_json_field f[] = {{.key = "layers"}, {.key = "dropout"}, {.key = "nope"}};
    cr_assert_eq(db_run_config_get(db, old, f, 3), 0, "%s", sl_errmsg());
    cr_assert(f[0].type == DB_JSON_INTEGER && f[0].i == 3 && f[0].d == 3.0);
    cr_assert(f[1].type == DB_JSON_REAL && f[1].d == 0.25);
    cr_assert_eq(f[2].type, DB_JSON_ABSENT);
    struct db_json_field bad_key = {.key = "a.b"};
    cr_assert_eq(db_run_config_get(db, old, &bad_key, 1), SL_EINVAL);
    cr_assert_eq(db_run_config_get(db, 999, f, 1), SL_ENOTFOUND);
    /* damaged configs are refused, naming the run */
    /* (the schema refuses text that is not JSON at all) */
    static const char *const damaged[] = {"{\"layers\":\"two\"}", "{\"lr\":[1]}", "[1, 2]", "\"text\""};
    for (size_t i = 0; i < sizeof damaged / sizeof damaged[0]; i++) {
        int64_t id = store_run(db, &o, damaged[i]);
        train_opts_init(&r);
        cr_assert_eq(resume_on(db, id, &r), SL_ECORRUPT, "%s", damaged[i]);
        char want[32];
        snprintf(want, sizeof want, "run %lld", (long long)id);
        cr_assert(strstr(sl_errmsg(), want), "%s: %s", damaged[i], sl_errmsg());
    }
    db_close(db);
    th_rmdir(dir);
    free(dir), free(path);
}

Test(train, help_documents_every_option)
{
    char *out = NULL, *help = NULL, *err = NULL;
    cr_assert_eq(th_run("train --help", NULL, &out, NULL), 0);
    cr_assert_eq(th_run("help train", NULL, &help, NULL), 0);
    cr_assert_str_eq(out, help);
    cr_assert(strncmp(out, "usage: seqlite train DB", 23) == 0, "%s", out);
    cr_assert_null(strstr(out, "{default}"));
    for (size_t i = 0; i < train_opt_count; i++) {
        const struct train_opt *d = &train_opt_table[i];
        char line[96], def[32];
        snprintf(line, sizeof line, "\n  --%s%s%s ", d->flag, d->arg ? " " : "", d->arg ? d->arg : "");
        cr_assert(strstr(out, line), "no usage line for --%s", d->flag);
        train_opt_format_default(d, def, sizeof def);
        if (strstr(d->help, "{default}")) {
            snprintf(line, sizeof line, "(default %s", def);
            cr_assert(strstr(strstr(out, d->help[0] == '(' ? line : d->flag), line), "--%s: its default", d->flag);
        }
        if (d->type == TRAIN_OPT_BOOL) {
            snprintf(line, sizeof line, "--no-%s", d->flag);
            cr_assert(strstr(out, line), "%s", line);
        }
    }
    cr_assert(strstr(out, "\n  --resume "), "%s", out);
    cr_assert(strstr(out, "--lr X              Adam learning rate (default 0.003)\n"), "%s", out);
    cr_assert(strstr(out, "(default 200;\n                      0: none)"), "%s", out);
    free(out), free(help);
    /* flags the table turns into more than a number */
    cr_assert_eq(th_run("train x.db --best-by median", NULL, NULL, &err), 2);
    cr_assert(strstr(err, "--best-by: 'median' is not ppl or bleu"), "%s", err);
    free(err);
    cr_assert_eq(th_run("train x.db --name ''", NULL, NULL, &err), 2);
    cr_assert(strstr(err, "--name must have 1 to 63 bytes"), "%s", err);
    free(err);
    cr_assert_eq(th_run("train x.db --threads 0", NULL, NULL, &err), 2, "the command line's range");
    cr_assert(strstr(err, "--threads: 0 is out of range (1 to 1024)"), "%s", err);
    free(err);
}

/* ---- checkpoints ---- */

struct ck_fixture {
    char *dir, *path;
    struct db *db;
    int64_t run_id, vocab_id;
    struct s2s_model model;
    float *w, *m, *v;
};

static void ck_setup(struct ck_fixture *f)
{
    f->dir = th_tmpdir();
    f->path = make_db(f->dir, "c.db", 20, 1);
    cr_assert_eq(db_open(f->path, 0, &f->db), 0);
    cr_assert_eq(corpus_vocab_latest(f->db, "src", &f->vocab_id), 0);
    struct db_vocab voc;
    cr_assert_eq(db_vocab_get(f->db, f->vocab_id, &voc), 0);
    struct s2s_config cfg = {.V_src = (size_t)voc.size, .V_tgt = (size_t)voc.size, .E = 4, .H = 6, .L = 2,
                             .reverse_source = 1};
    db_vocab_clear(&voc);
    cr_assert_eq(s2s_model_init(&f->model, &cfg), 0);
    size_t N = f->model.table.total;
    f->w = param_buf_create(N), f->m = param_buf_create(N), f->v = param_buf_create(N);
    struct rng r;
    rng_seed(&r, 3);
    s2s_params_init(&f->model, f->w, &r);
    for (size_t i = 0; i < f->model.table.n; i++) {
        const struct param_view *pv = &f->model.table.views[i];
        param_init_uniform(f->m + pv->offset, pv->size, 1.0f, &r);
        param_init_uniform(f->v + pv->offset, pv->size, 2.0f, &r);
    }
    struct db_run run;
    memset(&run, 0, sizeof run);
    run.src_vocab_id = run.tgt_vocab_id = f->vocab_id;
    char config[] = "{\"layers\":2,\"emb\":4,\"hidden\":6,\"reverse_source\":1,\"batch\":8,\"epochs\":1,"
                    "\"keep\":2}";
    run.config = config;
    cr_assert_eq(db_run_create(f->db, &run, &f->run_id), 0, "%s", sl_errmsg());
}

static void ck_teardown(struct ck_fixture *f)
{
    param_buf_free(f->w), param_buf_free(f->m), param_buf_free(f->v);
    s2s_model_free(&f->model);
    db_close(f->db);
    th_rmdir(f->dir);
    free(f->dir), free(f->path);
}

static int64_t ck_save(struct ck_fixture *f, int64_t step, double ppl, int64_t keep)
{
    struct rng r;
    rng_seed(&r, (uint64_t)step);
    struct ckpt_save_req q = {.run_id = f->run_id, .step = step, .epoch = 1, .batch = step + 10,
                              .src_vocab_id = f->vocab_id, .tgt_vocab_id = f->vocab_id, .model = &f->model,
                              .w = f->w, .m = f->m, .v = f->v, .valid_ppl = ppl, .rng = &r, .keep = keep};
    int64_t id;
    cr_assert_eq(ckpt_save(f->db, &q, &id), 0, "%s", sl_errmsg());
    return id;
}

/* Runs sqlite3 on the database, returns its output (malloc'd) or NULL when sqlite3 is not installed. */
static char *sql(const char *path, const char *query)
{
    if (system("command -v sqlite3 >/dev/null 2>&1") != 0)
        return NULL;
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "sqlite3 '%s' \"%s\"", path, query);
    FILE *p = popen(cmd, "r");
    cr_assert(p);
    char *buf = calloc(1, 4096);
    size_t n = fread(buf, 1, 4095, p);
    buf[n] = 0;
    pclose(p);
    return buf;
}

Test(train, checkpoint_round_trip_bit_exact)
{
    struct ck_fixture f;
    ck_setup(&f);
    int64_t id = ck_save(&f, 7, 12.5, 3);
    size_t N = f.model.table.total;
    float *w = param_buf_create(N), *m = param_buf_create(N), *v = param_buf_create(N);
    cr_assert_eq(ckpt_state_load(f.db, id, &f.model, w, m, v), 0, "%s", sl_errmsg());
    cr_assert(memcmp(w, f.w, N * 4) == 0);
    cr_assert(memcmp(m, f.m, N * 4) == 0);
    cr_assert(memcmp(v, f.v, N * 4) == 0);
    struct ckpt_info ci;
    cr_assert_eq(ckpt_info_get(f.db, id, &ci), 0);
    cr_assert_eq(ci.step, 7);
    cr_assert_eq(ci.batch, 17);
    cr_assert_eq(ci.epoch, 1);
    cr_assert_eq(ci.is_best, 1);
    cr_assert(ci.valid_ppl == 12.5);
    struct rng r;
    rng_seed(&r, 7);
    cr_assert(ci.has_rng && memcmp(&ci.rng, &r, sizeof r) == 0);
    /* the model loader rebuilds the configuration from the run row and loads the vocabulary */
    struct ckpt_model cm;
    cr_assert_eq(ckpt_model_load(f.db, "last", &cm), 0, "%s", sl_errmsg());
    cr_assert_eq(cm.checkpoint_id, id);
    cr_assert_eq(cm.model.cfg.H, 6);
    cr_assert_eq(cm.model.cfg.L, 2);
    cr_assert_eq(cm.model.cfg.reverse_source, 1);
    cr_assert_eq(cm.model.table.total, N);
    cr_assert(memcmp(cm.w, f.w, N * 4) == 0);
    cr_assert_eq(cm.src_bpe, cm.tgt_bpe, "joint vocabulary shared");
    cr_assert_eq((int64_t)bpe_size(cm.src_bpe), (int64_t)f.model.cfg.V_src);
    ckpt_model_free(&cm);
    cr_assert_eq(ckpt_model_load(f.db, "best", &cm), 0);
    cr_assert_eq(cm.checkpoint_id, id);
    ckpt_model_free(&cm);
    char ids[32];
    snprintf(ids, sizeof ids, "%lld", (long long)id);
    cr_assert_eq(ckpt_model_load(f.db, ids, &cm), 0);
    ckpt_model_free(&cm);
    cr_assert_eq(ckpt_model_load(f.db, "999", &cm), SL_ENOTFOUND);
    cr_assert_eq(ckpt_model_load(f.db, "newest", &cm), SL_EINVAL);
    /* what a user sees with SQL */
    char q[512];
    snprintf(q, sizeof q,
             "SELECT count(*), sum(length(data)) FROM tensor WHERE checkpoint_id = %lld AND name NOT LIKE 'adam.%%';"
             "SELECT shape FROM tensor WHERE checkpoint_id = %lld AND name = 'dec.lstm1.W';"
             "SELECT step, is_best, json_extract(data_pos, '$.batch') FROM checkpoint WHERE id = %lld",
             (long long)id, (long long)id, (long long)id);
    char *out = sql(f.path, q);
    if (out) {
        char want[256];
        snprintf(want, sizeof want, "%zu|%zu\n[24,12]\n7|1|17\n", f.model.table.n, param_table_count(&f.model.table) * 4);
        cr_assert_str_eq(out, want);
        free(out);
    }
    param_buf_free(w), param_buf_free(m), param_buf_free(v);
    ck_teardown(&f);
}

Test(train, corrupt_tensor_rows_are_refused)
{
    struct ck_fixture f;
    ck_setup(&f);
    /* a checkpoint whose enc.emb has a shape of another model */
    struct db_checkpoint c;
    memset(&c, 0, sizeof c);
    c.run_id = f.run_id, c.step = 1, c.src_vocab_id = c.tgt_vocab_id = f.vocab_id;
    c.valid_ppl = c.valid_bleu = NAN;
    int64_t id;
    cr_assert_eq(db_ckpt_insert(f.db, &c, &id), 0);
    for (size_t i = 0; i < f.model.table.n; i++) {
        const struct param_view *pv = &f.model.table.views[i];
        size_t shape[2] = {pv->shape[0], pv->shape[1]};
        if (i == 0)
            shape[1] -= 1;
        cr_assert_eq(db_tensor_insert(f.db, id, pv->name, pv->ndim, shape, f.w + pv->offset,
                                      shape[0] * (pv->ndim > 1 ? shape[1] : 1)),
                     0, "%s", sl_errmsg());
    }
    size_t N = f.model.table.total;
    float *w = param_buf_create(N);
    cr_assert_eq(ckpt_state_load(f.db, id, &f.model, w, NULL, NULL), SL_ECORRUPT);
    char want[64];
    snprintf(want, sizeof want, "checkpoint %lld, tensor enc.emb: shape", (long long)id);
    cr_assert(strstr(sl_errmsg(), want), "%s", sl_errmsg());
    /* no Adam moments in this one */
    cr_assert_eq(ckpt_model_load(f.db, "last", &(struct ckpt_model){0}), SL_ECORRUPT);
    /* a good checkpoint, then a BLOB of the wrong size (only with the sqlite3 tool) */
    int64_t good = ck_save(&f, 2, NAN, 5);
    cr_assert_eq(ckpt_state_load(f.db, good, &f.model, w, f.m, NULL), 0);
    cr_assert_eq(ckpt_state_load(f.db, id, &f.model, w, f.m, NULL), SL_ECORRUPT);
    char q[160];
    snprintf(q, sizeof q, "UPDATE tensor SET data = zeroblob(12) WHERE checkpoint_id = %lld AND name = 'out.b'",
             (long long)good);
    char *out = sql(f.path, q);
    if (out) {
        free(out);
        cr_assert_eq(ckpt_state_load(f.db, good, &f.model, w, NULL, NULL), SL_ECORRUPT);
        snprintf(want, sizeof want, "checkpoint %lld, tensor out.b: 12 bytes", (long long)good);
        cr_assert(strstr(sl_errmsg(), want), "%s", sl_errmsg());
    }
    param_buf_free(w);
    ck_teardown(&f);
}

Test(train, prune_keeps_newest_and_best)
{
    struct ck_fixture f;
    ck_setup(&f);
    int64_t a = ck_save(&f, 1, 50.0, 2);
    int64_t b = ck_save(&f, 2, 20.0, 2); /* best */
    int64_t c = ck_save(&f, 3, 30.0, 2);
    int64_t d = ck_save(&f, 4, NAN, 2);
    int64_t e = ck_save(&f, 5, 25.0, 2);
    struct db_checkpoint row;
    cr_assert_eq(db_ckpt_get(f.db, a, &row), SL_ENOTFOUND);
    cr_assert_eq(db_ckpt_get(f.db, c, &row), SL_ENOTFOUND);
    cr_assert_eq(db_ckpt_get(f.db, b, &row), 0);
    cr_assert_eq(row.is_best, 1);
    cr_assert_eq(db_ckpt_get(f.db, d, &row), 0);
    cr_assert_eq(row.is_best, 0);
    cr_assert(isnan(row.valid_ppl));
    cr_assert_eq(db_ckpt_get(f.db, e, &row), 0);
    cr_assert_eq(row.is_best, 0);
    int64_t id;
    cr_assert_eq(ckpt_find(f.db, f.run_id, "best", &id), 0);
    cr_assert_eq(id, b);
    cr_assert_eq(ckpt_find(f.db, 0, "last", &id), 0);
    cr_assert_eq(id, e);
    int64_t n;
    cr_assert_eq(db_tensor_count(f.db, a, &n), 0);
    cr_assert_eq(n, 0, "tensors of a deleted checkpoint cascade");
    cr_assert_eq(db_tensor_count(f.db, b, &n), 0);
    cr_assert_eq(n, (int64_t)(3 * f.model.table.n));
    int64_t g = ck_save(&f, 6, 10.0, 2); /* a new best: b loses the mark and is pruned */
    cr_assert_eq(db_ckpt_get(f.db, b, &row), SL_ENOTFOUND);
    cr_assert_eq(ckpt_find(f.db, f.run_id, "best", &id), 0);
    cr_assert_eq(id, g);
    ck_teardown(&f);
}

/* ---- divergence ---- */

/* The NaN/Inf stop. No option makes a healthy model diverge: lr is capped below 10, an Adam step moves a
 * weight by about lr at most, clipping keeps the gradient finite, the LSTM gates saturate, and the
 * checkpoint loader refuses NaN/Inf tensors. So these tests plant an Adam state no real run reaches,
 * through the public checkpoint API: a copy of the last good checkpoint (step 4) whose second moments of
 * out.b are negative. The resumed run's step 5 has a finite loss, but its update takes the square root
 * of a negative number and makes out.b NaN; the loss of step 6 is NaN. */
struct diverged {
    char *dir, *path;
    struct db *db;
    int64_t run_id, good, planted; /* checkpoints: the last one trained, its poisoned copy */
    struct ckpt_model cm;          /* checkpoint good */
    struct train_result r;         /* of the resumed run */
    int rc;
    char msg[512];                 /* sl_errmsg() after it */
};

static void diverge(struct diverged *d)
{
    memset(d, 0, sizeof *d);
    d->dir = th_tmpdir();
    d->path = make_db(d->dir, "a.db", 30, 1);
    cr_assert_eq(db_open(d->path, 0, &d->db), 0);
    struct train_opts o;
    tiny_opts(&o);
    o.steps = 4;
    o.save_every = 2;
    struct train_result r;
    cr_assert_eq(train_run(d->db, &o, &r), 0, "%s", sl_errmsg());
    d->run_id = r.run_id;
    d->good = r.last_checkpoint_id;
    struct ckpt_info ci;
    cr_assert_eq(ckpt_info_get(d->db, d->good, &ci), 0);
    cr_assert_eq(ci.step, 4);
    cr_assert_eq(ckpt_model_load(d->db, "last", &d->cm), 0, "%s", sl_errmsg());
    cr_assert_eq(d->cm.checkpoint_id, d->good);
    const size_t N = d->cm.model.table.total;
    float *w = param_buf_create(N), *m = param_buf_create(N), *v = param_buf_create(N);
    cr_assert_eq(ckpt_state_load(d->db, d->good, &d->cm.model, w, m, v), 0, "%s", sl_errmsg());
    const struct param_view *ob = param_table_find(&d->cm.model.table, "out.b");
    cr_assert_not_null(ob);
    for (size_t k = 0; k < ob->size; k++)
        v[ob->offset + k] = -1.0f;
    struct ckpt_save_req q = {.run_id = r.run_id, .step = ci.step, .epoch = ci.epoch, .batch = ci.batch,
                              .src_vocab_id = ci.src_vocab_id, .tgt_vocab_id = ci.tgt_vocab_id,
                              .model = &d->cm.model, .w = w, .m = m, .v = v, .valid_ppl = NAN,
                              .rng = ci.has_rng ? &ci.rng : NULL, .keep = 3};
    cr_assert_eq(ckpt_save(d->db, &q, &d->planted), 0, "%s", sl_errmsg());
    param_buf_free(w), param_buf_free(m), param_buf_free(v);
    struct train_opts ro;
    train_opts_init(&ro);
    ro.resume = 1;
    ro.steps = 8;
    d->rc = train_run(d->db, &ro, &d->r);
    snprintf(d->msg, sizeof d->msg, "%s", sl_errmsg());
}

static void diverged_free(struct diverged *d)
{
    ckpt_model_free(&d->cm);
    db_close(d->db);
    th_rmdir(d->dir);
    free(d->dir), free(d->path);
}

Test(train, nonfinite_loss_fails_the_run_and_keeps_the_last_checkpoint)
{
    struct diverged d;
    diverge(&d);
    cr_assert_eq(d.rc, SL_ENUM, "train_run: %d %s", d.rc, d.msg);
    cr_assert_str_eq(d.r.status, "failed");
    cr_assert_eq(d.r.run_id, d.run_id);
    cr_assert_eq(d.r.steps_done, 5, "step 5 was taken, step 6 diverged");
    cr_assert_eq(d.r.last_checkpoint_id, d.planted);
    /* the run row: failed, with the steps of its last checkpoint */
    struct db_run run;
    cr_assert_eq(db_run_get(d.db, d.run_id, &run), 0);
    cr_assert_str_eq(run.status, "failed");
    cr_assert_eq(run.steps_done, 4);
    cr_assert(run.ended_at[0], "a failed run has ended");
    db_run_clear(&run);
    /* no checkpoint was written after the divergence; the last one (and the one before) still load, with
     * the finite weights of step 4 */
    int64_t last;
    cr_assert_eq(ckpt_find(d.db, d.run_id, "last", &last), 0);
    cr_assert_eq(last, d.planted);
    struct ckpt_model back;
    cr_assert_eq(ckpt_model_load(d.db, "last", &back), 0, "%s", sl_errmsg());
    cr_assert_eq(back.checkpoint_id, d.planted);
    cr_assert_eq(back.step, 4);
    cr_assert(memcmp(back.w, d.cm.w, d.cm.model.table.total * sizeof(float)) == 0,
              "the last checkpoint's weights changed");
    ckpt_model_free(&back);
    char which[32];
    snprintf(which, sizeof which, "%lld", (long long)d.good);
    cr_assert_eq(ckpt_model_load(d.db, which, &back), 0, "%s", sl_errmsg());
    ckpt_model_free(&back);
    /* the train_log ends at step 5, with finite losses only */
    struct losses L;
    read_losses(d.db, d.run_id, &L);
    cr_assert_gt(L.n, 0);
    cr_assert_eq(L.step[L.n - 1], 5);
    for (int i = 0; i < L.n; i++)
        cr_assert(isfinite(L.v[i]), "step %lld logged loss %g", (long long)L.step[i], L.v[i]);
    /* the command line exits 1 on every resume from the planted state */
    char args[512];
    snprintf(args, sizeof args, "train %s --resume --steps 8 --threads 1", d.path);
    cr_assert_eq(th_run(args, NULL, NULL, NULL), 1);
    diverged_free(&d);
}

Test(train, nonfinite_loss_message_reaches_the_caller_the_run_row_and_stderr)
{
    struct diverged d;
    diverge(&d);
    /* collect first, check after the cleanup (a failed check leaves no temporary directory behind) */
    char query[128], row[512] = "", err[4096] = "", args[512];
    snprintf(query, sizeof query, "SELECT message FROM run WHERE id = %lld", (long long)d.run_id);
    char *r = sql(d.path, query); /* NULL without the sqlite3 tool: not checked */
    const int have_row = r != NULL;
    snprintf(row, sizeof row, "%s", r ? r : "");
    free(r);
    char *e = NULL;
    snprintf(args, sizeof args, "train %s --resume --steps 8 --threads 1", d.path);
    const int exit_code = th_run(args, NULL, NULL, &e);
    snprintf(err, sizeof err, "%s", e ? e : "");
    free(e);
    char kept[64];
    snprintf(kept, sizeof kept, "checkpoint (%lld) is kept", (long long)d.planted);
    const int rc = d.rc;
    char msg[sizeof d.msg];
    memcpy(msg, d.msg, sizeof msg);
    diverged_free(&d);
    cr_assert_eq(rc, SL_ENUM);
    cr_assert(strstr(msg, "step 6") && strstr(msg, "NaN/Inf") && strstr(msg, "diverged") && strstr(msg, kept),
              "sl_errmsg() after train_run: %s", msg);
    cr_assert(!have_row || (strstr(row, "diverged") && strstr(row, "step 6")), "run.message: %s", row);
    cr_assert_eq(exit_code, 1);
    cr_assert(strstr(err, "diverged") && strstr(err, "smaller --lr"), "stderr: %s", err);
}

/* ---- CLI ---- */

Test(train, cli_usage_and_errors)
{
    char *dir = th_tmpdir();
    char *novocab = make_db(dir, "n.db", 10, 0);
    char *err = NULL, args[512];
    snprintf(args, sizeof args, "train %s --lr 50", novocab);
    cr_assert_eq(th_run(args, NULL, NULL, &err), 2);
    cr_assert(strstr(err, "--lr"), "%s", err);
    free(err);
    snprintf(args, sizeof args, "train %s --frobnicate", novocab);
    cr_assert_eq(th_run(args, NULL, NULL, &err), 2);
    free(err);
    snprintf(args, sizeof args, "train %s --hidden 0", novocab);
    cr_assert_eq(th_run(args, NULL, NULL, &err), 2);
    free(err);
    snprintf(args, sizeof args, "train %s --reverse-source --no-reverse-source", novocab);
    cr_assert_eq(th_run(args, NULL, NULL, &err), 2);
    free(err);
    static const char *const bad[][2] = {{"--attention foo", "--attention"},
                                         {"--encoder x", "--encoder"},
                                         {"--label-smoothing 1.5", "--label-smoothing"},
                                         {"--encoder bi --hidden 7", "even"}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(args, sizeof args, "train %s %s", novocab, bad[i][0]);
        int st = th_run(args, NULL, NULL, &err);
        cr_assert(st == 2 || st == 1, "%s: exit %d", bad[i][0], st);
        cr_assert(strstr(err, bad[i][1]), "%s: %s", bad[i][0], err);
        free(err);
    }
    cr_assert_eq(th_run("train", NULL, NULL, &err), 2);
    free(err);
    /* a run name is checked as import checks a corpus name: no control characters, valid UTF-8 */
    static const char *const names[][2] = {{"\"$(printf 'a\\tb')\"", "--name holds a control character"},
                                           {"\"$(printf 'a\\033[2Jb')\"", "--name holds a control character"},
                                           {"\"$(printf 'a\\377b')\"", "--name is not valid UTF-8"}};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        snprintf(args, sizeof args, "train %s --name %s", novocab, names[i][0]);
        cr_assert_eq(th_run(args, NULL, NULL, &err), 2, "%s: %s", names[i][0], err);
        cr_assert(strstr(err, names[i][1]), "%s: %s", names[i][0], err);
        free(err);
    }
    snprintf(args, sizeof args, "train %s --steps 2", novocab);
    cr_assert_eq(th_run(args, NULL, NULL, &err), 1);
    cr_assert(strstr(err, "seqlite vocab"), "%s", err);
    free(err);
    snprintf(args, sizeof args, "train %s/missing.db", dir);
    cr_assert_eq(th_run(args, NULL, NULL, &err), 1);
    free(err);
    /* a tiny real run, then a resume with a conflicting flag */
    char *ok = make_db(dir, "ok.db", 30, 1);
    char *out = NULL;
    snprintf(args, sizeof args,
             "train %s --layers 1 --emb 8 --hidden 8 --batch 10 --steps 3 --log-every 1 --threads 2", ok);
    cr_assert_eq(th_run(args, NULL, &out, &err), 0, "%s", err);
    cr_assert(strstr(out, "run 1: done after 3 steps"), "%s", out);
    /* not a terminal: one full line per log step, step/total and ETA first */
    cr_assert(strstr(err, "\nstep 1/3 eta ") && strstr(err, "\nstep 3/3 eta "), "%s", err);
    cr_assert(strstr(err, " loss ") && strstr(err, " elapsed ") && !strstr(err, "\r"), "%s", err);
    cr_assert(strstr(err, "valid ppl"), "%s", err);
    free(out), free(err);
    /* a usage error writes nothing: not even the database file */
    static const char *const bad_stall[][2] = {{"--patience -1", "--patience"},
                                               {"--lr-decay-on-stall 0", "--lr-decay-on-stall"},
                                               {"--lr-decay-on-stall 1.5", "--lr-decay-on-stall"},
                                               {"--log-format xml", "--log-format: 'xml' is not text or json"}};
    char *none = th_path(dir, "none.db");
    for (size_t i = 0; i < sizeof bad_stall / sizeof bad_stall[0]; i++) {
        snprintf(args, sizeof args, "train %s %s", none, bad_stall[i][0]);
        cr_assert_eq(th_run(args, NULL, NULL, &err), 2, "%s", bad_stall[i][0]);
        cr_assert(strstr(err, bad_stall[i][1]), "%s: %s", bad_stall[i][0], err);
        cr_assert_neq(access(none, F_OK), 0, "%s created the database", bad_stall[i][0]);
        free(err);
    }
    free(none);
    snprintf(args, sizeof args, "train %s --patience 2 --valid-every 0", novocab);
    cr_assert_eq(th_run(args, NULL, NULL, &err), 2);
    cr_assert(strstr(err, "--valid-every N > 0"), "%s", err);
    free(err);
    snprintf(args, sizeof args, "train %s --resume --hidden 16", ok);
    cr_assert_eq(th_run(args, NULL, NULL, &err), 2);
    cr_assert(strstr(err, "conflicts with run 1"), "%s", err);
    free(err);
    snprintf(args, sizeof args, "train %s --resume --steps 5", ok);
    cr_assert_eq(th_run(args, NULL, &out, &err), 0, "%s", err);
    cr_assert(strstr(out, "run 1: done after 5 steps"), "%s", out);
    free(out), free(err);
    free(novocab), free(ok);
    th_rmdir(dir);
    free(dir);
}

/* The number a one-row query gives (sqlite3 C API, read-only, waiting for a writer). */
static int64_t q_int(const char *path, const char *query)
{
    sqlite3 *h;
    cr_assert_eq(sqlite3_open_v2(path, &h, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    sqlite3_busy_timeout(h, 5000);
    sqlite3_stmt *st;
    cr_assert_eq(sqlite3_prepare_v2(h, query, -1, &st, NULL), SQLITE_OK, "%s", sqlite3_errmsg(h));
    int64_t v = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int64(st, 0) : -1;
    sqlite3_finalize(st);
    sqlite3_close(h);
    return v;
}

/* The text a one-row query gives (malloc'd; "" for NULL or no row), as q_int. */
static char *q_text(const char *path, const char *query)
{
    sqlite3 *h;
    cr_assert_eq(sqlite3_open_v2(path, &h, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    sqlite3_busy_timeout(h, 5000);
    sqlite3_stmt *st;
    cr_assert_eq(sqlite3_prepare_v2(h, query, -1, &st, NULL), SQLITE_OK, "%s", sqlite3_errmsg(h));
    const unsigned char *t = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_text(st, 0) : NULL;
    char *v = strdup(t ? (const char *)t : "");
    sqlite3_finalize(st);
    sqlite3_close(h);
    cr_assert(v);
    return v;
}

/* --batch-tokens below every pair is a usage error before anything is written; a budget some pairs exceed
 * leaves those out with a note counting them (as --max-len does). The smallest budget the message names
 * is exact: it trains, one less is refused. */
Test(train, batch_tokens_below_every_pair_is_a_usage_error)
{
    char *dir = th_tmpdir();
    char *path = make_db(dir, "b.db", 30, 1);
    char *err = NULL, *out = NULL, args[1024];
    const char *tiny = "--layers 1 --emb 8 --hidden 8 --steps 2 --valid-every 0 --threads 1";
    snprintf(args, sizeof args, "train '%s' --batch-tokens 1 %s", path, tiny);
    cr_assert_eq(th_run(args, NULL, NULL, &err), 2, "%s", err);
    cr_assert(strstr(err, "seqlite: train: --batch-tokens 1 is smaller than the shortest pair (needs at least "),
              "%s", err);
    cr_assert(!strstr(err, "--max-len") && !strstr(err, "out of range"), "%s", err);
    long need = atol(strstr(err, "at least ") + strlen("at least "));
    cr_assert_gt(need, 2, "%s", err);
    free(err);
    cr_assert_eq(q_int(path, "SELECT count(*) FROM run"), 0, "a run row was written");
    cr_assert_eq(q_int(path, "SELECT count(*) FROM train_log"), 0, "a log row was written");
    snprintf(args, sizeof args, "train '%s' --batch-tokens %ld %s", path, need - 1, tiny);
    cr_assert_eq(th_run(args, NULL, NULL, &err), 2, "%ld: %s", need - 1, err);
    cr_assert(strstr(err, "--batch-tokens"), "%s", err);
    free(err);
    /* the smallest budget trains; the longer pairs are left out and counted as over --batch-tokens */
    snprintf(args, sizeof args, "train '%s' --batch-tokens %ld %s", path, need, tiny);
    cr_assert_eq(th_run(args, NULL, &out, &err), 0, "%s", err);
    cr_assert(strstr(out, "run 1: done after 2 steps"), "%s", out);
    char note[128];
    snprintf(note, sizeof note, "longer than --batch-tokens %ld allows left out", need);
    cr_assert(strstr(err, note) && !strstr(err, "--max-len"), "%s", err);
    free(out), free(err);
    free(path);
    th_rmdir(dir);
    free(dir);
}

/* Training's validation scores reference the checkpoint saved at their step (steps 2 and 4 here);
 * a validation with no checkpoint at its step (3) references none. */
Test(train, validation_scores_reference_the_checkpoint_of_their_step)
{
    char *dir = th_tmpdir();
    char *path = make_db(dir, "a.db", 40, 1);
    struct train_opts o;
    tiny_opts(&o);
    o.steps = 4;
    o.save_every = 2;
    o.valid_every = 1;
    o.valid_bleu = 0;
    o.keep = 5;
    struct losses L;
    size_t n;
    struct train_result res;
    free(train_and_read(path, &o, &L, &n, &res));
    cr_assert_eq(q_int(path, "SELECT count(*) FROM metric WHERE split = 'valid' AND name = 'ppl'"), 4);
    cr_assert_eq(q_int(path, "SELECT count(*) FROM metric m JOIN checkpoint c ON c.id = m.checkpoint_id"
                             " WHERE m.split = 'valid' AND c.step = m.step AND m.step IN (2, 4)"),
                 q_int(path, "SELECT count(*) FROM metric WHERE split = 'valid' AND step IN (2, 4)"));
    cr_assert_eq(q_int(path, "SELECT count(*) FROM metric WHERE split = 'valid' AND step IN (2, 4)"), 2);
    cr_assert_eq(q_int(path, "SELECT count(*) FROM metric WHERE split = 'valid' AND checkpoint_id IS NOT NULL"
                             " AND step IN (1, 3)"), 0);
    free(path);
    th_rmdir(dir);
    free(dir);
}

/* A training process killed with SIGKILL (no chance to clean up) loses nothing committed: the file
 * passes integrity_check, and --resume continues from the newest checkpoint, rewriting the log and
 * validation rows written after it, so every step and validation appears exactly once. */
Test(train, killed_process_then_resume)
{
    char *dir = th_tmpdir();
    char *path = make_db(dir, "k.db", 60, 1);
    pid_t pid = fork();
    cr_assert(pid >= 0);
    if (pid == 0) {
        int fd = open("/dev/null", O_WRONLY);
        dup2(fd, 1);
        dup2(fd, 2);
        execl(SEQLITE_BIN, SEQLITE_BIN, "train", path, "--layers", "1", "--emb", "8", "--hidden", "8", "--batch",
              "10", "--steps", "100000000", "--log-every", "1", "--valid-every", "3", "--valid-bleu", "5",
              "--save-every", "7", "--threads", "1", "--time-limit", "2", (char *)NULL);
        _exit(127);
    }
    /* wait for two checkpoints and a few logged steps past the second */
    int64_t ck = 0;
    for (int i = 0; i < 6000; i++) {
        ck = q_int(path, "SELECT count(*) FROM checkpoint");
        if (ck >= 2 && q_int(path, "SELECT max(step) FROM train_log") % 7 >= 3)
            break;
        usleep(10000);
    }
    cr_assert_geq(ck, 2, "no checkpoints after 60 s");
    cr_assert_eq(kill(pid, SIGKILL), 0);
    int status;
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    sqlite3 *h;
    cr_assert_eq(sqlite3_open_v2(path, &h, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
    sqlite3_stmt *st;
    cr_assert_eq(sqlite3_prepare_v2(h, "PRAGMA integrity_check", -1, &st, NULL), SQLITE_OK);
    cr_assert_eq(sqlite3_step(st), SQLITE_ROW);
    cr_assert_str_eq((const char *)sqlite3_column_text(st, 0), "ok");
    sqlite3_finalize(st);
    sqlite3_close(h);
    cr_assert_eq(q_int(path, "SELECT count(*) FROM run WHERE status = 'running'"), 1);
    /* the dead trainer still holds the lease: the run shows as interrupted, and resumable */
    struct db *db;
    cr_assert_eq(db_open(path, 0, &db), 0, "%s", sl_errmsg());
    enum db_run_liveness live;
    char owner[128], want[128];
    cr_assert_eq(db_run_liveness(db, 1, &live, owner, sizeof owner), 0, "%s", sl_errmsg());
    cr_assert_eq(live, DB_RUN_INTERRUPTED);
    db_run_owner_self(want, sizeof want);
    char *at = strchr(want, '@');
    char killed_owner[160];
    snprintf(killed_owner, sizeof killed_owner, "%ld%s", (long)pid, at);
    cr_assert_str_eq(owner, killed_owner);
    db_close(db);
    int64_t saved = q_int(path, "SELECT max(step) FROM checkpoint");
    int64_t logged = q_int(path, "SELECT max(step) FROM train_log");
    cr_assert_gt(logged, saved); /* rows past the checkpoint: the resume rewrites them */
    int64_t n = saved + 10;
    char args[512], *err = NULL, *out = NULL;
    snprintf(args, sizeof args, "train '%s' --resume --steps %lld", path, (long long)n);
    cr_assert_eq(th_run(args, NULL, &out, &err), 0, "%s", err);
    cr_assert(strstr(err, "resuming run 1"), "%s", err);
    cr_assert(strstr(err, "was interrupted"), "%s", err);
    cr_assert(strstr(err, killed_owner), "%s", err);
    free(out), free(err);
    cr_assert_eq(q_int(path, "SELECT count(*) FROM run WHERE status = 'done' AND owner IS NULL"), 1);
    cr_assert_eq(q_int(path, "SELECT count(*) FROM train_log"), n);
    cr_assert_eq(q_int(path, "SELECT max(step) FROM train_log"), n);
    int64_t nvalid = n / 3 + (n % 3 != 0); /* every 3 steps and at the end */
    cr_assert_eq(q_int(path, "SELECT count(*) FROM metric WHERE name = 'ppl'"), nvalid);
    cr_assert_eq(q_int(path, "SELECT count(DISTINCT step) FROM metric WHERE name = 'ppl'"), nvalid);
    cr_assert_eq(q_int(path, "SELECT count(*) FROM metric WHERE name = 'bleu'"), nvalid);
    free(path);
    th_rmdir(dir);
    free(dir);
}

/* Starts `seqlite train path ARGS...` in a child process (output to /dev/null); returns its pid. */
static pid_t spawn_train(const char *path, const char *const *args)
{
    pid_t pid = fork();
    cr_assert(pid >= 0);
    if (pid == 0) {
        const char *argv[40] = {SEQLITE_BIN, "train", path};
        size_t n = 3;
        for (; args[n - 3] && n < 39; n++)
            argv[n] = args[n - 3];
        argv[n] = NULL;
        int fd = open("/dev/null", O_WRONLY);
        dup2(fd, 1);
        dup2(fd, 2);
        execv(SEQLITE_BIN, (char *const *)argv);
        _exit(127);
    }
    return pid;
}

/* A second trainer on a run that a live process trains is refused (exit 1, naming the owner) and
 * changes nothing: the first trainer ends 'done' with every step logged once and its checkpoints in
 * step order. */
Test(train, second_trainer_on_a_live_run_is_refused_and_the_first_is_unaffected)
{
    char *dir = th_tmpdir();
    char *path = make_db(dir, "two.db", 60, 1);
    static const char *const args[] = {"--layers", "1", "--emb", "8", "--hidden", "8", "--batch", "10", "--steps",
                                       "1500", "--log-every", "1", "--valid-every", "50", "--valid-bleu", "0",
                                       "--save-every", "7", "--keep", "1000", "--threads", "1", NULL};
    pid_t pid = spawn_train(path, args);
    for (int i = 0; i < 6000 && q_int(path, "SELECT count(*) FROM checkpoint") < 2; i++)
        usleep(10000);
    cr_assert_geq(q_int(path, "SELECT count(*) FROM checkpoint"), 2, "no checkpoints after 60 s");
    char cmd[512], *out = NULL, *err = NULL, owner[160], self[128];
    db_run_owner_self(self, sizeof self);
    snprintf(owner, sizeof owner, "process %ld%s", (long)pid, strchr(self, '@'));
    snprintf(cmd, sizeof cmd, "train '%s' --resume --steps 2000", path);
    cr_assert_eq(th_run(cmd, NULL, &out, &err), 1, "%s", err);
    cr_assert(strstr(err, "being trained by") && strstr(err, owner), "%s", err);
    free(out), free(err);
    cr_assert_eq(waitpid(pid, NULL, WNOHANG), 0, "the first trainer ended before the second was refused: "
                 "the test needs a longer run");
    int status;
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "first trainer: status %d", status);
    cr_assert_eq(q_int(path, "SELECT count(*) FROM run WHERE status = 'done' AND steps_done = 1500"
                             " AND owner IS NULL AND message = 'finished after 1500 steps'"), 1);
    cr_assert_eq(q_int(path, "SELECT count(*) FROM train_log"), 1500);
    cr_assert_eq(q_int(path, "SELECT count(DISTINCT step) FROM train_log WHERE step BETWEEN 1 AND 1500"), 1500);
    cr_assert_eq(q_int(path, "SELECT count(*) FROM checkpoint"), 1500 / 7 + 1);
    cr_assert_eq(q_int(path, "SELECT count(*) FROM checkpoint a JOIN checkpoint b ON a.id < b.id AND a.step >= b.step"),
                 0, "checkpoints out of step order");
    cr_assert_eq(q_int(path, "SELECT count(*) FROM metric WHERE name = 'ppl'"), 1500 / 50);
    free(path);
    th_rmdir(dir);
    free(dir);
}

/* Set by take_over_at_2: the run's owner is replaced by another (live-looking) process at step 2, and
 * the next heartbeat comes due. */
static const char *take_over_path;

static void take_over_at_2(void *ctx, const struct train_progress *p)
{
    (void)ctx;
    if (p->event != TRAIN_EV_LOG || p->step != 2)
        return;
    sqlite3 *h;
    cr_assert_eq(sqlite3_open_v2(take_over_path, &h, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
    sqlite3_busy_timeout(h, 5000);
    cr_assert_eq(sqlite3_exec(h, "UPDATE run SET owner = '12@another-host', heartbeat_at = "
                                 "strftime('%Y-%m-%dT%H:%M:%fZ', 'now')", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(h);
    usleep((useconds_t)(DB_RUN_HEARTBEAT_S * 1e6 / 2 + 2e5));
}

/* A trainer whose heartbeat finds the run taken over stops at once (SL_EBUSY) and writes nothing more:
 * no further log rows, no checkpoint, the status and the new owner left alone. */
Test(train, heartbeat_finding_the_run_taken_over_stops_without_writing)
{
    char *dir = th_tmpdir();
    char *path = make_db(dir, "t.db", 30, 1);
    take_over_path = path;
    struct train_opts o;
    tiny_opts(&o);
    o.steps = 20;
    o.progress = take_over_at_2;
    struct db *db;
    cr_assert_eq(db_open(path, 0, &db), 0);
    struct train_result r;
    cr_assert_eq(train_run(db, &o, &r), SL_EBUSY);
    cr_assert(strstr(sl_errmsg(), "another process took the run over"), "%s", sl_errmsg());
    db_close(db);
    cr_assert_eq(q_int(path, "SELECT max(step) FROM train_log"), 2);
    cr_assert_eq(q_int(path, "SELECT count(*) FROM checkpoint"), 0);
    cr_assert_eq(q_int(path, "SELECT count(*) FROM run WHERE status = 'running' AND owner = '12@another-host'"), 1);
    free(path);
    th_rmdir(dir);
    free(dir);
}

/* The "run R: N pairs" note of a run (its first number). */
static void pairs_note(void *ctx, const struct train_progress *p)
{
    long long *n = ctx, run;
    if (p->event == TRAIN_EV_NOTE)
        sscanf(p->note, "run %lld: %lld pairs", &run, n);
}

/* --corpus chooses the train corpora: batching reads only those, the choice is stored with the run and
 * a resume keeps it; an unknown name or a corpus of another split is refused before anything is written. */
Test(train, corpus_option_chooses_the_train_corpora)
{
    char *dir = th_tmpdir();
    char *path = make_db(dir, "c.db", 30, 1);
    struct db *db;
    cr_assert_eq(db_open(path, 0, &db), 0);
    add_corpus(db, "more", "train", 45, 9, 6);
    struct train_opts o;
    tiny_opts(&o);
    o.steps = 2;
    long long n = 0;
    o.progress = pairs_note;
    o.progress_ctx = &n;
    struct train_result r;
    static const char *const bad[] = {"nope", "valid", "more,", ",more"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        o.corpus = bad[i];
        cr_assert_eq(train_run(db, &o, &r), SL_EINVAL, "--corpus %s", bad[i]);
        cr_assert(strstr(sl_errmsg(), "--corpus"), "%s", sl_errmsg());
        cr_assert_eq(r.run_id, 0);
    }
    cr_assert_eq(q_int(path, "SELECT count(*) FROM run"), 0, "nothing written");
    o.corpus = "more";
    cr_assert_eq(train_run(db, &o, &r), 0, "%s", sl_errmsg());
    cr_assert_eq(n, 45, "the run trains on corpus 'more' only");
    cr_assert_eq(q_int(path, "SELECT count(*) FROM run WHERE json_extract(config, '$.corpus') = 'more'"), 1);
    /* a resume keeps the choice; another one conflicts */
    struct train_opts ro;
    train_opts_init(&ro);
    ro.resume = 1;
    ro.steps = 3;
    ro.progress = pairs_note;
    ro.progress_ctx = &n;
    n = 0;
    cr_assert_eq(train_run(db, &ro, &r), 0, "%s", sl_errmsg());
    cr_assert_eq(n, 45);
    ro.steps = 4;
    ro.corpus = "train,more";
    cr_assert_eq(train_run(db, &ro, &r), SL_EINVAL);
    cr_assert(strstr(sl_errmsg(), "conflicts with run 1"), "%s", sl_errmsg());
    /* both, and the default: every train corpus */
    o.corpus = "train,more";
    o.name = "both";
    cr_assert_eq(train_run(db, &o, &r), 0, "%s", sl_errmsg());
    cr_assert_eq(n, 75);
    o.corpus = NULL;
    o.name = "all";
    cr_assert_eq(train_run(db, &o, &r), 0, "%s", sl_errmsg());
    cr_assert_eq(n, 75);
    db_close(db);
    char args[512], *err = NULL;
    snprintf(args, sizeof args, "train '%s' --steps 2 --corpus valid", path);
    cr_assert_eq(th_run(args, NULL, NULL, &err), 2);
    cr_assert(strstr(err, "not a train corpus"), "%s", err);
    free(err);
    free(path);
    th_rmdir(dir);
    free(dir);
}

/* A text digest of what a run has written (the run row and the counts of its rows). */
static char *run_digest(const char *path)
{
    return q_text(path, "SELECT status || '|' || steps_done || '|' || coalesce(message, '') || '|' || coalesce(owner, '')"
                     " || '|' || config || '|' || coalesce(train_data, '') || '|' || coalesce(ended_at, '') || '|' ||"
                     " (SELECT count(*) FROM train_log) || '|' || (SELECT count(*) FROM checkpoint) || '|' ||"
                     " (SELECT count(*) FROM metric) FROM run WHERE id = 1");
}

/* A run records its train data; a resume after a new train import is refused (saying what changed and
 * how to continue) and writes nothing; with --allow-new-data it continues on the new data and records it. */
Test(train, resume_after_a_new_import_needs_allow_new_data)
{
    char *dir = th_tmpdir();
    char *path = make_db(dir, "d.db", 30, 1);
    struct train_opts o;
    tiny_opts(&o);
    o.steps = 2;
    struct db *db;
    cr_assert_eq(db_open(path, 0, &db), 0);
    struct train_result r;
    cr_assert_eq(train_run(db, &o, &r), 0, "%s", sl_errmsg());
    char *td = q_text(path, "SELECT train_data FROM run WHERE id = 1");
    cr_assert_str_eq(td, "{\"corpora\":[1],\"pairs\":30,\"last_pair_id\":30}");
    free(td);
    add_corpus(db, "more", "train", 45, 9, 6);
    char *before = run_digest(path);
    struct train_opts ro;
    train_opts_init(&ro);
    ro.resume = 1;
    ro.steps = 4;
    cr_assert_eq(train_run(db, &ro, &r), SL_EINVAL);
    cr_assert(strstr(sl_errmsg(), "the train data changed since run 1 started: 30 -> 75 pairs (corpus 'more' added)"),
              "%s", sl_errmsg());
    cr_assert(strstr(sl_errmsg(), "--allow-new-data"), "%s", sl_errmsg());
    char *after = run_digest(path);
    cr_assert_str_eq(after, before, "a refused resume writes nothing");
    free(after);
    char args[512], *out = NULL, *err = NULL;
    snprintf(args, sizeof args, "train '%s' --resume --steps 4", path);
    cr_assert_eq(th_run(args, NULL, NULL, &err), 2);
    cr_assert(strstr(err, "corpus 'more' added") && strstr(err, "--allow-new-data"), "%s", err);
    free(err);
    after = run_digest(path);
    cr_assert_str_eq(after, before);
    free(after), free(before);
    snprintf(args, sizeof args, "train '%s' --resume --steps 4 --allow-new-data", path);
    cr_assert_eq(th_run(args, NULL, &out, &err), 0, "%s", err);
    cr_assert(strstr(err, "75 pairs"), "%s", err);
    free(out), free(err);
    td = q_text(path, "SELECT train_data || ' ' || json_array_length(config, '$.allow_new_data') || ' ' ||"
                   " json_extract(config, '$.allow_new_data[0].step') || ' ' ||"
                   " json_extract(config, '$.allow_new_data[0].from.pairs') || ' ' || status FROM run WHERE id = 1");
    cr_assert_str_eq(td, "{\"corpora\":[1,3],\"pairs\":75,\"last_pair_id\":95} 1 2 30 done");
    free(td);
    /* the data now matches the record: a plain resume goes on */
    ro.steps = 5;
    cr_assert_eq(train_run(db, &ro, &r), 0, "%s", sl_errmsg());
    db_close(db);
    free(path);
    th_rmdir(dir);
    free(dir);
}

/* A checkpoint's parameters and Adam moments (malloc'd, n floats each). */
static void read_state(struct db *db, int64_t id, float **w, float **m, float **v, size_t *n)
{
    char which[32];
    snprintf(which, sizeof which, "%lld", (long long)id);
    struct ckpt_model cm;
    cr_assert_eq(ckpt_model_load(db, which, &cm), 0, "%s", sl_errmsg());
    *n = cm.model.table.total;
    *w = param_buf_create(*n);
    *m = param_buf_create(*n);
    *v = param_buf_create(*n);
    cr_assert_eq(ckpt_state_load(db, id, &cm.model, *w, *m, *v), 0, "%s", sl_errmsg());
    ckpt_model_free(&cm);
}

/* --init-from: a new run starts from exactly the checkpoint's weights, with its run's model options and a
 * fresh optimizer; a conflicting model option and a different vocabulary are refused, writing nothing. */
Test(train, init_from_starts_a_new_run_from_the_checkpoint_weights)
{
    char *dir = th_tmpdir();
    char *path = make_db(dir, "i.db", 40, 1);
    struct db *db;
    cr_assert_eq(db_open(path, 0, &db), 0);
    struct train_opts o;
    tiny_opts(&o);
    o.steps = 3;
    struct train_result r1, r2, r3;
    cr_assert_eq(train_run(db, &o, &r1), 0, "%s", sl_errmsg());
    /* one step with a learning rate so small that Adam moves each weight by about 1e-7 */
    struct train_opts f;
    tiny_opts(&f);
    f.layers = f.emb = f.hidden = TRAIN_UNSET; /* taken from the checkpoint's run */
    f.init_from = r1.last_checkpoint_id;
    f.lr = 1e-7;
    f.steps = 1;
    f.name = "fine";
    cr_assert_eq(train_run(db, &f, &r2), 0, "%s", sl_errmsg());
    cr_assert_eq(r2.run_id, 2);
    f.init_from = 0;
    f.layers = 2, f.emb = 8, f.hidden = 12;
    f.name = "fresh";
    cr_assert_eq(train_run(db, &f, &r3), 0, "%s", sl_errmsg());
    float *w1, *m1, *v1, *w2, *m2, *v2, *w3, *m3, *v3;
    size_t n1, n2, n3;
    read_state(db, r1.last_checkpoint_id, &w1, &m1, &v1, &n1);
    read_state(db, r2.last_checkpoint_id, &w2, &m2, &v2, &n2);
    read_state(db, r3.last_checkpoint_id, &w3, &m3, &v3, &n3);
    cr_assert(n1 == n2 && n1 == n3);
    double d12 = 0, d13 = 0, worst = 0;
    size_t moved = 0;
    for (size_t i = 0; i < n1; i++) {
        d12 = fmax(d12, fabs((double)w2[i] - w1[i]));
        d13 = fmax(d13, fabs((double)w3[i] - w1[i]));
        /* a fresh Adam after one step: m = 0.1 g, v = 0.001 g^2, so m^2 = 10 v */
        double a = (double)m2[i] * m2[i], b = 10.0 * v2[i];
        if (a + b > 0) {
            moved++;
            worst = fmax(worst, fabs(a - b) / (a + b));
        }
    }
    cr_assert_lt(d12, 1e-6, "the fine-tuned run starts from the checkpoint's weights (max difference %g)", d12);
    cr_assert_gt(d13, 1e-3, "a run from the seed differs (max difference %g)", d13);
    cr_assert_gt(moved, n1 / 2);
    cr_assert_lt(worst, 1e-3, "Adam moments start from zero (m^2 vs 10 v: %g)", worst);
    float *bufs[] = {w1, m1, v1, w2, m2, v2, w3, m3, v3};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++)
        param_buf_free(bufs[i]);
    cr_assert_eq(q_int(path, "SELECT count(*) FROM run WHERE id = 2 AND hidden = 12 AND"
                             " json_extract(config, '$.init_from') = 1"), 1);
    /* refused: a model option of another value, a different vocabulary */
    tiny_opts(&f);
    f.init_from = r1.last_checkpoint_id;
    f.hidden = 16;
    cr_assert_eq(train_run(db, &f, &r2), SL_EINVAL);
    cr_assert(strstr(sl_errmsg(), "--hidden 16 conflicts with checkpoint"), "%s", sl_errmsg());
    f.hidden = TRAIN_UNSET;
    struct corpus_vocab_opts vo = {.size = 320, .mode = CORPUS_VOCAB_JOINT, .min_count = 1, .norm = TOK_NORM_NFKC};
    struct corpus_vocab_result vr;
    cr_assert_eq(corpus_vocab_learn(db, &vo, &vr), 0, "%s", sl_errmsg());
    cr_assert_eq(train_run(db, &f, &r2), SL_EINVAL);
    cr_assert(strstr(sl_errmsg(), "vocabulary"), "%s", sl_errmsg());
    f.init_from = 999;
    cr_assert_eq(train_run(db, &f, &r2), SL_EINVAL);
    cr_assert(strstr(sl_errmsg(), "no such checkpoint"), "%s", sl_errmsg());
    cr_assert_eq(q_int(path, "SELECT count(*) FROM run"), 3, "nothing written");
    db_close(db);
    free(path);
    th_rmdir(dir);
    free(dir);
}

/* Another writer: holds the write lock (BEGIN IMMEDIATE on its own connection) for hold_s seconds. */
struct lock_holder {
    const char *path;
    double hold_s;
    volatile int locked; /* set once the lock is held */
    int started, n_deferred_notes;
    pthread_t thread;
};

static void *hold_lock(void *ctx)
{
    struct lock_holder *h = ctx;
    sqlite3 *c;
    if (sqlite3_open_v2(h->path, &c, SQLITE_OPEN_READWRITE, NULL) == SQLITE_OK) {
        sqlite3_busy_timeout(c, 5000);
        if (sqlite3_exec(c, "BEGIN IMMEDIATE", NULL, NULL, NULL) == SQLITE_OK) {
            __atomic_store_n(&h->locked, 1, __ATOMIC_SEQ_CST);
            usleep((useconds_t)(h->hold_s * 1e6));
            sqlite3_exec(c, "COMMIT", NULL, NULL, NULL);
        }
    }
    sqlite3_close(c);
    __atomic_store_n(&h->locked, 2, __ATOMIC_SEQ_CST);
    return NULL;
}

/* At step 3: the other writer takes the lock (waited for here); counts the "deferred" notes. */
static void lock_at_3(void *ctx, const struct train_progress *p)
{
    struct lock_holder *h = ctx;
    if (p->event == TRAIN_EV_NOTE && strstr(p->note, "database busy (another writer)") && strstr(p->note, "deferred"))
        h->n_deferred_notes++;
    if (p->event != TRAIN_EV_LOG || p->step != 3 || h->started)
        return;
    h->started = 1;
    cr_assert_eq(pthread_create(&h->thread, NULL, hold_lock, h), 0);
    while (!__atomic_load_n(&h->locked, __ATOMIC_SEQ_CST))
        usleep(1000);
}

/* A writer holding the lock longer than the busy timeout (SEQLITE_BUSY_TIMEOUT_MS: 200 ms here) does not
 * fail the run: its log rows, scores and checkpoints are deferred with a note, training goes on, and the
 * run ends done with every row written and its checkpoints saved. */
Test(train, a_long_writer_defers_checkpoints_and_rows_without_failing_the_run)
{
    char *dir = th_tmpdir();
    char *path = make_db(dir, "b.db", 40, 1);
    cr_assert_eq(setenv("SEQLITE_BUSY_TIMEOUT_MS", "200", 1), 0);
    struct db *db;
    cr_assert_eq(db_open(path, 0, &db), 0);
    struct train_opts o;
    tiny_opts(&o);
    o.steps = 40;
    o.save_every = 5;
    o.valid_every = 10;
    o.keep = 100;
    struct lock_holder h = {.path = path, .hold_s = 1.5};
    o.progress = lock_at_3;
    o.progress_ctx = &h;
    struct train_result r;
    int rc = train_run(db, &o, &r);
    cr_assert(h.started);
    pthread_join(h.thread, NULL);
    cr_assert_eq(rc, 0, "%s", sl_errmsg());
    cr_assert_str_eq(r.status, "done");
    cr_assert_geq(h.n_deferred_notes, 1, "the busy database was noted");
    db_close(db);
    cr_assert_eq(q_int(path, "SELECT count(*) FROM run WHERE status = 'done' AND steps_done = 40"), 1);
    cr_assert_eq(q_int(path, "SELECT count(DISTINCT step) FROM train_log WHERE step BETWEEN 1 AND 40"), 40);
    cr_assert_eq(q_int(path, "SELECT count(*) FROM metric WHERE name = 'ppl'"), 4);
    cr_assert_eq(q_int(path, "SELECT max(step) FROM checkpoint"), 40);
    cr_assert_geq(q_int(path, "SELECT count(*) FROM checkpoint"), 2);
    cr_assert_eq(q_int(path, "SELECT count(*) FROM checkpoint a JOIN checkpoint b ON a.id < b.id AND a.step >= b.step"),
                 0);
    free(path);
    th_rmdir(dir);
    free(dir);
}

/* --resume without --threads trains with the run's thread count (not all cores); --threads changes it. */
Test(train, resume_keeps_the_runs_threads_unless_given)
{
    char *dir = th_tmpdir();
    char *path = make_db(dir, "t.db", 30, 1);
    char args[512], *out = NULL, *err = NULL;
    snprintf(args, sizeof args, "train '%s' --layers 1 --emb 8 --hidden 8 --batch 10 --steps 2 --threads 1", path);
    cr_assert_eq(th_run(args, NULL, &out, &err), 0, "%s", err);
    free(out), free(err);
    snprintf(args, sizeof args, "train '%s' --resume --steps 3", path);
    cr_assert_eq(th_run(args, NULL, &out, &err), 0, "%s", err);
    cr_assert(strstr(err, ", 1 threads,"), "%s", err);
    cr_assert_eq(q_int(path, "SELECT threads FROM run WHERE id = 1"), 1);
    free(out), free(err);
    snprintf(args, sizeof args, "train '%s' --resume --steps 4 --threads 2", path);
    cr_assert_eq(th_run(args, NULL, &out, &err), 0, "%s", err);
    cr_assert(strstr(err, ", 2 threads,"), "%s", err);
    cr_assert_eq(q_int(path, "SELECT threads FROM run WHERE id = 1"), 2);
    free(out), free(err);
    free(path);
    th_rmdir(dir);
    free(dir);
}

/* The text of a one-row, one-column query into buf (read-only, waiting for a writer). */
static void q_text_buf(const char *path, const char *query, char *buf, size_t cap)
{
    sqlite3 *h;
    cr_assert_eq(sqlite3_open_v2(path, &h, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    sqlite3_busy_timeout(h, 5000);
    sqlite3_stmt *st;
    cr_assert_eq(sqlite3_prepare_v2(h, query, -1, &st, NULL), SQLITE_OK, "%s", sqlite3_errmsg(h));
    const unsigned char *t = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_text(st, 0) : NULL;
    snprintf(buf, cap, "%s", t ? (const char *)t : "");
    sqlite3_finalize(st);
    sqlite3_close(h);
}

/* ---- progress lines ---- */

static const struct train_progress sample_log = {
    .event = TRAIN_EV_LOG, .run_id = 1, .epoch = 0, .step = 120, .total_steps = 2000, .loss = 4.12345,
    .ppl = 61.8, .lr = 0.003, .grad_norm = 1.25, .src_tok_s = 1234, .tgt_tok_s = 1300, .elapsed_s = 62,
    .eta_s = 200,
};

Test(train, progress_line_is_cut_to_the_width_in_whole_fields_step_eta_and_speed_first)
{
    struct sbuf full, b;
    sbuf_init(&full);
    sbuf_init(&b);
    cr_assert_eq(train_progress_format(&sample_log, TRAIN_LOG_TEXT, 0, &full), 0);
    cr_assert_str_eq(full.data, "step 120/2000 eta 3m20s tok/s 1234/1300 loss 4.1235 ppl 61.80 lr 0.003 gnorm 1.25 "
                                "epoch 1 elapsed 1m02s");
    static const size_t widths[] = {40, 80, 200};
    static const char *const last_field[] = {"tok/s 1234/1300", "lr 0.003", "elapsed 1m02s"};
    for (size_t i = 0; i < 3; i++) {
        sbuf_reset(&b);
        cr_assert_eq(train_progress_format(&sample_log, TRAIN_LOG_TEXT, widths[i], &b), 0);
        cr_assert_lt(b.len, widths[i], "width %zu: %zu bytes never reach the last column", widths[i], b.len);
        cr_assert(strncmp(b.data, "step 120/2000 eta 3m20s", 23) == 0, "width %zu: %s", widths[i], b.data);
        /* whole fields: a prefix of the full line that ends where a field ends */
        cr_assert(strncmp(full.data, b.data, b.len) == 0 && (full.data[b.len] == ' ' || !full.data[b.len]),
                  "width %zu: %s", widths[i], b.data);
        size_t lf = strlen(last_field[i]);
        cr_assert(b.len >= lf && strcmp(b.data + b.len - lf, last_field[i]) == 0, "width %zu: %s", widths[i],
                  b.data);
    }
    /* narrower than the first field: as much of it as fits; an unknown ETA is '?' */
    sbuf_reset(&b);
    cr_assert_eq(train_progress_format(&sample_log, TRAIN_LOG_TEXT, 10, &b), 0);
    cr_assert_str_eq(b.data, "step 120/");
    struct train_progress p = sample_log;
    p.eta_s = -1;
    sbuf_reset(&b);
    cr_assert_eq(train_progress_format(&p, TRAIN_LOG_TEXT, 80, &b), 0);
    cr_assert(strncmp(b.data, "step 120/2000 eta ? tok/s", 25) == 0, "%s", b.data);
    /* other events are never cut */
    p = (struct train_progress){.event = TRAIN_EV_VALID, .step = 500, .valid_ppl = 12.3456, .valid_bleu = 20.5,
                                .valid_chrf = 45.25, .valid_sents = 200, .valid_seconds = 3.25};
    sbuf_reset(&b);
    cr_assert_eq(train_progress_format(&p, TRAIN_LOG_TEXT, 20, &b), 0);
    cr_assert_str_eq(b.data, "step 500: valid ppl 12.346, BLEU 20.50, chrF2 45.25 on 200 sentences (3.2 s)");
    sbuf_free(&full);
    sbuf_free(&b);
}

/* 1 when line is one JSON object holding every key of keys (NULL-terminated), asked of SQLite's JSON1. */
static int json_object_with(sqlite3 *h, const char *line, const char *const *keys)
{
    sqlite3_stmt *st;
    cr_assert_eq(sqlite3_prepare_v2(h, "SELECT json_valid(?1) AND json_type(?1) = 'object' AND"
                                       " json_type(?1, '$.' || ?2) IS NOT NULL", -1, &st, NULL), SQLITE_OK);
    int ok = 1;
    for (size_t i = 0; ok && keys[i]; i++) {
        sqlite3_bind_text(st, 1, line, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, keys[i], -1, SQLITE_STATIC);
        ok = sqlite3_step(st) == SQLITE_ROW && sqlite3_column_int(st, 0) == 1;
        sqlite3_reset(st);
    }
    sqlite3_finalize(st);
    return ok;
}

/* The text of json_extract(line, '$.key') into buf. */
static void json_member(sqlite3 *h, const char *line, const char *key, char *buf, size_t cap)
{
    sqlite3_stmt *st;
    cr_assert_eq(sqlite3_prepare_v2(h, "SELECT json_extract(?1, '$.' || ?2)", -1, &st, NULL), SQLITE_OK);
    sqlite3_bind_text(st, 1, line, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, key, -1, SQLITE_STATIC);
    const unsigned char *t = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_text(st, 0) : NULL;
    snprintf(buf, cap, "%s", t ? (const char *)t : "(null)");
    sqlite3_finalize(st);
}

static const char *const log_keys[] = {"event", "run", "step", "total", "epoch", "loss", "ppl", "lr", "gnorm",
                                       "src_tok_s", "tgt_tok_s", "elapsed_s", "eta_s", NULL};
static const char *const valid_keys[] = {"event", "step", "epoch", "valid_ppl", "valid_bleu", "valid_chrf",
                                         "best_step", "stalled", NULL};

Test(train, json_progress_lines_are_objects_with_the_fields)
{
    sqlite3 *h;
    cr_assert_eq(sqlite3_open(":memory:", &h), SQLITE_OK);
    struct sbuf b;
    sbuf_init(&b);
    char v[64];
    struct train_progress p = sample_log;
    p.eta_s = -1; /* unknown: null, not a number JSON cannot hold */
    cr_assert_eq(train_progress_format(&p, TRAIN_LOG_JSON, 40, &b), 0);
    cr_assert(json_object_with(h, b.data, log_keys), "%s", b.data);
    cr_assert_null(strchr(b.data, '\n'));
    json_member(h, b.data, "eta_s", v, sizeof v);
    cr_assert_str_eq(v, "(null)");
    json_member(h, b.data, "total", v, sizeof v);
    cr_assert_str_eq(v, "2000");
    json_member(h, b.data, "epoch", v, sizeof v);
    cr_assert_str_eq(v, "1", "epochs count from 1 as in the text line");
    p = (struct train_progress){.event = TRAIN_EV_VALID, .step = 500, .valid_ppl = 12.5, .valid_bleu = NAN,
                                .valid_chrf = NAN, .best_step = 250, .stalled = 2};
    sbuf_reset(&b);
    cr_assert_eq(train_progress_format(&p, TRAIN_LOG_JSON, 0, &b), 0);
    cr_assert(json_object_with(h, b.data, valid_keys), "%s", b.data);
    json_member(h, b.data, "valid_ppl", v, sizeof v);
    cr_assert_str_eq(v, "12.5");
    json_member(h, b.data, "valid_bleu", v, sizeof v);
    cr_assert_str_eq(v, "(null)", "not measured");
    p = (struct train_progress){.event = TRAIN_EV_NOTE, .note = "a \"quoted\"\\path\nand\ta line"};
    sbuf_reset(&b);
    cr_assert_eq(train_progress_format(&p, TRAIN_LOG_JSON, 0, &b), 0);
    static const char *const note_keys[] = {"event", "message", NULL};
    cr_assert(json_object_with(h, b.data, note_keys), "%s", b.data);
    json_member(h, b.data, "message", v, sizeof v);
    cr_assert_str_eq(v, p.note, "escaped and read back");
    sbuf_free(&b);
    sqlite3_close(h);
}

Test(train, log_format_json_run_prints_only_json_lines)
{
    char *dir = th_tmpdir();
    char *path = make_db(dir, "j.db", 30, 1);
    char args[512], *out = NULL, *err = NULL;
    snprintf(args, sizeof args,
             "train %s --layers 1 --emb 8 --hidden 8 --batch 10 --steps 4 --log-every 1 --valid-every 2 "
             "--valid-bleu 5 --threads 1 --log-format json --patience 0",
             path);
    cr_assert_eq(th_run(args, NULL, &out, &err), 0, "%s", err);
    cr_assert(strstr(out, "run 1: done after 4 steps"), "%s", out);
    sqlite3 *h;
    cr_assert_eq(sqlite3_open(":memory:", &h), SQLITE_OK);
    int n_log = 0, n_valid = 0, n_lines = 0;
    char ev[32], step[32];
    for (char *line = strtok(err, "\n"); line; line = strtok(NULL, "\n")) {
        static const char *const any[] = {"event", "run", "step", NULL};
        cr_assert(json_object_with(h, line, any), "not a JSON object: %s", line);
        n_lines++;
        json_member(h, line, "event", ev, sizeof ev);
        if (strcmp(ev, "log") == 0) {
            cr_assert(json_object_with(h, line, log_keys), "%s", line);
            json_member(h, line, "step", step, sizeof step);
            cr_assert_eq(atoi(step), ++n_log, "%s", line);
        } else if (strcmp(ev, "valid") == 0) {
            cr_assert(json_object_with(h, line, valid_keys), "%s", line);
            n_valid++;
        }
    }
    cr_assert_eq(n_log, 4, "one object per log step");
    cr_assert_eq(n_valid, 2, "one per validation (steps 2 and 4)");
    cr_assert_gt(n_lines, n_log + n_valid, "notes and saves too");
    sqlite3_close(h);
    free(out), free(err), free(path);
    th_rmdir(dir);
    free(dir);
}

/* ---- early stopping and lr decay on a stalled validation ---- */

/* Options whose validations cannot improve: the update is far below the parameters' float resolution (lr
 * and clip 1e-12), so every validation scores what the first one did. */
static void frozen_opts(struct train_opts *o)
{
    tiny_opts(o);
    o->dropout = 0;
    o->lr = 1e-12;
    o->clip = 1e-12;
    o->valid_every = 2;
    o->valid_bleu = 0;
    o->steps = 20;
}

Test(train, patience_stops_a_run_whose_validation_cannot_improve)
{
    char *dir = th_tmpdir();
    char *path = make_db(dir, "p.db", 45, 1);
    struct train_opts o;
    frozen_opts(&o);
    o.patience = 2; /* step 2 is the best; 4 and 6 do not improve on it */
    struct losses L;
    size_t n;
    struct train_result r;
    free(train_and_read(path, &o, &L, &n, &r));
    cr_assert_str_eq(r.status, "done");
    cr_assert_eq(r.steps_done, 6);
    cr_assert_eq(L.n, 6);
    char msg[256];
    q_text_buf(path, "SELECT message FROM run", msg, sizeof msg);
    cr_assert_str_eq(msg, "early stop: no improvement in 2 validations (best step 2)");
    cr_assert_eq(q_int(path, "SELECT max(step) FROM checkpoint"), 6, "the stop step is saved");
    cr_assert_eq(q_int(path, "SELECT step FROM checkpoint WHERE is_best"), 6, "equal scores: the newest");
    cr_assert_eq(q_int(path, "SELECT count(DISTINCT value) FROM metric WHERE name = 'ppl'"), 1, "frozen");
    free(path);
    th_rmdir(dir);
    free(dir);
}

Test(train, lr_decays_after_each_stalled_validation_on_top_of_the_schedule)
{
    char *dir = th_tmpdir();
    char *path = make_db(dir, "d.db", 45, 1);
    struct train_opts o;
    frozen_opts(&o);
    o.steps = 8;
    o.lr_decay_on_stall = 0.5; /* validations 4 and 6 stall: halved for steps 5 on, again for 7 on */
    o.lr_decay = 0.5;          /* the schedule: halved for steps 1-4, quartered for 5-8 */
    o.lr_decay_start = 0;
    o.lr_decay_every = 4;
    struct losses L;
    size_t n;
    free(train_and_read(path, &o, &L, &n, NULL));
    cr_assert_eq(L.n, 8);
    const double lr = 1e-12;
    const double want[8] = {lr * 0.5, lr * 0.5, lr * 0.5, lr * 0.5,
                            lr * 0.25 * 0.5, lr * 0.25 * 0.5, lr * 0.25 * 0.25, lr * 0.25 * 0.25};
    for (int i = 0; i < 8; i++)
        cr_assert(L.lr[i] == want[i], "step %d: lr %.17g, want %.17g", i + 1, L.lr[i], want[i]);
    char msg[256];
    q_text_buf(path, "SELECT message FROM run", msg, sizeof msg);
    cr_assert_str_eq(msg, "finished after 8 steps", "no --patience: no early stop");
    free(path);
    th_rmdir(dir);
    free(dir);
}

/* Learning for 4 steps, then the --lr-decay schedule freezes the parameters, so the validations from step
 * 8 on stall for sure: a run stopped at step 9, inside the stall and off the validation schedule, then
 * resumed, repeats the uninterrupted one exactly (the lr factor, the counter and the stop step included). */
Test(train, resume_inside_a_stall_equals_uninterrupted)
{
    char *dir = th_tmpdir();
    char *a = make_db(dir, "a.db", 45, 1), *b = make_db(dir, "b.db", 45, 1);
    struct train_opts o;
    tiny_opts(&o);
    o.valid_every = 2;
    o.valid_bleu = 0;
    o.lr_decay = 1e-6;
    o.lr_decay_start = 4;
    o.lr_decay_every = 1;
    o.lr_decay_on_stall = 0.5;
    o.patience = 4; /* at least 4 stalled validations: the stop comes after step 9 */
    o.steps = 30;
    o.threads = 2;
    struct losses La, Lb;
    size_t na, nb;
    struct train_result ra, rb;
    float *wa = train_and_read(a, &o, &La, &na, &ra);
    cr_assert_lt(ra.steps_done, 30, "stopped early");
    cr_assert_gt(ra.steps_done, 9);
    /* step 9 runs inside a stall: its lr is below the schedule's */
    const double sched9 = 0.01 * pow(1e-6, 1 + (9 - 4 - 1) / 1);
    cr_assert(La.lr[8] < 0.75 * sched9, "lr at step 9: %g, schedule %g", La.lr[8], sched9);
    o.steps = 9;
    o.threads = 1;
    free(train_and_read(b, &o, &Lb, &nb, NULL));
    cr_assert_eq(q_int(b, "SELECT count(*) FROM metric WHERE step = 9"), 1, "the stop validated off the schedule");
    struct train_opts r;
    train_opts_init(&r);
    r.resume = 1;
    r.steps = 30;
    float *wb = train_and_read(b, &r, &Lb, &nb, &rb);
    cr_assert_eq(rb.steps_done, ra.steps_done);
    cr_assert_eq(La.n, Lb.n);
    for (int i = 0; i < La.n; i++) {
        cr_assert(La.v[i] == Lb.v[i], "step %lld: loss %.17g vs %.17g", (long long)La.step[i], La.v[i], Lb.v[i]);
        cr_assert(La.lr[i] == Lb.lr[i], "step %lld: lr %.17g vs %.17g", (long long)La.step[i], La.lr[i], Lb.lr[i]);
    }
    cr_assert_eq(na, nb);
    cr_assert(memcmp(wa, wb, na * sizeof *wa) == 0, "final parameters differ after resume");
    char ma[256], mb[256];
    q_text_buf(a, "SELECT message FROM run", ma, sizeof ma);
    q_text_buf(b, "SELECT message FROM run", mb, sizeof mb);
    static const char stop_msg[] = "early stop: no improvement in 4 validations (best step ";
    cr_assert(strncmp(ma, stop_msg, sizeof stop_msg - 1) == 0, "%s", ma);
    cr_assert_str_eq(ma, mb);
    /* resuming the early-stopped run stops at once; another --valid-every would miscount: refused */
    struct db *db;
    cr_assert_eq(db_open(b, 0, &db), 0);
    train_opts_init(&r);
    r.resume = 1;
    r.steps = 40;
    struct train_result rc;
    cr_assert_eq(train_run(db, &r, &rc), 0, "%s", sl_errmsg());
    cr_assert_eq(rc.steps_done, ra.steps_done);
    cr_assert_str_eq(rc.status, "done");
    train_opts_init(&r);
    r.resume = 1;
    r.valid_every = 3;
    cr_assert_eq(train_run(db, &r, &rc), SL_EINVAL);
    cr_assert(strstr(sl_errmsg(), "--valid-every 3 conflicts with run 1 (valid-every 2)"), "%s", sl_errmsg());
    db_close(db);
    free(wa), free(wb), free(a), free(b);
    th_rmdir(dir);
    free(dir);
}

Test(train, stall_options_threads_1_and_2_identical)
{
    struct train_opts a;
    tiny_opts(&a);
    a.valid_every = 2;
    a.lr_decay_on_stall = 0.5;
    a.patience = 5;
    assert_threads_identical(&a);
}

/* ---- bf16 (--precision bf16, nn/autocast.h) ---- */

/* bf16 here, natively or (AVX-512 without the bf16 instructions) emulated; else the test skips. */
static void need_bf16(void)
{
    setenv("SEQLITE_BF16_EMULATED", "1", 1);
    if (!autocast_available(PRECISION_BF16))
        cr_skip_test("no bf16 GEMMs here: %s", gemm_bf16_note());
}

/* The attention model, large enough for its products to run in bf16 (nn/autocast.h AUTOCAST_MIN_FLOPS). */
static void bf16_opts(struct train_opts *o)
{
    tiny_attention(o);
    o->emb = 16;
    o->hidden = 32;
    o->batch = 16;
    o->precision = 1;
}

Test(train, bf16_threads_1_and_2_identical_and_close_to_fp32)
{
    need_bf16();
    struct train_opts a;
    bf16_opts(&a);
    assert_threads_identical(&a);
    struct train_opts f = a; /* the same run in fp32: close, not equal */
    f.precision = 0;
    struct two_runs r;
    train_two(&a, &f, &r);
    cr_log_info("step 1 loss bf16 %.9g, fp32 %.9g; step 5 %.9g, %.9g", r.L[0].v[0], r.L[1].v[0], r.L[0].v[4],
                r.L[1].v[4]);
    cr_assert(r.L[0].v[0] != r.L[1].v[0], "step 1: bf16 and fp32 losses are equal to the last bit");
    for (int i = 0; i < 5; i++)
        cr_assert(fabs(r.L[0].v[i] - r.L[1].v[i]) < 1e-2 * r.L[1].v[i], "step %d: bf16 %.9g vs fp32 %.9g", i + 1,
                  r.L[0].v[i], r.L[1].v[i]);
    two_runs_free(&r);
}

Test(train, bf16_resume_equals_uninterrupted_and_the_run_records_its_precision)
{
    need_bf16();
    char *dir = th_tmpdir();
    char *a = make_db(dir, "a.db", 45, 1), *b = make_db(dir, "b.db", 45, 1);
    struct train_opts o;
    bf16_opts(&o);
    o.threads = 2;
    o.steps = 6;
    struct losses La, Lb;
    size_t na, nb;
    float *wa = train_and_read(a, &o, &La, &na, NULL);
    o.steps = 3;
    free(train_and_read(b, &o, &Lb, &nb, NULL));
    struct train_opts r;
    train_opts_init(&r);
    r.resume = 1;
    r.steps = 6;
    r.threads = 1;
    struct train_result res;
    float *wb = train_and_read(b, &r, &Lb, &nb, &res); /* the run's precision: bf16 again */
    cr_assert_eq(La.n, 6);
    cr_assert_eq(Lb.n, 6);
    for (int i = 0; i < 6; i++)
        cr_assert(La.v[i] == Lb.v[i], "step %d: %.17g vs %.17g", i + 1, La.v[i], Lb.v[i]);
    cr_assert(memcmp(wa, wb, na * sizeof *wa) == 0, "final parameters differ after a bf16 resume");
    struct db *db;
    cr_assert_eq(db_open(b, 0, &db), 0);
    struct db_json_field pf = {.key = "precision"};
    cr_assert_eq(db_run_config_get(db, res.run_id, &pf, 1), 0, "%s", sl_errmsg());
    cr_assert(pf.type == DB_JSON_INTEGER && pf.i == 1, "the run's config says bf16 (%lld)", (long long)pf.i);
    db_close(db);
    /* the master weights are f32: the run may go on in fp32 */
    train_opts_init(&r);
    r.resume = 1;
    r.steps = 7;
    r.precision = 0;
    free(train_and_read(b, &r, &Lb, &nb, &res));
    cr_assert_eq(res.steps_done, 7);
    free(wa), free(wb), free(a), free(b);
    th_rmdir(dir);
    free(dir);
}

Test(train, bf16_without_bf16_gemms_runs_fp32_with_a_note_and_bad_values_are_usage_errors)
{
    char *dir = th_tmpdir();
    char *db = make_db(dir, "a.db", 30, 1);
    char args[1024], *out = NULL, *err = NULL;
    snprintf(args, sizeof args, "train %s --precision fp16 --steps 1", db);
    cr_assert_eq(th_run(args, NULL, &out, &err), 2, "%s", err);
    cr_assert(strstr(err, "--precision") && strstr(err, "fp16"), "%s", err);
    free(out), free(err);
    setenv("ONEDNN_MAX_CPU_ISA", "avx2", 1); /* oneDNN without a bf16 matmul, in the child */
    snprintf(args, sizeof args, "train %s --precision bf16 --steps 2 --layers 1 --emb 8 --hidden 8 --valid-every 0", db);
    cr_assert_eq(th_run(args, NULL, &out, &err), 0, "%s", err);
    unsetenv("ONEDNN_MAX_CPU_ISA");
    cr_assert(strstr(err, "--precision bf16: bf16 GEMMs: not available") && strstr(err, "stored as fp32"), "%s", err);
    free(out), free(err);
    struct db *d;
    cr_assert_eq(db_open(db, 0, &d), 0);
    struct db_json_field pf = {.key = "precision"};
    cr_assert_eq(db_run_config_get(d, 1, &pf, 1), 0, "%s", sl_errmsg());
    cr_assert(pf.type == DB_JSON_INTEGER && pf.i == 0, "the run ran and is stored as fp32 (%lld)", (long long)pf.i);
    db_close(d);
    free(db);
    th_rmdir(dir);
    free(dir);
}

/* ---- learning ---- */

TestSuite(learn_train, .timeout = 300);

Test(learn_train, copy_task_reaches_low_loss)
{
    char *dir = th_tmpdir();
    char *a = make_db(dir, "a.db", 400, 1);
    struct train_opts o;
    train_opts_init(&o);
    o.attention = 0; /* the training loop on the plain model; attention learns in test_model's learn_model */
    o.encoder = 0;
    o.layers = 1;
    o.emb = 32;
    o.hidden = 96;
    o.dropout = 0;
    o.batch = 32;
    o.lr = 0.01;
    o.steps = 1000;
    o.log_every = 50;
    o.valid_every = 0;
    o.save_every = 0;
    o.threads = 2;
    struct losses L;
    size_t n;
    struct train_result r;
    free(train_and_read(a, &o, &L, &n, &r));
    cr_log_info("copy task: first loss %.3f, last %.4f, valid ppl %.4f", L.v[0], L.v[L.n - 1], r.valid_ppl);
    cr_assert(L.v[0] > 2.0, "the first 50 steps average well above the end: %g", L.v[0]);
    cr_assert(L.v[L.n - 1] < 0.1, "last loss %g", L.v[L.n - 1]);
    cr_assert(r.valid_ppl < 2.0, "valid ppl %g (unseen sentences)", r.valid_ppl);
    free(a);
    th_rmdir(dir);
    free(dir);
}
