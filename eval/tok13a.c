/* eval/tok13a.c: the 13a tokenizer (see tok13a.h) as a chain of passes, each one a faithful copy
 * of one Python str.replace / re.sub: matches are found left to right and do not overlap (after a
 * match the scan resumes behind the consumed characters). Byte-wise scanning is equivalent to
 * code point scanning here because every pattern anchors on an ASCII character and UTF-8
 * continuation bytes are never ASCII.
 * ref: sacrebleu/tokenizers/tokenizer_13a.py, tokenizer_re.py. */
#include "eval/tok13a.h"

#include "eval/evtext.h"

#include <string.h>

void tok13a_init(struct tok13a *t)
{
    sbuf_init(&t->a);
    sbuf_init(&t->b);
}

void tok13a_free(struct tok13a *t)
{
    if (!t)
        return;
    sbuf_free(&t->a);
    sbuf_free(&t->b);
}

/* dst := src with every non-overlapping `from` replaced by `to` (Python str.replace). */
static int replace_all(const char *src, size_t n, const char *from, const char *to, struct sbuf *dst)
{
    size_t fl = strlen(from), tl = strlen(to);
    int rc = evtext_reset(dst, n);
    size_t i = 0;
    while (!rc && i < n) {
        if (n - i >= fl && memcmp(src + i, from, fl) == 0) {
            rc = sbuf_append(dst, to, tl);
            i += fl;
        } else {
            rc = sbuf_putc(dst, src[i++]);
        }
    }
    return rc;
}

static int is_digit(char c) { return c >= '0' && c <= '9'; }

/* rule 1: ([\{-\~\[-\` -\&\(-\+\:-\@\/]) -> " \1 " : ASCII punctuation except ' , - . (and space,
 * which is in the class too and only adds whitespace) */
static int is_rule1(char c)
{
    unsigned char u = (unsigned char)c;
    return (u >= '{' && u <= '~') || (u >= '[' && u <= '`') || (u >= ' ' && u <= '&') ||
           (u >= '(' && u <= '+') || (u >= ':' && u <= '@') || u == '/';
}

static int pass_rule1(const char *s, size_t n, struct sbuf *dst)
{
    int rc = evtext_reset(dst, n + n / 2);
    for (size_t i = 0; !rc && i < n; i++) {
        if (is_rule1(s[i])) {
            char t[3] = {' ', s[i], ' '};
            rc = sbuf_append(dst, t, 3);
        } else {
            rc = sbuf_putc(dst, s[i]);
        }
    }
    return rc;
}

/* rule 2: ([^0-9])([\.,]) -> "\1 \2 " */
static int pass_rule2(const char *s, size_t n, struct sbuf *dst)
{
    int rc = evtext_reset(dst, n + n / 2);
    size_t i = 0;
    while (!rc && i < n) {
        if (i + 1 < n && !is_digit(s[i]) && (s[i + 1] == '.' || s[i + 1] == ',')) {
            char t[4] = {s[i], ' ', s[i + 1], ' '};
            rc = sbuf_append(dst, t, 4);
            i += 2;
        } else {
            rc = sbuf_putc(dst, s[i++]);
        }
    }
    return rc;
}

/* rule 3: ([\.,])([^0-9]) -> " \1 \2". \2 may be the lead byte of a multi-byte character: its
 * continuation bytes follow unchanged and can never start a match. */
static int pass_rule3(const char *s, size_t n, struct sbuf *dst)
{
    int rc = evtext_reset(dst, n + n / 2);
    size_t i = 0;
    while (!rc && i < n) {
        if (i + 1 < n && (s[i] == '.' || s[i] == ',') && !is_digit(s[i + 1])) {
            char t[4] = {' ', s[i], ' ', s[i + 1]};
            rc = sbuf_append(dst, t, 4);
            i += 2;
        } else {
            rc = sbuf_putc(dst, s[i++]);
        }
    }
    return rc;
}

/* rule 4: ([0-9])(-) -> "\1 \2 " */
static int pass_rule4(const char *s, size_t n, struct sbuf *dst)
{
    int rc = evtext_reset(dst, n + n / 2);
    size_t i = 0;
    while (!rc && i < n) {
        if (i + 1 < n && is_digit(s[i]) && s[i + 1] == '-') {
            char t[4] = {s[i], ' ', '-', ' '};
            rc = sbuf_append(dst, t, 4);
            i += 2;
        } else {
            rc = sbuf_putc(dst, s[i++]);
        }
    }
    return rc;
}

int tok13a_tokenize(struct tok13a *t, const char *s, size_t n, struct sbuf *out)
{
    struct sbuf *cur = &t->a, *nxt = &t->b, *tmp;
    int rc;
#define SWAP() (tmp = cur, cur = nxt, nxt = tmp)
    /* language-independent part; each replace is a full pass, in sacreBLEU's order */
    if ((rc = replace_all(s, n, "<skipped>", "", cur)))
        return rc;
    if ((rc = replace_all(cur->data, cur->len, "-\n", "", nxt)))
        return rc;
    SWAP();
    if ((rc = replace_all(cur->data, cur->len, "\n", " ", nxt)))
        return rc;
    SWAP();
    if (memchr(cur->data, '&', cur->len)) {
        static const char *const ent[4][2] = {
            {"&quot;", "\""}, {"&amp;", "&"}, {"&lt;", "<"}, {"&gt;", ">"}};
        for (int k = 0; k < 4; k++) {
            if ((rc = replace_all(cur->data, cur->len, ent[k][0], ent[k][1], nxt)))
                return rc;
            SWAP();
        }
    }
    /* " {line} " then the four regular expressions */
    sbuf_reset(nxt);
    if ((rc = sbuf_putc(nxt, ' ')) || (rc = sbuf_append(nxt, cur->data, cur->len)) ||
        (rc = sbuf_putc(nxt, ' ')))
        return rc;
    SWAP();
    if ((rc = pass_rule1(cur->data, cur->len, nxt)))
        return rc;
    SWAP();
    if ((rc = pass_rule2(cur->data, cur->len, nxt)))
        return rc;
    SWAP();
    if ((rc = pass_rule3(cur->data, cur->len, nxt)))
        return rc;
    SWAP();
    if ((rc = pass_rule4(cur->data, cur->len, nxt)))
        return rc;
    SWAP();
#undef SWAP
    /* ' '.join(line.strip().split()) */
    return evtext_join_words(cur->data, cur->len, out);
}
