/* src/cli/bench.h - what the parts of `kiln bench` share: the parsed
 * command line, the measured tests, and the two reports (markdown, JSON);
 * and, at the end, the helpers `kiln bench-image` uses too (arguments,
 * random inputs, statistics, JSON pieces, peak RSS).
 *
 * The measurements follow llama-bench's definitions so the numbers of the
 * two tools compare directly:
 *   pp<N>   N prompt tokens (BOS, then random ids) evaluated from an empty
 *           cache in one kiln_llm_eval call (the engine splits it into
 *           batches), logits of the last one; N / seconds.
 *   tg<N>   N single-token evaluations at positions 0..N-1 from an empty
 *           cache (BOS first, then random ids), logits each time;
 *           N / seconds.
 *   ttft<N> time to first token: kiln_llm_generate with N prompt tokens
 *           (same ids as pp) from an empty cache, greedy, max_tokens 1;
 *           the wall time of the call (prompt, logits, one sampled token).
 * Every test runs once unmeasured first (warm-up), then `reps` times.
 */
#ifndef KILN_CLI_BENCH_H
#define KILN_CLI_BENCH_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "kiln/kiln.h"

/* Most values one list flag (-p, -n, -t) takes. */
#define BENCH_MAX_LIST 16

/* Parsed command line of `kiln bench`. */
struct bench_opts {
    const char *model;                   /* -m: GGUF file or HF folder */
    int32_t n_prompt[BENCH_MAX_LIST];    /* -p: prompt sizes (0 entries skipped) */
    int n_n_prompt;                      /* entries of n_prompt */
    int32_t n_gen[BENCH_MAX_LIST];       /* -n: generation lengths (0 entries skipped) */
    int n_n_gen;                         /* entries of n_gen */
    int32_t threads[BENCH_MAX_LIST];     /* -t: thread counts, each a separate load */
    int n_threads;                       /* entries of threads */
    int32_t reps;                        /* -r: measured repetitions per test */
    int32_t ttft;                        /* --ttft: prompt tokens of the TTFT test; 0 = none */
    int32_t n_batch;                     /* -b: prompt tokens per forward pass; 0 = kiln's default */
    kiln_kv_type kv;                     /* --kv: KV cache type */
    bool json;                           /* --json: one JSON object instead of markdown */
    bool exact_matmul;                   /* --exact-matmul: the f32 matmul path (llm.h) */
    bool f16_as_bf16;                    /* --f16-as-bf16: F16 rows rounded to bf16 (llm.h) */
    bool use_mmap;                       /* --mmap: weights read through the file mapping */
};

/* The kinds of test (see the top of this file). */
enum bench_kind { BENCH_PP, BENCH_TG, BENCH_TTFT };

/* One test at one thread count and its samples. */
struct bench_test {
    enum bench_kind kind;  /* what is measured */
    int32_t n_tokens;      /* N of pp<N>, tg<N>, ttft<N> */
    int32_t threads;       /* thread count of the load it ran on */
    double *seconds;       /* reps wall times (malloc'd, owned by the run) */
    int32_t reps;          /* entries of seconds */
};

/* The model as the report describes it. */
struct bench_model {
    const char *path;      /* as given to -m */
    const char *file;      /* its last path component */
    const char *arch;      /* architecture name (static) */
    const char *type;      /* type of most weight matrices (static) */
    uint64_t size_bytes;   /* weight bytes the model reads per token */
    uint64_t n_params;     /* weight elements in the file */
};

/* One load of the model (one per thread count). */
struct bench_load {
    int32_t threads;       /* threads of the load */
    double seconds;        /* wall time of kiln_llm_load (maps and pages in the weights) */
};

/* Everything a run measured. */
struct bench_run {
    struct bench_model model;                    /* what was measured */
    struct bench_test *tests;                    /* n_tests tests, in run order */
    int n_tests;                                 /* entries of tests */
    struct bench_load loads[BENCH_MAX_LIST];     /* one per thread count, in order */
    int n_loads;                                 /* entries of loads */
    int32_t n_ctx;                               /* KV cache length of every load */
    int32_t n_batch;                             /* -b as given (0 = kiln's default) */
    uint64_t peak_rss_bytes;                     /* getrusage ru_maxrss at the end */
};

/* Name of a test: "pp512", "tg128", "ttft512" into buf. */
void kiln__bench_test_name(const struct bench_test *t, char *buf, unsigned len);

/* Warm up once, then time `reps` runs of t on m (t->seconds is allocated
 * here and owned by the caller, also on failure; t->reps counts the
 * finished runs). Random ids come from *rng. Returns 0, or 1 after printing
 * why to stderr. */
int kiln__bench_measure(kiln_llm *m, struct bench_test *t, int32_t reps, uint64_t *rng);

/* Mean and sample standard deviation of a test's tokens per second (pp, tg)
 * or of its milliseconds (ttft). */
void kiln__bench_stats(const struct bench_test *t, double *mean, double *sd);

/* What `kiln bench` and `kiln bench-image` share (bench_common.c and
 * bench_report.c). */

/* A whole decimal integer in [lo, hi] into *out; 1, or 0 when s is not one. */
int kiln__bench_parse_int(const char *s, long lo, long hi, int32_t *out);

/* Append the comma-separated integers of s (each in [lo, hi]) to list,
 * which has *n entries and room for max; 1, or 0 when an item is bad or
 * there are too many. */
int kiln__bench_parse_list(const char *s, long lo, long hi, int32_t *list, int *n, int max);

/* splitmix64: the next seeded random number of *state. */
uint64_t kiln__bench_next_random(uint64_t *state);

/* Peak resident set of the process so far in bytes (getrusage ru_maxrss),
 * 0 when unknown. */
uint64_t kiln__bench_peak_rss(void);

/* Mean and sample standard deviation (n - 1, as llama-bench reports it) of
 * n timed runs in seconds, each counted as scale / seconds when `rate`
 * (tokens per second: scale = tokens) or as seconds * scale otherwise. */
void kiln__bench_mean_sd(const double *seconds, int n, double scale, bool rate, double *mean, double *sd);

/* json_object_set_new that remembers a failure (v NULL included) in *ok. */
void kiln__bench_json_put(json_t *obj, const char *key, json_t *v, int *ok);

/* A JSON report's first keys: kiln_version and cpu_features. */
void kiln__bench_json_header(json_t *root, int *ok);

/* The n seconds as a JSON array (its "samples_s"); NULL with *ok = 0 when
 * out of memory. */
json_t *kiln__bench_json_samples(const double *seconds, int n, int *ok);

/* Print root (taken over) indented on stdout when *ok; 0, or 1 when out of
 * memory before or now. */
int kiln__bench_json_print(json_t *root, int ok);

/* Markdown: the header (before any test ran), one row per finished test,
 * and the footer (loads, TTFT, peak RSS, settings) at the end. */
void kiln__bench_md_header(void);
void kiln__bench_md_row(const struct bench_run *run, const struct bench_test *t);
void kiln__bench_md_footer(const struct bench_run *run, const struct bench_opts *o);

/* The whole run as one JSON object on stdout; nonzero when out of memory. */
int kiln__bench_json(const struct bench_run *run, const struct bench_opts *o);

#endif /* KILN_CLI_BENCH_H */
