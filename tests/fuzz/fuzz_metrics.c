/* tests/fuzz/fuzz_metrics.c: fuzz target for BLEU and chrF (eval/bleu.h, eval/chrf.h). Input: byte 0
 * chooses the options (tokenizer, smoothing, lowercase, effective order, chrF++, whitespace), the rest
 * is split at NUL bytes into the hypothesis and up to 4 references. Properties: no crash on any bytes;
 * invalid UTF-8 is refused with SL_EUTF8, references that are all empty with SL_EINVAL; accepted
 * segments give finite scores in [0, 100] (corpus and sentence level); a hypothesis scored against
 * itself has chrF 100 (or 0 when nothing is left of it to count). */
#include "tests/fuzz/fuzz_common.h"

#include "eval/bleu.h"
#include "eval/chrf.h"
#include "util/err.h"
#include "util/utf8.h"

#include <math.h>
#include <string.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    return 0;
}

#define MAX_REFS 4

static void check_score(double s, const char *what)
{
    FUZZ_CHECK(isfinite(s) && s >= 0 && s <= 100 + 1e-9, "%s score %g", what, s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    const unsigned o = data[0];
    const char *parts[1 + MAX_REFS];
    size_t lens[1 + MAX_REFS], n = 0;
    const char *s = (const char *)data + 1, *end = (const char *)data + size;
    while (n < 1 + MAX_REFS) {
        const char *z = memchr(s, '\0', (size_t)(end - s));
        parts[n] = s;
        lens[n] = (size_t)((z ? z : end) - s);
        n++;
        if (!z)
            break;
        s = z + 1;
    }
    if (n < 2) { /* no NUL: the text is its own reference */
        parts[1] = parts[0];
        lens[1] = lens[0];
        n = 2;
    }
    int valid = 1;
    for (size_t i = 0; i < n; i++)
        valid &= utf8_valid(parts[i], lens[i], NULL);

    struct bleu_opts bo;
    bleu_opts_default(&bo);
    bo.tok = (enum bleu_tok)(o % 3);
    bo.smooth = (enum bleu_smooth)((o >> 2) % 4);
    bo.lowercase = (o >> 4) & 1;
    bo.effective_order = (o >> 5) & 1;
    struct bleu *b = bleu_create(&bo);
    FUZZ_CHECK(b, "bleu_create: %s", sl_errmsg());
    struct chrf_opts co;
    chrf_opts_default(&co);
    co.word_order = (o >> 6) & 1 ? 2 : 0;
    co.whitespace = (o >> 7) & 1;
    co.lowercase = bo.lowercase;
    struct chrf *c = chrf_create(&co);
    FUZZ_CHECK(c, "chrf_create: %s", sl_errmsg());

    int any_ref = 0;
    for (size_t i = 1; i < n; i++)
        any_ref |= lens[i] > 0;
    const int brc = bleu_add(b, parts[0], lens[0], parts + 1, lens + 1, n - 1);
    const int crc = chrf_add(c, parts[0], lens[0], parts + 1, lens + 1, n - 1);
    const int expect = !valid ? SL_EUTF8 : !any_ref ? SL_EINVAL : 0;
    if (valid)
        FUZZ_CHECK(brc == expect && crc == expect, "bleu %d chrf %d, expected %d (%s)", brc, crc, expect,
                   sl_errmsg());
    else
        FUZZ_CHECK(brc < 0 && crc < 0, "invalid UTF-8 accepted: bleu %d chrf %d", brc, crc);
    if (brc == 0) {
        struct bleu_score bs;
        bleu_score(b, &bs);
        check_score(bs.score, "BLEU");
        struct bleu_stats seg;
        FUZZ_CHECK(bleu_segment(b, parts[0], lens[0], parts + 1, lens + 1, n - 1, &seg) == 0, "segment");
        struct bleu_opts so = bo;
        so.effective_order = 1;
        bleu_compute(&seg, &so, &bs);
        check_score(bs.score, "sentence BLEU");
        struct metric_result r;
        metric_result_init(&r);
        FUZZ_CHECK(bleu_report(b, &r) == 0, "bleu_report: %s", sl_errmsg());
        metric_result_free(&r);
    }
    if (crc == 0) {
        check_score(chrf_score(c), "chrF");
        struct metric_result r;
        metric_result_init(&r);
        FUZZ_CHECK(chrf_report(c, &r) == 0, "chrf_report: %s", sl_errmsg());
        metric_result_free(&r);
    }
    if (valid && lens[0] > 0) {
        struct chrf *self = chrf_create(&co);
        FUZZ_CHECK(self, "chrf_create: %s", sl_errmsg());
        FUZZ_CHECK(chrf_add(self, parts[0], lens[0], parts, lens, 1) == 0, "chrf self: %s", sl_errmsg());
        const double cs = chrf_score(self);
        FUZZ_CHECK(cs == 0 || fabs(cs - 100) < 1e-9, "chrF of a text against itself: %.17g", cs);
        chrf_free(self);
    }
    bleu_free(b);
    chrf_free(c);
    return 0;
}
