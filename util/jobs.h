/* util/jobs.h: running N independent jobs on OpenMP threads with errors handed back.
 * A job reports failure the library way (returns a negative SL_E* status after sl_err(), whose message is
 * thread-local); jobs_run hands the status *and* message of the failing job with the lowest index back to
 * the calling thread, so no parallel loop copies messages by hand. After a failure, jobs of higher index
 * that have not started are skipped (every job below the lowest failing one runs, so what is reported does
 * not depend on timing). No allocation; jobs must write disjoint memory.
 * BLAS calls inside a job should run single-threaded (nn/gemm.h gemm_set_threads(1) before the call). */
#ifndef SL_UTIL_JOBS_H
#define SL_UTIL_JOBS_H

#include <stddef.h>

enum jobs_schedule {
    JOBS_STATIC = 0,  /* job i runs on thread i % n_threads (schedule(static, 1)): a fixed assignment */
    JOBS_DYNAMIC = 1, /* jobs handed out one at a time to whichever thread is free */
};

/* One job: index job in [0, n), run by OpenMP thread `thread` in [0, n_threads). 0 or SL_E*. */
typedef int (*jobs_fn)(void *ctx, size_t job, int thread);

/* Runs fn(ctx, i, thread) for every i in [0, n) on n_threads threads (1: in the calling thread, in order;
 * n_threads <= 0 is taken as 1). Returns 0, or the status of the lowest-index failing job with its message
 * recorded for the calling thread (sl_errmsg()). Must not be called from inside a parallel region. */
int jobs_run(size_t n, int n_threads, enum jobs_schedule sched, jobs_fn fn, void *ctx);

#endif
