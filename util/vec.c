/* util/vec.c: growing malloc'd arrays (see vec.h).
 * The caller's pointer is read and written with memcpy, so any object pointer type can be passed
 * through void * without an aliasing cast. */
#include "util/vec.h"

#include "util/err.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int vec_resize(void *pp, size_t n, size_t elem)
{
    void *p;
    memcpy(&p, pp, sizeof p);
    if (n == 0) {
        free(p);
        p = NULL;
        memcpy(pp, &p, sizeof p);
        return 0;
    }
    if (elem && n > SIZE_MAX / elem)
        return sl_err(SL_ENOMEM, "out of memory (%zu elements of %zu bytes)", n, elem);
    void *q = realloc(p, n * elem);
    if (!q)
        return sl_err(SL_ENOMEM, "out of memory (%zu bytes)", n * elem);
    memcpy(pp, &q, sizeof q);
    return 0;
}

int vec_reserve(void *pp, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap)
        return 0;
    size_t c = *cap > VEC_MIN_CAP ? *cap : VEC_MIN_CAP;
    while (c < need) {
        if (c > SIZE_MAX / 2)
            return sl_err(SL_ENOMEM, "out of memory (%zu elements of %zu bytes)", need, elem);
        c *= 2;
    }
    int rc = vec_resize(pp, c, elem);
    if (rc)
        return rc;
    *cap = c;
    return 0;
}
