/* util/sbuf.h: a growable byte buffer (always NUL-terminated) and a line reader without a fixed
 * line length. The buffer owns its memory: sbuf_free() releases it; .data stays valid until the
 * next call that grows it. */
#ifndef SL_UTIL_SBUF_H
#define SL_UTIL_SBUF_H

#include <stdio.h>
#include <stddef.h>

struct sbuf {
    char *data; /* NUL-terminated, len bytes of content */
    size_t len;
    size_t cap;
};

void sbuf_init(struct sbuf *b);
void sbuf_free(struct sbuf *b);
void sbuf_reset(struct sbuf *b);
int sbuf_reserve(struct sbuf *b, size_t extra);
int sbuf_append(struct sbuf *b, const void *p, size_t n);
int sbuf_putc(struct sbuf *b, char c);
int sbuf_printf(struct sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Reads one line (without its '\n') into b, replacing its content. Returns 1 when a line was read,
 * 0 at end of file, SL_EIO on a read error. Embedded NUL bytes are kept (b->len counts them). */
int sbuf_getline(struct sbuf *b, FILE *f);

#endif
