/* util/clock.h: the one wall clock for timings (CLOCK_MONOTONIC: never jumps with the date; not the
 * time of day). Seconds as a double, which keeps sub-microsecond resolution for months of uptime.
 * Thread-safe. Timings are reports only: nothing the program computes may depend on them. */
#ifndef SL_UTIL_CLOCK_H
#define SL_UTIL_CLOCK_H

/* Seconds since an arbitrary fixed point (the same for the whole process). */
double clock_now(void);
/* Seconds elapsed since t0, an earlier clock_now(). */
double clock_since(double t0);

#endif
