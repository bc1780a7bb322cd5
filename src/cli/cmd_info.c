/* src/cli/cmd_info.c - `kiln info PATH`. */
#include <stdio.h>

#include "cli/commands.h"

int kiln_cmd_info(int argc, char **argv) {
    (void)argv;
    if (argc < 2) {
        fprintf(stderr, "usage: kiln info [--json] PATH\n");
        return 2;
    }
    fprintf(stderr, "kiln info: no model formats are readable in this build yet\n");
    return 1;
}
