/* decoder/decoder.c: teacher-forced inputs and labels, the projection loss with its backward, and the
 * log-probabilities of a decoding step (see decoder.h). Real rows are compacted before the projection,
 * so padding costs no projection FLOPs. */
#include "decoder/decoder.h"

#include <string.h>

#include "nn/dropout.h"
#include "nn/proj.h"
#include "util/err.h"

void dec_loss_carve(struct dec_loss_ws *d, struct arena *ar, size_t T1, size_t B, size_t H, size_t V,
                    size_t chunk)
{
    const size_t N = T1 * B;
    memset(d, 0, sizeof *d);
    d->T1 = T1;
    d->B = B;
    d->chunk = chunk;
    d->labels = arena_take(ar, N * sizeof(int32_t));
    d->where = arena_take(ar, N * sizeof(int32_t));
    d->lreal = arena_take(ar, N * sizeof(int32_t));
    d->ytop = arena_take(ar, N * H * sizeof(float));
    d->mtop = arena_take(ar, N * H);
    d->yreal = arena_take(ar, N * H * sizeof(float));
    d->dyreal = arena_take(ar, N * H * sizeof(float));
    d->dtop = arena_take(ar, N * H * sizeof(float));
    d->proj = arena_take(ar, proj_scratch_floats(chunk, V) * sizeof(float));
    d->rloss = arena_take(ar, N * sizeof(double));
}

int dec_load(int32_t *ids, int32_t *lens, struct dec_loss_ws *d, const int32_t *tgt, const int32_t *tgt_len, size_t B,
             size_t T, size_t V, int32_t bos, int32_t eos)
{
    const size_t T1 = T + 1;
    for (size_t b = 0; b < B; b++) {
        int32_t n = tgt_len[b];
        if (n < 0 || (size_t)n > T)
            return sl_err(SL_EINVAL, "target row %zu: length %d outside [0, %zu]", b, (int)n, T);
        for (size_t t = 0; t < T1; t++) {
            int32_t in = 0, lab = -1;
            if ((int64_t)t < n) {
                lab = tgt[b * T + t];
                if (lab < 0 || (size_t)lab >= V)
                    return sl_err(SL_EINVAL, "target row %zu, position %zu: token id %d outside [0, %zu)", b, t,
                                  (int)lab, V);
            } else if ((int64_t)t == n) {
                lab = eos;
            }
            if (t == 0)
                in = bos;
            else if ((int64_t)t <= n)
                in = tgt[b * T + t - 1];
            ids[t * B + b] = in;
            d->labels[t * B + b] = lab;
        }
        lens[b] = n + 1;
    }
    return 0;
}

void dec_loss(const struct dec_out *o, const float *w, float *g, struct dec_loss_ws *d, const int32_t *lens,
              const float *top, float p, struct rng *r, float scale, double *loss_sum, size_t *n_tokens,
              double *row_loss)
{
    const size_t T1 = d->T1, B = d->B, H = o->H, N = T1 * B;
    const float *y = top; /* (T1, B, H) */
    if (p > 0) {
        dropout_forward(top, d->ytop, d->mtop, N * H, p, r);
        y = d->ytop;
    }
    /* compact the real rows (time-major order) */
    size_t nr = 0;
    for (size_t t = 0; t < T1; t++)
        for (size_t b = 0; b < B; b++)
            if ((int64_t)t < lens[b]) {
                d->where[nr] = (int32_t)(t * B + b);
                d->lreal[nr] = d->labels[t * B + b];
                nr++;
            }
    const int dense = nr == N; /* no padding: use the rows in place */
    const float *yr = y;
    if (!dense) {
        for (size_t k = 0; k < nr; k++)
            memcpy(d->yreal + k * H, y + (size_t)d->where[k] * H, H * sizeof(float));
        yr = d->yreal;
    }
    if (g) {
        float *dyr = dense ? d->dtop : d->dyreal;
        memset(dyr, 0, nr * H * sizeof(float));
        if (o->label_smoothing > 0) {
            double smoothed;
            proj_xent_smoothed_forward_backward(w + o->W, w + o->b, yr, d->lreal, nr, H, o->V, o->label_smoothing,
                                                scale, g + o->W, g + o->b, dyr, d->proj, d->chunk, &smoothed,
                                                loss_sum, n_tokens);
        } else {
            proj_xent_forward_backward(w + o->W, w + o->b, yr, d->lreal, nr, H, o->V, scale, g + o->W, g + o->b,
                                       dyr, d->proj, d->chunk, loss_sum, n_tokens);
        }
        if (!dense) {
            memset(d->dtop, 0, N * H * sizeof(float));
            for (size_t k = 0; k < nr; k++)
                memcpy(d->dtop + (size_t)d->where[k] * H, d->dyreal + k * H, H * sizeof(float));
        }
        if (p > 0)
            dropout_backward(d->dtop, d->mtop, N * H, p);
    } else {
        proj_xent_forward(w + o->W, w + o->b, yr, d->lreal, nr, H, o->V, d->proj, d->chunk, loss_sum, n_tokens,
                          d->rloss);
    }
    if (row_loss && !g) {
        for (size_t b = 0; b < B; b++)
            row_loss[b] = 0.0;
        for (size_t k = 0; k < nr; k++)
            row_loss[(size_t)d->where[k] % B] += d->rloss[k];
    }
}

void dec_logprobs(const struct dec_out *o, const float *w, const float *y, size_t M, float *out)
{
    proj_logprobs(w + o->W, w + o->b, y, M, o->H, o->V, out);
}
