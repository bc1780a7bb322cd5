/* tests/unit/test_llm_load.c - loading text models that are wrong in one
 * way each (missing tensor, wrong shape, unsupported type, inconsistent or
 * missing hyperparameters, unknown architecture, bad config.json), each
 * with its status and a message naming the culprit; and what loads: the
 * capabilities read from the files, vocabulary-only loading, parameters. */
#include <stdlib.h>

#include "kiln/kiln.h"
#include "llm_tiny.h"
#include "test.h"

#ifndef KILN_TEST_TMP
#define KILN_TEST_TMP "."
#endif

#define PATH KILN_TEST_TMP "/load_case.gguf"

/* Write the tiny model of `c` after `edit` changed its tensor list, then
 * load it: returns the status, the message in kiln_last_error(). */
static kiln_status load_edited(struct tiny_cfg c, void (*edit)(struct tiny_list *ls),
                               kiln_status (*meta)(struct kiln_gguf_writer *w, void *ctx)) {
    struct tiny_model tm;
    tiny_build(&tm, c);
    struct tiny_list ls = {.n = 0};
    tiny_gguf_tensors(&tm, &ls);
    if (edit) edit(&ls);
    kiln_status st = tiny_write_gguf_list(&tm, &ls, KILN_DTYPE_F32, PATH, meta, NULL);
    tiny_list_free(&ls);
    tiny_free(&tm);
    if (st != KILN_OK) {
        fprintf(stderr, "  cannot write the case: %s\n", kiln_last_error());
        return KILN_ERR_INTERNAL;
    }
    kiln_llm_params p = kiln_llm_default_params();
    p.n_threads = 1;
    kiln_llm *m = NULL;
    st = kiln_llm_load(PATH, p, &m);
    if (st != KILN_OK) CHECK(m == NULL);
    kiln_llm_free(m);
    return st;
}

static void drop_ffn_down(struct tiny_list *ls) { tiny_remove(ls, "blk.1.ffn_down.weight"); }

static void wrong_k_shape(struct tiny_list *ls) {
    struct tiny_tensor *t = tiny_find(ls, "blk.0.attn_k.weight");
    t->shape[0] /= 2; /* half the rows: the data shrinks with the shape */
}

static void i32_wo(struct tiny_list *ls) { tiny_find(ls, "blk.0.attn_output.weight")->as_i32 = true; }

static void drop_q_bias(struct tiny_list *ls) { tiny_remove(ls, "blk.0.attn_q.bias"); }

static void drop_output(struct tiny_list *ls) { tiny_remove(ls, "output.weight"); }

static void drop_qkv(struct tiny_list *ls) { tiny_remove(ls, "blk.1.attn_qkv.weight"); }

static void test_malformed_tensors(void) {
    struct tiny_cfg c = tiny_cfg_default(KILN_ARCH_LLAMA);
    CHECK_EQ_INT(load_edited(c, drop_ffn_down, NULL), KILN_ERR_FORMAT);
    CHECK_EQ_STR(kiln_last_error(), "missing tensor 'blk.1.ffn_down.weight'");
    CHECK_EQ_INT(load_edited(c, wrong_k_shape, NULL), KILN_ERR_FORMAT);
    CHECK_EQ_STR(kiln_last_error(),
                 "tensor 'blk.0.attn_k.weight' has shape [16, 64], expected [32, 64] from the hyperparameters");
    CHECK_EQ_INT(load_edited(c, i32_wo, NULL), KILN_ERR_UNSUPPORTED);
    CHECK_EQ_STR(kiln_last_error(), "tensor 'blk.0.attn_output.weight' has type I32, which kiln cannot use as weights");
    /* a model without output.weight ties its LM head to the embedding */
    CHECK_EQ_INT(load_edited(c, drop_output, NULL), KILN_OK);

    struct tiny_cfg q = tiny_cfg_default(KILN_ARCH_QWEN2);
    CHECK_EQ_INT(load_edited(q, drop_q_bias, NULL), KILN_ERR_FORMAT);
    CHECK_EQ_STR(kiln_last_error(), "missing tensor 'blk.0.attn_q.bias'");
    struct tiny_cfg p3 = tiny_cfg_default(KILN_ARCH_PHI3);
    CHECK_EQ_INT(load_edited(p3, drop_qkv, NULL), KILN_ERR_FORMAT);
    CHECK_EQ_STR(kiln_last_error(), "missing tensor 'blk.1.attn_qkv.weight'");
}

static kiln_status yarn(struct kiln_gguf_writer *w, void *ctx) {
    (void)ctx;
    return kiln__gguf_writer_kv_str(w, "llama.rope.scaling.type", "yarn");
}

static void test_malformed_hyperparameters(void) {
    struct tiny_cfg c = tiny_cfg_default(KILN_ARCH_LLAMA);
    c.n_head_kv = 3;
    CHECK_EQ_INT(load_edited(c, NULL, NULL), KILN_ERR_FORMAT);
    CHECK_EQ_STR(kiln_last_error(),
                 "gguf: inconsistent hyperparameters: 4 heads are not a multiple of 3 key/value heads");
    c = tiny_cfg_default(KILN_ARCH_LLAMA);
    c.n_head = 5;
    CHECK_EQ_INT(load_edited(c, NULL, NULL), KILN_ERR_FORMAT);
    CHECK_EQ_STR(kiln_last_error(), "gguf: inconsistent hyperparameters: width 64 is not a multiple of 5 heads");
    c = tiny_cfg_default(KILN_ARCH_LLAMA);
    c.omit_key = "block_count";
    CHECK_EQ_INT(load_edited(c, NULL, NULL), KILN_ERR_FORMAT);
    CHECK_EQ_STR(kiln_last_error(), "gguf: missing hyperparameter 'llama.block_count'");
    c = tiny_cfg_default(KILN_ARCH_LLAMA);
    c.n_rot = 18; /* more than the head size of 16 */
    CHECK_EQ_INT(load_edited(c, NULL, NULL), KILN_ERR_FORMAT);
    CHECK_CONTAINS(kiln_last_error(), "18 rotary dimensions for heads of 16");
    c = tiny_cfg_default(KILN_ARCH_LLAMA);
    CHECK_EQ_INT(load_edited(c, NULL, yarn), KILN_ERR_UNSUPPORTED);
    CHECK_EQ_STR(kiln_last_error(), "gguf: rope scaling type 'yarn' is not supported");
    /* defaults: a file without rope base, context or epsilon still loads */
    const char *optional[] = {"rope.freq_base", "context_length", "attention.layer_norm_rms_epsilon",
                              "attention.head_count_kv", "rope.dimension_count"};
    for (size_t i = 0; i < sizeof optional / sizeof optional[0]; i++) {
        c = tiny_cfg_default(KILN_ARCH_LLAMA);
        c.n_head_kv = 4; /* what an absent head_count_kv means */
        c.omit_key = optional[i];
        CHECK_EQ_INT(load_edited(c, NULL, NULL), KILN_OK);
    }
    c = tiny_cfg_default(KILN_ARCH_LLAMA);
    c.gguf_arch = "gpt2";
    CHECK_EQ_INT(load_edited(c, NULL, NULL), KILN_ERR_UNSUPPORTED);
    CHECK_CONTAINS(kiln_last_error(), "architecture 'gpt2' is not a text model kiln runs");
}

/* config.json text replaced in a written HF folder. */
static kiln_status load_hf_with_config(const char *config) {
    struct tiny_model tm;
    tiny_build(&tm, tiny_cfg_default(KILN_ARCH_LLAMA));
    const char *dir = KILN_TEST_TMP "/load_hf";
    kiln_status st = tiny_write_hf(&tm, dir);
    tiny_free(&tm);
    if (st != KILN_OK) return KILN_ERR_INTERNAL;
    FILE *f = fopen(KILN_TEST_TMP "/load_hf/config.json", "w");
    if (!f) return KILN_ERR_INTERNAL;
    fputs(config, f);
    fclose(f);
    kiln_llm *m = NULL;
    st = kiln_llm_load(dir, kiln_llm_default_params(), &m);
    kiln_llm_free(m);
    return st;
}

static void test_malformed_config_json(void) {
    CHECK_EQ_INT(load_hf_with_config("{\"model_type\": \"llama\", \"num_hidden_layers\": 2, "
                                     "\"intermediate_size\": 96, \"num_attention_heads\": 4}"),
                 KILN_ERR_FORMAT);
    CHECK_EQ_STR(kiln_last_error(), "config.json: missing hyperparameter 'hidden_size'");
    CHECK_EQ_INT(load_hf_with_config("{\"model_type\": \"llama\", \"hidden_size\": \"64\", \"num_hidden_layers\": 2, "
                                     "\"intermediate_size\": 96, \"num_attention_heads\": 4}"),
                 KILN_ERR_FORMAT);
    CHECK_CONTAINS(kiln_last_error(), "'hidden_size' is a string, expected an integer");
    const char *base = "{\"model_type\": \"llama\", \"hidden_size\": 64, \"num_hidden_layers\": 2, "
                       "\"intermediate_size\": 96, \"num_attention_heads\": 4, \"num_key_value_heads\": 2";
    char buf[512];
    snprintf(buf, sizeof buf, "%s, \"rope_scaling\": {\"rope_type\": \"yarn\", \"factor\": 4.0}}", base);
    CHECK_EQ_INT(load_hf_with_config(buf), KILN_ERR_UNSUPPORTED);
    CHECK_EQ_STR(kiln_last_error(), "config.json: rope scaling type 'yarn' is not supported");
    snprintf(buf, sizeof buf, "%s, \"hidden_act\": \"gelu\"}", base);
    CHECK_EQ_INT(load_hf_with_config(buf), KILN_ERR_UNSUPPORTED);
    CHECK_EQ_STR(kiln_last_error(), "config.json: hidden_act 'gelu' is not supported (this family runs 'silu')");
    snprintf(buf, sizeof buf, "%s, \"num_hidden_layers\": 3}", base);
    CHECK_EQ_INT(load_hf_with_config(buf), KILN_ERR_FORMAT); /* duplicate key */
    snprintf(buf, sizeof buf, "%s}", base);
    CHECK_EQ_INT(load_hf_with_config(buf), KILN_OK);
    /* three blocks claimed, two stored */
    snprintf(buf, sizeof buf, "{\"model_type\": \"llama\", \"hidden_size\": 64, \"num_hidden_layers\": 3, "
                              "\"intermediate_size\": 96, \"num_attention_heads\": 4, \"num_key_value_heads\": 2}");
    CHECK_EQ_INT(load_hf_with_config(buf), KILN_ERR_FORMAT);
    CHECK_EQ_STR(kiln_last_error(), "missing tensor 'model.layers.2.input_layernorm.weight'");
    /* 2 key/value heads claimed as 4: k_proj has the wrong shape */
    snprintf(buf, sizeof buf, "{\"model_type\": \"llama\", \"hidden_size\": 64, \"num_hidden_layers\": 2, "
                              "\"intermediate_size\": 96, \"num_attention_heads\": 4}");
    CHECK_EQ_INT(load_hf_with_config(buf), KILN_ERR_FORMAT);
    CHECK_EQ_STR(kiln_last_error(), "tensor 'model.layers.0.self_attn.k_proj.weight' has shape [32, 64], "
                                    "expected [64, 64] from the hyperparameters");
    /* tie_word_embeddings false and no lm_head.weight */
    struct tiny_model tm;
    struct tiny_cfg c = tiny_cfg_default(KILN_ARCH_LLAMA);
    c.tied = true;
    tiny_build(&tm, c);
    REQUIRE(tiny_write_hf(&tm, KILN_TEST_TMP "/load_hf_tied") == KILN_OK);
    tiny_free(&tm);
    kiln_llm *m = NULL;
    CHECK_EQ_INT(kiln_llm_load(KILN_TEST_TMP "/load_hf_tied", kiln_llm_default_params(), &m), KILN_OK);
    kiln_llm_free(m);
    m = NULL;
    FILE *f = fopen(KILN_TEST_TMP "/load_hf_tied/config.json", "w");
    REQUIRE(f);
    fprintf(f, "%s}", base);
    fclose(f);
    CHECK_EQ_INT(kiln_llm_load(KILN_TEST_TMP "/load_hf_tied", kiln_llm_default_params(), &m), KILN_ERR_FORMAT);
    CHECK_EQ_STR(kiln_last_error(), "missing tensor 'lm_head.weight'");
}

static kiln_status chat_template(struct kiln_gguf_writer *w, void *ctx) {
    (void)ctx;
    kiln_status st = kiln__gguf_writer_kv_str(w, "tokenizer.chat_template", "{{ messages }}");
    if (st == KILN_OK) st = kiln__gguf_writer_kv_u32(w, "tokenizer.ggml.eot_token_id", 256);
    return st;
}

static void test_caps_vocab_only_params(void) {
    struct tiny_cfg c = tiny_cfg_default(KILN_ARCH_LLAMA);
    CHECK_EQ_INT(load_edited(c, NULL, chat_template), KILN_OK);
    kiln_llm *m = NULL;
    REQUIRE(kiln_llm_load(PATH, kiln_llm_default_params(), &m) == KILN_OK);
    kiln_text_caps caps;
    REQUIRE(kiln_llm_caps(m, &caps) == KILN_OK);
    CHECK_EQ_STR(caps.chat_template, "{{ messages }}");
    CHECK_EQ_INT(caps.n_eos, 2);
    CHECK_EQ_INT(caps.eos_ids[0], TINY_EOS);
    CHECK_EQ_INT(caps.eos_ids[1], 256);
    CHECK_EQ_INT(kiln_llm_token_bos(m), TINY_EOS);
    CHECK(kiln_llm_weight_bytes(m) > 0);
    CHECK_EQ_INT(kiln_llm_caps(m, NULL), KILN_ERR_INVALID_ARG);
    kiln_llm_free(m);

    kiln_llm_params p = kiln_llm_default_params();
    p.vocab_only = true;
    m = NULL;
    REQUIRE(kiln_llm_load(PATH, p, &m) == KILN_OK);
    size_t n = 0;
    int32_t ids[8];
    CHECK_EQ_INT(kiln_llm_tokenize(m, "hello", 5, false, false, ids, 8, &n), KILN_OK);
    CHECK_EQ_INT(n, 3);
    CHECK_EQ_INT(kiln_llm_eval(m, ids, 1, 0, KILN_LOGITS_NONE, NULL), KILN_ERR_UNSUPPORTED);
    kiln_generate_params gp = kiln_generate_default_params();
    gp.prompt = "hi";
    CHECK_EQ_INT(kiln_llm_generate(m, &gp, NULL), KILN_ERR_UNSUPPORTED);
    kiln_llm_free(m);

    p = kiln_llm_default_params();
    p.n_threads = -1;
    m = NULL;
    CHECK_EQ_INT(kiln_llm_load(PATH, p, &m), KILN_ERR_INVALID_ARG);
    p = kiln_llm_default_params();
    p.kv_type = (kiln_kv_type)7;
    CHECK_EQ_INT(kiln_llm_load(PATH, p, &m), KILN_ERR_INVALID_ARG);
    CHECK_EQ_INT(kiln_llm_load(NULL, kiln_llm_default_params(), &m), KILN_ERR_INVALID_ARG);
    CHECK_EQ_INT(kiln_llm_load(PATH, kiln_llm_default_params(), NULL), KILN_ERR_INVALID_ARG);
    CHECK(m == NULL);
    /* the reference GGUF of the format tests is no text model */
    CHECK_EQ_INT(kiln_llm_load(KILN_SOURCE_DIR "/tests/data/gguf/reference.gguf", kiln_llm_default_params(), &m),
                 KILN_ERR_UNSUPPORTED);
    CHECK_EQ_INT(kiln_llm_arch(NULL), KILN_ARCH_UNKNOWN);
    CHECK_EQ_INT(kiln_llm_n_vocab(NULL), 0);
}

/* A progress callback that cancels halfway. */
static int cancel_half(uint64_t done, uint64_t total, void *user) {
    int *calls = user;
    (*calls)++;
    return done * 2 >= total && done > 0;
}

static void test_load_progress_cancel(void) {
    CHECK_EQ_INT(load_edited(tiny_cfg_default(KILN_ARCH_PHI2), NULL, NULL), KILN_OK);
    kiln_llm_params p = kiln_llm_default_params();
    int calls = 0;
    p.progress = cancel_half;
    p.progress_user = &calls;
    kiln_llm *m = NULL;
    CHECK_EQ_INT(kiln_llm_load(PATH, p, &m), KILN_ERR_CANCELLED);
    CHECK(m == NULL);
    CHECK(calls >= 2);
}

int main(void) {
    RUN(test_malformed_tensors);
    RUN(test_malformed_hyperparameters);
    RUN(test_malformed_config_json);
    RUN(test_caps_vocab_only_params);
    RUN(test_load_progress_cancel);
    return TEST_REPORT();
}
