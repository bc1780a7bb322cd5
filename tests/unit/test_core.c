/* tests/unit/test_core.c - status strings, errors, logging, allocation,
 * CPU detection and the thread pool. */
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>

#include "core/alloc.h"
#include "core/cpu.h"
#include "core/error.h"
#include "core/log.h"
#include "core/threadpool.h"
#include "kiln/kiln.h"
#include "test.h"

static void test_status_and_version(void) {
    CHECK_EQ_STR(kiln_status_str(KILN_OK), "success");
    CHECK_EQ_STR(kiln_status_str(KILN_ERR_FORMAT), "malformed file");
    for (int i = 0; i < KILN_STATUS_COUNT; i++) CHECK(kiln_status_str((kiln_status)i)[0] != '\0');
    CHECK_EQ_STR(kiln_version(), KILN_VERSION_STRING);
    CHECK_EQ_INT(KILN_VERSION_NUMBER, (KILN_VERSION_MAJOR << 16) | (KILN_VERSION_MINOR << 8));
}

static void test_last_error_is_recorded(void) {
    kiln__clear_error();
    CHECK_EQ_STR(kiln_last_error(), "");
    kiln_status st = kiln__fail(KILN_ERR_IO, "cannot open %s: %d", "x.gguf", 2);
    CHECK_EQ_INT(st, KILN_ERR_IO);
    CHECK_EQ_STR(kiln_last_error(), "cannot open x.gguf: 2");
}

static void test_log_levels_and_json(void) {
    char *buf = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&buf, &len);
    REQUIRE(mem != NULL);
    kiln__log_set_stream(mem);
    kiln__log_set_level(KILN_LOG_WARN);
    KILN_LOG_INFO("dropped");
    kiln__log_set_format(KILN_LOG_JSON);
    KILN_LOG_WARN("quote \" and\nnewline");
    kiln__log_set_format(KILN_LOG_TEXT);
    KILN_LOG_ERROR("plain %d", 7);
    kiln__log_set_stream(NULL);
    fclose(mem);
    CHECK(strstr(buf, "dropped") == NULL);
    CHECK_CONTAINS(buf, "\"level\":\"warn\",\"msg\":\"quote \\\" and\\nnewline\"}");
    CHECK_CONTAINS(buf, "ERROR plain 7");
    free(buf);
    CHECK_EQ_INT(kiln__log_level_from_name("debug"), KILN_LOG_DEBUG);
    CHECK_EQ_INT(kiln__log_level_from_name("loud"), -1);
    kiln__log_set_level(KILN_LOG_INFO);
}

static void test_aligned_and_huge_alloc(void) {
    void *p = kiln__aligned_alloc(1000, KILN_ALIGN);
    REQUIRE(p != NULL);
    CHECK(((uintptr_t)p % KILN_ALIGN) == 0);
    memset(p, 1, 1000);
    kiln__aligned_free(p);
    CHECK(kiln__aligned_alloc(0, 64) == NULL);
    CHECK(kiln__aligned_alloc(16, 48) == NULL); /* not a power of two */
    kiln__aligned_free(NULL);

    size_t n = 5u << 20;
    unsigned char *h = kiln__huge_alloc(n);
    REQUIRE(h != NULL);
    CHECK(((uintptr_t)h % (2u << 20)) == 0);
    CHECK(h[0] == 0 && h[n - 1] == 0);
    h[n - 1] = 7;
    kiln__huge_free(h, n);
    CHECK(kiln__huge_alloc(SIZE_MAX) == NULL);
    size_t out;
    CHECK(kiln__mul_overflows(SIZE_MAX / 2, 3, &out));
    CHECK(!kiln__mul_overflows(1000, 3, &out) && out == 3000);
}

static void test_cpu_features_consistent(void) {
    const kiln_cpu_features *f = kiln__cpu();
    /* Wider features imply the narrower ones they build on. */
    if (f->avx2) CHECK(f->avx);
    if (f->fma) CHECK(f->avx);
    if (f->avx512bw || f->avx512vl || f->avx512vnni || f->avx512bf16) CHECK(f->avx512f);
    CHECK(kiln__cpu() == f);
    CHECK(kiln__cpu_count() >= 1);
    char desc[256];
    kiln__cpu_describe(desc, sizeof desc);
    if (f->avx2) CHECK_CONTAINS(desc, "avx2");
}

/* Each thread adds its share of 1..n into the sum. */
struct sum_job {
    int n;               /* numbers to add */
    atomic_llong sum;    /* result */
    atomic_int calls;    /* how many threads ran */
};

static void sum_part(void *ctx, int ith, int nth) {
    struct sum_job *job = ctx;
    long long local = 0;
    for (int i = ith; i < job->n; i += nth) local += i + 1;
    atomic_fetch_add(&job->sum, local);
    atomic_fetch_add(&job->calls, 1);
}

static void test_thread_pool_runs_all_threads(void) {
    for (int threads = 1; threads <= 4; threads++) {
        kiln_pool *pool = kiln__pool_create(threads);
        REQUIRE(pool != NULL);
        CHECK_EQ_INT(kiln__pool_size(pool), threads);
        /* Many runs in a row: the wake/finish handshake must not lose one. */
        for (int rep = 0; rep < 300; rep++) {
            struct sum_job job = {.n = 1000 + rep};
            kiln__pool_run(pool, sum_part, &job);
            long long n = job.n;
            CHECK_EQ_INT(atomic_load(&job.sum), n * (n + 1) / 2);
            CHECK_EQ_INT(atomic_load(&job.calls), threads);
        }
        kiln__pool_free(pool);
    }
    kiln_pool *def = kiln__pool_create(0);
    REQUIRE(def != NULL);
    CHECK_EQ_INT(kiln__pool_size(def), kiln__cpu_count());
    kiln__pool_free(def);
    kiln__pool_free(NULL);
}

int main(void) {
    RUN(test_status_and_version);
    RUN(test_last_error_is_recorded);
    RUN(test_log_levels_and_json);
    RUN(test_aligned_and_huge_alloc);
    RUN(test_cpu_features_consistent);
    RUN(test_thread_pool_runs_all_threads);
    return TEST_REPORT();
}
