/* src/worker/api_jobs.c - the rbee job protocol: POST /v1/jobs, GET and
 * DELETE /v1/jobs/{id}, GET /v1/jobs/{id}/stream. */
#include <stdio.h>
#include <string.h>

#include "worker/request_image.h"
#include "worker/worker_impl.h"

int kiln__worker_check_ready(struct kiln__worker *w, struct kiln__api_error *err) {
    enum kiln__worker_phase p = kiln__worker_get_phase(w);
    if (p == KILN__PHASE_READY) return 0;
    if (p == KILN__PHASE_LOADING) {
        kiln__api_error_set(err, 503, "server_error", "model_loading", NULL, "the model is still loading");
        err->retry_after = 5;
    } else if (p == KILN__PHASE_STOPPING) {
        kiln__api_error_set(err, 503, "server_error", "shutting_down", NULL, "the worker is shutting down");
    } else {
        kiln__api_error_set(err, 503, "server_error", "model_failed", NULL, "the model failed to load");
    }
    return -1;
}

int kiln__worker_size_request(struct kiln__worker *w, const struct kiln__gen_request *req, int32_t *prompt_tokens,
                              int32_t *max_tokens, struct kiln__api_error *err) {
    struct kiln__text_job tj;
    kiln__gen_request_text_job(req, 1, &tj);
    int32_t n = 0;
    const char *field = req->messages ? "messages" : "prompt";
    kiln_status st = w->backend.count_tokens(w->backend.ctx, &tj, &n);
    if (st != KILN_OK) {
        kiln__api_error_set(err, st == KILN_ERR_OUT_OF_MEMORY ? 500 : 400,
                            st == KILN_ERR_OUT_OF_MEMORY ? "server_error" : "invalid_request_error",
                            st == KILN_ERR_OUT_OF_MEMORY ? "out_of_memory" : "invalid_value", field, "%s: %s", field,
                            kiln_last_error());
        return -1;
    }
    int32_t ctx = w->info->context_length;
    if (n >= ctx) {
        kiln__api_error_set(err, 400, "invalid_request_error", "context_length_exceeded", field,
                            "%s: %d tokens do not fit the context of %d tokens (with room for one to generate)", field,
                            n, ctx);
        return -1;
    }
    int32_t want = req->max_tokens > 0 ? req->max_tokens : KILN__DEFAULT_MAX_TOKENS;
    *prompt_tokens = n;
    *max_tokens = want < ctx - n ? want : ctx - n;
    return 0;
}

enum MHD_Result kiln__api_job_submit(struct kiln__worker *w, struct MHD_Connection *c, struct kiln__http_req *rq) {
    struct kiln__api_error err;
    if (kiln__worker_check_ready(w, &err) != 0) return kiln__http_send_error(c, rq, &err);
    struct kiln__gen_request *req = NULL;
    if (kiln__gen_request_parse(KILN__API_JOB, rq->body.data ? rq->body.data : "", rq->body.len, &req, &err) != 0)
        return kiln__http_send_error(c, rq, &err);
    if (!(w->info->caps & kiln__operation_cap(req->op))) {
        kiln__api_error_set(&err, 400, "invalid_request_error", "unsupported_operation", "operation",
                            "operation: '%s' is not supported by this worker's model '%s' (%s model)",
                            kiln__operation_name(req->op), w->info->model_id,
                            (w->info->caps & KILN__CAP_TEXT) ? "a text" : "an image");
        kiln__gen_request_free(req);
        return kiln__http_send_error(c, rq, &err);
    }
    int32_t prompt_tokens = 0, max_tokens = 0;
    struct kiln__job *job = NULL;
    if (req->op != KILN__OP_INFER) {
        /* An image operation: its fields are checked against the model's limits here. */
        if (kiln__image_request_from_job(req->root, req->op, &w->info->image, &req->image, &err) == 0)
            req->seed_given = req->image->seed_given;
        if (!req->image || kiln__jobs_submit(w->jobs, req, 0, 0, 0, &job, &err) != 0) {
            kiln__gen_request_free(req);
            return kiln__http_send_error(c, rq, &err);
        }
    } else if (kiln__worker_size_request(w, req, &prompt_tokens, &max_tokens, &err) != 0 ||
        kiln__jobs_submit(w->jobs, req, prompt_tokens, max_tokens, 0, &job, &err) != 0) {
        kiln__gen_request_free(req);
        return kiln__http_send_error(c, rq, &err);
    }
    rq->job = job;
    char url[64];
    snprintf(url, sizeof url, "/v1/jobs/%s/stream", job->id);
    return kiln__http_send_json(c, rq, 200, json_pack("{s:s, s:s}", "job_id", job->id, "sse_url", url));
}

/* The job named in the URL (a reference kept in rq->job), or NULL after
 * queuing a 404. */
static struct kiln__job *lookup(struct kiln__worker *w, struct MHD_Connection *c, struct kiln__http_req *rq,
                                enum MHD_Result *result) {
    struct kiln__job *job = kiln__jobs_find(w->jobs, rq->job_id);
    if (!job) {
        *result = kiln__http_fail(c, rq, 404, "not_found_error", "job_not_found",
                                  "job id: no job %s (unknown, or finished more than %g s ago)", rq->job_id,
                                  w->cfg.job_ttl_s);
        return NULL;
    }
    rq->job = job;
    return job;
}

/* A job's state as JSON. */
static json_t *job_json(struct kiln__worker *w, struct kiln__job *job) {
    struct kiln__job_info info;
    kiln__job_get_info(w->jobs, job, &info);
    json_t *o = json_pack("{s:s, s:s, s:s, s:I, s:i, s:i}", "job_id", job->id, "state",
                          kiln__job_state_name(info.state), "operation", kiln__operation_name(job->req->op), "created",
                          (json_int_t)job->created_unix, "tokens_in", (json_int_t)job->prompt_tokens, "tokens_out",
                          (json_int_t)(info.state == KILN__JOB_RUNNING ? (int32_t)info.n_pieces
                                                                       : info.stats.completion_tokens));
    if (!o) return NULL;
    if (info.state == KILN__JOB_QUEUED) json_object_set_new(o, "queue_position", json_integer((json_int_t)info.queue_position));
    if (info.cancel_requested) json_object_set_new(o, "cancel_requested", json_true());
    if (info.state == KILN__JOB_COMPLETED || info.state == KILN__JOB_CANCELLED)
        json_object_set_new(o, "stop_reason", json_string(kiln__stop_reason_name(info.stats.stop_reason)));
    if (info.state == KILN__JOB_FAILED)
        json_object_set_new(o, "error", json_pack("{s:s, s:s}", "code", info.error_code, "message", info.error));
    return o;
}

enum MHD_Result kiln__api_job_get(struct kiln__worker *w, struct MHD_Connection *c, struct kiln__http_req *rq) {
    enum MHD_Result r = MHD_NO;
    struct kiln__job *job = lookup(w, c, rq, &r);
    if (!job) return r;
    return kiln__http_send_json(c, rq, 200, job_json(w, job));
}

enum MHD_Result kiln__api_job_delete(struct kiln__worker *w, struct MHD_Connection *c, struct kiln__http_req *rq) {
    enum MHD_Result r = MHD_NO;
    struct kiln__job *job = lookup(w, c, rq, &r);
    if (!job) return r;
    enum kiln__job_state s = kiln__job_cancel(w->jobs, job, "client request");
    /* 202 while a running job winds down (within one token), 200 once final. */
    return kiln__http_send_json(c, rq, s == KILN__JOB_RUNNING ? 202 : 200, job_json(w, job));
}

enum MHD_Result kiln__api_job_stream(struct kiln__worker *w, struct MHD_Connection *c, struct kiln__http_req *rq) {
    enum MHD_Result r = MHD_NO;
    struct kiln__job *job = lookup(w, c, rq, &r);
    if (!job) return r;
    if (kiln__job_claim_stream(w->jobs, job) != 0)
        return kiln__http_fail(c, rq, 409, "invalid_request_error", "stream_already_read",
                               "job %s: its stream has already been read (a stream can be read once)", job->id);
    return kiln__http_send_stream(w, c, rq, job, KILN__STREAM_RBEE);
}
