/* tests/model/test_sd_layouts.c - the three file layouts of the same
 * weights give the same image through kiln_image_load / kiln_image_generate.
 * SD 2.x, F32:
 *   folder  tests/data/sd/tiny-sd2v, the diffusers folder (configs say the
 *           heads, groups and v-prediction);
 *   ldm     tests/data/sd/tiny-sd2v-ldm.safetensors, the same weights in the
 *           original single-file layout (written by tools/sd_goldens and
 *           checked there with diffusers' own converters; it holds OpenCLIP's
 *           last layer, which SD 2.x conditions past): no configs, so its
 *           architecture is derived from the tensors (SD 2.x conventions);
 *   gguf    that file's tensors rewritten as GGUF here, in F32.
 * All F32: the images must be identical, byte for byte, for two samplers.
 * The same file in F16 GGUF (half-precision weights) must stay within one
 * level on almost every value. The single files need --clip-vocab (the
 * folder's tokenizer/, whose padding token the folder uses too) and the
 * prediction type (A1111's probe takes this tiny v model for epsilon), as a
 * user of such a file gives them. (test_sd_pipeline_cases checks the
 * folder's and the ldm file's images against the reference pipeline's.)
 * SD 1.x, F16: tests/data/sd/tiny-sd15-f16 (folder), its ldm file
 * (CLIP's transformers names under cond_stage_model.transformer., checked
 * by diffusers' converters at golden-making time) and that file as F16
 * GGUF: identical images; epsilon, the end token as padding. */
#include <stdlib.h>
#include <string.h>

#include "kiln/image.h"
#include "kiln/kiln.h"
#include "sd_gguf_file.h"
#include "sd_golden.h"
#include "test.h"

#define SIZE 64
#define N_VALUES (SIZE * SIZE * 3)
#define FOLDER SD_DATA "/tiny-sd2v"
#define LDM SD_DATA "/tiny-sd2v-ldm.safetensors"
#define VOCAB SD_DATA "/tiny-sd2v/tokenizer"
#define GGUF_F32 KILN_TEST_TMP "/tiny-sd2v-f32.gguf"
#define GGUF_F16 KILN_TEST_TMP "/tiny-sd2v-f16.gguf"
#define SD15_FOLDER SD_DATA "/tiny-sd15-f16"
#define SD15_LDM SD_DATA "/tiny-sd15-f16-ldm.safetensors"
#define SD15_VOCAB SD_DATA "/tiny-sd15-f16/tokenizer"
#define SD15_GGUF KILN_TEST_TMP "/tiny-sd15-f16.gguf"

/* One generation of `path` (vocab may be NULL); the RGB values into out
 * (N_VALUES). Returns 1 on success. */
static int generate(const char *path, const char *vocab, kiln_image_prediction pred, kiln_image_sampler sampler,
                    uint8_t *out) {
    kiln_image_load_options o = {vocab};
    kiln_image_model *m = NULL;
    if (kiln_image_load(path, &o, &m) != KILN_OK) {
        fprintf(stderr, "  loading %s: %s\n", path, kiln_last_error());
        return 0;
    }
    kiln_image_params p = kiln_image_default_params();
    p.prompt = "a portrait of an astronaut";
    p.negative_prompt = "a dog";
    p.width = p.height = SIZE;
    p.steps = 4;
    p.guidance = 7.0f;
    p.seed = 24;
    p.sampler = sampler;
    p.schedule = KILN_IMAGE_SCHEDULE_KARRAS;
    p.prediction = pred;
    kiln_image_result r;
    int ok = kiln_image_generate(m, &p, &r) == KILN_OK && r.count == 1 && r.images[0].width == SIZE &&
             r.images[0].height == SIZE && r.images[0].channels == 3;
    if (ok) memcpy(out, r.images[0].data, N_VALUES);
    else fprintf(stderr, "  generating with %s: %s\n", path, kiln_last_error());
    kiln_image_result_free(&r);
    kiln_image_model_free(m);
    return ok;
}

/* Values more than one level apart, and the largest difference. */
static size_t off_by_more_than_1(const uint8_t *a, const uint8_t *b, int *worst) {
    size_t off = 0;
    *worst = 0;
    for (size_t i = 0; i < N_VALUES; i++) {
        int d = abs((int)a[i] - (int)b[i]);
        if (d > 1) off++;
        if (d > *worst) *worst = d;
    }
    return off;
}

/* One image per layout with each sampler: the folder (its own prediction)
 * and the two single files (`pred`, vocabulary from `vocab`) give identical
 * bytes. */
static void check_same_images(const char *what, const char *folder_path, const char *ldm_path,
                              const char *gguf_path, const char *vocab, kiln_image_prediction pred,
                              const kiln_image_sampler *samplers, size_t n_samplers) {
    for (size_t s = 0; s < n_samplers; s++) {
        uint8_t *folder = malloc(N_VALUES), *ldm = malloc(N_VALUES), *gguf = malloc(N_VALUES);
        REQUIRE(folder && ldm && gguf);
        CHECK(generate(folder_path, NULL, KILN_IMAGE_PREDICTION_AUTO, samplers[s], folder));
        CHECK(generate(ldm_path, vocab, pred, samplers[s], ldm));
        CHECK(generate(gguf_path, vocab, pred, samplers[s], gguf));
        int w1 = 0, w2 = 0;
        size_t o1 = off_by_more_than_1(folder, ldm, &w1), o2 = off_by_more_than_1(folder, gguf, &w2);
        fprintf(stderr, "  %s %s: ldm vs folder worst %d, gguf vs folder worst %d\n", what,
                kiln_image_sampler_name(samplers[s]), w1, w2);
        CHECK(memcmp(folder, ldm, N_VALUES) == 0);
        CHECK(memcmp(folder, gguf, N_VALUES) == 0);
        CHECK(o1 == 0 && o2 == 0);
        free(folder);
        free(ldm);
        free(gguf);
    }
}

/* The kiln_image_load path: each single file is named as SD 2.x with its
 * derived shapes, v only when asked for. */
static void test_three_layouts_same_image(void) {
    REQUIRE(sd_write_gguf(LDM, GGUF_F32, SD_GGUF_F32));
    static const kiln_image_sampler samplers[] = {KILN_IMAGE_SAMPLER_DPMPP_2M, KILN_IMAGE_SAMPLER_EULER_A};
    check_same_images("sd2", FOLDER, LDM, GGUF_F32, VOCAB, KILN_IMAGE_PREDICTION_V, samplers,
                      sizeof samplers / sizeof samplers[0]);
    remove(GGUF_F32);
}

/* SD 1.x in F16: folder, ldm file and F16 GGUF, identical images (the
 * prediction left to each: epsilon from the folder without a scheduler
 * config, epsilon for SD 1.x single files). */
static void test_sd15_f16_three_layouts(void) {
    REQUIRE(sd_write_gguf(SD15_LDM, SD15_GGUF, SD_GGUF_F16));
    static const kiln_image_sampler samplers[] = {KILN_IMAGE_SAMPLER_EULER_A, KILN_IMAGE_SAMPLER_DPMPP_2M};
    check_same_images("sd15 f16", SD15_FOLDER, SD15_LDM, SD15_GGUF, SD15_VOCAB, KILN_IMAGE_PREDICTION_AUTO, samplers,
                      sizeof samplers / sizeof samplers[0]);
    /* Loaded as the sd1.5 variant (its registry capabilities). */
    kiln_image_load_options o = {SD15_VOCAB};
    kiln_image_model *m = NULL;
    kiln_image_caps caps, sd15;
    REQUIRE(kiln_image_load(SD15_LDM, &o, &m) == KILN_OK);
    CHECK(kiln_image_model_caps(m, &caps) == KILN_OK && kiln_variant_caps(KILN_VARIANT_SD15, &sd15));
    CHECK_EQ_INT(caps.default_width, sd15.default_width);
    kiln_image_model_free(m);
    remove(SD15_GGUF);
}

/* Half-precision weights: within one level on almost every value. */
static void test_f16_gguf_close(void) {
    REQUIRE(sd_write_gguf(LDM, GGUF_F16, SD_GGUF_F16));
    uint8_t *folder = malloc(N_VALUES), *gguf = malloc(N_VALUES);
    REQUIRE(folder && gguf);
    CHECK(generate(FOLDER, NULL, KILN_IMAGE_PREDICTION_AUTO, KILN_IMAGE_SAMPLER_DPMPP_2M, folder));
    CHECK(generate(GGUF_F16, VOCAB, KILN_IMAGE_PREDICTION_V, KILN_IMAGE_SAMPLER_DPMPP_2M, gguf));
    int worst = 0;
    size_t off = off_by_more_than_1(folder, gguf, &worst);
    fprintf(stderr, "  f16 gguf vs folder: %zu values more than 1 level off, worst %d\n", off, worst);
    CHECK(off * 1000 <= N_VALUES);
    CHECK(worst <= 3);
    free(folder);
    free(gguf);
    remove(GGUF_F16);
}

/* The single file loads as the SD 2.x variant (sd2.1's capabilities: its
 * default size, 768 for the 768-v model) and a missing vocabulary or a bad
 * prediction value is refused. */
static void test_single_file_load(void) {
    kiln_image_load_options o = {VOCAB};
    kiln_image_model *m = NULL;
    REQUIRE(kiln_image_load(LDM, &o, &m) == KILN_OK);
    kiln_image_caps caps, sd21;
    CHECK(kiln_image_model_caps(m, &caps) == KILN_OK);
    CHECK(kiln_variant_caps(KILN_VARIANT_SD21, &sd21));
    CHECK_EQ_INT(caps.default_width, sd21.default_width);
    CHECK_EQ_INT(caps.default_steps, sd21.default_steps);
    CHECK(caps.img2img && !caps.inpainting == !sd21.inpainting);
    kiln_image_params p = kiln_image_default_params();
    p.prompt = "a cat";
    p.width = p.height = SIZE;
    p.steps = 1;
    p.prediction = (kiln_image_prediction)7;
    kiln_image_result r;
    CHECK_EQ_INT(kiln_image_generate(m, &p, &r), KILN_ERR_INVALID_ARG);
    CHECK_CONTAINS(kiln_last_error(), "prediction");
    kiln_image_model_free(m);
    m = NULL;
    CHECK_EQ_INT(kiln_image_load(LDM, NULL, &m), KILN_ERR_NOT_FOUND);
    CHECK_CONTAINS(kiln_last_error(), "--clip-vocab");
}

int main(void) {
    RUN(test_three_layouts_same_image);
    RUN(test_sd15_f16_three_layouts);
    RUN(test_f16_gguf_close);
    RUN(test_single_file_load);
    return TEST_REPORT();
}
