/* util/utf8.h: the project's one UTF-8 codec. Well-formed means Unicode table 3-7: no overlong
 * forms, no UTF-16 surrogates (U+D800-DFFF), nothing above U+10FFFF; NUL is a valid code point.
 * utf8_valid() and utf8_seqlen() are the validators (import, tokenizer, metrics all accept exactly
 * this set and report the offset of the first byte of the first ill-formed sequence);
 * utf8_decode() is for text already validated; utf8_encode() writes one code point. Code points are
 * int32_t (utf8proc's type). The per-character functions are static inline: they run in the inner
 * loops of import, pre-tokenisation and BPE encoding.
 * ref: Unicode 15 section 3.9, table 3-7 (well-formed UTF-8 byte sequences); RFC 3629. */
#ifndef SL_UTIL_UTF8_H
#define SL_UTIL_UTF8_H

#include <stddef.h>
#include <stdint.h>

/* Length (1-4) of the well-formed sequence starting at s (n > 0 bytes available), or 0 when none
 * starts there (overlong form, surrogate, above U+10FFFF, stray continuation byte, truncated). */
static inline size_t utf8_seqlen(const unsigned char *s, size_t n)
{
    unsigned c = s[0];
    unsigned lo = 0x80, hi = 0xBF; /* allowed range of the second byte (table 3-7) */
    if (c < 0x80)
        return 1;
    if (c < 0xC2) /* stray continuation byte, or C0/C1 (always overlong) */
        return 0;
    if (c < 0xE0)
        return (n >= 2 && (s[1] & 0xC0) == 0x80) ? 2 : 0;
    if (c < 0xF0) {
        if (c == 0xE0)
            lo = 0xA0; /* below: overlong */
        else if (c == 0xED)
            hi = 0x9F; /* above: UTF-16 surrogates D800-DFFF */
        if (n < 3 || s[1] < lo || s[1] > hi || (s[2] & 0xC0) != 0x80)
            return 0;
        return 3;
    }
    if (c < 0xF5) {
        if (c == 0xF0)
            lo = 0x90; /* below: overlong */
        else if (c == 0xF4)
            hi = 0x8F; /* above: beyond U+10FFFF */
        if (n < 4 || s[1] < lo || s[1] > hi || (s[2] & 0xC0) != 0x80 || (s[3] & 0xC0) != 0x80)
            return 0;
        return 4;
    }
    return 0; /* F5-FF: beyond U+10FFFF */
}

/* The code point starting at s (n > 0 bytes available) of text already known to be well-formed, in
 * *cp; returns its length (1-4). Not a validator: ill-formed input gives some code point, the length
 * its lead byte announces, or the lead byte itself with length 1 when fewer than that are left (so it
 * never reads past s[n - 1]). */
static inline size_t utf8_decode(const unsigned char *s, size_t n, int32_t *cp)
{
    unsigned c = s[0];
    if (c < 0x80) {
        *cp = (int32_t)c;
        return 1;
    }
    if (c < 0xE0) {
        if (n < 2)
            goto lead_only;
        *cp = (int32_t)(((c & 0x1F) << 6) | (s[1] & 0x3F));
        return 2;
    }
    if (c < 0xF0) {
        if (n < 3)
            goto lead_only;
        *cp = (int32_t)(((c & 0x0F) << 12) | ((s[1] & 0x3F) << 6) | (s[2] & 0x3F));
        return 3;
    }
    if (n < 4)
        goto lead_only;
    *cp = (int32_t)(((c & 0x07) << 18) | ((s[1] & 0x3F) << 12) | ((s[2] & 0x3F) << 6) | (s[3] & 0x3F));
    return 4;
lead_only:
    *cp = (int32_t)c;
    return 1;
}

/* Writes cp (0..0x10FFFF) as UTF-8 to out (room for 4 bytes, not NUL-terminated); returns the number
 * of bytes written (1-4). */
static inline size_t utf8_encode(int32_t cp, char *out)
{
    unsigned char *o = (unsigned char *)out;
    if (cp < 0x80) {
        o[0] = (unsigned char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (unsigned char)(0xC0 | (cp >> 6));
        o[1] = (unsigned char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (unsigned char)(0xE0 | (cp >> 12));
        o[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (unsigned char)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (unsigned char)(0xF0 | (cp >> 18));
    o[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
    o[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
    o[3] = (unsigned char)(0x80 | (cp & 0x3F));
    return 4;
}

/* Number of leading ASCII bytes (< 0x80) of s[0..n) (n when all are). */
size_t utf8_ascii_len(const char *s, size_t n);
/* 1 when s[0..n) is well-formed UTF-8; else 0 and *bad (if not NULL) = offset of the first byte of
 * the first ill-formed sequence. ASCII runs go eight bytes at a time. */
int utf8_valid(const char *s, size_t n, size_t *bad /* OUT */);

#endif
