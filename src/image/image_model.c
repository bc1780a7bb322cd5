/* src/image/image_model.c - the public image model: loading, generation
 * through the pipeline, release.
 *
 * The pipeline (pipeline.c) runs over a component interface; sd_model.c
 * loads the networks (CLIP text encoder, UNet, VAE) and binds them to it. */
#include <stdlib.h>

#include "core/error.h"
#include "image/pipeline.h"
#include "image/sd_model.h"

/* A loaded image model: its networks behind the pipeline's interface. */
struct kiln_image_model {
    kiln_sd_components comp; /* the networks as the pipeline calls them */
    void (*release)(void *user); /* frees comp.user */
};

kiln_status kiln_image_load(const char *path, const kiln_image_load_options *options, kiln_image_model **out) {
    if (!out) return kiln__fail(KILN_ERR_INVALID_ARG, "image: no output pointer");
    *out = NULL;
    if (!path) return kiln__fail(KILN_ERR_INVALID_ARG, "image: no model path");
    kiln_image_model *m = calloc(1, sizeof *m);
    if (!m) return kiln__fail(KILN_ERR_OUT_OF_MEMORY, "image: out of memory");
    kiln_status s = kiln__sd_model_load(path, options ? options->clip_vocab : NULL, &m->comp);
    if (s != KILN_OK) {
        free(m);
        return s;
    }
    m->release = kiln__sd_model_free;
    *out = m;
    return KILN_OK;
}

void kiln_image_model_free(kiln_image_model *m) {
    if (!m) return;
    if (m->release) m->release(m->comp.user);
    free(m);
}

kiln_status kiln_image_model_caps(const kiln_image_model *m, kiln_image_caps *caps) {
    if (!m || !caps) return kiln__fail(KILN_ERR_INVALID_ARG, "image: no model or no caps pointer");
    *caps = m->comp.caps;
    return KILN_OK;
}

kiln_status kiln_image_generate(kiln_image_model *m, const kiln_image_params *p, kiln_image_result *out) {
    if (!out) return kiln__fail(KILN_ERR_INVALID_ARG, "image: no result pointer");
    if (!m) {
        *out = (kiln_image_result){0};
        return kiln__fail(KILN_ERR_INVALID_ARG, "image: no model");
    }
    return kiln__sd_generate(&m->comp, p, out);
}
