/* src/cli/cmd_version.c - `kiln version`. */
#include <stdio.h>

#include "cli/commands.h"
#include "core/cpu.h"
#include "kiln/kiln.h"

int kiln_cmd_version(int argc, char **argv) {
    (void)argc;
    (void)argv;
    char features[256];
    kiln__cpu_describe(features, sizeof features);
    printf("kiln %s\n", kiln_version());
    printf("cpu features: %s\n", features[0] ? features : "(none beyond x86-64)");
    printf("cores: %d\n", kiln__cpu_count());
    return 0;
}
