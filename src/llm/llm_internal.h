/* src/llm/llm_internal.h - the loaded model (struct kiln_llm) and the parts
 * of the engine shared by its files (internal).
 *
 * Loading (llm.c) opens the weights, finds the architecture's entry in the
 * sealed registry and calls its `load`, which reads the hyperparameters
 * (hparams.c) and binds every tensor to a role with its shape checked
 * (tensors.c). Then llm.c sizes the KV cache (kv_cache.c) and the scratch
 * buffers once. The architectures' `forward` run the shared transformer
 * (forward.c) with their quirks.
 */
#ifndef KILN_LLM_INTERNAL_H
#define KILN_LLM_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/threadpool.h"
#include "kernels/qmatmul.h"
#include "kiln/llm.h"
#include "llm/model_impl.h"

struct kiln_weights;
struct kiln_vocab;

/* A weight matrix [rows][cols] read in place from the mapped file (or the
 * weights' copy in memory, which weight_layout.c may rewrite at load). */
struct kiln_wmat {
    kiln_dtype dtype;    /* element type of the stored values */
    const void *data;    /* first row; NULL when the model has no such matrix */
    int64_t rows;        /* output features (matmul n_out) */
    int64_t cols;        /* input features (matmul n_in) */
    kiln_qlayout layout; /* order of the bytes: the file's, or interleaved by 16 rows */
};

/* How rope frequencies are rescaled for long contexts. */
typedef enum kiln_rope_scaling {
    KILN_ROPE_SCALING_NONE,   /* plain rope */
    KILN_ROPE_SCALING_LINEAR, /* positions divided by a factor (every frequency / factor) */
    KILN_ROPE_SCALING_LLAMA3, /* per-frequency factors (Llama 3.1): rope_freqs tensor or config */
    KILN_ROPE_SCALING_LONGROPE, /* Phi-3 "longrope" (formerly "su"): short or long per-frequency
                                   factors by context size, rotated values scaled */
} kiln_rope_scaling;

/* Hyperparameters, from GGUF metadata or config.json with family defaults. */
struct kiln_llm_hparams {
    int32_t n_vocab;        /* vocabulary size (rows of the embedding) */
    int32_t n_ctx_train;    /* context length the model was trained for (tokens) */
    int32_t n_embd;         /* width of the residual stream */
    int32_t n_layer;        /* transformer blocks */
    int32_t n_ff;           /* feed-forward hidden width */
    int32_t n_head;         /* query heads */
    int32_t n_head_kv;      /* key/value heads (n_head divides by it: GQA) */
    int32_t head_dim;       /* values per head */
    int32_t n_rot;          /* rotated values per head (even, <= head_dim) */
    float norm_eps;         /* epsilon of RMSNorm / LayerNorm */
    float rope_theta;       /* rope base frequency */
    kiln_rope_scaling rope_scaling; /* frequency rescaling kind */
    float rope_factor;      /* LINEAR and LLAMA3: the scaling factor */
    float rope_low_freq;    /* LLAMA3 from config.json: low_freq_factor */
    float rope_high_freq;   /* LLAMA3 from config.json: high_freq_factor */
    int32_t rope_orig_ctx;  /* LLAMA3 from config.json, LONGROPE: the context the model was
                               pretrained for (original_max_position_embeddings) */
    float rope_attn_factor; /* multiplier of the rotated values: LONGROPE's
                               sqrt(1 + ln(n_ctx_train / orig) / ln(orig)) or the GGUF's
                               rope.scaling.attn_factor; 1 otherwise */
    kiln_rope_pairing rope_pairing; /* effective pairing for this file (see the arch files) */
    int32_t sliding_window; /* attend to at most this many latest positions; 0 = all */
    bool tied_embeddings;   /* config.json says the LM head is the embedding */
};

/* One transformer block's tensors. Vectors are float32 (converted at load
 * when stored otherwise); a NULL bias means none. */
struct kiln_llm_layer {
    const float *attn_norm;    /* [n_embd] */
    const float *attn_norm_b;  /* [n_embd] LayerNorm bias, or NULL */
    struct kiln_wmat wq;       /* [n_head*head_dim][n_embd], or no data when fused */
    struct kiln_wmat wk;       /* [n_head_kv*head_dim][n_embd] */
    struct kiln_wmat wv;       /* [n_head_kv*head_dim][n_embd] */
    struct kiln_wmat wqkv;     /* fused [q; k; v] rows, or no data */
    const float *bq, *bk, *bv; /* biases of q, k, v (separate or the parts of a fused one) */
    struct kiln_wmat wo;       /* [n_embd][n_head*head_dim] */
    const float *bo;           /* [n_embd] or NULL */
    const float *ffn_norm;     /* [n_embd]; NULL in parallel blocks */
    const float *ffn_norm_b;   /* [n_embd] or NULL */
    struct kiln_wmat w_gate;   /* SwiGLU gate [n_ff][n_embd], or no data */
    struct kiln_wmat w_up;     /* [n_ff][n_embd], or fused [gate; up] [2*n_ff][n_embd] */
    const float *b_up;         /* [n_ff] or NULL */
    struct kiln_wmat w_down;   /* [n_embd][n_ff] */
    const float *b_down;       /* [n_embd] or NULL */
};

/* The KV cache: per layer, keys and values at every position. */
struct kiln_kv_cache {
    kiln_kv_type type;   /* F16 or F32 elements */
    int32_t n_ctx;       /* positions */
    int32_t row;         /* values per position and layer (n_head_kv * head_dim) */
    void *k;             /* [n_layer][n_ctx][row] */
    void *v;             /* [n_layer][n_ctx][row] */
    size_t bytes;        /* size of each of k and v */
};

/* Scratch buffers of the forward pass, sized at load for n_batch tokens. */
struct kiln_llm_scratch {
    float *x;       /* [n_batch][n_embd] residual stream */
    float *h;       /* [n_batch][n_embd] normed input of a sub-block */
    float *q;       /* [n_batch][n_head*head_dim] */
    float *k;       /* [n_batch][n_head_kv*head_dim] */
    float *v;       /* [n_batch][n_head_kv*head_dim] */
    float *qkv;     /* [n_batch][q+k+v] fused projection output (fused models) */
    float *att;     /* [n_batch][n_head*head_dim] attention output */
    float *o;       /* [n_batch][n_embd] projection output */
    float *ff;      /* [n_batch][2*n_ff] feed-forward hidden (gate and up) */
    float *ff2;     /* [n_batch][n_ff] up (separate gate/up) */
    float *scores;  /* [n_threads][n_ctx] attention weights */
    float *mm;      /* matmul row scratch [n_threads][largest n_in] */
    float *flash;   /* [n_threads][kiln__flash_scratch_floats(head_dim)] blocked prompt attention */
    const float *rope_ff;       /* [n_rot/2] rope frequency divisors in use, or NULL */
    const float *rope_ff_short; /* LONGROPE: [n_rot/2] factors for contexts up to rope_orig_ctx */
    const float *rope_ff_long;  /* LONGROPE: [n_rot/2] factors for longer contexts */
};

/* A loaded model. */
struct kiln_llm {
    const struct kiln_llm_impl *impl; /* registry entry of the architecture */
    kiln_llm_params params;           /* the load parameters, resolved (threads, ctx, batch) */
    struct kiln_weights *w;           /* the opened files (owns the mappings) */
    struct kiln_vocab *vocab;         /* tokenizer, or NULL when the model has none */
    char vocab_error[256];            /* why a tokenizer.json present could not be used, or "" */
    struct kiln_llm_hparams hp;       /* hyperparameters */
    bool from_gguf;                   /* weights come from a GGUF file (tensor names, rope) */

    /* weights */
    const void *tok_embd;             /* [n_vocab][n_embd] embedding rows */
    kiln_dtype tok_embd_type;         /* their element type */
    struct kiln_llm_layer *layers;    /* [n_layer] */
    const float *out_norm;            /* [n_embd] */
    const float *out_norm_b;          /* [n_embd] or NULL */
    struct kiln_wmat output;          /* [n_vocab][n_embd] LM head (the embedding when tied) */
    const float *output_b;            /* [n_vocab] or NULL */
    uint64_t weight_bytes;            /* bytes of all tensors the model reads */
    void **owned;                     /* float32 copies of vectors stored in other types */
    size_t n_owned;                   /* entries of owned */

    /* run time */
    kiln_pool *pool;                  /* threads of the forward pass */
    struct kiln_kv_cache kv;          /* the cache */
    int32_t *cache_tokens;            /* [n_ctx] token at each cached position */
    int32_t n_past;                   /* positions filled */
    bool logits_all;                  /* forward writes every row's logits (else the last) */
    struct kiln_llm_scratch s;        /* scratch */
    float *logits;                    /* [n_vocab] last logits (generation) */

    /* capabilities */
    kiln_text_caps caps;              /* what kiln_llm_caps returns */
    char *chat_template;              /* owned copy behind caps.chat_template */
};

/* ---- hparams.c ---- */

/* Per-family values used where the file does not give one. */
struct kiln_llm_defaults {
    int32_t n_ctx_train;       /* max_position_embeddings */
    float norm_eps;            /* rms_norm_eps / layer_norm_eps */
    float rope_theta;          /* rope_theta */
    float partial_rotary;      /* fraction of each head that rotates (config.json) */
    const char *hf_eps_key;    /* config.json key of the norm epsilon */
    bool hf_sliding_window;    /* config.json "sliding_window" applies (mistral, phi3) */
    const char *hf_act;        /* the config.json "hidden_act" the family's forward pass computes */
};

/* Longrope's multiplier of the rotated values, as transformers computes it:
 * sqrt(1 + ln(n_ctx_train / orig_ctx) / ln(orig_ctx)), 1 when the model was
 * not extended. */
float kiln__longrope_attn_factor(int32_t n_ctx_train, int32_t orig_ctx);

/* Fill m->hp from GGUF metadata "<arch>.*" or from config.json, with the
 * family's defaults; checks the values are consistent. */
kiln_status kiln__llm_read_hparams(struct kiln_llm *m, const struct kiln_llm_defaults *def);

/* ---- tensors.c ---- */

/* Tensor names of a family: printf templates with one %d for the block,
 * without the ".weight" / ".bias" suffix; NULL where the family has none.
 * GGUF names are llama.cpp's; HF names are transformers'. */
struct kiln_llm_names {
    const char *tok_embd, *out_norm, *output;
    const char *attn_norm, *wq, *wk, *wv, *wqkv, *wo;
    const char *ffn_norm, *w_gate, *w_up, *w_down;
};

/* Bind every tensor of a standard decoder (embedding, blocks, final norm,
 * LM head) using the GGUF or HF names, checking each shape against m->hp;
 * fused/parallel/bias layout from m->impl->quirks. */
kiln_status kiln__llm_bind_tensors(struct kiln_llm *m, const struct kiln_llm_names *gguf,
                                   const struct kiln_llm_names *hf);

/* ---- weight_layout.c ---- */

/* Rewrite the weight matrices, once at load, into what the kernels read
 * fastest, where the weights are a copy in memory (not the file mapping):
 * with f16_as_bf16, F16 matrices into BF16 (the rounding the per-call path
 * would do on every call); else, unless exact_matmul, quantized matrices
 * that kiln__qmatmul_x16_ok takes into the x16 layout. A matrix that shares
 * its bytes with the token embedding (a tied LM head) stays as it is.
 * Needs m->pool. */
kiln_status kiln__llm_arrange_weights(struct kiln_llm *m);

/* ---- llama_layout.c ---- */

/* The tensor names of the Llama layout (separate q/k/v, gate/up/down MLP),
 * which Llama, Mistral and Qwen2 share in GGUF and in HF folders alike. */
extern const struct kiln_llm_names kiln__llama_layout_gguf_names;
extern const struct kiln_llm_names kiln__llama_layout_hf_names;

/* ---- forward.c ---- */

/* The shared decoder forward pass for n tokens (n <= n_batch) at positions
 * pos..pos+n-1 whose keys/values go into the cache: writes the last row's
 * logits, or every row's when m->logits_all, to `logits` (NULL = none). */
kiln_status kiln__llm_forward(struct kiln_llm *m, const int32_t *tok, int n, int pos,
                              float *logits);

/* ---- forward_rows.c ---- */

/* For each of n tokens' rows of n_embd values: x += add (add may be
 * NULL: a residual branch not yet added), then out = norm(x) with scale w
 * and shift b per the quirks. Shared out over the pool by tokens when n > 1. */
void kiln__llm_norm_rows(struct kiln_llm *m, float *out, float *x, const float *add, int n, const float *w,
                         const float *b);

/* Rope on n tokens' query rows q ([n][n_head * head_dim]) and key rows k
 * ([n][n_head_kv * head_dim]) at positions pos..pos+n-1, per the model's
 * pairing, theta and factors; over the pool when n > 1. */
void kiln__llm_rope_rows(struct kiln_llm *m, float *q, float *k, int n, int pos);

/* ---- kv_cache.c ---- */

/* Allocate the cache for m->hp and n_ctx positions. */
kiln_status kiln__kv_init(struct kiln_kv_cache *kv, kiln_kv_type type, int32_t n_layer,
                          int32_t n_ctx, int32_t row);
void kiln__kv_free(struct kiln_kv_cache *kv);
/* Store n rows of keys and values (each `row` floats) of layer l from
 * position pos on. */
void kiln__kv_store(struct kiln_kv_cache *kv, int l, int pos, int n, const float *k,
                    const float *v);
/* First key / value of layer l at position 0 (rows of kv->row elements). */
const void *kiln__kv_keys(const struct kiln_kv_cache *kv, int l);
const void *kiln__kv_values(const struct kiln_kv_cache *kv, int l);

/* ---- llama.c, qwen2.c, phi2.c, phi3.c: the registry's load slots (their
 * forward slot is kiln__llm_forward, steered by the quirks) ---- */

kiln_status kiln__llama_load(struct kiln_llm *m, const struct kiln_weights *w);
kiln_status kiln__qwen2_load(struct kiln_llm *m, const struct kiln_weights *w);
kiln_status kiln__phi2_load(struct kiln_llm *m, const struct kiln_weights *w);
kiln_status kiln__phi3_load(struct kiln_llm *m, const struct kiln_weights *w);

#endif /* KILN_LLM_INTERNAL_H */
