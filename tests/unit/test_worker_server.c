/* tests/unit/test_worker_server.c - the worker daemon end to end, in
 * process, over real loopback sockets, with the deterministic test backend:
 * start-up, the rbee job protocol, the OpenAI routes, cancellation by DELETE
 * and by disconnect, TTL expiry, auth, metrics, bad requests, load with
 * 429s, heartbeats and the graceful stop. KILN_WORKER_LOAD_SECONDS sets the
 * length of the load test (default 3). */
#include "http_client.h" /* first: it sets _GNU_SOURCE */

#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>

#include "core/log.h"
#include "worker/backend.h"
#include "worker/jobs.h"
#include "worker/server.h"
#include "test.h"

/* The running daemon of the current test. */
static struct kiln__worker *srv;
static int port;

/* Settings every test starts from: any port, short timers. */
static void base_config(struct kiln__worker_config *cfg) {
    kiln__worker_config_defaults(cfg);
    cfg->port = 0;
    cfg->keepalive_s = 0.2;
    cfg->job_ttl_s = 60;
    cfg->shutdown_s = 2;
    cfg->conn_timeout_s = 2;
    cfg->max_body = 64 * 1024;
}

/* Start the daemon on the fake backend; with wait_ready, until /ready. */
static int start(const struct kiln__worker_config *cfg, double token_ms, double load_ms, int natural, int wait_ready) {
    struct kiln__fake_options fo = {cfg->ctx ? cfg->ctx : 256, natural, token_ms, load_ms};
    struct kiln__backend b;
    if (kiln__backend_fake_create(&fo, &b) != KILN_OK) return -1;
    if (kiln__worker_start(cfg, &b, &srv) != KILN_OK) {
        fprintf(stderr, "  start failed: %s\n", kiln_last_error());
        return -1;
    }
    port = kiln__worker_port(srv);
    for (int i = 0; wait_ready && i < 500 && kiln__worker_get_phase(srv) != KILN__PHASE_READY; i++) tc_sleep_ms(10);
    return 0;
}

static void stop(void) {
    kiln__worker_stop(srv);
    srv = NULL;
}

/* The body of r as JSON, or NULL. */
static json_t *body_json(const struct tc_resp *r) {
    if (!r->body) return NULL;
    return json_loadb(r->body, r->body_len, 0, NULL);
}

/* A string field at a path of object keys ("error", "code"). */
static const char *jstr(json_t *j, const char *k1, const char *k2) {
    json_t *v = json_object_get(j, k1);
    if (k2) v = json_object_get(v, k2);
    return json_string_value(v);
}

/* POST a job; returns its id in id (or "" with the status in *status). */
static int post_job(const char *body, char *id, const char *auth) {
    struct tc_resp r;
    tc_request(port, "POST", "/v1/jobs", auth, body, &r);
    id[0] = '\0';
    json_t *j = body_json(&r);
    if (r.status == 200 && jstr(j, "job_id", NULL)) snprintf(id, KILN__JOB_ID_SIZE, "%s", jstr(j, "job_id", NULL));
    int st = r.status;
    json_decref(j);
    tc_resp_free(&r);
    return st;
}

/* The SSE events of a stream body: data payloads parsed as JSON into a
 * JSON array ("[DONE]" becomes the string "[DONE]"); *comments counts
 * comment lines. */
static json_t *sse_events(const char *body, int *comments) {
    json_t *out = json_array();
    *comments = 0;
    const char *p = body;
    while (p && *p) {
        const char *end = strstr(p, "\n\n");
        if (!end) break;
        if (*p == ':') {
            (*comments)++;
        } else if (strncmp(p, "data: ", 6) == 0) {
            if (strncmp(p + 6, "[DONE]", 6) == 0) json_array_append_new(out, json_string("[DONE]"));
            else json_array_append_new(out, json_loadb(p + 6, (size_t)(end - p - 6), 0, NULL));
        }
        p = end + 2;
    }
    return out;
}

/* GET a stream to its end. */
static json_t *read_stream(const char *path, int *status, int *comments) {
    struct tc_resp r;
    tc_request(port, "GET", path, NULL, NULL, &r);
    *status = r.status;
    json_t *ev = r.status == 200 && r.body ? sse_events(r.body, comments) : json_array();
    tc_resp_free(&r);
    return ev;
}

/* A job's state by GET, or "" when not found. */
static void job_state(const char *id, char *state, size_t n) {
    char path[96];
    snprintf(path, sizeof path, "/v1/jobs/%s", id);
    struct tc_resp r;
    tc_request(port, "GET", path, NULL, NULL, &r);
    json_t *j = body_json(&r);
    snprintf(state, n, "%s", r.status == 200 && jstr(j, "state", NULL) ? jstr(j, "state", NULL) : "");
    json_decref(j);
    tc_resp_free(&r);
}

/* Poll until the job is in `want` (at most timeout_ms). */
static int wait_state(const char *id, const char *want, int timeout_ms) {
    char st[32];
    double deadline = tc_now() + timeout_ms / 1e3;
    do {
        job_state(id, st, sizeof st);
        if (strcmp(st, want) == 0) return 1;
        tc_sleep_ms(20);
    } while (tc_now() < deadline);
    fprintf(stderr, "  job %s is '%s', not '%s'\n", id, st, want);
    return 0;
}

/* The value of a Prometheus sample line starting with `prefix`, or -1. */
static double metric(const char *prefix) {
    struct tc_resp r;
    tc_request(port, "GET", "/metrics", NULL, NULL, &r);
    double v = -1;
    for (const char *p = r.body; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
        if (strncmp(p, prefix, strlen(prefix)) == 0 && p[strlen(prefix)] == ' ') v = atof(p + strlen(prefix) + 1);
    tc_resp_free(&r);
    return v;
}

/* The fake backend's own output for a prompt (the oracle for what the
 * daemon must deliver through its queue and streams). */
static char *direct_output(const char *prompt, int32_t max_tokens, int natural) {
    struct kiln__fake_options fo = {256, natural, 0, 0};
    struct kiln__backend b;
    if (kiln__backend_fake_create(&fo, &b) != KILN_OK) return NULL;
    struct kiln__text_job job = {0};
    job.prompt = prompt;
    job.sampling = kiln_sampling_default_params();
    job.sampling.temperature = 0;
    job.max_tokens = max_tokens;
    struct kiln__buf out = {0};
    struct kiln__text_stats st;
    b.run_text(b.ctx, &job, (kiln__token_fn)kiln__buf_append, &out, &st);
    b.destroy(b.ctx);
    return out.data;
}

static void test_startup_health_ready(void) {
    struct kiln__worker_config cfg;
    base_config(&cfg);
    REQUIRE(start(&cfg, 0, 600, 0, 0) == 0);
    struct tc_resp r;
    tc_request(port, "GET", "/health", NULL, NULL, &r);
    CHECK_EQ_INT(r.status, 200);
    tc_resp_free(&r);
    tc_request(port, "GET", "/ready", NULL, NULL, &r);
    CHECK_EQ_INT(r.status, 503);
    json_t *j = body_json(&r);
    CHECK_EQ_STR(jstr(j, "status", NULL), "loading");
    CHECK(json_is_number(json_object_get(j, "progress")));
    json_decref(j);
    tc_resp_free(&r);
    tc_request(port, "POST", "/v1/jobs", NULL, "{\"prompt\":\"early\"}", &r);
    CHECK_EQ_INT(r.status, 503);
    CHECK(tc_header(&r, "Retry-After") != NULL);
    tc_resp_free(&r);
    for (int i = 0; i < 300 && kiln__worker_get_phase(srv) != KILN__PHASE_READY; i++) tc_sleep_ms(10);
    tc_request(port, "GET", "/ready", NULL, NULL, &r);
    CHECK_EQ_INT(r.status, 200);
    j = body_json(&r);
    CHECK_EQ_STR(jstr(j, "model", "id"), "kiln-fake");
    CHECK(json_number_value(json_object_get(j, "load_seconds")) >= 0.5);
    json_decref(j);
    tc_resp_free(&r);
    stop();
}

static void test_job_protocol(void) {
    struct kiln__worker_config cfg;
    base_config(&cfg);
    REQUIRE(start(&cfg, 2, 0, 0, 1) == 0);
    char id[KILN__JOB_ID_SIZE];
    CHECK_EQ_INT(post_job("{\"operation\":\"infer\",\"prompt\":\"tell me a story\",\"max_tokens\":6,\"temperature\":0,"
                          "\"hive_id\":\"h1\",\"worker_id\":\"w1\",\"model\":\"any\"}", id, NULL), 200);
    REQUIRE(kiln__job_id_valid(id));
    char path[96];
    snprintf(path, sizeof path, "/v1/jobs/%s/stream", id);
    int status, comments;
    json_t *ev = read_stream(path, &status, &comments);
    CHECK_EQ_INT(status, 200);
    size_t n = json_array_size(ev);
    REQUIRE(n == 9); /* started, 6 tokens, end, [DONE] */
    CHECK_EQ_STR(jstr(json_array_get(ev, 0), "type", NULL), "started");
    CHECK_EQ_STR(jstr(json_array_get(ev, 0), "job_id", NULL), id);
    char text[256] = "";
    for (size_t i = 1; i <= 6; i++) {
        json_t *t = json_array_get(ev, i);
        CHECK_EQ_STR(jstr(t, "type", NULL), "token");
        CHECK_EQ_INT(json_integer_value(json_object_get(t, "i")), i - 1);
        if (jstr(t, "t", NULL)) strcat(text, jstr(t, "t", NULL));
    }
    char *want = direct_output("tell me a story", 6, 0);
    CHECK_EQ_STR(text, want);
    free(want);
    json_t *end = json_array_get(ev, 7);
    CHECK_EQ_STR(jstr(end, "type", NULL), "end");
    CHECK_EQ_INT(json_integer_value(json_object_get(end, "tokens_out")), 6);
    CHECK_EQ_STR(jstr(end, "stop_reason", NULL), "max_tokens");
    CHECK(json_is_number(json_object_get(end, "decode_time_ms")));
    CHECK_EQ_STR(json_string_value(json_array_get(ev, 8)), "[DONE]");
    json_decref(ev);

    /* A second reader is refused. */
    ev = read_stream(path, &status, &comments);
    CHECK_EQ_INT(status, 409);
    json_decref(ev);
    char st[32];
    job_state(id, st, sizeof st);
    CHECK_EQ_STR(st, "completed");

    /* EOS and stop strings give their stop reasons. */
    CHECK_EQ_INT(post_job("{\"prompt\":\"eos please\",\"max_tokens\":100,\"temperature\":0}", id, NULL), 200);
    snprintf(path, sizeof path, "/v1/jobs/%s/stream", id);
    ev = read_stream(path, &status, &comments);
    end = json_array_get(ev, json_array_size(ev) - 2);
    CHECK_EQ_STR(jstr(end, "stop_reason", NULL), "eos");
    CHECK_EQ_INT(json_integer_value(json_object_get(end, "tokens_out")), 32);
    json_decref(ev);

    /* A failing job ends with an error event. */
    CHECK_EQ_INT(post_job("{\"prompt\":\"[fail] now\",\"max_tokens\":10}", id, NULL), 200);
    snprintf(path, sizeof path, "/v1/jobs/%s/stream", id);
    ev = read_stream(path, &status, &comments);
    json_t *err = json_array_get(ev, json_array_size(ev) - 2);
    CHECK_EQ_STR(jstr(err, "type", NULL), "error");
    CHECK_EQ_STR(jstr(err, "code", NULL), "generation_failed");
    CHECK_CONTAINS(jstr(err, "message", NULL), "asked for a failure");
    json_decref(ev);
    job_state(id, st, sizeof st);
    CHECK_EQ_STR(st, "failed");
    stop();
}

static void test_keepalive_while_queued(void) {
    struct kiln__worker_config cfg;
    base_config(&cfg);
    REQUIRE(start(&cfg, 20, 0, 1000, 1) == 0);
    char first[KILN__JOB_ID_SIZE], second[KILN__JOB_ID_SIZE];
    CHECK_EQ_INT(post_job("{\"prompt\":\"long one\",\"max_tokens\":30}", first, NULL), 200); /* ~0.6 s */
    CHECK_EQ_INT(post_job("{\"prompt\":\"waits\",\"max_tokens\":2}", second, NULL), 200);
    char path[96];
    snprintf(path, sizeof path, "/v1/jobs/%s/stream", second);
    int status, comments;
    json_t *ev = read_stream(path, &status, &comments);
    CHECK_EQ_INT(status, 200);
    CHECK(comments >= 1); /* ": queued" every 0.2 s while the first job runs */
    CHECK_EQ_STR(jstr(json_array_get(ev, 0), "type", NULL), "started");
    CHECK(json_number_value(json_object_get(json_array_get(ev, 0), "queue_time_ms")) > 100);
    json_decref(ev);
    stop();
}

static void test_cancel_by_delete(void) {
    struct kiln__worker_config cfg;
    base_config(&cfg);
    REQUIRE(start(&cfg, 20, 0, 1000, 1) == 0);
    char running[KILN__JOB_ID_SIZE], queued[KILN__JOB_ID_SIZE];
    CHECK_EQ_INT(post_job("{\"prompt\":\"long\",\"max_tokens\":500}", running, NULL), 200); /* ~10 s */
    CHECK_EQ_INT(post_job("{\"prompt\":\"next\",\"max_tokens\":500}", queued, NULL), 200);
    char path[96];
    snprintf(path, sizeof path, "/v1/jobs/%s/stream", running);
    int fd = tc_open(port, "GET", path, NULL, NULL);
    REQUIRE(fd >= 0);
    char *buf = NULL;
    size_t len = 0, cap = 0;
    int eof;
    tc_read_until(fd, &buf, &len, &cap, "\"type\":\"token\"", 3000, &eof);
    CHECK(buf && strstr(buf, "\"type\":\"token\""));

    /* The queued job: cancelled at once. */
    struct tc_resp r;
    snprintf(path, sizeof path, "/v1/jobs/%s", queued);
    tc_request(port, "DELETE", path, NULL, NULL, &r);
    CHECK_EQ_INT(r.status, 200);
    json_t *j = body_json(&r);
    CHECK_EQ_STR(jstr(j, "state", NULL), "cancelled");
    json_decref(j);
    tc_resp_free(&r);

    /* The running job: 202, then cancelled within a token or two. */
    double t0 = tc_now();
    snprintf(path, sizeof path, "/v1/jobs/%s", running);
    tc_request(port, "DELETE", path, NULL, NULL, &r);
    CHECK_EQ_INT(r.status, 202);
    tc_resp_free(&r);
    tc_read_until(fd, &buf, &len, &cap, "[DONE]", 3000, &eof);
    CHECK(tc_now() - t0 < 1.0);
    CHECK(buf && strstr(buf, "\"stop_reason\":\"cancelled\""));
    close(fd);
    free(buf);
    CHECK(wait_state(running, "cancelled", 1000));
    /* Deleting a finished job changes nothing. */
    tc_request(port, "DELETE", path, NULL, NULL, &r);
    CHECK_EQ_INT(r.status, 200);
    j = body_json(&r);
    CHECK_EQ_STR(jstr(j, "state", NULL), "cancelled");
    json_decref(j);
    tc_resp_free(&r);
    stop();
}

static void test_cancel_by_disconnect(void) {
    struct kiln__worker_config cfg;
    base_config(&cfg);
    REQUIRE(start(&cfg, 20, 0, 1000, 1) == 0);
    /* rbee stream: close after the first token. */
    char id[KILN__JOB_ID_SIZE];
    CHECK_EQ_INT(post_job("{\"prompt\":\"long\",\"max_tokens\":500}", id, NULL), 200);
    char path[96];
    snprintf(path, sizeof path, "/v1/jobs/%s/stream", id);
    int fd = tc_open(port, "GET", path, NULL, NULL);
    REQUIRE(fd >= 0);
    char *buf = NULL;
    size_t len = 0, cap = 0;
    int eof;
    tc_read_until(fd, &buf, &len, &cap, "\"type\":\"token\"", 3000, &eof);
    close(fd);
    CHECK(wait_state(id, "cancelled", 2000));

    /* A stream still waiting in the queue: its job is cancelled too. */
    char blocker[KILN__JOB_ID_SIZE];
    CHECK_EQ_INT(post_job("{\"prompt\":\"blocker\",\"max_tokens\":40}", blocker, NULL), 200);
    CHECK_EQ_INT(post_job("{\"prompt\":\"waiting\",\"max_tokens\":40}", id, NULL), 200);
    snprintf(path, sizeof path, "/v1/jobs/%s/stream", id);
    fd = tc_open(port, "GET", path, NULL, NULL);
    len = 0;
    tc_read_until(fd, &buf, &len, &cap, ": queued", 3000, &eof);
    close(fd);
    CHECK(wait_state(id, "cancelled", 2000));

    /* OpenAI, not streamed: the client gives up while the job runs. */
    double before = metric("kiln_jobs_total{outcome=\"cancelled\"}");
    fd = tc_open(port, "POST", "/v1/chat/completions", NULL,
                 "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"max_tokens\":500}");
    tc_sleep_ms(300);
    close(fd);
    /* OpenAI, streamed: gone after the first chunk. */
    fd = tc_open(port, "POST", "/v1/completions", NULL, "{\"prompt\":\"hi\",\"max_tokens\":500,\"stream\":true}");
    len = 0;
    tc_read_until(fd, &buf, &len, &cap, "\"text\":", 3000, &eof);
    close(fd);
    double after = before;
    for (int i = 0; i < 100 && after < before + 2; i++) {
        tc_sleep_ms(20);
        after = metric("kiln_jobs_total{outcome=\"cancelled\"}");
    }
    CHECK_EQ_INT((int)(after - before), 2);
    free(buf);
    stop();
}

static void test_ttl_expiry(void) {
    struct kiln__worker_config cfg;
    base_config(&cfg);
    cfg.job_ttl_s = 0.5;
    REQUIRE(start(&cfg, 0, 0, 0, 1) == 0);
    char id[KILN__JOB_ID_SIZE];
    CHECK_EQ_INT(post_job("{\"prompt\":\"short\",\"max_tokens\":2}", id, NULL), 200);
    CHECK(wait_state(id, "completed", 2000));
    tc_sleep_ms(700);
    char path[96];
    snprintf(path, sizeof path, "/v1/jobs/%s", id);
    struct tc_resp r;
    tc_request(port, "GET", path, NULL, NULL, &r);
    CHECK_EQ_INT(r.status, 404);
    json_t *j = body_json(&r);
    CHECK_EQ_STR(jstr(j, "error", "code"), "job_not_found");
    json_decref(j);
    tc_resp_free(&r);
    stop();
}

static void test_auth(void) {
    struct kiln__worker_config cfg;
    base_config(&cfg);
    cfg.api_key = "k3y-secret";
    int started = start(&cfg, 0, 0, 0, 1);
    cfg.api_key = NULL;
    REQUIRE(started == 0);
    struct tc_resp r;
    tc_request(port, "GET", "/health", NULL, NULL, &r);
    CHECK_EQ_INT(r.status, 200);
    tc_resp_free(&r);
    static const char *const denied[] = {NULL, "Authorization: Bearer wrong\r\n", "Authorization: Bearer k3y-secre\r\n",
                                         "Authorization: Bearer k3y-secretX\r\n", "Authorization: Basic k3y-secret\r\n"};
    for (size_t i = 0; i < sizeof denied / sizeof denied[0]; i++) {
        tc_request(port, "GET", "/v1/models", denied[i], NULL, &r);
        CHECK_EQ_INT(r.status, 401);
        json_t *j = body_json(&r);
        CHECK_EQ_STR(jstr(j, "error", "type"), "authentication_error");
        json_decref(j);
        CHECK(tc_header(&r, "WWW-Authenticate") != NULL);
        tc_resp_free(&r);
    }
    tc_request(port, "POST", "/v1/jobs", NULL, "{\"prompt\":\"x\"}", &r);
    CHECK_EQ_INT(r.status, 401);
    tc_resp_free(&r);
    tc_request(port, "GET", "/metrics", NULL, NULL, &r);
    CHECK_EQ_INT(r.status, 401);
    tc_resp_free(&r);
    const char *ok = "Authorization: Bearer k3y-secret\r\n";
    tc_request(port, "GET", "/v1/models", ok, NULL, &r);
    CHECK_EQ_INT(r.status, 200);
    tc_resp_free(&r);
    char id[KILN__JOB_ID_SIZE];
    CHECK_EQ_INT(post_job("{\"prompt\":\"x\",\"max_tokens\":1}", id, ok), 200);
    stop();
}

static void test_openai_routes(void) {
    struct kiln__worker_config cfg;
    base_config(&cfg);
    REQUIRE(start(&cfg, 1, 0, 0, 1) == 0);
    struct tc_resp r;
    tc_request(port, "GET", "/v1/models", NULL, NULL, &r);
    CHECK_EQ_INT(r.status, 200);
    json_t *j = body_json(&r);
    CHECK_EQ_STR(jstr(j, "object", NULL), "list");
    CHECK_EQ_STR(json_string_value(json_object_get(json_array_get(json_object_get(j, "data"), 0), "id")), "kiln-fake");
    json_decref(j);
    tc_resp_free(&r);

    tc_request(port, "POST", "/v1/completions", NULL, "{\"prompt\":\"once upon\",\"max_tokens\":5,\"temperature\":0}", &r);
    CHECK_EQ_INT(r.status, 200);
    j = body_json(&r);
    json_t *choice = json_array_get(json_object_get(j, "choices"), 0);
    char *want = direct_output("once upon", 5, 0);
    CHECK_EQ_STR(json_string_value(json_object_get(choice, "text")), want);
    free(want);
    CHECK_EQ_STR(jstr(choice, "finish_reason", NULL), "length");
    CHECK_EQ_STR(jstr(j, "object", NULL), "text_completion");
    CHECK_EQ_INT(json_integer_value(json_object_get(json_object_get(j, "usage"), "completion_tokens")), 5);
    CHECK_EQ_INT(json_integer_value(json_object_get(json_object_get(j, "usage"), "prompt_tokens")), 3);
    json_decref(j);
    tc_resp_free(&r);

    tc_request(port, "POST", "/v1/chat/completions", NULL,
               "{\"model\":\"kiln-fake\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"max_tokens\":200}", &r);
    CHECK_EQ_INT(r.status, 200);
    j = body_json(&r);
    choice = json_array_get(json_object_get(j, "choices"), 0);
    CHECK_EQ_STR(jstr(choice, "finish_reason", NULL), "stop"); /* EOS after 32 tokens */
    CHECK_EQ_STR(jstr(choice, "message", "role"), "assistant");
    CHECK_EQ_STR(jstr(j, "object", NULL), "chat.completion");
    json_decref(j);
    tc_resp_free(&r);

    tc_request(port, "POST", "/v1/chat/completions", NULL,
               "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"max_tokens\":4,\"stream\":true}", &r);
    CHECK_EQ_INT(r.status, 200);
    CHECK_CONTAINS(tc_header(&r, "Content-Type"), "text/event-stream");
    int comments;
    json_t *ev = sse_events(r.body, &comments);
    size_t n = json_array_size(ev);
    REQUIRE(n == 8); /* role, 4 deltas, finish, usage, [DONE] */
    CHECK_EQ_STR(jstr(json_object_get(json_array_get(json_object_get(json_array_get(ev, 0), "choices"), 0), "delta"),
                      "role", NULL), "assistant");
    json_t *fin = json_array_get(json_object_get(json_array_get(ev, 5), "choices"), 0);
    CHECK_EQ_STR(jstr(fin, "finish_reason", NULL), "length");
    json_t *usage = json_object_get(json_array_get(ev, 6), "usage");
    CHECK_EQ_INT(json_integer_value(json_object_get(usage, "completion_tokens")), 4);
    CHECK_EQ_INT(json_array_size(json_object_get(json_array_get(ev, 6), "choices")), 0);
    CHECK_EQ_STR(json_string_value(json_array_get(ev, 7)), "[DONE]");
    /* Every chunk has the same id. */
    for (size_t i = 1; i < 7; i++) CHECK_EQ_STR(jstr(json_array_get(ev, i), "id", NULL), jstr(json_array_get(ev, 0), "id", NULL));
    json_decref(ev);
    tc_resp_free(&r);
    stop();
}

/* One bad request: raw bytes, the expected status, and the error code in
 * the body (NULL: not checked, for refusals libmicrohttpd makes itself). */
struct bad_case {
    const char *name;    /* what it tries */
    const char *method;  /* request method */
    const char *path;    /* request path */
    const char *body;    /* JSON body or NULL */
    int status;          /* expected status */
    const char *code;    /* expected error code, or NULL */
};

static void test_bad_requests(void) {
    struct kiln__worker_config cfg;
    base_config(&cfg);
    cfg.ctx = 64;
    REQUIRE(start(&cfg, 0, 0, 0, 1) == 0);
    char long_prompt[1024] = "{\"prompt\":\"";
    for (int i = 0; i < 100; i++) strcat(long_prompt, "w ");
    strcat(long_prompt, "\"}");
    const struct bad_case cases[] = {
        {"malformed JSON", "POST", "/v1/jobs", "{\"prompt\":", 400, "invalid_json"},
        {"empty body", "POST", "/v1/jobs", "", 400, "invalid_json"},
        {"not an object", "POST", "/v1/jobs", "\"prompt\"", 400, "invalid_json"},
        {"array body", "POST", "/v1/chat/completions", "[]", 400, "invalid_value"},
        {"trailing garbage", "POST", "/v1/jobs", "{\"prompt\":\"x\"} x", 400, "invalid_json"},
        {"prompt not a string", "POST", "/v1/jobs", "{\"prompt\":42}", 400, "invalid_value"},
        {"no prompt", "POST", "/v1/jobs", "{\"operation\":\"infer\"}", 400, "invalid_value"},
        {"unknown operation", "POST", "/v1/jobs", "{\"operation\":\"mine\",\"prompt\":\"x\"}", 400, "invalid_value"},
        {"image op on an LLM", "POST", "/v1/jobs", "{\"operation\":\"image_generation\",\"prompt\":\"cat\"}", 400,
         "unsupported_operation"},
        {"img2img on an LLM", "POST", "/v1/jobs", "{\"operation\":\"image_transform\"}", 400, "unsupported_operation"},
        {"negative max_tokens", "POST", "/v1/jobs", "{\"prompt\":\"x\",\"max_tokens\":-1}", 400, "invalid_value"},
        {"huge max_tokens", "POST", "/v1/completions", "{\"prompt\":\"x\",\"max_tokens\":1e12}", 400, "invalid_value"},
        {"huge integer", "POST", "/v1/completions", "{\"prompt\":\"x\",\"max_tokens\":123456789012345678901234567890}",
         400, "invalid_json"},
        {"temperature string", "POST", "/v1/completions", "{\"prompt\":\"x\",\"temperature\":\"1\"}", 400, "invalid_value"},
        {"negative temperature", "POST", "/v1/jobs", "{\"prompt\":\"x\",\"temperature\":-0.1}", 400, "invalid_value"},
        {"top_p above one", "POST", "/v1/jobs", "{\"prompt\":\"x\",\"top_p\":1.01}", 400, "invalid_value"},
        {"stop not strings", "POST", "/v1/jobs", "{\"prompt\":\"x\",\"stop\":[null]}", 400, "invalid_value"},
        {"n of two", "POST", "/v1/completions", "{\"prompt\":\"x\",\"n\":2}", 400, "unsupported"},
        {"no messages", "POST", "/v1/chat/completions", "{\"prompt\":\"x\"}", 400, "invalid_value"},
        {"bad role", "POST", "/v1/chat/completions", "{\"messages\":[{\"role\":\"x\",\"content\":\"y\"}]}", 400,
         "invalid_value"},
        {"tools", "POST", "/v1/chat/completions",
         "{\"messages\":[{\"role\":\"user\",\"content\":\"y\"}],\"tools\":[{}]}", 400, "unsupported"},
        {"prompt over the context", "POST", "/v1/jobs", long_prompt, 400, "context_length_exceeded"},
        {"unknown route", "GET", "/v2/everything", NULL, 404, "unknown_route"},
        {"root", "GET", "/", NULL, 404, "unknown_route"},
        {"path traversal", "GET", "/v1/jobs/../../etc/passwd", NULL, 404, "unknown_route"},
        {"wrong method on jobs", "GET", "/v1/jobs", NULL, 405, "method_not_allowed"},
        {"wrong method on health", "POST", "/health", "{}", 405, "method_not_allowed"},
        {"PUT a job", "PUT", "/v1/jobs/job-00000000000000000000000000000000", "{}", 405, "method_not_allowed"},
        {"unknown method", "BREW", "/v1/models", NULL, 405, "method_not_allowed"},
        {"malformed job id", "GET", "/v1/jobs/12345", NULL, 400, "invalid_job_id"},
        {"job id with capitals", "GET", "/v1/jobs/job-0000000000000000000000000000000A", NULL, 400, "invalid_job_id"},
        {"over-long job id", "DELETE", "/v1/jobs/job-000000000000000000000000000000000000000000", NULL, 400,
         "invalid_job_id"},
        {"unknown job", "GET", "/v1/jobs/job-00000000000000000000000000000000", NULL, 404, "job_not_found"},
        {"unknown job stream", "GET", "/v1/jobs/job-00000000000000000000000000000000/stream", NULL, 404,
         "job_not_found"},
        {"unknown job delete", "DELETE", "/v1/jobs/job-00000000000000000000000000000000", NULL, 404, "job_not_found"},
        {"stream suffix typo", "GET", "/v1/jobs/job-00000000000000000000000000000000/streams", NULL, 404,
         "unknown_route"},
    };
    size_t n_cases = sizeof cases / sizeof cases[0];
    for (size_t i = 0; i < n_cases; i++) {
        struct tc_resp r;
        tc_request(port, cases[i].method, cases[i].path, NULL, cases[i].body, &r);
        if (r.status != cases[i].status) fprintf(stderr, "  case '%s': status %d\n", cases[i].name, r.status);
        CHECK_EQ_INT(r.status, cases[i].status);
        json_t *j = body_json(&r);
        if (cases[i].code) {
            if (!jstr(j, "error", "code") || strcmp(jstr(j, "error", "code"), cases[i].code) != 0)
                fprintf(stderr, "  case '%s': body %s\n", cases[i].name, r.body ? r.body : "(none)");
            CHECK_EQ_STR(jstr(j, "error", "code"), cases[i].code);
            CHECK(jstr(j, "error", "message") && jstr(j, "error", "type"));
        }
        json_decref(j);
        tc_resp_free(&r);
    }
    /* Bodies over the limit: declared, and sent in chunks without a length. */
    struct tc_resp r;
    const char *big_head = "POST /v1/jobs HTTP/1.1\r\nHost: x\r\nContent-Length: 10000000\r\n\r\n{\"prompt\":";
    tc_raw(port, big_head, strlen(big_head), 5000, &r);
    CHECK_EQ_INT(r.status, 413);
    tc_resp_free(&r);
    size_t chunk = 16 * 1024, total = 5 * chunk;
    char *raw = malloc(total + 1024);
    REQUIRE(raw != NULL);
    size_t at = (size_t)sprintf(raw, "POST /v1/completions HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n");
    for (size_t k = 0; k < total / chunk; k++) {
        at += (size_t)sprintf(raw + at, "%zx\r\n", chunk);
        memset(raw + at, ' ', chunk);
        at += chunk;
        at += (size_t)sprintf(raw + at, "\r\n");
    }
    at += (size_t)sprintf(raw + at, "0\r\n\r\n");
    tc_raw(port, raw, at, 5000, &r);
    CHECK_EQ_INT(r.status, 413);
    tc_resp_free(&r);
    free(raw);
    /* Broken HTTP, answered by libmicrohttpd itself: 400, or (for bytes
     * that are not HTTP at all) the connection closed without an answer. */
    static const char *const broken[] = {
        "GET /health HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n",
        "GET /health HTTP/1.1\r\nNo colon here\r\n\r\n",
    };
    for (size_t i = 0; i < sizeof broken / sizeof broken[0]; i++) {
        tc_raw(port, broken[i], strlen(broken[i]), 3000, &r);
        CHECK_EQ_INT(r.status, 400);
        tc_resp_free(&r);
    }
    double t_garbage = tc_now();
    tc_raw(port, "GARBAGE\r\n\r\n", 11, 3000, &r);
    CHECK_EQ_INT(r.status, -1);
    CHECK(tc_now() - t_garbage < 2.5); /* closed by the server, not by our timeout */
    tc_resp_free(&r);
    /* A header block too large for the connection's memory. */
    char *huge = malloc(200 * 1024);
    REQUIRE(huge != NULL);
    int hl = sprintf(huge, "GET /health HTTP/1.1\r\nHost: x\r\nX-Big: ");
    memset(huge + hl, 'a', 150 * 1024);
    strcpy(huge + hl + 150 * 1024, "\r\n\r\n");
    tc_raw(port, huge, strlen(huge), 3000, &r);
    CHECK(r.status == 431 || r.status == 413 || r.status == 400);
    tc_resp_free(&r);
    free(huge);
    /* A slow client that never finishes its headers is dropped after the
     * connection timeout (2 s here); meanwhile others are served. */
    int slow = tc_connect(port);
    REQUIRE(slow >= 0);
    tc_send_all(slow, "GET /health HTTP/1.1\r\nHo", 24);
    tc_request(port, "GET", "/health", NULL, NULL, &r);
    CHECK_EQ_INT(r.status, 200);
    tc_resp_free(&r);
    char *sb = NULL;
    size_t sl = 0, sc = 0;
    int eof = 0;
    tc_read_until(slow, &sb, &sl, &sc, NULL, 4000, &eof);
    CHECK(eof); /* closed by the server */
    free(sb);
    close(slow);
    /* Still serving, and every refusal was counted. */
    tc_request(port, "GET", "/health", NULL, NULL, &r);
    CHECK_EQ_INT(r.status, 200);
    tc_resp_free(&r);
    CHECK(metric("kiln_http_requests_total{route=\"/v1/jobs\",status=\"400\"}") >= 10);
    CHECK(metric("kiln_http_requests_total{route=\"other\",status=\"404\"}") >= 3);
    stop();
}

/* Load test state shared by the client threads. */
struct load {
    double until;          /* monotonic end time */
    atomic_int ok;         /* 200 answers */
    atomic_int refused;    /* 429 answers */
    atomic_int other;      /* anything else (a failure) */
    atomic_int seq;        /* request counter (picks the request kind) */
};

static void *load_client(void *arg) {
    struct load *ld = arg;
    while (tc_now() < ld->until) {
        int k = atomic_fetch_add(&ld->seq, 1);
        struct tc_resp r;
        int status = -1;
        switch (k % 4) {
        case 0:
            tc_request(port, "POST", "/v1/chat/completions", NULL,
                       "{\"messages\":[{\"role\":\"user\",\"content\":\"load\"}],\"max_tokens\":3}", &r);
            status = r.status;
            if (status == 200 && !strstr(r.body, "chat.completion")) status = -2;
            break;
        case 1:
            tc_request(port, "POST", "/v1/completions", NULL, "{\"prompt\":\"load\",\"max_tokens\":3,\"stream\":true}", &r);
            status = r.status;
            if (status == 200 && !strstr(r.body, "data: [DONE]")) status = -3;
            break;
        case 2: {
            tc_request(port, "POST", "/v1/jobs", NULL, "{\"prompt\":\"load\",\"max_tokens\":3}", &r);
            status = r.status;
            json_t *j = status == 200 ? body_json(&r) : NULL;
            if (j) {
                char path[96];
                snprintf(path, sizeof path, "%s", jstr(j, "sse_url", NULL) ? jstr(j, "sse_url", NULL) : "/none");
                json_decref(j);
                tc_resp_free(&r);
                tc_request(port, "GET", path, NULL, NULL, &r);
                if (r.status != 200 || !strstr(r.body, "\"type\":\"end\"")) status = -4;
            }
            break;
        }
        default:
            tc_request(port, "GET", k % 8 == 3 ? "/metrics" : "/ready", NULL, NULL, &r);
            status = r.status;
        }
        if (status == 200) {
            atomic_fetch_add(&ld->ok, 1);
        } else if (status == 429) {
            atomic_fetch_add(&ld->refused, 1);
            if (!tc_header(&r, "Retry-After")) atomic_fetch_add(&ld->other, 1);
        } else {
            fprintf(stderr, "  load: request kind %d got %d\n", k % 4, status);
            atomic_fetch_add(&ld->other, 1);
        }
        tc_resp_free(&r);
    }
    return NULL;
}

static void test_concurrent_load(void) {
    struct kiln__worker_config cfg;
    base_config(&cfg);
    cfg.queue = 4;
    REQUIRE(start(&cfg, 1, 0, 0, 1) == 0);
    const char *env = getenv("KILN_WORKER_LOAD_SECONDS");
    double seconds = env ? atof(env) : 3;
    struct load ld;
    memset(&ld, 0, sizeof ld);
    ld.until = tc_now() + seconds;
    pthread_t th[16];
    for (int i = 0; i < 16; i++) REQUIRE(pthread_create(&th[i], NULL, load_client, &ld) == 0);
    for (int i = 0; i < 16; i++) pthread_join(th[i], NULL);
    fprintf(stderr, "  load: %d ok, %d refused with 429 in %.0f s\n", atomic_load(&ld.ok), atomic_load(&ld.refused),
            seconds);
    CHECK_EQ_INT(atomic_load(&ld.other), 0);
    CHECK(atomic_load(&ld.ok) > 16);
    CHECK(atomic_load(&ld.refused) > 0); /* 16 clients against a queue of 4 */
    struct tc_resp r;
    tc_request(port, "GET", "/health", NULL, NULL, &r);
    CHECK_EQ_INT(r.status, 200);
    tc_resp_free(&r);
    CHECK_EQ_INT((int)metric("kiln_queue_depth"), 0);
    CHECK_EQ_INT((int)metric("kiln_jobs_total{outcome=\"failed\"}"), 0);
    stop();
}

/* A fake hive: accepts connections, keeps each request's body, answers 200. */
struct hive {
    int fd;                 /* listening socket */
    int port;               /* its port */
    pthread_t thread;       /* the accept loop */
    pthread_mutex_t lock;   /* guards bodies */
    json_t *bodies;         /* heartbeat bodies received (array) */
    atomic_int stop;        /* end the loop */
};

static void *hive_main(void *arg) {
    struct hive *h = arg;
    while (!atomic_load(&h->stop)) {
        struct pollfd p = {.fd = h->fd, .events = POLLIN};
        if (poll(&p, 1, 50) <= 0) continue;
        int c = accept(h->fd, NULL, NULL);
        if (c < 0) continue;
        char *buf = NULL;
        size_t len = 0, cap = 0;
        int eof;
        /* Headers, then Content-Length bytes of body. */
        tc_read_until(c, &buf, &len, &cap, "\r\n\r\n", 2000, &eof);
        char *body = buf ? strstr(buf, "\r\n\r\n") : NULL;
        const char *cl = buf ? strcasestr(buf, "Content-Length:") : NULL;
        size_t want = body && cl ? (size_t)(body + 4 - buf) + strtoul(cl + 15, NULL, 10) : 0;
        double deadline = tc_now() + 2;
        while (body && len < want && !eof && tc_now() < deadline) tc_read_until(c, &buf, &len, &cap, NULL, 50, &eof);
        body = buf ? strstr(buf, "\r\n\r\n") : NULL;
        if (body && strncmp(buf, "POST /hive/v1/worker-heartbeat HTTP/1.1", 39) == 0) {
            json_t *j = json_loads(body + 4, 0, NULL);
            pthread_mutex_lock(&h->lock);
            if (j) json_array_append_new(h->bodies, j);
            pthread_mutex_unlock(&h->lock);
        }
        const char *ok = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
        tc_send_all(c, ok, strlen(ok));
        close(c);
        free(buf);
    }
    return NULL;
}

/* Statuses seen so far, joined with commas. */
static void hive_statuses(struct hive *h, char *out, size_t n) {
    out[0] = '\0';
    pthread_mutex_lock(&h->lock);
    for (size_t i = 0; i < json_array_size(h->bodies); i++) {
        const char *s = jstr(json_object_get(json_array_get(h->bodies, i), "worker"), "status", NULL);
        if (strlen(out) + 16 < n) strcat(out, s ? s : "?"), strcat(out, ",");
    }
    pthread_mutex_unlock(&h->lock);
}

static void test_heartbeat(void) {
    struct hive h;
    memset(&h, 0, sizeof h);
    h.fd = socket(AF_INET, SOCK_STREAM, 0);
    REQUIRE(h.fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(bind(h.fd, (struct sockaddr *)&a, sizeof a) == 0 && listen(h.fd, 16) == 0);
    socklen_t al = sizeof a;
    getsockname(h.fd, (struct sockaddr *)&a, &al);
    h.port = ntohs(a.sin_port);
    h.bodies = json_array();
    pthread_mutex_init(&h.lock, NULL);
    REQUIRE(pthread_create(&h.thread, NULL, hive_main, &h) == 0);

    struct kiln__worker_config cfg;
    base_config(&cfg);
    snprintf(cfg.hive_url, sizeof cfg.hive_url, "http://127.0.0.1:%d/hive/", h.port);
    strcpy(cfg.worker_id, "worker-7");
    cfg.heartbeat_s = 0.2;
    REQUIRE(start(&cfg, 0, 300, 0, 1) == 0);
    tc_sleep_ms(500);
    stop();
    char seen[512];
    hive_statuses(&h, seen, sizeof seen);
    atomic_store(&h.stop, 1);
    pthread_join(h.thread, NULL);
    close(h.fd);
    fprintf(stderr, "  heartbeat statuses: %s\n", seen);
    CHECK(strncmp(seen, "starting,", 9) == 0); /* sent at once, while loading */
    CHECK_CONTAINS(seen, "ready,");
    CHECK(strlen(seen) >= 9 && strcmp(seen + strlen(seen) - 9, "stopping,") == 0); /* the last word */
    size_t n = json_array_size(h.bodies);
    REQUIRE(n >= 3);
    json_t *w = json_object_get(json_array_get(h.bodies, n - 2), "worker");
    CHECK_EQ_STR(jstr(w, "id", NULL), "worker-7");
    CHECK_EQ_STR(jstr(w, "model_id", NULL), "kiln-fake");
    CHECK_EQ_STR(jstr(w, "implementation", NULL), "kiln");
    CHECK_EQ_STR(jstr(w, "device", NULL), "cpu");
    CHECK(json_integer_value(json_object_get(w, "port")) > 0);
    CHECK(jstr(w, "version", NULL) != NULL);
    CHECK(jstr(json_array_get(h.bodies, n - 2), "timestamp", NULL) != NULL);
    json_decref(h.bodies);
    pthread_mutex_destroy(&h.lock);

    /* A hive that is down: heartbeats fail, the worker serves regardless. */
    base_config(&cfg);
    strcpy(cfg.hive_url, "http://127.0.0.1:1");
    cfg.heartbeat_s = 0.1;
    REQUIRE(start(&cfg, 0, 0, 0, 1) == 0);
    tc_sleep_ms(300);
    struct tc_resp r;
    tc_request(port, "GET", "/ready", NULL, NULL, &r);
    CHECK_EQ_INT(r.status, 200);
    tc_resp_free(&r);
    stop();
}

static void test_graceful_stop(void) {
    struct kiln__worker_config cfg;
    base_config(&cfg);
    cfg.shutdown_s = 0.3;
    REQUIRE(start(&cfg, 20, 0, 1000, 1) == 0);
    char id[KILN__JOB_ID_SIZE];
    CHECK_EQ_INT(post_job("{\"prompt\":\"endless\",\"max_tokens\":1000}", id, NULL), 200); /* 20 s */
    /* A reader that has seen the first token when the stop begins. */
    char path[96];
    snprintf(path, sizeof path, "/v1/jobs/%s/stream", id);
    int fd = tc_open(port, "GET", path, NULL, NULL);
    REQUIRE(fd >= 0);
    char *buf = NULL;
    size_t len = 0, cap = 0;
    int eof = 0;
    tc_read_until(fd, &buf, &len, &cap, "\"type\":\"token\"", 5000, &eof);
    CHECK(buf && strstr(buf, "\"type\":\"token\""));
    double t0 = tc_now();
    stop();
    double took = tc_now() - t0;
    tc_read_until(fd, &buf, &len, &cap, NULL, 5000, &eof); /* the rest, to the close */
    close(fd);
    CHECK(took < 2.0); /* 0.3 s grace, then cancelled within a token */
    CHECK(eof);
    CHECK(buf && strstr(buf, "\"stop_reason\":\"cancelled\"") && strstr(buf, "[DONE]"));
    free(buf);
    /* The port is free again. */
    CHECK(tc_connect(port) < 0);
}

int main(void) {
    if (!getenv("KILN_LOG_LEVEL")) kiln__log_set_level(KILN_LOG_ERROR);
    RUN(test_startup_health_ready);
    RUN(test_job_protocol);
    RUN(test_keepalive_while_queued);
    RUN(test_cancel_by_delete);
    RUN(test_cancel_by_disconnect);
    RUN(test_ttl_expiry);
    RUN(test_auth);
    RUN(test_openai_routes);
    RUN(test_bad_requests);
    RUN(test_concurrent_load);
    RUN(test_heartbeat);
    RUN(test_graceful_stop);
    return TEST_REPORT();
}
