/* corpus/import.c: streams two line-aligned files into one new corpus (see import.h). Memory is two
 * line buffers whatever the file size; the whole import is one BEGIN IMMEDIATE transaction rolled
 * back on any error, so a failed import leaves the database exactly as it was. Every line is checked
 * with util/utf8.h (the project's one validator; its offsets name the bad byte in the message).
 * ref: Unicode 15 section 3.9 table 3-7 (the only well-formed UTF-8 byte sequences). */
#include "corpus/import.h"

#include "corpus/db.h"
#include "util/err.h"
#include "util/utf8.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#define PROGRESS_EVERY 100000
#define FILE_BUFFER (1 << 20)

static const char *base_name(const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash ? slash + 1 : path;
}

void import_default_name(const char *src_path, const char *split, char *out, size_t cap)
{
    const char *base = base_name(src_path);
    const char *dot = strrchr(base, '.');
    size_t stem = dot && dot != base ? (size_t)(dot - base) : strlen(base);
    if (stem == 0 || (strlen(split) == stem && strncmp(base, split, stem) == 0))
        snprintf(out, cap, "%s", split);
    else
        snprintf(out, cap, "%.*s-%s", (int)stem, base, split);
}

/* The extension of path when it is 2-3 ASCII letters, else NULL. */
static const char *lang_ext(const char *path)
{
    const char *base = base_name(path);
    const char *dot = strrchr(base, '.');
    if (!dot || dot == base)
        return NULL;
    size_t n = strlen(dot + 1);
    if (n < 2 || n > 3)
        return NULL;
    for (const char *p = dot + 1; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z')))
            return NULL;
    /* common file extensions that are not language codes */
    static const char *const not_langs[] = {"txt", "tsv", "csv", "gz", "xz", "bz2", "raw", "tok", "bpe",
                                            "src", "tgt", "dat", "out", "log"};
    for (size_t i = 0; i < sizeof not_langs / sizeof not_langs[0]; i++)
        if (strcmp(dot + 1, not_langs[i]) == 0)
            return NULL;
    return dot + 1;
}

void import_default_langs(const char *src_path, const char *tgt_path, char *src_out, char *tgt_out,
                          size_t cap)
{
    const char *a = lang_ext(src_path), *b = lang_ext(tgt_path);
    if (a && b && strcmp(a, b) != 0) {
        snprintf(src_out, cap, "%s", a);
        snprintf(tgt_out, cap, "%s", b);
    } else {
        snprintf(src_out, cap, "src");
        snprintf(tgt_out, cap, "tgt");
    }
}

/* One input file and its current line (getline(3): no length limit, one buffer reused, memchr
 * speed; it reports embedded NUL bytes through the returned length). The path "-" is standard input,
 * named "stdin" in messages and not closed. */
struct input {
    const char *path; /* for messages */
    FILE *f;
    int is_stdin;
    char *line; /* (cap) getline's buffer */
    size_t len, cap;
    char *vbuf;
};

static int input_open(struct input *in, const char *path)
{
    in->is_stdin = strcmp(path, "-") == 0;
    in->path = in->is_stdin ? "stdin" : path;
    in->line = NULL;
    in->len = in->cap = 0;
    in->vbuf = NULL;
    if (in->is_stdin) {
        in->f = stdin;
        return 0;
    }
    in->f = fopen(path, "rb");
    if (!in->f)
        return sl_err(SL_EIO, "%s: cannot read: %s", path, strerror(errno));
    in->vbuf = malloc(FILE_BUFFER);
    if (in->vbuf)
        setvbuf(in->f, in->vbuf, _IOFBF, FILE_BUFFER);
    return 0;
}

static void input_close(struct input *in)
{
    if (in->f && !in->is_stdin)
        fclose(in->f);
    free(in->vbuf);
    free(in->line);
    in->line = NULL;
    in->f = NULL;
}

/* Reads the next line: 1 read, 0 end of file, < 0 error. */
static int input_next(struct input *in)
{
    errno = 0;
    ssize_t n = getline(&in->line, &in->cap, in->f);
    if (n < 0) {
        if (ferror(in->f) || errno == ENOMEM)
            return sl_err(SL_EIO, "%s: read error: %s", in->path, strerror(errno ? errno : EIO));
        return 0;
    }
    in->len = (size_t)n;
    if (in->len && in->line[in->len - 1] == '\n')
        in->len--;
    return 1;
}

/* Counts the lines left in a file (for the line count mismatch message). */
static int input_count_rest(struct input *in, int64_t *n)
{
    int rc;
    while ((rc = input_next(in)) == 1)
        (*n)++;
    return rc;
}

/* Strips BOM (line 1) and a trailing CR, then checks for NUL and invalid UTF-8. *text / *len: the
 * cleaned line. */
static int clean_line(struct input *in, int64_t lineno, const char **text, size_t *len)
{
    const char *s = in->line;
    size_t n = in->len;
    size_t shift = 0; /* bytes removed at the start, so offsets match the file */
    if (lineno == 1 && n >= 3 && memcmp(s, "\xEF\xBB\xBF", 3) == 0) {
        s += 3;
        n -= 3;
        shift = 3;
    }
    if (n > 0 && s[n - 1] == '\r')
        n--;
    const char *nul = memchr(s, '\0', n);
    if (nul)
        return sl_err(SL_EINVAL, "%s: line %lld, byte %zu: NUL byte (not a text file?)", in->path,
                      (long long)lineno, (size_t)(nul - s) + shift + 1);
    size_t bad;
    if (!utf8_valid(s, n, &bad))
        return sl_err(SL_EUTF8, "%s: line %lld, byte %zu: invalid UTF-8", in->path, (long long)lineno,
                      bad + shift + 1);
    *text = s;
    *len = n;
    return 0;
}

static int blank(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!(s[i] == ' ' || s[i] == '\t' || s[i] == '\v' || s[i] == '\f' || s[i] == '\r'))
            return 0;
    return 1;
}

static int check_label(const char *what, const char *s, size_t cap)
{
    size_t n = strlen(s);
    if (n == 0)
        return sl_err(SL_EINVAL, "%s is empty", what);
    if (n >= cap)
        return sl_err(SL_EINVAL, "%s is too long (%zu bytes, at most %zu)", what, n, cap - 1);
    if (!utf8_valid(s, n, NULL))
        return sl_err(SL_EUTF8, "%s is not valid UTF-8", what);
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
            return sl_err(SL_EINVAL, "%s holds a control character", what);
    return 0;
}

/* Fills the labels of out from o (defaults where o leaves them NULL) and checks them. */
static int resolve_labels(const struct import_opts *o, struct import_result *out)
{
    const char *split = o->split ? o->split : "train";
    if (strcmp(split, "train") && strcmp(split, "valid") && strcmp(split, "test"))
        return sl_err(SL_EINVAL, "bad split '%s' (train, valid or test)", split);
    snprintf(out->split, sizeof out->split, "%s", split);
    int rc;
    if (o->name) {
        if ((rc = check_label("the corpus name", o->name, sizeof out->name)))
            return rc;
        snprintf(out->name, sizeof out->name, "%s", o->name);
    } else {
        /* standard input has no name: take the other file's */
        import_default_name(strcmp(o->src_path, "-") ? o->src_path : o->tgt_path, split, out->name,
                            sizeof out->name);
    }
    import_default_langs(o->src_path, o->tgt_path, out->src_lang, out->tgt_lang, sizeof out->src_lang);
    if (o->src_lang) {
        if ((rc = check_label("the source language", o->src_lang, sizeof out->src_lang)))
            return rc;
        snprintf(out->src_lang, sizeof out->src_lang, "%s", o->src_lang);
    }
    if (o->tgt_lang) {
        if ((rc = check_label("the target language", o->tgt_lang, sizeof out->tgt_lang)))
            return rc;
        snprintf(out->tgt_lang, sizeof out->tgt_lang, "%s", o->tgt_lang);
    }
    return 0;
}

int import_run(struct db *db, const struct import_opts *o, struct import_result *out)
{
    struct input src = {0}, tgt = {0};
    int in_tx = 0, bulk = 0;
    memset(out, 0, sizeof *out);
    if (strcmp(o->src_path, "-") == 0 && strcmp(o->tgt_path, "-") == 0)
        return sl_err(SL_EINVAL, "only one of the two files can be standard input ('-')");
    int rc = resolve_labels(o, out);
    if (rc)
        return rc;
    if ((rc = input_open(&src, o->src_path)) || (rc = input_open(&tgt, o->tgt_path)))
        goto done;
    if ((rc = db_bulk_mode(db, 1)))
        goto done;
    bulk = 1;
    if ((rc = db_begin(db)))
        goto done;
    in_tx = 1;
    rc = db_corpus_create(db, out->name, out->split, out->src_lang, out->tgt_lang, o->src_path,
                          o->tgt_path, &out->corpus_id);
    if (rc)
        goto done;
    int64_t lineno = 0;
    for (;;) {
        int a = input_next(&src), b;
        if (a < 0) {
            rc = a;
            goto done;
        }
        if ((b = input_next(&tgt)) < 0) {
            rc = b;
            goto done;
        }
        if (!a || !b) {
            if (a == b)
                break;
            /* one file ended first: count the other's remaining lines for the message */
            int64_t n_src = lineno + a, n_tgt = lineno + b;
            if ((rc = input_count_rest(a ? &src : &tgt, a ? &n_src : &n_tgt)))
                goto done;
            rc = sl_err(SL_EINVAL, "%s has %lld lines but %s has %lld: the files must be line-aligned",
                        src.path, (long long)n_src, tgt.path, (long long)n_tgt);
            goto done;
        }
        lineno++;
        const char *s, *t;
        size_t ns, nt;
        if ((rc = clean_line(&src, lineno, &s, &ns)) || (rc = clean_line(&tgt, lineno, &t, &nt)))
            goto done;
        int es = blank(s, ns), et = blank(t, nt);
        if (es || et) {
            if (es && et)
                out->n_skip_both++;
            else if (es)
                out->n_skip_src++;
            else
                out->n_skip_tgt++;
        } else {
            if ((rc = db_pair_insert(db, out->corpus_id, lineno, s, ns, t, nt)))
                goto done;
            out->n_pairs++;
        }
        if (o->progress && lineno % PROGRESS_EVERY == 0)
            o->progress(o->progress_ctx, lineno);
    }
    out->n_lines = lineno;
    rc = db_corpus_finish(db, out->corpus_id, out->n_pairs,
                          out->n_skip_src + out->n_skip_tgt + out->n_skip_both);
    if (!rc)
        rc = db_commit(db);
    if (!rc)
        in_tx = 0;
done:
    if (in_tx)
        db_rollback(db);
    if (bulk) {
        int rc2 = db_bulk_mode(db, 0);
        if (!rc)
            rc = rc2;
    }
    input_close(&src);
    input_close(&tgt);
    if (rc)
        out->corpus_id = 0;
    return rc;
}
