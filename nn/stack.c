/* nn/stack.c: embedding + stacked LSTM forward / backward / step (see stack.h). */
#include "nn/stack.h"

#include <string.h>

#include "nn/dropout.h"
#include "nn/embed.h"

static size_t in_dim(const struct stack_layout *lay, size_t l) { return l == 0 ? lay->E : lay->H; }

static size_t max_sz(size_t a, size_t b) { return a > b ? a : b; }

void stack_acts_carve(struct stack_acts *a, struct arena *ar, const struct stack_layout *lay, size_t T, size_t B)
{
    const size_t H = lay->H, E = lay->E, TB = T * B;
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
        lstm_acts_carve(&a->layer[l], arena_take(ar, lstm_acts_floats(T, B, H) * sizeof(float)), T, B, H);
    }
    a->dxa = arena_take(ar, TB * max_sz(E, H) * sizeof(float));
    a->dxb = arena_take(ar, TB * max_sz(E, H) * sizeof(float));
    a->scratch = arena_take(ar, lstm_scratch_floats(B, H) * sizeof(float));
    a->pk = arena_take(ar, lstm_pack_floats(H) * sizeof(float));
    for (size_t l = 0; l < lay->L; l++)
        a->layer[l].pk = a->pk; /* the layers run one after the other */
}

void stack_forward(const struct stack_layout *lay, const float *w, struct stack_acts *a, const float *h0,
                   const float *c0, float p, struct rng *r)
{
    const size_t T = a->T, B = a->B, H = lay->H, TB = T * B, BH = B * H;
    a->p = p;
    embed_forward(w + lay->emb, lay->V, lay->E, a->ids, TB, a->x0);
    if (p > 0)
        dropout_forward(a->x0, a->x0, a->m0, TB * lay->E, p, r);
    for (size_t l = 0; l < lay->L; l++) {
        if (l == 0) {
            a->xin[0] = a->x0;
        } else {
            float *prev = a->layer[l - 1].h + BH; /* (T, B, H) */
            if (p > 0) {
                dropout_forward(prev, a->xd[l], a->md[l], TB * H, p, r);
                a->xin[l] = a->xd[l];
            } else {
                a->xin[l] = prev;
            }
        }
        lstm_forward(w + lay->W[l], w + lay->b[l], a->xin[l], a->lens, T, B, in_dim(lay, l), H,
                     h0 ? h0 + l * BH : NULL, c0 ? c0 + l * BH : NULL, &a->layer[l]);
    }
}

const float *stack_top(const struct stack_layout *lay, const struct stack_acts *a)
{
    return a->layer[lay->L - 1].h + a->B * lay->H;
}

const float *stack_final_h(const struct stack_acts *a, size_t l) { return a->layer[l].h + a->T * a->B * a->H; }

const float *stack_final_c(const struct stack_acts *a, size_t l) { return a->layer[l].c + a->T * a->B * a->H; }

void stack_backward(const struct stack_layout *lay, const float *w, float *g, struct stack_acts *a,
                    const float *dtop, const float *dhT, const float *dcT, float *dh0, float *dc0)
{
    const size_t T = a->T, B = a->B, H = lay->H, TB = T * B, BH = B * H;
    const float p = a->p;
    const float *dy = dtop;
    for (size_t l = lay->L; l-- > 0;) {
        const size_t I = in_dim(lay, l);
        float *dx = (l % 2) ? a->dxa : a->dxb; /* (T, B, I); the layer above wrote the other buffer */
        memset(dx, 0, TB * I * sizeof(float));
        lstm_backward(w + lay->W[l], a->xin[l], a->lens, T, B, I, H, &a->layer[l], dy,
                      dhT ? dhT + l * BH : NULL, dcT ? dcT + l * BH : NULL, g + lay->W[l], g + lay->b[l], dx,
                      dh0 ? dh0 + l * BH : NULL, dc0 ? dc0 + l * BH : NULL, a->scratch);
        if (p > 0) /* x_l = dropout(y_{l-1}) or dropout(embedding) */
            dropout_backward(dx, l == 0 ? a->m0 : a->md[l], TB * I, p);
        dy = dx;
    }
    embed_backward(g + lay->emb, lay->V, lay->E, a->ids, TB, dy);
}

size_t stack_step_floats(const struct stack_layout *lay, size_t M)
{
    return M * max_sz(lay->E, lay->H) + lstm_step_floats(M, lay->H);
}

void stack_step(const struct stack_layout *lay, const float *w, const int32_t *ids, size_t M, float *h,
                float *c, float *scratch)
{
    const size_t H = lay->H, MH = M * H;
    float *x = scratch;                                     /* (M, E) embeddings */
    float *cell = scratch + M * max_sz(lay->E, lay->H);     /* lstm_step_floats(M, H) */
    embed_forward(w + lay->emb, lay->V, lay->E, ids, M, x);
    for (size_t l = 0; l < lay->L; l++) {
        const float *in = l == 0 ? x : h + (l - 1) * MH;    /* (M, I_l) */
        lstm_step_forward(w + lay->W[l], w + lay->b[l], in, M, in_dim(lay, l), H, h + l * MH, c + l * MH,
                          cell);
    }
}
