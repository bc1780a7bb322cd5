/* src/text/clip_vocab.c - loading the CLIP tokenizer's vocabulary (see
 * clip_tokenizer.h).
 *
 * From the merges file, the vocabulary is built as simple_tokenizer.py
 * builds it: the 256 byte characters of GPT-2's alphabet in the order of its
 * bytes_to_unicode() (bytes 0x21..0x7E, 0xA1..0xAC, 0xAE..0xFF, then the
 * others), the same 256 with "</w>", one token per merge (its two parts
 * joined), then <|startoftext|> and <|endoftext|>: ids 0..49407 for the
 * real file. A diffusers tokenizer/ folder spells out the same in
 * vocab.json and merges.txt.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

#include "core/error.h"
#include "formats/file_map.h"
#include "formats/json_util.h"
#include "text/bytelevel.h"
#include "text/clip_impl.h"
#include "text/utf8.h"

/* Largest merges file accepted, decompressed (the real one is 1.7 MB). */
#define MAX_MERGES_FILE ((size_t)64 << 20)

static const char START[] = "<|startoftext|>";
static const char END[] = "<|endoftext|>";

static kiln_status oom(void) { return kiln__fail(KILN_ERR_OUT_OF_MEMORY, "clip tokenizer: out of memory"); }

/* ---- merge lines ---- */

/* One merge line: its two parts. */
struct merge_line {
    const char *a; /* left part */
    size_t alen;   /* its bytes */
    const char *b; /* right part */
    size_t blen;   /* its bytes */
};

static int is_blank(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f'; }

/* Split line s[0..n) into exactly two blank-separated parts (Python's
 * str.split()); false otherwise. */
static int split_merge(const char *s, size_t n, struct merge_line *m) {
    const char *part[3];
    size_t plen[3];
    int k = 0;
    for (size_t i = 0; i < n;) {
        while (i < n && is_blank(s[i])) i++;
        if (i == n) break;
        size_t j = i;
        while (j < n && !is_blank(s[j])) j++;
        if (k == 3) return 0;
        part[k] = s + i;
        plen[k] = j - i;
        k++;
        i = j;
    }
    if (k != 2) return 0;
    *m = (struct merge_line){part[0], plen[0], part[1], plen[1]};
    return 1;
}

/* The merge lines of a merges file: after the header line, up to
 * KILN_CLIP_MAX_MERGES lines; a last empty line (after the final newline)
 * does not count. *lines is malloc'ed. */
static kiln_status parse_merges(const char *text, size_t len, const char *what, struct merge_line **lines,
                                size_t *n_lines) {
    *lines = NULL;
    *n_lines = 0;
    const char *nl = memchr(text, '\n', len);
    if (!nl) return KILN_OK; /* the header alone: no merges */
    size_t pos = (size_t)(nl - text) + 1;
    struct merge_line *v = malloc(KILN_CLIP_MAX_MERGES * sizeof *v);
    if (!v) return oom();
    size_t n = 0;
    while (pos < len && n < KILN_CLIP_MAX_MERGES) {
        const char *e = memchr(text + pos, '\n', len - pos);
        size_t end = e ? (size_t)(e - text) : len;
        if (!split_merge(text + pos, end - pos, &v[n])) {
            free(v);
            return kiln__fail(KILN_ERR_FORMAT, "clip tokenizer: %s: merge line %zu is not two symbols", what,
                              n + 2);
        }
        n++;
        pos = end + 1;
    }
    *lines = v;
    *n_lines = n;
    return KILN_OK;
}

/* Add the merges to a vocabulary whose tokens are all set. */
static kiln_status add_merges(kiln_vocab *v, const struct merge_line *m, size_t n) {
    char buf[512];
    for (size_t i = 0; i < n; i++) {
        size_t l = m[i].alen + 1 + m[i].blen;
        char *s = l <= sizeof buf ? buf : malloc(l);
        if (!s) return oom();
        memcpy(s, m[i].a, m[i].alen);
        s[m[i].alen] = ' ';
        memcpy(s + m[i].alen + 1, m[i].b, m[i].blen);
        kiln_status st = kiln__vocab_add_merge(v, s, l);
        if (s != buf) free(s);
        if (st != KILN_OK) return st;
    }
    return KILN_OK;
}

/* ---- the tokenizer ---- */

void kiln__clip_tok_free(kiln_clip_tok *t) {
    if (!t) return;
    kiln__vocab_free(t->vocab);
    kiln__clip_regex_free(t->split);
    free(t);
}

/* A tokenizer around vocabulary v (taken over), finalized and prepared. */
static kiln_status finish(kiln_vocab *v, int32_t pad_id, kiln_clip_tok **out) {
    kiln_clip_tok *t = calloc(1, sizeof *t);
    if (!t) {
        kiln__vocab_free(v);
        return oom();
    }
    t->vocab = v;
    t->bos_id = v->bos_id;
    t->eos_id = v->eos_id;
    t->pad_id = pad_id >= 0 ? pad_id : v->eos_id;
    kiln_status st = kiln__vocab_finalize(v);
    if (st == KILN_OK) st = kiln__clip_tok_prepare(t);
    if (st != KILN_OK) {
        kiln__clip_tok_free(t);
        return st;
    }
    *out = t;
    return KILN_OK;
}

kiln_status kiln__clip_tok_from_merges(const char *text, size_t len, kiln_clip_tok **out) {
    *out = NULL;
    struct merge_line *m;
    size_t n;
    kiln_status st = parse_merges(text, len, "merges file", &m, &n);
    if (st != KILN_OK) return st;
    int32_t n_tokens = (int32_t)(512 + n + 2);
    kiln_vocab *v;
    if ((st = kiln__vocab_new(KILN_VOCAB_BPE, KILN_PRE_GPT2, n_tokens, &v)) != KILN_OK) {
        free(m);
        return st;
    }
    /* Bytes in bytes_to_unicode() order: the printable ones, then the rest. */
    int32_t id = 0;
    for (int pass = 0; pass < 2; pass++) {
        for (int b = 0; b < 256 && st == KILN_OK; b++) {
            int printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE;
            if (printable != (pass == 0)) continue;
            char s[8];
            size_t l = kiln__utf8_encode(kiln__bytelevel_cp((uint8_t)b), s);
            st = kiln__vocab_set_token(v, id, s, l, 0.0f, KILN_TOKEN_NORMAL);
            memcpy(s + l, "</w>", 4);
            if (st == KILN_OK) st = kiln__vocab_set_token(v, id + 256, s, l + 4, 0.0f, KILN_TOKEN_NORMAL);
            id++;
        }
    }
    id = 512;
    char buf[512];
    for (size_t i = 0; i < n && st == KILN_OK; i++, id++) {
        size_t l = m[i].alen + m[i].blen;
        char *s = l <= sizeof buf ? buf : malloc(l);
        if (!s) {
            st = oom();
            break;
        }
        memcpy(s, m[i].a, m[i].alen);
        memcpy(s + m[i].alen, m[i].b, m[i].blen);
        st = kiln__vocab_set_token(v, id, s, l, 0.0f, KILN_TOKEN_NORMAL);
        if (s != buf) free(s);
    }
    if (st == KILN_OK) st = kiln__vocab_set_token(v, id, START, strlen(START), 0.0f, KILN_TOKEN_CONTROL);
    if (st == KILN_OK) st = kiln__vocab_set_token(v, id + 1, END, strlen(END), 0.0f, KILN_TOKEN_CONTROL);
    if (st == KILN_OK) st = add_merges(v, m, n);
    free(m);
    if (st != KILN_OK) {
        kiln__vocab_free(v);
        return st;
    }
    v->bos_id = id;
    v->eos_id = id + 1;
    return finish(v, -1, out);
}

/* Whether path names an existing file; a message suggesting --clip-vocab
 * otherwise. */
static kiln_status require_file(const char *path, const char *what) {
    struct stat sb;
    if (stat(path, &sb) == 0 && S_ISREG(sb.st_mode)) return KILN_OK;
    if (stat(path, &sb) == 0 || errno != ENOENT)
        return kiln__fail(KILN_ERR_IO, "clip tokenizer: cannot read %s '%s'", what, path);
    return kiln__fail(KILN_ERR_NOT_FOUND,
                      "clip tokenizer: %s '%s' not found; single-file checkpoints carry no vocabulary: "
                      "pass the CLIP merges file (bpe_simple_vocab_16e6.txt.gz) with --clip-vocab, or "
                      "use a diffusers folder with tokenizer/",
                      what, path);
}

kiln_status kiln__clip_tok_load_merges(const char *path, kiln_clip_tok **out) {
    *out = NULL;
    kiln_status st = require_file(path, "vocabulary file");
    if (st != KILN_OK) return st;
    /* zlib reads gzip data and passes anything else through unchanged. */
    gzFile f = gzopen(path, "rb");
    if (!f) return kiln__fail(KILN_ERR_IO, "clip tokenizer: cannot open '%s'", path);
    size_t cap = 1 << 22, len = 0;
    char *buf = malloc(cap);
    if (!buf) {
        gzclose(f);
        return oom();
    }
    for (;;) {
        if (len == cap) {
            if (cap >= MAX_MERGES_FILE) {
                st = kiln__fail(KILN_ERR_TOO_LARGE, "clip tokenizer: '%s' is larger than %zu bytes", path,
                                MAX_MERGES_FILE);
                break;
            }
            char *b = realloc(buf, cap * 2);
            if (!b) {
                st = oom();
                break;
            }
            buf = b;
            cap *= 2;
        }
        unsigned want = (unsigned)(cap - len < (1u << 30) ? cap - len : (1u << 30));
        int got = gzread(f, buf + len, want);
        if (got < 0) {
            int err;
            const char *msg = gzerror(f, &err);
            st = kiln__fail(KILN_ERR_FORMAT, "clip tokenizer: '%s': %s", path, msg ? msg : "read error");
            break;
        }
        if (got == 0) break;
        len += (size_t)got;
    }
    gzclose(f);
    if (st == KILN_OK) st = kiln__clip_tok_from_merges(buf, len, out);
    free(buf);
    return st;
}

/* ---- diffusers tokenizer folder ---- */

/* "dir/name" in buf. */
static kiln_status join(char *buf, size_t cap, const char *dir, const char *name) {
    int n = snprintf(buf, cap, "%s/%s", dir, name);
    if (n < 0 || (size_t)n >= cap) return kiln__fail(KILN_ERR_INVALID_ARG, "clip tokenizer: path too long");
    return KILN_OK;
}

/* The padding token named by special_tokens_map.json or
 * tokenizer_config.json ("pad_token": a string or {"content": ...}); -1
 * when neither names one. */
static kiln_status folder_pad(const char *dir, const kiln_vocab *v, int32_t *pad) {
    static const char *const files[] = {"special_tokens_map.json", "tokenizer_config.json"};
    *pad = -1;
    char path[4096];
    for (size_t i = 0; i < 2; i++) {
        kiln_status st = join(path, sizeof path, dir, files[i]);
        struct stat sb;
        if (st != KILN_OK) return st;
        if (stat(path, &sb) != 0) continue;
        json_t *root;
        if ((st = kiln__json_load_file(path, 0, &root)) != KILN_OK) return st;
        const json_t *p = json_object_get(root, "pad_token");
        if (json_is_object(p)) p = json_object_get(p, "content");
        if (!json_is_string(p)) {
            json_decref(root);
            continue;
        }
        *pad = kiln__vocab_find(v, json_string_value(p), json_string_length(p));
        if (*pad < 0)
            st = kiln__fail(KILN_ERR_FORMAT, "clip tokenizer: %s: pad_token '%s' is not in vocab.json", path,
                            json_string_value(p));
        json_decref(root);
        return st;
    }
    return KILN_OK;
}

/* Set the tokens of vocab.json (token -> id, ids 0..n-1 each once). */
static kiln_status folder_tokens(const char *path, kiln_vocab **out) {
    *out = NULL;
    json_t *root;
    kiln_status st = kiln__json_load_file(path, 0, &root);
    if (st != KILN_OK) return st;
    size_t n = json_is_object(root) ? json_object_size(root) : 0;
    if (n == 0 || n > INT32_MAX) {
        json_decref(root);
        return kiln__fail(KILN_ERR_FORMAT, "clip tokenizer: %s is not a non-empty object of token ids", path);
    }
    kiln_vocab *v;
    if ((st = kiln__vocab_new(KILN_VOCAB_BPE, KILN_PRE_GPT2, (int32_t)n, &v)) != KILN_OK) {
        json_decref(root);
        return st;
    }
    const char *key;
    json_t *val;
    json_object_foreach(root, key, val) {
        json_int_t id = json_is_integer(val) ? json_integer_value(val) : -1;
        if (id < 0 || (size_t)id >= n) {
            /* CLIP's ids are dense: the byte symbols, merges, then the start
             * and end tokens (what simple_tokenizer.py derives from merges). */
            st = kiln__fail(KILN_ERR_FORMAT,
                            "clip tokenizer: %s: token '%s' has id %lld, outside 0..%zu (CLIP ids are dense: %zu "
                            "tokens take ids 0..%zu)",
                            path, key, (long long)id, n - 1, n, n - 1);
            break;
        }
        int special = strcmp(key, START) == 0 || strcmp(key, END) == 0;
        st = kiln__vocab_set_token(v, (int32_t)id, key, strlen(key), 0.0f,
                                   special ? KILN_TOKEN_CONTROL : KILN_TOKEN_NORMAL);
        if (st != KILN_OK) break;
        if (strcmp(key, START) == 0) v->bos_id = (int32_t)id;
        if (strcmp(key, END) == 0) v->eos_id = (int32_t)id;
    }
    json_decref(root);
    if (st == KILN_OK && (v->bos_id < 0 || v->eos_id < 0))
        st = kiln__fail(KILN_ERR_FORMAT, "clip tokenizer: %s lacks %s or %s", path, START, END);
    if (st != KILN_OK) {
        kiln__vocab_free(v);
        return st;
    }
    *out = v;
    return KILN_OK;
}

kiln_status kiln__clip_tok_load_folder(const char *dir, kiln_clip_tok **out) {
    *out = NULL;
    char vpath[4096], mpath[4096];
    kiln_status st = join(vpath, sizeof vpath, dir, "vocab.json");
    if (st == KILN_OK) st = join(mpath, sizeof mpath, dir, "merges.txt");
    if (st == KILN_OK) st = require_file(vpath, "tokenizer vocabulary");
    if (st == KILN_OK) st = require_file(mpath, "tokenizer merges");
    if (st != KILN_OK) return st;
    kiln_vocab *v;
    if ((st = folder_tokens(vpath, &v)) != KILN_OK) return st;
    struct kiln_file_map map;
    if ((st = kiln__file_map_open(mpath, &map)) != KILN_OK) {
        kiln__vocab_free(v);
        return st;
    }
    struct merge_line *m = NULL;
    size_t n = 0;
    st = parse_merges(map.data ? (const char *)map.data : "", map.size, "merges.txt", &m, &n);
    if (st == KILN_OK) st = add_merges(v, m, n);
    free(m);
    kiln__file_map_close(&map);
    if (st != KILN_OK) {
        kiln__vocab_free(v);
        return st;
    }
    kiln_clip_tok *t;
    if ((st = finish(v, -1, &t)) != KILN_OK) return st;
    int32_t pad;
    if ((st = folder_pad(dir, t->vocab, &pad)) != KILN_OK) {
        kiln__clip_tok_free(t);
        return st;
    }
    if (pad >= 0) t->pad_id = pad;
    *out = t;
    return KILN_OK;
}
