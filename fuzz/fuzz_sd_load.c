/* fuzz/fuzz_sd_load.c - libFuzzer target for binding and running the SD
 * networks from a single-file checkpoint: the ldm name translation, shape
 * checks of the CLIP/OpenCLIP text encoder, UNet and VAE loaders, and tiny
 * evaluations of whatever loads. Any input must be refused with a message
 * or give networks that run without a fault.
 *
 * The weights view takes a path, so each input is written to one temporary
 * file. Seed (fuzz/corpus/fuzz_sd_load/): a micro SD model in the ldm layout
 * with F16 weights, written by tools/sd_goldens.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "formats/weights.h"
#include "image/clip_text.h"
#include "image/unet.h"
#include "image/vae.h"
#include "kiln/kiln.h"

/* The temporary file every input goes through (created once). */
static char path[64];

static int init_path(void) {
    if (path[0]) return 0;
    snprintf(path, sizeof path, "/tmp/kiln-fuzz-sd-XXXXXX");
    int fd = mkstemp(path);
    if (fd < 0) return -1;
    close(fd);
    return 0;
}

/* A failure must leave a message. */
static void refused(void) {
    if (kiln_last_error()[0] == '\0') abort();
}

static void run_clip(const struct kiln_weights *w) {
    struct kiln_clip_text_opts opts = {1, 1, 1e-5f};
    struct kiln_clip_text *m = NULL;
    if (kiln__clip_text_load(w, "cond_stage_model.model.", &opts, &m) != KILN_OK) {
        refused();
        return;
    }
    int32_t ids[2] = {0, 1};
    float *out = malloc(2 * (size_t)kiln__clip_text_width(m) * sizeof *out);
    if (out) kiln__clip_text_encode(m, NULL, ids, 2, 1, out);
    free(out);
    kiln__clip_text_free(m);
}

static void run_unet(const struct kiln_weights *w) {
    struct kiln_unet_opts opts;
    kiln__unet_opts_sd1(&opts);
    for (int i = 0; i < KILN_UNET_MAX_LEVELS; i++) opts.heads[i] = 1;
    opts.norm_groups = 2;
    struct kiln_unet *u = NULL;
    if (kiln__unet_load(w, "model.diffusion_model.", &opts, &u) != KILN_OK) {
        refused();
        return;
    }
    size_t side = (size_t)kiln__unet_size_multiple(u);
    size_t n = side * side;
    float *x = calloc(n * (size_t)kiln__unet_in_channels(u), sizeof *x);
    float *ctx = calloc(2 * (size_t)kiln__unet_context_dim(u), sizeof *ctx);
    float *out = malloc(n * (size_t)kiln__unet_out_channels(u) * sizeof *out);
    if (x && ctx && out && side <= 64) kiln__unet_eval(u, NULL, x, (int)side, (int)side, 10.0f, ctx, 2, out);
    free(x);
    free(ctx);
    free(out);
    kiln__unet_free(u);
}

static void run_vae(const struct kiln_weights *w) {
    struct kiln_vae_opts opts;
    kiln__vae_opts_sd(&opts);
    opts.norm_groups = 2;
    struct kiln_vae *v = NULL;
    if (kiln__vae_load(w, "first_stage_model.", &opts, &v) != KILN_OK) {
        refused();
        return;
    }
    size_t s = (size_t)kiln__vae_scale(v), c = (size_t)kiln__vae_latent_channels(v);
    float *lat = calloc(c, sizeof *lat), *rgb = calloc(3 * s * s, sizeof *rgb);
    float *lv = malloc(c * sizeof *lv);
    if (lat && rgb && lv && s <= 64) {
        kiln__vae_decode(v, NULL, lat, 1, 1, rgb);
        if (kiln__vae_has_encoder(v)) kiln__vae_encode(v, NULL, rgb, (int)s, (int)s, lat, lv);
    }
    free(lat);
    free(rgb);
    free(lv);
    kiln__vae_free(v);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (init_path() != 0) return 0;
    FILE *f = fopen(path, "wb");
    if (!f) return 0;
    size_t wrote = fwrite(data, 1, size, f);
    fclose(f);
    if (wrote != size) return 0;
    struct kiln_weights *w = NULL;
    if (kiln__weights_open(path, &w) != KILN_OK) {
        refused();
        return 0;
    }
    run_clip(w);
    run_unet(w);
    run_vae(w);
    kiln__weights_free(w);
    return 0;
}
