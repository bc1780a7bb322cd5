/* src/worker/api_ops.c - operational routes: /health, /ready, /metrics, and
 * the model list of the OpenAI API (/v1/models). */
#include <stdlib.h>
#include <string.h>

#include "worker/worker_impl.h"

static const char *phase_name(enum kiln__worker_phase p) {
    switch (p) {
    case KILN__PHASE_LOADING: return "loading";
    case KILN__PHASE_READY: return "ready";
    case KILN__PHASE_FAILED: return "failed";
    case KILN__PHASE_STOPPING: return "stopping";
    }
    return "failed";
}

/* The model's description as JSON. */
static json_t *model_json(const struct kiln__backend_info *info) {
    static const struct {
        unsigned cap;
        const char *name;
    } caps[] = {
        {KILN__CAP_TEXT, "text"},
        {KILN__CAP_CHAT, "chat"},
        {KILN__CAP_IMAGE_GENERATION, "image_generation"},
        {KILN__CAP_IMAGE_TRANSFORM, "image_transform"},
        {KILN__CAP_IMAGE_INPAINT, "image_inpaint"},
    };
    json_t *list = json_array();
    for (size_t i = 0; list && i < sizeof caps / sizeof caps[0]; i++)
        if (info->caps & caps[i].cap) json_array_append_new(list, json_string(caps[i].name));
    json_t *m = json_pack("{s:s, s:s, s:s, s:s, s:i, s:o*}", "id", info->model_id, "family", info->family, "device",
                          info->device, "implementation", info->implementation, "context_length",
                          (json_int_t)info->context_length, "capabilities", list);
    const kiln_image_caps *ic = &info->image;
    if (m && ic->max_size)
        json_object_set_new(m, "image", json_pack("{s:I, s:I, s:I, s:f, s:I, s:I, s:I, s:I}", "default_width",
                                                  (json_int_t)ic->default_width, "default_height",
                                                  (json_int_t)ic->default_height, "default_steps",
                                                  (json_int_t)ic->default_steps, "default_guidance",
                                                  (double)ic->default_guidance, "size_multiple",
                                                  (json_int_t)ic->size_multiple, "min_size", (json_int_t)ic->min_size,
                                                  "max_size", (json_int_t)ic->max_size, "max_steps",
                                                  (json_int_t)ic->max_steps));
    return m;
}

enum MHD_Result kiln__api_health(struct kiln__worker *w, struct MHD_Connection *c, struct kiln__http_req *rq) {
    return kiln__http_send_json(c, rq, 200,
                                json_pack("{s:s, s:s}", "status", "ok", "phase", phase_name(kiln__worker_get_phase(w))));
}

enum MHD_Result kiln__api_ready(struct kiln__worker *w, struct MHD_Connection *c, struct kiln__http_req *rq) {
    pthread_mutex_lock(&w->lock);
    enum kiln__worker_phase phase = w->phase;
    double progress = w->load_progress, seconds = w->load_seconds;
    char error[sizeof w->load_error];
    memcpy(error, w->load_error, sizeof error);
    pthread_mutex_unlock(&w->lock);
    switch (phase) {
    case KILN__PHASE_READY:
        return kiln__http_send_json(c, rq, 200,
                                    json_pack("{s:s, s:o, s:f}", "status", "ready", "model", model_json(w->info),
                                              "load_seconds", seconds));
    case KILN__PHASE_LOADING:
        return kiln__http_send_json(c, rq, 503, json_pack("{s:s, s:f}", "status", "loading", "progress", progress));
    case KILN__PHASE_FAILED:
        return kiln__http_send_json(c, rq, 503, json_pack("{s:s, s:s}", "status", "failed", "error", error));
    case KILN__PHASE_STOPPING: break;
    }
    return kiln__http_send_json(c, rq, 503, json_pack("{s:s}", "status", "stopping"));
}

enum MHD_Result kiln__api_metrics(struct kiln__worker *w, struct MHD_Connection *c, struct kiln__http_req *rq) {
    struct kiln__metrics_gauges g = {0};
    kiln__jobs_gauges(w->jobs, &g.queue_depth, &g.busy, &g.jobs_tracked);
    pthread_mutex_lock(&w->lock);
    g.ready = w->phase == KILN__PHASE_READY;
    g.load_seconds = w->load_seconds;
    pthread_mutex_unlock(&w->lock);
    struct kiln__buf text = {0};
    enum MHD_Result r;
    if (kiln__metrics_render(w->metrics, &g, &text) != 0)
        r = kiln__http_fail(c, rq, 500, "server_error", "out_of_memory", "out of memory");
    else
        r = kiln__http_send_text(c, rq, 200, "text/plain; version=0.0.4; charset=utf-8", text.data, text.len);
    kiln__buf_free(&text);
    return r;
}

enum MHD_Result kiln__api_models(struct kiln__worker *w, struct MHD_Connection *c, struct kiln__http_req *rq) {
    struct kiln__api_error err;
    if (kiln__worker_check_ready(w, &err) != 0) return kiln__http_send_error(c, rq, &err);
    json_t *model = json_pack("{s:s, s:s, s:I, s:s, s:o}", "id", w->info->model_id, "object", "model", "created",
                              (json_int_t)w->started_unix, "owned_by", "kiln", "meta", model_json(w->info));
    return kiln__http_send_json(c, rq, 200, json_pack("{s:s, s:[o*]}", "object", "list", "data", model));
}
