/* tests/unit/test_tokenizer_vocab.c - the tokenizers on real vocabularies:
 * every case of ../shared/data/vocab (test strings with the token ids that
 * each model's Hugging Face tokenizer gives), exact ids required; then
 * detokenize(tokenize(x)) == x, and the streaming detokenizer's output,
 * which must be valid UTF-8 after every token and give x back in the end.
 * Skips when the shared data is absent. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kiln/status.h"
#include "test.h"
#include "text/tokenizer.h"
#include "text/utf8.h"
#include "text/vocab_gguf.h"

/* The separator of test strings in NAME.gguf.inp (see shared/data/README.md). */
#define SEP "\n__ggml_vocab_test__\n"

/* A whole file into memory (NUL-terminated); NULL if it cannot be read. */
static char *read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    char *buf = NULL;
    size_t n = 0, cap = 0, got;
    do {
        if (cap - n < 4096) {
            cap = cap ? 2 * cap : 65536;
            char *b = realloc(buf, cap + 1);
            if (!b) {
                free(buf);
                fclose(f);
                return NULL;
            }
            buf = b;
        }
        got = fread(buf + n, 1, cap - n, f);
        n += got;
    } while (got > 0);
    fclose(f);
    buf[n] = '\0';
    *len = n;
    return buf;
}

/* One test case. */
struct vcase {
    const char *text; /* the string (inside the .inp buffer) */
    size_t len;       /* its length */
    int32_t ids[512]; /* expected ids */
    size_t n_ids;     /* how many */
};

/* Split the .inp and .out files into cases; returns how many (0 on a
 * malformed file). */
static size_t load_cases(const char *inp, size_t inp_len, char *out, struct vcase *cases, size_t max) {
    size_t n = 0;
    const char *p = inp, *end = inp + inp_len;
    while (p < end && n < max) {
        const char *sep = strstr(p, SEP);
        if (!sep) break;
        cases[n].text = p;
        cases[n].len = (size_t)(sep - p);
        n++;
        p = sep + strlen(SEP);
    }
    size_t line = 0;
    for (char *s = out; line < n && *s;) {
        char *nl = strchr(s, '\n');
        if (nl) *nl = '\0';
        struct vcase *c = &cases[line++];
        c->n_ids = 0;
        for (char *q = s, *e; *q;) {
            long id = strtol(q, &e, 10);
            if (e == q) break;
            if (c->n_ids < sizeof c->ids / sizeof c->ids[0]) c->ids[c->n_ids++] = (int32_t)id;
            q = e;
        }
        if (!nl) break;
        s = nl + 1;
    }
    return line == n ? n : 0;
}

/* Print a case's input and the two id lists. */
static void show_mismatch(const char *name, size_t i, const struct vcase *c, const int32_t *got, size_t n) {
    fprintf(stderr, "  %s case %zu \"%.*s\"\n    want:", name, i, (int)c->len, c->text);
    for (size_t k = 0; k < c->n_ids; k++) fprintf(stderr, " %d", c->ids[k]);
    fprintf(stderr, "\n    got: ");
    for (size_t k = 0; k < n; k++) fprintf(stderr, " %d", got[k]);
    fputc('\n', stderr);
}

/* All checks on one shared vocabulary; `first_bos` is the id that
 * add_special must put first (-1: none). */
static void run_vocab(const char *name, int32_t first_bos) {
    char path[1024];
    snprintf(path, sizeof path, "%s/vocab/ggml-vocab-%s.gguf", KILN_SHARED_DATA_DIR, name);
    FILE *probe = fopen(path, "rb");
    if (!probe) SKIP_TEST("%s not found (no shared data)", path);
    fclose(probe);

    kiln_vocab *v = NULL;
    kiln_status st = kiln__vocab_load_gguf(path, &v);
    if (st != KILN_OK) fprintf(stderr, "  load: %s\n", kiln_last_error());
    REQUIRE(st == KILN_OK);

    size_t inp_len, out_len;
    char p2[1100];
    snprintf(p2, sizeof p2, "%s.inp", path);
    char *inp = read_file(p2, &inp_len);
    snprintf(p2, sizeof p2, "%s.out", path);
    char *outf = read_file(p2, &out_len);
    static struct vcase cases[128];
    size_t n_cases = inp && outf ? load_cases(inp, inp_len, outf, cases, 128) : 0;
    CHECK(n_cases > 0);

    unsigned flags = v->model == KILN_VOCAB_SPM && v->add_space_prefix ? KILN_DETOK_STRIP_SPACE : 0;
    size_t exact = 0, round_trip = 0, streamed = 0;
    int32_t ids[1024];
    char text[8192];
    for (size_t i = 0; i < n_cases; i++) {
        const struct vcase *c = &cases[i];
        size_t n;
        st = kiln__tokenize(v, c->text, c->len, false, false, ids, 1024, &n);
        CHECK_EQ_INT(st, KILN_OK);
        if (st != KILN_OK) continue;
        if (n == c->n_ids && memcmp(ids, c->ids, n * sizeof ids[0]) == 0)
            exact++;
        else
            show_mismatch(name, i, c, ids, n);

        /* Back to text, all at once. */
        size_t tlen;
        st = kiln__detokenize(v, ids, n, flags, text, sizeof text, &tlen);
        if (st == KILN_OK && tlen == c->len && memcmp(text, c->text, tlen) == 0)
            round_trip++;
        else
            fprintf(stderr, "  %s case %zu: detokenize gives \"%.*s\"\n", name, i, (int)tlen, text);

        /* And token by token. */
        kiln_detok d;
        kiln__detok_init(&d, v, flags);
        size_t slen = 0;
        bool valid = true;
        for (size_t k = 0; k <= n; k++) {
            const char *t;
            size_t l;
            st = k < n ? kiln__detok_push(&d, ids[k], &t, &l) : kiln__detok_flush(&d, &t, &l);
            if (st != KILN_OK || slen + l > sizeof text) {
                valid = false;
                break;
            }
            valid = valid && kiln__utf8_valid(t, l);
            memcpy(text + slen, t, l);
            slen += l;
        }
        kiln__detok_free(&d);
        if (valid && slen == c->len && memcmp(text, c->text, slen) == 0)
            streamed++;
        else
            fprintf(stderr, "  %s case %zu: streaming gives \"%.*s\"\n", name, i, (int)slen, text);
    }
    fprintf(stderr, "  %s: %zu/%zu cases exact, %zu round trips, %zu streamed\n", name, exact, n_cases,
            round_trip, streamed);
    CHECK_EQ_INT(exact, n_cases);
    CHECK_EQ_INT(round_trip, n_cases);
    CHECK_EQ_INT(streamed, n_cases);

    /* add_special follows the file's flags: a BOS first, no EOS. */
    size_t n;
    st = kiln__tokenize(v, "Hello", 5, true, false, ids, 1024, &n);
    CHECK_EQ_INT(st, KILN_OK);
    if (first_bos >= 0) {
        CHECK(n >= 1 && ids[0] == first_bos);
        CHECK(ids[n - 1] != v->eos_id);
    } else {
        CHECK(n >= 1 && ids[0] != v->bos_id);
    }
    free(inp);
    free(outf);
    kiln__vocab_free(v);
}

static void test_llama_spm(void) { run_vocab("llama-spm", 1); }
static void test_gpt2(void) { run_vocab("gpt-2", -1); }
static void test_deepseek_llm(void) { run_vocab("deepseek-llm", 100000); }

int main(void) {
    RUN(test_llama_spm);
    RUN(test_gpt2);
    RUN(test_deepseek_llm);
    return TEST_REPORT();
}
