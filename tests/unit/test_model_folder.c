/* tests/unit/test_model_folder.c - model path detection (GGUF, safetensors,
 * pickles refused, Hugging Face LLM folders, diffusers folders), the JSON
 * getters, and image variant detection from tensor names and shapes.
 *
 * Folders are built in KILN_TEST_TMP with tiny files; tensor names and
 * shapes follow the real checkpoints' layouts (see src/formats/sd_detect.c). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/error.h"
#include "formats/json_util.h"
#include "formats/model_folder.h"
#include "formats/safetensors.h"
#include "formats/sd_detect.h"
#include "test.h"
#include "test_files.h"

#define TMP KILN_TEST_TMP "/model_folder"

/* ---- a fake lookup: a list of names and shapes ------------------------- */

struct fake_tensor {
    const char *name;
    int n_dims;
    int64_t shape[4];
};

struct fake_set {
    const struct fake_tensor *t;
    size_t n;
};

static bool fake_find(void *ctx, const char *name, int64_t shape[KILN_LOOKUP_MAX_DIMS], int *n_dims) {
    const struct fake_set *fs = ctx;
    for (size_t i = 0; i < fs->n; i++)
        if (strcmp(fs->t[i].name, name) == 0) {
            *n_dims = fs->t[i].n_dims;
            for (int d = 0; d < fs->t[i].n_dims; d++) shape[d] = fs->t[i].shape[d];
            return true;
        }
    return false;
}

static kiln_variant detect(const struct fake_tensor *t, size_t n, struct kiln_sd_info *info) {
    struct fake_set fs = {t, n};
    struct kiln_tensor_lookup lk = {fake_find, &fs};
    return kiln__sd_detect_tensors(&lk, info);
}
#define DETECT(arr, info) detect(arr, sizeof arr / sizeof arr[0], info)

#define UNET_IN "model.diffusion_model.input_blocks.0.0.weight"
#define UNET_K1 "model.diffusion_model.input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight"
#define UNET_K4 "model.diffusion_model.input_blocks.4.1.transformer_blocks.0.attn2.to_k.weight"
#define SD1_TE "cond_stage_model.transformer.text_model.embeddings.token_embedding.weight"
#define SD2_TE "cond_stage_model.model.token_embedding.weight"
#define VAE "first_stage_model.decoder.conv_in.weight"

static void test_detect_sd_single_file_layouts(void) {
    struct kiln_sd_info info;
    const struct fake_tensor sd15[] = {
        {UNET_IN, 4, {320, 4, 3, 3}}, {UNET_K1, 2, {320, 768}}, {SD1_TE, 2, {49408, 768}}, {VAE, 4, {512, 4, 3, 3}}};
    CHECK_EQ_INT(DETECT(sd15, &info), KILN_VARIANT_SD15);
    CHECK_EQ_STR(info.layout, "ldm");
    CHECK(info.has_text_encoder && info.has_vae);
    CHECK_EQ_INT(info.unet_in_channels, 4);
    CHECK_EQ_INT(info.context_dim, 768);

    const struct fake_tensor sd15_inpaint[] = {{UNET_IN, 4, {320, 9, 3, 3}}, {SD1_TE, 2, {49408, 768}}};
    CHECK_EQ_INT(DETECT(sd15_inpaint, &info), KILN_VARIANT_SD15_INPAINT);
    CHECK(!info.has_vae);

    const struct fake_tensor sd2[] = {{UNET_IN, 4, {320, 4, 3, 3}}, {SD2_TE, 2, {49408, 1024}}};
    CHECK_EQ_INT(DETECT(sd2, &info), KILN_VARIANT_SD21);
    CHECK_CONTAINS(info.note, "768-v");

    const struct fake_tensor sd2_inpaint[] = {{UNET_IN, 4, {320, 9, 3, 3}}, {SD2_TE, 2, {49408, 1024}}};
    CHECK_EQ_INT(DETECT(sd2_inpaint, &info), KILN_VARIANT_SD2_INPAINT);

    /* UNet alone: the cross-attention key width decides. */
    const struct fake_tensor sd2_unet[] = {{UNET_IN, 4, {320, 4, 3, 3}}, {UNET_K1, 2, {320, 1024}}};
    CHECK_EQ_INT(DETECT(sd2_unet, &info), KILN_VARIANT_SD21);
    CHECK(!info.has_text_encoder);
    const struct fake_tensor sd1_unet[] = {{UNET_IN, 4, {320, 4, 3, 3}}, {UNET_K1, 2, {320, 768}}};
    CHECK_EQ_INT(DETECT(sd1_unet, &info), KILN_VARIANT_SD15);

    const struct fake_tensor sdxl[] = {{UNET_IN, 4, {320, 4, 3, 3}},
                                       {"model.diffusion_model.label_emb.0.0.weight", 2, {1280, 2816}},
                                       {UNET_K4, 2, {640, 2048}},
                                       {"conditioner.embedders.0.transformer.text_model.embeddings.token_embedding.weight", 2, {49408, 768}},
                                       {"conditioner.embedders.1.model.ln_final.weight", 1, {1280}}};
    CHECK_EQ_INT(DETECT(sdxl, &info), KILN_VARIANT_SDXL);
    CHECK_EQ_INT(info.context_dim, 2048);
    CHECK(info.has_text_encoder);
    CHECK_CONTAINS(info.note, "Turbo");

    const struct fake_tensor sdxl_inpaint[] = {{UNET_IN, 4, {320, 9, 3, 3}},
                                               {"model.diffusion_model.label_emb.0.0.weight", 2, {1280, 2816}},
                                               {UNET_K4, 2, {640, 2048}}};
    CHECK_EQ_INT(DETECT(sdxl_inpaint, &info), KILN_VARIANT_SDXL_INPAINT);

    /* The SDXL refiner (bigG only, context 1280) is not a variant kiln runs. */
    const struct fake_tensor refiner[] = {{UNET_IN, 4, {384, 4, 3, 3}},
                                          {"model.diffusion_model.label_emb.0.0.weight", 2, {1536, 2560}},
                                          {UNET_K4, 2, {768, 1280}}};
    CHECK_EQ_INT(DETECT(refiner, &info), KILN_VARIANT_UNKNOWN);
    CHECK_CONTAINS(info.note, "refiner");

    /* 8 input channels (instruct-pix2pix) is neither layout kiln runs. */
    const struct fake_tensor pix2pix[] = {{UNET_IN, 4, {320, 8, 3, 3}}, {SD1_TE, 2, {49408, 768}}};
    CHECK_EQ_INT(DETECT(pix2pix, &info), KILN_VARIANT_UNKNOWN);
    CHECK_CONTAINS(info.note, "neither 4");
}

/* A scaled-down SD 2.x file: the architecture from the tensors, heads and
 * groups by the convention; widths it cannot give heads to are refused. */
static void test_detect_sd_derived_architecture(void) {
#define IB "model.diffusion_model.input_blocks."
    struct kiln_sd_info info;
    struct fake_tensor t[] = {
        {UNET_IN, 4, {32, 9, 3, 3}},
        {IB "1.0.out_layers.3.weight", 4, {32, 32, 3, 3}},
        {IB "1.1.norm.weight", 1, {32}},
        {IB "1.1.transformer_blocks.0.norm1.weight", 1, {32}},
        {IB "1.1.transformer_blocks.1.norm1.weight", 1, {32}},
        {UNET_K1, 2, {32, 48}},
        {IB "2.0.out_layers.3.weight", 4, {32, 32, 3, 3}},
        {IB "2.1.norm.weight", 1, {32}},
        {IB "2.1.transformer_blocks.0.norm1.weight", 1, {32}},
        {IB "2.1.transformer_blocks.1.norm1.weight", 1, {32}},
        {IB "3.0.op.weight", 4, {32, 32, 3, 3}},
        {IB "4.0.out_layers.3.weight", 4, {128, 128, 3, 3}},
        {IB "5.0.out_layers.3.weight", 4, {128, 128, 3, 3}},
        {SD2_TE, 2, {1000, 48}},
        {"cond_stage_model.model.transformer.resblocks.0.ln_1.weight", 1, {48}},
        {"cond_stage_model.model.transformer.resblocks.1.ln_1.weight", 1, {48}},
        {"first_stage_model.decoder.conv_out.weight", 4, {3, 8, 3, 3}},
    };
    CHECK_EQ_INT(DETECT(t, &info), KILN_VARIANT_SD2_INPAINT);
    CHECK_CONTAINS(info.note, "derived");
    const struct kiln_sd_arch *a = &info.arch;
    CHECK_EQ_INT(a->family, 2);
    CHECK(!a->standard);
    CHECK_EQ_INT(a->text_width, 48);
    CHECK_EQ_INT(a->text_layers, 2);
    CHECK_EQ_INT(a->text_heads, 1);   /* below 64: one head */
    CHECK_EQ_INT(a->levels, 2);
    CHECK_EQ_INT(a->channels[0], 32);
    CHECK_EQ_INT(a->channels[1], 128);
    CHECK_EQ_INT(a->resnets, 2);
    CHECK_EQ_INT(a->depth, 2);
    CHECK_EQ_INT(a->attn_levels, 1);
    CHECK_EQ_INT(a->heads[0], 1);
    CHECK_EQ_INT(a->heads[1], 2);     /* 128 / 64; the middle block's */
    CHECK_EQ_INT(a->unet_groups, 16); /* half the narrowest width */
    CHECK_EQ_INT(a->vae_width, 8);
    CHECK_EQ_INT(a->vae_groups, 4);
    CHECK_EQ_INT(a->context_dim, 48);

    /* A top width of 96 is neither below 64 nor a multiple of it. */
    t[11].shape[0] = t[12].shape[0] = 96;
    CHECK_EQ_INT(DETECT(t, &info), KILN_VARIANT_UNKNOWN);
    CHECK_CONTAINS(info.note, "multiple");
    CHECK_EQ_INT(info.arch.family, 0);
    /* Levels of different resnet counts. */
    t[11].shape[0] = t[12].shape[0] = 128;
    t[12].name = "absent";
    CHECK_EQ_INT(DETECT(t, &info), KILN_VARIANT_UNKNOWN);
    CHECK_CONTAINS(info.note, "resnet counts");
#undef IB
}

static void test_detect_flux_and_unknown(void) {
    struct kiln_sd_info info;
    const struct fake_tensor dev[] = {{"double_blocks.0.img_attn.qkv.weight", 2, {9216, 3072}},
                                      {"single_blocks.0.linear1.weight", 2, {21504, 3072}},
                                      {"img_in.weight", 2, {3072, 64}},
                                      {"guidance_in.in_layer.weight", 2, {3072, 256}}};
    CHECK_EQ_INT(DETECT(dev, &info), KILN_VARIANT_FLUX_DEV);
    CHECK_EQ_STR(info.layout, "flux");
    CHECK_EQ_INT(info.unet_in_channels, 64);
    const struct fake_tensor schnell[] = {{"double_blocks.0.img_attn.qkv.weight", 2, {9216, 3072}},
                                          {"single_blocks.0.linear1.weight", 2, {21504, 3072}}};
    CHECK_EQ_INT(DETECT(schnell, &info), KILN_VARIANT_FLUX_SCHNELL);
    const struct fake_tensor prefixed[] = {
        {"model.diffusion_model.double_blocks.0.img_attn.qkv.weight", 2, {9216, 3072}},
        {"model.diffusion_model.single_blocks.0.linear1.weight", 2, {21504, 3072}},
        {"model.diffusion_model.guidance_in.in_layer.weight", 2, {3072, 256}}};
    CHECK_EQ_INT(DETECT(prefixed, &info), KILN_VARIANT_FLUX_DEV);
    const struct fake_tensor diffusers_dev[] = {
        {"transformer_blocks.0.attn.to_q.weight", 2, {3072, 3072}},
        {"single_transformer_blocks.0.attn.to_q.weight", 2, {3072, 3072}},
        {"x_embedder.weight", 2, {3072, 64}},
        {"time_text_embed.guidance_embedder.linear_1.weight", 2, {3072, 256}}};
    CHECK_EQ_INT(DETECT(diffusers_dev, &info), KILN_VARIANT_FLUX_DEV);
    CHECK_EQ_STR(info.layout, "diffusers-flux");
    const struct fake_tensor diffusers_schnell[] = {
        {"transformer_blocks.0.attn.to_q.weight", 2, {3072, 3072}},
        {"single_transformer_blocks.0.attn.to_q.weight", 2, {3072, 3072}}};
    CHECK_EQ_INT(DETECT(diffusers_schnell, &info), KILN_VARIANT_FLUX_SCHNELL);

    const struct fake_tensor llm[] = {{"model.embed_tokens.weight", 2, {32000, 4096}}};
    CHECK_EQ_INT(DETECT(llm, &info), KILN_VARIANT_UNKNOWN);
    CHECK_EQ_STR(info.layout, "unknown");
    CHECK_CONTAINS(info.note, "no Stable Diffusion UNet");
    /* A UNet conv of the wrong rank is not taken for one. */
    const struct fake_tensor flat[] = {{UNET_IN, 2, {320, 4}}};
    CHECK_EQ_INT(DETECT(flat, &info), KILN_VARIANT_UNKNOWN);
    CHECK_EQ_INT(kiln__sd_detect_tensors(NULL, &info), KILN_VARIANT_UNKNOWN);
}

/* ---- files and folders -------------------------------------------------- */

/* A safetensors file of U8 tensors (zeros) with the given names and shapes. */
static kiln_status write_tensors(const char *path, const struct fake_tensor *t, size_t n) {
    struct kiln_st_write_tensor w[16];
    static uint8_t zeros[320 * 1024];
    for (size_t i = 0; i < n && i < 16; i++) {
        size_t bytes = 1;
        for (int d = 0; d < t[i].n_dims; d++) bytes *= (size_t)t[i].shape[d];
        if (bytes > sizeof zeros) return KILN_ERR_INTERNAL;
        w[i] = (struct kiln_st_write_tensor){t[i].name, KILN_DTYPE_U8, t[i].n_dims, t[i].shape, zeros, bytes};
    }
    return kiln__safetensors_write(path, w, n, NULL, 0);
}

static void write_tiny_weights(const char *path) {
    const struct fake_tensor t[] = {{"w", 1, {4}}};
    write_tensors(path, t, 1);
}

static void test_single_files(void) {
    struct kiln_model_path mp;
    test_mkdirs(TMP);

    test_write_bytes(TMP "/model.gguf", "GGUF\3\0\0\0", 8);
    REQUIRE(kiln__model_path_detect(TMP "/model.gguf", &mp) == KILN_OK);
    CHECK_EQ_INT(mp.kind, KILN_MODEL_GGUF);
    CHECK_EQ_STR(kiln__model_kind_name(mp.kind), "gguf");
    CHECK_EQ_STR(mp.path, TMP "/model.gguf");
    kiln__model_path_free(&mp);

    /* PyTorch checkpoints: zip (torch.save) and raw pickle; never unpickled. */
    test_write_bytes(TMP "/sd.ckpt", "PK\3\4archive/data.pkl", 20);
    CHECK_EQ_INT(kiln__model_path_detect(TMP "/sd.ckpt", &mp), KILN_ERR_UNSUPPORTED);
    CHECK_CONTAINS(kiln_last_error(), "sd.ckpt is a PyTorch pickle checkpoint");
    CHECK_CONTAINS(kiln_last_error(), "convert it to safetensors");
    test_write_bytes(TMP "/old.pt", "\x80\x02}q\0.", 6);
    CHECK_EQ_INT(kiln__model_path_detect(TMP "/old.pt", &mp), KILN_ERR_UNSUPPORTED);
    CHECK_CONTAINS(kiln_last_error(), "old.pt is a PyTorch pickle checkpoint");
    test_write_bytes(TMP "/weird.bin", "nothing", 7);
    CHECK_EQ_INT(kiln__model_path_detect(TMP "/weird.bin", &mp), KILN_ERR_UNSUPPORTED);
    CHECK_CONTAINS(kiln_last_error(), "looks like a PyTorch checkpoint (by its name)");
    test_write_text(TMP "/notes.txt", "hello, world");
    CHECK_EQ_INT(kiln__model_path_detect(TMP "/notes.txt", &mp), KILN_ERR_UNSUPPORTED);
    CHECK_CONTAINS(kiln_last_error(), "unknown model file format");
    CHECK_EQ_INT(kiln__model_path_detect(TMP "/absent", &mp), KILN_ERR_NOT_FOUND);
    CHECK_CONTAINS(kiln_last_error(), "absent: No such file or directory");

    /* A single-file SD 1.5 inpainting UNet (the names and shapes matter). */
    const struct fake_tensor inpaint[] = {{UNET_IN, 4, {320, 9, 3, 3}}, {UNET_K1, 2, {320, 768}}};
    REQUIRE(write_tensors(TMP "/inpaint.safetensors", inpaint, 2) == KILN_OK);
    REQUIRE(kiln__model_path_detect(TMP "/inpaint.safetensors", &mp) == KILN_OK);
    CHECK_EQ_INT(mp.kind, KILN_MODEL_SAFETENSORS);
    CHECK_EQ_INT(mp.sd.variant, KILN_VARIANT_SD15_INPAINT);
    CHECK_EQ_INT(mp.sd.unet_in_channels, 9);
    kiln__model_path_free(&mp);
    /* Found by content even without the extension. */
    rename(TMP "/inpaint.safetensors", TMP "/inpaint.weights");
    REQUIRE(kiln__model_path_detect(TMP "/inpaint.weights", &mp) == KILN_OK);
    CHECK_EQ_INT(mp.kind, KILN_MODEL_SAFETENSORS);
    kiln__model_path_free(&mp);
    /* A broken .safetensors file reports the parser's reason. */
    test_write_bytes(TMP "/broken.safetensors", "\2\0\0\0\0\0\0\0[]", 10);
    CHECK_EQ_INT(kiln__model_path_detect(TMP "/broken.safetensors", &mp), KILN_ERR_FORMAT);
    CHECK_CONTAINS(kiln_last_error(), "not an object");
}

static void test_hf_llm_folder(void) {
    struct kiln_model_path mp;
    const char *dir = TMP "/llama";
    test_mkdirs(dir);
    test_write_text(TMP "/llama/config.json",
               "{\"model_type\": \"llama\", \"hidden_size\": 64, \"num_hidden_layers\": 2,"
               " \"rms_norm_eps\": 1e-5, \"rope_theta\": 10000.0, \"tie_word_embeddings\": false,"
               " \"rope_scaling\": null, \"torch_dtype\": \"bfloat16\", \"max_position_embeddings\": 2048.0}");
    /* No weights yet: incomplete. */
    CHECK_EQ_INT(kiln__model_path_detect(dir, &mp), KILN_ERR_FORMAT);
    CHECK_CONTAINS(kiln_last_error(), "no model.safetensors or model.safetensors.index.json");
    /* Pickle weights only: refused. */
    test_write_text(TMP "/llama/pytorch_model.bin", "PK\3\4");
    CHECK_EQ_INT(kiln__model_path_detect(dir, &mp), KILN_ERR_UNSUPPORTED);
    CHECK_CONTAINS(kiln_last_error(), "only PyTorch pickle weights (pytorch_model.bin)");

    write_tiny_weights(TMP "/llama/model.safetensors");
    REQUIRE(kiln__model_path_detect(dir, &mp) == KILN_OK);
    CHECK_EQ_INT(mp.kind, KILN_MODEL_HF_LLM);
    CHECK_EQ_STR(mp.model_type, "llama");
    CHECK_EQ_INT(mp.arch, KILN_ARCH_LLAMA);
    CHECK_EQ_STR(mp.weights_path, TMP "/llama/model.safetensors");
    CHECK(!mp.weights_sharded);
    CHECK(mp.tokenizer_path == NULL); /* optional, reported as absent */
    CHECK(mp.config != NULL);

    /* Typed getters with defaults over the kept config. */
    int64_t i64;
    double d;
    bool b;
    const char *str;
    CHECK(kiln__json_get_int(mp.config, "hidden_size", 0, &i64) == KILN_OK && i64 == 64);
    CHECK(kiln__json_get_int(mp.config, "max_position_embeddings", 0, &i64) == KILN_OK && i64 == 2048);
    CHECK(kiln__json_get_int(mp.config, "num_key_value_heads", 7, &i64) == KILN_OK && i64 == 7);
    CHECK(kiln__json_get_real(mp.config, "rms_norm_eps", 0, &d) == KILN_OK && d == 1e-5);
    CHECK(kiln__json_get_real(mp.config, "hidden_size", 0, &d) == KILN_OK && d == 64.0);
    CHECK(kiln__json_get_bool(mp.config, "tie_word_embeddings", true, &b) == KILN_OK && !b);
    CHECK(kiln__json_get_string(mp.config, "rope_scaling", "none", &str) == KILN_OK && strcmp(str, "none") == 0);
    CHECK(kiln__json_get_string(mp.config, "torch_dtype", NULL, &str) == KILN_OK && strcmp(str, "bfloat16") == 0);
    CHECK_EQ_INT(kiln__json_get_int(mp.config, "torch_dtype", 0, &i64), KILN_ERR_FORMAT);
    CHECK_CONTAINS(kiln_last_error(), "'torch_dtype' is a string, expected an integer");
    CHECK_EQ_INT(kiln__json_get_int(mp.config, "rms_norm_eps", 0, &i64), KILN_ERR_FORMAT);
    CHECK_CONTAINS(kiln_last_error(), "not an integer");
    CHECK_EQ_INT(kiln__json_get_bool(mp.config, "hidden_size", false, &b), KILN_ERR_FORMAT);
    CHECK_EQ_INT(kiln__json_get_real(mp.config, "torch_dtype", 0, &d), KILN_ERR_FORMAT);
    kiln__model_path_free(&mp);

    /* Sharded weights, tokenizer files, Phi-2's "phi" model_type. */
    remove(TMP "/llama/model.safetensors");
    test_write_text(TMP "/llama/model.safetensors.index.json", "{\"weight_map\": {\"w\": \"model-00001-of-00001.safetensors\"}}");
    write_tiny_weights(TMP "/llama/model-00001-of-00001.safetensors");
    test_write_text(TMP "/llama/tokenizer.json", "{}");
    test_write_text(TMP "/llama/tokenizer_config.json", "{}");
    test_write_text(TMP "/llama/config.json", "{\"model_type\": \"phi\"}");
    REQUIRE(kiln__model_path_detect(TMP "/llama/", &mp) == KILN_OK);
    CHECK(mp.weights_sharded);
    CHECK_EQ_STR(mp.weights_path, TMP "/llama/model.safetensors.index.json");
    CHECK_EQ_STR(mp.tokenizer_path, TMP "/llama/tokenizer.json");
    CHECK(mp.tokenizer_config_path != NULL);
    CHECK(mp.generation_config_path == NULL);
    CHECK_EQ_INT(mp.arch, KILN_ARCH_PHI2);
    struct kiln_safetensors_set *set = NULL;
    CHECK(kiln__safetensors_set_open(mp.weights_path, &set) == KILN_OK);
    CHECK(kiln__safetensors_set_find(set, "w") != NULL);
    kiln__safetensors_set_free(set);
    kiln__model_path_free(&mp);

    /* A family kiln does not run is still reported, as unknown. */
    test_write_text(TMP "/llama/config.json", "{\"model_type\": \"gpt2\"}");
    REQUIRE(kiln__model_path_detect(dir, &mp) == KILN_OK);
    CHECK_EQ_INT(mp.arch, KILN_ARCH_UNKNOWN);
    CHECK_EQ_STR(mp.model_type, "gpt2");
    kiln__model_path_free(&mp);
    /* An image family name is not an LLM architecture. */
    test_write_text(TMP "/llama/config.json", "{\"model_type\": \"flux\"}");
    REQUIRE(kiln__model_path_detect(dir, &mp) == KILN_OK);
    CHECK_EQ_INT(mp.arch, KILN_ARCH_UNKNOWN);
    kiln__model_path_free(&mp);
    test_write_text(TMP "/llama/config.json", "{\"model_type\": 3}");
    CHECK_EQ_INT(kiln__model_path_detect(dir, &mp), KILN_ERR_FORMAT);
    CHECK_CONTAINS(kiln_last_error(), "\"model_type\" is not a string");
    test_write_text(TMP "/llama/config.json", "[1]");
    CHECK_EQ_INT(kiln__model_path_detect(dir, &mp), KILN_ERR_FORMAT);
    CHECK_CONTAINS(kiln_last_error(), "config.json is a JSON array, not an object");
    test_write_text(TMP "/llama/config.json", "{\"model_type\": \"llama\",}");
    CHECK_EQ_INT(kiln__model_path_detect(dir, &mp), KILN_ERR_FORMAT);
    CHECK_CONTAINS(kiln_last_error(), "config.json: not valid JSON");

    test_mkdirs(TMP "/emptydir");
    CHECK_EQ_INT(kiln__model_path_detect(TMP "/emptydir", &mp), KILN_ERR_UNSUPPORTED);
    CHECK_CONTAINS(kiln_last_error(), "not a model folder kiln knows");
}

/* A diffusers folder under `dir`: model_index.json with class `cls`, and the
 * listed components' folders with config.json and tiny weights. */
static void make_diffusers(const char *dir, const char *cls, const char *const *names, size_t n,
                           const char *unet_config) {
    char path[512], index[2048];
    test_mkdirs(dir);
    int len = snprintf(index, sizeof index, "{\"_class_name\": \"%s\", \"_diffusers_version\": \"0.30.0\","
                       " \"safety_checker\": [null, null], \"feature_extractor\": null", cls);
    for (size_t i = 0; i < n; i++) {
        bool model = strncmp(names[i], "tokenizer", 9) != 0 && strcmp(names[i], "scheduler") != 0;
        len += snprintf(index + len, sizeof index - (size_t)len, ", \"%s\": [\"%s\", \"%s\"]", names[i],
                        model ? "diffusers" : "transformers", model ? "SomeModel" : "SomeTokenizer");
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        test_mkdirs(path);
        if (!model) continue;
        snprintf(path, sizeof path, "%s/%s/config.json", dir, names[i]);
        test_write_text(path, strcmp(names[i], "unet") == 0 || strcmp(names[i], "transformer") == 0 ? unet_config : "{}");
        snprintf(path, sizeof path, "%s/%s/%s", dir, names[i],
                 strncmp(names[i], "text_encoder", 12) == 0 ? "model.safetensors" : "diffusion_pytorch_model.safetensors");
        write_tiny_weights(path);
    }
    snprintf(index + len, sizeof index - (size_t)len, "}");
    snprintf(path, sizeof path, "%s/model_index.json", dir);
    test_write_text(path, index);
}

static void test_diffusers_folders(void) {
    struct kiln_model_path mp;
    static const char *const sd[] = {"unet", "vae", "text_encoder", "tokenizer", "scheduler"};
    make_diffusers(TMP "/sd15", "StableDiffusionPipeline", sd, 5, "{\"in_channels\": 4, \"cross_attention_dim\": 768}");
    kiln_status s = kiln__model_path_detect(TMP "/sd15", &mp);
    if (s != KILN_OK) fprintf(stderr, "  %s\n", kiln_last_error());
    REQUIRE(s == KILN_OK);
    CHECK_EQ_INT(mp.kind, KILN_MODEL_DIFFUSERS);
    CHECK_EQ_STR(mp.pipeline_class, "StableDiffusionPipeline");
    CHECK_EQ_INT(mp.n_components, 5);
    const struct kiln_diffusers_component *unet = kiln__model_path_component(&mp, "unet");
    REQUIRE(unet != NULL);
    CHECK_EQ_STR(unet->dir, TMP "/sd15/unet");
    CHECK_EQ_STR(unet->weights_path, TMP "/sd15/unet/diffusion_pytorch_model.safetensors");
    CHECK_EQ_STR(unet->config_path, TMP "/sd15/unet/config.json");
    CHECK_EQ_STR(unet->library, "diffusers");
    CHECK_EQ_STR(kiln__model_path_component(&mp, "text_encoder")->weights_path,
                 TMP "/sd15/text_encoder/model.safetensors");
    CHECK(kiln__model_path_component(&mp, "tokenizer")->weights_path == NULL);
    CHECK(kiln__model_path_component(&mp, "safety_checker") == NULL);
    CHECK_EQ_INT(mp.sd.variant, KILN_VARIANT_SD15);
    CHECK_EQ_INT(mp.sd.context_dim, 768);
    kiln__model_path_free(&mp);

    make_diffusers(TMP "/sd15i", "StableDiffusionInpaintPipeline", sd, 5, "{\"in_channels\": 9, \"cross_attention_dim\": 768}");
    REQUIRE(kiln__model_path_detect(TMP "/sd15i", &mp) == KILN_OK);
    CHECK_EQ_INT(mp.sd.variant, KILN_VARIANT_SD15_INPAINT);
    kiln__model_path_free(&mp);

    make_diffusers(TMP "/sd21", "StableDiffusionPipeline", sd, 5, "{\"cross_attention_dim\": 1024}");
    REQUIRE(kiln__model_path_detect(TMP "/sd21", &mp) == KILN_OK);
    CHECK_EQ_INT(mp.sd.variant, KILN_VARIANT_SD21);
    CHECK_CONTAINS(mp.sd.note, "prediction");
    kiln__model_path_free(&mp);

    static const char *const xl[] = {"unet", "vae", "text_encoder", "text_encoder_2", "tokenizer", "tokenizer_2", "scheduler"};
    make_diffusers(TMP "/sdxl", "StableDiffusionXLPipeline", xl, 7,
                   "{\"in_channels\": 4, \"cross_attention_dim\": 2048, \"addition_embed_type\": \"text_time\"}");
    REQUIRE(kiln__model_path_detect(TMP "/sdxl", &mp) == KILN_OK);
    CHECK_EQ_INT(mp.sd.variant, KILN_VARIANT_SDXL);
    CHECK(kiln__model_path_component(&mp, "text_encoder_2") != NULL);
    kiln__model_path_free(&mp);
    make_diffusers(TMP "/sdxli", "StableDiffusionXLInpaintPipeline", xl, 7, "{\"in_channels\": 9, \"cross_attention_dim\": 2048}");
    REQUIRE(kiln__model_path_detect(TMP "/sdxli", &mp) == KILN_OK);
    CHECK_EQ_INT(mp.sd.variant, KILN_VARIANT_SDXL_INPAINT);
    kiln__model_path_free(&mp);

    static const char *const flux[] = {"transformer", "vae", "text_encoder", "text_encoder_2", "tokenizer", "tokenizer_2", "scheduler"};
    make_diffusers(TMP "/fluxdev", "FluxPipeline", flux, 7, "{\"in_channels\": 64, \"guidance_embeds\": true}");
    REQUIRE(kiln__model_path_detect(TMP "/fluxdev", &mp) == KILN_OK);
    CHECK_EQ_INT(mp.sd.variant, KILN_VARIANT_FLUX_DEV);
    CHECK_EQ_INT(mp.sd.unet_in_channels, 64);
    kiln__model_path_free(&mp);
    make_diffusers(TMP "/fluxs", "FluxPipeline", flux, 7, "{\"in_channels\": 64, \"guidance_embeds\": false}");
    REQUIRE(kiln__model_path_detect(TMP "/fluxs", &mp) == KILN_OK);
    CHECK_EQ_INT(mp.sd.variant, KILN_VARIANT_FLUX_SCHNELL);
    kiln__model_path_free(&mp);
    /* A wrongly typed config value is an error, not a guess. */
    make_diffusers(TMP "/fluxbad", "FluxPipeline", flux, 7, "{\"guidance_embeds\": \"yes\"}");
    CHECK_EQ_INT(kiln__model_path_detect(TMP "/fluxbad", &mp), KILN_ERR_FORMAT);
    CHECK_CONTAINS(kiln_last_error(), "'guidance_embeds' is a string, expected a boolean");

    /* An unknown pipeline class is reported, with no variant. */
    make_diffusers(TMP "/other", "KandinskyPipeline", sd, 5, "{}");
    REQUIRE(kiln__model_path_detect(TMP "/other", &mp) == KILN_OK);
    CHECK_EQ_INT(mp.sd.variant, KILN_VARIANT_UNKNOWN);
    CHECK_CONTAINS(mp.sd.note, "not a Stable Diffusion or Flux pipeline");
    kiln__model_path_free(&mp);

    /* Incomplete folders. */
    static const char *const no_vae[] = {"unet", "text_encoder", "tokenizer"};
    make_diffusers(TMP "/novae", "StableDiffusionPipeline", no_vae, 3, "{}");
    CHECK_EQ_INT(kiln__model_path_detect(TMP "/novae", &mp), KILN_ERR_FORMAT);
    CHECK_CONTAINS(kiln_last_error(), "model_index.json lists no vae");
    make_diffusers(TMP "/gone", "StableDiffusionPipeline", sd, 5, "{}");
    remove(TMP "/gone/vae/diffusion_pytorch_model.safetensors");
    remove(TMP "/gone/vae/config.json");
    rmdir(TMP "/gone/vae");
    CHECK_EQ_INT(kiln__model_path_detect(TMP "/gone", &mp), KILN_ERR_FORMAT);
    CHECK_CONTAINS(kiln_last_error(), "lists 'vae' but " TMP "/gone/vae is missing");
    make_diffusers(TMP "/pickled", "StableDiffusionPipeline", sd, 5, "{}");
    remove(TMP "/pickled/unet/diffusion_pytorch_model.safetensors");
    CHECK_EQ_INT(kiln__model_path_detect(TMP "/pickled", &mp), KILN_ERR_FORMAT);
    CHECK_CONTAINS(kiln_last_error(), "no safetensors weights in " TMP "/pickled/unet");
    test_write_text(TMP "/pickled/unet/diffusion_pytorch_model.bin", "PK\3\4");
    CHECK_EQ_INT(kiln__model_path_detect(TMP "/pickled", &mp), KILN_ERR_UNSUPPORTED);
    CHECK_CONTAINS(kiln_last_error(), "only PyTorch pickle weights (diffusion_pytorch_model.bin)");
    /* fp16 variant weights are found. */
    write_tiny_weights(TMP "/pickled/unet/diffusion_pytorch_model.fp16.safetensors");
    REQUIRE(kiln__model_path_detect(TMP "/pickled", &mp) == KILN_OK);
    CHECK_CONTAINS(kiln__model_path_component(&mp, "unet")->weights_path, "diffusion_pytorch_model.fp16.safetensors");
    kiln__model_path_free(&mp);

    test_write_text(TMP "/pickled/model_index.json", "{\"unet\": [\"diffusers\", \"UNet2DConditionModel\"]}");
    CHECK_EQ_INT(kiln__model_path_detect(TMP "/pickled", &mp), KILN_ERR_FORMAT);
    CHECK_CONTAINS(kiln_last_error(), "no \"_class_name\"");
    test_write_text(TMP "/pickled/model_index.json", "{\"_class_name\": \"StableDiffusionPipeline\", \"unet\": \"diffusers\"}");
    CHECK_EQ_INT(kiln__model_path_detect(TMP "/pickled", &mp), KILN_ERR_FORMAT);
    CHECK_CONTAINS(kiln_last_error(), "entry 'unet' is not [library, class]");
    kiln__model_path_free(NULL);
}

int main(void) {
    /* Start from an empty scratch folder: earlier runs leave files behind. */
    if (system("rm -rf '" TMP "'") != 0) return 1;
    RUN(test_detect_sd_single_file_layouts);
    RUN(test_detect_sd_derived_architecture);
    RUN(test_detect_flux_and_unknown);
    RUN(test_single_files);
    RUN(test_hf_llm_folder);
    RUN(test_diffusers_folders);
    return TEST_REPORT();
}
