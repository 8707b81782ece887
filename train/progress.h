/* train/progress.h: a training event (struct train_progress, train.h) as one line of text for people or
 * one JSON object for programs (seqlite train --log-format text|json; fairseq's --log-format json).
 * Text: the periodic line puts what a glance needs first (step/total, ETA, tokens/s), then loss, ppl,
 * lr, gradient norm, epoch and elapsed time, as whole fields, and can be cut to a terminal's width
 * (fields that do not fit are left off from the end, never half-written).
 * JSON: one object per event with an "event" member (log, valid, save, note); numbers that are not
 * finite (an unknown ETA, a BLEU not measured) are null. Every line the trainer reports parses alone.
 * The functions only append to the caller's buffer: no I/O, no allocation besides the buffer's. */
#ifndef SL_TRAIN_PROGRESS_H
#define SL_TRAIN_PROGRESS_H

#include <stddef.h>

struct sbuf;
struct train_progress;

/* The values of --log-format, in the order of the option table's choices. */
enum train_log_format {
    TRAIN_LOG_TEXT = 0,
    TRAIN_LOG_JSON = 1,
};

/* Appends the line of event p (without a newline) to out in format fmt. width > 0 cuts a TEXT progress
 * line (TRAIN_EV_LOG) to at most width - 1 bytes (all ASCII: columns), so it never reaches a terminal's
 * last column; width 0 and the other events are never cut. SL_ENOMEM. */
int train_progress_format(const struct train_progress *p, enum train_log_format fmt, size_t width,
                          struct sbuf *out);

#endif
