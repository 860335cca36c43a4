#include "host_shim.h"
#include <errno.h>
#include <sys/ptrace.h>

int rl_ptrace_seize(pid_t pid) {
    if (ptrace(PTRACE_SEIZE, pid, 0, 0) == 0) return 0;
    return errno;
}
