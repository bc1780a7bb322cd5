/* src/text/vocab_hf.c - a tokenizer vocabulary from a Hugging Face
 * tokenizer.json and tokenizer_config.json (see vocab_hf.h).
 *
 * The loader reads the file's components into `struct hf` (what each one
 * asks for), decides which of kiln's tokenizers reproduces them exactly,
 * refuses anything else, and then fills a kiln_vocab. Field names and
 * defaults are those of Hugging Face tokenizers' serialization.
 */
#include "text/vocab_hf.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/log.h"
#include "formats/json_util.h"
#include "text/bytelevel.h"
#include "text/pretok.h"
#include "text/utf8.h"
#include "text/vocab_impl.h"

/* Most tokens (highest id + 1) accepted. */
#define MAX_TOKENS (1 << 22)
/* Most Split regexes in a pre-tokenizer, and deepest nesting of Sequences. */
#define MAX_SPLITS 8
#define MAX_DEPTH 4
/* "▁" (U+2581), SentencePiece's spelling of a space. */
#define SPM_SPACE "\xE2\x96\x81"

/* A token of the file: from the model's vocab and/or added_tokens. */
struct hf_tok {
    const char *text; /* its text, borrowed from the JSON (NULL: no token has this id) */
    size_t len;       /* its length in bytes */
    bool added;       /* listed in added_tokens */
    bool special;     /* ... as special */
    bool normalized;  /* ... and matched in normalized text */
    bool in_model;    /* in the model's vocab */
};

/* What the file asks for. */
struct hf {
    const json_t *model;       /* "model" */
    const json_t *vocab;       /* model.vocab: text -> id */
    const json_t *merges;      /* model.merges */
    bool byte_fallback;        /* model.byte_fallback */
    bool fuse_unk;             /* model.fuse_unk */
    bool ignore_merges;        /* model.ignore_merges */
    int32_t unk_id;            /* model.unk_token's id, or -1 */

    bool norm_prepend;         /* normalizer Prepend("▁") */
    bool norm_replace;         /* normalizer Replace(" ", "▁") */
    bool norm_nfc;             /* normalizer NFC */

    bool bytelevel;            /* pre-tokenizer ByteLevel (last) */
    bool bytelevel_regex;      /* ... with use_regex (GPT-2's regex) */
    int n_splits;              /* Split regexes before it */
    const json_t *split[MAX_SPLITS]; /* their patterns (JSON strings) */
    bool metaspace;            /* pre-tokenizer Metaspace */
    bool meta_prepend;         /* ... prepend_scheme other than "never" */
    bool meta_first;           /* ... prepend_scheme "first" */
    bool meta_split;           /* ... split */

    bool dec_bytelevel;        /* decoder ByteLevel */
    bool dec_spm;              /* decoder Replace("▁", " ") [+ ByteFallback] + Fuse [+ Strip] */
    bool dec_byte_fallback;    /* ... with ByteFallback */
    bool dec_strip;            /* ... and a Strip of one leading space (or Metaspace's) */

    int32_t tpl_bos;           /* id the post-processor puts first, or -1 */
    int32_t tpl_eos;           /* id it puts last, or -1 */

    int32_t n_tokens;          /* highest id + 1 */
    struct hf_tok *tok;        /* [n_tokens] */
    int32_t *added;            /* ids of the added tokens, in file order */
    size_t n_added;            /* entries in added */
};

static kiln_status oom(void) { return kiln__fail(KILN_ERR_OUT_OF_MEMORY, "tokenizer.json: out of memory"); }

/* At most 60 bytes of a JSON-borrowed text, for messages. */
#define SHOWN(len) ((int)((len) > 60 ? 60 : (len)))

/* obj[key] unless absent or null. */
static const json_t *get(const json_t *obj, const char *key) {
    const json_t *v = json_is_object(obj) ? json_object_get(obj, key) : NULL;
    return json_is_null(v) ? NULL : v;
}

/* Whether JSON value j is the string s. */
static bool str_is(const json_t *j, const char *s) {
    return json_is_string(j) && json_string_length(j) == strlen(s) && memcmp(json_string_value(j), s, strlen(s)) == 0;
}

/* A component's "type" (a static "?" when it has none). */
static const char *type_of(const json_t *c) {
    const json_t *t = get(c, "type");
    return json_is_string(t) ? json_string_value(t) : "?";
}

/* A boolean option of component `what`. */
static kiln_status opt_bool(const json_t *c, const char *key, bool def, const char *what, bool *out) {
    kiln_status st = kiln__json_get_bool(c, key, def, out);
    if (st != KILN_OK) return kiln__fail(st, "tokenizer.json: %s: '%s' is not a boolean", what, key);
    return KILN_OK;
}

/* A Replace component's pattern, which must be {"String": s}. */
static bool replace_is(const json_t *c, const char *from, const char *to) {
    return str_is(get(get(c, "pattern"), "String"), from) && str_is(get(c, "content"), to);
}

/* ---- normalizer ---- */

static kiln_status parse_normalizer(struct hf *h, const json_t *n, int depth) {
    if (!n) return KILN_OK;
    const char *t = type_of(n);
    if (strcmp(t, "Sequence") == 0 && depth < MAX_DEPTH) {
        const json_t *list = get(n, "normalizers");
        if (!json_is_array(list)) return kiln__fail(KILN_ERR_FORMAT, "tokenizer.json: normalizer Sequence without a list");
        kiln_status st = KILN_OK;
        for (size_t i = 0; i < json_array_size(list) && st == KILN_OK; i++)
            st = parse_normalizer(h, json_array_get(list, i), depth + 1);
        return st;
    }
    bool *flag = NULL;
    if (strcmp(t, "Prepend") == 0 && str_is(get(n, "prepend"), SPM_SPACE)) flag = &h->norm_prepend;
    else if (strcmp(t, "Replace") == 0 && replace_is(n, " ", SPM_SPACE)) flag = &h->norm_replace;
    else if (strcmp(t, "NFC") == 0) flag = &h->norm_nfc;
    if (!flag)
        return kiln__fail(KILN_ERR_UNSUPPORTED,
                          "tokenizer.json: normalizer '%s' is not supported (Prepend(\"▁\"), "
                          "Replace(\" \", \"▁\"), NFC and Sequences of them are)", t);
    if (*flag) return kiln__fail(KILN_ERR_UNSUPPORTED, "tokenizer.json: normalizer '%s' twice", t);
    *flag = true;
    return KILN_OK;
}

/* ---- pre-tokenizer ---- */

/* Metaspace (pre-tokenizer and decoder): replacement '▁' and the prepend
 * scheme; *prepend / *first receive what it says. */
static kiln_status metaspace_scheme(const json_t *c, const char *what, bool *prepend, bool *first) {
    if (!str_is(get(c, "replacement"), SPM_SPACE))
        return kiln__fail(KILN_ERR_UNSUPPORTED, "tokenizer.json: %s Metaspace with a replacement other than '▁'", what);
    /* prepend_scheme, "always" when absent; older files' add_prefix_space
     * must agree with it, as Hugging Face requires. */
    const json_t *scheme = get(c, "prepend_scheme");
    *first = false;
    if (!scheme || str_is(scheme, "always")) *prepend = true;
    else if (str_is(scheme, "never")) *prepend = false;
    else if (str_is(scheme, "first")) *prepend = *first = true;
    else return kiln__fail(KILN_ERR_UNSUPPORTED, "tokenizer.json: %s Metaspace prepend_scheme is not always, first or never", what);
    bool add;
    kiln_status st = opt_bool(c, "add_prefix_space", *prepend, what, &add);
    if (st != KILN_OK) return st;
    if (add != *prepend)
        return kiln__fail(KILN_ERR_FORMAT, "tokenizer.json: %s Metaspace add_prefix_space does not match its prepend_scheme",
                          what);
    return KILN_OK;
}

static kiln_status parse_pre(struct hf *h, const json_t *p, int depth) {
    if (!p) return KILN_OK;
    const char *t = type_of(p);
    if (h->bytelevel || h->metaspace)
        return kiln__fail(KILN_ERR_UNSUPPORTED, "tokenizer.json: pre-tokenizer '%s' after %s", t,
                          h->bytelevel ? "ByteLevel" : "Metaspace");
    kiln_status st = KILN_OK;
    if (strcmp(t, "Sequence") == 0 && depth < MAX_DEPTH) {
        const json_t *list = get(p, "pretokenizers");
        if (!json_is_array(list)) return kiln__fail(KILN_ERR_FORMAT, "tokenizer.json: pre-tokenizer Sequence without a list");
        for (size_t i = 0; i < json_array_size(list) && st == KILN_OK; i++)
            st = parse_pre(h, json_array_get(list, i), depth + 1);
        return st;
    }
    if (strcmp(t, "ByteLevel") == 0) {
        bool prefix;
        if ((st = opt_bool(p, "add_prefix_space", true, "ByteLevel", &prefix)) != KILN_OK) return st;
        if ((st = opt_bool(p, "use_regex", true, "ByteLevel", &h->bytelevel_regex)) != KILN_OK) return st;
        if (prefix)
            return kiln__fail(KILN_ERR_UNSUPPORTED, "tokenizer.json: pre-tokenizer ByteLevel with add_prefix_space");
        h->bytelevel = true;
        return KILN_OK;
    }
    if (strcmp(t, "Split") == 0) {
        const json_t *re = get(get(p, "pattern"), "Regex");
        bool invert;
        if ((st = opt_bool(p, "invert", false, "Split", &invert)) != KILN_OK) return st;
        if (!json_is_string(re) || !str_is(get(p, "behavior"), "Isolated") || invert)
            return kiln__fail(KILN_ERR_UNSUPPORTED,
                              "tokenizer.json: pre-tokenizer Split is supported only with a Regex pattern, "
                              "behavior Isolated and no invert");
        if (h->n_splits == MAX_SPLITS)
            return kiln__fail(KILN_ERR_UNSUPPORTED, "tokenizer.json: more than %d Split pre-tokenizers", MAX_SPLITS);
        h->split[h->n_splits++] = re;
        return KILN_OK;
    }
    if (strcmp(t, "Metaspace") == 0) {
        if (h->n_splits) return kiln__fail(KILN_ERR_UNSUPPORTED, "tokenizer.json: pre-tokenizer Metaspace after Split");
        if ((st = metaspace_scheme(p, "pre-tokenizer", &h->meta_prepend, &h->meta_first)) != KILN_OK) return st;
        if ((st = opt_bool(p, "split", true, "Metaspace", &h->meta_split)) != KILN_OK) return st;
        h->metaspace = true;
        return KILN_OK;
    }
    return kiln__fail(KILN_ERR_UNSUPPORTED,
                      "tokenizer.json: pre-tokenizer '%s' is not supported (ByteLevel, Split + ByteLevel, "
                      "Metaspace are)", t);
}

/* A regex in a canonical form for comparison: \r \n \t and \x{H} escapes of
 * non-ASCII code points become the characters themselves (tokenizer.json
 * files write them either way); everything else stays as written. Returns a
 * malloc'ed string (length in *n), or NULL when out of memory. */
static char *canonical_regex(const char *re, size_t len, size_t *n) {
    char *out = malloc(len + 1); /* an escape is never shorter than its character */
    if (!out) return NULL;
    size_t k = 0;
    for (size_t i = 0; i < len;) {
        if (re[i] == '\\' && i + 1 < len) {
            char c = re[i + 1];
            if (c == 'r' || c == 'n' || c == 't') {
                out[k++] = c == 'r' ? '\r' : c == 'n' ? '\n' : '\t';
                i += 2;
                continue;
            }
            if (c == 'x' && i + 2 < len && re[i + 2] == '{') {
                uint32_t cp = 0;
                size_t j = i + 3;
                while (j < len && j < i + 10 && re[j] != '}') {
                    char d = re[j++];
                    int v = d >= '0' && d <= '9' ? d - '0' : d >= 'a' && d <= 'f' ? d - 'a' + 10
                            : d >= 'A' && d <= 'F' ? d - 'A' + 10 : -1;
                    if (v < 0) break;
                    cp = cp * 16 + (uint32_t)v;
                }
                if (j < len && re[j] == '}' && j > i + 3 && cp >= 0x80 && cp <= 0x10FFFF &&
                    !(cp >= 0xD800 && cp <= 0xDFFF)) {
                    k += kiln__utf8_encode(cp, out + k);
                    i = j + 1;
                    continue;
                }
            }
            out[k++] = re[i++]; /* any other escape: both characters as written */
        }
        out[k++] = re[i++];
    }
    *n = k;
    return out;
}

/* Whether the file's Split regexes are those of kiln's pre-tokenizer `pre`. */
static kiln_status splits_are(const struct hf *h, kiln_vocab_pre pre, bool *yes) {
    int n;
    const char *const *re = kiln__pretok_regexes(pre, &n);
    *yes = n == h->n_splits;
    for (int i = 0; i < n && *yes; i++) {
        size_t la, lb;
        char *a = canonical_regex(re[i], strlen(re[i]), &la);
        char *b = canonical_regex(json_string_value(h->split[i]), json_string_length(h->split[i]), &lb);
        *yes = a && b && la == lb && memcmp(a, b, la) == 0;
        free(a);
        free(b);
        if (!a || !b) return oom();
    }
    return KILN_OK;
}

/* kiln's pre-tokenizer for a ByteLevel file. */
static kiln_status bytelevel_pre(const struct hf *h, kiln_vocab_pre *pre) {
    if (h->bytelevel_regex) {
        if (h->n_splits)
            return kiln__fail(KILN_ERR_UNSUPPORTED, "tokenizer.json: Split before a ByteLevel that has its own regex");
        *pre = KILN_PRE_GPT2;
        return KILN_OK;
    }
    static const kiln_vocab_pre known[] = {KILN_PRE_LLAMA3, KILN_PRE_QWEN2, KILN_PRE_DEEPSEEK_LLM};
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++) {
        bool yes;
        kiln_status st = splits_are(h, known[i], &yes);
        if (st != KILN_OK) return st;
        if (yes) {
            *pre = known[i];
            return KILN_OK;
        }
    }
    if (h->n_splits == 0)
        return kiln__fail(KILN_ERR_UNSUPPORTED, "tokenizer.json: pre-tokenizer ByteLevel without a regex");
    return kiln__fail(KILN_ERR_UNSUPPORTED,
                      "tokenizer.json: pre-tokenizer Split regexes are not those of Llama 3, Qwen2 or DeepSeek LLM "
                      "(the first: '%.*s')",
                      SHOWN(json_string_length(h->split[0])), json_string_value(h->split[0]));
}

/* ---- decoder ---- */

static kiln_status parse_decoder(struct hf *h, const json_t *d) {
    if (!d) return kiln__fail(KILN_ERR_UNSUPPORTED, "tokenizer.json: no decoder (tokens joined by spaces)");
    const char *t = type_of(d);
    if (strcmp(t, "ByteLevel") == 0) {
        h->dec_bytelevel = true;
        return KILN_OK;
    }
    if (strcmp(t, "Metaspace") == 0) {
        bool first;
        h->dec_spm = true;
        return metaspace_scheme(d, "decoder", &h->dec_strip, &first);
    }
    /* Replace("▁", " "), ByteFallback, Fuse, Strip(" ", 1, 0) in this order;
     * ByteFallback and Strip may be absent. */
    const json_t *list = get(d, "decoders");
    if (strcmp(t, "Sequence") != 0 || !json_is_array(list))
        return kiln__fail(KILN_ERR_UNSUPPORTED,
                          "tokenizer.json: decoder '%s' is not supported (ByteLevel, Metaspace, Sequence of "
                          "Replace, ByteFallback, Fuse, Strip are)", t);
    static const char *const order[] = {"Replace", "ByteFallback", "Fuse", "Strip"};
    bool seen[4] = {false, false, false, false};
    size_t next = 0; /* parts must come in `order` */
    for (size_t i = 0; i < json_array_size(list); i++) {
        const json_t *c = json_array_get(list, i);
        const char *ct = type_of(c);
        size_t k = 0;
        while (k < 4 && strcmp(order[k], ct) != 0) k++;
        if (k == 4 || k < next)
            return kiln__fail(KILN_ERR_UNSUPPORTED, "tokenizer.json: decoder Sequence with '%s' %s", ct,
                              k == 4 ? "is not supported" : "out of order");
        if (k == 0 && !replace_is(c, SPM_SPACE, " "))
            return kiln__fail(KILN_ERR_UNSUPPORTED, "tokenizer.json: decoder Replace other than '▁' -> ' '");
        if (k == 3) {
            int64_t start, stop;
            kiln_status st = kiln__json_get_int(c, "start", 0, &start);
            if (st == KILN_OK) st = kiln__json_get_int(c, "stop", 0, &stop);
            if (st != KILN_OK) return st;
            if (!str_is(get(c, "content"), " ") || start != 1 || stop != 0)
                return kiln__fail(KILN_ERR_UNSUPPORTED, "tokenizer.json: decoder Strip other than one leading space");
        }
        seen[k] = true;
        next = k + 1;
    }
    if (!seen[0] || !seen[2])
        return kiln__fail(KILN_ERR_UNSUPPORTED, "tokenizer.json: decoder Sequence without Replace and Fuse");
    h->dec_spm = true;
    h->dec_byte_fallback = seen[1];
    h->dec_strip = seen[3];
    return KILN_OK;
}

/* ---- tokens ---- */

/* The id of the model's vocab entry `text`, or -1. */
static int32_t model_id(const struct hf *h, const char *text, size_t len) {
    const json_t *id = json_object_getn(h->vocab, text, len);
    return json_is_integer(id) ? (int32_t)json_integer_value(id) : -1;
}

/* The id of a token by its text: added tokens first, then the model's
 * vocab (as Hugging Face looks it up); -1 when none. */
static int32_t token_id(const struct hf *h, const char *text, size_t len) {
    for (size_t i = 0; i < h->n_added; i++) {
        const struct hf_tok *t = &h->tok[h->added[i]];
        if (t->len == len && memcmp(t->text, text, len) == 0) return h->added[i];
    }
    return model_id(h, text, len);
}

/* An id from the file: an integer in [0, MAX_TOKENS). */
static kiln_status read_id(const json_t *j, const char *what, const char *text, size_t len, int32_t *id) {
    if (!json_is_integer(j) || json_integer_value(j) < 0 || json_integer_value(j) >= MAX_TOKENS)
        return kiln__fail(KILN_ERR_FORMAT, "tokenizer.json: %s '%.*s' has id %s%lld (ids are 0 to %d)", what,
                          SHOWN(len), text, json_is_integer(j) ? "" : "of a non-integer ",
                          json_is_integer(j) ? (long long)json_integer_value(j) : 0LL, MAX_TOKENS - 1);
    *id = (int32_t)json_integer_value(j);
    return KILN_OK;
}

/* model.vocab and added_tokens into h->tok. */
static kiln_status read_tokens(struct hf *h, const json_t *added) {
    const char *key;
    size_t key_len;
    json_t *val;
    int32_t max_id = -1, id;
    size_t n_entries = json_object_size(h->vocab) + json_array_size(added);
    kiln_status st;
    /* Pass 1: the highest id. */
    json_object_keylen_foreach((json_t *)h->vocab, key, key_len, val) {
        if ((st = read_id(val, "token", key, key_len, &id)) != KILN_OK) return st;
        if (id > max_id) max_id = id;
    }
    for (size_t i = 0; i < json_array_size(added); i++) {
        const json_t *a = json_array_get(added, i), *content = get(a, "content");
        if (!json_is_object(a) || !json_is_string(content))
            return kiln__fail(KILN_ERR_FORMAT, "tokenizer.json: added_tokens[%zu] has no content", i);
        if ((st = read_id(get(a, "id"), "added token", json_string_value(content), json_string_length(content),
                          &id)) != KILN_OK)
            return st;
        if (id > max_id) max_id = id;
    }
    if (max_id < 0) return kiln__fail(KILN_ERR_FORMAT, "tokenizer.json: the vocabulary is empty");
    if ((size_t)max_id >= 2 * n_entries + 1024)
        return kiln__fail(KILN_ERR_FORMAT, "tokenizer.json: ids up to %d for only %zu tokens", max_id, n_entries);
    h->n_tokens = max_id + 1;
    h->tok = calloc((size_t)h->n_tokens, sizeof *h->tok);
    h->added = malloc((json_array_size(added) + 1) * sizeof *h->added);
    if (!h->tok || !h->added) return oom();
    /* Pass 2: the model's vocab. */
    json_object_keylen_foreach((json_t *)h->vocab, key, key_len, val) {
        id = (int32_t)json_integer_value(val);
        struct hf_tok *t = &h->tok[id];
        if (t->text)
            return kiln__fail(KILN_ERR_FORMAT, "tokenizer.json: id %d is both '%.*s' and '%.*s'", id, SHOWN(t->len),
                              t->text, SHOWN(key_len), key);
        *t = (struct hf_tok){key, key_len, false, false, false, true};
    }
    /* Pass 3: added tokens, which may repeat a vocab entry (same text, same id). */
    for (size_t i = 0; i < json_array_size(added); i++) {
        const json_t *a = json_array_get(added, i), *content = get(a, "content");
        const char *text = json_string_value(content);
        size_t len = json_string_length(content);
        id = (int32_t)json_integer_value(get(a, "id"));
        struct hf_tok *t = &h->tok[id];
        bool special, normalized, lstrip, rstrip, single_word;
        if ((st = opt_bool(a, "special", false, "added token", &special)) != KILN_OK) return st;
        if ((st = opt_bool(a, "normalized", !special, "added token", &normalized)) != KILN_OK) return st;
        if ((st = opt_bool(a, "lstrip", false, "added token", &lstrip)) != KILN_OK) return st;
        if ((st = opt_bool(a, "rstrip", false, "added token", &rstrip)) != KILN_OK) return st;
        if ((st = opt_bool(a, "single_word", false, "added token", &single_word)) != KILN_OK) return st;
        if (len == 0) return kiln__fail(KILN_ERR_FORMAT, "tokenizer.json: added token %d is empty", id);
        if (lstrip || rstrip || single_word)
            return kiln__fail(KILN_ERR_UNSUPPORTED, "tokenizer.json: added token '%.*s' with %s", SHOWN(len), text,
                              lstrip ? "lstrip" : rstrip ? "rstrip" : "single_word");
        if (t->added || (t->text && (t->len != len || memcmp(t->text, text, len) != 0)))
            return kiln__fail(KILN_ERR_FORMAT, "tokenizer.json: id %d is both '%.*s' and added token '%.*s'", id,
                              SHOWN(t->len), t->text, SHOWN(len), text);
        int32_t other = model_id(h, text, len);
        if (other >= 0 && other != id)
            return kiln__fail(KILN_ERR_FORMAT, "tokenizer.json: added token '%.*s' has id %d, the vocabulary %d",
                              SHOWN(len), text, id, other);
        if (other < 0 && token_id(h, text, len) >= 0)
            return kiln__fail(KILN_ERR_FORMAT, "tokenizer.json: added token '%.*s' twice", SHOWN(len), text);
        h->added[h->n_added++] = id;
        t->text = text;
        t->len = len;
        t->added = true;
        t->special = special;
        t->normalized = normalized;
    }
    return KILN_OK;
}

/* Whether text[0..len) holds a '▁'. */
static bool has_spm_space(const char *text, size_t len) {
    for (size_t i = 0; i + 3 <= len; i++)
        if (memcmp(text + i, SPM_SPACE, 3) == 0) return true;
    return false;
}

/* Whether the added tokens are matched as kiln matches them: all at once,
 * leftmost-longest, in the raw text. Hugging Face matches the tokens with
 * normalized=false in the raw text first, then those with normalized=true in
 * the normalized pieces in between. */
static kiln_status check_added(const struct hf *h) {
    for (size_t i = 0; i < h->n_added; i++) {
        const struct hf_tok *a = &h->tok[h->added[i]];
        if (!a->normalized) continue;
        /* The pieces after such a token get no Prepend; normalization may join
         * NFC-composable characters across its edges; and its own text must
         * read the same normalized. */
        if (h->norm_prepend || h->norm_nfc ||
            (h->norm_replace && (memchr(a->text, ' ', a->len) || has_spm_space(a->text, a->len))))
            return kiln__fail(KILN_ERR_UNSUPPORTED,
                              "tokenizer.json: added token '%.*s' is matched in text normalized by %s",
                              SHOWN(a->len), a->text, h->norm_nfc ? "NFC" : h->norm_prepend ? "Prepend" : "Replace");
        /* A match of a raw-text token b inside a (or overlapping a's end)
         * would win in Hugging Face, and a in kiln when a starts first. */
        for (size_t j = 0; j < h->n_added; j++) {
            const struct hf_tok *b = &h->tok[h->added[j]];
            if (b->normalized) continue;
            for (size_t k = 0; k < a->len; k++) {
                size_t m = a->len - k < b->len ? a->len - k : b->len;
                if (k == 0 && b->len >= a->len) continue; /* a within b's start: b is longer, both pick b */
                if (memcmp(a->text + k, b->text, m) == 0)
                    return kiln__fail(KILN_ERR_UNSUPPORTED,
                                      "tokenizer.json: added tokens '%.*s' (normalized) and '%.*s' overlap",
                                      SHOWN(a->len), a->text, SHOWN(b->len), b->text);
            }
        }
    }
    return KILN_OK;
}

/* ---- post-processor ---- */

/* The id of the template's special token named `name`. */
static kiln_status template_id(const json_t *pp, const json_t *item, int32_t n_tokens, int32_t *out) {
    const json_t *name = get(item, "id"), *ids = NULL;
    if (json_is_string(name))
        ids = get(json_object_getn(get(pp, "special_tokens"), json_string_value(name), json_string_length(name)), "ids");
    if (!json_is_array(ids))
        return kiln__fail(KILN_ERR_FORMAT, "tokenizer.json: post-processor token without ids");
    if (json_array_size(ids) != 1)
        return kiln__fail(KILN_ERR_UNSUPPORTED, "tokenizer.json: post-processor token '%s' of %zu ids",
                          json_string_value(name), json_array_size(ids));
    const json_t *id = json_array_get(ids, 0);
    if (!json_is_integer(id) || json_integer_value(id) < 0 || json_integer_value(id) >= n_tokens)
        return kiln__fail(KILN_ERR_FORMAT, "tokenizer.json: post-processor token '%s' has an id out of range",
                          json_string_value(name));
    *out = (int32_t)json_integer_value(id);
    return KILN_OK;
}

static kiln_status parse_post(struct hf *h, const json_t *pp, int depth) {
    if (!pp) return KILN_OK;
    const char *t = type_of(pp);
    kiln_status st = KILN_OK;
    if (strcmp(t, "ByteLevel") == 0) return KILN_OK; /* offsets only */
    if (strcmp(t, "Sequence") == 0 && depth < MAX_DEPTH) {
        const json_t *list = get(pp, "processors");
        if (!json_is_array(list)) return kiln__fail(KILN_ERR_FORMAT, "tokenizer.json: post-processor Sequence without a list");
        for (size_t i = 0; i < json_array_size(list) && st == KILN_OK; i++)
            st = parse_post(h, json_array_get(list, i), depth + 1);
        return st;
    }
    if (strcmp(t, "TemplateProcessing") != 0)
        return kiln__fail(KILN_ERR_UNSUPPORTED,
                          "tokenizer.json: post-processor '%s' is not supported (TemplateProcessing, ByteLevel are)", t);
    if (h->tpl_bos >= 0 || h->tpl_eos >= 0)
        return kiln__fail(KILN_ERR_UNSUPPORTED, "tokenizer.json: two TemplateProcessing post-processors");
    /* single: [special] $A [special] */
    const json_t *single = get(pp, "single");
    if (!json_is_array(single)) return kiln__fail(KILN_ERR_FORMAT, "tokenizer.json: TemplateProcessing without single");
    int seq_at = -1, n = (int)json_array_size(single);
    for (int i = 0; i < n && st == KILN_OK; i++) {
        const json_t *item = json_array_get(single, (size_t)i), *s;
        if ((s = get(item, "Sequence"))) {
            if (seq_at >= 0 || !str_is(get(s, "id"), "A"))
                return kiln__fail(KILN_ERR_UNSUPPORTED, "tokenizer.json: TemplateProcessing single is not [X] $A [Y]");
            seq_at = i;
        } else if ((s = get(item, "SpecialToken"))) {
            bool before = seq_at < 0;
            int32_t *slot = before ? &h->tpl_bos : &h->tpl_eos;
            if (*slot >= 0)
                return kiln__fail(KILN_ERR_UNSUPPORTED,
                                  "tokenizer.json: TemplateProcessing single adds more than one token %s the text",
                                  before ? "before" : "after");
            st = template_id(pp, s, h->n_tokens, slot);
        } else {
            return kiln__fail(KILN_ERR_FORMAT, "tokenizer.json: TemplateProcessing single item is neither "
                                               "Sequence nor SpecialToken");
        }
    }
    if (st == KILN_OK && seq_at < 0)
        return kiln__fail(KILN_ERR_UNSUPPORTED, "tokenizer.json: TemplateProcessing single without $A");
    return st;
}

/* ---- tokenizer_config.json ---- */

/* A special token of the config (a string, or an object with "content"):
 * *text is NULL when absent or null. */
static kiln_status config_token(const json_t *config, const char *key, const char **text, size_t *len) {
    const json_t *v = get(config, key);
    *text = NULL;
    *len = 0;
    if (!v) return KILN_OK;
    if (json_is_object(v)) v = get(v, "content");
    if (!json_is_string(v))
        return kiln__fail(KILN_ERR_FORMAT, "tokenizer_config.json: %s is neither a string nor {\"content\": ...}", key);
    *text = json_string_value(v);
    *len = json_string_length(v);
    return KILN_OK;
}

/* The id of the config's special token `key`, or -1 (with a warning when
 * the config names a token the vocabulary lacks). */
static kiln_status config_id(const struct hf *h, const json_t *config, const char *key, int32_t *id) {
    const char *text;
    size_t len;
    kiln_status st = config_token(config, key, &text, &len);
    *id = -1;
    if (st != KILN_OK || !text) return st;
    *id = token_id(h, text, len);
    if (*id < 0)
        KILN_LOG_WARN("tokenizer_config.json: %s '%.*s' is not a token; ignored", key, SHOWN(len), text);
    return KILN_OK;
}

/* bos/eos/unk/pad ids and add_bos/add_eos: the post-processor's template
 * says which tokens go around the text; the config names the special tokens
 * and its add_bos_token / add_eos_token, when present, decide (as
 * transformers' Llama tokenizers and llama.cpp's converter do). */
static kiln_status read_specials(const struct hf *h, const json_t *config, kiln_vocab *v) {
    int32_t bos, eos, unk, pad;
    kiln_status st = config_id(h, config, "bos_token", &bos);
    if (st == KILN_OK) st = config_id(h, config, "eos_token", &eos);
    if (st == KILN_OK) st = config_id(h, config, "unk_token", &unk);
    if (st == KILN_OK) st = config_id(h, config, "pad_token", &pad);
    if (st != KILN_OK) return st;
    if (h->tpl_bos >= 0 && bos >= 0 && bos != h->tpl_bos)
        return kiln__fail(KILN_ERR_UNSUPPORTED, "tokenizer.json: the post-processor begins with token %d, "
                                                "but bos_token is %d", h->tpl_bos, bos);
    if (h->tpl_eos >= 0 && eos >= 0 && eos != h->tpl_eos)
        return kiln__fail(KILN_ERR_UNSUPPORTED, "tokenizer.json: the post-processor ends with token %d, "
                                                "but eos_token is %d", h->tpl_eos, eos);
    v->bos_id = bos >= 0 ? bos : h->tpl_bos;
    v->eos_id = eos >= 0 ? eos : h->tpl_eos;
    v->add_bos = h->tpl_bos >= 0;
    v->add_eos = h->tpl_eos >= 0;
    if ((st = kiln__json_get_bool(config, "add_bos_token", v->add_bos, &v->add_bos)) != KILN_OK) return st;
    if ((st = kiln__json_get_bool(config, "add_eos_token", v->add_eos, &v->add_eos)) != KILN_OK) return st;
    if ((v->add_bos && v->bos_id < 0) || (v->add_eos && v->eos_id < 0))
        return kiln__fail(KILN_ERR_UNSUPPORTED, "tokenizer_config.json: add_%s_token without a %s token",
                          v->add_bos && v->bos_id < 0 ? "bos" : "eos", v->add_bos && v->bos_id < 0 ? "bos" : "eos");
    /* The model's unk_token is what tokenization uses; the config's is a label. */
    v->unk_id = h->unk_id;
    if (unk >= 0 && unk != h->unk_id)
        KILN_LOG_WARN("tokenizer_config.json: unk_token %d is not the model's unk_token; ignored", unk);
    v->pad_id = pad;
    return KILN_OK;
}

/* ---- the model ---- */

static kiln_status parse_model(struct hf *h) {
    const json_t *m = h->model;
    if (!json_is_object(m)) return kiln__fail(KILN_ERR_FORMAT, "tokenizer.json: no model");
    if (!str_is(get(m, "type"), "BPE"))
        return kiln__fail(KILN_ERR_UNSUPPORTED, "tokenizer.json: model type '%s' is not supported (BPE is)", type_of(m));
    h->vocab = get(m, "vocab");
    h->merges = get(m, "merges");
    if (!json_is_object(h->vocab)) return kiln__fail(KILN_ERR_FORMAT, "tokenizer.json: model.vocab is not an object");
    if (!json_is_array(h->merges)) return kiln__fail(KILN_ERR_FORMAT, "tokenizer.json: model.merges is not an array");
    kiln_status st = opt_bool(m, "byte_fallback", false, "model", &h->byte_fallback);
    if (st == KILN_OK) st = opt_bool(m, "fuse_unk", false, "model", &h->fuse_unk);
    if (st == KILN_OK) st = opt_bool(m, "ignore_merges", false, "model", &h->ignore_merges);
    if (st != KILN_OK) return st;
    double dropout;
    if ((st = kiln__json_get_real(m, "dropout", 0.0, &dropout)) != KILN_OK) return st;
    if (dropout != 0.0) return kiln__fail(KILN_ERR_UNSUPPORTED, "tokenizer.json: BPE dropout");
    static const char *const affixes[] = {"continuing_subword_prefix", "end_of_word_suffix"};
    for (size_t i = 0; i < 2; i++) {
        const json_t *a = get(m, affixes[i]);
        if (a && !(json_is_string(a) && json_string_length(a) == 0))
            return kiln__fail(KILN_ERR_UNSUPPORTED, "tokenizer.json: BPE %s", affixes[i]);
    }
    return KILN_OK;
}

/* model.unk_token's id (a model vocab entry), after the tokens are read. */
static kiln_status read_unk(struct hf *h) {
    const json_t *unk = get(h->model, "unk_token");
    h->unk_id = -1;
    if (!unk) return KILN_OK;
    if (!json_is_string(unk)) return kiln__fail(KILN_ERR_FORMAT, "tokenizer.json: model.unk_token is not a string");
    h->unk_id = model_id(h, json_string_value(unk), json_string_length(unk));
    if (h->unk_id < 0)
        return kiln__fail(KILN_ERR_FORMAT, "tokenizer.json: model.unk_token '%.*s' is not in the vocabulary",
                          SHOWN(json_string_length(unk)), json_string_value(unk));
    return KILN_OK;
}

/* Whether text is "<0xHH>" (upper-case hex, as Hugging Face's byte fallback spells it). */
static bool is_byte_token(const char *t, size_t len) {
    if (len != 6 || memcmp(t, "<0x", 3) != 0 || t[5] != '>') return false;
    for (int i = 3; i < 5; i++)
        if (!((t[i] >= '0' && t[i] <= '9') || (t[i] >= 'A' && t[i] <= 'F'))) return false;
    return true;
}

/* Whether each of the 256 bytes has its token in the model's vocab:
 * "<0xHH>" (SPM byte fallback) or the byte's GPT-2 character (byte-level). */
static bool all_bytes(const struct hf *h, bool spm) {
    for (int b = 0; b < 256; b++) {
        char s[8];
        size_t len = spm ? (size_t)snprintf(s, sizeof s, "<0x%02X>", b)
                         : kiln__utf8_encode(kiln__bytelevel_cp((uint8_t)b), s);
        if (model_id(h, s, len) < 0) return false;
    }
    return true;
}

/* One merge: its two parts, which must be vocab entries that join into one. */
static kiln_status merge_parts(const struct hf *h, const json_t *m, size_t i, const char **l, size_t *ll,
                               const char **r, size_t *rl) {
    if (json_is_string(m)) {
        const char *s = json_string_value(m), *sp = memchr(s, ' ', json_string_length(m));
        size_t len = json_string_length(m);
        if (!sp || memchr(sp + 1, ' ', len - (size_t)(sp + 1 - s)))
            return kiln__fail(KILN_ERR_FORMAT, "tokenizer.json: merge %zu '%.*s' is not two tokens and one space", i,
                              SHOWN(len), s);
        *l = s;
        *ll = (size_t)(sp - s);
        *r = sp + 1;
        *rl = len - *ll - 1;
    } else if (json_is_array(m) && json_array_size(m) == 2 && json_is_string(json_array_get(m, 0)) &&
               json_is_string(json_array_get(m, 1))) {
        *l = json_string_value(json_array_get(m, 0));
        *ll = json_string_length(json_array_get(m, 0));
        *r = json_string_value(json_array_get(m, 1));
        *rl = json_string_length(json_array_get(m, 1));
        if (memchr(*l, ' ', *ll) || memchr(*r, ' ', *rl))
            return kiln__fail(KILN_ERR_UNSUPPORTED, "tokenizer.json: merge %zu joins a token with a space", i);
    } else {
        return kiln__fail(KILN_ERR_FORMAT, "tokenizer.json: merge %zu is neither \"a b\" nor [a, b]", i);
    }
    if (model_id(h, *l, *ll) < 0 || model_id(h, *r, *rl) < 0)
        return kiln__fail(KILN_ERR_FORMAT, "tokenizer.json: merge %zu: '%.*s' is not in the vocabulary", i,
                          model_id(h, *l, *ll) < 0 ? SHOWN(*ll) : SHOWN(*rl), model_id(h, *l, *ll) < 0 ? *l : *r);
    return KILN_OK;
}

/* The merges, in rank order. */
static kiln_status add_merges(const struct hf *h, kiln_vocab *v) {
    size_t cap = 256;
    char *buf = malloc(cap);
    if (!buf) return oom();
    kiln_status st = KILN_OK;
    for (size_t i = 0; i < json_array_size(h->merges) && st == KILN_OK; i++) {
        const char *l = NULL, *r = NULL;
        size_t ll = 0, rl = 0;
        if ((st = merge_parts(h, json_array_get(h->merges, i), i, &l, &ll, &r, &rl)) != KILN_OK) break;
        if (ll + rl + 1 > cap) {
            while (ll + rl + 1 > cap) cap *= 2;
            char *b = realloc(buf, cap);
            if (!b) {
                st = oom();
                break;
            }
            buf = b;
        }
        memcpy(buf, l, ll);
        memcpy(buf + ll, r, rl);
        int32_t joined = model_id(h, buf, ll + rl), lid = model_id(h, l, ll), rid = model_id(h, r, rl);
        if (joined < 0) {
            st = kiln__fail(KILN_ERR_FORMAT, "tokenizer.json: merge %zu makes '%.*s', which is not in the vocabulary",
                            i, SHOWN(ll + rl), buf);
            break;
        }
        /* Hugging Face makes unknown and byte-fallback symbols before merging
         * (kiln after): merges of them would apply there only. */
        if (lid == h->unk_id || rid == h->unk_id || (v->model == KILN_VOCAB_SPM && h->byte_fallback &&
                                                     (is_byte_token(l, ll) || is_byte_token(r, rl)))) {
            st = kiln__fail(KILN_ERR_UNSUPPORTED, "tokenizer.json: merge %zu joins the unknown or a byte-fallback token", i);
            break;
        }
        buf[ll] = ' ';
        memcpy(buf + ll + 1, r, rl);
        size_t before = v->index->merges.count;
        if ((st = kiln__vocab_add_merge(v, buf, ll + rl + 1)) != KILN_OK) break;
        if (v->index->merges.count == before)
            st = kiln__fail(KILN_ERR_FORMAT, "tokenizer.json: merge %zu ('%.*s') repeats an earlier one", i,
                            SHOWN(ll + rl + 1), buf);
    }
    free(buf);
    return st;
}

/* ---- assembly ---- */

/* Which of kiln's tokenizers the components make, or why none. */
static kiln_status decide(const struct hf *h, kiln_vocab_model *model, kiln_vocab_pre *pre) {
    kiln_status st;
    if (h->bytelevel) {
        *model = KILN_VOCAB_BPE;
        if ((st = bytelevel_pre(h, pre)) != KILN_OK) return st;
        if (h->norm_prepend || h->norm_replace)
            return kiln__fail(KILN_ERR_UNSUPPORTED, "tokenizer.json: normalizer Prepend/Replace with ByteLevel");
        if (h->norm_nfc != (*pre == KILN_PRE_QWEN2))
            return kiln__fail(KILN_ERR_UNSUPPORTED, "tokenizer.json: %s with the %s pre-tokenizer",
                              h->norm_nfc ? "normalizer NFC" : "no NFC normalizer", kiln__vocab_pre_name(*pre));
        if (h->ignore_merges != (*pre == KILN_PRE_LLAMA3))
            return kiln__fail(KILN_ERR_UNSUPPORTED, "tokenizer.json: ignore_merges %s with the %s pre-tokenizer",
                              h->ignore_merges ? "set" : "not set", kiln__vocab_pre_name(*pre));
        if (!h->dec_bytelevel)
            return kiln__fail(KILN_ERR_UNSUPPORTED, "tokenizer.json: a byte-level model without the ByteLevel decoder");
        return KILN_OK;
    }
    *model = KILN_VOCAB_SPM;
    *pre = KILN_PRE_DEFAULT;
    if (h->n_splits) return kiln__fail(KILN_ERR_UNSUPPORTED, "tokenizer.json: pre-tokenizer Split without ByteLevel");
    if (h->norm_nfc) return kiln__fail(KILN_ERR_UNSUPPORTED, "tokenizer.json: normalizer NFC without ByteLevel");
    if (h->metaspace && (h->norm_prepend || h->norm_replace))
        return kiln__fail(KILN_ERR_UNSUPPORTED, "tokenizer.json: normalizer Prepend/Replace with Metaspace");
    if (!h->metaspace && !h->norm_replace)
        return kiln__fail(KILN_ERR_UNSUPPORTED, "tokenizer.json: spaces are neither ByteLevel nor '▁' (no Metaspace "
                                                "or Replace(\" \", \"▁\")): not a tokenizer kiln reproduces");
    if (h->ignore_merges)
        return kiln__fail(KILN_ERR_UNSUPPORTED, "tokenizer.json: ignore_merges with a SentencePiece-style model");
    bool prefix = h->metaspace ? h->meta_prepend : h->norm_prepend;
    if (!h->dec_spm || h->dec_byte_fallback != h->byte_fallback || h->dec_strip != prefix)
        return kiln__fail(KILN_ERR_UNSUPPORTED, "tokenizer.json: the decoder does not undo the model (%s)",
                          !h->dec_spm ? "not a '▁' decoder"
                          : h->dec_byte_fallback != h->byte_fallback ? "ByteFallback differs from byte_fallback"
                                                                     : "its Strip differs from the '▁' prefix");
    return KILN_OK;
}

/* Checks that need the tokens: unknown-token fusing kiln does not do, and a
 * byte-level byte fallback that could ever apply. */
static kiln_status check_unk(const struct hf *h, kiln_vocab_model model) {
    bool spm = model == KILN_VOCAB_SPM;
    bool every_byte = all_bytes(h, spm);
    if (!spm && h->byte_fallback && !every_byte)
        return kiln__fail(KILN_ERR_UNSUPPORTED, "tokenizer.json: byte_fallback in a byte-level model missing bytes");
    bool unk_reachable = h->unk_id >= 0 && !(every_byte && (!spm || h->byte_fallback));
    if (h->fuse_unk && unk_reachable)
        return kiln__fail(KILN_ERR_UNSUPPORTED, "tokenizer.json: fuse_unk, and characters can be unknown");
    return KILN_OK;
}

/* Fill a new vocabulary from what was read. */
static kiln_status build(const struct hf *h, const json_t *config, kiln_vocab_model model, kiln_vocab_pre pre,
                         kiln_vocab **out) {
    kiln_vocab *v;
    kiln_status st = kiln__vocab_new(model, pre, h->n_tokens, &v);
    if (st != KILN_OK) return st;
    if (model == KILN_VOCAB_SPM) {
        v->merges_ranked = true;
        v->add_space_prefix = h->metaspace ? h->meta_prepend : h->norm_prepend;
        v->spm_prefix = !h->metaspace ? KILN_SPM_PREFIX_EACH : h->meta_first ? KILN_SPM_PREFIX_FIRST
                                                                             : KILN_SPM_PREFIX_METASPACE;
        v->spm_split = h->metaspace && h->meta_split;
    }
    int32_t holes = 0;
    for (int32_t i = 0; i < h->n_tokens && st == KILN_OK; i++) {
        const struct hf_tok *t = &h->tok[i];
        kiln_token_type type = KILN_TOKEN_NORMAL;
        if (!t->text) {
            type = KILN_TOKEN_UNUSED; /* an id no token has: never produced */
            holes++;
        } else if (t->added) {
            type = !t->special ? KILN_TOKEN_USER_DEFINED : i == h->unk_id ? KILN_TOKEN_UNKNOWN : KILN_TOKEN_CONTROL;
        } else if (model == KILN_VOCAB_SPM && h->byte_fallback && is_byte_token(t->text, t->len)) {
            type = KILN_TOKEN_BYTE;
        }
        st = kiln__vocab_set_token(v, i, t->text ? t->text : "", t->text ? t->len : 0, 0.0f, type);
    }
    if (holes) KILN_LOG_WARN("tokenizer.json: %d ids between 0 and %d have no token", holes, h->n_tokens - 1);
    if (st == KILN_OK) st = add_merges(h, v);
    if (st == KILN_OK) st = read_specials(h, config, v);
    if (st == KILN_OK) st = kiln__vocab_finalize(v);
    if (st != KILN_OK) {
        kiln__vocab_free(v);
        return st;
    }
    *out = v;
    return KILN_OK;
}

kiln_status kiln__vocab_from_hf_json(const json_t *tokenizer, const json_t *config, kiln_vocab **out) {
    *out = NULL;
    if (!json_is_object(tokenizer)) return kiln__fail(KILN_ERR_FORMAT, "tokenizer.json: not a JSON object");
    if (config && !json_is_object(config))
        return kiln__fail(KILN_ERR_FORMAT, "tokenizer_config.json: not a JSON object");
    struct hf h = {.model = get(tokenizer, "model"), .tpl_bos = -1, .tpl_eos = -1, .unk_id = -1};
    const json_t *added = get(tokenizer, "added_tokens");
    kiln_status st = parse_model(&h);
    if (st == KILN_OK && get(tokenizer, "truncation"))
        st = kiln__fail(KILN_ERR_UNSUPPORTED, "tokenizer.json: truncation");
    if (st == KILN_OK && get(tokenizer, "padding") &&
        !str_is(get(get(tokenizer, "padding"), "strategy"), "BatchLongest"))
        st = kiln__fail(KILN_ERR_UNSUPPORTED, "tokenizer.json: padding to a fixed length");
    if (st == KILN_OK && added && !json_is_array(added))
        st = kiln__fail(KILN_ERR_FORMAT, "tokenizer.json: added_tokens is not an array");
    if (st == KILN_OK) st = parse_normalizer(&h, get(tokenizer, "normalizer"), 0);
    if (st == KILN_OK) st = parse_pre(&h, get(tokenizer, "pre_tokenizer"), 0);
    if (st == KILN_OK) st = parse_decoder(&h, get(tokenizer, "decoder"));
    kiln_vocab_model model = KILN_VOCAB_BPE;
    kiln_vocab_pre pre = KILN_PRE_DEFAULT;
    if (st == KILN_OK) st = decide(&h, &model, &pre);
    if (st == KILN_OK) st = read_tokens(&h, added);
    if (st == KILN_OK) st = read_unk(&h);
    if (st == KILN_OK) st = check_unk(&h, model);
    if (st == KILN_OK) st = check_added(&h);
    if (st == KILN_OK) st = parse_post(&h, get(tokenizer, "post_processor"), 0);
    if (st == KILN_OK) st = build(&h, config, model, pre, out);
    free(h.tok);
    free(h.added);
    return st;
}

kiln_status kiln__vocab_load_hf(const char *tokenizer_json_path, const char *tokenizer_config_json_path,
                                kiln_vocab **out) {
    *out = NULL;
    json_t *tok = NULL, *config = NULL;
    kiln_status st = kiln__json_load_file(tokenizer_json_path, 0, &tok);
    if (st == KILN_OK && tokenizer_config_json_path)
        st = kiln__json_load_file(tokenizer_config_json_path, 0, &config);
    if (st == KILN_OK) st = kiln__vocab_from_hf_json(tok, config, out);
    json_decref(tok);
    json_decref(config);
    return st;
}
