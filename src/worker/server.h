/* src/worker/server.h - the worker daemon as a whole: start it (bind, then
 * load the model in the background), watch its phase, stop it gracefully.
 * `kiln serve` and the in-process tests drive it through these calls. */
#ifndef KILN_WORKER_SERVER_H
#define KILN_WORKER_SERVER_H

#include "kiln/status.h"
#include "worker/backend.h"
#include "worker/config.h"

struct kiln__worker;

/* Where the daemon is in its life. */
enum kiln__worker_phase {
    KILN__PHASE_LOADING,  /* listening; the model is loading (/ready: 503) */
    KILN__PHASE_READY,    /* taking jobs (/ready: 200) */
    KILN__PHASE_FAILED,   /* the model failed to load; the caller should stop */
    KILN__PHASE_STOPPING, /* kiln__worker_stop is under way */
};

/* Bind cfg->host:cfg->port, start answering HTTP, and load the model on a
 * background thread. `backend` is taken in every case (destroyed by
 * kiln__worker_stop, or here on failure). cfg is copied. On failure (the
 * address is in use, ...) returns a status and kiln_last_error(). */
kiln_status kiln__worker_start(const struct kiln__worker_config *cfg, const struct kiln__backend *backend,
                               struct kiln__worker **out);
/* The TCP port actually bound (useful with port 0). */
int kiln__worker_port(const struct kiln__worker *w);
/* The current phase. */
enum kiln__worker_phase kiln__worker_get_phase(struct kiln__worker *w);
/* Stop: refuse new jobs, give running and queued ones cfg->shutdown_s to
 * finish, cancel the rest (each stops within one token), close every
 * connection, send a last "stopping" heartbeat, free everything. NULL is
 * fine. */
void kiln__worker_stop(struct kiln__worker *w);

#endif /* KILN_WORKER_SERVER_H */
