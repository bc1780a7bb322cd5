/* src/llm/llama.c - Llama 1/2/3 (LlamaForCausalLM) and Mistral
 * (MistralForCausalLM): the registry's load slot for both.
 *
 * Mirrors transformers' modeling_llama.py / modeling_mistral.py. Quirks:
 *   - RMSNorm before attention and before the MLP; SwiGLU MLP
 *     down(silu(gate(x)) * up(x)); no biases (an optional q/k/v/o bias, as
 *     LlamaConfig.attention_bias gives, is read when the file has one).
 *   - Grouped-query attention: num_key_value_heads <= num_attention_heads.
 *   - Rope pairing depends on the file. llama.cpp's converter permutes the
 *     rows of q and k inside each head so that interleaved pairs (2i, 2i+1)
 *     of a GGUF file are HF's (i, i + d/2): GGUF -> interleaved (the
 *     registry's quirk). A Hugging Face folder holds the unpermuted rows and
 *     uses rotate_half: HF -> NeoX.
 *   - Llama 3.1 rope scaling ("llama3"): per-frequency divisors, from the
 *     GGUF rope_freqs tensor or computed from config.json's rope_scaling.
 *   - Tied embeddings: no output.weight / lm_head.weight (with
 *     tie_word_embeddings in config.json) -> the LM head is token_embd.
 *   - Mistral: sliding-window attention when config.json sets
 *     "sliding_window" (or GGUF <arch>.attention.sliding_window); Mistral
 *     GGUF files say "llama" and load here too.
 *   - Norm epsilon: GGUF attention.layer_norm_rms_epsilon, config rms_norm_eps.
 */
#include "formats/weights.h"
#include "llm/llm_internal.h"

/* LlamaConfig's defaults. */
static const struct kiln_llm_defaults llama_defaults = {
    .n_ctx_train = 2048, .norm_eps = 1e-6f, .rope_theta = 10000.0f, .partial_rotary = 1.0f,
    .hf_eps_key = "rms_norm_eps", .hf_sliding_window = false, .hf_act = "silu",
};
/* MistralConfig's defaults (its sliding_window default of 4096 applies
 * only when config.json has no such key, which save_pretrained never does). */
static const struct kiln_llm_defaults mistral_defaults = {
    .n_ctx_train = 4096 * 32, .norm_eps = 1e-6f, .rope_theta = 10000.0f, .partial_rotary = 1.0f,
    .hf_eps_key = "rms_norm_eps", .hf_sliding_window = true, .hf_act = "silu",
};

kiln_status kiln__llama_load(struct kiln_llm *m, const struct kiln_weights *w) {
    (void)w;
    bool mistral = m->impl->arch == KILN_ARCH_MISTRAL;
    kiln_status st = kiln__llm_read_hparams(m, mistral ? &mistral_defaults : &llama_defaults);
    if (st != KILN_OK) return st;
    /* HF folders keep q/k unpermuted: rotate_half pairing. */
    if (!m->from_gguf) m->hp.rope_pairing = KILN_ROPE_NEOX;
    return kiln__llm_bind_tensors(m, &kiln__llama_layout_gguf_names, &kiln__llama_layout_hf_names);
}
