/* src/text/tok_impl.h - what tokenize.c shares with the two BPE models
 * (spm.c, bpe.c); internal to src/text.
 *
 * Both models merge a linked list of symbols, popping candidate pairs from a
 * binary heap by priority (lowest first; ties go to the leftmost pair).
 * Entries are not removed when a merge makes them stale: a popped entry is
 * checked against the symbols it names and skipped if they have changed.
 */
#ifndef KILN_TEXT_TOK_IMPL_H
#define KILN_TEXT_TOK_IMPL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "kiln/status.h"
#include "text/pretok.h"
#include "text/vocab.h"

/* Where token ids go: the caller's array, counting past its end. */
struct kiln_tok_out {
    int32_t *ids; /* the caller's array */
    size_t cap;   /* its size */
    size_t n;     /* ids produced so far (may exceed cap) */
};

static inline void kiln__tok_emit(struct kiln_tok_out *o, int32_t id) {
    if (o->n < o->cap) o->ids[o->n] = id;
    o->n++;
}

/* A symbol of the word being merged. */
struct kiln_tok_sym {
    uint32_t off; /* first byte in the word */
    uint32_t len; /* bytes; 0 once merged into its left neighbour */
    int32_t id;   /* BPE: its token id (-1 if the vocabulary lacks it); SPM: unused */
    int32_t prev; /* index of the symbol before, or -1 */
    int32_t next; /* index of the symbol after, or -1 */
};

/* A candidate merge of two adjacent symbols, 16 bytes so that the heap
 * stays compact (it holds about one entry per byte of a word). */
struct kiln_tok_pair {
    uint64_t key;  /* priority << 32 | index of the left symbol: the heap pops the
                      smallest, so equal priorities go leftmost first */
    int32_t right; /* index of the right symbol */
    uint32_t len;  /* their combined length when the pair was made */
};

/* A pair's key: priority (lower merges first) and left symbol index. */
static inline uint64_t kiln__tok_key(uint32_t prio, int32_t left) {
    return ((uint64_t)prio << 32) | (uint32_t)left;
}

/* The left symbol index of a pair. */
static inline int32_t kiln__tok_left(const struct kiln_tok_pair *p) { return (int32_t)(uint32_t)p->key; }

/* A priority that orders scores from highest to lowest (SPM merges the best
 * score first): the float's bits made monotonic as unsigned, then inverted. */
static inline uint32_t kiln__tok_score_prio(float score) {
    uint32_t u;
    memcpy(&u, &score, sizeof u);
    u = (u & 0x80000000u) ? ~u : (u | 0x80000000u);
    return ~u;
}

/* Working memory of one kiln__tokenize call, grown as needed. */
struct kiln_tok_scratch {
    struct kiln_tok_sym *sym;   /* symbols of the current word */
    size_t sym_cap;             /* symbols allocated */
    struct kiln_tok_pair *heap; /* candidate pairs, a binary min-heap */
    size_t heap_n;              /* pairs in the heap */
    size_t heap_cap;            /* pairs allocated */
    char *buf;                  /* SPM: the escaped text; BPE (Llama 3): a word spelled
                                   in GPT-2's alphabet */
    size_t buf_cap;             /* bytes allocated for buf */
    kiln_spans words;           /* BPE: the words of the current fragment */
    kiln_spans tmp;             /* BPE: scratch for the pre-tokenizer */
};

/* Make room for n symbols / n bytes of buf. */
kiln_status kiln__tok_reserve_sym(struct kiln_tok_scratch *s, size_t n);
kiln_status kiln__tok_reserve_buf(struct kiln_tok_scratch *s, size_t n);

/* The heap: push a pair, pop the one with the smallest key; pop returns 0
 * when the heap is empty. */
kiln_status kiln__tok_heap_push(struct kiln_tok_scratch *s, struct kiln_tok_pair p);
int kiln__tok_heap_pop(struct kiln_tok_scratch *s, struct kiln_tok_pair *p);

/* SentencePiece BPE on one fragment between added tokens: a '▁' first when
 * space_prefix, every space as '▁', then merges by score and byte fallback. */
kiln_status kiln__spm_encode(const kiln_vocab *v, const char *text, size_t len, bool space_prefix,
                             struct kiln_tok_scratch *s, struct kiln_tok_out *out);

/* Byte-level BPE on one fragment between added tokens: normalization (Qwen2:
 * NFC), the pre-tokenizer, then merges by rank in each word. */
kiln_status kiln__bpe_encode(const kiln_vocab *v, const char *text, size_t len,
                             struct kiln_tok_scratch *s, struct kiln_tok_out *out);

#endif /* KILN_TEXT_TOK_IMPL_H */
