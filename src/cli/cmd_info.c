/* src/cli/cmd_info.c - `kiln info [--json] PATH`: describe a model file or
 * folder without loading it for inference. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/commands.h"
#include "formats/model_report.h"
#include "kiln/kiln.h"

static void usage(FILE *out) {
    fprintf(out,
            "usage: kiln info [--json] PATH\n"
            "  PATH    a GGUF or safetensors file, a Hugging Face model folder or a diffusers folder\n"
            "  --json  print one JSON object instead of text\n");
}

int kiln_cmd_info(int argc, char **argv) {
    const char *path = NULL;
    int json = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0) {
            json = 1;
        } else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            usage(stdout);
            return 0;
        } else if (argv[i][0] == '-' && argv[i][1] != '\0') {
            fprintf(stderr, "kiln info: unknown option '%s'\n", argv[i]);
            usage(stderr);
            return 2;
        } else if (path) {
            fprintf(stderr, "kiln info: one PATH only\n");
            return 2;
        } else {
            path = argv[i];
        }
    }
    if (!path) {
        usage(stderr);
        return 2;
    }
    struct kiln_weights *w = NULL;
    kiln_status st = kiln__weights_open(path, &w);
    if (st != KILN_OK) {
        fprintf(stderr, "kiln info: %s: %s\n", kiln_status_str(st), kiln_last_error());
        return 1;
    }
    json_t *report = kiln__model_report(w);
    int rc = 0;
    if (!report) {
        fprintf(stderr, "kiln info: out of memory\n");
        rc = 1;
    } else if (json) {
        char *text = json_dumps(report, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        if (text) puts(text);
        else rc = 1;
        free(text);
    } else {
        kiln__model_report_print(report, stdout);
    }
    json_decref(report);
    kiln__weights_free(w);
    return rc;
}
