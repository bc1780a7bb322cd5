/* src/formats/gguf_write.c - build and write GGUF v3 files (see gguf.h).
 *
 * Metadata is encoded as it is added, into one growing buffer; a small stack
 * tracks the arrays still open so that element types and counts are checked
 * as values arrive. Tensors are recorded (data borrowed) with their offsets
 * in the data section, aligned as they are added; writing emits the header,
 * the metadata, the tensor infos, padding and the data.
 */
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "formats/gguf.h"

/* An array being written. */
struct open_arr {
    enum kiln_gguf_type type; /* element type */
    uint64_t left;            /* elements still expected */
};

/* A tensor to write. */
struct wtensor {
    char *name;                      /* owned copy */
    kiln_dtype dtype;                /* element type */
    uint32_t n_dims;                 /* 1..4 */
    uint64_t ne[KILN_GGUF_MAX_DIMS]; /* sizes, ne[0] fastest */
    const void *data;                /* borrowed data */
    size_t nbytes;                   /* its size */
    uint64_t offset;                 /* offset in the data section (aligned) */
};

struct kiln_gguf_writer {
    uint8_t *kv;                                    /* encoded metadata pairs */
    size_t kv_len, kv_cap;                          /* bytes used and allocated */
    char **keys;                                    /* copies of the keys, for duplicates */
    uint64_t n_kv, keys_cap;                        /* pairs started; keys allocated */
    bool key_pending;                               /* a key waits for its value */
    bool setting_alignment;                         /* set_alignment is writing its pair */
    struct open_arr stack[KILN_GGUF_MAX_ARRAY_DEPTH]; /* open arrays, outermost first */
    int depth;                                      /* how many are open */
    struct wtensor *tensors;                        /* tensors in file order */
    uint64_t n_tensors, tensors_cap;                /* count and allocated */
    uint32_t alignment;                             /* data alignment */
    uint64_t data_size;                             /* data section size so far */
};

static kiln_status misuse(const char *msg, const char *detail) {
    return kiln__fail(KILN_ERR_INVALID_ARG, "gguf writer: %s%s%s%s", msg, detail ? " '" : "",
                      detail ? detail : "", detail ? "'" : "");
}

kiln_status kiln__gguf_writer_new(struct kiln_gguf_writer **out) {
    if (!out) return misuse("no output given", NULL);
    *out = calloc(1, sizeof **out);
    if (!*out) return kiln__fail(KILN_ERR_OUT_OF_MEMORY, "gguf writer: out of memory");
    (*out)->alignment = KILN_GGUF_DEFAULT_ALIGNMENT;
    return KILN_OK;
}

void kiln__gguf_writer_free(struct kiln_gguf_writer *w) {
    if (!w) return;
    for (uint64_t i = 0; i < w->n_kv; i++) free(w->keys[i]);
    for (uint64_t i = 0; i < w->n_tensors; i++) free(w->tensors[i].name);
    free(w->keys);
    free(w->tensors);
    free(w->kv);
    free(w);
}

/* Room for n more bytes of metadata, so that the puts that follow cannot fail
 * halfway through a value. */
static kiln_status reserve(struct kiln_gguf_writer *w, uint64_t n) {
    if (n > SIZE_MAX / 4 || w->kv_len > SIZE_MAX / 4)
        return kiln__fail(KILN_ERR_TOO_LARGE, "gguf writer: metadata too large");
    if (w->kv_len + n <= w->kv_cap) return KILN_OK;
    size_t cap = w->kv_cap ? w->kv_cap : 256;
    while (cap < w->kv_len + n) cap *= 2;
    uint8_t *b = realloc(w->kv, cap);
    if (!b) return kiln__fail(KILN_ERR_OUT_OF_MEMORY, "gguf writer: out of memory");
    w->kv = b;
    w->kv_cap = cap;
    return KILN_OK;
}

/* Append n bytes (reserved before). */
static void put(struct kiln_gguf_writer *w, const void *p, size_t n) {
    if (n) memcpy(w->kv + w->kv_len, p, n);
    w->kv_len += n;
}

/* Little-endian integer of n bytes (reserved before). */
static void put_le(struct kiln_gguf_writer *w, uint64_t v, size_t n) {
    uint8_t b[8];
    for (size_t k = 0; k < n; k++) b[k] = (uint8_t)(v >> (8 * k));
    put(w, b, n);
}

/* A length-prefixed string (8 + len bytes reserved before). */
static void put_str(struct kiln_gguf_writer *w, const char *s, uint64_t len) {
    put_le(w, len, 8);
    put(w, s, (size_t)len);
}

/* A name (key or tensor name) acceptable to the reader. */
static kiln_status check_name(const char *name, const char *what) {
    if (!name) return misuse(what, "(null)");
    size_t len = strlen(name);
    if (len == 0 || len > KILN_GGUF_MAX_NAME_LEN) return misuse(what, "has a bad length");
    if (!kiln__gguf_name_valid(name, len)) return misuse(what, "is not valid UTF-8");
    return KILN_OK;
}

kiln_status kiln__gguf_writer_key(struct kiln_gguf_writer *w, const char *key) {
    if (!w) return misuse("no writer", NULL);
    if (w->key_pending || w->depth) return misuse("the previous pair is not finished before key", key);
    kiln_status st = check_name(key, "key");
    if (st != KILN_OK) return st;
    if (strcmp(key, "general.alignment") == 0 && !w->setting_alignment)
        return misuse("use kiln__gguf_writer_set_alignment for", key);
    for (uint64_t i = 0; i < w->n_kv; i++)
        if (strcmp(w->keys[i], key) == 0) return misuse("duplicate key", key);
    if (w->n_kv == w->keys_cap) {
        uint64_t cap = w->keys_cap ? 2 * w->keys_cap : 16;
        char **k = realloc(w->keys, (size_t)cap * sizeof *k);
        if (!k) return kiln__fail(KILN_ERR_OUT_OF_MEMORY, "gguf writer: out of memory");
        w->keys = k;
        w->keys_cap = cap;
    }
    st = reserve(w, 8 + strlen(key));
    if (st != KILN_OK) return st;
    char *copy = strdup(key);
    if (!copy) return kiln__fail(KILN_ERR_OUT_OF_MEMORY, "gguf writer: out of memory");
    put_str(w, key, strlen(key));
    w->keys[w->n_kv++] = copy;
    w->key_pending = true;
    return KILN_OK;
}

/* Account for one value of `type` whose encoding takes `size` bytes: inside an
 * array it must match the element type; outside it completes the pending pair
 * (and the type id is written). Reserves the room for the value. */
static kiln_status begin_value(struct kiln_gguf_writer *w, enum kiln_gguf_type type, uint64_t size) {
    kiln_status st = reserve(w, 4 + size);
    if (st != KILN_OK) return st;
    if (w->depth) {
        struct open_arr *a = &w->stack[w->depth - 1];
        if (a->type != type) return misuse("array element of the wrong type", kiln__gguf_type_name(type));
        if (a->left == 0) return misuse("more array elements than declared", NULL);
        a->left--;
        return KILN_OK;
    }
    if (!w->key_pending) return misuse("a value without a key", NULL);
    w->key_pending = false;
    put_le(w, (uint64_t)type, 4);
    return KILN_OK;
}

kiln_status kiln__gguf_writer_value(struct kiln_gguf_writer *w, enum kiln_gguf_type type,
                                    const void *value) {
    if (!w || !value) return misuse("no writer or value", NULL);
    uint64_t bits = 0;
    switch (type) {
    case KILN_GGUF_U8: bits = *(const uint8_t *)value; break;
    case KILN_GGUF_I8: bits = (uint8_t) * (const int8_t *)value; break;
    case KILN_GGUF_U16: bits = *(const uint16_t *)value; break;
    case KILN_GGUF_I16: bits = (uint16_t) * (const int16_t *)value; break;
    case KILN_GGUF_U32: bits = *(const uint32_t *)value; break;
    case KILN_GGUF_I32: bits = (uint32_t) * (const int32_t *)value; break;
    case KILN_GGUF_U64: bits = *(const uint64_t *)value; break;
    case KILN_GGUF_I64: bits = (uint64_t) * (const int64_t *)value; break;
    case KILN_GGUF_BOOL: bits = *(const bool *)value ? 1 : 0; break;
    case KILN_GGUF_F32: {
        uint32_t b32;
        memcpy(&b32, value, 4);
        bits = b32;
        break;
    }
    case KILN_GGUF_F64: memcpy(&bits, value, 8); break;
    case KILN_GGUF_STRING: {
        const struct kiln_gguf_str *s = value;
        if (!s->ptr && s->len) return misuse("a string without bytes", NULL);
        if (s->len > SIZE_MAX / 4) return misuse("a string too long", NULL);
        kiln_status st = begin_value(w, type, 8 + s->len);
        if (st == KILN_OK) put_str(w, s->ptr, s->len);
        return st;
    }
    case KILN_GGUF_ARRAY: case KILN_GGUF_TYPE_COUNT:
        return misuse("not a scalar type:", kiln__gguf_type_name(type));
    }
    kiln_status st = begin_value(w, type, kiln__gguf_type_size(type));
    if (st == KILN_OK) put_le(w, bits, kiln__gguf_type_size(type));
    return st;
}

kiln_status kiln__gguf_writer_arr_begin(struct kiln_gguf_writer *w, enum kiln_gguf_type type,
                                        uint64_t count) {
    if (!w) return misuse("no writer", NULL);
    if ((unsigned)type >= KILN_GGUF_TYPE_COUNT) return misuse("unknown element type", NULL);
    if (w->depth == KILN_GGUF_MAX_ARRAY_DEPTH) return misuse("arrays nested too deep", NULL);
    kiln_status st = begin_value(w, KILN_GGUF_ARRAY, 12);
    if (st != KILN_OK) return st;
    put_le(w, (uint64_t)type, 4);
    put_le(w, count, 8);
    w->stack[w->depth++] = (struct open_arr){type, count};
    return KILN_OK;
}

kiln_status kiln__gguf_writer_arr_end(struct kiln_gguf_writer *w) {
    if (!w || w->depth == 0) return misuse("no array is open", NULL);
    if (w->stack[w->depth - 1].left) return misuse("fewer array elements than declared", NULL);
    w->depth--;
    return KILN_OK;
}

/* key + one scalar value */
static kiln_status kv_scalar(struct kiln_gguf_writer *w, const char *key, enum kiln_gguf_type type,
                             const void *v) {
    kiln_status st = kiln__gguf_writer_key(w, key);
    return st == KILN_OK ? kiln__gguf_writer_value(w, type, v) : st;
}

kiln_status kiln__gguf_writer_kv_u32(struct kiln_gguf_writer *w, const char *key, uint32_t v) {
    return kv_scalar(w, key, KILN_GGUF_U32, &v);
}
kiln_status kiln__gguf_writer_kv_i32(struct kiln_gguf_writer *w, const char *key, int32_t v) {
    return kv_scalar(w, key, KILN_GGUF_I32, &v);
}
kiln_status kiln__gguf_writer_kv_u64(struct kiln_gguf_writer *w, const char *key, uint64_t v) {
    return kv_scalar(w, key, KILN_GGUF_U64, &v);
}
kiln_status kiln__gguf_writer_kv_f32(struct kiln_gguf_writer *w, const char *key, float v) {
    return kv_scalar(w, key, KILN_GGUF_F32, &v);
}
kiln_status kiln__gguf_writer_kv_bool(struct kiln_gguf_writer *w, const char *key, bool v) {
    return kv_scalar(w, key, KILN_GGUF_BOOL, &v);
}
kiln_status kiln__gguf_writer_kv_str(struct kiln_gguf_writer *w, const char *key, const char *s) {
    if (!s) return misuse("no string for key", key);
    struct kiln_gguf_str v = {s, strlen(s)};
    return kv_scalar(w, key, KILN_GGUF_STRING, &v);
}

kiln_status kiln__gguf_writer_kv_arr(struct kiln_gguf_writer *w, const char *key,
                                     enum kiln_gguf_type type, const void *values, uint64_t count) {
    /* Elements are C objects of the type: bool has its own size. */
    size_t stride = type == KILN_GGUF_BOOL ? sizeof(bool) : kiln__gguf_type_size(type);
    if ((unsigned)type >= KILN_GGUF_TYPE_COUNT || stride == 0)
        return misuse("kv_arr needs a fixed-size element type for key", key);
    if (count && !values) return misuse("no values for key", key);
    kiln_status st = kiln__gguf_writer_key(w, key);
    if (st == KILN_OK) st = kiln__gguf_writer_arr_begin(w, type, count);
    for (uint64_t i = 0; i < count && st == KILN_OK; i++)
        st = kiln__gguf_writer_value(w, type, (const uint8_t *)values + i * stride);
    return st == KILN_OK ? kiln__gguf_writer_arr_end(w) : st;
}

kiln_status kiln__gguf_writer_kv_str_arr(struct kiln_gguf_writer *w, const char *key,
                                         const char *const *strs, uint64_t count) {
    if (count && !strs) return misuse("no strings for key", key);
    for (uint64_t i = 0; i < count; i++)
        if (!strs[i]) return misuse("a NULL string in the array of key", key);
    kiln_status st = kiln__gguf_writer_key(w, key);
    if (st == KILN_OK) st = kiln__gguf_writer_arr_begin(w, KILN_GGUF_STRING, count);
    for (uint64_t i = 0; i < count && st == KILN_OK; i++) {
        struct kiln_gguf_str s = {strs[i], strlen(strs[i])};
        st = kiln__gguf_writer_value(w, KILN_GGUF_STRING, &s);
    }
    return st == KILN_OK ? kiln__gguf_writer_arr_end(w) : st;
}

/* Copy a parsed array element by element through the checked value path. */
static kiln_status copy_arr(struct kiln_gguf_writer *w, const struct kiln_gguf_arr *a) {
    kiln_status st = kiln__gguf_writer_arr_begin(w, a->type, a->count);
    for (uint64_t i = 0; i < a->count && st == KILN_OK; i++) {
        if (a->type == KILN_GGUF_ARRAY) {
            st = copy_arr(w, kiln__gguf_arr_sub(a, i));
        } else if (a->type == KILN_GGUF_STRING) {
            struct kiln_gguf_str s = {NULL, 0};
            size_t len = 0;
            kiln__gguf_arr_str(a, i, &s.ptr, &len);
            s.len = len;
            st = kiln__gguf_writer_value(w, a->type, &s);
        } else {
            /* Decode the element into a value of its type, then copy that. */
            size_t size = kiln__gguf_type_size(a->type);
            uint64_t bits = 0;
            for (size_t k = size; k-- > 0;) bits = bits << 8 | a->data[i * size + k];
            struct kiln_gguf_value v = {.type = a->type};
            switch (a->type) {
            case KILN_GGUF_U8: case KILN_GGUF_U16: case KILN_GGUF_U32: case KILN_GGUF_U64:
                v.v.u = bits;
                break;
            case KILN_GGUF_I8: v.v.i = (int8_t)bits; break;
            case KILN_GGUF_I16: v.v.i = (int16_t)bits; break;
            case KILN_GGUF_I32: v.v.i = (int32_t)bits; break;
            case KILN_GGUF_I64: v.v.i = (int64_t)bits; break;
            case KILN_GGUF_F32: {
                uint32_t b32 = (uint32_t)bits;
                memcpy(&v.v.f32, &b32, 4);
                break;
            }
            case KILN_GGUF_F64: memcpy(&v.v.f64, &bits, 8); break;
            case KILN_GGUF_BOOL: v.v.b = bits != 0; break;
            case KILN_GGUF_STRING: case KILN_GGUF_ARRAY: case KILN_GGUF_TYPE_COUNT:
                return misuse("unknown array element type", NULL);
            }
            st = kiln__gguf_writer_copy_value(w, &v);
        }
    }
    return st == KILN_OK ? kiln__gguf_writer_arr_end(w) : st;
}

kiln_status kiln__gguf_writer_copy_value(struct kiln_gguf_writer *w,
                                         const struct kiln_gguf_value *v) {
    if (!w || !v) return misuse("no writer or value", NULL);
    switch (v->type) {
    case KILN_GGUF_U8: { uint8_t x = (uint8_t)v->v.u; return kiln__gguf_writer_value(w, v->type, &x); }
    case KILN_GGUF_U16: { uint16_t x = (uint16_t)v->v.u; return kiln__gguf_writer_value(w, v->type, &x); }
    case KILN_GGUF_U32: { uint32_t x = (uint32_t)v->v.u; return kiln__gguf_writer_value(w, v->type, &x); }
    case KILN_GGUF_U64: return kiln__gguf_writer_value(w, v->type, &v->v.u);
    case KILN_GGUF_I8: { int8_t x = (int8_t)v->v.i; return kiln__gguf_writer_value(w, v->type, &x); }
    case KILN_GGUF_I16: { int16_t x = (int16_t)v->v.i; return kiln__gguf_writer_value(w, v->type, &x); }
    case KILN_GGUF_I32: { int32_t x = (int32_t)v->v.i; return kiln__gguf_writer_value(w, v->type, &x); }
    case KILN_GGUF_I64: return kiln__gguf_writer_value(w, v->type, &v->v.i);
    case KILN_GGUF_F32: return kiln__gguf_writer_value(w, v->type, &v->v.f32);
    case KILN_GGUF_F64: return kiln__gguf_writer_value(w, v->type, &v->v.f64);
    case KILN_GGUF_BOOL: return kiln__gguf_writer_value(w, v->type, &v->v.b);
    case KILN_GGUF_STRING: return kiln__gguf_writer_value(w, v->type, &v->v.str);
    case KILN_GGUF_ARRAY: return copy_arr(w, &v->v.arr);
    case KILN_GGUF_TYPE_COUNT: break;
    }
    return misuse("unknown value type", NULL);
}

kiln_status kiln__gguf_writer_set_alignment(struct kiln_gguf_writer *w, uint32_t alignment) {
    if (!w) return misuse("no writer", NULL);
    if (w->n_tensors) return misuse("set the alignment before adding tensors", NULL);
    if (alignment == 0 || (alignment & (alignment - 1)) || alignment > KILN_GGUF_MAX_ALIGNMENT)
        return misuse("the alignment must be a power of two up to 1 MiB", NULL);
    w->setting_alignment = true;
    kiln_status st = kiln__gguf_writer_kv_u32(w, "general.alignment", alignment);
    w->setting_alignment = false;
    if (st == KILN_OK) w->alignment = alignment;
    return st;
}

kiln_status kiln__gguf_writer_add_tensor(struct kiln_gguf_writer *w, const char *name,
                                         kiln_dtype dtype, uint32_t n_dims, const uint64_t *ne,
                                         const void *data, size_t nbytes) {
    if (!w || !ne || (!data && nbytes)) return misuse("missing writer, dims or data for tensor", name);
    kiln_status st = check_name(name, "tensor name");
    if (st != KILN_OK) return st;
    if (kiln_dtype_ggml_id(dtype) < 0) return misuse("no GGML type for the dtype of tensor", name);
    if (n_dims < 1 || n_dims > KILN_GGUF_MAX_DIMS) return misuse("1 to 4 dimensions for tensor", name);
    uint64_t n = 1;
    for (uint32_t d = 0; d < n_dims; d++)
        if (ne[d] == 0 || ne[d] > INT64_MAX || __builtin_mul_overflow(n, ne[d], &n) || n > INT64_MAX)
            return misuse("bad dimensions for tensor", name);
    uint64_t be = kiln_dtype_block_elems(dtype), want;
    if (ne[0] % be) return misuse("row length not a multiple of the block size for tensor", name);
    if (__builtin_mul_overflow(n / be, (uint64_t)kiln_dtype_block_bytes(dtype), &want) || want != nbytes)
        return misuse("data size does not match the dims and dtype of tensor", name);
    for (uint64_t i = 0; i < w->n_tensors; i++)
        if (strcmp(w->tensors[i].name, name) == 0) return misuse("duplicate tensor name", name);
    if (w->n_tensors == w->tensors_cap) {
        uint64_t cap = w->tensors_cap ? 2 * w->tensors_cap : 16;
        struct wtensor *t = realloc(w->tensors, (size_t)cap * sizeof *t);
        if (!t) return kiln__fail(KILN_ERR_OUT_OF_MEMORY, "gguf writer: out of memory");
        w->tensors = t;
        w->tensors_cap = cap;
    }
    char *copy = strdup(name);
    if (!copy) return kiln__fail(KILN_ERR_OUT_OF_MEMORY, "gguf writer: out of memory");
    uint64_t offset = (w->data_size + w->alignment - 1) / w->alignment * w->alignment;
    struct wtensor *t = &w->tensors[w->n_tensors++];
    *t = (struct wtensor){.name = copy, .dtype = dtype, .n_dims = n_dims, .data = data,
                          .nbytes = nbytes, .offset = offset};
    for (uint32_t d = 0; d < n_dims; d++) t->ne[d] = ne[d];
    w->data_size = offset + nbytes;
    return KILN_OK;
}

/* ---- output ---- */

/* A stream and the bytes written so far. */
struct out {
    FILE *f;      /* destination */
    uint64_t pos; /* bytes written */
    bool failed;  /* a write failed */
};

static void emit(struct out *o, const void *p, size_t n) {
    if (!o->failed && n && fwrite(p, 1, n, o->f) != n) o->failed = true;
    o->pos += n;
}

static void emit_le(struct out *o, uint64_t v, size_t n) {
    uint8_t b[8];
    for (size_t k = 0; k < n; k++) b[k] = (uint8_t)(v >> (8 * k));
    emit(o, b, n);
}

/* Zero bytes up to the next multiple of the alignment. */
static void emit_pad(struct out *o, uint32_t alignment) {
    static const uint8_t zeros[256];
    uint64_t pad = (alignment - o->pos % alignment) % alignment;
    while (pad) {
        size_t n = pad < sizeof zeros ? (size_t)pad : sizeof zeros;
        emit(o, zeros, n);
        pad -= n;
    }
}

kiln_status kiln__gguf_writer_write_file(struct kiln_gguf_writer *w, FILE *f) {
    if (!w || !f) return misuse("no writer or stream", NULL);
    if (w->key_pending || w->depth) return misuse("a metadata pair is not finished", NULL);
    struct out o = {.f = f};
    emit(&o, "GGUF", 4);
    emit_le(&o, 3, 4);
    emit_le(&o, w->n_tensors, 8);
    emit_le(&o, w->n_kv, 8);
    emit(&o, w->kv, w->kv_len);
    for (uint64_t i = 0; i < w->n_tensors; i++) {
        const struct wtensor *t = &w->tensors[i];
        size_t len = strlen(t->name);
        emit_le(&o, len, 8);
        emit(&o, t->name, len);
        emit_le(&o, t->n_dims, 4);
        for (uint32_t d = 0; d < t->n_dims; d++) emit_le(&o, t->ne[d], 8);
        emit_le(&o, (uint64_t)kiln_dtype_ggml_id(t->dtype), 4);
        emit_le(&o, t->offset, 8);
    }
    /* The data section starts aligned, so padding the absolute position to
     * the alignment before each tensor lands exactly on its offset. Like the
     * reference writers (ggml, gguf-py), every tensor's data, the last one
     * included, is padded to the alignment. */
    if (w->n_tensors) emit_pad(&o, w->alignment);
    for (uint64_t i = 0; i < w->n_tensors; i++) {
        emit(&o, w->tensors[i].data, w->tensors[i].nbytes);
        emit_pad(&o, w->alignment);
    }
    if (fflush(f) != 0) o.failed = true;
    if (o.failed) return kiln__fail(KILN_ERR_IO, "gguf writer: write failed");
    return KILN_OK;
}

kiln_status kiln__gguf_writer_write(struct kiln_gguf_writer *w, const char *path) {
    if (!path) return misuse("no path", NULL);
    FILE *f = fopen(path, "wb");
    if (!f) return kiln__fail(KILN_ERR_IO, "gguf writer: cannot create '%s'", path);
    kiln_status st = kiln__gguf_writer_write_file(w, f);
    if (fclose(f) != 0 && st == KILN_OK)
        st = kiln__fail(KILN_ERR_IO, "gguf writer: cannot finish writing '%s'", path);
    return st;
}
