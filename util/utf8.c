/* util/utf8.c: the string-level UTF-8 functions of utf8.h (validation with the first bad offset).
 * ASCII runs are skipped a 64-bit word at a time: a word without a high bit is eight ASCII bytes,
 * and on little-endian machines the lowest set high bit gives the first non-ASCII byte at once.
 * ref: Unicode 15 section 3.9, table 3-7. */
#include "util/utf8.h"

#include <string.h>

size_t utf8_ascii_len(const char *s, size_t n)
{
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, s + i, 8);
        w &= 0x8080808080808080ULL;
        if (w) {
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
            return i + (size_t)__builtin_ctzll(w) / 8;
#else
            break; /* the byte loop below finds it */
#endif
        }
    }
    while (i < n && (unsigned char)s[i] < 0x80)
        i++;
    return i;
}

int utf8_valid(const char *s, size_t n, size_t *bad)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    while (i < n) {
        if (p[i] < 0x80) {
            i += utf8_ascii_len(s + i, n - i);
            continue;
        }
        size_t k = utf8_seqlen(p + i, n - i);
        if (!k) {
            if (bad)
                *bad = i;
            return 0;
        }
        i += k;
    }
    return 1;
}
