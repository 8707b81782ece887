/* tests/fuzz/fuzz_translate.c: fuzz target for translation of stdin lines (what `seqlite translate`
 * does, tools/cmd_translate.c): the input after byte 0 is read line by line with sbuf_getline (a
 * trailing CR dropped, as translate does) and translated with translator_run by a tiny random model
 * loaded with ckpt_model_load from a database made in LLVMFuzzerInitialize. Byte 0 chooses the model
 * (plain or attention), the beam, n-best and the sub-batch size. Properties: no crash on any bytes; a
 * line's status is SL_EUTF8 exactly when it is invalid UTF-8; a valid line gets 1..nbest hypotheses
 * (none when empty), each valid UTF-8, NUL-terminated, without '\n' or '\r', at most max_len_cap
 * tokens, best first. */
#include "tests/fuzz/fuzz_common.h"

#include "corpus/db.h"
#include "model/checkpoint.h"
#include "translate/translator.h"
#include "util/err.h"
#include "util/sbuf.h"
#include "util/utf8.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_LINES 16
#define LEN_CAP 12

static struct ckpt_model models[2];
static struct translator *tr[2][3][2]; /* model, beam - 1, batch size choice */

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    for (int a = 0; a < 2; a++) {
        struct db *db;
        FUZZ_CHECK(db_open(fuzz_model_db(a), DB_READ, &db) == 0, "db_open: %s", sl_errmsg());
        FUZZ_CHECK(ckpt_model_load(db, "last", &models[a]) == 0, "load: %s", sl_errmsg());
        db_close(db);
        for (int k = 0; k < 3; k++)
            for (int bs = 0; bs < 2; bs++) {
                struct translate_opts o;
                translate_opts_default(&o);
                o.beam = (size_t)k + 1;
                o.nbest = o.beam;
                o.max_len_cap = LEN_CAP;
                o.batch = bs ? 3 : 1;
                o.threads = 1;
                o.src_eos = models[a].src_eos;
                tr[a][k][bs] = translator_create(&models[a].model, models[a].w, models[a].src_bpe,
                                                 models[a].tgt_bpe, &o);
                FUZZ_CHECK(tr[a][k][bs], "translator: %s", sl_errmsg());
            }
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    const unsigned o = data[0];
    struct translator *t = tr[o & 1][((o >> 1) & 3) % 3][(o >> 3) & 1];
    FILE *f = fmemopen((void *)(data + 1), size - 1, "rb");
    FUZZ_CHECK(f, "fmemopen");
    struct sbuf line;
    sbuf_init(&line);
    char *buf[MAX_LINES];
    const char *lines[MAX_LINES];
    size_t lens[MAX_LINES], n = 0;
    int rc;
    while (n < MAX_LINES && (rc = sbuf_getline(&line, f)) == 1) {
        size_t len = line.len;
        if (len && line.data[len - 1] == '\r')
            len--;
        buf[n] = malloc(len ? len : 1); /* exactly len bytes: a read past the line is caught */
        FUZZ_CHECK(buf[n], "out of memory");
        memcpy(buf[n], line.data, len);
        lines[n] = buf[n];
        lens[n++] = len;
    }
    fclose(f);
    sbuf_free(&line);
    if (n) {
        FUZZ_CHECK(translator_run(t, lines, lens, n) == 0, "translator_run: %s", sl_errmsg());
        const size_t nbest = translator_opts(t)->nbest;
        for (size_t i = 0; i < n; i++) {
            const struct translate_result *r = translator_result(t, i);
            const int valid = utf8_valid(lines[i], lens[i], NULL);
            FUZZ_CHECK((r->status == SL_EUTF8) == !valid && (r->status == 0) == (valid != 0),
                       "line %zu: status %d, valid %d", i, r->status, valid);
            if (!valid || lens[i] == 0) {
                FUZZ_CHECK(r->n_hyps == 0, "line %zu: %zu hypotheses for an empty or invalid line", i, r->n_hyps);
                continue;
            }
            FUZZ_CHECK(r->n_hyps >= 1 && r->n_hyps <= nbest, "line %zu: %zu hypotheses", i, r->n_hyps);
            for (size_t k = 0; k < r->n_hyps; k++) {
                const struct translate_hyp *h = &r->hyps[k];
                FUZZ_CHECK(h->text[h->len] == '\0', "hypothesis not NUL-terminated");
                FUZZ_CHECK(utf8_valid(h->text, h->len, NULL), "hypothesis is not valid UTF-8");
                FUZZ_CHECK(!memchr(h->text, '\n', h->len) && !memchr(h->text, '\r', h->len),
                           "hypothesis holds a line break");
                FUZZ_CHECK(h->n_tokens <= LEN_CAP, "hypothesis of %zu tokens", h->n_tokens);
                FUZZ_CHECK(k == 0 || h->score <= r->hyps[k - 1].score, "hypotheses not best first");
            }
        }
    }
    for (size_t i = 0; i < n; i++)
        free(buf[i]);
    return 0;
}
