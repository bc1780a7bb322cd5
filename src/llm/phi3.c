/* src/llm/phi3.c - Phi-3 (Phi3ForCausalLM): the registry's load slot.
 *
 * Mirrors transformers' modeling_phi3.py. Quirks:
 *   - The Llama layout (RMSNorm, SwiGLU, no biases) with fused projections:
 *     one qkv matrix whose rows are [q; k; v] (qkv_proj / attn_qkv) and one
 *     gate/up matrix whose rows are [gate; up] (gate_up_proj / ffn_up of
 *     2 x intermediate_size rows).
 *   - NeoX rope pairing in GGUF and HF alike (no permutation); an optional
 *     partial_rotary_factor in config.json (GGUF rope.dimension_count).
 *   - Sliding-window attention when config.json sets "sliding_window"
 *     (Phi-3-mini: 2047) or GGUF phi3.attention.sliding_window.
 *   - Long-context "longrope" scaling (Phi-3-*-128k, Phi-3.5): two lists of
 *     per-frequency divisors, short and long (GGUF rope_factors_short /
 *     rope_factors_long tensors, config.json rope_scaling short_factor /
 *     long_factor); the long list when the context kiln runs with exceeds
 *     original_max_position_embeddings (as llama.cpp picks; transformers
 *     picks by the current sequence length). cos and sin are multiplied by
 *     sqrt(1 + ln(max_pos / orig) / ln(orig)) (GGUF rope.scaling.attn_factor).
 *   - Norm epsilon: GGUF attention.layer_norm_rms_epsilon, config rms_norm_eps.
 */
#include "formats/weights.h"
#include "llm/llm_internal.h"

static const struct kiln_llm_names gguf_names = {
    .tok_embd = "token_embd", .out_norm = "output_norm", .output = "output",
    .attn_norm = "blk.%d.attn_norm", .wqkv = "blk.%d.attn_qkv", .wo = "blk.%d.attn_output",
    .ffn_norm = "blk.%d.ffn_norm", .w_up = "blk.%d.ffn_up", .w_down = "blk.%d.ffn_down",
};
static const struct kiln_llm_names hf_names = {
    .tok_embd = "model.embed_tokens", .out_norm = "model.norm", .output = "lm_head",
    .attn_norm = "model.layers.%d.input_layernorm", .wqkv = "model.layers.%d.self_attn.qkv_proj",
    .wo = "model.layers.%d.self_attn.o_proj",
    .ffn_norm = "model.layers.%d.post_attention_layernorm",
    .w_up = "model.layers.%d.mlp.gate_up_proj", .w_down = "model.layers.%d.mlp.down_proj",
};

/* Phi3Config's defaults. */
static const struct kiln_llm_defaults phi3_defaults = {
    .n_ctx_train = 4096, .norm_eps = 1e-5f, .rope_theta = 10000.0f, .partial_rotary = 1.0f,
    .hf_eps_key = "rms_norm_eps", .hf_sliding_window = true, .hf_act = "silu",
};

kiln_status kiln__phi3_load(struct kiln_llm *m, const struct kiln_weights *w) {
    (void)w;
    kiln_status st = kiln__llm_read_hparams(m, &phi3_defaults);
    if (st != KILN_OK) return st;
    return kiln__llm_bind_tensors(m, &gguf_names, &hf_names);
}
