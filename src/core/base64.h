/* src/core/base64.h - base64 (RFC 4648, standard alphabet) and data: URLs
 * (RFC 2397), for images passed through the HTTP APIs (internal). */
#ifndef KILN_CORE_BASE64_H
#define KILN_CORE_BASE64_H

#include <stddef.h>
#include <stdint.h>

#include "kiln/status.h"

/* Encode n bytes as padded base64 into a malloc'ed NUL-terminated string;
 * *out_len (may be NULL) gets its length. */
kiln_status kiln__base64_encode(const uint8_t *in, size_t n, char **out, size_t *out_len);

/* Decode base64 text of `len` characters into a malloc'ed buffer. Padding
 * is optional; ASCII white space (line breaks of MIME-wrapped input) is
 * skipped; any other character outside the alphabet, a misplaced '=' or a
 * dangling single character is KILN_ERR_FORMAT. */
kiln_status kiln__base64_decode(const char *in, size_t len, uint8_t **out, size_t *out_len);

/* Decode "data:[<mime>][;param...];base64,<data>" into a malloc'ed buffer.
 * mime (may be NULL) receives the media type, lower-cased and
 * NUL-terminated, cut to mime_cap - 1 bytes ("" when absent). A URL that is
 * not base64-encoded or not a data: URL is KILN_ERR_FORMAT. */
kiln_status kiln__data_url_decode(const char *url, uint8_t **out, size_t *out_len, char *mime, size_t mime_cap);

/* Encode bytes as "data:<mime>;base64,..." (malloc'ed). */
kiln_status kiln__data_url_encode(const char *mime, const uint8_t *in, size_t n, char **out);

#endif /* KILN_CORE_BASE64_H */
