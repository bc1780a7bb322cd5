/* src/image/rng_impl.h - what rng.c shares with the generators' files
 * (rng_cpu.c, rng_philox.c); internal to src/image. */
#ifndef KILN_IMAGE_RNG_IMPL_H
#define KILN_IMAGE_RNG_IMPL_H

#include "image/rng.h"

/* Seed the MT19937 state with a 32-bit seed (init_genrand) and drop any
 * cached normal. */
void kiln__mt_seed(kiln_rng *r, uint32_t seed);

/* torch.randn(n) on the CPU generator; `avx2` picks the kernel. */
void kiln__cpu_randn(kiln_rng *r, float *out, size_t n, bool avx2);

/* torch.randn(n, device="cuda") on the Philox generator. */
void kiln__cuda_randn(kiln_rng *r, float *out, size_t n);

#endif /* KILN_IMAGE_RNG_IMPL_H */
