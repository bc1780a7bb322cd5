/* src/image/sd_model.c - loading a Stable Diffusion model (text encoder,
 * UNet, VAE, CLIP vocabulary) and the pipeline callbacks that run it.
 *
 * Where each network's tensors are is found by probing names: a diffusers
 * folder has "text_encoder/", "unet/", "vae/"; an ldm single file has
 * "cond_stage_model.transformer." (SD 1.x, transformers' CLIP) or
 * "cond_stage_model.model." (SD 2.x, OpenCLIP), "model.diffusion_model."
 * and "first_stage_model."; GGUF files hold either. The text conditioning
 * follows AUTOMATIC1111: the prompt's emphasis weights scale each token's
 * hidden state, then every 77-token chunk is rescaled to its original mean.
 */
#include "image/sd_model.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/error.h"
#include "core/threadpool.h"
#include "formats/json_util.h"
#include "formats/weights.h"
#include "image/clip_text.h"
#include "image/unet.h"
#include "image/vae.h"
#include "text/clip_tokenizer.h"

/* The latent scaling factor of SD 1.x and 2.x VAEs. */
#define SD_LATENT_SCALE 0.18215f
/* Longest model name kept for the parameters text. */
#define SD_NAME_MAX 128

/* A loaded model (the components' user pointer). */
struct sd_model {
    struct kiln_weights *w;        /* the opened files; the networks borrow its matrices */
    struct kiln_clip_text *text;   /* CLIP text encoder */
    struct kiln_unet *unet;        /* the denoising UNet */
    struct kiln_vae *vae;          /* the autoencoder (decoder, and encoder when present) */
    kiln_clip_tok *tok;            /* the CLIP vocabulary */
    kiln_pool *pool;               /* worker threads for all three networks */
    int base_skip;                 /* encoder layer the model conditions on (1 = last; 2 for
                                      SD 2.x's full OpenCLIP, which uses the penultimate) */
    int32_t pad_id;                /* id that fills each chunk after the end token */
    struct kiln_sd_info info;      /* what detection found; for single files, the derived architecture
                                      whose heads and groups the networks are loaded with */
    char name[SD_NAME_MAX];        /* the "Model:" of the parameters text */
};

void kiln__sd_model_free(void *user) {
    struct sd_model *m = user;
    if (!m) return;
    kiln__clip_text_free(m->text);
    kiln__unet_free(m->unet);
    kiln__vae_free(m->vae);
    kiln__clip_tok_free(m->tok);
    kiln__pool_free(m->pool);
    kiln__weights_free(m->w);
    free(m);
}

/* ---- the pipeline's callbacks ---- */

/* A1111's conditioning of a prompt: chunks of 77 tokens through the encoder,
 * hidden states times their emphasis weights, each chunk rescaled so that
 * its mean is what it was before weighting. */
static kiln_status sd_encode_text(void *user, const char *prompt, uint32_t clip_skip, float **ctx, int *n_ctx) {
    struct sd_model *m = user;
    *ctx = NULL;
    *n_ctx = 0;
    int skip = m->base_skip + (clip_skip > 1 ? (int)clip_skip - 1 : 0);
    if (skip > kiln__clip_text_layers(m->text))
        return kiln__fail(KILN_ERR_INVALID_ARG, "image: clip skip %u is more than the text encoder's %d layers",
                          clip_skip, kiln__clip_text_layers(m->text) - m->base_skip + 1);
    kiln_clip_weight_params wp = kiln__clip_weight_default_params();
    wp.pad_id = m->pad_id;
    kiln_clip_chunks ch = {0};
    kiln_status s = kiln__clip_encode_weighted(m->tok, prompt, strlen(prompt), &wp, &ch);
    if (s != KILN_OK) return s;
    size_t width = (size_t)kiln__clip_text_width(m->text);
    size_t chunk_vals = KILN_CLIP_SEQ_LEN * width;
    float *out = malloc((size_t)ch.n_chunks * chunk_vals * sizeof *out);
    if (!out) {
        kiln__clip_chunks_free(&ch);
        return kiln__fail(KILN_ERR_OUT_OF_MEMORY, "image: out of memory for the prompt's conditioning");
    }
    for (int c = 0; c < ch.n_chunks && s == KILN_OK; c++) {
        float *z = out + (size_t)c * chunk_vals;
        s = kiln__clip_text_encode(m->text, m->pool, ch.ids + (size_t)c * KILN_CLIP_SEQ_LEN, KILN_CLIP_SEQ_LEN,
                                   skip, z);
        if (s != KILN_OK) break;
        const float *wt = ch.weights + (size_t)c * KILN_CLIP_SEQ_LEN;
        double before = 0.0, after = 0.0;
        for (size_t i = 0; i < chunk_vals; i++) before += z[i];
        for (size_t t = 0; t < KILN_CLIP_SEQ_LEN; t++)
            for (size_t j = 0; j < width; j++) {
                z[t * width + j] *= wt[t];
                after += z[t * width + j];
            }
        /* Means of the same count: the ratio of the sums is the ratio of the means. */
        if (after != 0.0) {
            float k = (float)(before / after);
            for (size_t i = 0; i < chunk_vals; i++) z[i] *= k;
        }
    }
    int n = ch.n_chunks;
    kiln__clip_chunks_free(&ch);
    if (s != KILN_OK) {
        free(out);
        return s;
    }
    *ctx = out;
    *n_ctx = n * KILN_CLIP_SEQ_LEN;
    return KILN_OK;
}

static kiln_status sd_unet_eval(void *user, const float *x, int h, int w, float t, const float *ctx, int n_ctx,
                                float *out) {
    struct sd_model *m = user;
    return kiln__unet_eval(m->unet, m->pool, x, h, w, t, ctx, n_ctx, out);
}

static kiln_status sd_unet_eval_pair(void *user, const float *x, int h, int w, float t, const float *ctx_a,
                                     const float *ctx_b, int n_ctx, float *out_a, float *out_b) {
    struct sd_model *m = user;
    size_t hw = (size_t)h * (size_t)w, nx = (size_t)kiln__unet_in_channels(m->unet) * hw;
    size_t no = (size_t)kiln__unet_out_channels(m->unet) * hw;
    float *xs = malloc(2 * nx * sizeof *xs), *outs = malloc(2 * no * sizeof *outs);
    kiln_status s = xs && outs ? KILN_OK : kiln__fail(KILN_ERR_OUT_OF_MEMORY, "image: out of memory");
    if (s == KILN_OK) {
        memcpy(xs, x, nx * sizeof *xs);
        memcpy(xs + nx, x, nx * sizeof *xs);
        const float *ctx[2] = {ctx_a, ctx_b};
        s = kiln__unet_eval_batch(m->unet, m->pool, 2, xs, h, w, t, ctx, n_ctx, outs);
    }
    if (s == KILN_OK) {
        memcpy(out_a, outs, no * sizeof *outs);
        memcpy(out_b, outs + no, no * sizeof *outs);
    }
    free(xs);
    free(outs);
    return s;
}

static kiln_status sd_vae_decode(void *user, const float *latent, int h, int w, float *rgb) {
    struct sd_model *m = user;
    return kiln__vae_decode(m->vae, m->pool, latent, h, w, rgb);
}

static kiln_status sd_vae_encode(void *user, const float *rgb, int height, int width, float *mean, float *logvar) {
    struct sd_model *m = user;
    return kiln__vae_encode(m->vae, m->pool, rgb, height, width, mean, logvar);
}

/* ---- loading ---- */

/* The first of `prefixes` (NULL-terminated) under which tensor prefix +
 * marker exists for one of `markers` (NULL-terminated), or NULL. */
static const char *find_prefix(const struct kiln_weights *w, const char *const *prefixes,
                               const char *const *markers) {
    char name[256];
    for (size_t i = 0; prefixes[i]; i++)
        for (size_t j = 0; markers[j]; j++) {
            snprintf(name, sizeof name, "%s%s", prefixes[i], markers[j]);
            if (kiln__weights_find(w, name)) return prefixes[i];
        }
    return NULL;
}

/* The config.json of diffusers component `name`, or NULL (single files,
 * or a component without one). */
static const char *component_config(const struct kiln_weights *w, const char *name) {
    const struct kiln_diffusers_component *c = kiln__model_path_component(&w->path, name);
    return c ? c->config_path : NULL;
}

static int is_dir(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* A1111's model name: the file name without its extension, or the folder's
 * name. */
static void model_name(const char *path, char *out, size_t cap) {
    size_t len = strlen(path);
    while (len > 1 && path[len - 1] == '/') len--;
    size_t start = len;
    while (start > 0 && path[start - 1] != '/') start--;
    size_t n = len - start;
    const char *dot = NULL;
    for (size_t i = start; i < len; i++)
        if (path[i] == '.') dot = path + i;
    if (dot && dot > path + start && !is_dir(path)) n = (size_t)(dot - (path + start));
    snprintf(out, cap, "%.*s", (int)n, path + start);
}

/* The CLIP vocabulary: --clip-vocab when given (a tokenizer folder or a
 * merges file), else the diffusers folder's tokenizer/. *from_folder
 * says whether it came from a folder (which names its padding token). */
static kiln_status load_vocab(struct sd_model *m, const char *path, const char *clip_vocab, bool *from_folder) {
    *from_folder = !clip_vocab || is_dir(clip_vocab);
    if (clip_vocab)
        return is_dir(clip_vocab) ? kiln__clip_tok_load_folder(clip_vocab, &m->tok)
                                  : kiln__clip_tok_load_merges(clip_vocab, &m->tok);
    const struct kiln_diffusers_component *c = kiln__model_path_component(&m->w->path, "tokenizer");
    if (c && c->dir) return kiln__clip_tok_load_folder(c->dir, &m->tok);
    return kiln__fail(KILN_ERR_NOT_FOUND,
                      "image: %s carries no CLIP vocabulary: give one with --clip-vocab (openai/CLIP's "
                      "bpe_simple_vocab_16e6.txt.gz, or a diffusers tokenizer/ folder)",
                      path);
}

/* The text encoder: where its tensors are, its options, which layer the
 * model conditions on and what pads the prompt chunks (the tokenizer
 * folder's padding token when the vocabulary came from one). */
static kiln_status load_text(struct sd_model *m, bool vocab_folder) {
    static const char *const prefixes[] = {"text_encoder/", "cond_stage_model.transformer.",
                                           "cond_stage_model.model.", "", NULL};
    static const char *const markers[] = {"text_model.embeddings.token_embedding.weight", "token_embedding.weight",
                                          NULL};
    const char *prefix = find_prefix(m->w, prefixes, markers);
    if (!prefix) return kiln__fail(KILN_ERR_FORMAT, "image: the model holds no CLIP text encoder");
    char name[256];
    snprintf(name, sizeof name, "%stoken_embedding.weight", prefix);
    /* OpenCLIP's names (SD 2.x single files): no "text_model." level. */
    int openclip = kiln__weights_find(m->w, name) != NULL;
    struct kiln_clip_text_opts opts = {12, 0, 1e-5f};
    const char *config = component_config(m->w, "text_encoder");
    if (config) {
        kiln_status s = kiln__clip_text_opts_json(config, &opts);
        if (s != KILN_OK) return s;
    } else {
        /* A single file: the derived heads (CLIP-L and OpenCLIP-H: 64
         * channels per head); OpenCLIP's GELU, OpenAI CLIP's quick_gelu. */
        if (!m->info.arch.text_heads)
            return kiln__fail(KILN_ERR_FORMAT, "image: the text encoder's heads could not be derived%s%s",
                              m->info.arch.why ? ": " : "", m->info.arch.why ? m->info.arch.why : "");
        opts.n_heads = m->info.arch.text_heads;
        opts.gelu = openclip;
    }
    kiln_status s = kiln__clip_text_load(m->w, prefix, &opts, &m->text);
    if (s != KILN_OK) return s;
    if (kiln__clip_text_max_tokens(m->text) < KILN_CLIP_SEQ_LEN)
        return kiln__fail(KILN_ERR_FORMAT, "image: the text encoder has %d positions, fewer than %d",
                          kiln__clip_text_max_tokens(m->text), KILN_CLIP_SEQ_LEN);
    /* SD 2.x conditions on OpenCLIP's penultimate layer; diffusers stores
     * the encoder without its last layer, ldm files with it. */
    m->base_skip = openclip ? 2 : 1;
    /* A tokenizer folder's padding token (-1: kiln__clip_tok_pad_id; SD
     * 2.x's folders name "!" = 0, SD 1.x's the end token); with a bare
     * merges file, A1111's choice: 0 for SD 2.x, the end token for SD 1.x. */
    m->pad_id = !vocab_folder && openclip ? 0 : -1;
    return KILN_OK;
}

/* The UNet, with the derived heads and groups when no config says them. */
static kiln_status load_unet(struct sd_model *m) {
    static const char *const prefixes[] = {"unet/", "model.diffusion_model.", "", NULL};
    static const char *const markers[] = {"conv_in.weight", "input_blocks.0.0.weight", NULL};
    const char *prefix = find_prefix(m->w, prefixes, markers);
    if (!prefix) return kiln__fail(KILN_ERR_FORMAT, "image: the model holds no UNet");
    struct kiln_unet_opts opts;
    const char *config = component_config(m->w, "unet");
    if (config) {
        kiln_status s = kiln__unet_opts_json(config, &opts);
        if (s != KILN_OK) return s;
    } else {
        const struct kiln_sd_arch *a = &m->info.arch;
        if (!a->family || !a->unet_groups)
            return kiln__fail(KILN_ERR_FORMAT, "image: the UNet's heads and groups could not be derived%s%s",
                              m->info.arch.why ? ": " : "", m->info.arch.why ? m->info.arch.why : "");
        kiln__unet_opts_sd1(&opts);
        for (int l = 0; l < KILN_UNET_MAX_LEVELS; l++) {
            /* Levels without attention keep a placeholder the loader never uses. */
            int h = l < a->levels ? a->heads[l] : 0;
            opts.heads[l] = h ? h : 1;
        }
        opts.norm_groups = a->unet_groups;
    }
    return kiln__unet_load(m->w, prefix, &opts, &m->unet);
}

/* The VAE and its latent scaling factor (vae/config.json's scaling_factor
 * when there is one). */
static kiln_status load_vae(struct sd_model *m, float *latent_scale) {
    static const char *const prefixes[] = {"vae/", "first_stage_model.", "", NULL};
    static const char *const markers[] = {"decoder.conv_in.weight", NULL};
    const char *prefix = find_prefix(m->w, prefixes, markers);
    if (!prefix) return kiln__fail(KILN_ERR_FORMAT, "image: the model holds no VAE decoder");
    struct kiln_vae_opts opts;
    kiln__vae_opts_sd(&opts);
    *latent_scale = SD_LATENT_SCALE;
    if (m->info.arch.vae_groups) opts.norm_groups = m->info.arch.vae_groups; /* single files: derived */
    const char *config = component_config(m->w, "vae");
    if (config) {
        kiln_status s = kiln__vae_opts_json(config, &opts);
        json_t *j = NULL;
        double scale = SD_LATENT_SCALE;
        if (s == KILN_OK) s = kiln__json_load_file(config, 0, &j);
        if (s == KILN_OK) s = kiln__json_get_real(j, "scaling_factor", SD_LATENT_SCALE, &scale);
        json_decref(j);
        if (s != KILN_OK) return s;
        if (!(scale > 0.0)) return kiln__fail(KILN_ERR_FORMAT, "image: %s: scaling_factor must be > 0", config);
        *latent_scale = (float)scale;
    }
    kiln_status s = kiln__vae_load(m->w, prefix, &opts, &m->vae);
    if (s != KILN_OK) return s;
    if (kiln__vae_latent_channels(m->vae) != KILN_SD_LATENT_CHANNELS)
        return kiln__fail(KILN_ERR_UNSUPPORTED, "image: a VAE with %d latent channels (SD's has 4)",
                          kiln__vae_latent_channels(m->vae));
    return KILN_OK;
}

/* What the UNet predicts: a diffusers folder's scheduler config says it;
 * single files predict the noise, except SD 2.x ones that A1111's probe
 * finds to be v models (load_all, kiln__sd_model_v_probe). */
static kiln_status prediction(const struct kiln_weights *w, kiln_prediction *out) {
    *out = KILN_PRED_EPS;
    if (w->path.kind == KILN_MODEL_DIFFUSERS) {
        char path[4096];
        snprintf(path, sizeof path, "%s/scheduler/scheduler_config.json", w->path.path);
        struct stat st;
        if (stat(path, &st) != 0) return KILN_OK; /* no scheduler config: diffusers' default, epsilon */
        json_t *j = NULL;
        const char *type = NULL;
        kiln_status s = kiln__json_load_file(path, 0, &j);
        if (s == KILN_OK) s = kiln__json_get_string(j, "prediction_type", "epsilon", &type);
        if (s == KILN_OK && strcmp(type, "v_prediction") == 0) *out = KILN_PRED_V;
        else if (s == KILN_OK && strcmp(type, "epsilon") != 0)
            s = kiln__fail(KILN_ERR_UNSUPPORTED, "image: %s: prediction_type \"%s\" (kiln runs epsilon and "
                                                 "v_prediction)", path, type);
        json_decref(j);
        return s;
    }
    return KILN_OK; /* single files: epsilon, SD 2.x ones probed after loading (sd_v_probe) */
}

kiln_status kiln__sd_model_v_probe(void *user, double *mean) {
    struct sd_model *m = user;
    enum { H = 8, W = 8, N_CTX = 2 };
    int cin = kiln__unet_in_channels(m->unet), width = kiln__unet_context_dim(m->unet);
    size_t nx = (size_t)cin * H * W, nout = (size_t)kiln__unet_out_channels(m->unet) * H * W;
    float *x = malloc(nx * sizeof *x), *ctx = malloc((size_t)N_CTX * width * sizeof *ctx);
    float *out = malloc(nout * sizeof *out);
    kiln_status s = KILN_OK;
    if (!x || !ctx || !out) s = kiln__fail(KILN_ERR_OUT_OF_MEMORY, "image: out of memory for the v probe");
    if (s == KILN_OK) {
        for (size_t i = 0; i < nx; i++) x[i] = 0.5f;
        for (size_t i = 0; i < (size_t)N_CTX * width; i++) ctx[i] = 0.5f;
        s = kiln__unet_eval(m->unet, m->pool, x, H, W, 999.0f, ctx, N_CTX, out);
    }
    if (s == KILN_OK) {
        double sum = 0.0;
        for (size_t i = 0; i < nout; i++) sum += (double)out[i] - 0.5;
        *mean = sum / (double)nout;
    }
    free(x);
    free(ctx);
    free(out);
    return s;
}

/* The variant and the capabilities it starts from (m->info: what detection
 * found, with a single file's derived architecture); a diffusers folder of
 * an unlisted size (the test models) runs with SD 1.5's. */
static kiln_status pick_variant(struct sd_model *m, kiln_variant *variant, kiln_image_caps *caps) {
    struct kiln_weights *w = m->w;
    m->info = w->path.sd;
    if (w->path.kind != KILN_MODEL_DIFFUSERS) {
        struct kiln_tensor_lookup lk = kiln__weights_lookup(w);
        kiln__sd_detect_tensors(&lk, &m->info);
    }
    struct kiln_sd_info info = m->info;
    *variant = info.variant;
    kiln_variant base = info.variant;
    switch (info.variant) {
    case KILN_VARIANT_SD15:
    case KILN_VARIANT_SD15_INPAINT:
    case KILN_VARIANT_SD21:
    case KILN_VARIANT_SD2_INPAINT:
        break;
    case KILN_VARIANT_SDXL:
    case KILN_VARIANT_SDXL_INPAINT:
    case KILN_VARIANT_SDXL_TURBO:
    case KILN_VARIANT_FLUX_DEV:
    case KILN_VARIANT_FLUX_SCHNELL:
        return kiln__fail(KILN_ERR_UNSUPPORTED, "image: %s is %s, which this build cannot run yet (it runs SD 1.x "
                                                "and 2.x)", w->path.path, kiln_variant_name(info.variant));
    case KILN_VARIANT_UNKNOWN:
        if (w->path.kind != KILN_MODEL_DIFFUSERS)
            return kiln__fail(KILN_ERR_UNSUPPORTED, "image: %s is not a Stable Diffusion model kiln knows%s%s",
                              w->path.path, info.note ? ": " : "", info.note ? info.note : "");
        base = KILN_VARIANT_SD15;
        break;
    }
    kiln_variant_caps(base, caps);
    return KILN_OK;
}

static kiln_status load_all(struct sd_model *m, const char *path, const char *clip_vocab, kiln_sd_components *c) {
    kiln_status s = kiln__weights_open(path, &m->w);
    if (s != KILN_OK) return s;
    kiln_variant variant;
    bool vocab_folder = false;
    if ((s = pick_variant(m, &variant, &c->caps)) != KILN_OK) return s;
    if ((s = load_vocab(m, path, clip_vocab, &vocab_folder)) != KILN_OK) return s;
    if ((s = load_text(m, vocab_folder)) != KILN_OK) return s;
    if ((s = load_unet(m)) != KILN_OK) return s;
    if ((s = load_vae(m, &c->latent_scale)) != KILN_OK) return s;
    if ((s = prediction(m->w, &c->prediction)) != KILN_OK) return s;
    if (kiln__unet_context_dim(m->unet) != kiln__clip_text_width(m->text))
        return kiln__fail(KILN_ERR_FORMAT, "image: the UNet attends to width %d but the text encoder gives %d",
                          kiln__unet_context_dim(m->unet), kiln__clip_text_width(m->text));
    if (kiln__unet_out_channels(m->unet) != KILN_SD_LATENT_CHANNELS)
        return kiln__fail(KILN_ERR_UNSUPPORTED, "image: a UNet with %d output channels",
                          kiln__unet_out_channels(m->unet));
    m->pool = kiln__pool_create(0);
    if (!m->pool) return kiln__fail(KILN_ERR_OUT_OF_MEMORY, "image: cannot start worker threads");
    if (variant == KILN_VARIANT_SD21 && m->w->path.kind != KILN_MODEL_DIFFUSERS) {
        /* SD 2.x 768-v and 512-base share their weights' shapes: A1111
         * tells them apart by the UNet's answer to a fixed input. */
        double mean;
        if ((s = kiln__sd_model_v_probe(m, &mean)) != KILN_OK) return s;
        c->prediction = mean < -1.0 ? KILN_PRED_V : KILN_PRED_EPS;
    }
    model_name(path, m->name, sizeof m->name);
    c->user = m;
    c->encode_text = sd_encode_text;
    c->unet_eval = sd_unet_eval;
    c->unet_eval_pair = sd_unet_eval_pair;
    c->vae_decode = sd_vae_decode;
    c->vae_encode = kiln__vae_has_encoder(m->vae) ? sd_vae_encode : NULL;
    c->unet_in_channels = kiln__unet_in_channels(m->unet);
    c->ctx_width = kiln__clip_text_width(m->text);
    c->model_name = m->name;
    c->vae_scale = kiln__vae_scale(m->vae);
    /* The UNet halves the latent at each level: sizes must divide down evenly. */
    uint32_t mult = (uint32_t)(c->vae_scale * kiln__unet_size_multiple(m->unet));
    if (c->caps.size_multiple < mult) c->caps.size_multiple = mult;
    if (c->caps.min_size < c->caps.size_multiple) c->caps.min_size = c->caps.size_multiple;
    if (!c->vae_encode) c->caps.img2img = c->caps.inpainting = false;
    return KILN_OK;
}

kiln_status kiln__sd_model_load(const char *path, const char *clip_vocab, kiln_sd_components *comp) {
    memset(comp, 0, sizeof *comp);
    struct sd_model *m = calloc(1, sizeof *m);
    if (!m) return kiln__fail(KILN_ERR_OUT_OF_MEMORY, "image: out of memory");
    kiln_status s = load_all(m, path, clip_vocab, comp);
    if (s != KILN_OK) {
        kiln__sd_model_free(m);
        memset(comp, 0, sizeof *comp);
    }
    return s;
}
