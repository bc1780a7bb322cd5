/* fuzz/fuzz_image_request.c - libFuzzer target for the validation of image
 * requests (rbee image operations and AUTOMATIC1111 txt2img / img2img
 * bodies; the first byte picks which) against SD 1.5's capabilities, with
 * the decoding of base64 / data: URL images and masks that comes with it.
 *
 * Invariants: a rejected body has a 4xx/5xx status, a code and a message;
 * an accepted one has a prompt, a size within the model's range and a
 * multiple of its size multiple, 1..max_steps steps, a guidance scale in
 * 0..30 (or the default), a strength in 0..1, an input image of the
 * request's size when it has one, and a mask of that size. */
#include <jansson.h>
#include <stdint.h>
#include <string.h>

#include "worker/request_image.h"

#define ENSURE(cond)                                                                               \
    do {                                                                                           \
        if (!(cond)) __builtin_trap();                                                             \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    kiln_image_caps caps;
    kiln_variant_caps(KILN_VARIANT_SD15, &caps);
    caps.max_size = 256; /* keeps decoded images small */
    json_t *root = json_loadb((const char *)data + 1, size - 1, JSON_REJECT_DUPLICATES, NULL);
    if (!json_is_object(root)) {
        json_decref(root);
        return 0;
    }
    static const enum kiln__operation ops[] = {KILN__OP_IMAGE_GENERATION, KILN__OP_IMAGE_TRANSFORM,
                                               KILN__OP_IMAGE_INPAINT};
    struct kiln__image_request *r = NULL;
    struct kiln__api_error err;
    memset(&err, 0, sizeof err);
    int rc = data[0] < 128 ? kiln__image_request_from_job(root, ops[data[0] % 3], &caps, &r, &err)
                           : kiln__image_request_from_a1111(root, data[0] & 1, &caps, &r, &err);
    if (rc != 0) {
        ENSURE(r == NULL);
        ENSURE(err.status >= 400 && err.status <= 599 && err.code && err.message[0]);
    } else {
        const kiln_image_params *p = &r->p;
        ENSURE(p->prompt && p->prompt == r->prompt);
        ENSURE(p->width >= caps.min_size && p->width <= caps.max_size && p->width % caps.size_multiple == 0);
        ENSURE(p->height >= caps.min_size && p->height <= caps.max_size && p->height % caps.size_multiple == 0);
        ENSURE(p->steps >= 1 && p->steps <= caps.max_steps);
        ENSURE(p->guidance < 0 || p->guidance <= 30);
        ENSURE(p->strength >= 0 && p->strength <= 1);
        if (p->init_image) ENSURE(r->init.width == p->width && r->init.height == p->height && r->init.channels == 3);
        if (p->mask) ENSURE(r->mask.width == p->width && r->mask.height == p->height && r->mask.channels == 1);
    }
    kiln__image_request_free(r);
    json_decref(root);
    return 0;
}
