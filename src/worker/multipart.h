/* src/worker/multipart.h - multipart/form-data bodies (RFC 7578), as the
 * OpenAI images edits endpoint receives them (internal to src/worker).
 * Parts point into the body; nothing is copied. */
#ifndef KILN_WORKER_MULTIPART_H
#define KILN_WORKER_MULTIPART_H

#include <stddef.h>
#include <stdint.h>

#include "kiln/status.h"

/* Longest boundary RFC 2046 allows. */
#define KILN__MULTIPART_MAX_BOUNDARY 70

/* One part of a form. */
struct kiln__multipart_part {
    char name[128];         /* the form field's name (Content-Disposition name=) */
    char filename[256];     /* the uploaded file's name, or "" for a plain field */
    char content_type[128]; /* the part's Content-Type, or "" */
    const uint8_t *data;    /* the part's bytes (borrowed from the body) */
    size_t len;             /* bytes of data */
};

/* The boundary of a "multipart/form-data; boundary=..." Content-Type
 * (quoted or not) into out (at least KILN__MULTIPART_MAX_BOUNDARY + 1
 * bytes). KILN_ERR_FORMAT when the header is not multipart/form-data or
 * has no valid boundary. */
kiln_status kiln__multipart_boundary(const char *content_type, char *out, size_t cap);

/* Split `len` bytes of body into at most max_parts parts (*n_parts gets
 * how many). KILN_ERR_FORMAT (with kiln_last_error() saying where) for a
 * malformed body: no opening boundary, a part without the blank line after
 * its headers, a header without Content-Disposition form-data and a name,
 * header lines over 1 KiB, an empty name, no closing boundary; KILN_ERR_TOO_LARGE for
 * more than max_parts parts. */
kiln_status kiln__multipart_parse(const uint8_t *body, size_t len, const char *boundary,
                                  struct kiln__multipart_part *parts, size_t max_parts, size_t *n_parts);

#endif /* KILN_WORKER_MULTIPART_H */
