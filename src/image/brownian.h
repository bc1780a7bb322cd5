/* src/image/brownian.h - k-diffusion's BrownianTreeNoiseSampler: the noise
 * of the DPM++ SDE samplers, number for number (internal).
 *
 * k-diffusion's sample_dpmpp_2m_sde draws its noise from a Brownian motion
 * W on [sigma_min, sigma_max] (torchsde 0.2.6's BrownianTree, a
 * BrownianInterval with halfway_tree=True, tol=1e-6, pool_size=24, seeded
 * with `entropy` = the image seed: AUTOMATIC1111 passes its seeds), and
 * the noise of a step from sigma to sigma_next is
 *     (W(sigma_next) - W(sigma)) / sqrt(|sigma_next - sigma|).
 * What torchsde computes, which this file repeats:
 *   - times are rounded to 6 decimals (Python's round(t, 6)) after being
 *     clamped to [t0, t1];
 *   - the whole interval's increment is randn(seed_W) * sqrt(t1 - t0),
 *     seed_W the first word of numpy's SeedSequence(entropy, pool_size=24)
 *     .generate_state(3);
 *   - every node [s, e] of the tree splits at m = round(0.5 * (e + s)), and
 *     its children's increments are the Brownian bridge
 *         left  = W * (m - s) * (1 / (e - s)) + sqrt((m - s)(e - m) / (e - s)) * Z
 *         right = W - left
 *     with Z = randn(seed) for seed = the first word of SeedSequence(entropy,
 *     spawn_key=(key, depth), pool_size=24).generate_state(4), the root
 *     being key 0 at depth 0 and a child's key 2 * key (left) or 2 * key + 1
 *     (right);
 *   - a query [ta, tb] is the sum, left to right, of the tree's nodes that
 *     tile it (each node splitting at its midpoint until the pieces fit);
 *   - randn(seed) is torch.randn of the latent's size on a fresh generator
 *     seeded with `seed` (torch.Generator(device).manual_seed): the CPU
 *     generator for KILN_RNG_CPU*, Philox for KILN_RNG_CUDA (A1111 on a GPU:
 *     the tree's generators live on the latent's device);
 *   - float32 arithmetic as torch does it: a Python float times a float32
 *     tensor multiplies by the float32 rounding of the scalar.
 * Verified bit for bit against k-diffusion 0.1.1 / torchsde 0.2.6 on
 * Debian's PyTorch 1.13 (tests/data/image/brownian.json).
 */
#ifndef KILN_IMAGE_BROWNIAN_H
#define KILN_IMAGE_BROWNIAN_H

#include <stddef.h>
#include <stdint.h>

#include "image/rng.h"
#include "kiln/status.h"

/* A Brownian tree over one latent. */
typedef struct kiln_brownian {
    uint64_t entropy;   /* the seed (torchsde's entropy) */
    kiln_rng_kind kind; /* generator of the node noise */
    size_t n;           /* values per sample (the latent's size) */
    double t0, t1;      /* the interval, rounded to 6 decimals */
    int max_depth;      /* deepest node a query can need */
    float *w;           /* [n] increment over [t0, t1] */
    float *noise;       /* [n] scratch: a node's bridge noise */
    float *path;        /* [2 * max_depth * n] children's increments, per depth */
} kiln_brownian;

/* A tree on [sigma_min, sigma_max] (0 < sigma_min < sigma_max, both as
 * k-diffusion holds them: float32 values) for latents of n values, seeded
 * with `seed`. Release with kiln__brownian_free. */
kiln_status kiln__brownian_init(kiln_brownian *b, uint64_t seed, kiln_rng_kind kind, float sigma_min,
                                float sigma_max, size_t n);

/* BrownianTreeNoiseSampler(sigma, sigma_next) into out[0..n): the
 * increment from sigma to sigma_next over the square root of their
 * distance (float32 sigmas; sigma != sigma_next). */
kiln_status kiln__brownian_noise(kiln_brownian *b, float sigma, float sigma_next, float *out);

/* Release a tree's memory (zeroed or initialized; twice is fine). */
void kiln__brownian_free(kiln_brownian *b);

/* numpy.random.SeedSequence(entropy, spawn_key=(key, depth) when
 * with_spawn, pool_size=24).generate_state(n_words) into out; for tests. */
void kiln__seed_sequence(uint64_t entropy, int with_spawn, uint64_t key, uint64_t depth, uint32_t *out,
                         int n_words);

#endif /* KILN_IMAGE_BROWNIAN_H */
