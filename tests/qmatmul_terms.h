/* tests/qmatmul_terms.h - the error scale of a quantized dot product, for
 * the tests of src/kernels/qmatmul*.c: what any summation order of the
 * kernels' float terms may be off by is a small multiple of it. */
#ifndef KILN_TESTS_QMATMUL_TERMS_H
#define KILN_TESTS_QMATMUL_TERMS_H

#include <math.h>
#include <stdint.h>
#include <stdlib.h>

#include "kernels/qmatmul_impl.h"

/* Sum over weight row wrow (type t) of (|s| u + |b|) (|qa| + 1) da against
 * activation row tok of a: the size of the terms that are added up, which
 * scales the rounding error of any order. 0 when out of memory. */
static inline double qmatmul_term_scale(kiln_dtype t, const void *wrow, const kiln_qact *a, size_t tok) {
    size_t n_in = a->n_in, gs = (size_t)kiln__qgroup_size(t);
    uint8_t *u = malloc(n_in);
    float *s = malloc(n_in / gs * sizeof *s), *b = malloc(n_in / gs * sizeof *b);
    double m = 0.0;
    if (u && s && b) {
        kiln__qgroups_row(t, wrow, n_in, u, s, b);
        for (size_t i = 0; i < n_in; i++)
            m += (fabs((double)s[i / gs]) * u[i] + fabs((double)b[i / gs])) *
                 (fabs((double)a->qs[tok * n_in + i]) + 1.0) * fabs((double)a->d[tok * (n_in / 32) + i / 32]);
    }
    free(u);
    free(s);
    free(b);
    return m;
}

#endif /* KILN_TESTS_QMATMUL_TERMS_H */
