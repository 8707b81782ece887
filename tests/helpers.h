/* tests/helpers.h: small shared helpers for the criterion tests (temporary files, a generated copy
 * corpus, running the seqlite binary, choosing the packed GEMM kernels). Every test makes the data it
 * needs; nothing is downloaded. */
#ifndef SL_TESTS_HELPERS_H
#define SL_TESTS_HELPERS_H

#include <stddef.h>
#include <stdint.h>

/* A fresh empty directory under $TMPDIR (or /tmp), removed by th_rmdir(). Returns a malloc'd path. */
char *th_tmpdir(void);
void th_rmdir(const char *path);
/* path = dir + "/" + name (malloc'd). */
char *th_path(const char *dir, const char *name);
/* Writes len bytes to path; returns 0 on success. */
int th_write_file(const char *path, const void *data, size_t len);
/* Reads a whole file (malloc'd, NUL-terminated, length in *len); NULL on failure. */
char *th_read_file(const char *path, size_t *len);
/* Writes dir/NAME.src and dir/NAME.tgt: the same n lines (a copy task) of 1-4 words drawn from ten,
 * a function of seed. Returns 0 on success. */
int th_write_copy(const char *dir, const char *name, size_t n, uint64_t seed);
/* Runs "SEQLITE_BIN args..." through /bin/sh with stdin from in_path (NULL: /dev/null), capturing
 * stdout and stderr into malloc'd strings (either may be NULL). Returns the exit status (or -1). */
int th_run(const char *args, const char *in_path, char **out, char **err);
/* Pins the packed GEMM kernels (nn/gemm_packed.c) to isa ("generic", "avx2" or "avx512") through
 * SEQLITE_GEMM_ISA, or to the automatic choice (NULL). gemm_packed.c reads it once per process, at the
 * first pack or packed product, so call this before (criterion runs each test in a process of its own).
 * Returns 0, setting nothing, when this CPU cannot run isa. */
int th_gemm_isa(const char *isa);

#endif
