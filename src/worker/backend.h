/* src/worker/backend.h - what the worker daemon needs from a model (internal).
 *
 * The daemon's HTTP routes, job queue and streams never touch a model
 * directly: they go through this table of functions. backend_llm.c adapts the
 * LLM engine, backend_fake.c is a deterministic test backend, and the image
 * engine (backend_image.c) plugs in with run_image. A backend serves one
 * loaded model; calls come from these threads:
 *   load       once, on the daemon's loader thread;
 *   info       any thread, after load succeeded;
 *   count_tokens  HTTP threads, concurrently with run_text (tokenizer only);
 *   run_text, run_image  the job runner thread, one job at a time;
 *   destroy    once, after every other call has returned.
 */
#ifndef KILN_WORKER_BACKEND_H
#define KILN_WORKER_BACKEND_H

#include <stddef.h>
#include <stdint.h>

#include "kiln/image.h"
#include "kiln/llm.h"
#include "kiln/status.h"

/* What a backend's model can do (bit flags). */
enum {
    KILN__CAP_TEXT = 1u << 0,             /* text completion from a prompt */
    KILN__CAP_CHAT = 1u << 1,             /* chat messages through a template */
    KILN__CAP_IMAGE_GENERATION = 1u << 2, /* txt2img */
    KILN__CAP_IMAGE_TRANSFORM = 1u << 3,  /* img2img */
    KILN__CAP_IMAGE_INPAINT = 1u << 4,    /* inpainting */
};

/* A description of the loaded model. Strings are owned by the backend and
 * live until destroy. */
struct kiln__backend_info {
    const char *model_id;   /* name clients use, e.g. the model file's base name */
    const char *family;     /* architecture family, e.g. "llama"; "" when unknown */
    const char *device;     /* where it runs, e.g. "cpu" */
    const char *implementation; /* which backend: "kiln-llm", "kiln-fake" */
    int32_t context_length; /* tokens of prompt plus output the model can hold (0 for image models) */
    unsigned caps;          /* KILN__CAP_* flags */
    kiln_image_caps image;  /* image models: defaults and limits of sizes, steps, guidance (zeroed otherwise) */
};

/* One chat message: role ("system", "user", "assistant", ...) and text. */
struct kiln__chat_message {
    const char *role;    /* NUL-terminated, not owned */
    const char *content; /* NUL-terminated, not owned */
};

/* One text generation: either a raw prompt or chat messages. Every pointer is
 * borrowed from the caller for the duration of the call. */
struct kiln__text_job {
    const char *prompt;                          /* raw prompt, or NULL when messages are given */
    const struct kiln__chat_message *messages;   /* chat turns (through the model's template) */
    size_t n_messages;                           /* entries of messages */
    kiln_sampling_params sampling;               /* how tokens are chosen */
    int32_t max_tokens;                          /* most tokens to generate (>= 1) */
    const char *const *stop;                     /* stop strings, not part of the output */
    size_t n_stop;                               /* entries of stop */
};

/* Why a generation ended (the engine's kiln_stop_reason, mirrored so the
 * daemon does not depend on which backend is built). */
enum kiln__stop_reason {
    KILN__STOP_MAX_TOKENS,    /* max_tokens were generated */
    KILN__STOP_EOS,           /* the model ended its answer */
    KILN__STOP_SEQUENCE,      /* a stop string was reached */
    KILN__STOP_CANCELLED,     /* the token callback asked to stop */
    KILN__STOP_ERROR,         /* a failure; run_text returned its status */
};

/* Name of a stop reason: "max_tokens", "eos", "stop_sequence", "cancelled",
 * "error" (static strings). */
const char *kiln__stop_reason_name(enum kiln__stop_reason r);

/* What one generation did. */
struct kiln__text_stats {
    enum kiln__stop_reason stop_reason; /* why it ended */
    int32_t prompt_tokens;              /* tokens in the prompt (after the template) */
    int32_t completion_tokens;          /* tokens generated */
    double prompt_ms;                   /* time to evaluate the prompt */
    double decode_ms;                   /* time spent generating after the prompt */
};

/* Receives final output text (len may be 0; not NUL-terminated; valid only
 * during the call). Return nonzero to cancel: the backend then stops before
 * the next token and reports KILN__STOP_CANCELLED. */
typedef int (*kiln__token_fn)(void *user, const char *text, size_t len);

/* Load progress in [0, 1]. Return nonzero to cancel the load (it then
 * fails with KILN_ERR_CANCELLED): the daemon does so when told to stop. */
typedef int (*kiln__progress_fn)(void *user, double fraction);

/* The function table; ctx is passed to every call. */
struct kiln__backend {
    void *ctx; /* the backend's state (owned by the backend) */
    /* Load the model. Fails with a status and kiln_last_error(). */
    kiln_status (*load)(void *ctx, kiln__progress_fn progress, void *user);
    /* The model's description; valid after a successful load. */
    const struct kiln__backend_info *(*info)(void *ctx);
    /* Prompt tokens the job would use (after the chat template) into *n.
     * Must be safe to call while run_text runs on another thread. */
    kiln_status (*count_tokens)(void *ctx, const struct kiln__text_job *job, int32_t *n);
    /* Generate, sending text to on_token as it becomes final. Fills *stats in
     * every case. Returns KILN_OK when it ended normally or was cancelled. */
    kiln_status (*run_text)(void *ctx, const struct kiln__text_job *job, kiln__token_fn on_token,
                            void *user, struct kiln__text_stats *stats);
    /* Image models (NULL for text backends): generate with p (every
     * pointer borrowed for the call; p->on_step carries progress, previews
     * and cancellation) into *out, as kiln_image_generate does. Returns
     * KILN_ERR_CANCELLED when on_step asked to stop. */
    kiln_status (*run_image)(void *ctx, const kiln_image_params *p, kiln_image_result *out);
    /* Release everything; ctx is invalid afterwards. */
    void (*destroy)(void *ctx);
};

/* Options of the deterministic test backend. */
struct kiln__fake_options {
    int32_t context_length; /* tokens it accepts (prompt + output); 0 = 512 */
    int32_t natural_tokens; /* tokens after which it ends with EOS; 0 = 32 */
    double token_ms;        /* delay per generated token (and per 64 prompt tokens) */
    double load_ms;         /* time its load takes, in 10 progress steps */
};

/* A backend that needs no model: for tests and demos of the daemon only
 * (`kiln serve --fake-model`), never presented as a model. It "tokenizes" by
 * splitting on whitespace (plus one BOS), answers with a deterministic word
 * sequence derived from the prompt (and, with temperature > 0, the seed),
 * honours max_tokens and stop strings, ends with EOS after natural_tokens,
 * and fails on purpose when the prompt contains "[fail]". Chat messages are
 * rendered as "<|role|>\ncontent\n" turns followed by "<|assistant|>\n".
 * Fills *out; KILN_ERR_OUT_OF_MEMORY on failure. */
kiln_status kiln__backend_fake_create(const struct kiln__fake_options *opt, struct kiln__backend *out);

/* The backend for text models: the LLM engine loading `path` (a GGUF file
 * or a Hugging Face folder) with n_threads compute threads (0 = one per
 * core) and a context of n_ctx tokens (0 = the model's). Chat messages go
 * through the model's chat format (detected from its template, with the
 * documented fallback); the model id is the file or folder name without
 * ".gguf". Nothing is loaded until load(). */
kiln_status kiln__backend_llm_create(const char *path, int32_t n_threads, int32_t n_ctx, struct kiln__backend *out);

/* The backend for image models: the image engine loading `path` (a
 * diffusers folder or a single-file checkpoint) with `clip_vocab` (the CLIP
 * merges file or tokenizer folder for checkpoints that carry none; NULL or
 * "" = none). The model id is the file or folder name without its
 * extension. Nothing is loaded until load(). */
kiln_status kiln__backend_image_create(const char *path, const char *clip_vocab, struct kiln__backend *out);

/* 1 when `path` holds an image model (what `kiln serve` serves with the
 * image backend): a diffusers folder, or a safetensors or GGUF file whose
 * tensors have an SD or Flux layout (even one this build cannot run: the
 * image backend's load then says so). 0 otherwise (a text model, or
 * nothing kiln recognizes: the LLM backend then reports why). */
int kiln__backend_is_image_model(const char *path);

#endif /* KILN_WORKER_BACKEND_H */
