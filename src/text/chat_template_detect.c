/* src/text/chat_template_detect.c - naming chat formats and recognising them
 * in a model's Jinja chat template source.
 *
 * Detection looks for marker strings that each family's real templates carry
 * (the same idea as llama.cpp's llm_chat_detect_template; the rules and their
 * order are documented in docs/chat-templates.md). Markers are searched in the
 * raw source, so they are chosen to read the same whether a newline inside a
 * Jinja string is written as "\n" or as a real line break.
 */
#include <string.h>

#include "core/error.h"
#include "text/chat_template.h"

static const char *const format_names[KILN_CHAT_FORMAT_COUNT] = {
#define KILN_X_CHAT_NAME(id, name) [KILN_CHAT_##id] = name,
    KILN_CHAT_FORMAT_LIST(KILN_X_CHAT_NAME)
#undef KILN_X_CHAT_NAME
};

const char *kiln__chat_format_name(enum kiln_chat_format fmt) {
    if ((unsigned)fmt >= KILN_CHAT_FORMAT_COUNT) return "unknown";
    return format_names[fmt];
}

kiln_status kiln__chat_format_from_name(const char *name, enum kiln_chat_format *out) {
    if (name) {
        for (int i = 0; i < KILN_CHAT_FORMAT_COUNT; i++) {
            if (i == KILN_CHAT_UNKNOWN) continue;
            if (strcmp(name, format_names[i]) == 0) {
                *out = (enum kiln_chat_format)i;
                return KILN_OK;
            }
        }
    }
    return kiln__fail(KILN_ERR_INVALID_ARG,
                      "chat: unknown chat template name '%s' (known: llama2, llama3, llama3.1, "
                      "mistral-v0.1, mistral-v0.2, mistral-v1, mistral-v3, mistral-v3-tekken, "
                      "mistral-v7, chatml, qwen2, qwen2.5, phi3, phi3.5, phi3-small, phi3-medium, "
                      "phi3-legacy, plain)",
                      name ? name : "(null)");
}

const char *kiln__chat_role_name(enum kiln_chat_role role) {
    switch (role) {
    case KILN_CHAT_SYSTEM: return "system";
    case KILN_CHAT_USER: return "user";
    case KILN_CHAT_ASSISTANT: return "assistant";
    case KILN_CHAT_ROLE_COUNT: break;
    }
    return "invalid";
}

/* Whether s[0..len) contains the NUL-terminated needle. */
static bool has(const char *s, size_t len, const char *needle) {
    size_t m = strlen(needle);
    if (m > len) return false;
    for (size_t i = 0; i + m <= len; i++)
        if (s[i] == needle[0] && memcmp(s + i, needle, m) == 0) return true;
    return false;
}

/* "[INST]" templates: Llama 2 and the Mistral flavours, told apart by the
 * spaces around [INST] / [/INST] and by how they treat the system prompt. */
static enum kiln_chat_format detect_inst(const char *s, size_t len) {
    if (has(s, len, "<<SYS>>")) return KILN_CHAT_LLAMA2;
    if (has(s, len, "[SYSTEM_PROMPT]")) return KILN_CHAT_MISTRAL_V7;
    /* v3-tekken: no space after [INST] ("[INST]" + content). */
    if (has(s, len, "[INST]\"") || has(s, len, "[INST]'")) return KILN_CHAT_MISTRAL_V3_TEKKEN;
    /* v3: no space before [/INST] (content + "[/INST]"). */
    if (!has(s, len, " [/INST]")) return KILN_CHAT_MISTRAL_V3;
    /* v1: a space before [INST] too (' [INST] ' + content). */
    if (has(s, len, "' [INST]") || has(s, len, "\" [INST]")) return KILN_CHAT_MISTRAL_V1;
    /* v0.1 writes a space after each assistant EOS; v0.2 / Mixtral does not. */
    if (has(s, len, "eos_token + ' '") || has(s, len, "eos_token + \" \""))
        return KILN_CHAT_MISTRAL_V01;
    return KILN_CHAT_MISTRAL_V02;
}

/* One rule for every role: '<|' + message['role'] + '|>' + '\n' (the newline
 * written as an escape or as a line break). Phi-4 has no newline there. */
static bool generic_role_tag(const char *s, size_t len) {
    return has(s, len, "message['role'] + '|>' + '\\n'") ||
           has(s, len, "message['role'] + '|>' + '\n'");
}

/* "<|user|> ... <|end|>" templates: the Phi-3 flavours. */
static enum kiln_chat_format detect_phi3(const char *s, size_t len) {
    bool bos = has(s, len, "bos_token");
    if (generic_role_tag(s, len)) return bos ? KILN_CHAT_PHI3_SMALL : KILN_CHAT_PHI3;
    if (has(s, len, "<|system|>")) {
        /* Phi-3.5 writes a system message only when its content is not empty. */
        if (has(s, len, "'system' and message['content']")) return KILN_CHAT_PHI35;
        return KILN_CHAT_PHI3;
    }
    /* No system role: each user turn opens the assistant turn itself. */
    return bos ? KILN_CHAT_PHI3_LEGACY : KILN_CHAT_PHI3_MEDIUM;
}

enum kiln_chat_format kiln__chat_detect(const char *s, size_t len) {
    if (!s || len == 0) return KILN_CHAT_UNKNOWN;
    if (has(s, len, "<|im_start|>")) {
        if (has(s, len, "<|im_sep|>")) return KILN_CHAT_UNKNOWN; /* Phi-4: another layout */
        if (has(s, len, "You are Qwen, created by Alibaba Cloud")) return KILN_CHAT_QWEN25;
        if (has(s, len, "You are a helpful assistant<|im_end|>")) return KILN_CHAT_QWEN2;
        return KILN_CHAT_CHATML;
    }
    if (has(s, len, "<|start_header_id|>") && has(s, len, "<|end_header_id|>")) {
        if (has(s, len, "Cutting Knowledge Date")) return KILN_CHAT_LLAMA31;
        return KILN_CHAT_LLAMA3;
    }
    if (has(s, len, "<|end|>") &&
        ((has(s, len, "<|user|>") && has(s, len, "<|assistant|>")) || generic_role_tag(s, len)))
        return detect_phi3(s, len);
    if (has(s, len, "[INST]") && has(s, len, "[/INST]")) return detect_inst(s, len);
    return KILN_CHAT_UNKNOWN;
}

enum kiln_chat_format kiln__chat_fallback(bool has_template) {
    return has_template ? KILN_CHAT_CHATML : KILN_CHAT_PLAIN;
}

enum kiln_chat_format kiln__chat_choose(const char *tmpl, size_t len) {
    enum kiln_chat_format f = kiln__chat_detect(tmpl, len);
    if (f != KILN_CHAT_UNKNOWN) return f;
    return kiln__chat_fallback(tmpl != NULL && len > 0);
}

bool kiln__chat_emits_bos(enum kiln_chat_format fmt) {
    switch (fmt) {
    case KILN_CHAT_LLAMA2:
    case KILN_CHAT_LLAMA3:
    case KILN_CHAT_LLAMA31:
    case KILN_CHAT_MISTRAL_V01:
    case KILN_CHAT_MISTRAL_V02:
    case KILN_CHAT_MISTRAL_V1:
    case KILN_CHAT_MISTRAL_V3:
    case KILN_CHAT_MISTRAL_V3_TEKKEN:
    case KILN_CHAT_MISTRAL_V7:
    case KILN_CHAT_PHI3_SMALL:
    case KILN_CHAT_PHI3_LEGACY:
        return true;
    case KILN_CHAT_CHATML:
    case KILN_CHAT_QWEN2:
    case KILN_CHAT_QWEN25:
    case KILN_CHAT_PHI3:
    case KILN_CHAT_PHI35:
    case KILN_CHAT_PHI3_MEDIUM:
    case KILN_CHAT_PLAIN:
    case KILN_CHAT_UNKNOWN:
    case KILN_CHAT_FORMAT_COUNT:
        return false;
    }
    return false;
}
