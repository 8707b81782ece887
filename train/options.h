/* train/options.h: the table of training options (struct train_opts, train.h), one row per option.
 * A row says everything the code needs to know about an option:
 *   - its flag (seqlite train --FLAG), the name of its value and its help text: tools/cmd_train.c
 *     makes the command's flags and usage from them;
 *   - its type and the field of struct train_opts that holds it;
 *   - its default, the range the command line allows and the (wider) range the library accepts;
 *   - what --resume does with it (enum train_opt_resume);
 *   - how a run stores it: a member of the run's config JSON, a run-table column, both or neither.
 * Adding an option: a field in struct train_opts, a row in options.c, and the code that uses it.
 * Invariants (tests/test_train.c checks them):
 *   - the command line's [min, max] lies inside the library's range; the default lies inside the
 *     library's range, not necessarily the command line's (a sentinel such as 0 for "no limit");
 *   - every option stored in the config JSON is read back from it on resume (json_extract, corpus/db.h),
 *     never from the run columns, which exist for users' queries.
 * The table is constant and shared; nothing here allocates except train_opts_config_json (into the
 * caller's buffer). */
#ifndef SL_TRAIN_OPTIONS_H
#define SL_TRAIN_OPTIONS_H

#include <stddef.h>
#include <stdint.h>

struct db;
struct db_run;
struct sbuf;
struct train_opts;

#define TRAIN_OPT_MAX 48 /* rows the table may have (fixed-size arrays of callers) */

enum train_opt_type {
    TRAIN_OPT_INT,    /* int64_t; TRAIN_UNSET: not given */
    TRAIN_OPT_DOUBLE, /* double; NAN: not given */
    TRAIN_OPT_BOOL,   /* int64_t 0 or 1; TRAIN_UNSET: not given; command line: --FLAG and --no-FLAG */
    TRAIN_OPT_CHOICE, /* int64_t index into choices; TRAIN_UNSET: not given; command line: --FLAG NAME */
    TRAIN_OPT_STRING, /* const char * (borrowed); NULL: not given; min and max bound its length in bytes */
};

enum { TRAIN_OPEN_LO = 1, TRAIN_OPEN_HI = 2 };

enum train_opt_resume {
    TRAIN_RESUME_SAME,  /* the model or the data: a given value must equal the run's; not given: the run's */
    TRAIN_RESUME_KEEP,  /* may change; not given: the run's */
    TRAIN_RESUME_LIMIT, /* may change; when no LIMIT option is given, every LIMIT option is the run's */
    TRAIN_RESUME_FREE,  /* may change; not given: the default (the run does not store it) */
};

struct train_opt {
    const char *flag;            /* without the "--"; also the option's name in messages */
    const char *arg;             /* the value's name in the usage ("N"); NULL for BOOL */
    enum train_opt_type type;
    size_t field;                /* offsetof(struct train_opts, ...) */
    double def;                  /* the default (INT, BOOL, CHOICE: a whole number) */
    const char *def_from;        /* flag of an option whose value, when nonzero, is the default instead */
    double min, max;             /* the command line's range (STRING: the length in bytes) */
    double lo, hi;               /* the library's range: lo <= x <= hi (hi may be INFINITY) */
    unsigned open;               /* TRAIN_OPEN_LO, TRAIN_OPEN_HI: lo, hi itself is refused */
    enum train_opt_resume resume;
    const char *key;             /* member of the run's config JSON (NULL: not in it) */
    const double *absent;        /* what a stored config without key means (older runs; NULL: def) */
    size_t column;               /* offsetof(struct db_run, ...) of its run-table column (0: none) */
    const char *const *choices;  /* CHOICE: the names of values 0, 1, ... (NULL-terminated) */
    const char *help;            /* usage text: "{default}" stands for the default, '\n' continues it on an
                                    indented line */
};

extern const struct train_opt train_opt_table[];
extern const size_t train_opt_count;

/* The row of flag (NULL when there is none). */
const struct train_opt *train_opt_find(const char *flag);
/* 1 when o gives a value for option d. */
int train_opt_is_set(const struct train_opt *d, const struct train_opts *o);
/* Writes the default of d as the usage shows it ("0.003", "ppl") into buf (cap bytes). */
void train_opt_format_default(const struct train_opt *d, char *buf, size_t cap);

/* Every option not given gets its default. */
void train_opts_fill_defaults(struct train_opts *o);
/* Checks every given option against its row (the library's range, choice, length) and the options
 * against each other. SL_EINVAL with a message naming the flag. Options not given are not checked. */
int train_opts_check(const struct train_opts *o);
/* Appends the config JSON of resolved options o to out: {"KEY":value,...} in table order, then extra
 * (members written by the caller, without braces; NULL: none). SL_ENOMEM. */
int train_opts_config_json(const struct train_opts *o, const char *extra, struct sbuf *out);
/* Sets the run-table columns of resolved options o in r (the others are left alone). */
void train_opts_run_columns(const struct train_opts *o, struct db_run *r);
/* Resume: resolves o against run (read with db_run_get) and its stored config, as each row's resume
 * policy says. SL_EINVAL: a given option conflicts with the run's ("--hidden 64 conflicts with run 3
 * (hidden 256); resume without it"); SL_ECORRUPT: a stored value of the wrong type; store errors.
 * String options are compared, never copied from run (o must not outlive it otherwise). */
int train_opts_resume(struct db *db, const struct db_run *run, struct train_opts *o);

/* Fine-tuning: the options flags[] (NULL-terminated) of o become run's (read as train_opts_resume reads
 * them); a given one must equal run's: SL_EINVAL "--hidden 64 conflicts with WHOSE (hidden 256); leave it
 * out". Other options of o are left alone. */
int train_opts_inherit(struct db *db, const struct db_run *run, const char *const *flags, const char *whose,
                       struct train_opts *o);

#endif
