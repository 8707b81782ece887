/* nn/attention.c: global attention, one decoder step at a time (see attention.h).
 * Row r of a step reads source column b (r itself in training, src_row[r] when decoding): hs = Hs[s,b] at
 * Hs + (s·B + b)·H, its key at keys + (s·B + b)·KW. Scores, softmax and context are plain loops over the
 * row's len[b] positions (they are short); the products with W_c, W_2 (and the keys' W_a, W_1) are GEMMs
 * over all rows, and the gradients of W_c, W_2 GEMMs over the rows of all steps
 * (attn_step_backward_weights). */
#include "nn/attention.h"

#include <assert.h>
#include <stdio.h>
#include <string.h>

#include "nn/gemm.h"
#include "nn/vmath.h"
#include "util/err.h"

static const char *const score_names[] = {"none", "dot", "general", "mlp"};

const char *attn_score_name(enum attn_score s)
{
    return (unsigned)s < sizeof score_names / sizeof *score_names ? score_names[s] : NULL;
}

int attn_score_parse(const char *name, enum attn_score *s)
{
    for (unsigned k = 0; k < sizeof score_names / sizeof *score_names; k++)
        if (strcmp(name, score_names[k]) == 0) {
            *s = (enum attn_score)k;
            return 0;
        }
    return sl_err(SL_EINVAL, "attention '%s': expected none, dot, general or mlp", name);
}

size_t attn_param_floats(enum attn_score s, size_t H, size_t A)
{
    switch (s) {
    case ATTN_DOT:
        return 2 * H * H;
    case ATTN_GENERAL:
        return 3 * H * H;
    case ATTN_MLP:
        return 2 * H * H + 2 * A * H + A;
    default:
        return 0;
    }
}

static int add_view(struct param_table *t, size_t *off, const char *prefix, const char *leaf, int ndim,
                    size_t d0, size_t d1)
{
    char name[PARAM_NAME_MAX];
    if ((size_t)snprintf(name, sizeof name, "%s.%s", prefix, leaf) >= sizeof name)
        return sl_err(SL_EINVAL, "attention: parameter name prefix '%s' too long", prefix);
    int rc = param_table_add(t, name, ndim, (size_t[]){d0, d1});
    if (rc == 0)
        *off = t->views[t->n - 1].offset;
    return rc;
}

int attn_layout_add(struct attn_layout *lay, struct param_table *t, const char *prefix, enum attn_score s,
                    size_t H, size_t A)
{
    memset(lay, 0, sizeof *lay);
    if (s != ATTN_DOT && s != ATTN_GENERAL && s != ATTN_MLP)
        return sl_err(SL_EINVAL, "attention: no parameters for score %d", (int)s);
    if (H < 1 || (s == ATTN_MLP && A < 1))
        return sl_err(SL_EINVAL, "attention: hidden width %zu, attention width %zu (need >= 1)", H, A);
    lay->score = s, lay->H = H, lay->A = s == ATTN_MLP ? A : 0;
    int rc = 0;
    if (s == ATTN_GENERAL)
        rc = add_view(t, &lay->Wa, prefix, "Wa", 2, H, H);
    if (s == ATTN_MLP) {
        rc = add_view(t, &lay->W1, prefix, "W1", 2, A, H);
        if (rc == 0)
            rc = add_view(t, &lay->W2, prefix, "W2", 2, A, H);
        if (rc == 0)
            rc = add_view(t, &lay->v, prefix, "v", 1, A, 1);
    }
    if (rc == 0)
        rc = add_view(t, &lay->Wc, prefix, "Wc", 2, H, 2 * H);
    return rc;
}

size_t attn_key_width(const struct attn_layout *lay)
{
    return lay->score == ATTN_GENERAL ? lay->H : lay->score == ATTN_MLP ? lay->A : 0;
}

/* The key matrix: W_a (H, H) or W_1 (A, H), at this offset. */
static size_t key_weight(const struct attn_layout *lay) { return lay->score == ATTN_GENERAL ? lay->Wa : lay->W1; }

void attn_keys_forward(const struct attn_layout *lay, const float *w, const float *Hs, size_t S, size_t B,
                       float *keys)
{
    const size_t KW = attn_key_width(lay), H = lay->H;
    if (KW == 0)
        return;
    /* keys (S·B, KW) = Hs (S·B, H) · W^T */
    gemm_run(GEMM_N, GEMM_T, S * B, KW, H, 1.0f, Hs, H, w + key_weight(lay), H, 0.0f, keys, KW);
}

void attn_keys_backward(const struct attn_layout *lay, const float *w, float *g, const float *Hs, size_t S,
                        size_t B, const float *dkeys, float *dHs)
{
    const size_t KW = attn_key_width(lay), H = lay->H;
    if (KW == 0)
        return;
    /* forward: keys = Hs W^T  =>  dW (KW, H) += dkeys^T Hs, dHs += dkeys W */
    gemm_run(GEMM_T, GEMM_N, KW, H, S * B, 1.0f, dkeys, KW, Hs, H, 1.0f, g + key_weight(lay), H);
    if (dHs)
        gemm_run(GEMM_N, GEMM_N, S * B, H, KW, 1.0f, dkeys, KW, w + key_weight(lay), H, 1.0f, dHs, H);
}

static size_t align16(size_t n) { return (n + 15) / 16 * 16; }

void attn_acts_carve(struct attn_acts *a, struct arena *ar, const struct attn_layout *lay, size_t T, size_t B,
                     size_t S)
{
    const size_t H = lay->H, A = lay->A;
    a->T = T, a->B = B, a->S = S, a->H = H, a->A = A;
    a->a = arena_take(ar, T * B * S * sizeof(float));
    a->ch = arena_take(ar, T * B * 2 * H * sizeof(float));
    a->ht = arena_take(ar, T * B * H * sizeof(float));
    a->q = lay->score == ATTN_MLP ? arena_take(ar, T * B * A * sizeof(float)) : NULL;
    a->dpre = arena_take(ar, T * B * H * sizeof(float));
    a->dq = lay->score == ATTN_MLP ? arena_take(ar, T * B * A * sizeof(float)) : NULL;
    a->scratch = arena_take(ar, align16(attn_backward_floats(lay, B, S)) * sizeof(float));
}

struct attn_step attn_acts_step(const struct attn_acts *a, size_t t)
{
    assert(t < a->T);
    const size_t B = a->B;
    struct attn_step st = {
        .a = a->a + t * B * a->S,
        .ch = a->ch + t * B * 2 * a->H,
        .ht = a->ht + t * B * a->H,
        .q = a->q ? a->q + t * B * a->A : NULL,
        .dpre = a->dpre + t * B * a->H,
        .dq = a->dq ? a->dq + t * B * a->A : NULL,
    };
    return st;
}

VM_CLONES static float dot(const float *x, const float *y, size_t n)
{
    float s = 0.0f;
#pragma omp simd reduction(+ : s)
    for (size_t k = 0; k < n; k++)
        s += x[k] * y[k];
    return s;
}

/* y (n) += alpha x */
VM_CLONES static void axpy(float *y, float alpha, const float *x, size_t n)
{
#pragma omp simd
    for (size_t k = 0; k < n; k++)
        y[k] += alpha * x[k];
}

/* e = v · tanh(k + q), all (A) */
VM_CLONES static float mlp_score(const float *k, const float *q, const float *v, size_t A)
{
    float s = 0.0f;
#pragma omp simd reduction(+ : s)
    for (size_t j = 0; j < A; j++)
        s += v[j] * vm_tanhf(k[j] + q[j]);
    return s;
}

/* Backward of e = v · tanh(k + q) from de: dv += de·u, dk += dp, dq += dp with dp = de·v·(1 - u²),
 * u = tanh(k + q) recomputed (the same float operations as mlp_score, so the same u). */
VM_CLONES static void mlp_score_backward(const float *k, const float *q, const float *v, size_t A, float de,
                                         float *dv, float *dk, float *dq)
{
#pragma omp simd
    for (size_t j = 0; j < A; j++) {
        float u = vm_tanhf(k[j] + q[j]);
        float dp = de * v[j] * (1.0f - u * u);
        dv[j] += de * u;
        dk[j] += dp;
        dq[j] += dp;
    }
}

/* e (S) holds scores at s < n: a = softmax over them, 0 at s >= n (all 0 when n == 0). */
VM_CLONES static void masked_softmax(float *e, size_t n, size_t S)
{
    if (n > 0) {
        float mx = e[0];
        for (size_t s = 1; s < n; s++)
            mx = e[s] > mx ? e[s] : mx;
        float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
        for (size_t s = 0; s < n; s++) {
            e[s] = vm_expf(e[s] - mx);
            sum += e[s];
        }
        float inv = 1.0f / sum;
#pragma omp simd
        for (size_t s = 0; s < n; s++)
            e[s] *= inv;
    }
    for (size_t s = n; s < S; s++)
        e[s] = 0.0f;
}

VM_CLONES static void tanh_inplace(float *x, size_t n)
{
#pragma omp simd
    for (size_t k = 0; k < n; k++)
        x[k] = vm_tanhf(x[k]);
}

/* The forward of M rows; Pc, P2: W_c and W_2 packed (NULL: gemm_run on w). ch (M, 2H), q (M, A) (mlp),
 * a (M, S), ht (M, H). */
static void step_core(const struct attn_layout *lay, const float *w, const float *Pc, const float *P2,
                      const float *Hs, const float *keys, const int32_t *len, size_t S, size_t B,
                      const int32_t *src_row, size_t M, const float *h, float *a, float *ch, float *ht, float *q)
{
    assert(lay->score == ATTN_DOT || lay->score == ATTN_GENERAL || lay->score == ATTN_MLP);
    const size_t H = lay->H, A = lay->A, H2 = 2 * H;
    const int mlp = lay->score == ATTN_MLP;
    const float *K = lay->score == ATTN_DOT ? Hs : keys;
    const size_t KW = lay->score == ATTN_DOT ? H : attn_key_width(lay);
    for (size_t r = 0; r < M; r++)
        memcpy(ch + r * H2 + H, h + r * H, H * sizeof(float));
    if (mlp) { /* q (M, A) = h W_2^T */
        if (P2)
            gemm_run_packed(M, A, H, h, H, P2, 0.0f, q, A);
        else
            gemm_run(GEMM_N, GEMM_T, M, A, H, 1.0f, h, H, w + lay->W2, H, 0.0f, q, A);
    }
    for (size_t r = 0; r < M; r++) {
        const size_t b = src_row ? (size_t)src_row[r] : r;
        assert(b < B && len[b] >= 0 && (size_t)len[b] <= S);
        const size_t n = (size_t)len[b];
        float *e = a + r * S, *c = ch + r * H2;
        const float *hr = h + r * H;
        for (size_t s = 0; s < n; s++) {
            const float *k = K + (s * B + b) * KW;
            e[s] = mlp ? mlp_score(k, q + r * A, w + lay->v, A) : dot(hr, k, H);
        }
        masked_softmax(e, n, S);
        memset(c, 0, H * sizeof(float));
        for (size_t s = 0; s < n; s++) /* c = sum_s a[s] hs */
            axpy(c, e[s], Hs + (s * B + b) * H, H);
    }
    /* h~ = tanh([c | h] W_c^T) */
    if (Pc)
        gemm_run_packed(M, H, H2, ch, H2, Pc, 0.0f, ht, H);
    else
        gemm_run(GEMM_N, GEMM_T, M, H, H2, 1.0f, ch, H2, w + lay->Wc, H2, 0.0f, ht, H);
    tanh_inplace(ht, M * H);
}

static size_t max_sz(size_t a, size_t b) { return a > b ? a : b; }

/* W_c's share of a pack, enough for either orientation (W_2's follows it). */
static size_t attn_pack_wc_floats(const struct attn_layout *lay)
{
    const size_t H = lay->H;
    return max_sz(gemm_packed_floats(2 * H, H), gemm_packed_floats(H, 2 * H));
}

/* W_2's part of a pack made by attn_pack or attn_pack_backward (mlp; else NULL). */
static const float *packed_w2(const struct attn_layout *lay, const float *P)
{
    return P && lay->score == ATTN_MLP ? P + attn_pack_wc_floats(lay) : NULL;
}

void attn_step_forward(const struct attn_layout *lay, const float *w, const float *P, const float *Hs,
                       const float *keys, const int32_t *len, size_t S, size_t B, const float *h,
                       const struct attn_step *st)
{
    step_core(lay, w, P, packed_w2(lay, P), Hs, keys, len, S, B, NULL, B, h, st->a, st->ch, st->ht, st->q);
}

size_t attn_backward_floats(const struct attn_layout *lay, size_t B, size_t S)
{
    return B * 2 * lay->H + S;
}

void attn_step_backward(const struct attn_layout *lay, const float *w, const float *P, float *g, const float *Hs,
                        const float *keys, const int32_t *len, size_t S, size_t B, const struct attn_step *st,
                        const float *dht, float *dh, float *dHs, float *dkeys, float *scratch)
{
    assert(lay->score == ATTN_DOT || lay->score == ATTN_GENERAL || lay->score == ATTN_MLP);
    const size_t H = lay->H, A = lay->A, H2 = 2 * H;
    const int mlp = lay->score == ATTN_MLP;
    const float *K = lay->score == ATTN_DOT ? Hs : keys;
    float *dK = lay->score == ATTN_DOT ? dHs : dkeys;
    const size_t KW = lay->score == ATTN_DOT ? H : attn_key_width(lay);
    float *dpre = st->dpre;      /* (B, H) */
    float *dq = st->dq;          /* (B, A) mlp */
    float *dch = scratch;        /* (B, 2H) */
    float *de = dch + B * H2;    /* (S) one row's score gradient */

    /* h~ = tanh(pre)  =>  dpre = dh~ (1 - h~²) */
    for (size_t k = 0; k < B * H; k++)
        dpre[k] = dht[k] * (1.0f - st->ht[k] * st->ht[k]);
    /* pre = [c | h] W_c^T  =>  d[c | h] = dpre W_c (dW_c: attn_step_backward_weights) */
    if (P)
        gemm_run_packed(B, H2, H, dpre, H, P, 0.0f, dch, H2);
    else
        gemm_run(GEMM_N, GEMM_N, B, H2, H, 1.0f, dpre, H, w + lay->Wc, H2, 0.0f, dch, H2);
    if (mlp)
        memset(dq, 0, B * A * sizeof(float));
    for (size_t b = 0; b < B; b++) {
        const size_t n = (size_t)len[b];
        const float *ar = st->a + b * S, *dc = dch + b * H2, *hb = st->ch + b * H2 + H;
        axpy(dh + b * H, 1.0f, dch + b * H2 + H, H);
        /* c = sum_s a[s] hs  =>  da[s] = dc · hs, dhs += a[s] dc */
        float ada = 0.0f;
        for (size_t s = 0; s < n; s++) {
            const size_t sb = (s * B + b) * H;
            de[s] = dot(dc, Hs + sb, H);
            ada += ar[s] * de[s];
            axpy(dHs + sb, ar[s], dc, H);
        }
        /* a = softmax(e) over s < n  =>  de[s] = a[s] (da[s] - sum_s' a[s'] da[s']) */
        for (size_t s = 0; s < n; s++)
            de[s] = ar[s] * (de[s] - ada);
        for (size_t s = 0; s < n; s++) {
            const size_t sk = (s * B + b) * KW;
            if (mlp) { /* e = v · tanh(k + q) */
                mlp_score_backward(K + sk, st->q + b * A, w + lay->v, A, de[s], g + lay->v, dK + sk, dq + b * A);
            } else { /* e = h · k  =>  dh += de k, dk += de h */
                axpy(dh + b * H, de[s], K + sk, H);
                axpy(dK + sk, de[s], hb, H);
            }
        }
    }
    /* q = h W_2^T  =>  dh += dq W_2 (dW_2: attn_step_backward_weights) */
    if (mlp && P)
        gemm_run_packed(B, H, A, dq, A, packed_w2(lay, P), 1.0f, dh, H);
    else if (mlp)
        gemm_run(GEMM_N, GEMM_N, B, H, A, 1.0f, dq, A, w + lay->W2, H, 1.0f, dh, H);
}

void attn_step_backward_weights(const struct attn_layout *lay, float *g, const struct attn_step *st, size_t N)
{
    assert(lay->score == ATTN_DOT || lay->score == ATTN_GENERAL || lay->score == ATTN_MLP);
    const size_t H = lay->H, A = lay->A, H2 = 2 * H;
    /* pre = [c | h] W_c^T  =>  dW_c (H, 2H) += dpre^T (H, N) · [c | h] (N, 2H) */
    gemm_run(GEMM_T, GEMM_N, H, H2, N, 1.0f, st->dpre, H, st->ch, H2, 1.0f, g + lay->Wc, H2);
    if (lay->score == ATTN_MLP) /* q = h W_2^T  =>  dW_2 (A, H) += dq^T (A, N) · h (N, H) */
        gemm_run(GEMM_T, GEMM_N, A, H, N, 1.0f, st->dq, A, st->ch + H, H2, 1.0f, g + lay->W2, H);
}

size_t attn_decode_floats(const struct attn_layout *lay, size_t M) { return M * (2 * lay->H + lay->A); }

size_t attn_pack_floats(const struct attn_layout *lay)
{
    const size_t H = lay->H, A = lay->A;
    return attn_pack_wc_floats(lay) +
           (lay->score == ATTN_MLP ? max_sz(gemm_packed_floats(H, A), gemm_packed_floats(A, H)) : 0);
}

void attn_pack(const struct attn_layout *lay, const float *w, float *P)
{
    const size_t H = lay->H;
    gemm_pack_b(GEMM_T, 2 * H, H, w + lay->Wc, 2 * H, P); /* op = W_c^T (2H, H) */
    if (lay->score == ATTN_MLP)                            /* op = W_2^T (H, A) */
        gemm_pack_b(GEMM_T, H, lay->A, w + lay->W2, H, P + attn_pack_wc_floats(lay));
}

void attn_pack_backward(const struct attn_layout *lay, const float *w, float *P)
{
    const size_t H = lay->H;
    gemm_pack_b(GEMM_N, H, 2 * H, w + lay->Wc, 2 * H, P); /* op = W_c (H, 2H) */
    if (lay->score == ATTN_MLP)                            /* op = W_2 (A, H) */
        gemm_pack_b(GEMM_N, lay->A, H, w + lay->W2, H, P + attn_pack_wc_floats(lay));
}

void attn_decode_step(const struct attn_layout *lay, const float *w, const float *P, const float *Hs,
                      const float *keys, const int32_t *len, size_t S, size_t B, const int32_t *src_row, size_t M,
                      const float *h, float *a, float *ht, float *scratch)
{
    assert(src_row || M == B);
    const size_t H = lay->H;
    float *ch = scratch, *q = scratch + M * 2 * H;
    step_core(lay, w, P, packed_w2(lay, P), Hs, keys, len, S, B, src_row, M, h, a, ch, ht, q);
}
