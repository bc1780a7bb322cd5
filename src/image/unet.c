/* src/image/unet.c - diffusers' UNet2DConditionModel: tensor binding with
 * the structure read from the names and shapes, and one evaluation on
 * channel-last activations (see unet.h). */
#include "image/unet.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "formats/json_util.h"
#include "image/sd_blocks.h"
#include "kernels/flash_attention.h"
#include "kernels/image_ops.h"
#include "kernels/ops.h"

/* Most resnets (and transformers) per level. */
#define UNET_MAX_RESNETS 8
/* Most transformer blocks per Transformer2DModel. */
#define UNET_MAX_DEPTH 16
/* GroupNorm epsilon of Transformer2DModel, LayerNorm epsilon of its blocks. */
#define TF_GN_EPS 1e-6f
#define TF_LN_EPS 1e-5f

/* An Attention module: q from the rows, k and v from the rows or the context. */
struct unet_attn {
    struct kiln_sd_linear q, k, v; /* to_q, to_k, to_v (no biases) */
    struct kiln_sd_linear out;     /* to_out.0 (with bias) */
};

/* BasicTransformerBlock: self-attention, cross-attention, GEGLU feed-forward. */
struct unet_tblock {
    struct kiln_sd_norm norm1, norm2, norm3; /* LayerNorms before each part */
    struct unet_attn attn1, attn2;           /* self and cross attention */
    struct kiln_sd_linear ff_in;             /* ff.net.0.proj: inner -> 2 * ff (value, gate) */
    struct kiln_sd_linear ff_out;            /* ff.net.2: ff -> inner */
    int ff;                                  /* feed-forward width */
};

/* Transformer2DModel over the pixels of a level. */
struct unet_tf {
    struct kiln_sd_norm norm;                   /* GroupNorm */
    struct kiln_sd_linear proj_in, proj_out;    /* linear or 1x1 conv (same matrix) */
    struct unet_tblock blocks[UNET_MAX_DEPTH];  /* transformer_blocks */
    int depth;                                  /* blocks */
    int c;                                      /* channels in and out */
    int inner;                                  /* width inside (heads * head dim) */
    int heads;                                  /* attention heads */
};

/* One down or up block. */
struct unet_level {
    struct kiln_sd_resnet resnets[UNET_MAX_RESNETS]; /* resnets */
    struct unet_tf *tfs[UNET_MAX_RESNETS];           /* transformer after each resnet, or NULL */
    int n_resnets;                                   /* resnets */
    struct kiln_sd_conv sampler;                     /* downsampler/upsampler conv; w.data NULL: none */
};

struct kiln_unet {
    struct kiln_unet_opts opts;   /* heads, groups, epsilon */
    int in_c, out_c;              /* input and output channels */
    int ctx_dim;                  /* cross-attention context width */
    int ch0;                      /* channels after conv_in (sinusoid width) */
    int temb_dim;                 /* time embedding width */
    int n_levels;                 /* down (and up) blocks */
    int n_skips;                  /* skip connections saved by the down path */
    struct kiln_sd_conv conv_in;  /* first convolution */
    struct kiln_sd_linear t1, t2; /* time_embedding.linear_1, linear_2 */
    struct unet_level down[KILN_UNET_MAX_LEVELS]; /* down_blocks */
    struct kiln_sd_resnet mid[2]; /* mid_block.resnets */
    struct unet_tf *mid_tf;       /* mid_block.attentions.0 */
    struct unet_level up[KILN_UNET_MAX_LEVELS];   /* up_blocks */
    struct kiln_sd_norm norm_out; /* conv_norm_out */
    struct kiln_sd_conv conv_out; /* last convolution */
};

void kiln__unet_opts_sd1(struct kiln_unet_opts *out) {
    memset(out, 0, sizeof *out);
    for (int i = 0; i < KILN_UNET_MAX_LEVELS; i++) out->heads[i] = 8;
    out->norm_groups = 32;
    out->norm_eps = 1e-5f;
}

/* heads[] from an int or a list (the last entry repeats). */
static kiln_status heads_json(const char *path, const char *key, const json_t *v, struct kiln_unet_opts *out) {
    if (json_is_integer(v)) {
        for (int i = 0; i < KILN_UNET_MAX_LEVELS; i++) out->heads[i] = (int)json_integer_value(v);
    } else if (json_is_array(v) && json_array_size(v) >= 1 && json_array_size(v) <= KILN_UNET_MAX_LEVELS) {
        for (size_t i = 0; i < KILN_UNET_MAX_LEVELS; i++) {
            const json_t *e = json_array_get(v, i < json_array_size(v) ? i : json_array_size(v) - 1);
            if (!json_is_integer(e)) return kiln__fail(KILN_ERR_FORMAT, "%s: %s holds a non-integer", path, key);
            out->heads[i] = (int)json_integer_value(e);
        }
    } else {
        return kiln__fail(KILN_ERR_FORMAT, "%s: %s is neither an integer nor a list of up to %d", path, key,
                          KILN_UNET_MAX_LEVELS);
    }
    for (int i = 0; i < KILN_UNET_MAX_LEVELS; i++)
        if (out->heads[i] < 1 || out->heads[i] > 4096)
            return kiln__fail(KILN_ERR_FORMAT, "%s: %s out of range", path, key);
    return KILN_OK;
}

kiln_status kiln__unet_opts_json(const char *config_path, struct kiln_unet_opts *out) {
    kiln__unet_opts_sd1(out);
    json_t *cfg = NULL;
    kiln_status st = kiln__json_load_file(config_path, 0, &cfg);
    if (st != KILN_OK) return st;
    /* diffusers reads attention_head_dim as the number of heads unless
     * num_attention_heads is given (a naming slip kept for compatibility). */
    const json_t *nh = json_object_get(cfg, "num_attention_heads");
    const json_t *hd = json_object_get(cfg, "attention_head_dim");
    if (nh && !json_is_null(nh))
        st = heads_json(config_path, "num_attention_heads", nh, out);
    else if (hd && !json_is_null(hd))
        st = heads_json(config_path, "attention_head_dim", hd, out);
    int64_t groups = 32;
    double eps = 1e-5;
    if (st == KILN_OK) st = kiln__json_get_int(cfg, "norm_num_groups", 32, &groups);
    if (st == KILN_OK) st = kiln__json_get_real(cfg, "norm_eps", 1e-5, &eps);
    if (st == KILN_OK && (groups < 1 || groups > 4096))
        st = kiln__fail(KILN_ERR_FORMAT, "%s: norm_num_groups out of range", config_path);
    if (st == KILN_OK) {
        out->norm_groups = (int)groups;
        out->norm_eps = (float)eps;
    }
    json_decref(cfg);
    return st;
}

static void attn_free(struct unet_attn *a) {
    kiln__sd_linear_free(&a->q);
    kiln__sd_linear_free(&a->k);
    kiln__sd_linear_free(&a->v);
    kiln__sd_linear_free(&a->out);
}

static void tf_free(struct unet_tf *t) {
    if (!t) return;
    kiln__sd_norm_free(&t->norm);
    kiln__sd_linear_free(&t->proj_in);
    kiln__sd_linear_free(&t->proj_out);
    for (int i = 0; i < UNET_MAX_DEPTH; i++) {
        struct unet_tblock *b = &t->blocks[i];
        kiln__sd_norm_free(&b->norm1);
        kiln__sd_norm_free(&b->norm2);
        kiln__sd_norm_free(&b->norm3);
        attn_free(&b->attn1);
        attn_free(&b->attn2);
        kiln__sd_linear_free(&b->ff_in);
        kiln__sd_linear_free(&b->ff_out);
    }
    free(t);
}

static void level_free(struct unet_level *l) {
    for (int j = 0; j < UNET_MAX_RESNETS; j++) {
        kiln__sd_resnet_free(&l->resnets[j]);
        tf_free(l->tfs[j]);
    }
    kiln__sd_conv_free(&l->sampler);
}

void kiln__unet_free(struct kiln_unet *u) {
    if (!u) return;
    kiln__sd_conv_free(&u->conv_in);
    kiln__sd_linear_free(&u->t1);
    kiln__sd_linear_free(&u->t2);
    for (int i = 0; i < KILN_UNET_MAX_LEVELS; i++) {
        level_free(&u->down[i]);
        level_free(&u->up[i]);
    }
    kiln__sd_resnet_free(&u->mid[0]);
    kiln__sd_resnet_free(&u->mid[1]);
    tf_free(u->mid_tf);
    kiln__sd_norm_free(&u->norm_out);
    kiln__sd_conv_free(&u->conv_out);
    free(u);
}

/* Bind attention `name` ("...attn1") of width d whose keys come from kv_dim. */
static kiln_status attn_load(const struct kiln_sd_binder *b, const char *name, int d, int kv_dim,
                             struct unet_attn *a) {
    char n[KILN_SD_NAME_MAX];
    kiln_status st;
#define PART(p) (snprintf(n, sizeof n, "%s.%s", name, p), n)
    if ((st = kiln__sd_linear(b, PART("to_q"), d, d, 0, &a->q)) != KILN_OK) return st;
    if ((st = kiln__sd_linear(b, PART("to_k"), kv_dim, d, 0, &a->k)) != KILN_OK) return st;
    if ((st = kiln__sd_linear(b, PART("to_v"), kv_dim, d, 0, &a->v)) != KILN_OK) return st;
    return kiln__sd_linear(b, PART("to_out.0"), d, d, 1, &a->out);
#undef PART
}

/* Bind Transformer2DModel `name` on c channels with `heads` heads (or
 * c / head_channels). The context width is learnt from the first block
 * (*ctx_dim 0) or checked against it. */
static kiln_status tf_load(const struct kiln_sd_binder *b, const char *name, int c, int heads, int head_channels,
                           int groups, int *ctx_dim, struct unet_tf **out) {
    char n[KILN_SD_NAME_MAX];
    kiln_status st;
    struct unet_tf *t = calloc(1, sizeof *t);
    if (!t) return kiln__fail(KILN_ERR_OUT_OF_MEMORY, "unet: out of memory");
    *out = t;
    t->c = c;
#define PART(...) (snprintf(n, sizeof n, __VA_ARGS__), n)
    if ((st = kiln__sd_check_groups(b, PART("%s.norm", name), c, groups)) != KILN_OK) return st;
    if ((st = kiln__sd_norm(b, PART("%s.norm", name), c, &t->norm)) != KILN_OK) return st;
    if ((st = kiln__sd_linear(b, PART("%s.proj_in", name), c, 0, 1, &t->proj_in)) != KILN_OK) return st;
    t->inner = (int)t->proj_in.w.n_out;
    if ((st = kiln__sd_linear(b, PART("%s.proj_out", name), t->inner, c, 1, &t->proj_out)) != KILN_OK) return st;
    t->heads = head_channels > 0 ? t->inner / head_channels : heads;
    if (t->heads < 1 || t->inner % t->heads)
        return kiln__fail(KILN_ERR_INVALID_ARG, "unet: %d heads do not divide the width %d of %s%s", t->heads,
                          t->inner, b->prefix, name);
    while (kiln__sd_find(b, "%s.transformer_blocks.%d.norm1.weight", name, t->depth)) {
        if (t->depth == UNET_MAX_DEPTH)
            return kiln__fail(KILN_ERR_UNSUPPORTED, "unet: more than %d transformer blocks", UNET_MAX_DEPTH);
        struct unet_tblock *k = &t->blocks[t->depth];
        char base[KILN_SD_NAME_MAX / 2];
        snprintf(base, sizeof base, "%s.transformer_blocks.%d", name, t->depth);
        int d = t->inner;
        if ((st = kiln__sd_norm(b, PART("%s.norm1", base), d, &k->norm1)) != KILN_OK) return st;
        if ((st = kiln__sd_norm(b, PART("%s.norm2", base), d, &k->norm2)) != KILN_OK) return st;
        if ((st = kiln__sd_norm(b, PART("%s.norm3", base), d, &k->norm3)) != KILN_OK) return st;
        if ((st = attn_load(b, PART("%s.attn1", base), d, d, &k->attn1)) != KILN_OK) return st;
        if (*ctx_dim == 0) {
            const struct kiln_tensor *kt = kiln__sd_find(b, "%s.attn2.to_k.weight", base);
            if (!kt || kt->n_dims != 2 || kt->shape[1] < 1 || kt->shape[1] > 65536)
                return kiln__fail(KILN_ERR_FORMAT, "unet: no cross-attention in %s%s", b->prefix, base);
            *ctx_dim = (int)kt->shape[1];
        }
        if ((st = attn_load(b, PART("%s.attn2", base), d, *ctx_dim, &k->attn2)) != KILN_OK) return st;
        if ((st = kiln__sd_linear(b, PART("%s.ff.net.0.proj", base), d, 0, 1, &k->ff_in)) != KILN_OK) return st;
        if (k->ff_in.w.n_out % 2)
            return kiln__fail(KILN_ERR_FORMAT, "unet: %s%s GEGLU projection has an odd width", b->prefix, base);
        k->ff = (int)k->ff_in.w.n_out / 2;
        if ((st = kiln__sd_linear(b, PART("%s.ff.net.2", base), k->ff, d, 1, &k->ff_out)) != KILN_OK) return st;
        t->depth++;
    }
#undef PART
    if (t->depth == 0) return kiln__fail(KILN_ERR_FORMAT, "unet: %s%s has no transformer blocks", b->prefix, name);
    return KILN_OK;
}

/* Load state: channels now and the skip channels saved by the down path. */
struct load_state {
    int c;                        /* current channels */
    int skips[KILN_UNET_MAX_LEVELS * (UNET_MAX_RESNETS + 1) + 1]; /* channels of saved skips */
    int n_skips;                  /* saved skips */
    int max_skips;                /* most saved at once */
};

/* Bind block `kind`.i ("down_blocks" or "up_blocks") at level heads `heads`. */
static kiln_status level_load(const struct kiln_sd_binder *b, struct kiln_unet *u, const char *kind, int i,
                              int heads, struct load_state *s, struct unet_level *l) {
    char n[KILN_SD_NAME_MAX];
    kiln_status st;
    int up = kind[0] == 'u';
    while (kiln__sd_find(b, "%s.%d.resnets.%d.conv1.weight", kind, i, l->n_resnets)) {
        if (l->n_resnets == UNET_MAX_RESNETS)
            return kiln__fail(KILN_ERR_UNSUPPORTED, "unet: more than %d resnets per block", UNET_MAX_RESNETS);
        int c_in = s->c;
        if (up) {
            if (s->n_skips == 0) return kiln__fail(KILN_ERR_FORMAT, "unet: up blocks use more skips than saved");
            c_in += s->skips[--s->n_skips];
        }
        snprintf(n, sizeof n, "%s.%d.resnets.%d", kind, i, l->n_resnets);
        if ((st = kiln__sd_resnet_load(b, n, c_in, u->temb_dim, u->opts.norm_groups, &l->resnets[l->n_resnets])) != KILN_OK) return st;
        s->c = l->resnets[l->n_resnets].c_out;
        if (kiln__sd_find(b, "%s.%d.attentions.%d.norm.weight", kind, i, l->n_resnets)) {
            snprintf(n, sizeof n, "%s.%d.attentions.%d", kind, i, l->n_resnets);
            st = tf_load(b, n, s->c, heads, u->opts.head_channels, u->opts.norm_groups, &u->ctx_dim, &l->tfs[l->n_resnets]);
            if (st != KILN_OK) return st;
        }
        l->n_resnets++;
        if (!up) s->skips[s->n_skips++] = s->c;
    }
    if (l->n_resnets == 0) return kiln__fail(KILN_ERR_FORMAT, "unet: %s.%d has no resnets", kind, i);
    const char *sampler = up ? "upsamplers" : "downsamplers";
    if (kiln__sd_find(b, "%s.%d.%s.0.conv.weight", kind, i, sampler)) {
        snprintf(n, sizeof n, "%s.%d.%s.0.conv", kind, i, sampler);
        if ((st = kiln__sd_conv(b, n, s->c, &l->sampler)) != KILN_OK) return st;
        if (l->sampler.c_out != s->c || l->sampler.k != 3)
            return kiln__fail(KILN_ERR_FORMAT, "unet: %s%s is not a 3x3 convolution keeping the width", b->prefix, n);
        if (!up) s->skips[s->n_skips++] = s->c;
    }
    if (s->n_skips > s->max_skips) s->max_skips = s->n_skips;
    return KILN_OK;
}

/* Bind everything after the checks of kiln__unet_load. */
static kiln_status unet_bind(const struct kiln_sd_binder *b, struct kiln_unet *u) {
    kiln_status st;
    if ((st = kiln__sd_conv(b, "conv_in", u->in_c, &u->conv_in)) != KILN_OK) return st;
    u->ch0 = u->conv_in.c_out;
    if (u->ch0 % 2) return kiln__fail(KILN_ERR_FORMAT, "unet: conv_in gives an odd width %d", u->ch0);
    if ((st = kiln__sd_linear(b, "time_embedding.linear_1", u->ch0, 0, 1, &u->t1)) != KILN_OK) return st;
    u->temb_dim = (int)u->t1.w.n_out;
    if ((st = kiln__sd_linear(b, "time_embedding.linear_2", u->temb_dim, u->temb_dim, 1, &u->t2)) != KILN_OK)
        return st;
    struct load_state s = {0};
    s.c = u->ch0;
    s.skips[s.n_skips++] = s.c;
    while (kiln__sd_find(b, "down_blocks.%d.resnets.0.conv1.weight", u->n_levels)) {
        if (u->n_levels == KILN_UNET_MAX_LEVELS)
            return kiln__fail(KILN_ERR_UNSUPPORTED, "unet: more than %d levels", KILN_UNET_MAX_LEVELS);
        int i = u->n_levels++;
        if ((st = level_load(b, u, "down_blocks", i, u->opts.heads[i], &s, &u->down[i])) != KILN_OK) return st;
    }
    if (u->n_levels == 0) return kiln__fail(KILN_ERR_FORMAT, "unet: no down blocks under \"%s\"", b->prefix);
    u->n_skips = s.max_skips;
    int top = u->opts.heads[u->n_levels - 1];
    if ((st = kiln__sd_resnet_load(b, "mid_block.resnets.0", s.c, u->temb_dim, u->opts.norm_groups, &u->mid[0])) != KILN_OK) return st;
    s.c = u->mid[0].c_out;
    if ((st = tf_load(b, "mid_block.attentions.0", s.c, top, u->opts.head_channels, u->opts.norm_groups, &u->ctx_dim, &u->mid_tf)) !=
        KILN_OK)
        return st;
    if ((st = kiln__sd_resnet_load(b, "mid_block.resnets.1", s.c, u->temb_dim, u->opts.norm_groups, &u->mid[1])) != KILN_OK) return st;
    s.c = u->mid[1].c_out;
    for (int i = 0; i < u->n_levels; i++)
        if ((st = level_load(b, u, "up_blocks", i, u->opts.heads[u->n_levels - 1 - i], &s, &u->up[i])) != KILN_OK)
            return st;
    if (s.n_skips != 0) return kiln__fail(KILN_ERR_FORMAT, "unet: %d skip connections left unused", s.n_skips);
    if ((st = kiln__sd_check_groups(b, "conv_norm_out", s.c, u->opts.norm_groups)) != KILN_OK) return st;
    if ((st = kiln__sd_norm(b, "conv_norm_out", s.c, &u->norm_out)) != KILN_OK) return st;
    if ((st = kiln__sd_conv(b, "conv_out", s.c, &u->conv_out)) != KILN_OK) return st;
    u->out_c = u->conv_out.c_out;
    return KILN_OK;
}

kiln_status kiln__unet_load(const struct kiln_weights *w, const char *prefix, const struct kiln_unet_opts *opts,
                            struct kiln_unet **out) {
    *out = NULL;
    struct kiln_sd_binder b = {w, prefix, KILN_SD_NAMES_DIFFUSERS, 0};
    kiln__sd_detect_names(&b); /* single-file checkpoints use the ldm names */
    const struct kiln_tensor *ci = kiln__sd_find(&b, "conv_in.weight");
    if (!ci || ci->n_dims != 4 || ci->shape[1] < 1 || ci->shape[1] > 64)
        return kiln__fail(KILN_ERR_FORMAT, "unet: no conv_in under \"%s\"", prefix);
    if (opts->norm_groups < 1) return kiln__fail(KILN_ERR_INVALID_ARG, "unet: %d groups", opts->norm_groups);
    struct kiln_unet *u = calloc(1, sizeof *u);
    if (!u) return kiln__fail(KILN_ERR_OUT_OF_MEMORY, "unet: out of memory");
    u->opts = *opts;
    u->in_c = (int)ci->shape[1];
    kiln_status st = unet_bind(&b, u);
    if (st != KILN_OK) {
        kiln__unet_free(u);
        return st;
    }
    *out = u;
    return KILN_OK;
}

int kiln__unet_in_channels(const struct kiln_unet *u) { return u->in_c; }
int kiln__unet_out_channels(const struct kiln_unet *u) { return u->out_c; }
int kiln__unet_context_dim(const struct kiln_unet *u) { return u->ctx_dim; }

int kiln__unet_size_multiple(const struct kiln_unet *u) {
    int n = 0;
    for (int i = 0; i < u->n_levels; i++) n += u->down[i].sampler.w.data != NULL;
    return 1 << n;
}

/* y = l(x) over n rows, with its own matmul scratch. */
static kiln_status lin(kiln_pool *pool, const struct kiln_sd_linear *l, const float *x, size_t n, float *y) {
    float *scratch = malloc((size_t)kiln__pool_size(pool) * l->w.n_in * sizeof *scratch);
    if (!scratch) return kiln__fail(KILN_ERR_OUT_OF_MEMORY, "unet: out of memory");
    kiln_status st = kiln__sd_linear_apply(pool, l, x, n, y, scratch);
    free(scratch);
    return st;
}

/* For nb images of n rows each, t [nb][n][d] += attention(norm(t)) with
 * image b's keys from kv[b] [n_kv][kv_dim] (kv NULL: self-attention on the
 * image's normalized rows). nrm, q, a: [nb][n][d] buffers; k, v:
 * [nb][max(n, n_kv)][d]. The projections run on the rows of all images
 * at once, the attention itself per image. */
static kiln_status attn_run(kiln_pool *pool, const struct unet_attn *at, const struct kiln_sd_norm *norm,
                            int heads, float *t, int nb, int n, int d, const float *const *kv, int n_kv, float *nrm,
                            float *q, float *k, float *v, float *a) {
    size_t dd = (size_t)d, rows = (size_t)nb * (size_t)n;
    kiln__layernorm_rows(pool, nrm, t, rows, dd, norm->w, norm->b, TF_LN_EPS, 1);
    int ns = kv ? n_kv : n;
    kiln_status st = lin(pool, &at->q, nrm, rows, q);
    if (kv) {
        for (int b = 0; st == KILN_OK && b < nb; b++) {
            size_t off = (size_t)b * (size_t)ns * dd;
            st = lin(pool, &at->k, kv[b], (size_t)ns, k + off);
            if (st == KILN_OK) st = lin(pool, &at->v, kv[b], (size_t)ns, v + off);
        }
    } else {
        if (st == KILN_OK) st = lin(pool, &at->k, nrm, rows, k);
        if (st == KILN_OK) st = lin(pool, &at->v, nrm, rows, v);
    }
    for (int b = 0; st == KILN_OK && b < nb; b++) {
        size_t qo = (size_t)b * (size_t)n * dd, ko = (size_t)b * (size_t)ns * dd;
        struct kiln_flash_args fa = {.out = a + qo, .out_stride = dd, .q = q + qo, .q_stride = dd, .k = k + ko,
                                     .v = v + ko, .kv_stride = dd, .kv_type = KILN_DTYPE_F32, .n_q = n,
                                     .n_kv = ns, .n_heads = heads, .n_heads_kv = heads, .head_dim = d / heads};
        st = kiln__flash_attention(pool, &fa, KILN_CONV_ISA_BEST);
    }
    if (st == KILN_OK) st = lin(pool, &at->out, a, rows, nrm);
    if (st == KILN_OK)
        for (size_t i = 0; i < rows * dd; i++) t[i] += nrm[i];
    return st;
}

/* x [nb][hw][c] = Transformer2DModel(x), image b attending to ctx[b]
 * [n_ctx][ctx_dim]. */
static kiln_status tf_run(kiln_pool *pool, const struct kiln_unet *u, const struct unet_tf *tf, float *x, int nb,
                          int hw, const float *const *ctx, int n_ctx) {
    size_t n = (size_t)nb * (size_t)hw, d = (size_t)tf->inner, c = (size_t)tf->c;
    int ff = 0;
    for (int i = 0; i < tf->depth; i++)
        if (tf->blocks[i].ff > ff) ff = tf->blocks[i].ff;
    size_t nkv = (size_t)nb * (hw > n_ctx ? (size_t)hw : (size_t)n_ctx);
    float *g = NULL, *t = NULL, *nrm = NULL, *q = NULL, *k = NULL, *v = NULL, *a = NULL, *f = NULL;
    kiln_status st = kiln__sd_alloc(n, 1, c, &g);
    if (st == KILN_OK) st = kiln__sd_alloc(n, 1, d, &t);
    if (st == KILN_OK) st = kiln__sd_alloc(n, 1, d, &nrm);
    if (st == KILN_OK) st = kiln__sd_alloc(n, 1, d, &q);
    if (st == KILN_OK) st = kiln__sd_alloc(nkv, 1, d, &k);
    if (st == KILN_OK) st = kiln__sd_alloc(nkv, 1, d, &v);
    if (st == KILN_OK) st = kiln__sd_alloc(n, 1, d, &a);
    if (st == KILN_OK) st = kiln__sd_alloc(n, 2, (size_t)ff, &f);
    if (st == KILN_OK) {
        size_t img = (size_t)hw * c;
        for (int b = 0; b < nb; b++)
            kiln__group_norm(pool, g + (size_t)b * img, x + (size_t)b * img, (size_t)hw, tf->c, u->opts.norm_groups,
                             tf->norm.w, tf->norm.b, TF_GN_EPS, 0);
        st = lin(pool, &tf->proj_in, g, n, t);
    }
    for (int i = 0; st == KILN_OK && i < tf->depth; i++) {
        const struct unet_tblock *b = &tf->blocks[i];
        st = attn_run(pool, &b->attn1, &b->norm1, tf->heads, t, nb, hw, tf->inner, NULL, 0, nrm, q, k, v, a);
        if (st == KILN_OK)
            st = attn_run(pool, &b->attn2, &b->norm2, tf->heads, t, nb, hw, tf->inner, ctx, n_ctx, nrm, q, k, v, a);
        if (st != KILN_OK) break;
        kiln__layernorm_rows(pool, nrm, t, n, d, b->norm3.w, b->norm3.b, TF_LN_EPS, 1);
        if ((st = lin(pool, &b->ff_in, nrm, n, f)) != KILN_OK) break;
        /* GEGLU: the first half times GELU of the second, packed in place. */
        kiln__geglu_rows(pool, f, n, (size_t)b->ff, 1);
        if ((st = lin(pool, &b->ff_out, f, n, nrm)) != KILN_OK) break;
        for (size_t j = 0; j < n * d; j++) t[j] += nrm[j];
    }
    if (st == KILN_OK) st = lin(pool, &tf->proj_out, t, n, g);
    if (st == KILN_OK)
        for (size_t j = 0; j < n * c; j++) x[j] += g[j];
    free(g);
    free(t);
    free(nrm);
    free(q);
    free(k);
    free(v);
    free(a);
    free(f);
    return st;
}

/* A saved activation of the down path. */
struct skip {
    float *x;    /* [h][w][c] */
    int h, w, c; /* its size */
};

/* One evaluation's state: the activations of its nb images, their size,
 * and the skips. */
struct eval_state {
    int nb;                   /* images evaluated together */
    float *x;                 /* current activations [nb][h][w][c] */
    int h, w, c;              /* size of one image's */
    struct skip *skips;       /* saved skips (u->n_skips slots), [nb][h][w][c] each */
    int n_skips;              /* saved now */
    const float *temb;        /* silu(time embedding), shared by the images */
    const float *const *ctx;  /* context rows of each image */
    int n_ctx;                /* context rows */
};

/* s->x = conv(s->x). */
static kiln_status conv_step(kiln_pool *pool, const struct kiln_sd_conv *c, int stride, struct eval_state *s) {
    int pad = c->k / 2;
    int oh = kiln__sd_conv_out(s->h, c->k, stride, pad, 0), ow = kiln__sd_conv_out(s->w, c->k, stride, pad, 0);
    float *y = NULL;
    kiln_status st = kiln__sd_alloc((size_t)s->nb * (size_t)oh, (size_t)ow, (size_t)c->c_out, &y);
    if (st == KILN_OK) st = kiln__sd_conv_run(pool, c, stride, pad, 0, s->x, s->nb, s->h, s->w, y, &oh, &ow);
    if (st != KILN_OK) {
        free(y);
        return st;
    }
    free(s->x);
    s->x = y;
    s->h = oh;
    s->w = ow;
    s->c = c->c_out;
    return KILN_OK;
}

/* s->x = resnet(s->x), then the transformer when there is one. */
static kiln_status resnet_step(kiln_pool *pool, const struct kiln_unet *u, const struct kiln_sd_resnet *r,
                               const struct unet_tf *tf, struct eval_state *s) {
    float *y = NULL;
    kiln_status st = kiln__sd_alloc((size_t)s->nb * (size_t)s->h, (size_t)s->w, (size_t)r->c_out, &y);
    if (st == KILN_OK)
        st = kiln__sd_resnet_run(pool, r, u->opts.norm_groups, u->opts.norm_eps, s->x, s->nb, s->h, s->w, s->temb,
                                 y);
    if (st != KILN_OK) {
        free(y);
        return st;
    }
    free(s->x);
    s->x = y;
    s->c = r->c_out;
    if (tf) st = tf_run(pool, u, tf, s->x, s->nb, s->h * s->w, s->ctx, s->n_ctx);
    return st;
}

/* Save a copy of s->x as the next skip. */
static kiln_status push_skip(struct eval_state *s) {
    struct skip *k = &s->skips[s->n_skips];
    size_t n = (size_t)s->nb * (size_t)s->h * (size_t)s->w * (size_t)s->c;
    kiln_status st = kiln__sd_alloc(n, 1, 1, &k->x);
    if (st != KILN_OK) return st;
    memcpy(k->x, s->x, n * sizeof *k->x);
    k->h = s->h;
    k->w = s->w;
    k->c = s->c;
    s->n_skips++;
    return KILN_OK;
}

/* s->x = concat(s->x, last skip) along channels; the skip is released. */
static kiln_status pop_skip(struct eval_state *s) {
    struct skip *k = &s->skips[--s->n_skips];
    if (k->h != s->h || k->w != s->w) {
        free(k->x);
        return kiln__fail(KILN_ERR_INTERNAL, "unet: skip of %dx%d meets %dx%d", k->h, k->w, s->h, s->w);
    }
    size_t hw = (size_t)s->nb * (size_t)s->h * (size_t)s->w, c = (size_t)s->c, ck = (size_t)k->c;
    float *y = NULL;
    kiln_status st = kiln__sd_alloc(hw, 1, c + ck, &y);
    if (st == KILN_OK)
        for (size_t p = 0; p < hw; p++) {
            memcpy(y + p * (c + ck), s->x + p * c, c * sizeof *y);
            memcpy(y + p * (c + ck) + c, k->x + p * ck, ck * sizeof *y);
        }
    free(k->x);
    k->x = NULL;
    if (st != KILN_OK) return st;
    free(s->x);
    s->x = y;
    s->c += k->c;
    return KILN_OK;
}

/* The time embedding: sinusoid (cos half first, as flip_sin_to_cos), then
 * linear_1, SiLU, linear_2, and the SiLU every resnet applies. The
 * frequencies are computed in float32 in PyTorch's order. */
static kiln_status time_embed(kiln_pool *pool, const struct kiln_unet *u, float timestep, float *temb) {
    int half = u->ch0 / 2;
    float *sin_emb = malloc((size_t)u->ch0 * sizeof *sin_emb);
    float *h = malloc((size_t)u->temb_dim * sizeof *h);
    kiln_status st = KILN_OK;
    if (!sin_emb || !h) st = kiln__fail(KILN_ERR_OUT_OF_MEMORY, "unet: out of memory");
    if (st == KILN_OK) {
        for (int i = 0; i < half; i++) {
            float e = (float)i * -9.21034037198f; /* -ln(10000) */
            e = e / (float)half;
            float arg = timestep * expf(e);
            sin_emb[i] = cosf(arg);
            sin_emb[half + i] = sinf(arg);
        }
        st = lin(pool, &u->t1, sin_emb, 1, h);
    }
    if (st == KILN_OK) {
        kiln__silu(h, (size_t)u->temb_dim);
        st = lin(pool, &u->t2, h, 1, temb);
    }
    if (st == KILN_OK) kiln__silu(temb, (size_t)u->temb_dim);
    free(sin_emb);
    free(h);
    return st;
}

/* The whole network on s (its x holds the input, channel-last). */
static kiln_status unet_run(kiln_pool *pool, const struct kiln_unet *u, struct eval_state *s) {
    kiln_status st = conv_step(pool, &u->conv_in, 1, s);
    if (st == KILN_OK) st = push_skip(s);
    for (int i = 0; st == KILN_OK && i < u->n_levels; i++) {
        const struct unet_level *l = &u->down[i];
        for (int j = 0; st == KILN_OK && j < l->n_resnets; j++) {
            st = resnet_step(pool, u, &l->resnets[j], l->tfs[j], s);
            if (st == KILN_OK) st = push_skip(s);
        }
        if (st == KILN_OK && l->sampler.w.data) {
            st = conv_step(pool, &l->sampler, 2, s);
            if (st == KILN_OK) st = push_skip(s);
        }
    }
    if (st == KILN_OK) st = resnet_step(pool, u, &u->mid[0], u->mid_tf, s);
    if (st == KILN_OK) st = resnet_step(pool, u, &u->mid[1], NULL, s);
    for (int i = 0; st == KILN_OK && i < u->n_levels; i++) {
        const struct unet_level *l = &u->up[i];
        for (int j = 0; st == KILN_OK && j < l->n_resnets; j++) {
            st = pop_skip(s);
            if (st == KILN_OK) st = resnet_step(pool, u, &l->resnets[j], l->tfs[j], s);
        }
        if (st != KILN_OK || !l->sampler.w.data) continue;
        /* Upsample2D: nearest to the size of the skip it meets next (twice
         * the size when it divides), then the 3x3 convolution. */
        int oh = s->n_skips ? s->skips[s->n_skips - 1].h : s->h * 2;
        int ow = s->n_skips ? s->skips[s->n_skips - 1].w : s->w * 2;
        float *y = NULL;
        st = kiln__sd_alloc((size_t)s->nb * (size_t)oh, (size_t)ow, (size_t)s->c, &y);
        if (st != KILN_OK) break;
        for (int b = 0; b < s->nb; b++)
            kiln__upsample_nearest(y + (size_t)b * (size_t)oh * (size_t)ow * (size_t)s->c, oh, ow,
                                   s->x + (size_t)b * (size_t)s->h * (size_t)s->w * (size_t)s->c, s->h, s->w, s->c);
        free(s->x);
        s->x = y;
        s->h = oh;
        s->w = ow;
        st = conv_step(pool, &l->sampler, 1, s);
    }
    if (st == KILN_OK) {
        size_t hw = (size_t)s->h * (size_t)s->w;
        for (int b = 0; b < s->nb; b++) {
            float *xb = s->x + (size_t)b * hw * (size_t)s->c;
            kiln__group_norm(pool, xb, xb, hw, s->c, u->opts.norm_groups, u->norm_out.w, u->norm_out.b,
                             u->opts.norm_eps, 1);
        }
        st = conv_step(pool, &u->conv_out, 1, s);
    }
    return st;
}

kiln_status kiln__unet_eval_batch(const struct kiln_unet *u, kiln_pool *pool, int nb, const float *x, int h, int w,
                                  float timestep, const float *const *contexts, int n_ctx, float *out) {
    if (h < 1 || w < 1 || h > 1024 || w > 1024)
        return kiln__fail(KILN_ERR_INVALID_ARG, "unet: latent size %dx%d out of range", h, w);
    if (n_ctx < 1 || n_ctx > 4096)
        return kiln__fail(KILN_ERR_INVALID_ARG, "unet: %d context rows", n_ctx);
    if (nb < 1 || nb > KILN_UNET_MAX_BATCH) return kiln__fail(KILN_ERR_INVALID_ARG, "unet: a batch of %d", nb);
    struct eval_state s = {0};
    s.nb = nb;
    s.h = h;
    s.w = w;
    s.c = u->in_c;
    s.ctx = contexts;
    s.n_ctx = n_ctx;
    size_t hw = (size_t)h * (size_t)w;
    float *temb = malloc((size_t)u->temb_dim * sizeof *temb);
    s.skips = calloc((size_t)u->n_skips, sizeof *s.skips);
    kiln_status st = KILN_OK;
    if (!temb || !s.skips) st = kiln__fail(KILN_ERR_OUT_OF_MEMORY, "unet: out of memory");
    if (st == KILN_OK) st = time_embed(pool, u, timestep, temb);
    s.temb = temb;
    if (st == KILN_OK) st = kiln__sd_alloc((size_t)nb * (size_t)h, (size_t)w, (size_t)u->in_c, &s.x);
    if (st == KILN_OK) {
        for (int b = 0; b < nb; b++)
            kiln__sd_chw_to_hwc(s.x + (size_t)b * hw * (size_t)u->in_c, x + (size_t)b * hw * (size_t)u->in_c,
                                u->in_c, h, w);
        st = unet_run(pool, u, &s);
    }
    if (st == KILN_OK)
        for (int b = 0; b < nb; b++)
            kiln__sd_hwc_to_chw(out + (size_t)b * hw * (size_t)u->out_c, s.x + (size_t)b * hw * (size_t)u->out_c,
                                u->out_c, h, w);
    for (int i = 0; i < s.n_skips; i++) free(s.skips[i].x);
    free(s.skips);
    free(s.x);
    free(temb);
    return st;
}

kiln_status kiln__unet_eval(const struct kiln_unet *u, kiln_pool *pool, const float *x, int h, int w,
                            float timestep, const float *context, int n_ctx, float *out) {
    return kiln__unet_eval_batch(u, pool, 1, x, h, w, timestep, &context, n_ctx, out);
}
