/* src/image/clip_text.h - the CLIP text encoder of Stable Diffusion
 * (internal): transformers' CLIPTextModel (SD 1.x: CLIP ViT-L/14, quick_gelu;
 * SD 2.x: OpenCLIP ViT-H as diffusers stores it, gelu).
 *
 * Token and position embeddings, pre-LayerNorm transformer layers with a
 * causal mask, final LayerNorm. clip_skip picks the layer whose output is
 * returned (1 = the last, 2 = the penultimate, ...); the final LayerNorm is
 * applied to it either way, as diffusers' clip_skip and AUTOMATIC1111 do.
 * Tensor names are transformers' ("text_model.encoder.layers.0...") or
 * OpenCLIP's as ldm SD 2.x files hold them ("transformer.resblocks.0...",
 * q/k/v fused in attn.in_proj); the loader finds which.
 */
#ifndef KILN_IMAGE_CLIP_TEXT_H
#define KILN_IMAGE_CLIP_TEXT_H

#include <stdint.h>

#include "core/threadpool.h"
#include "kiln/status.h"

struct kiln_weights;

/* What the tensors do not say. */
struct kiln_clip_text_opts {
    int n_heads;      /* attention heads (ViT-L/14: 12, ViT-H: 16) */
    int gelu;         /* 1: exact GELU (OpenCLIP), 0: quick_gelu (OpenAI CLIP) */
    float ln_eps;     /* LayerNorm epsilon (1e-5) */
};

struct kiln_clip_text; /* a loaded text encoder */

/* Options from a transformers config.json (num_attention_heads, hidden_act,
 * layer_norm_eps); defaults of ViT-L/14 for absent keys. */
kiln_status kiln__clip_text_opts_json(const char *config_path, struct kiln_clip_text_opts *out);

/* Bind the encoder whose tensors are named prefix + "text_model...." (or
 * prefix + "token_embedding.weight" etc. for OpenCLIP).
 * Width, layer count, vocabulary and context length come from the tensors. */
kiln_status kiln__clip_text_load(const struct kiln_weights *w, const char *prefix,
                                 const struct kiln_clip_text_opts *opts,
                                 struct kiln_clip_text **out);
void kiln__clip_text_free(struct kiln_clip_text *m);

int kiln__clip_text_width(const struct kiln_clip_text *m);     /* hidden size */
int kiln__clip_text_layers(const struct kiln_clip_text *m);    /* transformer layers */
int kiln__clip_text_max_tokens(const struct kiln_clip_text *m); /* positions (77) */

/* Hidden states of n_tokens ids (n_tokens <= max tokens, ids < vocabulary):
 * out is [n_tokens][width]. clip_skip in 1..layers. */
kiln_status kiln__clip_text_encode(const struct kiln_clip_text *m, kiln_pool *pool,
                                   const int32_t *ids, int n_tokens, int clip_skip, float *out);

#endif /* KILN_IMAGE_CLIP_TEXT_H */
