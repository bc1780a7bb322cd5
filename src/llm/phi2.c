/* src/llm/phi2.c - Phi-2 (PhiForCausalLM, model_type "phi"): the
 * registry's load slot.
 *
 * Mirrors transformers' modeling_phi.py. Quirks:
 *   - One LayerNorm (with bias) per block feeds attention and the MLP in
 *     parallel: x = x + attn(ln(x)) + mlp(ln(x)).
 *   - Biases everywhere: q, k, v, the attention output (dense), fc1, fc2,
 *     the final LayerNorm and the LM head.
 *   - MLP: fc2(gelu_new(fc1(x))), gelu_new being GELU's tanh approximation.
 *   - Partial rotary: only the first partial_rotary_factor x head_dim values
 *     of each head rotate (phi-2: 32 of 80), NeoX pairing over those; GGUF
 *     rope.dimension_count gives the count.
 *   - GGUF phi2 files may hold one fused attn_qkv ([q; k; v] rows, with its
 *     bias) instead of attn_q/k/v; both load.
 *   - Norm epsilon: GGUF attention.layer_norm_epsilon, config layer_norm_eps.
 */
#include "formats/weights.h"
#include "llm/llm_internal.h"

static const struct kiln_llm_names gguf_names = {
    .tok_embd = "token_embd", .out_norm = "output_norm", .output = "output",
    .attn_norm = "blk.%d.attn_norm", .wq = "blk.%d.attn_q", .wk = "blk.%d.attn_k",
    .wv = "blk.%d.attn_v", .wqkv = "blk.%d.attn_qkv", .wo = "blk.%d.attn_output",
    .w_up = "blk.%d.ffn_up", .w_down = "blk.%d.ffn_down",
};
static const struct kiln_llm_names hf_names = {
    .tok_embd = "model.embed_tokens", .out_norm = "model.final_layernorm", .output = "lm_head",
    .attn_norm = "model.layers.%d.input_layernorm", .wq = "model.layers.%d.self_attn.q_proj",
    .wk = "model.layers.%d.self_attn.k_proj", .wv = "model.layers.%d.self_attn.v_proj",
    .wo = "model.layers.%d.self_attn.dense",
    .w_up = "model.layers.%d.mlp.fc1", .w_down = "model.layers.%d.mlp.fc2",
};

/* PhiConfig's defaults. */
static const struct kiln_llm_defaults phi2_defaults = {
    .n_ctx_train = 2048, .norm_eps = 1e-5f, .rope_theta = 10000.0f, .partial_rotary = 0.5f,
    .hf_eps_key = "layer_norm_eps", .hf_sliding_window = false, .hf_act = "gelu_new",
};

kiln_status kiln__phi2_load(struct kiln_llm *m, const struct kiln_weights *w) {
    (void)w;
    kiln_status st = kiln__llm_read_hparams(m, &phi2_defaults);
    if (st != KILN_OK) return st;
    return kiln__llm_bind_tensors(m, &gguf_names, &hf_names);
}
