/* tests/slow/test_sd_unet_full.c - the UNet at full SD 1.5 size (860M
 * random parameters, diffusers' default structure) against diffusers on a
 * 32x32 latent. The model is too big to commit: tools/sd_goldens/make.sh
 * --full-size DIR writes it, and this test reads DIR from the environment
 * variable KILN_SD_FULL_DIR (skipped when unset or absent). */
#include <stdlib.h>
#include <time.h>

#include "core/threadpool.h"
#include "formats/weights.h"
#include "image/unet.h"
#include "kiln/kiln.h"
#include "sd_golden.h"
#include "test.h"

static void test_full_size_unet(void) {
    const char *dir = getenv("KILN_SD_FULL_DIR");
    char path[1024];
    if (!dir) SKIP_TEST("KILN_SD_FULL_DIR not set (tools/sd_goldens/make.sh --full-size DIR)");
    snprintf(path, sizeof path, "%s/unet/diffusion_pytorch_model.safetensors", dir);
    struct kiln_weights *w = NULL;
    if (kiln__weights_open(path, &w) != KILN_OK) SKIP_TEST("%s: %s", path, kiln_last_error());
    struct kiln_unet_opts opts;
    snprintf(path, sizeof path, "%s/unet/config.json", dir);
    CHECK(kiln__unet_opts_json(path, &opts) == KILN_OK);
    CHECK_EQ_INT(opts.heads[0], 8);
    struct kiln_unet *u = NULL;
    CHECK(kiln__unet_load(w, "", &opts, &u) == KILN_OK);
    float *x = sd_read_f32(dir, "golden/x.f32", 4 * 32 * 32), *ctx = sd_read_f32(dir, "golden/context.f32", 77 * 768);
    float *ref = sd_read_f32(dir, "golden/out_700.f32", 4 * 32 * 32), *out = malloc(4 * 32 * 32 * sizeof *out);
    kiln_pool *pool = kiln__pool_create(0);
    if (u && x && ctx && ref && out && pool) {
        CHECK_EQ_INT(kiln__unet_context_dim(u), 768);
        CHECK_EQ_INT(kiln__unet_size_multiple(u), 8);
        struct timespec a, b;
        clock_gettime(CLOCK_MONOTONIC, &a);
        CHECK(kiln__unet_eval(u, pool, x, 32, 32, 700.0f, ctx, 77, out) == KILN_OK);
        clock_gettime(CLOCK_MONOTONIC, &b);
        double e = sd_rel_err(out, ref, 4 * 32 * 32);
        fprintf(stderr, "  full-size UNet 32x32: rel err %.3g, %.2f s on %d threads\n", e,
                (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) / 1e9, kiln__pool_size(pool));
        CHECK(e < SD_REL_ERR);
    } else {
        CHECK(0);
    }
    kiln__pool_free(pool);
    free(x);
    free(ctx);
    free(ref);
    free(out);
    kiln__unet_free(u);
    kiln__weights_free(w);
}

int main(void) {
    RUN(test_full_size_unet);
    return TEST_REPORT();
}
