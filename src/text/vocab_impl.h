/* src/text/vocab_impl.h - the lookup tables of a finalized vocabulary
 * (internal to src/text: the tokenizer files read them, nothing else should).
 *
 * Hash tables use open addressing with linear probing over a power-of-two
 * number of slots, at most half full.
 */
#ifndef KILN_TEXT_VOCAB_IMPL_H
#define KILN_TEXT_VOCAB_IMPL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "text/pretok.h"
#include "text/vocab.h"

/* A set of token ids keyed by their text. */
struct kiln_idmap {
    int32_t *slot; /* token id, or -1 for an empty slot */
    size_t mask;   /* number of slots - 1 */
};

/* One BPE merge: (left id, right id) -> (rank, id of the merged token). */
struct kiln_merge_slot {
    uint64_t key;   /* (left+1) << 32 | (right+1); 0 = empty slot */
    int32_t rank;   /* lower ranks merge first */
    int32_t result; /* token id of left's text followed by right's */
};

/* The merges of a BPE vocabulary. */
struct kiln_merge_map {
    struct kiln_merge_slot *slot; /* the table (NULL while empty) */
    size_t mask;                  /* number of slots - 1 */
    size_t count;                 /* merges stored */
};

/* Everything kiln__vocab_finalize() derives from the tokens. */
struct kiln_vocab_index {
    struct kiln_idmap tokens;   /* every token with a nonempty text, lowest id wins;
                                   built by the first merge or by finalize */
    struct kiln_idmap specials; /* CONTROL, UNKNOWN and USER_DEFINED tokens by text */
    size_t *special_lens;       /* the distinct lengths of their texts, longest first */
    size_t n_special_lens;      /* entries in special_lens */
    uint8_t special_first[32];  /* bit b: some special text starts with byte b */
    struct kiln_merge_map merges; /* BPE merges */
    int32_t byte_token[256];    /* SPM: the <0xNN> token of each byte; BPE: the token of
                                   the byte's GPT-2 character; -1 where there is none */
    char *piece;                /* every token's decoded bytes back to back */
    size_t *piece_off;          /* [n_tokens] where token i's piece starts */
    uint32_t *piece_len;        /* [n_tokens] its length (0 for control and unknown) */
    kiln_pretok *pretok;        /* BPE: the compiled pre-tokenizer; NULL for SPM */
    bool spm_words;             /* SPM: no mergeable piece holds a '▁' right after another
                                   character, so no merge crosses into a '▁' that follows
                                   another character, and the text can be merged word by
                                   word (much faster than all at once; same result) */
    bool finalize_tried;        /* kiln__vocab_finalize() was called */
    bool ready;                 /* ... and succeeded: the vocabulary is read-only */
};

/* Id of the merge of tokens l and r, its rank in *rank; -1 if none. */
int32_t kiln__vocab_merge(const kiln_vocab *v, int32_t l, int32_t r, int32_t *rank);

/* Id of the special token whose text is text[0..len), or -1. */
int32_t kiln__vocab_find_special(const kiln_vocab *v, const char *text, size_t len);

#endif /* KILN_TEXT_VOCAB_IMPL_H */
