/* util/clock.c: the monotonic clock (see clock.h). */
#include "util/clock.h"

#include <time.h>

double clock_now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

double clock_since(double t0) { return clock_now() - t0; }
