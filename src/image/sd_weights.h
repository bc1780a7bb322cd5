/* src/image/sd_weights.h - finding the tensors of a Stable Diffusion
 * component (text encoder, UNet, VAE) in a weights view, and the small
 * helpers every component loader shares (internal).
 *
 * Names are given in the diffusers layout relative to the component
 * ("down_blocks.0.resnets.0.conv1.weight"); the binder prepends the
 * component prefix ("unet/" in a diffusers folder, or whatever prefix the
 * caller passes). Small tensors (norms, biases, convolution kernels) are
 * copied to float32 at load; matrices stay where they are mapped and are
 * multiplied by kiln__matmul_fast in their own dtype.
 */
#ifndef KILN_IMAGE_SD_WEIGHTS_H
#define KILN_IMAGE_SD_WEIGHTS_H

#include <stddef.h>
#include <stdint.h>

#include "core/threadpool.h"
#include "formats/weights.h"
#include "kiln/dtype.h"
#include "kernels/conv2d_packed.h"
#include "kiln/status.h"

/* Longest tensor name the binder builds. */
#define KILN_SD_NAME_MAX 256

/* How the component's tensors are named in the file. */
typedef enum kiln_sd_names {
    KILN_SD_NAMES_DIFFUSERS, /* as asked (diffusers folders, GGUF conversions of them) */
    KILN_SD_NAMES_LDM_UNET,  /* original ldm UNet ("input_blocks.1.0.in_layers.0.weight") */
    KILN_SD_NAMES_LDM_VAE,   /* original ldm VAE ("decoder.up.3.block.0.norm1.weight") */
} kiln_sd_names;

/* Where a component's tensors are. */
struct kiln_sd_binder {
    const struct kiln_weights *w; /* the opened model (borrowed) */
    const char *prefix;           /* prepended to every name ("unet/", "model.diffusion_model." ...), borrowed */
    kiln_sd_names names;          /* translation applied to diffusers names */
    int ldm_count;                /* LDM_UNET: resnets per down level; LDM_VAE: decoder levels */
};

/* Set b->names to the ldm layout of a UNet ("input_blocks.0.0.weight"
 * present) or VAE ("decoder.mid.block_1.norm1.weight" present) under
 * b->prefix, with its geometry; leaves diffusers names otherwise. */
void kiln__sd_detect_names(struct kiln_sd_binder *b);

/* The ldm name of diffusers name `name` into out (cap bytes) for b->names;
 * 0 when the name has no ldm counterpart. */
int kiln__sd_ldm_name(const struct kiln_sd_binder *b, const char *name, char *out, size_t cap);

/* A matrix used in its stored dtype: rows of n_in values. */
struct kiln_sd_mat {
    kiln_dtype type;   /* stored element type */
    const void *data;  /* mapped bytes (borrowed from the weights) */
    size_t n_out;      /* rows (output features) */
    size_t n_in;       /* values per row (input features, or Cin*kh*kw for a convolution) */
};

/* A linear layer: y = W x + b. */
struct kiln_sd_linear {
    struct kiln_sd_mat w; /* weight [n_out][n_in] */
    float *b;             /* bias [n_out] (owned), or NULL when the layer has none */
    struct kiln_conv_packed pk; /* w packed for kiln__linear_packed (owned) */
};

/* A 2-D convolution, PyTorch weight layout [c_out][c_in][k][k]. */
struct kiln_sd_conv {
    struct kiln_sd_mat w; /* weight, n_out = c_out, n_in = c_in * k * k */
    struct kiln_conv_packed pk; /* w packed for kiln__conv2d_packed (owned) */
    float *b;             /* bias [c_out] (owned) */
    int c_in;             /* input channels */
    int c_out;            /* output channels */
    int k;                /* kernel size (1 or 3) */
};

/* A normalization's affine parameters (LayerNorm or GroupNorm). */
struct kiln_sd_norm {
    float *w;  /* scale [n] (owned) */
    float *b;  /* shift [n] (owned) */
    int n;     /* features or channels */
};

/* The tensor prefix+name (name built printf-style, in diffusers form and
 * translated by b->names), or NULL. */
const struct kiln_tensor *kiln__sd_find(const struct kiln_sd_binder *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* A new float32 copy of a tensor of n_elems values (any decodable dtype). */
kiln_status kiln__sd_copy_f32(const struct kiln_tensor *t, int64_t n_elems, float **out);

/* Bind `name`.weight (2-D [n_out][n_in], or 4-D [n_out][n_in][1][1]) and,
 * when has_bias, `name`.bias. want_in/want_out > 0 are checked. */
kiln_status kiln__sd_linear(const struct kiln_sd_binder *b, const char *name, int64_t want_in,
                            int64_t want_out, int has_bias, struct kiln_sd_linear *out);
/* Bind part `part` of n_parts equal row blocks of a fused projection
 * (`name`_weight [n_parts*d][d] and `name`_bias [n_parts*d], as OpenCLIP's
 * attn.in_proj): rows part*d .. part*d + d - 1, d = want_in. */
kiln_status kiln__sd_linear_part(const struct kiln_sd_binder *b, const char *name, int part, int n_parts,
                                 int64_t want_in, struct kiln_sd_linear *out);
/* Bind a convolution `name`.weight [c_out][c_in][k][k] and `name`.bias.
 * c_in > 0 is checked; c_out and k come from the tensor. */
kiln_status kiln__sd_conv(const struct kiln_sd_binder *b, const char *name, int c_in,
                          struct kiln_sd_conv *out);
/* Bind `name`.weight and `name`.bias, both of n values. */
kiln_status kiln__sd_norm(const struct kiln_sd_binder *b, const char *name, int n,
                          struct kiln_sd_norm *out);

void kiln__sd_linear_free(struct kiln_sd_linear *l);
void kiln__sd_conv_free(struct kiln_sd_conv *c);
void kiln__sd_norm_free(struct kiln_sd_norm *n);

/* y[t] = W x[t] + b for n_tok rows (x [n_tok][n_in], y [n_tok][n_out]).
 * scratch: kiln__pool_size(pool) * n_in floats. */
kiln_status kiln__sd_linear_apply(kiln_pool *pool, const struct kiln_sd_linear *l,
                                  const float *x, size_t n_tok, float *y, float *scratch);

#endif /* KILN_IMAGE_SD_WEIGHTS_H */
