/* src/formats/model_folder.c - classifying a model path (see model_folder.h):
 * single files by their magic bytes, folders by their index files. */
#include "formats/model_folder.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/error.h"
#include "formats/json_util.h"
#include "formats/safetensors.h"

/* The advice given for every PyTorch pickle kiln refuses. */
#define PICKLE_ADVICE                                                                            \
    "kiln never loads pickles (unpickling can run arbitrary code); convert it to safetensors first " \
    "(e.g. with the safetensors convert script, or torch.load + safetensors.torch.save_file in a "    \
    "sandbox you trust)"

/* Diffusers components kiln uses, and whether each one carries weights. */
static const struct component_kind {
    const char *name;  /* model_index.json key and folder name */
    bool has_weights;  /* a model (unet, vae, encoders) rather than a tokenizer or scheduler */
} component_kinds[] = {
    {"unet", true},          {"transformer", true},    {"vae", true},
    {"text_encoder", true},  {"text_encoder_2", true}, {"text_encoder_3", true},
    {"tokenizer", false},    {"tokenizer_2", false},   {"tokenizer_3", false},
    {"scheduler", false},
};
#define N_COMPONENT_KINDS (sizeof component_kinds / sizeof component_kinds[0])

/* Weight files looked for in a component folder, most usual first
 * (diffusers names model weights diffusion_pytorch_model.*, transformers
 * model.*; "fp16" variants are what many repositories ship). */
static const char *const weight_names[] = {
    "diffusion_pytorch_model.safetensors",
    "diffusion_pytorch_model.safetensors.index.json",
    "model.safetensors",
    "model.safetensors.index.json",
    "diffusion_pytorch_model.fp16.safetensors",
    "diffusion_pytorch_model.safetensors.index.fp16.json",
    "model.fp16.safetensors",
    "model.safetensors.index.fp16.json",
};
static const char *const pickle_names[] = {
    "diffusion_pytorch_model.bin", "pytorch_model.bin", "diffusion_pytorch_model.fp16.bin",
    "pytorch_model.fp16.bin", "pytorch_model.bin.index.json",
};

const char *kiln__model_kind_name(enum kiln_model_kind kind) {
    switch (kind) {
    case KILN_MODEL_GGUF: return "gguf";
    case KILN_MODEL_SAFETENSORS: return "safetensors";
    case KILN_MODEL_HF_LLM: return "hf-llm";
    case KILN_MODEL_DIFFUSERS: return "diffusers";
    }
    return "unknown";
}

/* "dir/name", malloc'd; NULL when out of memory. */
static char *join(const char *dir, const char *name) {
    size_t a = strlen(dir), b = strlen(name);
    while (a > 1 && dir[a - 1] == '/') a--; /* "folder/" + "x" gives "folder/x" */
    char *p = malloc(a + 1 + b + 1);
    if (!p) return NULL;
    memcpy(p, dir, a);
    p[a] = '/';
    memcpy(p + a + 1, name, b + 1);
    return p;
}

static bool is_file(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

static bool is_dir(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* dir/name when that file exists. *out NULL when it does not; the status
 * fails only when out of memory. */
static kiln_status optional_file(const char *dir, const char *name, char **out) {
    *out = join(dir, name);
    if (!*out) return kiln__fail(KILN_ERR_OUT_OF_MEMORY, "model path: out of memory");
    if (!is_file(*out)) {
        free(*out);
        *out = NULL;
    }
    return KILN_OK;
}

/* The first bytes of a file (at most cap); -1 with a message when unreadable. */
static long read_head(const char *path, uint8_t *buf, size_t cap) {
    FILE *f = fopen(path, "rb");
    if (!f) return -1;
    size_t n = fread(buf, 1, cap, f);
    fclose(f);
    return (long)n;
}

/* A PyTorch checkpoint: a zip archive (torch.save since 1.6) or a raw
 * pickle stream (PROTO opcode 0x80 with protocol 2..5). */
static bool looks_like_pickle(const uint8_t *h, long n) {
    if (n >= 4 && memcmp(h, "PK\x03\x04", 4) == 0) return true;
    return n >= 2 && h[0] == 0x80 && h[1] >= 2 && h[1] <= 5;
}

/* A safetensors file: a plausible header length, then '{'. */
static bool looks_like_safetensors(const uint8_t *h, long n, long long file_size) {
    if (n < 9) return false;
    uint64_t len = 0;
    for (int i = 7; i >= 0; i--) len = (len << 8) | h[i];
    return len >= 2 && len <= KILN_ST_MAX_HEADER && (long long)len <= file_size - 8 && h[8] == '{';
}

static bool ends_with(const char *s, const char *suffix) {
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcmp(s + a - b, suffix) == 0;
}

/* A single file: GGUF, safetensors, or a refused pickle. */
static kiln_status detect_file(const char *path, long long size, struct kiln_model_path *out) {
    uint8_t head[16];
    long n = read_head(path, head, sizeof head);
    if (n < 0) return kiln__fail(KILN_ERR_IO, "cannot open %s: %s", path, strerror(errno));
    if (n >= 4 && memcmp(head, "GGUF", 4) == 0) {
        out->kind = KILN_MODEL_GGUF;
        return KILN_OK;
    }
    if (looks_like_pickle(head, n))
        return kiln__fail(KILN_ERR_UNSUPPORTED, "%s is a PyTorch pickle checkpoint: " PICKLE_ADVICE, path);
    if (looks_like_safetensors(head, n, size) || ends_with(path, ".safetensors")) {
        /* Read the header (tensor data is only mapped) and name the model. */
        struct kiln_safetensors_set *set = NULL;
        kiln_status s = kiln__safetensors_open_single(path, &set);
        if (s != KILN_OK) return s;
        out->kind = KILN_MODEL_SAFETENSORS;
        struct kiln_tensor_lookup lk = kiln__safetensors_set_lookup(set);
        kiln__sd_detect_tensors(&lk, &out->sd);
        kiln__safetensors_set_free(set);
        return KILN_OK;
    }
    if (ends_with(path, ".ckpt") || ends_with(path, ".pt") || ends_with(path, ".pth") || ends_with(path, ".bin"))
        return kiln__fail(KILN_ERR_UNSUPPORTED,
                          "%s looks like a PyTorch checkpoint (by its name) but is not a zip or pickle kiln "
                          "recognises; " PICKLE_ADVICE, path);
    return kiln__fail(KILN_ERR_UNSUPPORTED, "%s: unknown model file format (kiln reads GGUF and safetensors)",
                      path);
}

/* A transformers LLM folder: config.json plus safetensors weights. */
static kiln_status detect_hf_llm(const char *dir, struct kiln_model_path *out) {
    out->kind = KILN_MODEL_HF_LLM;
    kiln_status s = optional_file(dir, "config.json", &out->config_path);
    if (s != KILN_OK) return s;
    if ((s = kiln__json_load_file(out->config_path, 0, &out->config)) != KILN_OK) return s;
    if (!json_is_object(out->config))
        return kiln__fail(KILN_ERR_FORMAT, "%s is a JSON %s, not an object", out->config_path,
                          kiln__json_kind(out->config));
    if ((s = kiln__json_get_string(out->config, "model_type", NULL, &out->model_type)) != KILN_OK)
        return kiln__fail(s, "%s: %s", out->config_path, "\"model_type\" is not a string");
    /* transformers calls Phi-2 "phi"; every other family kiln runs uses its own name. */
    out->arch = out->model_type && strcmp(out->model_type, "phi") == 0 ? KILN_ARCH_PHI2
                                                                       : kiln_arch_from_name(out->model_type);
    if (out->arch != KILN_ARCH_UNKNOWN && kiln_arch_worker(out->arch) != KILN_WORKER_LLM)
        out->arch = KILN_ARCH_UNKNOWN;

    if ((s = optional_file(dir, "model.safetensors", &out->weights_path)) != KILN_OK) return s;
    if (!out->weights_path) {
        if ((s = optional_file(dir, "model.safetensors.index.json", &out->weights_path)) != KILN_OK) return s;
        out->weights_sharded = out->weights_path != NULL;
    }
    if (!out->weights_path) {
        for (size_t i = 0; i < sizeof pickle_names / sizeof pickle_names[0]; i++) {
            char *p = NULL;
            if ((s = optional_file(dir, pickle_names[i], &p)) != KILN_OK) return s;
            if (p) {
                free(p);
                return kiln__fail(KILN_ERR_UNSUPPORTED, "%s holds only PyTorch pickle weights (%s): " PICKLE_ADVICE,
                                  dir, pickle_names[i]);
            }
        }
        return kiln__fail(KILN_ERR_FORMAT,
                          "incomplete model folder %s: config.json but no model.safetensors or "
                          "model.safetensors.index.json", dir);
    }
    if ((s = optional_file(dir, "tokenizer.json", &out->tokenizer_path)) != KILN_OK) return s;
    if ((s = optional_file(dir, "tokenizer_config.json", &out->tokenizer_config_path)) != KILN_OK) return s;
    return optional_file(dir, "generation_config.json", &out->generation_config_path);
}

/* Fill c (name set) from its model_index entry and folder. */
static kiln_status load_component(const char *root, const json_t *entry, bool has_weights,
                                  struct kiln_diffusers_component *c) {
    const json_t *lib = json_array_get(entry, 0), *cls = json_array_get(entry, 1);
    if (!json_is_array(entry) || json_array_size(entry) != 2 || !json_is_string(lib) || !json_is_string(cls))
        return kiln__fail(KILN_ERR_FORMAT, "%s/model_index.json: entry '%s' is not [library, class]", root,
                          c->name);
    c->library = strdup(json_string_value(lib));
    c->class_name = strdup(json_string_value(cls));
    c->dir = join(root, c->name);
    if (!c->library || !c->class_name || !c->dir)
        return kiln__fail(KILN_ERR_OUT_OF_MEMORY, "model path: out of memory");
    if (!is_dir(c->dir))
        return kiln__fail(KILN_ERR_FORMAT, "incomplete diffusers folder: model_index.json lists '%s' but %s is missing",
                          c->name, c->dir);
    kiln_status s = optional_file(c->dir, "config.json", &c->config_path);
    if (s != KILN_OK || !has_weights) return s;
    for (size_t i = 0; i < sizeof weight_names / sizeof weight_names[0] && !c->weights_path; i++)
        if ((s = optional_file(c->dir, weight_names[i], &c->weights_path)) != KILN_OK) return s;
    if (c->weights_path) return KILN_OK;
    for (size_t i = 0; i < sizeof pickle_names / sizeof pickle_names[0]; i++) {
        char *p = NULL;
        if ((s = optional_file(c->dir, pickle_names[i], &p)) != KILN_OK) return s;
        if (p) {
            free(p);
            return kiln__fail(KILN_ERR_UNSUPPORTED, "%s holds only PyTorch pickle weights (%s): " PICKLE_ADVICE,
                              c->dir, pickle_names[i]);
        }
    }
    return kiln__fail(KILN_ERR_FORMAT, "incomplete diffusers folder: no safetensors weights in %s", c->dir);
}

/* A diffusers pipeline folder: model_index.json names the components. */
static kiln_status detect_diffusers(const char *dir, struct kiln_model_path *out) {
    out->kind = KILN_MODEL_DIFFUSERS;
    char *index = join(dir, "model_index.json");
    if (!index) return kiln__fail(KILN_ERR_OUT_OF_MEMORY, "model path: out of memory");
    kiln_status s = kiln__json_load_file(index, 0, &out->config);
    if (s == KILN_OK && !json_is_object(out->config))
        s = kiln__fail(KILN_ERR_FORMAT, "%s is a JSON %s, not an object", index, kiln__json_kind(out->config));
    if (s == KILN_OK && (kiln__json_get_string(out->config, "_class_name", NULL, &out->pipeline_class) != KILN_OK ||
                         !out->pipeline_class))
        s = kiln__fail(KILN_ERR_FORMAT, "%s: no \"_class_name\" string naming the pipeline", index);
    free(index);
    if (s != KILN_OK) return s;

    out->components = calloc(N_COMPONENT_KINDS, sizeof *out->components);
    if (!out->components) return kiln__fail(KILN_ERR_OUT_OF_MEMORY, "model path: out of memory");
    for (size_t i = 0; i < N_COMPONENT_KINDS; i++) {
        const json_t *entry = json_object_get(out->config, component_kinds[i].name);
        /* Absent, null, or [null, null]: the pipeline has no such component. */
        if (!entry || json_is_null(entry) || (json_is_array(entry) && json_is_null(json_array_get(entry, 0))))
            continue;
        struct kiln_diffusers_component *c = &out->components[out->n_components++];
        c->name = strdup(component_kinds[i].name);
        if (!c->name) return kiln__fail(KILN_ERR_OUT_OF_MEMORY, "model path: out of memory");
        if ((s = load_component(dir, entry, component_kinds[i].has_weights, c)) != KILN_OK) return s;
    }
    const char *missing = NULL;
    if (!kiln__model_path_component(out, "unet") && !kiln__model_path_component(out, "transformer"))
        missing = "unet or transformer";
    else if (!kiln__model_path_component(out, "vae"))
        missing = "vae";
    else if (!kiln__model_path_component(out, "text_encoder"))
        missing = "text_encoder";
    else if (!kiln__model_path_component(out, "tokenizer"))
        missing = "tokenizer";
    if (missing)
        return kiln__fail(KILN_ERR_FORMAT, "incomplete diffusers folder %s: model_index.json lists no %s", dir,
                          missing);
    return kiln__sd_detect_diffusers(out, &out->sd);
}

kiln_status kiln__model_path_detect(const char *path, struct kiln_model_path *out) {
    if (!out) return kiln__fail(KILN_ERR_INVALID_ARG, "model path: no output given");
    memset(out, 0, sizeof *out);
    out->arch = KILN_ARCH_UNKNOWN;
    out->sd.variant = KILN_VARIANT_UNKNOWN;
    out->sd.layout = "unknown";
    if (!path || !path[0]) return kiln__fail(KILN_ERR_INVALID_ARG, "model path: no path given");
    struct stat st;
    if (stat(path, &st) != 0)
        return kiln__fail(errno == ENOENT ? KILN_ERR_NOT_FOUND : KILN_ERR_IO, "%s: %s", path, strerror(errno));
    out->path = strdup(path);
    if (!out->path) return kiln__fail(KILN_ERR_OUT_OF_MEMORY, "model path: out of memory");

    kiln_status s;
    if (S_ISREG(st.st_mode)) {
        s = detect_file(path, (long long)st.st_size, out);
    } else if (!S_ISDIR(st.st_mode)) {
        s = kiln__fail(KILN_ERR_UNSUPPORTED, "%s is neither a file nor a folder", path);
    } else {
        char *index = join(path, "model_index.json"), *config = join(path, "config.json");
        if (!index || !config)
            s = kiln__fail(KILN_ERR_OUT_OF_MEMORY, "model path: out of memory");
        else if (is_file(index))
            s = detect_diffusers(path, out);
        else if (is_file(config))
            s = detect_hf_llm(path, out);
        else
            s = kiln__fail(KILN_ERR_UNSUPPORTED,
                           "%s is not a model folder kiln knows: expected config.json (Hugging Face LLM) or "
                           "model_index.json (diffusers pipeline)", path);
        free(index);
        free(config);
    }
    if (s != KILN_OK) kiln__model_path_free(out);
    return s;
}

void kiln__model_path_free(struct kiln_model_path *mp) {
    if (!mp) return;
    free(mp->path);
    free(mp->config_path);
    free(mp->weights_path);
    free(mp->tokenizer_path);
    free(mp->tokenizer_config_path);
    free(mp->generation_config_path);
    for (size_t i = 0; i < mp->n_components; i++) {
        struct kiln_diffusers_component *c = &mp->components[i];
        free(c->name);
        free(c->library);
        free(c->class_name);
        free(c->dir);
        free(c->config_path);
        free(c->weights_path);
    }
    free(mp->components);
    json_decref(mp->config);
    memset(mp, 0, sizeof *mp);
    mp->arch = KILN_ARCH_UNKNOWN;
    mp->sd.variant = KILN_VARIANT_UNKNOWN;
    mp->sd.layout = "unknown";
}

const struct kiln_diffusers_component *kiln__model_path_component(const struct kiln_model_path *mp,
                                                                  const char *name) {
    if (!mp || !name) return NULL;
    for (size_t i = 0; i < mp->n_components; i++)
        if (strcmp(mp->components[i].name, name) == 0) return &mp->components[i];
    return NULL;
}
