/* tests/unit/test_threadpool.c - the thread pool under stress: many short
 * runs back to back (workers spinning), runs spaced out so workers and the
 * caller fall asleep between them (the sleep/wake handshake), every thread
 * index called exactly once per run, each run's writes visible to the
 * caller when kiln__pool_run returns, and pools created and freed in a loop
 * with and without runs. */
#include <stdatomic.h>
#include <time.h>

#include "core/threadpool.h"
#include "test.h"

/* What the threads of one stress pool share. */
struct stress {
    int n;                 /* threads expected */
    int round;             /* run number the caller set before this run */
    int seen[8];           /* per thread index: the last round it saw */
    atomic_int calls;      /* calls of this run */
    int bad;               /* a thread saw a wrong nth or round */
};

static void stress_part(void *ctx, int ith, int nth) {
    struct stress *s = ctx;
    if (nth != s->n || ith < 0 || ith >= nth || s->seen[ith] != s->round - 1) s->bad = 1;
    s->seen[ith] = s->round; /* plain write: kiln__pool_run must publish it */
    atomic_fetch_add(&s->calls, 1);
}

static void nap_us(long us) {
    struct timespec t = {0, us * 1000};
    nanosleep(&t, NULL);
}

static void run_rounds(int threads, int rounds, long pause_us) {
    kiln_pool *pool = kiln__pool_create(threads);
    REQUIRE(pool);
    struct stress s = {.n = threads};
    for (int r = 1; r <= rounds; r++) {
        s.round = r;
        atomic_store(&s.calls, 0);
        kiln__pool_run(pool, stress_part, &s);
        if (atomic_load(&s.calls) != threads) {
            fprintf(stderr, "  %d threads, round %d: %d calls\n", threads, r, atomic_load(&s.calls));
            CHECK(0);
            break;
        }
        for (int i = 0; i < threads; i++)
            if (s.seen[i] != r) s.bad = 1;
        if (pause_us) nap_us(pause_us);
    }
    CHECK(!s.bad);
    kiln__pool_free(pool);
}

static void test_back_to_back(void) {
    for (int threads = 1; threads <= 3; threads++) run_rounds(threads, 500, 0);
}

/* Pauses longer than the spin window put every thread to sleep between runs. */
static void test_sleep_and_wake(void) {
    for (int threads = 2; threads <= 3; threads++) {
        run_rounds(threads, 30, 20000);
        run_rounds(threads, 300, 50); /* around the spin window */
    }
}

static void test_create_free(void) {
    for (int i = 0; i < 200; i++) {
        kiln_pool *pool = kiln__pool_create(1 + i % 4);
        REQUIRE(pool);
        if (i % 2) {
            struct stress s = {.n = 1 + i % 4, .round = 1};
            kiln__pool_run(pool, stress_part, &s);
            CHECK(!s.bad && atomic_load(&s.calls) == s.n);
        }
        kiln__pool_free(pool);
    }
}

int main(void) {
    RUN(test_back_to_back);
    RUN(test_sleep_and_wake);
    RUN(test_create_free);
    return TEST_REPORT();
}
