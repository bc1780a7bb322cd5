/* src/core/threadpool.c - worker threads woken by a generation counter.
 *
 * A run bumps `generation`; workers spin on it for a while (runs come in
 * quick succession during a forward pass: hundreds per token, microseconds
 * apart) and then sleep on a condition variable. Completion is an atomic
 * countdown that the caller spins on, then sleeps. The lock and the condition variables are touched
 * only when someone sleeps (counted in `sleepers` / `caller_sleeps`), so a
 * run between busy threads costs two atomic operations per thread and no
 * system call.
 */
#include "core/threadpool.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>

#include "core/cpu.h"

/* How long a thread spins before it goes to sleep on a condition variable
 * adapts per waiting thread, between SPIN_MIN_NS and SPIN_MAX_NS: it grows
 * by a quarter after a wait that ended while spinning and halves after one
 * that had to sleep (so it stays low unless nearly all waits end spinning). On an idle machine the waits inside a forward pass (the caller's
 * norms, rope and attention between two matmuls; one thread finishing its
 * share before the other) end within tens of microseconds, the budget stays
 * high, and nobody pays a futex wake per run: with a fixed 20000 spins
 * (some 5 us) the workers slept between matmuls and 2 threads generated
 * tokens hardly faster than 1. On a machine with more runnable threads than
 * cores the waited-for thread is often off its core for a whole time slice;
 * spinning then only burns the slice it needs (measured: 10 times slower
 * with a fixed 1 ms spin at load 9 on 2 cores), waits end asleep, and the
 * budget falls to the minimum.
 * The spin is a bare load: with a `pause` in it (alone, or with a
 * sched_yield every 256 spins) token generation ran 3 to 5 times slower on
 * the development VM at load average 20, as if the hypervisor took each
 * pause loop for a preempted lock holder and descheduled the vCPU. */
#define SPIN_MIN_NS 4000u
#define SPIN_MAX_NS 1000000u
/* Spins between two looks at the clock (a vDSO call, some 20 ns). */
#define SPIN_CLOCK_EVERY 64
/* A gap this long between two looks at the clock means the spinning thread
 * lost its core: the wait sleeps at once (and counts as one that slept). */
#define SPIN_PREEMPTED_NS 50000u

struct kiln_pool {
    int n_threads;               /* threads per run, caller included */
    pthread_t *threads;          /* the n_threads - 1 workers */
    kiln_pool_fn fn;             /* work of the current run */
    void *ctx;                   /* its argument */
    atomic_uint generation;      /* bumped once per run (and at shutdown) */
    atomic_int pending;          /* workers that have not finished this run */
    atomic_bool stop;            /* set when the pool is being freed */
    atomic_int sleepers;         /* workers asleep (or about to be) on `wake` */
    atomic_bool caller_sleeps;   /* the caller is asleep (or about to be) on `done` */
    unsigned caller_budget;      /* the caller's spin budget in ns (see spin_adapt) */
    pthread_mutex_t lock;        /* guards sleeping on the two conditions */
    pthread_cond_t wake;         /* workers wait here for a new generation */
    pthread_cond_t done;         /* the caller waits here for pending == 0 */
};

/* Arguments of one worker thread. */
struct worker_arg {
    kiln_pool *pool; /* its pool */
    int ith;         /* its index, 1..n_threads-1 */
};

/* Monotonic time in nanoseconds. */
static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Where one spin wait stands. */
struct spin {
    unsigned spins; /* loads so far */
    uint64_t start; /* time of the first look at the clock (0: none yet) */
    uint64_t last;  /* time of the latest look */
};

/* Count one more load; true once the wait has spun for `budget` ns, or
 * when it was descheduled since the last look (SPIN_PREEMPTED_NS). */
static bool spin_expired(struct spin *sp, unsigned budget) {
    if (++sp->spins % SPIN_CLOCK_EVERY != 0) return false;
    uint64_t t = now_ns();
    if (sp->start == 0) {
        sp->start = sp->last = t;
        return false;
    }
    uint64_t gap = t - sp->last;
    sp->last = t;
    return gap >= SPIN_PREEMPTED_NS || t - sp->start >= budget;
}

/* The next budget after a wait that ended spinning (slept false) or asleep. */
static unsigned spin_adapt(unsigned budget, bool slept) {
    if (slept) return budget / 2 > SPIN_MIN_NS ? budget / 2 : SPIN_MIN_NS;
    return budget + budget / 4 < SPIN_MAX_NS ? budget + budget / 4 : SPIN_MAX_NS;
}

static void *worker_main(void *arg) {
    struct worker_arg wa = *(struct worker_arg *)arg;
    free(arg);
    kiln_pool *pool = wa.pool;
    unsigned seen = 0, budget = SPIN_MAX_NS;
    for (;;) {
        unsigned gen;
        struct spin sp = {0, 0, 0};
        bool slept = false;
        while ((gen = atomic_load_explicit(&pool->generation, memory_order_acquire)) == seen) {
            if (!spin_expired(&sp, budget)) continue;
            slept = true;
            /* Announce the sleep before the last look at generation; the
             * caller bumps generation before it looks at sleepers (both
             * sequentially consistent), so one of the two sees the other. */
            pthread_mutex_lock(&pool->lock);
            atomic_fetch_add(&pool->sleepers, 1);
            while (atomic_load(&pool->generation) == seen) pthread_cond_wait(&pool->wake, &pool->lock);
            atomic_fetch_sub(&pool->sleepers, 1);
            pthread_mutex_unlock(&pool->lock);
        }
        budget = spin_adapt(budget, slept);
        seen = gen;
        if (atomic_load(&pool->stop)) return NULL;
        pool->fn(pool->ctx, wa.ith, pool->n_threads);
        if (atomic_fetch_sub(&pool->pending, 1) == 1 && atomic_load(&pool->caller_sleeps)) {
            pthread_mutex_lock(&pool->lock);
            pthread_cond_signal(&pool->done);
            pthread_mutex_unlock(&pool->lock);
        }
    }
}

kiln_pool *kiln__pool_create(int n_threads) {
    if (n_threads <= 0) n_threads = kiln__cpu_count();
    kiln_pool *pool = calloc(1, sizeof *pool);
    if (!pool) return NULL;
    pool->threads = calloc((size_t)n_threads, sizeof *pool->threads);
    if (!pool->threads) {
        free(pool);
        return NULL;
    }
    pthread_mutex_init(&pool->lock, NULL);
    pthread_cond_init(&pool->wake, NULL);
    pthread_cond_init(&pool->done, NULL);
    pool->n_threads = n_threads;
    pool->caller_budget = SPIN_MAX_NS;
    for (int i = 1; i < n_threads; i++) {
        struct worker_arg *wa = malloc(sizeof *wa);
        if (wa) *wa = (struct worker_arg){pool, i};
        if (!wa || pthread_create(&pool->threads[i - 1], NULL, worker_main, wa) != 0) {
            free(wa);
            pool->n_threads = i; /* only workers 1..i-1 exist: join those */
            kiln__pool_free(pool);
            return NULL;
        }
    }
    return pool;
}

void kiln__pool_free(kiln_pool *pool) {
    if (!pool) return;
    atomic_store(&pool->stop, true);
    pthread_mutex_lock(&pool->lock);
    atomic_fetch_add(&pool->generation, 1);
    pthread_cond_broadcast(&pool->wake);
    pthread_mutex_unlock(&pool->lock);
    for (int i = 1; i < pool->n_threads; i++) pthread_join(pool->threads[i - 1], NULL);
    pthread_mutex_destroy(&pool->lock);
    pthread_cond_destroy(&pool->wake);
    pthread_cond_destroy(&pool->done);
    free(pool->threads);
    free(pool);
}

int kiln__pool_size(const kiln_pool *pool) { return pool ? pool->n_threads : 1; }

void kiln__pool_run(kiln_pool *pool, kiln_pool_fn fn, void *ctx) {
    if (!pool || pool->n_threads == 1) {
        fn(ctx, 0, 1);
        return;
    }
    pool->fn = fn;
    pool->ctx = ctx;
    atomic_store(&pool->pending, pool->n_threads - 1);
    atomic_fetch_add(&pool->generation, 1);
    /* Wake sleepers under the lock: a worker counted in sleepers holds the
     * lock until it waits, so the broadcast cannot fall between its last
     * look at generation and its wait. */
    if (atomic_load(&pool->sleepers) > 0) {
        pthread_mutex_lock(&pool->lock);
        pthread_cond_broadcast(&pool->wake);
        pthread_mutex_unlock(&pool->lock);
    }

    fn(ctx, 0, pool->n_threads);

    struct spin sp = {0, 0, 0};
    bool slept = false;
    while (atomic_load_explicit(&pool->pending, memory_order_acquire) != 0) {
        if (!spin_expired(&sp, pool->caller_budget)) continue;
        slept = true;
        /* the same handshake as the workers', with pending and caller_sleeps */
        pthread_mutex_lock(&pool->lock);
        atomic_store(&pool->caller_sleeps, true);
        while (atomic_load(&pool->pending) != 0) pthread_cond_wait(&pool->done, &pool->lock);
        atomic_store(&pool->caller_sleeps, false);
        pthread_mutex_unlock(&pool->lock);
    }
    pool->caller_budget = spin_adapt(pool->caller_budget, slept);
}
