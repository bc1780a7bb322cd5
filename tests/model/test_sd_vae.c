/* tests/model/test_sd_vae.c - the VAE against diffusers' AutoencoderKL on
 * the tiny random-weight models of tests/data/sd (two configurations:
 * 16/32 channels with two resnets per level, and 8/8 channels with one):
 * decode of a latent, encode (mean and log-variance) of an image, from the
 * diffusers folder; bad sizes refused. Tiled decoding against diffusers'
 * AutoencoderKL.tiled_decode (tools/sd_goldens/make_tiled_golden.py), and
 * the KILN_VAE_TILE modes of kiln__vae_decode. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/threadpool.h"
#include "formats/weights.h"
#include "image/vae.h"
#include "kiln/kiln.h"
#include "sd_golden.h"
#include "test.h"

static void check_model(const char *model, int threads) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s", SD_DATA, model);
    struct kiln_weights *w = NULL;
    REQUIRE(kiln__weights_open(path, &w) == KILN_OK);
    struct kiln_vae_opts opts;
    snprintf(path, sizeof path, "%s/%s/vae/config.json", SD_DATA, model);
    CHECK(kiln__vae_opts_json(path, &opts) == KILN_OK);
    struct kiln_vae *v = NULL;
    if (kiln__vae_load(w, "vae/", &opts, &v) != KILN_OK) fprintf(stderr, "  %s\n", kiln_last_error());
    kiln_pool *pool = kiln__pool_create(threads);
    size_t n_lat = 0, n_dec = 0, n_img = 0, n_mean = 0, n_lv = 0;
    float *lat = sd_golden(model, "vae_latent", &n_lat);
    float *dec = sd_golden(model, "vae_decoded", &n_dec);
    float *img = sd_golden(model, "vae_image", &n_img);
    float *mean = sd_golden(model, "vae_mean", &n_mean);
    float *lv = sd_golden(model, "vae_logvar", &n_lv);
    float *out = malloc(3 * 8 * 12 * sizeof *out), *out2 = malloc(4 * 4 * 6 * sizeof *out2);
    if (v && pool && lat && dec && img && mean && lv && out && out2) {
        CHECK_EQ_INT(kiln__vae_scale(v), 2);
        CHECK_EQ_INT(kiln__vae_latent_channels(v), 4);
        CHECK(kiln__vae_has_encoder(v));
        REQUIRE(n_lat == 4 * 4 * 6 && n_dec == 3 * 8 * 12 && n_mean == 4 * 4 * 6 && n_lv == n_mean);
        CHECK(kiln__vae_decode(v, pool, lat, 4, 6, out) == KILN_OK);
        double e = sd_rel_err(out, dec, n_dec);
        fprintf(stderr, "  %s decode: rel err %.3g\n", model, e);
        CHECK(e < SD_REL_ERR);
        CHECK(kiln__vae_encode(v, pool, img, 8, 12, out, out2) == KILN_OK);
        e = sd_rel_err(out, mean, n_mean);
        double e2 = sd_rel_err(out2, lv, n_lv);
        fprintf(stderr, "  %s encode: mean rel err %.3g, logvar %.3g\n", model, e, e2);
        CHECK(e < SD_REL_ERR);
        CHECK(e2 < SD_REL_ERR);
        CHECK(kiln__vae_encode(v, pool, img, 7, 12, out, out2) == KILN_ERR_INVALID_ARG);
        CHECK(kiln__vae_decode(v, pool, lat, 0, 6, out) == KILN_ERR_INVALID_ARG);
    } else {
        CHECK(0);
    }
    free(out);
    free(out2);
    free(lat);
    free(dec);
    free(img);
    free(mean);
    free(lv);
    kiln__pool_free(pool);
    kiln__vae_free(v);
    kiln__weights_free(w);
}

static void test_sd15_vae(void) { check_model("tiny-sd15", 2); }
static void test_small_vae(void) { check_model("tiny-sd2", 1); }

/* No VAE under the prefix; SD's 32 groups on the tiny model's 16 channels. */
static void test_load_errors(void) {
    struct kiln_weights *w = NULL;
    REQUIRE(kiln__weights_open(SD_DATA "/tiny-sd15", &w) == KILN_OK);
    struct kiln_vae_opts opts;
    kiln__vae_opts_sd(&opts);
    struct kiln_vae *v = NULL;
    CHECK(kiln__vae_load(w, "unet/", &opts, &v) == KILN_ERR_FORMAT);
    CHECK(v == NULL);
    CHECK(kiln__vae_load(w, "vae/", &opts, &v) == KILN_ERR_FORMAT);
    CHECK(v == NULL);
    kiln__weights_free(w);
}

/* Tiled decoding of a 13x20 latent (8x8 tiles: partial tiles at the
 * bottom and the right) against diffusers' tiled decode; the modes. */
static void test_tiled_decode(void) {
    char path[512];
    snprintf(path, sizeof path, "%s/tiny-sd15", SD_DATA);
    struct kiln_weights *w = NULL;
    REQUIRE(kiln__weights_open(path, &w) == KILN_OK);
    struct kiln_vae_opts opts;
    snprintf(path, sizeof path, "%s/tiny-sd15/vae/config.json", SD_DATA);
    CHECK(kiln__vae_opts_json(path, &opts) == KILN_OK);
    CHECK_EQ_INT(opts.sample_size, 16);
    struct kiln_vae *v = NULL;
    CHECK(kiln__vae_load(w, "vae/", &opts, &v) == KILN_OK);
    kiln_pool *pool = kiln__pool_create(2);
    size_t n_lat = 0, n_dec = 0;
    float *lat = sd_golden("tiny-sd15", "vae_tiled_latent", &n_lat);
    float *dec = sd_golden("tiny-sd15", "vae_tiled_decoded", &n_dec);
    size_t n = 3 * 26 * 40;
    float *a = malloc(n * sizeof *a), *b = malloc(n * sizeof *b);
    if (v && pool && lat && dec && a && b && n_lat == 4 * 13 * 20 && n_dec == n) {
        CHECK_EQ_INT(kiln__vae_tile(v), 8);
        CHECK(kiln__vae_decode_tiled(v, pool, lat, 13, 20, 8, a) == KILN_OK);
        double e = sd_rel_err(a, dec, n);
        fprintf(stderr, "  tiled decode: rel err %.3g against diffusers' tiled_decode\n", e);
        CHECK(e < SD_REL_ERR);
        /* Untiled: not the same image (GroupNorm statistics per tile). */
        CHECK(setenv("KILN_VAE_TILE", "off", 1) == 0);
        CHECK(kiln__vae_decode(v, pool, lat, 13, 20, b) == KILN_OK);
        fprintf(stderr, "  tiled vs whole decode: rel diff %.3g (tiny random VAE)\n", sd_rel_err(a, b, n));
        /* "on" tiles, exactly as the tiled call. */
        CHECK(setenv("KILN_VAE_TILE", "on", 1) == 0);
        CHECK(kiln__vae_decode(v, pool, lat, 13, 20, b) == KILN_OK);
        CHECK(memcmp(a, b, n * sizeof *a) == 0);
        /* "auto" (and unset) tiles only above 128 x 128 latent pixels: not 13x20. */
        float *c = malloc(n * sizeof *c);
        REQUIRE(c);
        CHECK(setenv("KILN_VAE_TILE", "off", 1) == 0);
        CHECK(kiln__vae_decode(v, pool, lat, 13, 20, c) == KILN_OK);
        CHECK(setenv("KILN_VAE_TILE", "auto", 1) == 0);
        CHECK(kiln__vae_decode(v, pool, lat, 13, 20, b) == KILN_OK);
        CHECK(memcmp(c, b, n * sizeof *c) == 0);
        free(c);
        /* A latent no larger than one tile is decoded whole even with
         * "on" (as diffusers' _decode, which calls tiled_decode only for
         * larger latents). */
        CHECK(setenv("KILN_VAE_TILE", "on", 1) == 0);
        CHECK(kiln__vae_decode(v, pool, lat, 8, 8, a) == KILN_OK);
        CHECK(setenv("KILN_VAE_TILE", "off", 1) == 0);
        CHECK(kiln__vae_decode(v, pool, lat, 8, 8, b) == KILN_OK);
        CHECK(memcmp(a, b, 3 * 16 * 16 * sizeof *a) == 0);
        CHECK(setenv("KILN_VAE_TILE", "sometimes", 1) == 0);
        CHECK(kiln__vae_decode(v, pool, lat, 8, 8, b) == KILN_ERR_INVALID_ARG);
        CHECK(unsetenv("KILN_VAE_TILE") == 0);
        CHECK(kiln__vae_decode_tiled(v, pool, lat, 8, 8, 1, a) == KILN_ERR_INVALID_ARG);
    } else {
        CHECK(0);
    }
    free(a);
    free(b);
    free(lat);
    free(dec);
    kiln__pool_free(pool);
    kiln__vae_free(v);
    kiln__weights_free(w);
}

int main(void) {
    RUN(test_sd15_vae);
    RUN(test_small_vae);
    RUN(test_load_errors);
    RUN(test_tiled_decode);
    return TEST_REPORT();
}
