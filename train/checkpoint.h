/* train/checkpoint.h: saving a training state (the model, the Adam moments, the data position and the
 * random state) as one checkpoint; model/checkpoint.h reads it back.
 * Saving is one transaction that also prunes: the newest `keep` checkpoints of the run and its best
 * (lowest validation perplexity, or highest validation BLEU when the run keeps the best by BLEU)
 * stay, the others are deleted (their tensors cascade). */
#ifndef SL_TRAIN_CHECKPOINT_H
#define SL_TRAIN_CHECKPOINT_H

#include <stdint.h>

#include "model/checkpoint.h"

struct db;

/* What train/ saves. m and v (Adam moments, table layout) may be NULL (a model-only checkpoint). */
struct ckpt_save_req {
    int64_t run_id;
    int64_t step;                    /* optimizer steps done (Adam's t) */
    int64_t epoch, batch;            /* data position: the next batch to train is batch `batch` of epoch `epoch` */
    int64_t src_vocab_id, tgt_vocab_id;
    const struct s2s_model *model;
    const float *w, *m, *v;          /* (model->table.total) each */
    double valid_ppl;                /* NAN when not measured: never becomes the best by ppl then */
    int has_bleu;                    /* valid_bleu was measured at this step */
    double valid_bleu;               /* validation BLEU (with has_bleu) */
    int best_by_bleu;                /* the best checkpoint is the one of highest valid_bleu (else lowest ppl) */
    const struct rng *rng;           /* state stored in checkpoint.rng_state (NULL: none) */
    int64_t keep;                    /* >= 1: newest checkpoints of the run to keep (plus the best) */
};

/* Saves (one transaction, pruning as described above). OUT: *id the new checkpoint id. */
int ckpt_save(struct db *db, const struct ckpt_save_req *req, int64_t *id /* OUT */);

#endif
