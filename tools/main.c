/* tools/main.c: `seqlite COMMAND ...`: dispatches to the subcommands of tools/cmd_*.c. Without a
 * command it prints the command list to stderr (exit 2); an unknown command is a two-line usage error
 * like every other (tools/cli.h). */
#include "tools/cli.h"

#include <stdio.h>
#include <string.h>

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

int main(int argc, char **argv)
{
    gemm_use_best_kernel(argv); /* OpenBLAS's AVX2 / AVX-512 kernels where it does not know the CPU */
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
