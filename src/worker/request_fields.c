/* src/worker/request_fields.c - reading one field of a JSON request body
 * with its rule, shared by the text (request.c) and image (request_image.c)
 * request parsers: every failure is a 400 naming the field. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>

#include "worker/request.h"

int kiln__req_bad(struct kiln__api_error *err, const char *field, const char *fmt, ...) {
    char why[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    kiln__api_error_set(err, 400, "invalid_request_error", "invalid_value", field, "%s: %s", field, why);
    return -1;
}

int kiln__req_oom(struct kiln__api_error *err) {
    kiln__api_error_set(err, 500, "server_error", "out_of_memory", NULL, "out of memory");
    return -1;
}

json_t *kiln__req_field(json_t *obj, const char *name) {
    json_t *v = json_object_get(obj, name);
    return json_is_null(v) ? NULL : v;
}

int kiln__req_number(json_t *obj, const char *name, double lo, double hi, double *out, int *given,
                     struct kiln__api_error *err) {
    json_t *v = kiln__req_field(obj, name);
    if (given) *given = v != NULL;
    if (!v) return 0;
    if (!json_is_number(v)) return kiln__req_bad(err, name, "must be a number");
    double d = json_number_value(v);
    if (!isfinite(d) || d < lo || d > hi)
        return kiln__req_bad(err, name, "must be between %g and %g, got %g", lo, hi, d);
    *out = d;
    return 0;
}

int kiln__req_int(json_t *obj, const char *name, long long lo, long long hi, long long *out, int *given,
                  struct kiln__api_error *err) {
    json_t *v = kiln__req_field(obj, name);
    if (given) *given = v != NULL;
    if (!v) return 0;
    if (!json_is_integer(v)) return kiln__req_bad(err, name, "must be an integer");
    long long i = json_integer_value(v);
    if (i < lo || i > hi) return kiln__req_bad(err, name, "must be between %lld and %lld, got %lld", lo, hi, i);
    *out = i;
    return 0;
}

int kiln__req_string(json_t *obj, const char *name, const char **out, struct kiln__api_error *err) {
    json_t *v = kiln__req_field(obj, name);
    if (!v) return 0;
    if (!json_is_string(v)) return kiln__req_bad(err, name, "must be a string");
    *out = json_string_value(v);
    return 0;
}

int kiln__req_bool(json_t *obj, const char *name, bool *out, struct kiln__api_error *err) {
    json_t *v = kiln__req_field(obj, name);
    if (!v) return 0;
    if (!json_is_boolean(v)) return kiln__req_bad(err, name, "must be true or false");
    *out = json_is_true(v);
    return 0;
}
