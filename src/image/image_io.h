/* src/image/image_io.h - reading PNG, JPEG and WebP images and writing PNG
 * with AUTOMATIC1111's "parameters" text chunk, JPEG and WebP (internal).
 *
 * Decoding is for untrusted input (API uploads, command-line files): the
 * header is read first and the dimensions checked against limits before any
 * pixel memory is allocated; corrupt or truncated data is KILN_ERR_FORMAT
 * with a message naming the format, never a crash. Pixels come out 8-bit,
 * grey / RGB / RGBA as asked, whatever the file holds (palette, grey, 16
 * bits, transparency key): 16-bit samples keep their high byte, a missing
 * alpha is 255, a dropped alpha is discarded (not composited), and a file's
 * gamma or colour profile is ignored (as PIL and A1111 ignore it).
 */
#ifndef KILN_IMAGE_IMAGE_IO_H
#define KILN_IMAGE_IMAGE_IO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kiln/image.h"
#include "kiln/status.h"

/* Default limits: no side over 16384 pixels, at most 4096 x 4096 pixels. */
#define KILN_IMAGE_MAX_SIDE 16384u
#define KILN_IMAGE_MAX_PIXELS (4096ull * 4096ull)
/* Largest image file read from disk (bytes). */
#define KILN_IMAGE_MAX_FILE (256ull << 20)

/* A container format. */
typedef enum kiln_image_format {
    KILN_IMAGE_FORMAT_UNKNOWN, /* none of the below */
    KILN_IMAGE_FORMAT_PNG,     /* PNG */
    KILN_IMAGE_FORMAT_JPEG,    /* JPEG (JFIF / Exif) */
    KILN_IMAGE_FORMAT_WEBP,    /* WebP (lossy or lossless, still) */
} kiln_image_format;

/* Limits on what a decoder accepts. */
typedef struct kiln_image_limits {
    uint32_t max_side;   /* largest width or height */
    uint64_t max_pixels; /* largest width * height */
} kiln_image_limits;

/* What a file's header says. */
typedef struct kiln_image_info {
    kiln_image_format format; /* container */
    uint32_t width;           /* pixels */
    uint32_t height;          /* pixels */
    bool has_alpha;           /* carries transparency (alpha channel or key colour) */
} kiln_image_info;

/* The default limits (KILN_IMAGE_MAX_SIDE, KILN_IMAGE_MAX_PIXELS). */
kiln_image_limits kiln__image_default_limits(void);

/* The format of data from its first bytes. */
kiln_image_format kiln__image_detect(const uint8_t *data, size_t size);

/* The format's name ("png", "jpeg", "webp", "unknown"); static string. */
const char *kiln__image_format_name(kiln_image_format f);

/* Read only the header: format, size, transparency. KILN_ERR_FORMAT for
 * unknown or corrupt data. */
kiln_status kiln__image_probe(const uint8_t *data, size_t size, kiln_image_info *info);

/* Decode into *out with `channels` 1 (grey: ITU-R 601 luma, as PIL's
 * convert("L")), 3 (RGB) or 4 (RGBA). lim NULL means the defaults; info
 * (may be NULL) receives the header. KILN_ERR_TOO_LARGE when the
 * dimensions exceed the limits (nothing allocated), KILN_ERR_FORMAT for
 * corrupt data, KILN_ERR_UNSUPPORTED for CMYK JPEG and animated WebP. On
 * failure *out is zeroed. Release with kiln_image_clear(). */
kiln_status kiln__image_decode(const uint8_t *data, size_t size, uint32_t channels, const kiln_image_limits *lim,
                               kiln_image *out, kiln_image_info *info);

/* Read a whole file (at most KILN_IMAGE_MAX_FILE bytes) into *data (free()). */
kiln_status kiln__read_file(const char *path, uint8_t **data, size_t *size);

/* kiln__image_decode of a file's contents. */
kiln_status kiln__image_load_file(const char *path, uint32_t channels, const kiln_image_limits *lim,
                                  kiln_image *out, kiln_image_info *info);

/* Encode an 8-bit image (1, 3 or 4 channels) as PNG into a malloc'ed
 * buffer. `parameters`, when not NULL, goes into a text chunk with keyword
 * "parameters" right after IHDR: tEXt when it is plain ASCII, otherwise an
 * uncompressed iTXt (UTF-8), as PIL's PngInfo.add_text writes it for
 * AUTOMATIC1111. It must not contain a NUL (it is a C string) nor be
 * invalid UTF-8 (KILN_ERR_INVALID_ARG). */
kiln_status kiln__png_encode(const kiln_image *img, const char *parameters, uint8_t **out, size_t *out_size);

/* Encode an 8-bit image as PNG (with `parameters` as above), JPEG or WebP
 * (lossy, `quality` 1..100, clamped; `parameters` not stored) into a
 * malloc'ed buffer. */
kiln_status kiln__image_encode(const kiln_image *img, kiln_image_format format, int quality, const char *parameters,
                               uint8_t **out, size_t *out_size);

/* kiln__png_encode, then write the file. */
kiln_status kiln__png_save(const char *path, const kiln_image *img, const char *parameters);

/* The text of the first tEXt, zTXt or iTXt chunk with `keyword` in a PNG, as
 * a malloc'ed UTF-8 string (tEXt and zTXt are Latin-1, converted). Chunk
 * CRCs are checked. KILN_ERR_NOT_FOUND when there is no such chunk,
 * KILN_ERR_FORMAT for a damaged file. */
kiln_status kiln__png_read_text(const uint8_t *data, size_t size, const char *keyword, char **out);

/* A 1-channel inpainting mask from an RGBA image, as OpenAI's edits API
 * reads one: 255 where the pixel is fully transparent (repaint), 0
 * elsewhere. *out gets the mask (release with kiln_image_clear). */
kiln_status kiln__image_mask_from_alpha(const kiln_image *rgba, kiln_image *out);

/* Per-format decoders, called by kiln__image_decode after the format is
 * known (arguments as there; lim is never NULL). */
kiln_status kiln__png_probe(const uint8_t *data, size_t size, kiln_image_info *info);
kiln_status kiln__png_decode(const uint8_t *data, size_t size, uint32_t channels, const kiln_image_limits *lim,
                             kiln_image *out);
kiln_status kiln__jpeg_probe(const uint8_t *data, size_t size, kiln_image_info *info);
kiln_status kiln__jpeg_decode(const uint8_t *data, size_t size, uint32_t channels, const kiln_image_limits *lim,
                              kiln_image *out);
kiln_status kiln__webp_probe(const uint8_t *data, size_t size, kiln_image_info *info);
kiln_status kiln__webp_decode(const uint8_t *data, size_t size, uint32_t channels, const kiln_image_limits *lim,
                              kiln_image *out);

/* KILN_ERR_TOO_LARGE (with a message naming `what`) unless w x h is within
 * the limits; KILN_ERR_FORMAT for a zero dimension. */
kiln_status kiln__image_check_size(const char *what, uint32_t w, uint32_t h, const kiln_image_limits *lim);

/* Convert `n` pixels of `from` channels (1, 3, 4) to `to` channels in place
 * of a fresh buffer: dst holds n * to bytes. */
void kiln__image_convert_channels(const uint8_t *src, uint32_t from, uint8_t *dst, uint32_t to, size_t n);

#endif /* KILN_IMAGE_IMAGE_IO_H */
