#!/usr/bin/env bash
# Runs every test: unit, property, end-to-end (real simulator, daemon and clients),
# interop (pymodbus, MCP SDK) and, where present, the GPIO virtual-machine rig.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/opt/swift/usr/bin:$PATH"
bash scripts/setup.sh

swift build 2>&1 | grep -v '^\[' || true
swift build   # fails the script if the build fails
swift test --parallel 2>&1 | tee .build/test.log
status=${PIPESTATUS[0]}
[ "$status" -eq 0 ] || exit "$status"

if [ -x Simulators/gpio-vm/test.sh ] && [ "${REDLINE_SKIP_GPIO_VM:-0}" != 1 ]; then
    bash Simulators/gpio-vm/test.sh
fi
