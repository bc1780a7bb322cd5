/* src/formats/json_util.h - reading JSON files (config.json, model_index.json,
 * *.index.json) with jansson, and typed getters with defaults (internal).
 *
 * The getters treat a missing key and a JSON null alike (the default is
 * used: Hugging Face configs write null for "not set"); a value of the wrong
 * type is an error naming the key, never silently replaced by the default.
 */
#ifndef KILN_FORMATS_JSON_UTIL_H
#define KILN_FORMATS_JSON_UTIL_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kiln/status.h"

/* Largest JSON file kiln__json_load_file reads by default (bytes). */
#define KILN_JSON_MAX_FILE (64u << 20)

/* Read and decode the JSON file at `path` (duplicate keys rejected). The file
 * may be at most max_bytes long (0 = KILN_JSON_MAX_FILE). On success *out is
 * a new reference (json_decref it). Errors: KILN_ERR_IO (cannot read),
 * KILN_ERR_TOO_LARGE, KILN_ERR_FORMAT (not JSON; line and column given). */
kiln_status kiln__json_load_file(const char *path, size_t max_bytes, json_t **out);

/* obj[key] as an integer, or def when absent or null. A real with an integral
 * value (e.g. 4096.0) is accepted. KILN_ERR_FORMAT for any other type. */
kiln_status kiln__json_get_int(const json_t *obj, const char *key, int64_t def, int64_t *out);
/* obj[key] as a number (integer or real), or def. */
kiln_status kiln__json_get_real(const json_t *obj, const char *key, double def, double *out);
/* obj[key] as a boolean, or def. */
kiln_status kiln__json_get_bool(const json_t *obj, const char *key, bool def, bool *out);
/* obj[key] as a string borrowed from obj, or def. */
kiln_status kiln__json_get_string(const json_t *obj, const char *key, const char *def, const char **out);

/* Short name of a JSON value's type ("object", "string", "number", ...). */
const char *kiln__json_kind(const json_t *v);

#endif /* KILN_FORMATS_JSON_UTIL_H */
