/* tests/test_util.c: util/ — error messages, the RNG, the byte buffer and line reader. */
#include <criterion/criterion.h>

#include "tests/helpers.h"
#include "util/err.h"
#include "util/rng.h"
#include "util/sbuf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

Test(err, message_and_prefix)
{
    cr_assert_eq(sl_err(SL_EINVAL, "line %d: bad", 7), SL_EINVAL);
    cr_assert_str_eq(sl_errmsg(), "line 7: bad");
    sl_err_prefix(SL_EINVAL, "file %s", "a.txt");
    cr_assert_str_eq(sl_errmsg(), "file a.txt: line 7: bad");
}

Test(rng, seeded_sequences_repeat_and_differ)
{
    struct rng a, b, c;
    rng_seed(&a, 42);
    rng_seed(&b, 42);
    rng_seed(&c, 43);
    int same_c = 1;
    for (int i = 0; i < 100; i++) {
        uint64_t x = rng_next(&a);
        cr_assert_eq(x, rng_next(&b));
        same_c &= x == rng_next(&c);
    }
    cr_assert_not(same_c);
}

Test(rng, uniform_and_below_in_range_and_unbiased)
{
    struct rng r;
    rng_seed(&r, 1);
    int hist[10] = {0};
    double sum = 0;
    for (int i = 0; i < 100000; i++) {
        float u = rng_uniform(&r);
        cr_assert(u >= 0.0f && u < 1.0f);
        sum += u;
        uint64_t k = rng_below(&r, 10);
        cr_assert_lt(k, 10);
        hist[k]++;
    }
    cr_assert_float_eq(sum / 100000, 0.5, 0.01);
    for (int k = 0; k < 10; k++)
        cr_assert(hist[k] > 9500 && hist[k] < 10500, "bucket %d has %d", k, hist[k]);
}

Test(rng, shuffle_is_a_permutation)
{
    struct rng r;
    rng_seed(&r, 7);
    int a[50];
    for (int i = 0; i < 50; i++)
        a[i] = i;
    rng_shuffle(&r, a, 50, sizeof a[0]);
    int seen[50] = {0}, moved = 0;
    for (int i = 0; i < 50; i++) {
        seen[a[i]]++;
        moved += a[i] != i;
    }
    for (int i = 0; i < 50; i++)
        cr_assert_eq(seen[i], 1);
    cr_assert_gt(moved, 25);
}

Test(sbuf, getline_handles_long_lines_nul_and_missing_final_newline)
{
    char *dir = th_tmpdir();
    char *p = th_path(dir, "f");
    size_t big = 100000;
    char *data = malloc(big + 16);
    memset(data, 'x', big);
    memcpy(data + big, "\na\0b\nlast", 10);
    cr_assert_eq(th_write_file(p, data, big + 10), 0);
    FILE *f = fopen(p, "rb");
    struct sbuf b;
    sbuf_init(&b);
    cr_assert_eq(sbuf_getline(&b, f), 1);
    cr_assert_eq(b.len, big);
    cr_assert_eq(sbuf_getline(&b, f), 1);
    cr_assert_eq(b.len, 3);
    cr_assert_eq(memcmp(b.data, "a\0b", 3), 0);
    cr_assert_eq(sbuf_getline(&b, f), 1);
    cr_assert_str_eq(b.data, "last");
    cr_assert_eq(sbuf_getline(&b, f), 0);
    fclose(f);
    sbuf_free(&b);
    free(data);
    free(p);
    th_rmdir(dir);
    free(dir);
}

Test(sbuf, printf_appends)
{
    struct sbuf b;
    sbuf_init(&b);
    sbuf_printf(&b, "%d-%s", 12, "ab");
    sbuf_append(&b, "!", 1);
    cr_assert_str_eq(b.data, "12-ab!");
    cr_assert_eq(b.len, 6);
    sbuf_free(&b);
}
