/* src/worker/request_image.c - validation of image requests (rbee image
 * operations, AUTOMATIC1111 bodies, the OpenAI images API's pieces) against
 * the loaded model's capabilities, and the decoding of uploaded images. */
#include "worker/request_image.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/base64.h"

struct kiln__image_request *kiln__image_request_new(void) {
    struct kiln__image_request *r = calloc(1, sizeof *r);
    if (!r) return NULL;
    r->p = kiln_image_default_params();
    r->out_format = KILN_IMAGE_FORMAT_PNG;
    r->out_quality = 90;
    return r;
}

void kiln__image_request_free(struct kiln__image_request *r) {
    if (!r) return;
    free(r->prompt);
    free(r->negative_prompt);
    kiln_image_clear(&r->init);
    kiln_image_clear(&r->mask);
    free(r);
}

int kiln__image_request_set_prompt(struct kiln__image_request *r, const char *prompt, size_t len, int negative,
                                   struct kiln__api_error *err) {
    char *s = malloc(len + 1);
    if (!s) return kiln__req_oom(err);
    memcpy(s, prompt, len);
    s[len] = '\0';
    char **slot = negative ? &r->negative_prompt : &r->prompt;
    free(*slot);
    *slot = s;
    if (negative) r->p.negative_prompt = s;
    else r->p.prompt = s;
    return 0;
}

/* A mask from an RGBA image by `rule` into *out (1 channel). */
static kiln_status make_mask(const kiln_image *rgba, int has_alpha, enum kiln__mask_rule rule, kiln_image *out) {
    size_t n = (size_t)rgba->width * rgba->height;
    int alpha_used = 0;
    switch (rule) {
    case KILN__MASK_LUMA_OR_ALPHA: alpha_used = has_alpha; break;
    case KILN__MASK_OPENAI: alpha_used = 1; break;
    case KILN__MASK_A1111:
        for (size_t i = 0; i < n && !alpha_used; i++) alpha_used = rgba->data[4 * i + 3] != 255;
        break;
    }
    if (alpha_used && rule != KILN__MASK_A1111) return kiln__image_mask_from_alpha(rgba, out);
    uint8_t *m = malloc(n ? n : 1);
    if (!m) return KILN_ERR_OUT_OF_MEMORY;
    if (alpha_used) {
        for (size_t i = 0; i < n; i++) m[i] = rgba->data[4 * i + 3] > 128 ? 255 : 0;
    } else {
        kiln__image_convert_channels(rgba->data, 4, m, 1, n);
    }
    *out = (kiln_image){rgba->width, rgba->height, 1, m};
    return KILN_OK;
}

int kiln__image_request_set_image(struct kiln__image_request *r, const char *fieldname, const uint8_t *data,
                                  size_t size, int is_mask, enum kiln__mask_rule rule, const kiln_image_caps *caps,
                                  struct kiln__api_error *err) {
    kiln_image_limits lim = {caps->max_size, (uint64_t)caps->max_size * caps->max_size};
    kiln_image img = {0};
    kiln_image_info info;
    kiln_status st = kiln__image_decode(data, size, is_mask ? 4 : 3, &lim, &img, &info);
    if (st == KILN_ERR_TOO_LARGE) {
        kiln__api_error_set(err, 413, "invalid_request_error", "image_too_large", fieldname,
                            "%s: %s (the model takes at most %ux%u pixels)", fieldname, kiln_last_error(),
                            caps->max_size, caps->max_size);
        return -1;
    }
    if (st == KILN_ERR_OUT_OF_MEMORY) return kiln__req_oom(err);
    if (st != KILN_OK) return kiln__req_bad(err, fieldname, "not a PNG, JPEG or WebP image we can read (%s)", kiln_last_error());
    if (!is_mask) {
        kiln_image_clear(&r->init);
        r->init = img;
        r->p.init_image = &r->init;
        return 0;
    }
    if (rule == KILN__MASK_OPENAI && !info.has_alpha) {
        kiln_image_clear(&img);
        return kiln__req_bad(err, fieldname, "must have an alpha channel (fully transparent pixels mark the area to edit)");
    }
    kiln_image m = {0};
    st = make_mask(&img, info.has_alpha, rule, &m);
    kiln_image_clear(&img);
    if (st != KILN_OK) return kiln__req_oom(err);
    kiln_image_clear(&r->mask);
    r->mask = m;
    r->p.mask = &r->mask;
    return 0;
}

int kiln__image_request_set_image_b64(struct kiln__image_request *r, const char *fieldname, const char *text,
                                      size_t len, int is_mask, enum kiln__mask_rule rule, const kiln_image_caps *caps,
                                      struct kiln__api_error *err) {
    uint8_t *bytes = NULL;
    size_t n = 0;
    kiln_status st = len >= 5 && strncmp(text, "data:", 5) == 0 ? kiln__data_url_decode(text, &bytes, &n, NULL, 0)
                                                               : kiln__base64_decode(text, len, &bytes, &n);
    if (st == KILN_ERR_OUT_OF_MEMORY) return kiln__req_oom(err);
    if (st != KILN_OK) return kiln__req_bad(err, fieldname, "not base64 or a base64 data: URL (%s)", kiln_last_error());
    int rc = kiln__image_request_set_image(r, fieldname, bytes, n, is_mask, rule, caps, err);
    free(bytes);
    return rc;
}

/* A side length `v` (given) against the model's rules. */
static int check_side(uint32_t v, const kiln_image_caps *caps, const char *name, struct kiln__api_error *err) {
    if (v < caps->min_size || v > caps->max_size)
        return kiln__req_bad(err, name, "must be between %u and %u pixels, got %u", caps->min_size, caps->max_size, v);
    if (caps->size_multiple && v % caps->size_multiple)
        return kiln__req_bad(err, name, "must be a multiple of %u pixels, got %u", caps->size_multiple, v);
    return 0;
}

int kiln__image_request_finish(struct kiln__image_request *r, const kiln_image_caps *caps, const char *wfield,
                               const char *hfield, struct kiln__api_error *err) {
    kiln_image_params *p = &r->p;
    if (!r->prompt) return kiln__req_bad(err, "prompt", "is required (a string)");
    if (p->steps == 0) p->steps = caps->default_steps;
    if (p->steps > caps->max_steps) return kiln__req_bad(err, "steps", "must be between 1 and %u, got %u", caps->max_steps, p->steps);
    if (r->init.data) {
        if ((p->width && p->width != r->init.width) || (p->height && p->height != r->init.height))
            return kiln__req_bad(err, p->width != r->init.width ? wfield : hfield,
                       "%ux%u differs from the input image's %ux%u (leave the size out to use the input's)",
                       p->width ? p->width : r->init.width, p->height ? p->height : r->init.height, r->init.width,
                       r->init.height);
        p->width = r->init.width;
        p->height = r->init.height;
    }
    if (p->width == 0) p->width = caps->default_width;
    if (p->height == 0) p->height = caps->default_height;
    if (check_side(p->width, caps, wfield, err) || check_side(p->height, caps, hfield, err)) return -1;
    if (r->mask.data && (r->mask.width != p->width || r->mask.height != p->height))
        return kiln__req_bad(err, "mask", "is %ux%u but the image is %ux%u", r->mask.width, r->mask.height, p->width,
                   p->height);
    return 0;
}

/* Sampler and schedule names. */
static int get_sampler(json_t *obj, const char *name, kiln_image_params *p, struct kiln__api_error *err) {
    const char *s = NULL;
    if (kiln__req_string(obj, name, &s, err)) return -1;
    if (s && !kiln_image_sampler_from_name(s, &p->sampler))
        return kiln__req_bad(err, name, "unknown sampler '%.40s' (euler, euler_a, heun, dpmpp_2m, dpmpp_2m_sde, ddim, lcm)", s);
    return 0;
}

static int get_schedule(json_t *obj, const char *name, kiln_image_params *p, struct kiln__api_error *err) {
    const char *s = NULL;
    if (kiln__req_string(obj, name, &s, err)) return -1;
    if (!s || strcmp(s, "Automatic") == 0 || strcmp(s, "automatic") == 0) return 0;
    if (!kiln_image_schedule_from_name(s, &p->schedule))
        return kiln__req_bad(err, name, "unknown schedule '%.40s' (normal, karras, exponential, sgm_uniform)", s);
    return 0;
}

/* "prediction": auto, eps or v (a kiln field; A1111 has none, so its
 * bodies may carry it as an extension). */
static int get_prediction(json_t *obj, kiln_image_params *p, struct kiln__api_error *err) {
    const char *s = NULL;
    if (kiln__req_string(obj, "prediction", &s, err)) return -1;
    if (s && !kiln_image_prediction_from_name(s, &p->prediction))
        return kiln__req_bad(err, "prediction", "unknown prediction type '%.40s' (auto, eps, v)", s);
    return 0;
}

/* The fields rbee and A1111 share under different names. */
struct names {
    const char *guidance; /* "guidance_scale" / "cfg_scale" */
    const char *sampler;  /* "sampler" / "sampler_name" */
    const char *schedule; /* "schedule" / "scheduler" */
    const char *batch;    /* "batch" / "batch_size" */
    const char *strength; /* "strength" / "denoising_strength" */
};

static int parse_common(json_t *obj, const struct names *nm, struct kiln__image_request *r,
                        const kiln_image_caps *caps, struct kiln__api_error *err) {
    kiln_image_params *p = &r->p;
    json_t *v = kiln__req_field(obj, "prompt");
    if (!v) return kiln__req_bad(err, "prompt", "is required (a string)");
    if (!json_is_string(v)) return kiln__req_bad(err, "prompt", "must be a string");
    if (kiln__image_request_set_prompt(r, json_string_value(v), json_string_length(v), 0, err)) return -1;
    if ((v = kiln__req_field(obj, "negative_prompt"))) {
        if (!json_is_string(v)) return kiln__req_bad(err, "negative_prompt", "must be a string");
        if (kiln__image_request_set_prompt(r, json_string_value(v), json_string_length(v), 1, err)) return -1;
    }
    long long i = 0;
    double d = 0;
    int given;
    if (kiln__req_int(obj, "steps", 1, caps->max_steps, &i, &given, err)) return -1;
    if (given) p->steps = (uint32_t)i;
    if (kiln__req_number(obj, nm->guidance, 0, KILN__IMAGE_MAX_GUIDANCE, &d, &given, err)) return -1;
    if (given) p->guidance = (float)d;
    if (kiln__req_int(obj, "seed", -1, INT64_MAX, &i, &given, err)) return -1;
    if (given && i >= 0) p->seed = (uint64_t)i, r->seed_given = 1;
    if (kiln__req_int(obj, "width", 1, 1 << 20, &i, &given, err)) return -1;
    if (given && check_side((uint32_t)i, caps, "width", err)) return -1;
    if (given) p->width = (uint32_t)i;
    if (kiln__req_int(obj, "height", 1, 1 << 20, &i, &given, err)) return -1;
    if (given && check_side((uint32_t)i, caps, "height", err)) return -1;
    if (given) p->height = (uint32_t)i;
    if (get_sampler(obj, nm->sampler, p, err) || get_schedule(obj, nm->schedule, p, err)) return -1;
    if (get_prediction(obj, p, err)) return -1;
    if (kiln__req_int(obj, nm->batch, 1, KILN__IMAGE_MAX_BATCH, &i, &given, err)) return -1;
    if (given) p->batch_count = (uint32_t)i;
    if (kiln__req_int(obj, "preview_every", 0, 10000, &i, &given, err)) return -1;
    if (given) p->preview_every = (uint32_t)i;
    if (kiln__req_number(obj, nm->strength, 0, 1, &d, &given, err)) return -1;
    if (given) p->strength = (float)d;
    if (kiln__req_int(obj, "clip_skip", 0, 12, &i, &given, err)) return -1;
    if (given) p->clip_skip = (uint32_t)i;
    /* A1111's "Pad prompt/negative prompt" (off unless asked for) */
    return kiln__req_bool(obj, "pad_cond_uncond", &p->pad_cond_uncond, err);
}

/* An image field given as a base64 string. */
static int image_field(json_t *obj, const char *name, int required, int is_mask, enum kiln__mask_rule rule,
                       struct kiln__image_request *r, const kiln_image_caps *caps, struct kiln__api_error *err) {
    json_t *v = kiln__req_field(obj, name);
    if (!v) return required ? kiln__req_bad(err, name, "is required (base64 PNG, JPEG or WebP, or a data: URL)") : 0;
    if (!json_is_string(v) || json_string_length(v) == 0)
        return kiln__req_bad(err, name, "must be a non-empty string (base64 or a data: URL)");
    return kiln__image_request_set_image_b64(r, name, json_string_value(v), json_string_length(v), is_mask, rule,
                                             caps, err);
}

int kiln__image_request_from_job(json_t *obj, enum kiln__operation op, const kiln_image_caps *caps,
                                 struct kiln__image_request **out, struct kiln__api_error *err) {
    *out = NULL;
    struct kiln__image_request *r = kiln__image_request_new();
    if (!r) return kiln__req_oom(err);
    static const struct names nm = {"guidance_scale", "sampler", "schedule", "batch", "strength"};
    int rc = parse_common(obj, &nm, r, caps, err);
    switch (op) {
    case KILN__OP_IMAGE_GENERATION:
    case KILN__OP_INFER: break;
    case KILN__OP_IMAGE_TRANSFORM:
    case KILN__OP_IMAGE_INPAINT: {
        /* The image under either name; when neither is given, the error
         * names the one the operation documents. */
        const char *named = op == KILN__OP_IMAGE_TRANSFORM ? "input_image" : "init_image";
        const char *other = op == KILN__OP_IMAGE_TRANSFORM ? "init_image" : "input_image";
        if (rc == 0 && kiln__req_field(obj, "input_image") && kiln__req_field(obj, "init_image"))
            rc = kiln__req_bad(err, "init_image", "give input_image or init_image, not both");
        if (rc == 0)
            rc = image_field(obj, kiln__req_field(obj, other) ? other : named, 1, 0, KILN__MASK_LUMA_OR_ALPHA, r,
                             caps, err);
        if (rc == 0 && op == KILN__OP_IMAGE_INPAINT)
            rc = image_field(obj, "mask_image", 1, 1, KILN__MASK_LUMA_OR_ALPHA, r, caps, err);
        break;
    }
    }
    if (rc == 0) rc = kiln__image_request_finish(r, caps, "width", "height", err);
    if (rc != 0) {
        if (strcmp(err->param, "mask") == 0) snprintf(err->param, sizeof err->param, "mask_image");
        kiln__image_request_free(r);
        return -1;
    }
    *out = r;
    return 0;
}

/* Resize an 8-bit image to w x h in place, bilinear with pixel centres
 * aligned (A1111's "Just resize" mode, which uses Lanczos: close, not
 * identical). */
static kiln_status resize(kiln_image *img, uint32_t w, uint32_t h) {
    uint32_t c = img->channels;
    uint8_t *out = malloc((size_t)w * h * c);
    if (!out) return KILN_ERR_OUT_OF_MEMORY;
    for (uint32_t y = 0; y < h; y++) {
        double sy = ((double)y + 0.5) * img->height / h - 0.5;
        if (sy < 0) sy = 0;
        uint32_t y0 = (uint32_t)sy, y1 = y0 + 1 < img->height ? y0 + 1 : y0;
        double fy = sy - y0;
        for (uint32_t x = 0; x < w; x++) {
            double sx = ((double)x + 0.5) * img->width / w - 0.5;
            if (sx < 0) sx = 0;
            uint32_t x0 = (uint32_t)sx, x1 = x0 + 1 < img->width ? x0 + 1 : x0;
            double fx = sx - x0;
            for (uint32_t k = 0; k < c; k++) {
                const uint8_t *d = img->data;
                double v = (1 - fy) * ((1 - fx) * d[((size_t)y0 * img->width + x0) * c + k] +
                                       fx * d[((size_t)y0 * img->width + x1) * c + k]) +
                           fy * ((1 - fx) * d[((size_t)y1 * img->width + x0) * c + k] +
                                 fx * d[((size_t)y1 * img->width + x1) * c + k]);
                out[((size_t)y * w + x) * c + k] = (uint8_t)(v + 0.5);
            }
        }
    }
    free(img->data);
    img->data = out;
    img->width = w;
    img->height = h;
    return KILN_OK;
}

int kiln__image_request_from_a1111(json_t *obj, int img2img, const kiln_image_caps *caps,
                                   struct kiln__image_request **out, struct kiln__api_error *err) {
    *out = NULL;
    struct kiln__image_request *r = kiln__image_request_new();
    if (!r) return kiln__req_oom(err);
    static const struct names nm = {"cfg_scale", "sampler_name", "scheduler", "batch_size", "denoising_strength"};
    int rc = parse_common(obj, &nm, r, caps, err);
    if (rc == 0 && json_is_true(json_object_get(obj, "enable_hr")))
        kiln__api_error_set(err, 400, "invalid_request_error", "unsupported", "enable_hr",
                            "enable_hr: the hires fix is not supported by this worker"), rc = -1;
    long long n_iter = 1;
    int given = 0;
    if (rc == 0) rc = kiln__req_int(obj, "n_iter", 1, KILN__IMAGE_MAX_BATCH, &n_iter, &given, err);
    if (rc == 0 && r->p.batch_count * (uint32_t)n_iter > KILN__IMAGE_MAX_BATCH)
        rc = kiln__req_bad(err, "n_iter", "batch_size x n_iter must be at most %d", KILN__IMAGE_MAX_BATCH);
    if (rc == 0) r->p.batch_count = (r->p.batch_count ? r->p.batch_count : 1) * (uint32_t)n_iter;
    /* A1111's "sampler_index" is the older name of sampler_name. */
    if (rc == 0 && !kiln__req_field(obj, "sampler_name")) rc = get_sampler(obj, "sampler_index", &r->p, err);
    if (rc == 0 && img2img) {
        json_t *v = kiln__req_field(obj, "init_images");
        if (!v || !json_is_array(v) || json_array_size(v) == 0)
            rc = kiln__req_bad(err, "init_images", "is required (an array of one base64 image)");
        else if (json_array_size(v) > 1)
            rc = kiln__req_bad(err, "init_images", "one image is supported, got %zu", json_array_size(v));
        json_t *s = rc == 0 ? json_array_get(v, 0) : NULL;
        if (rc == 0 && (!json_is_string(s) || json_string_length(s) == 0))
            rc = kiln__req_bad(err, "init_images", "must hold base64 strings");
        if (rc == 0)
            rc = kiln__image_request_set_image_b64(r, "init_images", json_string_value(s), json_string_length(s), 0,
                                                   KILN__MASK_A1111, caps, err);
        if (rc == 0) rc = image_field(obj, "mask", 0, 1, KILN__MASK_A1111, r, caps, err);
        /* A1111 resizes the input (and mask) to the size asked for. */
        uint32_t w = r->p.width ? r->p.width : r->init.width, h = r->p.height ? r->p.height : r->init.height;
        if (rc == 0 && (w != r->init.width || h != r->init.height) &&
            (resize(&r->init, w, h) != KILN_OK || (r->mask.data && resize(&r->mask, w, h) != KILN_OK)))
            rc = kiln__req_oom(err);
        long long inv = 0;
        if (rc == 0) rc = kiln__req_int(obj, "inpainting_mask_invert", 0, 1, &inv, &given, err);
        if (rc == 0 && inv && r->mask.data) {
            size_t n = (size_t)r->mask.width * r->mask.height;
            for (size_t i = 0; i < n; i++) r->mask.data[i] = (uint8_t)(255 - r->mask.data[i]);
        }
    }
    if (rc == 0) rc = kiln__image_request_finish(r, caps, "width", "height", err);
    if (rc != 0) {
        kiln__image_request_free(r);
        return -1;
    }
    *out = r;
    return 0;
}

int kiln__image_parse_size(const char *s, uint32_t *w, uint32_t *h, const char *fieldname,
                           struct kiln__api_error *err) {
    *w = *h = 0;
    if (strcmp(s, "auto") == 0) return 0;
    unsigned long a = 0, b = 0;
    const char *q = s;
    int digits = 0;
    while (*q >= '0' && *q <= '9' && digits < 7) a = a * 10 + (unsigned long)(*q++ - '0'), digits++;
    if (!digits || *q != 'x') return kiln__req_bad(err, fieldname, "must be WIDTHxHEIGHT (e.g. 512x512) or auto");
    q++;
    digits = 0;
    while (*q >= '0' && *q <= '9' && digits < 7) b = b * 10 + (unsigned long)(*q++ - '0'), digits++;
    if (!digits || *q || a == 0 || b == 0) return kiln__req_bad(err, fieldname, "must be WIDTHxHEIGHT (e.g. 512x512) or auto");
    *w = (uint32_t)a;
    *h = (uint32_t)b;
    return 0;
}

struct kiln__gen_request *kiln__gen_request_for_image(enum kiln__operation op, json_t *root,
                                                      struct kiln__image_request *image, struct kiln__api_error *err) {
    struct kiln__gen_request *g = calloc(1, sizeof *g);
    if (!g) {
        kiln__image_request_free(image);
        json_decref(root);
        kiln__req_oom(err);
        return NULL;
    }
    g->api = KILN__API_JOB;
    g->op = op;
    g->root = root;
    g->image = image;
    g->seed_given = image->seed_given;
    g->sampling = kiln_sampling_default_params();
    return g;
}
