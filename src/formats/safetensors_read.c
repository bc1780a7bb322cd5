/* src/formats/safetensors_read.c - parsing and validating one safetensors
 * file (from a buffer or a read-only mapping).
 *
 * The rules follow the reference implementation (huggingface/safetensors):
 * the header length is bounded, the header is a JSON object without duplicate
 * keys, each tensor's byte range matches its shape and dtype, and the tensors
 * tile the data section exactly (no overlap, no hole, nothing after the last).
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "formats/json_util.h"
#include "formats/safetensors.h"

_Static_assert(KILN_ST_MAX_DIMS <= KILN_LOOKUP_MAX_DIMS, "a lookup must hold every safetensors shape");

/* The dtypes safetensors files may hold that kiln reads, by their spelling. */
static const struct st_dtype {
    const char *name; /* safetensors spelling */
    kiln_dtype dtype; /* kiln type */
    size_t size;      /* bytes per element */
} st_dtypes[] = {
    {"F32", KILN_DTYPE_F32, 4},         {"F16", KILN_DTYPE_F16, 2},
    {"BF16", KILN_DTYPE_BF16, 2},       {"F64", KILN_DTYPE_F64, 8},
    {"I8", KILN_DTYPE_I8, 1},           {"U8", KILN_DTYPE_U8, 1},
    {"I16", KILN_DTYPE_I16, 2},         {"I32", KILN_DTYPE_I32, 4},
    {"I64", KILN_DTYPE_I64, 8},         {"BOOL", KILN_DTYPE_BOOL, 1},
    {"F8_E4M3", KILN_DTYPE_F8_E4M3, 1}, {"F8_E5M2", KILN_DTYPE_F8_E5M2, 1},
};
#define N_ST_DTYPES (sizeof st_dtypes / sizeof st_dtypes[0])

/* Spellings the safetensors format defines that kiln has no type for. */
static const char *const st_unsupported[] = {"U16", "U32", "U64", "C64",
                                             "F8_E8M0", "F4", "F6_E2M3", "F6_E3M2"};

size_t kiln__st_dtype_size(kiln_dtype dtype) {
    for (size_t i = 0; i < N_ST_DTYPES; i++)
        if (st_dtypes[i].dtype == dtype) return st_dtypes[i].size;
    return 0;
}

const char *kiln__st_dtype_name(kiln_dtype dtype) {
    for (size_t i = 0; i < N_ST_DTYPES; i++)
        if (st_dtypes[i].dtype == dtype) return st_dtypes[i].name;
    return NULL;
}

static uint64_t read_le64(const uint8_t *p) {
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = (v << 8) | p[i];
    return v;
}

/* "[2, 3]" into buf, for messages. */
static void format_shape(const struct kiln_st_tensor *t, char *buf, size_t cap) {
    size_t used = (size_t)snprintf(buf, cap, "[");
    for (int d = 0; d < t->n_dims && used < cap; d++)
        used += (size_t)snprintf(buf + used, cap - used, d ? ", %lld" : "%lld", (long long)t->shape[d]);
    if (used < cap) snprintf(buf + used, cap - used, "]");
}

/* Fill t (name already set) from its header entry; begin receives data_offsets[0].
 * data_size is the size of the data section. */
static kiln_status parse_tensor(struct kiln_st_tensor *t, const json_t *v, size_t data_size,
                                uint64_t *begin) {
    const char *name = t->name;
    if (!json_is_object(v))
        return kiln__fail(KILN_ERR_FORMAT, "safetensors: entry '%s' is a JSON %s, not an object",
                          name, kiln__json_kind(v));

    /* dtype */
    const json_t *jd = json_object_get(v, "dtype");
    if (!jd) return kiln__fail(KILN_ERR_FORMAT, "safetensors: tensor '%s' has no dtype", name);
    if (!json_is_string(jd))
        return kiln__fail(KILN_ERR_FORMAT, "safetensors: tensor '%s' dtype is not a string", name);
    const char *dname = json_string_value(jd);
    size_t esize = 0;
    t->dtype = KILN_DTYPE_UNKNOWN;
    for (size_t i = 0; i < N_ST_DTYPES; i++)
        if (strcmp(st_dtypes[i].name, dname) == 0) {
            t->dtype = st_dtypes[i].dtype;
            esize = st_dtypes[i].size;
        }
    if (t->dtype == KILN_DTYPE_UNKNOWN) {
        for (size_t i = 0; i < sizeof st_unsupported / sizeof st_unsupported[0]; i++)
            if (strcmp(st_unsupported[i], dname) == 0)
                return kiln__fail(KILN_ERR_UNSUPPORTED,
                                  "safetensors: tensor '%s' has dtype %s, which kiln does not support",
                                  name, dname);
        return kiln__fail(KILN_ERR_FORMAT, "safetensors: tensor '%s' has unknown dtype '%.32s'", name, dname);
    }

    /* shape: at most KILN_ST_MAX_DIMS non-negative integers whose product,
     * times the element size, fits in 63 bits. */
    const json_t *js = json_object_get(v, "shape");
    if (!js) return kiln__fail(KILN_ERR_FORMAT, "safetensors: tensor '%s' has no shape", name);
    if (!json_is_array(js))
        return kiln__fail(KILN_ERR_FORMAT, "safetensors: tensor '%s' shape is not an array", name);
    size_t nd = json_array_size(js);
    if (nd > KILN_ST_MAX_DIMS)
        return kiln__fail(KILN_ERR_UNSUPPORTED, "safetensors: tensor '%s' has %zu dimensions, more than %d",
                          name, nd, KILN_ST_MAX_DIMS);
    t->n_dims = (int)nd;
    uint64_t count = 1;
    for (size_t d = 0; d < nd; d++) {
        const json_t *jx = json_array_get(js, d);
        if (!json_is_integer(jx))
            return kiln__fail(KILN_ERR_FORMAT, "safetensors: tensor '%s' shape[%zu] is not an integer", name, d);
        json_int_t x = json_integer_value(jx);
        if (x < 0)
            return kiln__fail(KILN_ERR_FORMAT, "safetensors: tensor '%s' shape[%zu] is negative (%lld)",
                              name, d, (long long)x);
        t->shape[d] = (int64_t)x;
        if (__builtin_mul_overflow(count, (uint64_t)x, &count) || count > (uint64_t)INT64_MAX)
            return kiln__fail(KILN_ERR_FORMAT, "safetensors: tensor '%s' shape overflows 64 bits", name);
    }
    uint64_t need;
    if (__builtin_mul_overflow(count, (uint64_t)esize, &need) || need > (uint64_t)INT64_MAX)
        return kiln__fail(KILN_ERR_FORMAT, "safetensors: tensor '%s' shape overflows 64 bits", name);
    t->n_elements = (int64_t)count;

    /* data_offsets: [begin, end], begin <= end <= data section size,
     * end - begin = bytes the shape and dtype need. */
    const json_t *jo = json_object_get(v, "data_offsets");
    if (!jo) return kiln__fail(KILN_ERR_FORMAT, "safetensors: tensor '%s' has no data_offsets", name);
    if (!json_is_array(jo) || json_array_size(jo) != 2 || !json_is_integer(json_array_get(jo, 0)) ||
        !json_is_integer(json_array_get(jo, 1)) || json_integer_value(json_array_get(jo, 0)) < 0 ||
        json_integer_value(json_array_get(jo, 1)) < 0)
        return kiln__fail(KILN_ERR_FORMAT,
                          "safetensors: tensor '%s' data_offsets is not two non-negative integers", name);
    uint64_t b = (uint64_t)json_integer_value(json_array_get(jo, 0));
    uint64_t e = (uint64_t)json_integer_value(json_array_get(jo, 1));
    if (b > e)
        return kiln__fail(KILN_ERR_FORMAT,
                          "safetensors: tensor '%s' data_offsets are reversed (begin %llu > end %llu)",
                          name, (unsigned long long)b, (unsigned long long)e);
    if (e > data_size)
        return kiln__fail(KILN_ERR_FORMAT,
                          "safetensors: tensor '%s' data ends at byte %llu, past the end of the data (%zu bytes)",
                          name, (unsigned long long)e, data_size);
    if (e - b != need) {
        char shape[160];
        format_shape(t, shape, sizeof shape);
        return kiln__fail(KILN_ERR_FORMAT,
                          "safetensors: tensor '%s' spans %llu bytes but shape %s of %s needs %llu",
                          name, (unsigned long long)(e - b), shape, dname, (unsigned long long)need);
    }
    t->nbytes = (size_t)need;
    *begin = b;
    return KILN_OK;
}

/* qsort order: by data offset, then size, then name (a total order). */
static int cmp_offset(const void *pa, const void *pb) {
    const struct kiln_st_tensor *a = pa, *b = pb;
    if (a->file_offset != b->file_offset) return a->file_offset < b->file_offset ? -1 : 1;
    if (a->nbytes != b->nbytes) return a->nbytes < b->nbytes ? -1 : 1;
    return strcmp(a->name, b->name);
}

/* Copy s into the arena at *pos. */
static const char *arena_put(char *arena, size_t *pos, const char *s) {
    size_t n = strlen(s) + 1;
    memcpy(arena + *pos, s, n);
    const char *r = arena + *pos;
    *pos += n;
    return r;
}

/* Fill st from the decoded header. */
static kiln_status load_header(struct kiln_safetensors *st, json_t *root, size_t data_start) {
    if (!json_is_object(root))
        return kiln__fail(KILN_ERR_FORMAT, "safetensors: header is a JSON %s, not an object",
                          kiln__json_kind(root));

    /* Pass 1: count entries and string bytes; check the metadata. */
    const char *key;
    json_t *val;
    size_t n_tensors = 0, n_meta = 0, bytes = 0;
    json_object_foreach(root, key, val) {
        if (strcmp(key, "__metadata__") == 0) {
            if (!json_is_object(val))
                return kiln__fail(KILN_ERR_FORMAT, "safetensors: __metadata__ is a JSON %s, not an object",
                                  kiln__json_kind(val));
            const char *mk;
            json_t *mv;
            json_object_foreach(val, mk, mv) {
                if (!json_is_string(mv))
                    return kiln__fail(KILN_ERR_FORMAT,
                                      "safetensors: __metadata__ value of '%s' is a JSON %s, not a string",
                                      mk, kiln__json_kind(mv));
                bytes += strlen(mk) + 1 + json_string_length(mv) + 1;
                n_meta++;
            }
        } else {
            bytes += strlen(key) + 1;
            n_tensors++;
        }
    }

    st->strings_ = malloc(bytes ? bytes : 1);
    st->tensors = calloc(n_tensors ? n_tensors : 1, sizeof *st->tensors);
    st->meta = calloc(n_meta ? n_meta : 1, sizeof *st->meta);
    if (!st->strings_ || !st->tensors || !st->meta)
        return kiln__fail(KILN_ERR_OUT_OF_MEMORY, "safetensors: out of memory for %zu tensors", n_tensors);

    /* Pass 2: fill tensors and metadata. Every string is a C string: the
     * decoder rejects \u0000 unless JSON_ALLOW_NUL is given. */
    size_t pos = 0, ti = 0, mi = 0;
    json_object_foreach(root, key, val) {
        if (strcmp(key, "__metadata__") == 0) {
            const char *mk;
            json_t *mv;
            json_object_foreach(val, mk, mv) {
                st->meta[mi].key = arena_put(st->strings_, &pos, mk);
                st->meta[mi].value = arena_put(st->strings_, &pos, json_string_value(mv));
                mi++;
            }
            continue;
        }
        struct kiln_st_tensor *t = &st->tensors[ti++];
        t->name = arena_put(st->strings_, &pos, key);
        uint64_t begin = 0;
        kiln_status s = parse_tensor(t, val, st->data_size, &begin);
        if (s != KILN_OK) return s;
        t->file_offset = (uint64_t)data_start + begin;
        t->data = st->data ? st->data + begin : NULL;
    }
    st->n_tensors = n_tensors;
    st->n_meta = n_meta;

    /* The tensors must tile the data section: sorted by offset, each starts
     * where the previous ended, and the last ends at the end of the data. */
    qsort(st->tensors, n_tensors, sizeof *st->tensors, cmp_offset);
    uint64_t expect = data_start;
    for (size_t i = 0; i < n_tensors; i++) {
        const struct kiln_st_tensor *t = &st->tensors[i];
        if (t->file_offset < expect)
            return kiln__fail(KILN_ERR_FORMAT, "safetensors: tensors '%s' and '%s' overlap",
                              st->tensors[i - 1].name, t->name);
        if (t->file_offset > expect)
            return kiln__fail(KILN_ERR_FORMAT,
                              "safetensors: %llu bytes before tensor '%s' belong to no tensor (a hole)",
                              (unsigned long long)(t->file_offset - expect), t->name);
        expect = t->file_offset + t->nbytes;
    }
    if (expect != (uint64_t)data_start + st->data_size)
        return kiln__fail(KILN_ERR_FORMAT,
                          "safetensors: %llu bytes after the last tensor belong to no tensor",
                          (unsigned long long)((uint64_t)data_start + st->data_size - expect));

    /* The name table (names are unique: the decoder rejected duplicate keys). */
    const struct kiln_st_tensor **ptrs = malloc((n_tensors ? n_tensors : 1) * sizeof *ptrs);
    if (!ptrs) return kiln__fail(KILN_ERR_OUT_OF_MEMORY, "safetensors: out of memory");
    for (size_t i = 0; i < n_tensors; i++) ptrs[i] = &st->tensors[i];
    kiln_status s = kiln__st_table_build(&st->table_, ptrs, n_tensors, NULL);
    free(ptrs);
    return s;
}

kiln_status kiln__safetensors_parse(const uint8_t *data, size_t size, struct kiln_safetensors **out) {
    if (!out) return kiln__fail(KILN_ERR_INVALID_ARG, "safetensors: no output given");
    *out = NULL;
    if (!data && size) return kiln__fail(KILN_ERR_INVALID_ARG, "safetensors: no data given");
    if (size < 8)
        return kiln__fail(KILN_ERR_FORMAT,
                          "safetensors: file is %zu bytes, too short for the 8-byte header length", size);
    uint64_t hlen = read_le64(data);
    if (hlen > KILN_ST_MAX_HEADER)
        return kiln__fail(KILN_ERR_TOO_LARGE, "safetensors: header length %llu is over the limit of %u bytes",
                          (unsigned long long)hlen, KILN_ST_MAX_HEADER);
    if (hlen > size - 8)
        return kiln__fail(KILN_ERR_FORMAT,
                          "safetensors: header length %llu runs past the end of the file (%zu bytes follow it)",
                          (unsigned long long)hlen, size - 8);

    json_error_t jerr;
    json_t *root = json_loadb((const char *)data + 8, (size_t)hlen, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY,
                              &jerr);
    if (!root)
        return kiln__fail(KILN_ERR_FORMAT, "safetensors: header is not valid JSON: %s (byte %d)", jerr.text,
                          jerr.position);

    struct kiln_safetensors *st = calloc(1, sizeof *st);
    if (!st) {
        json_decref(root);
        return kiln__fail(KILN_ERR_OUT_OF_MEMORY, "safetensors: out of memory");
    }
    size_t data_start = 8 + (size_t)hlen;
    st->header_size = (size_t)hlen;
    st->data = size > data_start ? data + data_start : NULL;
    st->data_size = size - data_start;
    kiln_status s = load_header(st, root, data_start);
    json_decref(root);
    if (s != KILN_OK) {
        kiln__safetensors_free(st);
        return s;
    }
    *out = st;
    return KILN_OK;
}

kiln_status kiln__safetensors_open(const char *path, struct kiln_safetensors **out) {
    if (!out) return kiln__fail(KILN_ERR_INVALID_ARG, "safetensors: no output given");
    *out = NULL;
    struct kiln_file_map map;
    kiln_status s = kiln__file_map_open(path, &map);
    if (s != KILN_OK) return s;
    s = kiln__safetensors_parse(map.data, map.size, out);
    if (s != KILN_OK) {
        /* Name the file in front of the parser's message. */
        char msg[KILN_ERROR_MAX];
        snprintf(msg, sizeof msg, "%s", kiln_last_error());
        kiln__file_map_close(&map);
        return kiln__fail(s, "%s: %s", path, msg);
    }
    (*out)->map_ = map;
    return KILN_OK;
}

void kiln__safetensors_free(struct kiln_safetensors *st) {
    if (!st) return;
    kiln__st_table_free(&st->table_);
    kiln__file_map_close(&st->map_);
    free(st->tensors);
    free(st->meta);
    free(st->strings_);
    free(st);
}

const struct kiln_st_tensor *kiln__safetensors_find(const struct kiln_safetensors *st, const char *name) {
    return st ? kiln__st_table_find(&st->table_, name) : NULL;
}

/* kiln_tensor_lookup.find over one file. */
static bool lookup_find(void *ctx, const char *name, int64_t shape[KILN_LOOKUP_MAX_DIMS], int *n_dims) {
    const struct kiln_st_tensor *t = kiln__safetensors_find(ctx, name);
    if (!t) return false;
    *n_dims = t->n_dims;
    for (int d = 0; d < t->n_dims; d++) shape[d] = t->shape[d];
    return true;
}

struct kiln_tensor_lookup kiln__safetensors_lookup(const struct kiln_safetensors *st) {
    struct kiln_tensor_lookup lk = {lookup_find, (void *)st};
    return lk;
}

const char *kiln__safetensors_meta(const struct kiln_safetensors *st, const char *key) {
    if (!st || !key) return NULL;
    for (size_t i = 0; i < st->n_meta; i++)
        if (strcmp(st->meta[i].key, key) == 0) return st->meta[i].value;
    return NULL;
}
