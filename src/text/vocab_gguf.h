/* src/text/vocab_gguf.h - a tokenizer vocabulary from GGUF metadata (internal).
 *
 * Reads the tokenizer.ggml.* keys that llama.cpp's converter writes (model,
 * pre, tokens, scores, token_type, merges, the special ids and the
 * add_bos / add_eos / add_space_prefix flags), with llama.cpp's defaults
 * where a key is absent (docs/tokenizers.md lists them).
 */
#ifndef KILN_TEXT_VOCAB_GGUF_H
#define KILN_TEXT_VOCAB_GGUF_H

#include "formats/gguf.h"
#include "kiln/status.h"
#include "text/vocab.h"

/* A finalized vocabulary built from g's metadata (copied: g may be freed
 * afterwards). KILN_ERR_UNSUPPORTED for a tokenizer model or pre-tokenizer
 * kiln does not implement, KILN_ERR_FORMAT for missing or inconsistent keys;
 * kiln_last_error() names the key. Release with kiln__vocab_free(). */
kiln_status kiln__vocab_from_gguf(const struct kiln_gguf *g, kiln_vocab **out);

/* The same, opening the GGUF file at `path` for the time of the call. */
kiln_status kiln__vocab_load_gguf(const char *path, kiln_vocab **out);

#endif /* KILN_TEXT_VOCAB_GGUF_H */
