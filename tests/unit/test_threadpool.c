/* tests/unit/test_threadpool.c - the thread pool under stress: many short
 * runs back to back (workers spinning), runs spaced out so workers and the
 * caller fall asleep between them (the sleep/wake handshake), every thread
 * index called exactly once per run, each run's writes visible to the
 * caller when kiln__pool_run returns, and pools created and freed in a loop
 * with and without runs, and runs that mix spinning and sleeping waits. */
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

/* `rounds` runs on a pool of `threads`; after round r the caller naps
 * pause_us, or long_us instead every `long_every` rounds (0: never). */
static void run_rounds_mixed(int threads, int rounds, long pause_us, int long_every, long long_us) {
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
        long nap = long_every && r % long_every == 0 ? long_us : pause_us;
        if (nap) nap_us(nap);
    }
    CHECK(!s.bad);
    kiln__pool_free(pool);
}

static void run_rounds(int threads, int rounds, long pause_us) { run_rounds_mixed(threads, rounds, pause_us, 0, 0); }

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

/* Mostly back-to-back runs with a pause past the longest spin (1 ms) now
 * and then: the waits' adaptive spin budgets grow while runs end spinning
 * and fall when one has to sleep, and every switch between the two keeps
 * the handshake right. */
static void test_adaptive_spin(void) {
    for (int threads = 2; threads <= 3; threads++) {
        run_rounds_mixed(threads, 400, 0, 16, 3000);
        run_rounds_mixed(threads, 200, 20, 7, 1500);
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
    RUN(test_adaptive_spin);
    RUN(test_create_free);
    return TEST_REPORT();
}
