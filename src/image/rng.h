/* src/image/rng.h - the noise of Stable Diffusion pipelines: PyTorch's
 * random number generators, number for number (internal).
 *
 * For a seed, kiln__rng_randn() gives the float32 values that
 *     torch.manual_seed(seed); torch.randn(n)              (KILN_RNG_CPU*)
 *     torch.manual_seed(seed); torch.randn(n, device="cuda")   (KILN_RNG_CUDA)
 * give, and successive calls continue the generator as successive
 * torch.randn calls do (initial latent, then ancestral sampler noise).
 *
 * CPU: PyTorch's CPUGeneratorImpl is an mt19937 seeded with the seed's low
 * 32 bits. torch.randn on a float tensor of n >= 16 elements fills it with
 * uniform floats (24 random bits of one 32-bit draw each), then turns each
 * block of 16 into normals by Box-Muller on the pairs (i, i+8); when n is not
 * a multiple of 16 the last 16 are drawn again and recomputed. Below 16
 * elements each value is a double Box-Muller over 53-bit uniforms (two
 * 64-bit draws per pair), the second value of a pair kept in the generator
 * for the next one. The 16-block transform comes in two builds of PyTorch's
 * kernel whose results differ in the last bits of ~40% of values:
 *   KILN_RNG_CPU         the AVX2 kernel (Cephes-style log and sincos in
 *                        float, with the FMAs GCC forms): what PyTorch runs
 *                        on x86 CPUs with AVX2 and without AVX-512 kernels
 *                        (Debian's and most desktop builds);
 *   KILN_RNG_CPU_SCALAR  the portable kernel (libm logf/cosf/sinf): PyTorch
 *                        on ARM (Apple), in AVX-512 dispatch, or with
 *                        ATEN_CPU_CAPABILITY=default.
 * Both are verified bit for bit against Debian's PyTorch 1.13
 * (tests/data/image/rng, tools/image_goldens/make_rng_goldens.py).
 *
 * CUDA: PyTorch's Philox4x32-10 generator as its randn kernel uses it
 * (curand_init(seed, subsequence = element index, offset); curand_normal4;
 * the element takes the first value), which holds while the tensor has no
 * more elements than the GPU runs threads at once (SMs x threads per SM:
 * 65536 and more on any recent GPU; AUTOMATIC1111's CPU copy of this
 * generator makes the same assumption). Each call advances the offset by 4.
 * The Philox core matches Random123's known-answer vectors; the normals
 * match torch.randn on an H200 to within 2e-6 (the GPU's sine and log are
 * fast approximations; see rng_philox.c).
 */
#ifndef KILN_IMAGE_RNG_H
#define KILN_IMAGE_RNG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Which generator. */
typedef enum kiln_rng_kind {
    KILN_RNG_CPU,        /* PyTorch CPU generator, AVX2 kernel ("cpu") */
    KILN_RNG_CPU_SCALAR, /* PyTorch CPU generator, portable kernel ("cpu-scalar") */
    KILN_RNG_CUDA,       /* PyTorch CUDA generator, Philox ("cuda") */
} kiln_rng_kind;

/* Number of kinds. */
#define KILN_RNG_KIND_COUNT 3

/* MT19937's state size (32-bit words). */
#define KILN_MT_N 624

/* A generator. Plain data: copy it to fork the stream. */
typedef struct kiln_rng {
    kiln_rng_kind kind;   /* which generator */
    uint64_t seed;        /* the seed as given */
    uint32_t mt[KILN_MT_N]; /* CPU: MT19937 state */
    int mt_next;          /* CPU: next state word to temper (KILN_MT_N: regenerate first) */
    bool has_normal;      /* CPU: a cached second Box-Muller value is waiting */
    double next_normal;   /* CPU: that value (the small-tensor path only) */
    uint64_t philox_offset; /* CUDA: PyTorch's philox offset (4 per randn call) */
} kiln_rng;

/* Seed a generator (torch.manual_seed). Any 64-bit seed; the CPU generator
 * uses its low 32 bits, as PyTorch does. */
void kiln__rng_init(kiln_rng *r, kiln_rng_kind kind, uint64_t seed);

/* n standard normal floats into out, as torch.randn(n) on this generator.
 * Any shape of n elements gives the same values in row-major order. */
void kiln__rng_randn(kiln_rng *r, float *out, size_t n);

/* The next 32-bit output of the CPU generator's MT19937 (torch's
 * generator.random()); for tests. */
uint32_t kiln__rng_u32(kiln_rng *r);

/* Philox4x32-10: out = the block for counter ctr under key. */
void kiln__philox4x32_10(const uint32_t ctr[4], const uint32_t key[2], uint32_t out[4]);

/* The name of a kind ("cpu", "cpu-scalar", "cuda"); static string. */
const char *kiln__rng_kind_name(kiln_rng_kind kind);

/* The kind called `name`; false when there is none. */
bool kiln__rng_kind_from_name(const char *name, kiln_rng_kind *out);

#endif /* KILN_IMAGE_RNG_H */
