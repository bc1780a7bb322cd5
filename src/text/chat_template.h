/* src/text/chat_template.h - chat prompt formats of the supported LLM families
 * (internal): detection from a model's Jinja chat template, names for the
 * command line, and rendering of a conversation into prompt text.
 *
 * kiln does not run Jinja. Each format below is one real template (or a small
 * family of them) re-implemented in C, byte-identical to what Hugging Face
 * transformers' apply_chat_template(tokenize=False) renders for it; the
 * goldens in tests/data/chat/cases.json hold that output.
 *
 * BOS: some templates write the BOS token's text themselves (see
 * kiln__chat_emits_bos). transformers tokenizes a rendered chat without adding
 * special tokens, so the engine must do the same: tokenize the rendered text
 * with special tokens parsed from the text and without adding another BOS.
 */
#ifndef KILN_TEXT_CHAT_TEMPLATE_H
#define KILN_TEXT_CHAT_TEMPLATE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "kiln/status.h"

/* X(enum suffix, name used by --chat-template and in messages) */
#define KILN_CHAT_FORMAT_LIST(X)                                              \
    X(LLAMA2, "llama2")                       /* Llama-2-chat */              \
    X(LLAMA3, "llama3")                       /* Meta-Llama-3-Instruct */     \
    X(LLAMA31, "llama3.1")                    /* Llama-3.1 / 3.3 Instruct */  \
    X(MISTRAL_V01, "mistral-v0.1")            /* Mistral-7B-Instruct-v0.1 */  \
    X(MISTRAL_V02, "mistral-v0.2")            /* v0.2 / Mixtral, original */  \
    X(MISTRAL_V1, "mistral-v1")               /* v0.2 updated, system ok */   \
    X(MISTRAL_V3, "mistral-v3")               /* v0.3, Large-2407 */          \
    X(MISTRAL_V3_TEKKEN, "mistral-v3-tekken") /* Nemo-2407 */                 \
    X(MISTRAL_V7, "mistral-v7")               /* Large-2411 */                \
    X(CHATML, "chatml")                       /* <|im_start|>, no default */  \
    X(QWEN2, "qwen2")                         /* chatml + default system */   \
    X(QWEN25, "qwen2.5")                      /* chatml + Qwen's system */    \
    X(PHI3, "phi3")                           /* Phi-3-mini (current) */      \
    X(PHI35, "phi3.5")                        /* Phi-3.5-mini */              \
    X(PHI3_SMALL, "phi3-small")               /* Phi-3-small */               \
    X(PHI3_MEDIUM, "phi3-medium")             /* Phi-3-medium */              \
    X(PHI3_LEGACY, "phi3-legacy")             /* Phi-3-mini first release */  \
    X(PLAIN, "plain")                         /* kiln's base-model fallback */\
    X(UNKNOWN, "unknown")                     /* not recognised; renders nothing */

enum kiln_chat_format {
#define KILN_X_CHAT_ENUM(id, name) KILN_CHAT_##id,
    KILN_CHAT_FORMAT_LIST(KILN_X_CHAT_ENUM)
#undef KILN_X_CHAT_ENUM
    KILN_CHAT_FORMAT_COUNT /* number of formats; not a format */
};

/* Who wrote a message. */
enum kiln_chat_role {
    KILN_CHAT_SYSTEM,    /* "system" */
    KILN_CHAT_USER,      /* "user" */
    KILN_CHAT_ASSISTANT, /* "assistant" */
    KILN_CHAT_ROLE_COUNT /* number of roles; not a role */
};

/* One message of a conversation; both pointers are borrowed. */
struct kiln_chat_message {
    enum kiln_chat_role role; /* its author */
    const char *content;      /* NUL-terminated UTF-8 text, may be "" */
};

/* The name of a format ("llama3", "chatml", ...): a static string, never to be
 * freed; "unknown" for KILN_CHAT_UNKNOWN and for values out of range. */
const char *kiln__chat_format_name(enum kiln_chat_format fmt);
/* The format with that name (exact, case-sensitive; "unknown" is refused).
 * KILN_ERR_INVALID_ARG with the list of names when there is none. */
kiln_status kiln__chat_format_from_name(const char *name, enum kiln_chat_format *out);
/* The role's name ("system", "user", "assistant"), static. */
const char *kiln__chat_role_name(enum kiln_chat_role role);

/* The format of a Jinja chat template, from marker strings in its source (see
 * docs/chat-templates.md for the rules); `len` bytes are read, NULs included.
 * KILN_CHAT_UNKNOWN when none matches, or tmpl is NULL or empty. */
enum kiln_chat_format kiln__chat_detect(const char *tmpl, size_t len);
/* The documented fallback: KILN_CHAT_CHATML when the model has a template
 * kiln does not recognise, KILN_CHAT_PLAIN when it has none (a base model). */
enum kiln_chat_format kiln__chat_fallback(bool has_template);
/* kiln__chat_detect, or the fallback when it gives KILN_CHAT_UNKNOWN
 * (tmpl NULL or empty counts as no template). */
enum kiln_chat_format kiln__chat_choose(const char *tmpl, size_t len);
/* Whether the format writes the BOS text itself (then no BOS must be added
 * when tokenizing the rendered prompt). */
bool kiln__chat_emits_bos(enum kiln_chat_format fmt);

/* Render msgs[0..n) in format fmt into out (cap bytes, NUL-terminated).
 * add_generation_prompt appends the opening of an assistant turn where the
 * template has one. bos_text / eos_text are the texts of the model's BOS and
 * EOS tokens (NULL = ""); templates that do not use them ignore them.
 * *needed (may be NULL) always receives the length of the text, NUL excluded.
 * Errors: KILN_ERR_INVALID_ARG for an empty conversation, a NULL content, an
 * unknown role or format, and for every conversation the real template refuses
 * (e.g. roles that do not alternate user/assistant, a system message where the
 * template takes none; the message says which); KILN_ERR_TOO_LARGE when
 * cap < *needed + 1 (out then holds "" if cap > 0). */
kiln_status kiln__chat_render(enum kiln_chat_format fmt, const struct kiln_chat_message *msgs,
                              size_t n, bool add_generation_prompt, const char *bos_text,
                              const char *eos_text, char *out, size_t cap, size_t *needed);
/* kiln__chat_render into a new buffer: on success *out is malloc'ed (the
 * caller frees it) and *len (may be NULL) is its length; on failure *out is
 * NULL. Adds KILN_ERR_OUT_OF_MEMORY to the errors above. */
kiln_status kiln__chat_render_alloc(enum kiln_chat_format fmt, const struct kiln_chat_message *msgs,
                                    size_t n, bool add_generation_prompt, const char *bos_text,
                                    const char *eos_text, char **out, size_t *len);

/* The template text in a parsed tokenizer_config.json: its "chat_template"
 * string, or, when that is a list of {"name", "template"} objects, the one
 * named "default". *tmpl is borrowed from cfg. KILN_ERR_NOT_FOUND when there
 * is no template (key absent or null, no "default" entry); KILN_ERR_FORMAT for
 * a value of another shape. */
kiln_status kiln__chat_template_from_config(const json_t *cfg, const char **tmpl);

#endif /* KILN_TEXT_CHAT_TEMPLATE_H */
