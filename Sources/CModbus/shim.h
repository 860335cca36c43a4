#ifndef REDLINE_CMODBUS_SHIM_H
#define REDLINE_CMODBUS_SHIM_H
#include <modbus/modbus.h>
#include <errno.h>

/// `errno` as a function: Swift cannot read the thread-local macro directly.
static inline int redline_modbus_errno(void) { return errno; }
#endif
