/* src/kernels/gemm_avx512.c - float-weight matrix products with AVX-512
 * (kiln__gemm_avx512; the summation contract is in gemm_avx512.h).
 *
 * Weights are read in place and widened to float32 in registers (F16 with
 * vcvtph2ps, BF16 with a 16-bit shift), so nothing is decoded to memory.
 * - One token (generation): each thread streams its rows, eight at a
 *   time, with eight independent accumulators, and prefetches the next
 *   group of eight rows into L2 as it goes (one linear stream ahead of the
 *   eight row streams: the hardware prefetchers alone leave the loads
 *   waiting on memory, ~23 against ~25.5 GB/s on one Zen 4 thread).
 * - Several tokens (prompts, image convolutions): a 4 rows x 4 tokens tile
 *   keeps 16 accumulators in registers; per row chunk of ROW_CHUNK rows and
 *   block of kc columns (kiln__gemm_block), the weights (at most 384 KiB
 *   of F16, 768 KiB of F32) stay in the L2 cache while every token group
 *   passes over them, and each group's activations (at most 48 KiB) stay
 *   in L1 or L2 across the chunk's tiles. So each weight byte comes from
 *   memory once per call.
 * Threads take chunks of rows from an atomic counter, so on a busy machine
 * the thread that gets more of the CPU does more of them.
 * A block's 16 accumulators are reduced together by one transposing tree
 * (kiln__avx512_reduce16) whose per-accumulator arithmetic does not depend on the other
 * fifteen, which is what makes one token and a batch agree bit for bit.
 */
#include "kernels/gemm_avx512.h"

#include <immintrin.h>
#include <stdatomic.h>
#include <stdint.h>

#include "core/cpu.h"
#include "kernels/avx512_math.h"

#define TARGET __attribute__((target("avx512f,avx512bw,avx512vl,fma,f16c")))
#define INLINE static inline __attribute__((always_inline))

/* Weight rows per chunk of the many-token path (a multiple of 4): its
 * weights stay in L2 while every token group passes over them. */
#define ROW_CHUNK 64
/* Weight rows per chunk of the one-token path (a multiple of GEMV_ROWS). */
#define GEMV_CHUNK 32
/* Rows per step of the one-token path. */
#ifndef GEMV_ROWS
#define GEMV_ROWS 8
#endif

/* What every thread reads. */
struct gemm_job {
    const char *w;     /* weights, row-major */
    size_t row_bytes;  /* bytes of one weight row */
    size_t n_out;      /* weight rows */
    size_t n_in;       /* values per row */
    size_t kc;         /* values per partial sum, kiln__gemm_block(n_in) */
    const float *x;    /* [n_tok][n_in] activations */
    size_t n_tok;      /* activation rows */
    float *y;          /* [n_tok][n_out] results */
    atomic_size_t next; /* next chunk of rows to hand out */
};

/* 16 weights of `type` at index i of row `row`, widened to float32. */
TARGET INLINE __m512 load_w(kiln_dtype type, const char *row, size_t i) {
    if (type == KILN_DTYPE_F16)
        return _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(const void *)(row + 2 * i)));
    if (type == KILN_DTYPE_BF16)
        return _mm512_castsi512_ps(_mm512_slli_epi32(
            _mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)(const void *)(row + 2 * i))), 16));
    return _mm512_loadu_ps((const float *)(const void *)row + i);
}

/* The same for the lanes set in m; the others are 0 (nothing beyond them is read). */
TARGET INLINE __m512 load_w_mask(kiln_dtype type, const char *row, size_t i, __mmask16 m) {
    if (type == KILN_DTYPE_F16) return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, row + 2 * i));
    if (type == KILN_DTYPE_BF16)
        return _mm512_castsi512_ps(
            _mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(m, row + 2 * i)), 16));
    return _mm512_maskz_loadu_ps(m, (const float *)(const void *)row + i);
}

/* Block [k0, k1) of 4 weight rows times 4 activation rows; accumulator
 * 4 * r + t is (row r, token t), so after kiln__avx512_reduce16 lane 4 * t + r holds it. */
TARGET INLINE __m512 tile4x4(kiln_dtype type, const char *const w[4], const float *const x[4], size_t k0,
                             size_t k1) {
    __m512 acc[16];
    for (int k = 0; k < 16; k++) acc[k] = _mm512_setzero_ps();
    size_t i = k0;
    for (; i + 16 <= k1; i += 16) {
        __m512 x0 = _mm512_loadu_ps(x[0] + i), x1 = _mm512_loadu_ps(x[1] + i);
        __m512 x2 = _mm512_loadu_ps(x[2] + i), x3 = _mm512_loadu_ps(x[3] + i);
        for (int r = 0; r < 4; r++) {
            __m512 wv = load_w(type, w[r], i);
            acc[4 * r + 0] = _mm512_fmadd_ps(wv, x0, acc[4 * r + 0]);
            acc[4 * r + 1] = _mm512_fmadd_ps(wv, x1, acc[4 * r + 1]);
            acc[4 * r + 2] = _mm512_fmadd_ps(wv, x2, acc[4 * r + 2]);
            acc[4 * r + 3] = _mm512_fmadd_ps(wv, x3, acc[4 * r + 3]);
        }
    }
    if (i < k1) {
        __mmask16 m = (__mmask16)((1u << (k1 - i)) - 1u);
        __m512 x0 = _mm512_maskz_loadu_ps(m, x[0] + i), x1 = _mm512_maskz_loadu_ps(m, x[1] + i);
        __m512 x2 = _mm512_maskz_loadu_ps(m, x[2] + i), x3 = _mm512_maskz_loadu_ps(m, x[3] + i);
        for (int r = 0; r < 4; r++) {
            __m512 wv = load_w_mask(type, w[r], i, m);
            acc[4 * r + 0] = _mm512_fmadd_ps(wv, x0, acc[4 * r + 0]);
            acc[4 * r + 1] = _mm512_fmadd_ps(wv, x1, acc[4 * r + 1]);
            acc[4 * r + 2] = _mm512_fmadd_ps(wv, x2, acc[4 * r + 2]);
            acc[4 * r + 3] = _mm512_fmadd_ps(wv, x3, acc[4 * r + 3]);
        }
    }
    return kiln__avx512_reduce16(acc);
}

/* Block [k0, k1) of GEMV_ROWS weight rows times one activation row; the
 * unused accumulators stay 0, and row r's sum lands in lane 4 * (r % 4) + r / 4.
 * pf, unless NULL, is the next group of GEMV_ROWS rows (contiguous bytes):
 * each step of 16 values prefetches the next 16 * GEMV_ROWS weights of it
 * into L2, so the group is there when its turn comes. */
TARGET INLINE __m512 tile8x1(kiln_dtype type, const char *const w[GEMV_ROWS], const float *x, size_t k0,
                             size_t k1, const char *pf) {
    /* bytes of pf per step: 16 * GEMV_ROWS weights */
    const size_t step_bytes = (type == KILN_DTYPE_F32 ? 4 : 2) * 16 * GEMV_ROWS;
    __m512 acc[16];
    for (int k = 0; k < 16; k++) acc[k] = _mm512_setzero_ps();
    size_t i = k0;
    for (; i + 16 <= k1; i += 16) {
        __m512 xv = _mm512_loadu_ps(x + i);
        if (pf)
            for (size_t b = 0; b < step_bytes; b += 64) _mm_prefetch(pf + i / 16 * step_bytes + b, _MM_HINT_T1);
        for (int r = 0; r < GEMV_ROWS; r++) acc[r] = _mm512_fmadd_ps(load_w(type, w[r], i), xv, acc[r]);
    }
    if (i < k1) {
        __mmask16 m = (__mmask16)((1u << (k1 - i)) - 1u);
        __m512 xv = _mm512_maskz_loadu_ps(m, x + i);
        for (int r = 0; r < GEMV_ROWS; r++)
            acc[r] = _mm512_fmadd_ps(load_w_mask(type, w[r], i, m), xv, acc[r]);
    }
    return kiln__avx512_reduce16(acc);
}

/* y (= or +=) v: the first block sets the result, later ones add in order. */
static inline void put(float *y, float v, int first) { *y = first ? v : *y + v; }

/* Rows [r0, r1) for one token, GEMV_ROWS at a time (a short last group
 * repeats its first row and drops the copies); `after` is the first row of
 * the chunk this thread does next (n_out or more: none), whose first group
 * the last group here prefetches. Only whole groups are prefetched. */
TARGET INLINE void gemv_rows(kiln_dtype type, const struct gemm_job *job, size_t r0, size_t r1, size_t after) {
    for (size_t j = r0; j < r1; j += GEMV_ROWS) {
        size_t nr = r1 - j < GEMV_ROWS ? r1 - j : GEMV_ROWS;
        const char *w[GEMV_ROWS];
        for (size_t r = 0; r < GEMV_ROWS; r++) w[r] = job->w + (j + (r < nr ? r : 0)) * job->row_bytes;
        size_t next = j + GEMV_ROWS < r1 ? j + GEMV_ROWS : after;
        const char *pf = next < job->n_out && job->n_out - next >= GEMV_ROWS ? job->w + next * job->row_bytes : NULL;
        for (size_t k0 = 0; k0 < job->n_in; k0 += job->kc) {
            size_t k1 = job->n_in - k0 < job->kc ? job->n_in : k0 + job->kc;
            float s[16];
            _mm512_storeu_ps(s, tile8x1(type, w, job->x, k0, k1, pf));
            for (size_t r = 0; r < nr; r++) put(job->y + j + r, s[4 * (r % 4) + r / 4], k0 == 0);
        }
    }
}

/* Rows [r0, r1) (one chunk, at most ROW_CHUNK) for all tokens: per column
 * block, every group of 4 tokens passes over the chunk's 4-row tiles
 * (short groups repeat their first row or token and drop the copies). */
TARGET INLINE void gemm_rows(kiln_dtype type, const struct gemm_job *job, size_t r0, size_t r1) {
    size_t n_in = job->n_in, n_out = job->n_out, n_tok = job->n_tok;
    for (size_t k0 = 0; k0 < n_in; k0 += job->kc) {
        size_t k1 = n_in - k0 < job->kc ? n_in : k0 + job->kc;
        for (size_t t = 0; t < n_tok; t += 4) {
            size_t nt = n_tok - t < 4 ? n_tok - t : 4;
            const float *x[4];
            for (size_t u = 0; u < 4; u++) x[u] = job->x + (t + (u < nt ? u : 0)) * n_in;
            for (size_t j = r0; j < r1; j += 4) {
                size_t nr = r1 - j < 4 ? r1 - j : 4;
                const char *w[4];
                for (size_t r = 0; r < 4; r++) w[r] = job->w + (j + (r < nr ? r : 0)) * job->row_bytes;
                __m512 v = tile4x4(type, w, x, k0, k1);
                if (nr == 4) {
                    /* lanes 4u..4u+3 are token t+u's four rows */
                    for (size_t u = 0; u < nt; u++) {
                        float *out = job->y + (t + u) * n_out + j;
                        __m128 s = u == 0   ? _mm512_extractf32x4_ps(v, 0)
                                   : u == 1 ? _mm512_extractf32x4_ps(v, 1)
                                   : u == 2 ? _mm512_extractf32x4_ps(v, 2)
                                            : _mm512_extractf32x4_ps(v, 3);
                        _mm_storeu_ps(out, k0 == 0 ? s : _mm_add_ps(_mm_loadu_ps(out), s));
                    }
                } else {
                    float s[16];
                    _mm512_storeu_ps(s, v);
                    for (size_t u = 0; u < nt; u++)
                        for (size_t r = 0; r < nr; r++) put(job->y + (t + u) * n_out + j + r, s[4 * u + r], k0 == 0);
                }
            }
        }
    }
}

/* First row of the next chunk of `chunk` rows (n_out or more when none is left). */
static inline size_t take(struct gemm_job *job, size_t chunk) {
    return atomic_fetch_add_explicit(&job->next, 1, memory_order_relaxed) * chunk;
}

/* Take chunks of rows (GEMV_CHUNK for one token, ROW_CHUNK else) until
 * none are left: a thread that gets less of the CPU takes fewer, so the
 * threads finish together. Which thread computes a row changes no bits.
 * One token claims its next chunk before doing the current one, so that
 * the current one's last group can prefetch it. */
TARGET INLINE void part(kiln_dtype type, struct gemm_job *job) {
    size_t chunk = job->n_tok == 1 ? GEMV_CHUNK : ROW_CHUNK, n_out = job->n_out;
    if (job->n_tok == 1) {
        for (size_t r0 = take(job, chunk); r0 < n_out;) {
            size_t after = take(job, chunk);
            gemv_rows(type, job, r0, n_out - r0 < chunk ? n_out : r0 + chunk, after);
            r0 = after;
        }
        return;
    }
    for (size_t r0 = take(job, chunk); r0 < n_out; r0 = take(job, chunk))
        gemm_rows(type, job, r0, n_out - r0 < chunk ? n_out : r0 + chunk);
}

/* One pool entry point per weight type, so the type folds into the loops. */
TARGET static void part_f32(void *ctx, int ith, int nth) { (void)ith, (void)nth; part(KILN_DTYPE_F32, ctx); }
TARGET static void part_f16(void *ctx, int ith, int nth) { (void)ith, (void)nth; part(KILN_DTYPE_F16, ctx); }
TARGET static void part_bf16(void *ctx, int ith, int nth) { (void)ith, (void)nth; part(KILN_DTYPE_BF16, ctx); }

int kiln__gemm_avx512_usable(kiln_dtype wtype) {
    const kiln_cpu_features *f = kiln__cpu();
    if (!f->avx512f || !f->avx512bw || !f->avx512vl || !f->fma || !f->f16c) return 0;
    return wtype == KILN_DTYPE_F32 || wtype == KILN_DTYPE_F16 || wtype == KILN_DTYPE_BF16;
}

void kiln__gemm_avx512(kiln_pool *pool, kiln_dtype wtype, const void *w, size_t n_out, size_t n_in,
                       const float *x, size_t n_tok, float *y) {
    if (n_out == 0 || n_tok == 0) return;
    size_t esize = wtype == KILN_DTYPE_F32 ? 4 : 2;
    struct gemm_job job = {w, n_in * esize, n_out, n_in, kiln__gemm_block(n_in), x, n_tok, y, 0};
    atomic_init(&job.next, 0);
    kiln_pool_fn fn = wtype == KILN_DTYPE_F32 ? part_f32 : wtype == KILN_DTYPE_F16 ? part_f16 : part_bf16;
    kiln__pool_run(pool, fn, &job);
}
