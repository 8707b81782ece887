/* util/err.h: status codes and the last error message.
 * Library functions return 0 or a negative SL_E* code (or NULL from _create). The function that
 * detects an error records a message with sl_err(); callers that only pass the code up stay silent.
 * The message is thread-local: it stays valid until the same thread records the next one.
 * Only tools/ prints it. */
#ifndef SL_UTIL_ERR_H
#define SL_UTIL_ERR_H

enum sl_status {
    SL_OK = 0,
    SL_EINVAL = -1,    /* bad argument or bad user input */
    SL_EIO = -2,       /* a file could not be read or written */
    SL_ENOMEM = -3,    /* allocation failed */
    SL_EDB = -4,       /* SQLite reported an error */
    SL_ECORRUPT = -5,  /* a file or database is damaged or not ours */
    SL_EEXIST = -6,    /* the thing to create exists already */
    SL_ENOTFOUND = -7, /* the thing asked for does not exist */
    SL_EVERSION = -8,  /* made by a newer seqlite */
    SL_EINTR = -9,     /* interrupted by a signal or a time limit */
    SL_ENUM = -10,     /* a NaN or an infinity where a number was needed */
    SL_EUTF8 = -11,    /* invalid UTF-8 */
    SL_EBUSY = -12,    /* another live process owns it */
};

/* Records a printf-style message for this thread and returns code (so: return sl_err(...)). */
int sl_err(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Prefixes the current message with "prefix: " (adds context while passing an error up). */
int sl_err_prefix(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The last message recorded by this thread ("" if none). */
const char *sl_errmsg(void);
void sl_err_clear(void);
/* A short name for a status code ("invalid input", ...). */
const char *sl_strstatus(int code);

#endif
