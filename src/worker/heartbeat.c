/* src/worker/heartbeat.c - the heartbeat thread. */
#include "worker/heartbeat.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <time.h>

#include "core/log.h"
#include "worker/httpc.h"
#include "worker/jobs.h"

/* Path the hive listens on, appended to the hive URL's path. */
#define HEARTBEAT_PATH "/v1/worker-heartbeat"
/* Time one POST may take. */
#define POST_TIMEOUT_MS 5000

struct kiln__heartbeat {
    struct kiln__http_url url;       /* where to send */
    double interval_s;               /* time between heartbeats */
    kiln__heartbeat_body_fn body_fn; /* builds the body */
    void *user;                      /* for body_fn */
    pthread_t thread;                /* the sender */
    pthread_mutex_t lock;            /* guards the flags below */
    pthread_cond_t wake;             /* poke and stop signal here */
    int poked;                       /* send the next one now */
    int stop;                        /* the thread must exit */
    int failures;                    /* consecutive failed sends */
};

/* One heartbeat; 0 when the hive answered 2xx. */
static int send_once(struct kiln__heartbeat *hb, int timeout_ms) {
    struct kiln__buf body = {0};
    int ok = -1;
    if (hb->body_fn(hb->user, &body) != 0 || body.failed) {
        KILN_LOG_WARN("heartbeat: cannot build the body (out of memory)");
        goto out;
    }
    int status = 0;
    kiln_status st = kiln__http_post_json(&hb->url, HEARTBEAT_PATH, body.data, body.len, timeout_ms, &status);
    if (st == KILN_OK && status >= 200 && status < 300) {
        if (hb->failures) KILN_LOG_INFO("heartbeat: the hive answers again after %d failures", hb->failures);
        hb->failures = 0;
        ok = 0;
        goto out;
    }
    hb->failures++;
    /* Log the first failures, then one in ten, so a hive that is down
     * does not flood the log. */
    if (hb->failures <= 3 || hb->failures % 10 == 0) {
        if (st != KILN_OK) KILN_LOG_WARN("heartbeat failed (%d in a row): %s", hb->failures, kiln_last_error());
        else KILN_LOG_WARN("heartbeat failed (%d in a row): the hive answered HTTP %d", hb->failures, status);
    }
out:
    kiln__buf_free(&body);
    return ok;
}

static void *heartbeat_main(void *arg) {
    struct kiln__heartbeat *hb = arg;
    pthread_mutex_lock(&hb->lock);
    while (!hb->stop) {
        pthread_mutex_unlock(&hb->lock);
        int ok = send_once(hb, POST_TIMEOUT_MS);
        pthread_mutex_lock(&hb->lock);
        double wait = ok == 0 || hb->interval_s < 5 ? hb->interval_s : 5;
        double deadline = kiln__now() + wait;
        while (!hb->stop && !hb->poked && kiln__now() < deadline) {
            struct timespec ts = {(time_t)deadline, (long)((deadline - (double)(time_t)deadline) * 1e9)};
            pthread_cond_timedwait(&hb->wake, &hb->lock, &ts);
        }
        hb->poked = 0;
    }
    pthread_mutex_unlock(&hb->lock);
    send_once(hb, 2000); /* the last word: status "stopping" */
    return NULL;
}

kiln_status kiln__heartbeat_start(const char *hive_url, double interval_s, kiln__heartbeat_body_fn body_fn, void *user,
                                  struct kiln__heartbeat **out) {
    *out = NULL;
    struct kiln__heartbeat *hb = calloc(1, sizeof *hb);
    if (!hb) return kiln__fail(KILN_ERR_OUT_OF_MEMORY, "heartbeat: out of memory");
    kiln_status st = kiln__http_url_parse(hive_url, &hb->url);
    if (st != KILN_OK) {
        free(hb);
        return st;
    }
    hb->interval_s = interval_s;
    hb->body_fn = body_fn;
    hb->user = user;
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    int bad = pthread_mutex_init(&hb->lock, NULL) != 0;
    bad |= pthread_cond_init(&hb->wake, &ca) != 0;
    pthread_condattr_destroy(&ca);
    int rc = bad ? EAGAIN : pthread_create(&hb->thread, NULL, heartbeat_main, hb);
    if (rc != 0) {
        free(hb);
        return kiln__fail(KILN_ERR_INTERNAL, "heartbeat: cannot start its thread");
    }
    *out = hb;
    return KILN_OK;
}

void kiln__heartbeat_poke(struct kiln__heartbeat *hb) {
    if (!hb) return;
    pthread_mutex_lock(&hb->lock);
    hb->poked = 1;
    pthread_cond_signal(&hb->wake);
    pthread_mutex_unlock(&hb->lock);
}

void kiln__heartbeat_stop(struct kiln__heartbeat *hb) {
    if (!hb) return;
    pthread_mutex_lock(&hb->lock);
    hb->stop = 1;
    pthread_cond_signal(&hb->wake);
    pthread_mutex_unlock(&hb->lock);
    pthread_join(hb->thread, NULL);
    pthread_cond_destroy(&hb->wake);
    pthread_mutex_destroy(&hb->lock);
    free(hb);
}
