/* src/llm/registry.c - the sealed table of LLM implementations.
 *
 * The only place an LLM architecture is bound to its implementation. The
 * table is indexed by position in KILN_LLM_ARCH_LIST, and its length is tied
 * to that list at compile time: adding a name to kiln/arch.h without an
 * entry here (or the reverse) fails the build.
 */
#include "llm/llm_internal.h"
#include "llm/model_impl.h"

/* Index of an LLM architecture in the table (image families come first). */
#define LLM_INDEX(arch) ((arch) - KILN_IMAGE_FAMILY_COUNT)

static const struct kiln_llm_impl llm_impls[] = {
    /* Llama 1/2/3: RMSNorm, SwiGLU, GQA. GGUF stores q/k permuted so that
     * interleaved rope pairing equals HF's rotate_half. */
    [LLM_INDEX(KILN_ARCH_LLAMA)] = {
        .arch = KILN_ARCH_LLAMA,
        .reference = "LlamaForCausalLM",
        .quirks = {.rope = KILN_ROPE_INTERLEAVED, .norm = KILN_NORM_RMS, .ffn = KILN_FFN_SWIGLU,
                   .norm_eps_key = "attention.layer_norm_rms_epsilon"},
        .load = kiln__llama_load,
        .forward = kiln__llm_forward,
    },
    /* Mistral: the Llama layout plus an optional sliding attention window. */
    [LLM_INDEX(KILN_ARCH_MISTRAL)] = {
        .arch = KILN_ARCH_MISTRAL,
        .reference = "MistralForCausalLM",
        .quirks = {.rope = KILN_ROPE_INTERLEAVED, .norm = KILN_NORM_RMS, .ffn = KILN_FFN_SWIGLU,
                   .sliding_window = true, .norm_eps_key = "attention.layer_norm_rms_epsilon"},
        .load = kiln__llama_load,
        .forward = kiln__llm_forward,
    },
    /* Qwen2: Llama-like with biases on q, k, v; NeoX rope, no permutation. */
    [LLM_INDEX(KILN_ARCH_QWEN2)] = {
        .arch = KILN_ARCH_QWEN2,
        .reference = "Qwen2ForCausalLM",
        .quirks = {.rope = KILN_ROPE_NEOX, .norm = KILN_NORM_RMS, .ffn = KILN_FFN_SWIGLU,
                   .qkv_bias = true, .norm_eps_key = "attention.layer_norm_rms_epsilon"},
        .load = kiln__qwen2_load,
        .forward = kiln__llm_forward,
    },
    /* Phi-2: one LayerNorm feeds attention and MLP in parallel; partial
     * rotary; GELU; biases everywhere including the LM head. */
    [LLM_INDEX(KILN_ARCH_PHI2)] = {
        .arch = KILN_ARCH_PHI2,
        .reference = "PhiForCausalLM",
        .quirks = {.rope = KILN_ROPE_NEOX, .norm = KILN_NORM_LAYER, .ffn = KILN_FFN_GELU,
                   .qkv_bias = true, .parallel_block = true, .partial_rotary = true,
                   .output_bias = true, .proj_bias = true,
                   .norm_eps_key = "attention.layer_norm_epsilon"},
        .load = kiln__phi2_load,
        .forward = kiln__llm_forward,
    },
    /* Phi-3: Llama-like with fused qkv and fused gate/up projections, and a
     * sliding window when its config sets one (Phi-3-mini: 2047). */
    [LLM_INDEX(KILN_ARCH_PHI3)] = {
        .arch = KILN_ARCH_PHI3,
        .reference = "Phi3ForCausalLM",
        .quirks = {.rope = KILN_ROPE_NEOX, .norm = KILN_NORM_RMS, .ffn = KILN_FFN_SWIGLU,
                   .fused_qkv = true, .fused_gate_up = true, .sliding_window = true,
                   .norm_eps_key = "attention.layer_norm_rms_epsilon"},
        .load = kiln__phi3_load,
        .forward = kiln__llm_forward,
    },
};

_Static_assert(sizeof llm_impls / sizeof llm_impls[0] == KILN_LLM_ARCH_COUNT,
               "one LLM implementation per architecture in KILN_LLM_ARCH_LIST");

const struct kiln_llm_impl *kiln__llm_impl(kiln_arch arch) {
    if ((unsigned)arch >= KILN_ARCH_UNKNOWN || kiln_arch_worker(arch) != KILN_WORKER_LLM)
        return NULL;
    return &llm_impls[LLM_INDEX(arch)];
}
