/* tests/model/test_sd_generate.c - kiln_image_load and kiln_image_generate
 * on the tiny random-weight SD models of tests/data/sd (diffusers folders;
 * the CLIP vocabulary given as their merges file): txt2img is deterministic
 * for a seed and changes with it, with the prompt's emphasis and with the
 * clip skip; images have the asked size and the A1111 parameters text;
 * inpainting with the 9-channel model keeps the unmasked pixels; load
 * errors say what is missing. */
#include <stdlib.h>
#include <string.h>

#include "kiln/image.h"
#include "kiln/kiln.h"
#include "sd_golden.h"
#include "test.h"

/* Load `model` (a folder of tests/data/sd) with its merges file as vocabulary. */
static kiln_image_model *load(const char *model) {
    char dir[512], vocab[600];
    snprintf(dir, sizeof dir, "%s/%s", SD_DATA, model);
    snprintf(vocab, sizeof vocab, "%s/tokenizer/merges.txt", dir);
    kiln_image_load_options o = {vocab};
    kiln_image_model *m = NULL;
    if (kiln_image_load(dir, &o, &m) != KILN_OK) fprintf(stderr, "  %s\n", kiln_last_error());
    return m;
}

/* Small, fast request: 64x64, 2 Euler steps, CFG with a negative prompt. */
static kiln_image_params small_params(const char *prompt, uint64_t seed) {
    kiln_image_params p = kiln_image_default_params();
    p.prompt = prompt;
    p.negative_prompt = "blurry";
    p.width = p.height = 64;
    p.steps = 2;
    p.sampler = KILN_IMAGE_SAMPLER_EULER;
    p.guidance = 7.0f;
    p.seed = seed;
    return p;
}

/* Whether two one-image results hold the same pixels. */
static int same_pixels(const kiln_image_result *a, const kiln_image_result *b) {
    const kiln_image *x = &a->images[0], *y = &b->images[0];
    return x->width == y->width && x->height == y->height &&
           memcmp(x->data, y->data, (size_t)x->width * x->height * 3) == 0;
}

/* Generate with p into r; 1 on success. */
static int gen(kiln_image_model *m, const kiln_image_params *p, kiln_image_result *r) {
    kiln_status s = kiln_image_generate(m, p, r);
    if (s != KILN_OK) fprintf(stderr, "  generate: %s\n", kiln_last_error());
    return s == KILN_OK && r->count == 1;
}

static void test_txt2img(void) {
    kiln_image_model *m = load("tiny-sd15");
    REQUIRE(m);
    kiln_image_params p = small_params("a photo of a cat", 5);
    kiln_image_result a, b, c;
    REQUIRE(gen(m, &p, &a));
    CHECK_EQ_INT(a.images[0].width, 64);
    CHECK_EQ_INT(a.images[0].height, 64);
    CHECK_EQ_INT(a.images[0].channels, 3);
    CHECK_EQ_STR(a.parameters[0], "a photo of a cat\nNegative prompt: blurry\nSteps: 2, Sampler: Euler, CFG scale: 7, "
                                  "Seed: 5, Size: 64x64, Model: tiny-sd15, RNG: CPU");
    /* Not a flat image: the networks shaped it. */
    int varied = 0;
    for (size_t i = 3; i < 64 * 64 * 3; i++) varied |= a.images[0].data[i] != a.images[0].data[i % 3];
    CHECK(varied);
    /* The same request gives the same bytes; another seed other ones. */
    REQUIRE(gen(m, &p, &b));
    CHECK(same_pixels(&a, &b));
    p.seed = 6;
    REQUIRE(gen(m, &p, &c));
    CHECK(!same_pixels(&a, &c));
    kiln_image_result_free(&b);
    kiln_image_result_free(&c);
    /* A weight of 1 changes nothing; another weight changes the image. */
    p.seed = 5;
    p.prompt = "a photo of a (cat:1.0)";
    REQUIRE(gen(m, &p, &b));
    CHECK(same_pixels(&a, &b));
    p.prompt = "a photo of a (cat:1.6)";
    REQUIRE(gen(m, &p, &c));
    CHECK(!same_pixels(&a, &c));
    kiln_image_result_free(&b);
    kiln_image_result_free(&c);
    /* Clip skip 2 conditions on the other layer; the tiny encoder has 2. */
    p.prompt = "a photo of a cat";
    p.clip_skip = 2;
    REQUIRE(gen(m, &p, &b));
    CHECK(!same_pixels(&a, &b));
    CHECK_CONTAINS(b.parameters[0], "Clip skip: 2");
    kiln_image_result_free(&b);
    p.clip_skip = 3;
    CHECK(kiln_image_generate(m, &p, &b) == KILN_ERR_INVALID_ARG);
    CHECK_CONTAINS(kiln_last_error(), "clip skip 3");
    /* Sizes the UNet cannot halve evenly are refused (VAE 2 x UNet 2). */
    p.clip_skip = 0;
    p.width = 66;
    CHECK(kiln_image_generate(m, &p, &b) == KILN_ERR_INVALID_ARG);
    kiln_image_result_free(&a);
    kiln_image_model_free(m);
}

/* The 9-channel model repaints the masked half and keeps the rest. */
static void test_inpaint(void) {
    kiln_image_model *m = load("tiny-sd2");
    REQUIRE(m);
    uint8_t *px = malloc(64 * 64 * 3), *mk = malloc(64 * 64);
    REQUIRE(px && mk);
    for (int i = 0; i < 64 * 64; i++) {
        for (int ch = 0; ch < 3; ch++) px[i * 3 + ch] = (uint8_t)(i * (ch + 1));
        mk[i] = (i % 64) < 32 ? 255 : 0; /* left half repainted */
    }
    kiln_image init = {64, 64, 3, px}, mask = {64, 64, 1, mk};
    kiln_image_params p = small_params("a red (house)", 3);
    p.init_image = &init;
    p.mask = &mask;
    p.strength = 1.0f;
    kiln_image_result r;
    if (gen(m, &p, &r)) {
        int kept = 1, changed = 0;
        for (int i = 0; i < 64 * 64; i++)
            for (int ch = 0; ch < 3; ch++) {
                uint8_t v = r.images[0].data[i * 3 + ch];
                if (mk[i] == 0) kept &= v == px[i * 3 + ch];
                else changed |= v != px[i * 3 + ch];
            }
        CHECK(kept);
        CHECK(changed);
        kiln_image_result_free(&r);
    } else {
        CHECK(0);
    }
    free(px);
    free(mk);
    kiln_image_model_free(m);
}

/* Load errors name the problem. */
static void test_load_errors(void) {
    static char not_a_model;
    kiln_image_model *m = (kiln_image_model *)(void *)&not_a_model; /* must be reset to NULL */
    CHECK(kiln_image_load(SD_DATA "/absent", NULL, &m) != KILN_OK);
    CHECK(m == NULL);
    /* A vocabulary that does not exist. */
    kiln_image_load_options o = {SD_DATA "/absent-vocab.txt"};
    CHECK(kiln_image_load(SD_DATA "/tiny-sd15", &o, &m) == KILN_ERR_NOT_FOUND);
    CHECK_CONTAINS(kiln_last_error(), "--clip-vocab");
    /* A single file (its architecture derived) carries no vocabulary. */
    CHECK(kiln_image_load(SD_DATA "/tiny-sd2v-ldm.safetensors", NULL, &m) == KILN_ERR_NOT_FOUND);
    CHECK_CONTAINS(kiln_last_error(), "--clip-vocab");
    CHECK(kiln_image_load(NULL, NULL, &m) == KILN_ERR_INVALID_ARG);
}

int main(void) {
    RUN(test_txt2img);
    RUN(test_inpaint);
    RUN(test_load_errors);
    return TEST_REPORT();
}
