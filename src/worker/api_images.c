/* src/worker/api_images.c - what the image APIs share (queue an image job
 * and wait for its result) and the OpenAI images API: POST
 * /v1/images/generations (JSON) and POST /v1/images/edits (multipart
 * form: image, mask, prompt, n, size), answered with b64_json images. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "worker/multipart.h"
#include "worker/request_image.h"
#include "worker/worker_impl.h"

/* Most parts an edits form may have. */
#define MAX_FORM_PARTS 32

int kiln__image_job_run(struct kiln__worker *w, struct MHD_Connection *c, struct kiln__http_req *rq,
                        enum kiln__operation op, json_t *root, struct kiln__image_request *image,
                        struct kiln__job_info *info, struct kiln__api_error *err) {
    if (!(w->info->caps & kiln__operation_cap(op))) {
        kiln__api_error_set(err, 400, "invalid_request_error", "unsupported_operation", NULL,
                            "%s is not supported by this worker's model '%s'", kiln__operation_name(op),
                            w->info->model_id);
        kiln__image_request_free(image);
        json_decref(root);
        return -1;
    }
    struct kiln__gen_request *req = kiln__gen_request_for_image(op, root, image, err);
    if (!req) return -1;
    struct kiln__job *job = NULL;
    if (kiln__jobs_submit(w->jobs, req, 0, 0, 1, &job, err) != 0) {
        kiln__gen_request_free(req);
        return -1;
    }
    rq->job = job;
    int fd = kiln__http_conn_fd(c);
    for (;;) {
        kiln__job_get_info(w->jobs, job, info);
        if (info->state != KILN__JOB_QUEUED && info->state != KILN__JOB_RUNNING) break;
        if (kiln__job_wait(w->jobs, job, info->n_pieces, info->state, fd, 1000) == KILN__WAIT_GONE) {
            kiln__job_cancel(w->jobs, job, "client disconnected");
            return -2;
        }
    }
    if (info->state == KILN__JOB_FAILED) {
        kiln__api_error_set(err, 500, "server_error", info->error_code, NULL, "%s", info->error);
        return -1;
    }
    if (info->state == KILN__JOB_CANCELLED) {
        kiln__api_error_set(err, 503, "server_error", "cancelled", NULL, "the job was cancelled before it finished");
        return -1;
    }
    return 0;
}

/* The output_format / response_format fields both OpenAI routes take. */
static int output_fields(const char *response_format, const char *output_format, long long compression,
                         struct kiln__image_request *r, struct kiln__api_error *err) {
    if (response_format && strcmp(response_format, "b64_json") != 0) {
        kiln__api_error_set(err, 400, "invalid_request_error", "unsupported", "response_format",
                            "response_format: only b64_json is supported (this worker serves no image URLs)");
        return -1;
    }
    if (output_format) {
        if (strcmp(output_format, "png") == 0) r->out_format = KILN_IMAGE_FORMAT_PNG;
        else if (strcmp(output_format, "jpeg") == 0) r->out_format = KILN_IMAGE_FORMAT_JPEG;
        else if (strcmp(output_format, "webp") == 0) r->out_format = KILN_IMAGE_FORMAT_WEBP;
        else {
            kiln__api_error_set(err, 400, "invalid_request_error", "invalid_value", "output_format",
                                "output_format: must be png, jpeg or webp");
            return -1;
        }
    }
    if (compression >= 0) {
        if (compression > 100) {
            kiln__api_error_set(err, 400, "invalid_request_error", "invalid_value", "output_compression",
                                "output_compression: must be between 0 and 100");
            return -1;
        }
        r->out_quality = compression < 1 ? 1 : (int)compression;
    }
    return 0;
}

/* The answer: {"created","data":[{"b64_json"}],"output_format","size"}. */
static enum MHD_Result answer(struct MHD_Connection *c, struct kiln__http_req *rq,
                              const struct kiln__image_request *ir) {
    const struct kiln__image_output *o = &rq->job->image_out;
    json_t *data = json_array();
    for (uint32_t i = 0; data && i < o->count; i++)
        json_array_append_new(data, json_pack("{s:s, s:s}", "b64_json", o->b64[i], "revised_prompt", ir->prompt));
    char size[32];
    snprintf(size, sizeof size, "%ux%u", o->width, o->height);
    return kiln__http_send_json(c, rq, 200,
                                json_pack("{s:I, s:o*, s:s, s:s}", "created", (json_int_t)rq->job->created_unix,
                                          "data", data, "output_format", kiln__image_format_name(ir->out_format),
                                          "size", size));
}

/* Run the request and answer (or the error). */
static enum MHD_Result run_and_answer(struct kiln__worker *w, struct MHD_Connection *c, struct kiln__http_req *rq,
                                      enum kiln__operation op, json_t *root, struct kiln__image_request *r) {
    struct kiln__api_error err;
    struct kiln__job_info info;
    int rc = kiln__image_job_run(w, c, rq, op, root, r, &info, &err);
    if (rc == -2) return MHD_NO;
    if (rc != 0) return kiln__http_send_error(c, rq, &err);
    return answer(c, rq, rq->job->req->image);
}

/* Read the extension fields kiln adds to the OpenAI shape (a JSON object,
 * or the form fields gathered into one). */
static int extensions(json_t *obj, struct kiln__image_request *r, const kiln_image_caps *caps,
                      struct kiln__api_error *err) {
    static const char *const ints[] = {"steps", "seed"};
    for (size_t i = 0; i < 2; i++) {
        json_t *v = json_object_get(obj, ints[i]);
        if (!v || json_is_null(v)) continue;
        long long x = json_is_integer(v) ? json_integer_value(v) : -2;
        long long hi = i == 0 ? (long long)caps->max_steps : INT64_MAX;
        if (x < (i == 0 ? 1 : 0) || x > hi) {
            kiln__api_error_set(err, 400, "invalid_request_error", "invalid_value", ints[i],
                                "%s: must be an integer between %d and %lld", ints[i], i == 0 ? 1 : 0, hi);
            return -1;
        }
        if (i == 0) r->p.steps = (uint32_t)x;
        else r->p.seed = (uint64_t)x, r->seed_given = 1;
    }
    json_t *v = json_object_get(obj, "guidance_scale");
    if (v && !json_is_null(v)) {
        if (!json_is_number(v) || json_number_value(v) < 0 || json_number_value(v) > KILN__IMAGE_MAX_GUIDANCE) {
            kiln__api_error_set(err, 400, "invalid_request_error", "invalid_value", "guidance_scale",
                                "guidance_scale: must be a number between 0 and %g", KILN__IMAGE_MAX_GUIDANCE);
            return -1;
        }
        r->p.guidance = (float)json_number_value(v);
    }
    v = json_object_get(obj, "strength");
    if (v && !json_is_null(v)) {
        if (!json_is_number(v) || !(json_number_value(v) >= 0 && json_number_value(v) <= 1)) {
            kiln__api_error_set(err, 400, "invalid_request_error", "invalid_value", "strength",
                                "strength: must be a number between 0 and 1");
            return -1;
        }
        r->p.strength = (float)json_number_value(v);
    }
    const char *s = json_string_value(json_object_get(obj, "negative_prompt"));
    if (s && kiln__image_request_set_prompt(r, s, strlen(s), 1, err)) return -1;
    s = json_string_value(json_object_get(obj, "sampler"));
    if (s && !kiln_image_sampler_from_name(s, &r->p.sampler)) {
        kiln__api_error_set(err, 400, "invalid_request_error", "invalid_value", "sampler",
                            "sampler: unknown sampler '%.40s'", s);
        return -1;
    }
    return 0;
}

/* n, size, response_format, output_format, output_compression. */
static int common_fields(json_t *obj, struct kiln__image_request *r, const kiln_image_caps *caps,
                         struct kiln__api_error *err) {
    json_t *v = json_object_get(obj, "n");
    if (v && !json_is_null(v)) {
        if (!json_is_integer(v) || json_integer_value(v) < 1 || json_integer_value(v) > KILN__IMAGE_MAX_BATCH) {
            kiln__api_error_set(err, 400, "invalid_request_error", "invalid_value", "n",
                                "n: must be an integer between 1 and %d", KILN__IMAGE_MAX_BATCH);
            return -1;
        }
        r->p.batch_count = (uint32_t)json_integer_value(v);
    }
    v = json_object_get(obj, "size");
    if (v && !json_is_null(v)) {
        if (!json_is_string(v)) {
            kiln__api_error_set(err, 400, "invalid_request_error", "invalid_value", "size",
                                "size: must be a string WIDTHxHEIGHT");
            return -1;
        }
        if (kiln__image_parse_size(json_string_value(v), &r->p.width, &r->p.height, "size", err)) return -1;
    }
    long long compression = -1;
    v = json_object_get(obj, "output_compression");
    if (v && !json_is_null(v)) {
        if (!json_is_integer(v) || json_integer_value(v) < 0) {
            kiln__api_error_set(err, 400, "invalid_request_error", "invalid_value", "output_compression",
                                "output_compression: must be an integer between 0 and 100");
            return -1;
        }
        compression = json_integer_value(v);
    }
    v = json_object_get(obj, "response_format");
    const char *rf = json_is_null(v) ? NULL : json_string_value(v);
    if (v && !json_is_null(v) && !rf) {
        kiln__api_error_set(err, 400, "invalid_request_error", "invalid_value", "response_format",
                            "response_format: must be a string");
        return -1;
    }
    v = json_object_get(obj, "output_format");
    const char *of = json_is_null(v) ? NULL : json_string_value(v);
    if (v && !json_is_null(v) && !of) {
        kiln__api_error_set(err, 400, "invalid_request_error", "invalid_value", "output_format",
                            "output_format: must be a string");
        return -1;
    }
    if (output_fields(rf, of, compression, r, err)) return -1;
    return extensions(obj, r, caps, err);
}

enum MHD_Result kiln__api_images_generations(struct kiln__worker *w, struct MHD_Connection *c,
                                             struct kiln__http_req *rq) {
    enum MHD_Result res;
    json_t *root = kiln__http_ready_json(w, c, rq, &res);
    if (!root) return res;
    struct kiln__api_error err;
    struct kiln__image_request *r = kiln__image_request_new();
    json_t *prompt = json_object_get(root, "prompt");
    int rc = -1;
    if (!r) kiln__api_error_set(&err, 500, "server_error", "out_of_memory", NULL, "out of memory");
    else if (!json_is_string(prompt) || json_string_length(prompt) == 0)
        kiln__api_error_set(&err, 400, "invalid_request_error", "invalid_value", "prompt",
                            "prompt: is required (a non-empty string)");
    else if (kiln__image_request_set_prompt(r, json_string_value(prompt), json_string_length(prompt), 0, &err) == 0 &&
             common_fields(root, r, &w->info->image, &err) == 0)
        rc = kiln__image_request_finish(r, &w->info->image, "size", "size", &err);
    if (rc != 0) {
        kiln__image_request_free(r);
        json_decref(root);
        return kiln__http_send_error(c, rq, &err);
    }
    return run_and_answer(w, c, rq, KILN__OP_IMAGE_GENERATION, root, r);
}

/* A form part's text as a JSON value for the field checks: integers and
 * numbers for the numeric fields, strings otherwise. */
static json_t *form_value(const struct kiln__multipart_part *p) {
    static const char *const numeric[] = {"n", "steps", "seed", "output_compression", "guidance_scale", "strength"};
    char text[64];
    for (size_t i = 0; i < sizeof numeric / sizeof numeric[0]; i++) {
        if (strcmp(p->name, numeric[i]) != 0) continue;
        if (p->len == 0 || p->len >= sizeof text) return json_string(""); /* refused by the checks */
        memcpy(text, p->data, p->len);
        text[p->len] = '\0';
        char *end;
        long long v = strtoll(text, &end, 10);
        if (*end == '\0') return json_integer(v);
        double d = strtod(text, &end);
        return *end == '\0' ? json_real(d) : json_string("");
    }
    return json_stringn((const char *)p->data, p->len);
}

enum MHD_Result kiln__api_images_edits(struct kiln__worker *w, struct MHD_Connection *c, struct kiln__http_req *rq) {
    struct kiln__api_error err;
    if (kiln__worker_check_ready(w, &err) != 0) return kiln__http_send_error(c, rq, &err);
    char boundary[KILN__MULTIPART_MAX_BOUNDARY + 1];
    const char *ct = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Type");
    if (kiln__multipart_boundary(ct, boundary, sizeof boundary) != KILN_OK)
        return kiln__http_fail(c, rq, 400, "invalid_request_error", "invalid_value",
                               "request body: must be multipart/form-data (%s)", kiln_last_error());
    struct kiln__multipart_part *parts = calloc(MAX_FORM_PARTS, sizeof *parts);
    size_t n = 0;
    if (!parts) return kiln__http_fail(c, rq, 500, "server_error", "out_of_memory", "out of memory");
    kiln_status st = kiln__multipart_parse((const uint8_t *)(rq->body.data ? rq->body.data : ""), rq->body.len,
                                           boundary, parts, MAX_FORM_PARTS, &n);
    if (st != KILN_OK) {
        free(parts);
        return kiln__http_fail(c, rq, 400, "invalid_request_error", "invalid_value", "request body: %s",
                               kiln_last_error());
    }
    /* The plain fields as one JSON object (so the generations checks apply);
     * the image and mask files are decoded separately. */
    json_t *fields = json_object();
    const struct kiln__multipart_part *image = NULL, *mask = NULL;
    int rc = fields ? 0 : -1;
    if (rc) kiln__api_error_set(&err, 500, "server_error", "out_of_memory", NULL, "out of memory");
    for (size_t i = 0; rc == 0 && i < n; i++) {
        const struct kiln__multipart_part *p = &parts[i];
        if (strcmp(p->name, "image") == 0 || strcmp(p->name, "image[]") == 0) {
            if (image) {
                kiln__api_error_set(&err, 400, "invalid_request_error", "invalid_value", "image",
                                    "image: one image is supported");
                rc = -1;
            }
            image = p;
        } else if (strcmp(p->name, "mask") == 0) {
            mask = p;
        } else if (json_object_get(fields, p->name)) {
            kiln__api_error_set(&err, 400, "invalid_request_error", "invalid_value", NULL,
                                "%.64s: given more than once", p->name);
            rc = -1;
        } else {
            json_object_set_new(fields, p->name, form_value(p));
        }
    }
    struct kiln__image_request *r = rc == 0 ? kiln__image_request_new() : NULL;
    if (rc == 0 && !r) rc = -1, kiln__api_error_set(&err, 500, "server_error", "out_of_memory", NULL, "out of memory");
    const kiln_image_caps *caps = &w->info->image;
    json_t *prompt = rc == 0 ? json_object_get(fields, "prompt") : NULL;
    if (rc == 0 && (!json_is_string(prompt) || json_string_length(prompt) == 0))
        rc = -1, kiln__api_error_set(&err, 400, "invalid_request_error", "invalid_value", "prompt",
                                     "prompt: is required (a non-empty string)");
    if (rc == 0 && !image)
        rc = -1, kiln__api_error_set(&err, 400, "invalid_request_error", "invalid_value", "image",
                                     "image: is required (a PNG, JPEG or WebP file)");
    if (rc == 0) rc = kiln__image_request_set_prompt(r, json_string_value(prompt), json_string_length(prompt), 0, &err);
    /* With a mask the masked area is made anew (strength 1); without one the
     * whole image is transformed (img2img's 0.75). Either can be overridden. */
    if (rc == 0) r->p.strength = mask ? 1.0f : 0.75f;
    if (rc == 0) rc = common_fields(fields, r, caps, &err);
    if (rc == 0)
        rc = kiln__image_request_set_image(r, "image", image->data, image->len, 0, KILN__MASK_OPENAI, caps, &err);
    if (rc == 0 && mask)
        rc = kiln__image_request_set_image(r, "mask", mask->data, mask->len, 1, KILN__MASK_OPENAI, caps, &err);
    if (rc == 0) rc = kiln__image_request_finish(r, caps, "size", "size", &err);
    free(parts);
    if (rc != 0) {
        kiln__image_request_free(r);
        json_decref(fields);
        return kiln__http_send_error(c, rq, &err);
    }
    return run_and_answer(w, c, rq, mask ? KILN__OP_IMAGE_INPAINT : KILN__OP_IMAGE_TRANSFORM, fields, r);
}
