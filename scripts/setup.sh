#!/usr/bin/env bash
# Installs what Redline needs to build, run and test on Debian 12 (as root, or with sudo).
# Idempotent: quick when everything is already there.
set -euo pipefail

need_apt=()
# nftables and iproute2: the confinement test in network namespaces (Simulators/netns/test.sh).
# strace: EIO injected into the audit writer's fdatasync (AuditFaultTests).
# chromium and chromium-driver: the console's real-browser test (ConsoleTests, with Selenium below).
for pkg in libmodbus-dev libgpiod-dev gpiod socat util-linux python3 python3-pip pkg-config nftables iproute2 strace \
           chromium chromium-driver; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || need_apt+=("$pkg")
done
if [ ${#need_apt[@]} -gt 0 ]; then
    SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    echo "setup: installing Debian packages: ${need_apt[*]}"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

# Python packages: pymodbus and bacpypes3 (the Modbus and BACnet interop tests), mcp (the MCP
# client test), prometheus_client (the metrics test's text-format parser) and selenium (the
# console's browser test, driving Debian's chromium-driver).
py_pkgs=(pymodbus mcp prometheus_client bacpypes3 selenium)
if ! python3 -c "import $(IFS=,; echo "${py_pkgs[*]}")" 2>/dev/null; then
    echo "setup: installing Python packages: ${py_pkgs[*]}"
    python3 -m pip install -q --disable-pip-version-check "${py_pkgs[@]}" 2>/dev/null \
        || python3 -m pip install -q --disable-pip-version-check --break-system-packages "${py_pkgs[@]}"
fi

if ! command -v swift >/dev/null 2>&1; then
    if [ -x /opt/swift/usr/bin/swift ]; then
        echo "setup: swift is at /opt/swift/usr/bin; add it to PATH"
    else
        echo "setup: a Swift 6 toolchain is required (swift.org builds for Debian 12); none found" >&2
        exit 1
    fi
fi
