/* src/cli/bench_measure.c - the timed runs of `kiln bench` (pp, tg, ttft;
 * definitions in bench.h), through the public C API only. */
#include <stdio.h>
#include <stdlib.h>

#include "cli/bench.h"
#include "cli/llm_cli.h"

/* A random id in [0, n_vocab) (seeded, so every run draws the same). */
static int32_t random_token(uint64_t *rng, int32_t n_vocab) {
    return (int32_t)(kiln__bench_next_random(rng) % (uint64_t)n_vocab);
}

/* The first token of a sequence: BOS when the model has one, as llama-bench. */
static int32_t first_token(kiln_llm *m, uint64_t *rng) {
    int32_t bos = kiln_llm_token_bos(m);
    return bos >= 0 ? bos : random_token(rng, kiln_llm_n_vocab(m));
}

static void report(const char *what, kiln_status st) {
    fprintf(stderr, "kiln bench: %s: %s: %s\n", what, kiln_status_str(st), kiln_last_error());
}

/* pp<N>: n prompt tokens from an empty cache, logits of the last one. */
static kiln_status run_pp(kiln_llm *m, int32_t *ids, int32_t n, float *logits, uint64_t *rng, double *secs) {
    ids[0] = first_token(m, rng);
    for (int32_t i = 1; i < n; i++) ids[i] = random_token(rng, kiln_llm_n_vocab(m));
    kiln_llm_kv_clear(m);
    double t0 = kiln__cli_now();
    kiln_status st = kiln_llm_eval(m, ids, n, 0, KILN_LOGITS_LAST, logits);
    *secs = kiln__cli_now() - t0;
    return st;
}

/* tg<N>: n single-token evaluations from an empty cache. The next id is
 * drawn at random (not sampled), as llama-bench does: the timing is the
 * model's, not the sampler's. */
static kiln_status run_tg(kiln_llm *m, int32_t n, float *logits, uint64_t *rng, double *secs) {
    int32_t tok = first_token(m, rng);
    kiln_llm_kv_clear(m);
    double t0 = kiln__cli_now();
    for (int32_t i = 0; i < n; i++) {
        kiln_status st = kiln_llm_eval(m, &tok, 1, i, KILN_LOGITS_LAST, logits);
        if (st != KILN_OK) return st;
        tok = random_token(rng, kiln_llm_n_vocab(m));
    }
    *secs = kiln__cli_now() - t0;
    return KILN_OK;
}

/* ttft<N>: one greedy token after an n-token prompt, empty cache first. */
static kiln_status run_ttft(kiln_llm *m, int32_t *ids, int32_t n, uint64_t *rng, double *secs) {
    ids[0] = first_token(m, rng);
    for (int32_t i = 1; i < n; i++) ids[i] = random_token(rng, kiln_llm_n_vocab(m));
    kiln_generate_params gp = kiln_generate_default_params();
    gp.prompt_tokens = ids;
    gp.n_prompt_tokens = n;
    gp.sampling.temperature = 0;
    gp.max_tokens = 1;
    kiln_llm_kv_clear(m);
    kiln_generate_result r;
    double t0 = kiln__cli_now();
    kiln_status st = kiln_llm_generate(m, &gp, &r);
    *secs = kiln__cli_now() - t0;
    return st;
}

/* One run of a test (warm-up or measured). */
static kiln_status run_once(kiln_llm *m, const struct bench_test *t, int32_t *ids, float *logits, uint64_t *rng,
                            double *secs) {
    switch (t->kind) {
    case BENCH_PP: return run_pp(m, ids, t->n_tokens, logits, rng, secs);
    case BENCH_TG: return run_tg(m, t->n_tokens, logits, rng, secs);
    case BENCH_TTFT: return run_ttft(m, ids, t->n_tokens, rng, secs);
    }
    return KILN_ERR_INVALID_ARG;
}

int kiln__bench_measure(kiln_llm *m, struct bench_test *t, int32_t reps, uint64_t *rng) {
    char name[32];
    kiln__bench_test_name(t, name, sizeof name);
    int32_t *ids = malloc((size_t)t->n_tokens * sizeof *ids);
    float *logits = malloc((size_t)kiln_llm_n_vocab(m) * sizeof *logits);
    t->seconds = malloc((size_t)reps * sizeof *t->seconds);
    t->reps = 0;
    if (!ids || !logits || !t->seconds) {
        fprintf(stderr, "kiln bench: %s: out of memory\n", name);
        free(ids);
        free(logits);
        return 1;
    }
    /* The warm-up: a tg test warms up with one token, as llama-bench. */
    struct bench_test warm = *t;
    if (warm.kind == BENCH_TG) warm.n_tokens = 1;
    double secs = 0;
    kiln_status st = run_once(m, &warm, ids, logits, rng, &secs);
    for (int32_t r = 0; st == KILN_OK && r < reps; r++) {
        st = run_once(m, t, ids, logits, rng, &secs);
        if (st == KILN_OK) t->seconds[t->reps++] = secs;
    }
    if (st != KILN_OK) report(name, st);
    free(ids);
    free(logits);
    return st == KILN_OK ? 0 : 1;
}
