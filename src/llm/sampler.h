/* src/llm/sampler.h - choosing the next token from logits (internal).
 *
 * A sampler owns its scratch space (one candidate per vocabulary entry) and
 * the history the penalties look at, so sampling allocates nothing. The
 * random stream is xoshiro256** seeded by splitmix64 from the request's
 * seed: the same seed and logits give the same tokens on every machine.
 */
#ifndef KILN_LLM_SAMPLER_H
#define KILN_LLM_SAMPLER_H

#include <stddef.h>
#include <stdint.h>

#include "kiln/llm.h"

/* One token under consideration. */
typedef struct kiln_candidate {
    int32_t id;  /* token id */
    float logit; /* its (adjusted) logit */
    float p;     /* its probability once a softmax has run */
} kiln_candidate;

typedef struct kiln_sampler kiln_sampler;

/* A sampler for a vocabulary of n_vocab tokens; history capacity is
 * penalty_last_n (or `max_history` when that is -1). NULL on bad params or
 * out of memory (see kiln_last_error()). Free with kiln__sampler_free(). */
kiln_sampler *kiln__sampler_create(const kiln_sampling_params *params, int32_t n_vocab,
                                   int32_t max_history);
void kiln__sampler_free(kiln_sampler *s);

/* Record a token (prompt or generated) in the penalty history. */
void kiln__sampler_accept(kiln_sampler *s, int32_t token);

/* Pick the next token from `logits` (n_vocab floats, not modified). */
int32_t kiln__sampler_sample(kiln_sampler *s, const float *logits);

/* Next raw 64-bit number of the sampler's stream (exposed for tests). */
uint64_t kiln__sampler_next_u64(kiln_sampler *s);

#endif /* KILN_LLM_SAMPLER_H */
