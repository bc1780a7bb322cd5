/* src/image/rng.c - seeding, names and the randn entry point of kiln's
 * PyTorch-compatible generators (see rng.h). */
#include "image/rng.h"

#include <string.h>

#include "image/rng_impl.h"

void kiln__rng_init(kiln_rng *r, kiln_rng_kind kind, uint64_t seed) {
    memset(r, 0, sizeof *r);
    r->kind = kind;
    r->seed = seed;
    kiln__mt_seed(r, (uint32_t)seed);
}

void kiln__rng_randn(kiln_rng *r, float *out, size_t n) {
    switch (r->kind) {
    case KILN_RNG_CPU:
        kiln__cpu_randn(r, out, n, true);
        return;
    case KILN_RNG_CPU_SCALAR:
        kiln__cpu_randn(r, out, n, false);
        return;
    case KILN_RNG_CUDA:
        kiln__cuda_randn(r, out, n);
        return;
    }
}

/* Names, indexed by kind. */
static const char *const names[KILN_RNG_KIND_COUNT] = {"cpu", "cpu-scalar", "cuda"};

const char *kiln__rng_kind_name(kiln_rng_kind kind) {
    return (unsigned)kind < KILN_RNG_KIND_COUNT ? names[kind] : "unknown";
}

bool kiln__rng_kind_from_name(const char *name, kiln_rng_kind *out) {
    for (int i = 0; i < KILN_RNG_KIND_COUNT; i++) {
        if (strcmp(names[i], name) == 0) {
            *out = (kiln_rng_kind)i;
            return true;
        }
    }
    return false;
}
