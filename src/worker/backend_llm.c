/* src/worker/backend_llm.c - the worker's backend for text models: adapts
 * the LLM engine (kiln/llm.h) and the chat formats (src/text/chat_template.h)
 * to the interface in backend.h.
 *
 * Prompts are tokenized here, not by the engine, so that the count the
 * daemon checks against the context (count_tokens, on HTTP threads) is the
 * very token list that is generated from. Tokenizing only reads the model's
 * immutable vocabulary (the pre-tokenizer's regex match data is made per
 * call), so count_tokens may run while the runner thread generates.
 *
 * The engine evaluates a prompt in one call, without asking whether to
 * stop; a long prompt is therefore evaluated here first, in chunks, with the
 * daemon asked between chunks (a zero-length piece), so that a client that
 * goes away during the prompt cancels it. kiln_llm_generate then finds all
 * but the prompt's last token in the KV cache. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/error.h"
#include "kiln/kiln.h"
#include "text/chat_template.h"
#include "worker/backend.h"
#include "worker/request.h"

/* Prompt tokens evaluated between two cancellation checks. */
#define PREFILL_CHUNK 64

/* The backend's state. */
struct llm_backend {
    char *path;                     /* the model file or folder (owned) */
    int32_t n_threads;              /* compute threads; 0 = one per core */
    int32_t n_ctx;                  /* context; 0 = the model's */
    kiln_llm *m;                    /* the loaded model, or NULL before load */
    enum kiln_chat_format fmt;      /* how chat messages become a prompt */
    char *bos_text;                 /* the BOS token's text (chat templates use it) */
    char *eos_text;                 /* the EOS token's text */
    char model_id[256];             /* the model's name: its file or folder name */
    struct kiln__backend_info info; /* what info() returns */
    kiln__progress_fn progress;     /* the daemon's load progress callback */
    void *progress_user;            /* for progress */
    int32_t *cached;                /* tokens believed to be in the KV cache, in order (owned) */
    size_t n_cached;                /* entries of cached in use */
    size_t cap_cached;              /* entries allocated (n_ctx + 1) */
};

/* A prompt as token ids. */
struct tokens {
    int32_t *ids; /* the ids (owned) */
    size_t n;     /* how many the text makes (may exceed what ids holds) */
};

/* Seconds on the monotonic clock. */
static double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The engine's byte progress, as a fraction for the daemon. */
static int on_load_progress(uint64_t done, uint64_t total, void *user) {
    struct llm_backend *b = user;
    return b->progress ? b->progress(b->progress_user, total ? (double)done / (double)total : 0) : 0;
}

/* The text of a special token, or "" when it has none. */
static char *token_text(const kiln_llm *m, int32_t id) {
    char buf[256];
    size_t n = 0;
    if (id < 0 || kiln_llm_detokenize(m, &id, 1, true, buf, sizeof buf - 1, &n) != KILN_OK) n = 0;
    buf[n] = '\0';
    return strdup(buf);
}

static kiln_status llm_load(void *ctx, kiln__progress_fn progress, void *user) {
    struct llm_backend *b = ctx;
    kiln_llm_params p = kiln_llm_default_params();
    p.n_threads = b->n_threads;
    p.n_ctx = b->n_ctx;
    p.progress = on_load_progress;
    p.progress_user = b;
    b->progress = progress;
    b->progress_user = user;
    kiln_status st = kiln_llm_load(b->path, p, &b->m);
    if (st != KILN_OK) return st;
    kiln_text_caps caps;
    if ((st = kiln_llm_caps(b->m, &caps)) != KILN_OK) return st;
    const char *tmpl = caps.chat_template;
    b->fmt = kiln__chat_choose(tmpl, tmpl ? strlen(tmpl) : 0);
    b->bos_text = token_text(b->m, kiln_llm_token_bos(b->m));
    b->eos_text = token_text(b->m, kiln_llm_token_eos(b->m));
    if (!b->bos_text || !b->eos_text) return kiln__fail(KILN_ERR_OUT_OF_MEMORY, "serve: out of memory");
    b->cap_cached = (size_t)kiln_llm_n_ctx(b->m) + 1;
    b->cached = malloc(b->cap_cached * sizeof *b->cached);
    if (!b->cached) return kiln__fail(KILN_ERR_OUT_OF_MEMORY, "serve: out of memory");
    b->info.family = kiln_arch_name(kiln_llm_arch(b->m));
    b->info.context_length = kiln_llm_n_ctx(b->m);
    return KILN_OK;
}

static const struct kiln__backend_info *llm_info(void *ctx) { return &((struct llm_backend *)ctx)->info; }

/* Chat messages in the chat formats' terms: "developer" is the newer name
 * of "system"; tool results have no place in these formats. */
static kiln_status to_chat(const struct kiln__text_job *job, struct kiln_chat_message *out) {
    for (size_t i = 0; i < job->n_messages; i++) {
        const char *role = job->messages[i].role;
        if (strcmp(role, "system") == 0 || strcmp(role, "developer") == 0) out[i].role = KILN_CHAT_SYSTEM;
        else if (strcmp(role, "user") == 0) out[i].role = KILN_CHAT_USER;
        else if (strcmp(role, "assistant") == 0) out[i].role = KILN_CHAT_ASSISTANT;
        else return kiln__fail(KILN_ERR_INVALID_ARG, "message %zu: role '%s' is not supported by text models", i, role);
        out[i].content = job->messages[i].content;
    }
    return KILN_OK;
}

/* The job's prompt as tokens: chat messages through the model's format
 * (rendered text already holds BOS where the format writes it), or the raw
 * prompt with BOS added. At most n_ctx + 1 ids are kept; t->n is the full
 * count either way. */
static kiln_status tokenize_job(struct llm_backend *b, const struct kiln__text_job *job, struct tokens *t) {
    t->ids = NULL;
    t->n = 0;
    char *chat = NULL;
    const char *text = job->prompt;
    size_t len = text ? strlen(text) : 0;
    bool add_bos = true;
    kiln_status st = KILN_OK;
    if (!text) {
        struct kiln_chat_message *msgs = calloc(job->n_messages ? job->n_messages : 1, sizeof *msgs);
        if (!msgs) return kiln__fail(KILN_ERR_OUT_OF_MEMORY, "serve: out of memory");
        st = to_chat(job, msgs);
        if (st == KILN_OK)
            st = kiln__chat_render_alloc(b->fmt, msgs, job->n_messages, true, b->bos_text, b->eos_text, &chat, &len);
        free(msgs);
        if (st != KILN_OK) return st;
        text = chat;
        add_bos = !kiln__chat_emits_bos(b->fmt);
    }
    size_t cap = (size_t)kiln_llm_n_ctx(b->m) + 1;
    t->ids = malloc(cap * sizeof *t->ids);
    if (!t->ids) st = kiln__fail(KILN_ERR_OUT_OF_MEMORY, "serve: out of memory");
    else st = kiln_llm_tokenize(b->m, text, len, add_bos, true, t->ids, cap, &t->n);
    if (st == KILN_ERR_TOO_LARGE) st = KILN_OK; /* t->n says how many; the caller compares with the context */
    free(chat);
    if (st != KILN_OK) {
        free(t->ids);
        t->ids = NULL;
    }
    return st;
}

static kiln_status llm_count(void *ctx, const struct kiln__text_job *job, int32_t *n) {
    struct tokens t;
    kiln_status st = tokenize_job(ctx, job, &t);
    if (st == KILN_OK) *n = t.n > INT32_MAX ? INT32_MAX : (int32_t)t.n;
    free(t.ids);
    return st;
}

/* Carries the daemon's callback through the engine's. */
struct relay {
    kiln__token_fn fn;     /* the daemon's callback */
    void *user;            /* its argument */
    struct llm_backend *b; /* where generated tokens are recorded as cached */
};

static int relay_piece(const char *text, size_t len, int32_t token, void *user) {
    struct relay *r = user;
    if (token >= 0 && r->b->n_cached < r->b->cap_cached) r->b->cached[r->b->n_cached++] = token;
    return r->fn(r->user, text, len);
}

/* Evaluate tok[0..n-1) beyond what the cache already holds, PREFILL_CHUNK
 * tokens at a time, asking the daemon before each chunk. Returns 1 when it
 * asked to stop, else 0 with *st (the first chunk evaluation's failure, if
 * any; generation then reports it again). Prompts whose new part fits one
 * chunk are left to kiln_llm_generate. */
static int prefill(struct llm_backend *b, const int32_t *tok, size_t n, struct relay *r, kiln_status *st) {
    *st = KILN_OK;
    size_t past = (size_t)kiln_llm_n_past(b->m);
    size_t known = b->n_cached < past ? b->n_cached : past;
    size_t pos = 0;
    while (pos < known && pos < n && b->cached[pos] == tok[pos]) pos++;
    if (n < 1 || pos + 1 + PREFILL_CHUNK > n) return 0;
    b->n_cached = pos; /* the cache beyond pos is about to be replaced */
    while (pos + 1 < n) {
        if (r->fn(r->user, "", 0)) return 1;
        size_t len = n - 1 - pos < PREFILL_CHUNK ? n - 1 - pos : PREFILL_CHUNK;
        *st = kiln_llm_eval(b->m, tok + pos, (int32_t)len, (int32_t)pos, KILN_LOGITS_NONE, NULL);
        if (*st != KILN_OK) {
            b->n_cached = 0;
            return 0;
        }
        memcpy(b->cached + pos, tok + pos, len * sizeof *tok);
        pos += len;
        b->n_cached = pos;
    }
    return 0;
}

static enum kiln__stop_reason stop_reason_of(kiln_stop_reason r) {
    switch (r) {
    case KILN_STOP_MAX_TOKENS: return KILN__STOP_MAX_TOKENS;
    case KILN_STOP_EOS: return KILN__STOP_EOS;
    case KILN_STOP_SEQUENCE: return KILN__STOP_SEQUENCE;
    case KILN_STOP_CANCELLED: return KILN__STOP_CANCELLED;
    case KILN_STOP_ERROR: return KILN__STOP_ERROR;
    }
    return KILN__STOP_ERROR;
}

static kiln_status llm_run(void *ctx, const struct kiln__text_job *job, kiln__token_fn on_token, void *user,
                           struct kiln__text_stats *stats) {
    struct llm_backend *b = ctx;
    memset(stats, 0, sizeof *stats);
    stats->stop_reason = KILN__STOP_ERROR;
    struct tokens t;
    kiln_status st = tokenize_job(b, job, &t);
    if (st != KILN_OK) return st;
    stats->prompt_tokens = (int32_t)(t.n > INT32_MAX ? INT32_MAX : t.n);
    if (t.n >= (size_t)kiln_llm_n_ctx(b->m)) {
        free(t.ids);
        return kiln__fail(KILN_ERR_CONTEXT_FULL, "the prompt's %zu tokens do not fit the context of %d", t.n,
                          kiln_llm_n_ctx(b->m));
    }
    /* The plain transcript format has no end-of-turn token: a chat reply
     * ends where the model starts the user's next line. */
    const char *stops[KILN__MAX_STOP + 1];
    size_t n_stop = 0;
    for (; n_stop < job->n_stop && n_stop < KILN__MAX_STOP; n_stop++) stops[n_stop] = job->stop[n_stop];
    if (!job->prompt && b->fmt == KILN_CHAT_PLAIN) stops[n_stop++] = "\nUser:";
    struct relay r = {on_token, user, b};
    double t0 = now_seconds();
    kiln_status pst;
    if (prefill(b, t.ids, t.n, &r, &pst)) {
        free(t.ids);
        stats->stop_reason = KILN__STOP_CANCELLED;
        stats->prompt_ms = (now_seconds() - t0) * 1e3;
        return KILN_OK;
    }
    double prefill_s = now_seconds() - t0;
    /* From here the cache holds the prompt, then what is generated. */
    memcpy(b->cached, t.ids, t.n * sizeof *t.ids);
    b->n_cached = t.n;
    kiln_generate_params gp = kiln_generate_default_params();
    gp.prompt_tokens = t.ids;
    gp.n_prompt_tokens = (int32_t)t.n;
    gp.sampling = job->sampling;
    gp.max_tokens = job->max_tokens;
    gp.stop = stops;
    gp.n_stop = (int32_t)n_stop;
    gp.on_token = relay_piece;
    gp.user = &r;
    kiln_generate_result res;
    memset(&res, 0, sizeof res);
    st = kiln_llm_generate(b->m, &gp, &res);
    free(t.ids);
    if (st != KILN_OK) b->n_cached = 0; /* unknown: start afresh next time */
    stats->stop_reason = st == KILN_OK ? stop_reason_of(res.stop_reason) : KILN__STOP_ERROR;
    stats->prompt_tokens = res.n_prompt_tokens;
    stats->completion_tokens = res.n_generated;
    stats->prompt_ms = (prefill_s + res.prompt_seconds) * 1e3;
    stats->decode_ms = res.decode_seconds * 1e3;
    return st;
}

static void llm_destroy(void *ctx) {
    struct llm_backend *b = ctx;
    kiln_llm_free(b->m);
    free(b->cached);
    free(b->bos_text);
    free(b->eos_text);
    free(b->path);
    free(b);
}

kiln_status kiln__backend_llm_create(const char *path, int32_t n_threads, int32_t n_ctx, struct kiln__backend *out) {
    struct llm_backend *b = calloc(1, sizeof *b);
    if (!b || !(b->path = strdup(path))) {
        free(b);
        return kiln__fail(KILN_ERR_OUT_OF_MEMORY, "serve: out of memory");
    }
    b->n_threads = n_threads;
    b->n_ctx = n_ctx;
    /* The model's name: the last path component, without a .gguf suffix. */
    size_t len = strlen(path);
    while (len > 1 && path[len - 1] == '/') len--;
    size_t start = len;
    while (start > 0 && path[start - 1] != '/') start--;
    size_t n = len - start;
    if (n > 5 && strncmp(path + len - 5, ".gguf", 5) == 0) n -= 5;
    if (n >= sizeof b->model_id) n = sizeof b->model_id - 1;
    memcpy(b->model_id, path + start, n);
    b->model_id[n] = '\0';
    b->info.model_id = b->model_id;
    b->info.family = "";
    b->info.device = "cpu";
    b->info.implementation = "kiln-llm";
    b->info.caps = KILN__CAP_TEXT | KILN__CAP_CHAT;
    /* run_image stays NULL: a text backend */
    *out = (struct kiln__backend){.ctx = b, .load = llm_load, .info = llm_info, .count_tokens = llm_count,
                                  .run_text = llm_run, .destroy = llm_destroy};
    return KILN_OK;
}
