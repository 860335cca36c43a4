#!/usr/bin/env bash
# The GPIO rig as part of the project's test command (README, .ci/run).
# Installs what it needs (qemu, busybox, kernel packages from Debian's archive) and runs
# Simulators/gpio-vm/run.sh; its last line is `gpio-vm: N passed, M failed` and its exit
# code is non-zero if any check failed or the VM did not finish.
# GPIOVM_SKIP=1 skips it explicitly (and says so); nothing else skips it.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
if [ "${GPIOVM_SKIP:-0}" = 1 ]; then
    echo "gpio-vm: skipped (GPIOVM_SKIP=1)"
    exit 0
fi
if [ "$(id -u)" != 0 ] && ! command -v qemu-system-x86_64 >/dev/null; then
    echo "gpio-vm: needs root to install qemu-system-x86 and the kernel packages (apt-get)" >&2
    exit 1
fi
# run.sh's last line is the count (`gpio-vm: N passed, M failed`): nothing is printed after it.
exec "$HERE/run.sh" "$@"
