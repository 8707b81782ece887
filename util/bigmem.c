/* util/bigmem.c: large aligned buffers with transparent huge pages (see bigmem.h). */
#include "util/bigmem.h"

#include <stdint.h>
#include <stdlib.h>

#if defined(__linux__)
#include <sys/mman.h>
#endif

#define HUGE_FROM ((size_t)4 << 20)
#define HUGE_PAGE ((size_t)2 << 20)

void *big_alloc(size_t bytes)
{
    if (bytes == 0 || bytes > SIZE_MAX - HUGE_PAGE)
        return NULL;
    if (bytes < HUGE_FROM)
        return aligned_alloc(64, (bytes + 63) / 64 * 64);
    bytes = (bytes + HUGE_PAGE - 1) / HUGE_PAGE * HUGE_PAGE;
    void *p = aligned_alloc(HUGE_PAGE, bytes);
#if defined(__linux__) && defined(MADV_HUGEPAGE)
    if (p)
        (void)madvise(p, bytes, MADV_HUGEPAGE); /* advice only: without THP the buffer works as it is */
#endif
    return p;
}

void big_free(void *p) { free(p); }
