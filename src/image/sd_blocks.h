/* src/image/sd_blocks.h - the building blocks the SD UNet and VAE share
 * (internal): diffusers' ResnetBlock2D and convolutions applied to
 * channel-last [h][w][c] activations. */
#ifndef KILN_IMAGE_SD_BLOCKS_H
#define KILN_IMAGE_SD_BLOCKS_H

#include "core/threadpool.h"
#include "image/sd_weights.h"
#include "kiln/status.h"

/* ResnetBlock2D: x + conv2(silu(gn2(conv1(silu(gn1(x))) + temb_proj(silu(temb))))),
 * with a 1x1 shortcut convolution when the channel count changes. */
struct kiln_sd_resnet {
    struct kiln_sd_norm norm1, norm2;  /* GroupNorms before each convolution */
    struct kiln_sd_conv conv1, conv2;  /* 3x3 convolutions */
    struct kiln_sd_linear temb;        /* time embedding projection (w.data NULL: none, as in the VAE) */
    struct kiln_sd_conv shortcut;      /* 1x1 conv_shortcut (w.data NULL: identity) */
    int c_in, c_out;                   /* channels in and out */
};

/* KILN_ERR_FORMAT unless `groups` GroupNorm groups divide c channels
 * (`name` is the norm, for the message). */
kiln_status kiln__sd_check_groups(const struct kiln_sd_binder *b, const char *name, int c, int groups);

/* Bind the resnet `name` ("down_blocks.0.resnets.1") taking c_in channels;
 * temb_dim > 0 binds time_emb_proj. Its channel counts must be multiples
 * of groups. */
kiln_status kiln__sd_resnet_load(const struct kiln_sd_binder *b, const char *name, int c_in,
                                 int temb_dim, int groups, struct kiln_sd_resnet *r);
void kiln__sd_resnet_free(struct kiln_sd_resnet *r);

/* out [n][h*w][c_out] = resnet(x [n][h*w][c_in]) for n images (each
 * normalized alone; the same result per image as n = 1). temb_act is
 * silu(time embedding), shared by the n images (NULL when the resnet has
 * no projection). groups/eps: its GroupNorms. */
kiln_status kiln__sd_resnet_run(kiln_pool *pool, const struct kiln_sd_resnet *r, int groups, float eps,
                                const float *x, int n, int h, int w, const float *temb_act, float *out);

/* y = conv(x) for n images [n][h][w][c] with stride and symmetric padding pad (PyTorch Conv2d) or,
 * when asym, padding only on the bottom and right (diffusers' VAE
 * downsampler: pad (0, 1, 0, 1) then a stride-2 convolution). *oh, *ow get
 * the output size. */
/* Output size along one axis of kiln__sd_conv_run. */
static inline int kiln__sd_conv_out(int in, int k, int stride, int pad, int asym) {
    return (in + (asym ? pad : 2 * pad) - k) / stride + 1;
}

kiln_status kiln__sd_conv_run(kiln_pool *pool, const struct kiln_sd_conv *c, int stride, int pad,
                              int asym, const float *x, int n, int h, int w, float *y, int *oh, int *ow);

/* A new [h][w][c] buffer (KILN_ERR_OUT_OF_MEMORY when it cannot be had). */
kiln_status kiln__sd_alloc(size_t h, size_t w, size_t c, float **out);

/* [c][h][w] -> [h][w][c] and back. */
void kiln__sd_chw_to_hwc(float *out, const float *x, int c, int h, int w);
void kiln__sd_hwc_to_chw(float *out, const float *x, int c, int h, int w);

#endif /* KILN_IMAGE_SD_BLOCKS_H */
