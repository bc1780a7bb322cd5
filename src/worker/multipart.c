/* src/worker/multipart.c - a multipart/form-data parser for untrusted
 * bodies: every length is checked against the end of the body, header
 * lines are bounded, and names that do not fit their fields are refused
 * rather than cut. */
#include "worker/multipart.h"

#include <string.h>
#include <strings.h>

#include "core/error.h"

/* First occurrence of needle (n bytes) in hay (len bytes), or NULL. */
static const uint8_t *find(const uint8_t *hay, size_t len, const char *needle, size_t n) {
    if (n == 0 || len < n) return NULL;
    for (size_t i = 0; i + n <= len; i++) {
        const uint8_t *p = memchr(hay + i, (unsigned char)needle[0], len - n + 1 - i);
        if (!p) return NULL;
        if (memcmp(p, needle, n) == 0) return p;
        i = (size_t)(p - hay);
    }
    return NULL;
}

/* The next delimiter (CR LF "--" boundary) in [p, end) that is followed by
 * "--" or CR LF, as a real delimiter is; NULL when there is none. */
static const uint8_t *find_delim(const uint8_t *p, const uint8_t *end, const char *delim, size_t dl) {
    for (;;) {
        const uint8_t *d = find(p, (size_t)(end - p), delim, dl);
        if (!d) return NULL;
        const uint8_t *after = d + dl;
        if (end - after >= 2 && ((after[0] == '-' && after[1] == '-') || (after[0] == '\r' && after[1] == '\n')))
            return d;
        p = d + 1;
    }
}

kiln_status kiln__multipart_boundary(const char *ct, char *out, size_t cap) {
    if (!ct || strncasecmp(ct, "multipart/form-data", 19) != 0)
        return kiln__fail(KILN_ERR_FORMAT, "multipart: Content-Type is not multipart/form-data");
    const char *p = ct + 19;
    for (;;) {
        while (*p == ' ' || *p == '\t') p++;
        if (*p != ';') return kiln__fail(KILN_ERR_FORMAT, "multipart: no boundary in Content-Type");
        p++;
        while (*p == ' ' || *p == '\t') p++;
        if (strncasecmp(p, "boundary=", 9) == 0) break;
        p += strcspn(p, ";"); /* another parameter: skip it */
    }
    p += 9;
    size_t n;
    if (*p == '"') {
        p++;
        n = strcspn(p, "\"");
        if (p[n] != '"') return kiln__fail(KILN_ERR_FORMAT, "multipart: unterminated quoted boundary");
    } else {
        n = strcspn(p, "; \t");
    }
    if (n == 0 || n > KILN__MULTIPART_MAX_BOUNDARY || n + 1 > cap)
        return kiln__fail(KILN_ERR_FORMAT, "multipart: the boundary must be 1 to 70 characters");
    memcpy(out, p, n);
    out[n] = '\0';
    return KILN_OK;
}

/* The value of parameter `key` (name or filename) in a Content-Disposition
 * line [p, end) into out; 1 when found, 0 when absent, -1 when it does not
 * fit or is malformed. */
static int disposition_param(const char *p, const char *end, const char *key, char *out, size_t cap) {
    size_t kl = strlen(key);
    while (p < end) {
        const char *semi = memchr(p, ';', (size_t)(end - p));
        if (!semi) return 0;
        p = semi + 1;
        while (p < end && (*p == ' ' || *p == '\t')) p++;
        if ((size_t)(end - p) > kl + 1 && strncasecmp(p, key, kl) == 0 && p[kl] == '=') {
            p += kl + 1;
            const char *v = p, *ve;
            if (p < end && *p == '"') {
                v = ++p;
                ve = memchr(p, '"', (size_t)(end - p));
                if (!ve) return -1;
            } else {
                ve = v;
                while (ve < end && *ve != ';' && *ve != ' ') ve++;
            }
            size_t n = (size_t)(ve - v);
            if (n + 1 > cap || memchr(v, '\0', n)) return -1;
            memcpy(out, v, n);
            out[n] = '\0';
            return 1;
        }
    }
    return 0;
}

/* Parse the header block [p, end) of one part into *part. */
static kiln_status part_headers(const char *p, const char *end, struct kiln__multipart_part *part, size_t index) {
    int have_disposition = 0;
    while (p < end) {
        const char *eol = (const char *)find((const uint8_t *)p, (size_t)(end - p), "\r\n", 2);
        if (!eol) eol = end;
        size_t n = (size_t)(eol - p);
        if (n > 1024) return kiln__fail(KILN_ERR_FORMAT, "multipart: part %zu has a header line over 1 KiB", index);
        if (n >= 20 && strncasecmp(p, "Content-Disposition:", 20) == 0) {
            const char *v = p + 20;
            while (v < eol && *v == ' ') v++;
            if ((size_t)(eol - v) < 9 || strncasecmp(v, "form-data", 9) != 0)
                return kiln__fail(KILN_ERR_FORMAT, "multipart: part %zu is not form-data", index);
            if (disposition_param(v, eol, "name", part->name, sizeof part->name) != 1 || !part->name[0] ||
                disposition_param(v, eol, "filename", part->filename, sizeof part->filename) < 0)
                return kiln__fail(KILN_ERR_FORMAT, "multipart: part %zu has a missing or bad name or filename",
                                  index);
            have_disposition = 1;
        } else if (n >= 13 && strncasecmp(p, "Content-Type:", 13) == 0) {
            const char *v = p + 13;
            while (v < eol && *v == ' ') v++;
            size_t vl = (size_t)(eol - v);
            if (vl + 1 > sizeof part->content_type)
                return kiln__fail(KILN_ERR_FORMAT, "multipart: part %zu has a Content-Type that is too long", index);
            memcpy(part->content_type, v, vl);
            part->content_type[vl] = '\0';
        }
        p = eol + 2;
    }
    if (!have_disposition)
        return kiln__fail(KILN_ERR_FORMAT, "multipart: part %zu has no Content-Disposition", index);
    return KILN_OK;
}

kiln_status kiln__multipart_parse(const uint8_t *body, size_t len, const char *boundary,
                                  struct kiln__multipart_part *parts, size_t max_parts, size_t *n_parts) {
    *n_parts = 0;
    size_t bl = strlen(boundary);
    if (bl == 0 || bl > KILN__MULTIPART_MAX_BOUNDARY) return kiln__fail(KILN_ERR_FORMAT, "multipart: bad boundary");
    char delim[KILN__MULTIPART_MAX_BOUNDARY + 5]; /* "\r\n--" + boundary */
    memcpy(delim, "\r\n--", 4);
    memcpy(delim + 4, boundary, bl);
    size_t dl = bl + 4;
    /* The first boundary may open the body (without the CR LF before it). */
    const uint8_t *p;
    if (len >= dl - 2 && memcmp(body, delim + 2, dl - 2) == 0) p = body + dl - 2;
    else if ((p = find_delim(body, body + len, delim, dl))) p += dl;
    else return kiln__fail(KILN_ERR_FORMAT, "multipart: no opening boundary");
    const uint8_t *end = body + len;
    for (size_t i = 0;; i++) {
        /* After a boundary: "--" ends the body, CR LF starts a part. */
        if (end - p >= 2 && p[0] == '-' && p[1] == '-') return KILN_OK;
        if (end - p < 2 || p[0] != '\r' || p[1] != '\n')
            return kiln__fail(KILN_ERR_FORMAT, "multipart: junk after boundary %zu", i);
        p += 2;
        if (i >= max_parts) return kiln__fail(KILN_ERR_TOO_LARGE, "multipart: more than %zu parts", max_parts);
        const uint8_t *hend = find(p, (size_t)(end - p), "\r\n\r\n", 4);
        if (!hend) return kiln__fail(KILN_ERR_FORMAT, "multipart: part %zu: no blank line after its headers", i);
        struct kiln__multipart_part *part = &parts[i];
        memset(part, 0, sizeof *part);
        kiln_status st = part_headers((const char *)p, (const char *)hend, part, i);
        if (st != KILN_OK) return st;
        const uint8_t *data = hend + 4;
        const uint8_t *next = find_delim(data, end, delim, dl);
        if (!next) return kiln__fail(KILN_ERR_FORMAT, "multipart: part %zu has no closing boundary", i);
        part->data = data;
        part->len = (size_t)(next - data);
        *n_parts = i + 1;
        p = next + dl;
    }
}
