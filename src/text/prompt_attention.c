/* src/text/prompt_attention.c - AUTOMATIC1111's emphasis syntax (see
 * prompt_attention.h).
 *
 * A1111 scans the prompt with one regex whose alternatives are, in order:
 * the escapes \( \) \[ \] \\, a lone '\', '(', '[', ':' + spaces + a number
 * ([+-]?[.0-9]+) + spaces + ')', ')', ']', a run of anything but \ ( ) [ ] :,
 * and ':' alone. The scanner below takes the same tokens by hand. Python's
 * \s and \d are Unicode here (white space, decimal digits of any script),
 * and so are they below.
 */
#include "text/prompt_attention.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "core/error.h"
#include "text/utf8.h"

static kiln_status oom(void) { return kiln__fail(KILN_ERR_OUT_OF_MEMORY, "prompt: out of memory"); }

/* ---- characters ---- */

/* The code point at s[i] (U+FFFD for ill-formed bytes) and its length. */
static uint32_t char_at(const char *s, size_t n, size_t i, size_t *len) {
    uint32_t cp;
    if (kiln__utf8_next((const uint8_t *)s + i, n - i, len, &cp) != KILN_UTF8_CHAR) cp = 0xFFFD;
    return cp;
}

/* Python's str.isspace (its re module's \s). */
static bool py_space(uint32_t c) {
    return (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20) || c == 0x85 || c == 0xA0 ||
           c == 0x1680 || (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 ||
           c == 0x202F || c == 0x205F || c == 0x3000;
}

static bool is_digit(uint32_t c) {
    return utf8proc_category((utf8proc_int32_t)c) == UTF8PROC_CATEGORY_ND;
}

/* The value of a decimal digit: digits come in runs of ten starting at a
 * zero, so it is the distance from the start of its run, modulo 10. */
static int digit_value(uint32_t c) {
    uint32_t start = c;
    while (start > 0 && is_digit(start - 1)) start--;
    return (int)((c - start) % 10);
}

/* Python's \w: letters, digits (any numeric character) and '_'. */
static bool py_word(uint32_t c) {
    if (c == '_') return true;
    switch (utf8proc_category((utf8proc_int32_t)c)) {
    case UTF8PROC_CATEGORY_LU: case UTF8PROC_CATEGORY_LL: case UTF8PROC_CATEGORY_LT:
    case UTF8PROC_CATEGORY_LM: case UTF8PROC_CATEGORY_LO: case UTF8PROC_CATEGORY_ND:
    case UTF8PROC_CATEGORY_NL: case UTF8PROC_CATEGORY_NO:
        return true;
    case UTF8PROC_CATEGORY_CN: case UTF8PROC_CATEGORY_MN: case UTF8PROC_CATEGORY_MC:
    case UTF8PROC_CATEGORY_ME: case UTF8PROC_CATEGORY_PC: case UTF8PROC_CATEGORY_PD:
    case UTF8PROC_CATEGORY_PS: case UTF8PROC_CATEGORY_PE: case UTF8PROC_CATEGORY_PI:
    case UTF8PROC_CATEGORY_PF: case UTF8PROC_CATEGORY_PO: case UTF8PROC_CATEGORY_SM:
    case UTF8PROC_CATEGORY_SC: case UTF8PROC_CATEGORY_SK: case UTF8PROC_CATEGORY_SO:
    case UTF8PROC_CATEGORY_ZS: case UTF8PROC_CATEGORY_ZL: case UTF8PROC_CATEGORY_ZP:
    case UTF8PROC_CATEGORY_CC: case UTF8PROC_CATEGORY_CF: case UTF8PROC_CATEGORY_CS:
    case UTF8PROC_CATEGORY_CO:
        return false;
    }
    return false;
}

/* ---- the fragment list ---- */

static kiln_status push_part(kiln_attn_parts *p, const char *text, size_t len, double weight) {
    if (p->n == p->cap) {
        size_t cap = p->cap ? p->cap * 2 : 16;
        kiln_attn_part *v = realloc(p->v, cap * sizeof *v);
        if (!v) return oom();
        p->v = v;
        p->cap = cap;
    }
    char *t = malloc(len + 1);
    if (!t) return oom();
    if (len) memcpy(t, text, len);
    t[len] = '\0';
    p->v[p->n++] = (kiln_attn_part){t, len, weight};
    return KILN_OK;
}

void kiln__attn_parts_free(kiln_attn_parts *p) {
    for (size_t i = 0; i < p->n; i++) free(p->v[i].text);
    free(p->v);
    p->v = NULL;
    p->n = p->cap = 0;
}

kiln_status kiln__attn_parts_plain(const char *text, size_t len, kiln_attn_parts *out) {
    kiln__attn_parts_free(out);
    return push_part(out, text, len, 1.0);
}

bool kiln__attn_part_is_break(const kiln_attn_part *p) {
    return p->weight == -1.0 && p->len == 5 && memcmp(p->text, "BREAK", 5) == 0;
}

/* Multiply the weights of fragments from..n-1. */
static void multiply_range(kiln_attn_parts *p, size_t from, double m) {
    for (size_t i = from; i < p->n; i++) p->v[i].weight *= m;
}

/* ---- BREAK ---- */

/* The character that ends right before s[q] (q > 0); *at receives where
 * it starts. Ill-formed bytes count as U+FFFD, one byte each. */
static uint32_t char_before(const char *s, size_t n, size_t q, size_t *at) {
    size_t b = q - 1, len;
    for (int k = 0; k < 3 && b > 0 && ((unsigned char)s[b] & 0xC0) == 0x80; k++) b--;
    uint32_t c = char_at(s, n, b, &len);
    if (b + len != q) {
        b = q - 1;
        c = 0xFFFD;
    }
    *at = b;
    return c;
}

/* Where the next BREAK separator (\s*\bBREAK\b\s*) in s[0..n) starts and
 * ends; false when there is none. */
static bool find_break(const char *s, size_t n, size_t *start, size_t *end) {
    for (size_t q = 0; q + 5 <= n; q++) {
        if (memcmp(s + q, "BREAK", 5) != 0) continue;
        size_t at, len;
        /* \b on both sides: no word character touches it. */
        if (q > 0 && py_word(char_before(s, n, q, &at))) continue;
        if (q + 5 < n && py_word(char_at(s, n, q + 5, &len))) continue;
        /* The leftmost match starts at the white space before it. */
        size_t a = q;
        while (a > 0 && py_space(char_before(s, n, a, &at))) a = at;
        size_t e = q + 5;
        while (e < n && py_space(char_at(s, n, e, &len))) e += len;
        *start = a;
        *end = e;
        return true;
    }
    return false;
}

/* A run of plain text: its pieces between BREAKs, a BREAK fragment between
 * each two. */
static kiln_status add_text(kiln_attn_parts *p, const char *s, size_t n) {
    size_t a, e;
    kiln_status st;
    while (find_break(s, n, &a, &e)) {
        if ((st = push_part(p, s, a, 1.0)) != KILN_OK) return st;
        if ((st = push_part(p, "BREAK", 5, -1.0)) != KILN_OK) return st;
        s += e;
        n -= e;
    }
    return push_part(p, s, n, 1.0);
}

/* ---- weights ---- */

/* Python's float() of sign + the digits and dots s[0..n) (decimal digits of
 * any script). False when it is not a number ("", ".", "1.2.3"). Exact
 * (correctly rounded) for up to 15 significant digits and 22 decimals,
 * which covers any weight a person types. */
static bool parse_weight(const char *s, size_t n, bool negative, double *out) {
    static const double p10[23] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                   1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                   1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};
    uint64_t mant = 0; /* the first 15 significant digits */
    int nsig = 0;      /* significant digits in mant */
    int exp10 = 0;     /* the value is mant * 10^exp10 */
    int dots = 0, digits = 0;
    bool dropped = false; /* digits past the 15th were ignored */
    for (size_t i = 0; i < n;) {
        size_t len;
        uint32_t c = char_at(s, n, i, &len);
        i += len;
        if (c == '.') {
            if (++dots > 1) return false;
            continue;
        }
        int d = digit_value(c);
        digits++;
        if (nsig < 15) {
            mant = mant * 10 + (uint64_t)d;
            if (mant) nsig++; /* leading zeros are not significant */
            if (dots) exp10--;
        } else {
            dropped = true;
            if (!dots) exp10++;
        }
    }
    if (digits == 0) return false;
    double v = (double)mant;
    if (!dropped && exp10 <= 0 && exp10 >= -22) {
        v /= p10[-exp10]; /* both exact: one correctly rounded division */
    } else {
        for (int k = 0; k < exp10; k++) v *= 10.0;
        for (int k = exp10; k < 0; k++) v /= 10.0;
    }
    *out = negative ? -v : v;
    return true;
}

/* ---- the parser ---- */

/* The characters that end a run of plain text: \ ( ) [ ] and ':'. */
static bool is_syntax(char c) {
    return c == '\\' || c == '(' || c == ')' || c == '[' || c == ']' || c == ':';
}

/* Whether s[i..n) starts with ':' + spaces + [+-]? + [.digits]+ + spaces +
 * ')'. On success the number (sign excluded) is s[*num..*num_end), *neg
 * says whether it was negative and *end is just past the ')'. */
static bool weight_token(const char *s, size_t n, size_t i, size_t *num, size_t *num_end, bool *neg,
                         size_t *end) {
    size_t len, j = i + 1;
    uint32_t c;
    while (j < n && py_space(char_at(s, n, j, &len))) j += len;
    *neg = false;
    if (j < n && (s[j] == '+' || s[j] == '-')) *neg = s[j++] == '-';
    *num = j;
    while (j < n && ((c = char_at(s, n, j, &len)) == '.' || is_digit(c))) j += len;
    if (j == *num) return false;
    *num_end = j;
    while (j < n && py_space(char_at(s, n, j, &len))) j += len;
    if (j >= n || s[j] != ')') return false;
    *end = j + 1;
    return true;
}

/* A stack of fragment indices (where each open bracket started). */
typedef struct idx_stack {
    size_t *v;  /* the indices */
    size_t n;   /* in use */
    size_t cap; /* allocated */
} idx_stack;

static kiln_status stack_push(idx_stack *s, size_t x) {
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 16;
        size_t *v = realloc(s->v, cap * sizeof *v);
        if (!v) return oom();
        s->v = v;
        s->cap = cap;
    }
    s->v[s->n++] = x;
    return KILN_OK;
}

/* Join neighbours of equal weight (A1111's last step). */
static kiln_status merge_equal(kiln_attn_parts *p) {
    size_t w = 0;
    for (size_t i = 0; i < p->n; i++) {
        if (w > 0 && p->v[w - 1].weight == p->v[i].weight) {
            kiln_attn_part *a = &p->v[w - 1];
            char *t = realloc(a->text, a->len + p->v[i].len + 1);
            if (!t) {
                /* Keep the list consistent for kiln__attn_parts_free. */
                for (size_t k = i; k < p->n; k++) p->v[w++] = p->v[k];
                p->n = w;
                return oom();
            }
            memcpy(t + a->len, p->v[i].text, p->v[i].len + 1);
            a->text = t;
            a->len += p->v[i].len;
            free(p->v[i].text);
        } else {
            p->v[w++] = p->v[i];
        }
    }
    p->n = w;
    return KILN_OK;
}

kiln_status kiln__prompt_parse_attention(const char *s, size_t n, kiln_attn_parts *out) {
    kiln__attn_parts_free(out);
    idx_stack round = {0}, square = {0};
    kiln_status st = KILN_OK;
    const double round_mult = 1.1, square_mult = 1 / 1.1;
    for (size_t i = 0; i < n && st == KILN_OK;) {
        char c = s[i];
        size_t num, num_end, end;
        bool neg;
        if (c == '\\') {
            /* An escape gives its character; a lone backslash gives nothing. */
            bool esc = i + 1 < n && is_syntax(s[i + 1]) && s[i + 1] != ':';
            st = push_part(out, s + i + 1, esc ? 1 : 0, 1.0);
            i += esc ? 2 : 1;
        } else if (c == '(') {
            st = stack_push(&round, out->n);
            i++;
        } else if (c == '[') {
            st = stack_push(&square, out->n);
            i++;
        } else if (c == ':' && weight_token(s, n, i, &num, &num_end, &neg, &end) && round.n > 0) {
            double w;
            if (!parse_weight(s + num, num_end - num, neg, &w)) {
                st = kiln__fail(KILN_ERR_INVALID_ARG, "prompt: emphasis weight '%.*s' is not a number",
                                (int)(num_end - num), s + num);
                break;
            }
            multiply_range(out, round.v[--round.n], w);
            i = end;
        } else if (c == ')' && round.n > 0) {
            multiply_range(out, round.v[--round.n], round_mult);
            i++;
        } else if (c == ']' && square.n > 0) {
            multiply_range(out, square.v[--square.n], square_mult);
            i++;
        } else {
            /* Plain text: the weight token with nothing open, an unmatched
             * bracket, a ':' alone, or a run without \ ( ) [ ] :. */
            size_t j = i + 1;
            if (c == ':' && weight_token(s, n, i, &num, &num_end, &neg, &end)) j = end;
            else if (c != ')' && c != ']' && c != ':')
                while (j < n && !is_syntax(s[j])) j++;
            st = add_text(out, s + i, j - i);
            i = j;
        }
    }
    /* Brackets still open apply to the rest, round ones first. */
    for (size_t k = 0; k < round.n && st == KILN_OK; k++) multiply_range(out, round.v[k], round_mult);
    for (size_t k = 0; k < square.n && st == KILN_OK; k++) multiply_range(out, square.v[k], square_mult);
    free(round.v);
    free(square.v);
    if (st == KILN_OK && out->n == 0) st = push_part(out, "", 0, 1.0);
    if (st == KILN_OK) st = merge_equal(out);
    if (st != KILN_OK) kiln__attn_parts_free(out);
    return st;
}
