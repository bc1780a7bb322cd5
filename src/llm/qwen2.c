/* src/llm/qwen2.c - Qwen2 (Qwen2ForCausalLM): the registry's load slot.
 *
 * Mirrors transformers' modeling_qwen2.py. Quirks:
 *   - The Llama layout (RMSNorm, SwiGLU, GQA) with biases on the q, k and v
 *     projections (required); none on the output projection or the MLP.
 *   - NeoX rope pairing in GGUF and HF alike (the converter does not
 *     permute q/k for qwen2).
 *   - Small models tie the LM head to the embedding (tie_word_embeddings;
 *     no output.weight in GGUF).
 *   - Sliding window only with use_sliding_window (and then only from layer
 *     max_window_layers on): refused as unsupported; released Qwen2 models
 *     leave it off.
 *   - Norm epsilon: GGUF attention.layer_norm_rms_epsilon, config rms_norm_eps.
 */
#include "formats/weights.h"
#include "llm/llm_internal.h"

/* Qwen2Config's defaults. */
static const struct kiln_llm_defaults qwen2_defaults = {
    .n_ctx_train = 32768, .norm_eps = 1e-6f, .rope_theta = 10000.0f, .partial_rotary = 1.0f,
    .hf_eps_key = "rms_norm_eps", .hf_sliding_window = false, .hf_act = "silu",
};

kiln_status kiln__qwen2_load(struct kiln_llm *m, const struct kiln_weights *w) {
    (void)w;
    kiln_status st = kiln__llm_read_hparams(m, &qwen2_defaults);
    if (st != KILN_OK) return st;
    return kiln__llm_bind_tensors(m, &kiln__llama_layout_gguf_names, &kiln__llama_layout_hf_names);
}
