/* tests/slow/test_sd_vae_full.c - the VAE at full SD size (KL-f8: channels
 * 128/256/512/512, 32 groups, scale 8, random weights) against diffusers:
 * decode of a 16x16 latent, encode of a 128x128 image. Data from
 * tools/sd_goldens/make.sh --full-size DIR, read from $KILN_SD_FULL_DIR
 * (skipped when unset or absent). */
#include <stdlib.h>
#include <time.h>

#include "core/threadpool.h"
#include "formats/weights.h"
#include "image/vae.h"
#include "kiln/kiln.h"
#include "sd_golden.h"
#include "test.h"

static double seconds_since(const struct timespec *a) {
    struct timespec b;
    clock_gettime(CLOCK_MONOTONIC, &b);
    return (double)(b.tv_sec - a->tv_sec) + (double)(b.tv_nsec - a->tv_nsec) / 1e9;
}

static void test_full_size_vae(void) {
    const char *dir = getenv("KILN_SD_FULL_DIR");
    char path[1024];
    if (!dir) SKIP_TEST("KILN_SD_FULL_DIR not set (tools/sd_goldens/make.sh --full-size DIR)");
    snprintf(path, sizeof path, "%s/vae/diffusion_pytorch_model.safetensors", dir);
    struct kiln_weights *w = NULL;
    if (kiln__weights_open(path, &w) != KILN_OK) SKIP_TEST("%s: %s", path, kiln_last_error());
    struct kiln_vae_opts opts;
    snprintf(path, sizeof path, "%s/vae/config.json", dir);
    CHECK(kiln__vae_opts_json(path, &opts) == KILN_OK);
    struct kiln_vae *v = NULL;
    CHECK(kiln__vae_load(w, "", &opts, &v) == KILN_OK);
    const size_t n_img = 3 * 128 * 128, n_lat = 4 * 16 * 16;
    float *lat = sd_read_f32(dir, "golden/vae_latent.f32", n_lat);
    float *dec = sd_read_f32(dir, "golden/vae_decoded.f32", n_img);
    float *img = sd_read_f32(dir, "golden/vae_image.f32", n_img);
    float *mean = sd_read_f32(dir, "golden/vae_mean.f32", n_lat);
    float *out = malloc(n_img * sizeof *out), *lv = malloc(n_lat * sizeof *lv);
    kiln_pool *pool = kiln__pool_create(0);
    if (v && lat && dec && img && mean && out && lv && pool) {
        CHECK_EQ_INT(kiln__vae_scale(v), 8);
        struct timespec a;
        clock_gettime(CLOCK_MONOTONIC, &a);
        CHECK(kiln__vae_decode(v, pool, lat, 16, 16, out) == KILN_OK);
        double e = sd_rel_err(out, dec, n_img);
        fprintf(stderr, "  full-size VAE decode 16x16 -> 128x128: rel err %.3g, %.2f s\n", e, seconds_since(&a));
        CHECK(e < SD_REL_ERR);
        clock_gettime(CLOCK_MONOTONIC, &a);
        CHECK(kiln__vae_encode(v, pool, img, 128, 128, out, lv) == KILN_OK);
        e = sd_rel_err(out, mean, n_lat);
        fprintf(stderr, "  full-size VAE encode 128x128: mean rel err %.3g, %.2f s\n", e, seconds_since(&a));
        CHECK(e < SD_REL_ERR);
    } else {
        CHECK(0);
    }
    kiln__pool_free(pool);
    free(lat);
    free(dec);
    free(img);
    free(mean);
    free(out);
    free(lv);
    kiln__vae_free(v);
    kiln__weights_free(w);
}

int main(void) {
    RUN(test_full_size_vae);
    return TEST_REPORT();
}
