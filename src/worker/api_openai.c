/* src/worker/api_openai.c - OpenAI-compatible generation routes:
 * POST /v1/completions and POST /v1/chat/completions, streamed (SSE chunks,
 * a usage chunk, [DONE]) or answered in one JSON object. */
#include <stdio.h>
#include <string.h>

#include "worker/sse.h"
#include "worker/worker_impl.h"

/* kiln__job_read_pieces callback: gather the text. */
static void gather(void *user, const char *text, size_t len, size_t index) {
    (void)index;
    kiln__buf_append_utf8(user, text, len);
}

/* Wait for the job to finish; -1 when the client went away first. */
static int wait_done(struct kiln__worker *w, struct MHD_Connection *c, struct kiln__job *job,
                     struct kiln__job_info *info) {
    int fd = kiln__http_conn_fd(c);
    for (;;) {
        kiln__job_get_info(w->jobs, job, info);
        if (info->state != KILN__JOB_QUEUED && info->state != KILN__JOB_RUNNING) return 0;
        if (kiln__job_wait(w->jobs, job, info->n_pieces, info->state, fd, 1000) == KILN__WAIT_GONE) return -1;
    }
}

/* The whole answer of a finished job. */
static enum MHD_Result answer(struct kiln__worker *w, struct MHD_Connection *c, struct kiln__http_req *rq,
                              struct kiln__job *job, const struct kiln__job_info *info, int chat) {
    if (info->state == KILN__JOB_FAILED) {
        int client_fault = strcmp(info->error_code, "context_length_exceeded") == 0;
        return kiln__http_fail(c, rq, client_fault ? 400 : 500, client_fault ? "invalid_request_error" : "server_error",
                               info->error_code, "%s", info->error);
    }
    if (info->state == KILN__JOB_CANCELLED)
        return kiln__http_fail(c, rq, 503, "server_error", "cancelled", "the job was cancelled before it finished");
    struct kiln__buf text = {0};
    kiln__job_read_pieces(w->jobs, job, 0, gather, &text);
    if (text.failed) {
        kiln__buf_free(&text);
        return kiln__http_fail(c, rq, 500, "server_error", "out_of_memory", "out of memory");
    }
    const char *finish = kiln__openai_finish_reason(info->stats.stop_reason);
    char id[48];
    snprintf(id, sizeof id, "%s-%s", chat ? "chatcmpl" : "cmpl", job->id + 4);
    json_t *content = json_stringn(text.data ? text.data : "", text.len);
    kiln__buf_free(&text);
    json_t *choice = chat ? json_pack("{s:i, s:{s:s, s:o}, s:n, s:s?}", "index", 0, "message", "role", "assistant",
                                      "content", content, "logprobs", "finish_reason", finish)
                          : json_pack("{s:i, s:o, s:n, s:s?}", "index", 0, "text", content, "logprobs",
                                      "finish_reason", finish);
    int32_t pt = info->stats.prompt_tokens, ct = info->stats.completion_tokens;
    json_t *body = json_pack("{s:s, s:s, s:I, s:s, s:[o], s:{s:i, s:i, s:i}}", "id", id, "object",
                             chat ? "chat.completion" : "text_completion", "created", (json_int_t)job->created_unix,
                             "model", w->info->model_id, "choices", choice, "usage", "prompt_tokens", (json_int_t)pt,
                             "completion_tokens", (json_int_t)ct, "total_tokens", (json_int_t)(pt + ct));
    return kiln__http_send_json(c, rq, 200, body);
}

static enum MHD_Result generate(struct kiln__worker *w, struct MHD_Connection *c, struct kiln__http_req *rq,
                                enum kiln__api_kind kind) {
    struct kiln__api_error err;
    if (kiln__worker_check_ready(w, &err) != 0) return kiln__http_send_error(c, rq, &err);
    struct kiln__gen_request *req = NULL;
    if (kiln__gen_request_parse(kind, rq->body.data ? rq->body.data : "", rq->body.len, &req, &err) != 0)
        return kiln__http_send_error(c, rq, &err);
    if (kind == KILN__API_CHAT && !(w->info->caps & KILN__CAP_CHAT)) {
        kiln__gen_request_free(req);
        return kiln__http_fail(c, rq, 400, "invalid_request_error", "unsupported",
                               "messages: the model '%s' has no chat template", w->info->model_id);
    }
    int32_t prompt_tokens, max_tokens;
    struct kiln__job *job = NULL;
    if (kiln__worker_size_request(w, req, &prompt_tokens, &max_tokens, &err) != 0 ||
        kiln__jobs_submit(w->jobs, req, prompt_tokens, max_tokens, 1, &job, &err) != 0) {
        kiln__gen_request_free(req);
        return kiln__http_send_error(c, rq, &err);
    }
    rq->job = job;
    if (job->req->stream)
        return kiln__http_send_stream(w, c, rq, job,
                                      kind == KILN__API_CHAT ? KILN__STREAM_OPENAI_CHAT : KILN__STREAM_OPENAI_COMPLETION);
    struct kiln__job_info info;
    if (wait_done(w, c, job, &info) != 0) {
        kiln__job_cancel(w->jobs, job, "client disconnected");
        return MHD_NO;
    }
    return answer(w, c, rq, job, &info, kind == KILN__API_CHAT);
}

enum MHD_Result kiln__api_completions(struct kiln__worker *w, struct MHD_Connection *c, struct kiln__http_req *rq) {
    return generate(w, c, rq, KILN__API_COMPLETION);
}

enum MHD_Result kiln__api_chat(struct kiln__worker *w, struct MHD_Connection *c, struct kiln__http_req *rq) {
    return generate(w, c, rq, KILN__API_CHAT);
}
