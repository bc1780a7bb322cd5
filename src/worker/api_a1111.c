/* src/worker/api_a1111.c - the AUTOMATIC1111 web UI API (/sdapi/v1/...) as
 * its clients (webuiapi, scripts, front ends) use it: txt2img, img2img,
 * progress, interrupt, the sampler / scheduler / model lists, the options
 * that apply to kiln, and png-info. Answers are shaped as A1111 shapes
 * them; validation errors use the worker's error shape with status 400. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/base64.h"
#include "image/image_io.h"
#include "worker/request_image.h"
#include "worker/worker_impl.h"

/* The request's resolved fields, as A1111's "parameters" echo them (the
 * body, with init_images and mask dropped as A1111 drops them unless
 * include_init_images is set). */
static json_t *parameters_json(json_t *body, const struct kiln__image_request *r, int img2img) {
    json_t *o = json_deep_copy(body);
    if (!o) return NULL;
    const kiln_image_params *p = &r->p;
    json_object_set_new(o, "prompt", json_string(r->prompt));
    json_object_set_new(o, "negative_prompt", json_string(r->negative_prompt ? r->negative_prompt : ""));
    json_object_set_new(o, "steps", json_integer(p->steps));
    json_object_set_new(o, "width", json_integer(p->width));
    json_object_set_new(o, "height", json_integer(p->height));
    json_object_set_new(o, "sampler_name", json_string(kiln_image_sampler_name(p->sampler)));
    if (img2img) {
        json_object_set_new(o, "denoising_strength", json_real(p->strength));
        if (!json_is_true(json_object_get(body, "include_init_images"))) {
            json_object_set_new(o, "init_images", json_null());
            json_object_set_new(o, "mask", json_null());
        }
    }
    return o;
}

/* A1111's "info": a JSON string describing the generation. */
static char *info_text(struct kiln__worker *w, const struct kiln__job *job, const struct kiln__image_request *r,
                       int img2img) {
    const struct kiln__image_output *o = &job->image_out;
    const kiln_image_params *p = &r->p;
    json_t *seeds = json_array(), *prompts = json_array(), *negs = json_array(), *infotexts = json_array();
    for (uint32_t i = 0; seeds && prompts && negs && infotexts && i < o->count; i++) {
        json_array_append_new(seeds, json_integer((json_int_t)(o->seed + i)));
        json_array_append_new(prompts, json_string(r->prompt));
        json_array_append_new(negs, json_string(r->negative_prompt ? r->negative_prompt : ""));
        json_array_append_new(infotexts, json_string(o->parameters[i]));
    }
    char stamp[32];
    time_t t = (time_t)job->created_unix;
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(stamp, sizeof stamp, "%Y%m%d%H%M%S", &tm);
    json_t *info = json_pack(
        "{s:s, s:o*, s:s, s:o*, s:I, s:o*, s:I, s:I, s:s, s:f, s:I, s:I, s:i, s:s, s:n, s:o*, s:o*, s:s, s:I, s:s}",
        "prompt", r->prompt, "all_prompts", prompts, "negative_prompt", r->negative_prompt ? r->negative_prompt : "",
        "all_negative_prompts", negs, "seed", (json_int_t)o->seed, "all_seeds", seeds, "width", (json_int_t)o->width,
        "height", (json_int_t)o->height, "sampler_name", kiln_image_sampler_name(p->sampler), "cfg_scale",
        (double)p->guidance, "steps", (json_int_t)p->steps, "batch_size", (json_int_t)o->count,
        "index_of_first_image", 0, "sd_model_name", w->info->model_id, "sd_model_hash", "denoising_strength",
        img2img ? json_real(p->strength) : NULL, "infotexts", infotexts, "job_timestamp", stamp, "clip_skip",
        (json_int_t)(p->clip_skip ? p->clip_skip : 1), "version", "kiln");
    char *s = info ? json_dumps(info, JSON_COMPACT) : NULL;
    json_decref(info);
    return s;
}

static enum MHD_Result generate(struct kiln__worker *w, struct MHD_Connection *c, struct kiln__http_req *rq,
                                int img2img) {
    enum MHD_Result res;
    json_t *root = kiln__http_ready_json(w, c, rq, &res);
    if (!root) return res;
    struct kiln__api_error err;
    struct kiln__image_request *r = NULL;
    if (kiln__image_request_from_a1111(root, img2img, &w->info->image, &r, &err) != 0) {
        json_decref(root);
        return kiln__http_send_error(c, rq, &err);
    }
    enum kiln__operation op = !img2img ? KILN__OP_IMAGE_GENERATION
                              : r->mask.data ? KILN__OP_IMAGE_INPAINT
                                             : KILN__OP_IMAGE_TRANSFORM;
    struct kiln__job_info info;
    int rc = kiln__image_job_run(w, c, rq, op, root, r, &info, &err);
    if (rc == -2) return MHD_NO;
    if (rc != 0) return kiln__http_send_error(c, rq, &err);
    const struct kiln__image_request *ir = rq->job->req->image;
    const struct kiln__image_output *o = &rq->job->image_out;
    json_t *images = json_array();
    for (uint32_t i = 0; images && i < o->count; i++) json_array_append_new(images, json_string(o->b64[i]));
    char *info_s = info_text(w, rq->job, ir, img2img);
    json_t *body = json_pack("{s:o*, s:o*, s:s*}", "images", images, "parameters",
                             parameters_json(rq->job->req->root, ir, img2img), "info", info_s);
    free(info_s);
    return kiln__http_send_json(c, rq, 200, body);
}

enum MHD_Result kiln__api_a1111_txt2img(struct kiln__worker *w, struct MHD_Connection *c, struct kiln__http_req *rq) {
    return generate(w, c, rq, 0);
}

enum MHD_Result kiln__api_a1111_img2img(struct kiln__worker *w, struct MHD_Connection *c, struct kiln__http_req *rq) {
    return generate(w, c, rq, 1);
}

enum MHD_Result kiln__api_a1111_progress(struct kiln__worker *w, struct MHD_Connection *c, struct kiln__http_req *rq) {
    size_t queued = 0;
    int busy = 0;
    kiln__jobs_gauges(w->jobs, &queued, &busy, NULL);
    struct kiln__job *job = kiln__jobs_running(w->jobs);
    struct kiln__job_info info = {0};
    char *preview = NULL;
    const char *skip = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "skip_current_image");
    if (job) {
        kiln__job_get_info(w->jobs, job, &info);
        if (!(skip && strcmp(skip, "true") == 0)) preview = kiln__job_preview_copy(w->jobs, job);
    }
    double progress = info.image_total ? (double)info.image_step / info.image_total : 0;
    char stamp[32] = "0";
    if (job) {
        time_t t = (time_t)job->created_unix;
        struct tm tm;
        gmtime_r(&t, &tm);
        strftime(stamp, sizeof stamp, "%Y%m%d%H%M%S", &tm);
    }
    json_t *state = json_pack("{s:b, s:b, s:s, s:I, s:s, s:i, s:I, s:I}", "skipped", 0, "interrupted",
                              job ? info.cancel_requested : 0, "job", job ? job->id : "", "job_count",
                              (json_int_t)(queued + (busy ? 1 : 0)), "job_timestamp", stamp, "job_no", 0,
                              "sampling_step", (json_int_t)info.image_step, "sampling_steps",
                              (json_int_t)info.image_total);
    json_t *body = json_pack("{s:f, s:f, s:o*, s:o*, s:n}", "progress", progress, "eta_relative",
                             info.image_eta_ms / 1e3, "state", state, "current_image",
                             preview ? json_string(preview) : json_null(), "textinfo");
    free(preview);
    kiln__job_release(w->jobs, job);
    return kiln__http_send_json(c, rq, 200, body);
}

enum MHD_Result kiln__api_a1111_interrupt(struct kiln__worker *w, struct MHD_Connection *c, struct kiln__http_req *rq) {
    struct kiln__job *job = kiln__jobs_running(w->jobs);
    if (job) kiln__job_cancel(w->jobs, job, "interrupted (sdapi)");
    kiln__job_release(w->jobs, job);
    return kiln__http_send_json(c, rq, 200, json_object());
}

enum MHD_Result kiln__api_a1111_samplers(struct kiln__worker *w, struct MHD_Connection *c, struct kiln__http_req *rq) {
    (void)w;
    /* A1111's display names with kiln's names as aliases. */
    static const struct {
        const char *name, *alias;
    } list[] = {{"Euler", "euler"},       {"Euler a", "euler_a"},       {"Heun", "heun"},  {"DPM++ 2M", "dpmpp_2m"},
                {"DPM++ 2M SDE", "dpmpp_2m_sde"}, {"DDIM", "ddim"},     {"LCM", "lcm"}};
    json_t *a = json_array();
    for (size_t i = 0; a && i < sizeof list / sizeof list[0]; i++)
        json_array_append_new(a, json_pack("{s:s, s:[s], s:{}}", "name", list[i].name, "aliases", list[i].alias,
                                           "options"));
    return kiln__http_send_json(c, rq, 200, a);
}

enum MHD_Result kiln__api_a1111_schedulers(struct kiln__worker *w, struct MHD_Connection *c,
                                           struct kiln__http_req *rq) {
    (void)w;
    static const struct {
        const char *name, *label;
    } list[] = {{"automatic", "Automatic"}, {"karras", "Karras"}, {"exponential", "Exponential"},
                {"sgm_uniform", "SGM Uniform"}};
    json_t *a = json_array();
    for (size_t i = 0; a && i < sizeof list / sizeof list[0]; i++)
        json_array_append_new(a, json_pack("{s:s, s:s, s:n, s:f, s:b}", "name", list[i].name, "label", list[i].label,
                                           "aliases", "default_rho", -1.0, "need_inner_model", 0));
    return kiln__http_send_json(c, rq, 200, a);
}

enum MHD_Result kiln__api_a1111_models(struct kiln__worker *w, struct MHD_Connection *c, struct kiln__http_req *rq) {
    struct kiln__api_error err;
    if (kiln__worker_check_ready(w, &err) != 0) return kiln__http_send_error(c, rq, &err);
    json_t *m = json_pack("{s:s, s:s, s:n, s:n, s:s, s:n}", "title", w->info->model_id, "model_name",
                          w->info->model_id, "hash", "sha256", "filename", w->cfg.model_path, "config");
    return kiln__http_send_json(c, rq, 200, json_pack("[o*]", m));
}

enum MHD_Result kiln__api_a1111_options_get(struct kiln__worker *w, struct MHD_Connection *c,
                                            struct kiln__http_req *rq) {
    struct kiln__api_error err;
    if (kiln__worker_check_ready(w, &err) != 0) return kiln__http_send_error(c, rq, &err);
    return kiln__http_send_json(c, rq, 200,
                                json_pack("{s:s, s:s, s:i, s:s}", "sd_model_checkpoint", w->info->model_id,
                                          "samples_format", "png", "CLIP_stop_at_last_layers", 1,
                                          "sd_checkpoint_hash", ""));
}

/* Options a client may set: the checkpoint (only the loaded one) and the
 * sample format (only png); other keys are A1111 UI settings with no
 * meaning here and are ignored. */
enum MHD_Result kiln__api_a1111_options_set(struct kiln__worker *w, struct MHD_Connection *c,
                                            struct kiln__http_req *rq) {
    enum MHD_Result res;
    json_t *root = kiln__http_ready_json(w, c, rq, &res);
    if (!root) return res;
    json_t *v = json_object_get(root, "sd_model_checkpoint");
    const char *want = json_string_value(v);
    int bad_model = v && (!want || strcmp(want, w->info->model_id) != 0);
    v = json_object_get(root, "samples_format");
    int bad_format = v && (!json_is_string(v) || strcmp(json_string_value(v), "png") != 0);
    json_decref(root);
    if (bad_model)
        return kiln__http_fail(c, rq, 400, "invalid_request_error", "invalid_value",
                               "sd_model_checkpoint: this worker serves '%s' only", w->info->model_id);
    if (bad_format)
        return kiln__http_fail(c, rq, 400, "invalid_request_error", "invalid_value",
                               "samples_format: only png is supported");
    return kiln__http_send_json(c, rq, 200, json_object());
}

/* The infotext's last line "Key: value, Key: value" as an object, plus
 * Prompt and Negative prompt. */
static json_t *parse_infotext(const char *text) {
    json_t *o = json_object();
    if (!o) return NULL;
    const char *last = strrchr(text, '\n');
    const char *kv = last ? last + 1 : text;
    const char *neg = strstr(text, "\nNegative prompt: ");
    const char *prompt_end = neg ? neg : last ? last : text + strlen(text);
    json_object_set_new(o, "Prompt", json_stringn(text, (size_t)(prompt_end - text)));
    if (neg) {
        const char *ns = neg + 18;
        json_object_set_new(o, "Negative prompt", json_stringn(ns, (size_t)(last > ns ? last - ns : 0)));
    }
    if (!last) return o;
    while (*kv) {
        const char *colon = strstr(kv, ": ");
        if (!colon) break;
        const char *comma = strstr(colon + 2, ", ");
        const char *vend = comma ? comma : kv + strlen(kv);
        char key[64];
        size_t kl = (size_t)(colon - kv) < sizeof key - 1 ? (size_t)(colon - kv) : sizeof key - 1;
        memcpy(key, kv, kl);
        key[kl] = '\0';
        json_object_set_new(o, key, json_stringn(colon + 2, (size_t)(vend - colon - 2)));
        kv = comma ? comma + 2 : vend;
    }
    return o;
}

enum MHD_Result kiln__api_a1111_png_info(struct kiln__worker *w, struct MHD_Connection *c, struct kiln__http_req *rq) {
    (void)w;
    json_t *root = json_loadb(rq->body.data ? rq->body.data : "", rq->body.len, JSON_REJECT_DUPLICATES, NULL);
    const char *img = json_string_value(json_object_get(root, "image"));
    if (!img || !*img) {
        json_decref(root);
        return kiln__http_fail(c, rq, 400, "invalid_request_error", "invalid_value",
                               "image: is required (a base64 PNG or data: URL)");
    }
    uint8_t *bytes = NULL;
    size_t n = 0;
    size_t len = strlen(img);
    kiln_status st = strncmp(img, "data:", 5) == 0 ? kiln__data_url_decode(img, &bytes, &n, NULL, 0)
                                                  : kiln__base64_decode(img, len, &bytes, &n);
    json_decref(root);
    if (st != KILN_OK)
        return kiln__http_fail(c, rq, 400, "invalid_request_error", "invalid_value", "image: not base64 (%s)",
                               kiln_last_error());
    char *text = NULL;
    st = kiln__image_detect(bytes, n) == KILN_IMAGE_FORMAT_PNG ? kiln__png_read_text(bytes, n, "parameters", &text)
                                                               : KILN_ERR_NOT_FOUND;
    free(bytes);
    if (st != KILN_OK && st != KILN_ERR_NOT_FOUND)
        return kiln__http_fail(c, rq, 400, "invalid_request_error", "invalid_value", "image: %s", kiln_last_error());
    json_t *body = text ? json_pack("{s:s, s:{s:s}, s:o*}", "info", text, "items", "parameters", text, "parameters",
                                    parse_infotext(text))
                        : json_pack("{s:s, s:{}, s:{}}", "info", "", "items", "parameters");
    free(text);
    return kiln__http_send_json(c, rq, 200, body);
}
