/* util/jobs.c: jobs on OpenMP threads, the lowest failing job's status and message handed back (see jobs.h). */
#include "util/jobs.h"

#include <omp.h>
#include <stdint.h>
#include <stdio.h>

#include "util/err.h"

#define JOBS_MSG_MAX 1024

struct jobs_failure {
    int rc;                  /* 0 while no job failed */
    size_t job;              /* lowest failing job index */
    char msg[JOBS_MSG_MAX];  /* its message */
};

static void jobs_record(struct jobs_failure *f, size_t job, int rc)
{
    const char *m = sl_errmsg(); /* this worker thread's message */
#pragma omp critical(sl_jobs_failure)
    if (!f->rc || job < f->job) {
        f->rc = rc;
        f->job = job;
        snprintf(f->msg, sizeof f->msg, "%s", m);
    }
}

/* One job, skipped when a job of lower index has failed already: every job below the lowest failing one
 * runs, so the failure reported does not depend on timing. */
static void jobs_one(struct jobs_failure *f, size_t *first_failed, size_t i, jobs_fn fn, void *ctx)
{
    size_t ff;
#pragma omp atomic read
    ff = *first_failed;
    if (i > ff)
        return;
    int rc = fn(ctx, i, omp_get_thread_num());
    if (rc) {
        jobs_record(f, i, rc);
#pragma omp critical(sl_jobs_first)
        if (i < *first_failed) {
#pragma omp atomic write
            *first_failed = i;
        }
    }
}

int jobs_run(size_t n, int n_threads, enum jobs_schedule sched, jobs_fn fn, void *ctx)
{
    struct jobs_failure f = {0, 0, {0}};
    if (n_threads <= 1 || n <= 1) {
        for (size_t i = 0; i < n; i++) {
            int rc = fn(ctx, i, 0);
            if (rc)
                return rc; /* the message is this thread's already */
        }
        return 0;
    }
    size_t first_failed = SIZE_MAX;
    if (sched == JOBS_DYNAMIC) {
#pragma omp parallel for schedule(dynamic, 1) num_threads(n_threads)
        for (size_t i = 0; i < n; i++)
            jobs_one(&f, &first_failed, i, fn, ctx);
    } else {
#pragma omp parallel for schedule(static, 1) num_threads(n_threads)
        for (size_t i = 0; i < n; i++)
            jobs_one(&f, &first_failed, i, fn, ctx);
    }
    if (f.rc)
        return sl_err(f.rc, "%s", f.msg);
    return 0;
}
