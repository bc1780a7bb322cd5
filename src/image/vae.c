/* src/image/vae.c - diffusers' AutoencoderKL: tensor binding from the
 * names, decoder and encoder passes on channel-last activations (see
 * vae.h). */
#include "image/vae.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "formats/json_util.h"
#include "image/sd_blocks.h"
#include "kernels/flash_attention.h"
#include "kernels/image_ops.h"

/* Most levels an autoencoder may have. */
#define VAE_MAX_LEVELS 8
/* Most resnets per level. */
#define VAE_MAX_RESNETS 8

/* The mid block's single-head self-attention over all pixels. */
struct vae_attn {
    struct kiln_sd_norm norm;            /* group_norm */
    struct kiln_sd_linear q, k, v, out;  /* to_q, to_k, to_v, to_out.0 (with biases) */
};

/* One level of the encoder or decoder. */
struct vae_level {
    struct kiln_sd_resnet resnets[VAE_MAX_RESNETS]; /* the level's resnets */
    int n_resnets;                                  /* how many */
    struct kiln_sd_conv sampler;                    /* down (encoder) or up (decoder) convolution; w.data NULL: none */
};

/* conv_in, levels, mid block, norm and conv_out of the encoder or decoder. */
struct vae_coder {
    struct kiln_sd_conv conv_in;        /* first convolution */
    struct vae_level levels[VAE_MAX_LEVELS]; /* down_blocks or up_blocks in order */
    int n_levels;                       /* levels */
    struct kiln_sd_resnet mid[2];       /* mid_block.resnets */
    struct vae_attn attn;               /* mid_block.attentions.0 */
    struct kiln_sd_norm norm_out;       /* conv_norm_out */
    struct kiln_sd_conv conv_out;       /* last convolution */
};

struct kiln_vae {
    struct kiln_vae_opts opts;     /* groups, epsilon */
    int latent_c;                  /* latent channels */
    int scale;                     /* pixels per latent pixel */
    struct kiln_sd_conv post_quant; /* post_quant_conv (1x1) */
    struct vae_coder dec;          /* decoder */
    int has_encoder;               /* the encoder and quant_conv are loaded */
    struct kiln_sd_conv quant;     /* quant_conv (1x1) */
    struct vae_coder enc;          /* encoder */
};

kiln_status kiln__vae_opts_json(const char *config_path, struct kiln_vae_opts *out) {
    kiln__vae_opts_sd(out);
    json_t *cfg = NULL;
    kiln_status st = kiln__json_load_file(config_path, 0, &cfg);
    if (st != KILN_OK) return st;
    int64_t groups = 32;
    st = kiln__json_get_int(cfg, "norm_num_groups", 32, &groups);
    if (st == KILN_OK && (groups < 1 || groups > 4096))
        st = kiln__fail(KILN_ERR_FORMAT, "%s: norm_num_groups %lld out of range", config_path, (long long)groups);
    if (st == KILN_OK) out->norm_groups = (int)groups;
    int64_t sample = 512;
    if (st == KILN_OK) st = kiln__json_get_int(cfg, "sample_size", 512, &sample);
    if (st == KILN_OK && (sample < 1 || sample > 65536))
        st = kiln__fail(KILN_ERR_FORMAT, "%s: sample_size %lld out of range", config_path, (long long)sample);
    if (st == KILN_OK) out->sample_size = (int)sample;
    json_decref(cfg);
    return st;
}

void kiln__vae_opts_sd(struct kiln_vae_opts *out) {
    out->norm_groups = 32;
    out->norm_eps = 1e-6f;
    out->sample_size = 512;
}

static void attn_free(struct vae_attn *a) {
    kiln__sd_norm_free(&a->norm);
    kiln__sd_linear_free(&a->q);
    kiln__sd_linear_free(&a->k);
    kiln__sd_linear_free(&a->v);
    kiln__sd_linear_free(&a->out);
}

static void coder_free(struct vae_coder *c) {
    kiln__sd_conv_free(&c->conv_in);
    for (int i = 0; i < VAE_MAX_LEVELS; i++) {
        /* Every slot: a resnet that failed half-bound holds copies too. */
        for (int j = 0; j < VAE_MAX_RESNETS; j++) kiln__sd_resnet_free(&c->levels[i].resnets[j]);
        kiln__sd_conv_free(&c->levels[i].sampler);
    }
    kiln__sd_resnet_free(&c->mid[0]);
    kiln__sd_resnet_free(&c->mid[1]);
    attn_free(&c->attn);
    kiln__sd_norm_free(&c->norm_out);
    kiln__sd_conv_free(&c->conv_out);
}

void kiln__vae_free(struct kiln_vae *v) {
    if (!v) return;
    kiln__sd_conv_free(&v->post_quant);
    kiln__sd_conv_free(&v->quant);
    coder_free(&v->dec);
    coder_free(&v->enc);
    free(v);
}

/* Bind the mid block of `coder` ("decoder") at c channels. */
static kiln_status mid_load(const struct kiln_sd_binder *b, const char *coder, int c, int groups,
                            struct vae_coder *out) {
    char n[KILN_SD_NAME_MAX];
    kiln_status st;
    for (int i = 0; i < 2; i++) {
        snprintf(n, sizeof n, "%s.mid_block.resnets.%d", coder, i);
        if ((st = kiln__sd_resnet_load(b, n, c, 0, groups, &out->mid[i])) != KILN_OK) return st;
        if (out->mid[i].c_out != c) return kiln__fail(KILN_ERR_FORMAT, "vae: %s mid block changes width", coder);
    }
    struct vae_attn *a = &out->attn;
#define ATT(p) (snprintf(n, sizeof n, "%s.mid_block.attentions.0.%s", coder, p), n)
    if ((st = kiln__sd_check_groups(b, ATT("group_norm"), c, groups)) != KILN_OK) return st;
    if ((st = kiln__sd_norm(b, ATT("group_norm"), c, &a->norm)) != KILN_OK) return st;
    if ((st = kiln__sd_linear(b, ATT("to_q"), c, c, 1, &a->q)) != KILN_OK) return st;
    if ((st = kiln__sd_linear(b, ATT("to_k"), c, c, 1, &a->k)) != KILN_OK) return st;
    if ((st = kiln__sd_linear(b, ATT("to_v"), c, c, 1, &a->v)) != KILN_OK) return st;
    return kiln__sd_linear(b, ATT("to_out.0"), c, c, 1, &a->out);
#undef ATT
}

/* Bind the levels of `coder` ("encoder" with "down_blocks" and
 * "downsamplers", or "decoder" with "up_blocks" and "upsamplers") from c
 * channels on; *c gets the channels after the last level. */
static kiln_status levels_load(const struct kiln_sd_binder *b, const char *coder, const char *blocks,
                               const char *samplers, int groups, int *c, struct vae_coder *out) {
    char n[KILN_SD_NAME_MAX];
    kiln_status st;
    while (kiln__sd_find(b, "%s.%s.%d.resnets.0.conv1.weight", coder, blocks, out->n_levels)) {
        if (out->n_levels == VAE_MAX_LEVELS)
            return kiln__fail(KILN_ERR_UNSUPPORTED, "vae: more than %d levels", VAE_MAX_LEVELS);
        struct vae_level *l = &out->levels[out->n_levels];
        while (kiln__sd_find(b, "%s.%s.%d.resnets.%d.conv1.weight", coder, blocks, out->n_levels, l->n_resnets)) {
            if (l->n_resnets == VAE_MAX_RESNETS)
                return kiln__fail(KILN_ERR_UNSUPPORTED, "vae: more than %d resnets per level", VAE_MAX_RESNETS);
            snprintf(n, sizeof n, "%s.%s.%d.resnets.%d", coder, blocks, out->n_levels, l->n_resnets);
            if ((st = kiln__sd_resnet_load(b, n, *c, 0, groups, &l->resnets[l->n_resnets])) != KILN_OK) return st;
            *c = l->resnets[l->n_resnets++].c_out;
        }
        if (kiln__sd_find(b, "%s.%s.%d.%s.0.conv.weight", coder, blocks, out->n_levels, samplers)) {
            snprintf(n, sizeof n, "%s.%s.%d.%s.0.conv", coder, blocks, out->n_levels, samplers);
            if ((st = kiln__sd_conv(b, n, *c, &l->sampler)) != KILN_OK) return st;
            if (l->sampler.c_out != *c || l->sampler.k != 3)
                return kiln__fail(KILN_ERR_FORMAT, "vae: %s%s is not a 3x3 convolution keeping the width", b->prefix, n);
        }
        out->n_levels++;
    }
    if (out->n_levels == 0) return kiln__fail(KILN_ERR_FORMAT, "vae: no %s %s under \"%s\"", coder, blocks, b->prefix);
    return KILN_OK;
}

/* Bind conv_in, levels, mid block and output of `coder` taking c_in channels. */
static kiln_status coder_load(const struct kiln_sd_binder *b, const char *coder, int c_in, int encoder,
                              int groups, struct vae_coder *out) {
    char n[KILN_SD_NAME_MAX];
    kiln_status st;
    snprintf(n, sizeof n, "%s.conv_in", coder);
    if ((st = kiln__sd_conv(b, n, c_in, &out->conv_in)) != KILN_OK) return st;
    int c = out->conv_in.c_out;
    if (encoder) {
        if ((st = levels_load(b, coder, "down_blocks", "downsamplers", groups, &c, out)) != KILN_OK) return st;
        if ((st = mid_load(b, coder, c, groups, out)) != KILN_OK) return st;
    } else {
        if ((st = mid_load(b, coder, c, groups, out)) != KILN_OK) return st;
        if ((st = levels_load(b, coder, "up_blocks", "upsamplers", groups, &c, out)) != KILN_OK) return st;
    }
    snprintf(n, sizeof n, "%s.conv_norm_out", coder);
    if ((st = kiln__sd_check_groups(b, n, c, groups)) != KILN_OK) return st;
    if ((st = kiln__sd_norm(b, n, c, &out->norm_out)) != KILN_OK) return st;
    snprintf(n, sizeof n, "%s.conv_out", coder);
    return kiln__sd_conv(b, n, c, &out->conv_out);
}

/* Samplers of a coder (each halves or doubles the size). */
static int n_samplers(const struct vae_coder *c) {
    int n = 0;
    for (int i = 0; i < c->n_levels; i++) n += c->levels[i].sampler.w.data != NULL;
    return n;
}

kiln_status kiln__vae_load(const struct kiln_weights *w, const char *prefix,
                           const struct kiln_vae_opts *opts, struct kiln_vae **out) {
    *out = NULL;
    struct kiln_sd_binder b = {w, prefix, KILN_SD_NAMES_DIFFUSERS, 0};
    kiln__sd_detect_names(&b); /* single-file checkpoints use the ldm names */
    const struct kiln_tensor *pq = kiln__sd_find(&b, "post_quant_conv.weight");
    if (!pq || pq->n_dims != 4 || pq->shape[1] < 1 || pq->shape[1] > 64)
        return kiln__fail(KILN_ERR_FORMAT, "vae: no post_quant_conv under \"%s\"", prefix);
    if (opts->norm_groups < 1) return kiln__fail(KILN_ERR_INVALID_ARG, "vae: %d groups", opts->norm_groups);
    struct kiln_vae *v = calloc(1, sizeof *v);
    if (!v) return kiln__fail(KILN_ERR_OUT_OF_MEMORY, "vae: out of memory");
    v->opts = *opts;
    v->latent_c = (int)pq->shape[1];
    kiln_status st = kiln__sd_conv(&b, "post_quant_conv", v->latent_c, &v->post_quant);
    if (st == KILN_OK && (v->post_quant.k != 1 || v->post_quant.c_out != v->latent_c))
        st = kiln__fail(KILN_ERR_FORMAT, "vae: post_quant_conv is not a square 1x1 convolution");
    if (st == KILN_OK) st = coder_load(&b, "decoder", v->latent_c, 0, opts->norm_groups, &v->dec);
    if (st == KILN_OK && v->dec.conv_out.c_out != 3)
        st = kiln__fail(KILN_ERR_FORMAT, "vae: the decoder gives %d channels, not RGB", v->dec.conv_out.c_out);
    v->scale = 1 << n_samplers(&v->dec);
    /* The encoder is optional: decode-only VAE files exist. */
    if (st == KILN_OK && kiln__sd_find(&b, "encoder.conv_in.weight")) {
        st = coder_load(&b, "encoder", 3, 1, opts->norm_groups, &v->enc);
        if (st == KILN_OK) st = kiln__sd_conv(&b, "quant_conv", 2 * v->latent_c, &v->quant);
        if (st == KILN_OK && (v->enc.conv_out.c_out != 2 * v->latent_c || v->quant.c_out != 2 * v->latent_c ||
                              v->quant.k != 1 || (1 << n_samplers(&v->enc)) != v->scale))
            st = kiln__fail(KILN_ERR_FORMAT, "vae: the encoder does not match the decoder");
        v->has_encoder = st == KILN_OK;
    }
    if (st != KILN_OK) {
        kiln__vae_free(v);
        return st;
    }
    *out = v;
    return KILN_OK;
}

int kiln__vae_latent_channels(const struct kiln_vae *v) { return v->latent_c; }
int kiln__vae_scale(const struct kiln_vae *v) { return v->scale; }
int kiln__vae_has_encoder(const struct kiln_vae *v) { return v->has_encoder; }

/* x [hw][c] += attention(x), single head over all channels. */
static kiln_status attn_run(kiln_pool *pool, const struct kiln_vae *v, const struct vae_attn *a, float *x,
                            size_t hw, int c) {
    float *n = NULL, *q = NULL, *k = NULL, *val = NULL, *scratch = NULL;
    kiln_status st = kiln__sd_alloc(hw, 1, (size_t)c, &n);
    if (st == KILN_OK) st = kiln__sd_alloc(hw, 1, (size_t)c, &q);
    if (st == KILN_OK) st = kiln__sd_alloc(hw, 1, (size_t)c, &k);
    if (st == KILN_OK) st = kiln__sd_alloc(hw, 1, (size_t)c, &val);
    if (st == KILN_OK) st = kiln__sd_alloc((size_t)kiln__pool_size(pool), 1, (size_t)c, &scratch);
    if (st == KILN_OK) {
        kiln__group_norm(pool, n, x, hw, c, v->opts.norm_groups, a->norm.w, a->norm.b, v->opts.norm_eps, 0);
        st = kiln__sd_linear_apply(pool, &a->q, n, hw, q, scratch);
    }
    if (st == KILN_OK) st = kiln__sd_linear_apply(pool, &a->k, n, hw, k, scratch);
    if (st == KILN_OK) st = kiln__sd_linear_apply(pool, &a->v, n, hw, val, scratch);
    if (st == KILN_OK) {
        struct kiln_flash_args fa = {.out = n, .out_stride = (size_t)c, .q = q, .q_stride = (size_t)c, .k = k,
                                     .v = val, .kv_stride = (size_t)c, .kv_type = KILN_DTYPE_F32, .n_q = (int)hw,
                                     .n_kv = (int)hw, .n_heads = 1, .n_heads_kv = 1, .head_dim = c};
        st = kiln__flash_attention(pool, &fa, KILN_CONV_ISA_BEST);
    }
    if (st == KILN_OK) st = kiln__sd_linear_apply(pool, &a->out, n, hw, q, scratch);
    if (st == KILN_OK)
        for (size_t i = 0; i < hw * (size_t)c; i++) x[i] += q[i];
    free(n);
    free(q);
    free(k);
    free(val);
    free(scratch);
    return st;
}

/* *x = resnet(*x): the result replaces the buffer (c channels become c_out). */
static kiln_status resnet_step(kiln_pool *pool, const struct kiln_vae *v, const struct kiln_sd_resnet *r,
                               float **x, int h, int w) {
    float *y = NULL;
    kiln_status st = kiln__sd_alloc((size_t)h, (size_t)w, (size_t)r->c_out, &y);
    if (st == KILN_OK) st = kiln__sd_resnet_run(pool, r, v->opts.norm_groups, v->opts.norm_eps, *x, 1, h, w, NULL, y);
    if (st != KILN_OK) {
        free(y);
        return st;
    }
    free(*x);
    *x = y;
    return KILN_OK;
}

/* *x = conv(*x) with the given geometry; *h, *w become the output size. */
static kiln_status conv_step(kiln_pool *pool, const struct kiln_sd_conv *c, int stride, int pad, int asym,
                             float **x, int *h, int *w) {
    int oh = kiln__sd_conv_out(*h, c->k, stride, pad, asym), ow = kiln__sd_conv_out(*w, c->k, stride, pad, asym);
    float *y = NULL;
    kiln_status st = kiln__sd_alloc((size_t)oh, (size_t)ow, (size_t)c->c_out, &y);
    if (st == KILN_OK) st = kiln__sd_conv_run(pool, c, stride, pad, asym, *x, 1, *h, *w, y, &oh, &ow);
    if (st != KILN_OK) {
        free(y);
        return st;
    }
    free(*x);
    *x = y;
    *h = oh;
    *w = ow;
    return KILN_OK;
}

/* The mid block on *x (c channels). */
static kiln_status mid_run(kiln_pool *pool, const struct kiln_vae *v, const struct vae_coder *cd, float **x,
                           int h, int w) {
    kiln_status st = resnet_step(pool, v, &cd->mid[0], x, h, w);
    if (st == KILN_OK) st = attn_run(pool, v, &cd->attn, *x, (size_t)h * (size_t)w, cd->mid[0].c_out);
    if (st == KILN_OK) st = resnet_step(pool, v, &cd->mid[1], x, h, w);
    return st;
}

/* GroupNorm + SiLU + conv_out on *x (c channels). */
static kiln_status out_run(kiln_pool *pool, const struct kiln_vae *v, const struct vae_coder *cd, float **x,
                           int *h, int *w) {
    int c = cd->norm_out.n;
    kiln__group_norm(pool, *x, *x, (size_t)*h * (size_t)*w, c, v->opts.norm_groups, cd->norm_out.w,
                     cd->norm_out.b, v->opts.norm_eps, 1);
    return conv_step(pool, &cd->conv_out, 1, cd->conv_out.k / 2, 0, x, h, w);
}

/* The whole decode of latent [C][h][w] into rgb [3][h*scale][w*scale]. */
static kiln_status decode_whole(const struct kiln_vae *v, kiln_pool *pool, const float *latent, int h, int w,
                                float *rgb) {
    float *x = NULL;
    kiln_status st = kiln__sd_alloc((size_t)h, (size_t)w, (size_t)v->latent_c, &x);
    if (st != KILN_OK) return st;
    kiln__sd_chw_to_hwc(x, latent, v->latent_c, h, w);
    st = conv_step(pool, &v->post_quant, 1, 0, 0, &x, &h, &w);
    if (st == KILN_OK) st = conv_step(pool, &v->dec.conv_in, 1, 1, 0, &x, &h, &w);
    if (st == KILN_OK) st = mid_run(pool, v, &v->dec, &x, h, w);
    for (int i = 0; st == KILN_OK && i < v->dec.n_levels; i++) {
        const struct vae_level *l = &v->dec.levels[i];
        for (int j = 0; st == KILN_OK && j < l->n_resnets; j++) st = resnet_step(pool, v, &l->resnets[j], &x, h, w);
        if (st != KILN_OK || !l->sampler.w.data) continue;
        /* Upsample2D: nearest 2x, then the 3x3 convolution. */
        float *up = NULL;
        int c = l->sampler.c_in;
        st = kiln__sd_alloc((size_t)h * 2, (size_t)w * 2, (size_t)c, &up);
        if (st != KILN_OK) break;
        kiln__upsample_nearest(up, h * 2, w * 2, x, h, w, c);
        free(x);
        x = up;
        h *= 2;
        w *= 2;
        st = conv_step(pool, &l->sampler, 1, 1, 0, &x, &h, &w);
    }
    if (st == KILN_OK) st = out_run(pool, v, &v->dec, &x, &h, &w);
    if (st == KILN_OK) kiln__sd_hwc_to_chw(rgb, x, 3, h, w);
    free(x);
    return st;
}

/* Latent pixels above which "auto" tiles: 128 x 128, a 1024 x 1024 SD
 * image, whose whole decode holds 512 MiB activations at 128 channels. */
#define KILN_VAE_AUTO_TILE ((size_t)128 * 128)

int kiln__vae_tile(const struct kiln_vae *v) {
    int t = v->opts.sample_size / v->scale;
    return t > 0 ? t : 1;
}

/* A decoded tile: rgb [3][h][w] (owned). */
struct vae_tile {
    float *px; /* pixels, channel-first */
    int h, w;  /* size in pixels */
};

/* b's first rows (cols == 0) or columns (cols != 0) blended with a's last
 * ones over min(extent, sizes) pixels: b = a * (1 - t / e) + b * t / e. */
static void blend(const struct vae_tile *a, struct vae_tile *b, int extent, int cols) {
    int e = cols ? (a->w < b->w ? a->w : b->w) : (a->h < b->h ? a->h : b->h);
    if (extent < e) e = extent;
    for (int c = 0; c < 3; c++) {
        const float *pa = a->px + (size_t)c * (size_t)a->h * (size_t)a->w;
        float *pb = b->px + (size_t)c * (size_t)b->h * (size_t)b->w;
        for (int t = 0; t < e; t++) {
            float wb = (float)t / (float)e, wa = 1.0f - wb;
            if (cols) {
                for (int y = 0; y < b->h; y++) {
                    float *d = pb + (size_t)y * (size_t)b->w + (size_t)t;
                    *d = pa[(size_t)y * (size_t)a->w + (size_t)(a->w - e + t)] * wa + *d * wb;
                }
            } else {
                const float *ra = pa + (size_t)(a->h - e + t) * (size_t)a->w;
                float *rb = pb + (size_t)t * (size_t)b->w;
                for (int x = 0; x < b->w; x++) rb[x] = ra[x] * wa + rb[x] * wb;
            }
        }
    }
}

static void free_tiles(struct vae_tile *t, int n) {
    for (int i = 0; t && i < n; i++) free(t[i].px);
}

kiln_status kiln__vae_decode_tiled(const struct kiln_vae *v, kiln_pool *pool, const float *latent, int h,
                                   int w, int tile, float *rgb) {
    if (h < 1 || w < 1 || h > 4096 || w > 4096 || tile < 2)
        return kiln__fail(KILN_ERR_INVALID_ARG, "vae: latent size %dx%d or tile %d out of range", h, w, tile);
    /* diffusers: overlap_size, blend_extent, row_limit (factor 0.25). */
    int step = (int)(tile * 0.75), s = v->scale, ts = tile * s;
    int extent = (int)(ts * 0.25), keep = ts - extent, lc = v->latent_c;
    int n_cols = (w + step - 1) / step;
    size_t W = (size_t)w * (size_t)s, H = (size_t)h * (size_t)s;
    struct vae_tile *prev = calloc((size_t)n_cols, sizeof *prev), *cur = calloc((size_t)n_cols, sizeof *cur);
    float *crop = malloc((size_t)lc * (size_t)tile * (size_t)tile * sizeof *crop);
    kiln_status st = KILN_OK;
    if (!prev || !cur || !crop) st = kiln__fail(KILN_ERR_OUT_OF_MEMORY, "vae: out of memory for tiles");
    for (int i0 = 0, ti = 0; st == KILN_OK && i0 < h; i0 += step, ti++) {
        int th = h - i0 < tile ? h - i0 : tile;
        for (int j0 = 0, tj = 0; st == KILN_OK && j0 < w; j0 += step, tj++) {
            int tw = w - j0 < tile ? w - j0 : tile;
            for (int c = 0; c < lc; c++)
                for (int y = 0; y < th; y++)
                    memcpy(crop + ((size_t)c * (size_t)th + (size_t)y) * (size_t)tw,
                           latent + ((size_t)c * (size_t)h + (size_t)(i0 + y)) * (size_t)w + (size_t)j0,
                           (size_t)tw * sizeof *crop);
            struct vae_tile t = {malloc((size_t)3 * (size_t)th * (size_t)tw * (size_t)s * (size_t)s * sizeof(float)),
                                 th * s, tw * s};
            if (!t.px) {
                st = kiln__fail(KILN_ERR_OUT_OF_MEMORY, "vae: out of memory for a tile");
                break;
            }
            st = decode_whole(v, pool, crop, th, tw, t.px);
            if (st != KILN_OK) {
                free(t.px);
                break;
            }
            if (ti > 0) blend(&prev[tj], &t, extent, 0);
            if (tj > 0) blend(&cur[tj - 1], &t, extent, 1);
            cur[tj] = t;
            /* Its first keep x keep pixels go to the image. */
            size_t y0 = (size_t)ti * (size_t)keep, x0 = (size_t)tj * (size_t)keep;
            int kh = t.h < keep ? t.h : keep, kw = t.w < keep ? t.w : keep;
            for (int c = 0; c < 3; c++)
                for (int y = 0; y < kh; y++)
                    memcpy(rgb + ((size_t)c * H + y0 + (size_t)y) * W + x0,
                           t.px + ((size_t)c * (size_t)t.h + (size_t)y) * (size_t)t.w, (size_t)kw * sizeof *rgb);
        }
        /* This row's tiles are the next row's "above". */
        free_tiles(prev, n_cols);
        struct vae_tile *swap = prev;
        prev = cur;
        cur = swap;
        if (cur) memset(cur, 0, (size_t)n_cols * sizeof *cur);
    }
    free_tiles(prev, n_cols);
    free_tiles(cur, n_cols);
    free(prev);
    free(cur);
    free(crop);
    return st;
}

kiln_status kiln__vae_decode(const struct kiln_vae *v, kiln_pool *pool, const float *latent, int h, int w,
                             float *rgb) {
    if (h < 1 || w < 1 || h > 4096 || w > 4096)
        return kiln__fail(KILN_ERR_INVALID_ARG, "vae: latent size %dx%d out of range", h, w);
    const char *mode = getenv("KILN_VAE_TILE");
    int tile = kiln__vae_tile(v), tiled;
    if (!mode || !*mode || strcmp(mode, "auto") == 0)
        tiled = (size_t)h * (size_t)w > KILN_VAE_AUTO_TILE && (h > tile || w > tile);
    else if (strcmp(mode, "on") == 0)
        tiled = h > tile || w > tile;
    else if (strcmp(mode, "off") == 0)
        tiled = 0;
    else
        return kiln__fail(KILN_ERR_INVALID_ARG, "vae: KILN_VAE_TILE is '%s', not auto, on or off", mode);
    if (tiled && tile >= 2) return kiln__vae_decode_tiled(v, pool, latent, h, w, tile, rgb);
    return decode_whole(v, pool, latent, h, w, rgb);
}

kiln_status kiln__vae_encode(const struct kiln_vae *v, kiln_pool *pool, const float *rgb, int h, int w,
                             float *mean, float *logvar) {
    if (!v->has_encoder) return kiln__fail(KILN_ERR_UNSUPPORTED, "vae: these weights have no encoder");
    if (h < 1 || w < 1 || h > 32768 || w > 32768 || h % v->scale || w % v->scale)
        return kiln__fail(KILN_ERR_INVALID_ARG, "vae: image size %dx%d is not a positive multiple of %d", h, w,
                          v->scale);
    float *x = NULL;
    kiln_status st = kiln__sd_alloc((size_t)h, (size_t)w, 3, &x);
    if (st != KILN_OK) return st;
    kiln__sd_chw_to_hwc(x, rgb, 3, h, w);
    st = conv_step(pool, &v->enc.conv_in, 1, 1, 0, &x, &h, &w);
    for (int i = 0; st == KILN_OK && i < v->enc.n_levels; i++) {
        const struct vae_level *l = &v->enc.levels[i];
        for (int j = 0; st == KILN_OK && j < l->n_resnets; j++) st = resnet_step(pool, v, &l->resnets[j], &x, h, w);
        /* Downsample2D of the VAE: pad right and bottom by one, stride 2. */
        if (st == KILN_OK && l->sampler.w.data) st = conv_step(pool, &l->sampler, 2, 1, 1, &x, &h, &w);
    }
    if (st == KILN_OK) st = mid_run(pool, v, &v->enc, &x, h, w);
    if (st == KILN_OK) st = out_run(pool, v, &v->enc, &x, &h, &w);
    if (st == KILN_OK) st = conv_step(pool, &v->quant, 1, 0, 0, &x, &h, &w);
    if (st == KILN_OK) {
        /* Channels 0..C-1 are the mean, C..2C-1 the log-variance, clamped to
         * [-30, 20] as DiagonalGaussianDistribution does. */
        size_t hw = (size_t)h * (size_t)w, c2 = 2 * (size_t)v->latent_c;
        for (size_t p = 0; p < hw; p++)
            for (size_t c = 0; c < (size_t)v->latent_c; c++) {
                mean[c * hw + p] = x[p * c2 + c];
                float lv = x[p * c2 + (size_t)v->latent_c + c];
                logvar[c * hw + p] = lv < -30.0f ? -30.0f : lv > 20.0f ? 20.0f : lv;
            }
    }
    free(x);
    return st;
}
