/* tests/test_tokenizer.c: UTF-8 validation, normalisation (NFKC / NFC / none) and pre-tokenisation
 * (tokenizer/tok.h). Expected pieces are written out by hand from the rules in tok.h; pieces are
 * joined with '|' and a literal-U+2581 (bytes) piece is shown in brackets. */
#include <criterion/criterion.h>

#include "tokenizer/tok.h"
#include "util/err.h"

#include <stdlib.h>
#include <string.h>

#define M "\xE2\x96\x81" /* ▁ */

/* "piece|piece|[bytes piece]" for s under norm, into a static buffer. */
static const char *pieces_f(enum tok_norm norm, const char *s, unsigned flags)
{
    static char buf[8192];
    struct tok_pieces p;
    tok_pieces_init(&p);
    int rc = tok_pretokenize(norm, s, strlen(s), flags, &p);
    cr_assert_eq(rc, 0, "pretokenize failed: %s", sl_errmsg());
    size_t k = 0;
    for (size_t i = 0; i < p.n; i++) {
        size_t n = p.off[i + 1] - p.off[i];
        cr_assert(n > 0, "empty piece %zu", i);
        cr_assert(k + n + 4 < sizeof buf);
        if (i)
            buf[k++] = '|';
        if (p.kind[i] == TOK_PIECE_BYTES)
            buf[k++] = '[';
        memcpy(buf + k, p.text.data + p.off[i], n);
        k += n;
        if (p.kind[i] == TOK_PIECE_BYTES)
            buf[k++] = ']';
    }
    buf[k] = '\0';
    tok_pieces_free(&p);
    return buf;
}

static const char *pieces(enum tok_norm norm, const char *s) { return pieces_f(norm, s, 0); }

#define PIECES(norm, in, want)                                                                          \
    do {                                                                                               \
        const char *got_ = pieces((norm), (in));                                                       \
        cr_assert_str_eq(got_, (want), "input '%s'", (in));                                             \
    } while (0)

Test(utf8, valid_strings_pass)
{
    size_t off = 99;
    cr_assert_eq(tok_utf8_check("", 0, &off), 0);
    cr_assert_eq(tok_utf8_check("abc", 3, &off), 0);
    cr_assert_eq(tok_utf8_check("a\0b", 3, &off), 0, "NUL is a valid code point");
    const char *s = "Gr\xC3\xBC\xC3\x9F" "e \xE6\x88\x91 \xF0\x9F\x98\x80 \xF4\x8F\xBF\xBF"; /* ..., U+10FFFF */
    cr_assert_eq(tok_utf8_check(s, strlen(s), &off), 0);
    cr_assert_eq(off, 99, "bad_off untouched on success");
}

Test(utf8, invalid_sequences_report_their_byte_offset)
{
    struct {
        const char *s;
        size_t len, off;
    } cases[] = {
        {"ab\xC3", 3, 2},                /* truncated 2-byte sequence at the end */
        {"\x80", 1, 0},                  /* lone continuation byte */
        {"abc\xFF", 4, 3},               /* 0xFF never appears in UTF-8 */
        {"\xC0\xAF", 2, 0},              /* overlong '/' */
        {"\xE0\x80\x80", 3, 0},          /* overlong NUL */
        {"x\xED\xA0\x80", 4, 1},         /* UTF-16 surrogate U+D800 */
        {"\xF4\x90\x80\x80", 4, 0},      /* U+110000, above the last code point */
        {"\xC3\xA4\xE2\x82", 4, 2},      /* ä then a truncated 3-byte sequence */
        {"ok \xC3\xA4 \xC3(", 8, 6},     /* continuation byte missing */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t off = 999;
        int rc = tok_utf8_check(cases[i].s, cases[i].len, &off);
        cr_assert_eq(rc, SL_EUTF8, "case %zu accepted", i);
        cr_assert_eq(off, cases[i].off, "case %zu: offset %zu, want %zu", i, off, cases[i].off);
        char want[64];
        snprintf(want, sizeof want, "invalid UTF-8 at byte %zu", cases[i].off + 1); /* messages count from 1 */
        cr_assert_str_eq(sl_errmsg(), want);
    }
    /* normalisation and pre-tokenisation reject it the same way */
    struct sbuf out;
    sbuf_init(&out);
    cr_assert_eq(tok_normalize(TOK_NORM_NFKC, "ab\xC3", 3, &out), SL_EUTF8);
    cr_assert_str_eq(sl_errmsg(), "invalid UTF-8 at byte 3");
    cr_assert_eq(tok_normalize(TOK_NORM_NONE, "\xE0\x80\x80", 3, &out), SL_EUTF8);
    sbuf_free(&out);
    struct tok_pieces p;
    tok_pieces_init(&p);
    cr_assert_eq(tok_pretokenize(TOK_NORM_NFC, "abc\xFF", 4, 0, &p), SL_EUTF8);
    cr_assert_str_eq(sl_errmsg(), "invalid UTF-8 at byte 4");
    tok_pieces_free(&p);
}

Test(utf8, repair_replaces_bad_bytes_with_fffd)
{
    struct sbuf out;
    sbuf_init(&out);
    cr_assert_eq(tok_utf8_repair("a\xFF" "b\xC3", 4, &out), 0);
    cr_assert_str_eq(out.data, "a\xEF\xBF\xBD" "b\xEF\xBF\xBD");
    sbuf_reset(&out);
    cr_assert_eq(tok_utf8_repair("\xC3\xA4", 2, &out), 0);
    cr_assert_str_eq(out.data, "\xC3\xA4");
    sbuf_free(&out);
}

Test(normalize, names_parse_and_print)
{
    enum tok_norm n;
    cr_assert_eq(tok_norm_parse("NFKC", &n), 0);
    cr_assert_eq(n, TOK_NORM_NFKC);
    cr_assert_eq(tok_norm_parse("nfc", &n), 0);
    cr_assert_eq(n, TOK_NORM_NFC);
    cr_assert_eq(tok_norm_parse("none", &n), 0);
    cr_assert_eq(n, TOK_NORM_NONE);
    cr_assert_eq(tok_norm_parse("NFD", &n), SL_EINVAL);
    cr_assert(strstr(sl_errmsg(), "NFD"));
    cr_assert_str_eq(tok_norm_name(TOK_NORM_NFKC), "NFKC");
    cr_assert_str_eq(tok_norm_name(TOK_NORM_NFC), "NFC");
    cr_assert_str_eq(tok_norm_name(TOK_NORM_NONE), "none");
}

static void norm_is(enum tok_norm n, const char *in, const char *want)
{
    struct sbuf out;
    sbuf_init(&out);
    cr_assert_eq(tok_normalize(n, in, strlen(in), &out), 0, "%s", sl_errmsg());
    cr_assert_str_eq(out.data, want, "normalising '%s' with %s", in, tok_norm_name(n));
    sbuf_free(&out);
}

Test(normalize, nfkc_nfc_and_none)
{
    /* e + COMBINING ACUTE composes to é (U+00E9) under NFC and NFKC, stays under none */
    norm_is(TOK_NORM_NFC, "e\xCC\x81", "\xC3\xA9");
    norm_is(TOK_NORM_NFKC, "e\xCC\x81", "\xC3\xA9");
    norm_is(TOK_NORM_NONE, "e\xCC\x81", "e\xCC\x81");
    /* ligature ﬁ (U+FB01), circled one ① (U+2460), full-width Ａ (U+FF21): compatibility forms */
    norm_is(TOK_NORM_NFKC, "\xEF\xAC\x81 \xE2\x91\xA0 \xEF\xBC\xA1", "fi 1 A");
    norm_is(TOK_NORM_NFC, "\xEF\xAC\x81", "\xEF\xAC\x81");
    /* NO-BREAK SPACE becomes a space under NFKC only */
    norm_is(TOK_NORM_NFKC, "a\xC2\xA0" "b", "a b");
    norm_is(TOK_NORM_NFC, "a\xC2\xA0" "b", "a\xC2\xA0" "b");
    /* ASCII (with controls) is unchanged; a literal ▁ too */
    norm_is(TOK_NORM_NFKC, "a\tb\r\n", "a\tb\r\n");
    norm_is(TOK_NORM_NFKC, M "x", M "x");
    norm_is(TOK_NORM_NFKC, "", "");
}

Test(pretok, words_spaces_and_punctuation)
{
    PIECES(TOK_NORM_NFKC, "Hello world", "Hello|" M "world");
    PIECES(TOK_NORM_NFKC, "Hello, world!", "Hello|,|" M "world|!");
    PIECES(TOK_NORM_NFKC, "a  b", "a|" M "|" M "b");
    PIECES(TOK_NORM_NFKC, "a    b", "a|" M M M "|" M "b");
    PIECES(TOK_NORM_NFKC, "  a", M "|" M "a");
    PIECES(TOK_NORM_NFKC, "a ", "a|" M);
    PIECES(TOK_NORM_NFKC, "a  ", "a|" M M);
    PIECES(TOK_NORM_NFKC, " ", M);
    PIECES(TOK_NORM_NFKC, "", "");
    PIECES(TOK_NORM_NFKC, "x = (y+1)...", "x|" M "=|" M "(|y|+|1|)...");
    PIECES(TOK_NORM_NFKC, "abc123def 4.5", "abc|123|def|" M "4|.|5");
}

Test(pretok, other_whitespace_is_its_own_piece)
{
    PIECES(TOK_NORM_NFKC, "a\tb", "a|\t|b");
    PIECES(TOK_NORM_NFKC, "a \tb", "a|" M "|\t|b");
    PIECES(TOK_NORM_NFKC, "a\n b", "a|\n|" M "b");
    PIECES(TOK_NORM_NFKC, "a\r\n", "a|\r|\n");
    /* EM SPACE U+2003 survives NFC as a piece of its own; NFKC makes it a space */
    PIECES(TOK_NORM_NFC, "a\xE2\x80\x83" "b", "a|\xE2\x80\x83|b");
    PIECES(TOK_NORM_NFKC, "a\xE2\x80\x83" "b", "a|" M "b");
}

Test(pretok, german_umlauts_and_combining_marks)
{
    PIECES(TOK_NORM_NFKC, "Grüße, Jürgen!", "Grüße|,|" M "Jürgen|!");
    /* under none, u + COMBINING DIAERESIS stays two code points in one piece */
    PIECES(TOK_NORM_NONE, "Ju\xCC\x88rgen", "Ju\xCC\x88rgen");
    /* a mark after a digit or punctuation stays with it (keycap 1️⃣: 1 U+FE0F U+20E3) */
    PIECES(TOK_NORM_NONE, "1\xEF\xB8\x8F\xE2\x83\xA3!", "1\xEF\xB8\x8F\xE2\x83\xA3|!");
    /* a mark with nothing before it starts a letter piece, and takes the space marker */
    PIECES(TOK_NORM_NONE, " \xCC\x81x", M "\xCC\x81x");
    PIECES(TOK_NORM_NONE, "\t\xCC\x81x", "\t|\xCC\x81x");
}

Test(pretok, cjk_kana_hangul)
{
    PIECES(TOK_NORM_NFKC, "我爱你", "我|爱|你");
    PIECES(TOK_NORM_NFKC, "東京タワーへ行く", "東|京|タワーへ|行|く");
    PIECES(TOK_NORM_NFKC, "你好, world", "你|好|,|" M "world");
    PIECES(TOK_NORM_NFKC, "안녕하세요 세계", "안녕하세요|" M "세계");
    /* a space before an ideograph attaches to it */
    PIECES(TOK_NORM_NFKC, "a 我", "a|" M "我");
}

Test(pretok, emoji_sequences_stay_together)
{
    /* man ZWJ woman ZWJ girl */
    const char *fam = "\xF0\x9F\x91\xA8\xE2\x80\x8D\xF0\x9F\x91\xA9\xE2\x80\x8D\xF0\x9F\x91\xA7";
    char in[128], want[128];
    snprintf(in, sizeof in, "%s ok", fam);
    snprintf(want, sizeof want, "%s|" M "ok", fam);
    PIECES(TOK_NORM_NFKC, in, want);
    /* thumbs up + skin tone modifier (So + Sk) after a word */
    PIECES(TOK_NORM_NFKC, "hi\xF0\x9F\x91\x8D\xF0\x9F\x8F\xBD", "hi|\xF0\x9F\x91\x8D\xF0\x9F\x8F\xBD");
    /* red heart = U+2764 U+FE0F (variation selector is a mark) */
    PIECES(TOK_NORM_NFC, "\xE2\x9D\xA4\xEF\xB8\x8F" "a", "\xE2\x9D\xA4\xEF\xB8\x8F|a");
    /* a joiner at the very start is a piece of its own */
    PIECES(TOK_NORM_NFC, "\xE2\x80\x8D" "a", "\xE2\x80\x8D|a");
}

Test(pretok, right_to_left_scripts)
{
    PIECES(TOK_NORM_NFKC, "שלום עולם", "שלום|" M "עולם");
    PIECES(TOK_NORM_NFKC, "مرحبا بالعالم.", "مرحبا|" M "بالعالم|.");
    /* Persian word with ZERO WIDTH NON-JOINER stays one piece */
    PIECES(TOK_NORM_NFKC, "می\xE2\x80\x8Cخواهم", "می\xE2\x80\x8Cخواهم");
    /* RIGHT-TO-LEFT MARK U+200F is a format character: its own piece */
    PIECES(TOK_NORM_NFKC, "a\xE2\x80\x8F" "b", "a|\xE2\x80\x8F|b");
}

Test(pretok, literal_marker_is_a_bytes_piece)
{
    PIECES(TOK_NORM_NFKC, "a" M "b", "a|[" M "]|b");
    PIECES(TOK_NORM_NFKC, " " M, M "|[" M "]");
    PIECES(TOK_NORM_NFKC, M M, "[" M "]|[" M "]");
    PIECES(TOK_NORM_NFKC, "x " M "y", "x|" M "|[" M "]|y");
}

Test(pretok, long_runs_are_cut_at_piece_max)
{
    char in[400], want[500];
    memset(in, 'a', 300);
    in[300] = '\0';
    size_t k = 0;
    for (int part = 0; part < 3; part++) {
        int n = part < 2 ? TOK_PIECE_MAX : 300 - 2 * TOK_PIECE_MAX;
        if (part)
            want[k++] = '|';
        memset(want + k, 'a', (size_t)n);
        k += (size_t)n;
    }
    want[k] = '\0';
    PIECES(TOK_NORM_NFKC, in, want);

    /* 130 spaces then nothing: 128 markers and 2 markers */
    char sp[200];
    memset(sp, ' ', 130);
    sp[130] = '\0';
    struct tok_pieces p;
    tok_pieces_init(&p);
    cr_assert_eq(tok_pretokenize(TOK_NORM_NFKC, sp, 130, 0, &p), 0);
    cr_assert_eq(p.n, 2);
    cr_assert_eq(p.off[1] - p.off[0], 3 * 128);
    cr_assert_eq(p.off[2] - p.off[1], 3 * 2);
    tok_pieces_free(&p);
}

Test(pretok, pieces_concatenate_to_the_normalised_text)
{
    /* replacing ▁ of text pieces by ' ' and joining gives normalise(x) exactly */
    const char *in = "  Grüße\t,ﬁ  我 \xF0\x9F\x98\x80" M " x1 \xCC\x81 ";
    struct tok_pieces p;
    struct sbuf norm, join;
    tok_pieces_init(&p);
    sbuf_init(&norm);
    sbuf_init(&join);
    cr_assert_eq(tok_pretokenize(TOK_NORM_NFKC, in, strlen(in), 0, &p), 0);
    cr_assert_eq(tok_normalize(TOK_NORM_NFKC, in, strlen(in), &norm), 0);
    for (size_t i = 0; i < p.n; i++) {
        const char *s = p.text.data + p.off[i];
        size_t n = p.off[i + 1] - p.off[i];
        for (size_t j = 0; j < n;) {
            if (p.kind[i] == TOK_PIECE_TEXT && j + 3 <= n && memcmp(s + j, M, 3) == 0) {
                sbuf_putc(&join, ' ');
                j += 3;
            } else {
                sbuf_putc(&join, s[j++]);
            }
        }
    }
    cr_assert_eq(join.len, norm.len);
    cr_assert(memcmp(join.data, norm.data, norm.len) == 0, "'%s' vs '%s'", join.data, norm.data);
    tok_pieces_free(&p);
    sbuf_free(&norm);
    sbuf_free(&join);
}

Test(pretok, space_prefix_flag_adds_one_leading_space)
{
    cr_assert_str_eq(pieces_f(TOK_NORM_NFKC, "Hello world", TOK_PRETOK_SPACE_PREFIX), M "Hello|" M "world");
    cr_assert_str_eq(pieces_f(TOK_NORM_NFKC, " a", TOK_PRETOK_SPACE_PREFIX), M "|" M "a");
    cr_assert_str_eq(pieces_f(TOK_NORM_NFKC, "\tb", TOK_PRETOK_SPACE_PREFIX), M "|\t|b");
    cr_assert_str_eq(pieces_f(TOK_NORM_NFKC, M, TOK_PRETOK_SPACE_PREFIX), M "|[" M "]");
    cr_assert_str_eq(pieces_f(TOK_NORM_NFKC, "", TOK_PRETOK_SPACE_PREFIX), "", "empty text: no prefix");
}
