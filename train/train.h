/* train/train.h: the training loop. Loads the train (and valid) split with the newest vocabulary,
 * builds or resumes a run, and takes Adam steps on length-bucketed batches until the step / epoch /
 * time limit or a stop request, saving checkpoints and logging to the database (train_log, metric,
 * checkpoint rows; only from the calling thread).
 * Data parallelism: each batch is cut into `shards` row ranges (independent of the thread count);
 * OpenMP threads compute the shards' gradients into per-shard buffers, which are summed in shard order
 * (parallel over parameter chunks), so a run gives bit-identical losses with any number of threads.
 * Dropout masks of shard k at step t come from an rng seeded by (seed, t, k), so a resumed run
 * repeats an uninterrupted one exactly (parameters, Adam moments, step and data position restored).
 * Defaults (E 256, H 256, L 2, 64 sentences, Adam 0.003) were chosen on an en-de corpus with a joint
 * BPE so that the main job's short run on two cores covers a few epochs (the timings: git history).
 * ref: Sutskever, Vinyals & Le 2014 (reversed sources, clipping at 5); Kingma & Ba 2015 (Adam). */
#ifndef SL_TRAIN_TRAIN_H
#define SL_TRAIN_TRAIN_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

struct db;

#define TRAIN_UNSET (-1) /* an integer option not given (the default applies, or on resume the run's) */

enum train_event {
    TRAIN_EV_LOG = 0,   /* a periodic progress line */
    TRAIN_EV_VALID = 1, /* validation measured (valid_ppl; valid_bleu / valid_chrf when translated) */
    TRAIN_EV_SAVE = 2,  /* a checkpoint was saved (checkpoint_id) */
    TRAIN_EV_NOTE = 3,  /* a message for the user (note) */
};

struct train_progress {
    enum train_event event;
    int64_t run_id;
    int64_t epoch, step, total_steps; /* epoch 0-based; step = optimizer steps done */
    double loss, ppl;                 /* mean per target token since the last log line */
    double lr, grad_norm;             /* grad_norm before clipping, last step */
    double src_tok_s, tgt_tok_s;      /* throughput since the last log line */
    double elapsed_s, eta_s;          /* eta_s < 0: unknown */
    double valid_ppl;                 /* TRAIN_EV_VALID */
    double valid_bleu, valid_chrf;    /* TRAIN_EV_VALID: NAN when not measured */
    int64_t valid_sents;              /* TRAIN_EV_VALID: pairs translated for them */
    int64_t best_step;                /* TRAIN_EV_VALID: step of the best validation so far (0: none) */
    int64_t stalled;                  /* TRAIN_EV_VALID: validations in a row without improving it */
    double valid_seconds;             /* TRAIN_EV_VALID: time the validation took */
    int64_t checkpoint_id;            /* TRAIN_EV_SAVE */
    const char *note;                 /* TRAIN_EV_NOTE (borrowed, valid during the call) */
};

/* Options. Integers TRAIN_UNSET, doubles NAN and strings NULL mean "not given". Each option's default,
 * ranges, resume policy and storage are its row in the table (train/options.h); on resume the given model
 * and data options must equal the run's (SL_EINVAL otherwise), while epochs, steps, intervals, keep,
 * time_limit_min, threads (not given: the run's) and log_format may change (valid_every not while patience
 * or lr_decay_on_stall is on: train/stall.h counts the validations on the run's schedule). */
struct train_opts {
    const char *name;                 /* run name (NULL: "run-<id>") */
    int64_t layers, emb, hidden;
    double dropout;
    int64_t batch, batch_tokens;      /* sentences per batch; padded tokens per batch (0: no budget) */
    int64_t epochs, steps;            /* steps 0: no step limit (else it wins over epochs) */
    double lr, clip;
    double lr_decay;                  /* 1: none; < 1: lr * lr_decay^k, k = 1 + (step - start - 1) / every */
    int64_t lr_decay_start;           /* for steps after this one */
    int64_t lr_decay_every;           /* steps per decay (0: one epoch of batches) */
    int64_t seed;
    int64_t threads;                  /* 0: all cores */
    int64_t reverse_source;           /* 0 or 1 */
    int64_t attention;                /* enum attn_score (nn/attention.h): 0 none, 1 dot, 2 general, 3 mlp */
    int64_t encoder;                  /* 0 uni, 1 bi (bidirectional) */
    double label_smoothing;           /* training loss eps in [0, 1) */
    int64_t precision;                /* enum precision (nn/autocast.h): 0 fp32, 1 bf16 GEMMs */
    int64_t valid_every, save_every;  /* steps (0: only at the end) */
    int64_t log_every;                /* steps (also written to train_log) */
    int64_t max_len;                  /* tokens per side */
    int64_t keep;                     /* newest checkpoints kept besides the best */
    int64_t shards;                   /* row ranges each batch is cut into */
    int64_t valid_max;                /* validation pairs used (0: all) */
    int64_t valid_bleu;               /* valid pairs translated for BLEU / chrF at each validation
                                         (the first N in import order; 0: none) */
    int64_t valid_beam;               /* beam for them (1: greedy) */
    int64_t best_by_bleu;             /* keep the best checkpoint by BLEU (1) or perplexity (0) */
    int64_t patience;                 /* stop after this many validations without improvement (0: never) */
    double lr_decay_on_stall;         /* lr factor per validation without improvement (1: none) */
    int64_t log_format;               /* enum train_log_format (train/progress.h): for the caller's
                                         progress callback; the library does not read it */
    double time_limit_min;            /* <= 0: none */
    int resume;                       /* continue the newest run (0 or 1; not in the table) */
    /* not in the table either (train.c stores them in the config) */
    const char *corpus;               /* the train corpora, "NAME[,NAME...]" (NULL: every train corpus;
                                         on resume: the run's) */
    int allow_new_data;               /* resume although the train corpora changed since the run started */
    int64_t init_from;                /* a new run starts from the weights of this checkpoint (0: from the
                                         seed), with its run's model options and a fresh optimizer */
    volatile sig_atomic_t *stop;      /* polled between steps: nonzero = save and stop (may be NULL) */
    void (*progress)(void *ctx, const struct train_progress *p); /* may be NULL */
    void *progress_ctx;
};

struct train_result {
    int64_t run_id;
    int64_t steps_done, epoch;
    int64_t last_checkpoint_id, best_checkpoint_id; /* 0 when none */
    double last_loss;                 /* mean loss of the last logged interval */
    double valid_ppl;                 /* last validation perplexity (NAN when none) */
    double valid_bleu;                /* last validation BLEU (NAN when none) */
    double src_tok_s, tgt_tok_s;      /* mean throughput over this invocation */
    double elapsed_s;
    char status[16];                  /* done|stopped|failed */
};

/* Everything unset (see struct train_opts; defined with the table in train/options.c). */
void train_opts_init(struct train_opts *o);
/* Trains (see the file comment). Returns 0 when the run finished or stopped on request / time limit
 * (out->status says which), SL_ENUM when the loss became NaN/Inf (run 'failed', the last good
 * checkpoint kept), SL_EINVAL for bad options, SL_ENOTFOUND without vocabulary / train pairs / run to
 * resume, other codes for database or memory errors. *out is filled as far as known in every case. */
int train_run(struct db *db, const struct train_opts *o, struct train_result *out /* OUT */);

#endif
