/* tests/unit/test_gguf_malformed.c - handcrafted bad GGUF files, one defect
 * each: every one must be refused with KILN_ERR_FORMAT and its own message
 * (the test checks a distinctive part of kiln_last_error()), and every
 * allocation must be released (ASan's leak checker runs on this test). */
#include <stdlib.h>

#include "formats/gguf.h"
#include "kiln/kiln.h"
#include "test.h"

/* A file being built byte by byte. */
struct buf {
    uint8_t *d; /* bytes */
    size_t n;   /* used */
    size_t cap; /* allocated */
};

static void raw(struct buf *b, const void *p, size_t n) {
    if (b->n + n > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->n + n) cap *= 2;
        uint8_t *d = realloc(b->d, cap);
        if (!d) abort(); /* test harness: out of memory is fatal */
        b->d = d;
        b->cap = cap;
    }
    memcpy(b->d + b->n, p, n);
    b->n += n;
}

static void le(struct buf *b, uint64_t v, size_t n) {
    uint8_t x[8];
    for (size_t k = 0; k < n; k++) x[k] = (uint8_t)(v >> (8 * k));
    raw(b, x, n);
}
static void u8(struct buf *b, uint8_t v) { le(b, v, 1); }
static void u32(struct buf *b, uint32_t v) { le(b, v, 4); }
static void u64(struct buf *b, uint64_t v) { le(b, v, 8); }
static void str(struct buf *b, const char *s) {
    u64(b, strlen(s));
    raw(b, s, strlen(s));
}
static void header(struct buf *b, uint32_t version, uint64_t n_tensors, uint64_t n_kv) {
    raw(b, "GGUF", 4);
    u32(b, version);
    u64(b, n_tensors);
    u64(b, n_kv);
}
/* A u32 pair. */
static void kv_u32(struct buf *b, const char *key, uint32_t v) {
    str(b, key);
    u32(b, KILN_GGUF_U32);
    u32(b, v);
}
/* One tensor info with n_dims dims from ne. */
static void tinfo(struct buf *b, const char *name, uint32_t n_dims, const uint64_t *ne, uint32_t type,
                  uint64_t offset) {
    str(b, name);
    u32(b, n_dims);
    for (uint32_t d = 0; d < n_dims; d++) u64(b, ne[d]);
    u32(b, type);
    u64(b, offset);
}
/* Zeros up to a multiple of `align`, then `n` data bytes. */
static void data(struct buf *b, uint32_t align, size_t n) {
    while (b->n % align) u8(b, 0);
    for (size_t i = 0; i < n; i++) u8(b, (uint8_t)i);
}

/* Parse b's bytes from a buffer of exactly that size; expect a refusal whose
 * message contains `want`. */
static void expect_reject(struct buf *b, const char *want) {
    uint8_t *copy = malloc(b->n ? b->n : 1);
    if (!copy) abort();
    if (b->n) memcpy(copy, b->d, b->n);
    struct kiln_gguf *g = (struct kiln_gguf *)&g; /* must be reset to NULL */
    kiln_status st = kiln__gguf_parse(copy, b->n, &g);
    CHECK_EQ_INT(st, KILN_ERR_FORMAT);
    CHECK(g == NULL);
    CHECK_CONTAINS(kiln_last_error(), "gguf: ");
    CHECK_CONTAINS(kiln_last_error(), want);
    if (st == KILN_OK) kiln__gguf_free(g);
    free(copy);
    free(b->d);
    *b = (struct buf){0};
}

/* A valid minimal file, to show the builders make good files. */
static void test_builder_makes_valid_files(void) {
    struct buf b = {0};
    uint64_t ne[2] = {4, 2};
    header(&b, 3, 1, 1);
    kv_u32(&b, "a", 1);
    tinfo(&b, "t", 2, ne, 0, 0);
    data(&b, 32, 32);
    struct kiln_gguf *g = NULL;
    CHECK_EQ_INT(kiln__gguf_parse(b.d, b.n, &g), KILN_OK);
    if (g) {
        CHECK_EQ_INT(g->n_tensors, 1);
        CHECK_EQ_INT(g->tensors[0].nbytes, 32);
        CHECK_EQ_INT(((const uint8_t *)g->tensors[0].data)[31], 31);
    }
    kiln__gguf_free(g);
    free(b.d);
}

static void test_header_defects(void) {
    struct buf b = {0};
    expect_reject(&b, "file is empty");

    raw(&b, "GGML", 4);
    u32(&b, 3);
    expect_reject(&b, "bad magic");

    raw(&b, "GGUF", 4);
    u32(&b, 3);
    u64(&b, 0);
    expect_reject(&b, "truncated header: 16 bytes, need 24");

    header(&b, 1, 0, 0);
    expect_reject(&b, "version 1 is not supported");

    header(&b, 4, 0, 0);
    expect_reject(&b, "unsupported version 4");

    header(&b, 0x03000000, 0, 0);
    expect_reject(&b, "big-endian GGUF");

    header(&b, 3, 0, UINT64_MAX / 2);
    expect_reject(&b, "metadata count 9223372036854775807 is too large");

    header(&b, 3, 1ull << 40, 0);
    expect_reject(&b, "tensor count 1099511627776 is too large");
}

static void test_metadata_defects(void) {
    struct buf b = {0};

    header(&b, 3, 0, 1); /* key length past the end */
    u64(&b, 1000);
    raw(&b, "abc", 3);
    u32(&b, 0);
    expect_reject(&b, "string length 1000 at offset 24 runs past the end");

    header(&b, 3, 0, 1); /* string value length past the end */
    str(&b, "name");
    u32(&b, KILN_GGUF_STRING);
    u64(&b, 1ull << 62);
    raw(&b, "xy", 2);
    expect_reject(&b, "the string value of 'name'");

    header(&b, 3, 0, 1);
    u64(&b, 3);
    raw(&b, "a\xff" "b", 3);
    u32(&b, KILN_GGUF_U8);
    u8(&b, 0);
    expect_reject(&b, "key at offset 24 is not valid UTF-8");

    header(&b, 3, 0, 1); /* overlong encoding of '/' */
    u64(&b, 2);
    raw(&b, "\xc0\xaf", 2);
    u32(&b, KILN_GGUF_U8);
    u8(&b, 0);
    expect_reject(&b, "is not valid UTF-8");

    header(&b, 3, 0, 1);
    u64(&b, 3);
    raw(&b, "a\0b", 3);
    u32(&b, KILN_GGUF_U8);
    u8(&b, 0);
    expect_reject(&b, "key at offset 24 contains a NUL byte");

    header(&b, 3, 0, 1);
    str(&b, "");
    u32(&b, KILN_GGUF_U32);
    u32(&b, 0);
    u8(&b, 0);
    expect_reject(&b, "empty key");

    header(&b, 3, 0, 1); /* key longer than 65535 bytes */
    u64(&b, 70000);
    for (int i = 0; i < 70000; i++) u8(&b, 'k');
    u32(&b, KILN_GGUF_U8);
    u8(&b, 0);
    expect_reject(&b, "is 70000 bytes long (limit 65535)");

    header(&b, 3, 0, 1);
    str(&b, "k");
    u32(&b, 13);
    u64(&b, 0);
    expect_reject(&b, "unknown value type 13 at offset 33 in the value type of 'k'");

    header(&b, 3, 0, 1); /* unknown element type */
    str(&b, "arr");
    u32(&b, KILN_GGUF_ARRAY);
    u32(&b, 0xffffffffu);
    u64(&b, 0);
    expect_reject(&b, "unknown value type 4294967295");

    header(&b, 3, 0, 1); /* arrays nested 9 deep */
    str(&b, "bomb");
    u32(&b, KILN_GGUF_ARRAY);
    for (int d = 0; d < 9; d++) {
        u32(&b, KILN_GGUF_ARRAY);
        u64(&b, 1);
    }
    for (int i = 0; i < 64; i++) u8(&b, 0);
    expect_reject(&b, "arrays nested deeper than 8");

    header(&b, 3, 0, 1); /* array length larger than the bytes left */
    str(&b, "big");
    u32(&b, KILN_GGUF_ARRAY);
    u32(&b, KILN_GGUF_U32);
    u64(&b, 1ull << 61);
    u32(&b, 0);
    expect_reject(&b, "array length 2305843009213693952 at offset 43 of 'big' is too large");

    header(&b, 3, 0, 1); /* strings in an array run out */
    str(&b, "toks");
    u32(&b, KILN_GGUF_ARRAY);
    u32(&b, KILN_GGUF_STRING);
    u64(&b, 2);
    str(&b, "ok");
    u64(&b, 5);
    raw(&b, "abc", 3);
    expect_reject(&b, "in an array string of 'toks'");

    header(&b, 3, 0, 1);
    str(&b, "flag");
    u32(&b, KILN_GGUF_BOOL);
    u8(&b, 2);
    expect_reject(&b, "bool value 2 at offset 40 of 'flag' is not 0 or 1");

    header(&b, 3, 0, 1);
    str(&b, "flags");
    u32(&b, KILN_GGUF_ARRAY);
    u32(&b, KILN_GGUF_BOOL);
    u64(&b, 3);
    raw(&b, "\x01\x00\x07", 3);
    expect_reject(&b, "bool array element 2 of 'flags'");

    header(&b, 3, 0, 3);
    kv_u32(&b, "a", 1);
    kv_u32(&b, "b", 2);
    kv_u32(&b, "a", 3);
    expect_reject(&b, "duplicate key 'a' (metadata pairs 0 and 2)");

    header(&b, 3, 0, 1); /* a value cut short */
    str(&b, "n");
    u32(&b, KILN_GGUF_U64);
    u32(&b, 0);
    expect_reject(&b, "truncated: the value of 'n' needs 8 bytes at offset 37");
}

static void test_alignment_defects(void) {
    struct buf b = {0};
    header(&b, 3, 0, 1);
    kv_u32(&b, "general.alignment", 48);
    expect_reject(&b, "general.alignment 48 is not a power of two");

    header(&b, 3, 0, 1);
    kv_u32(&b, "general.alignment", 0);
    expect_reject(&b, "general.alignment 0 is not a power of two");

    header(&b, 3, 0, 1);
    kv_u32(&b, "general.alignment", 1u << 21);
    expect_reject(&b, "general.alignment 2097152 is larger than 1048576");

    header(&b, 3, 0, 1); /* any integer type is taken, but not a negative value */
    str(&b, "general.alignment");
    u32(&b, KILN_GGUF_I32);
    u32(&b, (uint32_t)-64);
    expect_reject(&b, "general.alignment -64 is not positive");

    header(&b, 3, 0, 1);
    str(&b, "general.alignment");
    u32(&b, KILN_GGUF_STRING);
    str(&b, "32");
    expect_reject(&b, "general.alignment has type string, expected an integer");
}

static void test_tensor_defects(void) {
    struct buf b = {0};
    uint64_t ne[5] = {32, 2, 1, 1, 1};

    header(&b, 3, 1, 0);
    tinfo(&b, "t", 5, ne, 0, 0);
    expect_reject(&b, "tensor 't' has 5 dimensions (must be 1 to 4)");

    header(&b, 3, 1, 0);
    tinfo(&b, "t", 0, ne, 0, 0);
    u64(&b, 0);
    expect_reject(&b, "tensor 't' has 0 dimensions");

    uint64_t zero[2] = {4, 0};
    header(&b, 3, 1, 0);
    tinfo(&b, "t", 2, zero, 0, 0);
    expect_reject(&b, "tensor 't' dimension 1 is zero");

    uint64_t neg[2] = {4, (uint64_t)-3};
    header(&b, 3, 1, 0);
    tinfo(&b, "t", 2, neg, 0, 0);
    expect_reject(&b, "dimension 1 is 18446744073709551613 (negative as int64)");

    uint64_t huge[3] = {1ull << 31, 1ull << 31, 4};
    header(&b, 3, 1, 0);
    tinfo(&b, "t", 3, huge, 0, 0);
    expect_reject(&b, "tensor 't' element count overflows int64");

    uint64_t big[2] = {1ull << 31, 1ull << 31}; /* 2^62 F64 elements = 2^65 bytes */
    header(&b, 3, 1, 0);
    tinfo(&b, "t", 2, big, 28, 0);
    expect_reject(&b, "tensor 't' byte size overflows");

    header(&b, 3, 1, 0);
    tinfo(&b, "t", 2, ne, 99, 0);
    expect_reject(&b, "tensor 't' has unknown ggml type 99");

    uint64_t odd[2] = {33, 2};
    header(&b, 3, 1, 0);
    tinfo(&b, "q", 2, odd, 8, 0);
    expect_reject(&b, "tensor 'q' row length 33 is not a multiple of the Q8_0 block size 32");

    header(&b, 3, 1, 0);
    tinfo(&b, "t", 2, ne, 0, 16);
    data(&b, 32, 512);
    expect_reject(&b, "tensor 't' data offset 16 is not a multiple of the alignment 32");

    header(&b, 3, 1, 1); /* alignment 64 applies to the offsets */
    kv_u32(&b, "general.alignment", 64);
    tinfo(&b, "t", 2, ne, 0, 32);
    data(&b, 64, 512);
    expect_reject(&b, "tensor 't' data offset 32 is not a multiple of the alignment 64");

    header(&b, 3, 1, 0); /* 256 bytes needed, 255 present */
    tinfo(&b, "t", 2, ne, 0, 0);
    data(&b, 32, 255);
    expect_reject(&b, "tensor 't' data [0, +256) ends past the end of the file (the data section has 255 bytes)");

    header(&b, 3, 1, 0); /* offset far past the end */
    tinfo(&b, "t", 2, ne, 0, 1ull << 60);
    data(&b, 32, 256);
    expect_reject(&b, "ends past the end of the file");

    header(&b, 3, 1, 0); /* data section would start past the end */
    tinfo(&b, "t", 1, ne, 0, 0);
    expect_reject(&b, "data section starts at offset 64, past the end of the file (57 bytes)");

    header(&b, 3, 2, 0);
    tinfo(&b, "a", 2, ne, 0, 0);
    tinfo(&b, "b", 2, ne, 0, 224); /* a is [0, 256) */
    data(&b, 32, 512);
    expect_reject(&b, "tensors 'a' [0, 256) and 'b' [224, 480) overlap");

    header(&b, 3, 2, 0);
    tinfo(&b, "same", 2, ne, 0, 0);
    tinfo(&b, "same", 2, ne, 0, 256);
    data(&b, 32, 512);
    expect_reject(&b, "duplicate tensor name 'same' (tensors 0 and 1)");

    header(&b, 3, 1, 0);
    tinfo(&b, "bad\xed\xa0\x80", 2, ne, 0, 0); /* a UTF-16 surrogate */
    data(&b, 32, 256);
    expect_reject(&b, "tensor name at offset 24 is not valid UTF-8");

    header(&b, 3, 1, 0); /* info cut inside the dims */
    str(&b, "cut.tensor.with.a.long.name");
    u32(&b, 2);
    u64(&b, 4);
    u32(&b, 0);
    expect_reject(&b, "truncated: a dimension of 'cut.tensor.with.a.long.name' needs 8 bytes");
}

/* Adjacent tensors, an unaligned data start and a file with only metadata are fine. */
static void test_edge_cases_accepted(void) {
    struct buf b = {0};
    uint64_t ne[1] = {8};
    header(&b, 3, 2, 0);
    tinfo(&b, "a", 1, ne, 0, 0);
    tinfo(&b, "b", 1, ne, 0, 32); /* exactly after a */
    data(&b, 32, 64);
    struct kiln_gguf *g = NULL;
    CHECK_EQ_INT(kiln__gguf_parse(b.d, b.n, &g), KILN_OK);
    CHECK(g && kiln__gguf_find_tensor(g, "b") == &g->tensors[1]);
    kiln__gguf_free(g);
    free(b.d);

    b = (struct buf){0};
    header(&b, 2, 0, 1); /* no tensors: no padding needed after the metadata */
    kv_u32(&b, "x", 5);
    g = NULL;
    CHECK_EQ_INT(kiln__gguf_parse(b.d, b.n, &g), KILN_OK);
    uint32_t x = 0;
    CHECK(g && kiln__gguf_get_u32(g, "x", &x) && x == 5);
    kiln__gguf_free(g);
    free(b.d);
}

/* Files: a missing path and an empty file. */
static void test_open_errors(void) {
    struct kiln_gguf *g = (struct kiln_gguf *)&g;
    CHECK_EQ_INT(kiln__gguf_open(KILN_TEST_TMP "/does-not-exist.gguf", &g), KILN_ERR_NOT_FOUND);
    CHECK(g == NULL);
    CHECK_CONTAINS(kiln_last_error(), "does-not-exist.gguf");
    const char *path = KILN_TEST_TMP "/empty.gguf";
    FILE *f = fopen(path, "wb");
    REQUIRE(f != NULL);
    fclose(f);
    CHECK_EQ_INT(kiln__gguf_open(path, &g), KILN_ERR_FORMAT);
    CHECK_CONTAINS(kiln_last_error(), "gguf: file is empty (in '");
    CHECK_EQ_INT(kiln__gguf_open(KILN_TEST_TMP, &g), KILN_ERR_IO);
    CHECK_CONTAINS(kiln_last_error(), "is not a regular file");
    CHECK_EQ_INT(kiln__gguf_parse(NULL, 0, NULL), KILN_ERR_INVALID_ARG);
    kiln__gguf_free(NULL);
}

int main(void) {
    RUN(test_builder_makes_valid_files);
    RUN(test_header_defects);
    RUN(test_metadata_defects);
    RUN(test_alignment_defects);
    RUN(test_tensor_defects);
    RUN(test_edge_cases_accepted);
    RUN(test_open_errors);
    return TEST_REPORT();
}
