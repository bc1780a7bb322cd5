/* src/cli/cmd_perplexity.c - `kiln perplexity`: perplexity of a model over
 * a text file. The whole file is tokenized as one stream with BOS first
 * (when the tokenizer has one) and cut into non-overlapping windows of CTX
 * tokens; each window is evaluated from an empty cache and every token but
 * its first is scored by the logits of the token before it. The result is
 * exp(mean negative log-likelihood) over all scored tokens. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/commands.h"
#include "cli/llm_cli.h"

static const char usage[] =
    "usage: kiln perplexity -m MODEL -f TEXT [-c CTX] [-t THREADS] [-b BATCH] [--kv f16|f32]\n"
    "       [--exact-matmul]  (f32 products for quantized and BF16 weights) [--f16-as-bf16] (F16 rounded\n"
    "       to bf16: faster, lossy) [--mmap] (weights through the file mapping)\n"
    "  -m MODEL   GGUF file or model folder\n"
    "  -f TEXT    text file to score\n"
    "  -c CTX     window length in tokens (default: 512, or the model's context if shorter)\n";

/* -log softmax(logits)[target], in double. */
static double nll(const float *logits, int32_t n_vocab, int32_t target) {
    double max = logits[0];
    for (int32_t i = 1; i < n_vocab; i++)
        if (logits[i] > max) max = logits[i];
    double sum = 0.0;
    for (int32_t i = 0; i < n_vocab; i++) sum += exp((double)logits[i] - max);
    return log(sum) - ((double)logits[target] - max);
}

int kiln_cmd_perplexity(int argc, char **argv) {
    struct llm_args a;
    int rc = kiln__llm_parse_args(argc, argv, LLM_OPT_FILE | LLM_OPT_RUN, usage, &a);
    if (rc) return rc < 0 ? 0 : rc;
    if (!a.file) {
        fprintf(stderr, "kiln perplexity: -f TEXT is required\n%s", usage);
        return 2;
    }
    size_t len = 0;
    char *text = kiln__read_text_file("perplexity", a.file, &len);
    if (!text) return 1;
    kiln_llm *m = kiln__llm_cli_load("perplexity", &a, false);
    if (!m) {
        free(text);
        return 1;
    }
    /* Without -c the window is 512 tokens, or the model's (trained) context
     * when that is shorter: scoring past it measures extrapolation. */
    int32_t window = a.load.n_ctx;
    if (window == 0) window = kiln_llm_n_ctx(m) < 512 ? kiln_llm_n_ctx(m) : 512;
    int32_t n_vocab = kiln_llm_n_vocab(m), bos = kiln_llm_token_bos(m);
    size_t cap = len + 2, n = 0;
    int32_t *ids = malloc(cap * sizeof *ids);
    float *logits = malloc((size_t)window * (size_t)n_vocab * sizeof *logits);
    kiln_status st = ids && logits ? KILN_OK : KILN_ERR_OUT_OF_MEMORY;
    size_t first = bos >= 0 ? 1 : 0;
    if (st == KILN_OK) {
        if (bos >= 0) ids[0] = bos;
        st = kiln_llm_tokenize(m, text, len, false, false, ids + first, cap - first, &n);
        n += first;
    }
    double sum = 0.0;
    size_t scored = 0;
    double t0 = kiln__cli_now();
    for (size_t start = 0; st == KILN_OK && start + 1 < n; start += (size_t)window) {
        int32_t w = n - start < (size_t)window ? (int32_t)(n - start) : window;
        if (w < 2) break;
        if ((st = kiln_llm_eval(m, ids + start, w, 0, KILN_LOGITS_ALL, logits)) != KILN_OK) break;
        for (int32_t i = 0; i + 1 < w; i++)
            sum += nll(logits + (size_t)i * (size_t)n_vocab, n_vocab, ids[start + (size_t)i + 1]);
        scored += (size_t)w - 1;
        fprintf(stderr, "window %zu: %zu tokens scored, running perplexity %.4f\n",
                start / (size_t)window + 1, scored, exp(sum / (double)scored));
    }
    if (st != KILN_OK) {
        fprintf(stderr, "kiln perplexity: %s: %s\n", kiln_status_str(st), kiln_last_error());
    } else if (scored == 0) {
        fprintf(stderr, "kiln perplexity: %s has fewer than 2 tokens\n", a.file);
        st = KILN_ERR_INVALID_ARG;
    } else {
        double secs = kiln__cli_now() - t0;
        printf("perplexity: %.4f over %zu tokens (%zu in the file, windows of %d)\n",
               exp(sum / (double)scored), scored, n, (int)window);
        fprintf(stderr, "%.2f s, %.1f tokens/s\n", secs, secs > 0 ? (double)n / secs : 0.0);
    }
    free(ids);
    free(logits);
    free(text);
    kiln_llm_free(m);
    return st == KILN_OK ? 0 : 1;
}
