/* src/formats/gguf.h - GGUF (v2 and v3) reader and v3 writer (internal).
 *
 * Reading: kiln__gguf_parse() checks a whole buffer before trusting any of it
 * (magic, version, counts and lengths bounded by the bytes left, known types,
 * UTF-8 names, unique keys and tensor names, aligned, in-bounds and
 * non-overlapping tensor data; docs/formats.md lists every rule) and builds
 * an index; kiln__gguf_open() maps a file read-only and parses it. A bad file
 * gives KILN_ERR_FORMAT and a message naming the defect, key or tensor and
 * file offset in kiln_last_error().
 *
 * Ownership: metadata values, array elements and tensor data point into the
 * parsed buffer (the mapping for kiln__gguf_open); keys and tensor names are
 * NUL-terminated copies. Everything lives until kiln__gguf_free(). For
 * kiln__gguf_parse() the caller keeps the buffer alive that long.
 *
 * Writing: kiln__gguf_writer_* collects metadata (every value type, nested
 * arrays) and tensors, then writes a v3 file with alignment padding.
 *
 * Layout reminder (all little-endian): "GGUF", u32 version, u64 n_tensors,
 * u64 n_kv, n_kv x {string key, u32 type, value}, n_tensors x {string name,
 * u32 n_dims, u64 ne[n_dims], u32 ggml type, u64 offset}, padding to the
 * alignment, then the data section that offsets are relative to. A string is
 * u64 length + bytes; an array is u32 element type + u64 count + elements.
 */
#ifndef KILN_FORMATS_GGUF_H
#define KILN_FORMATS_GGUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "kiln/dtype.h"
#include "kiln/status.h"

/* Limits the reader enforces (see docs/formats.md). */
#define KILN_GGUF_MAX_DIMS 4                  /* GGML_MAX_DIMS */
#define KILN_GGUF_MAX_ARRAY_DEPTH 8           /* arrays inside arrays, outermost = 1 */
#define KILN_GGUF_MAX_NAME_LEN 65535          /* bytes in a key or tensor name */
#define KILN_GGUF_DEFAULT_ALIGNMENT 32        /* when general.alignment is absent */
#define KILN_GGUF_MAX_ALIGNMENT (1u << 20)    /* largest general.alignment accepted */

/* Metadata value types; the numbers are the on-disk ids. */
enum kiln_gguf_type {
    KILN_GGUF_U8 = 0,
    KILN_GGUF_I8 = 1,
    KILN_GGUF_U16 = 2,
    KILN_GGUF_I16 = 3,
    KILN_GGUF_U32 = 4,
    KILN_GGUF_I32 = 5,
    KILN_GGUF_F32 = 6,
    KILN_GGUF_BOOL = 7,
    KILN_GGUF_STRING = 8,
    KILN_GGUF_ARRAY = 9,
    KILN_GGUF_U64 = 10,
    KILN_GGUF_I64 = 11,
    KILN_GGUF_F64 = 12,
    KILN_GGUF_TYPE_COUNT /* number of types; not a type */
};

/* A string inside the buffer: UTF-8 by convention, not NUL-terminated. */
struct kiln_gguf_str {
    const char *ptr; /* first byte (inside the parsed buffer) */
    uint64_t len;    /* length in bytes */
};

/* An array value. Elements stay encoded in the buffer (little-endian, maybe
 * unaligned); read them with kiln__gguf_arr_*(), which are O(1) per element. */
struct kiln_gguf_arr {
    enum kiln_gguf_type type;           /* element type (any type, ARRAY included) */
    uint64_t count;                     /* number of elements */
    const uint8_t *data;                /* first encoded element, inside the buffer */
    uint64_t nbytes;                    /* encoded size of all elements */
    const uint64_t *str_off;            /* STRING elements: offset from data of element i's
                                           length prefix; NULL for other types */
    const struct kiln_gguf_arr *items;  /* ARRAY elements: the parsed inner arrays;
                                           NULL for other types */
};

/* One metadata value, decoded. */
struct kiln_gguf_value {
    enum kiln_gguf_type type; /* which member of v is set */
    union {
        uint64_t u;                 /* U8, U16, U32, U64 */
        int64_t i;                  /* I8, I16, I32, I64 */
        float f32;                  /* F32 */
        double f64;                 /* F64 */
        bool b;                     /* BOOL */
        struct kiln_gguf_str str;   /* STRING */
        struct kiln_gguf_arr arr;   /* ARRAY */
    } v;
};

/* One key/value pair of the metadata. */
struct kiln_gguf_kv {
    const char *key;              /* NUL-terminated copy, valid UTF-8, no NUL inside */
    struct kiln_gguf_value value; /* the value */
    uint64_t file_offset;         /* where the pair starts in the file (for messages) */
};

/* One tensor, validated: its data lies inside the buffer. */
struct kiln_gguf_tensor {
    const char *name;               /* NUL-terminated copy, valid UTF-8, unique */
    uint32_t n_dims;                /* 1..KILN_GGUF_MAX_DIMS */
    uint64_t ne[KILN_GGUF_MAX_DIMS]; /* elements per dimension, ne[0] fastest; 1 past n_dims */
    uint64_t n_elems;               /* product of ne (fits in int64_t) */
    uint32_t ggml_type;             /* GGML type id from the file */
    kiln_dtype dtype;               /* the same as a kiln dtype (never UNKNOWN) */
    uint64_t offset;                /* offset of the data from the data section's start */
    size_t nbytes;                  /* size of the data in bytes */
    const void *data;               /* the data, inside the buffer */
};

/* A parsed file. Read the fields; do not modify them. */
struct kiln_gguf {
    uint32_t version;                 /* 2 or 3 */
    uint64_t n_kv;                    /* metadata pairs, in file order */
    struct kiln_gguf_kv *kv;          /* n_kv pairs */
    uint64_t n_tensors;               /* tensors, in file order */
    struct kiln_gguf_tensor *tensors; /* n_tensors tensors */
    uint32_t alignment;               /* general.alignment, or 32 */
    uint64_t data_offset;             /* file offset of the data section (aligned) */
    const uint8_t *base;              /* the whole buffer */
    size_t size;                      /* its size in bytes */
    struct kiln_gguf_private *priv;   /* index, allocations and mapping (gguf_read.c) */
};

/* ---- reading (gguf_read.c) ---- */

/* Parse and validate `size` bytes at `data`. On success *out owns the index
 * and borrows `data` (keep it alive until kiln__gguf_free). On failure *out is
 * NULL, KILN_ERR_FORMAT (or KILN_ERR_OUT_OF_MEMORY) is returned and
 * kiln_last_error() says what is wrong, starting with "gguf: ". */
kiln_status kiln__gguf_parse(const uint8_t *data, size_t size, struct kiln_gguf **out);

/* Map `path` read-only and parse it; the result owns the mapping. Errors as
 * for kiln__gguf_parse, plus the file_map ones; an empty file gives
 * KILN_ERR_FORMAT "gguf: file is empty". */
kiln_status kiln__gguf_open(const char *path, struct kiln_gguf **out);

/* Release a parsed file (and its mapping). NULL is fine. */
void kiln__gguf_free(struct kiln_gguf *g);

/* The pair with this key, or NULL (O(1), hashed). */
const struct kiln_gguf_kv *kiln__gguf_find_kv(const struct kiln_gguf *g, const char *key);

/* The tensor with this name, or NULL (O(1), hashed). */
const struct kiln_gguf_tensor *kiln__gguf_find_tensor(const struct kiln_gguf *g, const char *name);

/* ---- typed access (gguf_get.c) ----
 * Getters return false when the key is missing or its value has the wrong type
 * or does not fit; kiln_last_error() then says which ("gguf: key 'x' has type
 * string, expected an integer"). *out is written only on success. */

/* Any integer type whose value fits in the output type. */
bool kiln__gguf_get_u32(const struct kiln_gguf *g, const char *key, uint32_t *out);
bool kiln__gguf_get_i32(const struct kiln_gguf *g, const char *key, int32_t *out);
bool kiln__gguf_get_u64(const struct kiln_gguf *g, const char *key, uint64_t *out);
bool kiln__gguf_get_i64(const struct kiln_gguf *g, const char *key, int64_t *out);
/* F32, or F64 rounded to float. */
bool kiln__gguf_get_f32(const struct kiln_gguf *g, const char *key, float *out);
/* F64, or F32 widened. */
bool kiln__gguf_get_f64(const struct kiln_gguf *g, const char *key, double *out);
bool kiln__gguf_get_bool(const struct kiln_gguf *g, const char *key, bool *out);
/* A STRING value: pointer into the buffer (not NUL-terminated) and length. */
bool kiln__gguf_get_str(const struct kiln_gguf *g, const char *key, const char **s, size_t *len);
/* An ARRAY value (any element type), or NULL (with the message set). */
const struct kiln_gguf_arr *kiln__gguf_get_arr(const struct kiln_gguf *g, const char *key);

/* Element i of an array: false when i >= count or the element type does not
 * match (ints: any integer type that fits; floats: F32 or F64). */
bool kiln__gguf_arr_i64(const struct kiln_gguf_arr *a, uint64_t i, int64_t *out);
bool kiln__gguf_arr_u64(const struct kiln_gguf_arr *a, uint64_t i, uint64_t *out);
bool kiln__gguf_arr_f32(const struct kiln_gguf_arr *a, uint64_t i, float *out);
bool kiln__gguf_arr_f64(const struct kiln_gguf_arr *a, uint64_t i, double *out);
bool kiln__gguf_arr_bool(const struct kiln_gguf_arr *a, uint64_t i, bool *out);
bool kiln__gguf_arr_str(const struct kiln_gguf_arr *a, uint64_t i, const char **s, size_t *len);
/* Element i of an array of arrays, or NULL. */
const struct kiln_gguf_arr *kiln__gguf_arr_sub(const struct kiln_gguf_arr *a, uint64_t i);

/* "u8", "string", ...; "unknown" outside the enum. Static string. */
const char *kiln__gguf_type_name(enum kiln_gguf_type type);
/* Encoded size of one value of a fixed-size type; 0 for STRING, ARRAY and
 * unknown types. */
size_t kiln__gguf_type_size(enum kiln_gguf_type type);
/* `len` bytes at `s` are well-formed UTF-8 (no overlong forms, surrogates or
 * code points past U+10FFFF) without a NUL byte. */
bool kiln__gguf_name_valid(const char *s, size_t len);

/* ---- writing (gguf_write.c) ----
 * Metadata goes in file order. A pair is a key followed by one value; an
 * array value is arr_begin(element type, count), then exactly `count` values
 * of that type (an ARRAY element is a nested arr_begin .. arr_end), then
 * arr_end. Misuse (a value without a key, a wrong element type or count,
 * a duplicate key or tensor name, bad UTF-8) gives KILN_ERR_INVALID_ARG. */
struct kiln_gguf_writer;

/* A new, empty writer (alignment 32). */
kiln_status kiln__gguf_writer_new(struct kiln_gguf_writer **out);
/* Release a writer (and the metadata it holds; tensor data is borrowed). NULL is fine. */
void kiln__gguf_writer_free(struct kiln_gguf_writer *w);

/* Set the alignment (a power of two <= KILN_GGUF_MAX_ALIGNMENT) and write it
 * as the u32 pair general.alignment. Only before the first tensor. */
kiln_status kiln__gguf_writer_set_alignment(struct kiln_gguf_writer *w, uint32_t alignment);

/* Start a pair: the key (valid UTF-8, 1..65535 bytes, new). */
kiln_status kiln__gguf_writer_key(struct kiln_gguf_writer *w, const char *key);
/* One value of a fixed-size type or STRING: `value` points to the C type
 * (uint8_t, int8_t, ..., float, bool, double; for STRING a struct kiln_gguf_str). */
kiln_status kiln__gguf_writer_value(struct kiln_gguf_writer *w, enum kiln_gguf_type type,
                                    const void *value);
/* Open an array of `count` elements of `type`. */
kiln_status kiln__gguf_writer_arr_begin(struct kiln_gguf_writer *w, enum kiln_gguf_type type,
                                        uint64_t count);
/* Close the innermost array (all its elements written). */
kiln_status kiln__gguf_writer_arr_end(struct kiln_gguf_writer *w);

/* One value (any type, arrays deeply) copied from a parsed file, e.g. after
 * kiln__gguf_writer_key to carry a pair over into a new file. */
kiln_status kiln__gguf_writer_copy_value(struct kiln_gguf_writer *w,
                                         const struct kiln_gguf_value *v);

/* Shorthands: key and one value. */
kiln_status kiln__gguf_writer_kv_u32(struct kiln_gguf_writer *w, const char *key, uint32_t v);
kiln_status kiln__gguf_writer_kv_i32(struct kiln_gguf_writer *w, const char *key, int32_t v);
kiln_status kiln__gguf_writer_kv_u64(struct kiln_gguf_writer *w, const char *key, uint64_t v);
kiln_status kiln__gguf_writer_kv_f32(struct kiln_gguf_writer *w, const char *key, float v);
kiln_status kiln__gguf_writer_kv_bool(struct kiln_gguf_writer *w, const char *key, bool v);
/* NUL-terminated string value. */
kiln_status kiln__gguf_writer_kv_str(struct kiln_gguf_writer *w, const char *key, const char *s);
/* Array of a fixed-size type from a C array of that type (bool for BOOL). */
kiln_status kiln__gguf_writer_kv_arr(struct kiln_gguf_writer *w, const char *key,
                                     enum kiln_gguf_type type, const void *values, uint64_t count);
/* Array of NUL-terminated strings. */
kiln_status kiln__gguf_writer_kv_str_arr(struct kiln_gguf_writer *w, const char *key,
                                         const char *const *strs, uint64_t count);

/* Add a tensor: `n_dims` (1..4) sizes in ne (ne[0] fastest, each >= 1, ne[0]
 * a multiple of the dtype's block size) and `nbytes` bytes of data, which must
 * equal the size those imply. `data` is borrowed until the file is written. */
kiln_status kiln__gguf_writer_add_tensor(struct kiln_gguf_writer *w, const char *name,
                                         kiln_dtype dtype, uint32_t n_dims, const uint64_t *ne,
                                         const void *data, size_t nbytes);

/* Write the v3 file to a stream (KILN_ERR_IO on a write error) or to a path
 * (created or truncated). No array may be open and no key pending. */
kiln_status kiln__gguf_writer_write_file(struct kiln_gguf_writer *w, FILE *f);
kiln_status kiln__gguf_writer_write(struct kiln_gguf_writer *w, const char *path);

#endif /* KILN_FORMATS_GGUF_H */
