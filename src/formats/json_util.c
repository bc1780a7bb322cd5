/* src/formats/json_util.c - JSON files and typed getters (see json_util.h). */
#include "formats/json_util.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/error.h"
#include "formats/file_map.h"

const char *kiln__json_kind(const json_t *v) {
    if (!v) return "nothing";
    switch (json_typeof(v)) {
    case JSON_OBJECT: return "object";
    case JSON_ARRAY: return "array";
    case JSON_STRING: return "string";
    case JSON_INTEGER:
    case JSON_REAL: return "number";
    case JSON_TRUE:
    case JSON_FALSE: return "boolean";
    case JSON_NULL: return "null";
    }
    return "value";
}

kiln_status kiln__json_load_file(const char *path, size_t max_bytes, json_t **out) {
    if (!out) return kiln__fail(KILN_ERR_INVALID_ARG, "json: no output given");
    *out = NULL;
    if (max_bytes == 0) max_bytes = KILN_JSON_MAX_FILE;
    struct kiln_file_map map;
    kiln_status s = kiln__file_map_open(path, &map);
    if (s != KILN_OK) return s;
    if (map.size > max_bytes) {
        size_t n = map.size;
        kiln__file_map_close(&map);
        return kiln__fail(KILN_ERR_TOO_LARGE, "%s: %zu bytes, more than the %zu a JSON file may have", path, n,
                          max_bytes);
    }
    json_error_t err;
    /* An empty file maps to NULL: hand jansson an empty string instead. */
    json_t *root = json_loadb(map.data ? (const char *)map.data : "", map.size, JSON_REJECT_DUPLICATES, &err);
    kiln__file_map_close(&map);
    if (!root)
        return kiln__fail(KILN_ERR_FORMAT, "%s: not valid JSON: %s (line %d, column %d)", path, err.text,
                          err.line, err.column);
    *out = root;
    return KILN_OK;
}

/* obj[key], or NULL when obj is not an object, the key is absent or null. */
static const json_t *get(const json_t *obj, const char *key) {
    const json_t *v = json_is_object(obj) ? json_object_get(obj, key) : NULL;
    return json_is_null(v) ? NULL : v;
}

kiln_status kiln__json_get_int(const json_t *obj, const char *key, int64_t def, int64_t *out) {
    const json_t *v = get(obj, key);
    *out = def;
    if (!v) return KILN_OK;
    if (json_is_integer(v)) {
        *out = (int64_t)json_integer_value(v);
        return KILN_OK;
    }
    if (json_is_real(v)) {
        double d = json_real_value(v);
        /* Integral and inside int64's range (2^63 is exactly representable). */
        if (d == floor(d) && d >= -9223372036854775808.0 && d < 9223372036854775808.0) {
            *out = (int64_t)d;
            return KILN_OK;
        }
        return kiln__fail(KILN_ERR_FORMAT, "json: '%s' is %g, not an integer", key, d);
    }
    return kiln__fail(KILN_ERR_FORMAT, "json: '%s' is a %s, expected an integer", key, kiln__json_kind(v));
}

kiln_status kiln__json_get_real(const json_t *obj, const char *key, double def, double *out) {
    const json_t *v = get(obj, key);
    *out = def;
    if (!v) return KILN_OK;
    if (!json_is_number(v))
        return kiln__fail(KILN_ERR_FORMAT, "json: '%s' is a %s, expected a number", key, kiln__json_kind(v));
    *out = json_number_value(v);
    return KILN_OK;
}

kiln_status kiln__json_get_bool(const json_t *obj, const char *key, bool def, bool *out) {
    const json_t *v = get(obj, key);
    *out = def;
    if (!v) return KILN_OK;
    if (!json_is_boolean(v))
        return kiln__fail(KILN_ERR_FORMAT, "json: '%s' is a %s, expected a boolean", key, kiln__json_kind(v));
    *out = json_is_true(v);
    return KILN_OK;
}

kiln_status kiln__json_get_string(const json_t *obj, const char *key, const char *def, const char **out) {
    const json_t *v = get(obj, key);
    *out = def;
    if (!v) return KILN_OK;
    if (!json_is_string(v))
        return kiln__fail(KILN_ERR_FORMAT, "json: '%s' is a %s, expected a string", key, kiln__json_kind(v));
    *out = json_string_value(v);
    return KILN_OK;
}
