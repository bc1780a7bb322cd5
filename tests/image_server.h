/* tests/image_server.h - helpers for the image worker tests: the daemon in
 * process on the tiny random-weight SD model (tests/data/sd/tiny-sd15) on
 * an ephemeral loopback port, JSON bodies, SSE events, base64 images. */
#ifndef KILN_TESTS_IMAGE_SERVER_H
#define KILN_TESTS_IMAGE_SERVER_H

#include "http_client.h" /* first: it sets _GNU_SOURCE */

#include <jansson.h>

#include "core/base64.h"
#include "core/log.h"
#include "image/image_io.h"
#include "kiln/kiln.h"
#include "worker/backend.h"
#include "worker/buf.h"
#include "worker/server.h"

#define IMG_MODEL KILN_SOURCE_DIR "/tests/data/sd/tiny-sd15"
#define IMG_VOCAB IMG_MODEL "/tokenizer/merges.txt"

/* Start the daemon on the tiny model with the settings of cfg; NULL on failure. */
static inline struct kiln__worker *img_server_start_cfg(const struct kiln__worker_config *cfg, int *port) {
    struct kiln__backend b;
    struct kiln__worker *w = NULL;
    if (!kiln__backend_is_image_model(IMG_MODEL)) return NULL;
    if (kiln__backend_image_create(IMG_MODEL, IMG_VOCAB, &b) != KILN_OK) return NULL;
    if (kiln__worker_start(cfg, &b, &w) != KILN_OK) return NULL;
    *port = kiln__worker_port(w);
    /* wait up to 60 s for the load (a hang guard; it takes well under 1 s) */
    for (int i = 0; i < 6000 && kiln__worker_get_phase(w) == KILN__PHASE_LOADING; i++) tc_sleep_ms(10);
    if (kiln__worker_get_phase(w) != KILN__PHASE_READY) {
        kiln__worker_stop(w);
        return NULL;
    }
    return w;
}

/* Settings of the image worker tests: the defaults, any port, a queue of
 * `queue` jobs, short keep-alives, no grace time at shutdown. */
static inline void img_server_config(struct kiln__worker_config *cfg, int queue) {
    kiln__worker_config_defaults(cfg);
    cfg->port = 0;
    cfg->queue = queue;
    cfg->keepalive_s = 0.2;
    cfg->shutdown_s = 0;
}

/* Start the daemon on the tiny model (queue of `queue` jobs); NULL on failure. */
static inline struct kiln__worker *img_server_start(int queue, int *port) {
    struct kiln__worker_config cfg;
    img_server_config(&cfg, queue);
    return img_server_start_cfg(&cfg, port);
}

/* The body of r as JSON, or NULL. */
static inline json_t *img_body_json(const struct tc_resp *r) {
    return r->body ? json_loadb(r->body, r->body_len, 0, NULL) : NULL;
}

/* The error code and param of an error answer ("" when absent), copied. */
static inline void img_error_of(const struct tc_resp *r, char *code, char *param, size_t cap) {
    json_t *j = img_body_json(r);
    json_t *e = json_object_get(j, "error");
    snprintf(code, cap, "%s", json_string_value(json_object_get(e, "code")) ? json_string_value(json_object_get(e, "code")) : "");
    snprintf(param, cap, "%s", json_string_value(json_object_get(e, "param")) ? json_string_value(json_object_get(e, "param")) : "");
    json_decref(j);
}

/* One SSE event of a stream body. */
struct img_event {
    char name[32]; /* "progress", "preview", "complete", "error", "started", or "" for plain data */
    json_t *data;  /* its data as JSON (NULL for "[DONE]") */
    int done;      /* the data was [DONE] */
};

/* Split an SSE body into at most cap events (comments skipped); returns
 * how many. Free the data with img_events_free. */
static inline size_t img_parse_events(const char *body, struct img_event *ev, size_t cap) {
    size_t n = 0;
    const char *p = body;
    while (p && *p && n < cap) {
        const char *end = strstr(p, "\n\n");
        if (!end) break;
        struct img_event *e = &ev[n];
        memset(e, 0, sizeof *e);
        const char *line = p;
        int any = 0;
        while (line < end) {
            const char *nl = memchr(line, '\n', (size_t)(end - line));
            if (!nl) nl = end;
            if (strncmp(line, "event: ", 7) == 0) {
                size_t l = (size_t)(nl - line - 7);
                if (l >= sizeof e->name) l = sizeof e->name - 1;
                memcpy(e->name, line + 7, l);
                e->name[l] = '\0';
            } else if (strncmp(line, "data: ", 6) == 0) {
                any = 1;
                if (strncmp(line + 6, "[DONE]", 6) == 0) e->done = 1;
                else e->data = json_loadb(line + 6, (size_t)(nl - line - 6), 0, NULL);
            }
            line = nl + 1;
        }
        if (any) n++;
        p = end + 2;
    }
    return n;
}

static inline void img_events_free(struct img_event *ev, size_t n) {
    for (size_t i = 0; i < n; i++) json_decref(ev[i].data);
}

/* Decode base64 text into malloc'ed bytes; NULL on failure. */
static inline uint8_t *img_unb64(const char *s, size_t *n) {
    uint8_t *out = NULL;
    if (!s || kiln__base64_decode(s, strlen(s), &out, n) != KILN_OK) return NULL;
    return out;
}

/* Base64 of bytes (malloc'ed), or NULL. */
static inline char *img_b64(const uint8_t *p, size_t n) {
    char *s = NULL;
    if (kiln__base64_encode(p, n, &s, NULL) != KILN_OK) return NULL;
    return s;
}

#endif /* KILN_TESTS_IMAGE_SERVER_H */
