/* src/text/clip_tokenizer.h - the CLIP BPE tokenizer of Stable Diffusion's
 * text encoders (internal API of the text layer).
 *
 * Mirrors openai/CLIP's simple_tokenizer.py (and open_clip's copy of it,
 * which SD 2.x uses; Hugging Face's CLIPTokenizer follows it too):
 *   1. text cleanup (clip_clean.h): a subset of ftfy.fix_text, HTML
 *      unescaping, whitespace collapsed to single spaces and stripped,
 *      lower-casing;
 *   2. CLIP's split regex cuts the text into words: <|startoftext|>,
 *      <|endoftext|>, the contractions 's 't 're 've 'm 'll 'd, runs of
 *      letters, single digits, runs of other non-space characters; the
 *      spaces between them are dropped;
 *   3. each word's UTF-8 bytes become symbols in GPT-2's byte alphabet
 *      (bytelevel.h), the last one with "</w>" appended, and BPE merges them
 *      (lowest merge rank first, the leftmost on ties) into token ids.
 * The vocabulary comes from the CLIP merges file (bpe_simple_vocab_16e6.txt
 * or its .gz; the vocabulary is derived from the merges) or from a diffusers
 * tokenizer/ folder (vocab.json + merges.txt). docs/image-foundations.md
 * lists what was verified and where kiln differs from ftfy.
 *
 * A tokenizer is read-only once loaded: threads may share it.
 */
#ifndef KILN_TEXT_CLIP_TOKENIZER_H
#define KILN_TEXT_CLIP_TOKENIZER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kiln/status.h"

/* The sequence length of SD's text encoders: start + 75 tokens + end. */
#define KILN_CLIP_SEQ_LEN 77

/* Tokens of prompt text per 77-token sequence. */
#define KILN_CLIP_CHUNK_TOKENS (KILN_CLIP_SEQ_LEN - 2)

/* Merges that CLIP uses from its merges file (49152 - 256 - 2); later lines
 * are ignored, as in simple_tokenizer.py and Hugging Face. */
#define KILN_CLIP_MAX_MERGES 48894

/* Longest text (bytes) the tokenizer accepts. */
#define KILN_CLIP_MAX_TEXT ((size_t)1 << 24)

/* A loaded CLIP tokenizer. */
typedef struct kiln_clip_tok kiln_clip_tok;

/* Load the CLIP merges file at `path`: gzip-compressed (bpe_simple_vocab_
 * 16e6.txt.gz, recognized by its magic bytes) or plain text. A missing file
 * gives KILN_ERR_NOT_FOUND with a message that suggests --clip-vocab.
 * *out receives the tokenizer; release it with kiln__clip_tok_free(). */
kiln_status kiln__clip_tok_load_merges(const char *path, kiln_clip_tok **out);

/* The same from the merges file's text in memory (already decompressed):
 * a header line, then one merge per line ("left right"). Used by the loader,
 * the tests and the fuzzer. */
kiln_status kiln__clip_tok_from_merges(const char *text, size_t len, kiln_clip_tok **out);

/* Load a diffusers/Hugging Face tokenizer folder: `dir`/vocab.json (token
 * -> id), `dir`/merges.txt ("#version" header, then merges) and, when
 * present, special_tokens_map.json or tokenizer_config.json for the padding
 * token (kiln__clip_tok_pad_id). KILN_ERR_NOT_FOUND when a file is missing. */
kiln_status kiln__clip_tok_load_folder(const char *dir, kiln_clip_tok **out);

/* Release a tokenizer; NULL is fine. */
void kiln__clip_tok_free(kiln_clip_tok *t);

/* Number of tokens in the vocabulary (49408 for CLIP). */
int32_t kiln__clip_tok_n_tokens(const kiln_clip_tok *t);
/* Id of <|startoftext|> (49406) and <|endoftext|> (49407). */
int32_t kiln__clip_tok_bos_id(const kiln_clip_tok *t);
int32_t kiln__clip_tok_eos_id(const kiln_clip_tok *t);
/* The padding id a tokenizer folder names (SD 2.x's "!" = 0), else the
 * end-of-text id (what SD 1.x's CLIPTokenizer pads with). */
int32_t kiln__clip_tok_pad_id(const kiln_clip_tok *t);
/* Id of the token ",</w>" (A1111 uses it to break long prompts), or -1. */
int32_t kiln__clip_tok_comma_id(const kiln_clip_tok *t);

/* Token ids of `len` bytes of text, without start/end tokens, padding or
 * truncation (what simple_tokenizer's encode() returns). Bytes that are not
 * UTF-8 count as U+FFFD. Up to `cap` ids go to out[]; *n_out receives how
 * many the text makes; when that exceeds cap, the first cap are written and
 * KILN_ERR_TOO_LARGE is returned. */
kiln_status kiln__clip_encode(const kiln_clip_tok *t, const char *text, size_t len, int32_t *out,
                              size_t cap, size_t *n_out);

/* One text-encoder input, as diffusers' pipelines make it
 * (tokenizer(text, padding="max_length", max_length=77, truncation=True)):
 * out[0] = <|startoftext|>, then the text's first 75 ids, then
 * <|endoftext|>, then pad_id up to 77 (pass kiln__clip_tok_pad_id(), or 0 for
 * OpenCLIP's own tokenizer). *n_text (may be NULL) receives the number of
 * ids the whole text makes, so callers can warn about truncation. */
kiln_status kiln__clip_encode_padded(const kiln_clip_tok *t, const char *text, size_t len,
                                     int32_t pad_id, int32_t out[KILN_CLIP_SEQ_LEN],
                                     size_t *n_text);

/* ---- AUTOMATIC1111 prompts: emphasis weights and 75-token chunks ---- */

/* Options of kiln__clip_encode_weighted. */
typedef struct kiln_clip_weight_params {
    bool emphasis;        /* parse (word), [word], (word:1.5), \( and BREAK as A1111's
                             prompt_parser.parse_prompt_attention does; false: the
                             prompt is plain text of weight 1 */
    int comma_backtrack;  /* A1111's comma_padding_backtrack (its default 20): when a
                             chunk fills up and a comma lies within this many tokens of
                             its end, the tokens after the comma move to the next
                             chunk; 0 disables it */
    int32_t pad_id;       /* id that fills each chunk after the end token
                             (A1111: <|endoftext|> for SD 1.x, 0 for SD 2.x) */
    int max_chunks;       /* most chunks accepted (KILN_ERR_TOO_LARGE beyond); 0 = no
                             limit */
} kiln_clip_weight_params;

/* Defaults: emphasis on, comma_backtrack 20, pad_id -1 (meaning the
 * tokenizer's kiln__clip_tok_pad_id()), max_chunks 0. */
kiln_clip_weight_params kiln__clip_weight_default_params(void);

/* A prompt as A1111 feeds it to the text encoder: n_chunks sequences of 77
 * ids, each <|startoftext|>, 75 prompt tokens (padded with <|endoftext|>),
 * <|endoftext|>, with each token's emphasis weight (1.0 for start, end and
 * padding). A1111 then writes pad_id over everything after the first end
 * token of a chunk (a no-op for SD 1.x); `ids` already holds that. */
typedef struct kiln_clip_chunks {
    int32_t *ids;     /* [n_chunks * 77] token ids (owned) */
    float *weights;   /* [n_chunks * 77] emphasis multipliers (owned) */
    int n_chunks;     /* sequences (>= 1; an empty prompt gives one) */
    int token_count;  /* A1111's token count: 75 per full chunk plus the tokens of the
                         last one, as its UI shows it */
} kiln_clip_chunks;

/* Tokenize an A1111 prompt into chunks (release with kiln__clip_chunks_free).
 * Each text fragment of the parsed prompt is tokenized on its own, as A1111
 * does (so "(red)dish" is "red" + "dish", not "reddish"). */
kiln_status kiln__clip_encode_weighted(const kiln_clip_tok *t, const char *text, size_t len,
                                       const kiln_clip_weight_params *p, kiln_clip_chunks *out);

/* Release the arrays of a kiln_clip_chunks (the struct is the caller's). */
void kiln__clip_chunks_free(kiln_clip_chunks *c);

#endif /* KILN_TEXT_CLIP_TOKENIZER_H */
