/* util/json.h: writing JSON text (RFC 8259) into a byte buffer, for output meant for scripts.
 * - A struct json_writer tracks nesting and commas, so callers write values in order: objects take
 *   json_key then one value per member; arrays take values.
 * - Errors are sticky: the first failure (out of memory, a value where a key belongs, too deep) is
 *   kept and later calls do nothing; json_writer_finish returns it. So a caller writes a whole document
 *   and checks once.
 * - Strings are escaped (", \, control characters) and always come out as valid UTF-8: each byte of an
 *   ill-formed sequence becomes U+FFFD. Numbers that JSON cannot hold (NaN, infinities) are written as
 *   null; other doubles in the shortest form that reads back to the same value.
 * Ownership: the writer borrows the sbuf (the caller owns it); nothing else is allocated.
 * ref: RFC 8259 (sections 6, 7); util/utf8.h for well-formed UTF-8. */
#ifndef SL_UTIL_JSON_H
#define SL_UTIL_JSON_H

#include <stddef.h>
#include <stdint.h>

struct sbuf;

#define JSON_MAX_DEPTH 32 /* nesting of objects and arrays a writer accepts */

struct json_writer {
    struct sbuf *out;
    int rc;                               /* the first failure (0: none) */
    unsigned depth;                       /* open containers */
    unsigned char is_object[JSON_MAX_DEPTH];
    unsigned char has_items[JSON_MAX_DEPTH]; /* 0 until the container at that depth has a member */
    int after_key;                        /* a key was written: its value comes next */
};

/* Starts writing into out (appended to what it holds). */
void json_writer_init(struct json_writer *w, struct sbuf *out);
/* The first failure, or SL_EINVAL when a container is still open or a key has no value; 0 when the
 * text written is one complete JSON value (or nothing was written). */
int json_writer_finish(struct json_writer *w);

void json_object_begin(struct json_writer *w);
void json_object_end(struct json_writer *w);
void json_array_begin(struct json_writer *w);
void json_array_end(struct json_writer *w);
/* The name of the next member of the current object (NUL-terminated; escaped as a string). */
void json_key(struct json_writer *w, const char *key);

/* Values: a string (NULL writes null), an integer, a double (NaN and infinities write null), a
 * boolean, null, or text that is already one JSON value (NULL writes null; not checked). */
void json_string(struct json_writer *w, const char *s);
void json_int(struct json_writer *w, int64_t v);
void json_real(struct json_writer *w, double v);
void json_bool(struct json_writer *w, int v);
void json_null(struct json_writer *w);
void json_raw(struct json_writer *w, const char *json);

/* Appends s[0..n) as a JSON string literal (quotes included) to out. 0 or SL_ENOMEM. */
int json_put_string(struct sbuf *out, const char *s, size_t n);
/* Appends v as a JSON number (null for NaN and infinities) to out. 0 or SL_ENOMEM. */
int json_put_real(struct sbuf *out, double v);

#endif
