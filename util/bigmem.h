/* util/bigmem.h: allocation of large numeric buffers (parameters, gradients, Adam moments, workspaces,
 * packed weights): 64-byte aligned always; from 4 MiB on, 2 MiB aligned and marked for transparent huge
 * pages (madvise MADV_HUGEPAGE; Debian's default THP mode is "madvise", so without it these buffers get
 * 4 KiB pages and the GEMMs that stream them pay a TLB miss every 4 KiB). Free with big_free.
 * ref: Linux Documentation/admin-guide/mm/transhuge.rst. */
#ifndef SL_UTIL_BIGMEM_H
#define SL_UTIL_BIGMEM_H

#include <stddef.h>

/* bytes (> 0) of uninitialised memory, or NULL. */
void *big_alloc(size_t bytes);
void big_free(void *p);

#endif
