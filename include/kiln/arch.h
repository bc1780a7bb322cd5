/* kiln/arch.h - the one list of model families and image variants.
 *
 * Every name kiln knows is written once below; the lists generate the enums,
 * the static name tables and the parsers. Names returned by the accessors are
 * static strings: never free them. Parsers never crash: NULL or an unknown
 * name gives the *_UNKNOWN value.
 *
 * Outside code can select a family or variant by enum or by name; it cannot
 * add one (the implementations live in sealed tables inside the library).
 */
#ifndef KILN_ARCH_H
#define KILN_ARCH_H

#include <stdbool.h>
#include <stdint.h>

#include "kiln/dtype.h"

#include "kiln/export.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Which worker serves a family. */
typedef enum kiln_worker_kind {
    KILN_WORKER_LLM,   /* text generation */
    KILN_WORKER_IMAGE, /* image generation */
} kiln_worker_kind;

/* Image families: X(enum suffix, name). */
#define KILN_IMAGE_FAMILY_LIST(X)                                            \
    X(STABLE_DIFFUSION, "stable-diffusion")                                  \
    X(FLUX, "flux")

/* LLM architectures: X(enum suffix, name). The name is the GGUF
 * general.architecture value and the config.json model_type. */
#define KILN_LLM_ARCH_LIST(X)                                                \
    X(LLAMA, "llama")                                                        \
    X(MISTRAL, "mistral")                                                    \
    X(QWEN2, "qwen2")                                                        \
    X(PHI2, "phi2")                                                          \
    X(PHI3, "phi3")

/* All families, image first. */
typedef enum kiln_arch {
#define KILN_X_ARCH_ENUM(id, name) KILN_ARCH_##id,
    KILN_IMAGE_FAMILY_LIST(KILN_X_ARCH_ENUM)
    KILN_LLM_ARCH_LIST(KILN_X_ARCH_ENUM)
#undef KILN_X_ARCH_ENUM
    KILN_ARCH_UNKNOWN /* not a family kiln knows; also the count of known ones */
} kiln_arch;

#define KILN_X_COUNT_ONE(id, name) +1
/* Number of LLM architectures (entries of the sealed LLM registry). */
#define KILN_LLM_ARCH_COUNT (0 KILN_LLM_ARCH_LIST(KILN_X_COUNT_ONE))
/* Number of image families. */
#define KILN_IMAGE_FAMILY_COUNT (0 KILN_IMAGE_FAMILY_LIST(KILN_X_COUNT_ONE))

/* Image variants: X(enum suffix, name, family suffix, inpainting model).
 * A variant is one concrete model layout inside a family. */
#define KILN_VARIANT_LIST(X)                                                 \
    X(SD15, "sd1.5", STABLE_DIFFUSION, false)                                \
    X(SD15_INPAINT, "sd1.5-inpaint", STABLE_DIFFUSION, true)                 \
    X(SD21, "sd2.1", STABLE_DIFFUSION, false)                                \
    X(SD2_INPAINT, "sd2-inpaint", STABLE_DIFFUSION, true)                    \
    X(SDXL, "sdxl", STABLE_DIFFUSION, false)                                 \
    X(SDXL_INPAINT, "sdxl-inpaint", STABLE_DIFFUSION, true)                  \
    X(SDXL_TURBO, "sdxl-turbo", STABLE_DIFFUSION, false)                     \
    X(FLUX_DEV, "flux-dev", FLUX, false)                                     \
    X(FLUX_SCHNELL, "flux-schnell", FLUX, false)

typedef enum kiln_variant {
#define KILN_X_VARIANT_ENUM(id, name, family, inpaint) KILN_VARIANT_##id,
    KILN_VARIANT_LIST(KILN_X_VARIANT_ENUM)
#undef KILN_X_VARIANT_ENUM
    KILN_VARIANT_UNKNOWN /* not a variant kiln knows; also the count of known ones */
} kiln_variant;

/* Name of a family ("llama", "stable-diffusion", ...); "unknown" for
 * KILN_ARCH_UNKNOWN or an out-of-range value. Static string. */
KILN_API const char *kiln_arch_name(kiln_arch arch);
/* Family from its exact name; KILN_ARCH_UNKNOWN for NULL or an unknown name. */
KILN_API kiln_arch kiln_arch_from_name(const char *name);
/* Which worker serves the family. KILN_ARCH_UNKNOWN gives KILN_WORKER_LLM;
 * check the family first. */
KILN_API kiln_worker_kind kiln_arch_worker(kiln_arch arch);

/* Name of a variant ("sd1.5", "flux-dev", ...); "unknown" for
 * KILN_VARIANT_UNKNOWN or an out-of-range value. Static string. */
KILN_API const char *kiln_variant_name(kiln_variant variant);
/* Variant from its exact name; KILN_VARIANT_UNKNOWN for NULL or unknown. */
KILN_API kiln_variant kiln_variant_from_name(const char *name);
/* The family a variant belongs to; KILN_ARCH_UNKNOWN for an unknown variant. */
KILN_API kiln_arch kiln_variant_family(kiln_variant variant);
/* True when the variant is an inpainting model (extra UNet input channels). */
KILN_API bool kiln_variant_is_inpaint(kiln_variant variant);

/* What an image model can do and the sizes it accepts. */
typedef struct kiln_image_caps {
    bool txt2img;             /* generates from a prompt alone */
    bool img2img;             /* transforms an input image (strength) */
    bool inpainting;          /* repaints a masked area */
    bool lora;                /* accepts LoRA adapters */
    bool guidance;            /* uses classifier-free guidance (a guidance scale) */
    bool negative_prompt;     /* honours a negative prompt */
    uint32_t default_width;   /* pixels */
    uint32_t default_height;  /* pixels */
    uint32_t default_steps;   /* sampler steps when a request gives none */
    float default_guidance;   /* guidance scale when a request gives none */
    uint32_t size_multiple;   /* width and height must be multiples of this (pixels) */
    uint32_t min_size;        /* smallest width or height (pixels) */
    uint32_t max_size;        /* largest width or height (pixels) */
    uint32_t max_steps;       /* largest step count accepted */
} kiln_image_caps;

/* Capabilities of a variant as shipped (before any file is read).
 * Returns false (and zeroes *caps) for an unknown variant or NULL caps. */
KILN_API bool kiln_variant_caps(kiln_variant variant, kiln_image_caps *caps);

/* Most end-of-sequence tokens a text model may declare. */
#define KILN_MAX_EOS_IDS 8

/* What a loaded text model offers. */
typedef struct kiln_text_caps {
    uint32_t context_length;            /* tokens the model was trained for */
    uint32_t n_eos;                     /* valid entries of eos_ids */
    int32_t eos_ids[KILN_MAX_EOS_IDS];  /* every token id that ends generation */
    const char *chat_template;          /* Jinja source from the file, or NULL; owned by the model */
    bool quantized;                     /* weights held in a block-quantized type */
    kiln_dtype dtype;                   /* type of most weight matrices */
} kiln_text_caps;

#ifdef __cplusplus
}
#endif
#endif /* KILN_ARCH_H */
