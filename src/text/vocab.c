/* src/text/vocab.c - building a vocabulary and its lookup tables (see vocab.h). */
#include "text/vocab.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "text/bytelevel.h"
#include "text/utf8.h"
#include "text/vocab_impl.h"

/* Longest token text accepted (bytes). */
#define MAX_TOKEN_LEN (1u << 20)

/* "▁" (U+2581), SentencePiece's spelling of a space. */
#define SPM_SPACE "\xE2\x96\x81"

static kiln_status oom(void) { return kiln__fail(KILN_ERR_OUT_OF_MEMORY, "tokenizer: out of memory"); }

/* ---- names ---- */

/* GGUF names of the pre-tokenizers; the first of each is canonical. */
static const struct {
    const char *name;
    kiln_vocab_pre pre;
} pre_names[] = {
    {"default", KILN_PRE_DEFAULT},      {"gpt-2", KILN_PRE_GPT2},
    {"phi-2", KILN_PRE_GPT2},           {"llama-bpe", KILN_PRE_LLAMA3},
    {"llama3", KILN_PRE_LLAMA3},        {"llama-v3", KILN_PRE_LLAMA3},
    {"qwen2", KILN_PRE_QWEN2},          {"deepseek-llm", KILN_PRE_DEEPSEEK_LLM},
};

bool kiln__vocab_pre_from_name(const char *name, size_t len, kiln_vocab_pre *out) {
    for (size_t i = 0; i < sizeof pre_names / sizeof pre_names[0]; i++) {
        if (strlen(pre_names[i].name) == len && memcmp(pre_names[i].name, name, len) == 0) {
            *out = pre_names[i].pre;
            return true;
        }
    }
    return false;
}

const char *kiln__vocab_pre_name(kiln_vocab_pre pre) {
    for (size_t i = 0; i < sizeof pre_names / sizeof pre_names[0]; i++)
        if (pre_names[i].pre == pre) return pre_names[i].name;
    return "unknown";
}

/* ---- hashing ---- */

/* FNV-1a over the bytes of a token text. */
static uint64_t hash_bytes(const char *s, size_t len) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)s[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

/* splitmix64's finalizer, for merge keys. */
static uint64_t hash_u64(uint64_t x) {
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ull;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebull;
    x ^= x >> 31;
    return x;
}

/* Smallest power of two >= 2 * n (at least 16): a table at most half full. */
static size_t table_size(size_t n) {
    size_t s = 16;
    while (s < 2 * n) s *= 2;
    return s;
}

/* Whether token id's text is text[0..len). */
static bool text_is(const kiln_vocab *v, int32_t id, const char *text, size_t len) {
    return v->text_len[id] == len && memcmp(v->text + v->text_off[id], text, len) == 0;
}

/* Slot where `text` is or would go in map m. */
static size_t idmap_slot(const kiln_vocab *v, const struct kiln_idmap *m, const char *text,
                         size_t len) {
    size_t i = (size_t)hash_bytes(text, len) & m->mask;
    while (m->slot[i] >= 0 && !text_is(v, m->slot[i], text, len)) i = (i + 1) & m->mask;
    return i;
}

/* A map sized for n entries, every slot empty. */
static kiln_status idmap_init(struct kiln_idmap *m, size_t n) {
    size_t size = table_size(n);
    m->slot = malloc(size * sizeof *m->slot);
    if (!m->slot) return oom();
    memset(m->slot, 0xFF, size * sizeof *m->slot); /* -1 everywhere */
    m->mask = size - 1;
    return KILN_OK;
}

/* Add token id under its text unless that text is already there. */
static void idmap_add(const kiln_vocab *v, struct kiln_idmap *m, int32_t id) {
    const char *t = v->text + v->text_off[id];
    size_t i = idmap_slot(v, m, t, v->text_len[id]);
    if (m->slot[i] < 0) m->slot[i] = id;
}

static int32_t idmap_find(const kiln_vocab *v, const struct kiln_idmap *m, const char *text,
                          size_t len) {
    if (!m->slot) return -1;
    return m->slot[idmap_slot(v, m, text, len)];
}

/* ---- creation ---- */

kiln_status kiln__vocab_new(kiln_vocab_model model, kiln_vocab_pre pre, int32_t n_tokens,
                            kiln_vocab **out) {
    *out = NULL;
    if (n_tokens < 1) return kiln__fail(KILN_ERR_INVALID_ARG, "tokenizer: vocabulary is empty");
    if ((model == KILN_VOCAB_SPM) != (pre == KILN_PRE_DEFAULT))
        return kiln__fail(KILN_ERR_UNSUPPORTED,
                          "tokenizer: pre-tokenizer '%s' does not go with %s", kiln__vocab_pre_name(pre),
                          model == KILN_VOCAB_SPM ? "SentencePiece" : "byte-level BPE");
    kiln_vocab *v = calloc(1, sizeof *v);
    if (!v) return oom();
    size_t n = (size_t)n_tokens;
    v->model = model;
    v->pre = pre;
    v->n_tokens = n_tokens;
    v->text_off = calloc(n, sizeof *v->text_off);
    v->text_len = malloc(n * sizeof *v->text_len);
    v->score = calloc(n, sizeof *v->score);
    v->type = calloc(n, sizeof *v->type);
    v->index = calloc(1, sizeof *v->index);
    if (!v->text_off || !v->text_len || !v->score || !v->type || !v->index) {
        kiln__vocab_free(v);
        return oom();
    }
    for (size_t i = 0; i < n; i++) v->text_len[i] = UINT32_MAX;
    v->bos_id = v->eos_id = v->eot_id = v->unk_id = v->pad_id = -1;
    *out = v;
    return KILN_OK;
}

void kiln__vocab_free(kiln_vocab *v) {
    if (!v) return;
    struct kiln_vocab_index *x = v->index;
    if (x) {
        free(x->tokens.slot);
        free(x->specials.slot);
        free(x->special_lens);
        free(x->merges.slot);
        free(x->piece);
        free(x->piece_off);
        free(x->piece_len);
        kiln__pretok_free(x->pretok);
        free(x);
    }
    free(v->text);
    free(v->text_off);
    free(v->text_len);
    free(v->score);
    free(v->type);
    free(v);
}

/* Whether kiln__vocab_finalize() has been called (whatever its outcome). */
static bool finalized(const kiln_vocab *v) { return v->index->finalize_tried; }

kiln_status kiln__vocab_set_token(kiln_vocab *v, int32_t id, const char *text, size_t len,
                                  float score, kiln_token_type type) {
    if (finalized(v) || v->index->tokens.slot)
        return kiln__fail(KILN_ERR_INVALID_ARG, "tokenizer: token %d set after the tables were built", id);
    if (id < 0 || id >= v->n_tokens)
        return kiln__fail(KILN_ERR_INVALID_ARG, "tokenizer: token id %d out of range (%d tokens)", id,
                          v->n_tokens);
    if (v->text_len[id] != UINT32_MAX)
        return kiln__fail(KILN_ERR_FORMAT, "tokenizer: token %d set twice", id);
    if (len > MAX_TOKEN_LEN)
        return kiln__fail(KILN_ERR_FORMAT, "tokenizer: token %d is %zu bytes long (most %u)", id, len,
                          MAX_TOKEN_LEN);
    if ((unsigned)type > KILN_TOKEN_BYTE)
        return kiln__fail(KILN_ERR_FORMAT, "tokenizer: token %d has unknown type %d", id, (int)type);
    if (v->text_size + len > v->text_cap) {
        size_t cap = v->text_cap ? v->text_cap : 4096;
        while (cap < v->text_size + len) cap *= 2;
        char *t = realloc(v->text, cap);
        if (!t) return oom();
        v->text = t;
        v->text_cap = cap;
    }
    if (len) memcpy(v->text + v->text_size, text, len);
    v->text_off[id] = v->text_size;
    v->text_len[id] = (uint32_t)len;
    v->text_size += len;
    v->score[id] = score;
    v->type[id] = (uint8_t)type;
    return KILN_OK;
}

/* Build the text -> id map once every token is set. */
static kiln_status build_token_map(kiln_vocab *v) {
    struct kiln_vocab_index *x = v->index;
    if (x->tokens.slot) return KILN_OK;
    for (int32_t i = 0; i < v->n_tokens; i++)
        if (v->text_len[i] == UINT32_MAX)
            return kiln__fail(KILN_ERR_FORMAT, "tokenizer: token %d was never set", i);
    kiln_status st = idmap_init(&x->tokens, (size_t)v->n_tokens);
    if (st != KILN_OK) return st;
    for (int32_t i = 0; i < v->n_tokens; i++)
        if (v->text_len[i] > 0) idmap_add(v, &x->tokens, i);
    return KILN_OK;
}

int32_t kiln__vocab_find(const kiln_vocab *v, const char *text, size_t len) {
    if (len == 0) return -1;
    return idmap_find(v, &v->index->tokens, text, len);
}

int32_t kiln__vocab_find_special(const kiln_vocab *v, const char *text, size_t len) {
    if (len == 0) return -1;
    return idmap_find(v, &v->index->specials, text, len);
}

const char *kiln__vocab_text(const kiln_vocab *v, int32_t id, size_t *len) {
    if (id < 0 || id >= v->n_tokens || v->text_len[id] == UINT32_MAX) return NULL;
    *len = v->text_len[id];
    return v->text + v->text_off[id];
}

/* ---- merges ---- */

static uint64_t merge_key(int32_t l, int32_t r) {
    return ((uint64_t)(uint32_t)(l + 1) << 32) | (uint32_t)(r + 1);
}

static size_t merge_slot(const struct kiln_merge_map *m, uint64_t key) {
    size_t i = (size_t)hash_u64(key) & m->mask;
    while (m->slot[i].key != 0 && m->slot[i].key != key) i = (i + 1) & m->mask;
    return i;
}

/* Make room for one more merge, doubling the table when half full. */
static kiln_status merge_reserve(struct kiln_merge_map *m) {
    if (m->slot && 2 * (m->count + 1) <= m->mask + 1) return KILN_OK;
    size_t size = table_size(m->count + 1);
    struct kiln_merge_slot *slots = calloc(size, sizeof *slots);
    if (!slots) return oom();
    struct kiln_merge_map grown = {slots, size - 1, m->count};
    for (size_t i = 0; m->slot && i <= m->mask; i++)
        if (m->slot[i].key) grown.slot[merge_slot(&grown, m->slot[i].key)] = m->slot[i];
    free(m->slot);
    *m = grown;
    return KILN_OK;
}

kiln_status kiln__vocab_add_merge(kiln_vocab *v, const char *merge, size_t len) {
    if (finalized(v)) return kiln__fail(KILN_ERR_INVALID_ARG, "tokenizer: merge added after finalize");
    if (v->model != KILN_VOCAB_BPE && !v->merges_ranked)
        return kiln__fail(KILN_ERR_INVALID_ARG,
                          "tokenizer: merges belong to byte-level BPE or ranked SentencePiece BPE");
    if (v->n_merges == INT32_MAX) return kiln__fail(KILN_ERR_TOO_LARGE, "tokenizer: too many merges");
    kiln_status st = build_token_map(v);
    if (st != KILN_OK) return st;
    int32_t rank = v->n_merges++;
    /* The separator is the first space after the first byte (a token text
     * never holds a space in byte-level BPE, but be lenient about a leading one). */
    const char *sp = len > 1 ? memchr(merge + 1, ' ', len - 1) : NULL;
    if (!sp) return kiln__fail(KILN_ERR_FORMAT, "tokenizer: merge %d has no space between its parts", rank);
    size_t llen = (size_t)(sp - merge), rlen = len - llen - 1;
    int32_t l = kiln__vocab_find(v, merge, llen);
    int32_t r = kiln__vocab_find(v, sp + 1, rlen);
    if (l < 0 || r < 0 || llen + rlen > MAX_TOKEN_LEN) return KILN_OK; /* can never apply */
    char buf[256], *joined = llen + rlen <= sizeof buf ? buf : malloc(llen + rlen);
    if (!joined) return oom();
    memcpy(joined, merge, llen);
    memcpy(joined + llen, sp + 1, rlen);
    int32_t result = kiln__vocab_find(v, joined, llen + rlen);
    if (joined != buf) free(joined);
    if (result < 0) return KILN_OK;
    struct kiln_merge_map *m = &v->index->merges;
    if ((st = merge_reserve(m)) != KILN_OK) return st;
    uint64_t key = merge_key(l, r);
    size_t i = merge_slot(m, key);
    if (m->slot[i].key) return KILN_OK; /* a repeated merge keeps its first (lower) rank */
    m->slot[i] = (struct kiln_merge_slot){key, rank, result};
    m->count++;
    return KILN_OK;
}

int32_t kiln__vocab_merge(const kiln_vocab *v, int32_t l, int32_t r, int32_t *rank) {
    const struct kiln_merge_map *m = &v->index->merges;
    if (!m->slot) return -1;
    const struct kiln_merge_slot *s = &m->slot[merge_slot(m, merge_key(l, r))];
    if (!s->key) return -1;
    *rank = s->rank;
    return s->result;
}

/* ---- finalize ---- */

/* Whether a token of this type is matched in raw text before the model runs. */
static bool is_special_type(uint8_t t) {
    return t == KILN_TOKEN_CONTROL || t == KILN_TOKEN_UNKNOWN || t == KILN_TOKEN_USER_DEFINED;
}

static int cmp_size_desc(const void *a, const void *b) {
    size_t x = *(const size_t *)a, y = *(const size_t *)b;
    return x < y ? 1 : x > y ? -1 : 0;
}

/* The special-token map, the distinct lengths of their texts and their
 * first bytes. */
static kiln_status build_specials(kiln_vocab *v) {
    struct kiln_vocab_index *x = v->index;
    size_t n = 0;
    for (int32_t i = 0; i < v->n_tokens; i++)
        if (is_special_type(v->type[i]) && v->text_len[i] > 0) n++;
    if (n == 0) return KILN_OK;
    kiln_status st = idmap_init(&x->specials, n);
    if (st != KILN_OK) return st;
    x->special_lens = malloc(n * sizeof *x->special_lens);
    if (!x->special_lens) return oom();
    for (int32_t i = 0; i < v->n_tokens; i++) {
        if (!is_special_type(v->type[i]) || v->text_len[i] == 0) continue;
        idmap_add(v, &x->specials, i);
        x->special_lens[x->n_special_lens++] = v->text_len[i];
        uint8_t b = (uint8_t)v->text[v->text_off[i]];
        x->special_first[b >> 3] |= (uint8_t)(1u << (b & 7));
    }
    qsort(x->special_lens, x->n_special_lens, sizeof *x->special_lens, cmp_size_desc);
    size_t k = 0; /* keep each length once */
    for (size_t i = 0; i < x->n_special_lens; i++)
        if (k == 0 || x->special_lens[k - 1] != x->special_lens[i]) x->special_lens[k++] = x->special_lens[i];
    x->n_special_lens = k;
    return KILN_OK;
}

/* The value of a hexadecimal digit, or -1. */
static int hex_digit(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Token i's decoded bytes, written to out (room for 4 * its text length). */
static size_t decode_piece(const kiln_vocab *v, int32_t i, char *out) {
    const char *t = v->text + v->text_off[i];
    size_t len = v->text_len[i], n = 0;
    switch ((kiln_token_type)v->type[i]) {
    case KILN_TOKEN_CONTROL:
    case KILN_TOKEN_UNKNOWN:
        return 0; /* rendered only on request, from the text */
    case KILN_TOKEN_USER_DEFINED:
        memcpy(out, t, len); /* raw text, as it was matched */
        return len;
    case KILN_TOKEN_BYTE: {
        int hi = len == 6 ? hex_digit(t[3]) : -1, lo = len == 6 ? hex_digit(t[4]) : -1;
        if (hi >= 0 && lo >= 0 && memcmp(t, "<0x", 3) == 0 && t[5] == '>') {
            out[0] = (char)(hi * 16 + lo);
            return 1;
        }
        memcpy(out, t, len); /* not of the <0xNN> form: keep it as text */
        return len;
    }
    case KILN_TOKEN_UNDEFINED:
    case KILN_TOKEN_NORMAL:
    case KILN_TOKEN_UNUSED:
        break;
    }
    if (v->model == KILN_VOCAB_SPM) {
        /* '▁' back to a space. */
        for (size_t j = 0; j < len;) {
            if (len - j >= 3 && memcmp(t + j, SPM_SPACE, 3) == 0) {
                out[n++] = ' ';
                j += 3;
            } else {
                out[n++] = t[j++];
            }
        }
        return n;
    }
    /* Byte-level: each character of GPT-2's alphabet back to its byte; any
     * other character (or ill-formed byte) is kept as it is. */
    for (size_t j = 0; j < len;) {
        size_t cl;
        uint32_t cp;
        int b = -1;
        if (kiln__utf8_next((const uint8_t *)t + j, len - j, &cl, &cp) == KILN_UTF8_CHAR)
            b = kiln__bytelevel_byte(cp);
        if (b >= 0) {
            out[n++] = (char)b;
        } else {
            memcpy(out + n, t + j, cl);
            n += cl;
        }
        j += cl;
    }
    return n;
}

/* Every token's decoded piece. */
static kiln_status build_pieces(kiln_vocab *v) {
    struct kiln_vocab_index *x = v->index;
    size_t n = (size_t)v->n_tokens;
    x->piece_off = malloc(n * sizeof *x->piece_off);
    x->piece_len = malloc(n * sizeof *x->piece_len);
    /* A piece is never longer than its text (bytes stand for characters of
     * at least one byte, a space for the 3-byte '▁', <0xNN> for one byte). */
    x->piece = malloc(v->text_size ? v->text_size : 1);
    if (!x->piece_off || !x->piece_len || !x->piece) return oom();
    size_t at = 0;
    for (int32_t i = 0; i < v->n_tokens; i++) {
        x->piece_off[i] = at;
        x->piece_len[i] = (uint32_t)decode_piece(v, i, x->piece + at);
        at += x->piece_len[i];
    }
    return KILN_OK;
}

/* Whether no piece that merges may produce (see spm.c) holds a '▁' right
 * after another character. Ranked merges may produce a token of any type. */
static bool spm_words_independent(const kiln_vocab *v) {
    for (int32_t i = 0; i < v->n_tokens; i++) {
        uint8_t t = v->type[i];
        if (!v->merges_ranked && t != KILN_TOKEN_NORMAL && t != KILN_TOKEN_UNDEFINED &&
            t != KILN_TOKEN_USER_DEFINED && t != KILN_TOKEN_UNUSED)
            continue;
        const char *s = v->text + v->text_off[i];
        size_t len = v->text_len[i];
        for (size_t k = 1; k + 3 <= len; k++)
            if (memcmp(s + k, SPM_SPACE, 3) == 0 && !(k >= 3 && memcmp(s + k - 3, SPM_SPACE, 3) == 0))
                return false;
    }
    return true;
}

/* byte_token: which token stands for each single byte. */
static void build_byte_tokens(kiln_vocab *v) {
    struct kiln_vocab_index *x = v->index;
    for (int b = 0; b < 256; b++) {
        char s[8];
        size_t len;
        if (v->model == KILN_VOCAB_SPM) {
            len = (size_t)snprintf(s, sizeof s, "<0x%02X>", b);
        } else {
            len = kiln__utf8_encode(kiln__bytelevel_cp((uint8_t)b), s);
        }
        x->byte_token[b] = kiln__vocab_find(v, s, len);
        if (v->model == KILN_VOCAB_SPM && x->byte_token[b] >= 0 &&
            v->type[x->byte_token[b]] != KILN_TOKEN_BYTE)
            x->byte_token[b] = -1; /* a normal token that happens to read <0xNN> */
    }
}

kiln_status kiln__vocab_finalize(kiln_vocab *v) {
    if (finalized(v)) return kiln__fail(KILN_ERR_INVALID_ARG, "tokenizer: vocabulary finalized twice");
    v->index->finalize_tried = true;
    const struct {
        const char *name;
        int32_t id;
    } ids[] = {{"bos", v->bos_id}, {"eos", v->eos_id}, {"eot", v->eot_id}, {"unknown", v->unk_id},
               {"padding", v->pad_id}};
    for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++)
        if (ids[i].id < -1 || ids[i].id >= v->n_tokens)
            return kiln__fail(KILN_ERR_FORMAT, "tokenizer: %s token id %d out of range (%d tokens)",
                              ids[i].name, ids[i].id, v->n_tokens);
    kiln_status st = build_token_map(v);
    if (st == KILN_OK) st = build_specials(v);
    if (st == KILN_OK) st = build_pieces(v);
    if (st == KILN_OK && v->model == KILN_VOCAB_BPE) st = kiln__pretok_new(v->pre, &v->index->pretok);
    if (st != KILN_OK) return st; /* the vocabulary is good only for kiln__vocab_free() */
    build_byte_tokens(v);
    v->index->spm_words = v->model == KILN_VOCAB_SPM && spm_words_independent(v);
    v->index->ready = true;
    return KILN_OK;
}
