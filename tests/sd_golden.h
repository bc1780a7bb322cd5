/* tests/sd_golden.h - reading the goldens of tests/data/sd (made by
 * tools/sd_goldens/make.sh): raw float32 files whose shapes are listed in
 * golden/index.json, and the relative error the SD tests compare with. */
#ifndef KILN_TESTS_SD_GOLDEN_H
#define KILN_TESTS_SD_GOLDEN_H

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "test_files.h"

#define SD_DATA KILN_SOURCE_DIR "/tests/data/sd"

/* The golden `name` of model folder `model` ("tiny-sd15"), with its value
 * count in *n; NULL (after a message) when missing or of the wrong size. */
static inline float *sd_golden(const char *model, const char *name, size_t *n) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s/golden/index.json", SD_DATA, model);
    json_t *idx = json_load_file(path, 0, NULL);
    const json_t *shape = idx ? json_object_get(idx, name) : NULL;
    size_t count = 1, i;
    const json_t *v;
    json_array_foreach(shape, i, v) count *= (size_t)json_integer_value(v);
    json_decref(idx);
    snprintf(path, sizeof path, "%s/%s/golden/%s.f32", SD_DATA, model, name);
    size_t size = 0;
    float *data = (float *)test_read_file(path, &size);
    if (!shape || !data || size != count * sizeof(float)) {
        fprintf(stderr, "  golden %s/%s missing or of the wrong size\n", model, name);
        free(data);
        return NULL;
    }
    *n = count;
    return data;
}

/* DIR/rel read as n floats (a malloc'd buffer), or NULL when missing or of
 * another size. */
static inline float *sd_read_f32(const char *dir, const char *rel, size_t n) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, rel);
    size_t size = 0;
    float *p = (float *)test_read_file(path, &size);
    if (p && size != n * sizeof(float)) {
        free(p);
        p = NULL;
    }
    return p;
}

/* Integer list `name` of the index (at most cap); returns the count, -1 if absent. */
static inline int sd_golden_ints(const char *model, const char *name, int32_t *out, int cap) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s/golden/index.json", SD_DATA, model);
    json_t *idx = json_load_file(path, 0, NULL);
    const json_t *arr = idx ? json_object_get(idx, name) : NULL;
    int n = arr ? 0 : -1;
    size_t i;
    const json_t *v;
    json_array_foreach(arr, i, v) if (n < cap) out[n++] = (int32_t)json_integer_value(v);
    json_decref(idx);
    return n;
}

/* max |a - ref| / max |ref| (NaN counts as a huge error). */
static inline double sd_rel_err(const float *a, const float *ref, size_t n) {
    double num = 0.0, den = 0.0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)ref[i]);
        if (d > num || d != d) num = d != d ? INFINITY : d;
        if (fabs((double)ref[i]) > den) den = fabs((double)ref[i]);
    }
    return den > 0.0 ? num / den : num;
}

/* Relative error the F32 engine must stay under (issue 7). */
#define SD_REL_ERR 1e-4

#endif /* KILN_TESTS_SD_GOLDEN_H */
