/* eval/tok13a.h: sacreBLEU's default BLEU tokenizer "13a" (the mteval-v13a.pl rules): drop
 * <skipped>, join "-\n", unescape &quot; &amp; &lt; &gt;, space out ASCII punctuation except ' , - .,
 * split periods/commas not next to digits and dashes after digits, collapse whitespace.
 * Works on valid UTF-8; non-ASCII characters are never split. The two scratch buffers live in
 * struct tok13a so repeated calls do not allocate once they have grown.
 * ref: sacrebleu/tokenizers/tokenizer_13a.py, tokenizer_re.py (Python re.sub semantics). */
#ifndef SL_EVAL_TOK13A_H
#define SL_EVAL_TOK13A_H

#include "util/sbuf.h"

#include <stddef.h>

struct tok13a {
    struct sbuf a, b; /* ping-pong scratch */
};

void tok13a_init(struct tok13a *t);
void tok13a_free(struct tok13a *t);
/* out := 13a tokenisation of s[0..n), tokens separated by single spaces, no outer spaces.
 * out must not be one of t's buffers. */
int tok13a_tokenize(struct tok13a *t, const char *s, size_t n, struct sbuf *out);

#endif
