/* kiln/export.h - symbol visibility of the public API.
 * The library builds with -fvisibility=hidden; only KILN_API symbols are
 * exported from a shared build. Internal cross-file symbols use kiln__. */
#ifndef KILN_EXPORT_H
#define KILN_EXPORT_H

#if defined(__GNUC__)
#define KILN_API __attribute__((visibility("default")))
#else
#define KILN_API
#endif

#endif /* KILN_EXPORT_H */
