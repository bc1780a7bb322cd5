/* src/text/clip_impl.h - the CLIP tokenizer's struct, shared by its files
 * (clip_vocab.c loads it, clip_tokenizer.c and clip_chunks.c use it);
 * internal to src/text.
 */
#ifndef KILN_TEXT_CLIP_IMPL_H
#define KILN_TEXT_CLIP_IMPL_H

#include <stdint.h>

#include "text/clip_tokenizer.h"
#include "text/vocab.h"

struct kiln_clip_tok {
    kiln_vocab *vocab;      /* token texts (GPT-2's byte alphabet, "</w>" on word-final
                               tokens) and the ranked merges; its pre-tokenizer is unused */
    int32_t byte_id[256];   /* token of byte b's character, a symbol inside a word (-1: none) */
    int32_t end_id[256];    /* token of that character + "</w>", a word's last symbol */
    int32_t bos_id;         /* <|startoftext|> */
    int32_t eos_id;         /* <|endoftext|>; also what unknown symbols become, as
                               CLIPTokenizer's unk_token */
    int32_t pad_id;         /* the folder's padding token, else eos_id */
    int32_t comma_id;       /* ",</w>", or -1 */
    void *split;            /* CLIP's word regex (a pcre2_code, compiled at load) */
};

/* Fill the fields that derive from a finalized vocabulary: byte_id, end_id,
 * comma_id and the regex (bos_id, eos_id and pad_id are the caller's). */
kiln_status kiln__clip_tok_prepare(struct kiln_clip_tok *t);

/* Release the regex of kiln__clip_tok_prepare(); NULL is fine. */
void kiln__clip_regex_free(void *split);

#endif /* KILN_TEXT_CLIP_IMPL_H */
