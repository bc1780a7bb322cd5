/* src/text/chat_template_config.c - finding the chat template in a Hugging
 * Face tokenizer_config.json (the GGUF equivalent is the string key
 * tokenizer.chat_template, read with kiln__gguf_get_str).
 *
 * "chat_template" is either the template string or, in newer configs, a list
 * of named templates ({"name": "default", "template": "..."}, plus e.g.
 * "tool_use" or "rag"); transformers uses the one named "default" when the
 * caller names none, and so does kiln.
 */
#include <string.h>

#include "core/error.h"
#include "formats/json_util.h"
#include "text/chat_template.h"

kiln_status kiln__chat_template_from_config(const json_t *cfg, const char **tmpl) {
    *tmpl = NULL;
    if (!json_is_object(cfg))
        return kiln__fail(KILN_ERR_FORMAT, "tokenizer_config: expected a JSON object, found %s",
                          kiln__json_kind(cfg));
    const json_t *v = json_object_get(cfg, "chat_template");
    if (!v || json_is_null(v))
        return kiln__fail(KILN_ERR_NOT_FOUND, "tokenizer_config: no chat_template");
    if (json_is_string(v)) {
        *tmpl = json_string_value(v);
        return KILN_OK;
    }
    if (!json_is_array(v))
        return kiln__fail(KILN_ERR_FORMAT,
                          "tokenizer_config: chat_template is a %s, expected a string or a list",
                          kiln__json_kind(v));
    for (size_t i = 0; i < json_array_size(v); i++) {
        const json_t *e = json_array_get(v, i);
        const json_t *name = json_object_get(e, "name");
        const json_t *text = json_object_get(e, "template");
        if (!json_is_object(e) || !json_is_string(name) || !json_is_string(text))
            return kiln__fail(KILN_ERR_FORMAT,
                              "tokenizer_config: chat_template[%zu] is not a "
                              "{\"name\": string, \"template\": string} object",
                              i);
        if (strcmp(json_string_value(name), "default") == 0) {
            *tmpl = json_string_value(text);
            return KILN_OK;
        }
    }
    return kiln__fail(KILN_ERR_NOT_FOUND,
                      "tokenizer_config: chat_template lists no template named \"default\"");
}
