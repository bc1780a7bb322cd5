/* src/worker/http.c - libmicrohttpd glue: routing, authentication, body
 * limits, response helpers and the one log line per request.
 *
 * libmicrohttpd runs one thread per connection, so a route may wait for its
 * job (non-streaming answers) or block in a stream's reader without holding
 * up anyone else; the model itself only ever runs on the job runner thread.
 * Everything that can be refused from the headers alone (unknown route,
 * wrong method, missing key, oversized Content-Length) is answered before
 * the body is read. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/log.h"
#include "worker/worker_impl.h"

/* One route: path pattern, method and handler. */
struct route_entry {
    enum kiln__route route;   /* the route (metrics label) */
    const char *method;       /* the method it answers */
    enum MHD_Result (*handler)(struct kiln__worker *w, struct MHD_Connection *c, struct kiln__http_req *rq);
    int needs_body;           /* POST with a JSON body */
};

static const struct route_entry routes[] = {
    {KILN__ROUTE_HEALTH, "GET", kiln__api_health, 0},
    {KILN__ROUTE_READY, "GET", kiln__api_ready, 0},
    {KILN__ROUTE_METRICS, "GET", kiln__api_metrics, 0},
    {KILN__ROUTE_MODELS, "GET", kiln__api_models, 0},
    {KILN__ROUTE_JOBS, "POST", kiln__api_job_submit, 1},
    {KILN__ROUTE_JOB, "GET", kiln__api_job_get, 0},
    {KILN__ROUTE_JOB, "DELETE", kiln__api_job_delete, 0},
    {KILN__ROUTE_JOB_STREAM, "GET", kiln__api_job_stream, 0},
    {KILN__ROUTE_COMPLETIONS, "POST", kiln__api_completions, 1},
    {KILN__ROUTE_CHAT, "POST", kiln__api_chat, 1},
    {KILN__ROUTE_IMAGES_GENERATIONS, "POST", kiln__api_images_generations, 1},
    {KILN__ROUTE_IMAGES_EDITS, "POST", kiln__api_images_edits, 1},
    {KILN__ROUTE_SD_TXT2IMG, "POST", kiln__api_a1111_txt2img, 1},
    {KILN__ROUTE_SD_IMG2IMG, "POST", kiln__api_a1111_img2img, 1},
    {KILN__ROUTE_SD_PROGRESS, "GET", kiln__api_a1111_progress, 0},
    {KILN__ROUTE_SD_INTERRUPT, "POST", kiln__api_a1111_interrupt, 0},
    {KILN__ROUTE_SD_SAMPLERS, "GET", kiln__api_a1111_samplers, 0},
    {KILN__ROUTE_SD_SCHEDULERS, "GET", kiln__api_a1111_schedulers, 0},
    {KILN__ROUTE_SD_MODELS, "GET", kiln__api_a1111_models, 0},
    {KILN__ROUTE_SD_OPTIONS, "GET", kiln__api_a1111_options_get, 0},
    {KILN__ROUTE_SD_OPTIONS, "POST", kiln__api_a1111_options_set, 1},
    {KILN__ROUTE_SD_PNG_INFO, "POST", kiln__api_a1111_png_info, 1},
};

/* Which route a path is; fills the job id of job routes. */
static enum kiln__route match_path(const char *url, struct kiln__http_req *rq) {
    static const struct {
        const char *path;
        enum kiln__route route;
    } fixed[] = {
        {"/health", KILN__ROUTE_HEALTH},      {"/ready", KILN__ROUTE_READY},
        {"/metrics", KILN__ROUTE_METRICS},    {"/v1/models", KILN__ROUTE_MODELS},
        {"/v1/jobs", KILN__ROUTE_JOBS},       {"/v1/completions", KILN__ROUTE_COMPLETIONS},
        {"/v1/chat/completions", KILN__ROUTE_CHAT},
        {"/v1/images/generations", KILN__ROUTE_IMAGES_GENERATIONS},
        {"/v1/images/edits", KILN__ROUTE_IMAGES_EDITS},
        {"/sdapi/v1/txt2img", KILN__ROUTE_SD_TXT2IMG},
        {"/sdapi/v1/img2img", KILN__ROUTE_SD_IMG2IMG},
        {"/sdapi/v1/progress", KILN__ROUTE_SD_PROGRESS},
        {"/sdapi/v1/interrupt", KILN__ROUTE_SD_INTERRUPT},
        {"/sdapi/v1/samplers", KILN__ROUTE_SD_SAMPLERS},
        {"/sdapi/v1/schedulers", KILN__ROUTE_SD_SCHEDULERS},
        {"/sdapi/v1/sd-models", KILN__ROUTE_SD_MODELS},
        {"/sdapi/v1/options", KILN__ROUTE_SD_OPTIONS},
        {"/sdapi/v1/png-info", KILN__ROUTE_SD_PNG_INFO},
    };
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++)
        if (strcmp(url, fixed[i].path) == 0) return fixed[i].route;
    if (strncmp(url, "/v1/jobs/", 9) != 0) return KILN__ROUTE_OTHER;
    const char *id = url + 9;
    size_t len = strcspn(id, "/");
    enum kiln__route r;
    if (id[len] == '\0') r = KILN__ROUTE_JOB;
    else if (strcmp(id + len, "/stream") == 0) r = KILN__ROUTE_JOB_STREAM;
    else return KILN__ROUTE_OTHER;
    if (len == 0) return KILN__ROUTE_OTHER;
    if (len < sizeof rq->job_id) {
        memcpy(rq->job_id, id, len);
        rq->job_id[len] = '\0';
    }
    rq->job_id_bad = len >= sizeof rq->job_id || !kiln__job_id_valid(rq->job_id);
    return r;
}

int kiln__http_conn_fd(struct MHD_Connection *c) {
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
    return ci ? (int)ci->connect_fd : -1;
}

/* Add the headers every response carries, queue it, record the status. */
static enum MHD_Result queue(struct MHD_Connection *c, struct kiln__http_req *rq, int status,
                             struct MHD_Response *resp, const char *content_type) {
    if (!resp) return MHD_NO;
    char id[32];
    snprintf(id, sizeof id, "%llu", rq->id);
    MHD_add_response_header(resp, "Content-Type", content_type);
    MHD_add_response_header(resp, "X-Request-Id", id);
    enum MHD_Result r = MHD_queue_response(c, (unsigned)status, resp);
    MHD_destroy_response(resp);
    if (r == MHD_YES) rq->status = status;
    return r;
}

enum MHD_Result kiln__http_send_text(struct MHD_Connection *c, struct kiln__http_req *rq, int status,
                                     const char *content_type, const char *text, size_t len) {
    struct MHD_Response *resp = MHD_create_response_from_buffer(len, (void *)text, MHD_RESPMEM_MUST_COPY);
    return queue(c, rq, status, resp, content_type);
}

/* A response holding `body` (taken) as compact JSON plus a newline, or
 * NULL when out of memory. */
static struct MHD_Response *json_response(json_t *body) {
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    if (!text) return NULL;
    size_t len = strlen(text);
    text[len] = '\n'; /* the NUL becomes a final newline, handy for curl users */
    struct MHD_Response *resp = MHD_create_response_from_buffer(len + 1, text, MHD_RESPMEM_MUST_FREE);
    if (!resp) free(text);
    return resp;
}

enum MHD_Result kiln__http_send_json(struct MHD_Connection *c, struct kiln__http_req *rq, int status, json_t *body) {
    struct MHD_Response *resp = json_response(body);
    if (!resp) {
        static const char oom[] = "{\"error\":{\"message\":\"out of memory\",\"type\":\"server_error\","
                                  "\"code\":\"out_of_memory\"}}\n";
        return kiln__http_send_text(c, rq, 500, "application/json", oom, sizeof oom - 1);
    }
    return queue(c, rq, status, resp, "application/json");
}

/* An error response with its extra headers (Retry-After, WWW-Authenticate,
 * Allow), or NULL when out of memory. */
static struct MHD_Response *error_response(const struct kiln__api_error *err, const char *allow) {
    struct MHD_Response *resp = json_response(kiln__api_error_json(err));
    if (!resp) return NULL;
    if (err->retry_after > 0) {
        char ra[16];
        snprintf(ra, sizeof ra, "%d", err->retry_after);
        MHD_add_response_header(resp, "Retry-After", ra);
    }
    if (err->status == 401) MHD_add_response_header(resp, "WWW-Authenticate", "Bearer");
    if (allow) MHD_add_response_header(resp, "Allow", allow);
    return resp;
}

enum MHD_Result kiln__http_send_error(struct MHD_Connection *c, struct kiln__http_req *rq,
                                      const struct kiln__api_error *err) {
    return queue(c, rq, err->status, error_response(err, NULL), "application/json");
}

enum MHD_Result kiln__http_fail(struct MHD_Connection *c, struct kiln__http_req *rq, int status, const char *type,
                                const char *code, const char *fmt, ...) {
    struct kiln__api_error err;
    kiln__api_error_set(&err, status, type, code, NULL, "%s", "");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err.message, sizeof err.message, fmt, ap);
    va_end(ap);
    return kiln__http_send_error(c, rq, &err);
}

json_t *kiln__http_ready_json(struct kiln__worker *w, struct MHD_Connection *c, struct kiln__http_req *rq,
                               enum MHD_Result *result) {
    struct kiln__api_error err;
    if (kiln__worker_check_ready(w, &err) != 0) {
        *result = kiln__http_send_error(c, rq, &err);
        return NULL;
    }
    json_t *root = json_loadb(rq->body.data ? rq->body.data : "", rq->body.len, JSON_REJECT_DUPLICATES, NULL);
    if (json_is_object(root)) return root;
    json_decref(root);
    *result = kiln__http_fail(c, rq, 400, "invalid_request_error", "invalid_json", "request body: must be a JSON object");
    return NULL;
}

/* Compare the bearer token with the key in time that does not depend on
 * where they differ. */
static int key_matches(const char *given, const char *key) {
    size_t gl = strlen(given), kl = strlen(key);
    unsigned diff = gl != kl;
    for (size_t i = 0; i < kl; i++) diff |= (unsigned char)key[i] ^ (unsigned char)(i < gl ? given[i] : 0);
    return diff == 0;
}

static int authorized(struct kiln__worker *w, struct MHD_Connection *c) {
    if (!w->cfg.api_key) return 1;
    const char *h = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");
    if (!h || strncasecmp(h, "Bearer ", 7) != 0) return 0;
    h += 7;
    while (*h == ' ') h++;
    return key_matches(h, w->cfg.api_key);
}

/* The first call for a request: route, method, auth, declared size. Returns
 * the entry to run, or NULL after queuing a refusal. */
static const struct route_entry *admit(struct kiln__worker *w, struct MHD_Connection *c, struct kiln__http_req *rq,
                                       const char *url, const char *method, enum MHD_Result *result) {
    rq->route = match_path(url, rq);
    if (rq->route == KILN__ROUTE_OTHER) {
        *result = kiln__http_fail(c, rq, 404, "not_found_error", "unknown_route", "no route %.16s %.200s", method, url);
        return NULL;
    }
    const struct route_entry *e = NULL;
    char allow[64] = "";
    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++) {
        if (routes[i].route != rq->route) continue;
        if (strcmp(method, routes[i].method) == 0) e = &routes[i];
        if (allow[0]) strcat(allow, ", ");
        strcat(allow, routes[i].method);
    }
    if (!e) {
        struct kiln__api_error err;
        kiln__api_error_set(&err, 405, "invalid_request_error", "method_not_allowed", NULL,
                            "%.16s is not allowed on %s (allowed: %s)", method, kiln__route_label(rq->route), allow);
        *result = queue(c, rq, 405, error_response(&err, allow), "application/json");
        return NULL;
    }
    if (rq->route != KILN__ROUTE_HEALTH && !authorized(w, c)) {
        *result = kiln__http_fail(c, rq, 401, "authentication_error", "invalid_api_key",
                                  "missing or wrong API key (send Authorization: Bearer KEY)");
        return NULL;
    }
    const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Length");
    if (cl && strtoull(cl, NULL, 10) > w->cfg.max_body) {
        *result = kiln__http_fail(c, rq, 413, "invalid_request_error", "request_too_large",
                                  "request body: %s bytes is more than the limit of %zu", cl, w->cfg.max_body);
        return NULL;
    }
    if (rq->job_id_bad) {
        *result = kiln__http_fail(c, rq, 400, "invalid_request_error", "invalid_job_id",
                                  "job id: malformed (expected job- and 32 hex digits)");
        return NULL;
    }
    return e;
}

enum MHD_Result kiln__http_on_request(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                                      const char *version, const char *upload_data, size_t *upload_data_size,
                                      void **con_cls) {
    (void)version;
    struct kiln__worker *w = cls;
    struct kiln__http_req *rq = *con_cls;
    if (!rq) {
        rq = calloc(1, sizeof *rq);
        if (!rq) return MHD_NO;
        *con_cls = rq;
        atomic_fetch_add(&w->active_requests, 1);
        rq->id = atomic_fetch_add(&w->next_request_id, 1) + 1;
        rq->t0 = kiln__now();
        snprintf(rq->method, sizeof rq->method, "%s", method);
        enum MHD_Result result = MHD_YES;
        if (!admit(w, c, rq, url, method, &result)) return result;
        return MHD_YES; /* called again with the body, then once more at its end */
    }
    if (rq->status) { /* already answered: drop whatever still arrives */
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (*upload_data_size) {
        if (!rq->body_too_large && rq->body.len + *upload_data_size <= w->cfg.max_body) {
            if (kiln__buf_append(&rq->body, upload_data, *upload_data_size) != 0) rq->body_too_large = 1;
        } else {
            rq->body_too_large = 1;
            kiln__buf_free(&rq->body);
        }
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (rq->body_too_large)
        return kiln__http_fail(c, rq, 413, "invalid_request_error", "request_too_large",
                               "request body: more than the limit of %zu bytes", w->cfg.max_body);
    const struct route_entry *e = NULL;
    for (size_t i = 0; i < sizeof routes / sizeof routes[0] && !e; i++)
        if (routes[i].route == rq->route && strcmp(rq->method, routes[i].method) == 0) e = &routes[i];
    if (!e) return MHD_NO; /* cannot happen: admit() matched it */
    return e->handler(w, c, rq);
}

void kiln__http_on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                             enum MHD_RequestTerminationCode toe) {
    (void)c;
    struct kiln__worker *w = cls;
    struct kiln__http_req *rq = *con_cls;
    if (!rq) return;
    *con_cls = NULL;
    double ms = (kiln__now() - rq->t0) * 1e3;
    char tokens[64] = "";
    char job[KILN__JOB_ID_SIZE + 8] = "";
    if (rq->job) {
        struct kiln__job_info info;
        kiln__job_get_info(w->jobs, rq->job, &info);
        snprintf(tokens, sizeof tokens, " tokens_in=%d tokens_out=%d", rq->job->prompt_tokens,
                 info.stats.completion_tokens);
        snprintf(job, sizeof job, " job=%s", rq->job->id);
        kiln__job_release(w->jobs, rq->job);
    }
    const char *how = toe == MHD_REQUEST_TERMINATED_COMPLETED_OK ? ""
                      : toe == MHD_REQUEST_TERMINATED_CLIENT_ABORT ? " aborted_by_client"
                      : toe == MHD_REQUEST_TERMINATED_TIMEOUT_REACHED ? " timed_out"
                      : toe == MHD_REQUEST_TERMINATED_DAEMON_SHUTDOWN ? " shutdown"
                                                                       : " ended_with_error";
    KILN_LOG_INFO("request id=%llu %s %s status=%d%s%s ms=%.1f%s", rq->id, rq->method, kiln__route_label(rq->route),
                  rq->status, tokens, job, ms, how);
    kiln__metrics_request(w->metrics, rq->route, rq->status);
    kiln__buf_free(&rq->body);
    free(rq);
    atomic_fetch_sub(&w->active_requests, 1);
}
