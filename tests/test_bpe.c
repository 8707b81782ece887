/* tests/test_bpe.c: the BPE model (tokenizer/bpe.h): hand-checked merges, encoding, byte fallback,
 * decoding, the round-trip property decode(encode(x)) == normalise(x) over random UTF-8, loading
 * from arrays, determinism, threads; and the `seqlite vocab` / `seqlite tokenize` command line. */
#include <criterion/criterion.h>

#include "tests/helpers.h"
#include "tokenizer/bpe.h"
#include "util/err.h"
#include "util/rng.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define M "\xE2\x96\x81" /* ▁ */

static void add_n(struct bpe_learner *l, const char *text, int times)
{
    for (int i = 0; i < times; i++)
        cr_assert_eq(bpe_learner_add(l, text, strlen(text)), 0, "%s", sl_errmsg());
}

static struct bpe *learn(struct bpe_learner *l, size_t size, int64_t min_count)
{
    struct bpe_learn_opts o = {size, min_count};
    struct bpe *b = NULL;
    int rc = bpe_learner_learn(l, &o, &b);
    cr_assert_eq(rc, 0, "learn failed: %s", sl_errmsg());
    cr_assert_not_null(b);
    return b;
}

static void token_is(const struct bpe *b, int32_t id, const char *want)
{
    size_t len = 0;
    const char *s = bpe_token(b, id, &len);
    cr_assert_not_null(s, "token %d missing", (int)id);
    cr_assert(len == strlen(want) && memcmp(s, want, len) == 0, "token %d is '%.*s', want '%s'", (int)id,
              (int)len, s, want);
}

static void merge_is(const struct bpe *b, size_t rank, int32_t l, int32_t r, int32_t x)
{
    int32_t gl, gr, gx;
    cr_assert_eq(bpe_merge(b, rank, &gl, &gr, &gx), 0);
    cr_assert(gl == l && gr == r && gx == x, "merge %zu is (%d, %d) -> %d, want (%d, %d) -> %d", rank, gl,
              gr, gx, l, r, x);
}

static void encode_is(const struct bpe *b, const char *text, const int32_t *want, size_t n)
{
    struct tok_ids ids;
    tok_ids_init(&ids);
    cr_assert_eq(bpe_encode(b, text, strlen(text), &ids), 0, "%s", sl_errmsg());
    int same = ids.n == n && (n == 0 || memcmp(ids.ids, want, n * sizeof *want) == 0);
    if (!same) {
        char got[512] = "";
        size_t k = 0;
        for (size_t i = 0; i < ids.n && k < 480; i++)
            k += (size_t)snprintf(got + k, sizeof got - k, "%d ", ids.ids[i]);
        cr_assert(same, "encode '%s' gave %s", text, got);
    }
    tok_ids_free(&ids);
}

static char *decode(const struct bpe *b, const int32_t *ids, size_t n)
{
    struct sbuf out;
    sbuf_init(&out);
    cr_assert_eq(bpe_decode(b, ids, n, &out), 0, "%s", sl_errmsg());
    return out.data; /* NUL-terminated, caller frees */
}

/* The corpus of the Hugging Face course's BPE chapter, one text per word occurrence: hug x10,
 * pug x5, pun x12, bun x4, hugs x5. Every text gets the dummy prefix, so the pieces are ▁hug ▁pug
 * ▁pun ▁bun ▁hugs. Character counts: ▁ 36, u 36, g 20, p 17, n 16, h 15, s 5, b 4. Ids: 260 ▁ (always
 * first), then by count: u 261, g 262, p 263, n 264, h 265, s 266, b 267.
 * Pairs: (▁,h) 15, (h,u) 15, (u,g) 20, (▁,p) 17, (p,u) 17, (u,n) 16, (▁,b) 4, (b,u) 4, (g,s) 5.
 *  rank 0: (u,g) 20 -> "ug" 268. Now (▁,h) 15, (h,ug) 15, (▁,p) 17, (p,ug) 5, (p,u) 12, (u,n) 16,
 *          (▁,b) 4, (b,u) 4, (ug,s) 5.
 *  rank 1: (▁,p) 17 -> "▁p" 269 (wins over (u,n) 16). Now (▁p,ug) 5, (▁p,u) 12, (p,*) 0.
 *  rank 2: (u,n) 16 -> "un" 270. Now (▁p,un) 12, (b,un) 4, (▁p,u) 0, (b,u) 0.
 *  rank 3: tie at 15: (▁,h) has the lower left id (260 < 265) -> "▁h" 271. Now (▁h,ug) 15.
 *  rank 4: (▁h,ug) 15 -> "▁hug" 272. "▁hugs" is now ▁hug+s: (ug,s) 0, (▁hug,s) 5.
 *  rank 5: (▁p,un) 12 -> "▁pun" 273. Left: (▁p,ug) 5, (▁hug,s) 5, (▁,b) 4, (b,un) 4.
 *  rank 6: tie at 5: (▁p,ug) (left 269 < 272) -> "▁pug" 274.
 *  rank 7: (▁hug,s) 5 -> "▁hugs" 275.
 *  rank 8: tie at 4: (▁,b) (left 260 < 267) -> "▁b" 276. Now (▁b,un) 4.
 *  rank 9: (▁b,un) 4 -> "▁bun" 277. No pair is left: the vocabulary stops at 278 tokens. */
static struct bpe *hug_model(int64_t min_count)
{
    struct bpe_learner *l = bpe_learner_create(TOK_NORM_NFKC);
    cr_assert_not_null(l);
    add_n(l, "hug", 10);
    add_n(l, "pug", 5);
    add_n(l, "pun", 12);
    add_n(l, "bun", 4);
    add_n(l, "hugs", 5);
    cr_assert_eq(bpe_learner_n_words(l), 5);
    struct bpe *b = learn(l, 1000, min_count);
    bpe_learner_free(l);
    return b;
}

Test(bpe, hand_checked_merges)
{
    struct bpe *b = hug_model(1);
    cr_assert_eq(bpe_size(b), 278);
    cr_assert_eq(bpe_n_merges(b), 10);
    token_is(b, 0, "<pad>");
    token_is(b, 1, "<s>");
    token_is(b, 2, "</s>");
    token_is(b, 3, "<unk>");
    token_is(b, 4 + 0xE4, "\xE4");
    cr_assert_eq(bpe_token_kind(b, 0), BPE_KIND_SPECIAL);
    cr_assert_eq(bpe_token_kind(b, 4 + 0x41), BPE_KIND_BYTE);
    cr_assert_eq(bpe_token_kind(b, 260), BPE_KIND_NORMAL);
    const char *base[] = {M, "u", "g", "p", "n", "h", "s", "b"};
    const int64_t counts[] = {36, 36, 20, 17, 16, 15, 5, 4};
    for (int i = 0; i < 8; i++) {
        token_is(b, 260 + i, base[i]);
        cr_assert_eq(bpe_token_count(b, 260 + i), counts[i], "count of %s", base[i]);
    }
    merge_is(b, 0, 261, 262, 268);
    merge_is(b, 1, 260, 263, 269);
    merge_is(b, 2, 261, 264, 270);
    merge_is(b, 3, 260, 265, 271);
    merge_is(b, 4, 271, 268, 272);
    merge_is(b, 5, 269, 270, 273);
    merge_is(b, 6, 269, 268, 274);
    merge_is(b, 7, 272, 266, 275);
    merge_is(b, 8, 260, 267, 276);
    merge_is(b, 9, 276, 270, 277);
    const char *merged[] = {"ug", M "p", "un", M "h", M "hug", M "pun", M "pug", M "hugs", M "b", M "bun"};
    const int64_t mcounts[] = {20, 17, 16, 15, 15, 12, 5, 5, 4, 4};
    for (int i = 0; i < 10; i++) {
        token_is(b, 268 + i, merged[i]);
        cr_assert_eq(bpe_token_count(b, 268 + i), mcounts[i]);
    }
    int32_t l, r, x;
    cr_assert_eq(bpe_merge(b, 10, &l, &r, &x), SL_EINVAL);
    bpe_free(b);
}

Test(bpe, hand_checked_encodings_and_byte_fallback)
{
    struct bpe *b = hug_model(1);
    encode_is(b, "hugs", (int32_t[]){275}, 1);
    encode_is(b, "bun", (int32_t[]){277}, 1);
    /* ▁ h u b: (▁,h) rank 3 -> ▁h u b; no merge has (▁h,u) or (u,b) */
    encode_is(b, "hub", (int32_t[]){271, 261, 267}, 3);
    /* pieces ▁hug, ▁pug: ▁ p u g -> ▁ p ug (rank 0) -> ▁p ug (rank 1) -> ▁pug (rank 6) */
    encode_is(b, "hug pug", (int32_t[]){272, 274}, 2);
    /* unseen 'x' (0x78) and 'ü' (C3 BC) fall back to byte tokens 4 + byte */
    encode_is(b, "hux", (int32_t[]){271, 261, 4 + 0x78}, 3);
    encode_is(b, "h\xC3\xBC", (int32_t[]){271, 4 + 0xC3, 4 + 0xBC}, 3);
    /* pieces ▁g, ▁ (the space before a literal ▁) and the literal ▁, always as its three bytes */
    encode_is(b, "g " M, (int32_t[]){260, 262, 260, 4 + 0xE2, 4 + 0x96, 4 + 0x81}, 6);
    /* a leading space is one more marker piece: " hug" (with the prefix "  hug") -> ▁ | ▁hug */
    encode_is(b, " hug", (int32_t[]){260, 272}, 2);
    encode_is(b, "", NULL, 0);
    bpe_free(b);
}

Test(bpe, min_count_drops_rare_characters_to_bytes)
{
    /* min_count 5: 'b' (4) gets no token, so base ids are u 261 g 262 p 263 n 264 h 265 s 266 and the
     * merges are those of hand_checked_merges with counts >= 5: ug 267, ▁p 268, un 269 ((u,n) still
     * counts ▁bun: 12 + 4 = 16), ▁h 270, ▁hug 271, ▁pun 272, ▁pug 273, ▁hugs 274. (▁,b) and (b,un)
     * are not pairs (b has no token). */
    struct bpe *b = hug_model(5);
    cr_assert_eq(bpe_size(b), 275);
    cr_assert_eq(bpe_n_merges(b), 8);
    token_is(b, 266, "s");
    token_is(b, 269, "un");
    token_is(b, 274, M "hugs");
    encode_is(b, "bun", (int32_t[]){260, 4 + 'b', 269}, 3);
    char *d = decode(b, (int32_t[]){260, 4 + 'b', 269}, 3);
    cr_assert_str_eq(d, "bun");
    free(d);
    bpe_free(b);
}

Test(bpe, vocabulary_size_caps_merges)
{
    struct bpe_learner *l = bpe_learner_create(TOK_NORM_NFKC);
    add_n(l, "hug", 10);
    add_n(l, "pug", 5);
    add_n(l, "pun", 12);
    add_n(l, "bun", 4);
    add_n(l, "hugs", 5);
    /* too small / too big / bad min count / no text */
    struct bpe *b = NULL;
    struct bpe_learn_opts bad = {BPE_SIZE_MIN - 1, 1};
    cr_assert_eq(bpe_learner_learn(l, &bad, &b), SL_EINVAL);
    cr_assert_null(b);
    bad.size = BPE_SIZE_MAX + 1;
    cr_assert_eq(bpe_learner_learn(l, &bad, &b), SL_EINVAL);
    bad.size = 1000;
    bad.min_count = 0;
    cr_assert_eq(bpe_learner_learn(l, &bad, &b), SL_EINVAL);
    struct bpe_learner *empty = bpe_learner_create(TOK_NORM_NFKC);
    bad.min_count = 1;
    cr_assert_eq(bpe_learner_learn(empty, &bad, &b), SL_EINVAL);
    cr_assert(strstr(sl_errmsg(), "no text"), "%s", sl_errmsg());
    bpe_learner_free(empty);
    bpe_learner_free(l);
}

Test(bpe, invalid_utf8_is_rejected_and_not_counted)
{
    struct bpe_learner *l = bpe_learner_create(TOK_NORM_NFKC);
    add_n(l, "ok", 1);
    cr_assert_eq(bpe_learner_add(l, "ab c\xFF", 5), SL_EUTF8);
    cr_assert_str_eq(sl_errmsg(), "invalid UTF-8 at byte 5");
    cr_assert_eq(bpe_learner_n_words(l), 1, "the bad text counted nothing");
    bpe_learner_free(l);

    struct bpe *b = hug_model(1);
    struct tok_ids ids;
    tok_ids_init(&ids);
    cr_assert_eq(bpe_encode(b, "hug\xC3", 4, &ids), SL_EUTF8);
    cr_assert_str_eq(sl_errmsg(), "invalid UTF-8 at byte 4");
    tok_ids_free(&ids);
    bpe_free(b);
}

Test(bpe, decode_skips_specials_and_checks_range)
{
    struct bpe *b = hug_model(1);
    /* one leading space (the dummy prefix) is dropped */
    char *d = decode(b, (int32_t[]){BPE_BOS, 272, 274, BPE_PAD, BPE_EOS}, 5);
    cr_assert_str_eq(d, "hug pug");
    free(d);
    d = decode(b, (int32_t[]){260, 260, 272}, 3);
    cr_assert_str_eq(d, "  hug");
    free(d);
    d = decode(b, (int32_t[]){272, BPE_UNK}, 2);
    cr_assert_str_eq(d, "hug\xE2\x81\x87");
    free(d);
    d = decode(b, NULL, 0);
    cr_assert_str_eq(d, "");
    free(d);
    /* byte tokens decode raw: the marker's bytes stay a literal ▁, not a space */
    d = decode(b, (int32_t[]){4 + 0xE2, 4 + 0x96, 4 + 0x81, 260}, 4);
    cr_assert_str_eq(d, M " ");
    free(d);
    struct sbuf out;
    sbuf_init(&out);
    cr_assert_eq(bpe_decode(b, (int32_t[]){272, 278}, 2, &out), SL_EINVAL);
    cr_assert(strstr(sl_errmsg(), "id 278 at position 2"), "%s", sl_errmsg());
    cr_assert_eq(bpe_decode(b, (int32_t[]){-1}, 1, &out), SL_EINVAL);
    sbuf_free(&out);
    bpe_free(b);
}

Test(bpe, token_surfaces)
{
    struct bpe *b = hug_model(1);
    struct sbuf s;
    sbuf_init(&s);
    cr_assert_eq(bpe_token_surface(b, 1, &s), 0);
    cr_assert_eq(bpe_token_surface(b, 4 + 0xE4, &s), 0);
    cr_assert_eq(bpe_token_surface(b, 260, &s), 0);
    cr_assert_eq(bpe_token_surface(b, 275, &s), 0);
    cr_assert_str_eq(s.data, "<s><0xE4>" M M "hugs");
    cr_assert_eq(bpe_token_surface(b, 278, &s), SL_EINVAL);
    sbuf_free(&s);
    bpe_free(b);
}

/* A small multilingual corpus: German, English, CJK, Arabic, Hebrew, emoji, tabs. */
static const char *const corpus[] = {
    "Dieses Paket enthält die Hauptinstallation von SageMath.",
    "This package contains the main SageMath installation.",
    "Grüße aus München: Straße, Äpfel, Öl und Übung.",
    "The quick brown fox jumps over the lazy dog  twice.",
    "我爱你 東京タワーへ行く 안녕하세요 세계",
    "مرحبا بالعالم. שלום עולם!",
    "Emoji: 👨‍👩‍👧 👍🏽 ❤️ 1️⃣ done",
    "tab\tseparated\tvalues and a newline\ninside",
    "Die Bibliothek stellt Funktionen zur Verfügung, die das Paket benötigt.",
    "The library provides functions that the package needs.",
};
#define N_CORPUS (sizeof corpus / sizeof corpus[0])

static struct bpe *corpus_model(enum tok_norm norm, size_t size)
{
    struct bpe_learner *l = bpe_learner_create(norm);
    for (int rep = 0; rep < 3; rep++)
        for (size_t i = 0; i < N_CORPUS; i++)
            add_n(l, corpus[i], 1);
    struct bpe *b = learn(l, size, 2);
    bpe_learner_free(l);
    return b;
}

/* A random valid UTF-8 string mixing every hard case. */
static size_t random_text(struct rng *r, char *buf, size_t cap)
{
    static const int32_t specials[] = {' ', ' ', ' ', '\t', '\n', '\r', 0, 0x2581, 0x200D, 0x200C,
                                       0xFE0F, 0x200F, 0x00A0, 0x3000, 0x2003, 0xFB01, 0x2460, 0xFF21,
                                       0x1F468, 0x1F469, 0x1F3FD, 0x00E4, 0x00DF, 0x0301, 0x0308};
    size_t n = rng_below(r, 40), k = 0;
    for (size_t i = 0; i < n && k + 8 < cap; i++) {
        int32_t c;
        switch (rng_below(r, 12)) {
        case 0:
            c = (int32_t)rng_below(r, 0x110000); /* any plane, assigned or not */
            break;
        case 1:
            c = specials[rng_below(r, sizeof specials / sizeof specials[0])];
            break;
        case 2:
            c = 0x0300 + (int32_t)rng_below(r, 0x70); /* combining marks */
            break;
        case 3:
            c = 0x4E00 + (int32_t)rng_below(r, 0x5200); /* CJK */
            break;
        case 4:
            c = 0x0590 + (int32_t)rng_below(r, 0x200); /* Hebrew, Arabic */
            break;
        case 5:
            c = 0x1F300 + (int32_t)rng_below(r, 0x800); /* emoji */
            break;
        case 6:
            c = 0x3040 + (int32_t)rng_below(r, 0xC0); /* kana */
            break;
        case 7:
            c = 0xAC00 + (int32_t)rng_below(r, 0x2BA4); /* Hangul */
            break;
        default:
            c = 0x20 + (int32_t)rng_below(r, 0x60); /* ASCII */
            break;
        }
        if (c >= 0xD800 && c <= 0xDFFF)
            c = 'x';
        if (c < 0x80) {
            buf[k++] = (char)c;
        } else if (c < 0x800) {
            buf[k++] = (char)(0xC0 | (c >> 6));
            buf[k++] = (char)(0x80 | (c & 0x3F));
        } else if (c < 0x10000) {
            buf[k++] = (char)(0xE0 | (c >> 12));
            buf[k++] = (char)(0x80 | ((c >> 6) & 0x3F));
            buf[k++] = (char)(0x80 | (c & 0x3F));
        } else {
            buf[k++] = (char)(0xF0 | (c >> 18));
            buf[k++] = (char)(0x80 | ((c >> 12) & 0x3F));
            buf[k++] = (char)(0x80 | ((c >> 6) & 0x3F));
            buf[k++] = (char)(0x80 | (c & 0x3F));
        }
    }
    return k;
}

static void check_round_trips(enum tok_norm norm, uint64_t seed, int n)
{
    struct bpe *b = corpus_model(norm, 400);
    struct rng r;
    rng_seed(&r, seed);
    struct tok_ids ids;
    tok_ids_init(&ids);
    struct sbuf dec, want;
    sbuf_init(&dec);
    sbuf_init(&want);
    char buf[512];
    for (int t = 0; t < n; t++) {
        size_t len = random_text(&r, buf, sizeof buf);
        cr_assert_eq(bpe_encode(b, buf, len, &ids), 0, "case %d: %s", t, sl_errmsg());
        for (size_t i = 0; i < ids.n; i++)
            cr_assert(ids.ids[i] >= BPE_BYTE0 && (size_t)ids.ids[i] < bpe_size(b), "case %d: id %d", t,
                      ids.ids[i]);
        cr_assert_eq(bpe_decode(b, ids.ids, ids.n, &dec), 0);
        cr_assert_eq(tok_normalize(norm, buf, len, &want), 0);
        cr_assert(dec.len == want.len && memcmp(dec.data, want.data, want.len) == 0,
                  "case %d (%s): round trip of '%.*s' gave '%s'", t, tok_norm_name(norm), (int)len, buf,
                  dec.data);
    }
    /* the corpus itself, and strings of the edge cases */
    const char *fixed[] = {"   ", " a ", "a  b  ", M, M M " " M, "\t\t \n", "x" M "y z", ""};
    for (size_t i = 0; i < N_CORPUS + sizeof fixed / sizeof fixed[0]; i++) {
        const char *s = i < N_CORPUS ? corpus[i] : fixed[i - N_CORPUS];
        cr_assert_eq(bpe_encode(b, s, strlen(s), &ids), 0);
        cr_assert_eq(bpe_decode(b, ids.ids, ids.n, &dec), 0);
        cr_assert_eq(tok_normalize(norm, s, strlen(s), &want), 0);
        cr_assert_str_eq(dec.data, want.data);
    }
    tok_ids_free(&ids);
    sbuf_free(&dec);
    sbuf_free(&want);
    bpe_free(b);
}

Test(roundtrip, random_utf8_nfkc) { check_round_trips(TOK_NORM_NFKC, 1, 3000); }
Test(roundtrip, random_utf8_nfc) { check_round_trips(TOK_NORM_NFC, 2, 2000); }
Test(roundtrip, random_utf8_none) { check_round_trips(TOK_NORM_NONE, 3, 2000); }

Test(bpe, learned_corpus_encodes_compactly)
{
    /* Words seen 3 times in training get few tokens; a literal ▁ never becomes a space. */
    struct bpe *b = corpus_model(TOK_NORM_NFKC, 600);
    struct tok_ids ids;
    tok_ids_init(&ids);
    cr_assert_eq(bpe_encode(b, corpus[1], strlen(corpus[1]), &ids), 0);
    cr_assert_lt(ids.n, 12, "%zu tokens for a seen sentence", ids.n);
    for (size_t i = 0; i < ids.n; i++)
        cr_assert_eq(bpe_token_kind(b, ids.ids[i]), BPE_KIND_NORMAL);
    tok_ids_free(&ids);
    bpe_free(b);
}

Test(bpe, learning_is_deterministic)
{
    struct bpe *a = corpus_model(TOK_NORM_NFKC, 500), *b = corpus_model(TOK_NORM_NFKC, 500);
    cr_assert_eq(bpe_size(a), bpe_size(b));
    cr_assert_eq(bpe_n_merges(a), bpe_n_merges(b));
    cr_assert_gt(bpe_n_merges(a), 50);
    for (int32_t id = 0; (size_t)id < bpe_size(a); id++) {
        size_t la, lb;
        const char *sa = bpe_token(a, id, &la), *sb = bpe_token(b, id, &lb);
        cr_assert(la == lb && memcmp(sa, sb, la) == 0, "token %d differs", id);
        cr_assert_eq(bpe_token_count(a, id), bpe_token_count(b, id));
    }
    for (size_t r = 0; r < bpe_n_merges(a); r++) {
        int32_t l1, r1, x1, l2, r2, x2;
        bpe_merge(a, r, &l1, &r1, &x1);
        bpe_merge(b, r, &l2, &r2, &x2);
        cr_assert(l1 == l2 && r1 == r2 && x1 == x2, "merge %zu differs", r);
    }
    bpe_free(a);
    bpe_free(b);
}

/* Copies a model through the loading API (what corpus_vocab_load does with the database rows). */
static struct bpe *copy_model(const struct bpe *a)
{
    struct bpe *b = bpe_create(bpe_norm(a));
    for (int32_t id = 0; (size_t)id < bpe_size(a); id++) {
        size_t len;
        const char *s = bpe_token(a, id, &len);
        cr_assert_eq(bpe_add_token(b, id, s, len, bpe_token_kind(a, id), bpe_token_count(a, id)), 0, "%s",
                     sl_errmsg());
    }
    for (size_t r = 0; r < bpe_n_merges(a); r++) {
        int32_t l, rr, x;
        bpe_merge(a, r, &l, &rr, &x);
        cr_assert_eq(bpe_add_merge(b, (int32_t)r, l, rr, x), 0, "%s", sl_errmsg());
    }
    cr_assert_eq(bpe_finalize(b), 0, "%s", sl_errmsg());
    return b;
}

Test(load, loaded_model_encodes_like_the_learned_one)
{
    struct bpe *a = corpus_model(TOK_NORM_NFC, 450);
    struct bpe *b = copy_model(a);
    cr_assert_eq(bpe_norm(b), TOK_NORM_NFC);
    struct tok_ids ia, ib;
    tok_ids_init(&ia);
    tok_ids_init(&ib);
    for (size_t i = 0; i < N_CORPUS; i++) {
        cr_assert_eq(bpe_encode(a, corpus[i], strlen(corpus[i]), &ia), 0);
        /* the same tok_ids used with another model must not serve the first model's cache */
        cr_assert_eq(bpe_encode(b, corpus[i], strlen(corpus[i]), &ia), 0);
        cr_assert_eq(bpe_encode(a, corpus[i], strlen(corpus[i]), &ib), 0);
        cr_assert_eq(ia.n, ib.n);
        cr_assert(memcmp(ia.ids, ib.ids, ia.n * sizeof(int32_t)) == 0, "sentence %zu differs", i);
    }
    tok_ids_free(&ia);
    tok_ids_free(&ib);
    bpe_free(a);
    bpe_free(b);
}

Test(load, bad_arrays_are_rejected)
{
    struct bpe *a = hug_model(1);
    struct bpe *b = bpe_create(TOK_NORM_NFKC);
    /* out of order */
    cr_assert_eq(bpe_add_token(b, 1, "<s>", 3, BPE_KIND_SPECIAL, 0), SL_ECORRUPT);
    /* wrong special */
    cr_assert_eq(bpe_add_token(b, 0, "<s>", 3, BPE_KIND_SPECIAL, 0), SL_ECORRUPT);
    for (int32_t id = 0; id < 268; id++) {
        size_t len;
        const char *s = bpe_token(a, id, &len);
        cr_assert_eq(bpe_add_token(b, id, s, len, bpe_token_kind(a, id), 0), 0, "%s", sl_errmsg());
    }
    /* invalid UTF-8 in a normal token; wrong kind */
    cr_assert_eq(bpe_add_token(b, 268, "\xFF", 1, BPE_KIND_NORMAL, 0), SL_ECORRUPT);
    cr_assert_eq(bpe_add_token(b, 268, "ug", 2, BPE_KIND_BYTE, 0), SL_ECORRUPT);
    cr_assert_eq(bpe_add_token(b, 268, "ug", 2, BPE_KIND_NORMAL, 0), 0);
    /* a merge whose result is not left+right, one with an unknown token, one out of order */
    cr_assert_eq(bpe_add_merge(b, 0, 262, 261, 268), SL_ECORRUPT);
    cr_assert_eq(bpe_add_merge(b, 0, 261, 262, 999), SL_ECORRUPT);
    cr_assert_eq(bpe_add_merge(b, 1, 261, 262, 268), SL_ECORRUPT);
    cr_assert_eq(bpe_add_merge(b, 0, 261, 262, 268), 0);
    cr_assert_eq(bpe_add_token(b, 269, "ug", 2, BPE_KIND_NORMAL, 0), 0);
    cr_assert_eq(bpe_add_merge(b, 1, 261, 262, 269), SL_ECORRUPT, "the same pair twice");
    cr_assert_eq(bpe_finalize(b), 0, "%s", sl_errmsg());
    cr_assert_eq(bpe_add_token(b, 270, "x", 1, BPE_KIND_NORMAL, 0), SL_EINVAL, "finalized");
    bpe_free(b);

    /* no ▁ at 260 */
    b = bpe_create(TOK_NORM_NFKC);
    for (int32_t id = 0; id < 260; id++) {
        size_t len;
        const char *s = bpe_token(a, id, &len);
        cr_assert_eq(bpe_add_token(b, id, s, len, bpe_token_kind(a, id), 0), 0);
    }
    cr_assert_eq(bpe_finalize(b), SL_ECORRUPT);
    cr_assert_eq(bpe_add_token(b, 260, "u", 1, BPE_KIND_NORMAL, 0), 0);
    cr_assert_eq(bpe_finalize(b), SL_ECORRUPT);
    cr_assert(strstr(sl_errmsg(), "space marker"), "%s", sl_errmsg());
    bpe_free(b);
    bpe_free(a);
    bpe_free(NULL);
}

/* Reference BPE for the comparison below: recounts every pair of every word at each step (slow,
 * obviously right). Words are given as code point arrays that already start with ▁. */
#define REF_V 460
static void reference_merges(const int32_t *const *wcp, const size_t *wlen, const int64_t *wcount, size_t nw,
                             int64_t min_count, int32_t (*merges)[3], size_t *n_merges, size_t *size)
{
    /* base ids: ▁ 260, then characters with count >= min_count by count desc, code point asc */
    int32_t cps[64];
    int64_t cnt[64];
    size_t nc = 0;
    for (size_t w = 0; w < nw; w++)
        for (size_t i = 0; i < wlen[w]; i++) {
            size_t k = 0;
            while (k < nc && cps[k] != wcp[w][i])
                k++;
            if (k == nc) {
                cps[nc] = wcp[w][i];
                cnt[nc++] = 0;
            }
            cnt[k] += wcount[w];
        }
    int32_t id_of[64];
    int32_t next = 261;
    for (size_t k = 0; k < nc; k++)
        id_of[k] = cps[k] == 0x2581 ? 260 : -1;
    for (;;) { /* selection by repeated max: fine for a few characters */
        size_t best = nc;
        for (size_t k = 0; k < nc; k++) {
            if (id_of[k] != -1 || cnt[k] < min_count)
                continue;
            if (best == nc || cnt[k] > cnt[best] || (cnt[k] == cnt[best] && cps[k] < cps[best]))
                best = k;
        }
        if (best == nc)
            break;
        id_of[best] = next++;
    }
    int32_t **sym = malloc(nw * sizeof *sym);
    size_t *len = malloc(nw * sizeof *len);
    for (size_t w = 0; w < nw; w++) {
        sym[w] = malloc(wlen[w] * sizeof **sym);
        len[w] = wlen[w];
        for (size_t i = 0; i < wlen[w]; i++) {
            size_t k = 0;
            while (cps[k] != wcp[w][i])
                k++;
            sym[w][i] = id_of[k];
        }
    }
    static int64_t pc[REF_V][REF_V];
    *n_merges = 0;
    while (next < REF_V) {
        memset(pc, 0, sizeof pc);
        for (size_t w = 0; w < nw; w++)
            for (size_t i = 0; i + 1 < len[w]; i++)
                if (sym[w][i] >= 0 && sym[w][i + 1] >= 0)
                    pc[sym[w][i]][sym[w][i + 1]] += wcount[w];
        int32_t ba = -1, bb = -1;
        int64_t bc = 0;
        for (int32_t a = 0; a < next; a++)
            for (int32_t b = 0; b < next; b++)
                if (pc[a][b] > bc) {
                    bc = pc[a][b];
                    ba = a;
                    bb = b;
                }
        if (bc == 0 || bc < min_count)
            break;
        int32_t x = next++;
        merges[*n_merges][0] = ba;
        merges[*n_merges][1] = bb;
        merges[*n_merges][2] = x;
        (*n_merges)++;
        for (size_t w = 0; w < nw; w++) {
            size_t j = 0;
            for (size_t i = 0; i < len[w]; i++) {
                if (i + 1 < len[w] && sym[w][i] == ba && sym[w][i + 1] == bb) {
                    sym[w][j++] = x;
                    i++;
                } else {
                    sym[w][j++] = sym[w][i];
                }
            }
            len[w] = j;
        }
    }
    *size = (size_t)next;
    for (size_t w = 0; w < nw; w++)
        free(sym[w]);
    free(sym);
    free(len);
}

/* 1 when the code points ▁ word[0..n) equal cp[0..len) */
static int same_word(const int32_t *cp, size_t len, const char *word, size_t n)
{
    if (len != n + 1)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (cp[i + 1] != word[i])
            return 0;
    return 1;
}

Test(bpe, incremental_learner_matches_a_naive_reference)
{
    /* random words over a skewed alphabet (a..f common, x y z rare), random repeat counts, so there are
     * many ties, overlapping pairs (aaa) and rare characters below min_count */
    static const char alpha[] = "aaaabbbccdefxyz";
    for (uint64_t seed = 1; seed <= 6; seed++) {
        struct rng r;
        rng_seed(&r, seed);
        int64_t min_count = (int64_t)(seed % 3) + 1;
        struct bpe_learner *l = bpe_learner_create(TOK_NORM_NONE);
        enum { NW = 120 };
        int32_t *wcp[NW];
        size_t wlen[NW];
        int64_t wcount[NW];
        size_t nw = 0;
        for (int w = 0; w < NW; w++) {
            char word[16];
            size_t n = 1 + rng_below(&r, 9);
            for (size_t i = 0; i < n; i++)
                word[i] = alpha[rng_below(&r, sizeof alpha - 1)];
            word[n] = '\0';
            int64_t c = 1 + (int64_t)rng_below(&r, 6);
            add_n(l, word, (int)c);
            /* merge duplicates the way the learner's word table does */
            size_t k = 0;
            while (k < nw && !same_word(wcp[k], wlen[k], word, n))
                k++;
            if (k < nw) {
                wcount[k] += c;
                continue;
            }
            wcp[nw] = malloc((n + 1) * sizeof(int32_t));
            wcp[nw][0] = 0x2581;
            for (size_t i = 0; i < n; i++)
                wcp[nw][i + 1] = word[i];
            wlen[nw] = n + 1;
            wcount[nw] = c;
            nw++;
        }
        static int32_t ref[REF_V][3];
        size_t n_ref = 0, ref_size = 0;
        reference_merges((const int32_t *const *)wcp, wlen, wcount, nw, min_count, ref, &n_ref, &ref_size);
        struct bpe *b = learn(l, REF_V, min_count);
        cr_assert_gt(n_ref, 20, "seed %llu: too few merges to be a test", (unsigned long long)seed);
        cr_assert_eq(bpe_size(b), ref_size, "seed %llu", (unsigned long long)seed);
        cr_assert_eq(bpe_n_merges(b), n_ref, "seed %llu", (unsigned long long)seed);
        for (size_t k = 0; k < n_ref; k++)
            merge_is(b, k, ref[k][0], ref[k][1], ref[k][2]);
        bpe_free(b);
        bpe_learner_free(l);
        for (size_t w = 0; w < nw; w++)
            free(wcp[w]);
    }
}

struct thread_job {
    const struct bpe *b;
    size_t total;
    int failed;
};

static void *encode_many(void *arg)
{
    struct thread_job *j = arg;
    struct tok_ids ids;
    tok_ids_init(&ids);
    for (int rep = 0; rep < 200; rep++)
        for (size_t i = 0; i < N_CORPUS; i++) {
            if (bpe_encode(j->b, corpus[i], strlen(corpus[i]), &ids))
                j->failed = 1;
            j->total += ids.n;
        }
    tok_ids_free(&ids);
    return NULL;
}

Test(bpe, concurrent_encoders_agree)
{
    struct bpe *b = corpus_model(TOK_NORM_NFKC, 500);
    struct thread_job jobs[3] = {{b, 0, 0}, {b, 0, 0}, {b, 0, 0}};
    pthread_t th[2];
    for (int i = 0; i < 2; i++)
        cr_assert_eq(pthread_create(&th[i], NULL, encode_many, &jobs[i]), 0);
    encode_many(&jobs[2]);
    for (int i = 0; i < 2; i++)
        pthread_join(th[i], NULL);
    for (int i = 0; i < 3; i++) {
        cr_assert_eq(jobs[i].failed, 0);
        cr_assert_eq(jobs[i].total, jobs[2].total);
    }
    bpe_free(b);
}

/* ---- corpus/vocab_store.h and the command line ---- */

#include "corpus/db.h"
#include "corpus/vocab_store.h"

static const char *const en_lines[] = {
    "This package contains the main program.",
    "This package provides the documentation.",
    "The library provides functions for the program.",
    "The documentation is in HTML and PDF.",
    "This package contains examples.",
    "Greetings from Munich: streets, apples and oil.",
};
static const char *const de_lines[] = {
    "Dieses Paket enthält das Hauptprogramm.",
    "Dieses Paket stellt die Dokumentation bereit.",
    "Die Bibliothek stellt Funktionen für das Programm bereit.",
    "Die Dokumentation liegt in HTML und PDF vor.",
    "Dieses Paket enthält Beispiele.",
    "Grüße aus München: Straßen, Äpfel und Öl.",
};
#define N_LINES (sizeof en_lines / sizeof en_lines[0])

/* Writes DIR/NAME.en and DIR/NAME.de with reps copies of the lines. */
static void write_pair_files(const char *dir, const char *name, int reps)
{
    struct sbuf en, de;
    sbuf_init(&en);
    sbuf_init(&de);
    for (int r = 0; r < reps; r++)
        for (size_t i = 0; i < N_LINES; i++) {
            sbuf_printf(&en, "%s\n", en_lines[i]);
            sbuf_printf(&de, "%s\n", de_lines[i]);
        }
    char fn[256];
    snprintf(fn, sizeof fn, "%s.en", name);
    char *p = th_path(dir, fn);
    cr_assert_eq(th_write_file(p, en.data, en.len), 0);
    free(p);
    snprintf(fn, sizeof fn, "%s.de", name);
    p = th_path(dir, fn);
    cr_assert_eq(th_write_file(p, de.data, de.len), 0);
    free(p);
    sbuf_free(&en);
    sbuf_free(&de);
}

/* Runs "seqlite FMT..." (printf-style), returns the exit status; out/err malloc'd (free them). */
static int run(char **out, char **err, const char *in_path, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int run(char **out, char **err, const char *in_path, const char *fmt, ...)
{
    char args[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    free(*out);
    free(*err);
    *out = *err = NULL;
    return th_run(args, in_path, out, err);
}

/* A temporary database with train (reps copies) and valid splits imported. */
static char *make_db(char **dir_out, int reps)
{
    char *dir = th_tmpdir();
    cr_assert_not_null(dir);
    write_pair_files(dir, "train", reps);
    write_pair_files(dir, "valid", 1);
    char *out = NULL, *err = NULL;
    int st = run(&out, &err, NULL, "import %s/t.db %s/train.en %s/train.de", dir, dir, dir);
    cr_assert_eq(st, 0, "import failed: %s", err);
    st = run(&out, &err, NULL, "import %s/t.db %s/valid.en %s/valid.de --split valid", dir, dir, dir);
    cr_assert_eq(st, 0, "import failed: %s", err);
    free(out);
    free(err);
    *dir_out = dir;
    return th_path(dir, "t.db");
}

Test(vocab_store, learn_store_load_and_count_tokens)
{
    char *dir;
    char *path = make_db(&dir, 3);
    struct db *db = NULL;
    cr_assert_eq(db_open(path, 0, &db), 0, "%s", sl_errmsg());
    struct corpus_vocab_opts o = {400, CORPUS_VOCAB_JOINT, 2, TOK_NORM_NFKC};
    struct corpus_vocab_result r;
    cr_assert_eq(corpus_vocab_learn(db, &o, &r), 0, "%s", sl_errmsg());
    cr_assert_eq(r.n_pairs, 3 * (int64_t)N_LINES);
    cr_assert_eq(r.n_encoded, 4 * (int64_t)N_LINES, "train and valid pairs counted");
    cr_assert_eq(r.src_id, r.tgt_id);
    cr_assert_gt(r.src_merges, 50);
    cr_assert_eq(r.src_size, BPE_FIRST_LEARNED + r.src_chars + r.src_merges);

    struct db_vocab v;
    cr_assert_eq(db_vocab_get(db, r.src_id, &v), 0);
    cr_assert_str_eq(v.side, "joint");
    cr_assert_str_eq(v.normalization, "NFKC");
    cr_assert_str_eq(v.kind, "bpe");
    cr_assert(strstr(v.settings, "\"size\":400") && strstr(v.settings, "\"mode\":\"joint\""), "%s", v.settings);
    cr_assert_eq(v.size, (int64_t)r.src_size);
    db_vocab_clear(&v);

    /* src and tgt both resolve to the joint vocabulary; the loaded model matches what was learned */
    int64_t ids = 0, idt = 0;
    cr_assert_eq(corpus_vocab_latest(db, "src", &ids), 0);
    cr_assert_eq(corpus_vocab_latest(db, "tgt", &idt), 0);
    cr_assert(ids == r.src_id && idt == r.src_id);
    cr_assert_eq(corpus_vocab_latest(db, "both", &ids), SL_EINVAL);
    struct bpe *b = NULL;
    cr_assert_eq(corpus_vocab_load(db, r.src_id, &b), 0, "%s", sl_errmsg());
    cr_assert_eq(bpe_size(b), r.src_size);
    cr_assert_eq(bpe_n_merges(b), r.src_merges);
    struct corpus_vocab_encoder enc = {b, b, {0}};
    tok_ids_init(&enc.ids);
    const int32_t *p;
    size_t n;
    cr_assert_eq(corpus_vocab_encode(&enc, de_lines[5], strlen(de_lines[5]), BATCH_TGT, &p, &n), 0);
    struct sbuf d;
    sbuf_init(&d);
    cr_assert_eq(bpe_decode(b, p, n, &d), 0);
    cr_assert_str_eq(d.data, de_lines[5]);
    sbuf_free(&d);
    tok_ids_free(&enc.ids);
    bpe_free(b);
    cr_assert_eq(corpus_vocab_load(db, 999, &b), SL_ENOTFOUND);
    cr_assert_null(b);

    /* separate: two more vocabularies, newest per side */
    o.mode = CORPUS_VOCAB_SEPARATE;
    o.norm = TOK_NORM_NFC;
    struct corpus_vocab_result r2;
    cr_assert_eq(corpus_vocab_learn(db, &o, &r2), 0, "%s", sl_errmsg());
    cr_assert_neq(r2.src_id, r2.tgt_id);
    cr_assert_eq(corpus_vocab_latest(db, "src", &ids), 0);
    cr_assert_eq(corpus_vocab_latest(db, "tgt", &idt), 0);
    cr_assert(ids == r2.src_id && idt == r2.tgt_id);
    cr_assert_eq(corpus_vocab_latest(db, "joint", &ids), 0);
    cr_assert_eq(ids, r.src_id);
    cr_assert_eq(corpus_vocab_load_latest(db, "tgt", &b, &idt), 0);
    size_t len;
    int found_umlaut = 0;
    for (int32_t t = BPE_FIRST_LEARNED; (size_t)t < bpe_size(b); t++) {
        const char *s = bpe_token(b, t, &len);
        if (len == 2 && memcmp(s, "\xC3\xA4", 2) == 0)
            found_umlaut = 1;
    }
    cr_assert(found_umlaut, "the German vocabulary has 'ä'");
    bpe_free(b);

    /* bad options */
    o.size = 10;
    cr_assert_eq(corpus_vocab_learn(db, &o, &r2), SL_EINVAL);
    db_close(db);
    free(path);
    th_rmdir(dir);
    free(dir);
}

Test(vocab_store, no_train_split_is_a_clear_error)
{
    char *dir = th_tmpdir();
    write_pair_files(dir, "valid", 1);
    char *out = NULL, *err = NULL;
    cr_assert_eq(run(&out, &err, NULL, "import %s/t.db %s/valid.en %s/valid.de --split valid", dir, dir, dir), 0);
    cr_assert_eq(run(&out, &err, NULL, "vocab %s/t.db --size 300", dir), 1);
    cr_assert(strstr(err, "no training pairs") && strstr(err, "import"), "got '%s'", err);
    cr_assert_eq(run(&out, &err, NULL, "vocab %s/t.db --show", dir), 1);
    cr_assert(strstr(err, "no vocabulary"), "got '%s'", err);
    cr_assert_eq(run(&out, &err, NULL, "tokenize %s/t.db", dir), 1);
    cr_assert(strstr(err, "no vocabulary"), "got '%s'", err);
    cr_assert_eq(run(&out, &err, NULL, "vocab %s/missing.db", dir), 1);
    free(out);
    free(err);
    th_rmdir(dir);
    free(dir);
}

Test(vocab_cli, bad_arguments_exit_2_with_help_hint)
{
    char *out = NULL, *err = NULL;
    const char *cases[] = {
        "vocab x.db --size 10",
        "vocab x.db --size 2000000",
        "vocab x.db --size many",
        "vocab x.db --joint --separate",
        "vocab x.db --normalization NFD",
        "vocab x.db --min-count 0",
        "vocab x.db --show --side both",
        "vocab x.db --limit 3",
        "vocab",
        "tokenize x.db --side both",
        "tokenize x.db --ids --decode",
        "tokenize",
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        cr_assert_eq(run(&out, &err, NULL, "%s", cases[i]), 2, "'%s': %s", cases[i], err);
        cr_assert(strstr(err, "\nsee 'seqlite help "), "'%s': %s", cases[i], err);
        cr_assert_str_eq(out, "");
    }
    free(out);
    free(err);
}

Test(vocab_cli, learn_show_and_summary)
{
    char *dir;
    char *path = make_db(&dir, 3);
    char *out = NULL, *err = NULL;
    cr_assert_eq(run(&out, &err, NULL, "vocab %s --size 350", path), 0, "%s", err);
    cr_assert(strstr(err, "vocab 1 (joint, NFKC): 350 tokens"), "got '%s'", err);
    cr_assert(strstr(err, "from 18 training pairs"), "got '%s'", err);
    cr_assert(strstr(err, "token counts of 24 pairs"), "got '%s'", err);
    cr_assert_eq(run(&out, &err, NULL, "vocab %s --show --limit 6", path), 0, "%s", err);
    const char *want = "     id  kind          count  surface\n"
                       "      0  special           0  <pad>\n"
                       "      1  special           0  <s>\n"
                       "      2  special           0  </s>\n"
                       "      3  special           0  <unk>\n"
                       "      4  byte              0  <0x00>\n"
                       "      5  byte              0  <0x01>\n";
    cr_assert_str_eq(out, want);
    /* the full table: header + 350 rows; row 260 is the marker */
    cr_assert_eq(run(&out, &err, NULL, "vocab %s --show", path), 0, "%s", err);
    size_t lines = 0;
    for (const char *c = out; *c; c++)
        lines += *c == '\n';
    cr_assert_eq(lines, 351);
    cr_assert(strstr(out, "\n    260  normal  "), "no row 260");
    cr_assert(strstr(out, "  " M "\n"), "no ▁ surface");

    cr_assert_eq(run(&out, &err, NULL, "vocab %s --separate --size 320 --normalization NFC --min-count 1", path), 0,
                 "%s", err);
    cr_assert(strstr(err, "vocab 2 (src, NFC): 320 tokens") && strstr(err, "vocab 3 (tgt, NFC): 320 tokens"),
              "got '%s'", err);
    cr_assert_eq(run(&out, &err, NULL, "vocab %s --show --side tgt --limit 1", path), 0);
    cr_assert(strstr(err, "vocab 3: bpe, side tgt, NFC"), "got '%s'", err);
    free(out);
    free(err);
    free(path);
    th_rmdir(dir);
    free(dir);
}

Test(tokenize_cli, encode_ids_decode_and_bad_lines)
{
    char *dir;
    char *path = make_db(&dir, 3);
    char *out = NULL, *err = NULL;
    cr_assert_eq(run(&out, &err, NULL, "vocab %s --size 600 --min-count 1", path), 0, "%s", err);

    /* line 2 has invalid UTF-8 (byte 4 is 0xFF, counting from 1 as import and translate do); line 4 is
     * empty; line 5 has an unseen character */
    const char in[] = "This package contains examples.\nabc\xFF\n  Grüße  aus München \n\nx\xE2\x82\xAC" M "y\n";
    char *inp = th_path(dir, "in.txt");
    cr_assert_eq(th_write_file(inp, in, sizeof in - 1), 0);
    cr_assert_eq(run(&out, &err, inp, "tokenize %s", path), 1);
    cr_assert(strstr(err, "seqlite: tokenize: line 2: invalid UTF-8 at byte 4"), "got '%s'", err);
    /* one output line per input line: the bad one is empty */
    const char *l1 = M "This " M "package " M "contains " M "examples .\n";
    cr_assert(strncmp(out, l1, strlen(l1)) == 0, "got '%s'", out);
    const char *rest = out + strlen(l1);
    cr_assert(rest[0] == '\n', "line 2 should be empty: '%s'", rest);
    size_t lines = 0;
    for (const char *c = out; *c; c++)
        lines += *c == '\n';
    cr_assert_eq(lines, 5);
    /* € (E2 82 AC) was never seen: byte tokens; the literal ▁ too */
    cr_assert(strstr(out, "<0xE2> <0x82> <0xAC> <0xE2> <0x96> <0x81>"), "got '%s'", out);

    /* ids, then decode gives the lines back (NFKC leaves them unchanged); the bad line stays empty */
    cr_assert_eq(run(&out, &err, inp, "tokenize %s --ids", path), 1);
    char *idp = th_path(dir, "ids.txt");
    cr_assert_eq(th_write_file(idp, out, strlen(out)), 0);
    cr_assert_eq(run(&out, &err, idp, "tokenize %s --decode", path), 0, "%s", err);
    cr_assert_str_eq(out, "This package contains examples.\n\n  Grüße  aus München \n\nx\xE2\x82\xAC" M "y\n");

    /* bad ids: not a number, out of range; CRLF input */
    const char bad[] = "300 301\nabc\n1 99999\r\n\n";
    cr_assert_eq(th_write_file(idp, bad, sizeof bad - 1), 0);
    cr_assert_eq(run(&out, &err, idp, "tokenize %s --decode", path), 1);
    cr_assert(strstr(err, "line 2: 'abc' is not a token id"), "got '%s'", err);
    cr_assert(strstr(err, "line 3: id 99999 is out of range"), "got '%s'", err);
    lines = 0;
    for (const char *c = out; *c; c++)
        lines += *c == '\n';
    cr_assert_eq(lines, 4, "got '%s'", out);
    cr_assert(strncmp(strchr(out, '\n'), "\n\n\n\n", 4) == 0, "lines 2-4 are empty: '%s'", out);
    free(idp);
    free(inp);
    free(out);
    free(err);
    free(path);
    th_rmdir(dir);
    free(dir);
}
