/* src/llm/generate.c - text generation: reuse the cached prefix of the
 * prompt, evaluate the rest in batches, then sample token by token,
 * streaming text that is final (whole UTF-8 characters that cannot be the
 * start of a stop string) to the caller's callback. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/error.h"
#include "llm/llm_internal.h"
#include "llm/sampler.h"
#include "text/tokenizer.h"

kiln_generate_params kiln_generate_default_params(void) {
    return (kiln_generate_params){
        .prompt = NULL,
        .prompt_tokens = NULL,
        .n_prompt_tokens = 0,
        .sampling = kiln_sampling_default_params(),
        .max_tokens = 128,
        .stop = NULL,
        .n_stop = 0,
        .on_token = NULL,
        .user = NULL,
    };
}

const char *kiln_stop_reason_name(kiln_stop_reason reason) {
    switch (reason) {
    case KILN_STOP_MAX_TOKENS: return "max_tokens";
    case KILN_STOP_EOS: return "eos";
    case KILN_STOP_SEQUENCE: return "stop_sequence";
    case KILN_STOP_CANCELLED: return "cancelled";
    case KILN_STOP_ERROR: return "error";
    }
    return "unknown";
}

static double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Text produced but not yet handed out (it may begin a stop string). */
struct pending {
    char *buf;  /* bytes */
    size_t len; /* used */
    size_t cap; /* allocated */
};

static kiln_status pending_add(struct pending *p, const char *s, size_t n) {
    if (p->len + n > p->cap) {
        size_t cap = p->cap ? p->cap : 64;
        while (cap < p->len + n) cap *= 2;
        char *grown = realloc(p->buf, cap);
        if (!grown) return kiln__fail(KILN_ERR_OUT_OF_MEMORY, "out of memory for generated text");
        p->buf = grown;
        p->cap = cap;
    }
    if (n) memcpy(p->buf + p->len, s, n);
    p->len += n;
    return KILN_OK;
}

/* Index of the first occurrence of needle in hay, or -1 (bytes, NULs allowed). */
static long find(const char *hay, size_t hay_len, const char *needle, size_t n) {
    if (n == 0 || n > hay_len) return -1;
    for (size_t i = 0; i + n <= hay_len; i++)
        if (hay[i] == needle[0] && memcmp(hay + i, needle, n) == 0) return (long)i;
    return -1;
}

/* What one generation carries around. */
struct gen {
    kiln_llm *m;                       /* the model */
    const kiln_generate_params *p;     /* the request */
    struct pending text;               /* held-back text */
    size_t emitted;                    /* bytes of text.buf already handed out (prefix) */
};

/* Hand text.buf[emitted..upto) to the callback with `token`; true when the
 * callback cancels. */
static bool emit(struct gen *g, size_t upto, int32_t token) {
    const char *s = g->text.buf ? g->text.buf + g->emitted : "";
    size_t n = upto - g->emitted;
    g->emitted = upto;
    return g->p->on_token && g->p->on_token(s, n, token, g->p->user) != 0;
}

/* After new text: stop at a stop string, else emit all but the longest
 * tail that could still grow into one. Sets *stopped when a stop string
 * was found. Returns true when the callback cancels. */
static bool after_text(struct gen *g, int32_t token, bool *stopped) {
    const char *buf = g->text.buf ? g->text.buf : "";
    size_t len = g->text.len;
    long first = -1;
    for (int32_t i = 0; i < g->p->n_stop; i++) {
        /* Earlier text was checked already; a match ends in the new part. */
        long at = find(buf + g->emitted, len - g->emitted, g->p->stop[i], strlen(g->p->stop[i]));
        if (at >= 0 && (first < 0 || at < first)) first = at;
    }
    if (first >= 0) {
        *stopped = true;
        return emit(g, g->emitted + (size_t)first, token);
    }
    size_t hold = 0;
    for (int32_t i = 0; i < g->p->n_stop; i++) {
        size_t sl = strlen(g->p->stop[i]);
        /* longest k < sl with the text's last k bytes = the stop's first k */
        for (size_t k = sl - 1; k > hold; k--)
            if (k <= len - g->emitted && memcmp(buf + len - k, g->p->stop[i], k) == 0) {
                hold = k;
                break;
            }
    }
    return emit(g, len - hold, token);
}

static bool is_eos(const kiln_llm *m, int32_t token) {
    for (uint32_t i = 0; i < m->caps.n_eos; i++)
        if (m->caps.eos_ids[i] == token) return true;
    return false;
}

static kiln_status check_params(const kiln_llm *m, const kiln_generate_params *p) {
    if (!m || !p) return kiln__fail(KILN_ERR_INVALID_ARG, "kiln_llm_generate: NULL argument");
    if (m->params.vocab_only || !m->pool)
        return kiln__fail(KILN_ERR_UNSUPPORTED, "generate: the model was loaded for its vocabulary only");
    if ((p->prompt != NULL) == (p->prompt_tokens != NULL))
        return kiln__fail(KILN_ERR_INVALID_ARG, "generate: give either prompt text or prompt tokens");
    if (p->prompt_tokens && p->n_prompt_tokens <= 0)
        return kiln__fail(KILN_ERR_INVALID_ARG, "generate: empty prompt");
    if (p->max_tokens < 0 || p->n_stop < 0 || (p->n_stop > 0 && !p->stop))
        return kiln__fail(KILN_ERR_INVALID_ARG, "generate: max_tokens and n_stop must not be negative");
    for (int32_t i = 0; i < p->n_stop; i++)
        if (!p->stop[i] || !p->stop[i][0])
            return kiln__fail(KILN_ERR_INVALID_ARG, "generate: stop string %d is empty", (int)i);
    return KILN_OK;
}

/* The prompt as tokens in *out (malloc'd) and its length. */
static kiln_status prompt_tokens(kiln_llm *m, const kiln_generate_params *p, int32_t **out, int32_t *n) {
    size_t cap = (size_t)m->params.n_ctx + 1, len = 0;
    if (p->prompt_tokens) cap = (size_t)p->n_prompt_tokens;
    int32_t *tok = malloc(cap * sizeof *tok);
    if (!tok) return kiln__fail(KILN_ERR_OUT_OF_MEMORY, "out of memory for the prompt");
    kiln_status st = KILN_OK;
    if (p->prompt_tokens) {
        memcpy(tok, p->prompt_tokens, cap * sizeof *tok);
        len = cap;
    } else {
        st = kiln_llm_tokenize(m, p->prompt, strlen(p->prompt), true, true, tok, cap, &len);
        if (st == KILN_ERR_TOO_LARGE)
            st = kiln__fail(KILN_ERR_CONTEXT_FULL, "context full: the prompt has more tokens than the "
                            "context of %d (raise n_ctx / -c)", (int)m->params.n_ctx);
        else if (st == KILN_OK && len == 0)
            st = kiln__fail(KILN_ERR_INVALID_ARG, "generate: the prompt makes no tokens");
    }
    if (st == KILN_OK && len > (size_t)m->params.n_ctx)
        st = kiln__fail(KILN_ERR_CONTEXT_FULL, "context full: the prompt has %zu tokens, the context "
                        "holds %d (raise n_ctx / -c)", len, (int)m->params.n_ctx);
    if (st != KILN_OK) {
        free(tok);
        return st;
    }
    *out = tok;
    *n = (int32_t)len;
    return KILN_OK;
}

/* Evaluate the prompt, reusing the cached prefix; logits in m->logits. */
static kiln_status eval_prompt(kiln_llm *m, const int32_t *tok, int32_t n, kiln_generate_result *r) {
    int32_t common = 0;
    while (common < n && common < m->n_past && m->cache_tokens[common] == tok[common]) common++;
    if (common == n) common--; /* the last token runs again for its logits */
    double t0 = now_seconds();
    kiln_status st = kiln_llm_eval(m, tok + common, n - common, common, KILN_LOGITS_LAST, m->logits);
    r->prompt_seconds = now_seconds() - t0;
    r->n_prompt_evaluated = n - common;
    return st;
}

kiln_status kiln_llm_generate(kiln_llm *m, const kiln_generate_params *p, kiln_generate_result *result) {
    kiln_generate_result r = {.stop_reason = KILN_STOP_ERROR};
    kiln_status st = check_params(m, p);
    int32_t *tok = NULL, n_tok = 0;
    kiln_sampler *sampler = NULL;
    kiln_detok detok;
    struct gen g = {m, p, {NULL, 0, 0}, 0};
    bool have_detok = false;
    if (st == KILN_OK) st = prompt_tokens(m, p, &tok, &n_tok);
    if (st != KILN_OK) goto done;
    r.n_prompt_tokens = n_tok;
    if ((st = eval_prompt(m, tok, n_tok, &r)) != KILN_OK) goto done;

    sampler = kiln__sampler_create(&p->sampling, m->hp.n_vocab, m->params.n_ctx);
    if (!sampler) {
        st = KILN_ERR_INVALID_ARG; /* message set by the sampler */
        goto done;
    }
    for (int32_t i = 0; i < n_tok; i++) kiln__sampler_accept(sampler, tok[i]);
    if (m->vocab) {
        kiln__detok_init(&detok, m->vocab, 0);
        have_detok = true;
    }

    double t0 = now_seconds();
    for (;;) {
        int32_t next = kiln__sampler_sample(sampler, m->logits);
        kiln__sampler_accept(sampler, next);
        r.n_generated++;
        if (is_eos(m, next)) {
            r.stop_reason = KILN_STOP_EOS;
            break;
        }
        const char *piece = "";
        size_t piece_len = 0;
        if (have_detok && (st = kiln__detok_push(&detok, next, &piece, &piece_len)) != KILN_OK) break;
        if ((st = pending_add(&g.text, piece, piece_len)) != KILN_OK) break;
        bool stopped = false;
        if (after_text(&g, next, &stopped)) {
            r.stop_reason = KILN_STOP_CANCELLED;
            break;
        }
        if (stopped) {
            r.stop_reason = KILN_STOP_SEQUENCE;
            break;
        }
        if (p->max_tokens > 0 && r.n_generated >= p->max_tokens) {
            r.stop_reason = KILN_STOP_MAX_TOKENS;
            break;
        }
        if (m->n_past >= m->params.n_ctx) {
            st = kiln__fail(KILN_ERR_CONTEXT_FULL, "context full: generation reached the context "
                            "length of %d tokens (raise n_ctx / -c)", (int)m->params.n_ctx);
            break;
        }
        if ((st = kiln_llm_eval(m, &next, 1, m->n_past, KILN_LOGITS_LAST, m->logits)) != KILN_OK) break;
    }
    r.decode_seconds = now_seconds() - t0;
    if (st != KILN_OK) r.stop_reason = KILN_STOP_ERROR;
    /* Text still held back: a character cut short, or the start of a stop
     * string that never completed. */
    if (r.stop_reason != KILN_STOP_CANCELLED && r.stop_reason != KILN_STOP_SEQUENCE) {
        const char *rest = "";
        size_t rest_len = 0;
        kiln_status fs = have_detok ? kiln__detok_flush(&detok, &rest, &rest_len) : KILN_OK;
        if (fs == KILN_OK) fs = pending_add(&g.text, rest, rest_len);
        if (fs == KILN_OK && g.text.len > g.emitted && emit(&g, g.text.len, -1) && st == KILN_OK)
            r.stop_reason = KILN_STOP_CANCELLED;
        if (st == KILN_OK) st = fs;
        if (st != KILN_OK) r.stop_reason = KILN_STOP_ERROR;
    }

done:
    if (have_detok) kiln__detok_free(&detok);
    kiln__sampler_free(sampler);
    free(g.text.buf);
    free(tok);
    if (result) *result = r;
    return st;
}
