/* src/cli/bench_report.c - the reports of `kiln bench`: a markdown table
 * like llama-bench's (rows printed as tests finish) with a footer for load
 * time, time to first token and peak RSS, or one JSON object; and the
 * statistics and JSON pieces `kiln bench-image` reports with too. */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "cli/bench.h"
#include "core/cpu.h"

void kiln__bench_test_name(const struct bench_test *t, char *buf, unsigned len) {
    const char *prefix = "pp";
    switch (t->kind) {
    case BENCH_PP: prefix = "pp"; break;
    case BENCH_TG: prefix = "tg"; break;
    case BENCH_TTFT: prefix = "ttft"; break;
    }
    snprintf(buf, len, "%s%d", prefix, (int)t->n_tokens);
}

void kiln__bench_mean_sd(const double *seconds, int n, double scale, bool rate, double *mean, double *sd) {
    double sum = 0, sq = 0;
    for (int i = 0; i < n; i++) sum += rate ? scale / seconds[i] : seconds[i] * scale;
    *mean = n ? sum / n : 0;
    for (int i = 0; i < n; i++) {
        double d = (rate ? scale / seconds[i] : seconds[i] * scale) - *mean;
        sq += d * d;
    }
    *sd = n > 1 ? sqrt(sq / (n - 1)) : 0;
}

void kiln__bench_stats(const struct bench_test *t, double *mean, double *sd) {
    /* tokens per second, or milliseconds for TTFT */
    if (t->kind == BENCH_TTFT) kiln__bench_mean_sd(t->seconds, t->reps, 1e3, false, mean, sd);
    else kiln__bench_mean_sd(t->seconds, t->reps, (double)t->n_tokens, true, mean, sd);
}

/* "1.02 GiB" / "590.35 MiB". */
static void format_size(uint64_t bytes, char *buf, unsigned len) {
    double gib = (double)bytes / (1024.0 * 1024.0 * 1024.0);
    if (gib >= 1) snprintf(buf, len, "%.2f GiB", gib);
    else snprintf(buf, len, "%.2f MiB", (double)bytes / (1024.0 * 1024.0));
}

/* "1.10 B" / "24.51 M". */
static void format_params(uint64_t n, char *buf, unsigned len) {
    if (n >= 1000000000u) snprintf(buf, len, "%.2f B", (double)n / 1e9);
    else snprintf(buf, len, "%.2f M", (double)n / 1e6);
}

void kiln__bench_md_header(void) {
    printf("| model | size | params | type | threads | test | t/s |\n");
    printf("| --- | ---: | ---: | --- | ---: | ---: | ---: |\n");
    fflush(stdout);
}

void kiln__bench_md_row(const struct bench_run *run, const struct bench_test *t) {
    char size[32], params[32], name[32];
    double mean, sd;
    format_size(run->model.size_bytes, size, sizeof size);
    format_params(run->model.n_params, params, sizeof params);
    kiln__bench_test_name(t, name, sizeof name);
    kiln__bench_stats(t, &mean, &sd);
    printf("| %s | %s | %s | %s | %d | %s | %.2f ± %.2f |\n", run->model.file, size, params, run->model.type,
           (int)t->threads, name, mean, sd);
    fflush(stdout);
}

void kiln__bench_md_footer(const struct bench_run *run, const struct bench_opts *o) {
    /* Per load: its time, and the TTFT measured on it. */
    printf("\n| threads | load (s) |");
    if (o->ttft) printf(" ttft%d (ms) |", (int)o->ttft);
    printf("\n| ---: | ---: |%s\n", o->ttft ? " ---: |" : "");
    for (int l = 0; l < run->n_loads; l++) {
        printf("| %d | %.3f |", (int)run->loads[l].threads, run->loads[l].seconds);
        for (int i = 0; i < run->n_tests; i++) {
            const struct bench_test *t = &run->tests[i];
            if (t->kind != BENCH_TTFT || t->threads != run->loads[l].threads) continue;
            double mean, sd;
            kiln__bench_stats(t, &mean, &sd);
            printf(" %.2f ± %.2f |", mean, sd);
        }
        printf("\n");
    }
    char features[256];
    kiln__cpu_describe(features, sizeof features);
    char batch[32] = "kiln's default";
    if (run->n_batch) snprintf(batch, sizeof batch, "%d", (int)run->n_batch);
    const char *matmul = o->exact_matmul ? "exact f32" : o->f16_as_bf16 ? "default, F16 as bf16" : "default";
    printf("\npeak RSS %.1f MiB (ru_maxrss, whole run); KV cache %s, context %d, batch %s, matmul %s, weights %s; "
           "%d repetitions after a warm-up; kiln %s; cpu: %s\n",
           (double)run->peak_rss_bytes / (1024.0 * 1024.0), o->kv == KILN_KV_F32 ? "f32" : "f16",
           (int)run->n_ctx, batch, matmul, o->use_mmap ? "file mapping" : "copied into memory", (int)o->reps, kiln_version(), features[0] ? features : "x86-64");
    fflush(stdout);
}

void kiln__bench_json_put(json_t *obj, const char *key, json_t *v, int *ok) {
    if (!v || json_object_set_new(obj, key, v) != 0) *ok = 0;
}

void kiln__bench_json_header(json_t *root, int *ok) {
    char features[256];
    kiln__cpu_describe(features, sizeof features);
    kiln__bench_json_put(root, "kiln_version", json_string(kiln_version()), ok);
    kiln__bench_json_put(root, "cpu_features", json_string(features), ok);
}

json_t *kiln__bench_json_samples(const double *seconds, int n, int *ok) {
    json_t *samples = json_array();
    if (!samples) *ok = 0;
    for (int i = 0; samples && i < n; i++)
        if (json_array_append_new(samples, json_real(seconds[i])) != 0) *ok = 0;
    return samples;
}

int kiln__bench_json_print(json_t *root, int ok) {
    char *text = ok ? json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(9)) : NULL;
    json_decref(root);
    if (!text) return 1;
    puts(text);
    free(text);
    return 0;
}

/* One test as a JSON object. */
static json_t *test_json(const struct bench_test *t, int *ok) {
    json_t *o = json_object();
    char name[32];
    double mean, sd;
    if (!o) {
        *ok = 0;
        return NULL;
    }
    kiln__bench_test_name(t, name, sizeof name);
    kiln__bench_stats(t, &mean, &sd);
    kiln__bench_json_put(o, "test", json_string(name), ok);
    kiln__bench_json_put(o, "n_tokens", json_integer(t->n_tokens), ok);
    kiln__bench_json_put(o, "threads", json_integer(t->threads), ok);
    kiln__bench_json_put(o, "samples_s", kiln__bench_json_samples(t->seconds, t->reps, ok), ok);
    kiln__bench_json_put(o, t->kind == BENCH_TTFT ? "avg_ms" : "avg_ts", json_real(mean), ok);
    kiln__bench_json_put(o, t->kind == BENCH_TTFT ? "stddev_ms" : "stddev_ts", json_real(sd), ok);
    return o;
}

int kiln__bench_json(const struct bench_run *run, const struct bench_opts *o) {
    int ok = 1;
    json_t *root = json_object(), *model = json_object(), *settings = json_object();
    json_t *loads = json_array(), *tests = json_array();
    if (!root || !model || !settings || !loads || !tests) {
        json_decref(root);
        json_decref(model);
        json_decref(settings);
        json_decref(loads);
        json_decref(tests);
        return 1;
    }
    kiln__bench_json_header(root, &ok);

    kiln__bench_json_put(model, "path", json_string(run->model.path), &ok);
    kiln__bench_json_put(model, "file", json_string(run->model.file), &ok);
    kiln__bench_json_put(model, "arch", json_string(run->model.arch), &ok);
    kiln__bench_json_put(model, "type", json_string(run->model.type), &ok);
    kiln__bench_json_put(model, "size_bytes", json_integer((json_int_t)run->model.size_bytes), &ok);
    kiln__bench_json_put(model, "n_params", json_integer((json_int_t)run->model.n_params), &ok);
    kiln__bench_json_put(root, "model", model, &ok);

    kiln__bench_json_put(settings, "kv_type", json_string(o->kv == KILN_KV_F32 ? "f32" : "f16"), &ok);
    kiln__bench_json_put(settings, "n_ctx", json_integer(run->n_ctx), &ok);
    /* null: kiln's default batch */
    kiln__bench_json_put(settings, "n_batch", run->n_batch ? json_integer(run->n_batch) : json_null(), &ok);
    kiln__bench_json_put(settings, "reps", json_integer(o->reps), &ok);
    kiln__bench_json_put(settings, "exact_matmul", json_boolean(o->exact_matmul), &ok);
    kiln__bench_json_put(settings, "f16_as_bf16", json_boolean(o->f16_as_bf16), &ok);
    kiln__bench_json_put(settings, "mmap", json_boolean(o->use_mmap), &ok);
    kiln__bench_json_put(root, "settings", settings, &ok);

    for (int l = 0; l < run->n_loads; l++) {
        json_t *ld = json_object();
        if (!ld) {
            ok = 0;
            break;
        }
        kiln__bench_json_put(ld, "threads", json_integer(run->loads[l].threads), &ok);
        kiln__bench_json_put(ld, "seconds", json_real(run->loads[l].seconds), &ok);
        if (json_array_append_new(loads, ld) != 0) ok = 0;
    }
    kiln__bench_json_put(root, "loads", loads, &ok);
    for (int i = 0; i < run->n_tests; i++) {
        json_t *t = test_json(&run->tests[i], &ok);
        if (!t || json_array_append_new(tests, t) != 0) ok = 0;
    }
    kiln__bench_json_put(root, "tests", tests, &ok);
    kiln__bench_json_put(root, "peak_rss_bytes", json_integer((json_int_t)run->peak_rss_bytes), &ok);

    return kiln__bench_json_print(root, ok);
}
