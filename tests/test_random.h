/* tests/test_random.h - deterministic test data for the kernel tests: a
 * linear congruential generator giving floats in [-1, 1) (on a state the
 * caller owns, or on the file's own sequence), buffers of them, and the
 * largest difference from a reference. Define TEST_RANDOM_SEED before
 * including it to choose the file's own sequence. */
#ifndef KILN_TEST_RANDOM_H
#define KILN_TEST_RANDOM_H

#include <limits.h>
#include <math.h>
#include <stddef.h>
#include <stdlib.h>

#if UINT_MAX != 0xffffffffu
#error "test_random.h: the generator wants a 32-bit unsigned int"
#endif

#ifndef TEST_RANDOM_SEED
#define TEST_RANDOM_SEED 12345u
#endif

/* The file's own sequence (frand, frand_buf). */
static unsigned rng_state = TEST_RANDOM_SEED;

/* Advances *state and gives the next value in [-1, 1). */
static inline float lcg_unit(unsigned *state) {
    *state = *state * 1664525u + 1013904223u;
    return (float)(*state >> 8) / (float)(1u << 23) - 1.0f;
}

/* p[0..n) = the next n values of *state. */
static inline void lcg_fill(float *p, size_t n, unsigned *state) {
    for (size_t i = 0; i < n; i++) p[i] = lcg_unit(state);
}

/* The next value of the file's own sequence. */
static inline float frand(void) { return lcg_unit(&rng_state); }

/* n values from frand() in a malloc'd buffer (at least one float), or NULL. */
static inline float *frand_buf(size_t n) {
    float *p = malloc((n ? n : 1) * sizeof *p);
    if (p) lcg_fill(p, n, &rng_state);
    return p;
}

/* Largest |a - b| against a double reference (NaN counts as infinite). */
static inline double max_diff(const float *a, const double *b, size_t n) {
    double m = 0.0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]);
        if (d > m || d != d) m = d;
    }
    return m;
}

/* Largest |a - b| against a float reference (NaN counts as infinite). */
static inline double max_diff_f(const float *a, const float *b, size_t n) {
    double m = 0.0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)b[i]);
        if (d > m || d != d) m = d;
    }
    return m;
}

/* Largest |a - b| / max(|b|, lo): the error relative to the reference,
 * absolute below `lo` (NaN counts as infinite). */
static inline double max_rel_diff(const float *a, const float *b, size_t n, double lo) {
    double m = 0.0;
    for (size_t i = 0; i < n; i++) {
        double r = fabs((double)b[i]);
        double d = fabs((double)a[i] - (double)b[i]) / (r > lo ? r : lo);
        if (d > m || d != d) m = d;
    }
    return m;
}

#endif /* KILN_TEST_RANDOM_H */
