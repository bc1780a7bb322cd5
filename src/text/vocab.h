/* src/text/vocab.h - an LLM tokenizer's vocabulary in memory (internal).
 *
 * One struct for both kinds of LLM tokenizer that GGUF files describe:
 *   - SentencePiece BPE (tokenizer.ggml.model "llama": Llama 1/2, Mistral):
 *     token texts with scores, byte-fallback tokens <0x00>..<0xFF>, '▁' for
 *     spaces and a '▁' prefix;
 *   - byte-level BPE (tokenizer.ggml.model "gpt2": GPT-2, Phi-2, Llama 3,
 *     Qwen2, DeepSeek): token texts over GPT-2's byte-to-character alphabet,
 *     a ranked merge list and a regex pre-tokenizer named by
 *     tokenizer.ggml.pre.
 * It does not depend on GGUF: vocab_gguf.c fills it from a file, the tests
 * fill it by hand.
 *
 * Building: kiln__vocab_new(), then kiln__vocab_set_token() for every id,
 * then (byte-level BPE) kiln__vocab_add_merge() for each merge in rank order,
 * then set the special ids and flags in the struct, then
 * kiln__vocab_finalize(), which checks them and builds the lookup tables,
 * the decoded pieces and the pre-tokenizer. A finalized vocabulary is
 * read-only and may be shared by threads; tokenizer.h works on it.
 */
#ifndef KILN_TEXT_VOCAB_H
#define KILN_TEXT_VOCAB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kiln/status.h"

/* The tokenizer algorithm (tokenizer.ggml.model). */
typedef enum kiln_vocab_model {
    KILN_VOCAB_SPM, /* "llama": SentencePiece BPE, merges chosen by score */
    KILN_VOCAB_BPE, /* "gpt2": byte-level BPE, merges chosen by rank */
} kiln_vocab_model;

/* The pre-tokenizer (tokenizer.ggml.pre); docs/tokenizers.md lists the
 * regexes. SPM vocabularies use DEFAULT (no pre-tokenizer), byte-level BPE
 * ones any other. */
typedef enum kiln_vocab_pre {
    KILN_PRE_DEFAULT,      /* "default": none (SentencePiece) */
    KILN_PRE_GPT2,         /* "gpt-2", "phi-2": GPT-2's regex */
    KILN_PRE_LLAMA3,       /* "llama-bpe", "llama3", "llama-v3": Llama 3's regex,
                              and a word that is a whole token skips the merges */
    KILN_PRE_QWEN2,        /* "qwen2": NFC, then Llama 3's regex with single digits */
    KILN_PRE_DEEPSEEK_LLM, /* "deepseek-llm": a sequence of six regexes */
} kiln_vocab_pre;

/* SPM: which fragments (the text's start, and what follows each added
 * token) get the '▁' prefix when add_space_prefix is set; Hugging Face's
 * tokenizer.json spells SentencePiece's dummy prefix in several ways. */
typedef enum kiln_spm_prefix {
    KILN_SPM_PREFIX_EACH,      /* every fragment (SentencePiece; Hugging Face's
                                  Prepend("▁") normalizer) */
    KILN_SPM_PREFIX_METASPACE, /* every fragment that does not already start with a space
                                  or a '▁' (Hugging Face's Metaspace, prepend_scheme "always") */
    KILN_SPM_PREFIX_FIRST,     /* as METASPACE, but only the fragment at the very start of
                                  the text (Metaspace, prepend_scheme "first") */
} kiln_spm_prefix;

/* Token types, numbered as in GGUF's tokenizer.ggml.token_type (and
 * llama.cpp's llama_token_type). */
typedef enum kiln_token_type {
    KILN_TOKEN_UNDEFINED = 0,    /* no type given; handled as NORMAL */
    KILN_TOKEN_NORMAL = 1,       /* an ordinary piece of text */
    KILN_TOKEN_UNKNOWN = 2,      /* <unk> */
    KILN_TOKEN_CONTROL = 3,      /* <s>, </s>, <|eot_id|>: special, rendered only on request */
    KILN_TOKEN_USER_DEFINED = 4, /* an added token, matched in raw text before BPE */
    KILN_TOKEN_UNUSED = 5,       /* reserved; handled as NORMAL */
    KILN_TOKEN_BYTE = 6,         /* SentencePiece byte fallback <0xNN> */
} kiln_token_type;

struct kiln_vocab_index; /* lookup tables, pieces, pre-tokenizer (vocab_impl.h) */

/* A vocabulary. Fill the special ids and flags before finalizing; read
 * everything else through the functions below. */
typedef struct kiln_vocab {
    kiln_vocab_model model;     /* the algorithm */
    kiln_vocab_pre pre;         /* the pre-tokenizer (DEFAULT for SPM) */
    int32_t n_tokens;           /* ids are 0 .. n_tokens-1 */
    char *text;                 /* every token's text back to back, not NUL-terminated */
    size_t text_size;           /* bytes used in `text` */
    size_t text_cap;            /* bytes allocated for `text` */
    size_t *text_off;           /* [n_tokens] where token i's text starts in `text` */
    uint32_t *text_len;         /* [n_tokens] its length; UINT32_MAX while not yet set */
    float *score;               /* [n_tokens] SentencePiece score (0 for BPE) */
    uint8_t *type;              /* [n_tokens] a kiln_token_type */
    int32_t n_merges;           /* merges added so far (the next merge's rank) */

    int32_t bos_id;             /* beginning of sequence, or -1 */
    int32_t eos_id;             /* end of sequence, or -1 */
    int32_t eot_id;             /* end of turn (chat), or -1 */
    int32_t unk_id;             /* unknown piece, or -1 */
    int32_t pad_id;             /* padding, or -1 */
    bool add_bos;               /* kiln__tokenize(add_special) puts bos_id first */
    bool add_eos;               /* ... and eos_id last */
    bool add_space_prefix;      /* SPM: a '▁' goes before the text (and after each special token) */
    kiln_spm_prefix spm_prefix; /* SPM: which fragments get that '▁' (EACH unless set) */
    bool spm_split;             /* SPM: each '▁' starts a word that merges never leave
                                   (Hugging Face's Metaspace with split) */
    bool merges_ranked;         /* SPM: of the adjacent pairs that a merge given to
                                   kiln__vocab_add_merge joins, the one of lowest rank merges
                                   first (Hugging Face's BPE model), instead of the pair whose
                                   piece has the highest score; set before adding merges */

    struct kiln_vocab_index *index; /* built by kiln__vocab_finalize(); NULL before */
} kiln_vocab;

/* A vocabulary of `n_tokens` (>= 1) unset tokens, no special ids (-1), all
 * flags false. SPM needs pre DEFAULT, BPE any other pre. Release with
 * kiln__vocab_free(). */
kiln_status kiln__vocab_new(kiln_vocab_model model, kiln_vocab_pre pre, int32_t n_tokens,
                            kiln_vocab **out);

/* Release a vocabulary; NULL is fine. */
void kiln__vocab_free(kiln_vocab *v);

/* Set token `id` (each id exactly once, before finalizing): its text (len
 * bytes, copied; for BPE in GPT-2's byte alphabet, except user-defined and
 * control tokens, which are raw text), score and type. */
kiln_status kiln__vocab_set_token(kiln_vocab *v, int32_t id, const char *text, size_t len,
                                  float score, kiln_token_type type);

/* Add the next BPE merge (rank = merges added before it), written as in GGUF
 * and merges.txt: the left and right token texts separated by one space
 * (byte-level BPE, or SPM with merges_ranked set).
 * Every token must be set first. A merge whose parts or result are not tokens
 * can never apply: it is counted and otherwise ignored, as llama.cpp does. */
kiln_status kiln__vocab_add_merge(kiln_vocab *v, const char *merge, size_t len);

/* Check the special ids (each -1 or a token id) and every token set; build
 * the lookup tables, decoded pieces and pre-tokenizer. After this the
 * vocabulary is read-only. Call it once; after a failure only
 * kiln__vocab_free() is left to do. */
kiln_status kiln__vocab_finalize(kiln_vocab *v);

/* Token id whose text is exactly text[0..len), or -1 (the lowest id when
 * several share a text). Needs every token set. */
int32_t kiln__vocab_find(const kiln_vocab *v, const char *text, size_t len);

/* Token `id`'s stored text and its length; NULL for an id out of range. */
const char *kiln__vocab_text(const kiln_vocab *v, int32_t id, size_t *len);

/* The pre-tokenizer named `name` (len bytes) in GGUF; false when unknown. */
bool kiln__vocab_pre_from_name(const char *name, size_t len, kiln_vocab_pre *out);
/* The canonical GGUF name of a pre-tokenizer. Static string. */
const char *kiln__vocab_pre_name(kiln_vocab_pre pre);

#endif /* KILN_TEXT_VOCAB_H */
