/* util/err.c: the thread-local last error message (see err.h). */
#include "util/err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define ERR_CAP 1024
#ifndef __clang__ /* clang has no -Wformat-truncation (the tsan build compiles with clang) */
#pragma GCC diagnostic ignored "-Wformat-truncation" /* a long message is cut, by design */
#endif
static _Thread_local char err_msg[ERR_CAP];

int sl_err(int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err_msg, ERR_CAP, fmt, ap);
    va_end(ap);
    return code;
}

int sl_err_prefix(int code, const char *fmt, ...)
{
    char old[ERR_CAP];
    char pre[ERR_CAP];
    va_list ap;
    memcpy(old, err_msg, ERR_CAP);
    va_start(ap, fmt);
    vsnprintf(pre, ERR_CAP, fmt, ap);
    va_end(ap);
    if (old[0])
        snprintf(err_msg, ERR_CAP, "%s: %s", pre, old);
    else
        snprintf(err_msg, ERR_CAP, "%s", pre);
    return code;
}

const char *sl_errmsg(void) { return err_msg; }

void sl_err_clear(void) { err_msg[0] = '\0'; }

const char *sl_strstatus(int code)
{
    switch (code) {
    case SL_OK: return "ok";
    case SL_EINVAL: return "invalid input";
    case SL_EIO: return "i/o error";
    case SL_ENOMEM: return "out of memory";
    case SL_EDB: return "database error";
    case SL_ECORRUPT: return "corrupt or foreign file";
    case SL_EEXIST: return "already exists";
    case SL_ENOTFOUND: return "not found";
    case SL_EVERSION: return "made by a newer version";
    case SL_EINTR: return "interrupted";
    case SL_ENUM: return "not a finite number";
    case SL_EUTF8: return "invalid UTF-8";
    case SL_EBUSY: return "in use by another process";
    default: return "unknown error";
    }
}
