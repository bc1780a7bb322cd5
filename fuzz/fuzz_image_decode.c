/* fuzz/fuzz_image_decode.c - libFuzzer target for the PNG, JPEG and WebP
 * decoders and the PNG text-chunk reader.
 *
 * Any input must be rejected with a message and no pixels, or decoded into
 * an image within the (small, for speed) limits whose header agrees with
 * the probe; a decoded image must survive a PNG encode/decode round trip.
 * The same bytes as base64 text: what decodes must re-encode and decode to
 * the same bytes. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/base64.h"
#include "image/image_io.h"
#include "kiln/status.h"

/* Stop the fuzzer with a crash report (an invariant broke). */
#define ENSURE(cond)                                                                               \
    do {                                                                                           \
        if (!(cond)) __builtin_trap();                                                             \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    kiln_image_limits lim = {512, 512 * 512};
    uint32_t channels = size ? (uint32_t[]){1, 3, 4}[data[size - 1] % 3] : 3;
    kiln_image img;
    kiln_image_info info;
    kiln_status s = kiln__image_decode(data, size, channels, &lim, &img, &info);
    if (s != KILN_OK) {
        ENSURE(img.data == NULL && kiln_last_error()[0] != '\0');
    } else {
        ENSURE(img.width == info.width && img.height == info.height && img.channels == channels);
        ENSURE(img.width <= lim.max_side && (uint64_t)img.width * img.height <= lim.max_pixels);
        uint8_t *png;
        size_t png_size;
        ENSURE(kiln__png_encode(&img, "Steps: 1", &png, &png_size) == KILN_OK);
        kiln_image back;
        ENSURE(kiln__image_decode(png, png_size, channels, &lim, &back, NULL) == KILN_OK);
        ENSURE(memcmp(back.data, img.data, (size_t)img.width * img.height * channels) == 0);
        kiln_image_clear(&back);
        free(png);
        kiln_image_clear(&img);
    }
    char *text = NULL;
    if (kiln__png_read_text(data, size, "parameters", &text) == KILN_OK) ENSURE(text != NULL);
    free(text);
    uint8_t *raw;
    size_t raw_len;
    if (kiln__base64_decode((const char *)data, size, &raw, &raw_len) == KILN_OK) {
        char *enc;
        size_t enc_len;
        ENSURE(kiln__base64_encode(raw, raw_len, &enc, &enc_len) == KILN_OK);
        uint8_t *again;
        size_t again_len;
        ENSURE(kiln__base64_decode(enc, enc_len, &again, &again_len) == KILN_OK);
        ENSURE(again_len == raw_len && memcmp(again, raw, raw_len) == 0);
        free(again);
        free(enc);
        free(raw);
    }
    return 0;
}
