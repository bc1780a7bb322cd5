/* fuzz/fuzz_tokenizer_json.c - libFuzzer target for the tokenizer.json
 * loader (src/text/vocab_hf.c).
 *
 * The input is a tokenizer.json (jansson parses it; the mapping onto kiln's
 * vocabulary is what is under test). When it loads, a few fixed texts and the
 * input itself are tokenized: the size query and the real call must agree,
 * every id must be in range, and detokenizing must succeed. A refusal must
 * leave no vocabulary behind and carry a message.
 */
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kiln/kiln.h"
#include "text/tokenizer.h"
#include "text/vocab.h"
#include "text/vocab_hf.h"

static void fail(const char *what) {
    fprintf(stderr, "fuzz_tokenizer_json: %s: %s\n", what, kiln_last_error());
    abort();
}

/* Tokenize and detokenize one text with every flag combination. */
static void exercise(const kiln_vocab *v, const char *text, size_t len) {
    for (int f = 0; f < 4; f++) {
        bool add_special = f & 1, parse_special = f & 2;
        size_t need, n;
        kiln_status st = kiln__tokenize(v, text, len, add_special, parse_special, NULL, 0, &need);
        if (st != KILN_OK && !(st == KILN_ERR_TOO_LARGE && need > 0)) fail("size query");
        int32_t *ids = malloc((need ? need : 1) * sizeof *ids);
        if (!ids) return;
        if (kiln__tokenize(v, text, len, add_special, parse_special, ids, need, &n) != KILN_OK || n != need)
            fail("tokenize");
        for (size_t i = 0; i < n; i++)
            if (ids[i] < 0 || ids[i] >= v->n_tokens) fail("id out of range");
        size_t out_len;
        st = kiln__detokenize(v, ids, n, KILN_DETOK_SPECIAL, NULL, 0, &out_len);
        if (st != KILN_OK && st != KILN_ERR_TOO_LARGE) fail("detokenize");
        free(ids);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    json_t *doc = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, NULL);
    if (!doc) return 0;
    kiln_vocab *v = (kiln_vocab *)1; /* must be reset on every path */
    kiln_status st = kiln__vocab_from_hf_json(doc, NULL, &v);
    json_decref(doc);
    if (st != KILN_OK) {
        if (v != NULL) fail("a refusal left a vocabulary");
        if (!kiln_last_error()[0]) fail("a refusal without a message");
        return 0;
    }
    static const char *const texts[] = {"", " ", "Hello world", "  a  b\n\n\tc ", "\xE2\x96\x81x <s></s>",
                                        "caf\xC3\xA9 \xE6\x97\xA5\xE6\x9C\xAC \xF0\x9F\x9A\x80", "\xFF\xC3"};
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) exercise(v, texts[i], strlen(texts[i]));
    exercise(v, (const char *)data, size < 512 ? size : 512);
    kiln__vocab_free(v);
    return 0;
}
