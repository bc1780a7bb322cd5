/* src/llm/llm_text.h - the model handle's tokenizer (internal): loading the
 * vocabulary that comes with the weights and the text-related capabilities. */
#ifndef KILN_LLM_TEXT_H
#define KILN_LLM_TEXT_H

#include "kiln/status.h"

struct kiln_llm;

/* The vocabulary of m's files: GGUF tokenizer.ggml.* metadata. m->vocab
 * stays NULL when the files describe none kiln reads (Hugging Face folders
 * until a tokenizer.json reader exists); tokenizing then fails with
 * KILN_ERR_UNSUPPORTED while evaluation by token ids still works. */
kiln_status kiln__llm_load_vocab(struct kiln_llm *m);
/* Release m->vocab. */
void kiln__llm_free_vocab(struct kiln_llm *m);
/* Add the vocabulary's end-of-sequence and end-of-turn ids to m->caps. */
void kiln__llm_text_caps(struct kiln_llm *m);

#endif /* KILN_LLM_TEXT_H */
