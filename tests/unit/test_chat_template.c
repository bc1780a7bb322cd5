/* tests/unit/test_chat_template.c - chat formats: detection of the real
 * templates, rendering byte-identical to transformers' apply_chat_template
 * (goldens in tests/data/chat/cases.json, made by tools/make_chat_goldens.py),
 * refusals where the reference raises, names, fallback, BOS, buffer sizes and
 * tokenizer_config.json lookup. */
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "formats/json_util.h"
#include "text/chat_template.h"
#include "test.h"

#define CHAT_DATA KILN_SOURCE_DIR "/tests/data/chat"

/* Read a whole file; *len gets its size. NULL when it cannot be read. */
static char *read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    char *buf = NULL;
    size_t n = 0, cap = 0;
    for (;;) {
        if (n + 4096 + 1 > cap) {
            cap = (n + 4096 + 1) * 2;
            char *nb = realloc(buf, cap);
            if (!nb) {
                free(buf);
                fclose(f);
                return NULL;
            }
            buf = nb;
        }
        size_t got = fread(buf + n, 1, 4096, f);
        n += got;
        if (got < 4096) break;
    }
    fclose(f);
    buf[n] = '\0';
    *len = n;
    return buf;
}

static json_t *load_cases(void) {
    json_t *doc = NULL;
    if (kiln__json_load_file(CHAT_DATA "/cases.json", 0, &doc) != KILN_OK) {
        fprintf(stderr, "  cannot load cases.json: %s\n", kiln_last_error());
        return NULL;
    }
    return doc;
}

static bool role_from_name(const char *s, enum kiln_chat_role *r) {
    for (int i = 0; i < KILN_CHAT_ROLE_COUNT; i++)
        if (strcmp(s, kiln__chat_role_name((enum kiln_chat_role)i)) == 0) {
            *r = (enum kiln_chat_role)i;
            return true;
        }
    return false;
}

/* Messages of conversation `conv` (borrowed strings); returns the count. */
static size_t conversation(const json_t *doc, size_t conv, struct kiln_chat_message *out,
                           size_t max) {
    const json_t *msgs = json_object_get(json_array_get(json_object_get(doc, "conversations"), conv),
                                         "messages");
    size_t n = json_array_size(msgs);
    if (n > max) return 0;
    for (size_t i = 0; i < n; i++) {
        const json_t *m = json_array_get(msgs, i);
        if (!role_from_name(json_string_value(json_object_get(m, "role")), &out[i].role)) return 0;
        out[i].content = json_string_value(json_object_get(m, "content"));
    }
    return n;
}

static void test_detects_every_real_template(void) {
    json_t *doc = load_cases();
    REQUIRE(doc != NULL);
    const json_t *tmpls = json_object_get(doc, "templates");
    REQUIRE(json_array_size(tmpls) >= 17);
    for (size_t t = 0; t < json_array_size(tmpls); t++) {
        const json_t *e = json_array_get(tmpls, t);
        char path[512];
        snprintf(path, sizeof path, CHAT_DATA "/templates/%s",
                 json_string_value(json_object_get(e, "file")));
        size_t len = 0;
        char *src = read_file(path, &len);
        CHECK(src != NULL);
        if (!src) continue;
        const char *want = json_string_value(json_object_get(e, "detect"));
        enum kiln_chat_format got = kiln__chat_detect(src, len);
        if (strcmp(kiln__chat_format_name(got), want) != 0)
            TEST_FAIL_AT_("%s: detected %s, expected %s", path, kiln__chat_format_name(got), want);
        free(src);
    }
    json_decref(doc);
}

static void test_renders_like_transformers(void) {
    json_t *doc = load_cases();
    REQUIRE(doc != NULL);
    const json_t *tmpls = json_object_get(doc, "templates");
    size_t n_ok = 0, n_err = 0;
    for (size_t t = 0; t < json_array_size(tmpls); t++) {
        const json_t *e = json_array_get(tmpls, t);
        const char *fname = json_string_value(json_object_get(e, "format"));
        const char *bos = json_string_value(json_object_get(e, "bos"));
        const char *eos = json_string_value(json_object_get(e, "eos"));
        enum kiln_chat_format fmt;
        CHECK_EQ_INT(kiln__chat_format_from_name(fname, &fmt), KILN_OK);
        const json_t *cases = json_object_get(e, "cases");
        for (size_t c = 0; c < json_array_size(cases); c++) {
            const json_t *cs = json_array_get(cases, c);
            size_t conv = (size_t)json_integer_value(json_object_get(cs, "conv"));
            bool gen = json_is_true(json_object_get(cs, "gen"));
            struct kiln_chat_message msgs[16];
            size_t n = conversation(doc, conv, msgs, 16);
            CHECK(n > 0);
            char *out = NULL;
            size_t len = 0;
            kiln_status st = kiln__chat_render_alloc(fmt, msgs, n, gen, bos, eos, &out, &len);
            const json_t *expect = json_object_get(cs, "expect");
            if (expect) {
                const char *want = json_string_value(expect);
                if (st != KILN_OK) {
                    TEST_FAIL_AT_("%s conv %zu gen %d: failed (%s), expected \"%s\"", fname, conv,
                                  gen, kiln_last_error(), want);
                } else if (len != strlen(want) || memcmp(out, want, len) != 0) {
                    TEST_FAIL_AT_("%s conv %zu gen %d:\n    got  \"%s\"\n    want \"%s\"", fname,
                                  conv, gen, out, want);
                } else {
                    n_ok++;
                }
            } else {
                if (st != KILN_ERR_INVALID_ARG)
                    TEST_FAIL_AT_("%s conv %zu gen %d: status %d, the reference raised \"%s\"", fname,
                                  conv, gen, (int)st,
                                  json_string_value(json_object_get(cs, "error")));
                else
                    n_err++;
                CHECK(out == NULL);
            }
            free(out);
        }
    }
    CHECK(n_ok > 400);
    CHECK(n_err > 50);
    json_decref(doc);
}

/* kiln__chat_emits_bos agrees with the goldens: the rendered single user
 * message starts with the BOS text exactly when the format says so. */
static void test_bos_flag_matches_goldens(void) {
    json_t *doc = load_cases();
    REQUIRE(doc != NULL);
    const json_t *tmpls = json_object_get(doc, "templates");
    for (size_t t = 0; t < json_array_size(tmpls); t++) {
        const json_t *e = json_array_get(tmpls, t);
        enum kiln_chat_format fmt;
        REQUIRE(kiln__chat_format_from_name(json_string_value(json_object_get(e, "format")), &fmt) ==
                KILN_OK);
        const char *bos = json_string_value(json_object_get(e, "bos"));
        /* Case 0: conversation 0 ("user": one user message), no generation prompt. */
        const json_t *c0 = json_array_get(json_object_get(e, "cases"), 0);
        CHECK_EQ_INT(json_integer_value(json_object_get(c0, "conv")), 0);
        const char *want = json_string_value(json_object_get(c0, "expect"));
        REQUIRE(want != NULL);
        bool starts = strncmp(want, bos, strlen(bos)) == 0;
        if (starts != kiln__chat_emits_bos(fmt))
            TEST_FAIL_AT_("%s: emits_bos %d but the reference output starts with BOS: %d",
                          kiln__chat_format_name(fmt), kiln__chat_emits_bos(fmt), starts);
    }
    json_decref(doc);
}

static void test_names_round_trip(void) {
    for (int i = 0; i < KILN_CHAT_FORMAT_COUNT; i++) {
        enum kiln_chat_format f = (enum kiln_chat_format)i, back;
        const char *name = kiln__chat_format_name(f);
        if (f == KILN_CHAT_UNKNOWN) {
            CHECK_EQ_INT(kiln__chat_format_from_name(name, &back), KILN_ERR_INVALID_ARG);
            continue;
        }
        CHECK_EQ_INT(kiln__chat_format_from_name(name, &back), KILN_OK);
        CHECK_EQ_INT(back, f);
        /* The error message lists every accepted name. */
        kiln__chat_format_from_name("nope", &back);
        CHECK_CONTAINS(kiln_last_error(), name);
    }
    enum kiln_chat_format f;
    CHECK_EQ_INT(kiln__chat_format_from_name("ChatML", &f), KILN_ERR_INVALID_ARG);
    CHECK_EQ_INT(kiln__chat_format_from_name(NULL, &f), KILN_ERR_INVALID_ARG);
    CHECK_EQ_STR(kiln__chat_format_name((enum kiln_chat_format)999), "unknown");
}

static void test_fallback(void) {
    CHECK_EQ_INT(kiln__chat_detect(NULL, 0), KILN_CHAT_UNKNOWN);
    CHECK_EQ_INT(kiln__chat_detect("", 0), KILN_CHAT_UNKNOWN);
    const char *other = "{% for m in messages %}<start_of_turn>{{ m.content }}{% endfor %}";
    CHECK_EQ_INT(kiln__chat_detect(other, strlen(other)), KILN_CHAT_UNKNOWN);
    CHECK_EQ_INT(kiln__chat_choose(other, strlen(other)), KILN_CHAT_CHATML);
    CHECK_EQ_INT(kiln__chat_choose(NULL, 0), KILN_CHAT_PLAIN);
    CHECK_EQ_INT(kiln__chat_choose("", 0), KILN_CHAT_PLAIN);
    CHECK_EQ_INT(kiln__chat_fallback(true), KILN_CHAT_CHATML);
    CHECK_EQ_INT(kiln__chat_fallback(false), KILN_CHAT_PLAIN);
    /* Phi-4 uses <|im_start|> with another layout: not ChatML. */
    const char *phi4 = "{{'<|im_start|>system<|im_sep|>' + message['content'] + '<|im_end|>'}}";
    CHECK_EQ_INT(kiln__chat_detect(phi4, strlen(phi4)), KILN_CHAT_UNKNOWN);
    /* A marker cut short by the length is not seen. */
    const char *cm = "<|im_start|>";
    CHECK_EQ_INT(kiln__chat_detect(cm, strlen(cm)), KILN_CHAT_CHATML);
    CHECK_EQ_INT(kiln__chat_detect(cm, strlen(cm) - 1), KILN_CHAT_UNKNOWN);
    /* The unknown format renders nothing. */
    struct kiln_chat_message m = {KILN_CHAT_USER, "hi"};
    char buf[64];
    CHECK_EQ_INT(kiln__chat_render(KILN_CHAT_UNKNOWN, &m, 1, true, NULL, NULL, buf, sizeof buf, NULL),
                 KILN_ERR_INVALID_ARG);
    CHECK_EQ_STR(buf, "");
}

/* Markers read the same whether a newline in a Jinja string is an escape or a
 * line break; near relatives of a family are not taken for it. */
static void test_detect_variants(void) {
    const char *small_escaped = "{{ bos_token }}{% for message in messages %}{{'<|' + "
                                "message['role'] + '|>' + '\\n' + message['content'] + "
                                "'<|end|>\\n' }}{% endfor %}";
    CHECK_EQ_INT(kiln__chat_detect(small_escaped, strlen(small_escaped)), KILN_CHAT_PHI3_SMALL);
    const char *phi4 = "{% for message in messages %}{{ '<|' + message['role'] + '|>' + "
                       "message['content'] + '<|end|>' }}{% endfor %}";
    CHECK_EQ_INT(kiln__chat_detect(phi4, strlen(phi4)), KILN_CHAT_UNKNOWN);
    const char *qwen_escaped = "{% if loop.first and messages[0]['role'] != 'system' %}{{ "
                               "'<|im_start|>system\\nYou are a helpful assistant<|im_end|>\\n' }}";
    CHECK_EQ_INT(kiln__chat_detect(qwen_escaped, strlen(qwen_escaped)), KILN_CHAT_QWEN2);
    const char *zephyr = "{{ '<|user|>\\n' + message['content'] + eos_token }}<|assistant|>";
    CHECK_EQ_INT(kiln__chat_detect(zephyr, strlen(zephyr)), KILN_CHAT_UNKNOWN);
    /* NUL bytes inside the source do not end the search. */
    const char with_nul[] = "xx\0<|start_header_id|>a<|end_header_id|>";
    CHECK_EQ_INT(kiln__chat_detect(with_nul, sizeof with_nul - 1), KILN_CHAT_LLAMA3);
}

static void test_buffer_sizes(void) {
    struct kiln_chat_message msgs[] = {{KILN_CHAT_USER, "Hello"}};
    size_t need = 0;
    char *full = NULL;
    size_t full_len = 0;
    REQUIRE(kiln__chat_render_alloc(KILN_CHAT_LLAMA2, msgs, 1, true, "<s>", "</s>", &full,
                                    &full_len) == KILN_OK);
    /* Too small by one (no room for the NUL), and zero. */
    char buf[256];
    CHECK_EQ_INT(kiln__chat_render(KILN_CHAT_LLAMA2, msgs, 1, true, "<s>", "</s>", buf, full_len,
                                   &need),
                 KILN_ERR_TOO_LARGE);
    CHECK_EQ_INT(need, full_len);
    CHECK_EQ_STR(buf, "");
    CHECK_CONTAINS(kiln_last_error(), "buffer");
    need = 0;
    CHECK_EQ_INT(kiln__chat_render(KILN_CHAT_LLAMA2, msgs, 1, true, "<s>", "</s>", NULL, 0, &need),
                 KILN_ERR_TOO_LARGE);
    CHECK_EQ_INT(need, full_len);
    /* Exactly enough. */
    memset(buf, 'x', sizeof buf);
    CHECK_EQ_INT(kiln__chat_render(KILN_CHAT_LLAMA2, msgs, 1, true, "<s>", "</s>", buf,
                                   full_len + 1, &need),
                 KILN_OK);
    CHECK_EQ_STR(buf, full);
    free(full);
    /* A buffer pointer is required when cap > 0. */
    CHECK_EQ_INT(kiln__chat_render(KILN_CHAT_CHATML, msgs, 1, true, NULL, NULL, NULL, 8, NULL),
                 KILN_ERR_INVALID_ARG);
}

static void test_bad_messages(void) {
    char buf[64];
    size_t need = 7;
    CHECK_EQ_INT(kiln__chat_render(KILN_CHAT_CHATML, NULL, 0, true, NULL, NULL, buf, sizeof buf,
                                   &need),
                 KILN_ERR_INVALID_ARG);
    CHECK_EQ_INT(need, 0);
    CHECK_CONTAINS(kiln_last_error(), "empty conversation");
    struct kiln_chat_message nul = {KILN_CHAT_USER, NULL};
    CHECK_EQ_INT(kiln__chat_render(KILN_CHAT_CHATML, &nul, 1, true, NULL, NULL, buf, sizeof buf,
                                   NULL),
                 KILN_ERR_INVALID_ARG);
    struct kiln_chat_message bad = {(enum kiln_chat_role)7, "x"};
    CHECK_EQ_INT(kiln__chat_render(KILN_CHAT_CHATML, &bad, 1, true, NULL, NULL, buf, sizeof buf,
                                   NULL),
                 KILN_ERR_INVALID_ARG);
    char *out = (char *)1;
    CHECK_EQ_INT(kiln__chat_render_alloc(KILN_CHAT_CHATML, &bad, 1, true, NULL, NULL, &out, NULL),
                 KILN_ERR_INVALID_ARG);
    CHECK(out == NULL);
    /* The refusal names the offending message. */
    struct kiln_chat_message sys_mid[] = {
        {KILN_CHAT_USER, "a"}, {KILN_CHAT_ASSISTANT, "b"}, {KILN_CHAT_SYSTEM, "c"}};
    CHECK_EQ_INT(kiln__chat_render(KILN_CHAT_MISTRAL_V3, sys_mid, 3, true, "<s>", "</s>", buf,
                                   sizeof buf, NULL),
                 KILN_ERR_INVALID_ARG);
    CHECK_CONTAINS(kiln_last_error(), "message 2 is from the system");
}

static void test_template_from_config(void) {
    json_error_t jerr;
    const char *tmpl = NULL;
    json_t *c1 = json_loads("{\"chat_template\": \"{{ '<|im_start|>' }}\"}", 0, &jerr);
    REQUIRE(c1 != NULL);
    CHECK_EQ_INT(kiln__chat_template_from_config(c1, &tmpl), KILN_OK);
    CHECK_EQ_STR(tmpl, "{{ '<|im_start|>' }}");
    json_decref(c1);

    json_t *c2 = json_loads("{\"chat_template\": [{\"name\": \"tool_use\", \"template\": \"T\"},"
                            " {\"name\": \"default\", \"template\": \"D\"}]}",
                            0, &jerr);
    REQUIRE(c2 != NULL);
    CHECK_EQ_INT(kiln__chat_template_from_config(c2, &tmpl), KILN_OK);
    CHECK_EQ_STR(tmpl, "D");
    json_decref(c2);

    const char *not_found[] = {"{}", "{\"chat_template\": null}",
                               "{\"chat_template\": [{\"name\": \"rag\", \"template\": \"R\"}]}"};
    for (size_t i = 0; i < 3; i++) {
        json_t *c = json_loads(not_found[i], 0, &jerr);
        REQUIRE(c != NULL);
        CHECK_EQ_INT(kiln__chat_template_from_config(c, &tmpl), KILN_ERR_NOT_FOUND);
        CHECK(tmpl == NULL);
        json_decref(c);
    }
    const char *malformed[] = {"{\"chat_template\": 3}", "{\"chat_template\": [\"x\"]}",
                               "{\"chat_template\": [{\"name\": \"default\"}]}", "[1]"};
    for (size_t i = 0; i < 4; i++) {
        json_t *c = json_loads(malformed[i], 0, &jerr);
        REQUIRE(c != NULL);
        CHECK_EQ_INT(kiln__chat_template_from_config(c, &tmpl), KILN_ERR_FORMAT);
        json_decref(c);
    }
}

int main(void) {
    RUN(test_detects_every_real_template);
    RUN(test_renders_like_transformers);
    RUN(test_bos_flag_matches_goldens);
    RUN(test_names_round_trip);
    RUN(test_fallback);
    RUN(test_detect_variants);
    RUN(test_buffer_sizes);
    RUN(test_bad_messages);
    RUN(test_template_from_config);
    return TEST_REPORT();
}
