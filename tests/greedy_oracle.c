/* tests/greedy_oracle.c: the greedy decoding oracle of the tests (see greedy_oracle.h). Per call it
 * allocates its small buffers once (ids, row maps and the (B, V) log-probabilities); the step loop
 * allocates nothing. */
#include "tests/greedy_oracle.h"

#include "nn/params.h"
#include "nn/proj.h"

#include <stdlib.h>
#include <string.h>

#include "util/err.h"

int greedy_oracle_decode(struct s2s_decoder *d, const int32_t *src, const int32_t *src_len, size_t B, size_t S,
                         size_t max_len, int32_t *out, int32_t *out_len, float *score)
{
    return greedy_oracle_decode_n(&d, 1, src, src_len, B, S, max_len, out, out_len, score);
}

int greedy_oracle_decode_n(struct s2s_decoder *const *d, size_t n, const int32_t *src, const int32_t *src_len,
                           size_t B, size_t S, size_t max_len, int32_t *out, int32_t *out_len, float *score)
{
    if (B == 0)
        return 0;
    memset(out, 0, B * max_len * sizeof(int32_t));
    memset(out_len, 0, B * sizeof(int32_t));
    if (score)
        memset(score, 0, B * sizeof(float));
    const size_t V = s2s_decoder_model(d[0])->cfg.V_tgt;
    int32_t *prev = malloc(B * sizeof *prev);  /* (M) token fed at the next step */
    int32_t *sent = malloc(B * sizeof *sent);  /* (M) sentence of each live row */
    size_t *keep = malloc(B * sizeof *keep);   /* (M) rows that stay live */
    float *lp = param_buf_create(B * V);      /* (M, V), 64-byte aligned for the GEMM */
    float *lp2 = param_buf_create(B * V);     /* (M, V) another member's */
    int rc = 0;
    if (!prev || !sent || !keep || !lp || !lp2) {
        rc = sl_err(SL_ENOMEM, "out of memory for greedy decoding of %zu sentences", B);
        goto done;
    }
    for (size_t k = 0; k < n; k++)
        if ((rc = s2s_decoder_start(d[k], src, src_len, B, S, 1)))
            goto done;
    size_t M = B;
    for (size_t i = 0; i < M; i++) {
        prev[i] = BPE_BOS;
        sent[i] = (int32_t)i;
    }
    for (size_t t = 0; t < max_len && M > 0; t++) {
        if ((rc = s2s_decoder_step(d[0], prev, M, lp)))
            goto done;
        for (size_t k = 1; k < n; k++) {
            if ((rc = s2s_decoder_step(d[k], prev, M, lp2)))
                goto done;
            for (size_t x = 0; x < M * V; x++)
                lp[x] += lp2[x];
        }
        for (size_t x = 0; n > 1 && x < M * V; x++)
            lp[x] /= (float)n;
        size_t live = 0;
        for (size_t i = 0; i < M; i++) {
            const float *z = lp + i * V;
            const size_t best = proj_argmax(z, V);
            size_t b = (size_t)sent[i];
            if (score)
                score[b] += z[best];
            if (best == BPE_EOS)
                continue;
            out[b * max_len + t] = (int32_t)best;
            out_len[b] = (int32_t)(t + 1);
            keep[live] = i;
            prev[live] = (int32_t)best;
            sent[live] = (int32_t)b;
            live++;
        }
        if (live < M && live > 0) {
            for (size_t k = 0; k < n; k++)
                if ((rc = s2s_decoder_reorder(d[k], keep, live)))
                    goto done;
        }
        M = live;
    }
done:
    free(prev), free(sent), free(keep);
    param_buf_free(lp);
    param_buf_free(lp2);
    return rc;
}
