/* src/core/arch.c - name tables and parsers generated from kiln/arch.h, and
 * the capabilities each image variant ships with. */
#include <string.h>

#include "kiln/arch.h"

static const char *const arch_names[KILN_ARCH_UNKNOWN] = {
#define KILN_X_ARCH_NAME(id, name) [KILN_ARCH_##id] = name,
    KILN_IMAGE_FAMILY_LIST(KILN_X_ARCH_NAME)
    KILN_LLM_ARCH_LIST(KILN_X_ARCH_NAME)
#undef KILN_X_ARCH_NAME
};

/* One entry per variant: its name, family and inpainting flag. */
static const struct variant_info {
    const char *name; /* static name, e.g. "sd1.5" */
    kiln_arch family; /* family it belongs to */
    bool inpaint;     /* UNet takes image and mask channels */
} variants[KILN_VARIANT_UNKNOWN] = {
#define KILN_X_VARIANT_INFO(id, name, family, inpaint) \
    [KILN_VARIANT_##id] = {name, KILN_ARCH_##family, inpaint},
    KILN_VARIANT_LIST(KILN_X_VARIANT_INFO)
#undef KILN_X_VARIANT_INFO
};

const char *kiln_arch_name(kiln_arch arch) {
    if ((unsigned)arch >= KILN_ARCH_UNKNOWN) return "unknown";
    return arch_names[arch];
}

kiln_arch kiln_arch_from_name(const char *name) {
    if (!name) return KILN_ARCH_UNKNOWN;
    for (int i = 0; i < KILN_ARCH_UNKNOWN; i++)
        if (strcmp(arch_names[i], name) == 0) return (kiln_arch)i;
    return KILN_ARCH_UNKNOWN;
}

kiln_worker_kind kiln_arch_worker(kiln_arch arch) {
    /* Image families come first in the enum. */
    return (unsigned)arch < KILN_IMAGE_FAMILY_COUNT ? KILN_WORKER_IMAGE : KILN_WORKER_LLM;
}

const char *kiln_variant_name(kiln_variant variant) {
    if ((unsigned)variant >= KILN_VARIANT_UNKNOWN) return "unknown";
    return variants[variant].name;
}

kiln_variant kiln_variant_from_name(const char *name) {
    if (!name) return KILN_VARIANT_UNKNOWN;
    for (int i = 0; i < KILN_VARIANT_UNKNOWN; i++)
        if (strcmp(variants[i].name, name) == 0) return (kiln_variant)i;
    return KILN_VARIANT_UNKNOWN;
}

kiln_arch kiln_variant_family(kiln_variant variant) {
    if ((unsigned)variant >= KILN_VARIANT_UNKNOWN) return KILN_ARCH_UNKNOWN;
    return variants[variant].family;
}

bool kiln_variant_is_inpaint(kiln_variant variant) {
    if ((unsigned)variant >= KILN_VARIANT_UNKNOWN) return false;
    return variants[variant].inpaint;
}

bool kiln_variant_caps(kiln_variant variant, kiln_image_caps *caps) {
    if (!caps) return false;
    memset(caps, 0, sizeof *caps);
    if ((unsigned)variant >= KILN_VARIANT_UNKNOWN) return false;
    /* Defaults shared by every variant; the switch overrides per model line.
     * Sizes follow each model's training resolution; the steps and guidance
     * are the values the reference pipelines default to. */
    caps->txt2img = true;
    caps->img2img = true;
    caps->lora = true;
    caps->guidance = true;
    caps->negative_prompt = true;
    caps->size_multiple = 8;
    caps->min_size = 64;
    caps->max_size = 2048;
    caps->max_steps = 150;
    caps->default_guidance = 7.5f;
    switch (variant) {
    case KILN_VARIANT_SD15:
    case KILN_VARIANT_SD15_INPAINT:
    case KILN_VARIANT_SD2_INPAINT:
        caps->default_width = caps->default_height = 512;
        caps->default_steps = 20;
        break;
    case KILN_VARIANT_SD21:
        caps->default_width = caps->default_height = 768;
        caps->default_steps = 20;
        break;
    case KILN_VARIANT_SDXL:
    case KILN_VARIANT_SDXL_INPAINT:
        caps->default_width = caps->default_height = 1024;
        caps->default_steps = 20;
        caps->default_guidance = 5.0f;
        break;
    case KILN_VARIANT_SDXL_TURBO:
        /* Distilled for 1-4 steps without guidance. */
        caps->default_width = caps->default_height = 512;
        caps->default_steps = 1;
        caps->guidance = false;
        caps->negative_prompt = false;
        caps->default_guidance = 0.0f;
        break;
    case KILN_VARIANT_FLUX_DEV:
        /* Guidance-distilled: the scale is an input of the model, not CFG;
         * sizes must be multiples of 16 (2x2 latent patches). */
        caps->default_width = caps->default_height = 1024;
        caps->default_steps = 28;
        caps->default_guidance = 3.5f;
        caps->negative_prompt = false;
        caps->size_multiple = 16;
        break;
    case KILN_VARIANT_FLUX_SCHNELL:
        caps->default_width = caps->default_height = 1024;
        caps->default_steps = 4;
        caps->guidance = false;
        caps->negative_prompt = false;
        caps->default_guidance = 0.0f;
        caps->size_multiple = 16;
        break;
    case KILN_VARIANT_UNKNOWN:
        return false; /* excluded above; listed so the switch stays exhaustive */
    }
    caps->inpainting = true; /* inpaint models natively, others by latent blending */
    return true;
}
