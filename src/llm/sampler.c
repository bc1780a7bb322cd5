/* src/llm/sampler.c - penalties, top-k / top-p / min-p filters, temperature
 * and a seeded draw; the order and the penalty formulas follow llama.cpp's
 * default sampler chain so the same settings mean the same thing. */
#include "llm/sampler.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"

struct kiln_sampler {
    kiln_sampling_params params; /* validated request parameters */
    int32_t n_vocab;             /* logits per call */
    kiln_candidate *cand;        /* n_vocab scratch candidates */
    int32_t *counts;             /* per-token occurrences in the history window */
    int32_t *history;            /* ring buffer of the last history_cap tokens */
    int32_t history_cap;         /* its capacity (0 = penalties off) */
    int32_t history_len;         /* tokens in it */
    int32_t history_head;        /* index of the oldest token */
    uint64_t rng[4];             /* xoshiro256** state */
};

/* splitmix64: spreads one seed into the four words of xoshiro's state. */
static uint64_t splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

uint64_t kiln__sampler_next_u64(kiln_sampler *s) {
    uint64_t *st = s->rng;
    uint64_t result = rotl(st[1] * 5, 7) * 9;
    uint64_t t = st[1] << 17;
    st[2] ^= st[0];
    st[3] ^= st[1];
    st[1] ^= st[2];
    st[0] ^= st[3];
    st[2] ^= t;
    st[3] = rotl(st[3], 45);
    return result;
}

/* Uniform double in [0, 1) from the top 53 bits. */
static double next_unit(kiln_sampler *s) {
    return (double)(kiln__sampler_next_u64(s) >> 11) * (1.0 / 9007199254740992.0);
}

static kiln_status validate(const kiln_sampling_params *p) {
    if (!(p->temperature == p->temperature)) return kiln__fail(KILN_ERR_INVALID_ARG, "temperature is NaN");
    if (p->top_k < 0) return kiln__fail(KILN_ERR_INVALID_ARG, "top_k must be >= 0");
    if (!(p->top_p > 0.0f && p->top_p <= 1.0f))
        return kiln__fail(KILN_ERR_INVALID_ARG, "top_p must be in (0, 1]");
    if (!(p->min_p >= 0.0f && p->min_p <= 1.0f))
        return kiln__fail(KILN_ERR_INVALID_ARG, "min_p must be in [0, 1]");
    if (!(p->repetition_penalty > 0.0f) || !isfinite(p->repetition_penalty))
        return kiln__fail(KILN_ERR_INVALID_ARG, "repetition_penalty must be > 0");
    if (!isfinite(p->presence_penalty) || !isfinite(p->frequency_penalty))
        return kiln__fail(KILN_ERR_INVALID_ARG, "presence and frequency penalties must be finite");
    if (p->penalty_last_n < -1) return kiln__fail(KILN_ERR_INVALID_ARG, "penalty_last_n must be >= -1");
    return KILN_OK;
}

kiln_sampler *kiln__sampler_create(const kiln_sampling_params *params, int32_t n_vocab,
                                   int32_t max_history) {
    if (!params || n_vocab <= 0) {
        kiln__fail(KILN_ERR_INVALID_ARG, "sampler: no parameters or empty vocabulary");
        return NULL;
    }
    if (validate(params) != KILN_OK) return NULL;
    kiln_sampler *s = calloc(1, sizeof *s);
    if (!s) goto oom;
    s->params = *params;
    s->n_vocab = n_vocab;
    s->history_cap = params->penalty_last_n == -1 ? (max_history > 0 ? max_history : 0)
                                                  : params->penalty_last_n;
    s->cand = malloc((size_t)n_vocab * sizeof *s->cand);
    s->counts = calloc((size_t)n_vocab, sizeof *s->counts);
    s->history = malloc((size_t)(s->history_cap > 0 ? s->history_cap : 1) * sizeof *s->history);
    if (!s->cand || !s->counts || !s->history) goto oom;
    uint64_t x = params->seed;
    for (int i = 0; i < 4; i++) s->rng[i] = splitmix64(&x);
    return s;
oom:
    kiln__sampler_free(s);
    kiln__fail(KILN_ERR_OUT_OF_MEMORY, "sampler: out of memory for %d candidates", (int)n_vocab);
    return NULL;
}

void kiln__sampler_free(kiln_sampler *s) {
    if (!s) return;
    free(s->cand);
    free(s->counts);
    free(s->history);
    free(s);
}

void kiln__sampler_accept(kiln_sampler *s, int32_t token) {
    if (s->history_cap <= 0 || token < 0 || token >= s->n_vocab) return;
    if (s->history_len == s->history_cap) {
        /* Window full: the oldest token leaves it. */
        s->counts[s->history[s->history_head]]--;
        s->history[s->history_head] = token;
        s->history_head = (s->history_head + 1) % s->history_cap;
    } else {
        s->history[(s->history_head + s->history_len) % s->history_cap] = token;
        s->history_len++;
    }
    s->counts[token]++;
}

/* Penalise every token seen in the window (each distinct token once). */
static void apply_penalties(kiln_sampler *s) {
    const kiln_sampling_params *p = &s->params;
    if (s->history_len == 0 ||
        (p->repetition_penalty == 1.0f && p->presence_penalty == 0.0f && p->frequency_penalty == 0.0f))
        return;
    for (int32_t i = 0; i < s->n_vocab; i++) {
        int32_t c = s->counts[i];
        if (c == 0) continue;
        float l = s->cand[i].logit;
        l = l > 0.0f ? l / p->repetition_penalty : l * p->repetition_penalty;
        l -= (float)c * p->frequency_penalty + p->presence_penalty;
        s->cand[i].logit = l;
    }
}

static int by_logit_desc(const void *a, const void *b) {
    const kiln_candidate *x = a, *y = b;
    if (x->logit != y->logit) return x->logit < y->logit ? 1 : -1;
    return x->id < y->id ? -1 : (x->id > y->id); /* stable order for equal logits */
}

/* Sift c[i] down the heap c[0..k) whose root sorts last (the worst kept). */
static void sift_down(kiln_candidate *c, int32_t k, int32_t i) {
    for (;;) {
        int32_t worst = i, l = 2 * i + 1, r = l + 1;
        if (l < k && by_logit_desc(&c[l], &c[worst]) > 0) worst = l;
        if (r < k && by_logit_desc(&c[r], &c[worst]) > 0) worst = r;
        if (worst == i) return;
        kiln_candidate t = c[i];
        c[i] = c[worst];
        c[worst] = t;
        i = worst;
    }
}

/* Move the k first candidates in by_logit_desc order to c[0..k), sorted:
 * a heap of the k best so far (O(n log k)) instead of sorting all n. The
 * order is total (ties go by id), so the result is that of a full sort. */
static void top_k_sorted(kiln_candidate *c, int32_t n, int32_t k) {
    for (int32_t i = k / 2 - 1; i >= 0; i--) sift_down(c, k, i);
    for (int32_t i = k; i < n; i++) {
        if (by_logit_desc(&c[i], &c[0]) < 0) {
            c[0] = c[i];
            sift_down(c, k, 0);
        }
    }
    qsort(c, (size_t)k, sizeof *c, by_logit_desc);
}

/* Softmax over the first n candidates (sorted descending) into .p. */
static void softmax(kiln_candidate *c, int32_t n, float temperature) {
    double sum = 0.0;
    float max = c[0].logit;
    for (int32_t i = 0; i < n; i++) {
        c[i].p = expf((c[i].logit - max) / temperature);
        sum += c[i].p;
    }
    for (int32_t i = 0; i < n; i++) c[i].p = (float)(c[i].p / sum);
}

int32_t kiln__sampler_sample(kiln_sampler *s, const float *logits) {
    const kiln_sampling_params *p = &s->params;
    for (int32_t i = 0; i < s->n_vocab; i++) s->cand[i] = (kiln_candidate){i, logits[i], 0.0f};
    apply_penalties(s);

    if (p->temperature <= 0.0f) {
        int32_t best = 0;
        for (int32_t i = 1; i < s->n_vocab; i++)
            if (s->cand[i].logit > s->cand[best].logit) best = i;
        return best;
    }

    int32_t n = s->n_vocab;
    if (p->top_k > 0 && p->top_k < n) {
        n = p->top_k;
        top_k_sorted(s->cand, s->n_vocab, n);
    } else {
        qsort(s->cand, (size_t)n, sizeof *s->cand, by_logit_desc);
    }

    if (p->top_p < 1.0f) {
        softmax(s->cand, n, 1.0f);
        double cum = 0.0;
        for (int32_t i = 0; i < n; i++) {
            cum += s->cand[i].p;
            if (cum >= p->top_p) {
                n = i + 1;
                break;
            }
        }
    }
    if (p->min_p > 0.0f) {
        softmax(s->cand, n, 1.0f);
        float floor_p = p->min_p * s->cand[0].p;
        int32_t keep = 1;
        while (keep < n && s->cand[keep].p >= floor_p) keep++;
        n = keep;
    }

    softmax(s->cand, n, p->temperature);
    double r = next_unit(s), cum = 0.0;
    for (int32_t i = 0; i < n; i++) {
        cum += s->cand[i].p;
        if (r < cum) return s->cand[i].id;
    }
    return s->cand[n - 1].id; /* rounding left r just above the total */
}

kiln_sampling_params kiln_sampling_default_params(void) {
    return (kiln_sampling_params){
        .temperature = 0.8f,
        .top_k = 40,
        .top_p = 0.95f,
        .min_p = 0.05f,
        .repetition_penalty = 1.0f,
        .presence_penalty = 0.0f,
        .frequency_penalty = 0.0f,
        .penalty_last_n = 64,
        .seed = 0,
    };
}
