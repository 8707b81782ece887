/* tools/cli.h: the command table, flag parsing and the only places that print errors or exit codes.
 * Exit codes: 0 success, 1 failure ("seqlite: CMD: message" on stderr), 2 usage error (two lines on
 * stderr: "seqlite: CMD: message" and "see 'seqlite help CMD'"; the full usage only on request). Each subcommand lives in tools/cmd_NAME.c and exports one struct cli_cmd. */
#ifndef SL_TOOLS_CLI_H
#define SL_TOOLS_CLI_H

#include <stdint.h>

#include "nn/autocast.h"

struct ckpt_model;

struct cli_cmd {
    const char *name;
    const char *summary; /* one line for `seqlite --help` */
    const char *usage;   /* full text for `seqlite help NAME`; starts with "usage: seqlite NAME ..." */
    int (*run)(int argc, char **argv); /* argv[0] is the command name; returns the exit code */
};

enum cli_opt_type { CLI_INT, CLI_DOUBLE, CLI_STR, CLI_BOOL };

/* One flag: "--name VALUE" or "--name=VALUE" (CLI_BOOL takes no value and stores 1).
 * Numbers are range-checked against [min, max]; dst is int64_t*, double*, const char** or int*. */
struct cli_opt {
    const char *name; /* without the leading "--" */
    enum cli_opt_type type;
    void *dst;
    double min, max;
};

#define CLI_HELP_SHOWN 3 /* cli_parse printed --help: exit 0 */

/* Parses argv[1..]: flags into opts (terminated by a {NULL} entry), the rest into pos (at most
 * max_pos, count in *npos). Returns 0, CLI_HELP_SHOWN, or 2 after printing a usage error. */
int cli_parse(const struct cli_cmd *c, int argc, char **argv, const struct cli_opt *opts,
              char **pos, int max_pos, int *npos);
/* Prints "seqlite: CMD: message" and returns 1. */
int cli_fail(const struct cli_cmd *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Prints "seqlite: CMD: <last library error>" and returns 1. */
int cli_fail_status(const struct cli_cmd *c, int status);
/* Prints "seqlite: CMD: message" and "see 'seqlite help CMD'" (two lines) to stderr; returns 2. */
int cli_usage_error(const struct cli_cmd *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* --precision VALUE of a decoding command (nn/autocast.h: fp32, bf16, int8) into *out: 0, or 2 after a
 * usage error. A precision this CPU cannot run becomes fp32, said in one line ("seqlite: CMD: --precision
 * P: why"). */
int cli_precision(const struct cli_cmd *c, const char *value, enum precision *out);
/* The precision of a decoding command without --precision: bf16 when every checkpoint it loaded is stored
 * in bf16 (seqlite export --precision bf16: decoding in bf16 then gives the source's bf16 translations)
 * and this CPU runs bf16 products, else fp32. */
enum precision cli_stored_precision(const struct ckpt_model *ck, size_t n);
/* 1 when stderr is a terminal (progress lines are redrawn in place then). */
int cli_stderr_is_tty(void);

extern const struct cli_cmd cmd_import, cmd_vocab, cmd_tokenize, cmd_train, cmd_translate, cmd_score,
    cmd_eval, cmd_bench, cmd_plot;
extern const struct cli_cmd cmd_average, cmd_export, cmd_info;

#endif
