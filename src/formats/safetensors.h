/* src/formats/safetensors.h - safetensors files: reader, sharded sets and
 * writer (internal).
 *
 * Layout of a file (Hugging Face safetensors):
 *   u64 little-endian N | N bytes of JSON header | data
 * The header maps each tensor name to {"dtype", "shape", "data_offsets":
 * [begin, end]} with offsets relative to the first byte after the header;
 * an optional "__metadata__" object maps strings to strings. Every check the
 * reader makes is listed in docs/formats.md ("## safetensors").
 *
 * Ownership: a parsed file owns its names, metadata and index; tensor data
 * points into the caller's buffer (kiln__safetensors_parse) or into the
 * file's mapping (kiln__safetensors_open) and lives as long as the object.
 */
#ifndef KILN_FORMATS_SAFETENSORS_H
#define KILN_FORMATS_SAFETENSORS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "formats/file_map.h"
#include "formats/tensor_lookup.h"
#include "kiln/dtype.h"
#include "kiln/status.h"

/* Most dimensions a tensor may have (scalars have 0). */
#define KILN_ST_MAX_DIMS 8
/* Largest JSON header accepted, in bytes (the reference implementation's limit). */
#define KILN_ST_MAX_HEADER 100000000u

/* One tensor of a file. */
struct kiln_st_tensor {
    const char *name;                /* NUL-terminated; owned by the file object */
    kiln_dtype dtype;                /* element type (F32, F16, BF16, I8, U8, ...) */
    int n_dims;                      /* 0..KILN_ST_MAX_DIMS; 0 is a scalar */
    int64_t shape[KILN_ST_MAX_DIMS]; /* sizes, outermost first (row-major); unused ones are 0 */
    int64_t n_elements;              /* product of the shape (1 for a scalar) */
    const uint8_t *data;             /* first byte of the values, inside the buffer or mapping */
    size_t nbytes;                   /* bytes of data: n_elements x element size */
    uint64_t file_offset;            /* absolute byte offset of data in the file */
};

/* One "__metadata__" entry. */
struct kiln_st_meta {
    const char *key;   /* NUL-terminated; owned by the file object */
    const char *value; /* NUL-terminated; owned by the file object */
};

/* Name -> tensor table (open addressing); private to the safetensors files. */
struct kiln_st_table {
    const struct kiln_st_tensor **slots; /* cap entries, NULL = empty */
    size_t cap;                          /* power of two, at least twice the count */
};

/* A parsed safetensors file. */
struct kiln_safetensors {
    struct kiln_st_tensor *tensors; /* n_tensors entries, in order of their data offsets */
    size_t n_tensors;               /* number of tensors */
    struct kiln_st_meta *meta;      /* n_meta "__metadata__" entries, in header order */
    size_t n_meta;                  /* number of metadata entries */
    size_t header_size;             /* N: bytes of JSON header */
    const uint8_t *data;            /* start of the data section */
    size_t data_size;               /* bytes of the data section */
    /* private */
    char *strings_;                 /* arena holding every name, key and value */
    struct kiln_st_table table_;    /* lookup by name */
    struct kiln_file_map map_;      /* the mapping when opened from a path */
};

/* Parse a whole safetensors file held in memory (data, size). The buffer must
 * outlive *out (tensor data points into it). On failure returns KILN_ERR_FORMAT
 * (malformed), KILN_ERR_TOO_LARGE (header over KILN_ST_MAX_HEADER),
 * KILN_ERR_UNSUPPORTED (a safetensors dtype kiln lacks, e.g. U16) or
 * KILN_ERR_OUT_OF_MEMORY, with a message naming the defect; *out is NULL. */
kiln_status kiln__safetensors_parse(const uint8_t *data, size_t size,
                                    struct kiln_safetensors **out);
/* Map `path` read-only and parse it; also KILN_ERR_IO for an unreadable file. */
kiln_status kiln__safetensors_open(const char *path, struct kiln_safetensors **out);
/* Release a parsed file (and its mapping). NULL is fine. */
void kiln__safetensors_free(struct kiln_safetensors *st);

/* The tensor called `name`, or NULL. O(1). */
const struct kiln_st_tensor *kiln__safetensors_find(const struct kiln_safetensors *st,
                                                    const char *name);
/* A name -> shape lookup over one file (for sd_detect); valid while st lives. */
struct kiln_tensor_lookup kiln__safetensors_lookup(const struct kiln_safetensors *st);
/* The "__metadata__" value for `key`, or NULL. */
const char *kiln__safetensors_meta(const struct kiln_safetensors *st, const char *key);

/* Bytes per element of a dtype a safetensors file may hold; 0 for any other
 * (quantized GGML types). */
size_t kiln__st_dtype_size(kiln_dtype dtype);
/* The safetensors spelling of a dtype ("F32", "F8_E4M3", ...), or NULL when
 * safetensors cannot hold it. */
const char *kiln__st_dtype_name(kiln_dtype dtype);

/* --- sharded models ---------------------------------------------------- */

/* Several files seen as one: the shards of a model.safetensors.index.json
 * (or a single file). Tensor names are unique across the set. */
struct kiln_safetensors_set {
    struct kiln_safetensors **shards;     /* n_shards parsed files, each opened once */
    char **shard_paths;                   /* n_shards paths, parallel to shards */
    size_t n_shards;                      /* number of files */
    const struct kiln_st_tensor **tensors;/* n_tensors tensors of all shards, shard by shard */
    size_t n_tensors;                     /* total number of tensors */
    /* private */
    struct kiln_st_table table_;          /* lookup by name across shards */
};

/* Open a *.safetensors.index.json: read its "weight_map" (tensor name ->
 * shard file name in the same folder), open each shard once, and check that
 * every listed tensor is in its shard and that no name appears in two shards. */
kiln_status kiln__safetensors_open_index(const char *index_path,
                                         struct kiln_safetensors_set **out);
/* Open one safetensors file as a set of one. */
kiln_status kiln__safetensors_open_single(const char *path, struct kiln_safetensors_set **out);
/* Either of the above: an index when the path ends in ".json" (diffusers'
 * fp16 variants are named *.safetensors.index.fp16.json). */
kiln_status kiln__safetensors_set_open(const char *path, struct kiln_safetensors_set **out);
/* The tensor called `name` in any shard, or NULL. O(1). */
const struct kiln_st_tensor *kiln__safetensors_set_find(const struct kiln_safetensors_set *set,
                                                        const char *name);
/* Release a set and all its shards. NULL is fine. */
void kiln__safetensors_set_free(struct kiln_safetensors_set *set);
/* A name -> shape lookup over the set (for sd_detect); valid while set lives. */
struct kiln_tensor_lookup kiln__safetensors_set_lookup(const struct kiln_safetensors_set *set);

/* --- writer ------------------------------------------------------------ */

/* One tensor to write. */
struct kiln_st_write_tensor {
    const char *name;     /* unique, not "__metadata__" */
    kiln_dtype dtype;     /* a dtype safetensors can hold */
    int n_dims;           /* 0..KILN_ST_MAX_DIMS */
    const int64_t *shape; /* n_dims non-negative sizes (may be NULL when n_dims is 0) */
    const void *data;     /* nbytes bytes, little-endian values (may be NULL when nbytes is 0) */
    size_t nbytes;        /* must equal the shape's element count x element size */
};

/* Serialise tensors (data in the given order) and string metadata into a new
 * malloc'd buffer *out of *out_size bytes (free() it). The header is padded
 * with spaces to a multiple of 8 bytes, as the reference writer does. */
kiln_status kiln__safetensors_write_mem(const struct kiln_st_write_tensor *tensors, size_t n,
                                        const struct kiln_st_meta *meta, size_t n_meta,
                                        uint8_t **out, size_t *out_size);
/* The same written to `path` (through path.tmp, renamed when complete). */
kiln_status kiln__safetensors_write(const char *path, const struct kiln_st_write_tensor *tensors,
                                    size_t n, const struct kiln_st_meta *meta, size_t n_meta);

/* --- name table (shared by the reader and the sets) -------------------- */

/* Build a table of n tensors. KILN_ERR_FORMAT "duplicate tensor name" when two
 * share a name (*dup, when given, receives the second); KILN_ERR_OUT_OF_MEMORY. */
kiln_status kiln__st_table_build(struct kiln_st_table *t, const struct kiln_st_tensor *const *items,
                                 size_t n, const struct kiln_st_tensor **dup);
const struct kiln_st_tensor *kiln__st_table_find(const struct kiln_st_table *t, const char *name);
void kiln__st_table_free(struct kiln_st_table *t);

#endif /* KILN_FORMATS_SAFETENSORS_H */
