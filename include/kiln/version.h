/* kiln/version.h - library version. */
#ifndef KILN_VERSION_H
#define KILN_VERSION_H

#define KILN_VERSION_MAJOR 0
#define KILN_VERSION_MINOR 1
#define KILN_VERSION_PATCH 0
#define KILN_VERSION_STRING "0.1.0"
/* One number that grows with every release: 0xMMmmpp. */
#define KILN_VERSION_NUMBER \
    ((KILN_VERSION_MAJOR << 16) | (KILN_VERSION_MINOR << 8) | KILN_VERSION_PATCH)

#include "kiln/export.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The version of the library actually linked, as "MAJOR.MINOR.PATCH".
 * Returns a static string (never free it). */
KILN_API const char *kiln_version(void);

#ifdef __cplusplus
}
#endif
#endif /* KILN_VERSION_H */
