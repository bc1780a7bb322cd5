/* src/worker/server.c - the daemon's life: bind, load in the background,
 * serve, drain and stop. */
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"
#include "kiln/version.h"
#include "worker/worker_impl.h"

/* After cancelling, how long jobs get to notice (they stop within one token). */
#define CANCEL_GRACE_S 5.0
/* Once no job runs, how long answers and streams in flight get to reach
 * their clients before the connections are closed. */
#define FLUSH_GRACE_S 2.0

enum kiln__worker_phase kiln__worker_get_phase(struct kiln__worker *w) {
    pthread_mutex_lock(&w->lock);
    enum kiln__worker_phase p = w->phase;
    pthread_mutex_unlock(&w->lock);
    return p;
}

int kiln__worker_port(const struct kiln__worker *w) { return w->port; }

/* Load progress from the backend; nonzero cancels the load when stopping. */
static int on_load_progress(void *user, double fraction) {
    struct kiln__worker *w = user;
    pthread_mutex_lock(&w->lock);
    w->load_progress = fraction;
    int stop = w->phase == KILN__PHASE_STOPPING;
    pthread_mutex_unlock(&w->lock);
    return stop;
}

static void *loader_main(void *arg) {
    struct kiln__worker *w = arg;
    double t0 = kiln__now();
    kiln__clear_error();
    kiln_status st = w->backend.load(w->backend.ctx, on_load_progress, w);
    const struct kiln__backend_info *info = st == KILN_OK ? w->backend.info(w->backend.ctx) : NULL;
    pthread_mutex_lock(&w->lock);
    w->info = info; /* set before the phase says READY, which every reader checks first */
    pthread_mutex_unlock(&w->lock);
    if (st == KILN_OK) st = kiln__jobs_start(w->jobs, &w->backend);
    pthread_mutex_lock(&w->lock);
    if (st == KILN_OK) {
        w->load_seconds = kiln__now() - t0;
        w->load_progress = 1;
        if (w->phase == KILN__PHASE_LOADING) w->phase = KILN__PHASE_READY;
        KILN_LOG_INFO("model %s loaded in %.2f s (%s, context %d tokens, %s); ready", w->info->model_id,
                      w->load_seconds, w->info->family, w->info->context_length, w->info->implementation);
    } else {
        snprintf(w->load_error, sizeof w->load_error, "%s: %s", kiln_status_str(st), kiln_last_error());
        if (w->phase == KILN__PHASE_LOADING) {
            w->phase = KILN__PHASE_FAILED;
            KILN_LOG_ERROR("model load failed: %s", w->load_error);
        }
    }
    pthread_mutex_unlock(&w->lock);
    kiln__heartbeat_poke(w->heartbeat);
    return NULL;
}

/* The heartbeat body: who this worker is and what it is doing. */
static int heartbeat_body(void *user, struct kiln__buf *out) {
    struct kiln__worker *w = user;
    pthread_mutex_lock(&w->lock);
    enum kiln__worker_phase phase = w->phase;
    const struct kiln__backend_info *info = w->info;
    pthread_mutex_unlock(&w->lock);
    int busy = 0;
    size_t queued = 0;
    kiln__jobs_gauges(w->jobs, &queued, &busy, NULL);
    const char *status = "starting";
    switch (phase) {
    case KILN__PHASE_LOADING: status = "starting"; break;
    case KILN__PHASE_READY: status = busy || queued ? "busy" : "ready"; break;
    case KILN__PHASE_FAILED:
    case KILN__PHASE_STOPPING: status = "stopping"; break;
    }
    const char *model = info ? info->model_id : w->cfg.model_path;
    const char *device = info ? info->device : "cpu";
    time_t now = time(NULL);
    struct tm utc;
    gmtime_r(&now, &utc);
    char ts[32];
    strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%SZ", &utc);
    json_t *body = json_pack("{s:{s:s, s:s, s:s, s:i, s:s, s:s, s:s}, s:s}", "worker", "id", w->cfg.worker_id,
                             "model_id", model, "device", device, "port", (json_int_t)w->port, "status", status,
                             "implementation", "kiln", "version", KILN_VERSION_STRING, "timestamp", ts);
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    if (!text) return -1;
    int rc = kiln__buf_puts(out, text);
    free(text);
    return rc;
}

/* libmicrohttpd's own complaints go to our log. */
static void mhd_log(void *cls, const char *fmt, va_list ap) {
    (void)cls;
    char msg[512];
    vsnprintf(msg, sizeof msg, fmt, ap);
    size_t n = strlen(msg);
    while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == '\r')) msg[--n] = '\0';
    KILN_LOG_WARN("http: %s", msg);
}

/* Resolve cfg.host:cfg.port into addr. */
static kiln_status resolve_bind(const struct kiln__worker_config *cfg, struct sockaddr_storage *addr, socklen_t *len) {
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE}, *res = NULL;
    char port[8];
    snprintf(port, sizeof port, "%d", cfg->port);
    int gai = getaddrinfo(cfg->host, port, &hints, &res);
    if (gai != 0) return kiln__fail(KILN_ERR_INVALID_ARG, "serve: cannot resolve --host '%s': %s", cfg->host, gai_strerror(gai));
    memcpy(addr, res->ai_addr, res->ai_addrlen);
    *len = res->ai_addrlen;
    freeaddrinfo(res);
    return KILN_OK;
}

/* Free what start() built, in reverse order. */
static void worker_free(struct kiln__worker *w) {
    kiln__jobs_free(w->jobs);
    if (w->backend.destroy) w->backend.destroy(w->backend.ctx);
    kiln__metrics_free(w->metrics);
    kiln__worker_config_free(&w->cfg);
    pthread_mutex_destroy(&w->lock);
    free(w);
}

kiln_status kiln__worker_start(const struct kiln__worker_config *cfg, const struct kiln__backend *backend,
                               struct kiln__worker **out) {
    *out = NULL;
    struct kiln__worker *w = calloc(1, sizeof *w);
    if (!w || pthread_mutex_init(&w->lock, NULL) != 0) {
        free(w);
        backend->destroy(backend->ctx);
        return kiln__fail(KILN_ERR_OUT_OF_MEMORY, "serve: out of memory");
    }
    w->cfg = *cfg;
    w->cfg.api_key = NULL;
    /* No --max-body: an image backend takes base64 images, a text one prompts. */
    if (!w->cfg.max_body) w->cfg.max_body = backend->run_image ? KILN__MAX_BODY_IMAGE : KILN__MAX_BODY_TEXT;
    w->backend = *backend;
    w->phase = KILN__PHASE_LOADING;
    w->started_unix = (long long)time(NULL);
    kiln_status st = KILN_OK;
    if (cfg->api_key && !(w->cfg.api_key = strdup(cfg->api_key))) st = kiln__fail(KILN_ERR_OUT_OF_MEMORY, "serve: out of memory");
    if (st == KILN_OK && !(w->metrics = kiln__metrics_create())) st = kiln__fail(KILN_ERR_OUT_OF_MEMORY, "serve: out of memory");
    struct kiln__jobs_config jc = {(size_t)cfg->queue, (size_t)cfg->finished_jobs, cfg->job_ttl_s};
    if (st == KILN_OK) st = kiln__jobs_create(&jc, w->metrics, &w->jobs);
    struct sockaddr_storage addr;
    socklen_t alen = 0;
    if (st == KILN_OK) st = resolve_bind(cfg, &addr, &alen);
    if (st != KILN_OK) {
        worker_free(w);
        return st;
    }
    unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL | MHD_USE_ERROR_LOG;
    if (addr.ss_family == AF_INET6) flags |= MHD_USE_IPv6;
    w->mhd = MHD_start_daemon(flags, (uint16_t)cfg->port, NULL, NULL, kiln__http_on_request, w,
                              MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL, /* first, to catch every message */
                              MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr,
                              MHD_OPTION_CONNECTION_LIMIT, (unsigned)cfg->max_connections,
                              MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)cfg->conn_timeout_s,
                              MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(64 * 1024),
                              MHD_OPTION_NOTIFY_COMPLETED, kiln__http_on_completed, w,
                              MHD_OPTION_END);
    if (!w->mhd) {
        worker_free(w);
        return kiln__fail(KILN_ERR_IO, "serve: cannot listen on %s:%d (address in use, or not permitted)", cfg->host,
                          cfg->port);
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(w->mhd, MHD_DAEMON_INFO_BIND_PORT);
    w->port = di ? di->port : cfg->port;
    if (!w->cfg.worker_id[0]) {
        char host[64] = "localhost";
        gethostname(host, sizeof host - 1);
        host[sizeof host - 1] = '\0';
        snprintf(w->cfg.worker_id, sizeof w->cfg.worker_id, "kiln-%s-%d", host, w->port);
    }
    KILN_LOG_INFO("listening on http://%s:%d (worker %s, queue %d, auth %s); loading the model", cfg->host, w->port,
                  w->cfg.worker_id, cfg->queue, w->cfg.api_key ? "on" : "off");
    if (cfg->hive_url[0]) {
        st = kiln__heartbeat_start(cfg->hive_url, cfg->heartbeat_s, heartbeat_body, w, &w->heartbeat);
        if (st != KILN_OK) {
            MHD_stop_daemon(w->mhd);
            worker_free(w);
            return st;
        }
    }
    if (pthread_create(&w->loader, NULL, loader_main, w) != 0) {
        kiln__heartbeat_stop(w->heartbeat);
        MHD_stop_daemon(w->mhd);
        worker_free(w);
        return kiln__fail(KILN_ERR_INTERNAL, "serve: cannot start the loader thread");
    }
    w->loader_started = 1;
    *out = w;
    return KILN_OK;
}

void kiln__worker_stop(struct kiln__worker *w) {
    if (!w) return;
    pthread_mutex_lock(&w->lock);
    w->phase = KILN__PHASE_STOPPING;
    pthread_mutex_unlock(&w->lock);
    kiln__jobs_stop_accepting(w->jobs);
    kiln__heartbeat_poke(w->heartbeat);
    double t0 = kiln__now();
    KILN_LOG_INFO("stopping: no new jobs; waiting up to %g s for running ones", w->cfg.shutdown_s);
    if (w->loader_started) pthread_join(w->loader, NULL); /* a load in progress is cancelled */
    if (!kiln__jobs_wait_idle(w->jobs, w->cfg.shutdown_s)) {
        KILN_LOG_WARN("stopping: cancelling the jobs still queued or running");
        kiln__jobs_cancel_all(w->jobs, "shutdown");
        if (!kiln__jobs_wait_idle(w->jobs, CANCEL_GRACE_S)) KILN_LOG_ERROR("stopping: a job did not stop in time");
    }
    /* Streams now write their end events and [DONE]; let them go out. */
    double flush_until = kiln__now() + FLUSH_GRACE_S;
    while (atomic_load(&w->active_requests) > 0 && kiln__now() < flush_until) {
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    MHD_stop_daemon(w->mhd); /* closes every connection and joins their threads */
    kiln__heartbeat_stop(w->heartbeat);
    KILN_LOG_INFO("stopped after %.2f s", kiln__now() - t0);
    worker_free(w);
}
