/* tests/model/test_sd_unet.c - the UNet against diffusers'
 * UNet2DConditionModel on the tiny random-weight models of tests/data/sd:
 * SD 1.x shape (conv projections, 2 heads per level, two resnets per level)
 * and SD 2.x inpaint shape (9 input channels, linear projections, heads
 * per level from a list), at timestep 999 on 8x8 and 500 on 6x8 latents,
 * from the diffusers folders; a batch of two gives each image's own result
 * bit for bit; bad arguments refused. */
#include <stdlib.h>
#include <string.h>

#include "core/threadpool.h"
#include "formats/weights.h"
#include "image/unet.h"
#include "kiln/kiln.h"
#include "sd_golden.h"
#include "test.h"

/* A batch of two (the input as given with the context, and the input
 * mirrored with the context negated) gives each image exactly what its
 * own evaluation gives. */
static void check_batch(const struct kiln_unet *u, kiln_pool *pool, const float *x, int h, int w, float t,
                        const float *ctx, size_t n_ctx_vals) {
    size_t nx = (size_t)kiln__unet_in_channels(u) * (size_t)h * (size_t)w, no = 4 * (size_t)h * (size_t)w;
    float *xs = malloc(2 * nx * sizeof *xs), *ctx2 = malloc(n_ctx_vals * sizeof *ctx2);
    float *one = malloc(2 * no * sizeof *one), *both = malloc(2 * no * sizeof *both);
    REQUIRE(xs && ctx2 && one && both);
    for (size_t i = 0; i < nx; i++) xs[i] = x[i], xs[nx + i] = x[nx - 1 - i];
    for (size_t i = 0; i < n_ctx_vals; i++) ctx2[i] = -ctx[i];
    const float *cs[2] = {ctx, ctx2};
    CHECK(kiln__unet_eval(u, pool, xs, h, w, t, ctx, 77, one) == KILN_OK);
    CHECK(kiln__unet_eval(u, pool, xs + nx, h, w, t, ctx2, 77, one + no) == KILN_OK);
    CHECK(kiln__unet_eval_batch(u, pool, 2, xs, h, w, t, cs, 77, both) == KILN_OK);
    CHECK(memcmp(one, both, 2 * no * sizeof *one) == 0);
    /* The two halves differ: the test would see a swapped or repeated image. */
    CHECK(memcmp(one, one + no, no * sizeof *one) != 0);
    free(xs);
    free(ctx2);
    free(one);
    free(both);
}

static void check_model(const char *model, int in_c, int threads) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s", SD_DATA, model);
    struct kiln_weights *w = NULL;
    REQUIRE(kiln__weights_open(path, &w) == KILN_OK);
    struct kiln_unet_opts opts;
    snprintf(path, sizeof path, "%s/%s/unet/config.json", SD_DATA, model);
    CHECK(kiln__unet_opts_json(path, &opts) == KILN_OK);
    struct kiln_unet *u = NULL;
    if (kiln__unet_load(w, "unet/", &opts, &u) != KILN_OK) fprintf(stderr, "  %s\n", kiln_last_error());
    kiln_pool *pool = kiln__pool_create(threads);
    size_t n_ctx = 0;
    float *ctx = sd_golden(model, "unet_context", &n_ctx);
    float *out = malloc(4 * 8 * 8 * sizeof *out);
    if (u && pool && ctx && out) {
        CHECK_EQ_INT(kiln__unet_in_channels(u), in_c);
        CHECK_EQ_INT(kiln__unet_out_channels(u), 4);
        CHECK_EQ_INT(kiln__unet_context_dim(u), 32);
        CHECK_EQ_INT(kiln__unet_size_multiple(u), 2);
        static const struct {
            int t, h, w; /* timestep and latent size of a golden */
        } cases[] = {{999, 8, 8}, {500, 6, 8}};
        for (int c = 0; c < 2; c++) {
            char xn[32], on[32];
            snprintf(xn, sizeof xn, "unet_x_%d", cases[c].t);
            snprintf(on, sizeof on, "unet_out_%d", cases[c].t);
            size_t n_x = 0, n_o = 0;
            float *x = sd_golden(model, xn, &n_x), *ref = sd_golden(model, on, &n_o);
            size_t hw = (size_t)cases[c].h * (size_t)cases[c].w;
            if (x && ref && n_x == (size_t)in_c * hw && n_o == 4 * hw) {
                CHECK(kiln__unet_eval(u, pool, x, cases[c].h, cases[c].w, (float)cases[c].t, ctx, 77, out) ==
                      KILN_OK);
                double e = sd_rel_err(out, ref, n_o);
                fprintf(stderr, "  %s t=%d %dx%d: rel err %.3g\n", model, cases[c].t, cases[c].h, cases[c].w, e);
                CHECK(e < SD_REL_ERR);
            } else {
                CHECK(0);
            }
            if (x && n_x == (size_t)in_c * hw) check_batch(u, pool, x, cases[c].h, cases[c].w, (float)cases[c].t,
                                                           ctx, n_ctx);
            free(x);
            free(ref);
        }
        const float *cs[1] = {ctx};
        CHECK(kiln__unet_eval_batch(u, pool, 0, out, 8, 8, 1.0f, cs, 77, out) == KILN_ERR_INVALID_ARG);
        CHECK(kiln__unet_eval(u, pool, out, 0, 8, 1.0f, ctx, 77, out) == KILN_ERR_INVALID_ARG);
        CHECK(kiln__unet_eval(u, pool, out, 8, 8, 1.0f, ctx, 0, out) == KILN_ERR_INVALID_ARG);
    } else {
        CHECK(0);
    }
    free(out);
    free(ctx);
    kiln__pool_free(pool);
    kiln__unet_free(u);
    kiln__weights_free(w);
}

static void test_sd15_shape(void) { check_model("tiny-sd15", 4, 2); }
static void test_sd2_inpaint_shape(void) { check_model("tiny-sd2", 9, 1); }

/* No UNet under the prefix; GroupNorm groups (SD's 32) that do not divide
 * the tiny model's 16 channels; heads that do not divide the width. */
static void test_load_errors(void) {
    struct kiln_weights *w = NULL;
    REQUIRE(kiln__weights_open(SD_DATA "/tiny-sd15", &w) == KILN_OK);
    struct kiln_unet_opts opts;
    kiln__unet_opts_sd1(&opts);
    struct kiln_unet *u = NULL;
    CHECK(kiln__unet_load(w, "vae/", &opts, &u) == KILN_ERR_FORMAT);
    CHECK(u == NULL);
    CHECK(kiln__unet_load(w, "unet/", &opts, &u) == KILN_ERR_FORMAT);
    CHECK(u == NULL);
    opts.norm_groups = 8;
    opts.heads[0] = 3;
    CHECK(kiln__unet_load(w, "unet/", &opts, &u) == KILN_ERR_INVALID_ARG);
    CHECK(u == NULL);
    kiln__weights_free(w);
}

int main(void) {
    RUN(test_sd15_shape);
    RUN(test_sd2_inpaint_shape);
    RUN(test_load_errors);
    return TEST_REPORT();
}
