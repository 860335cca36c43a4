#!/usr/bin/env bash
# Builds the release executables and copies them to OUTDIR (default .build-release/dist):
#   redlined, redlinectl   shipped on a controller
#   redline-sim            the simulated plant (test rigs)
#   redline-hil            HIL scenarios, guided proof tests and the adversarial agent (engineers, rigs)
# Each is built with `swift build -c release --static-swift-stdlib --scratch-path .build-release`, so the
# Swift runtime is inside the binary (libmodbus and libgpiod stay dynamic, from the system).
# Prints each product's build time (later products reuse the modules built for earlier ones) and its
# size, unstripped and stripped. The copies in OUTDIR are unstripped; strip them when packaging.
#
# Usage: scripts/build-release.sh [OUTDIR]
#   REDLINE_RELEASE_SCRATCH=DIR overrides the scratch path (a cold build in a fresh folder, for example).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/opt/swift/usr/bin:$PATH"

scratch="${REDLINE_RELEASE_SCRATCH:-.build-release}"
out="${1:-$scratch/dist}"
products=(redlined redlinectl redline-sim redline-hil)

mkdir -p "$out"
report=()
for p in "${products[@]}"; do
    echo "== swift build -c release --static-swift-stdlib --product $p"
    start=$(date +%s)
    swift build -c release --static-swift-stdlib --scratch-path "$scratch" --product "$p"
    end=$(date +%s)
    bin="$(swift build -c release --static-swift-stdlib --scratch-path "$scratch" --show-bin-path)/$p"
    install -m 0755 "$bin" "$out/$p"
    tmp=$(mktemp)
    strip -o "$tmp" "$bin"
    size=$(stat -c %s "$bin")
    stripped=$(stat -c %s "$tmp")
    rm -f "$tmp"
    report+=("$(awk -v p="$p" -v t=$((end - start)) -v u="$size" -v s="$stripped" \
        'BEGIN { printf "%-12s %5d s   %6.1f MiB unstripped   %6.1f MiB stripped", p, t, u / 1048576, s / 1048576 }')")
done

echo
echo "release build (static Swift stdlib), copied to $out:"
printf '  %s\n' "${report[@]}"
