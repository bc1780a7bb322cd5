/* src/cli/cmd_image.c - `kiln image`: Stable Diffusion txt2img, img2img and
 * inpainting from the command line, with a progress bar on stderr, stage
 * timings, and PNG output carrying AUTOMATIC1111's parameters chunk. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/commands.h"
#include "image/image_io.h"
#include "kiln/image.h"

static const char usage[] =
    "usage: kiln image -m MODEL -p PROMPT [options] -o OUT.png\n"
    "  -m MODEL          checkpoint (.safetensors, .gguf) or diffusers folder\n"
    "  -p PROMPT         the prompt (A1111 emphasis: (word:1.2), [word])\n"
    "  -n NEGATIVE       negative prompt\n"
    "  -o OUT.png        output; a batch writes OUT.png, OUT-2.png, ...\n"
    "  --steps N         sampler steps (default: the model's)\n"
    "  --cfg S           guidance scale (default: the model's)\n"
    "  --seed N          noise seed (default 0); image i of a batch uses seed + i\n"
    "  --sampler NAME    euler, euler_a (default), heun, dpmpp_2m, dpmpp_2m_sde, ddim, lcm\n"
    "  --schedule NAME   normal (default), karras, exponential, sgm_uniform\n"
    "  -W W, -H H        size in pixels (multiples of 8; default: the model's)\n"
    "  --init IMG        img2img / inpainting source (PNG, JPEG, WebP)\n"
    "  --strength S      how much of the init image to change, 0..1 (default 0.75)\n"
    "  --mask MASK       inpainting mask, the init image's size: white repaints;\n"
    "                    an image with transparency: transparent pixels repaint\n"
    "  --batch N         images to make (default 1, at most 64)\n"
    "  --rng cpu|cuda    noise as PyTorch's CPU (default) or CUDA generator\n"
    "  --prediction auto|eps|v  what the UNet predicts (default auto: the scheduler\n"
    "                    config, or A1111's probe for SD 2.x single files)\n"
    "  --clip-vocab PATH CLIP merges file or tokenizer folder (single-file checkpoints)\n"
    "  --clip-skip N     skip the last N-1 text encoder layers (A1111's Clip skip)\n"
    "  --pad-conds on|off  pad the shorter of prompt and negative prompt with empty\n"
    "                    chunks to the same length (A1111's pad_cond_uncond; default off)\n";

/* The command line. */
struct image_args {
    const char *model;  /* -m */
    const char *out;    /* -o */
    const char *init;   /* --init */
    const char *mask;   /* --mask */
    const char *vocab;  /* --clip-vocab */
    kiln_image_params p; /* everything else */
};

static int bad(const char *fmt, const char *arg) {
    fprintf(stderr, "kiln image: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\n%s", usage);
    return 2;
}

/* A whole decimal number in [lo, hi]. */
static bool parse_u64(const char *s, uint64_t lo, uint64_t hi, uint64_t *out) {
    if (!s || !*s || *s == '-' || *s == '+') return false;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end || v < lo || v > hi) return false;
    *out = v;
    return true;
}

static bool parse_float(const char *s, float lo, float hi, float *out) {
    if (!s || !*s) return false;
    char *end;
    errno = 0;
    float v = strtof(s, &end);
    if (errno || *end || !(v >= lo && v <= hi)) return false;
    *out = v;
    return true;
}

/* Parse argv; 0 on success, 2 for a usage error, -1 after --help. */
static int parse(int argc, char **argv, struct image_args *a) {
    memset(a, 0, sizeof *a);
    a->p = kiln_image_default_params();
    for (int i = 1; i < argc; i++) {
        const char *o = argv[i];
        if (!strcmp(o, "-h") || !strcmp(o, "--help")) {
            fputs(usage, stdout);
            return -1;
        }
        if (i + 1 >= argc) return bad("option %s needs a value (or is unknown)", o);
        const char *v = argv[++i];
        uint64_t u;
        if (!strcmp(o, "-m")) a->model = v;
        else if (!strcmp(o, "-p")) a->p.prompt = v;
        else if (!strcmp(o, "-n")) a->p.negative_prompt = v;
        else if (!strcmp(o, "-o")) a->out = v;
        else if (!strcmp(o, "--init")) a->init = v;
        else if (!strcmp(o, "--mask")) a->mask = v;
        else if (!strcmp(o, "--clip-vocab")) a->vocab = v;
        else if (!strcmp(o, "--steps")) {
            if (!parse_u64(v, 1, 10000, &u)) return bad("--steps wants 1..10000, not '%s'", v);
            a->p.steps = (uint32_t)u;
        } else if (!strcmp(o, "--cfg")) {
            if (!parse_float(v, 0.0f, 100.0f, &a->p.guidance)) return bad("--cfg wants 0..100, not '%s'", v);
        } else if (!strcmp(o, "--seed")) {
            if (!parse_u64(v, 0, UINT64_MAX, &a->p.seed)) return bad("--seed wants a whole number, not '%s'", v);
        } else if (!strcmp(o, "--sampler")) {
            if (!kiln_image_sampler_from_name(v, &a->p.sampler)) return bad("unknown sampler '%s'", v);
        } else if (!strcmp(o, "--prediction")) {
            if (!kiln_image_prediction_from_name(v, &a->p.prediction))
                return bad("--prediction wants auto, eps or v, not '%s'", v);
        } else if (!strcmp(o, "--schedule")) {
            if (!kiln_image_schedule_from_name(v, &a->p.schedule)) return bad("unknown schedule '%s'", v);
        } else if (!strcmp(o, "-W") || !strcmp(o, "-H")) {
            if (!parse_u64(v, 8, 16384, &u)) return bad("-W and -H want 8..16384 pixels, not '%s'", v);
            *(o[1] == 'W' ? &a->p.width : &a->p.height) = (uint32_t)u;
        } else if (!strcmp(o, "--strength")) {
            if (!parse_float(v, 0.0f, 1.0f, &a->p.strength)) return bad("--strength wants 0..1, not '%s'", v);
        } else if (!strcmp(o, "--batch")) {
            if (!parse_u64(v, 1, 64, &u)) return bad("--batch wants 1..64, not '%s'", v);
            a->p.batch_count = (uint32_t)u;
        } else if (!strcmp(o, "--rng")) {
            if (!strcmp(v, "cpu")) a->p.rng = KILN_IMAGE_RNG_CPU;
            else if (!strcmp(v, "cuda")) a->p.rng = KILN_IMAGE_RNG_CUDA;
            else return bad("--rng wants cpu or cuda, not '%s'", v);
        } else if (!strcmp(o, "--clip-skip")) {
            if (!parse_u64(v, 1, 64, &u)) return bad("--clip-skip wants 1..64, not '%s'", v);
            a->p.clip_skip = (uint32_t)u;
        } else if (!strcmp(o, "--pad-conds")) {
            if (!strcmp(v, "on")) a->p.pad_cond_uncond = true;
            else if (!strcmp(v, "off")) a->p.pad_cond_uncond = false;
            else return bad("--pad-conds wants on or off, not '%s'", v);
        } else {
            return bad("unknown option %s", o);
        }
    }
    if (!a->model) return bad("%s", "-m MODEL is required");
    if (!a->p.prompt) return bad("%s", "-p PROMPT is required");
    if (!a->out) return bad("%s", "-o OUT.png is required");
    if (a->mask && !a->init) return bad("%s", "--mask needs --init");
    return 0;
}

/* Progress state of the bar. */
struct progress {
    double start; /* when the current image's first step began */
};

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int on_step(void *user, uint32_t index, uint32_t step, uint32_t total, const kiln_image *preview) {
    struct progress *pr = user;
    (void)preview;
    if (step == 1) pr->start = now_s();
    const int width = 30;
    int done = (int)((uint64_t)step * width / total);
    fprintf(stderr, "\rimage %u [", index + 1);
    for (int i = 0; i < width; i++) fputc(i < done ? '#' : '.', stderr);
    double el = now_s() - pr->start;
    fprintf(stderr, "] %u/%u  %.2f s/step", step, total, step > 1 ? el / (step - 1) : el);
    if (step == total) fputc('\n', stderr);
    return 0;
}

/* Load the init image (RGB) and mask (1 channel: an image with transparent
 * pixels gives those as the area to repaint, otherwise its luma). */
static int load_inputs(const struct image_args *a, kiln_image *init, kiln_image *mask) {
    if (a->init && kiln__image_load_file(a->init, 3, NULL, init, NULL) != KILN_OK) {
        fprintf(stderr, "kiln image: %s\n", kiln_last_error());
        return 1;
    }
    if (!a->mask) return 0;
    kiln_image rgba;
    kiln_image_info info;
    if (kiln__image_load_file(a->mask, 4, NULL, &rgba, &info) != KILN_OK) {
        fprintf(stderr, "kiln image: %s\n", kiln_last_error());
        return 1;
    }
    kiln_status s = KILN_OK;
    if (info.has_alpha) {
        s = kiln__image_mask_from_alpha(&rgba, mask);
    } else {
        size_t n = (size_t)rgba.width * rgba.height;
        uint8_t *grey = malloc(n);
        if (grey) {
            kiln__image_convert_channels(rgba.data, 4, grey, 1, n);
            *mask = (kiln_image){rgba.width, rgba.height, 1, grey};
        } else {
            s = KILN_ERR_OUT_OF_MEMORY;
        }
    }
    kiln_image_clear(&rgba);
    if (s != KILN_OK) {
        fprintf(stderr, "kiln image: %s\n", s == KILN_ERR_OUT_OF_MEMORY ? "out of memory" : kiln_last_error());
        return 1;
    }
    return 0;
}

/* The file name of image i: OUT for the first, OUT-<i+1> before the
 * extension for the others. */
static char *out_name(const char *out, uint32_t i) {
    size_t len = strlen(out) + 16;
    char *name = malloc(len);
    if (!name) return NULL;
    if (i == 0) {
        snprintf(name, len, "%s", out);
        return name;
    }
    const char *dot = strrchr(out, '.'), *slash = strrchr(out, '/');
    if (!dot || (slash && dot < slash)) dot = out + strlen(out);
    snprintf(name, len, "%.*s-%u%s", (int)(dot - out), out, i + 1, dot);
    return name;
}

int kiln_cmd_image(int argc, char **argv) {
    struct image_args a;
    int rc = parse(argc, argv, &a);
    if (rc) return rc < 0 ? 0 : rc;
    kiln_image init = {0}, mask = {0};
    if (load_inputs(&a, &init, &mask)) {
        kiln_image_clear(&init);
        return 1;
    }
    if (a.init) a.p.init_image = &init;
    if (a.mask) a.p.mask = &mask;
    struct progress pr = {0};
    a.p.on_step = on_step;
    a.p.user = &pr;
    double t0 = now_s();
    kiln_image_load_options lo = {a.vocab};
    kiln_image_model *m = NULL;
    kiln_status s = kiln_image_load(a.model, &lo, &m);
    double t_load = now_s() - t0;
    kiln_image_result r = {0};
    if (s == KILN_OK) s = kiln_image_generate(m, &a.p, &r);
    rc = 0;
    if (s != KILN_OK) {
        fprintf(stderr, "kiln image: %s: %s\n", kiln_status_str(s), kiln_last_error());
        rc = 1;
    }
    for (uint32_t i = 0; rc == 0 && i < r.count; i++) {
        char *name = out_name(a.out, i);
        s = name ? kiln__png_save(name, &r.images[i], r.parameters[i]) : KILN_ERR_OUT_OF_MEMORY;
        if (s != KILN_OK) {
            fprintf(stderr, "kiln image: %s\n", name ? kiln_last_error() : "out of memory");
            rc = 1;
        } else {
            printf("%s\n", name);
        }
        free(name);
    }
    if (rc == 0)
        fprintf(stderr, "load %.2f s, text encode %.2f s, sampling %.2f s, VAE %.2f s\n", t_load, r.text_seconds,
                r.sampling_seconds, r.decode_seconds);
    kiln_image_result_free(&r);
    kiln_image_model_free(m);
    kiln_image_clear(&init);
    kiln_image_clear(&mask);
    return rc;
}
