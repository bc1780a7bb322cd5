/* src/worker/request_image.h - image requests: the fields of the rbee image
 * operations, AUTOMATIC1111's txt2img / img2img bodies and the OpenAI images
 * API, validated against the loaded model's capabilities into one form the
 * job runner hands to the image engine (internal to src/worker).
 *
 * Input images (base64, data: URLs, multipart uploads) are decoded here,
 * with the model's size limits checked from the header before any pixel
 * memory is allocated. Every error names its field. */
#ifndef KILN_WORKER_REQUEST_IMAGE_H
#define KILN_WORKER_REQUEST_IMAGE_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "image/image_io.h"
#include "kiln/image.h"
#include "worker/request.h"

/* Most images one request may ask for (batch x iterations). */
#define KILN__IMAGE_MAX_BATCH 16
/* Largest guidance scale accepted. */
#define KILN__IMAGE_MAX_GUIDANCE 30.0

/* How an image's mask is read. */
enum kiln__mask_rule {
    KILN__MASK_LUMA_OR_ALPHA, /* `kiln image --mask`: transparent pixels repaint when the image has
                                 transparency, else its luma (white repaints) */
    KILN__MASK_A1111,         /* AUTOMATIC1111: an alpha channel that is not all opaque is the mask
                                 (opaque repaints, thresholded at 128), else the luma */
    KILN__MASK_OPENAI,        /* OpenAI edits: fully transparent pixels repaint; an alpha channel is required */
};

/* A validated image request. */
struct kiln__image_request {
    kiln_image_params p;          /* the engine's parameters; prompt, negative_prompt, init_image and mask
                                     point at the owned fields below; on_step is set by the runner */
    char *prompt;                 /* the prompt (owned) */
    char *negative_prompt;        /* the negative prompt (owned), or NULL */
    kiln_image init;              /* the input image, RGB (owned), or empty for txt2img */
    kiln_image mask;              /* the mask, 1 channel, 255 = repaint (owned), or empty */
    int seed_given;               /* the request named a seed (else the job draws one) */
    kiln_image_format out_format; /* how result images are encoded (PNG unless OpenAI asks otherwise) */
    int out_quality;              /* JPEG / WebP quality 1..100 */
};

/* A request with the engine's defaults, owning nothing yet; NULL when out
 * of memory. */
struct kiln__image_request *kiln__image_request_new(void);
/* Release a request; NULL is fine. */
void kiln__image_request_free(struct kiln__image_request *r);

/* Set the prompt or the negative prompt (copied); -1 with *err when out of
 * memory. */
int kiln__image_request_set_prompt(struct kiln__image_request *r, const char *prompt, size_t len, int negative,
                                   struct kiln__api_error *err);

/* Decode an uploaded image (PNG, JPEG or WebP bytes) for `field` within the
 * model's size limits: the input image as RGB into r->init, or the mask
 * (read by `rule`) into r->mask. 400 naming the field for undecodable data,
 * 413 for an image over the limits. */
int kiln__image_request_set_image(struct kiln__image_request *r, const char *field, const uint8_t *data, size_t size,
                                  int is_mask, enum kiln__mask_rule rule, const kiln_image_caps *caps,
                                  struct kiln__api_error *err);
/* kiln__image_request_set_image from base64 text or a data: URL. */
int kiln__image_request_set_image_b64(struct kiln__image_request *r, const char *field, const char *text,
                                      size_t len, int is_mask, enum kiln__mask_rule rule, const kiln_image_caps *caps,
                                      struct kiln__api_error *err);

/* Final checks once every field is read: sizes (multiples, model range,
 * equal to the input image's when given), steps, the mask's size; fills the
 * size from the input image or the model. `wfield`/`hfield` name the size
 * fields in messages ("width", "size", ...). */
int kiln__image_request_finish(struct kiln__image_request *r, const kiln_image_caps *caps, const char *wfield,
                               const char *hfield, struct kiln__api_error *err);

/* rbee POST /v1/jobs with an image operation: prompt, negative_prompt,
 * steps, guidance_scale, seed, width, height, sampler, schedule, batch,
 * preview_every, input_image / init_image, mask_image, strength,
 * prediction (auto, eps, v). */
int kiln__image_request_from_job(json_t *obj, enum kiln__operation op, const kiln_image_caps *caps,
                                 struct kiln__image_request **out, struct kiln__api_error *err);

/* AUTOMATIC1111 /sdapi/v1/txt2img (img2img = 0) or /sdapi/v1/img2img
 * (init_images, mask, denoising_strength, inpainting_mask_invert; kiln's
 * "prediction" as an extension field). */
int kiln__image_request_from_a1111(json_t *obj, int img2img, const kiln_image_caps *caps,
                                   struct kiln__image_request **out, struct kiln__api_error *err);

/* A size "WxH" (OpenAI's `size`) into *w, *h; "auto" gives 0 x 0. -1 with
 * a 400 naming `field` otherwise. */
int kiln__image_parse_size(const char *s, uint32_t *w, uint32_t *h, const char *field, struct kiln__api_error *err);

/* A gen_request for the job queue carrying `image` (taken, also on
 * failure) and owning `root` (taken; may be NULL). NULL when out of
 * memory (err filled). */
struct kiln__gen_request *kiln__gen_request_for_image(enum kiln__operation op, json_t *root,
                                                      struct kiln__image_request *image, struct kiln__api_error *err);

#endif /* KILN_WORKER_REQUEST_IMAGE_H */
