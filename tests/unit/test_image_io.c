/* tests/unit/test_image_io.c - PNG, JPEG and WebP decoding against Pillow's
 * decodes (tests/data/images, tools/image_io/make_image_fixtures.py), PNG
 * encoding with the "parameters" chunk, corrupt and oversized inputs, base64
 * and data URLs. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "core/base64.h"
#include "core/error.h"
#include "image/image_io.h"
#include "test.h"

#define DATA KILN_SOURCE_DIR "/tests/data/images/"

/* A fixture file's bytes (free()); NULL when missing. */
static uint8_t *load(const char *name, size_t *size) {
    uint8_t *d = NULL;
    if (kiln__read_file(name, &d, size) != KILN_OK) return NULL;
    return d;
}

/* Decode `name` to `channels` and compare with Pillow's bytes in `golden`
 * within `tol` levels; returns the largest difference, or -1 on failure. */
static int decode_matches(const char *name, const char *golden, uint32_t channels, int tol) {
    size_t gsize = 0;
    uint8_t *g = load(golden, &gsize);
    kiln_image img;
    kiln_image_info info;
    kiln_status s = kiln__image_load_file(name, channels, NULL, &img, &info);
    int maxd = -1;
    if (s == KILN_OK && g && gsize == (size_t)img.width * img.height * channels) {
        maxd = 0;
        for (size_t i = 0; i < gsize; i++) {
            int d = abs((int)img.data[i] - (int)g[i]);
            if (d > maxd) maxd = d;
        }
    } else {
        fprintf(stderr, "  %s: status %d (%s), golden %zu bytes\n", name, s, kiln_last_error(), gsize);
    }
    kiln_image_clear(&img);
    free(g);
    return maxd > tol ? -maxd - 1 : maxd;
}

static void test_png_variants_match_pillow(void) {
    CHECK_EQ_INT(decode_matches(DATA "rgb.png", DATA "rgb.png.rgb", 3, 0), 0);
    CHECK_EQ_INT(decode_matches(DATA "rgba.png", DATA "rgba.png.rgba", 4, 0), 0);
    CHECK_EQ_INT(decode_matches(DATA "grey.png", DATA "grey.png.rgb", 3, 0), 0);
    CHECK_EQ_INT(decode_matches(DATA "palette.png", DATA "palette.png.rgba", 4, 0), 0);
    kiln_image img;
    kiln_image_info info;
    REQUIRE(kiln__image_load_file(DATA "rgba.png", 3, NULL, &img, &info) == KILN_OK);
    CHECK_EQ_INT(info.format, KILN_IMAGE_FORMAT_PNG);
    CHECK(info.has_alpha);
    CHECK_EQ_INT(img.width, 6);
    CHECK_EQ_INT(img.height, 4);
    CHECK_EQ_INT(img.channels, 3);
    kiln_image_clear(&img);
    REQUIRE(kiln__image_load_file(DATA "palette.png", 4, NULL, &img, &info) == KILN_OK);
    CHECK(info.has_alpha); /* a tRNS chunk */
    kiln_image_clear(&img);
}

static void test_jpeg_and_webp_match_pillow(void) {
    /* Same libjpeg-turbo family, accurate DCT: allow a level of rounding. */
    int d = decode_matches(DATA "photo.jpg", DATA "photo.jpg.rgb", 3, 1);
    CHECK(d >= 0);
    CHECK(decode_matches(DATA "photo.jpg", DATA "photo.jpg.l", 1, 1) >= 0);
    CHECK_EQ_INT(decode_matches(DATA "lossless.webp", DATA "lossless.webp.rgba", 4, 0), 0);
    CHECK(decode_matches(DATA "lossy.webp", DATA "lossy.webp.rgb", 3, 1) >= 0);
    kiln_image img;
    kiln_image_info info;
    REQUIRE(kiln__image_load_file(DATA "lossless.webp", 3, NULL, &img, &info) == KILN_OK);
    CHECK_EQ_INT(info.format, KILN_IMAGE_FORMAT_WEBP);
    CHECK(info.has_alpha);
    kiln_image_clear(&img);
}

static void test_mask_from_alpha(void) {
    kiln_image img, mask;
    REQUIRE(kiln__image_load_file(DATA "rgba.png", 4, NULL, &img, NULL) == KILN_OK);
    REQUIRE(kiln__image_mask_from_alpha(&img, &mask) == KILN_OK);
    CHECK_EQ_INT(mask.channels, 1);
    /* The fixture is transparent where (x + y) % 3 == 0. */
    int wrong = 0;
    for (uint32_t y = 0; y < img.height; y++)
        for (uint32_t x = 0; x < img.width; x++)
            wrong += mask.data[y * img.width + x] != ((x + y) % 3 == 0 ? 255 : 0);
    CHECK_EQ_INT(wrong, 0);
    kiln_image_clear(&mask);
    kiln_image_clear(&img);
    CHECK(kiln__image_mask_from_alpha(NULL, &mask) == KILN_ERR_INVALID_ARG);
}

/* Every prefix of a valid file (and the file with bytes flipped in its
 * body) must be rejected or decoded, never crash; the prefixes that cut
 * the pixel data must be rejected as KILN_ERR_FORMAT. */
static void check_truncations(const char *name) {
    size_t size;
    uint8_t *d = load(name, &size);
    REQUIRE(d != NULL);
    int accepted = 0;
    for (size_t n = 0; n < size; n++) {
        uint8_t *copy = malloc(n ? n : 1); /* an exact-size copy so ASan sees overreads */
        REQUIRE(copy != NULL);
        memcpy(copy, d, n);
        kiln_image img;
        kiln_status s = kiln__image_decode(copy, n, 3, NULL, &img, NULL);
        if (s == KILN_OK) accepted++;
        else CHECK(img.data == NULL && kiln_last_error()[0] != '\0');
        kiln_image_clear(&img);
        free(copy);
    }
    /* Only the full file decodes (PNG needs IEND, JPEG its EOI-less scan end,
     * WebP its declared chunk size). */
    CHECK_EQ_INT(accepted, 0);
    free(d);
}

static void test_truncated_files_rejected(void) {
    check_truncations(DATA "rgb.png");
    check_truncations(DATA "photo.jpg");
    check_truncations(DATA "lossy.webp");
    kiln_image img;
    CHECK(kiln__image_decode((const uint8_t *)"hello", 5, 3, NULL, &img, NULL) == KILN_ERR_FORMAT);
    CHECK_CONTAINS(kiln_last_error(), "not a PNG, JPEG or WebP");
}

static void test_corrupt_png_crc_rejected(void) {
    size_t size;
    uint8_t *d = load(DATA "rgb.png", &size);
    REQUIRE(d != NULL);
    /* The first IDAT's body starts after the signature, IHDR (25 bytes) and
     * whatever ancillary chunks Pillow wrote; find it. */
    size_t pos = 8;
    while (pos + 8 < size && memcmp(d + pos + 4, "IDAT", 4) != 0)
        pos += 12 + ((size_t)d[pos] << 24 | (size_t)d[pos + 1] << 16 | (size_t)d[pos + 2] << 8 | d[pos + 3]);
    REQUIRE(pos + 10 < size);
    d[pos + 9] ^= 0x55;
    kiln_image img;
    CHECK(kiln__image_decode(d, size, 3, NULL, &img, NULL) == KILN_ERR_FORMAT);
    CHECK_CONTAINS(kiln_last_error(), "png:");
    CHECK(img.data == NULL);
    free(d);
}

/* A PNG whose IHDR claims width x height, with valid CRC and no pixels. */
static size_t huge_png(uint8_t *buf, uint32_t w, uint32_t h) {
    static const uint8_t sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    memcpy(buf, sig, 8);
    uint8_t *c = buf + 8;
    c[0] = c[1] = c[2] = 0;
    c[3] = 13;
    memcpy(c + 4, "IHDR", 4);
    uint8_t *b = c + 8;
    for (int i = 0; i < 4; i++) b[i] = (uint8_t)(w >> (24 - 8 * i)), b[4 + i] = (uint8_t)(h >> (24 - 8 * i));
    b[8] = 8; /* depth */
    b[9] = 2; /* RGB */
    b[10] = b[11] = b[12] = 0;
    uint32_t crc = (uint32_t)crc32(0L, c + 4, 17);
    for (int i = 0; i < 4; i++) b[13 + i] = (uint8_t)(crc >> (24 - 8 * i));
    return 8 + 25;
}

static void test_huge_dimensions_rejected_before_allocating(void) {
    uint8_t buf[64];
    size_t n = huge_png(buf, 100000, 100000);
    kiln_image img;
    kiln_image_info info;
    /* The header is still readable ... */
    REQUIRE(kiln__image_probe(buf, n, &info) == KILN_OK);
    CHECK_EQ_INT(info.width, 100000);
    /* ... but decoding refuses it as too large, not as a truncated file
     * (which would mean it had got as far as the pixels). */
    CHECK(kiln__image_decode(buf, n, 3, NULL, &img, NULL) == KILN_ERR_TOO_LARGE);
    CHECK_CONTAINS(kiln_last_error(), "100000x100000");
    /* Sides within the cap but too many pixels in all. */
    n = huge_png(buf, 16000, 16000);
    CHECK(kiln__image_decode(buf, n, 3, NULL, &img, NULL) == KILN_ERR_TOO_LARGE);
    /* A configured smaller cap applies to the fixtures too. */
    kiln_image_limits lim = {4, 16};
    CHECK(kiln__image_load_file(DATA "rgb.png", 3, &lim, &img, NULL) == KILN_ERR_TOO_LARGE);
    CHECK(kiln__image_load_file(DATA "photo.jpg", 3, &lim, &img, NULL) == KILN_ERR_TOO_LARGE);
    CHECK(kiln__image_load_file(DATA "lossy.webp", 3, &lim, &img, NULL) == KILN_ERR_TOO_LARGE);
    /* A 47-byte file declaring a 2 GB iTXt chunk (found by the fuzzer:
     * libpng sized a buffer from the declared length). */
    n = huge_png(buf, 2, 2);
    static const uint8_t itxt[14] = {0x7a, 0x00, 0x00, 0x1f, 'i', 'T', 'X', 't', 'p', 'a', 'r', 'a', ' ', 0x82};
    memcpy(buf + n, itxt, sizeof itxt);
    CHECK(kiln__image_decode(buf, n + sizeof itxt, 3, NULL, &img, NULL) == KILN_ERR_FORMAT);
    CHECK_CONTAINS(kiln_last_error(), "runs past the end");
    n = huge_png(buf, 0, 5);
    CHECK(kiln__image_decode(buf, n, 3, NULL, &img, NULL) == KILN_ERR_FORMAT);
    CHECK(kiln__image_decode(buf, n, 2, NULL, &img, NULL) == KILN_ERR_INVALID_ARG);
}

static uint32_t rd32(const uint8_t *p) {
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Find chunk `type` in a PNG, checking the structure and every CRC on the
 * way (the PNG specification's layout: length, type, data, CRC-32 over type
 * and data). Returns its data and length, NULL if absent or damaged. */
static const uint8_t *find_chunk(const uint8_t *png, size_t size, const char *type, uint32_t *len) {
    size_t pos = 8;
    while (pos + 12 <= size) {
        uint32_t n = rd32(png + pos);
        if (pos + 12 + n > size) return NULL;
        if ((uint32_t)crc32(0L, png + pos + 4, 4 + n) != rd32(png + pos + 8 + n)) return NULL;
        if (memcmp(png + pos + 4, type, 4) == 0) {
            *len = n;
            return png + pos + 8;
        }
        pos += 12 + n;
    }
    return NULL;
}

static void test_png_encode_round_trip_with_parameters(void) {
    size_t psize;
    char *params = (char *)load(DATA "params.txt", &psize);
    REQUIRE(params != NULL);
    char *p0 = realloc(params, psize + 1);
    REQUIRE(p0 != NULL);
    params = p0;
    params[psize] = '\0';
    kiln_image src;
    REQUIRE(kiln__image_load_file(DATA "rgb.png", 3, NULL, &src, NULL) == KILN_OK);
    uint8_t *png;
    size_t size;
    REQUIRE(kiln__png_encode(&src, params, &png, &size) == KILN_OK);
    /* Pixels survive. */
    kiln_image back;
    REQUIRE(kiln__image_decode(png, size, 3, NULL, &back, NULL) == KILN_OK);
    CHECK_EQ_INT(back.width, src.width);
    CHECK(memcmp(back.data, src.data, (size_t)src.width * src.height * 3) == 0);
    kiln_image_clear(&back);
    /* The chunk is a tEXt: "parameters", NUL, the text, CRC valid. */
    uint32_t len = 0;
    const uint8_t *t = find_chunk(png, size, "tEXt", &len);
    REQUIRE(t != NULL);
    CHECK_EQ_INT(len, strlen("parameters") + 1 + psize);
    CHECK(memcmp(t, "parameters\0", 11) == 0);
    CHECK(memcmp(t + 11, params, psize) == 0);
    CHECK(find_chunk(png, size, "IEND", &len) != NULL);
    char *text;
    REQUIRE(kiln__png_read_text(png, size, "parameters", &text) == KILN_OK);
    CHECK_EQ_STR(text, params);
    free(text);
    CHECK(kiln__png_read_text(png, size, "Comment", &text) == KILN_ERR_NOT_FOUND);
    /* Also as a file, for tools/image_io/check_png_parameters.py (Pillow). */
    CHECK(kiln__png_save(KILN_TEST_TMP "/params_out.png", &src, params) == KILN_OK);
    /* A damaged text chunk is noticed (its CRC no longer matches). */
    png[(size_t)(t - png) + 12] ^= 1;
    CHECK(kiln__png_read_text(png, size, "parameters", &text) != KILN_OK);
    free(png);
    /* Non-ASCII text goes to an uncompressed iTXt. */
    const char *uni = "caf\xc3\xa9 \xe2\x98\x83";
    REQUIRE(kiln__png_encode(&src, uni, &png, &size) == KILN_OK);
    t = find_chunk(png, size, "iTXt", &len);
    REQUIRE(t != NULL);
    /* keyword NUL, compression flag 0, method 0, empty language NUL, empty
     * translated keyword NUL, text */
    CHECK(memcmp(t, "parameters\0\0\0\0\0", 15) == 0);
    CHECK_EQ_INT(len, 15 + strlen(uni));
    REQUIRE(kiln__png_read_text(png, size, "parameters", &text) == KILN_OK);
    CHECK_EQ_STR(text, uni);
    free(text);
    free(png);
    CHECK(kiln__png_encode(&src, "bad \xff utf8", &png, &size) == KILN_ERR_INVALID_ARG);
    kiln_image_clear(&src);
    free(params);
}

static void test_png_reads_pillow_text_chunks(void) {
    size_t size, psize;
    char *text;
    uint8_t *png = load(DATA "params_text.png", &size);
    char *params = (char *)load(DATA "params.txt", &psize);
    REQUIRE(png != NULL && params != NULL);
    REQUIRE(kiln__png_read_text(png, size, "parameters", &text) == KILN_OK);
    CHECK(strlen(text) == psize && memcmp(text, params, psize) == 0);
    free(text);
    free(png);
    free(params);
    png = load(DATA "params_itxt.png", &size);
    REQUIRE(png != NULL);
    REQUIRE(kiln__png_read_text(png, size, "parameters", &text) == KILN_OK);
    CHECK_EQ_STR(text, "\xe7\x81\xaf\xe5\x8f\xb0 caf\xc3\xa9 \xe2\x98\x83");
    free(text);
    free(png);
    /* zTXt, Latin-1 "café " x 40 */
    png = load(DATA "params_ztxt.png", &size);
    REQUIRE(png != NULL);
    REQUIRE(kiln__png_read_text(png, size, "parameters", &text) == KILN_OK);
    CHECK_EQ_INT(strlen(text), 6 * 40);
    CHECK(strncmp(text, "caf\xc3\xa9 caf\xc3\xa9 ", 12) == 0);
    free(text);
    free(png);
}

static void test_png_encode_channels(void) {
    uint8_t px[2 * 2 * 4] = {0, 10, 20, 0, 30, 40, 50, 128, 60, 70, 80, 255, 90, 100, 110, 255};
    kiln_image rgba = {2, 2, 4, px}, back;
    uint8_t *png;
    size_t size;
    REQUIRE(kiln__png_encode(&rgba, NULL, &png, &size) == KILN_OK);
    REQUIRE(kiln__image_decode(png, size, 4, NULL, &back, NULL) == KILN_OK);
    CHECK(memcmp(back.data, px, sizeof px) == 0);
    kiln_image_clear(&back);
    uint32_t len;
    CHECK(find_chunk(png, size, "tEXt", &len) == NULL);
    free(png);
    kiln_image grey = {4, 1, 1, px};
    REQUIRE(kiln__png_encode(&grey, NULL, &png, &size) == KILN_OK);
    REQUIRE(kiln__image_decode(png, size, 1, NULL, &back, NULL) == KILN_OK);
    CHECK(memcmp(back.data, px, 4) == 0);
    kiln_image_clear(&back);
    free(png);
    kiln_image empty = {0, 2, 3, px};
    CHECK(kiln__png_encode(&empty, NULL, &png, &size) == KILN_ERR_INVALID_ARG);
}

static void test_base64_and_data_urls(void) {
    /* RFC 4648 section 10 test vectors. */
    static const char *plain[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
    static const char *enc[] = {"", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy"};
    for (int i = 0; i < 7; i++) {
        char *s;
        uint8_t *b;
        size_t n;
        REQUIRE(kiln__base64_encode((const uint8_t *)plain[i], strlen(plain[i]), &s, &n) == KILN_OK);
        CHECK_EQ_STR(s, enc[i]);
        free(s);
        REQUIRE(kiln__base64_decode(enc[i], strlen(enc[i]), &b, &n) == KILN_OK);
        CHECK(n == strlen(plain[i]) && memcmp(b, plain[i], n) == 0);
        free(b);
    }
    uint8_t *b;
    size_t n;
    REQUIRE(kiln__base64_decode("Zm9v\r\nYg", 8, &b, &n) == KILN_OK); /* wrapped, unpadded */
    CHECK(n == 4 && memcmp(b, "foob", 4) == 0);
    free(b);
    CHECK(kiln__base64_decode("Zm9v!", 5, &b, &n) == KILN_ERR_FORMAT);
    CHECK(kiln__base64_decode("Z", 1, &b, &n) == KILN_ERR_FORMAT);
    CHECK(kiln__base64_decode("Zg=a", 4, &b, &n) == KILN_ERR_FORMAT);
    CHECK(kiln__base64_decode("Zg=", 3, &b, &n) == KILN_ERR_FORMAT);
    char mime[32];
    REQUIRE(kiln__data_url_decode("data:Image/PNG;base64,Zm9v", &b, &n, mime, sizeof mime) == KILN_OK);
    CHECK_EQ_STR(mime, "image/png");
    CHECK(n == 3 && memcmp(b, "foo", 3) == 0);
    free(b);
    CHECK(kiln__data_url_decode("data:text/plain,foo", &b, &n, mime, sizeof mime) == KILN_ERR_FORMAT);
    CHECK(kiln__data_url_decode("http://x/y.png", &b, &n, mime, sizeof mime) == KILN_ERR_FORMAT);
    /* A whole image through a data URL. */
    size_t size;
    uint8_t *png = load(DATA "rgb.png", &size);
    REQUIRE(png != NULL);
    char *url;
    REQUIRE(kiln__data_url_encode("image/png", png, size, &url) == KILN_OK);
    REQUIRE(kiln__data_url_decode(url, &b, &n, NULL, 0) == KILN_OK);
    CHECK(n == size && memcmp(b, png, n) == 0);
    kiln_image img;
    CHECK(kiln__image_decode(b, n, 3, NULL, &img, NULL) == KILN_OK);
    kiln_image_clear(&img);
    free(b);
    free(url);
    free(png);
}

int main(void) {
    RUN(test_png_variants_match_pillow);
    RUN(test_jpeg_and_webp_match_pillow);
    RUN(test_mask_from_alpha);
    RUN(test_truncated_files_rejected);
    RUN(test_corrupt_png_crc_rejected);
    RUN(test_huge_dimensions_rejected_before_allocating);
    RUN(test_png_encode_round_trip_with_parameters);
    RUN(test_png_reads_pillow_text_chunks);
    RUN(test_png_encode_channels);
    RUN(test_base64_and_data_urls);
    return TEST_REPORT();
}
