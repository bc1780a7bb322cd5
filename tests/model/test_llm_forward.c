/* tests/model/test_llm_forward.c - the forward pass of every architecture
 * on tiny random models written by tests/llm_tiny.h: logits against an
 * independent double-precision reference (HF semantics), GGUF against the
 * Hugging Face folder of the same weights, batched prompt against token by
 * token, 1 thread against 3, F16 against F32 KV cache, quantized files
 * against their dequantized weights, and context limits. */
#include <stdlib.h>

#include "kiln/kiln.h"
#include "llm_tiny.h"
#include "test.h"

#ifndef KILN_TEST_TMP
#define KILN_TEST_TMP "."
#endif

/* A prompt of n ids drawn from the vocabulary. */
static void prompt(int32_t *tok, int n, uint32_t seed) {
    for (int i = 0; i < n; i++) {
        seed = seed * 1103515245u + 12345u;
        tok[i] = (int32_t)((seed >> 8) % TINY_VOCAB);
    }
}

/* Loaded with the f32 matmul for every weight type (exact_matmul), so the
 * logits are the float product of the stored weights. */
static kiln_llm *load(const char *path, int threads, kiln_kv_type kv, int batch) {
    kiln_llm_params p = kiln_llm_default_params();
    p.n_threads = threads;
    p.kv_type = kv;
    p.n_batch = batch;
    p.exact_matmul = true;
    kiln_llm *m = NULL;
    kiln_status st = kiln_llm_load(path, p, &m);
    if (st != KILN_OK) fprintf(stderr, "  load %s: %s\n", path, kiln_last_error());
    return m;
}

/* All logits of a prompt evaluated from position 0. */
static float *eval_all(kiln_llm *m, const int32_t *tok, int n) {
    float *out = malloc((size_t)n * TINY_VOCAB * sizeof *out);
    if (!out) return NULL;
    if (kiln_llm_eval(m, tok, n, 0, KILN_LOGITS_ALL, out) != KILN_OK) {
        fprintf(stderr, "  eval: %s\n", kiln_last_error());
        free(out);
        return NULL;
    }
    return out;
}

/* Prompt tokens: more than forward.c's threshold for the blocked attention
 * (24), so that prompts run through both attention paths. */
#define N_TOK 40

/* GGUF (F32 weights, F32 cache) and HF folder against the reference. */
static void check_arch(struct tiny_cfg cfg, const char *tag) {
    struct tiny_model tm;
    tiny_build(&tm, cfg);
    char gguf[512], hf[512];
    snprintf(gguf, sizeof gguf, KILN_TEST_TMP "/fwd_%s.gguf", tag);
    snprintf(hf, sizeof hf, KILN_TEST_TMP "/fwd_%s_hf", tag);
    CHECK_EQ_INT(tiny_write_gguf(&tm, KILN_DTYPE_F32, gguf), KILN_OK);
    CHECK_EQ_INT(tiny_write_hf(&tm, hf), KILN_OK);
    int32_t tok[N_TOK];
    prompt(tok, N_TOK, (uint32_t)cfg.seed);
    double *ref = tiny_ref_logits(&tm, tok, N_TOK);

    /* batches of 30 (blocked attention) and 10 (per query and head) tokens */
    kiln_llm *mg = load(gguf, 2, KILN_KV_F32, 30), *mh = load(hf, 2, KILN_KV_F32, 30);
    REQUIRE(mg && mh);
    CHECK_EQ_INT(kiln_llm_arch(mg), cfg.arch == KILN_ARCH_MISTRAL ? KILN_ARCH_LLAMA : cfg.arch);
    CHECK_EQ_INT(kiln_llm_n_vocab(mg), TINY_VOCAB);
    float *lg = eval_all(mg, tok, N_TOK), *lh = eval_all(mh, tok, N_TOK);
    REQUIRE(lg && lh);
    double eg = tiny_rel_err(lg, ref, (size_t)N_TOK * TINY_VOCAB);
    double eh = tiny_rel_err(lh, ref, (size_t)N_TOK * TINY_VOCAB);
    double egh = tiny_rel_err_f(lg, lh, (size_t)N_TOK * TINY_VOCAB);
    fprintf(stderr, "  %s: gguf %.2e, hf %.2e vs reference; gguf vs hf %.2e\n", tag, eg, eh, egh);
    CHECK(eg < 1e-5);
    CHECK(eh < 1e-5);
    CHECK(egh < 1e-5);
    free(lg);
    free(lh);
    free(ref);
    kiln_llm_free(mg);
    kiln_llm_free(mh);
    tiny_free(&tm);
}

static void test_llama(void) { check_arch(tiny_cfg_default(KILN_ARCH_LLAMA), "llama"); }

static void test_llama_tied_mha_llama3_rope(void) {
    struct tiny_cfg c = tiny_cfg_default(KILN_ARCH_LLAMA);
    c.tied = true;
    c.n_head_kv = 4;
    c.llama3_rope = true;
    c.n_layer = 3;
    c.seed = 5;
    check_arch(c, "llama3");
}

static void test_mistral_sliding_window(void) {
    struct tiny_cfg c = tiny_cfg_default(KILN_ARCH_MISTRAL);
    c.sliding_window = 4;
    c.seed = 2;
    check_arch(c, "mistral");
}

static void test_qwen2(void) {
    struct tiny_cfg c = tiny_cfg_default(KILN_ARCH_QWEN2);
    c.tied = true;
    c.seed = 3;
    check_arch(c, "qwen2");
}

static void test_phi3(void) {
    struct tiny_cfg c = tiny_cfg_default(KILN_ARCH_PHI3);
    c.seed = 4;
    check_arch(c, "phi3");
}

static void test_phi2(void) {
    struct tiny_cfg c = tiny_cfg_default(KILN_ARCH_PHI2);
    c.seed = 6;
    check_arch(c, "phi2");
    c.gguf_fused_qkv = true;
    check_arch(c, "phi2_fused");
}

/* Batching, threads and the cache type change nothing (or, for F16, little). */
static void test_batch_threads_kv(void) {
    struct tiny_model tm;
    struct tiny_cfg c = tiny_cfg_default(KILN_ARCH_LLAMA);
    c.seed = 9;
    tiny_build(&tm, c);
    const char *path = KILN_TEST_TMP "/fwd_consistency.gguf";
    REQUIRE(tiny_write_gguf(&tm, KILN_DTYPE_F32, path) == KILN_OK);
    int32_t tok[N_TOK];
    prompt(tok, N_TOK, 77);

    kiln_llm *big = load(path, 1, KILN_KV_F32, 64), *threads = load(path, 3, KILN_KV_F32, 64);
    kiln_llm *f16 = load(path, 1, KILN_KV_F16, 64), *one = load(path, 1, KILN_KV_F32, 1);
    REQUIRE(big && threads && f16 && one);
    float *a = eval_all(big, tok, N_TOK), *b = eval_all(threads, tok, N_TOK);
    float *h = eval_all(f16, tok, N_TOK);
    REQUIRE(a && b && h);
    CHECK(memcmp(a, b, (size_t)N_TOK * TINY_VOCAB * sizeof *a) == 0); /* bit for bit */
    double e16 = tiny_rel_err_f(h, a, (size_t)N_TOK * TINY_VOCAB);
    fprintf(stderr, "  f16 cache vs f32: %.2e\n", e16);
    CHECK(e16 < 1e-2);
    CHECK(e16 > 0.0); /* the cache really is rounded */

    /* token by token through the cache (batch size 1), last logits each */
    float row[TINY_VOCAB];
    double worst = 0.0;
    for (int t = 0; t < N_TOK; t++) {
        REQUIRE(kiln_llm_eval(one, tok + t, 1, t, KILN_LOGITS_LAST, row) == KILN_OK);
        double e = tiny_rel_err_f(row, a + (size_t)t * TINY_VOCAB, TINY_VOCAB);
        if (e > worst) worst = e;
    }
    CHECK(worst < 1e-6);
    CHECK_EQ_INT(kiln_llm_n_past(one), N_TOK);

    /* rewinding: evaluating from position 5 again gives the same rows */
    float *tail = malloc((size_t)(N_TOK - 5) * TINY_VOCAB * sizeof *tail);
    REQUIRE(tail);
    REQUIRE(kiln_llm_eval(big, tok + 5, N_TOK - 5, 5, KILN_LOGITS_ALL, tail) == KILN_OK);
    CHECK(tiny_rel_err_f(tail, a + 5 * TINY_VOCAB, (size_t)(N_TOK - 5) * TINY_VOCAB) < 1e-6);
    free(tail);

    free(a);
    free(b);
    free(h);
    kiln_llm_free(big);
    kiln_llm_free(threads);
    kiln_llm_free(f16);
    kiln_llm_free(one);
    tiny_free(&tm);
}

/* Quantized weights: the same logits as F32 weights holding the
 * dequantized values, and close to the unquantized reference (exact_matmul;
 * the default quantized-activation path is checked against its own
 * reference in test_llm_golden.c). */
static void test_quantized(void) {
    const kiln_dtype types[] = {KILN_DTYPE_F16, KILN_DTYPE_BF16, KILN_DTYPE_Q8_0, KILN_DTYPE_Q4_0,
                                KILN_DTYPE_Q4_K, KILN_DTYPE_Q6_K};
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
        struct tiny_cfg c = tiny_cfg_default(KILN_ARCH_QWEN2);
        c.n_embd = 256; /* K-quant rows are 256 values */
        c.n_ff = 256;
        c.n_head = 8;
        c.n_head_kv = 4;
        c.n_rot = 32;
        c.n_layer = 1;
        c.seed = 11;
        struct tiny_model tm;
        tiny_build(&tm, c);
        const char *qpath = KILN_TEST_TMP "/fwd_quant.gguf", *dpath = KILN_TEST_TMP "/fwd_dequant.gguf";
        REQUIRE(tiny_write_gguf(&tm, types[i], qpath) == KILN_OK);
        tiny_round_trip(&tm, types[i]);
        REQUIRE(tiny_write_gguf(&tm, KILN_DTYPE_F32, dpath) == KILN_OK);
        int32_t tok[8];
        prompt(tok, 8, 5);
        double *ref = tiny_ref_logits(&tm, tok, 8);
        kiln_llm *q = load(qpath, 2, KILN_KV_F32, 8), *d = load(dpath, 2, KILN_KV_F32, 8);
        REQUIRE(q && d);
        kiln_text_caps caps;
        REQUIRE(kiln_llm_caps(q, &caps) == KILN_OK);
        CHECK_EQ_INT(caps.dtype, types[i]);
        CHECK_EQ_INT(caps.quantized, kiln_dtype_block_elems(types[i]) > 1);
        float *lq = eval_all(q, tok, 8), *ld = eval_all(d, tok, 8);
        REQUIRE(lq && ld);
        double e = tiny_rel_err_f(lq, ld, 8 * TINY_VOCAB), er = tiny_rel_err(lq, ref, 8 * TINY_VOCAB);
        fprintf(stderr, "  %s: vs dequantized F32 %.2e, vs reference %.2e\n", kiln_dtype_name(types[i]), e, er);
        CHECK(e < 1e-5);
        CHECK(er < 1e-4);
        free(lq);
        free(ld);
        free(ref);
        kiln_llm_free(q);
        kiln_llm_free(d);
        tiny_free(&tm);
    }
}

static void test_context_limits(void) {
    struct tiny_model tm;
    tiny_build(&tm, tiny_cfg_default(KILN_ARCH_LLAMA));
    const char *path = KILN_TEST_TMP "/fwd_ctx.gguf";
    REQUIRE(tiny_write_gguf(&tm, KILN_DTYPE_F16, path) == KILN_OK);
    kiln_llm_params p = kiln_llm_default_params();
    p.n_ctx = 16;
    p.n_threads = 1;
    kiln_llm *m = NULL;
    REQUIRE(kiln_llm_load(path, p, &m) == KILN_OK);
    CHECK_EQ_INT(kiln_llm_n_ctx(m), 16);
    int32_t tok[20];
    prompt(tok, 20, 3);
    float row[TINY_VOCAB];
    CHECK_EQ_INT(kiln_llm_eval(m, tok, 17, 0, KILN_LOGITS_LAST, row), KILN_ERR_CONTEXT_FULL);
    CHECK_CONTAINS(kiln_last_error(), "context full");
    CHECK_EQ_INT(kiln_llm_n_past(m), 0); /* nothing was evaluated */
    CHECK_EQ_INT(kiln_llm_eval(m, tok, 16, 0, KILN_LOGITS_LAST, row), KILN_OK);
    CHECK_EQ_INT(kiln_llm_eval(m, tok, 1, 16, KILN_LOGITS_LAST, row), KILN_ERR_CONTEXT_FULL);
    CHECK_EQ_INT(kiln_llm_eval(m, tok, 1, 17, KILN_LOGITS_LAST, row), KILN_ERR_INVALID_ARG);
    int32_t bad = TINY_VOCAB;
    CHECK_EQ_INT(kiln_llm_eval(m, &bad, 1, 0, KILN_LOGITS_LAST, row), KILN_ERR_INVALID_ARG);
    CHECK_EQ_INT(kiln_llm_eval(m, tok, 1, 0, KILN_LOGITS_LAST, NULL), KILN_ERR_INVALID_ARG);
    kiln_llm_kv_clear(m);
    CHECK_EQ_INT(kiln_llm_n_past(m), 0);
    kiln_llm_free(m);

    /* n_ctx 0: the model's context (128 here, under the cap) */
    p.n_ctx = 0;
    REQUIRE(kiln_llm_load(path, p, &m) == KILN_OK);
    CHECK_EQ_INT(kiln_llm_n_ctx(m), 128);
    kiln_text_caps caps;
    REQUIRE(kiln_llm_caps(m, &caps) == KILN_OK);
    CHECK_EQ_INT(caps.context_length, 128);
    CHECK_EQ_INT(caps.n_eos, 1);
    CHECK_EQ_INT(caps.eos_ids[0], TINY_EOS);
    CHECK_EQ_INT(caps.dtype, KILN_DTYPE_F16);
    CHECK(!caps.quantized);
    kiln_llm_free(m);
    kiln_llm_free(NULL);
    tiny_free(&tm);
}

int main(void) {
    RUN(test_llama);
    RUN(test_llama_tied_mha_llama3_rope);
    RUN(test_mistral_sliding_window);
    RUN(test_qwen2);
    RUN(test_phi3);
    RUN(test_phi2);
    RUN(test_batch_threads_kv);
    RUN(test_quantized);
    RUN(test_context_limits);
    return TEST_REPORT();
}
