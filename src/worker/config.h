/* src/worker/config.h - the daemon's settings: defaults, command-line flags
 * and the environment variables that stand in for them. */
#ifndef KILN_WORKER_CONFIG_H
#define KILN_WORKER_CONFIG_H

#include <stddef.h>
#include <stdio.h>

#include "core/log.h"

/* The default request body limit for a text model (1 MiB: prompts and
 * chat histories), and for an image model (64 MiB: img2img and inpaint
 * requests carry base64 images, two 2048x2048 PNGs with room to spare). */
#define KILN__MAX_BODY_TEXT ((size_t)1 << 20)
#define KILN__MAX_BODY_IMAGE ((size_t)64 << 20)

/* Everything `kiln serve` can be told. */
struct kiln__worker_config {
    char model_path[1024];    /* -m: the model file or folder ("" = none) */
    char clip_vocab[1024];    /* image models: CLIP merges file or tokenizer folder ("" = the model's own) */
    char host[256];           /* address to bind (default 127.0.0.1) */
    int port;                 /* TCP port; 0 = any free one (default 8080) */
    char *api_key;            /* required bearer token (owned), or NULL for none */
    int queue;                /* jobs waiting at most besides the running one (default 16) */
    char worker_id[128];      /* this worker's id towards the hive ("" = derived at start) */
    char hive_url[512];       /* http:// base URL of the hive for heartbeats ("" = none) */
    int threads;              /* compute threads; 0 = one per core */
    int ctx;                  /* context length in tokens; 0 = the model's */
    kiln_log_format log_format; /* text or JSON lines */
    size_t max_body;          /* request body limit in bytes; 0 = by the backend (KILN__MAX_BODY_TEXT or _IMAGE) */
    double job_ttl_s;         /* finished jobs are kept this long (default 300 s) */
    int finished_jobs;        /* finished jobs kept at most (default 256) */
    double keepalive_s;       /* SSE keep-alive comment interval (default 10 s) */
    double heartbeat_s;       /* heartbeat interval (default 30 s) */
    double shutdown_s;        /* on SIGTERM, time jobs get to finish (default 10 s) */
    int max_connections;      /* simultaneous HTTP connections (default 256) */
    int conn_timeout_s;       /* idle connection timeout (default 60 s) */
    int fake;                 /* serve the deterministic test backend, no model */
    double fake_token_ms;     /* test backend: delay per token */
    double fake_load_ms;      /* test backend: load time */
};

/* Fill in every default. */
void kiln__worker_config_defaults(struct kiln__worker_config *cfg);
/* Release what the config owns (api_key); the config keeps its defaults. */
void kiln__worker_config_free(struct kiln__worker_config *cfg);

/* What kiln__worker_config_parse found. */
enum kiln__config_result {
    KILN__CONFIG_OK,    /* settings complete */
    KILN__CONFIG_HELP,  /* -h/--help was given */
    KILN__CONFIG_ERROR, /* a bad flag or value; err says which */
};

/* Apply environment variables (looked up through get_env, e.g. getenv),
 * then argv[1..argc) on top: "--flag value" or "--flag=value". On
 * KILN__CONFIG_ERROR, err holds a one-line message. */
enum kiln__config_result kiln__worker_config_parse(struct kiln__worker_config *cfg, int argc, char **argv,
                                                   const char *(*get_env)(const char *name), char *err,
                                                   size_t err_size);
/* The flags, their variables and defaults, for `kiln serve --help`. */
void kiln__worker_config_usage(FILE *out);

#endif /* KILN_WORKER_CONFIG_H */
