/* tests/model/test_sd_pipeline_cases.c - whole runs of kiln's SD pipeline
 * on the tiny models against AUTOMATIC1111's runs rebuilt from the
 * reference components (diffusers UNet/VAE, transformers CLIP, k-diffusion's
 * denoisers, schedules and sampler loops) by
 * tools/sd_goldens/make_pipeline_cases.py (tests/data/sd/pipeline/):
 *   img2img   tiny-sd15, strength 0.6 of 5 Euler steps (4 run), CFG 5;
 *   inpaint4  tiny-sd15 (4-channel UNet): latent blending, strength 0.75;
 *   inpaint9  tiny-sd2 (9-channel inpainting UNet), strength 1;
 *   vpred     tiny-sd2v (v-prediction from its scheduler config),
 *             DPM++ 2M with the Karras schedule;
 *   long      tiny-sd15, a prompt of two 75-token chunks (a comma break
 *             and an emphasis weight) with a one-chunk negative prompt,
 *             pad_cond_uncond on;
 *   euler_a   tiny-sd15, Euler a (noise from the seed's generator);
 *   sde       tiny-sd15, DPM++ 2M SDE, Karras (k-diffusion's Brownian tree
 *             seeded with the seed, as A1111 does).
 * And the request errors on a loaded model: sizes off the model's multiple
 * or too large, an unknown sampler, a mask without an init image or of
 * another size, a grey init image.
 * The images must agree within 1 of 255 levels on almost every value, the
 * long prompt's conditioning closely; unmasked pixels must be the init
 * image's exactly. Each model is loaded with its own tokenizer/ folder
 * (vocab.json + merges.txt). */
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "image/sd_model.h"
#include "kiln/image.h"
#include "kiln/kiln.h"
#include "sd_golden.h"
#include "test.h"

#define SIZE 64
#define PIXELS (SIZE * SIZE)
#define LONG_PROMPT                                                                                              \
    "a portrait of a woman in the forest, a red castle in the snow, a blue horse, "                              \
    "an astronaut riding a horse, a painting of a man, a dog, (a photo of a cat:1.2), "                          \
    "the forest in the snow, a red castle, a blue dog, a portrait of an astronaut, "                             \
    "a painting of the snow, a woman riding a horse"

/* One case of cases.json, as the test runs it. */
typedef struct pcase {
    const char *name;     /* the golden's file name, without .f32 */
    const char *model;    /* folder under tests/data/sd */
    const char *prompt;   /* prompt */
    const char *negative; /* negative prompt */
    uint32_t steps;       /* sampler steps */
    float guidance;       /* CFG scale */
    uint64_t seed;        /* seed */
    kiln_image_sampler sampler;   /* sampler */
    kiln_image_schedule schedule; /* schedule */
    float strength;       /* img2img strength */
    bool init, mask;      /* with the init image, with the mask */
    bool pad;             /* pad_cond_uncond */
    kiln_image_prediction pred; /* the request's prediction type (AUTO: the model's) */
    const char *path;     /* a model file under tests/data/sd instead of `model`, loaded with
                             model's tokenizer/ as its vocabulary; NULL for the folder */
} pcase;

static uint8_t *read_exact(const char *name, size_t want) {
    char path[512];
    snprintf(path, sizeof path, "%s/pipeline/%s", SD_DATA, name);
    size_t size = 0;
    uint8_t *d = test_read_file(path, &size);
    if (d && size != want) {
        free(d);
        d = NULL;
    }
    if (!d) fprintf(stderr, "  %s missing or of the wrong size\n", path);
    return d;
}

/* Run case c; compare with its golden (want_match: within 1 level on
 * almost every value; else: far from it). The image is left in *r. */
static void run_case_expect(const pcase *c, kiln_image_result *r, bool want_match) {
    memset(r, 0, sizeof *r);
    char path[512], golden[64], vocab[512];
    snprintf(path, sizeof path, "%s/%s", SD_DATA, c->path ? c->path : c->model);
    snprintf(vocab, sizeof vocab, "%s/%s/tokenizer", SD_DATA, c->model);
    kiln_image_load_options o = {c->path ? vocab : NULL};
    snprintf(golden, sizeof golden, "%s.f32", c->name);
    float *ref = (float *)read_exact(golden, PIXELS * 3 * sizeof(float));
    uint8_t *init_px = read_exact("init.u8", PIXELS * 3), *mask_px = read_exact("mask.u8", PIXELS);
    kiln_image_model *m = NULL;
    if (!ref || !init_px || !mask_px || kiln_image_load(path, &o, &m) != KILN_OK) {
        fprintf(stderr, "  %s: %s\n", c->name, kiln_last_error());
        CHECK(0);
        goto done;
    }
    kiln_image init = {SIZE, SIZE, 3, init_px}, mask = {SIZE, SIZE, 1, mask_px};
    kiln_image_params p = kiln_image_default_params();
    p.prompt = c->prompt;
    p.negative_prompt = c->negative;
    p.width = p.height = SIZE;
    p.steps = c->steps;
    p.guidance = c->guidance;
    p.seed = c->seed;
    p.sampler = c->sampler;
    p.schedule = c->schedule;
    p.strength = c->strength;
    p.init_image = c->init ? &init : NULL;
    p.mask = c->mask ? &mask : NULL;
    p.pad_cond_uncond = c->pad;
    p.prediction = c->pred;
    if (kiln_image_generate(m, &p, r) != KILN_OK || r->count != 1) {
        fprintf(stderr, "  %s: %s\n", c->name, kiln_last_error());
        CHECK(0);
        goto done;
    }
    size_t n = PIXELS * 3, off = 0, kept_wrong = 0;
    double worst = 0.0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs(r->images[0].data[i] - ref[i] * 255.0);
        if (d > 1.0) off++;
        if (d > worst) worst = d;
        if (c->mask && mask_px[i / 3] == 0 && r->images[0].data[i] != init_px[i]) kept_wrong++;
    }
    fprintf(stderr, "  %s (%s, prediction %s): %zu of %zu values more than 1 level off, worst %.2f\n", c->name,
            c->path ? c->path : c->model, kiln_image_prediction_name(c->pred), off, n, worst);
    if (want_match) {
        CHECK(off * 1000 <= n); /* at most 0.1% */
        CHECK(worst <= 3.0);
        CHECK(kept_wrong == 0);
    } else {
        CHECK(off * 10 >= n); /* a different image: at least 10% of the values */
    }
done:
    kiln_image_model_free(m);
    free(ref);
    free(init_px);
    free(mask_px);
}

static void run_case(const pcase *c, kiln_image_result *r) {
    run_case_expect(c, r, true);
}

static void test_img2img(void) {
    pcase c = {"img2img", "tiny-sd15", "a red castle in the forest", "a painting", 5, 5.0f, 21,
               KILN_IMAGE_SAMPLER_EULER, KILN_IMAGE_SCHEDULE_NORMAL, 0.6f, true, false, false,
               KILN_IMAGE_PREDICTION_AUTO, NULL};
    kiln_image_result r;
    run_case(&c, &r);
    kiln_image_result_free(&r);
}

static void test_inpaint_4_channels(void) {
    pcase c = {"inpaint4", "tiny-sd15", "a blue horse", "", 4, 6.0f, 22,
               KILN_IMAGE_SAMPLER_EULER, KILN_IMAGE_SCHEDULE_NORMAL, 0.75f, true, true, false,
               KILN_IMAGE_PREDICTION_AUTO, NULL};
    kiln_image_result r;
    run_case(&c, &r);
    kiln_image_result_free(&r);
}

static void test_inpaint_9_channels(void) {
    pcase c = {"inpaint9", "tiny-sd2", "a dog in the snow", "a cat", 4, 6.0f, 23,
               KILN_IMAGE_SAMPLER_EULER, KILN_IMAGE_SCHEDULE_NORMAL, 1.0f, true, true, false,
               KILN_IMAGE_PREDICTION_AUTO, NULL};
    kiln_image_result r;
    run_case(&c, &r);
    kiln_image_result_free(&r);
}

static void test_v_prediction(void) {
    pcase c = {"vpred", "tiny-sd2v", "a portrait of an astronaut", "a dog", 4, 7.0f, 24,
               KILN_IMAGE_SAMPLER_DPMPP_2M, KILN_IMAGE_SCHEDULE_KARRAS, 0.0f, false, false, false,
               KILN_IMAGE_PREDICTION_AUTO, NULL};
    kiln_image_result r;
    run_case(&c, &r);
    kiln_image_result_free(&r);
}

/* --prediction: forcing v on tiny-sd2v reproduces the v golden, from the
 * folder and from its ldm single file (which A1111's probe, the "auto"
 * answer for SD 2.x single files, takes for epsilon: see
 * test_prediction_from_config); forcing epsilon changes the image. */
static void test_prediction_forced(void) {
    pcase c = {"vpred", "tiny-sd2v", "a portrait of an astronaut", "a dog", 4, 7.0f, 24,
               KILN_IMAGE_SAMPLER_DPMPP_2M, KILN_IMAGE_SCHEDULE_KARRAS, 0.0f, false, false, false,
               KILN_IMAGE_PREDICTION_V, NULL};
    kiln_image_result r;
    run_case(&c, &r);
    kiln_image_result_free(&r);
    c.path = "tiny-sd2v-ldm.safetensors";
    run_case(&c, &r);
    kiln_image_result_free(&r);
    c.pred = KILN_IMAGE_PREDICTION_EPS;
    run_case_expect(&c, &r, false);
    kiln_image_result_free(&r);
    c.path = NULL;
    run_case_expect(&c, &r, false);
    kiln_image_result_free(&r);
}

static void test_euler_a(void) {
    pcase c = {"euler_a", "tiny-sd15", "a cat in the snow", "a dog", 5, 7.0f, 26,
               KILN_IMAGE_SAMPLER_EULER_A, KILN_IMAGE_SCHEDULE_NORMAL, 0.0f, false, false, false,
               KILN_IMAGE_PREDICTION_AUTO, NULL};
    kiln_image_result r;
    run_case(&c, &r);
    kiln_image_result_free(&r);
}

static void test_dpmpp_2m_sde_brownian(void) {
    pcase c = {"sde", "tiny-sd15", "a red horse in the forest", "", 6, 7.0f, 27,
               KILN_IMAGE_SAMPLER_DPMPP_2M_SDE, KILN_IMAGE_SCHEDULE_KARRAS, 0.0f, false, false, false,
               KILN_IMAGE_PREDICTION_AUTO, NULL};
    kiln_image_result r;
    run_case(&c, &r);
    kiln_image_result_free(&r);
}

/* A1111's v-prediction probe statistic (used for SD 2.x single files)
 * against diffusers' value for the same UNets (pipeline/v_probe.json). */
static void test_v_probe(void) {
    json_t *ref = json_load_file(SD_DATA "/pipeline/v_probe.json", 0, NULL);
    REQUIRE(ref != NULL);
    const char *models[] = {"tiny-sd15", "tiny-sd2v"};
    for (int i = 0; i < 2; i++) {
        char path[512];
        snprintf(path, sizeof path, "%s/%s", SD_DATA, models[i]);
        kiln_sd_components c;
        double mean = 0.0, want = json_number_value(json_object_get(ref, models[i]));
        if (kiln__sd_model_load(path, NULL, &c) != KILN_OK || kiln__sd_model_v_probe(c.user, &mean) != KILN_OK) {
            fprintf(stderr, "  %s: %s\n", models[i], kiln_last_error());
            CHECK(0);
            continue;
        }
        fprintf(stderr, "  %s: probe %.7f (diffusers %.7f)\n", models[i], mean, want);
        CHECK(fabs(mean - want) < 1e-5 + 1e-4 * fabs(want));
        kiln__sd_model_free(c.user);
    }
    json_decref(ref);
}

/* Each bad request fails with KILN_ERR_INVALID_ARG and a message naming
 * the problem. */
static void test_bad_requests(void) {
    kiln_image_model *m = NULL;
    REQUIRE(kiln_image_load(SD_DATA "/tiny-sd15", NULL, &m) == KILN_OK);
    uint8_t px[64 * 64 * 3] = {0}, mk[64 * 64] = {0}, small[32 * 32] = {0};
    kiln_image init = {64, 64, 3, px}, mask = {64, 64, 1, mk}, mask32 = {32, 32, 1, small}, grey = {64, 64, 1, mk};
    static const struct {
        uint32_t w, h;      /* size */
        int sampler;        /* sampler (99: unknown) */
        int init, mask;     /* 0 none; init: 1 RGB, 2 grey; mask: 1 same size, 2 other size */
        const char *says;   /* part of the message */
    } bad[] = {
        {60, 64, 0, 0, 0, "not a multiple of"},   {64, 66, 0, 0, 0, "not a multiple of"},
        {100000, 64, 0, 0, 0, "outside"},         {64, 64, 99, 0, 0, "unknown sampler"},
        {64, 64, 0, 0, 1, "mask"},                {64, 64, 0, 1, 2, "mask"},
        {64, 64, 0, 2, 0, "RGB"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        kiln_image_params p = kiln_image_default_params();
        p.prompt = "a cat";
        p.steps = 1;
        p.width = bad[i].w;
        p.height = bad[i].h;
        if (bad[i].sampler) p.sampler = (kiln_image_sampler)bad[i].sampler;
        if (bad[i].init) p.init_image = bad[i].init == 1 ? &init : &grey;
        if (bad[i].mask) p.mask = bad[i].mask == 1 ? &mask : &mask32;
        kiln_image_result r;
        CHECK_EQ_INT(kiln_image_generate(m, &p, &r), KILN_ERR_INVALID_ARG);
        CHECK_CONTAINS(kiln_last_error(), bad[i].says);
        CHECK(r.count == 0 && r.images == NULL);
    }
    kiln_image_model_free(m);
}

/* The prediction type comes from scheduler/scheduler_config.json: v for
 * tiny-sd2v, epsilon for the folders without one; for an SD 2.x single
 * file from A1111's probe (tiny-sd2v's file: -0.51, not below -1, so
 * epsilon; its v is given with --prediction). */
static void test_prediction_from_config(void) {
    static const struct {
        const char *model;
        kiln_prediction want;
    } cases[] = {{"tiny-sd2v", KILN_PRED_V},
                 {"tiny-sd15", KILN_PRED_EPS},
                 {"tiny-sd2", KILN_PRED_EPS},
                 {"tiny-sd2v-ldm.safetensors", KILN_PRED_EPS}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char path[512];
        snprintf(path, sizeof path, "%s/%s", SD_DATA, cases[i].model);
        kiln_sd_components c;
        const char *vocab = strstr(cases[i].model, ".safetensors") ? SD_DATA "/tiny-sd2v/tokenizer" : NULL;
        if (kiln__sd_model_load(path, vocab, &c) != KILN_OK) {
            fprintf(stderr, "  %s: %s\n", cases[i].model, kiln_last_error());
            CHECK(0);
            continue;
        }
        CHECK_EQ_INT(c.prediction, cases[i].want);
        kiln__sd_model_free(c.user);
    }
}

/* Two chunks of conditioning for the long prompt; the negative prompt
 * padded with the empty prompt's chunk; the image with the padding. */
static void test_long_prompt_padded(void) {
    float *cond = (float *)read_exact("long_cond.f32", 154 * 32 * sizeof(float));
    float *uncond = (float *)read_exact("long_uncond.f32", 154 * 32 * sizeof(float));
    kiln_sd_components c;
    kiln_status s = cond && uncond ? kiln__sd_model_load(SD_DATA "/tiny-sd15", NULL, &c) : KILN_ERR_NOT_FOUND;
    float *z = NULL, *neg = NULL, *empty = NULL;
    int nz = 0, nneg = 0, nempty = 0;
    if (s == KILN_OK && c.encode_text(c.user, LONG_PROMPT, 0, &z, &nz) == KILN_OK &&
        c.encode_text(c.user, "a dog", 0, &neg, &nneg) == KILN_OK &&
        c.encode_text(c.user, "", 0, &empty, &nempty) == KILN_OK) {
        CHECK_EQ_INT(nz, 154);
        CHECK_EQ_INT(nneg, 77);
        CHECK_EQ_INT(nempty, 77);
        if (nz == 154 && nneg == 77 && nempty == 77) {
            double e = sd_rel_err(z, cond, 154 * 32);
            double en = sd_rel_err(neg, uncond, 77 * 32), ee = sd_rel_err(empty, uncond + 77 * 32, 77 * 32);
            fprintf(stderr, "  long prompt: rel err %.3g; negative %.3g, its padding %.3g\n", e, en, ee);
            CHECK(e < SD_REL_ERR);
            CHECK(en < SD_REL_ERR);
            CHECK(ee < SD_REL_ERR);
        }
    } else {
        fprintf(stderr, "  %s\n", kiln_last_error());
        CHECK(0);
    }
    free(z);
    free(neg);
    free(empty);
    free(cond);
    free(uncond);
    if (s == KILN_OK) kiln__sd_model_free(c.user);

    pcase pc = {"long", "tiny-sd15", LONG_PROMPT, "a dog", 3, 7.0f, 25,
                KILN_IMAGE_SAMPLER_EULER, KILN_IMAGE_SCHEDULE_NORMAL, 0.0f, false, false, true,
                KILN_IMAGE_PREDICTION_AUTO, NULL};
    kiln_image_result r;
    run_case(&pc, &r);
    if (r.count == 1) CHECK_CONTAINS(r.parameters[0], ", Pad conds: True");
    kiln_image_result_free(&r);
}

int main(void) {
    RUN(test_img2img);
    RUN(test_inpaint_4_channels);
    RUN(test_inpaint_9_channels);
    RUN(test_v_prediction);
    RUN(test_prediction_forced);
    RUN(test_prediction_from_config);
    RUN(test_long_prompt_padded);
    RUN(test_euler_a);
    RUN(test_dpmpp_2m_sde_brownian);
    RUN(test_bad_requests);
    RUN(test_v_probe);
    return TEST_REPORT();
}
