/* src/text/clip_clean.c - text cleanup before CLIP BPE (see clip_clean.h).
 *
 * The text is worked on as an array of code points; each step reads one
 * array and writes another. References: ftfy 6 (fix_text with its default
 * configuration), Python's html.unescape and str.lower, and the regex
 * module's \s, which simple_tokenizer.py uses.
 */
#include "text/clip_clean.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "core/error.h"
#include "text/utf8.h"

/* A growable array of code points. */
typedef struct cpbuf {
    uint32_t *v; /* the code points */
    size_t n;    /* used */
    size_t cap;  /* allocated */
} cpbuf;

static kiln_status oom(void) { return kiln__fail(KILN_ERR_OUT_OF_MEMORY, "clip tokenizer: out of memory"); }

/* Make room for `extra` more code points. */
static kiln_status cp_reserve(cpbuf *b, size_t extra) {
    if (b->n + extra <= b->cap) return KILN_OK;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < b->n + extra) cap *= 2;
    uint32_t *v = realloc(b->v, cap * sizeof *v);
    if (!v) return oom();
    b->v = v;
    b->cap = cap;
    return KILN_OK;
}

static kiln_status cp_push(cpbuf *b, uint32_t c) {
    kiln_status st = cp_reserve(b, 1);
    if (st == KILN_OK) b->v[b->n++] = c;
    return st;
}

static kiln_status cp_append(cpbuf *b, const uint32_t *c, size_t n) {
    if (n == 0) return KILN_OK;
    kiln_status st = cp_reserve(b, n);
    if (st != KILN_OK) return st;
    memcpy(b->v + b->n, c, n * sizeof *c);
    b->n += n;
    return KILN_OK;
}

/* Swap two buffers' contents (the output of a step becomes the next input). */
static void cp_swap(cpbuf *a, cpbuf *b) {
    cpbuf t = *a;
    *a = *b;
    *b = t;
}

/* ---- character classes and tables ---- */

/* Windows-1252 for 0x80..0x9F; the five bytes it leaves undefined keep
 * their code point (ftfy's "sloppy-windows-1252", and html.unescape's
 * table of invalid numeric references). */
static const uint16_t cp1252_c1[32] = {
    0x20AC, 0x0081, 0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021,
    0x02C6, 0x2030, 0x0160, 0x2039, 0x0152, 0x008D, 0x017D, 0x008F,
    0x0090, 0x2018, 0x2019, 0x201C, 0x201D, 0x2022, 0x2013, 0x2014,
    0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0x009D, 0x017E, 0x0178,
};

/* Unicode White_Space (the regex module's \s for text; U+001C..U+001F,
 * which Python's str.isspace adds, cannot survive ftfy's control-character
 * removal). */
static bool is_space(uint32_t c) {
    return (c >= 0x09 && c <= 0x0D) || c == 0x20 || c == 0x85 || c == 0xA0 || c == 0x1680 ||
           (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F ||
           c == 0x205F || c == 0x3000;
}

/* The characters ftfy's remove_control_chars deletes. */
static bool is_removed_control(uint32_t c) {
    return c <= 0x08 || c == 0x0B || (c >= 0x0E && c <= 0x1F) || c == 0x7F ||
           (c >= 0x206A && c <= 0x206F) || c == 0xFEFF || (c >= 0xFFF9 && c <= 0xFFFC);
}

static bool is_ascii_alnum(uint32_t c) {
    return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

static bool is_hex(uint32_t c) {
    return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'F') || (c >= 'a' && c <= 'f');
}

static uint32_t hex_value(uint32_t c) {
    return c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10;
}

/* ---- HTML references ---- */

/* What html.unescape makes of the numeric reference `num` (`big`: it did
 * not fit): one character in *out (return 1) or nothing (return 0). */
static int numeric_ref(uint64_t num, bool big, uint32_t *out) {
    if (big || num > 0x10FFFF) {
        *out = 0xFFFD;
        return 1;
    }
    if (num == 0) {
        *out = 0xFFFD;
        return 1;
    }
    if (num == 0x0D) {
        *out = '\r';
        return 1;
    }
    if (num >= 0x80 && num <= 0x9F) {
        *out = cp1252_c1[num - 0x80];
        return 1;
    }
    if (num >= 0xD800 && num <= 0xDFFF) {
        *out = 0xFFFD;
        return 1;
    }
    /* html.unescape's _invalid_codepoints are dropped. */
    if ((num >= 0x01 && num <= 0x08) || num == 0x0B || (num >= 0x0E && num <= 0x1F) ||
        (num >= 0x7F && num <= 0x9F) || (num >= 0xFDD0 && num <= 0xFDEF) ||
        (num & 0xFFFE) == 0xFFFE)
        return 0;
    *out = (uint32_t)num;
    return 1;
}

/* Parse the digits s[0..n) (all valid in `base`) as a number. */
static uint64_t parse_number(const uint32_t *s, size_t n, unsigned base, bool *big) {
    uint64_t v = 0;
    *big = false;
    for (size_t i = 0; i < n; i++) {
        v = v * base + (base == 16 ? hex_value(s[i]) : s[i] - '0');
        if (v > 0x10FFFF) *big = true; /* stays "too big" whatever follows */
        if (*big) v = 0x110000;
    }
    return v;
}

/* The name s[0..n) as ASCII in buf (room for 33 bytes); false when it holds
 * a non-ASCII character or is too long. */
static bool ascii_name(const uint32_t *s, size_t n, char *buf) {
    if (n > 32) return false;
    for (size_t i = 0; i < n; i++) {
        if (s[i] >= 0x80) return false;
        buf[i] = (char)s[i];
    }
    return true;
}

/* Whether html.unescape leaves "&NAME;" alone: NAME is no entity and no
 * prefix of it (two or more characters) is one that needs no ';'. */
static bool html_keeps(const char *name, size_t n) {
    if (kiln__html_entity(name, n)) return false;
    for (size_t x = n; x >= 2; x--)
        if (kiln__html_entity_legacy(name, x)) return false;
    return true;
}

/* ftfy's unescape_html: every "&name;" or "&#...;" (1..24 ASCII letters
 * and digits) that is a known entity, an all-caps form of a lower-case one,
 * or a numeric reference that html.unescape decodes through its ';'. */
static kiln_status ftfy_unescape(const cpbuf *in, cpbuf *out) {
    out->n = 0;
    kiln_status st = KILN_OK;
    for (size_t i = 0; i < in->n && st == KILN_OK; i++) {
        const uint32_t *s = in->v;
        if (s[i] != '&') {
            st = cp_push(out, s[i]);
            continue;
        }
        size_t j = i + 1;
        bool hash = j < in->n && s[j] == '#';
        if (hash) j++;
        size_t m = 0;
        while (j + m < in->n && is_ascii_alnum(s[j + m]) && m <= 24) m++;
        if (m < 1 || m > 24 || j + m >= in->n || s[j + m] != ';') {
            st = cp_push(out, '&');
            continue;
        }
        char name[33];
        (void)ascii_name(s + j, m, name); /* ASCII by construction */
        uint32_t c[2];
        int nc = -1; /* characters of the replacement; -1 keeps the text */
        if (!hash) {
            if ((c[0] = kiln__html_entity(name, m)) != 0) {
                nc = 1;
            } else {
                /* "&EACUTE;" reads as "É" when "eacute" is a lower-case name and
                 * html.unescape would leave "&EACUTE;" alone. */
                char lower[33];
                bool caps = false, ok = true;
                for (size_t k = 0; k < m; k++) {
                    if (name[k] >= 'a' && name[k] <= 'z') ok = false;
                    if (name[k] >= 'A' && name[k] <= 'Z') caps = true;
                    lower[k] = (name[k] >= 'A' && name[k] <= 'Z') ? (char)(name[k] + 32) : name[k];
                }
                uint32_t lc = ok && caps ? kiln__html_entity(lower, m) : 0;
                if (lc && html_keeps(name, m)) {
                    nc = 1;
                    if (lc == 0xDF) { /* ß upper-cases to "SS" */
                        c[0] = c[1] = 'S';
                        nc = 2;
                    } else {
                        c[0] = (uint32_t)utf8proc_toupper((utf8proc_int32_t)lc);
                    }
                }
            }
        } else {
            bool big = false;
            if (name[0] >= '0' && name[0] <= '9') {
                size_t d = 0;
                while (d < m && name[d] >= '0' && name[d] <= '9') d++;
                if (d == m) nc = numeric_ref(parse_number(s + j, m, 10, &big), big, c);
            } else if ((name[0] == 'x' || name[0] == 'X') && m > 1) {
                size_t d = 1;
                while (d < m && is_hex(s[j + d])) d++;
                if (d == m) nc = numeric_ref(parse_number(s + j + 1, m - 1, 16, &big), big, c);
            }
            /* ftfy keeps the text when the result still holds the ';'. */
            if (nc == 1 && c[0] == ';') nc = -1;
        }
        if (nc < 0) {
            st = cp_push(out, '&');
            continue;
        }
        st = cp_append(out, c, (size_t)nc);
        i = j + m; /* the ';' */
    }
    return st;
}

/* Python's html.unescape. */
static kiln_status html_unescape(const cpbuf *in, cpbuf *out) {
    out->n = 0;
    kiln_status st = KILN_OK;
    const uint32_t *s = in->v;
    size_t n = in->n;
    for (size_t i = 0; i < n && st == KILN_OK;) {
        if (s[i] != '&') {
            st = cp_push(out, s[i++]);
            continue;
        }
        uint32_t c;
        bool big = false;
        if (i + 1 < n && s[i + 1] == '#') {
            size_t j = i + 2, d = 0;
            unsigned base = 10;
            if (j < n && s[j] >= '0' && s[j] <= '9') {
                while (j + d < n && s[j + d] >= '0' && s[j + d] <= '9') d++;
            } else if (j + 1 < n && (s[j] == 'x' || s[j] == 'X') && is_hex(s[j + 1])) {
                base = 16;
                j++;
                while (j + d < n && is_hex(s[j + d])) d++;
            }
            if (d == 0) { /* "&#" that starts no reference */
                st = cp_push(out, s[i++]);
                continue;
            }
            if (numeric_ref(parse_number(s + j, d, base, &big), big, &c)) st = cp_push(out, c);
            i = j + d;
            if (i < n && s[i] == ';') i++;
            continue;
        }
        /* A name: up to 32 characters other than \t \n \f space < & # ;,
         * then an optional ';'. */
        size_t j = i + 1, m = 0;
        while (j + m < n && m < 32 && s[j + m] != '\t' && s[j + m] != '\n' && s[j + m] != '\f' &&
               s[j + m] != ' ' && s[j + m] != '<' && s[j + m] != '&' && s[j + m] != '#' &&
               s[j + m] != ';')
            m++;
        bool semi = j + m < n && s[j + m] == ';';
        /* Names are ASCII: take the leading ASCII part of the run. */
        char name[33];
        size_t a = 0;
        while (a < m && s[j + a] < 0x80) {
            name[a] = (char)s[j + a];
            a++;
        }
        if (m > 0 && a == m) {
            if (semi && (c = kiln__html_entity(name, m)) != 0) {
                st = cp_push(out, c);
                i = j + m + 1;
                continue;
            }
            if (!semi && kiln__html_entity_legacy(name, m)) {
                st = cp_push(out, kiln__html_entity(name, m));
                i = j + m;
                continue;
            }
        }
        /* Else the longest proper prefix of the match (run and ';') that is a
         * name usable without ';' (at least two characters); the rest of the
         * match stays as text. */
        size_t x = semi ? m : (m > 0 ? m - 1 : 0);
        if (x > a) x = a;
        while (x >= 2 && !kiln__html_entity_legacy(name, x)) x--;
        if (x >= 2) {
            st = cp_push(out, kiln__html_entity(name, x));
            i = j + x;
            continue;
        }
        st = cp_push(out, s[i++]);
    }
    return st;
}

/* ---- ftfy's character fixes ---- */

/* ftfy's fix_latin_ligatures: the replacement of c (written to r, at most 3
 * code points) and its length, or 0 when c is not a ligature. */
static size_t ligature(uint32_t c, uint32_t r[3]) {
    static const struct {
        uint16_t c;      /* the ligature or digraph */
        uint16_t r[3];   /* what it stands for (0-terminated when shorter) */
    } map[] = {
        {0x0132, {'I', 'J', 0}},      {0x0133, {'i', 'j', 0}},      {0x0149, {0x02BC, 'n', 0}},
        {0x01F1, {'D', 'Z', 0}},      {0x01F2, {'D', 'z', 0}},      {0x01F3, {'d', 'z', 0}},
        {0x01C4, {'D', 0x017D, 0}},   {0x01C5, {'D', 0x017E, 0}},   {0x01C6, {'d', 0x017E, 0}},
        {0x01C7, {'L', 'J', 0}},      {0x01C8, {'L', 'j', 0}},      {0x01C9, {'l', 'j', 0}},
        {0x01CA, {'N', 'J', 0}},      {0x01CB, {'N', 'j', 0}},      {0x01CC, {'n', 'j', 0}},
        {0xFB00, {'f', 'f', 0}},      {0xFB01, {'f', 'i', 0}},      {0xFB02, {'f', 'l', 0}},
        {0xFB03, {'f', 'f', 'i'}},    {0xFB04, {'f', 'f', 'l'}},    {0xFB05, {0x017F, 't', 0}},
        {0xFB06, {'s', 't', 0}},
    };
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++) {
        if (map[i].c != c) continue;
        size_t n = 0;
        while (n < 3 && map[i].r[n]) {
            r[n] = map[i].r[n];
            n++;
        }
        return n;
    }
    return 0;
}

/* NFKC of one character (ftfy's fix_character_width for U+FF01..U+FFEF);
 * writes up to 4 code points to r and returns how many (0 on failure). */
static size_t nfkc_char(uint32_t c, uint32_t r[4]) {
    utf8proc_int32_t buf[4];
    utf8proc_ssize_t n = utf8proc_decompose_char((utf8proc_int32_t)c, buf, 4, UTF8PROC_DECOMPOSE | UTF8PROC_COMPAT, NULL);
    if (n < 1 || n > 4) return 0;
    n = utf8proc_normalize_utf32(buf, n, UTF8PROC_COMPOSE | UTF8PROC_STABLE);
    if (n < 1) return 0;
    for (utf8proc_ssize_t i = 0; i < n; i++) r[i] = (uint32_t)buf[i];
    return (size_t)n;
}

/* ftfy's per-character fixes, in its order: C1 controls as Windows-1252,
 * ligatures, character width, curly quotes. */
static kiln_status char_fixes(const cpbuf *in, cpbuf *out) {
    out->n = 0;
    kiln_status st = KILN_OK;
    for (size_t i = 0; i < in->n && st == KILN_OK; i++) {
        uint32_t c = in->v[i];
        if (c >= 0x80 && c <= 0x9F) c = cp1252_c1[c - 0x80];
        uint32_t r[4];
        size_t n = ligature(c, r);
        if (n == 0) {
            r[0] = c;
            n = 1;
            if (c == 0x3000) {
                r[0] = ' ';
            } else if (c >= 0xFF01 && c <= 0xFFEF) {
                size_t k = nfkc_char(c, r);
                if (k == 0) r[0] = c;
                n = k ? k : 1;
            }
        }
        for (size_t k = 0; k < n; k++) {
            if (r[k] == 0x02BC || (r[k] >= 0x2018 && r[k] <= 0x201B)) r[k] = '\'';
            else if (r[k] >= 0x201C && r[k] <= 0x201F) r[k] = '"';
        }
        st = cp_append(out, r, n);
    }
    return st;
}

/* ftfy's remove_terminal_escapes (ESC '[' digits-and-';' letter) and
 * remove_control_chars. */
static kiln_status remove_controls(const cpbuf *in, cpbuf *out) {
    out->n = 0;
    kiln_status st = KILN_OK;
    const uint32_t *s = in->v;
    for (size_t i = 0; i < in->n && st == KILN_OK; i++) {
        if (s[i] == 0x1B && i + 1 < in->n && s[i + 1] == '[') {
            size_t j = i + 2;
            while (j < in->n && ((s[j] >= '0' && s[j] <= '9') || s[j] == ';')) j++;
            if (j < in->n && ((s[j] >= 'a' && s[j] <= 'z') || (s[j] >= 'A' && s[j] <= 'Z'))) {
                i = j;
                continue;
            }
        }
        if (!is_removed_control(s[i])) st = cp_push(out, s[i]);
    }
    return st;
}

/* Unicode NFC. Text below U+0300 is already in NFC. */
static kiln_status nfc(const cpbuf *in, cpbuf *out) {
    out->n = 0;
    bool simple = true;
    for (size_t i = 0; i < in->n && simple; i++) simple = in->v[i] < 0x300;
    if (simple) return cp_append(out, in->v, in->n);
    char *u = malloc(in->n * 4 + 1);
    if (!u) return oom();
    size_t len = 0;
    for (size_t i = 0; i < in->n; i++) len += kiln__utf8_encode(in->v[i], u + len);
    utf8proc_uint8_t *norm = NULL;
    utf8proc_ssize_t nl = utf8proc_map((const utf8proc_uint8_t *)u, (utf8proc_ssize_t)len, &norm,
                                       UTF8PROC_STABLE | UTF8PROC_COMPOSE);
    free(u);
    if (nl < 0) {
        if (nl == UTF8PROC_ERROR_NOMEM) return oom();
        return kiln__fail(KILN_ERR_INTERNAL, "clip tokenizer: NFC failed: %s", utf8proc_errmsg(nl));
    }
    kiln_status st = cp_reserve(out, (size_t)nl);
    for (utf8proc_ssize_t i = 0; i < nl && st == KILN_OK;) {
        utf8proc_int32_t c;
        utf8proc_ssize_t k = utf8proc_iterate(norm + i, nl - i, &c);
        if (k <= 0) break; /* cannot happen: utf8proc wrote valid UTF-8 */
        out->v[out->n++] = (uint32_t)c;
        i += k;
    }
    free(norm);
    return st;
}

/* ftfy's fix_text on one segment: the fixes again and again until the
 * segment stops changing. `seg` holds the segment and receives the result;
 * a and b are scratch. */
static kiln_status ftfy_segment(cpbuf *seg, bool unescape, cpbuf *a, cpbuf *b) {
    for (int round = 0; round < 64; round++) { /* ftfy has no bound; real text settles in 2 */
        kiln_status st = KILN_OK;
        a->n = 0;
        if ((st = cp_append(a, seg->v, seg->n)) != KILN_OK) return st;
        if (unescape) {
            if ((st = ftfy_unescape(a, b)) != KILN_OK) return st;
            cp_swap(a, b);
        }
        if ((st = char_fixes(a, b)) != KILN_OK) return st;
        if ((st = remove_controls(b, a)) != KILN_OK) return st;
        if ((st = nfc(a, b)) != KILN_OK) return st;
        bool same = b->n == seg->n && memcmp(b->v, seg->v, b->n * sizeof *b->v) == 0;
        cp_swap(seg, b);
        if (same) break;
    }
    return KILN_OK;
}

/* ftfy.fix_text: line by line (each line with its '\n'); HTML unescaping
 * stops for good at the first line that holds a '<'. */
static kiln_status ftfy_fix(const cpbuf *in, cpbuf *out) {
    out->n = 0;
    cpbuf seg = {0}, a = {0}, b = {0};
    kiln_status st = KILN_OK;
    bool unescape = true;
    for (size_t pos = 0; pos < in->n && st == KILN_OK;) {
        size_t end = pos;
        while (end < in->n && in->v[end] != '\n') end++;
        if (end < in->n) end++;
        seg.n = 0;
        for (size_t i = pos; i < end && unescape; i++)
            if (in->v[i] == '<') unescape = false;
        st = cp_append(&seg, in->v + pos, end - pos);
        if (st == KILN_OK) st = ftfy_segment(&seg, unescape, &a, &b);
        if (st == KILN_OK) st = cp_append(out, seg.v, seg.n);
        pos = end;
    }
    free(seg.v);
    free(a.v);
    free(b.v);
    return st;
}

/* ---- lower-casing ---- */

/* Unicode's Cased property, approximately: letters with a case, and
 * anything with a case mapping. */
static bool is_cased(uint32_t c) {
    utf8proc_category_t cat = utf8proc_category((utf8proc_int32_t)c);
    return cat == UTF8PROC_CATEGORY_LU || cat == UTF8PROC_CATEGORY_LL ||
           cat == UTF8PROC_CATEGORY_LT || utf8proc_tolower((utf8proc_int32_t)c) != (utf8proc_int32_t)c ||
           utf8proc_toupper((utf8proc_int32_t)c) != (utf8proc_int32_t)c;
}

/* Unicode's Case_Ignorable property: marks, format characters, modifier
 * letters and symbols, and the apostrophes, periods and colons of
 * Word_Break MidLetter, MidNumLet and Single_Quote. */
static bool is_case_ignorable(uint32_t c) {
    switch (c) {
    case 0x27: case 0x2E: case 0x3A: case 0xB7: case 0x387: case 0x55F: case 0x5F4:
    case 0x2018: case 0x2019: case 0x2024: case 0x2027: case 0xFE13: case 0xFE52:
    case 0xFE55: case 0xFF07: case 0xFF0E: case 0xFF1A:
        return true;
    }
    utf8proc_category_t cat = utf8proc_category((utf8proc_int32_t)c);
    return cat == UTF8PROC_CATEGORY_MN || cat == UTF8PROC_CATEGORY_ME ||
           cat == UTF8PROC_CATEGORY_CF || cat == UTF8PROC_CATEGORY_LM || cat == UTF8PROC_CATEGORY_SK;
}

/* Whether the capital sigma at s[i] is final: a cased letter before it and
 * none after it (case-ignorable characters skipped both ways). */
static bool final_sigma(const uint32_t *s, size_t n, size_t i) {
    size_t j = i;
    while (j > 0 && is_case_ignorable(s[j - 1])) j--;
    if (j == 0 || !is_cased(s[j - 1])) return false;
    j = i + 1;
    while (j < n && is_case_ignorable(s[j])) j++;
    return j == n || !is_cased(s[j]);
}

/* Whitespace runs to one space, ends stripped, then lower-cased; written
 * as UTF-8. */
static kiln_status finish(const cpbuf *in, char **out, size_t *out_len) {
    /* Collapse first: final_sigma looks at the collapsed text, as lower()
     * runs after whitespace_clean. */
    cpbuf t = {0};
    kiln_status st = cp_reserve(&t, in->n + 1);
    for (size_t i = 0; i < in->n && st == KILN_OK; i++) {
        if (!is_space(in->v[i])) {
            t.v[t.n++] = in->v[i];
            continue;
        }
        while (i + 1 < in->n && is_space(in->v[i + 1])) i++;
        if (t.n > 0 && i + 1 < in->n) t.v[t.n++] = ' ';
    }
    char *u = st == KILN_OK ? malloc(t.n * 8 + 1) : NULL; /* <= 2 code points of 4 bytes each */
    if (st == KILN_OK && !u) st = oom();
    size_t len = 0;
    for (size_t i = 0; i < t.n && st == KILN_OK; i++) {
        uint32_t c = t.v[i];
        if (c == 0x130) { /* İ lower-cases to i + combining dot above */
            len += kiln__utf8_encode('i', u + len);
            c = 0x307;
        } else if (c == 0x3A3) {
            c = final_sigma(t.v, t.n, i) ? 0x3C2 : 0x3C3;
        } else {
            c = (uint32_t)utf8proc_tolower((utf8proc_int32_t)c);
        }
        len += kiln__utf8_encode(c, u + len);
    }
    free(t.v);
    if (st != KILN_OK) {
        free(u);
        return st;
    }
    u[len] = '\0';
    *out = u;
    *out_len = len;
    return KILN_OK;
}

kiln_status kiln__clip_clean(const char *text, size_t len, char **out, size_t *out_len) {
    *out = NULL;
    *out_len = 0;
    cpbuf a = {0}, b = {0};
    /* 1. Code points; ill-formed bytes become U+FFFD. */
    kiln_status st = cp_reserve(&a, len + 1);
    for (size_t i = 0; i < len && st == KILN_OK;) {
        size_t n;
        uint32_t cp;
        if (kiln__utf8_next((const uint8_t *)text + i, len - i, &n, &cp) != KILN_UTF8_CHAR) cp = 0xFFFD;
        a.v[a.n++] = cp;
        i += n;
    }
    /* 2. ftfy; 3. html.unescape twice; 4-5. whitespace and case. */
    if (st == KILN_OK) st = ftfy_fix(&a, &b);
    if (st == KILN_OK) st = html_unescape(&b, &a);
    if (st == KILN_OK) st = html_unescape(&a, &b);
    if (st == KILN_OK) st = finish(&b, out, out_len);
    free(a.v);
    free(b.v);
    return st;
}
