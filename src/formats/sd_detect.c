/* src/formats/sd_detect.c - naming the image model a set of weights holds.
 *
 * Single-file checkpoints (the "ldm" layout of the original Stable Diffusion
 * repositories, as AUTOMATIC1111 and ComfyUI load them):
 *   UNet   model.diffusion_model.input_blocks.0.0.weight  [320, in_ch, 3, 3]
 *          in_ch 4 = text-to-image, 9 = inpainting (latent + mask + masked image)
 *   SD1    cond_stage_model.transformer.text_model....     CLIP ViT-L, width 768
 *   SD2    cond_stage_model.model.token_embedding.weight   OpenCLIP ViT-H, width 1024
 *   SDXL   conditioner.embedders.0 (CLIP-L) and .1 (OpenCLIP bigG),
 *          model.diffusion_model.label_emb (size conditioning); context 2048
 *   Flux   double_blocks.N / single_blocks.N (optionally under
 *          "model.diffusion_model."); dev has guidance_in (guidance embedding),
 *          schnell does not. The diffusers spelling has transformer_blocks /
 *          single_transformer_blocks and time_text_embed.guidance_embedder.
 * When the text encoder is missing (UNet-only files), the UNet's cross-attention
 * key width tells SD1 (768) from SD2 (1024).
 * SD 1.x / 2.x files also get their architecture derived (struct
 * kiln_sd_arch): a file of other widths (a scaled-down model) is the
 * family's variant with the derived shapes, or unknown with a note saying
 * what could not be derived.
 * Cannot be told from weights: SD2 512-base (epsilon) vs 768-v (v-prediction),
 * and SDXL vs SDXL Turbo (same layout); both are reported in the note.
 */
#include "formats/sd_detect.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "core/error.h"
#include "formats/json_util.h"
#include "formats/model_folder.h"

/* Caveats shared by both detection paths. */
static const char NOTE_SD2[] =
    "SD 2.x 512-base (epsilon) and 768-v (v-prediction) share one layout: reported as sd2.1; the prediction "
    "type comes from the scheduler config or a flag";
static const char NOTE_SDXL[] = "SDXL Turbo has the SDXL layout: reported as sdxl; choose sdxl-turbo by name";

/* Lookup shorthand: true when `name` exists, its shape into shape/nd. */
static bool has(const struct kiln_tensor_lookup *lk, const char *name, int64_t *shape, int *nd) {
    int64_t tmp[KILN_LOOKUP_MAX_DIMS];
    int tmp_nd = 0;
    return lk->find(lk->ctx, name, shape ? shape : tmp, nd ? nd : &tmp_nd);
}

/* Shape dimension d of `name` when it has at least d+1 dimensions, else 0. */
static int64_t dim_of(const struct kiln_tensor_lookup *lk, const char *name, int d) {
    int64_t shape[KILN_LOOKUP_MAX_DIMS];
    int nd = 0;
    if (!has(lk, name, shape, &nd) || nd <= d) return 0;
    return shape[d];
}

/* Dimension d of the tensor named by the format (0 when absent or with
 * fewer dimensions). */
static int64_t dimf(const struct kiln_tensor_lookup *lk, int d, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int64_t dimf(const struct kiln_tensor_lookup *lk, int d, const char *fmt, ...) {
    char name[192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(name, sizeof name, fmt, ap);
    va_end(ap);
    return dim_of(lk, name, d);
}

/* Attention heads of a width by a head size (64): width / 64, one head for
 * widths below it; 0 when the width is not a multiple of the head size. */
static int heads_of(int64_t width, int head) {
    if (width < head) return 1;
    return width % head ? 0 : (int)(width / head);
}

/* GroupNorm groups by the convention: 32, or half the narrowest width when
 * that is below 64; 0 when they do not divide `width`. */
static int groups_for(int narrowest, int64_t width) {
    int g = narrowest >= 64 ? 32 : narrowest / 2;
    return g >= 1 && width % g == 0 ? g : 0;
}

/* The text encoder's width, layers and heads (ldm names). */
static const char *derive_text(const struct kiln_tensor_lookup *lk, struct kiln_sd_arch *a) {
    if (a->family == 2) {
        a->text_width = (int)dimf(lk, 1, "cond_stage_model.model.token_embedding.weight");
        while (a->text_layers < 1024 &&
               dimf(lk, 0, "cond_stage_model.model.transformer.resblocks.%d.ln_1.weight", a->text_layers))
            a->text_layers++;
    } else {
        a->text_width = (int)dimf(lk, 1, "cond_stage_model.transformer.text_model.embeddings.token_embedding.weight");
        while (a->text_layers < 1024 &&
               dimf(lk, 0, "cond_stage_model.transformer.text_model.encoder.layers.%d.layer_norm1.weight",
                    a->text_layers))
            a->text_layers++;
    }
    if (!a->text_width) return NULL; /* a UNet-only file */
    if (a->text_layers == 0) return "the text encoder has no layers";
    a->text_heads = heads_of(a->text_width, 64);
    if (!a->text_heads) return "the text encoder's width is not a multiple of 64 (its heads cannot be derived)";
    return NULL;
}

/* The UNet's levels, channels, resnets, attention and depth from its
 * input_blocks (ldm names): input_blocks.0 is conv_in; then per level its
 * resnets (.0.out_layers.3, with a spatial transformer at .1 when the level
 * attends) and a downsampler (.0.op) between levels. */
static const char *derive_unet(const struct kiln_tensor_lookup *lk, struct kiln_sd_arch *a) {
    static const char P[] = "model.diffusion_model.input_blocks.";
    int level = 0, in_level = 0;
    for (int k = 1; k < 64; k++) {
        if (dimf(lk, 0, "%s%d.0.op.weight", P, k)) {
            if (in_level == 0) return "a UNet level without resnets";
            if (level == 0) a->resnets = in_level;
            else if (in_level != a->resnets) return "UNet levels with different resnet counts";
            if (++level == KILN_SD_ARCH_MAX_LEVELS) return "more UNet levels than kiln reads";
            in_level = 0;
            continue;
        }
        int64_t c = dimf(lk, 0, "%s%d.0.out_layers.3.weight", P, k);
        if (!c) break;
        if (c > 65536) return "a UNet width out of range";
        a->channels[level] = (int)c;
        in_level++;
        if (dimf(lk, 0, "%s%d.1.norm.weight", P, k)) {
            a->attn_levels |= 1u << level;
            int depth = 0;
            while (depth < 64 && dimf(lk, 0, "%s%d.1.transformer_blocks.%d.norm1.weight", P, k, depth)) depth++;
            if (a->depth && depth != a->depth) return "spatial transformers of different depths";
            a->depth = depth;
        }
    }
    if (in_level == 0) return "the UNet's input blocks end in a downsampler or are missing";
    if (level > 0 && in_level != a->resnets) return "UNet levels with different resnet counts";
    if (level == 0) a->resnets = in_level;
    a->levels = level + 1;
    if (a->depth == 0) return "the UNet has no spatial transformers";
    for (int l = 0; l < a->levels; l++) {
        /* SD 1.x: 8 heads per attention; SD 2.x: 64 channels per head. The
         * top level's count also serves the middle block, which attends. */
        a->heads[l] = a->family == 1 ? (a->channels[l] % 8 ? 0 : 8) : heads_of(a->channels[l], 64);
        bool needed = (a->attn_levels >> l & 1u) || l == a->levels - 1;
        if (needed && !a->heads[l])
            return a->family == 1 ? "a UNet width that 8 heads do not divide"
                                  : "a UNet width that is neither below 64 nor a multiple of it";
    }
    for (int l = 0; l < a->levels; l++) {
        a->unet_groups = groups_for(a->channels[0], a->channels[l]);
        if (!a->unet_groups) return "UNet widths that the GroupNorm groups (32, or half the narrowest) do not divide";
    }
    return NULL;
}

/* The VAE's narrowest width and its groups. */
static const char *derive_vae(const struct kiln_tensor_lookup *lk, struct kiln_sd_arch *a) {
    a->vae_width = (int)dimf(lk, 1, "first_stage_model.decoder.conv_out.weight");
    if (!a->vae_width) return NULL; /* no VAE: the loader says so */
    a->vae_groups = groups_for(a->vae_width, a->vae_width);
    return a->vae_groups ? NULL : "a VAE width below 2";
}

/* Derive info->arch for an SD 1.x / 2.x ldm file of `family`; on failure
 * arch.family is 0 and arch.why says what could not be derived. */
static void derive_arch(const struct kiln_tensor_lookup *lk, int family, struct kiln_sd_info *info) {
    struct kiln_sd_arch *a = &info->arch;
    memset(a, 0, sizeof *a);
    a->family = family;
    a->in_channels = info->unet_in_channels;
    a->context_dim = info->context_dim;
    const char *why = derive_text(lk, a);
    if (!why) why = derive_unet(lk, a);
    if (!why) why = derive_vae(lk, a);
    if (why) {
        memset(a, 0, sizeof *a);
        a->why = why;
        return;
    }
    /* The real models: CLIP ViT-L (768) or OpenCLIP ViT-H (1024) text,
     * UNet 320/640/1280/1280, VAE 128 at its narrowest. */
    static const int unet_std[] = {320, 640, 1280, 1280};
    a->standard = (a->text_width == 0 || a->text_width == (family == 1 ? 768 : 1024)) && a->levels == 4 &&
                  (a->vae_width == 0 || a->vae_width == 128);
    for (int l = 0; a->standard && l < 4; l++) a->standard = a->channels[l] == unet_std[l];
}

/* Pick the text-to-image or inpainting variant by UNet input channels. */
static kiln_variant by_channels(struct kiln_sd_info *info, kiln_variant plain, kiln_variant inpaint) {
    if (info->unet_in_channels == 4) return info->variant = plain;
    if (info->unet_in_channels == 9) return info->variant = inpaint;
    info->note = "UNet input channels are neither 4 (text-to-image) nor 9 (inpainting)";
    return info->variant = KILN_VARIANT_UNKNOWN;
}

/* Flux in BFL's layout under `prefix` ("" or "model.diffusion_model."). */
static bool detect_flux(const struct kiln_tensor_lookup *lk, const char *prefix, struct kiln_sd_info *info) {
    char a[128], b[128], g[128], x[128];
    snprintf(a, sizeof a, "%sdouble_blocks.0.img_attn.qkv.weight", prefix);
    snprintf(b, sizeof b, "%ssingle_blocks.0.linear1.weight", prefix);
    if (!has(lk, a, NULL, NULL) || !has(lk, b, NULL, NULL)) return false;
    snprintf(g, sizeof g, "%sguidance_in.in_layer.weight", prefix);
    snprintf(x, sizeof x, "%simg_in.weight", prefix);
    info->layout = "flux";
    info->unet_in_channels = (int)dim_of(lk, x, 1); /* [hidden, 64]: 16 latent channels x 2x2 patches */
    info->variant = has(lk, g, NULL, NULL) ? KILN_VARIANT_FLUX_DEV : KILN_VARIANT_FLUX_SCHNELL;
    return true;
}

kiln_variant kiln__sd_detect_tensors(const struct kiln_tensor_lookup *lk, struct kiln_sd_info *info) {
    memset(info, 0, sizeof *info);
    info->variant = KILN_VARIANT_UNKNOWN;
    info->layout = "unknown";
    if (!lk || !lk->find) return info->variant;

    if (detect_flux(lk, "", info) || detect_flux(lk, "model.diffusion_model.", info)) {
        info->has_vae = has(lk, "vae.decoder.conv_in.weight", NULL, NULL) ||
                        has(lk, "first_stage_model.decoder.conv_in.weight", NULL, NULL);
        return info->variant;
    }
    if (has(lk, "transformer_blocks.0.attn.to_q.weight", NULL, NULL) &&
        has(lk, "single_transformer_blocks.0.attn.to_q.weight", NULL, NULL)) {
        info->layout = "diffusers-flux";
        info->unet_in_channels = (int)dim_of(lk, "x_embedder.weight", 1);
        info->variant = has(lk, "time_text_embed.guidance_embedder.linear_1.weight", NULL, NULL)
                            ? KILN_VARIANT_FLUX_DEV
                            : KILN_VARIANT_FLUX_SCHNELL;
        return info->variant;
    }

    /* Stable Diffusion, ldm layout: the UNet's first convolution. */
    int64_t shape[KILN_LOOKUP_MAX_DIMS];
    int nd = 0;
    if (!has(lk, "model.diffusion_model.input_blocks.0.0.weight", shape, &nd) || nd != 4) {
        info->note = "no Stable Diffusion UNet (model.diffusion_model.input_blocks.0.0.weight) or Flux blocks";
        return info->variant;
    }
    info->layout = "ldm";
    info->unet_in_channels = (int)shape[1];
    info->has_vae = has(lk, "first_stage_model.decoder.conv_in.weight", NULL, NULL);

    bool sdxl = has(lk, "model.diffusion_model.label_emb.0.0.weight", NULL, NULL);
    if (sdxl) {
        /* SDXL base cross-attends to CLIP-L + bigG (768 + 1280 = 2048); the
         * refiner to bigG alone (1280) and is not a variant kiln runs. */
        info->context_dim =
            (int)dim_of(lk, "model.diffusion_model.input_blocks.4.1.transformer_blocks.0.attn2.to_k.weight", 1);
        info->has_text_encoder = has(lk, "conditioner.embedders.1.model.ln_final.weight", NULL, NULL);
        if (info->context_dim != 0 && info->context_dim != 2048) {
            info->note = "SDXL-style UNet whose context width is not 2048 (the refiner?): not supported";
            return info->variant = KILN_VARIANT_UNKNOWN;
        }
        by_channels(info, KILN_VARIANT_SDXL, KILN_VARIANT_SDXL_INPAINT);
        if (info->variant == KILN_VARIANT_SDXL) info->note = NOTE_SDXL;
        return info->variant;
    }

    /* SD1 vs SD2: the text encoder's names (OpenCLIP or CLIP), else the
     * UNet's cross-attention width. */
    int family = 0;
    if (has(lk, "cond_stage_model.model.token_embedding.weight", NULL, NULL)) family = 2;
    else if (has(lk, "cond_stage_model.transformer.text_model.embeddings.token_embedding.weight", NULL, NULL))
        family = 1;
    info->has_text_encoder = family != 0;
    info->context_dim =
        (int)dim_of(lk, "model.diffusion_model.input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight", 1);
    if (!family) family = info->context_dim == 768 ? 1 : info->context_dim == 1024 ? 2 : 0;
    if (!family) {
        info->note = "Stable Diffusion UNet without a text encoder and with a text width that is neither 768 "
                     "(SD1) nor 1024 (SD2)";
        return info->variant = KILN_VARIANT_UNKNOWN;
    }
    derive_arch(lk, family, info);
    /* The released widths (CLIP-L 768, OpenCLIP-H 1024) name the variant
     * as they are; other widths only with a derived architecture. */
    int64_t width = info->arch.text_width ? info->arch.text_width : info->context_dim;
    if (!width) {
        width = dim_of(lk, family == 2 ? "cond_stage_model.model.token_embedding.weight"
                                       : "cond_stage_model.transformer.text_model.embeddings.token_embedding.weight",
                       1);
    }
    bool released = width == (family == 1 ? 768 : 1024);
    if (!released && !info->arch.family) {
        info->note = info->arch.why;
        return info->variant = KILN_VARIANT_UNKNOWN;
    }
    if (family == 1) by_channels(info, KILN_VARIANT_SD15, KILN_VARIANT_SD15_INPAINT);
    else by_channels(info, KILN_VARIANT_SD21, KILN_VARIANT_SD2_INPAINT);
    if (info->variant == KILN_VARIANT_UNKNOWN) return info->variant;
    if (!released || (info->arch.family && !info->arch.standard))
        info->note = "widths of no released SD model (a scaled-down or custom one): its architecture is derived "
                     "from the tensors, heads and groups by the family's convention";
    else if (family == 2)
        info->note = NOTE_SD2;
    return info->variant;
}

/* Put the component's config path in front of the last message. */
static kiln_status name_file(kiln_status s, const struct kiln_diffusers_component *c) {
    char msg[KILN_ERROR_MAX];
    snprintf(msg, sizeof msg, "%s", kiln_last_error());
    return kiln__fail(s, "%s: %s", c->config_path, msg);
}

/* Read dir's config.json value `key` as an integer (def when absent). */
static kiln_status component_int(const struct kiln_diffusers_component *c, const char *key, int64_t def,
                                 int64_t *out) {
    *out = def;
    if (!c || !c->config_path) return KILN_OK;
    json_t *cfg = NULL;
    kiln_status s = kiln__json_load_file(c->config_path, 0, &cfg);
    if (s == KILN_OK && (s = kiln__json_get_int(cfg, key, def, out)) != KILN_OK) s = name_file(s, c);
    json_decref(cfg);
    return s;
}

static kiln_status component_bool(const struct kiln_diffusers_component *c, const char *key, bool def,
                                  bool *out) {
    *out = def;
    if (!c || !c->config_path) return KILN_OK;
    json_t *cfg = NULL;
    kiln_status s = kiln__json_load_file(c->config_path, 0, &cfg);
    if (s == KILN_OK && (s = kiln__json_get_bool(cfg, key, def, out)) != KILN_OK) s = name_file(s, c);
    json_decref(cfg);
    return s;
}

kiln_status kiln__sd_detect_diffusers(const struct kiln_model_path *mp, struct kiln_sd_info *info) {
    memset(info, 0, sizeof *info);
    info->variant = KILN_VARIANT_UNKNOWN;
    info->layout = "diffusers";
    const char *cls = mp->pipeline_class ? mp->pipeline_class : "";
    const struct kiln_diffusers_component *unet = kiln__model_path_component(mp, "unet");
    const struct kiln_diffusers_component *tr = kiln__model_path_component(mp, "transformer");
    info->has_vae = kiln__model_path_component(mp, "vae") != NULL;
    info->has_text_encoder = kiln__model_path_component(mp, "text_encoder") != NULL ||
                             kiln__model_path_component(mp, "text_encoder_2") != NULL;
    kiln_status s;
    int64_t v;

    if (strncmp(cls, "Flux", 4) == 0) {
        bool guidance = false;
        if (!tr) {
            info->note = "Flux pipeline without a transformer folder";
            return KILN_OK;
        }
        if ((s = component_int(tr, "in_channels", 0, &v)) != KILN_OK) return s;
        info->unet_in_channels = (int)v;
        if ((s = component_bool(tr, "guidance_embeds", false, &guidance)) != KILN_OK) return s;
        info->variant = guidance ? KILN_VARIANT_FLUX_DEV : KILN_VARIANT_FLUX_SCHNELL;
        return KILN_OK;
    }
    if (strncmp(cls, "StableDiffusion", 15) != 0 || !unet) {
        info->note = "pipeline class is not a Stable Diffusion or Flux pipeline kiln runs";
        return KILN_OK;
    }
    if ((s = component_int(unet, "in_channels", 4, &v)) != KILN_OK) return s;
    info->unet_in_channels = (int)v;
    if ((s = component_int(unet, "cross_attention_dim", 0, &v)) != KILN_OK) return s;
    info->context_dim = (int)v;

    if (strncmp(cls, "StableDiffusionXL", 17) == 0) {
        if (info->context_dim != 2048) {
            info->note = "SDXL pipeline whose UNet context width is not 2048 (the refiner?): not supported";
            return KILN_OK;
        }
        by_channels(info, KILN_VARIANT_SDXL, KILN_VARIANT_SDXL_INPAINT);
        if (info->variant == KILN_VARIANT_SDXL) info->note = NOTE_SDXL;
        return KILN_OK;
    }
    /* SD1/SD2: the UNet's cross-attention width, else the text encoder's. */
    int64_t width = info->context_dim;
    if (!width && (s = component_int(kiln__model_path_component(mp, "text_encoder"), "hidden_size", 0,
                                     &width)) != KILN_OK)
        return s;
    if (width == 768) {
        by_channels(info, KILN_VARIANT_SD15, KILN_VARIANT_SD15_INPAINT);
    } else if (width == 1024) {
        by_channels(info, KILN_VARIANT_SD21, KILN_VARIANT_SD2_INPAINT);
        if (info->variant != KILN_VARIANT_UNKNOWN) info->note = NOTE_SD2;
    } else {
        info->note = "Stable Diffusion UNet with a text width that is neither 768 (SD1) nor 1024 (SD2)";
    }
    return KILN_OK;
}
