/* tests/test_random.h - deterministic test data for the kernel tests: a
 * linear congruential generator giving floats in [-1, 1), buffers of them,
 * and the largest difference from a double-precision reference. Define
 * TEST_RANDOM_SEED before including it to choose the file's sequence. */
#ifndef KILN_TEST_RANDOM_H
#define KILN_TEST_RANDOM_H

#include <math.h>
#include <stdint.h>
#include <stdlib.h>

#ifndef TEST_RANDOM_SEED
#define TEST_RANDOM_SEED 12345u
#endif

/* The generator's state (one sequence per test file). */
static uint32_t rng_state = TEST_RANDOM_SEED;

/* The next value in [-1, 1). */
static inline float frand(void) {
    rng_state = rng_state * 1664525u + 1013904223u;
    return (float)(rng_state >> 8) / (float)(1u << 23) - 1.0f;
}

/* n values from frand() in a malloc'd buffer (at least one float), or NULL. */
static inline float *frand_buf(size_t n) {
    float *p = malloc((n ? n : 1) * sizeof *p);
    for (size_t i = 0; p && i < n; i++) p[i] = frand();
    return p;
}

/* Largest |a - b| (NaN counts as infinite). */
static inline double max_diff(const float *a, const double *b, size_t n) {
    double m = 0.0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]);
        if (d > m || d != d) m = d;
    }
    return m;
}

#endif /* KILN_TEST_RANDOM_H */
