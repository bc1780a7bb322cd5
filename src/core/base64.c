/* src/core/base64.c - base64 encoding and decoding, and data: URLs. */
#include "core/base64.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"

static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

kiln_status kiln__base64_encode(const uint8_t *in, size_t n, char **out, size_t *out_len) {
    *out = NULL;
    if (n > (SIZE_MAX - 1) / 4 * 3 - 3) return kiln__fail(KILN_ERR_TOO_LARGE, "base64: input too large");
    size_t len = (n + 2) / 3 * 4;
    char *s = malloc(len + 1);
    if (!s) return kiln__fail(KILN_ERR_OUT_OF_MEMORY, "base64: out of memory");
    size_t j = 0;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16;
        if (i + 1 < n) v |= (uint32_t)in[i + 1] << 8;
        if (i + 2 < n) v |= in[i + 2];
        s[j++] = alphabet[v >> 18 & 63];
        s[j++] = alphabet[v >> 12 & 63];
        s[j++] = i + 1 < n ? alphabet[v >> 6 & 63] : '=';
        s[j++] = i + 2 < n ? alphabet[v & 63] : '=';
    }
    s[j] = '\0';
    *out = s;
    if (out_len) *out_len = j;
    return KILN_OK;
}

/* The 6-bit value of a base64 character, -1 when outside the alphabet. */
static int sextet(unsigned char c) {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
}

kiln_status kiln__base64_decode(const char *in, size_t len, uint8_t **out, size_t *out_len) {
    *out = NULL;
    *out_len = 0;
    uint8_t *buf = malloc(len / 4 * 3 + 3);
    if (!buf) return kiln__fail(KILN_ERR_OUT_OF_MEMORY, "base64: out of memory");
    size_t j = 0;
    uint32_t acc = 0; /* bits gathered so far */
    int have = 0;     /* sextets in acc */
    int pad = 0;      /* '=' seen (only more '=' and white space may follow) */
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)in[i];
        if (c == ' ' || c == '\t' || c == '\r' || c == '\n') continue;
        if (c == '=') {
            pad++;
            continue;
        }
        int v = sextet(c);
        if (v < 0 || pad) {
            free(buf);
            return kiln__fail(KILN_ERR_FORMAT, "base64: invalid character 0x%02x at offset %zu", c, i);
        }
        acc = acc << 6 | (uint32_t)v;
        if (++have == 4) {
            buf[j++] = (uint8_t)(acc >> 16);
            buf[j++] = (uint8_t)(acc >> 8);
            buf[j++] = (uint8_t)acc;
            acc = 0;
            have = 0;
        }
    }
    /* A final group of 2 or 3 sextets gives 1 or 2 bytes; padding, when
     * present, must complete it to 4. */
    if (have == 1 || (pad && have + pad != 4) || pad > 2) {
        free(buf);
        return kiln__fail(KILN_ERR_FORMAT, "base64: truncated or badly padded input");
    }
    if (have == 2) buf[j++] = (uint8_t)(acc >> 4);
    if (have == 3) {
        buf[j++] = (uint8_t)(acc >> 10);
        buf[j++] = (uint8_t)(acc >> 2);
    }
    *out = buf;
    *out_len = j;
    return KILN_OK;
}

kiln_status kiln__data_url_decode(const char *url, uint8_t **out, size_t *out_len, char *mime, size_t mime_cap) {
    *out = NULL;
    *out_len = 0;
    if (mime && mime_cap) mime[0] = '\0';
    if (strncmp(url, "data:", 5) != 0) return kiln__fail(KILN_ERR_FORMAT, "data URL: does not start with 'data:'");
    const char *comma = strchr(url, ',');
    if (!comma) return kiln__fail(KILN_ERR_FORMAT, "data URL: no ',' before the data");
    const char *meta = url + 5;
    size_t meta_len = (size_t)(comma - meta);
    /* The media type runs to the first ';'; ";base64" must end the metadata. */
    if (meta_len < 7 || strncmp(comma - 7, ";base64", 7) != 0)
        return kiln__fail(KILN_ERR_FORMAT, "data URL: only base64-encoded data is accepted");
    const char *semi = memchr(meta, ';', meta_len);
    size_t type_len = (size_t)(semi - meta);
    if (mime && mime_cap) {
        size_t k = type_len < mime_cap - 1 ? type_len : mime_cap - 1;
        for (size_t i = 0; i < k; i++) mime[i] = (char)tolower((unsigned char)meta[i]);
        mime[k] = '\0';
    }
    return kiln__base64_decode(comma + 1, strlen(comma + 1), out, out_len);
}

kiln_status kiln__data_url_encode(const char *mime, const uint8_t *in, size_t n, char **out) {
    *out = NULL;
    char *b64;
    size_t b64_len;
    kiln_status s = kiln__base64_encode(in, n, &b64, &b64_len);
    if (s != KILN_OK) return s;
    size_t len = 5 + strlen(mime) + 8 + b64_len + 1;
    char *url = malloc(len);
    if (!url) {
        free(b64);
        return kiln__fail(KILN_ERR_OUT_OF_MEMORY, "data URL: out of memory");
    }
    snprintf(url, len, "data:%s;base64,%s", mime, b64);
    free(b64);
    *out = url;
    return KILN_OK;
}
