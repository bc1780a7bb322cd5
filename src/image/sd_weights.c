/* src/image/sd_weights.c - binding SD component tensors by name and the
 * shared linear-layer helper (see sd_weights.h). */
#include "image/sd_weights.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "kernels/matmul.h"
#include "tensor/dequant.h"
#include "tensor/tensor.h"

const struct kiln_tensor *kiln__sd_find(const struct kiln_sd_binder *b, const char *fmt, ...) {
    char asked[KILN_SD_NAME_MAX], ldm[KILN_SD_NAME_MAX], full[2 * KILN_SD_NAME_MAX];
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(asked, sizeof asked, fmt, ap);
    va_end(ap);
    if (m < 0 || (size_t)m >= sizeof asked) return NULL;
    const char *name = asked;
    if (b->names != KILN_SD_NAMES_DIFFUSERS) {
        if (!kiln__sd_ldm_name(b, asked, ldm, sizeof ldm)) return NULL;
        name = ldm;
    }
    int n = snprintf(full, sizeof full, "%s%s", b->prefix, name);
    if (n < 0 || (size_t)n >= sizeof full) return NULL;
    return kiln__weights_find(b->w, full);
}

kiln_status kiln__sd_copy_f32(const struct kiln_tensor *t, int64_t n_elems, float **out) {
    *out = NULL;
    if (t->n_elems != n_elems)
        return kiln__fail(KILN_ERR_FORMAT, "sd: tensor %s has %lld values, expected %lld", t->name,
                          (long long)t->n_elems, (long long)n_elems);
    float *f = malloc((size_t)(n_elems > 0 ? n_elems : 1) * sizeof *f);
    if (!f) return kiln__fail(KILN_ERR_OUT_OF_MEMORY, "sd: out of memory copying %s", t->name);
    kiln_status st = kiln__dequantize(t->dtype, t->data, f, (size_t)n_elems);
    if (st != KILN_OK) {
        free(f);
        return st;
    }
    *out = f;
    return KILN_OK;
}

/* A required tensor, or a KILN_ERR_FORMAT naming it. */
static kiln_status need(const struct kiln_sd_binder *b, const char *name, const char *suffix,
                        const struct kiln_tensor **out) {
    *out = kiln__sd_find(b, "%s%s", name, suffix);
    if (!*out)
        return kiln__fail(KILN_ERR_FORMAT, "sd: missing tensor %s%s%s%s", b->prefix, name, suffix,
                          b->names == KILN_SD_NAMES_DIFFUSERS ? "" : " (diffusers name; the file uses ldm names)");
    return KILN_OK;
}

/* A matrix view of t: [shape0][rest]. */
static kiln_status as_mat(const struct kiln_tensor *t, struct kiln_sd_mat *m) {
    if (t->n_dims < 2 || t->shape[0] <= 0)
        return kiln__fail(KILN_ERR_FORMAT, "sd: tensor %s is not a matrix", t->name);
    if (!kiln__matmul_supports(t->dtype))
        return kiln__fail(KILN_ERR_UNSUPPORTED, "sd: tensor %s has type %s, which cannot be multiplied",
                          t->name, kiln_dtype_name(t->dtype));
    m->type = t->dtype;
    m->data = t->data;
    m->n_out = (size_t)t->shape[0];
    m->n_in = (size_t)(t->n_elems / t->shape[0]);
    return KILN_OK;
}

/* Pack matrix m (a k x k convolution when k > 1) for the packed kernels.
 * Only the pack is read from then on, so the file pages of m are released
 * (else the mapped original and the pack would both stay resident). */
static kiln_status pack_mat(const struct kiln_sd_binder *b, const struct kiln_sd_mat *m, int k,
                            struct kiln_conv_packed *pk) {
    size_t kk = (size_t)k * (size_t)k;
    if (m->n_out > (1u << 20) || m->n_in % kk || m->n_in / kk > (1u << 24))
        return kiln__fail(KILN_ERR_FORMAT, "sd: a %zux%zu weight is too large", m->n_out, m->n_in);
    kiln_status st = kiln__conv_pack(pk, m->type, m->data, (int)m->n_out, (int)(m->n_in / kk), k);
    if (st == KILN_OK) kiln__weights_release(b->w, m->data, m->n_out * kiln__tensor_bytes(m->type, m->n_in));
    return st;
}

kiln_status kiln__sd_linear(const struct kiln_sd_binder *b, const char *name, int64_t want_in,
                            int64_t want_out, int has_bias, struct kiln_sd_linear *out) {
    memset(out, 0, sizeof *out);
    const struct kiln_tensor *t;
    kiln_status st = need(b, name, ".weight", &t);
    if (st != KILN_OK) return st;
    /* A 1x1 convolution [out][in][1][1] is the same matrix. */
    int ok_shape = t->n_dims == 2 || (t->n_dims == 4 && t->shape[2] == 1 && t->shape[3] == 1);
    if (!ok_shape) return kiln__fail(KILN_ERR_FORMAT, "sd: %s is not a linear weight", t->name);
    if ((st = as_mat(t, &out->w)) != KILN_OK) return st;
    if ((want_in > 0 && (int64_t)out->w.n_in != want_in) ||
        (want_out > 0 && (int64_t)out->w.n_out != want_out))
        return kiln__fail(KILN_ERR_FORMAT, "sd: %s is %zux%zu, expected %lldx%lld", t->name,
                          out->w.n_out, out->w.n_in, (long long)want_out, (long long)want_in);
    if ((st = pack_mat(b, &out->w, 1, &out->pk)) != KILN_OK) return st;
    if (!has_bias) return KILN_OK;
    const struct kiln_tensor *bt;
    if ((st = need(b, name, ".bias", &bt)) != KILN_OK) return st;
    return kiln__sd_copy_f32(bt, (int64_t)out->w.n_out, &out->b);
}

kiln_status kiln__sd_linear_part(const struct kiln_sd_binder *b, const char *name, int part, int n_parts,
                                 int64_t want_in, struct kiln_sd_linear *out) {
    memset(out, 0, sizeof *out);
    const struct kiln_tensor *t, *bt;
    kiln_status st = need(b, name, "_weight", &t);
    if (st == KILN_OK) st = need(b, name, "_bias", &bt);
    if (st != KILN_OK) return st;
    if (t->n_dims != 2 || t->shape[1] != want_in || t->shape[0] != n_parts * want_in || bt->n_elems != t->shape[0])
        return kiln__fail(KILN_ERR_FORMAT, "sd: %s is not a fused [%d*%lld][%lld] projection", t->name, n_parts,
                          (long long)want_in, (long long)want_in);
    if ((st = as_mat(t, &out->w)) != KILN_OK) return st;
    size_t row_bytes = kiln__tensor_bytes(t->dtype, (size_t)want_in);
    if (row_bytes == 0) return kiln__fail(KILN_ERR_UNSUPPORTED, "sd: %s rows cannot be split", t->name);
    out->w.n_out = (size_t)want_in;
    out->w.data = (const char *)t->data + (size_t)part * (size_t)want_in * row_bytes;
    if ((st = pack_mat(b, &out->w, 1, &out->pk)) != KILN_OK) return st;
    float *all = NULL;
    if ((st = kiln__sd_copy_f32(bt, bt->n_elems, &all)) != KILN_OK) return st;
    out->b = malloc((size_t)want_in * sizeof *out->b);
    if (!out->b) {
        free(all);
        return kiln__fail(KILN_ERR_OUT_OF_MEMORY, "sd: out of memory");
    }
    memcpy(out->b, all + (size_t)part * (size_t)want_in, (size_t)want_in * sizeof *out->b);
    free(all);
    return KILN_OK;
}

kiln_status kiln__sd_conv(const struct kiln_sd_binder *b, const char *name, int c_in,
                          struct kiln_sd_conv *out) {
    memset(out, 0, sizeof *out);
    const struct kiln_tensor *t, *bt;
    kiln_status st = need(b, name, ".weight", &t);
    if (st != KILN_OK) return st;
    if (t->n_dims != 4 || t->shape[2] != t->shape[3] || t->shape[2] < 1 || t->shape[2] > 7 ||
        t->shape[1] != c_in || t->shape[0] > (1 << 20))
        return kiln__fail(KILN_ERR_FORMAT, "sd: %s should be [out][%d][k][k]", t->name, c_in);
    if ((st = as_mat(t, &out->w)) != KILN_OK) return st;
    out->c_in = c_in;
    out->c_out = (int)t->shape[0];
    out->k = (int)t->shape[2];
    if ((st = pack_mat(b, &out->w, out->k, &out->pk)) != KILN_OK) return st;
    if ((st = need(b, name, ".bias", &bt)) != KILN_OK) return st;
    return kiln__sd_copy_f32(bt, out->c_out, &out->b);
}

kiln_status kiln__sd_norm(const struct kiln_sd_binder *b, const char *name, int n,
                          struct kiln_sd_norm *out) {
    memset(out, 0, sizeof *out);
    const struct kiln_tensor *wt, *bt;
    kiln_status st = need(b, name, ".weight", &wt);
    if (st == KILN_OK) st = need(b, name, ".bias", &bt);
    if (st == KILN_OK) st = kiln__sd_copy_f32(wt, n, &out->w);
    if (st == KILN_OK) st = kiln__sd_copy_f32(bt, n, &out->b);
    out->n = n;
    return st;
}

void kiln__sd_linear_free(struct kiln_sd_linear *l) {
    kiln__conv_pack_free(&l->pk);
    free(l->b);
    l->b = NULL;
}

void kiln__sd_conv_free(struct kiln_sd_conv *c) {
    kiln__conv_pack_free(&c->pk);
    free(c->b);
    c->b = NULL;
}

void kiln__sd_norm_free(struct kiln_sd_norm *n) {
    free(n->w);
    free(n->b);
    n->w = n->b = NULL;
}

kiln_status kiln__sd_linear_apply(kiln_pool *pool, const struct kiln_sd_linear *l,
                                  const float *x, size_t n_tok, float *y, float *scratch) {
    (void)scratch;
    return kiln__linear_packed(pool, &l->pk, l->b, x, n_tok, y);
}
