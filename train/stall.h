/* train/stall.h: early stopping and learning-rate decay on a stalled validation (seqlite train
 * --patience N, --lr-decay-on-stall F; Marian's --lr-decay-strategy stalled, OpenNMT's decay on a
 * validation that does not improve).
 *   - A validation counts when it falls on the --valid-every schedule (step % valid_every == 0). The
 *     extra validation a run makes where it stops (Ctrl-C, --time-limit, its end) does not, so a run
 *     stopped and resumed counts the same validations as one that ran through.
 *   - It improves when its --best-by score is strictly better than the best counted one so far (ppl
 *     lower, BLEU higher); the first one always does. A score that is not a number is not counted.
 *   - Each counted validation that does not improve adds one to the stall counter (reset by an
 *     improvement) and multiplies the lr factor by F; the factor multiplies the --lr-decay schedule.
 * Resume: the state is replayed from the run's own validation metric rows (split 'valid', written by
 * training, up to the resumed checkpoint's step) through the same update in the same order, so the
 * counter, the best and the factor (a product of the same doubles) are bit for bit the uninterrupted
 * run's. Chosen over storing the state in the checkpoint's data_pos JSON: nothing new is stored, the
 * rows are already rewound with the run (db_run_rewind), and the state cannot disagree with the scores
 * a user sees. It needs --valid-every to stay the run's, which train.c enforces on resume while either
 * option is on. */
#ifndef SL_TRAIN_STALL_H
#define SL_TRAIN_STALL_H

#include <stdint.h>

struct db;

struct train_stall {
    double best;       /* the best counted score (NAN: none yet) */
    int64_t best_step; /* its step (0: none) */
    int64_t stalled;   /* counted validations since then that did not improve on it */
    double lr_scale;   /* the product of F over every counted validation that did not improve */
};

/* No validation seen: no best, counter 0, factor 1. */
void train_stall_init(struct train_stall *s);
/* One counted validation: score at step; higher: larger scores are better (BLEU); factor: F in (0, 1].
 * Returns 1 when it improved on the best, 0 when it did not (counter and factor updated), -1 when score
 * is not a number (nothing changes). */
int train_stall_update(struct train_stall *s, int64_t step, double score, int higher, double factor);
/* s from scratch: the run's training-written validation values of metric ("ppl" or "bleu") with step
 * <= up_to, those on the valid_every schedule (> 0) through train_stall_update in step order. Store
 * errors. */
int train_stall_replay(struct db *db, int64_t run_id, const char *metric, int64_t valid_every, int64_t up_to,
                       int higher, double factor, struct train_stall *s /* OUT */);

#endif
