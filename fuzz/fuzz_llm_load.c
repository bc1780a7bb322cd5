/* fuzz/fuzz_llm_load.c - libFuzzer target for loading a text model from a
 * GGUF file: hyperparameters, tensor binding and shape checks, capabilities
 * and the tokenizer. Any input must be refused with a message or give a
 * model that evaluates, generates and tokenizes without a fault.
 *
 * The loader takes a path, so each input is written to one temporary file.
 * Seeds (fuzz/corpus/fuzz_llm_load/) are tiny models written by
 * tests/llm_tiny.h (llama and phi2 layouts, Q8_0 and F16 weights).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kiln/kiln.h"

/* The temporary file every input goes through (created once). */
static char path[64];

static int init_path(void) {
    if (path[0]) return 0;
    snprintf(path, sizeof path, "/tmp/kiln-fuzz-llm-XXXXXX");
    int fd = mkstemp(path);
    if (fd < 0) return -1;
    close(fd);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (init_path() != 0) return 0;
    FILE *f = fopen(path, "wb");
    if (!f) return 0;
    size_t wrote = fwrite(data, 1, size, f);
    fclose(f);
    if (wrote != size) return 0;

    kiln_llm_params p = kiln_llm_default_params();
    p.n_threads = 1;
    p.n_ctx = 8;
    p.n_batch = 4;
    kiln_llm *m = NULL;
    if (kiln_llm_load(path, p, &m) != KILN_OK) {
        if (m || kiln_last_error()[0] == '\0') abort(); /* a failure always says why */
        return 0;
    }
    kiln_text_caps caps;
    kiln_llm_caps(m, &caps);
    int32_t n_vocab = kiln_llm_n_vocab(m);
    int32_t tok[3] = {0, n_vocab - 1, n_vocab / 2};
    float *logits = malloc((size_t)n_vocab * 3 * sizeof *logits);
    if (logits && kiln_llm_eval(m, tok, 3, 0, KILN_LOGITS_ALL, logits) == KILN_OK) {
        kiln_generate_params gp = kiln_generate_default_params();
        gp.prompt_tokens = tok;
        gp.n_prompt_tokens = 2;
        gp.max_tokens = 3;
        kiln_llm_generate(m, &gp, NULL);
    }
    free(logits);
    int32_t ids[16];
    size_t n = 0;
    kiln_llm_tokenize(m, "hello world", 11, true, true, ids, 16, &n);
    kiln_llm_free(m);
    return 0;
}
