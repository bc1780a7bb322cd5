/* src/image/image_jpeg.c - JPEG through libjpeg-turbo's TurboJPEG API: the
 * header read first (size, colour space), then a decode to RGB(A). Any
 * warning (a truncated or damaged scan) fails the decode: a partial image
 * is not silently accepted. */
#include <stdlib.h>
#include <string.h>
#include <turbojpeg.h>

#include "core/error.h"
#include "image/image_io.h"

/* Read the header of a JPEG with an open decompressor. */
static kiln_status read_header(tjhandle tj, const uint8_t *data, size_t size, int *w, int *h, int *cs) {
    int subsamp;
    if (size > (unsigned long)-1) return kiln__fail(KILN_ERR_TOO_LARGE, "jpeg: file too large");
    if (tjDecompressHeader3(tj, data, (unsigned long)size, w, h, &subsamp, cs) != 0)
        return kiln__fail(KILN_ERR_FORMAT, "jpeg: bad header: %s", tjGetErrorStr2(tj));
    if (*w <= 0 || *h <= 0) return kiln__fail(KILN_ERR_FORMAT, "jpeg: image has a zero dimension");
    if (*cs == TJCS_CMYK || *cs == TJCS_YCCK)
        return kiln__fail(KILN_ERR_UNSUPPORTED, "jpeg: CMYK images are not supported; convert to RGB first");
    return KILN_OK;
}

kiln_status kiln__jpeg_probe(const uint8_t *data, size_t size, kiln_image_info *info) {
    tjhandle tj = tjInitDecompress();
    if (!tj) return kiln__fail(KILN_ERR_OUT_OF_MEMORY, "jpeg: cannot start the decoder");
    int w, h, cs;
    kiln_status s = read_header(tj, data, size, &w, &h, &cs);
    tjDestroy(tj);
    if (s != KILN_OK) return s;
    info->width = (uint32_t)w;
    info->height = (uint32_t)h;
    info->has_alpha = false;
    return KILN_OK;
}

kiln_status kiln__jpeg_decode(const uint8_t *data, size_t size, uint32_t channels, const kiln_image_limits *lim,
                              kiln_image *out) {
    tjhandle tj = tjInitDecompress();
    if (!tj) return kiln__fail(KILN_ERR_OUT_OF_MEMORY, "jpeg: cannot start the decoder");
    int w, h, cs;
    kiln_status s = read_header(tj, data, size, &w, &h, &cs);
    if (s == KILN_OK) s = kiln__image_check_size("jpeg", (uint32_t)w, (uint32_t)h, lim);
    if (s != KILN_OK) {
        tjDestroy(tj);
        return s;
    }
    size_t n = (size_t)w * (size_t)h * channels;
    uint8_t *px = malloc(n);
    if (!px) {
        tjDestroy(tj);
        return kiln__fail(KILN_ERR_OUT_OF_MEMORY, "jpeg: out of memory for %dx%d pixels", w, h);
    }
    /* Accurate DCT (as PIL's default decoder) and no tolerance of damage. */
    int flags = TJFLAG_ACCURATEDCT | TJFLAG_STOPONWARNING;
    if (tjDecompress2(tj, data, (unsigned long)size, px, w, 0, h, channels == 4 ? TJPF_RGBA : TJPF_RGB, flags) !=
        0) {
        s = kiln__fail(KILN_ERR_FORMAT, "jpeg: corrupt image data: %s", tjGetErrorStr2(tj));
        free(px);
        tjDestroy(tj);
        return s;
    }
    tjDestroy(tj);
    *out = (kiln_image){(uint32_t)w, (uint32_t)h, channels, px};
    return KILN_OK;
}
