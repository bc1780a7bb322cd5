/* src/cli/main.c - `kiln SUBCOMMAND ...`: dispatch to the subcommands. */
#include <stdio.h>
#include <string.h>

#include "cli/commands.h"

/* One subcommand: its name, what it does, its entry point. */
static const struct command {
    const char *name;                 /* as typed after `kiln` */
    const char *summary;              /* one line for the usage text */
    int (*run)(int argc, char **argv); /* returns the exit code */
} commands[] = {
    {"info", "describe a model file or folder (format, architecture, tensors)", kiln_cmd_info},
    {"generate", "generate text from a prompt with a text model", kiln_cmd_generate},
    {"chat", "talk with a text model interactively (its chat template, cached conversation)", kiln_cmd_chat},
    {"serve", "run the worker daemon: rbee jobs and the OpenAI API over HTTP", kiln_cmd_serve},
    {"tokenize", "print the token ids of a text", kiln_cmd_tokenize},
    {"perplexity", "perplexity of a text model over a text file", kiln_cmd_perplexity},
    {"bench", "prompt and generation speed of a text model (like llama-bench)", kiln_cmd_bench},
    {"bench-image", "speed of a Stable Diffusion model's text encoder, UNet step and VAE decode", kiln_cmd_bench_image},
    {"eval", "write the logits of every prompt position to a file", kiln_cmd_eval},
    {"image", "make images with a Stable Diffusion model (txt2img, img2img, inpainting)", kiln_cmd_image},
    {"version", "print the version and the CPU features kiln will use", kiln_cmd_version},
};

static void usage(FILE *out) {
    fprintf(out, "usage: kiln COMMAND [ARGS...]\n\ncommands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(out, "  %-12s %s\n", commands[i].name, commands[i].summary);
    fprintf(out, "\nRun `kiln COMMAND --help` for a command's options.\n");
}

int main(int argc, char **argv) {
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "help") == 0) {
        usage(stdout);
        return 0;
    }
    if (strcmp(argv[1], "--version") == 0) return kiln_cmd_version(argc - 1, argv + 1);
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (strcmp(argv[1], commands[i].name) == 0) return commands[i].run(argc - 1, argv + 1);
    fprintf(stderr, "kiln: unknown command '%s'\n\n", argv[1]);
    usage(stderr);
    return 2;
}
