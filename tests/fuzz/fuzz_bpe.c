/* tests/fuzz/fuzz_bpe.c: fuzz target for BPE encoding and decoding (tokenizer/bpe.h) with a tiny model
 * learned from a fixed text in LLVMFuzzerInitialize. Input: byte 0 chooses the mode, the rest is the
 * text. Properties: valid UTF-8 encodes (only to ids in range, never <unk>) and decodes back to its
 * normalisation exactly (the round trip); invalid UTF-8 is refused with SL_EUTF8; any id sequence
 * (mode 1: the input read as little-endian 16-bit ids) decodes without a crash, and an id out of
 * range is refused with SL_EINVAL. */
#include "tests/fuzz/fuzz_common.h"

#include "tokenizer/bpe.h"
#include "util/err.h"
#include "util/sbuf.h"
#include "util/utf8.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    fuzz_bpe();
    return 0;
}

static void fuzz_ids(const struct bpe *b, const uint8_t *data, size_t size)
{
    const size_t n = size / 2;
    int32_t *ids = malloc((n ? n : 1) * sizeof *ids);
    FUZZ_CHECK(ids, "out of memory");
    int in_range = 1;
    for (size_t i = 0; i < n; i++) {
        ids[i] = (int32_t)(data[2 * i] | (data[2 * i + 1] << 8)) - 1024;
        in_range &= ids[i] >= 0 && (size_t)ids[i] < bpe_size(b);
    }
    struct sbuf out;
    sbuf_init(&out);
    const int rc = bpe_decode(b, ids, n, &out);
    FUZZ_CHECK(in_range ? rc == 0 : rc == SL_EINVAL, "decode of %s ids: %d (%s)", in_range ? "valid" : "bad",
               rc, sl_errmsg());
    sbuf_free(&out);
    free(ids);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const struct bpe *b = fuzz_bpe();
    if (size < 1)
        return 0;
    if (data[0] == 1) {
        fuzz_ids(b, data + 1, size - 1);
        return 0;
    }
    const char *s = (const char *)data + 1;
    const size_t n = size - 1;
    struct tok_ids ids;
    tok_ids_init(&ids);
    struct sbuf dec, norm;
    sbuf_init(&dec);
    sbuf_init(&norm);
    const int valid = utf8_valid(s, n, NULL);
    int rc = bpe_encode(b, s, n, &ids);
    if (!valid) {
        FUZZ_CHECK(rc == SL_EUTF8, "invalid UTF-8 encoded: %d", rc);
        goto done;
    }
    FUZZ_CHECK(rc == 0, "encode failed: %s", sl_errmsg());
    for (size_t i = 0; i < ids.n; i++)
        FUZZ_CHECK(ids.ids[i] > BPE_UNK && (size_t)ids.ids[i] < bpe_size(b), "id %d at %zu", ids.ids[i], i);
    FUZZ_CHECK(bpe_decode(b, ids.ids, ids.n, &dec) == 0, "decode failed: %s", sl_errmsg());
    FUZZ_CHECK(tok_normalize(bpe_norm(b), s, n, &norm) == 0, "normalize failed: %s", sl_errmsg());
    FUZZ_CHECK(dec.len == norm.len && (!norm.len || memcmp(dec.data, norm.data, norm.len) == 0),
               "round trip: %zu bytes in (normalised %zu), %zu out", n, norm.len, dec.len);
    /* encoding again with the warm piece cache gives the same ids */
    size_t n1 = ids.n;
    int32_t *first = malloc((n1 ? n1 : 1) * sizeof *first);
    FUZZ_CHECK(first, "out of memory");
    if (n1)
        memcpy(first, ids.ids, n1 * sizeof *first);
    FUZZ_CHECK(bpe_encode(b, s, n, &ids) == 0, "second encode failed");
    FUZZ_CHECK(ids.n == n1 && (!n1 || memcmp(first, ids.ids, n1 * sizeof *first) == 0), "encode not deterministic");
    free(first);
done:
    tok_ids_free(&ids);
    sbuf_free(&dec);
    sbuf_free(&norm);
    return 0;
}
