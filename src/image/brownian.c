/* src/image/brownian.c - torchsde's Brownian tree as k-diffusion's
 * BrownianTreeNoiseSampler uses it (see brownian.h): numpy's SeedSequence,
 * the 6-decimal time grid, the dyadic tree of Brownian bridges.
 *
 * Arithmetic mirrors the float32 tensor operations one by one (each product
 * and sum on its own line, so that no compiler fuses them into an FMA that
 * PyTorch does not do).
 */
#include "image/brownian.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"

/* torchsde's BrownianTree: pool_size of the SeedSequences. */
#define POOL 24
/* Most 32-bit words of entropy plus spawn key (64-bit entropy, two 64-bit keys). */
#define MAX_ENTROPY_WORDS (POOL + 4)
/* Deepest tree accepted (intervals halve down to the 1e-6 grid). */
#define MAX_DEPTH 80

/* ---- numpy.random.SeedSequence (O'Neill's seed_seq_fe with hashmix) ---- */

#define INIT_A 0x43b0d7e5u
#define MULT_A 0x931e8875u
#define INIT_B 0x8b51f9ddu
#define MULT_B 0x58f38dedu
#define MIX_MULT_L 0xca01f9ddu
#define MIX_MULT_R 0x4973f715u

static uint32_t hashmix(uint32_t v, uint32_t *hash_const) {
    v ^= *hash_const;
    *hash_const *= MULT_A;
    v *= *hash_const;
    v ^= v >> 16;
    return v;
}

static uint32_t mix(uint32_t x, uint32_t y) {
    uint32_t r = MIX_MULT_L * x - MIX_MULT_R * y;
    r ^= r >> 16;
    return r;
}

/* A non-negative integer as numpy coerces it: 32-bit words, least
 * significant first; 0 is one word. Returns the count written. */
static int int_words(uint64_t x, uint32_t *out) {
    int n = 0;
    do {
        out[n++] = (uint32_t)x;
        x >>= 32;
    } while (x);
    return n;
}

void kiln__seed_sequence(uint64_t entropy, int with_spawn, uint64_t key, uint64_t depth, uint32_t *out,
                         int n_words) {
    uint32_t ent[MAX_ENTROPY_WORDS];
    int n = int_words(entropy, ent);
    if (with_spawn) {
        /* The run entropy is zero-padded to the pool size before the spawn key. */
        while (n < POOL) ent[n++] = 0;
        n += int_words(key, ent + n);
        n += int_words(depth, ent + n);
    }
    uint32_t pool[POOL], hc = INIT_A;
    for (int i = 0; i < POOL; i++) pool[i] = hashmix(i < n ? ent[i] : 0u, &hc);
    for (int s = 0; s < POOL; s++)
        for (int d = 0; d < POOL; d++)
            if (s != d) pool[d] = mix(pool[d], hashmix(pool[s], &hc));
    for (int s = POOL; s < n; s++)
        for (int d = 0; d < POOL; d++) pool[d] = mix(pool[d], hashmix(ent[s], &hc));
    uint32_t hb = INIT_B;
    for (int i = 0; i < n_words; i++) {
        uint32_t v = pool[i % POOL];
        v ^= hb;
        hb *= MULT_B;
        v *= hb;
        v ^= v >> 16;
        out[i] = v;
    }
}

/* ---- the tree ---- */

/* Python's round(x, 6): the correctly rounded 6-decimal value, read back. */
static double round6(double x) {
    char buf[64];
    snprintf(buf, sizeof buf, "%.6f", x);
    return strtod(buf, NULL);
}

/* torch.randn(n) on a generator seeded with `seed`. */
static void randn_seeded(const kiln_brownian *b, uint32_t seed, float *out) {
    kiln_rng r;
    kiln__rng_init(&r, b->kind, seed);
    kiln__rng_randn(&r, out, b->n);
}

kiln_status kiln__brownian_init(kiln_brownian *b, uint64_t seed, kiln_rng_kind kind, float sigma_min,
                                float sigma_max, size_t n) {
    memset(b, 0, sizeof *b);
    if (!(sigma_min > 0.0f) || !(sigma_max > sigma_min) || !isfinite(sigma_max) || n == 0)
        return kiln__fail(KILN_ERR_INVALID_ARG, "brownian tree: bad interval %g..%g or size %zu",
                          (double)sigma_min, (double)sigma_max, n);
    b->entropy = seed;
    b->kind = kind;
    b->n = n;
    double t0 = sigma_min, t1 = sigma_max;
    b->t0 = round6(t0);
    b->t1 = round6(t1);
    /* Pieces halve from t1 - t0 down to the 1e-6 grid, give or take rounding. */
    b->max_depth = (int)ceil(log2((b->t1 - b->t0) / 1e-6 + 1.0)) + 4;
    if (b->max_depth > MAX_DEPTH)
        return kiln__fail(KILN_ERR_INVALID_ARG, "brownian tree: interval %g..%g too long", t0, t1);
    if (n > SIZE_MAX / sizeof(float) / (2 * (size_t)b->max_depth + 2))
        return kiln__fail(KILN_ERR_TOO_LARGE, "brownian tree: latent of %zu values", n);
    b->w = malloc(n * sizeof *b->w);
    b->noise = malloc(n * sizeof *b->noise);
    b->path = malloc(2 * (size_t)b->max_depth * n * sizeof *b->path);
    if (!b->w || !b->noise || !b->path) {
        kiln__brownian_free(b);
        return kiln__fail(KILN_ERR_OUT_OF_MEMORY, "brownian tree: out of memory");
    }
    uint32_t seeds[3];
    kiln__seed_sequence(seed, 0, 0, 0, seeds, 3);
    randn_seeded(b, seeds[0], b->w);
    /* W = randn * sqrt(t1 - t0), on the unrounded times. */
    float scale = (float)sqrt(t1 - t0);
    for (size_t k = 0; k < n; k++) b->w[k] *= scale;
    return KILN_OK;
}

void kiln__brownian_free(kiln_brownian *b) {
    free(b->w);
    free(b->noise);
    free(b->path);
    b->w = b->noise = b->path = NULL;
}

/* Add to acc the increments of the nodes tiling [ta, tb] within node
 * [start, end] (key, depth) whose increment is w; *first: acc not yet set. */
static kiln_status visit(kiln_brownian *b, double start, double end, uint64_t key, int depth, const float *w,
                         double ta, double tb, float *acc, int *first) {
    size_t n = b->n;
    if (ta == start && tb == end) {
        if (*first)
            memcpy(acc, w, n * sizeof *acc);
        else
            for (size_t k = 0; k < n; k++) acc[k] = acc[k] + w[k];
        *first = 0;
        return KILN_OK;
    }
    if (depth >= b->max_depth)
        return kiln__fail(KILN_ERR_INVALID_ARG, "brownian tree: query %.6f..%.6f deeper than %d levels", ta, tb,
                          b->max_depth);
    double mid = round6(0.5 * (end + start));
    uint32_t seeds[4];
    kiln__seed_sequence(b->entropy, 1, key, (uint64_t)depth, seeds, 4);
    randn_seeded(b, seeds[0], b->noise);
    double h_rec = 1.0 / (end - start), left = mid - start, right = end - mid;
    float f_left = (float)left, f_hrec = (float)h_rec, f_std = (float)sqrt(left * right * h_rec);
    float *lw = b->path + 2 * (size_t)depth * n, *rw = lw + n;
    for (size_t k = 0; k < n; k++) {
        float mean = w[k] * f_left;
        mean = mean * f_hrec;
        float dev = f_std * b->noise[k];
        lw[k] = mean + dev;
        rw[k] = w[k] - lw[k];
    }
    kiln_status s;
    if (tb <= mid) return visit(b, start, mid, 2 * key, depth + 1, lw, ta, tb, acc, first);
    if (ta >= mid) return visit(b, mid, end, 2 * key + 1, depth + 1, rw, ta, tb, acc, first);
    if ((s = visit(b, start, mid, 2 * key, depth + 1, lw, ta, mid, acc, first)) != KILN_OK) return s;
    return visit(b, mid, end, 2 * key + 1, depth + 1, rw, mid, tb, acc, first);
}

kiln_status kiln__brownian_noise(kiln_brownian *b, float sigma, float sigma_next, float *out) {
    /* BatchedBrownianTree sorts the times and flips the sign of a
     * decreasing query. */
    float lo = sigma < sigma_next ? sigma : sigma_next, hi = sigma < sigma_next ? sigma_next : sigma;
    double ta = lo, tb = hi;
    /* BrownianInterval.__call__: clamp to [t0, t1], then the 6-decimal grid. */
    if (ta < b->t0) ta = b->t0;
    if (tb < b->t0) tb = b->t0;
    if (ta > b->t1) ta = b->t1;
    if (tb > b->t1) tb = b->t1;
    ta = round6(ta);
    tb = round6(tb);
    if (ta == tb) {
        memset(out, 0, b->n * sizeof *out);
        return KILN_OK;
    }
    int first = 1;
    kiln_status s = visit(b, b->t0, b->t1, 0, 0, b->w, ta, tb, out, &first);
    if (s != KILN_OK) return s;
    float diff = sigma_next - sigma;
    float d = sqrtf(fabsf(diff));
    bool flip = sigma > sigma_next;
    for (size_t k = 0; k < b->n; k++) {
        float v = flip ? -out[k] : out[k];
        out[k] = v / d;
    }
    return KILN_OK;
}
