/* src/formats/gguf_read.c - parse and validate a GGUF v2/v3 buffer, and the
 * hashed lookups of keys and tensor names (see gguf.h, docs/formats.md).
 *
 * Nothing read from the buffer is trusted before it is checked: every read
 * first checks the bytes left, every count is bounded by the bytes it needs,
 * and tensor geometry is checked for overflow, alignment, bounds and overlap.
 * Memory allocated while parsing is proportional to the buffer's size.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "formats/file_map.h"
#include "formats/gguf.h"

/* Smallest encodings, used to bound counts by the bytes left. */
#define MIN_KV_BYTES 14     /* u64 key length + 1-byte key + u32 type + 1-byte value */
#define MIN_TENSOR_BYTES 33 /* u64 name length + 1-byte name + u32 n_dims + one u64 dim
                               + u32 type + u64 offset */
#define HEADER_BYTES 24     /* magic, u32 version, u64 n_tensors, u64 n_kv */

/* One allocation made while parsing; all are freed together. */
struct alloc_node {
    struct alloc_node *next; /* the previous allocation */
    max_align_t payload[];   /* the memory handed out */
};

/* An open-addressing hash table of indices (index + 1; 0 = empty slot). */
struct name_index {
    uint64_t *slots; /* cap slots */
    uint64_t cap;    /* a power of two, at least twice the entries */
};

struct kiln_gguf_private {
    struct alloc_node *allocs; /* everything allocated for this file */
    struct name_index keys;    /* kv by key */
    struct name_index names;   /* tensors by name */
    struct kiln_file_map map;  /* the mapping, for kiln__gguf_open; {NULL, 0} otherwise */
};

/* The parse in progress: the buffer and a position in it. */
struct reader {
    const uint8_t *buf;  /* the whole buffer */
    size_t size;         /* its length */
    size_t pos;          /* next byte to read */
    struct kiln_gguf *g; /* the result being built (owns the allocations) */
};

/* ---- allocation ---- */

/* `n` zeroed bytes owned by g (freed by kiln__gguf_free); NULL when out of memory. */
static void *g_alloc(struct kiln_gguf *g, size_t n) {
    if (n > SIZE_MAX - sizeof(struct alloc_node)) return NULL;
    struct alloc_node *a = calloc(1, sizeof *a + n);
    if (!a) return NULL;
    a->next = g->priv->allocs;
    g->priv->allocs = a;
    return a->payload;
}

/* `count` elements of `size` bytes, or NULL on overflow or out of memory. */
static void *g_alloc_array(struct kiln_gguf *g, uint64_t count, size_t size) {
    size_t n;
    if (count > SIZE_MAX || __builtin_mul_overflow((size_t)count, size, &n)) return NULL;
    return g_alloc(g, n);
}

static kiln_status oom(const char *what) {
    return kiln__fail(KILN_ERR_OUT_OF_MEMORY, "gguf: out of memory for %s", what);
}

/* ---- little-endian reads ---- */

static uint16_t le16(const uint8_t *p) { return (uint16_t)(p[0] | (p[1] << 8)); }
static uint32_t le32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static uint64_t le64(const uint8_t *p) { return (uint64_t)le32(p) | (uint64_t)le32(p + 4) << 32; }

static size_t left(const struct reader *r) { return r->size - r->pos; }

/* The end of the buffer came before `need` bytes of `what` (about `name`). */
static kiln_status truncated(const struct reader *r, size_t need, const char *what,
                             const char *name) {
    return kiln__fail(KILN_ERR_FORMAT,
                      "gguf: truncated: %s%s%s%s needs %zu bytes at offset %zu but the file ends "
                      "at %zu",
                      what, name ? " of '" : "", name ? name : "", name ? "'" : "", need, r->pos,
                      r->size);
}

static kiln_status read_u32(struct reader *r, uint32_t *out, const char *what, const char *name) {
    if (left(r) < 4) return truncated(r, 4, what, name);
    *out = le32(r->buf + r->pos);
    r->pos += 4;
    return KILN_OK;
}

static kiln_status read_u64(struct reader *r, uint64_t *out, const char *what, const char *name) {
    if (left(r) < 8) return truncated(r, 8, what, name);
    *out = le64(r->buf + r->pos);
    r->pos += 8;
    return KILN_OK;
}

/* A string (u64 length + bytes) left in place in the buffer. */
static kiln_status read_str(struct reader *r, struct kiln_gguf_str *out, const char *what,
                            const char *name) {
    uint64_t len = 0;
    size_t at = r->pos;
    kiln_status st = read_u64(r, &len, what, name);
    if (st != KILN_OK) return st;
    if (len > left(r))
        return kiln__fail(KILN_ERR_FORMAT,
                          "gguf: string length %llu at offset %zu runs past the end of the file "
                          "(%zu bytes left) in %s%s%s%s",
                          (unsigned long long)len, at, left(r), what, name ? " of '" : "",
                          name ? name : "", name ? "'" : "");
    out->ptr = (const char *)r->buf + r->pos;
    out->len = len;
    r->pos += (size_t)len;
    return KILN_OK;
}

/* A key or tensor name: checked (length, UTF-8, no NUL) and copied NUL-terminated. */
static kiln_status read_name(struct reader *r, const char **out, const char *what) {
    size_t at = r->pos;
    struct kiln_gguf_str s = {NULL, 0};
    kiln_status st = read_str(r, &s, what, NULL);
    if (st != KILN_OK) return st;
    if (s.len == 0) return kiln__fail(KILN_ERR_FORMAT, "gguf: empty %s at offset %zu", what, at);
    if (s.len > KILN_GGUF_MAX_NAME_LEN)
        return kiln__fail(KILN_ERR_FORMAT, "gguf: %s at offset %zu is %llu bytes long (limit %d)",
                          what, at, (unsigned long long)s.len, KILN_GGUF_MAX_NAME_LEN);
    if (memchr(s.ptr, 0, (size_t)s.len))
        return kiln__fail(KILN_ERR_FORMAT, "gguf: %s at offset %zu contains a NUL byte", what, at);
    if (!kiln__gguf_name_valid(s.ptr, (size_t)s.len))
        return kiln__fail(KILN_ERR_FORMAT, "gguf: %s at offset %zu is not valid UTF-8", what, at);
    char *copy = g_alloc(r->g, (size_t)s.len + 1);
    if (!copy) return oom(what);
    memcpy(copy, s.ptr, (size_t)s.len);
    *out = copy;
    return KILN_OK;
}

/* ---- name index ---- */

static uint64_t hash_name(const char *s) {
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (; *s; s++) h = (h ^ (uint8_t)*s) * 1099511628211ull;
    return h;
}

/* Room for `n` names; false when out of memory. */
static bool index_init(struct kiln_gguf *g, struct name_index *ix, uint64_t n) {
    uint64_t cap = 8;
    while (cap < 2 * n) cap *= 2; /* n is bounded by the buffer size, so this ends */
    ix->slots = g_alloc_array(g, cap, sizeof *ix->slots);
    ix->cap = cap;
    return ix->slots != NULL;
}

/* Slot for `name` among names[] (a strided array of const char *): either the
 * slot holding it or the empty slot where it would go. */
static uint64_t *index_slot(const struct name_index *ix, const char *name, const void *items,
                            size_t stride) {
    uint64_t mask = ix->cap - 1;
    for (uint64_t i = hash_name(name) & mask;; i = (i + 1) & mask) {
        uint64_t v = ix->slots[i];
        if (v == 0) return &ix->slots[i];
        const char *other = *(const char *const *)((const uint8_t *)items + (v - 1) * stride);
        if (strcmp(other, name) == 0) return &ix->slots[i];
    }
}

/* ---- metadata values ---- */

static kiln_status parse_array(struct reader *r, struct kiln_gguf_arr *arr, int depth,
                               const char *key);

/* Smallest encoded size of one element of `type` (for bounding counts). */
static size_t min_size(enum kiln_gguf_type type) {
    if (type == KILN_GGUF_STRING) return 8;  /* the length prefix */
    if (type == KILN_GGUF_ARRAY) return 12;  /* element type + count */
    return kiln__gguf_type_size(type);
}

/* A type id read from the file, checked. */
static kiln_status read_type(struct reader *r, enum kiln_gguf_type *out, const char *what,
                             const char *key) {
    size_t at = r->pos;
    uint32_t t = 0;
    kiln_status st = read_u32(r, &t, what, key);
    if (st != KILN_OK) return st;
    if (t >= KILN_GGUF_TYPE_COUNT)
        return kiln__fail(KILN_ERR_FORMAT, "gguf: unknown value type %u at offset %zu in %s of '%s'",
                          t, at, what, key);
    *out = (enum kiln_gguf_type)t;
    return KILN_OK;
}

/* One value of `type` into *v. */
static kiln_status parse_value(struct reader *r, enum kiln_gguf_type type,
                               struct kiln_gguf_value *v, const char *key) {
    v->type = type;
    size_t size = kiln__gguf_type_size(type);
    if (size && left(r) < size) return truncated(r, size, "the value", key);
    const uint8_t *p = r->buf + r->pos;
    switch (type) {
    case KILN_GGUF_U8: v->v.u = p[0]; break;
    case KILN_GGUF_I8: v->v.i = (int8_t)p[0]; break;
    case KILN_GGUF_U16: v->v.u = le16(p); break;
    case KILN_GGUF_I16: v->v.i = (int16_t)le16(p); break;
    case KILN_GGUF_U32: v->v.u = le32(p); break;
    case KILN_GGUF_I32: v->v.i = (int32_t)le32(p); break;
    case KILN_GGUF_U64: v->v.u = le64(p); break;
    case KILN_GGUF_I64: v->v.i = (int64_t)le64(p); break;
    case KILN_GGUF_F32: {
        uint32_t bits = le32(p);
        memcpy(&v->v.f32, &bits, 4);
        break;
    }
    case KILN_GGUF_F64: {
        uint64_t bits = le64(p);
        memcpy(&v->v.f64, &bits, 8);
        break;
    }
    case KILN_GGUF_BOOL:
        if (p[0] > 1)
            return kiln__fail(KILN_ERR_FORMAT, "gguf: bool value %u at offset %zu of '%s' is not 0 or 1",
                              p[0], r->pos, key);
        v->v.b = p[0] == 1;
        break;
    case KILN_GGUF_STRING: return read_str(r, &v->v.str, "the string value", key);
    case KILN_GGUF_ARRAY: return parse_array(r, &v->v.arr, 1, key);
    case KILN_GGUF_TYPE_COUNT:
        return kiln__fail(KILN_ERR_INTERNAL, "gguf: value type %d out of range", (int)type);
    }
    r->pos += size;
    return KILN_OK;
}

/* An array (element type, count, elements) at nesting level `depth` (1 = outermost). */
static kiln_status parse_array(struct reader *r, struct kiln_gguf_arr *arr, int depth,
                               const char *key) {
    if (depth > KILN_GGUF_MAX_ARRAY_DEPTH)
        return kiln__fail(KILN_ERR_FORMAT, "gguf: arrays nested deeper than %d at offset %zu in '%s'",
                          KILN_GGUF_MAX_ARRAY_DEPTH, r->pos, key);
    kiln_status st = read_type(r, &arr->type, "the array element type", key);
    if (st != KILN_OK) return st;
    size_t at = r->pos;
    st = read_u64(r, &arr->count, "the array length", key);
    if (st != KILN_OK) return st;
    size_t elem = min_size(arr->type);
    if (arr->count > left(r) / elem)
        return kiln__fail(KILN_ERR_FORMAT,
                          "gguf: array length %llu at offset %zu of '%s' is too large: %s elements "
                          "need at least %zu bytes each and only %zu bytes are left",
                          (unsigned long long)arr->count, at, key, kiln__gguf_type_name(arr->type),
                          elem, left(r));
    arr->data = r->buf + r->pos;
    size_t start = r->pos;
    if (arr->type == KILN_GGUF_STRING) {
        uint64_t *off = g_alloc_array(r->g, arr->count, sizeof *off);
        if (arr->count && !off) return oom("a string array index");
        for (uint64_t i = 0; i < arr->count; i++) {
            off[i] = r->pos - start;
            struct kiln_gguf_str s;
            st = read_str(r, &s, "an array string", key);
            if (st != KILN_OK) return st;
        }
        arr->str_off = off;
    } else if (arr->type == KILN_GGUF_ARRAY) {
        struct kiln_gguf_arr *items = g_alloc_array(r->g, arr->count, sizeof *items);
        if (arr->count && !items) return oom("nested arrays");
        for (uint64_t i = 0; i < arr->count; i++) {
            st = parse_array(r, &items[i], depth + 1, key);
            if (st != KILN_OK) return st;
        }
        arr->items = items;
    } else {
        size_t n = (size_t)arr->count * elem; /* fits: bounded by left(r) above */
        if (arr->type == KILN_GGUF_BOOL)
            for (size_t i = 0; i < n; i++)
                if (arr->data[i] > 1)
                    return kiln__fail(KILN_ERR_FORMAT,
                                      "gguf: bool array element %zu of '%s' at offset %zu is %u, "
                                      "not 0 or 1",
                                      i, key, start + i, arr->data[i]);
        r->pos += n;
    }
    arr->nbytes = r->pos - start;
    return KILN_OK;
}

/* Every key/value pair, indexed by key. */
static kiln_status parse_kvs(struct reader *r) {
    struct kiln_gguf *g = r->g;
    if (g->n_kv > left(r) / MIN_KV_BYTES)
        return kiln__fail(KILN_ERR_FORMAT,
                          "gguf: metadata count %llu is too large for the %zu bytes after the header",
                          (unsigned long long)g->n_kv, left(r));
    g->kv = g_alloc_array(g, g->n_kv, sizeof *g->kv);
    if (!g->kv && g->n_kv) return oom("metadata");
    if (!index_init(g, &g->priv->keys, g->n_kv)) return oom("the key index");
    for (uint64_t i = 0; i < g->n_kv; i++) {
        struct kiln_gguf_kv *kv = &g->kv[i];
        kv->file_offset = r->pos;
        kiln_status st = read_name(r, &kv->key, "key");
        if (st != KILN_OK) return st;
        uint64_t *slot = index_slot(&g->priv->keys, kv->key, g->kv, sizeof *g->kv);
        if (*slot)
            return kiln__fail(KILN_ERR_FORMAT, "gguf: duplicate key '%s' (metadata pairs %llu and %llu)",
                              kv->key, (unsigned long long)(*slot - 1), (unsigned long long)i);
        *slot = i + 1;
        enum kiln_gguf_type type = KILN_GGUF_U8;
        st = read_type(r, &type, "the value type", kv->key);
        if (st != KILN_OK) return st;
        st = parse_value(r, type, &kv->value, kv->key);
        if (st != KILN_OK) return st;
    }
    return KILN_OK;
}

/* general.alignment, when present: an integer, a power of two, not huge. */
static kiln_status read_alignment(struct kiln_gguf *g) {
    g->alignment = KILN_GGUF_DEFAULT_ALIGNMENT;
    const struct kiln_gguf_kv *kv = kiln__gguf_find_kv(g, "general.alignment");
    if (!kv) return KILN_OK;
    uint64_t a = 0;
    switch (kv->value.type) {
    case KILN_GGUF_U8: case KILN_GGUF_U16: case KILN_GGUF_U32: case KILN_GGUF_U64:
        a = kv->value.v.u;
        break;
    case KILN_GGUF_I8: case KILN_GGUF_I16: case KILN_GGUF_I32: case KILN_GGUF_I64:
        if (kv->value.v.i <= 0)
            return kiln__fail(KILN_ERR_FORMAT, "gguf: general.alignment %lld is not positive",
                              (long long)kv->value.v.i);
        a = (uint64_t)kv->value.v.i;
        break;
    case KILN_GGUF_F32: case KILN_GGUF_F64: case KILN_GGUF_BOOL: case KILN_GGUF_STRING:
    case KILN_GGUF_ARRAY: case KILN_GGUF_TYPE_COUNT:
        return kiln__fail(KILN_ERR_FORMAT, "gguf: general.alignment has type %s, expected an integer",
                          kiln__gguf_type_name(kv->value.type));
    }
    if (a == 0 || (a & (a - 1)) != 0)
        return kiln__fail(KILN_ERR_FORMAT, "gguf: general.alignment %llu is not a power of two",
                          (unsigned long long)a);
    if (a > KILN_GGUF_MAX_ALIGNMENT)
        return kiln__fail(KILN_ERR_FORMAT, "gguf: general.alignment %llu is larger than %u",
                          (unsigned long long)a, KILN_GGUF_MAX_ALIGNMENT);
    g->alignment = (uint32_t)a;
    return KILN_OK;
}

/* ---- tensors ---- */

/* One tensor info: name, dims, type, offset (checked against the alignment). */
static kiln_status parse_tensor_info(struct reader *r, struct kiln_gguf_tensor *t) {
    kiln_status st = read_name(r, &t->name, "tensor name");
    if (st != KILN_OK) return st;
    const char *name = t->name;
    st = read_u32(r, &t->n_dims, "the dimension count", name);
    if (st != KILN_OK) return st;
    if (t->n_dims < 1 || t->n_dims > KILN_GGUF_MAX_DIMS)
        return kiln__fail(KILN_ERR_FORMAT, "gguf: tensor '%s' has %u dimensions (must be 1 to %d)",
                          name, t->n_dims, KILN_GGUF_MAX_DIMS);
    uint64_t n = 1;
    for (uint32_t d = 0; d < KILN_GGUF_MAX_DIMS; d++) {
        if (d >= t->n_dims) {
            t->ne[d] = 1;
            continue;
        }
        st = read_u64(r, &t->ne[d], "a dimension", name);
        if (st != KILN_OK) return st;
        if (t->ne[d] == 0)
            return kiln__fail(KILN_ERR_FORMAT, "gguf: tensor '%s' dimension %u is zero", name, d);
        if (t->ne[d] > INT64_MAX)
            return kiln__fail(KILN_ERR_FORMAT,
                              "gguf: tensor '%s' dimension %u is %llu (negative as int64)", name, d,
                              (unsigned long long)t->ne[d]);
        if (n > (uint64_t)INT64_MAX / t->ne[d])
            return kiln__fail(KILN_ERR_FORMAT, "gguf: tensor '%s' element count overflows int64",
                              name);
        n *= t->ne[d];
    }
    t->n_elems = n;
    st = read_u32(r, &t->ggml_type, "the type", name);
    if (st != KILN_OK) return st;
    t->dtype = kiln_dtype_from_ggml(t->ggml_type);
    if (t->dtype == KILN_DTYPE_UNKNOWN)
        return kiln__fail(KILN_ERR_FORMAT, "gguf: tensor '%s' has unknown ggml type %u", name,
                          t->ggml_type);
    uint64_t be = kiln_dtype_block_elems(t->dtype), bb = kiln_dtype_block_bytes(t->dtype);
    if (t->ne[0] % be != 0)
        return kiln__fail(KILN_ERR_FORMAT,
                          "gguf: tensor '%s' row length %llu is not a multiple of the %s block "
                          "size %llu",
                          name, (unsigned long long)t->ne[0], kiln_dtype_name(t->dtype),
                          (unsigned long long)be);
    uint64_t nbytes;
    if (__builtin_mul_overflow(n / be, bb, &nbytes) || nbytes > SIZE_MAX)
        return kiln__fail(KILN_ERR_FORMAT, "gguf: tensor '%s' byte size overflows", name);
    t->nbytes = (size_t)nbytes;
    st = read_u64(r, &t->offset, "the data offset", name);
    if (st != KILN_OK) return st;
    if (t->offset % r->g->alignment != 0)
        return kiln__fail(KILN_ERR_FORMAT,
                          "gguf: tensor '%s' data offset %llu is not a multiple of the alignment %u",
                          name, (unsigned long long)t->offset, r->g->alignment);
    return KILN_OK;
}

/* A tensor's data range, for the overlap check. */
struct span {
    uint64_t begin, end; /* [begin, end) in the data section */
    uint64_t index;      /* which tensor */
};

static int span_cmp(const void *a, const void *b) {
    const struct span *x = a, *y = b;
    return x->begin < y->begin ? -1 : x->begin > y->begin;
}

/* Each tensor's data inside the file, and no two overlapping. */
static kiln_status place_tensors(struct reader *r) {
    struct kiln_gguf *g = r->g;
    /* Data starts at the first aligned offset after the infos (r->pos <= size,
     * alignment <= 1 MiB: no overflow). */
    uint64_t start = ((uint64_t)r->pos + g->alignment - 1) / g->alignment * g->alignment;
    g->data_offset = start;
    if (g->n_tensors == 0) return KILN_OK;
    if (start > r->size)
        return kiln__fail(KILN_ERR_FORMAT,
                          "gguf: data section starts at offset %llu, past the end of the file (%zu bytes)",
                          (unsigned long long)start, r->size);
    uint64_t avail = r->size - start;
    struct span *spans = malloc((size_t)g->n_tensors * sizeof *spans); /* n bounded by size/33 */
    if (!spans) return oom("tensor ranges");
    kiln_status st = KILN_OK;
    for (uint64_t i = 0; i < g->n_tensors; i++) {
        struct kiln_gguf_tensor *t = &g->tensors[i];
        if (t->offset > avail || t->nbytes > avail - t->offset) {
            st = kiln__fail(KILN_ERR_FORMAT,
                            "gguf: tensor '%s' data [%llu, +%zu) ends past the end of the file (the "
                            "data section has %llu bytes)",
                            t->name, (unsigned long long)t->offset, t->nbytes,
                            (unsigned long long)avail);
            break;
        }
        t->data = r->buf + start + t->offset;
        spans[i] = (struct span){t->offset, t->offset + t->nbytes, i};
    }
    if (st == KILN_OK) {
        qsort(spans, (size_t)g->n_tensors, sizeof *spans, span_cmp);
        for (uint64_t i = 1; i < g->n_tensors; i++)
            if (spans[i].begin < spans[i - 1].end) {
                st = kiln__fail(KILN_ERR_FORMAT,
                                "gguf: tensors '%s' [%llu, %llu) and '%s' [%llu, %llu) overlap",
                                g->tensors[spans[i - 1].index].name,
                                (unsigned long long)spans[i - 1].begin,
                                (unsigned long long)spans[i - 1].end,
                                g->tensors[spans[i].index].name, (unsigned long long)spans[i].begin,
                                (unsigned long long)spans[i].end);
                break;
            }
    }
    free(spans);
    return st;
}

/* Every tensor info, indexed by name, then their data placed. */
static kiln_status parse_tensors(struct reader *r) {
    struct kiln_gguf *g = r->g;
    if (g->n_tensors > left(r) / MIN_TENSOR_BYTES)
        return kiln__fail(KILN_ERR_FORMAT,
                          "gguf: tensor count %llu is too large for the %zu bytes after the metadata",
                          (unsigned long long)g->n_tensors, left(r));
    g->tensors = g_alloc_array(g, g->n_tensors, sizeof *g->tensors);
    if (!g->tensors && g->n_tensors) return oom("tensor infos");
    if (!index_init(g, &g->priv->names, g->n_tensors)) return oom("the tensor index");
    for (uint64_t i = 0; i < g->n_tensors; i++) {
        struct kiln_gguf_tensor *t = &g->tensors[i];
        kiln_status st = parse_tensor_info(r, t);
        if (st != KILN_OK) return st;
        uint64_t *slot = index_slot(&g->priv->names, t->name, g->tensors, sizeof *g->tensors);
        if (*slot)
            return kiln__fail(KILN_ERR_FORMAT, "gguf: duplicate tensor name '%s' (tensors %llu and %llu)",
                              t->name, (unsigned long long)(*slot - 1), (unsigned long long)i);
        *slot = i + 1;
    }
    return place_tensors(r);
}

/* Magic, version and the two counts. */
static kiln_status parse_header(struct reader *r) {
    struct kiln_gguf *g = r->g;
    if (r->size == 0) return kiln__fail(KILN_ERR_FORMAT, "gguf: file is empty");
    if (r->size < 4 || memcmp(r->buf, "GGUF", 4) != 0)
        return kiln__fail(KILN_ERR_FORMAT, "gguf: bad magic (not a GGUF file)");
    if (r->size < HEADER_BYTES)
        return kiln__fail(KILN_ERR_FORMAT, "gguf: truncated header: %zu bytes, need %d", r->size,
                          HEADER_BYTES);
    uint32_t v = le32(r->buf + 4);
    uint32_t swapped = __builtin_bswap32(v);
    if (v == 1)
        return kiln__fail(KILN_ERR_FORMAT, "gguf: version 1 is not supported (only 2 and 3)");
    if (swapped == 2 || swapped == 3)
        return kiln__fail(KILN_ERR_FORMAT, "gguf: big-endian GGUF (version %u) is not supported",
                          swapped);
    if (v != 2 && v != 3)
        return kiln__fail(KILN_ERR_FORMAT, "gguf: unsupported version %u (only 2 and 3)", v);
    g->version = v;
    g->n_tensors = le64(r->buf + 8);
    g->n_kv = le64(r->buf + 16);
    r->pos = HEADER_BYTES;
    return KILN_OK;
}

/* ---- public entry points ---- */

/* An empty result with its private part, or NULL. */
static struct kiln_gguf *gguf_new(void) {
    struct kiln_gguf *g = calloc(1, sizeof *g);
    if (!g) return NULL;
    g->priv = calloc(1, sizeof *g->priv);
    if (!g->priv) {
        free(g);
        return NULL;
    }
    return g;
}

/* Parse into an already created g (which the caller frees on failure). */
static kiln_status parse_into(struct kiln_gguf *g, const uint8_t *data, size_t size) {
    struct reader r = {.buf = data, .size = size, .pos = 0, .g = g};
    g->base = data;
    g->size = size;
    kiln_status st = parse_header(&r);
    if (st == KILN_OK) st = parse_kvs(&r);
    if (st == KILN_OK) st = read_alignment(g);
    if (st == KILN_OK) st = parse_tensors(&r);
    return st;
}

kiln_status kiln__gguf_parse(const uint8_t *data, size_t size, struct kiln_gguf **out) {
    if (!out) return kiln__fail(KILN_ERR_INVALID_ARG, "gguf: no output given");
    *out = NULL;
    if (!data && size) return kiln__fail(KILN_ERR_INVALID_ARG, "gguf: no data given");
    struct kiln_gguf *g = gguf_new();
    if (!g) return oom("the file index");
    kiln_status st = parse_into(g, data, size);
    if (st != KILN_OK) {
        kiln__gguf_free(g);
        return st;
    }
    *out = g;
    return KILN_OK;
}

kiln_status kiln__gguf_open(const char *path, struct kiln_gguf **out) {
    if (!out) return kiln__fail(KILN_ERR_INVALID_ARG, "gguf: no output given");
    *out = NULL;
    struct kiln_gguf *g = gguf_new();
    if (!g) return oom("the file index");
    kiln_status st = kiln__file_map_open(path, &g->priv->map);
    if (st == KILN_OK) st = parse_into(g, g->priv->map.data, g->priv->map.size);
    if (st != KILN_OK) {
        if (st == KILN_ERR_FORMAT) { /* name the file after the defect */
            char msg[KILN_ERROR_MAX];
            snprintf(msg, sizeof msg, "%s", kiln_last_error());
            kiln__fail(st, "%s (in '%s')", msg, path);
        }
        kiln__gguf_free(g);
        return st;
    }
    *out = g;
    return KILN_OK;
}

void kiln__gguf_free(struct kiln_gguf *g) {
    if (!g) return;
    if (g->priv) {
        for (struct alloc_node *a = g->priv->allocs; a;) {
            struct alloc_node *next = a->next;
            free(a);
            a = next;
        }
        kiln__file_map_close(&g->priv->map);
        free(g->priv);
    }
    free(g);
}

const struct kiln_gguf_kv *kiln__gguf_find_kv(const struct kiln_gguf *g, const char *key) {
    if (!g || !key || !g->priv->keys.slots) return NULL;
    uint64_t v = *index_slot(&g->priv->keys, key, g->kv, sizeof *g->kv);
    return v ? &g->kv[v - 1] : NULL;
}

const struct kiln_gguf_tensor *kiln__gguf_find_tensor(const struct kiln_gguf *g, const char *name) {
    if (!g || !name || !g->priv->names.slots) return NULL;
    uint64_t v = *index_slot(&g->priv->names, name, g->tensors, sizeof *g->tensors);
    return v ? &g->tensors[v - 1] : NULL;
}
