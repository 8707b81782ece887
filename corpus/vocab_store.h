/* corpus/vocab_store.h: learning a BPE vocabulary from the train split of a database, storing it
 * (vocab + token + merge rows) and loading it back. Glue between tokenizer/bpe.h and corpus/db.h:
 * only db_* calls here, no SQL.
 * A joint vocabulary (side 'joint') serves both sides; separate learning stores two ('src', 'tgt').
 * Storing is one transaction that also fills pair.src_tokens / tgt_tokens for every pair of every
 * split under the new vocabulary; any failure rolls it back and leaves the database as it was.
 * ref: Sennrich, Haddow & Birch 2016 (joint BPE for related languages). */
#ifndef SL_CORPUS_VOCAB_STORE_H
#define SL_CORPUS_VOCAB_STORE_H

#include "corpus/batch.h"
#include "tokenizer/bpe.h"

#include <stddef.h>
#include <stdint.h>

struct db;

enum corpus_vocab_mode {
    CORPUS_VOCAB_JOINT = 0,    /* one model over both sides */
    CORPUS_VOCAB_SEPARATE = 1, /* one model per side */
};

struct corpus_vocab_opts {
    size_t size;       /* target size per model, BPE_SIZE_MIN..BPE_SIZE_MAX */
    enum corpus_vocab_mode mode;
    int64_t min_count; /* >= 1 */
    enum tok_norm norm;
};

struct corpus_vocab_result {
    int64_t src_id, tgt_id;         /* vocab ids (equal when joint) */
    size_t src_size, tgt_size;      /* tokens learned (may be below opts.size for a tiny corpus) */
    size_t src_merges, tgt_merges;
    size_t src_chars, tgt_chars;    /* base characters */
    int64_t n_pairs;                /* training pairs read */
    int64_t n_encoded;              /* pairs whose token counts were filled (all splits) */
    double learn_seconds, total_seconds;
};

/* Learns and stores the vocabulary (see the file comment). SL_ENOTFOUND when the database has no
 * train pairs; SL_EINVAL for bad options; SL_EUTF8 naming the pair for a bad stored text. */
int corpus_vocab_learn(struct db *db, const struct corpus_vocab_opts *opts,
                       struct corpus_vocab_result *out /* OUT */);
/* Loads vocab vocab_id as a finalized model (OUT *out, caller frees with bpe_free). SL_ENOTFOUND
 * when absent, SL_ECORRUPT when the rows do not form a valid model. */
int corpus_vocab_load(struct db *db, int64_t vocab_id, struct bpe **out);
/* The newest vocabulary for side "src" or "tgt" (a joint one serves both; "joint" only a joint one).
 * SL_ENOTFOUND with a message telling to run `seqlite vocab` first. */
int corpus_vocab_latest(struct db *db, const char *side, int64_t *id /* OUT */);
/* corpus_vocab_latest + corpus_vocab_load; *id may be NULL. */
int corpus_vocab_load_latest(struct db *db, const char *side, struct bpe **out, int64_t *id /* OUT */);

/* An encoder for batch_data_load (corpus/batch.h batch_encode_fn): ctx is a struct
 * corpus_vocab_encoder with src and tgt set (the same model when joint). One per thread. */
struct corpus_vocab_encoder {
    const struct bpe *src, *tgt; /* borrowed */
    struct tok_ids ids;          /* tok_ids_init before use, tok_ids_free after */
};
/* A batch_encode_fn: ids borrowed until the next call with the same ctx. */
int corpus_vocab_encode(void *ctx, const char *text, size_t len, enum batch_side side,
                        const int32_t **ids, size_t *n);

#endif
