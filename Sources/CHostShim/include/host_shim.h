#ifndef REDLINE_HOST_SHIM_H
#define REDLINE_HOST_SHIM_H
#include <sys/types.h>

/// PTRACE_SEIZE `pid` (attaches without stopping it): 0 on success, else errno.
/// ptrace(2) is variadic, which Swift cannot call directly. A tracer that exits detaches.
int rl_ptrace_seize(pid_t pid);

#endif
