/* kiln/llm.h - text generation: sampling parameters (the model API grows
 * here with the LLM engine). */
#ifndef KILN_LLM_H
#define KILN_LLM_H

#include <stdint.h>

#include "kiln/export.h"
#include "kiln/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* How the next token is chosen from the logits. Filters apply in this
 * order: penalties, top-k, top-p, min-p, temperature, then a draw. */
typedef struct kiln_sampling_params {
    float temperature;        /* softmax temperature; <= 0 means greedy (argmax) */
    int32_t top_k;            /* keep the k most likely tokens; 0 = off */
    float top_p;              /* keep the smallest set with probability >= top_p; 1 = off */
    float min_p;              /* drop tokens below min_p x the top probability; 0 = off */
    float repetition_penalty; /* divide positive (multiply negative) logits of seen tokens; 1 = off */
    float presence_penalty;   /* subtract once from logits of seen tokens; 0 = off */
    float frequency_penalty;  /* subtract per occurrence from logits of seen tokens; 0 = off */
    int32_t penalty_last_n;   /* tokens of history the penalties look at; 0 = off, -1 = all kept */
    uint64_t seed;            /* random seed: the same seed gives the same draws */
} kiln_sampling_params;

/* Defaults: temperature 0.8, top_k 40, top_p 0.95, min_p 0.05, no penalties,
 * penalty_last_n 64, seed 0. */
KILN_API kiln_sampling_params kiln_sampling_default_params(void);

#ifdef __cplusplus
}
#endif
#endif /* KILN_LLM_H */
