/* tests/unit/test_gguf_write.c - the GGUF writer: a file with every value
 * kind, nested arrays and tensors of several dtypes written to disk and read
 * back through kiln__gguf_open; and the writer's refusals of misuse. */
#include <stdlib.h>

#include "formats/gguf.h"
#include "kiln/kiln.h"
#include "test.h"

#define OUT_PATH KILN_TEST_TMP "/roundtrip.gguf"

/* Deterministic bytes for tensor data. */
static void fill(uint8_t *p, size_t n, unsigned seed) {
    for (size_t i = 0; i < n; i++) p[i] = (uint8_t)((i * 131u + seed * 7u) >> 1);
}

static void test_round_trip_through_a_file(void) {
    struct kiln_gguf_writer *w = NULL;
    REQUIRE(kiln__gguf_writer_new(&w) == KILN_OK);
    CHECK_EQ_INT(kiln__gguf_writer_set_alignment(w, 128), KILN_OK);
    CHECK_EQ_INT(kiln__gguf_writer_kv_str(w, "general.architecture", "llama"), KILN_OK);
    CHECK_EQ_INT(kiln__gguf_writer_kv_u32(w, "llama.block_count", 2), KILN_OK);
    CHECK_EQ_INT(kiln__gguf_writer_kv_i32(w, "test.neg", -5), KILN_OK);
    CHECK_EQ_INT(kiln__gguf_writer_kv_u64(w, "test.big", UINT64_MAX - 1), KILN_OK);
    CHECK_EQ_INT(kiln__gguf_writer_kv_f32(w, "llama.rope.freq_base", 10000.5f), KILN_OK);
    CHECK_EQ_INT(kiln__gguf_writer_kv_bool(w, "tokenizer.ggml.add_bos_token", true), KILN_OK);
    int16_t i16 = -12345;
    double f64 = -1.0 / 3.0;
    CHECK_EQ_INT(kiln__gguf_writer_key(w, "test.i16"), KILN_OK);
    CHECK_EQ_INT(kiln__gguf_writer_value(w, KILN_GGUF_I16, &i16), KILN_OK);
    CHECK_EQ_INT(kiln__gguf_writer_key(w, "test.f64"), KILN_OK);
    CHECK_EQ_INT(kiln__gguf_writer_value(w, KILN_GGUF_F64, &f64), KILN_OK);
    const char *toks[] = {"<unk>", "<s>", "</s>", "▁hello", ""};
    CHECK_EQ_INT(kiln__gguf_writer_kv_str_arr(w, "tokenizer.ggml.tokens", toks, 5), KILN_OK);
    float scores[] = {0.0f, -1.5f, 2.25f, -1e30f, 1e-30f};
    CHECK_EQ_INT(kiln__gguf_writer_kv_arr(w, "tokenizer.ggml.scores", KILN_GGUF_F32, scores, 5), KILN_OK);
    bool flags[] = {true, false, true};
    CHECK_EQ_INT(kiln__gguf_writer_kv_arr(w, "test.flags", KILN_GGUF_BOOL, flags, 3), KILN_OK);
    CHECK_EQ_INT(kiln__gguf_writer_kv_arr(w, "test.empty", KILN_GGUF_U8, NULL, 0), KILN_OK);
    /* An array of arrays: each inner array has its own element type:
     * [[1, 2] (u16), [] (u16), ["deep ✓"] (string)]. */
    CHECK_EQ_INT(kiln__gguf_writer_key(w, "test.nested"), KILN_OK);
    CHECK_EQ_INT(kiln__gguf_writer_arr_begin(w, KILN_GGUF_ARRAY, 3), KILN_OK);
    uint16_t v[3] = {1, 2, 3};
    CHECK_EQ_INT(kiln__gguf_writer_arr_begin(w, KILN_GGUF_U16, 2), KILN_OK);
    CHECK_EQ_INT(kiln__gguf_writer_value(w, KILN_GGUF_U16, &v[0]), KILN_OK);
    CHECK_EQ_INT(kiln__gguf_writer_value(w, KILN_GGUF_U16, &v[1]), KILN_OK);
    CHECK_EQ_INT(kiln__gguf_writer_arr_end(w), KILN_OK);
    CHECK_EQ_INT(kiln__gguf_writer_arr_begin(w, KILN_GGUF_U16, 0), KILN_OK);
    CHECK_EQ_INT(kiln__gguf_writer_arr_end(w), KILN_OK);
    CHECK_EQ_INT(kiln__gguf_writer_arr_begin(w, KILN_GGUF_STRING, 1), KILN_OK);
    struct kiln_gguf_str s = {"deep ✓", strlen("deep ✓")};
    CHECK_EQ_INT(kiln__gguf_writer_value(w, KILN_GGUF_STRING, &s), KILN_OK);
    CHECK_EQ_INT(kiln__gguf_writer_arr_end(w), KILN_OK);
    CHECK_EQ_INT(kiln__gguf_writer_arr_end(w), KILN_OK);

    /* Tensors: F32 [5,3], F16 [7], Q4_0 [64,2], Q6_K [256], I8 [3,1,1,2]. */
    struct {
        const char *name;
        kiln_dtype dtype;
        uint32_t n_dims;
        uint64_t ne[4];
        size_t nbytes;
    } ts[] = {
        {"token_embd.weight", KILN_DTYPE_F32, 2, {5, 3}, 60},
        {"output_norm.weight", KILN_DTYPE_F16, 1, {7}, 14},
        {"blk.0.attn_q.weight", KILN_DTYPE_Q4_0, 2, {64, 2}, 4 * 18},
        {"blk.0.ffn_down.weight", KILN_DTYPE_Q6_K, 1, {256}, 210},
        {"i8.weight", KILN_DTYPE_I8, 4, {3, 1, 1, 2}, 6},
    };
    enum { NT = sizeof ts / sizeof ts[0] };
    uint8_t *datas[NT];
    for (int i = 0; i < NT; i++) {
        datas[i] = malloc(ts[i].nbytes);
        REQUIRE(datas[i] != NULL);
        fill(datas[i], ts[i].nbytes, (unsigned)i);
        CHECK_EQ_INT(kiln__gguf_writer_add_tensor(w, ts[i].name, ts[i].dtype, ts[i].n_dims, ts[i].ne,
                                                  datas[i], ts[i].nbytes),
                     KILN_OK);
    }
    CHECK_EQ_INT(kiln__gguf_writer_write(w, OUT_PATH), KILN_OK);
    kiln__gguf_writer_free(w);

    struct kiln_gguf *g = NULL;
    kiln_status st = kiln__gguf_open(OUT_PATH, &g);
    if (st != KILN_OK) fprintf(stderr, "  %s\n", kiln_last_error());
    REQUIRE(st == KILN_OK);
    CHECK_EQ_INT(g->version, 3);
    CHECK_EQ_INT(g->alignment, 128);
    CHECK_EQ_INT(g->n_kv, 14);
    CHECK_EQ_STR(g->kv[0].key, "general.alignment");
    const char *str;
    size_t len;
    CHECK(kiln__gguf_get_str(g, "general.architecture", &str, &len) && len == 5 && memcmp(str, "llama", 5) == 0);
    uint32_t u32;
    int32_t i32;
    uint64_t u64;
    float f;
    double d;
    bool b;
    CHECK(kiln__gguf_get_u32(g, "llama.block_count", &u32) && u32 == 2);
    CHECK(kiln__gguf_get_i32(g, "test.neg", &i32) && i32 == -5);
    CHECK(kiln__gguf_get_u64(g, "test.big", &u64) && u64 == UINT64_MAX - 1);
    CHECK(kiln__gguf_get_f32(g, "llama.rope.freq_base", &f) && f == 10000.5f);
    CHECK(kiln__gguf_get_bool(g, "tokenizer.ggml.add_bos_token", &b) && b);
    CHECK(kiln__gguf_get_i32(g, "test.i16", &i32) && i32 == -12345);
    CHECK(kiln__gguf_get_f64(g, "test.f64", &d) && d == f64);
    CHECK_EQ_INT(kiln__gguf_find_kv(g, "test.i16")->value.type, KILN_GGUF_I16);

    const struct kiln_gguf_arr *a = kiln__gguf_get_arr(g, "tokenizer.ggml.tokens");
    REQUIRE(a != NULL);
    CHECK_EQ_INT(a->count, 5);
    for (uint64_t i = 0; i < 5; i++) {
        CHECK(kiln__gguf_arr_str(a, i, &str, &len));
        CHECK(len == strlen(toks[i]) && memcmp(str, toks[i], len) == 0);
    }
    a = kiln__gguf_get_arr(g, "tokenizer.ggml.scores");
    REQUIRE(a != NULL);
    for (uint64_t i = 0; i < 5; i++) CHECK(kiln__gguf_arr_f32(a, i, &f) && f == scores[i]);
    a = kiln__gguf_get_arr(g, "test.flags");
    REQUIRE(a != NULL);
    for (uint64_t i = 0; i < 3; i++) CHECK(kiln__gguf_arr_bool(a, i, &b) && b == flags[i]);
    a = kiln__gguf_get_arr(g, "test.empty");
    CHECK(a && a->count == 0 && a->type == KILN_GGUF_U8);
    a = kiln__gguf_get_arr(g, "test.nested");
    REQUIRE(a != NULL);
    CHECK_EQ_INT(a->count, 3);
    const struct kiln_gguf_arr *s0 = kiln__gguf_arr_sub(a, 0), *s1 = kiln__gguf_arr_sub(a, 1),
                               *s2 = kiln__gguf_arr_sub(a, 2);
    REQUIRE(s0 && s1 && s2);
    int64_t x;
    CHECK(s0->count == 2 && kiln__gguf_arr_i64(s0, 1, &x) && x == 2);
    CHECK(s1->count == 0 && s1->type == KILN_GGUF_U16);
    CHECK(kiln__gguf_arr_str(s2, 0, &str, &len) && len == s.len && memcmp(str, s.ptr, len) == 0);

    CHECK_EQ_INT(g->n_tensors, NT);
    for (int i = 0; i < NT; i++) {
        const struct kiln_gguf_tensor *t = kiln__gguf_find_tensor(g, ts[i].name);
        REQUIRE(t != NULL);
        CHECK_EQ_INT(t->dtype, ts[i].dtype);
        CHECK_EQ_INT(t->n_dims, ts[i].n_dims);
        for (uint32_t k = 0; k < ts[i].n_dims; k++) CHECK_EQ_INT(t->ne[k], ts[i].ne[k]);
        CHECK_EQ_INT(t->nbytes, ts[i].nbytes);
        CHECK(memcmp(t->data, datas[i], ts[i].nbytes) == 0);
        CHECK_EQ_INT(((uintptr_t)((const uint8_t *)t->data - g->base)) % 128, 0);
        free(datas[i]);
    }
    kiln__gguf_free(g);
}

static void test_writer_refuses_misuse(void) {
    struct kiln_gguf_writer *w = NULL;
    REQUIRE(kiln__gguf_writer_new(&w) == KILN_OK);
    uint32_t one = 1;
    CHECK_EQ_INT(kiln__gguf_writer_value(w, KILN_GGUF_U32, &one), KILN_ERR_INVALID_ARG);
    CHECK_CONTAINS(kiln_last_error(), "a value without a key");
    CHECK_EQ_INT(kiln__gguf_writer_kv_u32(w, "a", 1), KILN_OK);
    CHECK_EQ_INT(kiln__gguf_writer_kv_u32(w, "a", 2), KILN_ERR_INVALID_ARG);
    CHECK_CONTAINS(kiln_last_error(), "duplicate key 'a'");
    CHECK_EQ_INT(kiln__gguf_writer_kv_u32(w, "", 2), KILN_ERR_INVALID_ARG);
    CHECK_EQ_INT(kiln__gguf_writer_kv_u32(w, "bad\xff", 2), KILN_ERR_INVALID_ARG);
    CHECK_CONTAINS(kiln_last_error(), "not valid UTF-8");
    CHECK_EQ_INT(kiln__gguf_writer_kv_u32(w, "general.alignment", 64), KILN_ERR_INVALID_ARG);
    CHECK_CONTAINS(kiln_last_error(), "set_alignment");
    CHECK_EQ_INT(kiln__gguf_writer_set_alignment(w, 48), KILN_ERR_INVALID_ARG);

    CHECK_EQ_INT(kiln__gguf_writer_key(w, "arr"), KILN_OK);
    CHECK_EQ_INT(kiln__gguf_writer_key(w, "other"), KILN_ERR_INVALID_ARG);
    CHECK_CONTAINS(kiln_last_error(), "not finished");
    CHECK_EQ_INT(kiln__gguf_writer_arr_begin(w, KILN_GGUF_U32, 1), KILN_OK);
    int32_t neg = -1;
    CHECK_EQ_INT(kiln__gguf_writer_value(w, KILN_GGUF_I32, &neg), KILN_ERR_INVALID_ARG);
    CHECK_CONTAINS(kiln_last_error(), "array element of the wrong type");
    CHECK_EQ_INT(kiln__gguf_writer_arr_end(w), KILN_ERR_INVALID_ARG);
    CHECK_CONTAINS(kiln_last_error(), "fewer array elements than declared");
    CHECK_EQ_INT(kiln__gguf_writer_write_file(w, stderr), KILN_ERR_INVALID_ARG);
    CHECK_EQ_INT(kiln__gguf_writer_value(w, KILN_GGUF_U32, &one), KILN_OK);
    CHECK_EQ_INT(kiln__gguf_writer_value(w, KILN_GGUF_U32, &one), KILN_ERR_INVALID_ARG);
    CHECK_CONTAINS(kiln_last_error(), "more array elements than declared");
    CHECK_EQ_INT(kiln__gguf_writer_arr_end(w), KILN_OK);
    CHECK_EQ_INT(kiln__gguf_writer_arr_end(w), KILN_ERR_INVALID_ARG);

    CHECK_EQ_INT(kiln__gguf_writer_key(w, "deep"), KILN_OK);
    for (int d = 0; d < KILN_GGUF_MAX_ARRAY_DEPTH; d++)
        CHECK_EQ_INT(kiln__gguf_writer_arr_begin(w, KILN_GGUF_ARRAY, 1), KILN_OK);
    CHECK_EQ_INT(kiln__gguf_writer_arr_begin(w, KILN_GGUF_U8, 0), KILN_ERR_INVALID_ARG);
    CHECK_CONTAINS(kiln_last_error(), "nested too deep");

    float data[4] = {0};
    uint64_t ne[2] = {4, 1};
    struct kiln_gguf_writer *w2 = NULL;
    REQUIRE(kiln__gguf_writer_new(&w2) == KILN_OK);
    CHECK_EQ_INT(kiln__gguf_writer_add_tensor(w2, "t", KILN_DTYPE_F32, 2, ne, data, 15), KILN_ERR_INVALID_ARG);
    CHECK_CONTAINS(kiln_last_error(), "data size does not match");
    CHECK_EQ_INT(kiln__gguf_writer_add_tensor(w2, "t", KILN_DTYPE_U8, 2, ne, data, 4), KILN_ERR_INVALID_ARG);
    CHECK_CONTAINS(kiln_last_error(), "no GGML type");
    CHECK_EQ_INT(kiln__gguf_writer_add_tensor(w2, "t", KILN_DTYPE_Q8_0, 2, ne, data, 16), KILN_ERR_INVALID_ARG);
    CHECK_CONTAINS(kiln_last_error(), "block size");
    CHECK_EQ_INT(kiln__gguf_writer_add_tensor(w2, "t", KILN_DTYPE_F32, 5, ne, data, 16), KILN_ERR_INVALID_ARG);
    CHECK_EQ_INT(kiln__gguf_writer_add_tensor(w2, "t", KILN_DTYPE_F32, 2, ne, data, 16), KILN_OK);
    CHECK_EQ_INT(kiln__gguf_writer_add_tensor(w2, "t", KILN_DTYPE_F32, 2, ne, data, 16), KILN_ERR_INVALID_ARG);
    CHECK_CONTAINS(kiln_last_error(), "duplicate tensor name 't'");
    CHECK_EQ_INT(kiln__gguf_writer_set_alignment(w2, 64), KILN_ERR_INVALID_ARG);
    CHECK_CONTAINS(kiln_last_error(), "before adding tensors");
    kiln__gguf_writer_free(w2);
    kiln__gguf_writer_free(w);
    kiln__gguf_writer_free(NULL);
}

int main(void) {
    RUN(test_round_trip_through_a_file);
    RUN(test_writer_refuses_misuse);
    return TEST_REPORT();
}
