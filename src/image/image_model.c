/* src/image/image_model.c - the public image model: loading, generation
 * through the pipeline, release.
 *
 * The pipeline (pipeline.c) runs over a component interface; the networks
 * it binds to in a loaded model (CLIP text encoder, UNet, VAE) are not in
 * this build yet, so kiln_image_load says so instead of pretending. */
#include <stdlib.h>

#include "core/error.h"
#include "image/pipeline.h"

/* A loaded image model: its networks behind the pipeline's interface. */
struct kiln_image_model {
    kiln_sd_components comp; /* the networks as the pipeline calls them */
    void (*release)(void *user); /* frees comp.user */
};

kiln_status kiln_image_load(const char *path, const kiln_image_load_options *options, kiln_image_model **out) {
    (void)options;
    if (!out) return kiln__fail(KILN_ERR_INVALID_ARG, "image: no output pointer");
    *out = NULL;
    if (!path) return kiln__fail(KILN_ERR_INVALID_ARG, "image: no model path");
    return kiln__fail(KILN_ERR_UNSUPPORTED,
                      "image: cannot load %s: the Stable Diffusion networks (CLIP text encoder, UNet, VAE) are "
                      "not in this build yet (the pipeline, samplers and image I/O are)",
                      path);
}

void kiln_image_model_free(kiln_image_model *m) {
    if (!m) return;
    if (m->release) m->release(m->comp.user);
    free(m);
}

kiln_status kiln_image_generate(kiln_image_model *m, const kiln_image_params *p, kiln_image_result *out) {
    if (!out) return kiln__fail(KILN_ERR_INVALID_ARG, "image: no result pointer");
    if (!m) {
        *out = (kiln_image_result){0};
        return kiln__fail(KILN_ERR_INVALID_ARG, "image: no model");
    }
    return kiln__sd_generate(&m->comp, p, out);
}
