/* src/core/threadpool.c - worker threads woken by a generation counter.
 *
 * A run bumps `generation`; workers spin briefly on it (runs come in quick
 * succession during a forward pass) and then sleep on a condition variable.
 * Completion is an atomic countdown that the caller spins on, then sleeps.
 */
#include "core/threadpool.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>

#include "core/cpu.h"

/* Spin iterations before a thread goes to sleep on the condition variable. */
#define SPIN_LIMIT 20000

struct kiln_pool {
    int n_threads;               /* threads per run, caller included */
    pthread_t *threads;          /* the n_threads - 1 workers */
    kiln_pool_fn fn;             /* work of the current run */
    void *ctx;                   /* its argument */
    atomic_uint generation;      /* bumped once per run (and at shutdown) */
    atomic_int pending;          /* workers that have not finished this run */
    atomic_bool stop;            /* set when the pool is being freed */
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
            pthread_mutex_lock(&pool->lock);
            while (atomic_load(&pool->generation) == seen) pthread_cond_wait(&pool->wake, &pool->lock);
            pthread_mutex_unlock(&pool->lock);
        }
        seen = gen;
        if (atomic_load(&pool->stop)) return NULL;
        pool->fn(pool->ctx, wa.ith, pool->n_threads);
        if (atomic_fetch_sub_explicit(&pool->pending, 1, memory_order_acq_rel) == 1) {
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
    /* Publish the run under the lock so a worker about to sleep sees it. */
    pthread_mutex_lock(&pool->lock);
    atomic_fetch_add_explicit(&pool->generation, 1, memory_order_release);
    pthread_cond_broadcast(&pool->wake);
    pthread_mutex_unlock(&pool->lock);

    fn(ctx, 0, pool->n_threads);

    int spins = 0;
    while (atomic_load_explicit(&pool->pending, memory_order_acquire) != 0) {
        if (++spins < SPIN_LIMIT) continue;
        pthread_mutex_lock(&pool->lock);
        while (atomic_load(&pool->pending) != 0) pthread_cond_wait(&pool->done, &pool->lock);
        pthread_mutex_unlock(&pool->lock);
    }
}
