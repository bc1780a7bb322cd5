/* src/worker/stream.c - SSE responses that follow a job to its end.
 *
 * libmicrohttpd calls the reader whenever it can send more; in
 * thread-per-connection mode the reader may block, so it waits on the job
 * (with the keep-alive interval as timeout, and a check every 100 ms that
 * the client is still connected) and returns the next events. The client
 * going away before the end cancels the job. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "image/image_io.h"
#include "worker/request_image.h"
#include "worker/sse.h"
#include "worker/worker_impl.h"

/* Where a stream is. */
enum stream_phase {
    PHASE_WAITING,   /* the job is queued; only keep-alives so far */
    PHASE_STREAMING, /* the start event is out; pieces follow */
    PHASE_DONE,      /* the end and [DONE] are in the output buffer */
};

struct stream {
    struct kiln__worker *w;            /* the daemon */
    struct kiln__job *job;             /* the job followed (a reference) */
    enum kiln__stream_format fmt;      /* event format */
    struct kiln__openai_stream_id sid; /* OpenAI chunk identity */
    char sid_id[48];                   /* storage for sid.id */
    int fd;                            /* the client's socket (disconnect checks), or -1 */
    enum stream_phase phase;           /* progress */
    size_t cursor;                     /* pieces already formatted */
    struct kiln__buf out;              /* formatted bytes not yet handed to libmicrohttpd */
    size_t out_pos;                    /* of out, bytes already handed over */
};

/* kiln__job_read_pieces callback: format one piece. */
static void format_piece(void *user, const char *text, size_t len, size_t index) {
    struct stream *s = user;
    if (s->job->req->image) kiln__buf_append(&s->out, text, len); /* image events are whole SSE messages */
    else if (s->fmt == KILN__STREAM_RBEE) kiln__sse_rbee_token(&s->out, text, len, index);
    else kiln__sse_openai_chunk(&s->out, &s->sid, text, len, 0, NULL);
}

/* The start of the stream, once the job left the queue. */
static void format_start(struct stream *s, const struct kiln__job_info *info) {
    if (s->job->req->image) {
        kiln__sse_image_started(&s->out, s->job->id, s->sid.model, info->queue_ms);
        return;
    }
    switch (s->fmt) {
    case KILN__STREAM_RBEE:
        kiln__sse_rbee_started(&s->out, s->job->id, s->sid.model, s->job->prompt_tokens, info->queue_ms);
        break;
    case KILN__STREAM_OPENAI_CHAT: kiln__sse_openai_chunk(&s->out, &s->sid, "", 0, 1, NULL); break;
    case KILN__STREAM_OPENAI_COMPLETION: break;
    }
}

/* The end of the stream: the outcome, then [DONE]. */
static void format_end(struct stream *s, const struct kiln__job_info *info) {
    const struct kiln__text_stats *st = &info->stats;
    if (s->job->req->image) {
        /* The result is fixed once the job is final (and this stream holds a reference). */
        const struct kiln__image_output *o = &s->job->image_out;
        if (info->state == KILN__JOB_COMPLETED)
            kiln__sse_image_complete(&s->out, (const char *const *)o->b64, (const char *const *)o->parameters,
                                     o->count, o->seed, o->width, o->height,
                                     kiln__image_format_name(s->job->req->image->out_format));
        else if (info->state == KILN__JOB_FAILED)
            kiln__sse_image_error(&s->out, info->error_code, info->error);
        else
            kiln__sse_image_error(&s->out, "cancelled", "the job was cancelled");
    } else if (s->fmt == KILN__STREAM_RBEE) {
        if (info->state == KILN__JOB_FAILED) kiln__sse_rbee_error(&s->out, info->error_code, info->error);
        else kiln__sse_rbee_end(&s->out, st);
    } else if (info->state == KILN__JOB_COMPLETED) {
        kiln__sse_openai_chunk(&s->out, &s->sid, "", 0, 0, kiln__openai_finish_reason(st->stop_reason));
        kiln__sse_openai_usage(&s->out, &s->sid, st->prompt_tokens, st->completion_tokens);
    } else if (info->state == KILN__JOB_FAILED) {
        kiln__sse_openai_error(&s->out, info->error_code, info->error);
    } else {
        kiln__sse_openai_error(&s->out, "cancelled", "the job was cancelled");
    }
    kiln__sse_done(&s->out);
}

static int is_final(enum kiln__job_state st) {
    return st == KILN__JOB_COMPLETED || st == KILN__JOB_FAILED || st == KILN__JOB_CANCELLED;
}

/* Put the next bytes into s->out, waiting for them if need be. Returns 0,
 * or -1 when the client has gone. */
static int fill(struct stream *s) {
    int keepalive_ms = (int)(s->w->cfg.keepalive_s * 1000);
    for (;;) {
        struct kiln__job_info info;
        kiln__job_get_info(s->w->jobs, s->job, &info);
        if (s->phase == PHASE_WAITING && info.state != KILN__JOB_QUEUED) {
            format_start(s, &info);
            s->phase = PHASE_STREAMING;
        }
        if (s->phase == PHASE_STREAMING) {
            if (s->cursor < info.n_pieces) s->cursor = kiln__job_read_pieces(s->w->jobs, s->job, s->cursor, format_piece, s);
            else if (is_final(info.state)) {
                format_end(s, &info);
                s->phase = PHASE_DONE;
            }
        }
        if (s->out.len > 0) return s->out.failed ? -1 : 0;
        enum kiln__wait_result r = kiln__job_wait(s->w->jobs, s->job, s->cursor, info.state, s->fd, keepalive_ms);
        if (r == KILN__WAIT_GONE) return -1;
        if (r == KILN__WAIT_TIMEOUT) {
            kiln__sse_comment(&s->out, info.state == KILN__JOB_QUEUED ? "queued" : "keep-alive");
            return s->out.failed ? -1 : 0;
        }
    }
}

static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max) {
    (void)pos;
    struct stream *s = cls;
    if (s->out_pos >= s->out.len) {
        if (s->phase == PHASE_DONE) return MHD_CONTENT_READER_END_OF_STREAM;
        kiln__buf_clear(&s->out);
        s->out_pos = 0;
        if (fill(s) != 0) return MHD_CONTENT_READER_END_WITH_ERROR;
    }
    size_t n = s->out.len - s->out_pos;
    if (n > max) n = max;
    memcpy(buf, s->out.data + s->out_pos, n);
    s->out_pos += n;
    return (ssize_t)n;
}

static void stream_free(void *cls) {
    struct stream *s = cls;
    /* Ended before its end event went out: the client is gone. (After the
     * job finished this changes nothing.) */
    if (s->phase != PHASE_DONE || s->out_pos < s->out.len) kiln__job_cancel(s->w->jobs, s->job, "client disconnected");
    kiln__job_release(s->w->jobs, s->job);
    kiln__buf_free(&s->out);
    free(s);
}

enum MHD_Result kiln__http_send_stream(struct kiln__worker *w, struct MHD_Connection *c, struct kiln__http_req *rq,
                                       struct kiln__job *job, enum kiln__stream_format fmt) {
    struct stream *s = calloc(1, sizeof *s);
    if (!s) return MHD_NO;
    s->w = w;
    s->job = job;
    s->fmt = fmt;
    s->fd = kiln__http_conn_fd(c);
    snprintf(s->sid_id, sizeof s->sid_id, "%s-%s", fmt == KILN__STREAM_OPENAI_CHAT ? "chatcmpl" : "cmpl", job->id + 4);
    s->sid.kind = fmt == KILN__STREAM_OPENAI_CHAT ? KILN__OPENAI_CHAT : KILN__OPENAI_COMPLETION;
    s->sid.id = s->sid_id;
    s->sid.created = (long long)job->created_unix;
    s->sid.model = w->info->model_id;
    kiln__job_retain(w->jobs, job); /* released by stream_free */
    struct MHD_Response *resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 4096, stream_read, s, stream_free);
    if (!resp) {
        kiln__job_release(w->jobs, job);
        free(s);
        return MHD_NO;
    }
    MHD_add_response_header(resp, "Cache-Control", "no-cache");
    MHD_add_response_header(resp, "X-Accel-Buffering", "no");
    char id[32];
    snprintf(id, sizeof id, "%llu", rq->id);
    MHD_add_response_header(resp, "Content-Type", "text/event-stream");
    MHD_add_response_header(resp, "X-Request-Id", id);
    enum MHD_Result r = MHD_queue_response(c, 200, resp);
    MHD_destroy_response(resp);
    if (r == MHD_YES) rq->status = 200;
    return r;
}
