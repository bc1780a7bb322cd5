/* tests/unit/test_worker_body_limit.c - the request body limit of `kiln
 * serve` when --max-body is not given follows the backend:
 *   - an image model (the tiny SD model of tests/data/sd) answers an
 *     AUTOMATIC1111 img2img request whose body is over 1 MiB (a 640x640
 *     noise PNG in base64, resized to 64x64 for one cheap step) with its
 *     image, and refuses a body declared one byte over 64 MiB with 413 and
 *     a JSON error naming the limit;
 *   - a text backend (the fake one) keeps 1 MiB;
 *   - --max-body still sets the limit for an image model. */
#include "image_server.h" /* first: it sets _GNU_SOURCE */

#include <stdlib.h>
#include <string.h>

#include "test.h"
#include "test_random.h"

/* A side x side RGB PNG of seeded noise (it hardly compresses), base64. */
static char *noise_png_b64(uint32_t side) {
    size_t n = (size_t)side * side * 3;
    uint8_t *px = malloc(n);
    if (!px) return NULL;
    unsigned seed = 2024;
    for (size_t i = 0; i < n; i++) px[i] = (uint8_t)(128.0f + 127.0f * lcg_unit(&seed));
    kiln_image img = {side, side, 3, px};
    uint8_t *png = NULL;
    size_t len = 0;
    char *b64 = kiln__png_encode(&img, NULL, &png, &len) == KILN_OK ? img_b64(png, len) : NULL;
    free(px);
    free(png);
    return b64;
}

/* An AUTOMATIC1111 img2img request on a 640x640 noise image, made 64x64
 * and one step without guidance: its JSON body in a malloc'd string, or
 * NULL. */
static char *big_img2img_body(void) {
    char *b64 = noise_png_b64(640);
    if (!b64) return NULL;
    const char *head = "{\"prompt\":\"noise\",\"width\":64,\"height\":64,\"steps\":1,\"cfg_scale\":0,"
                       "\"denoising_strength\":0.5,\"seed\":1,\"init_images\":[\"";
    size_t cap = strlen(head) + strlen(b64) + 8;
    char *body = malloc(cap);
    if (body) snprintf(body, cap, "%s%s\"]}", head, b64);
    free(b64);
    return body;
}

/* A request that declares `length` body bytes on an image route and sends one:
 * the answer comes before the body would be read. */
static void post_declared(int port, size_t length, struct tc_resp *r) {
    char raw[256];
    int n = snprintf(raw, sizeof raw,
                     "POST /sdapi/v1/img2img HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                     "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n{",
                     length);
    tc_raw(port, raw, (size_t)n, 20000, r);
}

/* r is a 413 with a JSON error request_too_large whose message names limit. */
static void check_too_large(const struct tc_resp *r, size_t limit) {
    CHECK_EQ_INT(r->status, 413);
    const char *ct = tc_header(r, "Content-Type");
    CHECK(ct && strstr(ct, "application/json"));
    char code[64], param[64], want[32];
    img_error_of(r, code, param, sizeof code);
    CHECK_EQ_STR(code, "request_too_large");
    snprintf(want, sizeof want, "%zu", limit);
    CHECK(r->body && strstr(r->body, want));
}

static void test_image_model_default(void) {
    char *body = big_img2img_body();
    REQUIRE(body != NULL);
    int port = 0;
    struct kiln__worker *w = img_server_start(4, &port);
    if (!w) {
        TEST_FAIL_AT_("cannot start the daemon on %s: %s", IMG_MODEL, kiln_last_error());
        free(body);
        return;
    }
    CHECK(strlen(body) > KILN__MAX_BODY_TEXT);
    CHECK(strlen(body) < KILN__MAX_BODY_IMAGE);
    struct tc_resp r;
    tc_request(port, "POST", "/sdapi/v1/img2img", NULL, body, &r);
    CHECK_EQ_INT(r.status, 200);
    if (r.status != 200) fprintf(stderr, "  answer %d: %.300s\n", r.status, r.body ? r.body : "(none)");
    json_t *j = img_body_json(&r);
    size_t n = 0;
    uint8_t *png = img_unb64(json_string_value(json_array_get(json_object_get(j, "images"), 0)), &n);
    kiln_image_info info = {0};
    CHECK(png && kiln__image_probe(png, n, &info) == KILN_OK && info.width == 64 && info.height == 64);
    free(png);
    json_decref(j);
    tc_resp_free(&r);
    post_declared(port, KILN__MAX_BODY_IMAGE + 1, &r);
    check_too_large(&r, KILN__MAX_BODY_IMAGE);
    tc_resp_free(&r);
    free(body);
    kiln__worker_stop(w);
}

static void test_text_backend_default(void) {
    struct kiln__worker_config cfg;
    kiln__worker_config_defaults(&cfg);
    cfg.port = 0;
    cfg.shutdown_s = 0;
    struct kiln__fake_options fo = {256, 0, 0, 0};
    struct kiln__backend b;
    struct kiln__worker *w = NULL;
    REQUIRE(kiln__backend_fake_create(&fo, &b) == KILN_OK);
    REQUIRE(kiln__worker_start(&cfg, &b, &w) == KILN_OK);
    int port = kiln__worker_port(w);
    struct tc_resp r;
    post_declared(port, KILN__MAX_BODY_TEXT + 1, &r);
    check_too_large(&r, KILN__MAX_BODY_TEXT);
    tc_resp_free(&r);
    kiln__worker_stop(w);
}

static void test_max_body_wins(void) {
    struct kiln__worker_config cfg;
    img_server_config(&cfg, 4);
    cfg.max_body = KILN__MAX_BODY_TEXT;
    char *body = big_img2img_body();
    REQUIRE(body != NULL);
    int port = 0;
    struct kiln__worker *w = img_server_start_cfg(&cfg, &port);
    if (!w) {
        TEST_FAIL_AT_("cannot start the daemon on %s: %s", IMG_MODEL, kiln_last_error());
        free(body);
        return;
    }
    struct tc_resp r;
    tc_request(port, "POST", "/sdapi/v1/img2img", NULL, body, &r);
    check_too_large(&r, KILN__MAX_BODY_TEXT);
    tc_resp_free(&r);
    free(body);
    kiln__worker_stop(w);
}

int main(void) {
    if (!getenv("KILN_LOG_LEVEL")) kiln__log_set_level(KILN_LOG_ERROR);
    RUN(test_image_model_default);
    RUN(test_text_backend_default);
    RUN(test_max_body_wins);
    return TEST_REPORT();
}
