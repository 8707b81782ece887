/* tokenizer/bpe.h: byte-fallback BPE subword model: learning, loading from stored arrays, encoding
 * and decoding.
 *
 * Ids: 0 <pad>, 1 <s> (BOS), 2 </s> (EOS), 3 <unk> (defined in tokenizer/special.h); 4..259 the 256
 * byte tokens (<0x00>..<0xFF>, kind byte); from 260 the learned tokens: 260 is always the space marker
 * "▁" (U+2581), then the base characters seen in training with count >= min_count (count descending,
 * then code point ascending), then one token per merge in rank order. Token bytes are UTF-8 with "▁"
 * for a space.
 * A character without a token is encoded as its UTF-8 byte tokens (byte fallback): encode never
 * produces <unk>, and decode(encode(x)) == tok_normalize(x) for every valid UTF-8 x.
 * Dummy prefix (as SentencePiece): encode treats every non-empty text as if it began with one more
 * space (TOK_PRETOK_SPACE_PREFIX), so "Hello" at the start of a sentence is "▁Hello" like inside
 * one; decode drops one leading space.
 * Merges: rank r joins (left, right) into result; byte tokens never take part in a merge.
 * Learning picks, at each step, the adjacent pair with the highest count (ties: lowest left id,
 * then lowest right id), so a vocabulary is reproducible and can be checked by hand.
 *
 * Threads: a struct bpe is read-only once finalized (bpe_learner_learn returns it finalized), so
 * any number of threads may encode/decode with it concurrently, each with its own struct tok_ids
 * (which holds the caller's workspace and piece cache). A struct bpe_learner is single-threaded.
 * ref: Sennrich, Haddow & Birch 2016 (BPE for NMT); Kudo & Richardson 2018 (SentencePiece byte
 * fallback and the U+2581 marker); the incremental pair-count/priority-queue learner of
 * Sennrich's subword-nmt `learn_bpe.py` (pair index + lazy max-heap). */
#ifndef SL_TOKENIZER_BPE_H
#define SL_TOKENIZER_BPE_H

#include "tokenizer/special.h" /* BPE_PAD BPE_BOS BPE_EOS BPE_UNK: ids 0..3 */
#include "tokenizer/tok.h"
#include "util/sbuf.h"

#include <stddef.h>
#include <stdint.h>

#define BPE_BYTE0 BPE_N_SPECIAL /* id of byte value 0; byte v is BPE_BYTE0 + v */
#define BPE_FIRST_LEARNED 260  /* the "▁" token */
#define BPE_SIZE_MIN 300       /* smallest vocabulary size bpe_learner_learn accepts */
#define BPE_SIZE_MAX 1000000   /* largest */

enum bpe_kind {
    BPE_KIND_NORMAL = 0,  /* stored as "normal" */
    BPE_KIND_SPECIAL = 1, /* "special": <pad> <s> </s> <unk> */
    BPE_KIND_BYTE = 2,    /* "byte" */
};

const char *bpe_kind_name(enum bpe_kind kind);
int bpe_kind_parse(const char *name, enum bpe_kind *out /* OUT */);

struct bpe;

/* ---- building a model from stored arrays (what corpus_vocab_load does) ---- */
/* An empty model with this normalisation (NULL on ENOMEM). */
struct bpe *bpe_create(enum tok_norm norm);
void bpe_free(struct bpe *b);
/* Appends token id (must be bpe_size(b)). Ids 0..3 must be the specials "<pad>" "<s>" "</s>" "<unk>"
 * (kind special), 4..259 the byte tokens (kind byte, one byte id - 4), the rest kind normal with
 * non-empty valid UTF-8 bytes. SL_ECORRUPT otherwise. */
int bpe_add_token(struct bpe *b, int32_t id, const char *bytes, size_t len, enum bpe_kind kind,
                  int64_t count);
/* Appends merge rank (must be bpe_n_merges(b)): left + right -> result, all normal tokens already
 * added, bytes(result) == bytes(left) bytes(right), (left, right) not merged before. */
int bpe_add_merge(struct bpe *b, int32_t rank, int32_t left, int32_t right, int32_t result);
/* Checks the whole model (260 fixed tokens, "▁" at 260) and builds its lookup tables; after this
 * the model is read-only. */
int bpe_finalize(struct bpe *b);

/* ---- reading a model ---- */
enum tok_norm bpe_norm(const struct bpe *b);
size_t bpe_size(const struct bpe *b); /* number of tokens (V) */
size_t bpe_n_merges(const struct bpe *b);
/* Bytes of token id (len in *len; borrowed, valid while b lives); NULL when id is out of range. */
const char *bpe_token(const struct bpe *b, int32_t id, size_t *len /* OUT */);
enum bpe_kind bpe_token_kind(const struct bpe *b, int32_t id);   /* id must be in range */
int64_t bpe_token_count(const struct bpe *b, int32_t id);        /* training count (0 if none) */
/* Merge rank: OUT left, right, result. SL_EINVAL when rank is out of range. */
int bpe_merge(const struct bpe *b, size_t rank, int32_t *left, int32_t *right, int32_t *result);
/* Appends the printable surface of id to out: specials by name, byte tokens as "<0xE4>", normal
 * tokens as their bytes with control characters written as "<0x09>". SL_EINVAL if out of range. */
int bpe_token_surface(const struct bpe *b, int32_t id, struct sbuf *out);

/* ---- encoding and decoding ---- */
/* A growable array of ids plus the caller-owned encoder workspace (normalised text, pieces and a
 * bounded piece -> ids cache). One per thread. ids stays valid until the next call with it. */
struct tok_ids {
    int32_t *ids; /* (n) */
    size_t n, cap;
    struct tok_encws *ws; /* private; NULL until the first bpe_encode */
};

void tok_ids_init(struct tok_ids *t);
void tok_ids_free(struct tok_ids *t);
/* out->ids = the ids of text (no BOS/EOS; replaces the content). SL_EUTF8 on invalid UTF-8 (message
 * names the byte offset), SL_ENOMEM. */
int bpe_encode(const struct bpe *b, const char *text, size_t len, struct tok_ids *out);
/* out = the text of ids (replaces the content): token bytes concatenated, "▁" in normal tokens read
 * as ' ', byte tokens as raw bytes, <pad> <s> </s> skipped, <unk> written as U+2047 "⁇". The result
 * is not valid UTF-8 when the ids split a character's byte tokens (tok_utf8_repair fixes that for
 * display). A leading space (the dummy prefix) is dropped. SL_EINVAL on an id out of range (names
 * its position). */
int bpe_decode(const struct bpe *b, const int32_t *ids, size_t n, struct sbuf *out);

/* ---- learning ---- */
struct bpe_learner;

struct bpe_learn_opts {
    size_t size;       /* target vocabulary size V, BPE_SIZE_MIN..BPE_SIZE_MAX (all ids included) */
    int64_t min_count; /* >= 1: base characters and merged pairs need this many occurrences */
};

struct bpe_learner *bpe_learner_create(enum tok_norm norm);
void bpe_learner_free(struct bpe_learner *l);
/* Counts the pieces of one text (a sentence, with the dummy prefix). SL_EUTF8 (byte offset in
 * the message) on invalid UTF-8; nothing is counted then. */
int bpe_learner_add(struct bpe_learner *l, const char *text, size_t len);
/* Number of distinct pieces counted so far. */
size_t bpe_learner_n_words(const struct bpe_learner *l);
/* Learns a finalized model (OUT *out, caller frees). Stops early (size < V) when no pair occurs
 * min_count times. SL_EINVAL for bad options or when nothing was added. The learner may be used
 * again afterwards (more texts, another size). */
int bpe_learner_learn(struct bpe_learner *l, const struct bpe_learn_opts *opts, struct bpe **out);

#endif
