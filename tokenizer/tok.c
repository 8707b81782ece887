/* tokenizer/tok.c: UTF-8 validation (util/utf8.h, with the tokenizer's error message), normalisation
 * with utf8proc and pre-tokenisation (see tok.h for the exact piece rules). All work happens in the
 * caller's struct tok_pieces (no allocation once its buffers are large enough).
 * ref: UAX #15 (NFC/NFKC through utf8proc_decompose + utf8proc_normalize_utf32), UAX #44
 * (utf8proc_category), RFC 3629 (well-formed UTF-8). */
#include "tokenizer/tok.h"

#include "util/err.h"
#include "util/utf8.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <utf8proc.h>

const char *tok_norm_name(enum tok_norm norm)
{
    switch (norm) {
    case TOK_NORM_NFKC:
        return "NFKC";
    case TOK_NORM_NFC:
        return "NFC";
    case TOK_NORM_NONE:
        return "none";
    }
    return "?";
}

int tok_norm_parse(const char *name, enum tok_norm *out)
{
    if (name && strcasecmp(name, "NFKC") == 0)
        *out = TOK_NORM_NFKC;
    else if (name && strcasecmp(name, "NFC") == 0)
        *out = TOK_NORM_NFC;
    else if (name && strcasecmp(name, "none") == 0)
        *out = TOK_NORM_NONE;
    else
        return sl_err(SL_EINVAL, "unknown normalization '%s' (expected NFKC, NFC or none)",
                      name ? name : "(null)");
    return 0;
}

/* Validates s (util/utf8.h); *ascii = 1 when every byte is < 0x80 (the ASCII prefix is found once
 * and serves both answers). */
static int scan_utf8(const char *s, size_t len, int *ascii, size_t *bad_off)
{
    size_t a = utf8_ascii_len(s, len), bad;
    if (a < len && !utf8_valid(s + a, len - a, &bad)) {
        if (bad_off)
            *bad_off = a + bad;
        return sl_err(SL_EUTF8, "invalid UTF-8 at byte %zu", a + bad + 1); /* 1-based, as import's */
    }
    if (ascii)
        *ascii = a == len;
    return 0;
}

int tok_utf8_check(const char *s, size_t len, size_t *bad_off) { return scan_utf8(s, len, NULL, bad_off); }

int tok_utf8_repair(const char *s, size_t len, struct sbuf *out)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0, run = 0; /* valid bytes not yet appended start at i - run */
    int rc = 0;
    while (i < len) {
        size_t k = utf8_seqlen(u + i, len - i);
        if (k) {
            i += k;
            run += k;
            continue;
        }
        if ((rc = sbuf_append(out, s + i - run, run)) || (rc = sbuf_append(out, "\xEF\xBF\xBD", 3)))
            return rc;
        run = 0;
        i++;
    }
    return sbuf_append(out, s + i - run, run);
}

void tok_pieces_init(struct tok_pieces *p)
{
    memset(p, 0, sizeof *p);
    sbuf_init(&p->text);
}

void tok_pieces_free(struct tok_pieces *p)
{
    sbuf_free(&p->text);
    free(p->off);
    free(p->kind);
    free(p->cps);
    tok_pieces_init(p);
}

static int cps_reserve(struct tok_pieces *p, size_t n)
{
    if (n <= p->cps_cap)
        return 0;
    size_t cap = p->cps_cap ? p->cps_cap : 256;
    while (cap < n)
        cap *= 2;
    int32_t *c = realloc(p->cps, cap * sizeof *c);
    if (!c)
        return sl_err(SL_ENOMEM, "out of memory (%zu code points)", cap);
    p->cps = c;
    p->cps_cap = cap;
    return 0;
}

/* Normalised code points of s into p->cps; their count in *ncp. */
static int to_cps(enum tok_norm norm, const char *s, size_t len, struct tok_pieces *p, size_t *ncp)
{
    int ascii = 0, rc;
    if ((rc = scan_utf8(s, len, &ascii, NULL)))
        return rc;
    if ((rc = cps_reserve(p, len + 1)))
        return rc;
    if (ascii || norm == TOK_NORM_NONE) {
        /* NFC and NFKC leave ASCII unchanged. */
        const unsigned char *u = (const unsigned char *)s;
        size_t i = 0, n = 0;
        while (i < len) {
            int32_t cp = 0;
            i += utf8_decode(u + i, len - i, &cp);
            p->cps[n++] = cp;
        }
        *ncp = n;
        return 0;
    }
    utf8proc_option_t opt = UTF8PROC_STABLE | UTF8PROC_COMPOSE;
    if (norm == TOK_NORM_NFKC)
        opt |= UTF8PROC_COMPAT;
    utf8proc_ssize_t r;
    for (;;) {
        r = utf8proc_decompose((const utf8proc_uint8_t *)s, (utf8proc_ssize_t)len, p->cps,
                               (utf8proc_ssize_t)p->cps_cap, opt);
        if (r < 0)
            return sl_err(SL_EUTF8, "normalization failed: %s", utf8proc_errmsg(r));
        if ((size_t)r <= p->cps_cap)
            break;
        if ((rc = cps_reserve(p, (size_t)r)))
            return rc;
    }
    r = utf8proc_normalize_utf32(p->cps, r, opt);
    if (r < 0)
        return sl_err(SL_EUTF8, "normalization failed: %s", utf8proc_errmsg(r));
    *ncp = (size_t)r;
    return 0;
}

int tok_normalize(enum tok_norm norm, const char *s, size_t len, struct sbuf *out)
{
    struct tok_pieces p;
    tok_pieces_init(&p);
    size_t n = 0;
    int rc = to_cps(norm, s, len, &p, &n);
    if (rc)
        goto done;
    sbuf_reset(out);
    if ((rc = sbuf_reserve(out, n * 4)))
        goto done;
    for (size_t i = 0; i < n; i++)
        out->len += utf8_encode(p.cps[i], out->data + out->len);
    out->data[out->len] = '\0';
done:
    tok_pieces_free(&p);
    return rc;
}

enum cls { C_SPACE, C_LIT, C_OTHER, C_JOIN, C_MARK, C_LETTER, C_NUMBER, C_PUNCT, C_IDEO, C_KANA };

static inline int cp_class(int32_t c)
{
    if (c < 0x80) {
        if (c == ' ')
            return C_SPACE;
        if (c < 0x20 || c == 0x7F)
            return C_OTHER;
        if (c >= '0' && c <= '9')
            return C_NUMBER;
        if ((c | 0x20) >= 'a' && (c | 0x20) <= 'z')
            return C_LETTER;
        return C_PUNCT;
    }
    if (c == TOK_SPACE_MARK_CP)
        return C_LIT;
    if (c == 0x200C || c == 0x200D)
        return C_JOIN;
    switch (utf8proc_category(c)) {
    case UTF8PROC_CATEGORY_MN:
    case UTF8PROC_CATEGORY_MC:
    case UTF8PROC_CATEGORY_ME:
        return C_MARK;
    case UTF8PROC_CATEGORY_LU:
    case UTF8PROC_CATEGORY_LL:
    case UTF8PROC_CATEGORY_LT:
    case UTF8PROC_CATEGORY_LM:
    case UTF8PROC_CATEGORY_LO:
        if ((c >= 0x3400 && c <= 0x4DBF) || (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0xF900 && c <= 0xFAFF) ||
            (c >= 0x20000 && c <= 0x3FFFF))
            return C_IDEO;
        if ((c >= 0x3040 && c <= 0x30FF) || (c >= 0x31F0 && c <= 0x31FF) || (c >= 0xFF66 && c <= 0xFF9F))
            return C_KANA;
        return C_LETTER;
    case UTF8PROC_CATEGORY_ND:
    case UTF8PROC_CATEGORY_NL:
    case UTF8PROC_CATEGORY_NO:
        return C_NUMBER;
    case UTF8PROC_CATEGORY_PC:
    case UTF8PROC_CATEGORY_PD:
    case UTF8PROC_CATEGORY_PS:
    case UTF8PROC_CATEGORY_PE:
    case UTF8PROC_CATEGORY_PI:
    case UTF8PROC_CATEGORY_PF:
    case UTF8PROC_CATEGORY_PO:
    case UTF8PROC_CATEGORY_SM:
    case UTF8PROC_CATEGORY_SC:
    case UTF8PROC_CATEGORY_SK:
    case UTF8PROC_CATEGORY_SO:
        return C_PUNCT;
    default:
        return C_OTHER;
    }
}

/* Classes that may begin a piece carrying a space marker, and that a joiner glues on. */
static inline int attachable(int k) { return k >= C_MARK; }

static int pieces_reserve(struct tok_pieces *p)
{
    if (p->n + 2 > p->cap) {
        size_t cap = p->cap ? p->cap * 2 : 64;
        size_t *off = realloc(p->off, cap * sizeof *off);
        if (!off)
            return sl_err(SL_ENOMEM, "out of memory (%zu pieces)", cap);
        p->off = off;
        unsigned char *kd = realloc(p->kind, cap);
        if (!kd)
            return sl_err(SL_ENOMEM, "out of memory (%zu pieces)", cap);
        p->kind = kd;
        p->cap = cap;
    }
    return 0;
}

static int piece_push(struct tok_pieces *p, int kind)
{
    int rc = pieces_reserve(p);
    if (rc)
        return rc;
    p->kind[p->n] = (unsigned char)kind;
    p->n++;
    p->off[p->n] = p->text.len;
    return 0;
}

int tok_pretokenize(enum tok_norm norm, const char *s, size_t len, unsigned flags, struct tok_pieces *p)
{
    size_t n = 0;
    int rc = to_cps(norm, s, len, p, &n);
    if (rc)
        return rc;
    if ((flags & TOK_PRETOK_SPACE_PREFIX) && n > 0) {
        if ((rc = cps_reserve(p, n + 1)))
            return rc;
        memmove(p->cps + 1, p->cps, n * sizeof *p->cps);
        p->cps[0] = ' ';
        n++;
    }
    sbuf_reset(&p->text);
    /* Surfaces are at most 4 bytes per code point, 3 for a space marker. */
    if ((rc = sbuf_reserve(&p->text, n * 4 + 4)))
        return rc;
    p->n = 0;
    if ((rc = pieces_reserve(p)))
        return rc;
    p->off[0] = 0;
    const int32_t *c = p->cps;
    char *t = p->text.data;
#define PUT(cp) (p->text.len += utf8_encode((cp), t + p->text.len))
#define MARK() (memcpy(t + p->text.len, TOK_SPACE_MARK, 3), p->text.len += 3)
    size_t i = 0;
    while (i < n) {
        if (c[i] == ' ') {
            size_t j = i;
            while (j < n && c[j] == ' ')
                j++;
            int att = j < n && attachable(cp_class(c[j]));
            size_t k = j - i - (att ? 1 : 0);
            while (k > 0) {
                size_t m = k < TOK_PIECE_MAX ? k : TOK_PIECE_MAX;
                for (size_t q = 0; q < m; q++)
                    MARK();
                if ((rc = piece_push(p, TOK_PIECE_TEXT)))
                    return rc;
                k -= m;
            }
            i = j;
            if (!att)
                continue;
            MARK();
        }
        int k = cp_class(c[i]);
        PUT(c[i]);
        i++;
        if (k == C_LIT || k == C_OTHER || k == C_JOIN) {
            if ((rc = piece_push(p, k == C_LIT ? TOK_PIECE_BYTES : TOK_PIECE_TEXT)))
                return rc;
            continue;
        }
        if (k == C_MARK)
            k = C_LETTER;
        size_t cnt = 1;
        while (i < n && cnt < TOK_PIECE_MAX) {
            int k2 = cp_class(c[i]);
            if (k2 == C_MARK || (k2 == k && k != C_IDEO)) {
                PUT(c[i]);
                i++;
                cnt++;
            } else if (k2 == C_JOIN) {
                PUT(c[i]);
                i++;
                cnt++;
                if (i < n && cnt < TOK_PIECE_MAX && attachable(cp_class(c[i]))) {
                    PUT(c[i]);
                    i++;
                    cnt++;
                }
            } else {
                break;
            }
        }
        if ((rc = piece_push(p, TOK_PIECE_TEXT)))
            return rc;
    }
#undef PUT
#undef MARK
    t[p->text.len] = '\0';
    return 0;
}
