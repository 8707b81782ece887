/* nn/arena.c: bump allocator for workspaces (see arena.h). */
#include "nn/arena.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "util/bigmem.h"
#include "util/err.h"

void *arena_take(struct arena *a, size_t bytes)
{
    size_t n = (bytes + 63) / 64 * 64;
    size_t at = a->used;
    a->used += n;
    if (!a->base)
        return NULL;
    assert(a->used <= a->cap);
    return a->base + at;
}

int arena_reserve(struct arena *a, size_t bytes)
{
    bytes = (bytes + 63) / 64 * 64;
    if (bytes == 0)
        bytes = 64;
    if (a->base && a->cap >= bytes) {
        a->used = 0;
        return 0;
    }
    big_free(a->base);
    a->base = big_alloc(bytes);
    a->cap = a->base ? bytes : 0;
    a->used = 0;
    if (!a->base)
        return sl_err(SL_ENOMEM, "out of memory for a %zu MiB workspace", bytes >> 20);
    return 0;
}

void arena_release(struct arena *a)
{
    big_free(a->base);
    memset(a, 0, sizeof *a);
}
