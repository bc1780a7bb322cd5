/* tests/model/test_sd_ldm.c - the SD networks read from a single-file
 * checkpoint in the original ldm layout (tests/data/sd/tiny-sd2-ldm.
 * safetensors: the tiny-sd2 weights under model.diffusion_model.,
 * first_stage_model. and OpenCLIP's cond_stage_model.model. names, checked
 * at golden-making time by diffusers' own converters) give the goldens that
 * diffusers computed from the diffusers folder. */
#include <stdlib.h>

#include "core/threadpool.h"
#include "formats/weights.h"
#include "image/clip_text.h"
#include "image/unet.h"
#include "image/vae.h"
#include "kiln/kiln.h"
#include "sd_golden.h"
#include "test.h"

#define MODEL "tiny-sd2"

static struct kiln_weights *open_ldm(void) {
    struct kiln_weights *w = NULL;
    if (kiln__weights_open(SD_DATA "/tiny-sd2-ldm.safetensors", &w) != KILN_OK)
        fprintf(stderr, "  %s\n", kiln_last_error());
    return w;
}

/* OpenCLIP text encoder: last layer and penultimate (SD 2.x's choice). */
static void test_openclip_text(void) {
    struct kiln_weights *w = open_ldm();
    REQUIRE(w);
    struct kiln_clip_text_opts opts = {2, 1, 1e-5f};
    struct kiln_clip_text *m = NULL;
    if (kiln__clip_text_load(w, "cond_stage_model.model.", &opts, &m) != KILN_OK)
        fprintf(stderr, "  %s\n", kiln_last_error());
    int32_t ids[77];
    size_t n1 = 0, n2 = 0;
    float *last = sd_golden(MODEL, "clip_last", &n1), *skip2 = sd_golden(MODEL, "clip_skip2", &n2);
    float *out = malloc(77 * 32 * sizeof *out);
    if (m && last && skip2 && out && n1 == 77 * 32 && sd_golden_ints(MODEL, "clip_ids", ids, 77) == 77) {
        CHECK_EQ_INT(kiln__clip_text_layers(m), 3);
        CHECK(kiln__clip_text_encode(m, NULL, ids, 77, 1, out) == KILN_OK);
        CHECK(sd_rel_err(out, last, n1) < SD_REL_ERR);
        CHECK(kiln__clip_text_encode(m, NULL, ids, 77, 2, out) == KILN_OK);
        CHECK(sd_rel_err(out, skip2, n2) < SD_REL_ERR);
    } else {
        CHECK(0);
    }
    free(out);
    free(last);
    free(skip2);
    kiln__clip_text_free(m);
    kiln__weights_free(w);
}

/* UNet (linear projections, 9 channels) from input_blocks/middle_block/output_blocks names. */
static void test_ldm_unet(void) {
    struct kiln_weights *w = open_ldm();
    REQUIRE(w);
    struct kiln_unet_opts opts;
    kiln__unet_opts_sd1(&opts);
    opts.head_channels = 8; /* the tiny model's 16 and 32 channels with 2 and 4 heads */
    opts.norm_groups = 8;
    struct kiln_unet *u = NULL;
    if (kiln__unet_load(w, "model.diffusion_model.", &opts, &u) != KILN_OK)
        fprintf(stderr, "  %s\n", kiln_last_error());
    size_t nc = 0, nx = 0, no = 0;
    float *ctx = sd_golden(MODEL, "unet_context", &nc);
    float *x = sd_golden(MODEL, "unet_x_500", &nx), *ref = sd_golden(MODEL, "unet_out_500", &no);
    float *out = malloc(4 * 6 * 8 * sizeof *out);
    kiln_pool *pool = kiln__pool_create(2);
    if (u && ctx && x && ref && out && pool && no == 4 * 6 * 8) {
        CHECK_EQ_INT(kiln__unet_in_channels(u), 9);
        CHECK(kiln__unet_eval(u, pool, x, 6, 8, 500.0f, ctx, 77, out) == KILN_OK);
        double e = sd_rel_err(out, ref, no);
        fprintf(stderr, "  ldm unet t=500: rel err %.3g\n", e);
        CHECK(e < SD_REL_ERR);
    } else {
        CHECK(0);
    }
    kiln__pool_free(pool);
    free(out);
    free(ctx);
    free(x);
    free(ref);
    kiln__unet_free(u);
    kiln__weights_free(w);
}

/* VAE from encoder.down/decoder.up/mid.attn_1 names (1x1-conv attention). */
static void test_ldm_vae(void) {
    struct kiln_weights *w = open_ldm();
    REQUIRE(w);
    struct kiln_vae_opts opts;
    kiln__vae_opts_sd(&opts);
    opts.norm_groups = 4;
    struct kiln_vae *v = NULL;
    if (kiln__vae_load(w, "first_stage_model.", &opts, &v) != KILN_OK) fprintf(stderr, "  %s\n", kiln_last_error());
    size_t nl = 0, nd = 0, ni = 0, nm = 0;
    float *lat = sd_golden(MODEL, "vae_latent", &nl), *dec = sd_golden(MODEL, "vae_decoded", &nd);
    float *img = sd_golden(MODEL, "vae_image", &ni), *mean = sd_golden(MODEL, "vae_mean", &nm);
    float *out = malloc(3 * 8 * 12 * sizeof *out), *lv = malloc(4 * 4 * 6 * sizeof *lv);
    if (v && lat && dec && img && mean && out && lv && nd == 3 * 8 * 12 && nm == 4 * 4 * 6) {
        CHECK(kiln__vae_decode(v, NULL, lat, 4, 6, out) == KILN_OK);
        CHECK(sd_rel_err(out, dec, nd) < SD_REL_ERR);
        CHECK(kiln__vae_encode(v, NULL, img, 8, 12, out, lv) == KILN_OK);
        CHECK(sd_rel_err(out, mean, nm) < SD_REL_ERR);
    } else {
        CHECK(0);
    }
    free(out);
    free(lv);
    free(lat);
    free(dec);
    free(img);
    free(mean);
    kiln__vae_free(v);
    kiln__weights_free(w);
}

int main(void) {
    RUN(test_openclip_text);
    RUN(test_ldm_unet);
    RUN(test_ldm_vae);
    return TEST_REPORT();
}
