/* src/kernels/conv2d_packed.c - packing of convolution weights into
 * panels, the blocked driver and the plain-C micro-kernel of the packed
 * convolution (see conv2d_packed.h). */
#include "kernels/conv2d_packed.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/cpu.h"
#include "core/error.h"
#include "tensor/dequant.h"
#include "tensor/fp16.h"
#include "tensor/tensor.h"

#define MR KILN_CONV_MR
#define NR KILN_CONV_NR
/* Pixels per block of gathered input (32 strips). */
#define MC (32 * MR)
/* Most input channels per K block (a KC x NR weight block: 32 KiB in F32). */
#define KC 128

kiln_status kiln__conv_pack(struct kiln_conv_packed *p, kiln_dtype wtype, const void *w, int c_out, int c_in,
                            int k) {
    memset(p, 0, sizeof *p);
    if (c_out <= 0 || c_in <= 0 || k <= 0)
        return kiln__fail(KILN_ERR_INVALID_ARG, "conv pack: bad shape %dx%dx%d", c_out, c_in, k);
    size_t kk = (size_t)k * (size_t)k, nk = kk * (size_t)c_in;
    size_t panels = ((size_t)c_out + NR - 1) / NR;
    /* F16 and BF16 stay 16-bit in the pack (f16 below means either). */
    int f16 = wtype == KILN_DTYPE_F16 || wtype == KILN_DTYPE_BF16;
    size_t elem = f16 ? sizeof(uint16_t) : sizeof(float);
    size_t row_bytes = kiln__tensor_bytes(wtype, nk);
    if (row_bytes == 0) return kiln__fail(KILN_ERR_UNSUPPORTED, "conv pack: rows of %zu %s values", nk,
                                          kiln_dtype_name(wtype));
    void *data = kiln__aligned_alloc(panels * nk * NR * elem, KILN_ALIGN);
    /* Other types than F16 are widened a panel (NR rows) at a time. */
    float *rows = f16 ? NULL : malloc((size_t)NR * nk * sizeof *rows);
    if (!data || (!f16 && !rows)) {
        kiln__aligned_free(data);
        free(rows);
        return kiln__fail(KILN_ERR_OUT_OF_MEMORY, "conv pack: out of memory for %d x %zu weights", c_out, nk);
    }
    /* Zeros past c_out in the last panel. */
    memset(data, 0, panels * nk * NR * elem);
    for (size_t pn = 0; pn < panels; pn++) {
        size_t n_rows = (size_t)c_out - pn * NR < NR ? (size_t)c_out - pn * NR : NR;
        const char *src = (const char *)w + pn * NR * row_bytes;
        for (size_t r = 0; !f16 && r < n_rows; r++) {
            kiln_status st = kiln__dequantize(wtype, src + r * row_bytes, rows + r * nk, nk);
            if (st != KILN_OK) {
                kiln__aligned_free(data);
                free(rows);
                return st;
            }
        }
        /* Source order (ci, tap) per row; packed order (tap, ci) per k,
         * the NR rows side by side: each destination row of NR values is
         * written whole, from the NR source rows, whose current cache
         * lines stay in cache across the taps of one ci. */
        for (size_t ci = 0; ci < (size_t)c_in; ci++)
            for (size_t t = 0; t < kk; t++) {
                size_t at = (pn * nk + t * (size_t)c_in + ci) * NR, from = ci * kk + t;
                if (f16) {
                    uint16_t *d = (uint16_t *)data + at;
                    for (size_t r = 0; r < n_rows; r++) d[r] = ((const uint16_t *)(src + r * row_bytes))[from];
                } else {
                    float *d = (float *)data + at;
                    for (size_t r = 0; r < n_rows; r++) d[r] = rows[r * nk + from];
                }
            }
    }
    free(rows);
    *p = (struct kiln_conv_packed){f16 ? wtype : KILN_DTYPE_F32, data, c_in, c_out, k};
    return KILN_OK;
}

void kiln__conv_pack_free(struct kiln_conv_packed *p) {
    kiln__aligned_free(p->data);
    memset(p, 0, sizeof *p);
}

/* The plain-C micro-kernel: the same tile and order as the AVX-512 one. */
static void micro_scalar(int kc, const float *const *a, const float *b, float *c, size_t ldc, int first,
                         const float *bias) {
    float acc[MR][NR];
    for (int i = 0; i < MR; i++)
        for (int j = 0; j < NR; j++) acc[i][j] = first ? (bias ? bias[j] : 0.0f) : c[(size_t)i * ldc + (size_t)j];
    for (int k = 0; k < kc; k++, b += NR)
        for (int i = 0; i < MR; i++)
            for (int j = 0; j < NR; j++) acc[i][j] += a[i][k] * b[j];
    for (int i = 0; i < MR; i++)
        for (int j = 0; j < NR; j++) c[(size_t)i * ldc + (size_t)j] = acc[i][j];
}

kiln_status kiln__image_isa(enum kiln_conv_isa want, int has_avx2, const char *what, enum kiln_conv_isa *out) {
    const kiln_cpu_features *f = kiln__cpu();
    int avx2 = has_avx2 && f->avx2 && f->fma && f->f16c;
    switch (want) {
    case KILN_CONV_ISA_BEST:
        *out = f->avx512f ? KILN_CONV_ISA_AVX512 : avx2 ? KILN_CONV_ISA_AVX2 : KILN_CONV_ISA_SCALAR;
        return KILN_OK;
    case KILN_CONV_ISA_SCALAR: *out = want; return KILN_OK;
    case KILN_CONV_ISA_AVX512:
        *out = want;
        return f->avx512f ? KILN_OK : kiln__fail(KILN_ERR_UNSUPPORTED, "%s: this CPU has no AVX-512F", what);
    case KILN_CONV_ISA_AVX2:
        *out = want;
        if (!has_avx2) return kiln__fail(KILN_ERR_UNSUPPORTED, "%s: no AVX2 path", what);
        return avx2 ? KILN_OK : kiln__fail(KILN_ERR_UNSUPPORTED, "%s: this CPU lacks AVX2, FMA or F16C", what);
    }
    return kiln__fail(KILN_ERR_INVALID_ARG, "%s: unknown code path %d", what, (int)want);
}

/* n F16 (or, when bf16, BF16) weights to F32 with the resolved path's
 * instructions. */
static void widen(enum kiln_conv_isa isa, int bf16, float *out, const uint16_t *in, size_t n) {
    if (bf16) {
        switch (isa) {
        case KILN_CONV_ISA_AVX512: kiln__conv_widen_bf16_avx512(out, in, n); return;
        case KILN_CONV_ISA_AVX2: kiln__conv_widen_bf16_avx2(out, in, n); return;
        case KILN_CONV_ISA_BEST:
        case KILN_CONV_ISA_SCALAR: break;
        }
        for (size_t e = 0; e < n; e++) out[e] = kiln__bf16_to_f32(in[e]);
        return;
    }
    switch (isa) {
    case KILN_CONV_ISA_AVX512: kiln__conv_widen_avx512(out, in, n); return;
    case KILN_CONV_ISA_AVX2: kiln__conv_widen_avx2(out, in, n); return;
    case KILN_CONV_ISA_BEST:
    case KILN_CONV_ISA_SCALAR: break;
    }
    for (size_t e = 0; e < n; e++) out[e] = kiln__f16_to_f32(in[e]);
}

/* The resolved path's micro-kernel. */
static void micro(enum kiln_conv_isa isa, int kc, const float *const *a, const float *b, float *c, size_t ldc,
                  int first, const float *bias) {
    switch (isa) {
    case KILN_CONV_ISA_AVX512: kiln__conv_micro_avx512(kc, a, b, c, ldc, first, bias); return;
    case KILN_CONV_ISA_AVX2: kiln__conv_micro_avx2(kc, a, b, c, ldc, first, bias); return;
    case KILN_CONV_ISA_BEST:
    case KILN_CONV_ISA_SCALAR: break;
    }
    micro_scalar(kc, a, b, c, ldc, first, bias);
}

/* One convolution, shared by its threads. */
struct packed_job {
    const struct kiln_conv2d_shape *s;   /* geometry */
    const struct kiln_conv_packed *p;    /* weights */
    const float *bias;                   /* [c_out] or NULL */
    const float *x;                      /* input [n_img][h][w][c_in] */
    int h, w, oh, ow;                    /* input size, output size */
    size_t n_pix;                        /* output pixels of all images */
    float *y;                            /* output [n_pix][c_out] */
    int n_groups;                        /* panel groups per pixel block */
    int per_group;                       /* panels per group */
    int n_items;                         /* pixel blocks x panel groups */
    atomic_int next;                     /* next item to take */
    enum kiln_conv_isa isa;              /* micro-kernel: SCALAR, AVX512 or AVX2 (resolved) */
    const float *zeros;                  /* KC zeros: the input of padding taps */
    float *buf;                          /* per thread: KC * NR widened weights + MR * NR tile */
};

/* Floats of one thread's buffer. */
#define THREAD_FLOATS ((size_t)KC * NR + (size_t)MR * NR)

/* Pointers to the runs of input channels c0 .. c0+kc-1 at tap (ky, kx) of
 * output pixels m0 .. m0+rows-1 (the zero run for padding and for rows
 * past the last pixel), MR per strip. */
static void row_pointers(const struct packed_job *j, size_t m0, int rows, int ky, int kx, size_t c0,
                         const float **ptr) {
    const struct kiln_conv2d_shape *s = j->s;
    int strips = (rows + MR - 1) / MR;
    for (int r = 0; r < strips * MR; r++) {
        ptr[r] = j->zeros;
        if (r >= rows) continue;
        size_t pix = m0 + (size_t)r, per_img = (size_t)j->oh * (size_t)j->ow;
        size_t img = pix / per_img, at = pix % per_img;
        int oy = (int)(at / (size_t)j->ow), ox = (int)(at % (size_t)j->ow);
        int iy = oy * s->stride + ky - s->pad_top, ix = ox * s->stride + kx - s->pad_left;
        if (iy >= 0 && iy < j->h && ix >= 0 && ix < j->w)
            ptr[r] = j->x + ((img * (size_t)j->h + (size_t)iy) * (size_t)j->w + (size_t)ix) * (size_t)s->c_in + c0;
    }
}

/* Thread body: items from the shared counter until none is left. */
static void packed_run(void *ctx, int ith, int nth) {
    (void)nth;
    struct packed_job *j = ctx;
    const struct kiln_conv_packed *p = j->p;
    float *bw = j->buf + (size_t)ith * THREAD_FLOATS, *tile = bw + (size_t)KC * NR;
    size_t cin = (size_t)p->c_in, nk = (size_t)p->k * (size_t)p->k * cin, ldc = (size_t)p->c_out;
    const float *ptr[MC];
    int panels = (p->c_out + NR - 1) / NR;
    for (int item; (item = atomic_fetch_add(&j->next, 1)) < j->n_items;) {
        size_t m0 = (size_t)(item / j->n_groups) * MC;
        int g = item % j->n_groups;
        int p0 = g * j->per_group, p1 = p0 + j->per_group < panels ? p0 + j->per_group : panels;
        int rows = j->n_pix - m0 < MC ? (int)(j->n_pix - m0) : MC;
        /* K blocks: taps, and runs of at most KC channels within a tap. */
        for (size_t k0 = 0; k0 < nk;) {
            size_t t = k0 / cin, c0 = k0 % cin;
            int kc = cin - c0 < KC ? (int)(cin - c0) : KC;
            row_pointers(j, m0, rows, (int)t / p->k, (int)t % p->k, c0, ptr);
            for (int pn = p0; pn < p1; pn++) {
                const float *b;
                size_t off = ((size_t)pn * nk + k0) * NR;
                if (p->type == KILN_DTYPE_F32) {
                    b = (const float *)p->data + off;
                } else {
                    const uint16_t *h16 = (const uint16_t *)p->data + off;
                    widen(j->isa, p->type == KILN_DTYPE_BF16, bw, h16, (size_t)kc * NR);
                    b = bw;
                }
                int cols = p->c_out - pn * NR < NR ? p->c_out - pn * NR : NR;
                const float *bias = j->bias ? j->bias + (size_t)pn * NR : NULL;
                for (int r0 = 0; r0 < rows; r0 += MR) {
                    const float *const *a = ptr + r0;
                    float *c = j->y + (m0 + (size_t)r0) * ldc + (size_t)pn * NR;
                    int full = rows - r0 >= MR && cols == NR;
                    int first = k0 == 0;
                    /* A partial tile goes through the local tile buffer. */
                    float *dst = full ? c : tile;
                    size_t ld = full ? ldc : NR;
                    int valid = rows - r0 < MR ? rows - r0 : MR;
                    float bias_tile[NR];
                    /* The bias seeds the first K block only. */
                    const float *bb = first ? bias : NULL;
                    if (!full && bb) {
                        memset(bias_tile, 0, sizeof bias_tile);
                        memcpy(bias_tile, bias, (size_t)cols * sizeof *bias);
                        bb = bias_tile;
                    }
                    if (!full && !first)
                        for (int i = 0; i < valid; i++)
                            memcpy(tile + (size_t)i * NR, c + (size_t)i * ldc, (size_t)cols * sizeof *c);
                    micro(j->isa, kc, a, b, dst, ld, first, bb);
                    if (!full)
                        for (int i = 0; i < valid; i++)
                            memcpy(c + (size_t)i * ldc, tile + (size_t)i * NR, (size_t)cols * sizeof *c);
                }
            }
            k0 += (size_t)kc;
        }
    }
}

kiln_status kiln__conv2d_packed(kiln_pool *pool, const struct kiln_conv2d_shape *s, const struct kiln_conv_packed *p,
                                const float *bias, const float *x, int h, int w, float *y, enum kiln_conv_isa isa) {
    return kiln__conv2d_packed_batch(pool, s, p, bias, x, 1, h, w, y, isa);
}

kiln_status kiln__conv2d_packed_batch(kiln_pool *pool, const struct kiln_conv2d_shape *s,
                                      const struct kiln_conv_packed *p, const float *bias, const float *x, int n_img,
                                      int h, int w, float *y, enum kiln_conv_isa isa) {
    if (s->c_in != p->c_in || s->c_out != p->c_out || s->k != p->k || s->stride < 1)
        return kiln__fail(KILN_ERR_INVALID_ARG, "conv: shape does not match the packed weights");
    if (n_img < 1) return kiln__fail(KILN_ERR_INVALID_ARG, "conv: %d images", n_img);
    int oh = kiln__conv2d_out(h, s->k, s->stride, s->pad_top, s->pad_bottom);
    int ow = kiln__conv2d_out(w, s->k, s->stride, s->pad_left, s->pad_right);
    if (oh <= 0 || ow <= 0) return kiln__fail(KILN_ERR_INVALID_ARG, "conv2d: input %dx%d too small", h, w);
    kiln_status st = kiln__image_isa(isa, 1, "conv", &isa);
    if (st != KILN_OK) return st;
    int nth = kiln__pool_size(pool);
    float *buf = kiln__aligned_alloc(((size_t)nth * THREAD_FLOATS + KC) * sizeof *buf, KILN_ALIGN);
    if (!buf) return kiln__fail(KILN_ERR_OUT_OF_MEMORY, "conv: out of memory for block buffers");
    size_t n_pix = (size_t)n_img * (size_t)oh * (size_t)ow;
    int blocks = (int)((n_pix + MC - 1) / MC);
    int panels = (p->c_out + NR - 1) / NR;
    /* Split the panels too when the pixels alone give too few items for
     * an even share (splitting costs no extra gathering: only the widening
     * of F16 panels is per item). */
    int groups = 1;
    while (groups < panels && blocks * groups < 16 * nth) groups++;
    int per = (panels + groups - 1) / groups;
    groups = (panels + per - 1) / per;
    float *zeros = buf + (size_t)nth * THREAD_FLOATS;
    memset(zeros, 0, KC * sizeof *zeros);
    struct packed_job j = {s, p, bias, x, h, w, oh, ow, n_pix, y, groups, per, blocks * groups, 0, isa, zeros, buf};
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
