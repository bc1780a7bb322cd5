/* src/llm/llm_text.h - the model handle's tokenizer (internal): loading the
 * vocabulary that comes with the weights and the text-related capabilities. */
#ifndef KILN_LLM_TEXT_H
#define KILN_LLM_TEXT_H

#include <jansson.h>

#include "kiln/status.h"

struct kiln_llm;

/* The vocabulary of m's files: GGUF tokenizer.ggml.* metadata, or a
 * Hugging Face folder's tokenizer.json with its tokenizer_config.json.
 * m->vocab stays NULL when the files have none (a GGUF without tokenizer
 * keys, a folder without tokenizer.json); tokenizing then fails with
 * KILN_ERR_UNSUPPORTED while evaluation by token ids still works. So it
 * does for a tokenizer.json with a component kiln cannot reproduce exactly
 * (a warning is logged, m->vocab_error keeps the reason); a malformed one
 * fails the load. */
kiln_status kiln__llm_load_vocab(struct kiln_llm *m);
/* tokenizer_config.json decoded with integers read as reals: these files
 * carry values such as model_max_length = 1e30 written as an integer, too
 * big for jansson's integers; the keys kiln reads from it are strings and
 * booleans. *out is a new reference. */
kiln_status kiln__llm_load_tokenizer_config(const char *path, json_t **out);
/* Release m->vocab. */
void kiln__llm_free_vocab(struct kiln_llm *m);
/* Add the vocabulary's end-of-sequence and end-of-turn ids to m->caps. */
void kiln__llm_text_caps(struct kiln_llm *m);

#endif /* KILN_LLM_TEXT_H */
