/* src/formats/model_folder.h - what a model path is (internal): a GGUF file,
 * a safetensors file, a Hugging Face LLM folder or a diffusers folder.
 *
 * kiln__model_path_detect looks at magic bytes and file names only (it never
 * unpickles anything: PyTorch pickles are refused with a message telling the
 * user to convert them), reads config.json / model_index.json with jansson,
 * and for image models runs sd_detect to name the variant. The detection
 * rules are in docs/formats.md ("## Model folders").
 */
#ifndef KILN_FORMATS_MODEL_FOLDER_H
#define KILN_FORMATS_MODEL_FOLDER_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "formats/sd_detect.h"
#include "kiln/arch.h"
#include "kiln/status.h"

/* The kinds of model path kiln reads. */
enum kiln_model_kind {
    KILN_MODEL_GGUF,        /* one .gguf file (by its "GGUF" magic) */
    KILN_MODEL_SAFETENSORS, /* one safetensors file: single-file SD/SDXL checkpoint, Flux, LLM weights */
    KILN_MODEL_HF_LLM,      /* transformers folder: config.json + model.safetensors[.index.json] */
    KILN_MODEL_DIFFUSERS,   /* diffusers pipeline folder: model_index.json + component folders */
};

/* One component folder of a diffusers pipeline. */
struct kiln_diffusers_component {
    char *name;         /* model_index.json key: "unet", "vae", "text_encoder", "tokenizer", ... */
    char *library;      /* first element of its model_index entry ("diffusers", "transformers") */
    char *class_name;   /* second element ("UNet2DConditionModel", "CLIPTextModel", ...) */
    char *dir;          /* path of its folder */
    char *config_path;  /* dir/config.json when it exists, else NULL */
    char *weights_path; /* safetensors file or shard index for model components, else NULL */
};

/* What kiln__model_path_detect found. Strings and JSON are owned by the
 * struct; release with kiln__model_path_free. */
struct kiln_model_path {
    enum kiln_model_kind kind; /* which of the layouts above */
    char *path;                /* the path as given */

    /* KILN_MODEL_HF_LLM */
    char *config_path;            /* folder/config.json */
    char *weights_path;           /* model.safetensors, or model.safetensors.index.json when sharded */
    bool weights_sharded;         /* weights_path is a shard index */
    char *tokenizer_path;         /* tokenizer.json, or NULL when the folder has none */
    char *tokenizer_config_path;  /* tokenizer_config.json (chat template), or NULL */
    char *generation_config_path; /* generation_config.json (eos ids, sampling defaults), or NULL */
    const char *model_type;       /* config.json "model_type" (borrowed from config), or NULL */
    kiln_arch arch;               /* family from model_type ("phi" = phi2); KILN_ARCH_UNKNOWN if not ours */

    /* KILN_MODEL_DIFFUSERS */
    const char *pipeline_class;                  /* model_index.json "_class_name" (borrowed from config) */
    struct kiln_diffusers_component *components; /* the components kiln uses that the index lists */
    size_t n_components;                         /* entries of components */

    /* Parsed config.json (HF LLM) or model_index.json (diffusers); NULL for
     * single files. Owned: the LLM loader reads hyperparameters from it with
     * the kiln__json_get_* helpers. */
    json_t *config;

    /* Image models (diffusers folders and safetensors files): what
     * sd_detect found; info.variant is KILN_VARIANT_UNKNOWN otherwise. */
    struct kiln_sd_info sd;
};

/* Classify `path` and fill *out (zeroed first). Errors: KILN_ERR_NOT_FOUND
 * (no such path), KILN_ERR_UNSUPPORTED (pickle checkpoints, unknown file or
 * folder layout), KILN_ERR_FORMAT (an incomplete folder or bad JSON),
 * KILN_ERR_IO, KILN_ERR_OUT_OF_MEMORY. On failure *out holds nothing to free
 * (calling kiln__model_path_free on it is still fine). */
kiln_status kiln__model_path_detect(const char *path, struct kiln_model_path *out);
/* Release what *mp owns and zero it. NULL is fine. */
void kiln__model_path_free(struct kiln_model_path *mp);

/* The diffusers component called `name` ("unet", ...), or NULL. */
const struct kiln_diffusers_component *kiln__model_path_component(const struct kiln_model_path *mp,
                                                                  const char *name);
/* "gguf", "safetensors", "hf-llm", "diffusers". Static string. */
const char *kiln__model_kind_name(enum kiln_model_kind kind);

#endif /* KILN_FORMATS_MODEL_FOLDER_H */
