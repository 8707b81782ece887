/* util/sbuf.c: growable byte buffer and line reader (see sbuf.h). */
#include "util/sbuf.h"

#include "util/err.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

void sbuf_init(struct sbuf *b)
{
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
}

void sbuf_free(struct sbuf *b)
{
    free(b->data);
    sbuf_init(b);
}

void sbuf_reset(struct sbuf *b)
{
    b->len = 0;
    if (b->data)
        b->data[0] = '\0';
}

int sbuf_reserve(struct sbuf *b, size_t extra)
{
    size_t need = b->len + extra + 1;
    if (need <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < need)
        cap *= 2;
    char *p = realloc(b->data, cap);
    if (!p)
        return sl_err(SL_ENOMEM, "out of memory (buffer of %zu bytes)", cap);
    if (!b->data)
        p[0] = '\0';
    b->data = p;
    b->cap = cap;
    return 0;
}

int sbuf_append(struct sbuf *b, const void *p, size_t n)
{
    int rc = sbuf_reserve(b, n);
    if (rc)
        return rc;
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
    return 0;
}

int sbuf_putc(struct sbuf *b, char c) { return sbuf_append(b, &c, 1); }

int sbuf_printf(struct sbuf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return sl_err(SL_EINVAL, "bad format");
    int rc = sbuf_reserve(b, (size_t)n);
    if (rc)
        return rc;
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return 0;
}

int sbuf_getline(struct sbuf *b, FILE *f)
{
    sbuf_reset(b);
    for (;;) {
        int rc = sbuf_reserve(b, 256);
        if (rc)
            return rc;
        char *dst = b->data + b->len;
        size_t room = b->cap - b->len - 1;
        /* fgets cannot report embedded NULs, so read with getc_unlocked in chunks */
        size_t n = 0;
        int c = EOF;
        while (n < room && (c = getc_unlocked(f)) != EOF) {
            if (c == '\n')
                break;
            dst[n++] = (char)c;
        }
        b->len += n;
        b->data[b->len] = '\0';
        if (c == '\n')
            return 1;
        if (c == EOF) {
            if (ferror(f))
                return sl_err(SL_EIO, "read error");
            return b->len > 0 ? 1 : 0;
        }
    }
}
