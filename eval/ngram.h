/* eval/ngram.h: n-gram matching for BLEU and chrF. Sequences are arrays of uint32 ids (code points
 * for character n-grams, interned word ids for word n-grams, see struct ngram_vocab).
 * ngram_set_hyp() counts every n-gram (orders 1..max_order) of a hypothesis into a hash table;
 * each ngram_match_ref() then reports, for one reference, per order: the clipped matches
 * sum min(hyp count, ref count) (chrF), while the counter also keeps, across the references of the
 * segment, sum min(hyp count, max over refs of ref count) (BLEU's "correct").
 * Both structures grow as needed and are reused: no allocation once they fit the longest segment.
 * ref: Papineni et al. 2002 (modified n-gram precision); Popovic 2015 (chrF). */
#ifndef SL_EVAL_NGRAM_H
#define SL_EVAL_NGRAM_H

#include <stddef.h>
#include <stdint.h>

#define NGRAM_MAX_ORDER 16

struct ngram_counter;

struct ngram_counter *ngram_counter_create(size_t max_order);
void ngram_counter_free(struct ngram_counter *c);
/* Counts the n-grams of hyp[0..n) (the ids are copied). hyp_total[k] = number of (k+1)-grams. */
int ngram_set_hyp(struct ngram_counter *c, const uint32_t *hyp, size_t n);
/* Matches of one reference against the current hypothesis, per order k (n-gram length k+1):
 * match[k] = sum over n-grams min(hyp count, this ref's count), ref_total[k] = ref n-gram count.
 * Also updates the cross-reference clipped counts returned by ngram_clipped(). */
void ngram_match_ref(struct ngram_counter *c, const uint32_t *ref, size_t n, uint64_t *match /* OUT */,
                     uint64_t *ref_total /* OUT */);
/* Per order: hypothesis n-gram count, and sum min(hyp count, max over the refs matched so far). */
const uint64_t *ngram_hyp_total(const struct ngram_counter *c);
const uint64_t *ngram_clipped(const struct ngram_counter *c);

/* Interning of byte strings to dense ids 0, 1, 2, ... (per segment: reset between segments). */
struct ngram_vocab;

struct ngram_vocab *ngram_vocab_create(void);
void ngram_vocab_free(struct ngram_vocab *v);
void ngram_vocab_reset(struct ngram_vocab *v);
/* The id of s[0..n), adding it if new. */
int ngram_vocab_id(struct ngram_vocab *v, const char *s, size_t n, uint32_t *id /* OUT */);

#endif
