/* src/image/sd_ldm_names.c - diffusers tensor names to those of the
 * original latent-diffusion (ldm) checkpoints, so one set of loaders reads
 * single-file .safetensors (and GGUF made from them) too (see
 * sd_weights.h; the layouts are described in docs/sd-networks.md). */
#include <stdio.h>
#include <string.h>

#include "image/sd_weights.h"

/* The tensor prefix + name exists (no translation). */
static int has(const struct kiln_sd_binder *b, const char *fmt, int i) {
    char name[KILN_SD_NAME_MAX], full[2 * KILN_SD_NAME_MAX];
    snprintf(name, sizeof name, fmt, i);
    int n = snprintf(full, sizeof full, "%s%s", b->prefix, name);
    return n > 0 && (size_t)n < sizeof full && kiln__weights_find(b->w, full) != NULL;
}

void kiln__sd_detect_names(struct kiln_sd_binder *b) {
    if (has(b, "input_blocks.%d.0.weight", 0)) {
        /* Resnets per level: input block n + 1 of the first level is its downsampler. */
        for (int n = 1; n <= 8; n++)
            if (has(b, "input_blocks.%d.0.op.weight", n + 1)) {
                b->names = KILN_SD_NAMES_LDM_UNET;
                b->ldm_count = n;
                return;
            }
    } else if (has(b, "decoder.mid.block_%d.norm1.weight", 1)) {
        int n = 0;
        while (n < 16 && has(b, "decoder.up.%d.block.0.norm1.weight", n)) n++;
        b->names = KILN_SD_NAMES_LDM_VAE;
        b->ldm_count = n;
    }
}

/* out = printf(fmt, ...) checked; returns 1 when it fits. */
#define EMIT(...) (snprintf(out, cap, __VA_ARGS__) > 0 && strlen(out) + 1 < cap)

/* A name of the form "<head>.<i>.<what>.<j>.<rest>": 1 with i, j and rest. */
static int split2(const char *name, const char *head, const char *what, int *i, int *j, const char **rest) {
    size_t hl = strlen(head), wl = strlen(what);
    if (strncmp(name, head, hl) != 0 || name[hl] != '.') return 0;
    const char *p = name + hl + 1;
    int n = 0;
    if (sscanf(p, "%d%n", i, &n) != 1 || p[n] != '.') return 0;
    p += n + 1;
    if (strncmp(p, what, wl) != 0 || p[wl] != '.') return 0;
    p += wl + 1;
    n = 0;
    if (sscanf(p, "%d%n", j, &n) != 1 || p[n] != '.') return 0;
    *rest = p + n + 1;
    return *i >= 0 && *j >= 0;
}

/* Resnet parameter names: diffusers ResnetBlock2D to ldm ResBlock. */
static const char *unet_resnet_part(const char *rest, const char **tail) {
    static const char *const map[][2] = {
        {"norm1.", "in_layers.0."},  {"conv1.", "in_layers.2."},  {"time_emb_proj.", "emb_layers.1."},
        {"norm2.", "out_layers.0."}, {"conv2.", "out_layers.3."}, {"conv_shortcut.", "skip_connection."},
    };
    for (size_t k = 0; k < sizeof map / sizeof map[0]; k++)
        if (strncmp(rest, map[k][0], strlen(map[k][0])) == 0) {
            *tail = rest + strlen(map[k][0]);
            return map[k][1];
        }
    return NULL;
}

static int unet_name(const struct kiln_sd_binder *b, const char *name, char *out, size_t cap) {
    static const char *const fixed[][2] = {
        {"conv_in.", "input_blocks.0.0."},         {"time_embedding.linear_1.", "time_embed.0."},
        {"time_embedding.linear_2.", "time_embed.2."}, {"conv_norm_out.", "out.0."},
        {"conv_out.", "out.2."},
    };
    for (size_t k = 0; k < sizeof fixed / sizeof fixed[0]; k++)
        if (strncmp(name, fixed[k][0], strlen(fixed[k][0])) == 0)
            return EMIT("%s%s", fixed[k][1], name + strlen(fixed[k][0]));
    int L = b->ldm_count, i, j;
    const char *rest, *tail, *part;
    /* Down level i: input block 1 + i (L + 1) + j; its downsampler at j = L. */
    if (split2(name, "down_blocks", "resnets", &i, &j, &rest) && j < L && (part = unet_resnet_part(rest, &tail)))
        return EMIT("input_blocks.%d.0.%s%s", 1 + i * (L + 1) + j, part, tail);
    if (split2(name, "down_blocks", "attentions", &i, &j, &rest) && j < L)
        return EMIT("input_blocks.%d.1.%s", 1 + i * (L + 1) + j, rest);
    if (split2(name, "down_blocks", "downsamplers", &i, &j, &rest) && j == 0 && strncmp(rest, "conv.", 5) == 0)
        return EMIT("input_blocks.%d.0.op.%s", 1 + i * (L + 1) + L, rest + 5);
    /* The middle block: resnet, transformer, resnet. */
    if (strncmp(name, "mid_block.resnets.", 18) == 0 && (name[18] == '0' || name[18] == '1') && name[19] == '.' &&
        (part = unet_resnet_part(name + 20, &tail)))
        return EMIT("middle_block.%d.%s%s", name[18] == '0' ? 0 : 2, part, tail);
    if (strncmp(name, "mid_block.attentions.0.", 23) == 0) return EMIT("middle_block.1.%s", name + 23);
    /* Up level i: output block i (L + 1) + j, L + 1 resnets; the upsampler
     * follows the resnet (index 1) or its transformer (index 2). */
    if (split2(name, "up_blocks", "resnets", &i, &j, &rest) && j <= L && (part = unet_resnet_part(rest, &tail)))
        return EMIT("output_blocks.%d.0.%s%s", i * (L + 1) + j, part, tail);
    if (split2(name, "up_blocks", "attentions", &i, &j, &rest) && j <= L)
        return EMIT("output_blocks.%d.1.%s", i * (L + 1) + j, rest);
    if (split2(name, "up_blocks", "upsamplers", &i, &j, &rest) && j == 0 && strncmp(rest, "conv.", 5) == 0) {
        int blk = i * (L + 1) + L;
        char probe[64];
        snprintf(probe, sizeof probe, "output_blocks.%d.1.conv.weight", blk);
        return EMIT("output_blocks.%d.%d.conv.%s", blk, has(b, probe, 0) ? 1 : 2, rest + 5);
    }
    return 0;
}

/* VAE resnet parameter names: only the shortcut differs. */
static int vae_resnet(const char *rest, char *out, size_t cap, const char *head) {
    if (strncmp(rest, "conv_shortcut.", 14) == 0) return EMIT("%snin_shortcut.%s", head, rest + 14);
    return EMIT("%s%s", head, rest);
}

static int vae_name(const struct kiln_sd_binder *b, const char *name, char *out, size_t cap) {
    const char *coder = strncmp(name, "encoder.", 8) == 0 ? "encoder" : strncmp(name, "decoder.", 8) == 0 ? "decoder" : NULL;
    if (!coder) return EMIT("%s", name); /* quant_conv, post_quant_conv */
    const char *sub = name + 8;
    char head[KILN_SD_NAME_MAX];
    int i, j;
    const char *rest;
    if (strncmp(sub, "conv_norm_out.", 14) == 0) return EMIT("%s.norm_out.%s", coder, sub + 14);
    if (strncmp(sub, "mid_block.resnets.", 18) == 0 && (sub[18] == '0' || sub[18] == '1') && sub[19] == '.') {
        snprintf(head, sizeof head, "%s.mid.block_%c.", coder, sub[18] == '0' ? '1' : '2');
        return vae_resnet(sub + 20, out, cap, head);
    }
    if (strncmp(sub, "mid_block.attentions.0.", 23) == 0) {
        static const char *const map[][2] = {
            {"group_norm.", "norm."}, {"to_q.", "q."}, {"to_k.", "k."}, {"to_v.", "v."}, {"to_out.0.", "proj_out."},
        };
        const char *a = sub + 23;
        for (size_t k = 0; k < sizeof map / sizeof map[0]; k++)
            if (strncmp(a, map[k][0], strlen(map[k][0])) == 0)
                return EMIT("%s.mid.attn_1.%s%s", coder, map[k][1], a + strlen(map[k][0]));
        return 0;
    }
    /* Decoder levels are numbered from the bottom in ldm. */
    int dec = coder[0] == 'd';
    const char *blocks = dec ? "up_blocks" : "down_blocks";
    const char *ldm_blocks = dec ? "up" : "down";
    if (split2(sub, blocks, "resnets", &i, &j, &rest)) {
        int lvl = dec ? b->ldm_count - 1 - i : i;
        if (lvl < 0) return 0;
        snprintf(head, sizeof head, "%s.%s.%d.block.%d.", coder, ldm_blocks, lvl, j);
        return vae_resnet(rest, out, cap, head);
    }
    if (split2(sub, blocks, dec ? "upsamplers" : "downsamplers", &i, &j, &rest) && j == 0 &&
        strncmp(rest, "conv.", 5) == 0) {
        int lvl = dec ? b->ldm_count - 1 - i : i;
        if (lvl < 0) return 0;
        return EMIT("%s.%s.%d.%s.conv.%s", coder, ldm_blocks, lvl, dec ? "upsample" : "downsample", rest + 5);
    }
    return EMIT("%s", name); /* conv_in, conv_out keep their names */
}

int kiln__sd_ldm_name(const struct kiln_sd_binder *b, const char *name, char *out, size_t cap) {
    switch (b->names) {
    case KILN_SD_NAMES_DIFFUSERS:
        return EMIT("%s", name);
    case KILN_SD_NAMES_LDM_UNET:
        return unet_name(b, name, out, cap);
    case KILN_SD_NAMES_LDM_VAE:
        return vae_name(b, name, out, cap);
    }
    return 0;
}
