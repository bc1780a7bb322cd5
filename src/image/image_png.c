/* src/image/image_png.c - PNG through libpng: decoding from memory with the
 * size checked at IHDR, encoding 8-bit images with a "parameters" text
 * chunk, and reading text chunks back by walking the chunk list. */
#include <png.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "core/error.h"
#include "image/image_io.h"

/* Largest text chunk value inflated when reading (bytes). */
#define PNG_TEXT_MAX (16u << 20)
/* Largest ancillary chunk libpng will buffer while decoding (bytes). */
#define PNG_CHUNK_MAX (64u << 20)

/* The state a libpng decode shares with its callbacks and with the error
 * path. It lives on the heap so that nothing the longjmp skips over is a
 * changed automatic variable. */
typedef struct png_dec {
    const uint8_t *data; /* the PNG */
    size_t size;         /* its bytes */
    size_t pos;          /* next byte libpng reads */
    uint8_t *pixels;     /* the image being filled (freed on error) */
    png_bytep *rows;     /* row pointers into pixels (freed always) */
    char msg[200];       /* libpng's error message */
} png_dec;

/* The state of an encode: the growing output. */
typedef struct png_enc {
    uint8_t *buf;  /* the PNG so far */
    size_t len;    /* bytes written */
    size_t cap;    /* bytes allocated */
    png_bytep *rows; /* row pointers into the image (freed always) */
    char msg[200]; /* libpng's error message */
} png_enc;

static uint32_t be32(const uint8_t *p) {
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* libpng's error callback: keep the message, unwind to the setjmp. */
static void on_png_error(png_structp png, png_const_charp msg) {
    char *dst = png_get_error_ptr(png);
    snprintf(dst, 200, "%s", msg);
    png_longjmp(png, 1);
}

/* Warnings (a bad CRC in an ancillary chunk, which libpng skips) are quiet. */
static void on_png_warning(png_structp png, png_const_charp msg) {
    (void)png;
    (void)msg;
}

static void on_png_read(png_structp png, png_bytep out, size_t n) {
    png_dec *d = png_get_io_ptr(png);
    if (n > d->size - d->pos) png_error(png, "file is truncated");
    memcpy(out, d->data + d->pos, n);
    d->pos += n;
}

kiln_status kiln__png_probe(const uint8_t *data, size_t size, kiln_image_info *info) {
    /* Signature, then IHDR: length 13, type, width, height, depth, colour type. */
    if (size < 8 + 8 + 13 || be32(data + 8) != 13 || memcmp(data + 12, "IHDR", 4) != 0)
        return kiln__fail(KILN_ERR_FORMAT, "png: missing or damaged IHDR chunk");
    info->width = be32(data + 16);
    info->height = be32(data + 20);
    uint8_t ct = data[25];
    info->has_alpha = ct == 4 || ct == 6;
    /* A tRNS chunk before IDAT also means transparency. */
    size_t pos = 8;
    while (!info->has_alpha && size - pos >= 12) {
        uint32_t len = be32(data + pos);
        if (memcmp(data + pos + 4, "IDAT", 4) == 0) break;
        if (memcmp(data + pos + 4, "tRNS", 4) == 0) info->has_alpha = true;
        if (len > size - pos - 12) break;
        pos += 12 + (size_t)len;
    }
    return KILN_OK;
}

/* Every chunk's declared length must fit in the file, up to IEND. libpng
 * sizes some buffers from a chunk's declared length before reading it (a
 * 2 GB iTXt in a 47-byte file, found by fuzzing), so this is checked here,
 * where the whole file is at hand. */
static kiln_status check_chunk_lengths(const uint8_t *data, size_t size) {
    size_t pos = 8;
    while (pos < size) {
        if (size - pos < 12) return kiln__fail(KILN_ERR_FORMAT, "png: file is truncated (chunk at byte %zu)", pos);
        uint32_t len = be32(data + pos);
        if (len > 0x7fffffffu || len > size - pos - 12)
            return kiln__fail(KILN_ERR_FORMAT, "png: chunk '%.4s' at byte %zu runs past the end of the file",
                              (const char *)data + pos + 4, pos);
        if (memcmp(data + pos + 4, "IEND", 4) == 0) return KILN_OK;
        pos += 12 + (size_t)len;
    }
    return kiln__fail(KILN_ERR_FORMAT, "png: file is truncated (no IEND chunk)");
}

kiln_status kiln__png_decode(const uint8_t *data, size_t size, uint32_t channels, const kiln_image_limits *lim,
                             kiln_image *out) {
    kiln_status cs = check_chunk_lengths(data, size);
    if (cs != KILN_OK) return cs;
    png_dec *d = calloc(1, sizeof *d);
    if (!d) return kiln__fail(KILN_ERR_OUT_OF_MEMORY, "png: out of memory");
    d->data = data;
    d->size = size;
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, d->msg, on_png_error, on_png_warning);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (!info) {
        png_destroy_read_struct(&png, NULL, NULL);
        free(d);
        return kiln__fail(KILN_ERR_OUT_OF_MEMORY, "png: out of memory");
    }
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_read_struct(&png, &info, NULL);
        free(d->pixels);
        free(d->rows);
        kiln_status s = kiln__fail(KILN_ERR_FORMAT, "png: %s", d->msg);
        free(d);
        return s;
    }
    /* libpng itself refuses larger images at IHDR, before any allocation. */
    png_set_user_limits(png, lim->max_side, lim->max_side);
    png_set_chunk_malloc_max(png, PNG_CHUNK_MAX);
    png_set_read_fn(png, d, on_png_read);
    png_read_info(png, info);
    uint32_t w = png_get_image_width(png, info), h = png_get_image_height(png, info);
    if (w == 0 || h == 0 || (uint64_t)w * h > lim->max_pixels) png_error(png, "image dimensions over the limit");
    int ct = png_get_color_type(png, info), depth = png_get_bit_depth(png, info);
    bool trns = png_get_valid(png, info, PNG_INFO_tRNS) != 0;
    bool alpha = (ct & PNG_COLOR_MASK_ALPHA) != 0 || trns;
    /* Everything to 8-bit RGB(A): 16 bits keep the high byte (as PIL). */
    if (depth == 16) png_set_strip_16(png);
    if (ct == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
    if (ct == PNG_COLOR_TYPE_GRAY && depth < 8) png_set_expand_gray_1_2_4_to_8(png);
    if (trns) png_set_tRNS_to_alpha(png);
    if (ct == PNG_COLOR_TYPE_GRAY || ct == PNG_COLOR_TYPE_GRAY_ALPHA) png_set_gray_to_rgb(png);
    if (channels == 3 && alpha) png_set_strip_alpha(png);
    if (channels == 4 && !alpha) png_set_filler(png, 0xff, PNG_FILLER_AFTER);
    png_set_interlace_handling(png);
    png_read_update_info(png, info);
    size_t row = (size_t)w * channels;
    if (png_get_rowbytes(png, info) != row) png_error(png, "unexpected row layout after conversion");
    d->pixels = malloc(row * h);
    d->rows = malloc(sizeof *d->rows * h);
    if (!d->pixels || !d->rows) png_error(png, "out of memory for the pixels");
    for (uint32_t y = 0; y < h; y++) d->rows[y] = d->pixels + (size_t)y * row;
    png_read_image(png, d->rows);
    png_read_end(png, NULL);
    png_destroy_read_struct(&png, &info, NULL);
    *out = (kiln_image){w, h, channels, d->pixels};
    free(d->rows);
    free(d);
    return KILN_OK;
}

static void on_png_write(png_structp png, png_bytep in, size_t n) {
    png_enc *e = png_get_io_ptr(png);
    if (n > e->cap - e->len) {
        size_t cap = e->cap ? e->cap : 4096;
        while (cap - e->len < n) {
            if (cap > SIZE_MAX / 2) png_error(png, "output too large");
            cap *= 2;
        }
        uint8_t *nb = realloc(e->buf, cap);
        if (!nb) png_error(png, "out of memory for the output");
        e->buf = nb;
        e->cap = cap;
    }
    memcpy(e->buf + e->len, in, n);
    e->len += n;
}

static void on_png_flush(png_structp png) {
    (void)png;
}

/* True when s is well-formed UTF-8 (no overlongs, surrogates or values
 * past U+10FFFF); *ascii tells whether every byte is below 0x80. */
static bool utf8_valid(const char *s, bool *ascii) {
    const uint8_t *p = (const uint8_t *)s;
    *ascii = true;
    while (*p) {
        if (*p < 0x80) {
            p++;
            continue;
        }
        *ascii = false;
        int n;
        uint32_t cp;
        if ((*p & 0xe0) == 0xc0) n = 1, cp = *p & 0x1f;
        else if ((*p & 0xf0) == 0xe0) n = 2, cp = *p & 0x0f;
        else if ((*p & 0xf8) == 0xf0) n = 3, cp = *p & 0x07;
        else return false;
        for (int i = 1; i <= n; i++) {
            if ((p[i] & 0xc0) != 0x80) return false;
            cp = cp << 6 | (p[i] & 0x3f);
        }
        static const uint32_t min_cp[4] = {0, 0x80, 0x800, 0x10000};
        if (cp < min_cp[n] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return false;
        p += n + 1;
    }
    return true;
}

kiln_status kiln__png_encode(const kiln_image *img, const char *parameters, uint8_t **out, size_t *out_size) {
    *out = NULL;
    *out_size = 0;
    if (!img || !img->data || img->width == 0 || img->height == 0 ||
        (img->channels != 1 && img->channels != 3 && img->channels != 4))
        return kiln__fail(KILN_ERR_INVALID_ARG, "png: nothing to encode (need a non-empty 1, 3 or 4 channel image)");
    if (img->width > PNG_USER_WIDTH_MAX || img->height > PNG_USER_HEIGHT_MAX)
        return kiln__fail(KILN_ERR_INVALID_ARG, "png: %ux%u is too large for PNG", img->width, img->height);
    bool ascii = true;
    if (parameters && !utf8_valid(parameters, &ascii))
        return kiln__fail(KILN_ERR_INVALID_ARG, "png: the parameters text is not valid UTF-8");
    png_enc *e = calloc(1, sizeof *e);
    if (!e) return kiln__fail(KILN_ERR_OUT_OF_MEMORY, "png: out of memory");
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, e->msg, on_png_error, on_png_warning);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (!info) {
        png_destroy_write_struct(&png, NULL);
        free(e);
        return kiln__fail(KILN_ERR_OUT_OF_MEMORY, "png: out of memory");
    }
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_write_struct(&png, &info);
        free(e->buf);
        free(e->rows);
        kiln_status s = kiln__fail(KILN_ERR_OUT_OF_MEMORY, "png: encoding failed: %s", e->msg);
        free(e);
        return s;
    }
    png_set_write_fn(png, e, on_png_write, on_png_flush);
    int ct = img->channels == 1 ? PNG_COLOR_TYPE_GRAY : img->channels == 3 ? PNG_COLOR_TYPE_RGB : PNG_COLOR_TYPE_RGBA;
    png_set_IHDR(png, info, img->width, img->height, 8, ct, PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT,
                 PNG_FILTER_TYPE_DEFAULT);
    if (parameters) {
        png_text t;
        memset(&t, 0, sizeof t);
        /* tEXt is Latin-1; anything beyond ASCII goes as UTF-8 in iTXt. */
        t.compression = ascii ? PNG_TEXT_COMPRESSION_NONE : PNG_ITXT_COMPRESSION_NONE;
        t.key = (png_charp) "parameters";
        t.text = (png_charp)parameters;
        t.text_length = ascii ? strlen(parameters) : 0;
        t.itxt_length = ascii ? 0 : strlen(parameters);
        png_set_text(png, info, &t, 1);
    }
    png_write_info(png, info);
    size_t row = (size_t)img->width * img->channels;
    e->rows = malloc(sizeof *e->rows * img->height);
    if (!e->rows) png_error(png, "out of memory for row pointers");
    for (uint32_t y = 0; y < img->height; y++) e->rows[y] = (png_bytep)img->data + (size_t)y * row;
    png_write_image(png, e->rows);
    png_write_end(png, info);
    png_destroy_write_struct(&png, &info);
    *out = e->buf;
    *out_size = e->len;
    free(e->rows);
    free(e);
    return KILN_OK;
}

kiln_status kiln__png_save(const char *path, const kiln_image *img, const char *parameters) {
    uint8_t *buf;
    size_t len;
    kiln_status s = kiln__png_encode(img, parameters, &buf, &len);
    if (s != KILN_OK) return s;
    FILE *f = fopen(path, "wb");
    if (!f) {
        free(buf);
        return kiln__fail(KILN_ERR_IO, "cannot create %s", path);
    }
    size_t wrote = fwrite(buf, 1, len, f);
    int closed = fclose(f);
    free(buf);
    if (wrote != len || closed != 0) return kiln__fail(KILN_ERR_IO, "%s: write error", path);
    return KILN_OK;
}

/* Inflate a zlib stream of n bytes into a malloc'ed, NUL-terminated
 * buffer of at most PNG_TEXT_MAX bytes. */
static kiln_status inflate_text(const uint8_t *in, size_t n, char **out, size_t *out_len) {
    size_t cap = n * 4 + 64 < PNG_TEXT_MAX ? n * 4 + 64 : PNG_TEXT_MAX;
    char *buf = malloc(cap + 1);
    if (!buf) return kiln__fail(KILN_ERR_OUT_OF_MEMORY, "png: out of memory for a text chunk");
    z_stream z;
    memset(&z, 0, sizeof z);
    if (inflateInit(&z) != Z_OK) {
        free(buf);
        return kiln__fail(KILN_ERR_OUT_OF_MEMORY, "png: zlib init failed");
    }
    z.next_in = (Bytef *)in;
    z.avail_in = (uInt)n;
    kiln_status s = KILN_OK;
    for (;;) {
        z.next_out = (Bytef *)buf + z.total_out;
        z.avail_out = (uInt)(cap - z.total_out);
        int r = inflate(&z, Z_NO_FLUSH);
        if (r == Z_STREAM_END) break;
        if (r != Z_OK && r != Z_BUF_ERROR) {
            s = kiln__fail(KILN_ERR_FORMAT, "png: compressed text chunk is corrupt");
            break;
        }
        if (z.avail_out == 0 && cap < PNG_TEXT_MAX) {
            size_t ncap = cap * 2 < PNG_TEXT_MAX ? cap * 2 : PNG_TEXT_MAX;
            char *nb = realloc(buf, ncap + 1);
            if (!nb) {
                s = kiln__fail(KILN_ERR_OUT_OF_MEMORY, "png: out of memory for a text chunk");
                break;
            }
            buf = nb;
            cap = ncap;
        } else if (z.avail_out == 0) {
            s = kiln__fail(KILN_ERR_TOO_LARGE, "png: text chunk inflates past %u bytes", PNG_TEXT_MAX);
            break;
        } else if (z.avail_in == 0) {
            s = kiln__fail(KILN_ERR_FORMAT, "png: compressed text chunk is truncated");
            break;
        }
    }
    size_t len = z.total_out;
    inflateEnd(&z);
    if (s != KILN_OK) {
        free(buf);
        return s;
    }
    buf[len] = '\0';
    *out = buf;
    *out_len = len;
    return KILN_OK;
}

/* Latin-1 bytes to a malloc'ed UTF-8 string. */
static kiln_status latin1_to_utf8(const uint8_t *in, size_t n, char **out) {
    char *s = malloc(n * 2 + 1);
    if (!s) return kiln__fail(KILN_ERR_OUT_OF_MEMORY, "png: out of memory for a text chunk");
    size_t j = 0;
    for (size_t i = 0; i < n; i++) {
        if (in[i] < 0x80) {
            s[j++] = (char)in[i];
        } else {
            s[j++] = (char)(0xc0 | in[i] >> 6);
            s[j++] = (char)(0x80 | (in[i] & 0x3f));
        }
    }
    s[j] = '\0';
    *out = s;
    return KILN_OK;
}

/* Copy n bytes into a malloc'ed NUL-terminated string. */
static kiln_status dup_bytes(const uint8_t *in, size_t n, char **out) {
    char *s = malloc(n + 1);
    if (!s) return kiln__fail(KILN_ERR_OUT_OF_MEMORY, "png: out of memory for a text chunk");
    memcpy(s, in, n);
    s[n] = '\0';
    *out = s;
    return KILN_OK;
}

/* The text of one tEXt / zTXt / iTXt chunk body whose keyword matched;
 * `kw_end` is the index of the NUL after the keyword. */
static kiln_status chunk_text(const char *type, const uint8_t *body, size_t len, size_t kw_end, char **out) {
    const uint8_t *p = body + kw_end + 1;
    size_t n = len - kw_end - 1;
    if (memcmp(type, "tEXt", 4) == 0) return latin1_to_utf8(p, n, out);
    if (memcmp(type, "zTXt", 4) == 0) {
        if (n < 1 || p[0] != 0) return kiln__fail(KILN_ERR_FORMAT, "png: zTXt chunk with an unknown compression");
        char *raw;
        size_t raw_len;
        kiln_status s = inflate_text(p + 1, n - 1, &raw, &raw_len);
        if (s != KILN_OK) return s;
        s = latin1_to_utf8((const uint8_t *)raw, raw_len, out);
        free(raw);
        return s;
    }
    /* iTXt: compression flag, method, language tag NUL, translated keyword NUL, text. */
    if (n < 2) return kiln__fail(KILN_ERR_FORMAT, "png: iTXt chunk is truncated");
    uint8_t flag = p[0], method = p[1];
    size_t i = 2;
    for (int field = 0; field < 2; field++) {
        while (i < n && p[i] != 0) i++;
        if (i >= n) return kiln__fail(KILN_ERR_FORMAT, "png: iTXt chunk is truncated");
        i++;
    }
    if (flag == 0) return dup_bytes(p + i, n - i, out);
    if (flag != 1 || method != 0) return kiln__fail(KILN_ERR_FORMAT, "png: iTXt chunk with an unknown compression");
    size_t text_len;
    return inflate_text(p + i, n - i, out, &text_len);
}

kiln_status kiln__png_read_text(const uint8_t *data, size_t size, const char *keyword, char **out) {
    *out = NULL;
    if (kiln__image_detect(data, size) != KILN_IMAGE_FORMAT_PNG)
        return kiln__fail(KILN_ERR_FORMAT, "png: not a PNG file");
    size_t kw_len = strlen(keyword);
    size_t pos = 8;
    while (pos < size) {
        if (size - pos < 12) return kiln__fail(KILN_ERR_FORMAT, "png: truncated chunk at byte %zu", pos);
        uint32_t len = be32(data + pos);
        if (len > 0x7fffffffu || len > size - pos - 12)
            return kiln__fail(KILN_ERR_FORMAT, "png: chunk at byte %zu runs past the end of the file", pos);
        const char *type = (const char *)data + pos + 4;
        const uint8_t *body = data + pos + 8;
        /* The CRC covers the type and the body. */
        uint32_t crc = (uint32_t)crc32(0L, (const Bytef *)type, 4 + len);
        if (crc != be32(body + len))
            return kiln__fail(KILN_ERR_FORMAT, "png: bad CRC in chunk '%.4s' at byte %zu", type, pos);
        if (memcmp(type, "IEND", 4) == 0) break;
        if (memcmp(type, "tEXt", 4) == 0 || memcmp(type, "zTXt", 4) == 0 || memcmp(type, "iTXt", 4) == 0) {
            const uint8_t *nul = memchr(body, 0, len);
            if (!nul) return kiln__fail(KILN_ERR_FORMAT, "png: text chunk without a keyword terminator");
            size_t kw_end = (size_t)(nul - body);
            if (kw_end == kw_len && memcmp(body, keyword, kw_len) == 0)
                return chunk_text(type, body, len, kw_end, out);
        }
        pos += 12 + (size_t)len;
    }
    return kiln__fail(KILN_ERR_NOT_FOUND, "png: no '%s' text chunk", keyword);
}
