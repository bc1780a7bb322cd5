/* tests/model/test_worker_llm.c - the worker daemon on a real (tiny, random)
 * model through the LLM engine: the golden llama model from tests/data/llm
 * served in process on a loopback port. The text the daemon returns, by the
 * OpenAI route and by an rbee stream, must be the engine's detokenization of
 * the reference greedy continuation (made by transformers); the prompt is
 * counted as the reference tokenizer did; the context is enforced. Prompts
 * long enough to be evaluated in chunks (so that a client going away can
 * cancel them) must give what the engine's own generate gives. */
#include "http_client.h" /* first: it sets _GNU_SOURCE */

#include <jansson.h>

#include "core/log.h"
#include "kiln/kiln.h"
#include "worker/backend.h"
#include "worker/buf.h"
#include "worker/server.h"
#include "test.h"

#define MODEL_DIR KILN_SOURCE_DIR "/tests/data/llm/llama"

static struct kiln__worker *srv;
static int port;

/* The body of r as JSON, or NULL. */
static json_t *body_json(const struct tc_resp *r) { return r->body ? json_loadb(r->body, r->body_len, 0, NULL) : NULL; }

/* The expected text: the engine's detokenization of the first n reference
 * greedy ids, with invalid UTF-8 shown as U+FFFD as the daemon sends it. */
static char *expected_text(json_t *golden, size_t n) {
    json_t *ids = json_object_get(json_object_get(json_object_get(golden, "variants"), "f32"), "greedy_ids");
    if (json_array_size(ids) < n) return NULL;
    int32_t tok[64];
    for (size_t i = 0; i < n; i++) tok[i] = (int32_t)json_integer_value(json_array_get(ids, i));
    kiln_llm_params p = kiln_llm_default_params();
    p.vocab_only = true;
    kiln_llm *m = NULL;
    if (kiln_llm_load(MODEL_DIR "/llama-f32.gguf", p, &m) != KILN_OK) return NULL;
    char raw[1024];
    size_t len = 0;
    kiln_status st = kiln_llm_detokenize(m, tok, n, false, raw, sizeof raw, &len);
    kiln_llm_free(m);
    if (st != KILN_OK) return NULL;
    struct kiln__buf out = {0};
    kiln__buf_append_utf8(&out, raw, len);
    return out.data;
}

/* Gathers the engine's streamed text (the oracle for long prompts). */
static int gather(const char *text, size_t len, int32_t token, void *user) {
    (void)token;
    kiln__buf_append(user, text, len);
    return 0;
}

/* The engine's greedy continuation of prompt (max_tokens), from a fresh
 * handle, as the daemon would send it (invalid UTF-8 as U+FFFD). */
static char *engine_text(const char *prompt, int32_t max_tokens) {
    kiln_llm_params p = kiln_llm_default_params();
    p.n_threads = 2;
    kiln_llm *m = NULL;
    if (kiln_llm_load(MODEL_DIR "/llama-f32.gguf", p, &m) != KILN_OK) return NULL;
    struct kiln__buf raw = {0}, out = {0};
    kiln_generate_params gp = kiln_generate_default_params();
    gp.prompt = prompt;
    gp.sampling.temperature = 0;
    gp.max_tokens = max_tokens;
    gp.on_token = gather;
    gp.user = &raw;
    kiln_status st = kiln_llm_generate(m, &gp, NULL);
    kiln_llm_free(m);
    kiln__buf_append_utf8(&out, raw.data ? raw.data : "", raw.len);
    kiln__buf_free(&raw);
    if (st != KILN_OK) {
        kiln__buf_free(&out);
        return NULL;
    }
    return out.data ? out.data : strdup("");
}

/* The daemon's greedy completion text of prompt. */
static char *daemon_text(const char *prompt, int32_t max_tokens, int32_t *prompt_tokens) {
    json_t *req = json_pack("{s:s, s:i, s:f}", "prompt", prompt, "max_tokens", (json_int_t)max_tokens,
                            "temperature", 0.0);
    char *body = json_dumps(req, JSON_COMPACT);
    json_decref(req);
    struct tc_resp r;
    tc_request(port, "POST", "/v1/completions", NULL, body, &r);
    free(body);
    json_t *j = r.status == 200 ? body_json(&r) : NULL;
    const char *text = json_string_value(json_object_get(json_array_get(json_object_get(j, "choices"), 0), "text"));
    char *out = text ? strdup(text) : NULL;
    *prompt_tokens = (int32_t)json_integer_value(json_object_get(json_object_get(j, "usage"), "prompt_tokens"));
    json_decref(j);
    tc_resp_free(&r);
    return out;
}

static void test_llm_daemon(void) {
    json_error_t e;
    json_t *golden = json_load_file(MODEL_DIR "/golden.json", 0, &e);
    if (!golden) SKIP_TEST("no %s/golden.json", MODEL_DIR);
    const char *text = json_string_value(json_object_get(json_object_get(golden, "tokenizer"), "text"));
    size_t n_prompt = json_array_size(json_object_get(json_object_get(golden, "tokenizer"), "text_ids"));
    REQUIRE(text && n_prompt > 0);
    char *want = expected_text(golden, 16);
    REQUIRE(want != NULL);

    struct kiln__worker_config cfg;
    kiln__worker_config_defaults(&cfg);
    cfg.port = 0;
    cfg.threads = 2;
    struct kiln__backend b;
    REQUIRE(kiln__backend_llm_create(MODEL_DIR "/llama-f32.gguf", 2, 0, &b) == KILN_OK);
    REQUIRE(kiln__worker_start(&cfg, &b, &srv) == KILN_OK);
    port = kiln__worker_port(srv);
    for (int i = 0; i < 500 && kiln__worker_get_phase(srv) == KILN__PHASE_LOADING; i++) tc_sleep_ms(10);
    REQUIRE(kiln__worker_get_phase(srv) == KILN__PHASE_READY);

    struct tc_resp r;
    tc_request(port, "GET", "/ready", NULL, NULL, &r);
    json_t *j = body_json(&r);
    json_t *model = json_object_get(j, "model");
    CHECK_EQ_STR(json_string_value(json_object_get(model, "id")), "llama-f32");
    CHECK_EQ_STR(json_string_value(json_object_get(model, "family")), "llama");
    CHECK_EQ_INT(json_integer_value(json_object_get(model, "context_length")), 128);
    json_decref(j);
    tc_resp_free(&r);

    /* OpenAI completion, greedy. */
    json_t *req = json_pack("{s:s, s:i, s:f}", "prompt", text, "max_tokens", 16, "temperature", 0.0);
    char *body = json_dumps(req, JSON_COMPACT);
    tc_request(port, "POST", "/v1/completions", NULL, body, &r);
    CHECK_EQ_INT(r.status, 200);
    j = body_json(&r);
    json_t *choice = json_array_get(json_object_get(j, "choices"), 0);
    CHECK_EQ_STR(json_string_value(json_object_get(choice, "text")), want);
    CHECK_EQ_STR(json_string_value(json_object_get(choice, "finish_reason")), "length");
    CHECK_EQ_INT(json_integer_value(json_object_get(json_object_get(j, "usage"), "prompt_tokens")), n_prompt);
    CHECK_EQ_INT(json_integer_value(json_object_get(json_object_get(j, "usage"), "completion_tokens")), 16);
    json_decref(j);
    tc_resp_free(&r);
    free(body);

    /* The same through an rbee job and its stream. */
    body = json_dumps(req, JSON_COMPACT);
    tc_request(port, "POST", "/v1/jobs", NULL, body, &r);
    CHECK_EQ_INT(r.status, 200);
    j = body_json(&r);
    char path[128];
    snprintf(path, sizeof path, "%s", json_string_value(json_object_get(j, "sse_url")));
    json_decref(j);
    tc_resp_free(&r);
    free(body);
    tc_request(port, "GET", path, NULL, NULL, &r);
    CHECK_EQ_INT(r.status, 200);
    struct kiln__buf streamed = {0};
    int tokens_out = -1;
    for (const char *p = r.body; p && (p = strstr(p, "data: {")); p++) {
        const char *end = strstr(p, "\n\n");
        json_t *ev = end ? json_loadb(p + 6, (size_t)(end - p - 6), 0, NULL) : NULL;
        const char *type = json_string_value(json_object_get(ev, "type"));
        if (type && strcmp(type, "token") == 0) kiln__buf_puts(&streamed, json_string_value(json_object_get(ev, "t")));
        if (type && strcmp(type, "end") == 0) tokens_out = (int)json_integer_value(json_object_get(ev, "tokens_out"));
        json_decref(ev);
    }
    CHECK_EQ_STR(streamed.data ? streamed.data : "", want);
    CHECK_EQ_INT(tokens_out, 16);
    kiln__buf_free(&streamed);
    tc_resp_free(&r);
    json_decref(req);

    /* Prompts of 70 to 100 tokens (evaluated in chunks of 64 before
     * generating), one after another so the second reuses part of the
     * first's cache: each gives what the engine alone gives. */
    static const char *const words[] = {"the", "cat", "sat", "on", "mat", "and"};
    struct kiln__buf p1 = {0}, p2 = {0};
    for (int i = 0; i < 38; i++) kiln__buf_printf(&p1, "%s %s ", words[i % 6], words[(i * 5 + 1) % 6]);
    for (int i = 0; i < 36; i++) /* the same first 8 pairs, then others */
        kiln__buf_printf(&p2, "%s %s ", words[i % 6], words[(i < 8 ? i * 5 + 1 : i * 7 + 2) % 6]);
    const char *prompts[] = {p1.data, p2.data, p1.data};
    for (int i = 0; i < 3; i++) {
        int32_t n = 0;
        char *got = daemon_text(prompts[i], 8, &n);
        char *oracle = engine_text(prompts[i], 8);
        CHECK(n > 64 + 1 && n < 110); /* long enough for the chunked path */
        REQUIRE(got && oracle);
        CHECK_EQ_STR(got, oracle);
        free(got);
        free(oracle);
    }
    kiln__buf_free(&p1);
    kiln__buf_free(&p2);

    /* Too long for the context of 128: refused before it is queued. */
    struct kiln__buf longp = {0};
    for (int i = 0; i < 150; i++) kiln__buf_puts(&longp, "the cat ");
    req = json_pack("{s:s}", "prompt", longp.data);
    body = json_dumps(req, JSON_COMPACT);
    tc_request(port, "POST", "/v1/completions", NULL, body, &r);
    CHECK_EQ_INT(r.status, 400);
    CHECK(r.body && strstr(r.body, "context_length_exceeded"));
    tc_resp_free(&r);
    free(body);
    json_decref(req);
    kiln__buf_free(&longp);

    /* Chat goes through the model's chat format; max_tokens is clamped to
     * the room left in the context. */
    tc_request(port, "POST", "/v1/chat/completions", NULL,
               "{\"messages\":[{\"role\":\"system\",\"content\":\"be brief\"},{\"role\":\"user\",\"content\":\"the cat\"}],"
               "\"max_tokens\":5000,\"temperature\":0}", &r);
    CHECK_EQ_INT(r.status, 200);
    j = body_json(&r);
    json_t *usage = json_object_get(j, "usage");
    CHECK(json_integer_value(json_object_get(usage, "prompt_tokens")) > 3);
    CHECK(json_integer_value(json_object_get(usage, "total_tokens")) <= 128);
    json_decref(j);
    tc_resp_free(&r);
    tc_request(port, "POST", "/v1/chat/completions", NULL, "{\"messages\":[{\"role\":\"tool\",\"content\":\"x\"}]}", &r);
    CHECK_EQ_INT(r.status, 400);
    tc_resp_free(&r);

    kiln__worker_stop(srv);
    free(want);
    json_decref(golden);
}

int main(void) {
    if (!getenv("KILN_LOG_LEVEL")) kiln__log_set_level(KILN_LOG_ERROR);
    RUN(test_llm_daemon);
    return TEST_REPORT();
}
