/* src/formats/model_report.h - what `kiln info` knows about a model, gathered
 * once as a JSON object so the text and --json outputs cannot disagree. */
#ifndef KILN_FORMATS_MODEL_REPORT_H
#define KILN_FORMATS_MODEL_REPORT_H

#include <jansson.h>

#include "formats/weights.h"

/* A new JSON object describing the opened model (format, family, variant,
 * hyperparameters, tokenizer, tensor and byte counts). NULL when out of
 * memory. The caller owns the result (json_decref). */
json_t *kiln__model_report(const struct kiln_weights *w);

/* Print a report made by kiln__model_report as aligned "key: value" lines. */
void kiln__model_report_print(const json_t *report, FILE *out);

#endif /* KILN_FORMATS_MODEL_REPORT_H */
