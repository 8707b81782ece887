/* tools/cli.c: flag parsing and error printing for every subcommand (see cli.h). */
#include "tools/cli.h"

#include "model/checkpoint.h"

#include "util/err.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int cli_fail(const struct cli_cmd *c, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "seqlite: %s: ", c->name);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return 1;
}

int cli_fail_status(const struct cli_cmd *c, int status)
{
    const char *m = sl_errmsg();
    return cli_fail(c, "%s", m[0] ? m : sl_strstatus(status));
}

int cli_usage_error(const struct cli_cmd *c, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "seqlite: %s: ", c->name);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\nsee 'seqlite help %s'\n", c->name);
    return 2;
}

int cli_precision(const struct cli_cmd *c, const char *value, enum precision *out)
{
    if (precision_parse(value, "--precision", out))
        return cli_usage_error(c, "%s", sl_errmsg());
    if (*out != PRECISION_FP32 && !autocast_available(*out)) {
        fprintf(stderr, "seqlite: %s: --precision %s: %s\n", c->name, precision_name(*out), precision_note(*out));
        *out = PRECISION_FP32;
    }
    return 0;
}

enum precision cli_stored_precision(const struct ckpt_model *ck, size_t n)
{
    int all = n > 0;
    for (size_t i = 0; i < n; i++)
        all &= ck[i].stored_bf16;
    return all && autocast_available(PRECISION_BF16) ? PRECISION_BF16 : PRECISION_FP32;
}

int cli_stderr_is_tty(void) { return isatty(STDERR_FILENO); }

static int parse_value(const struct cli_cmd *c, const struct cli_opt *o, const char *v)
{
    char *end = NULL;
    errno = 0;
    switch (o->type) {
    case CLI_INT: {
        long long x = strtoll(v, &end, 10);
        if (errno || end == v || *end)
            return cli_usage_error(c, "--%s: '%s' is not a whole number", o->name, v);
        if ((double)x < o->min || (double)x > o->max)
            return cli_usage_error(c, "--%s: %lld is out of range (%.0f to %.0f)", o->name, x, o->min,
                                   o->max);
        *(int64_t *)o->dst = (int64_t)x;
        return 0;
    }
    case CLI_DOUBLE: {
        double x = strtod(v, &end);
        if (errno || end == v || *end || !isfinite(x))
            return cli_usage_error(c, "--%s: '%s' is not a number", o->name, v);
        if (x < o->min || x > o->max)
            return cli_usage_error(c, "--%s: %g is out of range (%g to %g)", o->name, x, o->min, o->max);
        *(double *)o->dst = x;
        return 0;
    }
    case CLI_STR:
        *(const char **)o->dst = v;
        return 0;
    case CLI_BOOL:
        *(int *)o->dst = 1;
        return 0;
    }
    return 2;
}

int cli_parse(const struct cli_cmd *c, int argc, char **argv, const struct cli_opt *opts,
              char **pos, int max_pos, int *npos)
{
    int np = 0;
    int only_pos = 0;
    for (int i = 1; i < argc; i++) {
        char *a = argv[i];
        if (only_pos || a[0] != '-' || a[1] == '\0') {
            if (np >= max_pos)
                return cli_usage_error(c, "unexpected argument '%s'", a);
            pos[np++] = a;
            continue;
        }
        if (strcmp(a, "--") == 0) {
            only_pos = 1;
            continue;
        }
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            fputs(c->usage, stdout);
            return CLI_HELP_SHOWN;
        }
        if (a[1] != '-')
            return cli_usage_error(c, "unknown flag '%s'", a);
        const char *name = a + 2;
        const char *eq = strchr(name, '=');
        size_t nlen = eq ? (size_t)(eq - name) : strlen(name);
        const struct cli_opt *o = NULL;
        for (const struct cli_opt *p = opts; p && p->name; p++)
            if (strlen(p->name) == nlen && strncmp(p->name, name, nlen) == 0)
                o = p;
        if (!o)
            return cli_usage_error(c, "unknown flag '--%.*s'", (int)nlen, name);
        if (o->type == CLI_BOOL) {
            if (eq)
                return cli_usage_error(c, "--%s takes no value", o->name);
            *(int *)o->dst = 1;
            continue;
        }
        const char *v = eq ? eq + 1 : NULL;
        if (!v) {
            if (i + 1 >= argc)
                return cli_usage_error(c, "--%s needs a value", o->name);
            v = argv[++i];
        }
        int rc = parse_value(c, o, v);
        if (rc)
            return rc;
    }
    *npos = np;
    return 0;
}
