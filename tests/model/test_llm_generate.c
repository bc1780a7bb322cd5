/* tests/model/test_llm_generate.c - tokenizing through the model handle and
 * generation on tiny random models: greedy output against step-by-step
 * argmax of full evaluations and of the double-precision reference,
 * streamed text against the detokenized ids, stop strings, end-of-sequence,
 * cancellation, max tokens, seeds, KV prefix reuse and a full context. */
#include <stdlib.h>

#include "kiln/kiln.h"
#include "llm_tiny.h"
#include "test.h"

#ifndef KILN_TEST_TMP
#define KILN_TEST_TMP "."
#endif

/* What the callback saw. */
struct seen {
    int32_t ids[256];
    int n_ids;        /* callbacks with a real token */
    char text[4096];
    size_t len;       /* bytes of text received */
    int flushes;      /* callbacks with token -1 */
    int cancel_at;    /* return 1 at this many tokens (0 = never) */
};

static int on_token(const char *text, size_t len, int32_t token, void *user) {
    struct seen *s = user;
    if (token >= 0 && s->n_ids < 256) s->ids[s->n_ids++] = token;
    if (token < 0) s->flushes++;
    if (s->len + len < sizeof s->text) {
        memcpy(s->text + s->len, text, len);
        s->len += len;
    }
    return s->cancel_at && s->n_ids == s->cancel_at;
}

static kiln_llm *load_tiny(struct tiny_model *tm, struct tiny_cfg c, const char *path, int n_ctx) {
    tiny_build(tm, c);
    if (tiny_write_gguf(tm, KILN_DTYPE_F32, path) != KILN_OK) return NULL;
    kiln_llm_params p = kiln_llm_default_params();
    p.n_threads = 2;
    p.n_ctx = n_ctx;
    p.kv_type = KILN_KV_F32;
    kiln_llm *m = NULL;
    if (kiln_llm_load(path, p, &m) != KILN_OK) fprintf(stderr, "  load: %s\n", kiln_last_error());
    return m;
}

static int32_t argmax(const float *x, int n) {
    int32_t best = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > x[best]) best = i;
    return best;
}

static void test_tokenize_through_model(void) {
    struct tiny_model tm;
    kiln_llm *m = load_tiny(&tm, tiny_cfg_default(KILN_ARCH_LLAMA), KILN_TEST_TMP "/gen_tok.gguf", 64);
    REQUIRE(m);
    int32_t ids[16];
    size_t n = 0;
    /* bytes h e l l o; merges "h e" (id 256) and "l l" (id 257) */
    REQUIRE(kiln_llm_tokenize(m, "hello", 5, true, true, ids, 16, &n) == KILN_OK);
    CHECK_EQ_INT(n, 3);
    CHECK_EQ_INT(ids[0], 256);
    CHECK_EQ_INT(ids[1], 257);
    CHECK_EQ_INT(ids[2], 'o');
    /* <|endoftext|> is parsed as one control token when asked */
    REQUIRE(kiln_llm_tokenize(m, "a<|endoftext|>", 14, false, true, ids, 16, &n) == KILN_OK);
    CHECK_EQ_INT(n, 2);
    CHECK_EQ_INT(ids[1], TINY_EOS);
    CHECK_EQ_INT(kiln_llm_tokenize(m, "hello", 5, true, true, ids, 2, &n), KILN_ERR_TOO_LARGE);
    CHECK_EQ_INT(n, 3);
    char out[32];
    int32_t hello[] = {256, 257, 'o', TINY_EOS};
    REQUIRE(kiln_llm_detokenize(m, hello, 4, false, out, sizeof out, &n) == KILN_OK);
    CHECK_EQ_INT(n, 5);
    CHECK(memcmp(out, "hello", 5) == 0);
    REQUIRE(kiln_llm_detokenize(m, hello, 4, true, out, sizeof out, &n) == KILN_OK);
    CHECK_EQ_INT(n, 18);
    kiln_llm_free(m);
    tiny_free(&tm);
}

/* Greedy generation = argmax of full evaluations, step by step, and of
 * the reference where its top two logits are clearly apart. */
static void test_greedy_matches_eval(void) {
    struct tiny_model tm;
    struct tiny_cfg c = tiny_cfg_default(KILN_ARCH_QWEN2);
    c.seed = 22; /* its greedy run does not meet <|endoftext|> within 16 tokens */
    kiln_llm *m = load_tiny(&tm, c, KILN_TEST_TMP "/gen_greedy.gguf", 64);
    REQUIRE(m);
    kiln_generate_params gp = kiln_generate_default_params();
    gp.prompt = "hello world";
    gp.sampling.temperature = 0.0f;
    gp.max_tokens = 16;
    struct seen s = {0};
    gp.on_token = on_token;
    gp.user = &s;
    kiln_generate_result r;
    REQUIRE(kiln_llm_generate(m, &gp, &r) == KILN_OK);
    CHECK_EQ_INT(r.stop_reason, KILN_STOP_MAX_TOKENS);
    CHECK_EQ_INT(r.n_generated, 16);
    CHECK_EQ_INT(s.n_ids, 16);
    CHECK_EQ_INT(r.n_prompt_tokens, 9); /* he ll o Ġ w o r l d: "Ġt" does not apply */
    CHECK_EQ_INT(r.n_prompt_evaluated, 9);
    CHECK(r.prompt_seconds >= 0.0 && r.decode_seconds >= 0.0);

    int32_t seq[64];
    size_t n = 0;
    REQUIRE(kiln_llm_tokenize(m, "hello world", 11, true, true, seq, 64, &n) == KILN_OK);
    float *logits = malloc(64 * TINY_VOCAB * sizeof *logits);
    REQUIRE(logits);
    int checked_ref = 0;
    for (int i = 0; i < 16; i++) {
        REQUIRE(kiln_llm_eval(m, seq, (int32_t)n, 0, KILN_LOGITS_ALL, logits) == KILN_OK);
        int32_t want = argmax(logits + (n - 1) * TINY_VOCAB, TINY_VOCAB);
        CHECK_EQ_INT(s.ids[i], want);
        double *ref = tiny_ref_logits(&tm, seq, (int)n);
        const double *last = ref + (n - 1) * TINY_VOCAB;
        int32_t best = 0, second = -1;
        for (int j = 1; j < TINY_VOCAB; j++) {
            if (last[j] > last[best]) {
                second = best;
                best = j;
            } else if (second < 0 || last[j] > last[second]) {
                second = j;
            }
        }
        if (last[best] - last[second] > 1e-3) {
            CHECK_EQ_INT(s.ids[i], best);
            checked_ref++;
        }
        free(ref);
        seq[n++] = s.ids[i];
    }
    CHECK(checked_ref >= 12);

    /* the streamed text is the detokenized ids (UTF-8 repaired the same way) */
    char text[512];
    size_t text_len = 0;
    REQUIRE(kiln_llm_detokenize(m, s.ids, 16, false, text, sizeof text, &text_len) == KILN_OK);
    CHECK(s.len > 0);
    CHECK(s.len <= 3 * text_len);

    /* the same prompt again: only its last token is evaluated */
    struct seen s2 = {0};
    gp.user = &s2;
    REQUIRE(kiln_llm_generate(m, &gp, &r) == KILN_OK);
    CHECK_EQ_INT(r.n_prompt_evaluated, 1);
    CHECK(memcmp(s.ids, s2.ids, sizeof s.ids) == 0);
    CHECK(s.len == s2.len && memcmp(s.text, s2.text, s.len) == 0);

    /* continuing from prompt + output: the cached generated tokens are reused */
    gp.prompt = NULL;
    gp.prompt_tokens = seq;
    gp.n_prompt_tokens = (int32_t)n;
    gp.max_tokens = 2;
    REQUIRE(kiln_llm_generate(m, &gp, &r) == KILN_OK);
    CHECK_EQ_INT(r.n_prompt_tokens, (int)n);
    CHECK_EQ_INT(r.n_prompt_evaluated, 1); /* the last generated token was never evaluated */

    free(logits);
    kiln_llm_free(m);
    tiny_free(&tm);
}

static void test_stop_string_cancel_seed(void) {
    struct tiny_model tm;
    struct tiny_cfg c = tiny_cfg_default(KILN_ARCH_LLAMA);
    c.seed = 23;
    kiln_llm *m = load_tiny(&tm, c, KILN_TEST_TMP "/gen_stop.gguf", 64);
    REQUIRE(m);
    kiln_generate_params gp = kiln_generate_default_params();
    gp.prompt = "the ";
    gp.sampling.temperature = 0.0f;
    gp.max_tokens = 24;
    gp.on_token = on_token;
    struct seen full = {0};
    gp.user = &full;
    kiln_generate_result r;
    REQUIRE(kiln_llm_generate(m, &gp, &r) == KILN_OK);
    REQUIRE(full.len > 8);

    /* a stop string taken from the middle of that text: the output ends
     * just before its first occurrence */
    char stop[3] = {full.text[6], full.text[7], 0};
    if (stop[0] && stop[1]) {
        long first = -1;
        for (size_t i = 0; i + 2 <= full.len; i++)
            if (full.text[i] == stop[0] && full.text[i + 1] == stop[1]) {
                first = (long)i;
                break;
            }
        const char *stops[] = {"never-appears", stop};
        gp.stop = stops;
        gp.n_stop = 2;
        struct seen cut = {0};
        gp.user = &cut;
        REQUIRE(kiln_llm_generate(m, &gp, &r) == KILN_OK);
        CHECK_EQ_INT(r.stop_reason, KILN_STOP_SEQUENCE);
        CHECK_EQ_INT(cut.len, first);
        CHECK(memcmp(cut.text, full.text, cut.len) == 0);
        CHECK_EQ_INT(cut.flushes, 0);
        gp.stop = NULL;
        gp.n_stop = 0;
    }

    /* a stop string that starts with the text's last byte but never
     * completes: that byte is held back, then flushed (token -1) at the end */
    {
        char partial[3] = {full.text[full.len - 1], '\x01', 0};
        const char *stops[] = {partial};
        gp.stop = stops;
        gp.n_stop = 1;
        struct seen held = {0};
        gp.user = &held;
        REQUIRE(kiln_llm_generate(m, &gp, &r) == KILN_OK);
        CHECK_EQ_INT(r.stop_reason, KILN_STOP_MAX_TOKENS);
        CHECK_EQ_INT(held.len, full.len);
        CHECK(memcmp(held.text, full.text, full.len) == 0);
        CHECK_EQ_INT(held.flushes, 1);
        gp.stop = NULL;
        gp.n_stop = 0;
    }

    /* cancel at the third token */
    struct seen cancel = {.cancel_at = 3};
    gp.user = &cancel;
    REQUIRE(kiln_llm_generate(m, &gp, &r) == KILN_OK);
    CHECK_EQ_INT(r.stop_reason, KILN_STOP_CANCELLED);
    CHECK_EQ_INT(r.n_generated, 3);

    /* sampling: the same seed, the same tokens */
    gp.sampling = kiln_sampling_default_params();
    gp.sampling.temperature = 1.5f;
    gp.sampling.top_k = 0;
    gp.sampling.min_p = 0.0f;
    gp.sampling.seed = 42;
    gp.max_tokens = 12;
    struct seen a = {0}, b = {0};
    gp.user = &a;
    REQUIRE(kiln_llm_generate(m, &gp, &r) == KILN_OK);
    gp.user = &b;
    REQUIRE(kiln_llm_generate(m, &gp, &r) == KILN_OK);
    CHECK_EQ_INT(a.n_ids, 12);
    CHECK(memcmp(a.ids, b.ids, sizeof a.ids) == 0);

    /* bad requests */
    gp.prompt_tokens = a.ids; /* both text and tokens */
    gp.n_prompt_tokens = 1;
    CHECK_EQ_INT(kiln_llm_generate(m, &gp, &r), KILN_ERR_INVALID_ARG);
    CHECK_EQ_INT(r.stop_reason, KILN_STOP_ERROR);
    gp.prompt_tokens = NULL;
    const char *empty[] = {""};
    gp.stop = empty;
    gp.n_stop = 1;
    CHECK_EQ_INT(kiln_llm_generate(m, &gp, &r), KILN_ERR_INVALID_ARG);
    gp.n_stop = 0;
    gp.sampling.top_p = 0.0f;
    CHECK_EQ_INT(kiln_llm_generate(m, &gp, &r), KILN_ERR_INVALID_ARG);
    CHECK_CONTAINS(kiln_last_error(), "top_p");
    kiln_llm_free(m);
    tiny_free(&tm);
}

/* An LM-head bias that makes <|endoftext|> win: generation ends at once. */
static void test_eos(void) {
    struct tiny_model tm;
    struct tiny_cfg c = tiny_cfg_default(KILN_ARCH_PHI2);
    tiny_build(&tm, c);
    tm.output_b[TINY_EOS] = 1000.0f;
    const char *path = KILN_TEST_TMP "/gen_eos.gguf";
    REQUIRE(tiny_write_gguf(&tm, KILN_DTYPE_F32, path) == KILN_OK);
    kiln_llm *m = NULL;
    REQUIRE(kiln_llm_load(path, kiln_llm_default_params(), &m) == KILN_OK);
    kiln_generate_params gp = kiln_generate_default_params();
    gp.prompt = "hi";
    struct seen s = {0};
    gp.on_token = on_token;
    gp.user = &s;
    kiln_generate_result r;
    REQUIRE(kiln_llm_generate(m, &gp, &r) == KILN_OK);
    CHECK_EQ_INT(r.stop_reason, KILN_STOP_EOS);
    CHECK_EQ_INT(r.n_generated, 1);
    CHECK_EQ_INT(s.n_ids, 0);
    CHECK_EQ_INT(s.len, 0);
    CHECK_EQ_STR(kiln_stop_reason_name(r.stop_reason), "eos");
    kiln_llm_free(m);
    tiny_free(&tm);
}

static void test_context_full_while_generating(void) {
    struct tiny_model tm;
    kiln_llm *m = load_tiny(&tm, tiny_cfg_default(KILN_ARCH_PHI3), KILN_TEST_TMP "/gen_full.gguf", 16);
    REQUIRE(m);
    int32_t tok[17];
    for (int i = 0; i < 17; i++) tok[i] = 'a' + i;
    kiln_generate_params gp = kiln_generate_default_params();
    gp.prompt_tokens = tok;
    gp.n_prompt_tokens = 17;
    kiln_generate_result r;
    CHECK_EQ_INT(kiln_llm_generate(m, &gp, &r), KILN_ERR_CONTEXT_FULL);
    CHECK_EQ_INT(r.n_generated, 0);
    gp.n_prompt_tokens = 10;
    gp.max_tokens = 0;
    gp.sampling.temperature = 0.0f;
    struct seen s = {0};
    gp.on_token = on_token;
    gp.user = &s;
    CHECK_EQ_INT(kiln_llm_generate(m, &gp, &r), KILN_ERR_CONTEXT_FULL);
    CHECK_EQ_INT(r.stop_reason, KILN_STOP_ERROR);
    CHECK_EQ_INT(r.n_generated, 7); /* positions 10..15 filled, the 7th token has no room */
    CHECK_CONTAINS(kiln_last_error(), "context full");
    CHECK_EQ_INT(kiln_llm_n_past(m), 16);
    kiln_llm_free(m);
    tiny_free(&tm);
}

int main(void) {
    RUN(test_tokenize_through_model);
    RUN(test_greedy_matches_eval);
    RUN(test_stop_string_cancel_seed);
    RUN(test_eos);
    RUN(test_context_full_while_generating);
    return TEST_REPORT();
}
