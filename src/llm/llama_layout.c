/* src/llm/llama_layout.c - the tensor names of the Llama layout, shared by
 * the families that store their weights that way (llama.c for Llama and
 * Mistral, qwen2.c for Qwen2): llama.cpp's GGUF names and transformers'
 * LlamaForCausalLM names, without the ".weight"/".bias" suffix. */
#include "llm/llm_internal.h"

const struct kiln_llm_names kiln__llama_layout_gguf_names = {
    .tok_embd = "token_embd", .out_norm = "output_norm", .output = "output",
    .attn_norm = "blk.%d.attn_norm", .wq = "blk.%d.attn_q", .wk = "blk.%d.attn_k",
    .wv = "blk.%d.attn_v", .wo = "blk.%d.attn_output",
    .ffn_norm = "blk.%d.ffn_norm", .w_gate = "blk.%d.ffn_gate", .w_up = "blk.%d.ffn_up",
    .w_down = "blk.%d.ffn_down",
};

const struct kiln_llm_names kiln__llama_layout_hf_names = {
    .tok_embd = "model.embed_tokens", .out_norm = "model.norm", .output = "lm_head",
    .attn_norm = "model.layers.%d.input_layernorm", .wq = "model.layers.%d.self_attn.q_proj",
    .wk = "model.layers.%d.self_attn.k_proj", .wv = "model.layers.%d.self_attn.v_proj",
    .wo = "model.layers.%d.self_attn.o_proj",
    .ffn_norm = "model.layers.%d.post_attention_layernorm",
    .w_gate = "model.layers.%d.mlp.gate_proj", .w_up = "model.layers.%d.mlp.up_proj",
    .w_down = "model.layers.%d.mlp.down_proj",
};
