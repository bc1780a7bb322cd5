/* src/kernels/qmatmul.c - the quantized matmul (qmatmul.h): activation
 * quantization, the scalar reference, the unpacking of weight rows into
 * groups, the calling thread's reusable buffer, and the split of the work
 * over the thread pool on each level (for the file's layout and x16). */
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

#include "core/alloc.h"
#include "core/cpu.h"
#include "core/error.h"
#include "kernels/ops.h"
#include "kernels/qmatmul.h"
#include "kernels/qmatmul_impl.h"
#include "kernels/qmatmul_x16.h"
#include "tensor/dequant.h"
#include "tensor/fp16.h"
#include "tensor/quant_blocks.h"
#include "tensor/tensor.h"

/* ---- activations ---- */

/* roundf(v) clamped to -127..127; NaN gives 0 (as quantize.c does). */
static int round_q8(float v) {
    if (isnan(v)) return 0;
    if (v <= -127.0f) return -127;
    if (v >= 127.0f) return 127;
    return (int)roundf(v);
}

/* Round half to even, clamped to -127..127; NaN gives 0 (quantize.c's
 * nearest for Q8_K). */
static int nearest_q8(float v) {
    if (isnan(v)) return 0;
    if (v <= -127.0f) return -127;
    if (v >= 127.0f) return 127;
    return (int)lrintf(v);
}

/* The sums of the 32-value block k of row t (its quants already stored). */
void kiln__qact_block_sums(const kiln_qact *q, size_t t, size_t k) {
    size_t nb = q->n_in / KILN_QA_BLOCK;
    const int8_t *qb = q->qs + t * q->n_in + k * KILN_QA_BLOCK;
    int half[2] = {0, 0};
    for (int j = 0; j < KILN_QA_BLOCK; j++) half[j / 16] += qb[j];
    float d = q->d[t * nb + k];
    q->ds32[t * nb + k] = d * (float)(half[0] + half[1]);
    q->ds16[2 * (t * nb + k)] = d * (float)half[0];
    q->ds16[2 * (t * nb + k) + 1] = d * (float)half[1];
}

void kiln__qact_quantize_row(const kiln_qact *q, size_t t, const float *x) {
    size_t n_in = q->n_in, nb = n_in / KILN_QA_BLOCK;
    int8_t *qs = q->qs + t * n_in;
    if (q->k_rule) {
        for (size_t k = 0; k < n_in / KILN_QK_K; k++) {
            const float *xb = x + k * KILN_QK_K;
            float amax = 0.0f, max = 0.0f;
            for (int j = 0; j < KILN_QK_K; j++) {
                if (fabsf(xb[j]) > amax) {
                    amax = fabsf(xb[j]);
                    max = xb[j];
                }
            }
            float iscale = amax != 0.0f ? -127.0f / max : 0.0f;
            for (int j = 0; j < KILN_QK_K; j++) qs[k * KILN_QK_K + (size_t)j] = (int8_t)nearest_q8(iscale * xb[j]);
            for (size_t b = 0; b < KILN_QK_K / KILN_QA_BLOCK; b++) {
                q->d[t * nb + k * 8 + b] = amax != 0.0f ? 1.0f / iscale : 0.0f;
                kiln__qact_block_sums(q, t, k * 8 + b);
            }
        }
        return;
    }
    for (size_t k = 0; k < nb; k++) {
        const float *xb = x + k * KILN_QA_BLOCK;
        float amax = 0.0f;
        for (int j = 0; j < KILN_QA_BLOCK; j++) amax = fmaxf(amax, fabsf(xb[j]));
        const float d = amax / 127.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        for (int j = 0; j < KILN_QA_BLOCK; j++) qs[k * KILN_QA_BLOCK + (size_t)j] = (int8_t)round_q8(xb[j] * id);
        q->d[t * nb + k] = kiln__f16_to_f32(kiln__f32_to_f16(d)); /* as stored in a Q8_0 block */
        kiln__qact_block_sums(q, t, k);
    }
}

size_t kiln__qnibble_unit(kiln_dtype wtype) {
    if (wtype == KILN_DTYPE_Q4_0 || wtype == KILN_DTYPE_Q5_0) return 16;
    return wtype == KILN_DTYPE_Q4_K ? 32 : 0;
}

void kiln__qact_nibble_order(const kiln_qact *q, size_t t, size_t unit) {
    const int8_t *src = q->qs + t * q->n_in;
    int8_t *dst = q->qs_nib + t * q->n_in;
    size_t i = 0, per = 128 / unit;
    for (; i + 128 <= q->n_in; i += 128)
        for (size_t k = 0; k < per; k++) /* unit k to slot k / 2 of the even or odd half */
            memcpy(dst + i + (k % 2) * 64 + (k / 2) * unit, src + i + k * unit, unit);
    memcpy(dst + i, src + i, q->n_in - i);
}

/* ---- weights as groups ---- */

int kiln__qgroup_size(kiln_dtype wtype) { return wtype == KILN_DTYPE_Q6_K ? 16 : 32; }

int kiln__qgroup_zero(kiln_dtype wtype) {
    switch (wtype) {
    case KILN_DTYPE_Q8_0: return -128;
    case KILN_DTYPE_Q4_0: return -8;
    case KILN_DTYPE_Q5_0: return -16;
    case KILN_DTYPE_Q6_K: return -32;
    case KILN_DTYPE_F32: case KILN_DTYPE_F16: case KILN_DTYPE_BF16: case KILN_DTYPE_Q4_1:
    case KILN_DTYPE_Q5_1: case KILN_DTYPE_Q8_1: case KILN_DTYPE_Q2_K: case KILN_DTYPE_Q4_K:
    case KILN_DTYPE_Q3_K: case KILN_DTYPE_Q5_K: case KILN_DTYPE_Q8_K: case KILN_DTYPE_I8:
    case KILN_DTYPE_I16: case KILN_DTYPE_I32: case KILN_DTYPE_I64: case KILN_DTYPE_F64:
    case KILN_DTYPE_U8: case KILN_DTYPE_BOOL: case KILN_DTYPE_F8_E4M3: case KILN_DTYPE_F8_E5M2:
    case KILN_DTYPE_UNKNOWN:
        break;
    }
    return 0;
}

int kiln__qmatmul_k_rule(kiln_dtype wtype) { return wtype == KILN_DTYPE_Q4_K || wtype == KILN_DTYPE_Q6_K; }

int kiln__qmatmul_supports(kiln_dtype wtype, size_t n_in) {
    switch (wtype) {
    case KILN_DTYPE_Q8_0: case KILN_DTYPE_Q4_0: case KILN_DTYPE_Q5_0: return n_in > 0 && n_in % KILN_QK == 0;
    case KILN_DTYPE_Q4_K: case KILN_DTYPE_Q6_K: return n_in > 0 && n_in % KILN_QK_K == 0;
    case KILN_DTYPE_F32: case KILN_DTYPE_F16: case KILN_DTYPE_BF16: case KILN_DTYPE_Q4_1:
    case KILN_DTYPE_Q5_1: case KILN_DTYPE_Q8_1: case KILN_DTYPE_Q2_K:
    case KILN_DTYPE_Q3_K: case KILN_DTYPE_Q5_K: case KILN_DTYPE_Q8_K: case KILN_DTYPE_I8:
    case KILN_DTYPE_I16: case KILN_DTYPE_I32: case KILN_DTYPE_I64: case KILN_DTYPE_F64:
    case KILN_DTYPE_U8: case KILN_DTYPE_BOOL: case KILN_DTYPE_F8_E4M3: case KILN_DTYPE_F8_E5M2:
    case KILN_DTYPE_UNKNOWN:
        break;
    }
    return 0;
}

static void groups_q8_0(const kiln_block_q8_0 *b, size_t nb, uint8_t *u, float *s, float *bias) {
    for (size_t k = 0; k < nb; k++) {
        float d = kiln__f16_to_f32(b[k].d);
        for (int i = 0; u && i < KILN_QK; i++) u[k * KILN_QK + (size_t)i] = (uint8_t)(b[k].qs[i] + 128);
        s[k] = d;
        bias[k] = -128.0f * d;
    }
}

static void groups_q4_0(const kiln_block_q4_0 *b, size_t nb, uint8_t *u, float *s, float *bias) {
    for (size_t k = 0; k < nb; k++) {
        float d = kiln__f16_to_f32(b[k].d);
        for (int i = 0; u && i < KILN_QK / 2; i++) {
            u[k * KILN_QK + (size_t)i] = b[k].qs[i] & 15;
            u[k * KILN_QK + (size_t)i + 16] = b[k].qs[i] >> 4;
        }
        s[k] = d;
        bias[k] = -8.0f * d;
    }
}

static void groups_q5_0(const kiln_block_q5_0 *b, size_t nb, uint8_t *u, float *s, float *bias) {
    for (size_t k = 0; k < nb; k++) {
        float d = kiln__f16_to_f32(b[k].d);
        uint32_t qh;
        memcpy(&qh, b[k].qh, 4);
        for (int i = 0; u && i < KILN_QK / 2; i++) {
            u[k * KILN_QK + (size_t)i] = (uint8_t)((b[k].qs[i] & 15) | ((qh >> i) & 1) << 4);
            u[k * KILN_QK + (size_t)i + 16] = (uint8_t)((b[k].qs[i] >> 4) | ((qh >> (i + 16)) & 1) << 4);
        }
        s[k] = d;
        bias[k] = -16.0f * d;
    }
}

static void groups_q4_K(const kiln_block_q4_K *b, size_t nb, uint8_t *u, float *s, float *bias) {
    for (size_t k = 0; k < nb; k++) {
        float d = kiln__f16_to_f32(b[k].d), dmin = kiln__f16_to_f32(b[k].dmin);
        for (int c = 0; u && c < 4; c++) {
            uint8_t *uk = u + k * KILN_QK_K;
            for (int l = 0; l < 32; l++) {
                uk[64 * c + l] = b[k].qs[32 * c + l] & 15;
                uk[64 * c + 32 + l] = b[k].qs[32 * c + l] >> 4;
            }
        }
        for (int j = 0; j < 8; j++) {
            uint8_t sc, mn;
            kiln__get_scale_min_k4(j, b[k].scales, &sc, &mn);
            s[k * 8 + (size_t)j] = d * (float)sc;
            bias[k * 8 + (size_t)j] = -(dmin * (float)mn);
        }
    }
}

static void groups_q6_K(const kiln_block_q6_K *b, size_t nb, uint8_t *u, float *s, float *bias) {
    for (size_t k = 0; k < nb; k++) {
        float d = kiln__f16_to_f32(b[k].d);
        for (int h = 0; u && h < 2; h++) {
            const uint8_t *ql = b[k].ql + 64 * h, *qh = b[k].qh + 32 * h;
            uint8_t *o = u + k * KILN_QK_K + 128 * h;
            for (int l = 0; l < 32; l++) {
                o[l] = (uint8_t)((ql[l] & 15) | ((qh[l] & 3) << 4));
                o[l + 32] = (uint8_t)((ql[l + 32] & 15) | (((qh[l] >> 2) & 3) << 4));
                o[l + 64] = (uint8_t)((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4));
                o[l + 96] = (uint8_t)((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4));
            }
        }
        for (int j = 0; j < 16; j++) {
            float sj = d * (float)b[k].scales[j];
            s[k * 16 + (size_t)j] = sj;
            bias[k * 16 + (size_t)j] = -32.0f * sj;
        }
    }
}

void kiln__qgroups_row(kiln_dtype wtype, const void *wrow, size_t n_in, uint8_t *u, float *s, float *b) {
    switch (wtype) {
    case KILN_DTYPE_Q8_0: groups_q8_0(wrow, n_in / KILN_QK, u, s, b); return;
    case KILN_DTYPE_Q4_0: groups_q4_0(wrow, n_in / KILN_QK, u, s, b); return;
    case KILN_DTYPE_Q5_0: groups_q5_0(wrow, n_in / KILN_QK, u, s, b); return;
    case KILN_DTYPE_Q4_K: groups_q4_K(wrow, n_in / KILN_QK_K, u, s, b); return;
    case KILN_DTYPE_Q6_K: groups_q6_K(wrow, n_in / KILN_QK_K, u, s, b); return;
    case KILN_DTYPE_F32: case KILN_DTYPE_F16: case KILN_DTYPE_BF16: case KILN_DTYPE_Q4_1:
    case KILN_DTYPE_Q5_1: case KILN_DTYPE_Q8_1: case KILN_DTYPE_Q2_K:
    case KILN_DTYPE_Q3_K: case KILN_DTYPE_Q5_K: case KILN_DTYPE_Q8_K: case KILN_DTYPE_I8:
    case KILN_DTYPE_I16: case KILN_DTYPE_I32: case KILN_DTYPE_I64: case KILN_DTYPE_F64:
    case KILN_DTYPE_U8: case KILN_DTYPE_BOOL: case KILN_DTYPE_F8_E4M3: case KILN_DTYPE_F8_E5M2:
    case KILN_DTYPE_UNKNOWN:
        break;
    }
}

/* ---- the scalar reference ---- */

float kiln__qdot_ref(kiln_dtype wtype, const void *wrow, const kiln_qact *a, size_t t) {
    size_t n_in = a->n_in, nb = n_in / KILN_QA_BLOCK;
    size_t gs = (size_t)kiln__qgroup_size(wtype);
    const int8_t *qa = a->qs + t * n_in;
    double acc = 0.0;
    /* unpack a bounded window of the row at a time (256 values) */
    uint8_t u[KILN_QK_K];
    float s[KILN_QK_K / 16], b[KILN_QK_K / 16];
    size_t win = kiln__qmatmul_k_rule(wtype) ? KILN_QK_K : KILN_QK;
    size_t win_bytes = kiln__tensor_bytes(wtype, win);
    for (size_t i0 = 0; i0 < n_in; i0 += win) {
        kiln__qgroups_row(wtype, (const char *)wrow + (i0 / win) * win_bytes, win, u, s, b);
        for (size_t g = 0; g < win / gs; g++) {
            size_t i = i0 + g * gs;
            int32_t isum = 0;
            for (size_t k = 0; k < gs; k++) isum += (int32_t)u[g * gs + k] * qa[i + k];
            size_t blk = t * nb + i / KILN_QA_BLOCK;
            float ds = gs == 16 ? a->ds16[2 * blk + (i % KILN_QA_BLOCK) / 16] : a->ds32[blk];
            acc += (double)s[g] * (double)a->d[blk] * (double)isum + (double)b[g] * (double)ds;
        }
    }
    return (float)acc;
}

/* ---- levels ---- */

int kiln__qmatmul_level_available(kiln_qlevel level) {
    const kiln_cpu_features *f = kiln__cpu();
    bool avx2 = f->avx2 && f->fma && f->f16c;
    switch (level) {
    case KILN_QLEVEL_SCALAR: return 1;
    case KILN_QLEVEL_AVX2: return avx2;
    case KILN_QLEVEL_VNNI256: return avx2 && f->avx512vnni && f->avx512vl;
    case KILN_QLEVEL_AVX512: return avx2 && f->avx512vnni && f->avx512vl && f->avx512f && f->avx512bw;
    case KILN_QLEVEL_COUNT: break;
    }
    return 0;
}

kiln_qlevel kiln__qmatmul_best_level(void) {
    kiln_qlevel best = KILN_QLEVEL_SCALAR;
    for (int l = 0; l < KILN_QLEVEL_COUNT; l++)
        if (kiln__qmatmul_level_available((kiln_qlevel)l)) best = (kiln_qlevel)l;
    return best;
}

const char *kiln__qlevel_name(kiln_qlevel level) {
    switch (level) {
    case KILN_QLEVEL_SCALAR: return "scalar";
    case KILN_QLEVEL_AVX2: return "avx2";
    case KILN_QLEVEL_VNNI256: return "vnni256";
    case KILN_QLEVEL_AVX512: return "avx512";
    case KILN_QLEVEL_COUNT: break;
    }
    return "?";
}

/* ---- the calling thread's buffer ---- */

/* Memory reused by one thread's calls: quantized activations, then one
 * GEMM panel per pool thread. */
struct qbuf {
    void *mem;   /* kiln__aligned_alloc'd, 64-aligned */
    size_t cap;  /* bytes of mem */
};

static pthread_key_t qbuf_key;
static pthread_once_t qbuf_once = PTHREAD_ONCE_INIT;
static int qbuf_key_ok; /* pthread_key_create succeeded */

static void qbuf_free(void *p) {
    struct qbuf *b = p;
    if (!b) return;
    kiln__aligned_free(b->mem);
    kiln__aligned_free(b);
}

static void qbuf_key_init(void) { qbuf_key_ok = pthread_key_create(&qbuf_key, qbuf_free) == 0; }

/* At least `bytes` of this thread's buffer (kept for its next calls). */
static void *qbuf_get(size_t bytes) {
    pthread_once(&qbuf_once, qbuf_key_init);
    if (!qbuf_key_ok) return NULL;
    struct qbuf *b = pthread_getspecific(qbuf_key);
    if (!b) {
        b = kiln__aligned_alloc(sizeof *b, KILN_ALIGN);
        if (!b) return NULL;
        b->mem = NULL;
        b->cap = 0;
        if (pthread_setspecific(qbuf_key, b) != 0) {
            kiln__aligned_free(b);
            return NULL;
        }
    }
    if (b->cap < bytes) {
        /* grow by half again so that a slowly rising size reallocates rarely */
        size_t want = bytes + bytes / 2;
        void *m = kiln__aligned_alloc(want, KILN_ALIGN);
        if (!m) return NULL;
        kiln__aligned_free(b->mem);
        b->mem = m;
        b->cap = want;
    }
    return b->mem;
}

/* n rounded up to a whole cache line. */
static size_t align64(size_t n) { return (n + 63) & ~(size_t)63; }

size_t kiln__qpanel_bytes(size_t n_in) {
    size_t ng = n_in / 16; /* the most groups (groups of 16) */
    /* row_u holds the 16 rows, rounded up to whole 64-byte chunks + 64 */
    return align64(n_in * KILN_QPANEL_ROWS) + 2 * align64(ng * KILN_QPANEL_ROWS * sizeof(float)) +
           align64(n_in) * KILN_QPANEL_ROWS + 64 + 2 * align64(ng * sizeof(float));
}

void kiln__qpanel_init(struct kiln_qpanel *p, void *mem, size_t n_in) {
    size_t ng = n_in / 16;
    char *c = mem;
    p->u = (uint8_t *)c;
    c += align64(n_in * KILN_QPANEL_ROWS);
    p->s = (float *)(void *)c;
    c += align64(ng * KILN_QPANEL_ROWS * sizeof(float));
    p->b = (float *)(void *)c;
    c += align64(ng * KILN_QPANEL_ROWS * sizeof(float));
    p->row_u = (uint8_t *)c;
    c += align64(n_in) * KILN_QPANEL_ROWS + 64;
    p->row_s = (float *)(void *)c;
    c += align64(ng * sizeof(float));
    p->row_b = (float *)(void *)c;
}

void kiln__qtiles_pack(const kiln_qact *a, size_t n_tok, size_t tile, const struct kiln_qtiles *at) {
    size_t n_in = a->n_in, nb = n_in / KILN_QA_BLOCK, ng = n_in / at->group;
    int8_t *qs = at->qs + tile * n_in * KILN_QTILE_TOK;
    float *d = at->d + tile * nb * KILN_QTILE_TOK, *ds = at->ds + tile * ng * KILN_QTILE_TOK;
    int32_t *zs = at->zs + tile * ng * KILN_QTILE_TOK;
    for (size_t t = 0; t < KILN_QTILE_TOK; t++) {
        size_t tok = tile * KILN_QTILE_TOK + t;
        if (tok >= n_tok) {
            /* padding: zero quants and scales give zero results (not stored) */
            for (size_t s = 0; s < n_in / 4; s++) memset(qs + (s * KILN_QTILE_TOK + t) * 4, 0, 4);
            for (size_t k = 0; k < nb; k++) d[k * KILN_QTILE_TOK + t] = 0.0f;
            for (size_t g = 0; g < ng; g++) ds[g * KILN_QTILE_TOK + t] = 0.0f;
            for (size_t g = 0; g < ng; g++) zs[g * KILN_QTILE_TOK + t] = 0;
            continue;
        }
        const int8_t *src = a->qs + tok * n_in;
        for (size_t s = 0; s < n_in / 4; s++) memcpy(qs + (s * KILN_QTILE_TOK + t) * 4, src + 4 * s, 4);
        for (size_t k = 0; k < nb; k++) d[k * KILN_QTILE_TOK + t] = a->d[tok * nb + k];
        const float *sums = at->group == 16 ? a->ds16 + tok * ng : a->ds32 + tok * ng;
        for (size_t g = 0; g < ng; g++) {
            ds[g * KILN_QTILE_TOK + t] = sums[g];
            int32_t sum = 0;
            for (size_t k = 0; k < at->group; k++) sum += src[g * at->group + k];
            zs[g * KILN_QTILE_TOK + t] = at->zero * sum;
        }
    }
}

/* ---- the work split ---- */

/* What the threads of one call share. */
struct qjob {
    kiln_qlevel level;   /* path */
    const kiln_qmat *mats; /* the weight matrices (one, except for kiln__qmatmul_multi) */
    int n_mats;          /* how many */
    int swiglu;          /* mats are gate and up: mats[0].y = silu(gate) * up per chunk */
    size_t n_in;         /* values per weight row */
    const float *x;      /* [n_tok][n_in] float activations */
    size_t n_tok;        /* activation rows */
    kiln_qact act;       /* quantized activations */
    int gemm;            /* the AVX-512 GEMM runs (one matrix; else the row kernels) */
    size_t nib_unit;     /* act.qs_nib is made with this unit (kiln__qnibble_unit; 0: not made) */
    struct kiln_qtiles tiles; /* AVX-512 GEMM: act regrouped in tiles of 8 tokens */
    char *panels;        /* AVX-512 GEMM: one panel per thread */
    size_t panel_bytes;  /* bytes of each panel */
    size_t chunk;        /* row kernels: weight rows per chunk of work */
    size_t n_chunks;     /* row kernels: chunks of all matrices (of gate alone with swiglu) */
    atomic_size_t next_chunk; /* the next chunk (row kernels) or panel (GEMM) no thread has taken */
};

/* [begin, end) of n items for thread ith of nth, in whole units of `unit`. */
static void split(size_t n, size_t unit, int ith, int nth, size_t *begin, size_t *end) {
    size_t units = (n + unit - 1) / unit;
    size_t per = (units + (size_t)nth - 1) / (size_t)nth;
    size_t b = per * (size_t)ith * unit, e = b + per * unit;
    *begin = b < n ? b : n;
    *end = e < n ? e : n;
}

/* Quantize this thread's share of the activation rows (whole tiles of 8
 * for the GEMM, which it then packs). */
static void quantize_part(void *ctx, int ith, int nth) {
    const struct qjob *job = ctx;
    size_t unit = job->gemm ? KILN_QTILE_TOK : 1, t0, t1;
    split(job->n_tok, unit, ith, nth, &t0, &t1);
    for (size_t t = t0; t < t1; t++) {
        const float *x = job->x + t * job->act.n_in;
        if (job->level == KILN_QLEVEL_SCALAR) kiln__qact_quantize_row(&job->act, t, x);
        else kiln__qact_quantize_row_avx2(&job->act, t, x);
        if (job->nib_unit) kiln__qact_nibble_order(&job->act, t, job->nib_unit);
    }
    if (job->gemm)
        for (size_t tile = t0 / KILN_QTILE_TOK; tile * KILN_QTILE_TOK < t1; tile++)
            kiln__qtiles_pack(&job->act, job->n_tok, tile, &job->tiles);
}

/* Rows [j0, j1) (whole groups of 16) of an x16 matrix, every token, with
 * its type's row kernel. */
static void rows_x16(const struct qjob *job, const kiln_qmat *mat, size_t j0, size_t j1) {
    const struct kiln_x16_type *type = kiln__x16_find(mat->wtype);
    size_t group_bytes = KILN_X16_ROWS * kiln__tensor_bytes(mat->wtype, job->n_in);
    float out[KILN_QROW_MAX_TOK][KILN_X16_ROWS];
    for (size_t j = j0; j < j1; j += KILN_X16_ROWS) {
        const char *group = (const char *)mat->w + j / KILN_X16_ROWS * group_bytes;
        for (size_t t = 0; t < job->n_tok; t += KILN_QROW_MAX_TOK) {
            int nt = job->n_tok - t < KILN_QROW_MAX_TOK ? (int)(job->n_tok - t) : KILN_QROW_MAX_TOK;
            type->rows(group, &job->act, t, nt, out);
            for (int k = 0; k < nt; k++) memcpy(mat->y + (t + (size_t)k) * mat->n_out + j, out[k], sizeof out[k]);
        }
    }
}

/* Rows [j0, j1) of matrix `mat`, every token, with a row kernel. */
static void rows_part(const struct qjob *job, const kiln_qmat *mat, size_t j0, size_t j1) {
    if (mat->layout == KILN_QLAYOUT_X16) {
        rows_x16(job, mat, j0, j1);
        return;
    }
    float out[KILN_QROW_MAX_TOK];
    size_t row_bytes = kiln__tensor_bytes(mat->wtype, job->n_in);
    for (size_t j = j0; j < j1; j++) {
        const char *wrow = (const char *)mat->w + j * row_bytes;
        for (size_t t = 0; t < job->n_tok; t += KILN_QROW_MAX_TOK) {
            int nt = job->n_tok - t < KILN_QROW_MAX_TOK ? (int)(job->n_tok - t) : KILN_QROW_MAX_TOK;
            switch (job->level) {
            case KILN_QLEVEL_SCALAR:
                for (int k = 0; k < nt; k++) out[k] = kiln__qdot_ref(mat->wtype, wrow, &job->act, t + (size_t)k);
                break;
            case KILN_QLEVEL_AVX2: kiln__qrow_avx2(mat->wtype, wrow, &job->act, t, nt, out); break;
            case KILN_QLEVEL_VNNI256: kiln__qrow_vnni256(mat->wtype, wrow, &job->act, t, nt, out); break;
            case KILN_QLEVEL_AVX512:
            case KILN_QLEVEL_COUNT:
                kiln__qrow_avx512(mat->wtype, wrow, &job->act, t, nt, out);
                break;
            }
            for (int k = 0; k < nt; k++) mat->y[(t + (size_t)k) * mat->n_out + j] = out[k];
        }
    }
}

/* Work chunk c of the row kernels: rows of the matrix it falls in, or of
 * gate and up followed by their silu product. */
static void chunk_part(const struct qjob *job, size_t c) {
    if (job->swiglu) {
        const kiln_qmat *gate = &job->mats[0], *up = &job->mats[1];
        size_t j0 = c * job->chunk, j1 = j0 + job->chunk < gate->n_out ? j0 + job->chunk : gate->n_out;
        rows_part(job, gate, j0, j1);
        rows_part(job, up, j0, j1);
        for (size_t t = 0; t < job->n_tok; t++)
            kiln__swiglu_fast(gate->y + t * gate->n_out + j0, up->y + t * up->n_out + j0, j1 - j0);
        return;
    }
    for (int m = 0; m < job->n_mats; m++) {
        const kiln_qmat *mat = &job->mats[m];
        size_t mine = (mat->n_out + job->chunk - 1) / job->chunk;
        if (c >= mine) {
            c -= mine;
            continue;
        }
        size_t j0 = c * job->chunk, j1 = j0 + job->chunk < mat->n_out ? j0 + job->chunk : mat->n_out;
        rows_part(job, mat, j0, j1);
        return;
    }
}

/* Chunk of weight rows for the row kernels: about CHUNKS_PER_THREAD per
 * thread (fine enough that the dynamic split evens out the threads, coarse
 * enough that the shared counter is touched rarely), a multiple of 16 rows
 * so that two threads never write the same 64-byte line of y (for n_tok = 1
 * and a 64-aligned y). */
#define CHUNKS_PER_THREAD 8
static size_t row_chunk(size_t n_out, size_t nth) {
    size_t c = n_out / (nth * CHUNKS_PER_THREAD);
    c = (c + 15) & ~(size_t)15;
    return c < 16 ? 16 : c;
}

/* Fewest tokens for which the AVX-512 level runs its blocked GEMM: below,
 * unpacking the panels costs more than the row kernels' extra work
 * (measured with bench/qmatmul_bench: about even at 16). */
#define GEMM_MIN_TOK 16

static void matmul_part(void *ctx, int ith, int nth) {
    const struct qjob *job = ctx;
    /* Thread ith starts with work item ith, then takes the next free one
     * from the shared counter, so a thread that runs faster (or started
     * earlier, or shares its core with less) does more and all finish
     * within an item of each other. */
    struct qjob *shared = ctx;
    if (job->gemm) {
        /* items: panels of 16 rows of the matrices, one after another,
         * each unpacked from the file's rows or from its x16 group, then
         * multiplied */
        size_t n_panels = 0;
        for (int m = 0; m < job->n_mats; m++) n_panels += (job->mats[m].n_out + KILN_QPANEL_ROWS - 1) / KILN_QPANEL_ROWS;
        struct kiln_qpanel p;
        kiln__qpanel_init(&p, job->panels + (size_t)ith * job->panel_bytes, job->act.n_in);
        for (size_t c = (size_t)ith; c < n_panels; c = atomic_fetch_add(&shared->next_chunk, 1)) {
            const kiln_qmat *mat = job->mats;
            size_t j = c * KILN_QPANEL_ROWS; /* row j of the matrices' rows stacked */
            while (j >= mat->n_out) {
                j -= (mat->n_out + KILN_QPANEL_ROWS - 1) / KILN_QPANEL_ROWS * KILN_QPANEL_ROWS;
                mat++;
            }
            const struct kiln_x16_type *x16 = mat->layout == KILN_QLAYOUT_X16 ? kiln__x16_find(mat->wtype) : NULL;
            size_t row_bytes = kiln__tensor_bytes(mat->wtype, job->n_in);
            size_t rows = mat->n_out - j < KILN_QPANEL_ROWS ? mat->n_out - j : KILN_QPANEL_ROWS;
            if (x16) x16->panel((const char *)mat->w + j * row_bytes, job->n_in, &p); /* j: a whole group */
            else kiln__qpanel_unpack_avx512(mat->wtype, mat->w, row_bytes, j, rows, job->n_in, &p);
            kiln__qgemm_panel_avx512(&p, &job->tiles, job->n_tok, mat->y, mat->n_out, j, rows);
        }
        return;
    }
    for (size_t c = (size_t)ith; c < job->n_chunks; c = atomic_fetch_add(&shared->next_chunk, 1)) chunk_part(job, c);
    (void)nth;
}

/* What swiglu_part's threads share. */
struct swiglu_job {
    float *gate;       /* [n_tok][n] gate, then the result */
    const float *up;   /* [n_tok][n] */
    size_t n, n_tok;   /* values per token, tokens */
};

/* kiln__swiglu_fast on this thread's share of the tokens. */
static void swiglu_part(void *ctx, int ith, int nth) {
    const struct swiglu_job *job = ctx;
    size_t t0, t1;
    split(job->n_tok, 1, ith, nth, &t0, &t1);
    if (t1 > t0) kiln__swiglu_fast(job->gate + t0 * job->n, job->up + t0 * job->n, (t1 - t0) * job->n);
}

/* gate = kiln__swiglu_fast(gate, up), [n_tok][n] each, over the pool. */
static void swiglu_pool(kiln_pool *pool, float *gate, const float *up, size_t n, size_t n_tok) {
    struct swiglu_job job = {gate, up, n, n_tok};
    kiln__pool_run(pool, swiglu_part, &job);
}

/* Whether the AVX-512 GEMM takes these matrices on `level`: a batch of
 * tokens and one weight type (the activation tiles depend on it). */
static int gemm_takes(kiln_qlevel level, const kiln_qmat *mats, int n_mats, size_t n_tok) {
    int same = 1;
    for (int m = 1; m < n_mats; m++) same &= mats[m].wtype == mats[0].wtype;
    return level == KILN_QLEVEL_AVX512 && n_tok >= GEMM_MIN_TOK && same;
}

/* The matrices (checked by the callers) times x on `level`: activations
 * quantized once, one pool run for all the rows (then, with swiglu under
 * the GEMM, one for the silu products). */
static kiln_status run_level(kiln_pool *pool, kiln_qlevel level, const kiln_qmat *mats, int n_mats, int swiglu,
                             size_t n_in, const float *x, size_t n_tok) {
    size_t nb = n_in / KILN_QA_BLOCK, nth = (size_t)kiln__pool_size(pool);
    int gemm = gemm_takes(level, mats, n_mats, n_tok);
    size_t group = (size_t)kiln__qgroup_size(mats[0].wtype);
    /* layout: qs, d, ds32, ds16, [qs_nib], [tiles: qs, d, ds, zs], [panels]; sizes checked for overflow */
    size_t qs_bytes, nblk, panel_bytes = kiln__qpanel_bytes(n_in), panels_bytes = 0, total;
    if (kiln__mul_overflows(n_tok + KILN_QTILE_TOK, n_in, &qs_bytes) ||
        kiln__mul_overflows(n_tok + KILN_QTILE_TOK, nb, &nblk) || nblk > SIZE_MAX / 64 ||
        qs_bytes > SIZE_MAX / 8 || (gemm && kiln__mul_overflows(nth, panel_bytes, &panels_bytes)))
        return kiln__fail(KILN_ERR_TOO_LARGE, "qmatmul: %zu x %zu activations are too many", n_tok, n_in);
    /* (qs_bytes and nblk include a tile of padding, used by the tiles only) */
    size_t off_d = align64(qs_bytes), off_ds32 = off_d + align64(nblk * sizeof(float));
    size_t off_ds16 = off_ds32 + align64(nblk * sizeof(float));
    /* the reordered quants where a matrix's avx512 row kernel reads them
     * (one unit per activation rule: 16 for Q8_0-rule types, 32 for Q8_K) */
    size_t nib_unit = 0;
    for (int m = 0; m < n_mats && level == KILN_QLEVEL_AVX512 && !gemm; m++)
        if (mats[m].layout == KILN_QLAYOUT_ROWS && kiln__qnibble_unit(mats[m].wtype))
            nib_unit = kiln__qnibble_unit(mats[m].wtype);
    size_t off_nib = off_ds16 + align64(2 * nblk * sizeof(float));
    size_t off_tiles = off_nib + (nib_unit ? align64(qs_bytes) : 0), off_panels = off_tiles;
    size_t off_tile_d = 0, off_tile_ds = 0, off_tile_zs = 0;
    if (gemm) {
        off_tile_d = off_tiles + align64(qs_bytes);
        off_tile_ds = off_tile_d + align64(nblk * sizeof(float));
        off_tile_zs = off_tile_ds + align64(2 * nblk * sizeof(float));
        off_panels = off_tile_zs + align64(2 * nblk * sizeof(int32_t));
    }
    if (__builtin_add_overflow(off_panels, panels_bytes, &total))
        return kiln__fail(KILN_ERR_TOO_LARGE, "qmatmul: %zu x %zu activations are too many", n_tok, n_in);
    char *mem = qbuf_get(total);
    if (!mem) return kiln__fail(KILN_ERR_OUT_OF_MEMORY, "qmatmul: out of memory for %zu MiB", total >> 20);
    size_t rows = 0;
    for (int m = 0; m < n_mats; m++) rows += mats[m].n_out;
    size_t chunk = row_chunk(swiglu ? mats[0].n_out : rows, nth), n_chunks = 0;
    for (int m = 0; m < (swiglu ? 1 : n_mats); m++) n_chunks += (mats[m].n_out + chunk - 1) / chunk;
    struct qjob job = {
        .level = level, .mats = mats, .n_mats = n_mats, .swiglu = swiglu, .n_in = n_in, .x = x, .n_tok = n_tok,
        .act = {.qs = (int8_t *)mem, .d = (float *)(void *)(mem + off_d), .ds32 = (float *)(void *)(mem + off_ds32),
                .ds16 = (float *)(void *)(mem + off_ds16), .qs_nib = nib_unit ? (int8_t *)(mem + off_nib) : NULL,
                .n_in = n_in, .k_rule = kiln__qmatmul_k_rule(mats[0].wtype)},
        .gemm = gemm,
        .nib_unit = nib_unit,
        .tiles = {(int8_t *)(mem + off_tiles), (float *)(void *)(mem + off_tile_d),
                  (float *)(void *)(mem + off_tile_ds), (int32_t *)(void *)(mem + off_tile_zs), n_in, group,
                  kiln__qgroup_zero(mats[0].wtype), kiln__qmatmul_k_rule(mats[0].wtype)},
        .panels = mem + off_panels, .panel_bytes = panel_bytes,
        .chunk = chunk, .n_chunks = n_chunks,
    };
    atomic_init(&job.next_chunk, nth);
    /* one pass to quantize (shared by all rows), one to multiply */
    if (n_tok == 1) quantize_part(&job, 0, 1);
    else kiln__pool_run(pool, quantize_part, &job);
    kiln__pool_run(pool, matmul_part, &job);
    if (gemm && swiglu) swiglu_pool(pool, mats[0].y, mats[1].y, mats[0].n_out, n_tok);
    return KILN_OK;
}

kiln_status kiln__qmatmul_level(kiln_pool *pool, kiln_qlevel level, kiln_dtype wtype, const void *w,
                                size_t n_out, size_t n_in, const float *x, size_t n_tok, float *y) {
    if (!kiln__qmatmul_supports(wtype, n_in))
        return kiln__fail(KILN_ERR_UNSUPPORTED, "qmatmul: %s weights with rows of %zu values",
                          kiln_dtype_name(wtype), n_in);
    if (level >= KILN_QLEVEL_COUNT || !kiln__qmatmul_level_available(level))
        return kiln__fail(KILN_ERR_UNSUPPORTED, "qmatmul: this CPU lacks the %s path", kiln__qlevel_name(level));
    if (n_out == 0 || n_tok == 0) return KILN_OK;
    kiln_qmat mat = {wtype, w, n_out, y, KILN_QLAYOUT_ROWS};
    return run_level(pool, level, &mat, 1, 0, n_in, x, n_tok);
}

kiln_status kiln__qmatmul(kiln_pool *pool, kiln_dtype wtype, const void *w, size_t n_out, size_t n_in,
                          const float *x, size_t n_tok, float *y) {
    return kiln__qmatmul_level(pool, kiln__qmatmul_best_level(), wtype, w, n_out, n_in, x, n_tok, y);
}

int kiln__qmatmul_takes(kiln_dtype wtype, size_t n_in) {
    return kiln__qmatmul_supports(wtype, n_in) && kiln__qmatmul_best_level() != KILN_QLEVEL_SCALAR;
}

/* Whether matrix m's layout can be read here: the file's always, x16
 * where its type, shape and this CPU's level allow (kiln__qmatmul_x16_ok). */
static int layout_ok(const kiln_qmat *m, size_t n_in) {
    switch (m->layout) {
    case KILN_QLAYOUT_ROWS: return 1;
    case KILN_QLAYOUT_X16: return kiln__qmatmul_x16_ok(m->wtype, m->n_out, n_in);
    }
    return 0;
}

int kiln__qmatmul_multi_ok(const kiln_qmat *mats, int n_mats, size_t n_in) {
    if (n_mats < 1 || n_mats > KILN_QMAT_MAX) return 0;
    for (int m = 0; m < n_mats; m++)
        if (!kiln__qmatmul_takes(mats[m].wtype, n_in) || !layout_ok(&mats[m], n_in) ||
            kiln__qmatmul_k_rule(mats[m].wtype) != kiln__qmatmul_k_rule(mats[0].wtype))
            return 0;
    return 1;
}

kiln_status kiln__qmatmul_multi(kiln_pool *pool, const kiln_qmat *mats, int n_mats, int swiglu, size_t n_in,
                                const float *x, size_t n_tok) {
    for (int m = 0; m < n_mats && m < KILN_QMAT_MAX; m++)
        if (!layout_ok(&mats[m], n_in))
            return kiln__fail(KILN_ERR_UNSUPPORTED,
                              "qmatmul: matrix %d (%zu x %zu %s) cannot be read in the x16 layout on the %s "
                              "level (x16 needs avx512, a type with an x16 form and rows in 16s)",
                              m, mats[m].n_out, n_in, kiln_dtype_name(mats[m].wtype),
                              kiln__qlevel_name(kiln__qmatmul_best_level()));
    if (!kiln__qmatmul_multi_ok(mats, n_mats, n_in) || (swiglu && (n_mats != 2 || mats[0].n_out != mats[1].n_out)))
        return kiln__fail(KILN_ERR_UNSUPPORTED, "qmatmul: these %d matrices cannot share one pass", n_mats);
    if (n_tok == 0) return KILN_OK;
    kiln_qlevel level = kiln__qmatmul_best_level();
    if (level == KILN_QLEVEL_AVX512 && n_tok >= GEMM_MIN_TOK && !gemm_takes(level, mats, n_mats, n_tok)) {
        /* a batch of matrices of several types: the GEMM, one matrix at a
         * time (as kiln__qmatmul, in each matrix's layout) */
        for (int m = 0; m < n_mats; m++) {
            if (mats[m].n_out == 0) continue;
            kiln_status st = run_level(pool, level, &mats[m], 1, 0, n_in, x, n_tok);
            if (st != KILN_OK) return st;
        }
        if (swiglu) swiglu_pool(pool, mats[0].y, mats[1].y, mats[0].n_out, n_tok);
        return KILN_OK;
    }
    return run_level(pool, level, mats, n_mats, swiglu, n_in, x, n_tok);
}
