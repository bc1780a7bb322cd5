/* src/image/sd_blocks.c - ResnetBlock2D, convolutions and layout changes
 * shared by the SD UNet and VAE (see sd_blocks.h). */
#include "image/sd_blocks.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "kernels/conv2d_packed.h"
#include "kernels/image_ops.h"

kiln_status kiln__sd_alloc(size_t h, size_t w, size_t c, float **out) {
    size_t n = h * w * c;
    *out = malloc((n ? n : 1) * sizeof **out);
    if (!*out) return kiln__fail(KILN_ERR_OUT_OF_MEMORY, "sd: out of memory for a %zux%zux%zu activation", h, w, c);
    return KILN_OK;
}

void kiln__sd_chw_to_hwc(float *out, const float *x, int c, int h, int w) {
    size_t hw = (size_t)h * (size_t)w;
    for (size_t p = 0; p < hw; p++)
        for (int ch = 0; ch < c; ch++) out[p * (size_t)c + (size_t)ch] = x[(size_t)ch * hw + p];
}

void kiln__sd_hwc_to_chw(float *out, const float *x, int c, int h, int w) {
    size_t hw = (size_t)h * (size_t)w;
    for (size_t p = 0; p < hw; p++)
        for (int ch = 0; ch < c; ch++) out[(size_t)ch * hw + p] = x[p * (size_t)c + (size_t)ch];
}

kiln_status kiln__sd_conv_run(kiln_pool *pool, const struct kiln_sd_conv *c, int stride, int pad,
                              int asym, const float *x, int n, int h, int w, float *y, int *oh, int *ow) {
    struct kiln_conv2d_shape s = {c->c_in, c->c_out, c->k, stride,
                                  asym ? 0 : pad, asym ? 0 : pad, pad, pad};
    *oh = kiln__conv2d_out(h, s.k, stride, s.pad_top, s.pad_bottom);
    *ow = kiln__conv2d_out(w, s.k, stride, s.pad_left, s.pad_right);
    return kiln__conv2d_packed_batch(pool, &s, &c->pk, c->b, x, n, h, w, y, KILN_CONV_ISA_BEST);
}

kiln_status kiln__sd_check_groups(const struct kiln_sd_binder *b, const char *name, int c, int groups) {
    if (groups < 1 || c % groups != 0)
        return kiln__fail(KILN_ERR_FORMAT, "sd: %d GroupNorm groups do not divide the %d channels of %s%s", groups, c,
                          b->prefix, name);
    return KILN_OK;
}

kiln_status kiln__sd_resnet_load(const struct kiln_sd_binder *b, const char *name, int c_in,
                                 int temb_dim, int groups, struct kiln_sd_resnet *r) {
    memset(r, 0, sizeof *r);
    char n[KILN_SD_NAME_MAX];
    kiln_status st;
    r->c_in = c_in;
#define PART(p) (snprintf(n, sizeof n, "%s.%s", name, p), n)
    if ((st = kiln__sd_norm(b, PART("norm1"), c_in, &r->norm1)) != KILN_OK) return st;
    if ((st = kiln__sd_conv(b, PART("conv1"), c_in, &r->conv1)) != KILN_OK) return st;
    r->c_out = r->conv1.c_out;
    if (temb_dim > 0 &&
        (st = kiln__sd_linear(b, PART("time_emb_proj"), temb_dim, r->c_out, 1, &r->temb)) != KILN_OK)
        return st;
    if ((st = kiln__sd_norm(b, PART("norm2"), r->c_out, &r->norm2)) != KILN_OK) return st;
    if ((st = kiln__sd_conv(b, PART("conv2"), r->c_out, &r->conv2)) != KILN_OK) return st;
    if (r->conv1.k != 3 || r->conv2.k != 3 || r->conv2.c_out != r->c_out)
        return kiln__fail(KILN_ERR_FORMAT, "sd: resnet %s%s has unexpected convolutions", b->prefix, name);
    if ((st = kiln__sd_check_groups(b, PART("norm1"), c_in, groups)) != KILN_OK) return st;
    if ((st = kiln__sd_check_groups(b, PART("norm2"), r->c_out, groups)) != KILN_OK) return st;
    if (c_in != r->c_out) {
        if ((st = kiln__sd_conv(b, PART("conv_shortcut"), c_in, &r->shortcut)) != KILN_OK) return st;
        if (r->shortcut.k != 1 || r->shortcut.c_out != r->c_out)
            return kiln__fail(KILN_ERR_FORMAT, "sd: resnet %s%s shortcut is not 1x1", b->prefix, name);
    }
#undef PART
    return KILN_OK;
}

void kiln__sd_resnet_free(struct kiln_sd_resnet *r) {
    kiln__sd_norm_free(&r->norm1);
    kiln__sd_norm_free(&r->norm2);
    kiln__sd_conv_free(&r->conv1);
    kiln__sd_conv_free(&r->conv2);
    kiln__sd_linear_free(&r->temb);
    kiln__sd_conv_free(&r->shortcut);
}

kiln_status kiln__sd_resnet_run(kiln_pool *pool, const struct kiln_sd_resnet *r, int groups, float eps,
                                const float *x, int n, int h, int w, const float *temb_act, float *out) {
    size_t hw1 = (size_t)h * (size_t)w, hw = (size_t)n * hw1, co = (size_t)r->c_out, ci = (size_t)r->c_in;
    if (r->c_in % groups || r->c_out % groups)
        return kiln__fail(KILN_ERR_INVALID_ARG, "sd: %d groups do not divide %d or %d channels", groups,
                          r->c_in, r->c_out);
    float *a = NULL, *t = NULL, *tp = NULL;
    kiln_status st = kiln__sd_alloc(hw, 1, (size_t)(r->c_in > r->c_out ? r->c_in : r->c_out), &a);
    if (st == KILN_OK) st = kiln__sd_alloc(hw, 1, co, &t);
    if (st == KILN_OK && r->temb.w.data) {
        float *scratch = malloc((size_t)kiln__pool_size(pool) * r->temb.w.n_in * sizeof *scratch);
        tp = malloc(co * sizeof *tp);
        if (!scratch || !tp)
            st = kiln__fail(KILN_ERR_OUT_OF_MEMORY, "sd: out of memory");
        else
            st = kiln__sd_linear_apply(pool, &r->temb, temb_act, 1, tp, scratch);
        free(scratch);
    }
    int oh, ow;
    if (st == KILN_OK) {
        for (int i = 0; i < n; i++)
            kiln__group_norm(pool, a + (size_t)i * hw1 * ci, x + (size_t)i * hw1 * ci, hw1, r->c_in, groups,
                             r->norm1.w, r->norm1.b, eps, 1);
        st = kiln__sd_conv_run(pool, &r->conv1, 1, 1, 0, a, n, h, w, t, &oh, &ow);
    }
    if (st == KILN_OK) {
        if (tp)
            for (size_t p = 0; p < hw; p++)
                for (size_t c = 0; c < co; c++) t[p * co + c] += tp[c];
        for (int i = 0; i < n; i++)
            kiln__group_norm(pool, a + (size_t)i * hw1 * co, t + (size_t)i * hw1 * co, hw1, r->c_out, groups,
                             r->norm2.w, r->norm2.b, eps, 1);
        st = kiln__sd_conv_run(pool, &r->conv2, 1, 1, 0, a, n, h, w, out, &oh, &ow);
    }
    /* The residual: x itself, or its 1x1 projection. */
    if (st == KILN_OK && r->shortcut.w.data)
        st = kiln__sd_conv_run(pool, &r->shortcut, 1, 0, 0, x, n, h, w, t, &oh, &ow);
    if (st == KILN_OK) {
        const float *res = r->shortcut.w.data ? t : x;
        for (size_t i = 0; i < hw * co; i++) out[i] += res[i];
    }
    free(a);
    free(t);
    free(tp);
    return st;
}
