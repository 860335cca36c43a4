#ifndef REDLINE_HOST_SHIM_H
#define REDLINE_HOST_SHIM_H
#include <sys/types.h>

/// PTRACE_SEIZE `pid` (attaches without stopping it): 0 on success, else errno.
/// ptrace(2) is variadic, which Swift cannot call directly. A tracer that exits detaches.
int rl_ptrace_seize(pid_t pid);

/// The label of the GPIO chip at `path` (a /dev/gpiochipN node), by the kernel's
/// GPIO_GET_CHIPINFO_IOCTL, NUL-terminated into `label` (at most `len` bytes):
/// 0 on success, else errno (ENOTTY when the node is not a GPIO chip).
int rl_gpiochip_label(const char *path, char *label, size_t len);

#endif
