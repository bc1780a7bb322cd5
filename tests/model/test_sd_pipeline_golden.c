/* tests/model/test_sd_pipeline_golden.c - a whole txt2img run of kiln on the
 * tiny SD 1.x model against the same run made with its diffusers and
 * transformers components and k-diffusion's Euler loop
 * (tools/sd_goldens/make_pipeline_golden.py, tests/data/sd/pipeline/): 3
 * Euler steps, normal schedule, CFG 7 with a negative prompt, 64x64, seed 11,
 * the vocabulary read from a tokenizer folder, a prompt with emphasis.
 * Almost every pixel value must be within 1 of 255 levels of the reference,
 * none far off; the weighted conditioning must match closely. */
#include <math.h>
#include <stdlib.h>

#include "image/sd_model.h"
#include "kiln/image.h"
#include "kiln/kiln.h"
#include "sd_golden.h"
#include "test.h"

static void test_txt2img_matches_reference(void) {
    size_t size = 0;
    float *ref = (float *)test_read_file(SD_DATA "/pipeline/image.f32", &size);
    REQUIRE(ref && size == 64 * 64 * 3 * sizeof(float));
    kiln_image_load_options o = {SD_DATA "/tiny-sd15/tokenizer"};
    kiln_image_model *m = NULL;
    if (kiln_image_load(SD_DATA "/tiny-sd15", &o, &m) != KILN_OK) fprintf(stderr, "  %s\n", kiln_last_error());
    kiln_image_params p = kiln_image_default_params();
    p.prompt = "a photo of a (cat:1.3) in the [snow]";
    p.negative_prompt = "a dog";
    p.width = p.height = 64;
    p.steps = 3;
    p.guidance = 7.0f;
    p.sampler = KILN_IMAGE_SAMPLER_EULER;
    p.schedule = KILN_IMAGE_SCHEDULE_NORMAL;
    p.seed = 11;
    kiln_image_result r = {0};
    if (m && kiln_image_generate(m, &p, &r) == KILN_OK && r.count == 1) {
        size_t n = 64 * 64 * 3, off = 0;
        double worst = 0.0;
        for (size_t i = 0; i < n; i++) {
            double d = fabs(r.images[0].data[i] - ref[i] * 255.0);
            if (d > 1.0) off++;
            if (d > worst) worst = d;
        }
        fprintf(stderr, "  %zu of %zu values more than 1 level off, worst %.2f\n", off, n, worst);
        CHECK(off * 1000 <= n); /* at most 0.1% */
        CHECK(worst <= 3.0);
    } else {
        fprintf(stderr, "  %s\n", kiln_last_error());
        CHECK(0);
    }
    kiln_image_result_free(&r);
    kiln_image_model_free(m);
    free(ref);
}

/* The emphasis-weighted conditioning, through the loaded model's
 * encode_text (the image above is too small a model to react to it). */
static void test_weighted_conditioning(void) {
    size_t n = 0;
    float *ref = (float *)test_read_file(SD_DATA "/pipeline/cond.f32", &n);
    REQUIRE(ref && n == 77 * 32 * sizeof(float));
    kiln_sd_components c;
    kiln_status s = kiln__sd_model_load(SD_DATA "/tiny-sd15", NULL, &c);
    if (s != KILN_OK) fprintf(stderr, "  %s\n", kiln_last_error());
    float *ctx = NULL, *plain = NULL;
    int n_ctx = 0, n_plain = 0;
    if (s == KILN_OK && c.encode_text(c.user, "a photo of a (cat:1.3) in the [snow]", 0, &ctx, &n_ctx) == KILN_OK &&
        c.encode_text(c.user, "a photo of a cat in the snow", 0, &plain, &n_plain) == KILN_OK) {
        CHECK_EQ_INT(n_ctx, 77);
        double e = sd_rel_err(ctx, ref, 77 * 32), e_plain = sd_rel_err(plain, ref, 77 * 32);
        fprintf(stderr, "  weighted: rel err %.3g (unweighted prompt: %.3g)\n", e, e_plain);
        CHECK(e < SD_REL_ERR);
        CHECK(e_plain > 100 * SD_REL_ERR); /* the weights matter at this precision */
    } else {
        CHECK(0);
    }
    free(ctx);
    free(plain);
    free(ref);
    kiln__sd_model_free(c.user);
}

int main(void) {
    RUN(test_txt2img_matches_reference);
    RUN(test_weighted_conditioning);
    return TEST_REPORT();
}
