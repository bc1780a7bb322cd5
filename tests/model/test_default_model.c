/* tests/model/test_default_model.c - the shipped default model (models/)
 * against the numbers its training script computed in PyTorch and stored in
 * models/default-model.json: tokenizer ids, the greedy continuation, and the
 * held-out perplexity (F16 within 1 percent, Q8_0 within 3 percent of F16),
 * which must also be far below the unigram model's. */
#include <jansson.h>
#include <math.h>
#include <stdlib.h>

#include "kiln/kiln.h"
#include "test.h"
#include "test_files.h"

#define MODELS KILN_SOURCE_DIR "/models"

static json_t *card;

/* The integer array card[section][key] into out (at most cap); its length. */
static size_t card_ids(const char *section, const char *key, int32_t *out, size_t cap) {
    json_t *a = json_object_get(json_object_get(card, section), key);
    size_t n = json_array_size(a);
    for (size_t i = 0; i < n && i < cap; i++) out[i] = (int32_t)json_integer_value(json_array_get(a, i));
    return n;
}

static double card_real(const char *section, const char *key) {
    return json_number_value(json_object_get(json_object_get(card, section), key));
}

static kiln_llm *load(const char *file) {
    kiln_llm_params p = kiln_llm_default_params();
    kiln_llm *m = NULL;
    if (kiln_llm_load(file, p, &m) != KILN_OK) fprintf(stderr, "  load %s: %s\n", file, kiln_last_error());
    return m;
}

static void test_tokenizer_and_greedy_continuation(void) {
    kiln_llm *m = load(MODELS "/fortune-llama-f16.gguf");
    REQUIRE(m != NULL);
    int32_t want_prompt[64], want_gen[128], ids[256];
    size_t n_prompt = card_ids("reference_generation", "prompt_ids", want_prompt, 64);
    size_t n_gen = card_ids("reference_generation", "generated_ids", want_gen, 128);
    REQUIRE(n_prompt > 0 && n_prompt < 64 && n_gen > 0 && n_gen <= 128);
    const char *prompt = json_string_value(json_object_get(json_object_get(card, "reference_generation"), "prompt"));
    size_t n = 0;
    REQUIRE(kiln_llm_tokenize(m, prompt, strlen(prompt), true, false, ids, 256, &n) == KILN_OK);
    CHECK_EQ_INT(n, n_prompt);
    for (size_t i = 0; i < n && i < n_prompt; i++) CHECK_EQ_INT(ids[i], want_prompt[i]);

    /* Greedy, no EOS stop: argmax of the last logits, one token at a time. */
    int32_t n_vocab = kiln_llm_n_vocab(m);
    float *logits = malloc((size_t)n_vocab * sizeof *logits);
    REQUIRE(logits != NULL);
    kiln_status st = kiln_llm_eval(m, want_prompt, (int32_t)n_prompt, 0, KILN_LOGITS_LAST, logits);
    size_t same = 0;
    for (size_t i = 0; st == KILN_OK && i < n_gen; i++) {
        int32_t best = 0;
        for (int32_t v = 1; v < n_vocab; v++)
            if (logits[v] > logits[best]) best = v;
        if (best != want_gen[i]) break;
        same++;
        st = kiln_llm_eval(m, &best, 1, (int32_t)(n_prompt + i), KILN_LOGITS_LAST, logits);
    }
    CHECK_EQ_INT(st, KILN_OK);
    CHECK_EQ_INT(same, n_gen);
    free(logits);
    kiln_llm_free(m);
}

/* Perplexity by the card's protocol: the held-out file as one stream with
 * BOS first, non-overlapping windows of ctx tokens each run from position
 * 0, every token but a window's first predicted; exp(mean NLL). */
static double perplexity(const char *file, size_t *scored_out) {
    kiln_llm *m = load(file);
    if (!m) return NAN;
    size_t len = 0;
    uint8_t *text = test_read_file(MODELS "/fortune-heldout.txt", &len);
    int32_t ctx = (int32_t)card_real("config", "max_seq_len"), n_vocab = kiln_llm_n_vocab(m);
    int32_t *ids = malloc((len + 2) * sizeof *ids);
    float *logits = malloc((size_t)ctx * (size_t)n_vocab * sizeof *logits);
    size_t n = 0;
    double nll = 0.0;
    size_t scored = 0;
    if (text && ids && logits &&
        kiln_llm_tokenize(m, (const char *)text, len, true, false, ids, len + 2, &n) == KILN_OK) {
        for (size_t start = 0; start + 1 < n; start += (size_t)ctx) {
            int32_t w = n - start < (size_t)ctx ? (int32_t)(n - start) : ctx;
            if (kiln_llm_eval(m, ids + start, w, 0, KILN_LOGITS_ALL, logits) != KILN_OK) {
                scored = 0;
                break;
            }
            for (int32_t t = 0; t + 1 < w; t++) {
                const float *row = logits + (size_t)t * (size_t)n_vocab;
                double max = row[0], sum = 0.0;
                for (int32_t v = 1; v < n_vocab; v++) max = row[v] > max ? row[v] : max;
                for (int32_t v = 0; v < n_vocab; v++) sum += exp(row[v] - max);
                nll += max + log(sum) - row[ids[start + (size_t)t + 1]];
                scored++;
            }
        }
    }
    free(text);
    free(ids);
    free(logits);
    kiln_llm_free(m);
    *scored_out = scored;
    return scored ? exp(nll / (double)scored) : NAN;
}

static void test_heldout_perplexity(void) {
    size_t scored_f16 = 0, scored_q8 = 0;
    double want = card_real("evaluation", "heldout_ppl");
    double unigram = card_real("evaluation", "unigram_ppl");
    double f16 = perplexity(MODELS "/fortune-llama-f16.gguf", &scored_f16);
    double q8 = perplexity(MODELS "/fortune-llama-q8_0.gguf", &scored_q8);
    fprintf(stderr, "  perplexity: F16 %.4f, Q8_0 %.4f, PyTorch %.4f, unigram %.4f over %zu tokens\n",
            f16, q8, want, unigram, scored_f16);
    CHECK_EQ_INT(scored_f16, (long long)card_real("evaluation", "scored_tokens"));
    CHECK(fabs(f16 - want) <= 0.01 * want);
    CHECK(fabs(q8 - f16) <= 0.03 * f16);
    /* Far below a unigram model of the same tokens. */
    CHECK(f16 < 0.5 * unigram);
}

int main(void) {
    json_error_t err;
    card = json_load_file(MODELS "/default-model.json", 0, &err);
    if (!card) {
        fprintf(stderr, "cannot read default-model.json: %s\n", err.text);
        return 1;
    }
    RUN(test_tokenizer_and_greedy_continuation);
    RUN(test_heldout_perplexity);
    json_decref(card);
    return TEST_REPORT();
}
