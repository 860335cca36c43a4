#!/usr/bin/env bash
# Runs every test: unit, property, end-to-end (real simulator, daemon and clients),
# interop (pymodbus, MCP SDK) and, where present, the GPIO virtual-machine rig.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/opt/swift/usr/bin:$PATH"
bash scripts/setup.sh

swift build
swift test

# The GPIO rig: a QEMU virtual machine with the kernel's gpio-sim driver (GPIOVM_SKIP=1 skips it).
bash Simulators/gpio-vm/test.sh
