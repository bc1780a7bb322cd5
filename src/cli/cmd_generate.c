/* src/cli/cmd_generate.c - `kiln generate`: stream a continuation of a
 * prompt to stdout; prompt and generation speed to stderr. */
#include <stdio.h>

#include "cli/commands.h"
#include "cli/llm_cli.h"

static const char usage[] =
    "usage: kiln generate -m MODEL -p PROMPT [options]\n"
    "  -m MODEL               GGUF file or Hugging Face folder\n"
    "  -p PROMPT              prompt text (special tokens such as <|eot_id|> are parsed)\n"
    "  -n N                   tokens to generate (default 128; 0 = until the context is full)\n"
    "  --temp T               temperature (default 0.8; 0 = greedy)\n"
    "  --top-k K              keep the K most likely tokens (default 40; 0 = off)\n"
    "  --top-p P              nucleus sampling (default 0.95; 1 = off)\n"
    "  --min-p P              drop tokens below P x the top probability (default 0.05)\n"
    "  --repeat-penalty R     penalise repeated tokens (default 1 = off)\n"
    "  --repeat-last-n N      tokens the penalties look at (default 64; -1 = all)\n"
    "  --presence-penalty F   (default 0)\n"
    "  --frequency-penalty F  (default 0)\n"
    "  --seed S               random seed (default 0)\n"
    "  --stop STR             stop before this text (repeatable)\n"
    "  -t THREADS             threads (default: all cores)\n"
    "  -c CTX                 context length (default: the model's, at most 4096)\n"
    "  -b BATCH               prompt tokens per forward pass (default 256)\n"
    "  --kv f16|f32           KV cache type (default f16)\n"
    "  --exact-matmul         f32 products for quantized and BF16 weights (default: 8-bit\n"
    "                         activations; bf16 ones for BF16 weights)\n"
    "  --f16-as-bf16          F16 weights rounded to bf16 (faster prompts, lossy; opt-in)\n"
    "  --mmap                 read weights through the file mapping (default: a copy in\n"
    "                         huge-page memory, faster to generate, slower to load)\n";

static int print_piece(const char *text, size_t len, int32_t token, void *user) {
    (void)token;
    (void)user;
    fwrite(text, 1, len, stdout);
    fflush(stdout);
    return 0;
}

int kiln_cmd_generate(int argc, char **argv) {
    struct llm_args a;
    int rc = kiln__llm_parse_args(argc, argv, LLM_OPT_PROMPT | LLM_OPT_GEN | LLM_OPT_RUN, usage, &a);
    if (rc) return rc < 0 ? 0 : rc;
    if (!a.prompt) {
        fprintf(stderr, "kiln generate: -p PROMPT is required\n%s", usage);
        return 2;
    }
    kiln_llm *m = kiln__llm_cli_load("generate", &a, false);
    if (!m) return 1;
    kiln_generate_params gp = kiln_generate_default_params();
    gp.prompt = a.prompt;
    gp.sampling = a.sampling;
    gp.max_tokens = a.n_predict;
    gp.stop = a.stop;
    gp.n_stop = a.n_stop;
    gp.on_token = print_piece;
    kiln_generate_result r;
    kiln_status st = kiln_llm_generate(m, &gp, &r);
    if (st != KILN_OK && r.n_prompt_tokens == 0) {
        /* nothing ran: no text, no speeds */
        fprintf(stderr, "kiln generate: %s: %s\n", kiln_status_str(st), kiln_last_error());
        kiln_llm_free(m);
        return 1;
    }
    fputc('\n', stdout);
    fflush(stdout);
    int generated = r.n_generated - (r.stop_reason == KILN_STOP_EOS ? 1 : 0);
    fprintf(stderr, "prompt: %d tokens in %.3f s (%.2f tokens/s)\n", (int)r.n_prompt_evaluated,
            r.prompt_seconds, r.prompt_seconds > 0 ? r.n_prompt_evaluated / r.prompt_seconds : 0.0);
    fprintf(stderr, "generation: %d tokens in %.3f s (%.2f tokens/s), stop: %s\n", generated,
            r.decode_seconds, r.decode_seconds > 0 ? r.n_generated / r.decode_seconds : 0.0,
            kiln_stop_reason_name(r.stop_reason));
    if (st != KILN_OK) fprintf(stderr, "kiln generate: %s: %s\n", kiln_status_str(st), kiln_last_error());
    kiln_llm_free(m);
    return st == KILN_OK ? 0 : 1;
}
