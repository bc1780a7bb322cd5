/* tests/model/test_sd_pipeline_golden.c - a whole txt2img run of kiln on the
 * tiny SD 1.x model against the same run made with its diffusers and
 * transformers components and k-diffusion's Euler loop
 * (tools/sd_goldens/make_pipeline_golden.py, tests/data/sd/pipeline/): 3
 * Euler steps, normal schedule, CFG 7 with a negative prompt, 64x64, seed 11,
 * the vocabulary read from a tokenizer folder. Almost every pixel value must
 * be within 1 of 255 levels of the reference, none far off. */
#include <math.h>
#include <stdlib.h>

#include "kiln/image.h"
#include "kiln/kiln.h"
#include "sd_golden.h"
#include "test.h"

static void test_txt2img_matches_reference(void) {
    size_t size = 0;
    float *ref = (float *)test_read_file(SD_DATA "/pipeline/image.f32", &size);
    REQUIRE(ref && size == 64 * 64 * 3 * sizeof(float));
    kiln_image_load_options o = {SD_DATA "/pipeline/tokenizer"};
    kiln_image_model *m = NULL;
    if (kiln_image_load(SD_DATA "/tiny-sd15", &o, &m) != KILN_OK) fprintf(stderr, "  %s\n", kiln_last_error());
    kiln_image_params p = kiln_image_default_params();
    p.prompt = "a photo of a cat in the snow";
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

int main(void) {
    RUN(test_txt2img_matches_reference);
    return TEST_REPORT();
}
