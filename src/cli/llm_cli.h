/* src/cli/llm_cli.h - what the text-model subcommands (generate, chat,
 * tokenize, perplexity, eval) share: one option parser over a table of
 * flags, and loading a model with a progress bar. */
#ifndef KILN_CLI_LLM_CLI_H
#define KILN_CLI_LLM_CLI_H

#include <stdbool.h>
#include <stdint.h>

#include "kiln/kiln.h"

/* Most --stop strings a command line may give. */
#define KILN_CLI_MAX_STOP 16

/* Which flags a subcommand accepts (bit set). */
enum {
    LLM_OPT_PROMPT = 1u << 0,   /* -p TEXT */
    LLM_OPT_FILE = 1u << 1,     /* -f FILE */
    LLM_OPT_GEN = 1u << 2,      /* -n and the sampling flags, --stop */
    LLM_OPT_RUN = 1u << 3,      /* -t, -c, -b, --kv */
    LLM_OPT_NO_BOS = 1u << 4,   /* --no-bos */
    LLM_OPT_LOGITS = 1u << 5,   /* --logits OUT */
    LLM_OPT_CHAT = 1u << 6,     /* --system TEXT, --chat-template NAME */
};

/* Parsed command line of a text-model subcommand. */
struct llm_args {
    const char *model;            /* -m: GGUF file or HF folder */
    const char *prompt;           /* -p */
    const char *file;             /* -f */
    const char *logits_out;       /* --logits */
    const char *system;           /* --system */
    const char *chat_template;    /* --chat-template: a format name overriding detection */
    int32_t n_predict;            /* -n: tokens to generate (0 = until the context is full) */
    bool no_bos;                  /* --no-bos */
    kiln_sampling_params sampling;/* --temp, --top-k, ... */
    const char *stop[KILN_CLI_MAX_STOP]; /* --stop, in order */
    int32_t n_stop;               /* entries of stop */
    kiln_llm_params load;         /* -t, -c, -b, --kv */
};

/* Parse argv (argv[0] = subcommand name) accepting the flags in `opts`.
 * Returns 0 on success; on a bad or unknown flag prints the problem and
 * `usage` to stderr and returns 2; -h/--help prints usage to stdout and
 * returns -1 (the caller exits 0). */
int kiln__llm_parse_args(int argc, char **argv, unsigned opts, const char *usage, struct llm_args *a);

/* Load a.model with a.load; shows a progress bar on a terminal and prints
 * "loaded ... (N MiB in S s)" to stderr. NULL after printing why. */
kiln_llm *kiln__llm_cli_load(const char *cmd, const struct llm_args *a, bool vocab_only);

/* Read a whole file into a NUL-terminated malloc'd buffer; NULL after
 * printing why. *len receives its size. */
char *kiln__read_text_file(const char *cmd, const char *path, size_t *len);

/* Seconds on a monotonic clock. */
double kiln__cli_now(void);

#endif /* KILN_CLI_LLM_CLI_H */
