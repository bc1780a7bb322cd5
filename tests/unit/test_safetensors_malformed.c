/* tests/unit/test_safetensors_malformed.c - handcrafted malformed safetensors
 * files: each defect is rejected with its own status and message. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/error.h"
#include "formats/safetensors.h"
#include "test.h"

/* One malformed file: a header text and the data bytes after it (zeros). */
struct bad_case {
    const char *what;      /* the defect */
    const char *header;    /* JSON header text (NULL: use raw) */
    size_t data_len;       /* bytes of data after the header */
    kiln_status status;    /* expected status */
    const char *message;   /* distinctive part of kiln_last_error() */
};

static const struct bad_case cases[] = {
    {"header not JSON", "{\"a\": {\"dtype\": \"F32\",", 0, KILN_ERR_FORMAT, "header is not valid JSON"},
    {"empty header", "", 0, KILN_ERR_FORMAT, "header is not valid JSON"},
    {"invalid UTF-8 in header", "{\"\xff\": 1}", 0, KILN_ERR_FORMAT, "header is not valid JSON"},
    {"header is an array", "[1, 2]", 0, KILN_ERR_FORMAT, "header is a JSON array, not an object"},
    {"header is a string", "\"x\"", 0, KILN_ERR_FORMAT, "header is a JSON string, not an object"},
    {"duplicate keys",
     "{\"a\": {\"dtype\": \"U8\", \"shape\": [1], \"data_offsets\": [0, 1]},"
     " \"a\": {\"dtype\": \"U8\", \"shape\": [1], \"data_offsets\": [1, 2]}}",
     2, KILN_ERR_FORMAT, "duplicate object key"},
    {"entry not an object", "{\"a\": 5}", 0, KILN_ERR_FORMAT, "entry 'a' is a JSON number, not an object"},
    {"missing dtype", "{\"a\": {\"shape\": [1], \"data_offsets\": [0, 4]}}", 4, KILN_ERR_FORMAT,
     "tensor 'a' has no dtype"},
    {"dtype not a string", "{\"a\": {\"dtype\": 7, \"shape\": [1], \"data_offsets\": [0, 4]}}", 4,
     KILN_ERR_FORMAT, "tensor 'a' dtype is not a string"},
    {"unknown dtype", "{\"a\": {\"dtype\": \"Q7\", \"shape\": [1], \"data_offsets\": [0, 4]}}", 4,
     KILN_ERR_FORMAT, "tensor 'a' has unknown dtype 'Q7'"},
    {"dtype kiln lacks", "{\"a\": {\"dtype\": \"U16\", \"shape\": [2], \"data_offsets\": [0, 4]}}", 4,
     KILN_ERR_UNSUPPORTED, "has dtype U16, which kiln does not support"},
    {"missing shape", "{\"a\": {\"dtype\": \"F32\", \"data_offsets\": [0, 4]}}", 4, KILN_ERR_FORMAT,
     "tensor 'a' has no shape"},
    {"shape not an array", "{\"a\": {\"dtype\": \"F32\", \"shape\": 1, \"data_offsets\": [0, 4]}}", 4,
     KILN_ERR_FORMAT, "tensor 'a' shape is not an array"},
    {"negative dim", "{\"a\": {\"dtype\": \"F32\", \"shape\": [2, -1], \"data_offsets\": [0, 4]}}", 4,
     KILN_ERR_FORMAT, "tensor 'a' shape[1] is negative (-1)"},
    {"non-integer dim", "{\"a\": {\"dtype\": \"F32\", \"shape\": [\"1\"], \"data_offsets\": [0, 4]}}", 4,
     KILN_ERR_FORMAT, "tensor 'a' shape[0] is not an integer"},
    {"fractional dim", "{\"a\": {\"dtype\": \"F32\", \"shape\": [1.5], \"data_offsets\": [0, 4]}}", 4,
     KILN_ERR_FORMAT, "tensor 'a' shape[0] is not an integer"},
    {"overflowing dims",
     "{\"a\": {\"dtype\": \"F32\", \"shape\": [4294967296, 4294967296], \"data_offsets\": [0, 4]}}", 4,
     KILN_ERR_FORMAT, "tensor 'a' shape overflows 64 bits"},
    {"overflowing bytes",
     "{\"a\": {\"dtype\": \"F64\", \"shape\": [2305843009213693952], \"data_offsets\": [0, 4]}}", 4,
     KILN_ERR_FORMAT, "tensor 'a' shape overflows 64 bits"},
    {"too many dims",
     "{\"a\": {\"dtype\": \"U8\", \"shape\": [1,1,1,1,1,1,1,1,1], \"data_offsets\": [0, 1]}}", 1,
     KILN_ERR_UNSUPPORTED, "tensor 'a' has 9 dimensions, more than 8"},
    {"missing data_offsets", "{\"a\": {\"dtype\": \"F32\", \"shape\": [1]}}", 4, KILN_ERR_FORMAT,
     "tensor 'a' has no data_offsets"},
    {"data_offsets of one", "{\"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [4]}}", 4,
     KILN_ERR_FORMAT, "data_offsets is not two non-negative integers"},
    {"negative offset", "{\"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [-4, 0]}}", 4,
     KILN_ERR_FORMAT, "data_offsets is not two non-negative integers"},
    {"offsets reversed", "{\"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [4, 0]}}", 4,
     KILN_ERR_FORMAT, "tensor 'a' data_offsets are reversed (begin 4 > end 0)"},
    {"offsets past the data end", "{\"a\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 8]}}", 4,
     KILN_ERR_FORMAT, "tensor 'a' data ends at byte 8, past the end of the data (4 bytes)"},
    {"size not shape x dtype", "{\"a\": {\"dtype\": \"F32\", \"shape\": [3], \"data_offsets\": [0, 8]}}", 8,
     KILN_ERR_FORMAT, "tensor 'a' spans 8 bytes but shape [3] of F32 needs 12"},
    {"overlapping tensors",
     "{\"a\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 8]},"
     " \"b\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [4, 12]}}",
     12, KILN_ERR_FORMAT, "tensors 'a' and 'b' overlap"},
    {"same bytes twice",
     "{\"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 4]},"
     " \"b\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 4]}}",
     4, KILN_ERR_FORMAT, "tensors 'a' and 'b' overlap"},
    {"hole between tensors",
     "{\"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 4]},"
     " \"b\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [8, 12]}}",
     12, KILN_ERR_FORMAT, "4 bytes before tensor 'b' belong to no tensor (a hole)"},
    {"bytes after the last tensor", "{\"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 4]}}", 8,
     KILN_ERR_FORMAT, "4 bytes after the last tensor belong to no tensor"},
    {"data without tensors", "{}", 3, KILN_ERR_FORMAT, "3 bytes after the last tensor"},
    {"metadata value not a string", "{\"__metadata__\": {\"format\": \"pt\", \"n\": 1}}", 0, KILN_ERR_FORMAT,
     "__metadata__ value of 'n' is a JSON number, not a string"},
    {"metadata not an object", "{\"__metadata__\": [\"pt\"]}", 0, KILN_ERR_FORMAT,
     "__metadata__ is a JSON array, not an object"},
    {"NUL inside a name", "{\"a\\u0000b\": {\"dtype\": \"U8\", \"shape\": [1], \"data_offsets\": [0, 1]}}", 1,
     KILN_ERR_FORMAT, "header is not valid JSON"},
};

/* u64 length + header + data_len zero bytes, malloc'd. */
static uint8_t *make_file(const char *header, size_t data_len, size_t *size) {
    size_t h = strlen(header);
    *size = 8 + h + data_len;
    uint8_t *buf = calloc(1, *size);
    if (!buf) return NULL;
    for (int i = 0; i < 8; i++) buf[i] = (uint8_t)((uint64_t)h >> (8 * i));
    memcpy(buf + 8, header, h);
    return buf;
}

static void test_each_defect_has_its_message(void) {
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t size;
        uint8_t *buf = make_file(cases[i].header, cases[i].data_len, &size);
        REQUIRE(buf != NULL);
        struct kiln_safetensors *st = (void *)1;
        kiln__clear_error();
        kiln_status s = kiln__safetensors_parse(buf, size, &st);
        if (s != cases[i].status || !strstr(kiln_last_error(), cases[i].message))
            fprintf(stderr, "  case '%s': status %s, message \"%s\"\n", cases[i].what, kiln_status_str(s),
                    kiln_last_error());
        CHECK_EQ_INT(s, cases[i].status);
        CHECK_CONTAINS(kiln_last_error(), cases[i].message);
        CHECK(st == NULL);
        free(buf);
    }
}

/* The framing defects: before any JSON is read. */
static void test_header_length_defects(void) {
    struct kiln_safetensors *st = NULL;
    uint8_t buf[64] = {0};

    /* Fewer than 8 bytes: the length itself is truncated. */
    CHECK_EQ_INT(kiln__safetensors_parse(buf, 5, &st), KILN_ERR_FORMAT);
    CHECK_CONTAINS(kiln_last_error(), "file is 5 bytes, too short for the 8-byte header length");
    CHECK_EQ_INT(kiln__safetensors_parse(NULL, 0, &st), KILN_ERR_FORMAT);
    CHECK_CONTAINS(kiln_last_error(), "file is 0 bytes");

    /* A length that runs past the end of the file. */
    buf[0] = 100;
    memcpy(buf + 8, "{}", 2);
    CHECK_EQ_INT(kiln__safetensors_parse(buf, 10, &st), KILN_ERR_FORMAT);
    CHECK_CONTAINS(kiln_last_error(), "header length 100 runs past the end of the file (2 bytes follow it)");

    /* An absurd length (2^62) is refused before anything is allocated. */
    memset(buf, 0, 8);
    buf[7] = 0x40;
    CHECK_EQ_INT(kiln__safetensors_parse(buf, sizeof buf, &st), KILN_ERR_TOO_LARGE);
    CHECK_CONTAINS(kiln_last_error(), "header length 4611686018427387904 is over the limit of 100000000 bytes");
    /* Just over the limit. */
    uint64_t n = KILN_ST_MAX_HEADER + 1ull;
    for (int i = 0; i < 8; i++) buf[i] = (uint8_t)(n >> (8 * i));
    CHECK_EQ_INT(kiln__safetensors_parse(buf, sizeof buf, &st), KILN_ERR_TOO_LARGE);
    CHECK(st == NULL);
    CHECK_EQ_INT(kiln__safetensors_parse(buf, sizeof buf, NULL), KILN_ERR_INVALID_ARG);
}

/* Opening a malformed file names the file in front of the defect. */
static void test_open_names_the_file(void) {
    mkdir(KILN_TEST_TMP "/safetensors", 0755);
    const char *path = KILN_TEST_TMP "/safetensors/bad.safetensors";
    size_t size;
    uint8_t *buf = make_file(cases[0].header, 0, &size);
    REQUIRE(buf != NULL);
    FILE *f = fopen(path, "wb");
    REQUIRE(f != NULL);
    fwrite(buf, 1, size, f);
    fclose(f);
    free(buf);
    struct kiln_safetensors *st = NULL;
    CHECK_EQ_INT(kiln__safetensors_open(path, &st), KILN_ERR_FORMAT);
    CHECK_CONTAINS(kiln_last_error(), "bad.safetensors: safetensors: header is not valid JSON");
    CHECK_EQ_INT(kiln__safetensors_open(KILN_TEST_TMP "/safetensors", &st), KILN_ERR_IO);
    CHECK_CONTAINS(kiln_last_error(), "is not a regular file");
    CHECK(st == NULL);
}

/* Valid edge cases the checks must not reject. */
static void test_valid_edges_accepted(void) {
    static const char *const ok[] = {
        "{}",
        "{\"__metadata__\": {}}      ",
        "{\"s\": {\"dtype\": \"F32\", \"shape\": [], \"data_offsets\": [0, 4]}}",
        ("{\"z\": {\"dtype\": \"F32\", \"shape\": [0, 7], \"data_offsets\": [0, 0]},"
         " \"s\": {\"dtype\": \"F32\", \"shape\": [], \"data_offsets\": [0, 4], \"extra\": 1}}"),
    };
    const size_t data[] = {0, 0, 4, 4};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        size_t size;
        uint8_t *buf = make_file(ok[i], data[i], &size);
        REQUIRE(buf != NULL);
        struct kiln_safetensors *st = NULL;
        kiln_status s = kiln__safetensors_parse(buf, size, &st);
        if (s != KILN_OK) fprintf(stderr, "  case %zu: %s\n", i, kiln_last_error());
        CHECK_EQ_INT(s, KILN_OK);
        kiln__safetensors_free(st);
        free(buf);
    }
}

int main(void) {
    RUN(test_each_defect_has_its_message);
    RUN(test_header_length_defects);
    RUN(test_open_names_the_file);
    RUN(test_valid_edges_accepted);
    return TEST_REPORT();
}
