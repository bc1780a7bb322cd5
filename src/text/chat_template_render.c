/* src/text/chat_template_render.c - rendering a conversation in one of the
 * chat formats of chat_template.h, byte-identical to what Hugging Face
 * transformers' apply_chat_template renders with the real Jinja template.
 *
 * Each family is one function whose steps follow its template; where the
 * flavours of a family differ only in strings and switches (Mistral, Phi-3,
 * ChatML/Qwen), those differences are data in a table. Jinja quirks that
 * matter for byte equality, and that the goldens check:
 *   - `x | trim` and `x.strip()` are Python's str.strip(): Unicode whitespace
 *     (str.isspace) is removed at both ends, not only ASCII;
 *   - a template that raises produces no text at all, so every check is done
 *     before the first byte is written;
 *   - Llama 2 strips the system block and the first user message as one
 *     string, and silently skips a system message at an odd position.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "text/chat_template.h"

/* ------------------------------------------------------------------------ */
/* Output: a bounded buffer that keeps counting past its end. */

struct sink {
    char *out;  /* caller's buffer (may be NULL when cap is 0) */
    size_t cap; /* its size in bytes, room for the NUL included */
    size_t len; /* bytes of text produced so far (even those that did not fit) */
    bool overflow; /* len overflowed size_t (never in practice; reported as too large) */
};

/* Append n bytes of s. */
static void put_n(struct sink *k, const char *s, size_t n) {
    if (n > SIZE_MAX - k->len) {
        k->overflow = true;
        return;
    }
    /* Copy only while the text so far, this piece and a NUL fit. */
    if (k->len + n < k->cap) memcpy(k->out + k->len, s, n);
    k->len += n;
}

static void put(struct sink *k, const char *s) { put_n(k, s, strlen(s)); }

/* ------------------------------------------------------------------------ */
/* Python's str.strip() on UTF-8: the encodings of the code points for which
 * str.isspace() is true. Invalid UTF-8 is never whitespace. */

static const char *const space_utf8[] = {
    "\t", "\n", "\v", "\f", "\r", "\x1c", "\x1d", "\x1e", "\x1f", " ",
    "\xc2\x85",     /* U+0085 next line */
    "\xc2\xa0",     /* U+00A0 no-break space */
    "\xe1\x9a\x80", /* U+1680 ogham space mark */
    "\xe2\x80\x80", "\xe2\x80\x81", "\xe2\x80\x82", "\xe2\x80\x83", "\xe2\x80\x84",
    "\xe2\x80\x85", "\xe2\x80\x86", "\xe2\x80\x87", "\xe2\x80\x88", "\xe2\x80\x89",
    "\xe2\x80\x8a", /* U+2000..U+200A */
    "\xe2\x80\xa8", /* U+2028 line separator */
    "\xe2\x80\xa9", /* U+2029 paragraph separator */
    "\xe2\x80\xaf", /* U+202F narrow no-break space */
    "\xe2\x81\x9f", /* U+205F medium mathematical space */
    "\xe3\x80\x80", /* U+3000 ideographic space */
};

/* Length of the whitespace character that s[0..n) starts with (0 if none). */
static size_t space_at_start(const char *s, size_t n) {
    for (size_t i = 0; i < sizeof space_utf8 / sizeof space_utf8[0]; i++) {
        size_t m = strlen(space_utf8[i]);
        if (m <= n && memcmp(s, space_utf8[i], m) == 0) return m;
    }
    return 0;
}

/* Length of the whitespace character that s[0..n) ends with (0 if none).
 * Every multi-byte entry starts with a lead byte, so a suffix match is a
 * whole character in valid UTF-8. */
static size_t space_at_end(const char *s, size_t n) {
    for (size_t i = 0; i < sizeof space_utf8 / sizeof space_utf8[0]; i++) {
        size_t m = strlen(space_utf8[i]);
        if (m <= n && memcmp(s + n - m, space_utf8[i], m) == 0) return m;
    }
    return 0;
}

/* A piece of text: pointer and length. */
struct span {
    const char *p; /* first byte */
    size_t n;      /* length in bytes */
};

static struct span rstrip(struct span t) {
    size_t m;
    while (t.n > 0 && (m = space_at_end(t.p, t.n)) > 0) t.n -= m;
    return t;
}

static struct span strip(const char *s) {
    struct span t = {s, strlen(s)};
    size_t m;
    while (t.n > 0 && (m = space_at_start(t.p, t.n)) > 0) {
        t.p += m;
        t.n -= m;
    }
    return rstrip(t);
}

static void put_span(struct sink *k, struct span t) { put_n(k, t.p, t.n); }

/* ------------------------------------------------------------------------ */
/* Checks shared by the templates that insist on user/assistant alternation. */

/* msgs[from..n) must be user, assistant, user, ... (what the templates test
 * with `(role == 'user') != (index % 2 == 0)` plus their role checks). */
static kiln_status check_alternation(const char *fmt, const struct kiln_chat_message *msgs,
                                     size_t from, size_t n) {
    for (size_t i = from; i < n; i++) {
        enum kiln_chat_role want = (i - from) % 2 == 0 ? KILN_CHAT_USER : KILN_CHAT_ASSISTANT;
        if (msgs[i].role != want)
            return kiln__fail(KILN_ERR_INVALID_ARG,
                              "chat: %s: message %zu is from the %s, but after the optional "
                              "first system message this template needs roles alternating "
                              "user/assistant/user/... starting with the user",
                              fmt, i, kiln__chat_role_name(msgs[i].role));
    }
    return KILN_OK;
}

/* ------------------------------------------------------------------------ */
/* Llama 2 chat. */

static kiln_status render_llama2(struct sink *k, const struct kiln_chat_message *msgs, size_t n,
                                 const char *bos, const char *eos) {
    size_t from = msgs[0].role == KILN_CHAT_SYSTEM ? 1 : 0;
    const char *sys = from ? msgs[0].content : NULL;
    /* The template tests only `(role == 'user') != (index is even)`: a system
     * message at an odd position passes, and is then written nowhere. */
    for (size_t i = from; i < n; i++) {
        bool even = (i - from) % 2 == 0;
        if ((msgs[i].role == KILN_CHAT_USER) != even)
            return kiln__fail(KILN_ERR_INVALID_ARG,
                              "chat: llama2: message %zu is from the %s, but after the optional "
                              "first system message this template needs a user message at every "
                              "even position and none at odd ones",
                              i, kiln__chat_role_name(msgs[i].role));
    }
    for (size_t i = from; i < n; i++) {
        const struct kiln_chat_message *m = &msgs[i];
        if (m->role == KILN_CHAT_USER) {
            put(k, bos);
            put(k, "[INST] ");
            if (i == from && sys) {
                /* strip() of "<<SYS>>\n" + sys + "\n<</SYS>>\n\n" + content:
                 * nothing leads, and trailing space may eat into the block. */
                struct span c = rstrip((struct span){m->content, strlen(m->content)});
                put(k, "<<SYS>>\n");
                put(k, sys);
                put(k, "\n<</SYS>>");
                if (c.n > 0) {
                    put(k, "\n\n");
                    put_span(k, c);
                }
            } else {
                put_span(k, strip(m->content));
            }
            put(k, " [/INST]");
        } else if (m->role == KILN_CHAT_ASSISTANT) {
            put(k, " ");
            put_span(k, strip(m->content));
            put(k, " ");
            put(k, eos);
        }
    }
    return KILN_OK;
}

/* ------------------------------------------------------------------------ */
/* Llama 3 and Llama 3.1. */

static void put_llama3_turn(struct sink *k, const char *role, struct span content) {
    put(k, "<|start_header_id|>");
    put(k, role);
    put(k, "<|end_header_id|>\n\n");
    put_span(k, content);
    put(k, "<|eot_id|>");
}

static kiln_status render_llama3(struct sink *k, bool v31, const struct kiln_chat_message *msgs,
                                 size_t n, bool gen, const char *bos) {
    size_t from = 0;
    put(k, bos);
    if (v31) {
        /* 3.1 always opens with a system turn holding the knowledge cut-off
         * and a date (the template's default, "26 Jul 2024"), then the
         * system message if the conversation starts with one. */
        put(k, "<|start_header_id|>system<|end_header_id|>\n\n"
               "Cutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024\n\n");
        if (msgs[0].role == KILN_CHAT_SYSTEM) {
            put_span(k, strip(msgs[0].content));
            from = 1;
        }
        put(k, "<|eot_id|>");
    }
    for (size_t i = from; i < n; i++)
        put_llama3_turn(k, kiln__chat_role_name(msgs[i].role), strip(msgs[i].content));
    if (gen) put(k, "<|start_header_id|>assistant<|end_header_id|>\n\n");
    return KILN_OK;
}

/* ------------------------------------------------------------------------ */
/* Mistral: the flavours differ in spaces, in whether the assistant's text is
 * stripped, and in where a system prompt goes. */

/* Where a system prompt goes. */
enum mistral_system {
    SYS_REFUSED,    /* no system message anywhere */
    SYS_FIRST_USER, /* the first system message is prefixed to the first user message */
    SYS_LAST_USER,  /* ... to the last message, when that is a user message */
    SYS_INLINE,     /* every system message is written where it stands */
};

/* One Mistral flavour. */
struct mistral_flavour {
    const char *name;          /* format name, for messages */
    enum mistral_system system; /* where system prompts go */
    const char *inst_open;     /* text before a user message */
    const char *inst_close;    /* text after it */
    const char *asst_open;     /* text before an assistant message */
    bool asst_strip;           /* the assistant message is stripped */
    const char *after_eos;     /* text after the EOS that closes an assistant message */
};

static const struct mistral_flavour mistral_v01 = {
    "mistral-v0.1", SYS_REFUSED, "[INST] ", " [/INST]", "", false, " "};
static const struct mistral_flavour mistral_v02 = {
    "mistral-v0.2", SYS_REFUSED, "[INST] ", " [/INST]", "", false, ""};
static const struct mistral_flavour mistral_v1 = {
    "mistral-v1", SYS_FIRST_USER, " [INST] ", " [/INST]", " ", false, ""};
static const struct mistral_flavour mistral_v3 = {
    "mistral-v3", SYS_LAST_USER, "[INST] ", "[/INST]", " ", true, ""};
static const struct mistral_flavour mistral_v3_tekken = {
    "mistral-v3-tekken", SYS_LAST_USER, "[INST]", "[/INST]", "", false, ""};
static const struct mistral_flavour mistral_v7 = {
    "mistral-v7", SYS_INLINE, "[INST] ", "[/INST]", " ", false, ""};

static kiln_status render_mistral(struct sink *k, const struct mistral_flavour *f,
                                  const struct kiln_chat_message *msgs, size_t n, const char *bos,
                                  const char *eos) {
    size_t from = 0;
    const char *sys = NULL;
    if (f->system != SYS_INLINE) {
        if (f->system != SYS_REFUSED && msgs[0].role == KILN_CHAT_SYSTEM) {
            sys = msgs[0].content;
            from = 1;
        }
        kiln_status st = check_alternation(f->name, msgs, from, n);
        if (st != KILN_OK) return st;
    }
    put(k, bos);
    for (size_t i = from; i < n; i++) {
        const struct kiln_chat_message *m = &msgs[i];
        switch (m->role) {
        case KILN_CHAT_USER: {
            bool with_sys = sys && ((f->system == SYS_FIRST_USER && i == from) ||
                                    (f->system == SYS_LAST_USER && i == n - 1));
            put(k, f->inst_open);
            if (with_sys) {
                put(k, sys);
                put(k, "\n\n");
            }
            put(k, m->content);
            put(k, f->inst_close);
            break;
        }
        case KILN_CHAT_ASSISTANT:
            put(k, f->asst_open);
            if (f->asst_strip)
                put_span(k, strip(m->content));
            else
                put(k, m->content);
            put(k, eos);
            put(k, f->after_eos);
            break;
        case KILN_CHAT_SYSTEM: /* only SYS_INLINE gets here: others were checked */
            put(k, "[SYSTEM_PROMPT] ");
            put(k, m->content);
            put(k, "[/SYSTEM_PROMPT]");
            break;
        case KILN_CHAT_ROLE_COUNT:
            break;
        }
    }
    return KILN_OK;
}

/* ------------------------------------------------------------------------ */
/* ChatML, with an optional default system prompt (Qwen). */

static kiln_status render_chatml(struct sink *k, const char *default_system,
                                 const struct kiln_chat_message *msgs, size_t n, bool gen) {
    if (default_system && msgs[0].role != KILN_CHAT_SYSTEM) {
        put(k, "<|im_start|>system\n");
        put(k, default_system);
        put(k, "<|im_end|>\n");
    }
    for (size_t i = 0; i < n; i++) {
        put(k, "<|im_start|>");
        put(k, kiln__chat_role_name(msgs[i].role));
        put(k, "\n");
        put(k, msgs[i].content);
        put(k, "<|im_end|>\n");
    }
    if (gen) put(k, "<|im_start|>assistant\n");
    return KILN_OK;
}

/* ------------------------------------------------------------------------ */
/* Phi-3. */

/* One Phi-3 flavour. */
struct phi3_flavour {
    bool bos;          /* the template starts with the BOS text */
    bool legacy;       /* user turns open the assistant turn themselves; no system
                          role, no generation prompt, no final EOS */
    bool skip_empty_system; /* a system message with empty content is left out */
};

static const struct phi3_flavour phi3 = {false, false, false};
static const struct phi3_flavour phi35 = {false, false, true};
static const struct phi3_flavour phi3_small = {true, false, false};
static const struct phi3_flavour phi3_medium = {false, true, false};
static const struct phi3_flavour phi3_legacy = {true, true, false};

static kiln_status render_phi3(struct sink *k, const struct phi3_flavour *f,
                               const struct kiln_chat_message *msgs, size_t n, bool gen,
                               const char *bos, const char *eos) {
    if (f->bos) put(k, bos);
    for (size_t i = 0; i < n; i++) {
        const struct kiln_chat_message *m = &msgs[i];
        if (f->legacy) {
            if (m->role == KILN_CHAT_USER) {
                put(k, "<|user|>\n");
                put(k, m->content);
                put(k, "<|end|>\n<|assistant|>\n");
            } else if (m->role == KILN_CHAT_ASSISTANT) {
                put(k, m->content);
                put(k, "<|end|>\n");
            }
            continue;
        }
        if (m->role == KILN_CHAT_SYSTEM && f->skip_empty_system && m->content[0] == '\0') continue;
        put(k, "<|");
        put(k, kiln__chat_role_name(m->role));
        put(k, "|>\n");
        put(k, m->content);
        put(k, "<|end|>\n");
    }
    if (!f->legacy) put(k, gen ? "<|assistant|>\n" : eos);
    return KILN_OK;
}

/* ------------------------------------------------------------------------ */
/* kiln's plain transcript (tests/data/chat/templates/kiln-plain.jinja). */

static kiln_status render_plain(struct sink *k, const struct kiln_chat_message *msgs, size_t n,
                                bool gen) {
    for (size_t i = 0; i < n; i++) {
        switch (msgs[i].role) {
        case KILN_CHAT_SYSTEM:
            put(k, msgs[i].content);
            put(k, "\n\n");
            break;
        case KILN_CHAT_USER:
            put(k, "User: ");
            put(k, msgs[i].content);
            put(k, "\n");
            break;
        case KILN_CHAT_ASSISTANT:
            put(k, "Assistant: ");
            put(k, msgs[i].content);
            put(k, "\n");
            break;
        case KILN_CHAT_ROLE_COUNT:
            break;
        }
    }
    if (gen) put(k, "Assistant:");
    return KILN_OK;
}

/* ------------------------------------------------------------------------ */

static kiln_status dispatch(struct sink *k, enum kiln_chat_format fmt,
                            const struct kiln_chat_message *msgs, size_t n, bool gen,
                            const char *bos, const char *eos) {
    switch (fmt) {
    case KILN_CHAT_LLAMA2: return render_llama2(k, msgs, n, bos, eos);
    case KILN_CHAT_LLAMA3: return render_llama3(k, false, msgs, n, gen, bos);
    case KILN_CHAT_LLAMA31: return render_llama3(k, true, msgs, n, gen, bos);
    case KILN_CHAT_MISTRAL_V01: return render_mistral(k, &mistral_v01, msgs, n, bos, eos);
    case KILN_CHAT_MISTRAL_V02: return render_mistral(k, &mistral_v02, msgs, n, bos, eos);
    case KILN_CHAT_MISTRAL_V1: return render_mistral(k, &mistral_v1, msgs, n, bos, eos);
    case KILN_CHAT_MISTRAL_V3: return render_mistral(k, &mistral_v3, msgs, n, bos, eos);
    case KILN_CHAT_MISTRAL_V3_TEKKEN:
        return render_mistral(k, &mistral_v3_tekken, msgs, n, bos, eos);
    case KILN_CHAT_MISTRAL_V7: return render_mistral(k, &mistral_v7, msgs, n, bos, eos);
    case KILN_CHAT_CHATML: return render_chatml(k, NULL, msgs, n, gen);
    case KILN_CHAT_QWEN2: return render_chatml(k, "You are a helpful assistant", msgs, n, gen);
    case KILN_CHAT_QWEN25:
        return render_chatml(k, "You are Qwen, created by Alibaba Cloud. You are a helpful assistant.",
                             msgs, n, gen);
    case KILN_CHAT_PHI3: return render_phi3(k, &phi3, msgs, n, gen, bos, eos);
    case KILN_CHAT_PHI35: return render_phi3(k, &phi35, msgs, n, gen, bos, eos);
    case KILN_CHAT_PHI3_SMALL: return render_phi3(k, &phi3_small, msgs, n, gen, bos, eos);
    case KILN_CHAT_PHI3_MEDIUM: return render_phi3(k, &phi3_medium, msgs, n, gen, bos, eos);
    case KILN_CHAT_PHI3_LEGACY: return render_phi3(k, &phi3_legacy, msgs, n, gen, bos, eos);
    case KILN_CHAT_PLAIN: return render_plain(k, msgs, n, gen);
    case KILN_CHAT_UNKNOWN:
    case KILN_CHAT_FORMAT_COUNT:
        break;
    }
    return kiln__fail(KILN_ERR_INVALID_ARG, "chat: cannot render format %d (%s)", (int)fmt,
                      kiln__chat_format_name(fmt));
}

kiln_status kiln__chat_render(enum kiln_chat_format fmt, const struct kiln_chat_message *msgs,
                              size_t n, bool add_generation_prompt, const char *bos_text,
                              const char *eos_text, char *out, size_t cap, size_t *needed) {
    if (needed) *needed = 0;
    if (cap > 0 && !out) return kiln__fail(KILN_ERR_INVALID_ARG, "chat: no output buffer");
    if (cap > 0) out[0] = '\0';
    if (n == 0 || !msgs) return kiln__fail(KILN_ERR_INVALID_ARG, "chat: empty conversation");
    for (size_t i = 0; i < n; i++) {
        if ((unsigned)msgs[i].role >= KILN_CHAT_ROLE_COUNT)
            return kiln__fail(KILN_ERR_INVALID_ARG, "chat: message %zu has an invalid role (%d)",
                              i, (int)msgs[i].role);
        if (!msgs[i].content)
            return kiln__fail(KILN_ERR_INVALID_ARG, "chat: message %zu has no content", i);
    }
    struct sink k = {out, cap, 0, false};
    kiln_status st = dispatch(&k, fmt, msgs, n, add_generation_prompt, bos_text ? bos_text : "",
                              eos_text ? eos_text : "");
    if (st != KILN_OK) {
        if (cap > 0) out[0] = '\0';
        return st;
    }
    if (k.overflow) return kiln__fail(KILN_ERR_TOO_LARGE, "chat: rendered prompt too large");
    if (needed) *needed = k.len;
    if (k.len >= cap) {
        if (cap > 0) out[0] = '\0';
        return kiln__fail(KILN_ERR_TOO_LARGE,
                          "chat: rendered prompt needs %zu bytes and a NUL, buffer has %zu",
                          k.len, cap);
    }
    out[k.len] = '\0';
    return KILN_OK;
}

kiln_status kiln__chat_render_alloc(enum kiln_chat_format fmt, const struct kiln_chat_message *msgs,
                                    size_t n, bool add_generation_prompt, const char *bos_text,
                                    const char *eos_text, char **out, size_t *len) {
    *out = NULL;
    if (len) *len = 0;
    size_t need = 0;
    /* First pass measures (a zero-sized buffer), the second writes. */
    kiln_status st = kiln__chat_render(fmt, msgs, n, add_generation_prompt, bos_text, eos_text,
                                       NULL, 0, &need);
    if (st != KILN_OK && st != KILN_ERR_TOO_LARGE) return st;
    if (need == SIZE_MAX) return kiln__fail(KILN_ERR_TOO_LARGE, "chat: rendered prompt too large");
    char *buf = malloc(need + 1);
    if (!buf)
        return kiln__fail(KILN_ERR_OUT_OF_MEMORY, "chat: cannot allocate %zu bytes for the prompt",
                          need + 1);
    st = kiln__chat_render(fmt, msgs, n, add_generation_prompt, bos_text, eos_text, buf, need + 1,
                           &need);
    if (st != KILN_OK) {
        free(buf);
        return st;
    }
    *out = buf;
    if (len) *len = need;
    return KILN_OK;
}
