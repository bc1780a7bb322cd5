/* src/kernels/gemm_bf16.c - BF16 weights times BF16-rounded activations
 * with vdpbf16ps (kiln__gemm_bf16; meaning and summation contract in
 * gemm_bf16.h).
 *
 * First the activations are rounded to bfloat16 into a work area, each row
 * zero-padded to a multiple of 32 values (the rounding done with integer
 * vector code that matches kiln__f32_to_bf16 bit for bit). The weights are
 * read in place: one vdpbf16ps multiplies 32 of them with 32 activations
 * and adds the 16 pair sums to an accumulator, twice the multiply-adds of
 * a float32 FMA per instruction and half the bytes read.
 * - One token (generation): GEMV_ROWS rows per pass, one accumulator each,
 *   so the weights stream from memory once at full width; each pass
 *   prefetches the next group of rows into L2 as one linear stream (the
 *   hardware prefetchers alone leave the loads waiting on memory).
 * - Several tokens: tiles of 4 rows x TILE_TOK tokens (24 accumulators);
 *   per chunk of ROW_CHUNK rows and block of kc values the
 *   chunk's weights (128 KiB) stay in L2 and each token group's rounded
 *   activations (12 KiB) in L1 while the tiles pass.
 * F16 weights (the opt-in lossy mode) are rounded to bfloat16 on the way:
 * in registers for one token, and for several into a per-thread panel of
 * the chunk's block (ROW_CHUNK x kc values) that the tiles then
 * read like BF16 weights, so each weight is rounded once per call.
 * Rows are handed out in chunks by an atomic counter, so the threads
 * finish together even when one gets less of the CPU.
 */
#include "kernels/gemm_bf16.h"

#include <immintrin.h>
#include <stdatomic.h>
#include <stdint.h>

#include "core/alloc.h"
#include "core/cpu.h"
#include "core/error.h"
#include "kernels/avx512_math.h"
#include "tensor/fp16.h"

#define TARGET __attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16")))
#define INLINE static inline __attribute__((always_inline))

/* Rows per chunk of the many-token path (a multiple of 4). */
#define ROW_CHUNK 64
/* Rows per chunk (a multiple of GEMV_ROWS) and per pass of the one-token path. */
#define GEMV_CHUNK 32
#define GEMV_ROWS 8
/* Tokens per tile of the many-token path (5..8; with 6, the 24
 * accumulators, 6 activation vectors and a weight vector fit the 32 registers). */
#define TILE_TOK 6

/* Fewest activation rows that are rounded by the pool rather than by the
 * calling thread alone. */
#define ROUND_IN_POOL 16

/* What every thread reads. */
struct bf16_job {
    kiln_dtype wtype;   /* KILN_DTYPE_BF16, or F16 (rounded to bfloat16 here) */
    const uint16_t *w;  /* weights, row-major [n_out][n_in] */
    size_t n_out;       /* weight rows */
    size_t n_in;        /* values per row */
    const float *x;     /* [n_tok][n_in] activations */
    uint16_t *xb;       /* [n_tok][xb_stride] the activations rounded, zero-padded */
    size_t xb_stride;   /* n_in rounded up to a multiple of 32 */
    size_t n_tok;       /* activation rows */
    float *y;           /* [n_tok][n_out] results */
    size_t kc;          /* values per partial sum, kiln__bf16_block(n_in) */
    uint16_t *panels;   /* F16 weights, several tokens: per thread ROW_CHUNK * kc values; else NULL */
    atomic_size_t next; /* next chunk of rows to hand out */
};

/* Mask of the first n (1..32) 16-bit lanes. */
static inline __mmask32 first32(size_t n) { return (__mmask32)(n >= 32 ? 0xffffffffu : (1u << n) - 1u); }

/* 16 floats rounded to bfloat16 exactly as kiln__f32_to_bf16 does: add
 * 0x7fff plus the lowest kept bit and truncate; NaNs keep their top bits
 * with the quiet bit set. */
TARGET INLINE __m256i round_bf16(__m512 v) {
    __m512i b = _mm512_castps_si512(v);
    __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(b, 16), _mm512_set1_epi32(1));
    __m512i r = _mm512_srli_epi32(_mm512_add_epi32(b, _mm512_add_epi32(lsb, _mm512_set1_epi32(0x7fff))), 16);
    __mmask16 nan = _mm512_cmpgt_epu32_mask(_mm512_and_si512(b, _mm512_set1_epi32(0x7fffffff)),
                                            _mm512_set1_epi32(0x7f800000));
    r = _mm512_mask_or_epi32(r, nan, _mm512_srli_epi32(b, 16), _mm512_set1_epi32(0x40));
    return _mm512_cvtepi32_epi16(r);
}

/* Round activation rows [t0, t1) into xb. */
TARGET static void round_rows(const struct bf16_job *job, size_t t0, size_t t1) {
    for (size_t t = t0; t < t1; t++) {
        const float *src = job->x + t * job->n_in;
        uint16_t *dst = job->xb + t * job->xb_stride;
        for (size_t i = 0; i < job->xb_stride; i += 16) {
            size_t left = job->n_in > i ? job->n_in - i : 0;
            __m512 v = left >= 16 ? _mm512_loadu_ps(src + i)
                                  : _mm512_maskz_loadu_ps((__mmask16)((1u << left) - 1u), src + i);
            _mm256_storeu_si256((__m256i *)(void *)(dst + i), round_bf16(v));
        }
    }
}

/* Pool pass 1: each thread rounds its share of the activation rows. */
TARGET static void round_part(void *ctx, int ith, int nth) {
    const struct bf16_job *job = ctx;
    size_t per = (job->n_tok + (size_t)nth - 1) / (size_t)nth;
    size_t t0 = per * (size_t)ith, t1 = t0 + per < job->n_tok ? t0 + per : job->n_tok;
    if (t0 < t1) round_rows(job, t0, t1);
}

/* 32 bfloat16 weights of a row from index i; only the first n (1..32)
 * when n < 32 (the rest 0, nothing beyond them read). */
TARGET INLINE __m512bh load_w(const uint16_t *row, size_t i, size_t n) {
    if (n >= 32) return (__m512bh)_mm512_loadu_si512(row + i);
    return (__m512bh)_mm512_maskz_loadu_epi16(first32(n), row + i);
}

/* The same from F16 weights, each rounded to bfloat16 (nearest even; an
 * F16 value is a normal float32, so this is kiln__f32_to_bf16's result for
 * every non-NaN). */
TARGET INLINE __m512bh load_w_f16(const uint16_t *row, size_t i, size_t n) {
    __m512i h = n >= 32 ? _mm512_loadu_si512(row + i) : _mm512_maskz_loadu_epi16(first32(n), row + i);
    __m512 lo = _mm512_cvtph_ps(_mm512_castsi512_si256(h)), hi = _mm512_cvtph_ps(_mm512_extracti64x4_epi64(h, 1));
    return _mm512_cvtne2ps_pbh(hi, lo);
}

/* Weights of either type as bfloat16. */
TARGET INLINE __m512bh load_any(kiln_dtype type, const uint16_t *row, size_t i, size_t n) {
    return type == KILN_DTYPE_F16 ? load_w_f16(row, i, n) : load_w(row, i, n);
}

TARGET INLINE __m512bh load_x(const uint16_t *xb, size_t i) { return (__m512bh)_mm512_loadu_si512(xb + i); }

/* Block [k0, k1) of GEMV_ROWS rows times one token; row r's sum lands in
 * lane 4 * (r % 4) + r / 4 (accumulators past GEMV_ROWS stay 0). pf, unless
 * NULL, is the next group of GEMV_ROWS rows (contiguous): each step of 32
 * values prefetches the next 32 * GEMV_ROWS weights of it into L2. */
TARGET INLINE __m512 tile_rows(kiln_dtype type, const uint16_t *const w[GEMV_ROWS], const uint16_t *xb, size_t k0,
                               size_t k1, const uint16_t *pf) {
    __m512 acc[16];
    for (int k = 0; k < 16; k++) acc[k] = _mm512_setzero_ps();
    for (size_t i = k0; i < k1; i += 32) {
        __m512bh xv = load_x(xb, i);
        if (pf && k1 - i >= 32) /* a short last step would reach past the group */
            for (size_t v = 0; v < 32 * GEMV_ROWS; v += 32)
                _mm_prefetch((const char *)(pf + i * GEMV_ROWS + v), _MM_HINT_T1);
        for (int r = 0; r < GEMV_ROWS; r++) acc[r] = _mm512_dpbf16_ps(acc[r], load_any(type, w[r], i, k1 - i), xv);
    }
    return kiln__avx512_reduce16(acc);
}

/* n values of 4 bfloat16 rows times TILE_TOK tokens (w and xb point at
 * the block's first value): token t < 4's rows land in lanes 4t..4t+3 of
 * out[0], token 4 + t's in lanes 4t..4t+3 of out[1]. */
TARGET INLINE void tile_tok(const uint16_t *const w[4], const uint16_t *const xb[TILE_TOK], size_t n, __m512 out[2]) {
    __m512 acc[4][TILE_TOK];
    for (int r = 0; r < 4; r++)
        for (int t = 0; t < TILE_TOK; t++) acc[r][t] = _mm512_setzero_ps();
    for (size_t i = 0; i < n; i += 32) {
        __m512bh xv[TILE_TOK];
        for (int t = 0; t < TILE_TOK; t++) xv[t] = load_x(xb[t], i);
        for (int r = 0; r < 4; r++) {
            __m512bh wv = load_w(w[r], i, n - i);
            for (int t = 0; t < TILE_TOK; t++) acc[r][t] = _mm512_dpbf16_ps(acc[r][t], wv, xv[t]);
        }
    }
    __m512 a[16];
    for (int r = 0; r < 4; r++)
        for (int t = 0; t < 4; t++) a[4 * r + t] = acc[r][t];
    out[0] = kiln__avx512_reduce16(a);
    for (int r = 0; r < 4; r++)
        for (int t = 0; t < 4; t++) a[4 * r + t] = t + 4 < TILE_TOK ? acc[r][(t + 4) % TILE_TOK] : _mm512_setzero_ps();
    out[1] = kiln__avx512_reduce16(a);
}

/* y (= or +=) v: the first block sets the result, later ones add in order. */
static inline void put(float *y, float v, int first) { *y = first ? v : *y + v; }

/* The 4 values of 128-bit piece q (0..3) of v, stored to out, or added to
 * what it holds unless first (the same float additions as put). */
TARGET INLINE void put4(float *out, __m512 v, int q, int first) {
    __m128 s = q == 0   ? _mm512_extractf32x4_ps(v, 0)
               : q == 1 ? _mm512_extractf32x4_ps(v, 1)
               : q == 2 ? _mm512_extractf32x4_ps(v, 2)
                        : _mm512_extractf32x4_ps(v, 3);
    _mm_storeu_ps(out, first ? s : _mm_add_ps(_mm_loadu_ps(out), s));
}

/* Rows [r0, r1) for one token. A short last group repeats its first row
 * and drops the copies. `after` is the first row of the chunk this thread
 * does next (n_out or more: none), whose first group the last group here
 * prefetches; only whole groups are prefetched. */
TARGET INLINE void gemv_rows(const struct bf16_job *job, size_t r0, size_t r1, size_t after) {
    for (size_t j = r0; j < r1; j += GEMV_ROWS) {
        size_t nr = r1 - j < GEMV_ROWS ? r1 - j : GEMV_ROWS;
        const uint16_t *w[GEMV_ROWS];
        for (size_t r = 0; r < GEMV_ROWS; r++) w[r] = job->w + (j + (r < nr ? r : 0)) * job->n_in;
        size_t next = j + GEMV_ROWS < r1 ? j + GEMV_ROWS : after;
        const uint16_t *pf = next < job->n_out && job->n_out - next >= GEMV_ROWS ? job->w + next * job->n_in : NULL;
        for (size_t k0 = 0; k0 < job->n_in; k0 += job->kc) {
            size_t k1 = job->n_in - k0 < job->kc ? job->n_in : k0 + job->kc;
            float s[16];
            _mm512_storeu_ps(s, tile_rows(job->wtype, w, job->xb, k0, k1, pf));
            for (size_t r = 0; r < nr; r++) put(job->y + j + r, s[4 * (r % 4) + r / 4], k0 == 0);
        }
    }
}

/* F16 rows [r0, r1) (at most ROW_CHUNK), values [k0, k0 + n), rounded to
 * bfloat16 into panel (row stride kc). */
TARGET INLINE void round_panel(const struct bf16_job *job, size_t r0, size_t r1, size_t k0, size_t n,
                               uint16_t *panel) {
    for (size_t j = r0; j < r1; j++)
        for (size_t i = 0; i < n; i += 32)
            _mm512_storeu_si512(panel + (j - r0) * job->kc + i,
                                (__m512i)load_w_f16(job->w + j * job->n_in + k0, i, n - i));
}

/* Rows [r0, r1) (at most ROW_CHUNK) for all tokens, with this thread's
 * panel for F16 weights: per block of values, every group of TILE_TOK
 * tokens passes over the 4-row tiles (short groups repeat their first row
 * or token and drop the copies). */
TARGET INLINE void gemm_rows(const struct bf16_job *job, size_t r0, size_t r1, uint16_t *panel) {
    size_t n_in = job->n_in, n_out = job->n_out, n_tok = job->n_tok;
    for (size_t k0 = 0; k0 < n_in; k0 += job->kc) {
        size_t n = n_in - k0 < job->kc ? n_in - k0 : job->kc;
        if (panel) round_panel(job, r0, r1, k0, n, panel);
        for (size_t t = 0; t < n_tok; t += TILE_TOK) {
            size_t nt = n_tok - t < TILE_TOK ? n_tok - t : TILE_TOK;
            const uint16_t *xb[TILE_TOK];
            for (size_t u = 0; u < TILE_TOK; u++) xb[u] = job->xb + (t + (u < nt ? u : 0)) * job->xb_stride + k0;
            for (size_t j = r0; j < r1; j += 4) {
                size_t nr = r1 - j < 4 ? r1 - j : 4;
                const uint16_t *w[4];
                for (size_t r = 0; r < 4; r++) {
                    size_t row = j + (r < nr ? r : 0);
                    w[r] = panel ? panel + (row - r0) * job->kc : job->w + row * n_in + k0;
                }
                __m512 v[2];
                tile_tok(w, xb, n, v);
                for (size_t u = 0; u < nt; u++) {
                    float *out = job->y + (t + u) * n_out + j;
                    if (nr == 4) {
                        put4(out, v[u / 4], (int)(u % 4), k0 == 0);
                    } else {
                        float s[16];
                        _mm512_storeu_ps(s, v[u / 4]);
                        for (size_t r = 0; r < nr; r++) put(out + r, s[4 * (u % 4) + r], k0 == 0);
                    }
                }
            }
        }
    }
}

/* First row of the next chunk of `chunk` rows (n_out or more when none is left). */
static inline size_t take(struct bf16_job *job, size_t chunk) {
    return atomic_fetch_add_explicit(&job->next, 1, memory_order_relaxed) * chunk;
}

/* Pool pass 2: take chunks of rows until none are left. One token claims
 * its next chunk before doing the current one, whose last group then
 * prefetches it. */
TARGET static void gemm_part(void *ctx, int ith, int nth) {
    (void)nth;
    struct bf16_job *job = ctx;
    uint16_t *panel = job->panels ? job->panels + (size_t)ith * ROW_CHUNK * job->kc : NULL;
    size_t chunk = job->n_tok == 1 ? GEMV_CHUNK : ROW_CHUNK, n_out = job->n_out;
    if (job->n_tok == 1) {
        for (size_t r0 = take(job, chunk); r0 < n_out;) {
            size_t after = take(job, chunk);
            gemv_rows(job, r0, n_out - r0 < chunk ? n_out : r0 + chunk, after);
            r0 = after;
        }
        return;
    }
    for (size_t r0 = take(job, chunk); r0 < n_out; r0 = take(job, chunk))
        gemm_rows(job, r0, n_out - r0 < chunk ? n_out : r0 + chunk, panel);
}

int kiln__gemm_bf16_usable(void) {
    const kiln_cpu_features *f = kiln__cpu();
    return f->avx512f && f->avx512bw && f->avx512vl && f->avx512bf16;
}

kiln_status kiln__gemm_bf16(kiln_pool *pool, kiln_dtype wtype, const void *w, size_t n_out, size_t n_in,
                            const float *x, size_t n_tok, float *y) {
    if (n_out == 0 || n_tok == 0) return KILN_OK;
    size_t stride = (n_in + 31) / 32 * 32;
    /* one work area: the rounded activations, then the F16 panels */
    size_t xb_vals = n_tok * stride;
    size_t panel_vals = wtype == KILN_DTYPE_F16 && n_tok > 1
                            ? (size_t)kiln__pool_size(pool) * ROW_CHUNK * kiln__bf16_block(n_in) : 0;
    uint16_t *work = kiln__aligned_alloc((xb_vals + panel_vals) * sizeof *work, 64);
    if (!work) return kiln__fail(KILN_ERR_OUT_OF_MEMORY, "gemm_bf16: %zu x %zu rounded activations", n_tok, n_in);
    struct bf16_job job = {wtype, w, n_out, n_in, x, work, stride, n_tok, y, kiln__bf16_block(n_in),
                           panel_vals ? work + xb_vals : NULL, 0};
    atomic_init(&job.next, 0);
    /* a few rows (generation) are rounded here: a pool pass would cost more */
    if (n_tok < ROUND_IN_POOL) round_rows(&job, 0, n_tok);
    else kiln__pool_run(pool, round_part, &job);
    kiln__pool_run(pool, gemm_part, &job);
    kiln__aligned_free(work);
    return KILN_OK;
}

void kiln__gemm_bf16_ref(kiln_dtype wtype, const void *w, size_t n_out, size_t n_in, const float *x, size_t n_tok,
                         float *y) {
    const uint16_t *wb = w;
    for (size_t t = 0; t < n_tok; t++)
        for (size_t j = 0; j < n_out; j++) {
            double s = 0.0;
            for (size_t i = 0; i < n_in; i++) {
                uint16_t v = wb[j * n_in + i];
                float wv = wtype == KILN_DTYPE_F16 ? kiln__bf16_to_f32(kiln__f32_to_bf16(kiln__f16_to_f32(v)))
                                                  : kiln__bf16_to_f32(v);
                s += (double)wv * (double)kiln__bf16_to_f32(kiln__f32_to_bf16(x[t * n_in + i]));
            }
            y[t * n_out + j] = (float)s;
        }
}
