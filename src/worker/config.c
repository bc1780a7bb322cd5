/* src/worker/config.c - `kiln serve` flags and environment variables, from
 * one table so that the two can never disagree. */
#include "worker/config.h"

#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

/* How an option's value is read. */
enum opt_type {
    OPT_STRING,   /* into a char array at `offset` of size `size` */
    OPT_INT,      /* int in [min, max] */
    OPT_DOUBLE,   /* double in [min, max] (seconds, milliseconds) */
    OPT_SIZE,     /* size_t in [min, max] */
    OPT_FLAG,     /* int set to 1; takes no value */
    OPT_LOGFMT,   /* "text" or "json" */
    OPT_KEY,      /* the API key itself */
    OPT_KEYFILE,  /* a file holding the API key */
};

/* One option. */
struct opt {
    const char *name;  /* long flag without "--" */
    char short_name;   /* one-letter flag, or 0 */
    const char *env;   /* environment variable, or NULL */
    enum opt_type type;/* how the value is read */
    size_t offset;     /* field in struct kiln__worker_config */
    size_t size;       /* OPT_STRING: the array's size */
    double min, max;   /* numeric range */
    const char *arg;   /* value name for the usage text, or NULL for flags */
    const char *help;  /* one line for the usage text */
};

#define FIELD(f) offsetof(struct kiln__worker_config, f)
#define STR(f) FIELD(f), sizeof(((struct kiln__worker_config *)0)->f)

static const struct opt opts[] = {
    {"model", 'm', "KILN_MODEL", OPT_STRING, STR(model_path), 0, 0, "PATH", "model file or folder to serve"},
    {"clip-vocab", 0, "KILN_CLIP_VOCAB", OPT_STRING, STR(clip_vocab), 0, 0, "PATH", "image models: CLIP merges file or tokenizer folder, for checkpoints that carry none"},
    {"host", 0, "KILN_HOST", OPT_STRING, STR(host), 0, 0, "ADDR", "address to listen on (default 127.0.0.1)"},
    {"port", 'p', "KILN_PORT", OPT_INT, FIELD(port), 0, 0, 65535, "N", "TCP port, 0 = any free one (default 8080)"},
    {"api-key", 0, "KILN_API_KEY", OPT_KEY, 0, 0, 0, 0, "KEY", "require Authorization: Bearer KEY (not on /health)"},
    {"api-key-file", 0, "KILN_API_KEY_FILE", OPT_KEYFILE, 0, 0, 0, 0, "FILE", "read the API key from FILE"},
    {"queue", 0, "KILN_QUEUE", OPT_INT, FIELD(queue), 0, 0, 100000, "N", "jobs waiting at most; more get 429 (default 16)"},
    {"worker-id", 0, "KILN_WORKER_ID", OPT_STRING, STR(worker_id), 0, 0, "ID", "this worker's id for the hive (default kiln-HOST-PORT)"},
    {"hive-url", 0, "KILN_HIVE_URL", OPT_STRING, STR(hive_url), 0, 0, "URL", "http:// URL of the hive; heartbeats go there"},
    {"threads", 't', "KILN_THREADS", OPT_INT, FIELD(threads), 0, 0, 1024, "N", "compute threads, 0 = one per core (default 0)"},
    {"ctx", 'c', "KILN_CTX", OPT_INT, FIELD(ctx), 0, 0, 1 << 24, "N", "context length in tokens, 0 = the model's (default 0)"},
    {"log-format", 0, "KILN_LOG_FORMAT", OPT_LOGFMT, 0, 0, 0, 0, "text|json", "log lines as text or JSON (default text)"},
    {"max-body", 0, "KILN_MAX_BODY", OPT_SIZE, FIELD(max_body), 0, 1024, 1 << 30, "BYTES", "largest request body (default 1048576; 67108864 for an image model)"},
    {"job-ttl", 0, "KILN_JOB_TTL", OPT_DOUBLE, FIELD(job_ttl_s), 0, 0, 86400, "SECONDS", "finished jobs are kept this long (default 300)"},
    {"finished-jobs", 0, "KILN_FINISHED_JOBS", OPT_INT, FIELD(finished_jobs), 0, 1, 1000000, "N", "finished jobs kept at most (default 256)"},
    {"keepalive", 0, "KILN_KEEPALIVE", OPT_DOUBLE, FIELD(keepalive_s), 0, 0.05, 3600, "SECONDS", "SSE keep-alive comment interval (default 10)"},
    {"heartbeat", 0, "KILN_HEARTBEAT", OPT_DOUBLE, FIELD(heartbeat_s), 0, 0.1, 86400, "SECONDS", "heartbeat interval (default 30)"},
    {"shutdown-timeout", 0, "KILN_SHUTDOWN_TIMEOUT", OPT_DOUBLE, FIELD(shutdown_s), 0, 0, 3600, "SECONDS", "on SIGTERM, time jobs get to finish before they are cancelled (default 10)"},
    {"max-connections", 0, "KILN_MAX_CONNECTIONS", OPT_INT, FIELD(max_connections), 0, 1, 65536, "N", "simultaneous connections (default 256)"},
    {"conn-timeout", 0, "KILN_CONN_TIMEOUT", OPT_INT, FIELD(conn_timeout_s), 0, 1, 86400, "SECONDS", "idle or slow connections are closed after this (default 60)"},
    {"fake-model", 0, NULL, OPT_FLAG, FIELD(fake), 0, 0, 0, NULL, "serve the deterministic test backend instead of a model (tests, demos)"},
    {"fake-token-ms", 0, NULL, OPT_DOUBLE, FIELD(fake_token_ms), 0, 0, 60000, "MS", "test backend: delay per token (default 0)"},
    {"fake-load-ms", 0, NULL, OPT_DOUBLE, FIELD(fake_load_ms), 0, 0, 600000, "MS", "test backend: load time (default 0)"},
};

void kiln__worker_config_defaults(struct kiln__worker_config *cfg) {
    memset(cfg, 0, sizeof *cfg);
    strcpy(cfg->host, "127.0.0.1");
    cfg->port = 8080;
    cfg->queue = 16;
    cfg->log_format = KILN_LOG_TEXT;
    cfg->max_body = 0; /* chosen by kiln__worker_start from the backend */
    cfg->job_ttl_s = 300;
    cfg->finished_jobs = 256;
    cfg->keepalive_s = 10;
    cfg->heartbeat_s = 30;
    cfg->shutdown_s = 10;
    cfg->max_connections = 256;
    cfg->conn_timeout_s = 60;
}

void kiln__worker_config_free(struct kiln__worker_config *cfg) {
    free(cfg->api_key);
    cfg->api_key = NULL;
}

/* Set the API key, refusing an empty one (which would mean "no auth" by
 * accident). */
static int set_key(struct kiln__worker_config *cfg, const char *key, size_t len, const char *from, char *err,
                   size_t err_size) {
    if (len == 0) {
        snprintf(err, err_size, "%s: the API key is empty", from);
        return -1;
    }
    char *k = malloc(len + 1);
    if (!k) {
        snprintf(err, err_size, "out of memory");
        return -1;
    }
    memcpy(k, key, len);
    k[len] = '\0';
    free(cfg->api_key);
    cfg->api_key = k;
    return 0;
}

/* The key file's first line, without trailing whitespace. */
static int read_key_file(struct kiln__worker_config *cfg, const char *path, const char *from, char *err,
                         size_t err_size) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, err_size, "%s: cannot open '%s': %s", from, path, strerror(errno));
        return -1;
    }
    char line[4096];
    size_t n = fread(line, 1, sizeof line - 1, f);
    int read_err = ferror(f);
    fclose(f);
    if (read_err) {
        snprintf(err, err_size, "%s: cannot read '%s'", from, path);
        return -1;
    }
    line[n] = '\0';
    n = strcspn(line, "\r\n");
    while (n > 0 && (line[n - 1] == ' ' || line[n - 1] == '\t')) n--;
    return set_key(cfg, line, n, from, err, err_size);
}

/* Store `value` for option o; `from` names where it came from. */
static int apply(struct kiln__worker_config *cfg, const struct opt *o, const char *value, const char *from, char *err,
                 size_t err_size) {
    char *field = (char *)cfg + o->offset;
    char *end = NULL;
    errno = 0;
    switch (o->type) {
    case OPT_STRING:
        if (strlen(value) >= o->size) {
            snprintf(err, err_size, "%s: value too long (at most %zu bytes)", from, o->size - 1);
            return -1;
        }
        strcpy(field, value);
        return 0;
    case OPT_INT:
    case OPT_SIZE:
    case OPT_DOUBLE: {
        double d = o->type == OPT_DOUBLE ? strtod(value, &end) : (double)strtoll(value, &end, 10);
        if (end == value || *end != '\0' || errno != 0 || !isfinite(d) || d < o->min || d > o->max) {
            snprintf(err, err_size, "%s: '%s' is not a %s between %g and %g", from, value,
                     o->type == OPT_DOUBLE ? "number" : "whole number", o->min, o->max);
            return -1;
        }
        if (o->type == OPT_INT) *(int *)field = (int)d;
        else if (o->type == OPT_SIZE) *(size_t *)field = (size_t)d;
        else *(double *)field = d;
        return 0;
    }
    case OPT_FLAG:
        *(int *)field = 1;
        return 0;
    case OPT_LOGFMT:
        if (strcmp(value, "text") == 0) cfg->log_format = KILN_LOG_TEXT;
        else if (strcmp(value, "json") == 0) cfg->log_format = KILN_LOG_JSON;
        else {
            snprintf(err, err_size, "%s: '%s' is not text or json", from, value);
            return -1;
        }
        return 0;
    case OPT_KEY: return set_key(cfg, value, strlen(value), from, err, err_size);
    case OPT_KEYFILE: return read_key_file(cfg, value, from, err, err_size);
    }
    return -1;
}

enum kiln__config_result kiln__worker_config_parse(struct kiln__worker_config *cfg, int argc, char **argv,
                                                   const char *(*get_env)(const char *name), char *err,
                                                   size_t err_size) {
    const size_t n_opts = sizeof opts / sizeof opts[0];
    err[0] = '\0';
    for (size_t i = 0; get_env && i < n_opts; i++) {
        const char *v = opts[i].env ? get_env(opts[i].env) : NULL;
        if (v && *v && apply(cfg, &opts[i], v, opts[i].env, err, err_size) != 0) return KILN__CONFIG_ERROR;
    }
    for (int a = 1; a < argc; a++) {
        const char *arg = argv[a];
        if (strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0) return KILN__CONFIG_HELP;
        const struct opt *o = NULL;
        const char *value = NULL;
        if (arg[0] == '-' && arg[1] == '-') {
            const char *eq = strchr(arg + 2, '=');
            size_t len = eq ? (size_t)(eq - arg - 2) : strlen(arg + 2);
            for (size_t i = 0; i < n_opts && !o; i++)
                if (strlen(opts[i].name) == len && strncmp(opts[i].name, arg + 2, len) == 0) o = &opts[i];
            if (o && eq) value = eq + 1;
        } else if (arg[0] == '-' && arg[1] && !arg[2]) {
            for (size_t i = 0; i < n_opts && !o; i++)
                if (opts[i].short_name == arg[1]) o = &opts[i];
        }
        if (!o) {
            snprintf(err, err_size, "unknown option '%s'", arg);
            return KILN__CONFIG_ERROR;
        }
        if (o->type == OPT_FLAG) {
            if (value) {
                snprintf(err, err_size, "--%s takes no value", o->name);
                return KILN__CONFIG_ERROR;
            }
        } else if (!value) {
            if (a + 1 >= argc) {
                snprintf(err, err_size, "--%s needs a value (%s)", o->name, o->arg);
                return KILN__CONFIG_ERROR;
            }
            value = argv[++a];
        }
        char from[64];
        snprintf(from, sizeof from, "--%s", o->name);
        if (apply(cfg, o, value ? value : "1", from, err, err_size) != 0) return KILN__CONFIG_ERROR;
    }
    return KILN__CONFIG_OK;
}

void kiln__worker_config_usage(FILE *out) {
    fprintf(out, "usage: kiln serve -m MODEL [OPTIONS]\n"
                 "       kiln serve --fake-model [OPTIONS]\n\n"
                 "Serve one model over HTTP: the rbee job protocol (/v1/jobs), the OpenAI API\n"
                 "(/v1/completions, /v1/chat/completions, /v1/models), /health, /ready, /metrics.\n\n"
                 "options (environment variable in brackets; flags win over variables):\n");
    for (size_t i = 0; i < sizeof opts / sizeof opts[0]; i++) {
        char flag[64];
        if (opts[i].short_name)
            snprintf(flag, sizeof flag, "-%c, --%s%s%s", opts[i].short_name, opts[i].name, opts[i].arg ? " " : "",
                     opts[i].arg ? opts[i].arg : "");
        else
            snprintf(flag, sizeof flag, "    --%s%s%s", opts[i].name, opts[i].arg ? " " : "",
                     opts[i].arg ? opts[i].arg : "");
        fprintf(out, "  %-32s %s", flag, opts[i].help);
        if (opts[i].env) fprintf(out, " [%s]", opts[i].env);
        fputc('\n', out);
    }
    fprintf(out, "  -h, --help                       this text\n");
}
