/* src/worker/worker_impl.h - the daemon's state and the pieces its HTTP
 * routes share (internal to src/worker). */
#ifndef KILN_WORKER_IMPL_H
#define KILN_WORKER_IMPL_H

#include <jansson.h>
#include <microhttpd.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "worker/backend.h"
#include "worker/buf.h"
#include "worker/config.h"
#include "worker/heartbeat.h"
#include "worker/jobs.h"
#include "worker/metrics.h"
#include "worker/request.h"
#include "worker/server.h"

struct kiln__worker {
    struct kiln__worker_config cfg;       /* settings (api_key owned by this copy) */
    struct kiln__backend backend;         /* the model (owned) */
    const struct kiln__backend_info *info;/* the model's description, once loaded */
    struct kiln__metrics *metrics;        /* counters */
    struct kiln__jobs *jobs;              /* registry, queue, runner */
    struct kiln__heartbeat *heartbeat;    /* heartbeat sender, or NULL without a hive */
    struct MHD_Daemon *mhd;               /* the HTTP server */
    int port;                             /* the port bound */
    long long started_unix;               /* process start, for "created" fields */
    pthread_mutex_t lock;                 /* guards phase and the load fields */
    enum kiln__worker_phase phase;        /* loading, ready, failed, stopping */
    double load_progress;                 /* 0..1 while loading */
    double load_seconds;                  /* how long the load took (once loaded) */
    char load_error[320];                 /* why the load failed */
    pthread_t loader;                     /* the thread that loads the model */
    int loader_started;                   /* loader exists (join it) */
    atomic_ullong next_request_id;        /* request numbers for logs */
    atomic_int active_requests;           /* requests begun and not yet completed */
};

/* One HTTP request's state, from its first header to its completion. */
struct kiln__http_req {
    unsigned long long id;         /* request number (log lines, X-Request-Id) */
    double t0;                     /* monotonic arrival time */
    enum kiln__route route;        /* which route it matched */
    char method[16];               /* HTTP method (truncated) */
    char job_id[KILN__JOB_ID_SIZE];/* the {id} of job routes, if well formed */
    int job_id_bad;                /* the {id} was given but malformed */
    struct kiln__buf body;         /* the request body so far */
    int body_too_large;            /* the body passed cfg.max_body (discarded) */
    int status;                    /* status of the queued response; 0 = none yet */
    struct kiln__job *job;         /* the job it created or read (a reference), or NULL */
};

/* Queue a JSON response (body taken; NULL means out of memory: 500). */
enum MHD_Result kiln__http_send_json(struct MHD_Connection *c, struct kiln__http_req *rq, int status, json_t *body);
/* Queue an error response {"error":{...}} with its status and Retry-After. */
enum MHD_Result kiln__http_send_error(struct MHD_Connection *c, struct kiln__http_req *rq,
                                      const struct kiln__api_error *err);
/* Queue a simple error (printf-style message). */
enum MHD_Result kiln__http_fail(struct MHD_Connection *c, struct kiln__http_req *rq, int status, const char *type,
                                const char *code, const char *fmt, ...) KILN_PRINTF(6, 7);
/* The request body as a JSON object (a new reference) when the worker takes
 * jobs now; else NULL after queueing 503 (not ready) or 400 invalid_json
 * into *result. */
json_t *kiln__http_ready_json(struct kiln__worker *w, struct MHD_Connection *c, struct kiln__http_req *rq,
                               enum MHD_Result *result);
/* Queue a text response (text copied). */
enum MHD_Result kiln__http_send_text(struct MHD_Connection *c, struct kiln__http_req *rq, int status,
                                     const char *content_type, const char *text, size_t len);

/* How a stream formats its events. */
enum kiln__stream_format {
    KILN__STREAM_RBEE,              /* rbee job events */
    KILN__STREAM_OPENAI_COMPLETION, /* OpenAI text_completion chunks */
    KILN__STREAM_OPENAI_CHAT,       /* OpenAI chat.completion.chunk */
};
/* Queue an SSE response that follows `job` (a new reference is taken) to
 * its end. The client going away cancels the job. */
enum MHD_Result kiln__http_send_stream(struct kiln__worker *w, struct MHD_Connection *c, struct kiln__http_req *rq,
                                       struct kiln__job *job, enum kiln__stream_format fmt);
/* The socket of a connection, or -1. */
int kiln__http_conn_fd(struct MHD_Connection *c);

/* The phase, under the lock. */
enum kiln__worker_phase kiln__worker_get_phase(struct kiln__worker *w);
/* Check that the worker takes jobs now; else fill *err (503) and return -1. */
int kiln__worker_check_ready(struct kiln__worker *w, struct kiln__api_error *err);
/* Count the request's prompt tokens and settle max_tokens (the request's or
 * the default, clamped to the context). 400 when the prompt does not fit. */
int kiln__worker_size_request(struct kiln__worker *w, const struct kiln__gen_request *req, int32_t *prompt_tokens,
                              int32_t *max_tokens, struct kiln__api_error *err);

/* Routes. Each queues a response (or returns MHD_NO to drop the connection). */
enum MHD_Result kiln__api_health(struct kiln__worker *w, struct MHD_Connection *c, struct kiln__http_req *rq);
enum MHD_Result kiln__api_ready(struct kiln__worker *w, struct MHD_Connection *c, struct kiln__http_req *rq);
enum MHD_Result kiln__api_metrics(struct kiln__worker *w, struct MHD_Connection *c, struct kiln__http_req *rq);
enum MHD_Result kiln__api_models(struct kiln__worker *w, struct MHD_Connection *c, struct kiln__http_req *rq);
enum MHD_Result kiln__api_job_submit(struct kiln__worker *w, struct MHD_Connection *c, struct kiln__http_req *rq);
enum MHD_Result kiln__api_job_get(struct kiln__worker *w, struct MHD_Connection *c, struct kiln__http_req *rq);
enum MHD_Result kiln__api_job_delete(struct kiln__worker *w, struct MHD_Connection *c, struct kiln__http_req *rq);
enum MHD_Result kiln__api_job_stream(struct kiln__worker *w, struct MHD_Connection *c, struct kiln__http_req *rq);
enum MHD_Result kiln__api_completions(struct kiln__worker *w, struct MHD_Connection *c, struct kiln__http_req *rq);
enum MHD_Result kiln__api_chat(struct kiln__worker *w, struct MHD_Connection *c, struct kiln__http_req *rq);

enum MHD_Result kiln__api_images_generations(struct kiln__worker *w, struct MHD_Connection *c,
                                             struct kiln__http_req *rq);
enum MHD_Result kiln__api_images_edits(struct kiln__worker *w, struct MHD_Connection *c, struct kiln__http_req *rq);
enum MHD_Result kiln__api_a1111_txt2img(struct kiln__worker *w, struct MHD_Connection *c, struct kiln__http_req *rq);
enum MHD_Result kiln__api_a1111_img2img(struct kiln__worker *w, struct MHD_Connection *c, struct kiln__http_req *rq);
enum MHD_Result kiln__api_a1111_progress(struct kiln__worker *w, struct MHD_Connection *c, struct kiln__http_req *rq);
enum MHD_Result kiln__api_a1111_interrupt(struct kiln__worker *w, struct MHD_Connection *c, struct kiln__http_req *rq);
enum MHD_Result kiln__api_a1111_samplers(struct kiln__worker *w, struct MHD_Connection *c, struct kiln__http_req *rq);
enum MHD_Result kiln__api_a1111_schedulers(struct kiln__worker *w, struct MHD_Connection *c, struct kiln__http_req *rq);
enum MHD_Result kiln__api_a1111_models(struct kiln__worker *w, struct MHD_Connection *c, struct kiln__http_req *rq);
enum MHD_Result kiln__api_a1111_options_get(struct kiln__worker *w, struct MHD_Connection *c,
                                            struct kiln__http_req *rq);
enum MHD_Result kiln__api_a1111_options_set(struct kiln__worker *w, struct MHD_Connection *c,
                                            struct kiln__http_req *rq);
enum MHD_Result kiln__api_a1111_png_info(struct kiln__worker *w, struct MHD_Connection *c, struct kiln__http_req *rq);

struct kiln__image_request;
/* Queue an image job for `op` made of `image` and `root` (both taken) with
 * this request as its only reader, and wait for it to finish (rq->job
 * holds it). 0 when it completed (*info filled; the result is in
 * rq->job->image_out); -1 with *err (refused, failed, cancelled); -2 when
 * the client went away (the job is cancelled). */
int kiln__image_job_run(struct kiln__worker *w, struct MHD_Connection *c, struct kiln__http_req *rq,
                        enum kiln__operation op, json_t *root, struct kiln__image_request *image,
                        struct kiln__job_info *info, struct kiln__api_error *err);

/* The MHD callbacks (http.c). */
enum MHD_Result kiln__http_on_request(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                                      const char *version, const char *upload_data, size_t *upload_data_size,
                                      void **con_cls);
void kiln__http_on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                             enum MHD_RequestTerminationCode toe);

#endif /* KILN_WORKER_IMPL_H */
