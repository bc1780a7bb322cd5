/* src/cli/cmd_eval.c - `kiln eval`: write the logits of every prompt
 * position (float32, row-major, n_tokens x n_vocab, host byte order = little
 * endian on every machine kiln runs on) for comparisons with other engines. */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/commands.h"
#include "cli/llm_cli.h"

static const char usage[] =
    "usage: kiln eval -m MODEL -p PROMPT --logits OUT.f32 [--no-bos] [-t THREADS] [-c CTX] [--kv f16|f32]\n"
    "       [--exact-matmul]  (f32 products for quantized and BF16 weights) [--f16-as-bf16] (F16 rounded\n"
    "       to bf16: faster, lossy) [--mmap] (weights through the file mapping)\n"
    "  -p PROMPT        prompt text (special tokens parsed)\n"
    "  --logits OUT     file receiving n_tokens x n_vocab float32 logits\n"
    "  --no-bos         do not add the beginning-of-sequence token\n";

int kiln_cmd_eval(int argc, char **argv) {
    struct llm_args a;
    int rc = kiln__llm_parse_args(argc, argv, LLM_OPT_PROMPT | LLM_OPT_LOGITS | LLM_OPT_NO_BOS | LLM_OPT_RUN,
                                  usage, &a);
    if (rc) return rc < 0 ? 0 : rc;
    if (!a.prompt || !a.logits_out) {
        fprintf(stderr, "kiln eval: -p PROMPT and --logits OUT are required\n%s", usage);
        return 2;
    }
    kiln_llm *m = kiln__llm_cli_load("eval", &a, false);
    if (!m) return 1;
    size_t len = strlen(a.prompt), n = 0, cap = (size_t)kiln_llm_n_ctx(m) + 1;
    int32_t n_vocab = kiln_llm_n_vocab(m);
    int32_t *ids = malloc(cap * sizeof *ids);
    float *logits = NULL;
    kiln_status st = ids ? kiln_llm_tokenize(m, a.prompt, len, !a.no_bos, true, ids, cap, &n) : KILN_ERR_OUT_OF_MEMORY;
    if (st == KILN_OK && n == 0) {
        fprintf(stderr, "kiln eval: the prompt makes no tokens\n");
        st = KILN_ERR_INVALID_ARG;
    } else if (st == KILN_ERR_TOO_LARGE || (st == KILN_OK && n > (size_t)kiln_llm_n_ctx(m))) {
        fprintf(stderr, "kiln eval: the prompt has more tokens than the context of %d (raise -c)\n",
                (int)kiln_llm_n_ctx(m));
        st = KILN_ERR_CONTEXT_FULL;
    } else if (st == KILN_OK) {
        logits = malloc(n * (size_t)n_vocab * sizeof *logits);
        st = logits ? kiln_llm_eval(m, ids, (int32_t)n, 0, KILN_LOGITS_ALL, logits) : KILN_ERR_OUT_OF_MEMORY;
        if (st != KILN_OK) fprintf(stderr, "kiln eval: %s: %s\n", kiln_status_str(st), kiln_last_error());
    } else {
        fprintf(stderr, "kiln eval: %s: %s\n", kiln_status_str(st), kiln_last_error());
    }
    if (st == KILN_OK) {
        FILE *f = fopen(a.logits_out, "wb");
        size_t count = n * (size_t)n_vocab;
        bool ok = f && fwrite(logits, sizeof *logits, count, f) == count;
        if (f && fclose(f) != 0) ok = false;
        if (!ok) {
            fprintf(stderr, "kiln eval: cannot write %s: %s\n", a.logits_out, strerror(errno));
            st = KILN_ERR_IO;
        } else {
            fprintf(stderr, "%zu tokens x %d logits written to %s\n", n, (int)n_vocab, a.logits_out);
            for (size_t i = 0; i < n; i++) printf(i ? " %d" : "%d", (int)ids[i]);
            putchar('\n');
        }
    }
    free(ids);
    free(logits);
    kiln_llm_free(m);
    return st == KILN_OK ? 0 : 1;
}
