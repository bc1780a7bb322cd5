/* tests/unit/test_image_pipeline.c - the SD pipeline over toy components:
 * a text encoder giving a per-prompt target latent, a UNet whose denoised
 * estimate is pulled toward that target, a VAE that is nearest-neighbour
 * upsampling (decode) and 8x8 block means (encode). The expected values are
 * worked out here from those definitions, not taken from the pipeline. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "image/pipeline.h"
#include "image/rng.h"
#include "image/schedules.h"
#include "kiln/image.h"
#include "test.h"

#define SCALE 0.18215f

/* The toy networks' state. */
typedef struct toy {
    kiln_noise_levels levels; /* to turn a timestep back into sigma */
    float pull;               /* eps = pull * (x - target) / sigma: 1 makes denoised = target */
    int in_channels;          /* 4 or 9 */
    int unet_calls;           /* evaluations so far */
    float *first_x;           /* copy of the first UNet input (latent channels) */
    float *mask_channel;      /* copy of channel 4 of a 9-channel input */
    size_t n;                 /* latent elements of the run */
} toy;

/* Target latent of a prompt: 0 for "", otherwise a fixed vector times the
 * prompt's length. */
static void prompt_target(const char *prompt, float *t) {
    float len = (float)strlen(prompt);
    static const float base[4] = {0.02f, -0.01f, 0.015f, 0.005f};
    for (int c = 0; c < 4; c++) t[c] = base[c] * len;
}

static kiln_status toy_text(void *user, const char *prompt, uint32_t clip_skip, float **ctx, int *n_ctx) {
    (void)user;
    (void)clip_skip;
    *ctx = malloc(4 * sizeof **ctx);
    if (!*ctx) return KILN_ERR_OUT_OF_MEMORY;
    prompt_target(prompt, *ctx);
    *n_ctx = 1;
    return KILN_OK;
}

static kiln_status toy_unet(void *user, const float *x, int h, int w, float t, const float *ctx, int n_ctx,
                            float *out) {
    toy *ty = user;
    (void)n_ctx;
    size_t hw = (size_t)h * w;
    if (ty->unet_calls++ == 0) {
        ty->first_x = malloc(4 * hw * sizeof(float));
        if (ty->first_x) memcpy(ty->first_x, x, 4 * hw * sizeof(float));
        if (ty->in_channels == 9) {
            ty->mask_channel = malloc(hw * sizeof(float));
            if (ty->mask_channel) memcpy(ty->mask_channel, x + 4 * hw, hw * sizeof(float));
        }
    }
    double sigma = kiln__t_to_sigma(&ty->levels, t);
    double c_in = 1.0 / sqrt(sigma * sigma + 1.0);
    for (int c = 0; c < 4; c++)
        for (size_t i = 0; i < hw; i++) {
            double xx = x[c * hw + i] / c_in;
            out[c * hw + i] = (float)(ty->pull * (xx - ctx[c]) / sigma);
        }
    return KILN_OK;
}

static kiln_status toy_decode(void *user, const float *latent, int h, int w, float *rgb) {
    (void)user;
    int H = h * 8, W = w * 8;
    for (int c = 0; c < 3; c++)
        for (int y = 0; y < H; y++)
            for (int x = 0; x < W; x++)
                rgb[((size_t)c * H + y) * W + x] = latent[((size_t)c * h + y / 8) * w + x / 8];
    return KILN_OK;
}

static kiln_status toy_encode(void *user, const float *rgb, int H, int W, float *mean, float *logvar) {
    (void)user;
    int h = H / 8, w = W / 8;
    for (int c = 0; c < 4; c++)
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++) {
                double s = 0;
                if (c < 3)
                    for (int dy = 0; dy < 8; dy++)
                        for (int dx = 0; dx < 8; dx++) s += rgb[((size_t)c * H + y * 8 + dy) * W + x * 8 + dx];
                mean[((size_t)c * h + y) * w + x] = (float)(s / 64.0);
                logvar[((size_t)c * h + y) * w + x] = -30.0f;
            }
    return KILN_OK;
}

static kiln_sd_components toy_components(toy *ty, int in_channels, float pull) {
    memset(ty, 0, sizeof *ty);
    kiln__noise_levels_sd(&ty->levels, KILN_ALPHAS_LDM);
    ty->pull = pull;
    ty->in_channels = in_channels;
    kiln_sd_components c;
    memset(&c, 0, sizeof c);
    c.user = ty;
    c.encode_text = toy_text;
    c.unet_eval = toy_unet;
    c.vae_decode = toy_decode;
    c.vae_encode = toy_encode;
    c.unet_in_channels = in_channels;
    c.prediction = KILN_PRED_EPS;
    c.latent_scale = SCALE;
    kiln_variant_caps(KILN_VARIANT_SD15, &c.caps);
    c.model_name = "toy";
    return c;
}

static void toy_free(toy *ty) {
    free(ty->first_x);
    free(ty->mask_channel);
    ty->first_x = ty->mask_channel = NULL;
}

/* Small txt2img defaults: 64x64 pixels (8x8 latent). */
static kiln_image_params small_params(void) {
    kiln_image_params p = kiln_image_default_params();
    p.prompt = "a red fox";
    p.width = p.height = 64;
    p.steps = 6;
    p.seed = 42;
    return p;
}

static int same_image(const kiln_image *a, const kiln_image *b) {
    return a->width == b->width && a->height == b->height && a->channels == b->channels &&
           memcmp(a->data, b->data, (size_t)a->width * a->height * a->channels) == 0;
}

static void test_txt2img_deterministic_per_seed_and_batch_seeds(void) {
    toy ty;
    kiln_sd_components c = toy_components(&ty, 4, 0.5f);
    kiln_image_params p = small_params();
    kiln_image_result r1, r2, r3;
    REQUIRE(kiln__sd_generate(&c, &p, &r1) == KILN_OK);
    REQUIRE(kiln__sd_generate(&c, &p, &r2) == KILN_OK);
    CHECK_EQ_INT(r1.count, 1);
    CHECK_EQ_INT(r1.images[0].width, 64);
    CHECK_EQ_INT(r1.images[0].channels, 3);
    CHECK(same_image(&r1.images[0], &r2.images[0]));
    /* A batch of two from seed 41: its second image is seed 42's. */
    p.seed = 41;
    p.batch_count = 2;
    REQUIRE(kiln__sd_generate(&c, &p, &r3) == KILN_OK);
    CHECK_EQ_INT(r3.count, 2);
    CHECK(same_image(&r3.images[1], &r1.images[0]));
    CHECK(!same_image(&r3.images[0], &r1.images[0]));
    CHECK_CONTAINS(r3.parameters[0], "Seed: 41,");
    CHECK_CONTAINS(r3.parameters[1], "Seed: 42,");
    CHECK_EQ_INT(r3.seed, 41);
    kiln_image_result_free(&r1);
    kiln_image_result_free(&r2);
    kiln_image_result_free(&r3);
    toy_free(&ty);
}

static void test_initial_noise_is_torch_randn_of_the_seed(void) {
    toy ty;
    kiln_sd_components c = toy_components(&ty, 4, 0.5f);
    kiln_image_params p = small_params();
    p.sampler = KILN_IMAGE_SAMPLER_EULER;
    kiln_image_result r;
    REQUIRE(kiln__sd_generate(&c, &p, &r) == KILN_OK);
    REQUIRE(ty.first_x != NULL);
    /* The first UNet input is noise * sigma_0 * c_in(sigma_0). */
    double sig[7];
    REQUIRE(kiln__schedule_sigmas(&ty.levels, KILN_SCHEDULE_NORMAL, 6, sig) == KILN_OK);
    float noise[256];
    kiln_rng rng;
    kiln__rng_init(&rng, KILN_RNG_CPU, 42);
    kiln__rng_randn(&rng, noise, 256);
    double k = sig[0] / sqrt(sig[0] * sig[0] + 1.0);
    double maxd = 0;
    for (int i = 0; i < 256; i++) maxd = fmax(maxd, fabs(ty.first_x[i] - noise[i] * k));
    CHECK(maxd < 1e-5);
    kiln_image_result_free(&r);
    toy_free(&ty);
}

/* The 8-bit value the toy VAE gives for a model-space latent value. */
static int pixel_of(float latent) {
    float v = (latent / SCALE + 1.0f) * 0.5f;
    v = v < 0 ? 0 : v > 1 ? 1 : v;
    return (int)lrintf(v * 255.0f);
}

static void test_cfg_combines_prompt_and_negative(void) {
    toy ty;
    /* pull 1: every denoised estimate is the prompt's target exactly, so
     * Euler ends on uncond + (cond - uncond) * guidance. */
    kiln_sd_components c = toy_components(&ty, 4, 1.0f);
    kiln_image_params p = small_params();
    p.sampler = KILN_IMAGE_SAMPLER_EULER;
    p.prompt = "abcd";
    p.negative_prompt = "ab";
    p.guidance = 3.0f;
    kiln_image_result r;
    REQUIRE(kiln__sd_generate(&c, &p, &r) == KILN_OK);
    CHECK_EQ_INT(ty.unet_calls, 2 * 6);
    float tc[4], tu[4];
    prompt_target("abcd", tc);
    prompt_target("ab", tu);
    for (int ch = 0; ch < 3; ch++) CHECK_EQ_INT(r.images[0].data[ch], pixel_of(tu[ch] + (tc[ch] - tu[ch]) * 3.0f));
    kiln_image_result_free(&r);
    toy_free(&ty);
    /* Guidance 1: one call per step, the prompt's target. */
    c = toy_components(&ty, 4, 1.0f);
    p.guidance = 1.0f;
    REQUIRE(kiln__sd_generate(&c, &p, &r) == KILN_OK);
    CHECK_EQ_INT(ty.unet_calls, 6);
    for (int ch = 0; ch < 3; ch++) CHECK_EQ_INT(r.images[0].data[ch], pixel_of(tc[ch]));
    kiln_image_result_free(&r);
    toy_free(&ty);
}

/* A 64x64 RGB image of 8x8 blocks (what the toy VAE round-trips exactly). */
static kiln_image block_image(void) {
    kiln_image img = {64, 64, 3, malloc(64 * 64 * 3)};
    if (!img.data) return img;
    for (int y = 0; y < 64; y++)
        for (int x = 0; x < 64; x++)
            for (int c = 0; c < 3; c++) img.data[(y * 64 + x) * 3 + c] = (uint8_t)(40 + 20 * (y / 8) + 7 * (x / 8) + 30 * c);
    return img;
}

/* Step callback recording calls; cancels at `cancel_at` (0: never). */
typedef struct steps_seen {
    uint32_t calls;     /* callbacks so far */
    uint32_t total;     /* the total the last call gave */
    uint32_t previews;  /* calls that came with a preview */
    uint32_t cancel_at; /* step at which to return nonzero */
    uint32_t preview_w; /* width of the last preview */
    uint8_t preview_first[3]; /* first pixel of the last preview */
} steps_seen;

static int on_step(void *user, uint32_t index, uint32_t step, uint32_t total, const kiln_image *preview) {
    steps_seen *s = user;
    (void)index;
    s->calls++;
    s->total = total;
    if (preview) {
        s->previews++;
        s->preview_w = preview->width;
        memcpy(s->preview_first, preview->data, 3);
    }
    return s->cancel_at && step == s->cancel_at;
}

static void test_img2img_strength(void) {
    toy ty;
    kiln_sd_components c = toy_components(&ty, 4, 0.5f);
    kiln_image init = block_image();
    REQUIRE(init.data != NULL);
    kiln_image_params p = small_params();
    p.width = p.height = 0; /* from the init image */
    p.init_image = &init;
    p.strength = 0.0f;
    steps_seen seen = {0};
    p.on_step = on_step;
    p.user = &seen;
    kiln_image_result r;
    REQUIRE(kiln__sd_generate(&c, &p, &r) == KILN_OK);
    CHECK(same_image(&r.images[0], &init));
    CHECK_EQ_INT(ty.unet_calls, 0);
    CHECK_EQ_INT(seen.calls, 0);
    CHECK_CONTAINS(r.parameters[0], "Denoising strength: 0,");
    kiln_image_result_free(&r);
    /* strength 0.5 of 10 steps: t_enc = 5, the last 6 steps run (A1111). */
    p.steps = 10;
    p.strength = 0.5f;
    p.sampler = KILN_IMAGE_SAMPLER_EULER;
    REQUIRE(kiln__sd_generate(&c, &p, &r) == KILN_OK);
    CHECK_EQ_INT(seen.calls, 6);
    CHECK_EQ_INT(seen.total, 6);
    CHECK(!same_image(&r.images[0], &init));
    kiln_image_result_free(&r);
    kiln_image_clear(&init);
    toy_free(&ty);
}

/* Mask: the right half (x >= 32) repainted. */
static kiln_image half_mask(void) {
    kiln_image m = {64, 64, 1, malloc(64 * 64)};
    if (m.data)
        for (int i = 0; i < 64 * 64; i++) m.data[i] = (i % 64) >= 32 ? 255 : 0;
    return m;
}

static void check_inpaint(int channels) {
    toy ty;
    kiln_sd_components c = toy_components(&ty, channels, 1.0f);
    kiln_image init = block_image(), mask = half_mask();
    REQUIRE(init.data != NULL && mask.data != NULL);
    kiln_image_params p = small_params();
    p.width = p.height = 0;
    p.init_image = &init;
    p.mask = &mask;
    p.strength = 1.0f;
    p.guidance = 1.0f;
    p.sampler = KILN_IMAGE_SAMPLER_EULER;
    kiln_image_result r;
    REQUIRE(kiln__sd_generate(&c, &p, &r) == KILN_OK);
    int kept = 1, painted = 1;
    float t[4];
    prompt_target(p.prompt, t);
    for (int y = 0; y < 64; y++)
        for (int x = 0; x < 64; x++)
            for (int ch = 0; ch < 3; ch++) {
                size_t i = ((size_t)y * 64 + x) * 3 + ch;
                if (x < 32) kept &= r.images[0].data[i] == init.data[i];
                else painted &= r.images[0].data[i] == pixel_of(t[ch]);
            }
    CHECK(kept);
    CHECK(painted);
    if (channels == 9) {
        /* Channel 4 of the UNet input is the mask at latent size. */
        REQUIRE(ty.mask_channel != NULL);
        int ok = 1;
        for (int i = 0; i < 64; i++) ok &= ty.mask_channel[i] == ((i % 8) >= 4 ? 1.0f : 0.0f);
        CHECK(ok);
    }
    kiln_image_result_free(&r);
    kiln_image_clear(&init);
    kiln_image_clear(&mask);
    toy_free(&ty);
}

static void test_inpainting_keeps_unmasked_pixels(void) {
    check_inpaint(4);
    check_inpaint(9);
}

static void test_cancel_and_previews(void) {
    toy ty;
    kiln_sd_components c = toy_components(&ty, 4, 0.5f);
    kiln_image_params p = small_params();
    steps_seen seen = {0};
    p.on_step = on_step;
    p.user = &seen;
    p.preview_every = 2;
    kiln_image_result r;
    REQUIRE(kiln__sd_generate(&c, &p, &r) == KILN_OK);
    CHECK_EQ_INT(seen.calls, 6);
    CHECK_EQ_INT(seen.previews, 3);
    CHECK_EQ_INT(seen.preview_w, 8);
    kiln_image_result_free(&r);
    /* Full VAE previews: full size; with pull 1 every denoised estimate is
     * the prompt's target, so the last preview shows its colour. */
    toy_free(&ty);
    c = toy_components(&ty, 4, 1.0f);
    seen = (steps_seen){0};
    p.preview_vae = true;
    p.guidance = 1.0f; /* no CFG: the denoised estimate is the target itself */
    REQUIRE(kiln__sd_generate(&c, &p, &r) == KILN_OK);
    CHECK_EQ_INT(seen.previews, 3);
    CHECK_EQ_INT(seen.preview_w, 64);
    float t[4];
    prompt_target(p.prompt, t);
    for (int ch = 0; ch < 3; ch++) CHECK_EQ_INT(seen.preview_first[ch], pixel_of(t[ch]));
    kiln_image_result_free(&r);
    p.preview_vae = false;
    seen = (steps_seen){0};
    seen.cancel_at = 3;
    CHECK(kiln__sd_generate(&c, &p, &r) == KILN_ERR_CANCELLED);
    CHECK_EQ_INT(seen.calls, 3);
    CHECK(r.images == NULL && r.count == 0);
    CHECK_CONTAINS(kiln_last_error(), "cancelled");
    toy_free(&ty);
}

static void test_bad_requests_rejected(void) {
    toy ty;
    kiln_sd_components c = toy_components(&ty, 4, 0.5f);
    kiln_image_result r;
    kiln_image_params p = small_params();
    p.width = 100;
    CHECK(kiln__sd_generate(&c, &p, &r) == KILN_ERR_INVALID_ARG);
    CHECK_CONTAINS(kiln_last_error(), "not a multiple of 8");
    p = small_params();
    p.width = 4096;
    CHECK(kiln__sd_generate(&c, &p, &r) == KILN_ERR_INVALID_ARG);
    p = small_params();
    p.sampler = (kiln_image_sampler)99;
    CHECK(kiln__sd_generate(&c, &p, &r) == KILN_ERR_INVALID_ARG);
    CHECK_CONTAINS(kiln_last_error(), "unknown sampler");
    p = small_params();
    p.prompt = NULL;
    CHECK(kiln__sd_generate(&c, &p, &r) == KILN_ERR_INVALID_ARG);
    p = small_params();
    p.batch_count = 65;
    CHECK(kiln__sd_generate(&c, &p, &r) == KILN_ERR_INVALID_ARG);
    p = small_params();
    p.steps = 100000;
    CHECK(kiln__sd_generate(&c, &p, &r) == KILN_ERR_INVALID_ARG);
    kiln_image init = block_image(), mask = half_mask();
    REQUIRE(init.data != NULL && mask.data != NULL);
    p = small_params();
    p.mask = &mask;
    CHECK(kiln__sd_generate(&c, &p, &r) == KILN_ERR_INVALID_ARG);
    CHECK_CONTAINS(kiln_last_error(), "mask needs an init image");
    p.init_image = &init;
    mask.width = 32;
    CHECK(kiln__sd_generate(&c, &p, &r) == KILN_ERR_INVALID_ARG);
    CHECK_CONTAINS(kiln_last_error(), "mask is 32x64 but the init image is 64x64");
    mask.width = 64;
    mask.channels = 3;
    CHECK(kiln__sd_generate(&c, &p, &r) == KILN_ERR_INVALID_ARG);
    mask.channels = 1;
    p.width = 128;
    CHECK(kiln__sd_generate(&c, &p, &r) == KILN_ERR_INVALID_ARG);
    CHECK_CONTAINS(kiln_last_error(), "init image is 64x64");
    p.width = 0;
    p.strength = 1.5f;
    CHECK(kiln__sd_generate(&c, &p, &r) == KILN_ERR_INVALID_ARG);
    p.strength = 0.5f;
    c.vae_encode = NULL;
    CHECK(kiln__sd_generate(&c, &p, &r) == KILN_ERR_UNSUPPORTED);
    CHECK(r.images == NULL);
    kiln_image_clear(&init);
    kiln_image_clear(&mask);
    toy_free(&ty);
}

static void test_names_and_defaults(void) {
    kiln_image_sampler s;
    CHECK(kiln_image_sampler_from_name("Euler a", &s) && s == KILN_IMAGE_SAMPLER_EULER_A);
    CHECK(kiln_image_sampler_from_name("dpmpp_2m_sde", &s) && s == KILN_IMAGE_SAMPLER_DPMPP_2M_SDE);
    CHECK(kiln_image_sampler_from_name("DPM++ 2M", &s) && s == KILN_IMAGE_SAMPLER_DPMPP_2M);
    CHECK(!kiln_image_sampler_from_name("nope", &s));
    CHECK_EQ_STR(kiln_image_sampler_name(KILN_IMAGE_SAMPLER_LCM), "lcm");
    CHECK_EQ_STR(kiln_image_sampler_name((kiln_image_sampler)77), "unknown");
    kiln_image_schedule sc;
    CHECK(kiln_image_schedule_from_name("karras", &sc) && sc == KILN_IMAGE_SCHEDULE_KARRAS);
    CHECK(kiln_image_schedule_from_name("SGM Uniform", &sc) && sc == KILN_IMAGE_SCHEDULE_SGM_UNIFORM);
    CHECK(!kiln_image_schedule_from_name("linear", &sc));
    kiln_image_params p = kiln_image_default_params();
    CHECK_EQ_INT(p.sampler, KILN_IMAGE_SAMPLER_EULER_A);
    CHECK_EQ_INT(p.batch_count, 1);
    CHECK(p.guidance < 0);
    static char sentinel; /* any non-NULL value, which the call must overwrite */
    kiln_image_model *m = (kiln_image_model *)(void *)&sentinel;
    CHECK(kiln_image_load("x.safetensors", NULL, &m) == KILN_ERR_NOT_FOUND);
    CHECK(m == NULL);
    CHECK_CONTAINS(kiln_last_error(), "x.safetensors");
    kiln_image_model_free(NULL);
    kiln_image_result_free(NULL);
    kiln_image_clear(NULL);
}

static void test_parameters_text_a1111_format(void) {
    kiln_image_params p = kiln_image_default_params();
    p.prompt = "a lighthouse at dusk";
    p.negative_prompt = "blurry";
    p.steps = 20;
    p.schedule = KILN_IMAGE_SCHEDULE_KARRAS;
    p.guidance = 7.0f;
    p.seed = 42;
    p.width = p.height = 512;
    p.rng = KILN_IMAGE_RNG_CUDA;
    char *s;
    REQUIRE(kiln__sd_parameters_text(&p, "sd15", 0, &s) == KILN_OK);
    CHECK_EQ_STR(s, "a lighthouse at dusk\nNegative prompt: blurry\nSteps: 20, Sampler: Euler a, Schedule type: "
                    "Karras, CFG scale: 7, Seed: 42, Size: 512x512, Model: sd15");
    free(s);
    kiln_image init = {512, 512, 3, NULL};
    p.negative_prompt = NULL;
    p.schedule = KILN_IMAGE_SCHEDULE_NORMAL;
    p.sampler = KILN_IMAGE_SAMPLER_DPMPP_2M;
    p.guidance = 7.5f;
    p.init_image = &init;
    p.strength = 0.75f;
    p.clip_skip = 2;
    p.rng = KILN_IMAGE_RNG_CPU;
    REQUIRE(kiln__sd_parameters_text(&p, NULL, 3, &s) == KILN_OK);
    CHECK_EQ_STR(s, "a lighthouse at dusk\nSteps: 20, Sampler: DPM++ 2M, CFG scale: 7.5, Seed: 45, Size: 512x512, "
                    "Denoising strength: 0.75, Clip skip: 2, RNG: CPU");
    free(s);
}

static void test_cheap_preview_matrix(void) {
    /* One latent pixel per unit vector; expected = round((row + 1) / 2 * 255)
     * of A1111's matrix rows, worked by hand. */
    float lat[4 * 4] = {0};
    for (int l = 0; l < 4; l++) lat[l * 4 + l] = 1.0f;
    uint8_t rgb[4 * 3];
    kiln__sd_latent_preview(lat, 2, 2, rgb);
    static const uint8_t want[12] = {165, 154, 154, 151, 164, 150, 107, 152, 161, 104, 93, 67};
    CHECK(memcmp(rgb, want, 12) == 0);
    for (int i = 0; i < 12; i++)
        if (rgb[i] != want[i]) fprintf(stderr, "  preview[%d] = %d, want %d\n", i, rgb[i], want[i]);
}

int main(void) {
    RUN(test_txt2img_deterministic_per_seed_and_batch_seeds);
    RUN(test_initial_noise_is_torch_randn_of_the_seed);
    RUN(test_cfg_combines_prompt_and_negative);
    RUN(test_img2img_strength);
    RUN(test_inpainting_keeps_unmasked_pixels);
    RUN(test_cancel_and_previews);
    RUN(test_bad_requests_rejected);
    RUN(test_names_and_defaults);
    RUN(test_parameters_text_a1111_format);
    RUN(test_cheap_preview_matrix);
    return TEST_REPORT();
}
