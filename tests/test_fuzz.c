/* tests/test_fuzz.c: replays the fuzz targets' seed corpora (tests/fuzz/seeds/TARGET/) and every
 * committed reproducer of a finding (tests/fuzz/regress/TARGET/) through the targets, built without
 * libFuzzer (tests/fuzz/meson.build renames their entry points to fuzz_TARGET_init / fuzz_TARGET_one).
 * A target reports a finding by aborting (or through the sanitizers in the ASan build), which fails
 * that target's test. tools/fuzz.sh runs the targets under libFuzzer. */
#include <criterion/criterion.h>

#include "tests/helpers.h"

#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef int (*fuzz_init_fn)(int *argc, char ***argv);
typedef int (*fuzz_one_fn)(const uint8_t *data, size_t size);

#define FUZZ_DECL(t)                                                                                        \
    int fuzz_##t##_init(int *argc, char ***argv);                                                           \
    int fuzz_##t##_one(const uint8_t *data, size_t size);
FUZZ_DECL(normalize)
FUZZ_DECL(bpe)
FUZZ_DECL(import)
FUZZ_DECL(translate)
FUZZ_DECL(tok13a)
FUZZ_DECL(metrics)
FUZZ_DECL(db_open)
FUZZ_DECL(ckpt)

/* Runs every file of tests/fuzz/KIND/TARGET through one; returns how many. */
static size_t replay_dir(const char *kind, const char *target, fuzz_one_fn one)
{
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/tests/fuzz/%s/%s", SEQLITE_SRCDIR, kind, target);
    DIR *d = opendir(dir);
    if (!d)
        return 0; /* no reproducer yet */
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        char *path = th_path(dir, e->d_name);
        size_t len;
        char *data = th_read_file(path, &len);
        cr_assert_not_null(data, "cannot read %s", path);
        /* exactly len bytes, as libFuzzer passes them: a read past the end is caught by ASan */
        uint8_t *copy = malloc(len ? len : 1);
        cr_assert_not_null(copy);
        memcpy(copy, data, len);
        cr_log_info("%s", path);
        one(copy, len);
        free(copy);
        free(data);
        free(path);
        n++;
    }
    closedir(d);
    return n;
}

static void replay(const char *target, fuzz_init_fn init, fuzz_one_fn one)
{
    cr_assert_eq(init(NULL, NULL), 0);
    size_t seeds = replay_dir("seeds", target, one);
    replay_dir("regress", target, one);
    cr_assert_gt(seeds, 0, "no seeds in tests/fuzz/seeds/%s", target);
}

#define FUZZ_TEST(t)                                                                                        \
    Test(fuzz_replay, t) { replay(#t, fuzz_##t##_init, fuzz_##t##_one); }
FUZZ_TEST(normalize)
FUZZ_TEST(bpe)
FUZZ_TEST(import)
FUZZ_TEST(translate)
FUZZ_TEST(tok13a)
FUZZ_TEST(metrics)
FUZZ_TEST(db_open)
FUZZ_TEST(ckpt)
