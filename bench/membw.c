/* bench/membw.c - the memory read bandwidth that token generation is
 * measured against:
 *
 *   membw [-t THREADS[,THREADS...]] [-s MIB] [-r REPS]
 *
 * Reads a buffer of MIB mebibytes (default 1024: far beyond the caches)
 * held as kiln holds weights (anonymous memory advised for huge pages,
 * kiln__huge_alloc), split evenly over the thread pool, with 512-bit loads
 * where the CPU has AVX-512F (else 256-bit AVX2 loads, else plain 64-bit
 * ones), and prints GB/s for each thread count: the best of REPS passes
 * (default 7; on a shared machine the least disturbed one) and the median.
 * `bench/compare-llamacpp --bandwidth` takes the figure, so that "% of the
 * limit" is against a limit measured in the same session.
 */
#include <immintrin.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/alloc.h"
#include "core/cpu.h"
#include "core/threadpool.h"

/* What the threads of one pass share. */
struct read_job {
    const uint8_t *buf; /* the buffer */
    size_t bytes;       /* its size, a multiple of 256 * threads */
    double sums[64];    /* each thread's sum of what it read (keeps the loads alive) */
};

__attribute__((target("avx512f"))) static double read512(const uint8_t *p, size_t n) {
    __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    for (size_t i = 0; i < n; i += 256) {
        a0 = _mm512_add_ps(a0, _mm512_load_ps((const void *)(p + i)));
        a1 = _mm512_add_ps(a1, _mm512_load_ps((const void *)(p + i + 64)));
        a2 = _mm512_add_ps(a2, _mm512_load_ps((const void *)(p + i + 128)));
        a3 = _mm512_add_ps(a3, _mm512_load_ps((const void *)(p + i + 192)));
    }
    return (double)_mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)));
}

__attribute__((target("avx2"))) static double read256(const uint8_t *p, size_t n) {
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    for (size_t i = 0; i < n; i += 128) {
        a0 = _mm256_add_ps(a0, _mm256_load_ps((const float *)(const void *)(p + i)));
        a1 = _mm256_add_ps(a1, _mm256_load_ps((const float *)(const void *)(p + i + 32)));
        a2 = _mm256_add_ps(a2, _mm256_load_ps((const float *)(const void *)(p + i + 64)));
        a3 = _mm256_add_ps(a3, _mm256_load_ps((const float *)(const void *)(p + i + 96)));
    }
    float s[8];
    _mm256_storeu_ps(s, _mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
    return (double)(s[0] + s[1] + s[2] + s[3] + s[4] + s[5] + s[6] + s[7]);
}

static double read64(const uint8_t *p, size_t n) {
    uint64_t a = 0, b = 0;
    for (size_t i = 0; i < n; i += 16) {
        uint64_t x, y;
        memcpy(&x, p + i, 8);
        memcpy(&y, p + i + 8, 8);
        a += x;
        b += y;
    }
    return (double)(a ^ b);
}

static void read_part(void *ctx, int ith, int nth) {
    struct read_job *job = ctx;
    size_t per = job->bytes / (size_t)nth;
    const uint8_t *p = job->buf + per * (size_t)ith;
    const kiln_cpu_features *f = kiln__cpu();
    double s = f->avx512f ? read512(p, per) : f->avx2 ? read256(p, per) : read64(p, per);
    if (ith < 64) job->sums[ith] = s;
}

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
    const char *threads = "1,2";
    size_t mib = 1024;
    int reps = 7;
    for (int i = 1; i < argc; i++) {
        if (i + 1 < argc && strcmp(argv[i], "-t") == 0) threads = argv[++i];
        else if (i + 1 < argc && strcmp(argv[i], "-s") == 0) mib = (size_t)strtoul(argv[++i], NULL, 10);
        else if (i + 1 < argc && strcmp(argv[i], "-r") == 0) reps = atoi(argv[++i]);
        else {
            fprintf(stderr, "usage: membw [-t THREADS[,THREADS...]] [-s MIB] [-r REPS]\n");
            return 2;
        }
    }
    if (mib == 0 || mib > ((size_t)1 << 20) || reps < 1 || reps > 1000) {
        fprintf(stderr, "membw: -s 1..1048576 MiB, -r 1..1000\n");
        return 2;
    }
    size_t bytes = mib << 20;
    uint8_t *buf = kiln__huge_alloc(bytes);
    if (!buf) {
        fprintf(stderr, "membw: cannot allocate %zu MiB\n", mib);
        return 1;
    }
    memset(buf, 1, bytes); /* fault every page in before timing */
    double *gbs = malloc((size_t)reps * sizeof *gbs);
    if (!gbs) return 1;
    printf("| threads | best GB/s | median GB/s |\n| ---: | ---: | ---: |\n");
    for (const char *t = threads; *t;) {
        char *end;
        long nth = strtol(t, &end, 10);
        if (end == t || nth < 1 || nth > 64) {
            fprintf(stderr, "membw: bad thread count in '%s'\n", threads);
            return 2;
        }
        t = *end == ',' ? end + 1 : end;
        kiln_pool *pool = kiln__pool_create((int)nth);
        if (!pool) return 1;
        struct read_job job = {buf, bytes - bytes % (256 * (size_t)nth), {0}};
        kiln__pool_run(pool, read_part, &job); /* warm-up */
        for (int r = 0; r < reps; r++) {
            double t0 = now();
            kiln__pool_run(pool, read_part, &job);
            gbs[r] = (double)job.bytes / (now() - t0) / 1e9;
        }
        qsort(gbs, (size_t)reps, sizeof *gbs, cmp_double);
        printf("| %ld | %.1f | %.1f |\n", nth, gbs[reps - 1], gbs[reps / 2]);
        kiln__pool_free(pool);
    }
    free(gbs);
    kiln__huge_free(buf, bytes);
    return 0;
}
