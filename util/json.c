/* util/json.c: the JSON writer (see json.h). Commas and nesting are tracked per depth; the first
 * failure sticks and stops all later output. */
#include "util/json.h"

#include "util/err.h"
#include "util/sbuf.h"
#include "util/utf8.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int json_put_string(struct sbuf *out, const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    int rc = sbuf_putc(out, '"');
    for (size_t i = 0; !rc && i < n;) {
        unsigned c = p[i];
        size_t len = utf8_seqlen(p + i, n - i);
        if (len == 0) {
            rc = sbuf_append(out, "\\ufffd", 6);
            i++;
            continue;
        }
        if (len > 1) {
            rc = sbuf_append(out, p + i, len);
        } else if (c == '"' || c == '\\') {
            char e[2] = {'\\', (char)c};
            rc = sbuf_append(out, e, 2);
        } else if (c == '\n') {
            rc = sbuf_append(out, "\\n", 2);
        } else if (c == '\t') {
            rc = sbuf_append(out, "\\t", 2);
        } else if (c == '\r') {
            rc = sbuf_append(out, "\\r", 2);
        } else if (c < 0x20) {
            rc = sbuf_printf(out, "\\u%04x", c);
        } else {
            rc = sbuf_putc(out, (char)c);
        }
        i += len;
    }
    return rc ? rc : sbuf_putc(out, '"');
}

int json_put_real(struct sbuf *out, double v)
{
    if (!isfinite(v))
        return sbuf_append(out, "null", 4);
    /* the shortest %.Ng that reads back to v (17 digits always do) */
    char buf[40];
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(buf, sizeof buf, "%.*g", prec, v);
        if (strtod(buf, NULL) == v)
            break;
    }
    return sbuf_append(out, buf, strlen(buf));
}

void json_writer_init(struct json_writer *w, struct sbuf *out)
{
    memset(w, 0, sizeof *w);
    w->out = out;
}

int json_writer_finish(struct json_writer *w)
{
    if (!w->rc && (w->depth || w->after_key))
        w->rc = sl_err(SL_EINVAL, "json: %u container%s left open", w->depth, w->depth == 1 ? "" : "s");
    return w->rc;
}

/* Before a value: the comma after a previous array item; a value in an object needs its key. */
static int value_start(struct json_writer *w)
{
    if (w->rc)
        return 0;
    if (w->depth && w->is_object[w->depth - 1]) {
        if (!w->after_key) {
            w->rc = sl_err(SL_EINVAL, "json: a value without a key inside an object");
            return 0;
        }
        w->after_key = 0;
        return 1;
    }
    if (w->depth && w->has_items[w->depth - 1] && (w->rc = sbuf_putc(w->out, ',')))
        return 0;
    if (w->depth)
        w->has_items[w->depth - 1] = 1;
    return 1;
}

static void put(struct json_writer *w, const char *text)
{
    if (!w->rc)
        w->rc = sbuf_append(w->out, text, strlen(text));
}

static void open_container(struct json_writer *w, int is_object)
{
    if (!value_start(w))
        return;
    if (w->depth == JSON_MAX_DEPTH) {
        w->rc = sl_err(SL_EINVAL, "json: nested deeper than %d", JSON_MAX_DEPTH);
        return;
    }
    w->is_object[w->depth] = (unsigned char)is_object;
    w->has_items[w->depth] = 0;
    w->depth++;
    put(w, is_object ? "{" : "[");
}

static void close_container(struct json_writer *w, int is_object)
{
    if (w->rc)
        return;
    if (!w->depth || w->is_object[w->depth - 1] != is_object || w->after_key) {
        w->rc = sl_err(SL_EINVAL, "json: %s closes nothing open", is_object ? "}" : "]");
        return;
    }
    w->depth--;
    put(w, is_object ? "}" : "]");
}

void json_object_begin(struct json_writer *w) { open_container(w, 1); }
void json_object_end(struct json_writer *w) { close_container(w, 1); }
void json_array_begin(struct json_writer *w) { open_container(w, 0); }
void json_array_end(struct json_writer *w) { close_container(w, 0); }

void json_key(struct json_writer *w, const char *key)
{
    if (w->rc)
        return;
    if (!w->depth || !w->is_object[w->depth - 1] || w->after_key) {
        w->rc = sl_err(SL_EINVAL, "json: key '%s' outside an object or without a value before it", key);
        return;
    }
    if (w->has_items[w->depth - 1])
        put(w, ",");
    w->has_items[w->depth - 1] = 1;
    if (!w->rc)
        w->rc = json_put_string(w->out, key, strlen(key));
    put(w, ":");
    w->after_key = 1;
}

void json_string(struct json_writer *w, const char *s)
{
    if (value_start(w))
        w->rc = s ? json_put_string(w->out, s, strlen(s)) : sbuf_append(w->out, "null", 4);
}

void json_int(struct json_writer *w, int64_t v)
{
    if (value_start(w))
        w->rc = sbuf_printf(w->out, "%" PRId64, v);
}

void json_real(struct json_writer *w, double v)
{
    if (value_start(w))
        w->rc = json_put_real(w->out, v);
}

void json_bool(struct json_writer *w, int v)
{
    if (value_start(w))
        put(w, v ? "true" : "false");
}

void json_null(struct json_writer *w)
{
    if (value_start(w))
        put(w, "null");
}

void json_raw(struct json_writer *w, const char *json)
{
    if (value_start(w))
        put(w, json ? json : "null");
}
