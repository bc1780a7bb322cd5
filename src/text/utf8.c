/* src/text/utf8.c - UTF-8 classification and encoding (see utf8.h). */
#include "text/utf8.h"

kiln_utf8_kind kiln__utf8_next(const uint8_t *s, size_t n, size_t *len, uint32_t *cp) {
    uint8_t b0 = s[0];
    if (b0 < 0x80) {
        *len = 1;
        if (cp) *cp = b0;
        return KILN_UTF8_CHAR;
    }
    /* Total length of the sequence and the allowed range of its second byte
     * (Unicode table 3-7, "well-formed UTF-8 byte sequences"); later bytes
     * are always 80..BF. */
    size_t need;
    uint8_t lo = 0x80, hi = 0xBF;
    uint32_t c;
    if (b0 >= 0xC2 && b0 <= 0xDF) {
        need = 2;
        c = b0 & 0x1F;
    } else if (b0 >= 0xE0 && b0 <= 0xEF) {
        need = 3;
        c = b0 & 0x0F;
        if (b0 == 0xE0) lo = 0xA0; /* no overlong forms */
        if (b0 == 0xED) hi = 0x9F; /* no surrogates */
    } else if (b0 >= 0xF0 && b0 <= 0xF4) {
        need = 4;
        c = b0 & 0x07;
        if (b0 == 0xF0) lo = 0x90; /* no overlong forms */
        if (b0 == 0xF4) hi = 0x8F; /* nothing past U+10FFFF */
    } else {
        *len = 1; /* a stray continuation byte, C0, C1 or F5..FF */
        return KILN_UTF8_INVALID;
    }
    for (size_t i = 1; i < need; i++) {
        if (i >= n) {
            *len = n;
            return KILN_UTF8_PARTIAL;
        }
        uint8_t b = s[i];
        uint8_t l = i == 1 ? lo : 0x80, h = i == 1 ? hi : 0xBF;
        if (b < l || b > h) {
            *len = i; /* the maximal subpart ends before the offending byte */
            return KILN_UTF8_INVALID;
        }
        c = (c << 6) | (b & 0x3F);
    }
    *len = need;
    if (cp) *cp = c;
    return KILN_UTF8_CHAR;
}

size_t kiln__utf8_encode(uint32_t cp, char *out) {
    unsigned char *o = (unsigned char *)out;
    if (cp < 0x80) {
        o[0] = (unsigned char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (unsigned char)(0xC0 | (cp >> 6));
        o[1] = (unsigned char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (unsigned char)(0xE0 | (cp >> 12));
        o[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (unsigned char)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (unsigned char)(0xF0 | (cp >> 18));
    o[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
    o[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
    o[3] = (unsigned char)(0x80 | (cp & 0x3F));
    return 4;
}

int kiln__utf8_valid(const char *s, size_t n) {
    const uint8_t *p = (const uint8_t *)s;
    size_t i = 0;
    while (i < n) {
        size_t len;
        if (kiln__utf8_next(p + i, n - i, &len, NULL) != KILN_UTF8_CHAR) return 0;
        i += len;
    }
    return 1;
}
