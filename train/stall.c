/* train/stall.c: the stall state of a run's validations, updated live or replayed on resume (see
 * stall.h). */
#include "train/stall.h"

#include "corpus/db.h"

#include <math.h>

void train_stall_init(struct train_stall *s)
{
    *s = (struct train_stall){.best = NAN, .best_step = 0, .stalled = 0, .lr_scale = 1.0};
}

int train_stall_update(struct train_stall *s, int64_t step, double score, int higher, double factor)
{
    if (isnan(score))
        return -1;
    if (isnan(s->best) || (higher ? score > s->best : score < s->best)) {
        s->best = score;
        s->best_step = step;
        s->stalled = 0;
        return 1;
    }
    s->stalled++;
    if (factor < 1.0)
        s->lr_scale *= factor;
    return 0;
}

struct replay {
    struct train_stall *s;
    int64_t valid_every, last_step;
    int higher;
    double factor;
};

static int replay_one(void *ctx, int64_t step, double value)
{
    struct replay *r = ctx;
    if (step % r->valid_every != 0 || step == r->last_step) /* off the schedule, or seen */
        return 0;
    r->last_step = step;
    train_stall_update(r->s, step, value, r->higher, r->factor);
    return 0;
}

int train_stall_replay(struct db *db, int64_t run_id, const char *metric, int64_t valid_every, int64_t up_to,
                       int higher, double factor, struct train_stall *s)
{
    train_stall_init(s);
    if (valid_every <= 0)
        return 0;
    struct replay r = {.s = s, .valid_every = valid_every, .last_step = -1, .higher = higher, .factor = factor};
    return db_metric_valid_foreach(db, run_id, metric, up_to, replay_one, &r);
}
