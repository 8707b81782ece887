/* eval/metric.c: text and JSON formatting of metric results, and the per-segment steps BLEU and chrF
 * share (see metric.h).
 * JSON numbers follow Python: float(f"{score:.{width}f}") printed by repr, i.e. the fixed-point
 * string without trailing zeros but with at least one decimal ("48.5", "100.0").
 * ref: sacrebleu/metrics/base.py. */
#include "eval/metric.h"

#include "util/err.h"
#include "util/utf8.h"

#include <stdio.h>
#include <string.h>

#ifndef SEQLITE_VERSION
#define SEQLITE_VERSION "unknown"
#endif

void metric_result_init(struct metric_result *r)
{
    r->name[0] = '\0';
    r->score = 0.0;
    sbuf_init(&r->signature);
    sbuf_init(&r->verbose);
}

void metric_result_free(struct metric_result *r)
{
    if (!r)
        return;
    sbuf_free(&r->signature);
    sbuf_free(&r->verbose);
}

const char *metric_version(void) { return "seqlite-" SEQLITE_VERSION; }

int metric_put_nrefs(struct sbuf *sig, size_t nrefs_min, size_t nrefs_max)
{
    if (nrefs_min != nrefs_max)
        return sbuf_printf(sig, "nrefs:var");
    return sbuf_printf(sig, "nrefs:%zu", nrefs_min);
}

void metric_nrefs_add(size_t *nsegs, size_t *nrefs_min, size_t *nrefs_max, size_t src_nsegs, size_t src_min,
                      size_t src_max)
{
    if (src_nsegs) {
        if (*nsegs == 0 || src_min < *nrefs_min)
            *nrefs_min = src_min;
        if (*nsegs == 0 || src_max > *nrefs_max)
            *nrefs_max = src_max;
    }
    *nsegs += src_nsegs;
}

int metric_check_utf8(const char *hyp, size_t hyp_len, const char *const *refs, const size_t *ref_lens,
                      size_t nrefs)
{
    size_t bad;
    if (!utf8_valid(hyp, hyp_len, &bad))
        return sl_err(SL_EUTF8, "hypothesis: invalid UTF-8 at byte %zu", bad + 1);
    for (size_t r = 0; r < nrefs; r++) {
        size_t rl = ref_lens ? ref_lens[r] : strlen(refs[r]);
        if (!utf8_valid(refs[r], rl, &bad))
            return sl_err(SL_EUTF8, "reference %zu: invalid UTF-8 at byte %zu", r + 1, bad + 1);
    }
    return 0;
}

int metric_format_text(const struct metric_result *r, int width, struct sbuf *out)
{
    int rc = sbuf_printf(out, "%s", r->name);
    if (!rc && r->signature.len)
        rc = sbuf_printf(out, "|%s", r->signature.data);
    if (!rc)
        rc = sbuf_printf(out, " = %.*f", width, r->score);
    if (!rc && r->verbose.len)
        rc = sbuf_printf(out, " %s", r->verbose.data);
    return rc;
}

/* JSON string body; our strings are ASCII apart from what a caller may put in a name. */
static int put_json_string(struct sbuf *out, const char *s)
{
    int rc = sbuf_putc(out, '"');
    for (; !rc && *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            rc = sbuf_printf(out, "\\%c", c);
        else if (c < 0x20)
            rc = sbuf_printf(out, "\\u%04x", c);
        else
            rc = sbuf_putc(out, (char)c);
    }
    return rc ? rc : sbuf_putc(out, '"');
}

int metric_format_json(const struct metric_result *r, int width, struct sbuf *out)
{
    char num[64];
    snprintf(num, sizeof num, "%.*f", width, r->score);
    if (strchr(num, '.')) { /* Python repr of the rounded float: trim zeros, keep one decimal */
        size_t n = strlen(num);
        while (num[n - 1] == '0' && num[n - 2] != '.')
            num[--n] = '\0';
    } else {
        strcat(num, ".0");
    }
    if (strcmp(num, "-0.0") == 0)
        strcpy(num, "0.0");
    int rc = sbuf_printf(out, "{\n \"name\": ");
    if (!rc)
        rc = put_json_string(out, r->name);
    if (!rc)
        rc = sbuf_printf(out, ",\n \"score\": %s,\n \"signature\": ", num);
    if (!rc)
        rc = put_json_string(out, r->signature.len ? r->signature.data : "");
    if (!rc && r->verbose.len) {
        rc = sbuf_printf(out, ",\n \"verbose_score\": ");
        if (!rc)
            rc = put_json_string(out, r->verbose.data);
    }
    /* one key per "key:value" field of the signature */
    const char *p = r->signature.len ? r->signature.data : "";
    char key[64], val[256];
    while (!rc && *p) {
        const char *bar = strchr(p, '|');
        size_t flen = bar ? (size_t)(bar - p) : strlen(p);
        const char *colon = memchr(p, ':', flen);
        if (colon) {
            size_t kl = (size_t)(colon - p), vl = flen - kl - 1;
            if (kl >= sizeof key || vl >= sizeof val)
                return sl_err(SL_EINVAL, "signature field too long");
            memcpy(key, p, kl);
            key[kl] = '\0';
            memcpy(val, colon + 1, vl);
            val[vl] = '\0';
            rc = sbuf_printf(out, ",\n ");
            if (!rc)
                rc = put_json_string(out, key);
            if (!rc)
                rc = sbuf_printf(out, ": ");
            if (!rc)
                rc = put_json_string(out, val);
        }
        p += flen + (bar ? 1 : 0);
    }
    return rc ? rc : sbuf_printf(out, "\n}");
}
