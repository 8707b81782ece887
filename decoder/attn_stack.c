/* decoder/attn_stack.c: the attention decoder stack with input feeding (see attn_stack.h).
 * Input feeding makes step t's input depend on step t-1's output, so the steps run one after the other and
 * every (step, layer) cell is one (B, I+H) · (I+H, 4H) product over the block [x^l_t | h^l_{t-1}]
 * (nn/lstm.h lstm_cell_forward). The blocks and gate values of each layer are kept for all steps,
 * contiguous: the backward runs per step only the products that carry gradient through time
 * (d[x | h] = dG · W, and the attention's d[c | h]), and the weight gradients, products with k = B if done
 * per step, are one product per weight with k = T·B after the time loop. The attention keys are computed
 * once per batch and their gradient folded back once at the end. */
#include "decoder/attn_stack.h"

#include <string.h>

#include "nn/autocast.h"
#include "nn/dropout.h"
#include "nn/embed.h"
#include "nn/gemm.h"

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
    for (size_t l = 0; l < L; l++) {
        const size_t IH = attn_stack_in_dim(lay, l) + H;
        a->xh[l] = arena_take(ar, TB * IH * sizeof(float));
        a->md[l] = l > 0 ? arena_take(ar, TB * H) : NULL;
        a->gates[l] = arena_take(ar, TB * 4 * H * sizeof(float));
        a->c[l] = arena_take(ar, (T + 1) * BH * sizeof(float));
        a->tc[l] = arena_take(ar, TB * H * sizeof(float));
        a->dxh[l] = arena_take(ar, B * IH * sizeof(float));
    }
    a->hout = arena_take(ar, BH * sizeof(float));
    attn_acts_carve(&a->att, ar, att, T, B, S);
    a->keys = arena_take(ar, (S * B * KW + 1) * sizeof(float));
    a->dkeys = arena_take(ar, (S * B * KW + 1) * sizeof(float));
    a->dht = arena_take(ar, BH * sizeof(float));
    a->dh = arena_take(ar, BH * sizeof(float));
    a->dc = arena_take(ar, L * BH * sizeof(float));
    a->demb = arena_take(ar, B * E * sizeof(float));
    a->scratch = arena_take(ar, max_sz(1, attn_backward_floats(att, B, S)) * sizeof(float));
    for (size_t l = 0; l < L; l++)
        a->pk[l] = arena_take(ar, lstm_cell_pack_floats(attn_stack_in_dim(lay, l), H) * sizeof(float));
    a->pka = arena_take(ar, attn_pack_floats(att) * sizeof(float));
}

/* The packed weights of one pass (backward: packed for attn_stack_backward's products), made into a's
 * buffers when the pass runs f32 on one BLAS thread (nn/gemm.h) over more than one step: pk[l] for layer
 * l's cell, the attention's returned; NULL where a weight is multiplied unpacked. */
static const float *make_packs(const struct stack_layout *lay, const struct attn_layout *att, const float *w,
                               const struct attn_stack_acts *a, int backward, const float *pk[NN_MAX_LAYERS])
{
    const int packs = gemm_get_threads() == 1 && !autocast_active() && a->T > 1;
    for (size_t l = 0; l < lay->L; l++) {
        pk[l] = packs ? a->pk[l] : NULL;
        if (pk[l] && backward)
            lstm_cell_pack_backward(w + lay->W[l], attn_stack_in_dim(lay, l), lay->H, a->pk[l]);
        else if (pk[l])
            lstm_cell_pack_forward(w + lay->W[l], attn_stack_in_dim(lay, l), lay->H, a->pk[l]);
    }
    if (!packs || !a->pka)
        return NULL;
    (backward ? attn_pack_backward : attn_pack)(att, w, a->pka);
    return a->pka;
}

const float *attn_stack_top(const struct attn_stack_acts *a) { return a->att.ht; }

/* Rows of src (B, n), stride ld_src, into dst (B, ·) at column offset, stride ld_dst; src NULL: zeros. */
static void put_rows(float *dst, size_t ld_dst, const float *src, size_t ld_src, size_t B, size_t n)
{
    for (size_t b = 0; b < B; b++) {
        if (src)
            memcpy(dst + b * ld_dst, src + b * ld_src, n * sizeof(float));
        else
            memset(dst + b * ld_dst, 0, n * sizeof(float));
    }
}

void attn_stack_forward(const struct stack_layout *lay, const struct attn_layout *att, const float *w,
                        struct attn_stack_acts *a, const float *Hs, const int32_t *src_len, const float *h0,
                        const float *c0, float p, struct rng *r)
{
    const size_t T = a->T, B = a->B, S = a->S, H = lay->H, E = lay->E, L = lay->L, BH = B * H, TB = T * B;
    a->p = p;
    embed_forward(w + lay->emb, lay->V, E, a->ids, TB, a->emb);
    if (p > 0)
        dropout_forward(a->emb, a->emb, a->memb, TB * E, p, r);
    attn_keys_forward(att, w, Hs, S, B, a->keys);
    const float *pk[NN_MAX_LAYERS], *pka = make_packs(lay, att, w, a, 0, pk);
    for (size_t l = 0; l < L; l++) { /* the state before step 0: h0 into the first block, c0 */
        const size_t I = attn_stack_in_dim(lay, l);
        put_rows(a->xh[l] + I, I + H, h0 ? h0 + l * BH : NULL, H, B, H);
        if (c0)
            memcpy(a->c[l], c0 + l * BH, BH * sizeof(float));
        else
            memset(a->c[l], 0, BH * sizeof(float));
    }
    for (size_t t = 0; t < T; t++) {
        /* x^0_t = [emb_t | h~_{t-1}], h~_{-1} = 0 */
        const size_t X0 = E + 2 * H;
        float *x0 = a->xh[0] + t * B * X0;
        put_rows(x0, X0, a->emb + t * B * E, E, B, E);
        put_rows(x0 + E, X0, t ? a->att.ht + (t - 1) * BH : NULL, H, B, H);
        for (size_t l = 0; l < L; l++) {
            const size_t I = attn_stack_in_dim(lay, l), IH = I + H;
            float *xh = a->xh[l] + t * B * IH; /* (B, I+H), filled by the layer below and step t-1 */
            lstm_cell_forward(w + lay->W[l], pk[l], w + lay->b[l], xh, B, I, H, a->c[l] + t * BH,
                              a->gates[l] + t * B * 4 * H, a->c[l] + (t + 1) * BH, a->hout, a->tc[l] + t * BH);
            if (t + 1 < T) /* h^l_t is the recurrent half of the next step's block */
                put_rows(xh + B * IH + I, IH, a->hout, H, B, H);
            if (l + 1 < L) { /* x^{l+1}_t = dropout(h^l_t) */
                if (p > 0)
                    dropout_forward(a->hout, a->hout, a->md[l + 1] + t * BH, BH, p, r);
                put_rows(a->xh[l + 1] + t * B * 2 * H, 2 * H, a->hout, H, B, H);
            }
        }
        const struct attn_step st = attn_acts_step(&a->att, t);
        attn_step_forward(att, w, pka, Hs, a->keys, src_len, S, B, a->hout, &st);
    }
}

void attn_stack_backward(const struct stack_layout *lay, const struct attn_layout *att, const float *w, float *g,
                         struct attn_stack_acts *a, const float *Hs, const int32_t *src_len, const float *dtop,
                         float *dHs, float *dh0, float *dc0)
{
    const size_t T = a->T, B = a->B, S = a->S, H = lay->H, E = lay->E, L = lay->L, BH = B * H;
    const size_t X0 = E + 2 * H, KW = attn_key_width(att);
    const float p = a->p;
    /* dxh[l] holds d[x^l_{t+1} | h^l_t] from step t+1: zero before the last step */
    for (size_t l = 0; l < L; l++)
        memset(a->dxh[l], 0, B * (attn_stack_in_dim(lay, l) + H) * sizeof(float));
    memset(a->dc, 0, L * BH * sizeof(float));
    memset(a->dkeys, 0, (S * B * KW + 1) * sizeof(float));
    const float *pk[NN_MAX_LAYERS], *pka = make_packs(lay, att, w, a, 1, pk);
    for (size_t t = T; t-- > 0;) {
        /* dh~_t: from the output layer and, through input feeding, from step t+1's x^0 = [emb | h~_t] */
        for (size_t b = 0; b < B; b++)
            for (size_t j = 0; j < H; j++)
                a->dht[b * H + j] = dtop[(t * B + b) * H + j] + a->dxh[0][b * X0 + E + j];
        memset(a->dh, 0, BH * sizeof(float)); /* gradient w.r.t. the top layer's output h^{L-1}_t */
        const struct attn_step st = attn_acts_step(&a->att, t);
        attn_step_backward(att, w, pka, g, Hs, a->keys, src_len, S, B, &st, a->dht, a->dh, dHs, KW ? a->dkeys : NULL,
                           a->scratch);
        for (size_t l = L; l-- > 0;) {
            const size_t I = attn_stack_in_dim(lay, l), IH = I + H;
            float *dxh = a->dxh[l]; /* (B, I+H): d h^l_t in its recurrent half (from step t+1) */
            if (l + 1 < L) {        /* from the layer above: x^{l+1}_t = dropout(h^l_t) */
                const float *dup = a->dxh[l + 1];
                for (size_t b = 0; b < B; b++)
                    memcpy(a->dh + b * H, dup + b * 2 * H, H * sizeof(float));
                if (p > 0)
                    dropout_backward(a->dh, a->md[l + 1] + t * BH, BH, p);
            }
            for (size_t b = 0; b < B; b++)
                for (size_t j = 0; j < H; j++)
                    a->dh[b * H + j] += dxh[b * IH + I + j];
            memset(dxh, 0, B * IH * sizeof(float));
            lstm_cell_backward(w + lay->W[l], pk[l], B, I, H, a->gates[l] + t * B * 4 * H, a->dh, a->dc + l * BH,
                               a->c[l] + t * BH, a->tc[l] + t * BH, dxh);
        }
        /* d x^0_t = [d emb_t | d h~_{t-1}]: the embedding part here, the fed part at step t-1 */
        put_rows(a->demb, E, a->dxh[0], X0, B, E);
        if (p > 0)
            dropout_backward(a->demb, a->memb + t * B * E, B * E, p);
        embed_backward(g + lay->emb, lay->V, E, a->ids + t * B, B, a->demb);
    }
    /* the recurrent halves of dxh and dc now hold the gradient w.r.t. (h0, c0) */
    for (size_t l = 0; l < L; l++) {
        const size_t I = attn_stack_in_dim(lay, l), IH = I + H;
        if (dh0)
            for (size_t b = 0; b < B; b++)
                for (size_t j = 0; j < H; j++)
                    dh0[l * BH + b * H + j] += a->dxh[l][b * IH + I + j];
        if (dc0)
            for (size_t k = 0; k < BH; k++)
                dc0[l * BH + k] += a->dc[l * BH + k];
        lstm_cell_backward_weights(a->gates[l], a->xh[l], T * B, I, H, g + lay->W[l], g + lay->b[l]);
    }
    if (T > 0) {
        const struct attn_step all = attn_acts_step(&a->att, 0); /* the T steps' rows, contiguous */
        attn_step_backward_weights(att, g, &all, T * B);
    }
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
