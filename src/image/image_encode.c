/* src/image/image_encode.c - JPEG and WebP encoding of 8-bit RGB images (the
 * OpenAI images API's output_format), next to the PNG encoder, behind one
 * call that picks the format. */
#include <stdlib.h>
#include <string.h>
#include <turbojpeg.h>
#include <webp/encode.h>

#include "core/error.h"
#include "image/image_io.h"

/* JPEG through TurboJPEG (4:2:0 chroma, as PIL's default). */
static kiln_status jpeg_encode(const kiln_image *img, int quality, uint8_t **out, size_t *out_size) {
    tjhandle tj = tjInitCompress();
    if (!tj) return kiln__fail(KILN_ERR_OUT_OF_MEMORY, "jpeg: cannot start the encoder");
    unsigned char *buf = NULL;
    unsigned long len = 0;
    int pf = img->channels == 1 ? TJPF_GRAY : img->channels == 4 ? TJPF_RGBA : TJPF_RGB;
    int rc = tjCompress2(tj, img->data, (int)img->width, 0, (int)img->height, pf, &buf, &len,
                         img->channels == 1 ? TJSAMP_GRAY : TJSAMP_420, quality, 0);
    kiln_status s = KILN_OK;
    if (rc != 0) {
        s = kiln__fail(KILN_ERR_INTERNAL, "jpeg: encoding failed: %s", tjGetErrorStr2(tj));
    } else if (!(*out = malloc(len))) {
        s = kiln__fail(KILN_ERR_OUT_OF_MEMORY, "jpeg: out of memory");
    } else {
        memcpy(*out, buf, len);
        *out_size = len;
    }
    tjFree(buf);
    tjDestroy(tj);
    return s;
}

/* Lossy WebP through libwebp's simple API (RGB or RGBA only). */
static kiln_status webp_encode(const kiln_image *img, int quality, uint8_t **out, size_t *out_size) {
    if (img->channels != 3 && img->channels != 4)
        return kiln__fail(KILN_ERR_INVALID_ARG, "webp: can encode RGB or RGBA, not %u channels", img->channels);
    uint8_t *buf = NULL;
    int stride = (int)(img->width * img->channels);
    size_t len = img->channels == 4
                     ? WebPEncodeRGBA(img->data, (int)img->width, (int)img->height, stride, (float)quality, &buf)
                     : WebPEncodeRGB(img->data, (int)img->width, (int)img->height, stride, (float)quality, &buf);
    if (len == 0 || !buf) return kiln__fail(KILN_ERR_INTERNAL, "webp: encoding failed");
    kiln_status s = KILN_OK;
    if (!(*out = malloc(len))) s = kiln__fail(KILN_ERR_OUT_OF_MEMORY, "webp: out of memory");
    else memcpy(*out, buf, len), *out_size = len;
    WebPFree(buf);
    return s;
}

kiln_status kiln__image_encode(const kiln_image *img, kiln_image_format format, int quality, const char *parameters,
                               uint8_t **out, size_t *out_size) {
    *out = NULL;
    *out_size = 0;
    if (!img || !img->data || img->width == 0 || img->height == 0 ||
        (img->channels != 1 && img->channels != 3 && img->channels != 4))
        return kiln__fail(KILN_ERR_INVALID_ARG, "image encode: not an 8-bit grey, RGB or RGBA image");
    if (img->width > KILN_IMAGE_MAX_SIDE || img->height > KILN_IMAGE_MAX_SIDE)
        return kiln__fail(KILN_ERR_TOO_LARGE, "image encode: %ux%u is too large", img->width, img->height);
    if (quality < 1) quality = 1;
    if (quality > 100) quality = 100;
    switch (format) {
    case KILN_IMAGE_FORMAT_PNG: return kiln__png_encode(img, parameters, out, out_size);
    case KILN_IMAGE_FORMAT_JPEG: return jpeg_encode(img, quality, out, out_size);
    case KILN_IMAGE_FORMAT_WEBP: return webp_encode(img, quality, out, out_size);
    case KILN_IMAGE_FORMAT_UNKNOWN: break;
    }
    return kiln__fail(KILN_ERR_INVALID_ARG, "image encode: no format given");
}
