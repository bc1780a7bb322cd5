/* src/image/rng_philox.c - PyTorch's CUDA generator on the CPU: Philox4x32-10
 * and curand's Box-Muller as torch.randn(..., device="cuda") uses them (see
 * rng.h).
 *
 * Philox4x32-10 is the counter-based generator of Salmon, Moraes, Dror and
 * Shaw, "Parallel Random Numbers: As Easy as 1, 2, 3" (SC11): ten rounds of
 * two 32x32->64-bit multiplies mixing a 128-bit counter with a 64-bit key
 * that is bumped by the Weyl constants between rounds.
 *
 * curand_init(seed, subsequence, offset) starts a state at counter
 * (offset / 4 as a 64-bit number in words 0-1, subsequence in words 2-3)
 * with key (seed low, seed high); curand_normal4 takes one 4-word block and
 * makes normals of words (0, 1) and (2, 3):
 *     u = x * 2^-32 + 2^-33,  v = y * 2pi 2^-32 + pi 2^-32   (float, fused)
 *     (sqrt(-2 log u) sin v, sqrt(-2 log u) cos v)
 * PyTorch's randn kernel gives element i the first value of thread i's
 * curand_normal4 (while there are enough threads; see rng.h). The log, sqrt
 * and sin here are double precision, rounded to float once; the GPU uses its
 * fast approximate float functions, whose sine is off by up to about 2^-21,
 * so kiln's values differ from a GPU's by up to about 2e-6 (1.7e-6 at most
 * over 3013 values of torch 2.11 on an H200: tests/data/image/rng/cuda.json).
 */
#include <math.h>

#include "image/rng_impl.h"

/* Multiply a and b, giving the high and low 32 bits of the product. */
static void mulhilo(uint32_t a, uint32_t b, uint32_t *hi, uint32_t *lo) {
    uint64_t p = (uint64_t)a * b;
    *hi = (uint32_t)(p >> 32);
    *lo = (uint32_t)p;
}

void kiln__philox4x32_10(const uint32_t ctr[4], const uint32_t key[2], uint32_t out[4]) {
    const uint32_t M0 = 0xD2511F53u, M1 = 0xCD9E8D57u; /* round multipliers */
    const uint32_t W0 = 0x9E3779B9u, W1 = 0xBB67AE85u; /* key increments (golden ratio, sqrt 3 - 1) */
    uint32_t c0 = ctr[0], c1 = ctr[1], c2 = ctr[2], c3 = ctr[3];
    uint32_t k0 = key[0], k1 = key[1];
    for (int round = 0; round < 10; round++) {
        uint32_t hi0, lo0, hi1, lo1;
        mulhilo(M0, c0, &hi0, &lo0);
        mulhilo(M1, c2, &hi1, &lo1);
        uint32_t n0 = hi1 ^ c1 ^ k0, n2 = hi0 ^ c3 ^ k1;
        c0 = n0;
        c1 = lo1;
        c2 = n2;
        c3 = lo0;
        k0 += W0;
        k1 += W1;
    }
    out[0] = c0;
    out[1] = c1;
    out[2] = c2;
    out[3] = c3;
}

void kiln__cuda_randn(kiln_rng *r, float *out, size_t n) {
    const float two_pow32_inv = 2.3283064e-10f;               /* CURAND_2POW32_INV */
    const float two_pow32_inv_2pi = 2.3283064e-10f * 6.2831855f; /* CURAND_2POW32_INV_2PI */
    uint64_t block = r->philox_offset / 4; /* the counter's low 64 bits */
    uint32_t key[2] = {(uint32_t)r->seed, (uint32_t)(r->seed >> 32)};
    for (size_t i = 0; i < n; i++) {
        uint64_t sub = (uint64_t)i; /* the thread's subsequence: its element index */
        uint32_t ctr[4] = {(uint32_t)block, (uint32_t)(block >> 32), (uint32_t)sub, (uint32_t)(sub >> 32)};
        uint32_t x[4];
        kiln__philox4x32_10(ctr, key, x);
        float u = fmaf((float)x[0], two_pow32_inv, two_pow32_inv / 2.0f);
        float v = fmaf((float)x[1], two_pow32_inv_2pi, two_pow32_inv_2pi / 2.0f);
        double s = sqrt(-2.0 * log((double)u));
        out[i] = (float)(s * sin((double)v));
    }
    r->philox_offset += 4;
}
