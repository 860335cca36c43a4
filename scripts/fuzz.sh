#!/usr/bin/env bash
# Builds and runs libFuzzer targets (issue 15).
#
#   scripts/fuzz.sh TARGET [SECONDS]   one target (json rpc-lines audit-verify modbus-replies bacnet-replies site-yaml scenario-yaml)
#   scripts/fuzz.sh all [SECONDS]      every target, one after the other (default 60 s each)
#   scripts/fuzz.sh build TARGET       build only; prints the binary's path
#
# The corpus is seeded from the project's own files (fixtures, red-team cases, real configs,
# scenarios) and Tests/FuzzRegressions/TARGET, copied into Fuzz/work/TARGET (git-ignored; kept
# between runs, so later runs start from what earlier ones found). A crash or oracle failure is
# minimized (-minimize_crash=1) into Tests/FuzzRegressions/TARGET/, which FuzzRegressionTests
# replays through the same oracle on every `swift test`; the script then exits non-zero.
#
# How the binaries are built (see Fuzz/README.md for why):
# - json, rpc-lines, modbus-replies and bacnet-replies: swiftc compiles the fuzzed sources, the oracle and the entry point as
#   ONE module (-wmo, one object), so libFuzzer gets the coverage of all of it; optimized (-O keeps
#   Swift's bounds and overflow checks; unoptimized, generic code ran 3-10 times slower);
# - the others: `swift build --sanitize=fuzzer --sanitize=address` in the .build-fuzz scratch path.
#   There, only the coverage counters of C code (libyaml, BoringSSL, NIO's C shims) reach libFuzzer:
#   the Swift objects' counters share one COMDAT group name, the linker keeps the first only.
#   Oracles and AddressSanitizer still run on every input; guidance is weaker.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/opt/swift/usr/bin:$PATH"
export SWIFT_BACKTRACE=enable=no   # the backtracer hangs after an AddressSanitizer report
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=0}"   # libyaml/Foundation one-off allocations at exit are not findings
ROOT=$PWD
TARGETS="json rpc-lines audit-verify modbus-replies bacnet-replies site-yaml scenario-yaml"

single_module_sources() {
    case "$1" in
        json) echo "Sources/RedlineCore/JSON.swift Fuzz/Oracles/Harness.swift Fuzz/Oracles/JSONOracle.swift Fuzz/json/Entry.swift" ;;
        rpc-lines) echo "Sources/RedlineCore/JSON.swift Sources/RedlineDaemon/LineFraming.swift Sources/RedlineDaemon/RPC.swift Fuzz/Oracles/Harness.swift Fuzz/Oracles/RPCLinesOracle.swift Fuzz/rpc-lines/Entry.swift" ;;
        modbus-replies) echo "Sources/RedlineCore/ModbusReply.swift Fuzz/Oracles/Harness.swift Fuzz/Oracles/ModbusRepliesOracle.swift Fuzz/modbus-replies/Entry.swift" ;;
        bacnet-replies) echo "Sources/RedlineCore/BACnet.swift Sources/RedlineCore/BACnetCodec.swift Fuzz/Oracles/Harness.swift Fuzz/Oracles/BACnetRepliesOracle.swift Fuzz/bacnet-replies/Entry.swift" ;;
        *) echo "" ;;
    esac
}

build() {
    local t=$1 srcs
    srcs=$(single_module_sources "$t")
    if [ -n "$srcs" ]; then
        mkdir -p .build-fuzz/bin .build-fuzz/stub
        local out=.build-fuzz/bin/fuzz-$t
        # Sources of RedlineDaemon say `import RedlineCore`; in one module with RedlineCore's files
        # that import must find a module: an empty RedlineCore (an interface, no code), so names
        # resolve to the copies compiled here.
        if [ ! -f .build-fuzz/stub/RedlineCore.swiftmodule ]; then
            : > .build-fuzz/stub/RedlineCore.swift
            swiftc -emit-module -parse-as-library -module-name RedlineCore -swift-version 6 \
                .build-fuzz/stub/RedlineCore.swift -o .build-fuzz/stub/RedlineCore.swiftmodule >&2
        fi
        # shellcheck disable=SC2086
        if [ ! -x "$out" ] || [ -n "$(find $srcs -newer "$out" 2>/dev/null)" ]; then
            # Run in a folder of its own: an optimized -g build leaves module files in the current folder.
            local abs="" s
            for s in $srcs; do abs="$abs $ROOT/$s"; done
            mkdir -p ".build-fuzz/swiftc-$t"
            # shellcheck disable=SC2086
            (cd ".build-fuzz/swiftc-$t" && swiftc -O -sanitize=fuzzer,address -parse-as-library -wmo -g -use-ld=lld \
                -module-name "Fuzz_${t//-/_}" -package-name redline -I "$ROOT/.build-fuzz/stub" -D REDLINE_LIBFUZZER \
                -D REDLINE_FUZZ_SINGLE_MODULE -swift-version 6 -enable-upcoming-feature ExistentialAny $abs -o "$ROOT/$out") >&2
        fi
        echo "$out"
    else
        swift build --sanitize=fuzzer --sanitize=address -Xswiftc -DREDLINE_LIBFUZZER \
            --scratch-path .build-fuzz --toolset scripts/fuzz-toolset.json --product "fuzz-$t" >&2
        echo ".build-fuzz/debug/fuzz-$t"
    fi
}

copy_seeds() {
    local t=$1 dir=$2 src
    mkdir -p "$dir"
    case "$t" in
        json|rpc-lines) src="Tests/RedTeam" ;;
        site-yaml) src="Firmware-Configs Tests/RedlineConfigTests/Fixtures/sites" ;;
        scenario-yaml) src="Simulators/Scenarios Tests/RedTeam" ;;
        *) src="" ;;
    esac
    for s in $src; do
        find "$s" -type f \( -name '*.yaml' -o -name '*.yml' -o -name '*.json' \) | while read -r f; do
            cp "$f" "$dir/seed-$(echo "$f" | tr '/' '_')"
        done
    done
    if [ -d "Tests/FuzzRegressions/$t" ]; then
        find "Tests/FuzzRegressions/$t" -type f ! -name '.*' -exec cp {} "$dir/" \;
    fi
    case "$t" in
        site-yaml)
            # A site followed by a replaced profile (see Fuzz/Oracles/SiteOracle.swift).
            for p in Devices/*.yaml; do
                { cat Firmware-Configs/demo-datacenter.yaml; printf '\n#@@profile %s\n' "$(basename "$p")"; cat "$p"; } > "$dir/seed-site+$(basename "$p")"
            done ;;
        rpc-lines)
            printf '\x00\x01\x02{"jsonrpc":"2.0","id":1,"method":"read","params":{"point":"crac-1.setpoint"}}\r\n{"jsonrpc":"2.0","method":"write"}\n[1]\n' > "$dir/seed-requests"
            printf '\x08\x00\x07short\nthis line is longer than eight\nok\n\ntail' > "$dir/seed-too-long" ;;
        audit-verify)
            for i in 1 3 5 7 9; do printf "\\x01\\x0$i\\x01\\x00\\x20\\x41reason: override EXEC-4429 \xe2\x9c\x93" > "$dir/seed-chain-$i"; done
            printf '\x00{"seq":1,"time":"t","kind":"k","prev":"0000000000000000000000000000000000000000000000000000000000000000","hash":"x"}\n' > "$dir/seed-file" ;;
        modbus-replies)
            for b in 0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15; do
                printf "\\x$(printf %02x $b)\\x01\\x01\\x00\\x00\\x10\\x00\\x04\\x00\\x03\\x55\\x12\\x34\\x56\\x78\\x9a\\xbc\\xde\\xf0" > "$dir/seed-fc-$b"
            done ;;
    esac
}

run() {
    local t=$1 secs=$2 bin work log rc
    bin=$(build "$t")
    work=Fuzz/work/$t
    copy_seeds "$t" "$work/corpus"
    mkdir -p "$work/artifacts" "Tests/FuzzRegressions/$t"
    rm -f "$work/artifacts/"*
    log=$work/last-run.log
    rc=0
    "$bin" "$work/corpus" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -max_len=16384 -detect_leaks=0 \
        -artifact_prefix="$work/artifacts/" -print_final_stats=1 > "$log" 2>&1 || rc=$?
    local done_line execs rate
    done_line=$(grep -E '^#[0-9]+[[:space:]]+DONE' "$log" | tail -1 || true)
    execs=$(grep -E 'stat::number_of_executed_units' "$log" | awk '{print $2}' | tail -1 || true)
    rate=$(grep -E 'stat::average_exec_per_sec' "$log" | awk '{print $2}' | tail -1 || true)
    echo "fuzz $t: ${secs}s, ${execs:-?} executions, ${rate:-?} exec/s; ${done_line:-no DONE line}"
    if [ "$rc" != 0 ]; then
        grep -E 'ORACLE FAILURE|ERROR: AddressSanitizer|Fatal error|SUMMARY' "$log" | head -5 >&2 || true
        local a
        for a in "$work/artifacts/"*; do
            [ -f "$a" ] || continue
            local name
            name=$(basename "$a")
            "$bin" -minimize_crash=1 -runs=20000 -max_total_time=60 \
                -exact_artifact_path="Tests/FuzzRegressions/$t/$name" "$a" > "$work/minimize.log" 2>&1 || true
            [ -f "Tests/FuzzRegressions/$t/$name" ] || cp "$a" "Tests/FuzzRegressions/$t/$name"
            echo "fuzz $t: FAILED; regression input Tests/FuzzRegressions/$t/$name (log $log)" >&2
        done
        return 1
    fi
}

[ $# -ge 1 ] || { sed -n '2,8p' "$0"; exit 2; }
case "$1" in
    build) build "$2" ;;
    all)
        failed=0
        for t in $TARGETS; do run "$t" "${2:-60}" || failed=1; done
        exit $failed ;;
    *)
        echo " $TARGETS " | grep -q " $1 " || { echo "unknown target $1 (one of: $TARGETS)" >&2; exit 2; }
        run "$1" "${2:-60}" ;;
esac
