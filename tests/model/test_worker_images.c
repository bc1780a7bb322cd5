/* tests/model/test_worker_images.c - the worker daemon serving the tiny
 * random-weight SD model (tests/data/sd/tiny-sd15) in process on a loopback
 * port, driven over real sockets:
 *   - the rbee job protocol for image_generation, image_transform and
 *     image_inpaint: events in order (started, progress every step with
 *     previews where asked, complete, [DONE]); the final PNG byte-identical
 *     to what the engine makes and encodes for `kiln image` with the same
 *     settings (kiln_image_generate + the PNG writer with its parameters);
 *   - cancel by DELETE mid-run: the stream ends within one more step;
 *   - two clients: the second waits in the queue and reports position 1;
 *   - AUTOMATIC1111 txt2img gives the same image as the job protocol;
 *   - OpenAI edits (multipart) with a mask whose transparent half is the
 *     area to edit: the opaque half comes back pixel for pixel (an inverted
 *     mask would change it), the transparent half changes. */
#include "image_server.h" /* first: it sets _GNU_SOURCE */

#include <stdlib.h>
#include <string.h>

#include "test.h"

static struct kiln__worker *srv;
static int port;
static kiln_image_model *ref; /* the engine, loaded separately: the oracle */

/* What the engine makes for p, encoded as `kiln image` writes it. */
static uint8_t *engine_png(const kiln_image_params *p, size_t *n) {
    kiln_image_result r = {0};
    uint8_t *png = NULL;
    if (kiln_image_generate(ref, p, &r) != KILN_OK || r.count < 1) {
        fprintf(stderr, "  engine: %s\n", kiln_last_error());
        kiln_image_result_free(&r);
        return NULL;
    }
    if (kiln__png_encode(&r.images[0], r.parameters[0], &png, n) != KILN_OK) png = NULL;
    kiln_image_result_free(&r);
    return png;
}

/* Submit an rbee job and read its whole stream into ev; returns events. */
static size_t run_job(const char *body, struct img_event *ev, size_t cap, char *job_id) {
    struct tc_resp r;
    tc_request(port, "POST", "/v1/jobs", NULL, body, &r);
    json_t *j = img_body_json(&r);
    const char *id = json_string_value(json_object_get(j, "job_id"));
    if (r.status != 200 || !id) {
        fprintf(stderr, "  submit: %d %s\n", r.status, r.body ? r.body : "");
        json_decref(j);
        tc_resp_free(&r);
        return 0;
    }
    snprintf(job_id, 48, "%s", id);
    json_decref(j);
    tc_resp_free(&r);
    char path[96];
    snprintf(path, sizeof path, "/v1/jobs/%s/stream", job_id);
    tc_request(port, "GET", path, NULL, NULL, &r);
    size_t n = r.status == 200 ? img_parse_events(r.body, ev, cap) : 0;
    tc_resp_free(&r);
    return n;
}

/* Check the event order of a finished job with `steps` progress events and
 * previews every `every` steps; *complete gets the complete event's data
 * (NULL when the order is wrong). */
static void check_events(struct img_event *ev, size_t n, int steps, int every, json_t **complete) {
    *complete = NULL;
    REQUIRE(n >= 4);
    CHECK_EQ_STR(ev[0].name, "started");
    int progress = 0, previews = 0;
    size_t i = 1;
    /* steps 0: as many as the first progress event announces (img2img runs
     * the part of the schedule its strength asks for). */
    if (steps == 0 && n > 1) steps = (int)json_integer_value(json_object_get(ev[1].data, "total"));
    CHECK(steps >= 1);
    for (; i < n && (strcmp(ev[i].name, "progress") == 0 || strcmp(ev[i].name, "preview") == 0); i++) {
        json_t *d = ev[i].data;
        if (strcmp(ev[i].name, "progress") == 0) {
            progress++;
            CHECK_EQ_INT(json_integer_value(json_object_get(d, "step")), progress);
            CHECK_EQ_INT(json_integer_value(json_object_get(d, "total")), steps);
            CHECK(json_is_number(json_object_get(d, "percent")) && json_is_number(json_object_get(d, "eta_ms")));
        } else {
            previews++;
            CHECK_EQ_STR(json_string_value(json_object_get(d, "format")), "png");
            /* A preview follows the progress event of its step. */
            CHECK_EQ_INT(json_integer_value(json_object_get(d, "step")), progress);
            size_t len = 0;
            uint8_t *png = img_unb64(json_string_value(json_object_get(d, "image")), &len);
            CHECK(png && kiln__image_detect(png, len) == KILN_IMAGE_FORMAT_PNG);
            free(png);
        }
    }
    CHECK_EQ_INT(progress, steps);
    if (every) CHECK_EQ_INT(previews, (steps + every - 1) / every);
    else CHECK_EQ_INT(previews, 0);
    REQUIRE(i + 2 == n);
    CHECK_EQ_STR(ev[i].name, "complete");
    CHECK(ev[i + 1].done);
    if (strcmp(ev[i].name, "complete") == 0) *complete = ev[i].data;
}

/* The first image of a complete event, decoded from base64. */
static uint8_t *complete_png(json_t *complete, size_t *n) {
    return img_unb64(json_string_value(json_array_get(json_object_get(complete, "images"), 0)), n);
}

static kiln_image_params base_params(const char *prompt, uint64_t seed, uint32_t steps) {
    kiln_image_params p = kiln_image_default_params();
    p.prompt = prompt;
    p.negative_prompt = "blurry";
    p.width = p.height = 64;
    p.steps = steps;
    p.sampler = KILN_IMAGE_SAMPLER_EULER;
    p.guidance = 6.0f;
    p.seed = seed;
    return p;
}

static uint8_t *g_png;    /* the txt2img result (input of the other tests) */
static size_t g_png_len;  /* its bytes */

static void test_generation(void) {
    struct img_event ev[32];
    char id[48];
    size_t n = run_job("{\"operation\":\"image_generation\",\"prompt\":\"a red fox\",\"negative_prompt\":\"blurry\","
                       "\"width\":64,\"height\":64,\"steps\":3,\"sampler\":\"euler\",\"guidance_scale\":6,"
                       "\"seed\":11,\"preview_every\":2,\"hive_id\":\"h\",\"worker_id\":\"w\",\"model\":\"m\"}",
                       ev, 32, id);
    json_t *complete;
    check_events(ev, n, 3, 2, &complete);
    REQUIRE(complete);
    CHECK_EQ_INT(json_integer_value(json_object_get(complete, "seed")), 11);
    CHECK_CONTAINS(json_string_value(json_array_get(json_object_get(complete, "parameters"), 0)), "Seed: 11");
    size_t got_n = 0, want_n = 0;
    uint8_t *got = complete_png(complete, &got_n);
    kiln_image_params p = base_params("a red fox", 11, 3);
    uint8_t *want = engine_png(&p, &want_n);
    REQUIRE(got && want);
    CHECK(got_n == want_n && memcmp(got, want, got_n) == 0);
    g_png = got;
    g_png_len = got_n;
    free(want);
    img_events_free(ev, n);
}

static void test_transform(void) {
    REQUIRE(g_png);
    char *b64 = img_b64(g_png, g_png_len);
    struct kiln__buf body = {0};
    kiln__buf_printf(&body,
                     "{\"operation\":\"image_transform\",\"prompt\":\"a blue fox\",\"negative_prompt\":\"blurry\","
                     "\"steps\":4,\"sampler\":\"euler\",\"guidance_scale\":6,\"seed\":3,\"strength\":0.5,"
                     "\"input_image\":\"data:image/png;base64,%s\"}",
                     b64);
    struct img_event ev[32];
    char id[48];
    size_t n = run_job(body.data, ev, 32, id);
    json_t *complete;
    check_events(ev, n, 0, 0, &complete);
    REQUIRE(complete);
    size_t got_n = 0, want_n = 0;
    uint8_t *got = complete_png(complete, &got_n);
    kiln_image init = {0};
    REQUIRE(kiln__image_decode(g_png, g_png_len, 3, NULL, &init, NULL) == KILN_OK);
    kiln_image_params p = base_params("a blue fox", 3, 4);
    p.init_image = &init;
    p.strength = 0.5f;
    uint8_t *want = engine_png(&p, &want_n);
    REQUIRE(got && want);
    CHECK(got_n == want_n && memcmp(got, want, got_n) == 0);
    free(got);
    free(want);
    kiln_image_clear(&init);
    img_events_free(ev, n);
    kiln__buf_free(&body);
    free(b64);
}

/* A 64x64 mask: white (repaint) on the left half, black on the right. */
static uint8_t *left_half_mask_png(size_t *n) {
    uint8_t px[64 * 64];
    for (int y = 0; y < 64; y++)
        for (int x = 0; x < 64; x++) px[y * 64 + x] = x < 32 ? 255 : 0;
    kiln_image m = {64, 64, 1, px};
    uint8_t *png = NULL;
    return kiln__png_encode(&m, NULL, &png, n) == KILN_OK ? png : NULL;
}

static void test_inpaint(void) {
    REQUIRE(g_png);
    size_t mask_n = 0;
    uint8_t *mask_png = left_half_mask_png(&mask_n);
    REQUIRE(mask_png);
    char *b64 = img_b64(g_png, g_png_len), *mb64 = img_b64(mask_png, mask_n);
    struct kiln__buf body = {0};
    kiln__buf_printf(&body,
                     "{\"operation\":\"image_inpaint\",\"prompt\":\"a cat\",\"negative_prompt\":\"blurry\","
                     "\"steps\":2,\"sampler\":\"euler\",\"guidance_scale\":6,\"seed\":5,\"strength\":1,"
                     "\"init_image\":\"%s\",\"mask_image\":\"%s\"}",
                     b64, mb64);
    struct img_event ev[32];
    char id[48];
    size_t n = run_job(body.data, ev, 32, id);
    json_t *complete;
    check_events(ev, n, 2, 0, &complete);
    REQUIRE(complete);
    size_t got_n = 0, want_n = 0;
    uint8_t *got = complete_png(complete, &got_n);
    kiln_image init = {0}, mask = {0};
    REQUIRE(kiln__image_decode(g_png, g_png_len, 3, NULL, &init, NULL) == KILN_OK);
    REQUIRE(kiln__image_decode(mask_png, mask_n, 1, NULL, &mask, NULL) == KILN_OK);
    kiln_image_params p = base_params("a cat", 5, 2);
    p.init_image = &init;
    p.mask = &mask;
    p.strength = 1.0f;
    uint8_t *want = engine_png(&p, &want_n);
    REQUIRE(got && want);
    CHECK(got_n == want_n && memcmp(got, want, got_n) == 0);
    free(got);
    free(want);
    kiln_image_clear(&init);
    kiln_image_clear(&mask);
    img_events_free(ev, n);
    kiln__buf_free(&body);
    free(b64);
    free(mb64);
    free(mask_png);
}

/* The state of a job by GET /v1/jobs/{id} (a new JSON object). */
static json_t *job_state(const char *id) {
    char path[96];
    snprintf(path, sizeof path, "/v1/jobs/%s", id);
    struct tc_resp r;
    tc_request(port, "GET", path, NULL, NULL, &r);
    json_t *j = img_body_json(&r);
    tc_resp_free(&r);
    return j;
}

/* Submit a job; its id into id. */
static int submit(const char *body, char *id) {
    struct tc_resp r;
    tc_request(port, "POST", "/v1/jobs", NULL, body, &r);
    json_t *j = img_body_json(&r);
    const char *s = json_string_value(json_object_get(j, "job_id"));
    int ok = r.status == 200 && s;
    if (ok) snprintf(id, 48, "%s", s);
    json_decref(j);
    tc_resp_free(&r);
    return ok;
}

static void test_cancel_and_queue(void) {
    const char *slow = "{\"operation\":\"image_generation\",\"prompt\":\"slow\",\"width\":64,\"height\":64,"
                       "\"steps\":60,\"seed\":1}";
    const char *second = "{\"operation\":\"image_generation\",\"prompt\":\"second\",\"width\":64,\"height\":64,"
                         "\"steps\":1,\"seed\":2}";
    char a[48], b[48];
    REQUIRE(submit(slow, a));
    /* Wait until the runner has taken the first (on a loaded machine that
     * can lag the submit), so the second's place in the queue is known. */
    int running = 0;
    for (int i = 0; i < 1000 && !running; i++) {
        json_t *sa = job_state(a);
        const char *st = json_string_value(json_object_get(sa, "state"));
        running = st && strcmp(st, "queued") != 0;
        json_decref(sa);
        if (!running) tc_sleep_ms(10);
    }
    REQUIRE(running);
    REQUIRE(submit(second, b));
    /* The second waits behind the first and says where it is. */
    json_t *sb = job_state(b);
    CHECK_EQ_STR(json_string_value(json_object_get(sb, "state")), "queued");
    CHECK_EQ_INT(json_integer_value(json_object_get(sb, "queue_position")), 1);
    CHECK_EQ_STR(json_string_value(json_object_get(sb, "operation")), "image_generation");
    json_decref(sb);
    struct tc_resp r;
    tc_request(port, "GET", "/sdapi/v1/progress", NULL, NULL, &r);
    json_t *pj = img_body_json(&r);
    CHECK_EQ_INT(json_integer_value(json_object_get(json_object_get(pj, "state"), "job_count")), 2);
    json_decref(pj);
    tc_resp_free(&r);

    /* Follow the first until step 2, then cancel it. */
    char path[96];
    snprintf(path, sizeof path, "/v1/jobs/%s/stream", a);
    int fd = tc_open(port, "GET", path, NULL, NULL);
    REQUIRE(fd >= 0);
    char *buf = NULL;
    size_t len = 0, cap = 0;
    int eof = 0;
    tc_read_until(fd, &buf, &len, &cap, "\"step\":2,", 60000, &eof);
    REQUIRE(buf && strstr(buf, "\"step\":2,"));
    snprintf(path, sizeof path, "/v1/jobs/%s", a);
    tc_request(port, "DELETE", path, NULL, NULL, &r);
    CHECK(r.status == 202 || r.status == 200);
    tc_resp_free(&r);
    tc_read_until(fd, &buf, &len, &cap, "[DONE]", 60000, &eof);
    close(fd);
    REQUIRE(strstr(buf, "[DONE]"));
    tc_dechunk(strstr(buf, "\r\n\r\n") + 4, strlen(strstr(buf, "\r\n\r\n") + 4));
    struct img_event ev[128];
    size_t n = img_parse_events(strstr(buf, "\r\n\r\n") + 4, ev, 128);
    REQUIRE(n >= 3);
    /* It stopped within one step of the DELETE (which came after step 2). */
    int last_step = 0;
    for (size_t i = 0; i < n; i++)
        if (strcmp(ev[i].name, "progress") == 0) last_step = (int)json_integer_value(json_object_get(ev[i].data, "step"));
    CHECK(last_step >= 2 && last_step <= 4);
    CHECK_EQ_STR(ev[n - 2].name, "error");
    CHECK_EQ_STR(json_string_value(json_object_get(ev[n - 2].data, "code")), "cancelled");
    CHECK(ev[n - 1].done);
    img_events_free(ev, n);
    free(buf);
    json_t *sa = job_state(a);
    CHECK_EQ_STR(json_string_value(json_object_get(sa, "state")), "cancelled");
    json_decref(sa);

    /* The second then runs to its end. */
    snprintf(path, sizeof path, "/v1/jobs/%s/stream", b);
    tc_request(port, "GET", path, NULL, NULL, &r);
    CHECK(r.body && strstr(r.body, "event: complete"));
    tc_resp_free(&r);
}

static void test_a1111_same_image(void) {
    struct tc_resp r;
    tc_request(port, "POST", "/sdapi/v1/txt2img", NULL,
               "{\"prompt\":\"a red fox\",\"negative_prompt\":\"blurry\",\"width\":64,\"height\":64,\"steps\":3,"
               "\"sampler_name\":\"Euler\",\"cfg_scale\":6,\"seed\":11}",
               &r);
    CHECK_EQ_INT(r.status, 200);
    json_t *j = img_body_json(&r);
    size_t n = 0;
    uint8_t *png = img_unb64(json_string_value(json_array_get(json_object_get(j, "images"), 0)), &n);
    REQUIRE(png && g_png);
    CHECK(n == g_png_len && memcmp(png, g_png, n) == 0);
    json_t *info = json_loads(json_string_value(json_object_get(j, "info")), 0, NULL);
    CHECK_EQ_INT(json_integer_value(json_object_get(info, "seed")), 11);
    CHECK_EQ_INT(json_integer_value(json_object_get(info, "width")), 64);
    CHECK_EQ_INT(json_integer_value(json_object_get(json_object_get(j, "parameters"), "steps")), 3);
    json_decref(info);
    json_decref(j);
    free(png);
    tc_resp_free(&r);
}

/* A multipart body with the given parts (name, filename or NULL, bytes). */
static void form_part(struct kiln__buf *b, const char *name, const char *filename, const void *data, size_t n) {
    kiln__buf_printf(b, "--XyZb\r\nContent-Disposition: form-data; name=\"%s\"", name);
    if (filename) kiln__buf_printf(b, "; filename=\"%s\"\r\nContent-Type: image/png", filename);
    kiln__buf_puts(b, "\r\n\r\n");
    kiln__buf_append(b, data, n);
    kiln__buf_puts(b, "\r\n");
}

static void test_openai_edit_mask(void) {
    REQUIRE(g_png);
    /* The OpenAI convention: fully transparent pixels (left half) are edited. */
    uint8_t px[64 * 64 * 4];
    for (int i = 0; i < 64 * 64; i++) {
        px[4 * i] = px[4 * i + 1] = px[4 * i + 2] = 128;
        px[4 * i + 3] = (i % 64) < 32 ? 0 : 255;
    }
    kiln_image m = {64, 64, 4, px};
    uint8_t *mask = NULL;
    size_t mask_n = 0;
    REQUIRE(kiln__png_encode(&m, NULL, &mask, &mask_n) == KILN_OK);
    struct kiln__buf form = {0};
    form_part(&form, "image", "in.png", g_png, g_png_len);
    form_part(&form, "mask", "mask.png", mask, mask_n);
    form_part(&form, "prompt", NULL, "a green cat", 11);
    form_part(&form, "n", NULL, "1", 1);
    form_part(&form, "steps", NULL, "2", 1);
    form_part(&form, "seed", NULL, "9", 1);
    kiln__buf_puts(&form, "--XyZb--\r\n");
    struct kiln__buf raw = {0};
    kiln__buf_printf(&raw,
                     "POST /v1/images/edits HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: "
                     "multipart/form-data; boundary=XyZb\r\nContent-Length: %zu\r\n\r\n",
                     form.len);
    kiln__buf_append(&raw, form.data, form.len);
    struct tc_resp r;
    tc_raw(port, raw.data, raw.len, 60000, &r);
    CHECK_EQ_INT(r.status, 200);
    json_t *j = img_body_json(&r);
    size_t n = 0;
    uint8_t *png = img_unb64(json_string_value(json_object_get(json_array_get(json_object_get(j, "data"), 0), "b64_json")), &n);
    REQUIRE(png);
    kiln_image out = {0}, in = {0};
    REQUIRE(kiln__image_decode(png, n, 3, NULL, &out, NULL) == KILN_OK);
    REQUIRE(kiln__image_decode(g_png, g_png_len, 3, NULL, &in, NULL) == KILN_OK);
    size_t kept_diff = 0, edited_diff = 0;
    for (int y = 0; y < 64; y++)
        for (int x = 0; x < 64; x++)
            for (int c = 0; c < 3; c++) {
                int d = out.data[(y * 64 + x) * 3 + c] != in.data[(y * 64 + x) * 3 + c];
                if (x < 32) edited_diff += d;
                else kept_diff += d;
            }
    CHECK_EQ_INT(kept_diff, 0);
    CHECK(edited_diff > 64 * 32);
    kiln_image_clear(&out);
    kiln_image_clear(&in);
    free(png);
    json_decref(j);
    tc_resp_free(&r);
    kiln__buf_free(&raw);
    kiln__buf_free(&form);
    free(mask);
}

int main(void) {
    if (!getenv("KILN_LOG_LEVEL")) kiln__log_set_level(KILN_LOG_ERROR);
    kiln_image_load_options o = {IMG_VOCAB};
    if (kiln_image_load(IMG_MODEL, &o, &ref) != KILN_OK) {
        fprintf(stderr, "cannot load %s: %s\n", IMG_MODEL, kiln_last_error());
        return 1;
    }
    srv = img_server_start(4, &port);
    if (!srv) {
        fprintf(stderr, "cannot start the daemon: %s\n", kiln_last_error());
        return 1;
    }
    RUN(test_generation);
    RUN(test_transform);
    RUN(test_inpaint);
    RUN(test_cancel_and_queue);
    RUN(test_a1111_same_image);
    RUN(test_openai_edit_mask);
    kiln__worker_stop(srv);
    kiln_image_model_free(ref);
    free(g_png);
    return TEST_REPORT();
}
