/* decoder/attn_stack.c: the attention decoder stack with input feeding (see attn_stack.h).
 * Every (step, layer) cell is one nn/lstm.h pass of T = 1, so the per-step activations are kept for the
 * backward through time; the attention keys are computed once per batch and their gradient folded back
 * once at the end. */
#include "decoder/attn_stack.h"

#include <string.h>

#include "nn/dropout.h"
#include "nn/embed.h"

static size_t max_sz(size_t a, size_t b) { return a > b ? a : b; }

size_t attn_stack_in_dim(const struct stack_layout *lay, size_t l) { return l == 0 ? lay->E + lay->H : lay->H; }

void attn_stack_acts_carve(struct attn_stack_acts *a, struct arena *ar, const struct stack_layout *lay,
                           const struct attn_layout *att, size_t T, size_t B, size_t S)
{
    const size_t H = lay->H, E = lay->E, L = lay->L, TB = T * B, BH = B * H;
    const size_t KW = attn_key_width(att);
    a->T = T, a->B = B, a->S = S, a->H = H, a->E = E, a->L = L;
    a->p = 0;
    a->ids = arena_take(ar, TB * sizeof(int32_t));
    a->emb = arena_take(ar, TB * E * sizeof(float));
    a->memb = arena_take(ar, TB * E);
    a->x0 = arena_take(ar, TB * (E + H) * sizeof(float));
    for (size_t l = 1; l < L; l++) {
        a->xd[l] = arena_take(ar, TB * H * sizeof(float));
        a->md[l] = arena_take(ar, TB * H);
    }
    a->cell = arena_take(ar, T * L * sizeof *a->cell);
    const size_t cf = lstm_acts_floats(1, B, H);
    for (size_t k = 0; k < T * L; k++) {
        float *buf = arena_take(ar, cf * sizeof(float));
        if (a->cell)
            lstm_acts_carve(&a->cell[k], buf, 1, B, H);
    }
    attn_acts_carve(&a->att, ar, att, T, B, S);
    a->keys = arena_take(ar, (S * B * KW + 1) * sizeof(float));
    a->dkeys = arena_take(ar, (S * B * KW + 1) * sizeof(float));
    a->dht = arena_take(ar, BH * sizeof(float));
    a->dfeed = arena_take(ar, BH * sizeof(float));
    const size_t wide = B * (E + 2 * H);
    a->dy = arena_take(ar, wide * sizeof(float));
    a->dxa = arena_take(ar, wide * sizeof(float));
    a->dxb = arena_take(ar, wide * sizeof(float));
    for (int k = 0; k < 2; k++) {
        a->dh[k] = arena_take(ar, L * BH * sizeof(float));
        a->dc[k] = arena_take(ar, L * BH * sizeof(float));
    }
    a->scratch = arena_take(ar, max_sz(lstm_scratch_floats(B, H), attn_backward_floats(att, B, S)) * sizeof(float));
}

const float *attn_stack_top(const struct attn_stack_acts *a) { return a->att.ht; }

void attn_stack_forward(const struct stack_layout *lay, const struct attn_layout *att, const float *w,
                        struct attn_stack_acts *a, const float *Hs, const int32_t *src_len, const float *h0,
                        const float *c0, float p, struct rng *r)
{
    const size_t T = a->T, B = a->B, S = a->S, H = lay->H, E = lay->E, L = lay->L, BH = B * H, TB = T * B;
    const size_t X0 = E + H;
    a->p = p;
    embed_forward(w + lay->emb, lay->V, E, a->ids, TB, a->emb);
    if (p > 0)
        dropout_forward(a->emb, a->emb, a->memb, TB * E, p, r);
    attn_keys_forward(att, w, Hs, S, B, a->keys);
    for (size_t t = 0; t < T; t++) {
        /* x_t = [emb_t | h~_{t-1}] */
        float *x = a->x0 + t * B * X0;
        const float *feed = t ? a->att.ht + (t - 1) * BH : NULL;
        for (size_t b = 0; b < B; b++) {
            memcpy(x + b * X0, a->emb + (t * B + b) * E, E * sizeof(float));
            if (feed)
                memcpy(x + b * X0 + E, feed + b * H, H * sizeof(float));
            else
                memset(x + b * X0 + E, 0, H * sizeof(float));
        }
        for (size_t l = 0; l < L; l++) {
            struct lstm_acts *cl = &a->cell[t * L + l];
            const float *in = x;
            if (l > 0) {
                const float *below = a->cell[t * L + l - 1].h + BH; /* (B, H) */
                if (p > 0) {
                    dropout_forward(below, a->xd[l] + t * BH, a->md[l] + t * BH, BH, p, r);
                    in = a->xd[l] + t * BH;
                } else {
                    in = below;
                }
            }
            const float *hp = t ? a->cell[(t - 1) * L + l].h + BH : (h0 ? h0 + l * BH : NULL);
            const float *cp = t ? a->cell[(t - 1) * L + l].c + BH : (c0 ? c0 + l * BH : NULL);
            lstm_forward(w + lay->W[l], w + lay->b[l], in, NULL, 1, B, attn_stack_in_dim(lay, l), H, hp, cp, cl);
        }
        const struct attn_step st = attn_acts_step(&a->att, t);
        attn_step_forward(att, w, Hs, a->keys, src_len, S, B, a->cell[t * L + L - 1].h + BH, &st);
    }
}

void attn_stack_backward(const struct stack_layout *lay, const struct attn_layout *att, const float *w, float *g,
                         struct attn_stack_acts *a, const float *Hs, const int32_t *src_len, const float *dtop,
                         float *dHs, float *dh0, float *dc0)
{
    const size_t T = a->T, B = a->B, S = a->S, H = lay->H, E = lay->E, L = lay->L, BH = B * H, LBH = L * BH;
    const size_t X0 = E + H, KW = attn_key_width(att);
    const float p = a->p;
    float *dnext_h = a->dh[0], *dnext_c = a->dc[0], *dprev_h = a->dh[1], *dprev_c = a->dc[1];
    memset(dnext_h, 0, LBH * sizeof(float));
    memset(dnext_c, 0, LBH * sizeof(float));
    memset(a->dfeed, 0, BH * sizeof(float));
    memset(a->dkeys, 0, (S * B * KW + 1) * sizeof(float));
    for (size_t t = T; t-- > 0;) {
        /* dh~_t: from the output layer and, through input feeding, from step t+1 */
        for (size_t k = 0; k < BH; k++)
            a->dht[k] = dtop[t * BH + k] + a->dfeed[k];
        float *dy = a->dy; /* (B, H): gradient w.r.t. the top layer's output h^{L-1}_t */
        memset(dy, 0, BH * sizeof(float));
        const struct attn_step st = attn_acts_step(&a->att, t);
        attn_step_backward(att, w, g, Hs, a->keys, src_len, S, B, &st, a->dht, dy, dHs, KW ? a->dkeys : NULL,
                           a->scratch);
        memset(dprev_h, 0, LBH * sizeof(float));
        memset(dprev_c, 0, LBH * sizeof(float));
        for (size_t l = L; l-- > 0;) {
            const size_t I = attn_stack_in_dim(lay, l);
            float *dx = (l % 2) ? a->dxa : a->dxb; /* (B, I); the layer above wrote the other buffer */
            memset(dx, 0, B * I * sizeof(float));
            const float *in = l == 0 ? a->x0 + t * B * X0
                                     : (p > 0 ? a->xd[l] + t * BH : a->cell[t * L + l - 1].h + BH);
            lstm_backward(w + lay->W[l], in, NULL, 1, B, I, H, &a->cell[t * L + l], dy, dnext_h + l * BH,
                          dnext_c + l * BH, g + lay->W[l], g + lay->b[l], dx, dprev_h + l * BH, dprev_c + l * BH,
                          a->scratch);
            if (l > 0 && p > 0) /* x^l = dropout(h^{l-1}) */
                dropout_backward(dx, a->md[l] + t * BH, BH, p);
            dy = dx;
        }
        /* dy = d x_t (B, E+H): the embedding part, and the fed h~_{t-1} part for step t-1 */
        float *demb = a->dxa == dy ? a->dxb : a->dxa; /* (B, E) */
        for (size_t b = 0; b < B; b++) {
            memcpy(demb + b * E, dy + b * X0, E * sizeof(float));
            memcpy(a->dfeed + b * H, dy + b * X0 + E, H * sizeof(float));
        }
        if (p > 0)
            dropout_backward(demb, a->memb + t * B * E, B * E, p);
        embed_backward(g + lay->emb, lay->V, E, a->ids + t * B, B, demb);
        float *s;
        s = dnext_h, dnext_h = dprev_h, dprev_h = s;
        s = dnext_c, dnext_c = dprev_c, dprev_c = s;
    }
    /* dnext now holds the gradient w.r.t. (h0, c0) */
    if (dh0)
        for (size_t k = 0; k < LBH; k++)
            dh0[k] += dnext_h[k];
    if (dc0)
        for (size_t k = 0; k < LBH; k++)
            dc0[k] += dnext_c[k];
    attn_keys_backward(att, w, g, Hs, S, B, a->dkeys, dHs);
}

static size_t step_cell_floats(const struct stack_layout *lay, size_t M)
{
    return max_sz(lstm_step_floats(M, lay->H), lstm_step_packed_floats(M, lay->E + lay->H, lay->H));
}

size_t attn_stack_step_floats(const struct stack_layout *lay, const struct attn_layout *att, size_t M, size_t S)
{
    return M * (lay->E + lay->H) + step_cell_floats(lay, M) + M * S + attn_decode_floats(att, M);
}

void attn_stack_step(const struct stack_layout *lay, const struct attn_layout *att, const float *w, const float *P,
                     const size_t *pk_lstm, size_t pk_att, const int32_t *ids, size_t M, const float *Hs,
                     const float *keys, const int32_t *src_len, size_t S, size_t B, const int32_t *src_row,
                     float *h, float *c, float *feed, float *align, float *scratch)
{
    const size_t H = lay->H, E = lay->E, I0 = E + H, MH = M * H;
    float *x = scratch;                                    /* (M, E+H) */
    float *cell = scratch + M * I0;                        /* one layer's step */
    float *a = cell + step_cell_floats(lay, M);           /* (M, S) attention weights when align is NULL */
    float *ascr = a + M * S;
    embed_forward(w + lay->emb, lay->V, E, ids, M, x); /* rows of E, spread below */
    for (size_t i = M; i-- > 0;) {                         /* (M, E) -> (M, E+H) in place, back to front */
        memmove(x + i * I0, x + i * E, E * sizeof(float));
        memcpy(x + i * I0 + E, feed + i * H, H * sizeof(float));
    }
    for (size_t l = 0; l < lay->L; l++) {
        const float *in = l == 0 ? x : h + (l - 1) * MH;
        const size_t I = attn_stack_in_dim(lay, l);
        if (P)
            lstm_step_forward_packed(P + pk_lstm[l], w + lay->b[l], in, M, I, H, h + l * MH, c + l * MH, cell);
        else
            lstm_step_forward(w + lay->W[l], w + lay->b[l], in, M, I, H, h + l * MH, c + l * MH, cell);
    }
    attn_decode_step(att, w, P ? P + pk_att : NULL, Hs, keys, src_len, S, B, src_row, M, h + (lay->L - 1) * MH,
                     align ? align : a, feed, ascr);
}
