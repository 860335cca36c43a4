#!/usr/bin/env bash
# Runs every test: unit, property, end-to-end (real simulator, daemon and clients),
# interop (pymodbus, MCP SDK) and, where present, the GPIO virtual-machine rig.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/opt/swift/usr/bin:$PATH"
bash scripts/setup.sh

swift build
swift test

if [ -x Simulators/gpio-vm/test.sh ] && [ "${REDLINE_SKIP_GPIO_VM:-0}" != 1 ]; then
    bash Simulators/gpio-vm/test.sh
fi
