/* src/cli/cmd_bench_image.c - `kiln bench-image`: the speed of a Stable
 * Diffusion model's three networks, each timed alone through the
 * component interface the pipeline drives (image/pipeline.h):
 *   text        one prompt through the text encoder (77 tokens);
 *   unet<S>     one sampler step at S x S pixels with classifier-free
 *               guidance: two UNet evaluations (conditional and
 *               unconditional context), as every guided step makes,
 *               as one batch of two as the pipeline runs them
 *               (--no-cfg-batch: one after the other);
 *   vae<S>      one VAE decode of an S x S image's latent.
 * Each test runs `warmup` times unmeasured, then `reps` times; the report
 * gives mean and sample standard deviation in seconds, load time and peak
 * RSS, as a markdown table or one JSON object. Inputs are seeded random
 * numbers, so runs are repeatable. */
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/bench.h"
#include "cli/commands.h"
#include "cli/llm_cli.h"
#include "core/cpu.h"
#include "image/pipeline.h"
#include "image/sd_model.h"
#include "kiln/kiln.h"

static const char usage[] =
    "usage: kiln bench-image -m MODEL [options]\n"
    "  -m MODEL          Stable Diffusion model (diffusers folder, ldm file, GGUF)\n"
    "  --clip-vocab P    CLIP vocabulary (merges file or tokenizer folder) when MODEL has none\n"
    "  -s S[,S...]       image sizes in pixels, square (default 512,256)\n"
    "  -r REPS           measured repetitions per test (default 3)\n"
    "  -w N              unmeasured warm-up runs per test (default 1)\n"
    "  --no-cfg          one UNet evaluation per step instead of two\n"
    "  --no-cfg-batch    the two evaluations one after the other, not as one batch\n"
    "  --no-text         do not time the text encoder\n"
    "  --no-unet         do not time the UNet\n"
    "  --no-vae          do not time the VAE decoder\n"
    "  --vae-tile MODE   auto (default), on or off: tiled VAE decoding (KILN_VAE_TILE)\n"
    "  --json            print one JSON object instead of a markdown table\n";

/* Most sizes -s takes. */
#define MAX_SIZES 8

/* Parsed command line. */
struct opts {
    const char *model;          /* -m */
    const char *clip_vocab;     /* --clip-vocab, or NULL */
    int32_t sizes[MAX_SIZES];   /* -s: image sizes in pixels */
    int n_sizes;                /* entries of sizes */
    int32_t reps;               /* -r */
    int32_t warmup;             /* -w */
    bool cfg;                   /* two UNet evaluations per step */
    bool cfg_batch;             /* the two as one batch (kiln__sd_model_load always offers it) */
    bool text;                  /* time the text encoder */
    bool unet;                  /* time the UNet */
    bool vae;                   /* time the VAE decoder */
    const char *vae_tile;       /* --vae-tile value, NULL = leave KILN_VAE_TILE as it is */
    bool json;                  /* --json */
};

/* The kinds of test (see the top of this file). */
enum test_kind { TEST_TEXT, TEST_UNET, TEST_VAE };

/* One test and its samples. */
struct test {
    enum test_kind kind;   /* what is timed */
    int32_t size;          /* image side in pixels (0 for the text encoder) */
    double *seconds;       /* reps wall times (malloc'd) */
    int32_t done;          /* entries of seconds filled */
};

/* What a run needs: the model's networks and reusable buffers. */
struct bench {
    kiln_sd_components comp;  /* the loaded model */
    float *cond, *uncond;     /* contexts [n_ctx][width] from the text encoder (malloc'd) */
    int n_ctx;                /* context rows */
    uint64_t rng;             /* splitmix64 state of the random inputs */
};

static int bad(const char *what, const char *arg) {
    fprintf(stderr, "kiln bench-image: %s '%s'\n%s", what, arg, usage);
    return 2;
}

/* Fill *o from argv; returns -1 to go on, else the exit code. */
static int parse_args(int argc, char **argv, struct opts *o) {
    *o = (struct opts){.reps = 3, .warmup = 1, .cfg = true, .cfg_batch = true, .text = true, .unet = true, .vae = true};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            fputs(usage, stdout);
            return 0;
        }
        if (strcmp(a, "--json") == 0) {
            o->json = true;
            continue;
        }
        if (strcmp(a, "--no-cfg") == 0) {
            o->cfg = false;
            continue;
        }
        if (strcmp(a, "--no-cfg-batch") == 0) {
            o->cfg_batch = false;
            continue;
        }
        if (strcmp(a, "--no-text") == 0) {
            o->text = false;
            continue;
        }
        if (strcmp(a, "--no-unet") == 0) {
            o->unet = false;
            continue;
        }
        if (strcmp(a, "--no-vae") == 0) {
            o->vae = false;
            continue;
        }
        int takes = strcmp(a, "-m") == 0 || strcmp(a, "-s") == 0 || strcmp(a, "-r") == 0 ||
                    strcmp(a, "-w") == 0 || strcmp(a, "--vae-tile") == 0 || strcmp(a, "--clip-vocab") == 0;
        if (!takes) return bad(a[0] == '-' ? "unknown option" : "unexpected argument", a);
        if (i + 1 >= argc) return bad("missing value after", a);
        const char *v = argv[++i];
        if (strcmp(a, "-m") == 0) {
            o->model = v;
        } else if (strcmp(a, "--clip-vocab") == 0) {
            o->clip_vocab = v;
        } else if (strcmp(a, "-s") == 0) {
            if (!kiln__bench_parse_list(v, 8, 8192, o->sizes, &o->n_sizes, MAX_SIZES)) return bad("bad value for", a);
        } else if (strcmp(a, "-r") == 0) {
            if (!kiln__bench_parse_int(v, 1, 1000, &o->reps)) return bad("bad value for", a);
        } else if (strcmp(a, "-w") == 0) {
            if (!kiln__bench_parse_int(v, 0, 100, &o->warmup)) return bad("bad value for", a);
        } else {
            if (strcmp(v, "auto") != 0 && strcmp(v, "on") != 0 && strcmp(v, "off") != 0) {
                fprintf(stderr, "kiln bench-image: --vae-tile takes auto, on or off, not '%s'\n", v);
                return 2;
            }
            o->vae_tile = v;
        }
    }
    if (!o->model) {
        fprintf(stderr, "kiln bench-image: -m MODEL is required\n%s", usage);
        return 2;
    }
    if (o->n_sizes == 0) {
        o->sizes[o->n_sizes++] = 512;
        o->sizes[o->n_sizes++] = 256;
    }
    return -1;
}

/* n values of about unit variance (sum of two uniforms, centred). */
static void fill_random(float *x, size_t n, uint64_t *rng) {
    for (size_t i = 0; i < n; i++) {
        double a = (double)(kiln__bench_next_random(rng) >> 11) / 9007199254740992.0;
        double b = (double)(kiln__bench_next_random(rng) >> 11) / 9007199254740992.0;
        x[i] = (float)((a + b - 1.0) * 2.449489742783178);
    }
}

static void report_error(const char *what, kiln_status st) {
    fprintf(stderr, "kiln bench-image: %s: %s: %s\n", what, kiln_status_str(st), kiln_last_error());
}

/* Test name into buf: "text", "unet512", "vae512". */
static void test_name(const struct test *t, char *buf, size_t len) {
    switch (t->kind) {
    case TEST_TEXT: snprintf(buf, len, "text"); return;
    case TEST_UNET: snprintf(buf, len, "unet%d", (int)t->size); return;
    case TEST_VAE: snprintf(buf, len, "vae%d", (int)t->size); return;
    }
}

/* One timed run of t; *secs is its wall time. */
static kiln_status run_once(struct bench *b, const struct opts *o, const struct test *t, double *secs) {
    const kiln_sd_components *c = &b->comp;
    int s = kiln__sd_vae_scale(c), lh = t->size / s;
    kiln_status st = KILN_OK;
    double t0;
    switch (t->kind) {
    case TEST_TEXT: {
        float *ctx = NULL;
        int n = 0;
        t0 = kiln__cli_now();
        st = c->encode_text(c->user, "a photo of a cat", 0, &ctx, &n);
        *secs = kiln__cli_now() - t0;
        free(ctx);
        return st;
    }
    case TEST_UNET: {
        size_t n_in = (size_t)c->unet_in_channels * (size_t)lh * (size_t)lh;
        size_t n_out = (size_t)KILN_SD_LATENT_CHANNELS * (size_t)lh * (size_t)lh;
        float *x = malloc(n_in * sizeof *x), *y = malloc(2 * n_out * sizeof *y);
        if (!x || !y) {
            free(x);
            free(y);
            fprintf(stderr, "kiln bench-image: out of memory\n");
            return KILN_ERR_OUT_OF_MEMORY;
        }
        fill_random(x, n_in, &b->rng);
        t0 = kiln__cli_now();
        if (o->cfg && o->cfg_batch && c->unet_eval_pair) {
            st = c->unet_eval_pair(c->user, x, lh, lh, 500.0f, b->cond, b->uncond, b->n_ctx, y, y + n_out);
        } else {
            st = c->unet_eval(c->user, x, lh, lh, 500.0f, b->cond, b->n_ctx, y);
            if (st == KILN_OK && o->cfg) st = c->unet_eval(c->user, x, lh, lh, 500.0f, b->uncond, b->n_ctx, y);
        }
        *secs = kiln__cli_now() - t0;
        free(x);
        free(y);
        return st;
    }
    case TEST_VAE: {
        size_t n_lat = (size_t)KILN_SD_LATENT_CHANNELS * (size_t)lh * (size_t)lh;
        size_t n_rgb = 3 * (size_t)lh * (size_t)lh * (size_t)s * (size_t)s;
        float *z = malloc(n_lat * sizeof *z), *rgb = malloc(n_rgb * sizeof *rgb);
        if (!z || !rgb) {
            free(z);
            free(rgb);
            fprintf(stderr, "kiln bench-image: out of memory\n");
            return KILN_ERR_OUT_OF_MEMORY;
        }
        fill_random(z, n_lat, &b->rng);
        t0 = kiln__cli_now();
        st = c->vae_decode(c->user, z, lh, lh, rgb);
        *secs = kiln__cli_now() - t0;
        free(z);
        free(rgb);
        return st;
    }
    }
    return KILN_ERR_INVALID_ARG;
}

/* The markdown row of a finished test. */
static void md_row(const struct opts *o, const struct test *t) {
    char name[32];
    double mean, sd;
    test_name(t, name, sizeof name);
    kiln__bench_mean_sd(t->seconds, t->done, 1.0, false, &mean, &sd);
    const char *what = t->kind == TEST_TEXT ? "text encoder, 77 tokens"
                       : t->kind == TEST_VAE ? "VAE decode"
                       : !o->cfg          ? "UNet step (1 evaluation)"
                       : o->cfg_batch ? "UNet step, CFG (2 evaluations, batched)"
                                          : "UNet step, CFG (2 evaluations)";
    char size[32] = "-";
    if (t->size) snprintf(size, sizeof size, "%dx%d", (int)t->size, (int)t->size);
    printf("| %s | %s | %s | %.3f ± %.3f | %d |\n", name, what, size, mean, sd, (int)t->done);
    fflush(stdout);
}

/* The whole run as one JSON object on stdout; nonzero when out of memory. */
static int print_json(const struct opts *o, const struct test *tests, int n_tests, double load_s,
                      uint64_t rss) {
    int ok = 1;
    json_t *root = json_object(), *arr = json_array();
    if (!root || !arr) {
        json_decref(root);
        json_decref(arr);
        return 1;
    }
    kiln__bench_json_header(root, &ok);
    kiln__bench_json_put(root, "model", json_string(o->model), &ok);
    kiln__bench_json_put(root, "cfg", json_boolean(o->cfg), &ok);
    kiln__bench_json_put(root, "cfg_batch", json_boolean(o->cfg && o->cfg_batch), &ok);
    kiln__bench_json_put(root, "reps", json_integer(o->reps), &ok);
    kiln__bench_json_put(root, "warmup", json_integer(o->warmup), &ok);
    kiln__bench_json_put(root, "threads", json_integer(kiln__cpu_count()), &ok);
    kiln__bench_json_put(root, "load_s", json_real(load_s), &ok);
    for (int i = 0; i < n_tests; i++) {
        const struct test *t = &tests[i];
        json_t *jt = json_object();
        char name[32];
        double mean, sd;
        if (!jt) {
            ok = 0;
            break;
        }
        test_name(t, name, sizeof name);
        kiln__bench_mean_sd(t->seconds, t->done, 1.0, false, &mean, &sd);
        kiln__bench_json_put(jt, "test", json_string(name), &ok);
        kiln__bench_json_put(jt, "size", json_integer(t->size), &ok);
        if (t->kind == TEST_UNET) kiln__bench_json_put(jt, "unet_evals", json_integer(o->cfg ? 2 : 1), &ok);
        kiln__bench_json_put(jt, "samples_s", kiln__bench_json_samples(t->seconds, t->done, &ok), &ok);
        kiln__bench_json_put(jt, "mean_s", json_real(mean), &ok);
        kiln__bench_json_put(jt, "stddev_s", json_real(sd), &ok);
        if (json_array_append_new(arr, jt) != 0) ok = 0;
    }
    kiln__bench_json_put(root, "tests", arr, &ok);
    kiln__bench_json_put(root, "peak_rss_bytes", json_integer((json_int_t)rss), &ok);
    return kiln__bench_json_print(root, ok);
}

/* Warm up, then time every test in order; 0, or 1 after printing why. */
static int run_tests(struct bench *b, const struct opts *o, struct test *tests, int n_tests) {
    if (!o->json) {
        printf("| test | what | size | seconds | reps |\n| --- | --- | --- | ---: | ---: |\n");
        fflush(stdout);
    }
    for (int i = 0; i < n_tests; i++) {
        struct test *t = &tests[i];
        char name[32];
        test_name(t, name, sizeof name);
        t->seconds = malloc((size_t)o->reps * sizeof *t->seconds);
        if (!t->seconds) {
            fprintf(stderr, "kiln bench-image: out of memory\n");
            return 1;
        }
        for (int r = 0; r < o->warmup + o->reps; r++) {
            double secs;
            kiln_status st = run_once(b, o, t, &secs);
            if (st != KILN_OK) {
                report_error(name, st);
                return 1;
            }
            if (r >= o->warmup) t->seconds[t->done++] = secs;
        }
        if (!o->json) md_row(o, t);
    }
    return 0;
}

int kiln_cmd_bench_image(int argc, char **argv) {
    struct opts o;
    int rc = parse_args(argc, argv, &o);
    if (rc >= 0) return rc;
    if (o.vae_tile && setenv("KILN_VAE_TILE", o.vae_tile, 1) != 0) {
        fprintf(stderr, "kiln bench-image: cannot set KILN_VAE_TILE\n");
        return 1;
    }
    struct bench b = {.rng = 42};
    double t0 = kiln__cli_now();
    kiln_status st = kiln__sd_model_load(o.model, o.clip_vocab, &b.comp);
    double load_s = kiln__cli_now() - t0;
    if (st != KILN_OK) {
        fprintf(stderr, "kiln bench-image: cannot load %s: %s: %s\n", o.model, kiln_status_str(st),
                kiln_last_error());
        return 1;
    }
    int scale = kiln__sd_vae_scale(&b.comp);
    struct test tests[1 + 2 * MAX_SIZES];
    int n_tests = 0;
    rc = 0;
    for (int i = 0; i < o.n_sizes; i++)
        if (o.sizes[i] % scale) {
            fprintf(stderr, "kiln bench-image: size %d is not a multiple of the VAE's scale %d\n",
                    (int)o.sizes[i], scale);
            rc = 2;
        }
    if (o.text) tests[n_tests++] = (struct test){TEST_TEXT, 0, NULL, 0};
    if (o.unet)
        for (int i = 0; i < o.n_sizes; i++) tests[n_tests++] = (struct test){TEST_UNET, o.sizes[i], NULL, 0};
    if (o.vae)
        for (int i = 0; i < o.n_sizes; i++) tests[n_tests++] = (struct test){TEST_VAE, o.sizes[i], NULL, 0};
    /* The two contexts of a guided step: a prompt and the empty one. */
    int n_uncond = 0;
    if (rc == 0) st = b.comp.encode_text(b.comp.user, "a photo of a cat", 0, &b.cond, &b.n_ctx);
    if (rc == 0 && st == KILN_OK) st = b.comp.encode_text(b.comp.user, "", 0, &b.uncond, &n_uncond);
    if (rc == 0 && st != KILN_OK) {
        report_error("text encoder", st);
        rc = 1;
    }
    if (rc == 0 && n_uncond != b.n_ctx) {
        fprintf(stderr, "kiln bench-image: the contexts have %d and %d rows\n", b.n_ctx, n_uncond);
        rc = 1;
    }
    if (rc == 0) rc = run_tests(&b, &o, tests, n_tests);
    uint64_t rss = kiln__bench_peak_rss();
    if (rc == 0) {
        if (o.json) {
            rc = print_json(&o, tests, n_tests, load_s, rss);
        } else {
            char features[256];
            kiln__cpu_describe(features, sizeof features);
            printf("\nload %.2f s; peak RSS %.1f MiB (ru_maxrss, whole run); %d threads; %d repetitions after "
                   "%d warm-up; kiln %s; cpu: %s\n",
                   load_s, (double)rss / (1024.0 * 1024.0), kiln__cpu_count(), (int)o.reps, (int)o.warmup,
                   kiln_version(), features[0] ? features : "x86-64");
        }
    }
    for (int i = 0; i < n_tests; i++) free(tests[i].seconds);
    free(b.cond);
    free(b.uncond);
    kiln__sd_model_free(b.comp.user);
    return rc;
}
