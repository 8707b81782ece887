/* corpus/batch.h: the training batches. Two stages: batch_data holds the encoded pairs of one split
 * as flat arrays (encoded once; batch_data_load needs the database and an encoder, batch_data_add
 * does not), and batch_plan cuts them into padded batches of similar length. Batches of epoch e are
 * a pure function of (data, options, seed, e): sort by (src_len, tgt_len) with a tie-break drawn from
 * the seed and e, cut into batches of at most max_sents sentences and max_tokens padded tokens, then
 * shuffle the batch order. So training can resume at (epoch, batch index) exactly.
 * Layout of a batch: exactly what the model consumes (struct s2s_batch, model/seq2seq.h), so a batch
 * (or a row range of it) is passed on as it is. src rows are the source tokens (then BPE_EOS when
 * src_eos), tgt rows the target tokens without BOS or EOS (T counts neither, nn/dims.h: the decoder
 * adds both, decoder/decoder.h); rows are padded with BPE_PAD to the batch's S / T. Special ids:
 * tokenizer/special.h.
 * ref: Sutskever, Vinyals & Le 2014 (length-bucketed batches); fairseq's max_tokens batching. */
#ifndef SL_CORPUS_BATCH_H
#define SL_CORPUS_BATCH_H

#include <stddef.h>
#include <stdint.h>

#include "tokenizer/special.h"

struct db;

enum batch_side { BATCH_SRC = 0, BATCH_TGT = 1 };

/* The encoded pairs of one split. Token ids exclude BOS/EOS. */
struct batch_data {
    size_t n;         /* pairs kept */
    size_t n_long;    /* dropped: a side longer than max_len tokens */
    size_t n_empty;   /* dropped: a side with no tokens */
    size_t max_len;   /* longest side kept (tokens); 0 = no limit */
    int32_t *ids;     /* (n_ids) pair i: src_len[i] source ids then tgt_len[i] target ids from off[i] */
    size_t n_ids, cap_ids;
    size_t *off;      /* (n) */
    uint32_t *src_len, *tgt_len; /* (n) */
    int64_t *pair_id; /* (n) the pair's id in the database (or the caller's own numbering) */
    size_t cap;
};

/* Encoder used by batch_data_load: sets *ids / *n to the ids of text for side (no BOS/EOS). The ids
 * are borrowed: valid until the next call. Returns 0 or a negative SL_E* code with a message. */
typedef int (*batch_encode_fn)(void *ctx, const char *text, size_t len, enum batch_side side,
                               const int32_t **ids, size_t *n);

/* An empty set that drops pairs with a side longer than max_len tokens (0: keep all). */
struct batch_data *batch_data_create(size_t max_len);
void batch_data_free(struct batch_data *d);
/* Adds one pair (copies the ids), or counts it as dropped (too long / empty side). */
int batch_data_add(struct batch_data *d, int64_t pair_id, const int32_t *src, size_t ns,
                   const int32_t *tgt, size_t nt);
/* Encodes and adds every pair of split (corpus id, line order). Errors name the pair id. */
int batch_data_load(struct batch_data *d, struct db *db, const char *split, batch_encode_fn encode,
                    void *ctx);
/* batch_data_load of the corpora corpus_ids[0..n_ids) of split only (NULL: every corpus of split). */
int batch_data_load_in(struct batch_data *d, struct db *db, const char *split, const int64_t *corpus_ids,
                       size_t n_ids, batch_encode_fn encode, void *ctx);
/* Releases the unused tail of the arrays (after loading). */
void batch_data_shrink(struct batch_data *d);

struct batch_opts {
    size_t max_sents;  /* B: at most this many pairs per batch (>= 1) */
    size_t max_tokens; /* 0: no budget; else rows * max(S, T + 2) <= max_tokens (S, T padded; the
                          2 are the decoder's BOS and EOS); pairs that cannot fit alone are left out
                          (batch_plan_n_over) */
    uint64_t seed;
    int src_eos;       /* 1: source rows end with EOS */
};

struct batch_plan;

/* A plan over d (borrowed: d must outlive the plan and not change). NULL on bad options
 * (message via sl_errmsg) or ENOMEM. Call batch_plan_epoch before the first fill. */
struct batch_plan *batch_plan_create(const struct batch_data *d, const struct batch_opts *o);
void batch_plan_free(struct batch_plan *p);
/* Lays out the batches of epoch e (0-based). */
int batch_plan_epoch(struct batch_plan *p, uint64_t epoch);
/* Batches in the current epoch. */
size_t batch_plan_count(const struct batch_plan *p);
/* Pairs of d left out because they exceed max_tokens on their own. */
size_t batch_plan_n_over(const struct batch_plan *p);
/* The smallest max_tokens with which the shortest pair of d fits alone, max(S, T + 2) of that pair
 * (0 when d is empty): with a smaller budget every pair is left out. */
size_t batch_plan_min_tokens(const struct batch_plan *p);

/* One padded batch. Buffers are sized by batch_create for the plan's largest possible batch. */
struct batch {
    size_t B, S, T;        /* rows, padded source length, padded target length (no BOS / EOS) */
    int32_t *src;          /* (B, S) row-major: x (EOS when src_eos) pad... */
    int32_t *tgt;          /* (B, T) row-major: y pad... */
    int32_t *src_len;      /* (B) non-pad source length (with EOS when src_eos) */
    int32_t *tgt_len;      /* (B) target length (tokens of y; the loss counts tgt_len + 1 with EOS) */
    size_t *index;         /* (B) the pairs' indices in the batch_data */
    int64_t *pair_id;      /* (B) */
    size_t n_src_tokens, n_tgt_tokens; /* sums of src_len / tgt_len (so no BOS / EOS in the targets) */
    size_t cap_rows, cap_src, cap_tgt; /* allocated sizes */
};

struct batch *batch_create(const struct batch_plan *p);
void batch_free(struct batch *b);
/* Fills b with batch i (0 <= i < batch_plan_count) of the current epoch. */
int batch_plan_fill(const struct batch_plan *p, size_t i, struct batch *b);

#endif
