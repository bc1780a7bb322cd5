/* src/llm/model_impl.h - the LLM implementation vtable (internal, never
 * installed).
 *
 * The set of implementations is closed: src/llm/registry.c holds the only
 * table, one entry per kiln_arch LLM architecture, and no function to add
 * one is exported. Each entry carries its family's quirks as data so tests
 * can assert them; the entry's functions do the family-specific work.
 */
#ifndef KILN_LLM_MODEL_IMPL_H
#define KILN_LLM_MODEL_IMPL_H

#include <stdbool.h>
#include <stdint.h>

#include "kiln/arch.h"
#include "kiln/status.h"

struct kiln_llm;     /* a loaded model (defined by the LLM engine) */
struct kiln_weights; /* tensors of an opened model file or folder */

/* How rotary embedding pairs the dimensions of a head. */
typedef enum kiln_rope_pairing {
    KILN_ROPE_INTERLEAVED, /* rotates (x[2i], x[2i+1]): GGUF llama after its q/k permutation */
    KILN_ROPE_NEOX,        /* rotates (x[i], x[i + d/2]): HF rotate_half, qwen2, phi2, phi3 */
} kiln_rope_pairing;

/* Normalisation of the residual stream. */
typedef enum kiln_norm_kind {
    KILN_NORM_RMS,   /* RMSNorm, weight only */
    KILN_NORM_LAYER, /* LayerNorm with weight and bias */
} kiln_norm_kind;

/* Feed-forward activation. */
typedef enum kiln_ffn_kind {
    KILN_FFN_SWIGLU, /* down(silu(gate(x)) * up(x)) */
    KILN_FFN_GELU,   /* down(gelu_tanh(up(x))), biases on both */
} kiln_ffn_kind;

/* Family traits that change the forward pass; data, so tests can check them. */
typedef struct kiln_llm_quirks {
    kiln_rope_pairing rope;   /* rotary pairing of the reference */
    kiln_norm_kind norm;      /* residual-stream norm */
    kiln_ffn_kind ffn;        /* feed-forward form */
    bool qkv_bias;            /* q, k, v projections have biases */
    bool fused_qkv;           /* one fused qkv weight (phi3) */
    bool fused_gate_up;       /* one fused gate/up weight (phi3) */
    bool parallel_block;      /* attention and MLP read the same normed input (phi2) */
    bool partial_rotary;      /* rope covers only part of each head (phi2) */
    bool output_bias;         /* the LM head has a bias (phi2) */
    bool proj_bias;           /* attention output and MLP projections have biases (phi2) */
    bool sliding_window;      /* may use windowed attention (mistral config) */
    const char *norm_eps_key; /* GGUF key suffix for the norm epsilon */
} kiln_llm_quirks;

/* One implementation: the reference it mirrors, its quirks and functions.
 * load reads hyperparameters and binds tensors (src/llm/<family>.c);
 * forward runs n tokens at positions pos.. and writes logits (the shared
 * kiln__llm_forward, steered by the quirks, serves every family today).
 * A NULL load or forward makes the loader answer KILN_ERR_UNSUPPORTED;
 * free_extra is optional. */
struct kiln_llm_impl {
    kiln_arch arch;            /* the architecture this entry implements */
    const char *reference;     /* Hugging Face class mirrored, e.g. "LlamaForCausalLM" */
    kiln_llm_quirks quirks;    /* traits of the family */
    kiln_status (*load)(struct kiln_llm *m, const struct kiln_weights *w);
    kiln_status (*forward)(struct kiln_llm *m, const int32_t *tok, int n, int pos, float *logits);
    void (*free_extra)(struct kiln_llm *m); /* optional, may be NULL */
};

/* The implementation for `arch`; NULL when arch is not an LLM architecture. */
const struct kiln_llm_impl *kiln__llm_impl(kiln_arch arch);

#endif /* KILN_LLM_MODEL_IMPL_H */
