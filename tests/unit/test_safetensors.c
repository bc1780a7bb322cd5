/* tests/unit/test_safetensors.c - the safetensors reader against files made
 * by the reference implementation (tools/make_safetensors_fixtures.py), the
 * writer (byte-exact against the reference writer, round trips), sharded
 * sets, the name table and the file mapping. Malformed files are in
 * test_safetensors_malformed.c. */
#include <errno.h>
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/error.h"
#include "formats/file_map.h"
#include "formats/safetensors.h"
#include "test.h"
#include "test_files.h"

#define FIXTURES KILN_SOURCE_DIR "/tests/data/safetensors"
#define TMP KILN_TEST_TMP "/safetensors"

/* Hex string into bytes (caller frees); *n receives the length. */
static uint8_t *unhex(const char *hex, size_t *n) {
    size_t len = strlen(hex) / 2;
    uint8_t *out = malloc(len ? len : 1);
    for (size_t i = 0; out && i < len; i++) {
        unsigned v;
        sscanf(hex + 2 * i, "%2x", &v);
        out[i] = (uint8_t)v;
    }
    *n = len;
    return out;
}

/* IEEE half to float, written out from the format (sign, 5-bit exponent,
 * 10-bit mantissa) so the test does not lean on the library's converter. */
static double half_to_double(uint16_t h) {
    int sign = h >> 15, e = (h >> 10) & 31, m = h & 1023;
    double v = e == 0 ? ldexp(m, -24) : e == 31 ? (m ? NAN : INFINITY) : ldexp(m + 1024, e - 25);
    return sign ? -v : v;
}

/* Value i of tensor t as a double (plain types only; NAN for others). */
static double value_at(const struct kiln_st_tensor *t, size_t i) {
    const uint8_t *p = t->data;
    float f;
    double d;
    uint16_t h;
    int16_t i16;
    int32_t i32;
    int64_t i64;
    uint32_t w;
    kiln_dtype k = t->dtype;
    if (k == KILN_DTYPE_F32) return memcpy(&f, p + 4 * i, 4), f;
    if (k == KILN_DTYPE_F64) return memcpy(&d, p + 8 * i, 8), d;
    if (k == KILN_DTYPE_F16) return memcpy(&h, p + 2 * i, 2), half_to_double(h);
    if (k == KILN_DTYPE_BF16) { /* bf16 is the top half of an f32 */
        memcpy(&h, p + 2 * i, 2);
        w = (uint32_t)h << 16;
        return memcpy(&f, &w, 4), f;
    }
    if (k == KILN_DTYPE_I8) return (int8_t)p[i];
    if (k == KILN_DTYPE_U8 || k == KILN_DTYPE_BOOL) return p[i];
    if (k == KILN_DTYPE_I16) return memcpy(&i16, p + 2 * i, 2), i16;
    if (k == KILN_DTYPE_I32) return memcpy(&i32, p + 4 * i, 4), i32;
    if (k == KILN_DTYPE_I64) return memcpy(&i64, p + 8 * i, 8), (double)i64;
    return NAN;
}

/* Flatten a nested JSON array of numbers (or one number) into vals. */
static size_t flatten(const json_t *j, double *vals, size_t cap, size_t n) {
    if (json_is_array(j)) {
        for (size_t i = 0; i < json_array_size(j); i++) n = flatten(json_array_get(j, i), vals, cap, n);
        return n;
    }
    if (n < cap) vals[n] = json_is_boolean(j) ? (double)json_is_true(j) : json_number_value(j);
    return n + 1;
}

static json_t *load_expected(const char *file) {
    json_error_t err;
    json_t *all = json_load_file(FIXTURES "/expected.json", 0, &err);
    if (!all) return NULL;
    json_t *one = json_incref(json_object_get(all, file));
    json_decref(all);
    return one;
}

/* The reference-written file: every tensor's dtype, shape, offsets, bytes and values. */
static void test_reads_reference_file(void) {
    json_t *exp = load_expected("mixed.safetensors");
    REQUIRE(exp != NULL);
    struct kiln_safetensors *st = NULL;
    kiln_status s = kiln__safetensors_open(FIXTURES "/mixed.safetensors", &st);
    if (s != KILN_OK) fprintf(stderr, "  %s\n", kiln_last_error());
    REQUIRE(s == KILN_OK);
    json_t *tensors = json_object_get(exp, "tensors");
    CHECK_EQ_INT(st->n_tensors, json_object_size(tensors));
    CHECK_EQ_INT(st->header_size, json_integer_value(json_object_get(exp, "header_size")));
    CHECK_EQ_INT(8 + st->header_size + st->data_size, json_integer_value(json_object_get(exp, "size")));
    CHECK_EQ_INT(st->n_meta, 1);
    CHECK_EQ_STR(kiln__safetensors_meta(st, "format"), "pt");

    /* Tensors come in data order, as the reference laid them out. */
    json_t *order = json_object_get(exp, "data_order");
    for (size_t i = 0; i < json_array_size(order) && i < st->n_tensors; i++)
        CHECK_EQ_STR(st->tensors[i].name, json_string_value(json_array_get(order, i)));

    const char *name;
    json_t *e;
    int checked_values = 0;
    json_object_foreach(tensors, name, e) {
        const struct kiln_st_tensor *t = kiln__safetensors_find(st, name);
        CHECK(t != NULL);
        if (!t) continue;
        CHECK_EQ_STR(kiln__st_dtype_name(t->dtype), json_string_value(json_object_get(e, "dtype")));
        json_t *shape = json_object_get(e, "shape");
        CHECK_EQ_INT(t->n_dims, json_array_size(shape));
        int64_t count = 1;
        for (size_t d = 0; d < json_array_size(shape); d++) {
            CHECK_EQ_INT(t->shape[d], json_integer_value(json_array_get(shape, d)));
            count *= t->shape[d];
        }
        CHECK_EQ_INT(t->n_elements, count);
        json_t *off = json_object_get(e, "data_offsets");
        int64_t b = json_integer_value(json_array_get(off, 0)), end = json_integer_value(json_array_get(off, 1));
        CHECK_EQ_INT(t->nbytes, end - b);
        CHECK_EQ_INT(t->file_offset, 8 + (int64_t)st->header_size + b);
        if (t->nbytes) CHECK(t->data == st->data + b);
        size_t nhex;
        uint8_t *bytes = unhex(json_string_value(json_object_get(e, "hex")), &nhex);
        REQUIRE(bytes != NULL);
        CHECK_EQ_INT(nhex, t->nbytes);
        CHECK(nhex == t->nbytes && (nhex == 0 || memcmp(bytes, t->data, nhex) == 0));
        free(bytes);
        json_t *values = json_object_get(e, "values");
        if (!json_is_null(values)) {
            double vals[64];
            size_t n = flatten(values, vals, 64, 0);
            CHECK_EQ_INT(n, t->n_elements);
            for (size_t i = 0; i < n && i < 64; i++) CHECK_NEAR(value_at(t, i), vals[i], 1e-12);
            checked_values++;
        }
    }
    CHECK(checked_values >= 12);
    CHECK(kiln__safetensors_find(st, "no.such.tensor") == NULL);
    CHECK(kiln__safetensors_find(st, NULL) == NULL);
    kiln__safetensors_free(st);
    json_decref(exp);
}

static void test_reads_reference_metadata(void) {
    json_t *exp = load_expected("meta.safetensors");
    REQUIRE(exp != NULL);
    struct kiln_safetensors *st = NULL;
    REQUIRE(kiln__safetensors_open(FIXTURES "/meta.safetensors", &st) == KILN_OK);
    json_t *meta = json_object_get(exp, "metadata");
    CHECK_EQ_INT(st->n_meta, json_object_size(meta));
    const char *key;
    json_t *v;
    json_object_foreach(meta, key, v) CHECK_EQ_STR(kiln__safetensors_meta(st, key), json_string_value(v));
    CHECK(kiln__safetensors_meta(st, "absent") == NULL);
    CHECK_EQ_INT(st->n_tensors, 1);
    kiln__safetensors_free(st);
    json_decref(exp);
}

/* The writer, given the reference file's tensors in its data order and its
 * metadata, must produce the reference writer's bytes exactly (same JSON
 * spelling, same space padding to 8 bytes). Inputs come from expected.json,
 * not from our reader. */
static void test_writer_matches_reference_bytes(void) {
    json_t *exp = load_expected("mixed.safetensors");
    REQUIRE(exp != NULL);
    json_t *order = json_object_get(exp, "data_order"), *tensors = json_object_get(exp, "tensors");
    size_t n = json_array_size(order);
    struct kiln_st_write_tensor w[32];
    int64_t shapes[32][KILN_ST_MAX_DIMS];
    uint8_t *bufs[32] = {0};
    REQUIRE(n <= 32);
    for (size_t i = 0; i < n; i++) {
        const char *name = json_string_value(json_array_get(order, i));
        json_t *e = json_object_get(tensors, name), *shape = json_object_get(e, "shape");
        for (size_t d = 0; d < json_array_size(shape); d++) shapes[i][d] = json_integer_value(json_array_get(shape, d));
        w[i] = (struct kiln_st_write_tensor){
            .name = name,
            .dtype = kiln_dtype_from_name(json_string_value(json_object_get(e, "dtype"))),
            .n_dims = (int)json_array_size(shape),
            .shape = shapes[i],
        };
        bufs[i] = unhex(json_string_value(json_object_get(e, "hex")), &w[i].nbytes);
        w[i].data = bufs[i];
    }
    struct kiln_st_meta meta = {"format", "pt"};
    uint8_t *out = NULL;
    size_t out_size = 0;
    kiln_status s = kiln__safetensors_write_mem(w, n, &meta, 1, &out, &out_size);
    if (s != KILN_OK) fprintf(stderr, "  %s\n", kiln_last_error());
    CHECK(s == KILN_OK);
    size_t ref_size = 0;
    uint8_t *ref = test_read_file(FIXTURES "/mixed.safetensors", &ref_size);
    REQUIRE(ref != NULL);
    CHECK_EQ_INT(out_size, ref_size);
    CHECK(out && out_size == ref_size && memcmp(out, ref, ref_size) == 0);

    /* The same through a file. */
    mkdir(TMP, 0755);
    s = kiln__safetensors_write(TMP "/mixed_copy.safetensors", w, n, &meta, 1);
    CHECK(s == KILN_OK);
    size_t copy_size = 0;
    uint8_t *copy = test_read_file(TMP "/mixed_copy.safetensors", &copy_size);
    CHECK(copy && copy_size == ref_size && memcmp(copy, ref, ref_size) == 0);
    free(copy);
    free(ref);
    free(out);
    for (size_t i = 0; i < n; i++) free(bufs[i]);
    json_decref(exp);
}

/* Write, read back, compare everything; header stays 8-byte aligned. */
static void test_round_trip(void) {
    float f32[6] = {1, -2, 3.5f, 0, 1e-20f, -1e20f};
    uint16_t f16[3] = {0x3c00, 0xc000, 0x7bff};
    uint16_t bf16[2] = {0x3f80, 0xbf80};
    int8_t i8[4] = {-128, -1, 0, 127};
    uint8_t u8[1] = {200};
    float scalar = 42.0f;
    int64_t s23[] = {2, 3}, s3[] = {3}, s2[] = {2}, s221[] = {2, 2, 1}, s1[] = {1}, s0x5[] = {0, 5};
    int64_t s8[KILN_ST_MAX_DIMS] = {1, 1, 1, 1, 1, 1, 2, 3};
    struct kiln_st_write_tensor w[] = {
        {"model.layers.0.self_attn.q_proj.weight", KILN_DTYPE_F32, 2, s23, f32, sizeof f32},
        {"f16", KILN_DTYPE_F16, 1, s3, f16, sizeof f16},
        {"bf16", KILN_DTYPE_BF16, 1, s2, bf16, sizeof bf16},
        {"i8", KILN_DTYPE_I8, 3, s221, i8, sizeof i8},
        {"u8", KILN_DTYPE_U8, 1, s1, u8, sizeof u8},
        {"scalar", KILN_DTYPE_F32, 0, NULL, &scalar, sizeof scalar},
        {"empty", KILN_DTYPE_F16, 2, s0x5, NULL, 0},
        {"eight_dims", KILN_DTYPE_F32, 8, s8, f32, sizeof f32},
        {"caf\xc3\xa9 \xe2\x98\x83", KILN_DTYPE_U8, 1, s1, u8, 1},
    };
    size_t n = sizeof w / sizeof w[0];
    struct kiln_st_meta meta[] = {{"format", "pt"}, {"quote\"key", "line\nbreak \\ \xc3\xa9"}, {"e", ""}};
    uint8_t *buf = NULL;
    size_t size = 0;
    REQUIRE(kiln__safetensors_write_mem(w, n, meta, 3, &buf, &size) == KILN_OK);
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = (hlen << 8) | buf[i];
    CHECK_EQ_INT(hlen % 8, 0);
    CHECK(buf[8 + hlen - 1] == ' ' || buf[8 + hlen - 1] == '}');

    struct kiln_safetensors *st = NULL;
    kiln_status s = kiln__safetensors_parse(buf, size, &st);
    if (s != KILN_OK) fprintf(stderr, "  %s\n", kiln_last_error());
    REQUIRE(s == KILN_OK);
    CHECK_EQ_INT(st->n_tensors, n);
    /* The writer lays data out in the given order, so tensors[] keeps it
     * (the zero-byte tensor sorts before the tensor that shares its offset). */
    for (size_t i = 0; i < n; i++) {
        const struct kiln_st_tensor *t = kiln__safetensors_find(st, w[i].name);
        REQUIRE(t != NULL);
        CHECK_EQ_INT(t->dtype, w[i].dtype);
        CHECK_EQ_INT(t->n_dims, w[i].n_dims);
        for (int d = 0; d < w[i].n_dims; d++) CHECK_EQ_INT(t->shape[d], w[i].shape[d]);
        CHECK_EQ_INT(t->nbytes, w[i].nbytes);
        if (t->nbytes) CHECK(memcmp(t->data, w[i].data, t->nbytes) == 0);
    }
    CHECK_EQ_INT(kiln__safetensors_find(st, "scalar")->n_elements, 1);
    CHECK_EQ_INT(kiln__safetensors_find(st, "empty")->n_elements, 0);
    CHECK_EQ_INT(st->n_meta, 3);
    for (int i = 0; i < 3; i++) CHECK_EQ_STR(kiln__safetensors_meta(st, meta[i].key), meta[i].value);
    kiln__safetensors_free(st);

    /* Through a file and the mapping, as a set of one. */
    mkdir(TMP, 0755);
    REQUIRE(kiln__safetensors_write(TMP "/rt.safetensors", w, n, meta, 3) == KILN_OK);
    struct kiln_safetensors_set *set = NULL;
    REQUIRE(kiln__safetensors_set_open(TMP "/rt.safetensors", &set) == KILN_OK);
    CHECK_EQ_INT(set->n_shards, 1);
    CHECK_EQ_INT(set->n_tensors, n);
    const struct kiln_st_tensor *q = kiln__safetensors_set_find(set, w[0].name);
    REQUIRE(q != NULL);
    CHECK(memcmp(q->data, f32, sizeof f32) == 0);
    struct kiln_tensor_lookup lk = kiln__safetensors_set_lookup(set);
    int64_t shape[KILN_LOOKUP_MAX_DIMS];
    int nd = 0;
    CHECK(lk.find(lk.ctx, "i8", shape, &nd) && nd == 3 && shape[0] == 2 && shape[2] == 1);
    CHECK(!lk.find(lk.ctx, "nope", shape, &nd));
    kiln__safetensors_set_free(set);

    /* No tensors at all is a valid (empty) file. */
    free(buf);
    REQUIRE(kiln__safetensors_write_mem(NULL, 0, NULL, 0, &buf, &size) == KILN_OK);
    REQUIRE(kiln__safetensors_parse(buf, size, &st) == KILN_OK);
    CHECK_EQ_INT(st->n_tensors, 0);
    CHECK_EQ_INT(st->data_size, 0);
    kiln__safetensors_free(st);
    free(buf);
}

/* Bad writer inputs are refused with a message, nothing written. */
static void test_writer_rejects_bad_input(void) {
    float f[4] = {0};
    int64_t s4[] = {4}, s2[] = {2}, neg[] = {-4};
    int64_t s9[9] = {1, 1, 1, 1, 1, 1, 1, 1, 4};
    uint8_t *buf = NULL;
    size_t size = 0;
    struct {
        struct kiln_st_write_tensor t[2];
        size_t n;
        const char *msg;
    } cases[] = {
        {{{"a", KILN_DTYPE_F32, 1, s2, f, sizeof f}}, 1, "do not match"},
        {{{"a", KILN_DTYPE_F32, 1, neg, f, sizeof f}}, 1, "do not match"},
        {{{"a", KILN_DTYPE_Q4_K, 1, s4, f, sizeof f}}, 1, "safetensors cannot hold"},
        {{{"__metadata__", KILN_DTYPE_F32, 1, s4, f, sizeof f}}, 1, "no usable name"},
        {{{"a", KILN_DTYPE_F32, 1, s4, f, sizeof f}, {"a", KILN_DTYPE_F32, 1, s4, f, sizeof f}}, 2,
         "duplicate tensor name"},
        {{{"a", KILN_DTYPE_F32, 9, s9, f, sizeof f}}, 1, "bad shape"},
        {{{"a", KILN_DTYPE_F32, 1, s4, NULL, sizeof f}}, 1, "do not match"},
        {{{"bad\xff", KILN_DTYPE_F32, 1, s4, f, sizeof f}}, 1, "not valid UTF-8"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        CHECK_EQ_INT(kiln__safetensors_write_mem(cases[i].t, cases[i].n, NULL, 0, &buf, &size), KILN_ERR_INVALID_ARG);
        CHECK_CONTAINS(kiln_last_error(), cases[i].msg);
        CHECK(buf == NULL);
    }
    struct kiln_st_write_tensor ok = {"a", KILN_DTYPE_F32, 1, s4, f, sizeof f};
    struct kiln_st_meta dup[] = {{"k", "1"}, {"k", "2"}};
    CHECK_EQ_INT(kiln__safetensors_write_mem(&ok, 1, dup, 2, &buf, &size), KILN_ERR_INVALID_ARG);
    CHECK_CONTAINS(kiln_last_error(), "duplicate metadata key");
    CHECK_EQ_INT(kiln__safetensors_write("/nonexistent-dir/x.safetensors", &ok, 1, NULL, 0), KILN_ERR_IO);
    CHECK_CONTAINS(kiln_last_error(), "No such file or directory");
}

/* A shard holding the named F32 [2] tensors (values = index). */
static void write_shard(const char *path, const char *const *names, size_t n) {
    static const float vals[2] = {1, 2};
    static const int64_t shape[1] = {2};
    struct kiln_st_write_tensor w[8];
    for (size_t i = 0; i < n; i++) w[i] = (struct kiln_st_write_tensor){names[i], KILN_DTYPE_F32, 1, shape, vals, 8};
    kiln__safetensors_write(path, w, n, NULL, 0);
}

static void test_sharded_index(void) {
    mkdir(TMP, 0755);
    mkdir(TMP "/sharded", 0755);
    const char *a[] = {"model.embed_tokens.weight", "model.layers.0.mlp.up_proj.weight"};
    const char *b[] = {"model.layers.1.mlp.up_proj.weight", "lm_head.weight"};
    write_shard(TMP "/sharded/model-00001-of-00002.safetensors", a, 2);
    write_shard(TMP "/sharded/model-00002-of-00002.safetensors", b, 2);
    test_write_text(TMP "/sharded/model.safetensors.index.json",
               "{\"metadata\": {\"total_size\": 32}, \"weight_map\": {"
               "\"lm_head.weight\": \"model-00002-of-00002.safetensors\","
               "\"model.embed_tokens.weight\": \"model-00001-of-00002.safetensors\","
               "\"model.layers.0.mlp.up_proj.weight\": \"model-00001-of-00002.safetensors\","
               "\"model.layers.1.mlp.up_proj.weight\": \"model-00002-of-00002.safetensors\"}}");
    struct kiln_safetensors_set *set = NULL;
    kiln_status s = kiln__safetensors_set_open(TMP "/sharded/model.safetensors.index.json", &set);
    if (s != KILN_OK) fprintf(stderr, "  %s\n", kiln_last_error());
    REQUIRE(s == KILN_OK);
    CHECK_EQ_INT(set->n_shards, 2); /* four entries, two files, each opened once */
    CHECK_EQ_INT(set->n_tensors, 4);
    CHECK_CONTAINS(set->shard_paths[0], "/sharded/model-00002-of-00002.safetensors");
    const struct kiln_st_tensor *t = kiln__safetensors_set_find(set, "model.layers.0.mlp.up_proj.weight");
    REQUIRE(t != NULL);
    CHECK(t == kiln__safetensors_find(set->shards[1], "model.layers.0.mlp.up_proj.weight"));
    CHECK(kiln__safetensors_set_find(set, "lm_head.weight") != NULL);
    CHECK(kiln__safetensors_set_find(set, "missing") == NULL);
    kiln__safetensors_set_free(set);

    /* Defects, each with its own message. */
    struct {
        const char *index;
        kiln_status status;
        const char *msg;
    } bad[] = {
        {"{\"weight_map\": {\"lm_head.weight\": \"model-00001-of-00002.safetensors\"}}", KILN_ERR_FORMAT,
         "does not hold it"},
        {"{\"metadata\": {}}", KILN_ERR_FORMAT, "no \"weight_map\" object"},
        {"{\"weight_map\": {}}", KILN_ERR_FORMAT, "\"weight_map\" is empty"},
        {"{\"weight_map\": {\"x\": 3}}", KILN_ERR_FORMAT, "not a file name"},
        {"{\"weight_map\": {\"x\": \"../model-00001-of-00002.safetensors\"}}", KILN_ERR_FORMAT,
         "not a file name in the index's folder"},
        {"{\"weight_map\": {\"x\": \"absent.safetensors\"}}", KILN_ERR_NOT_FOUND, "No such file or directory"},
        {"{\"weight_map\": {\"x\": \"a\", \"x\": \"b\"}}", KILN_ERR_FORMAT, "duplicate object key"},
        {"[1, 2", KILN_ERR_FORMAT, "not valid JSON"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        test_write_text(TMP "/sharded/bad.index.json", bad[i].index);
        CHECK_EQ_INT(kiln__safetensors_open_index(TMP "/sharded/bad.index.json", &set), bad[i].status);
        CHECK_CONTAINS(kiln_last_error(), bad[i].msg);
        CHECK(set == NULL);
    }

    /* The same tensor in two shards. */
    const char *c[] = {"lm_head.weight"};
    write_shard(TMP "/sharded/extra.safetensors", c, 1);
    test_write_text(TMP "/sharded/dup.index.json",
               "{\"weight_map\": {\"lm_head.weight\": \"model-00002-of-00002.safetensors\","
               "\"model.embed_tokens.weight\": \"extra.safetensors\"}}");
    CHECK_EQ_INT(kiln__safetensors_open_index(TMP "/sharded/dup.index.json", &set), KILN_ERR_FORMAT);
    CHECK_CONTAINS(kiln_last_error(), "'lm_head.weight' is in two shards");
}

/* ~2000 tensors, as a large model has: every name is found. */
static void test_many_tensors_lookup(void) {
    enum { N = 2000 };
    static char names[N][48];
    static struct kiln_st_write_tensor w[N];
    static const uint8_t one = 1;
    static const int64_t shape[1] = {1};
    for (int i = 0; i < N; i++) {
        snprintf(names[i], sizeof names[i], "model.layers.%d.self_attn.%c_proj.weight", i / 4, "qkvo"[i % 4]);
        w[i] = (struct kiln_st_write_tensor){names[i], KILN_DTYPE_U8, 1, shape, &one, 1};
    }
    uint8_t *buf = NULL;
    size_t size = 0;
    REQUIRE(kiln__safetensors_write_mem(w, N, NULL, 0, &buf, &size) == KILN_OK);
    struct kiln_safetensors *st = NULL;
    REQUIRE(kiln__safetensors_parse(buf, size, &st) == KILN_OK);
    int found = 0;
    for (int i = 0; i < N; i++) {
        const struct kiln_st_tensor *t = kiln__safetensors_find(st, names[i]);
        found += t && strcmp(t->name, names[i]) == 0;
    }
    CHECK_EQ_INT(found, N);
    CHECK(kiln__safetensors_find(st, "model.layers.500.self_attn.q_proj.weight") == NULL);
    kiln__safetensors_free(st);
    free(buf);
}

static void test_file_map(void) {
    struct kiln_file_map m;
    CHECK_EQ_INT(kiln__file_map_open(KILN_SOURCE_DIR "/tests", &m), KILN_ERR_IO);
    CHECK_CONTAINS(kiln_last_error(), "is not a regular file");
    CHECK(m.data == NULL && m.size == 0);
    CHECK_EQ_INT(kiln__file_map_open(TMP "/does-not-exist", &m), KILN_ERR_NOT_FOUND);
    CHECK_CONTAINS(kiln_last_error(), "does-not-exist': No such file or directory");
    mkdir(TMP, 0755);
    test_write_text(TMP "/empty", "");
    REQUIRE(kiln__file_map_open(TMP "/empty", &m) == KILN_OK);
    CHECK(m.data == NULL && m.size == 0);
    kiln__file_map_close(&m);
    test_write_text(TMP "/small", "abc");
    REQUIRE(kiln__file_map_open(TMP "/small", &m) == KILN_OK);
    CHECK(m.size == 3 && memcmp(m.data, "abc", 3) == 0);
    kiln__file_map_close(&m);
    kiln__file_map_close(&m); /* twice is harmless */
    kiln__file_map_close(NULL);
    kiln__safetensors_free(NULL);
    kiln__safetensors_set_free(NULL);
}

int main(void) {
    /* Start from an empty scratch folder: earlier runs leave files behind. */
    if (system("rm -rf '" TMP "'") != 0) return 1;
    RUN(test_reads_reference_file);
    RUN(test_reads_reference_metadata);
    RUN(test_writer_matches_reference_bytes);
    RUN(test_round_trip);
    RUN(test_writer_rejects_bad_input);
    RUN(test_sharded_index);
    RUN(test_many_tensors_lookup);
    RUN(test_file_map);
    return TEST_REPORT();
}
