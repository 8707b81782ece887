/* tools/main.c: `seqlite COMMAND ...`: dispatches to the subcommands of tools/cmd_*.c. Without a
 * command it prints the command list to stderr (exit 2); an unknown command is a two-line usage error
 * like every other (tools/cli.h). */
#include "tools/cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "nn/gemm.h"

static const struct cli_cmd *const commands[] = {
    &cmd_import, &cmd_vocab, &cmd_tokenize, &cmd_train, &cmd_translate,
    &cmd_score,  &cmd_eval,  &cmd_info,     &cmd_plot,   &cmd_average, &cmd_export,
    &cmd_bench,
};
#define N_COMMANDS (sizeof commands / sizeof commands[0])

static void print_usage(FILE *f)
{
    fprintf(f, "usage: seqlite COMMAND [ARGS]   (seqlite help COMMAND for details)\n\ncommands:\n");
    for (size_t i = 0; i < N_COMMANDS; i++)
        fprintf(f, "  %-10s %s\n", commands[i]->name, commands[i]->summary);
    fprintf(f, "\n  seqlite --version   print the version\n"
               "  seqlite --help      print this list\n");
}

static const struct cli_cmd *find(const char *name)
{
    for (size_t i = 0; i < N_COMMANDS; i++)
        if (strcmp(commands[i]->name, name) == 0)
            return commands[i];
    return NULL;
}

/* When OpenBLAS picked kernels without the AVX2 / AVX-512 this CPU has (nn/gemm.h: gemm_kernel_advice), runs
 * this program again at once with OPENBLAS_CORETYPE set, before anything is read or opened: OpenBLAS reads
 * it only when it loads. SEQLITE_KERNEL_NOTE=1 prints which (on stderr). On any failure it goes on as is. */
static void pick_blas_kernel(char **argv)
{
    const char *core = gemm_kernel_advice();
    if (!core)
        return;
    if (getenv("SEQLITE_KERNEL_NOTE"))
        fprintf(stderr, "seqlite: OpenBLAS picked %s kernels on a CPU with %s; using OPENBLAS_CORETYPE=%s\n",
                gemm_corename(), strcmp(core, "Haswell") == 0 ? "AVX2" : "AVX-512", core);
    if (setenv("OPENBLAS_CORETYPE", core, 1) != 0)
        return;
    fflush(NULL);
    execv("/proc/self/exe", argv);
    unsetenv("OPENBLAS_CORETYPE"); /* exec failed: go on with what OpenBLAS picked */
}

int main(int argc, char **argv)
{
    pick_blas_kernel(argv);
    if (argc < 2) {
        print_usage(stderr);
        return 2;
    }
    const char *a = argv[1];
    if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
        print_usage(stdout);
        return 0;
    }
    if (strcmp(a, "--version") == 0) {
        printf("seqlite %s\n", SEQLITE_VERSION);
        return 0;
    }
    if (strcmp(a, "help") == 0) {
        if (argc < 3) {
            print_usage(stdout);
            return 0;
        }
        const struct cli_cmd *c = find(argv[2]);
        if (!c) {
            fprintf(stderr, "seqlite: help: unknown command '%s'\nsee 'seqlite --help'\n", argv[2]);
            return 2;
        }
        fputs(c->usage, stdout);
        return 0;
    }
    const struct cli_cmd *c = find(a);
    if (!c) {
        fprintf(stderr, "seqlite: unknown command '%s'\nsee 'seqlite --help'\n", a);
        return 2;
    }
    return c->run(argc - 1, argv + 1);
}
