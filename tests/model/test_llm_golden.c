/* tests/model/test_llm_golden.c - the engine against transformers on the
 * goldens of tests/data/llm (docs/llm-goldens.md): for every model and
 * every GGUF variant (F32, F16, Q8_0, Q4_0, Q4_K) the logits of every
 * position within 1e-4 relative error of the reference run on the
 * dequantized weights, the 32-token greedy continuation identical (through
 * kiln_llm_generate), the Hugging Face folder giving the same logits as the
 * F32 GGUF, and the GGUF and tokenizer.json tokenizers giving the
 * reference prompt ids; the F32 GGUF's whole ~51-token sequence in one
 * batch (the blocked causal attention: GQA, sliding windows) within the same
 * 1e-4. Also the default fast paths (quantized activations) and the opt-in
 * F16-as-BF16 mode within their own bounds. */
#include <jansson.h>
#include <stdlib.h>

#include "kernels/gemm_bf16.h"
#include "kernels/qmatmul.h"
#include "kiln/kiln.h"
#include "llm/llm_internal.h"
#include "test.h"
#include "test_files.h"

#define DATA KILN_SOURCE_DIR "/tests/data/llm"
/* The tolerance of index.json. */
#define REL_ERR 1e-4

static const char *const models[] = {"llama", "llama3", "mistral", "qwen2", "phi2", "phi3", "phi3-longrope"};
static const char *const variants[] = {"f32", "f16", "q8_0", "q4_0", "q4_k"};

/* ids of a JSON array into out (at most cap); returns the count. */
static int json_ids(const json_t *arr, int32_t *out, int cap) {
    size_t i;
    const json_t *v;
    int n = 0;
    json_array_foreach(arr, i, v) if (n < cap) out[n++] = (int32_t)json_integer_value(v);
    return n;
}

/* max |a - ref| / max |ref|. */
static double rel_err(const float *a, const float *ref, size_t n) {
    double num = 0.0, den = 0.0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)ref[i]);
        if (d > num || d != d) num = d;
        if (fabs((double)ref[i]) > den) den = fabs((double)ref[i]);
    }
    return den > 0.0 ? num / den : num;
}

/* Prompt batch of the tests: prompts of ~20 tokens run as two batches,
 * each below the blocked attention's 24 tokens (forward.c). */
#define TEST_BATCH 16
/* A batch that holds a whole reference sequence (51 tokens), so that it runs
 * the blocked causal attention. */
#define WHOLE_BATCH 64

/* A model with the test settings, a context of n_ctx (0 = the model's) and
 * a prompt batch of n_batch tokens. exact: the f32 matmul path (the
 * reference contract); else the default quantized-activation path, with F16
 * weights rounded to bf16 when f16_as_bf16. */
static kiln_llm *load_batch(const char *path, int32_t n_ctx, bool exact, bool f16_as_bf16, bool mapped,
                            int32_t n_batch) {
    kiln_llm_params p = kiln_llm_default_params();
    p.exact_matmul = exact;
    p.f16_as_bf16 = f16_as_bf16;
    p.use_mmap = mapped;
    p.n_threads = 2;
    p.n_ctx = n_ctx;
    p.kv_type = KILN_KV_F32;
    p.n_batch = n_batch;
    kiln_llm *m = NULL;
    if (kiln_llm_load(path, p, &m) != KILN_OK) fprintf(stderr, "  load %s: %s\n", path, kiln_last_error());
    return m;
}

static kiln_llm *load_how(const char *path, int32_t n_ctx, bool exact, bool f16_as_bf16, bool mapped) {
    return load_batch(path, n_ctx, exact, f16_as_bf16, mapped, TEST_BATCH);
}

static kiln_llm *load_mode(const char *path, int32_t n_ctx, bool exact, bool f16_as_bf16) {
    return load_how(path, n_ctx, exact, f16_as_bf16, false);
}
static kiln_llm *load_ctx(const char *path, int32_t n_ctx, bool exact) { return load_mode(path, n_ctx, exact, false); }
static kiln_llm *load(const char *path, bool exact) { return load_ctx(path, 0, exact); }

/* Logits of rows ids[0..n) against the stored file; returns the error. */
static double check_logits(kiln_llm *m, const int32_t *ids, int n, const char *ref_path, int n_vocab) {
    size_t size = 0;
    float *ref = (float *)test_read_file(ref_path, &size);
    float *got = malloc((size_t)n * (size_t)n_vocab * sizeof *got);
    double e = 1.0;
    if (!ref || size != (size_t)n * (size_t)n_vocab * sizeof(float) || !got) {
        fprintf(stderr, "  %s: missing or of the wrong size\n", ref_path);
    } else if (kiln_llm_eval(m, ids, n, 0, KILN_LOGITS_ALL, got) != KILN_OK) {
        fprintf(stderr, "  eval: %s\n", kiln_last_error());
    } else {
        e = rel_err(got, ref, (size_t)n * (size_t)n_vocab);
    }
    free(ref);
    free(got);
    return e;
}

/* Collects generated ids. */
struct ids {
    int32_t v[64];
    int n;
};
static int collect(const char *text, size_t len, int32_t token, void *user) {
    (void)text;
    (void)len;
    struct ids *s = user;
    if (token >= 0 && s->n < 64) s->v[s->n++] = token;
    return 0;
}

/* Greedy continuation through generate; identical to the reference up to
 * its length or the first end-of-sequence token. */
static void check_greedy(kiln_llm *m, const int32_t *prompt, int n_prompt, const int32_t *want, int n_want,
                         const char *what) {
    kiln_generate_params gp = kiln_generate_default_params();
    gp.prompt_tokens = prompt;
    gp.n_prompt_tokens = n_prompt;
    gp.sampling.temperature = 0.0f;
    gp.max_tokens = n_want;
    gp.on_token = collect;
    struct ids got = {.n = 0};
    gp.user = &got;
    kiln_generate_result r;
    kiln_llm_kv_clear(m);
    CHECK_EQ_INT(kiln_llm_generate(m, &gp, &r), KILN_OK);
    int n = got.n;
    if (r.stop_reason == KILN_STOP_EOS) {
        /* the end token itself is not streamed; it must be the reference's next */
        CHECK(n < n_want);
        kiln_text_caps caps;
        kiln_llm_caps(m, &caps);
        bool is_eos = false;
        for (uint32_t i = 0; i < caps.n_eos; i++) is_eos = is_eos || caps.eos_ids[i] == want[n];
        CHECK(is_eos);
    } else {
        CHECK_EQ_INT(r.stop_reason, KILN_STOP_MAX_TOKENS);
        CHECK_EQ_INT(n, n_want);
    }
    int same = 0;
    while (same < n && got.v[same] == want[same]) same++;
    if (same != n) fprintf(stderr, "  %s: greedy differs at step %d\n", what, same);
    CHECK_EQ_INT(same, n);
}

/* The default quantized-activation matmul (exact_matmul false) on a
 * quantized file, against the goldens' second reference, which rounds every
 * matmul input as ggml does (logits-<variant>-ggml_act.f32; the same
 * rounding as kiln's, see docs/llm-goldens.md and qmatmul.h):
 * - logits within FAST_FLIP_ERR of it. The two agree to ~3e-7 when every
 *   activation rounds the same way; when a product lands within float
 *   rounding of a .5 boundary, kiln's summation order can round one
 *   activation the other way, and these random models amplify that single
 *   step to up to 1.3e-2 (measured on the AVX2 and AVX-512 levels). A wrong
 *   scale, offset or group gives errors near 1.
 * - logits within FAST_VS_REF_FACTOR times the distance the ggml-style
 *   rounding itself lands from the plain reference (the golden's
 *   rel_err_vs_reference, 1.4e-2 .. 6e-2 on these models).
 * - each step of that reference's greedy continuation, evaluated as
 *   generation does (the prompt in one batch, then one token at a time, so
 *   both the batch and the one-token kernels run), consistent with
 *   it: the reference's token scores no more than 2 FAST_FLIP_ERR max|logit|
 *   below kiln's best, the most that an error within FAST_FLIP_ERR allows.
 *   (The free-running greedy text is not compared: after a rounding flip it
 *   may take another branch where the reference's top two are close; on
 *   phi2 q4_0 it does at step 4. A wrong kernel fails the bound at once.) */
#define FAST_FLIP_ERR 2e-2
#define FAST_VS_REF_FACTOR 1.5

/* The teacher-forced steps above; returns how many steps kiln's argmax is
 * the reference's token. */
static int check_fast_steps(kiln_llm *m, const int32_t *prompt, int n_prompt, const int32_t *greedy, int n_greedy,
                            int n_vocab, const char *what) {
    int32_t seq[128];
    int n = 0;
    for (int i = 0; i < n_prompt && n < 128; i++) seq[n++] = prompt[i];
    for (int i = 0; i < n_greedy && n < 128; i++) seq[n++] = greedy[i];
    float *l = malloc((size_t)n_vocab * sizeof *l);
    int same = 0, bad = 0;
    kiln_llm_kv_clear(m);
    /* as generation runs: the prompt in one batch, then one token at a time */
    for (int p = n_prompt - 1; l && p + 1 < n; p++) {
        int first = p == n_prompt - 1 ? 0 : p;
        if (kiln_llm_eval(m, seq + first, p + 1 - first, first, KILN_LOGITS_LAST, l) != KILN_OK) {
            fprintf(stderr, "  eval: %s\n", kiln_last_error());
            bad++;
            break;
        }
        int best = 0;
        double amax = 0.0;
        for (int v = 0; v < n_vocab; v++) {
            if (l[v] > l[best]) best = v;
            if (fabs((double)l[v]) > amax) amax = fabs((double)l[v]);
        }
        same += best == seq[p + 1];
        if ((double)l[best] - (double)l[seq[p + 1]] > 2.0 * FAST_FLIP_ERR * amax) {
            fprintf(stderr, "  %s fast: step %d: reference token %d scores %.4g below kiln's best %d\n", what,
                    p + 1 - n_prompt, (int)seq[p + 1], (double)l[best] - (double)l[seq[p + 1]], best);
            bad++;
        }
    }
    CHECK(l != NULL);
    CHECK_EQ_INT(bad, 0);
    free(l);
    return same;
}

/* The weights as loaded (a copy in memory, rewritten into the x16 layout
 * where kiln__qmatmul_x16_ok takes a matrix) against the same file read
 * through its mapping (the file's layout): the layout is really used where
 * it can be, and the logits agree. In the first batch (n_batch = 16 tokens:
 * the GEMM, whose panels the two layouts fill alike) within LAYOUT_ERR;
 * one token at a time, and in the short batch that follows the first (row
 * kernels), the row kernels of the two layouts sum in different orders,
 * and a last-bit difference can flip the rounding of a quantized
 * activation downstream (phi2 q4_0: 1.4e-2; qwen2 q4_0, first token of the
 * second batch: 1.2e-2), so within FAST_FLIP_ERR, like the fast path
 * against the ggml-rounding reference. */
#define LAYOUT_ERR 1e-5 /* float sums in another order; a wrong kernel gives ~1 */
static void check_layouts(kiln_llm *m, const char *path, const int32_t *ids, int n, int n_vocab,
                          const char *what) {
    kiln_llm *f = load_how(path, 0, false, false, true);
    REQUIRE(f);
    int packed = 0;
    for (int il = 0; il < m->hp.n_layer; il++) {
        const struct kiln_wmat *w[] = {&m->layers[il].wq, &m->layers[il].w_up, &m->layers[il].w_down};
        for (int i = 0; i < 3; i++) {
            if (!w[i]->data) continue;
            int ok = kiln__qmatmul_x16_ok(w[i]->dtype, (size_t)w[i]->rows, (size_t)w[i]->cols);
            CHECK_EQ_INT(w[i]->layout, ok ? KILN_QLAYOUT_X16 : KILN_QLAYOUT_ROWS);
            packed += ok;
        }
    }
    CHECK_EQ_INT(f->layers[0].w_down.layout, KILN_QLAYOUT_ROWS);
    float *a = malloc((size_t)n * (size_t)n_vocab * sizeof *a), *b = malloc((size_t)n * (size_t)n_vocab * sizeof *b);
    REQUIRE(a && b);
    kiln_llm_kv_clear(m);
    CHECK_EQ_INT(kiln_llm_eval(m, ids, n, 0, KILN_LOGITS_ALL, a), KILN_OK);
    CHECK_EQ_INT(kiln_llm_eval(f, ids, n, 0, KILN_LOGITS_ALL, b), KILN_OK);
    /* the GEMM's tokens (load_how's batch of 16), then the rest */
    size_t n_gemm = n < 16 ? 0 : 16;
    double e = rel_err(a, b, n_gemm * (size_t)n_vocab);
    double e_rest = rel_err(a + n_gemm * (size_t)n_vocab, b + n_gemm * (size_t)n_vocab,
                            ((size_t)n - n_gemm) * (size_t)n_vocab);
    /* one token at a time: the one-token kernels of both layouts */
    kiln_llm_kv_clear(m);
    kiln_llm_kv_clear(f);
    double e1 = 0.0;
    for (int t = 0; t < n; t++) {
        CHECK_EQ_INT(kiln_llm_eval(m, ids + t, 1, t, KILN_LOGITS_LAST, a), KILN_OK);
        CHECK_EQ_INT(kiln_llm_eval(f, ids + t, 1, t, KILN_LOGITS_LAST, b), KILN_OK);
        double et = rel_err(a, b, (size_t)n_vocab);
        if (et > e1) e1 = et;
    }
    fprintf(stderr, "  %s: %d matrices interleaved by 16 rows; logits vs the mapped file %.2e (batch of 16), "
            "%.2e (the batch after), %.2e (one token at a time)\n", what, packed, e, e_rest, e1);
    CHECK(n_gemm > 0);
    CHECK(e < LAYOUT_ERR);
    CHECK(e_rest < FAST_FLIP_ERR);
    CHECK(e1 < FAST_FLIP_ERR);
    free(a);
    free(b);
    kiln_llm_free(f);
}

static void check_fast(const char *path, const json_t *var, const int32_t *ids, int n, const char *plain_ref,
                       int n_vocab, const int32_t *prompt, int n_prompt, const char *what) {
    const json_t *act = json_object_get(var, "ggml_like_activations");
    REQUIRE(act);
    double ggml_vs_ref = json_number_value(json_object_get(act, "rel_err_vs_reference"));
    int32_t greedy[64];
    int n_greedy = json_ids(json_object_get(act, "greedy_ids"), greedy, 64);
    char ref[1100], dir[512];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    REQUIRE(slash && ggml_vs_ref > 0.0);
    *slash = '\0';
    snprintf(ref, sizeof ref, "%s/%s", dir, json_string_value(json_object_get(act, "logits_file")));
    kiln_llm *m = load(path, false);
    REQUIRE(m);
    double e = check_logits(m, ids, n, ref, n_vocab);
    double e_plain = check_logits(m, ids, n, plain_ref, n_vocab);
    int same = check_fast_steps(m, prompt, n_prompt, greedy, n_greedy, n_vocab, what);
    fprintf(stderr, "  %s fast: logits rel err %.2e vs the ggml-rounding reference, %.2e vs the plain one "
            "(ggml rounding: %.2e); top-1 on %d of its %d greedy steps\n", what, e, e_plain, ggml_vs_ref, same,
            n_greedy);
    CHECK(e < FAST_FLIP_ERR);
    CHECK(e_plain < FAST_VS_REF_FACTOR * ggml_vs_ref);
    check_layouts(m, path, ids, n, n_vocab, what);
    kiln_llm_free(m);
}

/* The opt-in F16-as-BF16 mode (kiln_llm_params.f16_as_bf16) on the F16
 * file, on CPUs with AVX512-BF16: every F16
 * weight and every activation rounded to bfloat16 (8 significant bits), so
 * the logits move at most about as much as Q8_0's weight rounding moves
 * them (measured on these models: 5.3e-3 for phi2 to 2.4e-2 for mistral): within
 * BF16_MODE_ERR of the reference, each greedy step consistent with it as
 * for the quantized fast path (check_fast_steps), and not bit-identical to
 * the exact path (the mode is really on). */
#define BF16_MODE_ERR 5e-2        /* about Q8_0's deviation (1.8e-2 .. 4.7e-2 here); a wrong kernel gives ~1 */
static void check_f16_as_bf16(const char *path, const int32_t *ids, int n, const char *ref, int n_vocab,
                              const int32_t *prompt, int n_prompt, const int32_t *greedy, int n_greedy,
                              const char *what) {
    if (!kiln__gemm_bf16_usable()) {
        fprintf(stderr, "  %s as bf16: skipped (this CPU lacks AVX512-BF16)\n", what);
        return;
    }
    kiln_llm *m = load_mode(path, 0, false, true), *x = load(path, true);
    REQUIRE(m && x);
    double e = check_logits(m, ids, n, ref, n_vocab);
    int same = check_fast_steps(m, prompt, n_prompt, greedy, n_greedy, n_vocab, what);
    float *a = malloc((size_t)n_vocab * sizeof *a), *b = malloc((size_t)n_vocab * sizeof *b);
    REQUIRE(a && b);
    kiln_llm_kv_clear(m);
    CHECK_EQ_INT(kiln_llm_eval(m, ids, n, 0, KILN_LOGITS_LAST, a), KILN_OK);
    CHECK_EQ_INT(kiln_llm_eval(x, ids, n, 0, KILN_LOGITS_LAST, b), KILN_OK);
    CHECK(memcmp(a, b, (size_t)n_vocab * sizeof *a) != 0);
    /* converted once at load (the copy in memory) or rounded on every call
     * (the mapped file): the same bits */
    CHECK_EQ_INT(m->layers[0].w_down.dtype, KILN_DTYPE_BF16);
    kiln_llm *f = load_how(path, 0, false, true, true);
    REQUIRE(f);
    CHECK_EQ_INT(f->layers[0].w_down.dtype, KILN_DTYPE_F16);
    float *c = malloc((size_t)n * (size_t)n_vocab * sizeof *c), *d = malloc((size_t)n * (size_t)n_vocab * sizeof *d);
    REQUIRE(c && d);
    kiln_llm_kv_clear(m);
    CHECK_EQ_INT(kiln_llm_eval(m, ids, n, 0, KILN_LOGITS_ALL, c), KILN_OK);
    CHECK_EQ_INT(kiln_llm_eval(f, ids, n, 0, KILN_LOGITS_ALL, d), KILN_OK);
    CHECK(memcmp(c, d, (size_t)n * (size_t)n_vocab * sizeof *c) == 0);
    kiln_llm_kv_clear(m);
    CHECK_EQ_INT(kiln_llm_eval(m, ids, 1, 0, KILN_LOGITS_LAST, c), KILN_OK);
    CHECK_EQ_INT(kiln_llm_eval(f, ids, 1, 0, KILN_LOGITS_LAST, d), KILN_OK);
    CHECK(memcmp(c, d, (size_t)n_vocab * sizeof *c) == 0);
    free(c);
    free(d);
    kiln_llm_free(f);
    fprintf(stderr, "  %s as bf16: logits rel err %.2e; top-1 on %d of its %d greedy steps\n", what, e, same,
            n_greedy);
    CHECK(e < BF16_MODE_ERR);
    free(a);
    free(b);
    kiln_llm_free(m);
    kiln_llm_free(x);
}

static void check_model(const char *name) {
    char path[512];
    snprintf(path, sizeof path, DATA "/%s/golden.json", name);
    json_error_t jerr;
    json_t *g = json_load_file(path, 0, &jerr);
    if (!g) SKIP_TEST("%s: %s", path, jerr.text);
    int n_vocab = (int)json_integer_value(json_object_get(g, "n_vocab"));
    int32_t prompt[64], seq[128], greedy[64];
    int n_prompt = json_ids(json_object_get(g, "prompt_ids"), prompt, 64);
    const json_t *vars = json_object_get(g, "variants");

    for (size_t v = 0; v < sizeof variants / sizeof variants[0]; v++) {
        const json_t *var = json_object_get(vars, variants[v]);
        REQUIRE(var);
        int n_seq = json_ids(json_object_get(var, "sequence_ids"), seq, 128);
        int n_greedy = json_ids(json_object_get(var, "greedy_ids"), greedy, 64);
        bool rows_seq = strcmp(json_string_value(json_object_get(var, "logits_rows_are")), "sequence_ids") == 0;
        snprintf(path, sizeof path, DATA "/%s/%s", name, json_string_value(json_object_get(var, "gguf")));
        kiln_llm *m = load(path, true);
        REQUIRE(m);
        CHECK_EQ_INT(kiln_llm_n_vocab(m), n_vocab);
        char ref[512];
        snprintf(ref, sizeof ref, DATA "/%s/%s", name, json_string_value(json_object_get(var, "logits_file")));
        double e = check_logits(m, rows_seq ? seq : prompt, rows_seq ? n_seq : n_prompt, ref, n_vocab);
        fprintf(stderr, "  %s %s: logits rel err %.2e\n", name, variants[v], e);
        CHECK(e < REL_ERR);
        char what[64];
        snprintf(what, sizeof what, "%s %s", name, variants[v]);
        check_greedy(m, prompt, n_prompt, greedy, n_greedy, what);
        if (strncmp(variants[v], "q", 1) == 0)
            check_fast(path, var, rows_seq ? seq : prompt, rows_seq ? n_seq : n_prompt, ref, n_vocab, prompt,
                       n_prompt, what);
        if (strcmp(variants[v], "f16") == 0)
            check_f16_as_bf16(path, rows_seq ? seq : prompt, rows_seq ? n_seq : n_prompt, ref, n_vocab, prompt,
                              n_prompt, greedy, n_greedy, what);

        if (v == 0) {
            /* the tokenizer from the GGUF metadata gives the reference prompt */
            const json_t *tok = json_object_get(g, "tokenizer");
            const char *text = json_string_value(json_object_get(tok, "text"));
            int32_t ids[128];
            size_t n = 0;
            CHECK_EQ_INT(kiln_llm_tokenize(m, text, strlen(text), true, true, ids, 128, &n), KILN_OK);
            CHECK_EQ_INT(n, n_prompt);
            CHECK(n == (size_t)n_prompt && memcmp(ids, prompt, n * sizeof *ids) == 0);
        }
        kiln_llm_free(m);

        if (v == 0 && rows_seq) {
            /* the whole sequence in one batch: the blocked causal attention
             * (GQA, sliding window where the model has one) against the
             * reference's logits of every row */
            kiln_llm *w = load_batch(path, 0, true, false, false, WHOLE_BATCH);
            REQUIRE(w);
            CHECK(n_seq >= 24 && n_seq <= WHOLE_BATCH);
            double ew = check_logits(w, seq, n_seq, ref, n_vocab);
            fprintf(stderr, "  %s %s, %d tokens in one batch: logits rel err %.2e\n", name, variants[v], n_seq, ew);
            CHECK(ew < REL_ERR);
            kiln_llm_free(w);
        }

        if (v == 0) {
            /* the same weights from the Hugging Face folder */
            snprintf(path, sizeof path, DATA "/%s/hf", name);
            kiln_llm *h = load(path, true);
            REQUIRE(h);
            /* the tokenizer from tokenizer.json gives the reference prompt */
            const json_t *tok = json_object_get(g, "tokenizer");
            const char *text = json_string_value(json_object_get(tok, "text"));
            int32_t ids[128];
            size_t n = 0;
            kiln_status ts = kiln_llm_tokenize(h, text, strlen(text), true, true, ids, 128, &n);
            CHECK_EQ_INT(ts, KILN_OK);
            CHECK(n == (size_t)n_prompt && memcmp(ids, prompt, n * sizeof *ids) == 0);
            double eh = check_logits(h, seq, n_seq, ref, n_vocab);
            fprintf(stderr, "  %s hf: logits rel err %.2e\n", name, eh);
            CHECK(eh < REL_ERR);
            snprintf(what, sizeof what, "%s hf", name);
            check_greedy(h, prompt, n_prompt, greedy, n_greedy, what);
            kiln_llm_free(h);
        }
    }

    /* extra files (phi2's fused qkv) share the f32 logits */
    const json_t *extra = json_object_get(g, "extra_files");
    const char *file;
    const json_t *info;
    json_object_foreach((json_t *)extra, file, info) {
        (void)info;
        const json_t *var = json_object_get(vars, "f32");
        int n_seq = json_ids(json_object_get(var, "sequence_ids"), seq, 128);
        snprintf(path, sizeof path, DATA "/%s/%s", name, file);
        kiln_llm *m = load(path, true);
        REQUIRE(m);
        char ref[512];
        snprintf(ref, sizeof ref, DATA "/%s/logits-f32.f32", name);
        double e = check_logits(m, seq, n_seq, ref, n_vocab);
        fprintf(stderr, "  %s %s: logits rel err %.2e\n", name, file, e);
        CHECK(e < REL_ERR);
        kiln_llm_free(m);
    }

    /* longrope: a context within the pretrained one runs the short factors
     * (the reference: the f32 model over that many tokens); both the GGUF
     * and the HF folder */
    const json_t *lr = json_object_get(g, "longrope_short");
    if (lr) {
        int32_t n_ctx = (int32_t)json_integer_value(json_object_get(lr, "n_ctx"));
        int n_short = json_ids(json_object_get(lr, "sequence_ids"), seq, 128);
        /* the short factors must make a difference the check can see */
        CHECK(json_real_value(json_object_get(lr, "rel_err_vs_long")) > 100 * REL_ERR);
        char ref[512];
        snprintf(ref, sizeof ref, DATA "/%s/%s", name, json_string_value(json_object_get(lr, "logits_file")));
        const char *files[] = {json_string_value(json_object_get(json_object_get(vars, "f32"), "gguf")), "hf"};
        for (int i = 0; i < 2; i++) {
            snprintf(path, sizeof path, DATA "/%s/%s", name, files[i]);
            kiln_llm *m = load_ctx(path, n_ctx, true);
            REQUIRE(m);
            CHECK_EQ_INT(kiln_llm_n_ctx(m), n_ctx);
            CHECK_EQ_INT(n_short, n_ctx);
            double e = check_logits(m, seq, n_short, ref, n_vocab);
            fprintf(stderr, "  %s %s, context %d (short factors): logits rel err %.2e\n", name, files[i],
                    (int)n_ctx, e);
            CHECK(e < REL_ERR);
            kiln_llm_free(m);
        }
    }
    json_decref(g);
}

static void test_llama(void) { check_model(models[0]); }
static void test_llama3(void) { check_model(models[1]); }
static void test_mistral(void) { check_model(models[2]); }
static void test_qwen2(void) { check_model(models[3]); }
static void test_phi2(void) { check_model(models[4]); }
static void test_phi3(void) { check_model(models[5]); }
static void test_phi3_longrope(void) { check_model(models[6]); }

int main(void) {
    RUN(test_llama);
    RUN(test_llama3);
    RUN(test_mistral);
    RUN(test_qwen2);
    RUN(test_phi2);
    RUN(test_phi3);
    RUN(test_phi3_longrope);
    return TEST_REPORT();
}
