/* src/cli/cmd_bench.c - `kiln bench`: prompt-processing and generation
 * speed like llama-bench (pp<N>, tg<N>; definitions in cli/bench.h), plus
 * load time, time to first token and peak RSS, as a markdown table or JSON.
 * Each thread count is a separate load of the model. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/bench.h"
#include "cli/commands.h"
#include "cli/llm_cli.h"
#include "core/cpu.h"
#include "formats/weights.h"

static const char usage[] =
    "usage: kiln bench -m MODEL [options]\n"
    "  -m MODEL          GGUF file or Hugging Face folder\n"
    "  -p N[,N...]       prompt sizes to time (pp<N>; default 512; 0 = none)\n"
    "  -n N[,N...]       generation lengths to time (tg<N>; default 128; 0 = none)\n"
    "  -t T[,T...]       thread counts, one load each (default: all cores)\n"
    "  -r REPS           measured repetitions per test, after one warm-up (default 5)\n"
    "  --ttft N          time to first token after an N-token prompt (default 512 when\n"
    "                    -p includes 512, otherwise 0 = not measured)\n"
    "  -b BATCH          prompt tokens per forward pass (default: kiln's)\n"
    "  --kv f16|f32      KV cache type (default f16)\n"
    "  --exact-matmul    the f32 matmul path for every weight type (llm.h)\n"
    "  --f16-as-bf16     F16 weights rounded to bf16 (lossy opt-in; llm.h)\n"
    "  --mmap            read the weights through the file mapping (default: a copy in\n"
    "                    memory; the load column then times mapping and paging in)\n"
    "  --json            print one JSON object instead of markdown tables\n"
    "Lists take commas and repeated flags (-t 1 -t 2 = -t 1,2). Prompt and generated\n"
    "tokens are random ids (seeded); every test starts from an empty cache.\n";

/* Most tokens one test may ask for. */
#define BENCH_MAX_TOKENS (1 << 20)

static int bad(const char *what, const char *arg) {
    fprintf(stderr, "kiln bench: %s '%s'\n%s", what, arg, usage);
    return 2;
}

/* Append the comma-separated integers of s (each in [lo, hi]) to list. */
static int parse_list(const char *s, long lo, long hi, int32_t *list, int *n) {
    return kiln__bench_parse_list(s, lo, hi, list, n, BENCH_MAX_LIST);
}

/* Parse argv (argv[0] = "bench"). 0 on success, 2 after printing a usage
 * error, -1 after printing the help. */
static int parse_args(int argc, char **argv, struct bench_opts *o) {
    memset(o, 0, sizeof *o);
    o->reps = 5;
    o->ttft = -1;
    o->kv = KILN_KV_F16;
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0) {
            fputs(usage, stdout);
            return -1;
        }
        if (strcmp(arg, "--json") == 0 || strcmp(arg, "--exact-matmul") == 0 || strcmp(arg, "--f16-as-bf16") == 0 ||
            strcmp(arg, "--mmap") == 0) {
            bool *flag = arg[2] == 'j'   ? &o->json
                         : arg[2] == 'e' ? &o->exact_matmul
                         : arg[2] == 'm' ? &o->use_mmap
                                         : &o->f16_as_bf16;
            *flag = true;
            continue;
        }
        int known = !strcmp(arg, "-m") || !strcmp(arg, "--model") || !strcmp(arg, "-p") || !strcmp(arg, "-n") ||
                    !strcmp(arg, "-t") || !strcmp(arg, "-r") || !strcmp(arg, "-b") || !strcmp(arg, "--ttft") ||
                    !strcmp(arg, "--kv");
        if (!known) return bad(arg[0] == '-' ? "unknown option" : "unexpected argument", arg);
        if (i + 1 >= argc) return bad("missing value after", arg);
        const char *val = argv[++i];
        int ok = 1;
        if (!strcmp(arg, "-m") || !strcmp(arg, "--model")) o->model = val;
        else if (!strcmp(arg, "-p")) ok = parse_list(val, 0, BENCH_MAX_TOKENS, o->n_prompt, &o->n_n_prompt);
        else if (!strcmp(arg, "-n")) ok = parse_list(val, 0, BENCH_MAX_TOKENS, o->n_gen, &o->n_n_gen);
        else if (!strcmp(arg, "-t")) ok = parse_list(val, 1, 512, o->threads, &o->n_threads);
        else if (!strcmp(arg, "-r")) ok = kiln__bench_parse_int(val, 1, 1000, &o->reps);
        else if (!strcmp(arg, "-b")) ok = kiln__bench_parse_int(val, 1, 1 << 16, &o->n_batch);
        else if (!strcmp(arg, "--ttft")) ok = kiln__bench_parse_int(val, 0, BENCH_MAX_TOKENS - 1, &o->ttft);
        else if (!strcmp(val, "f16") || !strcmp(val, "f32")) o->kv = val[1] == '1' ? KILN_KV_F16 : KILN_KV_F32; /* --kv */
        else return bad("--kv takes f16 or f32, not", val);
        if (!ok) return bad("bad value for", arg);
    }
    if (!o->model) {
        fprintf(stderr, "kiln bench: -m MODEL is required\n%s", usage);
        return 2;
    }
    /* Defaults of the lists not given: llama-bench's. */
    if (!o->n_n_prompt) o->n_prompt[o->n_n_prompt++] = 512;
    if (!o->n_n_gen) o->n_gen[o->n_n_gen++] = 128;
    if (!o->n_threads) o->threads[o->n_threads++] = kiln__cpu_count();
    if (o->ttft < 0) {
        o->ttft = 0;
        for (int i = 0; i < o->n_n_prompt; i++)
            if (o->n_prompt[i] == 512) o->ttft = 512;
    }
    return 0;
}

/* The tests of one thread count, in run order, appended to run->tests. */
static void plan_tests(const struct bench_opts *o, int32_t threads, struct bench_run *run) {
    for (int i = 0; i < o->n_n_prompt; i++)
        if (o->n_prompt[i] > 0)
            run->tests[run->n_tests++] = (struct bench_test){BENCH_PP, o->n_prompt[i], threads, NULL, 0};
    for (int i = 0; i < o->n_n_gen; i++)
        if (o->n_gen[i] > 0)
            run->tests[run->n_tests++] = (struct bench_test){BENCH_TG, o->n_gen[i], threads, NULL, 0};
    if (o->ttft > 0) run->tests[run->n_tests++] = (struct bench_test){BENCH_TTFT, o->ttft, threads, NULL, 0};
}

/* Weight elements of the model (the params column); 0 after printing why. */
static uint64_t count_params(const char *path) {
    struct kiln_weights *w = NULL;
    kiln_status st = kiln__weights_open(path, &w);
    if (st != KILN_OK) {
        fprintf(stderr, "kiln bench: cannot read the tensors of %s: %s: %s\n", path, kiln_status_str(st),
                kiln_last_error());
        return 0;
    }
    uint64_t n = 0;
    for (size_t i = 0; i < w->n_tensors; i++) n += (uint64_t)w->tensors[i].n_elems;
    kiln__weights_free(w);
    return n;
}

/* Load the model with one thread count (timed) into *out. 0, or 1 after
 * printing why. */
static int load(const struct bench_opts *o, struct bench_run *run, int32_t threads, kiln_llm **out) {
    kiln_llm_params p = kiln_llm_default_params();
    p.n_threads = threads;
    p.n_ctx = run->n_ctx;
    p.n_batch = o->n_batch;
    p.kv_type = o->kv;
    p.exact_matmul = o->exact_matmul;
    p.f16_as_bf16 = o->f16_as_bf16;
    p.use_mmap = o->use_mmap;
    double t0 = kiln__cli_now();
    kiln_status st = kiln_llm_load(o->model, p, out);
    double secs = kiln__cli_now() - t0;
    if (st != KILN_OK) {
        fprintf(stderr, "kiln bench: cannot load %s: %s: %s\n", o->model, kiln_status_str(st), kiln_last_error());
        return 1;
    }
    run->loads[run->n_loads++] = (struct bench_load){threads, secs};
    return 0;
}

/* Fill run->model from the first load. 0, or 1 after printing why. */
static int describe_model(const struct bench_opts *o, kiln_llm *m, struct bench_run *run) {
    kiln_text_caps caps;
    kiln_status st = kiln_llm_caps(m, &caps);
    if (st != KILN_OK) {
        fprintf(stderr, "kiln bench: %s: %s\n", kiln_status_str(st), kiln_last_error());
        return 1;
    }
    const char *slash = strrchr(o->model, '/');
    run->model.path = o->model;
    run->model.file = slash && slash[1] ? slash + 1 : o->model;
    run->model.arch = kiln_arch_name(kiln_llm_arch(m));
    run->model.type = kiln_dtype_name(caps.dtype);
    run->model.size_bytes = kiln_llm_weight_bytes(m);
    run->model.n_params = count_params(o->model);
    return run->model.n_params ? 0 : 1;
}

/* Every load and test, reporting markdown rows as they finish. */
static int run_all(const struct bench_opts *o, struct bench_run *run) {
    uint64_t rng = 1234; /* fixed seed: every run draws the same ids */
    int next = 0;
    for (int l = 0; l < o->n_threads; l++) {
        kiln_llm *m = NULL;
        if (load(o, run, o->threads[l], &m)) return 1;
        if (l == 0) {
            if (describe_model(o, m, run)) {
                kiln_llm_free(m);
                return 1;
            }
            if (!o->json) kiln__bench_md_header();
        }
        plan_tests(o, o->threads[l], run);
        for (; next < run->n_tests; next++) {
            struct bench_test *t = &run->tests[next];
            if (kiln__bench_measure(m, t, o->reps, &rng)) {
                kiln_llm_free(m);
                return 1;
            }
            if (!o->json && t->kind != BENCH_TTFT) kiln__bench_md_row(run, t);
        }
        kiln_llm_free(m);
    }
    return 0;
}

int kiln_cmd_bench(int argc, char **argv) {
    struct bench_opts o;
    int rc = parse_args(argc, argv, &o);
    if (rc) return rc < 0 ? 0 : rc;

    struct bench_run run;
    memset(&run, 0, sizeof run);
    run.n_batch = o.n_batch;
    /* The context holds the longest test (TTFT also samples one token). */
    int per_load = 0;
    run.n_ctx = o.ttft > 0 ? o.ttft + 1 : 1;
    for (int i = 0; i < o.n_n_prompt; i++) {
        per_load += o.n_prompt[i] > 0;
        if (o.n_prompt[i] > run.n_ctx) run.n_ctx = o.n_prompt[i];
    }
    for (int i = 0; i < o.n_n_gen; i++) {
        per_load += o.n_gen[i] > 0;
        if (o.n_gen[i] > run.n_ctx) run.n_ctx = o.n_gen[i];
    }
    per_load += o.ttft > 0;
    if (per_load == 0) {
        fprintf(stderr, "kiln bench: nothing to measure (every -p and -n is 0 and --ttft is 0)\n%s", usage);
        return 2;
    }
    run.tests = calloc((size_t)per_load * (size_t)o.n_threads, sizeof *run.tests);
    if (!run.tests) {
        fprintf(stderr, "kiln bench: out of memory\n");
        return 1;
    }

    rc = run_all(&o, &run);
    if (rc == 0) {
        run.peak_rss_bytes = kiln__bench_peak_rss();
        if (o.json) {
            if (kiln__bench_json(&run, &o)) {
                fprintf(stderr, "kiln bench: out of memory writing the report\n");
                rc = 1;
            }
        } else {
            kiln__bench_md_footer(&run, &o);
        }
    }
    for (int i = 0; i < run.n_tests; i++) free(run.tests[i].seconds);
    free(run.tests);
    return rc;
}
