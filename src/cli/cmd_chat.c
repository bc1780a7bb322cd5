/* src/cli/cmd_chat.c - `kiln chat`: an interactive conversation. Each turn
 * the whole conversation is rendered with the model's chat format
 * (detected from its template, src/text/chat_template.h; the documented
 * fallback otherwise) and handed to kiln_llm_generate, which reuses the
 * cached prefix: only the new turn is evaluated. Lines starting with '/'
 * are commands: /clear forgets the conversation, /exit (or end of input)
 * quits. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/commands.h"
#include "cli/llm_cli.h"
#include "text/chat_template.h"

static const char usage[] =
    "usage: kiln chat -m MODEL [--system TEXT] [--chat-template NAME] [-n N] [sampling flags] [-t] [-c] [--kv] [--mmap]\n"
    "  -m MODEL              GGUF file or model folder\n"
    "  --system TEXT         a system message opening the conversation\n"
    "  --chat-template NAME  use this format instead of the detected one (llama2, llama3,\n"
    "                        llama3.1, mistral-v0.1 .. mistral-v7, chatml, qwen2, qwen2.5,\n"
    "                        phi3, phi3.5, plain, ...)\n"
    "  -n N                  most tokens per reply (default 512; 0 = until the context is full)\n"
    "  sampling flags as for `kiln generate` (--temp, --top-k, --top-p, --min-p, --seed, --stop ...)\n"
    "Type a message and Enter; /clear starts over, /exit or Ctrl-D quits.\n";

/* The conversation so far. */
struct convo {
    struct kiln_chat_message *msgs; /* messages; contents are owned */
    size_t n;                       /* used */
    size_t cap;                     /* allocated */
    size_t keep;                    /* messages /clear keeps (the system message) */
};

static bool convo_add(struct convo *c, enum kiln_chat_role role, const char *text, size_t len) {
    if (c->n == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 8;
        struct kiln_chat_message *grown = realloc(c->msgs, cap * sizeof *grown);
        if (!grown) return false;
        c->msgs = grown;
        c->cap = cap;
    }
    char *copy = malloc(len + 1);
    if (!copy) return false;
    memcpy(copy, text, len);
    copy[len] = 0;
    c->msgs[c->n++] = (struct kiln_chat_message){role, copy};
    return true;
}

/* Drop messages back to `n`. */
static void convo_truncate(struct convo *c, size_t n) {
    while (c->n > n) free((char *)c->msgs[--c->n].content);
}

/* The reply being streamed: printed and kept. */
struct reply {
    char *text;  /* bytes so far */
    size_t len;  /* used */
    size_t cap;  /* allocated */
    bool oom;    /* an append failed */
};

static int on_piece(const char *text, size_t len, int32_t token, void *user) {
    (void)token;
    struct reply *r = user;
    fwrite(text, 1, len, stdout);
    fflush(stdout);
    if (r->len + len + 1 > r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 256;
        while (cap < r->len + len + 1) cap *= 2;
        char *grown = realloc(r->text, cap);
        if (!grown) {
            r->oom = true;
            return 1;
        }
        r->text = grown;
        r->cap = cap;
    }
    memcpy(r->text + r->len, text, len);
    r->len += len;
    return 0;
}

/* The text of a special token, or "" (rendering templates use BOS/EOS text). */
static char *token_text(const kiln_llm *m, int32_t id) {
    char buf[256];
    size_t n = 0;
    if (id < 0 || kiln_llm_detokenize(m, &id, 1, true, buf, sizeof buf - 1, &n) != KILN_OK) n = 0;
    buf[n] = 0;
    return strdup(buf);
}

/* One turn: render, tokenize, generate. Returns false on a failure that
 * ends the turn (the message was printed). */
static bool turn(kiln_llm *m, const struct llm_args *a, enum kiln_chat_format fmt, struct convo *c,
                 const char *bos, const char *eos, struct reply *r) {
    char *prompt = NULL;
    size_t len = 0;
    kiln_status st = kiln__chat_render_alloc(fmt, c->msgs, c->n, true, bos, eos, &prompt, &len);
    if (st != KILN_OK) {
        fprintf(stderr, "kiln chat: %s\n", kiln_last_error());
        return false;
    }
    size_t cap = (size_t)kiln_llm_n_ctx(m) + 1, n = 0;
    int32_t *ids = malloc(cap * sizeof *ids);
    /* templates that write BOS themselves must not get a second one */
    st = ids ? kiln_llm_tokenize(m, prompt, len, !kiln__chat_emits_bos(fmt), true, ids, cap, &n)
             : KILN_ERR_OUT_OF_MEMORY;
    free(prompt);
    if (st == KILN_ERR_TOO_LARGE) {
        fprintf(stderr, "kiln chat: the conversation no longer fits the context of %d tokens; /clear "
                "starts over\n", (int)kiln_llm_n_ctx(m));
        free(ids);
        return false;
    }
    if (st != KILN_OK) {
        fprintf(stderr, "kiln chat: %s: %s\n", kiln_status_str(st), kiln_last_error());
        free(ids);
        return false;
    }
    /* the plain transcript format has no end-of-turn token: stop at the next "User:" */
    const char *stops[KILN_CLI_MAX_STOP + 1];
    int32_t n_stop = a->n_stop;
    memcpy(stops, a->stop, (size_t)a->n_stop * sizeof *stops);
    if (fmt == KILN_CHAT_PLAIN) stops[n_stop++] = "\nUser:";
    kiln_generate_params gp = kiln_generate_default_params();
    gp.prompt_tokens = ids;
    gp.n_prompt_tokens = (int32_t)n;
    gp.sampling = a->sampling;
    gp.max_tokens = a->n_predict;
    gp.stop = stops;
    gp.n_stop = n_stop;
    gp.on_token = on_piece;
    gp.user = r;
    kiln_generate_result res;
    st = kiln_llm_generate(m, &gp, &res);
    free(ids);
    fputc('\n', stdout);
    fflush(stdout);
    if (r->oom) {
        fprintf(stderr, "kiln chat: out of memory\n");
        return false;
    }
    fprintf(stderr, "[prompt %d tokens, %d evaluated, %.1f tokens/s; reply %d tokens, %.1f tokens/s, %s]\n",
            (int)res.n_prompt_tokens, (int)res.n_prompt_evaluated,
            res.prompt_seconds > 0 ? res.n_prompt_evaluated / res.prompt_seconds : 0.0, (int)res.n_generated,
            res.decode_seconds > 0 ? res.n_generated / res.decode_seconds : 0.0,
            kiln_stop_reason_name(res.stop_reason));
    if (st != KILN_OK) {
        fprintf(stderr, "kiln chat: %s: %s%s\n", kiln_status_str(st), kiln_last_error(),
                st == KILN_ERR_CONTEXT_FULL ? "; /clear starts over" : "");
        return false;
    }
    return true;
}

int kiln_cmd_chat(int argc, char **argv) {
    struct llm_args a;
    int rc = kiln__llm_parse_args(argc, argv, LLM_OPT_GEN | LLM_OPT_RUN | LLM_OPT_CHAT, usage, &a);
    if (rc) return rc < 0 ? 0 : rc;
    bool n_given = false;
    for (int i = 1; i < argc; i++) n_given = n_given || strcmp(argv[i], "-n") == 0 || strcmp(argv[i], "--n-predict") == 0;
    if (!n_given) a.n_predict = 512;
    enum kiln_chat_format forced = KILN_CHAT_UNKNOWN;
    if (a.chat_template && kiln__chat_format_from_name(a.chat_template, &forced) != KILN_OK) {
        fprintf(stderr, "kiln chat: %s\n%s", kiln_last_error(), usage);
        return 2;
    }
    kiln_llm *m = kiln__llm_cli_load("chat", &a, false);
    if (!m) return 1;
    kiln_text_caps caps;
    kiln_llm_caps(m, &caps);
    const char *tmpl = caps.chat_template;
    enum kiln_chat_format fmt = forced != KILN_CHAT_UNKNOWN ? forced
                                                            : kiln__chat_choose(tmpl, tmpl ? strlen(tmpl) : 0);
    fprintf(stderr, "chat format: %s%s\n", kiln__chat_format_name(fmt),
            forced != KILN_CHAT_UNKNOWN ? " (--chat-template)"
            : tmpl && kiln__chat_detect(tmpl, strlen(tmpl)) != KILN_CHAT_UNKNOWN ? " (from the model's template)"
            : " (fallback: the model's template is missing or not recognised)");
    char *bos = token_text(m, kiln_llm_token_bos(m)), *eos = token_text(m, kiln_llm_token_eos(m));
    struct convo c = {0};
    int status = 0;
    if (!bos || !eos || (a.system && !convo_add(&c, KILN_CHAT_SYSTEM, a.system, strlen(a.system)))) {
        fprintf(stderr, "kiln chat: out of memory\n");
        status = 1;
    }
    c.keep = c.n;
    bool tty = isatty(STDIN_FILENO);
    char *line = NULL;
    size_t line_cap = 0;
    while (status == 0) {
        if (tty) {
            fputs("> ", stdout);
            fflush(stdout);
        }
        ssize_t got = getline(&line, &line_cap, stdin);
        if (got < 0) break;
        while (got > 0 && (line[got - 1] == '\n' || line[got - 1] == '\r')) line[--got] = 0;
        if (got == 0) continue;
        if (strcmp(line, "/exit") == 0 || strcmp(line, "/quit") == 0) break;
        if (strcmp(line, "/clear") == 0) {
            convo_truncate(&c, c.keep);
            kiln_llm_kv_clear(m);
            fprintf(stderr, "(conversation cleared)\n");
            continue;
        }
        size_t before = c.n;
        if (!convo_add(&c, KILN_CHAT_USER, line, (size_t)got)) {
            status = 1;
            break;
        }
        struct reply r = {0};
        if (turn(m, &a, fmt, &c, bos, eos, &r)) {
            if (!convo_add(&c, KILN_CHAT_ASSISTANT, r.text ? r.text : "", r.len)) status = 1;
        } else {
            convo_truncate(&c, before); /* the turn did not happen */
        }
        free(r.text);
    }
    free(line);
    convo_truncate(&c, 0);
    free(c.msgs);
    free(bos);
    free(eos);
    kiln_llm_free(m);
    return status;
}
