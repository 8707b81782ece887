/* nn/bistack.c: embedding + bidirectional stacked LSTM forward / backward (see bistack.h).
 * The backward direction is the plain LSTM of nn/lstm.h run on a reversed copy of the layer's input:
 * step t of row b reads position rev(t, b) = lens[b]-1-t for t < lens[b] and t itself at padding. rev is
 * its own inverse, so one gather (gather_rows) builds the reversed input, puts the backward outputs back
 * in position order, reverses the output gradients and (accumulating) scatters the input gradients back. */
#include "nn/bistack.h"

#include <stdio.h>
#include <string.h>

#include "nn/dropout.h"
#include "nn/embed.h"
#include "util/err.h"

static size_t in_dim(const struct bistack_layout *lay, size_t l) { return l == 0 ? lay->E : lay->H; }

static size_t max_sz(size_t a, size_t b) { return a > b ? a : b; }

/* dst[t, b, :D] = (or += when add) src[rev(t, b), b, :D] for t < T, b < B; rows of src are ld_src floats
 * apart, rows of dst ld_dst; lens NULL means no reversal (a strided copy of D columns). */
static void gather_rows(const float *src, size_t ld_src, float *dst, size_t ld_dst, const int32_t *lens, size_t T,
                        size_t B, size_t D, int add)
{
    for (size_t t = 0; t < T; t++)
        for (size_t b = 0; b < B; b++) {
            size_t s = lens && (int64_t)t < lens[b] ? (size_t)lens[b] - 1 - t : t;
            const float *from = src + (s * B + b) * ld_src;
            float *to = dst + (t * B + b) * ld_dst;
            if (add)
                for (size_t k = 0; k < D; k++)
                    to[k] += from[k];
            else
                memcpy(to, from, D * sizeof(float));
        }
}

int bistack_table_add(struct bistack_layout *lay, struct param_table *t, const char *side, size_t V, size_t E,
                      size_t H, size_t L)
{
    if (V < 1 || E < 1 || H < 2 || H % 2 != 0 || L < 1 || L > NN_MAX_LAYERS)
        return sl_err(SL_EINVAL, "bidirectional %s: V %zu, E %zu, H %zu, L %zu (need V, E >= 1, H even >= 2, "
                      "L in 1..%d)", side, V, E, H, L, NN_MAX_LAYERS);
    if (!side || strlen(side) + sizeof ".lstm0_rev.W" > PARAM_NAME_MAX) /* l < NN_MAX_LAYERS: one digit */
        return sl_err(SL_EINVAL, "bidirectional stack: prefix '%s' is empty or too long for its parameter names",
                      side ? side : "(null)");
    const size_t Hd = H / 2;
    char name[PARAM_NAME_MAX];
    memset(lay, 0, sizeof *lay);
    lay->V = V, lay->E = E, lay->H = H, lay->L = L;
    snprintf(name, sizeof name, "%s.emb", side);
    int rc = param_table_add(t, name, 2, (size_t[]){V, E});
    if (rc)
        return rc;
    lay->emb = t->views[t->n - 1].offset;
    static const char *const suffix[2] = {"", "_rev"};
    for (size_t l = 0; l < L; l++)
        for (int d = 0; d < 2; d++) {
            snprintf(name, sizeof name, "%s.lstm%zu%s.W", side, l, suffix[d]);
            if ((rc = param_table_add(t, name, 2, (size_t[]){4 * Hd, in_dim(lay, l) + Hd})))
                return rc;
            lay->W[l][d] = t->views[t->n - 1].offset;
            snprintf(name, sizeof name, "%s.lstm%zu%s.b", side, l, suffix[d]);
            if ((rc = param_table_add(t, name, 1, (size_t[]){4 * Hd})))
                return rc;
            lay->b[l][d] = t->views[t->n - 1].offset;
        }
    return 0;
}

void bistack_acts_carve(struct bistack_acts *a, struct arena *ar, const struct bistack_layout *lay, size_t T,
                        size_t B)
{
    const size_t H = lay->H, Hd = H / 2, E = lay->E, TB = T * B, W = max_sz(E, H);
    memset(a, 0, sizeof *a);
    a->T = T;
    a->B = B;
    a->H = H;
    a->L = lay->L;
    a->ids = arena_take(ar, TB * sizeof(int32_t));
    a->lens = arena_take(ar, B * sizeof(int32_t));
    a->x0 = arena_take(ar, TB * E * sizeof(float));
    a->m0 = arena_take(ar, TB * E);
    for (size_t l = 0; l < lay->L; l++) {
        if (l > 0) {
            a->xd[l] = arena_take(ar, TB * H * sizeof(float));
            a->md[l] = arena_take(ar, TB * H);
        }
        a->y[l] = arena_take(ar, TB * H * sizeof(float));
        lstm_acts_carve(&a->fw[l], arena_take(ar, lstm_acts_floats(T, B, Hd) * sizeof(float)), T, B, Hd);
        lstm_acts_carve(&a->bw[l], arena_take(ar, lstm_acts_floats(T, B, Hd) * sizeof(float)), T, B, Hd);
    }
    a->hT = arena_take(ar, lay->L * B * H * sizeof(float));
    a->cT = arena_take(ar, lay->L * B * H * sizeof(float));
    a->xr = arena_take(ar, TB * W * sizeof(float));
    a->dxa = arena_take(ar, TB * W * sizeof(float));
    a->dxb = arena_take(ar, TB * W * sizeof(float));
    a->dxr = arena_take(ar, TB * W * sizeof(float));
    a->dyf = arena_take(ar, TB * Hd * sizeof(float));
    a->dyb = arena_take(ar, TB * Hd * sizeof(float));
    a->dst = arena_take(ar, 4 * B * Hd * sizeof(float));
    a->scratch = arena_take(ar, lstm_scratch_floats(B, Hd) * sizeof(float));
    a->pk = arena_take(ar, lstm_pack_floats(Hd) * sizeof(float));
    for (size_t l = 0; l < lay->L; l++)
        a->fw[l].pk = a->bw[l].pk = a->pk; /* the LSTMs run one after the other */
}

void bistack_forward(const struct bistack_layout *lay, const float *w, struct bistack_acts *a, float p,
                     struct rng *r)
{
    const size_t T = a->T, B = a->B, H = lay->H, Hd = H / 2, TB = T * B, BH = B * H, BHd = B * Hd;
    a->p = p;
    embed_forward(w + lay->emb, lay->V, lay->E, a->ids, TB, a->x0);
    if (p > 0)
        dropout_forward(a->x0, a->x0, a->m0, TB * lay->E, p, r);
    for (size_t l = 0; l < lay->L; l++) {
        const size_t I = in_dim(lay, l);
        if (l == 0) {
            a->xin[0] = a->x0;
        } else if (p > 0) {
            dropout_forward(a->y[l - 1], a->xd[l], a->md[l], TB * H, p, r);
            a->xin[l] = a->xd[l];
        } else {
            a->xin[l] = a->y[l - 1];
        }
        struct lstm_acts *f = &a->fw[l], *bk = &a->bw[l];
        lstm_forward(w + lay->W[l][BISTACK_FWD], w + lay->b[l][BISTACK_FWD], a->xin[l], a->lens, T, B, I, Hd,
                     NULL, NULL, f);
        gather_rows(a->xin[l], I, a->xr, I, a->lens, T, B, I, 0);
        lstm_forward(w + lay->W[l][BISTACK_BWD], w + lay->b[l][BISTACK_BWD], a->xr, a->lens, T, B, I, Hd,
                     NULL, NULL, bk);
        /* y[t] = [h_fwd_t ; h_bwd at the step that read x_t]; h + B·Hd is each LSTM's (T, B, Hd) output */
        gather_rows(f->h + BHd, Hd, a->y[l], H, NULL, T, B, Hd, 0);
        gather_rows(bk->h + BHd, Hd, a->y[l] + Hd, H, a->lens, T, B, Hd, 0);
        /* final (B, H) = [fwd after step T ; bwd after step T], both carried past the padding */
        gather_rows(f->h + T * BHd, Hd, a->hT + l * BH, H, NULL, 1, B, Hd, 0);
        gather_rows(bk->h + T * BHd, Hd, a->hT + l * BH + Hd, H, NULL, 1, B, Hd, 0);
        gather_rows(f->c + T * BHd, Hd, a->cT + l * BH, H, NULL, 1, B, Hd, 0);
        gather_rows(bk->c + T * BHd, Hd, a->cT + l * BH + Hd, H, NULL, 1, B, Hd, 0);
    }
}

const float *bistack_top(const struct bistack_layout *lay, const struct bistack_acts *a) { return a->y[lay->L - 1]; }

const float *bistack_final_h(const struct bistack_acts *a, size_t l) { return a->hT + l * a->B * a->H; }

const float *bistack_final_c(const struct bistack_acts *a, size_t l) { return a->cT + l * a->B * a->H; }

void bistack_backward(const struct bistack_layout *lay, const float *w, float *g, struct bistack_acts *a,
                      const float *dtop, const float *dhT, const float *dcT)
{
    const size_t T = a->T, B = a->B, H = lay->H, Hd = H / 2, TB = T * B, BH = B * H, BHd = B * Hd;
    const float p = a->p;
    float *dhf = a->dst, *dcf = a->dst + BHd, *dhb = a->dst + 2 * BHd, *dcb = a->dst + 3 * BHd; /* (B, Hd) */
    const float *dy = dtop;
    for (size_t l = lay->L; l-- > 0;) {
        const size_t I = in_dim(lay, l);
        /* y[t] = [h_fwd_t ; h_bwd_rev(t)]: split dy into the two LSTMs' output orders */
        if (dy) {
            gather_rows(dy, H, a->dyf, Hd, NULL, T, B, Hd, 0);
            gather_rows(dy + Hd, H, a->dyb, Hd, a->lens, T, B, Hd, 0);
        }
        /* hT = [h_fwd_T ; h_bwd_T], likewise cT */
        if (dhT) {
            gather_rows(dhT + l * BH, H, dhf, Hd, NULL, 1, B, Hd, 0);
            gather_rows(dhT + l * BH + Hd, H, dhb, Hd, NULL, 1, B, Hd, 0);
        }
        if (dcT) {
            gather_rows(dcT + l * BH, H, dcf, Hd, NULL, 1, B, Hd, 0);
            gather_rows(dcT + l * BH + Hd, H, dcb, Hd, NULL, 1, B, Hd, 0);
        }
        float *dx = (l % 2) ? a->dxa : a->dxb; /* (T, B, I); the layer above wrote the other buffer */
        memset(dx, 0, TB * I * sizeof(float));
        lstm_backward(w + lay->W[l][BISTACK_FWD], a->xin[l], a->lens, T, B, I, Hd, &a->fw[l], dy ? a->dyf : NULL,
                      dhT ? dhf : NULL, dcT ? dcf : NULL, g + lay->W[l][BISTACK_FWD], g + lay->b[l][BISTACK_FWD],
                      dx, NULL, NULL, a->scratch);
        /* xr = rev(x_l): rebuilt, since the layers above reused the buffer */
        gather_rows(a->xin[l], I, a->xr, I, a->lens, T, B, I, 0);
        memset(a->dxr, 0, TB * I * sizeof(float));
        lstm_backward(w + lay->W[l][BISTACK_BWD], a->xr, a->lens, T, B, I, Hd, &a->bw[l], dy ? a->dyb : NULL,
                      dhT ? dhb : NULL, dcT ? dcb : NULL, g + lay->W[l][BISTACK_BWD], g + lay->b[l][BISTACK_BWD],
                      a->dxr, NULL, NULL, a->scratch);
        gather_rows(a->dxr, I, dx, I, a->lens, T, B, I, 1);
        if (p > 0) /* x_l = dropout(y_{l-1}) or dropout(embedding) */
            dropout_backward(dx, l == 0 ? a->m0 : a->md[l], TB * I, p);
        dy = dx;
    }
    embed_backward(g + lay->emb, lay->V, lay->E, a->ids, TB, dy);
}
