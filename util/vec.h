/* util/vec.h: growing malloc'd arrays (the one `grow` of the project).
 * - vec_reserve: the usual growable array; capacity doubles, so n appends cost O(n) copies.
 * - vec_resize: exactly n elements; for parallel arrays that share one capacity, and for shrinking.
 * Both take the address of the caller's pointer (T **, passed as void *) and leave it and the contents
 * unchanged on failure, with an SL_ENOMEM message (util/err.h). The caller owns the array and frees it
 * with free(). Not thread-safe for the same array; arrays of different threads are independent. */
#ifndef SL_UTIL_VEC_H
#define SL_UTIL_VEC_H

#include <stddef.h>

/* Makes *pp (address of a T * with *cap elements of elem bytes) hold at least need elements: when
 * need > *cap, reallocates to the smallest max(*cap, VEC_MIN_CAP) * 2^k >= need and updates *cap.
 * Elements [0, old *cap) are kept; the new ones are uninitialised. 0, or SL_ENOMEM (also when the size
 * overflows size_t). */
int vec_reserve(void *pp, size_t *cap, size_t need, size_t elem);

/* Reallocates *pp (address of a T *) to exactly n elements of elem bytes, keeping the first
 * min(old, n) (n may be smaller: shrinking). n == 0 frees the array and sets the pointer to NULL.
 * 0, or SL_ENOMEM (also when n * elem overflows). */
int vec_resize(void *pp, size_t n, size_t elem);

#define VEC_MIN_CAP 16 /* first capacity of an empty array */

#endif
