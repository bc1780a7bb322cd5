/* src/core/alloc.h - aligned and huge-page-backed allocation (internal). */
#ifndef KILN_CORE_ALLOC_H
#define KILN_CORE_ALLOC_H

#include <stddef.h>

/* Alignment of every buffer the kernels touch: one cache line, and enough
 * for the widest vector loads (AVX-512). */
#define KILN_ALIGN 64

/* `size` bytes aligned to `align` (a power of two, at least sizeof(void*)).
 * Returns NULL on failure or a zero size. Release with kiln__aligned_free(). */
void *kiln__aligned_alloc(size_t size, size_t align);
/* Release memory from kiln__aligned_alloc(); NULL is fine. */
void kiln__aligned_free(void *p);

/* Anonymous memory of at least `size` bytes, 2 MiB aligned and advised for
 * transparent huge pages (weights streamed by the kernels). Zero-filled.
 * Returns NULL on failure. Release with kiln__huge_free(p, size). */
void *kiln__huge_alloc(size_t size);
void kiln__huge_free(void *p, size_t size);

/* a * b into *out; nonzero when the product overflows size_t. */
static inline int kiln__mul_overflows(size_t a, size_t b, size_t *out) {
    return __builtin_mul_overflow(a, b, out);
}

#endif /* KILN_CORE_ALLOC_H */
