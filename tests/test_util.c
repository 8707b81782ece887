/* tests/test_util.c: util/ — error messages, the RNG and the 64-bit mixer, growable arrays, the monotonic
 * clock, the byte buffer and line reader, UTF-8, big buffers, jobs, the JSON writer. */
#include <criterion/criterion.h>

#include "tests/helpers.h"
#include "util/bigmem.h"
#include "util/clock.h"
#include "util/err.h"
#include "util/jobs.h"
#include "util/json.h"
#include "util/rng.h"
#include "util/sbuf.h"
#include "util/utf8.h"
#include "util/vec.h"

#include <math.h>
#include <omp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

Test(bigmem, alignment_by_size_and_every_byte_writable)
{
    const size_t sizes[] = {1, 63, 64, 4095, (size_t)4 << 20, ((size_t)4 << 20) + 1, (size_t)9 << 20};
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
        unsigned char *p = big_alloc(sizes[i]);
        cr_assert_not_null(p);
        const size_t align = sizes[i] >= ((size_t)4 << 20) ? (size_t)2 << 20 : 64;
        cr_assert_eq((uintptr_t)p % align, 0, "%zu bytes at %p", sizes[i], (void *)p);
        memset(p, 0xA5, sizes[i]);
        cr_assert_eq(p[sizes[i] - 1], 0xA5);
        big_free(p);
    }
    cr_assert_null(big_alloc(0));
    cr_assert_null(big_alloc(SIZE_MAX));
    big_free(NULL);
}

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

Test(rng, fill_uniform_draws_what_single_draws_do)
{
    struct rng a, b;
    rng_seed(&a, 9);
    rng_seed(&b, 9);
    float u[300];
    rng_fill_uniform(&a, u, 0); /* no draw */
    rng_fill_uniform(&a, u, 300);
    for (int i = 0; i < 300; i++)
        cr_assert_eq(u[i], rng_uniform(&b), "draw %d", i);
    cr_assert_eq(memcmp(&a, &b, sizeof a), 0, "the state after the block differs");
    cr_assert_eq(rng_next(&a), rng_next(&b));
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

/* rng_mix64 is splitmix64's finaliser: splitmix64 from state 0 (the reference outputs of Vigna's
 * splitmix64.c) is rng_mix64(i * gamma), and rng_seed's state is those outputs. */
Test(rng, mix64_is_the_splitmix64_finaliser)
{
    static const uint64_t ref[4] = {0xe220a8397b1dcdafULL, 0x6e789e6aa1b965f4ULL, 0x06c45d188009454fULL,
                                    0xf88bb8a8724c81ecULL};
    struct rng r;
    rng_seed(&r, 0);
    for (uint64_t i = 0; i < 4; i++) {
        cr_assert_eq(rng_mix64((i + 1) * RNG_GOLDEN_GAMMA), ref[i], "output %d", (int)i);
        cr_assert_eq(r.s[i], ref[i], "state word %d", (int)i);
    }
    cr_assert_eq(rng_mix64(0), 0);
    /* the finaliser alone (value from an independent implementation), and no collisions among nearby keys */
    cr_assert_eq(rng_mix64(1), 0x5692161d100b05e5ULL);
    uint64_t h[256];
    for (int i = 0; i < 256; i++) {
        h[i] = rng_mix64((uint64_t)i);
        for (int j = 0; j < i; j++)
            cr_assert_neq(h[i], h[j], "%d and %d collide", i, j);
    }
}

/* vec: reserve doubles from VEC_MIN_CAP and keeps the contents; resize is exact, shrinks and frees. */
Test(vec, reserve_grows_geometrically_and_keeps_contents)
{
    int32_t *a = NULL;
    size_t cap = 0;
    cr_assert_eq(vec_reserve(&a, &cap, 0, sizeof *a), 0);
    cr_assert(a == NULL && cap == 0, "need 0 must not allocate");
    cr_assert_eq(vec_reserve(&a, &cap, 1, sizeof *a), 0);
    cr_assert_eq(cap, VEC_MIN_CAP);
    for (int32_t i = 0; i < 1000; i++) {
        cr_assert_eq(vec_reserve(&a, &cap, (size_t)i + 1, sizeof *a), 0);
        a[i] = i * 7;
    }
    cr_assert_eq(cap, 1024);
    int32_t *same = a;
    cr_assert_eq(vec_reserve(&a, &cap, 1024, sizeof *a), 0);
    cr_assert(a == same && cap == 1024, "need <= cap must not reallocate");
    cr_assert_eq(vec_reserve(&a, &cap, 5000, sizeof *a), 0);
    cr_assert_eq(cap, 8192);
    for (int32_t i = 0; i < 1000; i++)
        cr_assert_eq(a[i], i * 7, "element %d", (int)i);
    free(a);
}

Test(vec, resize_is_exact_and_failure_leaves_the_array)
{
    double *a = NULL;
    cr_assert_eq(vec_resize(&a, 100, sizeof *a), 0);
    for (int i = 0; i < 100; i++)
        a[i] = i + 0.5;
    cr_assert_eq(vec_resize(&a, 10, sizeof *a), 0); /* shrink keeps the prefix */
    for (int i = 0; i < 10; i++)
        cr_assert_eq(a[i], i + 0.5);
    double *before = a;
    sl_err_clear();
    cr_assert_eq(vec_resize(&a, SIZE_MAX / 4, sizeof *a), SL_ENOMEM); /* n * elem overflows */
    cr_assert(a == before && a[9] == 9.5, "a failed resize must leave the array as it was");
    cr_assert(strstr(sl_errmsg(), "out of memory"), "message: %s", sl_errmsg());
    size_t cap = 10;
    cr_assert_eq(vec_reserve(&a, &cap, SIZE_MAX / 2 + 2, sizeof *a), SL_ENOMEM);
    cr_assert(a == before && cap == 10);
    cr_assert_eq(vec_resize(&a, 0, sizeof *a), 0);
    cr_assert_null(a);
}

Test(clock, monotonic_and_measures_a_sleep)
{
    double t0 = clock_now(), prev = t0;
    for (int i = 0; i < 1000; i++) {
        double t = clock_now();
        cr_assert_geq(t, prev, "the clock went back");
        prev = t;
    }
    struct timespec d = {0, 20 * 1000 * 1000};
    nanosleep(&d, NULL);
    double dt = clock_since(t0);
    cr_assert(dt >= 0.019 && dt < 60.0, "slept 0.02 s, measured %g s", dt);
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

/* ---- util/utf8 ---- */

/* utf8_valid's verdict: -1 when valid, else the offset it reports. */
static long bad_at(const char *s, size_t n)
{
    size_t bad = 12345;
    if (utf8_valid(s, n, &bad)) {
        cr_assert_eq(bad, 12345, "bad offset written on success");
        return -1;
    }
    return (long)bad;
}

/* Well-formedness by the definition (decode by the bit pattern, then range checks) rather than by
 * table 3-7's byte ranges as utf8_seqlen does: the length of the sequence at s[0..n), or 0. */
static size_t ref_seqlen(const unsigned char *s, size_t n)
{
    unsigned c = s[0];
    size_t len = c < 0x80 ? 1 : (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : (c & 0xF8) == 0xF0 ? 4 : 0;
    if (len == 0 || len > n)
        return 0;
    uint32_t cp = len == 1 ? c : len == 2 ? (c & 0x1F) : len == 3 ? (c & 0x0F) : (c & 0x07);
    for (size_t k = 1; k < len; k++) {
        if ((s[k] & 0xC0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[k] & 0x3F);
    }
    static const uint32_t min[5] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < min[len] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    return len;
}

/* One input and utf8_valid's expected verdict: -1 valid, else the offset of the first bad sequence. */
struct utf8_case {
    const char *s;
    size_t n;
    long want;
    const char *what;
};

static void check_cases(const struct utf8_case *c, size_t n)
{
    for (size_t i = 0; i < n; i++)
        cr_assert_eq(bad_at(c[i].s, c[i].n), c[i].want, "%s: got %ld, want %ld", c[i].what,
                     bad_at(c[i].s, c[i].n), c[i].want);
}

#define CASES(...)                                                                                     \
    do {                                                                                               \
        const struct utf8_case cases_[] = {__VA_ARGS__};                                               \
        check_cases(cases_, sizeof cases_ / sizeof cases_[0]);                                         \
    } while (0)

Test(utf8, valid_boundaries_pass)
{
    const char *long_text = "Gr\xc3\xbc\xc3\x9f" "e, long enough for the word loop \xe2\x82\xac";
    CASES({"", 0, -1, "empty"}, {"a\0b", 3, -1, "NUL is a code point"},
          {"\x7f\xc2\x80\xdf\xbf", 5, -1, "U+007F U+0080 U+07FF"},
          {"\xe0\xa0\x80\xed\x9f\xbf\xee\x80\x80\xef\xbf\xbf", 12, -1, "U+0800 U+D7FF U+E000 U+FFFF"},
          {"\xf0\x90\x80\x80\xf4\x8f\xbf\xbf", 8, -1, "U+10000 U+10FFFF"},
          {long_text, strlen(long_text), -1, "mixed text past the word loop"});
}

Test(utf8, overlong_forms_fail_at_their_lead_byte)
{
    CASES({"\xc0\x80", 2, 0, "NUL in two bytes"}, {"ab\xc1\xbf", 4, 2, "U+007F in two bytes"},
          {"abc\xe0\x80\xaf", 6, 3, "'/' in three bytes"}, {"\xe0\x9f\xbf", 3, 0, "U+07FF in three bytes"},
          {"0123456789\xf0\x80\x80\xaf", 14, 10, "'/' in four bytes"},
          {"\xf0\x8f\xbf\xbf", 4, 0, "U+FFFF in four bytes"});
}

Test(utf8, surrogates_and_code_points_above_10ffff_fail)
{
    CASES({"x\xed\xa0\x80", 4, 1, "U+D800"}, {"\xc3\xa4\xed\xbf\xbf", 5, 2, "U+DFFF after U+00E4"},
          {"\xf4\x90\x80\x80", 4, 0, "U+110000"}, {"abcdefgh\xf5\x80\x80\x80", 12, 8, "lead byte F5"},
          {"\xf7\xbf\xbf\xbf", 4, 0, "U+1FFFFF"}, {"ok\xff", 3, 2, "byte FF"}, {"\xfe", 1, 0, "byte FE"});
}

Test(utf8, truncated_and_stray_bytes_fail_where_the_sequence_starts)
{
    CASES({"abc\xe2\x82", 5, 3, "euro sign cut at the end"}, {"\xf0\x9f\x98", 3, 0, "emoji cut at the end"},
          {"\xc3", 1, 0, "lone two-byte lead"}, {"\xe2\x82x", 3, 0, "cut in the middle"},
          {"a\x80", 2, 1, "stray continuation byte"}, {"\xbf", 1, 0, "lone continuation byte"},
          {"\xc3\xa9\xa9", 3, 2, "one continuation byte too many"});
    cr_assert_eq(utf8_seqlen((const unsigned char *)"\xe2\x82\xac", 2), 0, "n limits the read");
}

Test(utf8, offsets_are_exact_at_every_position_of_the_ascii_word_loop)
{
    char buf[64];
    for (size_t pre = 0; pre < 40; pre++) {
        memset(buf, 'a', pre);
        memcpy(buf + pre, "\x80zzzzzzzzzz", 11);
        cr_assert_eq(bad_at(buf, pre + 11), (long)pre, "prefix %zu", pre);
        cr_assert_eq(utf8_ascii_len(buf, pre + 11), pre);
        cr_assert_eq(bad_at(buf, pre), -1);
        cr_assert_eq(utf8_ascii_len(buf, pre), pre);
        /* a valid two-byte character first, then the bad byte after pre more ASCII bytes */
        memcpy(buf, "\xc3\xa4", 2);
        memset(buf + 2, 'b', pre);
        buf[2 + pre] = (char)0xff;
        cr_assert_eq(bad_at(buf, pre + 3), (long)(pre + 2), "after U+00E4, prefix %zu", pre);
    }
}

Test(utf8, seqlen_matches_the_definition_for_every_short_sequence)
{
    unsigned char s[4];
    /* every 1-, 2- and 3-byte string (lengths measured with n = that length) */
    for (unsigned a = 0; a < 256; a++) {
        s[0] = (unsigned char)a;
        cr_assert_eq(utf8_seqlen(s, 1), ref_seqlen(s, 1), "%02x", a);
        for (unsigned b = 0; b < 256; b++) {
            s[1] = (unsigned char)b;
            cr_assert_eq(utf8_seqlen(s, 2), ref_seqlen(s, 2), "%02x %02x", a, b);
            if (a < 0xE0 || a > 0xEF)
                continue; /* three-byte leads only: the rest is decided by two bytes */
            for (unsigned c = 0; c < 256; c++) {
                s[2] = (unsigned char)c;
                if (utf8_seqlen(s, 3) != ref_seqlen(s, 3))
                    cr_assert_fail("%02x %02x %02x", a, b, c);
            }
        }
    }
    /* four-byte leads with every second byte and edge values in the last two */
    static const unsigned char edge[] = {0x00, 0x41, 0x7f, 0x80, 0x8f, 0x90, 0x9f, 0xa0, 0xbf, 0xc0, 0xff};
    for (unsigned a = 0xF0; a < 0x100; a++)
        for (unsigned b = 0; b < 256; b++)
            for (size_t c = 0; c < sizeof edge; c++)
                for (size_t d = 0; d < sizeof edge; d++) {
                    s[0] = (unsigned char)a, s[1] = (unsigned char)b, s[2] = edge[c], s[3] = edge[d];
                    if (utf8_seqlen(s, 4) != ref_seqlen(s, 4))
                        cr_assert_fail("%02x %02x %02x %02x", a, b, s[2], s[3]);
                }
}

Test(utf8, encode_decode_round_trip_every_scalar_value)
{
    char buf[4];
    for (int32_t cp = 0; cp <= 0x10FFFF; cp++) {
        if (cp == 0xD800)
            cp = 0xE000;
        size_t n = utf8_encode(cp, buf);
        size_t want = cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
        int32_t back = -1;
        if (n != want || utf8_seqlen((const unsigned char *)buf, n) != n ||
            utf8_decode((const unsigned char *)buf, n, &back) != n || back != cp)
            cr_assert_fail("U+%04X: %zu bytes, decoded U+%04X", (unsigned)cp, n, (unsigned)back);
    }
    cr_assert_eq(bad_at("\xf0\x9f\x98\x80", 4), -1);
}

Test(utf8, decode_never_reads_past_n)
{
    int32_t cp = 0;
    /* a lead byte announcing more bytes than there are is returned by itself */
    cr_assert_eq(utf8_decode((const unsigned char *)"\xe2\x82\xac", 2, &cp), 1);
    cr_assert_eq(cp, 0xE2);
    cr_assert_eq(utf8_decode((const unsigned char *)"\xf0\x9f\x98\x80", 3, &cp), 1);
    cr_assert_eq(cp, 0xF0);
    cr_assert_eq(utf8_decode((const unsigned char *)"\xc3\xa4", 2, &cp), 2);
    cr_assert_eq(cp, 0xE4);
}

/* jobs: every job runs once on a thread in range; a failure hands back the lowest failing job's status
 * and message to the caller, whatever the thread that ran it. */
struct jobs_probe {
    int runs[64];
    int threads[64];
    size_t fail_a, fail_b; /* jobs that fail (SIZE_MAX: none) */
};

static int jobs_probe_fn(void *ctx, size_t job, int thread)
{
    struct jobs_probe *p = ctx;
    p->runs[job]++;
    p->threads[job] = thread;
    if (job == p->fail_a || job == p->fail_b)
        return sl_err(job == p->fail_a ? SL_EIO : SL_EINVAL, "job %zu failed on thread %d", job, thread);
    return 0;
}

Test(jobs, every_job_runs_once_on_a_thread_in_range)
{
    for (int sched = 0; sched < 2; sched++)
        for (int nt = 1; nt <= 2; nt++) {
            struct jobs_probe p;
            memset(&p, 0, sizeof p);
            p.fail_a = p.fail_b = SIZE_MAX;
            cr_assert_eq(jobs_run(64, nt, (enum jobs_schedule)sched, jobs_probe_fn, &p), 0);
            for (size_t i = 0; i < 64; i++) {
                cr_assert_eq(p.runs[i], 1, "job %zu ran %d times", i, p.runs[i]);
                cr_assert(p.threads[i] >= 0 && p.threads[i] < nt);
                if (sched == JOBS_STATIC && omp_get_max_threads() >= nt)
                    cr_assert_eq(p.threads[i], (int)(i % (size_t)nt), "static: job %zu on thread %d", i,
                                 p.threads[i]);
            }
        }
    cr_assert_eq(jobs_run(0, 2, JOBS_DYNAMIC, jobs_probe_fn, NULL), 0);
}

Test(jobs, the_lowest_failing_job_status_and_message_reach_the_caller)
{
    for (int sched = 0; sched < 2; sched++)
        for (int nt = 1; nt <= 2; nt++) {
            struct jobs_probe p;
            memset(&p, 0, sizeof p);
            p.fail_a = 1; /* thread 1 under static scheduling with 2 threads */
            p.fail_b = 6;
            sl_err_clear();
            int rc = jobs_run(8, nt, (enum jobs_schedule)sched, jobs_probe_fn, &p);
            cr_assert_eq(rc, SL_EIO, "sched %d, %d threads: rc %d", sched, nt, rc);
            cr_assert(strstr(sl_errmsg(), "job 1 failed") != NULL, "message: '%s'", sl_errmsg());
        }
}

/* ---- the JSON writer ---- */

Test(json, strings_are_escaped_and_always_valid_utf8)
{
    struct sbuf b;
    sbuf_init(&b);
    const char s[] = "a\"b\\c\n\t\r\x01\x1f\x7f \xc3\xa4 \xe2\x82\xac \xf0\x9f\x98\x80 \xff\xc3 \xed\xa0\x80";
    cr_assert_eq(json_put_string(&b, s, sizeof s - 1), 0);
    cr_assert_str_eq(b.data, "\"a\\\"b\\\\c\\n\\t\\r\\u0001\\u001f\x7f \xc3\xa4 \xe2\x82\xac \xf0\x9f\x98\x80 "
                             "\\ufffd\\ufffd \\ufffd\\ufffd\\ufffd\"");
    sbuf_reset(&b);
    cr_assert_eq(json_put_string(&b, "x\0y", 3), 0); /* NUL is a control character */
    cr_assert_str_eq(b.data, "\"x\\u0000y\"");
    sbuf_free(&b);
}

Test(json, numbers_are_shortest_round_trip_and_null_when_not_finite)
{
    const double v[] = {0, -0.0, 1, 0.1, 117.79216, 1e300, -2.5e-10, 1.0 / 3, 4.96, NAN, INFINITY, -INFINITY};
    const char *want[] = {"0", "-0", "1", "0.1", "117.79216", "1e+300", "-2.5e-10", "0.3333333333333333",
                          "4.96", "null", "null", "null"};
    struct sbuf b;
    sbuf_init(&b);
    for (size_t i = 0; i < sizeof v / sizeof *v; i++) {
        sbuf_reset(&b);
        cr_assert_eq(json_put_real(&b, v[i]), 0);
        cr_assert_str_eq(b.data, want[i]);
        if (isfinite(v[i]))
            cr_assert_eq(strtod(b.data, NULL), v[i]);
    }
    sbuf_free(&b);
}

Test(json, writer_places_commas_and_colons)
{
    struct sbuf b;
    sbuf_init(&b);
    struct json_writer w;
    json_writer_init(&w, &b);
    json_object_begin(&w);
    json_key(&w, "a");
    json_array_begin(&w);
    json_int(&w, -3);
    json_real(&w, 0.5);
    json_string(&w, NULL);
    json_object_begin(&w);
    json_object_end(&w);
    json_array_begin(&w);
    json_array_end(&w);
    json_bool(&w, 1);
    json_null(&w);
    json_raw(&w, "[1,2]");
    json_array_end(&w);
    json_key(&w, "k\"ey");
    json_string(&w, "v");
    json_key(&w, "n");
    json_int(&w, INT64_MIN);
    json_object_end(&w);
    cr_assert_eq(json_writer_finish(&w), 0, "%s", sl_errmsg());
    cr_assert_str_eq(b.data, "{\"a\":[-3,0.5,null,{},[],true,null,[1,2]],\"k\\\"ey\":\"v\",\"n\":-9223372036854775808}");
    sbuf_free(&b);
}

Test(json, misuse_is_a_sticky_error)
{
    struct sbuf b;
    sbuf_init(&b);
    struct json_writer w;
    json_writer_init(&w, &b);
    json_object_begin(&w);
    json_int(&w, 1); /* a value without a key */
    cr_assert_eq(w.rc, SL_EINVAL);
    json_key(&w, "a");
    json_object_end(&w);
    cr_assert_eq(json_writer_finish(&w), SL_EINVAL);
    cr_assert_str_eq(b.data, "{"); /* nothing written after the failure */
    sbuf_reset(&b);
    json_writer_init(&w, &b);
    json_array_begin(&w);
    cr_assert_eq(json_writer_finish(&w), SL_EINVAL); /* left open */
    sbuf_reset(&b);
    json_writer_init(&w, &b);
    json_array_begin(&w);
    json_object_end(&w); /* closes the wrong kind */
    cr_assert_eq(json_writer_finish(&w), SL_EINVAL);
    sbuf_reset(&b);
    json_writer_init(&w, &b);
    for (int i = 0; i <= JSON_MAX_DEPTH; i++)
        json_array_begin(&w);
    cr_assert_eq(w.rc, SL_EINVAL);
    sbuf_free(&b);
}
