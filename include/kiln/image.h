/* kiln/image.h - image generation: Stable Diffusion txt2img, img2img and
 * inpainting.
 *
 *     kiln_image_model *m;
 *     if (kiln_image_load("sd15.safetensors", NULL, &m) != KILN_OK) ... kiln_last_error()
 *     kiln_image_params p = kiln_image_default_params();
 *     p.prompt = "a lighthouse at dusk";
 *     p.seed = 42;
 *     kiln_image_result r;
 *     if (kiln_image_generate(m, &p, &r) == KILN_OK) ... r.images[0]
 *     kiln_image_result_free(&r);
 *     kiln_image_model_free(m);
 *
 * Ownership: kiln never keeps pointers from kiln_image_params past the call
 * (strings and pixel buffers are read during it). Everything a result holds
 * belongs to the result and is released by kiln_image_result_free(). Every
 * *_free accepts NULL.
 */
#ifndef KILN_IMAGE_H
#define KILN_IMAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kiln/arch.h"
#include "kiln/export.h"
#include "kiln/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* An 8-bit image, rows top to bottom, channels interleaved. */
typedef struct kiln_image {
    uint32_t width;    /* pixels */
    uint32_t height;   /* pixels */
    uint32_t channels; /* 1 grey, 3 RGB, 4 RGBA (alpha not premultiplied) */
    uint8_t *data;     /* width * height * channels bytes; owned by whoever
                          filled the struct (kiln: release with kiln_image_clear) */
} kiln_image;

/* Release an image's pixels that kiln allocated and zero the struct; NULL
 * and an empty image are fine. */
KILN_API void kiln_image_clear(kiln_image *img);

/* Samplers (k-diffusion's names; A1111's display names are also accepted by
 * kiln_image_sampler_from_name: "Euler a", "DPM++ 2M", ...). */
typedef enum kiln_image_sampler {
    KILN_IMAGE_SAMPLER_EULER,        /* "euler" */
    KILN_IMAGE_SAMPLER_EULER_A,      /* "euler_a" (the default) */
    KILN_IMAGE_SAMPLER_HEUN,         /* "heun" */
    KILN_IMAGE_SAMPLER_DPMPP_2M,     /* "dpmpp_2m" */
    KILN_IMAGE_SAMPLER_DPMPP_2M_SDE, /* "dpmpp_2m_sde" */
    KILN_IMAGE_SAMPLER_DDIM,         /* "ddim" */
    KILN_IMAGE_SAMPLER_LCM,          /* "lcm" */
} kiln_image_sampler;

/* Sigma schedules of the k-diffusion samplers (DDIM and LCM have their own). */
typedef enum kiln_image_schedule {
    KILN_IMAGE_SCHEDULE_NORMAL,      /* "normal" (A1111's "Automatic" for these samplers) */
    KILN_IMAGE_SCHEDULE_KARRAS,      /* "karras" */
    KILN_IMAGE_SCHEDULE_EXPONENTIAL, /* "exponential" */
    KILN_IMAGE_SCHEDULE_SGM_UNIFORM, /* "sgm_uniform" */
} kiln_image_schedule;

/* Which generator makes the noise (as PyTorch's, number for number). */
typedef enum kiln_image_rng {
    KILN_IMAGE_RNG_CPU,  /* torch.randn on the CPU: diffusers, ComfyUI (the default) */
    KILN_IMAGE_RNG_CUDA, /* torch.randn on a CUDA device (Philox): AUTOMATIC1111 */
} kiln_image_rng;

/* What the model's UNet predicts, or where that comes from. */
typedef enum kiln_image_prediction {
    KILN_IMAGE_PREDICTION_AUTO, /* "auto" (the default): a diffusers folder's scheduler config; an SD 2.x
                                   single file by AUTOMATIC1111's probe (768-v and 512-base look alike);
                                   epsilon otherwise */
    KILN_IMAGE_PREDICTION_EPS,  /* "eps": the noise (SD 1.x, SD 2.x 512-base and inpainting) */
    KILN_IMAGE_PREDICTION_V,    /* "v": v-prediction (SD 2.x 768-v) */
} kiln_image_prediction;

/* Step callback: called after each sampler step with the step just done
 * (1..total) and, every preview_every steps and after the last, a preview
 * of the denoised estimate (RGB; width/8 x height/8 pixels from the cheap
 * projection, or full size with preview_vae; valid during the call only;
 * NULL otherwise). `image_index` is the batch image being made. A nonzero
 * return cancels: kiln_image_generate then returns KILN_ERR_CANCELLED. */
typedef int (*kiln_image_step_fn)(void *user, uint32_t image_index, uint32_t step, uint32_t total,
                                  const kiln_image *preview);

/* What to generate. Start from kiln_image_default_params(). */
typedef struct kiln_image_params {
    const char *prompt;          /* the prompt (A1111 emphasis syntax allowed); required */
    const char *negative_prompt; /* what to steer away from; NULL or "" for none */
    uint32_t width;              /* pixels; 0 = the model's default */
    uint32_t height;             /* pixels; 0 = the model's default */
    uint32_t steps;              /* sampler steps; 0 = the model's default */
    float guidance;              /* classifier-free guidance scale (CFG); < 0 = the model's
                                    default; 1 or less runs the model once per step */
    kiln_image_sampler sampler;  /* the sampler */
    kiln_image_schedule schedule; /* the sigma schedule */
    uint64_t seed;               /* noise seed; image i of a batch uses seed + i */
    kiln_image_rng rng;          /* noise generator */
    kiln_image_prediction prediction; /* what the UNet predicts; AUTO = the model's own */
    uint32_t batch_count;        /* images to make (1..64); 0 means 1 */
    float strength;              /* img2img/inpainting: how much to change the init image,
                                    0 (keep) .. 1 (all new) */
    const kiln_image *init_image; /* img2img / inpainting source (RGB, 3 channels), the
                                     output size; NULL for txt2img */
    const kiln_image *mask;      /* inpainting mask (1 channel, init_image's size): 255 =
                                    repaint, 0 = keep; NULL for none */
    uint32_t clip_skip;          /* text encoder layers to skip from the end (A1111's
                                    "Clip skip"); 0 or 1 = the model's own layer */
    bool pad_cond_uncond;        /* A1111's "Pad prompt/negative prompt" (off by default, as
                                    in A1111): when the prompt and negative prompt take a
                                    different number of 75-token chunks, the shorter
                                    conditioning gets empty-prompt chunks appended */
    uint32_t preview_every;      /* a preview every N steps and after the last (0 = none) */
    bool preview_vae;            /* previews through the full VAE decode (full size, slow)
                                    instead of the cheap latent projection (1/8 size) */
    kiln_image_step_fn on_step;  /* progress and cancel; NULL for none */
    void *user;                  /* passed to on_step */
} kiln_image_params;

/* Defaults: the model's size, steps and guidance, Euler a, normal schedule,
 * seed 0, CPU noise, one image, strength 0.75, no init image, no mask. */
KILN_API kiln_image_params kiln_image_default_params(void);

/* What kiln_image_generate made. */
typedef struct kiln_image_result {
    kiln_image *images;  /* [count] RGB images (3 channels), owned by the result */
    uint32_t count;      /* number of images */
    uint64_t seed;       /* the seed of the first image (image i used seed + i) */
    char **parameters;   /* [count] each image's AUTOMATIC1111-style generation
                            parameters (its own seed; what the PNG "parameters" chunk
                            holds), owned by the result */
    double text_seconds;     /* time spent encoding the prompts */
    double sampling_seconds; /* time spent in the sampler steps (all images) */
    double decode_seconds;   /* time spent in the VAE (encode and decode, all images) */
} kiln_image_result;

/* Release a result's images and strings and zero it; NULL is fine. */
KILN_API void kiln_image_result_free(kiln_image_result *r);

/* A loaded image model (opaque). */
typedef struct kiln_image_model kiln_image_model;

/* Options for loading. */
typedef struct kiln_image_load_options {
    const char *clip_vocab; /* the CLIP merges file or tokenizer folder, for
                               single-file checkpoints that carry none; NULL = none */
} kiln_image_load_options;

/* Load a model from a file or folder (options may be NULL). On failure
 * *out is NULL and kiln_last_error() says why. */
KILN_API kiln_status kiln_image_load(const char *path, const kiln_image_load_options *options,
                                     kiln_image_model **out);

/* Release a model; NULL is fine. */
KILN_API void kiln_image_model_free(kiln_image_model *m);

/* What a loaded model can do and the sizes, steps and guidance it takes
 * (the variant's capabilities, adjusted to the loaded networks: the size
 * multiple its UNet needs, no img2img without a VAE encoder). */
KILN_API kiln_status kiln_image_model_caps(const kiln_image_model *m, kiln_image_caps *caps);

/* Generate images. On success *out holds them (release with
 * kiln_image_result_free); on failure *out is zeroed. */
KILN_API kiln_status kiln_image_generate(kiln_image_model *m, const kiln_image_params *p,
                                         kiln_image_result *out);

/* The name of a sampler ("euler_a"); "unknown" for a bad value. */
KILN_API const char *kiln_image_sampler_name(kiln_image_sampler s);
/* A sampler by kiln name ("euler_a") or A1111 display name ("Euler a");
 * false when unknown. */
KILN_API bool kiln_image_sampler_from_name(const char *name, kiln_image_sampler *out);
/* The name of a schedule ("karras"); "unknown" for a bad value. */
KILN_API const char *kiln_image_schedule_name(kiln_image_schedule s);
/* A schedule by name ("karras", also "Karras"); false when unknown. */
KILN_API bool kiln_image_schedule_from_name(const char *name, kiln_image_schedule *out);
/* The name of a prediction setting ("auto", "eps", "v"); "unknown" for a bad value. */
KILN_API const char *kiln_image_prediction_name(kiln_image_prediction p);
/* A prediction setting by name: "auto", "eps" (also "epsilon"), "v" (also
 * "v_prediction", diffusers' spelling); false when unknown. */
KILN_API bool kiln_image_prediction_from_name(const char *name, kiln_image_prediction *out);

#ifdef __cplusplus
}
#endif
#endif /* KILN_IMAGE_H */
