/* nn/arena.h: a bump allocator for per-thread workspaces. A layout function takes all its arrays from an
 * arena twice: first with base == NULL to measure (arena_take returns NULL and only counts), then from
 * a block of that size (arena_reserve) to carve. Every array starts on a 64-byte boundary.
 * Nothing is freed piecemeal: the owner frees base once. No allocation happens in arena_take. */
#ifndef SL_NN_ARENA_H
#define SL_NN_ARENA_H

#include <stddef.h>

struct arena {
    char *base;  /* NULL while measuring */
    size_t used; /* bytes taken so far */
    size_t cap;  /* bytes at base */
};

/* Next `bytes` bytes (rounded up to 64), or NULL while measuring. Asserts used <= cap otherwise. */
void *arena_take(struct arena *a, size_t bytes);
/* Makes a->base hold at least `bytes` (reallocating, contents lost) and resets used to 0.
 * Returns 0 or SL_ENOMEM. */
int arena_reserve(struct arena *a, size_t bytes);
/* Frees base; the arena is empty (measuring) afterwards. */
void arena_release(struct arena *a);

#endif
