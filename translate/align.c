/* translate/align.c: subword positions to word alignments (see align.h). */
#include "translate/align.h"

#include "util/err.h"

#include <stdlib.h>
#include <string.h>

#define ALIGN_PENDING (-2) /* a token of spaces only: its word is the next one */

static int is_space(unsigned char c) { return c == ' ' || (c >= '\t' && c <= '\r'); }

int align_word_index(const struct bpe *b, const int32_t *ids, size_t n, int32_t *word)
{
    int32_t w = -1; /* index of the current (last started) word */
    int in_word = 0;
    for (size_t i = 0; i < n; i++) {
        size_t len = 0;
        const char *p = bpe_token(b, ids[i], &len);
        if (!p)
            return sl_err(SL_EINVAL, "alignment: token %d at position %zu is outside the vocabulary", (int)ids[i], i);
        const enum bpe_kind kind = bpe_token_kind(b, ids[i]);
        if (kind == BPE_KIND_SPECIAL && ids[i] != BPE_UNK) {
            word[i] = -1;
            continue;
        }
        if (kind == BPE_KIND_SPECIAL) /* <unk>: one visible character */
            p = "?", len = 1;
        int32_t first = ALIGN_PENDING;
        for (size_t k = 0; k < len;) {
            const unsigned char *u = (const unsigned char *)p + k;
            int space = kind == BPE_KIND_NORMAL && len - k >= 3 && u[0] == 0xE2 && u[1] == 0x96 && u[2] == 0x81;
            k += space ? 3 : 1; /* "▁" (U+2581), the space marker of normal tokens */
            if (space || is_space(u[0])) {
                in_word = 0;
                continue;
            }
            if (!in_word)
                w++, in_word = 1;
            if (first == ALIGN_PENDING)
                first = w;
        }
        word[i] = first;
    }
    int32_t next = -1; /* the word of the nearest token after i that has one */
    for (size_t i = n; i-- > 0;) {
        if (word[i] == ALIGN_PENDING)
            word[i] = next;
        else if (word[i] >= 0)
            next = word[i];
    }
    return 0;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

int align_format(const int32_t *src_word, size_t n_src, const int32_t *tgt_word, const int32_t *tgt_src, size_t n_tgt,
                 uint64_t *scratch, struct sbuf *out)
{
    size_t n = 0;
    for (size_t j = 0; j < n_tgt; j++) {
        if (tgt_src[j] < 0 || (size_t)tgt_src[j] >= n_src || tgt_word[j] < 0 || src_word[tgt_src[j]] < 0)
            continue;
        scratch[n++] = (uint64_t)(uint32_t)src_word[tgt_src[j]] << 32 | (uint32_t)tgt_word[j];
    }
    qsort(scratch, n, sizeof *scratch, cmp_u64);
    int rc = 0;
    for (size_t i = 0; i < n && !rc; i++) {
        if (i > 0 && scratch[i] == scratch[i - 1])
            continue;
        rc = sbuf_printf(out, "%s%u-%u", i ? " " : "", (unsigned)(scratch[i] >> 32),
                         (unsigned)(scratch[i] & 0xFFFFFFFFu));
    }
    return rc;
}
