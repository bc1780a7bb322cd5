/* src/worker/jobs.h - the job registry, the bounded queue and the runner
 * thread that executes jobs one at a time on the backend.
 *
 * HTTP threads submit, look up, stream and cancel jobs; only the runner
 * thread calls the backend's run_text. A job's output is kept as a list of
 * text pieces, so a stream can start (or finish being read) at any time.
 * Finished jobs stay readable for a TTL, and at most finished_cap of them
 * are kept, so the registry stays bounded whatever clients do. */
#ifndef KILN_WORKER_JOBS_H
#define KILN_WORKER_JOBS_H

#include <pthread.h>
#include <stddef.h>

#include "worker/backend.h"
#include "worker/buf.h"
#include "worker/metrics.h"
#include "worker/request.h"

/* Where a job is in its life. */
enum kiln__job_state {
    KILN__JOB_QUEUED,    /* waiting for the model */
    KILN__JOB_RUNNING,   /* on the model */
    KILN__JOB_COMPLETED, /* ended by max_tokens, EOS or a stop string */
    KILN__JOB_FAILED,    /* the backend reported an error */
    KILN__JOB_CANCELLED, /* cancelled (DELETE, client gone, shutdown) */
};

/* "queued", "running", "completed", "failed", "cancelled" (static). */
const char *kiln__job_state_name(enum kiln__job_state s);

/* Bytes of a job id with its NUL: "job-" and 32 lowercase hex digits. */
#define KILN__JOB_ID_SIZE 37

/* 1 when s looks like a job id (the right length and alphabet). */
int kiln__job_id_valid(const char *s);

/* What an image job made, encoded for the APIs. Set by the runner before
 * the job is marked finished; read-only afterwards. */
struct kiln__image_output {
    uint32_t count;     /* images made */
    char **b64;         /* [count] the encoded images in base64 (owned) */
    char **parameters;  /* [count] each image's A1111 infotext (owned) */
    uint64_t seed;      /* the seed of the first image (image i used seed + i) */
    uint32_t width;     /* pixels */
    uint32_t height;    /* pixels */
};

/* One job. The fields above `refs` are set at submit and never change; the
 * rest are guarded by the registry lock and read through the functions
 * below. */
struct kiln__job {
    char id[KILN__JOB_ID_SIZE];     /* "job-" + 32 hex digits */
    struct kiln__gen_request *req;  /* the request (owned) */
    int32_t prompt_tokens;          /* prompt tokens, counted at submit (0 = unknown) */
    int32_t max_tokens;             /* tokens to generate at most, clamped to the context */
    double created_unix;            /* wall-clock submit time, seconds since the epoch */
    struct kiln__jobs *registry;    /* the registry it belongs to */
    int refs;                       /* holders: the registry, the runner, HTTP requests */
    enum kiln__job_state state;     /* current state */
    int cancel;                     /* cancellation was asked; the runner stops at the next token */
    char cancel_why[48];            /* who asked: "client request", "client disconnected", ... */
    int stream_claimed;             /* a reader took the stream (it can be read once) */
    int in_registry;                /* still listed (not expired or evicted) */
    struct kiln__buf text;          /* all output text so far */
    size_t *piece_end;              /* end offset in text of each output piece */
    size_t n_pieces;                /* pieces so far */
    size_t cap_pieces;              /* entries allocated in piece_end */
    struct kiln__text_stats stats;  /* the backend's stats (once finished) */
    const char *error_code;         /* static code when failed: "context_length_exceeded", ... */
    char error[256];                /* the failure's message when failed */
    double queued_at;               /* monotonic seconds at submit */
    double started_at;              /* monotonic seconds when it started running (0 = not yet) */
    double finished_at;             /* monotonic seconds when it finished (0 = not yet) */
    struct kiln__image_output image_out; /* image jobs: the result (once completed) */
    uint32_t image_step;            /* image jobs: sampler steps done so far, over the whole batch */
    uint32_t image_total;           /* image jobs: sampler steps in all (0 = not known yet) */
    double image_eta_ms;            /* image jobs: estimated time left */
    char *preview_b64;              /* image jobs: the latest preview PNG in base64 (owned), or NULL */
    pthread_cond_t changed;         /* signalled on every new piece and state change */
    struct kiln__job *next;         /* next job in the registry list */
    struct kiln__job *qnext;        /* next job in the queue */
};

/* A consistent copy of a job's changing fields. */
struct kiln__job_info {
    enum kiln__job_state state;     /* current state */
    size_t n_pieces;                /* output pieces so far */
    size_t queue_position;          /* 1 = next to run, while queued; 0 otherwise */
    int cancel_requested;           /* cancellation asked but not yet effective */
    struct kiln__text_stats stats;  /* valid when finished */
    const char *error_code;         /* when failed (static), else NULL */
    char error[256];                /* when failed */
    double queue_ms;                /* time spent queued so far */
    uint32_t image_step;            /* image jobs: steps done (over the batch) */
    uint32_t image_total;           /* image jobs: steps in all (0 = not started) */
    double image_eta_ms;            /* image jobs: estimated time left */
};

/* Limits of the registry. */
struct kiln__jobs_config {
    size_t queue_cap;    /* jobs waiting at most besides the running one */
    size_t finished_cap; /* finished jobs kept at most (oldest go first); 0 = 256 */
    double ttl_s;        /* finished jobs are forgotten after this many seconds */
};

struct kiln__jobs;

/* A registry that takes no jobs until kiln__jobs_start. `metrics` is
 * borrowed (it counts finished jobs). */
kiln_status kiln__jobs_create(const struct kiln__jobs_config *cfg, struct kiln__metrics *metrics,
                              struct kiln__jobs **out);
/* Start the runner on `backend` (borrowed, loaded) and take jobs. */
kiln_status kiln__jobs_start(struct kiln__jobs *jobs, const struct kiln__backend *backend);
/* Cancel everything, stop the runner and free the registry. Every job
 * reference must have been released. NULL is fine. */
void kiln__jobs_free(struct kiln__jobs *jobs);

/* Queue a job running `req` (taken on success: the job owns it). With
 * claim_stream the caller is the job's only reader. On success returns 0
 * and *out is a new reference. Otherwise returns -1 with *err: 429 when the
 * queue is full (with retry_after), 503 while loading or stopping. */
int kiln__jobs_submit(struct kiln__jobs *jobs, struct kiln__gen_request *req, int32_t prompt_tokens,
                      int32_t max_tokens, int claim_stream, struct kiln__job **out, struct kiln__api_error *err);
/* A new reference to the job with this id, or NULL (unknown or expired). */
struct kiln__job *kiln__jobs_find(struct kiln__jobs *jobs, const char *id);
/* Take one more reference. */
void kiln__job_retain(struct kiln__jobs *jobs, struct kiln__job *job);
/* Drop a reference; NULL is fine. */
void kiln__job_release(struct kiln__jobs *jobs, struct kiln__job *job);
/* Become the job's stream reader: 0, or -1 when someone already is. */
int kiln__job_claim_stream(struct kiln__jobs *jobs, struct kiln__job *job);
/* Ask a job to stop: a queued job is cancelled at once, a running one at
 * its next token. Returns the state after the call. */
enum kiln__job_state kiln__job_cancel(struct kiln__jobs *jobs, struct kiln__job *job, const char *why);
/* Copy the job's changing fields into *info. */
void kiln__job_get_info(struct kiln__jobs *jobs, struct kiln__job *job, struct kiln__job_info *info);

/* What kiln__job_wait saw. */
enum kiln__wait_result {
    KILN__WAIT_READY,   /* new pieces or a new state */
    KILN__WAIT_TIMEOUT, /* nothing new within the timeout */
    KILN__WAIT_GONE,    /* the client's socket was closed */
};

/* Wait until the job has more than `have_pieces` pieces or a state other
 * than `seen_state`, the timeout passes, or (when fd >= 0) the peer closes
 * the socket fd (checked every 100 ms). */
enum kiln__wait_result kiln__job_wait(struct kiln__jobs *jobs, struct kiln__job *job, size_t have_pieces,
                                      enum kiln__job_state seen_state, int fd, int timeout_ms);
/* Pass pieces [from, n_pieces) to fn in order (under the registry lock: fn
 * must only copy). Returns the new cursor (n_pieces). */
size_t kiln__job_read_pieces(struct kiln__jobs *jobs, struct kiln__job *job, size_t from,
                             void (*fn)(void *user, const char *text, size_t len, size_t index), void *user);

/* The runner's piece callback (also for image events): append a piece,
 * wake readers; returns nonzero when the job should stop. */
int kiln__job_append_piece(void *job, const char *text, size_t len);
/* Record an image job's progress; `preview_b64` (may be NULL) is taken. */
void kiln__job_set_image_progress(struct kiln__job *job, uint32_t step, uint32_t total, double eta_ms,
                                  char *preview_b64);
/* A copy of the latest preview (malloc'ed base64 PNG), or NULL. */
char *kiln__job_preview_copy(struct kiln__jobs *jobs, struct kiln__job *job);
/* A new reference to the running job, or NULL when none runs. */
struct kiln__job *kiln__jobs_running(struct kiln__jobs *jobs);
/* Run an image job on the backend (the runner thread, without the lock):
 * progress and preview events become pieces, the images are encoded into
 * *out. Fills *stats; returns the engine's status (KILN_OK when cancelled,
 * with stop reason cancelled). */
kiln_status kiln__job_run_image(const struct kiln__backend *b, struct kiln__job *job, struct kiln__image_output *out,
                                struct kiln__text_stats *stats);
/* Release an image output's strings and zero it. */
void kiln__image_output_free(struct kiln__image_output *o);

/* Stop taking jobs (submit answers 503 from now on). */
void kiln__jobs_stop_accepting(struct kiln__jobs *jobs);
/* Wait until no job is queued or running, at most timeout_s. 1 when idle. */
int kiln__jobs_wait_idle(struct kiln__jobs *jobs, double timeout_s);
/* Cancel every queued and running job. */
void kiln__jobs_cancel_all(struct kiln__jobs *jobs, const char *why);
/* Gauges for metrics, heartbeat and /ready. */
void kiln__jobs_gauges(struct kiln__jobs *jobs, size_t *queue_depth, int *busy, size_t *tracked);

/* Seconds on the monotonic clock. */
double kiln__now(void);
/* 1 when the peer of a connected socket has closed it or it failed. */
int kiln__socket_peer_gone(int fd);

#endif /* KILN_WORKER_JOBS_H */
