/* src/formats/safetensors_write.c - writing safetensors files.
 *
 * The header is compact JSON: "__metadata__" first (when there is any), then
 * the tensors in the caller's order, their data laid out back to back in that
 * order. The header is padded with spaces to a multiple of 8 bytes, as the
 * reference writer does, so the data section starts 8-byte aligned.
 */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "formats/safetensors.h"

/* Check the inputs and build the padded header. On success *hdr (malloc'd,
 * *hdr_len bytes, a multiple of 8, no NUL) and *data_len (sum of nbytes). */
static kiln_status build_header(const struct kiln_st_write_tensor *tensors, size_t n,
                                const struct kiln_st_meta *meta, size_t n_meta, char **hdr,
                                size_t *hdr_len, uint64_t *data_len) {
    *hdr = NULL;
    if (n && !tensors) return kiln__fail(KILN_ERR_INVALID_ARG, "safetensors write: no tensors given");
    if (n_meta && !meta) return kiln__fail(KILN_ERR_INVALID_ARG, "safetensors write: no metadata given");
    json_t *root = json_object();
    if (!root) return kiln__fail(KILN_ERR_OUT_OF_MEMORY, "safetensors write: out of memory");
    kiln_status s = KILN_OK;

    if (n_meta) {
        json_t *jm = json_object();
        if (!jm || json_object_set_new(root, "__metadata__", jm) != 0) {
            json_decref(root);
            return kiln__fail(KILN_ERR_OUT_OF_MEMORY, "safetensors write: out of memory");
        }
        for (size_t i = 0; i < n_meta && s == KILN_OK; i++) {
            if (!meta[i].key || !meta[i].value)
                s = kiln__fail(KILN_ERR_INVALID_ARG, "safetensors write: metadata entry %zu lacks a key or value", i);
            else if (json_object_get(jm, meta[i].key))
                s = kiln__fail(KILN_ERR_INVALID_ARG, "safetensors write: duplicate metadata key '%s'", meta[i].key);
            else if (json_object_set_new(jm, meta[i].key, json_string(meta[i].value)) != 0)
                s = kiln__fail(KILN_ERR_INVALID_ARG, "safetensors write: metadata '%s' is not valid UTF-8",
                               meta[i].key);
        }
    }

    uint64_t offset = 0;
    for (size_t i = 0; i < n && s == KILN_OK; i++) {
        const struct kiln_st_write_tensor *t = &tensors[i];
        const char *dname = kiln__st_dtype_name(t->dtype);
        if (!t->name || strcmp(t->name, "__metadata__") == 0) {
            s = kiln__fail(KILN_ERR_INVALID_ARG, "safetensors write: tensor %zu has no usable name", i);
            break;
        }
        if (!dname) {
            s = kiln__fail(KILN_ERR_INVALID_ARG, "safetensors write: tensor '%s' has dtype %s, which safetensors cannot hold",
                           t->name, kiln_dtype_name(t->dtype));
            break;
        }
        if (t->n_dims < 0 || t->n_dims > KILN_ST_MAX_DIMS || (t->n_dims && !t->shape)) {
            s = kiln__fail(KILN_ERR_INVALID_ARG, "safetensors write: tensor '%s' has a bad shape", t->name);
            break;
        }
        if (json_object_get(root, t->name)) {
            s = kiln__fail(KILN_ERR_INVALID_ARG, "safetensors write: duplicate tensor name '%s'", t->name);
            break;
        }
        /* Bytes the shape needs; the caller's nbytes must agree. */
        uint64_t need = kiln__st_dtype_size(t->dtype);
        bool overflow = false;
        json_t *shape = json_array();
        bool oom = shape == NULL;
        for (int d = 0; d < t->n_dims && !oom; d++) {
            if (t->shape[d] < 0) overflow = true;
            else overflow |= __builtin_mul_overflow(need, (uint64_t)t->shape[d], &need);
            oom = json_array_append_new(shape, json_integer(t->shape[d])) != 0;
        }
        if (oom) {
            json_decref(shape);
            s = kiln__fail(KILN_ERR_OUT_OF_MEMORY, "safetensors write: out of memory");
            break;
        }
        if (overflow || need != t->nbytes || (t->nbytes && !t->data) || need > (uint64_t)INT64_MAX ||
            offset + need < offset) {
            json_decref(shape);
            s = kiln__fail(KILN_ERR_INVALID_ARG,
                           "safetensors write: tensor '%s' has %zu bytes, which its shape and dtype do not match",
                           t->name, t->nbytes);
            break;
        }
        json_t *entry = json_pack("{s:s, s:o, s:[I, I]}", "dtype", dname, "shape", shape, "data_offsets",
                                  (json_int_t)offset, (json_int_t)(offset + need));
        if (!entry || json_object_set_new(root, t->name, entry) != 0) {
            s = kiln__fail(KILN_ERR_INVALID_ARG, "safetensors write: tensor name '%s' is not valid UTF-8",
                           t->name);
            break;
        }
        offset += need;
    }
    if (s != KILN_OK) {
        json_decref(root);
        return s;
    }

    char *text = json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(root);
    if (!text) return kiln__fail(KILN_ERR_OUT_OF_MEMORY, "safetensors write: out of memory");
    size_t len = strlen(text);
    size_t padded = (len + 7) & ~(size_t)7;
    if (padded > KILN_ST_MAX_HEADER) {
        free(text);
        return kiln__fail(KILN_ERR_TOO_LARGE, "safetensors write: header of %zu bytes is over the limit", padded);
    }
    char *out = realloc(text, padded ? padded : 1);
    if (!out) {
        free(text);
        return kiln__fail(KILN_ERR_OUT_OF_MEMORY, "safetensors write: out of memory");
    }
    memset(out + len, ' ', padded - len);
    *hdr = out;
    *hdr_len = padded;
    *data_len = offset;
    return KILN_OK;
}

static void put_le64(uint8_t *p, uint64_t v) {
    for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}

kiln_status kiln__safetensors_write_mem(const struct kiln_st_write_tensor *tensors, size_t n,
                                        const struct kiln_st_meta *meta, size_t n_meta, uint8_t **out,
                                        size_t *out_size) {
    if (!out || !out_size) return kiln__fail(KILN_ERR_INVALID_ARG, "safetensors write: no output given");
    *out = NULL;
    *out_size = 0;
    char *hdr;
    size_t hlen;
    uint64_t dlen;
    kiln_status s = build_header(tensors, n, meta, n_meta, &hdr, &hlen, &dlen);
    if (s != KILN_OK) return s;
    if (dlen > SIZE_MAX - 8 - hlen) {
        free(hdr);
        return kiln__fail(KILN_ERR_TOO_LARGE, "safetensors write: file does not fit in memory");
    }
    size_t total = 8 + hlen + (size_t)dlen;
    uint8_t *buf = malloc(total);
    if (!buf) {
        free(hdr);
        return kiln__fail(KILN_ERR_OUT_OF_MEMORY, "safetensors write: out of memory for %zu bytes", total);
    }
    put_le64(buf, hlen);
    memcpy(buf + 8, hdr, hlen);
    free(hdr);
    size_t pos = 8 + hlen;
    for (size_t i = 0; i < n; i++) {
        if (tensors[i].nbytes) memcpy(buf + pos, tensors[i].data, tensors[i].nbytes);
        pos += tensors[i].nbytes;
    }
    *out = buf;
    *out_size = total;
    return KILN_OK;
}

kiln_status kiln__safetensors_write(const char *path, const struct kiln_st_write_tensor *tensors, size_t n,
                                    const struct kiln_st_meta *meta, size_t n_meta) {
    if (!path) return kiln__fail(KILN_ERR_INVALID_ARG, "safetensors write: no path given");
    char *hdr;
    size_t hlen;
    uint64_t dlen;
    kiln_status s = build_header(tensors, n, meta, n_meta, &hdr, &hlen, &dlen);
    if (s != KILN_OK) return s;

    /* Write path.tmp, then rename: a crash never leaves a half file at path. */
    size_t plen = strlen(path);
    char *tmp = malloc(plen + 5);
    if (!tmp) {
        free(hdr);
        return kiln__fail(KILN_ERR_OUT_OF_MEMORY, "safetensors write: out of memory");
    }
    memcpy(tmp, path, plen);
    memcpy(tmp + plen, ".tmp", 5);
    FILE *f = fopen(tmp, "wb");
    if (!f) {
        s = kiln__fail(KILN_ERR_IO, "cannot create %s: %s", tmp, strerror(errno));
        free(hdr);
        free(tmp);
        return s;
    }
    uint8_t len8[8];
    put_le64(len8, hlen);
    bool ok = fwrite(len8, 1, 8, f) == 8 && fwrite(hdr, 1, hlen, f) == hlen;
    for (size_t i = 0; i < n && ok; i++)
        if (tensors[i].nbytes) ok = fwrite(tensors[i].data, 1, tensors[i].nbytes, f) == tensors[i].nbytes;
    int err = ok ? 0 : errno;
    if (fclose(f) != 0 && ok) {
        ok = false;
        err = errno;
    }
    free(hdr);
    if (ok && rename(tmp, path) != 0) {
        ok = false;
        err = errno;
    }
    if (!ok) {
        remove(tmp);
        s = kiln__fail(KILN_ERR_IO, "cannot write %s: %s", path, strerror(err));
    }
    free(tmp);
    return s;
}
