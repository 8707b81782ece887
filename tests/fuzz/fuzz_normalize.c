/* tests/fuzz/fuzz_normalize.c: fuzz target for utf8proc normalisation and pre-tokenisation
 * (tokenizer/tok.h). Input: byte 0 chooses the normalisation and the dummy-prefix flag, the rest is
 * the text. Properties: tok_utf8_check agrees with util/utf8.h; invalid input is refused by
 * tok_normalize and tok_pretokenize with SL_EUTF8 at the same offset; tok_utf8_repair gives valid
 * UTF-8 (the input itself when it was valid); for valid input the pieces concatenated, U+2581 of
 * TEXT pieces read as spaces, give back the normalised text (with one leading space under the
 * dummy prefix), and no piece is empty. */
#include "tests/fuzz/fuzz_common.h"

#include "tokenizer/tok.h"
#include "util/err.h"
#include "util/sbuf.h"
#include "util/utf8.h"

#include <string.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    return 0;
}

/* Appends the surface of piece i with its U+2581 read as ' ' (TEXT pieces only). */
static void piece_text(const struct tok_pieces *p, size_t i, struct sbuf *out)
{
    const char *s = p->text.data + p->off[i];
    size_t n = p->off[i + 1] - p->off[i];
    if (p->kind[i] != TOK_PIECE_TEXT) {
        FUZZ_CHECK(sbuf_append(out, s, n) == 0, "out of memory");
        return;
    }
    for (size_t k = 0; k < n;) {
        if (n - k >= 3 && memcmp(s + k, TOK_SPACE_MARK, 3) == 0) {
            FUZZ_CHECK(sbuf_putc(out, ' ') == 0, "out of memory");
            k += 3;
        } else {
            FUZZ_CHECK(sbuf_putc(out, s[k]) == 0, "out of memory");
            k++;
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    const enum tok_norm norm = (enum tok_norm)(data[0] % 3);
    const unsigned flags = (data[0] & 0x10) ? TOK_PRETOK_SPACE_PREFIX : 0;
    const char *s = (const char *)data + 1;
    const size_t n = size - 1;

    size_t bad_tok = 0, bad_util = 0;
    const int rc = tok_utf8_check(s, n, &bad_tok);
    const int valid = utf8_valid(s, n, &bad_util);
    FUZZ_CHECK((rc == 0) == (valid != 0), "tok_utf8_check %d but utf8_valid %d", rc, valid);
    if (!valid)
        FUZZ_CHECK(bad_tok == bad_util, "bad offset %zu vs %zu", bad_tok, bad_util);

    struct sbuf rep, norm_out, cat;
    sbuf_init(&rep);
    sbuf_init(&norm_out);
    sbuf_init(&cat);
    FUZZ_CHECK(tok_utf8_repair(s, n, &rep) == 0, "repair: %s", sl_errmsg());
    FUZZ_CHECK(utf8_valid(rep.data, rep.len, NULL), "repair gave invalid UTF-8");
    if (valid)
        FUZZ_CHECK(rep.len == n && memcmp(rep.data, s, n) == 0, "repair changed valid text");

    struct tok_pieces p;
    tok_pieces_init(&p);
    const int nrc = tok_normalize(norm, s, n, &norm_out);
    const int prc = tok_pretokenize(norm, s, n, flags, &p);
    if (!valid) {
        FUZZ_CHECK(nrc == SL_EUTF8 && prc == SL_EUTF8, "invalid UTF-8 accepted (%d, %d)", nrc, prc);
    } else {
        FUZZ_CHECK(nrc == 0, "normalize failed on valid UTF-8: %s", sl_errmsg());
        FUZZ_CHECK(prc == 0, "pretokenize failed on valid UTF-8: %s", sl_errmsg());
        FUZZ_CHECK(utf8_valid(norm_out.data, norm_out.len, NULL), "normalisation gave invalid UTF-8");
        if (norm == TOK_NORM_NONE)
            FUZZ_CHECK(norm_out.len == n && memcmp(norm_out.data, s, n) == 0, "'none' changed the text");
        for (size_t i = 0; i < p.n; i++) {
            FUZZ_CHECK(p.off[i] < p.off[i + 1], "piece %zu is empty", i);
            piece_text(&p, i, &cat);
        }
        FUZZ_CHECK(p.off[p.n] == p.text.len, "pieces do not cover the text");
        const size_t lead = (flags && norm_out.len) ? 1 : 0;
        FUZZ_CHECK(cat.len == norm_out.len + lead, "pieces: %zu bytes, normalised text %zu (+%zu)", cat.len,
                   norm_out.len, lead);
        FUZZ_CHECK(!lead || cat.data[0] == ' ', "no dummy prefix");
        FUZZ_CHECK(!norm_out.len || memcmp(cat.data + lead, norm_out.data, norm_out.len) == 0,
                   "pieces differ from the text");
    }
    tok_pieces_free(&p);
    sbuf_free(&rep);
    sbuf_free(&norm_out);
    sbuf_free(&cat);
    return 0;
}
