/* eval/evtext.h: the little Unicode the metrics need, on UTF-8 bytes: strict validation and code
 * point decoding (util/utf8.h in the metrics' terms), Python's whitespace set (str.split(),
 * str.rstrip(), re's \s) and Python's str.lower() (full mapping incl. U+0130 and the Final_Sigma
 * rule; tables generated into lower_table.h).
 * eval/ may not use utf8proc (tokenizer/ owns it), so this is self-contained and locale-free.
 * ref: Unicode 14 SpecialCasing.txt; Python docs, str.isspace / str.lower. */
#ifndef SL_EVAL_EVTEXT_H
#define SL_EVAL_EVTEXT_H

#include "util/sbuf.h"

#include <stddef.h>
#include <stdint.h>

/* 1 if s[0..n) is well-formed UTF-8 (no overlongs, surrogates or code points above U+10FFFF, as
 * Python's strict decoder), else 0 with the offset of the first bad byte in *bad (may be NULL).
 * The same as utf8_valid(). */
int evtext_valid(const char *s, size_t n, size_t *bad /* OUT */);
/* Decodes the code point at s[*i] and advances *i. s must be valid UTF-8 and *i < n. */
uint32_t evtext_next(const char *s, size_t n, size_t *i /* IN/OUT */);
/* Empties b and makes room for `extra` bytes; b stays NUL-terminated (data is never NULL after). */
int evtext_reset(struct sbuf *b, size_t extra);
/* Appends cp as UTF-8. */
int evtext_put(struct sbuf *out, uint32_t cp);
/* 1 for Python's whitespace (str.isspace()): \t\n\v\f\r, U+001C..1F, space, U+0085, U+00A0, ... */
int evtext_is_space(uint32_t cp);
/* Length of s[0..n) without trailing whitespace (Python's str.rstrip()). */
size_t evtext_rstrip(const char *s, size_t n);
/* Simple lowercase mapping of one code point (U+0130 -> U+0069; no context). */
uint32_t evtext_lower_cp(uint32_t cp);
/* out := Python's s.lower() of valid UTF-8 s[0..n) (out is reset first). */
int evtext_lower(const char *s, size_t n, struct sbuf *out);
/* The next whitespace-separated word (Python's str.split()) of valid UTF-8 s[0..n) from byte *i: 1
 * with the word at s[*at..*i) (*i moves to its end), or 0 with *i = n when only whitespace is left. */
int evtext_next_word(const char *s, size_t n, size_t *i /* IN/OUT */, size_t *at /* OUT */);
/* out := the whitespace-separated words of s[0..n) joined by single spaces (' '.join(s.split())). */
int evtext_join_words(const char *s, size_t n, struct sbuf *out);

#endif
