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
    size_t off;   /* first byte in the word */
    size_t len;   /* bytes; 0 once merged into its left neighbour */
    int32_t id;   /* BPE: its token id (-1 if the vocabulary lacks it); SPM: unused */
    int32_t prev; /* index of the symbol before, or -1 */
    int32_t next; /* index of the symbol after, or -1 */
};

/* A candidate merge of two adjacent symbols. */
struct kiln_tok_pair {
    double prio;    /* SPM: minus the merged piece's score; BPE: the merge rank */
    int32_t left;   /* index of the left symbol */
    int32_t right;  /* index of the right symbol */
    size_t len;     /* their combined length when the pair was made */
    int32_t result; /* BPE: the merged token id; SPM: unused */
};

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

/* The heap: push a pair, pop the lowest (prio, left) pair; pop returns 0
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
