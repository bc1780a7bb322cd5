/* src/image/sd_model.h - a Stable Diffusion model (SD 1.x, 2.x and their
 * inpainting versions) loaded from disk and bound to the pipeline's
 * component interface (internal).
 *
 * Reads a diffusers folder (text_encoder/, unet/, vae/, tokenizer/,
 * scheduler/), a single-file ldm checkpoint (safetensors) or a GGUF file
 * holding either naming. The CLIP vocabulary comes from the folder's
 * tokenizer/ or from `clip_vocab` (a merges file or a tokenizer folder);
 * single files carry none, so a missing vocabulary is an error that says
 * how to give one.
 */
#ifndef KILN_IMAGE_SD_MODEL_H
#define KILN_IMAGE_SD_MODEL_H

#include "image/pipeline.h"
#include "kiln/status.h"

/* Load the model at `path` and fill *comp (comp->user is the loaded model;
 * release it with kiln__sd_model_free). clip_vocab may be NULL. On failure
 * *comp is zeroed and kiln_last_error() says why. */
kiln_status kiln__sd_model_load(const char *path, const char *clip_vocab, kiln_sd_components *comp);

/* AUTOMATIC1111's test of an SD 2.x single file for v-prediction
 * (sd_models_config.is_using_v_parameterization_for_sd2): the UNet of the
 * loaded model `user` at timestep 999 on an 8x8 latent of 0.5 with a
 * context of two tokens of 0.5; *mean gets the mean of (output - input).
 * The loader takes an SD 2.x single file (variant sd2.1, 768-v and
 * 512-base look alike) as v-prediction when it is below -1, as A1111 does;
 * diffusers folders say it in their scheduler config. */
kiln_status kiln__sd_model_v_probe(void *user, double *mean);

/* Release what kiln__sd_model_load put in comp->user; NULL is fine. */
void kiln__sd_model_free(void *user);

#endif /* KILN_IMAGE_SD_MODEL_H */
