/* tests/model/test_sd_clip.c - the CLIP text encoder against transformers'
 * CLIPTextModel on the tiny random-weight models of tests/data/sd: the SD
 * 1.x shape (quick_gelu) and the SD 2.x shape (gelu), last layer and clip
 * skip 2, loaded from diffusers folders; bad arguments refused. */
#include <stdlib.h>

#include "core/threadpool.h"
#include "formats/weights.h"
#include "image/clip_text.h"
#include "kiln/kiln.h"
#include "sd_golden.h"
#include "test.h"

/* Encode the golden ids of `model` at clip skip 1 and 2 with `threads` threads. */
static void check_model(const char *model, int threads) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s", SD_DATA, model);
    struct kiln_weights *w = NULL;
    REQUIRE(kiln__weights_open(path, &w) == KILN_OK);
    struct kiln_clip_text_opts opts;
    snprintf(path, sizeof path, "%s/%s/text_encoder/config.json", SD_DATA, model);
    CHECK(kiln__clip_text_opts_json(path, &opts) == KILN_OK);
    struct kiln_clip_text *m = NULL;
    kiln_status st = kiln__clip_text_load(w, "text_encoder/", &opts, &m);
    if (st != KILN_OK) fprintf(stderr, "  %s\n", kiln_last_error());
    kiln_pool *pool = kiln__pool_create(threads);
    int32_t ids[77];
    size_t n_last = 0, n_skip = 0;
    float *last = sd_golden(model, "clip_last", &n_last);
    float *skip2 = sd_golden(model, "clip_skip2", &n_skip);
    float *out = malloc(77 * 32 * sizeof *out);
    if (m && pool && last && skip2 && out && sd_golden_ints(model, "clip_ids", ids, 77) == 77) {
        CHECK_EQ_INT(kiln__clip_text_width(m), 32);
        CHECK_EQ_INT(kiln__clip_text_max_tokens(m), 77);
        CHECK(n_last == 77 * 32 && n_skip == 77 * 32);
        CHECK(kiln__clip_text_encode(m, pool, ids, 77, 1, out) == KILN_OK);
        double e = sd_rel_err(out, last, n_last);
        fprintf(stderr, "  %s last layer: rel err %.3g\n", model, e);
        CHECK(e < SD_REL_ERR);
        CHECK(kiln__clip_text_encode(m, pool, ids, 77, 2, out) == KILN_OK);
        e = sd_rel_err(out, skip2, n_skip);
        fprintf(stderr, "  %s clip skip 2: rel err %.3g\n", model, e);
        CHECK(e < SD_REL_ERR);
        /* A causal mask: the first 10 rows do not depend on the tokens after them. */
        CHECK(kiln__clip_text_encode(m, pool, ids, 10, 1, out) == KILN_OK);
        CHECK(sd_rel_err(out, last, 10 * 32) < SD_REL_ERR);
        /* Bad arguments. */
        CHECK(kiln__clip_text_encode(m, pool, ids, 78, 1, out) == KILN_ERR_INVALID_ARG);
        CHECK(kiln__clip_text_encode(m, pool, ids, 77, 0, out) == KILN_ERR_INVALID_ARG);
        CHECK(kiln__clip_text_encode(m, pool, ids, 77, kiln__clip_text_layers(m) + 1, out) ==
              KILN_ERR_INVALID_ARG);
        int32_t bad = 1000;
        CHECK(kiln__clip_text_encode(m, pool, &bad, 1, 1, out) == KILN_ERR_INVALID_ARG);
    } else {
        CHECK(0);
    }
    free(out);
    free(last);
    free(skip2);
    kiln__pool_free(pool);
    kiln__clip_text_free(m);
    kiln__weights_free(w);
}

static void test_sd15_shape(void) { check_model("tiny-sd15", 1); }
static void test_sd2_shape_threads(void) { check_model("tiny-sd2", 2); }

/* A prefix with no encoder, and heads that do not divide the width. */
static void test_load_errors(void) {
    struct kiln_weights *w = NULL;
    REQUIRE(kiln__weights_open(SD_DATA "/tiny-sd15", &w) == KILN_OK);
    struct kiln_clip_text_opts opts = {2, 0, 1e-5f};
    struct kiln_clip_text *m = NULL;
    CHECK(kiln__clip_text_load(w, "unet/", &opts, &m) == KILN_ERR_FORMAT);
    CHECK(m == NULL);
    opts.n_heads = 3;
    CHECK(kiln__clip_text_load(w, "text_encoder/", &opts, &m) == KILN_ERR_INVALID_ARG);
    CHECK(m == NULL);
    kiln__weights_free(w);
}

int main(void) {
    RUN(test_sd15_shape);
    RUN(test_sd2_shape_threads);
    RUN(test_load_errors);
    return TEST_REPORT();
}
