/* tokenizer/special.h: the special token ids, defined once for every layer. The BPE vocabulary lays
 * them out first (tokenizer/bpe.h), so every vocabulary has them at these ids; the batches
 * (corpus/batch.h), the model (model/seq2seq.h), the decoder's teacher forcing and beam search rely on
 * them and include this header (or _Static_assert what they assume).
 *   BPE_PAD  0  padding after a sequence's end; never a target, never fed except after EOS
 *   BPE_BOS  1  the decoder's first input (never stored in a batch: the decoder adds it)
 *   BPE_EOS  2  the decoder's last target; ends a source row when the run uses src_eos
 *   BPE_UNK  3  unknown token (byte fallback means encode never produces it)
 * Ids from BPE_N_SPECIAL on are ordinary tokens. */
#ifndef SL_TOKENIZER_SPECIAL_H
#define SL_TOKENIZER_SPECIAL_H

#define BPE_PAD 0
#define BPE_BOS 1
#define BPE_EOS 2
#define BPE_UNK 3
#define BPE_N_SPECIAL 4 /* ids 0..3 */

#endif
