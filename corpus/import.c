/* corpus/import.c: streams two line-aligned files (plain or gzip) into one new corpus (see import.h).
 * Memory is two chunks and two line buffers whatever the file size; the whole import is one BEGIN
 * IMMEDIATE transaction rolled back on any error, so a failed import leaves the database exactly as it
 * was. Every line is checked with util/utf8.h (the project's one validator; its offsets name the bad
 * byte in the message).
 * ref: Unicode 15 section 3.9 table 3-7 (the only well-formed UTF-8 byte sequences). */
#include "corpus/import.h"

#include "corpus/db.h"
#include "util/err.h"
#include "util/utf8.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>
#include <zlib.h>

#define PROGRESS_EVERY 100000
#define FILE_BUFFER (1 << 20)

/* The base name of path without a trailing ".gz" (a compressed file is named as its content):
 * *len bytes from the returned pointer. */
static const char *base_name(const char *path, size_t *len)
{
    const char *slash = strrchr(path, '/');
    const char *base = slash ? slash + 1 : path;
    size_t n = strlen(base);
    if (n > 3 && strcmp(base + n - 3, ".gz") == 0)
        n -= 3;
    *len = n;
    return base;
}

/* The last '.' of base[0..n) that is not its first byte, or NULL. */
static const char *last_dot(const char *base, size_t n)
{
    for (size_t i = n; i-- > 1;)
        if (base[i] == '.')
            return base + i;
    return NULL;
}

void import_default_name(const char *src_path, const char *split, char *out, size_t cap)
{
    size_t n;
    const char *base = base_name(src_path, &n);
    const char *dot = last_dot(base, n);
    size_t stem = dot ? (size_t)(dot - base) : n;
    if (stem == 0 || (strlen(split) == stem && strncmp(base, split, stem) == 0))
        snprintf(out, cap, "%s", split);
    else
        snprintf(out, cap, "%.*s-%s", (int)stem, base, split);
}

/* The extension of path into out (4 bytes) when it is 2-3 ASCII letters: 1, else 0. */
static int lang_ext(const char *path, char out[4])
{
    size_t n;
    const char *base = base_name(path, &n);
    const char *dot = last_dot(base, n);
    if (!dot)
        return 0;
    size_t k = n - (size_t)(dot + 1 - base);
    if (k < 2 || k > 3)
        return 0;
    for (size_t i = 0; i < k; i++) {
        char c = dot[1 + i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')))
            return 0;
        out[i] = c;
    }
    out[k] = '\0';
    /* common file extensions that are not language codes */
    static const char *const not_langs[] = {"txt", "tsv", "csv", "gz", "xz", "bz2", "raw", "tok", "bpe",
                                            "src", "tgt", "dat", "out", "log"};
    for (size_t i = 0; i < sizeof not_langs / sizeof not_langs[0]; i++)
        if (strcmp(out, not_langs[i]) == 0)
            return 0;
    return 1;
}

void import_default_langs(const char *src_path, const char *tgt_path, char *src_out, char *tgt_out,
                          size_t cap)
{
    char a[4], b[4];
    if (lang_ext(src_path, a) && lang_ext(tgt_path, b) && strcmp(a, b) != 0) {
        snprintf(src_out, cap, "%s", a);
        snprintf(tgt_out, cap, "%s", b);
    } else {
        snprintf(src_out, cap, "src");
        snprintf(tgt_out, cap, "tgt");
    }
}

/* One input file and its current line. Read through zlib's gzread, which inflates gzip data (by its
 * magic bytes, whatever the name) and passes other files through unchanged; lines are cut from a
 * fixed chunk with memchr and copied into one growing buffer (no length limit; NUL bytes kept, so
 * clean_line can name them). The path "-" is standard input, named "stdin" in messages. */
struct input {
    const char *path; /* for messages */
    gzFile f;
    char *chunk;      /* (FILE_BUFFER) bytes read and not yet cut into lines: [pos, have) */
    size_t pos, have;
    int eof;
    char *line;       /* (cap) the current line without its '\n' (len bytes) */
    size_t len, cap;
};

static int input_open(struct input *in, const char *path)
{
    int is_stdin = strcmp(path, "-") == 0;
    memset(in, 0, sizeof *in);
    in->path = is_stdin ? "stdin" : path;
    if (!(in->chunk = malloc(FILE_BUFFER)))
        return sl_err(SL_ENOMEM, "out of memory");
    int fd = is_stdin ? dup(STDIN_FILENO) : open(path, O_RDONLY);
    if (fd < 0)
        return sl_err(SL_EIO, "%s: cannot read: %s", in->path, strerror(errno));
    if (!(in->f = gzdopen(fd, "rb"))) {
        close(fd);
        return sl_err(SL_ENOMEM, "%s: out of memory", in->path);
    }
    gzbuffer(in->f, FILE_BUFFER);
    return 0;
}

static void input_close(struct input *in)
{
    if (in->f)
        gzclose_r(in->f);
    free(in->chunk);
    free(in->line);
    in->line = in->chunk = NULL;
    in->f = NULL;
}

/* zlib's message without its "<fd:N>: " prefix (gzdopen names the file by its descriptor). */
static const char *gz_message(gzFile f, int *zerr)
{
    const char *msg = gzerror(f, zerr);
    const char *colon = strstr(msg, ": ");
    return colon ? colon + 2 : msg;
}

/* Refills the chunk: 0 (in->eof set at the end of the file) or SL_EIO naming the file. */
static int input_fill(struct input *in)
{
    int n = gzread(in->f, in->chunk, FILE_BUFFER);
    if (n < 0) {
        int zerr;
        const char *msg = gz_message(in->f, &zerr);
        if (zerr == Z_ERRNO)
            return sl_err(SL_EIO, "%s: read error: %s", in->path, strerror(errno ? errno : EIO));
        return sl_err(SL_EIO, "%s: corrupt gzip data (%s)", in->path, msg);
    }
    if (n == 0) {
        /* zlib reports a gzip stream cut short only here (Z_BUF_ERROR), not as a failed read */
        int zerr;
        const char *msg = gz_message(in->f, &zerr);
        if (zerr == Z_BUF_ERROR)
            return sl_err(SL_EIO, "%s: truncated gzip file (%s)", in->path, msg);
    }
    in->pos = 0;
    in->have = (size_t)n;
    in->eof = n == 0;
    return 0;
}

/* Reads the next line: 1 read, 0 end of file, < 0 error. A last line without '\n' counts. */
static int input_next(struct input *in)
{
    in->len = 0;
    for (;;) {
        if (in->pos == in->have) {
            if (in->eof)
                return in->len > 0;
            int rc = input_fill(in);
            if (rc)
                return rc;
            continue;
        }
        const char *p = in->chunk + in->pos;
        size_t avail = in->have - in->pos;
        const char *nl = memchr(p, '\n', avail);
        size_t take = nl ? (size_t)(nl - p) : avail;
        if (in->len + take + 1 > in->cap) {
            size_t cap = in->cap ? in->cap : 256;
            while (cap < in->len + take + 1)
                cap *= 2;
            char *b = realloc(in->line, cap);
            if (!b)
                return sl_err(SL_ENOMEM, "%s: out of memory for a line of %zu bytes", in->path,
                              in->len + take);
            in->line = b;
            in->cap = cap;
        }
        memcpy(in->line + in->len, p, take);
        in->len += take;
        in->pos += take + (nl != NULL);
        if (nl)
            return 1;
    }
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
