/* src/image/unet.h - the Stable Diffusion UNet (internal): diffusers'
 * UNet2DConditionModel with CrossAttnDownBlock2D/DownBlock2D,
 * UNetMidBlock2DCrossAttn and UpBlock2D/CrossAttnUpBlock2D blocks (SD 1.x,
 * 2.x, their 9-channel inpainting versions).
 *
 * The structure (levels, channels, resnets per level, which levels attend,
 * transformer depth, conv or linear projections, input channels, context
 * width) is read from the tensors; heads and normalization from options.
 * Activations are channel-last internally; the API takes and gives
 * PyTorch's [C][H][W].
 */
#ifndef KILN_IMAGE_UNET_H
#define KILN_IMAGE_UNET_H

#include "core/threadpool.h"
#include "kiln/status.h"

struct kiln_weights;

/* Most resolution levels the UNet may have. */
#define KILN_UNET_MAX_LEVELS 8

/* What the tensors do not say. */
struct kiln_unet_opts {
    int heads[KILN_UNET_MAX_LEVELS]; /* attention heads per level (SD 1.x: 8 each) */
    int head_channels;    /* > 0: heads = channels / head_channels instead (SD 2.x: 64) */
    int norm_groups;      /* GroupNorm groups (32) */
    float norm_eps;       /* resnet and output GroupNorm epsilon (1e-5) */
};

struct kiln_unet; /* a loaded UNet */

/* Options from a diffusers unet/config.json (attention_head_dim as int or
 * list, num_attention_heads, norm_num_groups, norm_eps). */
kiln_status kiln__unet_opts_json(const char *config_path, struct kiln_unet_opts *out);
/* The SD 1.x defaults (8 heads per level, 32 groups, 1e-5). */
void kiln__unet_opts_sd1(struct kiln_unet_opts *out);

/* Bind the UNet whose tensors are named prefix + "conv_in.weight" etc. */
kiln_status kiln__unet_load(const struct kiln_weights *w, const char *prefix,
                            const struct kiln_unet_opts *opts, struct kiln_unet **out);
void kiln__unet_free(struct kiln_unet *u);

int kiln__unet_in_channels(const struct kiln_unet *u);  /* 4, or 9 for inpainting */
int kiln__unet_out_channels(const struct kiln_unet *u); /* 4 */
int kiln__unet_context_dim(const struct kiln_unet *u);  /* cross-attention width */
/* h and w must be multiples of this (2^(levels-1)). */
int kiln__unet_size_multiple(const struct kiln_unet *u);

/* One evaluation: x [in_channels][h][w], context [n_ctx][context_dim],
 * out [out_channels][h][w]. */
kiln_status kiln__unet_eval(const struct kiln_unet *u, kiln_pool *pool, const float *x, int h,
                            int w, float timestep, const float *context, int n_ctx, float *out);

/* Most images of one kiln__unet_eval_batch. */
#define KILN_UNET_MAX_BATCH 64

/* nb evaluations at one timestep as one batch (every weight is read once
 * per block of pixels of all nb images): x [nb][in_channels][h][w],
 * contexts[b] [n_ctx][context_dim] for image b, out [nb][out_channels][h][w].
 * Image b's output is the one kiln__unet_eval gives for it alone, bit for
 * bit. */
kiln_status kiln__unet_eval_batch(const struct kiln_unet *u, kiln_pool *pool, int nb, const float *x, int h, int w,
                                  float timestep, const float *const *contexts, int n_ctx, float *out);

#endif /* KILN_IMAGE_UNET_H */
