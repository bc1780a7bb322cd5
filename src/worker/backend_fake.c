/* src/worker/backend_fake.c - the deterministic test backend (see backend.h).
 *
 * It exists so the daemon's protocol, queueing, cancellation and limits can
 * be tested without a model: `kiln serve --fake-model` and the worker tests.
 * Its output is a word sequence, not language, and it names itself
 * "kiln-fake" everywhere a model id appears. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/error.h"
#include "worker/backend.h"
#include "worker/buf.h"

/* The words the fake "model" says, one per token (each followed by a space). */
static const char *const fake_words[16] = {
    "alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel",
    "india", "juliet", "kilo", "lima", "mike", "november", "oscar", "papa",
};

/* The backend's state. */
struct fake_backend {
    struct kiln__fake_options opt;   /* options with defaults filled in */
    struct kiln__backend_info info;  /* what info() returns */
};

static void sleep_ms(double ms) {
    if (ms <= 0) return;
    struct timespec ts = {(time_t)(ms / 1000.0), (long)((ms - (double)(time_t)(ms / 1000.0) * 1000.0) * 1e6)};
    while (nanosleep(&ts, &ts) != 0) {
    }
}

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static kiln_status fake_load(void *ctx, kiln__progress_fn progress, void *user) {
    struct fake_backend *f = ctx;
    for (int i = 1; i <= 10; i++) {
        sleep_ms(f->opt.load_ms / 10.0);
        if (progress && progress(user, i / 10.0))
            return kiln__fail(KILN_ERR_CANCELLED, "fake backend: load cancelled");
    }
    return KILN_OK;
}

static const struct kiln__backend_info *fake_info(void *ctx) { return &((struct fake_backend *)ctx)->info; }

/* The prompt the fake "model" sees: the raw prompt, or the chat turns. */
static kiln_status render_prompt(const struct kiln__text_job *job, struct kiln__buf *out) {
    if (job->prompt) {
        kiln__buf_puts(out, job->prompt);
    } else {
        for (size_t i = 0; i < job->n_messages; i++)
            kiln__buf_printf(out, "<|%s|>\n%s\n", job->messages[i].role, job->messages[i].content);
        kiln__buf_puts(out, "<|assistant|>\n");
    }
    if (out->failed) return kiln__fail(KILN_ERR_OUT_OF_MEMORY, "fake backend: out of memory");
    return KILN_OK;
}

/* Whitespace-separated words plus one BOS token. */
static int32_t count_words(const char *s) {
    int32_t n = 1;
    int in_word = 0;
    for (; *s; s++) {
        int space = (*s == ' ' || *s == '\n' || *s == '\t' || *s == '\r');
        if (!space && !in_word) n++;
        in_word = !space;
    }
    return n;
}

static kiln_status fake_count(void *ctx, const struct kiln__text_job *job, int32_t *n) {
    (void)ctx;
    struct kiln__buf text = {0};
    kiln_status st = render_prompt(job, &text);
    if (st == KILN_OK) *n = count_words(text.data);
    kiln__buf_free(&text);
    return st;
}

/* Length of the longest suffix of s[0..n) that is a proper prefix of one of
 * the stop strings (text that must be held back: it may still become one). */
static size_t held_suffix(const char *s, size_t n, const char *const *stop, size_t n_stop) {
    size_t best = 0;
    for (size_t k = 0; k < n_stop; k++) {
        size_t sl = strlen(stop[k]);
        if (sl == 0) continue;
        for (size_t l = (sl - 1 < n ? sl - 1 : n); l > best; l--)
            if (memcmp(s + n - l, stop[k], l) == 0) {
                best = l;
                break;
            }
    }
    return best;
}

/* Earliest position in s[0..n) where a stop string starts, or n. */
static size_t first_stop(const char *s, size_t n, const char *const *stop, size_t n_stop) {
    size_t best = n;
    for (size_t k = 0; k < n_stop; k++) {
        size_t sl = strlen(stop[k]);
        if (sl == 0) continue;
        for (size_t i = 0; i + sl <= n && i < best; i++)
            if (memcmp(s + i, stop[k], sl) == 0) {
                best = i;
                break;
            }
    }
    return best;
}

static kiln_status fake_run(void *ctx, const struct kiln__text_job *job, kiln__token_fn on_token,
                            void *user, struct kiln__text_stats *stats) {
    struct fake_backend *f = ctx;
    memset(stats, 0, sizeof *stats);
    stats->stop_reason = KILN__STOP_ERROR;
    struct kiln__buf prompt = {0}, pending = {0};
    kiln_status st = render_prompt(job, &prompt);
    if (st != KILN_OK) goto done;
    stats->prompt_tokens = count_words(prompt.data);
    if (stats->prompt_tokens >= f->opt.context_length) {
        st = kiln__fail(KILN_ERR_CONTEXT_FULL, "fake backend: %d prompt tokens do not fit the context of %d",
                        stats->prompt_tokens, f->opt.context_length);
        goto done;
    }
    double t0 = now_ms();
    sleep_ms(f->opt.token_ms * (double)((stats->prompt_tokens + 63) / 64));
    double t1 = now_ms();
    stats->prompt_ms = t1 - t0;

    /* FNV-1a of the prompt picks the first word; an LCG walks on from there. */
    uint64_t state = 1469598103934665603ull;
    for (size_t i = 0; i < prompt.len; i++) state = (state ^ (unsigned char)prompt.data[i]) * 1099511628211ull;
    if (job->sampling.temperature > 0) state ^= job->sampling.seed * 0x9E3779B97F4A7C15ull;
    int fail = strstr(prompt.data, "[fail]") != NULL;

    stats->stop_reason = KILN__STOP_MAX_TOKENS;
    int32_t limit = job->max_tokens;
    if (limit > f->opt.context_length - stats->prompt_tokens) limit = f->opt.context_length - stats->prompt_tokens;
    for (int32_t i = 0;; i++) {
        if (i == f->opt.natural_tokens) {
            stats->stop_reason = KILN__STOP_EOS;
            break;
        }
        if (i >= limit) break;
        if (fail && i == 2) {
            stats->stop_reason = KILN__STOP_ERROR;
            st = kiln__fail(KILN_ERR_INTERNAL, "fake backend: the prompt asked for a failure");
            break;
        }
        if (i > 0) sleep_ms(f->opt.token_ms);
        state = state * 6364136223846793005ull + 1442695040888963407ull;
        kiln__buf_printf(&pending, "%s ", fake_words[state >> 60]);
        if (pending.failed) {
            stats->stop_reason = KILN__STOP_ERROR;
            st = kiln__fail(KILN_ERR_OUT_OF_MEMORY, "fake backend: out of memory");
            break;
        }
        stats->completion_tokens++;
        size_t cut = first_stop(pending.data, pending.len, job->stop, job->n_stop);
        if (cut < pending.len) {
            stats->stop_reason = KILN__STOP_SEQUENCE;
            pending.len = cut;
            break;
        }
        /* Emit all but what could still grow into a stop string. */
        size_t keep = held_suffix(pending.data, pending.len, job->stop, job->n_stop);
        size_t emit = pending.len - keep;
        int cancel = on_token(user, pending.data, emit);
        memmove(pending.data, pending.data + emit, keep);
        pending.len = keep;
        pending.data[keep] = '\0';
        if (cancel) {
            stats->stop_reason = KILN__STOP_CANCELLED;
            break;
        }
    }
    if (stats->stop_reason != KILN__STOP_CANCELLED && pending.len) on_token(user, pending.data, pending.len);
    stats->decode_ms = now_ms() - t1;
done:
    kiln__buf_free(&prompt);
    kiln__buf_free(&pending);
    return st;
}

static void fake_destroy(void *ctx) { free(ctx); }

kiln_status kiln__backend_fake_create(const struct kiln__fake_options *opt, struct kiln__backend *out) {
    struct fake_backend *f = calloc(1, sizeof *f);
    if (!f) return kiln__fail(KILN_ERR_OUT_OF_MEMORY, "fake backend: out of memory");
    f->opt = *opt;
    if (f->opt.context_length <= 0) f->opt.context_length = 512;
    if (f->opt.natural_tokens <= 0) f->opt.natural_tokens = 32;
    f->info.model_id = "kiln-fake";
    f->info.family = "fake";
    f->info.device = "cpu";
    f->info.implementation = "kiln-fake";
    f->info.context_length = f->opt.context_length;
    f->info.caps = KILN__CAP_TEXT | KILN__CAP_CHAT;
    /* run_image stays NULL: a text backend */
    *out = (struct kiln__backend){.ctx = f, .load = fake_load, .info = fake_info, .count_tokens = fake_count,
                                  .run_text = fake_run, .destroy = fake_destroy};
    return KILN_OK;
}
