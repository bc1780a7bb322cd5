/* src/text/pretok.c - regex pre-tokenizers of byte-level BPE (see pretok.h).
 *
 * The regexes are those of the models' Hugging Face tokenizer.json files
 * (pre_tokenizer: the ByteLevel regex for GPT-2, a Split regex for Llama 3
 * and Qwen2, a Sequence of Splits for DeepSeek LLM), written for PCRE2:
 *   - Hugging Face matches with Oniguruma, whose \s is Unicode White_Space;
 *     PCRE2's \s with UCP is the same set plus U+180E (MONGOLIAN VOWEL
 *     SEPARATOR), a difference we accept;
 *   - non-ASCII characters of DeepSeek's classes are written as \x{...}
 *     escapes so that this file stays ASCII.
 */
#define PCRE2_CODE_UNIT_WIDTH 8
#include "text/pretok.h"

#include <pcre2.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"

/* Most regexes in one pre-tokenizer. */
#define MAX_REGEXES 6

struct kiln_pretok {
    int n;                         /* regexes applied in turn */
    pcre2_code *code[MAX_REGEXES]; /* compiled (and JIT-compiled where possible) */
};

/* GPT-2 (the ByteLevel pre-tokenizer's regex; Phi-2 uses it too). */
static const char *const re_gpt2[] = {
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+",
};

/* Llama 3 (tiktoken's cl100k_base pattern): case-insensitive contractions,
 * words with one leading non-letter, numbers of up to three digits. */
static const char *const re_llama3[] = {
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}"
    "| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
};

/* Qwen2: Llama 3's pattern with every digit on its own. */
static const char *const re_qwen2[] = {
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}"
    "| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
};

/* DeepSeek LLM: newlines alone; runs of cased letters (an explicit list of
 * Latin, Greek, Cyrillic, Armenian, Georgian, Cherokee, ... ranges) with an
 * optional leading space; runs of ASCII and full-width punctuation, curly
 * quotes and CJK punctuation with an optional leading space; trailing
 * whitespace; runs of CJK ideographs and Hangul (U+0800..U+4E00 included);
 * runs of digits. */
static const char *const re_deepseek_llm[] = {
    "[\\r\\n]",
    "\\s?[A-Za-z\\x{B5}\\x{C0}-\\x{D6}\\x{D8}-\\x{F6}\\x{F8}-\\x{1BA}\\x{1BC}-\\x{1BF}"
    "\\x{1C4}-\\x{293}\\x{295}-\\x{2AF}\\x{370}-\\x{373}\\x{376}\\x{377}\\x{37B}-\\x{37D}"
    "\\x{37F}\\x{386}\\x{388}-\\x{38A}\\x{38C}\\x{38E}-\\x{3A1}\\x{3A3}-\\x{3F5}"
    "\\x{3F7}-\\x{481}\\x{48A}-\\x{52F}\\x{531}-\\x{556}\\x{10A0}-\\x{10C5}"
    "\\x{13A0}-\\x{13F5}\\x{13F8}-\\x{13FD}\\x{1C90}-\\x{1CBA}\\x{1CBD}-\\x{1CBF}"
    "\\x{1D00}-\\x{1D2B}\\x{1D6B}-\\x{1D77}\\x{1D79}-\\x{1D9A}\\x{1E00}-\\x{1F15}"
    "\\x{1F18}-\\x{1F1D}\\x{1F20}-\\x{1F45}\\x{1F48}-\\x{1F4D}\\x{1F50}-\\x{1F57}"
    "\\x{1F59}\\x{1F5B}\\x{1F5D}\\x{1F5F}-\\x{1F7D}\\x{1F80}-\\x{1FB4}\\x{1FB6}-\\x{1FBC}"
    "\\x{1FBE}\\x{1FC2}-\\x{1FC4}\\x{1FC6}-\\x{1FCC}\\x{1FD0}-\\x{1FD3}\\x{1FD6}-\\x{1FDB}"
    "\\x{1FE0}-\\x{1FEC}\\x{1FF2}-\\x{1FF4}\\x{1FF6}-\\x{1FFC}\\x{2102}\\x{2107}"
    "\\x{210A}-\\x{2113}\\x{2115}\\x{2119}-\\x{211D}\\x{2124}\\x{2126}\\x{2128}"
    "\\x{212A}-\\x{212D}\\x{212F}-\\x{2134}\\x{2139}\\x{213C}-\\x{213F}\\x{2145}-\\x{2149}"
    "\\x{214E}\\x{2183}\\x{2184}\\x{2C00}-\\x{2C7B}\\x{2C7E}-\\x{2CE4}\\x{2CEB}-\\x{2CEE}"
    "\\x{2CF2}\\x{2CF3}\\x{A640}-\\x{A66D}\\x{A680}-\\x{A69B}\\x{A722}-\\x{A76F}"
    "\\x{A771}-\\x{A787}\\x{A78B}-\\x{A78E}\\x{AB70}-\\x{ABBF}\\x{FB00}-\\x{FB06}"
    "\\x{FB13}-\\x{FB17}\\x{FF21}-\\x{FF3A}\\x{FF41}-\\x{FF5A}\\x{10400}-\\x{1044F}"
    "\\x{104B0}-\\x{104D3}\\x{104D8}-\\x{104FB}\\x{10C80}-\\x{10CB2}\\x{10CC0}-\\x{10CF2}"
    "\\x{118A0}-\\x{118DF}\\x{1E900}-\\x{1E943}]+",
    "\\s?[!-/:-~\\x{FF01}-\\x{FF0F}\\x{FF1A}-\\x{FF5E}\\x{2018}-\\x{201F}\\x{3000}-\\x{3002}]+",
    "\\s+$",
    "[\\x{4E00}-\\x{9FA5}\\x{800}-\\x{4E00}\\x{AC00}-\\x{D7FF}]+",
    "\\p{N}+",
};

/* The regex list of a pre-tokenizer; *n receives its length (0 for none). */
static const char *const *regexes_of(kiln_vocab_pre pre, int *n) {
#define LIST(a) (*n = (int)(sizeof(a) / sizeof((a)[0])), (a))
    switch (pre) {
    case KILN_PRE_DEFAULT: *n = 0; return NULL;
    case KILN_PRE_GPT2: return LIST(re_gpt2);
    case KILN_PRE_LLAMA3: return LIST(re_llama3);
    case KILN_PRE_QWEN2: return LIST(re_qwen2);
    case KILN_PRE_DEEPSEEK_LLM: return LIST(re_deepseek_llm);
    }
#undef LIST
    *n = 0;
    return NULL;
}

const char *const *kiln__pretok_regexes(kiln_vocab_pre pre, int *n) { return regexes_of(pre, n); }

kiln_status kiln__pretok_new(kiln_vocab_pre pre, kiln_pretok **out) {
    *out = NULL;
    int n;
    const char *const *re = regexes_of(pre, &n);
    if (n == 0 || n > MAX_REGEXES)
        return kiln__fail(KILN_ERR_INVALID_ARG, "tokenizer: pre-tokenizer '%s' has no regex",
                          kiln__vocab_pre_name(pre));
    kiln_pretok *p = calloc(1, sizeof *p);
    if (!p) return kiln__fail(KILN_ERR_OUT_OF_MEMORY, "tokenizer: out of memory");
    for (int i = 0; i < n; i++) {
        int err;
        PCRE2_SIZE at;
        p->code[i] = pcre2_compile((PCRE2_SPTR)re[i], PCRE2_ZERO_TERMINATED,
                                   PCRE2_UTF | PCRE2_UCP | PCRE2_MATCH_INVALID_UTF, &err, &at,
                                   NULL);
        if (!p->code[i]) {
            PCRE2_UCHAR msg[160];
            pcre2_get_error_message(err, msg, sizeof msg);
            kiln__pretok_free(p);
            return kiln__fail(KILN_ERR_INTERNAL,
                              "tokenizer: regex %d of '%s' does not compile at %zu: %s", i,
                              kiln__vocab_pre_name(pre), (size_t)at, (const char *)msg);
        }
        p->n = i + 1;
        /* JIT is an optimization only: without it pcre2_match interprets. */
        (void)pcre2_jit_compile(p->code[i], PCRE2_JIT_COMPLETE);
    }
    *out = p;
    return KILN_OK;
}

void kiln__pretok_free(kiln_pretok *p) {
    if (!p) return;
    for (int i = 0; i < p->n; i++) pcre2_code_free(p->code[i]);
    free(p);
}

kiln_status kiln__spans_push(kiln_spans *s, size_t off, size_t len) {
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 64;
        kiln_span *v = realloc(s->v, cap * sizeof *v);
        if (!v) return kiln__fail(KILN_ERR_OUT_OF_MEMORY, "tokenizer: out of memory");
        s->v = v;
        s->cap = cap;
    }
    s->v[s->n].off = off;
    s->v[s->n].len = len;
    s->n++;
    return KILN_OK;
}

void kiln__spans_free(kiln_spans *s) {
    free(s->v);
    s->v = NULL;
    s->n = s->cap = 0;
}

/* Cut the word `w` of `text` with one regex, appending matches and the
 * stretches between them to `out`. */
static kiln_status split_word(const pcre2_code *code, pcre2_match_data *md, const char *text,
                              kiln_span w, kiln_spans *out) {
    PCRE2_SPTR subject = (PCRE2_SPTR)(text + w.off);
    size_t pos = 0; /* where the next search starts, relative to the word */
    kiln_status st;
    while (pos < w.len) {
        /* NOTEMPTY: none of the regexes should match an empty string, and
         * an empty match would not advance. */
        int rc = pcre2_match(code, subject, w.len, pos, PCRE2_NOTEMPTY, md, NULL);
        if (rc == PCRE2_ERROR_NOMATCH) break;
        if (rc < 0) {
            PCRE2_UCHAR msg[160];
            pcre2_get_error_message(rc, msg, sizeof msg);
            return kiln__fail(KILN_ERR_TOO_LARGE, "tokenizer: pre-tokenizer regex failed: %s",
                              (const char *)msg);
        }
        const PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
        size_t m0 = ov[0], m1 = ov[1];
        if (m0 > pos && (st = kiln__spans_push(out, w.off + pos, m0 - pos)) != KILN_OK) return st;
        if ((st = kiln__spans_push(out, w.off + m0, m1 - m0)) != KILN_OK) return st;
        pos = m1;
    }
    if (pos < w.len) return kiln__spans_push(out, w.off + pos, w.len - pos);
    return KILN_OK;
}

kiln_status kiln__pretok_split(const kiln_pretok *p, const char *text, size_t len,
                               kiln_spans *out, kiln_spans *tmp) {
    out->n = 0;
    if (len == 0) return KILN_OK;
    pcre2_match_data *md = pcre2_match_data_create(1, NULL);
    if (!md) return kiln__fail(KILN_ERR_OUT_OF_MEMORY, "tokenizer: out of memory");
    /* Regex i reads the words in `cur` and writes them to `next`; the lists
     * swap roles so that the last regex writes into `out`. */
    kiln_spans *cur = (p->n % 2 == 0) ? out : tmp;
    kiln_spans *next = (cur == out) ? tmp : out;
    cur->n = 0;
    kiln_status st = kiln__spans_push(cur, 0, len);
    for (int i = 0; i < p->n && st == KILN_OK; i++) {
        next->n = 0;
        for (size_t j = 0; j < cur->n && st == KILN_OK; j++)
            st = split_word(p->code[i], md, text, cur->v[j], next);
        kiln_spans *t = cur;
        cur = next;
        next = t;
    }
    pcre2_match_data_free(md);
    if (st != KILN_OK) out->n = 0;
    return st;
}
