/* src/cli/cmd_tokenize.c - `kiln tokenize`: print the token ids of a text,
 * space separated. Loads only the vocabulary, so vocabulary-only GGUF
 * files work. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/commands.h"
#include "cli/llm_cli.h"

static const char usage[] =
    "usage: kiln tokenize -m MODEL (-p TEXT | -f FILE) [--no-bos]\n"
    "  -m MODEL   GGUF file (a vocabulary-only one is enough) or model folder\n"
    "  -p TEXT    the text\n"
    "  -f FILE    read the text from a file\n"
    "  --no-bos   do not add the beginning-of-sequence token\n";

int kiln_cmd_tokenize(int argc, char **argv) {
    struct llm_args a;
    int rc = kiln__llm_parse_args(argc, argv, LLM_OPT_PROMPT | LLM_OPT_FILE | LLM_OPT_NO_BOS, usage, &a);
    if (rc) return rc < 0 ? 0 : rc;
    if ((a.prompt != NULL) == (a.file != NULL)) {
        fprintf(stderr, "kiln tokenize: give exactly one of -p TEXT and -f FILE\n%s", usage);
        return 2;
    }
    char *owned = NULL;
    size_t len = 0;
    const char *text = a.prompt;
    if (a.file) {
        if (!(owned = kiln__read_text_file("tokenize", a.file, &len))) return 1;
        text = owned;
    } else {
        len = strlen(text);
    }
    kiln_llm *m = kiln__llm_cli_load("tokenize", &a, true);
    if (!m) {
        free(owned);
        return 1;
    }
    size_t n = 0, cap = len + 8;
    int32_t *ids = malloc(cap * sizeof *ids);
    kiln_status st = ids ? kiln_llm_tokenize(m, text, len, !a.no_bos, true, ids, cap, &n) : KILN_ERR_OUT_OF_MEMORY;
    if (st == KILN_ERR_TOO_LARGE) {
        /* more ids than bytes + 8: grow to the size asked for */
        int32_t *grown = realloc(ids, n * sizeof *ids);
        st = grown ? kiln_llm_tokenize(m, text, len, !a.no_bos, true, grown, n, &n) : KILN_ERR_OUT_OF_MEMORY;
        if (grown) ids = grown;
    }
    if (st == KILN_OK) {
        for (size_t i = 0; i < n; i++) printf(i ? " %d" : "%d", (int)ids[i]);
        putchar('\n');
    } else {
        fprintf(stderr, "kiln tokenize: %s: %s\n", kiln_status_str(st), kiln_last_error());
    }
    free(ids);
    free(owned);
    kiln_llm_free(m);
    return st == KILN_OK ? 0 : 1;
}
