/* src/worker/job_image.c - running an image job on the runner thread: the
 * engine's step callback becomes progress and preview events (pieces of the
 * job, read by its stream), and the images are encoded (PNG with the A1111
 * parameters chunk, or JPEG / WebP) and base64'd for the APIs. The text
 * stats stay at zero tokens (the token counters are not image counters);
 * prompt_ms is the text encoder's time, decode_ms the whole generation's. */
#include <stdlib.h>
#include <string.h>

#include "core/base64.h"
#include "image/image_io.h"
#include "worker/request_image.h"
#include "worker/sse.h"
#include "worker/worker_impl.h"

/* The step callback's state. */
struct image_run {
    struct kiln__job *job; /* the job */
    uint32_t batch;        /* images in the request */
    double t0;             /* when the first step began */
    int failed;            /* an event could not be recorded (out of memory) */
};

/* Base64 of an image encoded as PNG (no parameters), or NULL. */
static char *png_b64(const kiln_image *img) {
    uint8_t *png = NULL;
    size_t n = 0;
    char *b64 = NULL;
    if (kiln__png_encode(img, NULL, &png, &n) == KILN_OK) kiln__base64_encode(png, n, &b64, NULL);
    free(png);
    return b64;
}

static int on_step(void *user, uint32_t index, uint32_t step, uint32_t total, const kiln_image *preview) {
    struct image_run *r = user;
    if (r->t0 == 0) r->t0 = kiln__now();
    uint32_t done = index * total + step, all = r->batch * total;
    double elapsed = kiln__now() - r->t0;
    double eta_ms = done ? elapsed / done * (all - done) * 1e3 : 0;
    struct kiln__buf ev = {0};
    kiln__sse_image_progress(&ev, done, all, eta_ms);
    char *b64 = preview ? png_b64(preview) : NULL;
    if (b64) kiln__sse_image_preview(&ev, done, all, b64);
    if (preview && !b64) r->failed = 1;
    kiln__job_set_image_progress(r->job, done, all, eta_ms, b64 ? strdup(b64) : NULL);
    free(b64);
    int stop = ev.failed ? 1 : kiln__job_append_piece(r->job, ev.data, ev.len);
    if (ev.failed) r->failed = 1;
    kiln__buf_free(&ev);
    return stop;
}

void kiln__image_output_free(struct kiln__image_output *o) {
    for (uint32_t i = 0; i < o->count; i++) {
        if (o->b64) free(o->b64[i]);
        if (o->parameters) free(o->parameters[i]);
    }
    free(o->b64);
    free(o->parameters);
    memset(o, 0, sizeof *o);
}

/* Encode the result's images as the request asks into *out. */
static kiln_status encode_all(const kiln_image_result *res, const struct kiln__image_request *ir,
                              struct kiln__image_output *out) {
    out->b64 = calloc(res->count ? res->count : 1, sizeof *out->b64);
    out->parameters = calloc(res->count ? res->count : 1, sizeof *out->parameters);
    if (!out->b64 || !out->parameters) return kiln__fail(KILN_ERR_OUT_OF_MEMORY, "serve: out of memory");
    out->count = res->count;
    out->seed = res->seed;
    out->width = res->count ? res->images[0].width : 0;
    out->height = res->count ? res->images[0].height : 0;
    for (uint32_t i = 0; i < res->count; i++) {
        uint8_t *bytes = NULL;
        size_t n = 0;
        kiln_status st = kiln__image_encode(&res->images[i], ir->out_format, ir->out_quality, res->parameters[i],
                                            &bytes, &n);
        if (st == KILN_OK) st = kiln__base64_encode(bytes, n, &out->b64[i], NULL);
        free(bytes);
        if (st != KILN_OK) return st;
        if (!(out->parameters[i] = strdup(res->parameters[i])))
            return kiln__fail(KILN_ERR_OUT_OF_MEMORY, "serve: out of memory");
    }
    return KILN_OK;
}

kiln_status kiln__job_run_image(const struct kiln__backend *b, struct kiln__job *job, struct kiln__image_output *out,
                                struct kiln__text_stats *stats) {
    memset(stats, 0, sizeof *stats);
    memset(out, 0, sizeof *out);
    stats->stop_reason = KILN__STOP_ERROR;
    if (!b->run_image) return kiln__fail(KILN_ERR_UNSUPPORTED, "this worker's model does not make images");
    const struct kiln__image_request *ir = job->req->image;
    kiln_image_params p = ir->p;
    if (!ir->seed_given) p.seed = job->req->sampling.seed >> 1; /* drawn at submit; A1111 shows seeds below 2^63 */
    struct image_run r = {job, p.batch_count ? p.batch_count : 1, 0, 0};
    p.on_step = on_step;
    p.user = &r;
    kiln_image_result res = {0};
    double t0 = kiln__now();
    kiln_status st = b->run_image(b->ctx, &p, &res);
    stats->prompt_ms = res.text_seconds * 1e3;
    stats->decode_ms = (kiln__now() - t0) * 1e3;
    if (st == KILN_ERR_CANCELLED) {
        stats->stop_reason = KILN__STOP_CANCELLED;
        kiln_image_result_free(&res);
        return KILN_OK;
    }
    if (st == KILN_OK && r.failed) st = kiln__fail(KILN_ERR_OUT_OF_MEMORY, "serve: out of memory for an event");
    if (st == KILN_OK) st = encode_all(&res, ir, out);
    kiln_image_result_free(&res);
    if (st != KILN_OK) {
        kiln__image_output_free(out);
        return st;
    }
    stats->stop_reason = KILN__STOP_MAX_TOKENS;
    return KILN_OK;
}
