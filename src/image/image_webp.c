/* src/image/image_webp.c - WebP (lossy or lossless, still images) through
 * libwebp: features read first, then a decode into a buffer kiln owns. */
#include <stdlib.h>
#include <string.h>
#include <webp/decode.h>

#include "core/error.h"
#include "image/image_io.h"

/* The bitstream features, or a clear error. */
static kiln_status features(const uint8_t *data, size_t size, WebPBitstreamFeatures *f) {
    VP8StatusCode r = WebPGetFeatures(data, size, f);
    if (r == VP8_STATUS_NOT_ENOUGH_DATA) return kiln__fail(KILN_ERR_FORMAT, "webp: file is truncated");
    if (r != VP8_STATUS_OK) return kiln__fail(KILN_ERR_FORMAT, "webp: bad header (libwebp status %d)", (int)r);
    if (f->has_animation) return kiln__fail(KILN_ERR_UNSUPPORTED, "webp: animated images are not supported");
    if (f->width <= 0 || f->height <= 0) return kiln__fail(KILN_ERR_FORMAT, "webp: image has a zero dimension");
    return KILN_OK;
}

kiln_status kiln__webp_probe(const uint8_t *data, size_t size, kiln_image_info *info) {
    WebPBitstreamFeatures f;
    kiln_status s = features(data, size, &f);
    if (s != KILN_OK) return s;
    info->width = (uint32_t)f.width;
    info->height = (uint32_t)f.height;
    info->has_alpha = f.has_alpha != 0;
    return KILN_OK;
}

kiln_status kiln__webp_decode(const uint8_t *data, size_t size, uint32_t channels, const kiln_image_limits *lim,
                              kiln_image *out) {
    WebPBitstreamFeatures f;
    kiln_status s = features(data, size, &f);
    if (s == KILN_OK) s = kiln__image_check_size("webp", (uint32_t)f.width, (uint32_t)f.height, lim);
    if (s != KILN_OK) return s;
    size_t stride = (size_t)f.width * channels, n = stride * (size_t)f.height;
    uint8_t *px = malloc(n);
    if (!px) return kiln__fail(KILN_ERR_OUT_OF_MEMORY, "webp: out of memory for %dx%d pixels", f.width, f.height);
    uint8_t *r = channels == 4 ? WebPDecodeRGBAInto(data, size, px, n, (int)stride)
                               : WebPDecodeRGBInto(data, size, px, n, (int)stride);
    if (!r) {
        free(px);
        return kiln__fail(KILN_ERR_FORMAT, "webp: corrupt or truncated image data");
    }
    *out = (kiln_image){(uint32_t)f.width, (uint32_t)f.height, channels, px};
    return KILN_OK;
}
