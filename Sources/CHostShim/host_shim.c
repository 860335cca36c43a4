#include "host_shim.h"
#include <errno.h>
#include <fcntl.h>
#include <linux/gpio.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/ptrace.h>
#include <unistd.h>

int rl_ptrace_seize(pid_t pid) {
    if (ptrace(PTRACE_SEIZE, pid, 0, 0) == 0) return 0;
    return errno;
}

int rl_gpiochip_label(const char *path, char *label, size_t len) {
    if (len == 0) return EINVAL;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) return errno;
    struct gpiochip_info info;
    memset(&info, 0, sizeof info);
    int rc = ioctl(fd, GPIO_GET_CHIPINFO_IOCTL, &info);
    int e = errno;
    close(fd);
    if (rc < 0) return e;
    snprintf(label, len, "%.*s", (int)sizeof info.label, info.label);
    return 0;
}
