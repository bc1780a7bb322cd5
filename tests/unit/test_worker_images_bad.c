/* tests/unit/test_worker_images_bad.c - the image worker's refusals and its
 * parsers, on the tiny SD model of tests/data/sd served in process:
 *   - 48 bad requests over the rbee, AUTOMATIC1111 and OpenAI image routes
 *     (bad base64, undecodable images, a mask of the wrong size, zero, odd
 *     and 65536-pixel sizes, an image whose header claims 65536x65536,
 *     negative and too many steps, unknown samplers, bad multipart bodies,
 *     ...), each answered 4xx with its error code and the field it names,
 *     the server still serving afterwards;
 *   - the A1111 lists and options, png-info reading back a PNG's parameters;
 *   - the multipart parser on well-formed and broken bodies;
 *   - the JPEG and WebP encoders, checked by decoding their output;
 *   - one cheap generation (1 step, no guidance) through AUTOMATIC1111's
 *     txt2img with previews, so the sanitizer build covers the image job
 *     path (events, encoding, the answer) for leaks and overflows. */
#include "image_server.h" /* first: it sets _GNU_SOURCE */

#include <stdlib.h>
#include <string.h>

#include "worker/multipart.h"
#include "test.h"

static struct kiln__worker *srv;
static int port;

/* CRC-32 of PNG chunks (to forge a header with a huge size). */
static uint32_t crc32_of(const uint8_t *p, size_t n) {
    uint32_t c = 0xffffffffu;
    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++) c = (c >> 1) ^ (0xedb88320u & (0u - (c & 1)));
    }
    return c ^ 0xffffffffu;
}

/* A PNG (base64) of w x h grey pixels with `channels`. */
static char *png_b64(uint32_t w, uint32_t h, uint32_t channels) {
    uint8_t *px = calloc((size_t)w * h * channels, 1);
    kiln_image img = {w, h, channels, px};
    uint8_t *png = NULL;
    size_t n = 0;
    char *b64 = NULL;
    if (px && kiln__png_encode(&img, NULL, &png, &n) == KILN_OK) b64 = img_b64(png, n);
    free(px);
    free(png);
    return b64;
}

/* A PNG whose IHDR claims 65536 x 65536 pixels (valid CRC), base64. */
static char *huge_png_b64(void) {
    uint8_t *png = NULL;
    size_t n = 0;
    uint8_t px[3] = {1, 2, 3};
    kiln_image img = {1, 1, 3, px};
    if (kiln__png_encode(&img, NULL, &png, &n) != KILN_OK) return NULL;
    /* IHDR data starts at 16: width, height (big-endian); CRC after 13 bytes. */
    const uint8_t big[8] = {0, 1, 0, 0, 0, 1, 0, 0};
    memcpy(png + 16, big, 8);
    uint32_t c = crc32_of(png + 12, 17);
    png[29] = (uint8_t)(c >> 24), png[30] = (uint8_t)(c >> 16), png[31] = (uint8_t)(c >> 8), png[32] = (uint8_t)c;
    char *b64 = img_b64(png, n);
    free(png);
    return b64;
}

/* One bad request: route, body, expected status, code and param. */
struct bad_case {
    const char *path;   /* POST route */
    const char *body;   /* JSON body (printf format with one %s for an image, or plain) */
    int status;         /* expected HTTP status */
    const char *code;   /* expected error code */
    const char *param;  /* expected param, or NULL for none */
};

static void test_bad_requests(void) {
    char *img = png_b64(64, 64, 3), *small = png_b64(32, 32, 1), *huge = huge_png_b64();
    char *garbage = img_b64((const uint8_t *)"not an image at all", 19);
    REQUIRE(img && small && huge && garbage);
    static const struct bad_case cases[] = {
        {"/v1/jobs", "{\"operation\":\"infer\",\"prompt\":\"x\"}", 400, "unsupported_operation", "operation"},
        {"/v1/jobs", "{\"operation\":\"image_generation\"}", 400, "invalid_value", "prompt"},
        {"/v1/jobs", "{\"operation\":\"image_generation\",\"prompt\":5}", 400, "invalid_value", "prompt"},
        {"/v1/jobs", "{\"operation\":\"image_generation\",\"prompt\":\"x\",\"width\":0}", 400, "invalid_value", "width"},
        {"/v1/jobs", "{\"operation\":\"image_generation\",\"prompt\":\"x\",\"width\":65}", 400, "invalid_value", "width"},
        {"/v1/jobs", "{\"operation\":\"image_generation\",\"prompt\":\"x\",\"height\":63}", 400, "invalid_value", "height"},
        {"/v1/jobs", "{\"operation\":\"image_generation\",\"prompt\":\"x\",\"width\":65536,\"height\":65536}", 400,
         "invalid_value", "width"},
        {"/v1/jobs", "{\"operation\":\"image_generation\",\"prompt\":\"x\",\"steps\":-1}", 400, "invalid_value", "steps"},
        {"/v1/jobs", "{\"operation\":\"image_generation\",\"prompt\":\"x\",\"steps\":0}", 400, "invalid_value", "steps"},
        {"/v1/jobs", "{\"operation\":\"image_generation\",\"prompt\":\"x\",\"steps\":151}", 400, "invalid_value", "steps"},
        {"/v1/jobs", "{\"operation\":\"image_generation\",\"prompt\":\"x\",\"steps\":2.5}", 400, "invalid_value", "steps"},
        {"/v1/jobs", "{\"operation\":\"image_generation\",\"prompt\":\"x\",\"guidance_scale\":31}", 400, "invalid_value",
         "guidance_scale"},
        {"/v1/jobs", "{\"operation\":\"image_generation\",\"prompt\":\"x\",\"guidance_scale\":\"7\"}", 400,
         "invalid_value", "guidance_scale"},
        {"/v1/jobs", "{\"operation\":\"image_generation\",\"prompt\":\"x\",\"sampler\":\"plms\"}", 400, "invalid_value",
         "sampler"},
        {"/v1/jobs", "{\"operation\":\"image_generation\",\"prompt\":\"x\",\"prediction\":\"x0\"}", 400,
         "invalid_value", "prediction"},
        {"/v1/jobs", "{\"operation\":\"image_generation\",\"prompt\":\"x\",\"prediction\":1}", 400,
         "invalid_value", "prediction"},
        {"/v1/jobs", "{\"operation\":\"image_generation\",\"prompt\":\"x\",\"schedule\":\"cosine\"}", 400,
         "invalid_value", "schedule"},
        {"/v1/jobs", "{\"operation\":\"image_generation\",\"prompt\":\"x\",\"batch\":0}", 400, "invalid_value", "batch"},
        {"/v1/jobs", "{\"operation\":\"image_generation\",\"prompt\":\"x\",\"batch\":17}", 400, "invalid_value", "batch"},
        {"/v1/jobs", "{\"operation\":\"image_generation\",\"prompt\":\"x\",\"seed\":\"abc\"}", 400, "invalid_value",
         "seed"},
        {"/v1/jobs", "{\"operation\":\"image_generation\",\"prompt\":\"x\",\"pad_cond_uncond\":1}", 400,
         "invalid_value", "pad_cond_uncond"},
        {"/v1/jobs", "{\"operation\":\"image_generation\",\"prompt\":\"x\",\"preview_every\":-1}", 400, "invalid_value",
         "preview_every"},
        {"/v1/jobs", "{\"operation\":\"image_transform\",\"prompt\":\"x\"}", 400, "invalid_value", "input_image"},
        {"/v1/jobs", "{\"operation\":\"image_transform\",\"prompt\":\"x\",\"input_image\":\"!!!*\"}", 400,
         "invalid_value", "input_image"},
        {"/v1/jobs", "{\"operation\":\"image_transform\",\"prompt\":\"x\",\"input_image\":\"data:image/png,abc\"}", 400,
         "invalid_value", "input_image"},
        {"/v1/jobs", "{\"operation\":\"image_transform\",\"prompt\":\"x\",\"input_image\":\"%G\"}", 400,
         "invalid_value", "input_image"},
        {"/v1/jobs", "{\"operation\":\"image_transform\",\"prompt\":\"x\",\"input_image\":\"%I\",\"strength\":1.5}", 400,
         "invalid_value", "strength"},
        {"/v1/jobs", "{\"operation\":\"image_transform\",\"prompt\":\"x\",\"input_image\":\"%I\",\"width\":128}", 400,
         "invalid_value", "width"},
        {"/v1/jobs", "{\"operation\":\"image_transform\",\"prompt\":\"x\",\"input_image\":\"%H\"}", 413,
         "image_too_large", "input_image"},
        {"/v1/jobs", "{\"operation\":\"image_inpaint\",\"prompt\":\"x\",\"init_image\":\"%I\"}", 400, "invalid_value",
         "mask_image"},
        {"/v1/jobs", "{\"operation\":\"image_inpaint\",\"prompt\":\"x\",\"init_image\":\"%I\",\"mask_image\":\"%S\"}",
         400, "invalid_value", "mask_image"},
        {"/v1/jobs", "{\"operation\":\"image_generation\",\"prompt\":\"x\"", 400, "invalid_json", NULL},
        {"/sdapi/v1/txt2img", "{\"prompt\":\"x\",\"cfg_scale\":100}", 400, "invalid_value", "cfg_scale"},
        {"/sdapi/v1/txt2img", "{\"prompt\":\"x\",\"sampler_name\":\"PLMS\"}", 400, "invalid_value", "sampler_name"},
        {"/sdapi/v1/txt2img", "{\"prompt\":\"x\",\"prediction\":\"sample\"}", 400, "invalid_value", "prediction"},
        {"/sdapi/v1/txt2img", "{\"prompt\":\"x\",\"batch_size\":4,\"n_iter\":5}", 400, "invalid_value", "n_iter"},
        {"/sdapi/v1/txt2img", "[1,2]", 400, "invalid_json", NULL},
        {"/sdapi/v1/img2img", "{\"prompt\":\"x\"}", 400, "invalid_value", "init_images"},
        {"/sdapi/v1/img2img", "{\"prompt\":\"x\",\"init_images\":[\"data:image/png;base64,%%%%\"]}", 400,
         "invalid_value", "init_images"},
        {"/sdapi/v1/img2img", "{\"prompt\":\"x\",\"init_images\":[\"%I\"],\"mask\":\"%S\"}", 400, "invalid_value",
         "mask"},
        {"/sdapi/v1/options", "{\"sd_model_checkpoint\":\"other-model\"}", 400, "invalid_value", NULL},
        {"/sdapi/v1/png-info", "{}", 400, "invalid_value", NULL},
        {"/v1/images/generations", "{\"prompt\":\"x\",\"size\":\"64\"}", 400, "invalid_value", "size"},
        {"/v1/images/generations", "{\"prompt\":\"x\",\"size\":\"0x0\"}", 400, "invalid_value", "size"},
        {"/v1/images/generations", "{\"prompt\":\"x\",\"size\":\"100x100\"}", 400, "invalid_value", "size"},
        {"/v1/images/generations", "{\"prompt\":\"x\",\"response_format\":\"url\"}", 400, "unsupported",
         "response_format"},
        {"/v1/images/generations", "{\"prompt\":\"x\",\"output_format\":\"gif\"}", 400, "invalid_value",
         "output_format"},
        {"/v1/images/generations", "{\"prompt\":\"x\",\"n\":0}", 400, "invalid_value", "n"},
        {"/v1/images/generations", "{\"n\":1}", 400, "invalid_value", "prompt"},
    };
    int n = 0;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        /* %I: a 64x64 PNG, %S: a 32x32 mask, %H: a forged huge header, %G: not an image. */
        struct kiln__buf body = {0};
        for (const char *p = cases[i].body; *p; p++) {
            if (p[0] == '%' && (p[1] == 'I' || p[1] == 'S' || p[1] == 'H' || p[1] == 'G')) {
                kiln__buf_puts(&body, p[1] == 'I' ? img : p[1] == 'S' ? small : p[1] == 'H' ? huge : garbage);
                p++;
            } else if (p[0] == '%' && p[1] == '%') {
                kiln__buf_puts(&body, "%");
                p++;
            } else {
                kiln__buf_append(&body, p, 1);
            }
        }
        struct tc_resp r;
        tc_request(port, "POST", cases[i].path, NULL, body.data, &r);
        char code[64], param[64];
        img_error_of(&r, code, param, sizeof code);
        if (r.status != cases[i].status || strcmp(code, cases[i].code) != 0 ||
            strcmp(param, cases[i].param ? cases[i].param : "") != 0)
            fprintf(stderr, "  case %zu (%s %.80s): %d %s %s\n", i, cases[i].path, cases[i].body, r.status, code,
                    param);
        CHECK_EQ_INT(r.status, cases[i].status);
        CHECK_EQ_STR(code, cases[i].code);
        CHECK_EQ_STR(param, cases[i].param ? cases[i].param : "");
        tc_resp_free(&r);
        kiln__buf_free(&body);
        n++;
    }
    CHECK(n >= 25);
    free(img);
    free(small);
    free(huge);
    free(garbage);
}

/* Send a multipart form to the edits route; its status and error code. */
static int post_form(const char *content_type, const char *form, size_t len, char *code) {
    struct kiln__buf raw = {0};
    kiln__buf_printf(&raw,
                     "POST /v1/images/edits HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: %s\r\n"
                     "Content-Length: %zu\r\n\r\n",
                     content_type, len);
    kiln__buf_append(&raw, form, len);
    struct tc_resp r;
    tc_raw(port, raw.data, raw.len, 20000, &r);
    char param[64];
    img_error_of(&r, code, param, 64);
    int status = r.status;
    tc_resp_free(&r);
    kiln__buf_free(&raw);
    return status;
}

static void test_bad_edits(void) {
    char code[64];
    const char *ct = "multipart/form-data; boundary=B";
    CHECK_EQ_INT(post_form("application/json", "{}", 2, code), 400);
    CHECK_EQ_INT(post_form("multipart/form-data", "", 0, code), 400);
    const char *no_close = "--B\r\nContent-Disposition: form-data; name=\"prompt\"\r\n\r\nx";
    CHECK_EQ_INT(post_form(ct, no_close, strlen(no_close), code), 400);
    const char *no_image = "--B\r\nContent-Disposition: form-data; name=\"prompt\"\r\n\r\nx\r\n--B--\r\n";
    CHECK_EQ_INT(post_form(ct, no_image, strlen(no_image), code), 400);
    CHECK_EQ_STR(code, "invalid_value");
    /* A mask without an alpha channel cannot say what to edit. */
    size_t n1 = 0, n2 = 0;
    char *a = png_b64(64, 64, 3), *m = png_b64(64, 64, 3);
    uint8_t *ia = img_unb64(a, &n1), *im = img_unb64(m, &n2);
    REQUIRE(ia && im);
    struct kiln__buf form = {0};
    kiln__buf_puts(&form, "--B\r\nContent-Disposition: form-data; name=\"prompt\"\r\n\r\nx\r\n");
    kiln__buf_puts(&form, "--B\r\nContent-Disposition: form-data; name=\"image\"; filename=\"a.png\"\r\n\r\n");
    kiln__buf_append(&form, ia, n1);
    kiln__buf_puts(&form, "\r\n--B\r\nContent-Disposition: form-data; name=\"mask\"; filename=\"m.png\"\r\n\r\n");
    kiln__buf_append(&form, im, n2);
    kiln__buf_puts(&form, "\r\n--B--\r\n");
    CHECK_EQ_INT(post_form(ct, form.data, form.len, code), 400);
    kiln__buf_free(&form);
    free(a);
    free(m);
    free(ia);
    free(im);
    /* A body over --max-body (64 MiB by default for an image model) is
     * refused before it is read. */
    struct tc_resp r;
    const char *big = "POST /sdapi/v1/txt2img HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                      "Content-Type: application/json\r\nContent-Length: 100000000\r\n\r\n{";
    tc_raw(port, big, strlen(big), 20000, &r);
    CHECK_EQ_INT(r.status, 413);
    tc_resp_free(&r);
    /* Still serving. */
    tc_request(port, "GET", "/ready", NULL, NULL, &r);
    CHECK_EQ_INT(r.status, 200);
    json_t *j = img_body_json(&r);
    json_t *caps = json_object_get(json_object_get(j, "model"), "capabilities");
    CHECK_EQ_INT(json_array_size(caps), 3);
    CHECK_EQ_INT(json_integer_value(json_object_get(json_object_get(json_object_get(j, "model"), "image"), "max_steps")),
                 150);
    json_decref(j);
    tc_resp_free(&r);
}

static void test_a1111_lists(void) {
    struct tc_resp r;
    tc_request(port, "GET", "/sdapi/v1/samplers", NULL, NULL, &r);
    json_t *j = img_body_json(&r);
    CHECK_EQ_INT(r.status, 200);
    /* Every listed name is one the engine takes. */
    for (size_t i = 0; i < json_array_size(j); i++) {
        kiln_image_sampler s;
        CHECK(kiln_image_sampler_from_name(json_string_value(json_object_get(json_array_get(j, i), "name")), &s));
    }
    CHECK(json_array_size(j) >= 5);
    json_decref(j);
    tc_resp_free(&r);
    tc_request(port, "GET", "/sdapi/v1/schedulers", NULL, NULL, &r);
    j = img_body_json(&r);
    CHECK(json_array_size(j) >= 3);
    json_decref(j);
    tc_resp_free(&r);
    tc_request(port, "GET", "/sdapi/v1/sd-models", NULL, NULL, &r);
    j = img_body_json(&r);
    CHECK_EQ_STR(json_string_value(json_object_get(json_array_get(j, 0), "model_name")), "tiny-sd15");
    json_decref(j);
    tc_resp_free(&r);
    tc_request(port, "POST", "/sdapi/v1/options", NULL, "{\"sd_model_checkpoint\":\"tiny-sd15\",\"jpeg_quality\":80}",
               &r);
    CHECK_EQ_INT(r.status, 200);
    tc_resp_free(&r);
    tc_request(port, "GET", "/sdapi/v1/options", NULL, NULL, &r);
    j = img_body_json(&r);
    CHECK_EQ_STR(json_string_value(json_object_get(j, "sd_model_checkpoint")), "tiny-sd15");
    json_decref(j);
    tc_resp_free(&r);
    tc_request(port, "GET", "/sdapi/v1/progress", NULL, NULL, &r);
    j = img_body_json(&r);
    CHECK_EQ_INT(r.status, 200);
    CHECK(json_is_null(json_object_get(j, "current_image")));
    CHECK_EQ_INT(json_integer_value(json_object_get(json_object_get(j, "state"), "job_count")), 0);
    json_decref(j);
    tc_resp_free(&r);
    tc_request(port, "POST", "/sdapi/v1/interrupt", NULL, NULL, &r);
    CHECK_EQ_INT(r.status, 200);
    tc_resp_free(&r);
    tc_request(port, "GET", "/sdapi/v1/txt2img", NULL, NULL, &r);
    CHECK_EQ_INT(r.status, 405);
    tc_resp_free(&r);

    /* png-info reads the parameters chunk back, fields split out. */
    uint8_t px[8 * 8 * 3] = {0};
    kiln_image img = {8, 8, 3, px};
    uint8_t *png = NULL;
    size_t n = 0;
    REQUIRE(kiln__png_encode(&img, "a fox\nNegative prompt: blur\nSteps: 3, Sampler: Euler, Seed: 4", &png, &n) ==
            KILN_OK);
    char *b64 = img_b64(png, n);
    struct kiln__buf body = {0};
    kiln__buf_printf(&body, "{\"image\":\"data:image/png;base64,%s\"}", b64);
    tc_request(port, "POST", "/sdapi/v1/png-info", NULL, body.data, &r);
    j = img_body_json(&r);
    CHECK_CONTAINS(json_string_value(json_object_get(j, "info")), "Steps: 3");
    json_t *params = json_object_get(j, "parameters");
    CHECK_EQ_STR(json_string_value(json_object_get(params, "Prompt")), "a fox");
    CHECK_EQ_STR(json_string_value(json_object_get(params, "Negative prompt")), "blur");
    CHECK_EQ_STR(json_string_value(json_object_get(params, "Seed")), "4");
    json_decref(j);
    tc_resp_free(&r);
    kiln__buf_free(&body);
    free(b64);
    free(png);
}

static void test_multipart_parser(void) {
    char b[80];
    CHECK(kiln__multipart_boundary("multipart/form-data; boundary=abc", b, sizeof b) == KILN_OK);
    CHECK_EQ_STR(b, "abc");
    CHECK(kiln__multipart_boundary("Multipart/Form-Data; charset=x; boundary=\"a b\"", b, sizeof b) == KILN_OK);
    CHECK_EQ_STR(b, "a b");
    CHECK(kiln__multipart_boundary("multipart/mixed; boundary=abc", b, sizeof b) != KILN_OK);
    CHECK(kiln__multipart_boundary("multipart/form-data", b, sizeof b) != KILN_OK);
    CHECK(kiln__multipart_boundary("multipart/form-data; boundary=", b, sizeof b) != KILN_OK);
    const char body[] = "preamble\r\n--zz\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n1\r\n--zz\r\n"
                        "Content-Disposition: form-data; name=\"f\"; filename=\"x.png\"\r\nContent-Type: image/png\r\n"
                        "\r\nbin\r\n--zzz\r\n--zz--\r\n";
    struct kiln__multipart_part parts[4];
    size_t n = 0;
    REQUIRE(kiln__multipart_parse((const uint8_t *)body, sizeof body - 1, "zz", parts, 4, &n) == KILN_OK);
    REQUIRE(n == 2);
    CHECK_EQ_STR(parts[0].name, "a");
    CHECK(parts[0].len == 1 && parts[0].data[0] == '1');
    CHECK_EQ_STR(parts[1].name, "f");
    CHECK_EQ_STR(parts[1].filename, "x.png");
    CHECK_EQ_STR(parts[1].content_type, "image/png");
    /* The data runs to the real delimiter: "--zzz" inside it is data. */
    CHECK(parts[1].len == 10 && memcmp(parts[1].data, "bin\r\n--zzz", 10) == 0);
    CHECK(kiln__multipart_parse((const uint8_t *)body, sizeof body - 1, "zz", parts, 1, &n) == KILN_ERR_TOO_LARGE);
    const char *bad[] = {
        "no boundary here",
        "--zz\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nunterminated",
        "--zz\r\nContent-Disposition: attachment; name=\"a\"\r\n\r\nx\r\n--zz--",
        "--zz\r\nContent-Disposition: form-data\r\n\r\nx\r\n--zz--",
        "--zz\r\nContent-Disposition: form-data; name=\"\"\r\n\r\nx\r\n--zz--",
        "--zz\r\nContent-Disposition: form-data; name=\"a\"\r\nx\r\n--zz--",
        "--zzjunk",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        CHECK(kiln__multipart_parse((const uint8_t *)bad[i], strlen(bad[i]), "zz", parts, 4, &n) == KILN_ERR_FORMAT);
}

static void test_encoders(void) {
    uint8_t px[16 * 16 * 3];
    /* Smooth gradients, which lossy coding keeps well. */
    for (int i = 0; i < 16 * 16; i++)
        px[3 * i] = (uint8_t)(i % 16 * 8), px[3 * i + 1] = (uint8_t)(i / 16 * 8), px[3 * i + 2] = 120;
    kiln_image img = {16, 16, 3, px};
    const kiln_image_format fmts[] = {KILN_IMAGE_FORMAT_PNG, KILN_IMAGE_FORMAT_JPEG, KILN_IMAGE_FORMAT_WEBP};
    for (size_t f = 0; f < 3; f++) {
        uint8_t *data = NULL;
        size_t n = 0;
        REQUIRE(kiln__image_encode(&img, fmts[f], 95, "p", &data, &n) == KILN_OK);
        CHECK(kiln__image_detect(data, n) == fmts[f]);
        kiln_image back = {0};
        REQUIRE(kiln__image_decode(data, n, 3, NULL, &back, NULL) == KILN_OK);
        CHECK(back.width == 16 && back.height == 16);
        /* PNG is exact; the lossy formats stay close at quality 95. */
        double err = 0;
        for (size_t i = 0; i < sizeof px; i++) err += abs((int)back.data[i] - (int)px[i]);
        err /= sizeof px;
        if (fmts[f] == KILN_IMAGE_FORMAT_PNG) CHECK(err == 0);
        else CHECK(err < 6);
        kiln_image_clear(&back);
        free(data);
    }
    uint8_t *data = NULL;
    size_t n = 0;
    CHECK(kiln__image_encode(&img, KILN_IMAGE_FORMAT_UNKNOWN, 90, NULL, &data, &n) != KILN_OK);
    kiln_image empty = {0};
    CHECK(kiln__image_encode(&empty, KILN_IMAGE_FORMAT_JPEG, 90, NULL, &data, &n) != KILN_OK);
}

static void test_one_generation(void) {
    struct kiln__buf raw = {0};
    const char *body = "{\"prompt\":\"a fox\",\"width\":64,\"height\":64,\"steps\":1,\"cfg_scale\":0,"
                       "\"seed\":2,\"preview_every\":1}";
    kiln__buf_printf(&raw,
                     "POST /sdapi/v1/txt2img HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: "
                     "application/json\r\nContent-Length: %zu\r\n\r\n%s",
                     strlen(body), body);
    struct tc_resp r;
    tc_raw(port, raw.data, raw.len, 300000, &r); /* minutes under the sanitizers on a busy machine */
    CHECK_EQ_INT(r.status, 200);
    json_t *j = img_body_json(&r);
    size_t n = 0;
    uint8_t *png = img_unb64(json_string_value(json_array_get(json_object_get(j, "images"), 0)), &n);
    CHECK(png && kiln__image_detect(png, n) == KILN_IMAGE_FORMAT_PNG);
    json_t *info = json_loads(json_string_value(json_object_get(j, "info")), 0, NULL);
    CHECK_EQ_INT(json_integer_value(json_object_get(info, "seed")), 2);
    json_decref(info);
    json_decref(j);
    free(png);
    tc_resp_free(&r);
    kiln__buf_free(&raw);
}

int main(void) {
    if (!getenv("KILN_LOG_LEVEL")) kiln__log_set_level(KILN_LOG_ERROR);
    srv = img_server_start(4, &port);
    if (!srv) {
        fprintf(stderr, "cannot start the daemon on %s: %s\n", IMG_MODEL, kiln_last_error());
        return 1;
    }
    RUN(test_bad_requests);
    RUN(test_bad_edits);
    RUN(test_a1111_lists);
    RUN(test_multipart_parser);
    RUN(test_encoders);
    RUN(test_one_generation);
    kiln__worker_stop(srv);
    return TEST_REPORT();
}
