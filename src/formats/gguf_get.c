/* src/formats/gguf_get.c - typed access to parsed GGUF metadata: getters by
 * key, O(1) array element access, and the small type tables shared with the
 * reader and the writer (see gguf.h). */
#include <string.h>

#include "core/error.h"
#include "formats/gguf.h"

const char *kiln__gguf_type_name(enum kiln_gguf_type type) {
    switch (type) {
    case KILN_GGUF_U8: return "u8";
    case KILN_GGUF_I8: return "i8";
    case KILN_GGUF_U16: return "u16";
    case KILN_GGUF_I16: return "i16";
    case KILN_GGUF_U32: return "u32";
    case KILN_GGUF_I32: return "i32";
    case KILN_GGUF_F32: return "f32";
    case KILN_GGUF_BOOL: return "bool";
    case KILN_GGUF_STRING: return "string";
    case KILN_GGUF_ARRAY: return "array";
    case KILN_GGUF_U64: return "u64";
    case KILN_GGUF_I64: return "i64";
    case KILN_GGUF_F64: return "f64";
    case KILN_GGUF_TYPE_COUNT: break;
    }
    return "unknown";
}

size_t kiln__gguf_type_size(enum kiln_gguf_type type) {
    switch (type) {
    case KILN_GGUF_U8: case KILN_GGUF_I8: case KILN_GGUF_BOOL: return 1;
    case KILN_GGUF_U16: case KILN_GGUF_I16: return 2;
    case KILN_GGUF_U32: case KILN_GGUF_I32: case KILN_GGUF_F32: return 4;
    case KILN_GGUF_U64: case KILN_GGUF_I64: case KILN_GGUF_F64: return 8;
    case KILN_GGUF_STRING: case KILN_GGUF_ARRAY: case KILN_GGUF_TYPE_COUNT: break;
    }
    return 0;
}

bool kiln__gguf_name_valid(const char *s, size_t len) {
    const uint8_t *p = (const uint8_t *)s;
    size_t i = 0;
    while (i < len) {
        uint8_t c = p[i];
        if (c == 0) return false;
        if (c < 0x80) {
            i++;
            continue;
        }
        /* Lead byte: sequence length and the smallest code point it may encode. */
        size_t n;
        uint32_t cp, min;
        if (c >= 0xC2 && c <= 0xDF) n = 2, cp = c & 0x1F, min = 0x80;
        else if (c >= 0xE0 && c <= 0xEF) n = 3, cp = c & 0x0F, min = 0x800;
        else if (c >= 0xF0 && c <= 0xF4) n = 4, cp = c & 0x07, min = 0x10000;
        else return false; /* continuation byte, overlong 0xC0/0xC1, or past U+10FFFF */
        if (len - i < n) return false;
        for (size_t k = 1; k < n; k++) {
            if ((p[i + k] & 0xC0) != 0x80) return false;
            cp = cp << 6 | (p[i + k] & 0x3F);
        }
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
        i += n;
    }
    return true;
}

/* ---- decoding one encoded element ---- */

static uint64_t le(const uint8_t *p, size_t n) {
    uint64_t v = 0;
    for (size_t k = n; k-- > 0;) v = v << 8 | p[k];
    return v;
}

/* Integer value of an encoded element of an integer type: signed in *i or
 * unsigned in *u (is_signed tells which); false for other types. */
static bool decode_int(enum kiln_gguf_type t, const uint8_t *p, bool *is_signed, int64_t *i,
                       uint64_t *u) {
    switch (t) {
    case KILN_GGUF_U8: case KILN_GGUF_U16: case KILN_GGUF_U32: case KILN_GGUF_U64:
        *is_signed = false;
        *u = le(p, kiln__gguf_type_size(t));
        return true;
    case KILN_GGUF_I8: *is_signed = true, *i = (int8_t)p[0]; return true;
    case KILN_GGUF_I16: *is_signed = true, *i = (int16_t)le(p, 2); return true;
    case KILN_GGUF_I32: *is_signed = true, *i = (int32_t)le(p, 4); return true;
    case KILN_GGUF_I64: *is_signed = true, *i = (int64_t)le(p, 8); return true;
    case KILN_GGUF_F32: case KILN_GGUF_F64: case KILN_GGUF_BOOL: case KILN_GGUF_STRING:
    case KILN_GGUF_ARRAY: case KILN_GGUF_TYPE_COUNT: break;
    }
    return false;
}

/* Float value of an F32 or F64 element. */
static bool decode_float(enum kiln_gguf_type t, const uint8_t *p, double *out) {
    if (t == KILN_GGUF_F32) {
        uint32_t bits = (uint32_t)le(p, 4);
        float f;
        memcpy(&f, &bits, 4);
        *out = f;
        return true;
    }
    if (t == KILN_GGUF_F64) {
        uint64_t bits = le(p, 8);
        memcpy(out, &bits, 8);
        return true;
    }
    return false;
}

/* ---- getters by key ---- */

/* The value of `key`, or NULL with the message set. */
static const struct kiln_gguf_value *find(const struct kiln_gguf *g, const char *key) {
    const struct kiln_gguf_kv *kv = kiln__gguf_find_kv(g, key);
    if (!kv) {
        kiln__fail(KILN_ERR_NOT_FOUND, "gguf: key '%s' not found", key ? key : "(null)");
        return NULL;
    }
    return &kv->value;
}

static bool wrong_type(const char *key, const struct kiln_gguf_value *v, const char *want) {
    kiln__fail(KILN_ERR_FORMAT, "gguf: key '%s' has type %s, expected %s", key,
               kiln__gguf_type_name(v->type), want);
    return false;
}

/* An integer value as a signed or unsigned 64-bit number. */
static bool get_int(const struct kiln_gguf *g, const char *key, bool *is_signed, int64_t *i,
                    uint64_t *u) {
    const struct kiln_gguf_value *v = find(g, key);
    if (!v) return false;
    switch (v->type) {
    case KILN_GGUF_U8: case KILN_GGUF_U16: case KILN_GGUF_U32: case KILN_GGUF_U64:
        *is_signed = false;
        *u = v->v.u;
        return true;
    case KILN_GGUF_I8: case KILN_GGUF_I16: case KILN_GGUF_I32: case KILN_GGUF_I64:
        *is_signed = true;
        *i = v->v.i;
        return true;
    case KILN_GGUF_F32: case KILN_GGUF_F64: case KILN_GGUF_BOOL: case KILN_GGUF_STRING:
    case KILN_GGUF_ARRAY: case KILN_GGUF_TYPE_COUNT: break;
    }
    return wrong_type(key, v, "an integer");
}

/* Range check of an integer against [lo, hi] (hi as unsigned). */
static bool int_fits(const char *key, bool is_signed, int64_t i, uint64_t u, int64_t lo,
                     uint64_t hi) {
    bool ok = is_signed ? (i >= lo && (i < 0 || (uint64_t)i <= hi)) : u <= hi;
    if (!ok) {
        if (is_signed)
            kiln__fail(KILN_ERR_FORMAT, "gguf: key '%s' value %lld is out of range", key, (long long)i);
        else
            kiln__fail(KILN_ERR_FORMAT, "gguf: key '%s' value %llu is out of range", key,
                       (unsigned long long)u);
    }
    return ok;
}

bool kiln__gguf_get_u32(const struct kiln_gguf *g, const char *key, uint32_t *out) {
    bool s;
    int64_t i = 0;
    uint64_t u = 0;
    if (!get_int(g, key, &s, &i, &u) || !int_fits(key, s, i, u, 0, UINT32_MAX)) return false;
    *out = s ? (uint32_t)i : (uint32_t)u;
    return true;
}

bool kiln__gguf_get_i32(const struct kiln_gguf *g, const char *key, int32_t *out) {
    bool s;
    int64_t i = 0;
    uint64_t u = 0;
    if (!get_int(g, key, &s, &i, &u) || !int_fits(key, s, i, u, INT32_MIN, INT32_MAX)) return false;
    *out = s ? (int32_t)i : (int32_t)u;
    return true;
}

bool kiln__gguf_get_u64(const struct kiln_gguf *g, const char *key, uint64_t *out) {
    bool s;
    int64_t i = 0;
    uint64_t u = 0;
    if (!get_int(g, key, &s, &i, &u) || !int_fits(key, s, i, u, 0, UINT64_MAX)) return false;
    *out = s ? (uint64_t)i : u;
    return true;
}

bool kiln__gguf_get_i64(const struct kiln_gguf *g, const char *key, int64_t *out) {
    bool s;
    int64_t i = 0;
    uint64_t u = 0;
    if (!get_int(g, key, &s, &i, &u) || !int_fits(key, s, i, u, INT64_MIN, INT64_MAX)) return false;
    *out = s ? i : (int64_t)u;
    return true;
}

bool kiln__gguf_get_f64(const struct kiln_gguf *g, const char *key, double *out) {
    const struct kiln_gguf_value *v = find(g, key);
    if (!v) return false;
    if (v->type == KILN_GGUF_F32) *out = v->v.f32;
    else if (v->type == KILN_GGUF_F64) *out = v->v.f64;
    else return wrong_type(key, v, "a float");
    return true;
}

bool kiln__gguf_get_f32(const struct kiln_gguf *g, const char *key, float *out) {
    double d;
    if (!kiln__gguf_get_f64(g, key, &d)) return false;
    *out = (float)d;
    return true;
}

bool kiln__gguf_get_bool(const struct kiln_gguf *g, const char *key, bool *out) {
    const struct kiln_gguf_value *v = find(g, key);
    if (!v) return false;
    if (v->type != KILN_GGUF_BOOL) return wrong_type(key, v, "bool");
    *out = v->v.b;
    return true;
}

bool kiln__gguf_get_str(const struct kiln_gguf *g, const char *key, const char **s, size_t *len) {
    const struct kiln_gguf_value *v = find(g, key);
    if (!v) return false;
    if (v->type != KILN_GGUF_STRING) return wrong_type(key, v, "string");
    *s = v->v.str.ptr;
    *len = (size_t)v->v.str.len;
    return true;
}

const struct kiln_gguf_arr *kiln__gguf_get_arr(const struct kiln_gguf *g, const char *key) {
    const struct kiln_gguf_value *v = find(g, key);
    if (!v) return NULL;
    if (v->type != KILN_GGUF_ARRAY) {
        wrong_type(key, v, "array");
        return NULL;
    }
    return &v->v.arr;
}

/* ---- array elements ---- */

/* Encoded element i of a fixed-size array, or NULL when out of range. */
static const uint8_t *elem(const struct kiln_gguf_arr *a, uint64_t i) {
    if (!a) return NULL;
    size_t size = kiln__gguf_type_size(a->type);
    if (size == 0 || i >= a->count) return NULL;
    return a->data + (size_t)i * size;
}

bool kiln__gguf_arr_i64(const struct kiln_gguf_arr *a, uint64_t i, int64_t *out) {
    const uint8_t *p = elem(a, i);
    bool s;
    int64_t v = 0;
    uint64_t u = 0;
    if (!p || !decode_int(a->type, p, &s, &v, &u) || (!s && u > INT64_MAX)) return false;
    *out = s ? v : (int64_t)u;
    return true;
}

bool kiln__gguf_arr_u64(const struct kiln_gguf_arr *a, uint64_t i, uint64_t *out) {
    const uint8_t *p = elem(a, i);
    bool s;
    int64_t v = 0;
    uint64_t u = 0;
    if (!p || !decode_int(a->type, p, &s, &v, &u) || (s && v < 0)) return false;
    *out = s ? (uint64_t)v : u;
    return true;
}

bool kiln__gguf_arr_f64(const struct kiln_gguf_arr *a, uint64_t i, double *out) {
    const uint8_t *p = elem(a, i);
    return p && decode_float(a->type, p, out);
}

bool kiln__gguf_arr_f32(const struct kiln_gguf_arr *a, uint64_t i, float *out) {
    double d;
    if (!kiln__gguf_arr_f64(a, i, &d)) return false;
    *out = (float)d;
    return true;
}

bool kiln__gguf_arr_bool(const struct kiln_gguf_arr *a, uint64_t i, bool *out) {
    const uint8_t *p = a && a->type == KILN_GGUF_BOOL ? elem(a, i) : NULL;
    if (!p) return false;
    *out = p[0] == 1;
    return true;
}

bool kiln__gguf_arr_str(const struct kiln_gguf_arr *a, uint64_t i, const char **s, size_t *len) {
    if (!a || a->type != KILN_GGUF_STRING || i >= a->count) return false;
    const uint8_t *p = a->data + a->str_off[i]; /* the parser checked every length */
    *len = (size_t)le(p, 8);
    *s = (const char *)p + 8;
    return true;
}

const struct kiln_gguf_arr *kiln__gguf_arr_sub(const struct kiln_gguf_arr *a, uint64_t i) {
    if (!a || a->type != KILN_GGUF_ARRAY || i >= a->count) return NULL;
    return &a->items[i];
}
