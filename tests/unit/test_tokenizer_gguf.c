/* tests/unit/test_tokenizer_gguf.c - vocabularies from GGUF metadata:
 * llama.cpp's defaults for absent keys, explicit flags and ids, and every
 * rejection (missing or mistyped keys, unsupported models and
 * pre-tokenizers), on small files written with the GGUF writer. */
#include <stdint.h>
#include <string.h>

#include "formats/gguf.h"
#include "kiln/status.h"
#include "test.h"
#include "text/tokenizer.h"
#include "text/vocab_gguf.h"

#define PATH KILN_TEST_TMP "/tokenizer_vocab.gguf"
#define K(name) "tokenizer.ggml." name

/* The tokens of the small SentencePiece vocabulary. */
static const char *const spm_tokens[] = {"<unk>", "<s>", "</s>", ("\xE2\x96\x81" "a"), "a", "\xE2\x96\x81"};
#define SPM_N 6

/* The tokens and merge of the small byte-level vocabulary. */
static const char *const bpe_tokens[] = {"a", "b", "ab", "<|x|>"};
static const char *const bpe_merges[] = {"a b"};

/* Start a writer with tokenizer.ggml.model = model (none when NULL). */
static struct kiln_gguf_writer *start(const char *model) {
    struct kiln_gguf_writer *w;
    if (kiln__gguf_writer_new(&w) != KILN_OK) return NULL;
    if (model && kiln__gguf_writer_kv_str(w, K("model"), model) != KILN_OK) {
        kiln__gguf_writer_free(w);
        return NULL;
    }
    return w;
}

/* Write the file and load it as a vocabulary; returns the loader's status. */
static kiln_status finish(struct kiln_gguf_writer *w, kiln_vocab **v) {
    *v = NULL;
    kiln_status st = kiln__gguf_writer_write(w, PATH);
    kiln__gguf_writer_free(w);
    if (st != KILN_OK) return st;
    return kiln__vocab_load_gguf(PATH, v);
}

static void test_spm_defaults(void) {
    struct kiln_gguf_writer *w = start("llama");
    REQUIRE(w != NULL);
    CHECK_EQ_INT(kiln__gguf_writer_kv_str_arr(w, K("tokens"), spm_tokens, SPM_N), KILN_OK);
    kiln_vocab *v;
    REQUIRE(finish(w, &v) == KILN_OK);
    /* llama.cpp's SentencePiece defaults. */
    CHECK_EQ_INT(v->model, KILN_VOCAB_SPM);
    CHECK_EQ_INT(v->pre, KILN_PRE_DEFAULT);
    CHECK_EQ_INT(v->unk_id, 0);
    CHECK_EQ_INT(v->bos_id, 1);
    CHECK_EQ_INT(v->eos_id, 2);
    CHECK_EQ_INT(v->pad_id, -1);
    CHECK_EQ_INT(v->eot_id, -1);
    CHECK(v->add_bos && !v->add_eos && v->add_space_prefix);
    /* Without types every token is normal; "▁" + "a" merges to "▁a". */
    int32_t ids[4];
    size_t n;
    CHECK_EQ_INT(kiln__tokenize(v, "a", 1, true, false, ids, 4, &n), KILN_OK);
    CHECK(n == 2 && ids[0] == 1 && ids[1] == 3);
    kiln__vocab_free(v);
}

static void test_spm_explicit_keys(void) {
    struct kiln_gguf_writer *w = start("llama");
    REQUIRE(w != NULL);
    static const float scores[SPM_N] = {0, 0, 0, -1, -2, -3};
    static const int32_t types[SPM_N] = {2, 3, 3, 1, 1, 1};
    CHECK_EQ_INT(kiln__gguf_writer_kv_str_arr(w, K("tokens"), spm_tokens, SPM_N), KILN_OK);
    CHECK_EQ_INT(kiln__gguf_writer_kv_arr(w, K("scores"), KILN_GGUF_F32, scores, SPM_N), KILN_OK);
    CHECK_EQ_INT(kiln__gguf_writer_kv_arr(w, K("token_type"), KILN_GGUF_I32, types, SPM_N), KILN_OK);
    CHECK_EQ_INT(kiln__gguf_writer_kv_u32(w, K("bos_token_id"), 2), KILN_OK);
    CHECK_EQ_INT(kiln__gguf_writer_kv_u32(w, K("eos_token_id"), 1), KILN_OK);
    CHECK_EQ_INT(kiln__gguf_writer_kv_u32(w, K("padding_token_id"), 0), KILN_OK);
    CHECK_EQ_INT(kiln__gguf_writer_kv_u32(w, K("eot_token_id"), 2), KILN_OK);
    CHECK_EQ_INT(kiln__gguf_writer_kv_u32(w, K("unknown_token_id"), 99), KILN_OK); /* not a token */
    CHECK_EQ_INT(kiln__gguf_writer_kv_bool(w, K("add_bos_token"), false), KILN_OK);
    CHECK_EQ_INT(kiln__gguf_writer_kv_bool(w, K("add_eos_token"), true), KILN_OK);
    CHECK_EQ_INT(kiln__gguf_writer_kv_bool(w, K("add_space_prefix"), false), KILN_OK);
    kiln_vocab *v;
    REQUIRE(finish(w, &v) == KILN_OK);
    CHECK_EQ_INT(v->bos_id, 2);
    CHECK_EQ_INT(v->eos_id, 1);
    CHECK_EQ_INT(v->pad_id, 0);
    CHECK_EQ_INT(v->eot_id, 2);
    CHECK_EQ_INT(v->unk_id, 0); /* 99 ignored (with a warning): the default stays */
    CHECK(!v->add_bos && v->add_eos && !v->add_space_prefix);
    CHECK_EQ_INT(v->type[1], KILN_TOKEN_CONTROL);
    CHECK(v->score[5] == -3.0f);
    /* No prefix now; EOS (id 1) last. */
    int32_t ids[4];
    size_t n;
    CHECK_EQ_INT(kiln__tokenize(v, "a", 1, true, false, ids, 4, &n), KILN_OK);
    CHECK(n == 2 && ids[0] == 4 && ids[1] == 1);
    kiln__vocab_free(v);
}

/* A byte-level file with the given pre-tokenizer name (none when NULL). */
static kiln_status bpe_file(const char *pre, bool merges, kiln_vocab **v) {
    struct kiln_gguf_writer *w = start("gpt2");
    if (!w) return KILN_ERR_OUT_OF_MEMORY;
    static const int32_t types[4] = {1, 1, 1, 3};
    kiln_status st = kiln__gguf_writer_kv_str_arr(w, K("tokens"), bpe_tokens, 4);
    if (st == KILN_OK) st = kiln__gguf_writer_kv_arr(w, K("token_type"), KILN_GGUF_I32, types, 4);
    if (st == KILN_OK && merges) st = kiln__gguf_writer_kv_str_arr(w, K("merges"), bpe_merges, 1);
    if (st == KILN_OK && pre) st = kiln__gguf_writer_kv_str(w, K("pre"), pre);
    if (st != KILN_OK) {
        kiln__gguf_writer_free(w);
        return st;
    }
    return finish(w, v);
}

static void test_bpe_pre_tokenizers_and_defaults(void) {
    static const struct {
        const char *name;
        kiln_vocab_pre pre;
        bool add_bos;
    } cases[] = {{"gpt-2", KILN_PRE_GPT2, false},          {"phi-2", KILN_PRE_GPT2, false},
                 {"llama-bpe", KILN_PRE_LLAMA3, true},     {"llama3", KILN_PRE_LLAMA3, true},
                 {"qwen2", KILN_PRE_QWEN2, false},         {"deepseek-llm", KILN_PRE_DEEPSEEK_LLM, false},
                 {"default", KILN_PRE_GPT2, false},        {NULL, KILN_PRE_GPT2, false}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        kiln_vocab *v;
        kiln_status st = bpe_file(cases[i].name, true, &v);
        CHECK_EQ_INT(st, KILN_OK);
        if (st != KILN_OK) continue;
        CHECK_EQ_INT(v->model, KILN_VOCAB_BPE);
        CHECK_EQ_INT(v->pre, cases[i].pre);
        CHECK_EQ_INT(v->add_bos, cases[i].add_bos);
        CHECK(!v->add_space_prefix && v->bos_id == -1 && v->eos_id == -1 && v->unk_id == -1);
        int32_t ids[4];
        size_t n;
        CHECK_EQ_INT(kiln__tokenize(v, "ab<|x|>", 7, true, true, ids, 4, &n), KILN_OK);
        CHECK(n == 2 && ids[0] == 2 && ids[1] == 3);
        kiln__vocab_free(v);
    }
}

static void test_rejections(void) {
    kiln_vocab *v;
    /* No model key. */
    struct kiln_gguf_writer *w = start(NULL);
    REQUIRE(w != NULL);
    CHECK_EQ_INT(kiln__gguf_writer_kv_str_arr(w, K("tokens"), spm_tokens, SPM_N), KILN_OK);
    CHECK_EQ_INT(finish(w, &v), KILN_ERR_FORMAT);
    CHECK_CONTAINS(kiln_last_error(), "no tokenizer.ggml.model");
    CHECK(v == NULL);

    /* Unsupported model and pre-tokenizer. */
    w = start("bert");
    REQUIRE(w != NULL);
    CHECK_EQ_INT(finish(w, &v), KILN_ERR_UNSUPPORTED);
    CHECK_CONTAINS(kiln_last_error(), "'bert' is not supported");
    CHECK_EQ_INT(bpe_file("tekken", true, &v), KILN_ERR_UNSUPPORTED);
    CHECK_CONTAINS(kiln_last_error(), "pre-tokenizer 'tekken'");

    /* Byte-level BPE needs merges. */
    CHECK_EQ_INT(bpe_file("gpt-2", false, &v), KILN_ERR_FORMAT);
    CHECK_CONTAINS(kiln_last_error(), "without tokenizer.ggml.merges");

    /* No tokens; tokens that are not strings. */
    w = start("llama");
    REQUIRE(w != NULL);
    CHECK_EQ_INT(finish(w, &v), KILN_ERR_FORMAT);
    CHECK_CONTAINS(kiln_last_error(), "no tokenizer.ggml.tokens");
    w = start("llama");
    REQUIRE(w != NULL);
    static const uint32_t numbers[3] = {1, 2, 3};
    CHECK_EQ_INT(kiln__gguf_writer_kv_arr(w, K("tokens"), KILN_GGUF_U32, numbers, 3), KILN_OK);
    CHECK_EQ_INT(finish(w, &v), KILN_ERR_FORMAT);
    CHECK_CONTAINS(kiln_last_error(), "tokenizer.ggml.tokens[0] is not a string");

    /* Scores of the wrong length; a token type out of range; a mistyped id
     * and flag. */
    static const float scores[2] = {0, 0};
    w = start("llama");
    REQUIRE(w != NULL);
    CHECK_EQ_INT(kiln__gguf_writer_kv_str_arr(w, K("tokens"), spm_tokens, SPM_N), KILN_OK);
    CHECK_EQ_INT(kiln__gguf_writer_kv_arr(w, K("scores"), KILN_GGUF_F32, scores, 2), KILN_OK);
    CHECK_EQ_INT(finish(w, &v), KILN_ERR_FORMAT);
    CHECK_CONTAINS(kiln_last_error(), "tokenizer.ggml.scores has 2 entries for 6 tokens");

    static const int32_t types[SPM_N] = {2, 3, 3, 1, 9, 1};
    w = start("llama");
    REQUIRE(w != NULL);
    CHECK_EQ_INT(kiln__gguf_writer_kv_str_arr(w, K("tokens"), spm_tokens, SPM_N), KILN_OK);
    CHECK_EQ_INT(kiln__gguf_writer_kv_arr(w, K("token_type"), KILN_GGUF_I32, types, SPM_N), KILN_OK);
    CHECK_EQ_INT(finish(w, &v), KILN_ERR_FORMAT);
    CHECK_CONTAINS(kiln_last_error(), "tokenizer.ggml.token_type[4] = 9 is not a token type");

    w = start("llama");
    REQUIRE(w != NULL);
    CHECK_EQ_INT(kiln__gguf_writer_kv_str_arr(w, K("tokens"), spm_tokens, SPM_N), KILN_OK);
    CHECK_EQ_INT(kiln__gguf_writer_kv_str(w, K("eos_token_id"), "2"), KILN_OK);
    CHECK_EQ_INT(finish(w, &v), KILN_ERR_FORMAT);
    CHECK_CONTAINS(kiln_last_error(), "eos_token_id");

    w = start("llama");
    REQUIRE(w != NULL);
    CHECK_EQ_INT(kiln__gguf_writer_kv_str_arr(w, K("tokens"), spm_tokens, SPM_N), KILN_OK);
    CHECK_EQ_INT(kiln__gguf_writer_kv_u32(w, K("add_bos_token"), 1), KILN_OK);
    CHECK_EQ_INT(finish(w, &v), KILN_ERR_FORMAT);
    CHECK_CONTAINS(kiln_last_error(), "add_bos_token");

    /* A file that is not there. */
    CHECK(kiln__vocab_load_gguf(KILN_TEST_TMP "/no-such-vocab.gguf", &v) != KILN_OK);
    CHECK(v == NULL);
}

int main(void) {
    RUN(test_spm_defaults);
    RUN(test_spm_explicit_keys);
    RUN(test_bpe_pre_tokenizers_and_defaults);
    RUN(test_rejections);
    return TEST_REPORT();
}
