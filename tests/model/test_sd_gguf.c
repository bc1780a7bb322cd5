/* tests/model/test_sd_gguf.c - the SD networks on GGUF files of lower
 * precision: the tiny-sd2 ldm single file rewritten as GGUF with every
 * matrix and kernel in F16, and with the matrices whose rows are whole
 * Q8_0 blocks in Q8_0 (the rest F16), compared with the F32 goldens of
 * diffusers within tolerances fitting the precision. This exercises the
 * dtype paths (in-place F16/Q8_0 matrices, split fused projections,
 * dequantized small tensors, GGUF's reversed shapes). */
#include <stdlib.h>

#include "core/threadpool.h"
#include "formats/weights.h"
#include "image/clip_text.h"
#include "image/unet.h"
#include "image/vae.h"
#include "kiln/kiln.h"
#include "sd_gguf_file.h"
#include "sd_golden.h"
#include "test.h"
#include "worker/backend.h"

#define MODEL "tiny-sd2"

/* All three networks of `path` against the goldens within tol. */
static void check_file(const char *path, double tol) {
    struct kiln_weights *w = NULL;
    REQUIRE(kiln__weights_open(path, &w) == KILN_OK);
    kiln_pool *pool = kiln__pool_create(2);
    /* Text encoder (OpenCLIP names). */
    struct kiln_clip_text_opts copts = {2, 1, 1e-5f};
    struct kiln_clip_text *m = NULL;
    CHECK(kiln__clip_text_load(w, "cond_stage_model.model.", &copts, &m) == KILN_OK);
    int32_t ids[77];
    size_t n1 = 0, nc = 0, nx = 0, no = 0, nl = 0, nd = 0;
    float *last = sd_golden(MODEL, "clip_last", &n1);
    float *ctx = sd_golden(MODEL, "unet_context", &nc);
    float *x = sd_golden(MODEL, "unet_x_999", &nx), *ref = sd_golden(MODEL, "unet_out_999", &no);
    float *lat = sd_golden(MODEL, "vae_latent", &nl), *dec = sd_golden(MODEL, "vae_decoded", &nd);
    float *out = malloc(77 * 32 * sizeof *out);
    if (m && last && out && sd_golden_ints(MODEL, "clip_ids", ids, 77) == 77) {
        CHECK(kiln__clip_text_encode(m, pool, ids, 77, 1, out) == KILN_OK);
        double e = sd_rel_err(out, last, n1);
        fprintf(stderr, "  %s clip: rel err %.3g\n", path, e);
        CHECK(e < tol);
    } else {
        CHECK(0);
    }
    /* UNet. */
    struct kiln_unet_opts uopts;
    kiln__unet_opts_sd1(&uopts);
    uopts.head_channels = 8;
    uopts.norm_groups = 8;
    struct kiln_unet *u = NULL;
    CHECK(kiln__unet_load(w, "model.diffusion_model.", &uopts, &u) == KILN_OK);
    if (u && ctx && x && ref && no == 4 * 8 * 8) {
        CHECK(kiln__unet_eval(u, pool, x, 8, 8, 999.0f, ctx, 77, out) == KILN_OK);
        double e = sd_rel_err(out, ref, no);
        fprintf(stderr, "  %s unet: rel err %.3g\n", path, e);
        CHECK(e < tol);
    } else {
        CHECK(0);
    }
    /* VAE decoder. */
    struct kiln_vae_opts vopts;
    kiln__vae_opts_sd(&vopts);
    vopts.norm_groups = 4;
    struct kiln_vae *v = NULL;
    CHECK(kiln__vae_load(w, "first_stage_model.", &vopts, &v) == KILN_OK);
    if (v && lat && dec && nd == 3 * 8 * 12) {
        CHECK(kiln__vae_decode(v, pool, lat, 4, 6, out) == KILN_OK);
        double e = sd_rel_err(out, dec, nd);
        fprintf(stderr, "  %s vae: rel err %.3g\n", path, e);
        CHECK(e < tol);
    } else {
        CHECK(0);
    }
    free(out);
    free(last);
    free(ctx);
    free(x);
    free(ref);
    free(lat);
    free(dec);
    kiln__vae_free(v);
    kiln__unet_free(u);
    kiln__clip_text_free(m);
    kiln__pool_free(pool);
    kiln__weights_free(w);
}

static void test_f16(void) {
    const char *path = KILN_TEST_TMP "/tiny-sd2-f16.gguf";
    REQUIRE(sd_write_gguf(SD_DATA "/tiny-sd2-ldm.safetensors", path, SD_GGUF_F16));
    check_file(path, 3e-3);
    /* `kiln serve` gives an SD GGUF the image backend, an LLM GGUF not */
    CHECK_EQ_INT(kiln__backend_is_image_model(path), 1);
    CHECK_EQ_INT(kiln__backend_is_image_model(KILN_SOURCE_DIR "/tests/data/llm/llama/llama-f32.gguf"), 0);
    remove(path);
}

static void test_q8_0(void) {
    const char *path = KILN_TEST_TMP "/tiny-sd2-q8_0.gguf";
    REQUIRE(sd_write_gguf(SD_DATA "/tiny-sd2-ldm.safetensors", path, SD_GGUF_Q8_0));
    check_file(path, 3e-2);
    remove(path);
}

int main(void) {
    RUN(test_f16);
    RUN(test_q8_0);
    return TEST_REPORT();
}
