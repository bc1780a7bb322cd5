/* tests/unit/test_tokenizer_hf.c - vocabularies from tokenizer.json against
 * goldens made by Hugging Face tokenizers (tools/make_tokenizer_hf_goldens.py):
 * for each style of tests/data/tokenizer_hf/ (Llama 2 with its legacy
 * normalizer and with Metaspace "first", Metaspace with split, GPT-2,
 * Llama 3, Qwen2, DeepSeek LLM, and a handmade vocabulary where merging by
 * rank and by piece score differ), every case must give the reference's ids
 * with and without special tokens, and decode to the reference's text with
 * and without special tokens. */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kiln/status.h"
#include "test.h"
#include "text/tokenizer.h"
#include "text/vocab.h"
#include "text/vocab_hf.h"

#define DATA_DIR KILN_SOURCE_DIR "/tests/data/tokenizer_hf/"

/* The goldens (cases.json), loaded once. */
static json_t *goldens;

/* Whether the ids equal the JSON array `want`. */
static bool ids_equal(const int32_t *ids, size_t n, const json_t *want) {
    if (n != json_array_size(want)) return false;
    for (size_t i = 0; i < n; i++)
        if (ids[i] != json_integer_value(json_array_get(want, i))) return false;
    return true;
}

static void show(const char *style, const char *what, const char *text, const int32_t *ids, size_t n,
                 const json_t *want) {
    fprintf(stderr, "  %s %s \"%s\"\n    want:", style, what, text);
    for (size_t i = 0; i < json_array_size(want); i++)
        fprintf(stderr, " %lld", (long long)json_integer_value(json_array_get(want, i)));
    fprintf(stderr, "\n    got: ");
    for (size_t i = 0; i < n; i++) fprintf(stderr, " %d", ids[i]);
    fputc('\n', stderr);
}

/* The vocabulary of a style folder; NULL on failure (reported). */
static kiln_vocab *load_style(const char *style) {
    char tok[512], cfg[512];
    snprintf(tok, sizeof tok, DATA_DIR "%s/tokenizer.json", style);
    snprintf(cfg, sizeof cfg, DATA_DIR "%s/tokenizer_config.json", style);
    kiln_vocab *v;
    if (kiln__vocab_load_hf(tok, cfg, &v) != KILN_OK) {
        fprintf(stderr, "  %s: %s\n", style, kiln_last_error());
        return NULL;
    }
    return v;
}

/* Tokenize with or without special tokens and compare with `want`; 1 when
 * they differ. */
static int check_ids(const char *style, const kiln_vocab *v, const char *text, size_t len, bool add_special,
                     const json_t *want, int32_t *ids, size_t cap, size_t *n) {
    kiln_status st = kiln__tokenize(v, text, len, add_special, true, ids, cap, n);
    if (st != KILN_OK || !ids_equal(ids, *n, want)) {
        show(style, add_special ? "with specials" : "plain", text, ids, *n, want);
        return 1;
    }
    return 0;
}

/* Detokenize and compare with `want` (a JSON string); 1 when they differ. */
static int check_decode(const char *style, const kiln_vocab *v, const int32_t *ids, size_t n, unsigned flags,
                        const json_t *want, const char *text) {
    char out[1024];
    size_t len;
    kiln_status st = kiln__detokenize(v, ids, n, flags, out, sizeof out, &len);
    if (st != KILN_OK || len != json_string_length(want) || memcmp(out, json_string_value(want), len) != 0) {
        fprintf(stderr, "  %s decode%s of \"%s\": got \"%.*s\", want \"%s\"\n", style,
                (flags & KILN_DETOK_SPECIAL) ? " with specials" : "", text, (int)(st == KILN_OK ? len : 0), out,
                json_string_value(want));
        return 1;
    }
    return 0;
}

static void run_style(const char *style) {
    const json_t *g = json_object_get(goldens, style);
    REQUIRE(g != NULL);
    kiln_vocab *v = load_style(style);
    REQUIRE(v != NULL);
    /* Special ids as the reference reports them for the config's names. */
    const json_t *sid = json_object_get(g, "ids");
    const struct {
        const char *key;
        int32_t got;
    } specials[] = {{"bos_token", v->bos_id}, {"eos_token", v->eos_id}, {"pad_token", v->pad_id},
                    {"unk_token", v->unk_id}};
    for (size_t i = 0; i < sizeof specials / sizeof specials[0]; i++) {
        const json_t *want = json_object_get(sid, specials[i].key);
        CHECK_EQ_INT(specials[i].got, json_is_integer(want) ? json_integer_value(want) : -1);
    }
    const json_t *cases = json_object_get(g, "cases");
    int bad = 0, n_cases = (int)json_array_size(cases);
    unsigned strip = v->add_space_prefix ? KILN_DETOK_STRIP_SPACE : 0;
    for (int i = 0; i < n_cases; i++) {
        const json_t *c = json_array_get(cases, (size_t)i);
        const json_t *text_j = json_object_get(c, "text");
        const char *text = json_string_value(text_j);
        size_t len = json_string_length(text_j), n, n_plain;
        int32_t ids[512], plain[512];
        int b = check_ids(style, v, text, len, true, json_object_get(c, "ids"), ids, 512, &n);
        b |= check_ids(style, v, text, len, false, json_object_get(c, "ids_plain"), plain, 512, &n_plain);
        if (!b) {
            b |= check_decode(style, v, ids, n, strip, json_object_get(c, "decoded"), text);
            b |= check_decode(style, v, ids, n, strip | KILN_DETOK_SPECIAL, json_object_get(c, "decoded_special"),
                              text);
        }
        bad += b;
    }
    fprintf(stderr, "  %s: %d/%d cases exact\n", style, n_cases - bad, n_cases);
    CHECK_EQ_INT(bad, 0);
    CHECK(n_cases >= 40);
    kiln__vocab_free(v);
}

static void test_llama2(void) { run_style("llama2"); }
static void test_llama2_metaspace(void) { run_style("llama2-metaspace"); }
static void test_metaspace_split(void) { run_style("metaspace-split"); }
static void test_gpt2(void) { run_style("gpt2"); }
static void test_llama3(void) { run_style("llama3"); }
static void test_qwen2(void) { run_style("qwen2"); }
static void test_deepseek_llm(void) { run_style("deepseek-llm"); }
static void test_spm_rank(void) { run_style("spm-rank"); }

/* The styles map onto the kinds they should. */
static void test_kinds(void) {
    const struct {
        const char *style;
        kiln_vocab_model model;
        kiln_vocab_pre pre;
        kiln_spm_prefix prefix;
        bool split;
    } want[] = {
        {"llama2", KILN_VOCAB_SPM, KILN_PRE_DEFAULT, KILN_SPM_PREFIX_EACH, false},
        {"llama2-metaspace", KILN_VOCAB_SPM, KILN_PRE_DEFAULT, KILN_SPM_PREFIX_FIRST, false},
        {"metaspace-split", KILN_VOCAB_SPM, KILN_PRE_DEFAULT, KILN_SPM_PREFIX_METASPACE, true},
        {"gpt2", KILN_VOCAB_BPE, KILN_PRE_GPT2, KILN_SPM_PREFIX_EACH, false},
        {"llama3", KILN_VOCAB_BPE, KILN_PRE_LLAMA3, KILN_SPM_PREFIX_EACH, false},
        {"qwen2", KILN_VOCAB_BPE, KILN_PRE_QWEN2, KILN_SPM_PREFIX_EACH, false},
        {"deepseek-llm", KILN_VOCAB_BPE, KILN_PRE_DEEPSEEK_LLM, KILN_SPM_PREFIX_EACH, false},
        {"spm-rank", KILN_VOCAB_SPM, KILN_PRE_DEFAULT, KILN_SPM_PREFIX_EACH, false},
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        kiln_vocab *v = load_style(want[i].style);
        CHECK(v != NULL);
        if (!v) continue;
        CHECK_EQ_INT(v->model, want[i].model);
        CHECK_EQ_INT(v->pre, want[i].pre);
        CHECK_EQ_INT(v->spm_prefix, want[i].prefix);
        CHECK_EQ_INT(v->spm_split, want[i].split);
        CHECK_EQ_INT(v->merges_ranked, want[i].model == KILN_VOCAB_SPM);
        kiln__vocab_free(v);
    }
}

/* Without tokenizer_config.json the post-processor alone decides: Llama 2
 * still adds <s>, and knows no eos. */
static void test_without_config(void) {
    kiln_vocab *v;
    REQUIRE(kiln__vocab_load_hf(DATA_DIR "llama2/tokenizer.json", NULL, &v) == KILN_OK);
    const json_t *ids = json_object_get(json_object_get(goldens, "llama2"), "ids");
    CHECK_EQ_INT(v->bos_id, json_integer_value(json_object_get(ids, "bos_token")));
    CHECK(v->add_bos);
    CHECK_EQ_INT(v->eos_id, -1);
    CHECK(!v->add_eos);
    kiln__vocab_free(v);
}

int main(void) {
    json_error_t err;
    goldens = json_load_file(DATA_DIR "cases.json", 0, &err);
    if (!goldens) {
        fprintf(stderr, "cases.json: %s (line %d)\n", err.text, err.line);
        return 1;
    }
    RUN(test_llama2);
    RUN(test_llama2_metaspace);
    RUN(test_metaspace_split);
    RUN(test_gpt2);
    RUN(test_llama3);
    RUN(test_qwen2);
    RUN(test_deepseek_llm);
    RUN(test_spm_rank);
    RUN(test_kinds);
    RUN(test_without_config);
    json_decref(goldens);
    return TEST_REPORT();
}
