/* kiln/llm.h - text generation: load a Llama-family or Phi-2 model from a
 * GGUF file or a Hugging Face folder, tokenize, evaluate, sample, generate.
 *
 * A kiln_llm handle owns the model's mapped weights, its tokenizer, a thread
 * pool, the KV cache and every scratch buffer; nothing is allocated per
 * token. The KV cache persists between calls: the handle remembers which
 * token sits at each cached position, and kiln_llm_generate() reuses the
 * longest cached prefix of a new prompt, so a chat that re-sends its whole
 * conversation only evaluates the new turn. One handle serves one caller at
 * a time (calls on the same handle must not overlap); separate handles are
 * independent. The exceptions read only what loading built and keep no
 * cache, so they may run on any thread while another call (a generation)
 * runs on the same handle: kiln_llm_tokenize, kiln_llm_detokenize,
 * kiln_llm_caps, _arch, _n_vocab, _n_ctx, _weight_bytes, _token_bos and
 * _token_eos (not kiln_llm_n_past, which a generation changes). The worker
 * daemon counts prompt tokens that way while a job generates. Errors are
 * per thread (kiln_last_error()).
 */
#ifndef KILN_LLM_H
#define KILN_LLM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kiln/arch.h"
#include "kiln/export.h"
#include "kiln/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* How the next token is chosen from the logits. Filters apply in this
 * order: penalties, top-k, top-p, min-p, temperature, then a draw. */
typedef struct kiln_sampling_params {
    float temperature;        /* softmax temperature; <= 0 means greedy (argmax) */
    int32_t top_k;            /* keep the k most likely tokens; 0 = off */
    float top_p;              /* keep the smallest set with probability >= top_p; 1 = off */
    float min_p;              /* drop tokens below min_p x the top probability; 0 = off */
    float repetition_penalty; /* divide positive (multiply negative) logits of seen tokens; 1 = off */
    float presence_penalty;   /* subtract once from logits of seen tokens; 0 = off */
    float frequency_penalty;  /* subtract per occurrence from logits of seen tokens; 0 = off */
    int32_t penalty_last_n;   /* tokens of history the penalties look at; 0 = off, -1 = all kept */
    uint64_t seed;            /* random seed: the same seed gives the same draws */
} kiln_sampling_params;

/* Defaults: temperature 0.8, top_k 40, top_p 0.95, min_p 0.05, no penalties,
 * penalty_last_n 64, seed 0. */
KILN_API kiln_sampling_params kiln_sampling_default_params(void);

/* ---- loading ---------------------------------------------------------- */

/* A loaded text model (opaque). */
typedef struct kiln_llm kiln_llm;

/* Element type of the KV cache. */
typedef enum kiln_kv_type {
    KILN_KV_F16, /* half the memory; keys and values rounded to binary16 (default) */
    KILN_KV_F32, /* exact float32 keys and values */
} kiln_kv_type;

/* Load progress: `done` of `total` weight bytes are resident. Return
 * nonzero to cancel the load (it then fails with KILN_ERR_CANCELLED). */
typedef int (*kiln_load_progress_fn)(uint64_t done, uint64_t total, void *user);

/* How to load a model. Start from kiln_llm_default_params(). */
typedef struct kiln_llm_params {
    int32_t n_threads;                /* worker threads incl. the caller; 0 = one per core */
    int32_t n_ctx;                    /* KV cache length in tokens; 0 = the model's training
                                         context, capped at KILN_LLM_DEFAULT_MAX_CTX */
    int32_t n_batch;                  /* prompt tokens evaluated per forward pass (matmul rows);
                                         0 = 256 */
    kiln_kv_type kv_type;             /* KV cache element type (default F16) */
    bool vocab_only;                  /* load only the tokenizer (GGUF vocab files): tokenize and
                                         detokenize work, evaluation fails with KILN_ERR_UNSUPPORTED */
    bool use_mmap;                    /* read weights through the file mapping; false (default):
                                         copy them into anonymous huge-page memory at load,
                                         which generation reads faster (docs/performance.md);
                                         a copy that does not fit in 3/4 of RAM falls back to
                                         the mapping */
    kiln_load_progress_fn progress;   /* called while weights are copied or paged in; NULL = none */
    void *progress_user;              /* passed to progress */
    bool exact_matmul;                /* false (default): Q8_0, Q4_0, Q4_K and Q6_K weights are
                                         multiplied by activations quantized to 8 bits per block of
                                         32 with integer dot products (fast; logits move by the
                                         activation rounding, about 1e-3 relative, as in
                                         llama.cpp); BF16 weights, on CPUs with AVX512-BF16, by
                                         activations rounded to bfloat16 (vdpbf16ps, as llama.cpp;
                                         at most 2^-8 of sum |w x|). true: every weight row is
                                         decoded to f32 and multiplied in f32 (slower; the float
                                         reference result) */
    bool f16_as_bf16;                 /* false (default). true: F16 weight rows are rounded to
                                         bfloat16 and multiplied with vdpbf16ps like BF16 ones
                                         (CPUs with AVX512-BF16 only; others keep the F16 path):
                                         about twice the prompt speed of the F16 path, at a cost
                                         in accuracy (docs/performance.md). Opt-in and lossy;
                                         ignored when exact_matmul is set */
} kiln_llm_params;

/* Largest context kiln picks by itself when n_ctx is 0 (tokens); a larger
 * n_ctx given explicitly is honoured. */
#define KILN_LLM_DEFAULT_MAX_CTX 4096

/* Defaults: all-cores threads, model context (capped), batch 256, F16 KV,
 * quantized-activation matmuls (exact_matmul false). */
KILN_API kiln_llm_params kiln_llm_default_params(void);

/* Load a GGUF file or a Hugging Face folder (config.json + safetensors +
 * tokenizer.json). On success *out is a new handle owned by the caller
 * (release with kiln_llm_free). On failure *out is NULL and
 * kiln_last_error() names the problem (missing tensor, wrong shape,
 * unsupported type, inconsistent hyperparameter, ...). The file stays mapped
 * while the handle lives; weights are read from the mapping in place. */
KILN_API kiln_status kiln_llm_load(const char *path, kiln_llm_params params, kiln_llm **out);

/* Release a handle and everything it owns; NULL is fine. */
KILN_API void kiln_llm_free(kiln_llm *m);

/* What the model offers. caps->chat_template points into the handle (valid
 * until kiln_llm_free); never free it. */
KILN_API kiln_status kiln_llm_caps(const kiln_llm *m, kiln_text_caps *caps);

/* The architecture that runs the model. */
KILN_API kiln_arch kiln_llm_arch(const kiln_llm *m);
/* Vocabulary size (logits per position). */
KILN_API int32_t kiln_llm_n_vocab(const kiln_llm *m);
/* KV cache length in tokens (the largest position + 1 the handle accepts). */
KILN_API int32_t kiln_llm_n_ctx(const kiln_llm *m);
/* Bytes of weight data the model reads. */
KILN_API uint64_t kiln_llm_weight_bytes(const kiln_llm *m);

/* ---- tokens ------------------------------------------------------------ */

/* Tokenize `len` bytes of text. add_special: put BOS (and EOS) where the
 * tokenizer's flags ask; parse_special: match control tokens such as
 * "<|eot_id|>" in the text. Up to `cap` ids go to out; *n_out receives the
 * number of ids the text makes; KILN_ERR_TOO_LARGE when that exceeds cap
 * (call again with room for *n_out). KILN_ERR_UNSUPPORTED when the model
 * has no tokenizer kiln can run. */
KILN_API kiln_status kiln_llm_tokenize(const kiln_llm *m, const char *text, size_t len,
                                       bool add_special, bool parse_special, int32_t *out,
                                       size_t cap, size_t *n_out);

/* The text of n tokens, back to back (control tokens rendered only with
 * `special`). Up to cap bytes go to out (no NUL added); *n_out receives the
 * full length; KILN_ERR_TOO_LARGE when it exceeds cap. */
KILN_API kiln_status kiln_llm_detokenize(const kiln_llm *m, const int32_t *tokens, size_t n,
                                         bool special, char *out, size_t cap, size_t *n_out);

/* The tokenizer's beginning- and end-of-sequence token ids, or -1 when it
 * has none (kiln_text_caps lists every id that ends generation). */
KILN_API int32_t kiln_llm_token_bos(const kiln_llm *m);
KILN_API int32_t kiln_llm_token_eos(const kiln_llm *m);

/* ---- evaluation ------------------------------------------------------- */

/* Which logits kiln_llm_eval writes. */
typedef enum kiln_logits_mode {
    KILN_LOGITS_NONE, /* none (only fill the KV cache) */
    KILN_LOGITS_LAST, /* n_vocab floats: the last token's */
    KILN_LOGITS_ALL,  /* n_tokens x n_vocab floats, row-major: every token's */
} kiln_logits_mode;

/* Run tokens[0..n_tokens) at positions pos .. pos+n_tokens-1. pos must be
 * at most kiln_llm_n_past(); the cache beyond pos is dropped first (pos 0
 * starts afresh). Afterwards n_past = pos + n_tokens. Logits go to `logits`
 * (caller-owned, sized for `mode`). KILN_ERR_CONTEXT_FULL when the tokens
 * would end past n_ctx (nothing is evaluated); KILN_ERR_INVALID_ARG for a
 * token id outside the vocabulary. */
KILN_API kiln_status kiln_llm_eval(kiln_llm *m, const int32_t *tokens, int32_t n_tokens,
                                   int32_t pos, kiln_logits_mode mode, float *logits);

/* Tokens held in the KV cache (the next position to fill). */
KILN_API int32_t kiln_llm_n_past(const kiln_llm *m);
/* Forget the cached conversation (n_past becomes 0). NULL is fine. */
KILN_API void kiln_llm_kv_clear(kiln_llm *m);

/* ---- generation ------------------------------------------------------- */

/* Called with text that became final and the token that produced it: once
 * per generated token (the text may be empty while it could still start a
 * stop string or ends inside a UTF-8 character), and once more with token
 * -1 for text still held back when generation ends. `text` is not
 * NUL-terminated and lives only during the call. Return nonzero to cancel
 * (stop reason KILN_STOP_CANCELLED). */
typedef int (*kiln_token_fn)(const char *text, size_t len, int32_t token, void *user);

/* Why generation ended. */
typedef enum kiln_stop_reason {
    KILN_STOP_MAX_TOKENS,    /* max_tokens were generated */
    KILN_STOP_EOS,           /* the model produced one of its end-of-sequence tokens */
    KILN_STOP_SEQUENCE,      /* the text reached one of the stop strings */
    KILN_STOP_CANCELLED,     /* the callback returned nonzero */
    KILN_STOP_ERROR,         /* a failure; the returned status and kiln_last_error() say which */
} kiln_stop_reason;

/* One generation request. Start from kiln_generate_default_params(). */
typedef struct kiln_generate_params {
    const char *prompt;           /* UTF-8 prompt text, the whole context from position 0
                                     (special tokens parsed, BOS added as the tokenizer's flags
                                     say); NULL when prompt_tokens is set */
    const int32_t *prompt_tokens; /* or the prompt as token ids (used as given) */
    int32_t n_prompt_tokens;      /* entries of prompt_tokens */
    kiln_sampling_params sampling;/* how tokens are chosen */
    int32_t max_tokens;           /* most tokens to generate; 0 = no limit but the context */
    const char *const *stop;      /* stop strings (not included in the output); may be NULL */
    int32_t n_stop;               /* entries of stop */
    kiln_token_fn on_token;       /* streaming callback; NULL = none */
    void *user;                   /* passed to on_token */
} kiln_generate_params;

/* Defaults: no prompt, default sampling, max_tokens 128, no stop strings,
 * no callback. */
KILN_API kiln_generate_params kiln_generate_default_params(void);

/* What a generation did. */
typedef struct kiln_generate_result {
    kiln_stop_reason stop_reason; /* why it ended */
    int32_t n_prompt_tokens;      /* tokens in the prompt */
    int32_t n_prompt_evaluated;   /* of those, tokens evaluated (the rest came from the cache) */
    int32_t n_generated;          /* tokens sampled, the final end-of-sequence token included */
    double prompt_seconds;        /* time to evaluate the prompt */
    double decode_seconds;        /* time spent generating after the prompt */
} kiln_generate_result;

/* Generate a continuation of the prompt. The prompt is the whole context
 * from position 0; its longest prefix already in the KV cache is reused (a
 * chat re-sending its conversation evaluates only the new part), the rest
 * is evaluated in batches, then tokens are sampled until max_tokens, an
 * end-of-sequence token, a stop string or cancellation. Penalties look at
 * the prompt and the generated tokens. Afterwards the cache holds the
 * prompt and the generated tokens but the last one (the next request
 * evaluates it if it continues from there). The result (optional) is filled
 * in every case.
 * KILN_ERR_CONTEXT_FULL when the prompt itself does not fit; reaching the
 * end of the context while generating also returns KILN_ERR_CONTEXT_FULL
 * (stop reason KILN_STOP_ERROR; the text so far was streamed). A cancelled
 * generation returns KILN_OK with stop reason KILN_STOP_CANCELLED. */
KILN_API kiln_status kiln_llm_generate(kiln_llm *m, const kiln_generate_params *params,
                                       kiln_generate_result *result);

/* Name of a stop reason ("max_tokens", "eos", "stop_sequence", "cancelled",
 * "error"). Static string. */
KILN_API const char *kiln_stop_reason_name(kiln_stop_reason reason);

#ifdef __cplusplus
}
#endif
#endif /* KILN_LLM_H */
