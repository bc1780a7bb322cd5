/* tests/model/test_llm_weights_memory.c - weights copied into anonymous
 * memory (the default) against weights read through the file mapping
 * (use_mmap): the copy holds the same bytes (kiln__weights_to_memory, on
 * one thread and on a pool), and
 * a model loaded either way gives bit-identical logits for a prompt and the
 * token after it; a cancel from the progress callback leaves the tensors in
 * the mapping. Uses the bundled models/fortune-llama-f16.gguf. */
#include <stdlib.h>

#include "formats/weights.h"
#include "kiln/llm.h"
#include "test.h"

#define MODEL KILN_SOURCE_DIR "/models/fortune-llama-f16.gguf"

static int cancel_midway(uint64_t done, uint64_t total, void *user) {
    (void)user;
    return done > total / 2;
}

/* Copies on the calling thread and on pools of 2 and 3 threads (tensors of
 * odd sizes, most shorter than a page per thread): the same bytes as the
 * mapping, 64-byte aligned. */
static void test_copy_bytes(void) {
    struct kiln_weights *a = NULL;
    REQUIRE(kiln__weights_open(MODEL, &a) == KILN_OK);
    REQUIRE(a->n_tensors > 0);
    for (int threads = 1; threads <= 3; threads++) {
        struct kiln_weights *b = NULL;
        kiln_pool *pool = threads > 1 ? kiln__pool_create(threads) : NULL;
        REQUIRE(threads == 1 || pool);
        REQUIRE(kiln__weights_open(MODEL, &b) == KILN_OK);
        REQUIRE(a->n_tensors == b->n_tensors);
        /* a cancelled copy leaves every tensor where it was */
        const void *first = b->tensors[0].data;
        CHECK_EQ_INT(kiln__weights_to_memory(b, pool, cancel_midway, NULL), KILN_ERR_CANCELLED);
        CHECK(b->tensors[0].data == first);
        REQUIRE(kiln__weights_to_memory(b, pool, NULL, NULL) == KILN_OK);
        for (size_t i = 0; i < a->n_tensors; i++) {
            CHECK(a->tensors[i].data != b->tensors[i].data);
            CHECK((uintptr_t)b->tensors[i].data % 64 == 0);
            CHECK(a->tensors[i].nbytes == b->tensors[i].nbytes);
            CHECK(memcmp(a->tensors[i].data, b->tensors[i].data, a->tensors[i].nbytes) == 0);
        }
        kiln__weights_free(b);
        kiln__pool_free(pool);
    }
    kiln__weights_free(a);
}

static void test_same_logits(void) {
    kiln_llm *m[2] = {NULL, NULL};
    float *logits[2] = {NULL, NULL};
    for (int k = 0; k < 2; k++) {
        kiln_llm_params p = kiln_llm_default_params();
        p.n_threads = 2;
        p.n_ctx = 64;
        p.use_mmap = k == 1;
        REQUIRE(kiln_llm_load(MODEL, p, &m[k]) == KILN_OK);
        int32_t nv = kiln_llm_n_vocab(m[k]);
        logits[k] = malloc(2 * (size_t)nv * sizeof(float));
        REQUIRE(logits[k]);
        const int32_t prompt[5] = {1, 15, 27, 3, 42}, next = 9;
        REQUIRE(kiln_llm_eval(m[k], prompt, 5, 0, KILN_LOGITS_LAST, logits[k]) == KILN_OK);
        REQUIRE(kiln_llm_eval(m[k], &next, 1, 5, KILN_LOGITS_LAST, logits[k] + nv) == KILN_OK);
    }
    CHECK(memcmp(logits[0], logits[1], 2 * (size_t)kiln_llm_n_vocab(m[0]) * sizeof(float)) == 0);
    for (int k = 0; k < 2; k++) {
        free(logits[k]);
        kiln_llm_free(m[k]);
    }
}

int main(void) {
    RUN(test_copy_bytes);
    RUN(test_same_logits);
    return TEST_REPORT();
}
