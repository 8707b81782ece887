/* tests/fuzz/fuzz_tok13a.c: fuzz target for sacreBLEU's 13a tokenizer (eval/tok13a.h). Input: the text
 * (any bytes). Properties: no crash on any bytes; for valid UTF-8 the output is valid UTF-8, has no
 * leading, trailing or doubled space, and is the same when the tokenizer struct is reused. */
#include "tests/fuzz/fuzz_common.h"

#include "eval/tok13a.h"
#include "util/err.h"
#include "util/sbuf.h"
#include "util/utf8.h"

#include <string.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *s = (const char *)data;
    struct tok13a t;
    tok13a_init(&t);
    struct sbuf a, b;
    sbuf_init(&a);
    sbuf_init(&b);
    const int rc = tok13a_tokenize(&t, s, size, &a);
    const int rc2 = tok13a_tokenize(&t, s, size, &b);
    FUZZ_CHECK(rc == rc2, "status differs on reuse: %d %d", rc, rc2);
    if (rc == 0) {
        FUZZ_CHECK(a.len == b.len && (!a.len || memcmp(a.data, b.data, a.len) == 0), "output differs on reuse");
        FUZZ_CHECK(!a.data || a.data[a.len] == '\0', "not NUL-terminated");
        if (utf8_valid(s, size, NULL)) {
            FUZZ_CHECK(utf8_valid(a.data, a.len, NULL), "invalid UTF-8 out of valid UTF-8");
            FUZZ_CHECK(a.len == 0 || (a.data[0] != ' ' && a.data[a.len - 1] != ' '), "outer space");
            for (size_t i = 1; i < a.len; i++)
                FUZZ_CHECK(!(a.data[i] == ' ' && a.data[i - 1] == ' '), "double space at %zu", i);
        }
    }
    tok13a_free(&t);
    sbuf_free(&a);
    sbuf_free(&b);
    return 0;
}
