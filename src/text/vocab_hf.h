/* src/text/vocab_hf.h - a tokenizer vocabulary from a Hugging Face
 * tokenizer.json (and tokenizer_config.json) (internal).
 *
 * Reads BPE models of the two kinds kiln tokenizes (vocab.h): byte-level BPE
 * (a ByteLevel pre-tokenizer, alone or after the Split regexes of Llama 3,
 * Qwen2 or DeepSeek LLM) and SentencePiece-style BPE (spaces as '▁' through
 * a Prepend/Replace normalizer or a Metaspace pre-tokenizer, byte fallback;
 * merged by merge rank as Hugging Face does). Every component that kiln
 * cannot reproduce exactly is refused with KILN_ERR_UNSUPPORTED and a message
 * naming it; a file that Hugging Face itself would refuse (a merge of tokens
 * outside the vocabulary, an id given twice, ...) is KILN_ERR_FORMAT.
 * docs/tokenizers.md lists what is read and how.
 */
#ifndef KILN_TEXT_VOCAB_HF_H
#define KILN_TEXT_VOCAB_HF_H

#include <jansson.h>

#include "kiln/status.h"
#include "text/vocab.h"

/* The vocabulary of the tokenizer.json at `tokenizer_json_path`, with the
 * special tokens and add_bos_token / add_eos_token of the
 * tokenizer_config.json at `tokenizer_config_json_path` (NULL: none). On
 * success *out is a finalized vocabulary (kiln__vocab_free it). */
kiln_status kiln__vocab_load_hf(const char *tokenizer_json_path, const char *tokenizer_config_json_path,
                                kiln_vocab **out);

/* The same from decoded JSON documents (config may be NULL). */
kiln_status kiln__vocab_from_hf_json(const json_t *tokenizer, const json_t *config, kiln_vocab **out);

#endif /* KILN_TEXT_VOCAB_HF_H */
