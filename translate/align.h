/* translate/align.h: hard word alignments from subword positions, Moses / Marian style ("0-0 1-2 ...").
 * Words are the runs of non-whitespace characters (ASCII space, \t, \n, \v, \f, \r) of a token sequence's
 * decoded text (tokenizer/bpe.h bpe_decode: "▁" in a normal token is a space, a byte token its byte), numbered
 * from 0, so a subword's word index is the index of the whitespace-separated word of the detokenised text
 * it falls in. A token of spaces only belongs to the word that follows it (none after it: no word); <pad>,
 * <s>, </s> have no word; <unk> (decoded "⁇") is a character.
 * ref: Moses word alignment format (statmt.org/moses); Marian's --alignment hard output. */
#ifndef SL_TRANSLATE_ALIGN_H
#define SL_TRANSLATE_ALIGN_H

#include "tokenizer/bpe.h"
#include "util/sbuf.h"

#include <stddef.h>
#include <stdint.h>

/* OUT: word (n): word[i] = the word index of subword ids[i], or -1 when it has none. Ids must be in range
 * (SL_EINVAL naming the position otherwise). */
int align_word_index(const struct bpe *b, const int32_t *ids, size_t n, int32_t *word);
/* Appends the word pairs "s-t" (space-separated, no trailing space) of target subwords j < n_tgt aligned to
 * source subword tgt_src[j]: s = src_word[tgt_src[j]], t = tgt_word[j]; pairs where either has no word or
 * tgt_src[j] is outside [0, n_src) (the source's EOS) are left out; unique pairs sorted by s, then t.
 * scratch: n_tgt entries. SL_ENOMEM from out. */
int align_format(const int32_t *src_word, size_t n_src, const int32_t *tgt_word, const int32_t *tgt_src, size_t n_tgt,
                 uint64_t *scratch, struct sbuf *out);

#endif
