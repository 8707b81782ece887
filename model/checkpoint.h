/* model/checkpoint.h: loading a model, or a training state, back from the database.
 * A checkpoint is one checkpoint row plus one tensor row per parameter view ("enc.emb", "out.W", ...,
 * the names of the model's param_table) and, for training checkpoints, the Adam moments
 * ("adam.m.<name>", "adam.v.<name>"). Tensors are little-endian float32 BLOBs with a JSON shape; a
 * loader checks name, shape and byte size before trusting a row (SL_ECORRUPT naming the checkpoint id
 * and the tensor). A checkpoint names its vocab ids and the run row holds the model configuration, so
 * ckpt_model_load rebuilds exactly the model and vocabularies it was trained with.
 * Writing checkpoints is training's (train/checkpoint.h).
 * ref: the safetensors convention (name, dtype, shape, raw little-endian data). */
#ifndef SL_MODEL_CHECKPOINT_H
#define SL_MODEL_CHECKPOINT_H

#include <stddef.h>
#include <stdint.h>

#include "model/seq2seq.h"
#include "tokenizer/bpe.h"
#include "util/rng.h"

struct db;
struct sbuf;

/* A model ready to translate or score (owns everything it points to). */
struct ckpt_model {
    struct s2s_model model;          /* configuration rebuilt from the run row */
    float *w;                        /* (model.table.total) parameters (param_buf_create'd) */
    struct bpe *src_bpe, *tgt_bpe;   /* the checkpoint's vocabularies (the same object when joint) */
    int64_t run_id, checkpoint_id, step, epoch;
    int64_t src_vocab_id, tgt_vocab_id;
    int src_eos;                     /* 1: training sources ended with BPE_EOS: append it to every source */
    int64_t max_len;                 /* longest side (tokens) kept in training */
    double valid_ppl;                /* validation perplexity at save time (NAN when not measured) */
    double valid_bleu;               /* validation BLEU at save time (NAN when not measured) */
    int stored_bf16;                 /* 1: its matrices are stored in bf16 (seqlite export --precision bf16) */
};

/* Loads checkpoint `which`: "last" (newest of any run), "best" (the best of the newest run that has
 * one, else "last") or a checkpoint id in decimal. SL_ENOTFOUND with a message when there is none
 * ("train a model first"), SL_ECORRUPT for damaged rows, SL_EINVAL for a bad `which`.
 * On failure *out is left empty (ckpt_model_free on it is harmless). */
int ckpt_model_load(struct db *db, const char *which, struct ckpt_model *out /* OUT */);
/* Releases everything; a zeroed struct is fine. */
void ckpt_model_free(struct ckpt_model *m);

#define CKPT_ENSEMBLE_MAX 64 /* members of one ensemble */

/* An ensemble: the checkpoints named by the comma-separated list `which` (each as ckpt_model_load; a name
 * may repeat; one name is one model). The members may differ in architecture but must share the source and
 * the target vocabulary ids and whether sources end with EOS: otherwise SL_EINVAL naming the two
 * checkpoints. OUT: *out, an array of *n models (the caller frees it with ckpt_ensemble_free); on failure
 * *out is NULL and *n 0. Errors of a member as ckpt_model_load, prefixed with its name when there are
 * several; SL_EINVAL for an empty name or more than CKPT_ENSEMBLE_MAX members. */
int ckpt_ensemble_load(struct db *db, const char *which, struct ckpt_model **out /* OUT */, size_t *n /* OUT */);
/* ckpt_ensemble_load in one read snapshot of db (a checkpoint pruned meanwhile by a training run cannot
 * vanish halfway), with the names of `which` taken within run `run` (an id or a name; NULL or "": last
 * and best as ckpt_find reads them for any run: best is the best checkpoint of the newest run that
 * validated). */
int ckpt_ensemble_load_run(struct db *db, const char *run, const char *which, struct ckpt_model **out /* OUT */,
                           size_t *n /* OUT */);
/* Frees the n models of ms and ms itself (NULL is fine). */
void ckpt_ensemble_free(struct ckpt_model *ms, size_t n);

/* The checkpoint row, as read back. */
struct ckpt_info {
    int64_t id, run_id, step, epoch, batch, src_vocab_id, tgt_vocab_id;
    double valid_ppl;  /* NAN when not measured */
    double valid_bleu; /* NAN when not measured */
    int is_best;
    int has_rng;
    struct rng rng;
};

/* Finds a checkpoint of run_id (0: of any run) by which ("last", "best" or a decimal id).
 * SL_ENOTFOUND with a message when there is none. */
int ckpt_find(struct db *db, int64_t run_id, const char *which, int64_t *id /* OUT */);
/* The checkpoints `which` names (a comma list of last, best and ids, as ckpt_ensemble_load takes) within
 * run `run` (an id or a name) as a comma list of ids in out. SL_ENOTFOUND naming the run or what it
 * lacks; SL_EINVAL for an id of another run. */
int ckpt_names_of_run(struct db *db, const char *run, const char *which, struct sbuf *out /* OUT */);
/* Reads checkpoint id's row. */
int ckpt_info_get(struct db *db, int64_t id, struct ckpt_info *out /* OUT */);
/* Loads the tensors of checkpoint id into w (and m, v when not NULL: then the checkpoint must have
 * them) for model (table layout; alignment gaps are zeroed). Checks every view's shape and size. */
int ckpt_state_load(struct db *db, int64_t id, const struct s2s_model *model, float *w, float *m, float *v);

#endif
