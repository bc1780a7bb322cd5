/* src/worker/metrics.h - the daemon's counters and their Prometheus text
 * exposition (GET /metrics). */
#ifndef KILN_WORKER_METRICS_H
#define KILN_WORKER_METRICS_H

#include <stddef.h>

#include "worker/backend.h"
#include "worker/buf.h"

/* The routes, as metric labels (a fixed set: label values never come from
 * the request, so a scanner cannot grow the series without bound). */
enum kiln__route {
    KILN__ROUTE_HEALTH,      /* GET /health */
    KILN__ROUTE_READY,       /* GET /ready */
    KILN__ROUTE_METRICS,     /* GET /metrics */
    KILN__ROUTE_MODELS,      /* GET /v1/models */
    KILN__ROUTE_JOBS,        /* POST /v1/jobs */
    KILN__ROUTE_JOB,         /* GET, DELETE /v1/jobs/{id} */
    KILN__ROUTE_JOB_STREAM,  /* GET /v1/jobs/{id}/stream */
    KILN__ROUTE_COMPLETIONS, /* POST /v1/completions */
    KILN__ROUTE_CHAT,        /* POST /v1/chat/completions */
    KILN__ROUTE_IMAGES_GENERATIONS, /* POST /v1/images/generations */
    KILN__ROUTE_IMAGES_EDITS,       /* POST /v1/images/edits */
    KILN__ROUTE_SD_TXT2IMG,         /* POST /sdapi/v1/txt2img */
    KILN__ROUTE_SD_IMG2IMG,         /* POST /sdapi/v1/img2img */
    KILN__ROUTE_SD_PROGRESS,        /* GET /sdapi/v1/progress */
    KILN__ROUTE_SD_INTERRUPT,       /* POST /sdapi/v1/interrupt */
    KILN__ROUTE_SD_SAMPLERS,        /* GET /sdapi/v1/samplers */
    KILN__ROUTE_SD_SCHEDULERS,      /* GET /sdapi/v1/schedulers */
    KILN__ROUTE_SD_MODELS,          /* GET /sdapi/v1/sd-models */
    KILN__ROUTE_SD_OPTIONS,         /* GET, POST /sdapi/v1/options */
    KILN__ROUTE_SD_PNG_INFO,        /* POST /sdapi/v1/png-info */
    KILN__ROUTE_OTHER,       /* anything else (404s) */
    KILN__ROUTE_COUNT        /* number of routes; not a route */
};

/* The route's path as a label, e.g. "/v1/jobs/{id}" (static string). */
const char *kiln__route_label(enum kiln__route r);

/* How a job ended, for the job counters. */
enum kiln__job_outcome {
    KILN__OUTCOME_COMPLETED, /* ran to max_tokens, EOS or a stop string */
    KILN__OUTCOME_FAILED,    /* the backend failed */
    KILN__OUTCOME_CANCELLED, /* DELETE, a disconnect or shutdown */
    KILN__OUTCOME_COUNT      /* number of outcomes; not an outcome */
};

/* Values read at exposition time from the rest of the daemon. */
struct kiln__metrics_gauges {
    size_t queue_depth;  /* jobs waiting */
    int busy;            /* a job is running */
    int ready;           /* the model is loaded */
    double load_seconds; /* how long the model load took (0 while loading) */
    size_t jobs_tracked; /* jobs in the registry (queued, running, finished) */
};

struct kiln__metrics;

/* A new, zeroed set of counters; NULL when out of memory. */
struct kiln__metrics *kiln__metrics_create(void);
void kiln__metrics_free(struct kiln__metrics *m);
/* Count one answered request (status 100..599; others are counted as 0). */
void kiln__metrics_request(struct kiln__metrics *m, enum kiln__route route, int status);
/* Count a finished job and its token totals and rates. */
void kiln__metrics_job(struct kiln__metrics *m, enum kiln__job_outcome outcome, const struct kiln__text_stats *s);
/* Append the exposition text. Returns 0, or -1 when out of memory. */
int kiln__metrics_render(struct kiln__metrics *m, const struct kiln__metrics_gauges *g, struct kiln__buf *out);

#endif /* KILN_WORKER_METRICS_H */
