/* src/image/pipeline.c - txt2img, img2img and inpainting over the component
 * interface of pipeline.h: request validation, conditioning, the sampler
 * loop with CFG and mask blending, decoding, previews and the A1111
 * parameters text. */
#include "image/pipeline.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/error.h"
#include "image/rng.h"
#include "image/samplers.h"

/* State of one request while it runs. */
typedef struct sd_run {
    const kiln_sd_components *c; /* the networks */
    const kiln_image_params *p;  /* the request, defaults resolved */
    int h, w;                    /* latent size */
    size_t hw;                   /* h * w */
    size_t n;                    /* latent elements: 4 * h * w */
    float *cond;                 /* [n_cond][width] prompt conditioning */
    int n_cond;                  /* its tokens */
    float *uncond;               /* [n_uncond][width] negative prompt (CFG only) */
    int n_uncond;                /* its tokens */
    bool cfg;                    /* guidance > 1: two model calls per evaluation */
    bool padded;                 /* pad_cond_uncond lengthened cond or uncond */
    float *unet_in;              /* [9][h][w] scratch: a 9-channel UNet's input */
    float *inpaint_extra;        /* [5][h][w] a 9-channel UNet's mask and masked-image latent */
    float *init_mean;            /* [n] the init image's posterior mean, scaled (img2img) */
    float *init_std;             /* [n] its standard deviation, scaled */
    float *init_latent;          /* [n] this image's sample of the posterior */
    float *latent_mask;          /* [hw] 1 = repaint, 0 = keep (inpainting) */
    float *uncond_out;           /* [n] the negative prompt's denoised estimate */
    float *last_denoised;        /* [n] the latest denoised estimate (previews) */
    kiln_compvis_denoiser dc;    /* the model on the prompt */
    kiln_compvis_denoiser du;    /* the model on the negative prompt */
    double t_text;               /* seconds in the text encoder */
    double t_sampling;           /* seconds in sampler steps */
    double t_vae;                /* seconds in the VAE */
} sd_run;

/* A monotonic clock in seconds. */
static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* The latent-to-RGB matrix of A1111's "Approx cheap" preview (SD 1.x,
 * fitted by hand on SD 1.4 latents; rows: latent channels, columns: R G B). */
static const float preview_matrix[4][3] = {
    {0.298f, 0.207f, 0.208f},
    {0.187f, 0.286f, 0.173f},
    {-0.158f, 0.189f, 0.264f},
    {-0.184f, -0.271f, -0.473f},
};

void kiln__sd_latent_preview(const float *latent, int h, int w, uint8_t *rgb) {
    size_t hw = (size_t)h * w;
    for (size_t i = 0; i < hw; i++)
        for (int ch = 0; ch < 3; ch++) {
            float v = 0.0f;
            for (int l = 0; l < 4; l++) v += latent[l * hw + i] * preview_matrix[l][ch];
            v = (v + 1.0f) * 0.5f;
            v = v < 0.0f ? 0.0f : v > 1.0f ? 1.0f : v;
            rgb[i * 3 + ch] = (uint8_t)lrintf(v * 255.0f);
        }
}

/* Public enums to the sampler module's (the same order, mapped by name). */
static kiln_img_sampler_kind sampler_kind(kiln_image_sampler s) {
    switch (s) {
    case KILN_IMAGE_SAMPLER_EULER: return KILN_SAMPLER_EULER;
    case KILN_IMAGE_SAMPLER_EULER_A: return KILN_SAMPLER_EULER_A;
    case KILN_IMAGE_SAMPLER_HEUN: return KILN_SAMPLER_HEUN;
    case KILN_IMAGE_SAMPLER_DPMPP_2M: return KILN_SAMPLER_DPMPP_2M;
    case KILN_IMAGE_SAMPLER_DPMPP_2M_SDE: return KILN_SAMPLER_DPMPP_2M_SDE;
    case KILN_IMAGE_SAMPLER_DDIM: return KILN_SAMPLER_DDIM;
    case KILN_IMAGE_SAMPLER_LCM: return KILN_SAMPLER_LCM;
    }
    return KILN_SAMPLER_EULER;
}

static kiln_schedule schedule_kind(kiln_image_schedule s) {
    switch (s) {
    case KILN_IMAGE_SCHEDULE_NORMAL: return KILN_SCHEDULE_NORMAL;
    case KILN_IMAGE_SCHEDULE_KARRAS: return KILN_SCHEDULE_KARRAS;
    case KILN_IMAGE_SCHEDULE_EXPONENTIAL: return KILN_SCHEDULE_EXPONENTIAL;
    case KILN_IMAGE_SCHEDULE_SGM_UNIFORM: return KILN_SCHEDULE_SGM_UNIFORM;
    }
    return KILN_SCHEDULE_NORMAL;
}

/* AUTOMATIC1111's display names, by kiln_image_sampler / kiln_image_schedule. */
static const char *const sampler_a1111[] = {"Euler", "Euler a", "Heun", "DPM++ 2M", "DPM++ 2M SDE", "DDIM", "LCM"};
static const char *const schedule_a1111[] = {"Automatic", "Karras", "Exponential", "SGM Uniform"};
#define N_SAMPLERS (sizeof sampler_a1111 / sizeof sampler_a1111[0])
#define N_SCHEDULES (sizeof schedule_a1111 / sizeof schedule_a1111[0])

const char *kiln_image_sampler_name(kiln_image_sampler s) {
    return (unsigned)s < N_SAMPLERS ? kiln__img_sampler_name(sampler_kind(s)) : "unknown";
}

bool kiln_image_sampler_from_name(const char *name, kiln_image_sampler *out) {
    if (!name) return false;
    for (unsigned i = 0; i < N_SAMPLERS; i++)
        if (strcmp(name, kiln__img_sampler_name(sampler_kind((kiln_image_sampler)i))) == 0 ||
            strcmp(name, sampler_a1111[i]) == 0) {
            *out = (kiln_image_sampler)i;
            return true;
        }
    return false;
}

const char *kiln_image_schedule_name(kiln_image_schedule s) {
    return (unsigned)s < N_SCHEDULES ? kiln__schedule_name(schedule_kind(s)) : "unknown";
}

bool kiln_image_schedule_from_name(const char *name, kiln_image_schedule *out) {
    if (!name) return false;
    for (unsigned i = 0; i < N_SCHEDULES; i++)
        if (strcmp(name, kiln__schedule_name(schedule_kind((kiln_image_schedule)i))) == 0 ||
            strcmp(name, schedule_a1111[i]) == 0) {
            *out = (kiln_image_schedule)i;
            return true;
        }
    return false;
}

/* Names of kiln_image_prediction, in its order. */
static const char *const prediction_names[] = {"auto", "eps", "v"};

const char *kiln_image_prediction_name(kiln_image_prediction p) {
    return (unsigned)p < sizeof prediction_names / sizeof prediction_names[0] ? prediction_names[p] : "unknown";
}

bool kiln_image_prediction_from_name(const char *name, kiln_image_prediction *out) {
    if (!name) return false;
    if (!strcmp(name, "auto")) *out = KILN_IMAGE_PREDICTION_AUTO;
    else if (!strcmp(name, "eps") || !strcmp(name, "epsilon")) *out = KILN_IMAGE_PREDICTION_EPS;
    else if (!strcmp(name, "v") || !strcmp(name, "v_prediction")) *out = KILN_IMAGE_PREDICTION_V;
    else return false;
    return true;
}

kiln_image_params kiln_image_default_params(void) {
    kiln_image_params p;
    memset(&p, 0, sizeof p);
    p.guidance = -1.0f;
    p.sampler = KILN_IMAGE_SAMPLER_EULER_A;
    p.schedule = KILN_IMAGE_SCHEDULE_NORMAL;
    p.rng = KILN_IMAGE_RNG_CPU;
    p.batch_count = 1;
    p.strength = 0.75f;
    return p;
}

void kiln_image_result_free(kiln_image_result *r) {
    if (!r) return;
    for (uint32_t i = 0; i < r->count; i++) {
        if (r->images) kiln_image_clear(&r->images[i]);
        if (r->parameters) free(r->parameters[i]);
    }
    free(r->images);
    free(r->parameters);
    memset(r, 0, sizeof *r);
}

kiln_status kiln__sd_parameters_text(const kiln_image_params *p, const char *model_name, uint32_t index,
                                     char **out) {
    *out = NULL;
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f) return kiln__fail(KILN_ERR_OUT_OF_MEMORY, "image: out of memory for the parameters text");
    fputs(p->prompt ? p->prompt : "", f);
    if (p->negative_prompt && p->negative_prompt[0]) fprintf(f, "\nNegative prompt: %s", p->negative_prompt);
    const char *sampler = (unsigned)p->sampler < N_SAMPLERS ? sampler_a1111[p->sampler] : "unknown";
    fprintf(f, "\nSteps: %u, Sampler: %s", p->steps, sampler);
    if (p->schedule != KILN_IMAGE_SCHEDULE_NORMAL && (unsigned)p->schedule < N_SCHEDULES)
        fprintf(f, ", Schedule type: %s", schedule_a1111[p->schedule]);
    fprintf(f, ", CFG scale: %g, Seed: %llu, Size: %ux%u", (double)p->guidance,
            (unsigned long long)(p->seed + index), p->width, p->height);
    if (model_name && model_name[0]) fprintf(f, ", Model: %s", model_name);
    if (p->init_image) fprintf(f, ", Denoising strength: %g", (double)p->strength);
    if (p->clip_skip > 1) fprintf(f, ", Clip skip: %u", p->clip_skip);
    if (p->rng == KILN_IMAGE_RNG_CPU) fputs(", RNG: CPU", f);
    if (fclose(f) != 0 || !buf) {
        free(buf);
        return kiln__fail(KILN_ERR_OUT_OF_MEMORY, "image: out of memory for the parameters text");
    }
    *out = buf;
    return KILN_OK;
}

/* Fill the request's defaults from the model's capabilities and check it. */
static kiln_status resolve(const kiln_sd_components *c, const kiln_image_params *in, kiln_image_params *p) {
    *p = *in;
    const kiln_image_caps *caps = &c->caps;
    if (!p->prompt) return kiln__fail(KILN_ERR_INVALID_ARG, "image: no prompt");
    if ((unsigned)p->sampler >= N_SAMPLERS) return kiln__fail(KILN_ERR_INVALID_ARG, "image: unknown sampler %d", (int)p->sampler);
    if ((unsigned)p->schedule >= N_SCHEDULES)
        return kiln__fail(KILN_ERR_INVALID_ARG, "image: unknown schedule %d", (int)p->schedule);
    if (p->rng != KILN_IMAGE_RNG_CPU && p->rng != KILN_IMAGE_RNG_CUDA)
        return kiln__fail(KILN_ERR_INVALID_ARG, "image: unknown noise generator %d", (int)p->rng);
    if (p->prediction != KILN_IMAGE_PREDICTION_AUTO && p->prediction != KILN_IMAGE_PREDICTION_EPS &&
        p->prediction != KILN_IMAGE_PREDICTION_V)
        return kiln__fail(KILN_ERR_INVALID_ARG, "image: unknown prediction type %d", (int)p->prediction);
    if (p->batch_count == 0) p->batch_count = 1;
    if (p->batch_count > KILN_SD_MAX_BATCH)
        return kiln__fail(KILN_ERR_INVALID_ARG, "image: batch of %u images (at most %d)", p->batch_count,
                          KILN_SD_MAX_BATCH);
    if (p->steps == 0) p->steps = caps->default_steps;
    if (p->steps == 0 || p->steps > caps->max_steps || p->steps > KILN_MAX_STEPS)
        return kiln__fail(KILN_ERR_INVALID_ARG, "image: %u steps (1 to %u)", p->steps, caps->max_steps);
    if (!(p->guidance >= 0.0f)) p->guidance = caps->default_guidance; /* negative or NaN: the default */
    if (p->init_image) {
        const kiln_image *ii = p->init_image;
        if (!ii->data || ii->channels != 3 || ii->width == 0 || ii->height == 0)
            return kiln__fail(KILN_ERR_INVALID_ARG, "image: the init image must be a non-empty RGB image");
        if ((p->width && p->width != ii->width) || (p->height && p->height != ii->height))
            return kiln__fail(KILN_ERR_INVALID_ARG, "image: the init image is %ux%u but %ux%u was asked for",
                              ii->width, ii->height, p->width, p->height);
        p->width = ii->width;
        p->height = ii->height;
        if (!(p->strength >= 0.0f && p->strength <= 1.0f))
            return kiln__fail(KILN_ERR_INVALID_ARG, "image: strength %g is outside 0..1", (double)p->strength);
        if (!c->vae_encode)
            return kiln__fail(KILN_ERR_UNSUPPORTED, "image: this model has no VAE encoder (no img2img)");
    }
    if (p->mask) {
        const kiln_image *m = p->mask;
        if (!p->init_image) return kiln__fail(KILN_ERR_INVALID_ARG, "image: a mask needs an init image");
        if (!m->data || m->channels != 1)
            return kiln__fail(KILN_ERR_INVALID_ARG, "image: the mask must be a 1-channel image");
        if (m->width != p->width || m->height != p->height)
            return kiln__fail(KILN_ERR_INVALID_ARG, "image: the mask is %ux%u but the init image is %ux%u",
                              m->width, m->height, p->width, p->height);
    }
    if (p->width == 0) p->width = caps->default_width;
    if (p->height == 0) p->height = caps->default_height;
    uint32_t scale = (uint32_t)kiln__sd_vae_scale(c);
    uint32_t mult = caps->size_multiple > scale ? caps->size_multiple : scale;
    if (p->width % mult || p->height % mult)
        return kiln__fail(KILN_ERR_INVALID_ARG, "image: size %ux%u is not a multiple of %u", p->width, p->height,
                          mult);
    if (p->width < caps->min_size || p->height < caps->min_size || p->width > caps->max_size ||
        p->height > caps->max_size)
        return kiln__fail(KILN_ERR_INVALID_ARG, "image: size %ux%u is outside %u..%u", p->width, p->height,
                          caps->min_size, caps->max_size);
    if (c->unet_in_channels != 4 && c->unet_in_channels != 9)
        return kiln__fail(KILN_ERR_INVALID_ARG, "image: a UNet with %d input channels", c->unet_in_channels);
    if (c->unet_in_channels == 9 && !c->vae_encode)
        return kiln__fail(KILN_ERR_UNSUPPORTED, "image: an inpainting model needs a VAE encoder");
    return KILN_OK;
}

/* The UNet on x_in with a context; a 9-channel UNet gets the inpainting
 * channels appended. */
static kiln_status run_unet(sd_run *r, const float *x_in, double t, const float *ctx, int n_ctx, float *out) {
    const float *x = x_in;
    if (r->c->unet_in_channels == 9) {
        memcpy(r->unet_in, x_in, r->n * sizeof *x_in);
        memcpy(r->unet_in + r->n, r->inpaint_extra, 5 * r->hw * sizeof *x_in);
        x = r->unet_in;
    }
    return r->c->unet_eval(r->c->user, x, r->h, r->w, (float)t, ctx, n_ctx, out);
}

static kiln_status model_cond(void *user, const float *x_in, double t, float *out, size_t n) {
    sd_run *r = user;
    (void)n;
    return run_unet(r, x_in, t, r->cond, r->n_cond, out);
}

static kiln_status model_uncond(void *user, const float *x_in, double t, float *out, size_t n) {
    sd_run *r = user;
    (void)n;
    return run_unet(r, x_in, t, r->uncond, r->n_uncond, out);
}

/* Prompt and negative prompt as one batch (contexts of the same length). */
static kiln_status model_pair(void *user, const float *x_in, double t, float *out_c, float *out_u, size_t n) {
    sd_run *r = user;
    (void)n;
    const float *x = x_in;
    if (r->c->unet_in_channels == 9) {
        memcpy(r->unet_in, x_in, r->n * sizeof *x_in);
        memcpy(r->unet_in + r->n, r->inpaint_extra, 5 * r->hw * sizeof *x_in);
        x = r->unet_in;
    }
    return r->c->unet_eval_pair(r->c->user, x, r->h, r->w, (float)t, r->cond, r->uncond, r->n_cond, out_c, out_u);
}

/* The samplers' denoiser: prompt (and negative prompt with CFG: batched
 * when the components can and the contexts have one length), then, with
 * a mask, the init latent outside it (A1111 blends for every model). */
static kiln_status sd_denoise(void *user, const float *x, double sigma, double t, float *denoised, size_t n) {
    sd_run *r = user;
    kiln_status s;
    if (r->cfg && r->c->unet_eval_pair && r->n_cond == r->n_uncond) {
        s = kiln__compvis_denoise_pair(&r->dc, &r->du, model_pair, r, x, sigma, t, denoised, r->uncond_out, n);
        if (s != KILN_OK) return s;
        kiln__cfg_combine(denoised, denoised, r->uncond_out, r->p->guidance, n);
    } else {
        s = kiln__compvis_denoise(&r->dc, x, sigma, t, denoised, n);
        if (s != KILN_OK) return s;
        if (r->cfg) {
            s = kiln__compvis_denoise(&r->du, x, sigma, t, r->uncond_out, n);
            if (s != KILN_OK) return s;
            kiln__cfg_combine(denoised, denoised, r->uncond_out, r->p->guidance, n);
        }
    }
    if (r->latent_mask)
        for (size_t i = 0; i < n; i++) {
            float m = r->latent_mask[i % r->hw];
            denoised[i] = r->init_latent[i] * (1.0f - m) + denoised[i] * m;
        }
    memcpy(r->last_denoised, denoised, n * sizeof *denoised);
    return KILN_OK;
}

/* RGB8 [H][W][3] -> [3][H][W] in -1..1 (x / 127.5 - 1, as A1111 and diffusers). */
static void pixels_to_tensor(const uint8_t *px, size_t npx, const uint8_t *zero_where, float *out) {
    for (size_t i = 0; i < npx; i++)
        for (int ch = 0; ch < 3; ch++)
            out[ch * npx + i] = zero_where && zero_where[i] >= 128 ? 0.0f : px[i * 3 + ch] / 127.5f - 1.0f;
}

/* The mask at latent size: each scale x scale block's mean (8x8 in SD),
 * rounded to 0 or 1. */
static void mask_to_latent(const kiln_image *m, int h, int w, int scale, float *out) {
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            unsigned sum = 0;
            for (int dy = 0; dy < scale; dy++)
                for (int dx = 0; dx < scale; dx++)
                    sum += m->data[(size_t)(y * scale + dy) * m->width + x * scale + dx];
            out[(size_t)y * w + x] = sum * 2 >= 255u * (unsigned)(scale * scale) ? 1.0f : 0.0f;
        }
}

static kiln_status oom(void) {
    return kiln__fail(KILN_ERR_OUT_OF_MEMORY, "image: out of memory");
}

/* Encode pixels [3][H][W] to scaled posterior mean (and std when std_out). */
static kiln_status encode_image(sd_run *r, const float *rgb, float *mean_out, float *std_out) {
    float *logvar = malloc(r->n * sizeof *logvar);
    if (!logvar) return oom();
    kiln_status s = r->c->vae_encode(r->c->user, rgb, (int)r->p->height, (int)r->p->width, mean_out, logvar);
    if (s == KILN_OK)
        for (size_t i = 0; i < r->n; i++) {
            mean_out[i] *= r->c->latent_scale;
            /* ldm's DiagonalGaussianDistribution clamps the log variance to -30..20. */
            float lv = logvar[i] < -30.0f ? -30.0f : logvar[i] > 20.0f ? 20.0f : logvar[i];
            if (std_out) std_out[i] = expf(0.5f * lv) * r->c->latent_scale;
        }
    free(logvar);
    return s;
}

/* Append `repeats` copies of the empty prompt's conditioning (empty,
 * [n_empty][width]) to *ctx ([*n][width]). */
static kiln_status append_empty(float **ctx, int *n, const float *empty, int n_empty, int repeats, int width) {
    size_t row = (size_t)width, old = (size_t)*n * row, add = (size_t)n_empty * row;
    float *grown = realloc(*ctx, (old + (size_t)repeats * add) * sizeof *grown);
    if (!grown) return oom();
    for (int k = 0; k < repeats; k++) memcpy(grown + old + (size_t)k * add, empty, add * sizeof *grown);
    *ctx = grown;
    *n += repeats * n_empty;
    return KILN_OK;
}

/* A1111's pad_cond_uncond: the shorter of cond and uncond gets
 * (longer - shorter) / (the empty prompt's length) copies of the empty
 * prompt's conditioning appended (its integer division: with 77-token
 * chunks the lengths then agree). */
static kiln_status pad_conds(sd_run *r) {
    const kiln_sd_components *c = r->c;
    if (c->ctx_width <= 0)
        return kiln__fail(KILN_ERR_UNSUPPORTED, "image: pad_cond_uncond needs the model's context width");
    float *empty = NULL;
    int n_empty = 0;
    kiln_status s = c->encode_text(c->user, "", r->p->clip_skip, &empty, &n_empty);
    if (s == KILN_OK && n_empty <= 0) s = kiln__fail(KILN_ERR_FORMAT, "image: the empty prompt has no tokens");
    if (s == KILN_OK) {
        int diff = r->n_cond - r->n_uncond;
        if (diff > 0) s = append_empty(&r->uncond, &r->n_uncond, empty, n_empty, diff / n_empty, c->ctx_width);
        else s = append_empty(&r->cond, &r->n_cond, empty, n_empty, -diff / n_empty, c->ctx_width);
        r->padded = true;
    }
    free(empty);
    return s;
}

/* Conditioning, init latents, mask: what every image of the batch shares. */
static kiln_status prepare(sd_run *r) {
    const kiln_sd_components *c = r->c;
    const kiln_image_params *p = r->p;
    double t0 = now();
    kiln_status s = c->encode_text(c->user, p->prompt, p->clip_skip, &r->cond, &r->n_cond);
    if (s != KILN_OK) return s;
    if (r->cfg) {
        s = c->encode_text(c->user, p->negative_prompt ? p->negative_prompt : "", p->clip_skip, &r->uncond,
                           &r->n_uncond);
        if (s != KILN_OK) return s;
        if (p->pad_cond_uncond && r->n_cond != r->n_uncond) s = pad_conds(r);
        if (s != KILN_OK) return s;
    }
    r->t_text = now() - t0;
    t0 = now();
    r->uncond_out = malloc(r->n * sizeof(float));
    r->last_denoised = calloc(r->n, sizeof(float));
    if (!r->uncond_out || !r->last_denoised) return oom();
    size_t npx = (size_t)p->width * p->height;
    float *rgb = NULL;
    if (p->init_image || c->unet_in_channels == 9) {
        rgb = malloc(3 * npx * sizeof *rgb);
        if (!rgb) return oom();
    }
    if (p->init_image) {
        r->init_mean = malloc(r->n * sizeof(float));
        r->init_std = malloc(r->n * sizeof(float));
        r->init_latent = malloc(r->n * sizeof(float));
        if (!r->init_mean || !r->init_std || !r->init_latent) s = oom();
        if (s == KILN_OK) {
            pixels_to_tensor(p->init_image->data, npx, NULL, rgb);
            s = encode_image(r, rgb, r->init_mean, r->init_std);
        }
    }
    if (s == KILN_OK && p->mask) {
        r->latent_mask = malloc(r->hw * sizeof(float));
        if (!r->latent_mask) s = oom();
        else mask_to_latent(p->mask, r->h, r->w, kiln__sd_vae_scale(c), r->latent_mask);
    }
    if (s == KILN_OK && c->unet_in_channels == 9) {
        /* [mask, latent of the image with the masked area zeroed]; without
         * a mask (txt2img, img2img): all masked, so a mid-grey (0) image,
         * as A1111 conditions an inpainting model. */
        r->unet_in = malloc(9 * r->hw * sizeof(float));
        r->inpaint_extra = malloc(5 * r->hw * sizeof(float));
        if (!r->unet_in || !r->inpaint_extra) s = oom();
        if (s == KILN_OK) {
            for (size_t i = 0; i < r->hw; i++) r->inpaint_extra[i] = r->latent_mask ? r->latent_mask[i] : 1.0f;
            if (p->mask)
                pixels_to_tensor(p->init_image->data, npx, p->mask->data, rgb);
            else
                memset(rgb, 0, 3 * npx * sizeof *rgb);
            s = encode_image(r, rgb, r->inpaint_extra + r->hw, NULL);
        }
    }
    free(rgb);
    r->t_vae += now() - t0;
    if (s != KILN_OK) return s;
    /* The request's prediction type, else the model's (config or probe). */
    kiln_prediction pred = p->prediction == KILN_IMAGE_PREDICTION_EPS ? KILN_PRED_EPS
                           : p->prediction == KILN_IMAGE_PREDICTION_V ? KILN_PRED_V
                                                                      : c->prediction;
    s = kiln__compvis_init(&r->dc, pred, model_cond, r, r->n);
    if (s == KILN_OK && r->cfg) s = kiln__compvis_init(&r->du, pred, model_uncond, r, r->n);
    return s;
}

/* VAE-decode a model-space latent (divided by the scale in place) into
 * RGB8 px [H][W][3]: round(clamp((v + 1) / 2) * 255), as diffusers. */
static kiln_status vae_to_pixels(sd_run *r, float *latent, uint8_t *px) {
    const kiln_image_params *p = r->p;
    size_t npx = (size_t)p->width * p->height;
    float *rgb = malloc(3 * npx * sizeof *rgb);
    if (!rgb) return oom();
    for (size_t i = 0; i < r->n; i++) latent[i] /= r->c->latent_scale;
    double t0 = now();
    kiln_status s = r->c->vae_decode(r->c->user, latent, r->h, r->w, rgb);
    r->t_vae += now() - t0;
    if (s == KILN_OK)
        for (size_t i = 0; i < npx; i++)
            for (int ch = 0; ch < 3; ch++) {
                float v = (rgb[ch * npx + i] + 1.0f) * 0.5f;
                v = v < 0.0f ? 0.0f : v > 1.0f ? 1.0f : v;
                px[i * 3 + ch] = (uint8_t)lrintf(v * 255.0f);
            }
    free(rgb);
    return s;
}

/* Decode the final latent, then put the init image's pixels back outside
 * the mask (mask value as alpha). */
static kiln_status decode(sd_run *r, float *latent, kiln_image *img) {
    const kiln_image_params *p = r->p;
    size_t npx = (size_t)p->width * p->height;
    uint8_t *px = malloc(3 * npx);
    if (!px) return oom();
    kiln_status s = vae_to_pixels(r, latent, px);
    if (s != KILN_OK) {
        free(px);
        return s;
    }
    if (p->mask)
        for (size_t i = 0; i < npx; i++) {
            unsigned m = p->mask->data[i];
            for (int ch = 0; ch < 3; ch++)
                px[i * 3 + ch] =
                    (uint8_t)((px[i * 3 + ch] * m + p->init_image->data[i * 3 + ch] * (255u - m) + 127u) / 255u);
        }
    *img = (kiln_image){p->width, p->height, 3, px};
    return KILN_OK;
}

/* Report a step, with a preview when one is due: the cheap projection at
 * latent size into preview_px, or (preview_vae) the VAE's decode of the
 * denoised estimate at full size, through the scratch latent. */
static kiln_status report(sd_run *r, uint32_t index, uint32_t step, uint32_t total, uint8_t *preview_px,
                          float *scratch) {
    const kiln_image_params *p = r->p;
    if (!p->on_step) return KILN_OK;
    kiln_image preview = {(uint32_t)r->w, (uint32_t)r->h, 3, preview_px};
    bool due = p->preview_every && (step % p->preview_every == 0 || step == total);
    if (due && p->preview_vae) {
        memcpy(scratch, r->last_denoised, r->n * sizeof *scratch);
        kiln_status s = vae_to_pixels(r, scratch, preview_px);
        if (s != KILN_OK) return s;
        preview.width = p->width;
        preview.height = p->height;
    } else if (due) {
        kiln__sd_latent_preview(r->last_denoised, r->h, r->w, preview_px);
    }
    if (p->on_step(p->user, index, step, total, due ? &preview : NULL) != 0)
        return kiln__fail(KILN_ERR_CANCELLED, "image: cancelled by the step callback at step %u of %u", step, total);
    return KILN_OK;
}

/* Make image `index` of the batch. */
static kiln_status make_image(sd_run *r, uint32_t index, kiln_image *img) {
    const kiln_image_params *p = r->p;
    kiln_img_sampler_params sp = kiln__img_sampler_default_params(sampler_kind(p->sampler));
    sp.schedule = schedule_kind(p->schedule);
    sp.steps = (int)p->steps;
    kiln_img_sampler smp;
    memset(&smp, 0, sizeof smp);
    kiln_status s = kiln__img_sampler_init(&smp, &sp, r->n);
    if (s != KILN_OK) return s;
    float *x = malloc(r->n * sizeof *x);
    /* Previews: latent size, or full size through the VAE (with a scratch latent). */
    uint8_t *preview_px = malloc(p->preview_vae ? (size_t)p->width * p->height * 3 : r->hw * 3);
    float *scratch = p->preview_vae ? malloc(r->n * sizeof *scratch) : NULL;
    if (!x || !preview_px || (p->preview_vae && !scratch)) {
        s = oom();
        goto done;
    }
    kiln_rng rng;
    kiln__rng_init(&rng, p->rng == KILN_IMAGE_RNG_CUDA ? KILN_RNG_CUDA : KILN_RNG_CPU, p->seed + index);
    /* The initial noise: torch.randn([1, 4, h, w]) for this seed. */
    kiln__rng_randn(&rng, x, r->n);
    int first = 0;
    if (p->init_image) {
        /* This image's sample of the init image's posterior (drawn after
         * the initial noise). */
        kiln__rng_randn(&rng, r->init_latent, r->n);
        for (size_t i = 0; i < r->n; i++) r->init_latent[i] = r->init_mean[i] + r->init_std[i] * r->init_latent[i];
        if (p->strength <= 0.0f) {
            first = (int)p->steps; /* nothing to denoise */
            memcpy(x, r->init_latent, r->n * sizeof *x);
        } else {
            float st = p->strength < 0.999f ? p->strength : 0.999f;
            int t_enc = (int)(st * (float)p->steps);
            first = (int)p->steps - t_enc - 1;
            double sigma = smp.sigmas[first];
            for (size_t i = 0; i < r->n; i++) x[i] = r->init_latent[i] + x[i] * (float)sigma;
        }
    } else {
        float scale = (float)kiln__img_sampler_noise_scale(&smp, 0);
        for (size_t i = 0; i < r->n; i++) x[i] *= scale;
    }
    uint32_t total = p->steps - (uint32_t)first;
    for (int i = first; i < (int)p->steps; i++) {
        double t0 = now();
        s = kiln__img_sampler_step(&smp, i, x, sd_denoise, r, &rng);
        r->t_sampling += now() - t0;
        if (s == KILN_OK) s = report(r, index, (uint32_t)(i - first + 1), total, preview_px, scratch);
        if (s != KILN_OK) goto done;
    }
    if (total > 0) {
        float ls = (float)kiln__img_sampler_latent_scale(&smp, (int)p->steps - 1);
        for (size_t i = 0; i < r->n; i++) x[i] *= ls;
    }
    s = decode(r, x, img);
done:
    free(x);
    free(preview_px);
    free(scratch);
    kiln__img_sampler_free(&smp);
    return s;
}

/* A1111 records that the conditionings were padded ("Pad conds: True",
 * appended to its infotext when the padding happened). */
static kiln_status note_padding(char **text) {
    static const char note[] = ", Pad conds: True";
    size_t len = strlen(*text);
    char *grown = realloc(*text, len + sizeof note);
    if (!grown) return oom();
    memcpy(grown + len, note, sizeof note);
    *text = grown;
    return KILN_OK;
}

static void run_free(sd_run *r) {
    free(r->cond);
    free(r->uncond);
    free(r->unet_in);
    free(r->inpaint_extra);
    free(r->init_mean);
    free(r->init_std);
    free(r->init_latent);
    free(r->latent_mask);
    free(r->uncond_out);
    free(r->last_denoised);
    kiln__compvis_free(&r->dc);
    kiln__compvis_free(&r->du);
}

kiln_status kiln__sd_generate(const kiln_sd_components *c, const kiln_image_params *in, kiln_image_result *out) {
    memset(out, 0, sizeof *out);
    if (!c || !in) return kiln__fail(KILN_ERR_INVALID_ARG, "image: no model or no parameters");
    kiln_image_params p;
    kiln_status s = resolve(c, in, &p);
    if (s != KILN_OK) return s;
    sd_run r;
    memset(&r, 0, sizeof r);
    r.c = c;
    r.p = &p;
    r.h = (int)(p.height / (uint32_t)kiln__sd_vae_scale(c));
    r.w = (int)(p.width / (uint32_t)kiln__sd_vae_scale(c));
    r.hw = (size_t)r.h * r.w;
    r.n = KILN_SD_LATENT_CHANNELS * r.hw;
    r.cfg = p.guidance > 1.0f;
    s = prepare(&r);
    kiln_image_result res;
    memset(&res, 0, sizeof res);
    res.seed = p.seed;
    if (s == KILN_OK) {
        res.images = calloc(p.batch_count, sizeof *res.images);
        res.parameters = calloc(p.batch_count, sizeof *res.parameters);
        if (!res.images || !res.parameters) s = oom();
    }
    for (uint32_t i = 0; s == KILN_OK && i < p.batch_count; i++) {
        res.count = i + 1; /* so that a failure frees what was made */
        s = make_image(&r, i, &res.images[i]);
        if (s == KILN_OK) s = kiln__sd_parameters_text(&p, c->model_name, i, &res.parameters[i]);
        if (s == KILN_OK && r.padded) s = note_padding(&res.parameters[i]);
    }
    run_free(&r);
    if (s != KILN_OK) {
        kiln_image_result_free(&res);
        return s;
    }
    res.text_seconds = r.t_text;
    res.sampling_seconds = r.t_sampling;
    res.decode_seconds = r.t_vae;
    *out = res;
    return KILN_OK;
}
