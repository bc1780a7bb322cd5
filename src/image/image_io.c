/* src/image/image_io.c - format detection, limits, channel conversion and
 * file reading around the PNG, JPEG and WebP decoders (image_png.c,
 * image_jpeg.c, image_webp.c). */
#include "image/image_io.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"

void kiln_image_clear(kiln_image *img) {
    if (!img) return;
    free(img->data);
    memset(img, 0, sizeof *img);
}

kiln_image_limits kiln__image_default_limits(void) {
    return (kiln_image_limits){KILN_IMAGE_MAX_SIDE, KILN_IMAGE_MAX_PIXELS};
}

kiln_image_format kiln__image_detect(const uint8_t *data, size_t size) {
    static const uint8_t png_sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    if (!data) return KILN_IMAGE_FORMAT_UNKNOWN;
    if (size >= 8 && memcmp(data, png_sig, 8) == 0) return KILN_IMAGE_FORMAT_PNG;
    if (size >= 3 && data[0] == 0xff && data[1] == 0xd8 && data[2] == 0xff) return KILN_IMAGE_FORMAT_JPEG;
    if (size >= 12 && memcmp(data, "RIFF", 4) == 0 && memcmp(data + 8, "WEBP", 4) == 0)
        return KILN_IMAGE_FORMAT_WEBP;
    return KILN_IMAGE_FORMAT_UNKNOWN;
}

const char *kiln__image_format_name(kiln_image_format f) {
    switch (f) {
    case KILN_IMAGE_FORMAT_PNG: return "png";
    case KILN_IMAGE_FORMAT_JPEG: return "jpeg";
    case KILN_IMAGE_FORMAT_WEBP: return "webp";
    case KILN_IMAGE_FORMAT_UNKNOWN: break;
    }
    return "unknown";
}

kiln_status kiln__image_check_size(const char *what, uint32_t w, uint32_t h, const kiln_image_limits *lim) {
    if (w == 0 || h == 0) return kiln__fail(KILN_ERR_FORMAT, "%s: image has a zero dimension (%ux%u)", what, w, h);
    if (w > lim->max_side || h > lim->max_side || (uint64_t)w * h > lim->max_pixels)
        return kiln__fail(KILN_ERR_TOO_LARGE,
                          "%s: image is %ux%u, over the limit (sides up to %u, %llu pixels in all)", what, w, h,
                          lim->max_side, (unsigned long long)lim->max_pixels);
    return KILN_OK;
}

kiln_status kiln__image_probe(const uint8_t *data, size_t size, kiln_image_info *info) {
    memset(info, 0, sizeof *info);
    kiln_image_format f = kiln__image_detect(data, size);
    kiln_status s = KILN_ERR_FORMAT;
    switch (f) {
    case KILN_IMAGE_FORMAT_PNG: s = kiln__png_probe(data, size, info); break;
    case KILN_IMAGE_FORMAT_JPEG: s = kiln__jpeg_probe(data, size, info); break;
    case KILN_IMAGE_FORMAT_WEBP: s = kiln__webp_probe(data, size, info); break;
    case KILN_IMAGE_FORMAT_UNKNOWN:
        return kiln__fail(KILN_ERR_FORMAT, "image: not a PNG, JPEG or WebP file (%zu bytes)", size);
    }
    if (s == KILN_OK) info->format = f;
    return s;
}

/* PIL's convert("L"): ITU-R 601-2 luma in 16-bit fixed point, rounded. */
static uint8_t luma(const uint8_t *p) {
    return (uint8_t)((p[0] * 19595u + p[1] * 38470u + p[2] * 7471u + 0x8000u) >> 16);
}

void kiln__image_convert_channels(const uint8_t *src, uint32_t from, uint8_t *dst, uint32_t to, size_t n) {
    for (size_t i = 0; i < n; i++) {
        const uint8_t *s = src + i * from;
        uint8_t *d = dst + i * to;
        uint8_t rgb[3] = {s[0], s[0], s[0]};
        if (from >= 3) memcpy(rgb, s, 3);
        if (to == 1) {
            d[0] = from == 1 ? s[0] : luma(rgb);
        } else {
            memcpy(d, rgb, 3);
            if (to == 4) d[3] = from == 4 ? s[3] : 255;
        }
    }
}

kiln_status kiln__image_decode(const uint8_t *data, size_t size, uint32_t channels, const kiln_image_limits *lim,
                               kiln_image *out, kiln_image_info *info) {
    memset(out, 0, sizeof *out);
    if (channels != 1 && channels != 3 && channels != 4)
        return kiln__fail(KILN_ERR_INVALID_ARG, "image: cannot decode to %u channels (1, 3 or 4)", channels);
    kiln_image_limits def = kiln__image_default_limits();
    if (!lim) lim = &def;
    kiln_image_info hdr;
    kiln_status s = kiln__image_probe(data, size, &hdr);
    if (s != KILN_OK) return s;
    s = kiln__image_check_size(kiln__image_format_name(hdr.format), hdr.width, hdr.height, lim);
    if (s != KILN_OK) return s;
    /* The decoders make RGB or RGBA; grey is made from RGB below. */
    uint32_t native = channels == 4 ? 4 : 3;
    switch (hdr.format) {
    case KILN_IMAGE_FORMAT_PNG: s = kiln__png_decode(data, size, native, lim, out); break;
    case KILN_IMAGE_FORMAT_JPEG: s = kiln__jpeg_decode(data, size, native, lim, out); break;
    case KILN_IMAGE_FORMAT_WEBP: s = kiln__webp_decode(data, size, native, lim, out); break;
    case KILN_IMAGE_FORMAT_UNKNOWN: s = kiln__fail(KILN_ERR_FORMAT, "image: unknown format"); break;
    }
    if (s != KILN_OK) {
        kiln_image_clear(out);
        return s;
    }
    if (channels == 1) {
        size_t n = (size_t)out->width * out->height;
        uint8_t *grey = malloc(n);
        if (!grey) {
            kiln_image_clear(out);
            return kiln__fail(KILN_ERR_OUT_OF_MEMORY, "image: out of memory for a %ux%u grey image", hdr.width,
                              hdr.height);
        }
        kiln__image_convert_channels(out->data, 3, grey, 1, n);
        free(out->data);
        out->data = grey;
        out->channels = 1;
    }
    if (info) *info = hdr;
    return KILN_OK;
}

kiln_status kiln__read_file(const char *path, uint8_t **data, size_t *size) {
    *data = NULL;
    *size = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return kiln__fail(KILN_ERR_NOT_FOUND, "cannot open %s: %s", path, strerror(errno));
    kiln_status s = KILN_OK;
    size_t cap = 0, len = 0;
    uint8_t *buf = NULL;
    for (;;) {
        if (len == cap) {
            if (cap >= KILN_IMAGE_MAX_FILE) {
                s = kiln__fail(KILN_ERR_TOO_LARGE, "%s: file larger than %llu bytes", path,
                               (unsigned long long)KILN_IMAGE_MAX_FILE);
                break;
            }
            size_t ncap = cap ? cap * 2 : 65536;
            uint8_t *nb = realloc(buf, ncap);
            if (!nb) {
                s = kiln__fail(KILN_ERR_OUT_OF_MEMORY, "%s: out of memory reading the file", path);
                break;
            }
            buf = nb;
            cap = ncap;
        }
        size_t got = fread(buf + len, 1, cap - len, f);
        len += got;
        if (got == 0) {
            if (ferror(f)) s = kiln__fail(KILN_ERR_IO, "%s: read error", path);
            break;
        }
    }
    fclose(f);
    if (s != KILN_OK) {
        free(buf);
        return s;
    }
    *data = buf;
    *size = len;
    return KILN_OK;
}

kiln_status kiln__image_load_file(const char *path, uint32_t channels, const kiln_image_limits *lim,
                                  kiln_image *out, kiln_image_info *info) {
    memset(out, 0, sizeof *out);
    uint8_t *data;
    size_t size;
    kiln_status s = kiln__read_file(path, &data, &size);
    if (s != KILN_OK) return s;
    s = kiln__image_decode(data, size, channels, lim, out, info);
    free(data);
    if (s != KILN_OK) {
        char why[KILN_ERROR_MAX]; /* the decoder's message, copied before it is rewritten */
        snprintf(why, sizeof why, "%s", kiln_last_error());
        return kiln__fail(s, "%s: %s", path, why);
    }
    return KILN_OK;
}

kiln_status kiln__image_mask_from_alpha(const kiln_image *rgba, kiln_image *out) {
    memset(out, 0, sizeof *out);
    if (!rgba || !rgba->data || rgba->channels != 4)
        return kiln__fail(KILN_ERR_INVALID_ARG, "image: a mask from transparency needs an RGBA image");
    size_t n = (size_t)rgba->width * rgba->height;
    uint8_t *m = malloc(n ? n : 1);
    if (!m) return kiln__fail(KILN_ERR_OUT_OF_MEMORY, "image: out of memory for a mask");
    for (size_t i = 0; i < n; i++) m[i] = rgba->data[i * 4 + 3] == 0 ? 255 : 0;
    *out = (kiln_image){rgba->width, rgba->height, 1, m};
    return KILN_OK;
}
