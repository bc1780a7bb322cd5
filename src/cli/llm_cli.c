/* src/cli/llm_cli.c - option parsing and model loading for the text-model
 * subcommands. */
#include "cli/llm_cli.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

double kiln__cli_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* A whole decimal integer in [lo, hi]. */
static bool parse_int(const char *s, long long lo, long long hi, long long *out) {
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi) return false;
    *out = v;
    return true;
}

/* A finite number. */
static bool parse_float(const char *s, float *out) {
    char *end;
    errno = 0;
    float v = strtof(s, &end);
    if (errno || end == s || *end || !isfinite(v)) return false;
    *out = v;
    return true;
}

/* One flag: its spelling, the option group it belongs to, what it sets. */
enum flag_kind { F_STR, F_INT, F_FLOAT, F_U64, F_BOOL, F_STOP, F_KV };
struct flag {
    const char *name;     /* "-m", "--temp" */
    unsigned group;       /* LLM_OPT_* bit; 0 = every command */
    enum flag_kind kind;  /* how its value is read */
    size_t offset;        /* field of struct llm_args */
    long long lo, hi;     /* integer range */
};

#define OFF(field) offsetof(struct llm_args, field)
static const struct flag flags[] = {
    {"-m", 0, F_STR, OFF(model), 0, 0},
    {"--model", 0, F_STR, OFF(model), 0, 0},
    {"-p", LLM_OPT_PROMPT, F_STR, OFF(prompt), 0, 0},
    {"--prompt", LLM_OPT_PROMPT, F_STR, OFF(prompt), 0, 0},
    {"-f", LLM_OPT_FILE, F_STR, OFF(file), 0, 0},
    {"--file", LLM_OPT_FILE, F_STR, OFF(file), 0, 0},
    {"--logits", LLM_OPT_LOGITS, F_STR, OFF(logits_out), 0, 0},
    {"--system", LLM_OPT_CHAT, F_STR, OFF(system), 0, 0},
    {"--chat-template", LLM_OPT_CHAT, F_STR, OFF(chat_template), 0, 0},
    {"--no-bos", LLM_OPT_NO_BOS, F_BOOL, OFF(no_bos), 0, 0},
    {"-n", LLM_OPT_GEN, F_INT, OFF(n_predict), 0, INT_MAX},
    {"--n-predict", LLM_OPT_GEN, F_INT, OFF(n_predict), 0, INT_MAX},
    {"--temp", LLM_OPT_GEN, F_FLOAT, OFF(sampling.temperature), 0, 0},
    {"--top-k", LLM_OPT_GEN, F_INT, OFF(sampling.top_k), 0, INT_MAX},
    {"--top-p", LLM_OPT_GEN, F_FLOAT, OFF(sampling.top_p), 0, 0},
    {"--min-p", LLM_OPT_GEN, F_FLOAT, OFF(sampling.min_p), 0, 0},
    {"--repeat-penalty", LLM_OPT_GEN, F_FLOAT, OFF(sampling.repetition_penalty), 0, 0},
    {"--repeat-last-n", LLM_OPT_GEN, F_INT, OFF(sampling.penalty_last_n), -1, INT_MAX},
    {"--presence-penalty", LLM_OPT_GEN, F_FLOAT, OFF(sampling.presence_penalty), 0, 0},
    {"--frequency-penalty", LLM_OPT_GEN, F_FLOAT, OFF(sampling.frequency_penalty), 0, 0},
    {"--seed", LLM_OPT_GEN, F_U64, OFF(sampling.seed), 0, 0},
    {"--stop", LLM_OPT_GEN, F_STOP, 0, 0, 0},
    {"-t", LLM_OPT_RUN, F_INT, OFF(load.n_threads), 0, 512},
    {"--threads", LLM_OPT_RUN, F_INT, OFF(load.n_threads), 0, 512},
    {"-c", LLM_OPT_RUN, F_INT, OFF(load.n_ctx), 0, 1 << 24},
    {"--ctx-size", LLM_OPT_RUN, F_INT, OFF(load.n_ctx), 0, 1 << 24},
    {"-b", LLM_OPT_RUN, F_INT, OFF(load.n_batch), 0, 1 << 16},
    {"--batch-size", LLM_OPT_RUN, F_INT, OFF(load.n_batch), 0, 1 << 16},
    {"--kv", LLM_OPT_RUN, F_KV, OFF(load.kv_type), 0, 0},
    {"--exact-matmul", LLM_OPT_RUN, F_BOOL, OFF(load.exact_matmul), 0, 0},
    {"--mmap", LLM_OPT_RUN, F_BOOL, OFF(load.use_mmap), 0, 0},
    {"--f16-as-bf16", LLM_OPT_RUN, F_BOOL, OFF(load.f16_as_bf16), 0, 0},
};
#undef OFF

static int bad(const char *cmd, const char *usage, const char *what, const char *arg) {
    fprintf(stderr, "kiln %s: %s '%s'\n%s", cmd, what, arg, usage);
    return 2;
}

int kiln__llm_parse_args(int argc, char **argv, unsigned opts, const char *usage, struct llm_args *a) {
    memset(a, 0, sizeof *a);
    a->n_predict = 128;
    a->sampling = kiln_sampling_default_params();
    a->load = kiln_llm_default_params();
    const char *cmd = argv[0];
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0) {
            fputs(usage, stdout);
            return -1;
        }
        const struct flag *f = NULL;
        for (size_t k = 0; k < sizeof flags / sizeof flags[0]; k++)
            if (strcmp(arg, flags[k].name) == 0 && (flags[k].group == 0 || (flags[k].group & opts)))
                f = &flags[k];
        if (!f) return bad(cmd, usage, arg[0] == '-' ? "unknown option" : "unexpected argument", arg);
        char *field = (char *)a + f->offset;
        if (f->kind == F_BOOL) {
            *(bool *)(void *)field = true;
            continue;
        }
        if (i + 1 >= argc) return bad(cmd, usage, "missing value after", arg);
        const char *val = argv[++i];
        long long iv;
        float fv;
        switch (f->kind) {
        case F_STR: *(const char **)(void *)field = val; break;
        case F_BOOL: break;
        case F_INT:
            if (!parse_int(val, f->lo, f->hi, &iv)) return bad(cmd, usage, "bad number for", arg);
            *(int32_t *)(void *)field = (int32_t)iv;
            break;
        case F_U64:
            if (!parse_int(val, 0, LLONG_MAX, &iv)) return bad(cmd, usage, "bad number for", arg);
            *(uint64_t *)(void *)field = (uint64_t)iv;
            break;
        case F_FLOAT:
            if (!parse_float(val, &fv)) return bad(cmd, usage, "bad number for", arg);
            *(float *)(void *)field = fv;
            break;
        case F_STOP:
            if (a->n_stop == KILN_CLI_MAX_STOP) return bad(cmd, usage, "too many stop strings at", val);
            if (!val[0]) return bad(cmd, usage, "empty stop string for", arg);
            a->stop[a->n_stop++] = val;
            break;
        case F_KV:
            if (strcmp(val, "f16") == 0) a->load.kv_type = KILN_KV_F16;
            else if (strcmp(val, "f32") == 0) a->load.kv_type = KILN_KV_F32;
            else return bad(cmd, usage, "--kv takes f16 or f32, not", val);
            break;
        }
    }
    if (!a->model) {
        fprintf(stderr, "kiln %s: -m MODEL is required\n%s", cmd, usage);
        return 2;
    }
    return 0;
}

/* The progress bar: redrawn on stderr when it is a terminal. */
struct bar {
    int last; /* last percentage drawn */
};

static int progress(uint64_t done, uint64_t total, void *user) {
    struct bar *b = user;
    int pct = total ? (int)(done * 100 / total) : 100;
    if (pct == b->last) return 0;
    b->last = pct;
    char cells[41];
    int full = pct * 40 / 100;
    for (int i = 0; i < 40; i++) cells[i] = i < full ? '#' : ' ';
    cells[40] = 0;
    fprintf(stderr, "\rloading [%s] %3d%%", cells, pct);
    if (done == total) fputc('\n', stderr);
    fflush(stderr);
    return 0;
}

kiln_llm *kiln__llm_cli_load(const char *cmd, const struct llm_args *a, bool vocab_only) {
    kiln_llm_params p = a->load;
    p.vocab_only = vocab_only;
    struct bar bar = {-1};
    if (!vocab_only && isatty(STDERR_FILENO)) {
        p.progress = progress;
        p.progress_user = &bar;
    }
    double t0 = kiln__cli_now();
    kiln_llm *m = NULL;
    kiln_status st = kiln_llm_load(a->model, p, &m);
    if (st != KILN_OK) {
        if (bar.last >= 0 && bar.last < 100) fputc('\n', stderr);
        fprintf(stderr, "kiln %s: cannot load %s: %s: %s\n", cmd, a->model, kiln_status_str(st),
                kiln_last_error());
        return NULL;
    }
    if (!vocab_only) {
        kiln_text_caps caps;
        kiln_llm_caps(m, &caps);
        fprintf(stderr, "loaded %s: %s, %s weights, %.1f MiB in %.2f s, context %d\n", a->model,
                kiln_arch_name(kiln_llm_arch(m)), kiln_dtype_name(caps.dtype),
                (double)kiln_llm_weight_bytes(m) / (1024.0 * 1024.0), kiln__cli_now() - t0,
                (int)kiln_llm_n_ctx(m));
    }
    return m;
}

char *kiln__read_text_file(const char *cmd, const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "kiln %s: cannot open %s: %s\n", cmd, path, strerror(errno));
        return NULL;
    }
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    while (buf) {
        n += fread(buf + n, 1, cap - n - 1, f);
        if (n < cap - 1) break;
        char *grown = cap < ((size_t)1 << 30) ? realloc(buf, cap * 2) : NULL;
        if (!grown) {
            free(buf);
            buf = NULL;
            break;
        }
        buf = grown;
        cap *= 2;
    }
    bool err = ferror(f);
    fclose(f);
    if (!buf || err) {
        fprintf(stderr, "kiln %s: cannot read %s%s\n", cmd, path, buf ? "" : " (out of memory or over 1 GiB)");
        free(buf);
        return NULL;
    }
    buf[n] = 0;
    *len = n;
    return buf;
}
