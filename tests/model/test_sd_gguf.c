/* tests/model/test_sd_gguf.c - the SD networks on GGUF files of lower
 * precision: the tiny-sd2 ldm single file rewritten as GGUF with every
 * matrix and kernel in F16, and with the matrices whose rows are whole
 * Q8_0 blocks in Q8_0 (the rest F16), compared with the F32 goldens of
 * diffusers within tolerances fitting the precision. This exercises the
 * dtype paths (in-place F16/Q8_0 matrices, split fused projections,
 * dequantized small tensors, GGUF's reversed shapes). */
#include <stdlib.h>

#include "core/threadpool.h"
#include "formats/gguf.h"
#include "formats/weights.h"
#include "image/clip_text.h"
#include "image/unet.h"
#include "image/vae.h"
#include "kiln/kiln.h"
#include "sd_golden.h"
#include "tensor/dequant.h"
#include "tensor/quantize.h"
#include "tensor/tensor.h"
#include "test.h"
#include "worker/backend.h"

#define MODEL "tiny-sd2"

/* Write the ldm file's tensors to `path`: 1-D ones F32, others F16, or
 * Q8_0 when q8 and the innermost size is a multiple of 32. */
static int write_gguf(const char *path, int q8) {
    struct kiln_weights *w = NULL;
    if (kiln__weights_open(SD_DATA "/tiny-sd2-ldm.safetensors", &w) != KILN_OK) return 0;
    struct kiln_gguf_writer *gw = NULL;
    void **bufs = calloc(w->n_tensors, sizeof *bufs);
    int ok = bufs && kiln__gguf_writer_new(&gw) == KILN_OK;
    for (size_t i = 0; ok && i < w->n_tensors; i++) {
        const struct kiln_tensor *t = &w->tensors[i];
        size_t n = (size_t)t->n_elems;
        float *f = malloc(n * sizeof *f);
        ok = f && kiln__dequantize(t->dtype, t->data, f, n) == KILN_OK;
        uint64_t ne[4] = {1, 1, 1, 1};
        for (int d = 0; d < t->n_dims; d++) ne[d] = (uint64_t)t->shape[t->n_dims - 1 - d];
        kiln_dtype type = t->n_dims < 2 ? KILN_DTYPE_F32
                          : q8 && ne[0] % 32 == 0 ? KILN_DTYPE_Q8_0
                                                  : KILN_DTYPE_F16;
        size_t nbytes = kiln__tensor_bytes(type, n);
        bufs[i] = ok ? malloc(nbytes) : NULL;
        ok = ok && bufs[i] && kiln__quantize(type, f, bufs[i], n) == KILN_OK;
        ok = ok && kiln__gguf_writer_add_tensor(gw, t->name, type, (uint32_t)(t->n_dims ? t->n_dims : 1), ne,
                                                bufs[i], nbytes) == KILN_OK;
        free(f);
    }
    ok = ok && kiln__gguf_writer_write(gw, path) == KILN_OK;
    if (!ok) fprintf(stderr, "  writing %s: %s\n", path, kiln_last_error());
    kiln__gguf_writer_free(gw);
    for (size_t i = 0; bufs && i < w->n_tensors; i++) free(bufs[i]);
    free(bufs);
    kiln__weights_free(w);
    return ok;
}

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
    REQUIRE(write_gguf(path, 0));
    check_file(path, 3e-3);
    /* `kiln serve` gives an SD GGUF the image backend, an LLM GGUF not */
    CHECK_EQ_INT(kiln__backend_is_image_model(path), 1);
    CHECK_EQ_INT(kiln__backend_is_image_model(KILN_SOURCE_DIR "/tests/data/llm/llama/llama-f32.gguf"), 0);
    remove(path);
}

static void test_q8_0(void) {
    const char *path = KILN_TEST_TMP "/tiny-sd2-q8_0.gguf";
    REQUIRE(write_gguf(path, 1));
    check_file(path, 3e-2);
    remove(path);
}

int main(void) {
    RUN(test_f16);
    RUN(test_q8_0);
    return TEST_REPORT();
}
