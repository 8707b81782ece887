/* tests/test_train.c: checkpoints (round trip, corrupt rows, pruning, SQL view of the rows), the training
 * loop (1 vs 2 threads bit-identical, resume equals uninterrupted, stop request, bad options, the stop on a
 * NaN/Inf loss), the option table (its invariants, the stored config read back on resume) and the
 * `seqlite train` command. Each test builds a tiny database (synthetic copy-task pairs, a 300-token
 * vocabulary) in a temporary directory. The learn_ suite trains a small model to copy (slower). */
#include <criterion/criterion.h>

#include <fcntl.h>
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
#include "nn/params.h"
#include "tests/helpers.h"
#include "train/checkpoint.h"
#include "train/options.h"
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
    cr_assert(strstr(err, "step 3/3 loss"), "%s", err);
    cr_assert(strstr(err, "valid ppl"), "%s", err);
    free(out), free(err);
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
              "--save-every", "7", "--threads", "1", (char *)NULL);
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
    int64_t saved = q_int(path, "SELECT max(step) FROM checkpoint");
    int64_t logged = q_int(path, "SELECT max(step) FROM train_log");
    cr_assert_gt(logged, saved); /* rows past the checkpoint: the resume rewrites them */
    int64_t n = saved + 10;
    char args[512], *err = NULL, *out = NULL;
    snprintf(args, sizeof args, "train '%s' --resume --steps %lld", path, (long long)n);
    cr_assert_eq(th_run(args, NULL, &out, &err), 0, "%s", err);
    cr_assert(strstr(err, "resuming run 1"), "%s", err);
    free(out), free(err);
    cr_assert_eq(q_int(path, "SELECT count(*) FROM run WHERE status = 'done'"), 1);
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
