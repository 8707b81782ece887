/* tests/fuzz/fuzz_common.h: what the fuzz targets (tests/fuzz/fuzz_*.c) share: a scratch directory,
 * a failure that every harness reports (abort), a tiny BPE model learned from a fixed text, and a tiny
 * seqlite database with a corpus, a vocabulary, a run and one checkpoint.
 * Each target file defines LLVMFuzzerInitialize and LLVMFuzzerTestOneInput. Built with -Dfuzz=true
 * they are libFuzzer executables (tools/fuzz.sh); in the normal build tests/meson.build compiles them
 * with those two names changed to fuzz_<target>_init / fuzz_<target>_one, and tests/test_fuzz.c
 * replays the seeds and reproducers through them (so the suite needs no libFuzzer).
 * Ownership: everything returned lives until the process exits (the scratch directory is removed
 * then). Single-threaded. */
#ifndef SL_TESTS_FUZZ_COMMON_H
#define SL_TESTS_FUZZ_COMMON_H

#include "tokenizer/bpe.h"

#include <stddef.h>
#include <stdint.h>

/* Prints "fuzz: <message>" to stderr and aborts: a finding. */
void fuzz_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
#define FUZZ_CHECK(cond, ...)                                                                               \
    do {                                                                                                    \
        if (!(cond))                                                                                        \
            fuzz_fail(__VA_ARGS__);                                                                         \
    } while (0)

/* A private directory (under $SEQLITE_FUZZ_DIR if set, else /dev/shm when it exists, else $TMPDIR or
 * /tmp), created on the first call and removed with its files at exit. */
const char *fuzz_dir(void);
/* dir + "/" + name in a static buffer of its own per slot (0..3). */
const char *fuzz_path(int slot, const char *name);
/* Writes n bytes to path (replacing it); aborts on failure. */
void fuzz_write(const char *path, const void *p, size_t n);
/* Copies file src to dst (replacing it); aborts on failure. */
void fuzz_copy(const char *src, const char *dst);
/* Removes path and its -wal, -shm and -journal companions. */
void fuzz_remove_db(const char *path);

/* The fixed training text: sentences separated by '\n' (NUL-terminated). */
extern const char fuzz_text[];
/* A BPE model (NFKC) learned once from fuzz_text; borrowed. */
const struct bpe *fuzz_bpe(void);
/* Path of a database made once: a train corpus of fuzz_text, a joint vocabulary, a run and one
 * checkpoint (model-only) of a random 1-layer model (E 8, H 8, attention per `attention`). The file
 * is complete (no -wal). Aborts on failure. */
const char *fuzz_model_db(int attention);

#endif
