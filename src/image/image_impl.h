/* src/image/image_impl.h - the image model vtable (internal, never installed).
 *
 * Closed like the LLM set: src/image/registry.c holds the only table, one
 * entry per kiln_variant. Layout traits are data so detection and tests can
 * use them; the functions arrive with the image engine.
 */
#ifndef KILN_IMAGE_IMAGE_IMPL_H
#define KILN_IMAGE_IMAGE_IMPL_H

#include <stdbool.h>
#include <stdint.h>

#include "kiln/arch.h"
#include "kiln/status.h"

struct kiln_image_model; /* a loaded image model (defined by the image engine) */
struct kiln_weights;     /* tensors of an opened model file or folder */

/* What the denoiser predicts by default. */
typedef enum kiln_prediction {
    KILN_PREDICT_EPSILON, /* the added noise */
    KILN_PREDICT_V,       /* velocity (SD 2.x 768) */
    KILN_PREDICT_FLOW,    /* rectified-flow velocity (Flux) */
} kiln_prediction;

/* Layout traits of a variant. */
typedef struct kiln_image_layout {
    uint32_t denoiser_in_channels; /* 4 (SD), 9 (SD inpaint: latent+mask+masked image), 64 (Flux patches) */
    uint32_t text_width;           /* width of the (first) text encoder's hidden states */
    uint32_t text_width2;          /* second text encoder (SDXL's OpenCLIP bigG, Flux's T5), 0 if none */
    bool penultimate_layer;        /* conditioning from the text encoder's penultimate layer */
    kiln_prediction prediction;    /* default prediction type */
} kiln_image_layout;

/* One image implementation. Function slots stay NULL until the image engine
 * provides them; callers get KILN_ERR_UNSUPPORTED for a NULL slot. */
struct kiln_image_impl {
    kiln_variant variant;       /* the variant this entry implements */
    const char *reference;      /* pipeline mirrored, e.g. "StableDiffusionPipeline" */
    kiln_image_layout layout;   /* traits of the layout */
    kiln_status (*load)(struct kiln_image_model *m, const struct kiln_weights *w);
    void (*free_extra)(struct kiln_image_model *m); /* optional, may be NULL */
};

/* The implementation of `variant`; NULL for an unknown variant. */
const struct kiln_image_impl *kiln__image_impl(kiln_variant variant);

#endif /* KILN_IMAGE_IMAGE_IMPL_H */
