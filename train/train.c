/* train/train.c: the training loop (see train.h).
 * One step: the batch (B rows) is cut into n_shards contiguous row ranges; shard k's gradient of
 * (loss_sum_k / n_tokens_of_the_whole_batch) goes to its own buffer gs[k] (zeroed by the thread that
 * computes it); then g = ((gs[0] + gs[1]) + gs[2]) + ... element by element (parallel over chunks),
 * in the same pass the global norm, then clipping and Adam in one pass (train/update.h: parallel over
 * fixed chunks).
 * Every sum has a fixed order, so the thread count never changes a bit of the result.
 * Data position: (epoch, batch index); batch_plan_epoch(e) is a pure function of (data, options, seed,
 * e), so a checkpoint's (step, epoch, batch) plus parameters and Adam moments resume exactly.
 * --patience and --lr-decay-on-stall: train/stall.h (the state is replayed from the run's validations
 * on resume, so a resumed run stops and decays where the uninterrupted one does).
 * All SQLite calls happen on the calling thread, outside the parallel regions.
 * ref: Sutskever, Vinyals & Le 2014; Kingma & Ba 2015; Pascanu et al. 2013 (clipping). */
#include "train/train.h"

#include "corpus/batch.h"
#include "corpus/db.h"
#include "corpus/vocab_store.h"
#include "model/seq2seq.h"
#include "nn/adam.h"
#include "nn/autocast.h"
#include "nn/gemm.h"
#include "nn/gemm_bf16.h"
#include "nn/params.h"
#include "train/checkpoint.h"
#include "train/options.h"
#include "train/stall.h"
#include "train/train_data.h"
#include "translate/evaluate.h"
#include "translate/translator.h"
#include "train/update.h"
#include "util/clock.h"
#include "util/err.h"
#include "util/jobs.h"
#include "util/rng.h"
#include "util/sbuf.h"

#include <math.h>
#include <omp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SRC_EOS 0               /* sources are not terminated by EOS (the lengths say where they end) */

/* A validation score waiting for the database (defer_*). */
struct deferred_metric {
    int64_t step;
    const char *name;  /* a string literal */
    double value;
    char *signature;   /* malloc'd (NULL: none) */
};

/* Training writes put off while another connection holds the write lock (defer_*), in order: log rows
 * and scores first, then the checkpoint. */
struct deferred {
    struct db_train_log *logs;
    size_t n_logs, cap_logs;
    struct deferred_metric *metrics;
    size_t n_metrics, cap_metrics;
    int save;          /* a checkpoint is due */
    int noted;         /* the busy note was printed for this episode */
};

/* One shard of a batch: a row range of it, in the same layout (struct s2s_batch). */
struct shard {
    int32_t *src;     /* (cap_rows, cap_s) */
    int32_t *tgt;     /* (cap_rows, cap_t) */
    int32_t *src_len; /* (cap_rows) */
    int32_t *tgt_len; /* (cap_rows) */
    struct s2s_batch bt;
    double loss;
    size_t n_tokens;
};

struct trainer {
    struct db *db;
    struct train_opts o; /* resolved: no unset values */
    int64_t run_id, src_vocab_id, tgt_vocab_id;
    struct bpe *src_bpe, *tgt_bpe;
    struct batch_data *train, *valid;
    struct batch_plan *plan, *vplan;
    struct batch *batch, *vbatch;
    struct s2s_model model;
    int model_ok;
    size_t N;                  /* floats per buffer */
    float *w, *m, *v;          /* (N) */
    struct autocast *ac;       /* --precision bf16: the products' bf16 weight copies (nn/autocast.h) */
    float **gs;                /* (n_shards) per-shard gradients (N) each; gs[0] receives the sum */
    double *sumsq;             /* (update_chunks(N)) scratch of update_sum_shards */
    struct shard *sh;          /* (n_shards) */
    size_t n_shards;           /* pieces each batch is cut into (--shards) */
    size_t cap_rows, cap_s, cap_t;
    int nthreads;
    struct s2s_workspace **ws; /* (nws) one per thread */
    int nws;
    size_t ws_B, ws_S, ws_T;   /* the size the workspaces were made for */
    int64_t step, epoch, bidx; /* optimizer steps done; next batch = bidx of epoch */
    double valid_ppl;
    double valid_bleu;         /* NAN when not measured at valid_step */
    int64_t valid_step;        /* step of the last validation (-1 none) */
    struct eval_set bleu_set;  /* the valid pairs translated for BLEU / chrF */
    struct translator *tr;     /* for them (NULL: no validation BLEU) */
    struct eval_out bleu_out;
    int64_t saved_step;        /* step of the last checkpoint (-1 none) */
    struct train_stall stall;  /* --patience / --lr-decay-on-stall state (train/stall.h) */
    int early_stop;            /* --patience ran out: the run ends after this step */
    int64_t last_ckpt;
    /* this invocation of train_run */
    double t0, limit_s;        /* its start (clock_now) and time limit in seconds (0: none) */
    int64_t step0, total_steps; /* the step it started at and the step the run ends at */
    size_t all_src, all_tgt;   /* tokens trained on */
    struct db_train_data data; /* the train corpora (data_*) */
    struct sbuf corpus_names;  /* a resumed run's --corpus (o.corpus points here) */
    struct db_train_data data_was; /* resume: the run's recorded train data */
    int data_stored;           /* resume: the run has a record (runs of older versions may not) */
    struct ckpt_info init;     /* --init-from: the checkpoint (init_*) */
    struct deferred later;     /* writes a busy database put off (defer_*) */
    /* the run's lease (lease_*) */
    int leased;                /* this process owns the run (claimed, not released or lost) */
    int lease_lost;            /* another process took the run over: write nothing more */
    double beat_at;            /* clock_now() of the last heartbeat */
};

/* The dropout stream of shard k at step t (1-based): three splitmix64 steps, each rng_mix64(z + gamma). */
static uint64_t shard_seed(uint64_t seed, int64_t t, size_t k)
{
    const uint64_t g = RNG_GOLDEN_GAMMA;
    return rng_mix64((rng_mix64((rng_mix64(seed + g) ^ (uint64_t)t) + g) ^ (uint64_t)k) + g);
}

/* ---- the run's lease (corpus/db.h: run ownership) ----
 * Claimed when a run is created or resumed (before a resume writes anything), refreshed from the loop,
 * released on every way out (report). A heartbeat is a small write: the database busy or failing only
 * skips it until the next step; finding the lease taken by another process stops the run at once. */

#define LEASE_BEAT_S (DB_RUN_HEARTBEAT_S / 2.0) /* the loop beats this often, well inside the period */
#define LEASE_BEAT_WAIT_MS 100                  /* a heartbeat waits this long for the write lock */

/* Resume, before anything is loaded or written: SL_EBUSY when a live process trains the run. */
static int lease_check(struct trainer *t)
{
    enum db_run_liveness live;
    char owner[128], self[128];
    int rc = db_run_liveness(t->db, t->run_id, &live, owner, sizeof owner);
    if (rc)
        return rc;
    db_run_owner_self(self, sizeof self);
    if (live == DB_RUN_ALIVE && strcmp(owner, self) != 0)
        return sl_err(SL_EBUSY, "run %lld is being trained by process %s: nothing was changed (stop that process "
                      "first, or wait for it to end)", (long long)t->run_id, owner);
    return 0;
}

static void note(struct trainer *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Takes the run's lease (a dead owner's is taken over, with a note). */
static int lease_claim(struct trainer *t)
{
    enum db_run_liveness live;
    char owner[128];
    int rc = db_run_liveness(t->db, t->run_id, &live, owner, sizeof owner);
    if (!rc)
        rc = db_run_claim(t->db, t->run_id);
    if (rc)
        return rc;
    if (live == DB_RUN_INTERRUPTED && owner[0])
        note(t, "run %lld was interrupted (its process %s is gone): this process takes it over", (long long)t->run_id,
             owner);
    t->leased = 1;
    t->beat_at = clock_now();
    return 0;
}

/* The heartbeat, when due. SL_EBUSY (t->lease_lost) when another process owns the run now. */
static int lease_beat(struct trainer *t)
{
    if (!t->leased || clock_now() - t->beat_at < LEASE_BEAT_S)
        return 0;
    db_set_busy_timeout(t->db, LEASE_BEAT_WAIT_MS);
    int rc = db_run_heartbeat(t->db, t->run_id);
    db_set_busy_timeout(t->db, -1);
    if (rc == SL_EBUSY) {
        t->leased = 0;
        t->lease_lost = 1;
        return sl_err(SL_EBUSY, "run %lld: another process took the run over at step %lld; this one stops "
                      "without writing more", (long long)t->run_id, (long long)t->step);
    }
    if (rc == 0)
        t->beat_at = clock_now(); /* else (busy, a store error): try again at the next step */
    return 0;
}

/* Gives the lease up (keeps the thread's error message). */
static void lease_release(struct trainer *t)
{
    if (!t->leased)
        return;
    char saved[512];
    snprintf(saved, sizeof saved, "%s", sl_errmsg());
    db_run_release(t->db, t->run_id);
    t->leased = 0;
    sl_err(0, "%s", saved);
}

/* ---- the train corpora (train/train_data.h) ---- */

/* Appends ,"key":"text" (JSON string escapes for '"' and '\\'; names hold no control characters). */
static int json_member_text(struct sbuf *b, const char *key, const char *text)
{
    int rc = sbuf_printf(b, ",\"%s\":\"", key);
    for (const char *p = text; *p && !rc; p++)
        rc = (*p == '"' || *p == '\\') ? sbuf_printf(b, "\\%c", *p) : sbuf_putc(b, *p);
    return rc ? rc : sbuf_putc(b, '"');
}

/* The corpora the run trains on: --corpus, or on resume the run's (a different --corpus conflicts), or
 * every train corpus. */
static int data_resolve(struct trainer *t)
{
    if (t->o.resume) {
        int rc = db_run_config_text(t->db, t->run_id, "corpus", &t->corpus_names);
        if (rc && rc != SL_ENOTFOUND)
            return rc;
        const char *stored = rc ? NULL : t->corpus_names.data;
        if (t->o.corpus && (!stored || strcmp(t->o.corpus, stored) != 0))
            return sl_err(SL_EINVAL, "--corpus %s conflicts with run %lld (%s%s); resume without it", t->o.corpus,
                          (long long)t->run_id, stored ? "corpus " : "every train corpus", stored ? stored : "");
        t->o.corpus = stored;
    }
    return train_data_resolve(t->db, t->o.corpus, &t->data);
}

/* Resume, before anything is written: the run's train corpora as recorded against now. Changed data is
 * refused unless --allow-new-data. */
static int data_check(struct trainer *t)
{
    int rc = db_run_train_data_get(t->db, t->run_id, &t->data_was, &t->data_stored);
    if (rc || !t->data_stored || train_data_same(&t->data_was, &t->data) || t->o.allow_new_data)
        return rc;
    char what[512];
    train_data_describe_change(t->db, &t->data_was, &t->data, what, sizeof what);
    return sl_err(SL_EINVAL, "the train data changed since run %lld started: %s; to train on it, resume with "
                  "--allow-new-data (recorded in the run), or start a new run", (long long)t->run_id, what);
}

/* The run's train data recorded (a new run, a run without a record) or, resumed with --allow-new-data on
 * changed data, the change noted in its config (member allow_new_data) and the record replaced. */
static int data_record(struct trainer *t)
{
    if (!t->o.resume || !t->data_stored)
        return db_run_train_data_set(t->db, t->run_id, &t->data);
    if (train_data_same(&t->data_was, &t->data))
        return 0;
    char what[512];
    train_data_describe_change(t->db, &t->data_was, &t->data, what, sizeof what);
    int rc = db_run_note_new_data(t->db, t->run_id, t->step, &t->data_was, &t->data);
    if (!rc)
        rc = db_run_train_data_set(t->db, t->run_id, &t->data);
    if (!rc)
        note(t, "--allow-new-data: run %lld continues on changed train data: %s (recorded in its config, "
             "member allow_new_data)", (long long)t->run_id, what);
    return rc;
}

/* ---- options (the table: train/options.h) ---- */

/* The run row of resolved options: the table's columns, the vocabularies, the threads used and the
 * config JSON (in config, which r->config borrows). */
static int run_row(const struct trainer *t, struct db_run *r, struct sbuf *config)
{
    char extra[128];
    memset(r, 0, sizeof *r);
    train_opts_run_columns(&t->o, r);
    r->src_vocab_id = t->src_vocab_id;
    r->tgt_vocab_id = t->tgt_vocab_id;
    r->threads = t->nthreads;
    snprintf(extra, sizeof extra, "\"src_eos\":%d,\"optimizer\":\"adam\",\"beta1\":0.9,\"beta2\":0.999,\"eps\":1e-8",
             SRC_EOS);
    struct sbuf more;
    sbuf_init(&more);
    int rc = sbuf_printf(&more, "%s", extra);
    if (!rc && t->o.corpus)
        rc = json_member_text(&more, "corpus", t->o.corpus);
    if (!rc && t->o.init_from)
        rc = sbuf_printf(&more, ",\"init_from\":%lld", (long long)t->o.init_from);
    if (!rc)
        rc = train_opts_config_json(&t->o, more.data, config);
    sbuf_free(&more);
    r->config = config->data;
    return rc;
}

/* Resume: the newest run's options and vocabularies, checking the given options against them. */
static int resume_opts(struct trainer *t, struct train_opts *o)
{
    int64_t id;
    struct db_run r;
    int rc = db_run_latest(t->db, &id);
    if (rc)
        return sl_err_prefix(rc, "--resume");
    if ((rc = db_run_get(t->db, id, &r)))
        return rc;
    t->run_id = id;
    t->src_vocab_id = r.src_vocab_id;
    t->tgt_vocab_id = r.tgt_vocab_id;
    const int64_t valid_every = o->valid_every;
    struct train_opts stored; /* the run's values of the options that may change */
    train_opts_init(&stored);
    rc = lease_check(t);
    if (!rc && !(rc = train_opts_resume(t->db, &r, o)) && !(rc = train_opts_resume(t->db, &r, &stored)) &&
        valid_every != TRAIN_UNSET && valid_every != stored.valid_every &&
        (o->patience > 0 || o->lr_decay_on_stall < 1))
        /* the stall state counts the validations on the run's schedule (train/stall.h) */
        rc = sl_err(SL_EINVAL, "--valid-every %lld conflicts with run %lld (valid-every %lld), whose --patience or "
                    "--lr-decay-on-stall counts the validations on that schedule; resume without it",
                    (long long)valid_every, (long long)id, (long long)stored.valid_every);
    db_run_clear(&r);
    return rc;
}

/* ---- fine-tuning: --init-from, a new run from another run's weights ---- */

/* the model options a run started from a checkpoint takes from that checkpoint's run */
static const char *const init_model_flags[] = {"layers", "emb", "hidden", "attention", "encoder",
                                               "reverse-source", NULL};

/* Before the defaults: the checkpoint read and its run's model options set in t->o (given ones must match). */
static int init_opts(struct trainer *t)
{
    if (!t->o.init_from)
        return 0;
    if (t->o.resume)
        return sl_err(SL_EINVAL, "--init-from starts a new run: leave out --resume");
    int rc = ckpt_info_get(t->db, t->o.init_from, &t->init);
    if (rc == SL_ENOTFOUND)
        return sl_err(SL_EINVAL, "--init-from %lld: no such checkpoint", (long long)t->o.init_from);
    struct db_run r;
    if (rc || (rc = db_run_get(t->db, t->init.run_id, &r)))
        return rc;
    char whose[96];
    snprintf(whose, sizeof whose, "checkpoint %lld (run %lld)", (long long)t->init.id, (long long)t->init.run_id);
    rc = train_opts_inherit(t->db, &r, init_model_flags, whose, &t->o);
    db_run_clear(&r);
    return rc;
}

/* After the vocabularies are chosen (the newest): they must be the checkpoint's. */
static int init_check_vocab(const struct trainer *t)
{
    if (!t->o.init_from || (t->src_vocab_id == t->init.src_vocab_id && t->tgt_vocab_id == t->init.tgt_vocab_id))
        return 0;
    return sl_err(SL_EINVAL, "--init-from %lld: the checkpoint was trained with vocabulary %lld/%lld (source/target),"
                  " the newest is %lld/%lld: a model cannot change its vocabulary; fine-tune before learning a "
                  "new one", (long long)t->init.id, (long long)t->init.src_vocab_id, (long long)t->init.tgt_vocab_id,
                  (long long)t->src_vocab_id, (long long)t->tgt_vocab_id);
}

/* The new run's parameters: the checkpoint's; the Adam moments stay zero and the step 0. */
static int init_weights(struct trainer *t)
{
    int rc = ckpt_state_load(t->db, t->init.id, &t->model, t->w, NULL, NULL);
    if (rc)
        return sl_err_prefix(rc, "--init-from %lld", (long long)t->init.id);
    note(t, "run %lld starts from checkpoint %lld (run %lld, step %lld) with a fresh optimizer", (long long)t->run_id,
         (long long)t->init.id, (long long)t->init.run_id, (long long)t->init.step);
    return 0;
}

/* ---- writes deferred while the database is busy ----
 * Another writer (a long import) may hold the write lock longer than the busy timeout. A training write
 * that fails so is kept in memory and retried before the next step (waiting DEFER_RETRY_WAIT_MS each
 * time, so training goes on); a due checkpoint is retried after the rows before it. The run's end waits
 * until everything is written. Other failures fail the run as before. */

#define DEFER_RETRY_WAIT_MS 100

static int defer_pending(const struct trainer *t) { return t->later.n_logs || t->later.n_metrics; }

/* rc of a write: a busy failure becomes 0 with *kept = 1 (the caller keeps the write). */
static int defer_if_busy(struct trainer *t, int rc, int *kept)
{
    *kept = db_failed_busy(t->db, rc);
    if (*kept && !t->later.noted) {
        t->later.noted = 1;
        note(t, "database busy (another writer): rows from step %lld deferred, retrying", (long long)t->step);
    }
    return *kept ? 0 : rc;
}

/* Stores a log row, or keeps it (behind any kept before it). */
static int defer_log(struct trainer *t, const struct db_train_log *l)
{
    int kept = 1, rc = 0;
    if (!defer_pending(t) && (rc = defer_if_busy(t, db_train_log_insert(t->db, t->run_id, l), &kept)))
        return rc;
    if (!kept)
        return 0;
    struct deferred *d = &t->later;
    if (d->n_logs == d->cap_logs) {
        size_t cap = d->cap_logs ? 2 * d->cap_logs : 64;
        struct db_train_log *p = realloc(d->logs, cap * sizeof *p);
        if (!p)
            return sl_err(SL_ENOMEM, "out of memory");
        d->logs = p;
        d->cap_logs = cap;
    }
    d->logs[d->n_logs++] = *l;
    return 0;
}

/* Stores a validation score of this step (name a string literal), or keeps it. */
static int defer_metric(struct trainer *t, const char *name, double value, const char *signature)
{
    int kept = 1, rc = 0;
    if (!defer_pending(t) &&
        (rc = defer_if_busy(t, db_metric_insert(t->db, t->run_id, 0, t->step, "valid", name, value, signature),
                            &kept)))
        return rc;
    if (!kept)
        return 0;
    struct deferred *d = &t->later;
    if (d->n_metrics == d->cap_metrics) {
        size_t cap = d->cap_metrics ? 2 * d->cap_metrics : 16;
        struct deferred_metric *p = realloc(d->metrics, cap * sizeof *p);
        if (!p)
            return sl_err(SL_ENOMEM, "out of memory");
        d->metrics = p;
        d->cap_metrics = cap;
    }
    struct deferred_metric *m = &d->metrics[d->n_metrics];
    *m = (struct deferred_metric){.step = t->step, .name = name, .value = value,
                                  .signature = signature ? strdup(signature) : NULL};
    if (signature && !m->signature)
        return sl_err(SL_ENOMEM, "out of memory");
    d->n_metrics++;
    return 0;
}

/* Writes the kept rows, in order, as far as the database lets. OUT: *done 1 when none is left. */
static int defer_flush(struct trainer *t, int *done)
{
    struct deferred *d = &t->later;
    size_t i = 0, j = 0;
    int rc = 0, kept = 0;
    for (; i < d->n_logs && !kept && !rc; i += !kept && !rc)
        rc = defer_if_busy(t, db_train_log_insert(t->db, t->run_id, &d->logs[i]), &kept);
    for (; !kept && !rc && j < d->n_metrics; j += !kept && !rc) {
        const struct deferred_metric *m = &d->metrics[j];
        rc = defer_if_busy(t, db_metric_insert(t->db, t->run_id, 0, m->step, "valid", m->name, m->value,
                                               m->signature), &kept);
        if (!kept && !rc)
            free(d->metrics[j].signature);
    }
    if (i) /* (the arrays are NULL until something was kept) */
        memmove(d->logs, d->logs + i, (d->n_logs - i) * sizeof *d->logs);
    d->n_logs -= i;
    if (j)
        memmove(d->metrics, d->metrics + j, (d->n_metrics - j) * sizeof *d->metrics);
    d->n_metrics -= j;
    *done = !defer_pending(t);
    return rc;
}

static int save(struct trainer *t);

/* Before a step: the kept rows, then a due checkpoint, each waiting only briefly for the lock. */
static int defer_retry(struct trainer *t)
{
    if (!defer_pending(t) && !t->later.save)
        return 0;
    db_set_busy_timeout(t->db, DEFER_RETRY_WAIT_MS);
    int done = 0, rc = defer_flush(t, &done);
    if (!rc && done && t->later.save)
        rc = save(t);
    db_set_busy_timeout(t->db, -1);
    if (!rc && !defer_pending(t) && !t->later.save)
        t->later.noted = 0;
    return rc;
}

/* The run's end: everything kept is written, however long the other writer holds the lock. */
static int defer_drain(struct trainer *t)
{
    int rc = 0, done = 0;
    while (!rc && (defer_pending(t) || t->later.save)) {
        if (!(rc = defer_flush(t, &done)) && done && t->later.save)
            rc = save(t);
    }
    return rc;
}

static void defer_free(struct trainer *t)
{
    for (size_t j = 0; j < t->later.n_metrics; j++)
        free(t->later.metrics[j].signature);
    free(t->later.metrics);
    free(t->later.logs);
}

/* ---- buffers ---- */

static int alloc_shards(struct trainer *t)
{
    t->n_shards = (size_t)t->o.shards;
    t->cap_rows = t->batch->cap_rows;
    if (t->vbatch && t->vbatch->cap_rows > t->cap_rows)
        t->cap_rows = t->vbatch->cap_rows;
    t->cap_s = (size_t)t->o.max_len + SRC_EOS;
    t->cap_t = (size_t)t->o.max_len;
    t->sh = calloc(t->n_shards, sizeof *t->sh);
    t->gs = calloc(t->n_shards, sizeof *t->gs);
    t->sumsq = malloc(update_chunks(t->N) * sizeof *t->sumsq);
    if (!t->sh || !t->gs || !t->sumsq)
        return sl_err(SL_ENOMEM, "out of memory");
    for (size_t k = 0; k < t->n_shards; k++) {
        struct shard *s = &t->sh[k];
        s->src = malloc(t->cap_rows * t->cap_s * sizeof *s->src);
        s->tgt = malloc(t->cap_rows * t->cap_t * sizeof *s->tgt);
        s->src_len = malloc(t->cap_rows * sizeof *s->src_len);
        s->tgt_len = malloc(t->cap_rows * sizeof *s->tgt_len);
        t->gs[k] = param_buf_create(t->N);
        if (!s->src || !s->tgt || !s->src_len || !s->tgt_len || !t->gs[k])
            return sl_err(SL_ENOMEM, "out of memory (%zu gradient buffers of %zu floats)", t->n_shards, t->N);
    }
    return 0;
}

/* Cuts batch b into n_shards shards by row range (contiguous rows; empty shards when B < n_shards). The
 * batch already has the model's layout (corpus/batch.h), so a shard is its rows, padded to its own
 * longest source and target. */
static int split_batch(struct trainer *t, const struct batch *b)
{
    const size_t B = b->B, n_shards = t->n_shards;
    size_t need_B = 0, need_S = 0, need_T = 0;
    for (size_t k = 0; k < n_shards; k++) {
        struct shard *s = &t->sh[k];
        size_t r0 = k * B / n_shards, r1 = (k + 1) * B / n_shards, n = r1 - r0, S = 0, T = 0;
        for (size_t r = r0; r < r1; r++) {
            S = (size_t)b->src_len[r] > S ? (size_t)b->src_len[r] : S;
            T = (size_t)b->tgt_len[r] > T ? (size_t)b->tgt_len[r] : T;
        }
        if (n > t->cap_rows || S > t->cap_s || T > t->cap_t)
            return sl_err(SL_EINVAL, "batch larger than the shard buffers");
        memset(s->src, 0, n * S * sizeof *s->src);
        memset(s->tgt, 0, n * T * sizeof *s->tgt);
        for (size_t i = 0; i < n; i++) {
            memcpy(s->src + i * S, b->src + (r0 + i) * b->S, (size_t)b->src_len[r0 + i] * sizeof *s->src);
            memcpy(s->tgt + i * T, b->tgt + (r0 + i) * b->T, (size_t)b->tgt_len[r0 + i] * sizeof *s->tgt);
        }
        memcpy(s->src_len, b->src_len + r0, n * sizeof *s->src_len);
        memcpy(s->tgt_len, b->tgt_len + r0, n * sizeof *s->tgt_len);
        s->bt = (struct s2s_batch){.B = n, .S = S, .T = T, .src = s->src, .src_len = s->src_len,
                                   .tgt = s->tgt, .tgt_len = s->tgt_len};
        need_B = n > need_B ? n : need_B;
        need_S = S > need_S ? S : need_S;
        need_T = T > need_T ? T : need_T;
    }
    if (need_B > t->ws_B || need_S > t->ws_S || need_T > t->ws_T) {
        /* grow every workspace here, outside the parallel region */
        t->ws_B = need_B > t->ws_B ? need_B : t->ws_B;
        t->ws_S = need_S > t->ws_S ? need_S : t->ws_S;
        t->ws_T = need_T > t->ws_T ? need_T : t->ws_T;
        for (int i = 0; i < t->nws; i++) {
            s2s_workspace_free(t->ws[i]);
            t->ws[i] = s2s_workspace_create(&t->model, t->ws_B, t->ws_S, t->ws_T);
            if (!t->ws[i])
                return SL_ENOMEM;
        }
    }
    return 0;
}

/* ---- steps ---- */

/* What every gradient job of one step shares. */
struct grad_job {
    struct trainer *t;
    float scale;    /* 1 / target tokens of the whole batch */
    uint64_t seed;
    int64_t tstep;  /* the step being computed (1-based) */
    float dropout;
};

/* Job k: shard k's forward + backward into gs[k], zeroed here by the thread that fills it; thread picks
 * the workspace (JOBS_STATIC: job k on thread k % nthreads, as schedule(static, 1)). */
static int grad_shard(void *ctx, size_t k, int thread)
{
    const struct grad_job *j = ctx;
    struct trainer *t = j->t;
    struct shard *s = &t->sh[k];
    memset(t->gs[k], 0, t->N * sizeof(float));
    s->loss = 0;
    s->n_tokens = 0;
    if (s->bt.B == 0)
        return 0;
    struct rng r;
    rng_seed(&r, shard_seed(j->seed, j->tstep, k));
    int rc = s2s_loss_forward_backward(&t->model, t->w, t->gs[k], t->ws[thread % t->nws], &s->bt, j->scale,
                                       j->dropout > 0 ? &r : NULL, &s->loss, &s->n_tokens);
    return rc ? sl_err_prefix(rc, "step %lld, shard %zu", (long long)j->tstep, k) : 0;
}

/* Forward + backward of every shard (gs[k] = d(loss_k)/dw / total), summed into gs[0], and the global
 * norm of the sum (chunk sums of squares in chunk order: independent of the thread count), in the same
 * parallel pass. OUT: loss_sum, gnorm. */
static int grad_step(struct trainer *t, size_t total, double *loss_sum, double *gnorm)
{
    struct grad_job j = {.t = t, .scale = 1.0f / (float)total, .seed = (uint64_t)t->o.seed,
                         .tstep = t->step + 1, .dropout = t->model.cfg.dropout};
    int rc = jobs_run(t->n_shards, t->nthreads, JOBS_STATIC, grad_shard, &j);
    if (rc)
        return rc;
    double sum = 0;
    for (size_t k = 0; k < t->n_shards; k++)
        sum += t->sh[k].loss;
    *loss_sum = sum;
    *gnorm = update_sum_shards(t->gs, t->n_shards, t->N, t->sumsq, t->nthreads);
    return 0;
}

/* The learning rate of step `step` (1-based): the --lr-decay schedule, a pure function of the options
 * and the step, times the stall factor of the validations before it (--lr-decay-on-stall; replayed on
 * resume, train/stall.h), so a resumed run follows the same rates. */
static double lr_at(const struct trainer *t, int64_t step)
{
    const struct train_opts *o = &t->o;
    if (o->lr_decay >= 1.0 || step <= o->lr_decay_start)
        return o->lr * t->stall.lr_scale;
    int64_t every = o->lr_decay_every > 0 ? o->lr_decay_every : (int64_t)batch_plan_count(t->plan);
    if (every < 1)
        every = 1;
    return o->lr * pow(o->lr_decay, (double)(1 + (step - o->lr_decay_start - 1) / every)) * t->stall.lr_scale;
}

/* Adam on the summed gradient gs[0] scaled by gscale (the clipping factor). */
static void adam_update(struct trainer *t, float gscale)
{
    const struct adam_hparams hp = adam_defaults((float)lr_at(t, t->step + 1));
    update_adam(t->w, t->gs[0], t->m, t->v, t->N, gscale, &hp, (long)(t->step + 1), t->nthreads);
}

/* Job k of a validation batch: shard k's teacher-forced loss (the workspace as in grad_shard). */
static int valid_shard(void *ctx, size_t k, int thread)
{
    struct trainer *t = ctx;
    struct shard *s = &t->sh[k];
    s->loss = 0;
    s->n_tokens = 0;
    if (s->bt.B == 0)
        return 0;
    return s2s_loss_forward(&t->model, t->w, t->ws[thread % t->nws], &s->bt, &s->loss, &s->n_tokens, NULL);
}

/* Validation perplexity over the valid plan (epoch 0, in order). */
static int validate(struct trainer *t, double *ppl)
{
    double sum = 0;
    size_t tokens = 0;
    size_t nb = batch_plan_count(t->vplan);
    for (size_t i = 0; i < nb; i++) {
        int rc = batch_plan_fill(t->vplan, i, t->vbatch);
        if (!rc)
            rc = split_batch(t, t->vbatch);
        if (rc)
            return rc;
        if ((rc = jobs_run(t->n_shards, t->nthreads, JOBS_STATIC, valid_shard, t)))
            return sl_err_prefix(rc, "validation");
        for (size_t k = 0; k < t->n_shards; k++) {
            sum += t->sh[k].loss;
            tokens += t->sh[k].n_tokens;
        }
    }
    *ppl = tokens ? exp(sum / (double)tokens) : NAN;
    return 0;
}

static void emit(struct trainer *t, struct train_progress *p)
{
    if (t->o.progress)
        t->o.progress(t->o.progress_ctx, p);
}

static void note(struct trainer *t, const char *fmt, ...)
{
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    struct train_progress p = {.event = TRAIN_EV_NOTE, .run_id = t->run_id, .step = t->step, .note = buf};
    emit(t, &p);
}

static int save(struct trainer *t)
{
    struct rng r;
    rng_seed(&r, shard_seed((uint64_t)t->o.seed, t->step, (size_t)-1));
    struct ckpt_save_req q = {
        .run_id = t->run_id,
        .step = t->step,
        .epoch = t->epoch,
        .batch = t->bidx,
        .src_vocab_id = t->src_vocab_id,
        .tgt_vocab_id = t->tgt_vocab_id,
        .model = &t->model,
        .w = t->w,
        .m = t->m,
        .v = t->v,
        .valid_ppl = t->valid_step == t->step ? t->valid_ppl : NAN,
        .has_bleu = t->valid_step == t->step && !isnan(t->valid_bleu),
        .valid_bleu = t->valid_bleu,
        .best_by_bleu = (int)t->o.best_by_bleu,
        .rng = &r,
        .keep = t->o.keep,
    };
    int64_t id;
    if (defer_pending(t)) { /* the rows before it first (defer_retry) */
        t->later.save = 1;
        return 0;
    }
    int rc = ckpt_save(t->db, &q, &id);
    if (db_failed_busy(t->db, rc)) {
        if (!t->later.save)
            note(t, "database busy (another writer): checkpoint at step %lld deferred, retrying", (long long)t->step);
        t->later.save = 1;
        return 0;
    }
    /* the run row's steps_done is refreshed by the next save or the end when busy now */
    if (!rc) {
        int urc = db_run_update(t->db, t->run_id, "running", t->step, 0, NULL);
        rc = db_failed_busy(t->db, urc) ? 0 : urc;
    }
    if (rc)
        return rc;
    t->later.save = 0;
    t->saved_step = t->step;
    t->last_ckpt = id;
    struct train_progress p = {.event = TRAIN_EV_SAVE, .run_id = t->run_id, .epoch = t->epoch, .step = t->step,
                               .checkpoint_id = id};
    emit(t, &p);
    return 0;
}

/* The validation just measured, for --patience and --lr-decay-on-stall (train/stall.h): counted when on
 * the --valid-every schedule; sets early_stop when the patience ran out. Returns train_stall_update's
 * answer (1 improved, 0 not, -1 not counted). */
static int count_validation(struct trainer *t)
{
    if (t->o.valid_every <= 0 || t->step % t->o.valid_every != 0)
        return -1;
    const double score = t->o.best_by_bleu ? t->valid_bleu : t->valid_ppl;
    int r = train_stall_update(&t->stall, t->step, score, (int)t->o.best_by_bleu, t->o.lr_decay_on_stall);
    if (r == 0 && t->o.patience > 0 && t->stall.stalled >= t->o.patience)
        t->early_stop = 1;
    return r;
}

/* Validation: perplexity over the valid split, then (when asked) BLEU and chrF of the first
 * --valid-bleu valid pairs translated with the current parameters (translate/evaluate.h, as seqlite eval
 * does); metric rows for each. */
static int do_validate(struct trainer *t)
{
    if (!t->vplan || t->valid_step == t->step)
        return 0;
    const double v0 = clock_now();
    int rc = validate(t, &t->valid_ppl);
    if (rc)
        return rc;
    t->valid_step = t->step;
    t->valid_bleu = NAN;
    if ((rc = defer_metric(t, "ppl", t->valid_ppl, "teacher-forced")))
        return rc;
    struct train_progress p = {.event = TRAIN_EV_VALID, .run_id = t->run_id, .epoch = t->epoch,
                               .step = t->step, .valid_ppl = t->valid_ppl, .valid_bleu = NAN,
                               .valid_chrf = NAN};
    if (t->tr) {
        translator_weights_changed(t->tr);
        if ((rc = eval_translate(t->tr, &t->bleu_set, &t->bleu_out)))
            return sl_err_prefix(rc, "validation BLEU");
        t->valid_bleu = t->bleu_out.bleu.score;
        p.valid_bleu = t->bleu_out.bleu.score;
        p.valid_chrf = t->bleu_out.chrf.score;
        p.valid_sents = (int64_t)t->bleu_set.n;
        if ((rc = defer_metric(t, "bleu", p.valid_bleu, t->bleu_out.bleu.signature.data)) ||
            (rc = defer_metric(t, "chrf", p.valid_chrf, t->bleu_out.chrf.signature.data)))
            return rc;
    }
    p.valid_seconds = clock_now() - v0;
    const int improved = count_validation(t);
    p.best_step = t->stall.best_step;
    p.stalled = t->stall.stalled;
    emit(t, &p);
    if (improved == 0 && (t->o.patience > 0 || t->o.lr_decay_on_stall < 1)) {
        char lr[48] = "";
        if (t->o.lr_decay_on_stall < 1)
            snprintf(lr, sizeof lr, "; lr now %g", lr_at(t, t->step + 1));
        note(t, "step %lld: no improvement of valid %s in %lld validation%s (best %.4g at step %lld)%s",
             (long long)t->step, t->o.best_by_bleu ? "BLEU" : "ppl", (long long)t->stall.stalled,
             t->stall.stalled == 1 ? "" : "s", t->stall.best, (long long)t->stall.best_step, lr);
    }
    return 0;
}

/* The valid pairs and translator for validation BLEU (after the model and thread count are set). */
static int setup_bleu(struct trainer *t)
{
    if (!t->vplan || t->o.valid_bleu == 0)
        return 0;
    int rc = eval_set_load(t->db, "valid", (size_t)t->o.valid_bleu, &t->bleu_set);
    if (rc || t->bleu_set.n == 0)
        return rc;
    struct translate_opts to;
    translate_opts_default(&to);
    to.beam = (size_t)t->o.valid_beam;
    to.threads = t->nthreads;
    to.src_eos = SRC_EOS;
    if (!(t->tr = translator_create(&t->model, t->w, t->src_bpe, t->tgt_bpe, &to)))
        return sl_err_prefix(SL_ENOMEM, "validation BLEU");
    return 0;
}

/* ---- setup ---- */

static int load_data(struct trainer *t)
{
    struct corpus_vocab_encoder enc = {.src = t->src_bpe, .tgt = t->tgt_bpe};
    tok_ids_init(&enc.ids);
    int rc = 0;
    t->train = batch_data_create((size_t)t->o.max_len);
    t->valid = batch_data_create((size_t)t->o.max_len);
    if (!t->train || !t->valid) {
        rc = SL_ENOMEM;
        goto done;
    }
    if ((rc = batch_data_load_in(t->train, t->db, "train", t->data.corpora, t->data.n, corpus_vocab_encode, &enc)))
        goto done;
    if (t->train->n == 0) {
        rc = sl_err(SL_ENOTFOUND, "%s: no training pairs (import a train split first; %zu dropped as longer than "
                    "--max-len %lld)", db_path(t->db), t->train->n_long, (long long)t->o.max_len);
        goto done;
    }
    if ((rc = batch_data_load(t->valid, t->db, "valid", corpus_vocab_encode, &enc)))
        goto done;
    if (t->o.valid_max > 0 && t->valid->n > (size_t)t->o.valid_max)
        t->valid->n = (size_t)t->o.valid_max; /* the first valid_max pairs (import order) */
done:
    tok_ids_free(&enc.ids);
    return rc;
}

static int setup(struct trainer *t)
{
    int rc;
    if (t->o.resume) {
        if ((rc = corpus_vocab_load(t->db, t->src_vocab_id, &t->src_bpe)))
            return rc;
        if (t->tgt_vocab_id == t->src_vocab_id)
            t->tgt_bpe = t->src_bpe;
        else if ((rc = corpus_vocab_load(t->db, t->tgt_vocab_id, &t->tgt_bpe)))
            return rc;
    } else {
        if ((rc = corpus_vocab_load_latest(t->db, "src", &t->src_bpe, &t->src_vocab_id)))
            return rc;
        if ((rc = corpus_vocab_latest(t->db, "tgt", &t->tgt_vocab_id)))
            return rc;
        if (t->tgt_vocab_id == t->src_vocab_id)
            t->tgt_bpe = t->src_bpe;
        else if ((rc = corpus_vocab_load(t->db, t->tgt_vocab_id, &t->tgt_bpe)))
            return rc;
    }
    if ((rc = load_data(t)))
        return rc;
    struct batch_opts bo = {.max_sents = (size_t)t->o.batch, .max_tokens = (size_t)t->o.batch_tokens,
                            .seed = (uint64_t)t->o.seed, .src_eos = SRC_EOS};
    t->plan = batch_plan_create(t->train, &bo);
    if (!t->plan)
        return SL_ENOMEM;
    /* checked here, before the run row exists: a budget no pair fits is a usage error */
    if (batch_plan_n_over(t->plan) == t->train->n)
        return sl_err(SL_EINVAL, "--batch-tokens %lld is smaller than the shortest pair (needs at least %zu)",
                      (long long)t->o.batch_tokens, batch_plan_min_tokens(t->plan));
    if (!(t->batch = batch_create(t->plan)))
        return SL_ENOMEM;
    if (t->valid->n > 0) {
        t->vplan = batch_plan_create(t->valid, &bo);
        if (!t->vplan || !(t->vbatch = batch_create(t->vplan)) || (rc = batch_plan_epoch(t->vplan, 0)))
            return rc ? rc : SL_ENOMEM;
    }
    struct s2s_config cfg = {
        .V_src = bpe_size(t->src_bpe),
        .V_tgt = bpe_size(t->tgt_bpe),
        .E = (size_t)t->o.emb,
        .H = (size_t)t->o.hidden,
        .L = (size_t)t->o.layers,
        .dropout = (float)t->o.dropout,
        .reverse_source = (int)t->o.reverse_source,
        .attention = (enum attn_score)t->o.attention,
        .bidirectional = t->o.encoder == 1,
        .label_smoothing = (float)t->o.label_smoothing,
    };
    if ((rc = s2s_model_init(&t->model, &cfg)))
        return rc;
    t->model_ok = 1;
    t->N = t->model.table.total;
    t->w = param_buf_create(t->N);
    t->m = param_buf_create(t->N);
    t->v = param_buf_create(t->N);
    if (!t->w || !t->m || !t->v)
        return sl_err(SL_ENOMEM, "out of memory (model of %zu floats)", t->N);
    if (t->o.precision == PRECISION_BF16 && !autocast_available(PRECISION_BF16)) {
        note(t, "--precision bf16: %s (the run is stored as fp32)", gemm_bf16_note());
        t->o.precision = PRECISION_FP32;
    }
    /* per-shard products run on their own thread: one oneDNN thread outside OpenMP regions too */
    if (t->o.precision == PRECISION_BF16 && !(t->ac = autocast_create(PRECISION_BF16, t->w, t->N, 1)))
        return SL_ENOMEM;
    if ((rc = alloc_shards(t)))
        return rc;
    t->nthreads = t->o.threads > 0 ? (int)t->o.threads : omp_get_num_procs();
    if (t->nthreads < 1)
        t->nthreads = 1;
    t->nws = t->nthreads < (int)t->n_shards ? t->nthreads : (int)t->n_shards;
    t->ws = calloc((size_t)t->nws, sizeof *t->ws);
    if (!t->ws)
        return SL_ENOMEM;
    /* sized for a typical shard; split_batch grows them (serially) when a shard needs more */
    t->ws_B = (t->cap_rows + t->n_shards - 1) / t->n_shards;
    t->ws_S = t->cap_s;
    t->ws_T = t->cap_t;
    if (t->o.batch_tokens > 0) {
        t->ws_S = t->ws_T = 1;
        t->ws_B = 1;
    }
    for (int i = 0; i < t->nws; i++)
        if (!(t->ws[i] = s2s_workspace_create(&t->model, t->ws_B, t->ws_S, t->ws_T)))
            return SL_ENOMEM;
    return setup_bleu(t);
}

static void teardown(struct trainer *t)
{
    autocast_free(t->ac);
    translator_free(t->tr);
    eval_out_free(&t->bleu_out);
    eval_set_free(&t->bleu_set);
    for (int i = 0; t->ws && i < t->nws; i++)
        s2s_workspace_free(t->ws[i]);
    free(t->ws);
    for (size_t k = 0; t->sh && k < t->n_shards; k++) {
        free(t->sh[k].src);
        free(t->sh[k].tgt);
        free(t->sh[k].src_len);
        free(t->sh[k].tgt_len);
    }
    free(t->sh);
    for (size_t k = 0; t->gs && k < t->n_shards; k++)
        param_buf_free(t->gs[k]);
    free(t->gs);
    free(t->sumsq);
    param_buf_free(t->w);
    param_buf_free(t->m);
    param_buf_free(t->v);
    if (t->model_ok)
        s2s_model_free(&t->model);
    batch_free(t->batch);
    batch_free(t->vbatch);
    batch_plan_free(t->plan);
    batch_plan_free(t->vplan);
    batch_data_free(t->train);
    batch_data_free(t->valid);
    if (t->tgt_bpe != t->src_bpe)
        bpe_free(t->tgt_bpe);
    bpe_free(t->src_bpe);
    db_train_data_clear(&t->data);
    db_train_data_clear(&t->data_was);
    defer_free(t);
    sbuf_free(&t->corpus_names);
}

/* ---- the run: options, resume or start, the loop, the end ---- */

/* Options resolved (the run's on resume, then the defaults) and checked; data, model and buffers made. */
static int prepare(struct trainer *t)
{
    int rc;
    if ((t->o.resume && (rc = resume_opts(t, &t->o))) || (rc = init_opts(t)))
        return rc;
    train_opts_fill_defaults(&t->o);
    if ((rc = train_opts_check(&t->o)) || (rc = data_resolve(t)) || (t->o.resume && (rc = data_check(t))))
        return rc;
    if ((rc = setup(t)))
        return rc;
    return init_check_vocab(t);
}

/* Resume: parameters, Adam moments, step and data position from the run's last checkpoint; the run's
 * rows after it are deleted (it is continued from there). */
static int resume_state(struct trainer *t)
{
    int64_t cid;
    struct ckpt_info ci;
    int rc;
    if ((rc = lease_claim(t)) || (rc = ckpt_find(t->db, t->run_id, "last", &cid)) || (rc = ckpt_info_get(t->db, cid, &ci)) ||
        (rc = ckpt_state_load(t->db, cid, &t->model, t->w, t->m, t->v)))
        return rc;
    t->step = ci.step;
    t->epoch = ci.epoch;
    t->bidx = ci.batch;
    t->saved_step = t->step;
    t->last_ckpt = cid;
    if (!isnan(ci.valid_ppl)) {
        t->valid_ppl = ci.valid_ppl;
        t->valid_bleu = ci.valid_bleu;
        t->valid_step = t->step;
    }
    if ((rc = db_run_rewind(t->db, t->run_id, t->step)) || (rc = data_record(t)) ||
        (rc = train_stall_replay(t->db, t->run_id, t->o.best_by_bleu ? "bleu" : "ppl", t->o.valid_every, t->step,
                                 (int)t->o.best_by_bleu, t->o.lr_decay_on_stall, &t->stall)) ||
        (rc = db_run_update(t->db, t->run_id, "running", t->step, t->nthreads, "")))
        return rc;
    t->early_stop = t->o.patience > 0 && t->stall.stalled >= t->o.patience;
    note(t, "resuming run %lld from checkpoint %lld (step %lld, epoch %lld, batch %lld)", (long long)t->run_id,
         (long long)cid, (long long)t->step, (long long)t->epoch + 1, (long long)t->bidx);
    return 0;
}

/* A new run: parameters initialised from the seed, the run row stored. */
static int create_run(struct trainer *t)
{
    struct rng r;
    rng_seed(&r, (uint64_t)t->o.seed);
    if (!t->o.init_from)
        s2s_params_init(&t->model, t->w, &r);
    struct db_run row;
    struct sbuf config;
    sbuf_init(&config);
    int rc = run_row(t, &row, &config);
    if (!rc)
        rc = db_run_create(t->db, &row, &t->run_id);
    if (!rc)
        rc = lease_claim(t);
    if (!rc)
        rc = data_record(t);
    if (!rc && t->o.init_from)
        rc = init_weights(t);
    sbuf_free(&config);
    return rc;
}

/* Loss and tokens since the last progress line. */
struct interval {
    double loss;     /* summed over the target tokens */
    size_t src, tgt; /* tokens (targets: each row's tokens and EOS) */
    double t0;       /* when the interval began */
};

/* A progress line: a train_log row and TRAIN_EV_LOG for the interval, which starts again. */
static int log_interval(struct trainer *t, struct interval *iv, double gnorm, struct train_result *out)
{
    double now = clock_now(), dt = now - iv->t0;
    double rate = (double)(t->step - t->step0) / (now - t->t0);
    double eta = rate > 0 ? (double)(t->total_steps - t->step) / rate : -1;
    if (t->limit_s > 0 && (eta < 0 || eta > t->limit_s - (now - t->t0)))
        eta = t->limit_s - (now - t->t0);
    struct train_progress p = {
        .event = TRAIN_EV_LOG, .run_id = t->run_id, .epoch = t->epoch, .step = t->step,
        .total_steps = t->total_steps, .loss = iv->loss / (double)iv->tgt,
        .ppl = exp(iv->loss / (double)iv->tgt), .lr = lr_at(t, t->step), .grad_norm = gnorm,
        .src_tok_s = dt > 0 ? (double)iv->src / dt : 0, .tgt_tok_s = dt > 0 ? (double)iv->tgt / dt : 0,
        .elapsed_s = now - t->t0, .eta_s = eta,
    };
    struct db_train_log l = {.step = t->step, .epoch = t->epoch, .loss = p.loss, .ppl = p.ppl, .lr = p.lr,
                             .grad_norm = gnorm, .src_tok_s = p.src_tok_s, .tgt_tok_s = p.tgt_tok_s,
                             .elapsed_s = p.elapsed_s};
    int rc = defer_log(t, &l);
    if (rc)
        return rc;
    emit(t, &p);
    out->last_loss = p.loss;
    *iv = (struct interval){.t0 = clock_now()};
    return 0;
}

/* Adam steps until the step or epoch limit, a stop request or the time limit (OUT: *stopped then), with
 * progress lines, validations and checkpoints at their intervals. */
/* A stop request or the time limit: the loop ends before the next step. */
static int stop_due(const struct trainer *t)
{
    return (t->o.stop && *t->o.stop) || (t->limit_s > 0 && clock_now() - t->t0 >= t->limit_s);
}

static int train_loop(struct trainer *t, struct train_result *out, int *stopped)
{
    int rc = batch_plan_epoch(t->plan, (uint64_t)t->epoch);
    if (rc)
        return rc;
    const size_t per_epoch = batch_plan_count(t->plan);
    t->total_steps = t->o.steps > 0 ? t->o.steps : t->o.epochs * (int64_t)per_epoch;
    if (!t->vplan)
        note(t, "no valid split: validation perplexity is skipped (import one with --split valid)%s",
             t->o.patience > 0 || t->o.lr_decay_on_stall < 1 ? "; --patience and --lr-decay-on-stall do nothing" : "");
    if (t->train->n_long)
        note(t, "%zu training pair%s longer than --max-len %lld left out", t->train->n_long,
             t->train->n_long == 1 ? "" : "s", (long long)t->o.max_len);
    if (batch_plan_n_over(t->plan))
        note(t, "%zu training pair%s longer than --batch-tokens %lld allows left out", batch_plan_n_over(t->plan),
             batch_plan_n_over(t->plan) == 1 ? "" : "s", (long long)t->o.batch_tokens);
    note(t, "run %lld: %zu pairs, %zu batches per epoch, %zu parameters, %d threads, %zu shards%s", (long long)t->run_id,
         t->train->n, per_epoch, param_table_count(&t->model.table), t->nthreads, t->n_shards,
         t->ac ? ", bf16 products" : "");

    t->limit_s = t->o.time_limit_min > 0 ? 60.0 * t->o.time_limit_min : 0;
    t->step0 = t->step;
    struct interval iv = {.t0 = clock_now()};
    double gnorm = 0;
    for (;;) {
        if (t->bidx >= (int64_t)per_epoch) {
            t->epoch++;
            t->bidx = 0;
            if ((rc = batch_plan_epoch(t->plan, (uint64_t)t->epoch)))
                return rc;
        }
        if ((t->o.steps > 0 ? t->step >= t->o.steps : t->epoch >= t->o.epochs) || t->early_stop)
            break;
        if (stop_due(t)) {
            *stopped = 1;
            break;
        }
        if ((rc = lease_beat(t)) || (rc = defer_retry(t)))
            return rc;
        if ((rc = batch_plan_fill(t->plan, (size_t)t->bidx, t->batch)) || (rc = split_batch(t, t->batch)))
            return rc;
        size_t total = t->batch->n_tgt_tokens + t->batch->B; /* each row: its tokens and EOS */
        double loss_sum = 0;
        if ((rc = grad_step(t, total, &loss_sum, &gnorm)))
            return rc;
        if (!isfinite(loss_sum) || !isfinite(gnorm))
            return sl_err(SL_ENUM,
                          "step %lld: the loss became %s (gradient norm %g): training diverged; try a smaller "
                          "--lr; the last good checkpoint (%lld) is kept",
                          (long long)t->step + 1, isfinite(loss_sum) ? "finite but the gradient not" : "NaN/Inf",
                          gnorm, (long long)t->last_ckpt);
        /* global-norm clipping, applied inside the Adam pass (train/update.h) */
        adam_update(t, gnorm > t->o.clip ? (float)(t->o.clip / gnorm) : 1.0f);
        if (t->ac) { /* the bf16 copies of the new weights, made on every thread before the next step */
            autocast_weights_changed(t->ac);
            autocast_refresh(t->ac, t->nthreads);
        }
        t->step++;
        t->bidx++;
        iv.loss += loss_sum;
        iv.src += t->batch->n_src_tokens;
        iv.tgt += total;
        t->all_src += t->batch->n_src_tokens;
        t->all_tgt += total;
        out->steps_done = t->step;
        int last = t->o.steps > 0 ? t->step >= t->o.steps
                                  : (t->bidx >= (int64_t)per_epoch && t->epoch + 1 >= t->o.epochs);
        if ((t->step % t->o.log_every == 0 || last) && (rc = log_interval(t, &iv, gnorm, out)))
            return rc;
        if (t->o.valid_every > 0 && t->step % t->o.valid_every == 0 && (rc = do_validate(t)))
            return rc;
        if (t->early_stop)
            break; /* finish_run saves this step */
        /* the run's last step is saved by finish_run, after its validation, so the last checkpoint carries
         * the last scores and can become the best (also with --valid-every 0) */
        if (t->o.save_every > 0 && t->step % t->o.save_every == 0 && !last && !stop_due(t) && (rc = save(t)))
            return rc;
    }
    return 0;
}

/* The end of a run that finished or stopped: a last validation and checkpoint, the run row's status and
 * the throughput of this invocation. */
static int finish_run(struct trainer *t, struct train_result *out, int stopped)
{
    int rc;
    if ((rc = do_validate(t)))
        return rc;
    if ((t->saved_step != t->step && (rc = save(t))) || (rc = defer_drain(t)))
        return rc;
    snprintf(out->status, sizeof out->status, "%s", stopped ? "stopped" : "done");
    char msg[160];
    if (t->early_stop && !stopped) {
        snprintf(msg, sizeof msg, "early stop: no improvement in %lld validations (best step %lld)",
                 (long long)t->o.patience, (long long)t->stall.best_step);
        note(t, "%s", msg);
    } else {
        snprintf(msg, sizeof msg, "%s after %lld steps",
                 stopped ? ((t->o.stop && *t->o.stop) ? "stopped on request" : "stopped at the time limit")
                         : "finished",
                 (long long)t->step);
    }
    do /* waits out another writer, like defer_drain */
        rc = db_run_update(t->db, t->run_id, out->status, t->step, 0, msg);
    while (db_failed_busy(t->db, rc));
    double el = clock_now() - t->t0;
    out->src_tok_s = el > 0 ? (double)t->all_src / el : 0;
    out->tgt_tok_s = el > 0 ? (double)t->all_tgt / el : 0;
    return rc;
}

/* Fills *out as far as known; a failure after the run started marks it 'failed' (its message kept for
 * the caller). Returns rc. */
static int report(struct trainer *t, struct train_result *out, int rc, int started)
{
    out->elapsed_s = clock_now() - t->t0;
    out->steps_done = t->step;
    out->epoch = t->epoch;
    out->valid_ppl = t->valid_ppl;
    out->valid_bleu = t->valid_bleu;
    out->last_checkpoint_id = t->last_ckpt;
    char msg[512]; /* the failure's message: the queries below must not replace it */
    snprintf(msg, sizeof msg, "%s", rc ? sl_errmsg() : "");
    if (started && t->run_id) {
        int64_t best;
        if (db_ckpt_find(t->db, t->run_id, "best", &best) == 0)
            out->best_checkpoint_id = best;
    }
    if (rc && started && !t->lease_lost)
        db_run_update(t->db, t->run_id, "failed", t->saved_step >= 0 ? t->saved_step : 0, 0, msg);
    lease_release(t);
    if (rc)
        sl_err(rc, "%s", msg);
    return rc;
}

int train_run(struct db *db, const struct train_opts *opts, struct train_result *out)
{
    memset(out, 0, sizeof *out);
    out->valid_ppl = out->valid_bleu = NAN;
    snprintf(out->status, sizeof out->status, "failed");
    struct trainer t;
    memset(&t, 0, sizeof t);
    t.db = db;
    t.o = *opts;
    t.valid_step = t.saved_step = -1;
    t.valid_ppl = t.valid_bleu = NAN;
    train_stall_init(&t.stall);
    t.t0 = clock_now();
    sbuf_init(&t.corpus_names);
    eval_out_init(&t.bleu_out, 0);
    int rc, started = 0, stopped = 0, gemm_threads = 0;
    if ((rc = prepare(&t)))
        goto done;
    gemm_threads = gemm_get_threads();
    gemm_set_threads(1); /* every model call below runs inside OpenMP threads */
    if ((rc = t.o.resume ? resume_state(&t) : create_run(&t)))
        goto done;
    started = 1;
    out->run_id = t.run_id;
    if (t.ac) { /* the weights were loaded or initialised after it was made */
        autocast_weights_changed(t.ac);
        autocast_use(t.ac);
    }
    if (!(rc = train_loop(&t, out, &stopped)))
        rc = finish_run(&t, out, stopped);
done:
    report(&t, out, rc, started);
    if (gemm_threads > 0)
        gemm_set_threads(gemm_threads);
    teardown(&t);
    return rc;
}
