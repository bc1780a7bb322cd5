/* tests/unit/test_worker_parts.c - the worker daemon's parts without HTTP:
 * JSON escaping, request validation, SSE events, flags and environment,
 * URLs, the test backend, the job registry and metrics. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "worker/backend.h"
#include "worker/buf.h"
#include "worker/config.h"
#include "worker/httpc.h"
#include "worker/jobs.h"
#include "worker/metrics.h"
#include "worker/request.h"
#include "worker/sse.h"
#include "test.h"

static void sleep_ms(int ms) {
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Parse text as JSON (jansson is the oracle for our hand-written JSON). */
static json_t *parse(const char *text, size_t len) {
    json_error_t e;
    json_t *j = json_loadb(text, len, JSON_DECODE_ANY, &e);
    if (!j) fprintf(stderr, "  not JSON (%s): %.*s\n", e.text, (int)len, text);
    return j;
}

static void test_json_string_escaping(void) {
    /* Each input must come back unchanged through a JSON parser. */
    static const char *const inputs[] = {"plain", "quote \" backslash \\ slash /", "tab\tnl\ncr\r\x01\x1f\x7f",
                                         "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", ""};
    for (size_t i = 0; i < sizeof inputs / sizeof inputs[0]; i++) {
        struct kiln__buf b = {0};
        REQUIRE(kiln__buf_json_string(&b, inputs[i], strlen(inputs[i])) == 0);
        json_t *j = parse(b.data, b.len);
        REQUIRE(j != NULL);
        CHECK_EQ_STR(json_string_value(j), inputs[i]);
        json_decref(j);
        kiln__buf_free(&b);
    }
    /* Invalid UTF-8 (stray continuation, truncated sequence, overlong,
     * surrogate, beyond U+10FFFF) becomes U+FFFD, one per bad byte. */
    static const struct {
        const char *in;
        const char *want;
    } bad[] = {
        {"a\x80z", "a\xef\xbf\xbdz"},
        {"\xe2\x82", "\xef\xbf\xbd\xef\xbf\xbd"},
        {"\xc0\xaf", "\xef\xbf\xbd\xef\xbf\xbd"},
        {"\xed\xa0\x80", "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"},
        {"\xf4\x90\x80\x80", "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct kiln__buf b = {0}, u = {0};
        kiln__buf_json_string(&b, bad[i].in, strlen(bad[i].in));
        json_t *j = parse(b.data, b.len);
        REQUIRE(j != NULL);
        CHECK_EQ_STR(json_string_value(j), bad[i].want);
        json_decref(j);
        kiln__buf_append_utf8(&u, bad[i].in, strlen(bad[i].in));
        CHECK_EQ_STR(u.data, bad[i].want);
        kiln__buf_free(&b);
        kiln__buf_free(&u);
    }
    struct kiln__buf b = {0};
    kiln__buf_printf(&b, "%d-%s", 42, "x");
    CHECK_EQ_STR(b.data, "42-x");
    kiln__buf_clear(&b);
    CHECK_EQ_INT(b.len, 0);
    kiln__buf_free(&b);
}

/* One request validation case. */
struct req_case {
    enum kiln__api_kind api; /* which parser */
    const char *body;        /* the request body */
    int status;              /* expected: 0 = accepted, else the HTTP status */
    const char *param;       /* the field the error must name */
    const char *code;        /* the error code */
};

static void test_request_validation(void) {
    static const struct req_case cases[] = {
        {KILN__API_JOB, "{\"operation\":\"infer\",\"prompt\":\"hi\",\"max_tokens\":5,\"temperature\":0.5,\"top_p\":0.9,"
                        "\"top_k\":10,\"min_p\":0.1,\"repetition_penalty\":1.1,\"seed\":7,\"stop\":[\"x\"],"
                        "\"hive_id\":\"h\",\"model\":\"m\",\"worker_id\":\"w\",\"stream\":true}", 0, "", ""},
        {KILN__API_JOB, "{\"prompt\":\"defaults to infer\"}", 0, "", ""},
        {KILN__API_JOB, "{\"operation\":\"image_generation\",\"prompt\":\"a cat\"}", 0, "", ""},
        {KILN__API_JOB, "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}", 0, "", ""},
        {KILN__API_JOB, "", 400, "", "invalid_json"},
        {KILN__API_JOB, "{\"prompt\":", 400, "", "invalid_json"},
        {KILN__API_JOB, "[1,2]", 400, "request body", "invalid_value"},
        {KILN__API_JOB, "{\"prompt\":\"a\",\"prompt\":\"b\"}", 400, "", "invalid_json"},
        {KILN__API_JOB, "{\"operation\":\"dance\",\"prompt\":\"x\"}", 400, "operation", "invalid_value"},
        {KILN__API_JOB, "{\"operation\":5,\"prompt\":\"x\"}", 400, "operation", "invalid_value"},
        {KILN__API_JOB, "{\"operation\":\"infer\"}", 400, "prompt", "invalid_value"},
        {KILN__API_JOB, "{\"prompt\":\"\"}", 400, "prompt", "invalid_value"},
        {KILN__API_JOB, "{\"prompt\":[\"x\"]}", 400, "prompt", "invalid_value"},
        {KILN__API_JOB, "{\"prompt\":\"x\",\"messages\":[]}", 400, "prompt", "invalid_value"},
        {KILN__API_JOB, "{\"prompt\":\"x\",\"max_tokens\":0}", 400, "max_tokens", "invalid_value"},
        {KILN__API_JOB, "{\"prompt\":\"x\",\"max_tokens\":-5}", 400, "max_tokens", "invalid_value"},
        {KILN__API_JOB, "{\"prompt\":\"x\",\"max_tokens\":99999999999}", 400, "max_tokens", "invalid_value"},
        {KILN__API_JOB, "{\"prompt\":\"x\",\"max_tokens\":1.5}", 400, "max_tokens", "invalid_value"},
        {KILN__API_JOB, "{\"prompt\":\"x\",\"max_tokens\":\"5\"}", 400, "max_tokens", "invalid_value"},
        {KILN__API_JOB, "{\"prompt\":\"x\",\"temperature\":-1}", 400, "temperature", "invalid_value"},
        {KILN__API_JOB, "{\"prompt\":\"x\",\"temperature\":1e300}", 400, "temperature", "invalid_value"},
        {KILN__API_JOB, "{\"prompt\":\"x\",\"temperature\":\"hot\"}", 400, "temperature", "invalid_value"},
        {KILN__API_JOB, "{\"prompt\":\"x\",\"top_p\":1.5}", 400, "top_p", "invalid_value"},
        {KILN__API_JOB, "{\"prompt\":\"x\",\"top_k\":-1}", 400, "top_k", "invalid_value"},
        {KILN__API_JOB, "{\"prompt\":\"x\",\"min_p\":2}", 400, "min_p", "invalid_value"},
        {KILN__API_JOB, "{\"prompt\":\"x\",\"repetition_penalty\":0}", 400, "repetition_penalty", "invalid_value"},
        {KILN__API_JOB, "{\"prompt\":\"x\",\"seed\":\"abc\"}", 400, "seed", "invalid_value"},
        {KILN__API_JOB, "{\"prompt\":\"x\",\"stop\":5}", 400, "stop", "invalid_value"},
        {KILN__API_JOB, "{\"prompt\":\"x\",\"stop\":[\"\"]}", 400, "stop", "invalid_value"},
        {KILN__API_JOB, "{\"prompt\":\"x\",\"stop\":[1]}", 400, "stop", "invalid_value"},
        {KILN__API_JOB, "{\"prompt\":\"x\",\"stop\":[\"a\",\"b\",\"c\",\"d\",\"e\",\"f\",\"g\",\"h\",\"i\",\"j\",\"k\","
                        "\"l\",\"m\",\"n\",\"o\",\"p\",\"q\"]}", 400, "stop", "invalid_value"},
        {KILN__API_JOB, "{\"prompt\":\"x\",\"stream\":\"yes\"}", 400, "stream", "invalid_value"},
        {KILN__API_JOB, "{\"prompt\":\"x\",\"hive_id\":7}", 400, "hive_id", "invalid_value"},
        {KILN__API_JOB, "{\"prompt\":\"x\",\"model\":[]}", 400, "model", "invalid_value"},
        {KILN__API_JOB, "{\"prompt\":\"nul\\u0000inside\"}", 400, "", "invalid_json"},
        {KILN__API_COMPLETION, "{\"prompt\":\"hi\",\"max_tokens\":3,\"n\":1,\"echo\":false,\"logprobs\":null}", 0, "", ""},
        {KILN__API_COMPLETION, "{\"prompt\":[\"one\"]}", 0, "", ""},
        {KILN__API_COMPLETION, "{\"model\":\"x\"}", 400, "prompt", "invalid_value"},
        {KILN__API_COMPLETION, "{\"prompt\":[\"a\",\"b\"]}", 400, "prompt", "unsupported"},
        {KILN__API_COMPLETION, "{\"prompt\":[1,2,3]}", 400, "prompt", "unsupported"},
        {KILN__API_COMPLETION, "{\"prompt\":\"x\",\"n\":2}", 400, "n", "unsupported"},
        {KILN__API_COMPLETION, "{\"prompt\":\"x\",\"echo\":true}", 400, "echo", "unsupported"},
        {KILN__API_COMPLETION, "{\"prompt\":\"x\",\"logprobs\":3}", 400, "logprobs", "unsupported"},
        {KILN__API_COMPLETION, "{\"prompt\":\"x\",\"presence_penalty\":3}", 400, "presence_penalty", "invalid_value"},
        {KILN__API_COMPLETION, "{\"prompt\":\"x\",\"frequency_penalty\":-2.5}", 400, "frequency_penalty", "invalid_value"},
        {KILN__API_CHAT, "{\"messages\":[{\"role\":\"system\",\"content\":\"be brief\"},{\"role\":\"user\","
                         "\"content\":[{\"type\":\"text\",\"text\":\"a\"},{\"type\":\"text\",\"text\":\"b\"}]}],"
                         "\"max_completion_tokens\":4,\"stream_options\":{\"include_usage\":true},\"tools\":[],"
                         "\"response_format\":{\"type\":\"text\"}}", 0, "", ""},
        {KILN__API_CHAT, "{\"prompt\":\"x\"}", 400, "messages", "invalid_value"},
        {KILN__API_CHAT, "{\"messages\":[]}", 400, "messages", "invalid_value"},
        {KILN__API_CHAT, "{\"messages\":{}}", 400, "messages", "invalid_value"},
        {KILN__API_CHAT, "{\"messages\":[\"hi\"]}", 400, "messages[0]", "invalid_value"},
        {KILN__API_CHAT, "{\"messages\":[{\"content\":\"hi\"}]}", 400, "messages[0].role", "invalid_value"},
        {KILN__API_CHAT, "{\"messages\":[{\"role\":\"robot\",\"content\":\"hi\"}]}", 400, "messages[0].role", "invalid_value"},
        {KILN__API_CHAT, "{\"messages\":[{\"role\":\"user\",\"content\":5}]}", 400, "messages[0].content", "invalid_value"},
        {KILN__API_CHAT, "{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"image_url\"}]}]}", 400,
         "messages[0].content", "unsupported"},
        {KILN__API_CHAT, "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"tools\":[{\"type\":\"function\"}]}",
         400, "tools", "unsupported"},
        {KILN__API_CHAT, "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"response_format\":{\"type\":"
                         "\"json_object\"}}", 400, "response_format", "unsupported"},
        {KILN__API_CHAT, "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"logprobs\":true}", 400, "logprobs",
         "unsupported"},
        {KILN__API_CHAT, "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"max_completion_tokens\":0}", 400,
         "max_completion_tokens", "invalid_value"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const struct req_case *c = &cases[i];
        struct kiln__gen_request *r = NULL;
        struct kiln__api_error err;
        memset(&err, 0, sizeof err);
        int rc = kiln__gen_request_parse(c->api, c->body, strlen(c->body), &r, &err);
        if (c->status == 0) {
            if (rc != 0) fprintf(stderr, "  case %zu rejected: %s\n", i, err.message);
            CHECK(rc == 0 && r != NULL);
        } else {
            if (rc == 0) fprintf(stderr, "  case %zu accepted: %s\n", i, c->body);
            CHECK(rc != 0 && r == NULL);
            CHECK_EQ_INT(err.status, c->status);
            CHECK_EQ_STR(err.param, c->param);
            CHECK_EQ_STR(err.code, c->code);
            if (c->param[0]) CHECK_CONTAINS(err.message, c->param); /* the message names the field */
            json_t *j = kiln__api_error_json(&err);
            REQUIRE(j != NULL);
            CHECK_EQ_STR(json_string_value(json_object_get(json_object_get(j, "error"), "message")), err.message);
            CHECK(json_is_string(json_object_get(json_object_get(j, "error"), "type")));
            json_decref(j);
        }
        kiln__gen_request_free(r);
    }
}

static void test_request_fields(void) {
    const char *body = "{\"prompt\":\"hello\",\"max_tokens\":9,\"temperature\":0,\"top_k\":3,\"seed\":-1,"
                       "\"stop\":\"END\",\"stream\":true,\"model\":\"m1\"}";
    struct kiln__gen_request *r = NULL;
    struct kiln__api_error err;
    REQUIRE(kiln__gen_request_parse(KILN__API_COMPLETION, body, strlen(body), &r, &err) == 0);
    CHECK_EQ_STR(r->prompt, "hello");
    CHECK_EQ_INT(r->max_tokens, 9);
    CHECK(r->sampling.temperature == 0.0f);
    CHECK_EQ_INT(r->sampling.top_k, 3);
    CHECK(r->seed_given && r->sampling.seed == UINT64_MAX);
    CHECK_EQ_INT(r->n_stop, 1);
    CHECK_EQ_STR(r->stop[0], "END");
    CHECK(r->stream);
    CHECK_EQ_STR(r->model, "m1");
    /* Fields not given keep the library's defaults. */
    kiln_sampling_params d = kiln_sampling_default_params();
    CHECK(r->sampling.top_p == d.top_p && r->sampling.min_p == d.min_p);
    struct kiln__text_job tj;
    kiln__gen_request_text_job(r, 4, &tj);
    CHECK(tj.prompt == r->prompt && tj.messages == NULL && tj.max_tokens == 4 && tj.n_stop == 1);
    kiln__gen_request_free(r);

    const char *chat = "{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"ab\"},"
                       "{\"type\":\"text\",\"text\":\"cd\"}]},{\"role\":\"assistant\",\"content\":null}]}";
    REQUIRE(kiln__gen_request_parse(KILN__API_CHAT, chat, strlen(chat), &r, &err) == 0);
    REQUIRE(r->n_messages == 2);
    CHECK_EQ_STR(r->messages[0].role, "user");
    CHECK_EQ_STR(r->messages[0].content, "abcd");
    CHECK_EQ_STR(r->messages[1].content, "");
    CHECK(r->prompt == NULL && !r->stream && r->max_tokens == 0 && !r->seed_given);
    kiln__gen_request_free(r);

    const char *img = "{\"operation\":\"image_inpaint\"}";
    REQUIRE(kiln__gen_request_parse(KILN__API_JOB, img, strlen(img), &r, &err) == 0);
    CHECK_EQ_INT(r->op, KILN__OP_IMAGE_INPAINT);
    CHECK_EQ_INT(kiln__operation_cap(r->op), KILN__CAP_IMAGE_INPAINT);
    kiln__gen_request_free(r);
}

/* The JSON of an SSE "data: {...}\n\n" message. */
static json_t *sse_json(const struct kiln__buf *b) {
    if (!b->data || strncmp(b->data, "data: ", 6) != 0 || b->len < 8 || strcmp(b->data + b->len - 2, "\n\n") != 0)
        return NULL;
    return parse(b->data + 6, b->len - 8);
}

static void test_sse_events(void) {
    struct kiln__buf b = {0};
    kiln__sse_rbee_token(&b, "a \"q\"\n", 6, 3);
    json_t *j = sse_json(&b);
    REQUIRE(j != NULL);
    CHECK_EQ_STR(json_string_value(json_object_get(j, "type")), "token");
    CHECK_EQ_STR(json_string_value(json_object_get(j, "t")), "a \"q\"\n");
    CHECK_EQ_INT(json_integer_value(json_object_get(j, "i")), 3);
    json_decref(j);

    kiln__buf_clear(&b);
    struct kiln__text_stats st = {KILN__STOP_SEQUENCE, 11, 7, 1.5, 20.25};
    kiln__sse_rbee_end(&b, &st);
    j = sse_json(&b);
    REQUIRE(j != NULL);
    CHECK_EQ_STR(json_string_value(json_object_get(j, "type")), "end");
    CHECK_EQ_INT(json_integer_value(json_object_get(j, "tokens_in")), 11);
    CHECK_EQ_INT(json_integer_value(json_object_get(j, "tokens_out")), 7);
    CHECK_NEAR(json_number_value(json_object_get(j, "decode_time_ms")), 20.25, 0.01);
    CHECK_EQ_STR(json_string_value(json_object_get(j, "stop_reason")), "stop_sequence");
    json_decref(j);

    kiln__buf_clear(&b);
    kiln__sse_rbee_started(&b, "job-1", "m\"x", 4, 2.5);
    j = sse_json(&b);
    REQUIRE(j != NULL);
    CHECK_EQ_STR(json_string_value(json_object_get(j, "type")), "started");
    CHECK_EQ_STR(json_string_value(json_object_get(j, "model")), "m\"x");
    json_decref(j);

    kiln__buf_clear(&b);
    kiln__sse_rbee_error(&b, "generation_failed", "bad \\ thing");
    j = sse_json(&b);
    REQUIRE(j != NULL);
    CHECK_EQ_STR(json_string_value(json_object_get(j, "message")), "bad \\ thing");
    json_decref(j);

    struct kiln__openai_stream_id sid = {KILN__OPENAI_CHAT, "chatcmpl-1", 1700000000, "kiln-fake"};
    kiln__buf_clear(&b);
    kiln__sse_openai_chunk(&b, &sid, "hi", 2, 1, NULL);
    j = sse_json(&b);
    REQUIRE(j != NULL);
    CHECK_EQ_STR(json_string_value(json_object_get(j, "object")), "chat.completion.chunk");
    json_t *ch = json_array_get(json_object_get(j, "choices"), 0);
    CHECK_EQ_STR(json_string_value(json_object_get(json_object_get(ch, "delta"), "role")), "assistant");
    CHECK_EQ_STR(json_string_value(json_object_get(json_object_get(ch, "delta"), "content")), "hi");
    CHECK(json_is_null(json_object_get(ch, "finish_reason")));
    json_decref(j);

    sid.kind = KILN__OPENAI_COMPLETION;
    kiln__buf_clear(&b);
    kiln__sse_openai_chunk(&b, &sid, "", 0, 0, "length");
    j = sse_json(&b);
    REQUIRE(j != NULL);
    CHECK_EQ_STR(json_string_value(json_object_get(j, "object")), "text_completion");
    ch = json_array_get(json_object_get(j, "choices"), 0);
    CHECK_EQ_STR(json_string_value(json_object_get(ch, "text")), "");
    CHECK_EQ_STR(json_string_value(json_object_get(ch, "finish_reason")), "length");
    json_decref(j);

    kiln__buf_clear(&b);
    kiln__sse_openai_usage(&b, &sid, 5, 6);
    j = sse_json(&b);
    REQUIRE(j != NULL);
    CHECK_EQ_INT(json_array_size(json_object_get(j, "choices")), 0);
    CHECK_EQ_INT(json_integer_value(json_object_get(json_object_get(j, "usage"), "total_tokens")), 11);
    json_decref(j);

    kiln__buf_clear(&b);
    kiln__sse_comment(&b, "keep-alive");
    kiln__sse_done(&b);
    CHECK_EQ_STR(b.data, ": keep-alive\n\ndata: [DONE]\n\n");
    CHECK_EQ_STR(kiln__openai_finish_reason(KILN__STOP_EOS), "stop");
    CHECK(kiln__openai_finish_reason(KILN__STOP_CANCELLED) == NULL);
    kiln__buf_free(&b);
}

/* A fake environment for the config tests. */
static const char *fake_env(const char *name) {
    if (strcmp(name, "KILN_PORT") == 0) return "9000";
    if (strcmp(name, "KILN_QUEUE") == 0) return "3";
    if (strcmp(name, "KILN_API_KEY") == 0) return "from-env";
    if (strcmp(name, "KILN_LOG_FORMAT") == 0) return "json";
    return NULL;
}

static const char *bad_env(const char *name) { return strcmp(name, "KILN_PORT") == 0 ? "http" : NULL; }

static void test_config_flags_and_env(void) {
    struct kiln__worker_config cfg;
    char err[256];
    kiln__worker_config_defaults(&cfg);
    CHECK_EQ_STR(cfg.host, "127.0.0.1");
    CHECK_EQ_INT(cfg.port, 8080);
    char *argv1[] = {"serve", "--port", "7000", "--host=0.0.0.0", "-m", "model.gguf", "--job-ttl", "0.5",
                     "--fake-model", "--max-body", "4096"};
    REQUIRE(kiln__worker_config_parse(&cfg, 11, argv1, fake_env, err, sizeof err) == KILN__CONFIG_OK);
    CHECK_EQ_INT(cfg.port, 7000); /* the flag beats the variable */
    CHECK_EQ_INT(cfg.queue, 3);   /* the variable beats the default */
    CHECK_EQ_STR(cfg.api_key, "from-env");
    CHECK_EQ_INT(cfg.log_format, KILN_LOG_JSON);
    CHECK_EQ_STR(cfg.host, "0.0.0.0");
    CHECK_EQ_STR(cfg.model_path, "model.gguf");
    CHECK_NEAR(cfg.job_ttl_s, 0.5, 1e-9);
    CHECK_EQ_INT(cfg.fake, 1);
    CHECK_EQ_INT(cfg.max_body, 4096);
    kiln__worker_config_free(&cfg);

    static const struct {
        int argc;
        char *argv[4];
        const char *msg;
    } bad[] = {
        {3, {"serve", "--port", "70000"}, "--port"},
        {3, {"serve", "--port", "12x"}, "--port"},
        {2, {"serve", "--bogus"}, "unknown option"},
        {2, {"serve", "--queue"}, "needs a value"},
        {3, {"serve", "--log-format", "xml"}, "text or json"},
        {3, {"serve", "--api-key", ""}, "empty"},
        {3, {"serve", "--api-key-file", "/nonexistent/key"}, "cannot open"},
        {2, {"serve", "--fake-model=1"}, "takes no value"},
        {3, {"serve", "--keepalive", "0"}, "--keepalive"},
        {3, {"serve", "--max-body", "-1"}, "--max-body"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        kiln__worker_config_defaults(&cfg);
        CHECK_EQ_INT(kiln__worker_config_parse(&cfg, bad[i].argc, (char **)bad[i].argv, NULL, err, sizeof err),
                     KILN__CONFIG_ERROR);
        CHECK_CONTAINS(err, bad[i].msg);
        kiln__worker_config_free(&cfg);
    }
    kiln__worker_config_defaults(&cfg);
    char *argv2[] = {"serve"};
    CHECK_EQ_INT(kiln__worker_config_parse(&cfg, 1, argv2, bad_env, err, sizeof err), KILN__CONFIG_ERROR);
    CHECK_CONTAINS(err, "KILN_PORT");
    char *argv3[] = {"serve", "--help"};
    CHECK_EQ_INT(kiln__worker_config_parse(&cfg, 2, argv3, NULL, err, sizeof err), KILN__CONFIG_HELP);

    /* The key file: first line, trailing whitespace dropped. */
    char path[512];
    snprintf(path, sizeof path, "%s/worker-key.txt", KILN_TEST_TMP);
    FILE *f = fopen(path, "w");
    REQUIRE(f != NULL);
    fputs("s3cret \r\nsecond line\n", f);
    fclose(f);
    char *argv4[] = {"serve", "--api-key-file", path};
    REQUIRE(kiln__worker_config_parse(&cfg, 3, argv4, NULL, err, sizeof err) == KILN__CONFIG_OK);
    CHECK_EQ_STR(cfg.api_key, "s3cret");
    kiln__worker_config_free(&cfg);
    remove(path);
}

static void test_urls_and_status_lines(void) {
    struct kiln__http_url u;
    REQUIRE(kiln__http_url_parse("http://hive.local:7833/api/", &u) == KILN_OK);
    CHECK_EQ_STR(u.host, "hive.local");
    CHECK_EQ_STR(u.port, "7833");
    CHECK_EQ_STR(u.path, "/api");
    REQUIRE(kiln__http_url_parse("http://10.0.0.1", &u) == KILN_OK);
    CHECK_EQ_STR(u.port, "80");
    CHECK_EQ_STR(u.path, "");
    REQUIRE(kiln__http_url_parse("http://[::1]:9/x", &u) == KILN_OK);
    CHECK_EQ_STR(u.host, "::1");
    CHECK_EQ_STR(u.port, "9");
    CHECK_EQ_INT(kiln__http_url_parse("https://hive", &u), KILN_ERR_UNSUPPORTED);
    static const char *const bad[] = {"ftp://x", "http://", "http://h:0", "http://h:99999", "http://h:8x",
                                      "http://h/a b", "http://h/?q=1", "http://[::1", "hive:80"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) CHECK_EQ_INT(kiln__http_url_parse(bad[i], &u), KILN_ERR_INVALID_ARG);
    CHECK_EQ_INT(kiln__http_parse_status_line("HTTP/1.1 204 No Content\r\n", 25), 204);
    CHECK_EQ_INT(kiln__http_parse_status_line("HTTP/1.0 500\r\n", 14), 500);
    CHECK_EQ_INT(kiln__http_parse_status_line("HTTP/2 200 OK\r\n", 15), -1);
    CHECK_EQ_INT(kiln__http_parse_status_line("HTTP/1.1 2x0 OK", 15), -1);
    CHECK_EQ_INT(kiln__http_parse_status_line("HTTP/1.1 999 ??", 15), -1);
    CHECK_EQ_INT(kiln__http_parse_status_line("HTTP/1.1 20", 11), -1);
}

/* Collects the fake backend's output; cancels after `cancel_after` calls. */
struct collect {
    struct kiln__buf text; /* all text */
    int calls;             /* callback calls */
    int cancel_after;      /* 0 = never */
};

static int collect_cb(void *user, const char *text, size_t len) {
    struct collect *c = user;
    kiln__buf_append(&c->text, text, len);
    c->calls++;
    return c->cancel_after && c->calls >= c->cancel_after;
}

/* Run the fake on prompt with the given knobs. */
static kiln_status fake_run(struct kiln__backend *b, const char *prompt, int32_t max_tokens, float temperature,
                            uint64_t seed, const char *const *stop, size_t n_stop, struct collect *c,
                            struct kiln__text_stats *st) {
    struct kiln__text_job job = {0};
    job.prompt = prompt;
    job.sampling = kiln_sampling_default_params();
    job.sampling.temperature = temperature;
    job.sampling.seed = seed;
    job.max_tokens = max_tokens;
    job.stop = stop;
    job.n_stop = n_stop;
    return b->run_text(b->ctx, &job, collect_cb, c, st);
}

static void test_fake_backend(void) {
    struct kiln__fake_options fo = {64, 20, 0, 0};
    struct kiln__backend b;
    REQUIRE(kiln__backend_fake_create(&fo, &b) == KILN_OK);
    REQUIRE(b.load(b.ctx, NULL, NULL) == KILN_OK);
    const struct kiln__backend_info *info = b.info(b.ctx);
    CHECK_EQ_STR(info->model_id, "kiln-fake");
    CHECK_EQ_INT(info->context_length, 64);

    struct collect a = {0}, c2 = {0}, c3 = {0};
    struct kiln__text_stats st;
    REQUIRE(fake_run(&b, "one two three", 8, 0, 1, NULL, 0, &a, &st) == KILN_OK);
    CHECK_EQ_INT(st.stop_reason, KILN__STOP_MAX_TOKENS);
    CHECK_EQ_INT(st.prompt_tokens, 4);
    CHECK_EQ_INT(st.completion_tokens, 8);
    /* Greedy: the seed does not matter; with temperature it does. */
    fake_run(&b, "one two three", 8, 0, 2, NULL, 0, &c2, &st);
    CHECK_EQ_STR(a.text.data, c2.text.data);
    fake_run(&b, "one two three", 8, 0.7f, 1, NULL, 0, &c3, &st);
    struct collect c4 = {0};
    fake_run(&b, "one two three", 8, 0.7f, 99, NULL, 0, &c4, &st);
    CHECK(strcmp(c3.text.data, c4.text.data) != 0);
    kiln__buf_free(&c2.text), kiln__buf_free(&c3.text), kiln__buf_free(&c4.text);

    /* EOS after its natural length. */
    struct collect e = {0};
    fake_run(&b, "one two three", 40, 0, 1, NULL, 0, &e, &st);
    CHECK_EQ_INT(st.stop_reason, KILN__STOP_EOS);
    CHECK_EQ_INT(st.completion_tokens, 20);
    kiln__buf_free(&e.text);

    /* Stop strings: the output is the unstopped output cut before the first
     * occurrence, even when the stop string spans two tokens. */
    const char *full = a.text.data;
    const char *space = strchr(full, ' ');
    REQUIRE(space && space[1]);
    char spanning[8] = {space[-1], ' ', space[1], 0}; /* last letter, space, first letter of the next word */
    const char *stops[] = {spanning};
    struct collect s = {0};
    fake_run(&b, "one two three", 8, 0, 1, stops, 1, &s, &st);
    CHECK_EQ_INT(st.stop_reason, KILN__STOP_SEQUENCE);
    size_t cut = (size_t)(strstr(full, spanning) - full);
    CHECK_EQ_INT(s.text.len, cut);
    CHECK(strncmp(s.text.data ? s.text.data : "", full, cut) == 0);
    kiln__buf_free(&s.text);

    /* Cancellation from the callback. */
    struct collect k = {0};
    k.cancel_after = 3;
    fake_run(&b, "one two three", 8, 0, 1, NULL, 0, &k, &st);
    CHECK_EQ_INT(st.stop_reason, KILN__STOP_CANCELLED);
    CHECK_EQ_INT(k.calls, 3);
    kiln__buf_free(&k.text);

    /* Failure on request, and a prompt too long for the context. */
    struct collect f = {0};
    CHECK_EQ_INT(fake_run(&b, "please [fail] now", 8, 0, 1, NULL, 0, &f, &st), KILN_ERR_INTERNAL);
    CHECK_EQ_INT(st.stop_reason, KILN__STOP_ERROR);
    CHECK_CONTAINS(kiln_last_error(), "asked for a failure");
    kiln__buf_free(&f.text);
    char longp[400] = "";
    for (int i = 0; i < 70; i++) strcat(longp, "w ");
    struct collect l = {0};
    CHECK_EQ_INT(fake_run(&b, longp, 8, 0, 1, NULL, 0, &l, &st), KILN_ERR_CONTEXT_FULL);
    kiln__buf_free(&l.text);

    /* Chat turns go through its template. */
    struct kiln__chat_message msgs[] = {{"user", "hi there"}};
    struct kiln__text_job cj = {0};
    cj.messages = msgs;
    cj.n_messages = 1;
    int32_t n = 0;
    REQUIRE(b.count_tokens(b.ctx, &cj, &n) == KILN_OK);
    CHECK_EQ_INT(n, 1 + 4); /* BOS, "<|user|>", "hi", "there", "<|assistant|>" */
    kiln__buf_free(&a.text);
    b.destroy(b.ctx);
}

/* A parsed job request for the registry tests. */
static struct kiln__gen_request *job_req(const char *prompt) {
    char body[256];
    snprintf(body, sizeof body, "{\"prompt\":\"%s\",\"seed\":1}", prompt);
    struct kiln__gen_request *r = NULL;
    struct kiln__api_error err;
    if (kiln__gen_request_parse(KILN__API_JOB, body, strlen(body), &r, &err) != 0) return NULL;
    return r;
}

/* Wait until the job reaches a final state (at most 5 s). */
static enum kiln__job_state wait_final(struct kiln__jobs *jobs, struct kiln__job *j) {
    struct kiln__job_info info;
    for (int i = 0; i < 500; i++) {
        kiln__job_get_info(jobs, j, &info);
        if (info.state != KILN__JOB_QUEUED && info.state != KILN__JOB_RUNNING) break;
        kiln__job_wait(jobs, j, info.n_pieces, info.state, -1, 10);
    }
    return info.state;
}

static void gather_piece(void *user, const char *text, size_t len, size_t index) {
    (void)index;
    kiln__buf_append(user, text, len);
}

static void test_job_registry(void) {
    struct kiln__fake_options fo = {256, 0, 5, 0}; /* 5 ms per token */
    struct kiln__backend b;
    REQUIRE(kiln__backend_fake_create(&fo, &b) == KILN_OK);
    struct kiln__metrics *m = kiln__metrics_create();
    REQUIRE(m != NULL);
    struct kiln__jobs_config jc = {1, 3, 0.3};
    struct kiln__jobs *jobs = NULL;
    REQUIRE(kiln__jobs_create(&jc, m, &jobs) == KILN_OK);
    struct kiln__api_error err;
    struct kiln__job *j1 = NULL, *j2 = NULL, *j3 = NULL;

    /* Not started yet: 503. */
    struct kiln__gen_request *r = job_req("a b");
    CHECK(kiln__jobs_submit(jobs, r, 3, 8, 0, &j1, &err) != 0);
    CHECK_EQ_INT(err.status, 503);
    CHECK_EQ_STR(err.code, "model_loading");
    kiln__gen_request_free(r);

    REQUIRE(kiln__jobs_start(jobs, &b) == KILN_OK);
    REQUIRE(kiln__jobs_submit(jobs, job_req("a b"), 3, 200, 0, &j1, &err) == 0);
    CHECK(kiln__job_id_valid(j1->id));
    CHECK_EQ_INT(kiln__job_wait(jobs, j1, 0, KILN__JOB_QUEUED, -1, 2000), KILN__WAIT_READY); /* it starts */
    /* Queue of one: the second waits, the third is refused. */
    REQUIRE(kiln__jobs_submit(jobs, job_req("c d"), 3, 8, 0, &j2, &err) == 0);
    r = job_req("e f");
    CHECK(kiln__jobs_submit(jobs, r, 3, 8, 0, &j3, &err) != 0);
    CHECK_EQ_INT(err.status, 429);
    CHECK(err.retry_after >= 1);
    kiln__gen_request_free(r);

    struct kiln__job_info info;
    kiln__job_get_info(jobs, j2, &info);
    CHECK_EQ_INT(info.state, KILN__JOB_QUEUED);
    CHECK_EQ_INT(info.queue_position, 1);
    /* Cancel the queued one: final at once. */
    CHECK_EQ_INT(kiln__job_cancel(jobs, j2, "test"), KILN__JOB_CANCELLED);
    /* Cancel the running one: it stops at its next token. */
    kiln__job_get_info(jobs, j1, &info);
    for (int i = 0; i < 200 && info.n_pieces < 2; i++) {
        kiln__job_wait(jobs, j1, info.n_pieces, info.state, -1, 50);
        kiln__job_get_info(jobs, j1, &info);
    }
    CHECK(info.n_pieces >= 2);
    kiln__job_cancel(jobs, j1, "test");
    CHECK_EQ_INT(wait_final(jobs, j1), KILN__JOB_CANCELLED);
    kiln__job_get_info(jobs, j1, &info);
    CHECK(info.stats.completion_tokens < 200);
    CHECK_EQ_INT(info.stats.stop_reason, KILN__STOP_CANCELLED);

    /* The stream can be claimed once. */
    CHECK_EQ_INT(kiln__job_claim_stream(jobs, j1), 0);
    CHECK_EQ_INT(kiln__job_claim_stream(jobs, j1), -1);

    /* A job to completion, read piece by piece. */
    REQUIRE(kiln__jobs_submit(jobs, job_req("g h"), 3, 6, 1, &j3, &err) == 0);
    CHECK_EQ_INT(kiln__job_claim_stream(jobs, j3), -1); /* claimed at submit */
    CHECK_EQ_INT(wait_final(jobs, j3), KILN__JOB_COMPLETED);
    struct kiln__buf text = {0};
    CHECK_EQ_INT(kiln__job_read_pieces(jobs, j3, 0, gather_piece, &text), 6);
    kiln__job_get_info(jobs, j3, &info);
    CHECK_EQ_INT(info.stats.completion_tokens, 6);
    CHECK_EQ_INT(info.stats.stop_reason, KILN__STOP_MAX_TOKENS);
    /* The same prompt on the backend directly gives the same text. */
    struct collect direct = {0};
    struct kiln__text_stats st;
    fake_run(&b, "g h", 6, kiln_sampling_default_params().temperature, 1, NULL, 0, &direct, &st);
    CHECK_EQ_STR(text.data, direct.text.data);
    kiln__buf_free(&text);
    kiln__buf_free(&direct.text);

    /* Found while fresh; forgotten after the TTL (0.3 s). */
    char id[KILN__JOB_ID_SIZE];
    strcpy(id, j3->id);
    struct kiln__job *again = kiln__jobs_find(jobs, id);
    CHECK(again == j3);
    kiln__job_release(jobs, again);
    kiln__job_release(jobs, j1);
    kiln__job_release(jobs, j2);
    kiln__job_release(jobs, j3);
    sleep_ms(400);
    CHECK(kiln__jobs_find(jobs, id) == NULL);
    CHECK(kiln__jobs_find(jobs, "job-00000000000000000000000000000000") == NULL);

    /* At most 3 finished jobs are kept. */
    char ids[5][KILN__JOB_ID_SIZE];
    for (int i = 0; i < 5; i++) {
        struct kiln__job *j = NULL;
        REQUIRE(kiln__jobs_submit(jobs, job_req("x"), 2, 1, 0, &j, &err) == 0);
        wait_final(jobs, j);
        strcpy(ids[i], j->id);
        kiln__job_release(jobs, j);
    }
    size_t tracked = 0;
    kiln__jobs_gauges(jobs, NULL, NULL, &tracked);
    CHECK(tracked <= 3);
    struct kiln__job *newest = kiln__jobs_find(jobs, ids[4]);
    CHECK(newest != NULL);
    kiln__job_release(jobs, newest);
    CHECK(kiln__jobs_find(jobs, ids[0]) == NULL);

    /* Stopping: new jobs are refused. */
    kiln__jobs_stop_accepting(jobs);
    r = job_req("late");
    CHECK(kiln__jobs_submit(jobs, r, 2, 1, 0, &j1, &err) != 0);
    CHECK_EQ_INT(err.status, 503);
    CHECK_EQ_STR(err.code, "shutting_down");
    kiln__gen_request_free(r);
    CHECK_EQ_INT(kiln__jobs_wait_idle(jobs, 1.0), 1);

    struct kiln__buf text2 = {0};
    struct kiln__metrics_gauges g = {0, 0, 1, 0.5, 1};
    REQUIRE(kiln__metrics_render(m, &g, &text2) == 0);
    CHECK_CONTAINS(text2.data, "kiln_jobs_total{outcome=\"cancelled\"} 2");
    CHECK_CONTAINS(text2.data, "kiln_jobs_total{outcome=\"completed\"} 6");
    CHECK_CONTAINS(text2.data, "# TYPE kiln_queue_depth gauge");
    kiln__buf_free(&text2);
    kiln__jobs_free(jobs);
    kiln__metrics_free(m);
    b.destroy(b.ctx);
}

static void test_metrics_text(void) {
    struct kiln__metrics *m = kiln__metrics_create();
    REQUIRE(m != NULL);
    kiln__metrics_request(m, KILN__ROUTE_CHAT, 200);
    kiln__metrics_request(m, KILN__ROUTE_CHAT, 200);
    kiln__metrics_request(m, KILN__ROUTE_JOBS, 429);
    kiln__metrics_request(m, KILN__ROUTE_OTHER, 404);
    kiln__metrics_request(m, KILN__ROUTE_OTHER, 99); /* out of range: ignored */
    struct kiln__text_stats s = {KILN__STOP_EOS, 10, 20, 100, 2000};
    kiln__metrics_job(m, KILN__OUTCOME_COMPLETED, &s);
    struct kiln__metrics_gauges g = {2, 1, 1, 1.25, 5};
    struct kiln__buf t = {0};
    REQUIRE(kiln__metrics_render(m, &g, &t) == 0);
    CHECK_CONTAINS(t.data, "kiln_http_requests_total{route=\"/v1/chat/completions\",status=\"200\"} 2\n");
    CHECK_CONTAINS(t.data, "kiln_http_requests_total{route=\"/v1/jobs\",status=\"429\"} 1\n");
    CHECK_CONTAINS(t.data, "kiln_http_requests_total{route=\"other\",status=\"404\"} 1\n");
    CHECK(strstr(t.data, "status=\"99\"") == NULL);
    CHECK_CONTAINS(t.data, "kiln_prompt_tokens_total 10\n");
    CHECK_CONTAINS(t.data, "kiln_generated_tokens_total 20\n");
    CHECK_CONTAINS(t.data, "kiln_prompt_tokens_per_second 100.000\n");   /* 10 tokens in 0.1 s */
    CHECK_CONTAINS(t.data, "kiln_generation_tokens_per_second 10.000\n"); /* 20 tokens in 2 s */
    CHECK_CONTAINS(t.data, "kiln_queue_depth 2\n");
    CHECK_CONTAINS(t.data, "kiln_busy 1\n");
    CHECK_CONTAINS(t.data, "kiln_model_load_seconds 1.250\n");
    /* Every sample line belongs to a metric announced by a TYPE line. */
    for (char *line = t.data; line && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL) {
        if (*line == '#') continue;
        char name[64];
        size_t n = strcspn(line, "{ ");
        REQUIRE(n < sizeof name);
        memcpy(name, line, n);
        name[n] = '\0';
        char type_line[96];
        snprintf(type_line, sizeof type_line, "# TYPE %s ", name);
        CHECK_CONTAINS(t.data, type_line);
    }
    kiln__buf_free(&t);
    kiln__metrics_free(m);
}

int main(void) {
    RUN(test_json_string_escaping);
    RUN(test_request_validation);
    RUN(test_request_fields);
    RUN(test_sse_events);
    RUN(test_config_flags_and_env);
    RUN(test_urls_and_status_lines);
    RUN(test_fake_backend);
    RUN(test_job_registry);
    RUN(test_metrics_text);
    return TEST_REPORT();
}
