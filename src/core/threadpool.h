/* src/core/threadpool.h - a fixed pool of worker threads (internal).
 *
 * One pool per process, sized to the cores. kiln__pool_run() calls
 * fn(ctx, ith, nth) on every thread of the pool at once, the caller being
 * thread 0, and returns when all have finished: the kernels split their work
 * by (ith, nth) themselves. Nothing is allocated per run.
 */
#ifndef KILN_CORE_THREADPOOL_H
#define KILN_CORE_THREADPOOL_H

#include <stddef.h>

typedef struct kiln_pool kiln_pool;

/* Work function: this is thread `ith` of `nth`. */
typedef void (*kiln_pool_fn)(void *ctx, int ith, int nth);

/* Pool of `n_threads` threads including the caller; 0 means one per core.
 * Returns NULL when threads cannot be created. */
kiln_pool *kiln__pool_create(int n_threads);
/* Stop and join the workers; NULL is fine. */
void kiln__pool_free(kiln_pool *pool);
/* Threads that kiln__pool_run() uses, the caller included. */
int kiln__pool_size(const kiln_pool *pool);
/* Thread ith's share [*begin, *end) of n items split into nth contiguous
 * parts as even as they can be (for work functions that split by rows). */
static inline void kiln__pool_share(size_t n, int ith, int nth, size_t *begin, size_t *end) {
    *begin = n * (size_t)ith / (size_t)nth;
    *end = n * (size_t)(ith + 1) / (size_t)nth;
}

/* Run fn on every thread and wait for all. Not reentrant: one run at a time
 * per pool (callers serialize, as the model does). */
void kiln__pool_run(kiln_pool *pool, kiln_pool_fn fn, void *ctx);

#endif /* KILN_CORE_THREADPOOL_H */
