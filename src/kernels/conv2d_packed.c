/* src/kernels/conv2d_packed.c - packing of convolution weights into
 * panels, the blocked driver and the plain-C micro-kernel of the packed
 * convolution (see conv2d_packed.h). */
#include "kernels/conv2d_packed.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "tensor/dequant.h"
#include "tensor/fp16.h"
#include "tensor/tensor.h"

#define MR KILN_CONV_MR
#define NR KILN_CONV_NR
/* Pixels per block of gathered input (16 strips). */
#define MC (16 * MR)
/* Values of k per block: MC x KC gathered floats and a KC x NR weight block. */
#define KC 256

kiln_status kiln__conv_pack(struct kiln_conv_packed *p, kiln_dtype wtype, const void *w, int c_out, int c_in,
                            int k) {
    memset(p, 0, sizeof *p);
    if (c_out <= 0 || c_in <= 0 || k <= 0)
        return kiln__fail(KILN_ERR_INVALID_ARG, "conv pack: bad shape %dx%dx%d", c_out, c_in, k);
    size_t kk = (size_t)k * (size_t)k, nk = kk * (size_t)c_in;
    size_t panels = ((size_t)c_out + NR - 1) / NR;
    int f16 = wtype == KILN_DTYPE_F16;
    size_t elem = f16 ? sizeof(uint16_t) : sizeof(float);
    size_t row_bytes = kiln__tensor_bytes(wtype, nk);
    if (row_bytes == 0) return kiln__fail(KILN_ERR_UNSUPPORTED, "conv pack: rows of %zu %s values", nk,
                                          kiln_dtype_name(wtype));
    void *data = kiln__aligned_alloc(panels * nk * NR * elem, KILN_ALIGN);
    float *row = f16 ? NULL : malloc(nk * sizeof *row);
    if (!data || (!f16 && !row)) {
        kiln__aligned_free(data);
        free(row);
        return kiln__fail(KILN_ERR_OUT_OF_MEMORY, "conv pack: out of memory for %d x %zu weights", c_out, nk);
    }
    /* Zeros past c_out in the last panel. */
    memset(data, 0, panels * nk * NR * elem);
    for (int co = 0; co < c_out; co++) {
        const char *src = (const char *)w + (size_t)co * row_bytes;
        size_t base = ((size_t)co / NR) * nk * NR + (size_t)co % NR;
        if (!f16) {
            kiln_status st = kiln__dequantize(wtype, src, row, nk);
            if (st != KILN_OK) {
                kiln__aligned_free(data);
                free(row);
                return st;
            }
        }
        /* Source order (ci, tap); packed order (tap, ci). */
        for (size_t ci = 0; ci < (size_t)c_in; ci++)
            for (size_t t = 0; t < kk; t++) {
                size_t at = base + (t * (size_t)c_in + ci) * NR;
                if (f16)
                    ((uint16_t *)data)[at] = ((const uint16_t *)src)[ci * kk + t];
                else
                    ((float *)data)[at] = row[ci * kk + t];
            }
    }
    free(row);
    *p = (struct kiln_conv_packed){f16 ? KILN_DTYPE_F16 : KILN_DTYPE_F32, data, c_in, c_out, k};
    return KILN_OK;
}

void kiln__conv_pack_free(struct kiln_conv_packed *p) {
    kiln__aligned_free(p->data);
    memset(p, 0, sizeof *p);
}

/* The plain-C micro-kernel: the same tile and order as the AVX-512 one. */
static void micro_scalar(int kc, const float *a, const float *b, float *c, size_t ldc, int first,
                         const float *bias) {
    float acc[MR][NR];
    for (int i = 0; i < MR; i++)
        for (int j = 0; j < NR; j++) acc[i][j] = first ? (bias ? bias[j] : 0.0f) : c[(size_t)i * ldc + (size_t)j];
    for (int k = 0; k < kc; k++, a += MR, b += NR)
        for (int i = 0; i < MR; i++)
            for (int j = 0; j < NR; j++) acc[i][j] += a[i] * b[j];
    for (int i = 0; i < MR; i++)
        for (int j = 0; j < NR; j++) c[(size_t)i * ldc + (size_t)j] = acc[i][j];
}

/* One convolution, shared by its threads. */
struct packed_job {
    const struct kiln_conv2d_shape *s;   /* geometry */
    const struct kiln_conv_packed *p;    /* weights */
    const float *bias;                   /* [c_out] or NULL */
    const float *x;                      /* input [h][w][c_in] */
    int h, w, ow;                        /* input size, output width */
    size_t n_pix;                        /* output pixels */
    float *y;                            /* output [n_pix][c_out] */
    int n_groups;                        /* panel groups per pixel block */
    int per_group;                       /* panels per group */
    int n_items;                         /* pixel blocks x panel groups */
    atomic_int next;                     /* next item to take */
    int simd;                            /* use the AVX-512 micro-kernel */
    float *buf;                          /* per thread: MC * KC gathered + KC * NR widened + MR * NR tile */
};

/* Floats of one thread's buffer. */
#define THREAD_FLOATS ((size_t)MC * KC + (size_t)KC * NR + (size_t)MR * NR)

/* Gather values k0 .. k0+kc-1 of the patches of pixels m0 .. m0+rows-1
 * into ap [strip][kc][MR]; rows past the last pixel are zero. */
static void gather(const struct packed_job *j, size_t m0, int rows, size_t k0, int kc, float *ap) {
    const struct kiln_conv2d_shape *s = j->s;
    size_t cin = (size_t)s->c_in;
    int strips = (rows + MR - 1) / MR;
    for (int st = 0; st < strips; st++) {
        float *dst = ap + (size_t)st * (size_t)kc * MR;
        for (int i = 0; i < MR; i++) {
            int r = st * MR + i;
            if (r >= rows) {
                for (int k = 0; k < kc; k++) dst[(size_t)k * MR + (size_t)i] = 0.0f;
                continue;
            }
            size_t pix = m0 + (size_t)r;
            int oy = (int)(pix / (size_t)j->ow), ox = (int)(pix % (size_t)j->ow);
            for (size_t k = k0; k < k0 + (size_t)kc;) {
                size_t t = k / cin, c = k % cin;
                size_t end = (t + 1) * cin < k0 + (size_t)kc ? (t + 1) * cin : k0 + (size_t)kc;
                int ky = (int)t / s->k, kx = (int)t % s->k;
                int iy = oy * s->stride + ky - s->pad_top, ix = ox * s->stride + kx - s->pad_left;
                float *d = dst + (k - k0) * MR + (size_t)i;
                if (iy < 0 || iy >= j->h || ix < 0 || ix >= j->w) {
                    for (size_t n = end - k; n--; d += MR) *d = 0.0f;
                } else {
                    const float *src = j->x + ((size_t)iy * (size_t)j->w + (size_t)ix) * cin + c;
                    for (size_t n = end - k; n--; d += MR) *d = *src++;
                }
                k = end;
            }
        }
    }
}

/* Thread body: items from the shared counter until none is left. */
static void packed_run(void *ctx, int ith, int nth) {
    (void)nth;
    struct packed_job *j = ctx;
    const struct kiln_conv_packed *p = j->p;
    float *ap = j->buf + (size_t)ith * THREAD_FLOATS;
    float *bw = ap + (size_t)MC * KC, *tile = bw + (size_t)KC * NR;
    size_t nk = (size_t)p->k * (size_t)p->k * (size_t)p->c_in, ldc = (size_t)p->c_out;
    int panels = (p->c_out + NR - 1) / NR;
    for (int item; (item = atomic_fetch_add(&j->next, 1)) < j->n_items;) {
        size_t m0 = (size_t)(item / j->n_groups) * MC;
        int g = item % j->n_groups;
        int p0 = g * j->per_group, p1 = p0 + j->per_group < panels ? p0 + j->per_group : panels;
        int rows = j->n_pix - m0 < MC ? (int)(j->n_pix - m0) : MC;
        for (size_t k0 = 0; k0 < nk; k0 += KC) {
            int kc = nk - k0 < KC ? (int)(nk - k0) : KC;
            gather(j, m0, rows, k0, kc, ap);
            for (int pn = p0; pn < p1; pn++) {
                const float *b;
                size_t off = ((size_t)pn * nk + k0) * NR;
                if (p->type == KILN_DTYPE_F32) {
                    b = (const float *)p->data + off;
                } else {
                    const uint16_t *h16 = (const uint16_t *)p->data + off;
                    if (j->simd)
                        kiln__conv_widen_avx512(bw, h16, (size_t)kc * NR);
                    else
                        for (size_t e = 0; e < (size_t)kc * NR; e++) bw[e] = kiln__f16_to_f32(h16[e]);
                    b = bw;
                }
                int cols = p->c_out - pn * NR < NR ? p->c_out - pn * NR : NR;
                const float *bias = j->bias ? j->bias + (size_t)pn * NR : NULL;
                for (int r0 = 0; r0 < rows; r0 += MR) {
                    const float *a = ap + (size_t)(r0 / MR) * (size_t)kc * MR;
                    float *c = j->y + (m0 + (size_t)r0) * ldc + (size_t)pn * NR;
                    int full = rows - r0 >= MR && cols == NR;
                    int first = k0 == 0;
                    /* A partial tile goes through the local tile buffer. */
                    float *dst = full ? c : tile;
                    size_t ld = full ? ldc : NR;
                    int valid = rows - r0 < MR ? rows - r0 : MR;
                    float bias_tile[NR];
                    const float *bb = bias;
                    if (!full && bias && first) {
                        memset(bias_tile, 0, sizeof bias_tile);
                        memcpy(bias_tile, bias, (size_t)cols * sizeof *bias);
                        bb = bias_tile;
                    }
                    if (!full && !first)
                        for (int i = 0; i < valid; i++)
                            memcpy(tile + (size_t)i * NR, c + (size_t)i * ldc, (size_t)cols * sizeof *c);
                    if (j->simd)
                        kiln__conv_micro_avx512(kc, a, b, dst, ld, first, bb);
                    else
                        micro_scalar(kc, a, b, dst, ld, first, bb);
                    if (!full)
                        for (int i = 0; i < valid; i++)
                            memcpy(c + (size_t)i * ldc, tile + (size_t)i * NR, (size_t)cols * sizeof *c);
                }
            }
        }
    }
}

kiln_status kiln__conv2d_packed(kiln_pool *pool, const struct kiln_conv2d_shape *s, const struct kiln_conv_packed *p,
                                const float *bias, const float *x, int h, int w, float *y, enum kiln_conv_isa isa) {
    if (s->c_in != p->c_in || s->c_out != p->c_out || s->k != p->k || s->stride < 1)
        return kiln__fail(KILN_ERR_INVALID_ARG, "conv: shape does not match the packed weights");
    int oh = kiln__conv2d_out(h, s->k, s->stride, s->pad_top, s->pad_bottom);
    int ow = kiln__conv2d_out(w, s->k, s->stride, s->pad_left, s->pad_right);
    if (oh <= 0 || ow <= 0) return kiln__fail(KILN_ERR_INVALID_ARG, "conv2d: input %dx%d too small", h, w);
    int simd = 0;
    switch (isa) {
    case KILN_CONV_ISA_BEST: simd = kiln__conv_avx512_available(); break;
    case KILN_CONV_ISA_SCALAR: simd = 0; break;
    case KILN_CONV_ISA_AVX512:
        if (!kiln__conv_avx512_available())
            return kiln__fail(KILN_ERR_UNSUPPORTED, "conv: this CPU has no AVX-512F");
        simd = 1;
        break;
    }
    int nth = kiln__pool_size(pool);
    float *buf = kiln__aligned_alloc((size_t)nth * THREAD_FLOATS * sizeof *buf, KILN_ALIGN);
    if (!buf) return kiln__fail(KILN_ERR_OUT_OF_MEMORY, "conv: out of memory for block buffers");
    size_t n_pix = (size_t)oh * (size_t)ow;
    int blocks = (int)((n_pix + MC - 1) / MC);
    int panels = (p->c_out + NR - 1) / NR;
    /* Split the panels too when the pixels alone give too few items. */
    int groups = 1;
    while (groups < panels && blocks * groups < 4 * nth) groups++;
    int per = (panels + groups - 1) / groups;
    groups = (panels + per - 1) / per;
    struct packed_job j = {s, p, bias, x, h, w, ow, n_pix, y, groups, per, blocks * groups, 0, simd, buf};
    atomic_init(&j.next, 0);
    kiln__pool_run(pool, packed_run, &j);
    kiln__aligned_free(buf);
    return KILN_OK;
}

kiln_status kiln__linear_packed(kiln_pool *pool, const struct kiln_conv_packed *p, const float *bias,
                                const float *x, size_t n_tok, float *y) {
    if (n_tok == 0) return KILN_OK;
    if (p->k != 1 || n_tok > (size_t)1 << 30)
        return kiln__fail(KILN_ERR_INVALID_ARG, "linear: %zu rows of a %dx%d pack", n_tok, p->k, p->k);
    struct kiln_conv2d_shape s = {p->c_in, p->c_out, 1, 1, 0, 0, 0, 0};
    return kiln__conv2d_packed(pool, &s, p, bias, x, (int)n_tok, 1, y, KILN_CONV_ISA_BEST);
}
