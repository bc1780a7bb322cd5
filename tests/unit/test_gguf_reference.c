/* tests/unit/test_gguf_reference.c - kiln's GGUF reader and writer against
 * the reference writer: tests/data/gguf/reference.gguf was written by the
 * `gguf` Python package (tools/make_gguf_fixtures.py) and reference.json lists
 * what it holds. Every metadata value and every tensor's bytes are checked;
 * the same file read as version 2; and kiln's writer, fed what was parsed,
 * must reproduce the reference file byte for byte. */
#include <jansson.h>
#include <stdlib.h>

#include "formats/gguf.h"
#include "kiln/kiln.h"
#include "test.h"
#include "test_files.h"

#define REF_GGUF KILN_SOURCE_DIR "/tests/data/gguf/reference.gguf"
#define REF_JSON KILN_SOURCE_DIR "/tests/data/gguf/reference.json"

static bool is_int_type(const char *t) {
    return t[0] == 'u' || t[0] == 'i';
}

/* Element i of array `a` against its JSON form {"type", "value"} or a nested array. */
static void check_arr(const struct kiln_gguf_arr *a, json_t *want, const char *key);

static void check_elem(const struct kiln_gguf_arr *a, uint64_t i, json_t *e, const char *key) {
    const char *type = json_string_value(json_object_get(e, "type"));
    json_t *v = json_object_get(e, "value");
    if (strcmp(type, "array") == 0) {
        const struct kiln_gguf_arr *sub = kiln__gguf_arr_sub(a, i);
        CHECK(sub != NULL);
        if (sub) check_arr(sub, e, key);
    } else if (is_int_type(type)) {
        char got[32] = "";
        uint64_t u;
        int64_t s;
        if (type[0] == 'u' && kiln__gguf_arr_u64(a, i, &u)) snprintf(got, sizeof got, "%llu", (unsigned long long)u);
        if (type[0] == 'i' && kiln__gguf_arr_i64(a, i, &s)) snprintf(got, sizeof got, "%lld", (long long)s);
        CHECK_EQ_STR(got, json_string_value(v));
    } else if (strcmp(type, "f32") == 0) {
        float f = 0;
        CHECK(kiln__gguf_arr_f32(a, i, &f));
        CHECK((double)f == json_real_value(v));
    } else if (strcmp(type, "f64") == 0) {
        double d = 0;
        CHECK(kiln__gguf_arr_f64(a, i, &d));
        CHECK(d == json_number_value(v));
    } else if (strcmp(type, "bool") == 0) {
        bool b = false;
        CHECK(kiln__gguf_arr_bool(a, i, &b));
        CHECK(b == json_is_true(v));
    } else {
        const char *s = NULL;
        size_t len = 0;
        CHECK(kiln__gguf_arr_str(a, i, &s, &len));
        CHECK_EQ_INT(len, json_string_length(v));
        CHECK(s && memcmp(s, json_string_value(v), len) == 0);
    }
}

static void check_arr(const struct kiln_gguf_arr *a, json_t *want, const char *key) {
    json_t *values = json_object_get(want, "values");
    CHECK_EQ_STR(kiln__gguf_type_name(a->type), json_string_value(json_object_get(want, "elem")));
    CHECK_EQ_INT(a->count, json_array_size(values));
    if (a->count != json_array_size(values)) return;
    for (size_t i = 0; i < json_array_size(values); i++) check_elem(a, i, json_array_get(values, i), key);
    /* Past the end is refused. */
    const char *s;
    size_t len;
    int64_t x;
    CHECK(!kiln__gguf_arr_str(a, a->count, &s, &len) && !kiln__gguf_arr_i64(a, a->count, &x));
    CHECK(kiln__gguf_arr_sub(a, a->count) == NULL);
}

/* A top-level pair, read through the getters by key. */
static void check_kv(const struct kiln_gguf *g, json_t *want) {
    const char *key = json_string_value(json_object_get(want, "key"));
    const char *type = json_string_value(json_object_get(want, "type"));
    json_t *v = json_object_get(want, "value");
    const struct kiln_gguf_kv *kv = kiln__gguf_find_kv(g, key);
    CHECK(kv != NULL);
    if (!kv) return;
    CHECK_EQ_STR(kiln__gguf_type_name(kv->value.type), type);
    if (strcmp(type, "array") == 0) {
        const struct kiln_gguf_arr *a = kiln__gguf_get_arr(g, key);
        CHECK(a == &kv->value.v.arr);
        if (a) check_arr(a, want, key);
    } else if (is_int_type(type)) {
        char got[32] = "";
        uint64_t u;
        int64_t s;
        if (type[0] == 'u' && kiln__gguf_get_u64(g, key, &u)) snprintf(got, sizeof got, "%llu", (unsigned long long)u);
        if (type[0] == 'i' && kiln__gguf_get_i64(g, key, &s)) snprintf(got, sizeof got, "%lld", (long long)s);
        CHECK_EQ_STR(got, json_string_value(v));
    } else if (strcmp(type, "f32") == 0) {
        float f = 0;
        CHECK(kiln__gguf_get_f32(g, key, &f));
        CHECK((double)f == json_real_value(v));
    } else if (strcmp(type, "f64") == 0) {
        double d = 0;
        CHECK(kiln__gguf_get_f64(g, key, &d));
        CHECK(d == json_real_value(v));
    } else if (strcmp(type, "bool") == 0) {
        bool b = !json_is_true(v);
        CHECK(kiln__gguf_get_bool(g, key, &b));
        CHECK(b == json_is_true(v));
    } else {
        const char *s = NULL;
        size_t len = 99;
        CHECK(kiln__gguf_get_str(g, key, &s, &len));
        CHECK_EQ_INT(len, json_string_length(v));
        CHECK(s && memcmp(s, json_string_value(v), len) == 0);
    }
}

static int hexval(char c) { return c <= '9' ? c - '0' : c - 'a' + 10; }

static void check_tensor(const struct kiln_gguf *g, uint64_t index, json_t *want) {
    const char *name = json_string_value(json_object_get(want, "name"));
    const struct kiln_gguf_tensor *t = kiln__gguf_find_tensor(g, name);
    REQUIRE(t != NULL);
    CHECK(t == &g->tensors[index]); /* file order kept */
    CHECK_EQ_STR(kiln_dtype_name(t->dtype), json_string_value(json_object_get(want, "dtype")));
    json_t *ne = json_object_get(want, "ne");
    CHECK_EQ_INT(t->n_dims, json_array_size(ne));
    uint64_t n = 1;
    for (uint32_t d = 0; d < KILN_GGUF_MAX_DIMS; d++) {
        uint64_t e = d < json_array_size(ne) ? (uint64_t)json_integer_value(json_array_get(ne, d)) : 1;
        CHECK_EQ_INT(t->ne[d], e);
        n *= e;
    }
    CHECK_EQ_INT(t->n_elems, n);
    const char *hex = json_string_value(json_object_get(want, "hex"));
    size_t nbytes = strlen(hex) / 2;
    CHECK_EQ_INT(t->nbytes, nbytes);
    if (t->nbytes != nbytes) return;
    const uint8_t *data = t->data;
    size_t bad = 0;
    for (size_t i = 0; i < nbytes; i++)
        bad += data[i] != (uint8_t)(hexval(hex[2 * i]) << 4 | hexval(hex[2 * i + 1]));
    CHECK_EQ_INT(bad, 0);
    CHECK(t->offset % g->alignment == 0);
    CHECK(data == g->base + g->data_offset + t->offset);
}

/* The whole parsed file against the JSON. */
static void check_file(const struct kiln_gguf *g, json_t *ref) {
    json_t *kvs = json_object_get(ref, "kv"), *tensors = json_object_get(ref, "tensors");
    CHECK_EQ_INT(g->alignment, json_integer_value(json_object_get(ref, "alignment")));
    CHECK_EQ_INT(g->data_offset % g->alignment, 0);
    CHECK_EQ_INT(g->n_kv, json_array_size(kvs));
    for (size_t i = 0; i < json_array_size(kvs) && i < g->n_kv; i++) {
        json_t *kv = json_array_get(kvs, i);
        CHECK_EQ_STR(g->kv[i].key, json_string_value(json_object_get(kv, "key")));
        check_kv(g, kv);
    }
    CHECK_EQ_INT(g->n_tensors, json_array_size(tensors));
    for (size_t i = 0; i < json_array_size(tensors) && i < g->n_tensors; i++)
        check_tensor(g, i, json_array_get(tensors, i));
    CHECK(kiln__gguf_find_kv(g, "test.missing") == NULL);
    CHECK(kiln__gguf_find_tensor(g, "missing.weight") == NULL);
}

static json_t *load_ref(void) {
    json_error_t err;
    json_t *ref = json_load_file(REF_JSON, 0, &err);
    if (!ref) fprintf(stderr, "  %s: %s\n", REF_JSON, err.text);
    return ref;
}

static void test_reference_file_v3(void) {
    json_t *ref = load_ref();
    REQUIRE(ref != NULL);
    struct kiln_gguf *g = NULL;
    kiln_status st = kiln__gguf_open(REF_GGUF, &g);
    if (st != KILN_OK) fprintf(stderr, "  %s\n", kiln_last_error());
    CHECK_EQ_INT(st, KILN_OK);
    if (g) {
        CHECK_EQ_INT(g->version, 3);
        check_file(g, ref);
    }
    kiln__gguf_free(g);
    json_decref(ref);
}

/* v2 has the same little-endian layout: the reference with its version set to 2. */
static void test_reference_file_as_v2(void) {
    json_t *ref = load_ref();
    size_t size;
    uint8_t *buf = test_read_file(REF_GGUF, &size);
    REQUIRE(ref != NULL && buf != NULL);
    buf[4] = 2;
    struct kiln_gguf *g = NULL;
    CHECK_EQ_INT(kiln__gguf_parse(buf, size, &g), KILN_OK);
    if (g) {
        CHECK_EQ_INT(g->version, 2);
        check_file(g, ref);
    }
    kiln__gguf_free(g);
    free(buf);
    json_decref(ref);
}

/* Typed getters: conversions between integer widths, and precise refusals. */
static void test_getters_convert_and_refuse(void) {
    struct kiln_gguf *g = NULL;
    REQUIRE(kiln__gguf_open(REF_GGUF, &g) == KILN_OK);
    uint32_t u32;
    int32_t i32;
    int64_t i64;
    uint64_t u64;
    CHECK(kiln__gguf_get_u32(g, "test.u8", &u32) && u32 == 250);
    CHECK(kiln__gguf_get_i32(g, "test.u16", &i32) && i32 == 65000);
    CHECK(kiln__gguf_get_i64(g, "test.u32", &i64) && i64 == 4000000000);
    CHECK(!kiln__gguf_get_u32(g, "test.i8", &u32));
    CHECK_CONTAINS(kiln_last_error(), "key 'test.i8' value -120 is out of range");
    CHECK(!kiln__gguf_get_i32(g, "test.u32", &i32));
    CHECK_CONTAINS(kiln_last_error(), "out of range");
    CHECK(!kiln__gguf_get_i64(g, "test.u64", &i64));
    CHECK(!kiln__gguf_get_u64(g, "test.i64", &u64));
    CHECK(!kiln__gguf_get_u32(g, "test.string", &u32));
    CHECK_CONTAINS(kiln_last_error(), "key 'test.string' has type string, expected an integer");
    CHECK(!kiln__gguf_get_u32(g, "test.nope", &u32));
    CHECK_CONTAINS(kiln_last_error(), "key 'test.nope' not found");
    float f;
    double d;
    bool b;
    const char *s;
    size_t len;
    CHECK(kiln__gguf_get_f64(g, "test.f32", &d) && (float)d == 3.14159f);
    CHECK(!kiln__gguf_get_f32(g, "test.u8", &f));
    CHECK_CONTAINS(kiln_last_error(), "expected a float");
    CHECK(!kiln__gguf_get_bool(g, "test.u8", &b));
    CHECK(!kiln__gguf_get_str(g, "test.u8", &s, &len));
    CHECK(kiln__gguf_get_arr(g, "test.u8") == NULL);
    CHECK_CONTAINS(kiln_last_error(), "expected array");
    const struct kiln_gguf_arr *a = kiln__gguf_get_arr(g, "test.arr_str");
    REQUIRE(a != NULL);
    CHECK(!kiln__gguf_arr_i64(a, 0, &i64)); /* strings are not integers */
    a = kiln__gguf_get_arr(g, "test.arr_u64");
    REQUIRE(a != NULL);
    CHECK(kiln__gguf_arr_i64(a, 0, &i64) && i64 == 1);
    CHECK(!kiln__gguf_arr_i64(a, 1, &i64)); /* 2^63 does not fit */
    a = kiln__gguf_get_arr(g, "test.arr_i64");
    REQUIRE(a != NULL);
    CHECK(!kiln__gguf_arr_u64(a, 0, &u64)); /* negative */
    kiln__gguf_free(g);
}

/* kiln's writer, given what the reader found, writes the same bytes as the
 * reference writer. */
static void test_writer_reproduces_reference(void) {
    size_t size;
    uint8_t *ref = test_read_file(REF_GGUF, &size);
    REQUIRE(ref != NULL);
    struct kiln_gguf *g = NULL;
    struct kiln_gguf_writer *w = NULL;
    REQUIRE(kiln__gguf_parse(ref, size, &g) == KILN_OK);
    REQUIRE(kiln__gguf_writer_new(&w) == KILN_OK);
    for (uint64_t i = 0; i < g->n_kv; i++) {
        const struct kiln_gguf_kv *kv = &g->kv[i];
        if (strcmp(kv->key, "general.alignment") == 0) {
            CHECK_EQ_INT(kiln__gguf_writer_set_alignment(w, (uint32_t)kv->value.v.u), KILN_OK);
            continue;
        }
        CHECK_EQ_INT(kiln__gguf_writer_key(w, kv->key), KILN_OK);
        CHECK_EQ_INT(kiln__gguf_writer_copy_value(w, &kv->value), KILN_OK);
    }
    for (uint64_t i = 0; i < g->n_tensors; i++) {
        const struct kiln_gguf_tensor *t = &g->tensors[i];
        CHECK_EQ_INT(kiln__gguf_writer_add_tensor(w, t->name, t->dtype, t->n_dims, t->ne, t->data, t->nbytes),
                     KILN_OK);
    }
    char *out = NULL;
    size_t out_len = 0;
    FILE *mem = open_memstream(&out, &out_len);
    REQUIRE(mem != NULL);
    CHECK_EQ_INT(kiln__gguf_writer_write_file(w, mem), KILN_OK);
    fclose(mem);
    CHECK_EQ_INT(out_len, size);
    CHECK(out_len == size && memcmp(out, ref, size) == 0);
    free(out);
    kiln__gguf_writer_free(w);
    kiln__gguf_free(g);
    free(ref);
}

/* Every prefix shorter than the data is refused cleanly; single-byte
 * corruptions of the metadata either parse or fail with a message. */
static void test_truncations_and_corruptions(void) {
    size_t size;
    uint8_t *ref = test_read_file(REF_GGUF, &size);
    REQUIRE(ref != NULL);
    struct kiln_gguf *g = NULL;
    REQUIRE(kiln__gguf_parse(ref, size, &g) == KILN_OK);
    const struct kiln_gguf_tensor *last = &g->tensors[g->n_tensors - 1];
    size_t data_end = (size_t)(g->data_offset + last->offset + last->nbytes);
    size_t meta_end = (size_t)g->data_offset;
    kiln__gguf_free(g);
    int wrong = 0;
    for (size_t n = 0; n < data_end; n++) {
        uint8_t *copy = malloc(n ? n : 1); /* its own buffer: ASan sees any over-read */
        REQUIRE(copy != NULL);
        memcpy(copy, ref, n);
        g = NULL;
        kiln_status st = kiln__gguf_parse(copy, n, &g);
        if (st != KILN_ERR_FORMAT || g != NULL || strncmp(kiln_last_error(), "gguf: ", 6) != 0) wrong++;
        kiln__gguf_free(g);
        free(copy);
    }
    CHECK_EQ_INT(wrong, 0);
    int ok = 0, failed = 0;
    for (size_t i = 0; i < meta_end; i++) {
        for (int bit = 0; bit < 8; bit += 3) {
            ref[i] ^= (uint8_t)(1u << bit);
            g = NULL;
            kiln_status st = kiln__gguf_parse(ref, size, &g);
            if (st == KILN_OK) ok++;
            else if (st == KILN_ERR_FORMAT && kiln_last_error()[0]) failed++;
            kiln__gguf_free(g);
            ref[i] ^= (uint8_t)(1u << bit);
        }
    }
    CHECK_EQ_INT(ok + failed, (int)meta_end * 3);
    CHECK(failed > 0);
    free(ref);
}

int main(void) {
    RUN(test_reference_file_v3);
    RUN(test_reference_file_as_v2);
    RUN(test_getters_convert_and_refuse);
    RUN(test_writer_reproduces_reference);
    RUN(test_truncations_and_corruptions);
    return TEST_REPORT();
}
