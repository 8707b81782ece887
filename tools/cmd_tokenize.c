/* tools/cmd_tokenize.c: `seqlite tokenize DB`: encode standard input line by line with the newest
 * vocabulary (token surfaces or ids), or decode lines of ids back to text. Always one output line
 * per input line: a bad line gives an empty line, a message naming it on stderr, and exit status 1
 * at the end. ref: tokenizer/bpe.h. */
#include "tools/cli.h"

#include "corpus/db.h"
#include "corpus/vocab_store.h"
#include "util/err.h"
#include "util/sbuf.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Parses the ids of line into ids; 0 or SL_EINVAL with a message. */
static int parse_ids(const struct bpe *b, const char *s, size_t len, struct tok_ids *ids)
{
    ids->n = 0;
    size_t i = 0;
    while (i < len) {
        while (i < len && (s[i] == ' ' || s[i] == '\t'))
            i++;
        if (i >= len)
            break;
        size_t j = i;
        while (j < len && s[j] != ' ' && s[j] != '\t')
            j++;
        char word[32];
        if (j - i >= sizeof word)
            return sl_err(SL_EINVAL, "'%.*s' is not a token id", (int)(j - i > 40 ? 40 : j - i), s + i);
        memcpy(word, s + i, j - i);
        word[j - i] = '\0';
        char *end = NULL;
        errno = 0;
        long long v = strtoll(word, &end, 10);
        if (errno || end == word || *end)
            return sl_err(SL_EINVAL, "'%s' is not a token id", word);
        if (v < 0 || (unsigned long long)v >= bpe_size(b))
            return sl_err(SL_EINVAL, "id %lld is out of range (vocabulary of %zu)", v, bpe_size(b));
        if (ids->n == ids->cap) {
            size_t cap = ids->cap ? ids->cap * 2 : 256;
            int32_t *p = realloc(ids->ids, cap * sizeof *p);
            if (!p)
                return sl_err(SL_ENOMEM, "out of memory");
            ids->ids = p;
            ids->cap = cap;
        }
        ids->ids[ids->n++] = (int32_t)v;
        i = j;
    }
    return 0;
}

static int run(int argc, char **argv)
{
    int as_ids = 0, decode = 0;
    const char *side = "src";
    const struct cli_opt opts[] = {
        {"ids", CLI_BOOL, &as_ids, 0, 0},
        {"decode", CLI_BOOL, &decode, 0, 0},
        {"side", CLI_STR, &side, 0, 0},
        {NULL, 0, NULL, 0, 0},
    };
    char *pos[1];
    int npos = 0;
    int rc = cli_parse(&cmd_tokenize, argc, argv, opts, pos, 1, &npos);
    if (rc == CLI_HELP_SHOWN)
        return 0;
    if (rc)
        return rc;
    if (npos != 1)
        return cli_usage_error(&cmd_tokenize, "expected DB");
    if (strcmp(side, "src") && strcmp(side, "tgt"))
        return cli_usage_error(&cmd_tokenize, "--side: '%s' is not src or tgt", side);
    if (as_ids && decode)
        return cli_usage_error(&cmd_tokenize, "--ids and --decode exclude each other");

    struct db *db = NULL;
    struct bpe *b = NULL;
    if ((rc = db_open(pos[0], DB_READ, &db)))
        return cli_fail_status(&cmd_tokenize, rc);
    rc = corpus_vocab_load_latest(db, side, &b, NULL);
    db_close(db);
    if (rc)
        return cli_fail_status(&cmd_tokenize, rc);

    struct sbuf line, out, text;
    sbuf_init(&line);
    sbuf_init(&out);
    sbuf_init(&text);
    struct tok_ids ids;
    tok_ids_init(&ids);
    int status = 0;
    size_t lineno = 0;
    for (;;) {
        int got = sbuf_getline(&line, stdin);
        if (got == 0)
            break;
        if (got < 0) {
            status = cli_fail(&cmd_tokenize, "cannot read standard input");
            break;
        }
        lineno++;
        if (line.len && line.data[line.len - 1] == '\r')
            line.data[--line.len] = '\0';
        sbuf_reset(&out);
        if (decode) {
            if ((rc = parse_ids(b, line.data, line.len, &ids)) || (rc = bpe_decode(b, ids.ids, ids.n, &text)) ||
                (rc = tok_utf8_repair(text.data, text.len, &out))) {
                status = cli_fail(&cmd_tokenize, "line %zu: %s", lineno, sl_errmsg());
                sbuf_reset(&out);
            }
        } else if ((rc = bpe_encode(b, line.data, line.len, &ids))) {
            status = cli_fail(&cmd_tokenize, "line %zu: %s", lineno, sl_errmsg());
        } else {
            for (size_t i = 0; i < ids.n && rc == 0; i++) {
                if (i)
                    rc = sbuf_putc(&out, ' ');
                if (rc == 0)
                    rc = as_ids ? sbuf_printf(&out, "%d", (int)ids.ids[i]) : bpe_token_surface(b, ids.ids[i], &out);
            }
            if (rc) {
                status = cli_fail(&cmd_tokenize, "line %zu: %s", lineno, sl_errmsg());
                sbuf_reset(&out);
            }
        }
        if (fwrite(out.data ? out.data : "", 1, out.len, stdout) != out.len || putchar('\n') == EOF) {
            status = cli_fail(&cmd_tokenize, "cannot write to standard output");
            break;
        }
    }
    if (fflush(stdout) != 0)
        status = cli_fail(&cmd_tokenize, "cannot write to standard output");
    sbuf_free(&line);
    sbuf_free(&out);
    sbuf_free(&text);
    tok_ids_free(&ids);
    bpe_free(b);
    return status;
}

const struct cli_cmd cmd_tokenize = {
    .name = "tokenize",
    .summary = "encode stdin with the vocabulary (or decode ids)",
    .usage = "usage: seqlite tokenize DB [--ids] [--side src|tgt] [--decode] < TEXT\n"
             "  Encodes each line of standard input with the newest vocabulary of DB (a joint one\n"
             "  serves both sides) and prints its tokens separated by spaces (a space inside the text\n"
             "  shows as \"\xE2\x96\x81\", bytes of characters the vocabulary lacks as <0xE4>), or their ids\n"
             "  with --ids. A trailing CR is dropped. With --decode, reads lines of ids and prints the\n"
             "  text. One output line per input line; a bad line (invalid UTF-8, a bad id) prints an\n"
             "  empty line and a message naming it, and the exit status is 1.\n"
             "  --ids        print token ids instead of surfaces\n"
             "  --side S     use the vocabulary of src (default) or tgt\n"
             "  --decode     read ids, print text\n",
    .run = run,
};
