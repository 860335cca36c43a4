#ifndef REDLINE_CGPIOD_SHIM_H
#define REDLINE_CGPIOD_SHIM_H
#include <gpiod.h>
#include <errno.h>

static inline int redline_gpiod_errno(void) { return errno; }
#endif
