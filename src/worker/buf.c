/* src/worker/buf.c - growable byte buffer and JSON string escaping. */
#include "worker/buf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Make room for `extra` more bytes plus the terminating NUL. */
static int buf_reserve(struct kiln__buf *b, size_t extra) {
    if (b->failed) return -1;
    if (extra > ((size_t)-1) / 2 - b->len) {
        b->failed = 1;
        return -1;
    }
    size_t need = b->len + extra + 1;
    if (need <= b->cap) return 0;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < need) cap *= 2;
    char *p = realloc(b->data, cap);
    if (!p) {
        b->failed = 1;
        return -1;
    }
    b->data = p;
    b->cap = cap;
    return 0;
}

int kiln__buf_append(struct kiln__buf *b, const void *p, size_t n) {
    if (buf_reserve(b, n) != 0) return -1;
    if (n) memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
    return 0;
}

int kiln__buf_puts(struct kiln__buf *b, const char *s) { return kiln__buf_append(b, s, strlen(s)); }

int kiln__buf_printf(struct kiln__buf *b, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) {
        b->failed = 1;
        return -1;
    }
    if (buf_reserve(b, (size_t)n) != 0) return -1;
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return 0;
}

size_t kiln__utf8_seq_len(const unsigned char *s, size_t n) {
    if (n == 0) return 0;
    unsigned c = s[0];
    if (c < 0x80) return 1;
    size_t len;
    unsigned min; /* smallest code point this length may encode (no overlongs) */
    unsigned cp;
    if ((c & 0xE0) == 0xC0) {
        len = 2, min = 0x80, cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
        len = 3, min = 0x800, cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
        len = 4, min = 0x10000, cp = c & 0x07;
    } else {
        return 0;
    }
    if (n < len) return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80) return 0;
        cp = (cp << 6) | (s[i] & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
    return len;
}

int kiln__buf_json_string(struct kiln__buf *b, const char *s, size_t n) {
    static const char hex[] = "0123456789abcdef";
    const unsigned char *p = (const unsigned char *)s;
    if (kiln__buf_append(b, "\"", 1) != 0) return -1;
    size_t i = 0;
    while (i < n) {
        /* Copy the longest run that needs no escaping in one go. */
        size_t run = i;
        while (run < n && p[run] >= 0x20 && p[run] < 0x80 && p[run] != '"' && p[run] != '\\') run++;
        if (run > i && kiln__buf_append(b, p + i, run - i) != 0) return -1;
        i = run;
        if (i >= n) break;
        unsigned char c = p[i];
        if (c >= 0x80) {
            size_t len = kiln__utf8_seq_len(p + i, n - i);
            if (len == 0) {
                if (kiln__buf_append(b, "\xEF\xBF\xBD", 3) != 0) return -1; /* U+FFFD */
                i++;
            } else {
                if (kiln__buf_append(b, p + i, len) != 0) return -1;
                i += len;
            }
            continue;
        }
        char esc[7] = {'\\', 0, 0, 0, 0, 0, 0};
        size_t elen = 2;
        switch (c) {
        case '"': esc[1] = '"'; break;
        case '\\': esc[1] = '\\'; break;
        case '\n': esc[1] = 'n'; break;
        case '\r': esc[1] = 'r'; break;
        case '\t': esc[1] = 't'; break;
        case '\b': esc[1] = 'b'; break;
        case '\f': esc[1] = 'f'; break;
        default:
            esc[1] = 'u', esc[2] = '0', esc[3] = '0';
            esc[4] = hex[c >> 4], esc[5] = hex[c & 15];
            elen = 6;
        }
        if (kiln__buf_append(b, esc, elen) != 0) return -1;
        i++;
    }
    return kiln__buf_append(b, "\"", 1);
}

int kiln__buf_append_utf8(struct kiln__buf *b, const char *s, size_t n) {
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    while (i < n) {
        size_t run = i;
        size_t len;
        while (run < n && (len = kiln__utf8_seq_len(p + run, n - run)) > 0) run += len;
        if (run > i && kiln__buf_append(b, p + i, run - i) != 0) return -1;
        if (run < n && kiln__buf_append(b, "\xEF\xBF\xBD", 3) != 0) return -1;
        i = run + 1;
    }
    return 0;
}

void kiln__buf_clear(struct kiln__buf *b) {
    b->len = 0;
    b->failed = 0;
    if (b->data) b->data[0] = '\0';
}

void kiln__buf_free(struct kiln__buf *b) {
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
    b->failed = 0;
}
