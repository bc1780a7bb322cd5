/* src/worker/backend_image.c - the worker's backend for image models: adapts
 * the image engine (kiln/image.h) to the interface in backend.h.
 *
 * The daemon validates requests against the capabilities reported here
 * (info()->image) before they are queued; run_image hands the parameters to
 * kiln_image_generate unchanged, so a job makes exactly what `kiln image`
 * makes with the same settings. */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "formats/model_folder.h"
#include "formats/sd_detect.h"
#include "formats/weights.h"
#include "kiln/kiln.h"
#include "worker/backend.h"

/* The backend's state. */
struct image_backend {
    char *path;                     /* the model file or folder (owned) */
    char *clip_vocab;               /* CLIP vocabulary path (owned), or NULL */
    kiln_image_model *m;            /* the loaded model, or NULL before load */
    char model_id[256];             /* the model's name: its file or folder name */
    struct kiln__backend_info info; /* what info() returns */
};

static kiln_status image_load(void *ctx, kiln__progress_fn progress, void *user) {
    struct image_backend *b = ctx;
    /* The engine reports no load progress: say where it is at the ends. */
    if (progress && progress(user, 0.0)) return kiln__fail(KILN_ERR_CANCELLED, "serve: load cancelled");
    kiln_image_load_options o = {b->clip_vocab};
    kiln_status st = kiln_image_load(b->path, &o, &b->m);
    if (st != KILN_OK) return st;
    if ((st = kiln_image_model_caps(b->m, &b->info.image)) != KILN_OK) return st;
    unsigned caps = 0;
    if (b->info.image.txt2img) caps |= KILN__CAP_IMAGE_GENERATION;
    if (b->info.image.img2img) caps |= KILN__CAP_IMAGE_TRANSFORM | KILN__CAP_IMAGE_INPAINT;
    b->info.caps = caps;
    if (progress) progress(user, 1.0);
    return KILN_OK;
}

static const struct kiln__backend_info *image_info(void *ctx) { return &((struct image_backend *)ctx)->info; }

static kiln_status image_count(void *ctx, const struct kiln__text_job *job, int32_t *n) {
    (void)ctx;
    (void)job;
    *n = 0;
    return kiln__fail(KILN_ERR_UNSUPPORTED, "an image model does not take text jobs");
}

static kiln_status image_run_text(void *ctx, const struct kiln__text_job *job, kiln__token_fn on_token, void *user,
                                  struct kiln__text_stats *stats) {
    (void)ctx;
    (void)job;
    (void)on_token;
    (void)user;
    memset(stats, 0, sizeof *stats);
    stats->stop_reason = KILN__STOP_ERROR;
    return kiln__fail(KILN_ERR_UNSUPPORTED, "an image model does not take text jobs");
}

static kiln_status image_run(void *ctx, const kiln_image_params *p, kiln_image_result *out) {
    struct image_backend *b = ctx;
    return kiln_image_generate(b->m, p, out);
}

static void image_destroy(void *ctx) {
    struct image_backend *b = ctx;
    kiln_image_model_free(b->m);
    free(b->clip_vocab);
    free(b->path);
    free(b);
}

kiln_status kiln__backend_image_create(const char *path, const char *clip_vocab, struct kiln__backend *out) {
    struct image_backend *b = calloc(1, sizeof *b);
    if (!b || !(b->path = strdup(path)) || (clip_vocab && clip_vocab[0] && !(b->clip_vocab = strdup(clip_vocab)))) {
        if (b) free(b->path);
        free(b);
        return kiln__fail(KILN_ERR_OUT_OF_MEMORY, "serve: out of memory");
    }
    /* The model's name: the last path component without its extension. */
    size_t len = strlen(path);
    while (len > 1 && path[len - 1] == '/') len--;
    size_t start = len;
    while (start > 0 && path[start - 1] != '/') start--;
    size_t n = len - start;
    static const char *const exts[] = {".safetensors", ".gguf", ".ckpt"};
    for (size_t i = 0; i < sizeof exts / sizeof exts[0]; i++) {
        size_t el = strlen(exts[i]);
        if (n > el && strncmp(path + start + n - el, exts[i], el) == 0) n -= el;
    }
    if (n >= sizeof b->model_id) n = sizeof b->model_id - 1;
    memcpy(b->model_id, path + start, n);
    b->model_id[n] = '\0';
    b->info.model_id = b->model_id;
    b->info.family = kiln_arch_name(KILN_ARCH_STABLE_DIFFUSION);
    b->info.device = "cpu";
    b->info.implementation = "kiln-image";
    *out = (struct kiln__backend){.ctx = b, .load = image_load, .info = image_info, .count_tokens = image_count,
                                  .run_text = image_run_text, .run_image = image_run, .destroy = image_destroy};
    return KILN_OK;
}

/* Whether detection found an image model's tensor layout (a variant kiln
 * runs or not: the image backend then names what it cannot run). */
static bool image_layout(const struct kiln_sd_info *info) {
    return info->layout && strcmp(info->layout, "unknown") != 0;
}

int kiln__backend_is_image_model(const char *path) {
    struct kiln_model_path mp;
    if (kiln__model_path_detect(path, &mp) != KILN_OK) {
        kiln__model_path_free(&mp);
        kiln__clear_error();
        return 0;
    }
    bool image = mp.kind == KILN_MODEL_DIFFUSERS || image_layout(&mp.sd);
    bool gguf = mp.kind == KILN_MODEL_GGUF;
    kiln__model_path_free(&mp);
    if (gguf) {
        /* A GGUF file may hold SD tensors: the path detection reads no
         * tensors, so look at their names as kiln_image_load does. */
        struct kiln_weights *w = NULL;
        if (kiln__weights_open(path, &w) == KILN_OK) {
            struct kiln_sd_info info;
            struct kiln_tensor_lookup lk = kiln__weights_lookup(w);
            kiln__sd_detect_tensors(&lk, &info);
            image = image_layout(&info);
        }
        kiln__weights_free(w);
        kiln__clear_error();
    }
    return image;
}
