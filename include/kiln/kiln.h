/* kiln/kiln.h - umbrella header of the kiln inference library. */
#ifndef KILN_KILN_H
#define KILN_KILN_H

#include "kiln/status.h"
#include "kiln/version.h"
#include "kiln/dtype.h"
#include "kiln/arch.h"
#include "kiln/llm.h"

#endif /* KILN_KILN_H */
