/* tests/unit/test_weights.c - the uniform tensor view and the `kiln info`
 * report over GGUF files, HF folders, diffusers folders and single files. */
#include <stdlib.h>
#include <sys/stat.h>

#include "formats/gguf.h"
#include "formats/model_report.h"
#include "formats/safetensors.h"
#include "formats/weights.h"
#include "kiln/kiln.h"
#include "test.h"
#include "test_files.h"

#define TMP KILN_TEST_TMP "/weights"

/* A llama GGUF with hyperparameters, a vocabulary and two F32 tensors. */
static void test_gguf_llm(void) {
    mkdir(TMP, 0755);
    static float a[4 * 8], b[8];
    struct kiln_gguf_writer *w;
    REQUIRE(kiln__gguf_writer_new(&w) == KILN_OK);
    const char *tokens[] = {"<unk>", "<s>", "</s>", "a"};
    const uint64_t ne_a[2] = {8, 4}, ne_b[1] = {8};
    CHECK(kiln__gguf_writer_kv_str(w, "general.architecture", "llama") == KILN_OK);
    CHECK(kiln__gguf_writer_kv_u32(w, "llama.block_count", 2) == KILN_OK);
    CHECK(kiln__gguf_writer_kv_u32(w, "llama.embedding_length", 8) == KILN_OK);
    CHECK(kiln__gguf_writer_kv_f32(w, "llama.rope.freq_base", 500000.0f) == KILN_OK);
    CHECK(kiln__gguf_writer_kv_str(w, "tokenizer.ggml.model", "llama") == KILN_OK);
    CHECK(kiln__gguf_writer_kv_str_arr(w, "tokenizer.ggml.tokens", tokens, 4) == KILN_OK);
    CHECK(kiln__gguf_writer_add_tensor(w, "token_embd.weight", KILN_DTYPE_F32, 2, ne_a, a, sizeof a) == KILN_OK);
    CHECK(kiln__gguf_writer_add_tensor(w, "output_norm.weight", KILN_DTYPE_F32, 1, ne_b, b, sizeof b) == KILN_OK);
    REQUIRE(kiln__gguf_writer_write(w, TMP "/llm.gguf") == KILN_OK);
    kiln__gguf_writer_free(w);

    struct kiln_weights *wt;
    REQUIRE(kiln__weights_open(TMP "/llm.gguf", &wt) == KILN_OK);
    CHECK_EQ_INT(wt->n_tensors, 2);
    const struct kiln_tensor *t = kiln__weights_find(wt, "token_embd.weight");
    REQUIRE(t != NULL);
    /* ggml ne {8, 4} is PyTorch shape [4, 8]. */
    CHECK_EQ_INT(t->n_dims, 2);
    CHECK_EQ_INT(t->shape[0], 4);
    CHECK_EQ_INT(t->shape[1], 8);
    CHECK_EQ_INT(t->nbytes, sizeof a);
    CHECK(kiln__weights_find(wt, "missing") == NULL);
    CHECK(kiln__weights_gguf(wt) != NULL);

    json_t *r = kiln__model_report(wt);
    REQUIRE(r != NULL);
    CHECK_EQ_STR(json_string_value(json_object_get(r, "architecture")), "llama");
    CHECK_EQ_STR(json_string_value(json_object_get(r, "worker")), "llm");
    CHECK_EQ_INT(json_integer_value(json_object_get(r, "parameters")), 40);
    json_t *hp = json_object_get(r, "hyperparameters");
    CHECK_EQ_INT(json_integer_value(json_object_get(hp, "block_count")), 2);
    CHECK_NEAR(json_real_value(json_object_get(hp, "rope_freq_base")), 500000.0, 1e-9);
    CHECK_EQ_INT(json_integer_value(json_object_get(json_object_get(r, "tokenizer"), "tokens")), 4);
    CHECK_EQ_INT(json_integer_value(json_object_get(json_object_get(json_object_get(r, "dtypes"), "F32"), "bytes")),
                 sizeof a + sizeof b);
    json_decref(r);
    kiln__weights_free(wt);
}

/* Write F32 tensors named names[i] with the given 1-D sizes. */
static void write_st(const char *path, const char *const *names, const int64_t *sizes, size_t n) {
    static float zeros[1024];
    struct kiln_st_write_tensor t[8];
    for (size_t i = 0; i < n; i++)
        t[i] = (struct kiln_st_write_tensor){names[i], KILN_DTYPE_F32, 1, &sizes[i], zeros,
                                             (size_t)sizes[i] * sizeof(float)};
    kiln__safetensors_write(path, t, n, NULL, 0);
}

static void test_hf_folder(void) {
    mkdir(TMP, 0755);
    mkdir(TMP "/qwen", 0755);
    test_write_text(TMP "/qwen/config.json",
               "{\"model_type\": \"qwen2\", \"hidden_size\": 16, \"num_hidden_layers\": 3,"
               " \"num_attention_heads\": 4, \"num_key_value_heads\": 2, \"rope_theta\": 1000000.0}");
    const char *names[] = {"model.norm.weight", "lm_head.weight"};
    const int64_t sizes[] = {16, 64};
    write_st(TMP "/qwen/model.safetensors", names, sizes, 2);
    struct kiln_weights *wt;
    kiln_status st = kiln__weights_open(TMP "/qwen", &wt);
    if (st != KILN_OK) fprintf(stderr, "  %s\n", kiln_last_error());
    REQUIRE(st == KILN_OK);
    CHECK_EQ_INT(wt->n_tensors, 2);
    CHECK_EQ_INT(kiln__weights_find(wt, "lm_head.weight")->shape[0], 64);
    json_t *r = kiln__model_report(wt);
    CHECK_EQ_STR(json_string_value(json_object_get(r, "format")), "huggingface-folder");
    CHECK_EQ_STR(json_string_value(json_object_get(r, "architecture")), "qwen2");
    json_t *hp = json_object_get(r, "hyperparameters");
    CHECK_EQ_INT(json_integer_value(json_object_get(hp, "head_count_kv")), 2);
    CHECK_EQ_INT(json_integer_value(json_object_get(hp, "block_count")), 3);
    json_decref(r);
    kiln__weights_free(wt);
}

static void test_diffusers_names_are_prefixed(void) {
    mkdir(TMP, 0755);
    mkdir(TMP "/sd", 0755);
    mkdir(TMP "/sd/unet", 0755);
    mkdir(TMP "/sd/vae", 0755);
    mkdir(TMP "/sd/text_encoder", 0755);
    mkdir(TMP "/sd/tokenizer", 0755);
    test_write_text(TMP "/sd/model_index.json",
               "{\"_class_name\": \"StableDiffusionInpaintPipeline\", \"unet\": [\"diffusers\", \"UNet2DConditionModel\"],"
               " \"vae\": [\"diffusers\", \"AutoencoderKL\"], \"text_encoder\": [\"transformers\", \"CLIPTextModel\"],"
               " \"tokenizer\": [\"transformers\", \"CLIPTokenizer\"]}");
    test_write_text(TMP "/sd/unet/config.json", "{\"in_channels\": 9, \"cross_attention_dim\": 768}");
    test_write_text(TMP "/sd/vae/config.json", "{}");
    test_write_text(TMP "/sd/text_encoder/config.json", "{\"hidden_size\": 768}");
    const char *w[] = {"w"};
    const int64_t s4[] = {4};
    write_st(TMP "/sd/unet/diffusion_pytorch_model.safetensors", w, s4, 1);
    write_st(TMP "/sd/vae/diffusion_pytorch_model.safetensors", w, s4, 1);
    write_st(TMP "/sd/text_encoder/model.safetensors", w, s4, 1);
    struct kiln_weights *wt;
    kiln_status st = kiln__weights_open(TMP "/sd", &wt);
    if (st != KILN_OK) fprintf(stderr, "  %s\n", kiln_last_error());
    REQUIRE(st == KILN_OK);
    CHECK_EQ_INT(wt->n_sources, 3);
    CHECK_EQ_INT(wt->n_tensors, 3);
    CHECK(kiln__weights_find(wt, "unet/w") != NULL);
    CHECK(kiln__weights_find(wt, "vae/w") != NULL);
    CHECK(kiln__weights_find(wt, "w") == NULL);
    json_t *r = kiln__model_report(wt);
    CHECK_EQ_STR(json_string_value(json_object_get(r, "variant")), "sd1.5-inpaint");
    CHECK_EQ_STR(json_string_value(json_object_get(r, "architecture")), "stable-diffusion");
    CHECK_EQ_STR(json_string_value(json_object_get(r, "worker")), "image");
    json_decref(r);
    kiln__weights_free(wt);
}

/* A GGUF holding SD tensors (no general.architecture): detected by shapes. */
static void test_gguf_sd_detected_from_tensors(void) {
    mkdir(TMP, 0755);
    static int8_t unet_in[320 * 9 * 3 * 3], k1[320 * 768];
    const uint64_t ne_in[4] = {3, 3, 9, 320}, ne_k1[2] = {768, 320};
    struct kiln_gguf_writer *w;
    REQUIRE(kiln__gguf_writer_new(&w) == KILN_OK);
    CHECK(kiln__gguf_writer_add_tensor(w, "model.diffusion_model.input_blocks.0.0.weight", KILN_DTYPE_I8, 4,
                                       ne_in, unet_in, sizeof unet_in) == KILN_OK);
    CHECK(kiln__gguf_writer_add_tensor(w, "model.diffusion_model.input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight",
                                       KILN_DTYPE_I8, 2, ne_k1, k1, sizeof k1) == KILN_OK);
    REQUIRE(kiln__gguf_writer_write(w, TMP "/sd.gguf") == KILN_OK);
    kiln__gguf_writer_free(w);
    struct kiln_weights *wt;
    REQUIRE(kiln__weights_open(TMP "/sd.gguf", &wt) == KILN_OK);
    CHECK_EQ_INT(wt->path.sd.variant, KILN_VARIANT_SD15_INPAINT);
    CHECK_EQ_INT(wt->path.sd.unet_in_channels, 9);
    kiln__weights_free(wt);
}

static void test_errors_name_the_path(void) {
    struct kiln_weights *wt = (struct kiln_weights *)1;
    CHECK_EQ_INT(kiln__weights_open(TMP "/nothing-here.gguf", &wt), KILN_ERR_NOT_FOUND);
    CHECK(wt == NULL);
    CHECK_CONTAINS(kiln_last_error(), "nothing-here.gguf");
    mkdir(TMP, 0755);
    test_write_text(TMP "/notes.txt", "just some text, not a model");
    CHECK(kiln__weights_open(TMP "/notes.txt", &wt) != KILN_OK);
    CHECK_CONTAINS(kiln_last_error(), "unknown model file format");
    kiln__weights_free(NULL);
}

int main(void) {
    RUN(test_gguf_llm);
    RUN(test_hf_folder);
    RUN(test_diffusers_names_are_prefixed);
    RUN(test_gguf_sd_detected_from_tensors);
    RUN(test_errors_name_the_path);
    return TEST_REPORT();
}
