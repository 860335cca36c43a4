#!/usr/bin/env bash
# The systemd rig as part of the project's test command (scripts/test.sh, .ci/run).
# Builds the packages, boots Debian 12 with systemd as PID 1 in QEMU and runs the checks;
# the last line is `systemd-vm: N passed, M failed`, the exit code non-zero if any check
# failed or the VM did not finish. SYSTEMDVM_SKIP=1 skips it explicitly (and says so).
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
if [ "${SYSTEMDVM_SKIP:-0}" = 1 ]; then
    echo "systemd-vm: skipped (SYSTEMDVM_SKIP=1)"
    exit 0
fi
if [ "$(id -u)" != 0 ]; then
    echo "systemd-vm: needs root (mmdebstrap, apt-get, mkfs.ext4 -d keeping ownership)" >&2
    exit 1
fi
exec "$HERE/run.sh" "$@"
