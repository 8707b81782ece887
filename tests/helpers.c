/* tests/helpers.c: see helpers.h. */
#include "tests/helpers.h"

#include "util/rng.h"
#include "util/sbuf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* Test processes run the OpenBLAS kernels the seqlite command runs (tools/main.c): when OpenBLAS picked
 * kernels without the CPU's AVX2 / AVX-512, the executable starts again at once with OPENBLAS_CORETYPE set,
 * so in-process results (learning tests, oracles) and the binary's agree. Weak: executables that do not
 * link nn/gemm.c have no GEMMs of their own. */
void gemm_use_best_kernel(char *const argv[]) __attribute__((weak));

__attribute__((constructor)) static void th_blas_kernel(void)
{
    if (!gemm_use_best_kernel)
        return;
    static char buf[1 << 16];
    FILE *f = fopen("/proc/self/cmdline", "rb");
    if (!f)
        return;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    char *argv[256];
    size_t argc = 0;
    for (size_t i = 0; i < n && argc < 255; i += strlen(buf + i) + 1)
        argv[argc++] = buf + i;
    argv[argc] = NULL;
    if (argc > 0)
        gemm_use_best_kernel(argv);
}

char *th_tmpdir(void)
{
    const char *base = getenv("TMPDIR");
    char tmpl[4096];
    snprintf(tmpl, sizeof tmpl, "%s/seqlite-test-XXXXXX", base && *base ? base : "/tmp");
    char *d = mkdtemp(tmpl);
    return d ? strdup(d) : NULL;
}

void th_rmdir(const char *path)
{
    if (!path || !*path)
        return;
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", path);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", path);
}

char *th_path(const char *dir, const char *name)
{
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = malloc(n);
    if (p)
        snprintf(p, n, "%s/%s", dir, name);
    return p;
}

int th_write_file(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        return -1;
    size_t w = fwrite(data, 1, len, f);
    return (fclose(f) == 0 && w == len) ? 0 : -1;
}

char *th_read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    size_t r;
    while (buf && (r = fread(buf + n, 1, cap - n - 1, f)) > 0) {
        n += r;
        if (cap - n - 1 == 0) {
            char *nb = realloc(buf, cap * 2);
            if (!nb) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = nb;
            cap *= 2;
        }
    }
    fclose(f);
    if (!buf)
        return NULL;
    buf[n] = '\0';
    if (len)
        *len = n;
    return buf;
}

int th_run(const char *args, const char *in_path, char **out, char **err)
{
    char *dir = th_tmpdir();
    if (!dir)
        return -1;
    char *o = th_path(dir, "out"), *e = th_path(dir, "err");
    size_t n = strlen(args) + strlen(o) + strlen(e) + (in_path ? strlen(in_path) : 10) + 64 +
               strlen(SEQLITE_BIN);
    char *cmd = malloc(n);
    snprintf(cmd, n, "'%s' %s <'%s' >'%s' 2>'%s'", SEQLITE_BIN, args, in_path ? in_path : "/dev/null",
             o, e);
    int st = system(cmd);
    int rc = (st != -1 && WIFEXITED(st)) ? WEXITSTATUS(st) : -1;
    if (out)
        *out = th_read_file(o, NULL);
    if (err)
        *err = th_read_file(e, NULL);
    free(cmd);
    free(o);
    free(e);
    th_rmdir(dir);
    free(dir);
    return rc;
}

int th_gemm_isa(const char *isa)
{
    if (!isa) {
        unsetenv("SEQLITE_GEMM_ISA");
        return 1;
    }
    int ok = strcmp(isa, "generic") == 0;
#if defined(__x86_64__) && defined(__GNUC__)
    __builtin_cpu_init();
    int avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    ok |= strcmp(isa, "avx2") == 0 && avx2;
    ok |= strcmp(isa, "avx512") == 0 && avx2 && __builtin_cpu_supports("avx512f");
#endif
    if (ok)
        setenv("SEQLITE_GEMM_ISA", isa, 1);
    return ok;
}

int th_write_copy(const char *dir, const char *name, size_t n, uint64_t seed)
{
    static const char *w10[] = {"haus", "katze", "der", "hund", "baum", "grün", "kind", "ball", "rot", "mit"};
    struct rng r;
    rng_seed(&r, seed);
    struct sbuf s;
    sbuf_init(&s);
    for (size_t i = 0; i < n; i++) {
        size_t k = 1 + rng_below(&r, 4);
        for (size_t j = 0; j < k; j++)
            sbuf_printf(&s, "%s%s", j ? " " : "", w10[rng_below(&r, 10)]);
        sbuf_putc(&s, '\n');
    }
    char fn[64];
    int rc = 0;
    for (int side = 0; side < 2 && !rc; side++) {
        snprintf(fn, sizeof fn, "%s.%s", name, side ? "tgt" : "src");
        char *p = th_path(dir, fn);
        rc = th_write_file(p, s.data, s.len);
        free(p);
    }
    sbuf_free(&s);
    return rc;
}
