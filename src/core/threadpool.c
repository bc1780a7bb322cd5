/* src/core/threadpool.c - worker threads woken by a generation counter.
 *
 * A run bumps `generation`; workers spin briefly on it (runs come in quick
 * succession during a forward pass: hundreds per token) and then sleep on a
 * condition variable. Completion is an atomic countdown that the caller
 * spins on, then sleeps. The lock and the condition variables are touched
 * only when someone sleeps (counted in `sleepers` / `caller_sleeps`), so a
 * run between busy threads costs two atomic operations per thread and no
 * system call.
 */
#include "core/threadpool.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>

#include "core/cpu.h"

/* Spin iterations before a thread goes to sleep on the condition variable.
 * The spin is a bare load: with a `pause` in it (alone, or with a
 * sched_yield every 256 spins) token generation ran 3 to 5 times slower on
 * the development VM at load average 20, as if the hypervisor took each
 * pause loop for a preempted lock holder and descheduled the vCPU. */
#define SPIN_LIMIT 20000

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
    pthread_mutex_t lock;        /* guards sleeping on the two conditions */
    pthread_cond_t wake;         /* workers wait here for a new generation */
    pthread_cond_t done;         /* the caller waits here for pending == 0 */
};

/* Arguments of one worker thread. */
struct worker_arg {
    kiln_pool *pool; /* its pool */
    int ith;         /* its index, 1..n_threads-1 */
};

static void *worker_main(void *arg) {
    struct worker_arg wa = *(struct worker_arg *)arg;
    free(arg);
    kiln_pool *pool = wa.pool;
    unsigned seen = 0;
    for (;;) {
        unsigned gen;
        int spins = 0;
        while ((gen = atomic_load_explicit(&pool->generation, memory_order_acquire)) == seen) {
            if (++spins < SPIN_LIMIT) continue;
            /* Announce the sleep before the last look at generation; the
             * caller bumps generation before it looks at sleepers (both
             * sequentially consistent), so one of the two sees the other. */
            pthread_mutex_lock(&pool->lock);
            atomic_fetch_add(&pool->sleepers, 1);
            while (atomic_load(&pool->generation) == seen) pthread_cond_wait(&pool->wake, &pool->lock);
            atomic_fetch_sub(&pool->sleepers, 1);
            pthread_mutex_unlock(&pool->lock);
        }
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

    int spins = 0;
    while (atomic_load_explicit(&pool->pending, memory_order_acquire) != 0) {
        if (++spins < SPIN_LIMIT) continue;
        /* the same handshake as the workers', with pending and caller_sleeps */
        pthread_mutex_lock(&pool->lock);
        atomic_store(&pool->caller_sleeps, true);
        while (atomic_load(&pool->pending) != 0) pthread_cond_wait(&pool->done, &pool->lock);
        atomic_store(&pool->caller_sleeps, false);
        pthread_mutex_unlock(&pool->lock);
    }
}
