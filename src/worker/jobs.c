/* src/worker/jobs.c - job registry, bounded queue and the runner thread.
 *
 * One mutex guards the whole registry (jobs, queue, states, output); each
 * job has its own condition variable that its readers wait on. The runner
 * takes the lock only around state changes and once per output piece, so
 * readers are never held up by the model. */
#include "worker/jobs.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>

#include "core/log.h"

struct kiln__jobs {
    pthread_mutex_t lock;               /* guards everything here and the jobs' changing fields */
    pthread_cond_t work;                /* the runner waits here for queued jobs */
    pthread_cond_t idle;                /* signalled when a job finishes (drain waits here) */
    struct kiln__jobs_config cfg;       /* limits */
    struct kiln__metrics *metrics;      /* counts finished jobs (borrowed) */
    const struct kiln__backend *backend;/* the loaded model (borrowed); NULL until started */
    struct kiln__job *all;              /* every listed job, newest first */
    size_t n_all;                       /* jobs listed */
    size_t n_finished;                  /* of those, finished */
    struct kiln__job *q_head, *q_tail;  /* the queue, oldest first */
    size_t n_queued;                    /* jobs in the queue */
    struct kiln__job *running;          /* the job on the model, or NULL */
    int accepting;                      /* submit takes jobs (started and not stopping) */
    int stopping;                       /* kiln__jobs_stop_accepting was called */
    int shutdown;                       /* the runner must exit */
    int runner_started;                 /* the runner thread exists (join it) */
    pthread_t runner;                   /* the runner thread */
    double avg_job_s;                   /* moving average of job run time (Retry-After) */
};

const char *kiln__job_state_name(enum kiln__job_state s) {
    switch (s) {
    case KILN__JOB_QUEUED: return "queued";
    case KILN__JOB_RUNNING: return "running";
    case KILN__JOB_COMPLETED: return "completed";
    case KILN__JOB_FAILED: return "failed";
    case KILN__JOB_CANCELLED: return "cancelled";
    }
    return "failed";
}

const char *kiln__stop_reason_name(enum kiln__stop_reason r) {
    switch (r) {
    case KILN__STOP_MAX_TOKENS: return "max_tokens";
    case KILN__STOP_EOS: return "eos";
    case KILN__STOP_SEQUENCE: return "stop_sequence";
    case KILN__STOP_CANCELLED: return "cancelled";
    case KILN__STOP_ERROR: return "error";
    }
    return "error";
}

double kiln__now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int kiln__socket_peer_gone(int fd) {
    struct pollfd p = {.fd = fd, .events = POLLIN};
    if (poll(&p, 1, 0) <= 0) return 0;
    if (p.revents & (POLLERR | POLLHUP | POLLNVAL)) return 1;
    if (!(p.revents & POLLIN)) return 0;
    /* Readable: either more request bytes (a pipelined request) or EOF. */
    char c;
    ssize_t n = recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
    if (n == 0) return 1;
    return n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR;
}

static int job_finished(const struct kiln__job *j) {
    return j->state == KILN__JOB_COMPLETED || j->state == KILN__JOB_FAILED || j->state == KILN__JOB_CANCELLED;
}

int kiln__job_id_valid(const char *s) {
    if (strncmp(s, "job-", 4) != 0 || strlen(s) != KILN__JOB_ID_SIZE - 1) return 0;
    for (const char *p = s + 4; *p; p++)
        if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f'))) return 0;
    return 1;
}

/* Random bytes from the kernel; on the (unexpected) failure of getrandom,
 * a mix of the clock and a counter, which still keeps ids unique. */
static void random_bytes(unsigned char *out, size_t n) {
    if (getrandom(out, n, 0) == (ssize_t)n) return;
    static unsigned long long counter;
    unsigned long long x = (unsigned long long)(kiln__now() * 1e9) ^ (++counter * 0x9E3779B97F4A7C15ull);
    for (size_t i = 0; i < n; i++) {
        x ^= x >> 33, x *= 0xff51afd7ed558ccdull, x ^= x >> 29;
        out[i] = (unsigned char)x;
    }
}

kiln_status kiln__jobs_create(const struct kiln__jobs_config *cfg, struct kiln__metrics *metrics,
                              struct kiln__jobs **out) {
    *out = NULL;
    struct kiln__jobs *jobs = calloc(1, sizeof *jobs);
    if (!jobs) return kiln__fail(KILN_ERR_OUT_OF_MEMORY, "worker: out of memory");
    jobs->cfg = *cfg;
    if (jobs->cfg.finished_cap == 0) jobs->cfg.finished_cap = 256;
    jobs->metrics = metrics;
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    int bad = pthread_mutex_init(&jobs->lock, NULL) != 0;
    bad |= pthread_cond_init(&jobs->work, &ca) != 0;
    bad |= pthread_cond_init(&jobs->idle, &ca) != 0;
    pthread_condattr_destroy(&ca);
    if (bad) {
        free(jobs);
        return kiln__fail(KILN_ERR_INTERNAL, "worker: cannot create the job registry's locks");
    }
    *out = jobs;
    return KILN_OK;
}

static void job_free(struct kiln__job *j) {
    kiln__gen_request_free(j->req);
    kiln__image_output_free(&j->image_out);
    free(j->preview_b64);
    kiln__buf_free(&j->text);
    free(j->piece_end);
    pthread_cond_destroy(&j->changed);
    free(j);
}

/* Drop a reference with the lock held. */
static void job_unref_locked(struct kiln__job *j) {
    if (--j->refs == 0) job_free(j);
}

/* Take a job out of the registry list (the lock is held). */
static void unlist_locked(struct kiln__jobs *jobs, struct kiln__job *j) {
    for (struct kiln__job **pp = &jobs->all; *pp; pp = &(*pp)->next)
        if (*pp == j) {
            *pp = j->next;
            break;
        }
    jobs->n_all--;
    if (job_finished(j)) jobs->n_finished--;
    j->in_registry = 0;
    job_unref_locked(j);
}

/* Forget finished jobs past their TTL, then the oldest finished ones while
 * more than `keep` are kept (the lock is held). */
static void reap_locked(struct kiln__jobs *jobs, size_t keep) {
    double now = kiln__now();
    struct kiln__job *j = jobs->all;
    while (j) {
        struct kiln__job *next = j->next;
        if (job_finished(j) && now - j->finished_at >= jobs->cfg.ttl_s) unlist_locked(jobs, j);
        j = next;
    }
    while (jobs->n_finished > keep) {
        struct kiln__job *oldest = NULL;
        for (j = jobs->all; j; j = j->next)
            if (job_finished(j) && (!oldest || j->finished_at < oldest->finished_at)) oldest = j;
        if (!oldest) break;
        unlist_locked(jobs, oldest);
    }
}

/* Record a state change and wake its readers (the lock is held). */
static void finish_locked(struct kiln__jobs *jobs, struct kiln__job *j, enum kiln__job_state state) {
    j->state = state;
    j->finished_at = kiln__now();
    jobs->n_finished++;
    pthread_cond_broadcast(&j->changed);
    pthread_cond_broadcast(&jobs->idle);
}

int kiln__job_append_piece(void *user, const char *text, size_t len) {
    struct kiln__job *j = user;
    struct kiln__jobs *jobs = j->registry;
    pthread_mutex_lock(&jobs->lock);
    if (len > 0) {
        if (j->n_pieces == j->cap_pieces) {
            size_t cap = j->cap_pieces ? j->cap_pieces * 2 : 64;
            size_t *p = realloc(j->piece_end, cap * sizeof *p);
            if (p) j->piece_end = p, j->cap_pieces = cap;
        }
        if (j->n_pieces < j->cap_pieces && kiln__buf_append(&j->text, text, len) == 0) {
            j->piece_end[j->n_pieces++] = j->text.len;
        } else if (!j->cancel) {
            /* Out of memory for the output: stop the job rather than lose text. */
            j->cancel = 1;
            snprintf(j->cancel_why, sizeof j->cancel_why, "out of memory");
        }
        pthread_cond_broadcast(&j->changed);
    }
    int cancel = j->cancel;
    pthread_mutex_unlock(&jobs->lock);
    return cancel;
}

static const char *error_code_of(kiln_status st) {
    switch (st) {
    case KILN_ERR_CONTEXT_FULL: return "context_length_exceeded";
    case KILN_ERR_OUT_OF_MEMORY: return "out_of_memory";
    case KILN_ERR_CANCELLED: return "cancelled";
    case KILN_OK:
    case KILN_ERR_INVALID_ARG:
    case KILN_ERR_IO:
    case KILN_ERR_NOT_FOUND:
    case KILN_ERR_FORMAT:
    case KILN_ERR_UNSUPPORTED:
    case KILN_ERR_TOO_LARGE:
    case KILN_ERR_INTERNAL:
    case KILN_STATUS_COUNT: break;
    }
    return "generation_failed";
}

/* Run one job (called without the lock) and record how it ended. */
static void run_job(struct kiln__jobs *jobs, struct kiln__job *j) {
    struct kiln__text_job tj;
    kiln__gen_request_text_job(j->req, j->max_tokens, &tj);
    struct kiln__text_stats stats;
    memset(&stats, 0, sizeof stats);
    kiln__clear_error();
    struct kiln__image_output out = {0};
    kiln_status st = j->req->image ? kiln__job_run_image(jobs->backend, j, &out, &stats)
                                   : jobs->backend->run_text(jobs->backend->ctx, &tj, kiln__job_append_piece, j, &stats);
    if (st != KILN_OK) stats.stop_reason = KILN__STOP_ERROR;
    pthread_mutex_lock(&jobs->lock);
    j->stats = stats;
    j->image_out = out;
    enum kiln__job_state state = KILN__JOB_COMPLETED;
    enum kiln__job_outcome outcome = KILN__OUTCOME_COMPLETED;
    if (stats.stop_reason == KILN__STOP_ERROR) {
        state = KILN__JOB_FAILED, outcome = KILN__OUTCOME_FAILED;
        j->error_code = error_code_of(st);
        snprintf(j->error, sizeof j->error, "%s", kiln_last_error()[0] ? kiln_last_error() : kiln_status_str(st));
    } else if (stats.stop_reason == KILN__STOP_CANCELLED) {
        state = KILN__JOB_CANCELLED, outcome = KILN__OUTCOME_CANCELLED;
    }
    double took = kiln__now() - j->started_at;
    jobs->avg_job_s = jobs->avg_job_s > 0 ? 0.8 * jobs->avg_job_s + 0.2 * took : took;
    jobs->running = NULL;
    finish_locked(jobs, j, state);
    if (j->req->image)
        KILN_LOG_INFO("job %s %s: %s, %u image(s), %.1f ms text encoder, %.1f ms in all%s%s", j->id,
                      kiln__job_state_name(state), kiln__operation_name(j->req->op), out.count, stats.prompt_ms,
                      stats.decode_ms, j->cancel ? ", cancelled by " : "", j->cancel ? j->cancel_why : "");
    else
        KILN_LOG_INFO("job %s %s: %d prompt + %d generated tokens, %.1f ms prompt, %.1f ms decode, stop %s%s%s",
                      j->id, kiln__job_state_name(state), stats.prompt_tokens, stats.completion_tokens,
                      stats.prompt_ms, stats.decode_ms, kiln__stop_reason_name(stats.stop_reason),
                      j->cancel ? ", cancelled by " : "", j->cancel ? j->cancel_why : "");
    if (state == KILN__JOB_FAILED) KILN_LOG_WARN("job %s failed: %s", j->id, j->error);
    kiln__metrics_job(jobs->metrics, outcome, &stats); /* lock order: jobs, then metrics */
    pthread_mutex_unlock(&jobs->lock);
}

static void *runner_main(void *arg) {
    struct kiln__jobs *jobs = arg;
    pthread_mutex_lock(&jobs->lock);
    for (;;) {
        while (!jobs->q_head && !jobs->shutdown) pthread_cond_wait(&jobs->work, &jobs->lock);
        if (jobs->shutdown) break;
        struct kiln__job *j = jobs->q_head;
        jobs->q_head = j->qnext;
        if (!jobs->q_head) jobs->q_tail = NULL;
        jobs->n_queued--;
        j->qnext = NULL;
        j->state = KILN__JOB_RUNNING;
        j->started_at = kiln__now();
        j->refs++;
        jobs->running = j;
        pthread_cond_broadcast(&j->changed);
        pthread_mutex_unlock(&jobs->lock);
        run_job(jobs, j);
        pthread_mutex_lock(&jobs->lock);
        job_unref_locked(j);
    }
    pthread_mutex_unlock(&jobs->lock);
    return NULL;
}

kiln_status kiln__jobs_start(struct kiln__jobs *jobs, const struct kiln__backend *backend) {
    pthread_mutex_lock(&jobs->lock);
    jobs->backend = backend;
    int rc = pthread_create(&jobs->runner, NULL, runner_main, jobs);
    if (rc == 0) {
        jobs->runner_started = 1;
        jobs->accepting = !jobs->stopping;
    }
    pthread_mutex_unlock(&jobs->lock);
    if (rc != 0) return kiln__fail(KILN_ERR_INTERNAL, "worker: cannot start the job runner: %s", strerror(rc));
    return KILN_OK;
}

void kiln__jobs_free(struct kiln__jobs *jobs) {
    if (!jobs) return;
    kiln__jobs_stop_accepting(jobs);
    kiln__jobs_cancel_all(jobs, "shutdown");
    pthread_mutex_lock(&jobs->lock);
    jobs->shutdown = 1;
    pthread_cond_broadcast(&jobs->work);
    pthread_mutex_unlock(&jobs->lock);
    if (jobs->runner_started) pthread_join(jobs->runner, NULL);
    while (jobs->all) {
        struct kiln__job *j = jobs->all;
        jobs->all = j->next;
        /* Every holder is gone by now; one that is not would be a bug, and
         * leaking its job (which a leak checker reports) beats freeing it
         * under the holder. */
        if (j->refs != 1) KILN_LOG_ERROR("job %s still has %d references at shutdown", j->id, j->refs - 1);
        else job_free(j);
    }
    pthread_cond_destroy(&jobs->work);
    pthread_cond_destroy(&jobs->idle);
    pthread_mutex_destroy(&jobs->lock);
    free(jobs);
}

int kiln__jobs_submit(struct kiln__jobs *jobs, struct kiln__gen_request *req, int32_t prompt_tokens,
                      int32_t max_tokens, int claim_stream, struct kiln__job **out, struct kiln__api_error *err) {
    *out = NULL;
    struct kiln__job *j = calloc(1, sizeof *j);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    int cond_ok = j && pthread_cond_init(&j->changed, &ca) == 0;
    pthread_condattr_destroy(&ca);
    if (!cond_ok) {
        free(j);
        kiln__api_error_set(err, 500, "server_error", "out_of_memory", NULL, "out of memory");
        return -1;
    }
    unsigned char rnd[24];
    random_bytes(rnd, sizeof rnd);
    memcpy(j->id, "job-", 4);
    for (int i = 0; i < 16; i++) snprintf(j->id + 4 + 2 * i, 3, "%02x", rnd[i]);
    if (!req->seed_given) memcpy(&req->sampling.seed, rnd + 16, sizeof req->sampling.seed);
    j->prompt_tokens = prompt_tokens;
    j->max_tokens = max_tokens;
    j->created_unix = (double)time(NULL);
    j->registry = jobs;
    j->stream_claimed = claim_stream;

    pthread_mutex_lock(&jobs->lock);
    if (!jobs->accepting) {
        int stopping = jobs->stopping;
        pthread_mutex_unlock(&jobs->lock);
        pthread_cond_destroy(&j->changed);
        free(j);
        if (stopping)
            kiln__api_error_set(err, 503, "server_error", "shutting_down", NULL, "the worker is shutting down");
        else
            kiln__api_error_set(err, 503, "server_error", "model_loading", NULL, "the model is still loading");
        err->retry_after = stopping ? 0 : 5;
        return -1;
    }
    size_t active = jobs->n_queued + (jobs->running ? 1 : 0);
    if (active >= jobs->cfg.queue_cap + 1) {
        double wait = jobs->avg_job_s * (double)active;
        pthread_mutex_unlock(&jobs->lock);
        pthread_cond_destroy(&j->changed);
        free(j);
        kiln__api_error_set(err, 429, "rate_limit_error", "queue_full", NULL,
                            "the job queue is full (%zu waiting); retry later", active);
        err->retry_after = wait < 1 ? 1 : wait > 60 ? 60 : (int)(wait + 0.5);
        return -1;
    }
    reap_locked(jobs, jobs->cfg.finished_cap - 1);
    j->req = req;
    j->refs = 2; /* the registry and the caller */
    j->in_registry = 1;
    j->queued_at = kiln__now();
    j->next = jobs->all;
    jobs->all = j;
    jobs->n_all++;
    if (jobs->q_tail) jobs->q_tail->qnext = j;
    else jobs->q_head = j;
    jobs->q_tail = j;
    jobs->n_queued++;
    pthread_cond_signal(&jobs->work);
    pthread_mutex_unlock(&jobs->lock);
    *out = j;
    return 0;
}

struct kiln__job *kiln__jobs_find(struct kiln__jobs *jobs, const char *id) {
    pthread_mutex_lock(&jobs->lock);
    reap_locked(jobs, jobs->cfg.finished_cap);
    struct kiln__job *j = jobs->all;
    while (j && strcmp(j->id, id) != 0) j = j->next;
    if (j) j->refs++;
    pthread_mutex_unlock(&jobs->lock);
    return j;
}

void kiln__job_retain(struct kiln__jobs *jobs, struct kiln__job *job) {
    pthread_mutex_lock(&jobs->lock);
    job->refs++;
    pthread_mutex_unlock(&jobs->lock);
}

void kiln__job_release(struct kiln__jobs *jobs, struct kiln__job *job) {
    if (!job) return;
    pthread_mutex_lock(&jobs->lock);
    job_unref_locked(job);
    pthread_mutex_unlock(&jobs->lock);
}

int kiln__job_claim_stream(struct kiln__jobs *jobs, struct kiln__job *job) {
    pthread_mutex_lock(&jobs->lock);
    int taken = job->stream_claimed;
    job->stream_claimed = 1;
    pthread_mutex_unlock(&jobs->lock);
    return taken ? -1 : 0;
}

/* Cancel with the lock held. */
static void cancel_locked(struct kiln__jobs *jobs, struct kiln__job *j, const char *why) {
    if (job_finished(j) || j->cancel) return;
    j->cancel = 1;
    snprintf(j->cancel_why, sizeof j->cancel_why, "%s", why);
    if (j->state != KILN__JOB_QUEUED) return; /* the runner stops it at its next token */
    struct kiln__job **pp = &jobs->q_head;
    struct kiln__job *prev = NULL;
    while (*pp && *pp != j) prev = *pp, pp = &(*pp)->qnext;
    if (*pp) {
        *pp = j->qnext;
        if (jobs->q_tail == j) jobs->q_tail = prev;
        jobs->n_queued--;
    }
    j->qnext = NULL;
    j->stats.stop_reason = KILN__STOP_CANCELLED;
    j->stats.prompt_tokens = j->prompt_tokens;
    finish_locked(jobs, j, KILN__JOB_CANCELLED);
    KILN_LOG_INFO("job %s cancelled while queued (%s)", j->id, why);
    struct kiln__text_stats none = j->stats;
    none.prompt_tokens = 0; /* the prompt was never evaluated */
    kiln__metrics_job(jobs->metrics, KILN__OUTCOME_CANCELLED, &none); /* lock order: jobs, then metrics */
}

enum kiln__job_state kiln__job_cancel(struct kiln__jobs *jobs, struct kiln__job *job, const char *why) {
    pthread_mutex_lock(&jobs->lock);
    cancel_locked(jobs, job, why);
    enum kiln__job_state s = job->state;
    pthread_mutex_unlock(&jobs->lock);
    return s;
}

void kiln__job_get_info(struct kiln__jobs *jobs, struct kiln__job *job, struct kiln__job_info *info) {
    memset(info, 0, sizeof *info);
    pthread_mutex_lock(&jobs->lock);
    info->state = job->state;
    info->n_pieces = job->n_pieces;
    info->cancel_requested = job->cancel && !job_finished(job);
    info->stats = job->stats;
    if (job->state == KILN__JOB_QUEUED) {
        size_t pos = 1;
        for (struct kiln__job *q = jobs->q_head; q && q != job; q = q->qnext) pos++;
        info->queue_position = pos;
    }
    if (job->state == KILN__JOB_FAILED) {
        info->error_code = job->error_code;
        snprintf(info->error, sizeof info->error, "%s", job->error);
    }
    double end = job->started_at > 0 ? job->started_at : job->finished_at > 0 ? job->finished_at : kiln__now();
    info->queue_ms = (end - job->queued_at) * 1e3;
    info->image_step = job->image_step;
    info->image_total = job->image_total;
    info->image_eta_ms = job->image_eta_ms;
    pthread_mutex_unlock(&jobs->lock);
}

void kiln__job_set_image_progress(struct kiln__job *job, uint32_t step, uint32_t total, double eta_ms,
                                  char *preview_b64) {
    struct kiln__jobs *jobs = job->registry;
    pthread_mutex_lock(&jobs->lock);
    job->image_step = step;
    job->image_total = total;
    job->image_eta_ms = eta_ms;
    if (preview_b64) {
        free(job->preview_b64);
        job->preview_b64 = preview_b64;
    }
    pthread_mutex_unlock(&jobs->lock);
}

char *kiln__job_preview_copy(struct kiln__jobs *jobs, struct kiln__job *job) {
    pthread_mutex_lock(&jobs->lock);
    char *p = job->preview_b64 ? strdup(job->preview_b64) : NULL;
    pthread_mutex_unlock(&jobs->lock);
    return p;
}

struct kiln__job *kiln__jobs_running(struct kiln__jobs *jobs) {
    pthread_mutex_lock(&jobs->lock);
    struct kiln__job *j = jobs->running;
    if (j) j->refs++;
    pthread_mutex_unlock(&jobs->lock);
    return j;
}

enum kiln__wait_result kiln__job_wait(struct kiln__jobs *jobs, struct kiln__job *job, size_t have_pieces,
                                      enum kiln__job_state seen_state, int fd, int timeout_ms) {
    double deadline = kiln__now() + timeout_ms / 1e3;
    pthread_mutex_lock(&jobs->lock);
    for (;;) {
        if (job->n_pieces > have_pieces || job->state != seen_state) break;
        double now = kiln__now(), left = deadline - now;
        if (left <= 0) {
            pthread_mutex_unlock(&jobs->lock);
            return KILN__WAIT_TIMEOUT;
        }
        double slice = left < 0.1 ? left : 0.1;
        double until = now + slice;
        struct timespec ts = {(time_t)until, (long)((until - (double)(time_t)until) * 1e9)};
        int rc = pthread_cond_timedwait(&job->changed, &jobs->lock, &ts);
        if (rc == ETIMEDOUT && fd >= 0) {
            /* Nothing happened for a while: is the client still there? */
            pthread_mutex_unlock(&jobs->lock);
            if (kiln__socket_peer_gone(fd)) return KILN__WAIT_GONE;
            pthread_mutex_lock(&jobs->lock);
        }
    }
    pthread_mutex_unlock(&jobs->lock);
    return KILN__WAIT_READY;
}

size_t kiln__job_read_pieces(struct kiln__jobs *jobs, struct kiln__job *job, size_t from,
                             void (*fn)(void *user, const char *text, size_t len, size_t index), void *user) {
    pthread_mutex_lock(&jobs->lock);
    size_t n = job->n_pieces;
    for (size_t i = from; i < n; i++) {
        size_t start = i ? job->piece_end[i - 1] : 0;
        fn(user, job->text.data + start, job->piece_end[i] - start, i);
    }
    pthread_mutex_unlock(&jobs->lock);
    return n > from ? n : from;
}

void kiln__jobs_stop_accepting(struct kiln__jobs *jobs) {
    pthread_mutex_lock(&jobs->lock);
    jobs->stopping = 1;
    jobs->accepting = 0;
    pthread_mutex_unlock(&jobs->lock);
}

int kiln__jobs_wait_idle(struct kiln__jobs *jobs, double timeout_s) {
    double deadline = kiln__now() + timeout_s;
    pthread_mutex_lock(&jobs->lock);
    while ((jobs->q_head || jobs->running) && kiln__now() < deadline) {
        struct timespec ts = {(time_t)deadline, (long)((deadline - (double)(time_t)deadline) * 1e9)};
        pthread_cond_timedwait(&jobs->idle, &jobs->lock, &ts);
    }
    int idle = !jobs->q_head && !jobs->running;
    pthread_mutex_unlock(&jobs->lock);
    return idle;
}

void kiln__jobs_cancel_all(struct kiln__jobs *jobs, const char *why) {
    pthread_mutex_lock(&jobs->lock);
    while (jobs->q_head) cancel_locked(jobs, jobs->q_head, why);
    if (jobs->running) cancel_locked(jobs, jobs->running, why);
    pthread_mutex_unlock(&jobs->lock);
}

void kiln__jobs_gauges(struct kiln__jobs *jobs, size_t *queue_depth, int *busy, size_t *tracked) {
    pthread_mutex_lock(&jobs->lock);
    reap_locked(jobs, jobs->cfg.finished_cap);
    if (queue_depth) *queue_depth = jobs->n_queued;
    if (busy) *busy = jobs->running != NULL;
    if (tracked) *tracked = jobs->n_all;
    pthread_mutex_unlock(&jobs->lock);
}
