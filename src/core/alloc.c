/* src/core/alloc.c - aligned and huge-page allocation. */
#define _GNU_SOURCE
#include "core/alloc.h"

#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>

void *kiln__aligned_alloc(size_t size, size_t align) {
    if (size == 0 || align < sizeof(void *) || (align & (align - 1)) != 0) return NULL;
    void *p = NULL;
    if (posix_memalign(&p, align, size) != 0) return NULL;
    return p;
}

void kiln__aligned_free(void *p) { free(p); }

/* Huge page size on x86-64 Linux. */
#define HUGE_PAGE (2u << 20)

/* Round `size` up to whole huge pages; 0 on overflow. */
static size_t huge_round(size_t size) {
    if (size > SIZE_MAX - (HUGE_PAGE - 1)) return 0;
    return (size + HUGE_PAGE - 1) & ~(size_t)(HUGE_PAGE - 1);
}

void *kiln__huge_alloc(size_t size) {
    size_t len = huge_round(size);
    if (len == 0) return NULL;
    /* Over-allocate by one huge page, then trim both ends so the block
     * starts on a 2 MiB boundary (mmap only promises 4 KiB). */
    if (len > SIZE_MAX - HUGE_PAGE) return NULL;
    size_t span = len + HUGE_PAGE;
    uint8_t *raw = mmap(NULL, span, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (raw == MAP_FAILED) return NULL;
    uintptr_t start = ((uintptr_t)raw + HUGE_PAGE - 1) & ~(uintptr_t)(HUGE_PAGE - 1);
    size_t head = start - (uintptr_t)raw;
    if (head) munmap(raw, head);
    size_t tail = span - head - len;
    if (tail) munmap((uint8_t *)start + len, tail);
#ifdef MADV_HUGEPAGE
    madvise((void *)start, len, MADV_HUGEPAGE); /* advisory: failure is harmless */
#endif
    return (void *)start;
}

void kiln__huge_free(void *p, size_t size) {
    if (!p) return;
    munmap(p, huge_round(size));
}
