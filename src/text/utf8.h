/* src/text/utf8.h - UTF-8 decoding for the tokenizers (internal).
 *
 * Text given to the tokenizers is arbitrary bytes: valid UTF-8 in practice,
 * but nothing may break when it is not. kiln__utf8_next() classifies the
 * bytes at a position as a complete character, the beginning of one that the
 * buffer cuts short, or an invalid stretch; an invalid stretch is the
 * "maximal subpart" of Unicode's recommended practice (section 3.9, U+FFFD
 * substitution), so that one replacement character stands for it, as Python's
 * bytes.decode(errors="replace") and Hugging Face's decoders do.
 */
#ifndef KILN_TEXT_UTF8_H
#define KILN_TEXT_UTF8_H

#include <stddef.h>
#include <stdint.h>

/* What kiln__utf8_next() found. */
typedef enum kiln_utf8_kind {
    KILN_UTF8_CHAR,    /* a complete, well-formed character */
    KILN_UTF8_PARTIAL, /* all the remaining bytes begin a character that is cut short */
    KILN_UTF8_INVALID, /* an ill-formed stretch (one U+FFFD stands for it) */
} kiln_utf8_kind;

/* The replacement character U+FFFD in UTF-8 (3 bytes). */
#define KILN_UTF8_REPLACEMENT "\xEF\xBF\xBD"

/* Classify the bytes at s[0..n), n >= 1. *len receives the number of bytes
 * that the answer covers (1..4; for PARTIAL it is n) and, for CHAR, *cp the
 * code point (it may be NULL). Overlong forms, surrogates and code points past
 * U+10FFFF are INVALID. */
kiln_utf8_kind kiln__utf8_next(const uint8_t *s, size_t n, size_t *len, uint32_t *cp);

/* Encode code point cp (<= 0x10FFFF, not a surrogate) into out (room for 4
 * bytes); returns the number of bytes written. */
size_t kiln__utf8_encode(uint32_t cp, char *out);

/* Whether s[0..n) is entirely well-formed UTF-8. */
int kiln__utf8_valid(const char *s, size_t n);

#endif /* KILN_TEXT_UTF8_H */
