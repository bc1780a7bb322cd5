/* src/kernels/qmatmul_avx512.c - the blocked GEMM of the avx512 level of
 * the quantized matmul (prompt processing: many tokens).
 *
 * A panel of 16 weight rows is unpacked once into groups (qmatmul.h) and
 * transposed so that one 512-bit register holds four consecutive unsigned
 * integers of each of the 16 rows: [k/4][row][k%4]. The micro-kernel keeps
 * 16 rows x T tokens (T <= 8) of int32 dot products in registers: per step
 * of four values one panel load and, per token, one vpdpbusd with the
 * token's four signed activation bytes broadcast to every lane. After each
 * group the integer sums become floats, so each weight integer loaded
 * serves T tokens and the panel (16 * n_in bytes) stays in L1/L2 while
 * every token passes over it. On Zen 4 a float multiply or FMA costs a
 * vpdpbusd slot (a conversion or an integer add does not), so the
 * per-group float work is kept small: types whose bias is a zero point
 * times the scale (Q8_0, Q4_0, Q5_0, Q6_K) start the group's int32 sums at
 * the zero point's dot product (the tile's zs) instead of adding
 * b * (da * sum(qa)) in floats, and the K-quants, whose activations have
 * one scale per 256 values, sum s * isum over a super-block's groups and
 * multiply by da once. The panel comes from the file's rows
 * (kiln__qpanel_unpack_avx512) or from a group of the x16 layout (its
 * type's panel function); the multiply is the same.
 */
#include <immintrin.h>
#include <string.h>

#include "kernels/qmatmul_impl.h"
#include "tensor/quant_blocks.h"

#define TARGET __attribute__((target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")))

/* The unsigned integers of one weight row (as kiln__qgroups_row's u), with
 * vector code for the types this level sees most; 0 when the type has none. */
TARGET static int row_u(kiln_dtype wtype, const char *row, size_t n_in, uint8_t *u) {
    const __m128i low = _mm_set1_epi8(0x0f);
    switch (wtype) {
    case KILN_DTYPE_Q8_0:
        for (size_t k = 0; k < n_in / KILN_QK; k++) {
            const kiln_block_q8_0 *b = (const kiln_block_q8_0 *)(const void *)row + k;
            __m256i q = _mm256_loadu_si256((const __m256i *)(const void *)b->qs);
            _mm256_storeu_si256((__m256i *)(void *)(u + k * KILN_QK), _mm256_xor_si256(q, _mm256_set1_epi8(-128)));
        }
        return 1;
    case KILN_DTYPE_Q4_0:
        for (size_t k = 0; k < n_in / KILN_QK; k++) {
            const kiln_block_q4_0 *b = (const kiln_block_q4_0 *)(const void *)row + k;
            __m128i x = _mm_loadu_si128((const __m128i *)(const void *)b->qs);
            _mm_storeu_si128((__m128i *)(void *)(u + k * KILN_QK), _mm_and_si128(x, low));
            _mm_storeu_si128((__m128i *)(void *)(u + k * KILN_QK + 16), _mm_and_si128(_mm_srli_epi16(x, 4), low));
        }
        return 1;
    case KILN_DTYPE_Q4_K:
        for (size_t k = 0; k < n_in / KILN_QK_K; k++) {
            const kiln_block_q4_K *b = (const kiln_block_q4_K *)(const void *)row + k;
            for (int c = 0; c < 4; c++) {
                __m256i x = _mm256_loadu_si256((const __m256i *)(const void *)(b->qs + 32 * c));
                __m256i l4 = _mm256_set1_epi8(0x0f);
                _mm256_storeu_si256((__m256i *)(void *)(u + k * KILN_QK_K + 64 * (size_t)c), _mm256_and_si256(x, l4));
                _mm256_storeu_si256((__m256i *)(void *)(u + k * KILN_QK_K + 64 * (size_t)c + 32),
                                    _mm256_and_si256(_mm256_srli_epi16(x, 4), l4));
            }
        }
        return 1;
    case KILN_DTYPE_Q6_K:
        for (size_t k = 0; k < n_in / KILN_QK_K; k++) {
            const kiln_block_q6_K *b = (const kiln_block_q6_K *)(const void *)row + k;
            const __m256i l4 = _mm256_set1_epi8(0x0f), two = _mm256_set1_epi8(3);
            for (int h = 0; h < 2; h++) {
                __m256i q1 = _mm256_loadu_si256((const __m256i *)(const void *)(b->ql + 64 * h));
                __m256i q2 = _mm256_loadu_si256((const __m256i *)(const void *)(b->ql + 64 * h + 32));
                __m256i hb = _mm256_loadu_si256((const __m256i *)(const void *)(b->qh + 32 * h));
                uint8_t *o = u + k * KILN_QK_K + 128 * (size_t)h;
                _mm256_storeu_si256((__m256i *)(void *)o,
                                    _mm256_or_si256(_mm256_and_si256(q1, l4), _mm256_slli_epi16(_mm256_and_si256(hb, two), 4)));
                _mm256_storeu_si256((__m256i *)(void *)(o + 32),
                                    _mm256_or_si256(_mm256_and_si256(q2, l4),
                                                    _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hb, 2), two), 4)));
                _mm256_storeu_si256((__m256i *)(void *)(o + 64),
                                    _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(q1, 4), l4),
                                                    _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hb, 4), two), 4)));
                _mm256_storeu_si256((__m256i *)(void *)(o + 96),
                                    _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(q2, 4), l4),
                                                    _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hb, 6), two), 4)));
            }
        }
        return 1;
    case KILN_DTYPE_F32: case KILN_DTYPE_F16: case KILN_DTYPE_BF16: case KILN_DTYPE_Q4_1:
    case KILN_DTYPE_Q5_0: case KILN_DTYPE_Q5_1: case KILN_DTYPE_Q8_1: case KILN_DTYPE_Q2_K:
    case KILN_DTYPE_Q3_K: case KILN_DTYPE_Q5_K: case KILN_DTYPE_Q8_K: case KILN_DTYPE_I8:
    case KILN_DTYPE_I16: case KILN_DTYPE_I32: case KILN_DTYPE_I64: case KILN_DTYPE_F64:
    case KILN_DTYPE_U8: case KILN_DTYPE_BOOL: case KILN_DTYPE_F8_E4M3: case KILN_DTYPE_F8_E5M2:
    case KILN_DTYPE_UNKNOWN:
        break;
    }
    return 0;
}

/* The integers are gathered 64 bytes per row at a time and transposed in
 * registers, 16 rows x 16 int32. */
TARGET void kiln__qpanel_unpack_avx512(kiln_dtype wtype, const char *w, size_t row_bytes, size_t row0,
                                       size_t n_rows, size_t n_in, struct kiln_qpanel *p) {
    size_t gs = (size_t)kiln__qgroup_size(wtype), ng = n_in / gs;
    for (size_t r = 0; r < KILN_QPANEL_ROWS; r++) {
        uint8_t *ur = p->row_u + r * n_in;
        if (r < n_rows) {
            const char *row = w + (row0 + r) * row_bytes;
            int vec = row_u(wtype, row, n_in, ur);
            kiln__qgroups_row(wtype, row, n_in, vec ? NULL : ur, p->row_s, p->row_b);
        } else {
            memset(ur, 0, n_in);
            memset(p->row_s, 0, ng * sizeof(float));
            memset(p->row_b, 0, ng * sizeof(float));
        }
        for (size_t g = 0; g < ng; g++) {
            p->s[g * KILN_QPANEL_ROWS + r] = p->row_s[g];
            p->b[g * KILN_QPANEL_ROWS + r] = p->row_b[g];
        }
    }
    /* 16 rows x 64 bytes -> 16 steps of (16 rows x 4 bytes): a 16 x 16
     * transpose of int32, by four rounds of two-source permutes */
    for (size_t c = 0; c < n_in; c += 64) {
        __m512i v[16];
        for (int r = 0; r < 16; r++) v[r] = _mm512_loadu_si512((const void *)(p->row_u + (size_t)r * n_in + c));
        for (int bit = 0; bit < 4; bit++) {
            /* exchange, between rows r and r + h (h = 1 << (3 - bit)), the
             * element groups selected by that bit */
            int h = 8 >> bit;
            __m512i lo_idx, hi_idx;
            {
                int32_t li[16], hi[16];
                for (int e = 0; e < 16; e++) {
                    /* row r keeps a[e] where bit h of e is clear and takes b[e - h]
                     * where set; row r + h takes a[e + h], keeps b[e] */
                    int set = (e & h) != 0;
                    li[e] = set ? 16 + (e - h) : e;
                    hi[e] = set ? 16 + e : e + h;
                }
                lo_idx = _mm512_loadu_si512((const void *)li);
                hi_idx = _mm512_loadu_si512((const void *)hi);
            }
            for (int r = 0; r < 16; r++) {
                if (r & h) continue;
                __m512i a = v[r], b = v[r + h];
                v[r] = _mm512_permutex2var_epi32(a, lo_idx, b);
                v[r + h] = _mm512_permutex2var_epi32(a, hi_idx, b);
            }
        }
        for (int s = 0; s < 16 && c + 4 * (size_t)s < n_in; s++)
            _mm512_store_si512((void *)(p->u + (c / 4 + (size_t)s) * 64), v[s]);
    }
}

/* Four activation bytes as one int32. */
static inline int32_t load4(const int8_t *q) {
    int32_t v;
    memcpy(&v, q, 4);
    return v;
}

/* The 16 x 8 tile of tile `tile` of the activations, groups of G values;
 * the results of tokens t < n_valid are stored. ZERO: each group's integer
 * sums start at the tile's zs (the zero point's dot product), so the
 * panel's biases are not read; else (Q4_K) they are added in floats. KQ:
 * one activation scale per 256 values (K-quants), applied once per
 * super-block to the sums of its groups; else one per group of 32. */
TARGET __attribute__((always_inline)) static inline void tile8(const struct kiln_qpanel *p,
                                                               const struct kiln_qtiles *at, size_t tile,
                                                               const int G, const int ZERO, const int KQ, float *y,
                                                               size_t n_out, size_t row0, __mmask16 mask,
                                                               size_t n_valid) {
    enum { T = KILN_QTILE_TOK };
    size_t n_in = at->n_in, nb = n_in / KILN_QA_BLOCK, ng = n_in / (size_t)G;
    const int8_t *q = at->qs + tile * n_in * T;
    const float *dd = at->d + tile * nb * T, *ds = at->ds + tile * ng * T;
    const int32_t *zs = at->zs + tile * ng * T;
    /* groups per activation scale */
    const size_t per = KQ ? (size_t)KILN_QK_K / (size_t)G : 1;
    __m512 f[T];
    for (int t = 0; t < T; t++) f[t] = _mm512_setzero_ps();
    for (size_t g0 = 0; g0 < ng; g0 += per) {
        /* sf: the super-block's sums times the weight scales (KQ) */
        __m512 sf[T];
        for (int t = 0; t < T; t++) sf[t] = _mm512_setzero_ps();
        for (size_t g = g0; g < g0 + per; g++) {
            const uint8_t *u = p->u + g * (size_t)G * KILN_QPANEL_ROWS;
            const int8_t *qg = q + g * (size_t)G * T;
            __m512i acc[T];
            for (int t = 0; t < T; t++)
                acc[t] = ZERO ? _mm512_set1_epi32(zs[g * T + (size_t)t]) : _mm512_setzero_si512();
            for (int s = 0; s < G / 4; s++) {
                __m512i wv = _mm512_load_si512((const void *)(u + (size_t)s * 64));
                for (int t = 0; t < T; t++)
                    acc[t] = _mm512_dpbusd_epi32(acc[t], wv, _mm512_set1_epi32(load4(qg + (s * T + t) * 4)));
            }
            __m512 sv = _mm512_load_ps(p->s + g * KILN_QPANEL_ROWS);
            if (KQ) {
                for (int t = 0; t < T; t++) sf[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(acc[t]), sv, sf[t]);
            } else {
                const float *dg = dd + g * (size_t)G / KILN_QA_BLOCK * T;
                for (int t = 0; t < T; t++)
                    f[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(acc[t]), _mm512_mul_ps(sv, _mm512_set1_ps(dg[t])), f[t]);
            }
            if (!ZERO) {
                __m512 bv = _mm512_load_ps(p->b + g * KILN_QPANEL_ROWS);
                for (int t = 0; t < T; t++) f[t] = _mm512_fmadd_ps(bv, _mm512_set1_ps(ds[g * T + (size_t)t]), f[t]);
            }
        }
        if (KQ) {
            const float *dg = dd + g0 * (size_t)G / KILN_QA_BLOCK * T;
            for (int t = 0; t < T; t++) f[t] = _mm512_fmadd_ps(sf[t], _mm512_set1_ps(dg[t]), f[t]);
        }
    }
    size_t t0 = tile * T;
    for (int t = 0; t < T; t++)
        if ((size_t)t < n_valid) _mm512_mask_storeu_ps(y + (t0 + (size_t)t) * n_out + row0, mask, f[t]);
}

TARGET void kiln__qgemm_panel_avx512(const struct kiln_qpanel *p, const struct kiln_qtiles *at, size_t n_tok,
                                     float *y, size_t n_out, size_t row0, size_t n_rows) {
    __mmask16 mask = (__mmask16)((1u << n_rows) - 1u);
    for (size_t tile = 0; tile * KILN_QTILE_TOK < n_tok; tile++) {
        size_t n_valid = n_tok - tile * KILN_QTILE_TOK;
        if (at->group == 16) tile8(p, at, tile, 16, 1, 1, y, n_out, row0, mask, n_valid); /* Q6_K */
        else if (at->k_rule) tile8(p, at, tile, 32, 0, 1, y, n_out, row0, mask, n_valid); /* Q4_K */
        else tile8(p, at, tile, 32, 1, 0, y, n_out, row0, mask, n_valid); /* Q8_0, Q4_0, Q5_0 */
    }
}
