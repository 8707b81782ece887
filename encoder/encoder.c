/* encoder/encoder.c: source loading (transpose to time-major, optional reversal) and the encoder
 * forward / backward over nn/stack (see encoder.h). */
#include "encoder/encoder.h"

#include <string.h>

#include "util/err.h"

int enc_load(int32_t *ids, int32_t *lens, const int32_t *src, const int32_t *src_len, size_t B, size_t S, size_t V,
             int reverse)
{
    for (size_t b = 0; b < B; b++) {
        int32_t n = src_len[b];
        if (n < 0 || (size_t)n > S)
            return sl_err(SL_EINVAL, "source row %zu: length %d outside [0, %zu]", b, (int)n, S);
        for (size_t s = 0; s < S; s++) {
            int32_t id = 0;
            if ((int64_t)s < n) {
                id = src[b * S + (reverse ? (size_t)n - 1 - s : s)];
                if (id < 0 || (size_t)id >= V)
                    return sl_err(SL_EINVAL, "source row %zu, position %zu: token id %d outside [0, %zu)", b,
                                  reverse ? (size_t)n - 1 - s : s, (int)id, V);
            }
            ids[s * B + b] = id;
        }
        lens[b] = n;
    }
    return 0;
}

void enc_forward(const struct stack_layout *lay, const float *w, struct stack_acts *a, float p, struct rng *r)
{
    stack_forward(lay, w, a, NULL, NULL, p, r);
}

void enc_backward(const struct stack_layout *lay, const float *w, float *g, struct stack_acts *a, const float *dtop,
                  const float *dhT, const float *dcT)
{
    stack_backward(lay, w, g, a, dtop, dhT, dcT, NULL, NULL);
}

void enc_final_state(const struct stack_layout *lay, const struct stack_acts *a, float *h, float *c)
{
    const size_t BH = a->B * lay->H;
    for (size_t l = 0; l < lay->L; l++) {
        memcpy(h + l * BH, stack_final_h(a, l), BH * sizeof(float));
        memcpy(c + l * BH, stack_final_c(a, l), BH * sizeof(float));
    }
}

const float *enc_top_states(const struct stack_layout *lay, const struct stack_acts *a)
{
    return stack_top(lay, a);
}
